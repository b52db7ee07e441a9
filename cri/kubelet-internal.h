/* The kubelet loop's insides, shared by kubelet.c (supervisor, API), kubelet-pod.c (the pod
 * worker), kubelet-pod-ctr.c (one container's life in it), kubelet-spec.c (manifest to CRI
 * requests, env), kubelet-volume.c, kubelet-probe.c (probes and hooks) and kubelet-status.c
 * (status JSON, back-off arithmetic).
 *
 * Threads: the supervisor owns the list of workers; a worker owns its struct kpod and is the only
 * writer of its container states (the status file is how others see them). k->lock guards the
 * worker list and each worker's stop/remove flags; a worker sleeps on its own condition variable
 * so a stop request wakes it. */
#ifndef BERTH_CRI_KUBELET_INTERNAL_H
#define BERTH_CRI_KUBELET_INTERNAL_H

#include "cri/kubelet.h"
#include "cri/pod-manifest.h"
#include "cri/request.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define KUBELET_LABEL_FILE "berth.static-pod/file"
#define KUBELET_LABEL_HASH "berth.static-pod/hash"
#define KUBELET_TICK_MS 200
#define NS_PER_S 1000000000LL

/* Back-off per container: first restart after initial, doubling to max, back to initial once a
 * container ran `reset` without exiting. */
struct kubelet_backoff {
	int64_t initial_ns, max_ns, reset_ns;
};
/* The delay before the next restart, given the previous delay (0: none yet) and how long the
 * container ran. */
int64_t kubelet_backoff_next(const struct kubelet_backoff *b, int64_t prev_ns, int64_t ran_ns);

struct kprobe {
	const struct pod_probe *spec; /* NULL: no such probe */
	int64_t next_ns;	      /* monotonic: when it runs next */
	int64_t successes, failures;
	bool ok;		      /* the current result */
};

enum kstate { KSTATE_WAITING, KSTATE_RUNNING, KSTATE_TERMINATED };

/* A container's state as the status shows it (state, or lastState). */
struct kterm {
	enum kstate state;
	char *reason, *message; /* waiting reason / terminated reason, or NULL */
	int exit_code, signal;
	int64_t started_ns, finished_ns; /* realtime */
	char *container_id;
};

struct kctr {
	const struct pod_container *spec;
	bool init;
	char *id;	/* the current instance, or NULL */
	char *prev_id;	/* the last exited instance, kept for its logs until the next starts */
	char *image_id;
	uint32_t restarts;
	struct kterm cur, last;
	bool has_last;
	bool ready, started; /* started: running and the startup probe passed */
	bool done;	     /* will not run again (policy) */
	bool exit_seen;	     /* the exit of `id` was handled */
	const char *kill_reason; /* why berth killed it (FailedPostStartHook), for its exit */
	int64_t backoff_ns;  /* the last delay */
	int64_t restart_at;  /* monotonic: not before */
	struct kprobe live, readiness, startup;
};

struct kcond {
	bool status;
	int64_t since_ns;
	const char *reason;
};

/* One pod: its manifest and its worker's view. */
struct kpod {
	struct kubelet *k;
	struct pod_manifest *man;
	char *file;  /* the manifest's path */
	char *hash;
	char *key;   /* "namespace/name" */
	char *uid;
	char *pod_id;	 /* the sandbox, or NULL */
	char *adopt_id;	 /* a sandbox of an earlier berthd to take over */
	char *pod_ip;
	uint32_t attempt;
	struct kctr *ctrs; /* init containers first */
	size_t n_ctrs, n_init;
	size_t init_next; /* the init container running or to run; n_init: all done */
	const char *phase;
	char *reason, *message;
	int64_t start_ns, start_mono;
	struct kcond initialized, containers_ready, ready;
	bool deadline_hit, failed_fatal;
	bool sandbox_stopped; /* a finished pod's sandbox is stopped, as kubelet does */
	char *volume_error; /* why the containers cannot be made (CreateContainerConfigError) */
	bool volumes_ready;
	int64_t sandbox_retry_at; /* monotonic */
	int64_t sandbox_backoff_ns;
	char *last_status; /* the JSON last written */
	/* under k->lock */
	pthread_t thread;
	bool running, stop, remove, finished;
	pthread_cond_t wake;
};

struct kubelet {
	const struct berthd_config *cfg;
	struct manager *m;
	struct kubelet_backoff backoff;
	char *dir;	    /* <state>/kubelet */
	char *status_dir;   /* <state>/kubelet/status */
	char *pods_dir;	    /* <state>/kubelet/pods */
	char *applied_dir;  /* <root>/manifests */
	int status_fd;	    /* status_dir, open */
	pthread_mutex_t lock;
	bool stop;
	pthread_t thread;
	bool thread_started;
	int inotify_fd;
	int wake_fd[2]; /* a pipe: kicks the supervisor */
	struct kpod **pods;
	size_t n_pods;
	struct kerr *errors; /* invalid manifests (supervisor thread only) */
	size_t n_errors;
};

struct kerr {
	char *file, *msg;
};

/* ---- kubelet-pod.c ---- */
struct kpod *kpod_new(struct kubelet *k, struct pod_manifest *man, const char *file,
		      const char *hash);
void kpod_free(struct kpod *p);
int kpod_start(struct kpod *p); /* the worker thread */
/* Sleeps up to ms unless a stop is asked; true when stopping. */
bool kpod_sleep(struct kpod *p, int64_t ms);
bool kpod_stopping(struct kpod *p);
/* Stops and removes a pod of an earlier berthd that no manifest wants (grace: stop_timeout). */
void kubelet_remove_orphan(struct kubelet *k, const struct manager_pod *mp);

/* ---- kubelet-spec.c ---- */
int kubelet_pod_config(const struct kpod *p, struct pod_config *ret, struct berth_error **err);
int kubelet_container_config(const struct kpod *p, const struct kctr *c,
			     struct container_config *ret, struct berth_error **err);
/* env: literal values, fieldRef (pod name, namespace, IP), configMap/secret keys read from
 * <dir>/<namespace>/<name>/<key>. A missing key that is not optional: -ENOENT naming it. */
int kubelet_env_resolve(const struct pod_manifest *man, const struct pod_container *c,
			const char *pod_ip, const char *config_map_dir, const char *secret_dir,
			char ***ret_envs, struct berth_error **err);
/* What berth refuses that the parser accepts (HTTPS probes, sysctls): "<file>: <path>: <why>". */
int kubelet_check_supported(const struct pod_manifest *man, struct berth_error **err);

/* ---- kubelet-volume.c ---- */
/* <pods_dir>/<uid>/volumes/<name> for every volume; -ENOENT (message) for a missing required
 * config map or secret, -EINVAL for a hostPath that fails its type check. */
int kubelet_volumes_setup(const struct kpod *p, struct berth_error **err);
void kubelet_volumes_teardown(struct kubelet *k, const char *uid);
int kubelet_volume_path(const struct kpod *p, const char *name, char **ret);
const struct pod_volume *kubelet_volume_find(const struct pod_spec *s, const char *name);
/* hostPath type checks (creating DirectoryOrCreate / FileOrCreate). */
int kubelet_host_path_check(const char *path, enum pod_host_path_type type,
			    struct berth_error **err);

/* ---- kubelet-probe.c ---- */
/* Runs a probe once: 1 success, 0 failure (message in *ret_msg when not NULL). */
int kubelet_probe_run(struct kpod *p, struct kctr *c, const struct pod_probe *pr,
		      char **ret_msg);
/* A lifecycle handler; timeout_s bounds exec and http. 0 ok, < 0 failed (message in err). */
int kubelet_handler_run(struct kpod *p, struct kctr *c, const struct pod_lifecycle_handler *h,
			int64_t timeout_s, struct berth_error **err);
/* HTTP/1.1 GET; returns the status code or -errno. */
int kubelet_http_get(const char *host, int port, const char *path,
		     const struct pod_http_header *hdrs, size_t n_hdrs, int64_t timeout_ms,
		     struct berth_error **err);
int kubelet_tcp_check(const char *host, int port, int64_t timeout_ms, struct berth_error **err);

/* ---- kubelet-pod-ctr.c: one container's life inside the worker ---- */
/* Records what the manager says of c's instance (exit: restart decision). */
void kctr_refresh(struct kpod *p, struct kctr *c);
/* Pulls, creates and starts a new instance; failures leave c waiting with a reason. */
void kctr_start(struct kpod *p, struct kctr *c);
/* preStop, then SIGTERM and SIGKILL after what is left of grace_s. */
void kctr_stop(struct kpod *p, struct kctr *c, int64_t grace_s);
/* Runs c's probes that are due. */
void kctr_probe(struct kpod *p, struct kctr *c);
bool kctr_should_start(const struct kpod *p, const struct kctr *c);
/* The attempt (restartCount) of c's next instance: one more than the current one's. */
static inline uint32_t kubelet_next_attempt(const struct kctr *c)
{
	return c->id ? c->restarts + 1 : c->restarts;
}
void kctr_set_waiting(struct kctr *c, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- kubelet-status.c ---- */
int kubelet_status_build(const struct kpod *p, char **ret);
int kubelet_error_status_build(const char *file, const char *error, char **ret);
/* <namespace>_<name>.json; @dir_<basename>.json or @applied_<basename>.json for an invalid
 * file of the manifest directory or of the applied ones. */
int kubelet_status_name(const char *namespace, const char *name, char **ret);
int kubelet_error_status_name(const char *file, bool applied, char **ret);
void kterm_clear(struct kterm *t);
/* *p = a copy of s (NULL: none), the old value freed. */
void kubelet_set_str(char **p, const char *s);
int64_t kubelet_now_ns(void);
int64_t kubelet_mono_ns(void);

#endif
