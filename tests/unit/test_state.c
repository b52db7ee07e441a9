/* runtime/state.c: ids, the on-disk record, derived status and the public state document. */
#include "unit.h"

#include "base/json.h"
#include "runtime/state-internal.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

struct fx {
	struct unit_tmpdir dir;
	struct berth_error *err;
	struct stored_state *loaded;
	struct runtime_state *pub;
	struct json *j;
	char *text;
	pid_t child;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->dir.fd = -1;
	if (unit_tmpdir_create(&f->dir) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (f->child > 0) {
		kill(f->child, SIGKILL);
		waitpid(f->child, NULL, 0);
	}
	unit_tmpdir_remove(&f->dir);
	berth_error_free(f->err);
	stored_state_free(f->loaded);
	runtime_state_free(f->pub);
	bjson_free(f->j);
	free(f->text);
	free(f);
	return 0;
}

/* ---- ids ---- */

static void test_id_valid(void **state)
{
	struct fx *f = *state;
	static const char *const ok[] = { "a", "Z", "0", "abc-DEF_1.2+3", "x..y", "a.", "9-" };
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (state_id_check(ok[i], &f->err) != 0)
			fail_msg("\"%s\" refused: %s", ok[i], f->err ? f->err->msg : "?");
	char longest[1025];
	memset(longest, 'a', 1024);
	longest[1024] = '\0';
	assert_int_equal(state_id_check(longest, &f->err), 0);
	assert_null(f->err);
}

static void test_id_invalid(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = { "/",	 "a/b", "..",  ".", ".x",  "-x",   "_x",
					   "+x", "a b", "a\n", "é", "a:b", "a\\b", "../etc" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (state_id_check(bad[i], &f->err) != -EINVAL)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_int_equal(f->err->code, EINVAL);
		assert_contains(f->err->msg, "container id");
		berth_error_freep(&f->err);
	}
	assert_int_equal(state_id_check("", &f->err), -EINVAL);
	assert_contains(f->err->msg, "empty");
	berth_error_freep(&f->err);
	char too_long[1026];
	memset(too_long, 'a', 1025);
	too_long[1025] = '\0';
	assert_int_equal(state_id_check(too_long, &f->err), -EINVAL);
	assert_contains(f->err->msg, "1024");
	assert_int_equal(state_id_check("a/b", NULL), -EINVAL);
}

/* ---- proc_start_time ---- */

static void test_start_time_self(void **state)
{
	(void)state;
	uint64_t a = proc_start_time(getpid());
	assert_true(a > 0);
	assert_true(a == proc_start_time(getpid()));
	/* pid 1 started before us */
	uint64_t init = proc_start_time(1);
	if (init)
		assert_true(init <= a);
	assert_true(proc_start_time(-1) == 0);
	assert_true(proc_start_time(0x7ffffff0) == 0);
}

static void test_start_time_child(void **state)
{
	struct fx *f = *state;
	int go[2], done[2];
	assert_int_equal(pipe2(go, O_CLOEXEC), 0);
	assert_int_equal(pipe2(done, O_CLOEXEC), 0);
	f->child = fork();
	assert_true(f->child >= 0);
	if (f->child == 0) {
		char c;
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		/* a name made to confuse a parser that does not look for the last ')' */
		prctl(PR_SET_NAME, "x) Z 1 2 (y");
		if (write(done[1], "k", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	uint64_t before = proc_start_time(f->child);
	assert_true(before > 0);
	assert_true(before >= proc_start_time(getpid()));
	assert_int_equal(write(go[1], "g", 1), 1);
	char c;
	assert_int_equal(read(done[0], &c, 1), 1);
	assert_true(proc_start_time(f->child) == before);

	/* a zombie has no start time; nor has a reaped child */
	assert_int_equal(kill(f->child, SIGKILL), 0);
	siginfo_t si;
	assert_int_equal(waitid(P_PID, (id_t)f->child, &si, WEXITED | WNOWAIT), 0);
	assert_true(proc_start_time(f->child) == 0);
	assert_int_equal(waitpid(f->child, NULL, 0), f->child);
	assert_true(proc_start_time(f->child) == 0);
	f->child = 0;
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
}

/* ---- state.json ---- */

static void test_save_load_round_trip(void **state)
{
	struct fx *f = *state;
	struct stored_state s = {
		.id = "web-1",
		.pid = 4242,
		.pid_start = UINT64_C(18446744073709551000),
		.bundle = "/srv/bundles/web \"1\"",
		.rootfs = "/srv/bundles/web/rootfs",
		.created = "2024-05-01T10:00:00.000000001Z",
		.owner = "root",
		.annotations_json = "{\"a\":\"b\"}",
		.cgroup_path = "/sys/fs/cgroup/berth/web-1",
		.own_pid_ns = true,
	};
	assert_int_equal(state_save(f->dir.fd, &s, &f->err), 0);
	struct stat st;
	assert_int_equal(fstatat(f->dir.fd, STATE_FILE, &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	assert_int_equal(state_load(f->dir.fd, "web-1", &f->loaded, &f->err), 0);
	struct stored_state *l = f->loaded;
	assert_string_equal(l->id, s.id);
	assert_int_equal(l->pid, s.pid);
	assert_true(l->pid_start == s.pid_start);
	assert_string_equal(l->bundle, s.bundle);
	assert_string_equal(l->rootfs, s.rootfs);
	assert_string_equal(l->created, s.created);
	assert_string_equal(l->owner, s.owner);
	assert_string_equal(l->annotations_json, s.annotations_json);
	assert_string_equal(l->cgroup_path, s.cgroup_path);
	assert_true(l->own_pid_ns);

	/* optional fields left out come back as NULL / false, and the save replaces the file */
	s.annotations_json = NULL;
	s.cgroup_path = NULL;
	s.own_pid_ns = false;
	assert_int_equal(state_save(f->dir.fd, &s, &f->err), 0);
	f->loaded = stored_state_free(f->loaded);
	assert_int_equal(state_load(f->dir.fd, "web-1", &f->loaded, &f->err), 0);
	assert_null(f->loaded->annotations_json);
	assert_null(f->loaded->cgroup_path);
	assert_false(f->loaded->own_pid_ns);
	assert_int_equal(f->loaded->pid, 4242);
	assert_null(f->err);
}

static void write_state(struct fx *f, const char *text)
{
	int fd = openat(f->dir.fd, STATE_FILE, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void test_load_errors(void **state)
{
	struct fx *f = *state;
	assert_int_equal(state_load(f->dir.fd, "c1", &f->loaded, &f->err), -ENOENT);
	assert_contains(f->err->msg, STATE_FILE);
	berth_error_freep(&f->err);

	write_state(f, "{\"id\":");
	assert_int_equal(state_load(f->dir.fd, "c1", &f->loaded, &f->err), -EINVAL);
	assert_contains(f->err->msg, "state of c1: invalid JSON");
	berth_error_freep(&f->err);

	/* pid as a string, and a missing field */
	write_state(
		f,
		"{\"id\":\"c1\",\"pid\":\"1\",\"pidStart\":1,\"bundle\":\"/b\",\"rootfs\":\"/r\","
		"\"created\":\"t\",\"owner\":\"o\"}");
	assert_int_equal(state_load(f->dir.fd, "c1", &f->loaded, &f->err), -EINVAL);
	assert_contains(f->err->msg, "state of c1: damaged");
	berth_error_freep(&f->err);
	write_state(f,
		    "{\"id\":\"c1\",\"pid\":1,\"pidStart\":1,\"bundle\":\"/b\",\"rootfs\":\"/r\","
		    "\"created\":\"t\"}");
	assert_int_equal(state_load(f->dir.fd, "c1", &f->loaded, &f->err), -EINVAL);
	assert_contains(f->err->msg, "damaged");
	assert_null(f->loaded);
}

/* ---- status and the public view ---- */

static void test_status(void **state)
{
	struct fx *f = *state;
	struct stored_state s = { .id = "c",
				  .pid = getpid(),
				  .pid_start = proc_start_time(getpid()),
				  .bundle = "/b",
				  .rootfs = "/b/rootfs",
				  .created = "t",
				  .owner = "o" };
	assert_string_equal(state_status(f->dir.fd, &s), "running");
	assert_int_equal(mkfifoat(f->dir.fd, START_SOCKET, 0600), 0);
	assert_string_equal(state_status(f->dir.fd, &s), "created");

	assert_int_equal(state_to_public(f->dir.fd, &s, &f->pub), 0);
	assert_string_equal(f->pub->status, "created");
	assert_int_equal(f->pub->pid, getpid());
	assert_string_equal(f->pub->id, "c");
	assert_string_equal(f->pub->rootfs, "/b/rootfs");
	assert_null(f->pub->annotations_json);
	f->pub = runtime_state_free(f->pub);

	/* same pid, another start time: the pid was reused, the container is gone */
	s.pid_start += 1;
	assert_string_equal(state_status(f->dir.fd, &s), "stopped");
	assert_int_equal(state_to_public(f->dir.fd, &s, &f->pub), 0);
	assert_string_equal(f->pub->status, "stopped");
	assert_int_equal(f->pub->pid, 0);
	s.pid = 0;
	assert_string_equal(state_status(f->dir.fd, &s), "stopped");
}

static void test_state_to_json(void **state)
{
	struct fx *f = *state;
	struct runtime_state s = { .id = "c1",
				   .pid = 77,
				   .status = "running",
				   .bundle = "/b",
				   .rootfs = "/b/rootfs",
				   .created = "2024-01-01T00:00:00.0Z",
				   .owner = "root",
				   .annotations_json = "{\"k\":\"v\",\"n\":{}}" };
	assert_int_equal(runtime_state_to_json(&s, false, &f->text), 0);
	assert_int_equal(bjson_parse(f->text, &f->j, &f->err), 0);
	assert_string_equal(bjson_string(bjson_object_get(f->j, "ociVersion")), RUNTIME_OCI_VERSION);
	assert_string_equal(bjson_string(bjson_object_get(f->j, "id")), "c1");
	int64_t pid = 0;
	assert_true(bjson_int64(bjson_object_get(f->j, "pid"), &pid));
	assert_int_equal(pid, 77);
	assert_string_equal(bjson_string(bjson_object_get(f->j, "status")), "running");
	assert_string_equal(bjson_string(bjson_object_get(f->j, "bundle")), "/b");
	assert_string_equal(bjson_string(bjson_object_get(f->j, "rootfs")), "/b/rootfs");
	assert_string_equal(bjson_string(bjson_object_get(f->j, "created")),
			    "2024-01-01T00:00:00.0Z");
	assert_string_equal(bjson_string(bjson_object_get(f->j, "owner")), "root");
	/* annotations are embedded as an object, not as a string */
	const struct json *ann = bjson_object_get(f->j, "annotations");
	assert_int_equal(bjson_type_of(ann), JSON_OBJECT);
	assert_string_equal(bjson_string(bjson_object_get(ann, "k")), "v");
	assert_int_equal(bjson_type_of(bjson_object_get(ann, "n")), JSON_OBJECT);
	assert_null(strchr(f->text, '\n'));

	free(f->text);
	f->text = NULL;
	bjson_freep(&f->j);
	s.annotations_json = NULL;
	assert_int_equal(runtime_state_to_json(&s, true, &f->text), 0);
	assert_non_null(strchr(f->text, '\n'));
	assert_int_equal(bjson_parse(f->text, &f->j, &f->err), 0);
	assert_null(bjson_object_get(f->j, "annotations"));
	assert_int_equal(bjson_object_size(f->j), 8);
}

static void test_rfc3339_now(void **state)
{
	struct fx *f = *state;
	time_t before = time(NULL);
	assert_int_equal(format_rfc3339_now(&f->text), 0);
	time_t after = time(NULL);
	const char *t = f->text;
	/* 2024-05-01T10:00:00.123456789Z */
	assert_int_equal(strlen(t), 30);
	for (size_t i = 0; i < 30; i++) {
		char c = t[i];
		switch (i) {
		case 4:
		case 7:
			assert_int_equal(c, '-');
			break;
		case 10:
			assert_int_equal(c, 'T');
			break;
		case 13:
		case 16:
			assert_int_equal(c, ':');
			break;
		case 19:
			assert_int_equal(c, '.');
			break;
		case 29:
			assert_int_equal(c, 'Z');
			break;
		default:
			if (c < '0' || c > '9')
				fail_msg("%s: not a digit at %zu", t, i);
		}
	}
	struct tm tm = { 0 };
	assert_non_null(strptime(t, "%Y-%m-%dT%H:%M:%S", &tm));
	time_t when = timegm(&tm);
	assert_true(when >= before && when <= after);
}

/* ---- the state root and container directories ---- */

static void test_root_and_dir_open(void **state)
{
	struct fx *f = *state;
	char root[128];
	snprintf(root, sizeof(root), "%s/run/berth/runtime", f->dir.path);
	int rfd = -1;
	assert_int_equal(state_root_open(root, false, &rfd, &f->err), -ENOENT);
	assert_contains(f->err->msg, "--root");
	berth_error_freep(&f->err);
	assert_int_equal(state_root_open(root, true, &rfd, &f->err), 0);
	assert_true(rfd >= 0);
	struct stat st;
	assert_int_equal(stat(root, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);

	int dfd = -1;
	assert_int_equal(state_dir_open(rfd, "nope", true, &dfd, &f->err), -ENOENT);
	assert_contains(f->err->msg, "container nope does not exist");
	berth_error_freep(&f->err);
	assert_int_equal(state_dir_open(rfd, "../x", false, &dfd, &f->err), -EINVAL);
	berth_error_freep(&f->err);
	assert_int_equal(mkdirat(rfd, "c1", 0700), 0);
	assert_int_equal(state_dir_open(rfd, "c1", false, &dfd, &f->err), 0);
	assert_true(dfd >= 0);
	close(dfd);
	/* a symlink in place of the directory is not followed */
	assert_int_equal(symlinkat("/tmp", rfd, "c2"), 0);
	dfd = -1;
	assert_true(state_dir_open(rfd, "c2", false, &dfd, &f->err) < 0);
	assert_int_equal(dfd, -1);
	assert_contains(f->err->msg, "c2");
	close(rfd);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_id_valid),
		T(test_id_invalid),
		T(test_start_time_self),
		T(test_start_time_child),
		T(test_save_load_round_trip),
		T(test_load_errors),
		T(test_status),
		T(test_state_to_json),
		T(test_rfc3339_now),
		T(test_root_and_dir_open),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
