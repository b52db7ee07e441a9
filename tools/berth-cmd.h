/* The berth commands that speak to berthd (beyond exec, attach and port-forward), and what they
 * share: one-line errors naming the command and the thing, --format table|json, aligned tables,
 * relative times, and the log files of containers (tools/berth-logs.c).
 *
 * Every command takes berthd's socket path and argv with i at its first own word, and returns
 * the exit status: 0, 1 (an error of berthd or the system), 2 (bad usage), or for run the
 * container's own. */
#ifndef BERTH_TOOLS_BERTH_CMD_H
#define BERTH_TOOLS_BERTH_CMD_H

#include "base/error.h"
#include "base/json.h"
#include "tools/berthd-client.h"
#include "tools/options.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef int berth_cmd_fn(const char *socket_path, int argc, char **argv, int i);

berth_cmd_fn berth_run, berth_ps, berth_logs, berth_stop, berth_kill, berth_rm, berth_inspect,
	berth_stats, berth_events, berth_pod, berth_info, berth_version, berth_apply, berth_delete;

/* ---- shared (tools/berth-util.c) ---- */

/* Reports err wrapped with "CMD: " and returns 1; r is the failure's -errno. */
int berth_cmd_fail(const char *cmd, struct berth_error *err, int r);
/* Calls berthd; the answer in *ret. Errors reported (as berth_cmd_fail) and 1 returned. */
int berth_cmd_call(const char *socket_path, const char *cmd, struct json_writer *w,
		   struct json **ret);
/* The full id of a container or pod; a one-line error (returning 1) when it names none. */
int berth_cmd_resolve(const char *socket_path, const char *cmd, enum berthd_kind kind,
		      const char *given, char **ret_id, char **ret_state);
/* What a command does to one container or pod named on its command line: id is the full id,
 * given what the user typed; arg the command's own. */
typedef int berth_cmd_each_fn(const char *socket_path, const char *id, const char *given,
			      void *arg, struct berth_error **err);
/* Resolves each of argv[i...] (kind) and runs act on it, printing the word given on success when
 * print is set; each failure is its own line, and the exit status 1 when any failed. */
int berth_cmd_for_each(const char *socket_path, const char *cmd, enum berthd_kind kind, int argc,
		       char **argv, int i, berth_cmd_each_fn *act, void *arg, bool print);
/* --format: "table" (or "text") or "json"; *ret_json set; else a usage error (returns 2). */
int berth_cmd_format(const char *cmd, const char *format, bool *ret_json);
/* Finishes w (consumed) and prints its text on stdout; 0, or 1 with the error reported. */
int berth_cmd_print_writer(struct json_writer *w);
/* Prints a JSON value on stdout, indented. */
int berth_cmd_print_json(const struct json *j);
/* argv with "-abc" split into "-a -b -c" where a, b and c are flags of opts (people type
 * docker's combined flags; options_parse takes one a word), up to the first positional word.
 * The array (NULL-terminated) is the caller's to free; its strings are argv's or static. */
char **berth_cmd_split_flags(int argc, char **argv, int i, const struct opt *opts, int *ret_argc);
/* "5 seconds ago", "3 hours ago"; ns is a CLOCK_REALTIME time in nanoseconds. */
const char *berth_cmd_ago(int64_t ns, char buf[48]);
/* Sizes for people: 1024-based like docker stats ("12.5MiB"). */
const char *berth_cmd_size(uint64_t n, char buf[24]);
/* The first 12 characters of an id. */
const char *berth_cmd_short_id(const char *id, char buf[13]);
int64_t berth_cmd_now_ns(void);
/* nbytes (at most 16) random bytes as hex into buf (2 * nbytes + 1 bytes); -EIO without. */
int berth_cmd_random_hex(char *buf, size_t nbytes);

/* An aligned table: columns padded to their widest cell, two spaces apart. */
struct table;
struct table *table_new(size_t ncols, const char *const *headers);
/* Copies the cells; false when out of memory (the table stays usable). */
bool table_add(struct table *t, const char *const *cells);
void table_print(const struct table *t, FILE *f);
struct table *table_free(struct table *t);
void table_freep(struct table **t);

/* ---- pods (tools/berth-pods.c) ---- */

/* berth run's pods carry this label: removing their container also removes them. */
#define BERTH_RUN_LABEL "io.berth.run"

struct pod_spec {
	const char *name;     /* metadata.name; namespace "default", a random uid */
	const char *hostname; /* or NULL */
	char **ports;	      /* -p [IP:]HOST:CTR[/tcp|/udp], NULL-terminated, or NULL */
	char **labels;	      /* KEY=VALUE, or NULL */
	bool run_label;	      /* add BERTH_RUN_LABEL */
};

/* A usage error (returning 2) unless spec is [IP:]HOST:CTR[/tcp|/udp]. */
int berth_cmd_check_port(const char *cmd, const char *spec);
/* pod.run; the new pod's id in *ret_id. Errors reported, 1 returned. */
int berth_cmd_pod_create(const char *socket_path, const char *cmd, const struct pod_spec *spec,
			 char **ret_id);

/* ---- container logs (tools/berth-logs.c) ---- */

struct log_options {
	bool follow;
	bool timestamps;
	long tail;	  /* lines from the end, -1: all */
	int64_t since_ns; /* records before this time are skipped; 0: none */
	int signal_fd;	  /* follow: readable when berth is to stop following, or -1 */
};

struct log_source {
	const char *container_id;
	const char *log_path;
	const char *prefix; /* "name | " before each line, or NULL */
};

/* Prints the sources' records (stdout records to stdout, stderr ones to stderr). Following ends
 * once each source's container has exited and its file is drained, or when signal_fd becomes
 * readable: then *ret_signal is the signal read (else 0). */
int berth_logs_print(const char *socket_path, const struct log_source *src, size_t n,
		     const struct log_options *o, int *ret_signal, struct berth_error **err);
/* --since: an RFC 3339 time or a duration back from now ("10s", "5m", "2h"); usage error 2. */
int berth_logs_parse_since(const char *cmd, const char *s, int64_t *ret_ns);
/* logs' and pod logs' options ([-f] [--tail N|all] [--since T] [--timestamps], T an RFC 3339
 * time or a duration back from now: "10s", "5m", "2h"; and `what`, one positional argument): 0 with that argument (argv's) in *ret_target, or the usage status. */
int berth_logs_parse_args(int argc, char **argv, int i, const char *cmd, const char *what,
			  struct log_options *ret, const char **ret_target);

#endif
