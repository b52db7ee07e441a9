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

/* cfg must outlive the manager. */
int manager_new(const struct berthd_config *cfg, uv_loop_t *loop, struct manager **ret,
		struct berth_error **err);
void manager_set_event_cb(struct manager *m, manager_event_cb cb, void *userdata);
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

/* ---- images ---- */

struct manager_image {
	char *name;   /* normalised */
	char *id;     /* config digest */
	char *digest; /* manifest digest */
	uint64_t size;
};

int manager_image_pull(struct manager *m, const char *name, struct manager_image *ret,
		       struct berth_error **err);
int manager_image_list(struct manager *m, struct manager_image **ret, size_t *ret_n,
		       struct berth_error **err);
int manager_image_remove(struct manager *m, const char *name, struct berth_error **err);
void manager_image_clear(struct manager_image *im);
void manager_image_list_free(struct manager_image *v, size_t n);

#endif
