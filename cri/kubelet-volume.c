/* The kubelet loop's volumes, under <state>/kubelet/pods/<pod uid>/volumes/<name>: emptyDir (a
 * directory, or a tmpfs for medium Memory), hostPath (the host's path after kubelet's type
 * check), configMap and secret (files copied from berthd's local directories with their modes;
 * secrets on a tmpfs). The containers bind-mount them. Setting up again (after a berthd restart)
 * keeps what is there: a running container's mount stays the same directory. */
#include "base/cleanup.h"
#include "base/fileutil.h"
#include "cri/kubelet-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

static int oom(struct berth_error **err)
{
	return berth_error_set(err, ENOMEM, "out of memory");
}

const struct pod_volume *kubelet_volume_find(const struct pod_spec *s, const char *name)
{
	for (size_t i = 0; i < s->n_volumes; i++)
		if (strcmp(s->volumes[i].name, name) == 0)
			return &s->volumes[i];
	return NULL;
}

int kubelet_volume_path(const struct kpod *p, const char *name, char **ret)
{
	const struct pod_volume *v = kubelet_volume_find(&p->man->spec, name);
	int r = v && v->type == POD_VOLUME_HOST_PATH
			? asprintf(ret, "%s", v->host_path->path)
			: asprintf(ret, "%s/%s/volumes/%s", p->k->pods_dir, p->uid, name);
	if (r < 0) {
		*ret = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* One directory with exactly mode (the umask aside), unless it exists. */
static int mkdir_mode(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0)
		return errno == EEXIST ? 0 : -errno;
	return chmod(path, mode) < 0 ? -errno : 0;
}

/* mkdir -p: the parents it makes get 0755, the last one mode. */
static int mkdir_p(const char *path, mode_t mode)
{
	_cleanup_free_ char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int r = mkdir_mode(copy, 0755);
		if (r < 0)
			return r;
		*p = '/';
	}
	return mkdir_mode(copy, mode);
}

/* ---- hostPath ---- */

static const char *host_path_type_name(enum pod_host_path_type t)
{
	static const char *const names[] = { "", "DirectoryOrCreate", "Directory",
					     "FileOrCreate", "File", "Socket",
					     "CharDevice", "BlockDevice" };
	return names[t];
}

static int host_path_create(const char *path, enum pod_host_path_type type,
			    struct berth_error **err)
{
	if (type == POD_HOST_PATH_DIRECTORY_OR_CREATE) {
		int r = mkdir_p(path, 0755);
		if (r < 0)
			return berth_error_setsys(err, -r, "hostPath %s: creating it", path);
		return 0;
	}
	_cleanup_free_ char *dir = strdup(path);
	if (!dir)
		return oom(err);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		int r = mkdir_p(dir, 0755);
		if (r < 0)
			return berth_error_setsys(err, -r, "hostPath %s: creating its directory", path);
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return berth_error_setsys(err, errno, "hostPath %s: creating it", path);
	(void)fchmod(fd, 0644); /* the umask's bits back: kubelet's mode */
	close(fd);
	return 0;
}

int kubelet_host_path_check(const char *path, enum pod_host_path_type type,
			    struct berth_error **err)
{
	static const mode_t want[] = { 0, S_IFDIR, S_IFDIR, S_IFREG, S_IFREG,
				       S_IFSOCK, S_IFCHR, S_IFBLK };
	struct stat st;
	if (type == POD_HOST_PATH_ANY)
		return 0;
	if (stat(path, &st) < 0) {
		if (errno != ENOENT || (type != POD_HOST_PATH_DIRECTORY_OR_CREATE &&
					type != POD_HOST_PATH_FILE_OR_CREATE))
			return berth_error_setsys(err, errno, "hostPath %s (type %s)", path,
						  host_path_type_name(type));
		int r = host_path_create(path, type, err);
		if (r < 0 || stat(path, &st) < 0)
			return r < 0 ? r : berth_error_setsys(err, errno, "hostPath %s", path);
	}
	if ((st.st_mode & S_IFMT) != want[type])
		return berth_error_set(err, EINVAL, "hostPath %s: not a %s", path,
				       host_path_type_name(type));
	return 0;
}

/* ---- tmpfs ---- */

static bool is_mountpoint(const char *path)
{
	struct stat a, b;
	_cleanup_free_ char *parent = NULL;
	if (asprintf(&parent, "%s/..", path) < 0)
		return false;
	return stat(path, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

static int tmpfs_mount(const char *path, int64_t size, mode_t mode, struct berth_error **err)
{
	if (is_mountpoint(path))
		return 0;
	char opts[64];
	if (size > 0)
		snprintf(opts, sizeof(opts), "mode=%o,size=%lld", (unsigned)mode, (long long)size);
	else
		snprintf(opts, sizeof(opts), "mode=%o", (unsigned)mode);
	if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		return berth_error_setsys(err, errno, "mounting a tmpfs on %s", path);
	if (mount(NULL, path, NULL, MS_PRIVATE, NULL) < 0)
		log_debug("making %s private: %m (ignored)", path);
	return 0;
}

/* ---- configMap / secret ---- */

static int write_key_file(const char *src, const char *dst, mode_t mode, struct berth_error **err)
{
	_cleanup_free_ char *data = NULL, *dir = strdup(dst);
	size_t len = 0;
	if (!dir)
		return oom(err);
	int r = read_file_at(AT_FDCWD, src, &data, &len, err);
	if (r < 0)
		return r;
	char *slash = strrchr(dir, '/');
	*slash = '\0';
	if ((r = mkdir_p(dir, 0755)) < 0)
		return berth_error_setsys(err, -r, "%s", dir);
	_cleanup_close_ int fd =
		open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return berth_error_setsys(err, errno, "%s", dst);
	if (write_all(fd, data, len) < 0 || fchmod(fd, mode) < 0)
		return berth_error_setsys(err, errno, "writing %s", dst);
	return 0;
}

/* Every key of the object's directory, as a file of its own name. */
static int copy_all_keys(const char *src_dir, const char *dst, mode_t mode,
			 struct berth_error **err)
{
	DIR *d = opendir(src_dir);
	if (!d)
		return berth_error_setsys(err, errno, "%s", src_dir);
	int r = 0;
	struct dirent *de;
	while (r == 0 && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *s = NULL, *t = NULL;
		if (asprintf(&s, "%s/%s", src_dir, de->d_name) < 0 ||
		    asprintf(&t, "%s/%s", dst, de->d_name) < 0)
			r = oom(err);
		else
			r = write_key_file(s, t, mode, err);
	}
	closedir(d);
	return r;
}

static int copy_items(const struct pod_object_volume *o, const char *src_dir, const char *dst,
		      const char *kind, const char *ns, struct berth_error **err)
{
	for (size_t i = 0; i < o->n_items; i++) {
		const struct pod_key_to_path *it = &o->items[i];
		_cleanup_free_ char *s = NULL, *t = NULL;
		if (asprintf(&s, "%s/%s", src_dir, it->key) < 0 ||
		    asprintf(&t, "%s/%s", dst, it->path) < 0)
			return oom(err);
		if (access(s, F_OK) < 0 && errno == ENOENT) {
			if (o->optional)
				continue;
			return berth_error_set(err, ENOENT, "%s \"%s/%s\": key \"%s\" not found (%s)",
					       kind, ns, o->name, it->key, s);
		}
		mode_t mode = (mode_t)(it->mode.set ? it->mode.value : o->default_mode);
		int r = write_key_file(s, t, mode, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int object_volume(const struct kpod *p, const struct pod_object_volume *o, bool secret,
			 const char *dst, struct berth_error **err)
{
	const char *kind = secret ? "secret" : "configMap";
	const char *ns = p->man->metadata.namespace;
	_cleanup_free_ char *src = NULL;
	if (asprintf(&src, "%s/%s/%s", secret ? p->k->cfg->secret_dir : p->k->cfg->config_map_dir,
		     ns, o->name) < 0)
		return oom(err);
	int r = secret ? tmpfs_mount(dst, 0, 0755, err) : 0;
	if (r < 0)
		return r;
	struct stat st;
	if (stat(src, &st) < 0 || !S_ISDIR(st.st_mode)) {
		if (o->optional)
			return 0;
		return berth_error_set(err, ENOENT, "%s \"%s/%s\" not found (%s)", kind, ns, o->name,
				       src);
	}
	if (o->n_items)
		return copy_items(o, src, dst, kind, ns, err);
	return copy_all_keys(src, dst, (mode_t)o->default_mode, err);
}

static int volume_setup(const struct kpod *p, const struct pod_volume *v,
			struct berth_error **err)
{
	if (v->type == POD_VOLUME_HOST_PATH)
		return kubelet_host_path_check(v->host_path->path, v->host_path->type, err);
	_cleanup_free_ char *dst = NULL;
	if (kubelet_volume_path(p, v->name, &dst) < 0)
		return oom(err);
	int r = mkdir_p(dst, 0755);
	if (r < 0)
		return berth_error_setsys(err, -r, "%s", dst);
	switch (v->type) {
	case POD_VOLUME_EMPTY_DIR:
		if (v->empty_dir->medium == POD_MEDIUM_MEMORY)
			return tmpfs_mount(dst,
					   v->empty_dir->size_limit.set ? v->empty_dir->size_limit.value
									: 0,
					   01777, err);
		return chmod(dst, 01777) < 0 ? berth_error_setsys(err, errno, "%s", dst) : 0;
	case POD_VOLUME_CONFIG_MAP:
		return object_volume(p, v->config_map, false, dst, err);
	case POD_VOLUME_SECRET:
		return object_volume(p, v->secret, true, dst, err);
	default:
		return 0;
	}
}

int kubelet_volumes_setup(const struct kpod *p, struct berth_error **err)
{
	for (size_t i = 0; i < p->man->spec.n_volumes; i++) {
		const struct pod_volume *v = &p->man->spec.volumes[i];
		int r = volume_setup(p, v, err);
		if (r < 0)
			return berth_error_wrap(err, "volume %s", v->name);
	}
	return 0;
}

void kubelet_volumes_teardown(struct kubelet *k, const char *uid)
{
	_cleanup_free_ char *dir = NULL, *pod = NULL;
	if (asprintf(&pod, "%s/%s", k->pods_dir, uid) < 0 ||
	    asprintf(&dir, "%s/volumes", pod) < 0)
		return;
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *v = NULL;
		if (asprintf(&v, "%s/%s", dir, de->d_name) < 0)
			continue;
		while (umount2(v, MNT_DETACH) == 0)
			;
	}
	if (d)
		closedir(d);
	int r = remove_tree_at(AT_FDCWD, pod);
	if (r < 0)
		log_warn("kubelet: removing %s: %s (left behind)", pod, strerror(-r));
}
