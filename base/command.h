/* Running a helper program to completion: its stdin from a string, stdout and stderr collected
 * (bounded), a deadline after which it and the process group it started are killed. For CNI
 * plugins and for berthd's pulls (which run in `berth image pull`, so that the daemon links no
 * HTTP, TLS or archive library). */
#ifndef BERTH_BASE_COMMAND_H
#define BERTH_BASE_COMMAND_H

#include <stdbool.h>
#include <stddef.h>

struct command {
	const char *path;    /* the executable */
	char *const *argv;   /* with argv[0]; NULL: just path */
	char *const *env;    /* NULL: the caller's environment */
	const char *input;   /* stdin's content; NULL: empty */
	int timeout_ms;      /* <= 0: no deadline */
	size_t out_max;      /* stdout beyond this fails the run with -EMSGSIZE */
	size_t err_max;      /* stderr beyond this is read and dropped */
};

/* Bounded output, NUL-terminated (buf NULL when nothing came). */
struct command_output {
	char *buf;
	size_t len, max;
	bool overflow;
};

struct command_result {
	struct command_output out, err;
	int status; /* the exit status, or 128 + the signal that ended it (as a shell reports it) */
};

/* Runs c and waits for it. Returns 0 when it ran to its end (whatever its status), or -errno
 * about running it: -ETIMEDOUT at the deadline or -EMSGSIZE when stdout is over out_max (in both
 * cases it has been killed), or the error of a pipe, clone or wait. ret holds what was
 * collected either way; clear it with command_result_clear. */
int command_run(const struct command *c, struct command_result *ret);
void command_result_clear(struct command_result *r);
/* The end of stderr on one line (newlines as spaces), at most size - 1 bytes: for a message. */
void command_stderr_excerpt(const struct command_result *r, char *buf, size_t size);

#endif
