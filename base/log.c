#include "base/log.h"
#include "base/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_out = STDERR_FILENO;
static bool log_json;
static enum log_level log_max = LOG_LEVEL_WARN;
static const char *log_prog = "berth";

static const char *const level_names[] = { "error", "warning", "info", "debug" };

void log_setup(const char *prog, int fd, bool json, enum log_level max)
{
	log_prog = prog;
	log_out = fd;
	log_json = json;
	log_max = max;
}

int log_fd(void)
{
	return log_out;
}

bool log_enabled(enum log_level level)
{
	return level <= log_max;
}

void format_rfc3339_now_buf(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%09ldZ", ts.tv_nsec);
}

static char *format_json_line(const char *level, const char *msg, const char *now)
{
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return NULL;
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "level", level);
	bjson_writer_kv_string(w, "msg", msg);
	bjson_writer_kv_string(w, "time", now);
	bjson_writer_end_object(w);
	char *text = NULL, *line = NULL;
	if (bjson_writer_finish(w, &text, NULL) >= 0 && asprintf(&line, "%s\n", text) < 0)
		line = NULL;
	free(text);
	return line;
}

void log_write(enum log_level level, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;

	char now[64];
	format_rfc3339_now_buf(now, sizeof(now));
	char *line = NULL;
	if (log_json) {
		line = format_json_line(level_names[level], msg, now);
	} else if (level == LOG_LEVEL_ERROR) {
		if (asprintf(&line, "%s: %s\n", log_prog, msg) < 0)
			line = NULL;
	} else if (asprintf(&line, "%s: %s: %s\n", log_prog, level_names[level], msg) < 0) {
		line = NULL;
	}
	if (line) {
		/* one write per line, so concurrent writers to the same file do not interleave */
		ssize_t w = write(log_out, line, strlen(line));
		(void)w;
	}
	free(line);
	free(msg);
}
