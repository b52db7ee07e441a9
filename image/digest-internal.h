/* sha256 digests in the OCI form "sha256:<64 lowercase hex>". Small buffers (manifests, configs,
 * names) are hashed by base/hash.c; a stream (a blob as it downloads, a layer as it unpacks) by
 * OpenSSL's libcrypto in digest-stream.c, several times faster on big data and linked only by
 * the programs that pull or import. */
#ifndef BERTH_IMAGE_DIGEST_INTERNAL_H
#define BERTH_IMAGE_DIGEST_INTERNAL_H
#include "base/error.h"
#include <stdbool.h>
#include <stddef.h>

#define DIGEST_HEX_LEN 64
#define DIGEST_LEN (7 + DIGEST_HEX_LEN) /* "sha256:" + hex */

struct digest_stream {
	void *ctx; /* EVP_MD_CTX */
};

int digest_stream_init(struct digest_stream *s, struct berth_error **err);
void digest_stream_update(struct digest_stream *s, const void *buf, size_t len);
/* Writes "sha256:<hex>" (DIGEST_LEN + 1 bytes with the NUL) and resets s for reuse. */
void digest_stream_final(struct digest_stream *s, char out[DIGEST_LEN + 1]);
void digest_stream_free(struct digest_stream *s);
/* The digest of a file's whole content (dirfd/name, not following a symlink): -errno on error. */
int digest_of_file(int dirfd, const char *name, char out[DIGEST_LEN + 1]);
/* Formats a raw 32-byte sha256 as "sha256:<hex>". */
void digest_format(const unsigned char md[32], char out[DIGEST_LEN + 1]);

int digest_of_buffer(const void *buf, size_t len, char out[DIGEST_LEN + 1], struct berth_error **err);
/* Accepts exactly "sha256:" and 64 lowercase hex digits; any other algorithm is refused by name.
 * `what` names the field in the message. */
int digest_validate(const char *digest, const char *what, struct berth_error **err);
bool digest_is_valid(const char *digest);
/* The hex part of a valid digest. */
static inline const char *digest_hex(const char *digest)
{
	return digest + 7;
}
#endif
