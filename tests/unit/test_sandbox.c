/* runtime/sandbox.c: the public sandbox API, with real containers (root, a private mount
 * namespace): a busybox rootfs from tests/fixtures/make-bundle.sh, an image from
 * make-image.py's "small" profile imported into a store of the test's own. */
#include "unit.h"

#include "runtime/sandbox.h"
#include "base/error.h"
#include "cgroup/cgroup.h"
#include "image/image.h"

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#ifndef BERTH_FIXTURES
#error "BERTH_FIXTURES: the path of tests/fixtures"
#endif

/* Made once: a bundle (rootfs + config.json) and an oci-archive of the small image. */
static struct unit_tmpdir shared;
static char bundle[128], rootfs[160], image_tar[128];

struct fx {
	struct unit_tmpdir tmp; /* the state root and anything a test makes */
	char state[128];
	struct berth_error *err;
	struct berth_spec *spec;
	struct berth_container *c;
	int out[2], errp[2];
};

struct result {
	int code, sig;
	char out[8192], err[8192];
};

static int group_setup(void **state)
{
	(void)state;
	char cmd[1024];
	if (unit_tmpdir_create(&shared) < 0)
		return -1;
	snprintf(bundle, sizeof(bundle), "%s/bundle", shared.path);
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs", bundle);
	snprintf(image_tar, sizeof(image_tar), "%s/small.tar", shared.path);
	snprintf(cmd, sizeof(cmd),
		 "%s/make-bundle.sh %s >/dev/null && /usr/bin/python3 %s/make-image.py build %s/layout "
		 "small --ref localhost/sandbox-small:1 >/dev/null && tar -C %s/layout -cf %s .",
		 BERTH_FIXTURES, bundle, BERTH_FIXTURES, shared.path, shared.path, image_tar);
	return system(cmd) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	unit_tmpdir_remove(&shared);
	return 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || unit_tmpdir_create(&f->tmp) < 0)
		return -1;
	/* a tmpfs of the test's mount namespace: an image root's overlay needs an upper directory
	 * on a filesystem that takes one (the vm suite's /tmp is itself an overlay) */
	if (mount("tmpfs", f->tmp.path, "tmpfs", 0, "mode=0700") < 0)
		return -1;
	snprintf(f->state, sizeof(f->state), "%s/state", f->tmp.path);
	f->out[0] = f->out[1] = f->errp[0] = f->errp[1] = -1;
	*state = f;
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Whatever a failed test left: destroyed here, so that the next test starts clean. */
static int teardown(void **state)
{
	struct fx *f = *state;
	if (f->c)
		(void)berth_container_destroy(f->c, NULL);
	berth_container_free(f->c);
	berth_spec_free(f->spec);
	berth_error_free(f->err);
	for (int i = 0; i < 2; i++) {
		close_fd(&f->out[i]);
		close_fd(&f->errp[i]);
	}
	(void)umount2(f->tmp.path, MNT_DETACH);
	unit_tmpdir_remove(&f->tmp);
	free(f);
	return 0;
}

/* The spec's stdout and stderr go into fresh pipes (the last ones' read ends are closed). */
static void attach_pipes(struct fx *f)
{
	close_fd(&f->out[0]);
	close_fd(&f->errp[0]);
	assert_int_equal(pipe2(f->out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(f->errp, O_CLOEXEC), 0);
	MUST_OK(f, berth_spec_set_stdio(f->spec, -1, f->out[1], f->errp[1], &f->err));
}

/* A spec over the busybox rootfs running sh -c script, its stdout and stderr into pipes. */
static void spec_sh(struct fx *f, const char *script)
{
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	f->spec = berth_spec_new();
	assert_non_null(f->spec);
	MUST_OK(f, berth_spec_set_rootfs(f->spec, rootfs, &f->err));
	MUST_OK(f, berth_spec_set_args(f->spec, argv, &f->err));
	attach_pipes(f);
}

static void read_all(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	ssize_t r;
	while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
}

/* create (the write ends then belong to the init alone), start, wait, collect. */
static void create_start(struct fx *f, const char *id)
{
	MUST_OK(f, berth_container_create(f->state, id, f->spec, &f->c, &f->err));
	close_fd(&f->out[1]);
	close_fd(&f->errp[1]);
	MUST_OK(f, berth_container_start(f->c, &f->err));
}

static void finish(struct fx *f, struct result *res)
{
	MUST_OK(f, berth_container_wait(f->c, 20000, &res->code, &res->sig, &f->err));
	read_all(f->out[0], res->out, sizeof(res->out));
	read_all(f->errp[0], res->err, sizeof(res->err));
}

static void run_sh(struct fx *f, const char *script, struct result *res)
{
	spec_sh(f, script);
	create_start(f, NULL);
	finish(f, res);
}

/* The cgroup2 directory of a container, or "" without a hierarchy. */
static void cgroup_dir(const char *id, char *buf, size_t len)
{
	char *mnt = NULL;
	buf[0] = '\0';
	if (cgroup_mountpoint(&mnt, NULL) == 0)
		snprintf(buf, len, "%s/berth/%s", mnt, id);
	free(mnt);
}

/* Destroys f->c and checks that nothing of it is left: runtime state, bundle, cgroup, init. */
static void destroy_checked(struct fx *f)
{
	char path[256], cg[256];
	pid_t pid = berth_container_pid(f->c);
	cgroup_dir(berth_container_id(f->c), cg, sizeof(cg));
	MUST_OK(f, berth_container_destroy(f->c, &f->err));
	f->c = berth_container_free(f->c);
	snprintf(path, sizeof(path), "%s/runtime", f->state);
	assert_int_equal(unit_count_entries(path), 0);
	snprintf(path, sizeof(path), "%s/bundles", f->state);
	assert_int_equal(unit_count_entries(path), 0);
	if (cg[0])
		assert_int_equal(access(cg, F_OK), -1);
	/* reaped: the pid is no child of ours any more */
	assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/* Runs f->spec, which is to exit 0 printing want, and destroys the container. */
static void expect_output(struct fx *f, const char *want)
{
	struct result res;
	create_start(f, NULL);
	finish(f, &res);
	assert_string_equal(res.out, want);
	assert_int_equal(res.code, 0);
	assert_int_equal(res.sig, 0);
	destroy_checked(f);
}

static void test_output_and_exit_code(void **state)
{
	struct fx *f = *state;
	struct result res;
	run_sh(f, "echo hello; echo oops >&2; exit 3", &res);
	assert_string_equal(res.out, "hello\n");
	assert_string_equal(res.err, "oops\n");
	assert_int_equal(res.code, 3);
	assert_int_equal(res.sig, 0);
	/* a second wait reports the same */
	int code = 0, sig = 1;
	MUST_OK(f, berth_container_wait(f->c, 0, &code, &sig, &f->err));
	assert_int_equal(code, 3);
	assert_int_equal(sig, 0);
	destroy_checked(f);
}

static void test_kill_and_timeout(void **state)
{
	struct fx *f = *state;
	spec_sh(f, "echo up; exec sleep 1000");
	create_start(f, "sandbox-kill");
	assert_string_equal(berth_container_id(f->c), "sandbox-kill");
	char line[8] = { 0 };
	assert_int_equal(read(f->out[0], line, 3), 3);
	int code = 0, sig = 0;
	assert_int_equal(berth_container_wait(f->c, 50, &code, &sig, &f->err), -ETIMEDOUT);
	assert_contains(berth_error_message(f->err), "still running");
	assert_int_equal(berth_error_errno(f->err), ETIMEDOUT);
	f->err = berth_error_free(f->err);
	MUST_OK(f, berth_container_kill(f->c, SIGKILL, &f->err));
	MUST_OK(f, berth_container_wait(f->c, -1, &code, &sig, &f->err));
	assert_int_equal(code, -1);
	assert_int_equal(sig, SIGKILL);
	assert_int_equal(berth_container_kill(f->c, SIGKILL, &f->err), -ESRCH);
	assert_contains(berth_error_message(f->err), "has exited");
	destroy_checked(f);
}

/* The pidfd polls readable at exit, for callers with an event loop. */
static void test_pidfd(void **state)
{
	struct fx *f = *state;
	spec_sh(f, "exit 0");
	create_start(f, NULL);
	struct pollfd p = { .fd = berth_container_pidfd(f->c), .events = POLLIN };
	assert_int_equal(poll(&p, 1, 20000), 1);
	int code = -2;
	MUST_OK(f, berth_container_wait(f->c, 0, &code, NULL, &f->err));
	assert_int_equal(code, 0);
	destroy_checked(f);
}

/* Never started: destroy kills and reaps the waiting init. */
static void test_destroy_created(void **state)
{
	struct fx *f = *state;
	spec_sh(f, "echo never");
	MUST_OK(f, berth_container_create(f->state, NULL, f->spec, &f->c, &f->err));
	close_fd(&f->out[1]);
	assert_true(kill(berth_container_pid(f->c), 0) == 0);
	assert_int_equal(strncmp(berth_container_id(f->c), "sandbox-", 8), 0);
	assert_int_equal(strlen(berth_container_id(f->c)), 8 + 16);
	destroy_checked(f);
	char buf[16];
	assert_int_equal(read(f->out[0], buf, sizeof(buf)), 0); /* it never ran */
}

static void test_defaults(void **state)
{
	struct fx *f = *state;
	struct result res;
	/* Docker's default capability set, seccomp filtering, no_new_privs, a hostname, lo up in a
	 * network namespace of its own, pid 1 */
	run_sh(f,
	       "grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; hostname; "
	       "cat /sys/class/net/lo/flags; ls /sys/class/net; echo pid $$; touch /written && echo rw",
	       &res);
	assert_int_equal(res.code, 0);
	assert_string_equal(res.out, "CapEff:\t00000000a00425fb\nNoNewPrivs:\t1\nSeccomp:\t2\nberth\n"
				     "0x9\nlo\npid 1\nrw\n");
	destroy_checked(f);
	char path[256];
	snprintf(path, sizeof(path), "%s/written", rootfs);
	assert_int_equal(unlink(path), 0); /* the rootfs is used in place */
}

static void test_no_caps_no_seccomp(void **state)
{
	struct fx *f = *state;
	spec_sh(f, "grep -E '^(CapEff|CapBnd|Seccomp):' /proc/self/status");
	MUST_OK(f, berth_spec_set_default_capabilities(f->spec, false, &f->err));
	MUST_OK(f, berth_spec_set_default_seccomp(f->spec, false, &f->err));
	expect_output(f, "CapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nSeccomp:\t0\n");
}

static void test_process_settings(void **state)
{
	struct fx *f = *state;
	spec_sh(f, "id -u; id -g; hostname; echo $FOO; pwd; echo ${TERM:-none}");
	const char *env[] = { "FOO=bar baz", NULL };
	MUST_OK(f, berth_spec_set_env(f->spec, env, &f->err));
	MUST_OK(f, berth_spec_set_user(f->spec, 1000, 1000, &f->err));
	MUST_OK(f, berth_spec_set_hostname(f->spec, "sbx", &f->err));
	MUST_OK(f, berth_spec_set_cwd(f->spec, "/tmp", &f->err));
	expect_output(f, "1000\n1000\nsbx\nbar baz\n/tmp\nnone\n");
}

/* Without a network (or pid) namespace of its own, the container shares the caller's. */
static void test_namespaces(void **state)
{
	struct fx *f = *state;
	char expect[64];
	struct stat st;
	assert_int_equal(stat("/proc/self/ns/net", &st), 0);
	snprintf(expect, sizeof(expect), "net:[%lu]\n", (unsigned long)st.st_ino);
	spec_sh(f, "readlink /proc/self/ns/net");
	MUST_OK(f, berth_spec_set_namespaces(f->spec, BERTH_NAMESPACE_MOUNT | BERTH_NAMESPACE_PID,
					     &f->err));
	expect_output(f, expect);
}

static void test_readonly_and_binds(void **state)
{
	struct fx *f = *state;
	struct result res;
	char rw[256], ro[256], path[300];
	snprintf(rw, sizeof(rw), "%s/rw", f->tmp.path);
	snprintf(ro, sizeof(ro), "%s/ro", f->tmp.path);
	assert_int_equal(mkdir(rw, 0755), 0);
	assert_int_equal(mkdir(ro, 0755), 0);
	spec_sh(f, "touch /x 2>/dev/null || echo root-ro; echo data >/mnt/rw/file && echo rw-ok; "
		   "touch /mnt/ro/file 2>/dev/null || echo ro-ro");
	MUST_OK(f, berth_spec_set_readonly_rootfs(f->spec, true, &f->err));
	MUST_OK(f, berth_spec_add_bind_mount(f->spec, rw, "/mnt/rw", false, &f->err));
	MUST_OK(f, berth_spec_add_bind_mount(f->spec, ro, "/mnt/ro", true, &f->err));
	create_start(f, NULL);
	finish(f, &res);
	assert_string_equal(res.out, "root-ro\nrw-ok\nro-ro\n");
	snprintf(path, sizeof(path), "%s/file", rw);
	assert_int_equal(access(path, F_OK), 0);
	destroy_checked(f);
}

static bool hierarchy_offers(const char *controller)
{
	char *mnt = NULL, path[256], buf[512] = { 0 };
	if (cgroup_mountpoint(&mnt, NULL) < 0)
		return false;
	snprintf(path, sizeof(path), "%s/cgroup.controllers", mnt);
	free(mnt);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	for (char *w = strtok(n > 0 ? buf : NULL, " \n"); w; w = strtok(NULL, " \n"))
		if (strcmp(w, controller) == 0)
			return true;
	return false;
}

/* A limit the host's cgroup2 cannot apply is refused by name, and leaves nothing behind. */
static void expect_refused_limit(struct fx *f, const char *field, const char *controller)
{
	char path[256];
	assert_true(berth_container_create(f->state, "sandbox-limit", f->spec, &f->c, &f->err) < 0);
	assert_contains(berth_error_message(f->err), field);
	assert_contains(berth_error_message(f->err), controller);
	assert_int_equal(berth_error_errno(f->err), ENOTSUP);
	snprintf(path, sizeof(path), "%s/runtime", f->state);
	assert_int_equal(unit_count_entries(path), 0);
	snprintf(path, sizeof(path), "%s/bundles", f->state);
	assert_int_equal(unit_count_entries(path), 0);
	cgroup_dir("sandbox-limit", path, sizeof(path));
	assert_int_equal(access(path, F_OK), -1);
}

static void test_pids_limit(void **state)
{
	struct fx *f = *state;
	struct result res;
	spec_sh(f, "cat /sys/fs/cgroup/pids.max; for i in 1 2 3 4 5 6; do sleep 5 & done 2>&1; "
		   "kill $(jobs -p) 2>/dev/null; wait");
	MUST_OK(f, berth_spec_set_pids_limit(f->spec, 4, &f->err));
	if (!hierarchy_offers("pids")) {
		expect_refused_limit(f, "linux.resources.pids", "pids controller");
		return;
	}
	create_start(f, NULL);
	finish(f, &res);
	assert_contains(res.out, "4\n");
	assert_contains(res.out, "can't fork");
	destroy_checked(f);
}

static void test_memory_and_cpu_limits(void **state)
{
	struct fx *f = *state;
	spec_sh(f, "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max");
	MUST_OK(f, berth_spec_set_memory_limit(f->spec, 64 << 20, &f->err));
	MUST_OK(f, berth_spec_set_cpu_limit(f->spec, 50000, 0, &f->err));
	if (!hierarchy_offers("memory")) {
		expect_refused_limit(f, "linux.resources.memory", "memory controller");
		return;
	}
	expect_output(f, "67108864\n50000 100000\n");
}

static void test_stats(void **state)
{
	struct fx *f = *state;
	struct berth_stats st;
	int in[2];
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	spec_sh(f, "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; read x; echo $x");
	MUST_OK(f, berth_spec_set_stdio(f->spec, in[0], f->out[1], f->errp[1], &f->err));
	create_start(f, NULL);
	close(in[0]);
	MUST_OK(f, berth_container_stats(f->c, &st, &f->err));
	if (!(st.valid & BERTH_STATS_CPU)) {
		close(in[1]);
		skip(); /* no cgroup2 hierarchy on this host */
	}
	if (st.valid & BERTH_STATS_PIDS)
		assert_true(st.pids_current >= 1);
	if (st.valid & BERTH_STATS_MEMORY)
		assert_true(st.memory_current > 0);
	for (size_t i = 0; i < 12; i++)
		assert_int_equal(st.reserved[i], 0);
	assert_int_equal(write(in[1], "bye\n", 4), 4);
	close(in[1]);
	struct result res;
	finish(f, &res);
	assert_string_equal(res.out, "bye\n");
	/* after the exit the counters are still there, the loop's CPU time included */
	MUST_OK(f, berth_container_stats(f->c, &st, &f->err));
	assert_true(st.valid & BERTH_STATS_CPU);
	assert_true(st.cpu_usage_usec > 0);
	if (st.valid & BERTH_STATS_MEMORY_PEAK)
		assert_true(st.memory_peak > 0);
	print_message("stats: cpu %llu us, memory %s %llu peak %llu, pids %s %llu\n",
		      (unsigned long long)st.cpu_usage_usec,
		      st.valid & BERTH_STATS_MEMORY ? "yes" : "no",
		      (unsigned long long)st.memory_current, (unsigned long long)st.memory_peak,
		      st.valid & BERTH_STATS_PIDS ? "yes" : "no", (unsigned long long)st.pids_current);
	destroy_checked(f);
}

static void test_oci_config(void **state)
{
	struct fx *f = *state;
	/* a bundle directory: its relative root.path is found beside config.json */
	MUST_OK(f, berth_spec_from_oci_config(bundle, &f->spec, &f->err));
	attach_pipes(f);
	expect_output(f, "hello from berth\n");

	/* a relative bind source is the caller's bundle's, not the library's */
	char dir[256], file[300];
	FILE *cf;
	snprintf(dir, sizeof(dir), "%s/oci", f->tmp.path);
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(file, sizeof(file), "%s/data", dir);
	assert_int_equal(mkdir(file, 0755), 0);
	snprintf(file, sizeof(file), "%s/data/hello", dir);
	assert_non_null(cf = fopen(file, "w"));
	fputs("relative\n", cf);
	fclose(cf);
	snprintf(file, sizeof(file), "%s/config.json", dir);
	assert_non_null(cf = fopen(file, "w"));
	fprintf(cf,
		"{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"%s\"},\"process\":{\"cwd\":\"/\","
		"\"args\":[\"cat\",\"/data/hello\"],\"env\":[\"PATH=/bin\"]},\"mounts\":[{\"destination\":"
		"\"/data\",\"type\":\"none\",\"source\":\"data\",\"options\":[\"rbind\",\"ro\"]}],"
		"\"linux\":{\"namespaces\":[{\"type\":\"mount\"}]}}",
		rootfs);
	fclose(cf);
	f->spec = berth_spec_free(f->spec);
	MUST_OK(f, berth_spec_from_oci_config(file, &f->spec, &f->err));
	attach_pipes(f);
	expect_output(f, "relative\n");

	/* JSON text with an absolute root, a setter overriding its args */
	char json[1024];
	snprintf(json, sizeof(json),
		 "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"%s\"},\"process\":{\"cwd\":\"/\","
		 "\"args\":[\"true\"],\"env\":[\"PATH=/bin\"]},\"mounts\":[{\"destination\":\"/proc\","
		 "\"type\":\"proc\",\"source\":\"proc\"}],\"linux\":{\"namespaces\":[{\"type\":\"mount\"},"
		 "{\"type\":\"pid\"}]}}",
		 rootfs);
	f->spec = berth_spec_free(f->spec);
	MUST_OK(f, berth_spec_from_oci_config(json, &f->spec, &f->err));
	const char *argv[] = { "sh", "-c", "echo $$ $PATH", NULL };
	MUST_OK(f, berth_spec_set_args(f->spec, argv, &f->err));
	attach_pipes(f);
	expect_output(f, "1 /bin\n");
}

/* Whether " PATH " stands in this process's mountinfo (a mount point). */
static bool mounted(const char *spaced_path)
{
	size_t cap = 1 << 22;
	char *buf = malloc(cap);
	int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	assert_true(buf && fd >= 0);
	read_all(fd, buf, cap);
	close(fd);
	bool found = strstr(buf, spaced_path) != NULL;
	free(buf);
	return found;
}

static void test_image(void **state)
{
	struct fx *f = *state;
	struct result res;
	char store_root[256], rootfs_dir[300], path[320];
	struct image_store_options o = { .root = store_root };
	struct image_store *store = NULL;
	char **names = NULL;
	snprintf(store_root, sizeof(store_root), "%s/store", f->tmp.path);
	MUST_OK(f, image_store_open(&o, &store, &f->err));
	MUST_OK(f, image_import(store, image_tar, &names, &f->err));
	assert_non_null(names[0]);
	spec_sh(f, "cat /usr/share/berth/hello.txt; echo new >/etc/new && cat /etc/new");
	MUST_OK(f, berth_spec_set_image(f->spec, store_root, names[0], &f->err));
	create_start(f, "sandbox-image");
	/* the overlay is the caller's mount, under the bundle, the container's writes in upper/ */
	snprintf(rootfs_dir, sizeof(rootfs_dir), " %s/bundles/sandbox-image/rootfs ", f->state);
	assert_true(mounted(rootfs_dir));
	finish(f, &res);
	assert_string_equal(res.out, "hello from a berth test image\nnew\n");
	snprintf(path, sizeof(path), "%s/bundles/sandbox-image/upper/etc/new", f->state);
	assert_int_equal(access(path, F_OK), 0);
	destroy_checked(f);
	assert_false(mounted(rootfs_dir));
	/* the image root's lease went with it: nothing in use, prune removes the image */
	struct image_gc_result gc;
	MUST_OK(f, image_prune(store, true, &gc, &f->err));
	assert_true(gc.snapshots_removed == 2);
	image_store_free(store);
	for (char **n = names; *n; n++)
		free(*n);
	free(names);
}

static void expect_error(struct fx *f, int r, int code, const char *needle)
{
	assert_int_equal(r, -code);
	assert_non_null(f->err);
	assert_contains(berth_error_message(f->err), needle);
	assert_int_equal(berth_error_errno(f->err), code);
	f->err = berth_error_free(f->err);
}

static void test_bad_setters(void **state)
{
	struct fx *f = *state;
	struct berth_spec *s = f->spec = berth_spec_new();
	struct berth_error **e = &f->err;
	const char *env[] = { "A=1", "NOEQUALS", NULL }, *empty[] = { NULL };
	expect_error(f, berth_spec_set_env(s, env, e), EINVAL, "berth_spec_set_env: env[1]: \"NOEQUALS\"");
	expect_error(f, berth_spec_set_args(s, empty, e), EINVAL, "args: must name a program");
	expect_error(f, berth_spec_set_rootfs(s, "/nonexistent/root", e), ENOENT,
		     "rootfs /nonexistent/root");
	expect_error(f, berth_spec_set_rootfs(s, "/", e), EINVAL, "the host's /");
	expect_error(f, berth_spec_set_rootfs(s, "/etc/passwd", e), ENOTDIR, "not a directory");
	expect_error(f, berth_spec_set_cwd(s, "tmp", e), EINVAL, "cwd tmp: must be an absolute path");
	expect_error(f, berth_spec_set_namespaces(s, BERTH_NAMESPACE_PID, e), EINVAL,
		     "BERTH_NAMESPACE_MOUNT is required");
	expect_error(f, berth_spec_set_namespaces(s, 1u << 20 | BERTH_NAMESPACE_MOUNT, e), EINVAL,
		     "unknown flags 0x100000");
	expect_error(f, berth_spec_set_cpu_limit(s, 10, 0, e), EINVAL, "cpu quota 10 us");
	expect_error(f, berth_spec_set_cpu_limit(s, 10000, 10, e), EINVAL, "cpu period 10 us");
	expect_error(f, berth_spec_set_memory_limit(s, 0, e), EINVAL, "memory limit 0");
	expect_error(f, berth_spec_set_pids_limit(s, 0, e), EINVAL, "pids limit 0");
	expect_error(f, berth_spec_set_hostname(s, "", e), EINVAL, "hostname");
	expect_error(f, berth_spec_set_user(s, (uid_t)-1, 0, e), EINVAL, "user");
	expect_error(f, berth_spec_set_stdio(s, 0, 987, 2, e), EBADF, "stdout: fd 987 is not open");
	expect_error(f, berth_spec_add_bind_mount(s, "relative", "/x", false, e), EINVAL,
		     "source relative");
	expect_error(f, berth_spec_add_bind_mount(s, "/nonexistent", "/x", false, e), ENOENT,
		     "source /nonexistent");
	expect_error(f, berth_spec_add_bind_mount(s, "/tmp", "/", false, e), EINVAL, "destination /");
	expect_error(f, berth_spec_set_image(s, "store", "busybox", e), EINVAL, "store_root store");
	expect_error(f, berth_spec_set_args(NULL, empty, e), EINVAL, "the spec is NULL");
	/* NULL err: the return value alone */
	assert_int_equal(berth_spec_set_cwd(s, "x", NULL), -EINVAL);
}

/* Bad input to create names it and leaves nothing: no state, no bundle, no process. */
static void expect_create_fails(struct fx *f, const char *id, int code, const char *needle)
{
	char path[256];
	int r = berth_container_create(f->state, id, f->spec, &f->c, &f->err);
	assert_null(f->c);
	expect_error(f, r, code, needle);
	snprintf(path, sizeof(path), "%s/runtime", f->state);
	assert_true(unit_count_entries(path) <= 0);
	snprintf(path, sizeof(path), "%s/bundles", f->state);
	assert_true(unit_count_entries(path) <= 0);
}

static void test_bad_create(void **state)
{
	struct fx *f = *state;
	const char *missing[] = { "no-such-program", NULL };
	f->spec = berth_spec_new();
	expect_create_fails(f, NULL, EINVAL, "args: not set");
	MUST_OK(f, berth_spec_set_args(f->spec, missing, &f->err));
	expect_create_fails(f, NULL, EINVAL, "rootfs: not set");
	MUST_OK(f, berth_spec_set_rootfs(f->spec, rootfs, &f->err));
	expect_create_fails(f, "bad/id", EINVAL, "container id \"bad/id\"");
	expect_create_fails(f, "sandbox-missing", ENOENT,
			    "berth_container_create sandbox-missing: process.args: \"no-such-program\"");
	MUST_OK(f, berth_spec_set_image(f->spec, f->tmp.path, "busybox:none", &f->err));
	expect_create_fails(f, NULL, ENOENT, "busybox:none");
	assert_int_equal(berth_container_create("relative", NULL, f->spec, &f->c, &f->err), -EINVAL);
	assert_contains(berth_error_message(f->err), "state root relative");
}

static void test_duplicate_id(void **state)
{
	struct fx *f = *state;
	struct berth_container *second = NULL;
	spec_sh(f, "exit 0");
	MUST_OK(f, berth_container_create(f->state, "sandbox-dup", f->spec, &f->c, &f->err));
	int r = berth_container_create(f->state, "sandbox-dup", f->spec, &second, &f->err);
	assert_null(second);
	expect_error(f, r, EEXIST, "container sandbox-dup already exists");
	/* the first is untouched */
	MUST_OK(f, berth_container_start(f->c, &f->err));
	int code = -1;
	MUST_OK(f, berth_container_wait(f->c, 20000, &code, NULL, &f->err));
	assert_int_equal(code, 0);
	destroy_checked(f);
}

static void test_bad_oci_config(void **state)
{
	struct fx *f = *state;
	char path[256];
	expect_error(f, berth_spec_from_oci_config("{\"ociVersion\":\"1.0.2\",\"process\":{\"terminal\":true,"
						   "\"cwd\":\"/\",\"args\":[\"sh\"]},\"root\":{\"path\":\"r\"},"
						   "\"linux\":{\"namespaces\":[{\"type\":\"mount\"}]}}",
						   &f->spec, &f->err),
		     ENOTSUP, "process.terminal");
	expect_error(f, berth_spec_from_oci_config("{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":7}}",
						   &f->spec, &f->err),
		     EINVAL, "root.path");
	expect_error(f, berth_spec_from_oci_config("{", &f->spec, &f->err), EINVAL,
		     "berth_spec_from_oci_config");
	snprintf(path, sizeof(path), "%s/none", f->tmp.path);
	expect_error(f, berth_spec_from_oci_config(path, &f->spec, &f->err), ENOENT, path);
	assert_null(f->spec);
	/* text with a relative root: there is no bundle to find it in */
	MUST_OK(f, berth_spec_from_oci_config("{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"},"
					      "\"process\":{\"cwd\":\"/\",\"args\":[\"true\"]},"
					      "\"linux\":{\"namespaces\":[{\"type\":\"mount\"}]}}",
					      &f->spec, &f->err));
	expect_create_fails(f, NULL, EINVAL, "a relative root.path needs the config's bundle");
}

static void test_after_destroy(void **state)
{
	struct fx *f = *state;
	struct berth_stats st;
	spec_sh(f, "exit 0");
	MUST_OK(f, berth_container_create(f->state, NULL, f->spec, &f->c, &f->err));
	MUST_OK(f, berth_container_destroy(f->c, &f->err));
	expect_error(f, berth_container_start(f->c, &f->err), EINVAL, "was destroyed");
	expect_error(f, berth_container_stats(f->c, &st, &f->err), EINVAL, "was destroyed");
	expect_error(f, berth_container_wait(f->c, 0, NULL, NULL, &f->err), EINVAL, "was destroyed");
	f->c = berth_container_free(f->c);
	assert_null(berth_container_free(NULL));
	assert_null(berth_spec_free(NULL));
	assert_null(berth_error_free(NULL));
}

int main(void)
{
	if (unit_private_namespaces("test_sandbox", 0) < 0)
		return 77;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_output_and_exit_code),
		T(test_kill_and_timeout),
		T(test_pidfd),
		T(test_destroy_created),
		T(test_defaults),
		T(test_no_caps_no_seccomp),
		T(test_process_settings),
		T(test_namespaces),
		T(test_readonly_and_binds),
		T(test_pids_limit),
		T(test_memory_and_cpu_limits),
		T(test_stats),
		T(test_oci_config),
		T(test_image),
		T(test_bad_setters),
		T(test_bad_create),
		T(test_duplicate_id),
		T(test_bad_oci_config),
		T(test_after_destroy),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
