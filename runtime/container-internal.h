/* Shared by create/run/start/kill/delete (container.c) and exec (exec.c). */
#ifndef BERTH_RUNTIME_CONTAINER_INTERNAL_H
#define BERTH_RUNTIME_CONTAINER_INTERNAL_H

#include "base/error.h"
#include "runtime/config-internal.h"

#include <stdbool.h>
#include <sys/types.h>

/* Reads and validates <bundle>/config.json. */
int load_bundle_config(const char *bundle, struct oci_config **ret, struct berth_error **err);
/* connect(2) to a unix socket path of any length. */
int unix_connect(const char *path, struct berth_error **err);
/* Writes the pid to path atomically (relative paths are relative to the cwd). */
int write_pid_file(const char *path, pid_t pid, struct berth_error **err);
/* Waits for a child by pidfd; returns its status as a shell would (128+N for signal N). */
int wait_exit_status(int pidfd, struct berth_error **err);
/* Forwards the usual termination signals to the process behind pidfd while it runs. */
void forward_signals_to(int pidfd);

struct stored_state;
/* Opens <root>/<id> (locked) and loads its state; "still being created" is an error. */
int open_and_load(const char *state_root, const char *id, bool exclusive, int *ret_dir_fd,
		  struct stored_state **ret, struct berth_error **err);

#endif
