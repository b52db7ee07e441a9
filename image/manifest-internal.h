/* The image documents a pull reads: an index (OCI image index or Docker manifest list), an image
 * manifest (OCI or Docker schema 2), and the image config (only what berth needs of it: the
 * diffIDs, platform and creation time; the config itself is kept as it was sent). */
#ifndef BERTH_IMAGE_MANIFEST_INTERNAL_H
#define BERTH_IMAGE_MANIFEST_INTERNAL_H
#include "base/error.h"
#include "image/digest-internal.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
#define MT_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"

struct platform {
	char os[32];
	char architecture[32];
	char variant[16];
};

struct descriptor {
	char *media_type;
	char digest[DIGEST_LEN + 1];
	uint64_t size;
	bool has_platform;
	struct platform platform;
};

enum manifest_kind { MANIFEST_INDEX, MANIFEST_IMAGE };

/* Which of the two a document is: its mediaType field, else the transport's content type,
 * else its shape ("manifests" or "layers"). Docker schema 1 is refused by name. */
int manifest_kind_of(const char *body, size_t len, const char *content_type, enum manifest_kind *ret,
		     struct berth_error **err);

struct index {
	struct descriptor *manifests;
	size_t n;
};
int index_parse(const char *body, size_t len, struct index *ret, struct berth_error **err);
void index_clear(struct index *x);
/* The manifest for platform p: same os and architecture, and variant when p gives one (arm64's
 * "v8" and "" are the same). ENOENT names what the index offers. */
int index_select(const struct index *x, const struct platform *p, const struct descriptor **ret,
		 struct berth_error **err);

struct manifest {
	char *media_type; /* of the manifest itself */
	struct descriptor config;
	struct descriptor *layers;
	size_t n_layers;
};
int manifest_parse(const char *body, size_t len, struct manifest *ret, struct berth_error **err);
void manifest_clear(struct manifest *m);

struct image_config {
	char (*diff_ids)[DIGEST_LEN + 1];
	size_t n_diff_ids;
	struct platform platform;
	char *created;
};
int image_config_parse(const char *body, size_t len, struct image_config *ret, struct berth_error **err);
void image_config_clear(struct image_config *c);

/* chain[0] = diff[0]; chain[i] = sha256(chain[i-1] + " " + diff[i]) (the OCI image spec). */
int chain_ids(const char (*diff_ids)[DIGEST_LEN + 1], size_t n, char (*ret)[DIGEST_LEN + 1],
	      struct berth_error **err);

/* "os/arch[/variant]"; NULL or "" means the host's platform. */
int platform_parse(const char *s, struct platform *ret, struct berth_error **err);
void platform_host(struct platform *ret);
/* "os/arch[/variant]" into buf (at least 82 bytes). */
const char *platform_string(const struct platform *p, char *buf, size_t size);

/* Whether a layer media type is one berth unpacks (tar, gzip, zstd; OCI and Docker names). */
bool layer_media_type_supported(const char *mt);
#endif
