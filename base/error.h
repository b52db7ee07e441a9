/* berth error objects.
 *
 * A failing function returns -errno and, when given a non-NULL `struct berth_error **err`, stores
 * an error object there that carries the errno and a message. The caller owns the object: it
 * either returns it further up (optionally adding context with berth_error_wrap) or prints it and
 * frees it with berth_error_free. A function never overwrites an error already set: the first
 * cause wins, context is prepended.
 */
#ifndef BERTH_BASE_ERROR_H
#define BERTH_BASE_ERROR_H

#include <stdarg.h>

#define BERTH_EXPORT __attribute__((visibility("default")))

struct berth_error {
	int code;  /* a positive errno value */
	char *msg; /* "context: cause" */
};

/* Sets *err (when err is not NULL and *err is NULL) and returns -code. */
BERTH_EXPORT int berth_error_set(struct berth_error **err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Like berth_error_set, appending ": strerror(code)". */
BERTH_EXPORT int berth_error_setsys(struct berth_error **err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prepends "context: " to an existing error; returns -(*err)->code, or -EIO if none is set. */
BERTH_EXPORT int berth_error_wrap(struct berth_error **err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
BERTH_EXPORT struct berth_error *berth_error_free(struct berth_error *e);
/* Hands a locally collected error *e to the caller's err (or frees it when err is NULL or already
 * set) and returns -errno (-EIO when *e is NULL). */
int berth_error_move(struct berth_error **err, struct berth_error **e);
BERTH_EXPORT void berth_error_freep(struct berth_error **e);

#endif
