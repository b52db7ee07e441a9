/* Pinned namespaces: created by a short-lived child (or, for a pod PID namespace, by the pod's
 * init, which stays) and kept alive by bind mounts of /proc/PID/ns/{net,ipc,uts,pid} onto empty files. */
#ifndef BERTH_NETNS_NS_INTERNAL_H
#define BERTH_NETNS_NS_INTERNAL_H
#include "base/error.h"
#include <stdbool.h>

enum {
	NS_NET = 1 << 0,
	NS_IPC = 1 << 1,
	NS_UTS = 1 << 2,
	NS_PID = 1 << 3,
};

/* Creates the namespaces `which` names and pins each at dir/net, dir/ipc, dir/uts, dir/pid (dir
 * exists). hostname (not NULL with NS_UTS) is set in the new UTS namespace; the new network
 * namespace gets its loopback up. With NS_PID the pod's init (pid 1 of the new PID namespace, a
 * tiny process that only reaps, in its own session, with every signal but SIGKILL ignored) keeps
 * running and *ret_init_pid receives its pid (in the caller's PID namespace); else 0. On failure
 * nothing is left pinned or running. */
int ns_pin(const char *dir, unsigned which, const char *hostname, int *ret_init_pid, struct berth_error **err);

/* Unmounts and removes dir's namespace files (whichever exist), and kills init_pid when it is
 * still the pod's init (its PID namespace is the one pinned at dir/pid); when init_pid is 0 or
 * stale, the pinned PID namespace is asked for its init (Linux 6.10's NS_GET_TGID_FROM_PIDNS),
 * so a creator killed before it recorded the pid leaves no init behind. Idempotent. */
int ns_unpin(const char *dir, int init_pid, struct berth_error **err);

/* Brings up the loopback interface of the caller's (thread's) network namespace; -errno. */
int ns_loopback_up(void);

/* Runs fn on a new thread that has joined the network namespace at path; the caller's own
 * namespaces never change. Returns fn's result. */
int ns_run_in_netns(const char *path, int (*fn)(void *opaque, struct berth_error **err), void *opaque,
		    struct berth_error **err);
#endif
