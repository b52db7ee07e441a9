/* The CRI log writer: a container's stdout and stderr as kubelet reads them.
 *
 * Every record is one line, written with one writev(2) on an O_APPEND file:
 *   <RFC 3339 time, UTC, 9 fraction digits>Z <stdout|stderr> <P|F> <text>\n
 * A complete line of the container's output is one F record (its newline is the record's). A
 * line longer than line_max is cut into P records of line_max bytes and a final F record. Bytes
 * after the last newline wait in a per-stream buffer for the rest of their line; at the end of
 * a stream (crilog_end_stream) what is left becomes an F record, as containerd writes it.
 *
 * Rotation by size: when a record would take the file past max_size, path.(N-2) moves to
 * path.(N-1), ..., path to path.1 (the oldest falls off, N = max_files counts the live file) and a
 * fresh path is opened. crilog_reopen starts a new file at path after someone moved it away.
 *
 * Writing never blocks the caller for long and never fails it: a record that cannot be written
 * (ENOSPC, the file gone) is counted in crilog_drops and reported once in the program's log, and
 * the writer tries again with the next record. crilog_free closes the file; what crilog_open
 * created (the file, missing parent directories) stays unless crilog_remove_created is called
 * first. */
#ifndef BERTH_SHIM_CRILOG_INTERNAL_H
#define BERTH_SHIM_CRILOG_INTERNAL_H

#include "base/error.h"

#include <stddef.h>
#include <stdint.h>

enum crilog_stream { CRILOG_STDOUT, CRILOG_STDERR };

struct crilog_options {
	const char *path;   /* required; missing parent directories are created 0755 */
	uint64_t max_size;  /* 0: never rotate */
	unsigned max_files; /* >= 2 when max_size is set */
	size_t line_max;    /* > 0 */
};

struct crilog;

int crilog_open(const struct crilog_options *o, struct crilog **ret, struct berth_error **err);
void crilog_write(struct crilog *l, enum crilog_stream s, const char *data, size_t len);
/* The stream has ended: its pending partial line (if any) becomes an F record. */
void crilog_end_stream(struct crilog *l, enum crilog_stream s);
int crilog_reopen(struct crilog *l, struct berth_error **err);
/* Records that could not be written. */
uint64_t crilog_drops(const struct crilog *l);
/* Removes the file and the directories crilog_open created (a start-up that failed). */
void crilog_remove_created(struct crilog *l);
struct crilog *crilog_free(struct crilog *l);
void crilog_freep(struct crilog **l);

#endif
