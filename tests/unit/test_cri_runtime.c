/* cri/cri-runtime*.c: the CRI messages converted to berth's requests (fields filled, refusals
 * named), and the RuntimeService handlers that answer without a manager (Version, Status,
 * RuntimeConfig, the refusals of RunPodSandbox and the streaming calls' checks of their fields).
 * The handlers that drive pods and containers are tested against a real berthd
 * (tests/integration/test_cri.py, test_stream.py). */
#include "unit.h"

#include "base/cleanup.h"
#include "cri/config.h"
#include "cri/cri-runtime.h"

struct fx {
	struct berth_error *err;
	struct pod_config pod;
	struct container_config ctr;
	struct berthd_config cfg;
	struct cri_services ctx;
	uint8_t *buf;
	size_t len;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->cfg.network = "bridge";
	f->cfg.root = "/var/lib/berth-test";
	f->cfg.state = "/run/berth-test";
	f->ctx.config = &f->cfg;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	berth_error_free(f->err);
	pod_config_clear(&f->pod);
	container_config_clear(&f->ctr);
	free(f->buf);
	free(f);
	return 0;
}

/* ---- the pod's config ---- */

static Runtime__V1__PodSandboxMetadata md = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;

static void fill_pod(Runtime__V1__PodSandboxConfig *pb)
{
	md.name = "web";
	md.namespace_ = "default";
	md.uid = "u-1";
	md.attempt = 2;
	pb->metadata = &md;
	pb->hostname = "web-0";
}

static void test_pod_config(void **state)
{
	struct fx *f = *state;
	Runtime__V1__PodSandboxConfig pb = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
	fill_pod(&pb);
	char *servers[] = { "10.0.0.10" };
	Runtime__V1__DNSConfig dns = RUNTIME__V1__DNSCONFIG__INIT;
	dns.n_servers = 1;
	dns.servers = servers;
	pb.dns_config = &dns;
	Runtime__V1__PortMapping port = RUNTIME__V1__PORT_MAPPING__INIT;
	port.protocol = RUNTIME__V1__PROTOCOL__UDP;
	port.container_port = 53;
	port.host_port = 5353;
	Runtime__V1__PortMapping *ports[] = { &port };
	pb.n_port_mappings = 1;
	pb.port_mappings = ports;
	Runtime__V1__PodSandboxConfig__LabelsEntry label =
		RUNTIME__V1__POD_SANDBOX_CONFIG__LABELS_ENTRY__INIT;
	label.key = "app";
	label.value = "web";
	Runtime__V1__PodSandboxConfig__LabelsEntry *labels[] = { &label };
	pb.n_labels = 1;
	pb.labels = labels;
	Runtime__V1__NamespaceOption ns = RUNTIME__V1__NAMESPACE_OPTION__INIT;
	ns.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
	ns.pid = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
	Runtime__V1__LinuxSandboxSecurityContext sc = RUNTIME__V1__LINUX_SANDBOX_SECURITY_CONTEXT__INIT;
	sc.namespace_options = &ns;
	Runtime__V1__LinuxPodSandboxConfig lx = RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
	lx.cgroup_parent = "/kubepods/pod1";
	lx.security_context = &sc;
	pb.linux = &lx;

	assert_int_equal(cri_pod_config_from_pb(&pb, &f->pod, &f->err), 0);
	assert_string_equal(f->pod.name, "web");
	assert_string_equal(f->pod.namespace_, "default");
	assert_string_equal(f->pod.uid, "u-1");
	assert_int_equal(f->pod.attempt, 2);
	assert_string_equal(f->pod.hostname, "web-0");
	assert_null(f->pod.log_directory); /* "" is not given */
	assert_true(f->pod.has_dns);
	assert_string_equal(f->pod.dns_servers[0], "10.0.0.10");
	assert_null(f->pod.dns_servers[1]);
	assert_int_equal(f->pod.n_ports, 1);
	assert_string_equal(f->pod.ports[0].protocol, "UDP");
	assert_int_equal(f->pod.ports[0].host_port, 5353);
	assert_string_equal(f->pod.labels_json, "{\"app\":\"web\"}");
	assert_null(f->pod.annotations_json);
	assert_string_equal(f->pod.cgroup_parent, "/kubepods/pod1");
	assert_int_equal(f->pod.net_mode, NS_MODE_NODE);
	assert_int_equal(f->pod.pid_mode, NS_MODE_CONTAINER);
	assert_int_equal(f->pod.ipc_mode, NS_MODE_POD);

	/* what the manager stores reads back the same */
	_cleanup_free_ char *json = NULL;
	struct pod_config back = { 0 };
	assert_int_equal(pod_config_to_json(&f->pod, &json), 0);
	assert_int_equal(pod_config_from_text(json, &back, &f->err), 0);
	assert_string_equal(back.cgroup_parent, "/kubepods/pod1");
	assert_int_equal(back.net_mode, NS_MODE_NODE);
	pod_config_clear(&back);
}

static void test_pod_config_refused(void **state)
{
	struct fx *f = *state;
	Runtime__V1__PodSandboxConfig pb = RUNTIME__V1__POD_SANDBOX_CONFIG__INIT;
	assert_int_equal(cri_pod_config_from_pb(NULL, &f->pod, &f->err), -EINVAL);
	berth_error_freep(&f->err);
	/* metadata without a uid */
	Runtime__V1__PodSandboxMetadata partial = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
	partial.name = "a";
	partial.namespace_ = "b";
	pb.metadata = &partial;
	assert_int_equal(cri_pod_config_from_pb(&pb, &f->pod, &f->err), -EINVAL);
	assert_contains(f->err->msg, "config.metadata");
	berth_error_freep(&f->err);

	/* sysctls are not silently dropped */
	fill_pod(&pb);
	Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry sysctl =
		RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__SYSCTLS_ENTRY__INIT;
	sysctl.key = "net.ipv4.ip_forward";
	sysctl.value = "1";
	Runtime__V1__LinuxPodSandboxConfig__SysctlsEntry *sysctls[] = { &sysctl };
	Runtime__V1__LinuxPodSandboxConfig lx = RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
	lx.n_sysctls = 1;
	lx.sysctls = sysctls;
	pb.linux = &lx;
	assert_int_equal(cri_pod_config_from_pb(&pb, &f->pod, &f->err), -EINVAL);
	assert_contains(f->err->msg, "config.linux.sysctls");
	assert_contains(f->err->msg, "net.ipv4.ip_forward");
	assert_null(f->pod.name); /* nothing filled on failure */
	berth_error_freep(&f->err);

	/* a port out of range */
	pb.linux = NULL;
	Runtime__V1__PortMapping port = RUNTIME__V1__PORT_MAPPING__INIT;
	port.container_port = 70000;
	Runtime__V1__PortMapping *ports[] = { &port };
	pb.n_port_mappings = 1;
	pb.port_mappings = ports;
	assert_int_equal(cri_pod_config_from_pb(&pb, &f->pod, &f->err), -EINVAL);
	assert_contains(f->err->msg, "config.port_mappings[0]");
}

/* ---- the container's config ---- */

static Runtime__V1__ContainerMetadata cmd_ = RUNTIME__V1__CONTAINER_METADATA__INIT;
static Runtime__V1__ImageSpec image = RUNTIME__V1__IMAGE_SPEC__INIT;

static void fill_ctr(Runtime__V1__ContainerConfig *pb)
{
	cmd_.name = "app";
	cmd_.attempt = 1;
	image.image = "busybox:latest";
	pb->metadata = &cmd_;
	pb->image = &image;
}

static void test_container_config(void **state)
{
	struct fx *f = *state;
	Runtime__V1__ContainerConfig pb = RUNTIME__V1__CONTAINER_CONFIG__INIT;
	fill_ctr(&pb);
	char *command[] = { "/bin/sh", "-c" }, *args[] = { "echo hi" };
	pb.n_command = 2;
	pb.command = command;
	pb.n_args = 1;
	pb.args = args;
	Runtime__V1__KeyValue env = RUNTIME__V1__KEY_VALUE__INIT;
	env.key = "A";
	env.value = "b=c";
	Runtime__V1__KeyValue *envs[] = { &env };
	pb.n_envs = 1;
	pb.envs = envs;
	Runtime__V1__Mount mount = RUNTIME__V1__MOUNT__INIT;
	mount.container_path = "/data";
	mount.host_path = "/srv/data";
	mount.readonly = true;
	mount.propagation = RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER;
	Runtime__V1__Mount *mounts[] = { &mount };
	pb.n_mounts = 1;
	pb.mounts = mounts;
	pb.log_path = "app/1.log";
	pb.tty = true;
	Runtime__V1__LinuxContainerResources res = RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
	res.cpu_quota = 50000;
	res.memory_limit_in_bytes = 1 << 26;
	res.cpuset_cpus = "0-1";
	Runtime__V1__Int64Value uid = RUNTIME__V1__INT64_VALUE__INIT;
	uid.value = 1000;
	Runtime__V1__LinuxContainerSecurityContext sc =
		RUNTIME__V1__LINUX_CONTAINER_SECURITY_CONTEXT__INIT;
	sc.run_as_user = &uid;
	sc.readonly_rootfs = true;
	sc.no_new_privs = true;
	Runtime__V1__SecurityProfile seccomp = RUNTIME__V1__SECURITY_PROFILE__INIT;
	seccomp.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined;
	sc.seccomp = &seccomp;
	Runtime__V1__LinuxContainerConfig lx = RUNTIME__V1__LINUX_CONTAINER_CONFIG__INIT;
	lx.resources = &res;
	lx.security_context = &sc;
	pb.linux = &lx;

	assert_int_equal(cri_container_config_from_pb(&pb, &f->ctr, &f->err), 0);
	struct container_config *c = &f->ctr;
	assert_string_equal(c->name, "app");
	assert_int_equal(c->attempt, 1);
	assert_string_equal(c->image, "busybox:latest");
	assert_string_equal(c->command[1], "-c");
	assert_null(c->command[2]);
	assert_string_equal(c->args[0], "echo hi");
	assert_string_equal(c->envs[0], "A=b=c");
	assert_int_equal(c->n_mounts, 1);
	assert_string_equal(c->mounts[0].host_path, "/srv/data");
	assert_true(c->mounts[0].readonly);
	assert_int_equal(c->mounts[0].propagation, PROPAGATION_HOST_TO_CONTAINER);
	assert_string_equal(c->log_path, "app/1.log");
	assert_true(c->tty);
	assert_false(c->stdin_open);
	assert_int_equal(c->cpu_quota, 50000);
	assert_int_equal(c->memory_limit_in_bytes, 1 << 26);
	assert_string_equal(c->cpuset_cpus, "0-1");
	assert_true(c->has_run_as_user);
	assert_int_equal(c->run_as_user, 1000);
	assert_false(c->has_run_as_group);
	assert_true(c->readonly_rootfs);
	assert_true(c->no_new_privs);
	assert_int_equal(c->seccomp, SECCOMP_UNCONFINED);
	assert_null(c->working_dir);
}

static void expect_ctr_error(struct fx *f, const Runtime__V1__ContainerConfig *pb, int r,
			     const char *field)
{
	assert_int_equal(cri_container_config_from_pb(pb, &f->ctr, &f->err), r);
	assert_non_null(f->err);
	assert_non_null(strstr(f->err->msg, field));
	assert_null(f->ctr.name);
	berth_error_freep(&f->err);
}

static void test_container_config_refused(void **state)
{
	struct fx *f = *state;
	Runtime__V1__ContainerConfig pb = RUNTIME__V1__CONTAINER_CONFIG__INIT;
	fill_ctr(&pb);
	pb.image = NULL;
	expect_ctr_error(f, &pb, -EINVAL, "config.image.image");
	fill_ctr(&pb);
	pb.metadata = NULL;
	expect_ctr_error(f, &pb, -EINVAL, "config.metadata.name");

	fill_ctr(&pb);
	Runtime__V1__Mount mount = RUNTIME__V1__MOUNT__INIT;
	mount.container_path = "/data";
	mount.host_path = "/srv";
	mount.selinux_relabel = true;
	Runtime__V1__Mount *mounts[] = { &mount };
	pb.n_mounts = 1;
	pb.mounts = mounts;
	expect_ctr_error(f, &pb, -EINVAL, "config.mounts[0].selinux_relabel");

	pb.n_mounts = 0;
	Runtime__V1__UserNamespace userns = RUNTIME__V1__USER_NAMESPACE__INIT;
	userns.mode = RUNTIME__V1__NAMESPACE_MODE__POD;
	Runtime__V1__NamespaceOption ns = RUNTIME__V1__NAMESPACE_OPTION__INIT;
	ns.userns_options = &userns;
	Runtime__V1__LinuxContainerSecurityContext sc =
		RUNTIME__V1__LINUX_CONTAINER_SECURITY_CONTEXT__INIT;
	sc.namespace_options = &ns;
	Runtime__V1__LinuxContainerConfig lx = RUNTIME__V1__LINUX_CONTAINER_CONFIG__INIT;
	lx.security_context = &sc;
	pb.linux = &lx;
	expect_ctr_error(f, &pb, -EINVAL, "userns_options");

	/* the deprecated string fields are refused, not ignored */
	Runtime__V1__LinuxContainerSecurityContext old =
		RUNTIME__V1__LINUX_CONTAINER_SECURITY_CONTEXT__INIT;
	old.seccomp_profile_path = "runtime/default";
	lx.security_context = &old;
	expect_ctr_error(f, &pb, -EINVAL, "security_context.seccomp_profile_path: deprecated");
	old.seccomp_profile_path = "";
	old.apparmor_profile = "runtime/default";
	expect_ctr_error(f, &pb, -EINVAL, "security_context.apparmor_profile: deprecated");
}

/* ---- handlers ---- */

static const struct grpc_method *method(struct fx *f, const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "/runtime.v1.RuntimeService/%s", name);
	for (const struct grpc_method *m = cri_runtime_methods(&f->ctx); m->path; m++)
		if (strcmp(m->path, path) == 0)
			return m;
	fail_msg("%s is not in the table", path);
	return NULL;
}

static int call(struct fx *f, const char *name, const ProtobufCMessage *req)
{
	const struct grpc_method *m = method(f, name);
	assert_ptr_equal(m->input, req->descriptor);
	assert_non_null(m->unary);
	free(f->buf);
	f->buf = NULL;
	berth_error_freep(&f->err);
	return m->unary(m->userdata, req, &f->buf, &f->len, &f->err);
}

static void test_table(void **state)
{
	struct fx *f = *state;
	static const char *const all[] = {
		"Version", "RunPodSandbox", "StopPodSandbox", "RemovePodSandbox",
		"PodSandboxStatus", "ListPodSandbox", "CreateContainer", "StartContainer",
		"StopContainer", "RemoveContainer", "ListContainers", "ContainerStatus",
		"UpdateContainerResources", "ReopenContainerLog", "ExecSync", "Exec", "Attach",
		"PortForward", "ContainerStats", "ListContainerStats", "PodSandboxStats",
		"ListPodSandboxStats", "UpdateRuntimeConfig", "Status", "CheckpointContainer",
		"ListMetricDescriptors", "ListPodSandboxMetrics", "RuntimeConfig",
	};
	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		const struct grpc_method *m = method(f, all[i]);
		assert_ptr_equal(m->userdata, &f->ctx);
		assert_non_null(m->unary);
	}
	const struct grpc_method *ev = method(f, "GetContainerEvents");
	assert_null(ev->unary);
	assert_non_null(ev->stream_open);
}

static void test_version(void **state)
{
	struct fx *f = *state;
	Runtime__V1__VersionRequest req = RUNTIME__V1__VERSION_REQUEST__INIT;
	assert_int_equal(call(f, "Version", &req.base), 0);
	Runtime__V1__VersionResponse *res = runtime__v1__version_response__unpack(NULL, f->len, f->buf);
	assert_non_null(res);
	assert_string_equal(res->runtime_name, "berth");
	assert_string_equal(res->runtime_version, BERTH_VERSION);
	assert_string_equal(res->runtime_api_version, "v1");
	runtime__v1__version_response__free_unpacked(res, NULL);
}

static Runtime__V1__RuntimeCondition *condition(Runtime__V1__StatusResponse *res, const char *t)
{
	for (size_t i = 0; i < res->status->n_conditions; i++)
		if (strcmp(res->status->conditions[i]->type, t) == 0)
			return res->status->conditions[i];
	fail_msg("no condition %s", t);
	return NULL;
}

static void test_status(void **state)
{
	struct fx *f = *state;
	Runtime__V1__StatusRequest req = RUNTIME__V1__STATUS_REQUEST__INIT;
	f->cfg.network = "none";
	assert_int_equal(call(f, "Status", &req.base), 0);
	Runtime__V1__StatusResponse *res = runtime__v1__status_response__unpack(NULL, f->len, f->buf);
	assert_non_null(res);
	assert_true(condition(res, "RuntimeReady")->status);
	assert_false(condition(res, "NetworkReady")->status);
	assert_string_equal(condition(res, "NetworkReady")->reason, "NetworkDisabled");
	assert_int_equal(res->n_info, 0); /* not verbose */
	runtime__v1__status_response__free_unpacked(res, NULL);

	/* CNI without a network config is not ready either, and says where it looked */
	f->cfg.network = "cni";
	f->cfg.cni_conf_dir = "/nonexistent/cni";
	assert_int_equal(call(f, "Status", &req.base), 0);
	res = runtime__v1__status_response__unpack(NULL, f->len, f->buf);
	assert_string_equal(condition(res, "NetworkReady")->reason, "NetworkPluginNotReady");
	assert_contains(condition(res, "NetworkReady")->message, "/nonexistent/cni");
	runtime__v1__status_response__free_unpacked(res, NULL);
}

static void test_runtime_config(void **state)
{
	struct fx *f = *state;
	Runtime__V1__RuntimeConfigRequest req = RUNTIME__V1__RUNTIME_CONFIG_REQUEST__INIT;
	f->cfg.systemd_cgroup = true;
	assert_int_equal(call(f, "RuntimeConfig", &req.base), 0);
	Runtime__V1__RuntimeConfigResponse *res =
		runtime__v1__runtime_config_response__unpack(NULL, f->len, f->buf);
	assert_non_null(res);
	assert_int_equal(res->linux->cgroup_driver, RUNTIME__V1__CGROUP_DRIVER__SYSTEMD);
	runtime__v1__runtime_config_response__free_unpacked(res, NULL);
}

static void test_refusals(void **state)
{
	struct fx *f = *state;
	Runtime__V1__RunPodSandboxRequest run = RUNTIME__V1__RUN_POD_SANDBOX_REQUEST__INIT;
	run.runtime_handler = "runc";
	assert_int_equal(call(f, "RunPodSandbox", &run.base), -EINVAL);
	assert_contains(f->err->msg, "runtime_handler");
	run.runtime_handler = "";
	assert_int_equal(call(f, "RunPodSandbox", &run.base), -EINVAL); /* no config */
	assert_contains(f->err->msg, "config");

	/* the streaming calls' refusals that come before any container is looked at */
	Runtime__V1__ExecRequest exec = RUNTIME__V1__EXEC_REQUEST__INIT;
	assert_int_equal(call(f, "Exec", &exec.base), -EINVAL);
	assert_contains(f->err->msg, "container_id");
	exec.container_id = "abc";
	assert_int_equal(call(f, "Exec", &exec.base), -EINVAL);
	assert_contains(f->err->msg, "cmd");
	Runtime__V1__AttachRequest attach = RUNTIME__V1__ATTACH_REQUEST__INIT;
	assert_int_equal(call(f, "Attach", &attach.base), -EINVAL);
	assert_contains(f->err->msg, "container_id");
	Runtime__V1__PortForwardRequest pf = RUNTIME__V1__PORT_FORWARD_REQUEST__INIT;
	pf.pod_sandbox_id = "abc";
	assert_int_equal(call(f, "PortForward", &pf.base), -EINVAL);
	assert_contains(f->err->msg, "port");
	int32_t ports[] = { 80, 70000 };
	pf.port = ports;
	pf.n_port = 2;
	assert_int_equal(call(f, "PortForward", &pf.base), -EINVAL);
	assert_contains(f->err->msg, "port[1]: 70000");
	Runtime__V1__StartContainerRequest start = RUNTIME__V1__START_CONTAINER_REQUEST__INIT;
	assert_int_equal(call(f, "StartContainer", &start.base), -EINVAL);
	assert_contains(f->err->msg, "container_id");
	Runtime__V1__ExecSyncRequest es = RUNTIME__V1__EXEC_SYNC_REQUEST__INIT;
	es.container_id = "abc";
	assert_int_equal(call(f, "ExecSync", &es.base), -EINVAL);
	assert_contains(f->err->msg, "cmd");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pod_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pod_config_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_container_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_container_config_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runtime_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
