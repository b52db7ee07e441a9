/* The on-disk record of a container under the state root: <root>/<id>/state.json, written
 * atomically by create, plus <root>/<id>/start, the barrier socket that exists from create until
 * start. The status is derived, never stored: no state.json yet is "creating"; an init that is
 * gone (or a different process under the same pid, told apart by its start time) is "stopped";
 * otherwise the barrier socket says "created" and its absence "running". */
#ifndef BERTH_RUNTIME_STATE_INTERNAL_H
#define BERTH_RUNTIME_STATE_INTERNAL_H

#include "base/error.h"
#include "runtime/runtime.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define STATE_FILE "state.json"
#define START_SOCKET "start"

struct stored_state {
	char *id;
	pid_t pid;
	uint64_t pid_start; /* field 22 of /proc/PID/stat */
	char *bundle;
	char *rootfs;
	char *created;
	char *owner;
	char *annotations_json;
	char *cgroup_path; /* NULL: no cgroup (no cgroup2 hierarchy on the host) */
	char *hooks_json;  /* the config's hooks, for poststart and poststop; NULL: none */
	bool own_pid_ns;
};

int state_id_check(const char *id, struct berth_error **err);
int state_root_open(const char *root, bool create, int *ret_fd, struct berth_error **err);
/* Opens <root>/<id> and takes its lock (exclusive for changes, shared to read). */
int state_dir_open(int root_fd, const char *id, bool exclusive, int *ret_fd,
		   struct berth_error **err);
int state_save(int dir_fd, const struct stored_state *s, struct berth_error **err);
int state_load(int dir_fd, const char *id, struct stored_state **ret, struct berth_error **err);
const char *state_status(int dir_fd, const struct stored_state *s);
/* The process's start time, or 0 when it is gone or a zombie. */
uint64_t proc_start_time(pid_t pid);
/* A pidfd of the container's init, or -ESRCH when it is gone: the start time, checked after
 * pidfd_open, proves the pidfd is the init and not a process that reused its pid. */
int state_open_init_pidfd(const struct stored_state *s);
int state_to_public(int dir_fd, const struct stored_state *s, struct runtime_state **ret);
struct stored_state *stored_state_free(struct stored_state *s);
void stored_state_freep(struct stored_state **s);
/* Runs the stored poststart or poststop hooks (warnings only, as the spec says). */
void state_run_hooks_warn(const struct stored_state *s, int kind, const char *status);
/* Current time, RFC 3339 with nanoseconds, UTC. */
int format_rfc3339_now(char **ret);

#endif
