/* runtime/container.c and exec.c: signal names as `kill` takes them; the init's and an exec'd
 * process's stdio redirected to fds the caller gives (root: real containers from the fixture
 * bundle). */
#include "unit.h"

#include "base/cleanup.h"
#include "runtime/runtime.h"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static bool can_run_containers;

static void test_signal_names(void **state)
{
	(void)state;
	assert_int_equal(runtime_signal_parse("KILL"), SIGKILL);
	assert_int_equal(runtime_signal_parse("SIGKILL"), SIGKILL);
	assert_int_equal(runtime_signal_parse("sigterm"), SIGTERM);
	assert_int_equal(runtime_signal_parse("term"), SIGTERM);
	assert_int_equal(runtime_signal_parse("HUP"), SIGHUP);
	assert_int_equal(runtime_signal_parse("SigUsr1"), SIGUSR1);
	assert_int_equal(runtime_signal_parse("WINCH"), SIGWINCH);
	assert_int_equal(runtime_signal_parse("CHLD"), SIGCHLD);
}

static void test_signal_numbers(void **state)
{
	(void)state;
	assert_int_equal(runtime_signal_parse("9"), 9);
	assert_int_equal(runtime_signal_parse("1"), 1);
	assert_int_equal(runtime_signal_parse("64"), 64);
	assert_int_equal(runtime_signal_parse("0"), -EINVAL);
	assert_int_equal(runtime_signal_parse("65"), -EINVAL);
	assert_int_equal(runtime_signal_parse("-9"), -EINVAL);
	assert_int_equal(runtime_signal_parse("99999999999999999999"), -EINVAL);
}

static void test_signal_realtime(void **state)
{
	(void)state;
	assert_int_equal(runtime_signal_parse("RTMIN"), SIGRTMIN);
	assert_int_equal(runtime_signal_parse("RTMIN+1"), SIGRTMIN + 1);
	assert_int_equal(runtime_signal_parse("SIGRTMIN+3"), SIGRTMIN + 3);
	assert_int_equal(runtime_signal_parse("RTMAX"), SIGRTMAX);
	assert_int_equal(runtime_signal_parse("RTMAX-1"), SIGRTMAX - 1);
	assert_int_equal(runtime_signal_parse("rtmax-2"), SIGRTMAX - 2);
	/* outside the range, or the wrong direction */
	assert_int_equal(runtime_signal_parse("RTMAX+1"), -EINVAL);
	assert_int_equal(runtime_signal_parse("RTMIN-1"), -EINVAL);
	assert_int_equal(runtime_signal_parse("RTMIN+1000"), -EINVAL);
	assert_int_equal(runtime_signal_parse("RTMIN+x"), -EINVAL);
}

static void test_signal_unknown(void **state)
{
	(void)state;
	assert_int_equal(runtime_signal_parse("FOO"), -EINVAL);
	assert_int_equal(runtime_signal_parse("SIGFOO"), -EINVAL);
	assert_int_equal(runtime_signal_parse(""), -EINVAL);
	assert_int_equal(runtime_signal_parse("SIG"), -EINVAL);
	assert_int_equal(runtime_signal_parse("KILL "), -EINVAL);
	assert_int_equal(runtime_signal_parse("9x"), -EINVAL);
}

/* ---- stdio redirection (root) ---- */

struct fx {
	struct unit_tmpdir dir;
	char root[128], bundle[128], id[64];
	struct berth_error *err;
};

static int cfx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || unit_tmpdir_create(&f->dir) < 0)
		return -1;
	*state = f;
	snprintf(f->root, sizeof(f->root), "%s/root", f->dir.path);
	snprintf(f->bundle, sizeof(f->bundle), "%s/bundle", f->dir.path);
	snprintf(f->id, sizeof(f->id), "unit-container-%d", getpid());
	if (!can_run_containers)
		return 0;
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "%s/make-bundle.sh %s", BERTH_FIXTURES, f->bundle);
	return system(cmd) == 0 ? 0 : -1;
}

static int cfx_teardown(void **state)
{
	struct fx *f = *state;
	if (can_run_containers)
		(void)runtime_container_delete(f->root, f->id, true, NULL);
	berth_error_freep(&f->err);
	unit_tmpdir_remove(&f->dir);
	free(f);
	return 0;
}

/* The bundle's process becomes /bin/sh -c script (no quotes or backslashes in it). */
static void set_script(struct fx *f, const char *script)
{
	assert_null(strpbrk(script, "\"\\"));
	char path[160];
	snprintf(path, sizeof(path), "%s/config.json", f->bundle);
	FILE *in = fopen(path, "re");
	assert_non_null(in);
	char text[8192];
	size_t n = fread(text, 1, sizeof(text) - 1, in);
	fclose(in);
	text[n] = '\0';
	const char *old = "\"echo hello from berth\"";
	char *at = strstr(text, old);
	assert_non_null(at);
	FILE *out = fopen(path, "we");
	assert_non_null(out);
	fprintf(out, "%.*s\"%s\"%s", (int)(at - text), text, script, at + strlen(old));
	assert_int_equal(fclose(out), 0);
}

/* Everything until EOF (the writers gone), at most len - 1 bytes, within 10 s. */
static char *read_until_eof(int fd, char *buf, size_t len)
{
	size_t got = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 10000) != 1)
			fail_msg("no EOF within 10 s (read \"%.*s\")", (int)got, buf);
		ssize_t r = read(fd, buf + got, len - 1 - got);
		assert_true(r >= 0);
		if (r == 0)
			break;
		got += (size_t)r;
	}
	buf[got] = '\0';
	return buf;
}

static pid_t init_pid(struct fx *f)
{
	_cleanup_(runtime_state_freep) struct runtime_state *s = NULL;
	MUST_OK(f, runtime_container_state(f->root, f->id, &s, &f->err));
	return s->pid;
}

/* Waits for our child behind pid; returns its exit code (128+N for signal N). */
static int wait_child(pid_t pid)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	assert_true(pidfd >= 0);
	siginfo_t si = { 0 };
	assert_int_equal(waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED), 0);
	close(pidfd);
	assert_int_equal(si.si_pid, pid);
	return si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
}

struct pipes {
	int in[2], out[2], errs[2];
};

static void pipes_open(struct pipes *p)
{
	assert_int_equal(pipe2(p->in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(p->out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(p->errs, O_CLOEXEC), 0);
}

/* After create/exec: only the process holds its ends now. */
static void pipes_close_theirs(struct pipes *p)
{
	closep(&p->in[0]);
	closep(&p->out[1]);
	closep(&p->errs[1]);
}

static void pipes_close(struct pipes *p)
{
	pipes_close_theirs(p);
	closep(&p->in[1]);
	closep(&p->out[0]);
	closep(&p->errs[0]);
}

/* Feeds "hi" to the process's stdin and checks what came out of stdout and stderr. */
static void check_echo(struct pipes *p, const char *want_out, const char *want_err)
{
	char buf[256];
	assert_int_equal(write(p->in[1], "hi\n", 3), 3);
	closep(&p->in[1]);
	assert_string_equal(read_until_eof(p->out[0], buf, sizeof(buf)), want_out);
	assert_string_equal(read_until_eof(p->errs[0], buf, sizeof(buf)), want_err);
}

/* The init echoes its stdin to stdout and stderr. */
static void echo_prepare(struct fx *f, struct pipes *p)
{
	set_script(f, "read x; echo out $x; echo err $x >&2");
	pipes_open(p);
}

/* Once created with p as its stdio: start it, check what comes out, wait for its exit. */
static void echo_run(struct fx *f, struct pipes *p)
{
	pipes_close_theirs(p);
	pid_t pid = init_pid(f);
	MUST_OK(f, runtime_container_start(f->root, f->id, &f->err));
	check_echo(p, "out hi\n", "err hi\n");
	assert_int_equal(wait_child(pid), 0);
	MUST_OK(f, runtime_container_delete(f->root, f->id, false, &f->err));
	pipes_close(p);
}

static void test_create_stdio(void **state)
{
	struct fx *f = *state;
	if (!can_run_containers)
		skip();
	struct pipes p;
	echo_prepare(f, &p);
	int stdio[3] = { p.in[0], p.out[1], p.errs[1] };
	struct runtime_create_options o = { .state_root = f->root, .id = f->id,
					    .bundle = f->bundle, .stdio = stdio };
	MUST_OK(f, runtime_container_create(&o, &f->err));
	echo_run(f, &p);
}

/* stdio given as the caller's own 0, 1, 2 in a rotated order: each must land where asked, not
 * on a copy another dup2 already overwrote. */
static void test_create_stdio_rotated(void **state)
{
	struct fx *f = *state;
	if (!can_run_containers)
		skip();
	struct pipes p;
	echo_prepare(f, &p);
	int saved[3];
	for (int i = 0; i < 3; i++)
		assert_true((saved[i] = fcntl(i, F_DUPFD_CLOEXEC, 10)) >= 0);
	/* fd 0: the stderr pipe, fd 1: the stdin pipe, fd 2: the stdout pipe */
	int r = dup2(p.errs[1], 0) < 0 || dup2(p.in[0], 1) < 0 || dup2(p.out[1], 2) < 0 ? -errno
											: 0;
	int stdio[3] = { 1, 2, 0 };
	struct runtime_create_options o = { .state_root = f->root, .id = f->id,
					    .bundle = f->bundle, .stdio = stdio };
	if (r == 0)
		r = runtime_container_create(&o, &f->err);
	for (int i = 0; i < 3; i++) {
		dup2(saved[i], i);
		close(saved[i]);
	}
	if (r < 0)
		fail_msg("create: %s", f->err ? f->err->msg : strerror(-r));
	echo_run(f, &p);
}

/* A running container whose init sleeps, its stdio /dev/null; returns the init's pid. */
static pid_t start_sleeper(struct fx *f)
{
	set_script(f, "sleep 1000");
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	assert_true(devnull >= 0);
	int quiet[3] = { devnull, devnull, devnull };
	struct runtime_create_options o = { .state_root = f->root, .id = f->id,
					    .bundle = f->bundle, .stdio = quiet };
	MUST_OK(f, runtime_container_create(&o, &f->err));
	close(devnull);
	pid_t init = init_pid(f);
	MUST_OK(f, runtime_container_start(f->root, f->id, &f->err));
	return init;
}

/* A detached exec hands back its pid and pidfd; the process is our child, its stdio ours. */
static void test_exec_stdio_pidfd(void **state)
{
	struct fx *f = *state;
	if (!can_run_containers)
		skip();
	pid_t init = start_sleeper(f);

	struct pipes p;
	pipes_open(&p);
	int stdio[3] = { p.in[0], p.out[1], p.errs[1] };
	char *args[] = { "/bin/sh", "-c", "read x; echo exec $x; echo e >&2; exit 3", NULL };
	pid_t pid = 0;
	int pidfd = -1, status = -1;
	struct runtime_exec_options o = { .state_root = f->root, .id = f->id, .args = args,
					  .detach = true, .stdio = stdio, .ret_pid = &pid,
					  .ret_pidfd = &pidfd };
	MUST_OK(f, runtime_container_exec(&o, &status, &f->err));
	pipes_close_theirs(&p);
	assert_true(pid > 0);
	assert_true(pidfd >= 0);
	assert_int_equal(status, 0);
	check_echo(&p, "exec hi\n", "e\n");
	siginfo_t si = { 0 };
	assert_int_equal(waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED), 0);
	assert_int_equal(si.si_pid, pid);
	assert_int_equal(si.si_code, CLD_EXITED);
	assert_int_equal(si.si_status, 3);
	close(pidfd);
	pipes_close(&p);

	MUST_OK(f, runtime_container_kill(f->root, f->id, SIGKILL, false, &f->err));
	assert_int_equal(wait_child(init), 128 + SIGKILL);
	MUST_OK(f, runtime_container_delete(f->root, f->id, false, &f->err));
}

/* The process as JSON text, in the foreground; a bad one is refused naming the field. */
static void test_exec_process_json(void **state)
{
	struct fx *f = *state;
	if (!can_run_containers)
		skip();
	pid_t init = start_sleeper(f);
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	assert_true(devnull >= 0);
	int quiet[3] = { devnull, devnull, devnull };
	int status = -1;
	struct runtime_exec_options o = {
		.state_root = f->root, .id = f->id, .stdio = quiet,
		.process_json = "{\"args\":[\"/bin/sh\",\"-c\",\"exit 7\"],\"cwd\":\"/\","
				"\"env\":[\"PATH=/bin\"],\"user\":{\"uid\":0,\"gid\":0}}",
	};
	MUST_OK(f, runtime_container_exec(&o, &status, &f->err));
	assert_int_equal(status, 7);
	o.process_json = "{\"args\":\"sh\",\"cwd\":\"/\"}";
	assert_int_equal(runtime_container_exec(&o, &status, &f->err), -EINVAL);
	assert_contains(f->err->msg, "process.args");
	close(devnull);

	MUST_OK(f, runtime_container_kill(f->root, f->id, SIGKILL, false, &f->err));
	assert_int_equal(wait_child(init), 128 + SIGKILL);
}

int main(void)
{
	can_run_containers = geteuid() == 0 && unit_private_namespaces("test_container", 0) == 0;
	if (!can_run_containers)
		fprintf(stderr, "test_container: the stdio tests need root; skipping them\n");
#define T(fn) cmocka_unit_test_setup_teardown(fn, cfx_setup, cfx_teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signal_names),
		cmocka_unit_test(test_signal_numbers),
		cmocka_unit_test(test_signal_realtime),
		cmocka_unit_test(test_signal_unknown),
		T(test_create_stdio),
		T(test_create_stdio_rotated),
		T(test_exec_stdio_pidfd),
		T(test_exec_process_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
