/* Clients of berth-shim: start one per container, then drive it over its socket.
 *
 * A shim owns one container from create to exit: it is started detached (its own session; the
 * caller never reaps it), creates the container through libberth in-process, is the parent and
 * subreaper of its processes, holds its stdio and writes it to a CRI-format log, records its
 * exit in <dir>/exit.json, and serves <dir>/shim.sock (shim/protocol.h). It survives its
 * client: a daemon that restarts reconnects with the same directory. Once the container has
 * exited, shim_shutdown() makes it clean up the runtime state and leave; the directory (with the
 * exit record) is the caller's to remove (shim_dir_remove).
 *
 * Every function returns >= 0 on success and -errno on failure with *err set (the caller frees
 * it). A shim that is gone (killed, or shut down) gives -ENOTCONN from the calls that need it;
 * shim_status() then falls back to the exit record, and reports -ESRCH only when there is none
 * (the shim died before its container's exit was recorded). */
#ifndef BERTH_SHIM_H
#define BERTH_SHIM_H

#include "base/error.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SHIM_DEFAULT_PATH "/usr/libexec/berth/berth-shim"
#define SHIM_LOG_LINE_MAX_DEFAULT (16 * 1024)

struct shim_spawn_options {
	const char *shim_path;    /* the berth-shim executable (NULL: SHIM_DEFAULT_PATH) */
	const char *dir;          /* required: the shim's directory; created 0700, must not exist */
	const char *id;           /* required: the container's id */
	const char *bundle;       /* required: the OCI bundle (config.json; process.terminal asks
				     for a pty) */
	const char *runtime_root; /* required: the runtime's state root */
	const char *log_path;     /* CRI log file (created 0640 with its directory), or NULL */
	uint64_t log_max_size;    /* rotate when the file would pass this many bytes; 0: never */
	unsigned log_max_files;   /* files kept, the live one included (>= 2 when rotating) */
	size_t log_line_max;      /* longer lines are split into P parts; 0: the default */
	bool stdin_open;          /* the container gets a stdin pipe that attach clients feed */
	bool stdin_once;          /* close the container's stdin when the first attach ends */
	bool systemd_cgroup;      /* cgroupsPath is "slice:prefix:name" */
	const char *log_level;    /* the shim's own log (<dir>/shim.log): "error".."debug"; NULL:
				     "info" */
};

enum shim_state { SHIM_STATE_CREATED, SHIM_STATE_RUNNING, SHIM_STATE_STOPPED };

struct shim_status {
	enum shim_state state;
	pid_t pid;           /* the container's init (host pid) */
	int64_t created_ns;  /* times: nanoseconds since the epoch; 0 when not yet */
	int64_t started_ns;
	int64_t finished_ns;
	int exit_code;       /* 128+N when killed by signal N */
	int signal;
	bool oom_killed;
};

/* Starts a shim, detached, and returns once the container is created (its init waiting to be
 * started) and the shim serves its socket, or with the shim's own error. *ret_shim_pid is the
 * shim's pid (not the caller's child). On failure nothing is left: no directory, process or
 * runtime state. */
int shim_spawn(const struct shim_spawn_options *o, pid_t *ret_shim_pid, struct shim_status *ret,
	       struct berth_error **err);

int shim_status(const char *dir, struct shim_status *ret, struct berth_error **err);
int shim_start(const char *dir, struct berth_error **err);
int shim_kill(const char *dir, int sig, bool all, struct berth_error **err);
int shim_resize(const char *dir, unsigned width, unsigned height, struct berth_error **err);
int shim_reopen_log(const char *dir, struct berth_error **err);
int shim_update(const char *dir, const char *resources_json, struct berth_error **err);
/* Waits (timeout_ms < 0: for ever) for the container to exit; -ETIMEDOUT when it has not. */
int shim_wait(const char *dir, int timeout_ms, struct shim_status *ret, struct berth_error **err);
/* For an event loop: sends "wait" and returns the connected fd, readable once the container
 * has exited; shim_wait_finish reads the answer and closes the fd. */
int shim_wait_open(const char *dir, int *ret_fd, struct berth_error **err);
int shim_wait_finish(int fd, struct shim_status *ret, struct berth_error **err);
/* Stopped container: the shim removes its runtime state and exits; returns once it is gone. */
int shim_shutdown(const char *dir, struct berth_error **err);
/* Kills whatever still runs of a shim and its container (a shim that died, a half-made
 * container), removes the runtime state, then the directory. Idempotent. */
int shim_dir_remove(const char *dir, const char *runtime_root, const char *id,
		    struct berth_error **err);
/* The exit record alone (no shim needed); -ENOENT when there is none. */
int shim_exit_read(const char *dir, struct shim_status *ret, struct berth_error **err);

/* Streams: attach and exec. The returned fd carries frames (shim/protocol.h). */
int shim_attach_open(const char *dir, bool in, bool out, bool errs, int *ret_fd, bool *ret_tty,
		     struct berth_error **err);
/* process_json: a runtime-spec process object. */
int shim_exec_open(const char *dir, const char *process_json, bool in, int *ret_fd,
		   pid_t *ret_pid, struct berth_error **err);
int shim_frame_write(int fd, int stream, const void *buf, size_t len, struct berth_error **err);
/* A frame's header (stream, then the payload's length big-endian), for callers that queue frames
 * and write them as the socket takes them. */
void shim_frame_header(unsigned char *h, int stream, size_t len); /* SHIM_FRAME_HEADER bytes */
/* Reads one frame: *ret_buf is malloc'd (NULL for an empty payload); returns 0, or -EPIPE at a
 * clean end of the stream. */
int shim_frame_read(int fd, int *ret_stream, char **ret_buf, size_t *ret_len,
		    struct berth_error **err);
/* Parses an exit frame's payload. */
int shim_exit_frame_parse(const char *buf, size_t len, struct shim_status *ret,
			  struct berth_error **err);

/* Runs an exec to the end, as ExecSync does: stdin_data (or NULL) is written then closed; output
 * is collected up to max_output bytes per stream (the rest is read and dropped, *ret_truncated
 * set); timeout_ms < 0 waits for ever, else the process is killed and -ETIMEDOUT returned. */
struct shim_exec_result {
	int exit_code;
	int signal;
	char *out;
	size_t out_len;
	char *errs;
	size_t errs_len;
	bool truncated;
};
int shim_exec_sync(const char *dir, const char *process_json, const char *stdin_data,
		   size_t stdin_len, size_t max_output, int timeout_ms,
		   struct shim_exec_result *ret, struct berth_error **err);
void shim_exec_result_clear(struct shim_exec_result *r);

const char *shim_state_name(enum shim_state s);

#endif
