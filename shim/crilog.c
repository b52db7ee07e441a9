/* The CRI log writer (crilog-internal.h). */
#include "shim/crilog-internal.h"
#include "base/cleanup.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

struct pending {
	char *buf; /* line_max + 1 bytes, allocated on first use */
	size_t len;
};

struct crilog {
	char *path;
	uint64_t max_size;
	unsigned max_files;
	size_t line_max;
	int fd;
	uint64_t size; /* of the live file, as far as this writer knows */
	struct pending pending[2];
	uint64_t drops;
	bool failing; /* the last record was dropped: the next success is worth a log line */
	bool created_file;
	char *created_dir; /* the topmost parent directory crilog_open made, or NULL */
};

static const char *const stream_names[] = { "stdout", "stderr" };

/* Creates the missing parents of path (0755) and remembers the topmost one it made. */
static int make_parents(struct crilog *l, struct berth_error **err)
{
	_cleanup_free_ char *p = strdup(l->path);
	if (!p)
		return -ENOMEM;
	for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(p, 0755) == 0) {
			(void)chmod(p, 0755); /* whatever the umask */
			if (!l->created_dir && !(l->created_dir = strdup(p)))
				return -ENOMEM;
		} else if (errno != EEXIST) {
			return berth_error_setsys(err, errno, "log %s: create %s", l->path, p);
		}
		*s = '/';
	}
	return 0;
}

static int open_file(struct crilog *l, bool first, struct berth_error **err)
{
	const int flags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW;
	int fd = open(l->path, flags | O_CREAT | O_EXCL, 0640);
	bool created = fd >= 0;
	if (fd < 0 && errno == EEXIST)
		fd = open(l->path, flags);
	if (fd < 0)
		return berth_error_setsys(err, errno, "log %s", l->path);
	struct stat st;
	if ((created && fchmod(fd, 0640) < 0) || fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return berth_error_setsys(err, e, "log %s", l->path);
	}
	if (first)
		l->created_file = created;
	l->fd = fd;
	l->size = (uint64_t)st.st_size;
	return 0;
}

int crilog_open(const struct crilog_options *o, struct crilog **ret, struct berth_error **err)
{
	if (!o->path || o->path[0] != '/')
		return berth_error_set(err, EINVAL, "log path %s: must be absolute",
				       o->path ? o->path : "(none)");
	if (o->line_max == 0)
		return berth_error_set(err, EINVAL, "log line max: must be at least 1");
	if (o->max_size && o->max_files < 2)
		return berth_error_set(err, EINVAL,
				       "log max files %u: rotation keeps at least 2 files",
				       o->max_files);
	struct crilog *l = calloc(1, sizeof(*l));
	if (!l || !(l->path = strdup(o->path))) {
		free(l);
		return -ENOMEM;
	}
	l->max_size = o->max_size;
	l->max_files = o->max_files;
	l->line_max = o->line_max;
	l->fd = -EBADF;
	int r = make_parents(l, err);
	if (r == 0)
		r = open_file(l, true, err);
	if (r < 0) {
		crilog_remove_created(l);
		crilog_free(l);
		return r;
	}
	*ret = l;
	return 0;
}

int crilog_reopen(struct crilog *l, struct berth_error **err)
{
	closep(&l->fd);
	l->fd = -EBADF;
	return open_file(l, false, err);
}

/* path.(N-2) -> path.(N-1), ..., path -> path.1, then a fresh path. */
static void rotate(struct crilog *l)
{
	size_t n = strlen(l->path) + 16;
	_cleanup_free_ char *from = malloc(n), *to = malloc(n);
	if (!from || !to)
		return; /* the record goes to the live file, a little past the limit */
	for (unsigned i = l->max_files - 1; i >= 1; i--) {
		if (i == 1)
			snprintf(from, n, "%s", l->path);
		else
			snprintf(from, n, "%s.%u", l->path, i - 1);
		snprintf(to, n, "%s.%u", l->path, i);
		if (rename(from, to) < 0 && errno != ENOENT)
			log_warn("log %s: rotate: rename %s to %s: %s", l->path, from, to,
				 strerror(errno));
	}
	struct berth_error *e = NULL;
	if (crilog_reopen(l, &e) < 0) {
		log_warn("%s", e->msg); /* records are dropped (and counted) until it works */
		berth_error_free(e);
	}
}

static void record_dropped(struct crilog *l, int e)
{
	if (!l->failing)
		log_warn("log %s: %s; dropping records until writing works again", l->path,
			 strerror(e));
	l->failing = true;
	l->drops++;
}

static void emit(struct crilog *l, enum crilog_stream s, char tag, const char *text, size_t len)
{
	char head[64];
	format_rfc3339_now_buf(head, sizeof(head));
	size_t hl = strlen(head);
	hl += (size_t)snprintf(head + hl, sizeof(head) - hl, " %s %c ", stream_names[s], tag);
	struct iovec iov[3] = { { head, hl }, { (void *)text, len }, { "\n", 1 } };
	size_t total = hl + len + 1;
	if (l->max_size && l->size > 0 && l->size + total > l->max_size)
		rotate(l);
	if (l->fd < 0) {
		record_dropped(l, EBADF);
		return;
	}
	ssize_t n;
	do
		n = writev(l->fd, iov, 3);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		l->size += (uint64_t)n;
	if (n != (ssize_t)total) {
		record_dropped(l, n < 0 ? errno : ENOSPC);
		return;
	}
	if (l->failing)
		log_warn("log %s: writing again; %llu records dropped so far", l->path,
			 (unsigned long long)l->drops);
	l->failing = false;
}

static bool pending_ready(struct crilog *l, struct pending *p)
{
	if (!p->buf && !(p->buf = malloc(l->line_max + 1))) {
		record_dropped(l, ENOMEM);
		return false;
	}
	return true;
}

void crilog_write(struct crilog *l, enum crilog_stream s, const char *data, size_t len)
{
	struct pending *p = &l->pending[s];
	while (len > 0) {
		/* room for line_max bytes and one more: a line of exactly line_max bytes is
		 * followed by its newline, a longer one by another byte (then it is cut) */
		size_t take = l->line_max + 1 - p->len;
		if (take > len)
			take = len;
		const char *nl = memchr(data, '\n', take);
		if (nl && p->len == 0) {
			emit(l, s, 'F', data, (size_t)(nl - data)); /* straight from the caller */
		} else if (nl) {
			memcpy(p->buf + p->len, data, (size_t)(nl - data));
			emit(l, s, 'F', p->buf, p->len + (size_t)(nl - data));
			p->len = 0;
		}
		if (nl) {
			len -= (size_t)(nl - data) + 1;
			data = nl + 1;
			continue;
		}
		if (!pending_ready(l, p))
			return;
		memcpy(p->buf + p->len, data, take);
		p->len += take;
		data += take;
		len -= take;
		if (p->len == l->line_max + 1) {
			emit(l, s, 'P', p->buf, l->line_max);
			p->buf[0] = p->buf[l->line_max];
			p->len = 1;
		}
	}
}

void crilog_end_stream(struct crilog *l, enum crilog_stream s)
{
	struct pending *p = &l->pending[s];
	if (p->len > 0)
		emit(l, s, 'F', p->buf, p->len);
	p->len = 0;
}

uint64_t crilog_drops(const struct crilog *l)
{
	return l->drops;
}

void crilog_remove_created(struct crilog *l)
{
	if (l->created_file)
		(void)unlink(l->path);
	l->created_file = false;
	if (!l->created_dir)
		return;
	/* from the file's directory up to the topmost one made here */
	_cleanup_free_ char *p = strdup(l->path);
	size_t top = strlen(l->created_dir);
	for (char *s = p ? strrchr(p, '/') : NULL; s && (size_t)(s - p) >= top;
	     s = strrchr(p, '/')) {
		*s = '\0';
		if (rmdir(p) < 0)
			break;
	}
}

struct crilog *crilog_free(struct crilog *l)
{
	if (!l)
		return NULL;
	closep(&l->fd);
	free(l->pending[0].buf);
	free(l->pending[1].buf);
	free(l->created_dir);
	free(l->path);
	free(l);
	return NULL;
}

void crilog_freep(struct crilog **l)
{
	crilog_free(*l);
}
