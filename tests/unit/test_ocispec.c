/* cri/ocispec.c: a CRI container's config.json, from a request, an image config and a pod, with
 * user and group names looked up in a root filesystem made in a temporary directory. */
#include "unit.h"

#include "base/cleanup.h"
#include "base/json.h"
#include "cri/ocispec.h"

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
	struct bind_mount mounts[] = { { "/data", "/host/data", true } };
	struct container_config req = { .name = "c",
					.image = "i",
					.envs = envs,
					.tty = true,
					.mounts = mounts,
					.n_mounts = 1,
					.memory_limit_in_bytes = 1 << 20,
					.cpu_quota = 50000,
					.cpu_period = 100000 };
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
			   argv, &f->text, &f->err));
	f->doc = parse(f->text);
	assert_false(bjson_bool(bjson_object_get(f->doc, "terminal")));
	const struct json *args = bjson_object_get(f->doc, "args");
	assert_int_equal(bjson_array_size(args), 2);
	assert_string_equal(bjson_string(bjson_array_get(args, 0)), "/bin/echo");
	assert_string_equal(bjson_string(bjson_object_get(f->doc, "cwd")), "/w");
	assert_true(has_string(bjson_object_get(f->doc, "env"), "A=1"));
	assert_int_equal(ocispec_exec_process("{}", argv, &f->text, &f->err), -EINVAL);
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
