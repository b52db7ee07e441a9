#include "runtime/runtime.h"
#include "runtime/container-internal.h"
#include "runtime/spawn-internal.h"
#include "runtime/state-internal.h"
#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "base/log.h"
#include "base/process.h"
#include "cgroup/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers shared with exec ---- */

int load_bundle_config(const char *bundle, struct oci_config **ret, struct berth_error **err)
{
	_cleanup_close_ int dfd = open(bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return berth_error_setsys(err, errno, "bundle %s", bundle);
	_cleanup_free_ char *text = NULL;
	int r = read_file_at(dfd, "config.json", &text, NULL, err);
	if (r < 0)
		return berth_error_wrap(err, "bundle %s", bundle);
	if ((r = oci_config_parse(text, ret, err)) < 0)
		return berth_error_wrap(err, "%s/config.json", bundle);
	return 0;
}

/* sun_path holds 108 bytes: longer paths go through an O_PATH fd of their directory. */
static int unix_sockaddr(const char *path, struct sockaddr_un *sa, int *ret_dirfd)
{
	*ret_dirfd = -1;
	sa->sun_family = AF_UNIX;
	if (strlen(path) < sizeof(sa->sun_path)) {
		strcpy(sa->sun_path, path);
		return 0;
	}
	_cleanup_free_ char *dir = strdup(path);
	if (!dir)
		return -ENOMEM;
	char *slash = strrchr(dir, '/');
	const char *base = path + (slash ? slash - dir + 1 : 0);
	if (slash)
		*slash = '\0';
	int dfd = open(slash ? (dir[0] ? dir : "/") : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	if ((size_t)snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/%s", dfd, base) >=
	    sizeof(sa->sun_path)) {
		close(dfd);
		return -ENAMETOOLONG;
	}
	*ret_dirfd = dfd;
	return 0;
}

int unix_connect(const char *path, struct berth_error **err)
{
	struct sockaddr_un sa = { 0 };
	_cleanup_close_ int dfd = -EBADF;
	int r = unix_sockaddr(path, &sa, &dfd);
	if (r < 0)
		return berth_error_setsys(err, -r, "%s", path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berth_error_setsys(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return berth_error_setsys(err, errno, "connect %s", path);
	return TAKE_FD(fd);
}

static int unix_listen_at(int dir_fd, const char *name, struct berth_error **err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dir_fd, name);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berth_error_setsys(err, errno, "socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0)
		return berth_error_setsys(err, errno, "create the start barrier");
	return TAKE_FD(fd);
}

int write_pid_file(const char *path, pid_t pid, struct berth_error **err)
{
	_cleanup_free_ char *dir = strdup(path);
	if (!dir)
		return -ENOMEM;
	char *slash = strrchr(dir, '/');
	const char *base = slash ? path + (slash - dir) + 1 : path;
	if (slash)
		*slash = '\0';
	_cleanup_close_ int dfd =
		open(slash ? (dir[0] ? dir : "/") : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return berth_error_setsys(err, errno, "--pid-file %s", path);
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d", pid);
	int r = write_file_atomic_at(dfd, base, buf, (size_t)n, 0644, false, err);
	return r < 0 ? berth_error_wrap(err, "--pid-file") : 0;
}

int wait_exit_status(int pidfd, struct berth_error **err)
{
	int status = process_wait(pidfd, -1);
	return status < 0 ? berth_error_setsys(err, -status, "wait for the container") : status;
}

static int forward_pidfd = -1;

static void forward_signal_cb(int sig)
{
	if (forward_pidfd >= 0)
		(void)process_signal(forward_pidfd, sig);
}

void forward_signals_to(int pidfd)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };
	forward_pidfd = pidfd;
	struct sigaction sa = { .sa_handler = forward_signal_cb, .sa_flags = SA_RESTART };
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
}

/* ---- create ---- */

struct create_ctx {
	const struct runtime_create_options *o;
	struct oci_config *cfg;
	char *bundle;
	char *rootfs;
	char *annotations_json; /* the config's annotations, encoded once; NULL: none */
	int root_fd;
	int dir_fd;
	bool dir_made;
	struct cgroup *cg;
	int join_fds[NS_JOIN_MAX];
	int console_fd;
	int listen_fd;
	int seccomp_listener_fd;
	struct spawned sp;
	struct children_ns saved_ns;
};

static void create_ctx_init(struct create_ctx *c, const struct runtime_create_options *o)
{
	*c = (struct create_ctx){ .o = o, .root_fd = -1, .dir_fd = -1, .console_fd = -1,
				  .listen_fd = -1, .seccomp_listener_fd = -1,
				  .sp = { .pidfd = -1, .sync_fd = -1 }, .saved_ns = { -1, -1 } };
	memset(c->join_fds, -1, sizeof(c->join_fds));
}

static void create_ctx_clear(struct create_ctx *c)
{
	oci_config_freep(&c->cfg);
	free(c->bundle);
	free(c->rootfs);
	free(c->annotations_json);
	closep(&c->root_fd);
	closep(&c->dir_fd);
	cgroup_freep(&c->cg);
	for (int i = 0; i < NS_JOIN_MAX; i++)
		closep(&c->join_fds[i]);
	closep(&c->console_fd);
	closep(&c->listen_fd);
	closep(&c->seccomp_listener_fd);
	spawned_clear(&c->sp);
	children_ns_restore(&c->saved_ns);
}

/* The name /etc/passwd gives uid (or the number): read directly, since NSS would tie a static
 * berth-runtime to the host's glibc build. */
static char *user_name(uid_t uid)
{
	_cleanup_fclose_ FILE *f = fopen("/etc/passwd", "re");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	while (f && getline(&line, &cap, f) > 0) {
		char *name = line, *colon = strchr(line, ':');
		char *uid_field = colon ? strchr(colon + 1, ':') : NULL;
		if (uid_field && strtoul(uid_field + 1, NULL, 10) == uid && uid_field[1] != ':') {
			*colon = '\0';
			return strdup(name);
		}
	}
	char *num = NULL;
	return asprintf(&num, "%u", uid) < 0 ? NULL : num;
}

static int node_to_json(const struct json *node, char **ret)
{
	*ret = NULL;
	if (!node)
		return 0;
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return -ENOMEM;
	bjson_writer_value(w, node);
	return bjson_writer_finish(w, ret, NULL);
}

static int hook_state(struct create_ctx *c, const char *status, char **ret)
{
	return hooks_state_json(c->o->id, status, c->sp.pid, c->bundle, c->annotations_json, ret);
}

/* Undoes a create that failed half-way: the init, its cgroup, the state directory. */
static void create_rollback(struct create_ctx *c)
{
	if (c->sp.pidfd >= 0) {
		(void)process_signal(c->sp.pidfd, SIGKILL);
		(void)process_wait(c->sp.pidfd, -1);
	}
	if (c->cg)
		(void)cgroup_remove(c->cg, NULL); /* best effort: the error being reported wins */
	if (c->dir_made)
		(void)remove_tree_at(c->root_fd, c->o->id);
	/* the lifecycle goes on to poststop once the container existed (runtime-spec, step 12) */
	_cleanup_free_ char *state = NULL;
	if (c->sp.pid > 0 && c->cfg && hooks_any(&c->cfg->hooks, HOOK_POSTSTOP) &&
	    hook_state(c, "stopped", &state) == 0)
		hooks_run_warn(&c->cfg->hooks, HOOK_POSTSTOP, state);
}

static int resolve_paths(struct create_ctx *c, struct berth_error **err)
{
	char buf[PATH_MAX];
	if (!realpath(c->o->bundle, buf))
		return berth_error_setsys(err, errno, "bundle %s", c->o->bundle);
	if (!(c->bundle = strdup(buf)))
		return -ENOMEM;
	int r = load_bundle_config(c->bundle, &c->cfg, err);
	if (r < 0 || (r = node_to_json(c->cfg->annotations, &c->annotations_json)) < 0)
		return r;
	_cleanup_free_ char *root = NULL;
	if (c->cfg->root_path[0] == '/')
		root = strdup(c->cfg->root_path);
	else if (asprintf(&root, "%s/%s", c->bundle, c->cfg->root_path) < 0)
		root = NULL;
	if (!root)
		return -ENOMEM;
	struct stat st;
	if (!realpath(root, buf) || stat(buf, &st) < 0)
		return berth_error_setsys(err, errno, "root.path: %s", root);
	if (!S_ISDIR(st.st_mode))
		return berth_error_set(err, ENOTDIR, "root.path: %s: not a directory", root);
	if (strcmp(buf, "/") == 0)
		return berth_error_set(err, EINVAL, "root.path: the host's / cannot be a container's root");
	return (c->rootfs = strdup(buf)) ? 0 : -ENOMEM;
}

/* Opens the namespaces to join and checks each is of the type the config says. */
static int open_join_namespaces(struct create_ctx *c, struct spawn_request *rq,
				struct berth_error **err)
{
	int n = 0;
	for (size_t i = 0; i < c->cfg->n_namespaces; i++) {
		const struct oci_namespace *ns = &c->cfg->namespaces[i];
		if (!ns->path) {
			if (ns->type == CLONE_NEWCGROUP)
				rq->new_cgroup_ns = true;
			else
				rq->clone_flags |= ns->type;
			continue;
		}
		_cleanup_close_ int fd = open(ns->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return berth_error_setsys(err, errno, "linux.namespaces[%zu].path: %s", i, ns->path);
		int type = ioctl(fd, NS_GET_NSTYPE);
		if (type != ns->type)
			return berth_error_set(err, EINVAL, "linux.namespaces[%zu].path: %s: not a %s namespace",
					       i, ns->path, oci_namespace_name(ns->type));
		/* pid and time namespaces apply to children: join them here, before the clone */
		if (ns->type == CLONE_NEWPID || ns->type == CLONE_NEWTIME) {
			if (setns(fd, ns->type) < 0)
				return berth_error_setsys(err, errno, "linux.namespaces[%zu].path: join %s",
							  i, ns->path);
			continue;
		}
		c->join_fds[n++] = TAKE_FD(fd);
	}
	memcpy(rq->join_fds, c->join_fds, sizeof(rq->join_fds));
	return 0;
}

/* A new time namespace takes its offsets before any process is in it: create it for our
 * children and write them now; the clone then places the init in it. */
static int prepare_time_namespace(struct create_ctx *c, struct spawn_request *rq,
				  struct berth_error **err)
{
	if (!(rq->clone_flags & CLONE_NEWTIME))
		return 0;
	rq->clone_flags &= ~CLONE_NEWTIME;
	if (unshare(CLONE_NEWTIME) < 0)
		return berth_error_setsys(err, errno, "linux.namespaces: create the time namespace");
	char buf[128];
	int n = snprintf(buf, sizeof(buf), "monotonic %lld %u\nboottime %lld %u\n",
			 (long long)c->cfg->monotonic.secs, c->cfg->monotonic.nanosecs,
			 (long long)c->cfg->boottime.secs, c->cfg->boottime.nanosecs);
	_cleanup_close_ int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, (size_t)n) != n)
		return berth_error_setsys(err, errno, "linux.timeOffsets");
	return 0;
}

static int prepare_cgroup(struct create_ctx *c, struct berth_error **err)
{
	const char *want = c->cfg->cgroups_path;
	_cleanup_free_ char *mnt = NULL;
	bool limits = !cgroup_settings_empty(c->cfg->resources);
	if (cgroup_mountpoint(&mnt, NULL) < 0) {
		if (want)
			return berth_error_set(err, ENOENT,
					       "linux.cgroupsPath: %s: no cgroup2 hierarchy is mounted", want);
		if (limits)
			return berth_error_set(err, ENOENT,
					       "%s: no cgroup2 hierarchy is mounted to apply it",
					       cgroup_settings_count(c->cfg->resources) > 0
						       ? cgroup_settings_field(c->cfg->resources, 0)
						       : "linux.resources.devices");
		log_debug("no cgroup2 hierarchy: container %s runs in the runtime's cgroup", c->o->id);
		return 0;
	}
	_cleanup_free_ char *path = NULL;
	if (!want) {
		if (c->o->systemd_cgroup ? asprintf(&path, "/system.slice/berth-%s.scope", c->o->id) < 0
					 : asprintf(&path, "/berth/%s", c->o->id) < 0)
			return -ENOMEM;
	} else if (strchr(want, ':')) {
		if (cgroup_path_from_systemd(want, &path, err) < 0)
			return berth_error_wrap(err, "linux.cgroupsPath");
	} else if (c->o->systemd_cgroup) {
		return berth_error_set(err, EINVAL,
				       "linux.cgroupsPath: %s: --systemd-cgroup expects slice:prefix:name",
				       want);
	} else if (want[0] != '/') {
		if (asprintf(&path, "/%s", want) < 0)
			return -ENOMEM;
	} else if (!(path = strdup(want))) {
		return -ENOMEM;
	}
	int r = cgroup_create(path, &c->cg, err);
	if (r < 0)
		return berth_error_wrap(err, "linux.cgroupsPath");
	if (!limits)
		return 0;
	return c->o->allow_missing_controllers
		       ? cgroup_apply_allow_missing(c->cg, c->cfg->resources, err)
		       : cgroup_apply(c->cg, c->cfg->resources, err);
}

/* The init has its mounts: run prestart and createRuntime here, in the runtime's namespaces. */
static int create_hooks_cb(void *userdata, char **ret_state, struct berth_error **err)
{
	struct create_ctx *c = userdata;
	int r = hook_state(c, "creating", ret_state);
	if (r < 0)
		return berth_error_set(err, -r, "hooks: encode the state");
	if ((r = hooks_run(&c->cfg->hooks, HOOK_PRESTART, *ret_state, err)) < 0 ||
	    (r = hooks_run(&c->cfg->hooks, HOOK_CREATE_RUNTIME, *ret_state, err)) < 0)
		return r;
	return 0;
}

static int record_state(struct create_ctx *c, struct berth_error **err)
{
	struct stored_state s = {
		.id = (char *)c->o->id,
		.pid = c->sp.pid,
		.pid_start = proc_start_time(c->sp.pid),
		.bundle = c->bundle,
		.rootfs = c->rootfs,
		.cgroup_path = c->cg ? (char *)cgroup_path(c->cg) : NULL,
		.own_pid_ns = oci_config_namespace(c->cfg, CLONE_NEWPID) &&
			      !oci_config_namespace(c->cfg, CLONE_NEWPID)->path,
	};
	_cleanup_free_ char *created = NULL, *hooks = NULL;
	_cleanup_free_ char *owner = user_name(geteuid());
	if (format_rfc3339_now(&created) < 0 || !owner)
		return -ENOMEM;
	s.created = created;
	s.owner = owner;
	if (node_to_json(c->cfg->hooks_node, &hooks) < 0)
		return -ENOMEM;
	s.annotations_json = c->annotations_json;
	s.hooks_json = hooks;
	if (s.pid_start == 0)
		return berth_error_set(err, ESRCH, "the container's init died during setup");
	int r = state_save(c->dir_fd, &s, err);
	if (r == 0 && c->o->pid_file)
		r = write_pid_file(c->o->pid_file, c->sp.pid, err);
	return r;
}

static int make_state_dir(struct create_ctx *c, struct berth_error **err)
{
	int r = state_root_open(c->o->state_root, true, &c->root_fd, err);
	if (r < 0)
		return r;
	if (mkdirat(c->root_fd, c->o->id, 0700) < 0) {
		if (errno == EEXIST)
			return berth_error_set(err, EEXIST, "container %s already exists", c->o->id);
		return berth_error_setsys(err, errno, "create the state of %s", c->o->id);
	}
	c->dir_made = true;
	return state_dir_open(c->root_fd, c->o->id, true, &c->dir_fd, err);
}

static int container_spawn(struct create_ctx *c, bool barrier, struct berth_error **err)
{
	const struct runtime_create_options *o = c->o;
	struct spawn_request rq = { .exec_pidfd = -1, .cgroup_fd = -1, .console_fd = -1,
				    .seccomp_listener_fd = -1, .start_listen_fd = -1,
				    .preserve_fds = o->preserve_fds, .no_pivot = o->no_pivot };
	memset(rq.join_fds, -1, sizeof(rq.join_fds));
	int r = state_id_check(o->id, err);
	if (r < 0 || (r = resolve_paths(c, err)) < 0)
		return r;
	rq.config = c->cfg;
	rq.process = &c->cfg->process;
	rq.rootfs = c->rootfs;
	rq.bundle = c->bundle;
	rq.stdio = c->cfg->process.terminal ? NULL : o->stdio;
	if (c->cfg->process.terminal && !o->console_socket)
		return berth_error_set(err, EINVAL,
				       "process.terminal: a terminal needs --console-socket");
	if ((r = children_ns_save(&c->saved_ns, err)) < 0 ||
	    (r = open_join_namespaces(c, &rq, err)) < 0 || (r = make_state_dir(c, err)) < 0)
		return r;
	if (o->console_socket) {
		if ((c->console_fd = unix_connect(o->console_socket, err)) < 0)
			return berth_error_wrap(err, "--console-socket");
		rq.console_fd = c->console_fd;
	}
	if (c->cfg->seccomp && oci_seccomp_wants_notify(c->cfg->seccomp)) {
		if ((c->seccomp_listener_fd = oci_seccomp_connect_listener(c->cfg->seccomp, err)) < 0)
			return c->seccomp_listener_fd;
		rq.seccomp_listener_fd = c->seccomp_listener_fd;
	}
	if (barrier) {
		if ((c->listen_fd = unix_listen_at(c->dir_fd, START_SOCKET, err)) < 0)
			return c->listen_fd;
		rq.start_listen_fd = c->listen_fd;
	}
	if ((r = prepare_cgroup(c, err)) < 0 || (r = prepare_time_namespace(c, &rq, err)) < 0)
		return r;
	rq.cgroup_fd = c->cg ? cgroup_fd(c->cg) : -1;
	r = spawn_process(&rq, &c->sp, err);
	children_ns_restore(&c->saved_ns);
	if (r < 0)
		return r;
	closep(&c->listen_fd); /* the init holds it now */
	/* the device filter once the init has made its device nodes (as runc does): the rules
	 * need not allow mknod for them */
	if ((r = spawn_wait_ready(c->sp.sync_fd, create_hooks_cb, c, err)) < 0 ||
	    (c->cg && (r = cgroup_apply_devices(c->cg, c->cfg->resources, err)) < 0) ||
	    (r = record_state(c, err)) < 0)
		return r;
	_cleanup_free_ char *start_state = NULL;
	bool wants_state = hooks_any(&c->cfg->hooks, HOOK_START_CONTAINER) ||
			   (c->cfg->seccomp && oci_seccomp_wants_notify(c->cfg->seccomp));
	if (wants_state && hook_state(c, "created", &start_state) < 0)
		return -ENOMEM;
	return spawn_release(c->sp.sync_fd, c->sp.pid, start_state, err);
}

int runtime_container_create(const struct runtime_create_options *o, struct berth_error **err)
{
	struct create_ctx c;
	create_ctx_init(&c, o);
	int r = container_spawn(&c, true, err);
	if (r < 0)
		create_rollback(&c);
	create_ctx_clear(&c);
	return r;
}

/* ---- removal ---- */

static int open_container_cgroup(const struct stored_state *s, struct cgroup **ret,
				 struct berth_error **err)
{
	*ret = NULL;
	if (!s->cgroup_path)
		return 0;
	int r = cgroup_open(s->cgroup_path, ret, err);
	if (r == -ENOENT) {
		berth_error_freep(err);
		return 0;
	}
	return r;
}

static int wait_gone(pid_t pid, uint64_t start)
{
	for (int i = 0; i < 1000 && proc_start_time(pid) == start; i++)
		usleep(5000);
	return proc_start_time(pid) == start ? -ETIMEDOUT : 0;
}

/* Removes every trace of a container whose processes are to be killed (or already gone). */
static int destroy(int root_fd, const char *id, const struct stored_state *s,
		   struct berth_error **err)
{
	_cleanup_(cgroup_freep) struct cgroup *cg = NULL;
	int r = s ? open_container_cgroup(s, &cg, err) : 0;
	if (r < 0)
		return r;
	_cleanup_close_ int pidfd = s ? state_open_init_pidfd(s) : -ESRCH;
	if (pidfd >= 0) {
		(void)process_signal(pidfd, SIGKILL);
		if (wait_gone(s->pid, s->pid_start) < 0)
			return berth_error_set(err, ETIMEDOUT, "container %s: init %d did not die", id,
					       s->pid);
	}
	if (cg && (r = cgroup_remove(cg, err)) < 0)
		return r;
	if ((r = remove_tree_at(root_fd, id)) < 0)
		return berth_error_setsys(err, -r, "remove the state of %s", id);
	if (s)
		state_run_hooks_warn(s, HOOK_POSTSTOP, "stopped");
	return 0;
}

int runtime_container_delete(const char *state_root, const char *id, bool force,
			     struct berth_error **err)
{
	_cleanup_close_ int root_fd = -EBADF, dir_fd = -EBADF;
	int r = state_root_open(state_root, false, &root_fd, err);
	if (r < 0 || (r = state_dir_open(root_fd, id, true, &dir_fd, err)) < 0)
		return r;
	_cleanup_(stored_state_freep) struct stored_state *s = NULL;
	r = state_load(dir_fd, id, &s, err);
	if (r == -ENOENT) {
		/* never finished creating (its creator was killed): nothing runs from it */
		berth_error_freep(err);
	} else if (r < 0) {
		return r;
	} else {
		const char *status = state_status(dir_fd, s);
		if ((strcmp(status, "running") == 0 || strcmp(status, "paused") == 0) && !force)
			return berth_error_set(err, EBUSY,
					       "cannot delete container %s that is %s (use --force)", id,
					       status);
	}
	return destroy(root_fd, id, s, err);
}

/* ---- start, state, kill, list, pids ---- */

int open_and_load(const char *state_root, const char *id, bool exclusive, int *ret_dir_fd,
			 struct stored_state **ret, struct berth_error **err)
{
	_cleanup_close_ int root_fd = -EBADF, dir_fd = -EBADF;
	int r = state_root_open(state_root, false, &root_fd, err);
	if (r == -ENOENT) {
		berth_error_freep(err);
		return berth_error_set(err, ENOENT, "container %s does not exist", id);
	}
	if (r < 0 || (r = state_dir_open(root_fd, id, exclusive, &dir_fd, err)) < 0)
		return r;
	r = state_load(dir_fd, id, ret, err);
	if (r == -ENOENT) {
		berth_error_freep(err);
		return berth_error_set(err, EBUSY, "container %s is still being created", id);
	}
	if (r < 0)
		return r;
	*ret_dir_fd = TAKE_FD(dir_fd);
	return 0;
}

int runtime_container_start(const char *state_root, const char *id, struct berth_error **err)
{
	_cleanup_close_ int dir_fd = -EBADF;
	_cleanup_(stored_state_freep) struct stored_state *s = NULL;
	int r = open_and_load(state_root, id, true, &dir_fd, &s, err);
	if (r < 0)
		return r;
	const char *status = state_status(dir_fd, s);
	if (strcmp(status, "created") != 0)
		return berth_error_set(err, EINVAL, "cannot start container %s: it is %s (not created)",
				       id, status);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dir_fd, START_SOCKET);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berth_error_setsys(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return berth_error_setsys(err, errno, "start container %s", id);
	(void)unlinkat(dir_fd, START_SOCKET, 0); /* from now on the container counts as running */
	r = spawn_wait_exec(fd, err);
	if (r < 0)
		return berth_error_wrap(err, "start container %s", id);
	state_run_hooks_warn(s, HOOK_POSTSTART, "running");
	return 0;
}

int runtime_container_state(const char *state_root, const char *id, struct runtime_state **ret,
			    struct berth_error **err)
{
	_cleanup_close_ int dir_fd = -EBADF;
	_cleanup_(stored_state_freep) struct stored_state *s = NULL;
	int r = open_and_load(state_root, id, false, &dir_fd, &s, err);
	if (r < 0)
		return r;
	return state_to_public(dir_fd, s, ret);
}

/* Processes in the same pid namespace as pid (for containers without a cgroup). */
static int pidns_members(pid_t pid, pid_t **ret, size_t *ret_n, struct berth_error **err)
{
	char path[64];
	struct stat ns;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", pid);
	if (stat(path, &ns) < 0)
		return berth_error_setsys(err, errno, "%s", path);
	DIR *d = opendir("/proc");
	if (!d)
		return berth_error_setsys(err, errno, "/proc");
	size_t n = 0, cap = 16;
	pid_t *pids = malloc(cap * sizeof(pid_t));
	struct dirent *de;
	while (pids && (de = readdir(d))) {
		char *end;
		long p = strtol(de->d_name, &end, 10);
		struct stat st;
		if (*end || p <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/ns/pid", p);
		if (stat(path, &st) < 0 || st.st_ino != ns.st_ino || st.st_dev != ns.st_dev)
			continue;
		if (n == cap) {
			pid_t *np = realloc(pids, (cap *= 2) * sizeof(pid_t));
			if (!np) {
				free(pids);
				pids = NULL;
				break;
			}
			pids = np;
		}
		pids[n++] = (pid_t)p;
	}
	closedir(d);
	if (!pids)
		return -ENOMEM;
	*ret = pids;
	*ret_n = n;
	return 0;
}

static int container_members(const struct stored_state *s, pid_t **ret, size_t *ret_n,
			     struct berth_error **err)
{
	_cleanup_(cgroup_freep) struct cgroup *cg = NULL;
	int r = open_container_cgroup(s, &cg, err);
	if (r < 0)
		return r;
	if (cg)
		return cgroup_pids(cg, ret, ret_n, err);
	if (s->own_pid_ns)
		return pidns_members(s->pid, ret, ret_n, err);
	pid_t *one = malloc(sizeof(pid_t));
	if (!one)
		return -ENOMEM;
	one[0] = s->pid;
	*ret = one;
	*ret_n = 1;
	return 0;
}

int runtime_container_kill(const char *state_root, const char *id, int sig, bool all,
			   struct berth_error **err)
{
	_cleanup_close_ int dir_fd = -EBADF;
	_cleanup_(stored_state_freep) struct stored_state *s = NULL;
	int r = open_and_load(state_root, id, false, &dir_fd, &s, err);
	if (r < 0)
		return r;
	if (strcmp(state_status(dir_fd, s), "stopped") == 0)
		return berth_error_set(err, ESRCH, "container %s is not running", id);
	if (all) {
		_cleanup_(cgroup_freep) struct cgroup *cg = NULL;
		if ((r = open_container_cgroup(s, &cg, err)) < 0)
			return r;
		if (cg)
			return cgroup_kill(cg, sig, err);
		_cleanup_free_ pid_t *pids = NULL;
		size_t n = 0;
		if ((r = container_members(s, &pids, &n, err)) < 0)
			return r;
		for (size_t i = 0; i < n; i++)
			if (kill(pids[i], sig) < 0 && errno != ESRCH)
				return berth_error_setsys(err, errno, "kill %d", pids[i]);
		return 0;
	}
	_cleanup_close_ int pidfd = state_open_init_pidfd(s);
	if (pidfd < 0)
		return berth_error_set(err, ESRCH, "container %s is not running", id);
	if ((r = process_signal(pidfd, sig)) < 0)
		return berth_error_setsys(err, -r, "kill container %s", id);
	return 0;
}

int runtime_container_pids(const char *state_root, const char *id, pid_t **ret, size_t *ret_n,
			   struct berth_error **err)
{
	_cleanup_close_ int dir_fd = -EBADF;
	_cleanup_(stored_state_freep) struct stored_state *s = NULL;
	int r = open_and_load(state_root, id, false, &dir_fd, &s, err);
	if (r < 0)
		return r;
	if (strcmp(state_status(dir_fd, s), "stopped") == 0) {
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	return container_members(s, ret, ret_n, err);
}

static int compare_states(const void *a, const void *b)
{
	return strcmp((*(struct runtime_state *const *)a)->id, (*(struct runtime_state *const *)b)->id);
}

static void free_state_list(struct runtime_state **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		runtime_state_free(v[i]);
	free(v);
}

int runtime_container_list(const char *state_root, struct runtime_state ***ret, size_t *ret_n,
			   struct berth_error **err)
{
	*ret = NULL;
	*ret_n = 0;
	DIR *d = opendir(state_root);
	if (!d) {
		if (errno == ENOENT)
			return 0; /* nothing was ever created here */
		return berth_error_setsys(err, errno, "--root %s", state_root);
	}
	struct runtime_state **v = NULL;
	size_t n = 0;
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || state_id_check(de->d_name, NULL) < 0)
			continue;
		_cleanup_close_ int dir_fd = -EBADF;
		_cleanup_(stored_state_freep) struct stored_state *s = NULL;
		if (state_dir_open(dirfd(d), de->d_name, false, &dir_fd, NULL) < 0 ||
		    state_load(dir_fd, de->d_name, &s, NULL) < 0)
			continue; /* vanished or still being created */
		struct runtime_state **nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv || (r = state_to_public(dir_fd, s, &nv[n])) < 0) {
			v = nv ? nv : v;
			r = -ENOMEM;
			break;
		}
		v = nv;
		n++;
	}
	closedir(d);
	if (r < 0) {
		free_state_list(v, n);
		return berth_error_set(err, ENOMEM, "list containers: out of memory");
	}
	if (n)
		qsort(v, n, sizeof(*v), compare_states);
	*ret = v;
	*ret_n = n;
	return 0;
}

/* ---- pause, resume, update ---- */

static int open_running_cgroup(const char *state_root, const char *id, const char *what,
			       struct cgroup **ret, struct berth_error **err)
{
	_cleanup_close_ int dir_fd = -EBADF;
	_cleanup_(stored_state_freep) struct stored_state *s = NULL;
	int r = open_and_load(state_root, id, true, &dir_fd, &s, err);
	if (r < 0)
		return r;
	const char *status = state_status(dir_fd, s);
	if (strcmp(status, "stopped") == 0)
		return berth_error_set(err, EINVAL, "cannot %s container %s: it is stopped", what, id);
	if (!s->cgroup_path)
		return berth_error_set(err, ENOTSUP,
				       "cannot %s container %s: it has no cgroup (no cgroup2 hierarchy was mounted)",
				       what, id);
	return cgroup_open(s->cgroup_path, ret, err);
}

int runtime_container_pause(const char *state_root, const char *id, bool pause,
			    struct berth_error **err)
{
	_cleanup_(cgroup_freep) struct cgroup *cg = NULL;
	int r = open_running_cgroup(state_root, id, pause ? "pause" : "resume", &cg, err);
	return r < 0 ? r : cgroup_freeze(cg, pause, err);
}

int runtime_container_update(const char *state_root, const char *id, const char *resources_json,
			     struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *j = NULL;
	_cleanup_(cgroup_settings_freep) struct cgroup_settings *settings = NULL;
	int r = bjson_parse(resources_json, &j, err);
	if (r < 0 || (r = cgroup_settings_from_oci(j, &settings, err)) < 0)
		return berth_error_wrap(err, "update %s", id);
	_cleanup_(cgroup_freep) struct cgroup *cg = NULL;
	if ((r = open_running_cgroup(state_root, id, "update", &cg, err)) < 0)
		return r;
	if ((r = cgroup_apply(cg, settings, err)) < 0)
		return r;
	return cgroup_apply_devices(cg, settings, err);
}

/* ---- run ---- */

int runtime_container_run(const struct runtime_create_options *o, int *ret_status,
			  struct berth_error **err)
{
	struct create_ctx c;
	create_ctx_init(&c, o);
	int r = container_spawn(&c, false, err);
	if (r == 0)
		r = spawn_wait_exec(c.sp.sync_fd, err);
	if (r == 0 && hooks_any(&c.cfg->hooks, HOOK_POSTSTART)) {
		_cleanup_free_ char *state = NULL;
		if (hook_state(&c, "running", &state) == 0)
			hooks_run_warn(&c.cfg->hooks, HOOK_POSTSTART, state);
	}
	if (r < 0) {
		create_rollback(&c);
		create_ctx_clear(&c);
		return r;
	}
	if (o->detach) {
		*ret_status = 0;
		create_ctx_clear(&c);
		return 0;
	}
	forward_signals_to(c.sp.pidfd);
	int status = wait_exit_status(c.sp.pidfd, err);
	forward_signals_to(-1);
	closep(&c.dir_fd);
	/* runc's run removes the container once its init is gone */
	_cleanup_close_ int dir_fd = -EBADF;
	if (status >= 0 && (r = state_dir_open(c.root_fd, o->id, true, &dir_fd, err)) == 0) {
		_cleanup_(stored_state_freep) struct stored_state *s = NULL;
		if ((r = state_load(dir_fd, o->id, &s, err)) == 0)
			r = destroy(c.root_fd, o->id, s, err);
	}
	create_ctx_clear(&c);
	if (status < 0)
		return status;
	if (r < 0)
		return r;
	*ret_status = status;
	return 0;
}

/* ---- signals ---- */

int runtime_signal_parse(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);
	if (*s && !*end)
		return n > 0 && n < NSIG ? (int)n : -EINVAL;
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (int i = 1; i < SIGRTMIN; i++) {
		const char *abbrev = sigabbrev_np(i);
		if (abbrev && strcasecmp(abbrev, s) == 0)
			return i;
	}
	if (strncasecmp(s, "RTMIN", 5) == 0 || strncasecmp(s, "RTMAX", 5) == 0) {
		bool min = strncasecmp(s, "RTMIN", 5) == 0;
		long off = 0;
		if (s[5]) {
			off = strtol(s + 5, &end, 10);
			if (*end || (min && off < 0) || (!min && off > 0))
				return -EINVAL;
		}
		int sig = (min ? SIGRTMIN : SIGRTMAX) + (int)off;
		return sig >= SIGRTMIN && sig <= SIGRTMAX ? sig : -EINVAL;
	}
	return -EINVAL;
}
