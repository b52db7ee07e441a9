/* Container root filesystems: an overlay of an image's snapshots (top layer first) under a fresh
 * upper and work directory, and a lease naming those snapshots so garbage collection keeps them
 * while the root filesystem exists. */
#include "image/store-internal.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static int lease_name(const char *dir, char name[DIGEST_HEX_LEN + 8], struct berth_error **err)
{
	char digest[DIGEST_LEN + 1];
	int r = digest_of_buffer(dir, strlen(dir), digest, err);
	if (r == 0)
		snprintf(name, DIGEST_HEX_LEN + 8, "%s.json", digest_hex(digest));
	return r;
}

static int write_lease(struct image_store *s, const char *dir, const char *image, const struct stored_image *im,
		       const char *manifest_digest, struct berth_error **err)
{
	char name[DIGEST_HEX_LEN + 8];
	int r = lease_name(dir, name, err);
	if (r < 0)
		return r;
	struct json_writer *w = bjson_writer_new(false);
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "dir", dir);
	bjson_writer_kv_string(w, "image", image);
	bjson_writer_kv_string(w, "manifest", manifest_digest);
	bjson_writer_key(w, "snapshots");
	bjson_writer_begin_array(w);
	for (size_t i = 0; i < im->manifest.n_layers; i++)
		bjson_writer_string(w, im->chains[i]);
	bjson_writer_end_array(w);
	bjson_writer_end_object(w);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	r = bjson_writer_finish(w, &text, &len);
	if (r < 0)
		return berth_error_set(err, -r, "lease: cannot write JSON");
	r = write_file_atomic_at(s->leases_fd, name, text, len, 0600, true, err);
	return r < 0 ? berth_error_wrap(err, "%s/leases", s->root) : 0;
}

static char *snapshot_fs_path(struct image_store *s, const char *chain)
{
	char *p = NULL;
	return asprintf(&p, "%s/snapshots/%s/fs", s->root, digest_hex(chain)) < 0 ? NULL : p;
}

/* The new mount API takes one lower directory at a time ("lowerdir+", Linux 6.8), so neither the
 * page-sized option string nor ':' or ',' in paths limit it. */
static int mount_overlay_fsconfig(struct image_store *s, const struct stored_image *im, const char *empty,
				  const char *upper, const char *work, const char *target)
{
	_cleanup_close_ int fs = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fs < 0)
		return -errno;
	if (fsconfig(fs, FSCONFIG_SET_STRING, "source", "berth", 0) < 0)
		return -errno;
	for (size_t i = im->manifest.n_layers; i-- > 0;) {
		_cleanup_free_ char *lower = snapshot_fs_path(s, im->chains[i]);
		if (!lower)
			return -ENOMEM;
		if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", lower, 0) < 0)
			return -errno;
	}
	if (im->manifest.n_layers == 0 && fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", empty, 0) < 0)
		return -errno;
	if (fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "workdir", work, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return -errno;
	_cleanup_close_ int mnt = fsmount(fs, FSMOUNT_CLOEXEC, 0);
	if (mnt < 0)
		return -errno;
	return move_mount(mnt, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0 ? -errno : 0;
}

static bool option_safe(const char *p)
{
	return !strpbrk(p, ":,\\");
}

/* Older kernels: one option string. */
static int mount_overlay_legacy(struct image_store *s, const struct stored_image *im, const char *empty,
				const char *upper, const char *work, const char *target, struct berth_error **err)
{
	size_t cap = 64 + strlen(upper) + strlen(work) + strlen(empty);
	for (size_t i = 0; i < im->manifest.n_layers; i++)
		cap += strlen(s->root) + DIGEST_HEX_LEN + 20;
	_cleanup_free_ char *opts = malloc(cap);
	if (!opts)
		return berth_error_set(err, ENOMEM, "overlay: out of memory");
	size_t off = (size_t)snprintf(opts, cap, "lowerdir=");
	for (size_t i = im->manifest.n_layers; i-- > 0;)
		off += (size_t)snprintf(opts + off, cap - off, "%s%s/snapshots/%s/fs", i + 1 < im->manifest.n_layers ? ":" : "",
					s->root, digest_hex(im->chains[i]));
	if (im->manifest.n_layers == 0)
		off += (size_t)snprintf(opts + off, cap - off, "%s", empty);
	snprintf(opts + off, cap - off, ",upperdir=%s,workdir=%s", upper, work);
	if (!option_safe(s->root) || !option_safe(upper))
		return berth_error_set(err, EINVAL, "overlay on %s: this kernel needs paths without ':', ',' or '\\'", target);
	if (strlen(opts) >= 4096)
		return berth_error_set(err, E2BIG, "overlay on %s: %zu layers are too many for this kernel's mount options",
				       target, im->manifest.n_layers);
	if (mount("berth", target, "overlay", 0, opts) < 0)
		return berth_error_setsys(err, errno, "mounting overlay on %s", target);
	return 0;
}

static int make_dirs(const char *dir, char **upper, char **work, char **rootfs, char **empty, struct berth_error **err)
{
	if (asprintf(upper, "%s/upper", dir) < 0 || asprintf(work, "%s/work", dir) < 0 ||
	    asprintf(rootfs, "%s/rootfs", dir) < 0 || asprintf(empty, "%s/empty", dir) < 0)
		return berth_error_set(err, ENOMEM, "out of memory");
	if (mkdir(*upper, 0755) < 0)
		return berth_error_setsys(err, errno, errno == EEXIST ? "%s: already has a root filesystem" : "%s", *upper);
	if (mkdir(*work, 0700) < 0 || mkdir(*rootfs, 0755) < 0 || mkdir(*empty, 0755) < 0)
		return berth_error_setsys(err, errno, "%s", dir);
	return 0;
}

static int mount_image(struct image_store *s, const char *dir, const char *image, const struct stored_image *im,
		       const char *manifest_digest, struct berth_error **err)
{
	for (size_t i = 0; i < im->manifest.n_layers; i++)
		if (!store_snapshot_exists(s, im->chains[i]))
			return berth_error_set(err, ENOENT, "image %s: layer %zu (%s) is not unpacked; pull it again", image, i,
					       im->manifest.layers[i].digest);
	_cleanup_free_ char *upper = NULL, *work = NULL, *rootfs = NULL, *empty = NULL;
	int r = make_dirs(dir, &upper, &work, &rootfs, &empty, err);
	if (r < 0)
		return r;
	/* the lease exists before the mount, so a concurrent prune never sees the mount without it */
	r = write_lease(s, dir, image, im, manifest_digest, err);
	if (r < 0)
		return r;
	r = mount_overlay_fsconfig(s, im, empty, upper, work, rootfs);
	if (r == -EINVAL || r == -ENOSYS || r == -EOPNOTSUPP)
		return mount_overlay_legacy(s, im, empty, upper, work, rootfs, err);
	return r < 0 ? berth_error_setsys(err, -r, "mounting overlay on %s", rootfs) : 0;
}

int image_rootfs_create(struct image_store *s, const char *name, const char *dir, struct berth_error **err)
{
	if (mkdir(dir, 0711) < 0 && errno != EEXIST)
		return berth_error_setsys(err, errno, "%s", dir);
	char real[PATH_MAX];
	if (!realpath(dir, real))
		return berth_error_setsys(err, errno, "%s", dir);
	_cleanup_close_ int lock = store_lock(s, false, err);
	if (lock < 0)
		return lock;
	struct store_entry e = { 0 };
	struct stored_image im = { 0 };
	int r = store_resolve(s, name, &e, &im, err);
	if (r == 0) {
		r = mount_image(s, real, e.name, &im, e.desc.digest, err);
		if (r < 0 && r != -EEXIST) {
			struct berth_error *ignored = NULL;
			image_rootfs_remove(s, real, &ignored);
			berth_error_free(ignored);
		}
	}
	stored_image_clear(&im);
	store_entry_clear(&e);
	return r;
}

int image_rootfs_remove(struct image_store *s, const char *dir, struct berth_error **err)
{
	char real[PATH_MAX];
	if (!realpath(dir, real))
		return errno == ENOENT ? 0 : berth_error_setsys(err, errno, "%s", dir);
	_cleanup_free_ char *rootfs = NULL;
	if (asprintf(&rootfs, "%s/rootfs", real) < 0)
		return berth_error_set(err, ENOMEM, "out of memory");
	if (umount2(rootfs, UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
		return berth_error_setsys(err, errno, "unmounting %s", rootfs);
	_cleanup_close_ int dfd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0)
		return berth_error_setsys(err, errno, "%s", real);
	static const char *const parts[] = { "rootfs", "upper", "work", "empty" };
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		int r = remove_tree_at(dfd, parts[i]);
		if (r < 0)
			return berth_error_setsys(err, -r, "removing %s/%s", real, parts[i]);
	}
	char name[DIGEST_HEX_LEN + 8];
	int r = lease_name(real, name, err);
	if (r == 0 && unlinkat(s->leases_fd, name, 0) < 0 && errno != ENOENT)
		r = berth_error_setsys(err, errno, "%s/leases/%s", s->root, name);
	return r;
}
