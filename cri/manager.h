/* berthd's pods, containers and images: the one C API that the socket API (cri/api.c) and the
 * CRI gRPC layer call.
 *
 * Lifecycle: manager_new opens the database (<root>/berth.db), the image store and the state
 * directories; manager_recover reconciles the database with what runs (before serving);
 * requests then come from any thread (they block: callers run them on the libuv worker pool);
 * manager_close (on the loop thread) stops watching shims; manager_free after the loop ended.
 * Containers and their shims outlive the manager: nothing here stops them at exit.
 *
 * The manager watches each live container's shim from the libuv loop it was given (one polled fd
 * per container, answered when the container exits) and records the exit in the database. Events
 * (created, started, exited, removed) are delivered on the loop thread, in order per container.
 *
 * Errors: -ENOENT for an unknown id (its status is not-found once removed), -EEXIST for a name
 * taken, -EINVAL for a bad request (the message names the field), -EBUSY/-EALREADY for a state
 * that does not allow the call (cri/errcode.h maps them to gRPC codes). Stop and remove are
 * idempotent. A failed create or run leaves nothing behind: no mount, directory, row or shim. */
#ifndef BERTH_CRI_MANAGER_H
#define BERTH_CRI_MANAGER_H

#include "base/error.h"
#include "cri/config.h"
#include "cri/db.h"
#include "cri/request.h"
#include "cgroup/cgroup.h"
#include "shim/shim.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#define MANAGER_ID_LEN 32		    /* hex characters of a pod's or container's id */
#define MANAGER_EXEC_OUTPUT_MAX (16u << 20) /* ExecSync output kept, per stream */
/* A container whose shim died without recording its exit is reported exited with this code and
 * reason. */
#define MANAGER_SHIM_DIED_EXIT_CODE 255
#define MANAGER_REASON_SHIM_DIED "ShimDied"

struct manager;

enum manager_event_type {
	MANAGER_EVENT_CREATED,
	MANAGER_EVENT_STARTED,
	MANAGER_EVENT_EXITED,
	MANAGER_EVENT_REMOVED,
};

struct manager_event {
	enum manager_event_type type;
	char container_id[MANAGER_ID_LEN + 1];
	char pod_id[MANAGER_ID_LEN + 1];
	int64_t time_ns;
	int exit_code; /* EXITED */
	char reason[32];
};

/* Called on the loop thread. */
typedef void (*manager_event_cb)(const struct manager_event *ev, void *userdata);
struct manager_subscription;

/* cfg must outlive the manager. */
int manager_new(const struct berthd_config *cfg, uv_loop_t *loop, struct manager **ret,
		struct berth_error **err);
void manager_set_event_cb(struct manager *m, manager_event_cb cb, void *userdata);
/* More receivers of the same events (the CRI's GetContainerEvents streams), besides the one
 * callback above. Loop thread only; a callback may unsubscribe itself or others. */
int manager_event_subscribe(struct manager *m, manager_event_cb cb, void *userdata,
			    struct manager_subscription **ret);
void manager_event_unsubscribe(struct manager *m, struct manager_subscription *s);
/* At start, before serving: loads the database, reconnects to every shim, records the exits
 * that happened meanwhile, marks containers whose shim died (ShimDied), and removes what a
 * daemon that died mid-create or mid-run left (directories, shims, pods, cgroups without a
 * row). Each finding is logged. */
int manager_recover(struct manager *m, struct berth_error **err);
/* On the loop thread: stops the watches and the manager's loop handles (the loop can end once
 * requests in flight are done). */
void manager_close(struct manager *m);
struct manager *manager_free(struct manager *m);
const char *manager_event_name(enum manager_event_type t);

/* ---- pods ---- */

struct manager_pod {
	struct db_pod rec; /* state "ready" | "notready" */
	char *ip4, *ip6;   /* or NULL */
	char *netns_path;  /* or NULL */
};

int manager_pod_run(struct manager *m, const struct pod_config *c, char **ret_id,
		    struct berth_error **err);
/* Kills the pod's containers and tears its network and namespaces down. */
int manager_pod_stop(struct manager *m, const char *id, struct berth_error **err);
/* Stops it when needed, removes its containers, its cgroup and its row; unknown: success. */
int manager_pod_remove(struct manager *m, const char *id, struct berth_error **err);
int manager_pod_status(struct manager *m, const char *id, struct manager_pod *ret,
		       struct berth_error **err);
int manager_pod_list(struct manager *m, struct manager_pod **ret, size_t *ret_n,
		     struct berth_error **err);
void manager_pod_clear(struct manager_pod *p);
/* The counters of the pod's cgroup; -ENOENT (message) when the pod has none. */
int manager_pod_stats(struct manager *m, const char *id, struct cgroup_stats *ret,
		      struct berth_error **err);
/* The pod CIDR the CRI's UpdateRuntimeConfig gives. An empty one, or the subnet already in
 * use, changes nothing. Another subnet is taken for pods run from now on (until berthd
 * restarts: berthd.conf's subnet is what it starts with) while no pod exists, and refused
 * (-EBUSY) while pods exist; in CNI mode the CNI config decides addresses and the CIDR is only
 * logged. */
int manager_set_pod_cidr(struct manager *m, const char *cidr, struct berth_error **err);
/* The pod subnet new pods get (a copy), or NULL in CNI mode. */
char *manager_pod_cidr(struct manager *m);
void manager_pod_list_free(struct manager_pod *v, size_t n);

/* ---- containers ---- */

struct manager_container {
	struct db_container rec;
	pid_t pid; /* the container's init while created or running, else 0 */
};

/* The image must be in the store (pulling is a separate call). */
int manager_container_create(struct manager *m, const char *pod_id,
			     const struct container_config *c, char **ret_id,
			     struct berth_error **err);
int manager_container_start(struct manager *m, const char *id, struct berth_error **err);
/* SIGTERM, then SIGKILL after timeout_s seconds; already exited: success. */
int manager_container_stop(struct manager *m, const char *id, int64_t timeout_s,
			   struct berth_error **err);
int manager_container_kill(struct manager *m, const char *id, int sig, struct berth_error **err);
/* Kills it when it still runs; unknown: success. */
int manager_container_remove(struct manager *m, const char *id, struct berth_error **err);
int manager_container_status(struct manager *m, const char *id, struct manager_container *ret,
			     struct berth_error **err);
/* pod_id NULL: every container. */
int manager_container_list(struct manager *m, const char *pod_id, struct manager_container **ret,
			   size_t *ret_n, struct berth_error **err);
void manager_container_clear(struct manager_container *c);
void manager_container_list_free(struct manager_container *v, size_t n);
/* Runs argv in the running container; output capped at MANAGER_EXEC_OUTPUT_MAX per stream;
 * timeout_s 0: no limit, else -ETIMEDOUT once passed (the process is killed). */
int manager_container_exec_sync(struct manager *m, const char *id, char *const *argv,
				int64_t timeout_s, struct shim_exec_result *ret,
				struct berth_error **err);
int manager_container_reopen_log(struct manager *m, const char *id, struct berth_error **err);
/* Streams (cri/stream.c). Whether an exec or attach may be asked for now: the container runs;
 * an attach's tty matches the container's and its stdin was asked for at create. */
int manager_container_stream_check(struct manager *m, const char *id, bool attach, bool tty,
				   bool in, struct berth_error **err);
/* A connection to the container's shim carrying frames (shim/protocol.h): a new process or the
 * container's own stdio. */
struct manager_exec {
	char *const *argv;
	bool tty, in;
	unsigned cols, rows; /* the terminal's size at start (0: the runtime's default) */
};
int manager_container_exec_open(struct manager *m, const char *id, const struct manager_exec *x,
				int *ret_fd, struct berth_error **err);
int manager_container_attach_open(struct manager *m, const char *id, bool in, bool out,
				  bool errs, int *ret_fd, struct berth_error **err);
/* Applies a runtime-spec linux.resources object (JSON text) to a created or running container's
 * cgroup, through its shim. */
int manager_container_update(struct manager *m, const char *id, const char *resources_json,
			     struct berth_error **err);
/* The counters of a created or running container's cgroup (cgroup_stats_clear frees them). */
int manager_container_stats(struct manager *m, const char *id, struct cgroup_stats *ret,
			    struct berth_error **err);

/* ---- images ---- */

struct manager_image {
	char *name;   /* normalised */
	char *id;     /* config digest */
	char *digest; /* manifest digest */
	uint64_t size;
};

int manager_image_pull(struct manager *m, const char *name, struct manager_image *ret,
		       struct berth_error **err);
/* Credentials for one pull (CRI's AuthConfig): used for server (a registry host, "docker.io"
 * for Docker Hub) instead of the configured auth file, for this pull only. */
struct manager_pull_auth {
	const char *server;
	const char *username, *password; /* or */
	const char *auth;		 /* base64("user:password"), Docker's config.json "auth" */
};
int manager_image_pull_auth(struct manager *m, const char *name,
			    const struct manager_pull_auth *auth, struct manager_image *ret,
			    struct berth_error **err);
/* image/image.h's image_inspect JSON of a name (normalised here); -ENOENT when absent. */
int manager_image_inspect(struct manager *m, const char *name, char **ret_json,
			  struct berth_error **err);
struct manager_fs_usage {
	const char *mountpoint; /* the directory measured (the manager's; not to be freed) */
	uint64_t bytes, inodes;
};
/* The image store's use (content and snapshots under the root) and the containers
 * directory's (their upper layers and bundles). */
int manager_image_fs_usage(struct manager *m, struct manager_fs_usage *ret_images,
			   struct manager_fs_usage *ret_containers, struct berth_error **err);
int manager_image_list(struct manager *m, struct manager_image **ret, size_t *ret_n,
		       struct berth_error **err);
int manager_image_remove(struct manager *m, const char *name, struct berth_error **err);
void manager_image_clear(struct manager_image *im);
void manager_image_list_free(struct manager_image *v, size_t n);

#endif
