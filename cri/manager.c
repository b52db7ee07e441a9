/* The manager's core: its objects and tables, the loop-thread job queue (events and shim
 * watches), and the recording of container state changes. */
#include "cri/manager-internal.h"
#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/log.h"
#include "cgroup/cgroup.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_WAIT_FAILURES 5

struct loop_job {
	struct loop_job *next;
	bool is_event;
	struct manager_event ev; /* is_event */
	int fd;			 /* a watch: the shim's wait connection */
	struct mctr *c;
};

struct watch {
	uv_poll_t poll;
	uv_work_t work;
	struct manager *m;
	struct mctr *c;
	int fd;
	bool shutdown; /* closed by manager_close: no answer is read */
	struct watch *prev, *next;
};

/* ---- ids, time ---- */

int mgr_new_id(char ret[MANAGER_ID_LEN + 1])
{
	unsigned char raw[MANAGER_ID_LEN / 2];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -errno;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(ret + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

bool mgr_valid_id(const char *id)
{
	return id && strlen(id) == MANAGER_ID_LEN &&
	       strspn(id, "0123456789abcdef") == MANAGER_ID_LEN;
}

int64_t mgr_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void mgr_crash_point(struct manager *m, const char *point)
{
	if (!m->crash_at || strcmp(m->crash_at, point) != 0)
		return;
	log_warn("BERTHD_TEST_CRASH=%s: killing berthd here (SIGKILL), as a test asked", point);
	raise(SIGKILL);
}

/* ---- objects ---- */

struct mpod *mpod_new(const char *id)
{
	struct mpod *p = calloc(1, sizeof(*p));
	if (!p || !(p->rec.id = strdup(id))) {
		free(p);
		return NULL;
	}
	p->refs = 1;
	pthread_rwlock_init(&p->op, NULL);
	return p;
}

struct mctr *mctr_new(struct manager *m, const char *id, const char *pod_id)
{
	struct mctr *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->refs = 1;
	pthread_mutex_init(&c->op, NULL);
	if (!(c->rec.id = strdup(id)) || !(c->rec.pod_id = strdup(pod_id)) ||
	    asprintf(&c->shim_dir, "%s/%s", m->shims_dir, id) < 0 ||
	    asprintf(&c->bundle, "%s/%s", m->containers_dir, id) < 0) {
		c->shim_dir = c->bundle = NULL; /* asprintf leaves them undefined on failure */
		mctr_unref(c);
		return NULL;
	}
	return c;
}

struct mpod *mpod_ref(struct mpod *p)
{
	__atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
	return p;
}

void mpod_unref(struct mpod *p)
{
	if (!p || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	pthread_rwlock_destroy(&p->op);
	db_pod_clear(&p->rec);
	pod_config_clear(&p->cfg);
	free(p->cgroup);
	free(p->cgroup_slice);
	free(p);
}

struct mctr *mctr_ref(struct mctr *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void mctr_unref(struct mctr *c)
{
	if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	pthread_mutex_destroy(&c->op);
	db_container_clear(&c->rec);
	free(c->shim_dir);
	free(c->bundle);
	free(c);
}

struct mpod *mpod_find(struct manager *m, const char *id, bool creating_too)
{
	for (size_t i = 0; id && i < m->n_pods; i++)
		if (strcmp(m->pods[i]->rec.id, id) == 0 && (creating_too || !m->pods[i]->creating))
			return m->pods[i];
	return NULL;
}

struct mctr *mctr_find(struct manager *m, const char *id, bool creating_too)
{
	for (size_t i = 0; id && i < m->n_ctrs; i++)
		if (strcmp(m->ctrs[i]->rec.id, id) == 0 && (creating_too || !m->ctrs[i]->creating))
			return m->ctrs[i];
	return NULL;
}

int mpod_get(struct manager *m, const char *id, struct mpod **ret, struct berth_error **err)
{
	pthread_mutex_lock(&m->lock);
	struct mpod *p = mpod_find(m, id, false);
	if (p)
		mpod_ref(p);
	pthread_mutex_unlock(&m->lock);
	if (!p)
		return berth_error_set(err, ENOENT, "pod %s not found", id ? id : "");
	*ret = p;
	return 0;
}

int mctr_get(struct manager *m, const char *id, struct mctr **ret, struct berth_error **err)
{
	pthread_mutex_lock(&m->lock);
	struct mctr *c = mctr_find(m, id, false);
	if (c)
		mctr_ref(c);
	pthread_mutex_unlock(&m->lock);
	if (!c)
		return berth_error_set(err, ENOENT, "container %s not found", id ? id : "");
	*ret = c;
	return 0;
}

static int grow(void **v, size_t n, size_t *cap)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 16;
	void *nv = realloc(*v, ncap * sizeof(void *));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

int mgr_add_pod(struct manager *m, struct mpod *p)
{
	if (grow((void **)&m->pods, m->n_pods, &m->cap_pods) < 0)
		return -ENOMEM;
	m->pods[m->n_pods++] = mpod_ref(p);
	return 0;
}

int mgr_add_ctr(struct manager *m, struct mctr *c)
{
	if (grow((void **)&m->ctrs, m->n_ctrs, &m->cap_ctrs) < 0)
		return -ENOMEM;
	m->ctrs[m->n_ctrs++] = mctr_ref(c);
	return 0;
}

void mgr_drop_pod(struct manager *m, struct mpod *p)
{
	for (size_t i = 0; i < m->n_pods; i++)
		if (m->pods[i] == p) {
			m->pods[i] = m->pods[--m->n_pods];
			p->removed = true;
			mpod_unref(p);
			return;
		}
}

void mgr_drop_ctr(struct manager *m, struct mctr *c)
{
	for (size_t i = 0; i < m->n_ctrs; i++)
		if (m->ctrs[i] == c) {
			m->ctrs[i] = m->ctrs[--m->n_ctrs];
			c->removed = true;
			mctr_unref(c);
			return;
		}
}

int mgr_pod_containers(struct manager *m, const char *pod_id, struct mctr ***ret, size_t *ret_n)
{
	struct mctr **v = calloc(m->n_ctrs + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < m->n_ctrs; i++)
		if (!pod_id || strcmp(m->ctrs[i]->rec.pod_id, pod_id) == 0)
			v[n++] = mctr_ref(m->ctrs[i]);
	*ret = v;
	*ret_n = n;
	return 0;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int mgr_copy_container(const struct mctr *c, struct manager_container *ret)
{
	const struct db_container *s = &c->rec;
	struct manager_container out = { .pid = c->pid };
	struct db_container *d = &out.rec;
	*d = *s;
	d->id = dup_or_null(s->id);
	d->pod_id = dup_or_null(s->pod_id);
	d->name = dup_or_null(s->name);
	d->image = dup_or_null(s->image);
	d->image_id = dup_or_null(s->image_id);
	d->state = dup_or_null(s->state);
	d->reason = dup_or_null(s->reason);
	d->message = dup_or_null(s->message);
	d->log_path = dup_or_null(s->log_path);
	d->config_json = dup_or_null(s->config_json);
	d->labels_json = dup_or_null(s->labels_json);
	d->annotations_json = dup_or_null(s->annotations_json);
	if (!d->id || !d->pod_id || !d->name || !d->state || (s->image && !d->image) ||
	    (s->image_id && !d->image_id) || (s->reason && !d->reason) ||
	    (s->message && !d->message) || (s->log_path && !d->log_path) ||
	    (s->config_json && !d->config_json) || (s->labels_json && !d->labels_json) ||
	    (s->annotations_json && !d->annotations_json)) {
		manager_container_clear(&out);
		return -ENOMEM;
	}
	*ret = out;
	return 0;
}

void manager_container_clear(struct manager_container *c)
{
	db_container_clear(&c->rec);
	c->pid = 0;
}

void manager_container_list_free(struct manager_container *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		manager_container_clear(&v[i]);
	free(v);
}

/* ---- the loop's job queue ---- */

/* false when the manager is closing (the job was not queued) */
static bool push_job(struct manager *m, struct loop_job *job)
{
	pthread_mutex_lock(&m->qlock);
	bool ok = !m->closing;
	if (ok) {
		if (m->q_tail)
			m->q_tail->next = job;
		else
			m->q_head = job;
		m->q_tail = job;
		uv_async_send(&m->async);
	}
	pthread_mutex_unlock(&m->qlock);
	return ok;
}

const char *manager_event_name(enum manager_event_type t)
{
	static const char *const names[] = { "created", "started", "exited", "removed" };
	return names[t];
}

void mgr_emit(struct manager *m, enum manager_event_type type, const struct mctr *c)
{
	struct loop_job *job = calloc(1, sizeof(*job));
	if (!job) {
		log_error("container %s: event %s lost: out of memory", c->rec.id,
			  manager_event_name(type));
		return;
	}
	job->is_event = true;
	job->ev.type = type;
	snprintf(job->ev.container_id, sizeof(job->ev.container_id), "%s", c->rec.id);
	snprintf(job->ev.pod_id, sizeof(job->ev.pod_id), "%s", c->rec.pod_id);
	job->ev.time_ns = mgr_now_ns();
	if (type == MANAGER_EVENT_EXITED) {
		job->ev.exit_code = c->rec.exit_code;
		snprintf(job->ev.reason, sizeof(job->ev.reason), "%s",
			 c->rec.reason ? c->rec.reason : "");
	}
	if (!push_job(m, job))
		free(job);
}

static void finish_work_cb(uv_work_t *req)
{
	struct watch *w = req->data;
	struct shim_status st;
	_cleanup_error_ struct berth_error *e = NULL;
	int r = shim_wait_finish(w->fd, &st, &e);
	w->fd = -EBADF; /* closed by shim_wait_finish */
	if (r == 0 && st.state == SHIM_STATE_STOPPED) {
		__atomic_store_n(&w->c->wait_failures, 0, __ATOMIC_RELAXED);
		mgr_container_exited(w->m, w->c, &st);
	} else {
		/* the connection ended without an answer (a shim that died or was shut down): ask
		 * again, which falls back to the exit record; a shim that keeps dropping the
		 * connection while its container runs is not re-armed for ever */
		log_debug("container %s: wait: %s", w->c->rec.id, e ? e->msg : "no exit status");
		bool rewatch = __atomic_add_fetch(&w->c->wait_failures, 1, __ATOMIC_RELAXED) <=
			       MAX_WAIT_FAILURES;
		_cleanup_error_ struct berth_error *e2 = NULL;
		if (mgr_container_reconcile(w->m, w->c, rewatch, &e2) < 0)
			log_warn("container %s: %s", w->c->rec.id,
				 e2 ? e2->msg : "reconcile failed");
		else if (!rewatch)
			log_error("container %s: its shim dropped %u wait connections in a row: "
				  "its exit "
				  "is no longer watched (status asks the shim)",
				  w->c->rec.id, MAX_WAIT_FAILURES);
	}
	mctr_unref(TAKE_PTR(w->c));
}

static void finish_after_cb(uv_work_t *req, int status)
{
	struct watch *w = req->data;
	if (w->c) /* the work never ran (cancelled) */
		mctr_unref(w->c);
	if (w->fd >= 0)
		close(w->fd);
	free(w);
}

static void watch_unlink(struct manager *m, struct watch *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		m->watches = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
}

static void watch_closed_cb(uv_handle_t *h)
{
	struct watch *w = h->data;
	if (w->shutdown || uv_queue_work(w->m->loop, &w->work, finish_work_cb, finish_after_cb) < 0)
		finish_after_cb(&w->work, UV_ECANCELED);
}

static void watch_poll_cb(uv_poll_t *h, int status, int events)
{
	struct watch *w = h->data;
	/* one answer per connection: stop polling before the fd is handed to a worker */
	uv_poll_stop(h);
	watch_unlink(w->m, w);
	uv_close((uv_handle_t *)h, watch_closed_cb);
}

static void arm_watch(struct manager *m, int fd, struct mctr *c)
{
	struct watch *w = calloc(1, sizeof(*w));
	if (!w) {
		log_error("container %s: cannot watch its shim: out of memory", c->rec.id);
		close(fd);
		mctr_unref(c);
		return;
	}
	*w = (struct watch){ .m = m, .c = c, .fd = fd };
	w->poll.data = w->work.data = w;
	int r = uv_poll_init(m->loop, &w->poll, fd);
	if (r < 0) { /* not for a connected socket; a worker must not block on it either */
		log_error("container %s: cannot poll its shim's wait connection: %s: its exit is not "
			  "watched (status asks the shim)",
			  c->rec.id, uv_strerror(r));
		finish_after_cb(&w->work, UV_ECANCELED);
		return;
	}
	w->next = m->watches;
	if (m->watches)
		m->watches->prev = w;
	m->watches = w;
	uv_poll_start(&w->poll, UV_READABLE | UV_DISCONNECT, watch_poll_cb);
}

/* ---- event receivers ---- */

struct manager_subscription {
	manager_event_cb cb; /* NULL: unsubscribed while the list was walked */
	void *userdata;
	struct manager_subscription *next;
};

int manager_event_subscribe(struct manager *m, manager_event_cb cb, void *userdata,
			    struct manager_subscription **ret)
{
	struct manager_subscription *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*s = (struct manager_subscription){ .cb = cb, .userdata = userdata, .next = m->subs };
	m->subs = s;
	*ret = s;
	return 0;
}

/* Frees the entries unsubscribed while events were delivered. */
static void sweep_subscriptions(struct manager *m)
{
	struct manager_subscription **pp = &m->subs;
	while (*pp) {
		struct manager_subscription *s = *pp;
		if (s->cb) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		free(s);
	}
}

void manager_event_unsubscribe(struct manager *m, struct manager_subscription *s)
{
	if (!s)
		return;
	s->cb = NULL;
	if (!m->dispatching)
		sweep_subscriptions(m);
}

static void deliver_event(struct manager *m, const struct manager_event *ev)
{
	if (m->event_cb)
		m->event_cb(ev, m->event_userdata);
	m->dispatching = true;
	for (struct manager_subscription *s = m->subs; s; s = s->next)
		if (s->cb)
			s->cb(ev, s->userdata);
	m->dispatching = false;
	sweep_subscriptions(m);
}

static void async_cb(uv_async_t *h)
{
	struct manager *m = h->data;
	pthread_mutex_lock(&m->qlock);
	struct loop_job *job = m->q_head;
	m->q_head = m->q_tail = NULL;
	pthread_mutex_unlock(&m->qlock);
	while (job) {
		struct loop_job *next = job->next;
		if (job->is_event)
			deliver_event(m, &job->ev);
		else if (!job->is_event)
			arm_watch(m, job->fd, job->c);
		free(job);
		job = next;
	}
}

void mgr_watch(struct manager *m, struct mctr *c)
{
	int fd = -EBADF;
	_cleanup_error_ struct berth_error *e = NULL;
	if (shim_wait_open(c->shim_dir, &fd, &e) < 0) {
		/* no shim to wait on: what happened is in its exit record, or it died; a shim that
		 * still runs its container is asked again, a few times */
		log_debug("container %s: wait: %s", c->rec.id, e ? e->msg : "");
		bool again = __atomic_add_fetch(&c->wait_failures, 1, __ATOMIC_RELAXED) <=
			     MAX_WAIT_FAILURES;
		_cleanup_error_ struct berth_error *e2 = NULL;
		if (mgr_container_reconcile(m, c, again, &e2) < 0)
			log_warn("container %s: %s", c->rec.id, e2 ? e2->msg : "reconcile failed");
		return;
	}
	struct loop_job *job = calloc(1, sizeof(*job));
	if (!job) {
		close(fd);
		log_error("container %s: cannot watch its shim: out of memory", c->rec.id);
		return;
	}
	job->fd = fd;
	job->c = mctr_ref(c);
	if (!push_job(m, job)) { /* closing: the next start reconnects */
		close(fd);
		mctr_unref(c);
		free(job);
	}
}

/* ---- state changes ---- */

static void db_update(struct manager *m, struct mctr *c)
{
	_cleanup_error_ struct berth_error *e = NULL;
	if (db_container_update_status(m->db, &c->rec, &e) < 0)
		log_error("container %s: recording state %s: %s", c->rec.id, c->rec.state,
			  e ? e->msg : "database error");
}

static int set_str(char **dst, const char *s)
{
	char *copy = NULL;
	if (s && !(copy = strdup(s)))
		return -ENOMEM;
	free(*dst);
	*dst = copy;
	return 0;
}

void mgr_container_running(struct manager *m, struct mctr *c, const struct shim_status *st)
{
	bool was_created = strcmp(c->rec.state, "created") == 0;
	const char *want = st->state == SHIM_STATE_RUNNING ? "running" : "created";
	c->pid = st->pid;
	if (strcmp(c->rec.state, want) == 0)
		return;
	if (set_str(&c->rec.state, want) < 0)
		return;
	c->rec.started_ns = st->started_ns;
	db_update(m, c);
	if (was_created && st->state == SHIM_STATE_RUNNING)
		mgr_emit(m, MANAGER_EVENT_STARTED, c);
}

void mgr_container_exited(struct manager *m, struct mctr *c, const struct shim_status *st)
{
	pthread_mutex_lock(&m->lock);
	if (c->removed || c->creating || strcmp(c->rec.state, "exited") == 0) {
		pthread_mutex_unlock(&m->lock);
		return;
	}
	/* a container that ran and exited before its start was recorded still gets "started" */
	if (st && st->started_ns && strcmp(c->rec.state, "created") == 0) {
		c->rec.started_ns = st->started_ns;
		mgr_emit(m, MANAGER_EVENT_STARTED, c);
	}
	const char *reason;
	if (st) {
		c->rec.exit_code = st->exit_code;
		c->rec.signal = st->signal;
		c->rec.oom_killed = st->oom_killed;
		c->rec.finished_ns = st->finished_ns ? st->finished_ns : mgr_now_ns();
		reason = st->oom_killed ? "OOMKilled" : st->exit_code == 0 ? "Completed" : "Error";
		set_str(&c->rec.message, NULL);
	} else {
		c->rec.exit_code = MANAGER_SHIM_DIED_EXIT_CODE;
		c->rec.signal = 0;
		c->rec.oom_killed = false;
		c->rec.finished_ns = mgr_now_ns();
		reason = MANAGER_REASON_SHIM_DIED;
		set_str(&c->rec.message, "the shim died without recording the container's exit");
	}
	set_str(&c->rec.reason, reason);
	set_str(&c->rec.state, "exited");
	c->pid = 0;
	db_update(m, c);
	mgr_emit(m, MANAGER_EVENT_EXITED, c);
	pthread_mutex_unlock(&m->lock);
}

static void shim_died(struct manager *m, struct mctr *c)
{
	log_warn("container %s (%s in pod %s): its shim died without recording the container's "
		 "exit: marked exited (reason %s, exit code %d); killing what is left of it",
		 c->rec.id, c->rec.name, c->rec.pod_id, MANAGER_REASON_SHIM_DIED,
		 MANAGER_SHIM_DIED_EXIT_CODE);
	mgr_container_exited(m, c, NULL);
	_cleanup_error_ struct berth_error *e = NULL;
	if (shim_dir_remove(c->shim_dir, m->runtime_root, c->rec.id, &e) < 0)
		log_error("container %s: cleaning up after its dead shim: %s", c->rec.id,
			  e ? e->msg : "failed");
}

int mgr_container_reconcile(struct manager *m, struct mctr *c, bool rewatch,
			    struct berth_error **err)
{
	pthread_mutex_lock(&m->lock);
	bool done = c->removed || strcmp(c->rec.state, "exited") == 0;
	pthread_mutex_unlock(&m->lock);
	if (done) /* nothing left to learn (its shim may be gone on purpose) */
		return 0;
	struct shim_status st;
	_cleanup_error_ struct berth_error *e = NULL;
	int r = shim_status(c->shim_dir, &st, &e);
	if (r == -ESRCH) {
		shim_died(m, c);
		return 0;
	}
	if (r < 0) {
		berth_error_move(err, &e);
		return berth_error_wrap(err, "status of its shim");
	}
	if (st.state == SHIM_STATE_STOPPED) {
		mgr_container_exited(m, c, &st);
		return 0;
	}
	pthread_mutex_lock(&m->lock);
	if (!c->removed)
		mgr_container_running(m, c, &st);
	pthread_mutex_unlock(&m->lock);
	if (rewatch)
		mgr_watch(m, c);
	return 0;
}

/* ---- the manager ---- */

static int mkdir_mode(const char *path, mode_t mode, struct berth_error **err)
{
	_cleanup_free_ char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST)
			return berth_error_setsys(err, errno, "%s", copy);
		*p = '/';
	}
	if (mkdir(copy, mode) < 0 && errno != EEXIST)
		return berth_error_setsys(err, errno, "%s", copy);
	return 0;
}

static int open_store(struct manager *m, struct berth_error **err)
{
	const struct berthd_config *cfg = m->cfg;
	struct image_store_options o = {
		.root = cfg->root,
		/* the configured file is optional: without it, the store's own default applies */
		.registries_config = cfg->registries && access(cfg->registries, F_OK) == 0
					     ? cfg->registries
					     : NULL,
		.auth_file = cfg->auth_file,
	};
	return image_store_open(&o, &m->images, err);
}

static int setup_net(struct manager *m, struct berth_error **err)
{
	const struct berthd_config *cfg = m->cfg;
	const char *net = cfg->network ? cfg->network : "bridge";
	m->net = (struct netns_config){
		.state_dir = cfg->state,
		.bridge = cfg->bridge,
		.subnet4 = cfg->subnet,
		.subnet6 = cfg->subnet6,
		.mtu = cfg->mtu,
	};
	if (strcmp(net, "cni") == 0) {
		m->net.cni_conf_dir = cfg->cni_conf_dir;
		m->net.cni_bin_dir = cfg->cni_bin_dir;
	} else if (strcmp(net, "bridge") != 0 && strcmp(net, "none") != 0) {
		return berth_error_set(err, EINVAL, "network: \"%s\" is not bridge, cni or none",
				       net);
	}
	return 0;
}

static int manager_init(struct manager *m, struct berth_error **err)
{
	const struct berthd_config *cfg = m->cfg;
	_cleanup_free_ char *db_path = NULL;
	int r;
	if (asprintf(&m->containers_dir, "%s/containers", cfg->root) < 0 ||
	    asprintf(&m->shims_dir, "%s/shims", cfg->state) < 0 ||
	    asprintf(&m->runtime_root, "%s/runtime", cfg->state) < 0 ||
	    asprintf(&m->pods_state, "%s/pods", cfg->state) < 0 ||
	    asprintf(&db_path, "%s/%s", cfg->root, DB_FILE) < 0)
		return -ENOMEM;
	if ((r = mkdir_mode(cfg->root, 0711, err)) < 0 ||
	    (r = mkdir_mode(cfg->state, 0711, err)) < 0 ||
	    (r = mkdir_mode(m->containers_dir, 0700, err)) < 0 ||
	    (r = mkdir_mode(m->shims_dir, 0700, err)) < 0 ||
	    (r = mkdir_mode(m->runtime_root, 0700, err)) < 0)
		return r;
	if ((r = setup_net(m, err)) < 0 || (r = db_open(db_path, &m->db, err)) < 0 ||
	    (r = open_store(m, err)) < 0)
		return r;
	_cleanup_free_ char *mnt = NULL;
	m->have_cgroup2 = cgroup_mountpoint(&mnt, NULL) == 0;
	if (!m->have_cgroup2)
		log_warn("no cgroup2 hierarchy is mounted: pods get no cgroup of their own");
	m->crash_at = getenv("BERTHD_TEST_CRASH");
	if ((r = uv_async_init(m->loop, &m->async, async_cb)) < 0)
		return berth_error_set(err, -r, "libuv: %s", uv_strerror(r));
	m->async.data = m;
	return 0;
}

int manager_new(const struct berthd_config *cfg, uv_loop_t *loop, struct manager **ret,
		struct berth_error **err)
{
	struct manager *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->cfg = cfg;
	m->loop = loop;
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->qlock, NULL);
	int r = manager_init(m, err);
	if (r < 0) {
		m->closing = true; /* the async handle was never initialised */
		manager_free(m);
		return r;
	}
	*ret = m;
	return 0;
}

void manager_set_event_cb(struct manager *m, manager_event_cb cb, void *userdata)
{
	m->event_cb = cb;
	m->event_userdata = userdata;
}

void manager_close(struct manager *m)
{
	pthread_mutex_lock(&m->qlock);
	bool was_closing = m->closing;
	m->closing = true;
	struct loop_job *job = m->q_head;
	m->q_head = m->q_tail = NULL;
	pthread_mutex_unlock(&m->qlock);
	if (was_closing)
		return;
	while (job) {
		struct loop_job *next = job->next;
		if (!job->is_event) {
			close(job->fd);
			mctr_unref(job->c);
		}
		free(job);
		job = next;
	}
	/* the shims keep waiting connections from nobody; the next berthd reconnects */
	while (m->watches) {
		struct watch *w = m->watches;
		watch_unlink(m, w);
		w->shutdown = true;
		uv_poll_stop(&w->poll);
		uv_close((uv_handle_t *)&w->poll, watch_closed_cb);
	}
	uv_close((uv_handle_t *)&m->async, NULL);
}

struct manager *manager_free(struct manager *m)
{
	if (!m)
		return NULL;
	for (size_t i = 0; i < m->n_ctrs; i++)
		mctr_unref(m->ctrs[i]);
	for (size_t i = 0; i < m->n_pods; i++)
		mpod_unref(m->pods[i]);
	free(m->ctrs);
	free(m->pods);
	while (m->subs) { /* receivers that never unsubscribed (the loop ended first) */
		struct manager_subscription *s = m->subs;
		m->subs = s->next;
		free(s);
	}
	free(m->own_subnet4);
	free(m->own_subnet6);
	db_close(m->db);
	image_store_free(m->images);
	free(m->containers_dir);
	free(m->shims_dir);
	free(m->runtime_root);
	free(m->pods_state);
	pthread_mutex_destroy(&m->lock);
	pthread_mutex_destroy(&m->qlock);
	free(m);
	return NULL;
}
