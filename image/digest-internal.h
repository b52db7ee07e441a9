/* sha256 digests in the OCI form "sha256:<64 lowercase hex>", over OpenSSL's libcrypto. */
#ifndef BERTH_IMAGE_DIGEST_INTERNAL_H
#define BERTH_IMAGE_DIGEST_INTERNAL_H
#include "base/error.h"
#include <stdbool.h>
#include <stddef.h>

#define DIGEST_HEX_LEN 64
#define DIGEST_LEN (7 + DIGEST_HEX_LEN) /* "sha256:" + hex */

struct sha256 {
	void *ctx; /* EVP_MD_CTX */
};

int sha256_init(struct sha256 *s, struct berth_error **err);
void sha256_update(struct sha256 *s, const void *buf, size_t len);
/* Writes "sha256:<hex>" (DIGEST_LEN + 1 bytes with the NUL) and resets s for reuse. */
void sha256_final(struct sha256 *s, char out[DIGEST_LEN + 1]);
void sha256_free(struct sha256 *s);

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
