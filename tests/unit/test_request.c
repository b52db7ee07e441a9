/* cri/request.c: pod and container requests parsed strictly, and written back canonically. */
#include "unit.h"

#include "base/cleanup.h"
#include "base/json.h"
#include "cri/request.h"

struct fx {
	struct berth_error *err;
	struct json *j;
	struct pod_config pod;
	struct container_config ctr;
	char *text;
};

static int setup(void **state)
{
	*state = calloc(1, sizeof(struct fx));
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	berth_error_free(f->err);
	bjson_free(f->j);
	pod_config_clear(&f->pod);
	container_config_clear(&f->ctr);
	free(f->text);
	free(f);
	return 0;
}

static int parse_pod(struct fx *f, const char *text)
{
	bjson_freep(&f->j);
	berth_error_freep(&f->err);
	assert_int_equal(bjson_parse(text, &f->j, NULL), 0);
	return pod_config_parse(f->j, "config", &f->pod, &f->err);
}

static int parse_ctr(struct fx *f, const char *text)
{
	bjson_freep(&f->j);
	berth_error_freep(&f->err);
	assert_int_equal(bjson_parse(text, &f->j, NULL), 0);
	return container_config_parse(f->j, "config", &f->ctr, &f->err);
}

#define POD_FULL                                                                                   \
	"{\"metadata\":{\"name\":\"web\",\"namespace\":\"prod\",\"uid\":\"u-1\",\"attempt\":2},"   \
	"\"hostname\":\"web-0\",\"log_directory\":\"/var/log/pods/x\","                            \
	"\"dns_config\":{\"servers\":[\"10.0.0.10\"],\"searches\":[\"svc\"],\"options\":[\"ndots:" \
	"5\"]},"                                                                                   \
	"\"port_mappings\":[{\"protocol\":\"UDP\",\"container_port\":53,\"host_port\":5353},"      \
	"{\"container_port\":80}],\"labels\":{\"app\":\"web\"},\"annotations\":{},"                \
	"\"linux\":{\"cgroup_parent\":\"/kubepods/pod1\",\"security_context\":"                    \
	"{\"namespace_options\":{\"network\":\"NODE\",\"pid\":\"POD\"}}}}"

static void test_pod_full_round_trip(void **state)
{
	struct fx *f = *state;
	MUST_OK(f, parse_pod(f, POD_FULL));
	struct pod_config *c = &f->pod;
	assert_string_equal(c->name, "web");
	assert_string_equal(c->namespace_, "prod");
	assert_int_equal(c->attempt, 2);
	assert_string_equal(c->dns_searches[0], "svc");
	assert_int_equal(c->n_ports, 2);
	assert_string_equal(c->ports[0].protocol, "UDP");
	assert_string_equal(c->ports[1].protocol, "TCP"); /* the default */
	assert_int_equal(c->ports[1].container_port, 80);
	assert_int_equal(c->net_mode, NS_MODE_NODE);
	assert_int_equal(c->pid_mode, NS_MODE_POD);
	assert_int_equal(c->ipc_mode, NS_MODE_POD);
	assert_string_equal(c->labels_json, "{\"app\":\"web\"}");
	assert_int_equal(pod_config_to_json(c, &f->text), 0);
	struct pod_config back;
	MUST_OK(f, pod_config_from_text(f->text, &back, &f->err));
	char *again = NULL;
	assert_int_equal(pod_config_to_json(&back, &again), 0);
	assert_string_equal(again, f->text);
	free(again);
	pod_config_clear(&back);
}

static void test_pod_errors_name_the_field(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *json, *needle;
		int code;
	} cases[] = {
		{ "{}", "config.metadata: required", EINVAL },
		{ "{\"metadata\":{\"name\":\"a\",\"namespace\":\"b\"}}",
		  "config.metadata.uid: required", EINVAL },
		{ "{\"metadata\":{\"name\":\"a/b\",\"namespace\":\"b\",\"uid\":\"u\"}}",
		  "config.metadata.name", EINVAL },
		{ "{\"metadata\":{\"name\":\"a\",\"namespace\":\"b\",\"uid\":\"u\",\"attempt\":-1}"
		  "}",
		  "config.metadata.attempt: -1 is out of range", EINVAL },
		{ "{\"metadata\":{\"name\":\"a\",\"namespace\":\"b\",\"uid\":\"u\"},\"extra\":1}",
		  "config.extra: unknown field", EINVAL },
		{ "{\"metadata\":{\"name\":\"a\",\"namespace\":\"b\",\"uid\":\"u\"},"
		  "\"port_mappings\":[{\"container_port\":70000}]}",
		  "config.port_mappings[0].container_port", EINVAL },
		{ "{\"metadata\":{\"name\":\"a\",\"namespace\":\"b\",\"uid\":\"u\"},"
		  "\"port_mappings\":[{\"container_port\":1,\"protocol\":\"ICMP\"}]}",
		  "config.port_mappings[0].protocol", EINVAL },
		{ "{\"metadata\":{\"name\":\"a\",\"namespace\":\"b\",\"uid\":\"u\"},\"labels\":{"
		  "\"a\":1}}",
		  "config.labels.a: not a string", EINVAL },
		{ "{\"metadata\":{\"name\":\"a\",\"namespace\":\"b\",\"uid\":\"u\"},\"log_"
		  "directory\":\"rel\"}",
		  "config.log_directory", EINVAL },
		{ "{\"metadata\":{\"name\":\"a\",\"namespace\":\"b\",\"uid\":\"u\"},\"linux\":"
		  "{\"security_context\":{\"namespace_options\":{\"ipc\":\"NODE\"}}}}",
		  "namespace_options.ipc: NODE is not supported", EOPNOTSUPP },
		{ "{\"metadata\":{\"name\":\"a\",\"namespace\":\"b\",\"uid\":\"u\"},\"linux\":"
		  "{\"security_context\":{\"namespace_options\":{\"pid\":\"SHARED\"}}}}",
		  "namespace_options.pid: \"SHARED\"", EINVAL },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(parse_pod(f, cases[i].json), -cases[i].code);
		assert_contains(f->err->msg, cases[i].needle);
	}
}

#define CTR_FULL                                                                                   \
	"{\"metadata\":{\"name\":\"app\",\"attempt\":1},\"image\":{\"image\":\"busybox\"},"        \
	"\"command\":[\"/bin/sh\"],\"args\":[\"-c\",\"true\"],\"working_dir\":\"/w\","             \
	"\"envs\":[{\"key\":\"A\",\"value\":\"1=2\"},{\"key\":\"EMPTY\"}],"                        \
	"\"mounts\":[{\"container_path\":\"/d\",\"host_path\":\"/h\",\"readonly\":true}],"         \
	"\"labels\":{\"l\":\"v\"},\"log_path\":\"app/1.log\",\"tty\":true,\"stdin\":false,"        \
	"\"linux\":{\"resources\":{\"memory_limit_in_bytes\":1048576,\"cpu_shares\":512},"         \
	"\"security_context\":{\"run_as_user\":{\"value\":1000},\"run_as_group\":{\"value\":0},"   \
	"\"readonly_rootfs\":true}}}"

/* c's canonical JSON reads back (into *back) to a structure that writes the same text. */
static void ctr_round_trip(struct fx *f, const struct container_config *c,
			   struct container_config *back)
{
	assert_int_equal(container_config_to_json(c, &f->text), 0);
	MUST_OK(f, container_config_from_text(f->text, back, &f->err));
	char *again = NULL;
	assert_int_equal(container_config_to_json(back, &again), 0);
	assert_string_equal(again, f->text);
	free(again);
}

static void test_container_full_round_trip(void **state)
{
	struct fx *f = *state;
	MUST_OK(f, parse_ctr(f, CTR_FULL));
	struct container_config *c = &f->ctr;
	assert_string_equal(c->image, "busybox");
	assert_string_equal(c->args[1], "true");
	assert_string_equal(c->envs[0], "A=1=2");
	assert_string_equal(c->envs[1], "EMPTY=");
	assert_null(c->envs[2]);
	assert_true(c->mounts[0].readonly);
	assert_true(c->tty && !c->stdin_open && c->readonly_rootfs);
	assert_int_equal(c->memory_limit_in_bytes, 1048576);
	assert_true(c->has_run_as_user && c->has_run_as_group);
	assert_int_equal(c->run_as_user, 1000);
	assert_int_equal(c->run_as_group, 0);
	struct container_config back;
	ctr_round_trip(f, c, &back);
	container_config_clear(&back);
}

#define CTR_TOP(fields) "{\"metadata\":{\"name\":\"a\"},\"image\":{\"image\":\"x\"}," fields "}"
#define CTR_SC(fields) CTR_TOP("\"linux\":{\"security_context\":{" fields "}}")
#define CTR_RES(fields) CTR_TOP("\"linux\":{\"resources\":{" fields "}}")

#define CTR_MAPPED                                                                                 \
	CTR_TOP("\"mounts\":[{\"container_path\":\"/a\",\"host_path\":\"/b\",\"propagation\":"    \
		"\"PROPAGATION_BIDIRECTIONAL\"}],\"devices\":[{\"container_path\":\"/dev/x\","       \
		"\"host_path\":\"/dev/null\",\"permissions\":\"rw\"}],\"linux\":{\"resources\":{"    \
		"\"cpuset_cpus\":\"0-1\",\"cpuset_mems\":\"0\",\"oom_score_adj\":-997,"             \
		"\"memory_swap_limit_in_bytes\":4096,\"hugepage_limits\":[{\"page_size\":\"2MB\","   \
		"\"limit\":2097152}],\"unified\":{\"memory.high\":\"1000000\"}},"                   \
		"\"security_context\":{\"privileged\":true,\"no_new_privs\":false,"                  \
		"\"capabilities\":{\"add_capabilities\":[\"NET_ADMIN\",\"CAP_SYS_TIME\"],"           \
		"\"drop_capabilities\":[\"ALL\"]},\"supplemental_groups\":[5,6],"                    \
		"\"supplemental_groups_policy\":\"Strict\",\"seccomp\":{\"profile_type\":"          \
		"\"Localhost\",\"localhost_ref\":\"/etc/p.json\"},\"masked_paths\":[],"             \
		"\"readonly_paths\":[\"/proc/sys\"],\"apparmor\":{\"profile_type\":"                \
		"\"Unconfined\"},\"namespace_options\":{\"pid\":\"TARGET\",\"target_id\":\"c1\"}}}")

/* Every field of the CRI mapping survives the database's canonical JSON. */
static void test_container_mapped_fields_round_trip(void **state)
{
	struct fx *f = *state;
	MUST_OK(f, parse_ctr(f, CTR_MAPPED));
	struct container_config *c = &f->ctr;
	assert_int_equal(c->mounts[0].propagation, PROPAGATION_BIDIRECTIONAL);
	assert_string_equal(c->devices[0].permissions, "rw");
	assert_string_equal(c->cpuset_cpus, "0-1");
	assert_int_equal(c->oom_score_adj, -997);
	assert_int_equal(c->memory_swap_limit_in_bytes, 4096);
	assert_int_equal(c->hugepage_limits[0].limit, 2097152);
	assert_string_equal(c->unified_json, "{\"memory.high\":\"1000000\"}");
	assert_true(c->privileged && !c->no_new_privs && c->supplemental_groups_strict);
	assert_string_equal(c->add_capabilities[1], "CAP_SYS_TIME");
	assert_int_equal(c->n_supplemental_groups, 2);
	assert_int_equal(c->seccomp, SECCOMP_LOCALHOST);
	assert_non_null(c->masked_paths);
	assert_null(c->masked_paths[0]);
	assert_true(c->has_ns_options && c->pid_mode == NS_MODE_TARGET);
	assert_string_equal(c->target_id, "c1");
	struct container_config back;
	ctr_round_trip(f, c, &back);
	assert_non_null(back.masked_paths); /* an empty list stays "none", not "the defaults" */
	assert_null(back.masked_paths[0]);
	container_config_clear(&back);
	/* absent: berth's safe defaults */
	container_config_clear(c);
	MUST_OK(f, parse_ctr(f, CTR_TOP("\"command\":[\"x\"]")));
	assert_true(c->no_new_privs);
	assert_int_equal(c->seccomp, SECCOMP_UNSET);
	assert_null(c->masked_paths);
}

static void test_pod_security_refusals(void **state)
{
	struct fx *f = *state;
	const char *pod = "{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"uid\":\"u\"},"
			  "\"linux\":{\"security_context\":{\"privileged\":true}}}";
	MUST_OK(f, parse_pod(f, pod));
	assert_true(f->pod.privileged);
	assert_int_equal(pod_config_to_json(&f->pod, &f->text), 0);
	assert_non_null(strstr(f->text, "\"privileged\":true"));
	pod_config_clear(&f->pod);
	assert_int_equal(parse_pod(f, "{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"uid\":"
				      "\"u\"},\"linux\":{\"sysctls\":{\"net.core.somaxconn\":"
				      "\"1024\"}}}"),
			 -EINVAL);
	assert_string_equal(f->err->msg, "config.linux.sysctls: sysctls are not supported by berth");
	assert_int_equal(parse_pod(f, "{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"uid\":"
				      "\"u\"},\"linux\":{\"security_context\":{\"apparmor\":"
				      "{\"profile_type\":\"Localhost\",\"localhost_ref\":\"x\"}}}}"),
			 -EINVAL);
	assert_string_equal(f->err->msg, "config.linux.security_context.apparmor: AppArmor is not "
					 "supported by berth");
}

static void test_container_errors_name_the_field(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *json, *needle;
	} cases[] = {
		{ "{\"metadata\":{\"name\":\"a\"}}", "config.image: required" },
		{ "{\"metadata\":{\"name\":\"a\"},\"image\":{}}", "config.image.image: required" },
		{ "{\"metadata\":{\"name\":\"a\"},\"image\":{\"image\":\"x\"},\"command\":\"ls\"}",
		  "config.command: not an array" },
		{ "{\"metadata\":{\"name\":\"a\"},\"image\":{\"image\":\"x\"},\"command\":[1]}",
		  "config.command[0]: not a string" },
		{ "{\"metadata\":{\"name\":\"a\"},\"image\":{\"image\":\"x\"},\"envs\":[{\"key\":"
		  "\"A=B\"}]}",
		  "config.envs[0].key" },
		{ "{\"metadata\":{\"name\":\"a\"},\"image\":{\"image\":\"x\"},"
		  "\"mounts\":[{\"container_path\":\"/a/../b\",\"host_path\":\"/h\"}]}",
		  "config.mounts[0].container_path" },
		{ "{\"metadata\":{\"name\":\"a\"},\"image\":{\"image\":\"x\"},"
		  "\"mounts\":[{\"container_path\":\"/a\",\"host_path\":\"h\"}]}",
		  "config.mounts[0].host_path" },
		{ "{\"metadata\":{\"name\":\"a\"},\"image\":{\"image\":\"x\"},\"log_path\":\"../"
		  "x\"}",
		  "config.log_path" },
		{ "{\"metadata\":{\"name\":\"a\"},\"image\":{\"image\":\"x\"},\"linux\":{"
		  "\"resources\":"
		  "{\"cpu_shares\":\"many\"}}}",
		  "config.linux.resources.cpu_shares: not an integer" },
		{ "{\"metadata\":{\"name\":\"a\"},\"image\":{\"image\":\"x\"},\"linux\":{"
		  "\"security_context\":"
		  "{\"run_as_user\":{\"value\":0},\"run_as_username\":\"root\"}}}",
		  "exclusive" },
		{ CTR_SC("\"apparmor\":{\"profile_type\":\"Localhost\",\"localhost_ref\":\"p\"}"),
		  "config.linux.security_context.apparmor: AppArmor is not supported by berth" },
		{ CTR_SC("\"selinux_options\":{\"user\":\"u\",\"role\":\"\"}"),
		  "config.linux.security_context.selinux_options: SELinux is not supported" },
		{ CTR_SC("\"apparmor_profile\":\"runtime/default\""),
		  "config.linux.security_context.apparmor_profile: AppArmor is not supported" },
		{ CTR_SC("\"capabilities\":{\"add_capabilities\":[\"NET-ADMIN\"]}"),
		  "capabilities.add_capabilities: \"NET-ADMIN\" is not a capability" },
		{ CTR_SC("\"capabilities\":{\"add_ambient_capabilities\":[\"CHOWN\"]}"),
		  "add_ambient_capabilities: ambient capabilities are not supported" },
		{ CTR_SC("\"seccomp\":{\"profile_type\":\"Localhost\"}"),
		  "seccomp.localhost_ref: required with Localhost" },
		{ CTR_SC("\"seccomp\":{\"profile_type\":\"Weird\"}"),
		  "seccomp.profile_type: not one of RuntimeDefault, Unconfined, Localhost" },
		{ CTR_SC("\"namespace_options\":{\"pid\":\"TARGET\"}"),
		  "namespace_options.target_id: required with pid TARGET" },
		{ CTR_SC("\"namespace_options\":{\"network\":\"CONTAINER\"}"),
		  "CONTAINER is not supported for them" },
		{ CTR_SC("\"namespace_options\":{\"userns_options\":{\"mode\":\"POD\"}}"),
		  "userns_options: user namespaces for pods are not supported" },
		{ CTR_SC("\"masked_paths\":[\"proc/kcore\"]"),
		  "masked_paths: \"proc/kcore\" is not an absolute path" },
		{ CTR_SC("\"supplemental_groups\":[-1]"),
		  "supplemental_groups[0]: not a group id" },
		{ CTR_RES("\"cpuset_cpus\":\"0-3;5\""), "cpuset_cpus: \"0-3;5\" is not a list" },
		{ CTR_RES("\"hugepage_limits\":[{\"page_size\":\"2XB\",\"limit\":1}]"),
		  "hugepage_limits[0].page_size: \"2XB\" is not a size" },
		{ CTR_RES("\"oom_score_adj\":1001"), "oom_score_adj: 1001 is out of range" },
		{ CTR_RES("\"unified\":{\"memory.high\":5}"), "unified.memory.high: not a string" },
		{ CTR_TOP("\"mounts\":[{\"container_path\":\"/a\",\"host_path\":\"/b\","
			  "\"selinux_relabel\":true}]"),
		  "config.mounts[0].selinux_relabel: SELinux is not supported by berth" },
		{ CTR_TOP("\"mounts\":[{\"container_path\":\"/a\",\"host_path\":\"/b\","
			  "\"propagation\":\"SHARED\"}]"),
		  "config.mounts[0].propagation: not one of PROPAGATION_PRIVATE" },
		{ CTR_TOP("\"devices\":[{\"container_path\":\"/dev/x\",\"host_path\":\"/dev/"
			  "null\",\"permissions\":\"rwx\"}]"),
		  "config.devices[0].permissions: \"rwx\" is not a subset of \"rwm\"" },
		{ CTR_TOP("\"CDI_devices\":[{\"name\":\"vendor.com/gpu=0\"}]"),
		  "config.CDI_devices: CDI devices are not supported by berth" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(parse_ctr(f, cases[i].json), -EINVAL);
		assert_contains(f->err->msg, cases[i].needle);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pod_full_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pod_errors_name_the_field, setup, teardown),
		cmocka_unit_test_setup_teardown(test_container_full_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_container_mapped_fields_round_trip, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pod_security_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_container_errors_name_the_field, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
