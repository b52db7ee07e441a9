/* image/unpack.c: layers made here with libarchive's writer (pax, plain, gzip or zstd), unpacked
 * into a per-test temporary directory and checked with lstat, readlink and getxattr; then every
 * hostile layer we know of, each of which must be refused with nothing written outside. */
#include "unit.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "image/unpack-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <locale.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

enum filter { PLAIN, GZIP, ZSTD, BZIP2, XZ };

/* One tar entry to write: zero fields take the defaults noted. */
struct ent {
	const char *name; /* NULL ends a list */
	unsigned type;    /* AE_IF*; 0: a regular file */
	unsigned mode;    /* 0: 0644, or 0755 for a directory */
	const char *data;
	const char *symlink;
	const char *hardlink;
	int64_t uid, gid;
	dev_t rdev;
	const char *xattr; /* one xattr, name and value */
	const void *xvalue;
	size_t xlen;  /* 0: strlen(xvalue) */
	time_t mtime; /* 0: 1700000000 */
};

#define LAYER(filter, ...) make_layer(filter, (const struct ent[]){ __VA_ARGS__, { 0 } })

struct fx {
	struct unit_tmpdir dir;
	struct unit_tmpdir outside; /* where hostile layers aim */
	struct unpack_result res;
	struct berth_error *err;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->dir.fd = f->outside.fd = -1;
	if (unit_tmpdir_create(&f->dir) < 0 || unit_tmpdir_create(&f->outside) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	unit_tmpdir_remove(&f->dir);
	unit_tmpdir_remove(&f->outside);
	berth_error_free(f->err);
	free(f);
	return 0;
}

/* ---- making layers ---- */

static void add_filter(struct archive *a, enum filter filter)
{
	int r = ARCHIVE_OK;
	switch (filter) {
	case PLAIN:
		break;
	case GZIP:
		r = archive_write_add_filter_gzip(a);
		break;
	case ZSTD:
		r = archive_write_add_filter_zstd(a);
		break;
	case BZIP2:
		r = archive_write_add_filter_bzip2(a);
		break;
	case XZ:
		r = archive_write_add_filter_xz(a);
		break;
	}
	assert_int_equal(r, ARCHIVE_OK);
}

static void write_ent(struct archive *a, const struct ent *x)
{
	struct archive_entry *e = archive_entry_new();
	unsigned type = x->type ? x->type : AE_IFREG;
	size_t len = x->data ? strlen(x->data) : 0;
	archive_entry_set_pathname(e, x->name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, x->mode ? x->mode : type == AE_IFDIR ? 0755 : 0644);
	archive_entry_set_uid(e, x->uid);
	archive_entry_set_gid(e, x->gid);
	archive_entry_set_mtime(e, x->mtime ? x->mtime : 1700000000, 0);
	if (x->symlink)
		archive_entry_set_symlink(e, x->symlink);
	if (x->hardlink)
		archive_entry_set_hardlink(e, x->hardlink);
	if (x->rdev)
		archive_entry_set_rdev(e, x->rdev);
	if (type == AE_IFREG && !x->hardlink)
		archive_entry_set_size(e, (la_int64_t)len);
	if (x->xattr)
		archive_entry_xattr_add_entry(e, x->xattr, x->xvalue,
					      x->xlen ? x->xlen : strlen(x->xvalue));
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	if (len)
		assert_int_equal(archive_write_data(a, x->data, len), (la_ssize_t)len);
	archive_entry_free(e);
}

/* A pax layer in a memfd at offset 0. A plain one is padded to libarchive's 10 KiB block. */
static int make_layer(enum filter filter, const struct ent *ents)
{
	int fd = memfd_create("layer", MFD_CLOEXEC);
	assert_true(fd >= 0);
	struct archive *a = archive_write_new();
	assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	add_filter(a, filter);
	if (filter == PLAIN)
		assert_int_equal(archive_write_set_bytes_in_last_block(a, 10240), ARCHIVE_OK);
	assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
	for (; ents->name; ents++)
		write_ent(a, ents);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* buf compressed as it is (libarchive's raw format, no padding), in a memfd at offset 0. */
static int compress_blob(const void *buf, size_t len, enum filter filter)
{
	int fd = memfd_create("blob", MFD_CLOEXEC);
	assert_true(fd >= 0);
	struct archive *a = archive_write_new();
	assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
	add_filter(a, filter);
	assert_int_equal(archive_write_set_bytes_in_last_block(a, 1), ARCHIVE_OK);
	assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "data");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, (la_int64_t)len);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	assert_int_equal(archive_write_data(a, buf, len), (la_ssize_t)len);
	archive_entry_free(e);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

static int blob_of(const void *buf, size_t len)
{
	int fd = memfd_create("blob", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write_all(fd, buf, len), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* The whole memfd, and its length; the memfd is closed. */
static char *take_bytes(int fd, size_t *len)
{
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	char *buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	*len = (size_t)st.st_size;
	close(fd);
	return buf;
}

/* ---- unpacking and looking ---- */

static int unpack_into(struct fx *f, int blob, int dirfd, const struct unpack_limits *limits)
{
	berth_error_freep(&f->err);
	int r = unpack_layer(blob, dirfd, limits, &f->res, &f->err);
	close(blob);
	if (r == 0)
		assert_null(f->err);
	return r;
}

static void unpack_ok(struct fx *f, int blob)
{
	int r = unpack_into(f, blob, f->dir.fd, NULL);
	if (r < 0)
		fail_msg("unpack: %s", f->err ? f->err->msg : "(no message)");
}

/* Entries of the directory, "." and ".." aside. */
static int count_entries(int dirfd)
{
	DIR *d = fdopendir(openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* The layer is refused with a message containing each needle, and nothing new is outside. */
static void refused(struct fx *f, int blob, const char *needle, const char *needle2)
{
	int outside = count_entries(f->outside.fd);
	assert_true(unpack_into(f, blob, f->dir.fd, NULL) < 0);
	assert_int_equal(count_entries(f->outside.fd), outside);
	assert_non_null(f->err);
	assert_true(f->err->code > 0);
	assert_contains(f->err->msg, needle);
	if (needle2)
		assert_contains(f->err->msg, needle2);
	assert_null(strchr(f->err->msg, '\n'));
}

static struct stat lst(struct fx *f, const char *path)
{
	struct stat st;
	if (fstatat(f->dir.fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		fail_msg("lstat %s: %s", path, strerror(errno));
	return st;
}

static bool exists(int dirfd, const char *path)
{
	struct stat st;
	return fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static void assert_content(struct fx *f, const char *path, const char *want)
{
	char *got = NULL;
	if (read_file_at(f->dir.fd, path, &got, NULL, NULL) < 0)
		fail_msg("read %s", path);
	assert_string_equal(got, want);
	free(got);
}

static void assert_link(struct fx *f, const char *path, const char *want)
{
	char buf[PATH_MAX];
	ssize_t n = readlinkat(f->dir.fd, path, buf, sizeof(buf) - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

static int subdir(struct fx *f, const char *name)
{
	assert_int_equal(mkdirat(f->dir.fd, name, 0755), 0);
	int fd = openat(f->dir.fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

/* ---- what a layer holds ---- */

static void test_files_dirs_symlinks(void **state)
{
	struct fx *f = *state;
	unpack_ok(f, LAYER(GZIP, { .name = "etc/", .type = AE_IFDIR },
			   { .name = "etc/hosts", .data = "127.0.0.1 localhost\n" },
			   { .name = "./bin/", .type = AE_IFDIR, .mode = 0750 },
			   { .name = "./bin/sh", .data = "#!", .mode = 0755 },
			   { .name = "bin/rsh", .type = AE_IFLNK, .symlink = "sh" },
			   { .name = "var/run", .type = AE_IFLNK, .symlink = "/run" },
			   { .name = "deep/er//still/empty", .data = "" }));
	assert_content(f, "etc/hosts", "127.0.0.1 localhost\n");
	assert_content(f, "bin/sh", "#!");
	assert_int_equal(lst(f, "bin").st_mode, S_IFDIR | 0750);
	assert_int_equal(lst(f, "bin/sh").st_mode, S_IFREG | 0755);
	assert_int_equal(lst(f, "etc/hosts").st_mode, S_IFREG | 0644);
	assert_link(f, "bin/rsh", "sh");
	assert_link(f, "var/run", "/run");
	/* parents that no entry names are made as plain 0755 directories */
	assert_int_equal(lst(f, "var").st_mode, S_IFDIR | 0755);
	assert_int_equal(lst(f, "deep/er/still").st_mode, S_IFDIR | 0755);
	assert_int_equal(lst(f, "deep/er/still/empty").st_size, 0);
	assert_int_equal(f->res.entries, 7);
	assert_int_equal(f->res.content_bytes, 22);
	assert_int_equal(f->res.devices_dropped, 0);
}

static void test_hardlinks_share_the_inode(void **state)
{
	struct fx *f = *state;
	unpack_ok(f,
		  LAYER(PLAIN, { .name = "a", .data = "shared" },
			{ .name = "dir/b", .hardlink = "a" }, { .name = "./c", .hardlink = "./a" },
			{ .name = "dir/d", .hardlink = "dir/b" }));
	struct stat a = lst(f, "a");
	assert_int_equal(a.st_nlink, 4);
	assert_int_equal(lst(f, "dir/b").st_ino, a.st_ino);
	assert_int_equal(lst(f, "c").st_ino, a.st_ino);
	assert_int_equal(lst(f, "dir/d").st_ino, a.st_ino);
	assert_content(f, "c", "shared");
	assert_int_equal(f->res.content_bytes, 6);
}

static void test_hardlink_to_symlink_links_the_symlink(void **state)
{
	struct fx *f = *state;
	unpack_ok(f, LAYER(PLAIN, { .name = "s", .type = AE_IFLNK, .symlink = "/etc/passwd" },
			   { .name = "t", .hardlink = "s" }));
	assert_true(S_ISLNK(lst(f, "t").st_mode));
	assert_int_equal(lst(f, "t").st_ino, lst(f, "s").st_ino);
}

static void test_fifo(void **state)
{
	struct fx *f = *state;
	unpack_ok(
		f,
		LAYER(PLAIN,
		      { .name = "run/fifo", .type = AE_IFIFO, .mode = 0620, .uid = 7, .gid = 8 }));
	struct stat st = lst(f, "run/fifo");
	assert_int_equal(st.st_mode, S_IFIFO | 0620);
	assert_int_equal(st.st_uid, 7);
	assert_int_equal(st.st_gid, 8);
}

static void test_owner_mode_setuid(void **state)
{
	struct fx *f = *state;
	if (geteuid() != 0)
		skip();
	unpack_ok(f,
		  LAYER(PLAIN,
			{ .name = "su", .data = "x", .mode = 04755, .uid = 1000, .gid = 2000 },
			{ .name = "sg", .data = "x", .mode = 02711, .uid = 1 },
			{ .name = "tmp", .type = AE_IFDIR, .mode = 01777, .uid = 33, .gid = 44 },
			{ .name = "tmp/l", .type = AE_IFLNK, .symlink = "x", .uid = 5, .gid = 6 },
			{ .name = "big", .data = "x", .uid = 4000000000, .gid = 4000000001 }));
	struct stat st = lst(f, "su");
	assert_int_equal(st.st_mode, S_IFREG | 04755); /* chmod after chown, which clears setuid */
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 2000);
	assert_int_equal(lst(f, "sg").st_mode, S_IFREG | 02711);
	st = lst(f, "tmp");
	assert_int_equal(st.st_mode, S_IFDIR | 01777);
	assert_int_equal(st.st_uid, 33);
	assert_int_equal(st.st_gid, 44);
	st = lst(f, "tmp/l");
	assert_int_equal(st.st_uid, 5);
	assert_int_equal(st.st_gid, 6);
	assert_int_equal(lst(f, "big").st_uid, 4000000000u);
	assert_int_equal(lst(f, "big").st_gid, 4000000001u);
}

/* Modes and owners are exact whatever creating the file gave: a umask that takes bits away, a
 * setgid parent whose group and setgid bit new entries would inherit. */
static void test_umask_and_setgid_parent(void **state)
{
	struct fx *f = *state;
	mode_t old = umask(0077);
	unpack_ok(f, LAYER(PLAIN, { .name = "g/", .type = AE_IFDIR, .mode = 02775, .gid = 50 },
			   { .name = "g/f", .data = "x", .mode = 0644 },
			   { .name = "g/sub/", .type = AE_IFDIR, .mode = 0755 },
			   { .name = "g/su", .data = "x", .mode = 04755, .gid = 50 },
			   { .name = "g/x", .data = "x", .mode = 0644, .uid = 0, .gid = 50 }));
	umask(old);
	assert_int_equal(lst(f, "g").st_mode, S_IFDIR | 02775);
	struct stat st = lst(f, "g/f");
	assert_int_equal(st.st_mode, S_IFREG | 0644);
	assert_int_equal(st.st_gid, 0);
	st = lst(f, "g/sub");
	assert_int_equal(st.st_mode, S_IFDIR | 0755);
	assert_int_equal(st.st_gid, 0);
	assert_int_equal(lst(f, "g/su").st_mode, S_IFREG | 04755);
	assert_int_equal(lst(f, "g/x").st_gid, 50);
}

static void test_owner_out_of_range_refused(void **state)
{
	struct fx *f = *state;
	/* 2^32-1 is (uid_t)-1, which chown takes as "leave as it is" */
	refused(f, LAYER(PLAIN, { .name = "f", .data = "x", .uid = 4294967295 }),
		"layer entry \"f\"", "out of range");
}

static void test_root_entry_sets_root_metadata(void **state)
{
	struct fx *f = *state;
	unpack_ok(f, LAYER(PLAIN,
			   { .name = "./",
			     .type = AE_IFDIR,
			     .mode = 0750,
			     .uid = 3,
			     .mtime = 1000000000 },
			   { .name = "./x", .data = "1" }));
	struct stat st;
	assert_int_equal(fstat(f->dir.fd, &st), 0);
	assert_int_equal(st.st_mode, S_IFDIR | 0750);
	assert_int_equal(st.st_uid, 3);
	assert_int_equal(st.st_mtim.tv_sec, 1000000000);
	assert_content(f, "x", "1");
}

static void test_root_as_a_file_refused(void **state)
{
	struct fx *f = *state;
	refused(f, LAYER(PLAIN, { .name = ".", .data = "x" }), "layer entry \".\"",
		"only a directory");
}

static void test_mtimes_directories_last(void **state)
{
	struct fx *f = *state;
	unpack_ok(f, LAYER(PLAIN, { .name = "d", .type = AE_IFDIR, .mtime = 1234567890 },
			   { .name = "d/f", .data = "x", .mtime = 1000000000 },
			   { .name = "d/s", .type = AE_IFLNK, .symlink = "f", .mtime = 1100000000 },
			   { .name = "d/sub/g", .data = "y" }));
	assert_int_equal(lst(f, "d").st_mtim.tv_sec, 1234567890);
	assert_int_equal(lst(f, "d/f").st_mtim.tv_sec, 1000000000);
	assert_int_equal(lst(f, "d/s").st_mtim.tv_sec, 1100000000);
}

static void test_xattrs(void **state)
{
	struct fx *f = *state;
	/* vfs_cap_data revision 2, effective, permitted CAP_NET_BIND_SERVICE */
	static const unsigned char cap[20] = { 0x01, 0x00, 0x00, 0x02, 0x00, 0x04 };
	unpack_ok(f,
		  LAYER(PLAIN,
			{ .name = "ping",
			  .data = "elf",
			  .mode = 0755,
			  .uid = 1000,
			  .xattr = "security.capability",
			  .xvalue = cap,
			  .xlen = sizeof(cap) },
			{ .name = "f", .data = "x", .xattr = "user.note", .xvalue = "hello" },
			{ .name = "d", .type = AE_IFDIR, .xattr = "user.dir", .xvalue = "yes" },
			{ .name = "l",
			  .type = AE_IFLNK,
			  .symlink = "f",
			  .xattr = "trusted.berth",
			  .xvalue = "t" },
			/* the kernel allows no user.* xattr on a symlink: dropped, not an error */
			{ .name = "l2",
			  .type = AE_IFLNK,
			  .symlink = "f",
			  .xattr = "user.x",
			  .xvalue = "u" }));
	char path[128], buf[64];
	snprintf(path, sizeof(path), "%s/ping", f->dir.path);
	/* set after the chown, which would have cleared it */
	assert_int_equal(getxattr(path, "security.capability", buf, sizeof(buf)), sizeof(cap));
	assert_memory_equal(buf, cap, sizeof(cap));
	snprintf(path, sizeof(path), "%s/f", f->dir.path);
	assert_int_equal(getxattr(path, "user.note", buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	snprintf(path, sizeof(path), "%s/d", f->dir.path);
	assert_int_equal(getxattr(path, "user.dir", buf, sizeof(buf)), 3);
	snprintf(path, sizeof(path), "%s/l", f->dir.path);
	assert_int_equal(lgetxattr(path, "trusted.berth", buf, sizeof(buf)), 1);
	/* not on the file the symlink points to */
	snprintf(path, sizeof(path), "%s/f", f->dir.path);
	assert_int_equal(getxattr(path, "trusted.berth", buf, sizeof(buf)), -1);
}

static void test_long_and_utf8_names(void **state)
{
	struct fx *f = *state;
	char name[400];
	memset(name, 'n', sizeof(name));
	for (size_t i = 50; i < 350; i += 50)
		name[i] = '/';
	name[sizeof(name) - 1] = '\0';
	/* written as Go and Docker write it (a pax path in UTF-8), unpacked in the C locale */
	assert_non_null(setlocale(LC_CTYPE, "C.UTF-8"));
	int blob = LAYER(PLAIN, { .name = name, .data = "long" },
			 { .name = "caf\xc3\xa9", .data = "utf8" });
	setlocale(LC_CTYPE, "C");
	unpack_ok(f, blob);
	assert_content(f, name, "long");
	assert_content(f, "caf\xc3\xa9", "utf8");
}

static void test_sparse_file(void **state)
{
	struct fx *f = *state;
	int fd = memfd_create("layer", MFD_CLOEXEC);
	struct archive *a = archive_write_new();
	assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "sparse");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, 3 << 20);
	archive_entry_sparse_add_entry(e, 0, 4);
	archive_entry_sparse_add_entry(e, 1 << 20, 4);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	/* the writer takes the whole file and stores only the data regions */
	char *whole = calloc(1, 3 << 20);
	memcpy(whole, "head", 4);
	memcpy(whole + (1 << 20), "tail", 4);
	assert_int_equal(archive_write_data(a, whole, 3 << 20), 3 << 20);
	free(whole);
	archive_entry_free(e);
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	lseek(fd, 0, SEEK_SET);
	unpack_ok(f, fd);
	struct stat st = lst(f, "sparse");
	assert_int_equal(st.st_size, 3 << 20);
	char buf[4];
	int in = openat(f->dir.fd, "sparse", O_RDONLY | O_CLOEXEC);
	assert_int_equal(pread(in, buf, 4, 0), 4);
	assert_memory_equal(buf, "head", 4);
	assert_int_equal(pread(in, buf, 4, 1 << 20), 4);
	assert_memory_equal(buf, "tail", 4);
	assert_int_equal(pread(in, buf, 4, 4), 4);
	assert_memory_equal(buf, "\0\0\0\0", 4);
	close(in);
}

/* ---- whiteouts ---- */

static void test_whiteouts(void **state)
{
	struct fx *f = *state;
	struct unpack_limits limits = { 0 }; /* devices are dropped: whiteouts are not devices */
	int r = unpack_into(f,
			    LAYER(GZIP, { .name = ".wh.gone" }, { .name = "dir/.wh.x" },
				  { .name = "dir/.wh..wh..opq" }, { .name = "opq/.wh..wh..opq" },
				  { .name = ".wh..wh.plnk/", .type = AE_IFDIR },
				  { .name = ".wh..wh.aufs" }),
			    f->dir.fd, &limits);
	assert_int_equal(r, 0);
	struct stat st = lst(f, "gone");
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(0, 0));
	assert_true(S_ISCHR(lst(f, "dir/x").st_mode));
	assert_false(exists(f->dir.fd, ".wh.gone"));
	assert_false(exists(f->dir.fd, "dir/.wh.x"));
	char path[128], buf[8];
	snprintf(path, sizeof(path), "%s/dir", f->dir.path);
	assert_int_equal(getxattr(path, "trusted.overlay.opaque", buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'y');
	snprintf(path, sizeof(path), "%s/opq", f->dir.path);
	assert_int_equal(getxattr(path, "trusted.overlay.opaque", buf, sizeof(buf)), 1);
	/* AUFS metadata makes nothing */
	assert_false(exists(f->dir.fd, ".wh..wh.plnk"));
	assert_false(exists(f->dir.fd, ".wh..wh.aufs"));
	assert_int_equal(f->res.devices_dropped, 0);
}

static void test_whiteout_replaces_an_earlier_entry(void **state)
{
	struct fx *f = *state;
	unpack_ok(f, LAYER(PLAIN, { .name = "d/f", .data = "x" }, { .name = ".wh.d" }));
	assert_true(S_ISCHR(lst(f, "d").st_mode));
}

static void test_whiteout_without_name_refused(void **state)
{
	struct fx *f = *state;
	refused(f, LAYER(PLAIN, { .name = "a/.wh." }), "layer entry \"a/.wh.\"", "whiteout");
}

/* ---- the diffID ---- */

static void test_diff_id_same_for_every_compression(void **state)
{
	struct fx *f = *state;
	size_t len;
	char *tar = take_bytes(LAYER(PLAIN, { .name = "a", .data = "alpha" },
				     { .name = "b/", .type = AE_IFDIR },
				     { .name = "b/c", .data = "gamma" }),
			       &len);
	assert_int_equal(len, 10240); /* padded: the diffID covers the padding too */
	char want[DIGEST_LEN + 1];
	assert_int_equal(digest_of_buffer(tar, len, want, NULL), 0);

	const enum filter filters[] = { PLAIN, GZIP, ZSTD };
	const char *names[] = { "plain", "gzip", "zstd" };
	for (size_t i = 0; i < ARRAY_SIZE(filters); i++) {
		int dfd = subdir(f, names[i]);
		int blob = filters[i] == PLAIN ? blob_of(tar, len)
					       : compress_blob(tar, len, filters[i]);
		if (unpack_into(f, blob, dfd, NULL) < 0)
			fail_msg("%s: %s", names[i], f->err->msg);
		assert_string_equal(f->res.diff_id, want);
		assert_int_equal(f->res.tar_bytes, len);
		assert_int_equal(f->res.entries, 3);
		close(dfd);
	}
	assert_content(f, "zstd/b/c", "gamma");
	free(tar);
}

static void test_diff_id_covers_data_after_the_end(void **state)
{
	struct fx *f = *state;
	size_t len;
	char *tar = take_bytes(LAYER(PLAIN, { .name = "a", .data = "alpha" }), &len);
	/* not tar, and never parsed: hashed all the same; more than the reader's buffers hold */
	size_t junk = 9u << 20;
	tar = realloc(tar, len + junk);
	assert_non_null(tar);
	for (size_t i = 0; i < junk; i++)
		tar[len + i] = (char)(i * 31 % 251);
	len += junk;
	char want[DIGEST_LEN + 1];
	assert_int_equal(digest_of_buffer(tar, len, want, NULL), 0);
	unpack_ok(f, compress_blob(tar, len, GZIP));
	assert_string_equal(f->res.diff_id, want);
	assert_int_equal(f->res.tar_bytes, len);
	free(tar);
}

static void test_big_file_across_chunks(void **state)
{
	struct fx *f = *state;
	size_t n = (5u << 20) + 123;
	char *data = malloc(n + 1);
	assert_non_null(data);
	for (size_t i = 0; i < n; i++)
		data[i] = (char)('a' + (i * 7) % 26);
	data[n] = '\0';
	int blob = LAYER(ZSTD, { .name = "small", .data = "s" }, { .name = "big", .data = data },
			 { .name = "after", .data = "t" });
	unpack_ok(f, blob);
	assert_content(f, "big", data);
	assert_content(f, "after", "t");
	assert_int_equal(f->res.content_bytes, n + 2);
	free(data);
}

/* ---- later entries override earlier ones ---- */

static void test_duplicate_overrides(void **state)
{
	struct fx *f = *state;
	unpack_ok(f, LAYER(PLAIN, { .name = "a", .data = "one" },
			   { .name = "a", .data = "two", .mode = 0600 },
			   { .name = "s", .type = AE_IFLNK, .symlink = "a" },
			   { .name = "s", .data = "file" }, { .name = "t", .data = "file" },
			   { .name = "t", .type = AE_IFLNK, .symlink = "a" }));
	assert_content(f, "a", "two");
	assert_int_equal(lst(f, "a").st_mode, S_IFREG | 0600);
	assert_true(S_ISREG(lst(f, "s").st_mode));
	assert_link(f, "t", "a");
}

static void test_dir_replaces_file(void **state)
{
	struct fx *f = *state;
	unpack_ok(f, LAYER(PLAIN, { .name = "x", .data = "file" },
			   { .name = "x/", .type = AE_IFDIR, .mode = 0700 },
			   { .name = "x/y", .data = "inside" }));
	assert_int_equal(lst(f, "x").st_mode, S_IFDIR | 0700);
	assert_content(f, "x/y", "inside");
}

static void test_file_replaces_dir_tree(void **state)
{
	struct fx *f = *state;
	unpack_ok(f, LAYER(PLAIN, { .name = "d/", .type = AE_IFDIR },
			   { .name = "d/e/f", .data = "deep" }, { .name = "d", .data = "flat" }));
	assert_true(S_ISREG(lst(f, "d").st_mode));
	assert_content(f, "d", "flat");
}

static void test_existing_dir_keeps_children(void **state)
{
	struct fx *f = *state;
	unpack_ok(f, LAYER(PLAIN, { .name = "d/", .type = AE_IFDIR, .mode = 0700 },
			   { .name = "d/f", .data = "kept" },
			   { .name = "d/", .type = AE_IFDIR, .mode = 0751, .uid = 9 }));
	assert_int_equal(lst(f, "d").st_mode, S_IFDIR | 0751);
	assert_int_equal(lst(f, "d").st_uid, 9);
	assert_content(f, "d/f", "kept");
}

/* The cached parent fd must not outlive the directory: else "p/r" lands in a deleted one. */
static void test_entry_below_a_replaced_dir_refused(void **state)
{
	struct fx *f = *state;
	refused(f,
		LAYER(PLAIN, { .name = "p/", .type = AE_IFDIR }, { .name = "p/q", .data = "x" },
		      { .name = "p", .data = "now a file" }, { .name = "p/r", .data = "lost?" }),
		"layer entry \"p/r\"", "not a directory");
}

static void test_dir_replaced_by_symlink_not_followed(void **state)
{
	struct fx *f = *state;
	refused(f,
		LAYER(PLAIN, { .name = "p/", .type = AE_IFDIR }, { .name = "p/q", .data = "x" },
		      { .name = "p", .type = AE_IFLNK, .symlink = f->outside.path },
		      { .name = "p/r", .data = "escaped" }),
		"layer entry \"p/r\"", "path goes through a symlink");
	assert_int_equal(count_entries(f->outside.fd), 0);
}

/* ---- devices ---- */

static void test_devices_dropped(void **state)
{
	struct fx *f = *state;
	unpack_ok(f, LAYER(PLAIN, { .name = "dev/null", .type = AE_IFCHR, .rdev = makedev(1, 3) },
			   { .name = "dev/loop0", .type = AE_IFBLK, .rdev = makedev(7, 0) },
			   { .name = "dev/keep", .data = "x" }));
	assert_false(exists(f->dir.fd, "dev/null"));
	assert_false(exists(f->dir.fd, "dev/loop0"));
	assert_int_equal(f->res.devices_dropped, 2);
	assert_int_equal(f->res.entries, 3);
}

static void test_devices_allowed(void **state)
{
	struct fx *f = *state;
	struct unpack_limits limits = { .allow_devices = true };
	int r = unpack_into(
		f,
		LAYER(PLAIN,
		      { .name = "dev/null", .type = AE_IFCHR, .mode = 0666, .rdev = makedev(1, 3) },
		      { .name = "dev/loop0",
			.type = AE_IFBLK,
			.mode = 0660,
			.gid = 6,
			.rdev = makedev(7, 0) }),
		f->dir.fd, &limits);
	assert_int_equal(r, 0);
	struct stat st = lst(f, "dev/null");
	assert_int_equal(st.st_mode, S_IFCHR | 0666);
	assert_int_equal(st.st_rdev, makedev(1, 3));
	st = lst(f, "dev/loop0");
	assert_int_equal(st.st_mode, S_IFBLK | 0660);
	assert_int_equal(st.st_rdev, makedev(7, 0));
	assert_int_equal(st.st_gid, 6);
	assert_int_equal(f->res.devices_dropped, 0);
}

/* ---- hostile names ---- */

static void test_absolute_path_refused(void **state)
{
	struct fx *f = *state;
	char name[128];
	snprintf(name, sizeof(name), "%s/x", f->outside.path);
	refused(f, LAYER(PLAIN, { .name = name, .data = "x" }), name, "absolute path");
	assert_int_equal(count_entries(f->outside.fd), 0);
}

static void test_dotdot_refused(void **state)
{
	struct fx *f = *state;
	refused(f, LAYER(PLAIN, { .name = "../x", .data = "x" }), "layer entry \"../x\"", "\"..\"");
	refused(f,
		LAYER(PLAIN, { .name = "a/", .type = AE_IFDIR },
		      { .name = "a/../../x", .data = "x" }),
		"layer entry \"a/../../x\"", "\"..\"");
	refused(f, LAYER(PLAIN, { .name = "a/..", .type = AE_IFDIR }), "layer entry \"a/..",
		"\"..\"");
}

/* A ustar header written by hand, for what libarchive's writer would not write. */
static void ustar_header(char h[512], const char *name, char type)
{
	memset(h, 0, 512);
	memcpy(h, name, strlen(name));
	memcpy(h + 100, "0000644", 7);
	memcpy(h + 108, "0000000", 7);
	memcpy(h + 116, "0000000", 7);
	memcpy(h + 124, "00000000000", 11);
	memcpy(h + 136, "14500000000", 11);
	h[156] = type;
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += (unsigned char)h[i];
	snprintf(h + 148, 8, "%06o", sum);
}

static void test_empty_name_refused(void **state)
{
	struct fx *f = *state;
	char tar[512 * 4] = { 0 };
	ustar_header(tar, "ok", '0');
	ustar_header(tar + 512, "", '0');
	refused(f, blob_of(tar, sizeof(tar)), "layer entry \"\": empty name refused", NULL);
	assert_true(exists(f->dir.fd, "ok")); /* the hand-made header is read as a tar */
}

static void test_control_characters_in_messages(void **state)
{
	struct fx *f = *state;
	refused(f, LAYER(PLAIN, { .name = "../evil\nname", .data = "x" }),
		"layer entry \"../evil?name\"", "\"..\"");
}

static void test_write_through_symlink_refused(void **state)
{
	struct fx *f = *state;
	refused(f,
		LAYER(PLAIN, { .name = "evil", .type = AE_IFLNK, .symlink = f->outside.path },
		      { .name = "evil/x", .data = "x" }),
		"layer entry \"evil/x\"", "path goes through a symlink");
	assert_false(exists(f->outside.fd, "x"));
	assert_int_equal(count_entries(f->outside.fd), 0);
}

static void test_write_through_relative_symlink_refused(void **state)
{
	struct fx *f = *state;
	/* "up" is the unpack directory's parent: the file would land next to it */
	refused(f,
		LAYER(PLAIN, { .name = "a/up", .type = AE_IFLNK, .symlink = "../.." },
		      { .name = "a/up/berth-unpack-escape", .data = "x" }),
		"layer entry \"a/up/berth-unpack-escape\"", "path goes through a symlink");
	assert_false(exists(AT_FDCWD, "/tmp/berth-unpack-escape"));
	/* and a symlink to a directory inside the layer is no way through either */
	refused(f,
		LAYER(PLAIN, { .name = "real/", .type = AE_IFDIR },
		      { .name = "alias", .type = AE_IFLNK, .symlink = "real" },
		      { .name = "alias/x", .data = "x" }),
		"layer entry \"alias/x\"", "path goes through a symlink");
}

static void test_dir_entry_through_symlink_refused(void **state)
{
	struct fx *f = *state;
	refused(f,
		LAYER(PLAIN, { .name = "evil", .type = AE_IFLNK, .symlink = f->outside.path },
		      { .name = "evil/sub/", .type = AE_IFDIR }),
		"layer entry \"evil/sub/\"", "symlink");
	/* the symlink itself as a directory entry: replaced, not followed */
	berth_error_freep(&f->err);
	unit_tmpdir_remove(&f->dir);
	assert_int_equal(unit_tmpdir_create(&f->dir), 0);
	unpack_ok(f, LAYER(PLAIN, { .name = "evil", .type = AE_IFLNK, .symlink = f->outside.path },
			   { .name = "evil/", .type = AE_IFDIR, .mode = 0751, .uid = 12 }));
	assert_int_equal(lst(f, "evil").st_mode, S_IFDIR | 0751);
	struct stat st;
	assert_int_equal(fstat(f->outside.fd, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(count_entries(f->outside.fd), 0);
}

static void test_hardlink_to_absolute_refused(void **state)
{
	struct fx *f = *state;
	refused(f, LAYER(PLAIN, { .name = "pw", .hardlink = "/etc/passwd" }), "layer entry \"pw\"",
		"hardlink target \"/etc/passwd\": absolute path");
	assert_false(exists(f->dir.fd, "pw"));
}

static void test_hardlink_to_dotdot_refused(void **state)
{
	struct fx *f = *state;
	refused(f, LAYER(PLAIN, { .name = "h", .hardlink = "../x" }), "layer entry \"h\"",
		"hardlink target \"../x\"");
	refused(f,
		LAYER(PLAIN, { .name = "a/", .type = AE_IFDIR },
		      { .name = "h", .hardlink = "a/../../x" }),
		"layer entry \"h\"", "\"..\"");
}

static void test_hardlink_to_missing_refused(void **state)
{
	struct fx *f = *state;
	refused(f, LAYER(PLAIN, { .name = "h", .hardlink = "nope" }), "layer entry \"h\"",
		"hardlink target \"nope\" is not an entry of this layer");
	refused(f, LAYER(PLAIN, { .name = "h", .hardlink = "no/dir/x" }), "layer entry \"h\"",
		"is not an entry of this layer");
	/* nor does it make the directories a hardlink target would need */
	assert_false(exists(f->dir.fd, "no"));
}

static void test_hardlink_through_symlink_refused(void **state)
{
	struct fx *f = *state;
	assert_int_equal(write_file_atomic_at(f->outside.fd, "secret", "s", 1, 0600, false, NULL),
			 0);
	refused(f,
		LAYER(PLAIN, { .name = "s", .type = AE_IFLNK, .symlink = f->outside.path },
		      { .name = "h", .hardlink = "s/secret" }),
		"layer entry \"h\"", "hardlink target \"s/secret\": path goes through a symlink");
	assert_false(exists(f->dir.fd, "h"));
	struct stat st;
	assert_int_equal(fstatat(f->outside.fd, "secret", &st, 0), 0);
	assert_int_equal(st.st_nlink, 1);
}

static void test_hardlink_to_directory_refused(void **state)
{
	struct fx *f = *state;
	refused(f,
		LAYER(PLAIN, { .name = "d/", .type = AE_IFDIR }, { .name = "h", .hardlink = "d" }),
		"layer entry \"h\"", "hardlink target \"d\"");
}

static void test_overlay_xattr_refused(void **state)
{
	struct fx *f = *state;
	refused(f,
		LAYER(PLAIN, { .name = "d/",
			       .type = AE_IFDIR,
			       .xattr = "trusted.overlay.opaque",
			       .xvalue = "y" }),
		"layer entry \"d/\"", "xattr \"trusted.overlay.opaque\" refused");
	refused(f,
		LAYER(PLAIN, { .name = "f",
			       .data = "x",
			       .xattr = "trusted.overlay.redirect",
			       .xvalue = "/etc" }),
		"layer entry \"f\"", "trusted.overlay.redirect");
	refused(f,
		LAYER(PLAIN,
		      { .name = "g", .data = "x", .xattr = "user.overlay.origin", .xvalue = "x" }),
		"layer entry \"g\"", "user.overlay.origin");
}

/* ---- limits ---- */

static void test_entry_limit(void **state)
{
	struct fx *f = *state;
	struct unpack_limits limits = { .max_entries = 3 };
	int dfd = subdir(f, "ok");
	int r = unpack_into(f, LAYER(PLAIN, { .name = "a" }, { .name = "b" }, { .name = "c" }), dfd,
			    &limits);
	assert_int_equal(r, 0);
	close(dfd);
	dfd = subdir(f, "over");
	r = unpack_into(
		f, LAYER(PLAIN, { .name = "a" }, { .name = "b" }, { .name = "c" }, { .name = "d" }),
		dfd, &limits);
	close(dfd);
	assert_int_equal(r, -EFBIG);
	assert_contains(f->err->msg, "layer entry \"d\": layer exceeds the limit of 3 entries");
	assert_false(exists(f->dir.fd, "over/d"));
}

static void test_byte_limit(void **state)
{
	struct fx *f = *state;
	/* a tar bomb: 10 MiB of one letter are a few KiB of gzip */
	size_t n = 10u << 20;
	char *bomb = malloc(n + 1);
	assert_non_null(bomb);
	memset(bomb, 'z', n);
	bomb[n] = '\0';
	int blob = LAYER(GZIP, { .name = "a", .data = "x" }, { .name = "bomb", .data = bomb });
	free(bomb);
	struct stat st;
	assert_int_equal(fstat(blob, &st), 0);
	assert_true(st.st_size < 100000);
	int r = unpack_into(f, blob, f->dir.fd, &(struct unpack_limits){ .max_bytes = 1u << 20 });
	assert_int_equal(r, -EFBIG);
	assert_contains(f->err->msg, "layer exceeds the limit of 1048576 bytes");
	assert_contains(f->err->msg, "bomb");
	/* at the limit exactly is fine: the plain tar is 10240 bytes */
	int dfd = subdir(f, "exact");
	r = unpack_into(f, LAYER(PLAIN, { .name = "a", .data = "x" }), dfd,
			&(struct unpack_limits){ .max_bytes = 10240 });
	assert_int_equal(r, 0);
	close(dfd);
	dfd = subdir(f, "over");
	r = unpack_into(f, LAYER(PLAIN, { .name = "a", .data = "x" }), dfd,
			&(struct unpack_limits){ .max_bytes = 10239 });
	assert_int_equal(r, -EFBIG);
	close(dfd);
}

/* ---- broken and foreign input ---- */

static void test_truncated_gzip_refused(void **state)
{
	struct fx *f = *state;
	char data[20000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)((i * 2654435761u) >> 13);
	size_t len;
	char *gz = take_bytes(
		LAYER(GZIP, { .name = "noise", .data = "start" }, { .name = "more", .data = data }),
		&len);
	assert_true(unpack_into(f, blob_of(gz, len / 2), f->dir.fd, NULL) < 0);
	assert_non_null(f->err);
	assert_contains(f->err->msg, "layer");
	assert_contains(
		f->err->msg,
		"runcat"); /* libarchive: "truncated gzip input" / "Truncated tar archive" */
	free(gz);
}

static void test_truncated_tar_refused(void **state)
{
	struct fx *f = *state;
	size_t len;
	char *tar = take_bytes(
		LAYER(PLAIN, { .name = "a", .data = "x" }, { .name = "b", .data = "0123456789" }),
		&len);
	/* cut inside the second header */
	refused(f, blob_of(tar, 512 * 4 + 100), "read layer after entry", "runcat");
	free(tar);
}

static void test_corrupt_header_refused(void **state)
{
	struct fx *f = *state;
	size_t len;
	char *tar = take_bytes(
		LAYER(PLAIN, { .name = "a", .data = "x" }, { .name = "b", .data = "y" }), &len);
	/* pax_restricted writes no extended header here: "a" at 0, its data at 512, "b" at 1024 */
	assert_string_equal(tar + 1024, "b");
	tar[1024 + 148] ^= 0x11; /* the checksum */
	refused(f, blob_of(tar, len), "read layer after entry 1", NULL);
	free(tar);
}

static void test_garbage_refused(void **state)
{
	struct fx *f = *state;
	char junk[4096];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)((i * 7919u) ^ (i >> 3));
	refused(f, blob_of(junk, sizeof(junk)), "layer is not a tar archive", NULL);
	refused(f, blob_of("", 0), "layer is not a tar archive: the blob is empty", NULL);
	/* gzip magic and then nonsense */
	refused(f, blob_of("\x1f\x8b\x08\x00garbagegarbagegarbage", 25), "layer", NULL);
}

static void test_other_formats_refused(void **state)
{
	struct fx *f = *state;
	int (*formats[])(struct archive *) = { archive_write_set_format_zip,
					       archive_write_set_format_cpio_newc,
					       archive_write_set_format_7zip };
	for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
		int fd = memfd_create("layer", MFD_CLOEXEC);
		struct archive *a = archive_write_new();
		assert_int_equal(formats[i](a), ARCHIVE_OK);
		assert_int_equal(archive_write_open_fd(a, fd), ARCHIVE_OK);
		write_ent(a, &(struct ent){ .name = "a", .data = "x" });
		assert_int_equal(archive_write_close(a), ARCHIVE_OK);
		archive_write_free(a);
		lseek(fd, 0, SEEK_SET);
		refused(f, fd, "layer is not a tar archive", NULL);
	}
	/* a tar, but compressed in a way layers are not */
	refused(f, LAYER(BZIP2, { .name = "a", .data = "x" }), "layer is not a tar archive", NULL);
	refused(f, LAYER(XZ, { .name = "a", .data = "x" }), "layer is not a tar archive", NULL);
	assert_false(exists(f->dir.fd, "a"));
}

static void test_double_compression_refused(void **state)
{
	struct fx *f = *state;
	size_t len;
	char *gz = take_bytes(LAYER(GZIP, { .name = "a", .data = "x" }), &len);
	refused(f, compress_blob(gz, len, GZIP), "layer is not a tar archive", NULL);
	free(gz);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_files_dirs_symlinks),
		T(test_hardlinks_share_the_inode),
		T(test_hardlink_to_symlink_links_the_symlink),
		T(test_fifo),
		T(test_owner_mode_setuid),
		T(test_umask_and_setgid_parent),
		T(test_owner_out_of_range_refused),
		T(test_root_entry_sets_root_metadata),
		T(test_root_as_a_file_refused),
		T(test_mtimes_directories_last),
		T(test_xattrs),
		T(test_long_and_utf8_names),
		T(test_sparse_file),
		T(test_whiteouts),
		T(test_whiteout_replaces_an_earlier_entry),
		T(test_whiteout_without_name_refused),
		T(test_diff_id_same_for_every_compression),
		T(test_diff_id_covers_data_after_the_end),
		T(test_big_file_across_chunks),
		T(test_duplicate_overrides),
		T(test_dir_replaces_file),
		T(test_file_replaces_dir_tree),
		T(test_existing_dir_keeps_children),
		T(test_entry_below_a_replaced_dir_refused),
		T(test_dir_replaced_by_symlink_not_followed),
		T(test_devices_dropped),
		T(test_devices_allowed),
		T(test_absolute_path_refused),
		T(test_dotdot_refused),
		T(test_empty_name_refused),
		T(test_control_characters_in_messages),
		T(test_write_through_symlink_refused),
		T(test_write_through_relative_symlink_refused),
		T(test_dir_entry_through_symlink_refused),
		T(test_hardlink_to_absolute_refused),
		T(test_hardlink_to_dotdot_refused),
		T(test_hardlink_to_missing_refused),
		T(test_hardlink_through_symlink_refused),
		T(test_hardlink_to_directory_refused),
		T(test_overlay_xattr_refused),
		T(test_entry_limit),
		T(test_byte_limit),
		T(test_truncated_gzip_refused),
		T(test_truncated_tar_refused),
		T(test_corrupt_header_refused),
		T(test_garbage_refused),
		T(test_other_formats_refused),
		T(test_double_compression_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
