/* Digests of small buffers, and their syntax. */
#include "image/digest-internal.h"

#include "base/hash.h"

#include <errno.h>
#include <string.h>

void digest_format(const unsigned char md[32], char out[DIGEST_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	memcpy(out, "sha256:", 7);
	for (unsigned int i = 0; i < 32; i++) {
		out[7 + 2 * i] = hex[md[i] >> 4];
		out[7 + 2 * i + 1] = hex[md[i] & 15];
	}
	out[DIGEST_LEN] = '\0';
}

int digest_of_buffer(const void *buf, size_t len, char out[DIGEST_LEN + 1], struct berth_error **err)
{
	uint8_t md[SHA256_DIGEST_LEN];
	sha256(buf, len, md);
	digest_format(md, out);
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
