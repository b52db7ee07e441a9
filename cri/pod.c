/* Pods: a cgroup, a netns sandbox (pinned namespaces, network, /etc files) and a row.
 *
 * Run order, so that a daemon killed at any point leaves only what recovery finds and undoes:
 * the cgroup, then the sandbox, then the row (recovery removes sandboxes and berthd's pod
 * cgroups that have no row). Stop kills the pod's containers and removes the sandbox; remove
 * also removes the containers, the cgroup and, last, the row. */
#include "cri/manager-internal.h"
#include "base/cleanup.h"
#include "base/json.h"
#include "base/log.h"
#include "cgroup/cgroup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- cgroups ---- */

static int systemd_slice_path(const char *slice, char **ret, struct berth_error **err)
{
	_cleanup_free_ char *spec = NULL, *scope = NULL;
	if (asprintf(&spec, "%s:berth:x", slice) < 0)
		return -ENOMEM;
	int r = cgroup_path_from_systemd(spec, &scope, err);
	if (r < 0)
		return r;
	char *slash = strrchr(scope, '/');
	if (slash)
		*slash = '\0';
	*ret = TAKE_PTR(scope);
	return 0;
}

int pod_cgroup_paths(struct manager *m, struct mpod *p, struct berth_error **err)
{
	const char *parent = m->cfg->cgroup_parent ? m->cfg->cgroup_parent : "berth";
	p->own_cgroup = !p->cfg.cgroup_parent;
	if (!m->have_cgroup2)
		return 0;
	if (m->cfg->systemd_cgroup) {
		if (p->cfg.cgroup_parent) {
			p->cgroup_slice = strdup(p->cfg.cgroup_parent);
		} else {
			size_t n = strlen(parent);
			if (n > 6 && strcmp(parent + n - 6, ".slice") == 0)
				n -= 6;
			if (asprintf(&p->cgroup_slice, "%.*s-pod%s.slice", (int)n, parent,
				     p->rec.id) < 0)
				p->cgroup_slice = NULL;
		}
		if (!p->cgroup_slice)
			return -ENOMEM;
		int r = systemd_slice_path(p->cgroup_slice, &p->cgroup, err);
		return r < 0 ? berth_error_wrap(err, "the pod's cgroup slice") : 0;
	}
	/* kubelet's systemd driver names a slice ("kubepods-besteffort-pod<uid>.slice"): the
	 * cgroupfs path systemd would give it, without D-Bus */
	size_t plen = p->cfg.cgroup_parent ? strlen(p->cfg.cgroup_parent) : 0;
	if (plen > 6 && !strchr(p->cfg.cgroup_parent, '/') &&
	    strcmp(p->cfg.cgroup_parent + plen - 6, ".slice") == 0) {
		int r = systemd_slice_path(p->cfg.cgroup_parent, &p->cgroup, err);
		return r < 0 ? berth_error_wrap(err, "config.linux.cgroup_parent") : 0;
	}
	int r = p->cfg.cgroup_parent
			? asprintf(&p->cgroup, "%s%s", p->cfg.cgroup_parent[0] == '/' ? "" : "/",
				   p->cfg.cgroup_parent)
			: asprintf(&p->cgroup, "%s%s/%s", parent[0] == '/' ? "" : "/", parent,
				   p->rec.id);
	if (r < 0) {
		p->cgroup = NULL;
		return -ENOMEM;
	}
	return 0;
}

int pod_container_cgroups_path(struct manager *m, const struct mpod *p, const char *ctr_id,
			       char **ret)
{
	*ret = NULL;
	if (!p->cgroup)
		return 0;
	int r = p->cgroup_slice ? asprintf(ret, "%s:berth:%s", p->cgroup_slice, ctr_id)
				: asprintf(ret, "%s/%s", p->cgroup, ctr_id);
	return r < 0 ? -ENOMEM : 0;
}

int pod_cgroup_remove(struct manager *m, struct mpod *p, struct berth_error **err)
{
	if (!p->own_cgroup || !p->cgroup)
		return 0;
	struct cgroup *cg = NULL;
	_cleanup_error_ struct berth_error *e = NULL;
	int r = cgroup_open(p->cgroup, &cg, &e);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		berth_error_move(err, &e);
		return berth_error_wrap(err, "pod %s: its cgroup", p->rec.id);
	}
	r = cgroup_remove(cg, err);
	cgroup_free(cg);
	return r < 0 ? berth_error_wrap(err, "pod %s: removing its cgroup %s", p->rec.id, p->cgroup)
		     : 0;
}

/* ---- run ---- */

static int network_json(const struct pod_sandbox_status *st, char **ret)
{
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "mode", st->mode ? st->mode : "");
	if (st->ip4)
		bjson_writer_kv_string(w, "ip4", st->ip4);
	if (st->ip6)
		bjson_writer_kv_string(w, "ip6", st->ip6);
	if (st->netns_path)
		bjson_writer_kv_string(w, "netns", st->netns_path);
	bjson_writer_end_object(w);
	return bjson_writer_finish(w, ret, NULL);
}

static enum pod_protocol protocol_of(const char *s)
{
	return strcmp(s, "UDP") == 0	? POD_PROTO_UDP
	       : strcmp(s, "SCTP") == 0 ? POD_PROTO_SCTP
					: POD_PROTO_TCP;
}

static int create_sandbox(struct manager *m, struct mpod *p, struct pod_sandbox_status **ret,
			  struct berth_error **err)
{
	const struct pod_config *c = &p->cfg;
	_cleanup_free_ struct pod_port *ports = calloc(c->n_ports + 1, sizeof(*ports));
	if (!ports)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_ports; i++)
		ports[i] = (struct pod_port){ .host_port = c->ports[i].host_port,
					      .container_port = c->ports[i].container_port,
					      .protocol = protocol_of(c->ports[i].protocol),
					      .host_ip = c->ports[i].host_ip };
	struct pod_dns dns = { (const char *const *)c->dns_servers,
			       (const char *const *)c->dns_searches,
			       (const char *const *)c->dns_options };
	struct pod_spec spec = {
		.id = p->rec.id,
		.name = c->name,
		.namespace_ = c->namespace_,
		.hostname = c->hostname,
		.host_network = c->net_mode == NS_MODE_NODE,
		.share_pid = c->pid_mode == NS_MODE_POD,
		.ports = ports,
		.n_ports = c->n_ports,
		.dns = c->has_dns ? &dns : NULL,
	};
	return pod_sandbox_create(&m->net, &spec, ret, err);
}

static int make_cgroup(struct manager *m, struct mpod *p, struct berth_error **err)
{
	if (!p->own_cgroup || !p->cgroup)
		return 0;
	struct cgroup *cg = NULL;
	int r = cgroup_create(p->cgroup, &cg, err);
	cgroup_free(cg);
	return r < 0 ? berth_error_wrap(err, "pod cgroup %s", p->cgroup) : 0;
}

static int run_steps(struct manager *m, struct mpod *p, struct berth_error **err)
{
	struct pod_sandbox_status *st = NULL;
	int r;
	if ((r = pod_cgroup_paths(m, p, err)) < 0 || (r = make_cgroup(m, p, err)) < 0)
		return r;
	if ((r = create_sandbox(m, p, &st, err)) < 0)
		goto undo_cgroup;
	mgr_crash_point(m, "pod-sandbox");
	r = network_json(st, &p->rec.network_json);
	pod_sandbox_status_free(st);
	if (r < 0 || (r = db_pod_insert(m->db, &p->rec, err)) < 0)
		goto undo_sandbox;
	return 0;
undo_sandbox:
	(void)pod_sandbox_remove(&m->net, p->rec.id, NULL); /* the first error is the one told */
undo_cgroup:
	(void)pod_cgroup_remove(m, p, NULL);
	return r;
}

static bool same_pod_name(const struct mpod *a, const struct pod_config *c)
{
	return strcmp(a->cfg.name, c->name) == 0 && strcmp(a->cfg.namespace_, c->namespace_) == 0 &&
	       strcmp(a->cfg.uid, c->uid) == 0 && a->cfg.attempt == c->attempt;
}

/* The new pod, not yet in the table: its record and its own copy of the request. */
static int pod_prepare(struct manager *m, const struct pod_config *c, struct mpod **ret,
		       struct berth_error **err)
{
	char id[MANAGER_ID_LEN + 1];
	int r = mgr_new_id(id);
	if (r < 0)
		return berth_error_setsys(err, -r, "a new pod id");
	struct mpod *p = mpod_new(id);
	if (!p)
		return -ENOMEM;
	struct db_pod *rec = &p->rec;
	/* the canonical JSON read back is both the stored request and the pod's own copy */
	if ((r = pod_config_to_json(c, &rec->config_json)) < 0 ||
	    (r = pod_config_from_text(rec->config_json, &p->cfg, err)) < 0 ||
	    !(rec->name = strdup(c->name)) || !(rec->namespace = strdup(c->namespace_)) ||
	    !(rec->uid = strdup(c->uid)) || !(rec->state = strdup("ready")) ||
	    (c->labels_json && !(rec->labels_json = strdup(c->labels_json))) ||
	    (c->annotations_json && !(rec->annotations_json = strdup(c->annotations_json)))) {
		mpod_unref(p);
		return r < 0 ? r : -ENOMEM;
	}
	rec->attempt = c->attempt;
	rec->created_ns = mgr_now_ns();
	*ret = p;
	return 0;
}

/* Reserves the pod's name in the table (as "creating", invisible to status and list). */
static int pod_reserve(struct manager *m, struct mpod *p, struct berth_error **err)
{
	pthread_mutex_lock(&m->lock);
	int r = 0;
	for (size_t i = 0; r == 0 && i < m->n_pods; i++)
		if (same_pod_name(m->pods[i], &p->cfg))
			r = berth_error_set(
				err, EEXIST,
				"pod %s in namespace %s (uid %s, attempt %u) already exists: %s",
				p->cfg.name, p->cfg.namespace_, p->cfg.uid, p->cfg.attempt,
				m->pods[i]->rec.id);
	if (r == 0) {
		p->creating = true;
		r = mgr_add_pod(m, p);
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

int manager_pod_run(struct manager *m, const struct pod_config *c, char **ret_id,
		    struct berth_error **err)
{
	const char *net = m->cfg->network ? m->cfg->network : "bridge";
	if (strcmp(net, "none") == 0 && c->net_mode != NS_MODE_NODE)
		return berth_error_set(
			err, EOPNOTSUPP,
			"config.linux.security_context.namespace_options.network: berthd "
			"runs with network = none: only pods with the node's network "
			"(NODE) can run");
	struct mpod *p = NULL;
	_cleanup_free_ char *id = NULL;
	int r = pod_prepare(m, c, &p, err);
	if (r < 0)
		return r;
	if ((r = pod_reserve(m, p, err)) < 0) {
		mpod_unref(p);
		return r;
	}
	r = run_steps(m, p, err);
	pthread_mutex_lock(&m->lock);
	if (r < 0)
		mgr_drop_pod(m, p);
	else
		p->creating = false;
	pthread_mutex_unlock(&m->lock);
	if (r == 0 && !(id = strdup(p->rec.id)))
		r = -ENOMEM; /* the pod runs; only its id could not be told */
	if (r == 0)
		log_info("pod %s (%s/%s) runs", p->rec.id, c->namespace_, c->name);
	mpod_unref(p);
	if (r == 0)
		*ret_id = TAKE_PTR(id);
	return r;
}

/* ---- stop, remove ---- */

static int first_error(int r, int r2)
{
	return r < 0 ? r : r2;
}

/* Runs fn on each of the pod's containers, with its op lock held. Every container is tried; the
 * first error is returned, or with force only logged. */
static int each_container(struct manager *m, struct mpod *p, bool force,
			  int (*fn)(struct manager *, struct mctr *, struct berth_error **),
			  struct berth_error **err)
{
	struct mctr **v = NULL;
	size_t n = 0;
	pthread_mutex_lock(&m->lock);
	int r = mgr_pod_containers(m, p->rec.id, &v, &n);
	pthread_mutex_unlock(&m->lock);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		_cleanup_error_ struct berth_error *e = NULL;
		pthread_mutex_lock(&v[i]->op);
		int k = v[i]->removed ? 0 : fn(m, v[i], &e);
		pthread_mutex_unlock(&v[i]->op);
		if (k < 0 && force)
			log_warn("pod %s: %s (removed all the same)", p->rec.id, e ? e->msg : "?");
		else if (k < 0 && r == 0)
			r = berth_error_move(err, &e);
		mctr_unref(v[i]);
	}
	free(v);
	return r;
}

/* CRI: the pod's containers are killed, not given a grace period */
static int kill_container(struct manager *m, struct mctr *c, struct berth_error **err)
{
	return ctr_stop_locked(m, c, 0, err);
}

/* force (for remove): a container that cannot be stopped is logged, not an error; removing it
 * kills whatever is left of it all the same. */
static int stop_locked(struct manager *m, struct mpod *p, bool force, struct berth_error **err)
{
	int r = each_container(m, p, force, kill_container, err);
	r = first_error(r, pod_sandbox_remove(&m->net, p->rec.id, err));
	if (r < 0)
		return berth_error_wrap(err, "stop pod %s", p->rec.id);
	pod_set_notready(m, p);
	return 0;
}

void pod_set_notready(struct manager *m, struct mpod *p)
{
	pthread_mutex_lock(&m->lock);
	char *s = strcmp(p->rec.state, "notready") != 0 ? strdup("notready") : NULL;
	if (s) {
		free(p->rec.state);
		p->rec.state = s;
		_cleanup_error_ struct berth_error *e = NULL;
		if (db_pod_set_state(m->db, p->rec.id, "notready", &e) < 0)
			log_error("pod %s: recording state notready: %s", p->rec.id,
				  e ? e->msg : "");
	}
	pthread_mutex_unlock(&m->lock);
}

int manager_pod_stop(struct manager *m, const char *id, struct berth_error **err)
{
	struct mpod *p = NULL;
	int r = mpod_get(m, id, &p, err);
	if (r < 0)
		return r;
	pthread_rwlock_wrlock(&p->op);
	if (!p->removed)
		r = stop_locked(m, p, false, err);
	pthread_rwlock_unlock(&p->op);
	if (r == 0)
		log_info("pod %s stopped", id);
	mpod_unref(p);
	return r;
}

static int remove_locked(struct manager *m, struct mpod *p, struct berth_error **err)
{
	int r;
	if ((r = stop_locked(m, p, true, err)) < 0 ||
	    (r = each_container(m, p, false, ctr_remove_locked, err)) < 0 ||
	    (r = pod_cgroup_remove(m, p, err)) < 0)
		return r;
	pthread_mutex_lock(&m->lock);
	r = db_pod_delete(m->db, p->rec.id, err);
	if (r == 0 || r == -ENOENT) {
		mgr_drop_pod(m, p);
		r = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

int manager_pod_remove(struct manager *m, const char *id, struct berth_error **err)
{
	struct mpod *p = NULL;
	if (mpod_get(m, id, &p, NULL) < 0)
		return 0; /* removed already, or never was: CRI's RemovePodSandbox is idempotent */
	pthread_rwlock_wrlock(&p->op);
	int r = p->removed ? 0 : remove_locked(m, p, err);
	pthread_rwlock_unlock(&p->op);
	if (r == 0)
		log_info("pod %s removed", id);
	else
		berth_error_wrap(err, "remove pod %s", id);
	mpod_unref(p);
	return r;
}

/* ---- status, list ---- */

static int copy_pod(const struct mpod *p, struct manager_pod *ret)
{
	const struct db_pod *s = &p->rec;
	struct manager_pod out = { .rec = *s };
	struct db_pod *d = &out.rec;
	d->id = strdup(s->id);
	d->name = strdup(s->name);
	d->namespace = strdup(s->namespace);
	d->uid = strdup(s->uid);
	d->state = strdup(s->state);
	d->config_json = s->config_json ? strdup(s->config_json) : NULL;
	d->labels_json = s->labels_json ? strdup(s->labels_json) : NULL;
	d->annotations_json = s->annotations_json ? strdup(s->annotations_json) : NULL;
	d->network_json = s->network_json ? strdup(s->network_json) : NULL;
	_cleanup_(bjson_freep) struct json *net = NULL;
	bool ready = strcmp(s->state, "ready") == 0;
	if (ready && s->network_json && bjson_parse(s->network_json, &net, NULL) == 0) {
		const char *ip4 = bjson_string(bjson_object_get(net, "ip4"));
		const char *ip6 = bjson_string(bjson_object_get(net, "ip6"));
		const char *ns = bjson_string(bjson_object_get(net, "netns"));
		out.ip4 = ip4 ? strdup(ip4) : NULL;
		out.ip6 = ip6 ? strdup(ip6) : NULL;
		out.netns_path = ns ? strdup(ns) : NULL;
	}
	if (!d->id || !d->name || !d->namespace || !d->uid || !d->state) {
		manager_pod_clear(&out);
		return -ENOMEM;
	}
	*ret = out;
	return 0;
}

int manager_pod_status(struct manager *m, const char *id, struct manager_pod *ret,
		       struct berth_error **err)
{
	pthread_mutex_lock(&m->lock);
	struct mpod *p = mpod_find(m, id, false);
	int r = p ? copy_pod(p, ret)
		  : berth_error_set(err, ENOENT, "pod %s not found", id ? id : "");
	pthread_mutex_unlock(&m->lock);
	return r;
}

int manager_pod_list(struct manager *m, struct manager_pod **ret, size_t *ret_n,
		     struct berth_error **err)
{
	pthread_mutex_lock(&m->lock);
	struct manager_pod *v = calloc(m->n_pods + 1, sizeof(*v));
	size_t n = 0;
	int r = v ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < m->n_pods; i++)
		if (!m->pods[i]->creating && (r = copy_pod(m->pods[i], &v[n])) == 0)
			n++;
	pthread_mutex_unlock(&m->lock);
	if (r < 0) {
		manager_pod_list_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

void manager_pod_clear(struct manager_pod *p)
{
	db_pod_clear(&p->rec);
	free(p->ip4);
	free(p->ip6);
	free(p->netns_path);
	*p = (struct manager_pod){ 0 };
}

void manager_pod_list_free(struct manager_pod *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		manager_pod_clear(&v[i]);
	free(v);
}

/* ---- stats, pod CIDR ---- */

int manager_pod_stats(struct manager *m, const char *id, struct cgroup_stats *ret,
		      struct berth_error **err)
{
	struct mpod *p = NULL;
	int r = mpod_get(m, id, &p, err);
	if (r < 0)
		return r;
	struct cgroup *cg = NULL;
	if (!p->cgroup)
		r = berth_error_set(err, ENOENT, "pod %s has no cgroup (no cgroup2 hierarchy)", id);
	else if ((r = cgroup_open(p->cgroup, &cg, err)) == 0)
		r = cgroup_stats_read(cg, ret, err);
	cgroup_free(cg);
	mpod_unref(p);
	return r < 0 ? berth_error_wrap(err, "stats of pod %s", id) : 0;
}

/* One "ADDR/PREFIX" of the given family; its text is what netns gets. */
static bool cidr_of_family(const char *s, size_t len, int family)
{
	char buf[INET6_ADDRSTRLEN + 8];
	unsigned char addr[sizeof(struct in6_addr)];
	const char *slash = memchr(s, '/', len);
	if (!slash || len >= sizeof(buf) || (size_t)(slash - s) >= INET6_ADDRSTRLEN)
		return false;
	snprintf(buf, sizeof(buf), "%.*s", (int)(slash - s), s);
	char *end = NULL;
	long prefix = strtol(slash + 1, &end, 10);
	return inet_pton(family, buf, addr) == 1 && end == s + len && slash[1] != '\0' &&
	       prefix >= 0 && prefix <= (family == AF_INET ? 32 : 128);
}

/* kubelet gives dual-stack CIDRs comma-separated: "10.1.0.0/24,fd00:1::/64". */
static int split_cidrs(const char *cidr, char **ret4, char **ret6, struct berth_error **err)
{
	const char *s = cidr;
	while (*s) {
		size_t len = strcspn(s, ",");
		bool v4 = cidr_of_family(s, len, AF_INET);
		char **dst = v4 ? ret4 : ret6;
		if ((!v4 && !cidr_of_family(s, len, AF_INET6)) || *dst)
			return berth_error_set(err, EINVAL,
					       "runtime_config.network_config.pod_cidr: \"%s\": "
					       "not one IPv4 and/or one IPv6 CIDR",
					       cidr);
		if (!(*dst = strndup(s, len)))
			return -ENOMEM;
		s += len + (s[len] == ',');
	}
	return 0;
}

static bool same_subnet(const char *a, const char *b)
{
	return (!a || !*a) ? (!b || !*b) : (b && strcmp(a, b) == 0);
}

int manager_set_pod_cidr(struct manager *m, const char *cidr, struct berth_error **err)
{
	_cleanup_free_ char *v4 = NULL, *v6 = NULL;
	if (!cidr || !*cidr)
		return 0;
	int r = split_cidrs(cidr, &v4, &v6, err);
	if (r < 0)
		return r;
	if (m->net.cni_conf_dir) {
		log_info("pod CIDR %s not applied: in CNI mode the CNI network config decides "
			 "pods' addresses", cidr);
		return 0;
	}
	pthread_mutex_lock(&m->lock);
	bool same = same_subnet(m->net.subnet4, v4) && same_subnet(m->net.subnet6, v6);
	/* kubelet repeats the node's CIDR: the same one changes nothing */
	if (!same && m->n_pods > 0) {
		r = berth_error_set(err, EBUSY,
				    "runtime_config.network_config.pod_cidr: %s: pods exist on "
				    "subnet %s; a new pod CIDR applies only when none does",
				    cidr, m->net.subnet4 ? m->net.subnet4 : "");
	} else if (!same) {
		/* no pod exists, so no request reads m->net's subnets now: they can change */
		free(m->own_subnet4);
		free(m->own_subnet6);
		m->own_subnet4 = TAKE_PTR(v4);
		m->own_subnet6 = TAKE_PTR(v6);
		m->net.subnet4 = m->own_subnet4 ? m->own_subnet4 : "";
		m->net.subnet6 = m->own_subnet6;
	}
	pthread_mutex_unlock(&m->lock);
	if (r == 0 && !same)
		log_info("pod CIDR %s: pods run from now on get their addresses from it (until "
			 "berthd restarts with berthd.conf's subnet)", cidr);
	return r;
}

char *manager_pod_cidr(struct manager *m)
{
	pthread_mutex_lock(&m->lock);
	char *s = NULL;
	if (!m->net.cni_conf_dir) {
		const char *a = m->net.subnet4 && *m->net.subnet4 ? m->net.subnet4 : NULL;
		const char *b = m->net.subnet6 && *m->net.subnet6 ? m->net.subnet6 : NULL;
		if (asprintf(&s, "%s%s%s", a ? a : "", a && b ? "," : "", b ? b : "") < 0)
			s = NULL;
	}
	pthread_mutex_unlock(&m->lock);
	return s;
}
