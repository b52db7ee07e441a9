/* Registry client: the distribution API v2 over libcurl.
 *
 * Configuration (registries.json, documented in man/berth-registries.5 later) and credentials
 * (Docker's config.json "auths") are loaded once into a registry_config, shared read-only. A
 * struct registry talks to one repository of one registry (trying its mirrors first); it is safe
 * to use from several threads at once: each thread gets its own curl handle, and bearer tokens
 * are cached and shared under a lock. */
#ifndef BERTH_IMAGE_REGISTRY_INTERNAL_H
#define BERTH_IMAGE_REGISTRY_INTERNAL_H
#include "base/error.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct registry_config;
struct registry;

/* config_path: registries.json (NULL: /etc/berth/registries.json if it exists, else defaults).
 * auth_path: Docker-format credentials (NULL: $REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json,
 * else ~/.docker/config.json; a missing default file is not an error, a missing named one is). */
int registry_config_load(const char *config_path, const char *auth_path, struct registry_config **ret,
			 struct berth_error **err);
void registry_config_free(struct registry_config *c);
/* "maxParallelDownloads" from the config; 0 when not set. */
unsigned registry_config_max_parallel(const struct registry_config *c);

/* domain as in a normalised reference ("docker.io", "127.0.0.1:5000"); repository its path
 * ("library/busybox"). */
int registry_open(const struct registry_config *c, const char *domain, const char *repository,
		  struct registry **ret, struct berth_error **err);
void registry_free(struct registry *r);

/* GET (with Accept for OCI index/manifest and Docker manifest list/schema 2) the manifest for
 * `reference` (a tag or a digest). Returns the body, its length, and the media type the registry
 * sent (Content-Type; NULL when it sent none). When reference is a digest the body is verified
 * against it. Bodies over 4 MiB are refused. */
int registry_get_manifest(struct registry *r, const char *reference, char **ret_body, size_t *ret_len,
			  char **ret_media_type, struct berth_error **err);

/* Called with each chunk of a blob, in order; a negative return aborts the fetch with that errno
 * (the callback sets *err itself). */
typedef int (*registry_write_fn)(void *opaque, const void *buf, size_t len, struct berth_error **err);

/* GET the blob `digest`, starting at byte `offset` (a Range request when offset > 0; a registry
 * that ignores Range and answers 200 makes it skip the first offset bytes itself), following
 * redirects, retrying with backoff on 5xx, timeouts and cut connections (resuming from where the
 * previous attempt stopped). `size` is the descriptor's size: more bytes than that is an error.
 * The caller verifies the digest of what it was given. */
int registry_fetch_blob(struct registry *r, const char *digest, uint64_t offset, uint64_t size,
			registry_write_fn write, void *opaque, struct berth_error **err);
#endif
