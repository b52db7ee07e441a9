/* base/command.c: running a helper to completion, its output bounded, its deadline kept. */
#include "unit.h"

#include "base/command.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

static int run_sh(const char *script, const char *input, int timeout_ms, size_t out_max,
		  struct command_result *res)
{
	char *const argv[] = { "sh", "-c", (char *)script, NULL };
	const struct command c = { .path = "/bin/sh",
				   .argv = argv,
				   .input = input,
				   .timeout_ms = timeout_ms,
				   .out_max = out_max,
				   .err_max = 64 };
	return command_run(&c, res);
}

static void test_output_status_and_input(void **state)
{
	struct command_result res;
	assert_int_equal(run_sh("cat; echo oops >&2; exit 3", "hello", 0, 1024, &res), 0);
	assert_string_equal(res.out.buf, "hello");
	assert_string_equal(res.err.buf, "oops\n");
	assert_int_equal(res.status, 3);
	command_result_clear(&res);
	assert_null(res.out.buf);
}

static void test_signal_status(void **state)
{
	struct command_result res;
	assert_int_equal(run_sh("kill -TERM $$", NULL, 0, 1024, &res), 0);
	assert_int_equal(res.status, 128 + SIGTERM);
	assert_null(res.out.buf);
	command_result_clear(&res);
}

static void test_stdout_over_bound_is_killed(void **state)
{
	struct command_result res;
	/* it would print forever: the bound ends it */
	assert_int_equal(run_sh("yes", NULL, 0, 4096, &res), -EMSGSIZE);
	assert_int_equal(res.out.len, 4096);
	assert_int_equal(res.status, 128 + SIGKILL);
	command_result_clear(&res);
}

static void test_stderr_is_bounded_not_fatal(void **state)
{
	struct command_result res;
	assert_int_equal(run_sh("head -c 100000 /dev/zero | tr '\\0' x >&2; echo done", NULL, 0,
				1024, &res),
			 0);
	assert_int_equal(res.err.len, 64);
	assert_true(res.err.overflow);
	assert_string_equal(res.out.buf, "done\n");
	command_result_clear(&res);
}

static void test_deadline_kills_the_group(void **state)
{
	struct command_result res;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* the grandchild keeps stdout open: the whole group must go for the run to end */
	assert_int_equal(run_sh("sleep 30 & echo started; wait", NULL, 300, 1024, &res), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	assert_true(ms < 5000);
	assert_string_equal(res.out.buf, "started\n");
	command_result_clear(&res);
}

static void test_missing_program(void **state)
{
	const struct command c = { .path = "/no/such/program", .out_max = 64, .err_max = 256 };
	struct command_result res;
	assert_int_equal(command_run(&c, &res), 0);
	assert_int_equal(res.status, 127);
	char excerpt[32];
	command_stderr_excerpt(&res, excerpt, sizeof(excerpt));
	assert_string_equal(excerpt, "berth: execve failed");
	command_result_clear(&res);
}

static void test_stderr_excerpt_is_one_line_tail(void **state)
{
	struct command_result res;
	assert_int_equal(run_sh("printf 'first\\nsecond\\r\\nthird  \\n\\n' >&2", NULL, 0, 64, &res), 0);
	char small[12], big[64];
	command_stderr_excerpt(&res, small, sizeof(small));
	assert_string_equal(small, "cond  third");
	command_stderr_excerpt(&res, big, sizeof(big));
	assert_string_equal(big, "first second  third");
	command_result_clear(&res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_output_status_and_input),
		cmocka_unit_test(test_signal_status),
		cmocka_unit_test(test_stdout_over_bound_is_killed),
		cmocka_unit_test(test_stderr_is_bounded_not_fatal),
		cmocka_unit_test(test_deadline_kills_the_group),
		cmocka_unit_test(test_missing_program),
		cmocka_unit_test(test_stderr_excerpt_is_one_line_tail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
