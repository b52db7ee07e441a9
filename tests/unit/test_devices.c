/* cgroup/devices.c: linux.resources.devices → an eBPF device filter. The generated programs are
 * run here by a small interpreter of the instructions devices.c emits, and, as root, by the kernel
 * itself on a cgroup made under the cgroup2 hierarchy for the test. */
#include "unit.h"

#include "base/cleanup.h"
#include "base/json.h"
#include "cgroup/cgroup-internal.h"

#include <signal.h>
#include <sys/wait.h>

struct fx {
	struct json *j;
	struct cgroup_settings *s;
	struct berth_error *err;
	struct bpf_insn *prog;
	size_t n;
	struct cgroup *cg, *parent; /* the kernel test's, removed by teardown */
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
	free(f->prog);
	if (f->cg)
		(void)cgroup_remove(f->cg, NULL); /* best effort: the test fails anyway */
	if (f->parent)
		(void)cgroup_remove(f->parent, NULL);
	cgroup_free(f->cg);
	cgroup_free(f->parent);
	free(f);
	return 0;
}

/* Parses linux.resources {"devices": RULES} and compiles the rules. */
static int compile(struct fx *f, const char *rules)
{
	char text[4096];
	snprintf(text, sizeof(text), "{\"devices\":%s}", rules);
	bjson_freep(&f->j);
	cgroup_settings_freep(&f->s);
	berth_error_freep(&f->err);
	free(f->prog);
	f->prog = NULL;
	f->n = 0;
	assert_int_equal(bjson_parse(text, &f->j, &f->err), 0);
	int r = cgroup_settings_from_oci(f->j, &f->s, &f->err);
	if (r < 0)
		return r;
	size_t n;
	const struct cgroup_device_rule *d = cgroup_settings_devices(f->s, &n);
	return n ? cgroup_devices_program(d, n, &f->prog, &f->n) : 0;
}

/* Runs the program on one request: the instruction subset devices.c emits, nothing more. */
static int run(const struct fx *f, char type, int acc, uint32_t major, uint32_t minor)
{
	uint32_t ctx[3] = { (uint32_t)acc << 16 | (type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR),
			    major, minor };
	uint64_t reg[11] = { 0 };
	for (size_t pc = 0; pc < f->n; pc++) {
		const struct bpf_insn *i = &f->prog[pc];
		switch (i->code) {
		case BPF_LDX | BPF_W | BPF_MEM:
			assert_int_equal(i->src_reg, 1);
			reg[i->dst_reg] = ctx[i->off / 4];
			break;
		case BPF_ALU | BPF_AND | BPF_K:
			reg[i->dst_reg] = (uint32_t)reg[i->dst_reg] & (uint32_t)i->imm;
			break;
		case BPF_ALU | BPF_RSH | BPF_K:
			reg[i->dst_reg] = (uint32_t)reg[i->dst_reg] >> i->imm;
			break;
		case BPF_ALU | BPF_MOV | BPF_X:
			reg[i->dst_reg] = (uint32_t)reg[i->src_reg];
			break;
		case BPF_ALU64 | BPF_MOV | BPF_K:
			reg[i->dst_reg] = (uint64_t)(int64_t)i->imm;
			break;
		case BPF_JMP32 | BPF_JNE | BPF_K:
			if ((uint32_t)reg[i->dst_reg] != (uint32_t)i->imm)
				pc += (size_t)i->off;
			break;
		case BPF_JMP32 | BPF_JNE | BPF_X:
			if ((uint32_t)reg[i->dst_reg] != (uint32_t)reg[i->src_reg])
				pc += (size_t)i->off;
			break;
		case BPF_JMP | BPF_EXIT:
			return (int)reg[0];
		default:
			fail_msg("instruction %zu: unexpected code 0x%x", pc, i->code);
		}
		assert_true(pc < f->n);
	}
	fail_msg("the program ran off its end");
	return -1;
}

/* the instructions of runc's default devices: c and b *:* m (6 each), eight of one device
 * (5 each) and c 136:* (4) */
#define RUNC_DEFAULTS (6 + 6 + 8 * 5 + 4)

#define R BPF_DEVCG_ACC_READ
#define W BPF_DEVCG_ACC_WRITE
#define M BPF_DEVCG_ACC_MKNOD

/* What podman and containerd send: deny everything, then allow the defaults. */
static const char engine_rules[] =
	"[{\"allow\":false,\"access\":\"rwm\"},"
	"{\"allow\":true,\"type\":\"c\",\"major\":1,\"minor\":3,\"access\":\"rwm\"},"
	"{\"allow\":true,\"type\":\"c\",\"major\":1,\"minor\":5,\"access\":\"rwm\"},"
	"{\"allow\":true,\"type\":\"c\",\"major\":136,\"access\":\"rwm\"},"
	"{\"allow\":true,\"type\":\"c\",\"major\":-1,\"minor\":-1,\"access\":\"m\"},"
	"{\"allow\":true,\"type\":\"b\",\"major\":null,\"minor\":null,\"access\":\"m\"},"
	"{\"allow\":true,\"type\":\"c\",\"major\":10,\"minor\":200,\"access\":\"rw\"}]";

static void test_engine_defaults(void **state)
{
	struct fx *f = *state;
	assert_int_equal(compile(f, engine_rules), 0);
	/* the prologue's 6 loads; per rule a check of the type (1), the access (3, unless rwm), the
	 * major and the minor (1 each, unless any), and the decision (2); the default's 2. The
	 * leading deny-all is the default, not a rule; runc's 11 defaults follow the rules. */
	assert_int_equal(f->n, 6 + 5 + 5 + 4 + 6 + 6 + 8 + RUNC_DEFAULTS + 2);
	assert_int_equal(run(f, 'c', R | W, 1, 3), 1);    /* /dev/null */
	assert_int_equal(run(f, 'c', R, 1, 5), 1);        /* /dev/zero */
	assert_int_equal(run(f, 'c', W, 136, 7), 1);      /* a pty */
	assert_int_equal(run(f, 'c', R, 1, 1), 0);        /* /dev/mem */
	assert_int_equal(run(f, 'b', R, 8, 0), 0);        /* /dev/sda */
	assert_int_equal(run(f, 'b', M, 8, 0), 1);        /* mknod of any device */
	assert_int_equal(run(f, 'c', M, 1, 1), 1);
	assert_int_equal(run(f, 'c', R | W, 10, 200), 1); /* /dev/net/tun, rw */
	assert_int_equal(run(f, 'c', M, 10, 200), 1);     /* ... and m from c *:* m */
	assert_int_equal(run(f, 'b', R, 10, 200), 0);     /* the type counts */
	assert_int_equal(run(f, 'c', R | M, 10, 201), 0); /* every access asked must be allowed */
}

static void test_last_match_wins(void **state)
{
	struct fx *f = *state;
	/* no reset: the default is deny; the later rule decides */
	assert_int_equal(compile(f, "[{\"allow\":true,\"type\":\"c\",\"major\":1},"
				    "{\"allow\":false,\"type\":\"c\",\"major\":1,\"minor\":11,\"access\":\"w\"}]"),
			 0);
	assert_int_equal(run(f, 'c', R, 1, 11), 1);
	assert_int_equal(run(f, 'c', W, 1, 11), 0);
	assert_int_equal(run(f, 'c', R | W, 1, 11), 1); /* the deny covers w only: no match */
	assert_int_equal(run(f, 'c', W, 1, 1), 1);
	assert_int_equal(run(f, 'c', R, 2, 0), 0);
	/* runc's defaults come after the config's rules: they cannot be denied */
	assert_int_equal(compile(f, "[{\"allow\":false,\"type\":\"c\",\"major\":1,\"minor\":3}]"), 0);
	assert_int_equal(f->n, 6 + 5 + RUNC_DEFAULTS + 2);
	assert_int_equal(run(f, 'c', R | W, 1, 3), 1);
	assert_int_equal(run(f, 'c', R, 1, 5), 1);
	assert_int_equal(run(f, 'c', W, 136, 0), 1);
	assert_int_equal(run(f, 'c', R, 5, 2), 1);
	assert_int_equal(run(f, 'c', R, 10, 200), 1);
	assert_int_equal(run(f, 'c', R, 5, 1), 0); /* /dev/console is not among them */
	assert_int_equal(run(f, 'b', M, 7, 0), 1);
	/* allow-all, then deny one: an allow list turned deny list */
	assert_int_equal(compile(f, "[{\"allow\":true},"
				    "{\"allow\":false,\"type\":\"c\",\"major\":1,\"minor\":1}]"),
			 0);
	assert_int_equal(f->n, 6 + 5 + RUNC_DEFAULTS + 2);
	assert_int_equal(run(f, 'c', R, 1, 1), 0);
	assert_int_equal(run(f, 'b', R, 1, 1), 1);
	/* a reset drops what came before it, whatever its access (cgroup v1's "a") */
	assert_int_equal(compile(f, "[{\"allow\":true,\"type\":\"c\",\"major\":1,\"minor\":11},"
				    "{\"allow\":false,\"type\":\"a\",\"access\":\"r\"}]"),
			 0);
	assert_int_equal(f->n, 6 + RUNC_DEFAULTS + 2);
	assert_int_equal(run(f, 'c', R, 1, 11), 0);
	assert_int_equal(run(f, 'c', W, 1, 11), 0);
	/* "a" with a number is both types */
	assert_int_equal(compile(f, "[{\"allow\":true,\"type\":\"a\",\"major\":7}]"), 0);
	assert_int_equal(run(f, 'b', R, 7, 1), 1);
	assert_int_equal(run(f, 'c', W, 7, 2), 1);
	/* numbers above 2^31 compare as unsigned 32-bit */
	assert_int_equal(
		compile(f, "[{\"allow\":true,\"type\":\"c\",\"major\":4294967295,\"minor\":0}]"), 0);
	assert_int_equal(run(f, 'c', R, 4294967295u, 0), 1);
	assert_int_equal(run(f, 'c', R, 2147483647u, 0), 0);
}

static void test_empty(void **state)
{
	struct fx *f = *state;
	assert_int_equal(compile(f, "[]"), 0);
	assert_true(cgroup_settings_empty(f->s));
	assert_int_equal(compile(f, "null"), 0);
	assert_true(cgroup_settings_empty(f->s));
	assert_int_equal(compile(f, "[{\"allow\":false}]"), 0);
	assert_false(cgroup_settings_empty(f->s));
	assert_int_equal(cgroup_settings_count(f->s), 0); /* no file to write */
}

static void test_bad_rules(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *rules, *msg;
	} cases[] = {
		{ "{}", "linux.resources.devices: must be an array" },
		{ "[1]", "linux.resources.devices[0]: must be an object" },
		{ "[{\"type\":\"c\"}]", "linux.resources.devices[0].allow: must be true or false" },
		{ "[{\"allow\":\"yes\"}]", "linux.resources.devices[0].allow: must be true or false" },
		{ "[{\"allow\":true},{\"allow\":true,\"type\":\"p\"}]",
		  "linux.resources.devices[1].type: \"p\" is not a, b or c" },
		{ "[{\"allow\":true,\"type\":\"cb\"}]", "linux.resources.devices[0].type: \"cb\"" },
		{ "[{\"allow\":true,\"type\":3}]", "linux.resources.devices[0].type:" },
		{ "[{\"allow\":true,\"major\":-2}]",
		  "linux.resources.devices[0].major: must be a device number or -1 (any)" },
		{ "[{\"allow\":true,\"minor\":4294967296}]", "linux.resources.devices[0].minor:" },
		{ "[{\"allow\":true,\"minor\":\"3\"}]", "linux.resources.devices[0].minor:" },
		{ "[{\"allow\":true},{\"allow\":true},{\"allow\":true},{\"allow\":true,\"access\":\"x\"}]",
		  "linux.resources.devices[3].access: \"x\" is not a subset of rwm" },
		{ "[{\"allow\":true,\"access\":\"rwmq\"}]", "\"rwmq\" is not a subset of rwm" },
		{ "[{\"allow\":true,\"access\":7}]", "linux.resources.devices[0].access: must be a string" },
		{ "[{\"allow\":true,\"access\":\"\"}]", "linux.resources.devices[0].access: must not be empty" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(compile(f, cases[i].rules), -EINVAL);
		assert_contains(f->err->msg, cases[i].msg);
	}
}

/* ---- through the kernel ---- */

/* In a child: join the cgroup, then try /dev/kmsg (c 1:11, denied) and /dev/null (allowed).
 * The exit status says which check failed. */
static int child_checks(int cgroup_fd)
{
	int fd = openat(cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1)
		return 10;
	close(fd);
	fd = open("/dev/kmsg", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 || errno != EPERM)
		return 11;
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 12;
	close(fd);
	return 0;
}

static int run_child(int cgroup_fd)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(child_checks(cgroup_fd));
	int status;
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_kernel(void **state)
{
	struct fx *f = *state;
	if (geteuid() != 0) {
		print_message("[   SKIP   ] the kernel test needs root\n");
		skip();
	}
	char path[64];
	snprintf(path, sizeof(path), "/berth-test-devices-%d", (int)getpid());
	MUST_OK(f, cgroup_create(path, &f->parent, &f->err));
	strcat(path, "/c");
	MUST_OK(f, cgroup_create(path, &f->cg, &f->err));
	assert_int_equal(compile(f, "[{\"allow\":false},"
				    "{\"allow\":true,\"type\":\"c\",\"major\":1,\"minor\":3,\"access\":\"rw\"}]"),
			 0);
	int r = cgroup_apply_devices(f->cg, f->s, &f->err);
	if (r == -EPERM || r == -ENOSYS) {
		print_message("[   SKIP   ] the kernel refuses eBPF device filters here (%s); the vm suite "
			      "proves them\n",
			      f->err->msg);
		skip();
	}
	MUST_OK(f, r);
	assert_int_equal(run_child(cgroup_fd(f->cg)), 0);
	/* an update replaces the filter: now /dev/kmsg opens too */
	assert_int_equal(compile(f, "[{\"allow\":false},{\"allow\":true,\"type\":\"c\",\"major\":1}]"), 0);
	MUST_OK(f, cgroup_apply_devices(f->cg, f->s, &f->err));
	assert_int_equal(run_child(cgroup_fd(f->cg)), 11);
	MUST_OK(f, cgroup_remove(f->cg, &f->err));
	MUST_OK(f, cgroup_remove(f->parent, &f->err));
	f->cg = cgroup_free(f->cg);
	f->parent = cgroup_free(f->parent);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_engine_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_last_match_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kernel, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
