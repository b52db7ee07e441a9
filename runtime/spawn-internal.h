/* Starting a process inside a container: the container's init (create/run) or an extra process
 * (exec).
 *
 * spawn_process clone3()s the child straight into its namespaces and cgroup and returns its
 * {pid, pidfd} and the parent's end of a sync socket. The child sets everything up (for the init:
 * the whole rootfs), then reports READY or an error on the socket and waits for GO, which the
 * parent sends once it has recorded the process (spawn_release). After GO the child execs at once,
 * or, for create, first waits for `start` on the barrier socket. A failed exec is reported on the
 * socket the waiter holds (the sync socket, or start's connection); a successful one closes it.
 */
#ifndef BERTH_RUNTIME_SPAWN_INTERNAL_H
#define BERTH_RUNTIME_SPAWN_INTERNAL_H

#include "base/error.h"
#include "runtime/config-internal.h"

#include <stdbool.h>
#include <sys/types.h>

enum { NS_JOIN_MAX = 8 };

struct spawn_request {
	const struct oci_config *config;   /* the container's config */
	const struct oci_process *process; /* what to run */
	const char *rootfs;                /* init: absolute host path of the rootfs; exec: NULL */
	const char *bundle;                /* for bind sources relative to the bundle */
	int clone_flags;                   /* CLONE_NEW* created at clone time */
	bool new_cgroup_ns;                /* unshared by the child, once inside its cgroup */
	int join_fds[NS_JOIN_MAX];         /* namespace fds the child joins (-1 ends the list) */
	int exec_pidfd;                    /* exec: the init's pidfd, whose namespaces are joined */
	int exec_ns_flags;
	int cgroup_fd;       /* -1: stay in the caller's cgroup */
	int console_fd;      /* connected console socket, or -1 */
	int seccomp_listener_fd; /* connected to linux.seccomp.listenerPath, or -1 */
	int start_listen_fd; /* create: the barrier socket, or -1 */
	const int *stdio;    /* 3 fds that become the process's 0, 1, 2; NULL: inherit ours */
	unsigned preserve_fds;
	bool no_pivot;
};

struct spawned {
	pid_t pid;
	int pidfd;
	int sync_fd;
};

int spawn_process(const struct spawn_request *rq, struct spawned *ret, struct berth_error **err);
/* Runs the runtime-side create hooks (prestart, createRuntime) when the child asks, and returns
 * the state JSON its createContainer hooks read. */
typedef int (*spawn_hooks_cb)(void *userdata, char **ret_state, struct berth_error **err);
/* Waits for the child's READY (or its error), serving its hooks request on the way. */
int spawn_wait_ready(int sync_fd, spawn_hooks_cb hooks_cb, void *userdata,
		     struct berth_error **err);
/* GO; start_state (or NULL) is what the child's startContainer hooks and seccomp agent read; pid
 * is the child as the runtime sees it. */
int spawn_release(int sync_fd, pid_t pid, const char *start_state, struct berth_error **err);
/* Reads the exec outcome from fd: EOF means the program is running. */
int spawn_wait_exec(int fd, struct berth_error **err);
/* setns/unshare of pid and time namespaces change where the caller's *children* go: the
 * caller saves its own before, and restores them once the child exists, so nothing it forks
 * later (a library user's threads and children included) lands in a container's namespace. */
struct children_ns {
	int pid_fd;
	int time_fd;
};
int children_ns_save(struct children_ns *s, struct berth_error **err);
void children_ns_restore(struct children_ns *s);

/* Closes pidfd and sync_fd. */
void spawned_clear(struct spawned *s);

/* In the child: the idmapped mount the runtime built for mounts[index], or -1. */
int spawn_child_idmap_fd(size_t index);
/* Runs in the child once the mounts are in place: asks the parent to run prestart and
 * createRuntime hooks, then runs createContainer hooks. */
int spawn_child_create_hooks(const struct spawn_request *rq, struct berth_error **err);
/* Runs in the child: the container's filesystem, up to and including pivot_root and the
 * post-pivot steps (devices, console, sysctls, masked and read-only paths). */
int rootfs_setup(const struct spawn_request *rq, struct berth_error **err);
/* Allocates a pty from the container's /dev/ptmx, sends the master over the console socket and
 * makes the slave the controlling terminal and stdio. */
int terminal_setup(const struct spawn_request *rq, bool bind_console, struct berth_error **err);
/* Checks that resolving path (absolute, container view) inside rootfd never climbs out through a
 * relative symlink. Missing components end the check (they will be created). */
int path_check_no_escape(int rootfd, const char *path, struct berth_error **err);

#endif
