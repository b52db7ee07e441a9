/* shim/client.c against a fake shim: a child process serving one connection on DIR/shim.sock
 * with canned answers (the real berth-shim is tested in tests/integration/test_shim.py). */
#include "unit.h"

#include "base/cleanup.h"
#include "shim/protocol.h"
#include "shim/shim.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

struct fx {
	struct unit_tmpdir tmp;
	char dir[512];
	struct berth_error *err;
	pid_t server;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || unit_tmpdir_create(&f->tmp) < 0)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/shim", f->tmp.path);
	if (mkdir(f->dir, 0700) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (f->server > 0) {
		kill(f->server, SIGKILL);
		waitpid(f->server, NULL, 0);
	}
	berth_error_free(f->err);
	unit_tmpdir_remove(&f->tmp);
	free(f);
	return 0;
}

static void fail_with(struct fx *f, const char *what)
{
	fail_msg("%s: %s", what, f->err ? f->err->msg : "no error message");
}

/* ---- the fake shim ---- */

static int listen_at(const char *dir)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	/* long directories are bound through their fd, as the client connects */
	int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/" SHIM_SOCKET, dfd);
	(void)unlinkat(dfd, SHIM_SOCKET, 0); /* the previous fake's */
	if (fd < 0 || dfd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 4) < 0)
		fail_msg("fake shim: bind in %s: %s", dir, strerror(errno));
	close(dfd);
	return fd;
}

static bool read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;
	while (n + 1 < len && read(fd, buf + n, 1) == 1)
		if (buf[n++] == '\n') {
			buf[n - 1] = '\0';
			return true;
		}
	return false;
}

static void write_frame(int fd, int stream, const char *data, size_t len)
{
	unsigned char h[SHIM_FRAME_HEADER] = { (unsigned char)stream, (unsigned char)(len >> 24),
					       (unsigned char)(len >> 16),
					       (unsigned char)(len >> 8), (unsigned char)len };
	if (write(fd, h, sizeof(h)) != sizeof(h) || (len && write(fd, data, len) != (ssize_t)len))
		_exit(3);
}

/* What a fake shim does with its one connection after reading the request. */
enum fake_mode { FAKE_ANSWER, FAKE_SILENT, FAKE_EXEC_ECHO, FAKE_EXEC_HANG };

/* Serves one connection in a child: the request must be want (or any when want is NULL); the
 * answer bytes go back after delay_ms; then mode decides. The child exits 0 when all was as
 * expected. */
static pid_t fake_serve(const char *dir, const char *want, const char *answer, size_t len,
			int delay_ms, enum fake_mode mode)
{
	int lfd = listen_at(dir);
	pid_t pid = fork();
	if (pid == 0) {
		int c = accept(lfd, NULL, NULL);
		char req[4096];
		if (c < 0 || !read_line(c, req, sizeof(req)))
			_exit(1);
		if (want && strcmp(req, want) != 0) {
			fprintf(stderr, "fake shim: got %s, want %s\n", req, want);
			_exit(2);
		}
		usleep((useconds_t)delay_ms * 1000);
		if (answer && write(c, answer, len) != (ssize_t)len)
			_exit(3);
		char buf[65536];
		if (mode == FAKE_EXEC_ECHO) {
			/* stdin frames come back as stdout; then 100 KiB of stdout and an exit
			 * frame */
			unsigned char h[SHIM_FRAME_HEADER];
			while (read(c, h, sizeof(h)) == sizeof(h) &&
			       h[0] != SHIM_STREAM_CLOSE_STDIN) {
				size_t n = (size_t)h[3] << 8 | h[4];
				if (n > sizeof(buf) || read(c, buf, n) != (ssize_t)n)
					_exit(4);
				write_frame(c, SHIM_STREAM_STDOUT, buf, n);
			}
			memset(buf, 'x', sizeof(buf));
			write_frame(c, SHIM_STREAM_STDOUT, buf, sizeof(buf));
			write_frame(c, SHIM_STREAM_STDOUT, buf, sizeof(buf));
			write_frame(c, SHIM_STREAM_STDERR, "oops\n", 5);
			const char *ex = "{\"exit_code\":3,\"signal\":0,\"oom_killed\":false}";
			write_frame(c, SHIM_STREAM_EXIT, ex, strlen(ex));
		}
		/* FAKE_EXEC_HANG, FAKE_SILENT: until the client closes its end */
		while (mode != FAKE_ANSWER && read(c, buf, sizeof(buf)) > 0)
			;
		_exit(0);
	}
	close(lfd);
	return pid;
}

static void server_done(struct fx *f)
{
	int status = 0;
	assert_int_equal(waitpid(f->server, &status, 0), f->server);
	f->server = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("the fake shim was unhappy (status %#x)", status);
}

#define STATUS_RUNNING                                                                             \
	"{\"ok\":true,\"state\":\"running\",\"pid\":42,\"created\":1000,\"started\":2000,"         \
	"\"finished\":0,\"exit_code\":0,\"signal\":0,\"oom_killed\":false}\n"

/* ---- requests and answers ---- */

static void test_status(void **state)
{
	struct fx *f = *state;
	f->server = fake_serve(f->dir, "{\"op\":\"status\"}", STATUS_RUNNING,
			       strlen(STATUS_RUNNING), 0, FAKE_ANSWER);
	struct shim_status st;
	if (shim_status(f->dir, &st, &f->err) < 0)
		fail_with(f, "shim_status");
	assert_int_equal(st.state, SHIM_STATE_RUNNING);
	assert_int_equal(st.pid, 42);
	assert_int_equal(st.created_ns, 1000);
	assert_int_equal(st.started_ns, 2000);
	assert_false(st.oom_killed);
	server_done(f);
}

static void test_request_fields(void **state)
{
	struct fx *f = *state;
	const char *ok = "{\"ok\":true}\n";
	f->server = fake_serve(f->dir, "{\"op\":\"kill\",\"signal\":15,\"all\":true}", ok,
			       strlen(ok), 0, FAKE_ANSWER);
	if (shim_kill(f->dir, SIGTERM, true, &f->err) < 0)
		fail_with(f, "shim_kill");
	server_done(f);
	f->server = fake_serve(f->dir, "{\"op\":\"resize\",\"width\":80,\"height\":24}", ok,
			       strlen(ok), 0, FAKE_ANSWER);
	if (shim_resize(f->dir, 80, 24, &f->err) < 0)
		fail_with(f, "shim_resize");
	server_done(f);
	f->server = fake_serve(f->dir, "{\"op\":\"update\",\"resources\":{\"pids\":{\"limit\":5}}}",
			       ok, strlen(ok), 0, FAKE_ANSWER);
	if (shim_update(f->dir, "{\"pids\":{\"limit\":5}}", &f->err) < 0)
		fail_with(f, "shim_update");
	server_done(f);
	/* refused before any connection */
	assert_int_equal(shim_update(f->dir, "[1]", &f->err), -EINVAL);
	assert_contains(f->err->msg, "resources");
	berth_error_freep(&f->err);
	assert_int_equal(shim_resize(f->dir, 0, 24, &f->err), -EINVAL);
}

static void test_error_answer_carries_errno(void **state)
{
	struct fx *f = *state;
	const char *no = "{\"ok\":false,\"errno\":16,\"error\":\"container c1 is running\"}\n";
	f->server = fake_serve(f->dir, "{\"op\":\"start\"}", no, strlen(no), 0, FAKE_ANSWER);
	assert_int_equal(shim_start(f->dir, &f->err), -EBUSY);
	assert_string_equal(f->err->msg, "container c1 is running");
	server_done(f);
}

static void test_garbage_answer(void **state)
{
	struct fx *f = *state;
	const char *junk = "{\"state\":\"running\"}\n";
	f->server = fake_serve(f->dir, NULL, junk, strlen(junk), 0, FAKE_ANSWER);
	assert_int_equal(shim_start(f->dir, &f->err), -EPROTO);
	assert_contains(f->err->msg, "\"ok\"");
	server_done(f);
	berth_error_freep(&f->err);
	const char *bad_state = "{\"ok\":true,\"state\":\"sleeping\"}\n";
	f->server = fake_serve(f->dir, NULL, bad_state, strlen(bad_state), 0, FAKE_ANSWER);
	struct shim_status st;
	assert_int_equal(shim_status(f->dir, &st, &f->err), -EPROTO);
	assert_contains(f->err->msg, "sleeping");
	server_done(f);
}

static void test_closed_without_answer(void **state)
{
	struct fx *f = *state;
	f->server = fake_serve(f->dir, NULL, NULL, 0, 0, FAKE_ANSWER);
	assert_int_equal(shim_start(f->dir, &f->err), -ENOTCONN);
	assert_contains(f->err->msg, "without answering");
	server_done(f);
}

static void test_gone_shim(void **state)
{
	struct fx *f = *state;
	assert_int_equal(shim_start(f->dir, &f->err), -ENOTCONN);
	assert_contains(f->err->msg, "is gone");
	berth_error_freep(&f->err);
	/* status falls back to the exit record; without one it is ESRCH */
	struct shim_status st;
	assert_int_equal(shim_status(f->dir, &st, &f->err), -ESRCH);
	assert_contains(f->err->msg, "no exit record");
	berth_error_freep(&f->err);
	char path[600];
	snprintf(path, sizeof(path), "%s/" SHIM_EXIT_FILE, f->dir);
	FILE *ex = fopen(path, "w");
	fputs("{\"id\":\"c\",\"state\":\"stopped\",\"pid\":7,\"created\":1,\"started\":2,"
	      "\"finished\":3,"
	      "\"exit_code\":137,\"signal\":9,\"oom_killed\":true}",
	      ex);
	fclose(ex);
	if (shim_status(f->dir, &st, &f->err) < 0)
		fail_with(f, "shim_status from exit.json");
	assert_int_equal(st.state, SHIM_STATE_STOPPED);
	assert_int_equal(st.exit_code, 137);
	assert_int_equal(st.signal, 9);
	assert_true(st.oom_killed);
	assert_int_equal(st.finished_ns, 3);
	/* shutdown of a shim without a pid file */
	assert_int_equal(shim_shutdown(f->dir, &f->err), -ENOTCONN);
}

static void test_long_directory(void **state)
{
	struct fx *f = *state;
	/* past sun_path's 108 bytes: reached through the directory's fd */
	snprintf(f->dir, sizeof(f->dir), "%s/%0120d", f->tmp.path, 7);
	assert_int_equal(mkdir(f->dir, 0700), 0);
	f->server = fake_serve(f->dir, "{\"op\":\"status\"}", STATUS_RUNNING,
			       strlen(STATUS_RUNNING), 0, FAKE_ANSWER);
	struct shim_status st;
	if (shim_status(f->dir, &st, &f->err) < 0)
		fail_with(f, "shim_status in a long directory");
	assert_int_equal(st.pid, 42);
	server_done(f);
}

static void test_wait(void **state)
{
	struct fx *f = *state;
	/* an answer that takes its time arrives on the fd from shim_wait_open */
	f->server = fake_serve(f->dir, "{\"op\":\"wait\"}", STATUS_RUNNING, strlen(STATUS_RUNNING),
			       200, FAKE_ANSWER);
	int fd = -1;
	if (shim_wait_open(f->dir, &fd, &f->err) < 0)
		fail_with(f, "shim_wait_open");
	struct pollfd p = { .fd = fd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(poll(&p, 1, 5000), 1);
	struct shim_status st;
	if (shim_wait_finish(fd, &st, &f->err) < 0)
		fail_with(f, "shim_wait_finish");
	assert_int_equal(st.pid, 42);
	server_done(f);
	/* a container that does not exit in time */
	f->server = fake_serve(f->dir, "{\"op\":\"wait\"}", NULL, 0, 0, FAKE_SILENT);
	assert_int_equal(shim_wait(f->dir, 100, &st, &f->err), -ETIMEDOUT);
	assert_contains(f->err->msg, "100 ms");
	server_done(f);
}

/* ---- frames ---- */

static void test_frames_roundtrip(void **state)
{
	struct fx *f = *state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid_t pid = fork();
	if (pid == 0) { /* a writer, so that a frame larger than the socket buffer can pass */
		size_t big = SHIM_FRAME_MAX + 10;
		char *data = malloc(big);
		memset(data, 'b', big);
		struct berth_error *e = NULL;
		int r = shim_frame_write(sv[0], SHIM_STREAM_STDIN, "hi", 2, &e);
		if (r == 0)
			r = shim_frame_write(sv[0], SHIM_STREAM_CLOSE_STDIN, NULL, 0, &e);
		if (r == 0) /* data is split at SHIM_FRAME_MAX */
			r = shim_frame_write(sv[0], SHIM_STREAM_STDOUT, data, big, &e);
		if (r == 0 && shim_frame_write(sv[0], SHIM_STREAM_RESIZE, data, big, &e) != -E2BIG)
			r = -1;
		_exit(r == 0 ? 0 : 1);
	}
	close(sv[0]);
	int stream;
	char *buf = NULL;
	size_t len;
	MUST_OK(f, shim_frame_read(sv[1], &stream, &buf, &len, &f->err));
	assert_int_equal(stream, SHIM_STREAM_STDIN);
	assert_int_equal(len, 2);
	assert_memory_equal(buf, "hi", 2);
	free(buf);
	MUST_OK(f, shim_frame_read(sv[1], &stream, &buf, &len, &f->err));
	assert_int_equal(stream, SHIM_STREAM_CLOSE_STDIN);
	assert_int_equal(len, 0);
	assert_null(buf);
	MUST_OK(f, shim_frame_read(sv[1], &stream, &buf, &len, &f->err));
	assert_int_equal(len, SHIM_FRAME_MAX);
	free(buf);
	MUST_OK(f, shim_frame_read(sv[1], &stream, &buf, &len, &f->err));
	assert_int_equal(stream, SHIM_STREAM_STDOUT);
	assert_int_equal(len, 10);
	free(buf);
	assert_int_equal(shim_frame_read(sv[1], &stream, &buf, &len, &f->err), -EPIPE);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	close(sv[1]);
}

static void test_frames_malformed(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *bytes;
		size_t len;
	} cases[] = {
		{ "\1\0\0", 3 },       /* a header cut short */
		{ "\1\0\0\0\5ab", 7 }, /* a payload cut short */
		{ "\1\0\x20\0\1", 5 }, /* larger than SHIM_FRAME_MAX */
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int sv[2];
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		assert_int_equal(write(sv[0], cases[i].bytes, cases[i].len), (ssize_t)cases[i].len);
		close(sv[0]);
		int stream;
		char *buf = NULL;
		size_t len;
		assert_int_equal(shim_frame_read(sv[1], &stream, &buf, &len, &f->err), -EPROTO);
		berth_error_freep(&f->err);
		close(sv[1]);
	}
}

static void test_exit_frame_parse(void **state)
{
	struct fx *f = *state;
	struct shim_status st;
	const char *good = "{\"exit_code\":137,\"signal\":9,\"oom_killed\":true}";
	MUST_OK(f, shim_exit_frame_parse(good, strlen(good), &st, &f->err));
	assert_int_equal(st.exit_code, 137);
	assert_int_equal(st.signal, 9);
	assert_true(st.oom_killed);
	assert_int_equal(st.state, SHIM_STATE_STOPPED);
	static const char *const bad[] = { "{\"signal\":9}", "{\"exit_code\":\"1\"}",
					   "{\"exit_code\":1,\"oom_killed\":1}", "[]", "{" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_true(shim_exit_frame_parse(bad[i], strlen(bad[i]), &st, &f->err) < 0);
		assert_non_null(f->err);
		berth_error_freep(&f->err);
	}
	assert_string_equal(shim_state_name(SHIM_STATE_CREATED), "created");
	assert_string_equal(shim_state_name(SHIM_STATE_STOPPED), "stopped");
}

/* ---- attach and exec ---- */

static void test_attach_keeps_frames_after_the_answer(void **state)
{
	struct fx *f = *state;
	/* the answer and the first frame in one write: the frame must not be eaten */
	const char answer[] = "{\"ok\":true,\"tty\":true}\n\1\0\0\0\3out";
	f->server = fake_serve(
		f->dir, "{\"op\":\"attach\",\"stdin\":true,\"stdout\":true,\"stderr\":false}",
		answer, sizeof(answer) - 1, 0, FAKE_SILENT);
	int fd = -1;
	bool tty = false;
	if (shim_attach_open(f->dir, true, true, false, &fd, &tty, &f->err) < 0)
		fail_with(f, "shim_attach_open");
	assert_true(tty);
	int stream;
	char *buf = NULL;
	size_t len;
	MUST_OK(f, shim_frame_read(fd, &stream, &buf, &len, &f->err));
	assert_int_equal(stream, SHIM_STREAM_STDOUT);
	assert_int_equal(len, 3);
	assert_memory_equal(buf, "out", 3);
	free(buf);
	close(fd);
	server_done(f);
}

static void test_exec_sync(void **state)
{
	struct fx *f = *state;
	const char *ok = "{\"ok\":true,\"pid\":99}\n";
	f->server = fake_serve(f->dir,
			       "{\"op\":\"exec\",\"process\":{\"args\":[\"cat\"]},\"stdin\":true}",
			       ok, strlen(ok), 0, FAKE_EXEC_ECHO);
	struct shim_exec_result res = { 0 };
	if (shim_exec_sync(f->dir, "{\"args\":[\"cat\"]}", "in", 2, 4096, 5000, &res, &f->err) < 0)
		fail_with(f, "shim_exec_sync");
	assert_int_equal(res.exit_code, 3);
	assert_int_equal(res.out_len, 4096); /* "in" and the first 4094 x's */
	assert_memory_equal(res.out, "inxx", 4);
	assert_int_equal(res.errs_len, 5);
	assert_string_equal(res.errs, "oops\n");
	assert_true(res.truncated);
	shim_exec_result_clear(&res);
	server_done(f);
}

static void test_exec_sync_timeout_closes(void **state)
{
	struct fx *f = *state;
	const char *ok = "{\"ok\":true,\"pid\":99}\n";
	f->server = fake_serve(f->dir, NULL, ok, strlen(ok), 0, FAKE_EXEC_HANG);
	struct shim_exec_result res = { 0 };
	assert_int_equal(
		shim_exec_sync(f->dir, "{\"args\":[\"sleep\"]}", NULL, 0, 100, 150, &res, &f->err),
		-ETIMEDOUT);
	assert_contains(f->err->msg, "timed out");
	/* the fake shim saw the connection close: that is what kills the process */
	server_done(f);
	berth_error_freep(&f->err);
	assert_int_equal(shim_exec_open(f->dir, "not json", false, &(int){ 0 }, NULL, &f->err),
			 -EINVAL);
}

/* ---- spawn and removal (no real shim) ---- */

static void test_spawn_refusals_leave_nothing(void **state)
{
	struct fx *f = *state;
	char dir[600], root[600];
	snprintf(dir, sizeof(dir), "%s/sub/new", f->tmp.path);
	snprintf(root, sizeof(root), "%s/root", f->tmp.path);
	struct shim_spawn_options o = { .shim_path = "/no/such/shim",
					.dir = dir,
					.id = "c1",
					.bundle = "/b",
					.runtime_root = root };
	pid_t pid;
	struct shim_status st;
	assert_int_equal(shim_spawn(&o, &pid, &st, &f->err), -ENOENT);
	assert_contains(f->err->msg, "/no/such/shim");
	assert_int_equal(access(dir, F_OK), -1);
	berth_error_freep(&f->err);
	/* a "shim" that exits without a word */
	o.shim_path = "/bin/true";
	assert_int_equal(shim_spawn(&o, &pid, &st, &f->err), -EIO);
	assert_contains(f->err->msg, "exited before it was ready");
	assert_int_equal(access(dir, F_OK), -1);
	berth_error_freep(&f->err);
	/* an existing directory is never taken over */
	o.dir = f->dir;
	assert_int_equal(shim_spawn(&o, &pid, &st, &f->err), -EEXIST);
	assert_int_equal(access(f->dir, F_OK), 0);
	berth_error_freep(&f->err);
	/* options the shim would refuse where nobody sees it */
	o.dir = dir;
	o.stdin_once = true;
	assert_int_equal(shim_spawn(&o, &pid, &st, &f->err), -EINVAL);
	assert_contains(f->err->msg, "stdin_once");
	berth_error_freep(&f->err);
	o.stdin_once = false;
	o.log_max_size = 1024;
	o.log_max_files = 1;
	assert_int_equal(shim_spawn(&o, &pid, &st, &f->err), -EINVAL);
	assert_contains(f->err->msg, "log_max_files");
	berth_error_freep(&f->err);
	o.id = NULL;
	assert_int_equal(shim_spawn(&o, &pid, &st, &f->err), -EINVAL);
	assert_int_equal(access(dir, F_OK), -1);
}

static void test_dir_remove_spares_other_processes(void **state)
{
	struct fx *f = *state;
	/* a pid file naming a process that is not this directory's shim (a reused pid) */
	pid_t other = fork();
	if (other == 0) {
		pause();
		_exit(0);
	}
	char path[600], root[600];
	snprintf(path, sizeof(path), "%s/" SHIM_PID_FILE, f->dir);
	snprintf(root, sizeof(root), "%s/root", f->tmp.path);
	FILE *p = fopen(path, "w");
	fprintf(p, "%d\n", other);
	fclose(p);
	MUST_OK(f, shim_dir_remove(f->dir, root, "c1", &f->err));
	assert_int_equal(access(f->dir, F_OK), -1);
	assert_int_equal(kill(other, 0), 0);
	/* idempotent */
	MUST_OK(f, shim_dir_remove(f->dir, root, "c1", &f->err));
	kill(other, SIGKILL);
	waitpid(other, NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_answer_carries_errno, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_closed_without_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gone_shim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frames_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frames_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_frame_parse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_keeps_frames_after_the_answer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_exec_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_sync_timeout_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spawn_refusals_leave_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir_remove_spares_other_processes, setup,
						teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
