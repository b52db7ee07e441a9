/* The pod worker: one thread per static pod, as kubelet's pod workers. It makes the sandbox
 * (or adopts one an earlier berthd made), runs the init containers in order and then the
 * containers, ticks every KUBELET_TICK_MS to record exits, restart with back-off and run probes,
 * enforces activeDeadlineSeconds, writes the status file on every change, and on removal stops
 * the pod gracefully and removes it with its volumes. */
#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "base/log.h"
#include "cri/kubelet-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int make_uid(char **ret)
{
	unsigned char b[16];
	_cleanup_close_ int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
		return -EIO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	return asprintf(ret,
			"%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
			b[12], b[13], b[14], b[15]) < 0
		       ? -ENOMEM
		       : 0;
}

static void kctr_init(struct kctr *c, const struct pod_container *s, bool init, bool has_init)
{
	*c = (struct kctr){ .spec = s, .init = init };
	c->live.spec = s->liveness_probe;
	c->readiness.spec = s->readiness_probe;
	c->startup.spec = s->startup_probe;
	kctr_set_waiting(c, !init && has_init ? "PodInitializing" : "ContainerCreating", NULL);
}

struct kpod *kpod_new(struct kubelet *k, struct pod_manifest *man, const char *file,
		      const char *hash)
{
	struct kpod *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->k = k;
	p->man = man;
	const struct pod_spec *s = &man->spec;
	p->n_init = s->n_init_containers;
	p->n_ctrs = s->n_init_containers + s->n_containers;
	p->ctrs = calloc(p->n_ctrs, sizeof(*p->ctrs));
	p->file = strdup(file);
	p->hash = strdup(hash);
	p->phase = "Pending";
	/* kpod_sleep's deadlines are on the monotonic clock */
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&p->wake, &attr);
	pthread_condattr_destroy(&attr);
	if (asprintf(&p->key, "%s/%s", man->metadata.namespace, man->metadata.name) < 0)
		p->key = NULL;
	int r = man->metadata.uid ? ((p->uid = strdup(man->metadata.uid)) ? 0 : -ENOMEM)
				  : make_uid(&p->uid);
	if (!p->ctrs || !p->file || !p->hash || !p->key || r < 0) {
		kpod_free(p);
		return NULL;
	}
	for (size_t i = 0; i < p->n_ctrs; i++)
		kctr_init(&p->ctrs[i], i < p->n_init ? &s->init_containers[i]
						     : &s->containers[i - p->n_init],
			  i < p->n_init, p->n_init > 0);
	return p;
}

void kpod_free(struct kpod *p)
{
	if (!p)
		return;
	for (size_t i = 0; p->ctrs && i < p->n_ctrs; i++) {
		struct kctr *c = &p->ctrs[i];
		free(c->id);
		free(c->prev_id);
		free(c->image_id);
		kterm_clear(&c->cur);
		kterm_clear(&c->last);
	}
	free(p->ctrs);
	pod_manifest_free(p->man);
	free(p->file);
	free(p->hash);
	free(p->key);
	free(p->uid);
	free(p->pod_id);
	free(p->adopt_id);
	free(p->pod_ip);
	free(p->reason);
	free(p->message);
	free(p->volume_error);
	free(p->last_status);
	pthread_cond_destroy(&p->wake);
	free(p);
}

bool kpod_stopping(struct kpod *p)
{
	pthread_mutex_lock(&p->k->lock);
	bool s = p->stop;
	pthread_mutex_unlock(&p->k->lock);
	return s;
}

bool kpod_sleep(struct kpod *p, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t ns = ts.tv_nsec + (ms % 1000) * 1000000;
	ts.tv_sec += (time_t)(ms / 1000 + ns / NS_PER_S);
	ts.tv_nsec = (long)(ns % NS_PER_S);
	pthread_mutex_lock(&p->k->lock);
	while (!p->stop && pthread_cond_timedwait(&p->wake, &p->k->lock, &ts) == 0)
		;
	bool s = p->stop;
	pthread_mutex_unlock(&p->k->lock);
	return s;
}

/* ---- status ---- */

static void status_write(struct kpod *p)
{
	_cleanup_free_ char *json = NULL, *name = NULL;
	if (kubelet_status_build(p, &json) < 0 ||
	    kubelet_status_name(p->man->metadata.namespace, p->man->metadata.name, &name) < 0)
		return;
	if (p->last_status && strcmp(p->last_status, json) == 0)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	if (write_file_atomic_at(p->k->status_fd, name, json, strlen(json), 0644, false, &err) < 0) {
		log_warn("kubelet: %s: status: %s", p->key, err->msg);
		return;
	}
	free(p->last_status);
	p->last_status = TAKE_PTR(json);
}

static void status_remove(struct kpod *p)
{
	_cleanup_free_ char *name = NULL;
	if (kubelet_status_name(p->man->metadata.namespace, p->man->metadata.name, &name) == 0 &&
	    unlinkat(p->k->status_fd, name, 0) < 0 && errno != ENOENT)
		log_warn("kubelet: %s: removing its status file: %m", p->key);
}

static void cond_set(struct kcond *c, bool status, const char *reason_false)
{
	if (c->since_ns && c->status == status)
		return;
	c->status = status;
	c->since_ns = kubelet_now_ns();
	c->reason = status ? NULL : reason_false;
}

/* Kubernetes' getPhase, over the containers (init containers make it Pending). */
static const char *compute_phase(const struct kpod *p)
{
	if (p->failed_fatal || p->deadline_hit)
		return "Failed";
	if (p->init_next < p->n_init)
		return "Pending";
	size_t waiting = 0, running = 0, stopped = 0, failed = 0, n = p->n_ctrs - p->n_init;
	for (size_t i = p->n_init; i < p->n_ctrs; i++) {
		const struct kctr *c = &p->ctrs[i];
		if (c->cur.state == KSTATE_RUNNING)
			running++;
		else if (c->cur.state == KSTATE_TERMINATED) {
			stopped++;
			failed += c->cur.exit_code != 0;
		} else if (c->has_last)
			stopped++, failed += c->last.exit_code != 0;
		else
			waiting++;
	}
	if (waiting)
		return "Pending";
	if (running)
		return "Running";
	if (stopped == n && p->man->spec.restart_policy == POD_RESTART_ALWAYS)
		return "Running";
	for (size_t i = p->n_init; i < p->n_ctrs; i++)
		if (!p->ctrs[i].done)
			return "Running"; /* restarting */
	return failed ? "Failed" : "Succeeded";
}

static void update_conditions(struct kpod *p)
{
	bool all_ready = true;
	for (size_t i = p->n_init; i < p->n_ctrs; i++)
		all_ready = all_ready && p->ctrs[i].ready;
	p->phase = compute_phase(p);
	bool done = strcmp(p->phase, "Succeeded") == 0 || strcmp(p->phase, "Failed") == 0;
	cond_set(&p->initialized, p->init_next >= p->n_init, "ContainersNotInitialized");
	cond_set(&p->containers_ready, all_ready && !done,
		 done ? "PodCompleted" : "ContainersNotReady");
	cond_set(&p->ready, all_ready && !done, done ? "PodCompleted" : "ContainersNotReady");
}

/* ---- the sandbox ---- */

static void sandbox_ip(struct kpod *p)
{
	struct manager_pod mp = { 0 };
	_cleanup_error_ struct berth_error *err = NULL;
	if (manager_pod_status(p->k->m, p->pod_id, &mp, &err) < 0)
		return;
	kubelet_set_str(&p->pod_ip, mp.ip4 ? mp.ip4 : mp.ip6);
	manager_pod_clear(&mp);
}

static int sandbox_run(struct kpod *p)
{
	if (kubelet_mono_ns() < p->sandbox_retry_at)
		return -EAGAIN;
	struct pod_config pc;
	_cleanup_error_ struct berth_error *err = NULL;
	int r = kubelet_pod_config(p, &pc, &err);
	if (r == 0) {
		r = manager_pod_run(p->k->m, &pc, &p->pod_id, &err);
		pod_config_clear(&pc);
	}
	if (r < 0) {
		p->sandbox_backoff_ns = kubelet_backoff_next(&p->k->backoff, p->sandbox_backoff_ns, 0);
		p->sandbox_retry_at = kubelet_mono_ns() + p->sandbox_backoff_ns;
		kubelet_set_str(&p->reason, "SandboxCreateError");
		kubelet_set_str(&p->message, err ? err->msg : strerror(-r));
		log_warn("kubelet: %s: running the pod sandbox: %s", p->key, p->message);
		return r;
	}
	kubelet_set_str(&p->reason, NULL);
	kubelet_set_str(&p->message, NULL);
	p->start_ns = kubelet_now_ns();
	p->start_mono = kubelet_mono_ns();
	sandbox_ip(p);
	log_info("kubelet: %s: pod %s running (%s, ip %s)", p->key, p->pod_id, p->file,
		 p->pod_ip ? p->pod_ip : "none");
	return 0;
}

/* The sandbox was removed behind the loop's back: make a new one, with new containers. */
static void sandbox_check(struct kpod *p)
{
	struct manager_pod mp = { 0 };
	_cleanup_error_ struct berth_error *err = NULL;
	if (manager_pod_status(p->k->m, p->pod_id, &mp, &err) != -ENOENT) {
		manager_pod_clear(&mp);
		return;
	}
	log_warn("kubelet: %s: pod %s is gone; running it again", p->key, p->pod_id);
	kubelet_set_str(&p->pod_id, NULL);
	p->attempt++;
	p->sandbox_stopped = false;
	p->init_next = 0;
	for (size_t i = 0; i < p->n_ctrs; i++) {
		struct kctr *c = &p->ctrs[i];
		kubelet_set_str(&c->id, NULL);
		c->done = c->exit_seen = false;
		c->ready = c->started = false;
		kctr_set_waiting(c, "ContainerCreating", NULL);
	}
}

static void volumes_ensure(struct kpod *p)
{
	if (p->volumes_ready)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	if (kubelet_volumes_setup(p, &err) < 0) {
		if (!p->volume_error || strcmp(p->volume_error, err->msg) != 0)
			log_error("kubelet: %s: %s", p->key, err->msg);
		kubelet_set_str(&p->volume_error, err->msg);
		return;
	}
	kubelet_set_str(&p->volume_error, NULL);
	p->volumes_ready = true;
}

/* ---- one tick ---- */

static void stop_all(struct kpod *p, int64_t grace_s)
{
	/* SIGTERM to all at once after their preStop hooks, so the grace period is the pod's,
	 * not a sum over its containers */
	int64_t t0 = kubelet_mono_ns();
	for (size_t i = 0; i < p->n_ctrs; i++) {
		struct kctr *c = &p->ctrs[i];
		if (!c->id || c->exit_seen)
			continue;
		_cleanup_error_ struct berth_error *err = NULL;
		(void)manager_container_kill(p->k->m, c->id, SIGTERM, &err);
	}
	for (size_t i = 0; i < p->n_ctrs; i++) {
		int64_t left = grace_s - (kubelet_mono_ns() - t0) / NS_PER_S;
		kctr_stop(p, &p->ctrs[i], left > 0 ? left : 0);
	}
}

static void deadline_check(struct kpod *p)
{
	const struct pod_opt_int *d = &p->man->spec.active_deadline_seconds;
	if (!d->set || p->deadline_hit || !p->start_mono ||
	    kubelet_mono_ns() - p->start_mono < d->value * NS_PER_S)
		return;
	log_info("kubelet: %s: active for longer than its deadline (%llds): stopping it", p->key,
		 (long long)d->value);
	p->deadline_hit = true;
	kubelet_set_str(&p->reason, "DeadlineExceeded");
	kubelet_set_str(&p->message, "Pod was active on the node longer than the specified deadline");
	stop_all(p, p->man->spec.termination_grace_period_seconds);
}

static void sync_pod(struct kpod *p)
{
	volumes_ensure(p);
	if (p->pod_id)
		sandbox_check(p);
	if (!p->pod_id && sandbox_run(p) < 0)
		return;
	for (size_t i = 0; i < p->n_ctrs; i++)
		kctr_refresh(p, &p->ctrs[i]);
	deadline_check(p);
	for (size_t i = 0; i < p->n_ctrs; i++)
		kctr_refresh(p, &p->ctrs[i]); /* what the deadline's stop ended */
	if (p->init_next < p->n_init) {
		struct kctr *c = &p->ctrs[p->init_next];
		if (kctr_should_start(p, c))
			kctr_start(p, c);
		return;
	}
	for (size_t i = p->n_init; i < p->n_ctrs; i++) {
		struct kctr *c = &p->ctrs[i];
		if (c->cur.state == KSTATE_WAITING && c->cur.reason &&
		    strcmp(c->cur.reason, "PodInitializing") == 0)
			kctr_set_waiting(c, "ContainerCreating", NULL);
		if (kctr_should_start(p, c))
			kctr_start(p, c);
		kctr_probe(p, c);
	}
}

/* ---- adoption ---- */

static struct kctr *kctr_by_name(struct kpod *p, const char *name)
{
	for (size_t i = 0; i < p->n_ctrs; i++)
		if (strcmp(p->ctrs[i].spec->name, name) == 0)
			return &p->ctrs[i];
	return NULL;
}

/* Takes each container's newest instance; older ones and unknown names go. */
static void adopt_containers(struct kpod *p, struct manager_container *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct kctr *c = kctr_by_name(p, v[i].rec.name);
		if (!c)
			continue;
		if (!c->id || v[i].rec.attempt > c->restarts) {
			kubelet_set_str(&c->id, v[i].rec.id);
			c->restarts = v[i].rec.attempt;
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct kctr *c = kctr_by_name(p, v[i].rec.name);
		_cleanup_error_ struct berth_error *err = NULL;
		if ((!c || strcmp(c->id, v[i].rec.id) != 0) &&
		    manager_container_remove(p->k->m, v[i].rec.id, &err) < 0)
			log_warn("kubelet: %s: removing %s: %s", p->key, v[i].rec.id, err->msg);
	}
}

/* Init containers that exited 0 are done; any container of the pod's means all of them are. */
static void adopt_init_progress(struct kpod *p)
{
	bool app = false;
	for (size_t i = p->n_init; i < p->n_ctrs; i++)
		app = app || p->ctrs[i].id;
	for (size_t i = 0; app && i < p->n_init; i++) {
		struct kctr *c = &p->ctrs[i];
		c->done = c->exit_seen = true;
		kterm_clear(&c->cur);
		c->cur.state = KSTATE_TERMINATED;
		c->cur.reason = strdup("Completed");
	}
	p->init_next = app ? p->n_init : 0;
}

static void adopt(struct kpod *p)
{
	struct manager_pod mp = { 0 };
	_cleanup_error_ struct berth_error *err = NULL;
	if (manager_pod_status(p->k->m, p->adopt_id, &mp, &err) < 0) {
		log_warn("kubelet: %s: adopting %s: %s", p->key, p->adopt_id, err->msg);
		return;
	}
	p->pod_id = TAKE_PTR(p->adopt_id);
	kubelet_set_str(&p->uid, mp.rec.uid);
	p->attempt = mp.rec.attempt;
	p->start_ns = mp.rec.created_ns;
	p->start_mono = kubelet_mono_ns() - (kubelet_now_ns() - mp.rec.created_ns);
	kubelet_set_str(&p->pod_ip, mp.ip4 ? mp.ip4 : mp.ip6);
	manager_pod_clear(&mp);
	struct manager_container *v = NULL;
	size_t n = 0;
	if (manager_container_list(p->k->m, p->pod_id, &v, &n, &err) == 0) {
		adopt_containers(p, v, n);
		manager_container_list_free(v, n);
	}
	adopt_init_progress(p);
	for (size_t i = 0; i < p->n_ctrs; i++) {
		struct kctr *c = &p->ctrs[i];
		if (!c->id || c->done)
			continue;
		kterm_clear(&c->cur);
		c->cur.state = KSTATE_RUNNING; /* refreshed at once */
		c->started = !c->startup.spec;
		c->ready = c->started && !c->readiness.spec && !c->init;
	}
	log_info("kubelet: %s: adopted pod %s", p->key, p->pod_id);
}

/* ---- removal ---- */

static void teardown(struct kpod *p)
{
	log_info("kubelet: %s: stopping the pod (%s)", p->key, p->file);
	if (p->pod_id) {
		stop_all(p, p->man->spec.termination_grace_period_seconds);
		_cleanup_error_ struct berth_error *err = NULL;
		if (manager_pod_stop(p->k->m, p->pod_id, &err) < 0 ||
		    manager_pod_remove(p->k->m, p->pod_id, &err) < 0)
			log_warn("kubelet: %s: removing pod %s: %s", p->key, p->pod_id, err->msg);
	}
	kubelet_volumes_teardown(p->k, p->uid);
	status_remove(p);
	log_info("kubelet: %s: removed", p->key);
}

/* A pod that finished for good (Succeeded or Failed) gives its network back. */
static void sandbox_finish(struct kpod *p)
{
	bool done = strcmp(p->phase, "Succeeded") == 0 || strcmp(p->phase, "Failed") == 0;
	if (!done || p->sandbox_stopped || !p->pod_id)
		return;
	for (size_t i = 0; i < p->n_ctrs; i++)
		if (p->ctrs[i].id && !p->ctrs[i].exit_seen)
			return; /* a deadline's stop still running */
	_cleanup_error_ struct berth_error *err = NULL;
	if (manager_pod_stop(p->k->m, p->pod_id, &err) < 0)
		log_warn("kubelet: %s: stopping the finished pod: %s", p->key, err->msg);
	p->sandbox_stopped = true;
	log_info("kubelet: %s: %s", p->key, p->phase);
}

static void *worker_main(void *arg)
{
	struct kpod *p = arg;
	if (p->adopt_id)
		adopt(p);
	do {
		sync_pod(p);
		update_conditions(p);
		sandbox_finish(p);
		status_write(p);
	} while (!kpod_sleep(p, KUBELET_TICK_MS));
	pthread_mutex_lock(&p->k->lock);
	bool remove = p->remove;
	pthread_mutex_unlock(&p->k->lock);
	if (remove)
		teardown(p);
	pthread_mutex_lock(&p->k->lock);
	p->finished = true;
	pthread_mutex_unlock(&p->k->lock);
	return NULL;
}

int kpod_start(struct kpod *p)
{
	int r = pthread_create(&p->thread, NULL, worker_main, p);
	if (r != 0)
		return -r;
	p->running = true;
	return 0;
}

/* ---- orphans ---- */

void kubelet_remove_orphan(struct kubelet *k, const struct manager_pod *mp)
{
	struct manager_container *v = NULL;
	size_t n = 0;
	_cleanup_error_ struct berth_error *err = NULL;
	log_info("kubelet: pod %s (%s/%s) has no manifest like it any more: removing it",
		 mp->rec.id, mp->rec.namespace, mp->rec.name);
	if (manager_container_list(k->m, mp->rec.id, &v, &n, &err) == 0) {
		for (size_t i = 0; i < n; i++)
			(void)manager_container_stop(k->m, v[i].rec.id, k->cfg->stop_timeout, NULL);
		manager_container_list_free(v, n);
	}
	if (manager_pod_stop(k->m, mp->rec.id, &err) < 0 ||
	    manager_pod_remove(k->m, mp->rec.id, &err) < 0)
		log_warn("kubelet: removing pod %s: %s", mp->rec.id, err->msg);
	kubelet_volumes_teardown(k, mp->rec.uid);
}
