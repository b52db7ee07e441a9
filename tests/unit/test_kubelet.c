/* The kubelet loop's pure parts: back-off arithmetic, env resolution, the status JSON and
 * hostPath type checks (cri/kubelet-status.c, kubelet-spec.c, kubelet-volume.c). */
#include "unit.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "cri/kubelet-internal.h"

#include <sys/stat.h>

struct fx {
	char dir[64];
	struct berth_error *err;
	struct pod_manifest *man;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/test-kubelet-XXXXXX");
	if (!f || !mkdtemp(f->dir))
		return -1;
	*state = f;
	return 0;
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(p);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	berth_error_free(f->err);
	pod_manifest_free(f->man);
	free(f);
	return 0;
}

static void parse(struct fx *f, const char *text)
{
	MUST_OK(f, pod_manifest_parse(text, strlen(text), "t.yaml", &f->man, &f->err));
}

static void put(struct fx *f, const char *rel, const char *data)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
	for (char *p = path + strlen(f->dir) + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0755);
			*p = '/';
		}
	FILE *out = fopen(path, "w");
	assert_non_null(out);
	fputs(data, out);
	fclose(out);
}

/* ---- back-off ---- */

static void test_backoff(void **state)
{
	(void)state;
	const int64_t s = NS_PER_S;
	struct kubelet_backoff b = { 10 * s, 300 * s, 600 * s };
	int64_t d = kubelet_backoff_next(&b, 0, 0);
	assert_int_equal(d, 10 * s);
	const int64_t want[] = { 20, 40, 80, 160, 300, 300 };
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		d = kubelet_backoff_next(&b, d, 1 * s);
		assert_int_equal(d, want[i] * s);
	}
	/* ran 10 minutes: back to the start */
	assert_int_equal(kubelet_backoff_next(&b, d, 600 * s), 10 * s);
	assert_int_equal(kubelet_backoff_next(&b, d, 599 * s), 300 * s);
	/* a max that is not a power of two of the start */
	struct kubelet_backoff c = { 1 * s, 3 * s, 10 * s };
	assert_int_equal(kubelet_backoff_next(&c, 2 * s, 0), 3 * s);
}

/* ---- env ---- */

static const char *ENV_POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ns}\n"
			     "spec:\n  containers:\n  - name: c\n    image: x:1\n    env:\n"
			     "    - {name: A, value: one}\n"
			     "    - {name: EMPTY}\n"
			     "    - {name: NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}\n"
			     "    - {name: NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}\n"
			     "    - {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n"
			     "    - {name: CM, valueFrom: {configMapKeyRef: {name: m, key: k}}}\n"
			     "    - {name: S, valueFrom: {secretKeyRef: {name: s, key: pw}}}\n"
			     "    - {name: OPT, valueFrom: {secretKeyRef: {name: s, key: nokey, "
			     "optional: true}}}\n";

static void test_env_resolve(void **state)
{
	struct fx *f = *state;
	char cm[128], sec[128];
	snprintf(cm, sizeof(cm), "%s/cm", f->dir);
	snprintf(sec, sizeof(sec), "%s/sec", f->dir);
	put(f, "cm/ns/m/k", "from-map");
	put(f, "sec/ns/s/pw", "hunter2");
	parse(f, ENV_POD);
	_cleanup_strv_ char **env = NULL;
	MUST_OK(f, kubelet_env_resolve(f->man, &f->man->spec.containers[0], "10.88.0.5", cm, sec,
				       &env, &f->err));
	const char *want[] = { "A=one",		"EMPTY=",     "NAME=p",	 "NS=ns",
			       "IP=10.88.0.5", "CM=from-map", "S=hunter2", NULL };
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		if (!want[i]) {
			assert_null(env[i]);
			break;
		}
		assert_string_equal(env[i], want[i]);
	}
}

static void test_env_missing_key(void **state)
{
	struct fx *f = *state;
	char cm[128];
	snprintf(cm, sizeof(cm), "%s/cm", f->dir);
	parse(f, ENV_POD);
	char **env = NULL;
	assert_int_equal(kubelet_env_resolve(f->man, &f->man->spec.containers[0], NULL, cm, cm,
					     &env, &f->err),
			 -ENOENT);
	assert_null(env);
	assert_contains(f->err->msg, "env CM: configMap \"ns/m\": key \"k\" not found");
}

/* ---- status ---- */

static void test_status_json(void **state)
{
	struct fx *f = *state;
	parse(f, "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n"
		 "  initContainers: [{name: i, image: x:1}]\n"
		 "  containers:\n  - name: c\n    image: x:1\n"
		 "    resources: {limits: {cpu: 1, memory: 1Gi}}\n");
	struct kubelet k = { 0 };
	struct kctr ctrs[2] = { { .spec = &f->man->spec.init_containers[0], .init = true,
				  .done = true },
				{ .spec = &f->man->spec.containers[0], .restarts = 2,
				  .has_last = true } };
	ctrs[0].cur = (struct kterm){ .state = KSTATE_TERMINATED, .reason = "Completed",
				      .started_ns = 0, .finished_ns = NS_PER_S };
	ctrs[1].cur = (struct kterm){ .state = KSTATE_WAITING, .reason = "CrashLoopBackOff",
				      .message = "back-off 20s" };
	ctrs[1].last = (struct kterm){ .state = KSTATE_TERMINATED, .exit_code = 3, .reason = "Error",
				       .finished_ns = 86400 * NS_PER_S };
	struct kpod p = { .k = &k, .man = f->man, .file = "/m/web.yaml", .key = "default/web",
			  .uid = "u-1", .phase = "Running", .ctrs = ctrs, .n_ctrs = 2, .n_init = 1,
			  .pod_ip = "10.88.0.2", .initialized = { true, NS_PER_S, NULL },
			  .ready = { false, 2 * NS_PER_S, "ContainersNotReady" } };
	_cleanup_free_ char *json = NULL;
	assert_int_equal(kubelet_status_build(&p, &json), 0);
	_cleanup_(bjson_freep) struct json *j = NULL;
	MUST_OK(f, bjson_parse(json, &j, &f->err));
	const struct json *st = bjson_object_get(j, "status");
	assert_string_equal(bjson_string(bjson_object_get(st, "phase")), "Running");
	/* the init container asks for nothing */
	assert_string_equal(bjson_string(bjson_object_get(st, "qosClass")), "Burstable");
	assert_string_equal(bjson_string(bjson_object_get(st, "podIP")), "10.88.0.2");
	const struct json *conds = bjson_object_get(st, "conditions");
	assert_int_equal(bjson_array_size(conds), 3);
	const struct json *ready = bjson_array_get(conds, 2);
	assert_string_equal(bjson_string(bjson_object_get(ready, "type")), "Ready");
	assert_string_equal(bjson_string(bjson_object_get(ready, "status")), "False");
	assert_string_equal(bjson_string(bjson_object_get(ready, "lastTransitionTime")),
			    "1970-01-01T00:00:02Z");
	const struct json *c = bjson_array_get(bjson_object_get(st, "containerStatuses"), 0);
	int64_t n = 0;
	assert_true(bjson_int64(bjson_object_get(c, "restartCount"), &n) && n == 2);
	assert_string_equal(bjson_string(bjson_object_get(bjson_object_get(bjson_object_get(
					     c, "state"), "waiting"), "reason")),
			    "CrashLoopBackOff");
	const struct json *last = bjson_object_get(bjson_object_get(c, "lastState"), "terminated");
	assert_true(bjson_int64(bjson_object_get(last, "exitCode"), &n) && n == 3);
	assert_string_equal(bjson_string(bjson_object_get(last, "finishedAt")),
			    "1970-01-02T00:00:00Z");
	const struct json *i = bjson_array_get(bjson_object_get(st, "initContainerStatuses"), 0);
	assert_string_equal(bjson_string(bjson_object_get(i, "name")), "i");
	assert_string_equal(bjson_string(bjson_object_get(bjson_object_get(j, "metadata"), "file")),
			    "/m/web.yaml");
}

static void test_status_names(void **state)
{
	(void)state;
	_cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
	assert_int_equal(kubelet_status_name(NULL, "web", &a), 0);
	assert_string_equal(a, "default_web.json");
	assert_int_equal(kubelet_error_status_name("/etc/berth/manifests/x.yaml", false, &b), 0);
	assert_string_equal(b, "@dir_x.yaml.json");
	free(b);
	assert_int_equal(kubelet_error_status_name("/var/lib/berth/manifests/x.yaml", true, &b), 0);
	assert_string_equal(b, "@applied_x.yaml.json");
	assert_int_equal(kubelet_error_status_build("/m/x.yaml", "x.yaml: spec: bad", &c), 0);
	assert_string_equal(c, "{\"metadata\":{\"file\":\"/m/x.yaml\"},\"error\":\"x.yaml: spec: "
			       "bad\"}");
}

/* ---- hostPath ---- */

static void test_host_path_types(void **state)
{
	struct fx *f = *state;
	char d[128], file[128], missing[128];
	snprintf(d, sizeof(d), "%s/made/dir", f->dir);
	snprintf(file, sizeof(file), "%s/made/file", f->dir);
	snprintf(missing, sizeof(missing), "%s/none", f->dir);
	mode_t old = umask(077);
	MUST_OK(f, kubelet_host_path_check(d, POD_HOST_PATH_DIRECTORY_OR_CREATE, &f->err));
	MUST_OK(f, kubelet_host_path_check(file, POD_HOST_PATH_FILE_OR_CREATE, &f->err));
	umask(old);
	struct stat st;
	assert_int_equal(stat(d, &st), 0);
	assert_true(S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0755);
	assert_int_equal(stat(file, &st), 0);
	assert_true(S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0644);
	MUST_OK(f, kubelet_host_path_check(d, POD_HOST_PATH_DIRECTORY, &f->err));
	MUST_OK(f, kubelet_host_path_check(file, POD_HOST_PATH_FILE, &f->err));
	MUST_OK(f, kubelet_host_path_check(missing, POD_HOST_PATH_ANY, &f->err));
	MUST_OK(f, kubelet_host_path_check("/dev/null", POD_HOST_PATH_CHAR_DEVICE, &f->err));
	assert_int_equal(kubelet_host_path_check(file, POD_HOST_PATH_DIRECTORY, &f->err), -EINVAL);
	assert_contains(f->err->msg, "not a Directory");
	f->err = berth_error_free(f->err);
	assert_int_equal(kubelet_host_path_check(d, POD_HOST_PATH_SOCKET, &f->err), -EINVAL);
	assert_contains(f->err->msg, "not a Socket");
	f->err = berth_error_free(f->err);
	assert_int_equal(kubelet_host_path_check(missing, POD_HOST_PATH_FILE, &f->err), -ENOENT);
	assert_contains(f->err->msg, "(type File)");
}

/* ---- what berth refuses ---- */

static void test_refused(void **state)
{
	struct fx *f = *state;
	parse(f, "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
		 "  - name: c\n    image: x:1\n    readinessProbe:\n"
		 "      httpGet: {port: 443, scheme: HTTPS}\n");
	assert_int_equal(kubelet_check_supported(f->man, &f->err), -EINVAL);
	assert_string_equal(f->err->msg, "t.yaml: spec.containers[0].readinessProbe.httpGet.scheme: "
					 "HTTPS is not supported by berth's probes and hooks");
}

/* ---- berth apply / delete ---- */

static const char *APPLY_POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n"
			       "  containers: [{name: c, image: x:1}]\n";

static void test_apply_delete(void **state)
{
	struct fx *f = *state;
	char applied[128], path[160];
	snprintf(applied, sizeof(applied), "%s/applied", f->dir);
	snprintf(path, sizeof(path), "%s/default_x.yaml", applied);
	assert_int_equal(mkdir(applied, 0700), 0);
	/* the parts of a kubelet that apply and delete use: no supervisor runs */
	struct kubelet k = { .applied_dir = applied };
	pthread_mutex_init(&k.lock, NULL);
	assert_int_equal(pipe(k.wake_fd), 0);
	_cleanup_free_ char *key = NULL, *text = NULL;
	MUST_OK(f, kubelet_apply(&k, APPLY_POD, strlen(APPLY_POD), "x.yaml", &key, &f->err));
	assert_string_equal(key, "default/x");
	assert_int_equal(read_file_at(AT_FDCWD, path, &text, NULL, &f->err), 0);
	assert_string_equal(text, APPLY_POD);
	/* invalid: the message names the file and the field; nothing is stored */
	const char *bad = "apiVersion: v1\nkind: Pod\nmetadata: {name: why}\nspec: {containres: []}\n";
	char *none = NULL;
	assert_int_equal(kubelet_apply(&k, bad, strlen(bad), "y.yaml", &none, &f->err), -EINVAL);
	assert_contains(f->err->msg, "y.yaml: spec.containres");
	assert_null(none);
	f->err = berth_error_free(f->err);
	/* a pod of the manifest directory by that name is not shadowed */
	parse(f, APPLY_POD);
	struct kpod dir_pod = { .man = f->man, .file = "/etc/berth/manifests/x.yaml" };
	struct kpod *pods[] = { &dir_pod };
	k.pods = pods;
	k.n_pods = 1;
	assert_int_equal(kubelet_apply(&k, APPLY_POD, strlen(APPLY_POD), NULL, &none, &f->err),
			 -EEXIST);
	assert_contains(f->err->msg, "/etc/berth/manifests/x.yaml");
	f->err = berth_error_free(f->err);
	k.n_pods = 0;
	MUST_OK(f, kubelet_delete(&k, NULL, 0, NULL, "x", &f->err));
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(kubelet_delete(&k, APPLY_POD, strlen(APPLY_POD), NULL, NULL, &f->err),
			 -ENOENT);
	assert_contains(f->err->msg, "no applied pod default/x");
	close(k.wake_fd[0]);
	close(k.wake_fd[1]);
	pthread_mutex_destroy(&k.lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),
		cmocka_unit_test_setup_teardown(test_env_resolve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_missing_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_json, setup, teardown),
		cmocka_unit_test(test_status_names),
		cmocka_unit_test_setup_teardown(test_host_path_types, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_delete, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
