/* Restart recovery: the database says what should exist, the shims and the kernel say what does.
 *
 * Containers: each one not yet exited is asked through its shim: created or running, its watch
 * is re-armed; stopped, its exit is recorded from the shim's exit record; a shim that died
 * without one (-ESRCH) gets the container marked exited (ShimDied, exit code 255) and whatever
 * is left of it killed. Leftovers without a row (a create cut short): container, shim and
 * runtime directories, netns pods and berthd's pod cgroups are undone. Every finding is a log
 * line naming the object. */
#include "cri/manager-internal.h"
#include "base/cleanup.h"
#include "base/log.h"
#include "cgroup/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void pod_cfg_from_row(struct mpod *p)
{
	_cleanup_error_ struct berth_error *e = NULL;
	if (p->rec.config_json && pod_config_from_text(p->rec.config_json, &p->cfg, &e) == 0)
		return;
	/* what the name checks and log paths need, from the row itself */
	log_error("pod %s: its stored request does not parse (%s): using its row's metadata",
		  p->rec.id, e ? e->msg : "none stored");
	p->cfg.name = strdup(p->rec.name);
	p->cfg.namespace_ = strdup(p->rec.namespace);
	p->cfg.uid = strdup(p->rec.uid);
	p->cfg.attempt = p->rec.attempt;
}

static void mark_pod_notready(struct manager *m, struct mpod *p, const char *why)
{
	log_warn("pod %s (%s/%s): its sandbox is gone (%s): marked notready", p->rec.id,
		 p->rec.namespace, p->rec.name, why);
	pod_set_notready(m, p);
}

static void check_sandbox(struct manager *m, struct mpod *p)
{
	struct pod_sandbox_status *st = NULL;
	_cleanup_error_ struct berth_error *e = NULL;
	int r = pod_sandbox_status(&m->net, p->rec.id, &st, &e);
	if (r < 0)
		mark_pod_notready(m, p, e ? e->msg : "no status");
	else if (!st->state || strcmp(st->state, "ready") != 0)
		mark_pod_notready(m, p, st->state ? st->state : "no state");
	pod_sandbox_status_free(st);
}

static int load_pods(struct manager *m, struct berth_error **err)
{
	struct db_pod *rows = NULL;
	size_t n = 0;
	int r = db_pod_list(m->db, &rows, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct mpod *p = mpod_new(rows[i].id);
		if (!p) {
			r = -ENOMEM;
			break;
		}
		free(p->rec.id);
		p->rec = rows[i];
		rows[i] = (struct db_pod){ 0 };
		pod_cfg_from_row(p);
		_cleanup_error_ struct berth_error *e = NULL;
		if (pod_cgroup_paths(m, p, &e) < 0)
			log_error("pod %s: %s", p->rec.id, e ? e->msg : "its cgroup");
		if (strcmp(p->rec.state, "ready") == 0)
			check_sandbox(m, p);
		r = mgr_add_pod(m, p);
		mpod_unref(p);
	}
	db_pod_list_free(rows, n);
	return r;
}

static int load_containers(struct manager *m, struct berth_error **err)
{
	struct db_container *rows = NULL;
	size_t n = 0;
	int r = db_container_list(m->db, NULL, &rows, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct mctr *c = mctr_new(m, rows[i].id, rows[i].pod_id);
		if (!c) {
			r = -ENOMEM;
			break;
		}
		db_container_clear(&c->rec);
		c->rec = rows[i];
		rows[i] = (struct db_container){ 0 };
		r = mgr_add_ctr(m, c);
		mctr_unref(c);
	}
	db_container_list_free(rows, n);
	return r;
}

static void mark_unknown(struct manager *m, struct mctr *c, const char *why)
{
	log_warn("container %s (%s in pod %s): its shim cannot tell its state (%s): marked unknown",
		 c->rec.id, c->rec.name, c->rec.pod_id, why);
	pthread_mutex_lock(&m->lock);
	char *s = strdup("unknown"), *msg = strdup(why);
	if (s && msg) {
		free(c->rec.state);
		free(c->rec.message);
		c->rec.state = TAKE_PTR(s);
		c->rec.message = TAKE_PTR(msg);
		_cleanup_error_ struct berth_error *e = NULL;
		if (db_container_update_status(m->db, &c->rec, &e) < 0)
			log_error("container %s: recording state unknown: %s", c->rec.id,
				  e ? e->msg : "");
	}
	free(s);
	free(msg);
	pthread_mutex_unlock(&m->lock);
}

static void reconcile_containers(struct manager *m, size_t *ret_live)
{
	*ret_live = 0;
	for (size_t i = 0; i < m->n_ctrs; i++) {
		struct mctr *c = m->ctrs[i];
		if (strcmp(c->rec.state, "exited") == 0)
			continue;
		_cleanup_error_ struct berth_error *e = NULL;
		if (mgr_container_reconcile(m, c, true, &e) < 0)
			mark_unknown(m, c, e ? e->msg : "no answer");
		else if (strcmp(c->rec.state, "exited") != 0)
			++*ret_live;
	}
}

/* ---- leftovers without a row ---- */

static bool known_container(struct manager *m, const char *id)
{
	return mctr_find(m, id, true) != NULL;
}

static void undo_container(struct manager *m, const char *id, const char *where)
{
	log_warn("container %s: found in %s without a database row (a create cut short when "
		 "berthd stopped): removing its shim, rootfs and directories",
		 id, where);
	_cleanup_error_ struct berth_error *e = NULL;
	if (ctr_cleanup_dirs(m, id, &e) < 0)
		log_error("container %s: removing its leftovers: %s", id, e ? e->msg : "failed");
}

static void scan_container_dirs(struct manager *m, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		log_warn("recovery: cannot read %s: %m", dir);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (!mgr_valid_id(de->d_name)) {
			log_warn("recovery: %s/%s is not a berthd container: left alone", dir,
				 de->d_name);
			continue;
		}
		if (!known_container(m, de->d_name))
			undo_container(m, de->d_name, dir);
	}
	closedir(d);
}

static void scan_pods(struct manager *m)
{
	char **ids = NULL;
	_cleanup_error_ struct berth_error *e = NULL;
	if (pod_sandbox_list(&m->net, &ids, &e) < 0) {
		log_warn("recovery: listing pod sandboxes: %s", e ? e->msg : "");
		return;
	}
	for (char **id = ids; id && *id; id++) {
		if (mpod_find(m, *id, true))
			continue;
		log_warn("pod %s: its sandbox exists without a database row (a run cut short when "
			 "berthd stopped): removing it",
			 *id);
		_cleanup_error_ struct berth_error *e2 = NULL;
		if (pod_sandbox_remove(&m->net, *id, &e2) < 0)
			log_error("pod %s: removing its sandbox: %s", *id, e2 ? e2->msg : "");
	}
	strv_free(ids);
}

/* berthd's own pod cgroups (<cgroup_parent>/<pod id>, cgroupfs driver) without a row */
static void scan_cgroups(struct manager *m)
{
	const char *parent = m->cfg->cgroup_parent ? m->cfg->cgroup_parent : "berth";
	_cleanup_free_ char *mnt = NULL, *dir = NULL;
	if (!m->have_cgroup2 || m->cfg->systemd_cgroup || cgroup_mountpoint(&mnt, NULL) < 0 ||
	    asprintf(&dir, "%s/%s", mnt, parent + strspn(parent, "/")) < 0)
		return;
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || !mgr_valid_id(de->d_name) ||
		    mpod_find(m, de->d_name, true))
			continue;
		_cleanup_free_ char *path = NULL;
		struct cgroup *cg = NULL;
		_cleanup_error_ struct berth_error *e = NULL;
		if (asprintf(&path, "/%s/%s", parent + strspn(parent, "/"), de->d_name) < 0)
			break;
		log_warn("pod %s: its cgroup %s exists without a database row: removing it",
			 de->d_name, path);
		if (cgroup_open(path, &cg, &e) < 0 || cgroup_remove(cg, &e) < 0)
			log_error("pod %s: removing cgroup %s: %s", de->d_name, path,
				  e ? e->msg : "");
		cgroup_free(cg);
	}
	closedir(d);
}

int manager_recover(struct manager *m, struct berth_error **err)
{
	int64_t t0 = mgr_now_ns();
	size_t live = 0;
	int r;
	if ((r = load_pods(m, err)) < 0 || (r = load_containers(m, err)) < 0)
		return berth_error_wrap(err, "recovery: loading the database");
	reconcile_containers(m, &live);
	scan_container_dirs(m, m->containers_dir);
	scan_container_dirs(m, m->shims_dir);
	scan_container_dirs(m, m->runtime_root);
	scan_pods(m);
	scan_cgroups(m);
	log_info("recovered %zu pods and %zu containers (%zu created or running) in %.1f ms",
		 m->n_pods, m->n_ctrs, live, (double)(mgr_now_ns() - t0) / 1e6);
	return 0;
}
