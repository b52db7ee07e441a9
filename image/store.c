/* The image store on disk: locks, blobs (verified before they are visible), index.json (the
 * names), snapshots. */
#include "image/store-internal.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "base/log.h"
#include "image/reference-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_ROOT "/var/lib/berth"
#define OCI_LAYOUT "{\"imageLayoutVersion\":\"1.0.0\"}"
#define EMPTY_INDEX "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":[]}"

static int mkdir_p(const char *path, mode_t mode)
{
	_cleanup_free_ char *p = strdup(path);
	if (!p)
		return -ENOMEM;
	for (char *c = p + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return -errno;
		*c = '/';
	}
	return mkdir(p, mode) < 0 && errno != EEXIST ? -errno : 0;
}

static int open_subdir(int dirfd, const char *root, const char *name, int *ret, struct berth_error **err)
{
	if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
		return berth_error_setsys(err, errno, "%s/%s", root, name);
	*ret = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	return *ret < 0 ? berth_error_setsys(err, errno, "%s/%s", root, name) : 0;
}

static bool layout_exists(struct image_store *s)
{
	return faccessat(s->content_fd, "oci-layout", F_OK, AT_SYMLINK_NOFOLLOW) == 0 &&
	       faccessat(s->content_fd, "index.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static int lock_file(struct image_store *s, const char *name, bool exclusive, struct berth_error **err);

/* oci-layout and an empty index.json, unless they are there already; under the index lock, since
 * several processes may open a new store at once. */
static int init_layout(struct image_store *s, struct berth_error **err)
{
	if (layout_exists(s))
		return 0;
	_cleanup_close_ int lock = lock_file(s, "index.lock", true, err);
	if (lock < 0)
		return lock;
	if (faccessat(s->content_fd, "oci-layout", F_OK, AT_SYMLINK_NOFOLLOW) < 0 &&
	    write_file_atomic_at(s->content_fd, "oci-layout", OCI_LAYOUT, strlen(OCI_LAYOUT), 0644, true, err) < 0)
		return berth_error_wrap(err, "%s/content", s->root);
	if (faccessat(s->content_fd, "index.json", F_OK, AT_SYMLINK_NOFOLLOW) < 0 &&
	    write_file_atomic_at(s->content_fd, "index.json", EMPTY_INDEX, strlen(EMPTY_INDEX), 0644, true, err) < 0)
		return berth_error_wrap(err, "%s/content", s->root);
	return 0;
}

static int open_dirs(struct image_store *s, struct berth_error **err)
{
	int r = mkdir_p(s->root, 0711);
	if (r < 0)
		return berth_error_setsys(err, -r, "image store %s", s->root);
	s->root_fd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->root_fd < 0)
		return berth_error_setsys(err, errno, "image store %s", s->root);
	int blobs_parent = -EBADF;
	if ((r = open_subdir(s->root_fd, s->root, "content", &s->content_fd, err)) < 0 ||
	    (r = open_subdir(s->content_fd, s->root, "blobs", &blobs_parent, err)) < 0)
		return r;
	r = open_subdir(blobs_parent, s->root, "sha256", &s->blobs_fd, err);
	close(blobs_parent);
	if (r < 0 || (r = open_subdir(s->root_fd, s->root, "ingest", &s->ingest_fd, err)) < 0 ||
	    (r = open_subdir(s->root_fd, s->root, "snapshots", &s->snapshots_fd, err)) < 0 ||
	    (r = open_subdir(s->root_fd, s->root, "leases", &s->leases_fd, err)) < 0)
		return r;
	/* the layout is readable by image tools (skopeo, umoci) run by other users */
	fchmod(s->content_fd, 0755);
	return init_layout(s, err);
}

int image_store_open(const struct image_store_options *o, struct image_store **ret, struct berth_error **err)
{
	struct image_store *s = calloc(1, sizeof(*s));
	if (!s)
		return berth_error_set(err, ENOMEM, "image store: out of memory");
	s->root_fd = s->content_fd = s->blobs_fd = s->ingest_fd = s->snapshots_fd = s->leases_fd = -EBADF;
	pthread_mutex_init(&s->lock, NULL);
	s->root = strdup(o && o->root ? o->root : DEFAULT_ROOT);
	s->registries_path = o ? o->registries_config : NULL;
	s->auth_path = o ? o->auth_file : NULL;
	s->max_parallel = o && o->max_parallel ? o->max_parallel : 0;
	s->limits.max_bytes = o && o->max_layer_bytes ? o->max_layer_bytes : (64ull << 30);
	s->limits.max_entries = o && o->max_layer_entries ? o->max_layer_entries : (4ull << 20);
	s->limits.allow_devices = o && o->allow_devices;
	int r = s->root ? 0 : berth_error_set(err, ENOMEM, "image store: out of memory");
	if (r == 0 && s->root[0] != '/')
		r = berth_error_set(err, EINVAL, "image store root \"%s\": must be an absolute path", s->root);
	if (r == 0)
		r = open_dirs(s, err);
	if (r < 0) {
		image_store_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

void image_store_free(struct image_store *s)
{
	if (!s)
		return;
	int fds[] = { s->root_fd, s->content_fd, s->blobs_fd, s->ingest_fd, s->snapshots_fd, s->leases_fd };
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	registry_config_free(s->registries);
	pthread_mutex_destroy(&s->lock);
	free(s->root);
	free(s);
}

static int lock_file(struct image_store *s, const char *name, bool exclusive, struct berth_error **err)
{
	int fd = openat(s->root_fd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return berth_error_setsys(err, errno, "%s/%s", s->root, name);
	while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0) {
		if (errno == EINTR)
			continue;
		int e = errno;
		close(fd);
		return berth_error_setsys(err, e, "locking %s/%s", s->root, name);
	}
	return fd;
}

int store_lock(struct image_store *s, bool exclusive, struct berth_error **err)
{
	return lock_file(s, "lock", exclusive, err);
}

int store_index_lock(struct image_store *s, struct berth_error **err)
{
	return lock_file(s, "index.lock", true, err);
}

/* ---- blobs ---- */

bool store_blob_exists(struct image_store *s, const char *digest, uint64_t size)
{
	struct stat st;
	return fstatat(s->blobs_fd, digest_hex(digest), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	       (uint64_t)st.st_size == size;
}

int store_blob_open(struct image_store *s, const char *digest, struct berth_error **err)
{
	int fd = openat(s->blobs_fd, digest_hex(digest), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? berth_error_setsys(err, errno, "blob %s", digest) : fd;
}

int store_blob_read(struct image_store *s, const char *digest, size_t max, char **ret, size_t *ret_len,
		    struct berth_error **err)
{
	struct stat st;
	if (fstatat(s->blobs_fd, digest_hex(digest), &st, AT_SYMLINK_NOFOLLOW) < 0)
		return berth_error_setsys(err, errno, "blob %s", digest);
	if ((uint64_t)st.st_size > max)
		return berth_error_set(err, EFBIG, "blob %s: %lld bytes is more than the %zu allowed", digest,
				       (long long)st.st_size, max);
	int r = read_file_at(s->blobs_fd, digest_hex(digest), ret, ret_len, err);
	return r < 0 ? berth_error_wrap(err, "blob %s", digest) : 0;
}

int store_fsync_dir(int dirfd)
{
	return fsync(dirfd) < 0 ? -errno : 0;
}

int store_blob_write(struct image_store *s, const char *expected, const void *buf, size_t len,
		     char out[DIGEST_LEN + 1], struct berth_error **err)
{
	char digest[DIGEST_LEN + 1];
	int r = digest_of_buffer(buf, len, digest, err);
	if (r < 0)
		return r;
	if (expected && strcmp(expected, digest) != 0)
		return berth_error_set(err, EILSEQ, "blob %s: content has digest %s", expected, digest);
	if (out)
		memcpy(out, digest, sizeof(digest));
	if (store_blob_exists(s, digest, len))
		return 0;
	/* a temp name of this thread's own: two pulls may write the same blob at once */
	char tmp[DIGEST_HEX_LEN + 64];
	snprintf(tmp, sizeof(tmp), ".blob-%d-%d-%s", (int)getpid(), (int)gettid(), digest_hex(digest));
	_cleanup_close_ int fd = openat(s->ingest_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return berth_error_setsys(err, errno, "%s/ingest/%s", s->root, tmp);
	r = write_all(fd, buf, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && renameat(s->ingest_fd, tmp, s->blobs_fd, digest_hex(digest)) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(s->ingest_fd, tmp, 0);
		return berth_error_setsys(err, -r, "writing blob %s", digest);
	}
	store_fsync_dir(s->blobs_fd);
	return 0;
}

/* ---- index.json ---- */

void store_entries_free(struct store_entry *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		store_entry_clear(&v[i]);
	free(v);
}

static int entry_from_json(const struct json *m, size_t i, struct store_entry *e, struct berth_error **err)
{
	const struct json *ann = bjson_object_get(m, "annotations");
	const char *name = bjson_string(bjson_object_get(ann, ANNOTATION_REF_NAME));
	if (!name)
		name = bjson_string(bjson_object_get(ann, ANNOTATION_CONTAINERD_NAME));
	if (!name)
		return berth_error_set(err, EINVAL, "index.json: manifests[%zu]: no image name (annotation %s)", i,
				       ANNOTATION_REF_NAME);
	const char *mt = bjson_string(bjson_object_get(m, "mediaType"));
	const char *digest = bjson_string(bjson_object_get(m, "digest"));
	if (!mt || !digest_is_valid(digest) || !bjson_uint64(bjson_object_get(m, "size"), &e->desc.size))
		return berth_error_set(err, EINVAL, "index.json: manifests[%zu]: needs mediaType, a sha256 digest and size", i);
	e->name = strdup(name);
	e->desc.media_type = strdup(mt);
	memcpy(e->desc.digest, digest, DIGEST_LEN + 1);
	const struct json *p = bjson_object_get(m, "platform");
	if (bjson_type_of(p) == JSON_OBJECT) {
		e->desc.has_platform = true;
		snprintf(e->desc.platform.os, sizeof(e->desc.platform.os), "%s",
			 bjson_string(bjson_object_get(p, "os")) ?: "");
		snprintf(e->desc.platform.architecture, sizeof(e->desc.platform.architecture), "%s",
			 bjson_string(bjson_object_get(p, "architecture")) ?: "");
		snprintf(e->desc.platform.variant, sizeof(e->desc.platform.variant), "%s",
			 bjson_string(bjson_object_get(p, "variant")) ?: "");
	}
	return e->name && e->desc.media_type ? 0 : berth_error_set(err, ENOMEM, "index.json: out of memory");
}

int store_index_load(struct image_store *s, struct store_entry **ret, size_t *ret_n, struct berth_error **err)
{
	_cleanup_free_ char *text = NULL;
	int r = read_file_at(s->content_fd, "index.json", &text, NULL, err);
	if (r < 0)
		return berth_error_wrap(err, "%s/content/index.json", s->root);
	_cleanup_(bjson_freep) struct json *j = NULL;
	if (bjson_parse(text, &j, err) < 0)
		return berth_error_wrap(err, "%s/content/index.json", s->root);
	const struct json *m = bjson_object_get(j, "manifests");
	size_t n = bjson_array_size(m);
	struct store_entry *v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return berth_error_set(err, ENOMEM, "index.json: out of memory");
	for (size_t i = 0; i < n; i++) {
		r = entry_from_json(bjson_array_get(m, i), i, &v[i], err);
		if (r < 0) {
			store_entries_free(v, n);
			return berth_error_wrap(err, "%s/content", s->root);
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static void write_descriptor_with_name(struct json_writer *w, const struct store_entry *e)
{
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "mediaType", e->desc.media_type);
	bjson_writer_kv_string(w, "digest", e->desc.digest);
	bjson_writer_key(w, "size");
	bjson_writer_uint(w, e->desc.size);
	if (e->desc.has_platform) {
		bjson_writer_key(w, "platform");
		bjson_writer_begin_object(w);
		bjson_writer_kv_string(w, "architecture", e->desc.platform.architecture);
		bjson_writer_kv_string(w, "os", e->desc.platform.os);
		if (e->desc.platform.variant[0])
			bjson_writer_kv_string(w, "variant", e->desc.platform.variant);
		bjson_writer_end_object(w);
	}
	bjson_writer_key(w, "annotations");
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, ANNOTATION_CONTAINERD_NAME, e->name);
	bjson_writer_kv_string(w, ANNOTATION_REF_NAME, e->name);
	bjson_writer_end_object(w);
	bjson_writer_end_object(w);
}

int store_index_save(struct image_store *s, const struct store_entry *v, size_t n, struct berth_error **err)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = store_index_format(v, n, &text, &len, err);
	if (r < 0)
		return r;
	r = write_file_atomic_at(s->content_fd, "index.json", text, len, 0644, true, err);
	return r < 0 ? berth_error_wrap(err, "%s/content/index.json", s->root) : 0;
}

static int entry_set(struct store_entry *e, const char *name, const struct descriptor *d)
{
	char *n = strdup(name), *mt = strdup(d->media_type);
	if (!n || !mt) {
		free(n);
		free(mt);
		return -ENOMEM;
	}
	free(e->name);
	free(e->desc.media_type);
	e->name = n;
	e->desc = *d;
	e->desc.media_type = mt;
	return 0;
}

int store_index_put(struct image_store *s, const char *name, const struct descriptor *manifest,
		    struct berth_error **err)
{
	_cleanup_close_ int lock = store_index_lock(s, err);
	if (lock < 0)
		return lock;
	struct store_entry *v = NULL;
	size_t n = 0;
	int r = store_index_load(s, &v, &n, err);
	if (r < 0)
		return r;
	size_t i = 0;
	while (i < n && strcmp(v[i].name, name) != 0)
		i++;
	if (i == n) {
		struct store_entry *nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			store_entries_free(v, n);
			return berth_error_set(err, ENOMEM, "index.json: out of memory");
		}
		v = nv;
		v[n++] = (struct store_entry){ 0 };
	}
	r = entry_set(&v[i], name, manifest);
	if (r < 0)
		r = berth_error_set(err, ENOMEM, "index.json: out of memory");
	if (r == 0)
		r = store_index_save(s, v, n, err);
	store_entries_free(v, n);
	return r;
}

static bool is_hex(const char *s)
{
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

int store_find(const struct store_entry *v, size_t n, const char *name, size_t *ret, struct berth_error **err)
{
	struct reference ref;
	if (reference_parse(name, &ref, NULL) == 0) {
		_cleanup_free_ char *full = reference_string(&ref);
		reference_clear(&ref);
		for (size_t i = 0; full && i < n; i++)
			if (strcmp(v[i].name, full) == 0) {
				*ret = i;
				return 0;
			}
	}
	/* a manifest digest, or a unique prefix of its hex as `image ls` shows it */
	const char *hex = strncmp(name, "sha256:", 7) == 0 ? name + 7 : name;
	size_t len = strlen(hex);
	if (len >= 4 && len <= DIGEST_HEX_LEN && is_hex(hex)) {
		size_t found = n;
		for (size_t i = 0; i < n; i++) {
			if (strncmp(digest_hex(v[i].desc.digest), hex, len) != 0)
				continue;
			if (found < n && strcmp(v[found].desc.digest, v[i].desc.digest) != 0)
				return berth_error_set(err, EINVAL, "image \"%s\": digest prefix matches several images", name);
			found = i;
		}
		if (found < n) {
			*ret = found;
			return 0;
		}
	}
	return berth_error_set(err, ENOENT, "image \"%s\": not in the store", name);
}

/* ---- images ---- */

int stored_image_load(struct image_store *s, const char *manifest_digest, struct stored_image *ret,
		      struct berth_error **err)
{
	struct stored_image im = { 0 };
	_cleanup_free_ char *body = NULL;
	size_t len = 0;
	int r = store_blob_read(s, manifest_digest, STORE_MAX_MANIFEST, &body, &len, err);
	if (r == 0)
		r = manifest_parse(body, len, &im.manifest, err);
	if (r == 0)
		r = store_blob_read(s, im.manifest.config.digest, STORE_MAX_CONFIG, &im.config_json, &len, err);
	if (r == 0)
		r = image_config_parse(im.config_json, len, &im.config, err);
	if (r == 0 && im.config.n_diff_ids != im.manifest.n_layers)
		r = berth_error_set(err, EINVAL, "image config %s: %zu diff_ids for %zu layers", im.manifest.config.digest,
				    im.config.n_diff_ids, im.manifest.n_layers);
	if (r == 0 && !(im.chains = calloc(im.manifest.n_layers ? im.manifest.n_layers : 1, sizeof(*im.chains))))
		r = berth_error_set(err, ENOMEM, "image: out of memory");
	if (r == 0)
		r = chain_ids((const char(*)[DIGEST_LEN + 1])im.config.diff_ids, im.config.n_diff_ids, im.chains, err);
	if (r < 0) {
		stored_image_clear(&im);
		return berth_error_wrap(err, "image %s", manifest_digest);
	}
	*ret = im;
	return 0;
}

void store_entry_clear(struct store_entry *e)
{
	free(e->name);
	free(e->desc.media_type);
	*e = (struct store_entry){ 0 };
}

int store_resolve(struct image_store *s, const char *name, struct store_entry *ret_entry, struct stored_image *ret_im,
		  struct berth_error **err)
{
	struct store_entry *v = NULL;
	size_t n = 0, i = 0;
	int r = store_index_load(s, &v, &n, err);
	if (r < 0)
		return r;
	r = store_find(v, n, name, &i, err);
	if (r == 0)
		r = stored_image_load(s, v[i].desc.digest, ret_im, err);
	if (r == 0)
		{
		*ret_entry = v[i];
		v[i] = (struct store_entry){ 0 };
	}
	store_entries_free(v, n);
	return r;
}

void stored_image_clear(struct stored_image *im)
{
	manifest_clear(&im->manifest);
	image_config_clear(&im->config);
	free(im->config_json);
	free(im->chains);
	*im = (struct stored_image){ 0 };
}

/* ---- snapshots ---- */

bool store_snapshot_exists(struct image_store *s, const char *chain_id)
{
	char path[DIGEST_HEX_LEN + 16];
	snprintf(path, sizeof(path), "%s/info.json", digest_hex(chain_id));
	return faccessat(s->snapshots_fd, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

uint64_t store_snapshot_content_bytes(struct image_store *s, const char *chain_id)
{
	char path[DIGEST_HEX_LEN + 16];
	snprintf(path, sizeof(path), "%s/info.json", digest_hex(chain_id));
	_cleanup_free_ char *text = NULL;
	_cleanup_(bjson_freep) struct json *j = NULL;
	uint64_t v = 0;
	if (read_file_at(s->snapshots_fd, path, &text, NULL, NULL) == 0 && bjson_parse(text, &j, NULL) == 0)
		bjson_uint64(bjson_object_get(j, "contentBytes"), &v);
	return v;
}

static bool pid_alive(int pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

void store_snapshot_clean_stale(struct image_store *s, bool all)
{
	int fd = openat(s->snapshots_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0)
			continue;
		int pid = atoi(e->d_name + strlen(TMP_PREFIX));
		if (all || !pid_alive(pid))
			remove_tree_at(s->snapshots_fd, e->d_name);
	}
	closedir(d);
}

int store_index_format(const struct store_entry *v, size_t n, char **ret, size_t *ret_len,
		       struct berth_error **err)
{
	struct json_writer *w = bjson_writer_new(false);
	bjson_writer_begin_object(w);
	bjson_writer_kv_int(w, "schemaVersion", 2);
	bjson_writer_kv_string(w, "mediaType", MT_OCI_INDEX);
	bjson_writer_key(w, "manifests");
	bjson_writer_begin_array(w);
	for (size_t i = 0; i < n; i++)
		write_descriptor_with_name(w, &v[i]);
	bjson_writer_end_array(w);
	bjson_writer_end_object(w);
	int r = bjson_writer_finish(w, ret, ret_len);
	return r < 0 ? berth_error_set(err, -r, "index.json: cannot write JSON") : 0;
}
