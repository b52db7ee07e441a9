/* netns/ns.c: pinned namespaces and the pod's init. Runs as root in a private mount namespace, so
 * the pins' bind mounts never reach the host's; every namespace it makes is its own (the network
 * ones hold only a loopback). */
#include "unit.h"

#include "base/cleanup.h"
#include "netns/ns-internal.h"

#include <dirent.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef NS_GET_TGID_FROM_PIDNS
#define NS_GET_TGID_FROM_PIDNS _IOR(NSIO, 0x7, int)
#endif

static const char *const kinds[] = { "net", "ipc", "uts", "pid" };

struct fx {
	struct unit_tmpdir tmp;
	struct berth_error *err;
	int init_pid;
	int init_pidfd; /* opened by the test right after ns_pin, to clean up whatever happens */
	pid_t other;	/* a child of the test's own, killed and reaped by teardown */
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || unit_tmpdir_create(&f->tmp) < 0)
		return -1;
	f->init_pidfd = -1;
	*state = f;
	return 0;
}

/* Cleans up without ns_unpin (the code under test): kill the init, take the mounts off. */
static int teardown(void **state)
{
	struct fx *f = *state;
	if (f->other > 0) {
		kill(f->other, SIGKILL);
		waitpid(f->other, NULL, 0);
	}
	if (f->init_pidfd >= 0) {
		syscall(SYS_pidfd_send_signal, f->init_pidfd, SIGKILL, NULL, 0);
		close(f->init_pidfd);
	}
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		char path[128];
		snprintf(path, sizeof(path), "%s/%s", f->tmp.path, kinds[i]);
		while (umount2(path, MNT_DETACH) == 0)
			;
	}
	berth_error_free(f->err);
	unit_tmpdir_remove(&f->tmp);
	free(f);
	return 0;
}

static void pin(struct fx *f, unsigned which, const char *hostname)
{
	MUST_OK(f, ns_pin(f->tmp.path, which, hostname, &f->init_pid, &f->err));
	if (f->init_pid > 0) {
		f->init_pidfd = (int)syscall(SYS_pidfd_open, f->init_pid, 0);
		assert_true(f->init_pidfd >= 0);
	}
}

static void pod_path(struct fx *f, const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", f->tmp.path, name);
}

static struct stat stat_of(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		fail_msg("stat %s: %s", path, strerror(errno));
	return st;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static bool exited(int pidfd, int timeout_ms)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	return poll(&p, 1, timeout_ms) == 1;
}

static bool mounted_under(const char *dir)
{
	_cleanup_fclose_ FILE *fp = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	while (fp && fgets(line, sizeof(line), fp))
		if (strstr(line, dir))
			return true;
	return false;
}

static void assert_nothing_left(struct fx *f)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (faccessat(f->tmp.fd, kinds[i], F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			fail_msg("%s/%s is still there", f->tmp.path, kinds[i]);
	assert_false(mounted_under(f->tmp.path));
}

/* The processes (any thread) whose namespace `kind` is the one at path. */
static int count_tasks_in(const char *kind, const char *path)
{
	struct stat want = stat_of(path);
	int n = 0;
	DIR *proc = opendir("/proc");
	assert_non_null(proc);
	struct dirent *p;
	while ((p = readdir(proc))) {
		char tdir[300];
		snprintf(tdir, sizeof(tdir), "/proc/%s/task", p->d_name);
		DIR *tasks = p->d_name[0] >= '1' && p->d_name[0] <= '9' ? opendir(tdir) : NULL;
		struct dirent *t;
		while (tasks && (t = readdir(tasks))) {
			char link[600];
			struct stat st;
			snprintf(link, sizeof(link), "%s/%s/ns/%s", tdir, t->d_name, kind);
			if (t->d_name[0] != '.' && stat(link, &st) == 0 && same_file(&st, &want))
				n++;
		}
		if (tasks)
			closedir(tasks);
	}
	closedir(proc);
	return n;
}

/* Reads /proc/PID/stat: state and parent (zombies included). */
static bool proc_stat(const char *pid, char *state, int *ppid)
{
	char path[300], buf[1024];
	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	_cleanup_fclose_ FILE *fp = fopen(path, "r");
	if (!fp || !fgets(buf, sizeof(buf), fp))
		return false;
	const char *end = strrchr(buf, ')');
	return end && sscanf(end + 1, " %c %d", state, ppid) == 2;
}

static int count_children_of(int parent)
{
	int n = 0;
	DIR *proc = opendir("/proc");
	assert_non_null(proc);
	struct dirent *p;
	while ((p = readdir(proc))) {
		char state;
		int ppid;
		if (p->d_name[0] >= '1' && p->d_name[0] <= '9' &&
		    proc_stat(p->d_name, &state, &ppid) && ppid == parent)
			n++;
	}
	closedir(proc);
	return n;
}

/* Live pod inits started from this test program (comm and executable), whoever else runs. */
static int count_our_inits(void)
{
	struct stat self = stat_of("/proc/self/exe");
	int n = 0;
	DIR *proc = opendir("/proc");
	assert_non_null(proc);
	struct dirent *p;
	while ((p = readdir(proc))) {
		char path[300], comm[32] = "", state;
		int ppid;
		struct stat st;
		if (p->d_name[0] < '1' || p->d_name[0] > '9' ||
		    !proc_stat(p->d_name, &state, &ppid) || state == 'Z')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", p->d_name);
		_cleanup_fclose_ FILE *fp = fopen(path, "r");
		if (!fp || !fgets(comm, sizeof(comm), fp) || strcmp(comm, "berth-pod-init\n") != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/exe", p->d_name);
		if (stat(path, &st) == 0 && same_file(&st, &self))
			n++;
	}
	closedir(proc);
	return n;
}

struct uts_query {
	const char *path;
	char name[80];
	int r;
};

/* UTS setns moves only the calling thread: do it on a thread of its own. */
static void *uts_thread(void *arg)
{
	struct uts_query *q = arg;
	int fd = open(q->path, O_RDONLY | O_CLOEXEC);
	q->r = fd >= 0 && setns(fd, CLONE_NEWUTS) == 0 && gethostname(q->name, sizeof(q->name)) == 0
		       ? 0
		       : -errno;
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void assert_hostname(const char *uts_path, const char *want)
{
	struct uts_query q = { .path = uts_path };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, uts_thread, &q), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(q.r, 0);
	assert_string_equal(q.name, want);
}

struct lo_probe {
	struct stat want;
	bool inside;
	short flags;
};

static int lo_probe_cb(void *opaque, struct berth_error **err)
{
	struct lo_probe *p = opaque;
	struct stat st;
	p->inside = stat("/proc/thread-self/ns/net", &st) == 0 && same_file(&st, &p->want);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = { .ifr_name = "lo" };
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return berth_error_setsys(err, errno, "SIOCGIFFLAGS lo");
	close(fd);
	p->flags = ifr.ifr_flags;
	return 42;
}

static void assert_new_namespaces(struct fx *f, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char pinned[128], self[64];
		pod_path(f, names[i], pinned, sizeof(pinned));
		snprintf(self, sizeof(self), "/proc/self/ns/%s", names[i]);
		struct stat a = stat_of(pinned), b = stat_of(self);
		assert_int_equal(a.st_dev, b.st_dev); /* an nsfs inode: the pin is a namespace */
		assert_int_not_equal(a.st_ino, b.st_ino);
	}
}

static void test_pin_net_ipc_uts(void **state)
{
	struct fx *f = *state;
	struct stat own_net = stat_of("/proc/self/ns/net");
	pin(f, NS_NET | NS_IPC | NS_UTS, "pod-a");
	assert_int_equal(f->init_pid, 0);
	assert_new_namespaces(f, kinds, 3);
	assert_int_equal(faccessat(f->tmp.fd, "pid", F_OK, 0), -1);

	/* the helper is gone and reaped: no process of ours holds the namespaces... */
	char net[128], ipc[128], uts[128];
	pod_path(f, "net", net, sizeof(net));
	pod_path(f, "ipc", ipc, sizeof(ipc));
	pod_path(f, "uts", uts, sizeof(uts));
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	assert_int_equal(count_tasks_in("net", net), 0);
	assert_int_equal(count_tasks_in("ipc", ipc), 0);
	assert_int_equal(count_tasks_in("uts", uts), 0);

	/* ...yet they can be joined: the hostname is set, loopback is up */
	assert_hostname(uts, "pod-a");
	struct lo_probe p = { .want = stat_of(net) };
	assert_int_equal(ns_run_in_netns(net, lo_probe_cb, &p, &f->err), 42);
	assert_true(p.inside);
	assert_true(p.flags & IFF_UP);
	struct stat after = stat_of("/proc/self/ns/net");
	assert_true(same_file(&after, &own_net));

	MUST_OK(f, ns_unpin(f->tmp.path, 0, &f->err));
	assert_nothing_left(f);
	MUST_OK(f, ns_unpin(f->tmp.path, 0, &f->err));
}

static void test_pin_without_net(void **state)
{
	struct fx *f = *state;
	pin(f, NS_UTS | NS_IPC, "no-net");
	const char *const pinned[] = { "ipc", "uts" };
	assert_new_namespaces(f, pinned, 2);
	assert_int_equal(faccessat(f->tmp.fd, "net", F_OK, 0), -1);
	char uts[128];
	pod_path(f, "uts", uts, sizeof(uts));
	assert_hostname(uts, "no-net");
	MUST_OK(f, ns_unpin(f->tmp.path, 0, &f->err));
	assert_nothing_left(f);
}

static void assert_pid1(int pid)
{
	char path[64], line[256], want[64];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	snprintf(want, sizeof(want), "NSpid:\t%d\t1\n", pid);
	_cleanup_fclose_ FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp))
		if (strncmp(line, "NSpid:", 6) == 0) {
			assert_string_equal(line, want);
			return;
		}
	fail_msg("no NSpid in %s", path);
}

/* A process joins the pod's PID namespace and double-forks: the grandchild is orphaned to the
 * init, waits on a pipe, then exits; the init must reap it. */
static void check_init_reaps_orphans(struct fx *f)
{
	int release[2];
	assert_int_equal(pipe(release), 0);
	pid_t c = fork();
	assert_true(c >= 0);
	if (c == 0) {
		close(release[1]);
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", f->init_pid);
		int fd = open(path, O_RDONLY);
		if (fd < 0 || setns(fd, CLONE_NEWPID) < 0)
			_exit(2);
		pid_t g = fork();
		if (g == 0) {
			pid_t gg = fork();
			if (gg == 0) {
				char b;
				(void)!read(release[0], &b, 1);
				_exit(0);
			}
			_exit(gg > 0 ? 0 : 3);
		}
		int st = 0;
		_exit(g > 0 && waitpid(g, &st, 0) == g && WIFEXITED(st) ? WEXITSTATUS(st) : 4);
	}
	close(release[0]);
	int st = 0;
	assert_int_equal(waitpid(c, &st, 0), c);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(count_children_of(f->init_pid), 1);
	close(release[1]);
	int left = 1;
	for (int i = 0; i < 300 && (left = count_children_of(f->init_pid)) > 0; i++)
		usleep(10000);
	assert_int_equal(left, 0);
}

static void die_handler(int sig)
{
	_exit(100 + sig);
}

static const int ignored_sigs[] = { SIGTERM, SIGINT,  SIGHUP,  SIGQUIT,
				    SIGUSR1, SIGPIPE, SIGALRM, SIGTSTP };

/* Handlers the init would inherit from its caller (a daemon's SIGTERM handler) if it kept them. */
static void set_handlers(void (*handler)(int))
{
	struct sigaction sa = { .sa_handler = handler };
	for (size_t i = 0; i < ARRAY_SIZE(ignored_sigs); i++)
		assert_int_equal(sigaction(ignored_sigs[i], &sa, NULL), 0);
}

static void test_pin_pid_init(void **state)
{
	struct fx *f = *state;
	set_handlers(die_handler);
	pin(f, NS_NET | NS_IPC | NS_UTS | NS_PID, "pod-b");
	set_handlers(SIG_DFL);
	assert_true(f->init_pid > 0);
	assert_new_namespaces(f, kinds, 4);
	assert_pid1(f->init_pid);

	char path[128], proc[64];
	pod_path(f, "pid", path, sizeof(path));
	snprintf(proc, sizeof(proc), "/proc/%d/ns/pid", f->init_pid);
	struct stat a = stat_of(path), b = stat_of(proc);
	assert_true(same_file(&a, &b));
	pod_path(f, "uts", path, sizeof(path));
	assert_hostname(path, "pod-b");

	/* not our child (it was orphaned at birth), in a session of its own, and it keeps none of
	 * our files */
	assert_int_equal(getsid(f->init_pid), f->init_pid);
	char state_c;
	int ppid = 0;
	char pidstr[16];
	snprintf(pidstr, sizeof(pidstr), "%d", f->init_pid);
	assert_true(proc_stat(pidstr, &state_c, &ppid));
	assert_int_not_equal(ppid, getpid());
	snprintf(proc, sizeof(proc), "/proc/%d/fd", f->init_pid);
	DIR *fds = opendir(proc);
	assert_non_null(fds);
	int n_fds = 0;
	for (struct dirent *d; (d = readdir(fds));)
		n_fds += d->d_name[0] != '.';
	closedir(fds);
	assert_int_equal(n_fds, 0);

	/* every signal but SIGKILL is ignored */
	for (size_t i = 0; i < ARRAY_SIZE(ignored_sigs); i++)
		assert_int_equal(kill(f->init_pid, ignored_sigs[i]), 0);
	assert_false(exited(f->init_pidfd, 200));
	assert_true(proc_stat(pidstr, &state_c, &ppid));
	assert_int_equal(state_c, 'S');

	check_init_reaps_orphans(f);

	MUST_OK(f, ns_unpin(f->tmp.path, f->init_pid, &f->err));
	assert_true(exited(f->init_pidfd, 0));
	assert_nothing_left(f);
	MUST_OK(f, ns_unpin(f->tmp.path, f->init_pid, &f->err));
}

/* Whether the kernel translates pids between PID namespaces by nsfs ioctl (Linux 6.10). */
static bool kernel_finds_init(void)
{
	int fd = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	bool yes = fd >= 0 && ioctl(fd, NS_GET_TGID_FROM_PIDNS, getpid()) == getpid();
	if (fd >= 0)
		close(fd);
	return yes;
}

static void test_unpin_spares_recycled_pid(void **state)
{
	struct fx *f = *state;
	pin(f, NS_PID | NS_NET, NULL);
	/* a process in another PID namespace (ours) stands for one that reused the init's pid */
	f->other = fork();
	assert_true(f->other >= 0);
	if (f->other == 0) {
		pause();
		_exit(0);
	}
	MUST_OK(f, ns_unpin(f->tmp.path, f->other, &f->err));
	usleep(100000);
	assert_int_equal(waitpid(f->other, NULL, WNOHANG), 0);
	kill(f->other, SIGKILL);
	assert_int_equal(waitpid(f->other, NULL, 0), f->other);
	f->other = 0;
	assert_nothing_left(f);
	if (kernel_finds_init()) {
		/* the real init was found through the pinned namespace */
		assert_true(exited(f->init_pidfd, 0));
		return;
	}
	/* with the pin gone nothing proves that the pid is the init's any more: it is spared too */
	assert_false(exited(f->init_pidfd, 0));
	MUST_OK(f, ns_unpin(f->tmp.path, f->init_pid, &f->err));
	assert_false(exited(f->init_pidfd, 100));
}

/* The caller lost the init's pid (it crashed right after ns_pin): unpin still kills it. */
static void test_unpin_finds_lost_init(void **state)
{
	struct fx *f = *state;
	if (!kernel_finds_init()) {
		print_message(
			"skipped: the kernel cannot translate pids by nsfs ioctl (Linux < 6.10)\n");
		skip();
	}
	pin(f, NS_PID | NS_IPC, NULL);
	MUST_OK(f, ns_unpin(f->tmp.path, 0, &f->err));
	assert_true(exited(f->init_pidfd, 0));
	assert_nothing_left(f);
}

static void expect_pin_error(struct fx *f, const char *dir, unsigned which, const char *hostname,
			     int code, const char *needle)
{
	int init_pid = -1;
	int r = ns_pin(dir, which, hostname, &init_pid, &f->err);
	if (r >= 0)
		fail_msg("ns_pin(%s, %#x) succeeded", dir, which);
	assert_int_equal(r, code);
	assert_int_equal(init_pid, -1);
	assert_non_null(f->err);
	assert_contains(f->err->msg, dir);
	assert_contains(f->err->msg, needle);
	f->err = berth_error_free(f->err);
	/* every child ns_pin made was reaped: only the test's own is left */
	assert_int_equal(count_children_of(getpid()), f->other > 0 ? 1 : 0);
	assert_int_equal(count_our_inits(), 0);
}

static void test_pin_failures_leave_nothing(void **state)
{
	struct fx *f = *state;
	char missing[128], ipc[128];
	pod_path(f, "missing", missing, sizeof(missing));
	expect_pin_error(f, missing, NS_NET, NULL, -ENOENT, missing);

	/* a file in the way: what was made before it is removed, the file itself stays */
	pod_path(f, "ipc", ipc, sizeof(ipc));
	int fd = open(ipc, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	expect_pin_error(f, f->tmp.path, NS_NET | NS_IPC | NS_UTS, "x", -EEXIST, "create ipc");
	assert_int_equal(faccessat(f->tmp.fd, "net", F_OK, 0), -1);
	assert_int_equal(faccessat(f->tmp.fd, "uts", F_OK, 0), -1);
	assert_int_equal(unlink(ipc), 0);
	assert_nothing_left(f);

	/* a failure inside the child (the kernel refuses a 65-byte hostname), with and without
	 * an init */
	const char *long_name = "a123456789b123456789c123456789d123456789e123456789f123456789g1234";
	expect_pin_error(f, f->tmp.path, NS_NET | NS_UTS, long_name, -EINVAL, "set hostname");
	assert_nothing_left(f);
	expect_pin_error(f, f->tmp.path, NS_NET | NS_UTS | NS_PID, long_name, -EINVAL,
			 "set hostname");
	assert_nothing_left(f);

	expect_pin_error(f, f->tmp.path, 0, NULL, -EINVAL, f->tmp.path);
	expect_pin_error(f, f->tmp.path, 1u << 7, NULL, -EINVAL, f->tmp.path);
	expect_pin_error(f, f->tmp.path, NS_UTS, NULL, -EINVAL, "needs a hostname");
	assert_int_equal(ns_pin(f->tmp.path, NS_PID, NULL, NULL, &f->err), -EINVAL);
	assert_nothing_left(f);
}

/* The pod directory seen through a process in another mount namespace: files can be made there,
 * but mount(2) refuses targets outside the caller's mount namespace, so pinning fails after the
 * children are up. */
static void test_pin_mount_failure_leaves_nothing(void **state)
{
	struct fx *f = *state;
	int ready[2];
	assert_int_equal(pipe(ready), 0);
	f->other = fork();
	assert_true(f->other >= 0);
	if (f->other == 0) {
		char ok = unshare(CLONE_NEWNS) == 0;
		(void)!write(ready[1], &ok, 1);
		pause();
		_exit(0);
	}
	char ok = 0;
	assert_int_equal(read(ready[0], &ok, 1), 1);
	assert_true(ok);
	close(ready[0]);
	close(ready[1]);
	char dir[160];
	snprintf(dir, sizeof(dir), "/proc/%d/root%s", f->other, f->tmp.path);
	expect_pin_error(f, dir, NS_NET | NS_UTS, "m", -EINVAL, "onto");
	assert_nothing_left(f);
	expect_pin_error(f, dir, NS_NET | NS_PID, NULL, -EINVAL, "onto");
	assert_nothing_left(f);
}

static int fail_cb(void *opaque, struct berth_error **err)
{
	return berth_error_set(err, EPERM, "callback said no: %s", (const char *)opaque);
}

static void test_run_in_netns_errors(void **state)
{
	struct fx *f = *state;
	char path[128];
	pod_path(f, "nothere", path, sizeof(path));
	assert_int_equal(ns_run_in_netns(path, fail_cb, "x", &f->err), -ENOENT);
	assert_contains(f->err->msg, path);
	f->err = berth_error_free(f->err);

	/* not a namespace */
	pod_path(f, "plain", path, sizeof(path));
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(ns_run_in_netns(path, fail_cb, "x", &f->err), -EINVAL);
	assert_contains(f->err->msg, path);
	f->err = berth_error_free(f->err);

	/* the callback's error comes back as it was set */
	assert_int_equal(ns_run_in_netns("/proc/self/ns/net", fail_cb, "why", &f->err), -EPERM);
	assert_string_equal(f->err->msg, "callback said no: why");
}

int main(void)
{
	/* the pins' bind mounts stay in a private mount namespace */
	if (unit_private_namespaces("test_ns", 0) < 0)
		return 1;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_pin_net_ipc_uts),
		T(test_pin_without_net),
		T(test_pin_pid_init),
		T(test_unpin_spares_recycled_pid),
		T(test_unpin_finds_lost_init),
		T(test_pin_failures_leave_nothing),
		T(test_pin_mount_failure_leaves_nothing),
		T(test_run_in_netns_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
