/* What berth's programs share on the command line: the one-line error ("PROG: message", control
 * characters escaped), option parsing that reports in that form, and positional argument counts.
 * Exit codes: 1 for an error, usage_code (berth: 2; berth-runtime: 1, as runc) for bad usage. */
#ifndef BERTH_TOOLS_CLI_H
#define BERTH_TOOLS_CLI_H
#include "base/error.h"
#include "tools/options.h"

/* on_error (may be NULL) also receives every error message, e.g. for a log file. */
void cli_init(const char *prog, int usage_code, void (*on_error)(const char *msg));
/* Prints err's message (or strerror(-r)), frees err, returns 1. */
int cli_fail(struct berth_error *err, int r);
/* An error of the program's own making; returns 1. */
int cli_fail_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Bad usage; returns the usage exit code. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* 0, or the usage exit code after printing "PROG: CMD: <what was wrong>". */
int cli_parse(int argc, char **argv, int *i, const struct opt *opts, const char *cmd);
/* 0 when argc - i is within [min, max] (max < 0: no limit), else prints the usage line. */
int cli_positional(int argc, int i, int min, int max, const char *cmd, const char *usage);
#endif
