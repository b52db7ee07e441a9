/* Pinned namespaces.
 *
 * ns_pin clones a process into new namespaces and bind-mounts its /proc/PID/ns links onto
 * empty files: a namespace lives as long as something refers to it, and a mount is a reference
 * that needs no process. Without a PID namespace the process (the helper) exits as soon as the
 * mounts exist. A PID namespace needs a process for good, its pid 1, which reaps orphans: the
 * pod's init. It is cloned by a short-lived launcher, so it is reparented at once to the
 * system's init (or the caller's subreaper) and the caller never has to reap it; a daemon that
 * sets PR_SET_CHILD_SUBREAPER receives it back when it dies, and reaps it as it reaps any orphan.
 *
 * The child side runs after clone in a caller that may have threads: it uses system calls only
 * (async-signal-safe), and reports failures as {step, errno} for the parent to put into words.
 */
#include "netns/ns-internal.h"

#include "base/cleanup.h"
#include "base/log.h"
#include "base/process.h"
#include "base/socketutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef NS_GET_TGID_FROM_PIDNS /* Linux 6.10; older headers lack it */
#define NS_GET_TGID_FROM_PIDNS _IOR(NSIO, 0x7, int)
#endif

/* How long a killed init may take to go: it first waits for its namespace's processes to die. */
#define INIT_EXIT_TIMEOUT_MS 5000
/* The children do a few system calls each: far longer than this means they are stuck. */
#define CHILD_TIMEOUT_MS 10000

struct ns_kind {
	unsigned bit;
	uint64_t clone_flag;
	const char *name; /* under /proc/PID/ns/ and under the pod's directory */
};

static const struct ns_kind ns_kinds[] = {
	{ NS_NET, CLONE_NEWNET, "net" },
	{ NS_IPC, CLONE_NEWIPC, "ipc" },
	{ NS_UTS, CLONE_NEWUTS, "uts" },
	{ NS_PID, CLONE_NEWPID, "pid" },
};

/* What the children report. PIN_INIT comes from the launcher, with the init's pidfd attached. */
enum pin_step { PIN_READY, PIN_INIT, PIN_HOSTNAME, PIN_LOOPBACK, PIN_CLONE };

struct pin_msg {
	int step;
	int code; /* errno of a failed step */
	int pid;  /* PIN_INIT: the init's pid in the caller's PID namespace */
};

/* The byte that tells the holder its namespaces are pinned: the helper may exit, the init may
 * start its work. End of file instead means the caller failed or died: both exit. */
#define PIN_GO 'P'

static uint64_t clone_flags_of(unsigned which)
{
	uint64_t flags = 0;
	for (size_t i = 0; i < ARRAY_SIZE(ns_kinds); i++)
		if (which & ns_kinds[i].bit)
			flags |= ns_kinds[i].clone_flag;
	return flags;
}

static int path_join(char *buf, size_t size, const char *dir, const char *name,
		     struct berth_error **err)
{
	if ((size_t)snprintf(buf, size, "%s/%s", dir, name) >= size)
		return berth_error_set(err, ENAMETOOLONG, "%s/%s: path too long", dir, name);
	return 0;
}

/* ---- child side: system calls only ---- */

static void child_send(int sock, enum pin_step step, int code, int pid)
{
	struct pin_msg m = { .step = step, .code = code, .pid = pid };
	(void)send(sock, &m, sizeof(m), MSG_NOSIGNAL);
}

/* The caller's other fds (another pin's socket, a lock) must not be held open by the child. */
static void keep_only_fd(int fd)
{
	if (fd > 3)
		(void)syscall(SYS_close_range, 3U, (unsigned)fd - 1, 0);
	(void)syscall(SYS_close_range, (unsigned)fd + 1, ~0U, 0);
}

int ns_loopback_up(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, "lo", sizeof("lo"));
	int r = ioctl(fd, SIOCGIFFLAGS, &ifr);
	if (r == 0) {
		ifr.ifr_flags |= IFF_UP;
		r = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	if (r < 0)
		r = -errno;
	close(fd);
	return r;
}

/* Before anything else, so that neither the caller's signal handlers (copied by clone) nor its
 * terminal's job control (the init leaves the caller's session) can reach the init. SIGCHLD
 * stays at its default and blocked: children become zombies for the loop to reap and wake it. */
static void init_prepare(void)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, dfl = { .sa_handler = SIG_DFL };
	/* glibc refuses to touch its own two real-time signals: those calls fail, harmlessly */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, sig == SIGCHLD ? &dfl : &ign, NULL);
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	(void)sigprocmask(SIG_SETMASK, &chld, NULL);
	(void)setsid();
	(void)prctl(PR_SET_NAME, "berth-pod-init", 0, 0, 0);
}

static _Noreturn void init_run(void)
{
	/* keep no file of the caller's open (a lock, a listening socket) nor its directory busy */
	(void)syscall(SYS_close_range, 0U, ~0U, 0);
	(void)chdir("/");
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		/* a child that exits after the loop above leaves SIGCHLD pending: no wake-up is
		 * lost */
		(void)sigwaitinfo(&chld, NULL);
	}
}

static bool wait_go(int sock)
{
	char c = 0;
	ssize_t n;
	do
		n = recv(sock, &c, 1, 0);
	while (n < 0 && errno == EINTR);
	return n == 1 && c == PIN_GO;
}

/* The process inside the new namespaces: the helper, or with NS_PID the pod's init. */
static _Noreturn void holder_main(int sock, unsigned which, const char *hostname)
{
	keep_only_fd(sock);
	if (which & NS_PID)
		init_prepare();
	if ((which & NS_UTS) && sethostname(hostname, strlen(hostname)) < 0) {
		child_send(sock, PIN_HOSTNAME, errno, 0);
		_exit(1);
	}
	int r = (which & NS_NET) ? ns_loopback_up() : 0;
	if (r < 0) {
		child_send(sock, PIN_LOOPBACK, -r, 0);
		_exit(1);
	}
	child_send(sock, PIN_READY, 0, 0);
	if (!wait_go(sock))
		_exit(1);
	if (!(which & NS_PID))
		_exit(0);
	init_run();
}

/* Clones the init and hands its {pid, pidfd} to the caller; exiting at once orphans the init. */
static _Noreturn void launcher_main(int sock, unsigned which, const char *hostname)
{
	keep_only_fd(sock);
	int pidfd = -1;
	pid_t pid = process_clone(clone_flags_of(which), -1, &pidfd);
	if (pid == 0)
		holder_main(sock, which, hostname);
	if (pid < 0) {
		child_send(sock, PIN_CLONE, -pid, 0);
		_exit(1);
	}
	struct pin_msg m = { .step = PIN_INIT, .pid = pid };
	if (unix_send_with_fd(sock, &m, sizeof(m), pidfd) < 0) {
		(void)process_signal(pidfd, SIGKILL);
		_exit(1);
	}
	_exit(0);
}

/* ---- parent side ---- */

struct pin {
	const char *dir;
	int dirfd;
	unsigned which;
	unsigned created, mounted; /* ns_kinds bits: what to undo on failure */
	int sock;
	int child_pidfd;  /* our child, to reap: the helper, or the launcher */
	pid_t holder_pid; /* the process in the namespaces: the helper, or the init */
	int holder_pidfd;
};

static int pin_create_files(struct pin *p, struct berth_error **err)
{
	for (size_t i = 0; i < ARRAY_SIZE(ns_kinds); i++) {
		const struct ns_kind *k = &ns_kinds[i];
		if (!(p->which & k->bit))
			continue;
		int fd = openat(p->dirfd, k->name,
				O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
		if (fd < 0)
			return berth_error_setsys(err, errno, "create %s", k->name);
		close(fd);
		p->created |= k->bit;
	}
	return 0;
}

static int pin_clone(struct pin *p, const char *hostname, struct berth_error **err)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return berth_error_setsys(err, errno, "socketpair");
	p->sock = sv[0];
	struct timeval tv = { .tv_sec = CHILD_TIMEOUT_MS / 1000 };
	if (setsockopt(p->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		close(sv[1]);
		return berth_error_setsys(err, errno, "set a timeout on the helper's socket");
	}
	bool pidns = p->which & NS_PID;
	int pidfd = -1;
	pid_t pid = process_clone(pidns ? 0 : clone_flags_of(p->which), -1, &pidfd);
	if (pid == 0) {
		if (pidns)
			launcher_main(sv[1], p->which, hostname);
		holder_main(sv[1], p->which, hostname);
	}
	close(sv[1]);
	if (pid < 0)
		return berth_error_setsys(err, -pid, "clone");
	p->child_pidfd = pidfd;
	if (!pidns) {
		p->holder_pid = pid;
		p->holder_pidfd = fcntl(pidfd, F_DUPFD_CLOEXEC, 3);
		if (p->holder_pidfd < 0)
			return berth_error_setsys(err, errno, "dup pidfd");
	}
	return 0;
}

/* Our child exits on its own right after its last message: a bounded wait, then SIGKILL. */
static int pin_reap_child(struct pin *p, const char *what, struct berth_error **err)
{
	int status = process_wait(p->child_pidfd, CHILD_TIMEOUT_MS);
	close(TAKE_FD(p->child_pidfd));
	if (status < 0)
		return berth_error_setsys(err, -status, "wait for the %s", what);
	if (status != 0)
		return berth_error_set(err, EIO, "the %s exited with status %d", what, status);
	return 0;
}

/* Receives one message, and the fd that may ride along. Returns 0 at end of file, else 1. */
static int pin_recv(int sock, struct pin_msg *m, int *ret_fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	ssize_t n;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
		memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
	if (n == 0)
		return 0;
	return (size_t)n == sizeof(*m) ? 1 : -EBADMSG;
}

static const char *step_text(int step)
{
	switch (step) {
	case PIN_HOSTNAME:
		return "set the hostname";
	case PIN_LOOPBACK:
		return "bring up loopback";
	case PIN_CLONE:
		return "clone the pod's init";
	default:
		return "unknown step";
	}
}

/* One message from the children; the one naming the init hands its {pid, pidfd} to p. */
static int pin_read(struct pin *p, struct pin_msg *m, struct berth_error **err)
{
	_cleanup_close_ int fd = -EBADF;
	int r = pin_recv(p->sock, m, &fd);
	if (r == -EAGAIN)
		return berth_error_set(err, ETIMEDOUT, "the helper did not answer in %d ms",
				       CHILD_TIMEOUT_MS);
	if (r < 0)
		return berth_error_setsys(err, -r, "read from the helper");
	if (r == 0)
		return berth_error_set(err, EIO, "the helper exited early");
	if (m->step == PIN_INIT) {
		if (fd < 0 || m->pid <= 0)
			return berth_error_set(err, EBADMSG, "bad word from the launcher");
		p->holder_pid = m->pid;
		p->holder_pidfd = TAKE_FD(fd);
	}
	return 0;
}

static int step_error(const struct pin_msg *m, const char *hostname, struct berth_error **err)
{
	int code = m->code > 0 ? m->code : EBADMSG;
	if (m->step == PIN_HOSTNAME)
		return berth_error_setsys(err, code, "set hostname \"%s\"", hostname);
	return berth_error_setsys(err, code, "%s", step_text(m->step));
}

/* Waits for the holder to be ready and, with NS_PID, for the launcher to name the init (in
 * either order: both write to the same socket), then reaps the launcher. After a failure the
 * launcher's word is still awaited: the rollback must know which init to kill. */
static int pin_handshake(struct pin *p, const char *hostname, struct berth_error **err)
{
	bool ready = false, launched = !(p->which & NS_PID);
	int r = 0;
	while (r == 0 ? !(ready && launched) : !launched) {
		struct pin_msg m;
		int q = pin_read(p, &m, r == 0 ? err : NULL);
		if (q < 0) {
			r = r < 0 ? r : q;
			break;
		}
		if (m.step == PIN_READY) {
			ready = true;
		} else if (m.step == PIN_INIT) {
			launched = true;
		} else {
			launched |= m.step == PIN_CLONE;
			r = r < 0 ? r : step_error(&m, hostname, err);
		}
	}
	if (r < 0)
		return r;
	return (p->which & NS_PID) ? pin_reap_child(p, "launcher", err) : 0;
}

static int pin_mount(struct pin *p, struct berth_error **err)
{
	for (size_t i = 0; i < ARRAY_SIZE(ns_kinds); i++) {
		const struct ns_kind *k = &ns_kinds[i];
		if (!(p->which & k->bit))
			continue;
		char src[64], target[PATH_MAX];
		snprintf(src, sizeof(src), "/proc/%d/ns/%s", (int)p->holder_pid, k->name);
		int r = path_join(target, sizeof(target), p->dir, k->name, err);
		if (r < 0)
			return r;
		if (mount(src, target, NULL, MS_BIND, NULL) < 0)
			return berth_error_setsys(err, errno, "bind %s onto %s", src, target);
		p->mounted |= k->bit;
	}
	/* The mounts went by pid. Had the holder died and been reaped (the init is not our child)
	 * its pid could have named another process meanwhile; alive now, it was alive then. */
	int r = process_signal(p->holder_pidfd, 0);
	if (r < 0)
		return berth_error_setsys(err, -r, "the process holding them died");
	return 0;
}

static int pin_finish(struct pin *p, struct berth_error **err)
{
	char go = PIN_GO;
	if (send(p->sock, &go, 1, MSG_NOSIGNAL) != 1)
		return berth_error_setsys(err, errno, "release the helper");
	if (!(p->which & NS_PID))
		return pin_reap_child(p, "helper", err);
	/* The init closes every fd it has from the caller before it starts reaping: once its end of
	 * the socket is closed, none of the caller's files is held open by it any more. */
	struct pin_msg m;
	_cleanup_close_ int fd = -EBADF;
	int r = pin_recv(p->sock, &m, &fd);
	if (r == -EAGAIN)
		return berth_error_set(err, ETIMEDOUT, "the pod's init did not start in %d ms",
				       CHILD_TIMEOUT_MS);
	if (r != 0)
		return berth_error_setsys(err, r < 0 ? -r : EBADMSG, "wait for the pod's init");
	return 0;
}

/* Returns 0 once the process behind pidfd has exited, -ETIMEDOUT if it is still running. */
static int wait_exit(int pidfd, int timeout_ms)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	int r;
	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r > 0 ? 0 : r == 0 ? -ETIMEDOUT : -errno;
}

static void pin_rollback(struct pin *p)
{
	if (p->holder_pidfd >= 0)
		(void)process_signal(p->holder_pidfd, SIGKILL);
	if (p->child_pidfd >= 0) {
		(void)process_signal(p->child_pidfd, SIGKILL);
		(void)process_wait(p->child_pidfd, -1);
		close(p->child_pidfd);
	}
	/* the init is not ours to reap, but it is gone (a zombie at most) when we return */
	if (p->holder_pidfd >= 0 && (p->which & NS_PID) &&
	    wait_exit(p->holder_pidfd, INIT_EXIT_TIMEOUT_MS) < 0)
		log_warn("pin namespaces at %s: the pod's init %d did not exit after SIGKILL",
			 p->dir, (int)p->holder_pid);
	if (p->holder_pidfd >= 0)
		close(p->holder_pidfd);
	for (size_t i = 0; i < ARRAY_SIZE(ns_kinds); i++) {
		const struct ns_kind *k = &ns_kinds[i];
		char target[PATH_MAX];
		if ((p->mounted & k->bit) &&
		    path_join(target, sizeof(target), p->dir, k->name, NULL) == 0 &&
		    umount2(target, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
			log_warn("pin namespaces: unmount %s: %s", target, strerror(errno));
		if ((p->created & k->bit) && unlinkat(p->dirfd, k->name, 0) < 0)
			log_warn("pin namespaces: remove %s/%s: %s", p->dir, k->name,
				 strerror(errno));
	}
}

static int pin_check_args(unsigned which, const char *hostname, int *ret_init_pid,
			  struct berth_error **err)
{
	unsigned all = NS_NET | NS_IPC | NS_UTS | NS_PID;
	if (which == 0 || (which & ~all))
		return berth_error_set(err, EINVAL, "bad set of namespaces %#x", which);
	if ((which & NS_UTS) && !hostname)
		return berth_error_set(err, EINVAL, "a new UTS namespace needs a hostname");
	if ((which & NS_PID) && !ret_init_pid)
		return berth_error_set(err, EINVAL, "nowhere to return the init's pid");
	return 0;
}

static int pin_run(const char *dir, unsigned which, const char *hostname, int *ret_init_pid,
		   struct berth_error **err)
{
	int r = pin_check_args(which, hostname, ret_init_pid, err);
	if (r < 0)
		return r;
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return berth_error_setsys(err, errno, "open");
	struct pin p = { .dir = dir,
			 .dirfd = dirfd,
			 .which = which,
			 .sock = -EBADF,
			 .child_pidfd = -EBADF,
			 .holder_pidfd = -EBADF };
	r = pin_create_files(&p, err);
	if (r == 0)
		r = pin_clone(&p, hostname, err);
	if (r == 0)
		r = pin_handshake(&p, hostname, err);
	if (r == 0)
		r = pin_mount(&p, err);
	if (r == 0)
		r = pin_finish(&p, err);
	/* before a rollback: without the socket, a child still waiting for PIN_GO exits on its
	 * own */
	if (p.sock >= 0)
		close(p.sock);
	if (r < 0) {
		pin_rollback(&p);
		return r;
	}
	if (p.holder_pidfd >= 0)
		close(p.holder_pidfd);
	if (ret_init_pid)
		*ret_init_pid = (which & NS_PID) ? (int)p.holder_pid : 0;
	return 0;
}

int ns_pin(const char *dir, unsigned which, const char *hostname, int *ret_init_pid,
	   struct berth_error **err)
{
	_cleanup_error_ struct berth_error *e = NULL;
	if (pin_run(dir, which, hostname, ret_init_pid, &e) == 0)
		return 0;
	berth_error_wrap(&e, "pin namespaces at %s", dir);
	return berth_error_move(err, &e);
}

/* ---- unpin ---- */

/* Kills pid if its PID namespace is the one pinned (pinned: its stat): 1 if killed, 0 if pid is
 * some other process. A process in the pinned namespace can only be the pod's init: once the
 * init dies, the kernel kills the namespace's other processes and lets no new one in. */
static int kill_if_init(const struct stat *pinned, const char *pinned_path, int pid,
			struct berth_error **err)
{
	char proc_path[64];
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0U);
	if (pidfd < 0)
		return errno == ESRCH ? 0 : berth_error_setsys(err, errno, "open pid %d", pid);
	struct stat current;
	snprintf(proc_path, sizeof(proc_path), "/proc/%d/ns/pid", pid);
	if (stat(proc_path, &current) < 0) {
		if (errno == ENOENT || errno == ESRCH)
			return 0; /* gone meanwhile */
		return berth_error_setsys(err, errno, "stat %s", proc_path);
	}
	if (pinned->st_dev != current.st_dev || pinned->st_ino != current.st_ino) {
		log_debug("pid %d is not the init of %s: left alone", pid, pinned_path);
		return 0;
	}
	/* through the pidfd opened before the check: if the pid was reused after it, the signal
	 * goes to the dead process it named then, that is, nowhere */
	int r = process_signal(pidfd, SIGKILL);
	if (r < 0 && r != -ESRCH)
		return berth_error_setsys(err, -r, "kill the pod's init %d", pid);
	if (wait_exit(pidfd, INIT_EXIT_TIMEOUT_MS) < 0)
		log_warn("the pod's init %d did not exit within %d ms of SIGKILL", pid,
			 INIT_EXIT_TIMEOUT_MS);
	return 1;
}

/* Kills the init of the PID namespace pinned at dir/pid: init_pid if it still is that init
 * (after a restart of the daemon, or a crash of the init, the pid may name an unrelated
 * process), else whatever pid the namespace's pid 1 has for us (Linux 6.10's nsfs ioctl), so
 * that an init whose pid the caller lost (a crash right after ns_pin) is not left behind. */
static int kill_init(const char *dir, int init_pid, struct berth_error **err)
{
	char pinned_path[PATH_MAX];
	int r = path_join(pinned_path, sizeof(pinned_path), dir, "pid", err);
	if (r < 0)
		return r;
	_cleanup_close_ int nsfd = open(pinned_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (nsfd < 0)
		return errno == ENOENT ? 0 : berth_error_setsys(err, errno, "open %s", pinned_path);
	struct stat pinned;
	if (fstat(nsfd, &pinned) < 0)
		return berth_error_setsys(err, errno, "stat %s", pinned_path);
	r = init_pid > 0 ? kill_if_init(&pinned, pinned_path, init_pid, err) : 0;
	if (r != 0)
		return r < 0 ? r : 0;
	/* fails on an older kernel (ENOTTY), on a file that is not pinned, or when the init is
	 * gone */
	int pid = ioctl(nsfd, NS_GET_TGID_FROM_PIDNS, 1);
	if (pid <= 0 || pid == init_pid)
		return 0;
	r = kill_if_init(&pinned, pinned_path, pid, err);
	return r < 0 ? r : 0;
}

static int unpin_one(const char *dir, const char *name, struct berth_error **err)
{
	char path[PATH_MAX];
	int r = path_join(path, sizeof(path), dir, name, err);
	if (r < 0)
		return r;
	/* a pin repeated over a stale one leaves mounts stacked: take them all off */
	for (int i = 0; i < 16; i++) {
		if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
			continue;
		if (errno == EINVAL || errno == ENOENT)
			break;
		return berth_error_setsys(err, errno, "unmount %s", path);
	}
	if (unlink(path) < 0 && errno != ENOENT)
		return berth_error_setsys(err, errno, "remove %s", path);
	return 0;
}

int ns_unpin(const char *dir, int init_pid, struct berth_error **err)
{
	int r = kill_init(dir, init_pid, err);
	for (size_t i = 0; i < ARRAY_SIZE(ns_kinds); i++) {
		int q = unpin_one(dir, ns_kinds[i].name, err);
		if (q < 0 && r == 0)
			r = q;
	}
	return r;
}

/* ---- running in a network namespace ---- */

struct netns_call {
	const char *path;
	int fd;
	int (*fn)(void *opaque, struct berth_error **err);
	void *opaque;
	struct berth_error **err; /* the caller's: it waits in pthread_join meanwhile */
	int result;
};

static void *netns_thread(void *arg)
{
	struct netns_call *c = arg;
	/* setns moves only this thread; it ends with fn, so nothing else ever runs in there */
	if (setns(c->fd, CLONE_NEWNET) < 0)
		c->result = berth_error_setsys(c->err, errno, "join network namespace %s", c->path);
	else
		c->result = c->fn(c->opaque, c->err);
	return NULL;
}

int ns_run_in_netns(const char *path, int (*fn)(void *opaque, struct berth_error **err),
		    void *opaque, struct berth_error **err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return berth_error_setsys(err, errno, "open network namespace %s", path);
	struct netns_call c = { .path = path, .fd = fd, .fn = fn, .opaque = opaque, .err = err };
	pthread_t t;
	int r = pthread_create(&t, NULL, netns_thread, &c);
	if (r != 0)
		return berth_error_setsys(err, r, "start a thread for network namespace %s", path);
	r = pthread_join(t, NULL);
	if (r != 0)
		return berth_error_setsys(err, r, "join the thread for network namespace %s", path);
	return c.result;
}
