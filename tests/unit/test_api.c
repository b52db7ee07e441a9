/* cri/api.c and cri/errcode.c: the JSON-lines protocol's framing, refusals and codes, without a
 * manager (every request here is answered before one would be called). */
#include "unit.h"

#include "base/cleanup.h"
#include "base/json.h"
#include "cri/api.h"
#include "cri/errcode.h"

static const struct berthd_config config = { .stop_timeout = 10 };
static const struct api_context ctx = { .manager = NULL, .config = &config };

/* The answer to line: ok, or the code and a message containing needle. */
static void expect(const char *line, size_t len, const char *code, const char *needle)
{
	bool sub = true;
	_cleanup_free_ char *out = api_handle(&ctx, line, len, &sub);
	assert_non_null(out);
	assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1); /* one line, newline-ended */
	_cleanup_(bjson_freep) struct json *j = NULL;
	assert_int_equal(bjson_parse(out, &j, NULL), 0);
	assert_false(sub);
	if (!code) {
		assert_true(bjson_bool(bjson_object_get(j, "ok")));
		return;
	}
	assert_false(bjson_bool(bjson_object_get(j, "ok")));
	assert_string_equal(bjson_string(bjson_object_get(j, "code")), code);
	assert_contains(bjson_string(bjson_object_get(j, "error")), needle);
}

static void expect_str(const char *line, const char *code, const char *needle)
{
	expect(line, strlen(line), code, needle);
}

static void test_requests_refused_with_their_code(void **state)
{
	(void)state;
	expect_str("{\"op\":\"version\"}", NULL, NULL);
	expect_str("not json", "InvalidArgument", "invalid JSON");
	expect_str("[1]", "InvalidArgument", "not a JSON object");
	expect_str("{}", "InvalidArgument", "op: required");
	expect_str("{\"op\":7}", "InvalidArgument", "op: not a string");
	expect_str("{\"op\":\"pod.fly\"}", "Unimplemented", "\"pod.fly\"");
	expect_str("{\"op\":\"version\",\"x\":1}", "InvalidArgument",
		   "x: unknown field for op version");
	expect_str("{\"op\":\"container.start\"}", "InvalidArgument", "container_id: required");
	expect_str("{\"op\":\"container.start\",\"container_id\":5}", "InvalidArgument",
		   "container_id: not a string");
	expect_str("{\"op\":\"container.stop\",\"container_id\":\"a\",\"timeout\":-1}",
		   "InvalidArgument", "timeout: -1 is out of range");
	expect_str("{\"op\":\"container.kill\",\"container_id\":\"a\",\"signal\":\"SIGNOPE\"}",
		   "InvalidArgument", "signal: unknown signal");
	expect_str("{\"op\":\"container.kill\",\"container_id\":\"a\",\"signal\":99}",
		   "InvalidArgument", "signal: not a signal");
	expect_str("{\"op\":\"pod.run\",\"config\":{\"metadata\":{}}}", "InvalidArgument",
		   "config.metadata.name: required");
	expect_str("{\"op\":\"container.exec\",\"container_id\":\"a\",\"cmd\":\"ls\"}",
		   "InvalidArgument", "cmd: not an array");
	expect("{\"op\":\"version\"}\0x", 18, "InvalidArgument", "NUL");
}

/* The ops berth's command line added (inspect, stats, info): their fields are checked before
 * the manager is asked. */
static void test_cli_ops_check_their_fields(void **state)
{
	(void)state;
	expect_str("{\"op\":\"container.inspect\"}", "InvalidArgument", "container_id: required");
	expect_str("{\"op\":\"container.inspect\",\"container_id\":\"a\",\"x\":1}",
		   "InvalidArgument", "x: unknown field for op container.inspect");
	expect_str("{\"op\":\"pod.inspect\",\"pod_id\":7}", "InvalidArgument",
		   "pod_id: not a string");
	expect_str("{\"op\":\"container.stats\"}", "InvalidArgument", "container_id: required");
	expect_str("{\"op\":\"container.stats\",\"pod_id\":\"a\"}", "InvalidArgument",
		   "pod_id: unknown field for op container.stats");
	expect_str("{\"op\":\"pod.stats\"}", "InvalidArgument", "pod_id: required");
	expect_str("{\"op\":\"info\",\"verbose\":true}", "InvalidArgument",
		   "verbose: unknown field for op info");
}

#define FFFD "\xef\xbf\xbd"

static void test_utf8_sanitize(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} cases[] = {
		/* clang-format off */
		{ "plain", 5, "plain" },
		{ "h\xc3\xa9", 3, "h\xc3\xa9" }, /* é */
		{ "\xe2\x82\xac\xf0\x9f\x98\x80", 7, "\xe2\x82\xac\xf0\x9f\x98\x80" }, /* €, 😀 */
		{ "a\0b", 3, "a" FFFD "b" }, /* NUL */
		{ "\xff", 1, FFFD }, /* not a lead byte */
		{ "\xc3", 1, FFFD }, /* cut short */
		{ "\xc0\xaf", 2, FFFD FFFD }, /* overlong */
		{ "\xed\xa0\x80", 3, FFFD FFFD FFFD }, /* a surrogate */
		{ "\xf4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD }, /* above U+10FFFF */
		/* clang-format on */
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *s = api_utf8_sanitize(cases[i].in, cases[i].len);
		assert_string_equal(s, cases[i].out);
	}
}

static void test_errcode_table(void **state)
{
	(void)state;
	assert_string_equal(errcode_name(errcode_from_errno(ENOENT)), "NotFound");
	assert_string_equal(errcode_name(errcode_from_errno(-EEXIST)), "AlreadyExists");
	assert_string_equal(errcode_name(errcode_from_errno(EINVAL)), "InvalidArgument");
	assert_string_equal(errcode_name(errcode_from_errno(EBUSY)), "FailedPrecondition");
	assert_string_equal(errcode_name(errcode_from_errno(ETIMEDOUT)), "DeadlineExceeded");
	assert_string_equal(errcode_name(errcode_from_errno(EOPNOTSUPP)), "Unimplemented");
	assert_string_equal(errcode_name(errcode_from_errno(EIO)), "Internal");
	assert_int_equal(errcode_from_errno(0), GRPC_OK);
	assert_int_equal(errcode_from_errno(ENOENT), 5); /* gRPC's own numbers */
}

static void test_event_line(void **state)
{
	(void)state;
	struct manager_event ev = { .type = MANAGER_EVENT_EXITED,
				    .container_id = "c1",
				    .pod_id = "p1",
				    .time_ns = 42,
				    .exit_code = 3,
				    .reason = "Error" };
	_cleanup_free_ char *line = api_event_line(&ev);
	assert_string_equal(line, "{\"event\":\"exited\",\"container_id\":\"c1\",\"pod_id\":\"p1\","
				  "\"time_ns\":42,\"exit_code\":3,\"reason\":\"Error\"}\n");
	_cleanup_free_ char *err = api_error_line(ENOENT, "pod x not found");
	assert_string_equal(err,
			    "{\"ok\":false,\"code\":\"NotFound\",\"error\":\"pod x not found\"}\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests_refused_with_their_code),
		cmocka_unit_test(test_cli_ops_check_their_fields),
		cmocka_unit_test(test_utf8_sanitize),
		cmocka_unit_test(test_errcode_table),
		cmocka_unit_test(test_event_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
