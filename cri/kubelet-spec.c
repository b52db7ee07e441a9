/* The kubelet loop's CRI requests: a manifest's pod becomes a struct pod_config, each container a
 * struct container_config (env resolved, volumes mounted, resources and security context
 * mapped), as kubelet builds its RunPodSandbox and CreateContainer requests. */
#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "cri/kubelet-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

static int oom(struct berth_error **err)
{
	return berth_error_set(err, ENOMEM, "out of memory");
}

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static size_t strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

static int strv_dup(char *const *v, char ***ret)
{
	*ret = NULL;
	if (!v)
		return 0;
	size_t n = strv_len(v);
	char **c = calloc(n + 1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!(c[i] = strdup(v[i]))) {
			strv_free(c);
			return -ENOMEM;
		}
	*ret = c;
	return 0;
}

/* ---- pod ---- */

/* A map as a JSON object; labels also get the loop's own two (file and hash). */
static int kv_json(const struct pod_kv_list *l, const char *file, const char *hash, char **ret)
{
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	for (size_t i = 0; i < l->n; i++)
		bjson_writer_kv_string(w, l->items[i].key, l->items[i].value);
	if (file) {
		bjson_writer_kv_string(w, KUBELET_LABEL_FILE, file);
		bjson_writer_kv_string(w, KUBELET_LABEL_HASH, hash);
	}
	bjson_writer_end_object(w);
	return bjson_writer_finish(w, ret, NULL);
}

static int pod_ports(const struct pod_spec *s, struct pod_config *c)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n_containers; i++)
		for (size_t j = 0; j < s->containers[i].n_ports; j++)
			n += s->containers[i].ports[j].host_port > 0;
	if (!n || s->host_network)
		return 0;
	c->ports = calloc(n, sizeof(*c->ports));
	if (!c->ports)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_containers; i++)
		for (size_t j = 0; j < s->containers[i].n_ports; j++) {
			const struct pod_container_port *p = &s->containers[i].ports[j];
			if (p->host_port <= 0)
				continue;
			struct port_mapping *m = &c->ports[c->n_ports++];
			m->protocol = strdup(p->protocol == POD_PROTOCOL_UDP ? "UDP" : "TCP");
			m->container_port = (uint16_t)p->container_port;
			m->host_port = (uint16_t)p->host_port;
			m->host_ip = xstrdup(p->host_ip);
			if (!m->protocol || (p->host_ip && !m->host_ip))
				return -ENOMEM;
		}
	return 0;
}

static int pod_dns(const struct pod_dns_config *d, struct pod_config *c)
{
	if (!d)
		return 0;
	c->has_dns = true;
	int r;
	if ((r = strv_dup(d->nameservers, &c->dns_servers)) < 0 ||
	    (r = strv_dup(d->searches, &c->dns_searches)) < 0)
		return r;
	c->dns_options = calloc(d->n_options + 1, sizeof(char *));
	if (!c->dns_options)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_options; i++) {
		const struct pod_dns_option *o = &d->options[i];
		int n = o->value ? asprintf(&c->dns_options[i], "%s:%s", o->name, o->value)
				 : asprintf(&c->dns_options[i], "%s", o->name);
		if (n < 0) {
			c->dns_options[i] = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

static bool pod_privileged(const struct pod_spec *s)
{
	for (size_t i = 0; i < s->n_containers + s->n_init_containers; i++) {
		const struct pod_container *c = i < s->n_containers
							? &s->containers[i]
							: &s->init_containers[i - s->n_containers];
		if (c->security_context && c->security_context->privileged.set &&
		    c->security_context->privileged.value)
			return true;
	}
	return false;
}

static int pod_config_fill(const struct kpod *p, struct pod_config *c)
{
	const struct pod_manifest *man = p->man;
	const struct pod_spec *s = &man->spec;
	c->name = strdup(man->metadata.name);
	c->namespace_ = strdup(man->metadata.namespace);
	c->uid = strdup(p->uid);
	c->attempt = p->attempt;
	c->hostname = s->host_network ? NULL
				      : strdup(s->hostname ? s->hostname : man->metadata.name);
	if (!c->name || !c->namespace_ || !c->uid || (!s->host_network && !c->hostname))
		return -ENOMEM;
	c->net_mode = s->host_network ? NS_MODE_NODE : NS_MODE_POD;
	c->ipc_mode = s->host_ipc ? NS_MODE_NODE : NS_MODE_POD;
	c->pid_mode = s->host_pid		 ? NS_MODE_NODE
		      : s->share_process_namespace ? NS_MODE_POD
						   : NS_MODE_CONTAINER;
	c->privileged = pod_privileged(s);
	int r;
	if ((r = kv_json(&man->metadata.labels, p->file, p->hash, &c->labels_json)) < 0 ||
	    (r = kv_json(&man->metadata.annotations, NULL, NULL, &c->annotations_json)) < 0 ||
	    (r = pod_ports(s, c)) < 0 || (r = pod_dns(s->dns_config, c)) < 0)
		return r;
	return 0;
}

int kubelet_pod_config(const struct kpod *p, struct pod_config *ret, struct berth_error **err)
{
	struct pod_config c = { 0 };
	int r = pod_config_fill(p, &c);
	if (r < 0) {
		pod_config_clear(&c);
		return oom(err);
	}
	*ret = c;
	return 0;
}

/* ---- env ---- */

/* <dir>/<namespace>/<name>/<key>: 1 and the contents, 0 when absent. */
static int read_object_key(const char *dir, const char *kind, const char *ns,
			   const struct pod_key_selector *sel, char **ret, struct berth_error **err)
{
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "%s/%s/%s/%s", dir, ns, sel->name, sel->key) < 0)
		return oom(err);
	_cleanup_error_ struct berth_error *e = NULL;
	int r = read_file_at(AT_FDCWD, path, ret, NULL, &e);
	if (r == -ENOENT || r == -ENOTDIR) {
		if (sel->optional)
			return 0;
		return berth_error_set(err, ENOENT, "%s \"%s/%s\": key \"%s\" not found (%s)", kind,
				       ns, sel->name, sel->key, path);
	}
	if (r < 0)
		return berth_error_set(err, -r, "%s \"%s/%s\": key \"%s\": %s", kind, ns, sel->name,
				       sel->key, e ? e->msg : strerror(-r));
	return 1;
}

/* The value of one variable: 1 and *ret, 0 for none (an optional key that is missing). */
static int env_value(const struct pod_manifest *man, const struct pod_env_var *v,
		     const char *pod_ip, const char *cm_dir, const char *secret_dir, char **ret,
		     struct berth_error **err)
{
	const struct pod_env_source *src = v->value_from;
	const char *ns = man->metadata.namespace;
	if (!src) {
		*ret = strdup(v->value ? v->value : "");
		return *ret ? 1 : oom(err);
	}
	if (src->config_map_key_ref)
		return read_object_key(cm_dir, "configMap", ns, src->config_map_key_ref, ret, err);
	if (src->secret_key_ref)
		return read_object_key(secret_dir, "secret", ns, src->secret_key_ref, ret, err);
	const char *val = "";
	switch (src->field_ref->field) {
	case POD_FIELD_NAME:
		val = man->metadata.name;
		break;
	case POD_FIELD_NAMESPACE:
		val = ns;
		break;
	case POD_FIELD_POD_IP:
		val = pod_ip ? pod_ip : "";
		break;
	}
	*ret = strdup(val);
	return *ret ? 1 : oom(err);
}

int kubelet_env_resolve(const struct pod_manifest *man, const struct pod_container *c,
			const char *pod_ip, const char *config_map_dir, const char *secret_dir,
			char ***ret_envs, struct berth_error **err)
{
	_cleanup_strv_ char **envs = calloc(c->n_env + 1, sizeof(char *));
	if (!envs)
		return oom(err);
	size_t n = 0;
	for (size_t i = 0; i < c->n_env; i++) {
		_cleanup_free_ char *val = NULL;
		int r = env_value(man, &c->env[i], pod_ip, config_map_dir, secret_dir, &val, err);
		if (r < 0)
			return berth_error_wrap(err, "env %s", c->env[i].name);
		if (r == 0)
			continue;
		if (asprintf(&envs[n], "%s=%s", c->env[i].name, val) < 0) {
			envs[n] = NULL;
			return oom(err);
		}
		n++;
	}
	*ret_envs = TAKE_PTR(envs);
	return 0;
}

/* ---- container ---- */

static int container_mounts(const struct kpod *p, const struct pod_container *pc,
			    struct container_config *c, struct berth_error **err)
{
	if (!pc->n_volume_mounts)
		return 0;
	c->mounts = calloc(pc->n_volume_mounts, sizeof(*c->mounts));
	if (!c->mounts)
		return oom(err);
	for (size_t i = 0; i < pc->n_volume_mounts; i++) {
		const struct pod_volume_mount *vm = &pc->volume_mounts[i];
		const struct pod_volume *v = kubelet_volume_find(&p->man->spec, vm->name);
		struct bind_mount *b = &c->mounts[c->n_mounts++];
		_cleanup_free_ char *base = NULL;
		if (kubelet_volume_path(p, vm->name, &base) < 0)
			return oom(err);
		int r = vm->sub_path ? asprintf(&b->host_path, "%s/%s", base, vm->sub_path)
				     : asprintf(&b->host_path, "%s", base);
		if (r < 0 || !(b->container_path = strdup(vm->mount_path))) {
			if (r < 0)
				b->host_path = NULL;
			return oom(err);
		}
		/* config maps and secrets are read-only whatever the mount says */
		b->readonly = vm->read_only ||
			      (v && (v->type == POD_VOLUME_CONFIG_MAP || v->type == POD_VOLUME_SECRET));
		b->propagation = PROPAGATION_PRIVATE;
	}
	return 0;
}

static void container_resources(const struct pod_resources *res, struct container_config *c)
{
	if (res->requests.cpu_millis.set) {
		int64_t shares = res->requests.cpu_millis.value * 1024 / 1000;
		c->cpu_shares = shares < 2 ? 2 : shares;
	}
	if (res->limits.cpu_millis.set) {
		c->cpu_period = 100000;
		int64_t quota = res->limits.cpu_millis.value * 100000 / 1000;
		c->cpu_quota = quota < 1000 ? 1000 : quota;
	}
	if (res->limits.memory_bytes.set)
		c->memory_limit_in_bytes = res->limits.memory_bytes.value;
}

static enum seccomp_mode seccomp_of(const struct pod_seccomp_profile *sp)
{
	switch (sp ? sp->type : POD_SECCOMP_UNSET) {
	case POD_SECCOMP_RUNTIME_DEFAULT:
		return SECCOMP_RUNTIME_DEFAULT;
	case POD_SECCOMP_UNCONFINED:
		return SECCOMP_UNCONFINED;
	case POD_SECCOMP_LOCALHOST:
		return SECCOMP_LOCALHOST;
	default:
		return SECCOMP_UNSET;
	}
}

static int container_ids(const struct pod_security_context *sc,
			 const struct pod_pod_security_context *psc, struct container_config *c,
			 struct berth_error **err)
{
	const struct pod_opt_int *uid = sc && sc->run_as_user.set ? &sc->run_as_user
					: psc			   ? &psc->run_as_user
								   : NULL;
	const struct pod_opt_int *gid = sc && sc->run_as_group.set ? &sc->run_as_group
					: psc			    ? &psc->run_as_group
								    : NULL;
	const struct pod_opt_bool *nonroot = sc && sc->run_as_non_root.set ? &sc->run_as_non_root
					     : psc ? &psc->run_as_non_root
						   : NULL;
	if (uid && uid->set) {
		c->has_run_as_user = true;
		c->run_as_user = uid->value;
	}
	if (gid && gid->set) {
		c->has_run_as_group = true;
		c->run_as_group = gid->value;
	}
	if (nonroot && nonroot->set && nonroot->value && (!uid || !uid->set || uid->value == 0))
		return berth_error_set(err, EINVAL,
				       "runAsNonRoot is set but runAsUser is %s (berth does not "
				       "look into the image's user)",
				       uid && uid->set ? "0" : "not given");
	if (psc && psc->n_supplemental_groups) {
		c->supplemental_groups = calloc(psc->n_supplemental_groups, sizeof(int64_t));
		if (!c->supplemental_groups)
			return oom(err);
		memcpy(c->supplemental_groups, psc->supplemental_groups,
		       psc->n_supplemental_groups * sizeof(int64_t));
		c->n_supplemental_groups = psc->n_supplemental_groups;
	}
	return 0;
}

static int container_security(const struct pod_container *pc,
			      const struct pod_pod_security_context *psc,
			      struct container_config *c, struct berth_error **err)
{
	const struct pod_security_context *sc = pc->security_context;
	int r = container_ids(sc, psc, c, err);
	if (r < 0)
		return r;
	const struct pod_seccomp_profile *sp =
		sc && sc->seccomp_profile ? sc->seccomp_profile : psc ? psc->seccomp_profile : NULL;
	c->seccomp = seccomp_of(sp);
	if (sp && sp->localhost_profile && !(c->seccomp_localhost_ref = strdup(sp->localhost_profile)))
		return oom(err);
	/* Kubernetes' default: allowPrivilegeEscalation true */
	c->no_new_privs = sc && sc->allow_privilege_escalation.set &&
			  !sc->allow_privilege_escalation.value;
	if (!sc)
		return 0;
	c->privileged = sc->privileged.set && sc->privileged.value;
	c->readonly_rootfs = sc->read_only_root_filesystem.set && sc->read_only_root_filesystem.value;
	if (sc->capabilities && ((r = strv_dup(sc->capabilities->add, &c->add_capabilities)) < 0 ||
				 (r = strv_dup(sc->capabilities->drop, &c->drop_capabilities)) < 0))
		return oom(err);
	return 0;
}

static int container_config_fill(const struct kpod *p, const struct kctr *k,
				 struct container_config *c, struct berth_error **err)
{
	const struct pod_container *pc = k->spec;
	const struct kubelet *kl = p->k;
	c->name = strdup(pc->name);
	c->attempt = kubelet_next_attempt(k);
	c->image = strdup(pc->image);
	if (!c->name || !c->image || strv_dup(pc->command, &c->command) < 0 ||
	    strv_dup(pc->args, &c->args) < 0 ||
	    (pc->working_dir && !(c->working_dir = strdup(pc->working_dir))))
		return oom(err);
	int r = kubelet_env_resolve(p->man, pc, p->pod_ip, kl->cfg->config_map_dir,
				    kl->cfg->secret_dir, &c->envs, err);
	if (r < 0 || (r = container_mounts(p, pc, c, err)) < 0)
		return r;
	container_resources(&pc->resources, c);
	return container_security(pc, p->man->spec.security_context, c, err);
}

int kubelet_container_config(const struct kpod *p, const struct kctr *k,
			     struct container_config *ret, struct berth_error **err)
{
	struct container_config c = { 0 };
	int r = container_config_fill(p, k, &c, err);
	if (r < 0) {
		container_config_clear(&c);
		return r;
	}
	*ret = c;
	return 0;
}

/* ---- what berth refuses ---- */

static int check_http(const struct pod_manifest *man, const char *where,
		      const struct pod_http_get *h, struct berth_error **err)
{
	if (h && h->scheme == POD_SCHEME_HTTPS)
		return berth_error_set(err, EINVAL,
				       "%s: %s.httpGet.scheme: HTTPS is not supported by berth's "
				       "probes and hooks",
				       man->file, where);
	return 0;
}

static int check_container(const struct pod_manifest *man, const char *kind, size_t i,
			   const struct pod_container *c, struct berth_error **err)
{
	char where[128];
	const struct {
		const char *name;
		const struct pod_probe *probe;
	} probes[] = { { "livenessProbe", c->liveness_probe },
		       { "readinessProbe", c->readiness_probe },
		       { "startupProbe", c->startup_probe } };
	for (size_t j = 0; j < ARRAY_SIZE(probes); j++) {
		snprintf(where, sizeof(where), "spec.%s[%zu].%s", kind, i, probes[j].name);
		int r = probes[j].probe ? check_http(man, where, probes[j].probe->http_get, err) : 0;
		if (r < 0)
			return r;
	}
	const struct pod_lifecycle *l = c->lifecycle;
	snprintf(where, sizeof(where), "spec.%s[%zu].lifecycle.postStart", kind, i);
	int r = l && l->post_start ? check_http(man, where, l->post_start->http_get, err) : 0;
	snprintf(where, sizeof(where), "spec.%s[%zu].lifecycle.preStop", kind, i);
	if (r == 0 && l && l->pre_stop)
		r = check_http(man, where, l->pre_stop->http_get, err);
	return r;
}

int kubelet_check_supported(const struct pod_manifest *man, struct berth_error **err)
{
	const struct pod_spec *s = &man->spec;
	if (s->security_context && s->security_context->n_sysctls)
		return berth_error_set(err, EINVAL,
				       "%s: spec.securityContext.sysctls: not supported by berth",
				       man->file);
	for (size_t i = 0; i < s->n_containers; i++) {
		int r = check_container(man, "containers", i, &s->containers[i], err);
		if (r < 0)
			return r;
	}
	return 0;
}
