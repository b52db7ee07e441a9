/* tools/options.c: the command-line option parser. */
#include "unit.h"

#include "tools/options.h"

struct fx {
	bool detach, all;
	const char *bundle, *pid_file;
	char **env;
	char *msg;
	struct opt opts[6];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->opts[0] = (struct opt){ "bundle", 'b', OPT_STRING, &f->bundle };
	f->opts[1] = (struct opt){ "pid-file", 0, OPT_STRING, &f->pid_file };
	f->opts[2] = (struct opt){ "detach", 'd', OPT_FLAG, &f->detach };
	f->opts[3] = (struct opt){ "all", 'a', OPT_FLAG, &f->all };
	f->opts[4] = (struct opt){ "env", 'e', OPT_LIST, &f->env };
	f->opts[5] = (struct opt){ NULL, 0, OPT_FLAG, NULL };
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	free(f->env); /* the strings belong to argv */
	free(f->msg);
	free(f);
	return 0;
}

/* Parses argv (NULL-terminated, argv[0] is the command) from index 1, from default values. */
static int run(struct fx *f, char **argv, int *index)
{
	int argc = 0;
	while (argv[argc])
		argc++;
	*index = 1;
	f->detach = f->all = false;
	f->bundle = f->pid_file = NULL;
	free(f->env);
	f->env = NULL;
	free(f->msg);
	f->msg = NULL;
	return options_parse(argc, argv, index, f->opts, &f->msg);
}

#define ARGV(...) ((char *[]){ "create", __VA_ARGS__, NULL })

static void test_value_forms(void **state)
{
	struct fx *f = *state;
	int i;
	assert_int_equal(run(f, ARGV("--bundle", "/b1", "id"), &i), 0);
	assert_string_equal(f->bundle, "/b1");
	assert_int_equal(i, 3);
	assert_int_equal(run(f, ARGV("--bundle=/b2", "id"), &i), 0);
	assert_string_equal(f->bundle, "/b2");
	assert_int_equal(i, 2);
	assert_int_equal(run(f, ARGV("-bundle", "/b3", "id"), &i), 0);
	assert_string_equal(f->bundle, "/b3");
	assert_int_equal(i, 3);
	assert_int_equal(run(f, ARGV("-b", "/b4", "id"), &i), 0);
	assert_string_equal(f->bundle, "/b4");
	assert_int_equal(run(f, ARGV("-b=/b5"), &i), 0);
	assert_string_equal(f->bundle, "/b5");
	assert_int_equal(i, 2); /* no positional: index is argc */
	assert_int_equal(run(f, ARGV("--pid-file", "/run/p", "--bundle", "x"), &i), 0);
	assert_string_equal(f->pid_file, "/run/p");
	assert_string_equal(f->bundle, "x");
	assert_null(f->msg);
}

static void test_value_edge_cases(void **state)
{
	struct fx *f = *state;
	int i;
	/* an empty value, a value with '=' in it, a value that looks like an option */
	assert_int_equal(run(f, ARGV("--bundle="), &i), 0);
	assert_string_equal(f->bundle, "");
	assert_int_equal(run(f, ARGV("--bundle=a=b"), &i), 0);
	assert_string_equal(f->bundle, "a=b");
	assert_int_equal(run(f, ARGV("--bundle", "-d"), &i), 0);
	assert_string_equal(f->bundle, "-d");
	assert_false(f->detach);
	/* the last one given wins */
	assert_int_equal(run(f, ARGV("-b", "one", "--bundle", "two"), &i), 0);
	assert_string_equal(f->bundle, "two");
}

static void test_flags(void **state)
{
	struct fx *f = *state;
	int i;
	assert_int_equal(run(f, ARGV("--detach", "id"), &i), 0);
	assert_true(f->detach);
	assert_int_equal(i, 2);
	assert_int_equal(run(f, ARGV("--detach", "--detach=false"), &i), 0);
	assert_false(f->detach);
	assert_int_equal(run(f, ARGV("--detach=true"), &i), 0);
	assert_true(f->detach);
	assert_int_equal(run(f, ARGV("-d", "-a", "id"), &i), 0);
	assert_true(f->detach);
	assert_true(f->all);
	assert_int_equal(i, 3);
	assert_int_equal(run(f, ARGV("-d", "-a", "-detach=false", "-all=false"), &i), 0);
	assert_false(f->detach);
	assert_false(f->all);
	/* a flag never takes the next argument as its value */
	assert_int_equal(run(f, ARGV("--detach", "false"), &i), 0);
	assert_true(f->detach);
	assert_int_equal(i, 2);
}

static void test_flag_bad_value(void **state)
{
	struct fx *f = *state;
	int i;
	assert_int_equal(run(f, ARGV("--detach=maybe", "id"), &i), -1);
	assert_string_equal(f->msg, "--detach: expects true or false");
	assert_int_equal(i, 1); /* untouched on failure */
	assert_int_equal(run(f, ARGV("--all=1"), &i), -1);
	assert_string_equal(f->msg, "--all: expects true or false");
}

static void test_list(void **state)
{
	struct fx *f = *state;
	int i;
	assert_int_equal(
		run(f, ARGV("-e", "A=1", "--env", "B=2", "--env=C=3", "-env", "D=", "id"), &i), 0);
	assert_non_null(f->env);
	assert_string_equal(f->env[0], "A=1");
	assert_string_equal(f->env[1], "B=2");
	assert_string_equal(f->env[2], "C=3");
	assert_string_equal(f->env[3], "D=");
	assert_null(f->env[4]);
	assert_int_equal(i, 8);
}

static void test_positional_stops(void **state)
{
	struct fx *f = *state;
	int i;
	char **argv = ARGV("--detach", "id", "--bundle", "x", "-a");
	assert_int_equal(run(f, argv, &i), 0);
	assert_int_equal(i, 2);
	assert_string_equal(argv[i], "id");
	assert_true(f->detach);
	assert_null(f->bundle);
	assert_false(f->all);
	/* "-" alone is a positional argument (stdin, by convention) */
	argv = ARGV("-a", "-", "-d");
	assert_int_equal(run(f, argv, &i), 0);
	assert_int_equal(i, 2);
	assert_string_equal(argv[i], "-");
	assert_false(f->detach);
}

static void test_double_dash(void **state)
{
	struct fx *f = *state;
	int i;
	char **argv = ARGV("-d", "--", "--bundle", "x");
	assert_int_equal(run(f, argv, &i), 0);
	assert_int_equal(i, 3);
	assert_string_equal(argv[i], "--bundle");
	assert_null(f->bundle);
	assert_int_equal(run(f, ARGV("--"), &i), 0);
	assert_int_equal(i, 2);
	/* as a value, "--" is just a value */
	assert_int_equal(run(f, ARGV("--bundle", "--", "id"), &i), 0);
	assert_string_equal(f->bundle, "--");
	assert_int_equal(i, 3);
}

static void test_unknown_option(void **state)
{
	struct fx *f = *state;
	int i;
	assert_int_equal(run(f, ARGV("--bogus", "id"), &i), -1);
	assert_string_equal(f->msg, "unknown option --bogus");
	assert_int_equal(i, 1);
	assert_int_equal(run(f, ARGV("--bogus=3"), &i), -1);
	assert_string_equal(f->msg, "unknown option --bogus");
	assert_int_equal(run(f, ARGV("-d", "-x"), &i), -1);
	assert_string_equal(f->msg, "unknown option -x");
	assert_true(f->detach);					/* what came before was applied */
	assert_int_equal(run(f, ARGV("--bundl", "x"), &i), -1); /* no prefix matching */
	assert_string_equal(f->msg, "unknown option --bundl");
}

static void test_missing_value(void **state)
{
	struct fx *f = *state;
	int i;
	assert_int_equal(run(f, ARGV("--bundle"), &i), -1);
	assert_string_equal(f->msg, "--bundle: needs a value");
	assert_int_equal(i, 1);
	assert_int_equal(run(f, ARGV("-d", "-b"), &i), -1);
	assert_contains(f->msg, "bundle");
	assert_contains(f->msg, "needs a value");
	assert_int_equal(run(f, ARGV("--env"), &i), -1);
	assert_string_equal(f->msg, "--env: needs a value");
	assert_null(f->env);
}

static void test_start_index(void **state)
{
	struct fx *f = *state;
	/* a subcommand's options start after the global ones */
	char *argv[] = { "berth-runtime", "--root", "/r", "create", "-b", "/b", "id", NULL };
	int i = 4;
	assert_int_equal(options_parse(7, argv, &i, f->opts, &f->msg), 0);
	assert_int_equal(i, 6);
	assert_string_equal(f->bundle, "/b");
	/* nothing left */
	i = 7;
	assert_int_equal(options_parse(7, argv, &i, f->opts, &f->msg), 0);
	assert_int_equal(i, 7);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_value_forms),   T(test_value_edge_cases),
		T(test_flags),	       T(test_flag_bad_value),
		T(test_list),	       T(test_positional_stops),
		T(test_double_dash),   T(test_unknown_option),
		T(test_missing_value), T(test_start_index),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
