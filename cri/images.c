/* Images: pulls into the store (image/), mirrored in the database's images table so that
 * `berth` and the CRI layer can list them with their pull times. The store is the truth: a
 * container's rootfs lease keeps its snapshots even when its image's name is removed. */
#include "cri/manager-internal.h"
#include "base/cleanup.h"
#include "base/json.h"
#include "base/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int summary_of(struct manager *m, const char *name, struct manager_image *ret,
		      struct berth_error **err)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_(bjson_freep) struct json *j = NULL;
	int r;
	if ((r = image_inspect(m->images, name, &text, err)) < 0 ||
	    (r = bjson_parse(text, &j, err)) < 0)
		return r;
	const char *id = bjson_string(bjson_object_get(j, "configDigest"));
	const char *digest = bjson_string(bjson_object_get(j, "digest"));
	uint64_t size = 0;
	bjson_uint64(bjson_object_get(j, "size"), &size);
	struct manager_image im = { .name = strdup(name),
				    .id = id ? strdup(id) : NULL,
				    .digest = digest ? strdup(digest) : NULL,
				    .size = size };
	if (!im.name || !im.id || !im.digest) {
		manager_image_clear(&im);
		return berth_error_set(err, EIO, "image %s: incomplete description in the store",
				       name);
	}
	*ret = im;
	return 0;
}

int manager_image_pull(struct manager *m, const char *name, struct manager_image *ret,
		       struct berth_error **err)
{
	_cleanup_free_ char *norm = NULL;
	int r = image_reference_normalize(name, &norm, err);
	if (r < 0)
		return berth_error_wrap(err, "image");
	if ((r = image_pull(m->images, norm, NULL, NULL, NULL, NULL, err)) < 0)
		return berth_error_wrap(err, "pull %s", norm);
	if ((r = summary_of(m, norm, ret, err)) < 0)
		return berth_error_wrap(err, "pull %s", norm);
	struct db_image row = { .id = ret->id,
				.name = ret->name,
				.repo_digest = ret->digest,
				.size = ret->size,
				.pulled_ns = mgr_now_ns() };
	_cleanup_error_ struct berth_error *e = NULL;
	if (db_image_put(m->db, &row, &e) < 0) /* the store has it; the mirror row is a cache */
		log_warn("image %s: recording the pull: %s", norm, e ? e->msg : "");
	log_info("image %s pulled: %s", norm, ret->id);
	return 0;
}

int manager_image_list(struct manager *m, struct manager_image **ret, size_t *ret_n,
		       struct berth_error **err)
{
	struct image_summary *v = NULL;
	size_t n = 0;
	int r = image_list(m->images, &v, &n, err);
	if (r < 0)
		return r;
	struct manager_image *out = calloc(n + 1, sizeof(*out));
	for (size_t i = 0; out && i < n; i++) {
		out[i] = (struct manager_image){ .name = strdup(v[i].name),
						 .id = strdup(v[i].config_digest),
						 .digest = strdup(v[i].digest),
						 .size = v[i].size };
		if (!out[i].name || !out[i].id || !out[i].digest) {
			manager_image_list_free(out, i + 1);
			out = NULL;
		}
	}
	image_summary_free(v, n);
	if (!out)
		return -ENOMEM;
	*ret = out;
	*ret_n = n;
	return 0;
}

int manager_image_remove(struct manager *m, const char *name, struct berth_error **err)
{
	_cleanup_free_ char *norm = NULL;
	_cleanup_error_ struct berth_error *e = NULL;
	int r = image_reference_normalize(name, &norm, err);
	if (r < 0)
		return berth_error_wrap(err, "image");
	r = image_remove(m->images, norm, &e);
	if (r < 0 && r != -ENOENT) { /* CRI's RemoveImage: an image that is not there is fine */
		berth_error_move(err, &e);
		return berth_error_wrap(err, "remove image %s", norm);
	}
	berth_error_freep(&e);
	if (db_image_delete(m->db, norm, &e) < 0 && e && e->code != ENOENT)
		log_warn("image %s: removing its row: %s", norm, e->msg);
	if (r == 0)
		log_info("image %s removed", norm);
	return 0;
}

void manager_image_clear(struct manager_image *im)
{
	free(im->name);
	free(im->id);
	free(im->digest);
	*im = (struct manager_image){ 0 };
}

void manager_image_list_free(struct manager_image *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		manager_image_clear(&v[i]);
	free(v);
}
