/* linux.resources.devices → a cgroup v2 eBPF device filter.
 *
 * cgroup v2 has no devices.allow file: the kernel asks a BPF_PROG_TYPE_CGROUP_DEVICE program
 * attached to the cgroup (and to every ancestor, all of which must allow) about each mknod, read
 * and write open of a device node. The OCI rule list is in cgroup v1's terms; it is evaluated the
 * way runc (devices emulator + devicefilter) and cgroup v1 evaluate it:
 *
 *   - Rules apply in the listed order (runtime-spec: "MUST apply entries in the listed order").
 *   - A rule of type "a" (or no type) with any major and any minor is cgroup v1's "a": it resets
 *     the list, dropping every rule before it, and makes the default allow or deny as it says
 *     (its access is ignored, as v1 ignores it). Before any such rule the default is deny.
 *   - Otherwise the LAST rule that matches a request decides it: a rule matches when its type is
 *     the device's (or "a"), its major and minor are the device's (or any: null, unset or -1),
 *     and every access the request asks for (r, w, m) is in its access; no match: the default.
 *   - After the config's rules come runc's default devices (libcontainer/specconv's
 *     AllowedDevices, as crun does too): mknod of any device, /dev/null, zero, full, random,
 *     urandom, tty, ptmx, the ptys (c 136:*) and /dev/net/tun. Engines rely on it: podman's
 *     rules deny everything and allow none of these. (runc drops a default whose path
 *     linux.devices redefines; berth keeps it.)
 *
 * The program checks the rules after the last reset from the end of the list backwards and
 * returns at the first match. One known difference from runc's v1 emulator: a deny narrower than
 * an earlier wildcard allow ("allow c *:*", then "deny c 1:5") denies that device here, where v1
 * (and so runc) cannot punch such a hole and leaves it allowed; berth errs on the strict side. */
#include "cgroup/cgroup-internal.h"
#include "base/cleanup.h"
#include "base/json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FIELD "linux.resources.devices"
#define ACC_ALL (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE)

/* ---- parsing ---- */

static int parse_number(const struct json *d, const char *key, size_t i, int64_t *ret,
			struct berth_error **err)
{
	const struct json *j = bjson_object_get(d, key);
	int64_t v;
	*ret = CGROUP_DEV_ANY;
	if (!j || bjson_type_of(j) == JSON_NULL)
		return 0;
	if (!bjson_int64(j, &v) || v < -1 || v > UINT32_MAX)
		return berth_error_set(err, EINVAL, FIELD "[%zu].%s: must be a device number or -1 (any)",
				       i, key);
	*ret = v;
	return 0;
}

static int parse_rule(const struct json *d, size_t i, struct cgroup_device_rule *ret,
		      struct berth_error **err)
{
	if (bjson_type_of(d) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, FIELD "[%zu]: must be an object", i);
	const struct json *allow = bjson_object_get(d, "allow");
	if (bjson_type_of(allow) != JSON_BOOL)
		return berth_error_set(err, EINVAL, FIELD "[%zu].allow: must be true or false", i);
	ret->allow = bjson_bool(allow);

	const struct json *type = bjson_object_get(d, "type");
	const char *t = bjson_string(type);
	if (type && bjson_type_of(type) != JSON_NULL && (!t || strlen(t) != 1 || !strchr("abc", *t)))
		return berth_error_set(err, EINVAL, FIELD "[%zu].type: \"%s\" is not a, b or c", i,
				       t ? t : bjson_type_name(bjson_type_of(type)));
	ret->type = t ? *t : 'a';

	int r;
	if ((r = parse_number(d, "major", i, &ret->major, err)) < 0 ||
	    (r = parse_number(d, "minor", i, &ret->minor, err)) < 0)
		return r;

	const struct json *access = bjson_object_get(d, "access");
	const char *a = bjson_string(access);
	ret->access = ACC_ALL;
	if (!access || bjson_type_of(access) == JSON_NULL)
		return 0;
	if (!a)
		return berth_error_set(err, EINVAL, FIELD "[%zu].access: must be a string", i);
	if (!*a) /* runc refuses it too */
		return berth_error_set(err, EINVAL, FIELD "[%zu].access: must not be empty", i);
	ret->access = 0;
	for (const char *c = a; *c; c++) {
		unsigned bit = *c == 'r' ? BPF_DEVCG_ACC_READ
			       : *c == 'w' ? BPF_DEVCG_ACC_WRITE
			       : *c == 'm' ? BPF_DEVCG_ACC_MKNOD
					   : 0;
		if (!bit)
			return berth_error_set(err, EINVAL, FIELD "[%zu].access: \"%s\" is not a subset of rwm",
					       i, a);
		ret->access |= bit;
	}
	return 0;
}

int cgroup_devices_from_oci(const struct json *arr, struct cgroup_device_rule **ret,
			    size_t *ret_n, struct berth_error **err)
{
	size_t n = bjson_array_size(arr);
	if (arr && bjson_type_of(arr) != JSON_NULL && bjson_type_of(arr) != JSON_ARRAY)
		return berth_error_set(err, EINVAL, FIELD ": must be an array");
	_cleanup_free_ struct cgroup_device_rule *rules = NULL;
	if (n > 0 && !(rules = calloc(n, sizeof(*rules))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int r = parse_rule(bjson_array_get(arr, i), i, &rules[i], err);
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(rules);
	*ret_n = n;
	return 0;
}

/* ---- the program ---- */

#define INSN(c, d, s, o, i)                                                                        \
	((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define LDX_W(dst, src, o) INSN(BPF_LDX | BPF_W | BPF_MEM, dst, src, o, 0)
#define ALU32_IMM(op, dst, i) INSN(BPF_ALU | (op) | BPF_K, dst, 0, 0, i)
#define MOV32_REG(dst, src) INSN(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
#define JNE32_IMM(dst, i, o) INSN(BPF_JMP32 | BPF_JNE | BPF_K, dst, 0, o, i)
#define JNE32_REG(dst, src, o) INSN(BPF_JMP32 | BPF_JNE | BPF_X, dst, src, o, 0)
#define MOV64_IMM(dst, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, i)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* registers after the prologue: device type, requested access, major, minor */
enum { R_CTX = 1, R_TYPE = 2, R_ACC = 3, R_MAJOR = 4, R_MINOR = 5 };

static bool is_reset(const struct cgroup_device_rule *r)
{
	return r->type == 'a' && r->major == CGROUP_DEV_ANY && r->minor == CGROUP_DEV_ANY;
}

/* One rule: each check jumps past the block when it fails; the block ends with the decision. */
static size_t emit_rule(const struct cgroup_device_rule *rule, struct bpf_insn *out)
{
	struct bpf_insn b[8];
	size_t n = 0;
	if (rule->type != 'a')
		b[n++] = JNE32_IMM(R_TYPE, rule->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR,
				   0);
	if (rule->access != ACC_ALL) {
		/* (requested & allowed) != requested: something requested is not allowed */
		b[n++] = MOV32_REG(R_CTX, R_ACC);
		b[n++] = ALU32_IMM(BPF_AND, R_CTX, (int32_t)rule->access);
		b[n++] = JNE32_REG(R_CTX, R_ACC, 0);
	}
	if (rule->major != CGROUP_DEV_ANY)
		b[n++] = JNE32_IMM(R_MAJOR, (int32_t)(uint32_t)rule->major, 0);
	if (rule->minor != CGROUP_DEV_ANY)
		b[n++] = JNE32_IMM(R_MINOR, (int32_t)(uint32_t)rule->minor, 0);
	b[n++] = MOV64_IMM(0, rule->allow ? 1 : 0);
	b[n++] = EXIT();
	for (size_t k = 0; k + 2 < n; k++)
		if (BPF_CLASS(b[k].code) == BPF_JMP32)
			b[k].off = (int16_t)(n - k - 1);
	memcpy(out, b, n * sizeof(b[0]));
	return n;
}

/* runc's AllowedDevices, in its order: they follow the config's rules */
static const struct cgroup_device_rule runc_defaults[] = {
	{ true, 'c', CGROUP_DEV_ANY, CGROUP_DEV_ANY, BPF_DEVCG_ACC_MKNOD },
	{ true, 'b', CGROUP_DEV_ANY, CGROUP_DEV_ANY, BPF_DEVCG_ACC_MKNOD },
	{ true, 'c', 1, 3, ACC_ALL },              /* /dev/null */
	{ true, 'c', 1, 8, ACC_ALL },              /* /dev/random */
	{ true, 'c', 1, 7, ACC_ALL },              /* /dev/full */
	{ true, 'c', 5, 0, ACC_ALL },              /* /dev/tty */
	{ true, 'c', 1, 5, ACC_ALL },              /* /dev/zero */
	{ true, 'c', 1, 9, ACC_ALL },              /* /dev/urandom */
	{ true, 'c', 136, CGROUP_DEV_ANY, ACC_ALL }, /* /dev/pts/N */
	{ true, 'c', 5, 2, ACC_ALL },              /* /dev/ptmx */
	{ true, 'c', 10, 200, ACC_ALL },           /* /dev/net/tun */
};

int cgroup_devices_program(const struct cgroup_device_rule *rules, size_t n,
			   struct bpf_insn **ret, size_t *ret_n)
{
	size_t first = 0;
	bool default_allow = false;
	for (size_t i = 0; i < n; i++)
		if (is_reset(&rules[i])) {
			first = i + 1;
			default_allow = rules[i].allow;
		}
	/* a prologue of 6, at most 8 per rule, and the default's 2 */
	_cleanup_free_ struct bpf_insn *p =
		calloc(6 + 8 * (n - first + ARRAY_SIZE(runc_defaults)) + 2, sizeof(*p));
	if (!p)
		return -ENOMEM;
	size_t k = 0;
	/* ctx: struct bpf_cgroup_dev_ctx { u32 access_type (access << 16 | type), major, minor } */
	p[k++] = LDX_W(R_TYPE, R_CTX, 0);
	p[k++] = ALU32_IMM(BPF_AND, R_TYPE, 0xffff);
	p[k++] = LDX_W(R_ACC, R_CTX, 0);
	p[k++] = ALU32_IMM(BPF_RSH, R_ACC, 16);
	p[k++] = LDX_W(R_MAJOR, R_CTX, 4);
	p[k++] = LDX_W(R_MINOR, R_CTX, 8);
	for (size_t i = ARRAY_SIZE(runc_defaults); i > 0; i--)
		k += emit_rule(&runc_defaults[i - 1], p + k);
	for (size_t i = n; i > first; i--)
		k += emit_rule(&rules[i - 1], p + k);
	p[k++] = MOV64_IMM(0, default_allow ? 1 : 0);
	p[k++] = EXIT();
	*ret = TAKE_PTR(p);
	*ret_n = k;
	return 0;
}

/* ---- loading and attaching ---- */

static int bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static int load(const struct bpf_insn *insns, size_t n, struct berth_error **err)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	a.insns = (uint64_t)(uintptr_t)insns;
	a.insn_cnt = (uint32_t)n;
	a.license = (uint64_t)(uintptr_t) "Apache";
	int fd = bpf(BPF_PROG_LOAD, &a);
	if (fd >= 0 || errno != EINVAL)
		return fd >= 0 ? fd
			       : berth_error_setsys(err, errno, FIELD ": load the eBPF device filter");
	/* ask again with the verifier's log, to say why */
	const size_t log_size = 16384;
	_cleanup_free_ char *vlog = calloc(1, log_size);
	if (!vlog)
		return -ENOMEM;
	a.log_buf = (uint64_t)(uintptr_t)vlog;
	a.log_size = (uint32_t)log_size;
	a.log_level = 1;
	fd = bpf(BPF_PROG_LOAD, &a);
	if (fd >= 0)
		return fd;
	/* the verifier's verdict is the line before its "processed N insns" summary */
	vlog[log_size - 1] = '\0';
	char *end = strstr(vlog, "\nprocessed ");
	if (end)
		*end = '\0';
	const char *last = strrchr(vlog, '\n');
	return berth_error_set(err, EINVAL, FIELD ": the kernel refused the eBPF device filter: %.200s",
			       last ? last + 1 : vlog);
}

/* The ids of the device programs attached to the cgroup itself. */
static int query(int cgroup_fd, uint32_t ids[static 64], uint32_t *ret_n, struct berth_error **err)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.query.target_fd = (uint32_t)cgroup_fd;
	a.query.attach_type = BPF_CGROUP_DEVICE;
	a.query.prog_ids = (uint64_t)(uintptr_t)ids;
	a.query.prog_cnt = 64;
	if (bpf(BPF_PROG_QUERY, &a) < 0)
		return berth_error_setsys(err, errno, FIELD ": list the attached device filters");
	*ret_n = a.query.prog_cnt;
	return 0;
}

static int detach_id(int cgroup_fd, uint32_t id, struct berth_error **err)
{
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.prog_id = id;
	_cleanup_close_ int fd = bpf(BPF_PROG_GET_FD_BY_ID, &a);
	if (fd < 0)
		return errno == ENOENT ? 0 /* gone already */
				       : berth_error_setsys(err, errno, FIELD ": open device filter %" PRIu32,
							    id);
	memset(&a, 0, sizeof(a));
	a.target_fd = (uint32_t)cgroup_fd;
	a.attach_bpf_fd = (uint32_t)fd;
	a.attach_type = BPF_CGROUP_DEVICE;
	if (bpf(BPF_PROG_DETACH, &a) < 0 && errno != ENOENT)
		return berth_error_setsys(err, errno, FIELD ": detach the old device filter %" PRIu32,
					  id);
	return 0;
}

int cgroup_devices_attach(int cgroup_fd, const struct cgroup_device_rule *rules, size_t n,
			  struct berth_error **err)
{
	_cleanup_free_ struct bpf_insn *insns = NULL;
	size_t n_insns;
	uint32_t old[64], n_old = 0;
	int r = cgroup_devices_program(rules, n, &insns, &n_insns);
	if (r < 0)
		return r;
	if ((r = query(cgroup_fd, old, &n_old, err)) < 0)
		return r;
	_cleanup_close_ int prog = load(insns, n_insns, err);
	if (prog < 0)
		return prog;
	union bpf_attr a;
	memset(&a, 0, sizeof(a));
	a.target_fd = (uint32_t)cgroup_fd;
	a.attach_bpf_fd = (uint32_t)prog;
	a.attach_type = BPF_CGROUP_DEVICE;
	a.attach_flags = BPF_F_ALLOW_MULTI;
	if (bpf(BPF_PROG_ATTACH, &a) < 0)
		return berth_error_setsys(err, errno, FIELD ": attach the eBPF device filter");
	/* the new filter is in place before the old ones go: no moment without one */
	for (uint32_t i = 0; i < n_old && i < 64; i++)
		if ((r = detach_id(cgroup_fd, old[i], err)) < 0)
			return r;
	return 0;
}
