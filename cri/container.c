/* Containers: a bundle (<root>/containers/<id>: config.json and the overlay rootfs), a shim
 * (<state>/shims/<id>) that creates and holds the container, and a row.
 *
 * Create order, so that a daemon killed at any point leaves only what recovery finds and undoes
 * (a container or shim directory without a row): the bundle directory, the rootfs mount, the
 * config, the shim (shim_spawn returns once the container is created), then the row in state
 * "created". Remove goes the other way and deletes the row last, so an interrupted remove is
 * finished by the next. */
#include "cri/manager-internal.h"
#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "base/log.h"
#include "cri/ocispec.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- create ---- */

struct image_info {
	char *name; /* normalised */
	char *id;   /* config digest */
	struct json *inspect;
	const struct json *config; /* the image config's "config" object, inside inspect */
};

static void image_info_clear(struct image_info *im)
{
	free(im->name);
	free(im->id);
	bjson_free(im->inspect);
	*im = (struct image_info){ 0 };
}

static int image_lookup(struct manager *m, const char *name, struct image_info *ret,
			struct berth_error **err)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_error_ struct berth_error *e = NULL;
	int r = image_reference_normalize(name, &ret->name, err);
	if (r < 0)
		return berth_error_wrap(err, "config.image.image");
	r = image_inspect(m->images, ret->name, &text, &e);
	if (r == -ENOENT)
		return berth_error_set(err, ENOENT,
				       "config.image.image: image %s is not in the store "
				       "(pull it first)",
				       ret->name);
	if (r < 0) {
		berth_error_move(err, &e);
		return berth_error_wrap(err, "image %s", ret->name);
	}
	if ((r = bjson_parse(text, &ret->inspect, err)) < 0)
		return berth_error_wrap(err, "image %s", ret->name);
	const char *id = bjson_string(bjson_object_get(ret->inspect, "configDigest"));
	if (!id || !(ret->id = strdup(id)))
		return berth_error_set(err, EIO, "image %s: no config digest", ret->name);
	ret->config = bjson_object_get(bjson_object_get(ret->inspect, "config"), "config");
	return 0;
}

static int log_path_of(struct manager *m, const struct mpod *p, const struct container_config *c,
		       char **ret, struct berth_error **err)
{
	const char *dir = p->cfg.log_directory;
	int r;
	if (c->log_path && dir)
		r = asprintf(ret, "%s/%s", dir, c->log_path + strspn(c->log_path, "/"));
	else if (c->log_path && c->log_path[0] == '/')
		r = asprintf(ret, "%s", c->log_path);
	else if (c->log_path)
		return berth_error_set(err, EINVAL,
				       "config.log_path: \"%s\" is relative, but the pod "
				       "has no log_directory",
				       c->log_path);
	else
		r = asprintf(ret, "%s/%s_%s/%s/%u.log", m->cfg->log_dir, p->cfg.name,
			     p->cfg.namespace_, c->name, c->attempt);
	if (r < 0) {
		*ret = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* HOSTNAME in a container's environment: the pod's (netns's default is the pod's id); none with
 * the node's network, whose hostname the container sees as it is. */
static const char *pod_hostname(const struct mpod *p)
{
	if (p->cfg.net_mode == NS_MODE_NODE)
		return NULL;
	return p->cfg.hostname ? p->cfg.hostname : p->rec.id;
}

/* pid mode TARGET: the pid namespace of the target container, when it runs in this pod (its
 * init's /proc/<pid>/ns/pid); NULL otherwise (ocispec_generate then refuses, naming it). */
static char *target_pidns(struct manager *m, const struct mpod *p,
			  const struct container_config *cfg)
{
	char *path = NULL;
	if (!cfg->has_ns_options || cfg->pid_mode != NS_MODE_TARGET)
		return NULL;
	pthread_mutex_lock(&m->lock);
	struct mctr *t = mctr_find(m, cfg->target_id, false);
	if (t && strcmp(t->rec.pod_id, p->rec.id) == 0 && t->pid > 0 &&
	    asprintf(&path, "/proc/%d/ns/pid", (int)t->pid) < 0)
		path = NULL;
	pthread_mutex_unlock(&m->lock);
	return path;
}

static int write_config(struct manager *m, const struct mpod *p, const struct mctr *c,
			const struct container_config *cfg, const struct image_info *im,
			const struct pod_sandbox_status *sb, struct berth_error **err)
{
	_cleanup_free_ char *rootfs = NULL, *cgroups = NULL, *spec = NULL;
	_cleanup_free_ char *target = target_pidns(m, p, cfg);
	if (asprintf(&rootfs, "%s/rootfs", c->bundle) < 0 ||
	    pod_container_cgroups_path(m, p, c->rec.id, &cgroups) < 0)
		return -ENOMEM;
	char *annotations[] = { "io.kubernetes.cri.container-type",
				"container",
				"io.kubernetes.cri.sandbox-id",
				p->rec.id,
				"io.kubernetes.cri.container-name",
				cfg->name,
				"io.kubernetes.cri.image-name",
				im->name,
				NULL };
	struct ocispec_input in = {
		.rootfs = rootfs,
		.image_config = im->config,
		.req = cfg,
		.netns_path = sb->netns_path,
		.ipcns_path = p->cfg.ipc_mode == NS_MODE_NODE ? NULL : sb->ipcns_path,
		.utsns_path = sb->utsns_path,
		.pidns_path = sb->pidns_path,
		.pid_host = p->cfg.pid_mode == NS_MODE_NODE,
		.hosts_path = sb->hosts_path,
		.hostname_path = sb->hostname_path,
		.resolv_conf_path = sb->resolv_conf_path,
		.hostname = pod_hostname(p),
		.cgroups_path = cgroups,
		.pod_privileged = p->cfg.privileged,
		.target_pidns_path = target,
		.annotations = annotations,
	};
	int r = ocispec_generate(&in, &spec, err);
	if (r < 0)
		return r;
	_cleanup_close_ int dfd = open(c->bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0)
		return berth_error_setsys(err, errno, "%s", c->bundle);
	return write_file_atomic_at(dfd, "config.json", spec, strlen(spec), 0600, false, err);
}

static const char *log_level_name(enum log_level l)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	return names[l];
}

static int spawn_shim(struct manager *m, struct mctr *c, const struct container_config *cfg,
		      struct shim_status *st, struct berth_error **err)
{
	const struct berthd_config *conf = m->cfg;
	struct shim_spawn_options o = {
		.shim_path = conf->shim_path,
		.dir = c->shim_dir,
		.id = c->rec.id,
		.bundle = c->bundle,
		.runtime_root = m->runtime_root,
		.log_path = c->rec.log_path,
		.log_max_size = conf->container_log_max_size,
		.log_max_files = conf->container_log_max_files,
		.stdin_open = cfg->stdin_open,
		.stdin_once = cfg->stdin_once,
		.systemd_cgroup = conf->systemd_cgroup,
		.log_level = log_level_name(conf->log_level),
	};
	pid_t shim_pid = 0;
	int r = shim_spawn(&o, &shim_pid, st, err);
	if (r < 0)
		return r;
	log_debug("container %s: shim %d, init %d", c->rec.id, shim_pid, st->pid);
	return 0;
}

/* The row's fields that come from the request and the image. */
static int fill_record(struct mctr *c, const struct container_config *cfg,
		       const struct image_info *im)
{
	struct db_container *rec = &c->rec;
	rec->attempt = cfg->attempt;
	rec->created_ns = mgr_now_ns();
	if (!(rec->image = strdup(cfg->image)) || !(rec->image_id = strdup(im->id)) ||
	    !(rec->state = strdup("created")) ||
	    (cfg->labels_json && !(rec->labels_json = strdup(cfg->labels_json))) ||
	    (cfg->annotations_json && !(rec->annotations_json = strdup(cfg->annotations_json))))
		return -ENOMEM;
	return container_config_to_json(cfg, &rec->config_json);
}

static int create_steps(struct manager *m, struct mpod *p, struct mctr *c,
			const struct container_config *cfg, struct berth_error **err)
{
	struct image_info im = { 0 };
	struct pod_sandbox_status *sb = NULL;
	struct shim_status st;
	int r;
	if ((r = image_lookup(m, cfg->image, &im, err)) < 0 ||
	    (r = log_path_of(m, p, cfg, &c->rec.log_path, err)) < 0 ||
	    (r = fill_record(c, cfg, &im)) < 0 ||
	    (r = pod_sandbox_status(&m->net, p->rec.id, &sb, err)) < 0)
		goto out;
	if (mkdir(c->bundle, 0700) < 0) {
		r = berth_error_setsys(err, errno, "%s", c->bundle);
		goto out;
	}
	mgr_crash_point(m, "container-dir");
	if ((r = image_rootfs_create(m->images, im.name, c->bundle, err)) < 0)
		goto undo_dir;
	if ((r = write_config(m, p, c, cfg, &im, sb, err)) < 0 ||
	    (r = spawn_shim(m, c, cfg, &st, err)) < 0)
		goto undo_rootfs;
	mgr_crash_point(m, "shim-spawned");
	c->rec.created_ns = st.created_ns ? st.created_ns : c->rec.created_ns;
	c->pid = st.pid;
	if ((r = db_container_insert(m->db, &c->rec, err)) < 0)
		goto undo_shim;
	goto out;
undo_shim:
	(void)shim_dir_remove(c->shim_dir, m->runtime_root, c->rec.id, NULL); /* first error told */
undo_rootfs:
	(void)image_rootfs_remove(m->images, c->bundle, NULL);
undo_dir:
	(void)remove_tree_at(AT_FDCWD, c->bundle);
out:
	pod_sandbox_status_free(sb);
	image_info_clear(&im);
	return r;
}

static int reserve_name(struct manager *m, struct mpod *p, struct mctr *c,
			const struct container_config *cfg, struct berth_error **err)
{
	pthread_mutex_lock(&m->lock);
	int r = 0;
	if (p->removed || strcmp(p->rec.state, "ready") != 0)
		r = berth_error_set(err, EBUSY, "pod %s is not ready (stopped or being removed)",
				    p->rec.id);
	for (size_t i = 0; r == 0 && i < m->n_ctrs; i++) {
		const struct mctr *o = m->ctrs[i];
		if (strcmp(o->rec.pod_id, p->rec.id) == 0 && strcmp(o->rec.name, cfg->name) == 0 &&
		    o->rec.attempt == cfg->attempt)
			r = berth_error_set(
				err, EEXIST,
				"container %s (attempt %u) already exists in pod %s: %s", cfg->name,
				cfg->attempt, p->rec.id, o->rec.id);
	}
	if (r == 0) {
		c->creating = true;
		r = mgr_add_ctr(m, c);
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int create_in_pod(struct manager *m, struct mpod *p, const struct container_config *cfg,
			 char **ret_id, struct berth_error **err)
{
	char id[MANAGER_ID_LEN + 1];
	int r = mgr_new_id(id);
	if (r < 0)
		return berth_error_setsys(err, -r, "a new container id");
	struct mctr *c = mctr_new(m, id, p->rec.id);
	if (!c || !(c->rec.name = strdup(cfg->name))) {
		mctr_unref(c);
		return -ENOMEM;
	}
	c->rec.attempt = cfg->attempt;
	if ((r = reserve_name(m, p, c, cfg, err)) < 0) {
		mctr_unref(c);
		return r;
	}
	r = create_steps(m, p, c, cfg, err);
	pthread_mutex_lock(&m->lock);
	if (r < 0) {
		mgr_drop_ctr(m, c);
	} else {
		c->creating = false;
		mgr_emit(m, MANAGER_EVENT_CREATED, c);
	}
	pthread_mutex_unlock(&m->lock);
	if (r == 0) {
		log_info("container %s (%s in pod %s) created", id, cfg->name, p->rec.id);
		mgr_watch(m, c);
		*ret_id = strdup(id);
		r = *ret_id ? 0 : -ENOMEM;
	}
	mctr_unref(c);
	return r;
}

int manager_container_create(struct manager *m, const char *pod_id,
			     const struct container_config *cfg, char **ret_id,
			     struct berth_error **err)
{
	struct mpod *p = NULL;
	int r = mpod_get(m, pod_id, &p, err);
	if (r < 0)
		return r;
	pthread_rwlock_rdlock(&p->op);
	r = create_in_pod(m, p, cfg, ret_id, err);
	pthread_rwlock_unlock(&p->op);
	mpod_unref(p);
	return r < 0 ? berth_error_wrap(err, "create container %s", cfg->name) : r;
}

/* ---- lifecycle ---- */

static char *state_of(struct manager *m, const struct mctr *c)
{
	pthread_mutex_lock(&m->lock);
	char *s = strdup(c->rec.state);
	pthread_mutex_unlock(&m->lock);
	return s;
}

/* Runs fn on a container with its op lock held; a container removed meanwhile is not found. */
static int with_container(struct manager *m, const char *id, bool missing_ok,
			  int (*fn)(struct manager *, struct mctr *, void *, struct berth_error **),
			  void *arg, struct berth_error **err)
{
	struct mctr *c = NULL;
	int r = mctr_get(m, id, &c, missing_ok ? NULL : err);
	if (r < 0)
		return missing_ok ? 0 : r;
	pthread_mutex_lock(&c->op);
	if (c->removed)
		r = missing_ok ? 0 : berth_error_set(err, ENOENT, "container %s not found", id);
	else
		r = fn(m, c, arg, err);
	pthread_mutex_unlock(&c->op);
	mctr_unref(c);
	return r;
}

static int require_state(struct manager *m, const struct mctr *c, const char *what, const char *a,
			 const char *b, struct berth_error **err)
{
	_cleanup_free_ char *state = state_of(m, c);
	if (!state)
		return -ENOMEM;
	if (strcmp(state, a) == 0 || (b && strcmp(state, b) == 0))
		return 0;
	return berth_error_set(err, EBUSY, "container %s is %s: %s", c->rec.id, state, what);
}

static int start_cb(struct manager *m, struct mctr *c, void *arg, struct berth_error **err)
{
	int r = require_state(m, c, "only a created container can start", "created", NULL, err);
	if (r < 0 || (r = shim_start(c->shim_dir, err)) < 0)
		return r;
	struct shim_status st;
	_cleanup_error_ struct berth_error *e = NULL;
	if (shim_status(c->shim_dir, &st, &e) < 0) {
		/* started; the watch will learn the rest */
		log_warn("container %s: status after start: %s", c->rec.id, e ? e->msg : "");
		return 0;
	}
	if (st.state == SHIM_STATE_STOPPED) {
		mgr_container_exited(m, c, &st);
		return 0;
	}
	pthread_mutex_lock(&m->lock);
	mgr_container_running(m, c, &st);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int manager_container_start(struct manager *m, const char *id, struct berth_error **err)
{
	int r = with_container(m, id, false, start_cb, NULL, err);
	return r < 0 ? berth_error_wrap(err, "start container %s", id) : 0;
}

/* Waits up to timeout_ms for the container's exit and records it; -ETIMEDOUT if it still runs. */
static int wait_exit(struct manager *m, struct mctr *c, int timeout_ms, struct berth_error **err)
{
	struct shim_status st;
	_cleanup_error_ struct berth_error *e = NULL;
	int r = shim_wait(c->shim_dir, timeout_ms, &st, &e);
	if (r == -ETIMEDOUT)
		return r;
	if (r == 0 && st.state == SHIM_STATE_STOPPED) {
		mgr_container_exited(m, c, &st);
		return 0;
	}
	/* no answer from the shim: its exit record, or its death, tell */
	if ((r = mgr_container_reconcile(m, c, false, err)) < 0)
		return r;
	_cleanup_free_ char *state = state_of(m, c);
	if (state && strcmp(state, "exited") == 0)
		return 0;
	return berth_error_set(err, EIO, "waiting for container %s to exit: %s", c->rec.id,
			       e ? e->msg : "no answer from its shim");
}

static void kill_quietly(struct mctr *c, int sig, bool all)
{
	_cleanup_error_ struct berth_error *e = NULL;
	/* a container that exited meanwhile, or a dead shim: the wait that follows tells */
	if (shim_kill(c->shim_dir, sig, all, &e) < 0)
		log_debug("container %s: kill %d: %s", c->rec.id, sig, e ? e->msg : "");
}

int ctr_stop_locked(struct manager *m, struct mctr *c, int64_t timeout_s, struct berth_error **err)
{
	_cleanup_free_ char *state = state_of(m, c);
	if (!state)
		return -ENOMEM;
	if (strcmp(state, "exited") == 0)
		return 0;
	if (timeout_s > 0 && strcmp(state, "running") == 0) {
		kill_quietly(c, SIGTERM, false);
		int ms = timeout_s > INT_MAX / 1000 ? INT_MAX : (int)(timeout_s * 1000);
		int r = wait_exit(m, c, ms, err);
		if (r != -ETIMEDOUT)
			return r;
		log_info("container %s: still running %lld s after SIGTERM: SIGKILL", c->rec.id,
			 (long long)timeout_s);
	}
	kill_quietly(c, SIGKILL, true);
	int r = wait_exit(m, c, KILL_WAIT_MS, err);
	if (r == -ETIMEDOUT)
		return berth_error_set(err, ETIMEDOUT,
				       "container %s: still there %d ms after SIGKILL", c->rec.id,
				       KILL_WAIT_MS);
	return r;
}

static int stop_cb(struct manager *m, struct mctr *c, void *arg, struct berth_error **err)
{
	return ctr_stop_locked(m, c, *(int64_t *)arg, err);
}

int manager_container_stop(struct manager *m, const char *id, int64_t timeout_s,
			   struct berth_error **err)
{
	int r = with_container(m, id, false, stop_cb, &timeout_s, err);
	return r < 0 ? berth_error_wrap(err, "stop container %s", id) : 0;
}

static int kill_cb(struct manager *m, struct mctr *c, void *arg, struct berth_error **err)
{
	int r = require_state(m, c, "only a created or running container can be signalled",
			      "running", "created", err);
	return r < 0 ? r : shim_kill(c->shim_dir, *(int *)arg, false, err);
}

int manager_container_kill(struct manager *m, const char *id, int sig, struct berth_error **err)
{
	int r = with_container(m, id, false, kill_cb, &sig, err);
	return r < 0 ? berth_error_wrap(err, "kill container %s", id) : 0;
}

static int remove_files(struct manager *m, const char *id, const char *shim_dir, const char *bundle,
			struct berth_error **err)
{
	int r;
	if ((r = shim_dir_remove(shim_dir, m->runtime_root, id, err)) < 0 ||
	    (r = image_rootfs_remove(m->images, bundle, err)) < 0)
		return r;
	if ((r = remove_tree_at(AT_FDCWD, bundle)) < 0)
		return berth_error_setsys(err, -r, "removing %s", bundle);
	return 0;
}

int ctr_cleanup_dirs(struct manager *m, const char *id, struct berth_error **err)
{
	_cleanup_free_ char *shim_dir = NULL, *bundle = NULL;
	if (asprintf(&shim_dir, "%s/%s", m->shims_dir, id) < 0 ||
	    asprintf(&bundle, "%s/%s", m->containers_dir, id) < 0)
		return -ENOMEM;
	return remove_files(m, id, shim_dir, bundle, err);
}

int ctr_remove_locked(struct manager *m, struct mctr *c, struct berth_error **err)
{
	_cleanup_error_ struct berth_error *e = NULL;
	/* a container that cannot be stopped is killed by shim_dir_remove below all the same */
	if (ctr_stop_locked(m, c, 0, &e) < 0)
		log_warn("container %s: %s (removing it anyway)", c->rec.id, e ? e->msg : "");
	berth_error_freep(&e);
	if (shim_shutdown(c->shim_dir, &e) < 0)
		log_debug("container %s: shutdown of its shim: %s", c->rec.id, e ? e->msg : "");
	int r = remove_files(m, c->rec.id, c->shim_dir, c->bundle, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&m->lock);
	r = db_container_delete(m->db, c->rec.id, err);
	if (r == 0 || r == -ENOENT) {
		mgr_emit(m, MANAGER_EVENT_REMOVED, c);
		mgr_drop_ctr(m, c);
		r = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

static int remove_cb(struct manager *m, struct mctr *c, void *arg, struct berth_error **err)
{
	int r = ctr_remove_locked(m, c, err);
	if (r == 0)
		log_info("container %s removed", c->rec.id);
	return r;
}

int manager_container_remove(struct manager *m, const char *id, struct berth_error **err)
{
	int r = with_container(m, id, true, remove_cb, NULL, err);
	return r < 0 ? berth_error_wrap(err, "remove container %s", id) : 0;
}

/* ---- status, exec, logs ---- */

int manager_container_status(struct manager *m, const char *id, struct manager_container *ret,
			     struct berth_error **err)
{
	pthread_mutex_lock(&m->lock);
	struct mctr *c = mctr_find(m, id, false);
	int r = c ? mgr_copy_container(c, ret)
		  : berth_error_set(err, ENOENT, "container %s not found", id ? id : "");
	pthread_mutex_unlock(&m->lock);
	return r;
}

int manager_container_list(struct manager *m, const char *pod_id, struct manager_container **ret,
			   size_t *ret_n, struct berth_error **err)
{
	pthread_mutex_lock(&m->lock);
	struct manager_container *v = calloc(m->n_ctrs + 1, sizeof(*v));
	size_t n = 0;
	int r = v ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < m->n_ctrs; i++) {
		const struct mctr *c = m->ctrs[i];
		if (c->creating || (pod_id && strcmp(c->rec.pod_id, pod_id) != 0))
			continue;
		if ((r = mgr_copy_container(c, &v[n])) == 0)
			n++;
	}
	pthread_mutex_unlock(&m->lock);
	if (r < 0) {
		manager_container_list_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* The container, referenced, when it is running (or in state also, when not NULL). */
static int get_in_state(struct manager *m, const char *id, const char *what, const char *also,
			struct mctr **ret, struct berth_error **err)
{
	int r = mctr_get(m, id, ret, err);
	if (r < 0)
		return r;
	if ((r = require_state(m, *ret, what, "running", also, err)) < 0) {
		mctr_unref(*ret);
		*ret = NULL;
	}
	return r;
}

static int get_running(struct manager *m, const char *id, const char *what, struct mctr **ret,
		       struct berth_error **err)
{
	return get_in_state(m, id, what, NULL, ret, err);
}

/* An exec's process object: the container's own (from its bundle) running argv. */
static int exec_process_of(const struct mctr *c, char *const *argv,
			   const struct ocispec_terminal *term, char **ret, struct berth_error **err)
{
	_cleanup_free_ char *config = NULL, *path = NULL;
	if (asprintf(&path, "%s/config.json", c->bundle) < 0)
		return -ENOMEM;
	int r = read_file_at(AT_FDCWD, path, &config, NULL, err);
	return r < 0 ? r : ocispec_exec_process(config, argv, term, ret, err);
}

int manager_container_exec_sync(struct manager *m, const char *id, char *const *argv,
				int64_t timeout_s, struct shim_exec_result *ret,
				struct berth_error **err)
{
	if (!argv || !argv[0])
		return berth_error_set(err, EINVAL,
				       "cmd: required (the program and its arguments)");
	struct mctr *c = NULL;
	_cleanup_free_ char *process = NULL;
	int r = get_running(m, id, "exec needs a running container", &c, err);
	if (r < 0)
		return r;
	if ((r = exec_process_of(c, argv, NULL, &process, err)) == 0) {
		int ms = timeout_s <= 0		      ? -1
			 : timeout_s > INT_MAX / 1000 ? INT_MAX
						      : (int)(timeout_s * 1000);
		r = shim_exec_sync(c->shim_dir, process, NULL, 0, MANAGER_EXEC_OUTPUT_MAX, ms, ret,
				   err);
		if (r == -ETIMEDOUT)
			berth_error_wrap(err, "timeout of %lld s", (long long)timeout_s);
	}
	mctr_unref(c);
	return r < 0 ? berth_error_wrap(err, "exec in container %s", id) : 0;
}

/* ---- streams (cri/stream.c) ---- */

/* tty and stdin as the container was created with them (its request). */
static int created_with(const struct mctr *c, bool *ret_tty, bool *ret_stdin,
			struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *j = NULL;
	int r = bjson_parse(c->rec.config_json ? c->rec.config_json : "{}", &j, err);
	if (r < 0)
		return berth_error_wrap(err, "container %s: its recorded config", c->rec.id);
	*ret_tty = bjson_bool(bjson_object_get(j, "tty"));
	*ret_stdin = bjson_bool(bjson_object_get(j, "stdin"));
	return 0;
}

int manager_container_stream_check(struct manager *m, const char *id, bool attach, bool tty,
				   bool in, struct berth_error **err)
{
	struct mctr *c = NULL;
	bool c_tty = false, c_stdin = false;
	int r = get_running(m, id, attach ? "attach needs a running container"
					  : "exec needs a running container",
			    &c, err);
	if (r < 0)
		return r;
	if (attach && (r = created_with(c, &c_tty, &c_stdin, err)) == 0) {
		if (tty != c_tty)
			r = berth_error_set(err, EINVAL,
					    "tty: the container was created %s a terminal (%s)",
					    c_tty ? "with" : "without", id);
		else if (in && !c_stdin)
			r = berth_error_set(err, EINVAL,
					    "stdin: the container was created without stdin (%s)", id);
	}
	mctr_unref(c);
	return r;
}

int manager_container_exec_open(struct manager *m, const char *id, const struct manager_exec *x,
				int *ret_fd, struct berth_error **err)
{
	struct mctr *c = NULL;
	_cleanup_free_ char *process = NULL;
	pid_t pid = 0;
	int r = get_running(m, id, "exec needs a running container", &c, err);
	if (r < 0)
		return r;
	const struct ocispec_terminal term = { .on = x->tty, .cols = x->cols, .rows = x->rows };
	if ((r = exec_process_of(c, x->argv, &term, &process, err)) == 0)
		r = shim_exec_open(c->shim_dir, process, x->in, ret_fd, &pid, err);
	mctr_unref(c);
	return r; /* the shim's message names the exec and the container */
}

int manager_container_attach_open(struct manager *m, const char *id, bool in, bool out,
				  bool errs, int *ret_fd, struct berth_error **err)
{
	struct mctr *c = NULL;
	bool tty = false;
	int r = get_running(m, id, "attach needs a running container", &c, err);
	if (r < 0)
		return r;
	r = shim_attach_open(c->shim_dir, in, out, errs, ret_fd, &tty, err);
	mctr_unref(c);
	return r < 0 ? berth_error_wrap(err, "attach to container %s", id) : 0;
}

int manager_container_reopen_log(struct manager *m, const char *id, struct berth_error **err)
{
	struct mctr *c = NULL;
	int r = get_running(m, id, "only a running container's log can be reopened", &c, err);
	if (r < 0)
		return r;
	r = shim_reopen_log(c->shim_dir, err);
	mctr_unref(c);
	return r < 0 ? berth_error_wrap(err, "reopen the log of container %s", id) : 0;
}

/* ---- resources, stats ---- */

static int get_live(struct manager *m, const char *id, const char *what, struct mctr **ret,
		    struct berth_error **err)
{
	return get_in_state(m, id, what, "created", ret, err);
}

int manager_container_update(struct manager *m, const char *id, const char *resources_json,
			     struct berth_error **err)
{
	struct mctr *c = NULL;
	int r = get_live(m, id, "only a created or running container's resources can change", &c,
			 err);
	if (r < 0)
		return r;
	r = shim_update(c->shim_dir, resources_json, err);
	mctr_unref(c);
	return r < 0 ? berth_error_wrap(err, "update the resources of container %s", id) : 0;
}

int manager_container_stats(struct manager *m, const char *id, struct cgroup_stats *ret,
			    struct berth_error **err)
{
	struct mctr *c = NULL;
	int r = get_live(m, id, "an exited container has no cgroup", &c, err);
	if (r < 0)
		return r;
	r = runtime_container_stats(m->runtime_root, id, ret, err);
	mctr_unref(c);
	return r < 0 ? berth_error_wrap(err, "stats of container %s", id) : 0;
}
