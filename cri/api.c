/* The JSON-lines API: a table of ops, each a function that reads its fields (strictly: unknown
 * ones are refused), calls the manager and writes its answer's fields. */
#include "cri/api.h"
#include "base/cleanup.h"
#include "base/json.h"
#include "cri/errcode.h"
#include "cri/kubelet.h"
#include "base/fileutil.h"
#include "cri/stream.h"
#include "runtime/runtime.h"

#include <fcntl.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct op {
	const char *name;
	const char *const *fields; /* besides "op" */
	int (*fn)(const struct api_context *ctx, const struct json *req, struct json_writer *w,
		  bool *subscribe, struct berth_error **err);
};

/* ---- helpers ---- */

static void kv_str(struct json_writer *w, const char *key, const char *s)
{
	bjson_writer_key(w, key);
	if (s)
		bjson_writer_string(w, s);
	else
		bjson_writer_null(w);
}

static void kv_raw_object(struct json_writer *w, const char *key, const char *text)
{
	if (text) {
		req_write_raw(w, key, text);
		return;
	}
	bjson_writer_key(w, key);
	bjson_writer_begin_object(w);
	bjson_writer_end_object(w);
}

static int id_field(const struct json *req, const char *key, char **ret, struct berth_error **err)
{
	return req_string(req, "", key, true, ret, err);
}

char *api_utf8_sanitize(const char *s, size_t len)
{
	/* at most 3 output bytes per input byte (U+FFFD is 3 bytes) */
	char *out = malloc(len * 3 + 1), *o = out;
	if (!out)
		return NULL;
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	while (p < end) {
		size_t n = *p < 0x80		 ? 1
			   : (*p & 0xe0) == 0xc0 ? 2
			   : (*p & 0xf0) == 0xe0 ? 3
			   : (*p & 0xf8) == 0xf0 ? 4
						 : 0;
		bool ok = n > 0 && *p != 0 && (size_t)(end - p) >= n && !(n == 2 && *p < 0xc2) &&
			  !(n == 4 && *p > 0xf4);
		for (size_t i = 1; ok && i < n; i++)
			ok = (p[i] & 0xc0) == 0x80;
		/* overlong 3/4-byte forms, surrogates and code points above U+10FFFF */
		if (ok && n == 3)
			ok = !(p[0] == 0xe0 && p[1] < 0xa0) && !(p[0] == 0xed && p[1] >= 0xa0);
		if (ok && n == 4)
			ok = !(p[0] == 0xf0 && p[1] < 0x90) && !(p[0] == 0xf4 && p[1] >= 0x90);
		if (ok) {
			memcpy(o, p, n);
			o += n;
			p += n;
		} else {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			p++;
		}
	}
	*o = '\0';
	return out;
}

/* ---- answers ---- */

static void write_pod(struct json_writer *w, const struct manager_pod *p)
{
	const struct db_pod *r = &p->rec;
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "id", r->id);
	bjson_writer_kv_string(w, "name", r->name);
	bjson_writer_kv_string(w, "namespace", r->namespace);
	bjson_writer_kv_string(w, "uid", r->uid);
	bjson_writer_kv_int(w, "attempt", r->attempt);
	bjson_writer_kv_string(w, "state", r->state);
	bjson_writer_kv_int(w, "created_ns", r->created_ns);
	kv_str(w, "ip4", p->ip4);
	kv_str(w, "ip6", p->ip6);
	kv_str(w, "netns", p->netns_path);
	kv_raw_object(w, "labels", r->labels_json);
	kv_raw_object(w, "annotations", r->annotations_json);
	bjson_writer_end_object(w);
}

static void write_container(struct json_writer *w, const struct manager_container *c)
{
	const struct db_container *r = &c->rec;
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "id", r->id);
	bjson_writer_kv_string(w, "pod_id", r->pod_id);
	bjson_writer_kv_string(w, "name", r->name);
	bjson_writer_kv_int(w, "attempt", r->attempt);
	kv_str(w, "image", r->image);
	kv_str(w, "image_id", r->image_id);
	bjson_writer_kv_string(w, "state", r->state);
	bjson_writer_kv_int(w, "pid", c->pid);
	bjson_writer_kv_int(w, "created_ns", r->created_ns);
	bjson_writer_kv_int(w, "started_ns", r->started_ns);
	bjson_writer_kv_int(w, "finished_ns", r->finished_ns);
	bjson_writer_kv_int(w, "exit_code", r->exit_code);
	bjson_writer_kv_int(w, "signal", r->signal);
	bjson_writer_kv_bool(w, "oom_killed", r->oom_killed);
	kv_str(w, "reason", r->reason);
	kv_str(w, "message", r->message);
	kv_str(w, "log_path", r->log_path);
	kv_raw_object(w, "labels", r->labels_json);
	kv_raw_object(w, "annotations", r->annotations_json);
	bjson_writer_end_object(w);
}

static void write_image(struct json_writer *w, const struct manager_image *im)
{
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "name", im->name);
	bjson_writer_kv_string(w, "id", im->id);
	bjson_writer_kv_string(w, "digest", im->digest);
	bjson_writer_kv_int(w, "size", (int64_t)im->size);
	bjson_writer_end_object(w);
}

/* ---- ops ---- */

static int op_version(const struct api_context *ctx, const struct json *req, struct json_writer *w,
		      bool *sub, struct berth_error **err)
{
	bjson_writer_kv_string(w, "version", BERTH_VERSION);
	bjson_writer_kv_string(w, "runtime_name", "berth");
	bjson_writer_kv_string(w, "runtime_api_version", "v1");
	return 0;
}

static int op_pod_run(const struct api_context *ctx, const struct json *req, struct json_writer *w,
		      bool *sub, struct berth_error **err)
{
	struct pod_config c;
	_cleanup_free_ char *id = NULL;
	int r = pod_config_parse(bjson_object_get(req, "config"), "config", &c, err);
	if (r < 0)
		return r;
	r = manager_pod_run(ctx->manager, &c, &id, err);
	pod_config_clear(&c);
	if (r == 0)
		bjson_writer_kv_string(w, "pod_id", id);
	return r;
}

/* pod.stop, pod.remove: one id, nothing answered */
static int op_pod_id(const struct api_context *ctx, const struct json *req, struct json_writer *w,
		     int (*fn)(struct manager *, const char *, struct berth_error **),
		     struct berth_error **err)
{
	_cleanup_free_ char *id = NULL;
	int r = id_field(req, "pod_id", &id, err);
	return r < 0 ? r : fn(ctx->manager, id, err);
}

static int op_pod_stop(const struct api_context *ctx, const struct json *req, struct json_writer *w,
		       bool *sub, struct berth_error **err)
{
	return op_pod_id(ctx, req, w, manager_pod_stop, err);
}

static int op_pod_remove(const struct api_context *ctx, const struct json *req,
			 struct json_writer *w, bool *sub, struct berth_error **err)
{
	return op_pod_id(ctx, req, w, manager_pod_remove, err);
}

static int op_pod_status(const struct api_context *ctx, const struct json *req,
			 struct json_writer *w, bool *sub, struct berth_error **err)
{
	_cleanup_free_ char *id = NULL;
	struct manager_pod p;
	int r = id_field(req, "pod_id", &id, err);
	if (r < 0 || (r = manager_pod_status(ctx->manager, id, &p, err)) < 0)
		return r;
	bjson_writer_key(w, "status");
	write_pod(w, &p);
	manager_pod_clear(&p);
	return 0;
}

static int op_pod_list(const struct api_context *ctx, const struct json *req, struct json_writer *w,
		       bool *sub, struct berth_error **err)
{
	struct manager_pod *v = NULL;
	size_t n = 0;
	int r = manager_pod_list(ctx->manager, &v, &n, err);
	if (r < 0)
		return r;
	bjson_writer_key(w, "pods");
	bjson_writer_begin_array(w);
	for (size_t i = 0; i < n; i++)
		write_pod(w, &v[i]);
	bjson_writer_end_array(w);
	manager_pod_list_free(v, n);
	return 0;
}

static int op_container_create(const struct api_context *ctx, const struct json *req,
			       struct json_writer *w, bool *sub, struct berth_error **err)
{
	_cleanup_free_ char *pod = NULL, *id = NULL;
	struct container_config c;
	int r = id_field(req, "pod_id", &pod, err);
	if (r < 0 ||
	    (r = container_config_parse(bjson_object_get(req, "config"), "config", &c, err)) < 0)
		return r;
	r = manager_container_create(ctx->manager, pod, &c, &id, err);
	container_config_clear(&c);
	if (r == 0)
		bjson_writer_kv_string(w, "container_id", id);
	return r;
}

static int op_ctr_id(const struct api_context *ctx, const struct json *req,
		     int (*fn)(struct manager *, const char *, struct berth_error **),
		     struct berth_error **err)
{
	_cleanup_free_ char *id = NULL;
	int r = id_field(req, "container_id", &id, err);
	return r < 0 ? r : fn(ctx->manager, id, err);
}

static int op_container_start(const struct api_context *ctx, const struct json *req,
			      struct json_writer *w, bool *sub, struct berth_error **err)
{
	return op_ctr_id(ctx, req, manager_container_start, err);
}

static int op_container_remove(const struct api_context *ctx, const struct json *req,
			       struct json_writer *w, bool *sub, struct berth_error **err)
{
	return op_ctr_id(ctx, req, manager_container_remove, err);
}

static int op_container_reopen_log(const struct api_context *ctx, const struct json *req,
				   struct json_writer *w, bool *sub, struct berth_error **err)
{
	return op_ctr_id(ctx, req, manager_container_reopen_log, err);
}

static int op_container_stop(const struct api_context *ctx, const struct json *req,
			     struct json_writer *w, bool *sub, struct berth_error **err)
{
	_cleanup_free_ char *id = NULL;
	int64_t timeout = ctx->config->stop_timeout;
	int r = id_field(req, "container_id", &id, err);
	if (r < 0 || (r = req_int64(req, "", "timeout", 0, INT32_MAX, &timeout, err)) < 0)
		return r;
	return manager_container_stop(ctx->manager, id, timeout, err);
}

static int signal_field(const struct json *req, int *ret, struct berth_error **err)
{
	const struct json *v = bjson_object_get(req, "signal");
	int64_t n;
	*ret = 9; /* SIGKILL, as `kill` in the CLI defaults to */
	if (bjson_type_of(v) == JSON_ABSENT || bjson_type_of(v) == JSON_NULL)
		return 0;
	if (bjson_type_of(v) == JSON_STRING) {
		int sig = runtime_signal_parse(bjson_string(v));
		if (sig < 0)
			return berth_error_set(err, EINVAL, "signal: unknown signal \"%s\"",
					       bjson_string(v));
		*ret = sig;
		return 0;
	}
	if (!bjson_int64(v, &n) || n < 1 || n > 64)
		return berth_error_set(err, EINVAL, "signal: not a signal name or number 1-64");
	*ret = (int)n;
	return 0;
}

static int op_container_kill(const struct api_context *ctx, const struct json *req,
			     struct json_writer *w, bool *sub, struct berth_error **err)
{
	_cleanup_free_ char *id = NULL;
	int sig, r = id_field(req, "container_id", &id, err);
	if (r < 0 || (r = signal_field(req, &sig, err)) < 0)
		return r;
	return manager_container_kill(ctx->manager, id, sig, err);
}

static int op_container_status(const struct api_context *ctx, const struct json *req,
			       struct json_writer *w, bool *sub, struct berth_error **err)
{
	_cleanup_free_ char *id = NULL;
	struct manager_container c;
	int r = id_field(req, "container_id", &id, err);
	if (r < 0 || (r = manager_container_status(ctx->manager, id, &c, err)) < 0)
		return r;
	bjson_writer_key(w, "status");
	write_container(w, &c);
	manager_container_clear(&c);
	return 0;
}

static int op_container_list(const struct api_context *ctx, const struct json *req,
			     struct json_writer *w, bool *sub, struct berth_error **err)
{
	_cleanup_free_ char *pod = NULL;
	struct manager_container *v = NULL;
	size_t n = 0;
	int r = req_string(req, "", "pod_id", false, &pod, err);
	if (r < 0 || (r = manager_container_list(ctx->manager, pod, &v, &n, err)) < 0)
		return r;
	bjson_writer_key(w, "containers");
	bjson_writer_begin_array(w);
	for (size_t i = 0; i < n; i++)
		write_container(w, &v[i]);
	bjson_writer_end_array(w);
	manager_container_list_free(v, n);
	return 0;
}

static int write_output(struct json_writer *w, const char *key, const char *buf, size_t len)
{
	_cleanup_free_ char *s = api_utf8_sanitize(buf ? buf : "", buf ? len : 0);
	if (!s)
		return -ENOMEM;
	bjson_writer_kv_string(w, key, s);
	return 0;
}

static int op_container_exec(const struct api_context *ctx, const struct json *req,
			     struct json_writer *w, bool *sub, struct berth_error **err)
{
	_cleanup_free_ char *id = NULL;
	_cleanup_strv_ char **cmd = NULL;
	int64_t timeout = 0;
	struct shim_exec_result res = { 0 };
	int r = id_field(req, "container_id", &id, err);
	if (r < 0 || (r = req_strv(req, "", "cmd", &cmd, err)) < 0 ||
	    (r = req_int64(req, "", "timeout", 0, INT32_MAX, &timeout, err)) < 0)
		return r;
	if ((r = manager_container_exec_sync(ctx->manager, id, cmd, timeout, &res, err)) < 0)
		return r;
	bjson_writer_kv_int(w, "exit_code", res.exit_code);
	bjson_writer_kv_int(w, "signal", res.signal);
	if ((r = write_output(w, "stdout", res.out, res.out_len)) == 0)
		r = write_output(w, "stderr", res.errs, res.errs_len);
	bjson_writer_kv_bool(w, "truncated", res.truncated);
	shim_exec_result_clear(&res);
	return r;
}

/* ---- streams: URLs of the streaming server (cri/stream.c) ---- */

/* stdin, stdout, stderr and tty, with the CRI's defaults for a command line: output on. */
static int stdio_fields(const struct json *req, struct stream_exec *x, struct berth_error **err)
{
	x->out = x->errs = true;
	int r = req_bool(req, "", "tty", &x->tty, err);
	if (r == 0)
		r = req_bool(req, "", "stdin", &x->in, err);
	if (r == 0)
		r = req_bool(req, "", "stdout", &x->out, err);
	if (r == 0)
		r = req_bool(req, "", "stderr", &x->errs, err);
	return r;
}

static int op_stream_exec(const struct api_context *ctx, const struct json *req,
			  struct json_writer *w, bool *sub, struct berth_error **err)
{
	_cleanup_free_ char *id = NULL, *url = NULL;
	_cleanup_strv_ char **cmd = NULL;
	struct stream_exec x = { 0 };
	int r = id_field(req, "container_id", &id, err);
	if (r < 0 || (r = req_strv(req, "", "cmd", &cmd, err)) < 0 ||
	    (r = stdio_fields(req, &x, err)) < 0)
		return r;
	x.container_id = id;
	x.cmd = cmd;
	if ((r = stream_server_exec_url(ctx->streams, &x, &url, err)) < 0)
		return r;
	bjson_writer_kv_string(w, "url", url);
	return 0;
}

static int op_stream_attach(const struct api_context *ctx, const struct json *req,
			    struct json_writer *w, bool *sub, struct berth_error **err)
{
	_cleanup_free_ char *id = NULL, *url = NULL;
	struct stream_exec x = { 0 };
	int r = id_field(req, "container_id", &id, err);
	if (r < 0 || (r = stdio_fields(req, &x, err)) < 0)
		return r;
	x.container_id = id;
	if ((r = stream_server_attach_url(ctx->streams, &x, &url, err)) < 0)
		return r;
	bjson_writer_kv_string(w, "url", url);
	return 0;
}

static int op_stream_port_forward(const struct api_context *ctx, const struct json *req,
				  struct json_writer *w, bool *sub, struct berth_error **err)
{
	_cleanup_free_ char *id = NULL, *url = NULL;
	int32_t ports[STREAM_MAX_PORTS];
	int r = id_field(req, "pod_id", &id, err);
	if (r < 0)
		return r;
	const struct json *v = bjson_object_get(req, "ports");
	size_t n = bjson_array_size(v);
	if (bjson_type_of(v) != JSON_ARRAY || n == 0 || n > STREAM_MAX_PORTS)
		return berth_error_set(err, EINVAL, "ports: an array of 1 to %d TCP ports",
				       STREAM_MAX_PORTS);
	for (size_t i = 0; i < n; i++) {
		int64_t p = 0;
		if (!bjson_int64(bjson_array_get(v, i), &p) || p < 1 || p > 65535)
			return berth_error_set(err, EINVAL, "ports[%zu]: not a TCP port (1-65535)",
					       i);
		ports[i] = (int32_t)p;
	}
	if ((r = stream_server_port_forward_url(ctx->streams, id, ports, n, &url, err)) < 0)
		return r;
	bjson_writer_kv_string(w, "url", url);
	return 0;
}

/* ---- static pods (cri/kubelet.c): berth apply, delete, and the pods' Kubernetes status ---- */

static int op_pod_apply(const struct api_context *ctx, const struct json *req,
			struct json_writer *w, bool *sub, struct berth_error **err)
{
	_cleanup_free_ char *text = NULL, *file = NULL, *key = NULL;
	int r = req_string(req, "", "manifest", true, &text, err);
	if (r < 0 || (r = req_string(req, "", "file", false, &file, err)) < 0 ||
	    (r = kubelet_apply(ctx->kubelet, text, strlen(text), file, &key, err)) < 0)
		return r;
	bjson_writer_kv_string(w, "pod", key);
	return 0;
}

/* By its manifest, or by namespace (default "default") and name. */
static int op_pod_delete(const struct api_context *ctx, const struct json *req,
			 struct json_writer *w, bool *sub, struct berth_error **err)
{
	_cleanup_free_ char *text = NULL, *ns = NULL, *name = NULL;
	int r = req_string(req, "", "manifest", false, &text, err);
	if (r < 0 || (r = req_string(req, "", "namespace", false, &ns, err)) < 0 ||
	    (r = req_string(req, "", "name", false, &name, err)) < 0)
		return r;
	if (!text && !name)
		return berth_error_set(err, EINVAL, "manifest or name: one is required");
	return kubelet_delete(ctx->kubelet, text, text ? strlen(text) : 0,
			      ns ? ns : "default", name, err);
}

static int op_static_list(const struct api_context *ctx, const struct json *req,
			  struct json_writer *w, bool *sub, struct berth_error **err)
{
	_cleanup_free_ char *text = NULL;
	int r = kubelet_list_json(ctx->kubelet, &text, err);
	if (r < 0)
		return r;
	req_write_raw(w, "pods", text);
	return 0;
}

static int op_static_status(const struct api_context *ctx, const struct json *req,
			    struct json_writer *w, bool *sub, struct berth_error **err)
{
	_cleanup_free_ char *ns = NULL, *name = NULL, *text = NULL;
	int r = req_string(req, "", "namespace", false, &ns, err);
	if (r < 0 || (r = id_field(req, "name", &name, err)) < 0 ||
	    (r = kubelet_status_json(ctx->kubelet, ns ? ns : "default", name, &text, err)) < 0)
		return r;
	req_write_raw(w, "pod", text);
	return 0;
}

static int op_image_pull(const struct api_context *ctx, const struct json *req,
			 struct json_writer *w, bool *sub, struct berth_error **err)
{
	_cleanup_free_ char *name = NULL;
	struct manager_image im;
	int r = id_field(req, "image", &name, err);
	if (r < 0 || (r = manager_image_pull(ctx->manager, name, &im, err)) < 0)
		return r;
	bjson_writer_key(w, "image");
	write_image(w, &im);
	manager_image_clear(&im);
	return 0;
}

static int op_image_list(const struct api_context *ctx, const struct json *req,
			 struct json_writer *w, bool *sub, struct berth_error **err)
{
	struct manager_image *v = NULL;
	size_t n = 0;
	int r = manager_image_list(ctx->manager, &v, &n, err);
	if (r < 0)
		return r;
	bjson_writer_key(w, "images");
	bjson_writer_begin_array(w);
	for (size_t i = 0; i < n; i++)
		write_image(w, &v[i]);
	bjson_writer_end_array(w);
	manager_image_list_free(v, n);
	return 0;
}

static int op_image_remove(const struct api_context *ctx, const struct json *req,
			   struct json_writer *w, bool *sub, struct berth_error **err)
{
	_cleanup_free_ char *name = NULL;
	int r = id_field(req, "image", &name, err);
	return r < 0 ? r : manager_image_remove(ctx->manager, name, err);
}

static int op_events(const struct api_context *ctx, const struct json *req, struct json_writer *w,
		     bool *sub, struct berth_error **err)
{
	*sub = true;
	return 0;
}


/* ---- inspect, stats, info: what `berth inspect`, `berth stats` and `berth info` show ---- */

/* container.inspect, pod.inspect: the status and the config the object was made with. */
static int op_container_inspect(const struct api_context *ctx, const struct json *req,
				struct json_writer *w, bool *sub, struct berth_error **err)
{
	_cleanup_free_ char *id = NULL;
	struct manager_container c;
	int r = id_field(req, "container_id", &id, err);
	if (r < 0 || (r = manager_container_status(ctx->manager, id, &c, err)) < 0)
		return r;
	bjson_writer_key(w, "status");
	write_container(w, &c);
	kv_raw_object(w, "config", c.rec.config_json);
	manager_container_clear(&c);
	return 0;
}

static int op_pod_inspect(const struct api_context *ctx, const struct json *req,
			  struct json_writer *w, bool *sub, struct berth_error **err)
{
	_cleanup_free_ char *id = NULL;
	struct manager_pod p;
	int r = id_field(req, "pod_id", &id, err);
	if (r < 0 || (r = manager_pod_status(ctx->manager, id, &p, err)) < 0)
		return r;
	bjson_writer_key(w, "status");
	write_pod(w, &p);
	kv_raw_object(w, "config", p.rec.config_json);
	manager_pod_clear(&p);
	return 0;
}

/* A cgroup limit: "max" (no limit) is null. */
static void kv_limit(struct json_writer *w, const char *key, uint64_t v)
{
	bjson_writer_key(w, key);
	if (v == UINT64_MAX)
		bjson_writer_null(w);
	else
		bjson_writer_uint(w, v);
}

static void kv_uint(struct json_writer *w, const char *key, uint64_t v)
{
	bjson_writer_key(w, key);
	bjson_writer_uint(w, v);
}

/* The counters of the controllers that are on; the others' keys are absent. */
static void write_stats(struct json_writer *w, const struct cgroup_stats *st)
{
	bjson_writer_key(w, "stats");
	bjson_writer_begin_object(w);
	if (st->has_cpu) {
		kv_uint(w, "cpu_usage_usec", st->cpu_usage_usec);
		kv_uint(w, "cpu_user_usec", st->cpu_user_usec);
		kv_uint(w, "cpu_system_usec", st->cpu_system_usec);
		kv_uint(w, "cpu_nr_throttled", st->cpu_nr_throttled);
	}
	if (st->has_memory) {
		kv_uint(w, "memory_current", st->memory_current);
		kv_limit(w, "memory_max", st->memory_max);
		kv_uint(w, "memory_oom_kill", st->memory_oom_kill);
	}
	if (st->has_pids) {
		kv_uint(w, "pids_current", st->pids_current);
		kv_limit(w, "pids_max", st->pids_max);
	}
	bjson_writer_end_object(w);
}

static int op_stats(const struct api_context *ctx, const struct json *req, struct json_writer *w,
		    const char *key,
		    int (*fn)(struct manager *, const char *, struct cgroup_stats *,
			      struct berth_error **),
		    struct berth_error **err)
{
	_cleanup_free_ char *id = NULL;
	struct cgroup_stats st = { 0 };
	int r = id_field(req, key, &id, err);
	if (r < 0 || (r = fn(ctx->manager, id, &st, err)) < 0)
		return r;
	write_stats(w, &st);
	cgroup_stats_clear(&st);
	return 0;
}

static int op_container_stats(const struct api_context *ctx, const struct json *req,
			      struct json_writer *w, bool *sub, struct berth_error **err)
{
	return op_stats(ctx, req, w, "container_id", manager_container_stats, err);
}

static int op_pod_stats(const struct api_context *ctx, const struct json *req,
			struct json_writer *w, bool *sub, struct berth_error **err)
{
	return op_stats(ctx, req, w, "pod_id", manager_pod_stats, err);
}

/* The words of a cgroup.controllers file as an array; absent (unreadable) is an empty one. */
static void kv_controllers(struct json_writer *w, const char *key, const char *dir)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	size_t len = 0;
	bjson_writer_key(w, key);
	bjson_writer_begin_array(w);
	if (asprintf(&path, "%s/cgroup.controllers", dir) < 0)
		path = NULL;
	if (path && read_file_at(AT_FDCWD, path, &text, &len, NULL) == 0) {
		char *save = NULL;
		for (char *t = strtok_r(text, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
			bjson_writer_string(w, t);
	}
	bjson_writer_end_array(w);
}

static void write_cgroup_info(struct json_writer *w, const struct berthd_config *cfg)
{
	_cleanup_free_ char *mnt = NULL, *parent = NULL;
	const char *p = cfg->cgroup_parent ? cfg->cgroup_parent : "berth";
	bjson_writer_key(w, "cgroup");
	bjson_writer_begin_object(w);
	kv_str(w, "driver", cfg->systemd_cgroup ? "systemd" : "cgroupfs");
	kv_str(w, "parent", p);
	if (cgroup_mountpoint(&mnt, NULL) < 0) {
		bjson_writer_kv_int(w, "version", 1); /* no cgroup2: no limits, no stats */
		bjson_writer_end_object(w);
		return;
	}
	bjson_writer_kv_int(w, "version", 2);
	bjson_writer_kv_string(w, "mountpoint", mnt);
	kv_controllers(w, "controllers", mnt);
	/* the controllers pods can use: those enabled down to the parent (cgroupfs paths) */
	if (!cfg->systemd_cgroup && asprintf(&parent, "%s/%s", mnt, p + (p[0] == '/')) >= 0)
		kv_controllers(w, "parent_controllers", parent);
	bjson_writer_end_object(w);
}

static void kv_usage(struct json_writer *w, const char *key, const struct manager_fs_usage *u)
{
	bjson_writer_key(w, key);
	bjson_writer_begin_object(w);
	kv_str(w, "mountpoint", u->mountpoint);
	kv_uint(w, "bytes", u->bytes);
	kv_uint(w, "inodes", u->inodes);
	bjson_writer_end_object(w);
}

static int write_storage_info(struct json_writer *w, const struct api_context *ctx,
			      struct berth_error **err)
{
	struct manager_fs_usage images = { 0 }, containers = { 0 };
	int r = manager_image_fs_usage(ctx->manager, &images, &containers, err);
	if (r < 0)
		return r;
	bjson_writer_key(w, "storage");
	bjson_writer_begin_object(w);
	kv_str(w, "root", ctx->config->root);
	kv_str(w, "state", ctx->config->state);
	kv_usage(w, "images", &images);
	kv_usage(w, "containers", &containers);
	bjson_writer_end_object(w);
	return 0;
}

static void write_network_info(struct json_writer *w, const struct api_context *ctx)
{
	const struct berthd_config *cfg = ctx->config;
	_cleanup_free_ char *cidr = manager_pod_cidr(ctx->manager);
	bool cni = cfg->network && strcmp(cfg->network, "cni") == 0;
	bjson_writer_key(w, "network");
	bjson_writer_begin_object(w);
	kv_str(w, "mode", cfg->network);
	kv_str(w, "bridge", cni ? NULL : cfg->bridge);
	kv_str(w, "subnet", cidr);
	kv_str(w, "subnet6", cni ? NULL : cfg->subnet6);
	kv_str(w, "cni_conf_dir", cni ? cfg->cni_conf_dir : NULL);
	bjson_writer_end_object(w);
}

static int op_info(const struct api_context *ctx, const struct json *req, struct json_writer *w,
		   bool *sub, struct berth_error **err)
{
	_cleanup_free_ char *dump = NULL;
	int r = berthd_config_dump(ctx->config, &dump);
	if (r < 0)
		return berth_error_set(err, -r, "the configuration: %s", strerror(-r));
	bjson_writer_kv_string(w, "version", BERTH_VERSION);
	bjson_writer_kv_string(w, "runtime_name", "berth");
	write_cgroup_info(w, ctx->config);
	if ((r = write_storage_info(w, ctx, err)) < 0)
		return r;
	write_network_info(w, ctx);
	bjson_writer_kv_string(w, "config", dump);
	return 0;
}

#define FIELDS(...) ((const char *const[]){ __VA_ARGS__, NULL })
static const struct op ops[] = {
	{ "version", FIELDS("op"), op_version },
	{ "pod.run", FIELDS("config"), op_pod_run },
	{ "pod.stop", FIELDS("pod_id"), op_pod_stop },
	{ "pod.remove", FIELDS("pod_id"), op_pod_remove },
	{ "pod.status", FIELDS("pod_id"), op_pod_status },
	{ "pod.list", FIELDS("op"), op_pod_list },
	{ "container.create", FIELDS("pod_id", "config"), op_container_create },
	{ "container.start", FIELDS("container_id"), op_container_start },
	{ "container.stop", FIELDS("container_id", "timeout"), op_container_stop },
	{ "container.kill", FIELDS("container_id", "signal"), op_container_kill },
	{ "container.remove", FIELDS("container_id"), op_container_remove },
	{ "container.status", FIELDS("container_id"), op_container_status },
	{ "container.list", FIELDS("pod_id"), op_container_list },
	{ "container.exec", FIELDS("container_id", "cmd", "timeout"), op_container_exec },
	{ "container.reopen_log", FIELDS("container_id"), op_container_reopen_log },
	{ "stream.exec", FIELDS("container_id", "cmd", "tty", "stdin", "stdout", "stderr"),
	  op_stream_exec },
	{ "stream.attach", FIELDS("container_id", "tty", "stdin", "stdout", "stderr"),
	  op_stream_attach },
	{ "stream.port_forward", FIELDS("pod_id", "ports"), op_stream_port_forward },
	{ "pod.apply", FIELDS("manifest", "file"), op_pod_apply },
	{ "pod.delete", FIELDS("manifest", "namespace", "name"), op_pod_delete },
	{ "static.list", FIELDS("op"), op_static_list },
	{ "static.status", FIELDS("namespace", "name"), op_static_status },
	{ "image.pull", FIELDS("image"), op_image_pull },
	{ "image.list", FIELDS("op"), op_image_list },
	{ "image.remove", FIELDS("image"), op_image_remove },
	{ "events", FIELDS("op"), op_events },
	{ "container.inspect", FIELDS("container_id"), op_container_inspect },
	{ "pod.inspect", FIELDS("pod_id"), op_pod_inspect },
	{ "container.stats", FIELDS("container_id"), op_container_stats },
	{ "pod.stats", FIELDS("pod_id"), op_pod_stats },
	{ "info", FIELDS("op"), op_info },
};

/* ---- dispatch ---- */

static int check_fields(const struct json *req, const struct op *op, struct berth_error **err)
{
	for (size_t i = 0; i < bjson_object_size(req); i++) {
		const char *key = bjson_object_key(req, i);
		bool known = strcmp(key, "op") == 0;
		for (const char *const *f = op->fields; *f && !known; f++)
			known = strcmp(*f, key) == 0;
		if (!known)
			return berth_error_set(err, EINVAL, "%s: unknown field for op %s", key,
					       op->name);
	}
	return 0;
}

static int dispatch(const struct api_context *ctx, const struct json *req, struct json_writer *w,
		    bool *sub, struct berth_error **err)
{
	if (bjson_type_of(req) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, "the request is not a JSON object");
	const struct json *opv = bjson_object_get(req, "op");
	if (bjson_type_of(opv) == JSON_ABSENT)
		return berth_error_set(err, EINVAL, "op: required");
	const char *name = bjson_string(opv);
	if (!name)
		return berth_error_set(err, EINVAL, "op: not a string");
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		if (strcmp(ops[i].name, name) != 0)
			continue;
		int r = check_fields(req, &ops[i], err);
		return r < 0 ? r : ops[i].fn(ctx, req, w, sub, err);
	}
	return berth_error_set(err, EOPNOTSUPP, "op: unknown operation \"%s\"", name);
}

static char *finish_line(struct json_writer *w)
{
	char *text = NULL, *line = NULL;
	size_t len = 0;
	if (bjson_writer_finish(w, &text, &len) < 0)
		return NULL;
	if ((line = realloc(text, len + 2))) {
		line[len] = '\n';
		line[len + 1] = '\0';
	} else {
		free(text);
	}
	return line;
}

char *api_error_line(int errnum, const char *msg)
{
	_cleanup_free_ char *clean = api_utf8_sanitize(msg ? msg : "", msg ? strlen(msg) : 0);
	struct json_writer *w = bjson_writer_new(false);
	if (!w || !clean) {
		if (w)
			finish_line(w);
		return NULL;
	}
	bjson_writer_begin_object(w);
	bjson_writer_kv_bool(w, "ok", false);
	bjson_writer_kv_string(w, "code", errcode_name(errcode_from_errno(errnum)));
	bjson_writer_kv_string(w, "error", clean);
	bjson_writer_end_object(w);
	return finish_line(w);
}

char *api_handle(const struct api_context *ctx, const char *line, size_t len, bool *ret_subscribe)
{
	_cleanup_free_ char *text = strndup(line, len);
	_cleanup_(bjson_freep) struct json *req = NULL;
	_cleanup_error_ struct berth_error *err = NULL;
	*ret_subscribe = false;
	if (!text)
		return NULL;
	if (strlen(text) != len)
		return api_error_line(EINVAL, "the request line holds a NUL byte");
	int r = bjson_parse(text, &req, &err);
	if (r < 0)
		return api_error_line(-r, err ? err->msg : "invalid JSON");
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return NULL;
	bjson_writer_begin_object(w);
	bjson_writer_kv_bool(w, "ok", true);
	bool sub = false;
	r = dispatch(ctx, req, w, &sub, &err);
	bjson_writer_end_object(w);
	if (r < 0) {
		free(finish_line(w));
		return api_error_line(-r, err ? err->msg : strerror(-r));
	}
	char *out = finish_line(w);
	if (!out)
		return api_error_line(EINVAL, "the answer is not valid UTF-8");
	*ret_subscribe = sub;
	return out;
}

char *api_event_line(const struct manager_event *ev)
{
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return NULL;
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "event", manager_event_name(ev->type));
	bjson_writer_kv_string(w, "container_id", ev->container_id);
	bjson_writer_kv_string(w, "pod_id", ev->pod_id);
	bjson_writer_kv_int(w, "time_ns", ev->time_ns);
	if (ev->type == MANAGER_EVENT_EXITED) {
		bjson_writer_kv_int(w, "exit_code", ev->exit_code);
		bjson_writer_kv_string(w, "reason", ev->reason);
	}
	bjson_writer_end_object(w);
	return finish_line(w);
}
