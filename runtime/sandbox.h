/* libberth's sandbox API: run one program in a container, from C, without a daemon.
 *
 * Installed as <berth/sandbox.h>; compile with `pkg-config --cflags --libs libberth`. Every type
 * is opaque except struct berth_stats; every symbol is berth_<object>_<verb>; the library's
 * SONAME is libberth.so.0 and only the functions below are exported (version node LIBBERTH_0).
 *
 * Lifecycle. A struct berth_spec describes what to run: berth_spec_new() starts from berth's
 * defaults (the runtime's default config: new mount, pid, ipc, uts, network and cgroup
 * namespaces, Docker's default capabilities and seccomp profile, no_new_privs, masked /proc
 * paths), berth_spec_from_oci_config() from an OCI runtime-spec config.json; the berth_spec_set_*
 * functions change it, and the caller frees it with berth_spec_free() whenever it likes (a
 * container keeps nothing of it). berth_container_create() writes an OCI bundle under the state
 * root and creates the container: its init is set up (rootfs, namespaces, cgroup, limits) and
 * waits, "created". berth_container_start() makes it exec the program, "running".
 * berth_container_wait() reaps it once it exits, "stopped", and reports its exit code or signal;
 * the cgroup and its counters (berth_container_stats()) stay until berth_container_destroy(),
 * which kills whatever is left, and removes the cgroup, the runtime state and the bundle.
 * berth_container_free() frees the handle, and only the handle: a container not destroyed stays
 * (berth-runtime --root STATE_ROOT/runtime list shows it).
 *
 * Processes. The container's init is a child of the calling process: the caller must not reap
 * it behind the library's back (no waitpid(-1, ...), no SIGCHLD set to SIG_IGN) and should call
 * berth_container_wait() or berth_container_destroy(), or the exited init stays a zombie. Calls
 * on one container are not to be made from two threads at once; calls on different containers
 * may be (the library serialises what it must). The init begins as a clone3() copy of the
 * calling thread, which unlike fork() does not take libc's locks first: create containers before
 * other threads start, or while they do not allocate. The library needs root (CAP_SYS_ADMIN).
 *
 * Errors. A function returns >= 0 on success and -errno on failure; with a non-NULL err it then
 * stores an error object in *err (which must be NULL on entry) whose message names the field,
 * path or setting at fault ("berth_spec_set_env: env[2]: \"X\" is not KEY=VALUE"). The caller
 * frees it with berth_error_free().
 */
#ifndef BERTH_SANDBOX_H
#define BERTH_SANDBOX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BERTH_API __attribute__((visibility("default")))

struct berth_error;
struct berth_spec;
struct berth_container;

/* ---- errors ---- */

/* "context: cause", never NULL for an error the library returned. */
BERTH_API const char *berth_error_message(const struct berth_error *e);
/* The positive errno value the failing function returned negated. */
BERTH_API int berth_error_errno(const struct berth_error *e);
/* Accepts NULL; returns NULL. */
BERTH_API struct berth_error *berth_error_free(struct berth_error *e);

/* ---- the spec ---- */

/* Namespaces a container can get, for berth_spec_set_namespaces(). A new network namespace
 * has only a loopback interface, which is brought up. Mount is required. */
enum berth_namespace {
	BERTH_NAMESPACE_MOUNT = 1 << 0,
	BERTH_NAMESPACE_PID = 1 << 1,
	BERTH_NAMESPACE_IPC = 1 << 2,
	BERTH_NAMESPACE_UTS = 1 << 3,
	BERTH_NAMESPACE_NET = 1 << 4,
	BERTH_NAMESPACE_CGROUP = 1 << 5,
	BERTH_NAMESPACE_TIME = 1 << 6,
};
#define BERTH_NAMESPACE_DEFAULT                                                                    \
	(BERTH_NAMESPACE_MOUNT | BERTH_NAMESPACE_PID | BERTH_NAMESPACE_IPC | BERTH_NAMESPACE_UTS |  \
	 BERTH_NAMESPACE_NET | BERTH_NAMESPACE_CGROUP)

/* berth's defaults (see the top); args and a rootfs (or image) must still be set. NULL when out
 * of memory. */
BERTH_API struct berth_spec *berth_spec_new(void);
/* From an OCI runtime-spec config: config is JSON text (starting with '{'), the path of a
 * config.json, or the path of a bundle directory holding one; a relative root.path is taken
 * relative to the file's directory. The config is validated as berth-runtime would; setters
 * then override its fields. A config asking for a terminal is refused (use stdio fds). */
BERTH_API int berth_spec_from_oci_config(const char *config, struct berth_spec **ret,
					 struct berth_error **err);
/* Accepts NULL; returns NULL. */
BERTH_API struct berth_spec *berth_spec_free(struct berth_spec *s);

/* The container's root: an existing directory, used in place (the container writes into it
 * unless it is read-only). Replaces an image set before. */
BERTH_API int berth_spec_set_rootfs(struct berth_spec *s, const char *dir,
				    struct berth_error **err);
/* The container's root from an image in berth's image store (store_root NULL: /var/lib/berth):
 * an overlay of the image's layers with a fresh writable layer (mounted in the caller's mount
 * namespace, under the bundle), made by create and removed by
 * destroy. The image's own config (Entrypoint, Cmd, Env, WorkingDir, User) is not applied: set
 * args, env, cwd and user here. Replaces a rootfs set before. */
BERTH_API int berth_spec_set_image(struct berth_spec *s, const char *store_root, const char *name,
				   struct berth_error **err);
/* A NULL-terminated argv; argv[0] is looked up in the container's PATH unless it has a '/'. */
BERTH_API int berth_spec_set_args(struct berth_spec *s, const char *const *argv,
				  struct berth_error **err);
/* A NULL-terminated list of KEY=VALUE, replacing the environment (the default holds PATH). */
BERTH_API int berth_spec_set_env(struct berth_spec *s, const char *const *env,
				 struct berth_error **err);
/* An absolute path inside the container (default "/"). */
BERTH_API int berth_spec_set_cwd(struct berth_spec *s, const char *cwd, struct berth_error **err);
/* The numeric user and group the program runs as (default 0, 0), without supplementary groups. */
BERTH_API int berth_spec_set_user(struct berth_spec *s, uid_t uid, gid_t gid,
				  struct berth_error **err);
/* Needs a UTS namespace (default "berth"). */
BERTH_API int berth_spec_set_hostname(struct berth_spec *s, const char *hostname,
				      struct berth_error **err);
/* cgroup v2 limits (memory.max, cpu.max, pids.max). A limit whose controller the host's cgroup2
 * hierarchy lacks makes create fail, naming it: a limit is never silently dropped. */
BERTH_API int berth_spec_set_memory_limit(struct berth_spec *s, uint64_t bytes,
					  struct berth_error **err);
/* quota_us of CPU time per period_us (0: 100000); 1.5 CPUs is 150000 per 100000. */
BERTH_API int berth_spec_set_cpu_limit(struct berth_spec *s, uint64_t quota_us, uint64_t period_us,
				       struct berth_error **err);
BERTH_API int berth_spec_set_pids_limit(struct berth_spec *s, uint64_t max,
					struct berth_error **err);
/* A set of enum berth_namespace flags (default BERTH_NAMESPACE_DEFAULT); namespaces left out are
 * shared with the caller. Replaces the list of an OCI config (namespaces it joined by path
 * included). */
BERTH_API int berth_spec_set_namespaces(struct berth_spec *s, unsigned namespaces,
					struct berth_error **err);
/* The root mounted read-only (default: writable). */
BERTH_API int berth_spec_set_readonly_rootfs(struct berth_spec *s, bool readonly,
					     struct berth_error **err);
/* Binds the host path source (a directory or a file) onto destination (absolute, inside the
 * container; created if missing), recursively, nosuid and nodev, read-only if asked. */
BERTH_API int berth_spec_add_bind_mount(struct berth_spec *s, const char *source,
					const char *destination, bool readonly,
					struct berth_error **err);
/* The fds that become the program's stdin, stdout and stderr (the caller keeps its own; -1:
 * /dev/null). By default it inherits the caller's 0, 1 and 2. There is no terminal. */
BERTH_API int berth_spec_set_stdio(struct berth_spec *s, int in_fd, int out_fd, int err_fd,
				   struct berth_error **err);
/* enabled: Docker's default seccomp profile (the default of berth_spec_new()); disabled: no
 * seccomp filter at all. For an OCI config, enabling replaces its linux.seccomp. */
BERTH_API int berth_spec_set_default_seccomp(struct berth_spec *s, bool enabled,
					     struct berth_error **err);
/* enabled: Docker's default capability set without CAP_MKNOD (berth has no device cgroup yet;
 * the default of berth_spec_new()); disabled: no
 * capabilities at all, even for uid 0. For an OCI config, enabling replaces its set. */
BERTH_API int berth_spec_set_default_capabilities(struct berth_spec *s, bool enabled,
						  struct berth_error **err);

/* ---- the container ---- */

/* Creates a container from spec: writes the bundle STATE_ROOT/bundles/ID/ (with the image's
 * root under it when the spec names an image) and the runtime's state STATE_ROOT/runtime/ID/,
 * and leaves the container "created". state_root NULL: /run/berth/sandbox. id NULL: a random
 * one ("sandbox-" and 16 hex digits); else letters, digits and _.+- (not first), unique in the
 * state root. On failure nothing is left behind. */
BERTH_API int berth_container_create(const char *state_root, const char *id,
				     const struct berth_spec *spec, struct berth_container **ret,
				     struct berth_error **err);
/* Runs the program (once). Fails, naming it, when it cannot be executed. */
BERTH_API int berth_container_start(struct berth_container *c, struct berth_error **err);
/* Waits up to timeout_ms (< 0: for ever, 0: a poll) for the init to exit and reaps it; -ETIMEDOUT
 * when it still runs. On success either *ret_exit_code is its exit code and *ret_signal 0, or
 * *ret_signal the signal that killed it and *ret_exit_code -1 (either pointer may be NULL).
 * Once it has returned 0, it returns the same again. */
BERTH_API int berth_container_wait(struct berth_container *c, int timeout_ms, int *ret_exit_code,
				   int *ret_signal, struct berth_error **err);
/* Signals the container's init (in a pid namespace, its death takes every other process). */
BERTH_API int berth_container_kill(struct berth_container *c, int sig, struct berth_error **err);

enum berth_stats_valid {
	BERTH_STATS_CPU = 1 << 0,
	BERTH_STATS_MEMORY = 1 << 1, /* memory_current */
	BERTH_STATS_MEMORY_PEAK = 1 << 2,
	BERTH_STATS_PIDS = 1 << 3,
};
/* Counters of the container's cgroup. A field whose controller the host does not offer is 0
 * and its bit is clear in valid. reserved[] is zero: room for counters to come. */
struct berth_stats {
	uint32_t valid; /* enum berth_stats_valid */
	uint64_t cpu_usage_usec;
	uint64_t memory_current; /* bytes */
	uint64_t memory_peak;    /* bytes, since the cgroup was made */
	uint64_t pids_current;
	uint64_t reserved[12];
};
/* Readable from create until destroy, also after the program exited. */
BERTH_API int berth_container_stats(struct berth_container *c, struct berth_stats *ret,
				    struct berth_error **err);
/* Kills what is left, reaps the init, removes the cgroup, the runtime's state and the bundle
 * (and the image root). Afterwards only berth_container_free() may be called. */
BERTH_API int berth_container_destroy(struct berth_container *c, struct berth_error **err);
/* Frees the handle (accepts NULL; returns NULL); see the top for a container not destroyed. */
BERTH_API struct berth_container *berth_container_free(struct berth_container *c);

BERTH_API const char *berth_container_id(const struct berth_container *c);
/* The init's pid, as the caller sees it. */
BERTH_API pid_t berth_container_pid(const struct berth_container *c);
/* A pidfd of the init (owned by the handle): it polls readable once the init has exited, for
 * callers with an event loop (then call berth_container_wait with timeout 0). */
BERTH_API int berth_container_pidfd(const struct berth_container *c);

#ifdef __cplusplus
}
#endif

#endif
