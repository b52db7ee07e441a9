/* base/hash.c: SHA-256 and SHA-1 against the NIST examples, base64 against RFC 4648. */
#include "unit.h"

#include "base/cleanup.h"
#include "base/hash.h"

static void hex(const uint8_t *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void assert_digest(const uint8_t *d, size_t n, const char *want)
{
	char got[2 * SHA256_DIGEST_LEN + 1];
	hex(d, n, got);
	assert_string_equal(got, want);
}

static void assert_sha256(const void *data, size_t len, const char *want)
{
	uint8_t d[SHA256_DIGEST_LEN];
	sha256(data, len, d);
	assert_digest(d, sizeof(d), want);
}

static void assert_sha1(const void *data, size_t len, const char *want)
{
	uint8_t d[SHA1_DIGEST_LEN];
	sha1(data, len, d);
	assert_digest(d, sizeof(d), want);
}

#define MSG_448 "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
#define MSG_896                                                                                    \
	"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqr" \
	"lmnopqrsmnopqrstnopqrstu"

static void test_sha256_nist(void **state)
{
	(void)state;
	assert_sha256(NULL, 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_sha256("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_sha256(MSG_448, strlen(MSG_448),
		      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	assert_sha256(MSG_896, strlen(MSG_896),
		      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

/* The lengths around the padding's edges: 55 fits one block, 56 needs a second. */
static void test_sha256_padding_edges(void **state)
{
	(void)state;
	static const struct {
		size_t n;
		const char *want;
	} cases[] = {
		{ 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318" },
		{ 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a" },
		{ 63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34" },
		{ 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb" },
		{ 119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb" },
		{ 120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c" },
	};
	char a[128];
	memset(a, 'a', sizeof(a));
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		assert_sha256(a, cases[i].n, cases[i].want);
}

/* One million 'a's fed in chunks of 1, 2, ... 127 bytes, so every buffer offset is crossed. */
static void test_sha256_million_a_in_chunks(void **state)
{
	(void)state;
	char a[127];
	memset(a, 'a', sizeof(a));
	struct sha256_ctx c;
	sha256_init(&c);
	size_t left = 1000000, chunk = 1;
	while (left > 0) {
		size_t n = chunk < left ? chunk : left;
		sha256_update(&c, a, n);
		sha256_update(&c, NULL, 0); /* an empty update changes nothing */
		left -= n;
		chunk = chunk % sizeof(a) + 1;
	}
	uint8_t d[SHA256_DIGEST_LEN];
	sha256_final(&c, d);
	assert_digest(d, sizeof(d),
		      "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_sha256_streaming_matches_one_shot(void **state)
{
	(void)state;
	uint8_t data[300];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 3);
	for (size_t len = 0; len <= sizeof(data); len += 13) {
		uint8_t one[SHA256_DIGEST_LEN], streamed[SHA256_DIGEST_LEN];
		sha256(data, len, one);
		struct sha256_ctx c;
		sha256_init(&c);
		sha256_update(&c, data, len / 3);
		sha256_update(&c, data + len / 3, len - len / 3);
		sha256_final(&c, streamed);
		assert_memory_equal(one, streamed, sizeof(one));
	}
}

static void test_sha1_nist(void **state)
{
	(void)state;
	assert_sha1("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
	assert_sha1("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	assert_sha1(NULL, 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	assert_sha1(MSG_448, strlen(MSG_448), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
	char a[120];
	memset(a, 'a', sizeof(a));
	assert_sha1(a, 55, "c1c8bbdc22796e28c0e15163d20899b65621d65a");
	assert_sha1(a, 56, "c2db330f6083854c99d4b5bfb6e8f29f201be699");
	assert_sha1(a, 64, "0098ba824b5c16427bd7a1122a5a442a25ec644d");
	assert_sha1(a, 120, "f34c1488385346a55709ba056ddd08280dd4c6d6");
}

/* RFC 4648 section 10 */
static const struct {
	const char *plain, *encoded;
} rfc4648[] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static void test_base64_encode_rfc4648(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(rfc4648); i++) {
		char out[16];
		size_t n = base64_encode(rfc4648[i].plain, strlen(rfc4648[i].plain), out);
		assert_string_equal(out, rfc4648[i].encoded);
		assert_int_equal(n, strlen(rfc4648[i].encoded));
		assert_int_equal(n, base64_encoded_len(strlen(rfc4648[i].plain)));
	}
}

static void test_base64_decode_rfc4648(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(rfc4648); i++) {
		uint8_t out[16];
		const char *enc = rfc4648[i].encoded;
		long n = base64_decode(enc, strlen(enc), out);
		assert_int_equal(n, strlen(rfc4648[i].plain));
		assert_memory_equal(out, rfc4648[i].plain, (size_t)n);
	}
}

static void test_base64_round_trip_all_bytes(void **state)
{
	(void)state;
	uint8_t data[256], back[256];
	char enc[base64_encoded_len(256) + 1];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(255 - i);
	for (size_t len = 0; len <= sizeof(data); len++) {
		size_t n = base64_encode(data, len, enc);
		assert_int_equal(base64_decode(enc, n, back), len);
		if (len)
			assert_memory_equal(back, data, len);
	}
}

static void test_base64_rejects(void **state)
{
	(void)state;
	static const struct {
		const char *in, *why;
	} bad[] = {
		{ "Zg=", "length not a multiple of 4" },
		{ "Zm9", "length not a multiple of 4" },
		{ "Z", "length not a multiple of 4" },
		{ "Zm9v\n", "whitespace" },
		{ "Zm 9v", "whitespace" },
		{ "Zm9v Zg==", "whitespace" },
		{ "Zm9\tv", "whitespace" },
		{ "Zm9-", "base64url's alphabet" },
		{ "Zm9_", "base64url's alphabet" },
		{ "Zm9*", "not in the alphabet" },
		{ "Z===", "misplaced '='" },
		{ "====", "misplaced '='" },
		{ "=Zm9", "misplaced '='" },
		{ "Zg==Zm9v", "misplaced '='" },
		{ "Zm=v", "misplaced '='" },
		{ "Zg=A", "misplaced '='" },
		{ "Zh==", "non-zero pad bits" },
		{ "Zm9=", "non-zero pad bits" },
	};
	uint8_t out[16];
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		long r = base64_decode(bad[i].in, strlen(bad[i].in), out);
		if (r != -EINVAL)
			fail_msg("base64_decode(\"%s\") (%s) = %ld, want -EINVAL", bad[i].in,
				 bad[i].why, r);
	}
	/* a NUL byte inside the input is not part of the alphabet either */
	assert_int_equal(base64_decode("Zm\0v", 4, out), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_nist),
		cmocka_unit_test(test_sha256_padding_edges),
		cmocka_unit_test(test_sha256_million_a_in_chunks),
		cmocka_unit_test(test_sha256_streaming_matches_one_shot),
		cmocka_unit_test(test_sha1_nist),
		cmocka_unit_test(test_base64_encode_rfc4648),
		cmocka_unit_test(test_base64_decode_rfc4648),
		cmocka_unit_test(test_base64_round_trip_all_bytes),
		cmocka_unit_test(test_base64_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
