/* exec: a new process in a running container, with the container's own process settings (env,
 * user, cwd, rlimits, noNewPrivileges) unless the command line or -p says otherwise, as in runc. */
#include "runtime/runtime.h"
#include "runtime/container-internal.h"
#include "runtime/spawn-internal.h"
#include "runtime/state-internal.h"
#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "base/process.h"
#include "cgroup/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Views and overrides on top of the container's process; owns only what it allocated. */
struct exec_process {
	struct oci_process p;
	struct oci_process parsed; /* -p process.json */
	char **env;                /* merged array; strings belong to the config or the caller */
};

static void exec_process_clear(struct exec_process *e)
{
	oci_process_clear(&e->parsed);
	free(e->env);
}

static int parse_process(const char *text, struct oci_process *ret, struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *j = NULL;
	int r = bjson_parse(text, &j, err);
	return r < 0 ? r : oci_process_parse(j, "process", ret, err);
}

static int load_process(const struct runtime_exec_options *o, struct oci_process *ret,
			struct berth_error **err)
{
	if (o->process_json)
		return parse_process(o->process_json, ret, err);
	_cleanup_free_ char *text = NULL;
	int r = read_file_at(AT_FDCWD, o->process_file, &text, NULL, err);
	if (r < 0 || (r = parse_process(text, ret, err)) < 0)
		return berth_error_wrap(err, "--process %s", o->process_file);
	return 0;
}

static int merge_env(char **base, char *const *add, char ***ret)
{
	size_t nb = 0, na = 0;
	while (base && base[nb])
		nb++;
	while (add && add[na])
		na++;
	char **v = calloc(nb + na + 1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < nb; i++) {
		size_t kl = strcspn(base[i], "=");
		bool replaced = false;
		for (size_t k = 0; k < na; k++)
			replaced |= strncmp(add[k], base[i], kl + 1) == 0;
		if (!replaced)
			v[n++] = base[i];
	}
	for (size_t k = 0; k < na; k++)
		v[n++] = add[k];
	*ret = v;
	return 0;
}

static int build_process(const struct runtime_exec_options *o, const struct oci_config *cfg,
			 struct exec_process *e, struct berth_error **err)
{
	int r;
	if (o->process_file || o->process_json) {
		if ((r = load_process(o, &e->parsed, err)) < 0)
			return r;
		e->p = e->parsed;
		return 0;
	}
	if (!o->args || !o->args[0] || !o->args[0][0])
		return berth_error_set(err, EINVAL, "exec: name the command to run (or give --process)");
	for (char *const *v = o->env; v && *v; v++)
		if (!strchr(*v, '=') || **v == '=')
			return berth_error_set(err, EINVAL, "--env \"%s\": must be KEY=VALUE", *v);
	e->p = cfg->process;
	e->p.args = (char **)o->args;
	if ((r = merge_env(cfg->process.env, o->env, &e->env)) < 0)
		return r;
	e->p.env = e->env;
	if (o->cwd) {
		if (o->cwd[0] != '/')
			return berth_error_set(err, EINVAL, "--cwd %s: must be an absolute path", o->cwd);
		e->p.cwd = (char *)o->cwd;
	}
	if (o->has_user) {
		e->p.uid = o->uid;
		e->p.gid = o->gid;
		e->p.n_additional_gids = 0;
	}
	e->p.terminal = o->tty;
	e->p.has_console_size = false;
	return 0;
}

/* setns refuses to "enter" the user namespace one is already in: ask only when it differs. */
static bool has_own_user_ns(pid_t pid)
{
	char path[64];
	struct stat theirs, ours;
	snprintf(path, sizeof(path), "/proc/%d/ns/user", pid);
	return stat(path, &theirs) == 0 && stat("/proc/self/ns/user", &ours) == 0 &&
	       (theirs.st_ino != ours.st_ino || theirs.st_dev != ours.st_dev);
}

static int exec_spawn(const struct runtime_exec_options *o, const struct stored_state *s,
		      const struct oci_process *p, const struct oci_config *cfg, int pidfd,
		      int *ret_status, struct berth_error **err)
{
	_cleanup_(cgroup_freep) struct cgroup *cg = NULL;
	_cleanup_close_ int console = -EBADF, listener = -EBADF;
	int r;
	if (s->cgroup_path && (r = cgroup_open(s->cgroup_path, &cg, err)) < 0)
		return r;
	if (p->terminal && !o->console_socket)
		return berth_error_set(err, EINVAL, "--tty: a terminal needs --console-socket");
	if (o->console_socket && (console = unix_connect(o->console_socket, err)) < 0)
		return berth_error_wrap(err, "--console-socket");
	if (cfg->seccomp && oci_seccomp_wants_notify(cfg->seccomp) &&
	    (listener = oci_seccomp_connect_listener(cfg->seccomp, err)) < 0)
		return listener;
	/* the pid namespace applies to children: enter it here, the rest in the child */
	struct children_ns saved;
	if ((r = children_ns_save(&saved, err)) < 0)
		return r;
	if (setns(pidfd, CLONE_NEWPID) < 0) {
		children_ns_restore(&saved);
		return berth_error_setsys(err, errno, "join the pid namespace of %s", o->id);
	}

	struct spawn_request rq = {
		.config = cfg, .process = p, .bundle = s->bundle, .exec_pidfd = pidfd,
		.exec_ns_flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS |
				 CLONE_NEWCGROUP | CLONE_NEWTIME |
				 (has_own_user_ns(s->pid) ? CLONE_NEWUSER : 0),
		.cgroup_fd = cg ? cgroup_fd(cg) : -1, .console_fd = console,
		.seccomp_listener_fd = listener, .start_listen_fd = -1,
		.stdio = p->terminal ? NULL : o->stdio, .preserve_fds = o->preserve_fds,
	};
	memset(rq.join_fds, -1, sizeof(rq.join_fds));
	struct spawned sp = { .pidfd = -1, .sync_fd = -1 };
	r = spawn_process(&rq, &sp, err);
	children_ns_restore(&saved);
	if (r < 0)
		return r;
	if ((r = spawn_wait_ready(sp.sync_fd, NULL, NULL, err)) < 0 ||
	    (o->pid_file && (r = write_pid_file(o->pid_file, sp.pid, err)) < 0) ||
	    (r = spawn_release(sp.sync_fd, sp.pid, NULL, err)) < 0 || (r = spawn_wait_exec(sp.sync_fd, err)) < 0) {
		(void)process_signal(sp.pidfd, SIGKILL);
		(void)wait_exit_status(sp.pidfd, NULL);
		spawned_clear(&sp);
		return berth_error_wrap(err, "exec in %s", o->id);
	}
	int status = 0;
	if (!o->detach) {
		forward_signals_to(sp.pidfd);
		status = wait_exit_status(sp.pidfd, err);
		forward_signals_to(-1);
	} else {
		if (o->ret_pid)
			*o->ret_pid = sp.pid;
		if (o->ret_pidfd)
			*o->ret_pidfd = TAKE_FD(sp.pidfd);
	}
	spawned_clear(&sp);
	if (status < 0)
		return status;
	*ret_status = status;
	return 0;
}

int runtime_container_exec(const struct runtime_exec_options *o, int *ret_status,
			   struct berth_error **err)
{
	_cleanup_close_ int dir_fd = -EBADF;
	_cleanup_(stored_state_freep) struct stored_state *s = NULL;
	int r = open_and_load(o->state_root, o->id, false, &dir_fd, &s, err);
	if (r < 0)
		return r;
	const char *status = state_status(dir_fd, s);
	if (strcmp(status, "stopped") == 0)
		return berth_error_set(err, EINVAL, "cannot exec in container %s: it is stopped", o->id);
	_cleanup_close_ int pidfd = state_open_init_pidfd(s);
	if (pidfd < 0)
		return berth_error_set(err, ESRCH, "cannot exec in container %s: it is stopped", o->id);
	closep(&dir_fd); /* a long exec must not block delete --force */

	_cleanup_(oci_config_freep) struct oci_config *cfg = NULL;
	if ((r = load_bundle_config(s->bundle, &cfg, err)) < 0)
		return r;
	struct exec_process e = { 0 };
	r = build_process(o, cfg, &e, err);
	if (r == 0)
		r = exec_spawn(o, s, &e.p, cfg, pidfd, ret_status, err);
	exec_process_clear(&e);
	return r;
}
