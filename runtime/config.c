#include "runtime/config-internal.h"
#include "base/cleanup.h"

#include <errno.h>
#include <linux/mount.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* ---- typed field access: every error names the full field path ---- */

static int type_error(const char *prefix, const char *key, const char *want, const struct json *j,
		      struct berth_error **err)
{
	return berth_error_set(err, EINVAL, "%s%s%s: must be %s, not %s", prefix, *prefix ? "." : "",
			       key, want, bjson_type_name(bjson_type_of(j)));
}

static const struct json *field(const struct json *obj, const char *key)
{
	const struct json *j = bjson_object_get(obj, key);
	return bjson_type_of(j) == JSON_NULL ? NULL : j;
}

static int get_string(const struct json *obj, const char *prefix, const char *key, bool required,
		      char **ret, struct berth_error **err)
{
	const struct json *j = field(obj, key);
	if (!j) {
		if (required)
			return berth_error_set(err, EINVAL, "%s%s%s: missing", prefix, *prefix ? "." : "",
					       key);
		return 0;
	}
	if (bjson_type_of(j) != JSON_STRING)
		return type_error(prefix, key, "a string", j, err);
	char *s = strdup(bjson_string(j));
	if (!s)
		return -ENOMEM;
	free(*ret);
	*ret = s;
	return 0;
}

static int get_bool(const struct json *obj, const char *prefix, const char *key, bool *ret,
		    struct berth_error **err)
{
	const struct json *j = field(obj, key);
	if (!j)
		return 0;
	if (bjson_type_of(j) != JSON_BOOL)
		return type_error(prefix, key, "a boolean", j, err);
	*ret = bjson_bool(j);
	return 0;
}

static int get_uint(const struct json *obj, const char *prefix, const char *key, uint64_t max,
		    uint64_t *ret, bool *ret_has, struct berth_error **err)
{
	const struct json *j = field(obj, key);
	if (!j)
		return 0;
	uint64_t v;
	if (!bjson_uint64(j, &v) || v > max) {
		char want[64];
		snprintf(want, sizeof(want), "an integer from 0 to %llu", (unsigned long long)max);
		if (bjson_type_of(j) != JSON_NUMBER)
			return type_error(prefix, key, want, j, err);
		return berth_error_set(err, EINVAL, "%s.%s: must be %s", prefix, key, want);
	}
	*ret = v;
	if (ret_has)
		*ret_has = true;
	return 0;
}

static int get_strv(const struct json *obj, const char *prefix, const char *key, char ***ret,
		    struct berth_error **err)
{
	const struct json *j = field(obj, key);
	if (!j)
		return 0;
	if (bjson_type_of(j) != JSON_ARRAY)
		return type_error(prefix, key, "an array of strings", j, err);
	size_t n = bjson_array_size(j);
	_cleanup_strv_ char **v = calloc(n + 1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *s = bjson_string(bjson_array_get(j, i));
		if (!s)
			return berth_error_set(err, EINVAL, "%s.%s[%zu]: must be a string, not %s", prefix,
					       key, i, bjson_type_name(bjson_type_of(bjson_array_get(j, i))));
		if (!(v[i] = strdup(s)))
			return -ENOMEM;
	}
	strv_free(*ret);
	*ret = TAKE_PTR(v);
	return 0;
}

static int expect_object(const struct json *j, const char *name, struct berth_error **err)
{
	if (j && bjson_type_of(j) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, "%s: must be an object, not %s", name,
				       bjson_type_name(bjson_type_of(j)));
	return 0;
}

/* An array field: absent is empty; anything else but an array is an error. */
static int expect_array(const struct json *j, const char *name, struct berth_error **err)
{
	if (j && bjson_type_of(j) != JSON_ARRAY)
		return berth_error_set(err, EINVAL, "%s: must be an array, not %s", name,
				       bjson_type_name(bjson_type_of(j)));
	return 0;
}

/* ---- fields that belong to later work: refused by name, never ignored ---- */

static bool is_empty(const struct json *j)
{
	switch (bjson_type_of(j)) {
	case JSON_ABSENT:
	case JSON_NULL:
		return true;
	case JSON_OBJECT:
		for (size_t i = 0; i < bjson_object_size(j); i++)
			if (!is_empty(bjson_object_value(j, i)))
				return false;
		return true;
	case JSON_ARRAY:
		return bjson_array_size(j) == 0;
	case JSON_STRING:
		return bjson_string(j)[0] == '\0';
	default:
		return false;
	}
}

struct unsupported {
	const char *parent;
	const char *key;
	const char *why;
	bool key_is_used; /* {"eth0": {}} asks for something although every value is empty */
};

static const struct unsupported unsupported_fields[] = {
	{ "process", "apparmorProfile", "AppArmor is not supported yet", false },
	{ "process", "selinuxLabel", "SELinux is not supported yet", false },
	{ "process", "ioPriority", "I/O priority is not supported yet", false },
	{ "process", "scheduler", "scheduler settings are not supported yet", false },
	{ "process", "execCPUAffinity", "CPU affinity is not supported yet", false },
	{ "linux", "mountLabel", "SELinux is not supported yet", false },
	{ "linux", "intelRdt", "Intel RDT is not supported", false },
	{ "linux", "personality", "personality is not supported yet", false },
	{ "linux", "memoryPolicy", "memory policy is not supported yet", false },
	{ "linux", "netDevices", "moving network devices is not supported yet", true },
};

/* parent_name: which section `node` is ("process", "linux", or NULL for the top level). */
static int refuse_unsupported(const struct json *node, const char *parent_name, const char *prefix,
			      struct berth_error **err)
{
	for (size_t i = 0; i < ARRAY_SIZE(unsupported_fields); i++) {
		const struct unsupported *u = &unsupported_fields[i];
		if ((u->parent == NULL) != (parent_name == NULL) ||
		    (u->parent && strcmp(u->parent, parent_name) != 0))
			continue;
		const struct json *j = bjson_object_get(node, u->key);
		bool used = !is_empty(j) || (u->key_is_used && bjson_object_size(j) > 0);
		if (used)
			return berth_error_set(err, ENOTSUP, "%s%s%s: %s", prefix, *prefix ? "." : "",
					       u->key, u->why);
	}
	return 0;
}

/* ---- names ---- */

static const struct {
	const char *name;
	int type;
} namespace_table[] = {
	{ "pid", CLONE_NEWPID },  { "network", CLONE_NEWNET }, { "mount", CLONE_NEWNS },
	{ "ipc", CLONE_NEWIPC },  { "uts", CLONE_NEWUTS },     { "user", CLONE_NEWUSER },
	{ "cgroup", CLONE_NEWCGROUP }, { "time", CLONE_NEWTIME },
};

const char *const oci_namespace_names[] = { "pid", "network", "mount", "ipc", "uts", "user",
					    "cgroup", "time", NULL };

int oci_namespace_type_from_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(namespace_table); i++)
		if (strcmp(namespace_table[i].name, name) == 0)
			return namespace_table[i].type;
	return -EINVAL;
}

const char *oci_namespace_name(int type)
{
	for (size_t i = 0; i < ARRAY_SIZE(namespace_table); i++)
		if (namespace_table[i].type == type)
			return namespace_table[i].name;
	return "?";
}

static const struct {
	const char *name;
	int resource;
} rlimit_table[] = {
	{ "RLIMIT_AS", RLIMIT_AS },		{ "RLIMIT_CORE", RLIMIT_CORE },
	{ "RLIMIT_CPU", RLIMIT_CPU },		{ "RLIMIT_DATA", RLIMIT_DATA },
	{ "RLIMIT_FSIZE", RLIMIT_FSIZE },	{ "RLIMIT_LOCKS", RLIMIT_LOCKS },
	{ "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },	{ "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE },
	{ "RLIMIT_NICE", RLIMIT_NICE },		{ "RLIMIT_NOFILE", RLIMIT_NOFILE },
	{ "RLIMIT_NPROC", RLIMIT_NPROC },	{ "RLIMIT_RSS", RLIMIT_RSS },
	{ "RLIMIT_RTPRIO", RLIMIT_RTPRIO },	{ "RLIMIT_RTTIME", RLIMIT_RTTIME },
	{ "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING }, { "RLIMIT_STACK", RLIMIT_STACK },
};

int oci_rlimit_from_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(rlimit_table); i++)
		if (strcmp(rlimit_table[i].name, name) == 0)
			return rlimit_table[i].resource;
	return -EINVAL;
}

/* ---- mount options ---- */

enum opt_kind { OPT_SET, OPT_CLEAR, OPT_PROPAGATION, OPT_BIND, OPT_ATTR_SET, OPT_ATTR_CLR, OPT_IDMAP };

static const struct {
	const char *name;
	enum opt_kind kind;
	unsigned long value;
} mount_options[] = {
	{ "defaults", OPT_SET, 0 },
	{ "ro", OPT_SET, MS_RDONLY },
	{ "rw", OPT_CLEAR, MS_RDONLY },
	{ "nosuid", OPT_SET, MS_NOSUID },
	{ "suid", OPT_CLEAR, MS_NOSUID },
	{ "nodev", OPT_SET, MS_NODEV },
	{ "dev", OPT_CLEAR, MS_NODEV },
	{ "noexec", OPT_SET, MS_NOEXEC },
	{ "exec", OPT_CLEAR, MS_NOEXEC },
	{ "sync", OPT_SET, MS_SYNCHRONOUS },
	{ "async", OPT_CLEAR, MS_SYNCHRONOUS },
	{ "dirsync", OPT_SET, MS_DIRSYNC },
	{ "remount", OPT_SET, MS_REMOUNT },
	{ "mand", OPT_SET, MS_MANDLOCK },
	{ "nomand", OPT_CLEAR, MS_MANDLOCK },
	{ "atime", OPT_CLEAR, MS_NOATIME },
	{ "noatime", OPT_SET, MS_NOATIME },
	{ "diratime", OPT_CLEAR, MS_NODIRATIME },
	{ "nodiratime", OPT_SET, MS_NODIRATIME },
	{ "relatime", OPT_SET, MS_RELATIME },
	{ "norelatime", OPT_CLEAR, MS_RELATIME },
	{ "strictatime", OPT_SET, MS_STRICTATIME },
	{ "nostrictatime", OPT_CLEAR, MS_STRICTATIME },
	{ "silent", OPT_SET, MS_SILENT },
	{ "loud", OPT_CLEAR, MS_SILENT },
	{ "lazytime", OPT_SET, MS_LAZYTIME },
	{ "nolazytime", OPT_CLEAR, MS_LAZYTIME },
	{ "iversion", OPT_SET, MS_I_VERSION },
	{ "noiversion", OPT_CLEAR, MS_I_VERSION },
	{ "bind", OPT_BIND, 0 },
	{ "rbind", OPT_BIND, MS_REC },
	{ "private", OPT_PROPAGATION, MS_PRIVATE },
	{ "rprivate", OPT_PROPAGATION, MS_PRIVATE | MS_REC },
	{ "shared", OPT_PROPAGATION, MS_SHARED },
	{ "rshared", OPT_PROPAGATION, MS_SHARED | MS_REC },
	{ "slave", OPT_PROPAGATION, MS_SLAVE },
	{ "rslave", OPT_PROPAGATION, MS_SLAVE | MS_REC },
	{ "unbindable", OPT_PROPAGATION, MS_UNBINDABLE },
	{ "runbindable", OPT_PROPAGATION, MS_UNBINDABLE | MS_REC },
	{ "rro", OPT_ATTR_SET, MOUNT_ATTR_RDONLY },
	{ "rrw", OPT_ATTR_CLR, MOUNT_ATTR_RDONLY },
	{ "rnosuid", OPT_ATTR_SET, MOUNT_ATTR_NOSUID },
	{ "rsuid", OPT_ATTR_CLR, MOUNT_ATTR_NOSUID },
	{ "rnodev", OPT_ATTR_SET, MOUNT_ATTR_NODEV },
	{ "rdev", OPT_ATTR_CLR, MOUNT_ATTR_NODEV },
	{ "rnoexec", OPT_ATTR_SET, MOUNT_ATTR_NOEXEC },
	{ "rexec", OPT_ATTR_CLR, MOUNT_ATTR_NOEXEC },
	{ "rnodiratime", OPT_ATTR_SET, MOUNT_ATTR_NODIRATIME },
	{ "rdiratime", OPT_ATTR_CLR, MOUNT_ATTR_NODIRATIME },
	{ "rnoatime", OPT_ATTR_SET, MOUNT_ATTR_NOATIME },
	{ "rrelatime", OPT_ATTR_SET, MOUNT_ATTR_RELATIME },
	{ "rstrictatime", OPT_ATTR_SET, MOUNT_ATTR_STRICTATIME },
	{ "idmap", OPT_IDMAP, 0 },
	{ "ridmap", OPT_IDMAP, 1 },
};

const char *const oci_mount_option_names[] = {
	"defaults", "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "sync", "async",
	"dirsync", "remount", "mand", "nomand", "atime", "noatime", "diratime", "nodiratime",
	"relatime", "norelatime", "strictatime", "nostrictatime", "silent", "loud", "lazytime",
	"nolazytime", "iversion", "noiversion", "bind", "rbind", "private", "rprivate", "shared",
	"rshared", "slave", "rslave", "unbindable", "runbindable", "rro", "rrw", "rnosuid", "rsuid",
	"rnodev", "rdev", "rnoexec", "rexec", "rnodiratime", "rdiratime", "rnoatime",
	"rrelatime", "rstrictatime", "idmap", "ridmap", NULL
};

bool oci_mount_option_apply(struct oci_mount *m, const char *opt)
{
	for (size_t i = 0; i < ARRAY_SIZE(mount_options); i++) {
		if (strcmp(mount_options[i].name, opt) != 0)
			continue;
		unsigned long v = mount_options[i].value;
		switch (mount_options[i].kind) {
		case OPT_SET:
			m->flags |= v;
			break;
		case OPT_CLEAR:
			m->flags &= ~v;
			break;
		case OPT_PROPAGATION:
			m->propagation = v;
			break;
		case OPT_BIND:
			m->bind = true;
			m->recursive_bind = v & MS_REC;
			break;
		case OPT_ATTR_SET:
			m->attr_set |= v;
			m->attr_clr &= ~v;
			break;
		case OPT_ATTR_CLR:
			m->attr_clr |= v;
			m->attr_set &= ~v;
			break;
		case OPT_IDMAP:
			m->idmap = true;
			m->idmap_recursive = v;
			break;
		}
		return true;
	}
	return false;
}

static int append_data(char **data, const char *opt)
{
	char *n = NULL;
	if (asprintf(&n, "%s%s%s", *data ? *data : "", *data ? "," : "", opt) < 0)
		return -ENOMEM;
	free(*data);
	*data = n;
	return 0;
}

/* ---- sections ---- */

static int parse_user(const struct json *user, const char *prefix, struct oci_process *p,
		      struct berth_error **err)
{
	char name[128];
	snprintf(name, sizeof(name), "%s.user", prefix);
	int r = expect_object(user, name, err);
	if (r < 0 || !user)
		return r;
	uint64_t v = 0;
	bool has = false;
	if ((r = get_uint(user, name, "uid", UINT32_MAX - 1, &v, &has, err)) < 0)
		return r;
	p->uid = has ? (uid_t)v : 0;
	has = false;
	if ((r = get_uint(user, name, "gid", UINT32_MAX - 1, &v, &has, err)) < 0)
		return r;
	p->gid = has ? (gid_t)v : 0;
	if ((r = get_uint(user, name, "umask", 0777, &v, &p->has_umask, err)) < 0)
		return r;
	p->umask = (mode_t)v;
	if (field(user, "username"))
		return berth_error_set(err, ENOTSUP, "%s.username: only used on Windows", name);

	const struct json *gids = field(user, "additionalGids");
	char gname[160];
	snprintf(gname, sizeof(gname), "%s.additionalGids", name);
	if ((r = expect_array(gids, gname, err)) < 0)
		return r;
	size_t n = bjson_array_size(gids);
	p->additional_gids = calloc(n ? n : 1, sizeof(gid_t));
	if (!p->additional_gids)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		uint64_t g;
		if (!bjson_uint64(bjson_array_get(gids, i), &g) || g >= UINT32_MAX)
			return berth_error_set(err, EINVAL, "%s[%zu]: must be a group id", gname, i);
		p->additional_gids[i] = (gid_t)g;
	}
	p->n_additional_gids = n;
	return 0;
}

static int parse_rlimits(const struct json *arr, const char *prefix, struct oci_process *p,
			 struct berth_error **err)
{
	char name[128];
	snprintf(name, sizeof(name), "%s.rlimits", prefix);
	int r = expect_array(arr, name, err);
	if (r < 0)
		return r;
	size_t n = bjson_array_size(arr);
	p->rlimits = calloc(n ? n : 1, sizeof(*p->rlimits));
	if (!p->rlimits)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct json *o = bjson_array_get(arr, i);
		char item[160];
		snprintf(item, sizeof(item), "%s[%zu]", name, i);
		if ((r = expect_object(o, item, err)) < 0)
			return r;
		_cleanup_free_ char *type = NULL;
		if ((r = get_string(o, item, "type", true, &type, err)) < 0)
			return r;
		int res = oci_rlimit_from_name(type);
		if (res < 0)
			return berth_error_set(err, EINVAL, "%s.type: unknown rlimit %s", item, type);
		for (size_t k = 0; k < i; k++)
			if (p->rlimits[k].resource == res)
				return berth_error_set(err, EINVAL, "%s.type: %s given twice", item, type);
		bool has_soft = false, has_hard = false;
		struct oci_rlimit *l = &p->rlimits[i];
		l->resource = res;
		if ((r = get_uint(o, item, "soft", UINT64_MAX, &l->soft, &has_soft, err)) < 0 ||
		    (r = get_uint(o, item, "hard", UINT64_MAX, &l->hard, &has_hard, err)) < 0)
			return r;
		if (!has_soft || !has_hard)
			return berth_error_set(err, EINVAL, "%s: soft and hard are both required", item);
		if (l->soft > l->hard)
			return berth_error_set(err, EINVAL, "%s: soft %llu is above hard %llu", item,
					       (unsigned long long)l->soft,
					       (unsigned long long)l->hard);
		p->n_rlimits = i + 1;
	}
	return 0;
}

static int parse_console_size(const struct json *cs, const char *prefix, struct oci_process *p,
			      struct berth_error **err)
{
	char name[128];
	snprintf(name, sizeof(name), "%s.consoleSize", prefix);
	int r = expect_object(cs, name, err);
	if (r < 0 || !cs)
		return r;
	uint64_t h = 0, w = 0;
	if ((r = get_uint(cs, name, "height", UINT16_MAX, &h, NULL, err)) < 0 ||
	    (r = get_uint(cs, name, "width", UINT16_MAX, &w, NULL, err)) < 0)
		return r;
	p->has_console_size = true;
	p->console_height = (unsigned short)h;
	p->console_width = (unsigned short)w;
	return 0;
}

int oci_process_parse(const struct json *node, const char *prefix, struct oci_process *p,
		      struct berth_error **err)
{
	int r;
	if (!node)
		return berth_error_set(err, EINVAL, "%s: missing", prefix);
	if ((r = expect_object(node, prefix, err)) < 0 ||
	    (r = refuse_unsupported(node, "process", prefix, err)) < 0)
		return r;
	if ((r = get_bool(node, prefix, "terminal", &p->terminal, err)) < 0 ||
	    (r = parse_console_size(field(node, "consoleSize"), prefix, p, err)) < 0 ||
	    (r = parse_user(field(node, "user"), prefix, p, err)) < 0 ||
	    (r = get_strv(node, prefix, "args", &p->args, err)) < 0 ||
	    (r = get_strv(node, prefix, "env", &p->env, err)) < 0 ||
	    (r = get_string(node, prefix, "cwd", true, &p->cwd, err)) < 0 ||
	    (r = parse_rlimits(field(node, "rlimits"), prefix, p, err)) < 0 ||
	    (r = get_bool(node, prefix, "noNewPrivileges", &p->no_new_privileges, err)) < 0)
		return r;
	char caps_name[128];
	snprintf(caps_name, sizeof(caps_name), "%s.capabilities", prefix);
	if ((r = caps_parse(bjson_object_get(node, "capabilities"), caps_name, &p->caps, err)) < 0)
		return r;
	if (field(node, "commandLine"))
		return berth_error_set(err, ENOTSUP, "%s.commandLine: only used on Windows", prefix);
	if (!p->args || !p->args[0] || !p->args[0][0])
		return berth_error_set(err, EINVAL, "%s.args: must name the program to run", prefix);
	if (p->cwd[0] != '/')
		return berth_error_set(err, EINVAL, "%s.cwd: %s: must be an absolute path", prefix,
				       p->cwd);
	for (char **e = p->env; e && *e; e++)
		if (!strchr(*e, '=') || **e == '=')
			return berth_error_set(err, EINVAL, "%s.env: \"%s\": must be KEY=VALUE", prefix,
					       *e);

	const struct json *oom = field(node, "oomScoreAdj");
	if (oom) {
		int64_t v;
		if (!bjson_int64(oom, &v) || v < -1000 || v > 1000)
			return berth_error_set(err, EINVAL,
					       "%s.oomScoreAdj: must be an integer from -1000 to 1000",
					       prefix);
		p->has_oom_score_adj = true;
		p->oom_score_adj = (int)v;
	}
	return 0;
}

void oci_process_clear(struct oci_process *p)
{
	free(p->additional_gids);
	strv_free(p->args);
	strv_free(p->env);
	free(p->cwd);
	free(p->rlimits);
	*p = (struct oci_process){ 0 };
}

static int parse_root(const struct json *root, struct oci_config *c, struct berth_error **err)
{
	int r;
	if (!root)
		return berth_error_set(err, EINVAL, "root: missing");
	if ((r = expect_object(root, "root", err)) < 0 ||
	    (r = get_string(root, "root", "path", true, &c->root_path, err)) < 0 ||
	    (r = get_bool(root, "root", "readonly", &c->root_readonly, err)) < 0)
		return r;
	if (!c->root_path[0])
		return berth_error_set(err, EINVAL, "root.path: must not be empty");
	return 0;
}

static int parse_mount_options(const struct json *opts, const char *item, struct oci_mount *m,
			       struct berth_error **err)
{
	int r;
	char name[128];
	snprintf(name, sizeof(name), "%s.options", item);
	if ((r = expect_array(opts, name, err)) < 0)
		return r;
	for (size_t k = 0; k < bjson_array_size(opts); k++) {
		const char *o = bjson_string(bjson_array_get(opts, k));
		if (!o)
			return berth_error_set(err, EINVAL, "%s[%zu]: must be a string", name, k);
		if (!oci_mount_option_apply(m, o) && (r = append_data(&m->data, o)) < 0)
			return r;
	}
	if (m->flags & MS_REMOUNT)
		return berth_error_set(err, EINVAL, "%s: remount is not a mount option for a new mount",
				       name);
	return 0;
}

static int parse_mounts(const struct json *arr, struct oci_config *c, struct berth_error **err)
{
	int r = expect_array(arr, "mounts", err);
	if (r < 0)
		return r;
	size_t n = bjson_array_size(arr);
	c->mounts = calloc(n ? n : 1, sizeof(*c->mounts));
	if (!c->mounts)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct json *o = bjson_array_get(arr, i);
		struct oci_mount *m = &c->mounts[i];
		c->n_mounts = i + 1;
		char item[64];
		snprintf(item, sizeof(item), "mounts[%zu]", i);
		if ((r = expect_object(o, item, err)) < 0 ||
		    (r = get_string(o, item, "destination", true, &m->destination, err)) < 0 ||
		    (r = get_string(o, item, "source", false, &m->source, err)) < 0 ||
		    (r = get_string(o, item, "type", false, &m->type, err)) < 0 ||
		    (r = parse_mount_options(field(o, "options"), item, m, err)) < 0)
			return r;
		if (m->destination[0] != '/')
			return berth_error_set(err, EINVAL, "%s.destination: %s: must be an absolute path",
					       item, m->destination);
		if (m->type && strcmp(m->type, "bind") == 0)
			m->bind = true;
		if (field(o, "uidMappings") || field(o, "gidMappings"))
			return berth_error_set(err, ENOTSUP,
					       "%s: uidMappings/gidMappings: a mount's own id maps are not supported yet (the idmap option maps through the container's user namespace)",
					       item);
		if (m->bind && (!m->source || !m->source[0]))
			return berth_error_set(err, EINVAL, "%s.source: a bind mount needs a source", item);
		if (!m->bind && (!m->type || !m->type[0]))
			return berth_error_set(err, EINVAL, "%s.type: missing (and the mount is not a bind)",
					       item);
	}
	return 0;
}

static int parse_namespaces(const struct json *arr, struct oci_config *c, struct berth_error **err)
{
	int r = expect_array(arr, "linux.namespaces", err);
	if (r < 0)
		return r;
	size_t n = bjson_array_size(arr);
	c->namespaces = calloc(n ? n : 1, sizeof(*c->namespaces));
	if (!c->namespaces)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct json *o = bjson_array_get(arr, i);
		struct oci_namespace *ns = &c->namespaces[i];
		c->n_namespaces = i + 1;
		char item[64];
		snprintf(item, sizeof(item), "linux.namespaces[%zu]", i);
		_cleanup_free_ char *type = NULL;
		if ((r = expect_object(o, item, err)) < 0 ||
		    (r = get_string(o, item, "type", true, &type, err)) < 0 ||
		    (r = get_string(o, item, "path", false, &ns->path, err)) < 0)
			return r;
		ns->type = oci_namespace_type_from_name(type);
		if (ns->type < 0)
			return berth_error_set(err, EINVAL, "%s.type: unknown namespace type \"%s\"", item,
					       type);
		for (size_t k = 0; k < i; k++)
			if (c->namespaces[k].type == ns->type)
				return berth_error_set(err, EINVAL, "%s.type: %s namespace given twice",
						       item, type);
		if (ns->type == CLONE_NEWUSER && ns->path)
			return berth_error_set(err, ENOTSUP,
					       "%s.path: joining an existing user namespace is not supported yet",
					       item);
		if (ns->path && !ns->path[0])
			ns->path = (free(ns->path), NULL); /* "" means a new namespace, as in runc */
		if (ns->path && ns->path[0] != '/')
			return berth_error_set(err, EINVAL, "%s.path: %s: must be an absolute path", item,
					       ns->path);
		if (ns->path && ns->type == CLONE_NEWNS)
			return berth_error_set(err, ENOTSUP,
					       "%s.path: joining an existing mount namespace is not supported",
					       item);
	}
	const struct oci_namespace *mnt = oci_config_namespace(c, CLONE_NEWNS);
	if (!mnt)
		return berth_error_set(err, EINVAL,
				       "linux.namespaces: a mount namespace is required (berth never changes the host's mounts)");
	return 0;
}

/* No empty, "." or ".." components (so a name stays where it says it is). */
static bool path_is_clean(const char *p)
{
	if (!*p)
		return false;
	while (*p) {
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p = *e ? e + 1 : e;
		if (*e && !*p)
			return false; /* trailing slash */
	}
	return true;
}

static int parse_device(const struct json *o, const char *item, struct oci_device *d,
			struct berth_error **err)
{
	int r;
	_cleanup_free_ char *type = NULL;
	uint64_t v = 0;
	if ((r = expect_object(o, item, err)) < 0 ||
	    (r = get_string(o, item, "path", true, &d->path, err)) < 0 ||
	    (r = get_string(o, item, "type", true, &type, err)) < 0)
		return r;
	if (strcmp(type, "c") == 0 || strcmp(type, "u") == 0)
		d->type = S_IFCHR;
	else if (strcmp(type, "b") == 0)
		d->type = S_IFBLK;
	else if (strcmp(type, "p") == 0)
		d->type = S_IFIFO;
	else
		return berth_error_set(err, EINVAL, "%s.type: \"%s\": must be c, u, b or p", item, type);
	if (strncmp(d->path, "/dev/", 5) != 0 || !path_is_clean(d->path + 5))
		return berth_error_set(err, EINVAL, "%s.path: %s: must be a path under /dev", item,
				       d->path);
	bool has_major = false, has_minor = false;
	if ((r = get_uint(o, item, "major", UINT32_MAX, &v, &has_major, err)) < 0)
		return r;
	d->major = (uint32_t)v;
	if ((r = get_uint(o, item, "minor", UINT32_MAX, &v, &has_minor, err)) < 0)
		return r;
	d->minor = (uint32_t)v;
	if (d->type != S_IFIFO && (!has_major || !has_minor))
		return berth_error_set(err, EINVAL, "%s: major and minor are required for type %s", item,
				       type);
	if ((r = get_uint(o, item, "fileMode", 07777, &v, &d->has_mode, err)) < 0)
		return r;
	d->mode = (mode_t)v;
	if ((r = get_uint(o, item, "uid", UINT32_MAX - 1, &v, &d->has_uid, err)) < 0)
		return r;
	d->uid = (uid_t)v;
	if ((r = get_uint(o, item, "gid", UINT32_MAX - 1, &v, &d->has_gid, err)) < 0)
		return r;
	d->gid = (gid_t)v;
	return 0;
}

static int parse_devices(const struct json *arr, struct oci_config *c, struct berth_error **err)
{
	int r = expect_array(arr, "linux.devices", err);
	if (r < 0)
		return r;
	size_t n = bjson_array_size(arr);
	c->devices = calloc(n ? n : 1, sizeof(*c->devices));
	if (!c->devices)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char item[64];
		snprintf(item, sizeof(item), "linux.devices[%zu]", i);
		c->n_devices = i + 1;
		if ((r = parse_device(bjson_array_get(arr, i), item, &c->devices[i], err)) < 0)
			return r;
	}
	return 0;
}

static int parse_propagation(const struct json *lnx, struct oci_config *c, struct berth_error **err)
{
	_cleanup_free_ char *prop = NULL;
	int r = get_string(lnx, "linux", "rootfsPropagation", false, &prop, err);
	if (r < 0 || !prop)
		return r;
	struct oci_mount probe = { 0 };
	if (!oci_mount_option_apply(&probe, prop) || !probe.propagation)
		return berth_error_set(err, EINVAL,
				       "linux.rootfsPropagation: \"%s\": must be one of private, rprivate, shared, rshared, slave, rslave, unbindable, runbindable",
				       prop);
	c->rootfs_propagation = probe.propagation;
	return 0;
}

/* Only namespaced sysctls may be set, and only when the container has that namespace: anything
 * else would change the host. */
static int check_sysctl(const struct oci_config *c, const char *key, struct berth_error **err)
{
	static const char *const ipc_keys[] = { "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",
						"kernel.sem", "kernel.shmall", "kernel.shmmax",
						"kernel.shmmni", "kernel.shm_rmid_forced" };
	if (!key[0] || key[0] == '.' || key[strlen(key) - 1] == '.' || strchr(key, '/') ||
	    strstr(key, ".."))
		return berth_error_set(err, EINVAL, "linux.sysctl: \"%s\": not a sysctl name", key);
	int need = 0;
	for (size_t i = 0; i < ARRAY_SIZE(ipc_keys); i++)
		if (strcmp(key, ipc_keys[i]) == 0)
			need = CLONE_NEWIPC;
	if (strncmp(key, "fs.mqueue.", 10) == 0)
		need = CLONE_NEWIPC;
	else if (strncmp(key, "net.", 4) == 0)
		need = CLONE_NEWNET;
	else if (strcmp(key, "kernel.hostname") == 0 || strcmp(key, "kernel.domainname") == 0)
		need = CLONE_NEWUTS;
	if (!need)
		return berth_error_set(err, EINVAL,
				       "linux.sysctl: %s: not namespaced; setting it would change the host",
				       key);
	if (!oci_config_namespace(c, need))
		return berth_error_set(err, EINVAL,
				       "linux.sysctl: %s: needs the container's own %s namespace", key,
				       oci_namespace_name(need));
	return 0;
}

static int parse_sysctl(const struct json *obj, struct oci_config *c, struct berth_error **err)
{
	int r = expect_object(obj, "linux.sysctl", err);
	if (r < 0)
		return r;
	size_t n = bjson_object_size(obj);
	c->sysctls = calloc(n ? n : 1, sizeof(*c->sysctls));
	if (!c->sysctls)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *key = bjson_object_key(obj, i);
		const char *val = bjson_string(bjson_object_value(obj, i));
		if (!val)
			return berth_error_set(err, EINVAL, "linux.sysctl.%s: must be a string", key);
		if ((r = check_sysctl(c, key, err)) < 0)
			return r;
		c->sysctls[i].key = strdup(key);
		c->sysctls[i].value = strdup(val);
		c->n_sysctls = i + 1;
		if (!c->sysctls[i].key || !c->sysctls[i].value)
			return -ENOMEM;
	}
	return 0;
}

static int parse_time_offset(const struct json *offs, const char *key, struct oci_time_offset *t,
			     struct berth_error **err)
{
	const struct json *o = field(offs, key);
	char name[64];
	snprintf(name, sizeof(name), "linux.timeOffsets.%s", key);
	int r = expect_object(o, name, err);
	if (r < 0 || !o)
		return r;
	const struct json *s = field(o, "secs");
	if (s && !bjson_int64(s, &t->secs))
		return berth_error_set(err, EINVAL, "%s.secs: must be an integer", name);
	uint64_t ns = 0;
	if ((r = get_uint(o, name, "nanosecs", 999999999, &ns, NULL, err)) < 0)
		return r;
	t->nanosecs = (uint32_t)ns;
	t->set = true;
	return 0;
}

static int parse_id_mappings(const struct json *arr, const char *name, struct oci_id_mapping **ret,
			     size_t *ret_n, struct berth_error **err)
{
	int r = expect_array(arr, name, err);
	if (r < 0)
		return r;
	size_t n = bjson_array_size(arr);
	if (n > 340) /* the kernel's limit of lines in uid_map */
		return berth_error_set(err, EINVAL, "%s: at most 340 mappings", name);
	struct oci_id_mapping *v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	*ret = v;
	for (size_t i = 0; i < n; i++) {
		const struct json *o = bjson_array_get(arr, i);
		char item[64];
		uint64_t cid = 0, hid = 0, size = 0;
		bool has_c = false, has_h = false, has_s = false;
		snprintf(item, sizeof(item), "%s[%zu]", name, i);
		if ((r = expect_object(o, item, err)) < 0 ||
		    (r = get_uint(o, item, "containerID", UINT32_MAX - 1, &cid, &has_c, err)) < 0 ||
		    (r = get_uint(o, item, "hostID", UINT32_MAX - 1, &hid, &has_h, err)) < 0 ||
		    (r = get_uint(o, item, "size", UINT32_MAX, &size, &has_s, err)) < 0)
			return r;
		if (!has_c || !has_h || !has_s || size == 0)
			return berth_error_set(err, EINVAL,
					       "%s: containerID, hostID and a size above 0 are required",
					       item);
		if (cid + size > UINT32_MAX || hid + size > UINT32_MAX)
			return berth_error_set(err, EINVAL, "%s: the range passes 2^32", item);
		v[i] = (struct oci_id_mapping){ (uint32_t)cid, (uint32_t)hid, (uint32_t)size };
		*ret_n = i + 1;
	}
	return 0;
}

static int check_user_namespace(const struct oci_config *c, struct berth_error **err)
{
	const struct oci_namespace *user = oci_config_namespace(c, CLONE_NEWUSER);
	bool maps = c->n_uid_mappings || c->n_gid_mappings;
	if (!user && maps)
		return berth_error_set(err, EINVAL,
				       "linux.uidMappings: mappings need a user namespace in linux.namespaces");
	if (user && (!c->n_uid_mappings || !c->n_gid_mappings))
		return berth_error_set(err, EINVAL,
				       "linux.uidMappings: a new user namespace needs uidMappings and gidMappings");
	for (size_t i = 0; i < c->n_mounts; i++) {
		if (!c->mounts[i].idmap)
			continue;
		if (!user)
			return berth_error_set(err, EINVAL,
					       "mounts[%zu].options: idmap needs a user namespace in linux.namespaces",
					       i);
		if (!c->mounts[i].bind)
			return berth_error_set(err, EINVAL,
					       "mounts[%zu].options: idmap is for bind mounts", i);
	}
	for (size_t i = 0; user && i < c->n_namespaces; i++)
		if (c->namespaces[i].path)
			return berth_error_set(err, ENOTSUP,
					       "linux.namespaces[%zu].path: joining a namespace from a new user namespace is not supported yet",
					       i);
	return 0;
}

static int parse_linux(const struct json *lnx, struct oci_config *c, struct berth_error **err)
{
	int r;
	if ((r = expect_object(lnx, "linux", err)) < 0)
		return r;
	if (!lnx)
		return berth_error_set(err, EINVAL,
				       "linux: missing (it holds the namespaces; a mount namespace is required)");
	if ((r = parse_namespaces(field(lnx, "namespaces"), c, err)) < 0 ||
	    (r = parse_devices(field(lnx, "devices"), c, err)) < 0 ||
	    (r = get_strv(lnx, "linux", "maskedPaths", &c->masked_paths, err)) < 0 ||
	    (r = get_strv(lnx, "linux", "readonlyPaths", &c->readonly_paths, err)) < 0 ||
	    (r = parse_propagation(lnx, c, err)) < 0 ||
	    (r = get_string(lnx, "linux", "cgroupsPath", false, &c->cgroups_path, err)) < 0 ||
	    (r = parse_sysctl(field(lnx, "sysctl"), c, err)) < 0)
		return r;
	if ((r = parse_id_mappings(field(lnx, "uidMappings"), "linux.uidMappings", &c->uid_mappings,
				   &c->n_uid_mappings, err)) < 0 ||
	    (r = parse_id_mappings(field(lnx, "gidMappings"), "linux.gidMappings", &c->gid_mappings,
				   &c->n_gid_mappings, err)) < 0 ||
	    (r = check_user_namespace(c, err)) < 0)
		return r;
	const struct json *res = field(lnx, "resources");
	if (res && (r = cgroup_settings_from_oci(res, &c->resources, err)) < 0)
		return r;
	const struct json *sc = field(lnx, "seccomp");
	if (sc && (r = oci_seccomp_parse(sc, "linux.seccomp", &c->seccomp, err)) < 0)
		return r;
	for (char **p = c->masked_paths; p && *p; p++)
		if ((*p)[0] != '/')
			return berth_error_set(err, EINVAL, "linux.maskedPaths: %s: must be absolute", *p);
	for (char **p = c->readonly_paths; p && *p; p++)
		if ((*p)[0] != '/')
			return berth_error_set(err, EINVAL, "linux.readonlyPaths: %s: must be absolute",
					       *p);
	const struct json *offs = field(lnx, "timeOffsets");
	if ((r = expect_object(offs, "linux.timeOffsets", err)) < 0 ||
	    (r = parse_time_offset(offs, "boottime", &c->boottime, err)) < 0 ||
	    (r = parse_time_offset(offs, "monotonic", &c->monotonic, err)) < 0)
		return r;
	const struct oci_namespace *time_ns = oci_config_namespace(c, CLONE_NEWTIME);
	if ((c->boottime.set || c->monotonic.set) && (!time_ns || time_ns->path))
		return berth_error_set(err, EINVAL,
				       "linux.timeOffsets: needs a new time namespace (type time, no path)");
	return 0;
}

static int check_version(const char *v, struct berth_error **err)
{
	if (strncmp(v, "1.", 2) != 0)
		return berth_error_set(err, EINVAL,
				       "ociVersion: \"%s\": berth implements runtime-spec 1.x", v);
	return 0;
}

static int check_consistency(struct oci_config *c, struct berth_error **err)
{
	/* runc reads "" as unset */
	if (c->hostname && !c->hostname[0])
		c->hostname = (free(c->hostname), NULL);
	if (c->domainname && !c->domainname[0])
		c->domainname = (free(c->domainname), NULL);
	const struct oci_namespace *uts = oci_config_namespace(c, CLONE_NEWUTS);
	if ((c->hostname || c->domainname) && (!uts || uts->path))
		return berth_error_set(err, EINVAL, "%s: needs a new uts namespace",
				       c->hostname ? "hostname" : "domainname");
	return 0;
}

int oci_config_parse(const char *text, struct oci_config **ret, struct berth_error **err)
{
	_cleanup_(oci_config_freep) struct oci_config *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	int r = bjson_parse(text, &c->tree, err);
	if (r < 0)
		return r;
	const struct json *root = c->tree;
	if (bjson_type_of(root) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, "config: must be a JSON object, not %s",
				       bjson_type_name(bjson_type_of(root)));
	if ((r = get_string(root, "", "ociVersion", true, &c->oci_version, err)) < 0 ||
	    (r = check_version(c->oci_version, err)) < 0 ||
	    (r = refuse_unsupported(root, NULL, "", err)) < 0 ||
	    (r = refuse_unsupported(field(root, "linux"), "linux", "linux", err)) < 0 ||
	    (r = parse_root(field(root, "root"), c, err)) < 0 ||
	    (r = oci_process_parse(field(root, "process"), "process", &c->process, err)) < 0 ||
	    (r = get_string(root, "", "hostname", false, &c->hostname, err)) < 0 ||
	    (r = get_string(root, "", "domainname", false, &c->domainname, err)) < 0 ||
	    (r = parse_mounts(field(root, "mounts"), c, err)) < 0 ||
	    (r = parse_linux(field(root, "linux"), c, err)) < 0 ||
	    (r = hooks_parse(field(root, "hooks"), &c->hooks, err)) < 0 ||
	    (r = check_consistency(c, err)) < 0)
		return r;
	c->hooks_node = field(root, "hooks");
	const struct json *ann = field(root, "annotations");
	if ((r = expect_object(ann, "annotations", err)) < 0)
		return r;
	for (size_t i = 0; i < bjson_object_size(ann); i++)
		if (!bjson_string(bjson_object_value(ann, i)))
			return berth_error_set(err, EINVAL, "annotations.%s: must be a string",
					       bjson_object_key(ann, i));
	c->annotations = ann;
	*ret = TAKE_PTR(c);
	return 0;
}

const struct oci_namespace *oci_config_namespace(const struct oci_config *c, int type)
{
	for (size_t i = 0; i < c->n_namespaces; i++)
		if (c->namespaces[i].type == type)
			return &c->namespaces[i];
	return NULL;
}

struct oci_config *oci_config_free(struct oci_config *c)
{
	if (!c)
		return NULL;
	bjson_free(c->tree);
	hooks_clear(&c->hooks);
	oci_seccomp_free(c->seccomp);
	cgroup_settings_free(c->resources);
	free(c->uid_mappings);
	free(c->gid_mappings);
	free(c->oci_version);
	free(c->root_path);
	free(c->hostname);
	free(c->domainname);
	oci_process_clear(&c->process);
	for (size_t i = 0; i < c->n_mounts; i++) {
		free(c->mounts[i].destination);
		free(c->mounts[i].source);
		free(c->mounts[i].type);
		free(c->mounts[i].data);
	}
	free(c->mounts);
	for (size_t i = 0; i < c->n_namespaces; i++)
		free(c->namespaces[i].path);
	free(c->namespaces);
	for (size_t i = 0; i < c->n_devices; i++)
		free(c->devices[i].path);
	free(c->devices);
	strv_free(c->masked_paths);
	strv_free(c->readonly_paths);
	free(c->cgroups_path);
	for (size_t i = 0; i < c->n_sysctls; i++) {
		free(c->sysctls[i].key);
		free(c->sysctls[i].value);
	}
	free(c->sysctls);
	free(c);
	return NULL;
}

void oci_config_freep(struct oci_config **c)
{
	*c = oci_config_free(*c);
}
