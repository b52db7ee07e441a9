/* runtime/spec.c: the default config (`spec`) and the features document. */
#include "unit.h"

#include "base/json.h"
#include "runtime/config-internal.h"
#include "runtime/runtime.h"

#include <sched.h>
#include <sys/mount.h>

struct fx {
	struct berth_error *err;
	char *text;
	struct json *j;
	struct oci_config *c;
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
	berth_error_free(f->err);
	free(f->text);
	bjson_free(f->j);
	oci_config_free(f->c);
	free(f);
	return 0;
}

static bool array_has(const struct json *arr, const char *s)
{
	for (size_t i = 0; i < bjson_array_size(arr); i++)
		if (bjson_string(bjson_array_get(arr, i)) &&
		    strcmp(bjson_string(bjson_array_get(arr, i)), s) == 0)
			return true;
	return false;
}

static void test_spec_is_accepted(void **state)
{
	struct fx *f = *state;
	assert_int_equal(runtime_spec_generate(false, &f->text, &f->err), 0);
	assert_null(f->err);
	/* the generated config must pass berth's own validation, unchanged */
	if (oci_config_parse(f->text, &f->c, &f->err) < 0)
		fail_msg("generated config refused: %s", f->err->msg);
	struct oci_config *c = f->c;
	assert_string_equal(c->oci_version, RUNTIME_OCI_VERSION);
	assert_string_equal(c->root_path, "rootfs");
	assert_true(c->root_readonly);
	assert_string_equal(c->hostname, "berth");
	assert_string_equal(c->process.args[0], "sh");
	assert_string_equal(c->process.cwd, "/");
	assert_true(c->process.no_new_privileges);
	assert_false(c->process.terminal);
	assert_int_equal(c->process.n_rlimits, 1);
	assert_non_null(c->process.env);
	assert_true(strncmp(c->process.env[0], "PATH=", 5) == 0);
	/* the namespaces a container needs, and never a user namespace */
	assert_non_null(oci_config_namespace(c, CLONE_NEWNS));
	assert_non_null(oci_config_namespace(c, CLONE_NEWPID));
	assert_non_null(oci_config_namespace(c, CLONE_NEWUTS));
	assert_non_null(oci_config_namespace(c, CLONE_NEWIPC));
	assert_non_null(oci_config_namespace(c, CLONE_NEWNET));
	assert_null(oci_config_namespace(c, CLONE_NEWUSER));
	/* the usual mounts, /proc first */
	assert_true(c->n_mounts >= 5);
	assert_string_equal(c->mounts[0].destination, "/proc");
	bool have_sys = false;
	for (size_t i = 0; i < c->n_mounts; i++)
		if (strcmp(c->mounts[i].destination, "/sys") == 0) {
			have_sys = true;
			assert_true(c->mounts[i].flags & MS_RDONLY);
		}
	assert_true(have_sys);
	assert_non_null(c->masked_paths);
	assert_non_null(c->readonly_paths);
	for (char **p = c->masked_paths; *p; p++)
		assert_int_equal((*p)[0], '/');
	/* pretty-printed, for people to edit */
	assert_non_null(strchr(f->text, '\n'));
}

static void test_spec_rootless_refused(void **state)
{
	struct fx *f = *state;
	f->text = NULL;
	assert_int_equal(runtime_spec_generate(true, &f->text, &f->err), -ENOTSUP);
	assert_null(f->text);
	assert_contains(f->err->msg, "--rootless");
	assert_int_equal(runtime_spec_generate(true, &f->text, NULL), -ENOTSUP);
}

static void test_features(void **state)
{
	struct fx *f = *state;
	assert_int_equal(runtime_features_generate(&f->text, &f->err), 0);
	if (bjson_parse(f->text, &f->j, &f->err) < 0)
		fail_msg("features is not JSON: %s", f->err->msg);
	const struct json *j = f->j;
	assert_string_equal(bjson_string(bjson_object_get(j, "ociVersionMin")), "1.0.0");
	assert_string_equal(bjson_string(bjson_object_get(j, "ociVersionMax")), RUNTIME_OCI_VERSION);
	assert_int_equal(bjson_type_of(bjson_object_get(j, "hooks")), JSON_ARRAY);
	assert_int_equal(bjson_array_size(bjson_object_get(j, "hooks")), 6);
	assert_string_equal(bjson_string(bjson_array_get(bjson_object_get(j, "hooks"), 1)),
			    "createRuntime");

	const struct json *opts = bjson_object_get(j, "mountOptions");
	assert_int_equal(bjson_type_of(opts), JSON_ARRAY);
	assert_true(array_has(opts, "ro"));
	assert_true(array_has(opts, "rbind"));
	assert_true(array_has(opts, "rro"));
	assert_true(array_has(opts, "idmap"));
	/* every listed option is one the config parser applies */
	for (size_t i = 0; i < bjson_array_size(opts); i++) {
		struct oci_mount m = { 0 };
		const char *o = bjson_string(bjson_array_get(opts, i));
		assert_non_null(o);
		if (!oci_mount_option_apply(&m, o))
			fail_msg("features lists mount option \"%s\" that berth does not know", o);
	}

	const struct json *lnx = bjson_object_get(j, "linux");
	const struct json *ns = bjson_object_get(lnx, "namespaces");
	assert_int_equal(bjson_type_of(ns), JSON_ARRAY);
	assert_true(array_has(ns, "mount"));
	assert_true(array_has(ns, "pid"));
	assert_true(array_has(ns, "network"));
	assert_true(array_has(ns, "time"));
	assert_true(array_has(ns, "user"));
	for (size_t i = 0; i < bjson_array_size(ns); i++)
		assert_true(oci_namespace_type_from_name(bjson_string(bjson_array_get(ns, i))) > 0);
	assert_true(bjson_bool(bjson_object_get(bjson_object_get(lnx, "cgroup"), "v2")));
	assert_false(bjson_bool(bjson_object_get(bjson_object_get(lnx, "cgroup"), "v1")));
	const struct json *sc = bjson_object_get(lnx, "seccomp");
	assert_true(bjson_bool(bjson_object_get(sc, "enabled")));
	assert_true(bjson_array_size(bjson_object_get(sc, "actions")) >= 9);
	assert_int_equal(bjson_array_size(bjson_object_get(sc, "operators")), 7);
	assert_true(bjson_bool(bjson_object_get(
		bjson_object_get(bjson_object_get(lnx, "mountExtensions"), "idmap"), "enabled")));
	assert_string_equal(bjson_string(bjson_object_get(bjson_object_get(j, "annotations"),
							"io.github.berth.version")),
			    BERTH_VERSION);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_spec_is_accepted),
		T(test_spec_rootless_refused),
		T(test_features),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
