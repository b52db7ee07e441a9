/* Image archives. Import reads an oci-archive or a docker-archive (docker save of any version);
 * export writes one tar that is both, as Docker 25's docker save does.
 *
 * Import streams the tar once: every regular file is copied into ingest/ and hashed on the way,
 * so a compressed archive or one read from a pipe costs one pass. Then the JSON documents are
 * read and every image is checked (names, digests, sizes, layer counts) before anything is
 * stored; then the blobs move into the store and the layers are unpacked; the names are recorded
 * last. A failure leaves no name and no temporary file behind (blobs already moved are
 * unreferenced, and go with the next garbage collection). */
#include "image/store-internal.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "base/log.h"
#include "image/reference-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_MEMBERS 65536 /* regular files and links in one archive */
#define MAX_LINK_HOPS 16
#define COPY_BUF (1 << 16)
#define OCI_LAYOUT_TEXT "{\"imageLayoutVersion\":\"1.0.0\"}"
#define BLOB_DIR "blobs/sha256/"

static void archive_read_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}

static int archive_fail(struct archive *a, struct berth_error **err, const char *what)
{
	int code = archive_errno(a) > 0 ? archive_errno(a) : EIO;
	return berth_error_set(err, code, "%s: %s", what, archive_error_string(a) ?: "archive error");
}

/* "./a//b/./c" -> "a/b/c"; with dotdot, ".." takes the previous component off. -EINVAL for an
 * absolute or empty path, one that climbs out of the archive's root, and any ".." without
 * dotdot. */
static int path_clean(const char *p, bool dotdot, char **ret)
{
	if (!p || p[0] == '/')
		return -EINVAL;
	_cleanup_free_ char *out = malloc(strlen(p) + 1);
	if (!out)
		return -ENOMEM;
	size_t o = 0;
	while (*p) {
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (!dotdot || o == 0)
				return -EINVAL;
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (o > 0)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p = *end ? end + 1 : end;
	}
	if (o == 0)
		return -EINVAL;
	out[o] = '\0';
	*ret = TAKE_PTR(out);
	return 0;
}

/* ---- import: the archive's files, copied into ingest/ ---- */

struct member {
	char *path;    /* cleaned, relative to the archive's root */
	char *link;    /* a symlink or hardlink: the member it stands for (cleaned); NULL for a file */
	char tmp[64];  /* its copy in ingest/; "" once moved into blobs/ */
	char digest[DIGEST_LEN + 1];
	uint64_t size;
	unsigned char magic[4]; /* the first bytes: tells a compressed layer from a plain one */
};

/* One image found in the archive, checked, waiting to be stored. */
struct plan {
	char what[48];      /* "index.json: manifests[0]" or "manifest.json[0]", for messages */
	char **names;       /* normalised */
	struct descriptor desc; /* the image manifest the names will point to */
	struct manifest manifest;
	struct image_config config;
	char *manifest_json; /* docker-archive: the manifest berth writes; NULL for OCI */
	size_t manifest_len;
	struct member *manifest_member; /* OCI: the manifest as it was in the archive */
	struct member *config_member;
	struct member **layer_members;
};

struct import {
	struct image_store *s;
	struct member *v;
	size_t n, cap;
	struct plan *plans;
	size_t n_plans;
};

static void plan_clear(struct plan *p)
{
	strv_free(p->names);
	free(p->desc.media_type);
	manifest_clear(&p->manifest);
	image_config_clear(&p->config);
	free(p->manifest_json);
	free(p->layer_members);
}

static void import_clear(struct import *im)
{
	for (size_t i = 0; i < im->n; i++) {
		if (im->v[i].tmp[0] && unlinkat(im->s->ingest_fd, im->v[i].tmp, 0) < 0 && errno != ENOENT)
			log_warn("%s/ingest/%s: cannot remove: %m", im->s->root, im->v[i].tmp);
		free(im->v[i].path);
		free(im->v[i].link);
	}
	free(im->v);
	for (size_t i = 0; i < im->n_plans; i++)
		plan_clear(&im->plans[i]);
	free(im->plans);
}

/* A temporary file in ingest/, named after this process and this import (so concurrent imports
 * never meet, and garbage collection can tell a dead process's leftovers). */
static int member_create_tmp(struct import *im, struct member *m, struct berth_error **err)
{
	snprintf(m->tmp, sizeof(m->tmp), ".tmp-%d-import-%lx-%zu", (int)getpid(), (unsigned long)(uintptr_t)im,
		 im->n);
	for (int attempt = 0;; attempt++) {
		int fd = openat(im->s->ingest_fd, m->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0)
			return fd;
		/* left by a dead process whose pid this one reuses */
		if (errno != EEXIST || attempt > 0 || unlinkat(im->s->ingest_fd, m->tmp, 0) < 0) {
			int e = errno;
			m->tmp[0] = '\0';
			return berth_error_setsys(err, e, "%s/ingest: creating a temporary file", im->s->root);
		}
	}
}

static int copy_data(struct import *im, struct archive *a, struct member *m, int fd, struct digest_stream *h,
		     struct berth_error **err)
{
	_cleanup_free_ char *buf = malloc(COPY_BUF);
	if (!buf)
		return berth_error_set(err, ENOMEM, "%s: out of memory", m->path);
	for (;;) {
		la_ssize_t n = archive_read_data(a, buf, COPY_BUF);
		if (n < 0)
			return archive_fail(a, err, m->path);
		if (n == 0)
			return 0;
		if (m->size + (uint64_t)n > im->s->limits.max_bytes)
			return berth_error_set(err, EFBIG, "%s: larger than the %llu bytes allowed", m->path,
					       (unsigned long long)im->s->limits.max_bytes);
		for (size_t i = (size_t)m->size; i < sizeof(m->magic) && i - m->size < (size_t)n; i++)
			m->magic[i] = (unsigned char)buf[i - m->size];
		int r = write_all(fd, buf, (size_t)n);
		if (r < 0)
			return berth_error_setsys(err, -r, "%s/ingest/%s", im->s->root, m->tmp);
		digest_stream_update(h, buf, (size_t)n);
		m->size += (uint64_t)n;
	}
}

static int member_copy(struct import *im, struct archive *a, struct member *m, struct berth_error **err)
{
	_cleanup_close_ int fd = member_create_tmp(im, m, err);
	if (fd < 0)
		return fd;
	struct digest_stream h;
	int r = digest_stream_init(&h, err);
	if (r < 0)
		return r;
	r = copy_data(im, a, m, fd, &h, err);
	digest_stream_final(&h, m->digest);
	digest_stream_free(&h);
	return r;
}

/* A link's target as a member path: a hardlink names a path from the archive's root, a symlink
 * one relative to its own directory. */
static int link_target(const char *path, const char *hardlink, const char *symlink, char **ret)
{
	if (hardlink)
		return path_clean(hardlink, false, ret);
	if (!symlink || symlink[0] == '/')
		return -EINVAL;
	const char *slash = strrchr(path, '/');
	_cleanup_free_ char *joined = NULL;
	if (asprintf(&joined, "%.*s/%s", slash ? (int)(slash - path) : 0, path, symlink) < 0)
		return -ENOMEM;
	return path_clean(joined + (slash ? 0 : 1), true, ret);
}

static int member_add(struct import *im, struct archive *a, struct archive_entry *e, struct berth_error **err)
{
	const char *name = archive_entry_pathname(e);
	const char *hardlink = archive_entry_hardlink(e);
	bool is_link = hardlink || archive_entry_filetype(e) == AE_IFLNK;
	if (!name || (!is_link && archive_entry_filetype(e) != AE_IFREG))
		return 0; /* directories and the rest are never blobs */
	_cleanup_free_ char *path = NULL, *link = NULL;
	int r = path_clean(name, false, &path);
	if (r == 0 && is_link)
		r = link_target(path, hardlink, archive_entry_symlink(e), &link);
	if (r == -ENOMEM)
		return berth_error_set(err, ENOMEM, "%s: out of memory", name);
	if (r < 0) {
		log_debug("archive entry \"%s\": outside the archive's root, skipped", name);
		return 0;
	}
	if (im->n == MAX_MEMBERS)
		return berth_error_set(err, E2BIG, "more than %d files: not an image archive", MAX_MEMBERS);
	if (im->n == im->cap) {
		size_t cap = im->cap ? im->cap * 2 : 64;
		struct member *v = realloc(im->v, cap * sizeof(*v));
		if (!v)
			return berth_error_set(err, ENOMEM, "%s: out of memory", name);
		im->v = v;
		im->cap = cap;
	}
	struct member *m = &im->v[im->n];
	*m = (struct member){ .path = TAKE_PTR(path), .link = TAKE_PTR(link) };
	r = is_link ? 0 : member_copy(im, a, m, err);
	im->n++; /* even on failure: its temporary file is removed with the rest */
	return r;
}

static int member_cmp(const void *a, const void *b)
{
	return strcmp(((const struct member *)a)->path, ((const struct member *)b)->path);
}

/* Reads the whole tar, then sorts the members by path for lookups. */
static int read_members(struct import *im, const char *path, struct berth_error **err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return berth_error_setsys(err, errno, "open");
	_cleanup_(archive_read_freep) struct archive *a = archive_read_new();
	if (!a)
		return berth_error_set(err, ENOMEM, "out of memory");
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_fd(a, fd, COPY_BUF) != ARCHIVE_OK)
		return archive_fail(a, err, "reading the archive");
	for (;;) {
		struct archive_entry *e;
		int r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN)
			return archive_fail(a, err, "reading the archive");
		r = member_add(im, a, e, err);
		if (r < 0)
			return r;
	}
	if (im->n)
		qsort(im->v, im->n, sizeof(*im->v), member_cmp);
	for (size_t i = 1; i < im->n; i++)
		if (strcmp(im->v[i - 1].path, im->v[i].path) == 0)
			return berth_error_set(err, EINVAL, "%s: appears twice in the archive", im->v[i].path);
	return 0;
}

static struct member *member_find(const struct import *im, const char *path)
{
	struct member key = { .path = (char *)path };
	return im->n ? bsearch(&key, im->v, im->n, sizeof(*im->v), member_cmp) : NULL;
}

/* The file a reference from manifest.json or index.json names (links followed). `what` names the
 * field in messages. */
static int member_resolve(const struct import *im, const char *ref, const char *what, struct member **ret,
			  struct berth_error **err)
{
	if (!ref)
		return berth_error_set(err, EINVAL, "%s: missing", what);
	_cleanup_free_ char *path = NULL;
	int r = path_clean(ref, false, &path);
	if (r == -ENOMEM)
		return berth_error_set(err, ENOMEM, "%s: out of memory", what);
	if (r < 0)
		return berth_error_set(err, EINVAL, "%s: \"%s\" is not a relative path inside the archive", what, ref);
	const char *p = path;
	for (int hops = 0; hops <= MAX_LINK_HOPS; hops++) {
		struct member *m = member_find(im, p);
		if (!m)
			return berth_error_set(err, ENOENT, "%s: \"%s\" is not in the archive", what, ref);
		if (!m->link) {
			*ret = m;
			return 0;
		}
		p = m->link;
	}
	return berth_error_set(err, ELOOP, "%s: \"%s\": too many levels of links", what, ref);
}

/* A member's content (a JSON document), at most max bytes, NUL-terminated. */
static int member_read(const struct import *im, const struct member *m, size_t max, char **ret,
		       size_t *ret_len, struct berth_error **err)
{
	if (m->size > max)
		return berth_error_set(err, EFBIG, "%s: %llu bytes is more than the %zu allowed", m->path,
				       (unsigned long long)m->size, max);
	int r = read_file_at(im->s->ingest_fd, m->tmp, ret, ret_len, err);
	return r < 0 ? berth_error_wrap(err, "%s", m->path) : 0;
}

static int member_read_json(const struct import *im, const struct member *m, struct json **ret,
			    struct berth_error **err)
{
	_cleanup_free_ char *body = NULL;
	size_t len = 0;
	int r = member_read(im, m, STORE_MAX_MANIFEST, &body, &len, err);
	if (r == 0 && strlen(body) != len)
		r = berth_error_set(err, EINVAL, "%s: not JSON (contains a NUL byte)", m->path);
	if (r == 0 && bjson_parse(body, ret, err) < 0)
		r = berth_error_wrap(err, "%s", m->path);
	return r;
}

/* Moves the member's copy into blobs/ (once: several images may share it). */
static int member_commit(struct import *im, struct member *m, struct berth_error **err)
{
	if (!m->tmp[0])
		return 0;
	int r = store_blob_commit_ingested(im->s, m->tmp, m->digest, m->size, err);
	if (r < 0)
		return berth_error_wrap(err, "%s", m->path);
	m->tmp[0] = '\0';
	return 0;
}

/* ---- import: checking each image ---- */

/* An OCI blob: blobs/sha256/<hex>, its size and digest as the descriptor gives them. */
static int blob_member(const struct import *im, const struct descriptor *d, const char *what,
		       struct member **ret, struct berth_error **err)
{
	char path[sizeof(BLOB_DIR) + DIGEST_HEX_LEN];
	snprintf(path, sizeof(path), BLOB_DIR "%s", digest_hex(d->digest));
	struct member *m;
	int r = member_resolve(im, path, what, &m, err);
	if (r < 0)
		return r;
	if (m->size != d->size)
		return berth_error_set(err, EILSEQ, "%s: %s: %llu bytes, the descriptor says %llu", what, m->path,
				       (unsigned long long)m->size, (unsigned long long)d->size);
	if (strcmp(m->digest, d->digest) != 0)
		return berth_error_set(err, EILSEQ, "%s: %s: content has digest %s, the descriptor says %s", what,
				       m->path, m->digest, d->digest);
	*ret = m;
	return 0;
}

/* Docker names some files after their digest ("<hex>.json", "blobs/sha256/<hex>"): such a name
 * must match the content. */
static int check_digest_name(const struct member *m, struct berth_error **err)
{
	const char *base = strrchr(m->path, '/');
	base = base ? base + 1 : m->path;
	size_t len = strcspn(base, ".");
	char named[DIGEST_LEN + 1];
	snprintf(named, sizeof(named), "sha256:%.*s", (int)len, base);
	if (len != DIGEST_HEX_LEN || (base[len] && strcmp(base + len, ".json") != 0) || !digest_is_valid(named))
		return 0;
	if (strcmp(named, m->digest) == 0)
		return 0;
	return berth_error_set(err, EILSEQ, "%s: content has digest %s, not the one its name gives", m->path,
			       m->digest);
}

static int config_load(const struct import *im, struct plan *p, struct berth_error **err)
{
	_cleanup_free_ char *body = NULL;
	size_t len = 0;
	int r = member_read(im, p->config_member, STORE_MAX_CONFIG, &body, &len, err);
	if (r == 0 && image_config_parse(body, len, &p->config, err) < 0)
		r = berth_error_wrap(err, "%s", p->config_member->path);
	if (r == 0 && p->config.n_diff_ids != p->manifest.n_layers)
		r = berth_error_set(err, EINVAL, "%s: %zu layers, but the config %s has %zu diff_ids", p->what,
				    p->manifest.n_layers, p->config_member->path, p->config.n_diff_ids);
	if (r == 0 && !(p->layer_members = calloc(p->manifest.n_layers + 1, sizeof(*p->layer_members))))
		r = berth_error_set(err, ENOMEM, "out of memory");
	return r;
}

/* The platform recorded with the name: the config's, else the index's (as a pull does). */
static int plan_set_desc(struct plan *p, const struct descriptor *d, struct berth_error **err)
{
	p->desc = (struct descriptor){ .size = d->size, .has_platform = d->has_platform, .platform = d->platform };
	memcpy(p->desc.digest, d->digest, sizeof(p->desc.digest));
	if (p->config.platform.os[0]) {
		p->desc.has_platform = true;
		p->desc.platform = p->config.platform;
	}
	p->desc.media_type = strdup(p->manifest.media_type);
	return p->desc.media_type ? 0 : berth_error_set(err, ENOMEM, "out of memory");
}

static int oci_image(struct import *im, const struct descriptor *d, struct plan *p, struct berth_error **err)
{
	_cleanup_free_ char *body = NULL;
	size_t len = 0;
	int r = blob_member(im, d, "manifest", &p->manifest_member, err);
	if (r == 0)
		r = member_read(im, p->manifest_member, STORE_MAX_MANIFEST, &body, &len, err);
	if (r == 0 && manifest_parse(body, len, &p->manifest, err) < 0)
		r = berth_error_wrap(err, "%s", p->manifest_member->path);
	if (r == 0)
		r = blob_member(im, &p->manifest.config, "config", &p->config_member, err);
	if (r == 0)
		r = config_load(im, p, err);
	for (size_t i = 0; r == 0 && i < p->manifest.n_layers; i++) {
		char what[32];
		snprintf(what, sizeof(what), "layers[%zu]", i);
		r = blob_member(im, &p->manifest.layers[i], what, &p->layer_members[i], err);
	}
	if (r == 0)
		r = plan_set_desc(p, d, err);
	return r;
}

/* A multi-platform entry: the host's image from the index it points to. */
static int oci_select(struct import *im, const struct descriptor *d, struct plan *p, struct berth_error **err)
{
	struct member *m;
	_cleanup_free_ char *body = NULL;
	size_t len = 0;
	enum manifest_kind kind;
	int r = blob_member(im, d, "manifest", &m, err);
	if (r == 0)
		r = member_read(im, m, STORE_MAX_MANIFEST, &body, &len, err);
	if (r == 0 && manifest_kind_of(body, len, d->media_type, &kind, err) < 0)
		r = berth_error_wrap(err, "%s", m->path);
	if (r < 0 || kind == MANIFEST_IMAGE)
		return r < 0 ? r : oci_image(im, d, p, err);
	struct index x = { 0 };
	const struct descriptor *chosen = NULL;
	struct platform host;
	platform_host(&host);
	r = index_parse(body, len, &x, err);
	if (r == 0)
		r = index_select(&x, &host, &chosen, err);
	if (r < 0)
		r = berth_error_wrap(err, "%s", m->path);
	if (r == 0)
		r = oci_image(im, chosen, p, err);
	index_clear(&x);
	return r;
}

/* The io.containerd.image.name annotation, else org.opencontainers.image.ref.name when it is a
 * whole reference: alone, a tag ("latest", as Docker 25 writes it) says nothing of the image. */
static int oci_name(const struct json *entry, const char *what, char **ret, struct berth_error **err)
{
	const struct json *ann = bjson_object_get(entry, "annotations");
	const char *name = bjson_string(bjson_object_get(ann, ANNOTATION_CONTAINERD_NAME));
	const char *ref = bjson_string(bjson_object_get(ann, ANNOTATION_REF_NAME));
	if (!name && ref && (strchr(ref, '/') || strchr(ref, ':')))
		name = ref;
	if (!name && ref)
		return berth_error_set(err, EINVAL, "%s: %s \"%s\" is a tag without a repository: it cannot name an image",
				       what, ANNOTATION_REF_NAME, ref);
	if (!name)
		return berth_error_set(err, EINVAL, "%s: no image name (annotation %s or %s)", what,
				       ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME);
	int r = image_reference_normalize(name, ret, err);
	return r < 0 ? berth_error_wrap(err, "%s", what) : 0;
}

static int plan_oci(struct import *im, struct member *index, struct berth_error **err)
{
	_cleanup_free_ char *body = NULL;
	_cleanup_(bjson_freep) struct json *j = NULL;
	size_t len = 0;
	struct index x = { 0 };
	int r = member_read(im, index, STORE_MAX_MANIFEST, &body, &len, err);
	if (r == 0 && (bjson_parse(body, &j, err) < 0 || index_parse(body, len, &x, err) < 0))
		r = berth_error_wrap(err, "index.json");
	if (r == 0 && x.n == 0)
		r = berth_error_set(err, EINVAL, "index.json: no images");
	if (r == 0 && !(im->plans = calloc(x.n, sizeof(*im->plans))))
		r = berth_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; r == 0 && i < x.n; i++) {
		struct plan *p = &im->plans[im->n_plans++];
		snprintf(p->what, sizeof(p->what), "index.json: manifests[%zu]", i);
		if (!(p->names = calloc(2, sizeof(*p->names))))
			r = berth_error_set(err, ENOMEM, "out of memory");
		if (r == 0)
			r = oci_name(bjson_array_get(bjson_object_get(j, "manifests"), i), p->what, &p->names[0], err);
		if (r == 0 && oci_select(im, &x.manifests[i], p, err) < 0)
			r = berth_error_wrap(err, "%s", p->what);
	}
	index_clear(&x);
	return r;
}

static int docker_names(const struct json *tags, struct plan *p, struct berth_error **err)
{
	size_t n = bjson_array_size(tags);
	if (n == 0)
		return berth_error_set(err, EINVAL, "%s: no RepoTags: an image without a name cannot be imported",
				       p->what);
	if (!(p->names = calloc(n + 1, sizeof(*p->names))))
		return berth_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *tag = bjson_string(bjson_array_get(tags, i));
		if (!tag)
			return berth_error_set(err, EINVAL, "%s: RepoTags[%zu]: expected a string", p->what, i);
		if (image_reference_normalize(tag, &p->names[i], err) < 0)
			return berth_error_wrap(err, "%s: RepoTags[%zu]", p->what, i);
	}
	return 0;
}

/* A layer's media type from its first bytes, as the unpacker tells them apart. */
static const char *sniff_layer_type(const struct member *m)
{
	static const unsigned char gzip[] = { 0x1f, 0x8b }, zstd[] = { 0x28, 0xb5, 0x2f, 0xfd };
	if (m->size >= sizeof(gzip) && memcmp(m->magic, gzip, sizeof(gzip)) == 0)
		return MT_OCI_LAYER_GZIP;
	if (m->size >= sizeof(zstd) && memcmp(m->magic, zstd, sizeof(zstd)) == 0)
		return MT_OCI_LAYER_ZSTD;
	return MT_OCI_LAYER;
}

static int descriptor_of(const struct member *m, const char *media_type, struct descriptor *d,
			 struct berth_error **err)
{
	*d = (struct descriptor){ .size = m->size, .media_type = strdup(media_type) };
	memcpy(d->digest, m->digest, sizeof(d->digest));
	return d->media_type ? 0 : berth_error_set(err, ENOMEM, "out of memory");
}

static int docker_layer(struct import *im, const struct json *ref, size_t i, struct plan *p,
			struct berth_error **err)
{
	char what[sizeof(p->what) + 32];
	snprintf(what, sizeof(what), "%s: Layers[%zu]", p->what, i);
	struct member *m;
	int r = member_resolve(im, bjson_string(ref), what, &m, err);
	if (r == 0 && check_digest_name(m, err) < 0)
		r = berth_error_wrap(err, "%s", what);
	if (r < 0)
		return r;
	const char *mt = sniff_layer_type(m);
	/* a plain tar layer is its own diffID: a mismatch shows before anything is unpacked */
	if (strcmp(mt, MT_OCI_LAYER) == 0 && strcmp(m->digest, p->config.diff_ids[i]) != 0)
		return berth_error_set(err, EILSEQ, "%s: %s has digest %s, the config's diff_ids[%zu] is %s", what,
				       m->path, m->digest, i, p->config.diff_ids[i]);
	p->layer_members[i] = m;
	return descriptor_of(m, mt, &p->manifest.layers[i], err);
}

static void write_descriptor(struct json_writer *w, const struct descriptor *d)
{
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "mediaType", d->media_type);
	bjson_writer_kv_string(w, "digest", d->digest);
	bjson_writer_key(w, "size");
	bjson_writer_uint(w, d->size);
	bjson_writer_end_object(w);
}

/* The OCI image manifest for a docker-archive image, and its descriptor. */
static int docker_manifest(struct plan *p, struct berth_error **err)
{
	struct json_writer *w = bjson_writer_new(false);
	bjson_writer_begin_object(w);
	bjson_writer_kv_int(w, "schemaVersion", 2);
	bjson_writer_kv_string(w, "mediaType", p->manifest.media_type);
	bjson_writer_key(w, "config");
	write_descriptor(w, &p->manifest.config);
	bjson_writer_key(w, "layers");
	bjson_writer_begin_array(w);
	for (size_t i = 0; i < p->manifest.n_layers; i++)
		write_descriptor(w, &p->manifest.layers[i]);
	bjson_writer_end_array(w);
	bjson_writer_end_object(w);
	int r = bjson_writer_finish(w, &p->manifest_json, &p->manifest_len);
	if (r < 0)
		return berth_error_set(err, -r, "%s: cannot write the image manifest", p->what);
	struct descriptor d = { .size = p->manifest_len };
	r = digest_of_buffer(p->manifest_json, p->manifest_len, d.digest, err);
	return r < 0 ? r : plan_set_desc(p, &d, err);
}

static int docker_image(struct import *im, const struct json *item, struct plan *p, struct berth_error **err)
{
	char what[sizeof(p->what) + 16];
	snprintf(what, sizeof(what), "%s: Config", p->what);
	const struct json *layers = bjson_object_get(item, "Layers");
	if (bjson_type_of(item) != JSON_OBJECT || bjson_type_of(layers) != JSON_ARRAY)
		return berth_error_set(err, EINVAL, "%s: expected an object with Config, RepoTags and Layers", p->what);
	p->manifest.n_layers = bjson_array_size(layers);
	if (!(p->manifest.media_type = strdup(MT_OCI_MANIFEST)) ||
	    !(p->manifest.layers = calloc(p->manifest.n_layers + 1, sizeof(*p->manifest.layers))))
		return berth_error_set(err, ENOMEM, "out of memory");
	int r = docker_names(bjson_object_get(item, "RepoTags"), p, err);
	if (r == 0)
		r = member_resolve(im, bjson_string(bjson_object_get(item, "Config")), what, &p->config_member, err);
	if (r == 0 && check_digest_name(p->config_member, err) < 0)
		r = berth_error_wrap(err, "%s", what);
	if (r == 0)
		r = descriptor_of(p->config_member, MT_OCI_CONFIG, &p->manifest.config, err);
	if (r == 0)
		r = config_load(im, p, err);
	for (size_t i = 0; r == 0 && i < p->manifest.n_layers; i++)
		r = docker_layer(im, bjson_array_get(layers, i), i, p, err);
	return r == 0 ? docker_manifest(p, err) : r;
}

static int plan_docker(struct import *im, struct member *manifest, struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *j = NULL;
	int r = member_read_json(im, manifest, &j, err);
	if (r < 0)
		return r;
	size_t n = bjson_array_size(j);
	if (bjson_type_of(j) != JSON_ARRAY || n == 0)
		return berth_error_set(err, EINVAL, "manifest.json: expected a non-empty array");
	if (!(im->plans = calloc(n, sizeof(*im->plans))))
		return berth_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct plan *p = &im->plans[im->n_plans++];
		snprintf(p->what, sizeof(p->what), "manifest.json[%zu]", i);
		r = docker_image(im, bjson_array_get(j, i), p, err);
	}
	return r;
}

/* index.json makes an oci-archive (Docker 25 writes manifest.json too: the OCI side keeps the
 * manifests' digests as they were). */
static int plan_images(struct import *im, struct berth_error **err)
{
	struct member *m = member_find(im, "index.json");
	if (m && !m->link)
		return plan_oci(im, m, err);
	m = member_find(im, "manifest.json");
	if (m && !m->link)
		return plan_docker(im, m, err);
	return berth_error_set(err, EINVAL,
			       "neither an oci-archive (index.json) nor a docker-archive (manifest.json)");
}

/* ---- import: storing ---- */

static int store_layers(struct import *im, struct plan *p, struct berth_error **err)
{
	_cleanup_free_ char(*chains)[DIGEST_LEN + 1] = calloc(p->manifest.n_layers + 1, sizeof(*chains));
	if (!chains)
		return berth_error_set(err, ENOMEM, "out of memory");
	int r = chain_ids((const char(*)[DIGEST_LEN + 1])p->config.diff_ids, p->config.n_diff_ids, chains, err);
	for (size_t i = 0; r == 0 && i < p->manifest.n_layers; i++) {
		if (store_snapshot_exists(im->s, chains[i]))
			continue;
		r = store_snapshot_create(im->s, &p->manifest.layers[i], p->config.diff_ids[i], chains[i], err);
		if (r < 0)
			r = berth_error_wrap(err, "%s", p->layer_members[i]->path);
	}
	return r;
}

static int store_image(struct import *im, struct plan *p, struct berth_error **err)
{
	int r = member_commit(im, p->config_member, err);
	for (size_t i = 0; r == 0 && i < p->manifest.n_layers; i++)
		r = member_commit(im, p->layer_members[i], err);
	if (r == 0)
		r = store_layers(im, p, err);
	if (r == 0 && p->manifest_member)
		r = member_commit(im, p->manifest_member, err);
	else if (r == 0)
		r = store_blob_write(im->s, p->desc.digest, p->manifest_json, p->manifest_len, NULL, err);
	return r < 0 ? berth_error_wrap(err, "%s", p->what) : 0;
}

static bool strv_contains(char *const *v, const char *s)
{
	for (; v && *v; v++)
		if (strcmp(*v, s) == 0)
			return true;
	return false;
}

/* Last: each name, once everything it points to is in the store. */
static int record_names(struct import *im, char ***ret_names, struct berth_error **err)
{
	size_t total = 0, n = 0;
	for (size_t i = 0; i < im->n_plans; i++)
		for (char **s = im->plans[i].names; *s; s++)
			total++;
	_cleanup_strv_ char **names = calloc(total + 1, sizeof(*names));
	if (!names)
		return berth_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < im->n_plans; i++)
		for (char **s = im->plans[i].names; *s; s++) {
			int r = store_index_put(im->s, *s, &im->plans[i].desc, err);
			if (r < 0)
				return r;
			if (!strv_contains(names, *s) && !(names[n++] = strdup(*s)))
				return berth_error_set(err, ENOMEM, "out of memory");
		}
	if (ret_names)
		*ret_names = TAKE_PTR(names);
	return 0;
}

int image_import(struct image_store *s, const char *path, char ***ret_names, struct berth_error **err)
{
	_cleanup_close_ int lock = store_lock(s, false, err);
	if (lock < 0)
		return berth_error_wrap(err, "import %s", path);
	store_snapshot_clean_stale(s, false);
	struct import im = { .s = s };
	int r = read_members(&im, path, err);
	if (r == 0)
		r = plan_images(&im, err);
	for (size_t i = 0; r == 0 && i < im.n_plans; i++)
		r = store_image(&im, &im.plans[i], err);
	if (r == 0)
		r = record_names(&im, ret_names, err);
	import_clear(&im);
	return r < 0 ? berth_error_wrap(err, "import %s", path) : 0;
}

/* ---- export ---- */

struct export_image {
	const char *digest; /* the manifest's (points into the store's index) */
	struct stored_image im;
};

struct export {
	struct image_store *s;
	struct store_entry *v; /* the store's index */
	size_t nv;
	struct store_entry *sel; /* the entries exported (shallow copies of v's) */
	size_t n_sel;
	struct export_image *images; /* one per manifest */
	size_t n_images;
	char (*written)[DIGEST_LEN + 1]; /* blobs already in the tar */
	size_t n_written;
	struct archive *a;
};

static void export_clear(struct export *x)
{
	for (size_t i = 0; i < x->n_images; i++)
		stored_image_clear(&x->images[i].im);
	free(x->images);
	free(x->sel);
	free(x->written);
	store_entries_free(x->v, x->nv);
	if (x->a)
		archive_write_free(x->a);
}

/* Looks every name up (and loads every image) before anything is written. */
static int export_select(struct export *x, const char *const *names, size_t n, struct berth_error **err)
{
	int r = store_index_load(x->s, &x->v, &x->nv, err);
	if (r < 0)
		return r;
	if (!(x->sel = calloc(n, sizeof(*x->sel))) || !(x->images = calloc(n, sizeof(*x->images))))
		return berth_error_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		size_t k, j;
		if ((r = store_find(x->v, x->nv, names[i], &k, err)) < 0)
			return r;
		for (j = 0; j < x->n_sel && strcmp(x->sel[j].name, x->v[k].name) != 0; j++)
			;
		if (j == x->n_sel)
			x->sel[x->n_sel++] = x->v[k];
		for (j = 0; j < x->n_images && strcmp(x->images[j].digest, x->v[k].desc.digest) != 0; j++)
			;
		if (j < x->n_images)
			continue;
		x->images[j].digest = x->v[k].desc.digest;
		if ((r = stored_image_load(x->s, x->images[j].digest, &x->images[j].im, err)) < 0)
			return berth_error_wrap(err, "%s", x->v[k].name);
		x->n_images++;
	}
	return 0;
}

static int write_header(struct export *x, const char *name, mode_t type, uint64_t size,
			struct berth_error **err)
{
	struct archive_entry *e = archive_entry_new();
	if (!e)
		return berth_error_set(err, ENOMEM, "out of memory");
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
	archive_entry_set_size(e, (la_int64_t)size);
	/* no times, owners or modes from the host: the same images give the same tar */
	archive_entry_set_mtime(e, 0, 0);
	int r = archive_write_header(x->a, e);
	archive_entry_free(e);
	return r == ARCHIVE_OK ? 0 : archive_fail(x->a, err, name);
}

static int write_data(struct export *x, const char *name, const void *buf, size_t len,
		      struct berth_error **err)
{
	la_ssize_t n = archive_write_data(x->a, buf, len);
	return n >= 0 && (size_t)n == len ? 0 : archive_fail(x->a, err, name);
}

static int write_text(struct export *x, const char *name, const char *text, size_t len,
		      struct berth_error **err)
{
	int r = write_header(x, name, AE_IFREG, len, err);
	return r < 0 ? r : write_data(x, name, text, len, err);
}

static bool written_before(const struct export *x, const char *digest)
{
	for (size_t i = 0; i < x->n_written; i++)
		if (strcmp(x->written[i], digest) == 0)
			return true;
	return false;
}

static int copy_blob(struct export *x, int fd, const char *name, uint64_t size, struct berth_error **err)
{
	_cleanup_free_ char *buf = malloc(COPY_BUF);
	if (!buf)
		return berth_error_set(err, ENOMEM, "out of memory");
	uint64_t done = 0;
	while (done < size) {
		ssize_t n = read(fd, buf, COPY_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return berth_error_setsys(err, errno, "reading %s", name);
		if (n == 0 || done + (uint64_t)n > size)
			return berth_error_set(err, EIO, "%s: its size changed while it was read", name);
		int r = write_data(x, name, buf, (size_t)n, err);
		if (r < 0)
			return r;
		done += (uint64_t)n;
	}
	return 0;
}

/* blobs/sha256/<hex>, once per tar however many images share it. */
static int write_blob(struct export *x, const struct descriptor *d, struct berth_error **err)
{
	if (written_before(x, d->digest))
		return 0;
	char name[sizeof(BLOB_DIR) + DIGEST_HEX_LEN];
	snprintf(name, sizeof(name), BLOB_DIR "%s", digest_hex(d->digest));
	_cleanup_close_ int fd = store_blob_open(x->s, d->digest, err);
	struct stat st;
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		return berth_error_setsys(err, errno, "blob %s", d->digest);
	if ((uint64_t)st.st_size != d->size)
		return berth_error_set(err, EIO, "blob %s: %lld bytes in the store, %llu expected (see image check)",
				       d->digest, (long long)st.st_size, (unsigned long long)d->size);
	int r = write_header(x, name, AE_IFREG, d->size, err);
	if (r == 0)
		r = copy_blob(x, fd, name, d->size, err);
	if (r == 0)
		memcpy(x->written[x->n_written++], d->digest, DIGEST_LEN + 1);
	return r;
}

static int write_blobs(struct export *x, struct berth_error **err)
{
	size_t total = 0;
	for (size_t i = 0; i < x->n_images; i++)
		total += 2 + x->images[i].im.manifest.n_layers;
	if (!(x->written = calloc(total, sizeof(*x->written))))
		return berth_error_set(err, ENOMEM, "out of memory");
	int r = write_header(x, "blobs/", AE_IFDIR, 0, err);
	if (r == 0)
		r = write_header(x, BLOB_DIR, AE_IFDIR, 0, err);
	for (size_t i = 0; r == 0 && i < x->n_images; i++) {
		const struct store_entry *e = NULL;
		for (size_t j = 0; !e && j < x->n_sel; j++)
			if (strcmp(x->sel[j].desc.digest, x->images[i].digest) == 0)
				e = &x->sel[j];
		const struct manifest *m = &x->images[i].im.manifest;
		r = write_blob(x, &e->desc, err);
		if (r == 0)
			r = write_blob(x, &m->config, err);
		for (size_t k = 0; r == 0 && k < m->n_layers; k++)
			r = write_blob(x, &m->layers[k], err);
	}
	return r;
}

/* The name as Docker shows it: docker.io/library/busybox:latest -> busybox:latest,
 * docker.io/x/y:t -> x/y:t, others whole. NULL for a name without a tag (a RepoTag cannot hold
 * a digest). */
static char *docker_repo_tag(const char *name)
{
	struct reference ref;
	if (reference_parse(name, &ref, NULL) < 0)
		return NULL;
	char *s = NULL;
	const char *path = ref.path;
	bool hub = strcmp(ref.domain, "docker.io") == 0;
	if (hub && strncmp(path, "library/", 8) == 0 && !strchr(path + 8, '/'))
		path += 8;
	if (ref.tag && asprintf(&s, "%s%s%s:%s", hub ? "" : ref.domain, hub ? "" : "/", path, ref.tag) < 0)
		s = NULL;
	reference_clear(&ref);
	return s;
}

static void write_docker_item(struct export *x, struct json_writer *w, const struct export_image *img)
{
	char path[sizeof(BLOB_DIR) + DIGEST_HEX_LEN];
	bjson_writer_begin_object(w);
	snprintf(path, sizeof(path), BLOB_DIR "%s", digest_hex(img->im.manifest.config.digest));
	bjson_writer_kv_string(w, "Config", path);
	bjson_writer_key(w, "RepoTags");
	bjson_writer_begin_array(w);
	for (size_t i = 0; i < x->n_sel; i++) {
		if (strcmp(x->sel[i].desc.digest, img->digest) != 0)
			continue;
		_cleanup_free_ char *tag = docker_repo_tag(x->sel[i].name);
		if (tag)
			bjson_writer_string(w, tag);
	}
	bjson_writer_end_array(w);
	bjson_writer_key(w, "Layers");
	bjson_writer_begin_array(w);
	for (size_t i = 0; i < img->im.manifest.n_layers; i++) {
		snprintf(path, sizeof(path), BLOB_DIR "%s", digest_hex(img->im.manifest.layers[i].digest));
		bjson_writer_string(w, path);
	}
	bjson_writer_end_array(w);
	bjson_writer_end_object(w);
}

/* manifest.json, docker save's: one item per image, with every exported name of it. */
static int write_docker_manifest(struct export *x, struct berth_error **err)
{
	struct json_writer *w = bjson_writer_new(false);
	bjson_writer_begin_array(w);
	for (size_t i = 0; i < x->n_images; i++)
		write_docker_item(x, w, &x->images[i]);
	bjson_writer_end_array(w);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = bjson_writer_finish(w, &text, &len);
	if (r < 0)
		return berth_error_set(err, -r, "manifest.json: cannot write JSON");
	return write_text(x, "manifest.json", text, len, err);
}

static int write_archive(struct export *x, int fd, struct berth_error **err)
{
	if (!(x->a = archive_write_new()))
		return berth_error_set(err, ENOMEM, "out of memory");
	if (archive_write_set_format_pax_restricted(x->a) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(x->a, 1) != ARCHIVE_OK ||
	    archive_write_open_fd(x->a, fd) != ARCHIVE_OK)
		return archive_fail(x->a, err, "starting the tar");
	_cleanup_free_ char *index = NULL;
	size_t len = 0;
	int r = write_text(x, "oci-layout", OCI_LAYOUT_TEXT, strlen(OCI_LAYOUT_TEXT), err);
	if (r == 0)
		r = write_blobs(x, err);
	if (r == 0)
		r = store_index_format(x->sel, x->n_sel, &index, &len, err);
	if (r == 0)
		r = write_text(x, "index.json", index, len, err);
	if (r == 0)
		r = write_docker_manifest(x, err);
	if (r == 0 && archive_write_close(x->a) != ARCHIVE_OK)
		r = archive_fail(x->a, err, "finishing the tar");
	return r;
}

/* "<dir>/.<name>.tmp-XXXXXX" next to path, so the rename stays on one file system. */
static int open_tmp(const char *path, char **ret, struct berth_error **err)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	_cleanup_free_ char *tmp = NULL;
	if (!*base)
		return berth_error_set(err, EINVAL, "not a file name");
	if (asprintf(&tmp, "%.*s.%s.tmp-XXXXXX", (int)(base - path), path, base) < 0)
		return berth_error_set(err, ENOMEM, "out of memory");
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return berth_error_setsys(err, errno, "creating %s", tmp);
	*ret = TAKE_PTR(tmp);
	return fd;
}

static int export_to(struct export *x, const char *path, struct berth_error **err)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = open_tmp(path, &tmp, err);
	if (fd < 0)
		return fd;
	int r = write_archive(x, fd, err);
	if (r == 0 && fsync(fd) < 0)
		r = berth_error_setsys(err, errno, "%s", tmp);
	if (r == 0 && fchmod(fd, 0644) < 0)
		r = berth_error_setsys(err, errno, "%s", tmp);
	if (r == 0 && rename(tmp, path) < 0)
		r = berth_error_setsys(err, errno, "renaming %s", tmp);
	if (r < 0)
		unlink(tmp);
	return r;
}

int image_export(struct image_store *s, const char *const *names, size_t n, const char *path,
		 struct berth_error **err)
{
	if (n == 0)
		return berth_error_set(err, EINVAL, "export %s: no image names given", path);
	_cleanup_close_ int lock = store_lock(s, false, err);
	if (lock < 0)
		return berth_error_wrap(err, "export %s", path);
	struct export x = { .s = s };
	int r = export_select(&x, names, n, err);
	if (r == 0)
		r = export_to(&x, path, err);
	export_clear(&x);
	return r < 0 ? berth_error_wrap(err, "export %s", path) : 0;
}
