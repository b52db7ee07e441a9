/* base/error.c: the error object contract. */
#include "unit.h"

#include "base/error.h"

static int setup(void **state)
{
	struct berth_error **err = calloc(1, sizeof(*err));
	if (!err)
		return -1;
	*state = err;
	return 0;
}

static int teardown(void **state)
{
	struct berth_error **err = *state;
	berth_error_freep(err);
	assert_null(*err);
	free(err);
	return 0;
}

static void test_set_returns_negative_code(void **state)
{
	struct berth_error **err = *state;
	assert_int_equal(berth_error_set(err, ENOENT, "open %s", "x"), -ENOENT);
	assert_non_null(*err);
	assert_int_equal((*err)->code, ENOENT);
	assert_string_equal((*err)->msg, "open x");
}

static void test_set_normalises_code(void **state)
{
	struct berth_error **err = *state;
	/* a negative code is taken as -errno, zero becomes EIO: the result is always < 0 */
	assert_int_equal(berth_error_set(err, -EACCES, "a"), -EACCES);
	assert_int_equal((*err)->code, EACCES);
	berth_error_freep(err);
	assert_int_equal(berth_error_set(err, 0, "b"), -EIO);
	assert_int_equal((*err)->code, EIO);
}

static void test_first_error_wins(void **state)
{
	struct berth_error **err = *state;
	assert_int_equal(berth_error_set(err, EINVAL, "first"), -EINVAL);
	/* the second call still reports its own code to its caller, but does not overwrite */
	assert_int_equal(berth_error_set(err, ENOENT, "second"), -ENOENT);
	assert_int_equal(berth_error_setsys(err, EPERM, "third"), -EPERM);
	assert_int_equal((*err)->code, EINVAL);
	assert_string_equal((*err)->msg, "first");
}

static void test_setsys_appends_strerror(void **state)
{
	struct berth_error **err = *state;
	assert_int_equal(berth_error_setsys(err, ENOENT, "open %s", "/nope"), -ENOENT);
	char want[256];
	snprintf(want, sizeof(want), "open /nope: %s", strerror(ENOENT));
	assert_string_equal((*err)->msg, want);
	assert_int_equal((*err)->code, ENOENT);
}

static void test_wrap_prepends_context(void **state)
{
	struct berth_error **err = *state;
	berth_error_set(err, EACCES, "cause");
	assert_int_equal(berth_error_wrap(err, "step %d", 2), -EACCES);
	assert_string_equal((*err)->msg, "step 2: cause");
	assert_int_equal(berth_error_wrap(err, "outer"), -EACCES);
	assert_string_equal((*err)->msg, "outer: step 2: cause");
	assert_int_equal((*err)->code, EACCES);
}

static void test_wrap_without_error(void **state)
{
	struct berth_error **err = *state;
	assert_int_equal(berth_error_wrap(err, "ctx"), -EIO);
	assert_null(*err);
	assert_int_equal(berth_error_wrap(NULL, "ctx"), -EIO);
}

static void test_null_err_pointer(void **state)
{
	(void)state;
	assert_int_equal(berth_error_set(NULL, EINVAL, "x %d", 1), -EINVAL);
	assert_int_equal(berth_error_setsys(NULL, ENOENT, "y"), -ENOENT);
	assert_int_equal(berth_error_set(NULL, 0, "z"), -EIO);
}

static void test_free_accepts_null(void **state)
{
	(void)state;
	assert_null(berth_error_free(NULL));
	struct berth_error *e = NULL;
	berth_error_freep(&e);
	assert_null(e);
	assert_int_equal(berth_error_set(&e, EBUSY, "busy"), -EBUSY);
	assert_null(berth_error_free(e));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_set_returns_negative_code, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_normalises_code, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_error_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_setsys_appends_strerror, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrap_prepends_context, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrap_without_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_null_err_pointer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_accepts_null, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
