/* The manager's insides, shared by manager.c (objects, locks, watches, events), pod.c,
 * container.c, image.c and recover.c.
 *
 * Locking: m->lock guards the tables and every object's mutable fields (rec, pid, flags) and is
 * held across the database write that records a state change, so the database and the events
 * follow the same order as the memory. It is never held across a call to a shim, the image store
 * or netns. Lifecycle calls on one object are serialised by the object's own op lock (a pod's is
 * a rwlock: container creates read-lock it, stop and remove write-lock it); the order is always
 * pod op lock, then container op lock, then m->lock. The loop thread takes none of them: objects
 * are reference-counted with atomics, and the loop only frees. */
#ifndef BERTH_CRI_MANAGER_INTERNAL_H
#define BERTH_CRI_MANAGER_INTERNAL_H

#include "cri/manager.h"
#include "image/image.h"
#include "netns/netns.h"
#include "shim/shim.h"

#include <pthread.h>

#define KILL_WAIT_MS 10000 /* how long a SIGKILLed container may take to be reaped */

struct mpod {
	unsigned refs;
	pthread_rwlock_t op;
	struct db_pod rec;
	struct pod_config cfg; /* fixed once created */
	char *cgroup;	       /* the pod's cgroupfs path, or NULL (no cgroup2 mounted) */
	char *cgroup_slice;    /* systemd driver: the pod's slice name, else NULL */
	bool own_cgroup;       /* berthd made it: removed with the pod */
	bool creating, removed;
};

struct mctr {
	unsigned refs;
	pthread_mutex_t op;
	struct db_container rec;
	pid_t pid;
	bool creating, removed;
	unsigned wait_failures;	 /* waits ended without an answer, in a row */
	char *shim_dir, *bundle; /* fixed */
};

struct loop_job;
struct watch;

struct manager {
	const struct berthd_config *cfg;
	uv_loop_t *loop;
	uv_async_t async;
	pthread_mutex_t lock;
	struct db *db;
	struct image_store *images;
	struct netns_config net;
	char *containers_dir, *shims_dir, *runtime_root, *pods_state;
	bool have_cgroup2;
	struct mpod **pods;
	size_t n_pods, cap_pods;
	struct mctr **ctrs;
	size_t n_ctrs, cap_ctrs;
	pthread_mutex_t qlock; /* the loop's job queue */
	struct loop_job *q_head, *q_tail;
	bool closing;
	struct watch *watches; /* loop thread only */
	manager_event_cb event_cb;
	void *event_userdata;
	struct manager_subscription *subs; /* loop thread only */
	bool dispatching;		   /* subs is being walked: unlinking waits */
	char *own_subnet4, *own_subnet6;   /* UpdateRuntimeConfig's pod CIDR (net.subnet*) */
	const char *crash_at; /* BERTHD_TEST_CRASH */
};

/* objects (manager.c) */
int mgr_new_id(char ret[MANAGER_ID_LEN + 1]);
int64_t mgr_now_ns(void);
bool mgr_valid_id(const char *id);
struct mpod *mpod_new(const char *id);
struct mctr *mctr_new(struct manager *m, const char *id, const char *pod_id);
struct mpod *mpod_ref(struct mpod *p);
void mpod_unref(struct mpod *p);
struct mctr *mctr_ref(struct mctr *c);
void mctr_unref(struct mctr *c);
/* Under m->lock: the object (not removed, not being created unless creating_too) or NULL. */
struct mpod *mpod_find(struct manager *m, const char *id, bool creating_too);
struct mctr *mctr_find(struct manager *m, const char *id, bool creating_too);
/* Locks, finds and refs; -ENOENT (with the message) when there is none. */
int mpod_get(struct manager *m, const char *id, struct mpod **ret, struct berth_error **err);
int mctr_get(struct manager *m, const char *id, struct mctr **ret, struct berth_error **err);
/* Under m->lock: the tables own one reference each. */
int mgr_add_pod(struct manager *m, struct mpod *p);
int mgr_add_ctr(struct manager *m, struct mctr *c);
void mgr_drop_pod(struct manager *m, struct mpod *p);
void mgr_drop_ctr(struct manager *m, struct mctr *c);
/* Under m->lock: the pod's containers, referenced (the caller unrefs each and frees v). */
int mgr_pod_containers(struct manager *m, const char *pod_id, struct mctr ***ret, size_t *ret_n);
int mgr_copy_container(const struct mctr *c, struct manager_container *ret);
/* Under m->lock: queues an event for the loop thread. */
void mgr_emit(struct manager *m, enum manager_event_type type, const struct mctr *c);
/* Starts watching a live container's shim for its exit (any thread). */
void mgr_watch(struct manager *m, struct mctr *c);
/* Records what the shim reported (state stopped), or that it died (st NULL): ShimDied. Takes
 * m->lock; a container already exited or removed is left alone. */
void mgr_container_exited(struct manager *m, struct mctr *c, const struct shim_status *st);
/* Under m->lock: a shim's created/running status copied in (state, pid, times). */
void mgr_container_running(struct manager *m, struct mctr *c, const struct shim_status *st);
/* Asks the shim what became of the container and records it: created/running (re-armed
 * watch when rewatch), stopped, or gone without a record (ShimDied, leftovers cleaned). */
int mgr_container_reconcile(struct manager *m, struct mctr *c, bool rewatch,
			    struct berth_error **err);
/* Kills a BERTHD_TEST_CRASH point's daemon (SIGKILL to itself), for the recovery tests. */
void mgr_crash_point(struct manager *m, const char *point);

/* containers (container.c), with the container's op lock held */
int ctr_stop_locked(struct manager *m, struct mctr *c, int64_t timeout_s, struct berth_error **err);
int ctr_remove_locked(struct manager *m, struct mctr *c, struct berth_error **err);
/* Undoes a container's on-disk state by id (no row needed): shim, runtime state, rootfs, bundle. */
int ctr_cleanup_dirs(struct manager *m, const char *id, struct berth_error **err);

/* pods (pod.c) */
int pod_cgroup_paths(struct manager *m, struct mpod *p, struct berth_error **err);
int pod_cgroup_remove(struct manager *m, struct mpod *p, struct berth_error **err);
/* Records the pod as notready (memory and row); takes m->lock. */
void pod_set_notready(struct manager *m, struct mpod *p);
/* The cgroupsPath of a container in p. */
int pod_container_cgroups_path(struct manager *m, const struct mpod *p, const char *ctr_id,
			       char **ret);

#endif
