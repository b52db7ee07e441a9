/* The kubelet loop's supervisor and its API: reads the manifest directory and the applied
 * manifests (inotify for prompt reaction, a rescan every manifest_check_interval), reports the
 * invalid ones, adopts the pods an earlier berthd made, and starts or stops one pod worker
 * (kubelet-pod.c) per manifest. */
#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "base/log.h"
#include "cri/kubelet-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define MANIFEST_MAX (4u << 20)
#define DEBOUNCE_MS 100

/* A valid manifest found by a scan. */
struct desired {
	char *file;
	struct pod_manifest *man;
	char *hash;
};

struct scan {
	struct desired *v;
	size_t n;
	struct kerr *errors;
	size_t n_errors;
};

static void kerrs_free(struct kerr *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].file);
		free(v[i].msg);
	}
	free(v);
}

static void scan_clear(struct scan *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].file);
		pod_manifest_free(s->v[i].man);
		free(s->v[i].hash);
	}
	free(s->v);
	kerrs_free(s->errors, s->n_errors);
	*s = (struct scan){ 0 };
}

static void kick(struct kubelet *k)
{
	char c = 1;
	if (write(k->wake_fd[1], &c, 1) < 0 && errno != EAGAIN)
		log_debug("kubelet: waking the supervisor: %m");
}

/* ---- scanning ---- */

static int add_error(struct scan *s, const char *file, const char *msg)
{
	struct kerr *v = realloc(s->errors, (s->n_errors + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->errors = v;
	v[s->n_errors] = (struct kerr){ strdup(file), strdup(msg) };
	if (!v[s->n_errors].file || !v[s->n_errors].msg) {
		free(v[s->n_errors].file);
		free(v[s->n_errors].msg);
		return -ENOMEM;
	}
	s->n_errors++;
	return 0;
}

static const struct desired *desired_by_key(const struct scan *s, const struct pod_manifest *m)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i].man->metadata.name, m->metadata.name) == 0 &&
		    strcmp(s->v[i].man->metadata.namespace, m->metadata.namespace) == 0)
			return &s->v[i];
	return NULL;
}

/* Reads and checks one file: a desired pod, or an error. */
static int scan_file(struct scan *s, const char *path)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_(pod_manifest_freep) struct pod_manifest *m = NULL;
	size_t len = 0;
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	if (st.st_size > MANIFEST_MAX)
		return add_error(s, path, "larger than 4 MiB");
	if (read_file_at(AT_FDCWD, path, &text, &len, &err) < 0 ||
	    pod_manifest_parse(text, len, path, &m, &err) < 0 ||
	    kubelet_check_supported(m, &err) < 0)
		return add_error(s, path, err ? err->msg : "cannot read it");
	const struct desired *other = desired_by_key(s, m);
	if (other) {
		berth_error_set(&err, EEXIST, "%s: metadata.name: pod %s/%s is already defined by %s",
				path, m->metadata.namespace, m->metadata.name, other->file);
		return add_error(s, path, err->msg);
	}
	struct desired *v = realloc(s->v, (s->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	s->v = v;
	char *hash = pod_manifest_hash(m);
	char *file = strdup(path);
	if (!hash || !file) {
		free(hash);
		free(file);
		return -ENOMEM;
	}
	v[s->n++] = (struct desired){ file, TAKE_PTR(m), hash };
	return 0;
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Hidden files and editors' backups are not manifests. */
static int manifest_name(const struct dirent *de)
{
	size_t n = strlen(de->d_name);
	return de->d_name[0] != '.' && n && de->d_name[n - 1] != '~';
}

static void scan_dir(struct scan *s, const char *dir)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, manifest_name, name_cmp);
	if (n < 0 && errno != ENOENT)
		log_warn("kubelet: reading %s: %m", dir);
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *path = NULL;
		if (asprintf(&path, "%s/%s", dir, names[i]->d_name) < 0 || scan_file(s, path) < 0)
			log_error("kubelet: %s/%s: out of memory", dir, names[i]->d_name);
		free(names[i]);
	}
	free(names);
}

/* ---- invalid manifests: one log line per change of the error ---- */

static const struct kerr *kerr_find(const struct kerr *v, size_t n, const char *file)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].file, file) == 0)
			return &v[i];
	return NULL;
}

static bool is_applied(const struct kubelet *k, const char *file)
{
	size_t n = strlen(k->applied_dir);
	return strncmp(file, k->applied_dir, n) == 0 && file[n] == '/';
}

static void error_status(struct kubelet *k, const char *file, const char *msg)
{
	_cleanup_free_ char *name = NULL, *json = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	if (kubelet_error_status_name(file, is_applied(k, file), &name) < 0)
		return;
	if (!msg) {
		(void)unlinkat(k->status_fd, name, 0);
		return;
	}
	if (kubelet_error_status_build(file, msg, &json) < 0 ||
	    write_file_atomic_at(k->status_fd, name, json, strlen(json), 0644, false, &err) < 0)
		log_warn("kubelet: status of %s: %s", file, err ? err->msg : "out of memory");
}

/* Takes the scan's errors as the current ones. */
static void errors_update(struct kubelet *k, struct scan *s)
{
	for (size_t i = 0; i < s->n_errors; i++) {
		const struct kerr *old = kerr_find(k->errors, k->n_errors, s->errors[i].file);
		if (old && strcmp(old->msg, s->errors[i].msg) == 0)
			continue;
		log_error("kubelet: %s", s->errors[i].msg);
		error_status(k, s->errors[i].file, s->errors[i].msg);
	}
	for (size_t i = 0; i < k->n_errors; i++)
		if (!kerr_find(s->errors, s->n_errors, k->errors[i].file))
			error_status(k, k->errors[i].file, NULL);
	kerrs_free(k->errors, k->n_errors);
	k->errors = TAKE_PTR(s->errors);
	k->n_errors = s->n_errors;
	s->n_errors = 0;
}

/* ---- workers ---- */

/* The list changes under k->lock: kubelet_apply reads it from other threads. */
static int pods_add(struct kubelet *k, struct kpod *p)
{
	pthread_mutex_lock(&k->lock);
	struct kpod **v = realloc(k->pods, (k->n_pods + 1) * sizeof(*v));
	if (v) {
		k->pods = v;
		v[k->n_pods++] = p;
	}
	pthread_mutex_unlock(&k->lock);
	return v ? 0 : -ENOMEM;
}

static void worker_stop(struct kubelet *k, struct kpod *p, bool remove)
{
	pthread_mutex_lock(&k->lock);
	if (!p->stop)
		p->remove = remove;
	p->stop = true;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&k->lock);
}

/* Joins the workers that finished a removal. */
static void workers_reap(struct kubelet *k)
{
	for (;;) {
		struct kpod *done = NULL;
		pthread_mutex_lock(&k->lock);
		for (size_t i = 0; i < k->n_pods && !done; i++) {
			if (!k->pods[i]->finished)
				continue;
			done = k->pods[i];
			memmove(&k->pods[i], &k->pods[i + 1], (k->n_pods - i - 1) * sizeof(*k->pods));
			k->n_pods--;
		}
		pthread_mutex_unlock(&k->lock);
		if (!done)
			return;
		pthread_join(done->thread, NULL);
		kpod_free(done);
	}
}

static bool worker_wanted(const struct kpod *p, const struct scan *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i].file, p->file) == 0 && strcmp(s->v[i].hash, p->hash) == 0)
			return true;
	return false;
}

static struct kpod *worker_by_key(struct kubelet *k, const struct pod_manifest *m)
{
	for (size_t i = 0; i < k->n_pods; i++) {
		const struct pod_metadata *md = &k->pods[i]->man->metadata;
		if (strcmp(md->name, m->metadata.name) == 0 &&
		    strcmp(md->namespace, m->metadata.namespace) == 0)
			return k->pods[i];
	}
	return NULL;
}

static void worker_start(struct kubelet *k, struct desired *d, const char *adopt_id)
{
	struct kpod *p = kpod_new(k, d->man, d->file, d->hash);
	if (!p) {
		log_error("kubelet: %s: out of memory", d->file);
		return;
	}
	d->man = NULL; /* the worker's now */
	if ((adopt_id && !(p->adopt_id = strdup(adopt_id))) || pods_add(k, p) < 0) {
		kpod_free(p);
		return;
	}
	int r = kpod_start(p);
	if (r < 0) {
		log_error("kubelet: %s: starting its worker: %s", p->file, strerror(-r));
		pthread_mutex_lock(&k->lock);
		p->finished = true; /* reaped without a join */
		k->n_pods--;
		pthread_mutex_unlock(&k->lock);
		kpod_free(p);
		return;
	}
	log_info("kubelet: %s: pod %s (%s)%s", p->file, p->key, p->hash,
		 adopt_id ? ", adopting the running one" : "");
}

/* ---- adoption at start ---- */

static char *label_of(const char *labels_json, const char *key)
{
	_cleanup_(bjson_freep) struct json *j = NULL;
	if (!labels_json || bjson_parse(labels_json, &j, NULL) < 0)
		return NULL;
	const char *v = bjson_string(bjson_object_get(j, key));
	return v ? strdup(v) : NULL;
}

/* Pods an earlier berthd's loop made: adopted when their file still holds the same manifest,
 * else stopped and removed. */
static void adopt_all(struct kubelet *k, struct scan *s)
{
	struct manager_pod *v = NULL;
	size_t n = 0;
	_cleanup_error_ struct berth_error *err = NULL;
	if (manager_pod_list(k->m, &v, &n, &err) < 0) {
		log_warn("kubelet: listing pods to adopt: %s", err->msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *file = label_of(v[i].rec.labels_json, KUBELET_LABEL_FILE);
		_cleanup_free_ char *hash = label_of(v[i].rec.labels_json, KUBELET_LABEL_HASH);
		if (!file)
			continue;
		struct desired *d = NULL;
		for (size_t j = 0; j < s->n && !d; j++)
			if (s->v[j].man && strcmp(s->v[j].file, file) == 0 && hash &&
			    strcmp(s->v[j].hash, hash) == 0 && !worker_by_key(k, s->v[j].man))
				d = &s->v[j];
		if (d)
			worker_start(k, d, v[i].rec.id);
		else
			kubelet_remove_orphan(k, &v[i]);
	}
	manager_pod_list_free(v, n);
}

/* ---- the supervisor ---- */

static void reconcile(struct kubelet *k, struct scan *s, bool first)
{
	workers_reap(k);
	if (first)
		adopt_all(k, s);
	for (size_t i = 0; i < k->n_pods; i++)
		if (!worker_wanted(k->pods[i], s))
			worker_stop(k, k->pods[i], true);
	for (size_t i = 0; i < s->n; i++) {
		struct desired *d = &s->v[i];
		if (!d->man)
			continue;
		struct kpod *p = worker_by_key(k, d->man);
		if (!p) /* else running, or still being removed: started once that is done */
			worker_start(k, d, NULL);
	}
}

static void watch_dirs(struct kubelet *k)
{
	const uint32_t mask = IN_CREATE | IN_DELETE | IN_CLOSE_WRITE | IN_MOVED_TO |
			      IN_MOVED_FROM | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
	if (k->inotify_fd < 0)
		return;
	/* adding a watch again is harmless, and picks up a directory made since */
	if (k->cfg->manifest_dir)
		(void)inotify_add_watch(k->inotify_fd, k->cfg->manifest_dir, mask);
	(void)inotify_add_watch(k->inotify_fd, k->applied_dir, mask);
}

static void drain(int fd)
{
	char buf[4096];
	while (fd >= 0 && read(fd, buf, sizeof(buf)) > 0)
		;
}

static bool pending_removals(struct kubelet *k)
{
	bool any = false;
	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < k->n_pods; i++)
		any = any || k->pods[i]->stop;
	pthread_mutex_unlock(&k->lock);
	return any;
}

/* Waits for an inotify event, a kick or the rescan period; false when stopping. */
static bool supervisor_wait(struct kubelet *k)
{
	int64_t timeout = pending_removals(k) ? KUBELET_TICK_MS
					      : (int64_t)k->cfg->manifest_check_interval * 1000;
	struct pollfd fds[2] = { { .fd = k->wake_fd[0], .events = POLLIN },
				 { .fd = k->inotify_fd, .events = POLLIN } };
	int r = poll(fds, k->inotify_fd >= 0 ? 2 : 1, (int)timeout);
	if (r > 0 && (fds[1].revents & POLLIN)) {
		poll(NULL, 0, DEBOUNCE_MS); /* an editor's write comes in pieces */
		drain(k->inotify_fd);
	}
	drain(k->wake_fd[0]);
	pthread_mutex_lock(&k->lock);
	bool stop = k->stop;
	pthread_mutex_unlock(&k->lock);
	return !stop;
}

static void *supervisor_main(void *arg)
{
	struct kubelet *k = arg;
	bool first = true;
	do {
		struct scan s = { 0 };
		watch_dirs(k);
		if (k->cfg->manifest_dir)
			scan_dir(&s, k->cfg->manifest_dir);
		scan_dir(&s, k->applied_dir);
		errors_update(k, &s);
		reconcile(k, &s, first);
		first = false;
		scan_clear(&s);
	} while (supervisor_wait(k));
	return NULL;
}

/* ---- start and stop ---- */

static int make_dirs(struct kubelet *k, struct berth_error **err)
{
	if (asprintf(&k->dir, "%s/kubelet", k->cfg->state) < 0 ||
	    asprintf(&k->status_dir, "%s/status", k->dir) < 0 ||
	    asprintf(&k->pods_dir, "%s/pods", k->dir) < 0 ||
	    asprintf(&k->applied_dir, "%s/manifests", k->cfg->root) < 0)
		return berth_error_set(err, ENOMEM, "out of memory");
	const char *dirs[] = { k->dir, k->status_dir, k->pods_dir, k->applied_dir };
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		if (mkdir(dirs[i], i == 3 ? 0700 : 0755) < 0 && errno != EEXIST)
			return berth_error_setsys(err, errno, "kubelet: %s", dirs[i]);
	/* statuses are rewritten by the workers: none from an earlier run stays */
	int r = remove_tree_at(AT_FDCWD, k->status_dir);
	if (r < 0 || mkdir(k->status_dir, 0755) < 0)
		return berth_error_setsys(err, r < 0 ? -r : errno, "kubelet: %s", k->status_dir);
	k->status_fd = open(k->status_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (k->status_fd < 0)
		return berth_error_setsys(err, errno, "kubelet: %s", k->status_dir);
	return 0;
}

int kubelet_start(const struct berthd_config *cfg, struct manager *m, struct kubelet **ret,
		  struct berth_error **err)
{
	struct kubelet *k = calloc(1, sizeof(*k));
	if (!k)
		return berth_error_set(err, ENOMEM, "out of memory");
	k->cfg = cfg;
	k->m = m;
	k->status_fd = k->inotify_fd = k->wake_fd[0] = k->wake_fd[1] = -EBADF;
	k->backoff = (struct kubelet_backoff){ cfg->restart_backoff * NS_PER_S,
					       cfg->restart_backoff_max * NS_PER_S,
					       cfg->restart_backoff_reset * NS_PER_S };
	pthread_mutex_init(&k->lock, NULL);
	int r = make_dirs(k, err);
	if (r == 0 && pipe2(k->wake_fd, O_CLOEXEC | O_NONBLOCK) < 0)
		r = berth_error_setsys(err, errno, "kubelet: pipe");
	if (r == 0) {
		k->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
		if (k->inotify_fd < 0)
			log_warn("kubelet: inotify: %m (changes are seen at each rescan only)");
		if ((r = -pthread_create(&k->thread, NULL, supervisor_main, k)) < 0)
			berth_error_setsys(err, -r, "kubelet: thread");
	}
	if (r < 0) {
		kubelet_free(k);
		return r;
	}
	k->thread_started = true;
	log_info("kubelet: watching %s and %s (rescan every %us)",
		 cfg->manifest_dir ? cfg->manifest_dir : "(no manifest directory)", k->applied_dir,
		 cfg->manifest_check_interval);
	*ret = k;
	return 0;
}

void kubelet_free(struct kubelet *k)
{
	if (!k)
		return;
	if (k->thread_started) {
		pthread_mutex_lock(&k->lock);
		k->stop = true;
		pthread_mutex_unlock(&k->lock);
		kick(k);
		pthread_join(k->thread, NULL);
	}
	for (size_t i = 0; i < k->n_pods; i++)
		worker_stop(k, k->pods[i], false);
	for (size_t i = 0; i < k->n_pods; i++) {
		pthread_join(k->pods[i]->thread, NULL);
		kpod_free(k->pods[i]);
	}
	free(k->pods);
	kerrs_free(k->errors, k->n_errors);
	for (int i = 0; i < 2; i++)
		if (k->wake_fd[i] >= 0)
			close(k->wake_fd[i]);
	if (k->inotify_fd >= 0)
		close(k->inotify_fd);
	if (k->status_fd >= 0)
		close(k->status_fd);
	pthread_mutex_destroy(&k->lock);
	free(k->dir);
	free(k->status_dir);
	free(k->pods_dir);
	free(k->applied_dir);
	free(k);
}

/* ---- status ---- */

int kubelet_status_json(struct kubelet *k, const char *namespace, const char *name,
			char **ret_json, struct berth_error **err)
{
	_cleanup_free_ char *file = NULL;
	if (!name || kubelet_status_name(namespace, name, &file) < 0)
		return berth_error_set(err, EINVAL, "a pod name is required");
	int r = read_file_at(k->status_fd, file, ret_json, NULL, NULL);
	if (r == -ENOENT)
		return berth_error_set(err, ENOENT, "no static pod %s/%s",
				       namespace ? namespace : "default", name);
	if (r < 0)
		return berth_error_setsys(err, -r, "%s/%s", k->status_dir, file);
	return 0;
}

static int status_name(const struct dirent *de)
{
	size_t n = strlen(de->d_name);
	return de->d_name[0] != '.' && n > 5 && strcmp(de->d_name + n - 5, ".json") == 0;
}

int kubelet_list_json(struct kubelet *k, char **ret_json, struct berth_error **err)
{
	struct dirent **names = NULL;
	int n = scandir(k->status_dir, &names, status_name, name_cmp);
	if (n < 0)
		return berth_error_setsys(err, errno, "%s", k->status_dir);
	_cleanup_free_ char *buf = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&buf, &size);
	int r = out ? 0 : -ENOMEM;
	if (out)
		fputc('[', out);
	for (int i = 0, first = 1; i < n; i++) {
		_cleanup_free_ char *text = NULL;
		if (r == 0 && read_file_at(k->status_fd, names[i]->d_name, &text, NULL, NULL) == 0) {
			fprintf(out, "%s%s", first ? "" : ",", text);
			first = 0;
		}
		free(names[i]);
	}
	free(names);
	if (out) {
		fputc(']', out);
		if (fclose(out) != 0)
			r = -ENOMEM;
	}
	if (r < 0)
		return berth_error_set(err, ENOMEM, "out of memory");
	*ret_json = TAKE_PTR(buf);
	return 0;
}

/* ---- apply and delete ---- */

static int applied_name(const char *namespace, const char *name, char **ret)
{
	if (asprintf(ret, "%s_%s.yaml", namespace ? namespace : "default", name) < 0) {
		*ret = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* A pod of the manifest directory by that name: apply may not shadow it. */
static const char *dir_pod_file(struct kubelet *k, const struct pod_manifest *m)
{
	const char *found = NULL;
	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < k->n_pods && !found; i++) {
		const struct kpod *p = k->pods[i];
		if (strcmp(p->man->metadata.name, m->metadata.name) == 0 &&
		    strcmp(p->man->metadata.namespace, m->metadata.namespace) == 0 &&
		    !is_applied(k, p->file))
			found = p->file;
	}
	pthread_mutex_unlock(&k->lock);
	return found;
}

int kubelet_apply(struct kubelet *k, const char *text, size_t len, const char *file,
		  char **ret_pod_key, struct berth_error **err)
{
	_cleanup_(pod_manifest_freep) struct pod_manifest *m = NULL;
	_cleanup_free_ char *name = NULL, *key = NULL;
	int r = pod_manifest_parse(text, len, file ? file : "<apply>", &m, err);
	if (r < 0 || (r = kubelet_check_supported(m, err)) < 0)
		return r;
	const char *other = dir_pod_file(k, m);
	if (other)
		return berth_error_set(err, EEXIST, "pod %s/%s is the manifest directory's (%s)",
				       m->metadata.namespace, m->metadata.name, other);
	if (applied_name(m->metadata.namespace, m->metadata.name, &name) < 0 ||
	    asprintf(&key, "%s/%s", m->metadata.namespace, m->metadata.name) < 0)
		return berth_error_set(err, ENOMEM, "out of memory");
	_cleanup_close_ int dfd = open(k->applied_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return berth_error_setsys(err, errno, "%s", k->applied_dir);
	if ((r = write_file_atomic_at(dfd, name, text, len, 0600, true, err)) < 0)
		return r;
	kick(k);
	*ret_pod_key = TAKE_PTR(key);
	return 0;
}

int kubelet_delete(struct kubelet *k, const char *text, size_t len, const char *namespace,
		   const char *name, struct berth_error **err)
{
	_cleanup_(pod_manifest_freep) struct pod_manifest *m = NULL;
	_cleanup_free_ char *file = NULL;
	if (text) {
		int r = pod_manifest_parse(text, len, "<delete>", &m, err);
		if (r < 0)
			return r;
		namespace = m->metadata.namespace;
		name = m->metadata.name;
	}
	if (!name)
		return berth_error_set(err, EINVAL, "a pod name or a manifest is required");
	if (applied_name(namespace, name, &file) < 0)
		return berth_error_set(err, ENOMEM, "out of memory");
	_cleanup_close_ int dfd = open(k->applied_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return berth_error_setsys(err, errno, "%s", k->applied_dir);
	if (unlinkat(dfd, file, 0) < 0)
		return errno == ENOENT ? berth_error_set(err, ENOENT, "no applied pod %s/%s",
							 namespace ? namespace : "default", name)
				       : berth_error_setsys(err, errno, "%s/%s", k->applied_dir,
							    file);
	kick(k);
	return 0;
}
