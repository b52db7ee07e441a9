/* runtime/caps.c: parsing of process.capabilities, and applying it in a child process. */
#include "unit.h"

#include "base/json.h"
#include "runtime/caps-internal.h"

#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

struct fx {
	struct json *j;
	struct berth_error *err;
	struct oci_caps caps;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	*state = f;
	return f ? 0 : -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	bjson_free(f->j);
	berth_error_free(f->err);
	free(f);
	return 0;
}

static int parse(struct fx *f, const char *text)
{
	bjson_freep(&f->j);
	berth_error_freep(&f->err);
	memset(&f->caps, 0, sizeof(f->caps));
	assert_int_equal(bjson_parse(text, &f->j, &f->err), 0);
	return caps_parse(f->j, "process.capabilities", &f->caps, &f->err);
}

#define BIT(c) (UINT64_C(1) << (c))

static void test_sets(void **state)
{
	struct fx *f = *state;
	assert_int_equal(parse(f, "{\"bounding\":[\"CAP_KILL\",\"CAP_CHOWN\"],"
				  "\"effective\":[\"CAP_KILL\"],\"permitted\":[\"CAP_KILL\"],"
				  "\"inheritable\":[],\"ambient\":[]}"),
			 0);
	assert_true(f->caps.present);
	assert_int_equal(f->caps.set[CAPS_BOUNDING], BIT(CAP_KILL) | BIT(CAP_CHOWN));
	assert_int_equal(f->caps.set[CAPS_EFFECTIVE], BIT(CAP_KILL));
	assert_int_equal(f->caps.set[CAPS_PERMITTED], BIT(CAP_KILL));
	assert_int_equal(f->caps.set[CAPS_INHERITABLE], 0);
	assert_int_equal(f->caps.set[CAPS_AMBIENT], 0);
}

static void test_absent_and_empty(void **state)
{
	struct fx *f = *state;
	assert_int_equal(caps_parse(NULL, "process.capabilities", &f->caps, &f->err), 0);
	assert_false(f->caps.present);
	/* {} is "no capabilities at all", not "unchanged" */
	assert_int_equal(parse(f, "{}"), 0);
	assert_true(f->caps.present);
	for (int s = 0; s < CAPS_SETS; s++)
		assert_int_equal(f->caps.set[s], 0);
}

static void test_errors(void **state)
{
	struct fx *f = *state;
	assert_int_equal(parse(f, "{\"bounding\":[\"CAP_NOPE\"]}"), -EINVAL);
	assert_contains(f->err->msg, "process.capabilities.bounding[0]");
	assert_contains(f->err->msg, "CAP_NOPE");
	/* libcap also reads lower case and numbers; the spec's names are CAP_… only */
	assert_int_equal(parse(f, "{\"effective\":[\"CAP_KILL\",\"kill\"]}"), -EINVAL);
	assert_contains(f->err->msg, "process.capabilities.effective[1]");
	assert_int_equal(parse(f, "{\"permitted\":\"CAP_KILL\"}"), -EINVAL);
	assert_contains(f->err->msg, "process.capabilities.permitted: must be an array");
	assert_int_equal(parse(f, "{\"permitted\":[7]}"), -EINVAL);
	assert_contains(f->err->msg, "process.capabilities.permitted[0]: must be a string");
	assert_int_equal(parse(f, "[]"), -EINVAL);
	assert_contains(f->err->msg, "process.capabilities: must be an object");
	assert_int_equal(parse(f, "{\"permitted\":[\"CAP_KILL\"],\"ambient\":[\"CAP_KILL\"]}"),
			 -EINVAL);
	assert_contains(f->err->msg, "process.capabilities.ambient: CAP_KILL must also be in "
				     "permitted and inheritable");
}

/* Applies caps in a child as uid 0 → 65534 and reports its /proc/self/status Cap lines. */
static void apply_in_child(struct fx *f, uid_t uid, char *out, size_t len)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		struct berth_error *err = NULL;
		if (caps_prepare(&f->caps, &err) < 0 || setresgid(uid, uid, uid) < 0 ||
		    setresuid(uid, uid, uid) < 0 || caps_apply(&f->caps, &err) < 0)
			_exit(3);
		FILE *st = fopen("/proc/self/status", "r");
		char line[256];
		while (st && fgets(line, sizeof(line), st))
			if (strncmp(line, "Cap", 3) == 0 && write(p[1], line, strlen(line)) < 0)
				_exit(4);
		_exit(0);
	}
	close(p[1]);
	size_t n = 0;
	for (ssize_t got; n + 1 < len && (got = read(p[0], out + n, len - 1 - n)) > 0;)
		n += (size_t)got;
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	out[n] = '\0';
	close(p[0]);
}

static void test_apply(void **state)
{
	struct fx *f = *state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(parse(f, "{\"bounding\":[\"CAP_NET_BIND_SERVICE\",\"CAP_KILL\"],"
				  "\"effective\":[\"CAP_NET_BIND_SERVICE\"],"
				  "\"permitted\":[\"CAP_NET_BIND_SERVICE\"],"
				  "\"inheritable\":[\"CAP_NET_BIND_SERVICE\"],"
				  "\"ambient\":[\"CAP_NET_BIND_SERVICE\"]}"),
			 0);
	char out[1024];
	apply_in_child(f, 65534, out, sizeof(out));
	/* CAP_NET_BIND_SERVICE is 10 (0x400), CAP_KILL 5 (0x20) */
	assert_contains(out, "CapInh:\t0000000000000400");
	assert_contains(out, "CapPrm:\t0000000000000400");
	assert_contains(out, "CapEff:\t0000000000000400");
	assert_contains(out, "CapBnd:\t0000000000000420");
	assert_contains(out, "CapAmb:\t0000000000000400");
}

static void test_apply_empty_drops_everything(void **state)
{
	struct fx *f = *state;
	if (geteuid() != 0)
		skip();
	assert_int_equal(parse(f, "{}"), 0);
	char out[1024];
	apply_in_child(f, 0, out, sizeof(out));
	assert_contains(out, "CapEff:\t0000000000000000");
	assert_contains(out, "CapPrm:\t0000000000000000");
	assert_contains(out, "CapBnd:\t0000000000000000");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_absent_and_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_empty_drops_everything, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
