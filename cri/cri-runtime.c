/* The CRI RuntimeService: protobuf requests in, manager calls, protobuf responses out.
 *
 * Every handler runs on a libuv worker (the manager's calls block) except GetContainerEvents,
 * whose stream lives on the loop thread. Responses are built in an arena (cri/pb-arena.h). */
#include "cri/cri-runtime.h"
#include "cri/pb-arena.h"
#include "base/cleanup.h"
#include "base/json.h"
#include "base/log.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNTIME_NAME "berth"
#define CRI_API_VERSION "v1"
#define KUBE_API_VERSION "0.1.0" /* VersionResponse.version: the kubelet's API version */
#define RPC(m) "/runtime.v1.RuntimeService/" m

/* ---- maps (labels, annotations) ---- */

/* A JSON object of strings (NULL: empty) as map entries of the given type. */
static int map_from_json(struct arena *a, const char *text, const ProtobufCMessageDescriptor *d,
			 size_t *ret_n, void *ret_entries)
{
	_cleanup_(bjson_freep) struct json *obj = NULL;
	*ret_n = 0;
	*(void **)ret_entries = NULL;
	if (!text || bjson_parse(text, &obj, NULL) < 0)
		return 0; /* stored by the manager from checked input: nothing else is possible */
	size_t n = bjson_object_size(obj);
	struct cri_map_entry **v = arena_alloc(a, (n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *val = bjson_string(bjson_object_value(obj, i));
		if (!(v[i] = arena_msg(a, d)) ||
		    !(v[i]->key = arena_str(a, bjson_object_key(obj, i))) ||
		    !(v[i]->value = arena_str(a, val)))
			return -ENOMEM;
	}
	*ret_n = n;
	*(void **)ret_entries = v;
	return 0;
}

/* The labels and annotations (JSON texts in rec) of a message s of type prefix (its two map
 * fields, named as in every CRI message that has them). */
#define META_MAPS(a, rec, s, prefix)                                                               \
	meta_maps_pb((a), (rec)->labels_json, (rec)->annotations_json,                             \
		     &prefix##__labels_entry__descriptor, &prefix##__annotations_entry__descriptor, \
		     &(s)->n_labels, &(s)->labels, &(s)->n_annotations, &(s)->annotations)

static int meta_maps_pb(struct arena *a, const char *labels, const char *annotations,
			const ProtobufCMessageDescriptor *ld, const ProtobufCMessageDescriptor *ad,
			size_t *ret_n_labels, void *ret_labels, size_t *ret_n_annotations,
			void *ret_annotations)
{
	int r = map_from_json(a, labels, ld, ret_n_labels, ret_labels);
	return r < 0 ? r : map_from_json(a, annotations, ad, ret_n_annotations, ret_annotations);
}

/* Whether every selector entry is among the labels (JSON text). */
static bool labels_match(const char *labels_json, size_t n, void *const *selector)
{
	if (n == 0)
		return true;
	_cleanup_(bjson_freep) struct json *obj = NULL;
	if (!labels_json || bjson_parse(labels_json, &obj, NULL) < 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		const struct cri_map_entry *e = selector[i];
		const char *v = bjson_string(bjson_object_get(obj, e->key ? e->key : ""));
		if (!v || strcmp(v, e->value ? e->value : "") != 0)
			return false;
	}
	return true;
}

static bool id_matches(const char *filter, const char *id)
{
	return !filter || !*filter || strncmp(id, filter, strlen(filter)) == 0;
}

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

/* ---- building status messages ---- */

static Runtime__V1__PodSandboxState pod_state_pb(const char *state)
{
	return strcmp(state, "ready") == 0 ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
					   : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
}

static Runtime__V1__ContainerState ctr_state_pb(const char *state)
{
	if (strcmp(state, "created") == 0)
		return RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED;
	if (strcmp(state, "running") == 0)
		return RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
	if (strcmp(state, "exited") == 0)
		return RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
	return RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN;
}

static Runtime__V1__PodSandboxMetadata *pod_md_pb(struct arena *a, const struct db_pod *p)
{
	Runtime__V1__PodSandboxMetadata *md = NEW(a, Runtime__V1__PodSandboxMetadata,
						  runtime__v1__pod_sandbox_metadata__descriptor);
	if (!md || !(md->name = arena_str(a, p->name)) ||
	    !(md->namespace_ = arena_str(a, p->namespace)) || !(md->uid = arena_str(a, p->uid)))
		return NULL;
	md->attempt = p->attempt;
	return md;
}

static Runtime__V1__ContainerMetadata *ctr_md_pb(struct arena *a, const struct db_container *c)
{
	Runtime__V1__ContainerMetadata *md =
		NEW(a, Runtime__V1__ContainerMetadata, runtime__v1__container_metadata__descriptor);
	if (!md || !(md->name = arena_str(a, c->name)))
		return NULL;
	md->attempt = c->attempt;
	return md;
}

static Runtime__V1__NamespaceMode ns_mode_pb(enum ns_mode m)
{
	switch (m) {
	case NS_MODE_CONTAINER:
		return RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
	case NS_MODE_NODE:
		return RUNTIME__V1__NAMESPACE_MODE__NODE;
	case NS_MODE_TARGET:
		return RUNTIME__V1__NAMESPACE_MODE__TARGET;
	default:
		return RUNTIME__V1__NAMESPACE_MODE__POD;
	}
}

static Runtime__V1__LinuxPodSandboxStatus *pod_linux_pb(struct arena *a, const struct db_pod *p)
{
	struct pod_config cfg = { 0 };
	Runtime__V1__LinuxPodSandboxStatus *l = NEW(a, Runtime__V1__LinuxPodSandboxStatus,
						    runtime__v1__linux_pod_sandbox_status__descriptor);
	Runtime__V1__Namespace *ns =
		NEW(a, Runtime__V1__Namespace, runtime__v1__namespace__descriptor);
	Runtime__V1__NamespaceOption *o =
		NEW(a, Runtime__V1__NamespaceOption, runtime__v1__namespace_option__descriptor);
	if (!l || !ns || !o)
		return NULL;
	l->namespaces = ns;
	ns->options = o;
	/* the stored request (checked when stored) */
	if (p->config_json && pod_config_from_text(p->config_json, &cfg, NULL) == 0) {
		o->network = ns_mode_pb(cfg.net_mode);
		o->pid = ns_mode_pb(cfg.pid_mode);
		o->ipc = ns_mode_pb(cfg.ipc_mode);
		pod_config_clear(&cfg);
	}
	return l;
}

static Runtime__V1__PodSandboxNetworkStatus *pod_net_pb(struct arena *a,
							const struct manager_pod *p)
{
	Runtime__V1__PodSandboxNetworkStatus *n =
		NEW(a, Runtime__V1__PodSandboxNetworkStatus,
		    runtime__v1__pod_sandbox_network_status__descriptor);
	if (!n || !(n->ip = arena_str(a, p->ip4 ? p->ip4 : p->ip6)))
		return NULL;
	if (p->ip4 && p->ip6) {
		Runtime__V1__PodIP **v = arena_alloc(a, sizeof(*v));
		if (!v || !(v[0] = NEW(a, Runtime__V1__PodIP, runtime__v1__pod_ip__descriptor)) ||
		    !(v[0]->ip = arena_str(a, p->ip6)))
			return NULL;
		n->additional_ips = v;
		n->n_additional_ips = 1;
	}
	return n;
}

static Runtime__V1__PodSandboxStatus *pod_status_pb(struct arena *a, const struct manager_pod *p)
{
	const struct db_pod *rec = &p->rec;
	Runtime__V1__PodSandboxStatus *s =
		NEW(a, Runtime__V1__PodSandboxStatus, runtime__v1__pod_sandbox_status__descriptor);
	if (!s || !(s->id = arena_str(a, rec->id)) || !(s->metadata = pod_md_pb(a, rec)) ||
	    !(s->network = pod_net_pb(a, p)) || !(s->linux = pod_linux_pb(a, rec)) ||
	    !(s->runtime_handler = arena_str(a, "")) ||
	    META_MAPS(a, rec, s, runtime__v1__pod_sandbox_status) < 0)
		return NULL;
	s->state = pod_state_pb(rec->state);
	s->created_at = rec->created_ns;
	return s;
}

static Runtime__V1__ImageSpec *image_spec_pb(struct arena *a, const char *image)
{
	Runtime__V1__ImageSpec *im =
		NEW(a, Runtime__V1__ImageSpec, runtime__v1__image_spec__descriptor);
	if (!im || !(im->image = arena_str(a, image)) ||
	    !(im->user_specified_image = arena_str(a, image)))
		return NULL;
	return im;
}

static Runtime__V1__Mount **mounts_pb(struct arena *a, const struct container_config *cfg)
{
	Runtime__V1__Mount **v = arena_alloc(a, (cfg->n_mounts + 1) * sizeof(*v));
	for (size_t i = 0; v && i < cfg->n_mounts; i++) {
		const struct bind_mount *bm = &cfg->mounts[i];
		Runtime__V1__Mount *m = v[i] =
			NEW(a, Runtime__V1__Mount, runtime__v1__mount__descriptor);
		if (!m || !(m->container_path = arena_str(a, bm->container_path)) ||
		    !(m->host_path = arena_str(a, bm->host_path)))
			return NULL;
		m->readonly = bm->readonly;
		m->propagation = (Runtime__V1__MountPropagation)bm->propagation;
	}
	return v;
}

static Runtime__V1__ContainerResources *resources_pb(struct arena *a,
						     const struct container_config *cfg)
{
	Runtime__V1__ContainerResources *r =
		NEW(a, Runtime__V1__ContainerResources, runtime__v1__container_resources__descriptor);
	Runtime__V1__LinuxContainerResources *l =
		NEW(a, Runtime__V1__LinuxContainerResources,
		    runtime__v1__linux_container_resources__descriptor);
	if (!r || !l || !(l->cpuset_cpus = arena_str(a, cfg->cpuset_cpus)) ||
	    !(l->cpuset_mems = arena_str(a, cfg->cpuset_mems)) ||
	    map_from_json(a, cfg->unified_json,
			  &runtime__v1__linux_container_resources__unified_entry__descriptor,
			  &l->n_unified, &l->unified) < 0)
		return NULL;
	r->linux = l;
	l->cpu_period = cfg->cpu_period;
	l->cpu_quota = cfg->cpu_quota;
	l->cpu_shares = cfg->cpu_shares;
	l->memory_limit_in_bytes = cfg->memory_limit_in_bytes;
	l->memory_swap_limit_in_bytes = cfg->memory_swap_limit_in_bytes;
	l->oom_score_adj = cfg->oom_score_adj;
	if (cfg->n_hugepage_limits &&
	    !(l->hugepage_limits = arena_alloc(a, cfg->n_hugepage_limits * sizeof(void *))))
		return NULL;
	for (size_t i = 0; i < cfg->n_hugepage_limits; i++, l->n_hugepage_limits++) {
		Runtime__V1__HugepageLimit *h = l->hugepage_limits[i] =
			NEW(a, Runtime__V1__HugepageLimit, runtime__v1__hugepage_limit__descriptor);
		if (!h || !(h->page_size = arena_str(a, cfg->hugepage_limits[i].page_size)))
			return NULL;
		h->limit = cfg->hugepage_limits[i].limit;
	}
	return r;
}

/* The parts of a status that come from the stored request: mounts and resources. */
static int ctr_config_parts_pb(struct arena *a, const struct db_container *rec,
			       Runtime__V1__ContainerStatus *s)
{
	struct container_config cfg = { 0 };
	if (!rec->config_json || container_config_from_text(rec->config_json, &cfg, NULL) < 0)
		return 0; /* checked when stored: not expected */
	int r = 0;
	if (!(s->mounts = mounts_pb(a, &cfg)) || !(s->resources = resources_pb(a, &cfg)))
		r = -ENOMEM;
	else
		s->n_mounts = cfg.n_mounts;
	container_config_clear(&cfg);
	return r;
}

static Runtime__V1__ContainerStatus *ctr_status_pb(struct arena *a,
						   const struct manager_container *mc)
{
	const struct db_container *c = &mc->rec;
	Runtime__V1__ContainerStatus *s =
		NEW(a, Runtime__V1__ContainerStatus, runtime__v1__container_status__descriptor);
	if (!s || !(s->id = arena_str(a, c->id)) || !(s->metadata = ctr_md_pb(a, c)) ||
	    !(s->image = image_spec_pb(a, c->image)) || !(s->image_ref = arena_str(a, c->image_id)) ||
	    !(s->image_id = arena_str(a, c->image_id)) || !(s->reason = arena_str(a, c->reason)) ||
	    !(s->message = arena_str(a, c->message)) || !(s->log_path = arena_str(a, c->log_path)) ||
	    META_MAPS(a, c, s, runtime__v1__container_status) < 0 ||
	    ctr_config_parts_pb(a, c, s) < 0)
		return NULL;
	s->state = ctr_state_pb(c->state);
	s->created_at = c->created_ns;
	s->started_at = c->started_ns;
	s->finished_at = c->finished_ns;
	s->exit_code = c->exit_code;
	return s;
}

/* A verbose "info" map of one entry, "info": the JSON text given. */
static int info_map(struct arena *a, const ProtobufCMessageDescriptor *d, char *json_text,
		    size_t *ret_n, void *ret_entries)
{
	struct cri_map_entry **v = arena_alloc(a, sizeof(*v));
	if (!json_text || !arena_keep(a, json_text) || !v || !(v[0] = arena_msg(a, d)) ||
	    !(v[0]->key = arena_str(a, "info")))
		return -ENOMEM;
	v[0]->value = json_text;
	*ret_n = 1;
	*(void **)ret_entries = v;
	return 0;
}

/* ---- Version, Status, RuntimeConfig, UpdateRuntimeConfig ---- */

#define HANDLER(name)                                                                              \
	static int name(void *userdata, const ProtobufCMessage *req_, uint8_t **ret_buf,           \
			size_t *ret_len, struct berth_error **err)

HANDLER(h_version)
{
	struct arena a = { 0 };
	Runtime__V1__VersionResponse *res =
		NEW(&a, Runtime__V1__VersionResponse, runtime__v1__version_response__descriptor);
	if (res && (!(res->version = arena_str(&a, KUBE_API_VERSION)) ||
		    !(res->runtime_name = arena_str(&a, RUNTIME_NAME)) ||
		    !(res->runtime_version = arena_str(&a, BERTH_VERSION)) ||
		    !(res->runtime_api_version = arena_str(&a, CRI_API_VERSION))))
		res = NULL;
	return reply(&a, 0, res, ret_buf, ret_len);
}

static bool has_cni_config(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return false;
	bool found = false;
	for (struct dirent *e; !found && (e = readdir(d));) {
		const char *dot = strrchr(e->d_name, '.');
		found = e->d_name[0] != '.' && dot &&
			(strcmp(dot, ".conf") == 0 || strcmp(dot, ".conflist") == 0 ||
			 strcmp(dot, ".json") == 0);
	}
	closedir(d);
	return found;
}

/* NetworkReady: the built-in bridge is made with the first pod; CNI needs a network config;
 * network = none runs only pods with the node's network. */
static bool network_ready(const struct berthd_config *cfg, const char **reason, char **message)
{
	const char *net = cfg->network ? cfg->network : "bridge";
	*reason = "";
	*message = NULL;
	if (strcmp(net, "none") == 0) {
		*reason = "NetworkDisabled";
		*message = strdup("berthd runs with network = none: only pods with the node's "
				  "network can run");
		return false;
	}
	if (strcmp(net, "cni") == 0 && !has_cni_config(cfg->cni_conf_dir)) {
		*reason = "NetworkPluginNotReady";
		if (asprintf(message, "no CNI network config in %s", cfg->cni_conf_dir) < 0)
			*message = NULL;
		return false;
	}
	return true;
}

static Runtime__V1__RuntimeCondition *condition_pb(struct arena *a, const char *type, bool ok,
						   const char *reason, const char *message)
{
	Runtime__V1__RuntimeCondition *c =
		NEW(a, Runtime__V1__RuntimeCondition, runtime__v1__runtime_condition__descriptor);
	if (!c || !(c->type = arena_str(a, type)) || !(c->reason = arena_str(a, reason)) ||
	    !(c->message = arena_str(a, message)))
		return NULL;
	c->status = ok;
	return c;
}

static char *status_info_json(const struct cri_services *ctx, bool net_ok)
{
	_cleanup_free_ char *cidr = manager_pod_cidr(ctx->manager);
	struct json_writer *w = bjson_writer_new(false);
	char *text = NULL;
	if (!w)
		return NULL;
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "network", ctx->config->network ? ctx->config->network : "bridge");
	bjson_writer_kv_bool(w, "networkReady", net_ok);
	bjson_writer_kv_string(w, "podCIDR", cidr ? cidr : "");
	bjson_writer_kv_string(w, "cgroupDriver",
			       ctx->config->systemd_cgroup ? "systemd" : "cgroupfs");
	bjson_writer_kv_string(w, "root", ctx->config->root);
	bjson_writer_kv_string(w, "state", ctx->config->state);
	bjson_writer_end_object(w);
	return bjson_writer_finish(w, &text, NULL) < 0 ? NULL : text;
}

static Runtime__V1__RuntimeHandler **handlers_pb(struct arena *a, size_t *ret_n)
{
	/* "" (the default) and "berth" name the same runtime */
	static const char *const names[] = { "", RUNTIME_NAME };
	Runtime__V1__RuntimeHandler **v = arena_alloc(a, ARRAY_SIZE(names) * sizeof(*v));
	for (size_t i = 0; v && i < ARRAY_SIZE(names); i++) {
		Runtime__V1__RuntimeHandler *h = v[i] =
			NEW(a, Runtime__V1__RuntimeHandler, runtime__v1__runtime_handler__descriptor);
		if (!h || !(h->name = arena_str(a, names[i])) ||
		    !(h->features = NEW(a, Runtime__V1__RuntimeHandlerFeatures,
					runtime__v1__runtime_handler_features__descriptor)))
			return NULL;
	}
	*ret_n = ARRAY_SIZE(names);
	return v;
}

HANDLER(h_status)
{
	const Runtime__V1__StatusRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	struct arena a = { 0 };
	const char *reason;
	_cleanup_free_ char *message = NULL;
	bool net_ok = network_ready(ctx->config, &reason, &message);
	Runtime__V1__StatusResponse *res =
		NEW(&a, Runtime__V1__StatusResponse, runtime__v1__status_response__descriptor);
	Runtime__V1__RuntimeStatus *st =
		NEW(&a, Runtime__V1__RuntimeStatus, runtime__v1__runtime_status__descriptor);
	Runtime__V1__RuntimeCondition **conds = arena_alloc(&a, 2 * sizeof(*conds));
	if (!res || !st || !conds ||
	    !(conds[0] = condition_pb(&a, "RuntimeReady", true, "", "")) ||
	    !(conds[1] = condition_pb(&a, "NetworkReady", net_ok, reason, message)) ||
	    !(res->runtime_handlers = handlers_pb(&a, &res->n_runtime_handlers)) ||
	    !(res->features = NEW(&a, Runtime__V1__RuntimeFeatures,
				  runtime__v1__runtime_features__descriptor)) ||
	    (req->verbose &&
	     info_map(&a, &runtime__v1__status_response__info_entry__descriptor,
		      status_info_json(ctx, net_ok), &res->n_info, &res->info) < 0))
		res = NULL;
	else {
		st->conditions = conds;
		st->n_conditions = 2;
		res->status = st;
	}
	return reply(&a, 0, res, ret_buf, ret_len);
}

HANDLER(h_runtime_config)
{
	struct cri_services *ctx = userdata;
	struct arena a = { 0 };
	Runtime__V1__RuntimeConfigResponse *res = NEW(
		&a, Runtime__V1__RuntimeConfigResponse, runtime__v1__runtime_config_response__descriptor);
	Runtime__V1__LinuxRuntimeConfiguration *l =
		NEW(&a, Runtime__V1__LinuxRuntimeConfiguration,
		    runtime__v1__linux_runtime_configuration__descriptor);
	if (res && l) {
		l->cgroup_driver = ctx->config->systemd_cgroup ? RUNTIME__V1__CGROUP_DRIVER__SYSTEMD
							       : RUNTIME__V1__CGROUP_DRIVER__CGROUPFS;
		res->linux = l;
	}
	return reply(&a, 0, l ? res : NULL, ret_buf, ret_len);
}

/* An empty response message of the given type. */
static int empty_reply(const ProtobufCMessageDescriptor *d, uint8_t **ret_buf, size_t *ret_len)
{
	struct arena a = { 0 };
	return reply(&a, 0, arena_msg(&a, d), ret_buf, ret_len);
}

HANDLER(h_update_runtime_config)
{
	const Runtime__V1__UpdateRuntimeConfigRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	const Runtime__V1__RuntimeConfig *rc = req->runtime_config;
	const char *cidr = rc && rc->network_config ? rc->network_config->pod_cidr : NULL;
	int r = manager_set_pod_cidr(ctx->manager, cidr, err);
	if (r < 0)
		return r;
	return empty_reply(&runtime__v1__update_runtime_config_response__descriptor, ret_buf,
			   ret_len);
}

/* ---- pods ---- */

HANDLER(h_run_pod)
{
	const Runtime__V1__RunPodSandboxRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	const char *handler = req->runtime_handler ? req->runtime_handler : "";
	if (*handler && strcmp(handler, RUNTIME_NAME) != 0)
		return berth_error_set(err, EINVAL,
				       "runtime_handler: \"%s\" is not a handler of this runtime "
				       "(\"\" or \"%s\")",
				       handler, RUNTIME_NAME);
	struct pod_config cfg;
	_cleanup_free_ char *id = NULL;
	int r = cri_pod_config_from_pb(req->config, &cfg, err);
	if (r < 0)
		return r;
	r = manager_pod_run(ctx->manager, &cfg, &id, err);
	pod_config_clear(&cfg);
	if (r < 0)
		return r;
	struct arena a = { 0 };
	Runtime__V1__RunPodSandboxResponse *res = NEW(
		&a, Runtime__V1__RunPodSandboxResponse, runtime__v1__run_pod_sandbox_response__descriptor);
	if (res)
		res->pod_sandbox_id = id;
	return reply(&a, 0, res, ret_buf, ret_len);
}

static int require_id(const char *id, const char *field, struct berth_error **err)
{
	if (!id || !*id)
		return berth_error_set(err, EINVAL, "%s: required", field);
	return 0;
}

HANDLER(h_stop_pod)
{
	const Runtime__V1__StopPodSandboxRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	_cleanup_error_ struct berth_error *e = NULL;
	int r = require_id(req->pod_sandbox_id, "pod_sandbox_id", err);
	if (r < 0)
		return r;
	/* idempotent: a pod that is gone is stopped */
	r = manager_pod_stop(ctx->manager, req->pod_sandbox_id, &e);
	if (r < 0 && r != -ENOENT)
		return berth_error_move(err, &e);
	return empty_reply(&runtime__v1__stop_pod_sandbox_response__descriptor, ret_buf, ret_len);
}

HANDLER(h_remove_pod)
{
	const Runtime__V1__RemovePodSandboxRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	int r = require_id(req->pod_sandbox_id, "pod_sandbox_id", err);
	if (r < 0 || (r = manager_pod_remove(ctx->manager, req->pod_sandbox_id, err)) < 0)
		return r;
	return empty_reply(&runtime__v1__remove_pod_sandbox_response__descriptor, ret_buf, ret_len);
}

static char *pod_info_json(const struct manager_pod *p)
{
	struct json_writer *w = bjson_writer_new(false);
	char *text = NULL;
	if (!w)
		return NULL;
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "id", p->rec.id);
	bjson_writer_kv_string(w, "state", p->rec.state);
	bjson_writer_kv_string(w, "runtimeHandler", "");
	if (p->netns_path)
		bjson_writer_kv_string(w, "netNamespacePath", p->netns_path);
	req_write_raw(w, "config", p->rec.config_json);
	req_write_raw(w, "network", p->rec.network_json);
	bjson_writer_end_object(w);
	return bjson_writer_finish(w, &text, NULL) < 0 ? NULL : text;
}

/* The pod's containers' statuses (PodSandboxStatusResponse, events). */
static int pod_ctr_statuses_pb(struct arena *a, struct manager *m, const char *pod_id,
			       Runtime__V1__ContainerStatus ***ret, size_t *ret_n,
			       struct berth_error **err)
{
	struct manager_container *v = NULL;
	size_t n = 0;
	int r = manager_container_list(m, pod_id, &v, &n, err);
	if (r < 0)
		return r;
	Runtime__V1__ContainerStatus **out = arena_alloc(a, (n + 1) * sizeof(*out));
	for (size_t i = 0; out && i < n; i++)
		if (!(out[i] = ctr_status_pb(a, &v[i])))
			out = NULL;
	manager_container_list_free(v, n);
	if (!out)
		return -ENOMEM;
	*ret = out;
	*ret_n = n;
	return 0;
}

HANDLER(h_pod_status)
{
	const Runtime__V1__PodSandboxStatusRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	struct manager_pod p;
	int r = require_id(req->pod_sandbox_id, "pod_sandbox_id", err);
	if (r < 0 || (r = manager_pod_status(ctx->manager, req->pod_sandbox_id, &p, err)) < 0)
		return r;
	struct arena a = { 0 };
	Runtime__V1__PodSandboxStatusResponse *res =
		NEW(&a, Runtime__V1__PodSandboxStatusResponse,
		    runtime__v1__pod_sandbox_status_response__descriptor);
	if (res && (!(res->status = pod_status_pb(&a, &p)) ||
		    (req->verbose &&
		     info_map(&a, &runtime__v1__pod_sandbox_status_response__info_entry__descriptor,
			      pod_info_json(&p), &res->n_info, &res->info) < 0)))
		res = NULL;
	if (res && (r = pod_ctr_statuses_pb(&a, ctx->manager, p.rec.id, &res->containers_statuses,
					    &res->n_containers_statuses, err)) == 0)
		res->timestamp = (int64_t)time(NULL) * 1000000000;
	manager_pod_clear(&p);
	return reply(&a, r, res, ret_buf, ret_len);
}

static bool pod_matches(const Runtime__V1__PodSandboxFilter *f, const struct manager_pod *p)
{
	if (!f)
		return true;
	return id_matches(f->id, p->rec.id) &&
	       (!f->state || f->state->state == pod_state_pb(p->rec.state)) &&
	       labels_match(p->rec.labels_json, f->n_label_selector, (void *const *)f->label_selector);
}

static Runtime__V1__PodSandbox *pod_pb(struct arena *a, const struct db_pod *rec)
{
	Runtime__V1__PodSandbox *s =
		NEW(a, Runtime__V1__PodSandbox, runtime__v1__pod_sandbox__descriptor);
	if (!s || !(s->id = arena_str(a, rec->id)) || !(s->metadata = pod_md_pb(a, rec)) ||
	    !(s->runtime_handler = arena_str(a, "")) ||
	    META_MAPS(a, rec, s, runtime__v1__pod_sandbox) < 0)
		return NULL;
	s->state = pod_state_pb(rec->state);
	s->created_at = rec->created_ns;
	return s;
}

HANDLER(h_list_pods)
{
	const Runtime__V1__ListPodSandboxRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	struct manager_pod *v = NULL;
	size_t n = 0;
	int r = manager_pod_list(ctx->manager, &v, &n, err);
	if (r < 0)
		return r;
	struct arena a = { 0 };
	Runtime__V1__ListPodSandboxResponse *res =
		NEW(&a, Runtime__V1__ListPodSandboxResponse,
		    runtime__v1__list_pod_sandbox_response__descriptor);
	Runtime__V1__PodSandbox **items = arena_alloc(&a, (n + 1) * sizeof(*items));
	if (!items)
		res = NULL;
	for (size_t i = 0; res && i < n; i++) {
		if (!pod_matches(req->filter, &v[i]))
			continue;
		if (!(items[res->n_items++] = pod_pb(&a, &v[i].rec)))
			res = NULL;
	}
	if (res)
		res->items = items;
	manager_pod_list_free(v, n);
	return reply(&a, 0, res, ret_buf, ret_len);
}

/* ---- containers ---- */

HANDLER(h_create_container)
{
	const Runtime__V1__CreateContainerRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	struct container_config cfg;
	_cleanup_free_ char *id = NULL;
	int r = require_id(req->pod_sandbox_id, "pod_sandbox_id", err);
	if (r < 0 || (r = cri_container_config_from_pb(req->config, &cfg, err)) < 0)
		return r;
	r = manager_container_create(ctx->manager, req->pod_sandbox_id, &cfg, &id, err);
	container_config_clear(&cfg);
	if (r < 0)
		return r;
	struct arena a = { 0 };
	Runtime__V1__CreateContainerResponse *res =
		NEW(&a, Runtime__V1__CreateContainerResponse,
		    runtime__v1__create_container_response__descriptor);
	if (res)
		res->container_id = id;
	return reply(&a, 0, res, ret_buf, ret_len);
}

HANDLER(h_start_container)
{
	const Runtime__V1__StartContainerRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	int r = require_id(req->container_id, "container_id", err);
	if (r < 0 || (r = manager_container_start(ctx->manager, req->container_id, err)) < 0)
		return r;
	return empty_reply(&runtime__v1__start_container_response__descriptor, ret_buf, ret_len);
}

HANDLER(h_stop_container)
{
	const Runtime__V1__StopContainerRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	_cleanup_error_ struct berth_error *e = NULL;
	int r = require_id(req->container_id, "container_id", err);
	if (r < 0)
		return r;
	/* idempotent: a container that is gone is stopped */
	r = manager_container_stop(ctx->manager, req->container_id,
				   req->timeout > 0 ? req->timeout : 0, &e);
	if (r < 0 && r != -ENOENT)
		return berth_error_move(err, &e);
	return empty_reply(&runtime__v1__stop_container_response__descriptor, ret_buf, ret_len);
}

HANDLER(h_remove_container)
{
	const Runtime__V1__RemoveContainerRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	int r = require_id(req->container_id, "container_id", err);
	if (r < 0 || (r = manager_container_remove(ctx->manager, req->container_id, err)) < 0)
		return r;
	return empty_reply(&runtime__v1__remove_container_response__descriptor, ret_buf, ret_len);
}

static bool ctr_matches(const Runtime__V1__ContainerFilter *f, const struct db_container *c)
{
	if (!f)
		return true;
	return id_matches(f->id, c->id) && id_matches(f->pod_sandbox_id, c->pod_id) &&
	       (!f->state || f->state->state == ctr_state_pb(c->state)) &&
	       labels_match(c->labels_json, f->n_label_selector, (void *const *)f->label_selector);
}

static Runtime__V1__Container *ctr_pb(struct arena *a, const struct db_container *c)
{
	Runtime__V1__Container *s =
		NEW(a, Runtime__V1__Container, runtime__v1__container__descriptor);
	if (!s || !(s->id = arena_str(a, c->id)) || !(s->pod_sandbox_id = arena_str(a, c->pod_id)) ||
	    !(s->metadata = ctr_md_pb(a, c)) || !(s->image = image_spec_pb(a, c->image)) ||
	    !(s->image_ref = arena_str(a, c->image_id)) ||
	    !(s->image_id = arena_str(a, c->image_id)) ||
	    META_MAPS(a, c, s, runtime__v1__container) < 0)
		return NULL;
	s->state = ctr_state_pb(c->state);
	s->created_at = c->created_ns;
	return s;
}

/* The containers of one pod (a full id filter narrows it at once), or all. */
static int list_for_filter(struct manager *m, const char *pod_filter,
			   struct manager_container **ret, size_t *ret_n, struct berth_error **err)
{
	bool one_pod = pod_filter && strlen(pod_filter) == MANAGER_ID_LEN;
	return manager_container_list(m, one_pod ? pod_filter : NULL, ret, ret_n, err);
}

HANDLER(h_list_containers)
{
	const Runtime__V1__ListContainersRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	struct manager_container *v = NULL;
	size_t n = 0;
	int r = list_for_filter(ctx->manager, req->filter ? req->filter->pod_sandbox_id : NULL, &v,
				&n, err);
	if (r < 0)
		return r;
	struct arena a = { 0 };
	Runtime__V1__ListContainersResponse *res =
		NEW(&a, Runtime__V1__ListContainersResponse,
		    runtime__v1__list_containers_response__descriptor);
	Runtime__V1__Container **items = arena_alloc(&a, (n + 1) * sizeof(*items));
	if (!items)
		res = NULL;
	for (size_t i = 0; res && i < n; i++) {
		if (!ctr_matches(req->filter, &v[i].rec))
			continue;
		if (!(items[res->n_containers++] = ctr_pb(&a, &v[i].rec)))
			res = NULL;
	}
	if (res)
		res->containers = items;
	manager_container_list_free(v, n);
	return reply(&a, 0, res, ret_buf, ret_len);
}

static char *ctr_info_json(const struct manager_container *c)
{
	struct json_writer *w = bjson_writer_new(false);
	char *text = NULL;
	if (!w)
		return NULL;
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "id", c->rec.id);
	bjson_writer_kv_string(w, "sandboxID", c->rec.pod_id);
	bjson_writer_kv_int(w, "pid", c->pid);
	bjson_writer_kv_string(w, "state", c->rec.state);
	bjson_writer_kv_string(w, "image", c->rec.image ? c->rec.image : "");
	bjson_writer_kv_string(w, "imageID", c->rec.image_id ? c->rec.image_id : "");
	bjson_writer_kv_int(w, "signal", c->rec.signal);
	bjson_writer_kv_bool(w, "oomKilled", c->rec.oom_killed);
	bjson_writer_kv_string(w, "runtimeHandler", "");
	req_write_raw(w, "config", c->rec.config_json);
	bjson_writer_end_object(w);
	return bjson_writer_finish(w, &text, NULL) < 0 ? NULL : text;
}

HANDLER(h_container_status)
{
	const Runtime__V1__ContainerStatusRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	struct manager_container c;
	int r = require_id(req->container_id, "container_id", err);
	if (r < 0 || (r = manager_container_status(ctx->manager, req->container_id, &c, err)) < 0)
		return r;
	struct arena a = { 0 };
	Runtime__V1__ContainerStatusResponse *res =
		NEW(&a, Runtime__V1__ContainerStatusResponse,
		    runtime__v1__container_status_response__descriptor);
	if (res && (!(res->status = ctr_status_pb(&a, &c)) ||
		    (req->verbose &&
		     info_map(&a, &runtime__v1__container_status_response__info_entry__descriptor,
			      ctr_info_json(&c), &res->n_info, &res->info) < 0)))
		res = NULL;
	manager_container_clear(&c);
	return reply(&a, 0, res, ret_buf, ret_len);
}

/* linux.resources as the runtime-spec object the shim's update takes. */
static int resources_json(const Runtime__V1__LinuxContainerResources *l, char **ret)
{
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	bjson_writer_key(w, "cpu");
	bjson_writer_begin_object(w);
	if (l->cpu_shares > 0)
		bjson_writer_kv_int(w, "shares", l->cpu_shares);
	if (l->cpu_quota != 0)
		bjson_writer_kv_int(w, "quota", l->cpu_quota);
	if (l->cpu_period > 0)
		bjson_writer_kv_int(w, "period", l->cpu_period);
	if (nonempty(l->cpuset_cpus))
		bjson_writer_kv_string(w, "cpus", l->cpuset_cpus);
	if (nonempty(l->cpuset_mems))
		bjson_writer_kv_string(w, "mems", l->cpuset_mems);
	bjson_writer_end_object(w);
	bjson_writer_key(w, "memory");
	bjson_writer_begin_object(w);
	if (l->memory_limit_in_bytes > 0)
		bjson_writer_kv_int(w, "limit", l->memory_limit_in_bytes);
	if (l->memory_swap_limit_in_bytes > 0)
		bjson_writer_kv_int(w, "swap", l->memory_swap_limit_in_bytes);
	bjson_writer_end_object(w);
	if (l->n_hugepage_limits) {
		bjson_writer_key(w, "hugepageLimits");
		bjson_writer_begin_array(w);
		for (size_t i = 0; i < l->n_hugepage_limits; i++) {
			bjson_writer_begin_object(w);
			bjson_writer_kv_string(w, "pageSize", l->hugepage_limits[i]->page_size);
			bjson_writer_key(w, "limit");
			bjson_writer_uint(w, l->hugepage_limits[i]->limit);
			bjson_writer_end_object(w);
		}
		bjson_writer_end_array(w);
	}
	if (l->n_unified) {
		bjson_writer_key(w, "unified");
		bjson_writer_begin_object(w);
		for (size_t i = 0; i < l->n_unified; i++)
			bjson_writer_kv_string(w, l->unified[i]->key, l->unified[i]->value);
		bjson_writer_end_object(w);
	}
	bjson_writer_end_object(w);
	return bjson_writer_finish(w, ret, NULL);
}

HANDLER(h_update_resources)
{
	const Runtime__V1__UpdateContainerResourcesRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	_cleanup_free_ char *json = NULL;
	int r = require_id(req->container_id, "container_id", err);
	if (r < 0)
		return r;
	if (req->windows)
		return berth_error_set(err, EINVAL, "windows: not a Linux resource set");
	if (!req->linux)
		return berth_error_set(err, EINVAL, "linux: required");
	if (req->linux->oom_score_adj != 0)
		/* the OCI runtime sets it once, at create: kubelet's in-place resize sends the
		 * value it already had */
		log_debug("container %s: oom_score_adj %" PRId64 " is fixed at create; not "
			  "changed by UpdateContainerResources",
			  req->container_id, req->linux->oom_score_adj);
	if ((r = resources_json(req->linux, &json)) < 0 ||
	    (r = manager_container_update(ctx->manager, req->container_id, json, err)) < 0)
		return r;
	return empty_reply(&runtime__v1__update_container_resources_response__descriptor, ret_buf,
			   ret_len);
}

HANDLER(h_reopen_log)
{
	const Runtime__V1__ReopenContainerLogRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	int r = require_id(req->container_id, "container_id", err);
	if (r < 0 || (r = manager_container_reopen_log(ctx->manager, req->container_id, err)) < 0)
		return r;
	return empty_reply(&runtime__v1__reopen_container_log_response__descriptor, ret_buf,
			   ret_len);
}

HANDLER(h_exec_sync)
{
	const Runtime__V1__ExecSyncRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	_cleanup_strv_ char **argv = NULL;
	struct shim_exec_result res_ = { 0 };
	int r = require_id(req->container_id, "container_id", err);
	if (r < 0)
		return r;
	if (req->n_cmd == 0)
		return berth_error_set(err, EINVAL, "cmd: required (the program and its arguments)");
	if (req->timeout < 0)
		return berth_error_set(err, EINVAL, "timeout: negative");
	if ((r = cri_strv_from_pb(req->n_cmd, req->cmd, &argv)) < 0 ||
	    (r = manager_container_exec_sync(ctx->manager, req->container_id, argv, req->timeout,
					     &res_, err)) < 0)
		return r;
	struct arena a = { 0 };
	Runtime__V1__ExecSyncResponse *res =
		NEW(&a, Runtime__V1__ExecSyncResponse, runtime__v1__exec_sync_response__descriptor);
	if (res) {
		res->stdout = (ProtobufCBinaryData){ res_.out_len, (uint8_t *)res_.out };
		res->stderr = (ProtobufCBinaryData){ res_.errs_len, (uint8_t *)res_.errs };
		/* killed by a signal: 128+N, as a shell tells it */
		res->exit_code = res_.exit_code;
	}
	r = reply(&a, 0, res, ret_buf, ret_len);
	shim_exec_result_clear(&res_);
	return r;
}

/* Exec, Attach and PortForward answer a URL of the streaming server (cri/stream.c). */
static int url_reply(const ProtobufCMessageDescriptor *d, char *url, uint8_t **ret_buf,
		     size_t *ret_len)
{
	struct arena a = { 0 };
	/* the three responses are the same message: {string url = 1} */
	Runtime__V1__ExecResponse *res = arena_msg(&a, d);
	if (res)
		res->url = url;
	int r = reply(&a, 0, res, ret_buf, ret_len);
	free(url);
	return r;
}

static void log_audit(const char *what, const char *id, const char *audit_id)
{
	if (audit_id && *audit_id)
		log_info("%s %s (audit request %s)", what, id, audit_id);
}

HANDLER(h_exec)
{
	const Runtime__V1__ExecRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	_cleanup_strv_ char **argv = NULL;
	char *url = NULL;
	int r = require_id(req->container_id, "container_id", err);
	if (r < 0)
		return r;
	if (req->n_cmd == 0)
		return berth_error_set(err, EINVAL, "cmd: required (the program and its arguments)");
	if ((r = cri_strv_from_pb(req->n_cmd, req->cmd, &argv)) < 0)
		return r;
	const struct stream_exec x = { .container_id = req->container_id, .cmd = argv,
				       .tty = req->tty, .in = req->stdin, .out = req->stdout,
				       .errs = req->stderr };
	if ((r = stream_server_exec_url(ctx->streams, &x, &url, err)) < 0)
		return r;
	log_audit("exec in", req->container_id, req->audit_request_id);
	return url_reply(&runtime__v1__exec_response__descriptor, url, ret_buf, ret_len);
}

HANDLER(h_attach)
{
	const Runtime__V1__AttachRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	char *url = NULL;
	int r = require_id(req->container_id, "container_id", err);
	if (r < 0)
		return r;
	const struct stream_exec x = { .container_id = req->container_id, .tty = req->tty,
				       .in = req->stdin, .out = req->stdout,
				       .errs = req->stderr };
	if ((r = stream_server_attach_url(ctx->streams, &x, &url, err)) < 0)
		return r;
	log_audit("attach to", req->container_id, req->audit_request_id);
	return url_reply(&runtime__v1__attach_response__descriptor, url, ret_buf, ret_len);
}

HANDLER(h_port_forward)
{
	const Runtime__V1__PortForwardRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	char *url = NULL;
	int r = require_id(req->pod_sandbox_id, "pod_sandbox_id", err);
	if (r < 0 || (r = stream_server_port_forward_url(ctx->streams, req->pod_sandbox_id,
							   req->port, req->n_port, &url, err)) < 0)
		return r;
	return url_reply(&runtime__v1__port_forward_response__descriptor, url, ret_buf, ret_len);
}

HANDLER(h_checkpoint)
{
	return berth_error_set(err, ENOSYS, "CheckpointContainer: checkpointing is not supported");
}

HANDLER(h_update_pod_resources)
{
	return berth_error_set(err, ENOSYS,
			       "UpdatePodSandboxResources: pod-level resources are not supported "
			       "yet");
}

/* ---- stats ---- */

static Runtime__V1__UInt64Value *u64_pb(struct arena *a, uint64_t v)
{
	Runtime__V1__UInt64Value *u =
		NEW(a, Runtime__V1__UInt64Value, runtime__v1__uint64_value__descriptor);
	if (u)
		u->value = v;
	return u;
}

/* One "key value" line of memory.stat; false when it is not there. */
static bool memory_stat_get(const char *stat, const char *key, uint64_t *ret)
{
	size_t klen = strlen(key);
	for (const char *s = stat; s && *s; s = strchr(s, '\n'), s = s ? s + 1 : NULL)
		if (strncmp(s, key, klen) == 0 && s[klen] == ' ')
			return sscanf(s + klen + 1, "%" SCNu64, ret) == 1;
	return false;
}

/* CPU and memory from a cgroup's counters: what the controllers give, nothing invented (a
 * hierarchy without them, like this hybrid host's cgroup2, gives timestamps only). */
static int usage_pb(struct arena *a, const struct cgroup_stats *st, Runtime__V1__CpuUsage **cpu,
		    Runtime__V1__MemoryUsage **mem)
{
	int64_t now = (int64_t)time(NULL) * 1000000000;
	*cpu = NEW(a, Runtime__V1__CpuUsage, runtime__v1__cpu_usage__descriptor);
	*mem = NEW(a, Runtime__V1__MemoryUsage, runtime__v1__memory_usage__descriptor);
	if (!*cpu || !*mem)
		return -ENOMEM;
	(*cpu)->timestamp = (*mem)->timestamp = now;
	if (st->has_cpu && !((*cpu)->usage_core_nano_seconds = u64_pb(a, st->cpu_usage_usec * 1000)))
		return -ENOMEM;
	if (!st->has_memory)
		return 0;
	Runtime__V1__MemoryUsage *m = *mem;
	uint64_t inactive = 0, anon, faults, major;
	memory_stat_get(st->memory_stat, "inactive_file", &inactive);
	/* kubelet's working set: usage minus the inactive page cache */
	uint64_t ws = st->memory_current > inactive ? st->memory_current - inactive : 0;
	if (!(m->usage_bytes = u64_pb(a, st->memory_current)) ||
	    !(m->working_set_bytes = u64_pb(a, ws)))
		return -ENOMEM;
	if (st->memory_max != UINT64_MAX &&
	    !(m->available_bytes = u64_pb(a, st->memory_max > ws ? st->memory_max - ws : 0)))
		return -ENOMEM;
	if ((memory_stat_get(st->memory_stat, "anon", &anon) && !(m->rss_bytes = u64_pb(a, anon))) ||
	    (memory_stat_get(st->memory_stat, "pgfault", &faults) &&
	     !(m->page_faults = u64_pb(a, faults))) ||
	    (memory_stat_get(st->memory_stat, "pgmajfault", &major) &&
	     !(m->major_page_faults = u64_pb(a, major))))
		return -ENOMEM;
	return 0;
}

static Runtime__V1__ContainerAttributes *ctr_attrs_pb(struct arena *a, const struct db_container *c)
{
	Runtime__V1__ContainerAttributes *at = NEW(a, Runtime__V1__ContainerAttributes,
						   runtime__v1__container_attributes__descriptor);
	if (!at || !(at->id = arena_str(a, c->id)) || !(at->metadata = ctr_md_pb(a, c)) ||
	    META_MAPS(a, c, at, runtime__v1__container_attributes) < 0)
		return NULL;
	return at;
}

/* A container's stats; one that is not running (or whose cgroup is gone) has attributes and
 * no usage. Errors other than that are the caller's. */
static int ctr_stats_pb(struct arena *a, struct manager *m, const struct db_container *c,
			Runtime__V1__ContainerStats **ret, struct berth_error **err)
{
	Runtime__V1__ContainerStats *s =
		NEW(a, Runtime__V1__ContainerStats, runtime__v1__container_stats__descriptor);
	if (!s || !(s->attributes = ctr_attrs_pb(a, c)))
		return -ENOMEM;
	*ret = s;
	struct cgroup_stats st = { 0 };
	_cleanup_error_ struct berth_error *e = NULL;
	int r = manager_container_stats(m, c->id, &st, &e);
	if (r == -EBUSY || r == -ENOENT) {
		log_debug("container %s: no stats: %s", c->id, e ? e->msg : "");
		return 0;
	}
	if (r < 0)
		return berth_error_move(err, &e);
	r = usage_pb(a, &st, &s->cpu, &s->memory);
	cgroup_stats_clear(&st);
	return r;
}

HANDLER(h_container_stats)
{
	const Runtime__V1__ContainerStatsRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	struct manager_container c;
	int r = require_id(req->container_id, "container_id", err);
	if (r < 0 || (r = manager_container_status(ctx->manager, req->container_id, &c, err)) < 0)
		return r;
	struct arena a = { 0 };
	Runtime__V1__ContainerStatsResponse *res = NEW(
		&a, Runtime__V1__ContainerStatsResponse, runtime__v1__container_stats_response__descriptor);
	r = res ? ctr_stats_pb(&a, ctx->manager, &c.rec, &res->stats, err) : -ENOMEM;
	manager_container_clear(&c);
	return reply(&a, r, res, ret_buf, ret_len);
}

static bool stats_filter_matches(const Runtime__V1__ContainerStatsFilter *f,
				 const struct db_container *c)
{
	return !f ||
	       (id_matches(f->id, c->id) && id_matches(f->pod_sandbox_id, c->pod_id) &&
		labels_match(c->labels_json, f->n_label_selector, (void *const *)f->label_selector));
}

/* The stats of the listed containers that pass the filter (NULL: all of pod_id's, or all). */
static int ctrs_stats_pb(struct arena *a, struct manager *m, const char *pod_id,
			 const Runtime__V1__ContainerStatsFilter *f,
			 Runtime__V1__ContainerStats ***ret, size_t *ret_n, struct berth_error **err)
{
	struct manager_container *v = NULL;
	size_t n = 0, k = 0;
	int r = pod_id ? manager_container_list(m, pod_id, &v, &n, err)
		       : list_for_filter(m, f ? f->pod_sandbox_id : NULL, &v, &n, err);
	if (r < 0)
		return r;
	Runtime__V1__ContainerStats **out = arena_alloc(a, (n + 1) * sizeof(*out));
	r = out ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++)
		if (stats_filter_matches(f, &v[i].rec) &&
		    (r = ctr_stats_pb(a, m, &v[i].rec, &out[k], err)) == 0)
			k++;
	manager_container_list_free(v, n);
	if (r < 0)
		return r;
	*ret = out;
	*ret_n = k;
	return 0;
}

HANDLER(h_list_container_stats)
{
	const Runtime__V1__ListContainerStatsRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	struct arena a = { 0 };
	Runtime__V1__ListContainerStatsResponse *res =
		NEW(&a, Runtime__V1__ListContainerStatsResponse,
		    runtime__v1__list_container_stats_response__descriptor);
	int r = res ? ctrs_stats_pb(&a, ctx->manager, NULL, req->filter, &res->stats,
				    &res->n_stats, err)
		    : -ENOMEM;
	return reply(&a, r, res, ret_buf, ret_len);
}

static Runtime__V1__PodSandboxAttributes *pod_attrs_pb(struct arena *a, const struct db_pod *p)
{
	Runtime__V1__PodSandboxAttributes *at = NEW(a, Runtime__V1__PodSandboxAttributes,
						    runtime__v1__pod_sandbox_attributes__descriptor);
	if (!at || !(at->id = arena_str(a, p->id)) || !(at->metadata = pod_md_pb(a, p)) ||
	    META_MAPS(a, p, at, runtime__v1__pod_sandbox_attributes) < 0)
		return NULL;
	return at;
}

/* The pod's cgroup counters (none without a cgroup) and its containers' stats. */
static int pod_stats_pb(struct arena *a, struct manager *m, const struct db_pod *p,
			Runtime__V1__PodSandboxStats **ret, struct berth_error **err)
{
	Runtime__V1__PodSandboxStats *s =
		NEW(a, Runtime__V1__PodSandboxStats, runtime__v1__pod_sandbox_stats__descriptor);
	Runtime__V1__LinuxPodSandboxStats *l = NEW(a, Runtime__V1__LinuxPodSandboxStats,
						   runtime__v1__linux_pod_sandbox_stats__descriptor);
	if (!s || !l || !(s->attributes = pod_attrs_pb(a, p)))
		return -ENOMEM;
	s->linux = l;
	*ret = s;
	struct cgroup_stats st = { 0 };
	_cleanup_error_ struct berth_error *e = NULL;
	int r = manager_pod_stats(m, p->id, &st, &e);
	if (r == 0) {
		r = usage_pb(a, &st, &l->cpu, &l->memory);
		if (r == 0 && st.has_pids) {
			Runtime__V1__ProcessUsage *pu = NEW(a, Runtime__V1__ProcessUsage,
							    runtime__v1__process_usage__descriptor);
			if (!pu || !(pu->process_count = u64_pb(a, st.pids_current)))
				r = -ENOMEM;
			else {
				pu->timestamp = l->cpu->timestamp;
				l->process = pu;
			}
		}
		cgroup_stats_clear(&st);
		if (r < 0)
			return r;
	} else if (r != -ENOENT) {
		return berth_error_move(err, &e);
	}
	return ctrs_stats_pb(a, m, p->id, NULL, &l->containers, &l->n_containers, err);
}

HANDLER(h_pod_stats)
{
	const Runtime__V1__PodSandboxStatsRequest *req = (const void *)req_;
	struct cri_services *ctx = userdata;
	struct manager_pod p;
	int r = require_id(req->pod_sandbox_id, "pod_sandbox_id", err);
	if (r < 0 || (r = manager_pod_status(ctx->manager, req->pod_sandbox_id, &p, err)) < 0)
		return r;
	struct arena a = { 0 };
	Runtime__V1__PodSandboxStatsResponse *res =
		NEW(&a, Runtime__V1__PodSandboxStatsResponse,
		    runtime__v1__pod_sandbox_stats_response__descriptor);
	r = res ? pod_stats_pb(&a, ctx->manager, &p.rec, &res->stats, err) : -ENOMEM;
	manager_pod_clear(&p);
	return reply(&a, r, res, ret_buf, ret_len);
}

HANDLER(h_list_pod_stats)
{
	const Runtime__V1__ListPodSandboxStatsRequest *req = (const void *)req_;
	const Runtime__V1__PodSandboxStatsFilter *f = req->filter;
	struct cri_services *ctx = userdata;
	struct manager_pod *v = NULL;
	size_t n = 0;
	int r = manager_pod_list(ctx->manager, &v, &n, err);
	if (r < 0)
		return r;
	struct arena a = { 0 };
	Runtime__V1__ListPodSandboxStatsResponse *res =
		NEW(&a, Runtime__V1__ListPodSandboxStatsResponse,
		    runtime__v1__list_pod_sandbox_stats_response__descriptor);
	Runtime__V1__PodSandboxStats **out = arena_alloc(&a, (n + 1) * sizeof(*out));
	r = res && out ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++) {
		const struct db_pod *p = &v[i].rec;
		if (f && (!id_matches(f->id, p->id) ||
			  !labels_match(p->labels_json, f->n_label_selector,
					(void *const *)f->label_selector)))
			continue;
		if ((r = pod_stats_pb(&a, ctx->manager, p, &out[res->n_stats], err)) == 0)
			res->n_stats++;
	}
	if (r == 0)
		res->stats = out;
	manager_pod_list_free(v, n);
	return reply(&a, r, res, ret_buf, ret_len);
}

/* berth exports no metrics of its own through the CRI (kubelet's cAdvisor-less path): both lists
 * are empty, which kubelet accepts. */
HANDLER(h_list_metric_descriptors)
{
	return empty_reply(&runtime__v1__list_metric_descriptors_response__descriptor, ret_buf,
			   ret_len);
}

HANDLER(h_list_pod_metrics)
{
	return empty_reply(&runtime__v1__list_pod_sandbox_metrics_response__descriptor, ret_buf,
			   ret_len);
}

/* ---- GetContainerEvents ---- */

struct event_stream {
	struct cri_services *ctx;
	struct grpc_stream *stream;
	struct manager_subscription *sub;
};

static Runtime__V1__ContainerEventType event_type_pb(enum manager_event_type t)
{
	switch (t) {
	case MANAGER_EVENT_CREATED:
		return RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT;
	case MANAGER_EVENT_STARTED:
		return RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT;
	case MANAGER_EVENT_EXITED:
		return RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT;
	default:
		return RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT;
	}
}

/* The event with the pod's status and its containers' statuses as they are now (a pod removed
 * meanwhile: none). */
static Runtime__V1__ContainerEventResponse *event_pb(struct arena *a, struct manager *m,
						     const struct manager_event *ev)
{
	Runtime__V1__ContainerEventResponse *res =
		NEW(a, Runtime__V1__ContainerEventResponse,
		    runtime__v1__container_event_response__descriptor);
	if (!res || !(res->container_id = arena_str(a, ev->container_id)))
		return NULL;
	res->container_event_type = event_type_pb(ev->type);
	res->created_at = ev->time_ns;
	struct manager_pod p;
	if (manager_pod_status(m, ev->pod_id, &p, NULL) < 0)
		return res;
	res->pod_sandbox_status = pod_status_pb(a, &p);
	manager_pod_clear(&p);
	if (!res->pod_sandbox_status ||
	    pod_ctr_statuses_pb(a, m, ev->pod_id, &res->containers_statuses,
				&res->n_containers_statuses, NULL) < 0)
		return NULL;
	return res;
}

static void event_cb(const struct manager_event *ev, void *userdata)
{
	struct event_stream *es = userdata;
	struct arena a = { 0 };
	Runtime__V1__ContainerEventResponse *res = event_pb(&a, es->ctx->manager, ev);
	int r = res ? grpc_stream_send(es->stream, &res->base) : -ENOMEM;
	arena_clear(&a);
	if (r == -EPIPE)
		return; /* the client went: close_cb follows */
	if (r < 0) {
		/* a client that misses an event must learn it: the stream ends */
		log_warn("GetContainerEvents: event for container %s not sent: %s",
			 ev->container_id, strerror(-r));
		grpc_stream_finish(es->stream, -r, "an event could not be sent");
	}
}

static void events_closed_cb(struct grpc_stream *s, void *userdata)
{
	struct event_stream *es = userdata;
	manager_event_unsubscribe(es->ctx->manager, es->sub);
	free(es);
}

static int events_open(void *userdata, const ProtobufCMessage *req, struct grpc_stream *stream,
		       struct berth_error **err)
{
	struct event_stream *es = calloc(1, sizeof(*es));
	if (!es)
		return -ENOMEM;
	es->ctx = userdata;
	es->stream = stream;
	int r = manager_event_subscribe(es->ctx->manager, event_cb, es, &es->sub);
	if (r < 0) {
		free(es);
		return berth_error_setsys(err, -r, "GetContainerEvents: subscribing");
	}
	grpc_stream_set_close_cb(stream, events_closed_cb, es);
	return 0;
}

/* ---- the table ---- */

#define UNARY(name, req, fn)                                                                       \
	{ RPC(name), &runtime__v1__##req##__descriptor, fn, NULL, NULL }

static const struct grpc_method runtime_methods[] = {
	UNARY("Version", version_request, h_version),
	UNARY("RunPodSandbox", run_pod_sandbox_request, h_run_pod),
	UNARY("StopPodSandbox", stop_pod_sandbox_request, h_stop_pod),
	UNARY("RemovePodSandbox", remove_pod_sandbox_request, h_remove_pod),
	UNARY("PodSandboxStatus", pod_sandbox_status_request, h_pod_status),
	UNARY("ListPodSandbox", list_pod_sandbox_request, h_list_pods),
	UNARY("CreateContainer", create_container_request, h_create_container),
	UNARY("StartContainer", start_container_request, h_start_container),
	UNARY("StopContainer", stop_container_request, h_stop_container),
	UNARY("RemoveContainer", remove_container_request, h_remove_container),
	UNARY("ListContainers", list_containers_request, h_list_containers),
	UNARY("ContainerStatus", container_status_request, h_container_status),
	UNARY("UpdateContainerResources", update_container_resources_request, h_update_resources),
	UNARY("ReopenContainerLog", reopen_container_log_request, h_reopen_log),
	UNARY("ExecSync", exec_sync_request, h_exec_sync),
	UNARY("Exec", exec_request, h_exec),
	UNARY("Attach", attach_request, h_attach),
	UNARY("PortForward", port_forward_request, h_port_forward),
	UNARY("ContainerStats", container_stats_request, h_container_stats),
	UNARY("ListContainerStats", list_container_stats_request, h_list_container_stats),
	UNARY("PodSandboxStats", pod_sandbox_stats_request, h_pod_stats),
	UNARY("ListPodSandboxStats", list_pod_sandbox_stats_request, h_list_pod_stats),
	UNARY("UpdateRuntimeConfig", update_runtime_config_request, h_update_runtime_config),
	UNARY("Status", status_request, h_status),
	UNARY("CheckpointContainer", checkpoint_container_request, h_checkpoint),
	{ RPC("GetContainerEvents"), &runtime__v1__get_events_request__descriptor, NULL,
	  events_open, NULL },
	UNARY("ListMetricDescriptors", list_metric_descriptors_request, h_list_metric_descriptors),
	UNARY("ListPodSandboxMetrics", list_pod_sandbox_metrics_request, h_list_pod_metrics),
	UNARY("RuntimeConfig", runtime_config_request, h_runtime_config),
	UNARY("UpdatePodSandboxResources", update_pod_sandbox_resources_request,
	      h_update_pod_resources),
};

#define N_METHODS ARRAY_SIZE(runtime_methods)

const struct grpc_method *cri_runtime_methods(struct cri_services *ctx)
{
	/* the entries carry ctx as userdata: one table, for the daemon's one context (a later
	 * call re-targets it), so the caller has nothing to free */
	static struct grpc_method table[N_METHODS + 1];
	for (size_t i = 0; i < N_METHODS; i++) {
		table[i] = runtime_methods[i];
		table[i].userdata = ctx;
	}
	return table;
}
