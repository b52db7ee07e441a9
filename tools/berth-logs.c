/* Container logs for berth logs, berth pod logs and berth run: the CRI log files berthd's shims
 * write (`<RFC3339Nano> <stdout|stderr> <P|F> <text>`, P a part of a line, rotated to .1, .2, ...)
 * read from the start (rotated files first), and followed until the container has exited. */
#include "tools/berth-cmd.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "tools/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROTATED 16	  /* .1 ... .16: more than berthd keeps (container_log_max_files) */
#define POLL_MS 50	  /* how long a follow waits for more output */
#define STATUS_EVERY_MS 200 /* how often a follow asks berthd whether the container exited */

struct follower {
	const struct log_source *src;
	int fd;
	ino_t ino;
	char *buf;
	size_t len, cap;
	long skip;	    /* lines still to skip (--tail) */
	bool exited;	    /* berthd says the container is no longer running */
	bool done;
	bool mid_line[2];   /* stdout, stderr: the last record was a part (P) */
};

/* ---- times ---- */

/* An RFC 3339 time ("2026-01-02T03:04:05.123456789Z", or with an offset) in ns since 1970. */
static bool parse_time(const char *s, size_t len, int64_t *ret)
{
	char text[64];
	struct tm tm = { 0 };
	if (len >= sizeof(text))
		return false;
	memcpy(text, s, len);
	text[len] = '\0';
	const char *p = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return false;
	int64_t frac = 0, scale = 100000000;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			frac += scale * (*p - '0');
	int64_t offset = 0;
	if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		offset = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 + ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
		offset = *p == '-' ? -offset : offset;
		p += 6;
	} else if (*p == 'Z') {
		p++;
	}
	time_t secs = timegm(&tm);
	if (*p || secs < 0 || (int64_t)secs - offset > INT64_MAX / 1000000000 - 1)
		return false; /* ns since 1970 end in 2262 */
	*ret = ((int64_t)secs - offset) * 1000000000 + frac;
	return true;
}

/* "1h30m", "10s", "250ms": a Go-style duration, in ns. */
static bool parse_duration(const char *s, int64_t *ret)
{
	static const struct {
		const char *unit;
		int64_t ns;
	} units[] = { { "ms", 1000000 }, { "s", 1000000000 }, { "m", 60000000000 }, { "h", 3600000000000 } };
	int64_t total = 0;
	if (!*s)
		return false;
	while (*s) {
		char *end;
		errno = 0;
		long long v = strtoll(s, &end, 10);
		if (errno || end == s || v < 0)
			return false;
		size_t k = 0;
		while (k < ARRAY_SIZE(units) && strncmp(end, units[k].unit, strlen(units[k].unit)) != 0)
			k++;
		if (k == ARRAY_SIZE(units) || v > INT64_MAX / units[k].ns)
			return false;
		total += v * units[k].ns;
		s = end + strlen(units[k].unit);
	}
	*ret = total;
	return true;
}

static int parse_since(const char *cmd, const char *s, int64_t *ret_ns)
{
	int64_t v;
	if (!s)
		return 0;
	if (parse_time(s, strlen(s), &v)) {
		*ret_ns = v;
		return 0;
	}
	if (parse_duration(s, &v)) {
		*ret_ns = berth_cmd_now_ns() - v;
		return 0;
	}
	return cli_usage("%s: --since %s: expects an RFC 3339 time (2024-01-02T03:04:05Z) or a "
			 "duration (10s, 5m, 2h)", cmd, s);
}

static int parse_tail(const char *cmd, const char *s, long *ret)
{
	char *end;
	if (!s || strcmp(s, "all") == 0) {
		*ret = -1;
		return 0;
	}
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0)
		return cli_usage("%s: --tail %s: expects a number of lines or \"all\"", cmd, s);
	*ret = v;
	return 0;
}

int berth_logs_parse_args(int argc, char **argv, int i, const char *cmd, const char *what,
			  struct log_options *ret, const char **ret_target)
{
	const char *tail = NULL, *since = NULL;
	const struct opt opts[] = {
		{ "follow", 'f', OPT_FLAG, &ret->follow },
		{ "timestamps", 't', OPT_FLAG, &ret->timestamps },
		{ "tail", 'n', OPT_STRING, &tail },
		{ "since", 0, OPT_STRING, &since },
		{ NULL, 0, 0, NULL },
	};
	char usage[128];
	snprintf(usage, sizeof(usage), "[-f] [--tail N] [--since T] [--timestamps] %s", what);
	int n = 0;
	*ret = (struct log_options){ .signal_fd = -1 };
	/* "-ft" is "-f -t", as docker users type it; the words stay argv's */
	_cleanup_free_ char **v = berth_cmd_split_flags(argc, argv, i, opts, &n);
	if (!v)
		return cli_fail(NULL, -ENOMEM);
	int r = cli_parse(n, v, &i, opts, cmd);
	if (r || (r = cli_positional(n, i, 1, 1, cmd, usage)) ||
	    (r = parse_tail(cmd, tail, &ret->tail)) ||
	    (r = parse_since(cmd, since, &ret->since_ns)))
		return r;
	*ret_target = v[i];
	return 0;
}

/* ---- records ---- */

struct record {
	const char *time, *text;
	size_t time_len, text_len;
	bool is_stderr, partial;
};

static bool parse_record(const char *line, size_t len, struct record *r)
{
	const char *end = line + len;
	const char *sp1 = memchr(line, ' ', len);
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
	if (!sp2 || end - sp2 < 2 || (sp2[1] != 'P' && sp2[1] != 'F') ||
	    (end - sp2 > 2 && sp2[2] != ' '))
		return false;
	r->time = line;
	r->time_len = (size_t)(sp1 - line);
	r->is_stderr = (size_t)(sp2 - sp1 - 1) == 6 && strncmp(sp1 + 1, "stderr", 6) == 0;
	r->partial = sp2[1] == 'P';
	r->text = end - sp2 > 2 ? sp2 + 3 : end;
	r->text_len = (size_t)(end - r->text);
	return true;
}

/* Whether the record passes --since (records without a readable time pass). */
static bool record_wanted(const struct record *r, const struct log_options *o)
{
	int64_t t;
	return o->since_ns == 0 || !parse_time(r->time, r->time_len, &t) || t >= o->since_ns;
}

static int emit(struct follower *f, const struct record *r, const struct log_options *o)
{
	int fd = r->is_stderr ? STDERR_FILENO : STDOUT_FILENO;
	bool *mid = &f->mid_line[r->is_stderr];
	int rc = 0;
	if (f->skip > 0) {
		f->skip -= !r->partial;
		return 0;
	}
	if (!*mid && f->src->prefix)
		rc = write_all(fd, f->src->prefix, strlen(f->src->prefix));
	if (rc == 0 && !*mid && o->timestamps &&
	    (rc = write_all(fd, r->time, r->time_len)) == 0)
		rc = write_all(fd, " ", 1);
	if (rc == 0)
		rc = write_all(fd, r->text, r->text_len);
	if (rc == 0 && !r->partial)
		rc = write_all(fd, "\n", 1);
	*mid = r->partial;
	return rc;
}

/* The complete lines in f->buf: emitted (count false) or counted (returned); the rest kept. */
static long process(struct follower *f, const struct log_options *o, bool count,
		    struct berth_error **err)
{
	size_t at = 0;
	long lines = 0;
	char *nl;
	while (at < f->len && (nl = memchr(f->buf + at, '\n', f->len - at))) {
		struct record r;
		size_t len = (size_t)(nl - (f->buf + at));
		if (parse_record(f->buf + at, len, &r) && record_wanted(&r, o)) {
			int rc = count ? 0 : emit(f, &r, o);
			if (rc < 0)
				return berth_error_set(err, -rc, "write the output: %s", strerror(-rc));
			lines += !r.partial;
		}
		at += len + 1;
	}
	if (!count && at > 0) {
		memmove(f->buf, f->buf + at, f->len - at);
		f->len -= at;
	}
	return lines;
}

/* ---- files ---- */

static int append(struct follower *f, const char *p, size_t len)
{
	if (f->len + len + 1 > f->cap) {
		size_t cap = f->cap ? f->cap : 65536;
		while (cap < f->len + len + 1)
			cap *= 2;
		char *nb = realloc(f->buf, cap);
		if (!nb)
			return -ENOMEM;
		f->buf = nb;
		f->cap = cap;
	}
	if (len)
		memcpy(f->buf + f->len, p, len);
	f->len += len;
	return 0;
}

/* Reads what f's file has now; > 0 when something came. */
static int read_more(struct follower *f, struct berth_error **err)
{
	char chunk[65536];
	int got = 0;
	for (;;) {
		ssize_t n = read(f->fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return berth_error_setsys(err, errno, "read %s", f->src->log_path);
		if (n == 0)
			return got;
		if (append(f, chunk, (size_t)n) < 0)
			return berth_error_set(err, ENOMEM, "out of memory");
		got = 1;
	}
}

/* Opens the current file (a missing one is retried later). */
static int open_current(struct follower *f, struct berth_error **err)
{
	struct stat st;
	f->fd = open(f->src->log_path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return errno == ENOENT ? 0 : berth_error_setsys(err, errno, "open %s", f->src->log_path);
	if (fstat(f->fd, &st) == 0)
		f->ino = st.st_ino;
	return 0;
}

/* The rotated files, oldest first, then what the current file holds now. */
static int read_initial(struct follower *f, struct berth_error **err)
{
	int r = open_current(f, err);
	for (int k = MAX_ROTATED; r == 0 && k >= 1; k--) {
		_cleanup_free_ char *path = NULL, *text = NULL;
		size_t len = 0;
		if (asprintf(&path, "%s.%d", f->src->log_path, k) < 0)
			return berth_error_set(err, ENOMEM, "out of memory");
		if (read_file_at(AT_FDCWD, path, &text, &len, NULL) == 0 && append(f, text, len) < 0)
			return berth_error_set(err, ENOMEM, "out of memory");
	}
	return r < 0 || f->fd < 0 ? r : read_more(f, err);
}

/* After a rotation the path names a new file: the old one is drained, then the new one read. */
static int check_rotated(struct follower *f, struct berth_error **err)
{
	struct stat st;
	if (f->fd >= 0 && (stat(f->src->log_path, &st) < 0 || st.st_ino == f->ino))
		return 0;
	closep(&f->fd);
	int r = open_current(f, err);
	return r < 0 || f->fd < 0 ? r : read_more(f, err);
}

/* Asks berthd whether f's container still runs (or may: created). */
static int check_exited(const char *socket_path, struct follower *f, struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *answer = NULL;
	struct json_writer *w = berthd_request("container.status");
	if (w)
		bjson_writer_kv_string(w, "container_id", f->src->container_id);
	int r = berthd_call(socket_path, w, &answer, err);
	if (r == -ENOENT) {
		berth_error_free(TAKE_PTR(*err));
		f->exited = true; /* removed: nothing more will come */
		return 0;
	}
	if (r < 0)
		return r;
	const char *state = bjson_string(bjson_object_get(bjson_object_get(answer, "status"), "state"));
	f->exited = !state || (strcmp(state, "running") != 0 && strcmp(state, "created") != 0);
	return 0;
}

static int follow_step(const char *socket_path, struct follower *f, const struct log_options *o,
		       bool ask, bool *progressed, struct berth_error **err)
{
	bool was_exited = f->exited;
	int r = f->fd >= 0 ? read_more(f, err) : 0;
	if (r == 0)
		r = check_rotated(f, err);
	if (r < 0)
		return r;
	if (r > 0) {
		*progressed = true;
		return process(f, o, false, err) < 0 ? -EIO : 0;
	}
	/* drained: done once the container had exited before this read */
	if (was_exited) {
		f->done = true;
		return 0;
	}
	return ask ? check_exited(socket_path, f, err) : 0;
}

static int signal_pending(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, fd >= 0 ? 1 : 0, timeout_ms) <= 0 || fd < 0)
		return 0;
	struct signalfd_siginfo si;
	return read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si) ? (int)si.ssi_signo : 0;
}

static int follow(const char *socket_path, struct follower *fs, size_t n,
		  const struct log_options *o, int *ret_signal, struct berth_error **err)
{
	int64_t last_ask = 0;
	for (;;) {
		bool progressed = false, all_done = true;
		int64_t now = berth_cmd_now_ns();
		bool ask = now - last_ask >= (int64_t)STATUS_EVERY_MS * 1000000;
		for (size_t k = 0; k < n; k++) {
			int r = fs[k].done ? 0 : follow_step(socket_path, &fs[k], o, ask, &progressed, err);
			if (r < 0)
				return r;
			all_done = all_done && fs[k].done;
		}
		if (ask)
			last_ask = now;
		if (all_done)
			return 0;
		if (!progressed && (*ret_signal = signal_pending(o->signal_fd, POLL_MS)))
			return 0;
	}
}

static void followers_free(struct follower *fs, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		closep(&fs[k].fd);
		free(fs[k].buf);
	}
	free(fs);
}

int berth_logs_print(const char *socket_path, const struct log_source *src, size_t n,
		     const struct log_options *o, int *ret_signal, struct berth_error **err)
{
	struct follower *fs = calloc(n ? n : 1, sizeof(*fs));
	int r = 0;
	*ret_signal = 0;
	if (!fs)
		return berth_error_set(err, ENOMEM, "out of memory");
	for (size_t k = 0; k < n; k++)
		fs[k] = (struct follower){ .src = &src[k], .fd = -EBADF };
	for (size_t k = 0; k < n && r == 0; k++) {
		if ((r = read_initial(&fs[k], err)) < 0)
			break;
		long lines = o->tail >= 0 ? process(&fs[k], o, true, err) : 0;
		fs[k].skip = o->tail >= 0 && lines > o->tail ? lines - o->tail : 0;
		r = process(&fs[k], o, false, err) < 0 ? -EIO : 0;
		fs[k].done = !o->follow;
	}
	if (r == 0 && o->follow)
		r = follow(socket_path, fs, n, o, ret_signal, err);
	followers_free(fs, n);
	return r;
}
