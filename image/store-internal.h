/* The image store's internals, shared by pull, gc, mount and archive code. */
#ifndef BERTH_IMAGE_STORE_INTERNAL_H
#define BERTH_IMAGE_STORE_INTERNAL_H
#include "image/image.h"
#include "image/digest-internal.h"
#include "image/manifest-internal.h"
#include "image/registry-internal.h"
#include "image/unpack-internal.h"

#include <pthread.h>
#include <stdbool.h>

#define STORE_MAX_MANIFEST (4u << 20)
#define STORE_MAX_CONFIG (8u << 20)
#define ANNOTATION_REF_NAME "org.opencontainers.image.ref.name"
#define ANNOTATION_CONTAINERD_NAME "io.containerd.image.name"

struct image_store {
	char *root;
	int root_fd;
	int content_fd; /* content/ */
	int blobs_fd;   /* content/blobs/sha256/ */
	int ingest_fd;
	int snapshots_fd;
	int leases_fd;
	const char *registries_path;
	const char *auth_path;
	struct registry_config *registries; /* loaded on first pull */
	unsigned max_parallel;
	struct unpack_limits limits;
	pthread_mutex_t lock; /* serialises progress callbacks */
};

/* Store-wide lock (root/lock): shared while pulling or reading, exclusive to remove. The returned
 * fd holds the lock until it is closed. */
int store_lock(struct image_store *s, bool exclusive, struct berth_error **err);
/* index.json's read-modify-write lock (root/index.lock), always exclusive. */
int store_index_lock(struct image_store *s, struct berth_error **err);

/* Unfinished snapshots are directories .tmp-<pid>-<chain hex> under snapshots/. */
#define TMP_PREFIX ".tmp-"

int store_fsync_dir(int dirfd);
/* Calls fn for each entry of dirfd but "." and ".." (in gc.c); stops at fn's first error. */
int store_for_each_entry(int dirfd, int (*fn)(void *opaque, const char *name), void *opaque);

/* ---- blobs ---- */
bool store_blob_exists(struct image_store *s, const char *digest, uint64_t size);
int store_blob_open(struct image_store *s, const char *digest, struct berth_error **err);
/* Reads a blob of at most max bytes, NUL-terminated. */
int store_blob_read(struct image_store *s, const char *digest, size_t max, char **ret, size_t *ret_len,
		    struct berth_error **err);
/* Writes buf as a blob (verified against expected when not NULL); out receives its digest. */
int store_blob_write(struct image_store *s, const char *expected, const void *buf, size_t len,
		     char out[DIGEST_LEN + 1], struct berth_error **err);

/* A blob being written: ingest/<hex>.partial, locked, hashed as it grows. Opening it again after
 * an interrupted download continues where it stopped (offset says where). */
struct ingest {
	int fd;
	char digest[DIGEST_LEN + 1];
	uint64_t size;   /* expected */
	uint64_t offset; /* bytes already there */
	struct digest_stream hash;
};
int ingest_open(struct image_store *s, const char *digest, uint64_t size, struct ingest *ret,
		struct berth_error **err);
int ingest_write(struct ingest *in, const void *buf, size_t len, struct berth_error **err);
/* Verifies size and digest, fsyncs and renames into blobs/. A mismatch removes the partial file. */
int ingest_commit(struct image_store *s, struct ingest *in, struct berth_error **err);
/* Closes (keeping the partial file for a later resume unless discard). */
void ingest_close(struct image_store *s, struct ingest *in, bool discard);

/* ---- index.json ---- */
struct store_entry {
	char *name;
	struct descriptor desc; /* the image manifest */
};
int store_index_load(struct image_store *s, struct store_entry **ret, size_t *ret_n, struct berth_error **err);
/* Atomically replaces index.json. */
int store_index_save(struct image_store *s, const struct store_entry *v, size_t n, struct berth_error **err);
void store_entries_free(struct store_entry *v, size_t n);
/* Adds (or repoints) name -> manifest, under the index lock. */
int store_index_put(struct image_store *s, const char *name, const struct descriptor *manifest,
		    struct berth_error **err);
/* The entry for a name (normalised), a manifest digest, or a unique hex prefix of one. */
int store_find(const struct store_entry *v, size_t n, const char *name, size_t *ret, struct berth_error **err);

/* ---- images as stored ---- */
struct stored_image {
	struct manifest manifest;
	struct image_config config;
	char *config_json;
	char (*chains)[DIGEST_LEN + 1];
};
int stored_image_load(struct image_store *s, const char *manifest_digest, struct stored_image *ret,
		      struct berth_error **err);
void stored_image_clear(struct stored_image *im);
/* The entry a name (or digest) finds in index.json, and its image; the caller holds the store
 * lock and clears both (store_entry_clear, stored_image_clear). */
int store_resolve(struct image_store *s, const char *name, struct store_entry *ret_entry, struct stored_image *ret_im,
		  struct berth_error **err);
void store_entry_clear(struct store_entry *e);

/* ---- snapshots ---- */
bool store_snapshot_exists(struct image_store *s, const char *chain_id);
/* Unpacks the layer blob into a temporary directory, checks its diffID, records info.json and
 * renames it to snapshots/<chain hex>. */
int store_snapshot_create(struct image_store *s, const struct descriptor *layer, const char *diff_id,
			  const char *chain_id, struct berth_error **err);
/* Reads the regular files' total recorded for a snapshot (0 when unknown). */
uint64_t store_snapshot_content_bytes(struct image_store *s, const char *chain_id);
/* Removes snapshots/.tmp-* left by processes that died. */
void store_snapshot_clean_stale(struct image_store *s, bool all);

/* ---- archive import and export (image/archive.c) ---- */
/* Moves ingest/<name> into blobs/ as digest: the caller hashed its content (size bytes) while it
 * wrote the file. When the blob is already in the store, the file is removed instead. */
int store_blob_commit_ingested(struct image_store *s, const char *name, const char *digest, uint64_t size,
			       struct berth_error **err);
/* The text of an index.json naming these entries, as store_index_save writes it. */
int store_index_format(const struct store_entry *v, size_t n, char **ret, size_t *ret_len,
		       struct berth_error **err);
#endif
