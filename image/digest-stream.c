/* sha256 of streams (blobs as they download, layers as they unpack, files being checked) with
 * OpenSSL, whose SHA-NI and AVX2 code hashes big data several times faster than base/hash.c. */
#include "image/digest-internal.h"

#include "base/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

int digest_stream_init(struct digest_stream *s, struct berth_error **err)
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

void digest_stream_update(struct digest_stream *s, const void *buf, size_t len)
{
	EVP_DigestUpdate(s->ctx, buf, len);
}

void digest_stream_final(struct digest_stream *s, char out[DIGEST_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_DigestFinal_ex(s->ctx, md, &n);
	EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL);
	digest_format(md, out);
}

void digest_stream_free(struct digest_stream *s)
{
	EVP_MD_CTX_free(s->ctx);
	s->ctx = NULL;
}

int digest_of_file(int dirfd, const char *name, char out[DIGEST_LEN + 1])
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	struct digest_stream h;
	if (digest_stream_init(&h, NULL) < 0)
		return -ENOMEM;
	static __thread char buf[1 << 16];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		digest_stream_update(&h, buf, (size_t)n);
	int e = n < 0 ? -errno : 0;
	digest_stream_final(&h, out);
	digest_stream_free(&h);
	return e;
}
