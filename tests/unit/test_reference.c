/* image/reference.c: normalisation as Docker and containerd do it, and refusals. */
#include "unit.h"

#include "image/image.h"
#include "image/reference-internal.h"

static void expect_normal(const char *in, const char *want)
{
	char *out = NULL;
	struct berth_error *err = NULL;
	int r = image_reference_normalize(in, &out, &err);
	if (r < 0)
		fail_msg("%s: %s", in, err ? err->msg : "?");
	assert_string_equal(out, want);
	free(out);
}

static void expect_refused(const char *in, const char *msg_part)
{
	char *out = NULL;
	struct berth_error *err = NULL;
	int r = image_reference_normalize(in, &out, &err);
	if (r == 0)
		fail_msg("%s was accepted as %s", in, out);
	assert_non_null(err);
	assert_contains(err->msg, msg_part);
	berth_error_free(err);
}

#define D "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_short_names(void **state)
{
	expect_normal("busybox", "docker.io/library/busybox:latest");
	expect_normal("busybox:1.36", "docker.io/library/busybox:1.36");
	expect_normal("library/busybox", "docker.io/library/busybox:latest");
	expect_normal("user/app", "docker.io/user/app:latest");
	expect_normal("docker.io/busybox", "docker.io/library/busybox:latest");
	expect_normal("index.docker.io/library/busybox", "docker.io/library/busybox:latest");
}

static void test_domains_and_ports(void **state)
{
	expect_normal("127.0.0.1:5000/test/small:v1", "127.0.0.1:5000/test/small:v1");
	expect_normal("localhost/app", "localhost/app:latest");
	expect_normal("localhost:5000/app", "localhost:5000/app:latest");
	expect_normal("quay.io/a/b/c", "quay.io/a/b/c:latest");
	expect_normal("[::1]:5000/app:t", "[::1]:5000/app:t");
	/* a first component without '.', ':' or "localhost" is a Docker Hub user */
	expect_normal("myhost/app", "docker.io/myhost/app:latest");
}

static void test_digests(void **state)
{
	expect_normal("busybox@" D, "docker.io/library/busybox@" D);
	expect_normal("127.0.0.1:5000/a/b:v1@" D, "127.0.0.1:5000/a/b:v1@" D);
	struct reference r;
	assert_int_equal(reference_parse("127.0.0.1:5000/a/b@" D, &r, NULL), 0);
	assert_string_equal(r.domain, "127.0.0.1:5000");
	assert_string_equal(r.path, "a/b");
	assert_null(r.tag);
	assert_string_equal(r.digest, D);
	char *repo = reference_repository(&r);
	assert_string_equal(repo, "127.0.0.1:5000/a/b");
	free(repo);
	reference_clear(&r);
}

static void test_separators(void **state)
{
	expect_normal("a/b.c_d__e-f---g", "docker.io/a/b.c_d__e-f---g:latest");
	expect_refused("a/b..c", "invalid repository name");
	expect_refused("a/-b", "invalid repository name");
	expect_refused("a/b_", "invalid repository name");
	expect_refused("a/b___c", "invalid repository name");
}

static void test_refused(void **state)
{
	expect_refused("", "empty name");
	expect_refused("Busybox", "must be lowercase");
	expect_refused("busybox:", "invalid tag");
	expect_refused("busybox:-x", "invalid tag");
	expect_refused("busybox:a/b", "invalid");
	expect_refused("busybox@sha256:abc", "not a sha256 digest");
	expect_refused("busybox@sha512:abc", "not supported");
	expect_refused("a//b", "invalid repository name");
	expect_refused("quay.io/", "missing repository name");
	expect_refused("bad_host.io:port/app", "invalid registry");
	char long_name[300];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	expect_refused(long_name, "longer than");
	char long_tag[200] = "busybox:";
	memset(long_tag + 8, 't', 130);
	long_tag[138] = '\0';
	expect_refused(long_tag, "invalid tag");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_names), cmocka_unit_test(test_domains_and_ports),
		cmocka_unit_test(test_digests),	    cmocka_unit_test(test_separators),
		cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
