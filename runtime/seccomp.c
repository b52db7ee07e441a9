#include "runtime/seccomp-internal.h"
#include "base/cleanup.h"
#include "base/log.h"
#include "base/socketutil.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

/* errnoRet and the TRACE message travel in the 16 data bits of the filter's return value. */
#define ACTION_DATA_MAX 0xffff
#define ARG_INDEX_MAX 5

/* libseccomp 2.6 can ask the kernel for SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV. */
#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 6)
#define HAVE_WAITKILL 1
#else
#define HAVE_WAITKILL 0
#endif

struct seccomp_rule {
	char **names;
	uint32_t action; /* SCMP_ACT_*, errno or trace message included */
	struct scmp_arg_cmp *args;
	size_t n_args;
	bool args_ored; /* two args compare the same index: one rule per arg (see add_rule) */
};

struct oci_seccomp {
	char *prefix; /* "linux.seccomp": errors at load time name fields too */
	uint32_t default_action;
	uint32_t archs; /* bit i: arch_table[i] */
	uint32_t flags; /* bit i: flag_table[i] */
	char *listener_path;
	char *listener_metadata;
	struct seccomp_rule *rules;
	size_t n_rules;
	bool notify;
};

/* ---- names ---- */

static const struct {
	const char *name;
	uint32_t action;
	bool takes_data; /* the data bits are the errno (ERRNO) or the tracer's message (TRACE) */
} action_table[] = {
	{ "SCMP_ACT_KILL", SCMP_ACT_KILL_THREAD, false },
	{ "SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS, false },
	{ "SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD, false },
	{ "SCMP_ACT_TRAP", SCMP_ACT_TRAP, false },
	{ "SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0), true },
	{ "SCMP_ACT_TRACE", SCMP_ACT_TRACE(0), true },
	{ "SCMP_ACT_ALLOW", SCMP_ACT_ALLOW, false },
	{ "SCMP_ACT_LOG", SCMP_ACT_LOG, false },
	{ "SCMP_ACT_NOTIFY", SCMP_ACT_NOTIFY, false },
};

/* The instruction-set families: a kernel runs only its own family's system calls. */
enum arch_family {
	FAM_X86,
	FAM_ARM,
	FAM_MIPS,
	FAM_PPC,
	FAM_S390,
	FAM_PARISC,
	FAM_RISCV,
	FAM_OTHER, /* one of its kind */
};

/* Every architecture this libseccomp knows (newer ones only when it defines them). */
static const struct {
	const char *name;
	uint32_t token;
	enum arch_family family;
} arch_table[] = {
	{ "SCMP_ARCH_X86", SCMP_ARCH_X86, FAM_X86 },
	{ "SCMP_ARCH_X86_64", SCMP_ARCH_X86_64, FAM_X86 },
	{ "SCMP_ARCH_X32", SCMP_ARCH_X32, FAM_X86 },
	{ "SCMP_ARCH_ARM", SCMP_ARCH_ARM, FAM_ARM },
	{ "SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64, FAM_ARM },
	{ "SCMP_ARCH_MIPS", SCMP_ARCH_MIPS, FAM_MIPS },
	{ "SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64, FAM_MIPS },
	{ "SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32, FAM_MIPS },
	{ "SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL, FAM_MIPS },
	{ "SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64, FAM_MIPS },
	{ "SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32, FAM_MIPS },
	{ "SCMP_ARCH_PPC", SCMP_ARCH_PPC, FAM_PPC },
	{ "SCMP_ARCH_PPC64", SCMP_ARCH_PPC64, FAM_PPC },
	{ "SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE, FAM_PPC },
	{ "SCMP_ARCH_S390", SCMP_ARCH_S390, FAM_S390 },
	{ "SCMP_ARCH_S390X", SCMP_ARCH_S390X, FAM_S390 },
	{ "SCMP_ARCH_PARISC", SCMP_ARCH_PARISC, FAM_PARISC },
	{ "SCMP_ARCH_PARISC64", SCMP_ARCH_PARISC64, FAM_PARISC },
	{ "SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64, FAM_RISCV },
#ifdef SCMP_ARCH_RISCV32
	{ "SCMP_ARCH_RISCV32", SCMP_ARCH_RISCV32, FAM_RISCV },
#endif
#ifdef SCMP_ARCH_LOONGARCH64
	{ "SCMP_ARCH_LOONGARCH64", SCMP_ARCH_LOONGARCH64, FAM_OTHER },
#endif
#ifdef SCMP_ARCH_M68K
	{ "SCMP_ARCH_M68K", SCMP_ARCH_M68K, FAM_OTHER },
#endif
#ifdef SCMP_ARCH_SH
	{ "SCMP_ARCH_SH", SCMP_ARCH_SH, FAM_OTHER },
#endif
#ifdef SCMP_ARCH_SHEB
	{ "SCMP_ARCH_SHEB", SCMP_ARCH_SHEB, FAM_OTHER },
#endif
};
_Static_assert(ARRAY_SIZE(arch_table) <= 32, "archs is a 32-bit set");

static const struct {
	const char *name;
	int attr; /* enum scmp_filter_attr; -1: this libseccomp cannot ask for the flag */
} flag_table[] = {
	{ "SECCOMP_FILTER_FLAG_TSYNC", SCMP_FLTATR_CTL_TSYNC },
	{ "SECCOMP_FILTER_FLAG_LOG", SCMP_FLTATR_CTL_LOG },
	{ "SECCOMP_FILTER_FLAG_SPEC_ALLOW", SCMP_FLTATR_CTL_SSB },
#if HAVE_WAITKILL
	{ "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", SCMP_FLTATR_CTL_WAITKILL },
#else
	{ "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", -1 },
#endif
};

static const struct {
	const char *name;
	enum scmp_compare op;
} op_table[] = {
	{ "SCMP_CMP_NE", SCMP_CMP_NE }, { "SCMP_CMP_LT", SCMP_CMP_LT },
	{ "SCMP_CMP_LE", SCMP_CMP_LE }, { "SCMP_CMP_EQ", SCMP_CMP_EQ },
	{ "SCMP_CMP_GE", SCMP_CMP_GE }, { "SCMP_CMP_GT", SCMP_CMP_GT },
	{ "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
};

/* berth's init makes these calls after loading the filter and before the listener fd has reached
 * the runtime (it sends the fd, or a setup error, over its sync socket, and may log): were they
 * SCMP_ACT_NOTIFY, the init would wait for an agent that can never answer. runc refuses "write"
 * for the same reason. */
static const char *const notify_refused[] = { "write", "send", "sendto", "sendmsg" };

/* ---- typed field access: every error names the full field path ---- */

static const char *type_name(const struct json *j)
{
	return bjson_type_name(bjson_type_of(j));
}

/* A member that is null counts as absent. */
static const struct json *field(const struct json *obj, const char *key)
{
	const struct json *j = bjson_object_get(obj, key);
	return bjson_type_of(j) == JSON_NULL ? NULL : j;
}

/* *ret points into the JSON tree (NULL when absent and not required). */
static int get_string(const struct json *obj, const char *prefix, const char *key, bool required,
		      const char **ret, struct berth_error **err)
{
	const struct json *j = field(obj, key);
	if (!j) {
		if (required)
			return berth_error_set(err, EINVAL, "%s.%s: missing", prefix, key);
		*ret = NULL;
		return 0;
	}
	if (bjson_type_of(j) != JSON_STRING)
		return berth_error_set(err, EINVAL, "%s.%s: must be a string, not %s", prefix, key,
				       type_name(j));
	*ret = bjson_string(j);
	return 0;
}

static int get_uint(const struct json *obj, const char *prefix, const char *key, bool required,
		    uint64_t max, uint64_t *ret, bool *ret_has, struct berth_error **err)
{
	const struct json *j = field(obj, key);
	if (!j) {
		if (required)
			return berth_error_set(err, EINVAL, "%s.%s: missing", prefix, key);
		return 0;
	}
	uint64_t v;
	if (bjson_type_of(j) != JSON_NUMBER)
		return berth_error_set(err, EINVAL,
				       "%s.%s: must be an integer from 0 to %llu, not %s", prefix,
				       key, (unsigned long long)max, type_name(j));
	if (!bjson_uint64(j, &v) || v > max)
		return berth_error_set(err, EINVAL, "%s.%s: must be an integer from 0 to %llu",
				       prefix, key, (unsigned long long)max);
	*ret = v;
	if (ret_has)
		*ret_has = true;
	return 0;
}

static int expect(const struct json *j, enum json_type want, const char *name,
		  struct berth_error **err)
{
	if (bjson_type_of(j) != want)
		return berth_error_set(err, EINVAL, "%s: must be %s, not %s", name,
				       want == JSON_OBJECT ? "an object" : "an array",
				       type_name(j));
	return 0;
}

/* ---- parsing ---- */

/* The action in action_key with its errno (or trace message) from errno_key. */
static int parse_action(const struct json *obj, const char *prefix, const char *action_key,
			const char *errno_key, uint32_t *ret, struct berth_error **err)
{
	const char *name = NULL;
	int r = get_string(obj, prefix, action_key, true, &name, err);
	if (r < 0)
		return r;
	size_t i = 0;
	while (i < ARRAY_SIZE(action_table) && strcmp(action_table[i].name, name) != 0)
		i++;
	if (i == ARRAY_SIZE(action_table))
		return berth_error_set(err, EINVAL, "%s.%s: unknown action \"%s\"", prefix,
				       action_key, name);
	uint64_t data = EPERM; /* the spec's default for both ERRNO and TRACE */
	bool has_data = false;
	r = get_uint(obj, prefix, errno_key, false, ACTION_DATA_MAX, &data, &has_data, err);
	if (r < 0)
		return r;
	if (has_data && !action_table[i].takes_data)
		return berth_error_set(err, EINVAL,
				       "%s.%s: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno, not %s",
				       prefix, errno_key, name);
	*ret = action_table[i].action | (action_table[i].takes_data ? (uint32_t)data : 0);
	return 0;
}

/* Index of name in a table whose entries start with a `const char *name` member, or n. */
static size_t table_index(const void *table, size_t n, size_t stride, const char *name)
{
	for (size_t k = 0; k < n; k++)
		if (strcmp(*(const char *const *)((const char *)table + k * stride), name) == 0)
			return k;
	return n;
}

/* obj.key is an array of names from a table: each becomes a bit of *ret_mask. what names the
 * kind of name in errors ("architecture", "flag"). */
static int parse_name_list(const struct json *obj, const char *key, const struct oci_seccomp *s,
			   const void *table, size_t n, size_t stride, const char *what,
			   uint32_t *ret_mask, struct berth_error **err)
{
	const struct json *arr = field(obj, key);
	char name[256];
	snprintf(name, sizeof(name), "%s.%s", s->prefix, key);
	if (!arr)
		return 0;
	int r = expect(arr, JSON_ARRAY, name, err);
	for (size_t i = 0; r >= 0 && i < bjson_array_size(arr); i++) {
		const char *v = bjson_string(bjson_array_get(arr, i));
		if (!v)
			return berth_error_set(err, EINVAL, "%s[%zu]: must be a string, not %s",
					       name, i, type_name(bjson_array_get(arr, i)));
		size_t k = table_index(table, n, stride, v);
		if (k == n)
			return berth_error_set(err, EINVAL, "%s[%zu]: unknown %s \"%s\"", name, i,
					       what, v);
		*ret_mask |= 1u << k;
	}
	return r;
}

static int parse_architectures(const struct json *obj, struct oci_seccomp *s,
			       struct berth_error **err)
{
	return parse_name_list(obj, "architectures", s, arch_table, ARRAY_SIZE(arch_table),
			       sizeof(arch_table[0]), "architecture", &s->archs, err);
}

static int parse_flags(const struct json *obj, struct oci_seccomp *s, struct berth_error **err)
{
	int r = parse_name_list(obj, "flags", s, flag_table, ARRAY_SIZE(flag_table),
				sizeof(flag_table[0]), "flag", &s->flags, err);
	const struct json *arr = field(obj, "flags");
	for (size_t i = 0; r >= 0 && i < bjson_array_size(arr); i++) {
		const char *f = bjson_string(bjson_array_get(arr, i));
		size_t k = table_index(flag_table, ARRAY_SIZE(flag_table), sizeof(flag_table[0]), f);
		if (flag_table[k].attr < 0)
			return berth_error_set(err, ENOTSUP,
					       "%s.flags[%zu]: %s needs libseccomp 2.6 or later (berth was built with %d.%d.%d)",
					       s->prefix, i, f, SCMP_VER_MAJOR, SCMP_VER_MINOR,
					       SCMP_VER_MICRO);
	}
	return r;
}

static int parse_listener(const struct json *obj, struct oci_seccomp *s, struct berth_error **err)
{
	const char *path = NULL, *meta = NULL;
	int r;
	if ((r = get_string(obj, s->prefix, "listenerPath", false, &path, err)) < 0 ||
	    (r = get_string(obj, s->prefix, "listenerMetadata", false, &meta, err)) < 0)
		return r;
	/* "" is unset, as in runc */
	if (path && path[0]) {
		if (path[0] != '/')
			return berth_error_set(err, EINVAL,
					       "%s.listenerPath: \"%s\": must be an absolute path",
					       s->prefix, path);
		if (strlen(path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
			return berth_error_set(err, EINVAL,
					       "%s.listenerPath: too long for a unix socket address (at most %zu bytes)",
					       s->prefix,
					       sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1);
		if (!(s->listener_path = strdup(path)))
			return -ENOMEM;
	}
	if (meta && meta[0]) {
		if (!s->listener_path)
			return berth_error_set(err, EINVAL,
					       "%s.listenerMetadata: must not be set without listenerPath",
					       s->prefix);
		if (!(s->listener_metadata = strdup(meta)))
			return -ENOMEM;
	}
	return 0;
}

static int parse_names(const struct json *o, const char *item, struct seccomp_rule *rule,
		       struct berth_error **err)
{
	const struct json *arr = field(o, "names");
	if (!arr)
		return berth_error_set(err, EINVAL, "%s.names: missing", item);
	if (bjson_type_of(arr) != JSON_ARRAY)
		return berth_error_set(err, EINVAL, "%s.names: must be an array of strings, not %s",
				       item, type_name(arr));
	size_t n = bjson_array_size(arr);
	if (n == 0)
		return berth_error_set(err, EINVAL, "%s.names: must name at least one syscall",
				       item);
	if (!(rule->names = calloc(n + 1, sizeof(char *))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *name = bjson_string(bjson_array_get(arr, i));
		if (!name || !name[0])
			return berth_error_set(err, EINVAL,
					       "%s.names[%zu]: must be a syscall name, not %s",
					       item, i,
					       name ? "an empty string"
						    : type_name(bjson_array_get(arr, i)));
		if (!(rule->names[i] = strdup(name)))
			return -ENOMEM;
	}
	return 0;
}

static int parse_arg(const struct json *o, const char *item, struct scmp_arg_cmp *a,
		     struct berth_error **err)
{
	int r = expect(o, JSON_OBJECT, item, err);
	uint64_t index = 0;
	const char *op = NULL;
	if (r < 0 ||
	    (r = get_uint(o, item, "index", true, ARG_INDEX_MAX, &index, NULL, err)) < 0 ||
	    (r = get_uint(o, item, "value", true, UINT64_MAX, &a->datum_a, NULL, err)) < 0 ||
	    (r = get_uint(o, item, "valueTwo", false, UINT64_MAX, &a->datum_b, NULL, err)) < 0 ||
	    (r = get_string(o, item, "op", true, &op, err)) < 0)
		return r;
	a->arg = (unsigned)index;
	size_t k = 0;
	while (k < ARRAY_SIZE(op_table) && strcmp(op_table[k].name, op) != 0)
		k++;
	if (k == ARRAY_SIZE(op_table))
		return berth_error_set(err, EINVAL, "%s.op: unknown operator \"%s\"", item, op);
	a->op = op_table[k].op;
	/* libseccomp would ignore it: say so rather than filter on something else than asked */
	if (a->datum_b && a->op != SCMP_CMP_MASKED_EQ)
		return berth_error_set(err, EINVAL,
				       "%s.valueTwo: only SCMP_CMP_MASKED_EQ uses it, not %s", item,
				       op);
	return 0;
}

static int parse_args(const struct json *o, const char *item, struct seccomp_rule *rule,
		      struct berth_error **err)
{
	const struct json *arr = field(o, "args");
	char name[320];
	snprintf(name, sizeof(name), "%s.args", item);
	if (!arr)
		return 0;
	int r = expect(arr, JSON_ARRAY, name, err);
	if (r < 0)
		return r;
	size_t n = bjson_array_size(arr);
	if (!(rule->args = calloc(n ? n : 1, sizeof(*rule->args))))
		return -ENOMEM;
	unsigned seen = 0;
	for (size_t i = 0; i < n; i++) {
		char arg[352];
		snprintf(arg, sizeof(arg), "%s[%zu]", name, i);
		if ((r = parse_arg(bjson_array_get(arr, i), arg, &rule->args[i], err)) < 0)
			return r;
		rule->n_args = i + 1;
		if (seen & (1u << rule->args[i].arg))
			rule->args_ored = true;
		seen |= 1u << rule->args[i].arg;
	}
	return 0;
}

static int parse_rule(const struct json *o, const char *item, struct seccomp_rule *rule,
		      bool *ret_notify, struct berth_error **err)
{
	int r = expect(o, JSON_OBJECT, item, err);
	if (r < 0 || (r = parse_names(o, item, rule, err)) < 0 ||
	    (r = parse_action(o, item, "action", "errnoRet", &rule->action, err)) < 0 ||
	    (r = parse_args(o, item, rule, err)) < 0)
		return r;
	*ret_notify = rule->action == SCMP_ACT_NOTIFY;
	for (size_t i = 0; *ret_notify && rule->names[i]; i++)
		for (size_t k = 0; k < ARRAY_SIZE(notify_refused); k++)
			if (strcmp(rule->names[i], notify_refused[k]) == 0)
				return berth_error_set(err, EINVAL,
						       "%s.names[%zu]: SCMP_ACT_NOTIFY cannot be used for \"%s\": berth's init needs it to hand the listener fd over",
						       item, i, rule->names[i]);
	return 0;
}

static int parse_syscalls(const struct json *obj, struct oci_seccomp *s, struct berth_error **err)
{
	const struct json *arr = field(obj, "syscalls");
	char name[256];
	snprintf(name, sizeof(name), "%s.syscalls", s->prefix);
	if (!arr)
		return 0;
	int r = expect(arr, JSON_ARRAY, name, err);
	if (r < 0)
		return r;
	size_t n = bjson_array_size(arr);
	if (!(s->rules = calloc(n ? n : 1, sizeof(*s->rules))))
		return -ENOMEM;
	size_t first_notify = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		char item[288];
		snprintf(item, sizeof(item), "%s[%zu]", name, i);
		s->n_rules = i + 1;
		bool notify = false;
		if ((r = parse_rule(bjson_array_get(arr, i), item, &s->rules[i], &notify, err)) < 0)
			return r;
		if (notify && first_notify == SIZE_MAX)
			first_notify = i;
	}
	s->notify = first_notify != SIZE_MAX;
	if (s->notify && !s->listener_path)
		return berth_error_set(err, EINVAL,
				       "%s.listenerPath: required, since %s[%zu].action is SCMP_ACT_NOTIFY",
				       s->prefix, name, first_notify);
	return 0;
}

int oci_seccomp_parse(const struct json *node, const char *prefix, struct oci_seccomp **ret,
		      struct berth_error **err)
{
	int r = expect(node, JSON_OBJECT, prefix, err);
	if (r < 0)
		return r;
	_cleanup_(oci_seccomp_freep) struct oci_seccomp *s = calloc(1, sizeof(*s));
	if (!s || !(s->prefix = strdup(prefix)))
		return -ENOMEM;
	if ((r = parse_action(node, prefix, "defaultAction", "defaultErrnoRet", &s->default_action,
			      err)) < 0)
		return r;
	/* every call of the init, the ones handing the listener over included, would wait for it */
	if (s->default_action == SCMP_ACT_NOTIFY)
		return berth_error_set(err, EINVAL,
				       "%s.defaultAction: SCMP_ACT_NOTIFY cannot be the default action (as in runc)",
				       prefix);
	if ((r = parse_architectures(node, s, err)) < 0 || (r = parse_flags(node, s, err)) < 0 ||
	    (r = parse_listener(node, s, err)) < 0 || (r = parse_syscalls(node, s, err)) < 0)
		return r;
	*ret = TAKE_PTR(s);
	return 0;
}

struct oci_seccomp *oci_seccomp_free(struct oci_seccomp *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n_rules; i++) {
		strv_free(s->rules[i].names);
		free(s->rules[i].args);
	}
	free(s->rules);
	free(s->listener_path);
	free(s->listener_metadata);
	free(s->prefix);
	free(s);
	return NULL;
}

void oci_seccomp_freep(struct oci_seccomp **s)
{
	*s = oci_seccomp_free(*s);
}

bool oci_seccomp_wants_notify(const struct oci_seccomp *s)
{
	return s->notify;
}

const char *oci_seccomp_listener_path(const struct oci_seccomp *s)
{
	return s->listener_path;
}

const char *oci_seccomp_listener_metadata(const struct oci_seccomp *s)
{
	return s->listener_metadata;
}

/* ---- building and loading the filter ---- */

static void filter_releasep(scmp_filter_ctx *ctx)
{
	if (*ctx)
		seccomp_release(*ctx);
}

static int set_attributes(scmp_filter_ctx ctx, const struct oci_seccomp *s,
			  struct berth_error **err)
{
	/* no_new_privs is process.noNewPrivileges' business, not a side effect of the filter; and
	 * a failed load should report the kernel's errno, not libseccomp's ECANCELED */
	int r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (r >= 0)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
	if (r < 0)
		return berth_error_setsys(err, -r, "%s: libseccomp: set the filter's attributes",
					  s->prefix);
	for (size_t i = 0; i < ARRAY_SIZE(flag_table); i++) {
		if (!(s->flags & (1u << i)))
			continue;
		r = seccomp_attr_set(ctx, (enum scmp_filter_attr)flag_table[i].attr, 1);
		if (r < 0)
			return berth_error_setsys(err, -r,
						  "%s.flags: %s: not supported by this kernel and libseccomp",
						  s->prefix, flag_table[i].name);
	}
	return 0;
}

/* The native architecture's family, or -1 when this table does not know it. */
static int native_family(void)
{
	uint32_t native = seccomp_arch_native();
	for (size_t i = 0; i < ARRAY_SIZE(arch_table); i++)
		if (arch_table[i].token == native)
			return arch_table[i].family == FAM_OTHER ? -1 : (int)arch_table[i].family;
	return -1;
}

static int add_architectures(scmp_filter_ctx ctx, const struct oci_seccomp *s,
			     struct berth_error **err)
{
	/* An architecture of another instruction-set family never reaches this kernel's filter
	 * (an x86_64 kernel runs no aarch64 system call), so its part of the filter would be dead
	 * code; leaving it out changes nothing but the cost: generating the filter is superlinear
	 * in its size (Docker's profile with aarch64 and arm next to x86_64, x86 and x32 takes
	 * ~17 ms to build instead of ~10 ms). */
	int family = native_family();
	for (size_t i = 0; i < ARRAY_SIZE(arch_table); i++) {
		if (!(s->archs & (1u << i)))
			continue;
		if (family >= 0 && (int)arch_table[i].family != family) {
			log_debug("%s.architectures: %s cannot run here, left out", s->prefix,
				  arch_table[i].name);
			continue;
		}
		int r = seccomp_arch_add(ctx, arch_table[i].token);
		if (r < 0 && r != -EEXIST) /* the native one is there from the start */
			return berth_error_setsys(err, -r, "%s.architectures: %s", s->prefix,
						  arch_table[i].name);
	}
	return 0;
}

static int add_rule(scmp_filter_ctx ctx, const struct seccomp_rule *rule, int nr)
{
	if (!rule->args_ored)
		return seccomp_rule_add_array(ctx, rule->action, nr, (unsigned)rule->n_args,
					      rule->args);
	/* Two comparisons of the same argument: libseccomp refuses them in one rule (EINVAL), and
	 * runc, which the profiles in use (Docker's, containerd's) are written against, then adds
	 * one rule per argument, so that the comparisons are ORed instead of ANDed. Do the same,
	 * so that a profile means under berth what it means under runc. */
	for (size_t k = 0; k < rule->n_args; k++) {
		int r = seccomp_rule_add_array(ctx, rule->action, nr, 1, &rule->args[k]);
		if (r < 0)
			return r;
	}
	return 0;
}

static int add_rules(scmp_filter_ctx ctx, const struct oci_seccomp *s, bool *ret_notify,
		     struct berth_error **err)
{
	for (size_t i = 0; i < s->n_rules; i++) {
		const struct seccomp_rule *rule = &s->rules[i];
		/* libseccomp refuses a rule that repeats the default action (EACCES): a no-op */
		if (rule->action == s->default_action) {
			log_debug("%s.syscalls[%zu]: same action as defaultAction, nothing to add",
				  s->prefix, i);
			continue;
		}
		for (size_t k = 0; rule->names[k]; k++) {
			/* syscalls this architecture (or this libseccomp) does not know are
			 * skipped, as runc and crun do: one profile serves every architecture */
			int nr = seccomp_syscall_resolve_name(rule->names[k]);
			if (nr == __NR_SCMP_ERROR) {
				log_debug("%s.syscalls[%zu].names[%zu]: unknown syscall \"%s\", "
					  "skipped",
					  s->prefix, i, k, rule->names[k]);
				continue;
			}
			int r = add_rule(ctx, rule, nr);
			if (r < 0)
				return berth_error_setsys(err, -r,
							  "%s.syscalls[%zu].names[%zu]: \"%s\": libseccomp refused the rule",
							  s->prefix, i, k, rule->names[k]);
			if (rule->action == SCMP_ACT_NOTIFY)
				*ret_notify = true;
		}
	}
	return 0;
}

int oci_seccomp_load(const struct oci_seccomp *s, int *ret_notify_fd, struct berth_error **err)
{
	_cleanup_(filter_releasep) scmp_filter_ctx ctx = seccomp_init(s->default_action);
	if (!ctx)
		return berth_error_set(err, EINVAL,
				       "%s.defaultAction: libseccomp cannot build a filter with it here (kernel too old?)",
				       s->prefix);
	bool notify = false;
	int r;
	if ((r = set_attributes(ctx, s, err)) < 0 || (r = add_architectures(ctx, s, err)) < 0 ||
	    (r = add_rules(ctx, s, &notify, err)) < 0)
		return r;
	r = seccomp_load(ctx);
	if (r == -EACCES)
		return berth_error_setsys(err, EACCES,
					  "%s: load the filter (neither no_new_privs nor CAP_SYS_ADMIN)",
					  s->prefix);
	if (r < 0)
		return berth_error_setsys(err, -r, "%s: load the filter", s->prefix);
	int fd = -1;
	if (notify) {
		fd = seccomp_notify_fd(ctx);
		if (fd < 0)
			return berth_error_set(err, EIO,
					       "%s: the filter is loaded but libseccomp has no listener fd",
					       s->prefix);
	} else if (s->notify) {
		log_debug("%s: no SCMP_ACT_NOTIFY syscall exists here: no listener fd", s->prefix);
	}
	*ret_notify_fd = fd;
	return 0;
}

/* ---- handing the listener fd to the seccomp agent ---- */

/* The runtime-spec's container process state. */
static int build_process_state(const struct oci_seccomp *s, pid_t pid, const char *state_json,
			       char **ret, size_t *ret_len, struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *state = NULL;
	int r = bjson_parse(state_json, &state, err);
	if (r < 0) {
		(void)berth_error_wrap(err, "container state");
		return r;
	}
	if (bjson_type_of(state) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, "container state: must be an object, not %s",
				       type_name(state));
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "ociVersion", RUNTIME_OCI_VERSION);
	bjson_writer_key(w, "fds");
	bjson_writer_begin_array(w);
	bjson_writer_string(w, "seccompFd");
	bjson_writer_end_array(w);
	bjson_writer_kv_int(w, "pid", pid);
	if (s->listener_metadata)
		bjson_writer_kv_string(w, "metadata", s->listener_metadata);
	bjson_writer_key(w, "state");
	bjson_writer_value(w, state);
	bjson_writer_end_object(w);
	if ((r = bjson_writer_finish(w, ret, ret_len)) < 0)
		return berth_error_setsys(err, -r, "container process state");
	return 0;
}


int oci_seccomp_connect_listener(const struct oci_seccomp *s, struct berth_error **err)
{
	if (!s->listener_path)
		return berth_error_set(err, EINVAL, "%s.listenerPath: not set", s->prefix);
	_cleanup_close_ int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return berth_error_setsys(err, errno, "%s.listenerPath: socket", s->prefix);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, s->listener_path, strlen(s->listener_path)); /* length checked */
	if (connect(sock, (const struct sockaddr *)&sa, sizeof(sa)) < 0)
		return berth_error_setsys(err, errno, "%s.listenerPath: %s: connect", s->prefix,
					  s->listener_path);
	return TAKE_FD(sock);
}

int oci_seccomp_send_notify_fd(const struct oci_seccomp *s, int sock, int notify_fd, pid_t pid,
			       const char *state_json, struct berth_error **err)
{
	if (notify_fd < 0)
		return berth_error_set(err, EBADF, "%s: no listener fd to send", s->prefix);
	_cleanup_free_ char *msg = NULL;
	size_t len = 0;
	int r = build_process_state(s, pid, state_json, &msg, &len, err);
	if (r < 0)
		return r;
	if ((r = unix_send_with_fd(sock, msg, len, notify_fd)) < 0)
		return berth_error_setsys(err, -r,
					  "%s.listenerPath: %s: send the container process state",
					  s->prefix, s->listener_path);
	log_debug("%s: listener fd sent to %s", s->prefix, s->listener_path);
	return 0;
}
