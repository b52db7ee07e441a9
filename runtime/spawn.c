#include "runtime/spawn-internal.h"
#include "runtime/caps-internal.h"
#include "runtime/hooks-internal.h"
#include "runtime/seccomp-internal.h"
#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/log.h"
#include "base/process.h"
#include "base/socketutil.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* READY/ERROR: child → parent, setup done or failed. HOOKS: child → parent, mounts are done, run
 * the runtime's create hooks; HOOKS_DONE (with the state for createContainer) or ERROR answers.
 * GO: parent → child, carrying the state for startContainer hooks when there are any. */
enum sync_type {
	SYNC_READY = 1,
	SYNC_GO,
	SYNC_ERROR,
	SYNC_HOOKS,
	SYNC_HOOKS_DONE,
	SYNC_MAPPED,
	SYNC_IDMAP_FD, /* code: the mount's index; the fd rides along (SCM_RIGHTS) */
};

struct sync_msg {
	uint32_t type;
	int32_t code;
	char text[65536]; /* errors, or a state JSON with its annotations */
};

static int sync_send(int fd, enum sync_type type, int code, const char *text)
{
	static struct sync_msg m; /* 64 KiB: not on the stack; each process sends one at a time */
	m.type = type;
	m.code = code;
	m.text[0] = '\0';
	if (text)
		snprintf(m.text, sizeof(m.text), "%s", text);
	size_t len = offsetof(struct sync_msg, text) + strlen(m.text) + 1;
	for (;;) {
		if (send(fd, &m, len, MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

/* Returns the message type, 0 on EOF, -errno on failure. */
static int sync_recv(int fd, struct sync_msg *m)
{
	memset(m, 0, sizeof(*m));
	for (;;) {
		ssize_t n = recv(fd, m, sizeof(*m) - 1, 0);
		if (n > 0)
			return (int)m->type;
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

/* ---- child side ---- */

static int join_namespaces(const struct spawn_request *rq, struct berth_error **err)
{
	for (int i = 0; i < NS_JOIN_MAX && rq->join_fds[i] >= 0; i++)
		if (setns(rq->join_fds[i], 0) < 0)
			return berth_error_setsys(err, errno, "linux.namespaces: join a namespace by path");
	if (rq->exec_pidfd >= 0 && setns(rq->exec_pidfd, rq->exec_ns_flags) < 0)
		return berth_error_setsys(err, errno, "join the container's namespaces");
	if (rq->new_cgroup_ns && unshare(CLONE_NEWCGROUP) < 0)
		return berth_error_setsys(err, errno, "create the cgroup namespace");
	return 0;
}

static int set_oom_score_adj(const struct oci_process *p, struct berth_error **err)
{
	if (!p->has_oom_score_adj)
		return 0;
	char val[16];
	snprintf(val, sizeof(val), "%d", p->oom_score_adj);
	if (write_file_at(AT_FDCWD, "/proc/self/oom_score_adj", val, NULL) == 0)
		return 0;
	/* Lowering it needs CAP_SYS_RESOURCE, which some hosts withhold even from root: keep the
	 * inherited value (the closest allowed) and say so. */
	_cleanup_free_ char *cur = NULL;
	if (read_file_at(AT_FDCWD, "/proc/self/oom_score_adj", &cur, NULL, err) < 0)
		return berth_error_wrap(err, "process.oomScoreAdj");
	if (p->oom_score_adj < atoi(cur)) {
		log_warn("process.oomScoreAdj: %d is below this runtime's own %d and the host does not "
			 "allow lowering it; keeping %d",
			 p->oom_score_adj, atoi(cur), atoi(cur));
		return 0;
	}
	return berth_error_setsys(err, errno, "process.oomScoreAdj: set %d", p->oom_score_adj);
}

static int set_rlimits(const struct oci_process *p, struct berth_error **err)
{
	for (size_t i = 0; i < p->n_rlimits; i++) {
		const struct oci_rlimit *l = &p->rlimits[i];
		struct rlimit rl = { .rlim_cur = l->soft, .rlim_max = l->hard };
		if (setrlimit(l->resource, &rl) == 0)
			continue;
		struct rlimit cur;
		if (errno != EPERM || getrlimit(l->resource, &cur) < 0 || l->hard <= cur.rlim_max)
			return berth_error_setsys(err, errno, "process.rlimits[%zu]: setrlimit", i);
		/* Raising a hard limit needs CAP_SYS_RESOURCE: clamp to the host's hard limit. */
		log_warn("process.rlimits[%zu]: hard limit %llu is above the host's %llu, which this "
			 "host does not allow raising; using %llu",
			 i, (unsigned long long)l->hard, (unsigned long long)cur.rlim_max,
			 (unsigned long long)cur.rlim_max);
		rl.rlim_max = cur.rlim_max;
		if (rl.rlim_cur > rl.rlim_max)
			rl.rlim_cur = rl.rlim_max;
		if (setrlimit(l->resource, &rl) < 0)
			return berth_error_setsys(err, errno, "process.rlimits[%zu]: setrlimit", i);
	}
	return 0;
}

static int set_user(const struct oci_process *p, struct berth_error **err)
{
	if (setgroups(p->n_additional_gids, p->additional_gids) < 0)
		return berth_error_setsys(err, errno, "process.user.additionalGids: setgroups");
	if (setresgid(p->gid, p->gid, p->gid) < 0)
		return berth_error_setsys(err, errno, "process.user.gid: setgid %u", p->gid);
	if (setresuid(p->uid, p->uid, p->uid) < 0)
		return berth_error_setsys(err, errno, "process.user.uid: setuid %u", p->uid);
	if (p->has_umask)
		umask(p->umask);
	return 0;
}

/* The working directory is resolved inside the container without following magic links, so a
 * cwd like /proc/self/fd/N cannot reach a host directory through an inherited fd
 * (runc CVE-2024-21626). */
static int enter_cwd(const char *cwd, struct berth_error **err)
{
	struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_NO_MAGICLINKS };
	_cleanup_close_ int fd = (int)syscall(SYS_openat2, AT_FDCWD, cwd, &how, sizeof(how));
	if (fd < 0)
		return berth_error_setsys(err, errno, "process.cwd: %s", cwd);
	if (fchdir(fd) < 0)
		return berth_error_setsys(err, errno, "process.cwd: chdir %s", cwd);
	return 0;
}

static const char *env_get(char *const *env, const char *key)
{
	size_t kl = strlen(key);
	for (char *const *e = env; e && *e; e++)
		if (strncmp(*e, key, kl) == 0 && (*e)[kl] == '=')
			return *e + kl + 1;
	return NULL;
}

/* PATH lookup in the container's environment, like execvpe but decided before READY, so a
 * missing program fails create instead of start. */
static int find_executable(const struct oci_process *p, char *out, size_t len,
			   struct berth_error **err)
{
	const char *name = p->args[0];
	if (strchr(name, '/')) {
		snprintf(out, len, "%s", name);
		return 0;
	}
	const char *path = env_get(p->env, "PATH");
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (const char *d = path; *d;) {
		const char *e = strchrnul(d, ':');
		snprintf(out, len, "%.*s%s%s", (int)(e - d), d, e == d ? "" : "/", name);
		struct stat st;
		if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
			return 0;
		d = *e ? e + 1 : e;
	}
	return berth_error_set(err, ENOENT, "process.args: \"%s\": executable file not found in $PATH",
			       name);
}

static int wait_for_start(int listen_fd, struct berth_error **err)
{
	for (;;) {
		int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (c >= 0)
			return c;
		if (errno != EINTR && errno != ECONNABORTED)
			return berth_error_setsys(err, errno, "wait for start");
	}
}

/* Only the forked child uses these: the sync socket, the state startContainer hooks read, and the
 * idmapped mounts the runtime built for it (one fd per mounts[] index, or -1). */
static int child_sync_fd = -1;
static char *child_start_state;
static int *child_idmap_fds;
static int child_stdio[3] = { -1, -1, -1 };

int spawn_child_idmap_fd(size_t index)
{
	return child_idmap_fds ? child_idmap_fds[index] : -1;
}

/* Receives SYNC_IDMAP_FD messages until SYNC_MAPPED. */
static int child_wait_mapped(const struct spawn_request *rq, struct berth_error **err)
{
	size_t n = rq->config->n_mounts;
	child_idmap_fds = malloc((n ? n : 1) * sizeof(int));
	if (!child_idmap_fds)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		child_idmap_fds[i] = -1;
	for (;;) {
		static struct sync_msg m;
		char cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) - 1 };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				      .msg_controllen = sizeof(cbuf) };
		ssize_t got = recvmsg(child_sync_fd, &msg, MSG_CMSG_CLOEXEC);
		if (got <= 0)
			_exit(1); /* the runtime is gone */
		if (m.type == SYNC_MAPPED)
			return 0;
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		if (m.type != SYNC_IDMAP_FD || !cm || cm->cmsg_type != SCM_RIGHTS || m.code < 0 ||
		    (size_t)m.code >= n)
			return berth_error_set(err, EPROTO, "unexpected message from the runtime");
		memcpy(&child_idmap_fds[m.code], CMSG_DATA(cm), sizeof(int));
	}
}

int spawn_child_create_hooks(const struct spawn_request *rq, struct berth_error **err)
{
	const struct oci_hooks *h = &rq->config->hooks;
	if (!hooks_any(h, HOOK_PRESTART) && !hooks_any(h, HOOK_CREATE_RUNTIME) &&
	    !hooks_any(h, HOOK_CREATE_CONTAINER))
		return 0;
	static struct sync_msg m;
	if (sync_send(child_sync_fd, SYNC_HOOKS, 0, NULL) < 0)
		_exit(1);
	int t = sync_recv(child_sync_fd, &m);
	if (t == SYNC_ERROR)
		_exit(1); /* the parent reports its hook's failure itself */
	if (t != SYNC_HOOKS_DONE)
		_exit(1);
	return hooks_run(h, HOOK_CREATE_CONTAINER, m.text, err);
}

static int child_setup(const struct spawn_request *rq, int sync_fd, char *exe, size_t exe_len,
		       struct berth_error **err)
{
	const struct oci_process *p = rq->process;
	const struct oci_config *c = rq->config;
	int r;
	/* Until exec, nothing else may look into this process (/proc/PID/exe, mem, fds). */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return berth_error_setsys(err, errno, "prctl(PR_SET_DUMPABLE)");
	if ((r = join_namespaces(rq, err)) < 0 || (r = set_oom_score_adj(p, err)) < 0)
		return r;
	if (rq->rootfs) {
		if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0)
			return berth_error_setsys(err, errno, "hostname: %s", c->hostname);
		if (c->domainname && setdomainname(c->domainname, strlen(c->domainname)) < 0)
			return berth_error_setsys(err, errno, "domainname: %s", c->domainname);
		if ((r = rootfs_setup(rq, err)) < 0)
			return r;
	} else if (p->terminal && (r = terminal_setup(rq, false, err)) < 0) {
		return r;
	}
	if ((r = enter_cwd(p->cwd, err)) < 0 || (r = set_rlimits(p, err)) < 0 ||
	    (r = find_executable(p, exe, exe_len, err)) < 0)
		return r;
	for (unsigned i = 0; i < rq->preserve_fds; i++)
		if (fcntl(3 + (int)i, F_SETFD, 0) < 0)
			return berth_error_setsys(err, errno, "--preserve-fds: fd %u", 3 + i);
	return 0;
}

/* Loads the filter and hands its listener to the agent, if the profile has one. */
static int load_seccomp(const struct spawn_request *rq, pid_t host_pid, struct berth_error **err)
{
	const struct oci_seccomp *sc = rq->config->seccomp;
	int notify_fd = -1;
	int r = oci_seccomp_load(sc, &notify_fd, err);
	if (r < 0 || notify_fd < 0)
		return r;
	if (rq->seccomp_listener_fd < 0) {
		close(notify_fd);
		return berth_error_set(err, EINVAL, "linux.seccomp.listenerPath: not connected");
	}
	r = oci_seccomp_send_notify_fd(sc, rq->seccomp_listener_fd, notify_fd, host_pid,
				       child_start_state ? child_start_state : "{}", err);
	close(notify_fd);
	return r;
}

/* The last steps, after the start barrier: from here on the process has only what the config
 * grants, so nothing privileged may follow (the barrier's accept() included). Without
 * no_new_privs the kernel wants CAP_SYS_ADMIN to load a filter: then it goes first, while the
 * process still has it (as in runc); with no_new_privs it goes last, right before exec. */
static int drop_privileges(const struct spawn_request *rq, pid_t host_pid, struct berth_error **err)
{
	const struct oci_process *p = rq->process;
	bool filter = rq->config->seccomp != NULL;
	int r;
	if (filter && !p->no_new_privileges && (r = load_seccomp(rq, host_pid, err)) < 0)
		return r;
	if ((r = caps_prepare(&p->caps, err)) < 0 || (r = set_user(p, err)) < 0 ||
	    (r = caps_apply(&p->caps, err)) < 0)
		return r;
	if (p->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return berth_error_setsys(err, errno, "process.noNewPrivileges");
	if (filter && p->no_new_privileges && (r = load_seccomp(rq, host_pid, err)) < 0)
		return r;
	return 0;
}

static int compare_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* The requested stdio fds may be any numbers, 0..2 among them in any order: park copies above
 * the preserved fds first (before process.rlimits could lower RLIMIT_NOFILE), then place them
 * right before exec, so that until then the runtime's own fds 0..2 (its log) stay as they were. */
static int stdio_park(const struct spawn_request *rq)
{
	if (!rq->stdio)
		return 0;
	for (int i = 0; i < 3; i++)
		if ((child_stdio[i] = fcntl(rq->stdio[i], F_DUPFD_CLOEXEC,
					    3 + (int)rq->preserve_fds)) < 0)
			return -errno;
	return 0;
}

/* dup2 clears FD_CLOEXEC on the copy: the parked ones still close at exec. */
static int stdio_place(void)
{
	for (int i = 0; i < 3; i++)
		if (child_stdio[i] >= 0 && dup2(child_stdio[i], i) < 0)
			return -errno;
	return 0;
}

/* The child starts with every fd of its parent, locks included: keep only what it uses. */
static int close_inherited_fds(const struct spawn_request *rq, int sync_fd, int log_fd)
{
	int keep[NS_JOIN_MAX + 11], n = 0;
	for (int i = 0; i < 3; i++)
		keep[n++] = child_stdio[i];
	keep[n++] = sync_fd;
	keep[n++] = log_fd;
	keep[n++] = rq->console_fd;
	keep[n++] = rq->seccomp_listener_fd;
	keep[n++] = rq->start_listen_fd;
	keep[n++] = rq->exec_pidfd;
	for (int i = 0; i < NS_JOIN_MAX && rq->join_fds[i] >= 0; i++)
		keep[n++] = rq->join_fds[i];
	qsort(keep, (size_t)n, sizeof(int), compare_int);
	unsigned from = 3 + rq->preserve_fds;
	for (int i = 0; i < n; i++) {
		if (keep[i] < (int)from)
			continue;
		if ((unsigned)keep[i] > from && syscall(SYS_close_range, from, keep[i] - 1, 0) < 0)
			return -errno;
		from = (unsigned)keep[i] + 1;
	}
	return syscall(SYS_close_range, from, ~0U, 0) < 0 ? -errno : 0;
}

static _Noreturn void child_main(const struct spawn_request *rq, int sync_fd)
{
	struct berth_error *err = NULL;
	char exe[4096];
	static struct sync_msg m;
	int report_fd = sync_fd;

	child_sync_fd = sync_fd;
	process_reset_signals();
	int r = stdio_park(rq);
	if (r < 0) {
		berth_error_setsys(&err, -r, "stdio: duplicate the fds given");
		goto fail;
	}
	if (close_inherited_fds(rq, sync_fd, log_fd()) < 0) {
		berth_error_setsys(&err, errno, "close inherited fds");
		goto fail;
	}
	/* in a new user namespace nothing works until the runtime has written our id maps; then
	 * the init acts as the namespace's root (the mapped host ids), as runc's does, so what it
	 * creates in filesystems mounted inside the namespace has an owner there */
	if (rq->clone_flags & CLONE_NEWUSER) {
		if (child_wait_mapped(rq, &err) < 0)
			goto fail;
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
			berth_error_setsys(&err, errno,
					   "linux.uidMappings: become root in the user namespace (are "
					   "container uid 0 and gid 0 mapped?)");
			goto fail;
		}
	}

	if (child_setup(rq, sync_fd, exe, sizeof(exe), &err) < 0)
		goto fail;
	if (sync_send(sync_fd, SYNC_READY, 0, NULL) < 0 || sync_recv(sync_fd, &m) != SYNC_GO)
		_exit(1); /* the parent is gone: nothing to report to */
	if (m.text[0] && !(child_start_state = strdup(m.text)))
		_exit(1);
	if (rq->start_listen_fd >= 0) {
		report_fd = wait_for_start(rq->start_listen_fd, &err);
		if (report_fd < 0)
			_exit(1);
	}
	if (rq->rootfs && child_start_state &&
	    hooks_run(&rq->config->hooks, HOOK_START_CONTAINER, child_start_state, &err) < 0)
		goto fail;
	if (drop_privileges(rq, (pid_t)m.code, &err) < 0)
		goto fail;
	/* Everything not handed over closes at exec (runc CVE-2024-21626). */
	if (syscall(SYS_close_range, 3 + rq->preserve_fds, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		berth_error_setsys(&err, errno, "close_range");
		goto fail;
	}
	if ((r = stdio_place()) < 0) {
		berth_error_setsys(&err, -r, "stdio: dup2");
		goto fail;
	}
	execve(exe, rq->process->args, rq->process->env ? rq->process->env : (char *[]){ NULL });
	berth_error_setsys(&err, errno, "exec %s", exe);
fail:
	sync_send(report_fd, SYNC_ERROR, err ? err->code : EIO, err ? err->msg : "setup failed");
	_exit(127);
}

/* ---- parent side ---- */

static int write_id_map(pid_t pid, const char *file, const struct oci_id_mapping *m, size_t n,
			const char *field_name, struct berth_error **err)
{
	char text[340 * 36 + 1] = "", path[64];
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%u %u %u\n", m[i].container_id,
					m[i].host_id, m[i].size);
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	int r = write_file_at(AT_FDCWD, path, text, err);
	return r < 0 ? berth_error_wrap(err, "%s", field_name) : 0;
}

static int send_fd_msg(int sock, enum sync_type type, int code, int fd)
{
	struct {
		uint32_t type;
		int32_t code;
		char nul;
	} head = { type, code, 0 };
	return unix_send_with_fd(sock, &head, sizeof(head), fd);
}

/* Setting MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN over the filesystem's own namespace (the host's),
 * which the init in its user namespace lacks: the runtime clones each idmapped bind source into
 * a detached mount mapped through the init's user namespace and hands it over (as runc does). */
static int send_idmapped_mounts(const struct spawn_request *rq, pid_t pid, int sync_fd,
				struct berth_error **err)
{
	const struct oci_config *c = rq->config;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/user", pid);
	_cleanup_close_ int userns = -EBADF;
	for (size_t i = 0; i < c->n_mounts; i++) {
		const struct oci_mount *m = &c->mounts[i];
		if (!m->idmap)
			continue;
		if (userns < 0 && (userns = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			return berth_error_setsys(err, errno, "open %s", path);
		_cleanup_free_ char *src = NULL;
		if (m->source[0] == '/' ? !(src = strdup(m->source))
					: asprintf(&src, "%s/%s", rq->bundle, m->source) < 0)
			return -ENOMEM;
		unsigned rec = m->idmap_recursive || m->recursive_bind ? AT_RECURSIVE : 0;
		_cleanup_close_ int tree = (int)syscall(SYS_open_tree, AT_FDCWD, src,
							 OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec);
		if (tree < 0)
			return berth_error_setsys(err, errno, "mounts[%zu].source: %s", i, src);
		struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)userns };
		if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | (m->idmap_recursive ? AT_RECURSIVE : 0),
			    &attr, sizeof(attr)) < 0)
			return berth_error_setsys(err, errno,
						  "mounts[%zu].options: idmap %s (does its filesystem support idmapped mounts?)",
						  i, src);
		int r = send_fd_msg(sync_fd, SYNC_IDMAP_FD, (int)i, tree);
		if (r < 0)
			return berth_error_setsys(err, -r, "hand mounts[%zu] to the init", i);
	}
	return 0;
}

/* One write each, as the kernel wants: the whole map at once. */
static int write_id_maps(pid_t pid, const struct oci_config *c, struct berth_error **err)
{
	int r = write_id_map(pid, "uid_map", c->uid_mappings, c->n_uid_mappings, "linux.uidMappings",
			     err);
	if (r == 0)
		r = write_id_map(pid, "gid_map", c->gid_mappings, c->n_gid_mappings,
				 "linux.gidMappings", err);
	return r;
}

int spawn_process(const struct spawn_request *rq, struct spawned *ret, struct berth_error **err)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return berth_error_setsys(err, errno, "socketpair");
	/* The child's end must not land on an fd the container is promised (--preserve-fds). */
	int min_fd = 3 + (int)rq->preserve_fds;
	if (sv[1] < min_fd) {
		int moved = fcntl(sv[1], F_DUPFD_CLOEXEC, min_fd);
		close(sv[1]);
		if (moved < 0) {
			close(sv[0]);
			return berth_error_setsys(err, errno, "fcntl");
		}
		sv[1] = moved;
	}

	int pidfd = -1;
	pid_t pid = process_clone((uint64_t)rq->clone_flags, rq->cgroup_fd, &pidfd);
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return berth_error_setsys(err, -pid, "clone3");
	}
	if (pid == 0) {
		close(sv[0]);
		child_main(rq, sv[1]);
	}
	close(sv[1]);
	*ret = (struct spawned){ .pid = pid, .pidfd = pidfd, .sync_fd = sv[0] };
	if (rq->clone_flags & CLONE_NEWUSER) {
		int r = write_id_maps(pid, rq->config, err);
		if (r == 0)
			r = send_idmapped_mounts(rq, pid, sv[0], err);
		if (r == 0 && (r = sync_send(sv[0], SYNC_MAPPED, 0, NULL)) < 0)
			r = berth_error_setsys(err, -r, "resume the container's init");
		if (r < 0) {
			(void)process_signal(pidfd, SIGKILL);
			(void)process_wait(pidfd, -1);
			spawned_clear(ret);
			return r;
		}
	}
	return 0;
}

int spawn_wait_ready(int sync_fd, spawn_hooks_cb hooks_cb, void *userdata,
		     struct berth_error **err)
{
	static struct sync_msg m;
	int t = sync_recv(sync_fd, &m);
	while (t == SYNC_HOOKS && hooks_cb) {
		_cleanup_free_ char *state = NULL;
		int r = hooks_cb(userdata, &state, err);
		if (r < 0) {
			(void)sync_send(sync_fd, SYNC_ERROR, -r, NULL);
			return r;
		}
		if ((r = sync_send(sync_fd, SYNC_HOOKS_DONE, 0, state)) < 0)
			return berth_error_setsys(err, -r, "resume the container's init");
		t = sync_recv(sync_fd, &m);
	}
	if (t == SYNC_READY)
		return 0;
	if (t == SYNC_ERROR)
		return berth_error_set(err, m.code > 0 ? m.code : EIO, "%s", m.text);
	if (t < 0)
		return berth_error_setsys(err, -t, "wait for the container's init");
	return berth_error_set(err, EIO, "the container's init died during setup");
}

int spawn_release(int sync_fd, pid_t pid, const char *start_state, struct berth_error **err)
{
	/* the child cannot know its pid as the runtime sees it: the seccomp agent is told that one */
	int r = sync_send(sync_fd, SYNC_GO, (int)pid, start_state);
	return r < 0 ? berth_error_setsys(err, -r, "release the container's init") : 0;
}

int spawn_wait_exec(int fd, struct berth_error **err)
{
	static struct sync_msg m;
	int t = sync_recv(fd, &m);
	if (t == 0)
		return 0;
	if (t == SYNC_ERROR)
		return berth_error_set(err, m.code > 0 ? m.code : EIO, "%s", m.text);
	return berth_error_setsys(err, t < 0 ? -t : EIO, "wait for the container's program");
}

int children_ns_save(struct children_ns *s, struct berth_error **err)
{
	s->pid_fd = open("/proc/self/ns/pid_for_children", O_RDONLY | O_CLOEXEC);
	int pid_errno = errno;
	s->time_fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
	/* kernels before 5.6 have no time namespaces: nothing to save then */
	if (s->time_fd < 0 && errno != ENOENT) {
		int e = errno;
		children_ns_restore(s);
		return berth_error_setsys(err, e, "open /proc/self/ns/time_for_children");
	}
	if (s->pid_fd < 0) {
		children_ns_restore(s);
		return berth_error_setsys(err, pid_errno, "open /proc/self/ns/pid_for_children");
	}
	return 0;
}

void children_ns_restore(struct children_ns *s)
{
	/* Going back to our own namespaces cannot fail for lack of rights: ignore errors. */
	if (s->pid_fd >= 0)
		(void)setns(s->pid_fd, CLONE_NEWPID);
	if (s->time_fd >= 0)
		(void)setns(s->time_fd, CLONE_NEWTIME);
	closep(&s->pid_fd);
	closep(&s->time_fd);
}

void spawned_clear(struct spawned *s)
{
	closep(&s->pidfd);
	closep(&s->sync_fd);
	s->pidfd = s->sync_fd = -EBADF;
}
