/* Removal, garbage collection and disk usage of the image store.
 *
 * What is kept: every blob an index.json name reaches (manifest, config, layers), every snapshot
 * of those images' chain IDs, and every snapshot a lease (a container root filesystem) names.
 * Everything else — blobs, snapshots, partial downloads, unfinished unpacks — goes. Removal runs
 * under the store's exclusive lock, so no pull is in flight while it decides. */
#include "image/store-internal.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A set of sha256 hex strings. */
struct hexset {
	char (*v)[DIGEST_HEX_LEN + 1];
	size_t n, cap;
};

static int hexset_add(struct hexset *h, const char *digest)
{
	if (!digest_is_valid(digest))
		return 0;
	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 64;
		void *v = realloc(h->v, cap * sizeof(*h->v));
		if (!v)
			return -ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	memcpy(h->v[h->n++], digest_hex(digest), DIGEST_HEX_LEN + 1);
	return 0;
}

static int hex_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void hexset_seal(struct hexset *h)
{
	if (h->n)
		qsort(h->v, h->n, sizeof(*h->v), hex_cmp);
}

static bool hexset_has(const struct hexset *h, const char *hex)
{
	return h->n && bsearch(hex, h->v, h->n, sizeof(*h->v), hex_cmp) != NULL;
}

struct roots {
	struct hexset blobs;
	struct hexset snapshots;
};

static void roots_clear(struct roots *r)
{
	free(r->blobs.v);
	free(r->snapshots.v);
}

static int mark_image(struct image_store *s, const char *manifest_digest, struct roots *roots)
{
	int r = hexset_add(&roots->blobs, manifest_digest);
	struct stored_image im;
	/* a broken image keeps what can be read of it; `image check` reports it */
	if (r < 0 || stored_image_load(s, manifest_digest, &im, NULL) < 0)
		return r;
	r = hexset_add(&roots->blobs, im.manifest.config.digest);
	for (size_t i = 0; r == 0 && i < im.manifest.n_layers; i++) {
		r = hexset_add(&roots->blobs, im.manifest.layers[i].digest);
		if (r == 0)
			r = hexset_add(&roots->snapshots, im.chains[i]);
	}
	stored_image_clear(&im);
	return r;
}

/* Calls fn for each entry name of a directory of the store (not "." or ".."). */
int store_for_each_entry(int dirfd, int (*fn)(void *opaque, const char *name), void *opaque)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return -e;
	}
	struct dirent *e;
	int r = 0;
	while (r == 0 && (e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			r = fn(opaque, e->d_name);
	closedir(d);
	return r;
}

struct lease_ctx {
	struct image_store *s;
	struct hexset *snapshots;
	struct hexset *images; /* manifests of leased images (may be NULL) */
};

static int mark_lease(void *opaque, const char *name)
{
	struct lease_ctx *c = opaque;
	_cleanup_free_ char *text = NULL;
	_cleanup_(bjson_freep) struct json *j = NULL;
	if (read_file_at(c->s->leases_fd, name, &text, NULL, NULL) < 0 || bjson_parse(text, &j, NULL) < 0)
		return 0;
	const struct json *snaps = bjson_object_get(j, "snapshots");
	for (size_t i = 0; i < bjson_array_size(snaps); i++)
		if (hexset_add(c->snapshots, bjson_string(bjson_array_get(snaps, i))) < 0)
			return -ENOMEM;
	if (c->images && hexset_add(c->images, bjson_string(bjson_object_get(j, "manifest"))) < 0)
		return -ENOMEM;
	return 0;
}

static int collect_roots(struct image_store *s, const struct store_entry *v, size_t n, struct roots *roots)
{
	int r = 0;
	for (size_t i = 0; r == 0 && i < n; i++)
		r = mark_image(s, v[i].desc.digest, roots);
	struct lease_ctx c = { .s = s, .snapshots = &roots->snapshots };
	if (r == 0)
		r = store_for_each_entry(s->leases_fd, mark_lease, &c);
	hexset_seal(&roots->blobs);
	hexset_seal(&roots->snapshots);
	return r;
}

struct sweep {
	struct image_store *s;
	const struct roots *roots;
	struct image_gc_result *res;
};

static int sweep_blob(void *opaque, const char *name)
{
	struct sweep *w = opaque;
	if (hexset_has(&w->roots->blobs, name))
		return 0;
	struct stat st;
	if (fstatat(w->s->blobs_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		w->res->bytes_freed += (uint64_t)st.st_blocks * 512;
	if (remove_tree_at(w->s->blobs_fd, name) == 0)
		w->res->blobs_removed++;
	return 0;
}

static int sweep_snapshot(void *opaque, const char *name)
{
	struct sweep *w = opaque;
	if (hexset_has(&w->roots->snapshots, name))
		return 0;
	char digest[DIGEST_LEN + 1];
	snprintf(digest, sizeof(digest), "sha256:%s", name);
	bool counted = digest_is_valid(digest);
	if (counted)
		w->res->bytes_freed += store_snapshot_content_bytes(w->s, digest);
	if (remove_tree_at(w->s->snapshots_fd, name) == 0 && counted)
		w->res->snapshots_removed++;
	return 0;
}

static int sweep_ingest(void *opaque, const char *name)
{
	struct sweep *w = opaque;
	struct stat st;
	if (fstatat(w->s->ingest_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		w->res->bytes_freed += (uint64_t)st.st_blocks * 512;
	remove_tree_at(w->s->ingest_fd, name);
	return 0;
}

/* Under the exclusive lock. */
static int gc_locked(struct image_store *s, struct image_gc_result *res, struct berth_error **err)
{
	struct store_entry *v = NULL;
	size_t n = 0;
	int r = store_index_load(s, &v, &n, err);
	if (r < 0)
		return r;
	struct roots roots = { 0 };
	r = collect_roots(s, v, n, &roots);
	store_entries_free(v, n);
	struct sweep w = { .s = s, .roots = &roots, .res = res };
	if (r == 0)
		r = store_for_each_entry(s->blobs_fd, sweep_blob, &w);
	if (r == 0)
		r = store_for_each_entry(s->snapshots_fd, sweep_snapshot, &w);
	if (r == 0)
		r = store_for_each_entry(s->ingest_fd, sweep_ingest, &w);
	roots_clear(&roots);
	return r < 0 ? berth_error_setsys(err, -r, "garbage collection in %s", s->root) : 0;
}

/* Drops index entries matching keep() == false. */
static int index_filter(struct image_store *s, bool (*keep)(const struct store_entry *e, const void *arg),
			const void *arg, size_t *removed, struct berth_error **err)
{
	_cleanup_close_ int lock = store_index_lock(s, err);
	if (lock < 0)
		return lock;
	struct store_entry *v = NULL;
	size_t n = 0, kept = 0;
	int r = store_index_load(s, &v, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		if (keep(&v[i], arg)) {
			struct store_entry t = v[kept];
			v[kept++] = v[i];
			v[i] = t;
		}
	}
	*removed = n - kept;
	if (*removed)
		r = store_index_save(s, v, kept, err);
	store_entries_free(v, n);
	return r;
}

struct removal {
	const char *name;   /* remove this name */
	const char *digest; /* or every name of this manifest */
};

static bool keep_unless_removed(const struct store_entry *e, const void *arg)
{
	const struct removal *rm = arg;
	if (rm->digest)
		return strcmp(e->desc.digest, rm->digest) != 0;
	return strcmp(e->name, rm->name) != 0;
}

static bool looks_like_digest(const char *s)
{
	return strncmp(s, "sha256:", 7) == 0 || strspn(s, "0123456789abcdef") == strlen(s);
}

int image_remove(struct image_store *s, const char *name, struct berth_error **err)
{
	_cleanup_close_ int lock = store_lock(s, true, err);
	if (lock < 0)
		return lock;
	struct store_entry *v = NULL;
	size_t n = 0, i = 0, removed = 0;
	int r = store_index_load(s, &v, &n, err);
	if (r < 0)
		return r;
	r = store_find(v, n, name, &i, err);
	_cleanup_free_ char *found_name = r == 0 ? strdup(v[i].name) : NULL;
	char digest[DIGEST_LEN + 1] = "";
	if (r == 0)
		memcpy(digest, v[i].desc.digest, sizeof(digest));
	store_entries_free(v, n);
	if (r < 0)
		return r;
	if (!found_name)
		return berth_error_set(err, ENOMEM, "image rm: out of memory");
	/* by digest: the image under all its names; by name: just that name */
	struct removal rm = { .name = found_name,
			      .digest = looks_like_digest(name) && strcmp(found_name, name) != 0 ? digest : NULL };
	r = index_filter(s, keep_unless_removed, &rm, &removed, err);
	struct image_gc_result res = { 0 };
	return r < 0 ? r : gc_locked(s, &res, err);
}

static bool keep_leased(const struct store_entry *e, const void *arg)
{
	return hexset_has(arg, digest_hex(e->desc.digest));
}

int image_prune(struct image_store *s, bool all_unused, struct image_gc_result *res, struct berth_error **err)
{
	_cleanup_close_ int lock = store_lock(s, true, err);
	if (lock < 0)
		return lock;
	*res = (struct image_gc_result){ 0 };
	store_snapshot_clean_stale(s, true);
	if (all_unused) {
		struct hexset snapshots = { 0 }, images = { 0 };
		struct lease_ctx c = { .s = s, .snapshots = &snapshots, .images = &images };
		int r = store_for_each_entry(s->leases_fd, mark_lease, &c);
		hexset_seal(&images);
		size_t removed = 0;
		if (r < 0)
			r = berth_error_setsys(err, -r, "%s/leases", s->root);
		else
			r = index_filter(s, keep_leased, &images, &removed, err);
		free(snapshots.v);
		free(images.v);
		if (r < 0)
			return r;
	}
	return gc_locked(s, res, err);
}

/* ---- disk usage ---- */

struct usage {
	struct image_disk_usage *du;
	struct {
		dev_t dev;
		ino_t ino;
	} *seen; /* inodes with several links, counted once */
	size_t n_seen, cap_seen;
};

static bool seen_before(struct usage *u, const struct stat *st)
{
	for (size_t i = 0; i < u->n_seen; i++)
		if (u->seen[i].dev == st->st_dev && u->seen[i].ino == st->st_ino)
			return true;
	if (u->n_seen == u->cap_seen) {
		size_t cap = u->cap_seen ? 2 * u->cap_seen : 64;
		void *v = realloc(u->seen, cap * sizeof(*u->seen));
		if (!v)
			return false;
		u->seen = v;
		u->cap_seen = cap;
	}
	u->seen[u->n_seen].dev = st->st_dev;
	u->seen[u->n_seen++].ino = st->st_ino;
	return false;
}

static int walk_usage(struct usage *u, int dir)
{
	int fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && seen_before(u, &st))
			continue;
		u->du->bytes += (uint64_t)st.st_blocks * 512;
		u->du->inodes++;
		if (S_ISDIR(st.st_mode)) {
			_cleanup_close_ int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
			if (sub >= 0)
				walk_usage(u, sub);
		}
	}
	closedir(d);
	return 0;
}

int image_disk_usage(struct image_store *s, struct image_disk_usage *ret, struct berth_error **err)
{
	_cleanup_close_ int lock = store_lock(s, false, err);
	if (lock < 0)
		return lock;
	*ret = (struct image_disk_usage){ 0 };
	struct usage u = { .du = ret };
	int dirs[] = { s->content_fd, s->snapshots_fd, s->ingest_fd };
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		walk_usage(&u, dirs[i]);
	free(u.seen);
	return 0;
}
