/* The client side of berth-shim (shim.h): starting a shim detached, one-shot requests over its
 * socket, the frame streams of attach and exec, and cleaning up after a shim that is gone.
 *
 * Every request is one connection (shim/protocol.h). Reads and writes on it go through poll()
 * with a deadline and MSG_DONTWAIT, so a shim that hangs costs the caller a timeout, never a
 * blocked thread, and the same code serves the blocking and the non-blocking fds a caller's
 * event loop may hand back. The answer line is read with MSG_PEEK up to its newline only: on
 * attach and exec the frames that follow it belong to the caller. */
#include "shim/shim.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "base/process.h"
#include "runtime/runtime.h"
#include "shim/protocol.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define READY_TIMEOUT_MS (120 * 1000) /* a create under load (image mounts, hooks) is slow */
#define CALL_TIMEOUT_MS	 (30 * 1000)
#define EXIT_TIMEOUT_MS	 (10 * 1000) /* for a shim to leave after shutdown or SIGKILL */
#define LINE_MAX_BYTES	 SHIM_REQUEST_MAX
#define LOG_TAIL_MAX	 512
#define READY_FD	 3 /* the shim's fd for the ready line */

/* ---- time and fd helpers ---- */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A deadline for timeout_ms from now; -1 (for ever) when timeout_ms < 0. */
static int64_t deadline_in(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

static int time_left(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline - now_ms();
	return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

/* 1 once fd has one of events, 0 when the deadline passed, -errno on failure. */
static int fd_wait(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int r = poll(&p, 1, time_left(deadline));
		if (r > 0)
			return 1;
		if (r == 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

static int send_all(int fd, const void *buf, size_t len, int64_t deadline)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -errno;
		int r = fd_wait(fd, POLLOUT, deadline);
		if (r <= 0)
			return r == 0 ? -ETIMEDOUT : r;
	}
	return 0;
}

/* Reads len bytes; returns how many came before the end of the stream, or -errno. */
static ssize_t recv_full(int fd, void *buf, size_t len, int64_t deadline)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = recv(fd, (char *)buf + got, len - got, MSG_DONTWAIT);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0 || errno == ECONNRESET)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		int r = fd_wait(fd, POLLIN, deadline);
		if (r <= 0)
			return r == 0 ? -ETIMEDOUT : r;
	}
	return (ssize_t)got;
}

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

static int pidfd_open_pid(pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	return fd < 0 ? -errno : fd;
}

/* ---- lines and answers ---- */

/* One '\n'-terminated line (returned without it). On a socket (peek) nothing after the newline
 * is consumed; a pipe is read in chunks. -EPIPE when the stream ended before the newline,
 * -EMSGSIZE past LINE_MAX_BYTES, -ETIMEDOUT after the deadline. */
static int line_read(int fd, bool peek, int64_t deadline, char **ret)
{
	_cleanup_free_ char *buf = malloc(LINE_MAX_BYTES + 1);
	if (!buf)
		return -ENOMEM;
	size_t len = 0;
	for (;;) {
		if (len >= LINE_MAX_BYTES)
			return -EMSGSIZE;
		/* first poll: a blocking pipe's read must not outlast the deadline */
		int r = fd_wait(fd, POLLIN, deadline);
		if (r <= 0)
			return r == 0 ? -ETIMEDOUT : r;
		size_t room = LINE_MAX_BYTES - len;
		ssize_t n = peek ? recv(fd, buf + len, room, MSG_PEEK | MSG_DONTWAIT)
				 : read(fd, buf + len, room);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return -EPIPE;
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		char *nl = memchr(buf + len, '\n', (size_t)n);
		size_t take = nl ? (size_t)(nl - (buf + len)) + 1 : (size_t)n;
		/* the peeked bytes are queued: this read takes exactly them */
		if (peek && recv(fd, buf + len, take, MSG_DONTWAIT) != (ssize_t)take)
			return -EIO;
		len += take;
		if (nl) {
			buf[len - 1] = '\0';
			*ret = TAKE_PTR(buf);
			return 0;
		}
	}
}

/* An answer line: {"ok":true,...} is returned as a tree, {"ok":false,...} as the shim's error. */
static int answer_parse(const char *line, const char *who, struct json **ret,
			struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *j = NULL;
	if (bjson_parse(line, &j, err) < 0)
		return berth_error_wrap(err, "answer of the shim of %s", who);
	const struct json *ok = bjson_object_get(j, "ok");
	if (bjson_type_of(ok) != JSON_BOOL)
		return berth_error_set(err, EPROTO, "shim of %s: answer without \"ok\": %s", who,
				       line);
	if (!bjson_bool(ok)) {
		int64_t code = 0;
		const char *msg = bjson_string(bjson_object_get(j, "error"));
		if (!bjson_int64(bjson_object_get(j, "errno"), &code) || code <= 0 || code > 4095)
			code = EIO;
		return berth_error_set(err, (int)code, "%s",
				       msg ? msg : "the shim reported an error without a message");
	}
	*ret = TAKE_PTR(j);
	return 0;
}

static int answer_read(int fd, const char *who, int64_t deadline, struct json **ret,
		       struct berth_error **err)
{
	_cleanup_free_ char *line = NULL;
	int r = line_read(fd, true, deadline, &line);
	if (r == -ETIMEDOUT)
		return berth_error_set(err, ETIMEDOUT, "shim of %s did not answer in time", who);
	if (r == -EPIPE)
		return berth_error_set(err, ENOTCONN,
				       "shim of %s closed the connection without answering", who);
	if (r == -EMSGSIZE)
		return berth_error_set(err, EPROTO, "shim of %s: answer longer than %d bytes", who,
				       LINE_MAX_BYTES);
	if (r < 0)
		return berth_error_setsys(err, -r, "read the answer of the shim of %s", who);
	return answer_parse(line, who, ret, err);
}

/* ---- status ---- */

static const char *const state_names[] = {
	[SHIM_STATE_CREATED] = "created",
	[SHIM_STATE_RUNNING] = "running",
	[SHIM_STATE_STOPPED] = "stopped",
};

const char *shim_state_name(enum shim_state s)
{
	return (unsigned)s < ARRAY_SIZE(state_names) ? state_names[s] : "unknown";
}

/* An integer field that may be absent (then *v is left alone); present, it must fit. */
static int int_field(const struct json *j, const char *key, int64_t max, int64_t *v,
		     const char *what, struct berth_error **err)
{
	const struct json *f = bjson_object_get(j, key);
	if (bjson_type_of(f) == JSON_ABSENT)
		return 0;
	if (!bjson_int64(f, v) || *v < 0 || *v > max)
		return berth_error_set(err, EPROTO, "%s: \"%s\" is not an integer in [0, %lld]",
				       what, key, (long long)max);
	return 1;
}

static int state_field(const struct json *j, const char *what, enum shim_state *ret,
		       struct berth_error **err)
{
	const char *s = bjson_string(bjson_object_get(j, "state"));
	for (size_t i = 0; s && i < ARRAY_SIZE(state_names); i++)
		if (strcmp(s, state_names[i]) == 0) {
			*ret = (enum shim_state)i;
			return 0;
		}
	return berth_error_set(err, EPROTO,
			       "%s: \"state\" is %s%s%s, not created, running or stopped", what,
			       s ? "\"" : "", s ? s : "missing", s ? "\"" : "");
}

/* SHIM_STATUS_FIELDS of a status or wait answer, the ready line, the exit record or an exit
 * frame. need: "state" (status answers) or "exit_code" (exit records and frames) must be there;
 * every other field is optional but checked when present. */
enum status_need { NEED_STATE, NEED_EXIT_CODE };

static int status_parse(const struct json *j, enum status_need need, const char *what,
			struct shim_status *ret, struct berth_error **err)
{
	struct shim_status st = { .state = SHIM_STATE_STOPPED };
	if (bjson_type_of(j) != JSON_OBJECT)
		return berth_error_set(err, EPROTO, "%s: not a JSON object", what);
	if ((need == NEED_STATE || bjson_object_get(j, "state")) &&
	    state_field(j, what, &st.state, err) < 0)
		return -EPROTO;
	int64_t pid = 0, code = -1, sig = 0;
	int r = 0;
	if (r >= 0)
		r = int_field(j, "pid", INT_MAX, &pid, what, err);
	if (r >= 0)
		r = int_field(j, "created", INT64_MAX, &st.created_ns, what, err);
	if (r >= 0)
		r = int_field(j, "started", INT64_MAX, &st.started_ns, what, err);
	if (r >= 0)
		r = int_field(j, "finished", INT64_MAX, &st.finished_ns, what, err);
	if (r >= 0)
		r = int_field(j, "exit_code", 255, &code, what, err);
	if (r == 0 && need == NEED_EXIT_CODE)
		r = berth_error_set(err, EPROTO, "%s: no \"exit_code\"", what);
	if (r >= 0)
		r = int_field(j, "signal", 64, &sig, what, err);
	if (r < 0)
		return r;
	const struct json *oom = bjson_object_get(j, "oom_killed");
	if (oom && bjson_type_of(oom) != JSON_BOOL)
		return berth_error_set(err, EPROTO, "%s: \"oom_killed\" is not a boolean", what);
	st.pid = (pid_t)pid;
	st.exit_code = code < 0 ? 0 : (int)code;
	st.signal = (int)sig;
	st.oom_killed = oom && bjson_bool(oom);
	*ret = st;
	return 0;
}

int shim_exit_frame_parse(const char *buf, size_t len, struct shim_status *ret,
			  struct berth_error **err)
{
	_cleanup_free_ char *text = strndup(buf ? buf : "", buf ? len : 0);
	if (!text)
		return berth_error_set(err, ENOMEM, "exit frame: out of memory");
	if (strlen(text) != len)
		return berth_error_set(err, EPROTO, "exit frame: a NUL byte in the payload");
	_cleanup_(bjson_freep) struct json *j = NULL;
	if (bjson_parse(text, &j, err) < 0)
		return berth_error_wrap(err, "exit frame");
	return status_parse(j, NEED_EXIT_CODE, "exit frame", ret, err);
}

int shim_exit_read(const char *dir, struct shim_status *ret, struct berth_error **err)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	if (asprintf(&path, "%s/%s", dir, SHIM_EXIT_FILE) < 0)
		return berth_error_set(err, ENOMEM, "out of memory");
	_cleanup_error_ struct berth_error *e = NULL;
	int r = read_file_at(AT_FDCWD, path, &text, NULL, &e);
	if (r == -ENOENT)
		return berth_error_set(err, ENOENT, "no exit record in %s", dir);
	if (r < 0)
		return berth_error_move(err, &e);
	_cleanup_(bjson_freep) struct json *j = NULL;
	if (bjson_parse(text, &j, err) < 0)
		return berth_error_wrap(err, "%s", path);
	return status_parse(j, NEED_EXIT_CODE, path, ret, err);
}

/* ---- requests ---- */

/* connect() to DIR/shim.sock. A path too long for sun_path is reached through the directory's
 * fd. The connect itself is bounded by SO_SNDTIMEO (a shim whose backlog is full). */
static int shim_connect(const char *dir, int *ret_fd, struct berth_error **err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int dfd = -EBADF;
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, SHIM_SOCKET);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 && (errno == ENOENT || errno == ENOTDIR))
			return berth_error_set(err, ENOTCONN, "shim of %s is gone", dir);
		if (dfd < 0)
			return berth_error_setsys(err, errno, "open %s", dir);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dfd, SHIM_SOCKET);
	}
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berth_error_setsys(err, errno, "socket");
	struct timeval tv = { .tv_sec = CALL_TIMEOUT_MS / 1000 }, zero = { 0 };
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int r;
	do
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	while (r < 0 && errno == EINTR);
	if (r < 0 && (errno == ENOENT || errno == ECONNREFUSED || errno == ENOTDIR))
		return berth_error_set(err, ENOTCONN, "shim of %s is gone", dir);
	if (r < 0 && errno == EAGAIN)
		return berth_error_set(err, ETIMEDOUT, "shim of %s accepts no connection", dir);
	if (r < 0)
		return berth_error_setsys(err, errno, "connect to %s/%s", dir, SHIM_SOCKET);
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof(zero));
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* A request object with its "op"; NULL when out of memory (request_send reports that). */
static struct json_writer *request_new(const char *op)
{
	struct json_writer *w = bjson_writer_new(false);
	if (w) {
		bjson_writer_begin_object(w);
		bjson_writer_kv_string(w, "op", op);
	}
	return w;
}

/* Ends and sends the request (freeing w) on a new connection, returned in *ret_fd. */
static int request_send(const char *dir, struct json_writer *w, int *ret_fd,
			struct berth_error **err)
{
	if (w)
		bjson_writer_end_object(w);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = bjson_writer_finish(w, &text, &len);
	if (r < 0)
		return berth_error_set(err, -r, "request to the shim of %s: cannot encode it", dir);
	if (len >= SHIM_REQUEST_MAX)
		return berth_error_set(err, E2BIG,
				       "request to the shim of %s: %zu bytes, more than %d", dir,
				       len, SHIM_REQUEST_MAX);
	text[len] = '\n'; /* the writer's NUL becomes the line's end */
	_cleanup_close_ int fd = -EBADF;
	if ((r = shim_connect(dir, &fd, err)) < 0)
		return r;
	r = send_all(fd, text, len + 1, deadline_in(CALL_TIMEOUT_MS));
	if (r == -EPIPE || r == -ECONNRESET)
		return berth_error_set(err, ENOTCONN, "shim of %s is gone", dir);
	if (r < 0)
		return berth_error_setsys(err, -r, "send a request to the shim of %s", dir);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* One request and its answer (the tree in *ret when ret is not NULL). */
static int call(const char *dir, struct json_writer *w, int timeout_ms, struct json **ret,
		struct berth_error **err)
{
	_cleanup_close_ int fd = -EBADF;
	int r = request_send(dir, w, &fd, err);
	if (r < 0)
		return r;
	_cleanup_(bjson_freep) struct json *j = NULL;
	if ((r = answer_read(fd, dir, deadline_in(timeout_ms), &j, err)) < 0)
		return r;
	if (ret)
		*ret = TAKE_PTR(j);
	return 0;
}

static int call_op(const char *dir, const char *op, struct berth_error **err)
{
	return call(dir, request_new(op), CALL_TIMEOUT_MS, NULL, err);
}

/* A gone shim's last word: its exit record, or -ESRCH without one. */
static int status_of_gone(const char *dir, struct shim_status *ret, struct berth_error **err)
{
	_cleanup_error_ struct berth_error *e = NULL;
	int r = shim_exit_read(dir, ret, &e);
	if (r == -ENOENT)
		return berth_error_set(err, ESRCH, "shim of %s is gone and left no exit record",
				       dir);
	return r < 0 ? berth_error_move(err, &e) : 0;
}

/* The status answer of op ("status" or "wait"); a gone shim falls back to its exit record. */
static int status_call(const char *dir, const char *op, int timeout_ms, struct shim_status *ret,
		       struct berth_error **err)
{
	_cleanup_error_ struct berth_error *e = NULL;
	_cleanup_(bjson_freep) struct json *j = NULL;
	int r = call(dir, request_new(op), timeout_ms, &j, &e);
	if (r == -ENOTCONN)
		return status_of_gone(dir, ret, err);
	if (r == -ETIMEDOUT && strcmp(op, "wait") == 0)
		return berth_error_set(err, ETIMEDOUT, "container of %s has not exited after %d ms",
				       dir, timeout_ms);
	if (r < 0)
		return berth_error_move(err, &e);
	return status_parse(j, NEED_STATE, dir, ret, err);
}

int shim_status(const char *dir, struct shim_status *ret, struct berth_error **err)
{
	return status_call(dir, "status", CALL_TIMEOUT_MS, ret, err);
}

int shim_wait(const char *dir, int timeout_ms, struct shim_status *ret, struct berth_error **err)
{
	return status_call(dir, "wait", timeout_ms, ret, err);
}

int shim_wait_open(const char *dir, int *ret_fd, struct berth_error **err)
{
	return request_send(dir, request_new("wait"), ret_fd, err);
}

int shim_wait_finish(int fd, struct shim_status *ret, struct berth_error **err)
{
	_cleanup_close_ int owned = fd;
	_cleanup_(bjson_freep) struct json *j = NULL;
	int r = answer_read(owned, "(wait)", deadline_in(CALL_TIMEOUT_MS), &j, err);
	return r < 0 ? r : status_parse(j, NEED_STATE, "wait answer", ret, err);
}

int shim_start(const char *dir, struct berth_error **err)
{
	return call_op(dir, "start", err);
}

int shim_reopen_log(const char *dir, struct berth_error **err)
{
	return call_op(dir, "reopen-log", err);
}

int shim_kill(const char *dir, int sig, bool all, struct berth_error **err)
{
	struct json_writer *w = request_new("kill");
	if (w) {
		bjson_writer_kv_int(w, "signal", sig);
		bjson_writer_kv_bool(w, "all", all);
	}
	return call(dir, w, CALL_TIMEOUT_MS, NULL, err);
}

int shim_resize(const char *dir, unsigned width, unsigned height, struct berth_error **err)
{
	if (width == 0 || height == 0 || width > USHRT_MAX || height > USHRT_MAX)
		return berth_error_set(err, EINVAL, "resize %ux%u: sizes are 1-%u", width, height,
				       USHRT_MAX);
	struct json_writer *w = request_new("resize");
	if (w) {
		bjson_writer_kv_int(w, "width", width);
		bjson_writer_kv_int(w, "height", height);
	}
	return call(dir, w, CALL_TIMEOUT_MS, NULL, err);
}

/* Parses text that must be a JSON object (what: its name in errors). */
static int object_parse(const char *text, const char *what, struct json **ret,
			struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *j = NULL;
	if (!text)
		return berth_error_set(err, EINVAL, "%s: missing", what);
	if (bjson_parse(text, &j, err) < 0)
		return berth_error_wrap(err, "%s", what);
	if (bjson_type_of(j) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, "%s: a %s, not an object", what,
				       bjson_type_name(bjson_type_of(j)));
	*ret = TAKE_PTR(j);
	return 0;
}

/* A request carrying the caller's JSON object text under key. */
static int request_with_object(const char *op, const char *key, const char *text,
			       struct json_writer **ret, struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *obj = NULL;
	int r = object_parse(text, key, &obj, err);
	if (r < 0)
		return r;
	struct json_writer *w = request_new(op);
	if (w) {
		bjson_writer_key(w, key);
		bjson_writer_value(w, obj);
	}
	*ret = w;
	return 0;
}

int shim_update(const char *dir, const char *resources_json, struct berth_error **err)
{
	struct json_writer *w = NULL;
	int r = request_with_object("update", "resources", resources_json, &w, err);
	return r < 0 ? r : call(dir, w, CALL_TIMEOUT_MS, NULL, err);
}

/* ---- spawn ---- */

/* mkdir -p path, each new component with mode. */
static int mkdir_parents(const char *path, mode_t mode, struct berth_error **err)
{
	_cleanup_free_ char *p = strdup(path);
	if (!p)
		return berth_error_set(err, ENOMEM, "out of memory");
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return berth_error_setsys(err, errno, "create %s", p);
		if (c == '\0')
			break;
		*s = c;
	}
	struct stat st;
	if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
		return berth_error_set(err, ENOTDIR, "%s is not a directory", p);
	return 0;
}

/* path made absolute against the cwd (the shim runs in /); not resolved. */
static int path_absolute(const char *path, char **ret)
{
	if (path[0] == '/')
		return (*ret = strdup(path)) ? 0 : -ENOMEM;
	_cleanup_free_ char *cwd = getcwd(NULL, 0);
	if (!cwd)
		return -errno;
	return asprintf(ret, "%s/%s", cwd, path) < 0 ? -ENOMEM : 0;
}

/* The shim directory as an absolute path with its parent resolved: the spelling shim_spawn
 * passes as --dir and shim_dir_remove looks for. -ENOENT when the parent does not exist. */
static int dir_canonical(const char *dir, char **ret)
{
	_cleanup_free_ char *copy = strdup(dir);
	if (!copy)
		return -ENOMEM;
	size_t len = strlen(copy);
	while (len > 1 && copy[len - 1] == '/')
		copy[--len] = '\0';
	char *slash = strrchr(copy, '/');
	const char *base = slash ? slash + 1 : copy, *parent = slash ? copy : ".";
	if (slash == copy)
		parent = "/";
	if (slash)
		*slash = '\0';
	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return -EINVAL;
	_cleanup_free_ char *real = realpath(parent, NULL);
	if (!real)
		return -errno;
	return asprintf(ret, "%s%s%s", real, strcmp(real, "/") == 0 ? "" : "/", base) < 0 ? -ENOMEM
											  : 0;
}

struct argv_builder {
	char *v[40];
	size_t n;
	bool failed;
};

static void argv_free(struct argv_builder *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
}

__attribute__((format(printf, 2, 3))) static void argv_add(struct argv_builder *a, const char *fmt,
							   ...)
{
	if (a->n + 1 >= ARRAY_SIZE(a->v)) {
		a->failed = true;
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&a->v[a->n], fmt, ap) < 0)
		a->failed = true;
	else
		a->n++;
	va_end(ap);
}

static void argv_opt(struct argv_builder *a, const char *name, const char *value)
{
	if (!value)
		return;
	argv_add(a, "--%s", name);
	argv_add(a, "%s", value);
}

/* berth-shim's command line; paths absolute, since the shim runs in /. */
static int shim_argv(const struct shim_spawn_options *o, const char *dir, struct argv_builder *a)
{
	_cleanup_free_ char *bundle = NULL, *root = NULL, *log = NULL, *exe = NULL;
	int r = path_absolute(o->bundle, &bundle);
	if (r == 0)
		r = path_absolute(o->runtime_root, &root);
	if (r == 0 && o->log_path)
		r = path_absolute(o->log_path, &log);
	if (r == 0)
		r = path_absolute(o->shim_path ? o->shim_path : SHIM_DEFAULT_PATH, &exe);
	if (r < 0)
		return r;
	argv_add(a, "%s", exe);
	argv_opt(a, "dir", dir);
	argv_opt(a, "id", o->id);
	argv_opt(a, "bundle", bundle);
	argv_opt(a, "runtime-root", root);
	argv_opt(a, "log", log);
	char num[32];
	snprintf(num, sizeof(num), "%llu", (unsigned long long)o->log_max_size);
	argv_opt(a, "log-max-size", o->log_max_size ? num : NULL);
	snprintf(num, sizeof(num), "%u", o->log_max_files);
	argv_opt(a, "log-max-files", o->log_max_files ? num : NULL);
	snprintf(num, sizeof(num), "%zu", o->log_line_max);
	argv_opt(a, "log-line-max", o->log_line_max ? num : NULL);
	if (o->stdin_open)
		argv_add(a, "--stdin");
	if (o->stdin_once)
		argv_add(a, "--stdin-once");
	if (o->systemd_cgroup)
		argv_add(a, "--systemd-cgroup");
	argv_opt(a, "log-level", o->log_level);
	snprintf(num, sizeof(num), "%d", READY_FD);
	argv_opt(a, "ready-fd", num);
	return a->failed ? -ENOMEM : 0;
}

/* The grandchild: only async-signal-safe calls from here (the caller may have threads). Its
 * stdio is /dev/null, the ready pipe is fd 3, the exec-error pipe fd 4 (close-on-exec: its EOF
 * says the exec worked); everything else is closed. */
static _Noreturn void shim_exec_child(char *const *argv, int ready_fd, int err_fd, int null_fd)
{
	/* copies above the targets first, so that no dup2 below overwrites a source */
	int ready = fcntl(ready_fd, F_DUPFD, 10), nul = fcntl(null_fd, F_DUPFD, 10);
	int errp = fcntl(err_fd, F_DUPFD_CLOEXEC, 10);
	int e = 0, report = err_fd;
	if (ready < 0 || nul < 0 || errp < 0 || dup3(errp, 4, O_CLOEXEC) < 0)
		e = errno;
	else
		report = 4;
	if (e == 0 && (dup2(nul, 0) < 0 || dup2(nul, 1) < 0 || dup2(nul, 2) < 0 ||
		       dup2(ready, READY_FD) < 0 || syscall(SYS_close_range, 5U, ~0U, 0U) < 0))
		e = errno;
	/* a daemon's blocked or ignored signals must not become the shim's */
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	for (int sig = 1; e == 0 && sig < _NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &dfl, NULL);
	sigset_t none;
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	if (e == 0 && chdir("/") < 0)
		e = errno;
	if (e == 0) {
		execv(argv[0], argv);
		e = errno;
	}
	(void)!write(report, &e, sizeof(e));
	_exit(127);
}

/* The intermediate child: a session of its own, the shim forked into it, its pid reported on
 * pid_fd, gone at once (so init, not the caller, becomes the shim's parent). */
static _Noreturn void shim_fork_child(char *const *argv, int ready_fd, int pid_fd, int null_fd)
{
	int pidfd = -1;
	(void)setsid();
	pid_t pid = process_clone(0, -1, &pidfd);
	if (pid == 0)
		shim_exec_child(argv, ready_fd, pid_fd, null_fd);
	int32_t v = pid;
	(void)!write(pid_fd, &v, sizeof(v));
	_exit(pid < 0 ? 1 : 0);
}

struct spawn_pipes {
	int ready[2];
	int pid[2];
	int null_fd;
};

static void spawn_pipes_close(struct spawn_pipes *p)
{
	int *fds[] = { &p->ready[0], &p->ready[1], &p->pid[0], &p->pid[1], &p->null_fd };
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		closep(fds[i]);
}

static void close_at(int *fd)
{
	closep(fd);
	*fd = -EBADF;
}

static ssize_t read_retry(int fd, void *buf, size_t len)
{
	ssize_t n;
	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n;
}

/* Forks the shim (through the intermediate) and returns a pidfd for it once it exec'd. */
static int shim_fork(char *const *argv, struct spawn_pipes *p, pid_t *ret_pid, int *ret_pidfd,
		     struct berth_error **err)
{
	int mid_pidfd = -EBADF;
	pid_t mid = process_clone(0, -1, &mid_pidfd);
	if (mid == 0)
		shim_fork_child(argv, p->ready[1], p->pid[1], p->null_fd);
	close_at(&p->ready[1]);
	close_at(&p->pid[1]);
	if (mid < 0)
		return berth_error_setsys(err, -mid, "fork for berth-shim");
	(void)process_wait(mid_pidfd, -1);
	close(mid_pidfd);
	int32_t pid = 0, exec_errno = 0;
	if (read_retry(p->pid[0], &pid, sizeof(pid)) != sizeof(pid))
		return berth_error_set(err, EIO, "start berth-shim: the intermediate process died");
	if (pid < 0)
		return berth_error_setsys(err, -pid, "fork berth-shim");
	/* at once: a shim that died before this and whose pid was already reused is the one case
	 * this cannot tell (the dir and id checks of shim_dir_remove do not apply here) */
	int pidfd = pidfd_open_pid(pid);
	if (read_retry(p->pid[0], &exec_errno, sizeof(exec_errno)) == sizeof(exec_errno)) {
		closep(&pidfd);
		return berth_error_setsys(err, exec_errno, "execute %s", argv[0]);
	}
	if (pidfd < 0)
		return berth_error_setsys(err, -pidfd, "pidfd_open berth-shim %d", pid);
	*ret_pid = pid;
	*ret_pidfd = pidfd;
	return 0;
}

/* The last non-empty line of DIR/shim.log (at most LOG_TAIL_MAX bytes), or NULL. */
static char *shim_log_tail(const char *dir)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	size_t len = 0;
	if (asprintf(&path, "%s/shim.log", dir) < 0 ||
	    read_file_at(AT_FDCWD, path, &text, &len, NULL) < 0)
		return NULL;
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
		text[--len] = '\0';
	char *line = memrchr(text, '\n', len);
	line = line ? line + 1 : text;
	return *line ? strndup(line, LOG_TAIL_MAX) : NULL;
}

/* The shim died before its ready line (or hung and was killed): leave nothing behind. */
static int spawn_failed(const struct shim_spawn_options *o, const char *dir, int pidfd, int cause,
			struct berth_error **err)
{
	_cleanup_free_ char *tail = shim_log_tail(dir);
	if (cause == ETIMEDOUT)
		(void)process_signal(pidfd, SIGKILL);
	(void)fd_wait(pidfd, POLLIN, deadline_in(EXIT_TIMEOUT_MS));
	_cleanup_error_ struct berth_error *e = NULL;
	if (shim_dir_remove(dir, o->runtime_root, o->id, &e) < 0)
		return berth_error_move(err, &e);
	char what[64];
	if (cause == ETIMEDOUT)
		snprintf(what, sizeof(what), "was not ready after %d s and was killed",
			 READY_TIMEOUT_MS / 1000);
	else
		snprintf(what, sizeof(what), "exited before it was ready");
	if (tail)
		return berth_error_set(err, cause, "berth-shim %s; its log said: %s", what, tail);
	return berth_error_set(err, cause, "berth-shim %s (no shim.log was written)", what);
}

/* Reads and judges the ready line; on failure nothing is left (the shim's own cleanup, or
 * spawn_failed's). */
static int spawn_ready(const struct shim_spawn_options *o, const char *dir, int ready_fd, int pidfd,
		       pid_t *ret_shim_pid, struct shim_status *ret, struct berth_error **err)
{
	_cleanup_free_ char *line = NULL;
	int r = line_read(ready_fd, false, deadline_in(READY_TIMEOUT_MS), &line);
	if (r == -ETIMEDOUT || r == -EPIPE)
		return spawn_failed(o, dir, pidfd, r == -ETIMEDOUT ? ETIMEDOUT : EIO, err);
	if (r < 0)
		return berth_error_setsys(err, -r, "read berth-shim's ready line");
	_cleanup_(bjson_freep) struct json *j = NULL;
	if ((r = answer_parse(line, dir, &j, err)) < 0) {
		/* the shim said why and cleaned up after itself; let it finish leaving */
		(void)fd_wait(pidfd, POLLIN, deadline_in(EXIT_TIMEOUT_MS));
		return r;
	}
	int64_t shim_pid = 0;
	struct shim_status st;
	if (!bjson_int64(bjson_object_get(j, "shim_pid"), &shim_pid) || shim_pid <= 0 ||
	    shim_pid > INT_MAX)
		return berth_error_set(err, EPROTO, "berth-shim's ready line has no \"shim_pid\"");
	if ((r = status_parse(j, NEED_STATE, "berth-shim's ready line", &st, err)) < 0)
		return r;
	if (ret_shim_pid)
		*ret_shim_pid = (pid_t)shim_pid;
	if (ret)
		*ret = st;
	return 0;
}

static int spawn_check(const struct shim_spawn_options *o, struct berth_error **err)
{
	if (!o->dir || !*o->dir)
		return berth_error_set(err, EINVAL, "shim: no directory given");
	if (!o->id || !*o->id)
		return berth_error_set(err, EINVAL, "shim: no container id given");
	if (!o->bundle || !*o->bundle)
		return berth_error_set(err, EINVAL, "shim: no bundle given");
	if (!o->runtime_root || !*o->runtime_root)
		return berth_error_set(err, EINVAL, "shim: no runtime root given");
	/* the shim refuses these too, but only on its stderr, which is /dev/null */
	if (o->stdin_once && !o->stdin_open)
		return berth_error_set(err, EINVAL, "shim: stdin_once needs stdin_open");
	if (o->log_max_size && o->log_max_files < 2)
		return berth_error_set(err, EINVAL,
				       "shim: log rotation (log_max_size %llu) keeps at least "
				       "2 files, not log_max_files %u",
				       (unsigned long long)o->log_max_size, o->log_max_files);
	return 0;
}

/* The parent of the shim's directory exists (0700 where made); the directory does not. */
static int spawn_dir(const char *dir, char **ret, struct berth_error **err)
{
	_cleanup_free_ char *parent = strdup(dir);
	if (!parent)
		return berth_error_set(err, ENOMEM, "out of memory");
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = '\0';
		int r = mkdir_parents(parent, 0700, err);
		if (r < 0)
			return r;
	}
	int r = dir_canonical(dir, ret);
	if (r < 0)
		return berth_error_setsys(err, -r, "shim directory %s", dir);
	struct stat st;
	if (lstat(*ret, &st) == 0) {
		free(TAKE_PTR(*ret));
		return berth_error_set(err, EEXIST, "shim directory %s already exists", dir);
	}
	return 0;
}

int shim_spawn(const struct shim_spawn_options *o, pid_t *ret_shim_pid, struct shim_status *ret,
	       struct berth_error **err)
{
	_cleanup_free_ char *dir = NULL;
	int r = spawn_check(o, err);
	if (r < 0 || (r = spawn_dir(o->dir, &dir, err)) < 0)
		return r;
	struct argv_builder args = { 0 };
	r = shim_argv(o, dir, &args);
	if (r < 0) {
		argv_free(&args);
		return berth_error_setsys(err, -r, "berth-shim's arguments");
	}
	struct spawn_pipes p = { { -EBADF, -EBADF }, { -EBADF, -EBADF }, -EBADF };
	p.null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (p.null_fd < 0 || pipe2(p.ready, O_CLOEXEC) < 0 || pipe2(p.pid, O_CLOEXEC) < 0)
		r = berth_error_setsys(err, errno, "start berth-shim");
	pid_t pid = 0;
	_cleanup_close_ int pidfd = -EBADF;
	if (r == 0)
		r = shim_fork(args.v, &p, &pid, &pidfd, err);
	argv_free(&args);
	if (r == 0)
		r = spawn_ready(o, dir, p.ready[0], pidfd, ret_shim_pid, ret, err);
	spawn_pipes_close(&p);
	return r;
}

/* ---- shutdown and removal ---- */

/* The pid in DIR/shim.pid: 0 when there is no such file. */
static int shim_pid_read(const char *dir, pid_t *ret, struct berth_error **err)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	if (asprintf(&path, "%s/%s", dir, SHIM_PID_FILE) < 0)
		return berth_error_set(err, ENOMEM, "out of memory");
	_cleanup_error_ struct berth_error *e = NULL;
	int r = read_file_at(AT_FDCWD, path, &text, NULL, &e);
	if (r == -ENOENT) {
		*ret = 0;
		return 0;
	}
	if (r < 0)
		return berth_error_move(err, &e);
	char *end;
	errno = 0;
	long v = strtol(text, &end, 10);
	while (*end == '\n' || *end == ' ')
		end++;
	if (errno || *end || end == text || v <= 0 || v > INT_MAX)
		return berth_error_set(err, EINVAL, "%s: not a pid: \"%.32s\"", path, text);
	*ret = (pid_t)v;
	return 0;
}

int shim_shutdown(const char *dir, struct berth_error **err)
{
	pid_t pid;
	int r = shim_pid_read(dir, &pid, err);
	if (r < 0)
		return r;
	if (pid == 0)
		return berth_error_set(err, ENOTCONN, "shim of %s is gone (no %s)", dir,
				       SHIM_PID_FILE);
	/* the pidfd first: the shim is followed to its end, not whatever takes its pid later */
	_cleanup_close_ int pidfd = pidfd_open_pid(pid);
	if (pidfd == -ESRCH)
		return berth_error_set(err, ENOTCONN, "shim of %s is gone (pid %d)", dir, pid);
	if (pidfd < 0)
		return berth_error_setsys(err, -pidfd, "pidfd_open shim %d", pid);
	if ((r = call_op(dir, "shutdown", err)) < 0)
		return r;
	r = fd_wait(pidfd, POLLIN, deadline_in(EXIT_TIMEOUT_MS));
	if (r == 0)
		return berth_error_set(err, ETIMEDOUT,
				       "shim %d of %s did not exit within %d s of shutdown", pid,
				       dir, EXIT_TIMEOUT_MS / 1000);
	return r < 0 ? berth_error_setsys(err, -r, "wait for shim %d", pid) : 0;
}

/* Whether pid's command line is a shim's for this directory and container:
 * "... --dir DIR --id ID ..." exactly as shim_spawn wrote it. */
static bool is_shim_of(pid_t pid, const char *dir, const char *id)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if (read_file_at(AT_FDCWD, path, &text, &len, NULL) < 0)
		return false;
	bool dir_ok = false, id_ok = false;
	for (size_t i = 0; i < len;) {
		const char *arg = text + i;
		size_t n = strlen(arg);
		const char *next = i + n + 1 < len ? arg + n + 1 : NULL;
		if (next && strcmp(arg, "--dir") == 0)
			dir_ok = dir_ok || strcmp(next, dir) == 0;
		if (next && strcmp(arg, "--id") == 0)
			id_ok = id_ok || strcmp(next, id) == 0;
		i += n + 1;
	}
	return dir_ok && id_ok;
}

/* A pidfd for pid if it is (still) the shim of dir; -ESRCH otherwise. Checking the command line
 * after pidfd_open, then that the pidfd's process lives, proves they were the same process. */
static int shim_pidfd_of(pid_t pid, const char *dir, const char *id)
{
	_cleanup_close_ int pidfd = pidfd_open_pid(pid);
	if (pidfd < 0)
		return pidfd;
	if (!is_shim_of(pid, dir, id) || process_signal(pidfd, 0) < 0)
		return -ESRCH;
	return TAKE_FD(pidfd);
}

/* Without a pid file (a shim killed before it wrote one, or shutting down): look for it. */
static int shim_find(const char *dir, const char *id)
{
	_cleanup_(closedirp) DIR *d = opendir("/proc");
	if (!d)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid == getpid())
			continue;
		int pidfd = shim_pidfd_of((pid_t)pid, dir, id);
		if (pidfd >= 0)
			return pidfd;
	}
	return -ESRCH;
}

/* Kills the shim of dir if one still runs, and waits until it is gone. */
static int shim_kill_stale(const char *dir, const char *id, struct berth_error **err)
{
	pid_t pid;
	int r = shim_pid_read(dir, &pid, err);
	if (r < 0)
		return r;
	_cleanup_close_ int pidfd = pid ? shim_pidfd_of(pid, dir, id) : shim_find(dir, id);
	if (pidfd < 0)
		return 0;
	(void)process_signal(pidfd, SIGKILL);
	r = fd_wait(pidfd, POLLIN, deadline_in(EXIT_TIMEOUT_MS));
	if (r == 0)
		return berth_error_set(err, ETIMEDOUT, "shim of %s survived SIGKILL for %d s", dir,
				       EXIT_TIMEOUT_MS / 1000);
	return r < 0 ? berth_error_setsys(err, -r, "wait for the shim of %s", dir) : 0;
}

int shim_dir_remove(const char *dir, const char *runtime_root, const char *id,
		    struct berth_error **err)
{
	if (!dir || !*dir || !runtime_root || !id)
		return berth_error_set(err, EINVAL,
				       "shim removal: directory, runtime root and id are required");
	_cleanup_free_ char *canon = NULL;
	int r = dir_canonical(dir, &canon);
	struct stat st;
	if (r == 0 && lstat(canon, &st) == 0 && (r = shim_kill_stale(canon, id, err)) < 0)
		return r;
	_cleanup_error_ struct berth_error *e = NULL;
	r = runtime_container_delete(runtime_root, id, true, &e);
	if (r < 0 && r != -ENOENT) {
		berth_error_move(err, &e);
		return berth_error_wrap(err, "remove the container of %s", dir);
	}
	r = remove_tree_at(AT_FDCWD, canon ? canon : dir);
	return r < 0 ? berth_error_setsys(err, -r, "remove %s", dir) : 0;
}

/* ---- frames ---- */

void shim_frame_header(unsigned char *h, int stream, size_t len)
{
	h[0] = (unsigned char)stream;
	h[1] = (unsigned char)(len >> 24);
	h[2] = (unsigned char)(len >> 16);
	h[3] = (unsigned char)(len >> 8);
	h[4] = (unsigned char)len;
}

static bool is_data_stream(int stream)
{
	return stream == SHIM_STREAM_STDIN || stream == SHIM_STREAM_STDOUT ||
	       stream == SHIM_STREAM_STDERR;
}

int shim_frame_write(int fd, int stream, const void *buf, size_t len, struct berth_error **err)
{
	if (stream < 0 || stream > 255)
		return berth_error_set(err, EINVAL, "frame: stream %d is not 0-255", stream);
	/* data is split into frames the shim accepts; a control frame must fit in one */
	if (len > SHIM_FRAME_MAX && !is_data_stream(stream))
		return berth_error_set(err, E2BIG, "frame: %zu bytes, more than %d", len,
				       SHIM_FRAME_MAX);
	const char *p = buf;
	do {
		size_t n = len > SHIM_FRAME_MAX ? SHIM_FRAME_MAX : len;
		unsigned char h[SHIM_FRAME_HEADER];
		shim_frame_header(h, stream, n);
		int r = send_all(fd, h, sizeof(h), -1);
		if (r == 0 && n > 0)
			r = send_all(fd, p, n, -1);
		if (r == -EPIPE || r == -ECONNRESET)
			return berth_error_set(err, EPIPE, "the shim closed the stream");
		if (r < 0)
			return berth_error_setsys(err, -r, "write a frame to the shim");
		p += n;
		len -= n;
	} while (len > 0);
	return 0;
}

static int frame_read_until(int fd, int64_t deadline, int *ret_stream, char **ret_buf,
			    size_t *ret_len, struct berth_error **err)
{
	unsigned char h[SHIM_FRAME_HEADER];
	ssize_t n = recv_full(fd, h, sizeof(h), deadline);
	if (n == 0)
		return berth_error_set(err, EPIPE, "end of the shim's stream");
	if (n == -ETIMEDOUT)
		return berth_error_set(err, ETIMEDOUT, "the shim sent nothing in time");
	if (n < 0)
		return berth_error_setsys(err, (int)-n, "read a frame from the shim");
	if (n < (ssize_t)sizeof(h))
		return berth_error_set(err, EPROTO,
				       "the shim's stream ended inside a frame header");
	size_t len = (size_t)h[1] << 24 | (size_t)h[2] << 16 | (size_t)h[3] << 8 | h[4];
	if (len > SHIM_FRAME_MAX)
		return berth_error_set(err, EPROTO,
				       "the shim sent a frame of %zu bytes (at most %d)", len,
				       SHIM_FRAME_MAX);
	_cleanup_free_ char *buf = NULL;
	if (len > 0) {
		if (!(buf = malloc(len + 1)))
			return berth_error_set(err, ENOMEM, "frame of %zu bytes: out of memory",
					       len);
		n = recv_full(fd, buf, len, deadline);
		if (n < 0)
			return berth_error_setsys(err, (int)-n, "read a frame from the shim");
		if ((size_t)n < len)
			return berth_error_set(err, EPROTO,
					       "the shim's stream ended inside a frame");
		buf[len] = '\0'; /* for callers that treat the payload as text */
	}
	*ret_stream = h[0];
	*ret_buf = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

int shim_frame_read(int fd, int *ret_stream, char **ret_buf, size_t *ret_len,
		    struct berth_error **err)
{
	return frame_read_until(fd, -1, ret_stream, ret_buf, ret_len, err);
}

/* ---- attach and exec ---- */

int shim_attach_open(const char *dir, bool in, bool out, bool errs, int *ret_fd, bool *ret_tty,
		     struct berth_error **err)
{
	struct json_writer *w = request_new("attach");
	if (w) {
		bjson_writer_kv_bool(w, "stdin", in);
		bjson_writer_kv_bool(w, "stdout", out);
		bjson_writer_kv_bool(w, "stderr", errs);
	}
	_cleanup_close_ int fd = -EBADF;
	_cleanup_(bjson_freep) struct json *j = NULL;
	int r = request_send(dir, w, &fd, err);
	if (r < 0 || (r = answer_read(fd, dir, deadline_in(CALL_TIMEOUT_MS), &j, err)) < 0)
		return r;
	const struct json *tty = bjson_object_get(j, "tty");
	if (bjson_type_of(tty) != JSON_BOOL)
		return berth_error_set(err, EPROTO, "shim of %s: attach answer without \"tty\"",
				       dir);
	if (ret_tty)
		*ret_tty = bjson_bool(tty);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int shim_exec_open(const char *dir, const char *process_json, bool in, int *ret_fd, pid_t *ret_pid,
		   struct berth_error **err)
{
	struct json_writer *w = NULL;
	int r = request_with_object("exec", "process", process_json, &w, err);
	if (r < 0)
		return r;
	if (w)
		bjson_writer_kv_bool(w, "stdin", in);
	_cleanup_close_ int fd = -EBADF;
	_cleanup_(bjson_freep) struct json *j = NULL;
	if ((r = request_send(dir, w, &fd, err)) < 0 ||
	    (r = answer_read(fd, dir, deadline_in(CALL_TIMEOUT_MS), &j, err)) < 0)
		return r;
	int64_t pid = 0;
	if (!bjson_int64(bjson_object_get(j, "pid"), &pid) || pid <= 0 || pid > INT_MAX)
		return berth_error_set(err, EPROTO, "shim of %s: exec answer without \"pid\"", dir);
	if (ret_pid)
		*ret_pid = (pid_t)pid;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

void shim_exec_result_clear(struct shim_exec_result *r)
{
	if (!r)
		return;
	free(r->out);
	free(r->errs);
	*r = (struct shim_exec_result){ 0 };
}

/* Output collected up to a cap; the rest is counted as dropped. */
struct capped {
	char *buf;
	size_t len, cap, max;
	bool dropped;
};

static int capped_append(struct capped *c, const char *data, size_t len)
{
	size_t keep = c->max - c->len < len ? c->max - c->len : len;
	if (keep < len)
		c->dropped = true;
	if (c->len + keep + 1 > c->cap) {
		size_t cap = c->cap ? c->cap : 4096;
		while (cap < c->len + keep + 1)
			cap *= 2;
		char *nbuf = realloc(c->buf, cap);
		if (!nbuf)
			return -ENOMEM;
		c->buf = nbuf;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, data, keep);
	c->len += keep;
	c->buf[c->len] = '\0';
	return 0;
}

/* The bytes exec_sync sends: stdin in frames, then close-stdin. */
struct outbox {
	char *buf;
	size_t len, off;
};

static int outbox_build(struct outbox *o, const char *data, size_t len)
{
	size_t frames = len / SHIM_FRAME_MAX + 2;
	o->buf = malloc(len + frames * SHIM_FRAME_HEADER);
	if (!o->buf)
		return -ENOMEM;
	for (size_t off = 0; off < len;) {
		size_t n = len - off > SHIM_FRAME_MAX ? SHIM_FRAME_MAX : len - off;
		shim_frame_header((unsigned char *)o->buf + o->len, SHIM_STREAM_STDIN, n);
		memcpy(o->buf + o->len + SHIM_FRAME_HEADER, data + off, n);
		o->len += SHIM_FRAME_HEADER + n;
		off += n;
	}
	shim_frame_header((unsigned char *)o->buf + o->len, SHIM_STREAM_CLOSE_STDIN, 0);
	o->len += SHIM_FRAME_HEADER;
	return 0;
}

/* Sends what the socket takes now; a process that left without reading its stdin is no
 * error (its exit frame follows). */
static int outbox_flush(struct outbox *o, int fd)
{
	ssize_t n = send(fd, o->buf + o->off, o->len - o->off, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n > 0)
		o->off += (size_t)n;
	else if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
		o->off = o->len;
	else if (n < 0 && errno != EAGAIN && errno != EINTR)
		return -errno;
	return 0;
}

struct exec_io {
	int fd;
	int64_t deadline;
	struct outbox in;
	struct capped out, errs;
	struct shim_status exit;
};

/* One frame of the exec's answer; 1 once the exit frame came. */
static int exec_io_frame(struct exec_io *x, struct berth_error **err)
{
	int stream;
	_cleanup_free_ char *buf = NULL;
	size_t len;
	int r = frame_read_until(x->fd, x->deadline, &stream, &buf, &len, err);
	if (r == -EPIPE) {
		berth_error_freep(err);
		return berth_error_set(err, EPROTO,
				       "the shim ended the exec without an exit status");
	}
	if (r < 0)
		return r;
	if (stream == SHIM_STREAM_STDOUT || stream == SHIM_STREAM_STDERR) {
		r = capped_append(stream == SHIM_STREAM_STDOUT ? &x->out : &x->errs, buf, len);
		return r < 0 ? berth_error_set(err, ENOMEM, "exec output: out of memory") : 0;
	}
	if (stream == SHIM_STREAM_EXIT)
		return shim_exit_frame_parse(buf, len, &x->exit, err) < 0 ? -EPROTO : 1;
	return berth_error_set(err, EPROTO, "the shim sent a frame on stream %d during an exec",
			       stream);
}

/* Feeds stdin and collects frames until the exit frame or the deadline. */
static int exec_io_run(struct exec_io *x, int timeout_ms, struct berth_error **err)
{
	for (;;) {
		bool sending = x->in.off < x->in.len;
		struct pollfd p = { .fd = x->fd, .events = POLLIN | (sending ? POLLOUT : 0) };
		int n = poll(&p, 1, time_left(x->deadline));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return berth_error_setsys(err, errno, "poll the exec");
		if (n == 0)
			return berth_error_set(err, ETIMEDOUT, "exec timed out after %d ms",
					       timeout_ms);
		if ((p.revents & POLLOUT) && outbox_flush(&x->in, x->fd) < 0)
			return berth_error_setsys(err, errno, "write the exec's stdin");
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			int r = exec_io_frame(x, err);
			if (r == -ETIMEDOUT) {
				berth_error_freep(err);
				return berth_error_set(err, ETIMEDOUT, "exec timed out after %d ms",
						       timeout_ms);
			}
			if (r != 0)
				return r;
		}
	}
}

int shim_exec_sync(const char *dir, const char *process_json, const char *stdin_data,
		   size_t stdin_len, size_t max_output, int timeout_ms,
		   struct shim_exec_result *ret, struct berth_error **err)
{
	struct exec_io x = { .fd = -EBADF, .deadline = deadline_in(timeout_ms) };
	x.out.max = x.errs.max = max_output;
	int r = shim_exec_open(dir, process_json, stdin_data != NULL, &x.fd, NULL, err);
	if (r == 0 && stdin_data && outbox_build(&x.in, stdin_data, stdin_len) < 0)
		r = berth_error_set(err, ENOMEM, "exec stdin: out of memory");
	/* the output buffers exist even when empty: callers print them */
	if (r == 0 && (capped_append(&x.out, "", 0) < 0 || capped_append(&x.errs, "", 0) < 0))
		r = berth_error_set(err, ENOMEM, "exec output: out of memory");
	if (r == 0)
		r = exec_io_run(&x, timeout_ms, err);
	/* closing the connection is what kills a process that timed out */
	closep(&x.fd);
	free(x.in.buf);
	if (r < 0) {
		free(x.out.buf);
		free(x.errs.buf);
		return r;
	}
	*ret = (struct shim_exec_result){
		.exit_code = x.exit.exit_code,
		.signal = x.exit.signal,
		.out = x.out.buf,
		.out_len = x.out.len,
		.errs = x.errs.buf,
		.errs_len = x.errs.len,
		.truncated = x.out.dropped || x.errs.dropped,
	};
	return 0;
}
