/* cgroup/settings.c: linux.resources (cgroup v1 terms) → cgroup v2 files. */
#include "unit.h"

#include "base/json.h"
#include "cgroup/cgroup.h"

#include <stdlib.h>
#include <string.h>

struct fx {
	struct json *j;
	struct cgroup_settings *s;
	struct berth_error *err;
};

static int setup(void **state)
{
	*state = calloc(1, sizeof(struct fx));
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	bjson_free(f->j);
	cgroup_settings_free(f->s);
	berth_error_free(f->err);
	free(f);
	return 0;
}

static int convert(struct fx *f, const char *text)
{
	bjson_freep(&f->j);
	cgroup_settings_freep(&f->s);
	berth_error_freep(&f->err);
	assert_int_equal(bjson_parse(text, &f->j, &f->err), 0);
	return cgroup_settings_from_oci(f->j, &f->s, &f->err);
}

/* The value written to file, or NULL. */
static const char *value_of(const struct fx *f, const char *file)
{
	for (size_t i = 0; i < cgroup_settings_count(f->s); i++)
		if (strcmp(cgroup_settings_file(f->s, i), file) == 0)
			return cgroup_settings_value(f->s, i);
	return NULL;
}

#define WRITES(file, want) assert_string_equal(value_of(f, file) ? value_of(f, file) : "(none)", want)

static void test_memory(void **state)
{
	struct fx *f = *state;
	assert_int_equal(convert(f, "{\"memory\":{\"limit\":1048576,\"reservation\":524288,"
				    "\"swap\":3145728}}"),
			 0);
	WRITES("memory.max", "1048576");
	WRITES("memory.low", "524288");
	WRITES("memory.swap.max", "2097152"); /* memory+swap minus memory */
	assert_int_equal(convert(f, "{\"memory\":{\"limit\":-1,\"swap\":-1}}"), 0);
	WRITES("memory.max", "max");
	WRITES("memory.swap.max", "max");
	assert_int_equal(convert(f, "{\"memory\":{\"limit\":1048576,\"swap\":1048576}}"), 0);
	WRITES("memory.swap.max", "0");
	assert_int_equal(convert(f, "{\"memory\":{\"limit\":2048,\"swap\":1024}}"), -EINVAL);
	assert_contains(f->err->msg, "linux.resources.memory.swap: 1024 is below limit 2048");
	assert_int_equal(convert(f, "{\"memory\":{\"swap\":1024}}"), -EINVAL);
	assert_contains(f->err->msg, "needs a memory limit");
	assert_int_equal(convert(f, "{\"memory\":{\"limit\":\"1\"}}"), -EINVAL);
	assert_contains(f->err->msg, "linux.resources.memory.limit: must be an integer");
}

static void test_refused(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *json, *needle;
	} cases[] = {
		{ "{\"memory\":{\"kernel\":1}}", "linux.resources.memory.kernel" },
		{ "{\"memory\":{\"kernelTCP\":1}}", "linux.resources.memory.kernelTCP" },
		{ "{\"memory\":{\"swappiness\":10}}", "linux.resources.memory.swappiness" },
		{ "{\"memory\":{\"disableOOMKiller\":true}}", "linux.resources.memory.disableOOMKiller" },
		{ "{\"cpu\":{\"realtimeRuntime\":5}}", "linux.resources.cpu.realtimeRuntime" },
		{ "{\"blockIO\":{\"leafWeight\":10}}", "linux.resources.blockIO.leafWeight" },
		{ "{\"network\":{\"classID\":1}}", "linux.resources.network" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(convert(f, cases[i].json), -ENOTSUP);
		assert_contains(f->err->msg, cases[i].needle);
	}
	/* false and empty ask for nothing */
	assert_int_equal(convert(f, "{\"memory\":{\"disableOOMKiller\":false},\"devices\":[]}"), 0);
	assert_int_equal(cgroup_settings_count(f->s), 0);
}

static void test_cpu(void **state)
{
	struct fx *f = *state;
	assert_int_equal(convert(f, "{\"cpu\":{\"shares\":1024,\"quota\":50000,\"period\":100000,"
				    "\"cpus\":\"0-1\",\"mems\":\"0\",\"idle\":1,\"burst\":1000}}"),
			 0);
	WRITES("cpu.weight", "39"); /* runc: 1 + (1024-2)*9999/262142 */
	WRITES("cpu.max", "50000 100000");
	WRITES("cpuset.cpus", "0-1");
	WRITES("cpuset.mems", "0");
	WRITES("cpu.idle", "1");
	WRITES("cpu.max.burst", "1000");
	assert_int_equal(convert(f, "{\"cpu\":{\"shares\":2}}"), 0);
	WRITES("cpu.weight", "1");
	assert_int_equal(convert(f, "{\"cpu\":{\"shares\":262144}}"), 0);
	WRITES("cpu.weight", "10000");
	assert_int_equal(convert(f, "{\"cpu\":{\"quota\":-1,\"period\":200000}}"), 0);
	WRITES("cpu.max", "max 200000");
	assert_int_equal(convert(f, "{\"cpu\":{\"shares\":1}}"), -EINVAL);
	assert_contains(f->err->msg, "linux.resources.cpu.shares");
}

static void test_block_io_pids_hugepages(void **state)
{
	struct fx *f = *state;
	assert_int_equal(
		convert(f, "{\"blockIO\":{\"weight\":500,"
			   "\"weightDevice\":[{\"major\":8,\"minor\":0,\"weight\":100}],"
			   "\"throttleReadBpsDevice\":[{\"major\":8,\"minor\":0,\"rate\":1048576}]},"
			   "\"pids\":{\"limit\":16},"
			   "\"hugepageLimits\":[{\"pageSize\":\"2MB\",\"limit\":4194304}]}"),
		0);
	WRITES("io.max", "8:0 rbps=1048576");
	WRITES("pids.max", "16");
	WRITES("hugetlb.2MB.max", "4194304");
	/* the default weight comes first, converted from blkio's range */
	assert_string_equal(cgroup_settings_file(f->s, 0), "io.weight");
	assert_string_equal(cgroup_settings_value(f->s, 0), "default 4950");
	/* then the per-device weight, which overrides it for that device */
	assert_string_equal(cgroup_settings_file(f->s, 1), "io.weight");
	assert_string_equal(cgroup_settings_value(f->s, 1), "8:0 100");
	assert_int_equal(convert(f, "{\"pids\":{\"limit\":0}}"), 0);
	WRITES("pids.max", "max");
	assert_int_equal(convert(f, "{\"blockIO\":{\"weight\":5}}"), -EINVAL);
	assert_contains(f->err->msg, "linux.resources.blockIO.weight");
	assert_int_equal(convert(f, "{\"blockIO\":{\"throttleWriteIOPSDevice\":[{\"major\":8}]}}"),
			 -EINVAL);
	assert_contains(f->err->msg, "throttleWriteIOPSDevice[0]");
	assert_int_equal(convert(f, "{\"hugepageLimits\":[{\"pageSize\":\"../x\",\"limit\":1}]}"),
			 -EINVAL);
	assert_contains(f->err->msg, "hugepageLimits[0]");
}

static void test_unified(void **state)
{
	struct fx *f = *state;
	assert_int_equal(convert(f, "{\"unified\":{\"memory.high\":\"100000\",\"io.max\":\"8:0 wbps=1\"}}"),
			 0);
	WRITES("memory.high", "100000");
	WRITES("io.max", "8:0 wbps=1");
	assert_string_equal(cgroup_settings_field(f->s, 0), "linux.resources.unified.memory.high");
	static const char *const bad[] = { "../memory.max", "a/b.c", "cgroup.procs", "nodot", ".max" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text), "{\"unified\":{\"%s\":\"1\"}}", bad[i]);
		assert_int_equal(convert(f, text), -EINVAL);
		assert_contains(f->err->msg, "linux.resources.unified");
	}
	assert_int_equal(convert(f, "{\"unified\":{\"memory.high\":1}}"), -EINVAL);
	assert_contains(f->err->msg, "must be a string");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cpu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_block_io_pids_hugepages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unified, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
