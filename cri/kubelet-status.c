/* The kubelet loop's status objects (Kubernetes' PodStatus field names) and back-off
 * arithmetic: pure functions of a struct kpod, so the unit tests reach them. */
#include "base/cleanup.h"
#include "base/json.h"
#include "cri/kubelet-internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t kubelet_backoff_next(const struct kubelet_backoff *b, int64_t prev_ns, int64_t ran_ns)
{
	if (prev_ns <= 0 || (b->reset_ns > 0 && ran_ns >= b->reset_ns))
		return b->initial_ns;
	if (prev_ns >= b->max_ns / 2)
		return b->max_ns;
	return prev_ns * 2 < b->max_ns ? prev_ns * 2 : b->max_ns;
}

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

int64_t kubelet_now_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

int64_t kubelet_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

void kubelet_set_str(char **p, const char *s)
{
	free(*p);
	*p = s ? strdup(s) : NULL;
}

void kterm_clear(struct kterm *t)
{
	free(t->reason);
	free(t->message);
	free(t->container_id);
	*t = (struct kterm){ 0 };
}

/* RFC 3339 in UTC to the second, as Kubernetes writes times. */
static void kv_time(struct json_writer *w, const char *key, int64_t ns)
{
	char buf[32];
	time_t s = (time_t)(ns / NS_PER_S);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	bjson_writer_kv_string(w, key, buf);
}

static void kv_opt(struct json_writer *w, const char *key, const char *s)
{
	if (s)
		bjson_writer_kv_string(w, key, s);
}

static void write_state(struct json_writer *w, const struct kterm *t)
{
	bjson_writer_begin_object(w);
	switch (t->state) {
	case KSTATE_WAITING:
		bjson_writer_key(w, "waiting");
		bjson_writer_begin_object(w);
		kv_opt(w, "reason", t->reason);
		kv_opt(w, "message", t->message);
		bjson_writer_end_object(w);
		break;
	case KSTATE_RUNNING:
		bjson_writer_key(w, "running");
		bjson_writer_begin_object(w);
		kv_time(w, "startedAt", t->started_ns);
		bjson_writer_end_object(w);
		break;
	case KSTATE_TERMINATED:
		bjson_writer_key(w, "terminated");
		bjson_writer_begin_object(w);
		bjson_writer_kv_int(w, "exitCode", t->exit_code);
		if (t->signal)
			bjson_writer_kv_int(w, "signal", t->signal);
		kv_opt(w, "reason", t->reason);
		kv_opt(w, "message", t->message);
		kv_time(w, "startedAt", t->started_ns);
		kv_time(w, "finishedAt", t->finished_ns);
		kv_opt(w, "containerID", t->container_id);
		bjson_writer_end_object(w);
		break;
	}
	bjson_writer_end_object(w);
}

static void write_container(struct json_writer *w, const struct kctr *c)
{
	char id[80];
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "name", c->spec->name);
	if (c->id) {
		snprintf(id, sizeof(id), "berth://%s", c->id);
		bjson_writer_kv_string(w, "containerID", id);
	}
	bjson_writer_kv_string(w, "image", c->spec->image);
	kv_opt(w, "imageID", c->image_id);
	bjson_writer_kv_bool(w, "ready", c->ready);
	bjson_writer_kv_bool(w, "started", c->started);
	bjson_writer_kv_int(w, "restartCount", c->restarts);
	bjson_writer_key(w, "state");
	write_state(w, &c->cur);
	bjson_writer_key(w, "lastState");
	if (c->has_last)
		write_state(w, &c->last);
	else {
		bjson_writer_begin_object(w);
		bjson_writer_end_object(w);
	}
	bjson_writer_end_object(w);
}

static void write_condition(struct json_writer *w, const char *type, const struct kcond *c)
{
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "type", type);
	bjson_writer_kv_string(w, "status", c->status ? "True" : "False");
	if (c->since_ns)
		kv_time(w, "lastTransitionTime", c->since_ns);
	kv_opt(w, "reason", c->reason);
	bjson_writer_end_object(w);
}

static void write_metadata(struct json_writer *w, const struct kpod *p)
{
	bjson_writer_key(w, "metadata");
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "name", p->man->metadata.name);
	bjson_writer_kv_string(w, "namespace", p->man->metadata.namespace);
	kv_opt(w, "uid", p->uid);
	bjson_writer_kv_string(w, "file", p->file);
	kv_opt(w, "hash", p->hash);
	kv_opt(w, "podID", p->pod_id);
	bjson_writer_end_object(w);
}

static void write_containers(struct json_writer *w, const char *key, const struct kpod *p,
			     bool init)
{
	bjson_writer_key(w, key);
	bjson_writer_begin_array(w);
	for (size_t i = 0; i < p->n_ctrs; i++)
		if (p->ctrs[i].init == init)
			write_container(w, &p->ctrs[i]);
	bjson_writer_end_array(w);
}

int kubelet_status_build(const struct kpod *p, char **ret)
{
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	write_metadata(w, p);
	bjson_writer_key(w, "status");
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "phase", p->phase);
	kv_opt(w, "reason", p->reason);
	kv_opt(w, "message", p->message);
	bjson_writer_kv_string(w, "qosClass", pod_qos_name(pod_manifest_qos(p->man)));
	kv_opt(w, "podIP", p->pod_ip);
	if (p->start_ns)
		kv_time(w, "startTime", p->start_ns);
	bjson_writer_key(w, "conditions");
	bjson_writer_begin_array(w);
	write_condition(w, "Initialized", &p->initialized);
	write_condition(w, "ContainersReady", &p->containers_ready);
	write_condition(w, "Ready", &p->ready);
	bjson_writer_end_array(w);
	write_containers(w, "initContainerStatuses", p, true);
	write_containers(w, "containerStatuses", p, false);
	bjson_writer_end_object(w);
	bjson_writer_end_object(w);
	return bjson_writer_finish(w, ret, NULL);
}

int kubelet_error_status_build(const char *file, const char *error, char **ret)
{
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	bjson_writer_key(w, "metadata");
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "file", file);
	bjson_writer_end_object(w);
	bjson_writer_kv_string(w, "error", error);
	bjson_writer_end_object(w);
	return bjson_writer_finish(w, ret, NULL);
}

int kubelet_status_name(const char *namespace, const char *name, char **ret)
{
	if (asprintf(ret, "%s_%s.json", namespace ? namespace : "default", name) < 0) {
		*ret = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* '@' never starts a namespace: invalid files' names cannot meet a pod's. */
int kubelet_error_status_name(const char *file, bool applied, char **ret)
{
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	if (asprintf(ret, "@%s_%s.json", applied ? "applied" : "dir", base) < 0) {
		*ret = NULL;
		return -ENOMEM;
	}
	return 0;
}
