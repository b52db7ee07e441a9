/* One container's life inside a pod worker: pulling its image per imagePullPolicy, creating and
 * starting an instance (attempt = restartCount), recording its exit and deciding on a restart
 * with back-off, its probes, and a graceful stop with preStop. */
#include "base/cleanup.h"
#include "base/log.h"
#include "cri/kubelet-internal.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MIN_STOP_GRACE_S 2 /* kubelet's floor after a preStop hook */

void kctr_set_waiting(struct kctr *c, const char *reason, const char *fmt, ...)
{
	kterm_clear(&c->cur);
	c->cur.state = KSTATE_WAITING;
	c->cur.reason = strdup(reason);
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		if (vasprintf(&c->cur.message, fmt, ap) < 0)
			c->cur.message = NULL;
		va_end(ap);
	}
}

static const char *pod_key(const struct kpod *p)
{
	return p->key;
}

/* ---- restart decisions ---- */

static bool policy_restarts(const struct kpod *p, int exit_code)
{
	switch (p->man->spec.restart_policy) {
	case POD_RESTART_ALWAYS:
		return true;
	case POD_RESTART_ON_FAILURE:
		return exit_code != 0;
	default:
		return false;
	}
}

static void schedule_restart(struct kpod *p, struct kctr *c, int64_t ran_ns)
{
	c->backoff_ns = kubelet_backoff_next(&p->k->backoff, c->backoff_ns, ran_ns);
	c->restart_at = kubelet_mono_ns() + c->backoff_ns;
	kterm_clear(&c->last);
	c->last = c->cur;
	c->has_last = true;
	c->cur = (struct kterm){ 0 };
	kctr_set_waiting(c, "CrashLoopBackOff", "back-off %llds restarting failed container=%s pod=%s",
			 (long long)(c->backoff_ns / NS_PER_S), c->spec->name, pod_key(p));
}

static void record_exit(struct kpod *p, struct kctr *c, const struct manager_container *mc)
{
	const struct db_container *r = &mc->rec;
	kterm_clear(&c->cur);
	c->cur.state = KSTATE_TERMINATED;
	c->cur.exit_code = r->exit_code;
	c->cur.signal = r->signal;
	c->cur.reason = strdup(c->kill_reason ? c->kill_reason
					      : r->reason ? r->reason
							  : (r->exit_code ? "Error" : "Completed"));
	c->cur.message = r->message ? strdup(r->message) : NULL;
	c->cur.started_ns = r->started_ns;
	c->cur.finished_ns = r->finished_ns;
	if (asprintf(&c->cur.container_id, "berth://%s", c->id) < 0)
		c->cur.container_id = NULL;
	c->kill_reason = NULL;
	c->exit_seen = true;
	c->ready = c->started = false;
	log_info("kubelet: %s: container %s exited %d (%s), restart %u", pod_key(p), c->spec->name,
		 r->exit_code, c->cur.reason ? c->cur.reason : "?", c->restarts);
	if (c->init && r->exit_code == 0) {
		c->done = true;
		while (p->init_next < p->n_init && p->ctrs[p->init_next].done)
			p->init_next++;
		return;
	}
	if (!policy_restarts(p, r->exit_code) || p->deadline_hit) {
		c->done = true;
		if (c->init)
			p->failed_fatal = true; /* an init container that failed for good */
		return;
	}
	schedule_restart(p, c, r->finished_ns - r->started_ns);
}

void kctr_refresh(struct kpod *p, struct kctr *c)
{
	if (!c->id || c->exit_seen)
		return;
	struct manager_container mc = { 0 };
	_cleanup_error_ struct berth_error *err = NULL;
	int r = manager_container_status(p->k->m, c->id, &mc, &err);
	if (r == -ENOENT) {
		/* removed behind the loop's back: a new instance, as if it had exited */
		log_warn("kubelet: %s: container %s (%s) is gone; making a new one", pod_key(p),
			 c->spec->name, c->id);
		kubelet_set_str(&c->id, NULL);
		kctr_set_waiting(c, "ContainerCreating", NULL);
		return;
	}
	if (r < 0) {
		log_warn("kubelet: %s: status of %s: %s", pod_key(p), c->spec->name, err->msg);
		return;
	}
	if (strcmp(mc.rec.state, "exited") == 0 || strcmp(mc.rec.state, "unknown") == 0)
		record_exit(p, c, &mc);
	else if (strcmp(mc.rec.state, "running") == 0 && c->cur.state != KSTATE_RUNNING) {
		kterm_clear(&c->cur);
		c->cur.state = KSTATE_RUNNING;
		c->cur.started_ns = mc.rec.started_ns;
	}
	if (mc.rec.image_id && (!c->image_id || strcmp(c->image_id, mc.rec.image_id) != 0))
		kubelet_set_str(&c->image_id, mc.rec.image_id);
	manager_container_clear(&mc);
}

bool kctr_should_start(const struct kpod *p, const struct kctr *c)
{
	if (c->done || p->deadline_hit || p->failed_fatal || c->cur.state != KSTATE_WAITING)
		return false;
	return kubelet_mono_ns() >= c->restart_at;
}

/* ---- starting ---- */

static void retry_later(struct kpod *p, struct kctr *c)
{
	c->backoff_ns = kubelet_backoff_next(&p->k->backoff, c->backoff_ns, 0);
	c->restart_at = kubelet_mono_ns() + c->backoff_ns;
}

static int ensure_image(struct kpod *p, struct kctr *c)
{
	const struct pod_container *s = c->spec;
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_free_ char *json = NULL;
	if (s->image_pull_policy != POD_PULL_ALWAYS) {
		int r = manager_image_inspect(p->k->m, s->image, &json, &err);
		if (r == 0)
			return 0;
		if (r != -ENOENT || s->image_pull_policy == POD_PULL_NEVER) {
			kctr_set_waiting(c, r == -ENOENT ? "ErrImageNeverPull" : "ErrImageInspect",
					 "%s", r == -ENOENT ? "image is not present and the "
							      "imagePullPolicy is Never"
							    : err->msg);
			return -1;
		}
		berth_error_freep(&err);
	}
	struct manager_image im = { 0 };
	int r = manager_image_pull(p->k->m, s->image, &im, &err);
	if (r < 0) {
		kctr_set_waiting(c, "ErrImagePull", "%s", err ? err->msg : strerror(-r));
		log_warn("kubelet: %s: pulling %s: %s", pod_key(p), s->image,
			 err ? err->msg : strerror(-r));
		return -1;
	}
	manager_image_clear(&im);
	return 0;
}

static void probes_reset(struct kctr *c)
{
	int64_t now = kubelet_mono_ns();
	struct kprobe *all[] = { &c->live, &c->readiness, &c->startup };
	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		struct kprobe *k = all[i];
		k->successes = k->failures = 0;
		k->ok = false;
		if (k->spec)
			k->next_ns = now + k->spec->initial_delay_seconds * NS_PER_S;
	}
	c->started = !c->startup.spec;
	c->ready = c->started && !c->readiness.spec && !c->init;
}

/* The previous instance goes once its successor runs; attempt numbers follow restartCount. */
static void took_over(struct kpod *p, struct kctr *c, char *new_id)
{
	_cleanup_error_ struct berth_error *err = NULL;
	if (c->id && manager_container_remove(p->k->m, c->id, &err) < 0)
		log_warn("kubelet: %s: removing the old %s: %s (ignored)", pod_key(p),
			 c->spec->name, err->msg);
	c->restarts = kubelet_next_attempt(c);
	free(c->id);
	c->id = new_id;
	c->exit_seen = false;
	kterm_clear(&c->cur);
	c->cur.state = KSTATE_RUNNING;
	c->cur.started_ns = kubelet_now_ns();
	probes_reset(c);
}

static void post_start(struct kpod *p, struct kctr *c)
{
	const struct pod_lifecycle *l = c->spec->lifecycle;
	if (!l || !l->post_start)
		return;
	_cleanup_error_ struct berth_error *err = NULL;
	if (kubelet_handler_run(p, c, l->post_start, p->man->spec.termination_grace_period_seconds,
				&err) == 0)
		return;
	log_warn("kubelet: %s: container %s: postStart hook failed: %s", pod_key(p), c->spec->name,
		 err ? err->msg : "?");
	c->kill_reason = "FailedPostStartHook";
	kctr_stop(p, c, p->man->spec.termination_grace_period_seconds);
}

void kctr_start(struct kpod *p, struct kctr *c)
{
	if (p->volume_error) {
		kctr_set_waiting(c, "CreateContainerConfigError", "%s", p->volume_error);
		return;
	}
	if (ensure_image(p, c) < 0)
		return retry_later(p, c);
	struct container_config cc;
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_free_ char *id = NULL;
	if (kubelet_container_config(p, c, &cc, &err) < 0) {
		kctr_set_waiting(c, "CreateContainerConfigError", "%s", err->msg);
		return retry_later(p, c);
	}
	int r = manager_container_create(p->k->m, p->pod_id, &cc, &id, &err);
	container_config_clear(&cc);
	if (r < 0) {
		kctr_set_waiting(c, "CreateContainerError", "%s", err->msg);
		return retry_later(p, c);
	}
	if ((r = manager_container_start(p->k->m, id, &err)) < 0) {
		log_warn("kubelet: %s: starting %s: %s", pod_key(p), c->spec->name, err->msg);
		kctr_set_waiting(c, "RunContainerError", "%s", err->msg);
		berth_error_freep(&err);
		if (manager_container_remove(p->k->m, id, &err) < 0)
			log_warn("kubelet: %s: removing %s: %s", pod_key(p), id, err->msg);
		return retry_later(p, c);
	}
	log_info("kubelet: %s: container %s started (%s, restart %u)", pod_key(p), c->spec->name,
		 id, c->restarts);
	took_over(p, c, TAKE_PTR(id));
	post_start(p, c);
}

/* ---- stopping ---- */

void kctr_stop(struct kpod *p, struct kctr *c, int64_t grace_s)
{
	if (!c->id || c->exit_seen)
		return;
	int64_t t0 = kubelet_mono_ns();
	_cleanup_error_ struct berth_error *err = NULL;
	const struct pod_lifecycle *l = c->spec->lifecycle;
	if (l && l->pre_stop && c->cur.state == KSTATE_RUNNING &&
	    kubelet_handler_run(p, c, l->pre_stop, grace_s, &err) < 0) {
		log_warn("kubelet: %s: container %s: preStop hook failed: %s (stopping it anyway)",
			 pod_key(p), c->spec->name, err ? err->msg : "?");
		berth_error_freep(&err);
	}
	int64_t left = grace_s - (kubelet_mono_ns() - t0) / NS_PER_S;
	if (left < MIN_STOP_GRACE_S && grace_s > 0)
		left = MIN_STOP_GRACE_S;
	if (manager_container_stop(p->k->m, c->id, left < 0 ? 0 : left, &err) < 0)
		log_warn("kubelet: %s: stopping %s: %s", pod_key(p), c->spec->name, err->msg);
}

/* ---- probes ---- */

static int64_t probe_grace(const struct kpod *p, const struct pod_probe *pr)
{
	return pr->termination_grace_period_seconds.set ? pr->termination_grace_period_seconds.value
							: p->man->spec.termination_grace_period_seconds;
}

/* Runs pr when due; returns 1 when its result changed to ok, -1 when it changed to failed. */
static int probe_step(struct kpod *p, struct kctr *c, struct kprobe *k, const char *what)
{
	int64_t now = kubelet_mono_ns();
	if (!k->spec || now < k->next_ns)
		return 0;
	_cleanup_free_ char *msg = NULL;
	int ok = kubelet_probe_run(p, c, k->spec, &msg);
	k->next_ns = kubelet_mono_ns() + k->spec->period_seconds * NS_PER_S;
	if (ok > 0) {
		k->failures = 0;
		if (++k->successes >= k->spec->success_threshold && !k->ok) {
			k->ok = true;
			return 1;
		}
		return 0;
	}
	k->successes = 0;
	log_debug("kubelet: %s: %s probe of %s failed: %s", pod_key(p), what, c->spec->name,
		  msg ? msg : "?");
	if (++k->failures >= k->spec->failure_threshold) {
		k->failures = 0;
		bool was = k->ok;
		k->ok = false;
		return was || k->spec != c->readiness.spec ? -1 : 0;
	}
	return 0;
}

static void probe_kill(struct kpod *p, struct kctr *c, const struct pod_probe *pr,
		       const char *what)
{
	log_info("kubelet: %s: container %s failed its %s probe; restarting it", pod_key(p),
		 c->spec->name, what);
	kctr_stop(p, c, probe_grace(p, pr));
}

void kctr_probe(struct kpod *p, struct kctr *c)
{
	if (!c->id || c->exit_seen || c->cur.state != KSTATE_RUNNING)
		return;
	if (!c->started) {
		int r = probe_step(p, c, &c->startup, "startup");
		if (r > 0) {
			c->started = true;
			c->ready = !c->readiness.spec;
		} else if (r < 0)
			probe_kill(p, c, c->startup.spec, "startup");
		return;
	}
	if (probe_step(p, c, &c->live, "liveness") < 0)
		return probe_kill(p, c, c->live.spec, "liveness");
	int r = probe_step(p, c, &c->readiness, "readiness");
	if (r)
		c->ready = r > 0;
}
