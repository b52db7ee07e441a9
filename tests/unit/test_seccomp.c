/* runtime/seccomp.c: linux.seccomp parsing (every refusal names its field), loading real filters
 * (always in a forked child, so the test process itself stays unfiltered), and handing the
 * notify fd to a seccomp agent. */
#include "unit.h"

#include "base/cleanup.h"
#include "runtime/seccomp-internal.h"

#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#ifndef BERTH_SECCOMP_DEFAULT
#error "BERTH_SECCOMP_DEFAULT: the path of runtime/seccomp-default.json"
#endif

#define PREFIX "linux.seccomp"

struct fx {
	struct json *j;
	struct oci_seccomp *s;
	struct berth_error *err;
	struct unit_tmpdir tmp;
	pid_t child; /* a child still to be killed and reaped */
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->tmp.fd = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (f->child > 0) {
		kill(f->child, SIGKILL);
		(void)waitpid(f->child, NULL, 0);
	}
	oci_seccomp_free(f->s);
	berth_error_free(f->err);
	bjson_free(f->j);
	unit_tmpdir_remove(&f->tmp);
	free(f);
	return 0;
}

static int parse_text(struct fx *f, const char *text)
{
	f->s = oci_seccomp_free(f->s);
	f->j = bjson_free(f->j);
	berth_error_freep(&f->err);
	int r = bjson_parse(text, &f->j, &f->err);
	if (r < 0)
		fail_msg("test JSON does not parse: %s: %s", text, f->err ? f->err->msg : "?");
	return oci_seccomp_parse(f->j, PREFIX, &f->s, &f->err);
}

static void expect_ok(struct fx *f, const char *text, int line)
{
	int r = parse_text(f, text);
	if (r < 0)
		fail_msg("line %d: expected success, got %d: %s", line, r,
			 f->err ? f->err->msg : "(no error set)");
	if (!f->s || f->err)
		fail_msg("line %d: success without a profile, or with an error set", line);
}

static void expect_err(struct fx *f, int code, const char *needle, const char *text, int line)
{
	int r = parse_text(f, text);
	if (r >= 0)
		fail_msg("line %d: expected an error naming \"%s\", but %s was accepted", line,
			 needle, text);
	if (r != -code || !f->err || f->err->code != code)
		fail_msg("line %d: expected %d, got %d (%s)", line, -code, r,
			 f->err ? f->err->msg : "(no error set)");
	if (!strstr(f->err->msg, needle))
		fail_msg("line %d: \"%s\" does not name \"%s\"", line, f->err->msg, needle);
	if (f->s)
		fail_msg("line %d: a profile was returned with the error", line);
}

#define OK(text) expect_ok(f, text, __LINE__)
#define ERR(code, needle, text) expect_err(f, code, needle, text, __LINE__)
/* A profile that allows everything but the rules given. */
#define ALLOW_BUT(...) "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[" __VA_ARGS__ "]}"

static char *read_file(const char *path)
{
	FILE *fp = fopen(path, "re");
	if (!fp)
		fail_msg("%s: %s", path, strerror(errno));
	char *buf = NULL;
	size_t size = 0;
	FILE *mem = open_memstream(&buf, &size);
	assert_non_null(mem);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		fwrite(chunk, 1, n, mem);
	fclose(fp);
	fclose(mem);
	return buf;
}

/* ---- parsing: what is accepted ---- */

static void test_parse_minimal(void **state)
{
	struct fx *f = *state;
	OK("{\"defaultAction\":\"SCMP_ACT_ALLOW\"}");
	assert_false(oci_seccomp_wants_notify(f->s));
	assert_null(oci_seccomp_listener_path(f->s));
	assert_null(oci_seccomp_listener_metadata(f->s));
	/* null members are absent; "" listener fields are unset, as in runc */
	OK("{\"defaultAction\":\"SCMP_ACT_KILL\",\"defaultErrnoRet\":null,\"architectures\":null,"
	   "\"flags\":null,\"listenerPath\":\"\",\"listenerMetadata\":\"\",\"syscalls\":null}");
	assert_null(oci_seccomp_listener_path(f->s));
	assert_null(oci_seccomp_listener_metadata(f->s));
	OK("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[]}");
	assert_null(oci_seccomp_free(NULL));
}

static void test_parse_every_field(void **state)
{
	struct fx *f = *state;
	OK("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":5,"
	   "\"architectures\":[\"SCMP_ARCH_X86\",\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_X32\","
	   "\"SCMP_ARCH_ARM\",\"SCMP_ARCH_AARCH64\",\"SCMP_ARCH_MIPS\",\"SCMP_ARCH_MIPS64\","
	   "\"SCMP_ARCH_MIPS64N32\",\"SCMP_ARCH_MIPSEL\",\"SCMP_ARCH_MIPSEL64\","
	   "\"SCMP_ARCH_MIPSEL64N32\",\"SCMP_ARCH_PPC\",\"SCMP_ARCH_PPC64\",\"SCMP_ARCH_PPC64LE\","
	   "\"SCMP_ARCH_S390\",\"SCMP_ARCH_S390X\",\"SCMP_ARCH_PARISC\",\"SCMP_ARCH_PARISC64\","
	   "\"SCMP_ARCH_RISCV64\",\"SCMP_ARCH_X86_64\"],"
	   "\"flags\":[\"SECCOMP_FILTER_FLAG_TSYNC\",\"SECCOMP_FILTER_FLAG_LOG\","
	   "\"SECCOMP_FILTER_FLAG_SPEC_ALLOW\"],"
	   "\"listenerPath\":\"/run/agent.sock\",\"listenerMetadata\":\"MKNOD=/dev/null\","
	   "\"syscalls\":["
	   "{\"names\":[\"read\",\"write\"],\"action\":\"SCMP_ACT_ALLOW\"},"
	   "{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":42},"
	   "{\"names\":[\"ptrace\"],\"action\":\"SCMP_ACT_TRACE\",\"errnoRet\":7},"
	   "{\"names\":[\"mkdirat\"],\"action\":\"SCMP_ACT_NOTIFY\"},"
	   "{\"names\":[\"personality\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":["
	   "{\"index\":0,\"value\":0,\"op\":\"SCMP_CMP_NE\"},"
	   "{\"index\":1,\"value\":1,\"valueTwo\":0,\"op\":\"SCMP_CMP_LT\"},"
	   "{\"index\":2,\"value\":2,\"op\":\"SCMP_CMP_LE\"},"
	   "{\"index\":3,\"value\":3,\"op\":\"SCMP_CMP_EQ\"},"
	   "{\"index\":4,\"value\":4,\"op\":\"SCMP_CMP_GE\"},"
	   "{\"index\":5,\"value\":18446744073709551615,\"op\":\"SCMP_CMP_GT\"},"
	   "{\"index\":0,\"value\":2114060288,\"valueTwo\":7,\"op\":\"SCMP_CMP_MASKED_EQ\"}]}],"
	   "\"unknownMember\":{\"is\":\"ignored\"}}");
	assert_true(oci_seccomp_wants_notify(f->s));
	assert_string_equal(oci_seccomp_listener_path(f->s), "/run/agent.sock");
	assert_string_equal(oci_seccomp_listener_metadata(f->s), "MKNOD=/dev/null");
}

static void test_parse_every_action(void **state)
{
	struct fx *f = *state;
	static const char *const actions[] = { "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
					       "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
					       "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE",
					       "SCMP_ACT_ALLOW", "SCMP_ACT_LOG" };
	for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
		char text[256];
		snprintf(text, sizeof(text),
			 "{\"defaultAction\":\"%s\",\"syscalls\":[{\"names\":[\"getpid\"],"
			 "\"action\":\"%s\"}]}",
			 actions[i], actions[i]);
		OK(text);
		assert_false(oci_seccomp_wants_notify(f->s));
	}
	/* errnoRet goes with ERRNO and TRACE, on rules and as defaultErrnoRet */
	OK("{\"defaultAction\":\"SCMP_ACT_TRACE\",\"defaultErrnoRet\":0}");
	OK(ALLOW_BUT("{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":65535}"));
}

#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 6)
#define HAVE_WAITKILL 1
#else
#define HAVE_WAITKILL 0
#endif

static void test_parse_wait_killable_recv(void **state)
{
	struct fx *f = *state;
	const char *text = "{\"defaultAction\":\"SCMP_ACT_ALLOW\","
			   "\"flags\":[\"SECCOMP_FILTER_FLAG_LOG\","
			   "\"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV\"]}";
	if (HAVE_WAITKILL)
		OK(text);
	else
		ERR(ENOTSUP,
		    PREFIX ".flags[1]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs libseccomp 2.6",
		    text);
}

/* ---- parsing: every refusal names its field ---- */

static void test_parse_errors_top(void **state)
{
	struct fx *f = *state;
	ERR(EINVAL, PREFIX ": must be an object, not an array", "[]");
	ERR(EINVAL, PREFIX ".defaultAction: missing", "{}");
	ERR(EINVAL, PREFIX ".defaultAction: missing", "{\"defaultAction\":null}");
	ERR(EINVAL, PREFIX ".defaultAction: must be a string, not a number",
	    "{\"defaultAction\":1}");
	ERR(EINVAL, PREFIX ".defaultAction: unknown action \"SCMP_ACT_MAYBE\"",
	    "{\"defaultAction\":\"SCMP_ACT_MAYBE\"}");
	ERR(EINVAL, PREFIX ".defaultAction: unknown action \"scmp_act_allow\"",
	    "{\"defaultAction\":\"scmp_act_allow\"}");
	ERR(EINVAL, PREFIX ".defaultAction: SCMP_ACT_NOTIFY cannot be the default action",
	    "{\"defaultAction\":\"SCMP_ACT_NOTIFY\",\"listenerPath\":\"/a.sock\"}");
	ERR(EINVAL,
	    PREFIX ".defaultErrnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno, not SCMP_ACT_ALLOW",
	    "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"defaultErrnoRet\":1}");
	ERR(EINVAL, PREFIX ".defaultErrnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE",
	    "{\"defaultAction\":\"SCMP_ACT_KILL_PROCESS\",\"defaultErrnoRet\":1}");
	ERR(EINVAL, PREFIX ".defaultErrnoRet: must be an integer from 0 to 65535, not a string",
	    "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":\"1\"}");
	ERR(EINVAL, PREFIX ".defaultErrnoRet: must be an integer from 0 to 65535",
	    "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":-1}");
	ERR(EINVAL, PREFIX ".defaultErrnoRet: must be an integer from 0 to 65535",
	    "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":65536}");
	ERR(EINVAL, PREFIX ".defaultErrnoRet: must be an integer from 0 to 65535",
	    "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":1.5}");

	/* the prefix is the caller's */
	f->s = oci_seccomp_free(f->s);
	f->j = bjson_free(f->j);
	berth_error_freep(&f->err);
	assert_int_equal(bjson_parse("{\"defaultAction\":7}", &f->j, NULL), 0);
	assert_int_equal(oci_seccomp_parse(f->j, "exec.seccomp", &f->s, &f->err), -EINVAL);
	assert_contains(f->err->msg, "exec.seccomp.defaultAction: must be a string");
	assert_null(f->s);
}

static void test_parse_errors_arch_flags(void **state)
{
	struct fx *f = *state;
	ERR(EINVAL, PREFIX ".architectures: must be an array, not a string",
	    "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":\"SCMP_ARCH_X86_64\"}");
	ERR(EINVAL, PREFIX ".architectures[0]: must be a string, not a number",
	    "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[64]}");
	ERR(EINVAL, PREFIX ".architectures[1]: unknown architecture \"SCMP_ARCH_VAX\"",
	    "{\"defaultAction\":\"SCMP_ACT_ALLOW\","
	    "\"architectures\":[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_VAX\"]}");
	ERR(EINVAL, PREFIX ".architectures[0]: unknown architecture \"x86_64\"",
	    "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"x86_64\"]}");
	ERR(EINVAL, PREFIX ".flags: must be an array, not an object",
	    "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"flags\":{}}");
	ERR(EINVAL, PREFIX ".flags[0]: must be a string, not a boolean",
	    "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"flags\":[true]}");
	ERR(EINVAL, PREFIX ".flags[1]: unknown flag \"SECCOMP_FILTER_FLAG_NEW_LISTENER\"",
	    "{\"defaultAction\":\"SCMP_ACT_ALLOW\","
	    "\"flags\":[\"SECCOMP_FILTER_FLAG_LOG\",\"SECCOMP_FILTER_FLAG_NEW_LISTENER\"]}");
}

static void test_parse_errors_listener(void **state)
{
	struct fx *f = *state;
	ERR(EINVAL, PREFIX ".listenerPath: must be a string, not a number",
	    "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":1}");
	ERR(EINVAL, PREFIX ".listenerPath: \"agent.sock\": must be an absolute path",
	    "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"agent.sock\"}");
	char text[512];
	snprintf(text, sizeof(text),
		 "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"/%0120d\"}", 0);
	ERR(EINVAL, PREFIX ".listenerPath: too long for a unix socket address (at most 107 bytes)",
	    text);
	ERR(EINVAL, PREFIX ".listenerMetadata: must be a string, not an array",
	    "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"/a\","
	    "\"listenerMetadata\":[]}");
	ERR(EINVAL, PREFIX ".listenerMetadata: must not be set without listenerPath",
	    "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerMetadata\":\"x\"}");
	ERR(EINVAL,
	    PREFIX ".listenerPath: required, since " PREFIX
		   ".syscalls[1].action is SCMP_ACT_NOTIFY",
	    ALLOW_BUT("{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_ERRNO\"},"
		      "{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_NOTIFY\"}"));
	ERR(EINVAL,
	    PREFIX ".syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for \"sendmsg\"",
	    "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"/a.sock\",\"syscalls\":["
	    "{\"names\":[\"getppid\",\"sendmsg\"],\"action\":\"SCMP_ACT_NOTIFY\"}]}");
	ERR(EINVAL, PREFIX ".syscalls[0].names[0]: SCMP_ACT_NOTIFY cannot be used for \"write\"",
	    "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"/a.sock\",\"syscalls\":["
	    "{\"names\":[\"write\"],\"action\":\"SCMP_ACT_NOTIFY\"}]}");
	/* a listenerPath without NOTIFY is ignored, as the spec says */
	OK("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"/a.sock\"}");
	assert_false(oci_seccomp_wants_notify(f->s));
}

static void test_parse_errors_syscalls(void **state)
{
	struct fx *f = *state;
	ERR(EINVAL, PREFIX ".syscalls: must be an array, not an object",
	    "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":{}}");
	ERR(EINVAL, PREFIX ".syscalls[1]: must be an object, not a string",
	    ALLOW_BUT("{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_ERRNO\"},\"getpid\""));
	ERR(EINVAL, PREFIX ".syscalls[0].names: missing",
	    ALLOW_BUT("{\"action\":\"SCMP_ACT_ERRNO\"}"));
	ERR(EINVAL, PREFIX ".syscalls[0].names: must be an array of strings, not a string",
	    ALLOW_BUT("{\"names\":\"getpid\",\"action\":\"SCMP_ACT_ERRNO\"}"));
	ERR(EINVAL, PREFIX ".syscalls[0].names: must name at least one syscall",
	    ALLOW_BUT("{\"names\":[],\"action\":\"SCMP_ACT_ERRNO\"}"));
	ERR(EINVAL, PREFIX ".syscalls[0].names[1]: must be a syscall name, not a number",
	    ALLOW_BUT("{\"names\":[\"getpid\",39],\"action\":\"SCMP_ACT_ERRNO\"}"));
	ERR(EINVAL, PREFIX ".syscalls[0].names[0]: must be a syscall name, not an empty string",
	    ALLOW_BUT("{\"names\":[\"\"],\"action\":\"SCMP_ACT_ERRNO\"}"));
	ERR(EINVAL, PREFIX ".syscalls[0].action: missing", ALLOW_BUT("{\"names\":[\"getpid\"]}"));
	ERR(EINVAL, PREFIX ".syscalls[0].action: must be a string, not a boolean",
	    ALLOW_BUT("{\"names\":[\"getpid\"],\"action\":true}"));
	ERR(EINVAL, PREFIX ".syscalls[2].action: unknown action \"SCMP_ACT_DENY\"",
	    ALLOW_BUT("{\"names\":[\"a\"],\"action\":\"SCMP_ACT_ERRNO\"},"
		      "{\"names\":[\"b\"],\"action\":\"SCMP_ACT_ERRNO\"},"
		      "{\"names\":[\"c\"],\"action\":\"SCMP_ACT_DENY\"}"));
	static const char *const no_errno[] = { "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
						"SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
						"SCMP_ACT_ALLOW", "SCMP_ACT_LOG",
						"SCMP_ACT_NOTIFY" };
	for (size_t i = 0; i < ARRAY_SIZE(no_errno); i++) {
		char text[256], needle[160];
		snprintf(text, sizeof(text),
			 "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"/a\","
			 "\"syscalls\":"
			 "[{\"names\":[\"getpid\"],\"action\":\"%s\",\"errnoRet\":1}]}",
			 no_errno[i]);
		snprintf(needle, sizeof(needle),
			 PREFIX ".syscalls[0].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno, not %s",
			 no_errno[i]);
		ERR(EINVAL, needle, text);
	}
	ERR(EINVAL,
	    PREFIX ".syscalls[0].errnoRet: must be an integer from 0 to 65535, not a string",
	    ALLOW_BUT("{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":\"1\"}"));
	ERR(EINVAL, PREFIX ".syscalls[0].errnoRet: must be an integer from 0 to 65535",
	    ALLOW_BUT("{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_TRACE\",\"errnoRet\":70000}"));
}

#define ARGS_RULE(args)                                                                            \
	ALLOW_BUT("{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_ERRNO\",\"args\":" args "}")

static void test_parse_errors_args(void **state)
{
	struct fx *f = *state;
	const char *a0 = PREFIX ".syscalls[0].args[0]";
	char needle[160];
	ERR(EINVAL, PREFIX ".syscalls[0].args: must be an array, not an object", ARGS_RULE("{}"));
	snprintf(needle, sizeof(needle), "%s: must be an object, not a number", a0);
	ERR(EINVAL, needle, ARGS_RULE("[0]"));
	snprintf(needle, sizeof(needle), "%s.index: missing", a0);
	ERR(EINVAL, needle, ARGS_RULE("[{\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]"));
	snprintf(needle, sizeof(needle), "%s.index: must be an integer from 0 to 5", a0);
	ERR(EINVAL, needle, ARGS_RULE("[{\"index\":6,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]"));
	ERR(EINVAL, needle, ARGS_RULE("[{\"index\":-1,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]"));
	snprintf(needle, sizeof(needle), "%s.index: must be an integer from 0 to 5, not a string",
		 a0);
	ERR(EINVAL, needle, ARGS_RULE("[{\"index\":\"0\",\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]"));
	snprintf(needle, sizeof(needle), "%s.value: missing", a0);
	ERR(EINVAL, needle, ARGS_RULE("[{\"index\":0,\"op\":\"SCMP_CMP_EQ\"}]"));
	snprintf(needle, sizeof(needle),
		 "%s.value: must be an integer from 0 to 18446744073709551615", a0);
	ERR(EINVAL, needle, ARGS_RULE("[{\"index\":0,\"value\":-1,\"op\":\"SCMP_CMP_EQ\"}]"));
	ERR(EINVAL, needle,
	    ARGS_RULE("[{\"index\":0,\"value\":18446744073709551616,\"op\":\"SCMP_CMP_EQ\"}]"));
	snprintf(needle, sizeof(needle), "%s.valueTwo: must be an integer", a0);
	ERR(EINVAL, needle,
	    ARGS_RULE("[{\"index\":0,\"value\":1,\"valueTwo\":\"2\","
		      "\"op\":\"SCMP_CMP_MASKED_EQ\"}]"));
	snprintf(needle, sizeof(needle), "%s.op: missing", a0);
	ERR(EINVAL, needle, ARGS_RULE("[{\"index\":0,\"value\":1}]"));
	ERR(EINVAL, PREFIX ".syscalls[0].args[1].op: unknown operator \"SCMP_CMP_LIKE\"",
	    ARGS_RULE("[{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_EQ\"},"
		      "{\"index\":1,\"value\":1,\"op\":\"SCMP_CMP_LIKE\"}]"));
	snprintf(needle, sizeof(needle),
		 "%s.valueTwo: only SCMP_CMP_MASKED_EQ uses it, not SCMP_CMP_EQ", a0);
	ERR(EINVAL, needle,
	    ARGS_RULE("[{\"index\":0,\"value\":1,\"valueTwo\":2,\"op\":\"SCMP_CMP_EQ\"}]"));
	/* deep in the profile, the whole path */
	ERR(EINVAL, PREFIX ".syscalls[1].args[2].op: must be a string, not a number",
	    ALLOW_BUT("{\"names\":[\"a\"],\"action\":\"SCMP_ACT_ERRNO\"},"
		      "{\"names\":[\"b\"],\"action\":\"SCMP_ACT_ERRNO\",\"args\":["
		      "{\"index\":0,\"value\":0,\"op\":\"SCMP_CMP_EQ\"},"
		      "{\"index\":1,\"value\":0,\"op\":\"SCMP_CMP_EQ\"},"
		      "{\"index\":2,\"value\":0,\"op\":7}]}"));
}

static void test_parse_default_profile(void **state)
{
	struct fx *f = *state;
	char *text = read_file(BERTH_SECCOMP_DEFAULT);
	OK(text);
	free(text);
	assert_false(oci_seccomp_wants_notify(f->s));
	assert_null(oci_seccomp_listener_path(f->s));
}

/* ---- loading, in a forked child ---- */

/* The child reports a failed check on stderr and exits 1. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "child, line %d: %s failed (errno %d: %s)\n", __LINE__,    \
				#cond, errno, strerror(errno));                                    \
			return 1;                                                                  \
		}                                                                                  \
	} while (0)

/* no_new_privs, as an unprivileged test run needs, then the filter. */
static int child_load(const struct oci_seccomp *s, int *ret_fd)
{
	struct berth_error *err = NULL;
	CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	if (oci_seccomp_load(s, ret_fd, &err) < 0) {
		fprintf(stderr, "child: load: %s\n", err ? err->msg : "?");
		return 1;
	}
	return 0;
}

static int child_status_shows_filter(void)
{
	char *status = NULL;
	size_t size = 0;
	FILE *fp = fopen("/proc/self/status", "re");
	CHECK(fp);
	CHECK(getdelim(&status, &size, '\0', fp) > 0);
	fclose(fp);
	bool ok = strstr(status, "\nSeccomp:\t2\n") && strstr(status, "\nSeccomp_filters:\t1\n");
	if (!ok)
		fprintf(stderr, "child: /proc/self/status:\n%s", status);
	free(status);
	return ok ? 0 : 1;
}

/* Runs fn(f) in a forked child; returns its wait status. */
static int run_child_status(struct fx *f, int (*fn)(struct fx *))
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn(f));
	f->child = pid;
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	f->child = 0;
	return st;
}

/* Runs fn(f) in a forked child and asserts that it exits 0. */
static void run_child(struct fx *f, int (*fn)(struct fx *))
{
	int st = run_child_status(f, fn);
	if (WIFSIGNALED(st))
		fail_msg("child killed by signal %d", WTERMSIG(st));
	if (WEXITSTATUS(st) != 0)
		fail_msg("child failed (exit %d), see its message above", WEXITSTATUS(st));
}

static int child_errno(struct fx *f)
{
	int fd = -2;
	if (child_load(f->s, &fd))
		return 1;
	CHECK(fd == -1);
	errno = 0;
	CHECK(syscall(SYS_getppid) == -1 && errno == 42);
	errno = 0;
	CHECK(mkdirat(f->tmp.fd, "d", 0700) == -1 && errno == 42);
	errno = 0;
	CHECK(syscall(SYS_getpgid, 0) == -1 && errno == EPERM); /* errnoRet left out */
	CHECK(syscall(SYS_getpid) == getpid());
	return child_status_shows_filter();
}

static void test_load_errno(void **state)
{
	struct fx *f = *state;
	assert_int_equal(unit_tmpdir_create(&f->tmp), 0);
	OK(ALLOW_BUT("{\"names\":[\"getppid\",\"mkdirat\"],\"action\":\"SCMP_ACT_ERRNO\","
		     "\"errnoRet\":42},"
		     "{\"names\":[\"getpgid\"],\"action\":\"SCMP_ACT_ERRNO\"},"
		     "{\"names\":[\"getpid\"],\"action\":\"SCMP_ACT_ALLOW\"}"));
	run_child(f, child_errno);
	/* the test process itself was never filtered */
	assert_int_equal(syscall(SYS_getppid), getppid());
	assert_int_equal(mkdirat(f->tmp.fd, "d", 0700), 0);
}

static int child_flags(struct fx *f)
{
	int fd = -2;
	if (child_load(f->s, &fd))
		return 1;
	CHECK(fd == -1);
	errno = 0;
	CHECK(syscall(SYS_getppid) == -1 && errno == 42);
	return child_status_shows_filter();
}

static void test_load_flags(void **state)
{
	struct fx *f = *state;
	OK("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"flags\":[\"SECCOMP_FILTER_FLAG_TSYNC\","
	   "\"SECCOMP_FILTER_FLAG_LOG\",\"SECCOMP_FILTER_FLAG_SPEC_ALLOW\"],\"syscalls\":["
	   "{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":42},"
	   "{\"names\":[\"getpgid\"],\"action\":\"SCMP_ACT_LOG\"}]}");
	run_child(f, child_flags);
}

static int child_default_errno(struct fx *f)
{
	int fd = -2;
	if (child_load(f->s, &fd))
		return 1;
	errno = 0;
	CHECK(syscall(SYS_getppid) == -1 && errno == 77);
	errno = 0;
	CHECK(syscall(SYS_getpgid, 0) == -1 && errno == 77);
	CHECK(syscall(SYS_getpid) == getpid());
	return 0;
}

/* defaultErrnoRet applies to defaultAction ERRNO. What the child needs after the load stays
 * allowed (writing a failure message, exiting, and what the allocator or a sanitizer does). */
static void test_load_default_errno(void **state)
{
	struct fx *f = *state;
	OK("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":77,\"syscalls\":[{\"names\":["
	   "\"getpid\",\"gettid\",\"write\",\"writev\",\"exit\",\"exit_group\",\"brk\",\"mmap\","
	   "\"munmap\",\"mprotect\",\"madvise\",\"futex\",\"rt_sigprocmask\",\"rt_sigaction\","
	   "\"rt_sigreturn\",\"sigaltstack\",\"openat\",\"read\",\"close\",\"fstat\","
	   "\"newfstatat\","
	   "\"lseek\",\"readlink\",\"prctl\",\"sched_yield\",\"getrlimit\",\"prlimit64\"],"
	   "\"action\":\"SCMP_ACT_ALLOW\"}]}");
	run_child(f, child_default_errno);
}

static int child_args(struct fx *f)
{
	int fd = -2;
	if (child_load(f->s, &fd))
		return 1;
	/* NE: only the query is allowed */
	CHECK(personality(0xffffffff) >= 0);
	errno = 0;
	CHECK(personality(PER_LINUX) == -1 && errno == EPERM);
	/* two indices: ANDed */
	errno = 0;
	CHECK(getpriority(PRIO_PROCESS, 999999) == -1 && errno == 43);
	errno = 0;
	CHECK(getpriority(PRIO_PROCESS, 0) != -1 || errno != 43);
	errno = 0;
	CHECK(getpriority(PRIO_PGRP, 999999) == -1 && errno != 43);
	/* one index twice: ORed, as runc does */
	errno = 0;
	CHECK(getpgid(888881) == -1 && errno == 44);
	errno = 0;
	CHECK(getpgid(888882) == -1 && errno == 44);
	CHECK(getpgid(0) == getpgrp());
	/* MASKED_EQ: (arg & value) == valueTwo */
	errno = 0;
	CHECK(getsid(0x71234) == -1 && errno == 45);
	errno = 0;
	CHECK(getsid(0x73434) == -1 && errno == ESRCH);
	CHECK(getsid(0) >= 0);
	/* GT, GE, LT, LE */
	errno = 0;
	CHECK(sched_getscheduler(900001) == -1 && errno == 46);
	errno = 0;
	CHECK(sched_getscheduler(900000) == -1 && errno == ESRCH);
	struct sched_param sp;
	errno = 0;
	CHECK(sched_getparam(900000, &sp) == -1 && errno == 47);
	errno = 0;
	CHECK(sched_getparam(899999, &sp) == -1 && errno == ESRCH);
	struct timespec ts;
	errno = 0;
	CHECK(sched_rr_get_interval(0, &ts) == -1 && errno == 48);
	CHECK(sched_rr_get_interval(getpid(), &ts) == 0);
	cpu_set_t set;
	errno = 0;
	CHECK(sched_getaffinity(0, sizeof(set), &set) == -1 && errno == 49);
	CHECK(sched_getaffinity(getpid(), sizeof(set), &set) == 0);
	return 0;
}

static void test_load_args(void **state)
{
	struct fx *f = *state;
	OK(ALLOW_BUT(
		"{\"names\":[\"personality\"],\"action\":\"SCMP_ACT_ERRNO\",\"args\":["
		"{\"index\":0,\"value\":4294967295,\"op\":\"SCMP_CMP_NE\"}]},"
		"{\"names\":[\"getpriority\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":43,"
		"\"args\":["
		"{\"index\":0,\"value\":0,\"op\":\"SCMP_CMP_EQ\"},"
		"{\"index\":1,\"value\":999999,\"op\":\"SCMP_CMP_EQ\"}]},"
		"{\"names\":[\"getpgid\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":44,\"args\":["
		"{\"index\":0,\"value\":888881,\"op\":\"SCMP_CMP_EQ\"},"
		"{\"index\":0,\"value\":888882,\"op\":\"SCMP_CMP_EQ\"}]},"
		"{\"names\":[\"getsid\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":45,\"args\":["
		"{\"index\":0,\"value\":65280,\"valueTwo\":4608,\"op\":\"SCMP_CMP_MASKED_EQ\"}]},"
		"{\"names\":[\"sched_getscheduler\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":46,"
		"\"args\":[{\"index\":0,\"value\":900000,\"op\":\"SCMP_CMP_GT\"}]},"
		"{\"names\":[\"sched_getparam\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":47,"
		"\"args\":[{\"index\":0,\"value\":900000,\"op\":\"SCMP_CMP_GE\"}]},"
		"{\"names\":[\"sched_rr_get_interval\"],\"action\":\"SCMP_ACT_ERRNO\","
		"\"errnoRet\":48,"
		"\"args\":[{\"index\":0,\"value\":1,\"op\":\"SCMP_CMP_LT\"}]},"
		"{\"names\":[\"sched_getaffinity\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":49,"
		"\"args\":[{\"index\":0,\"value\":0,\"op\":\"SCMP_CMP_LE\"}]}"));
	run_child(f, child_args);
}

static int child_unknown_name(struct fx *f)
{
	int fd = -2;
	if (child_load(f->s, &fd))
		return 1;
	errno = 0;
	CHECK(syscall(SYS_getppid) == -1 && errno == 42);
	return 0;
}

/* One profile serves every architecture: names unknown here are skipped, not errors. */
static void test_load_unknown_name_skipped(void **state)
{
	struct fx *f = *state;
	OK("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_X86_64\","
	   "\"SCMP_ARCH_X86\",\"SCMP_ARCH_X32\",\"SCMP_ARCH_AARCH64\",\"SCMP_ARCH_ARM\"],"
	   "\"syscalls\":[{\"names\":[\"berth_no_such_syscall\",\"getppid\",\"socketcall\","
	   "\"arm_fadvise64_64\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":42}]}");
	run_child(f, child_unknown_name);
}

#if defined(__x86_64__)
/* A system call through the i386 entry point, as a 32-bit program makes it. */
static long i386_syscall0(long nr)
{
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr) : "memory", "r8", "r9", "r10", "r11");
	return ret;
}
#define I386_NR_GETPPID 64

static int child_i386(struct fx *f)
{
	if (i386_syscall0(I386_NR_GETPPID) != getppid())
		return 77; /* no ia32 emulation in this kernel */
	int fd = -2;
	if (child_load(f->s, &fd))
		return 1;
	errno = 0;
	CHECK(syscall(SYS_getppid) == -1 && errno == 42);
	CHECK(i386_syscall0(I386_NR_GETPPID) == -42);
	return 0;
}

/* architectures puts more ABIs into the filter; a call through one left out kills the caller. */
static void test_load_architectures(void **state)
{
	struct fx *f = *state;
	OK("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"architectures\":[\"SCMP_ARCH_X86_64\","
	   "\"SCMP_ARCH_X86\"],\"syscalls\":[{\"names\":[\"getppid\"],"
	   "\"action\":\"SCMP_ACT_ERRNO\","
	   "\"errnoRet\":42}]}");
	int st = run_child_status(f, child_i386);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		skip();
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);

	OK(ALLOW_BUT("{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":42}"));
	st = run_child_status(f, child_i386);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
}
#else
static void test_load_architectures(void **state)
{
	skip(); /* the test makes i386 system calls from x86_64 */
}
#endif

static int child_no_nnp(struct fx *f)
{
	/* without no_new_privs and without CAP_SYS_ADMIN the kernel refuses a filter */
	cap_t caps = cap_get_proc();
	cap_value_t admin = CAP_SYS_ADMIN;
	CHECK(caps && cap_set_flag(caps, CAP_EFFECTIVE, 1, &admin, CAP_CLEAR) == 0 &&
	      cap_set_proc(caps) == 0);
	cap_free(caps);
	struct berth_error *err = NULL;
	int fd = -2;
	CHECK(oci_seccomp_load(f->s, &fd, &err) == -EACCES);
	CHECK(fd == -2);
	CHECK(err && strstr(err->msg, PREFIX ": load the filter (neither no_new_privs nor "
					  "CAP_SYS_ADMIN)"));
	berth_error_free(err);
	return 0;
}

static void test_load_needs_nnp_or_admin(void **state)
{
	struct fx *f = *state;
	OK(ALLOW_BUT("{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_ERRNO\"}"));
	run_child(f, child_no_nnp);
}

/* ---- SCMP_ACT_NOTIFY ---- */

/* Answers one notification on fd with `val` as the syscall's return value. */
static int answer_notification(int fd, int64_t val)
{
	struct seccomp_notif *req = NULL;
	struct seccomp_notif_resp *resp = NULL;
	if (seccomp_notify_alloc(&req, &resp) < 0)
		return -ENOMEM;
	int r = seccomp_notify_receive(fd, req);
	if (r == 0) {
		resp->id = req->id;
		resp->val = val;
		resp->error = 0;
		resp->flags = 0;
		r = seccomp_notify_respond(fd, resp);
	}
	seccomp_notify_free(req, resp);
	return r;
}

static bool is_notify_fd(int fd)
{
	char path[64], target[128] = "";
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	return n > 0 && strcmp(target, "anon_inode:seccomp notify") == 0;
}

static int child_notify(struct fx *f)
{
	int fd = -2;
	if (child_load(f->s, &fd))
		return 1;
	CHECK(fd >= 0);
	CHECK(is_notify_fd(fd));
	CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC);
	/* a grandchild inherits the filter; this process answers for the agent */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(syscall(SYS_getppid) == 4242 ? 0 : 1);
	CHECK(answer_notification(fd, 4242) == 0);
	int st = 0;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return 0;
}

static void test_load_notify(void **state)
{
	struct fx *f = *state;
	OK("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"/run/unused.sock\","
	   "\"syscalls\":[{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_NOTIFY\"}]}");
	assert_true(oci_seccomp_wants_notify(f->s));
	run_child(f, child_notify);
}

static int child_notify_unknown(struct fx *f)
{
	int fd = -2;
	if (child_load(f->s, &fd))
		return 1;
	CHECK(fd == -1);
	return 0;
}

/* NOTIFY only on names this architecture lacks: nothing can notify, so there is no fd. */
static void test_load_notify_nothing_here(void **state)
{
	struct fx *f = *state;
	OK("{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"/run/unused.sock\","
	   "\"syscalls\":[{\"names\":[\"berth_no_such_syscall\"],"
	   "\"action\":\"SCMP_ACT_NOTIFY\"}]}");
	assert_true(oci_seccomp_wants_notify(f->s));
	run_child(f, child_notify_unknown);
}

static int child_send(struct fx *f)
{
	int fd = -2;
	if (child_load(f->s, &fd))
		return 1;
	CHECK(fd >= 0);
	char state_json[256];
	snprintf(state_json, sizeof(state_json),
		 "{\"ociVersion\":\"1.3.0\",\"id\":\"c1\",\"status\":\"creating\",\"pid\":%d,"
		 "\"bundle\":\"/b\",\"annotations\":{\"k\":\"v\"}}",
		 (int)getpid());
	struct berth_error *err = NULL;
	int sock = oci_seccomp_connect_listener(f->s, &err);
	if (sock < 0 || oci_seccomp_send_notify_fd(f->s, sock, fd, getpid(), state_json, &err) < 0) {
		fprintf(stderr, "child: send: %s\n", err ? err->msg : "?");
		return 1;
	}
	close(sock);
	close(fd);
	/* the agent (the test process) answers */
	CHECK(syscall(SYS_getppid) == 4242);
	return 0;
}

/* Reads the agent's side of one connection: the bytes until EOF, and the fd that came along. */
static char *agent_receive(int conn, int *ret_fd)
{
	char *buf = calloc(1, 65536);
	assert_non_null(buf);
	size_t len = 0;
	*ret_fd = -1;
	for (;;) {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int) * 4)];
		} ctl;
		struct iovec iov = { .iov_base = buf + len, .iov_len = 65535 - len };
		struct msghdr mh = { .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = ctl.buf,
				     .msg_controllen = sizeof(ctl.buf) };
		struct pollfd p = { .fd = conn, .events = POLLIN };
		if (poll(&p, 1, 10000) != 1)
			fail_msg("no data from the runtime within 10 s");
		ssize_t n = recvmsg(conn, &mh, MSG_CMSG_CLOEXEC);
		assert_true(n >= 0);
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			assert_int_equal(c->cmsg_level, SOL_SOCKET);
			assert_int_equal(c->cmsg_type, SCM_RIGHTS);
			assert_int_equal(c->cmsg_len, CMSG_LEN(sizeof(int)));
			assert_int_equal(*ret_fd, -1); /* exactly one fd, once */
			memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	return buf;
}

static void test_send_notify_fd(void **state)
{
	struct fx *f = *state;
	assert_int_equal(unit_tmpdir_create(&f->tmp), 0);
	char sock_path[100], text[512];
	snprintf(sock_path, sizeof(sock_path), "%s/agent.sock", f->tmp.path);
	snprintf(text, sizeof(text),
		 "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"%s\","
		 "\"listenerMetadata\":\"MKNOD=/dev/null;BPF=hash\",\"syscalls\":[{\"names\":"
		 "[\"getppid\"],\"action\":\"SCMP_ACT_NOTIFY\"}]}",
		 sock_path);
	OK(text);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 1), 0);

	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_send(f));
	f->child = pid;

	struct pollfd p = { .fd = lfd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 10000), 1);
	int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(lfd);
	assert_true(conn >= 0);
	int fd = -1;
	char *msg = agent_receive(conn, &fd);
	close(conn);
	assert_true(fd >= 0);
	assert_true(is_notify_fd(fd));

	struct json *j = NULL;
	if (bjson_parse(msg, &j, NULL) < 0)
		fail_msg("not JSON: %s", msg);
	assert_string_equal(bjson_string(bjson_object_get(j, "ociVersion")), "1.3.0");
	const struct json *fds = bjson_object_get(j, "fds");
	assert_int_equal(bjson_array_size(fds), 1);
	assert_string_equal(bjson_string(bjson_array_get(fds, 0)), "seccompFd");
	int64_t got_pid = 0;
	assert_true(bjson_int64(bjson_object_get(j, "pid"), &got_pid));
	assert_int_equal(got_pid, pid);
	assert_string_equal(bjson_string(bjson_object_get(j, "metadata")),
			    "MKNOD=/dev/null;BPF=hash");
	const struct json *st = bjson_object_get(j, "state");
	assert_string_equal(bjson_string(bjson_object_get(st, "id")), "c1");
	assert_string_equal(bjson_string(bjson_object_get(st, "status")), "creating");
	assert_string_equal(bjson_string(bjson_object_get(bjson_object_get(st, "annotations"), "k")),
			    "v");
	assert_true(bjson_int64(bjson_object_get(st, "pid"), &got_pid));
	assert_int_equal(got_pid, pid);
	bjson_free(j);
	free(msg);

	/* the fd works: answer the child's getppid */
	assert_int_equal(answer_notification(fd, 4242), 0);
	close(fd);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	f->child = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_send_notify_fd_errors(void **state)
{
	struct fx *f = *state;
	assert_int_equal(unit_tmpdir_create(&f->tmp), 0);
	char text[512];
	snprintf(text, sizeof(text),
		 "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"listenerPath\":\"%s/none.sock\","
		 "\"syscalls\":[{\"names\":[\"getppid\"],\"action\":\"SCMP_ACT_NOTIFY\"}]}",
		 f->tmp.path);
	OK(text);
	/* nobody listens */
	assert_int_equal(oci_seccomp_connect_listener(f->s, &f->err), -ENOENT);
	assert_contains(f->err->msg, PREFIX ".listenerPath: ");
	assert_contains(f->err->msg, "/none.sock: connect: No such file or directory");
	berth_error_freep(&f->err);
	/* the state must be a JSON object (checked before anything is sent) */
	assert_int_equal(oci_seccomp_send_notify_fd(f->s, -1, 0, 1, "[1]", &f->err), -EINVAL);
	assert_contains(f->err->msg, "container state: must be an object, not an array");
	berth_error_freep(&f->err);
	assert_int_equal(oci_seccomp_send_notify_fd(f->s, -1, 0, 1, "{", &f->err), -EINVAL);
	assert_contains(f->err->msg, "container state: ");
	berth_error_freep(&f->err);
	assert_int_equal(oci_seccomp_send_notify_fd(f->s, -1, -1, 1, "{}", &f->err), -EBADF);
	assert_contains(f->err->msg, PREFIX ": no listener fd to send");
	berth_error_freep(&f->err);
	/* without a listenerPath there is nowhere to send */
	OK("{\"defaultAction\":\"SCMP_ACT_ALLOW\"}");
	assert_int_equal(oci_seccomp_connect_listener(f->s, &f->err), -EINVAL);
	assert_contains(f->err->msg, PREFIX ".listenerPath: not set");
}

/* ---- the shipped default profile ---- */

static int run_true(void)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	int st = 0;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* posix_spawn: glibc tries clone3 (ENOSYS here) and falls back to clone */
	char *argv[] = { "true", NULL };
	CHECK(posix_spawn(&pid, "/bin/true", NULL, NULL, argv, NULL) == 0);
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return 0;
}

static int child_default_profile(struct fx *f)
{
	/* as root, a private mount namespace first, so that a filter that failed to refuse a
	 * mount could not change the host's */
	if (unshare(CLONE_NEWNS) == 0)
		CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
	int fd = -2;
	if (child_load(f->s, &fd))
		return 1;
	CHECK(fd == -1);
	if (child_status_shows_filter() || run_true())
		return 1;
	/* what a container without CAP_SYS_ADMIN must not do */
	errno = 0;
	CHECK(unshare(CLONE_NEWNS) == -1 && errno == EPERM);
	errno = 0;
	CHECK(mount("none", f->tmp.path, "tmpfs", 0, NULL) == -1 && errno == EPERM);
	errno = 0;
	CHECK(umount2(f->tmp.path, 0) == -1 && errno == EPERM);
	errno = 0;
	long r = syscall(SYS_clone, (unsigned long)(CLONE_NEWUTS | SIGCHLD), 0, 0, 0, 0);
	if (r == 0)
		_exit(0); /* the filter let a new namespace through: the parent reports it */
	CHECK(r == -1 && errno == EPERM);
	errno = 0;
	CHECK(syscall(SYS_clone3, NULL, 0) == -1 && errno == ENOSYS);
	errno = 0;
	CHECK(socket(40 /* AF_VSOCK */, SOCK_STREAM, 0) == -1 && errno == EPERM);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(s >= 0);
	close(s);
	CHECK(personality(0xffffffff) >= 0);
	errno = 0;
	CHECK(personality(0x0040000 /* ADDR_NO_RANDOMIZE */) == -1 && errno == EPERM);
	errno = 0;
	CHECK(syscall(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0) == -1 &&
	      errno == EPERM);
	return 0;
}

static void test_default_profile_load(void **state)
{
	struct fx *f = *state;
	assert_int_equal(unit_tmpdir_create(&f->tmp), 0);
	char *text = read_file(BERTH_SECCOMP_DEFAULT);
	OK(text);
	free(text);
	run_child(f, child_default_profile);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_parse_minimal),
		T(test_parse_every_field),
		T(test_parse_every_action),
		T(test_parse_wait_killable_recv),
		T(test_parse_errors_top),
		T(test_parse_errors_arch_flags),
		T(test_parse_errors_listener),
		T(test_parse_errors_syscalls),
		T(test_parse_errors_args),
		T(test_parse_default_profile),
		T(test_load_errno),
		T(test_load_flags),
		T(test_load_default_errno),
		T(test_load_args),
		T(test_load_unknown_name_skipped),
		T(test_load_architectures),
		T(test_load_needs_nnp_or_admin),
		T(test_load_notify),
		T(test_load_notify_nothing_here),
		T(test_send_notify_fd),
		T(test_send_notify_fd_errors),
		T(test_default_profile_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
