/* config.json for a CRI container: the runtime's defaults, the image's config, the request. */
#include "cri/ocispec.h"
#include "base/cleanup.h"
#include "base/json.h"
#include "runtime/caps-internal.h"
#include "runtime/runtime.h"
#include "runtime/sandbox-seccomp.h"
#include "runtime/seccomp-internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/capability.h>
#include <sys/sysmacros.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ETC_FILE_MAX (4 << 20) /* /etc/passwd or /etc/group bigger than this is refused */
#define SECCOMP_FILE_MAX (1 << 20)
#define HOST_DEV_DEPTH 4 /* privileged: how deep /dev is walked for device nodes */

static const char *const WSC = "config.linux.security_context";

/* ---- strings ---- */

static size_t strv_len(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

/* Appends copies of the strings of a JSON array (non-strings refused). */
static int append_json_strings(char ***v, size_t *n, const struct json *arr, const char *what,
			       struct berth_error **err)
{
	size_t add = bjson_array_size(arr);
	char **nv = realloc(*v, (*n + add + 1) * sizeof(char *));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	for (size_t i = 0; i < add; i++) {
		const char *s = bjson_string(bjson_array_get(arr, i));
		if (!s)
			return berth_error_set(err, EINVAL, "the image's %s[%zu]: not a string",
					       what, i);
		if (!(nv[*n] = strdup(s)))
			return -ENOMEM;
		nv[++*n] = NULL;
	}
	nv[*n] = NULL;
	return 0;
}

static int append_strv(char ***v, size_t *n, char *const *add)
{
	size_t k = strv_len(add);
	char **nv = realloc(*v, (*n + k + 1) * sizeof(char *));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	for (size_t i = 0; i < k; i++) {
		if (!(nv[*n] = strdup(add[i])))
			return -ENOMEM;
		nv[++*n] = NULL;
	}
	nv[*n] = NULL;
	return 0;
}

int ocispec_command(const struct json *image_config, char *const *command, char *const *args,
		    char ***ret, struct berth_error **err)
{
	_cleanup_strv_ char **v = calloc(1, sizeof(char *));
	size_t n = 0;
	int r = v ? 0 : -ENOMEM;
	if (r == 0 && strv_len(command) > 0) {
		r = append_strv(&v, &n, command);
		if (r == 0)
			r = append_strv(&v, &n, args);
	} else if (r == 0) {
		const struct json *ep = bjson_object_get(image_config, "Entrypoint");
		const struct json *cmd = bjson_object_get(image_config, "Cmd");
		if (bjson_type_of(ep) == JSON_ARRAY)
			r = append_json_strings(&v, &n, ep, "Entrypoint", err);
		if (r == 0 && strv_len(args) > 0)
			r = append_strv(&v, &n, args);
		else if (r == 0 && bjson_type_of(cmd) == JSON_ARRAY)
			r = append_json_strings(&v, &n, cmd, "Cmd", err);
	}
	if (r < 0)
		return r;
	if (n == 0)
		return berth_error_set(
			err, EINVAL,
			"config.command: nothing to run (neither the request nor the "
			"image's Entrypoint/Cmd names a program)");
	*ret = TAKE_PTR(v);
	return 0;
}

/* Sets KEY=VALUE in env, replacing an entry with the same key (Kubernetes: the container's
 * variables override the image's). */
static int env_set(char ***env, size_t *n, const char *kv, bool replace)
{
	size_t klen = strcspn(kv, "=");
	for (size_t i = 0; i < *n; i++) {
		if (strncmp((*env)[i], kv, klen) == 0 && (*env)[i][klen] == '=') {
			if (!replace)
				return 0;
			char *copy = strdup(kv);
			if (!copy)
				return -ENOMEM;
			free((*env)[i]);
			(*env)[i] = copy;
			return 0;
		}
	}
	return append_strv(env, n, (char *const[]){ (char *)kv, NULL });
}

static int build_env(const struct ocispec_input *in, char ***ret, struct berth_error **err)
{
	_cleanup_strv_ char **env = calloc(1, sizeof(char *));
	size_t n = 0;
	if (!env)
		return -ENOMEM;
	const struct json *img = bjson_object_get(in->image_config, "Env");
	int r = 0;
	for (size_t i = 0; r == 0 && i < bjson_array_size(img); i++) {
		const char *s = bjson_string(bjson_array_get(img, i));
		if (!s || !strchr(s, '='))
			return berth_error_set(err, EINVAL, "the image's Env[%zu]: not KEY=VALUE",
					       i);
		r = env_set(&env, &n, s, true);
	}
	for (char *const *e = in->req->envs; r == 0 && e && *e; e++)
		r = env_set(&env, &n, *e, true);
	if (r == 0)
		r = env_set(&env, &n,
			    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			    false);
	if (r == 0 && in->hostname) {
		_cleanup_free_ char *h = NULL;
		r = asprintf(&h, "HOSTNAME=%s", in->hostname) < 0 ? -ENOMEM
								  : env_set(&env, &n, h, false);
	}
	if (r == 0 && in->req->tty)
		r = env_set(&env, &n, "TERM=xterm", false);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(env);
	return 0;
}

/* ---- users ---- */

/* A regular file of at most max bytes, whole and NUL-terminated; what names it in messages. */
static int read_regular(int fd, const char *what, size_t max, char **ret,
			struct berth_error **err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return berth_error_setsys(err, errno, "%s", what);
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max)
		return berth_error_set(err, EINVAL, "%s: not a regular file under %zu bytes", what,
				       max);
	_cleanup_free_ char *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return berth_error_setsys(err, errno, "reading %s", what);
		if (k == 0)
			break;
		got += (size_t)k;
	}
	buf[got] = '\0';
	*ret = TAKE_PTR(buf);
	return 0;
}

static int read_in_root(const char *rootfs, const char *path, char **ret, struct berth_error **err)
{
	_cleanup_close_ int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return berth_error_setsys(err, errno, "%s", rootfs);
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK, /* a FIFO must not hang us */
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	_cleanup_close_ int fd = (int)syscall(SYS_openat2, root, path, &how, sizeof(how));
	if (fd < 0)
		return errno == ENOENT ? -ENOENT
				       : berth_error_setsys(err, errno, "the image's /%s", path);
	char what[128];
	snprintf(what, sizeof(what), "the image's /%s", path);
	return read_regular(fd, what, ETC_FILE_MAX, ret, err);
}

static bool parse_id(const char *s, uint32_t *ret)
{
	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 10)
		return false;
	unsigned long long v = strtoull(s, NULL, 10);
	if (v >= UINT32_MAX)
		return false;
	*ret = (uint32_t)v;
	return true;
}

/* Splits a passwd/group line into its ':' fields (in place); returns the field count. */
static size_t split_fields(char *line, char **f, size_t max)
{
	size_t n = 0;
	f[n++] = line;
	for (char *p = line; *p && n < max; p++)
		if (*p == ':') {
			*p = '\0';
			f[n++] = p + 1;
		}
	return n;
}

struct passwd_entry {
	char *name;
	uint32_t uid, gid;
};

/* Finds by name (when name) or by uid in a passwd text; 0, or -ENOENT. */
static int passwd_find(const char *text, const char *name, uint32_t uid, struct passwd_entry *ret)
{
	_cleanup_free_ char *copy = strdup(text ? text : "");
	if (!copy)
		return -ENOMEM;
	for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *f[7];
		uint32_t u, g;
		if (split_fields(line, f, 7) < 4 || !parse_id(f[2], &u) || !parse_id(f[3], &g))
			continue;
		if (name ? strcmp(f[0], name) != 0 : u != uid)
			continue;
		if (!(ret->name = strdup(f[0])))
			return -ENOMEM;
		ret->uid = u;
		ret->gid = g;
		return 0;
	}
	return -ENOENT;
}

static bool member_of(char *members, const char *name)
{
	for (char *save = NULL, *m = strtok_r(members, ",", &save); m;
	     m = strtok_r(NULL, ",", &save))
		if (strcmp(m, name) == 0)
			return true;
	return false;
}

/* group_name: look one group up (its gid in *ret_gid); else collect the groups whose members
 * include user (into u->additional_gids). */
static int group_scan(const char *text, const char *group_name, uint32_t *ret_gid, const char *user,
		      struct ocispec_user *u)
{
	_cleanup_free_ char *copy = strdup(text ? text : "");
	if (!copy)
		return -ENOMEM;
	for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *f[4];
		uint32_t g;
		if (split_fields(line, f, 4) < 4 || !parse_id(f[2], &g))
			continue;
		if (group_name) {
			if (strcmp(f[0], group_name) == 0) {
				*ret_gid = g;
				return 0;
			}
			continue;
		}
		if (g == u->gid || !member_of(f[3], user))
			continue;
		uint32_t *nv =
			realloc(u->additional_gids, (u->n_additional + 1) * sizeof(uint32_t));
		if (!nv)
			return -ENOMEM;
		u->additional_gids = nv;
		nv[u->n_additional++] = g;
	}
	return group_name ? -ENOENT : 0;
}

static int load_etc(const char *rootfs, const char *file, char **ret, struct berth_error **err)
{
	int r = read_in_root(rootfs, file, ret, err);
	return r == -ENOENT ? 0 : r; /* an image without the file: numeric ids only */
}

/* The user part of the image's User, or the request: sets uid, gid and *ret_name. */
static int resolve_uid(const char *passwd, const char *rootfs, const char *name, bool numeric,
		       uint32_t uid, const char *where, struct ocispec_user *u, char **ret_name,
		       struct berth_error **err)
{
	struct passwd_entry pw = { 0 };
	int r = passwd_find(passwd, numeric ? NULL : name, uid, &pw);
	if (r == -ENOMEM)
		return r;
	if (r < 0 && !numeric)
		return berth_error_set(err, ENOENT, "%s: user \"%s\" is not in %s/etc/passwd",
				       where, name, rootfs);
	u->uid = r == 0 ? pw.uid : uid;
	u->gid = r == 0 ? pw.gid : 0;
	*ret_name = pw.name;
	return 0;
}

static int resolve_image_user(const char *passwd, const char *group, const char *rootfs,
			      const char *spec, struct ocispec_user *u, char **ret_name,
			      struct berth_error **err)
{
	_cleanup_free_ char *copy = strdup(spec);
	if (!copy)
		return -ENOMEM;
	char *grp = strchr(copy, ':');
	if (grp)
		*grp++ = '\0';
	uint32_t id = 0;
	bool numeric = parse_id(copy, &id);
	int r = resolve_uid(passwd, rootfs, copy, numeric, id, "the image's User", u, ret_name,
			    err);
	if (r < 0 || !grp)
		return r;
	if (parse_id(grp, &u->gid))
		return 0;
	r = group_scan(group, grp, &u->gid, NULL, NULL);
	if (r == -ENOENT)
		return berth_error_set(err, ENOENT,
				       "the image's User: group \"%s\" is not in %s/etc/group", grp,
				       rootfs);
	return r;
}

static int add_request_groups(const struct container_config *req, struct ocispec_user *u)
{
	for (size_t i = 0; i < req->n_supplemental_groups; i++) {
		uint32_t g = (uint32_t)req->supplemental_groups[i];
		bool have = false;
		for (size_t k = 0; k < u->n_additional && !have; k++)
			have = u->additional_gids[k] == g;
		if (have)
			continue;
		uint32_t *nv =
			realloc(u->additional_gids, (u->n_additional + 1) * sizeof(uint32_t));
		if (!nv)
			return -ENOMEM;
		u->additional_gids = nv;
		nv[u->n_additional++] = g;
	}
	return 0;
}

int ocispec_user_resolve(const char *rootfs, const struct container_config *req,
			 const char *image_user, struct ocispec_user *ret, struct berth_error **err)
{
	_cleanup_free_ char *passwd = NULL, *group = NULL, *name = NULL;
	struct ocispec_user u = { 0 };
	int r;
	if ((r = load_etc(rootfs, "etc/passwd", &passwd, err)) < 0 ||
	    (r = load_etc(rootfs, "etc/group", &group, err)) < 0)
		return r;
	const char *where = "config.linux.security_context";
	if (req->run_as_username)
		r = resolve_uid(passwd, rootfs, req->run_as_username, false, 0, where, &u, &name,
				err);
	else if (req->has_run_as_user)
		r = resolve_uid(passwd, rootfs, NULL, true, (uint32_t)req->run_as_user, where, &u,
				&name, err);
	else if (image_user && *image_user)
		r = resolve_image_user(passwd, group, rootfs, image_user, &u, &name, err);
	else
		r = resolve_uid(passwd, rootfs, NULL, true, 0, where, &u, &name, err);
	if (r < 0)
		return r;
	if (req->has_run_as_group)
		u.gid = (uint32_t)req->run_as_group;
	/* Kubernetes' supplementalGroupsPolicy: Merge adds the image's /etc/group memberships,
	 * Strict only the groups the request names */
	if (name && !req->supplemental_groups_strict &&
	    (r = group_scan(group, NULL, NULL, name, &u)) < 0) {
		ocispec_user_clear(&u);
		return r;
	}
	if ((r = add_request_groups(req, &u)) < 0) {
		ocispec_user_clear(&u);
		return r;
	}
	*ret = u;
	return 0;
}

void ocispec_user_clear(struct ocispec_user *u)
{
	free(u->additional_gids);
	*u = (struct ocispec_user){ 0 };
}

/* ---- capabilities ---- */

/* "CAP_NET_ADMIN", "net_admin", "NET_ADMIN" -> its number; -1 when libcap or this kernel does
 * not know it. */
static int cap_number(const char *name)
{
	char buf[64] = "cap_";
	if (strncasecmp(name, "CAP_", 4) == 0)
		name += 4;
	size_t n = strlen(name);
	if (n + 5 > sizeof(buf))
		return -1;
	for (size_t i = 0; i <= n; i++)
		buf[4 + i] = (char)tolower((unsigned char)name[i]);
	cap_value_t v;
	if (cap_from_name(buf, &v) < 0 || v > caps_last_cap())
		return -1;
	return v;
}

static int caps_from_json(const struct json *arr, uint64_t *ret)
{
	for (size_t i = 0; i < bjson_array_size(arr); i++) {
		const char *s = bjson_string(bjson_array_get(arr, i));
		int v = s ? cap_number(s) : -1;
		if (v >= 0)
			*ret |= 1ull << v;
	}
	return 0;
}

static int caps_apply_names(char *const *names, bool add, const char *key, uint64_t *set,
			    struct berth_error **err)
{
	for (; names && *names; names++) {
		if (strcasecmp(*names, "ALL") == 0)
			continue;
		int v = cap_number(*names);
		if (v < 0)
			return berth_error_set(err, EINVAL,
					       "%s.capabilities.%s: \"%s\" is not a capability "
					       "this kernel knows",
					       WSC, key, *names);
		if (add)
			*set |= 1ull << v;
		else
			*set &= ~(1ull << v);
	}
	return 0;
}

static bool strv_has_all(char *const *v)
{
	for (; v && *v; v++)
		if (strcasecmp(*v, "ALL") == 0)
			return true;
	return false;
}

/* "ALL" and privileged: every capability berthd itself holds (containerd's cap.Current()), not
 * every one the kernel knows: a capability the daemon lacks (CAP_SYS_RESOURCE on some hosts)
 * could not be given and would fail the start. */
static uint64_t all_caps(void)
{
	int last = caps_last_cap();
	uint64_t set = 0;
	cap_t cur = cap_get_proc();
	for (int v = 0; v <= last && v < 64; v++) {
		cap_flag_value_t on = CAP_CLEAR;
		if (!cur || (cap_get_flag(cur, (cap_value_t)v, CAP_PERMITTED, &on) == 0 &&
			     on == CAP_SET))
			set |= 1ull << v;
	}
	cap_free(cur);
	return set;
}

/* containerd's order: add ALL, drop ALL, then the named additions, then the named drops. */
static int container_caps(const struct container_config *req, const struct json *dflt_caps,
			  uint64_t *ret, struct berth_error **err)
{
	uint64_t set = 0;
	if (req->privileged) {
		*ret = all_caps();
		return 0;
	}
	caps_from_json(bjson_object_get(dflt_caps, "bounding"), &set);
	if (strv_has_all(req->add_capabilities))
		set = all_caps();
	if (strv_has_all(req->drop_capabilities))
		set = 0;
	int r;
	if ((r = caps_apply_names(req->add_capabilities, true, "add_capabilities", &set, err)) < 0 ||
	    (r = caps_apply_names(req->drop_capabilities, false, "drop_capabilities", &set, err)) <
		    0)
		return r;
	*ret = set;
	return 0;
}

static void write_caps(struct json_writer *w, uint64_t set)
{
	static const char *const sets[] = { "bounding", "effective", "permitted" };
	bjson_writer_key(w, "capabilities");
	bjson_writer_begin_object(w);
	for (size_t k = 0; k < 3; k++) {
		bjson_writer_key(w, sets[k]);
		bjson_writer_begin_array(w);
		for (int v = 0; v < 64; v++) {
			if (!(set & (1ull << v)))
				continue;
			char *name = cap_to_name((cap_value_t)v);
			if (!name)
				continue;
			char upper[64];
			size_t i = 0;
			for (; name[i] && i + 1 < sizeof(upper); i++)
				upper[i] = (char)toupper((unsigned char)name[i]);
			upper[i] = '\0';
			cap_free(name);
			bjson_writer_string(w, upper);
		}
		bjson_writer_end_array(w);
	}
	/* inheritable and ambient stay empty (CVE-2022-29162) */
	bjson_writer_end_object(w);
}

/* ---- seccomp ---- */

static int read_host_file(const char *path, size_t max, char **ret, struct berth_error **err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return berth_error_setsys(err, errno, "%s", path);
	return read_regular(fd, path, max, ret, err);
}

/* *ret: the profile to write as linux.seccomp, or NULL for none. A Localhost profile is parsed
 * with the runtime's own parser now, so a mistake in it fails CreateContainer, naming it. */
static int container_seccomp(const struct container_config *req, struct json **ret,
			     struct berth_error **err)
{
	*ret = NULL;
	if (req->privileged || req->seccomp == SECCOMP_UNCONFINED)
		return 0;
	if (req->seccomp != SECCOMP_LOCALHOST)
		return bjson_parse(BERTH_SECCOMP_DEFAULT_JSON, ret, err);
	const char *path = req->seccomp_localhost_ref;
	_cleanup_free_ char *text = NULL;
	_cleanup_(bjson_freep) struct json *j = NULL;
	_cleanup_(oci_seccomp_freep) struct oci_seccomp *probe = NULL;
	int r;
	if ((r = read_host_file(path, SECCOMP_FILE_MAX, &text, err)) < 0 ||
	    (r = bjson_parse(text, &j, err)) < 0 ||
	    (r = oci_seccomp_parse(j, "seccomp", &probe, err)) < 0)
		return berth_error_wrap(err, "%s.seccomp.localhost_ref", WSC);
	*ret = TAKE_PTR(j);
	return 0;
}

/* ---- devices ---- */

struct dev_node {
	const char *path; /* in the container */
	char type;	  /* 'c' or 'b' */
	unsigned major, minor;
	mode_t mode;
	uid_t uid;
	gid_t gid;
};

static void write_dev_node(struct json_writer *w, const struct dev_node *d)
{
	char type[2] = { d->type, '\0' };
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "path", d->path);
	bjson_writer_kv_string(w, "type", type);
	bjson_writer_kv_int(w, "major", d->major);
	bjson_writer_kv_int(w, "minor", d->minor);
	bjson_writer_kv_int(w, "fileMode", d->mode & 07777);
	bjson_writer_kv_int(w, "uid", d->uid);
	bjson_writer_kv_int(w, "gid", d->gid);
	bjson_writer_end_object(w);
}

static bool dev_of(const struct stat *st, const char *path, struct dev_node *ret)
{
	if (!S_ISCHR(st->st_mode) && !S_ISBLK(st->st_mode))
		return false;
	*ret = (struct dev_node){ .path = path,
				  .type = S_ISCHR(st->st_mode) ? 'c' : 'b',
				  .major = major(st->st_rdev),
				  .minor = minor(st->st_rdev),
				  .mode = st->st_mode,
				  .uid = st->st_uid,
				  .gid = st->st_gid };
	return true;
}

/* The request's devices: host nodes (symlinks followed, as kubelet's device plugins name
 * them), their permissions applied to the mode since berth has no device cgroup. */
static int check_devices(const struct container_config *req, struct dev_node *out,
			 struct berth_error **err)
{
	for (size_t i = 0; i < req->n_devices; i++) {
		const struct device_mapping *d = &req->devices[i];
		struct stat st;
		if (stat(d->host_path, &st) < 0)
			return berth_error_setsys(err, errno, "config.devices[%zu].host_path: %s", i,
						  d->host_path);
		if (!dev_of(&st, d->container_path, &out[i]))
			return berth_error_set(err, EINVAL,
					       "config.devices[%zu].host_path: %s is not a device "
					       "node (directories of devices are not supported)",
					       i, d->host_path);
		if (!strchr(d->permissions, 'r'))
			out[i].mode &= ~(mode_t)0444;
		if (!strchr(d->permissions, 'w'))
			out[i].mode &= ~(mode_t)0222;
	}
	return 0;
}

/* Privileged: every device node under the host's /dev, as containerd's WithHostDevices. */
static void write_host_devices(struct json_writer *w, int dfd, const char *prefix, int depth)
{
	static const char *const skip[] = { "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts",
					    ".udev", "console", NULL };
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	for (struct dirent *e; (e = readdir(d));) {
		bool skipped = e->d_name[0] == '.' &&
			       (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]));
		for (const char *const *s = skip; *s && !skipped; s++)
			skipped = depth == 0 && strcmp(*s, e->d_name) == 0;
		struct stat st;
		if (skipped || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		_cleanup_free_ char *path = NULL;
		if (asprintf(&path, "%s/%s", prefix, e->d_name) < 0)
			continue;
		struct dev_node node;
		if (dev_of(&st, path, &node))
			write_dev_node(w, &node);
		else if (S_ISDIR(st.st_mode) && depth + 1 < HOST_DEV_DEPTH) {
			int sub = openat(dirfd(d), e->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				write_host_devices(w, sub, path, depth + 1);
		}
	}
	closedir(d);
}

/* ---- mount propagation ---- */

/* The optional fields ("shared:N", "master:N") of the mount that holds path, from
 * /proc/self/mountinfo: the longest mount point that is a prefix of path. */
static int mount_propagation_of(const char *path, bool *ret_shared, bool *ret_slave,
				struct berth_error **err)
{
	_cleanup_free_ char *real = realpath(path, NULL);
	if (!real)
		return berth_error_setsys(err, errno, "%s", path);
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return berth_error_setsys(err, errno, "/proc/self/mountinfo");
	size_t best = 0;
	char line[4096];
	*ret_shared = *ret_slave = false;
	while (fgets(line, sizeof(line), f)) {
		char mp[PATH_MAX];
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		size_t n = strlen(mp);
		bool prefix = strcmp(mp, "/") == 0 ||
			      (strncmp(real, mp, n) == 0 && (real[n] == '/' || real[n] == '\0'));
		if (!prefix || n < best)
			continue;
		best = n;
		const char *opt_end = strstr(line, " - ");
		const char *sh = strstr(line, " shared:"), *ma = strstr(line, " master:");
		*ret_shared = sh && sh < opt_end;
		*ret_slave = ma && ma < opt_end;
	}
	fclose(f);
	return 0;
}

/* containerd's ensureShared / ensureSharedOrSlave: a propagation the host's mount cannot give
 * is refused, not quietly downgraded. */
static int check_propagation(const struct container_config *req, const char **ret_rootfs_prop,
			     struct berth_error **err)
{
	*ret_rootfs_prop = NULL;
	for (size_t i = 0; i < req->n_mounts; i++) {
		const struct bind_mount *m = &req->mounts[i];
		if (m->propagation == PROPAGATION_PRIVATE)
			continue;
		bool shared, slave;
		int r = mount_propagation_of(m->host_path, &shared, &slave, err);
		if (r < 0)
			return berth_error_wrap(err, "config.mounts[%zu].host_path", i);
		if (m->propagation == PROPAGATION_BIDIRECTIONAL) {
			if (!shared)
				return berth_error_set(err, EINVAL,
						       "config.mounts[%zu].propagation: BIDIRECTIONAL "
						       "needs %s on a shared mount",
						       i, m->host_path);
			*ret_rootfs_prop = "rshared";
		} else {
			if (!shared && !slave)
				return berth_error_set(err, EINVAL,
						       "config.mounts[%zu].propagation: "
						       "HOST_TO_CONTAINER needs %s on a shared or "
						       "slave mount",
						       i, m->host_path);
			if (!*ret_rootfs_prop)
				*ret_rootfs_prop = "rslave";
		}
	}
	return 0;
}

/* ---- the document ---- */

static void write_strv(struct json_writer *w, const char *key, char *const *v)
{
	bjson_writer_key(w, key);
	bjson_writer_begin_array(w);
	for (; v && *v; v++)
		bjson_writer_string(w, *v);
	bjson_writer_end_array(w);
}

static void write_user(struct json_writer *w, const struct ocispec_user *u)
{
	bjson_writer_key(w, "user");
	bjson_writer_begin_object(w);
	bjson_writer_kv_int(w, "uid", u->uid);
	bjson_writer_kv_int(w, "gid", u->gid);
	if (u->n_additional) {
		bjson_writer_key(w, "additionalGids");
		bjson_writer_begin_array(w);
		for (size_t i = 0; i < u->n_additional; i++)
			bjson_writer_int(w, u->additional_gids[i]);
		bjson_writer_end_array(w);
	}
	bjson_writer_end_object(w);
}

/* Copies key's value from the default document, when it has one. */
static void copy_key(struct json_writer *w, const struct json *from, const char *key)
{
	const struct json *v = bjson_object_get(from, key);
	if (bjson_type_of(v) == JSON_ABSENT)
		return;
	bjson_writer_key(w, key);
	bjson_writer_value(w, v);
}

/* Written only when set: 0 and NULL are "not set" in a CRI request. */
static void kv_int_set(struct json_writer *w, const char *key, int64_t v)
{
	if (v)
		bjson_writer_kv_int(w, key, v);
}

static void kv_string_set(struct json_writer *w, const char *key, const char *v)
{
	if (v)
		bjson_writer_kv_string(w, key, v);
}

static int write_process(struct json_writer *w, const struct ocispec_input *in,
			 const struct json *dflt, struct berth_error **err)
{
	_cleanup_strv_ char **args = NULL, **env = NULL;
	struct ocispec_user user = { 0 };
	const char *image_user = bjson_string(bjson_object_get(in->image_config, "User"));
	const char *image_cwd = bjson_string(bjson_object_get(in->image_config, "WorkingDir"));
	uint64_t caps = 0;
	int r;
	if ((r = ocispec_command(in->image_config, in->req->command, in->req->args, &args, err)) <
		    0 ||
	    (r = build_env(in, &env, err)) < 0 ||
	    (r = container_caps(in->req, bjson_object_get(dflt, "capabilities"), &caps, err)) < 0 ||
	    (r = ocispec_user_resolve(in->rootfs, in->req, image_user, &user, err)) < 0)
		return r;
	const char *cwd = in->req->working_dir		     ? in->req->working_dir
			  : image_cwd && image_cwd[0] == '/' ? image_cwd
							     : "/";
	bjson_writer_key(w, "process");
	bjson_writer_begin_object(w);
	bjson_writer_kv_bool(w, "terminal", in->req->tty);
	write_user(w, &user);
	write_strv(w, "args", args);
	write_strv(w, "env", env);
	bjson_writer_kv_string(w, "cwd", cwd);
	write_caps(w, caps);
	copy_key(w, dflt, "rlimits");
	bjson_writer_kv_bool(w, "noNewPrivileges", in->req->no_new_privs);
	kv_int_set(w, "oomScoreAdj", in->req->oom_score_adj);
	bjson_writer_end_object(w);
	ocispec_user_clear(&user);
	return 0;
}

static const char *const propagation_option[] = { "rprivate", "rslave", "rshared" };

static void write_bind(struct json_writer *w, const char *dest, const char *source, bool ro,
		       enum mount_propagation prop)
{
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "destination", dest);
	bjson_writer_kv_string(w, "type", "bind");
	bjson_writer_kv_string(w, "source", source);
	write_strv(w, "options",
		   (char *const[]){ "rbind", (char *)propagation_option[prop], ro ? "ro" : "rw",
				    NULL });
	bjson_writer_end_object(w);
}

/* A default mount; privileged containers get /sys and the cgroup tree writable. */
static void write_default_mount(struct json_writer *w, const struct json *m, bool privileged)
{
	const char *dest = bjson_string(bjson_object_get(m, "destination"));
	if (!privileged || !dest || (strcmp(dest, "/sys") && strcmp(dest, "/sys/fs/cgroup"))) {
		bjson_writer_value(w, m);
		return;
	}
	bjson_writer_begin_object(w);
	for (size_t i = 0; i < bjson_object_size(m); i++) {
		const char *key = bjson_object_key(m, i);
		const struct json *v = bjson_object_value(m, i);
		bjson_writer_key(w, key);
		if (strcmp(key, "options") != 0) {
			bjson_writer_value(w, v);
			continue;
		}
		bjson_writer_begin_array(w);
		for (size_t k = 0; k < bjson_array_size(v); k++) {
			const char *o = bjson_string(bjson_array_get(v, k));
			if (o && strcmp(o, "ro") != 0)
				bjson_writer_string(w, o);
		}
		bjson_writer_string(w, "rw");
		bjson_writer_end_array(w);
	}
	bjson_writer_end_object(w);
}

static void write_mounts(struct json_writer *w, const struct ocispec_input *in,
			 const struct json *dflt_mounts)
{
	const struct container_config *req = in->req;
	bjson_writer_key(w, "mounts");
	bjson_writer_begin_array(w);
	for (size_t i = 0; i < bjson_array_size(dflt_mounts); i++)
		write_default_mount(w, bjson_array_get(dflt_mounts, i), req->privileged);
	/* the pod's files, shared by its containers as Kubernetes does */
	if (in->hosts_path)
		write_bind(w, "/etc/hosts", in->hosts_path, req->readonly_rootfs,
			   PROPAGATION_PRIVATE);
	if (in->hostname_path)
		write_bind(w, "/etc/hostname", in->hostname_path, req->readonly_rootfs,
			   PROPAGATION_PRIVATE);
	if (in->resolv_conf_path)
		write_bind(w, "/etc/resolv.conf", in->resolv_conf_path, req->readonly_rootfs,
			   PROPAGATION_PRIVATE);
	for (size_t i = 0; i < req->n_mounts; i++)
		write_bind(w, req->mounts[i].container_path, req->mounts[i].host_path,
			   req->mounts[i].readonly, req->mounts[i].propagation);
	bjson_writer_end_array(w);
}

static void write_namespace(struct json_writer *w, const char *type, const char *path)
{
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "type", type);
	if (path)
		bjson_writer_kv_string(w, "path", path);
	bjson_writer_end_object(w);
}

struct ns_plan {
	bool pid_new;	      /* a new pid namespace (pid_path NULL) */
	const char *pid_path; /* join this one */
};

static int ns_mismatch(const char *key, enum ns_mode asked, const char *pods,
		       struct berth_error **err)
{
	return berth_error_set(err, EINVAL, "%s.namespace_options.%s: %s, but the pod's is %s", WSC,
			       key, ns_mode_name(asked), pods);
}

/* The container's namespace modes against the pod's (which decide network and ipc, as in
 * containerd); pid may differ: its own, the pod's, the node's or a target container's. */
static int plan_namespaces(const struct ocispec_input *in, struct ns_plan *ret,
			   struct berth_error **err)
{
	const struct container_config *req = in->req;
	*ret = (struct ns_plan){ .pid_new = !in->pidns_path && !in->pid_host,
				 .pid_path = in->pidns_path };
	if (!req->has_ns_options)
		return 0;
	if ((req->net_mode == NS_MODE_NODE) != (in->netns_path == NULL))
		return ns_mismatch("network", req->net_mode, in->netns_path ? "POD" : "NODE", err);
	if ((req->ipc_mode == NS_MODE_NODE) != (in->ipcns_path == NULL))
		return ns_mismatch("ipc", req->ipc_mode, in->ipcns_path ? "POD" : "NODE", err);
	const char *pod_pid = in->pid_host ? "NODE" : in->pidns_path ? "POD" : "CONTAINER";
	switch (req->pid_mode) {
	case NS_MODE_NODE:
		if (!in->pid_host) /* the node's pids only for a pod that asked for them */
			return ns_mismatch("pid", NS_MODE_NODE, pod_pid, err);
		*ret = (struct ns_plan){ 0 };
		return 0;
	case NS_MODE_POD:
		if (!in->pidns_path)
			return ns_mismatch("pid", NS_MODE_POD, pod_pid, err);
		return 0;
	case NS_MODE_CONTAINER:
		if (in->pid_host)
			return ns_mismatch("pid", NS_MODE_CONTAINER, pod_pid, err);
		*ret = (struct ns_plan){ .pid_new = true };
		return 0;
	case NS_MODE_TARGET:
		if (!in->target_pidns_path)
			return berth_error_set(err, EINVAL,
					       "%s.namespace_options.target_id: container %s is "
					       "not running in this pod",
					       WSC, req->target_id);
		*ret = (struct ns_plan){ .pid_path = in->target_pidns_path };
		return 0;
	}
	return 0;
}

static void write_namespaces(struct json_writer *w, const struct ocispec_input *in,
			     const struct ns_plan *plan)
{
	bjson_writer_key(w, "namespaces");
	bjson_writer_begin_array(w);
	if (plan->pid_path || plan->pid_new)
		write_namespace(w, "pid", plan->pid_path);
	if (in->netns_path)
		write_namespace(w, "network", in->netns_path);
	if (in->ipcns_path)
		write_namespace(w, "ipc", in->ipcns_path);
	if (in->utsns_path)
		write_namespace(w, "uts", in->utsns_path);
	write_namespace(w, "mount", NULL);
	write_namespace(w, "cgroup", NULL);
	bjson_writer_end_array(w);
}

static void write_cpu(struct json_writer *w, const struct container_config *req)
{
	if (!req->cpu_period && !req->cpu_quota && !req->cpu_shares && !req->cpuset_cpus &&
	    !req->cpuset_mems)
		return;
	bjson_writer_key(w, "cpu");
	bjson_writer_begin_object(w);
	kv_int_set(w, "shares", req->cpu_shares);
	kv_int_set(w, "quota", req->cpu_quota);
	kv_int_set(w, "period", req->cpu_period);
	kv_string_set(w, "cpus", req->cpuset_cpus);
	kv_string_set(w, "mems", req->cpuset_mems);
	bjson_writer_end_object(w);
}

static void write_memory(struct json_writer *w, const struct container_config *req)
{
	if (!req->memory_limit_in_bytes && !req->memory_swap_limit_in_bytes)
		return;
	bjson_writer_key(w, "memory");
	bjson_writer_begin_object(w);
	kv_int_set(w, "limit", req->memory_limit_in_bytes);
	kv_int_set(w, "swap", req->memory_swap_limit_in_bytes);
	bjson_writer_end_object(w);
}

static void write_resources(struct json_writer *w, const struct container_config *req)
{
	bjson_writer_key(w, "resources");
	bjson_writer_begin_object(w);
	write_memory(w, req);
	write_cpu(w, req);
	if (req->n_hugepage_limits) {
		bjson_writer_key(w, "hugepageLimits");
		bjson_writer_begin_array(w);
		for (size_t i = 0; i < req->n_hugepage_limits; i++) {
			bjson_writer_begin_object(w);
			bjson_writer_kv_string(w, "pageSize", req->hugepage_limits[i].page_size);
			bjson_writer_key(w, "limit");
			bjson_writer_uint(w, req->hugepage_limits[i].limit);
			bjson_writer_end_object(w);
		}
		bjson_writer_end_array(w);
	}
	req_write_raw(w, "unified", req->unified_json);
	bjson_writer_end_object(w);
}

static bool has_resources(const struct container_config *req)
{
	return req->memory_limit_in_bytes || req->memory_swap_limit_in_bytes || req->cpu_period ||
	       req->cpu_quota || req->cpu_shares || req->cpuset_cpus || req->cpuset_mems ||
	       req->n_hugepage_limits || req->unified_json;
}

/* masked and read-only paths: none for a privileged container, the request's when it gave a
 * list, else the runtime's defaults (containerd's). */
static void write_paths(struct json_writer *w, const struct container_config *req,
			const struct json *dflt, const char *key, char *const *given)
{
	if (req->privileged)
		write_strv(w, key, NULL);
	else if (given)
		write_strv(w, key, given);
	else
		copy_key(w, dflt, key);
}

struct linux_extras {
	struct ns_plan ns;
	const struct json *seccomp;
	const char *rootfs_propagation;
	const struct dev_node *devices;
};

static void write_linux(struct json_writer *w, const struct ocispec_input *in,
			const struct json *dflt, const struct linux_extras *x)
{
	const struct container_config *req = in->req;
	bjson_writer_key(w, "linux");
	bjson_writer_begin_object(w);
	write_namespaces(w, in, &x->ns);
	if (in->cgroups_path)
		bjson_writer_kv_string(w, "cgroupsPath", in->cgroups_path);
	if (has_resources(req))
		write_resources(w, req);
	if (req->privileged || req->n_devices) {
		bjson_writer_key(w, "devices");
		bjson_writer_begin_array(w);
		if (req->privileged) {
			int dfd = open("/dev", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (dfd >= 0)
				write_host_devices(w, dfd, "/dev", 0);
		}
		for (size_t i = 0; i < req->n_devices; i++)
			write_dev_node(w, &x->devices[i]);
		bjson_writer_end_array(w);
	}
	write_paths(w, req, dflt, "maskedPaths", req->masked_paths);
	write_paths(w, req, dflt, "readonlyPaths", req->readonly_paths);
	if (x->seccomp) {
		bjson_writer_key(w, "seccomp");
		bjson_writer_value(w, x->seccomp);
	}
	if (x->rootfs_propagation)
		bjson_writer_kv_string(w, "rootfsPropagation", x->rootfs_propagation);
	bjson_writer_end_object(w);
}

static void write_annotations(struct json_writer *w, char *const *kv)
{
	if (!kv || !*kv)
		return;
	bjson_writer_key(w, "annotations");
	bjson_writer_begin_object(w);
	for (; kv[0] && kv[1]; kv += 2)
		bjson_writer_kv_string(w, kv[0], kv[1]);
	bjson_writer_end_object(w);
}

static int write_document(struct json_writer *w, const struct ocispec_input *in,
			  const struct json *dflt, const struct linux_extras *x,
			  struct berth_error **err)
{
	bjson_writer_begin_object(w);
	copy_key(w, dflt, "ociVersion");
	int r = write_process(w, in, bjson_object_get(dflt, "process"), err);
	if (r < 0)
		return r;
	bjson_writer_key(w, "root");
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "path", in->rootfs);
	bjson_writer_kv_bool(w, "readonly", in->req->readonly_rootfs);
	bjson_writer_end_object(w);
	/* no "hostname": the container joins the pod's UTS namespace, which has it */
	write_mounts(w, in, bjson_object_get(dflt, "mounts"));
	write_linux(w, in, bjson_object_get(dflt, "linux"), x);
	write_annotations(w, in->annotations);
	bjson_writer_end_object(w);
	return 0;
}

int ocispec_generate(const struct ocispec_input *in, char **ret, struct berth_error **err)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_free_ struct dev_node *devices = NULL;
	_cleanup_(bjson_freep) struct json *dflt = NULL, *seccomp = NULL;
	struct linux_extras x = { 0 };
	int r;
	if (in->req->privileged && !in->pod_privileged)
		return berth_error_set(err, EINVAL,
				       "%s.privileged: the pod is not privileged (its "
				       "config.linux.security_context.privileged is false)",
				       WSC);
	if (in->req->n_devices && !(devices = calloc(in->req->n_devices, sizeof(*devices))))
		return -ENOMEM;
	if ((r = runtime_spec_generate(false, &text, err)) < 0 ||
	    (r = bjson_parse(text, &dflt, err)) < 0 || (r = plan_namespaces(in, &x.ns, err)) < 0 ||
	    (r = check_devices(in->req, devices, err)) < 0 ||
	    (r = check_propagation(in->req, &x.rootfs_propagation, err)) < 0 ||
	    (r = container_seccomp(in->req, &seccomp, err)) < 0)
		return r;
	x.seccomp = seccomp;
	x.devices = devices;
	struct json_writer *w = bjson_writer_new(true);
	if (!w)
		return -ENOMEM;
	if ((r = write_document(w, in, dflt, &x, err)) < 0) {
		_cleanup_free_ char *discard = NULL;
		bjson_writer_finish(w, &discard, NULL);
		return r;
	}
	r = bjson_writer_finish(w, ret, NULL);
	return r < 0 ? berth_error_set(err, -r, "config.json: a field is not valid UTF-8") : 0;
}

int ocispec_exec_process(const char *config_json, char *const *argv,
			 const struct ocispec_terminal *term, char **ret, struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *cfg = NULL;
	int r = bjson_parse(config_json, &cfg, err);
	if (r < 0)
		return berth_error_wrap(err, "the container's config.json");
	const struct json *proc = bjson_object_get(cfg, "process");
	if (bjson_type_of(proc) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, "the container's config.json has no process");
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	for (size_t i = 0; i < bjson_object_size(proc); i++) {
		const char *key = bjson_object_key(proc, i);
		if (strcmp(key, "args") == 0 || strcmp(key, "terminal") == 0 ||
		    strcmp(key, "consoleSize") == 0)
			continue;
		bjson_writer_key(w, key);
		bjson_writer_value(w, bjson_object_value(proc, i));
	}
	write_strv(w, "args", argv);
	bjson_writer_kv_bool(w, "terminal", term && term->on);
	if (term && term->on && term->cols && term->rows) {
		bjson_writer_key(w, "consoleSize");
		bjson_writer_begin_object(w);
		bjson_writer_key(w, "height");
		bjson_writer_uint(w, term->rows);
		bjson_writer_key(w, "width");
		bjson_writer_uint(w, term->cols);
		bjson_writer_end_object(w);
	}
	bjson_writer_end_object(w);
	r = bjson_writer_finish(w, ret, NULL);
	return r < 0 ? berth_error_set(err, -r, "exec: an argument is not valid UTF-8") : 0;
}
