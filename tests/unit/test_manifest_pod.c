/* cri/pod-manifest*.c: Kubernetes Pod manifests (YAML and JSON), quantities and QoS. */
#include "unit.h"

#include <inttypes.h>

#include "base/cleanup.h"
#include "base/error.h"
#include "cri/pod-manifest.h"

struct fx {
	struct berth_error *err;
	struct pod_manifest *m;
	struct pod_manifest *m2;
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	*state = fx;
	return fx ? 0 : -1;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	berth_error_free(fx->err);
	pod_manifest_free(fx->m);
	pod_manifest_free(fx->m2);
	free(fx);
	return 0;
}

static struct pod_manifest *parse_ok(struct fx *fx, const char *text)
{
	struct pod_manifest *m = NULL;
	MUST_OK(fx, pod_manifest_parse(text, strlen(text), "web.yaml", &m, &fx->err));
	assert_non_null(m);
	return m;
}

/* The same text parsed into fx->m, which the teardown frees. */
#define PARSE(fx, text) ((fx)->m = parse_ok((fx), (text)))

static const char full_yaml[] =
	"# every field berth supports\n"
	"apiVersion: v1\n"
	"kind: Pod\n"
	"metadata:\n"
	"  name: web\n"
	"  namespace: prod\n"
	"  uid: 0f3c6b1e-web\n"
	"  labels:\n"
	"    app: web\n"
	"    app.kubernetes.io/name: web\n"
	"  annotations:\n"
	"    example.com/note: hello world\n"
	"spec:\n"
	"  restartPolicy: OnFailure\n"
	"  terminationGracePeriodSeconds: 45\n"
	"  activeDeadlineSeconds: 600\n"
	"  dnsPolicy: None\n"
	"  dnsConfig:\n"
	"    nameservers: [10.0.0.10, \"fd00::10\"]\n"
	"    searches: [svc.example.com]\n"
	"    options:\n"
	"      - name: ndots\n"
	"        value: \"2\"\n"
	"      - name: rotate\n"
	"  hostNetwork: false\n"
	"  hostPID: false\n"
	"  hostIPC: true\n"
	"  shareProcessNamespace: true\n"
	"  hostname: web-0\n"
	"  securityContext:\n"
	"    runAsUser: 1000\n"
	"    runAsGroup: 1000\n"
	"    runAsNonRoot: true\n"
	"    supplementalGroups: [10, 20]\n"
	"    seccompProfile:\n"
	"      type: RuntimeDefault\n"
	"    sysctls:\n"
	"      - name: net.ipv4.ip_unprivileged_port_start\n"
	"        value: \"0\"\n"
	"  volumes:\n"
	"    - name: cache\n"
	"      emptyDir:\n"
	"        medium: Memory\n"
	"        sizeLimit: 64Mi\n"
	"    - name: logs\n"
	"      hostPath:\n"
	"        path: /var/log/web\n"
	"        type: DirectoryOrCreate\n"
	"    - name: config\n"
	"      configMap:\n"
	"        name: web-config\n"
	"        items:\n"
	"          - key: app.conf\n"
	"            path: conf/app.conf\n"
	"            mode: 0600\n"
	"        defaultMode: 0640\n"
	"        optional: true\n"
	"    - name: creds\n"
	"      secret:\n"
	"        secretName: web-creds\n"
	"        defaultMode: 0400\n"
	"    - name: scratch\n"
	"  initContainers:\n"
	"    - name: setup\n"
	"      image: busybox:1.36\n"
	"      command: [sh, -c, \"echo ready > /cache/ready\"]\n"
	"      volumeMounts:\n"
	"        - name: cache\n"
	"          mountPath: /cache\n"
	"  containers:\n"
	"    - name: app\n"
	"      image: registry.example.com:5000/web/app:2.1\n"
	"      imagePullPolicy: Always\n"
	"      command: [\"/app/server\"]\n"
	"      args: [\"--port\", \"8080\"]\n"
	"      workingDir: /app\n"
	"      env:\n"
	"        - name: MODE\n"
	"          value: production\n"
	"        - name: POD_NAME\n"
	"          valueFrom:\n"
	"            fieldRef:\n"
	"              fieldPath: metadata.name\n"
	"        - name: POD_NS\n"
	"          valueFrom: {fieldRef: {apiVersion: v1, fieldPath: metadata.namespace}}\n"
	"        - name: POD_IP\n"
	"          valueFrom: {fieldRef: {fieldPath: status.podIP}}\n"
	"        - name: LEVEL\n"
	"          valueFrom:\n"
	"            configMapKeyRef: {name: web-config, key: level, optional: true}\n"
	"        - name: TOKEN\n"
	"          valueFrom:\n"
	"            secretKeyRef: {name: web-creds, key: token}\n"
	"      ports:\n"
	"        - name: http\n"
	"          containerPort: 8080\n"
	"          hostPort: 18080\n"
	"          protocol: TCP\n"
	"          hostIP: 127.0.0.1\n"
	"        - containerPort: 5353\n"
	"          protocol: UDP\n"
	"      resources:\n"
	"        requests: {cpu: 250m, memory: 64Mi}\n"
	"        limits: {cpu: \"1\", memory: 1.5Gi}\n"
	"      volumeMounts:\n"
	"        - name: config\n"
	"          mountPath: /etc/app\n"
	"          readOnly: true\n"
	"        - name: logs\n"
	"          mountPath: /var/log/app\n"
	"          subPath: app\n"
	"      securityContext:\n"
	"        capabilities: {add: [NET_BIND_SERVICE], drop: [ALL]}\n"
	"        privileged: false\n"
	"        runAsUser: 1001\n"
	"        runAsGroup: 1001\n"
	"        runAsNonRoot: true\n"
	"        readOnlyRootFilesystem: true\n"
	"        allowPrivilegeEscalation: false\n"
	"        seccompProfile: {type: Localhost, localhostProfile: profiles/app.json}\n"
	"      livenessProbe:\n"
	"        httpGet:\n"
	"          path: /healthz\n"
	"          port: http\n"
	"          host: 127.0.0.1\n"
	"          scheme: HTTPS\n"
	"          httpHeaders:\n"
	"            - name: X-Probe\n"
	"              value: liveness\n"
	"        initialDelaySeconds: 5\n"
	"        timeoutSeconds: 2\n"
	"        periodSeconds: 15\n"
	"        successThreshold: 1\n"
	"        failureThreshold: 4\n"
	"        terminationGracePeriodSeconds: 10\n"
	"      readinessProbe:\n"
	"        tcpSocket: {port: 8080, host: localhost}\n"
	"        successThreshold: 2\n"
	"      startupProbe:\n"
	"        exec: {command: [cat, /tmp/started]}\n"
	"        failureThreshold: 30\n"
	"      lifecycle:\n"
	"        postStart:\n"
	"          exec: {command: [sh, -c, \"touch /tmp/started\"]}\n"
	"        preStop:\n"
	"          httpGet: {path: /shutdown, port: 8080}\n"
	"    - name: sidecar\n"
	"      image: busybox\n"
	"      lifecycle:\n"
	"        preStop:\n"
	"          sleep: {seconds: 5}\n";

/* The same pod as JSON, written by a JSON encoder with every object's keys reversed (and YAML 1.1
 * octal modes as decimal). */
static const char full_json[] =
	"{\"spec\": {\"containers\": [{\"lifecycle\": {\"preStop\": {\"httpGet\": {\"port\": 8080, "
	"\"path\": \"/shutdown\"}}, \"postStart\": {\"exec\": {\"command\": [\"sh\", \"-c\", "
	"\"touch /tmp/started\"]}}}, \"startupProbe\": {\"failureThreshold\": 30, "
	"\"exec\": {\"command\": [\"cat\", \"/tmp/started\"]}}, \"readinessProbe\": {\"successThreshold\": 2, "
	"\"tcpSocket\": {\"host\": \"localhost\", \"port\": 8080}}, "
	"\"livenessProbe\": {\"terminationGracePeriodSeconds\": 10, \"failureThreshold\": 4, "
	"\"successThreshold\": 1, \"periodSeconds\": 15, \"timeoutSeconds\": 2, "
	"\"initialDelaySeconds\": 5, \"httpGet\": {\"httpHeaders\": [{\"value\": \"liveness\", "
	"\"name\": \"X-Probe\"}], \"scheme\": \"HTTPS\", \"host\": \"127.0.0.1\", \"port\": \"http\", "
	"\"path\": \"/healthz\"}}, "
	"\"securityContext\": {\"seccompProfile\": {\"localhostProfile\": \"profiles/app.json\", "
	"\"type\": \"Localhost\"}, \"allowPrivilegeEscalation\": false, \"readOnlyRootFilesystem\": true, "
	"\"runAsNonRoot\": true, \"runAsGroup\": 1001, \"runAsUser\": 1001, \"privileged\": false, "
	"\"capabilities\": {\"drop\": [\"ALL\"], \"add\": [\"NET_BIND_SERVICE\"]}}, "
	"\"volumeMounts\": [{\"readOnly\": true, \"mountPath\": \"/etc/app\", \"name\": \"config\"}, "
	"{\"subPath\": \"app\", \"mountPath\": \"/var/log/app\", \"name\": \"logs\"}], "
	"\"resources\": {\"limits\": {\"memory\": \"1.5Gi\", \"cpu\": \"1\"}, \"requests\": {\"memory\": \"64Mi\", "
	"\"cpu\": \"250m\"}}, \"ports\": [{\"hostIP\": \"127.0.0.1\", \"protocol\": \"TCP\", \"hostPort\": 18080, "
	"\"containerPort\": 8080, \"name\": \"http\"}, {\"protocol\": \"UDP\", \"containerPort\": 5353}], "
	"\"env\": [{\"value\": \"production\", \"name\": \"MODE\"}, "
	"{\"valueFrom\": {\"fieldRef\": {\"fieldPath\": \"metadata.name\"}}, \"name\": \"POD_NAME\"}, "
	"{\"valueFrom\": {\"fieldRef\": {\"fieldPath\": \"metadata.namespace\", \"apiVersion\": \"v1\"}}, "
	"\"name\": \"POD_NS\"}, {\"valueFrom\": {\"fieldRef\": {\"fieldPath\": \"status.podIP\"}}, "
	"\"name\": \"POD_IP\"}, {\"valueFrom\": {\"configMapKeyRef\": {\"optional\": true, \"key\": \"level\", "
	"\"name\": \"web-config\"}}, \"name\": \"LEVEL\"}, {\"valueFrom\": {\"secretKeyRef\": {\"key\": \"token\", "
	"\"name\": \"web-creds\"}}, \"name\": \"TOKEN\"}], \"workingDir\": \"/app\", \"args\": [\"--port\", "
	"\"8080\"], \"command\": [\"/app/server\"], \"imagePullPolicy\": \"Always\", "
	"\"image\": \"registry.example.com:5000/web/app:2.1\", \"name\": \"app\"}, "
	"{\"lifecycle\": {\"preStop\": {\"sleep\": {\"seconds\": 5}}}, \"image\": \"busybox\", "
	"\"name\": \"sidecar\"}], \"initContainers\": [{\"volumeMounts\": [{\"mountPath\": \"/cache\", "
	"\"name\": \"cache\"}], \"command\": [\"sh\", \"-c\", \"echo ready > /cache/ready\"], "
	"\"image\": \"busybox:1.36\", \"name\": \"setup\"}], "
	"\"volumes\": [{\"emptyDir\": {\"sizeLimit\": \"64Mi\", \"medium\": \"Memory\"}, \"name\": \"cache\"}, "
	"{\"hostPath\": {\"type\": \"DirectoryOrCreate\", \"path\": \"/var/log/web\"}, \"name\": \"logs\"}, "
	"{\"configMap\": {\"optional\": true, \"defaultMode\": 416, \"items\": [{\"mode\": 384, "
	"\"path\": \"conf/app.conf\", \"key\": \"app.conf\"}], \"name\": \"web-config\"}, \"name\": \"config\"}, "
	"{\"secret\": {\"defaultMode\": 256, \"secretName\": \"web-creds\"}, \"name\": \"creds\"}, "
	"{\"name\": \"scratch\"}], \"securityContext\": {\"sysctls\": [{\"value\": \"0\", "
	"\"name\": \"net.ipv4.ip_unprivileged_port_start\"}], "
	"\"seccompProfile\": {\"type\": \"RuntimeDefault\"}, \"supplementalGroups\": [10, 20], "
	"\"runAsNonRoot\": true, \"runAsGroup\": 1000, \"runAsUser\": 1000}, \"hostname\": \"web-0\", "
	"\"shareProcessNamespace\": true, \"hostIPC\": true, \"hostPID\": false, \"hostNetwork\": false, "
	"\"dnsConfig\": {\"options\": [{\"value\": \"2\", \"name\": \"ndots\"}, {\"name\": \"rotate\"}], "
	"\"searches\": [\"svc.example.com\"], \"nameservers\": [\"10.0.0.10\", \"fd00::10\"]}, "
	"\"dnsPolicy\": \"None\", \"activeDeadlineSeconds\": 600, \"terminationGracePeriodSeconds\": 45, "
	"\"restartPolicy\": \"OnFailure\"}, "
	"\"metadata\": {\"annotations\": {\"example.com/note\": \"hello world\"}, "
	"\"labels\": {\"app.kubernetes.io/name\": \"web\", \"app\": \"web\"}, \"uid\": \"0f3c6b1e-web\", "
	"\"namespace\": \"prod\", \"name\": \"web\"}, \"kind\": \"Pod\", \"apiVersion\": \"v1\"}";

static const struct pod_container *container(const struct pod_manifest *m, const char *name)
{
	for (size_t i = 0; i < m->spec.n_containers; i++)
		if (strcmp(m->spec.containers[i].name, name) == 0)
			return &m->spec.containers[i];
	fail_msg("no container %s", name);
	return NULL;
}

static void test_full_yaml(void **state)
{
	struct fx *fx = *state;
	const struct pod_manifest *m = PARSE(fx, full_yaml);
	assert_string_equal(m->file, "web.yaml");
	assert_string_equal(m->metadata.name, "web");
	assert_string_equal(m->metadata.namespace, "prod");
	assert_string_equal(m->metadata.uid, "0f3c6b1e-web");
	/* labels sorted by key */
	assert_int_equal(m->metadata.labels.n, 2);
	assert_string_equal(m->metadata.labels.items[0].key, "app");
	assert_string_equal(m->metadata.labels.items[1].key, "app.kubernetes.io/name");
	assert_string_equal(m->metadata.annotations.items[0].value, "hello world");

	const struct pod_spec *s = &m->spec;
	assert_int_equal(s->restart_policy, POD_RESTART_ON_FAILURE);
	assert_int_equal(s->termination_grace_period_seconds, 45);
	assert_true(s->active_deadline_seconds.set);
	assert_int_equal(s->active_deadline_seconds.value, 600);
	assert_int_equal(s->dns_policy, POD_DNS_NONE);
	assert_string_equal(s->dns_config->nameservers[1], "fd00::10");
	assert_null(s->dns_config->nameservers[2]);
	assert_string_equal(s->dns_config->searches[0], "svc.example.com");
	assert_int_equal(s->dns_config->n_options, 2);
	assert_string_equal(s->dns_config->options[0].value, "2");
	assert_null(s->dns_config->options[1].value);
	assert_false(s->host_network);
	assert_true(s->host_ipc);
	assert_true(s->share_process_namespace);
	assert_string_equal(s->hostname, "web-0");
	assert_int_equal(s->security_context->run_as_user.value, 1000);
	assert_true(s->security_context->run_as_non_root.value);
	assert_int_equal(s->security_context->n_supplemental_groups, 2);
	assert_int_equal(s->security_context->supplemental_groups[1], 20);
	assert_int_equal(s->security_context->seccomp_profile->type, POD_SECCOMP_RUNTIME_DEFAULT);
	assert_string_equal(s->security_context->sysctls[0].value, "0");

	assert_int_equal(s->n_volumes, 5);
	assert_int_equal(s->volumes[0].type, POD_VOLUME_EMPTY_DIR);
	assert_int_equal(s->volumes[0].empty_dir->medium, POD_MEDIUM_MEMORY);
	assert_int_equal(s->volumes[0].empty_dir->size_limit.value, 64 << 20);
	assert_int_equal(s->volumes[1].type, POD_VOLUME_HOST_PATH);
	assert_string_equal(s->volumes[1].host_path->path, "/var/log/web");
	assert_int_equal(s->volumes[1].host_path->type, POD_HOST_PATH_DIRECTORY_OR_CREATE);
	assert_int_equal(s->volumes[2].type, POD_VOLUME_CONFIG_MAP);
	assert_string_equal(s->volumes[2].config_map->name, "web-config");
	assert_int_equal(s->volumes[2].config_map->default_mode, 0640); /* YAML 1.1 octal */
	assert_int_equal(s->volumes[2].config_map->items[0].mode.value, 0600);
	assert_string_equal(s->volumes[2].config_map->items[0].path, "conf/app.conf");
	assert_true(s->volumes[2].config_map->optional);
	assert_int_equal(s->volumes[3].type, POD_VOLUME_SECRET);
	assert_string_equal(s->volumes[3].secret->name, "web-creds");
	assert_int_equal(s->volumes[3].secret->default_mode, 0400);
	assert_int_equal(s->volumes[4].type, POD_VOLUME_EMPTY_DIR); /* no source: emptyDir */

	assert_int_equal(s->n_init_containers, 1);
	assert_string_equal(s->init_containers[0].command[2], "echo ready > /cache/ready");
	assert_int_equal(s->init_containers[0].image_pull_policy, POD_PULL_IF_NOT_PRESENT);

	const struct pod_container *c = container(m, "app");
	assert_int_equal(c->image_pull_policy, POD_PULL_ALWAYS);
	assert_string_equal(c->args[1], "8080");
	assert_string_equal(c->working_dir, "/app");
	assert_int_equal(c->n_env, 6);
	assert_string_equal(c->env[0].value, "production");
	assert_int_equal(c->env[1].value_from->field_ref->field, POD_FIELD_NAME);
	assert_string_equal(c->env[1].value_from->field_ref->api_version, "v1");
	assert_int_equal(c->env[2].value_from->field_ref->field, POD_FIELD_NAMESPACE);
	assert_int_equal(c->env[3].value_from->field_ref->field, POD_FIELD_POD_IP);
	assert_string_equal(c->env[4].value_from->config_map_key_ref->key, "level");
	assert_true(c->env[4].value_from->config_map_key_ref->optional);
	assert_string_equal(c->env[5].value_from->secret_key_ref->name, "web-creds");
	assert_null(c->env[5].value);
	assert_int_equal(c->n_ports, 2);
	assert_int_equal(c->ports[0].host_port, 18080);
	assert_string_equal(c->ports[0].host_ip, "127.0.0.1");
	assert_int_equal(c->ports[1].protocol, POD_PROTOCOL_UDP);
	assert_int_equal(c->resources.requests.cpu_millis.value, 250);
	assert_int_equal(c->resources.limits.cpu_millis.value, 1000);
	assert_int_equal(c->resources.requests.memory_bytes.value, 64 << 20);
	assert_int_equal(c->resources.limits.memory_bytes.value, 1610612736);
	assert_true(c->volume_mounts[0].read_only);
	assert_string_equal(c->volume_mounts[1].sub_path, "app");
	const struct pod_security_context *sc = c->security_context;
	assert_string_equal(sc->capabilities->add[0], "NET_BIND_SERVICE");
	assert_string_equal(sc->capabilities->drop[0], "ALL");
	assert_true(sc->privileged.set);
	assert_false(sc->privileged.value);
	assert_int_equal(sc->run_as_group.value, 1001);
	assert_true(sc->read_only_root_filesystem.value);
	assert_false(sc->allow_privilege_escalation.value);
	assert_string_equal(sc->seccomp_profile->localhost_profile, "profiles/app.json");

	const struct pod_probe *p = c->liveness_probe;
	assert_string_equal(p->http_get->path, "/healthz");
	assert_string_equal(p->http_get->port.name, "http");
	assert_int_equal(p->http_get->port.number, 8080); /* resolved by name */
	assert_int_equal(p->http_get->scheme, POD_SCHEME_HTTPS);
	assert_string_equal(p->http_get->http_headers[0].name, "X-Probe");
	assert_int_equal(p->initial_delay_seconds, 5);
	assert_int_equal(p->timeout_seconds, 2);
	assert_int_equal(p->period_seconds, 15);
	assert_int_equal(p->failure_threshold, 4);
	assert_int_equal(p->termination_grace_period_seconds.value, 10);
	assert_int_equal(c->readiness_probe->tcp_socket->port.number, 8080);
	assert_string_equal(c->readiness_probe->tcp_socket->host, "localhost");
	assert_int_equal(c->readiness_probe->success_threshold, 2);
	assert_string_equal(c->startup_probe->exec->command[1], "/tmp/started");
	assert_int_equal(c->startup_probe->failure_threshold, 30);
	assert_string_equal(c->lifecycle->post_start->exec->command[0], "sh");
	assert_string_equal(c->lifecycle->pre_stop->http_get->path, "/shutdown");
	assert_int_equal(container(m, "sidecar")->lifecycle->pre_stop->sleep->seconds, 5);
	assert_int_equal(pod_manifest_qos(m), POD_QOS_BURSTABLE);
}

static void test_json_equals_yaml(void **state)
{
	struct fx *fx = *state;
	PARSE(fx, full_yaml);
	fx->m2 = parse_ok(fx, full_json);
	_cleanup_free_ char *a = pod_manifest_hash(fx->m);
	_cleanup_free_ char *b = pod_manifest_hash(fx->m2);
	assert_non_null(a);
	assert_int_equal(strlen(a), strlen("sha256:") + 64);
	assert_string_equal(a, b);
	assert_true(pod_manifest_equal(fx->m, fx->m2));
	/* spot checks that the equal digests mean equal trees */
	assert_int_equal(fx->m2->spec.volumes[2].config_map->default_mode, 0640);
	assert_string_equal(fx->m2->metadata.labels.items[0].key, "app");
	assert_int_equal(container(fx->m2, "app")->liveness_probe->http_get->port.number, 8080);
}

#define POD "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n"
#define APP "  containers:\n  - name: app\n    image: busybox\n"

static void test_hash_tracks_content(void **state)
{
	struct fx *fx = *state;
	PARSE(fx, POD "  hostIPC: false\n" APP);
	/* formatting, comments, key order, flow style and explicit defaults do not count */
	fx->m2 = parse_ok(fx, "# a comment\nkind: Pod\napiVersion: v1\nspec: {containers: "
			      "[{image: busybox, name: app, imagePullPolicy: Always}], "
			      "restartPolicy: Always}\nmetadata: {namespace: default, name: web}\n");
	assert_true(pod_manifest_equal(fx->m, fx->m2));
	pod_manifest_free(fx->m2);
	fx->m2 = parse_ok(fx, POD "  containers:\n  - name: app\n    image: busybox:1.36\n");
	assert_false(pod_manifest_equal(fx->m, fx->m2));
	pod_manifest_free(fx->m2);
	fx->m2 = parse_ok(fx, POD APP "    args: [\"\"]\n");
	assert_false(pod_manifest_equal(fx->m, fx->m2));
}

static void test_defaults(void **state)
{
	struct fx *fx = *state;
	const struct pod_manifest *m = PARSE(
		fx, POD "  hostNetwork: true\n  volumes:\n  - name: v\n  - name: c\n"
			"    configMap: {name: c}\n" APP "    ports:\n    - containerPort: 80\n"
			"    env:\n    - name: EMPTY\n    - name: NAME\n      valueFrom:\n"
			"        fieldRef: {fieldPath: metadata.name}\n"
			"    livenessProbe:\n      httpGet: {port: 80}\n"
			"    readinessProbe:\n      tcpSocket: {port: 80}\n      periodSeconds: 0\n");
	assert_string_equal(m->metadata.namespace, "default");
	assert_null(m->metadata.uid);
	assert_int_equal(m->spec.restart_policy, POD_RESTART_ALWAYS);
	assert_int_equal(m->spec.termination_grace_period_seconds, 30);
	assert_false(m->spec.active_deadline_seconds.set);
	assert_int_equal(m->spec.dns_policy, POD_DNS_CLUSTER_FIRST);
	assert_null(m->spec.hostname);
	assert_int_equal(m->spec.volumes[0].type, POD_VOLUME_EMPTY_DIR);
	assert_non_null(m->spec.volumes[0].empty_dir);
	assert_int_equal(m->spec.volumes[0].empty_dir->medium, POD_MEDIUM_DEFAULT);
	assert_false(m->spec.volumes[0].empty_dir->size_limit.set);
	assert_int_equal(m->spec.volumes[1].config_map->default_mode, 0644);
	const struct pod_container *c = &m->spec.containers[0];
	assert_int_equal(c->image_pull_policy, POD_PULL_ALWAYS);
	assert_null(c->command);
	assert_null(c->security_context);
	assert_int_equal(c->ports[0].protocol, POD_PROTOCOL_TCP);
	assert_int_equal(c->ports[0].host_port, 80); /* hostNetwork */
	assert_string_equal(c->env[0].value, "");
	assert_string_equal(c->env[1].value_from->field_ref->api_version, "v1");
	const struct pod_probe *probes[] = { c->liveness_probe, c->readiness_probe };
	for (size_t i = 0; i < ARRAY_SIZE(probes); i++) {
		assert_int_equal(probes[i]->initial_delay_seconds, 0);
		assert_int_equal(probes[i]->timeout_seconds, 1);
		assert_int_equal(probes[i]->period_seconds, 10);
		assert_int_equal(probes[i]->success_threshold, 1);
		assert_int_equal(probes[i]->failure_threshold, 3);
		assert_false(probes[i]->termination_grace_period_seconds.set);
	}
	assert_string_equal(c->liveness_probe->http_get->path, "/");
	assert_int_equal(c->liveness_probe->http_get->scheme, POD_SCHEME_HTTP);
	assert_null(c->liveness_probe->http_get->host);
	assert_null(c->liveness_probe->http_get->port.name);
	assert_int_equal(pod_manifest_qos(m), POD_QOS_BEST_EFFORT);
}

static void test_pull_policy_defaults(void **state)
{
	struct fx *fx = *state;
	static const struct {
		const char *image;
		enum pod_pull_policy want;
	} cases[] = {
		{ "busybox", POD_PULL_ALWAYS },
		{ "busybox:latest", POD_PULL_ALWAYS },
		{ "busybox:1.36", POD_PULL_IF_NOT_PRESENT },
		{ "registry.local:5000/busybox", POD_PULL_ALWAYS },
		{ "registry.local:5000/busybox:1", POD_PULL_IF_NOT_PRESENT },
		{ "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		  POD_PULL_IF_NOT_PRESENT },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char text[512];
		snprintf(text, sizeof(text), POD "  containers:\n  - name: a\n    image: \"%s\"\n",
			 cases[i].image);
		struct pod_manifest *m = parse_ok(fx, text);
		if (m->spec.containers[0].image_pull_policy != cases[i].want)
			fail_msg("%s: policy %d", cases[i].image,
				 (int)m->spec.containers[0].image_pull_policy);
		pod_manifest_free(m);
	}
}

/* ---- refusals: each with its exact message ---- */

#define C0 "web.yaml: spec.containers[0]."
static const struct {
	const char *text;
	const char *want;
} refusals[] = {
	{ POD APP "    resources:\n      limits:\n        memory: 12Q\n",
	  C0 "resources.limits.memory: invalid quantity \"12Q\"" },
	{ POD APP "    resources:\n      requests: {cpu: 1.5.0}\n",
	  C0 "resources.requests.cpu: invalid quantity \"1.5.0\"" },
	{ POD APP "    resources:\n      limits: {memory: -1}\n",
	  C0 "resources.limits.memory: negative quantity \"-1\"" },
	{ POD APP "    resources:\n      limits: {memory: true}\n",
	  C0 "resources.limits.memory: expected a quantity" },
	{ POD APP "    resources:\n      limits: {nvidia.com/gpu: 1}\n",
	  C0 "resources.limits.nvidia.com/gpu: not supported by berth" },
	{ POD APP "    resources:\n      requests: {cpu: 2}\n      limits: {cpu: 1}\n",
	  C0 "resources.requests.cpu: must be less than or equal to the limit" },
	{ POD "  containres: []\n" APP, "web.yaml: spec.containres: unknown field" },
	{ POD APP "    imagePullPolcy: Always\n", C0 "imagePullPolcy: unknown field" },
	{ POD "  affinity:\n    nodeAffinity: {}\n" APP, "web.yaml: spec.affinity: not supported by berth" },
	{ POD APP "    stdinOnce: true\n", C0 "stdinOnce: not supported by berth" },
	{ POD "  ephemeralContainers:\n  - name: debug\n" APP,
	  "web.yaml: spec.ephemeralContainers: not supported by berth" },
	{ POD "  volumes:\n  - name: v\n    nfs: {server: nas, path: /x}\n" APP,
	  "web.yaml: spec.volumes[0].nfs: not supported by berth" },
	{ POD APP "    livenessProbe:\n      grpc: {port: 9000}\n",
	  C0 "livenessProbe.grpc: not supported by berth" },
	{ POD APP "    securityContext:\n      seLinuxOptions: {level: s0}\n",
	  C0 "securityContext.seLinuxOptions: not supported by berth" },
	{ POD "  securityContext:\n    fsGroup: 2000\n" APP,
	  "web.yaml: spec.securityContext.fsGroup: not supported by berth" },
	{ POD APP "    env:\n    - name: UID\n      valueFrom:\n        fieldRef: {fieldPath: metadata.uid}\n",
	  C0 "env[0].valueFrom.fieldRef.fieldPath: \"metadata.uid\" is not supported by berth" },
	{ "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  generateName: web-\nspec:\n" APP,
	  "web.yaml: metadata.generateName: not supported by berth" },
	{ POD APP "status:\n  phase: Running\n", "web.yaml: status: not supported by berth" },
	{ POD APP "  - name: app\n    image: nginx\n",
	  "web.yaml: spec.containers[1].name: duplicate container name \"app\"" },
	{ POD "  initContainers:\n  - name: app\n    image: busybox\n" APP,
	  "web.yaml: spec.containers[0].name: duplicate container name \"app\"" },
	{ POD APP "    volumeMounts:\n    - name: data\n      mountPath: /data\n",
	  C0 "volumeMounts[0].name: no volume named \"data\"" },
	{ POD APP "    ports:\n    - containerPort: 0\n",
	  C0 "ports[0].containerPort: must be between 1 and 65535" },
	{ POD APP "    ports:\n    - containerPort: 70000\n",
	  C0 "ports[0].containerPort: must be between 1 and 65535" },
	{ POD APP "    ports:\n    - containerPort: 53\n      protocol: SCTP\n",
	  C0 "ports[0].protocol: \"SCTP\" is not supported by berth" },
	{ POD APP "    ports:\n    - containerPort: 53\n      protocol: tcp\n",
	  C0 "ports[0].protocol: invalid value \"tcp\": must be one of TCP, UDP" },
	{ POD APP "    ports:\n    - containerPort: 80\n      name: Web_Port\n",
	  C0 "ports[0].name: invalid value \"Web_Port\": must be a port name (at most 15 lowercase "
	     "letters, digits and single '-', with at least one letter)" },
	{ POD APP "    ports:\n    - {containerPort: 80, name: http}\n    - {containerPort: 81, name: http}\n",
	  C0 "ports[1].name: duplicate port name \"http\"" },
	{ POD APP "    ports:\n    - {containerPort: 80, hostPort: 8080}\n"
		  "  - name: b\n    image: busybox\n    ports:\n    - {containerPort: 81, hostPort: 8080}\n",
	  "web.yaml: spec.containers[1].ports[0].hostPort: host port 8080/TCP on all addresses is "
	  "already used" },
	{ POD "  hostNetwork: true\n" APP "    ports:\n    - {containerPort: 80, hostPort: 8080}\n",
	  C0 "ports[0].hostPort: must equal containerPort with hostNetwork" },
	{ "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\n",
	  "web.yaml: line 4 column 1: more than one YAML document: a manifest holds one Pod" },
	{ "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 2}\n",
	  "web.yaml: apiVersion: must be \"v1\", not \"apps/v1\" (berth runs Pods)" },
	{ "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n",
	  "web.yaml: kind: must be \"Pod\", not \"Service\" (berth runs Pods)" },
	{ "kind: Pod\nmetadata: {name: web}\n", "web.yaml: apiVersion: required" },
	{ POD "  containers:\n  - name: app\n\timage: busybox\n",
	  "web.yaml: line 8 column 1: found a tab character that violates indentation while "
	  "scanning a plain scalar" },
	{ POD "  containers: [\n", "web.yaml: line 7 column 1: did not find expected node content "
				 "while parsing a flow node" },
	{ POD APP "    image: nginx\n", C0 "image: duplicate key" },
	{ "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {a: x, b: y, a: z}\nspec:\n" APP,
	  "web.yaml: metadata.labels.a: duplicate key" },
	{ "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {app: \"-web\"}\nspec:\n" APP,
	  "web.yaml: metadata.labels.app: invalid value \"-web\": must be empty or at most 63 "
	  "letters, digits, '-', '_' and '.', starting and ending with a letter or digit" },
	{ POD "  containers: app\n", "web.yaml: spec.containers: expected a list" },
	{ POD "  containers:\n  - app\n", "web.yaml: spec.containers[0]: expected a map" },
	{ POD "  containers:\n  - name: 5\n    image: busybox\n", C0 "name: expected a string" },
	{ POD APP "    env:\n    - name: DEBUG\n      value: yes\n", C0 "env[0].value: expected a string" },
	{ POD "  hostNetwork: \"true\"\n" APP, "web.yaml: spec.hostNetwork: expected a boolean" },
	{ POD "  terminationGracePeriodSeconds: \"30\"\n" APP,
	  "web.yaml: spec.terminationGracePeriodSeconds: expected an integer" },
	{ POD "  terminationGracePeriodSeconds: -1\n" APP,
	  "web.yaml: spec.terminationGracePeriodSeconds: must be at least 0" },
	{ POD "  securityContext:\n    runAsUser: 99999999999999999999\n" APP,
	  "web.yaml: spec.securityContext.runAsUser: must be between 0 and 2147483647" },
	{ "apiVersion: v1\nkind: Pod\nmetadata:\n  name: Web_1\nspec:\n" APP,
	  "web.yaml: metadata.name: invalid value \"Web_1\": must be a DNS-1123 subdomain (at most "
	  "253 characters: DNS-1123 labels joined by '.')" },
	{ POD "  containers:\n  - name: App\n    image: busybox\n",
	  C0 "name: invalid value \"App\": must be a DNS-1123 label (at most 63 lowercase letters, "
	     "digits and '-', starting and ending with a letter or digit)" },
	{ POD "  containers:\n  - name: app\n", C0 "image: required" },
	{ "apiVersion: v1\nkind: Pod\nmetadata:\n  namespace: x\nspec:\n" APP,
	  "web.yaml: metadata.name: required" },
	{ POD "  containers: []\n", "web.yaml: spec.containers: must have at least one container" },
	{ POD APP "    env:\n    - name: A\n      value: x\n      valueFrom:\n"
		  "        fieldRef: {fieldPath: metadata.name}\n",
	  C0 "env[0].valueFrom: may not be set together with value" },
	{ POD APP "    env:\n    - name: A\n      valueFrom:\n        fieldRef: {fieldPath: metadata.name}\n"
		  "        secretKeyRef: {name: s, key: k}\n",
	  C0 "env[0].valueFrom: must have exactly one of fieldRef, configMapKeyRef, secretKeyRef" },
	{ POD APP "    env:\n    - name: A=B\n",
	  C0 "env[0].name: invalid value \"A=B\": must be a variable name (printable ASCII without "
	     "'=')" },
	{ POD APP "    livenessProbe:\n      exec: {command: [true]}\n",
	  C0 "livenessProbe.exec.command[0]: expected a string" },
	{ POD APP "    livenessProbe:\n      exec: {command: [\"true\"]}\n      tcpSocket: {port: 80}\n",
	  C0 "livenessProbe: must have exactly one of exec, httpGet, tcpSocket" },
	{ POD APP "    readinessProbe:\n      periodSeconds: 5\n",
	  C0 "readinessProbe: must have exactly one of exec, httpGet, tcpSocket" },
	{ POD APP "    livenessProbe:\n      httpGet: {port: http}\n",
	  C0 "livenessProbe.httpGet.port: no container port named \"http\"" },
	{ POD APP "    livenessProbe:\n      tcpSocket: {port: 80}\n      successThreshold: 2\n",
	  C0 "livenessProbe.successThreshold: must be 1" },
	{ POD APP "    livenessProbe:\n      tcpSocket: {port: 80}\n      timeoutSeconds: -1\n",
	  C0 "livenessProbe.timeoutSeconds: must be between 0 and 2147483647" },
	{ POD APP "    readinessProbe:\n      tcpSocket: {port: 80}\n"
		  "      terminationGracePeriodSeconds: 5\n",
	  C0 "readinessProbe.terminationGracePeriodSeconds: not allowed in a readiness probe" },
	{ POD APP "    lifecycle:\n      preStop: {tcpSocket: {port: 80}}\n",
	  C0 "lifecycle.preStop.tcpSocket: not supported by berth" },
	{ POD "  initContainers:\n  - name: init\n    image: busybox\n    readinessProbe:\n"
	      "      tcpSocket: {port: 80}\n" APP,
	  "web.yaml: spec.initContainers[0].readinessProbe: not allowed in an init container" },
	{ POD "  volumes:\n  - name: v\n    emptyDir: {}\n    hostPath: {path: /tmp}\n" APP,
	  "web.yaml: spec.volumes[0]: may not have more than one volume source" },
	{ POD "  volumes:\n  - name: v\n  - name: v\n" APP,
	  "web.yaml: spec.volumes[1].name: duplicate volume name \"v\"" },
	{ POD "  volumes:\n  - name: v\n    hostPath: {path: var/log}\n" APP,
	  "web.yaml: spec.volumes[0].hostPath.path: invalid value \"var/log\": must be an absolute "
	  "path" },
	{ POD "  volumes:\n  - name: v\n    emptyDir: {medium: HugePages}\n" APP,
	  "web.yaml: spec.volumes[0].emptyDir.medium: \"HugePages\" is not supported by berth" },
	{ POD "  volumes:\n  - name: v\n    emptyDir: {sizeLimit: 1Gb}\n" APP,
	  "web.yaml: spec.volumes[0].emptyDir.sizeLimit: invalid quantity \"1Gb\"" },
	{ POD "  volumes:\n  - name: v\n    secret: {secretName: s, defaultMode: 01000}\n" APP,
	  "web.yaml: spec.volumes[0].secret.defaultMode: must be between 0 and 511" },
	{ POD "  volumes:\n  - name: v\n    emptyDir: {}\n" APP
	      "    volumeMounts:\n    - {name: v, mountPath: /v, subPath: ../etc}\n",
	  C0 "volumeMounts[0].subPath: invalid value \"../etc\": must be a relative path without "
	     "\"..\" elements" },
	{ POD "  dnsPolicy: None\n" APP, "web.yaml: spec.dnsConfig: required with dnsPolicy None" },
	{ POD "  restartPolicy: Sometimes\n" APP,
	  "web.yaml: spec.restartPolicy: invalid value \"Sometimes\": must be one of Always, "
	  "OnFailure, Never" },
	{ POD "  hostPID: true\n  shareProcessNamespace: true\n" APP,
	  "web.yaml: spec.shareProcessNamespace: may not be set with hostPID" },
	{ POD APP "    securityContext:\n      seccompProfile: {type: Localhost}\n",
	  C0 "securityContext.seccompProfile.localhostProfile: required with type Localhost" },
	{ POD APP "    securityContext:\n      capabilities: {add: [net_admin]}\n",
	  C0 "securityContext.capabilities.add[0]: invalid value \"net_admin\": must be a capability "
	     "name (\"NET_ADMIN\", \"ALL\")" },
	{ "base: &b {name: web}\napiVersion: v1\nkind: Pod\nmetadata: *b\n",
	  "web.yaml: line 4 column 11: YAML aliases are not supported by berth" },
	{ "- apiVersion: v1\n", "web.yaml: (document): expected a map (a Pod)" },
	{ "", "web.yaml: empty manifest" },
	{ "# nothing but a comment\n", "web.yaml: empty manifest" },
	{ POD APP "    \"com\\nmand\": [sh]\n", C0 "com?mand: unknown field" },
	{ POD APP "    command: !!binary aGVsbG8=\n",
	  "web.yaml: line 9 column 14: YAML tags are not supported by berth" },
};

static void test_refusals(void **state)
{
	struct fx *fx = *state;
	size_t failed = 0;
	assert_true(ARRAY_SIZE(refusals) >= 30);
	for (size_t i = 0; i < ARRAY_SIZE(refusals); i++) {
		struct pod_manifest *m = NULL;
		berth_error_freep(&fx->err);
		int r = pod_manifest_parse(refusals[i].text, strlen(refusals[i].text), "web.yaml", &m,
					   &fx->err);
		if (r != -EINVAL || !fx->err || m)
			fail_msg("case %zu (%s): r=%d, no error", i, refusals[i].want, r);
		if (strcmp(fx->err->msg, refusals[i].want) != 0) {
			print_error("case %zu:\n got: %s\nwant: %s\n", i, fx->err->msg,
				    refusals[i].want);
			failed++;
		}
		assert_int_equal(fx->err->code, EINVAL);
		assert_null(strchr(fx->err->msg, '\n'));
	}
	assert_int_equal(failed, 0);
}

static void test_accepts_kubectl_output(void **state)
{
	struct fx *fx = *state;
	/* what `kubectl run --dry-run=client -o yaml` writes: empty values of unsupported fields */
	const struct pod_manifest *m =
		PARSE(fx, "apiVersion: v1\nkind: Pod\nmetadata:\n  creationTimestamp: null\n"
			  "  labels:\n    run: web\n  name: web\nspec:\n  containers:\n  - image: nginx\n"
			  "    name: web\n    resources: {}\n  dnsPolicy: ClusterFirst\n"
			  "  restartPolicy: Always\nstatus: {}\n");
	assert_string_equal(m->metadata.labels.items[0].value, "web");
	assert_null(m->spec.containers[0].command);
}

static void test_too_large(void **state)
{
	struct fx *fx = *state;
	struct pod_manifest *m = NULL;
	size_t len = (4u << 20) + 1;
	char *big = malloc(len);
	assert_non_null(big);
	memset(big, ' ', len);
	assert_int_equal(pod_manifest_parse(big, len, "big.yaml", &m, &fx->err), -E2BIG);
	assert_null(m);
	assert_string_equal(fx->err->msg, "big.yaml: larger than 4194304 bytes");
	free(big);
}

static void test_not_nul_terminated(void **state)
{
	struct fx *fx = *state;
	const char text[] = POD APP "    args: [a]\nGARBAGE";
	struct pod_manifest *m = NULL;
	MUST_OK(fx, pod_manifest_parse(text, strlen(text) - strlen("GARBAGE"), NULL, &m, &fx->err));
	fx->m = m;
	assert_string_equal(m->file, "<manifest>");
	assert_string_equal(m->spec.containers[0].args[0], "a");
	assert_null(m->spec.containers[0].args[1]);
	assert_null(pod_manifest_free(NULL));
}

/* ---- quantities ---- */

static const struct {
	const char *text;
	enum k8s_quantity_unit unit;
	int64_t want;
} quantities[] = {
	{ "0", K8S_QUANTITY_UNITS, 0 },
	{ "1", K8S_QUANTITY_UNITS, 1 },
	{ "128974848", K8S_QUANTITY_UNITS, 128974848 },
	{ "129e6", K8S_QUANTITY_UNITS, 129000000 },
	{ "129M", K8S_QUANTITY_UNITS, 129000000 },
	{ "123Mi", K8S_QUANTITY_UNITS, 128974848 },
	{ "1k", K8S_QUANTITY_UNITS, 1000 },
	{ "1Ki", K8S_QUANTITY_UNITS, 1024 },
	{ "1.5Gi", K8S_QUANTITY_UNITS, 1610612736 },
	{ "1.1Gi", K8S_QUANTITY_UNITS, 1181116007 }, /* 1181116006.4, rounded up */
	{ ".5Ki", K8S_QUANTITY_UNITS, 512 },
	{ "5.", K8S_QUANTITY_UNITS, 5 },
	{ "+5", K8S_QUANTITY_UNITS, 5 },
	{ "-0", K8S_QUANTITY_UNITS, 0 },
	{ "0.5", K8S_QUANTITY_UNITS, 1 },
	{ "500m", K8S_QUANTITY_UNITS, 1 },
	{ "1e3", K8S_QUANTITY_UNITS, 1000 },
	{ "1E3", K8S_QUANTITY_UNITS, 1000 },
	{ "1e-3", K8S_QUANTITY_UNITS, 1 },
	{ "1E", K8S_QUANTITY_UNITS, 1000000000000000000 },
	{ "1T", K8S_QUANTITY_UNITS, 1000000000000 },
	{ "1P", K8S_QUANTITY_UNITS, 1000000000000000 },
	{ "1Ti", K8S_QUANTITY_UNITS, 1099511627776 },
	{ "1Pi", K8S_QUANTITY_UNITS, 1125899906842624 },
	{ "7Ei", K8S_QUANTITY_UNITS, 8070450532247928832 },
	{ "9223372036854775807", K8S_QUANTITY_UNITS, INT64_MAX },
	{ "0.000000000000000000000000000000000000000000001", K8S_QUANTITY_UNITS, 1 },
	{ "500m", K8S_QUANTITY_MILLI, 500 },
	{ "0.5", K8S_QUANTITY_MILLI, 500 },
	{ "2", K8S_QUANTITY_MILLI, 2000 },
	{ "1.5", K8S_QUANTITY_MILLI, 1500 },
	{ "0.0001", K8S_QUANTITY_MILLI, 1 },
	{ "100u", K8S_QUANTITY_MILLI, 1 },
	{ "1000000n", K8S_QUANTITY_MILLI, 1 },
	{ "250m", K8S_QUANTITY_MILLI, 250 },
	{ "1k", K8S_QUANTITY_MILLI, 1000000 },
	{ "1Ki", K8S_QUANTITY_MILLI, 1024000 },
	{ "2e-1", K8S_QUANTITY_MILLI, 200 },
};

static const char *const bad_quantities[] = {
	"12Q", "", "1.2.3", "1 Gi", " 1", "Gi", "1gi", "1K", "1KI", "1e", "1e+", "1Mi5", "-", ".",
	"+", "1.5e3.2", "0x10", "abc", "1iB", "1m5", "e3", "1,5",
};

static void test_quantities(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(quantities); i++) {
		struct berth_error *err = NULL;
		int64_t v = -1;
		int r = k8s_quantity_parse(quantities[i].text, quantities[i].unit, &v, &err);
		if (r < 0 || v != quantities[i].want)
			fail_msg("%s: r=%d v=%" PRId64 " want %" PRId64 " (%s)", quantities[i].text, r,
				 v, quantities[i].want, err ? err->msg : "");
		assert_null(err);
	}
}

static void test_bad_quantities(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad_quantities); i++) {
		struct berth_error *err = NULL;
		int64_t v = 42;
		assert_int_equal(k8s_quantity_parse(bad_quantities[i], K8S_QUANTITY_UNITS, &v, &err),
				 -EINVAL);
		char want[64];
		snprintf(want, sizeof(want), "invalid quantity \"%s\"", bad_quantities[i]);
		assert_string_equal(err->msg, want);
		assert_int_equal(v, 42); /* untouched */
		berth_error_free(err);
	}
	static const struct {
		const char *text;
		enum k8s_quantity_unit unit;
		int code;
		const char *want;
	} others[] = {
		{ "-1", K8S_QUANTITY_UNITS, EINVAL, "negative quantity \"-1\"" },
		{ "-500m", K8S_QUANTITY_MILLI, EINVAL, "negative quantity \"-500m\"" },
		{ "8Ei", K8S_QUANTITY_UNITS, ERANGE, "quantity \"8Ei\" is too large" },
		{ "9223372036854775808", K8S_QUANTITY_UNITS, ERANGE,
		  "quantity \"9223372036854775808\" is too large" },
		{ "9223372036854775807", K8S_QUANTITY_MILLI, ERANGE,
		  "quantity \"9223372036854775807\" is too large" },
		{ "1e100000000", K8S_QUANTITY_UNITS, ERANGE, "quantity \"1e100000000\" is too large" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(others); i++) {
		struct berth_error *err = NULL;
		int64_t v;
		assert_int_equal(k8s_quantity_parse(others[i].text, others[i].unit, &v, &err),
				 -others[i].code);
		assert_string_equal(err->msg, others[i].want);
		berth_error_free(err);
	}
}

static void test_quantity_format(void **state)
{
	(void)state;
	static const struct {
		int64_t v;
		enum k8s_quantity_unit unit;
		const char *want;
	} cases[] = {
		{ 0, K8S_QUANTITY_UNITS, "0" },
		{ 1000, K8S_QUANTITY_UNITS, "1000" },
		{ 1024, K8S_QUANTITY_UNITS, "1Ki" },
		{ 1610612736, K8S_QUANTITY_UNITS, "1536Mi" },
		{ 8070450532247928832, K8S_QUANTITY_UNITS, "7Ei" },
		{ INT64_MAX, K8S_QUANTITY_UNITS, "9223372036854775807" },
		{ 500, K8S_QUANTITY_MILLI, "500m" },
		{ 2000, K8S_QUANTITY_MILLI, "2" },
		{ 1, K8S_QUANTITY_MILLI, "1m" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char buf[K8S_QUANTITY_MAX];
		int64_t back = -1;
		assert_string_equal(k8s_quantity_format(cases[i].v, cases[i].unit, buf), cases[i].want);
		assert_int_equal(k8s_quantity_parse(buf, cases[i].unit, &back, NULL), 0);
		assert_int_equal(back, cases[i].v);
	}
	/* and every parsed value of the table formats to a text that parses back to it */
	for (size_t i = 0; i < ARRAY_SIZE(quantities); i++) {
		char buf[K8S_QUANTITY_MAX];
		int64_t back = -1;
		k8s_quantity_format(quantities[i].want, quantities[i].unit, buf);
		assert_int_equal(k8s_quantity_parse(buf, quantities[i].unit, &back, NULL), 0);
		assert_int_equal(back, quantities[i].want);
	}
}

/* ---- QoS ---- */

static void test_qos(void **state)
{
	struct fx *fx = *state;
#define RES(x) "    resources: " x "\n"
#define CTR2(x) "  - name: b\n    image: busybox\n" x
	static const struct {
		const char *text;
		enum pod_qos want;
	} cases[] = {
		{ POD APP, POD_QOS_BEST_EFFORT },
		{ POD APP RES("{limits: {cpu: 0, memory: 0}}"), POD_QOS_BEST_EFFORT },
		{ POD APP RES("{limits: {cpu: 1, memory: 1Gi}}"), POD_QOS_GUARANTEED },
		{ POD APP RES("{limits: {cpu: 1, memory: 1Gi}, requests: {cpu: 1000m, memory: 1024Mi}}"),
		  POD_QOS_GUARANTEED },
		{ POD APP RES("{limits: {cpu: 1, memory: 1Gi}, requests: {cpu: 500m}}"),
		  POD_QOS_BURSTABLE },
		{ POD APP RES("{requests: {memory: 1Gi}}"), POD_QOS_BURSTABLE },
		{ POD APP RES("{limits: {cpu: 1}}"), POD_QOS_BURSTABLE },
		{ POD APP RES("{limits: {cpu: 1, memory: 1Gi}}") CTR2(RES("{limits: {cpu: 2, memory: 2Gi}}")),
		  POD_QOS_GUARANTEED },
		{ POD APP RES("{limits: {cpu: 1, memory: 1Gi}}") CTR2(""), POD_QOS_BURSTABLE },
		{ POD "  initContainers:\n  - name: i\n    image: busybox\n" APP
			  RES("{limits: {cpu: 1, memory: 1Gi}}"),
		  POD_QOS_BURSTABLE },
		{ POD "  initContainers:\n  - name: i\n    image: busybox\n"
		      "    resources: {limits: {cpu: 1, memory: 1Gi}}\n" APP
			  RES("{limits: {cpu: 1, memory: 1Gi}}"),
		  POD_QOS_GUARANTEED },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct pod_manifest *m = parse_ok(fx, cases[i].text);
		if (pod_manifest_qos(m) != cases[i].want)
			fail_msg("case %zu: %s, want %s", i, pod_qos_name(pod_manifest_qos(m)),
				 pod_qos_name(cases[i].want));
		pod_manifest_free(m);
	}
	assert_string_equal(pod_qos_name(POD_QOS_BEST_EFFORT), "BestEffort");
	assert_string_equal(pod_qos_name(POD_QOS_BURSTABLE), "Burstable");
	assert_string_equal(pod_qos_name(POD_QOS_GUARANTEED), "Guaranteed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_full_yaml, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_equals_yaml, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hash_tracks_content, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pull_policy_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_accepts_kubectl_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_nul_terminated, setup, teardown),
		cmocka_unit_test(test_quantities),
		cmocka_unit_test(test_bad_quantities),
		cmocka_unit_test(test_quantity_format),
		cmocka_unit_test_setup_teardown(test_qos, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
