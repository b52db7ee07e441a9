/* The CRI's messages -> struct pod_config / struct container_config (cri/cri-runtime.h): one
 * function per part of the message, extended as cri/request.h gains fields. Empty strings are
 * "not given" (proto3 has no presence for strings); what berth cannot do is refused by name. */
#include "cri/cri-runtime.h"
#include "base/cleanup.h"
#include "base/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

/* Map entries of a request as a JSON object (NULL when there are none). */
int cri_map_to_json(size_t n, void *const *entries, char **ret)
{
	*ret = NULL;
	if (n == 0)
		return 0;
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	for (size_t i = 0; i < n; i++) {
		const struct cri_map_entry *e = entries[i];
		bjson_writer_kv_string(w, e->key ? e->key : "", e->value ? e->value : "");
	}
	bjson_writer_end_object(w);
	return bjson_writer_finish(w, ret, NULL);
}


static int dup_opt(const char *s, char **dst)
{
	*dst = NULL;
	if (!s || !*s)
		return 0;
	return (*dst = strdup(s)) ? 0 : -ENOMEM;
}

int cri_strv_from_pb(size_t n, char *const *v, char ***ret)
{
	*ret = NULL;
	if (n == 0)
		return 0;
	char **out = calloc(n + 1, sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!(out[i] = strdup(v[i] ? v[i] : ""))) {
			strv_free(out);
			return -ENOMEM;
		}
	*ret = out;
	return 0;
}

static int ns_mode_from_pb(Runtime__V1__NamespaceMode m, const char *field, enum ns_mode *ret,
			   struct berth_error **err)
{
	switch (m) {
	case RUNTIME__V1__NAMESPACE_MODE__POD:
		*ret = NS_MODE_POD;
		return 0;
	case RUNTIME__V1__NAMESPACE_MODE__CONTAINER:
		*ret = NS_MODE_CONTAINER;
		return 0;
	case RUNTIME__V1__NAMESPACE_MODE__NODE:
		*ret = NS_MODE_NODE;
		return 0;
	case RUNTIME__V1__NAMESPACE_MODE__TARGET:
		*ret = NS_MODE_TARGET;
		return 0;
	default:
		return berth_error_set(err, EINVAL, "%s: unknown namespace mode %d", field, (int)m);
	}
}

/* namespace_options' network, pid and ipc modes (the pod's and a container's alike) */
static int ns_modes_from_pb(const Runtime__V1__NamespaceOption *ns, enum ns_mode *net,
			    enum ns_mode *pid, enum ns_mode *ipc, struct berth_error **err)
{
#define NS_FIELD "config.linux.security_context.namespace_options."
	int r;
	if ((r = ns_mode_from_pb(ns->network, NS_FIELD "network", net, err)) < 0 ||
	    (r = ns_mode_from_pb(ns->pid, NS_FIELD "pid", pid, err)) < 0 ||
	    (r = ns_mode_from_pb(ns->ipc, NS_FIELD "ipc", ipc, err)) < 0)
		return r;
#undef NS_FIELD
	return 0;
}

static int userns_refuse(const Runtime__V1__NamespaceOption *ns, const char *where,
			 struct berth_error **err)
{
	if (ns && ns->userns_options &&
	    ns->userns_options->mode != RUNTIME__V1__NAMESPACE_MODE__NODE)
		return berth_error_set(err, EINVAL,
				       "%s.namespace_options.userns_options: user namespaces for "
				       "pods are not supported yet (mode must be NODE)",
				       where);
	return 0;
}

static int pod_dns_from_pb(const Runtime__V1__DNSConfig *d, struct pod_config *c)
{
	int r;
	if (!d)
		return 0;
	c->has_dns = true;
	if ((r = cri_strv_from_pb(d->n_servers, d->servers, &c->dns_servers)) < 0 ||
	    (r = cri_strv_from_pb(d->n_searches, d->searches, &c->dns_searches)) < 0 ||
	    (r = cri_strv_from_pb(d->n_options, d->options, &c->dns_options)) < 0)
		return r;
	return 0;
}

static int pod_ports_from_pb(const Runtime__V1__PodSandboxConfig *pb, struct pod_config *c,
			     struct berth_error **err)
{
	static const char *const protos[] = { "TCP", "UDP", "SCTP" };
	if (pb->n_port_mappings == 0)
		return 0;
	if (!(c->ports = calloc(pb->n_port_mappings, sizeof(*c->ports))))
		return -ENOMEM;
	for (size_t i = 0; i < pb->n_port_mappings; i++, c->n_ports++) {
		const Runtime__V1__PortMapping *p = pb->port_mappings[i];
		struct port_mapping *o = &c->ports[i];
		if ((unsigned)p->protocol >= ARRAY_SIZE(protos))
			return berth_error_set(err, EINVAL,
					       "config.port_mappings[%zu].protocol: unknown %d", i,
					       (int)p->protocol);
		if (p->container_port < 0 || p->container_port > 65535 || p->host_port < 0 ||
		    p->host_port > 65535)
			return berth_error_set(err, EINVAL,
					       "config.port_mappings[%zu]: port out of range", i);
		o->container_port = (uint16_t)p->container_port;
		o->host_port = (uint16_t)p->host_port;
		if (!(o->protocol = strdup(protos[p->protocol])) ||
		    dup_opt(p->host_ip, &o->host_ip) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int pod_linux_from_pb(const Runtime__V1__LinuxPodSandboxConfig *l, struct pod_config *c,
			     struct berth_error **err)
{
	int r;
	if (!l)
		return 0;
	if (l->n_sysctls > 0)
		return berth_error_set(err, EINVAL,
				       "config.linux.sysctls: pod sysctls are not supported yet "
				       "(%s, ...)",
				       l->sysctls[0]->key ? l->sysctls[0]->key : "");
	if ((r = dup_opt(l->cgroup_parent, &c->cgroup_parent)) < 0)
		return r;
	const Runtime__V1__LinuxSandboxSecurityContext *sc = l->security_context;
	if (!sc)
		return 0;
	c->privileged = sc->privileged;
	const Runtime__V1__NamespaceOption *ns = sc->namespace_options;
	const char *where = "config.linux.security_context";
	if (nonempty(sc->seccomp_profile_path))
		return berth_error_set(err, EINVAL,
				       "%s.seccomp_profile_path: deprecated, not supported: use seccomp",
				       where);
	if ((r = userns_refuse(ns, where, err)) < 0 || !ns)
		return r;
	return ns_modes_from_pb(ns, &c->net_mode, &c->pid_mode, &c->ipc_mode, err);
}

int cri_pod_config_from_pb(const Runtime__V1__PodSandboxConfig *pb, struct pod_config *ret,
			   struct berth_error **err)
{
	if (!pb)
		return berth_error_set(err, EINVAL, "config: required");
	const Runtime__V1__PodSandboxMetadata *md = pb->metadata;
	if (!md || !nonempty(md->name) || !nonempty(md->namespace_) || !nonempty(md->uid))
		return berth_error_set(err, EINVAL,
				       "config.metadata: name, namespace and uid are required");
	struct pod_config c = { .attempt = md->attempt };
	int r;
	if ((r = dup_opt(md->name, &c.name)) < 0 || (r = dup_opt(md->namespace_, &c.namespace_)) < 0 ||
	    (r = dup_opt(md->uid, &c.uid)) < 0 || (r = dup_opt(pb->hostname, &c.hostname)) < 0 ||
	    (r = dup_opt(pb->log_directory, &c.log_directory)) < 0 ||
	    (r = pod_dns_from_pb(pb->dns_config, &c)) < 0 ||
	    (r = pod_ports_from_pb(pb, &c, err)) < 0 ||
	    (r = cri_map_to_json(pb->n_labels, (void *const *)pb->labels, &c.labels_json)) < 0 ||
	    (r = cri_map_to_json(pb->n_annotations, (void *const *)pb->annotations,
			     &c.annotations_json)) < 0 ||
	    (r = pod_linux_from_pb(pb->linux, &c, err)) < 0) {
		pod_config_clear(&c);
		return r;
	}
	*ret = c;
	return 0;
}

static int envs_from_pb(size_t n, Runtime__V1__KeyValue *const *v, char ***ret)
{
	*ret = NULL;
	if (n == 0)
		return 0;
	char **out = calloc(n + 1, sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (asprintf(&out[i], "%s=%s", v[i]->key ? v[i]->key : "",
			     v[i]->value ? v[i]->value : "") < 0) {
			out[i] = NULL;
			strv_free(out);
			return -ENOMEM;
		}
	*ret = out;
	return 0;
}

static int mount_from_pb(const Runtime__V1__Mount *m, size_t i, struct bind_mount *o,
			 struct berth_error **err)
{
	if (m->selinux_relabel)
		return berth_error_set(err, EINVAL,
				       "config.mounts[%zu].selinux_relabel: SELinux relabelling is "
				       "not supported (this node has no SELinux support in berth)",
				       i);
	if (m->n_uidmappings || m->n_gidmappings || m->recursive_read_only ||
	    (m->image && nonempty(m->image->image)))
		return berth_error_set(err, EINVAL,
				       "config.mounts[%zu]: id-mapped, recursive read-only and image "
				       "mounts are not supported yet",
				       i);
	switch (m->propagation) {
	case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE:
		o->propagation = PROPAGATION_PRIVATE;
		break;
	case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER:
		o->propagation = PROPAGATION_HOST_TO_CONTAINER;
		break;
	case RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL:
		o->propagation = PROPAGATION_BIDIRECTIONAL;
		break;
	default:
		return berth_error_set(err, EINVAL, "config.mounts[%zu].propagation: unknown %d", i,
				       (int)m->propagation);
	}
	o->readonly = m->readonly;
	if (dup_opt(m->container_path, &o->container_path) < 0 ||
	    dup_opt(m->host_path, &o->host_path) < 0)
		return -ENOMEM;
	return 0;
}

static int mounts_from_pb(const Runtime__V1__ContainerConfig *pb, struct container_config *c,
			  struct berth_error **err)
{
	if (pb->n_mounts == 0)
		return 0;
	if (!(c->mounts = calloc(pb->n_mounts, sizeof(*c->mounts))))
		return -ENOMEM;
	for (size_t i = 0; i < pb->n_mounts; i++, c->n_mounts++) {
		int r = mount_from_pb(pb->mounts[i], i, &c->mounts[i], err);
		if (r < 0) {
			c->n_mounts++; /* its strings are freed with the rest */
			return r;
		}
	}
	return 0;
}

static int devices_from_pb(const Runtime__V1__ContainerConfig *pb, struct container_config *c)
{
	if (pb->n_devices == 0)
		return 0;
	if (!(c->devices = calloc(pb->n_devices, sizeof(*c->devices))))
		return -ENOMEM;
	for (size_t i = 0; i < pb->n_devices; i++, c->n_devices++) {
		const Runtime__V1__Device *d = pb->devices[i];
		struct device_mapping *o = &c->devices[i];
		if (dup_opt(d->container_path, &o->container_path) < 0 ||
		    dup_opt(d->host_path, &o->host_path) < 0 ||
		    dup_opt(d->permissions, &o->permissions) < 0) {
			c->n_devices++;
			return -ENOMEM;
		}
	}
	return 0;
}

/* linux.resources */
static int resources_from_pb(const Runtime__V1__LinuxContainerResources *res,
			     struct container_config *c)
{
	if (!res)
		return 0;
	c->cpu_period = res->cpu_period;
	c->cpu_quota = res->cpu_quota;
	c->cpu_shares = res->cpu_shares;
	c->memory_limit_in_bytes = res->memory_limit_in_bytes;
	c->memory_swap_limit_in_bytes = res->memory_swap_limit_in_bytes;
	c->oom_score_adj = res->oom_score_adj;
	int r;
	if ((r = dup_opt(res->cpuset_cpus, &c->cpuset_cpus)) < 0 ||
	    (r = dup_opt(res->cpuset_mems, &c->cpuset_mems)) < 0 ||
	    (r = cri_map_to_json(res->n_unified, (void *const *)res->unified, &c->unified_json)) < 0)
		return r;
	if (res->n_hugepage_limits == 0)
		return 0;
	c->hugepage_limits = calloc(res->n_hugepage_limits, sizeof(*c->hugepage_limits));
	if (!c->hugepage_limits)
		return -ENOMEM;
	for (size_t i = 0; i < res->n_hugepage_limits; i++, c->n_hugepage_limits++) {
		c->hugepage_limits[i].limit = res->hugepage_limits[i]->limit;
		if (dup_opt(res->hugepage_limits[i]->page_size, &c->hugepage_limits[i].page_size) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int seccomp_from_pb(const Runtime__V1__SecurityProfile *p, struct container_config *c,
			   struct berth_error **err)
{
	if (!p)
		return 0;
	switch (p->profile_type) {
	case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault:
		c->seccomp = SECCOMP_RUNTIME_DEFAULT;
		return 0;
	case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined:
		c->seccomp = SECCOMP_UNCONFINED;
		return 0;
	case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost:
		c->seccomp = SECCOMP_LOCALHOST;
		return dup_opt(p->localhost_ref, &c->seccomp_localhost_ref);
	default:
		return berth_error_set(err, EINVAL,
				       "config.linux.security_context.seccomp.profile_type: "
				       "unknown %d",
				       (int)p->profile_type);
	}
}

static int security_from_pb(const Runtime__V1__LinuxContainerSecurityContext *sc,
			    struct container_config *c, struct berth_error **err)
{
	int r;
	if (!sc)
		return 0;
	const char *where = "config.linux.security_context";
	if ((r = userns_refuse(sc->namespace_options, where, err)) < 0)
		return r;
	/* the fields older kubelets sent before SecurityProfile: never taken silently */
	if (nonempty(sc->seccomp_profile_path))
		return berth_error_set(err, EINVAL,
				       "%s.seccomp_profile_path: deprecated, not supported: use seccomp",
				       where);
	if (nonempty(sc->apparmor_profile))
		return berth_error_set(err, EINVAL,
				       "%s.apparmor_profile: deprecated, not supported: use apparmor",
				       where);
	if (sc->selinux_options &&
	    (nonempty(sc->selinux_options->type) || nonempty(sc->selinux_options->level) ||
	     nonempty(sc->selinux_options->user) || nonempty(sc->selinux_options->role)))
		return berth_error_set(err, EINVAL, "%s.selinux_options: not supported", where);
	/* berth applies no AppArmor profile: RuntimeDefault runs as on a host without AppArmor
	 * (containerd's behaviour there); a named profile cannot be honoured */
	if (sc->apparmor &&
	    sc->apparmor->profile_type == RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost)
		return berth_error_set(err, EINVAL,
				       "%s.apparmor: AppArmor profiles (%s) are not supported", where,
				       sc->apparmor->localhost_ref ? sc->apparmor->localhost_ref : "");
	if (sc->capabilities && sc->capabilities->n_add_ambient_capabilities > 0)
		return berth_error_set(err, EINVAL,
				       "%s.capabilities.add_ambient_capabilities: not supported yet",
				       where);
	c->privileged = sc->privileged;
	c->readonly_rootfs = sc->readonly_rootfs;
	c->no_new_privs = sc->no_new_privs;
	c->has_run_as_user = sc->run_as_user != NULL;
	c->run_as_user = sc->run_as_user ? sc->run_as_user->value : 0;
	c->has_run_as_group = sc->run_as_group != NULL;
	c->run_as_group = sc->run_as_group ? sc->run_as_group->value : 0;
	c->supplemental_groups_strict =
		sc->supplemental_groups_policy ==
		RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
	if (sc->n_supplemental_groups) {
		size_t n = sc->n_supplemental_groups;
		if (!(c->supplemental_groups = calloc(n, sizeof(int64_t))))
			return -ENOMEM;
		memcpy(c->supplemental_groups, sc->supplemental_groups, n * sizeof(int64_t));
		c->n_supplemental_groups = n;
	}
	if ((r = dup_opt(sc->run_as_username, &c->run_as_username)) < 0 ||
	    (sc->capabilities &&
	     ((r = cri_strv_from_pb(sc->capabilities->n_add_capabilities,
				sc->capabilities->add_capabilities, &c->add_capabilities)) < 0 ||
	      (r = cri_strv_from_pb(sc->capabilities->n_drop_capabilities,
				sc->capabilities->drop_capabilities, &c->drop_capabilities)) < 0)) ||
	    (r = cri_strv_from_pb(sc->n_masked_paths, sc->masked_paths, &c->masked_paths)) < 0 ||
	    (r = cri_strv_from_pb(sc->n_readonly_paths, sc->readonly_paths, &c->readonly_paths)) < 0 ||
	    (r = seccomp_from_pb(sc->seccomp, c, err)) < 0)
		return r;
	const Runtime__V1__NamespaceOption *ns = sc->namespace_options;
	if (!ns)
		return 0;
	c->has_ns_options = true;
	if ((r = ns_modes_from_pb(ns, &c->net_mode, &c->pid_mode, &c->ipc_mode, err)) < 0)
		return r;
	return dup_opt(ns->target_id, &c->target_id);
}

static int container_fields_from_pb(const Runtime__V1__ContainerConfig *pb,
				    struct container_config *c, struct berth_error **err)
{
	int r;
	if (pb->n_cdi_devices > 0)
		return berth_error_set(err, EINVAL, "config.cdi_devices: CDI is not supported");
	if ((r = dup_opt(pb->metadata->name, &c->name)) < 0 ||
	    (r = dup_opt(pb->image->image, &c->image)) < 0 ||
	    (r = cri_strv_from_pb(pb->n_command, pb->command, &c->command)) < 0 ||
	    (r = cri_strv_from_pb(pb->n_args, pb->args, &c->args)) < 0 ||
	    (r = dup_opt(pb->working_dir, &c->working_dir)) < 0 ||
	    (r = envs_from_pb(pb->n_envs, pb->envs, &c->envs)) < 0 ||
	    (r = mounts_from_pb(pb, c, err)) < 0 || (r = devices_from_pb(pb, c)) < 0 ||
	    (r = cri_map_to_json(pb->n_labels, (void *const *)pb->labels, &c->labels_json)) < 0 ||
	    (r = cri_map_to_json(pb->n_annotations, (void *const *)pb->annotations,
			     &c->annotations_json)) < 0 ||
	    (r = dup_opt(pb->log_path, &c->log_path)) < 0)
		return r;
	if (!pb->linux)
		return 0;
	if ((r = resources_from_pb(pb->linux->resources, c)) < 0 ||
	    (r = security_from_pb(pb->linux->security_context, c, err)) < 0)
		return r;
	return 0;
}

int cri_container_config_from_pb(const Runtime__V1__ContainerConfig *pb,
				 struct container_config *ret, struct berth_error **err)
{
	if (!pb)
		return berth_error_set(err, EINVAL, "config: required");
	if (!pb->metadata || !nonempty(pb->metadata->name))
		return berth_error_set(err, EINVAL, "config.metadata.name: required");
	if (!pb->image || !nonempty(pb->image->image))
		return berth_error_set(err, EINVAL, "config.image.image: required");
	struct container_config c = {
		.attempt = pb->metadata->attempt,
		.tty = pb->tty,
		.stdin_open = pb->stdin,
		.stdin_once = pb->stdin_once,
	};
	int r = container_fields_from_pb(pb, &c, err);
	if (r < 0) {
		container_config_clear(&c);
		return r;
	}
	*ret = c;
	return 0;
}
