/* berth's OCI runtime: a config.json in a bundle becomes a running container.
 *
 * Containers live in a state root (berth-runtime's --root, default /run/berth/runtime), one
 * directory per id holding state.json. The lifecycle is the runtime-spec's: create leaves the
 * container's init waiting at a barrier with everything set up but the program not yet exec'd
 * ("created"); start releases it ("running"); once the init has exited the container is
 * "stopped"; delete kills what is left and removes every trace (state, cgroup; mounts live only
 * in the container's own mount namespace and go with its last process).
 *
 * Every function returns >= 0 on success and -errno on failure with *err set (the caller frees
 * it). Structures returned through ret_ parameters belong to the caller.
 */
#ifndef BERTH_RUNTIME_H
#define BERTH_RUNTIME_H

#include "base/error.h"
#include "cgroup/cgroup.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define RUNTIME_DEFAULT_ROOT "/run/berth/runtime"
#define RUNTIME_OCI_VERSION "1.3.0"

struct runtime_create_options {
	const char *state_root;     /* required */
	const char *id;             /* required: [A-Za-z0-9][A-Za-z0-9_.+-]*, at most 1024 bytes */
	const char *bundle;         /* required: the directory holding config.json */
	const char *pid_file;       /* written with the init's pid, or NULL */
	const char *console_socket; /* AF_UNIX socket that receives the pty master, or NULL */
	unsigned preserve_fds;      /* fds 3..3+N-1 are passed to the container */
	const int *stdio;           /* 3 fds (any numbers, 0..2 too) that become the init's
				       0, 1 and 2; NULL: it inherits the caller's. Ignored
				       with process.terminal (the pty is its stdio) */
	bool no_pivot;              /* MS_MOVE + chroot instead of pivot_root (rootfs on ramfs) */
	bool detach;                /* run: return once the container runs */
	bool systemd_cgroup;        /* cgroupsPath is "slice:prefix:name" (laid out without D-Bus) */
	bool allow_missing_controllers; /* a limit whose controller the host lacks: warn, not fail */
};

/* A container's state, as runc reports it. */
struct runtime_state {
	char *id;
	pid_t pid;          /* 0 when stopped */
	const char *status; /* "creating", "created", "running", "paused", "stopped" (static) */
	char *bundle;
	char *rootfs;
	char *created; /* RFC 3339 with nanoseconds */
	char *owner;
	char *annotations_json; /* JSON object text, or NULL */
};

struct runtime_exec_options {
	const char *state_root;
	const char *id;
	const char *process_file; /* -p: a runtime-spec process object; replaces the fields below */
	const char *process_json; /* the same as JSON text (instead of process_file) */
	char *const *args;        /* the command when no process_file */
	char *const *env;         /* KEY=VALUE added to the container's environment */
	const char *cwd;          /* NULL: the container's cwd */
	bool has_user;
	uid_t uid;
	gid_t gid;
	bool tty;
	bool detach;
	const char *pid_file;
	const char *console_socket;
	unsigned preserve_fds;
	const int *stdio; /* as for create: the process's 0, 1, 2 (ignored with a terminal) */
	/* detach: the process's pid and pidfd (the caller's to close) go here. It stays the
	 * caller's child, for the caller to reap. */
	pid_t *ret_pid;
	int *ret_pidfd;
};

BERTH_EXPORT int runtime_container_create(const struct runtime_create_options *o,
					  struct berth_error **err);
/* create + start. In the foreground it waits for the container's init, deletes the container
 * and stores its exit status (128+N for a signal) in *ret_status; detached it returns at once. */
BERTH_EXPORT int runtime_container_run(const struct runtime_create_options *o, int *ret_status,
				       struct berth_error **err);
BERTH_EXPORT int runtime_container_start(const char *state_root, const char *id,
					 struct berth_error **err);
BERTH_EXPORT int runtime_container_state(const char *state_root, const char *id,
					 struct runtime_state **ret, struct berth_error **err);
BERTH_EXPORT int runtime_container_kill(const char *state_root, const char *id, int sig, bool all,
				       struct berth_error **err);
BERTH_EXPORT int runtime_container_delete(const char *state_root, const char *id, bool force,
					  struct berth_error **err);
/* Every container under state_root, sorted by id. */
BERTH_EXPORT int runtime_container_list(const char *state_root, struct runtime_state ***ret,
					size_t *ret_n, struct berth_error **err);
/* The container's processes (host pids). */
BERTH_EXPORT int runtime_container_pids(const char *state_root, const char *id, pid_t **ret,
					size_t *ret_n, struct berth_error **err);
/* Freezes (pause) or thaws the container's cgroup, waiting until the kernel is done. */
BERTH_EXPORT int runtime_container_pause(const char *state_root, const char *id, bool pause,
					 struct berth_error **err);
/* Applies a runtime-spec linux.resources object (JSON text) to the container's cgroup. */
BERTH_EXPORT int runtime_container_update(const char *state_root, const char *id,
					  const char *resources_json, struct berth_error **err);
/* The container's cgroup counters (the caller clears them with cgroup_stats_clear). */
BERTH_EXPORT int runtime_container_stats(const char *state_root, const char *id,
					 struct cgroup_stats *ret, struct berth_error **err);
/* runc's stats event: {"type":"stats","id":…,"data":{"cpu":…,"memory":…,"pids":…}}. */
BERTH_EXPORT int runtime_stats_to_json(const char *id, const struct cgroup_stats *st, char **ret);
/* Calls cb with each event's JSON: stats once (once), or stats every interval_ms and an "oom"
 * event for every OOM kill, until the container stops or cb returns < 0. */
typedef int (*runtime_event_cb)(const char *json, void *userdata);
BERTH_EXPORT int runtime_container_events(const char *state_root, const char *id, bool once,
					  int interval_ms, runtime_event_cb cb, void *userdata,
					  struct berth_error **err);
/* Runs a new process in a created or running container. Foreground: *ret_status as for run;
 * detached: 0, once the program is exec'd (ret_pid, ret_pidfd). */
BERTH_EXPORT int runtime_container_exec(const struct runtime_exec_options *o, int *ret_status,
					struct berth_error **err);

BERTH_EXPORT struct runtime_state *runtime_state_free(struct runtime_state *s);
BERTH_EXPORT void runtime_state_freep(struct runtime_state **s);
/* runc's state JSON: ociVersion, id, pid, status, bundle, rootfs, created, owner, annotations. */
BERTH_EXPORT int runtime_state_to_json(const struct runtime_state *s, bool pretty, char **ret);

/* Re-executes the calling program from a sealed memfd copy of its executable, unless it already
 * runs from one (then it returns 0). Call it first thing in a program that creates containers or
 * execs into them (runc CVE-2019-5736); it only returns on failure. */
BERTH_EXPORT int runtime_exe_reexec_sealed(char *const argv[], char *const envp[],
					   struct berth_error **err);
BERTH_EXPORT bool runtime_exe_is_sealed(void);

/* A default config.json (runc's `spec`): busybox-friendly, safe defaults berth supports. */
BERTH_EXPORT int runtime_spec_generate(bool rootless, char **ret, struct berth_error **err);
/* The runtime-spec features document. */
BERTH_EXPORT int runtime_features_generate(char **ret, struct berth_error **err);
/* "KILL", "SIGKILL", "sigkill" or "9"; -EINVAL when unknown. */
BERTH_EXPORT int runtime_signal_parse(const char *s);

#endif
