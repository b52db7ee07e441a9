/* runtime/config.c: config.json parsing and validation. Every refusal must name its field. */
#include "unit.h"

#include "runtime/config-internal.h"

#include <linux/mount.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

struct fx {
	struct oci_config *c;
	struct berth_error *err;
	struct json *j;
	struct oci_process p;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	oci_config_free(f->c);
	berth_error_free(f->err);
	bjson_free(f->j);
	oci_process_clear(&f->p);
	free(f);
	return 0;
}

/* A minimal valid config, with extra members spliced in: P into "process", L into "linux", T at
 * the top level after everything else. A later duplicate key wins, so an extra member replaces
 * the default one (and null makes a field absent). */
static char *make_config(const char *P, const char *L, const char *T)
{
	char *text = NULL;
	int n = asprintf(&text,
			 "{\"ociVersion\":\"1.2.0\",\"root\":{\"path\":\"rootfs\"},"
			 "\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"%s%s},"
			 "\"linux\":{\"namespaces\":[{\"type\":\"mount\"}]%s%s}%s%s}",
			 P ? "," : "", P ? P : "", L ? "," : "", L ? L : "", T ? "," : "",
			 T ? T : "");
	assert_true(n > 0);
	return text;
}

static int parse_with(struct fx *f, const char *P, const char *L, const char *T)
{
	f->c = oci_config_free(f->c);
	berth_error_freep(&f->err);
	char *text = make_config(P, L, T);
	int r = oci_config_parse(text, &f->c, &f->err);
	free(text);
	return r;
}

static void expect_ok(struct fx *f, const char *P, const char *L, const char *T, int line)
{
	int r = parse_with(f, P, L, T);
	if (r < 0)
		fail_msg("line %d: expected success, got %d: %s", line, r,
			 f->err ? f->err->msg : "(no error set)");
	if (!f->c || f->err)
		fail_msg("line %d: success without a config, or with an error set", line);
}

static void expect_err(struct fx *f, int code, const char *needle, const char *P, const char *L,
		       const char *T, int line)
{
	int r = parse_with(f, P, L, T);
	if (r >= 0)
		fail_msg("line %d: expected an error naming \"%s\", but the config was accepted",
			 line, needle);
	if (r != -code)
		fail_msg("line %d: expected %d, got %d (%s)", line, -code, r,
			 f->err ? f->err->msg : "(no error set)");
	if (!f->err || f->err->code != code)
		fail_msg("line %d: error object missing or with the wrong code", line);
	if (!strstr(f->err->msg, needle))
		fail_msg("line %d: \"%s\" does not name \"%s\"", line, f->err->msg, needle);
	if (f->c)
		fail_msg("line %d: a config was returned with the error", line);
}

#define OK(P, L, T) expect_ok(f, P, L, T, __LINE__)
#define ERR(code, needle, P, L, T) expect_err(f, code, needle, P, L, T, __LINE__)
#define NS(...) "\"namespaces\":[{\"type\":\"mount\"}," __VA_ARGS__ "]"

/* ---- the whole document ---- */

static void test_minimal(void **state)
{
	struct fx *f = *state;
	OK(NULL, NULL, NULL);
	struct oci_config *c = f->c;
	assert_string_equal(c->oci_version, "1.2.0");
	assert_string_equal(c->root_path, "rootfs");
	assert_false(c->root_readonly);
	assert_non_null(c->process.args);
	assert_string_equal(c->process.args[0], "sh");
	assert_null(c->process.args[1]);
	assert_null(c->process.env);
	assert_string_equal(c->process.cwd, "/");
	assert_false(c->process.terminal);
	assert_false(c->process.no_new_privileges);
	assert_false(c->process.has_oom_score_adj);
	assert_false(c->process.has_umask);
	assert_int_equal(c->process.uid, 0);
	assert_int_equal(c->process.n_rlimits, 0);
	assert_int_equal(c->n_namespaces, 1);
	assert_int_equal(c->namespaces[0].type, CLONE_NEWNS);
	assert_null(c->namespaces[0].path);
	assert_ptr_equal(oci_config_namespace(c, CLONE_NEWNS), &c->namespaces[0]);
	assert_null(oci_config_namespace(c, CLONE_NEWPID));
	assert_null(c->hostname);
	assert_int_equal(c->n_mounts, 0);
	assert_int_equal(c->n_devices, 0);
	assert_int_equal(c->rootfs_propagation, 0);
	assert_null(c->annotations);
	assert_false(c->boottime.set);
	assert_null(oci_config_free(NULL));
}

static void test_document(void **state)
{
	struct fx *f = *state;
	assert_int_equal(oci_config_parse("{\"ociVersion\":", &f->c, &f->err), -EINVAL);
	assert_contains(f->err->msg, "invalid JSON");
	berth_error_freep(&f->err);
	assert_int_equal(oci_config_parse("[]", &f->c, &f->err), -EINVAL);
	assert_contains(f->err->msg, "config: must be a JSON object");
	assert_null(f->c);

	ERR(EINVAL, "ociVersion: missing", NULL, NULL, "\"ociVersion\":null");
	ERR(EINVAL, "ociVersion", NULL, NULL, "\"ociVersion\":\"2.0.0\"");
	ERR(EINVAL, "ociVersion: must be a string", NULL, NULL, "\"ociVersion\":1");
	OK(NULL, NULL, "\"ociVersion\":\"1.0.0\"");
}

/* ---- process ---- */

static void test_process_args(void **state)
{
	struct fx *f = *state;
	OK("\"args\":[\"/bin/echo\",\"a b\",\"\"]", NULL, NULL);
	assert_string_equal(f->c->process.args[0], "/bin/echo");
	assert_string_equal(f->c->process.args[1], "a b");
	assert_string_equal(f->c->process.args[2], "");
	assert_null(f->c->process.args[3]);

	ERR(EINVAL, "process.args", "\"args\":null", NULL, NULL);
	ERR(EINVAL, "process.args", "\"args\":[]", NULL, NULL);
	ERR(EINVAL, "process.args", "\"args\":[\"\"]", NULL, NULL);
	ERR(EINVAL, "process.args[1]", "\"args\":[\"sh\",2]", NULL, NULL);
	ERR(EINVAL, "process.args: must be an array", "\"args\":\"sh\"", NULL, NULL);
	ERR(ENOTSUP, "process.commandLine", "\"commandLine\":\"sh -c x\"", NULL, NULL);
	ERR(EINVAL, "process: missing", NULL, NULL, "\"process\":null");
	ERR(EINVAL, "process: must be an object", NULL, NULL, "\"process\":[]");
}

static void test_process_env_and_cwd(void **state)
{
	struct fx *f = *state;
	OK("\"env\":[\"PATH=/bin\",\"EMPTY=\",\"EQ=a=b\"],\"cwd\":\"/home/u\"", NULL, NULL);
	assert_string_equal(f->c->process.env[0], "PATH=/bin");
	assert_string_equal(f->c->process.env[1], "EMPTY=");
	assert_string_equal(f->c->process.env[2], "EQ=a=b");
	assert_null(f->c->process.env[3]);
	assert_string_equal(f->c->process.cwd, "/home/u");

	ERR(EINVAL, "process.env", "\"env\":[\"PATH=/bin\",\"NOVALUE\"]", NULL, NULL);
	ERR(EINVAL, "process.env", "\"env\":[\"=x\"]", NULL, NULL);
	ERR(EINVAL, "process.env[0]", "\"env\":[1]", NULL, NULL);
	ERR(EINVAL, "process.cwd: missing", "\"cwd\":null", NULL, NULL);
	ERR(EINVAL, "process.cwd", "\"cwd\":\"relative/dir\"", NULL, NULL);
	ERR(EINVAL, "process.cwd", "\"cwd\":\"\"", NULL, NULL);
	ERR(EINVAL, "process.cwd: must be a string", "\"cwd\":5", NULL, NULL);
}

static void test_process_user(void **state)
{
	struct fx *f = *state;
	OK("\"user\":{\"uid\":1000,\"gid\":100,\"umask\":18,\"additionalGids\":[5,4294967294]}",
	   NULL, NULL);
	struct oci_process *p = &f->c->process;
	assert_int_equal(p->uid, 1000);
	assert_int_equal(p->gid, 100);
	assert_true(p->has_umask);
	assert_int_equal(p->umask, 022);
	assert_int_equal(p->n_additional_gids, 2);
	assert_int_equal(p->additional_gids[0], 5);
	assert_int_equal(p->additional_gids[1], 4294967294u);

	OK("\"user\":{}", NULL, NULL);
	assert_int_equal(f->c->process.uid, 0);
	assert_int_equal(f->c->process.gid, 0);
	assert_false(f->c->process.has_umask);
	assert_int_equal(f->c->process.n_additional_gids, 0);

	ERR(EINVAL, "process.user.uid", "\"user\":{\"uid\":-1}", NULL, NULL);
	ERR(EINVAL, "process.user.uid", "\"user\":{\"uid\":4294967295}", NULL, NULL);
	ERR(EINVAL, "process.user.uid", "\"user\":{\"uid\":\"0\"}", NULL, NULL);
	ERR(EINVAL, "process.user.gid", "\"user\":{\"gid\":1.5}", NULL, NULL);
	ERR(EINVAL, "process.user.umask", "\"user\":{\"umask\":512}", NULL, NULL);
	ERR(EINVAL, "process.user.additionalGids[1]", "\"user\":{\"additionalGids\":[1,\"x\"]}",
	    NULL, NULL);
	ERR(EINVAL, "process.user.additionalGids[0]", "\"user\":{\"additionalGids\":[4294967295]}",
	    NULL, NULL);
	ERR(EINVAL, "process.user.additionalGids: must be an array",
	    "\"user\":{\"additionalGids\":5}", NULL, NULL);
	ERR(ENOTSUP, "process.user.username", "\"user\":{\"username\":\"root\"}", NULL, NULL);
	ERR(EINVAL, "process.user: must be an object", "\"user\":\"root\"", NULL, NULL);
}

static void test_process_rlimits(void **state)
{
	struct fx *f = *state;
	OK("\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":1024,\"hard\":4096},"
	   "{\"type\":\"RLIMIT_CORE\",\"soft\":0,\"hard\":18446744073709551615}]",
	   NULL, NULL);
	struct oci_process *p = &f->c->process;
	assert_int_equal(p->n_rlimits, 2);
	assert_int_equal(p->rlimits[0].resource, RLIMIT_NOFILE);
	assert_int_equal(p->rlimits[0].soft, 1024);
	assert_int_equal(p->rlimits[0].hard, 4096);
	assert_int_equal(p->rlimits[1].resource, RLIMIT_CORE);
	assert_true(p->rlimits[1].hard == UINT64_MAX);

	ERR(EINVAL, "process.rlimits[0].type",
	    "\"rlimits\":[{\"type\":\"RLIMIT_FOO\",\"soft\":1,\"hard\":1}]", NULL, NULL);
	ERR(EINVAL, "process.rlimits[0].type: missing", "\"rlimits\":[{\"soft\":1,\"hard\":1}]",
	    NULL, NULL);
	ERR(EINVAL, "process.rlimits[0]: soft 10 is above hard 5",
	    "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":10,\"hard\":5}]", NULL, NULL);
	ERR(EINVAL, "process.rlimits[1].type: RLIMIT_NOFILE given twice",
	    "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":1,\"hard\":1},"
	    "{\"type\":\"RLIMIT_NOFILE\",\"soft\":2,\"hard\":2}]",
	    NULL, NULL);
	ERR(EINVAL, "process.rlimits[0]", "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":1}]",
	    NULL, NULL);
	ERR(EINVAL, "process.rlimits[0].hard",
	    "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":1,\"hard\":-1}]", NULL, NULL);
	ERR(EINVAL, "process.rlimits[0]: must be an object", "\"rlimits\":[\"RLIMIT_NOFILE\"]",
	    NULL, NULL);
	ERR(EINVAL, "process.rlimits: must be an array", "\"rlimits\":{}", NULL, NULL);
}

static void test_process_console_oom_nnp(void **state)
{
	struct fx *f = *state;
	OK("\"terminal\":true,\"consoleSize\":{\"height\":24,\"width\":80},\"oomScoreAdj\":-1000,"
	   "\"noNewPrivileges\":true",
	   NULL, NULL);
	struct oci_process *p = &f->c->process;
	assert_true(p->terminal);
	assert_true(p->has_console_size);
	assert_int_equal(p->console_height, 24);
	assert_int_equal(p->console_width, 80);
	assert_true(p->has_oom_score_adj);
	assert_int_equal(p->oom_score_adj, -1000);
	assert_true(p->no_new_privileges);

	OK("\"oomScoreAdj\":1000", NULL, NULL);
	assert_int_equal(f->c->process.oom_score_adj, 1000);

	ERR(EINVAL, "process.terminal: must be a boolean", "\"terminal\":\"yes\"", NULL, NULL);
	ERR(EINVAL, "process.consoleSize.height", "\"consoleSize\":{\"height\":70000,\"width\":80}",
	    NULL, NULL);
	ERR(EINVAL, "process.consoleSize.width", "\"consoleSize\":{\"height\":1,\"width\":-80}",
	    NULL, NULL);
	ERR(EINVAL, "process.consoleSize: must be an object", "\"consoleSize\":[24,80]", NULL,
	    NULL);
	ERR(EINVAL, "process.oomScoreAdj", "\"oomScoreAdj\":1001", NULL, NULL);
	ERR(EINVAL, "process.oomScoreAdj", "\"oomScoreAdj\":-1001", NULL, NULL);
	ERR(EINVAL, "process.oomScoreAdj", "\"oomScoreAdj\":1.5", NULL, NULL);
	ERR(EINVAL, "process.oomScoreAdj", "\"oomScoreAdj\":\"5\"", NULL, NULL);
	ERR(EINVAL, "process.noNewPrivileges: must be a boolean", "\"noNewPrivileges\":\"true\"",
	    NULL, NULL);
}

/* ---- root, hostname ---- */

static void test_root(void **state)
{
	struct fx *f = *state;
	OK(NULL, NULL, "\"root\":{\"path\":\"/abs/rootfs\",\"readonly\":true}");
	assert_string_equal(f->c->root_path, "/abs/rootfs");
	assert_true(f->c->root_readonly);

	ERR(EINVAL, "root: missing", NULL, NULL, "\"root\":null");
	ERR(EINVAL, "root.path: missing", NULL, NULL, "\"root\":{}");
	ERR(EINVAL, "root.path", NULL, NULL, "\"root\":{\"path\":\"\"}");
	ERR(EINVAL, "root.path: must be a string", NULL, NULL, "\"root\":{\"path\":1}");
	ERR(EINVAL, "root.readonly", NULL, NULL, "\"root\":{\"path\":\"r\",\"readonly\":1}");
	ERR(EINVAL, "root: must be an object", NULL, NULL, "\"root\":\"rootfs\"");
}

static void test_hostname(void **state)
{
	struct fx *f = *state;
	OK(NULL, NS("{\"type\":\"uts\"}"), "\"hostname\":\"box\",\"domainname\":\"example.org\"");
	assert_string_equal(f->c->hostname, "box");
	assert_string_equal(f->c->domainname, "example.org");

	ERR(EINVAL, "hostname", NULL, NULL, "\"hostname\":\"box\"");
	assert_contains(f->err->msg, "uts");
	ERR(EINVAL, "domainname", NULL, NULL, "\"domainname\":\"example.org\"");
	/* joining an existing uts namespace is not a new one */
	ERR(EINVAL, "hostname", NULL, NS("{\"type\":\"uts\",\"path\":\"/proc/1/ns/uts\"}"),
	    "\"hostname\":\"box\"");
	ERR(EINVAL, "hostname: must be a string", NULL, NS("{\"type\":\"uts\"}"), "\"hostname\":5");
}

/* ---- mounts ---- */

static void test_mounts_basic(void **state)
{
	struct fx *f = *state;
	OK(NULL, NULL,
	   "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
	   "{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\","
	   "\"options\":[\"nosuid\",\"mode=755\",\"strictatime\",\"size=65536k\"]},"
	   "{\"destination\":\"/sys\",\"type\":\"sysfs\",\"options\":"
	   "[\"nosuid\",\"nodev\",\"noexec\",\"ro\",\"relatime\",\"rprivate\"]}]");
	assert_int_equal(f->c->n_mounts, 3);
	struct oci_mount *m = f->c->mounts;
	assert_string_equal(m[0].destination, "/proc");
	assert_string_equal(m[0].type, "proc");
	assert_string_equal(m[0].source, "proc");
	assert_int_equal(m[0].flags, 0);
	assert_null(m[0].data);
	assert_false(m[0].bind);

	/* unknown options go to the filesystem, in order, joined by commas */
	assert_int_equal(m[1].flags, MS_NOSUID | MS_STRICTATIME);
	assert_string_equal(m[1].data, "mode=755,size=65536k");

	assert_int_equal(m[2].flags, MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY | MS_RELATIME);
	assert_int_equal(m[2].propagation, MS_PRIVATE | MS_REC);
	assert_null(m[2].source);
	assert_null(m[2].data);
}

static void test_mounts_bind_and_attrs(void **state)
{
	struct fx *f = *state;
	OK(NULL, NULL,
	   "\"mounts\":[{\"destination\":\"/a\",\"type\":\"bind\",\"source\":\"/src\"},"
	   "{\"destination\":\"/"
	   "b\",\"source\":\"data\",\"options\":[\"rbind\",\"rro\",\"rnosuid\"]},"
	   "{\"destination\":\"/c\",\"type\":\"none\",\"source\":\"/x\",\"options\":"
	   "[\"bind\",\"ro\",\"rw\",\"rro\",\"rrw\"]}]");
	struct oci_mount *m = f->c->mounts;
	assert_true(m[0].bind);
	assert_false(m[0].recursive_bind);
	assert_true(m[1].bind);
	assert_true(m[1].recursive_bind);
	assert_true(m[1].attr_set == (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID));
	assert_true(m[1].attr_clr == 0);
	assert_null(m[1].type);
	/* the later option wins */
	assert_true(m[2].bind);
	assert_int_equal(m[2].flags & MS_RDONLY, 0);
	assert_true(m[2].attr_set == 0);
	assert_true(m[2].attr_clr == MOUNT_ATTR_RDONLY);

	ERR(EINVAL, "mounts[0].source", NULL, NULL,
	    "\"mounts\":[{\"destination\":\"/a\",\"type\":\"bind\"}]");
	ERR(EINVAL, "mounts[0].source", NULL, NULL,
	    "\"mounts\":[{\"destination\":\"/a\",\"options\":[\"rbind\"],\"source\":\"\"}]");
}

static void test_mounts_refused(void **state)
{
	struct fx *f = *state;
	ERR(EINVAL, "mounts[0].destination", NULL, NULL,
	    "\"mounts\":[{\"destination\":\"proc\",\"type\":\"proc\"}]");
	ERR(EINVAL, "mounts[0].destination: missing", NULL, NULL,
	    "\"mounts\":[{\"type\":\"proc\"}]");
	ERR(EINVAL, "mounts[1].type", NULL, NULL,
	    "\"mounts\":[{\"destination\":\"/p\",\"type\":\"proc\"},{\"destination\":\"/q\"}]");
	/* idmap without a user namespace (test_idmap_option covers the rest) */
	ERR(EINVAL, "mounts[0].options", NULL, NULL,
	    "\"mounts\":[{\"destination\":\"/a\",\"type\":\"bind\",\"source\":\"/s\","
	    "\"options\":[\"rbind\",\"idmap\"]}]");
	assert_contains(f->err->msg, "idmap");
	ERR(ENOTSUP, "mounts[0]", NULL, NULL,
	    "\"mounts\":[{\"destination\":\"/a\",\"type\":\"bind\",\"source\":\"/s\","
	    "\"uidMappings\":[{\"containerID\":0,\"hostID\":1000,\"size\":1}]}]");
	assert_contains(f->err->msg, "uidMappings");
	ERR(EINVAL, "mounts[0].options", NULL, NULL,
	    "\"mounts\":[{\"destination\":\"/a\",\"type\":\"tmpfs\",\"options\":[\"remount\"]}]");
	ERR(EINVAL, "mounts[0].options[0]", NULL, NULL,
	    "\"mounts\":[{\"destination\":\"/a\",\"type\":\"tmpfs\",\"options\":[7]}]");
	ERR(EINVAL, "mounts[0].options: must be an array", NULL, NULL,
	    "\"mounts\":[{\"destination\":\"/a\",\"type\":\"tmpfs\",\"options\":\"ro\"}]");
	ERR(EINVAL, "mounts[1]: must be an object", NULL, NULL,
	    "\"mounts\":[{\"destination\":\"/a\",\"type\":\"tmpfs\"},\"/b\"]");
	ERR(EINVAL, "mounts: must be an array", NULL, NULL, "\"mounts\":{}");
}

/* ---- linux.namespaces ---- */

static void test_namespaces(void **state)
{
	struct fx *f = *state;
	OK(NULL,
	   NS("{\"type\":\"pid\"},{\"type\":\"network\",\"path\":\"/run/netns/"
	      "x\"},{\"type\":\"ipc\"},"
	      "{\"type\":\"uts\"},{\"type\":\"cgroup\"},{\"type\":\"time\"}"),
	   NULL);
	assert_int_equal(f->c->n_namespaces, 7);
	const int want[] = { CLONE_NEWNS,  CLONE_NEWPID,    CLONE_NEWNET, CLONE_NEWIPC,
			     CLONE_NEWUTS, CLONE_NEWCGROUP, CLONE_NEWTIME };
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(f->c->namespaces[i].type, want[i]);
	const struct oci_namespace *net = oci_config_namespace(f->c, CLONE_NEWNET);
	assert_non_null(net);
	assert_string_equal(net->path, "/run/netns/x");

	ERR(EINVAL, "linux.namespaces[1].type", NULL, NS("{\"type\":\"net\"}"), NULL);
	assert_contains(f->err->msg, "\"net\"");
	ERR(EINVAL, "linux.namespaces[2].type", NULL, NS("{\"type\":\"pid\"},{\"type\":\"pid\"}"),
	    NULL);
	assert_contains(f->err->msg, "twice");
	ERR(EINVAL, "linux.namespaces[1].type: missing", NULL, NS("{\"path\":\"/x\"}"), NULL);
	/* a new user namespace needs both maps; joining one by path is not supported yet */
	ERR(EINVAL, "linux.uidMappings", NULL, NS("{\"type\":\"user\"}"), NULL);
	assert_contains(f->err->msg, "needs uidMappings and gidMappings");
	ERR(ENOTSUP, "linux.namespaces[1].path", NULL, NS("{\"type\":\"user\",\"path\":\"/x\"}"),
	    NULL);
	ERR(EINVAL, "linux.namespaces", NULL, "\"namespaces\":[{\"type\":\"pid\"}]", NULL);
	assert_contains(f->err->msg, "mount namespace is required");
	ERR(EINVAL, "linux.namespaces", NULL, "\"namespaces\":null", NULL);
	ERR(EINVAL, "linux.namespaces: must be an array", NULL, "\"namespaces\":{}", NULL);
	ERR(ENOTSUP, "linux.namespaces[0].path", NULL,
	    "\"namespaces\":[{\"type\":\"mount\",\"path\":\"/proc/1/ns/mnt\"}]", NULL);
	ERR(EINVAL, "linux.namespaces[1].path", NULL,
	    NS("{\"type\":\"network\",\"path\":\"run/netns/x\"}"), NULL);
	ERR(EINVAL, "linux.namespaces[1]: must be an object", NULL, NS("\"pid\""), NULL);
	ERR(EINVAL, "linux: missing", NULL, NULL, "\"linux\":null");
	ERR(EINVAL, "linux: must be an object", NULL, NULL, "\"linux\":[]");
}

/* ---- linux.devices ---- */

static void test_devices(void **state)
{
	struct fx *f = *state;
	OK(NULL,
	   "\"devices\":[{\"path\":\"/dev/fuse\",\"type\":\"c\",\"major\":10,\"minor\":229,"
	   "\"fileMode\":438,\"uid\":0,\"gid\":5},"
	   "{\"path\":\"/dev/u\",\"type\":\"u\",\"major\":1,\"minor\":3},"
	   "{\"path\":\"/dev/sda\",\"type\":\"b\",\"major\":8,\"minor\":0},"
	   "{\"path\":\"/dev/fifo\",\"type\":\"p\"}]",
	   NULL);
	assert_int_equal(f->c->n_devices, 4);
	struct oci_device *d = f->c->devices;
	assert_string_equal(d[0].path, "/dev/fuse");
	assert_int_equal(d[0].type, S_IFCHR);
	assert_int_equal(d[0].major, 10);
	assert_int_equal(d[0].minor, 229);
	assert_true(d[0].has_mode);
	assert_int_equal(d[0].mode, 0666);
	assert_true(d[0].has_uid);
	assert_true(d[0].has_gid);
	assert_int_equal(d[0].gid, 5);
	assert_int_equal(d[1].type, S_IFCHR);
	assert_false(d[1].has_mode);
	assert_false(d[1].has_uid);
	assert_int_equal(d[2].type, S_IFBLK);
	assert_int_equal(d[2].major, 8);
	assert_int_equal(d[3].type, S_IFIFO);

	ERR(EINVAL, "linux.devices[0].type", NULL,
	    "\"devices\":[{\"path\":\"/dev/x\",\"type\":\"x\",\"major\":1,\"minor\":1}]", NULL);
	ERR(EINVAL, "linux.devices[0].type: missing", NULL, "\"devices\":[{\"path\":\"/dev/x\"}]",
	    NULL);
	ERR(EINVAL, "linux.devices[0].path: missing", NULL, "\"devices\":[{\"type\":\"c\"}]", NULL);
	ERR(EINVAL, "linux.devices[0].path", NULL,
	    "\"devices\":[{\"path\":\"/etc/x\",\"type\":\"c\",\"major\":1,\"minor\":1}]", NULL);
	ERR(EINVAL, "linux.devices[0].path", NULL,
	    "\"devices\":[{\"path\":\"/dev/../etc/"
	    "passwd\",\"type\":\"c\",\"major\":1,\"minor\":1}]",
	    NULL);
	ERR(EINVAL, "linux.devices[0].path", NULL,
	    "\"devices\":[{\"path\":\"dev/null\",\"type\":\"c\",\"major\":1,\"minor\":3}]", NULL);
	ERR(EINVAL, "linux.devices[0]", NULL,
	    "\"devices\":[{\"path\":\"/dev/x\",\"type\":\"c\",\"major\":1}]", NULL);
	assert_contains(f->err->msg, "major and minor");
	ERR(EINVAL, "linux.devices[0]", NULL, "\"devices\":[{\"path\":\"/dev/x\",\"type\":\"b\"}]",
	    NULL);
	ERR(EINVAL, "linux.devices[0].fileMode", NULL,
	    "\"devices\":[{\"path\":\"/dev/x\",\"type\":\"p\",\"fileMode\":4096}]", NULL);
	ERR(EINVAL, "linux.devices[0].major", NULL,
	    "\"devices\":[{\"path\":\"/dev/x\",\"type\":\"c\",\"major\":4294967296,\"minor\":1}]",
	    NULL);
	ERR(EINVAL, "linux.devices: must be an array", NULL, "\"devices\":{}", NULL);
}

static void test_devices_path_dotdot_end(void **state)
{
	struct fx *f = *state;
	/* "/dev/.." is the rootfs itself, not a path under /dev */
	int r = parse_with(
		f, NULL,
		"\"devices\":[{\"path\":\"/dev/..\",\"type\":\"c\",\"major\":1,\"minor\":3}]",
		NULL);
	REGRESSION_IF(r == 0, "runtime/config.c parse_device: linux.devices[].path \"/dev/..\" (and "
			     "\"/dev/.\", \"/dev/\") is accepted as a path under /dev");
	assert_int_equal(r, -EINVAL);
	assert_contains(f->err->msg, "linux.devices[0].path");
}

/* ---- masked / read-only paths, propagation ---- */

static void test_masked_readonly(void **state)
{
	struct fx *f = *state;
	OK(NULL,
	   "\"maskedPaths\":[\"/proc/kcore\",\"/sys/firmware\"],\"readonlyPaths\":[\"/proc/sys\"]",
	   NULL);
	assert_string_equal(f->c->masked_paths[0], "/proc/kcore");
	assert_string_equal(f->c->masked_paths[1], "/sys/firmware");
	assert_null(f->c->masked_paths[2]);
	assert_string_equal(f->c->readonly_paths[0], "/proc/sys");
	assert_null(f->c->readonly_paths[1]);

	ERR(EINVAL, "linux.maskedPaths", NULL, "\"maskedPaths\":[\"/ok\",\"proc/kcore\"]", NULL);
	assert_contains(f->err->msg, "proc/kcore");
	ERR(EINVAL, "linux.readonlyPaths", NULL, "\"readonlyPaths\":[\"proc/sys\"]", NULL);
	ERR(EINVAL, "linux.maskedPaths[0]", NULL, "\"maskedPaths\":[1]", NULL);
	ERR(EINVAL, "linux.readonlyPaths: must be an array", NULL, "\"readonlyPaths\":\"/x\"",
	    NULL);
}

static void test_rootfs_propagation(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *name;
		unsigned long flags;
	} ok[] = {
		{ "private", MS_PRIVATE },	 { "rprivate", MS_PRIVATE | MS_REC },
		{ "shared", MS_SHARED },	 { "rshared", MS_SHARED | MS_REC },
		{ "slave", MS_SLAVE },		 { "rslave", MS_SLAVE | MS_REC },
		{ "unbindable", MS_UNBINDABLE }, { "runbindable", MS_UNBINDABLE | MS_REC },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char L[64];
		snprintf(L, sizeof(L), "\"rootfsPropagation\":\"%s\"", ok[i].name);
		OK(NULL, L, NULL);
		assert_int_equal(f->c->rootfs_propagation, ok[i].flags);
	}
	ERR(EINVAL, "linux.rootfsPropagation", NULL, "\"rootfsPropagation\":\"bind\"", NULL);
	ERR(EINVAL, "linux.rootfsPropagation", NULL, "\"rootfsPropagation\":\"ro\"", NULL);
	ERR(EINVAL, "linux.rootfsPropagation", NULL, "\"rootfsPropagation\":\"sideways\"", NULL);
	ERR(EINVAL, "linux.rootfsPropagation: must be a string", NULL, "\"rootfsPropagation\":1",
	    NULL);
}

/* ---- sysctl ---- */

static void test_sysctl(void **state)
{
	struct fx *f = *state;
	OK(NULL,
	   NS("{\"type\":\"network\"},{\"type\":\"ipc\"},{\"type\":\"uts\"}") ","
									      "\"sysctl\":{\"net."
									      "ipv4.ip_forward\":"
									      "\"1\",\"kernel."
									      "shmmax\":\"4096\","
									      "\"fs.mqueue.msg_"
									      "max\":\"10\","
									      "\"kernel."
									      "domainname\":\"x\"}",
	   NULL);
	assert_int_equal(f->c->n_sysctls, 4);
	assert_string_equal(f->c->sysctls[0].key, "net.ipv4.ip_forward");
	assert_string_equal(f->c->sysctls[0].value, "1");
	assert_string_equal(f->c->sysctls[3].key, "kernel.domainname");

	ERR(EINVAL, "linux.sysctl", NULL, "\"sysctl\":{\"net.ipv4.ip_forward\":\"1\"}", NULL);
	assert_contains(f->err->msg, "net.ipv4.ip_forward");
	assert_contains(f->err->msg, "network");
	ERR(EINVAL, "linux.sysctl", NULL, "\"sysctl\":{\"kernel.msgmax\":\"1\"}", NULL);
	assert_contains(f->err->msg, "ipc");
	ERR(EINVAL, "linux.sysctl", NULL, "\"sysctl\":{\"kernel.hostname\":\"x\"}", NULL);
	assert_contains(f->err->msg, "uts");
	ERR(EINVAL, "linux.sysctl", NULL, "\"sysctl\":{\"kernel.panic\":\"1\"}", NULL);
	assert_contains(f->err->msg, "not namespaced");
	ERR(EINVAL, "linux.sysctl", NULL, "\"sysctl\":{\"vm.swappiness\":\"1\"}", NULL);
	assert_contains(f->err->msg, "vm.swappiness");

	static const char *const bad[] = { "", ".net.ipv4.x", "net/ipv4/ip_forward", "net..x",
					   "net.ipv4/../../x" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char L[256];
		snprintf(L, sizeof(L), NS("{\"type\":\"network\"}") ",\"sysctl\":{\"%s\":\"1\"}",
			 bad[i]);
		ERR(EINVAL, "not a sysctl name", NULL, L, NULL);
		assert_contains(f->err->msg, "linux.sysctl");
	}
	ERR(EINVAL, "linux.sysctl.net.ipv4.ip_forward", NULL,
	    NS("{\"type\":\"network\"}") ",\"sysctl\":{\"net.ipv4.ip_forward\":1}", NULL);
	ERR(EINVAL, "linux.sysctl: must be an object", NULL, "\"sysctl\":[]", NULL);
}

/* ---- timeOffsets ---- */

static void test_time_offsets(void **state)
{
	struct fx *f = *state;
	OK(NULL,
	   NS("{\"type\":\"time\"}") ",\"timeOffsets\":{\"boottime\":{\"secs\":-5,\"nanosecs\":100}"
				     ","
				     "\"monotonic\":{\"secs\":86400}}",
	   NULL);
	assert_true(f->c->boottime.set);
	assert_int_equal(f->c->boottime.secs, -5);
	assert_int_equal(f->c->boottime.nanosecs, 100);
	assert_true(f->c->monotonic.set);
	assert_int_equal(f->c->monotonic.secs, 86400);
	assert_int_equal(f->c->monotonic.nanosecs, 0);

	ERR(EINVAL, "linux.timeOffsets", NULL, "\"timeOffsets\":{\"monotonic\":{\"secs\":1}}",
	    NULL);
	assert_contains(f->err->msg, "time namespace");
	ERR(EINVAL, "linux.timeOffsets", NULL,
	    NS("{\"type\":\"time\",\"path\":\"/proc/1/ns/time\"}") ","
								   "\"timeOffsets\":{\"monotonic\":"
								   "{\"secs\":1}}",
	    NULL);
	ERR(EINVAL, "linux.timeOffsets.boottime.nanosecs", NULL,
	    NS("{\"type\":\"time\"}") ",\"timeOffsets\":{\"boottime\":{\"nanosecs\":1000000000}}",
	    NULL);
	ERR(EINVAL, "linux.timeOffsets.monotonic.secs", NULL,
	    NS("{\"type\":\"time\"}") ",\"timeOffsets\":{\"monotonic\":{\"secs\":1.5}}", NULL);
	ERR(EINVAL, "linux.timeOffsets.boottime: must be an object", NULL,
	    NS("{\"type\":\"time\"}") ",\"timeOffsets\":{\"boottime\":5}", NULL);
	ERR(EINVAL, "linux.timeOffsets: must be an object", NULL, "\"timeOffsets\":[]", NULL);
}

/* ---- annotations ---- */

static void test_annotations(void **state)
{
	struct fx *f = *state;
	OK(NULL, NULL, "\"annotations\":{\"org.example/a\":\"b\",\"c\":\"\"}");
	assert_non_null(f->c->annotations);
	assert_int_equal(bjson_object_size(f->c->annotations), 2);
	assert_string_equal(bjson_string(bjson_object_get(f->c->annotations, "org.example/a")), "b");

	ERR(EINVAL, "annotations.n", NULL, NULL, "\"annotations\":{\"s\":\"x\",\"n\":1}");
	ERR(EINVAL, "annotations.o", NULL, NULL, "\"annotations\":{\"o\":{}}");
	ERR(EINVAL, "annotations: must be an object", NULL, NULL, "\"annotations\":[]");
}

/* ---- fields berth does not implement yet ---- */

static const struct {
	char where; /* 'P' process, 'L' linux, 'T' top */
	const char *name;
	const char *member;  /* refused */
	const char *empties; /* accepted: an empty value of the same member */
} unsupported[] = {
	{ 'P', "process.apparmorProfile", "\"apparmorProfile\":\"docker-default\"",
	  "\"apparmorProfile\":null" },
	{ 'P', "process.selinuxLabel", "\"selinuxLabel\":\"system_u:system_r:container_t:s0\"",
	  "\"selinuxLabel\":null" },
	{ 'P', "process.ioPriority",
	  "\"ioPriority\":{\"class\":\"IOPRIO_CLASS_RT\",\"priority\":1}", "\"ioPriority\":{}" },
	{ 'P', "process.scheduler", "\"scheduler\":{\"policy\":\"SCHED_FIFO\"}",
	  "\"scheduler\":{}" },
	{ 'P', "process.execCPUAffinity", "\"execCPUAffinity\":{\"initial\":\"0\"}",
	  "\"execCPUAffinity\":{}" },
	{ 'L', "linux.mountLabel", "\"mountLabel\":\"system_u:object_r:container_file_t:s0\"",
	  "\"mountLabel\":null" },
	{ 'L', "linux.intelRdt", "\"intelRdt\":{\"closID\":\"c\"}", "\"intelRdt\":{}" },
	{ 'L', "linux.personality", "\"personality\":{\"domain\":\"LINUX32\"}",
	  "\"personality\":{}" },
	{ 'L', "linux.memoryPolicy", "\"memoryPolicy\":{\"mode\":\"MPOL_BIND\"}",
	  "\"memoryPolicy\":{}" },
	{ 'L', "linux.netDevices", "\"netDevices\":{\"eth0\":{\"name\":\"ctr0\"}}",
	  "\"netDevices\":{}" },
};

#define MAP(c, h, n) "{\"containerID\":" #c ",\"hostID\":" #h ",\"size\":" #n "}"

static void test_id_mappings(void **state)
{
	struct fx *f = *state;
	OK(NULL,
	   NS("{\"type\":\"user\"}") ",\"uidMappings\":[" MAP(0, 100000, 65536) "," MAP(
		   65536, 5000, 1) "],\"gidMappings\":[" MAP(0, 100000, 65536) "]",
	   NULL);
	assert_int_equal(f->c->n_uid_mappings, 2);
	assert_int_equal(f->c->uid_mappings[1].container_id, 65536);
	assert_int_equal(f->c->uid_mappings[1].host_id, 5000);
	assert_int_equal(f->c->n_gid_mappings, 1);
	assert_int_equal(f->c->gid_mappings[0].size, 65536);
	/* maps without a user namespace */
	ERR(EINVAL, "linux.uidMappings: mappings need a user namespace", NULL,
	    "\"namespaces\":[{\"type\":\"mount\"}],\"uidMappings\":[" MAP(0, 1, 1) "]", NULL);
	/* bad entries */
	ERR(EINVAL, "linux.uidMappings[0]: containerID, hostID and a size above 0", NULL,
	    NS("{\"type\":\"user\"}") ",\"uidMappings\":[" MAP(0, 1, 0) "],\"gidMappings\":[]",
	    NULL);
	ERR(EINVAL, "linux.gidMappings[0].hostID", NULL,
	    NS("{\"type\":\"user\"}") ",\"uidMappings\":[" MAP(0, 1, 1) "],"
					 "\"gidMappings\":[{\"containerID\":0,\"hostID\":\"1\",\"size\":1}]",
	    NULL);
	ERR(EINVAL, "linux.uidMappings[0]: the range passes 2^32", NULL,
	    NS("{\"type\":\"user\"}") ",\"uidMappings\":[" MAP(0, 4294967294, 5) "],"
					 "\"gidMappings\":[" MAP(0, 1, 1) "]",
	    NULL);
	ERR(EINVAL, "linux.uidMappings: must be an array", NULL,
	    NS("{\"type\":\"user\"}") ",\"uidMappings\":{}", NULL);
}

static void test_idmap_option(void **state)
{
	struct fx *f = *state;
	const char *user = NS("{\"type\":\"user\"}") ",\"uidMappings\":[" MAP(0, 100000, 65536)
			   "],\"gidMappings\":[" MAP(0, 100000, 65536) "]";
	const char *idmapped = "\"mounts\":[{\"destination\":\"/d\",\"type\":\"bind\","
			       "\"source\":\"/tmp\",\"options\":[\"rbind\",\"ridmap\"]}]";
	OK(NULL, user, idmapped);
	assert_true(f->c->mounts[0].idmap);
	assert_true(f->c->mounts[0].idmap_recursive);
	assert_null(f->c->mounts[0].data); /* not passed on to the filesystem */
	/* without a user namespace, or on a mount that is not a bind */
	ERR(EINVAL, "mounts[0].options: idmap needs a user namespace", NULL, NULL, idmapped);
	ERR(EINVAL, "mounts[0].options: idmap is for bind mounts", NULL, user,
	    "\"mounts\":[{\"destination\":\"/d\",\"type\":\"tmpfs\",\"options\":[\"idmap\"]}]");
}

static void test_unsupported_fields(void **state)
{
	struct fx *f = *state;
	for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
		const char *m = unsupported[i].member, *e = unsupported[i].empties;
		char w = unsupported[i].where;
		ERR(ENOTSUP, unsupported[i].name, w == 'P' ? m : NULL, w == 'L' ? m : NULL,
		    w == 'T' ? m : NULL);
		assert_contains(f->err->msg, "not supported");
		OK(w == 'P' ? e : NULL, w == 'L' ? e : NULL, w == 'T' ? e : NULL);
	}
	/* a non-empty scalar where an object is expected is not "empty" either */
	ERR(ENOTSUP, "linux.intelRdt", NULL, "\"intelRdt\":\"on\"", NULL);
}

static void test_unsupported_net_device_without_options(void **state)
{
	struct fx *f = *state;
	/* {"eth0": {}} asks to move eth0 into the container: the key alone is the request */
	int r = parse_with(f, NULL, "\"netDevices\":{\"eth0\":{}}", NULL);
	REGRESSION_IF(r == 0,
		     "runtime/config.c is_empty/refuse_unsupported: linux.netDevices "
		     "{\"eth0\":{}} counts as empty and is silently ignored (expected ENOTSUP)");
	assert_int_equal(r, -ENOTSUP);
	assert_contains(f->err->msg, "linux.netDevices");
}

/* ---- oci_process_parse on its own (exec -p process.json) ---- */

static void test_process_parse_standalone(void **state)
{
	struct fx *f = *state;
	assert_int_equal(bjson_parse("{\"args\":[\"ls\",\"-l\"],\"cwd\":\"/tmp\",\"env\":[\"A=1\"],"
				    "\"user\":{\"uid\":7,\"gid\":8},\"terminal\":true}",
				    &f->j, &f->err),
			 0);
	assert_int_equal(oci_process_parse(f->j, "exec", &f->p, &f->err), 0);
	assert_null(f->err);
	assert_string_equal(f->p.args[0], "ls");
	assert_string_equal(f->p.args[1], "-l");
	assert_string_equal(f->p.cwd, "/tmp");
	assert_string_equal(f->p.env[0], "A=1");
	assert_int_equal(f->p.uid, 7);
	assert_int_equal(f->p.gid, 8);
	assert_true(f->p.terminal);
	oci_process_clear(&f->p);
	assert_null(f->p.args);
	assert_null(f->p.cwd);

	/* errors name the prefix the caller chose */
	assert_int_equal(oci_process_parse(NULL, "exec", &f->p, &f->err), -EINVAL);
	assert_string_equal(f->err->msg, "exec: missing");
	berth_error_freep(&f->err);
	bjson_freep(&f->j);
	assert_int_equal(bjson_parse("{\"args\":[\"ls\"],\"cwd\":\"tmp\"}", &f->j, &f->err), 0);
	assert_int_equal(oci_process_parse(f->j, "my.proc", &f->p, &f->err), -EINVAL);
	assert_contains(f->err->msg, "my.proc.cwd");
	oci_process_clear(&f->p);
	berth_error_freep(&f->err);
	bjson_freep(&f->j);
	assert_int_equal(bjson_parse("[1]", &f->j, &f->err), 0);
	assert_int_equal(oci_process_parse(f->j, "exec", &f->p, &f->err), -EINVAL);
	assert_contains(f->err->msg, "exec: must be an object");
}

static void test_process_parse_refuses_unsupported(void **state)
{
	struct fx *f = *state;
	assert_int_equal(bjson_parse("{\"args\":[\"sh\"],\"cwd\":\"/\","
				    "\"apparmorProfile\":\"docker-default\"}",
				    &f->j, &f->err),
			 0);
	int r = oci_process_parse(f->j, "process", &f->p, &f->err);
	REGRESSION_IF(r == 0,
		     "runtime/config.c oci_process_parse: process.apparmorProfile (and the other "
		     "refused process fields) are silently ignored when the process comes "
		     "from exec -p process.json; only oci_config_parse refuses them");
	assert_int_equal(r, -ENOTSUP);
	assert_contains(f->err->msg, "process.apparmorProfile");
}

/* ---- name tables ---- */

static void test_namespace_names(void **state)
{
	(void)state;
	assert_int_equal(oci_namespace_type_from_name("pid"), CLONE_NEWPID);
	assert_int_equal(oci_namespace_type_from_name("network"), CLONE_NEWNET);
	assert_int_equal(oci_namespace_type_from_name("mount"), CLONE_NEWNS);
	assert_int_equal(oci_namespace_type_from_name("ipc"), CLONE_NEWIPC);
	assert_int_equal(oci_namespace_type_from_name("uts"), CLONE_NEWUTS);
	assert_int_equal(oci_namespace_type_from_name("user"), CLONE_NEWUSER);
	assert_int_equal(oci_namespace_type_from_name("cgroup"), CLONE_NEWCGROUP);
	assert_int_equal(oci_namespace_type_from_name("time"), CLONE_NEWTIME);
	assert_int_equal(oci_namespace_type_from_name("net"), -EINVAL);
	assert_int_equal(oci_namespace_type_from_name("PID"), -EINVAL);
	assert_int_equal(oci_namespace_type_from_name(""), -EINVAL);
	/* the exported list and the lookup agree, both ways */
	size_t n = 0;
	for (const char *const *p = oci_namespace_names; *p; p++, n++) {
		int t = oci_namespace_type_from_name(*p);
		assert_true(t > 0);
		assert_string_equal(oci_namespace_name(t), *p);
	}
	assert_int_equal(n, 8);
	assert_string_equal(oci_namespace_name(0), "?");
}

static void test_rlimit_names(void **state)
{
	(void)state;
	assert_int_equal(oci_rlimit_from_name("RLIMIT_NOFILE"), RLIMIT_NOFILE);
	assert_int_equal(oci_rlimit_from_name("RLIMIT_AS"), RLIMIT_AS);
	assert_int_equal(oci_rlimit_from_name("RLIMIT_CORE"), RLIMIT_CORE);
	assert_int_equal(oci_rlimit_from_name("RLIMIT_STACK"), RLIMIT_STACK);
	assert_int_equal(oci_rlimit_from_name("RLIMIT_RTTIME"), RLIMIT_RTTIME);
	assert_int_equal(oci_rlimit_from_name("RLIMIT_SIGPENDING"), RLIMIT_SIGPENDING);
	assert_int_equal(oci_rlimit_from_name("NOFILE"), -EINVAL);
	assert_int_equal(oci_rlimit_from_name("rlimit_nofile"), -EINVAL);
	assert_int_equal(oci_rlimit_from_name("RLIMIT_"), -EINVAL);
	assert_int_equal(oci_rlimit_from_name(""), -EINVAL);
}

static void test_mount_option_apply(void **state)
{
	(void)state;
	struct oci_mount m = { 0 };
	assert_true(oci_mount_option_apply(&m, "ro"));
	assert_true(oci_mount_option_apply(&m, "nosuid"));
	assert_int_equal(m.flags, MS_RDONLY | MS_NOSUID);
	assert_true(oci_mount_option_apply(&m, "rw"));
	assert_true(oci_mount_option_apply(&m, "suid"));
	assert_int_equal(m.flags, 0);
	assert_true(oci_mount_option_apply(&m, "defaults"));
	assert_int_equal(m.flags, 0);
	assert_true(oci_mount_option_apply(&m, "noatime"));
	assert_int_equal(m.flags, MS_NOATIME);
	assert_true(oci_mount_option_apply(&m, "atime"));
	assert_int_equal(m.flags, 0);

	assert_true(oci_mount_option_apply(&m, "rbind"));
	assert_true(m.bind);
	assert_true(m.recursive_bind);
	assert_true(oci_mount_option_apply(&m, "bind"));
	assert_true(m.bind);
	assert_false(m.recursive_bind);

	assert_true(oci_mount_option_apply(&m, "rshared"));
	assert_int_equal(m.propagation, MS_SHARED | MS_REC);
	assert_true(oci_mount_option_apply(&m, "slave"));
	assert_int_equal(m.propagation, MS_SLAVE);

	assert_true(oci_mount_option_apply(&m, "rro"));
	assert_true(oci_mount_option_apply(&m, "rnoexec"));
	assert_true(m.attr_set == (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOEXEC));
	assert_true(oci_mount_option_apply(&m, "rexec"));
	assert_true(m.attr_set == MOUNT_ATTR_RDONLY);
	assert_true(m.attr_clr == MOUNT_ATTR_NOEXEC);
	assert_int_equal(m.flags, 0); /* recursive attributes leave the flags alone */

	/* unknown: left for the filesystem, nothing changed */
	struct oci_mount before = m;
	assert_false(oci_mount_option_apply(&m, "mode=755"));
	assert_false(oci_mount_option_apply(&m, "RO"));
	assert_false(oci_mount_option_apply(&m, ""));
	assert_memory_equal(&m, &before, sizeof(m));

	/* every name the features document lists is one the parser knows */
	size_t n = 0;
	for (const char *const *p = oci_mount_option_names; *p; p++, n++) {
		struct oci_mount probe = { 0 };
		if (!oci_mount_option_apply(&probe, *p))
			fail_msg("mount option \"%s\" is listed but not known", *p);
	}
	assert_true(n > 40);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_minimal),
		T(test_document),
		T(test_process_args),
		T(test_process_env_and_cwd),
		T(test_process_user),
		T(test_process_rlimits),
		T(test_process_console_oom_nnp),
		T(test_root),
		T(test_hostname),
		T(test_mounts_basic),
		T(test_mounts_bind_and_attrs),
		T(test_mounts_refused),
		T(test_namespaces),
		T(test_devices),
		T(test_devices_path_dotdot_end),
		T(test_masked_readonly),
		T(test_rootfs_propagation),
		T(test_sysctl),
		T(test_time_offsets),
		T(test_annotations),
		T(test_id_mappings),
		T(test_idmap_option),
		T(test_unsupported_fields),
		T(test_unsupported_net_device_without_options),
		T(test_process_parse_standalone),
		T(test_process_parse_refuses_unsupported),
		T(test_namespace_names),
		T(test_rlimit_names),
		T(test_mount_option_apply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
