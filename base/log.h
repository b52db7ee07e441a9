/* Logging. Library code logs at debug level at most for what it does, and warns for what it
 * changed on the caller's behalf (a clamped value); failures travel as struct berth_error. The
 * program decides where lines go (stderr by default, or a file) and their format (text or the
 * JSON lines runc writes: {"level":…,"msg":…,"time":…}). */
#ifndef BERTH_BASE_LOG_H
#define BERTH_BASE_LOG_H

#include "base/error.h"

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* prog: prefix of text lines; fd: where lines go (the caller keeps ownership); json: runc's
 * JSON line format. */
BERTH_EXPORT void log_setup(const char *prog, int fd, bool json, enum log_level max);
BERTH_EXPORT void log_write(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
BERTH_EXPORT bool log_enabled(enum log_level level);
/* Now as RFC 3339 in UTC with nanoseconds ("2026-11-27T15:04:05.123456789Z"), the form runc's
 * logs and state use. buf holds at least 40 bytes. */
void format_rfc3339_now_buf(char *buf, size_t len);

/* The fd lines go to (processes forked to set up a container keep it). */
int log_fd(void);

#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_enabled(LOG_LEVEL_DEBUG))                                                  \
			log_write(LOG_LEVEL_DEBUG, __VA_ARGS__);                                   \
	} while (0)

#endif
