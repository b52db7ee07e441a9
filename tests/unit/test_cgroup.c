/* cgroup/cgroup.c: the pure parts (systemd path form, path checks). Real cgroups are tested by
 * the integration suite and, with real controllers, in the qemu guest (tests/vm). */
#include "unit.h"

#include "cgroup/cgroup.h"

#include <stdlib.h>
#include <string.h>

static void expect_path(const char *spec, const char *want)
{
	char *got = NULL;
	struct berth_error *err = NULL;
	int r = cgroup_path_from_systemd(spec, &got, &err);
	if (r < 0)
		fail_msg("%s: %s", spec, err ? err->msg : "?");
	assert_string_equal(got, want);
	free(got);
	berth_error_free(err);
}

static void expect_refused(const char *spec, const char *needle)
{
	char *got = NULL;
	struct berth_error *err = NULL;
	assert_int_equal(cgroup_path_from_systemd(spec, &got, &err), -EINVAL);
	assert_null(got);
	assert_contains(err->msg, needle);
	berth_error_free(err);
}

static void test_systemd_paths(void **state)
{
	(void)state;
	/* what kubelet's systemd driver hands a runtime */
	expect_path("kubepods-burstable-pod1234.slice:cri-berth:abc",
		    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/"
		    "cri-berth-abc.scope");
	expect_path("system.slice:docker:x", "/system.slice/docker-x.scope");
	expect_path(":berth:x", "/system.slice/berth-x.scope"); /* the default slice */
	expect_path("user.slice::x", "/user.slice/x.scope");      /* no prefix */
	expect_path("-.slice:p:x", "/p-x.scope");                 /* the root slice */
	expect_path("machine.slice:p:inner.slice", "/machine.slice/inner.slice");
}

static void test_systemd_paths_refused(void **state)
{
	(void)state;
	expect_refused("no-colons", "expects slice:prefix:name");
	expect_refused("a.slice:b", "expects slice:prefix:name");
	expect_refused("a.slice:b:c:d", "expects slice:prefix:name");
	expect_refused("notaslice:p:x", "is not a slice name");
	expect_refused("a/b.slice:p:x", "is not a slice name");
	expect_refused("a--b.slice:p:x", "is not a valid slice name");
	expect_refused("-a.slice:p:x", "is not a valid slice name");
	expect_refused("a.slice:p:", "prefix and name must be names");
	expect_refused("a.slice:p:../x", "prefix and name must be names");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_systemd_paths),
		cmocka_unit_test(test_systemd_paths_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
