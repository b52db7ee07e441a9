/* image/manifest.c and image/digest.c: the documents a pull reads, platforms and chain IDs. */
#include "unit.h"

#include "image/manifest-internal.h"

#define HA "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HB "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HC "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

static struct berth_error *err;

static int teardown(void **state)
{
	err = berth_error_free(err);
	return 0;
}

static void expect_error(int r, const char *part)
{
	assert_true(r < 0);
	assert_non_null(err);
	assert_contains(err->msg, part);
	err = berth_error_free(err);
}

static void test_digest(void **state)
{
	char out[DIGEST_LEN + 1];
	assert_int_equal(digest_of_buffer("abc", 3, out, &err), 0);
	assert_string_equal(out, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_true(digest_is_valid(HA));
	assert_false(digest_is_valid("sha256:AAAAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	assert_false(digest_is_valid("sha256:aa"));
	expect_error(digest_validate("sha512:00", "layer", &err), "layer: digest algorithm \"sha512\" is not supported");
	expect_error(digest_validate("nonsense", "config", &err), "config: \"nonsense\" is not a sha256 digest");
	struct digest_stream h;
	assert_int_equal(digest_stream_init(&h, &err), 0);
	digest_stream_update(&h, "a", 1);
	digest_stream_update(&h, "bc", 2);
	digest_stream_final(&h, out);
	digest_stream_free(&h);
	assert_string_equal(out, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void kind_is(const char *body, const char *ct, enum manifest_kind want)
{
	enum manifest_kind k;
	int r = manifest_kind_of(body, strlen(body), ct, &k, &err);
	if (r < 0)
		fail_msg("%s: %s", body, err->msg);
	assert_int_equal(k, want);
}

static void test_kind(void **state)
{
	kind_is("{\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":[]}", NULL, MANIFEST_INDEX);
	kind_is("{\"mediaType\":\"" MT_DOCKER_LIST "\"}", NULL, MANIFEST_INDEX);
	kind_is("{\"mediaType\":\"" MT_DOCKER_MANIFEST "\"}", NULL, MANIFEST_IMAGE);
	kind_is("{\"schemaVersion\":2,\"layers\":[]}", NULL, MANIFEST_IMAGE);
	kind_is("{\"schemaVersion\":2}", MT_OCI_INDEX, MANIFEST_INDEX);
	kind_is("{\"schemaVersion\":2,\"manifests\":[]}", "application/json", MANIFEST_INDEX);
	enum manifest_kind k;
	const char *s1 = "{\"schemaVersion\":1,\"fsLayers\":[]}";
	expect_error(manifest_kind_of(s1, strlen(s1), NULL, &k, &err), "schema 1");
	const char *odd = "{\"mediaType\":\"text/html\"}";
	expect_error(manifest_kind_of(odd, strlen(odd), NULL, &k, &err), "unsupported media type \"text/html\"");
	expect_error(manifest_kind_of("[1,2]", 5, NULL, &k, &err), "expected a JSON object");
	expect_error(manifest_kind_of("{", 1, NULL, &k, &err), "manifest");
	const char nul[] = "{}\0{}";
	expect_error(manifest_kind_of(nul, sizeof(nul) - 1, NULL, &k, &err), "NUL byte");
}

#define ENTRY(d, arch, variant)                                                                    \
	"{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" d "\",\"size\":10,"                   \
	"\"platform\":{\"os\":\"linux\",\"architecture\":\"" arch "\"" variant "}}"

static void test_index_select(void **state)
{
	const char *body = "{\"schemaVersion\":2,\"manifests\":[" ENTRY(HA, "arm", ",\"variant\":\"v7\"") ","
			   ENTRY(HB, "arm64", "") "," ENTRY(HC, "amd64", "") "]}";
	struct index x;
	assert_int_equal(index_parse(body, strlen(body), &x, &err), 0);
	assert_int_equal(x.n, 3);
	struct platform p;
	const struct descriptor *d;
	assert_int_equal(platform_parse("linux/amd64", &p, &err), 0);
	assert_int_equal(index_select(&x, &p, &d, &err), 0);
	assert_string_equal(d->digest, HC);
	assert_int_equal(platform_parse("linux/arm64/v8", &p, &err), 0);
	assert_int_equal(index_select(&x, &p, &d, &err), 0);
	assert_string_equal(d->digest, HB);
	assert_int_equal(platform_parse("linux/arm/v7", &p, &err), 0);
	assert_int_equal(index_select(&x, &p, &d, &err), 0);
	assert_string_equal(d->digest, HA);
	assert_int_equal(platform_parse("linux/arm/v6", &p, &err), 0);
	expect_error(index_select(&x, &p, &d, &err), "no image for platform linux/arm/v6 in the index (it has: linux/arm/v7, linux/arm64, linux/amd64)");
	index_clear(&x);
}

static void test_platform_parse(void **state)
{
	struct platform p;
	assert_int_equal(platform_parse(NULL, &p, &err), 0);
	assert_string_equal(p.os, "linux");
	assert_true(p.architecture[0] != '\0');
	expect_error(platform_parse("linux", &p, &err), "platform \"linux\": expected OS/ARCH");
	expect_error(platform_parse("linux/", &p, &err), "expected OS/ARCH");
	expect_error(platform_parse("linux/arm/v7/x", &p, &err), "expected OS/ARCH");
	expect_error(platform_parse("/amd64", &p, &err), "expected OS/ARCH");
	char buf[96];
	assert_int_equal(platform_parse("linux/arm/v7", &p, &err), 0);
	assert_string_equal(platform_string(&p, buf, sizeof(buf)), "linux/arm/v7");
}

static void test_manifest_parse(void **state)
{
	const char *body = "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
			   "\"config\":{\"mediaType\":\"" MT_OCI_CONFIG "\",\"digest\":\"" HA "\",\"size\":5},"
			   "\"layers\":[{\"mediaType\":\"" MT_OCI_LAYER_GZIP "\",\"digest\":\"" HB "\",\"size\":7},"
			   "{\"mediaType\":\"" MT_OCI_LAYER_ZSTD "\",\"digest\":\"" HC "\",\"size\":9}]}";
	struct manifest m;
	assert_int_equal(manifest_parse(body, strlen(body), &m, &err), 0);
	assert_string_equal(m.config.digest, HA);
	assert_int_equal(m.n_layers, 2);
	assert_int_equal(m.layers[1].size, 9);
	manifest_clear(&m);

	const char *foreign = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" HA "\",\"size\":5},"
			      "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\","
			      "\"digest\":\"" HB "\",\"size\":7}]}";
	expect_error(manifest_parse(foreign, strlen(foreign), &m, &err), "manifest.layers[0].mediaType");
	const char *nosize = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" HA "\"},\"layers\":[]}";
	expect_error(manifest_parse(nosize, strlen(nosize), &m, &err), "manifest.config.size");
	const char *baddigest = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"md5:00\",\"size\":1},\"layers\":[]}";
	expect_error(manifest_parse(baddigest, strlen(baddigest), &m, &err), "manifest.config: digest algorithm \"md5\"");
	const char *v1 = "{\"schemaVersion\":1}";
	expect_error(manifest_parse(v1, strlen(v1), &m, &err), "manifest.schemaVersion: expected 2");
	const char *neg = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"" HA "\",\"size\":-1},\"layers\":[]}";
	expect_error(manifest_parse(neg, strlen(neg), &m, &err), "manifest.config.size");
}

static void test_config_and_chain_ids(void **state)
{
	const char *body = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2026-01-02T03:04:05Z\","
			   "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" HA "\",\"" HB "\",\"" HC "\"]}}";
	struct image_config c;
	assert_int_equal(image_config_parse(body, strlen(body), &c, &err), 0);
	assert_int_equal(c.n_diff_ids, 3);
	assert_string_equal(c.platform.architecture, "amd64");
	assert_string_equal(c.created, "2026-01-02T03:04:05Z");
	char chains[3][DIGEST_LEN + 1];
	assert_int_equal(chain_ids((const char(*)[DIGEST_LEN + 1])c.diff_ids, 3, chains, &err), 0);
	/* computed independently (python hashlib) from the OCI image spec's definition */
	assert_string_equal(chains[0], HA);
	assert_string_equal(chains[1], "sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c");
	assert_string_equal(chains[2], "sha256:c1377126441fb2f5ec2c21ae2a60255331d639e830f0ee1b40a36e52d4c40588");
	image_config_clear(&c);

	const char *notype = "{\"rootfs\":{\"diff_ids\":[]}}";
	expect_error(image_config_parse(notype, strlen(notype), &c, &err), "rootfs.type");
	const char *bad = "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" HA "\",7]}}";
	expect_error(image_config_parse(bad, strlen(bad), &c, &err), "rootfs.diff_ids[1]");
	const char *os = "{\"os\":5,\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
	expect_error(image_config_parse(os, strlen(os), &c, &err), "image config: os: expected a string");
}

static void test_layer_types(void **state)
{
	assert_true(layer_media_type_supported(MT_OCI_LAYER));
	assert_true(layer_media_type_supported(MT_DOCKER_LAYER_GZIP));
	assert_true(layer_media_type_supported(MT_OCI_LAYER_ZSTD));
	assert_false(layer_media_type_supported("application/vnd.oci.image.layer.v1.tar+bzip2"));
}

int main(void)
{
#define T(fn) cmocka_unit_test_teardown(fn, teardown)
	const struct CMUnitTest tests[] = {
		T(test_digest),		T(test_kind),		   T(test_index_select), T(test_platform_parse),
		T(test_manifest_parse), T(test_config_and_chain_ids), T(test_layer_types),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
