/* SHA-256 and SHA-1 (FIPS 180-4) and base64 (RFC 4648), written portably: big-endian loads and
 * stores byte by byte, so the code does not depend on the host's byte order or alignment. */
#include "base/hash.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* ---- shared helpers ---- */

static inline uint32_t rotr32(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

static inline uint32_t rotl32(uint32_t x, unsigned n)
{
	return (x << n) | (x >> (32 - n));
}

static inline uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void store_be64(uint8_t *p, uint64_t v)
{
	store_be32(p, (uint32_t)(v >> 32));
	store_be32(p + 4, (uint32_t)v);
}

/* ---- SHA-256 ---- */

static const uint32_t sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
	0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
	0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
	0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
	0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
	0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
	0xc67178f2,
};

#define S256_BSIG0(x) (rotr32(x, 2) ^ rotr32(x, 13) ^ rotr32(x, 22))
#define S256_BSIG1(x) (rotr32(x, 6) ^ rotr32(x, 11) ^ rotr32(x, 25))
#define S256_SSIG0(x) (rotr32(x, 7) ^ rotr32(x, 18) ^ ((x) >> 3))
#define S256_SSIG1(x) (rotr32(x, 17) ^ rotr32(x, 19) ^ ((x) >> 10))
#define CH(x, y, z) (((x) & (y)) ^ (~(x) & (z)))
#define MAJ(x, y, z) (((x) & (y)) ^ ((x) & (z)) ^ ((y) & (z)))

/* The message schedule lives in a 16-word ring: w[i & 15] holds W[i] once expanded. */
#define S256_W(i)                                                                                  \
	(w[(i)&15] += S256_SSIG1(w[((i)-2) & 15]) + w[((i)-7) & 15] + S256_SSIG0(w[((i)-15) & 15]))

/* One round with the eight working variables renamed rather than shifted, so that eight rounds
 * in a row (with the names rotated) leave them where they started. */
#define S256_ROUND(a, b, c, d, e, f, g, h, i, wi)                                                  \
	do {                                                                                       \
		uint32_t t1_ = h + S256_BSIG1(e) + CH(e, f, g) + sha256_k[i] + (wi);               \
		d += t1_;                                                                          \
		h = t1_ + S256_BSIG0(a) + MAJ(a, b, c);                                            \
	} while (0)

#define S256_EIGHT(i, W)                                                                           \
	do {                                                                                       \
		S256_ROUND(a, b, c, d, e, f, g, h, (i) + 0, W((i) + 0));                           \
		S256_ROUND(h, a, b, c, d, e, f, g, (i) + 1, W((i) + 1));                           \
		S256_ROUND(g, h, a, b, c, d, e, f, (i) + 2, W((i) + 2));                           \
		S256_ROUND(f, g, h, a, b, c, d, e, (i) + 3, W((i) + 3));                           \
		S256_ROUND(e, f, g, h, a, b, c, d, (i) + 4, W((i) + 4));                           \
		S256_ROUND(d, e, f, g, h, a, b, c, (i) + 5, W((i) + 5));                           \
		S256_ROUND(c, d, e, f, g, h, a, b, (i) + 6, W((i) + 6));                           \
		S256_ROUND(b, c, d, e, f, g, h, a, (i) + 7, W((i) + 7));                           \
	} while (0)

#define S256_W_LOADED(i) w[(i)&15]

static void sha256_block(uint32_t state[8], const uint8_t *p)
{
	uint32_t w[16];
	for (int i = 0; i < 16; i++)
		w[i] = load_be32(p + 4 * i);

	uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
	uint32_t e = state[4], f = state[5], g = state[6], h = state[7];

	S256_EIGHT(0, S256_W_LOADED);
	S256_EIGHT(8, S256_W_LOADED);
	S256_EIGHT(16, S256_W);
	S256_EIGHT(24, S256_W);
	S256_EIGHT(32, S256_W);
	S256_EIGHT(40, S256_W);
	S256_EIGHT(48, S256_W);
	S256_EIGHT(56, S256_W);

	state[0] += a;
	state[1] += b;
	state[2] += c;
	state[3] += d;
	state[4] += e;
	state[5] += f;
	state[6] += g;
	state[7] += h;
}

void sha256_init(struct sha256_ctx *c)
{
	static const uint32_t iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};
	memcpy(c->h, iv, sizeof(iv));
	c->len = 0;
	c->buf_len = 0;
}

void sha256_update(struct sha256_ctx *c, const void *data, size_t len)
{
	const uint8_t *p = data;
	if (len == 0)
		return; /* data may be NULL then, and memcpy must not see it */
	c->len += len;
	if (c->buf_len > 0) {
		size_t n = 64 - c->buf_len < len ? 64 - c->buf_len : len;
		memcpy(c->buf + c->buf_len, p, n);
		c->buf_len += n;
		p += n;
		len -= n;
		if (c->buf_len < 64)
			return;
		sha256_block(c->h, c->buf);
		c->buf_len = 0;
	}
	for (; len >= 64; p += 64, len -= 64)
		sha256_block(c->h, p);
	if (len > 0) {
		memcpy(c->buf, p, len);
		c->buf_len = len;
	}
}

/* FIPS 180-4 5.1.1 padding, shared by both hashes: 0x80, zeros, then the bit length as a 64-bit
 * big-endian number ending a block. */
static void md_pad(uint8_t buf[64], size_t buf_len, uint64_t byte_len, uint32_t *state,
		   void (*block)(uint32_t *state, const uint8_t *p))
{
	buf[buf_len++] = 0x80;
	if (buf_len > 56) {
		memset(buf + buf_len, 0, 64 - buf_len);
		block(state, buf);
		buf_len = 0;
	}
	memset(buf + buf_len, 0, 56 - buf_len);
	store_be64(buf + 56, byte_len * 8);
	block(state, buf);
}

void sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_DIGEST_LEN])
{
	md_pad(c->buf, c->buf_len, c->len, c->h, sha256_block);
	for (int i = 0; i < 8; i++)
		store_be32(out + 4 * i, c->h[i]);
	/* the context holds hashed secrets' state; leave nothing reusable behind */
	memset(c, 0, sizeof(*c));
}

void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_LEN])
{
	struct sha256_ctx c;
	sha256_init(&c);
	sha256_update(&c, data, len);
	sha256_final(&c, out);
}

/* ---- SHA-1 ---- */

/* Only the WebSocket handshake uses it, on one short string, so a plain loop is fast enough. */
static void sha1_block(uint32_t state[5], const uint8_t *p)
{
	uint32_t w[80];
	for (int i = 0; i < 16; i++)
		w[i] = load_be32(p + 4 * i);
	for (int i = 16; i < 80; i++)
		w[i] = rotl32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);

	uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4];
	for (int i = 0; i < 80; i++) {
		uint32_t f, k;
		if (i < 20) {
			f = CH(b, c, d);
			k = 0x5a827999;
		} else if (i < 40) {
			f = b ^ c ^ d;
			k = 0x6ed9eba1;
		} else if (i < 60) {
			f = MAJ(b, c, d);
			k = 0x8f1bbcdc;
		} else {
			f = b ^ c ^ d;
			k = 0xca62c1d6;
		}
		uint32_t t = rotl32(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = rotl32(b, 30);
		b = a;
		a = t;
	}
	state[0] += a;
	state[1] += b;
	state[2] += c;
	state[3] += d;
	state[4] += e;
}

void sha1(const void *data, size_t len, uint8_t out[SHA1_DIGEST_LEN])
{
	uint32_t state[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 };
	const uint8_t *p = data;
	uint8_t buf[64];
	size_t left = len;

	for (; left >= 64; p += 64, left -= 64)
		sha1_block(state, p);
	if (left > 0)
		memcpy(buf, p, left);
	md_pad(buf, left, len, state, sha1_block);
	for (int i = 0; i < 5; i++)
		store_be32(out + 4 * i, state[i]);
}

/* ---- base64 ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encode(const void *data, size_t len, char *out)
{
	const uint8_t *p = data;
	char *o = out;
	for (; len >= 3; p += 3, len -= 3) {
		uint32_t v = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
		*o++ = b64_alphabet[v >> 18];
		*o++ = b64_alphabet[(v >> 12) & 63];
		*o++ = b64_alphabet[(v >> 6) & 63];
		*o++ = b64_alphabet[v & 63];
	}
	if (len > 0) {
		uint32_t v = (uint32_t)p[0] << 16 | (len > 1 ? (uint32_t)p[1] << 8 : 0);
		*o++ = b64_alphabet[v >> 18];
		*o++ = b64_alphabet[(v >> 12) & 63];
		*o++ = len > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return (size_t)(o - out);
}

/* The 6-bit value of an alphabet character, or -1 for anything else (including '='). */
static int b64_value(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

long base64_decode(const char *in, size_t len, uint8_t *out)
{
	if (len % 4 != 0)
		return -EINVAL;
	/* '=' may only end the last quantum: "xx==" or "xxx=" */
	size_t pad = 0;
	if (len > 0 && in[len - 1] == '=')
		pad = in[len - 2] == '=' ? 2 : 1;

	uint8_t *o = out;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		size_t data_chars = last ? 4 - pad : 4;
		uint32_t v = 0;
		for (size_t j = 0; j < 4; j++) {
			int d = j < data_chars ? b64_value(in[i + j]) : 0;
			if (d < 0)
				return -EINVAL;
			v = v << 6 | (uint32_t)d;
		}
		/* canonical: the bits a padded quantum drops must be zero */
		if ((pad == 2 && last && (v & 0xffff)) || (pad == 1 && last && (v & 0xff)))
			return -EINVAL;
		*o++ = (uint8_t)(v >> 16);
		if (data_chars > 2)
			*o++ = (uint8_t)(v >> 8);
		if (data_chars > 3)
			*o++ = (uint8_t)v;
	}
	return (long)(o - out);
}
