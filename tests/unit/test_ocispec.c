/* cri/ocispec.c: a CRI container's config.json, from a request, an image config and a pod, with
 * user and group names looked up in a root filesystem made in a temporary directory. */
#include "unit.h"

#include "base/cleanup.h"
#include "base/json.h"
#include "cri/ocispec.h"
#include "runtime/caps-internal.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

struct fx {
	struct unit_tmpdir tmp;
	char rootfs[128];
	struct berth_error *err;
	struct json *doc;
	char *text;
};

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || unit_tmpdir_create(&f->tmp) < 0)
		return -1;
	snprintf(f->rootfs, sizeof(f->rootfs), "%s/rootfs", f->tmp.path);
	char etc[160];
	snprintf(etc, sizeof(etc), "%s/etc", f->rootfs);
	if (mkdir(f->rootfs, 0755) < 0 || mkdir(etc, 0755) < 0)
		return -1;
	write_file(etc, "passwd",
		   "root:x:0:0:root:/root:/bin/sh\n"
		   "tester:x:1000:1000:tester:/home/tester:/bin/sh\n"
		   "broken line\n"
		   "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
	write_file(etc, "group",
		   "root:x:0:\ntester:x:1000:\nextra:x:2000:tester,other\n"
		   "wheel:x:10:root,tester\nnogroup:x:65534:\n");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	berth_error_free(f->err);
	bjson_free(f->doc);
	free(f->text);
	unit_tmpdir_remove(&f->tmp);
	free(f);
	return 0;
}

static struct json *parse(const char *text)
{
	struct json *j = NULL;
	assert_int_equal(bjson_parse(text, &j, NULL), 0);
	return j;
}

static void assert_strv(char **got, const char *const *want)
{
	size_t i = 0;
	for (; want[i]; i++) {
		assert_non_null(got[i]);
		assert_string_equal(got[i], want[i]);
	}
	assert_null(got[i]);
}

/* ---- command ---- */

static void test_command_merge(void **state)
{
	(void)state;
	_cleanup_(bjson_freep) struct json *img =
		parse("{\"Entrypoint\":[\"/ep\",\"-x\"],\"Cmd\":[\"default\",\"arg\"]}");
	char *cmd[] = { "/bin/run", NULL }, *args[] = { "a1", "a2", NULL };
	char **v = NULL;
	assert_int_equal(ocispec_command(img, NULL, NULL, &v, NULL), 0);
	assert_strv(v, (const char *[]){ "/ep", "-x", "default", "arg", NULL });
	strv_free(v);
	assert_int_equal(ocispec_command(img, NULL, args, &v, NULL), 0);
	assert_strv(v, (const char *[]){ "/ep", "-x", "a1", "a2", NULL });
	strv_free(v);
	assert_int_equal(ocispec_command(img, cmd, NULL, &v, NULL), 0);
	assert_strv(v, (const char *[]){ "/bin/run", NULL });
	strv_free(v);
	assert_int_equal(ocispec_command(img, cmd, args, &v, NULL), 0);
	assert_strv(v, (const char *[]){ "/bin/run", "a1", "a2", NULL });
	strv_free(v);
}

static void test_command_nothing_to_run(void **state)
{
	struct fx *f = *state;
	_cleanup_(bjson_freep) struct json *img = parse("{\"Env\":[]}");
	char **v = NULL;
	assert_int_equal(ocispec_command(img, NULL, NULL, &v, &f->err), -EINVAL);
	assert_contains(f->err->msg, "config.command");
	assert_null(v);
}

/* ---- users ---- */

static void resolve(struct fx *f, const struct container_config *req, const char *image_user,
		    uint32_t uid, uint32_t gid, const uint32_t *extra, size_t n_extra)
{
	struct ocispec_user u;
	MUST_OK(f, ocispec_user_resolve(f->rootfs, req, image_user, &u, &f->err));
	assert_int_equal(u.uid, uid);
	assert_int_equal(u.gid, gid);
	assert_int_equal(u.n_additional, n_extra);
	for (size_t i = 0; i < n_extra; i++)
		assert_int_equal(u.additional_gids[i], extra[i]);
	ocispec_user_clear(&u);
}

static void test_user_from_request_and_image(void **state)
{
	struct fx *f = *state;
	struct container_config req = { 0 };
	resolve(f, &req, NULL, 0, 0, (const uint32_t[]){ 10 }, 1); /* root, in wheel */
	resolve(f, &req, "tester", 1000, 1000, (const uint32_t[]){ 2000, 10 }, 2);
	resolve(f, &req, "tester:extra", 1000, 2000, (const uint32_t[]){ 10 }, 1);
	resolve(f, &req, "1234:5", 1234, 5, NULL, 0);	  /* numbers need no entry */
	resolve(f, &req, "65534", 65534, 65534, NULL, 0); /* a number with an entry */
	req.run_as_username = "tester";
	resolve(f, &req, "nobody", 1000, 1000, (const uint32_t[]){ 2000, 10 }, 2);
	req.has_run_as_group = true;
	req.run_as_group = 77;
	resolve(f, &req, NULL, 1000, 77, (const uint32_t[]){ 2000, 10 }, 2);
	req = (struct container_config){ .has_run_as_user = true, .run_as_user = 42 };
	resolve(f, &req, "tester", 42, 0, NULL, 0);
}

static void test_user_unknown_names(void **state)
{
	struct fx *f = *state;
	struct container_config req = { .run_as_username = "ghost" };
	struct ocispec_user u;
	assert_int_equal(ocispec_user_resolve(f->rootfs, &req, NULL, &u, &f->err), -ENOENT);
	assert_contains(f->err->msg, "\"ghost\"");
	berth_error_freep(&f->err);
	req.run_as_username = NULL;
	assert_int_equal(ocispec_user_resolve(f->rootfs, &req, "tester:nogroup-here", &u, &f->err),
			 -ENOENT);
	assert_contains(f->err->msg, "nogroup-here");
}

/* /etc/passwd as an absolute symlink resolves inside the rootfs, never on the host */
static void test_user_lookup_stays_in_root(void **state)
{
	struct fx *f = *state;
	char etc[160], path[200];
	snprintf(etc, sizeof(etc), "%s/etc", f->rootfs);
	snprintf(path, sizeof(path), "%s/passwd", etc);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink("/../../../../../etc/passwd", path), 0);
	struct container_config req = { .run_as_username = "root" };
	struct ocispec_user u;
	/* the host's /etc/passwd has root; inside the rootfs the link leads to its own /etc/passwd,
	 * which is the link itself: a loop, refused */
	assert_true(ocispec_user_resolve(f->rootfs, &req, NULL, &u, &f->err) < 0);
	berth_error_freep(&f->err);
	assert_int_equal(unlink(path), 0);
	write_file(f->rootfs, "inside", "root:x:7:8::/:/bin/sh\n");
	assert_int_equal(symlink("/../../../inside", path), 0);
	resolve(f, &req, NULL, 7, 8, (const uint32_t[]){ 10 }, 1);
}

/* ---- the document ---- */

static const struct json *find_by(const struct json *arr, const char *key, const char *value)
{
	for (size_t i = 0; i < bjson_array_size(arr); i++) {
		const struct json *e = bjson_array_get(arr, i);
		const char *s = bjson_string(bjson_object_get(e, key));
		if (s && strcmp(s, value) == 0)
			return e;
	}
	return NULL;
}

static bool has_string(const struct json *arr, const char *s)
{
	for (size_t i = 0; i < bjson_array_size(arr); i++)
		if (strcmp(bjson_string(bjson_array_get(arr, i)) ?: "", s) == 0)
			return true;
	return false;
}

static void generate(struct fx *f, struct ocispec_input *in)
{
	MUST_OK(f, ocispec_generate(in, &f->text, &f->err));
	f->doc = parse(f->text);
}

static void test_generate(void **state)
{
	struct fx *f = *state;
	_cleanup_(bjson_freep) struct json *img =
		parse("{\"Env\":[\"PATH=/img/bin\",\"A=image\",\"B=image\"],\"Cmd\":[\"/bin/sh\"],"
		      "\"WorkingDir\":\"/srv\",\"User\":\"tester\"}");
	char *envs[] = { "A=request", "C=new", NULL };
	struct bind_mount mounts[] = { { "/data", "/host/data", true, PROPAGATION_PRIVATE } };
	struct container_config req = { .name = "c",
					.image = "i",
					.envs = envs,
					.tty = true,
					.mounts = mounts,
					.n_mounts = 1,
					.memory_limit_in_bytes = 1 << 20,
					.cpu_quota = 50000,
					.cpu_period = 100000,
					.no_new_privs = true };
	char *ann[] = { "io.kubernetes.cri.sandbox-id", "pod1", NULL };
	struct ocispec_input in = { .rootfs = f->rootfs,
				    .image_config = img,
				    .req = &req,
				    .netns_path = "/run/p/net",
				    .ipcns_path = "/run/p/ipc",
				    .utsns_path = "/run/p/uts",
				    .hosts_path = "/run/p/hosts",
				    .hostname = "pod-host",
				    .cgroups_path = "/berth/pod1/c1",
				    .annotations = ann };
	generate(f, &in);
	const struct json *proc = bjson_object_get(f->doc, "process");
	assert_true(bjson_bool(bjson_object_get(proc, "terminal")));
	assert_string_equal(bjson_string(bjson_object_get(proc, "cwd")), "/srv");
	const struct json *env = bjson_object_get(proc, "env");
	assert_true(has_string(env, "PATH=/img/bin") && has_string(env, "A=request"));
	assert_true(has_string(env, "B=image") && has_string(env, "C=new"));
	assert_true(has_string(env, "HOSTNAME=pod-host") && has_string(env, "TERM=xterm"));
	assert_false(has_string(env, "A=image"));
	int64_t uid = -1;
	assert_true(bjson_int64(bjson_object_get(bjson_object_get(proc, "user"), "uid"), &uid));
	assert_int_equal(uid, 1000);
	assert_non_null(bjson_object_get(proc, "capabilities"));
	assert_true(bjson_bool(bjson_object_get(proc, "noNewPrivileges")));
	assert_string_equal(
		bjson_string(bjson_object_get(bjson_object_get(f->doc, "root"), "path")),
		f->rootfs);
	/* the pod's UTS namespace has the hostname: the config sets none */
	assert_int_equal(bjson_type_of(bjson_object_get(f->doc, "hostname")), JSON_ABSENT);
	const struct json *lx = bjson_object_get(f->doc, "linux");
	const struct json *ns = bjson_object_get(lx, "namespaces");
	assert_string_equal(bjson_string(bjson_object_get(find_by(ns, "type", "network"), "path")),
			    "/run/p/net");
	assert_null(bjson_object_get(find_by(ns, "type", "pid"), "path")); /* a new one */
	assert_non_null(find_by(ns, "type", "mount"));
	assert_string_equal(bjson_string(bjson_object_get(lx, "cgroupsPath")), "/berth/pod1/c1");
	int64_t limit = 0;
	assert_true(bjson_int64(
		bjson_object_get(bjson_object_get(bjson_object_get(lx, "resources"), "memory"),
				 "limit"),
		&limit));
	assert_int_equal(limit, 1 << 20);
	const struct json *mts = bjson_object_get(f->doc, "mounts");
	const struct json *hosts = find_by(mts, "destination", "/etc/hosts");
	assert_string_equal(bjson_string(bjson_object_get(hosts, "source")), "/run/p/hosts");
	const struct json *data = find_by(mts, "destination", "/data");
	assert_true(has_string(bjson_object_get(data, "options"), "ro"));
	assert_non_null(find_by(mts, "destination", "/proc"));
	assert_null(find_by(mts, "destination", "/etc/resolv.conf"));
	assert_string_equal(bjson_string(bjson_object_get(bjson_object_get(f->doc, "annotations"),
							  "io.kubernetes.cri.sandbox-id")),
			    "pod1");
}

static void test_generate_host_namespaces(void **state)
{
	struct fx *f = *state;
	char *cmd[] = { "/bin/true", NULL };
	struct container_config req = { .name = "c", .image = "i", .command = cmd };
	struct ocispec_input in = { .rootfs = f->rootfs, .req = &req, .pid_host = true };
	generate(f, &in);
	const struct json *ns = bjson_object_get(bjson_object_get(f->doc, "linux"), "namespaces");
	assert_null(find_by(ns, "type", "network"));
	assert_null(find_by(ns, "type", "pid"));
	assert_null(find_by(ns, "type", "uts"));
	const struct json *proc = bjson_object_get(f->doc, "process");
	assert_string_equal(bjson_string(bjson_object_get(proc, "cwd")), "/");
	assert_true(
		has_string(bjson_object_get(proc, "env"),
			   "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
	bjson_freep(&f->doc);
	free(f->text);
	f->text = NULL;
	in.pid_host = false;
	in.pidns_path = "/run/p/pid";
	generate(f, &in);
	ns = bjson_object_get(bjson_object_get(f->doc, "linux"), "namespaces");
	assert_string_equal(bjson_string(bjson_object_get(find_by(ns, "type", "pid"), "path")),
			    "/run/p/pid");
}

static void test_exec_process(void **state)
{
	struct fx *f = *state;
	char *argv[] = { "/bin/echo", "hi", NULL };
	MUST_OK(f, ocispec_exec_process(
			   "{\"process\":{\"terminal\":true,\"args\":[\"/init\"],"
			   "\"env\":[\"A=1\"],\"cwd\":\"/w\",\"user\":{\"uid\":5,\"gid\":6}}}",
			   argv, NULL, &f->text, &f->err));
	f->doc = parse(f->text);
	assert_false(bjson_bool(bjson_object_get(f->doc, "terminal")));
	const struct json *args = bjson_object_get(f->doc, "args");
	assert_int_equal(bjson_array_size(args), 2);
	assert_string_equal(bjson_string(bjson_array_get(args, 0)), "/bin/echo");
	assert_string_equal(bjson_string(bjson_object_get(f->doc, "cwd")), "/w");
	assert_true(has_string(bjson_object_get(f->doc, "env"), "A=1"));
	/* an exec with a terminal (kubectl exec -t) */
	free(f->text);
	f->text = NULL;
	bjson_freep(&f->doc);
	const struct ocispec_terminal term = { .on = true, .cols = 120, .rows = 50 };
	MUST_OK(f, ocispec_exec_process("{\"process\":{\"args\":[\"/init\"],\"cwd\":\"/\"}}", argv,
					&term, &f->text, &f->err));
	f->doc = parse(f->text);
	assert_true(bjson_bool(bjson_object_get(f->doc, "terminal")));
	uint64_t v = 0;
	const struct json *size = bjson_object_get(f->doc, "consoleSize");
	assert_true(bjson_uint64(bjson_object_get(size, "width"), &v) && v == 120);
	assert_true(bjson_uint64(bjson_object_get(size, "height"), &v) && v == 50);
	assert_int_equal(ocispec_exec_process("{}", argv, NULL, &f->text, &f->err), -EINVAL);
}

/* ---- the CRI -> OCI mapping, field by field ---- */

static char *cmd_true[] = { "/bin/true", NULL };

/* A minimal request in a pod with its own network, ipc and uts namespaces. */
#define MAPPING_INPUT(f, req)                                                                      \
	{ .rootfs = (f)->rootfs, .req = &(req), .netns_path = "/run/p/net",                        \
	  .ipcns_path = "/run/p/ipc", .utsns_path = "/run/p/uts" }

static void regenerate(struct fx *f, struct ocispec_input *in)
{
	bjson_freep(&f->doc);
	free(f->text);
	f->text = NULL;
	generate(f, in);
}

static int generate_fails(struct fx *f, struct ocispec_input *in)
{
	berth_error_freep(&f->err);
	free(f->text);
	f->text = NULL;
	return ocispec_generate(in, &f->text, &f->err);
}

static const struct json *doc_at(struct fx *f, const char *a, const char *b)
{
	const struct json *j = bjson_object_get(f->doc, a);
	return b ? bjson_object_get(j, b) : j;
}

static const struct json *caps_of(struct fx *f, const char *set)
{
	return bjson_object_get(doc_at(f, "process", "capabilities"), set);
}

/* How many capabilities this process holds (its CapPrm). */
static size_t own_caps(void)
{
	FILE *st = fopen("/proc/self/status", "re");
	assert_non_null(st);
	char line[256];
	unsigned long long prm = 0;
	while (fgets(line, sizeof(line), st))
		if (sscanf(line, "CapPrm: %llx", &prm) == 1)
			break;
	fclose(st);
	return (size_t)__builtin_popcountll(prm);
}

static void test_map_capabilities(void **state)
{
	struct fx *f = *state;
	char *add[] = { "NET_ADMIN", "cap_sys_time", NULL }, *drop[] = { "CAP_CHOWN", "KILL", NULL };
	struct container_config req = { .command = cmd_true,
					 .add_capabilities = add,
					 .drop_capabilities = drop };
	struct ocispec_input in = MAPPING_INPUT(f, req);
	generate(f, &in);
	const char *const sets[] = { "bounding", "effective", "permitted" };
	for (size_t i = 0; i < 3; i++) {
		const struct json *c = caps_of(f, sets[i]);
		assert_true(has_string(c, "CAP_NET_ADMIN") && has_string(c, "CAP_SYS_TIME"));
		assert_true(has_string(c, "CAP_SETUID")); /* the default set stays */
		assert_false(has_string(c, "CAP_CHOWN") || has_string(c, "CAP_KILL"));
	}
	assert_null(caps_of(f, "inheritable"));
	/* drop ALL, then add one: only that one */
	char *all[] = { "ALL", NULL }, *one[] = { "CAP_NET_BIND_SERVICE", NULL };
	req.add_capabilities = one;
	req.drop_capabilities = all;
	regenerate(f, &in);
	assert_int_equal(bjson_array_size(caps_of(f, "bounding")), 1);
	assert_true(has_string(caps_of(f, "effective"), "CAP_NET_BIND_SERVICE"));
	/* add ALL: every capability this process has */
	req.add_capabilities = all;
	req.drop_capabilities = NULL;
	regenerate(f, &in);
	assert_true(has_string(caps_of(f, "bounding"), "CAP_SYS_ADMIN"));
	assert_int_equal(bjson_array_size(caps_of(f, "bounding")), own_caps());
	char *bad[] = { "CAP_FLY", NULL };
	req.add_capabilities = bad;
	assert_int_equal(generate_fails(f, &in), -EINVAL);
	assert_string_equal(f->err->msg, "config.linux.security_context.capabilities."
					 "add_capabilities: \"CAP_FLY\" is not a capability this "
					 "kernel knows");
}

static void test_map_seccomp(void **state)
{
	struct fx *f = *state;
	struct container_config req = { .command = cmd_true };
	struct ocispec_input in = MAPPING_INPUT(f, req);
	/* none named: the runtime's default profile (Docker's allow-list) */
	generate(f, &in);
	const struct json *sc = doc_at(f, "linux", "seccomp");
	assert_string_equal(bjson_string(bjson_object_get(sc, "defaultAction")), "SCMP_ACT_ERRNO");
	assert_true(bjson_array_size(bjson_object_get(sc, "syscalls")) > 0);
	req.seccomp = SECCOMP_UNCONFINED;
	regenerate(f, &in);
	assert_int_equal(bjson_type_of(doc_at(f, "linux", "seccomp")), JSON_ABSENT);
	/* Localhost: the file's profile, checked by the runtime's parser */
	char path[256];
	snprintf(path, sizeof(path), "%s/profile.json", f->tmp.path);
	write_file(f->tmp.path, "profile.json",
		   "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"mkdir\"],"
		   "\"action\":\"SCMP_ACT_ERRNO\"}]}");
	req.seccomp = SECCOMP_LOCALHOST;
	req.seccomp_localhost_ref = path;
	regenerate(f, &in);
	sc = doc_at(f, "linux", "seccomp");
	assert_string_equal(bjson_string(bjson_object_get(sc, "defaultAction")), "SCMP_ACT_ALLOW");
	write_file(f->tmp.path, "profile.json", "{\"defaultAction\":\"SCMP_ACT_MAYBE\"}");
	assert_int_equal(generate_fails(f, &in), -EINVAL);
	assert_contains(f->err->msg, "config.linux.security_context.seccomp.localhost_ref");
	assert_contains(f->err->msg, "SCMP_ACT_MAYBE");
	snprintf(path, sizeof(path), "%s/missing.json", f->tmp.path);
	assert_int_equal(generate_fails(f, &in), -ENOENT);
	assert_contains(f->err->msg, "missing.json");
}

static void test_map_privileged(void **state)
{
	struct fx *f = *state;
	char *masked[] = { "/proc/kcore", NULL };
	struct container_config req = { .command = cmd_true,
					.privileged = true,
					.masked_paths = masked };
	struct ocispec_input in = MAPPING_INPUT(f, req);
	assert_int_equal(generate_fails(f, &in), -EINVAL);
	assert_contains(f->err->msg, "privileged: the pod is not privileged");
	in.pod_privileged = true;
	regenerate(f, &in);
	assert_int_equal(bjson_array_size(caps_of(f, "bounding")), own_caps());
	assert_int_equal(bjson_type_of(doc_at(f, "linux", "seccomp")), JSON_ABSENT);
	assert_int_equal(bjson_array_size(doc_at(f, "linux", "maskedPaths")), 0);
	assert_int_equal(bjson_array_size(doc_at(f, "linux", "readonlyPaths")), 0);
	const struct json *sys = find_by(doc_at(f, "mounts", NULL), "destination", "/sys");
	assert_false(has_string(bjson_object_get(sys, "options"), "ro"));
	assert_true(has_string(bjson_object_get(sys, "options"), "rw"));
	/* the host's devices, /dev/null among them */
	const struct json *null = find_by(doc_at(f, "linux", "devices"), "path", "/dev/null");
	int64_t maj = 0, min = 0;
	assert_true(bjson_int64(bjson_object_get(null, "major"), &maj));
	assert_true(bjson_int64(bjson_object_get(null, "minor"), &min));
	assert_true(maj == 1 && min == 3);
	assert_null(find_by(doc_at(f, "linux", "devices"), "path", "/dev/console"));
}

static void test_map_paths_and_privileges(void **state)
{
	struct fx *f = *state;
	struct container_config req = { .command = cmd_true };
	struct ocispec_input in = MAPPING_INPUT(f, req);
	generate(f, &in);
	/* containerd's defaults */
	assert_true(has_string(doc_at(f, "linux", "maskedPaths"), "/proc/kcore"));
	assert_true(has_string(doc_at(f, "linux", "readonlyPaths"), "/proc/sysrq-trigger"));
	assert_false(bjson_bool(doc_at(f, "process", "noNewPrivileges")));
	char *masked[] = { "/proc/secret", NULL }, *none[] = { NULL };
	req.masked_paths = masked;
	req.readonly_paths = none;
	req.no_new_privs = true;
	req.readonly_rootfs = true;
	req.oom_score_adj = 1000;
	regenerate(f, &in);
	const struct json *m = doc_at(f, "linux", "maskedPaths");
	assert_int_equal(bjson_array_size(m), 1);
	assert_true(has_string(m, "/proc/secret"));
	assert_int_equal(bjson_array_size(doc_at(f, "linux", "readonlyPaths")), 0);
	assert_true(bjson_bool(doc_at(f, "process", "noNewPrivileges")));
	assert_true(bjson_bool(doc_at(f, "root", "readonly")));
	int64_t oom = 0;
	assert_true(bjson_int64(doc_at(f, "process", "oomScoreAdj"), &oom));
	assert_int_equal(oom, 1000);
}

static void test_map_supplemental_groups(void **state)
{
	struct fx *f = *state;
	int64_t groups[] = { 3000, 10 };
	struct container_config req = { .command = cmd_true,
					.run_as_username = "tester",
					.supplemental_groups = groups,
					.n_supplemental_groups = 2 };
	struct ocispec_input in = MAPPING_INPUT(f, req);
	generate(f, &in);
	const struct json *gids = bjson_object_get(doc_at(f, "process", "user"), "additionalGids");
	/* /etc/group's extra (2000) and wheel (10), then 3000; 10 once */
	assert_int_equal(bjson_array_size(gids), 3);
	req.supplemental_groups_strict = true;
	regenerate(f, &in);
	gids = bjson_object_get(doc_at(f, "process", "user"), "additionalGids");
	assert_int_equal(bjson_array_size(gids), 2);
	int64_t g = 0;
	assert_true(bjson_int64(bjson_array_get(gids, 0), &g));
	assert_int_equal(g, 3000);
}

static void test_map_resources(void **state)
{
	struct fx *f = *state;
	struct hugepage_limit huge[] = { { "2MB", 4194304 } };
	struct container_config req = { .command = cmd_true,
					.cpu_shares = 512,
					.cpu_quota = 20000,
					.cpu_period = 100000,
					.cpuset_cpus = "0-1",
					.cpuset_mems = "0",
					.memory_limit_in_bytes = 64 << 20,
					.memory_swap_limit_in_bytes = 128 << 20,
					.hugepage_limits = huge,
					.n_hugepage_limits = 1,
					.unified_json = "{\"memory.high\":\"50000000\"}" };
	struct ocispec_input in = MAPPING_INPUT(f, req);
	generate(f, &in);
	const struct json *res = doc_at(f, "linux", "resources");
	const struct json *cpu = bjson_object_get(res, "cpu"), *mem = bjson_object_get(res, "memory");
	int64_t v = 0;
	assert_true(bjson_int64(bjson_object_get(cpu, "shares"), &v) && v == 512);
	assert_true(bjson_int64(bjson_object_get(cpu, "quota"), &v) && v == 20000);
	assert_true(bjson_int64(bjson_object_get(cpu, "period"), &v) && v == 100000);
	assert_string_equal(bjson_string(bjson_object_get(cpu, "cpus")), "0-1");
	assert_string_equal(bjson_string(bjson_object_get(cpu, "mems")), "0");
	assert_true(bjson_int64(bjson_object_get(mem, "limit"), &v) && v == 64 << 20);
	assert_true(bjson_int64(bjson_object_get(mem, "swap"), &v) && v == 128 << 20);
	const struct json *h = bjson_array_get(bjson_object_get(res, "hugepageLimits"), 0);
	assert_string_equal(bjson_string(bjson_object_get(h, "pageSize")), "2MB");
	assert_true(bjson_int64(bjson_object_get(h, "limit"), &v) && v == 4194304);
	assert_string_equal(
		bjson_string(bjson_object_get(bjson_object_get(res, "unified"), "memory.high")),
		"50000000");
	struct container_config empty = { .command = cmd_true };
	in.req = &empty;
	regenerate(f, &in);
	assert_int_equal(bjson_type_of(doc_at(f, "linux", "resources")), JSON_ABSENT);
}

static void test_map_namespaces(void **state)
{
	struct fx *f = *state;
	struct container_config req = { .command = cmd_true,
					.has_ns_options = true,
					.net_mode = NS_MODE_POD,
					.ipc_mode = NS_MODE_POD,
					.pid_mode = NS_MODE_TARGET,
					.target_id = "c1" };
	struct ocispec_input in = MAPPING_INPUT(f, req);
	assert_int_equal(generate_fails(f, &in), -EINVAL);
	assert_contains(f->err->msg, "target_id: container c1 is not running");
	in.target_pidns_path = "/proc/42/ns/pid";
	regenerate(f, &in);
	const struct json *ns = doc_at(f, "linux", "namespaces");
	assert_string_equal(bjson_string(bjson_object_get(find_by(ns, "type", "pid"), "path")),
			    "/proc/42/ns/pid");
	/* POD needs the pod's shared pid namespace */
	req.pid_mode = NS_MODE_POD;
	assert_int_equal(generate_fails(f, &in), -EINVAL);
	assert_string_equal(f->err->msg, "config.linux.security_context.namespace_options.pid: "
					 "POD, but the pod's is CONTAINER");
	in.pidns_path = "/run/p/pid";
	regenerate(f, &in);
	ns = doc_at(f, "linux", "namespaces");
	assert_string_equal(bjson_string(bjson_object_get(find_by(ns, "type", "pid"), "path")),
			    "/run/p/pid");
	/* CONTAINER: its own, even in a pod that shares one */
	req.pid_mode = NS_MODE_CONTAINER;
	regenerate(f, &in);
	ns = doc_at(f, "linux", "namespaces");
	assert_non_null(find_by(ns, "type", "pid"));
	assert_null(bjson_object_get(find_by(ns, "type", "pid"), "path"));
	/* network NODE in a pod with its own network */
	req.net_mode = NS_MODE_NODE;
	assert_int_equal(generate_fails(f, &in), -EINVAL);
	assert_string_equal(f->err->msg, "config.linux.security_context.namespace_options.network: "
					 "NODE, but the pod's is POD");
	/* NODE pid only in a hostPID pod */
	req.net_mode = NS_MODE_POD;
	req.pid_mode = NS_MODE_NODE;
	assert_int_equal(generate_fails(f, &in), -EINVAL);
	in.pidns_path = NULL;
	in.pid_host = true;
	regenerate(f, &in);
	assert_null(find_by(doc_at(f, "linux", "namespaces"), "type", "pid"));
}

static void test_map_devices(void **state)
{
	struct fx *f = *state;
	struct device_mapping dev[] = { { "/dev/mynull", "/dev/null", "r" } };
	struct container_config req = { .command = cmd_true, .devices = dev, .n_devices = 1 };
	struct ocispec_input in = MAPPING_INPUT(f, req);
	generate(f, &in);
	const struct json *d = find_by(doc_at(f, "linux", "devices"), "path", "/dev/mynull");
	assert_string_equal(bjson_string(bjson_object_get(d, "type")), "c");
	int64_t v = 0;
	assert_true(bjson_int64(bjson_object_get(d, "major"), &v) && v == 1);
	assert_true(bjson_int64(bjson_object_get(d, "minor"), &v) && v == 3);
	assert_true(bjson_int64(bjson_object_get(d, "fileMode"), &v));
	assert_int_equal(v & 0222, 0); /* no "w": no write bits */
	dev[0].host_path = f->tmp.path;
	assert_int_equal(generate_fails(f, &in), -EINVAL);
	assert_contains(f->err->msg, "config.devices[0].host_path");
	assert_contains(f->err->msg, "is not a device node");
}

/* Propagation needs the host path's mount to propagate: made here in a mount namespace of the
 * test's own (private, then shared). */
static void test_map_mount_propagation(void **state)
{
	struct fx *f = *state;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		skip();
		return;
	}
	char dir[160];
	snprintf(dir, sizeof(dir), "%s/vol", f->tmp.path);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(mount("tmpfs", dir, "tmpfs", 0, NULL), 0);
	struct bind_mount m[] = { { "/vol", dir, false, PROPAGATION_BIDIRECTIONAL } };
	struct container_config req = { .command = cmd_true, .mounts = m, .n_mounts = 1 };
	struct ocispec_input in = MAPPING_INPUT(f, req);
	assert_int_equal(generate_fails(f, &in), -EINVAL);
	assert_contains(f->err->msg, "config.mounts[0].propagation: BIDIRECTIONAL needs");
	m[0].propagation = PROPAGATION_HOST_TO_CONTAINER;
	assert_int_equal(generate_fails(f, &in), -EINVAL);
	assert_contains(f->err->msg, "HOST_TO_CONTAINER needs");
	assert_int_equal(mount(NULL, dir, NULL, MS_SHARED, NULL), 0);
	regenerate(f, &in);
	const struct json *vol = find_by(doc_at(f, "mounts", NULL), "destination", "/vol");
	assert_true(has_string(bjson_object_get(vol, "options"), "rslave"));
	assert_string_equal(bjson_string(doc_at(f, "linux", "rootfsPropagation")), "rslave");
	m[0].propagation = PROPAGATION_BIDIRECTIONAL;
	regenerate(f, &in);
	vol = find_by(doc_at(f, "mounts", NULL), "destination", "/vol");
	assert_true(has_string(bjson_object_get(vol, "options"), "rshared"));
	assert_string_equal(bjson_string(doc_at(f, "linux", "rootfsPropagation")), "rshared");
	assert_int_equal(umount2(dir, MNT_DETACH), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_command_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_nothing_to_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_from_request_and_image, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_unknown_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_lookup_stays_in_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_generate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_generate_host_namespaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_capabilities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_seccomp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_privileged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_paths_and_privileges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_supplemental_groups, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_resources, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_namespaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_devices, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_mount_propagation, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
