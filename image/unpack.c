/* Layer unpack (the contract is in unpack-internal.h).
 *
 * Two threads, as in `gzip -dc | tar -x`: a feeder decompresses the blob (libarchive's "raw"
 * format behind its gzip and zstd filters, which tell the compression by the first bytes) and
 * hashes the plain tar stream into the diffID, handing it on in a small ring of chunks; the
 * caller's thread parses that stream (a second libarchive reader, tar format only, no filter)
 * and writes the entries. The feeder hashes every byte up to the end of the blob, the
 * end-of-archive blocks and anything after them included, so the diffID does not depend on how
 * much of the stream the tar parser looked at.
 *
 * Every entry's parent is resolved beneath the snapshot directory with openat2 and no symlink
 * allowed on the way; the last component is made with *at() calls that never follow one. The
 * last parent directory stays open, since entries come in directory order. */
#include "image/unpack-internal.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/log.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define CHUNK_SIZE (512u * 1024)
#define CHUNKS 8
#define BLOB_READ_SIZE (1u << 20)
#define WHITEOUT ".wh."
#define WHITEOUT_META ".wh..wh."
#define WHITEOUT_OPAQUE ".wh..wh..opq"

/* ---- the feeder: decompress, hash, hand on ---- */

struct feed {
	struct archive *outer;
	struct digest_stream hash;
	uint64_t max_bytes;
	uint64_t bytes; /* the feeder's own until it is joined */
	char *mem;      /* CHUNKS chunks of CHUNK_SIZE */
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* under lock: */
	size_t len[CHUNKS];
	uint64_t head, tail; /* chunks given back by the reader, chunks filled by the feeder */
	bool holding;        /* the reader still uses chunk head */
	bool done, cancel;
	struct berth_error *err; /* why the feeder stopped early; set before done */
};

static char *chunk(struct feed *f, uint64_t i)
{
	return f->mem + (size_t)(i % CHUNKS) * CHUNK_SIZE;
}

/* Fills one chunk (less at the end of the stream): 0 at the end, -1 on failure (f->err set). */
static ssize_t feed_fill(struct feed *f, char *buf)
{
	size_t n = 0;
	while (n < CHUNK_SIZE) {
		la_ssize_t r = archive_read_data(f->outer, buf + n, CHUNK_SIZE - n);
		if (r < 0) {
			const char *msg = archive_error_string(f->outer);
			berth_error_set(&f->err, EBADMSG, "decompress layer: %s",
					msg ? msg : "read error");
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	digest_stream_update(&f->hash, buf, n);
	f->bytes += n;
	if (f->max_bytes && f->bytes > f->max_bytes) {
		berth_error_set(&f->err, EFBIG, "layer exceeds the limit of %llu bytes",
				(unsigned long long)f->max_bytes);
		return -1;
	}
	return (ssize_t)n;
}

static void *feed_thread(void *arg)
{
	struct feed *f = arg;
	for (;;) {
		pthread_mutex_lock(&f->lock);
		while (f->tail - f->head == CHUNKS && !f->cancel)
			pthread_cond_wait(&f->cond, &f->lock);
		bool cancel = f->cancel;
		uint64_t slot = f->tail;
		pthread_mutex_unlock(&f->lock);
		if (cancel)
			break;
		ssize_t n = feed_fill(f, chunk(f, slot));
		if (n <= 0)
			break;
		pthread_mutex_lock(&f->lock);
		f->len[slot % CHUNKS] = (size_t)n;
		f->tail++;
		pthread_cond_broadcast(&f->cond);
		pthread_mutex_unlock(&f->lock);
	}
	pthread_mutex_lock(&f->lock);
	f->done = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

/* The reader's side: gives the previous chunk back and waits for the next. Returns its length,
 * 0 at the end of the stream, -1 when the feeder failed. */
static ssize_t feed_next(struct feed *f, const void **ret)
{
	ssize_t n;
	pthread_mutex_lock(&f->lock);
	if (f->holding) {
		f->head++;
		f->holding = false;
		pthread_cond_broadcast(&f->cond);
	}
	while (f->tail == f->head && !f->done)
		pthread_cond_wait(&f->cond, &f->lock);
	if (f->tail != f->head) {
		*ret = chunk(f, f->head);
		n = (ssize_t)f->len[f->head % CHUNKS];
		f->holding = true;
	} else {
		n = f->err ? -1 : 0;
	}
	pthread_mutex_unlock(&f->lock);
	return n;
}

/* The feeder's error once it stopped on one (else NULL): the real cause when the tar reader
 * fails only because its stream was cut off. */
static const struct berth_error *feed_failure(struct feed *f)
{
	pthread_mutex_lock(&f->lock);
	const struct berth_error *e = f->done ? f->err : NULL;
	pthread_mutex_unlock(&f->lock);
	return e;
}

static la_ssize_t feed_read_cb(struct archive *a, void *data, const void **buf)
{
	struct feed *f = data;
	ssize_t n = feed_next(f, buf);
	if (n < 0)
		archive_set_error(a, f->err->code, "%s", f->err->msg);
	return n;
}

static int feed_start(struct feed *f, struct berth_error **err)
{
	/* the feeder takes no signals: they are the caller's to handle */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(&f->thread, NULL, feed_thread, f);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return berth_error_setsys(err, r, "start the layer decompression thread");
	f->started = true;
	return 0;
}

static int feed_open(struct feed *f, int blob_fd, uint64_t max_bytes, struct berth_error **err)
{
	f->max_bytes = max_bytes;
	f->mem = malloc((size_t)CHUNKS * CHUNK_SIZE);
	f->outer = archive_read_new();
	if (!f->mem || !f->outer)
		return berth_error_set(err, ENOMEM, "read layer: out of memory");
	int r = digest_stream_init(&f->hash, err);
	if (r < 0)
		return r;
	if (archive_read_support_filter_gzip(f->outer) < ARCHIVE_WARN ||
	    archive_read_support_filter_zstd(f->outer) < ARCHIVE_WARN ||
	    archive_read_support_format_raw(f->outer) != ARCHIVE_OK)
		return berth_error_set(err, ENOTSUP, "read layer: %s",
				       archive_error_string(f->outer));
	struct archive_entry *e;
	if (archive_read_open_fd(f->outer, blob_fd, BLOB_READ_SIZE) != ARCHIVE_OK ||
	    archive_read_next_header(f->outer, &e) != ARCHIVE_OK) {
		/* the raw format takes any byte, so "unrecognized format" (libarchive's
		 * ARCHIVE_ERRNO_FILE_FORMAT is EILSEQ) means there was none */
		if (archive_errno(f->outer) == EILSEQ)
			return berth_error_set(err, EBADMSG,
					       "layer is not a tar archive: the blob is empty");
		const char *msg = archive_error_string(f->outer);
		return berth_error_set(err, EBADMSG, "read layer: %s", msg ? msg : "read error");
	}
	/* libarchive would peel any number of layers of compression; a layer has one at most
	 * (the count includes the plain reader underneath) */
	if (archive_filter_count(f->outer) > 2)
		return berth_error_set(
			err, EBADMSG,
			"layer is not a tar archive (plain, gzip or zstd): compressed %d times",
			archive_filter_count(f->outer) - 1);
	return feed_start(f, err);
}

/* Reads what the tar reader left (end-of-archive blocks, padding) so that the diffID covers the
 * whole stream, then stops the feeder and writes the diffID. */
static int feed_finish(struct feed *f, char diff_id[DIGEST_LEN + 1], struct berth_error **err)
{
	const void *buf;
	ssize_t n;
	while ((n = feed_next(f, &buf)) > 0)
		;
	pthread_join(f->thread, NULL);
	f->started = false;
	if (n < 0) {
		int code = f->err->code;
		if (err && !*err)
			*err = TAKE_PTR(f->err);
		return -code;
	}
	digest_stream_final(&f->hash, diff_id);
	return 0;
}

static void feed_close(struct feed *f)
{
	if (f->started) {
		pthread_mutex_lock(&f->lock);
		f->cancel = true;
		pthread_cond_broadcast(&f->cond);
		pthread_mutex_unlock(&f->lock);
		pthread_join(f->thread, NULL);
	}
	archive_read_free(f->outer);
	digest_stream_free(&f->hash);
	free(f->mem);
	berth_error_free(f->err);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
}

static void archive_read_freep(struct archive **a)
{
	archive_read_free(*a);
}

/* ---- the unpacker's state and its messages ---- */

struct dir_time {
	char *path; /* "" for the root */
	struct timespec times[2];
};

struct unpacker {
	int root; /* the snapshot directory, opened for reading */
	const struct unpack_limits *limits;
	struct feed *feed;
	struct unpack_result res;
	uint64_t declared; /* the entries' sizes so far: a tar bomb is refused before it is written */
	const char *name; /* the current entry's name as the layer has it */
	char *cached_dir; /* the last parent directory resolved, and its fd */
	int cached_fd;
	struct dir_time *dirs; /* directory mtimes, set last: creating children changes them */
	size_t ndirs, dirs_cap;
};

static void cache_drop(struct unpacker *u)
{
	closep(&u->cached_fd);
	u->cached_fd = -EBADF;
	free(u->cached_dir);
	u->cached_dir = NULL;
}

static void unpacker_clear(struct unpacker *u)
{
	cache_drop(u);
	closep(&u->root);
	for (size_t i = 0; i < u->ndirs; i++)
		free(u->dirs[i].path);
	free(u->dirs);
}

/* A name fit for a one-line message: control characters become '?', and a long one is cut. */
static const char *shown(const char *s, char *buf, size_t size)
{
	size_t i = 0;
	if (!s)
		s = "";
	for (; s[i] && i + 4 < size; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	if (s[i]) {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

__attribute__((format(printf, 5, 0))) static int entry_vfail(const struct unpacker *u,
							     struct berth_error **err, int code,
							     bool sys, const char *fmt, va_list ap)
{
	char what[512], name[256];
	vsnprintf(what, sizeof(what), fmt, ap);
	shown(u->name, name, sizeof(name));
	if (sys)
		return berth_error_setsys(err, code, "layer entry \"%s\": %s", name, what);
	return berth_error_set(err, code, "layer entry \"%s\": %s", name, what);
}

/* "layer entry \"NAME\": what" */
__attribute__((format(printf, 4, 5))) static int
entry_fail(const struct unpacker *u, struct berth_error **err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = entry_vfail(u, err, code, false, fmt, ap);
	va_end(ap);
	return r;
}

/* The same with ": strerror(code)" appended. */
__attribute__((format(printf, 4, 5))) static int
entry_failsys(const struct unpacker *u, struct berth_error **err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = entry_vfail(u, err, code, true, fmt, ap);
	va_end(ap);
	return r;
}

/* A failure of the tar reader: the feeder's error when it caused it (a corrupt or oversized
 * stream), else libarchive's message. */
static int archive_fail(const struct unpacker *u, struct archive *a, struct berth_error **err)
{
	const struct berth_error *fe = feed_failure(u->feed);
	if (fe)
		return entry_fail(u, err, fe->code, "%s", fe->msg);
	const char *msg = archive_error_string(a);
	return entry_fail(u, err, EBADMSG, "%s", msg ? msg : "read error");
}

/* A path refused or not found while resolving beneath the root. */
static int path_fail(const struct unpacker *u, struct berth_error **err, int r, const char *what)
{
	if (r == -ELOOP || r == -EXDEV)
		return entry_fail(u, err, EPERM, "%spath goes through a symlink", what);
	if (r == -ENOTDIR)
		return entry_fail(u, err, ENOTDIR, "%sa parent is not a directory", what);
	return entry_failsys(u, err, -r, "%sresolve the parent directory", what);
}

/* ---- names and directories ---- */

/* The entry's path inside the layer: no "./" prefix, no empty or "." components, no trailing
 * "/"; "" is the root. Absolute paths and ".." components are refused (*why says which): they
 * name something outside. */
static int clean_path(const char *name, char **ret, const char **why)
{
	if (!name)
		return *why = "unreadable name refused", -EINVAL;
	if (!*name)
		return *why = "empty name refused", -EINVAL;
	if (*name == '/')
		return *why = "absolute path refused", -EINVAL;
	char *out = malloc(strlen(name) + 1), *o = out;
	if (!out)
		return *why = "out of memory", -ENOMEM;
	for (const char *p = name; *p;) {
		size_t len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			free(out);
			return *why = "\"..\" component refused", -EINVAL;
		}
		if (len > 0 && !(len == 1 && p[0] == '.')) {
			if (o != out)
				*o++ = '/';
			memcpy(o, p, len);
			o += len;
		}
		p += len;
		p += strspn(p, "/");
	}
	*o = '\0';
	*ret = out;
	return 0;
}

static int dup_cloexec(int fd)
{
	int r = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	return r < 0 ? -errno : r;
}

static int openat2_beneath(int at, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int fd = -1;
	/* EAGAIN: a concurrent rename somewhere on the system made the kernel give up; retry */
	for (int i = 0; i < 16; i++) {
		fd = (int)syscall(SYS_openat2, at, path, &how, sizeof(how));
		if (fd >= 0 || errno != EAGAIN)
			break;
	}
	return fd < 0 ? -errno : fd;
}

/* Opens the directory name in at, made if missing; a symlink there is refused (ELOOP). */
static int mkdir_open(int at, const char *name)
{
	if (mkdirat(at, name, 0755) < 0 && errno != EEXIST)
		return -errno;
	return openat2_beneath(at, name, O_RDONLY | O_DIRECTORY);
}

/* mkdir -p beneath the root, one component at a time, none of them a symlink. */
static int mkdir_beneath(int root, char *dir)
{
	_cleanup_close_ int fd = -EBADF;
	int at = root;
	for (char *p = dir;;) {
		char *slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		int next = mkdir_open(at, p);
		if (slash)
			*slash = '/';
		if (next < 0)
			return next;
		closep(&fd);
		at = fd = next;
		if (!slash)
			return TAKE_FD(fd);
		p = slash + 1;
	}
}

/* Opens the directory dir beneath the root (creating it when asked and missing); an owned fd. */
static int open_dir(const struct unpacker *u, const char *path, size_t len, bool create)
{
	_cleanup_free_ char *dir = strndup(path, len);
	if (!dir)
		return -ENOMEM;
	int fd = openat2_beneath(u->root, dir, O_RDONLY | O_DIRECTORY);
	if (fd == -ENOENT && create)
		fd = mkdir_beneath(u->root, dir);
	return fd;
}

static int cache_set(struct unpacker *u, const char *path, size_t len, int fd)
{
	cache_drop(u);
	u->cached_fd = fd;
	u->cached_dir = strndup(path, len);
	return u->cached_dir ? 0 : -ENOMEM;
}

/* The parent directory of the entry at path (its first dirlen bytes), made if missing; the fd
 * is borrowed (the root or the cache). */
static int parent_dir(struct unpacker *u, const char *path, size_t dirlen, int *ret_fd,
		      struct berth_error **err)
{
	if (dirlen == 0) {
		*ret_fd = u->root;
		return 0;
	}
	if (!u->cached_dir || strlen(u->cached_dir) != dirlen ||
	    memcmp(u->cached_dir, path, dirlen) != 0) {
		int fd = open_dir(u, path, dirlen, true);
		if (fd < 0)
			return path_fail(u, err, fd, "");
		if (cache_set(u, path, dirlen, fd) < 0)
			return entry_fail(u, err, ENOMEM, "out of memory");
	}
	*ret_fd = u->cached_fd;
	return 0;
}

/* Makes room for a new entry named base in pfd: removes what an earlier entry left there. */
static int clear_slot(struct unpacker *u, int pfd, const char *base)
{
	if (unlinkat(pfd, base, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	/* the cached directory may be inside the tree that goes; pfd itself is not */
	if (u->cached_fd != pfd)
		cache_drop(u);
	return remove_tree_at(pfd, base);
}

/* What one *at() call needs to make an entry's last component. */
struct node {
	mode_t mode;
	dev_t rdev;
	const char *target; /* symlink text */
	int tfd;            /* hardlink target: its parent and name */
	const char *tbase;
};

typedef int (*make_fn)(int pfd, const char *base, const struct node *n);

static int make_file(int pfd, const char *base, const struct node *n)
{
	int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
			n->mode);
	return fd < 0 ? -errno : fd;
}

static int make_dir(int pfd, const char *base, const struct node *n)
{
	return mkdirat(pfd, base, n->mode) < 0 ? -errno : 0;
}

static int make_symlink(int pfd, const char *base, const struct node *n)
{
	return symlinkat(n->target, pfd, base) < 0 ? -errno : 0;
}

static int make_link(int pfd, const char *base, const struct node *n)
{
	return linkat(n->tfd, n->tbase, pfd, base, 0) < 0 ? -errno : 0;
}

static int make_node(int pfd, const char *base, const struct node *n)
{
	return mknodat(pfd, base, n->mode, n->rdev) < 0 ? -errno : 0;
}

/* Later entries override earlier ones with the same path. */
static int make_replacing(struct unpacker *u, int pfd, const char *base, make_fn make,
			  const struct node *n)
{
	int r = make(pfd, base, n);
	if (r != -EEXIST)
		return r;
	r = clear_slot(u, pfd, base);
	return r < 0 ? r : make(pfd, base, n);
}

/* ---- metadata ---- */

struct meta {
	uid_t uid;
	gid_t gid;
	mode_t mode; /* permissions with setuid, setgid and sticky */
	struct timespec times[2];
};

static bool is_overlay_xattr(const char *name)
{
	/* overlayfs reads its own metadata from trusted.overlay.*, or user.overlay.* when mounted
	 * with userxattr: a layer carrying them could forge whiteouts, redirects or opaque dirs */
	return strncmp(name, "trusted.overlay.", 16) == 0 ||
	       strncmp(name, "user.overlay.", 13) == 0;
}

/* Reads and checks the entry's owner, mode, times and xattr names, before anything is made. */
static int entry_meta(const struct unpacker *u, struct archive_entry *e, struct meta *m,
		      struct berth_error **err)
{
	la_int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
	/* (uid_t)-1 would mean "leave unchanged" to chown */
	if (uid < 0 || uid >= UINT32_MAX || gid < 0 || gid >= UINT32_MAX)
		return entry_fail(u, err, EINVAL, "owner %lld:%lld out of range", (long long)uid,
				  (long long)gid);
	m->uid = (uid_t)uid;
	m->gid = (gid_t)gid;
	m->mode = archive_entry_perm(e) & 07777;
	m->times[0] = (struct timespec){ archive_entry_atime(e), archive_entry_atime_nsec(e) };
	if (!archive_entry_atime_is_set(e))
		m->times[0].tv_nsec = UTIME_OMIT;
	m->times[1] = (struct timespec){ archive_entry_mtime(e), archive_entry_mtime_nsec(e) };
	if (!archive_entry_mtime_is_set(e))
		m->times[1].tv_nsec = UTIME_OMIT;

	const char *name;
	const void *value;
	size_t size;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		char buf[128];
		if (is_overlay_xattr(name))
			return entry_fail(u, err, EPERM,
					  "xattr \"%s\" refused: it would forge overlayfs metadata",
					  shown(name, buf, sizeof(buf)));
	}
	return 0;
}

/* Sets the entry's xattrs on fd or, when fd < 0, on base in pfd without following it: a symlink
 * or a device node cannot be opened for fsetxattr, so its parent's fd names it through /proc. */
static int set_xattrs(const struct unpacker *u, struct archive_entry *e, int fd, int pfd,
		      const char *base, struct berth_error **err)
{
	if (archive_entry_xattr_reset(e) == 0)
		return 0;
	char path[PATH_MAX];
	if (fd < 0 &&
	    snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", pfd, base) >= (int)sizeof(path))
		return entry_fail(u, err, ENAMETOOLONG, "name too long");
	const char *name;
	const void *value;
	size_t size;
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		int r = fd >= 0 ? fsetxattr(fd, name, value, size, 0)
				: lsetxattr(path, name, value, size, 0);
		if (r == 0)
			continue;
		/* like containerd: a file system without xattrs loses them; and the kernel allows
		 * no user.* xattr on a symlink or device node at all */
		if (errno == EOPNOTSUPP ||
		    (fd < 0 && errno == EPERM && strncmp(name, "user.", 5) == 0)) {
			log_debug("layer entry \"%s\": xattr %s ignored: %s", u->name, name,
				  strerror(errno));
			continue;
		}
		char buf[128];
		return entry_failsys(u, err, errno, "set xattr %s", shown(name, buf, sizeof(buf)));
	}
	return 0;
}

/* Owner, mode and xattrs of an open file or directory, each changed only when creating it did
 * not already give the right one: a stat is cheap, while every change of an inode is a journal
 * transaction on ext4, and most files of a layer belong to root with a common mode. chown
 * clears setuid, setgid and security.capability, so it comes first (files are created without
 * setuid and setgid, so that a mode with them always takes the chmod). */
static int meta_fd(const struct unpacker *u, struct archive_entry *e, const struct meta *m, int fd,
		   struct berth_error **err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return entry_failsys(u, err, errno, "stat");
	bool owner = st.st_uid != m->uid || st.st_gid != m->gid;
	if (owner && fchown(fd, m->uid, m->gid) < 0)
		return entry_failsys(u, err, errno, "chown");
	if ((st.st_mode & 07777) != m->mode && fchmod(fd, m->mode) < 0)
		return entry_failsys(u, err, errno, "chmod");
	return set_xattrs(u, e, fd, -EBADF, NULL, err);
}

/* The same, and the times, for a symlink, FIFO or device node, by name and never followed. */
static int meta_at(const struct unpacker *u, struct archive_entry *e, const struct meta *m, int pfd,
		   const char *base, bool is_symlink, struct berth_error **err)
{
	if (fchownat(pfd, base, m->uid, m->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return entry_failsys(u, err, errno, "chown");
	if (!is_symlink && fchmodat(pfd, base, m->mode, AT_SYMLINK_NOFOLLOW) < 0)
		return entry_failsys(u, err, errno, "chmod");
	int r = set_xattrs(u, e, -EBADF, pfd, base, err);
	if (r < 0)
		return r;
	if (utimensat(pfd, base, m->times, AT_SYMLINK_NOFOLLOW) < 0)
		return entry_failsys(u, err, errno, "set times");
	return 0;
}

static int dir_time_add(struct unpacker *u, const char *path, const struct meta *m,
			struct berth_error **err)
{
	if (u->ndirs == u->dirs_cap) {
		size_t cap = u->dirs_cap ? 2 * u->dirs_cap : 64;
		struct dir_time *d = realloc(u->dirs, cap * sizeof(*d));
		if (!d)
			return entry_fail(u, err, ENOMEM, "out of memory");
		u->dirs = d;
		u->dirs_cap = cap;
	}
	char *p = strdup(path);
	if (!p)
		return entry_fail(u, err, ENOMEM, "out of memory");
	u->dirs[u->ndirs++] = (struct dir_time){ p, { m->times[0], m->times[1] } };
	return 0;
}

/* A directory a later entry replaced is skipped. */
static int dir_times_apply(struct unpacker *u, struct berth_error **err)
{
	for (size_t i = 0; i < u->ndirs; i++) {
		const struct dir_time *d = &u->dirs[i];
		_cleanup_close_ int fd =
			d->path[0] ? openat2_beneath(u->root, d->path, O_RDONLY | O_DIRECTORY)
				   : dup_cloexec(u->root);
		if (fd < 0)
			continue;
		char name[256];
		if (futimens(fd, d->times) < 0)
			return berth_error_setsys(err, errno, "layer entry \"%s\": set times",
						  shown(d->path, name, sizeof(name)));
	}
	return 0;
}

/* ---- one entry of each kind ---- */

static int copy_data(const struct unpacker *u, struct archive *a, struct archive_entry *e, int fd,
		     struct berth_error **err)
{
	const void *buf;
	size_t len;
	la_int64_t off, pos = 0;
	for (;;) {
		int r = archive_read_data_block(a, &buf, &len, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return archive_fail(u, a, err);
		/* a sparse file's data comes in pieces with holes between them */
		if (off != pos && lseek(fd, off, SEEK_SET) < 0)
			return entry_failsys(u, err, errno, "seek");
		r = write_all(fd, buf, len);
		if (r < 0)
			return entry_failsys(u, err, -r, "write");
		pos = off + (la_int64_t)len;
	}
	if (pos < archive_entry_size(e) && ftruncate(fd, archive_entry_size(e)) < 0)
		return entry_failsys(u, err, errno, "truncate");
	return 0;
}

static int unpack_file(struct unpacker *u, struct archive *a, struct archive_entry *e,
		       const struct meta *m, int pfd, const char *base, struct berth_error **err)
{
	/* created with its permissions (less the umask): often no chmod is needed then */
	_cleanup_close_ int fd =
		make_replacing(u, pfd, base, make_file, &(struct node){ .mode = m->mode & 0777 });
	if (fd < 0)
		return entry_failsys(u, err, -fd, "create");
	int r = copy_data(u, a, e, fd, err);
	if (r < 0)
		return r;
	u->res.content_bytes += (uint64_t)archive_entry_size(e);
	r = meta_fd(u, e, m, fd, err);
	if (r < 0)
		return r;
	if (futimens(fd, m->times) < 0)
		return entry_failsys(u, err, errno, "set times");
	return 0;
}

/* An existing directory stays (with its children) and takes the new metadata. The new directory
 * becomes the cached parent: its children come next. */
static int unpack_dir(struct unpacker *u, struct archive_entry *e, const struct meta *m, int pfd,
		      const char *path, const char *base, struct berth_error **err)
{
	const struct node n = { .mode = m->mode & 0777 };
	int r = make_dir(pfd, base, &n);
	struct stat st;
	if (r == -EEXIST && fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(st.st_mode))
		r = 0;
	else if (r == -EEXIST)
		r = make_replacing(u, pfd, base, make_dir, &n);
	if (r < 0)
		return entry_failsys(u, err, -r, "mkdir");
	_cleanup_close_ int fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return entry_failsys(u, err, errno, "open");
	r = meta_fd(u, e, m, fd, err);
	if (r < 0)
		return r;
	r = dir_time_add(u, path, m, err);
	if (r < 0)
		return r;
	if (cache_set(u, path, strlen(path), TAKE_FD(fd)) < 0)
		return entry_fail(u, err, ENOMEM, "out of memory");
	return 0;
}

/* "." or "./": metadata for the snapshot directory itself. */
static int unpack_root(struct unpacker *u, struct archive_entry *e, const struct meta *m,
		       struct berth_error **err)
{
	if (archive_entry_filetype(e) != AE_IFDIR || archive_entry_hardlink(e))
		return entry_fail(u, err, EINVAL, "only a directory can be the layer's root");
	int r = meta_fd(u, e, m, u->root, err);
	return r < 0 ? r : dir_time_add(u, "", m, err);
}

static int unpack_symlink(struct unpacker *u, struct archive_entry *e, const struct meta *m,
			  int pfd, const char *base, struct berth_error **err)
{
	/* any text is fine: nothing here ever follows it */
	const char *target = archive_entry_symlink(e);
	if (!target || !*target)
		return entry_fail(u, err, EINVAL, "symlink without a target");
	int r = make_replacing(u, pfd, base, make_symlink, &(struct node){ .target = target });
	if (r < 0)
		return entry_failsys(u, err, -r, "symlink");
	return meta_at(u, e, m, pfd, base, true, err);
}

/* FIFOs and device nodes (the caller decided that devices are wanted). */
static int unpack_node(struct unpacker *u, struct archive_entry *e, const struct meta *m, int pfd,
		       const char *base, struct berth_error **err)
{
	struct node n = { .mode = archive_entry_filetype(e) | 0600, .rdev = archive_entry_rdev(e) };
	int r = make_replacing(u, pfd, base, make_node, &n);
	if (r < 0)
		return entry_failsys(u, err, -r, "mknod");
	return meta_at(u, e, m, pfd, base, false, err);
}

/* The target must be an entry of this layer already unpacked: resolved beneath the root like
 * any path, and linked without following it. */
static int unpack_hardlink(struct unpacker *u, struct archive_entry *e, int pfd, const char *path,
			   const char *base, struct berth_error **err)
{
	const char *link = archive_entry_hardlink(e), *why = NULL;
	char shown_link[256];
	shown(link, shown_link, sizeof(shown_link));
	_cleanup_free_ char *target = NULL;
	int r = clean_path(link, &target, &why);
	if (r < 0)
		return entry_fail(u, err, -r, "hardlink target \"%s\": %s", shown_link, why);
	if (!*target)
		return entry_fail(u, err, EINVAL, "hardlink target \"%s\" is the layer's root",
				  shown_link);
	if (strcmp(target, path) == 0)
		return 0; /* a link to itself: already there */
	char *slash = strrchr(target, '/');
	const char *tbase = slash ? slash + 1 : target;
	_cleanup_close_ int tfd =
		slash ? open_dir(u, target, (size_t)(slash - target), false) : dup_cloexec(u->root);
	char what[300];
	snprintf(what, sizeof(what), "hardlink target \"%s\": ", shown_link);
	if (tfd < 0 && tfd != -ENOENT)
		return path_fail(u, err, tfd, what);
	struct stat st;
	if (tfd < 0 || fstatat(tfd, tbase, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return entry_fail(u, err, ENOENT,
				  "hardlink target \"%s\" is not an entry of this layer",
				  shown_link);
	r = make_replacing(u, pfd, base, make_link, &(struct node){ .tfd = tfd, .tbase = tbase });
	if (r < 0)
		return entry_failsys(u, err, -r, "%slink", what);
	return 0;
}

/* OCI whiteouts as overlayfs has them. */
static int unpack_whiteout(struct unpacker *u, int pfd, const char *base, struct berth_error **err)
{
	if (strcmp(base, WHITEOUT_OPAQUE) == 0) {
		if (fsetxattr(pfd, "trusted.overlay.opaque", "y", 1, 0) < 0)
			return entry_failsys(u, err, errno, "set trusted.overlay.opaque");
		return 0;
	}
	/* other ".wh..wh." names are AUFS's own bookkeeping (.wh..wh.plnk, .wh..wh.aufs), left in
	 * some old Docker layers: they hide nothing, and the image spec says to ignore them */
	if (strncmp(base, WHITEOUT_META, strlen(WHITEOUT_META)) == 0)
		return 0;
	const char *name = base + strlen(WHITEOUT);
	if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return entry_fail(u, err, EINVAL, "whiteout without a name");
	/* a 0/0 character device: a whiteout, not a device, so made even when devices are not */
	int r = make_replacing(u, pfd, name, make_node,
			       &(struct node){ .mode = S_IFCHR, .rdev = makedev(0, 0) });
	if (r < 0)
		return entry_failsys(u, err, -r, "mknod whiteout");
	return 0;
}

static int unpack_typed(struct unpacker *u, struct archive *a, struct archive_entry *e,
			const struct meta *m, int pfd, const char *path, const char *base,
			struct berth_error **err)
{
	switch (archive_entry_filetype(e)) {
	case AE_IFREG:
		return unpack_file(u, a, e, m, pfd, base, err);
	case AE_IFDIR:
		return unpack_dir(u, e, m, pfd, path, base, err);
	case AE_IFLNK:
		return unpack_symlink(u, e, m, pfd, base, err);
	case AE_IFCHR:
	case AE_IFBLK:
		if (!u->limits->allow_devices) {
			u->res.devices_dropped++;
			return 0;
		}
		return unpack_node(u, e, m, pfd, base, err);
	case AE_IFIFO:
		return unpack_node(u, e, m, pfd, base, err);
	default:
		return entry_fail(u, err, ENOTSUP, "unsupported file type 0%o",
				  (unsigned)archive_entry_filetype(e));
	}
}

static int unpack_entry(struct unpacker *u, struct archive *a, struct archive_entry *e,
			struct berth_error **err)
{
	_cleanup_free_ char *path = NULL;
	const char *why = NULL;
	int r = clean_path(u->name, &path, &why);
	if (r < 0)
		return entry_fail(u, err, -r, "%s", why);
	struct meta m;
	r = entry_meta(u, e, &m, err);
	if (r < 0)
		return r;
	if (!*path)
		return unpack_root(u, e, &m, err);

	char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	int pfd = -EBADF;
	r = parent_dir(u, path, slash ? (size_t)(slash - path) : 0, &pfd, err);
	if (r < 0)
		return r;
	if (strncmp(base, WHITEOUT, strlen(WHITEOUT)) == 0)
		return unpack_whiteout(u, pfd, base, err);
	if (archive_entry_hardlink(e))
		return unpack_hardlink(u, e, pfd, path, base, err);
	return unpack_typed(u, a, e, &m, pfd, path, base, err);
}

/* The next header could not be read: a stream that is no tar at all, or one cut off or corrupt
 * after some entries. */
static int header_fail(const struct unpacker *u, struct archive *a, struct berth_error **err)
{
	const struct berth_error *fe = feed_failure(u->feed);
	if (fe)
		return berth_error_set(err, fe->code, "%s", fe->msg);
	const char *msg = archive_error_string(a);
	if (u->res.entries == 0)
		return berth_error_set(err, EBADMSG,
				       "layer is not a tar archive (plain, gzip or zstd): %s",
				       msg ? msg : "unknown format");
	return berth_error_set(err, EBADMSG, "read layer after entry %llu: %s",
			       (unsigned long long)u->res.entries, msg ? msg : "read error");
}

static int unpack_entries(struct unpacker *u, struct archive *a, struct berth_error **err)
{
	for (;;) {
		struct archive_entry *e;
		u->name = NULL;
		int r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			return 0;
		/* ARCHIVE_RETRY too: a damaged header the reader would skip to resynchronise */
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return header_fail(u, a, err);
		u->name = archive_entry_pathname(e);
		u->res.entries++;
		if (u->limits->max_entries && u->res.entries > u->limits->max_entries)
			return entry_fail(u, err, EFBIG, "layer exceeds the limit of %llu entries",
					  (unsigned long long)u->limits->max_entries);
		if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0)
			u->declared += (uint64_t)archive_entry_size(e);
		if (u->limits->max_bytes && u->declared > u->limits->max_bytes)
			return entry_fail(u, err, EFBIG, "layer exceeds the limit of %llu bytes",
					  (unsigned long long)u->limits->max_bytes);
		r = unpack_entry(u, a, e, err);
		if (r < 0)
			return r;
	}
}

/* Opening reads the first header to tell the format. */
static int tar_reader_open(struct unpacker *u, struct archive **ret, struct berth_error **err)
{
	_cleanup_(archive_read_freep) struct archive *a = archive_read_new();
	if (!a)
		return berth_error_set(err, ENOMEM, "read layer: out of memory");
	/* tar only (ustar, pax, GNU), and no filter: the feeder already decompressed */
	if (archive_read_support_format_tar(a) != ARCHIVE_OK)
		return berth_error_set(err, ENOTSUP, "read layer: %s", archive_error_string(a));
	if (archive_read_open(a, u->feed, NULL, feed_read_cb, NULL) != ARCHIVE_OK)
		return header_fail(u, a, err);
	*ret = TAKE_PTR(a);
	return 0;
}

int unpack_layer(int blob_fd, int dirfd, const struct unpack_limits *limits,
		 struct unpack_result *res, struct berth_error **err)
{
	static const struct unpack_limits unlimited;
	_cleanup_(unpacker_clear) struct unpacker u = {
		.root = -EBADF,
		.cached_fd = -EBADF,
		.limits = limits ? limits : &unlimited,
	};
	u.root = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (u.root < 0)
		return berth_error_setsys(err, errno, "open the layer's directory");

	_cleanup_(feed_close) struct feed f = { .lock = PTHREAD_MUTEX_INITIALIZER,
						.cond = PTHREAD_COND_INITIALIZER };
	u.feed = &f;
	int r = feed_open(&f, blob_fd, u.limits->max_bytes, err);
	if (r < 0)
		return r;
	_cleanup_(archive_read_freep) struct archive *a = NULL;
	r = tar_reader_open(&u, &a, err);
	if (r < 0)
		return r;
	r = unpack_entries(&u, a, err);
	if (r < 0)
		return r;
	r = feed_finish(&f, u.res.diff_id, err);
	if (r < 0)
		return r;
	u.res.tar_bytes = f.bytes;
	r = dir_times_apply(&u, err);
	if (r < 0)
		return r;
	*res = u.res;
	return 0;
}
