/* sha256 for blobs, diffIDs and chain IDs. */
#include "image/digest-internal.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

int sha256_init(struct sha256 *s, struct berth_error **err)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(ctx);
		s->ctx = NULL;
		return berth_error_set(err, ENOMEM, "cannot set up sha256");
	}
	s->ctx = ctx;
	return 0;
}

void sha256_update(struct sha256 *s, const void *buf, size_t len)
{
	EVP_DigestUpdate(s->ctx, buf, len);
}

void sha256_final(struct sha256 *s, char out[DIGEST_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned int n = 0;

	EVP_DigestFinal_ex(s->ctx, md, &n);
	EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL);
	memcpy(out, "sha256:", 7);
	for (unsigned int i = 0; i < 32; i++) {
		out[7 + 2 * i] = hex[md[i] >> 4];
		out[7 + 2 * i + 1] = hex[md[i] & 15];
	}
	out[DIGEST_LEN] = '\0';
}

void sha256_free(struct sha256 *s)
{
	EVP_MD_CTX_free(s->ctx);
	s->ctx = NULL;
}

int digest_of_buffer(const void *buf, size_t len, char out[DIGEST_LEN + 1], struct berth_error **err)
{
	struct sha256 s;
	int r = sha256_init(&s, err);
	if (r < 0)
		return r;
	sha256_update(&s, buf, len);
	sha256_final(&s, out);
	sha256_free(&s);
	return 0;
}

bool digest_is_valid(const char *digest)
{
	if (!digest || strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != DIGEST_LEN)
		return false;
	for (const char *p = digest + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

int digest_validate(const char *digest, const char *what, struct berth_error **err)
{
	if (digest_is_valid(digest))
		return 0;
	if (!digest)
		return berth_error_set(err, EINVAL, "%s: missing digest", what);
	const char *colon = strchr(digest, ':');
	if (colon && strncmp(digest, "sha256:", 7) != 0)
		return berth_error_set(err, ENOTSUP, "%s: digest algorithm \"%.*s\" is not supported (only sha256)",
				       what, (int)(colon - digest), digest);
	return berth_error_set(err, EINVAL, "%s: \"%s\" is not a sha256 digest (sha256:<64 lowercase hex digits>)",
			       what, digest);
}
