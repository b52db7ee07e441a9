/* base/json.c: the parser's accessors and the writer. */
#include "unit.h"

#include "base/json.h"

#include <inttypes.h>

struct fx {
	struct json *j;
	struct berth_error *err;
	char *text;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	bjson_free(f->j);
	berth_error_free(f->err);
	free(f->text);
	free(f);
	return 0;
}

static const struct json *parse(struct fx *f, const char *text)
{
	int r = bjson_parse(text, &f->j, &f->err);
	if (r < 0)
		fail_msg("bjson_parse(%s): %s", text, f->err ? f->err->msg : "?");
	return f->j;
}

/* ---- parsing ---- */

static void test_parse_invalid(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = { "", "{", "{\"a\":}", "[1,]", "nul", "{\"a\" 1}", "'x'" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json *j = NULL;
		assert_int_equal(bjson_parse(bad[i], &j, &f->err), -EINVAL);
		assert_null(j);
		assert_non_null(f->err);
		assert_int_equal(f->err->code, EINVAL);
		assert_true(strncmp(f->err->msg, "invalid JSON", 12) == 0);
		/* yajl draws the spot on further lines; only the first line is kept */
		assert_null(strchr(f->err->msg, '\n'));
		berth_error_freep(&f->err);
	}
	/* without an error pointer the code alone comes back */
	struct json *j = NULL;
	assert_int_equal(bjson_parse("[", &j, NULL), -EINVAL);
}

static void test_types(void **state)
{
	struct fx *f = *state;
	const struct json *j = parse(f, "{\"s\":\"str\",\"n\":42,\"o\":{\"k\":1},\"a\":[1,2],\"t\":"
					"true,\"f\":false,\"z\":null}");
	assert_int_equal(bjson_type_of(j), JSON_OBJECT);
	assert_int_equal(bjson_type_of(bjson_object_get(j, "s")), JSON_STRING);
	assert_int_equal(bjson_type_of(bjson_object_get(j, "n")), JSON_NUMBER);
	assert_int_equal(bjson_type_of(bjson_object_get(j, "o")), JSON_OBJECT);
	assert_int_equal(bjson_type_of(bjson_object_get(j, "a")), JSON_ARRAY);
	assert_int_equal(bjson_type_of(bjson_object_get(j, "t")), JSON_BOOL);
	assert_int_equal(bjson_type_of(bjson_object_get(j, "f")), JSON_BOOL);
	assert_int_equal(bjson_type_of(bjson_object_get(j, "z")), JSON_NULL);
	assert_int_equal(bjson_type_of(bjson_object_get(j, "missing")), JSON_ABSENT);
	assert_int_equal(bjson_type_of(NULL), JSON_ABSENT);

	assert_string_equal(bjson_type_name(JSON_STRING), "a string");
	assert_string_equal(bjson_type_name(JSON_OBJECT), "an object");
	assert_string_equal(bjson_type_name(JSON_ABSENT), "absent");
	assert_string_equal(bjson_type_name(JSON_BOOL), "a boolean");
}

static void test_scalar_accessors(void **state)
{
	struct fx *f = *state;
	const struct json *j =
		parse(f, "{\"s\":\"str\",\"n\":42,\"t\":true,\"f\":false,\"z\":null}");
	assert_string_equal(bjson_string(bjson_object_get(j, "s")), "str");
	assert_null(bjson_string(bjson_object_get(j, "n"))); /* a number is not a string */
	assert_null(bjson_string(bjson_object_get(j, "z")));
	assert_true(bjson_bool(bjson_object_get(j, "t")));
	assert_false(bjson_bool(bjson_object_get(j, "f")));
	assert_false(bjson_bool(bjson_object_get(j, "s")));
	assert_false(bjson_bool(bjson_object_get(j, "z")));
	int64_t i = 0;
	assert_true(bjson_int64(bjson_object_get(j, "n"), &i));
	assert_int_equal(i, 42);
	assert_false(bjson_int64(bjson_object_get(j, "s"), &i));
	assert_false(bjson_int64(bjson_object_get(j, "t"), &i));
}

static void test_object_and_array_accessors(void **state)
{
	struct fx *f = *state;
	const struct json *j = parse(f, "{\"b\":1,\"a\":[\"x\",\"y\",\"z\"],\"c\":{}}");
	assert_int_equal(bjson_object_size(j), 3);
	/* document order is kept */
	assert_string_equal(bjson_object_key(j, 0), "b");
	assert_string_equal(bjson_object_key(j, 1), "a");
	assert_string_equal(bjson_object_key(j, 2), "c");
	assert_null(bjson_object_key(j, 3));
	assert_null(bjson_object_value(j, 3));
	assert_ptr_equal(bjson_object_value(j, 1), bjson_object_get(j, "a"));

	const struct json *a = bjson_object_get(j, "a");
	assert_int_equal(bjson_array_size(a), 3);
	assert_string_equal(bjson_string(bjson_array_get(a, 0)), "x");
	assert_string_equal(bjson_string(bjson_array_get(a, 2)), "z");
	assert_null(bjson_array_get(a, 3));

	/* the wrong kind of container answers "empty" */
	assert_int_equal(bjson_array_size(j), 0);
	assert_int_equal(bjson_object_size(a), 0);
	assert_null(bjson_object_get(a, "x"));
	assert_null(bjson_array_get(j, 0));
	assert_int_equal(bjson_object_size(bjson_object_get(j, "c")), 0);
}

static void test_duplicate_key_last_wins(void **state)
{
	struct fx *f = *state;
	const struct json *j = parse(f, "{\"a\":1,\"a\":2}");
	int64_t v = 0;
	assert_true(bjson_int64(bjson_object_get(j, "a"), &v));
	assert_int_equal(v, 2);
}

static void test_absent_chaining(void **state)
{
	struct fx *f = *state;
	const struct json *j = parse(f, "{\"a\":{\"b\":[{\"c\":\"deep\"}]}}");
	assert_string_equal(
		bjson_string(bjson_object_get(
			bjson_array_get(bjson_object_get(bjson_object_get(j, "a"), "b"), 0), "c")),
		"deep");
	/* every step of a missing path is NULL-safe */
	const struct json *miss =
		bjson_object_get(bjson_array_get(bjson_object_get(j, "nope"), 0), "c");
	assert_null(miss);
	assert_int_equal(bjson_type_of(miss), JSON_ABSENT);
	assert_null(bjson_string(miss));
	assert_false(bjson_bool(miss));
	assert_int_equal(bjson_object_size(NULL), 0);
	assert_int_equal(bjson_array_size(NULL), 0);
	assert_null(bjson_object_key(NULL, 0));
	assert_null(bjson_object_value(NULL, 0));
	assert_null(bjson_array_get(NULL, 0));
	int64_t i = 7;
	uint64_t u = 7;
	assert_false(bjson_int64(NULL, &i));
	assert_false(bjson_uint64(NULL, &u));
	assert_int_equal(i, 7);
	assert_int_equal(u, 7);
	assert_null(bjson_free(NULL));
}

static void test_int64(void **state)
{
	struct fx *f = *state;
	const struct json *j =
		parse(f, "[-5, 0, 9223372036854775807, 9223372036854775808, 1.5, 1e3, -0]");
	int64_t v = 0;
	assert_true(bjson_int64(bjson_array_get(j, 0), &v));
	assert_int_equal(v, -5);
	assert_true(bjson_int64(bjson_array_get(j, 1), &v));
	assert_int_equal(v, 0);
	assert_true(bjson_int64(bjson_array_get(j, 2), &v));
	assert_true(v == INT64_MAX);
	v = 11;
	assert_false(bjson_int64(bjson_array_get(j, 3), &v)); /* too big */
	assert_false(bjson_int64(bjson_array_get(j, 4), &v)); /* a fraction */
	assert_false(bjson_int64(bjson_array_get(j, 5), &v)); /* an exponent */
	assert_int_equal(v, 11);			    /* untouched on failure */
	assert_true(bjson_int64(bjson_array_get(j, 6), &v));
	assert_int_equal(v, 0);
}

static void test_uint64(void **state)
{
	struct fx *f = *state;
	const struct json *j = parse(
		f,
		"[0, 18446744073709551615, 18446744073709551616, -1, 2.0, 1e2, \"5\", 4294967296]");
	uint64_t v = 0;
	assert_true(bjson_uint64(bjson_array_get(j, 0), &v));
	assert_int_equal(v, 0);
	assert_true(bjson_uint64(bjson_array_get(j, 1), &v));
	assert_true(v == UINT64_MAX);
	v = 3;
	assert_false(bjson_uint64(bjson_array_get(j, 2), &v)); /* too big */
	assert_false(bjson_uint64(bjson_array_get(j, 3), &v)); /* negative */
	assert_false(bjson_uint64(bjson_array_get(j, 4), &v)); /* float */
	assert_false(bjson_uint64(bjson_array_get(j, 5), &v)); /* exponent */
	assert_false(bjson_uint64(bjson_array_get(j, 6), &v)); /* a string */
	assert_int_equal(v, 3);
	assert_true(bjson_uint64(bjson_array_get(j, 7), &v));
	assert_true(v == UINT64_C(4294967296));
}

/* ---- writing ---- */

static void test_writer_nested_compact(void **state)
{
	struct fx *f = *state;
	struct json_writer *w = bjson_writer_new(false);
	assert_non_null(w);
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "s", "v");
	bjson_writer_kv_int(w, "i", -3);
	bjson_writer_kv_bool(w, "b", true);
	bjson_writer_key(w, "u");
	bjson_writer_uint(w, UINT64_MAX);
	bjson_writer_key(w, "n");
	bjson_writer_null(w);
	bjson_writer_key(w, "a");
	bjson_writer_begin_array(w);
	bjson_writer_int(w, 1);
	bjson_writer_begin_object(w);
	bjson_writer_kv_bool(w, "x", false);
	bjson_writer_end_object(w);
	bjson_writer_begin_array(w);
	bjson_writer_end_array(w);
	bjson_writer_end_array(w);
	bjson_writer_key(w, "o");
	bjson_writer_begin_object(w);
	bjson_writer_key(w, "deep");
	bjson_writer_begin_object(w);
	bjson_writer_end_object(w);
	bjson_writer_end_object(w);
	bjson_writer_end_object(w);
	size_t len = 0;
	assert_int_equal(bjson_writer_finish(w, &f->text, &len), 0);
	assert_string_equal(f->text, "{\"s\":\"v\",\"i\":-3,\"b\":true,\"u\":18446744073709551615,"
				     "\"n\":null,\"a\":[1,{\"x\":false},[]],\"o\":{\"deep\":{}}}");
	assert_int_equal(len, strlen(f->text));
}

static void test_writer_escaping(void **state)
{
	struct fx *f = *state;
	struct json_writer *w = bjson_writer_new(false);
	bjson_writer_begin_array(w);
	bjson_writer_string(w, "say \"hi\"\\ back\n\t\r\x01\x1f end");
	bjson_writer_end_array(w);
	assert_int_equal(bjson_writer_finish(w, &f->text, NULL), 0);
	assert_string_equal(f->text, "[\"say \\\"hi\\\"\\\\ back\\n\\t\\r\\u0001\\u001F end\"]");
	/* no raw control character is left in the output */
	for (const char *p = f->text; *p; p++)
		assert_true((unsigned char)*p >= 0x20);
	/* and it reads back as the original */
	const struct json *j = parse(f, f->text);
	assert_string_equal(bjson_string(bjson_array_get(j, 0)),
			    "say \"hi\"\\ back\n\t\r\x01\x1f end");
}

static void test_writer_invalid_utf8(void **state)
{
	struct fx *f = *state;
	struct json_writer *w = bjson_writer_new(false);
	bjson_writer_begin_array(w);
	bjson_writer_string(w, "bad \xff\xfe");
	bjson_writer_end_array(w);
	f->text = NULL;
	assert_int_equal(bjson_writer_finish(w, &f->text, NULL), -EINVAL);
	assert_null(f->text);
}

static void test_writer_value_round_trip(void **state)
{
	struct fx *f = *state;
	const char *in =
		"{\"a\":[1,2.5,-3,1e+30,true,false,null,\"x\\\"y\"],\"b\":{\"c\":{},\"d\":[]},"
		"\"e\":\"\\u00e9\"}";
	const struct json *j = parse(f, in);
	struct json_writer *w = bjson_writer_new(false);
	bjson_writer_value(w, j);
	assert_int_equal(bjson_writer_finish(w, &f->text, NULL), 0);
	/* numbers keep their text; \u00e9 comes back as the UTF-8 character */
	assert_string_equal(f->text, "{\"a\":[1,2.5,-3,1e+30,true,false,null,\"x\\\"y\"],"
				     "\"b\":{\"c\":{},\"d\":[]},\"e\":\"\xc3\xa9\"}");

	/* a subtree inside other events, and an absent node as null */
	w = bjson_writer_new(false);
	bjson_writer_begin_object(w);
	bjson_writer_key(w, "copy");
	bjson_writer_value(w, bjson_object_get(j, "b"));
	bjson_writer_key(w, "gone");
	bjson_writer_value(w, bjson_object_get(j, "nope"));
	bjson_writer_end_object(w);
	char *out = NULL;
	assert_int_equal(bjson_writer_finish(w, &out, NULL), 0);
	assert_string_equal(out, "{\"copy\":{\"c\":{},\"d\":[]},\"gone\":null}");
	free(out);
}

static void test_writer_pretty_vs_compact(void **state)
{
	struct fx *f = *state;
	char *text[2] = { NULL, NULL };
	for (int pretty = 0; pretty < 2; pretty++) {
		struct json_writer *w = bjson_writer_new(pretty);
		bjson_writer_begin_object(w);
		bjson_writer_kv_int(w, "a", 1);
		bjson_writer_key(w, "b");
		bjson_writer_begin_array(w);
		bjson_writer_string(w, "x");
		bjson_writer_end_array(w);
		bjson_writer_end_object(w);
		assert_int_equal(bjson_writer_finish(w, &text[pretty], NULL), 0);
	}
	assert_string_equal(text[0], "{\"a\":1,\"b\":[\"x\"]}");
	assert_null(strchr(text[0], '\n'));
	assert_string_equal(text[1], "{\n\t\"a\": 1,\n\t\"b\": [\n\t\t\"x\"\n\t]\n}\n");
	/* both say the same thing */
	struct json *a = NULL, *b = NULL;
	assert_int_equal(bjson_parse(text[0], &a, &f->err), 0);
	assert_int_equal(bjson_parse(text[1], &b, &f->err), 0);
	int64_t va = 0, vb = 0;
	assert_true(bjson_int64(bjson_object_get(a, "a"), &va));
	assert_true(bjson_int64(bjson_object_get(b, "a"), &vb));
	assert_int_equal(va, vb);
	assert_string_equal(bjson_string(bjson_array_get(bjson_object_get(b, "b"), 0)), "x");
	bjson_free(a);
	bjson_free(b);
	free(text[0]);
	free(text[1]);
}

static void test_writer_out_of_place(void **state)
{
	(void)state;
	char *out = NULL;

	/* a number where a key must be */
	struct json_writer *w = bjson_writer_new(false);
	bjson_writer_begin_object(w);
	bjson_writer_int(w, 1);
	bjson_writer_end_object(w);
	assert_int_equal(bjson_writer_finish(w, &out, NULL), -EINVAL);
	assert_null(out);

	/* closing what was never opened */
	w = bjson_writer_new(false);
	bjson_writer_end_array(w);
	assert_int_equal(bjson_writer_finish(w, &out, NULL), -EINVAL);
	assert_null(out);

	/* a second top-level value */
	w = bjson_writer_new(true);
	bjson_writer_begin_object(w);
	bjson_writer_end_object(w);
	bjson_writer_bool(w, true);
	assert_int_equal(bjson_writer_finish(w, &out, NULL), -EINVAL);
	assert_null(out);

	/* a NULL writer (bjson_writer_new's failure) is -ENOMEM */
	assert_int_equal(bjson_writer_finish(NULL, &out, NULL), -ENOMEM);
}

static void test_writer_unclosed(void **state)
{
	struct fx *f = *state;
	struct json_writer *w = bjson_writer_new(false);
	bjson_writer_begin_object(w);
	bjson_writer_kv_int(w, "a", 1);
	int r = bjson_writer_finish(w, &f->text, NULL);
	REGRESSION_IF(r == 0,
		     "base/json.c bjson_writer_finish: an unclosed object is returned as "
		     "success with truncated text \"%s\" (expected -EINVAL)",
		     f->text);
	assert_int_equal(r, -EINVAL);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_parse_invalid),
		T(test_types),
		T(test_scalar_accessors),
		T(test_object_and_array_accessors),
		T(test_duplicate_key_last_wins),
		T(test_absent_chaining),
		T(test_int64),
		T(test_uint64),
		T(test_writer_nested_compact),
		T(test_writer_escaping),
		T(test_writer_invalid_utf8),
		T(test_writer_value_round_trip),
		T(test_writer_pretty_vs_compact),
		T(test_writer_out_of_place),
		T(test_writer_unclosed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
