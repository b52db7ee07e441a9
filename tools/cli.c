#include "tools/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *prog = "berth";
static int usage_code = 2;
static void (*error_hook)(const char *msg);

void cli_init(const char *p, int code, void (*on_error)(const char *msg))
{
	prog = p;
	usage_code = code;
	error_hook = on_error;
}

/* Control characters from user input (a name with a newline) would break the one-line rule. */
static void print_escaped_line(FILE *f, const char *msg)
{
	fprintf(f, "%s: ", prog);
	for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
		if (*p == '\n')
			fputs("\\n", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
	fputc('\n', f);
}

int cli_fail(struct berth_error *err, int r)
{
	const char *msg = err && err->msg ? err->msg : strerror(r < 0 ? -r : EIO);
	print_escaped_line(stderr, msg);
	if (error_hook)
		error_hook(msg);
	berth_error_free(err);
	return 1;
}

__attribute__((format(printf, 1, 0))) static void report_v(const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	print_escaped_line(stderr, msg);
	if (error_hook)
		error_hook(msg);
}

int cli_fail_msg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report_v(fmt, ap);
	va_end(ap);
	return 1;
}

int cli_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report_v(fmt, ap);
	va_end(ap);
	return usage_code;
}

int cli_parse(int argc, char **argv, int *i, const struct opt *opts, const char *cmd)
{
	char *msg = NULL;
	if (options_parse(argc, argv, i, opts, &msg) == 0)
		return 0;
	int r = cli_usage("%s: %s", cmd, msg ? msg : "out of memory");
	free(msg);
	return r;
}

int cli_positional(int argc, int i, int min, int max, const char *cmd, const char *usage)
{
	int n = argc - i;
	if (n < min || (max >= 0 && n > max))
		return cli_usage("%s: usage: %s %s %s", cmd, prog, cmd, usage);
	return 0;
}
