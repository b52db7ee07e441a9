/* image_list and image_inspect: what the store holds, read under its shared lock. */
#include "image/store-internal.h"

#include "base/cleanup.h"
#include "base/json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t image_blob_bytes(const struct store_entry *e, const struct stored_image *im)
{
	uint64_t size = e->desc.size + im->manifest.config.size;
	for (size_t i = 0; i < im->manifest.n_layers; i++)
		size += im->manifest.layers[i].size;
	return size;
}

static uint64_t image_unpacked_bytes(struct image_store *s, const struct stored_image *im)
{
	uint64_t size = 0;
	for (size_t i = 0; i < im->manifest.n_layers; i++)
		size += store_snapshot_content_bytes(s, im->chains[i]);
	return size;
}

static int summary_fill(struct image_store *s, const struct store_entry *e, struct image_summary *out,
			struct berth_error **err)
{
	struct stored_image im;
	int r = stored_image_load(s, e->desc.digest, &im, err);
	if (r < 0)
		return r;
	char platform[96];
	const struct platform *p = im.config.platform.os[0] ? &im.config.platform : &e->desc.platform;
	out->name = strdup(e->name);
	out->digest = strdup(e->desc.digest);
	out->config_digest = strdup(im.manifest.config.digest);
	out->created = im.config.created ? strdup(im.config.created) : NULL;
	out->platform = strdup(platform_string(p, platform, sizeof(platform)));
	out->size = image_blob_bytes(e, &im);
	out->unpacked_size = image_unpacked_bytes(s, &im);
	stored_image_clear(&im);
	if (!out->name || !out->digest || !out->config_digest || !out->platform)
		return berth_error_set(err, ENOMEM, "image list: out of memory");
	return 0;
}

int image_list(struct image_store *s, struct image_summary **ret, size_t *ret_n, struct berth_error **err)
{
	_cleanup_close_ int lock = store_lock(s, false, err);
	if (lock < 0)
		return lock;
	struct store_entry *v = NULL;
	size_t n = 0;
	int r = store_index_load(s, &v, &n, err);
	if (r < 0)
		return r;
	struct image_summary *out = calloc(n ? n : 1, sizeof(*out));
	if (!out)
		r = berth_error_set(err, ENOMEM, "image list: out of memory");
	for (size_t i = 0; r == 0 && i < n; i++)
		r = summary_fill(s, &v[i], &out[i], err);
	store_entries_free(v, n);
	if (r < 0) {
		image_summary_free(out, n);
		return r;
	}
	*ret = out;
	*ret_n = n;
	return 0;
}

void image_summary_free(struct image_summary *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].name);
		free(v[i].digest);
		free(v[i].config_digest);
		free(v[i].created);
		free(v[i].platform);
	}
	free(v);
}

static void write_layers(struct json_writer *w, struct image_store *s, const struct stored_image *im)
{
	bjson_writer_key(w, "layers");
	bjson_writer_begin_array(w);
	for (size_t i = 0; i < im->manifest.n_layers; i++) {
		const struct descriptor *d = &im->manifest.layers[i];
		_cleanup_free_ char *snapshot = NULL;
		if (asprintf(&snapshot, "%s/snapshots/%s/fs", s->root, digest_hex(im->chains[i])) < 0)
			snapshot = NULL;
		bjson_writer_begin_object(w);
		bjson_writer_kv_string(w, "digest", d->digest);
		bjson_writer_kv_string(w, "mediaType", d->media_type);
		bjson_writer_key(w, "size");
		bjson_writer_uint(w, d->size);
		bjson_writer_kv_string(w, "diffID", im->config.diff_ids[i]);
		bjson_writer_kv_string(w, "chainID", im->chains[i]);
		bjson_writer_kv_string(w, "snapshot", snapshot ? snapshot : "");
		bjson_writer_key(w, "unpackedSize");
		bjson_writer_uint(w, store_snapshot_content_bytes(s, im->chains[i]));
		bjson_writer_end_object(w);
	}
	bjson_writer_end_array(w);
}

static int inspect_json(struct image_store *s, const struct store_entry *e, const struct stored_image *im,
			char **ret, struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *config = NULL;
	int r = bjson_parse(im->config_json, &config, err);
	if (r < 0)
		return berth_error_wrap(err, "image config %s", im->manifest.config.digest);
	char platform[96];
	const struct platform *p = im->config.platform.os[0] ? &im->config.platform : &e->desc.platform;
	struct json_writer *w = bjson_writer_new(true);
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "name", e->name);
	bjson_writer_kv_string(w, "digest", e->desc.digest);
	bjson_writer_kv_string(w, "mediaType", im->manifest.media_type);
	bjson_writer_kv_string(w, "platform", platform_string(p, platform, sizeof(platform)));
	bjson_writer_key(w, "size");
	bjson_writer_uint(w, image_blob_bytes(e, im));
	bjson_writer_key(w, "unpackedSize");
	bjson_writer_uint(w, image_unpacked_bytes(s, im));
	bjson_writer_kv_string(w, "configDigest", im->manifest.config.digest);
	bjson_writer_key(w, "config");
	bjson_writer_value(w, config);
	write_layers(w, s, im);
	bjson_writer_end_object(w);
	r = bjson_writer_finish(w, ret, NULL);
	return r < 0 ? berth_error_set(err, -r, "image inspect: cannot write JSON") : 0;
}

int image_inspect(struct image_store *s, const char *name, char **ret_json, struct berth_error **err)
{
	_cleanup_close_ int lock = store_lock(s, false, err);
	if (lock < 0)
		return lock;
	struct store_entry e = { 0 };
	struct stored_image im = { 0 };
	int r = store_resolve(s, name, &e, &im, err);
	if (r == 0)
		r = inspect_json(s, &e, &im, ret_json, err);
	stored_image_clear(&im);
	store_entry_clear(&e);
	return r;
}
