/* image_check: every blob's content against its name, every image's layers and snapshots. Apart
 * from gc.c because it hashes whole blobs with OpenSSL (digest-stream.c), which berthd does
 * not link. */
#include "image/store-internal.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct problems {
	char **v;
	size_t n;
	int oom;
};

__attribute__((format(printf, 2, 3))) static void problem(struct problems *p, const char *fmt, ...)
{
	char *line = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&line, fmt, ap);
	va_end(ap);
	char **v = r < 0 ? NULL : realloc(p->v, (p->n + 2) * sizeof(char *));
	if (!v) {
		free(r < 0 ? NULL : line);
		p->oom = 1;
		return;
	}
	p->v = v;
	p->v[p->n++] = line;
	p->v[p->n] = NULL;
}

struct check_ctx {
	struct image_store *s;
	struct problems *p;
};

static int check_blob(void *opaque, const char *name)
{
	struct check_ctx *c = opaque;
	char got[DIGEST_LEN + 1], want[DIGEST_LEN + 8];
	snprintf(want, sizeof(want), "sha256:%s", name);
	if (!digest_is_valid(want)) {
		problem(c->p, "blob %s: not a sha256 digest name", name);
		return 0;
	}
	int r = digest_of_file(c->s->blobs_fd, name, got);
	if (r < 0)
		problem(c->p, "blob %s: %s", want, strerror(-r));
	else if (strcmp(got, want) != 0)
		problem(c->p, "blob %s: content has digest %s", want, got);
	return 0;
}

static void check_snapshot(struct check_ctx *c, const char *image, size_t i, const char *chain, const char *diff_id)
{
	char path[DIGEST_HEX_LEN + 16];
	snprintf(path, sizeof(path), "%s/info.json", digest_hex(chain));
	_cleanup_free_ char *text = NULL;
	_cleanup_(bjson_freep) struct json *j = NULL;
	if (read_file_at(c->s->snapshots_fd, path, &text, NULL, NULL) < 0 || bjson_parse(text, &j, NULL) < 0) {
		problem(c->p, "image %s: layer %zu: snapshot %s is missing or has no readable info.json", image, i, chain);
		return;
	}
	const char *got_chain = bjson_string(bjson_object_get(j, "chainID"));
	const char *got_diff = bjson_string(bjson_object_get(j, "diffID"));
	if (!got_chain || strcmp(got_chain, chain) != 0 || !got_diff || strcmp(got_diff, diff_id) != 0)
		problem(c->p, "image %s: layer %zu: snapshot %s records chainID %s and diffID %s", image, i, chain,
			got_chain ? got_chain : "none", got_diff ? got_diff : "none");
	snprintf(path, sizeof(path), "%s/fs", digest_hex(chain));
	struct stat st;
	if (fstatat(c->s->snapshots_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
		problem(c->p, "image %s: layer %zu: snapshot %s has no fs directory", image, i, chain);
}

static void check_image(struct check_ctx *c, const struct store_entry *e)
{
	struct berth_error *err = NULL;
	struct stored_image im;
	if (stored_image_load(c->s, e->desc.digest, &im, &err) < 0) {
		problem(c->p, "image %s: %s", e->name, err && err->msg ? err->msg : "cannot be read");
		berth_error_free(err);
		return;
	}
	for (size_t i = 0; i < im.manifest.n_layers; i++) {
		const struct descriptor *d = &im.manifest.layers[i];
		if (!store_blob_exists(c->s, d->digest, d->size))
			problem(c->p, "image %s: layer %zu: blob %s is missing or not %llu bytes", e->name, i, d->digest,
				(unsigned long long)d->size);
		check_snapshot(c, e->name, i, im.chains[i], im.config.diff_ids[i]);
	}
	stored_image_clear(&im);
}

int image_check(struct image_store *s, char ***ret_problems, struct berth_error **err)
{
	_cleanup_close_ int lock = store_lock(s, false, err);
	if (lock < 0)
		return lock;
	struct store_entry *v = NULL;
	size_t n = 0;
	int r = store_index_load(s, &v, &n, err);
	if (r < 0)
		return r;
	struct problems p = { 0 };
	struct check_ctx c = { .s = s, .p = &p };
	r = store_for_each_entry(s->blobs_fd, check_blob, &c);
	for (size_t i = 0; r == 0 && i < n; i++)
		check_image(&c, &v[i]);
	store_entries_free(v, n);
	if (r == 0 && p.oom)
		r = -ENOMEM;
	if (r < 0) {
		strv_free(p.v);
		return berth_error_setsys(err, -r, "checking %s", s->root);
	}
	*ret_problems = p.v;
	return 0;
}
