/* The container's filesystem, built in the child inside its new mount namespace. Destinations
 * inside the rootfs are resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) and mounted
 * through /proc/self/fd, never by joining strings, so a symlink in the rootfs cannot send a mount
 * outside it (runc CVE-2021-30465). */
#include "runtime/spawn-internal.h"
#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int openat2_in_root(int rootfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	while (*path == '/')
		path++;
	if (!*path)
		path = ".";
	int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	return fd < 0 ? -errno : fd;
}

static const char *fd_path(int fd, char buf[static 32])
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
	return buf;
}

/* Creates the missing parts of path inside the rootfs; the last one as a file when asked. */
static int mkdir_p_in_root(int rootfd, const char *path, bool last_is_file, struct berth_error **err)
{
	_cleanup_free_ char *prefix = strdup(path);
	if (!prefix)
		return -ENOMEM;
	_cleanup_close_ int parent = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	size_t len = strlen(prefix);
	for (size_t i = 1; i <= len; i++) {
		if (prefix[i] != '/' && prefix[i] != '\0')
			continue;
		char saved = prefix[i];
		prefix[i] = '\0';
		const char *name = strrchr(prefix, '/') + 1;
		bool last = saved == '\0' || strspn(prefix + i + 1, "/") == strlen(prefix + i + 1);
		if (*name && strcmp(name, ".") != 0) {
			int fd = openat2_in_root(rootfd, prefix, O_PATH);
			if (fd == -ENOENT) {
				int r;
				if (last && last_is_file) {
					r = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
					if (r >= 0)
						close(r);
				} else {
					r = mkdirat(parent, name, 0755);
				}
				if (r < 0 && errno != EEXIST)
					return berth_error_setsys(err, errno, "create %s in the rootfs", prefix);
				fd = openat2_in_root(rootfd, prefix, O_PATH);
			}
			if (fd < 0)
				return berth_error_setsys(err, -fd, "open %s in the rootfs", prefix);
			close(parent);
			parent = fd;
		}
		prefix[i] = saved;
		if (last)
			break;
	}
	return 0;
}

/* ---- the escape check: a relative symlink whose ".." climbs above the root ---- */


static int push_components(char ***queue, size_t *qn, const char *path, bool from_link)
{
	/* prepend the components of path to the queue (they are walked next) */
	_cleanup_free_ char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	char *items[256];
	size_t k = 0;
	char *save = NULL;
	for (char *p = strtok_r(copy, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
		if (k == ARRAY_SIZE(items))
			return -ENAMETOOLONG;
		items[k++] = p;
	}
	char **nq = realloc(*queue, (*qn + k + 1) * sizeof(char *));
	if (!nq)
		return -ENOMEM;
	memmove(nq + k, nq, *qn * sizeof(char *));
	for (size_t i = 0; i < k; i++) {
		/* a leading marker byte records whether the part came from a symlink */
		if (asprintf(&nq[i], "%c%s", from_link ? 'L' : 'P', items[i]) < 0)
			return -ENOMEM;
	}
	*queue = nq;
	*qn += k;
	return 0;
}

int path_check_no_escape(int rootfd, const char *path, struct berth_error **err)
{
	char **queue = NULL;
	size_t qn = 0, links = 0;
	char resolved[PATH_MAX] = "";
	int r = push_components(&queue, &qn, path, false);
	while (r == 0 && qn > 0) {
		_cleanup_free_ char *part = queue[0];
		memmove(queue, queue + 1, --qn * sizeof(char *));
		bool from_link = part[0] == 'L';
		const char *name = part + 1;
		if (strcmp(name, ".") == 0)
			continue;
		if (strcmp(name, "..") == 0) {
			char *slash = strrchr(resolved, '/');
			if (slash)
				*slash = '\0';
			else if (from_link)
				r = berth_error_set(err, EXDEV, "%s: a symlink in it leads outside the rootfs",
						    path);
			continue;
		}
		size_t rl = strlen(resolved);
		if (rl + strlen(name) + 2 >= sizeof(resolved)) {
			r = berth_error_set(err, ENAMETOOLONG, "%s: path too long", path);
			break;
		}
		snprintf(resolved + rl, sizeof(resolved) - rl, "/%s", name);
		char target[PATH_MAX];
		ssize_t tl = readlinkat(rootfd, resolved + 1, target, sizeof(target) - 1);
		if (tl < 0) {
			if (errno == EINVAL) /* not a symlink */
				continue;
			break; /* missing: created later, under the root */
		}
		target[tl] = '\0';
		if (++links > 40) {
			r = berth_error_set(err, ELOOP, "%s: too many symlinks", path);
			break;
		}
		resolved[rl] = '\0';
		if (target[0] == '/')
			resolved[0] = '\0'; /* absolute links are read in the container's view */
		/* ".." at the root of an absolute target stays at the root, as in the kernel */
		r = push_components(&queue, &qn, target, target[0] != '/');
	}
	for (size_t i = 0; i < qn; i++)
		free(queue[i]);
	free(queue);
	return r < 0 ? r : 0;
}

/* ---- mounts ---- */

static int mount_setattr_fd(int fd, uint64_t set, uint64_t clr)
{
	if (!set && !clr)
		return 0;
	struct mount_attr attr = { .attr_set = set, .attr_clr = clr };
	if (set & (MOUNT_ATTR_NOATIME | MOUNT_ATTR_RELATIME | MOUNT_ATTR_STRICTATIME))
		attr.attr_clr |= MOUNT_ATTR__ATIME;
	return syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0
		       ? -errno
		       : 0;
}

static unsigned long statvfs_locked_flags(const char *path)
{
	struct statvfs sv;
	if (statvfs(path, &sv) < 0)
		return 0;
	unsigned long f = 0;
	if (sv.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_RDONLY)
		f |= MS_RDONLY;
	/* in a user namespace the atime flags are locked too: a remount must repeat them */
	if (sv.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

#define BIND_REMOUNT_FLAGS                                                                         \
	(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME |  \
	 MS_STRICTATIME)

static int bind_source(const struct spawn_request *rq, const struct oci_mount *m, char **ret,
		       bool *ret_is_dir, const char *item, struct berth_error **err)
{
	_cleanup_free_ char *src = NULL;
	if (m->source[0] == '/')
		src = strdup(m->source);
	else if (asprintf(&src, "%s/%s", rq->bundle, m->source) < 0)
		src = NULL;
	if (!src)
		return -ENOMEM;
	struct stat st;
	if (stat(src, &st) < 0)
		return berth_error_setsys(err, errno, "%s.source: %s", item, m->source);
	*ret_is_dir = S_ISDIR(st.st_mode);
	*ret = TAKE_PTR(src);
	return 0;
}

static int mount_fs(const struct spawn_request *rq, const struct oci_mount *m, const char *target,
		    const char *item, struct berth_error **err)
{
	const char *type = m->type;
	if (strcmp(type, "cgroup") == 0)
		type = "cgroup2"; /* berth is cgroup v2 only: a v1 request gets the v2 tree */
	const char *source = m->source && m->source[0] ? m->source : type;
	if (mount(source, target, type, m->flags, m->data) == 0)
		return 0;
	int e = errno;
	/* sysfs refuses a container that shares the host's network namespace: bind the host's */
	if (e == EPERM && strcmp(type, "sysfs") == 0 && !(rq->clone_flags & CLONE_NEWNET)) {
		if (mount("/sys", target, NULL, MS_BIND | MS_REC, NULL) == 0 &&
		    mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | (m->flags & BIND_REMOUNT_FLAGS),
			  NULL) == 0)
			return 0;
		e = errno;
	}
	return berth_error_setsys(err, e, "%s: mount %s on %s", item, type, m->destination);
}

static int mount_one(const struct spawn_request *rq, int rootfd, size_t index,
		     struct berth_error **err)
{
	const struct oci_mount *m = &rq->config->mounts[index];
	char item[64], proc[32];
	snprintf(item, sizeof(item), "mounts[%zu]", index);

	int r = path_check_no_escape(rootfd, m->destination, err);
	if (r < 0)
		return berth_error_wrap(err, "%s.destination", item);

	_cleanup_free_ char *src = NULL;
	bool src_is_dir = true;
	if (m->bind && (r = bind_source(rq, m, &src, &src_is_dir, item, err)) < 0)
		return r;
	if ((r = mkdir_p_in_root(rootfd, m->destination, !src_is_dir, err)) < 0)
		return berth_error_wrap(err, "%s.destination", item);

	_cleanup_close_ int target = openat2_in_root(rootfd, m->destination, O_PATH);
	if (target < 0)
		return berth_error_setsys(err, -target, "%s.destination: %s", item, m->destination);
	if (m->idmap) {
		if (syscall(SYS_move_mount, spawn_child_idmap_fd(index), "", target, "",
			    MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			return berth_error_setsys(err, errno, "%s: place the idmapped %s on %s", item,
						  src, m->destination);
	} else if (m->bind) {
		if (mount(src, fd_path(target, proc), NULL, MS_BIND | (m->recursive_bind ? MS_REC : 0),
			  NULL) < 0)
			return berth_error_setsys(err, errno, "%s: bind %s on %s", item, src,
						  m->destination);
	} else if ((r = mount_fs(rq, m, fd_path(target, proc), item, err)) < 0) {
		return r;
	}

	/* Flags, attributes and propagation apply to the new mount: reopen to reach it. */
	closep(&target);
	target = openat2_in_root(rootfd, m->destination, O_PATH);
	if (target < 0)
		return berth_error_setsys(err, -target, "%s.destination: %s", item, m->destination);
	fd_path(target, proc);
	if (m->bind && (m->flags & BIND_REMOUNT_FLAGS)) {
		unsigned long flags = MS_BIND | MS_REMOUNT | (m->flags & BIND_REMOUNT_FLAGS);
		if (mount(NULL, proc, NULL, flags | statvfs_locked_flags(proc), NULL) < 0 &&
		    mount(NULL, proc, NULL, flags, NULL) < 0)
			return berth_error_setsys(err, errno, "%s: remount %s with its options", item,
						  m->destination);
	}
	if ((r = mount_setattr_fd(target, m->attr_set, m->attr_clr)) < 0)
		return berth_error_setsys(err, -r, "%s: recursive options on %s", item, m->destination);
	if (m->propagation && mount(NULL, proc, NULL, m->propagation, NULL) < 0)
		return berth_error_setsys(err, errno, "%s: propagation of %s", item, m->destination);
	return 0;
}

/* ---- after pivot_root: paths are the container's own, resolved inside it ---- */

static bool has_mount_at(const struct oci_config *c, const char *dest)
{
	for (size_t i = 0; i < c->n_mounts; i++)
		if (strcmp(c->mounts[i].destination, dest) == 0)
			return true;
	return false;
}

static bool dev_is_host_bind(const struct oci_config *c)
{
	for (size_t i = 0; i < c->n_mounts; i++)
		if (strcmp(c->mounts[i].destination, "/dev") == 0 && c->mounts[i].bind)
			return true;
	return false;
}

static int make_device(const struct oci_device *d, struct berth_error **err)
{
	mode_t mode = d->type | (d->has_mode ? d->mode : 0666);
	if (unlink(d->path) < 0 && errno != ENOENT)
		return berth_error_setsys(err, errno, "linux.devices: %s: remove the old node", d->path);
	_cleanup_free_ char *dir = strdup(d->path);
	if (!dir)
		return -ENOMEM;
	*strrchr(dir, '/') = '\0';
	for (char *p = dir + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			(void)mkdir(dir, 0755); /* EEXIST is fine; mknod below reports real failures */
			*p = '/';
		}
	(void)mkdir(dir, 0755);
	if (mknod(d->path, mode, makedev(d->major, d->minor)) < 0)
		return berth_error_setsys(err, errno, "linux.devices: mknod %s", d->path);
	if (chmod(d->path, mode & 07777) < 0)
		return berth_error_setsys(err, errno, "linux.devices: chmod %s", d->path);
	if ((d->has_uid || d->has_gid) &&
	    chown(d->path, d->has_uid ? d->uid : (uid_t)-1, d->has_gid ? d->gid : (gid_t)-1) < 0)
		return berth_error_setsys(err, errno, "linux.devices: chown %s", d->path);
	return 0;
}

static const struct {
	const char *path;
	uint32_t major, minor;
} default_devices[] = {
	{ "/dev/null", 1, 3 },	 { "/dev/zero", 1, 5 },	   { "/dev/full", 1, 7 },
	{ "/dev/random", 1, 8 }, { "/dev/urandom", 1, 9 }, { "/dev/tty", 5, 0 },
};

static bool device_configured(const struct oci_config *c, const char *path)
{
	for (size_t k = 0; k < c->n_devices; k++)
		if (strcmp(c->devices[k].path, path) == 0)
			return true;
	return false;
}

static int bind_one_device(int rootfd, const char *path, struct berth_error **err)
{
	char proc[32];
	int r = mkdir_p_in_root(rootfd, path, true, err);
	if (r < 0)
		return berth_error_wrap(err, "linux.devices: %s", path);
	_cleanup_close_ int target = openat2_in_root(rootfd, path, O_PATH);
	if (target < 0)
		return berth_error_setsys(err, -target, "linux.devices: %s", path);
	if (mount(path, fd_path(target, proc), NULL, MS_BIND, NULL) < 0)
		return berth_error_setsys(err, errno, "linux.devices: bind the host's %s", path);
	return 0;
}

/* A user namespace may not mknod: its devices are the host's nodes, bind-mounted (as runc does),
 * before the host's /dev is out of reach. */
static int bind_devices_from_host(const struct spawn_request *rq, int rootfd,
				  struct berth_error **err)
{
	const struct oci_config *c = rq->config;
	if (!(rq->clone_flags & CLONE_NEWUSER) || dev_is_host_bind(c))
		return 0;
	int r;
	for (size_t i = 0; i < ARRAY_SIZE(default_devices); i++)
		if (!device_configured(c, default_devices[i].path) &&
		    (r = bind_one_device(rootfd, default_devices[i].path, err)) < 0)
			return r;
	for (size_t k = 0; k < c->n_devices; k++)
		if ((r = bind_one_device(rootfd, c->devices[k].path, err)) < 0)
			return r;
	return 0;
}

static int setup_devices(const struct spawn_request *rq, struct berth_error **err)
{
	const struct oci_config *c = rq->config;
	bool bound = rq->clone_flags & CLONE_NEWUSER; /* already bind-mounted from the host */
	static const struct {
		const char *target, *path;
	} links[] = {
		{ "/proc/self/fd", "/dev/fd" },
		{ "/proc/self/fd/0", "/dev/stdin" },
		{ "/proc/self/fd/1", "/dev/stdout" },
		{ "/proc/self/fd/2", "/dev/stderr" },
	};
	int r;
	if (dev_is_host_bind(c))
		return 0;
	mode_t old = umask(0);
	for (size_t i = 0; !bound && i < ARRAY_SIZE(default_devices); i++) {
		if (device_configured(c, default_devices[i].path))
			continue;
		struct oci_device d = { .path = (char *)default_devices[i].path, .type = S_IFCHR,
					.major = default_devices[i].major,
					.minor = default_devices[i].minor };
		if ((r = make_device(&d, err)) < 0)
			goto out;
	}
	for (size_t k = 0; !bound && k < c->n_devices; k++)
		if ((r = make_device(&c->devices[k], err)) < 0)
			goto out;
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		if (symlink(links[i].target, links[i].path) < 0 && errno != EEXIST) {
			r = berth_error_setsys(err, errno, "symlink %s", links[i].path);
			goto out;
		}
	if (access("/proc/kcore", F_OK) == 0)
		(void)symlink("/proc/kcore", "/dev/core"); /* optional, as in runc */
	if (has_mount_at(c, "/dev/pts")) {
		(void)unlink("/dev/ptmx"); /* the rootfs may carry a node; the link to pts wins */
		if (symlink("pts/ptmx", "/dev/ptmx") < 0) {
			r = berth_error_setsys(err, errno, "symlink /dev/ptmx");
			goto out;
		}
	}
	r = 0;
out:
	umask(old);
	return r;
}

/* Sysctls are written through an fd of /proc/sys that is proven to be procfs: a volume mounted
 * over /proc could otherwise turn these writes into writes to host files (runc CVE-2019-16884). */
static int write_sysctls(const struct oci_config *c, struct berth_error **err)
{
	if (c->n_sysctls == 0)
		return 0;
	_cleanup_close_ int sys = open("/proc/sys", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct statfs sfs;
	if (sys < 0 || fstatfs(sys, &sfs) < 0)
		return berth_error_setsys(err, errno, "linux.sysctl: open /proc/sys");
	if (sfs.f_type != PROC_SUPER_MAGIC)
		return berth_error_set(err, EPERM,
				       "linux.sysctl: /proc/sys in the container is not procfs: refusing to write through it");
	for (size_t i = 0; i < c->n_sysctls; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s", c->sysctls[i].key);
		for (char *p = path; *p; p++)
			if (*p == '.')
				*p = '/';
		int r = write_file_at(sys, path, c->sysctls[i].value, err);
		if (r < 0)
			return berth_error_wrap(err, "linux.sysctl: %s", c->sysctls[i].key);
	}
	return 0;
}

static int mask_paths(const struct oci_config *c, struct berth_error **err)
{
	for (char **p = c->masked_paths; p && *p; p++) {
		struct stat st;
		if (stat(*p, &st) < 0) {
			if (errno == ENOENT)
				continue;
			return berth_error_setsys(err, errno, "linux.maskedPaths: %s", *p);
		}
		int r = S_ISDIR(st.st_mode) ? mount("tmpfs", *p, "tmpfs", MS_RDONLY, "size=0k")
					    : mount("/dev/null", *p, NULL, MS_BIND, NULL);
		if (r < 0)
			return berth_error_setsys(err, errno, "linux.maskedPaths: mask %s", *p);
	}
	return 0;
}

static int readonly_paths(const struct oci_config *c, struct berth_error **err)
{
	for (char **p = c->readonly_paths; p && *p; p++) {
		if (mount(*p, *p, NULL, MS_BIND | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue;
			return berth_error_setsys(err, errno, "linux.readonlyPaths: bind %s", *p);
		}
		struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
		if (syscall(SYS_mount_setattr, AT_FDCWD, *p, AT_RECURSIVE, &attr, sizeof(attr)) < 0)
			return berth_error_setsys(err, errno, "linux.readonlyPaths: make %s read-only", *p);
	}
	return 0;
}

static int make_cwd(const char *cwd, struct berth_error **err)
{
	_cleanup_free_ char *p = strdup(cwd);
	if (!p)
		return -ENOMEM;
	for (char *s = p + 1;; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, 0755) < 0 && errno != EEXIST)
				return berth_error_setsys(err, errno, "process.cwd: create %s", p);
			if (!c)
				break;
			*s = c;
		}
	}
	return 0;
}

static int enter_root(const struct spawn_request *rq, struct berth_error **err)
{
	if (chdir(rq->rootfs) < 0)
		return berth_error_setsys(err, errno, "chdir %s", rq->rootfs);
	if (rq->no_pivot) {
		if (mount(rq->rootfs, "/", NULL, MS_MOVE, NULL) < 0)
			return berth_error_setsys(err, errno, "move %s to /", rq->rootfs);
		if (chroot(".") < 0)
			return berth_error_setsys(err, errno, "chroot %s", rq->rootfs);
	} else {
		_cleanup_close_ int oldroot = open("/", O_DIRECTORY | O_PATH | O_CLOEXEC);
		if (oldroot < 0)
			return berth_error_setsys(err, errno, "open /");
		/* pivot_root(".", ".") stacks the old root under the new one; detach it from there */
		if (syscall(SYS_pivot_root, ".", ".") < 0)
			return berth_error_setsys(err, errno, "pivot_root %s", rq->rootfs);
		if (fchdir(oldroot) < 0 || mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0 ||
		    umount2(".", MNT_DETACH) < 0)
			return berth_error_setsys(err, errno, "detach the old root");
	}
	if (chdir("/") < 0)
		return berth_error_setsys(err, errno, "chdir /");
	return 0;
}

int rootfs_setup(const struct spawn_request *rq, struct berth_error **err)
{
	const struct oci_config *c = rq->config;
	unsigned long prop = c->rootfs_propagation & ~MS_REC;
	/* Nothing may propagate back to the host: start from slave (or the private asked for);
	 * shared and unbindable are applied once the root is in place. */
	unsigned long first = prop == MS_PRIVATE || prop == MS_SLAVE ? prop : MS_SLAVE;
	if (mount(NULL, "/", NULL, first | MS_REC, NULL) < 0)
		return berth_error_setsys(err, errno, "make / %s", first == MS_PRIVATE ? "private" : "slave");
	if (mount(rq->rootfs, rq->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		return berth_error_setsys(err, errno, "root.path: bind %s", rq->rootfs);

	int r;
	{
		_cleanup_close_ int rootfd = open(rq->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (rootfd < 0)
			return berth_error_setsys(err, errno, "root.path: open %s", rq->rootfs);
		for (size_t i = 0; i < c->n_mounts; i++)
			if ((r = mount_one(rq, rootfd, i, err)) < 0)
				return r;
		if ((r = bind_devices_from_host(rq, rootfd, err)) < 0)
			return r;
	}
	if ((r = spawn_child_create_hooks(rq, err)) < 0 || (r = enter_root(rq, err)) < 0 ||
	    (r = setup_devices(rq, err)) < 0)
		return r;
	if (rq->process->terminal && (r = terminal_setup(rq, true, err)) < 0)
		return r;
	if ((r = write_sysctls(c, err)) < 0 || (r = make_cwd(rq->process->cwd, err)) < 0 ||
	    (r = mask_paths(c, err)) < 0 || (r = readonly_paths(c, err)) < 0)
		return r;
	if ((prop == MS_SHARED || prop == MS_UNBINDABLE) &&
	    mount(NULL, "/", NULL, c->rootfs_propagation, NULL) < 0)
		return berth_error_setsys(err, errno, "linux.rootfsPropagation");
	if (c->root_readonly &&
	    mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | statvfs_locked_flags("/"), NULL) < 0)
		return berth_error_setsys(err, errno, "root.readonly: remount / read-only");
	return 0;
}
