/* berth images: a content store that is itself an OCI image layout, registry pulls, layer
 * snapshots, container root filesystems, import and export.
 *
 * On disk, under the store's root (default /var/lib/berth):
 *   content/   oci-layout, index.json (one entry per image name), blobs/sha256/<hex>
 *   ingest/    blobs being downloaded (<hex>.partial, resumed by the next pull)
 *   snapshots/ <chain-id hex>/fs (one unpacked layer) and info.json
 *   leases/    one file per container root filesystem, naming the snapshots it uses
 * A blob or snapshot becomes visible only after its digest was verified. Every function takes
 * the store's lock as it needs (shared for pulls and reads, exclusive for removal and garbage
 * collection), so several processes can use one store. */
#ifndef BERTH_IMAGE_H
#define BERTH_IMAGE_H
#include "base/error.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct image_store;

struct image_store_options {
	const char *root;              /* NULL: /var/lib/berth */
	const char *registries_config; /* NULL: /etc/berth/registries.json when it exists */
	const char *auth_file;         /* NULL: Docker's config.json lookup */
	unsigned max_parallel;         /* layers downloaded and unpacked at once; 0: 3 */
	uint64_t max_layer_bytes;      /* uncompressed; 0: 64 GiB */
	uint64_t max_layer_entries;    /* 0: 4 Mi entries */
	bool allow_devices;            /* unpack device nodes (else they are dropped) */
};

BERTH_EXPORT int image_store_open(const struct image_store_options *o, struct image_store **ret,
				  struct berth_error **err);
BERTH_EXPORT void image_store_free(struct image_store *s);

/* "busybox" -> "docker.io/library/busybox:latest"; keeps a digest ("name@sha256:..."); a
 * reference with both tag and digest keeps both. */
BERTH_EXPORT int image_reference_normalize(const char *name, char **ret, struct berth_error **err);

enum image_progress_phase {
	IMAGE_PROGRESS_RESOLVED,    /* the manifest is known; total = number of layers */
	IMAGE_PROGRESS_DOWNLOADING, /* done/total bytes of a layer's blob */
	IMAGE_PROGRESS_UNPACKING,
	IMAGE_PROGRESS_LAYER_DONE,  /* downloaded (or present), verified and unpacked */
	IMAGE_PROGRESS_LAYER_EXISTS /* the snapshot was already in the store */
};

struct image_progress {
	enum image_progress_phase phase;
	const char *digest; /* the layer's blob (NULL for RESOLVED) */
	uint64_t done;
	uint64_t total;
};

/* Called from worker threads, one call at a time (serialised by the store). */
typedef void (*image_progress_fn)(void *opaque, const struct image_progress *p);

/* Pulls name for platform ("os/arch[/variant]", NULL: the host's) and records it under its
 * normalised name. *ret_digest (when not NULL) receives the image manifest's digest. */
BERTH_EXPORT int image_pull(struct image_store *s, const char *name, const char *platform,
			    image_progress_fn progress, void *opaque, char **ret_digest,
			    struct berth_error **err);

struct image_summary {
	char *name;          /* normalised */
	char *digest;        /* the image manifest */
	char *config_digest; /* the image ID */
	char *created;       /* from the config, may be NULL */
	char *platform;      /* "os/arch[/variant]" */
	uint64_t size;       /* manifest + config + layer blobs */
	uint64_t unpacked_size;
};

BERTH_EXPORT int image_list(struct image_store *s, struct image_summary **ret, size_t *ret_n,
			    struct berth_error **err);
BERTH_EXPORT void image_summary_free(struct image_summary *v, size_t n);

/* JSON: name, digest, mediaType, platform, size, unpackedSize, configDigest, config (the image
 * config as stored), layers [{digest, mediaType, size, diffID, chainID, snapshot, unpackedSize}]. */
BERTH_EXPORT int image_inspect(struct image_store *s, const char *name, char **ret_json,
			       struct berth_error **err);

/* Removes the name, then whatever content and snapshots nothing references any more. */
BERTH_EXPORT int image_remove(struct image_store *s, const char *name, struct berth_error **err);

struct image_gc_result {
	uint64_t blobs_removed;
	uint64_t snapshots_removed;
	uint64_t bytes_freed;
};

/* Garbage collection: removes unreferenced blobs and snapshots, stale partial downloads and
 * unpacks. With all_unused, images that no container root filesystem uses are removed first. */
BERTH_EXPORT int image_prune(struct image_store *s, bool all_unused, struct image_gc_result *res,
			     struct berth_error **err);

/* Verifies every blob (digest and size) and every snapshot (present, recorded, consistent with
 * its image). Each problem found is one line in *ret_problems (NULL-terminated; NULL when none);
 * returns 0 when the check could run, whatever it found. */
BERTH_EXPORT int image_check(struct image_store *s, char ***ret_problems, struct berth_error **err);

struct image_disk_usage {
	uint64_t bytes;  /* content, snapshots and ingest, as allocated on disk */
	uint64_t inodes;
};
BERTH_EXPORT int image_disk_usage(struct image_store *s, struct image_disk_usage *ret,
				  struct berth_error **err);

/* docker-archive (docker save) or oci-archive, told apart by content; several images, names
 * kept. *ret_names (NULL-terminated) receives the names imported. */
BERTH_EXPORT int image_import(struct image_store *s, const char *path, char ***ret_names,
			      struct berth_error **err);
/* Writes one tar that is both an oci-archive (oci-layout, index.json, blobs/) and a
 * docker-archive (manifest.json with RepoTags), as Docker 25 does. */
BERTH_EXPORT int image_export(struct image_store *s, const char *const *names, size_t n,
			      const char *path, struct berth_error **err);

/* A container's root filesystem: dir (created if missing; owned by the caller) gets upper/,
 * work/ and rootfs/, an overlay of the image's snapshots with upper/ on top is mounted on
 * rootfs/, and a lease keeps the snapshots from garbage collection. */
BERTH_EXPORT int image_rootfs_create(struct image_store *s, const char *name, const char *dir,
				     struct berth_error **err);
/* Unmounts dir/rootfs, deletes upper/, work/ and rootfs/ and the lease. Idempotent. */
BERTH_EXPORT int image_rootfs_remove(struct image_store *s, const char *dir, struct berth_error **err);
#endif
