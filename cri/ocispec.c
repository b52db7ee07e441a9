/* config.json for a CRI container: the runtime's defaults, the image's config, the request. */
#include "cri/ocispec.h"
#include "base/cleanup.h"
#include "base/json.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ETC_FILE_MAX (4 << 20) /* /etc/passwd or /etc/group bigger than this is refused */

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
	struct stat st;
	if (fstat(fd, &st) < 0)
		return berth_error_setsys(err, errno, "the image's /%s", path);
	if (!S_ISREG(st.st_mode) || st.st_size > ETC_FILE_MAX)
		return berth_error_set(err, EINVAL,
				       "the image's /%s: not a regular file under %d bytes", path,
				       ETC_FILE_MAX);
	_cleanup_free_ char *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return berth_error_setsys(err, errno, "reading the image's /%s", path);
		if (k == 0)
			break;
		got += (size_t)k;
	}
	buf[got] = '\0';
	*ret = TAKE_PTR(buf);
	return 0;
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
	if (name && (r = group_scan(group, NULL, NULL, name, &u)) < 0) {
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

static int write_process(struct json_writer *w, const struct ocispec_input *in,
			 const struct json *dflt, struct berth_error **err)
{
	_cleanup_strv_ char **args = NULL, **env = NULL;
	struct ocispec_user user = { 0 };
	const char *image_user = bjson_string(bjson_object_get(in->image_config, "User"));
	const char *image_cwd = bjson_string(bjson_object_get(in->image_config, "WorkingDir"));
	int r;
	if ((r = ocispec_command(in->image_config, in->req->command, in->req->args, &args, err)) <
		    0 ||
	    (r = build_env(in, &env, err)) < 0 ||
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
	copy_key(w, dflt, "capabilities");
	copy_key(w, dflt, "rlimits");
	copy_key(w, dflt, "noNewPrivileges");
	bjson_writer_end_object(w);
	ocispec_user_clear(&user);
	return 0;
}

static void write_bind(struct json_writer *w, const char *dest, const char *source, bool ro)
{
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "destination", dest);
	bjson_writer_kv_string(w, "type", "bind");
	bjson_writer_kv_string(w, "source", source);
	write_strv(w, "options", (char *const[]){ "rbind", "rprivate", ro ? "ro" : "rw", NULL });
	bjson_writer_end_object(w);
}

static void write_mounts(struct json_writer *w, const struct ocispec_input *in,
			 const struct json *dflt_mounts)
{
	bjson_writer_key(w, "mounts");
	bjson_writer_begin_array(w);
	for (size_t i = 0; i < bjson_array_size(dflt_mounts); i++)
		bjson_writer_value(w, bjson_array_get(dflt_mounts, i));
	/* the pod's files, shared by its containers as Kubernetes does */
	if (in->hosts_path)
		write_bind(w, "/etc/hosts", in->hosts_path, in->req->readonly_rootfs);
	if (in->hostname_path)
		write_bind(w, "/etc/hostname", in->hostname_path, in->req->readonly_rootfs);
	if (in->resolv_conf_path)
		write_bind(w, "/etc/resolv.conf", in->resolv_conf_path, in->req->readonly_rootfs);
	for (size_t i = 0; i < in->req->n_mounts; i++)
		write_bind(w, in->req->mounts[i].container_path, in->req->mounts[i].host_path,
			   in->req->mounts[i].readonly);
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

static void write_namespaces(struct json_writer *w, const struct ocispec_input *in)
{
	bjson_writer_key(w, "namespaces");
	bjson_writer_begin_array(w);
	if (in->pidns_path || !in->pid_host)
		write_namespace(w, "pid", in->pidns_path);
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

static void write_resources(struct json_writer *w, const struct container_config *req)
{
	if (!req->memory_limit_in_bytes && !req->cpu_period && !req->cpu_quota && !req->cpu_shares)
		return;
	bjson_writer_key(w, "resources");
	bjson_writer_begin_object(w);
	if (req->memory_limit_in_bytes) {
		bjson_writer_key(w, "memory");
		bjson_writer_begin_object(w);
		bjson_writer_kv_int(w, "limit", req->memory_limit_in_bytes);
		bjson_writer_end_object(w);
	}
	if (req->cpu_period || req->cpu_quota || req->cpu_shares) {
		bjson_writer_key(w, "cpu");
		bjson_writer_begin_object(w);
		if (req->cpu_shares)
			bjson_writer_kv_int(w, "shares", req->cpu_shares);
		if (req->cpu_quota)
			bjson_writer_kv_int(w, "quota", req->cpu_quota);
		if (req->cpu_period)
			bjson_writer_kv_int(w, "period", req->cpu_period);
		bjson_writer_end_object(w);
	}
	bjson_writer_end_object(w);
}

static void write_linux(struct json_writer *w, const struct ocispec_input *in,
			const struct json *dflt)
{
	bjson_writer_key(w, "linux");
	bjson_writer_begin_object(w);
	write_namespaces(w, in);
	if (in->cgroups_path)
		bjson_writer_kv_string(w, "cgroupsPath", in->cgroups_path);
	write_resources(w, in->req);
	copy_key(w, dflt, "maskedPaths");
	copy_key(w, dflt, "readonlyPaths");
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

int ocispec_generate(const struct ocispec_input *in, char **ret, struct berth_error **err)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_(bjson_freep) struct json *dflt = NULL;
	int r;
	if ((r = runtime_spec_generate(false, &text, err)) < 0 ||
	    (r = bjson_parse(text, &dflt, err)) < 0)
		return r;
	struct json_writer *w = bjson_writer_new(true);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	copy_key(w, dflt, "ociVersion");
	if ((r = write_process(w, in, bjson_object_get(dflt, "process"), err)) < 0) {
		_cleanup_free_ char *discard = NULL;
		bjson_writer_finish(w, &discard, NULL);
		return r;
	}
	bjson_writer_key(w, "root");
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "path", in->rootfs);
	bjson_writer_kv_bool(w, "readonly", in->req->readonly_rootfs);
	bjson_writer_end_object(w);
	/* no "hostname": the container joins the pod's UTS namespace, which has it */
	write_mounts(w, in, bjson_object_get(dflt, "mounts"));
	write_linux(w, in, bjson_object_get(dflt, "linux"));
	write_annotations(w, in->annotations);
	bjson_writer_end_object(w);
	r = bjson_writer_finish(w, ret, NULL);
	return r < 0 ? berth_error_set(err, -r, "config.json: a field is not valid UTF-8") : 0;
}

int ocispec_exec_process(const char *config_json, char *const *argv, char **ret,
			 struct berth_error **err)
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
	bjson_writer_kv_bool(w, "terminal", false);
	bjson_writer_end_object(w);
	r = bjson_writer_finish(w, ret, NULL);
	return r < 0 ? berth_error_set(err, -r, "exec: an argument is not valid UTF-8") : 0;
}
