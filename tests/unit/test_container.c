/* runtime/container.c: signal names as `kill` takes them. */
#include "unit.h"

#include "runtime/runtime.h"

#include <signal.h>

static void test_signal_names(void **state)
{
	(void)state;
	assert_int_equal(runtime_signal_parse("KILL"), SIGKILL);
	assert_int_equal(runtime_signal_parse("SIGKILL"), SIGKILL);
	assert_int_equal(runtime_signal_parse("sigterm"), SIGTERM);
	assert_int_equal(runtime_signal_parse("term"), SIGTERM);
	assert_int_equal(runtime_signal_parse("HUP"), SIGHUP);
	assert_int_equal(runtime_signal_parse("SigUsr1"), SIGUSR1);
	assert_int_equal(runtime_signal_parse("WINCH"), SIGWINCH);
	assert_int_equal(runtime_signal_parse("CHLD"), SIGCHLD);
}

static void test_signal_numbers(void **state)
{
	(void)state;
	assert_int_equal(runtime_signal_parse("9"), 9);
	assert_int_equal(runtime_signal_parse("1"), 1);
	assert_int_equal(runtime_signal_parse("64"), 64);
	assert_int_equal(runtime_signal_parse("0"), -EINVAL);
	assert_int_equal(runtime_signal_parse("65"), -EINVAL);
	assert_int_equal(runtime_signal_parse("-9"), -EINVAL);
	assert_int_equal(runtime_signal_parse("99999999999999999999"), -EINVAL);
}

static void test_signal_realtime(void **state)
{
	(void)state;
	assert_int_equal(runtime_signal_parse("RTMIN"), SIGRTMIN);
	assert_int_equal(runtime_signal_parse("RTMIN+1"), SIGRTMIN + 1);
	assert_int_equal(runtime_signal_parse("SIGRTMIN+3"), SIGRTMIN + 3);
	assert_int_equal(runtime_signal_parse("RTMAX"), SIGRTMAX);
	assert_int_equal(runtime_signal_parse("RTMAX-1"), SIGRTMAX - 1);
	assert_int_equal(runtime_signal_parse("rtmax-2"), SIGRTMAX - 2);
	/* outside the range, or the wrong direction */
	assert_int_equal(runtime_signal_parse("RTMAX+1"), -EINVAL);
	assert_int_equal(runtime_signal_parse("RTMIN-1"), -EINVAL);
	assert_int_equal(runtime_signal_parse("RTMIN+1000"), -EINVAL);
	assert_int_equal(runtime_signal_parse("RTMIN+x"), -EINVAL);
}

static void test_signal_unknown(void **state)
{
	(void)state;
	assert_int_equal(runtime_signal_parse("FOO"), -EINVAL);
	assert_int_equal(runtime_signal_parse("SIGFOO"), -EINVAL);
	assert_int_equal(runtime_signal_parse(""), -EINVAL);
	assert_int_equal(runtime_signal_parse("SIG"), -EINVAL);
	assert_int_equal(runtime_signal_parse("KILL "), -EINVAL);
	assert_int_equal(runtime_signal_parse("9x"), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signal_names),
		cmocka_unit_test(test_signal_numbers),
		cmocka_unit_test(test_signal_realtime),
		cmocka_unit_test(test_signal_unknown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
