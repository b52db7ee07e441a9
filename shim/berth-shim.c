/* berth-shim: one per container (shim/shim.h, shim/protocol.h, server-internal.h).
 *
 * berth-shim --dir DIR --id ID --bundle DIR --runtime-root DIR [--log PATH]
 *   [--log-max-size BYTES] [--log-max-files N] [--log-line-max BYTES] [--stdin] [--stdin-once]
 *   [--systemd-cgroup] [--log-level error|warn|info|debug] [--ready-fd N]
 *
 * Its client has already detached it (double fork, setsid, /dev/null stdio). It makes DIR,
 * creates the container in-process, tells the client on --ready-fd, then serves DIR/shim.sock
 * until a shutdown after the container's exit. A start that fails leaves nothing behind. */
#include "shim/server-internal.h"
#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "base/log.h"
#include "cgroup/cgroup.h"
#include "runtime/runtime.h"
#include "shim/protocol.h"
#include "tools/cli.h"
#include "tools/options.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define PROG "berth-shim"
#define SHIM_LOG "shim.log"

/* ---- command line ---- */

static const char usage_text[] =
	"usage: " PROG " --dir DIR --id ID --bundle DIR --runtime-root DIR [--log PATH]\n"
	"         [--log-max-size BYTES] [--log-max-files N] [--log-line-max BYTES]\n"
	"         [--stdin] [--stdin-once] [--systemd-cgroup]\n"
	"         [--log-level error|warn|info|debug] [--ready-fd N]\n"
	"       " PROG " --help | --version\n"
	"Started by berthd (one per container), not by people: see berth-shim(8).\n";

/* --help and --version stand alone (the rest needs every required option). */
static int info_request(int argc, char **argv)
{
	if (argc != 2)
		return 0;
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		fputs(usage_text, stdout);
	else if (strcmp(argv[1], "--version") == 0)
		printf(PROG " version %s\n", BERTH_VERSION);
	else
		return 0;
	return 1;
}

static int parse_u64(const char *s, const char *name, uint64_t max, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = s ? strtoull(s, &end, 10) : 0;
	if (s && (errno || !*s || *end || *s == '-' || v > max))
		return cli_usage("--%s %s: expects a number up to %llu", name, s,
				 (unsigned long long)max);
	*ret = v;
	return 0;
}

static int parse_level(const char *s, enum log_level *ret)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(s, names[i]) == 0) {
			*ret = (enum log_level)i;
			return 0;
		}
	return cli_usage("--log-level %s: expects error, warn, info or debug", s);
}

static int parse_args(int argc, char **argv, struct shim_args *a, enum log_level *level)
{
	const char *max_size = NULL, *max_files = NULL, *line_max = NULL, *ready_fd = NULL;
	const struct opt opts[] = {
		{ "dir", 0, OPT_STRING, &a->dir },
		{ "id", 0, OPT_STRING, &a->id },
		{ "bundle", 0, OPT_STRING, &a->bundle },
		{ "runtime-root", 0, OPT_STRING, &a->runtime_root },
		{ "log", 0, OPT_STRING, &a->log_path },
		{ "log-max-size", 0, OPT_STRING, &max_size },
		{ "log-max-files", 0, OPT_STRING, &max_files },
		{ "log-line-max", 0, OPT_STRING, &line_max },
		{ "stdin", 0, OPT_FLAG, &a->stdin_open },
		{ "stdin-once", 0, OPT_FLAG, &a->stdin_once },
		{ "systemd-cgroup", 0, OPT_FLAG, &a->systemd_cgroup },
		{ "log-level", 0, OPT_STRING, &a->log_level },
		{ "ready-fd", 0, OPT_STRING, &ready_fd },
		{ NULL, 0, 0, NULL },
	};
	int i = 1;
	char *msg = NULL;
	if (options_parse(argc, argv, &i, opts, &msg) < 0) {
		int r = cli_usage("%s", msg ? msg : "out of memory");
		free(msg);
		return r;
	}
	if (i < argc)
		return cli_usage("unexpected argument \"%s\" (options only)", argv[i]);
	const char *required[][2] = { { "dir", a->dir }, { "id", a->id }, { "bundle", a->bundle },
				      { "runtime-root", a->runtime_root } };
	for (size_t k = 0; k < ARRAY_SIZE(required); k++)
		if (!required[k][1] || !required[k][1][0])
			return cli_usage("--%s is required", required[k][0]);
	uint64_t files = 0, line = SHIM_LOG_LINE_MAX_DEFAULT, fd = 0;
	int r;
	if ((r = parse_u64(max_size, "log-max-size", UINT64_MAX, &a->log_max_size)) ||
	    (r = parse_u64(max_files, "log-max-files", 1000, &files)) ||
	    (r = parse_u64(line_max, "log-line-max", 64 * 1024 * 1024, &line)) ||
	    (r = parse_u64(ready_fd, "ready-fd", INT32_MAX, &fd)) ||
	    (r = parse_level(a->log_level ? a->log_level : "info", level)))
		return r;
	a->log_max_files = (unsigned)files;
	a->log_line_max = line ? line : SHIM_LOG_LINE_MAX_DEFAULT;
	a->ready_fd = ready_fd ? (int)fd : -1;
	if (a->log_path && a->log_path[0] != '/')
		return cli_usage("--log %s: must be an absolute path", a->log_path);
	if (a->log_max_size && files < 2)
		return cli_usage("--log-max-files %llu: rotation keeps at least 2 files",
				 (unsigned long long)files);
	if (a->stdin_once && !a->stdin_open)
		return cli_usage("--stdin-once needs --stdin");
	if (a->ready_fd >= 0 && a->ready_fd <= 2)
		return cli_usage("--ready-fd %d: stdio is not a ready fd", a->ready_fd);
	return 0;
}

/* ---- signals and the drain timer ---- */

static void signal_cb(struct loop_source *src, uint32_t events)
{
	struct shim *s = container_of(src, struct shim, signal_src);
	struct signalfd_siginfo si;
	while (read(s->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD) {
			shim_reap(s);
			continue;
		}
		if (s->state == SHIM_STATE_STOPPED || s->io.exited) {
			log_info("signal %u: the container has exited, nothing to forward to",
				 si.ssi_signo);
			continue;
		}
		struct berth_error *err = NULL;
		log_info("signal %u: forwarding it to the container", si.ssi_signo);
		if (runtime_container_kill(s->a.runtime_root, s->a.id, (int)si.ssi_signo, false,
					   &err) < 0) {
			log_warn("forward signal %u: %s", si.ssi_signo, err->msg);
			berth_error_free(err);
		}
	}
}

static void timer_set(struct shim *s, bool on)
{
	const struct timespec tick = { 0, SHIM_TICK_MS * 1000000L };
	struct itimerspec its = { .it_interval = tick, .it_value = tick };
	if (!on)
		its = (struct itimerspec){ 0 };
	if (timerfd_settime(s->timer_fd, 0, &its, NULL) < 0)
		log_error("timerfd_settime: %s", strerror(errno));
	else
		s->timer_armed = on;
}

void shim_timer_arm(struct shim *s)
{
	if (!s->timer_armed)
		timer_set(s, true);
}

static void timer_cb(struct loop_source *src, uint32_t events)
{
	struct shim *s = container_of(src, struct shim, timer_src);
	uint64_t ticks;
	if (read(s->timer_fd, &ticks, sizeof(ticks)) < 0)
		return;
	int64_t now = now_ms();
	bool busy = proc_io_tick(&s->io, now);
	busy = exec_tick(s, now) || busy;
	if (!busy)
		timer_set(s, false);
}

static void no_op_handler(int sig)
{
	(void)sig;
}

/* SIGCHLD, SIGTERM and SIGINT come through a signalfd; SIGPIPE and SIGHUP are caught by a
 * handler that does nothing (unlike SIG_IGN, a handler does not survive into the processes the
 * shim starts). */
static int signals_setup(struct shim *s, struct berth_error **err)
{
	struct sigaction sa = { .sa_handler = no_op_handler };
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGPIPE, &sa, NULL) < 0 || sigaction(SIGHUP, &sa, NULL) < 0)
		return berth_error_setsys(err, errno, "sigaction");
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return berth_error_setsys(err, errno, "sigprocmask");
	if ((s->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
		return berth_error_setsys(err, errno, "signalfd");
	if ((s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)) < 0)
		return berth_error_setsys(err, errno, "timerfd_create");
	int r = loop_watch(&s->loop, &s->signal_src, s->signal_fd, EPOLLIN, signal_cb, err);
	return r < 0 ? r : loop_watch(&s->loop, &s->timer_src, s->timer_fd, EPOLLIN, timer_cb, err);
}

/* ---- start-up ---- */

static int make_dir(struct shim *s, enum log_level level, struct berth_error **err)
{
	if (mkdir(s->a.dir, 0700) < 0) {
		if (errno == EEXIST)
			return berth_error_set(err, EEXIST, "--dir %s: already exists", s->a.dir);
		return berth_error_setsys(err, errno, "--dir %s", s->a.dir);
	}
	s->dir_made = true;
	s->dir_fd = open(s->a.dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s->dir_fd < 0)
		return berth_error_setsys(err, errno, "--dir %s", s->a.dir);
	s->log_fd = openat(s->dir_fd, SHIM_LOG, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (s->log_fd < 0)
		return berth_error_setsys(err, errno, "%s/%s", s->a.dir, SHIM_LOG);
	log_setup(PROG, s->log_fd, false, level);
	return 0;
}

static int bundle_wants_terminal(const char *bundle, bool *ret, struct berth_error **err)
{
	_cleanup_free_ char *text = NULL, *path = NULL;
	_cleanup_(bjson_freep) struct json *j = NULL;
	if (asprintf(&path, "%s/config.json", bundle) < 0)
		return -ENOMEM;
	int r = read_file_at(AT_FDCWD, path, &text, NULL, err);
	if (r < 0 || (r = bjson_parse(text, &j, err)) < 0)
		return berth_error_wrap(err, "bundle %s", bundle);
	const struct json *t = bjson_object_get(bjson_object_get(j, "process"), "terminal");
	*ret = bjson_type_of(t) == JSON_BOOL && bjson_bool(t);
	return 0;
}

/* The container's cgroup, as its init is in it: for the OOM kill count. */
static void open_container_cgroup(struct shim *s)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", s->pid);
	_cleanup_free_ char *text = NULL;
	if (read_file_at(AT_FDCWD, path, &text, NULL, NULL) < 0)
		return;
	char *v2 = strstr(text, "0::");
	if (v2 != text && v2 && v2[-1] != '\n')
		v2 = NULL;
	if (!v2) {
		log_info("container %s has no cgroup2 cgroup: OOM kills cannot be told", s->a.id);
		return;
	}
	v2 += 3;
	v2[strcspn(v2, "\n")] = '\0';
	struct berth_error *err = NULL;
	if (cgroup_open(v2, &s->cg, &err) < 0) {
		log_warn("cgroup %s: %s: OOM kills cannot be told", v2, err->msg);
		berth_error_free(err);
		return;
	}
	s->oom_base = cgroup_oom_kills(s->cg);
}

static int create_container(struct shim *s, struct berth_error **err)
{
	bool tty = false;
	int r = bundle_wants_terminal(s->a.bundle, &tty, err);
	if (r < 0)
		return r;
	_cleanup_close_ int console = -EBADF;
	int child[3] = { -1, -1, -1 };
	char path[128];
	if (tty)
		r = console = console_listen(s, path, sizeof(path), err);
	else
		r = proc_io_pipes(&s->io, s->a.stdin_open, child, err);
	if (r >= 0) {
		struct runtime_create_options o = {
			.state_root = s->a.runtime_root, .id = s->a.id, .bundle = s->a.bundle,
			.console_socket = tty ? path : NULL, .stdio = tty ? NULL : child,
			.systemd_cgroup = s->a.systemd_cgroup,
		};
		r = runtime_container_create(&o, err);
	}
	for (int i = 0; i < 3; i++)
		closep(&child[i]); /* the init has its copies */
	if (r < 0) {
		if (tty)
			(void)unlinkat(s->dir_fd, SHIM_CONSOLE_SOCKET, 0);
		return r;
	}
	s->created = true;
	int master = -1;
	if (tty && ((r = console_receive(s, console, &master, err)) < 0 ||
		    (r = proc_io_pty(&s->io, master, err)) < 0))
		return r;
	_cleanup_(runtime_state_freep) struct runtime_state *st = NULL;
	if ((r = runtime_container_state(s->a.runtime_root, s->a.id, &st, err)) < 0)
		return r;
	s->pid = st->pid;
	s->created_ns = now_ns();
	s->state = SHIM_STATE_CREATED;
	open_container_cgroup(s);
	return proc_io_watch(&s->io, err);
}

static int startup(struct shim *s, enum log_level level, struct berth_error **err)
{
	int r;
	if (s->a.ready_fd >= 0 && fcntl(s->a.ready_fd, F_SETFD, FD_CLOEXEC) < 0)
		return berth_error_setsys(err, errno, "--ready-fd %d", s->a.ready_fd);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		return berth_error_setsys(err, errno, "prctl(PR_SET_CHILD_SUBREAPER)");
	if ((r = make_dir(s, level, err)) < 0 || (r = loop_init(&s->loop, err)) < 0 ||
	    (r = signals_setup(s, err)) < 0 || (r = server_listen(s, err)) < 0)
		return r;
	if (s->a.log_path) {
		struct crilog_options lo = { .path = s->a.log_path, .max_size = s->a.log_max_size,
					     .max_files = s->a.log_max_files,
					     .line_max = s->a.log_line_max };
		if ((r = crilog_open(&lo, &s->log, err)) < 0)
			return r;
	}
	if ((r = create_container(s, err)) < 0)
		return berth_error_wrap(err, "create container %s", s->a.id);
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%d", getpid());
	r = write_file_atomic_at(s->dir_fd, SHIM_PID_FILE, pid, (size_t)n, 0600, false, err);
	if (r < 0)
		return r;
	log_info("container %s created, init %d", s->a.id, s->pid);
	return 0;
}

/* Undoes a start that failed: the container, the log file it created, the directory. */
static void startup_rollback(struct shim *s)
{
	if (s->created) {
		struct berth_error *err = NULL;
		if (runtime_container_delete(s->a.runtime_root, s->a.id, true, &err) < 0) {
			log_error("remove container %s: %s", s->a.id, err->msg);
			berth_error_free(err);
		}
	}
	if (s->log)
		crilog_remove_created(s->log);
	if (s->dir_made)
		(void)remove_tree_at(AT_FDCWD, s->a.dir);
}

/* The one JSON line on --ready-fd (then closed). */
static void ready_write(struct shim *s, int r, const struct berth_error *err)
{
	if (s->a.ready_fd < 0)
		return;
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return;
	bjson_writer_begin_object(w);
	bjson_writer_kv_bool(w, "ok", r >= 0);
	if (r >= 0) {
		bjson_writer_kv_int(w, "shim_pid", getpid());
		status_write(w, s);
	} else {
		bjson_writer_kv_int(w, "errno", -r);
		bjson_writer_kv_string(w, "error", err && err->msg ? err->msg : strerror(-r));
	}
	bjson_writer_end_object(w);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if (bjson_writer_finish(w, &text, &len) == 0) {
		text[len] = '\n'; /* over the NUL: the line goes out whole, in one write */
		if (write_all(s->a.ready_fd, text, len + 1) < 0)
			log_warn("--ready-fd: %s", strerror(errno));
	}
	closep(&s->a.ready_fd);
	s->a.ready_fd = -1;
}

static void shim_clear(struct shim *s)
{
	server_close_all(s);
	exec_free_all(s);
	proc_io_clear(&s->io);
	crilog_freep(&s->log);
	cgroup_freep(&s->cg);
	loop_unwatch(&s->loop, &s->signal_src);
	loop_unwatch(&s->loop, &s->timer_src);
	closep(&s->signal_fd);
	closep(&s->timer_fd);
	closep(&s->listen_fd);
	loop_clear(&s->loop);
}

int main(int argc, char **argv)
{
	struct shim s = { .dir_fd = -1, .listen_fd = -1, .signal_fd = -1, .timer_fd = -1,
			  .log_fd = -1, .loop.epfd = -1 };
	enum log_level level = LOG_LEVEL_INFO;
	cli_init(PROG, 2, NULL);
	if (info_request(argc, argv))
		return 0;
	int r = parse_args(argc, argv, &s.a, &level);
	if (r)
		return r;
	proc_io_init(&s.io, &s, &container_io_ops);
	struct berth_error *err = NULL;
	/* it clones processes that join the container's namespaces: what they can reach of
	 * this program must be a sealed view (runc CVE-2019-5736) */
	r = runtime_exe_reexec_sealed(argv, environ, &err);
	if (r == 0)
		r = startup(&s, level, &err);
	if (r < 0) {
		log_error("%s", err ? err->msg : strerror(-r));
		startup_rollback(&s);
		ready_write(&s, r, err);
		shim_clear(&s);
		return cli_fail(err, r);
	}
	ready_write(&s, 0, NULL);
	r = loop_run(&s.loop, &err);
	if (r < 0) {
		log_error("%s", err->msg);
		berth_error_free(err);
	}
	log_info("shim for %s exits", s.a.id);
	shim_clear(&s);
	closep(&s.log_fd);
	closep(&s.dir_fd);
	return r < 0 ? 1 : 0;
}
