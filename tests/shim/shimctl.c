/* shimctl: a thin command line over shim.h (the berth-shim client), for the shim's integration
 * tests, its qemu-guest test and its memory benchmark. berthd is the real client; people use
 * `berth` through berthd. Errors are one line on stderr and exit 1 (bad usage: 2); `exec` and
 * `attach` exit with the process's own status. */
#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "runtime/runtime.h"
#include "shim/protocol.h"
#include "shim/shim.h"
#include "tools/cli.h"
#include "tools/options.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define PROG		     "shimctl"
#define EXEC_SYNC_MAX_OUTPUT (16 * 1024 * 1024)
#define RELAY_BUF	     (64 * 1024)

/* Options before, between and after the first npos positional arguments (stored in pos[]);
 * stops at "--" or at the first argument past them, where a command may follow. */
static int parse_args(int argc, char **argv, int *i, const struct opt *opts, const char *cmd,
		      const char **pos, int npos, const char *usage)
{
	int n = 0;
	for (;;) {
		int before = *i;
		int r = cli_parse(argc, argv, i, opts, cmd);
		if (r)
			return r;
		if ((*i > before && strcmp(argv[*i - 1], "--") == 0) || *i >= argc || n == npos)
			break;
		pos[n++] = argv[(*i)++];
	}
	if (n < npos)
		return cli_usage("%s: usage: " PROG " %s %s", cmd, cmd, usage);
	return 0;
}

/* parse_args for a command that takes nothing after its positional arguments. */
static int parse_exact(int argc, char **argv, int i, const struct opt *opts, const char *cmd,
		       const char **pos, int npos, const char *usage)
{
	int r = parse_args(argc, argv, &i, opts, cmd, pos, npos, usage);
	if (r == 0 && i < argc)
		r = cli_usage("%s: unexpected argument \"%s\"; usage: " PROG " %s %s", cmd, argv[i],
			      cmd, usage);
	return r;
}

static int parse_number(const char *name, const char *s, uint64_t max, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = s ? strtoull(s, &end, 10) : 0;
	if (!s || errno || *end || end == s || s[0] == '-' || v > max)
		return cli_usage("--%s %s: expects a number from 0 to %llu", name, s ? s : "",
				 (unsigned long long)max);
	*ret = v;
	return 0;
}

static int print_json(struct json_writer *w)
{
	_cleanup_free_ char *text = NULL;
	int r = bjson_writer_finish(w, &text, NULL);
	if (r < 0)
		return cli_fail_msg("cannot write JSON (output not UTF-8?): %s", strerror(-r));
	printf("%s\n", text);
	return fflush(stdout) == 0 ? 0 : cli_fail_msg("write stdout: %s", strerror(errno));
}

static int print_status(const struct shim_status *st, pid_t shim_pid)
{
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return cli_fail(NULL, -ENOMEM);
	bjson_writer_begin_object(w);
	if (shim_pid > 0)
		bjson_writer_kv_int(w, "shim_pid", shim_pid);
	bjson_writer_kv_string(w, "state", shim_state_name(st->state));
	bjson_writer_kv_int(w, "pid", st->pid);
	bjson_writer_kv_int(w, "created", st->created_ns);
	bjson_writer_kv_int(w, "started", st->started_ns);
	bjson_writer_kv_int(w, "finished", st->finished_ns);
	bjson_writer_kv_int(w, "exit_code", st->exit_code);
	bjson_writer_kv_int(w, "signal", st->signal);
	bjson_writer_kv_bool(w, "oom_killed", st->oom_killed);
	bjson_writer_end_object(w);
	return print_json(w);
}

/* ---- spawn ---- */

struct spawn_args {
	const char *max_size, *max_files, *line_max;
	bool hold;
};

static int spawn_numbers(const struct spawn_args *a, struct shim_spawn_options *o)
{
	uint64_t v = 0;
	int r = 0;
	if (a->max_size && (r = parse_number("log-max-size", a->max_size, UINT64_MAX, &v)) == 0)
		o->log_max_size = v;
	if (r == 0 && a->max_files &&
	    (r = parse_number("log-max-files", a->max_files, 1000, &v)) == 0)
		o->log_max_files = (unsigned)v;
	if (r == 0 && a->line_max &&
	    (r = parse_number("log-line-max", a->line_max, SIZE_MAX, &v)) == 0)
		o->log_line_max = (size_t)v;
	return r;
}

static int cmd_spawn(int argc, char **argv, int i)
{
	struct shim_spawn_options o = { .shim_path = getenv("BERTH_SHIM") };
	struct spawn_args a = { 0 };
	const struct opt opts[] = {
		{ "shim", 0, OPT_STRING, &o.shim_path },
		{ "dir", 0, OPT_STRING, &o.dir },
		{ "id", 0, OPT_STRING, &o.id },
		{ "bundle", 'b', OPT_STRING, &o.bundle },
		{ "runtime-root", 0, OPT_STRING, &o.runtime_root },
		{ "log", 0, OPT_STRING, &o.log_path },
		{ "log-max-size", 0, OPT_STRING, &a.max_size },
		{ "log-max-files", 0, OPT_STRING, &a.max_files },
		{ "log-line-max", 0, OPT_STRING, &a.line_max },
		{ "stdin", 0, OPT_FLAG, &o.stdin_open },
		{ "stdin-once", 0, OPT_FLAG, &o.stdin_once },
		{ "systemd-cgroup", 0, OPT_FLAG, &o.systemd_cgroup },
		{ "log-level", 0, OPT_STRING, &o.log_level },
		/* stay until killed: a spawner that outlives the spawn, for the tests */
		{ "hold", 0, OPT_FLAG, &a.hold },
		{ NULL, 0, 0, NULL },
	};
	int r = parse_exact(argc, argv, i, opts, "spawn", NULL, 0,
			    "--dir DIR --id ID --bundle DIR --runtime-root DIR [options]");
	if (r || (r = spawn_numbers(&a, &o)))
		return r;
	pid_t shim_pid = 0;
	struct shim_status st;
	struct berth_error *err = NULL;
	r = shim_spawn(&o, &shim_pid, &st, &err);
	if (r < 0)
		return cli_fail(err, r);
	if ((r = print_status(&st, shim_pid)) != 0 || !a.hold)
		return r;
	for (;;)
		pause();
}

/* ---- one-shot requests ---- */

static int cmd_status(int argc, char **argv, int i)
{
	const char *dir;
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = parse_exact(argc, argv, i, opts, "status", &dir, 1, "DIR");
	if (r)
		return r;
	struct shim_status st;
	struct berth_error *err = NULL;
	r = shim_status(dir, &st, &err);
	return r < 0 ? cli_fail(err, r) : print_status(&st, 0);
}

static int cmd_wait(int argc, char **argv, int i)
{
	const char *dir, *timeout = NULL;
	const struct opt opts[] = { { "timeout", 0, OPT_STRING, &timeout }, { NULL, 0, 0, NULL } };
	int r = parse_exact(argc, argv, i, opts, "wait", &dir, 1, "DIR [--timeout MS]");
	uint64_t ms = 0;
	if (r || (timeout && (r = parse_number("timeout", timeout, INT_MAX, &ms))))
		return r;
	struct shim_status st;
	struct berth_error *err = NULL;
	r = shim_wait(dir, timeout ? (int)ms : -1, &st, &err);
	return r < 0 ? cli_fail(err, r) : print_status(&st, 0);
}

static int cmd_kill(int argc, char **argv, int i)
{
	const char *pos[2];
	bool all = false;
	const struct opt opts[] = { { "all", 'a', OPT_FLAG, &all }, { NULL, 0, 0, NULL } };
	int r = parse_exact(argc, argv, i, opts, "kill", pos, 2, "DIR SIGNAL [--all]");
	if (r)
		return r;
	int sig = runtime_signal_parse(pos[1]);
	if (sig < 0)
		return cli_usage("kill: unknown signal \"%s\"", pos[1]);
	struct berth_error *err = NULL;
	r = shim_kill(pos[0], sig, all, &err);
	return r < 0 ? cli_fail(err, r) : 0;
}

static int cmd_resize(int argc, char **argv, int i)
{
	const char *pos[3];
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = parse_exact(argc, argv, i, opts, "resize", pos, 3, "DIR WIDTH HEIGHT");
	uint64_t w = 0, h = 0;
	if (r || (r = parse_number("width", pos[1], UINT_MAX, &w)) ||
	    (r = parse_number("height", pos[2], UINT_MAX, &h)))
		return r;
	struct berth_error *err = NULL;
	r = shim_resize(pos[0], (unsigned)w, (unsigned)h, &err);
	return r < 0 ? cli_fail(err, r) : 0;
}

static int cmd_update(int argc, char **argv, int i)
{
	const char *pos[2];
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = parse_exact(argc, argv, i, opts, "update", pos, 2, "DIR RESOURCES-JSON");
	if (r)
		return r;
	struct berth_error *err = NULL;
	r = shim_update(pos[0], pos[1], &err);
	return r < 0 ? cli_fail(err, r) : 0;
}

/* start, reopen-log, shutdown: DIR and nothing else. */
static int cmd_simple(int argc, char **argv, int i, const char *cmd,
		      int (*fn)(const char *dir, struct berth_error **err))
{
	const char *dir;
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = parse_exact(argc, argv, i, opts, cmd, &dir, 1, "DIR");
	if (r)
		return r;
	struct berth_error *err = NULL;
	r = fn(dir, &err);
	return r < 0 ? cli_fail(err, r) : 0;
}

static int cmd_remove(int argc, char **argv, int i)
{
	const char *pos[3];
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = parse_exact(argc, argv, i, opts, "remove", pos, 3, "DIR RUNTIME_ROOT ID");
	if (r)
		return r;
	struct berth_error *err = NULL;
	r = shim_dir_remove(pos[0], pos[1], pos[2], &err);
	return r < 0 ? cli_fail(err, r) : 0;
}

/* ---- streams ---- */

/* Copies our stdin (when in) into the stream and the stream's frames to stdout and stderr until
 * the shim closes it; returns the process's exit status, or 1 with a message. */
static int relay(int fd, bool in)
{
	_cleanup_free_ char *buf = malloc(RELAY_BUF);
	if (!buf)
		return cli_fail(NULL, -ENOMEM);
	int code = -1;
	struct berth_error *err = NULL;
	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
				       { .fd = in ? 0 : -1, .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return cli_fail_msg("poll: %s", strerror(errno));
		}
		if (p[1].revents) {
			ssize_t n = read(0, buf, RELAY_BUF);
			if (n < 0 && errno == EINTR)
				continue;
			int r = n > 0 ? shim_frame_write(fd, SHIM_STREAM_STDIN, buf, (size_t)n,
							 &err)
				      : shim_frame_write(fd, SHIM_STREAM_CLOSE_STDIN, NULL, 0,
							 &err);
			if (n <= 0 || r == -EPIPE)
				in = false; /* the process may be gone: its exit frame is coming */
			if (r == -EPIPE)
				err = berth_error_free(err);
			else if (r < 0)
				return cli_fail(err, r);
		}
		if (!p[0].revents)
			continue;
		int stream;
		char *data = NULL;
		size_t len = 0;
		int r = shim_frame_read(fd, &stream, &data, &len, &err);
		if (r == -EPIPE) {
			berth_error_free(err);
			break;
		}
		if (r < 0)
			return cli_fail(err, r);
		if (stream == SHIM_STREAM_STDOUT || stream == SHIM_STREAM_STDERR)
			r = write_all(stream == SHIM_STREAM_STDOUT ? 1 : 2, data, len);
		if (stream == SHIM_STREAM_EXIT) {
			struct shim_status st = { 0 };
			r = shim_exit_frame_parse(data, len, &st, &err);
			code = st.exit_code;
		}
		free(data);
		if (r < 0)
			return cli_fail(err, r);
	}
	return code >= 0 ? code : cli_fail_msg("the stream ended without an exit status");
}

static int send_resize(int fd, unsigned w, unsigned h)
{
	char json[64];
	int n = snprintf(json, sizeof(json), "{\"width\":%u,\"height\":%u}", w, h);
	struct berth_error *err = NULL;
	int r = shim_frame_write(fd, SHIM_STREAM_RESIZE, json, (size_t)n, &err);
	return r < 0 ? cli_fail(err, r) : 0;
}

/* --size WxH, or the size of our own terminal. */
static int initial_size(const char *size, unsigned *w, unsigned *h)
{
	if (size) {
		char x;
		if (sscanf(size, "%u%c%u", w, &x, h) != 3 || x != 'x' || !*w || !*h)
			return cli_usage("--size %s: expects WIDTHxHEIGHT", size);
		return 0;
	}
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col && ws.ws_row) {
		*w = ws.ws_col;
		*h = ws.ws_row;
	}
	return 0;
}

struct exec_args {
	bool tty, in;
	char **env;
	const char *cwd, *size, *timeout, *max_output;
};

/* A runtime-spec process object for args. */
static int process_json(const struct exec_args *a, char **args, char **ret)
{
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return cli_fail(NULL, -ENOMEM);
	bjson_writer_begin_object(w);
	bjson_writer_kv_bool(w, "terminal", a->tty);
	bjson_writer_key(w, "user");
	bjson_writer_begin_object(w);
	bjson_writer_kv_int(w, "uid", 0);
	bjson_writer_kv_int(w, "gid", 0);
	bjson_writer_end_object(w);
	bjson_writer_key(w, "args");
	bjson_writer_begin_array(w);
	for (char **p = args; *p; p++)
		bjson_writer_string(w, *p);
	bjson_writer_end_array(w);
	bjson_writer_key(w, "env");
	bjson_writer_begin_array(w);
	bjson_writer_string(w, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (a->tty)
		bjson_writer_string(w, "TERM=xterm");
	for (char **p = a->env; p && *p; p++)
		bjson_writer_string(w, *p);
	bjson_writer_end_array(w);
	bjson_writer_kv_string(w, "cwd", a->cwd ? a->cwd : "/");
	bjson_writer_end_object(w);
	int r = bjson_writer_finish(w, ret, NULL);
	return r < 0 ? cli_fail_msg("exec: cannot write the process JSON") : 0;
}

static int exec_parse(int argc, char **argv, int i, const char *cmd, struct exec_args *a,
		      const char **dir, char **ret_json)
{
	const struct opt opts[] = {
		{ "tty", 't', OPT_FLAG, &a->tty },
		{ "interactive", 'i', OPT_FLAG, &a->in },
		{ "env", 'e', OPT_LIST, &a->env },
		{ "cwd", 0, OPT_STRING, &a->cwd },
		{ "size", 0, OPT_STRING, &a->size },
		{ "timeout", 0, OPT_STRING, &a->timeout },
		{ "max-output", 0, OPT_STRING, &a->max_output },
		{ NULL, 0, 0, NULL },
	};
	int r = parse_args(argc, argv, &i, opts, cmd, dir, 1, "DIR [options] -- CMD...");
	if (r)
		return r;
	if (i >= argc)
		return cli_usage("%s: no command given; usage: " PROG " %s DIR [options] -- CMD...",
				 cmd, cmd);
	return process_json(a, argv + i, ret_json);
}

static int cmd_exec(int argc, char **argv, int i)
{
	struct exec_args a = { 0 };
	const char *dir;
	_cleanup_free_ char *process = NULL;
	int r = exec_parse(argc, argv, i, "exec", &a, &dir, &process);
	unsigned w = 0, h = 0;
	if (r == 0 && a.tty)
		r = initial_size(a.size, &w, &h);
	if (r == 0 && (a.timeout || a.max_output))
		r = cli_usage("exec: --timeout and --max-output are exec-sync's");
	_cleanup_close_ int fd = -EBADF;
	struct berth_error *err = NULL;
	if (r == 0 && (r = shim_exec_open(dir, process, a.in, &fd, NULL, &err)) < 0)
		r = cli_fail(err, r);
	if (r == 0 && w)
		r = send_resize(fd, w, h);
	if (r == 0)
		r = relay(fd, a.in);
	free(a.env);
	return r;
}

/* Our whole stdin, for exec-sync -i. */
static int read_stdin(char **ret, size_t *ret_len)
{
	size_t cap = 4096, len = 0;
	_cleanup_free_ char *buf = malloc(cap);
	for (;;) {
		if (!buf)
			return -ENOMEM;
		if (len == cap) {
			char *nbuf = realloc(buf, cap *= 2);
			if (!nbuf)
				return -ENOMEM;
			buf = nbuf;
		}
		ssize_t n = read(0, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

static int print_exec_result(const struct shim_exec_result *res)
{
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return cli_fail(NULL, -ENOMEM);
	bjson_writer_begin_object(w);
	bjson_writer_kv_int(w, "exit_code", res->exit_code);
	bjson_writer_kv_int(w, "signal", res->signal);
	bjson_writer_kv_bool(w, "truncated", res->truncated);
	bjson_writer_kv_string(w, "stdout", res->out);
	bjson_writer_kv_string(w, "stderr", res->errs);
	bjson_writer_end_object(w);
	return print_json(w);
}

static int cmd_exec_sync(int argc, char **argv, int i)
{
	struct exec_args a = { 0 };
	const char *dir;
	_cleanup_free_ char *process = NULL, *in = NULL;
	size_t in_len = 0;
	uint64_t timeout = 0, max = EXEC_SYNC_MAX_OUTPUT;
	int r = exec_parse(argc, argv, i, "exec-sync", &a, &dir, &process);
	if (r == 0 && a.timeout)
		r = parse_number("timeout", a.timeout, INT_MAX, &timeout);
	if (r == 0 && a.max_output)
		r = parse_number("max-output", a.max_output, SIZE_MAX, &max);
	if (r == 0 && (a.tty || a.size))
		r = cli_usage("exec-sync: no terminal (-t, --size)");
	if (r == 0 && a.in && (r = read_stdin(&in, &in_len)) < 0)
		r = cli_fail(NULL, r);
	struct shim_exec_result res = { 0 };
	struct berth_error *err = NULL;
	if (r == 0 &&
	    (r = shim_exec_sync(dir, process, a.in ? (in ? in : "") : NULL, in_len, (size_t)max,
				a.timeout ? (int)timeout : -1, &res, &err)) < 0)
		r = cli_fail(err, r);
	if (r == 0)
		r = print_exec_result(&res);
	shim_exec_result_clear(&res);
	free(a.env);
	return r;
}

static int cmd_attach(int argc, char **argv, int i)
{
	const char *dir;
	bool in = false;
	const struct opt opts[] = { { "interactive", 'i', OPT_FLAG, &in }, { NULL, 0, 0, NULL } };
	int r = parse_exact(argc, argv, i, opts, "attach", &dir, 1, "DIR [-i]");
	if (r)
		return r;
	_cleanup_close_ int fd = -EBADF;
	bool tty = false;
	struct berth_error *err = NULL;
	r = shim_attach_open(dir, in, true, true, &fd, &tty, &err);
	return r < 0 ? cli_fail(err, r) : relay(fd, in);
}

/* ---- cycles ---- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3; /* ".", ".." and the directory's own fd */
}

/* One container's whole life through the client API; its container must exit 0. */
static int cycle(const struct shim_spawn_options *o, struct berth_error **err)
{
	struct shim_status st;
	int r = shim_spawn(o, NULL, &st, err);
	if (r == 0)
		r = shim_start(o->dir, err);
	if (r == 0)
		r = shim_wait(o->dir, 60000, &st, err);
	if (r == 0 && (st.state != SHIM_STATE_STOPPED || st.exit_code != 0))
		r = berth_error_set(err, EIO, "the container ended %s with code %d",
				    shim_state_name(st.state), st.exit_code);
	if (r == 0)
		r = shim_shutdown(o->dir, err);
	if (r == 0)
		r = shim_dir_remove(o->dir, o->runtime_root, o->id, err);
	return r;
}

/* N lives in this one process, a long-lived client like berthd: its own fds are counted
 * before and after. Prints {"cycles":N,"seconds":S,"fds_before":A,"fds_after":B}. */
static int cmd_cycles(int argc, char **argv, int i)
{
	struct shim_spawn_options o = { .shim_path = getenv("BERTH_SHIM") };
	const char *count = NULL, *base = NULL, *prefix = "cycle-";
	const struct opt opts[] = {
		{ "count", 0, OPT_STRING, &count },
		{ "bundle", 'b', OPT_STRING, &o.bundle },
		{ "runtime-root", 0, OPT_STRING, &o.runtime_root },
		{ "dir-base", 0, OPT_STRING, &base },
		{ "id-prefix", 0, OPT_STRING, &prefix },
		{ NULL, 0, 0, NULL },
	};
	uint64_t n = 0;
	int r = parse_exact(
		argc, argv, i, opts, "cycles", NULL, 0,
		"--count N --bundle DIR --runtime-root DIR --dir-base DIR [--id-prefix P]");
	if (r || (r = parse_number("count", count, 1000000, &n)))
		return r;
	if (!base)
		return cli_usage("cycles: --dir-base is required");
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int fds_before = count_fds();
	for (uint64_t k = 0; k < n; k++) {
		char id[256], dir[4096];
		snprintf(id, sizeof(id), "%s%llu", prefix, (unsigned long long)k);
		snprintf(dir, sizeof(dir), "%s/%s", base, id);
		o.id = id;
		o.dir = dir;
		struct berth_error *err = NULL;
		if ((r = cycle(&o, &err)) < 0) {
			berth_error_wrap(&err, "cycle %llu", (unsigned long long)k);
			return cli_fail(err, r);
		}
	}
	int fds_after = count_fds();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("{\"cycles\":%llu,\"seconds\":%.3f,\"fds_before\":%d,\"fds_after\":%d}\n",
	       (unsigned long long)n, secs, fds_before, fds_after);
	return 0;
}

static int usage(void)
{
	return cli_usage("usage: " PROG
			 " spawn|status|start|kill|wait|exec|exec-sync|attach|resize|"
			 "update|reopen-log|shutdown|remove|cycles ...");
}

int main(int argc, char **argv)
{
	cli_init(PROG, 2, NULL);
	if (argc < 2)
		return usage();
	const char *cmd = argv[1];
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv, int i);
	} cmds[] = {
		{ "spawn", cmd_spawn },	  { "status", cmd_status }, { "wait", cmd_wait },
		{ "kill", cmd_kill },	  { "resize", cmd_resize }, { "update", cmd_update },
		{ "remove", cmd_remove }, { "exec", cmd_exec },	    { "exec-sync", cmd_exec_sync },
		{ "attach", cmd_attach }, { "cycles", cmd_cycles },
	};
	for (size_t k = 0; k < ARRAY_SIZE(cmds); k++)
		if (strcmp(cmd, cmds[k].name) == 0)
			return cmds[k].fn(argc, argv, 2);
	if (strcmp(cmd, "start") == 0)
		return cmd_simple(argc, argv, 2, cmd, shim_start);
	if (strcmp(cmd, "reopen-log") == 0)
		return cmd_simple(argc, argv, 2, cmd, shim_reopen_log);
	if (strcmp(cmd, "shutdown") == 0)
		return cmd_simple(argc, argv, 2, cmd, shim_shutdown);
	return usage();
}
