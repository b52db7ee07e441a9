/* Small, dependency-free hashes and encodings: SHA-256 (image digests of manifests, configs and
 * names; the streaming hash of big blobs stays with OpenSSL in image/digest-stream.c, which only
 * the puller links), SHA-1 (only for RFC 6455's Sec-WebSocket-Accept) and base64 (RFC 4648,
 * standard alphabet with padding: Docker auth strings, WebSocket keys). Pure functions, no
 * allocation except where a result's length is not known in advance. */
#ifndef BERTH_BASE_HASH_H
#define BERTH_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32
#define SHA1_DIGEST_LEN 20

struct sha256_ctx {
	uint32_t h[8];
	uint64_t len;	   /* bytes hashed so far */
	uint8_t buf[64];   /* a partial block */
	size_t buf_len;
};

void sha256_init(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *data, size_t len);
void sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_DIGEST_LEN]);
void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_LEN]);

/* SHA-1 is broken for collision resistance; it is here only because RFC 6455 requires it. */
void sha1(const void *data, size_t len, uint8_t out[SHA1_DIGEST_LEN]);

/* Encodes len bytes into out (room for base64_encoded_len(len) + 1 bytes, NUL-terminated);
 * returns the encoded length. */
#define base64_encoded_len(n) ((((n) + 2) / 3) * 4)
size_t base64_encode(const void *data, size_t len, char *out);
/* Decodes in[0..len) (padding required, no whitespace) into out (room for len / 4 * 3 bytes);
 * returns the decoded length, or -EINVAL for anything that is not canonical base64. */
long base64_decode(const char *in, size_t len, uint8_t *out);

#endif
