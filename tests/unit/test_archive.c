/* image/archive.c: export of images built in a temporary store into one tar that is both an
 * oci-archive and a docker-archive, import of it into a fresh store, hand-made docker-archives
 * (the old "<id>/layer.tar" layout and the Docker 25 blobs/ one) and oci-archives (a
 * multi-platform index), and the refusals: tampered blobs, paths out of the archive, missing
 * files, bad layer counts, archives of neither kind. After a failure the store has no temporary
 * file in ingest/ and no name. */
#include "unit.h"

#include "base/cleanup.h"
#include "base/json.h"
#include "image/store-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <sys/stat.h>

struct fx {
	struct unit_tmpdir tmp;
	struct image_store *src, *dst;
	struct berth_error *err;
	char file[128]; /* the archive */
};

static int open_store(struct fx *f, const char *name, struct image_store **ret)
{
	char root[128];
	snprintf(root, sizeof(root), "%s/%s", f->tmp.path, name);
	struct image_store_options o = { .root = root };
	return image_store_open(&o, ret, &f->err);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || unit_tmpdir_create(&f->tmp) < 0 || open_store(f, "src", &f->src) < 0 ||
	    open_store(f, "dst", &f->dst) < 0)
		return -1;
	snprintf(f->file, sizeof(f->file), "%s/images.tar", f->tmp.path);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	image_store_free(f->src);
	image_store_free(f->dst);
	berth_error_free(f->err);
	unit_tmpdir_remove(&f->tmp);
	free(f);
	return 0;
}

/* ---- building tars in memory ---- */

struct buf {
	char *p;
	size_t len, cap;
};

static la_ssize_t buf_write_cb(struct archive *a, void *opaque, const void *data, size_t len)
{
	struct buf *b = opaque;
	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return (la_ssize_t)len;
}

enum comp { PLAIN, GZIP, ZSTD };

static struct archive *writer_new(struct buf *out, enum comp c, bool raw)
{
	struct archive *a = archive_write_new();
	assert_non_null(a);
	assert_int_equal(raw ? archive_write_set_format_raw(a) : archive_write_set_format_pax_restricted(a),
			 ARCHIVE_OK);
	if (c == GZIP)
		assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	if (c == ZSTD)
		assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
	archive_write_set_bytes_in_last_block(a, 1);
	*out = (struct buf){ 0 };
	assert_int_equal(archive_write_open2(a, out, NULL, buf_write_cb, NULL, NULL), ARCHIVE_OK);
	return a;
}

/* link: a symlink's target; a hardlink's with type AE_IFREG */
static void add_entry(struct archive *a, const char *path, mode_t type, const void *data, size_t len,
		      const char *link)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, type == AE_IFREG ? 0644 : 0755);
	archive_entry_set_mtime(e, 1700000000, 0);
	if (link && type == AE_IFLNK)
		archive_entry_set_symlink(e, link);
	else if (link)
		archive_entry_set_hardlink(e, link);
	archive_entry_set_size(e, (la_int64_t)len);
	assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
	if (len)
		assert_int_equal(archive_write_data(a, data, len), (la_ssize_t)len);
	archive_entry_free(e);
}

static void writer_finish(struct archive *a)
{
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

/* A layer's tar: "path=content" (file), "path/" (directory). */
static struct buf layer_tar(const char *const *files)
{
	struct buf out;
	struct archive *a = writer_new(&out, PLAIN, false);
	for (; *files; files++) {
		const char *eq = strchr(*files, '=');
		char path[128];
		snprintf(path, sizeof(path), "%.*s", eq ? (int)(eq - *files) : (int)strlen(*files), *files);
		if (eq)
			add_entry(a, path, AE_IFREG, eq + 1, strlen(eq + 1), NULL);
		else
			add_entry(a, path, AE_IFDIR, NULL, 0, NULL);
	}
	writer_finish(a);
	return out;
}

static struct buf compress(const struct buf *in, enum comp c)
{
	if (c == PLAIN) {
		struct buf out = { .p = malloc(in->len), .len = in->len, .cap = in->len };
		memcpy(out.p, in->p, in->len);
		return out;
	}
	struct buf out;
	struct archive *a = writer_new(&out, c, true);
	add_entry(a, "data", AE_IFREG, in->p, in->len, NULL);
	writer_finish(a);
	return out;
}

struct layer {
	struct buf blob;
	char digest[DIGEST_LEN + 1];
	char diff_id[DIGEST_LEN + 1];
	const char *media_type;
};

static void layer_make(struct fx *f, struct layer *l, const char *const *files, enum comp c)
{
	static const char *const types[] = { MT_OCI_LAYER, MT_OCI_LAYER_GZIP, MT_OCI_LAYER_ZSTD };
	struct buf plain = layer_tar(files);
	l->blob = compress(&plain, c);
	l->media_type = types[c];
	MUST_OK(f, digest_of_buffer(plain.p, plain.len, l->diff_id, &f->err));
	MUST_OK(f, digest_of_buffer(l->blob.p, l->blob.len, l->digest, &f->err));
	free(plain.p);
}

static const char *const files_a[] = { "etc/", "etc/os-release=alpha\n", "bin/", "bin/sh=#!shell\n", NULL };
static const char *const files_b[] = { "etc/", "etc/motd=hello\n", NULL };
static const char *const files_c[] = { "usr/", "usr/share/", "usr/share/doc=zstd layer\n", NULL };

/* ---- image documents ---- */

static char *config_json(const struct layer *const *layers, size_t n, const char *tamper_diff_id)
{
	struct platform p;
	platform_host(&p);
	struct json_writer *w = bjson_writer_new(false);
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "architecture", p.architecture);
	bjson_writer_kv_string(w, "os", p.os);
	bjson_writer_key(w, "rootfs");
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "type", "layers");
	bjson_writer_key(w, "diff_ids");
	bjson_writer_begin_array(w);
	for (size_t i = 0; i < n; i++)
		bjson_writer_string(w, i == 0 && tamper_diff_id ? tamper_diff_id : layers[i]->diff_id);
	bjson_writer_end_array(w);
	bjson_writer_end_object(w);
	bjson_writer_end_object(w);
	char *text = NULL;
	assert_int_equal(bjson_writer_finish(w, &text, NULL), 0);
	return text;
}

static void kv_descriptor(struct json_writer *w, const char *mt, const char *digest, size_t size)
{
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "mediaType", mt);
	bjson_writer_kv_string(w, "digest", digest);
	bjson_writer_key(w, "size");
	bjson_writer_uint(w, size);
	bjson_writer_end_object(w);
}

static char *manifest_json(const char *config, const struct layer *const *layers, size_t n)
{
	char digest[DIGEST_LEN + 1];
	assert_int_equal(digest_of_buffer(config, strlen(config), digest, NULL), 0);
	struct json_writer *w = bjson_writer_new(false);
	bjson_writer_begin_object(w);
	bjson_writer_kv_int(w, "schemaVersion", 2);
	bjson_writer_kv_string(w, "mediaType", MT_OCI_MANIFEST);
	bjson_writer_key(w, "config");
	kv_descriptor(w, MT_OCI_CONFIG, digest, strlen(config));
	bjson_writer_key(w, "layers");
	bjson_writer_begin_array(w);
	for (size_t i = 0; i < n; i++)
		kv_descriptor(w, layers[i]->media_type, layers[i]->digest, layers[i]->blob.len);
	bjson_writer_end_array(w);
	bjson_writer_end_object(w);
	char *text = NULL;
	assert_int_equal(bjson_writer_finish(w, &text, NULL), 0);
	return text;
}

struct img {
	char manifest[DIGEST_LEN + 1];
	size_t manifest_size;
	char config[DIGEST_LEN + 1];
	char chains[4][DIGEST_LEN + 1];
	size_t n;
};

static void name_image(struct fx *f, struct image_store *s, const char *name, const struct img *im)
{
	struct descriptor d = { .media_type = MT_OCI_MANIFEST, .size = im->manifest_size };
	memcpy(d.digest, im->manifest, sizeof(d.digest));
	_cleanup_free_ char *full = NULL;
	MUST_OK(f, image_reference_normalize(name, &full, &f->err));
	MUST_OK(f, store_index_put(s, full, &d, &f->err));
}

/* Layers, config and manifest into the store, and each name pointing at it. */
static void store_put_image(struct fx *f, struct image_store *s, const struct layer *const *layers, size_t n,
			    const char *const *names, struct img *out)
{
	char diff_ids[4][DIGEST_LEN + 1];
	out->n = n;
	for (size_t i = 0; i < n; i++) {
		MUST_OK(f, store_blob_write(s, layers[i]->digest, layers[i]->blob.p, layers[i]->blob.len, NULL, &f->err));
		memcpy(diff_ids[i], layers[i]->diff_id, DIGEST_LEN + 1);
	}
	MUST_OK(f, chain_ids((const char(*)[DIGEST_LEN + 1])diff_ids, n, out->chains, &f->err));
	_cleanup_free_ char *config = config_json(layers, n, NULL);
	_cleanup_free_ char *manifest = manifest_json(config, layers, n);
	MUST_OK(f, store_blob_write(s, NULL, config, strlen(config), out->config, &f->err));
	MUST_OK(f, store_blob_write(s, NULL, manifest, strlen(manifest), out->manifest, &f->err));
	out->manifest_size = strlen(manifest);
	for (; *names; names++)
		name_image(f, s, *names, out);
}

/* ---- reading results ---- */

struct member {
	char path[160];
	struct buf data;
};

struct listing {
	struct member v[64];
	size_t n;
};

static void listing_read(const char *path, struct listing *l)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_filename(a, path, 1 << 16), ARCHIVE_OK);
	struct archive_entry *e;
	l->n = 0;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		assert_true(l->n < ARRAY_SIZE(l->v));
		struct member *m = &l->v[l->n++];
		snprintf(m->path, sizeof(m->path), "%s", archive_entry_pathname(e));
		size_t size = (size_t)archive_entry_size(e);
		m->data = (struct buf){ .p = calloc(1, size + 1), .len = size, .cap = size + 1 };
		if (size)
			assert_int_equal(archive_read_data(a, m->data.p, size), (la_ssize_t)size);
	}
	archive_read_free(a);
}

static void listing_clear(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].data.p);
	l->n = 0;
}

static const struct member *listing_get(const struct listing *l, const char *path)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].path, path) == 0)
			return &l->v[i];
	return NULL;
}

static struct json *listing_json(const struct listing *l, const char *path)
{
	const struct member *m = listing_get(l, path);
	struct json *j = NULL;
	if (!m)
		fail_msg("%s: not in the archive", path);
	assert_int_equal(bjson_parse(m->data.p, &j, NULL), 0);
	return j;
}

static void blob_path(const char *digest, char out[96])
{
	snprintf(out, 96, "blobs/sha256/%.64s", digest_hex(digest));
}

static int ingest_files(struct fx *f, const char *store)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/%s/ingest", f->tmp.path, store);
	return unit_count_entries(path);
}

static size_t index_size(struct fx *f, struct image_store *s)
{
	struct store_entry *v = NULL;
	size_t n = 0;
	MUST_OK(f, store_index_load(s, &v, &n, &f->err));
	store_entries_free(v, n);
	return n;
}

/* The manifest digest a name has in a store (NULL-terminated string in out). */
static void digest_of_name(struct fx *f, struct image_store *s, const char *name, char out[DIGEST_LEN + 1])
{
	struct store_entry *v = NULL;
	size_t n = 0, i = 0;
	MUST_OK(f, store_index_load(s, &v, &n, &f->err));
	MUST_OK(f, store_find(v, n, name, &i, &f->err));
	memcpy(out, v[i].desc.digest, DIGEST_LEN + 1);
	store_entries_free(v, n);
}

static void assert_snapshots(struct fx *f, struct image_store *s, const char *manifest)
{
	struct stored_image im;
	MUST_OK(f, stored_image_load(s, manifest, &im, &f->err));
	for (size_t i = 0; i < im.manifest.n_layers; i++)
		assert_true(store_snapshot_exists(s, im.chains[i]));
	stored_image_clear(&im);
}

static void write_buf(const char *path, const struct buf *b)
{
	FILE *fp = fopen(path, "we");
	assert_non_null(fp);
	assert_int_equal(fwrite(b->p, 1, b->len, fp), b->len);
	fclose(fp);
}

/* A failed import: the error names what, nothing is left in ingest/, no name was recorded. */
static void assert_import_fails(struct fx *f, const char *what)
{
	char **names = NULL;
	assert_true(image_import(f->dst, f->file, &names, &f->err) < 0);
	assert_null(names);
	assert_contains(f->err->msg, what);
	f->err = berth_error_free(f->err);
	assert_int_equal(ingest_files(f, "dst"), 0);
	assert_int_equal(index_size(f, f->dst), 0);
}

/* ---- export, then import ---- */

struct two_images {
	struct layer l[3];
	struct img a, b;
	char pinned[128];
	char full[4][160]; /* the names exported, normalised */
};

/* alpha (gzip + plain layers) under three names, one of them pinned by digest; beta (alpha's
 * first layer + a zstd one). */
static void make_two_images(struct fx *f, struct two_images *t)
{
	layer_make(f, &t->l[0], files_a, GZIP);
	layer_make(f, &t->l[1], files_b, PLAIN);
	layer_make(f, &t->l[2], files_c, ZSTD);
	const struct layer *la[] = { &t->l[0], &t->l[1] }, *lb[] = { &t->l[0], &t->l[2] };
	store_put_image(f, f->src, la, 2, (const char *const[]){ "alpha:1", "someone/alpha:dev", NULL }, &t->a);
	store_put_image(f, f->src, lb, 2, (const char *const[]){ "registry.example.com/team/beta:2", NULL }, &t->b);
	snprintf(t->pinned, sizeof(t->pinned), "alpha@%s", t->a.manifest);
	name_image(f, f->src, t->pinned, &t->a);
	snprintf(t->full[0], sizeof(t->full[0]), "docker.io/library/alpha:1");
	snprintf(t->full[1], sizeof(t->full[1]), "docker.io/someone/alpha:dev");
	snprintf(t->full[2], sizeof(t->full[2]), "docker.io/library/%s", t->pinned);
	snprintf(t->full[3], sizeof(t->full[3]), "registry.example.com/team/beta:2");
}

static void two_images_free(struct two_images *t)
{
	for (size_t i = 0; i < ARRAY_SIZE(t->l); i++)
		free(t->l[i].blob.p);
}

static void export_two(struct fx *f, struct two_images *t)
{
	make_two_images(f, t);
	const char *names[] = { "alpha:1", "someone/alpha:dev", t->pinned, "registry.example.com/team/beta:2" };
	MUST_OK(f, image_export(f->src, names, 4, f->file, &f->err));
}

static void assert_string_array(const struct json *arr, const char *const *want, size_t n)
{
	assert_int_equal(bjson_type_of(arr), JSON_ARRAY);
	assert_int_equal(bjson_array_size(arr), n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(bjson_string(bjson_array_get(arr, i)), want[i]);
}

static void assert_docker_item(const struct json *item, const char *config, const char *const *tags,
			       size_t n_tags, const struct layer *const *layers, size_t n_layers)
{
	char p[96], lp[4][96];
	blob_path(config, p);
	assert_string_equal(bjson_string(bjson_object_get(item, "Config")), p);
	assert_string_array(bjson_object_get(item, "RepoTags"), tags, n_tags);
	const char *want[4];
	for (size_t i = 0; i < n_layers; i++) {
		blob_path(layers[i]->digest, lp[i]);
		want[i] = lp[i];
	}
	assert_string_array(bjson_object_get(item, "Layers"), want, n_layers);
}

static void test_export_is_both_archives(void **state)
{
	struct fx *f = *state;
	struct two_images t;
	export_two(f, &t);
	struct listing l;
	listing_read(f->file, &l);
	const char *blobs[] = { t.a.manifest, t.a.config, t.b.manifest, t.b.config,
				t.l[0].digest, t.l[1].digest, t.l[2].digest };
	size_t n_blobs = 0;
	for (size_t i = 0; i < l.n; i++) {
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(l.v[i].path, l.v[j].path);
		n_blobs += strncmp(l.v[i].path, "blobs/sha256/", 13) == 0 && l.v[i].path[13];
	}
	assert_int_equal(n_blobs, ARRAY_SIZE(blobs)); /* each once, the shared layer too */
	for (size_t i = 0; i < ARRAY_SIZE(blobs); i++) {
		char p[96], got[DIGEST_LEN + 1];
		blob_path(blobs[i], p);
		const struct member *m = listing_get(&l, p);
		assert_non_null(m);
		assert_int_equal(digest_of_buffer(m->data.p, m->data.len, got, NULL), 0);
		assert_string_equal(got, blobs[i]);
	}
	assert_string_equal(listing_get(&l, "oci-layout")->data.p, "{\"imageLayoutVersion\":\"1.0.0\"}");

	/* docker-archive: one item per image, RepoTags in Docker's short form, none for a digest */
	struct json *j = listing_json(&l, "manifest.json");
	assert_int_equal(bjson_array_size(j), 2);
	const struct layer *la[] = { &t.l[0], &t.l[1] }, *lb[] = { &t.l[0], &t.l[2] };
	assert_docker_item(bjson_array_get(j, 0), t.a.config, (const char *const[]){ "alpha:1", "someone/alpha:dev" },
			   2, la, 2);
	assert_docker_item(bjson_array_get(j, 1), t.b.config,
			   (const char *const[]){ "registry.example.com/team/beta:2" }, 1, lb, 2);
	bjson_free(j);

	/* oci-archive: one descriptor per name, both name annotations in full */
	j = listing_json(&l, "index.json");
	const struct json *m = bjson_object_get(j, "manifests");
	assert_int_equal(bjson_array_size(m), 4);
	for (size_t i = 0; i < 4; i++) {
		const struct json *d = bjson_array_get(m, i);
		const struct json *ann = bjson_object_get(d, "annotations");
		assert_string_equal(bjson_string(bjson_object_get(ann, ANNOTATION_REF_NAME)), t.full[i]);
		assert_string_equal(bjson_string(bjson_object_get(ann, ANNOTATION_CONTAINERD_NAME)), t.full[i]);
		assert_string_equal(bjson_string(bjson_object_get(d, "digest")), i < 3 ? t.a.manifest : t.b.manifest);
		assert_string_equal(bjson_string(bjson_object_get(d, "mediaType")), MT_OCI_MANIFEST);
	}
	bjson_free(j);
	listing_clear(&l);
	two_images_free(&t);
}

static void test_roundtrip_keeps_digests(void **state)
{
	struct fx *f = *state;
	struct two_images t;
	export_two(f, &t);
	for (int round = 0; round < 2; round++) { /* the second time everything is there already */
		_cleanup_strv_ char **names = NULL;
		MUST_OK(f, image_import(f->dst, f->file, &names, &f->err));
		for (size_t i = 0; i < 4; i++)
			assert_string_equal(names[i], t.full[i]);
		assert_null(names[4]);
		for (size_t i = 0; i < 4; i++) {
			char a[DIGEST_LEN + 1], b[DIGEST_LEN + 1];
			digest_of_name(f, f->src, names[i], a);
			digest_of_name(f, f->dst, names[i], b);
			assert_string_equal(a, b);
		}
		assert_int_equal(index_size(f, f->dst), 4);
		assert_snapshots(f, f->dst, t.a.manifest);
		assert_snapshots(f, f->dst, t.b.manifest);
		assert_int_equal(ingest_files(f, "dst"), 0);
	}
	/* the layers keep their compression */
	assert_true(store_blob_exists(f->dst, t.l[2].digest, t.l[2].blob.len));
	two_images_free(&t);
}

static void test_export_by_digest_prefix(void **state)
{
	struct fx *f = *state;
	struct two_images t;
	make_two_images(f, &t);
	char prefix[16];
	snprintf(prefix, sizeof(prefix), "%.12s", digest_hex(t.b.manifest));
	MUST_OK(f, image_export(f->src, (const char *const[]){ prefix, t.b.manifest }, 2, f->file, &f->err));
	struct listing l;
	listing_read(f->file, &l);
	struct json *j = listing_json(&l, "manifest.json");
	assert_int_equal(bjson_array_size(j), 1);
	assert_string_array(bjson_object_get(bjson_array_get(j, 0), "RepoTags"),
			    (const char *const[]){ "registry.example.com/team/beta:2" }, 1);
	bjson_free(j);
	listing_clear(&l);
	two_images_free(&t);
}

static void test_export_refusals(void **state)
{
	struct fx *f = *state;
	struct two_images t;
	make_two_images(f, &t);
	/* an unknown name: nothing written, not even a temporary file */
	assert_int_equal(image_export(f->src, (const char *const[]){ "alpha:1", "nope:1" }, 2, f->file, &f->err),
			 -ENOENT);
	assert_contains(f->err->msg, "nope:1");
	f->err = berth_error_free(f->err);
	assert_int_equal(unit_count_entries(f->tmp.path), 2); /* src and dst */
	assert_int_equal(image_export(f->src, NULL, 0, f->file, &f->err), -EINVAL);
	f->err = berth_error_free(f->err);
	char missing[160];
	snprintf(missing, sizeof(missing), "%s/no/such/dir.tar", f->tmp.path);
	assert_int_equal(image_export(f->src, (const char *const[]){ "alpha:1" }, 1, missing, &f->err), -ENOENT);
	assert_contains(f->err->msg, "no/such");
	two_images_free(&t);
}

/* ---- hand-made archives ---- */

struct dentry {
	const char *path;
	const void *data; /* NULL with a path ending in '/': a directory */
	size_t len;
	const char *symlink;
	const char *hardlink;
};

static void write_archive(struct fx *f, enum comp c, const struct dentry *v, size_t n)
{
	struct buf out;
	struct archive *a = writer_new(&out, c, false);
	for (size_t i = 0; i < n; i++) {
		mode_t type = v[i].symlink ? AE_IFLNK : v[i].data || v[i].hardlink ? AE_IFREG : AE_IFDIR;
		add_entry(a, v[i].path, type, v[i].data, v[i].len, v[i].symlink ?: v[i].hardlink);
	}
	writer_finish(a);
	write_buf(f->file, &out);
	free(out.p);
}

#define TEXT(path_, s_) { .path = (path_), .data = (s_), .len = strlen(s_) }
#define BLOB(path_, b_) { .path = (path_), .data = (b_).p, .len = (b_).len }

static char *docker_manifest(const char *config, const char *tags, const char *layers)
{
	char *s = NULL;
	assert_true(asprintf(&s, "[{\"Config\":\"%s\",\"RepoTags\":%s,\"Layers\":%s}]", config, tags, layers) > 0);
	return s;
}

/* docker save before Docker 25: <id>/layer.tar (a repeated layer is a symlink, or here also a
 * hardlink), <config hex>.json. */
struct legacy {
	bool hardlink;
	struct layer l1, l2;
	char *config;
	char config_digest[DIGEST_LEN + 1];
	char config_name[80];
};

static void legacy_make(struct fx *f, struct legacy *g, const char *tamper_diff_id)
{
	*g = (struct legacy){ 0 };
	layer_make(f, &g->l1, files_a, PLAIN);
	layer_make(f, &g->l2, files_b, GZIP);
	const struct layer *v[] = { &g->l1, &g->l2, &g->l1 };
	g->config = config_json(v, 3, tamper_diff_id);
	MUST_OK(f, digest_of_buffer(g->config, strlen(g->config), g->config_digest, &f->err));
	snprintf(g->config_name, sizeof(g->config_name), "%.64s.json", digest_hex(g->config_digest));
}

static void legacy_write(struct fx *f, struct legacy *g, enum comp c, const char *config_name,
			 const char *tags, const char *layers)
{
	_cleanup_free_ char *manifest = docker_manifest(config_name, tags, layers);
	const struct dentry v[] = {
		{ .path = "id1/" }, TEXT("id1/VERSION", "1.0"), TEXT("id1/json", "{}"), BLOB("id1/layer.tar", g->l1.blob),
		{ .path = "id2/" }, BLOB("id2/layer.tar", g->l2.blob),
		{ .path = "id3/" },
		{ .path = "id3/layer.tar", .symlink = g->hardlink ? NULL : "../id1/layer.tar",
		  .hardlink = g->hardlink ? "id1/layer.tar" : NULL },
		TEXT(g->config_name, g->config), TEXT("manifest.json", manifest), TEXT("repositories", "{}"),
	};
	write_archive(f, c, v, ARRAY_SIZE(v));
}

static void legacy_free(struct legacy *g)
{
	free(g->l1.blob.p);
	free(g->l2.blob.p);
	free(g->config);
}

#define LEGACY_LAYERS "[\"id1/layer.tar\",\"id2/layer.tar\",\"./id3/layer.tar\"]"
#define LEGACY_TAGS "[\"busybox:latest\",\"example.com/x/y:z\"]"

static void test_import_docker_legacy(void **state)
{
	struct fx *f = *state;
	struct legacy g;
	legacy_make(f, &g, NULL);
	legacy_write(f, &g, GZIP, g.config_name, LEGACY_TAGS, LEGACY_LAYERS); /* a .tar.gz, too */
	_cleanup_strv_ char **names = NULL;
	MUST_OK(f, image_import(f->dst, f->file, &names, &f->err));
	assert_string_equal(names[0], "docker.io/library/busybox:latest");
	assert_string_equal(names[1], "example.com/x/y:z");
	assert_null(names[2]);
	char a[DIGEST_LEN + 1], b[DIGEST_LEN + 1];
	digest_of_name(f, f->dst, "busybox", a);
	digest_of_name(f, f->dst, "example.com/x/y:z", b);
	assert_string_equal(a, b);
	struct stored_image im;
	MUST_OK(f, stored_image_load(f->dst, a, &im, &f->err));
	assert_string_equal(im.manifest.media_type, MT_OCI_MANIFEST);
	assert_string_equal(im.manifest.config.media_type, MT_OCI_CONFIG);
	assert_string_equal(im.manifest.config.digest, g.config_digest);
	assert_int_equal(im.manifest.n_layers, 3);
	const char *types[] = { MT_OCI_LAYER, MT_OCI_LAYER_GZIP, MT_OCI_LAYER };
	const struct layer *layers[] = { &g.l1, &g.l2, &g.l1 };
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(im.manifest.layers[i].media_type, types[i]);
		assert_string_equal(im.manifest.layers[i].digest, layers[i]->digest);
		assert_true(store_snapshot_exists(f->dst, im.chains[i]));
	}
	stored_image_clear(&im);
	assert_int_equal(ingest_files(f, "dst"), 0);
	/* again, the repeated layer a hardlink: the same manifest, so the same digest */
	g.hardlink = true;
	legacy_write(f, &g, PLAIN, g.config_name, LEGACY_TAGS, LEGACY_LAYERS);
	strv_free(TAKE_PTR(names));
	MUST_OK(f, image_import(f->dst, f->file, &names, &f->err));
	digest_of_name(f, f->dst, "busybox", b);
	assert_string_equal(a, b);
	legacy_free(&g);
}

/* Docker 25: manifest.json with blobs/sha256 paths (here without index.json) and a zstd layer. */
static void test_import_docker_blobs_zstd(void **state)
{
	struct fx *f = *state;
	struct layer l;
	layer_make(f, &l, files_c, ZSTD);
	const struct layer *v[] = { &l };
	_cleanup_free_ char *config = config_json(v, 1, NULL);
	char cd[DIGEST_LEN + 1], cp[96], lp[96], layers[128];
	MUST_OK(f, digest_of_buffer(config, strlen(config), cd, &f->err));
	blob_path(cd, cp);
	blob_path(l.digest, lp);
	snprintf(layers, sizeof(layers), "[\"%s\"]", lp);
	_cleanup_free_ char *manifest = docker_manifest(cp, "[\"zed:1\"]", layers);
	const struct dentry d[] = { { .path = "blobs/" }, { .path = "blobs/sha256/" }, BLOB(lp, l.blob),
				    TEXT(cp, config), TEXT("manifest.json", manifest) };
	write_archive(f, PLAIN, d, ARRAY_SIZE(d));
	_cleanup_strv_ char **names = NULL;
	MUST_OK(f, image_import(f->dst, f->file, &names, &f->err));
	assert_string_equal(names[0], "docker.io/library/zed:1");
	char md[DIGEST_LEN + 1];
	digest_of_name(f, f->dst, "zed:1", md);
	struct stored_image im;
	MUST_OK(f, stored_image_load(f->dst, md, &im, &f->err));
	assert_string_equal(im.manifest.layers[0].media_type, MT_OCI_LAYER_ZSTD);
	assert_true(store_snapshot_exists(f->dst, im.chains[0]));
	stored_image_clear(&im);
	free(l.blob.p);
}

static void test_import_docker_refusals(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *config, *tags, *layers, *expect;
	} cases[] = {
		{ NULL, LEGACY_TAGS, "[\"../id1/layer.tar\",\"id2/layer.tar\",\"id3/layer.tar\"]",
		  "Layers[0]: \"../id1/layer.tar\" is not a relative path inside the archive" },
		{ NULL, LEGACY_TAGS, "[\"/id1/layer.tar\",\"id2/layer.tar\",\"id3/layer.tar\"]",
		  "is not a relative path inside the archive" },
		{ NULL, LEGACY_TAGS, "[\"id1/layer.tar\",\"id9/layer.tar\",\"id3/layer.tar\"]",
		  "Layers[1]: \"id9/layer.tar\" is not in the archive" },
		{ NULL, LEGACY_TAGS, "[\"id1/layer.tar\",\"id2/layer.tar\",\"id3/layer.tar\",\"id1/layer.tar\"]",
		  "4 layers, but the config" },
		{ NULL, "[]", LEGACY_LAYERS, "manifest.json[0]: no RepoTags" },
		{ NULL, "null", LEGACY_LAYERS, "no RepoTags" },
		{ NULL, "[\"Bad:Name\"]", LEGACY_LAYERS, "RepoTags[0]" },
		{ "../cfg.json", LEGACY_TAGS, LEGACY_LAYERS, "Config: \"../cfg.json\" is not a relative path" },
		{ "id1", LEGACY_TAGS, LEGACY_LAYERS, "Config: \"id1\" is not in the archive" },
	};
	struct legacy g;
	legacy_make(f, &g, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		legacy_write(f, &g, PLAIN, cases[i].config ? cases[i].config : g.config_name, cases[i].tags,
			     cases[i].layers);
		assert_import_fails(f, cases[i].expect);
	}
	legacy_free(&g);
}

static void test_import_docker_tampered(void **state)
{
	struct fx *f = *state;
	struct legacy g;
	char other[DIGEST_LEN + 1];
	MUST_OK(f, digest_of_buffer("other", 5, other, &f->err));

	/* a plain layer that is not what the config says: refused before anything is stored */
	legacy_make(f, &g, other);
	legacy_write(f, &g, PLAIN, g.config_name, LEGACY_TAGS, LEGACY_LAYERS);
	assert_import_fails(f, "Layers[0]: id1/layer.tar has digest");
	legacy_free(&g);

	/* a compressed one: found when it is unpacked */
	legacy_make(f, &g, NULL);
	_cleanup_free_ char *config = NULL;
	const struct layer *v[] = { &g.l2, &g.l1 };
	config = config_json(v, 2, other);
	free(g.config);
	g.config = strdup(config);
	MUST_OK(f, digest_of_buffer(g.config, strlen(g.config), g.config_digest, &f->err));
	snprintf(g.config_name, sizeof(g.config_name), "%.64s.json", digest_hex(g.config_digest));
	legacy_write(f, &g, PLAIN, g.config_name, LEGACY_TAGS, "[\"id2/layer.tar\",\"id1/layer.tar\"]");
	assert_import_fails(f, "id2/layer.tar");
	legacy_free(&g);

	/* a config whose name is not its digest */
	legacy_make(f, &g, NULL);
	char wrong[80];
	snprintf(wrong, sizeof(wrong), "%s.json", digest_hex(other));
	snprintf(g.config_name, sizeof(g.config_name), "%s", wrong);
	legacy_write(f, &g, PLAIN, wrong, LEGACY_TAGS, LEGACY_LAYERS);
	char expect[160];
	snprintf(expect, sizeof(expect), "manifest.json[0]: Config: %s: content has digest", wrong);
	assert_import_fails(f, expect);
	legacy_free(&g);
}

/* An exported archive with one byte of one blob changed (same size): the blob is named. */
static void test_import_oci_tampered(void **state)
{
	struct fx *f = *state;
	struct two_images t;
	export_two(f, &t);
	struct listing l;
	listing_read(f->file, &l);
	char target[96];
	blob_path(t.l[1].digest, target);
	struct buf out;
	struct archive *a = writer_new(&out, PLAIN, false);
	for (size_t i = 0; i < l.n; i++) {
		struct member *m = &l.v[i];
		if (strcmp(m->path, target) == 0)
			m->data.p[m->data.len - 1] ^= 1;
		bool dir = m->path[strlen(m->path) - 1] == '/';
		add_entry(a, m->path, dir ? AE_IFDIR : AE_IFREG, m->data.p, m->data.len, NULL);
	}
	writer_finish(a);
	write_buf(f->file, &out);
	free(out.p);
	listing_clear(&l);
	char expect[160];
	snprintf(expect, sizeof(expect), "index.json: manifests[0]: layers[1]: %s: content has digest", target);
	assert_import_fails(f, expect);
	char snapshots[160];
	snprintf(snapshots, sizeof(snapshots), "%s/dst/snapshots", f->tmp.path);
	assert_int_equal(unit_count_entries(snapshots), 0);
	two_images_free(&t);
}

/* An oci-archive made by hand: blobs (NULL-terminated list of documents) and index.json. */
static void oci_write(struct fx *f, const char *index, const struct layer *layer, const char *const *docs)
{
	struct dentry v[8] = { TEXT("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"), TEXT("index.json", index) };
	char paths[8][96];
	size_t n = 2;
	if (layer) {
		blob_path(layer->digest, paths[n]);
		v[n] = (struct dentry)BLOB(paths[n], layer->blob);
		n++;
	}
	for (; *docs; docs++, n++) {
		char d[DIGEST_LEN + 1];
		assert_int_equal(digest_of_buffer(*docs, strlen(*docs), d, NULL), 0);
		blob_path(d, paths[n]);
		v[n] = (struct dentry)TEXT(paths[n], *docs);
	}
	write_archive(f, PLAIN, v, n);
}

static char *oci_index(const char *media_type, const char *doc, const char *annotations, const char *platform)
{
	char d[DIGEST_LEN + 1], *s = NULL;
	assert_int_equal(digest_of_buffer(doc, strlen(doc), d, NULL), 0);
	assert_true(asprintf(&s,
			     "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{\"mediaType\":\"%s\","
			     "\"digest\":\"%s\",\"size\":%zu%s%s%s%s}]}",
			     MT_OCI_INDEX, media_type, d, strlen(doc), annotations ? ",\"annotations\":" : "",
			     annotations ? annotations : "", platform ? ",\"platform\":" : "", platform ? platform : "") > 0);
	return s;
}

static void test_import_oci_multiplatform(void **state)
{
	struct fx *f = *state;
	struct layer l;
	layer_make(f, &l, files_a, GZIP);
	const struct layer *v[] = { &l };
	_cleanup_free_ char *config = config_json(v, 1, NULL);
	_cleanup_free_ char *manifest = manifest_json(config, v, 1);
	struct platform host;
	char platform[128], md[DIGEST_LEN + 1], got[DIGEST_LEN + 1];
	platform_host(&host);
	snprintf(platform, sizeof(platform), "{\"os\":\"%s\",\"architecture\":\"%s\"%s%s%s}", host.os,
		 host.architecture, host.variant[0] ? ",\"variant\":\"" : "", host.variant, host.variant[0] ? "\"" : "");
	/* the platform list: another platform first (its blobs are not in the archive), then the host */
	_cleanup_free_ char *host_only = oci_index(MT_OCI_MANIFEST, manifest, NULL, platform);
	_cleanup_free_ char *other = oci_index(MT_OCI_MANIFEST, "{\"other\":1}", NULL,
					       "{\"os\":\"plan9\",\"architecture\":\"mips\"}");
	_cleanup_free_ char *list = NULL;
	assert_true(asprintf(&list, "%.*s,%s", (int)(strrchr(other, ']') - other), other,
			     strstr(host_only, "[{") + 1) > 0);
	_cleanup_free_ char *index = oci_index(MT_OCI_INDEX, list,
					       "{\"" ANNOTATION_REF_NAME "\":\"example.com/multi:1\"}", NULL);
	oci_write(f, index, &l, (const char *const[]){ config, manifest, list, NULL });
	_cleanup_strv_ char **names = NULL;
	MUST_OK(f, image_import(f->dst, f->file, &names, &f->err));
	assert_string_equal(names[0], "example.com/multi:1");
	MUST_OK(f, digest_of_buffer(manifest, strlen(manifest), md, &f->err));
	digest_of_name(f, f->dst, "example.com/multi:1", got);
	assert_string_equal(got, md);
	assert_snapshots(f, f->dst, md);
	assert_int_equal(ingest_files(f, "dst"), 0);
	free(l.blob.p);
}

static void test_import_oci_names(void **state)
{
	struct fx *f = *state;
	struct layer l;
	layer_make(f, &l, files_b, PLAIN);
	const struct layer *v[] = { &l };
	_cleanup_free_ char *config = config_json(v, 1, NULL);
	_cleanup_free_ char *manifest = manifest_json(config, v, 1);
	static const struct {
		const char *annotations, *expect;
	} cases[] = {
		{ "{\"" ANNOTATION_REF_NAME "\":\"latest\"}",
		  "index.json: manifests[0]: " ANNOTATION_REF_NAME " \"latest\" is a tag without a repository" },
		{ NULL, "index.json: manifests[0]: no image name" },
		{ "{\"" ANNOTATION_CONTAINERD_NAME "\":\"UPPER/case\"}", "manifests[0]" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *index = oci_index(MT_OCI_MANIFEST, manifest, cases[i].annotations, NULL);
		oci_write(f, index, &l, (const char *const[]){ config, manifest, NULL });
		assert_import_fails(f, cases[i].expect);
	}
	/* a blob the archive does not hold */
	_cleanup_free_ char *index =
		oci_index(MT_OCI_MANIFEST, manifest, "{\"" ANNOTATION_REF_NAME "\":\"a/b:c\"}", NULL);
	oci_write(f, index, NULL, (const char *const[]){ config, manifest, NULL });
	char expect[160];
	snprintf(expect, sizeof(expect), "layers[0]: \"blobs/sha256/%.64s\" is not in the archive", digest_hex(l.digest));
	assert_import_fails(f, expect);

	/* Docker 25's index.json: the tag alone in ref.name, the name in containerd's annotation */
	free(index);
	index = oci_index(MT_OCI_MANIFEST, manifest,
			  "{\"" ANNOTATION_CONTAINERD_NAME "\":\"docker.io/library/busybox:latest\",\"" ANNOTATION_REF_NAME
			  "\":\"latest\"}",
			  NULL);
	oci_write(f, index, &l, (const char *const[]){ config, manifest, NULL });
	_cleanup_strv_ char **names = NULL;
	MUST_OK(f, image_import(f->dst, f->file, &names, &f->err));
	assert_string_equal(names[0], "docker.io/library/busybox:latest");
	assert_null(names[1]);
	free(l.blob.p);
}

static void test_import_unknown_archives(void **state)
{
	struct fx *f = *state;
	const struct dentry v[] = { TEXT("hello.txt", "hello"), { .path = "dir/" } };
	write_archive(f, GZIP, v, ARRAY_SIZE(v));
	assert_import_fails(f, "neither an oci-archive (index.json) nor a docker-archive (manifest.json)");
	write_archive(f, PLAIN, v, 0);
	assert_import_fails(f, "neither an oci-archive");
	write_buf(f->file, &(struct buf){ .p = "just some text, not a tar\n", .len = 26 });
	assert_import_fails(f, "reading the archive: Unrecognized archive format");
	/* a docker-archive cut short: what was copied so far is removed */
	struct legacy g;
	legacy_make(f, &g, NULL);
	legacy_write(f, &g, GZIP, g.config_name, LEGACY_TAGS, LEGACY_LAYERS);
	struct stat st;
	assert_int_equal(stat(f->file, &st), 0);
	assert_int_equal(truncate(f->file, st.st_size / 2), 0);
	assert_import_fails(f, "reading the archive");
	legacy_free(&g);
	unlink(f->file);
	assert_int_equal(image_import(f->dst, f->file, NULL, &f->err), -ENOENT);
	assert_contains(f->err->msg, f->file);
	/* an entry that appears twice, and a link out of the archive */
	const struct dentry twice[] = { TEXT("manifest.json", "[]"), TEXT("manifest.json", "[]") };
	write_archive(f, PLAIN, twice, ARRAY_SIZE(twice));
	f->err = berth_error_free(f->err);
	assert_import_fails(f, "manifest.json: appears twice");
	const struct dentry escape[] = { { .path = "a/layer.tar", .symlink = "../../etc/passwd" },
					 TEXT("manifest.json", "[{\"Config\":\"a/layer.tar\",\"RepoTags\":[\"x:1\"],"
							       "\"Layers\":[]}]") };
	write_archive(f, PLAIN, escape, ARRAY_SIZE(escape));
	assert_import_fails(f, "\"a/layer.tar\" is not in the archive");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_export_is_both_archives),
		T(test_roundtrip_keeps_digests),
		T(test_export_by_digest_prefix),
		T(test_export_refusals),
		T(test_import_docker_legacy),
		T(test_import_docker_blobs_zstd),
		T(test_import_docker_refusals),
		T(test_import_docker_tampered),
		T(test_import_oci_tampered),
		T(test_import_oci_multiplatform),
		T(test_import_oci_names),
		T(test_import_unknown_archives),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
