#include "base/error.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((format(printf, 4, 0))) static int error_vset(struct berth_error **err, int code,
							 bool sys, const char *fmt, va_list ap)
{
	if (code <= 0)
		code = code < 0 ? -code : EIO;
	if (!err || *err)
		return -code;

	struct berth_error *e = calloc(1, sizeof(*e));
	char *msg = NULL;
	if (!e || vasprintf(&msg, fmt, ap) < 0) {
		free(e);
		return -code;
	}
	if (sys) {
		char *full = NULL;
		if (asprintf(&full, "%s: %s", msg, strerror(code)) >= 0) {
			free(msg);
			msg = full;
		}
	}
	e->code = code;
	e->msg = msg;
	*err = e;
	return -code;
}

int berth_error_set(struct berth_error **err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = error_vset(err, code, false, fmt, ap);
	va_end(ap);
	return r;
}

int berth_error_setsys(struct berth_error **err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = error_vset(err, code, true, fmt, ap);
	va_end(ap);
	return r;
}

int berth_error_wrap(struct berth_error **err, const char *fmt, ...)
{
	if (!err || !*err)
		return -EIO;
	char *ctx = NULL, *full = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&ctx, fmt, ap);
	va_end(ap);
	if (r >= 0 && asprintf(&full, "%s: %s", ctx, (*err)->msg) >= 0) {
		free((*err)->msg);
		(*err)->msg = full;
	}
	free(ctx);
	return -(*err)->code;
}

struct berth_error *berth_error_free(struct berth_error *e)
{
	if (e) {
		free(e->msg);
		free(e);
	}
	return NULL;
}

void berth_error_freep(struct berth_error **e)
{
	*e = berth_error_free(*e);
}

int berth_error_move(struct berth_error **err, struct berth_error **e)
{
	int r = *e ? -(*e)->code : -EIO;
	if (err && !*err) {
		*err = *e;
		*e = NULL;
	} else {
		*e = berth_error_free(*e);
	}
	return r;
}
