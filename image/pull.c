/* image_pull: resolve the manifest (choosing a platform from an index), fetch the config, then
 * download and unpack the layers in parallel, each worker taking the next layer: a layer unpacks
 * as soon as its own blob is verified, while later layers still download. The name is recorded
 * last, when everything it points to is in the store. */
#include "image/store-internal.h"

#include "base/cleanup.h"
#include "base/log.h"
#include "image/reference-internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_PARALLEL 3

struct pull {
	struct image_store *s;
	struct registry *reg;
	const struct manifest *manifest;
	const struct image_config *config;
	const char (*chains)[DIGEST_LEN + 1];
	image_progress_fn progress;
	void *opaque;
	atomic_size_t next;
	atomic_bool failed;
	pthread_mutex_t lock; /* guards err */
	struct berth_error *err;
};

static void report(struct pull *p, enum image_progress_phase phase, const char *digest, uint64_t done,
		   uint64_t total)
{
	if (!p->progress)
		return;
	struct image_progress ev = { .phase = phase, .digest = digest, .done = done, .total = total };
	pthread_mutex_lock(&p->s->lock);
	p->progress(p->opaque, &ev);
	pthread_mutex_unlock(&p->s->lock);
}

struct blob_sink {
	struct pull *p; /* NULL: no progress (config blobs) */
	struct ingest *in;
};

static int sink_write(void *opaque, const void *buf, size_t len, struct berth_error **err)
{
	struct blob_sink *k = opaque;
	if (k->p && atomic_load(&k->p->failed))
		return berth_error_set(err, ECANCELED, "cancelled: another layer failed");
	int r = ingest_write(k->in, buf, len, err);
	if (r == 0 && k->p)
		report(k->p, IMAGE_PROGRESS_DOWNLOADING, k->in->digest, k->in->offset, k->in->size);
	return r;
}

/* Downloads a blob into the store unless it is there; resumes a partial download. */
static int fetch_blob(struct image_store *s, struct registry *reg, const struct descriptor *d, struct pull *p,
		      struct berth_error **err)
{
	if (store_blob_exists(s, d->digest, d->size))
		return 0;
	struct ingest in;
	int r = ingest_open(s, d->digest, d->size, &in, err);
	if (r < 0)
		return r;
	if (store_blob_exists(s, d->digest, d->size)) { /* a concurrent pull finished it */
		ingest_close(s, &in, false);
		return 0;
	}
	if (in.offset)
		log_debug("blob %s: resuming at byte %llu", d->digest, (unsigned long long)in.offset);
	struct blob_sink sink = { .p = p, .in = &in };
	if (in.offset < in.size)
		r = registry_fetch_blob(reg, d->digest, in.offset, d->size, sink_write, &sink, err);
	if (r == 0)
		r = ingest_commit(s, &in, err);
	/* cut short because another layer failed: that pull is refused, and leaves nothing behind
	 * (a download stopped by the network or a kill stays, for the next pull to resume) */
	ingest_close(s, &in, r == -ECANCELED);
	return r;
}

static int pull_layer(struct pull *p, size_t i, struct berth_error **err)
{
	const struct descriptor *d = &p->manifest->layers[i];
	const char *chain = p->chains[i];
	bool have_blob = store_blob_exists(p->s, d->digest, d->size);
	bool have_snapshot = store_snapshot_exists(p->s, chain);
	if (have_blob && have_snapshot) {
		report(p, IMAGE_PROGRESS_LAYER_EXISTS, d->digest, d->size, d->size);
		return 0;
	}
	report(p, IMAGE_PROGRESS_DOWNLOADING, d->digest, 0, d->size);
	int r = fetch_blob(p->s, p->reg, d, p, err);
	if (r < 0)
		return r;
	if (!have_snapshot && !store_snapshot_exists(p->s, chain)) {
		report(p, IMAGE_PROGRESS_UNPACKING, d->digest, d->size, d->size);
		r = store_snapshot_create(p->s, d, p->config->diff_ids[i], chain, err);
		if (r < 0)
			return r;
	}
	report(p, IMAGE_PROGRESS_LAYER_DONE, d->digest, d->size, d->size);
	return 0;
}

static void *layer_worker(void *arg)
{
	struct pull *p = arg;
	for (;;) {
		size_t i = atomic_fetch_add(&p->next, 1);
		if (i >= p->manifest->n_layers || atomic_load(&p->failed))
			return NULL;
		struct berth_error *e = NULL;
		if (pull_layer(p, i, &e) < 0) {
			pthread_mutex_lock(&p->lock);
			/* the first failure is the cause; later ones are mostly "cancelled" */
			if (!p->err && e && e->code != ECANCELED)
				p->err = TAKE_PTR(e);
			atomic_store(&p->failed, true);
			pthread_mutex_unlock(&p->lock);
			berth_error_free(e);
		}
	}
}

static int pull_layers(struct pull *p, unsigned parallel, struct berth_error **err)
{
	size_t n = p->manifest->n_layers;
	size_t workers = parallel < n ? parallel : n;
	pthread_t tids[64];
	size_t started = 0;
	if (workers > ARRAY_SIZE(tids))
		workers = ARRAY_SIZE(tids);
	for (; started + 1 < workers; started++)
		if (pthread_create(&tids[started], NULL, layer_worker, p) != 0)
			break;
	layer_worker(p); /* this thread is a worker too */
	for (size_t i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (!atomic_load(&p->failed))
		return 0;
	if (!p->err)
		return berth_error_set(err, EIO, "pulling layers failed");
	int code = p->err->code;
	if (err && !*err)
		*err = TAKE_PTR(p->err);
	berth_error_free(TAKE_PTR(p->err));
	return -code;
}

/* The manifest for the platform: fetched, verified, parsed, written to the store. */
static int resolve_manifest(struct image_store *s, struct registry *reg, const struct reference *ref,
			    const struct platform *want, struct manifest *ret,
			    struct descriptor *ret_desc, struct berth_error **err)
{
	_cleanup_free_ char *body = NULL, *media_type = NULL;
	size_t len = 0;
	int r = registry_get_manifest(reg, ref->digest ? ref->digest : ref->tag, &body, &len, &media_type, err);
	enum manifest_kind kind;
	if (r == 0)
		r = manifest_kind_of(body, len, media_type, &kind, err);
	if (r < 0)
		return r;
	if (kind == MANIFEST_INDEX) {
		struct index x;
		const struct descriptor *chosen = NULL;
		r = index_parse(body, len, &x, err);
		if (r < 0)
			return r;
		r = index_select(&x, want, &chosen, err);
		char digest[DIGEST_LEN + 1];
		if (r == 0)
			memcpy(digest, chosen->digest, sizeof(digest));
		index_clear(&x);
		free(TAKE_PTR(body));
		free(TAKE_PTR(media_type));
		if (r == 0)
			r = registry_get_manifest(reg, digest, &body, &len, &media_type, err);
		if (r == 0)
			r = manifest_kind_of(body, len, media_type, &kind, err);
		if (r == 0 && kind != MANIFEST_IMAGE)
			r = berth_error_set(err, EINVAL, "manifest %s: an index inside an index is not supported", digest);
		if (r < 0)
			return r;
	}
	struct descriptor d = { .size = len, .has_platform = true, .platform = *want };
	r = manifest_parse(body, len, ret, err);
	if (r == 0)
		r = store_blob_write(s, NULL, body, len, d.digest, err);
	if (r == 0 && !(d.media_type = strdup(ret->media_type)))
		r = berth_error_set(err, ENOMEM, "manifest: out of memory");
	if (r < 0) {
		manifest_clear(ret);
		return r;
	}
	*ret_desc = d;
	return 0;
}

static int check_config_platform(const struct image_config *c, const struct platform *want, bool given,
				 struct berth_error **err)
{
	if (!c->platform.os[0] || (strcmp(c->platform.os, want->os) == 0 &&
				   strcmp(c->platform.architecture, want->architecture) == 0))
		return 0;
	char a[96], b[96];
	platform_string(&c->platform, a, sizeof(a));
	platform_string(want, b, sizeof(b));
	if (given)
		return berth_error_set(err, ENOENT, "the image is for %s, not %s", a, b);
	log_warn("the image is for %s; this host is %s", a, b);
	return 0;
}

static int fetch_config(struct image_store *s, struct registry *reg, const struct manifest *m,
			struct image_config *ret, char (**ret_chains)[DIGEST_LEN + 1], struct berth_error **err)
{
	if (m->config.size > STORE_MAX_CONFIG)
		return berth_error_set(err, EFBIG, "image config %s: %llu bytes is too large", m->config.digest,
				       (unsigned long long)m->config.size);
	int r = fetch_blob(s, reg, &m->config, NULL, err);
	_cleanup_free_ char *body = NULL;
	size_t len = 0;
	if (r == 0)
		r = store_blob_read(s, m->config.digest, STORE_MAX_CONFIG, &body, &len, err);
	if (r == 0)
		r = image_config_parse(body, len, ret, err);
	if (r < 0)
		return r;
	if (ret->n_diff_ids != m->n_layers)
		r = berth_error_set(err, EINVAL, "image config %s: %zu diff_ids for %zu layers in the manifest",
				    m->config.digest, ret->n_diff_ids, m->n_layers);
	char(*chains)[DIGEST_LEN + 1] = NULL;
	if (r == 0 && !(chains = calloc(m->n_layers ? m->n_layers : 1, sizeof(*chains))))
		r = berth_error_set(err, ENOMEM, "out of memory");
	if (r == 0)
		r = chain_ids((const char(*)[DIGEST_LEN + 1])ret->diff_ids, ret->n_diff_ids, chains, err);
	if (r < 0) {
		free(chains);
		image_config_clear(ret);
		return r;
	}
	*ret_chains = chains;
	return 0;
}

static int registries_loaded(struct image_store *s, struct berth_error **err)
{
	if (s->registries)
		return 0;
	return registry_config_load(s->registries_path, s->auth_path, &s->registries, err);
}

static unsigned parallel_for(struct image_store *s)
{
	if (s->max_parallel)
		return s->max_parallel;
	unsigned c = registry_config_max_parallel(s->registries);
	return c ? c : DEFAULT_PARALLEL;
}

struct pull_state {
	struct reference ref;
	struct registry *reg;
	struct manifest manifest;
	struct descriptor desc;
	struct image_config config;
	char (*chains)[DIGEST_LEN + 1];
	int lock;
};

static void pull_state_clear(struct pull_state *st)
{
	reference_clear(&st->ref);
	registry_free(st->reg);
	manifest_clear(&st->manifest);
	free(st->desc.media_type);
	image_config_clear(&st->config);
	free(st->chains);
	if (st->lock >= 0)
		close(st->lock);
}

static int pull_resolved(struct image_store *s, struct pull_state *st, const struct platform *want, bool given,
			 image_progress_fn progress, void *opaque, struct berth_error **err)
{
	int r = resolve_manifest(s, st->reg, &st->ref, want, &st->manifest, &st->desc, err);
	if (r == 0)
		r = fetch_config(s, st->reg, &st->manifest, &st->config, &st->chains, err);
	if (r == 0)
		r = check_config_platform(&st->config, want, given, err);
	if (r < 0)
		return r;
	if (st->config.platform.os[0])
		st->desc.platform = st->config.platform;
	struct pull p = {
		.s = s, .reg = st->reg, .manifest = &st->manifest, .config = &st->config,
		.chains = (const char(*)[DIGEST_LEN + 1])st->chains, .progress = progress, .opaque = opaque,
	};
	pthread_mutex_init(&p.lock, NULL);
	report(&p, IMAGE_PROGRESS_RESOLVED, NULL, 0, st->manifest.n_layers);
	r = pull_layers(&p, parallel_for(s), err);
	pthread_mutex_destroy(&p.lock);
	return r;
}

int image_pull(struct image_store *s, const char *name, const char *platform, image_progress_fn progress,
	       void *opaque, char **ret_digest, struct berth_error **err)
{
	struct pull_state st = { .lock = -EBADF };
	struct platform want;
	int r = reference_parse(name, &st.ref, err);
	if (r == 0)
		r = platform_parse(platform, &want, err);
	if (r == 0)
		r = registries_loaded(s, err);
	if (r == 0 && (st.lock = store_lock(s, false, err)) < 0)
		r = st.lock;
	if (r == 0) {
		store_snapshot_clean_stale(s, false);
		r = registry_open(s->registries, st.ref.domain, st.ref.path, &st.reg, err);
	}
	if (r == 0)
		r = pull_resolved(s, &st, &want, platform && *platform, progress, opaque, err);
	_cleanup_free_ char *full = r == 0 ? reference_string(&st.ref) : NULL;
	if (r == 0 && !full)
		r = berth_error_set(err, ENOMEM, "out of memory");
	if (r == 0)
		r = store_index_put(s, full, &st.desc, err);
	if (r == 0 && ret_digest && !(*ret_digest = strdup(st.desc.digest)))
		r = berth_error_set(err, ENOMEM, "out of memory");
	pull_state_clear(&st);
	return r < 0 ? berth_error_wrap(err, "pulling %s", name) : 0;
}
