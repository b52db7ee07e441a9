/* libberth's sandbox API (sandbox.h) over the OCI runtime: a spec becomes a config.json in a
 * bundle of the library's own, and the container is the runtime's, created in this process.
 *
 * A spec is a base config (the runtime's default, or the caller's OCI config) plus the setters'
 * values; create renders them into one config as an RFC 7386 merge patch of the base, so what
 * the caller did not set stays as the base has it, and validates the result with the runtime's
 * own parser before anything exists on disk. */
#include "runtime/sandbox.h"
#include "runtime/config-internal.h"
#include "runtime/container-internal.h"
#include "runtime/runtime.h"
#include "runtime/sandbox-seccomp.h"
#include "runtime/state-internal.h"
#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "base/process.h"
#include "cgroup/cgroup.h"
#include "image/image.h"
#include "netns/ns-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SANDBOX_DEFAULT_ROOT "/run/berth/sandbox"
#define CPU_PERIOD_DEFAULT 100000

/* The runtime's create, start and delete keep their sync messages in static buffers: one at a
 * time in this process. */
static pthread_mutex_t runtime_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- errors ---- */

const char *berth_error_message(const struct berth_error *e)
{
	return e ? e->msg : NULL;
}

int berth_error_errno(const struct berth_error *e)
{
	return e ? e->code : 0;
}

/* ---- the spec ---- */

enum choice { CHOICE_KEEP, CHOICE_DEFAULT, CHOICE_NONE };

struct bind_mount {
	char *source;
	char *destination;
	bool readonly;
};

struct berth_spec {
	struct json *base;  /* the config the setters override */
	bool from_oci;      /* base is the caller's config (else the runtime's default) */
	char *oci_dir;      /* the directory of the caller's config.json, or NULL */
	char *rootfs;       /* absolute; NULL: the base's root.path */
	char *image_store;  /* NULL: the default store */
	char *image_name;   /* NULL: no image */
	char **args, **env; /* NULL: the base's */
	char *cwd, *hostname;
	bool has_user;
	uid_t uid;
	gid_t gid;
	uint64_t memory, cpu_quota, cpu_period, pids; /* 0: not set */
	bool has_namespaces;
	unsigned namespaces;
	int readonly; /* -1: the base's */
	struct bind_mount *binds;
	size_t n_binds;
	bool has_stdio;
	int stdio[3];
	enum choice seccomp, caps;
};

#define SPEC_CHECK(s)                                                                              \
	do {                                                                                       \
		if (!(s))                                                                          \
			return berth_error_set(err, EINVAL, "%s: the spec is NULL", __func__);     \
	} while (0)

static int oom(struct berth_error **err, const char *where)
{
	return berth_error_set(err, ENOMEM, "%s: out of memory", where);
}

static char **strv_copy(const char *const *v)
{
	size_t n = 0;
	while (v[n])
		n++;
	char **c = calloc(n + 1, sizeof(*c));
	for (size_t i = 0; c && i < n; i++)
		if (!(c[i] = strdup(v[i]))) {
			strv_free(c);
			return NULL;
		}
	return c;
}

/* The runtime's default config (runtime_spec_generate), parsed. */
static int default_config(struct json **ret, struct berth_error **err)
{
	_cleanup_free_ char *text = NULL;
	int r = runtime_spec_generate(false, &text, err);
	return r < 0 ? r : bjson_parse(text, ret, err);
}

static struct berth_spec *spec_alloc(void)
{
	struct berth_spec *s = calloc(1, sizeof(*s));
	if (s)
		s->readonly = -1;
	return s;
}

struct berth_spec *berth_spec_new(void)
{
	struct berth_spec *s = spec_alloc();
	if (!s || default_config(&s->base, NULL) < 0)
		return berth_spec_free(s);
	/* the default config's root is read-only and has no seccomp filter: the library's default
	 * is a writable root with Docker's profile */
	s->readonly = false;
	s->seccomp = CHOICE_DEFAULT;
	return s;
}

struct berth_spec *berth_spec_free(struct berth_spec *s)
{
	if (!s)
		return NULL;
	bjson_free(s->base);
	free(s->oci_dir);
	free(s->rootfs);
	free(s->image_store);
	free(s->image_name);
	strv_free(s->args);
	strv_free(s->env);
	free(s->cwd);
	free(s->hostname);
	for (size_t i = 0; i < s->n_binds; i++) {
		free(s->binds[i].source);
		free(s->binds[i].destination);
	}
	free(s->binds);
	free(s);
	return NULL;
}

static void berth_spec_freep(struct berth_spec **s)
{
	berth_spec_free(*s);
}

/* Reads config (a config.json or a bundle directory holding one); *ret_dir is the directory a
 * relative root.path starts from. */
static int read_oci_file(const char *config, char **ret_text, char **ret_dir,
			 struct berth_error **err)
{
	char dir[PATH_MAX];
	if (!realpath(config, dir))
		return berth_error_setsys(err, errno, "%s", config);
	struct stat st;
	if (stat(dir, &st) < 0)
		return berth_error_setsys(err, errno, "%s", config);
	const char *file = "config.json";
	if (!S_ISDIR(st.st_mode)) {
		char *slash = strrchr(dir, '/');
		*slash = '\0';
		file = slash + 1;
		if (!dir[0])
			strcpy(dir, "/");
	}
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return berth_error_setsys(err, errno, "%s", dir);
	int r = read_file_at(dfd, file, ret_text, NULL, err);
	if (r < 0)
		return berth_error_wrap(err, "%s", config);
	return (*ret_dir = strdup(dir)) ? 0 : -ENOMEM;
}

/* A relative root.path is only meaningful beside its config.json. */
static int oci_rootfs(struct berth_spec *s, const char *root_path, const char *dir)
{
	if (root_path[0] == '/' || !dir)
		return 0;
	return asprintf(&s->rootfs, "%s/%s", dir, root_path) < 0 ? -ENOMEM : 0;
}

int berth_spec_from_oci_config(const char *config, struct berth_spec **ret,
			       struct berth_error **err)
{
	if (!config || !ret)
		return berth_error_set(err, EINVAL, "%s: config and ret are required", __func__);
	_cleanup_free_ char *text = NULL, *dir = NULL;
	int r = 0;
	if (config[0] == '{')
		text = strdup(config);
	else
		r = read_oci_file(config, &text, &dir, err);
	if (r < 0)
		return berth_error_wrap(err, "%s", __func__);
	if (!text)
		return oom(err, __func__);
	_cleanup_(oci_config_freep) struct oci_config *cfg = NULL;
	if ((r = oci_config_parse(text, &cfg, err)) < 0)
		return berth_error_wrap(err, "%s", __func__);
	if (cfg->process.terminal)
		return berth_error_set(err, ENOTSUP,
				       "%s: process.terminal: the library gives no terminal (use berth_spec_set_stdio)",
				       __func__);
	_cleanup_(berth_spec_freep) struct berth_spec *s = spec_alloc();
	if (!s)
		return oom(err, __func__);
	s->from_oci = true;
	if ((r = bjson_parse(text, &s->base, err)) < 0)
		return berth_error_wrap(err, "%s", __func__);
	if (oci_rootfs(s, cfg->root_path, dir) < 0)
		return oom(err, __func__);
	s->oci_dir = TAKE_PTR(dir);
	*ret = TAKE_PTR(s);
	return 0;
}

/* Replaces *slot with a copy of value. */
static int set_string(char **slot, const char *value, struct berth_error **err, const char *where)
{
	char *copy = strdup(value);
	if (!copy)
		return oom(err, where);
	free(*slot);
	*slot = copy;
	return 0;
}

int berth_spec_set_rootfs(struct berth_spec *s, const char *dir, struct berth_error **err)
{
	SPEC_CHECK(s);
	if (!dir || !*dir)
		return berth_error_set(err, EINVAL, "%s: rootfs: no directory given", __func__);
	char path[PATH_MAX];
	struct stat st;
	if (!realpath(dir, path) || stat(path, &st) < 0)
		return berth_error_setsys(err, errno, "%s: rootfs %s", __func__, dir);
	if (!S_ISDIR(st.st_mode))
		return berth_error_set(err, ENOTDIR, "%s: rootfs %s: not a directory", __func__, dir);
	if (strcmp(path, "/") == 0)
		return berth_error_set(err, EINVAL, "%s: rootfs %s: the host's / cannot be a container's root",
				       __func__, dir);
	int r = set_string(&s->rootfs, path, err, __func__);
	if (r == 0) {
		s->image_name = (free(s->image_name), NULL);
		s->image_store = (free(s->image_store), NULL);
	}
	return r;
}

int berth_spec_set_image(struct berth_spec *s, const char *store_root, const char *name,
			 struct berth_error **err)
{
	SPEC_CHECK(s);
	if (!name || !*name)
		return berth_error_set(err, EINVAL, "%s: image: no name given", __func__);
	if (store_root && store_root[0] != '/')
		return berth_error_set(err, EINVAL, "%s: store_root %s: must be an absolute path",
				       __func__, store_root);
	_cleanup_free_ char *n = strdup(name), *root = store_root ? strdup(store_root) : NULL;
	if (!n || (store_root && !root))
		return oom(err, __func__);
	free(s->image_name);
	free(s->image_store);
	s->image_name = TAKE_PTR(n);
	s->image_store = TAKE_PTR(root);
	s->rootfs = (free(s->rootfs), NULL);
	return 0;
}

/* Replaces *slot with a copy of v. */
static int set_strv(char ***slot, const char *const *v, struct berth_error **err, const char *where)
{
	char **copy = strv_copy(v);
	if (!copy)
		return oom(err, where);
	strv_free(*slot);
	*slot = copy;
	return 0;
}

int berth_spec_set_args(struct berth_spec *s, const char *const *argv, struct berth_error **err)
{
	SPEC_CHECK(s);
	if (!argv || !argv[0] || !argv[0][0])
		return berth_error_set(err, EINVAL, "%s: args: must name a program (argv[0])", __func__);
	return set_strv(&s->args, argv, err, __func__);
}

int berth_spec_set_env(struct berth_spec *s, const char *const *env, struct berth_error **err)
{
	SPEC_CHECK(s);
	if (!env)
		return berth_error_set(err, EINVAL, "%s: env: NULL (an empty list is { NULL })", __func__);
	for (size_t i = 0; env[i]; i++) {
		const char *eq = strchr(env[i], '=');
		if (!eq || eq == env[i])
			return berth_error_set(err, EINVAL, "%s: env[%zu]: \"%s\" is not KEY=VALUE",
					       __func__, i, env[i]);
	}
	return set_strv(&s->env, env, err, __func__);
}

int berth_spec_set_cwd(struct berth_spec *s, const char *cwd, struct berth_error **err)
{
	SPEC_CHECK(s);
	if (!cwd || cwd[0] != '/')
		return berth_error_set(err, EINVAL, "%s: cwd %s: must be an absolute path", __func__,
				       cwd ? cwd : "(null)");
	return set_string(&s->cwd, cwd, err, __func__);
}

int berth_spec_set_user(struct berth_spec *s, uid_t uid, gid_t gid, struct berth_error **err)
{
	SPEC_CHECK(s);
	if (uid == (uid_t)-1 || gid == (gid_t)-1)
		return berth_error_set(err, EINVAL, "%s: user: -1 is not an id", __func__);
	s->has_user = true;
	s->uid = uid;
	s->gid = gid;
	return 0;
}

int berth_spec_set_hostname(struct berth_spec *s, const char *hostname, struct berth_error **err)
{
	SPEC_CHECK(s);
	if (!hostname || !*hostname || strlen(hostname) > HOST_NAME_MAX)
		return berth_error_set(err, EINVAL, "%s: hostname: must be 1 to %d bytes", __func__,
				       HOST_NAME_MAX);
	return set_string(&s->hostname, hostname, err, __func__);
}

int berth_spec_set_memory_limit(struct berth_spec *s, uint64_t bytes, struct berth_error **err)
{
	SPEC_CHECK(s);
	if (bytes == 0 || bytes > INT64_MAX)
		return berth_error_set(err, EINVAL, "%s: memory limit %" PRIu64 ": must be 1 to 2^63-1 bytes",
				       __func__, bytes);
	s->memory = bytes;
	return 0;
}

int berth_spec_set_cpu_limit(struct berth_spec *s, uint64_t quota_us, uint64_t period_us,
			     struct berth_error **err)
{
	SPEC_CHECK(s);
	if (period_us == 0)
		period_us = CPU_PERIOD_DEFAULT;
	/* the kernel's bounds for cpu.max */
	if (period_us < 1000 || period_us > 1000000)
		return berth_error_set(err, EINVAL, "%s: cpu period %" PRIu64 " us: must be 1000 to 1000000",
				       __func__, period_us);
	if (quota_us < 1000 || quota_us > INT64_MAX)
		return berth_error_set(err, EINVAL, "%s: cpu quota %" PRIu64 " us: must be at least 1000",
				       __func__, quota_us);
	s->cpu_quota = quota_us;
	s->cpu_period = period_us;
	return 0;
}

int berth_spec_set_pids_limit(struct berth_spec *s, uint64_t max, struct berth_error **err)
{
	SPEC_CHECK(s);
	if (max == 0 || max > INT64_MAX)
		return berth_error_set(err, EINVAL, "%s: pids limit %" PRIu64 ": must be at least 1",
				       __func__, max);
	s->pids = max;
	return 0;
}

static const struct {
	unsigned flag;
	const char *name; /* the runtime-spec's */
} namespace_names[] = {
	{ BERTH_NAMESPACE_MOUNT, "mount" }, { BERTH_NAMESPACE_PID, "pid" },
	{ BERTH_NAMESPACE_IPC, "ipc" },	    { BERTH_NAMESPACE_UTS, "uts" },
	{ BERTH_NAMESPACE_NET, "network" }, { BERTH_NAMESPACE_CGROUP, "cgroup" },
	{ BERTH_NAMESPACE_TIME, "time" },
};

int berth_spec_set_namespaces(struct berth_spec *s, unsigned namespaces, struct berth_error **err)
{
	SPEC_CHECK(s);
	unsigned known = 0;
	for (size_t i = 0; i < ARRAY_SIZE(namespace_names); i++)
		known |= namespace_names[i].flag;
	if (namespaces & ~known)
		return berth_error_set(err, EINVAL, "%s: namespaces: unknown flags 0x%x", __func__,
				       namespaces & ~known);
	if (!(namespaces & BERTH_NAMESPACE_MOUNT))
		return berth_error_set(err, EINVAL,
				       "%s: namespaces: BERTH_NAMESPACE_MOUNT is required (the container's root is a mount)",
				       __func__);
	s->has_namespaces = true;
	s->namespaces = namespaces;
	return 0;
}

int berth_spec_set_readonly_rootfs(struct berth_spec *s, bool readonly, struct berth_error **err)
{
	SPEC_CHECK(s);
	s->readonly = readonly;
	return 0;
}

int berth_spec_add_bind_mount(struct berth_spec *s, const char *source, const char *destination,
			      bool readonly, struct berth_error **err)
{
	SPEC_CHECK(s);
	struct stat st;
	if (!source || source[0] != '/')
		return berth_error_set(err, EINVAL, "%s: source %s: must be an absolute path", __func__,
				       source ? source : "(null)");
	if (stat(source, &st) < 0)
		return berth_error_setsys(err, errno, "%s: source %s", __func__, source);
	if (!destination || destination[0] != '/' || strcmp(destination, "/") == 0)
		return berth_error_set(err, EINVAL,
				       "%s: destination %s: must be an absolute path below /", __func__,
				       destination ? destination : "(null)");
	struct bind_mount *v = realloc(s->binds, (s->n_binds + 1) * sizeof(*v));
	if (!v)
		return oom(err, __func__);
	s->binds = v;
	struct bind_mount *b = &v[s->n_binds];
	*b = (struct bind_mount){ .source = strdup(source), .destination = strdup(destination),
				  .readonly = readonly };
	if (!b->source || !b->destination) {
		free(b->source);
		free(b->destination);
		return oom(err, __func__);
	}
	s->n_binds++;
	return 0;
}

int berth_spec_set_stdio(struct berth_spec *s, int in_fd, int out_fd, int err_fd,
			 struct berth_error **err)
{
	SPEC_CHECK(s);
	static const char *const names[] = { "stdin", "stdout", "stderr" };
	int fds[3] = { in_fd, out_fd, err_fd };
	for (int i = 0; i < 3; i++)
		if (fds[i] < -1 || (fds[i] >= 0 && fcntl(fds[i], F_GETFD) < 0))
			return berth_error_set(err, EBADF, "%s: %s: fd %d is not open", __func__,
					       names[i], fds[i]);
	s->has_stdio = true;
	memcpy(s->stdio, fds, sizeof(fds));
	return 0;
}

int berth_spec_set_default_seccomp(struct berth_spec *s, bool enabled, struct berth_error **err)
{
	SPEC_CHECK(s);
	s->seccomp = enabled ? CHOICE_DEFAULT : CHOICE_NONE;
	return 0;
}

int berth_spec_set_default_capabilities(struct berth_spec *s, bool enabled,
					struct berth_error **err)
{
	SPEC_CHECK(s);
	s->caps = enabled ? CHOICE_DEFAULT : CHOICE_NONE;
	return 0;
}

/* ---- rendering a spec into config.json ---- */

static void write_strv(struct json_writer *w, const char *key, char *const *v)
{
	bjson_writer_key(w, key);
	bjson_writer_begin_array(w);
	for (; *v; v++)
		bjson_writer_string(w, *v);
	bjson_writer_end_array(w);
}

/* Every set empty: root without capabilities (an absent object would keep root's). */
static void write_no_capabilities(struct json_writer *w)
{
	static const char *const sets[] = { "bounding", "effective", "permitted", "inheritable",
					    "ambient" };
	bjson_writer_begin_object(w);
	for (size_t i = 0; i < ARRAY_SIZE(sets); i++) {
		bjson_writer_key(w, sets[i]);
		bjson_writer_begin_array(w);
		bjson_writer_end_array(w);
	}
	bjson_writer_end_object(w);
}

static void patch_process(struct json_writer *w, const struct berth_spec *s,
			  const struct json *defaults)
{
	bjson_writer_key(w, "process");
	bjson_writer_begin_object(w);
	bjson_writer_kv_bool(w, "terminal", false);
	if (s->args)
		write_strv(w, "args", s->args);
	if (s->env)
		write_strv(w, "env", s->env);
	if (s->cwd)
		bjson_writer_kv_string(w, "cwd", s->cwd);
	if (s->has_user) {
		bjson_writer_key(w, "user");
		bjson_writer_begin_object(w);
		bjson_writer_kv_int(w, "uid", s->uid);
		bjson_writer_kv_int(w, "gid", s->gid);
		bjson_writer_end_object(w);
	}
	if (s->caps != CHOICE_KEEP) {
		bjson_writer_key(w, "capabilities");
		if (s->caps == CHOICE_NONE)
			write_no_capabilities(w);
		else
			bjson_writer_value(
				w, bjson_object_get(bjson_object_get(defaults, "process"), "capabilities"));
	}
	bjson_writer_end_object(w);
}

/* A bind mount's relative source is relative to its bundle: the caller's, not the library's. */
static int write_mount_rebased(struct json_writer *w, const struct json *m, const char *dir)
{
	const char *source = bjson_string(bjson_object_get(m, "source"));
	bool bind = strcmp(bjson_string(bjson_object_get(m, "type")) ?: "", "bind") == 0;
	const struct json *options = bjson_object_get(m, "options");
	for (size_t i = 0; i < bjson_array_size(options); i++) {
		const char *o = bjson_string(bjson_array_get(options, i));
		bind = bind || (o && (strcmp(o, "bind") == 0 || strcmp(o, "rbind") == 0));
	}
	if (!dir || !bind || !source || source[0] == '/') {
		bjson_writer_value(w, m);
		return 0;
	}
	_cleanup_free_ char *abs = NULL;
	if (asprintf(&abs, "%s/%s", dir, source) < 0)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	for (size_t i = 0; i < bjson_object_size(m); i++) {
		const char *key = bjson_object_key(m, i);
		bjson_writer_key(w, key);
		if (strcmp(key, "source") == 0)
			bjson_writer_string(w, abs);
		else
			bjson_writer_value(w, bjson_object_value(m, i));
	}
	bjson_writer_end_object(w);
	return 0;
}

/* Arrays are replaced whole by a merge patch: the base's mounts, then the binds. */
static int patch_mounts(struct json_writer *w, const struct berth_spec *s)
{
	if (!s->n_binds && !s->oci_dir)
		return 0;
	const struct json *base = bjson_object_get(s->base, "mounts");
	bjson_writer_key(w, "mounts");
	bjson_writer_begin_array(w);
	for (size_t i = 0; i < bjson_array_size(base); i++)
		if (write_mount_rebased(w, bjson_array_get(base, i), s->oci_dir) < 0)
			return -ENOMEM;
	for (size_t i = 0; i < s->n_binds; i++) {
		const struct bind_mount *b = &s->binds[i];
		bjson_writer_begin_object(w);
		bjson_writer_kv_string(w, "destination", b->destination);
		bjson_writer_kv_string(w, "type", "bind");
		bjson_writer_kv_string(w, "source", b->source);
		bjson_writer_key(w, "options");
		bjson_writer_begin_array(w);
		bjson_writer_string(w, "rbind");
		bjson_writer_string(w, "nosuid");
		bjson_writer_string(w, "nodev");
		if (b->readonly)
			bjson_writer_string(w, "ro");
		bjson_writer_end_array(w);
		bjson_writer_end_object(w);
	}
	bjson_writer_end_array(w);
	return 0;
}

static void patch_resources(struct json_writer *w, const struct berth_spec *s)
{
	if (!s->memory && !s->cpu_quota && !s->pids)
		return;
	bjson_writer_key(w, "resources");
	bjson_writer_begin_object(w);
	if (s->memory) {
		bjson_writer_key(w, "memory");
		bjson_writer_begin_object(w);
		bjson_writer_kv_int(w, "limit", (int64_t)s->memory);
		bjson_writer_end_object(w);
	}
	if (s->cpu_quota) {
		bjson_writer_key(w, "cpu");
		bjson_writer_begin_object(w);
		bjson_writer_kv_int(w, "quota", (int64_t)s->cpu_quota);
		bjson_writer_key(w, "period");
		bjson_writer_uint(w, s->cpu_period);
		bjson_writer_end_object(w);
	}
	if (s->pids) {
		bjson_writer_key(w, "pids");
		bjson_writer_begin_object(w);
		bjson_writer_kv_int(w, "limit", (int64_t)s->pids);
		bjson_writer_end_object(w);
	}
	bjson_writer_end_object(w);
}

static void patch_linux(struct json_writer *w, const struct berth_spec *s,
			const struct json *seccomp)
{
	bjson_writer_key(w, "linux");
	bjson_writer_begin_object(w);
	if (s->has_namespaces) {
		bjson_writer_key(w, "namespaces");
		bjson_writer_begin_array(w);
		for (size_t i = 0; i < ARRAY_SIZE(namespace_names); i++) {
			if (!(s->namespaces & namespace_names[i].flag))
				continue;
			bjson_writer_begin_object(w);
			bjson_writer_kv_string(w, "type", namespace_names[i].name);
			bjson_writer_end_object(w);
		}
		bjson_writer_end_array(w);
	}
	patch_resources(w, s);
	if (s->seccomp != CHOICE_KEEP) {
		bjson_writer_key(w, "seccomp");
		if (s->seccomp == CHOICE_NONE)
			bjson_writer_null(w); /* a merge patch's null removes the base's */
		else
			bjson_writer_value(w, seccomp);
	}
	bjson_writer_end_object(w);
}

/* The merge patch of the base config that the spec's settings make. */
static int spec_patch(const struct berth_spec *s, const char *root_path, struct json **ret,
		      struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *defaults = NULL, *seccomp = NULL;
	int r = 0;
	if (s->caps == CHOICE_DEFAULT && s->from_oci)
		r = default_config(&defaults, err);
	if (r == 0 && s->seccomp == CHOICE_DEFAULT)
		r = bjson_parse(BERTH_SECCOMP_DEFAULT_JSON, &seccomp, err);
	if (r < 0)
		return berth_error_wrap(err, "berth's defaults");
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	patch_process(w, s, defaults ? defaults : s->base);
	bjson_writer_key(w, "root");
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "path", root_path);
	if (s->readonly >= 0)
		bjson_writer_kv_bool(w, "readonly", s->readonly);
	bjson_writer_end_object(w);
	if (s->hostname) {
		bjson_writer_kv_string(w, "hostname", s->hostname);
	} else if (s->has_namespaces && !(s->namespaces & BERTH_NAMESPACE_UTS)) {
		bjson_writer_key(w, "hostname"); /* the base's needs the UTS namespace left out */
		bjson_writer_null(w);
	}
	r = patch_mounts(w, s);
	patch_linux(w, s, seccomp);
	bjson_writer_end_object(w);
	_cleanup_free_ char *text = NULL;
	int f = bjson_writer_finish(w, &text, NULL); /* frees w, also after a failure above */
	if (r < 0 || (r = f) < 0)
		return berth_error_set(err, -r, "encode the config");
	return bjson_parse(text, ret, err);
}

/* RFC 7386: patch's members replace target's (objects merge member by member, null removes),
 * everything else of target stays. */
static void write_merged(struct json_writer *w, const struct json *target, const struct json *patch)
{
	if (bjson_type_of(patch) != JSON_OBJECT) {
		bjson_writer_value(w, patch);
		return;
	}
	bool merge = bjson_type_of(target) == JSON_OBJECT;
	bjson_writer_begin_object(w);
	for (size_t i = 0; merge && i < bjson_object_size(target); i++) {
		const char *key = bjson_object_key(target, i);
		const struct json *p = bjson_object_get(patch, key);
		if (bjson_type_of(p) == JSON_NULL)
			continue;
		bjson_writer_key(w, key);
		if (bjson_type_of(p) == JSON_ABSENT)
			bjson_writer_value(w, bjson_object_value(target, i));
		else
			write_merged(w, bjson_object_value(target, i), p);
	}
	for (size_t i = 0; i < bjson_object_size(patch); i++) {
		const char *key = bjson_object_key(patch, i);
		const struct json *p = bjson_object_value(patch, i);
		if (bjson_type_of(p) == JSON_NULL ||
		    (merge && bjson_type_of(bjson_object_get(target, key)) != JSON_ABSENT))
			continue;
		bjson_writer_key(w, key);
		write_merged(w, NULL, p);
	}
	bjson_writer_end_object(w);
}

/* The container's config.json text, checked by the runtime's parser; *ret_new_netns: it gets a
 * network namespace of its own (whose loopback the runtime leaves down). */
static int spec_render(const struct berth_spec *s, const char *bundle, char **ret,
		       bool *ret_new_netns, struct berth_error **err)
{
	if (!s->from_oci && !s->args)
		return berth_error_set(err, EINVAL, "args: not set (berth_spec_set_args)");
	_cleanup_free_ char *image_root = NULL;
	const char *root = s->rootfs;
	if (s->image_name && asprintf(&image_root, "%s/rootfs", bundle) < 0)
		return -ENOMEM;
	if (image_root)
		root = image_root;
	else if (!root && s->from_oci)
		root = bjson_string(bjson_object_get(bjson_object_get(s->base, "root"), "path"));
	if (!root || root[0] != '/')
		return berth_error_set(err, EINVAL,
				       "rootfs: not set (berth_spec_set_rootfs or berth_spec_set_image%s)",
				       s->from_oci ? "; a relative root.path needs the config's bundle" : "");
	_cleanup_(bjson_freep) struct json *patch = NULL;
	int r = spec_patch(s, root, &patch, err);
	if (r < 0)
		return r;
	struct json_writer *w = bjson_writer_new(true);
	if (!w)
		return -ENOMEM;
	write_merged(w, s->base, patch);
	_cleanup_free_ char *text = NULL;
	if ((r = bjson_writer_finish(w, &text, NULL)) < 0)
		return berth_error_set(err, -r, "encode the config");
	_cleanup_(oci_config_freep) struct oci_config *cfg = NULL;
	if ((r = oci_config_parse(text, &cfg, err)) < 0)
		return r;
	const struct oci_namespace *net = oci_config_namespace(cfg, CLONE_NEWNET);
	*ret_new_netns = net && !net->path;
	*ret = TAKE_PTR(text);
	return 0;
}

/* ---- the container ---- */

struct berth_container {
	char *id;
	char *runtime_root; /* STATE_ROOT/runtime: the runtime's state root */
	char *bundles;      /* STATE_ROOT/bundles */
	char *bundle;       /* STATE_ROOT/bundles/ID */
	bool has_image;
	char *image_store;  /* with has_image: NULL is the default store */
	char *cgroup_path;  /* NULL: no cgroup2 hierarchy */
	pid_t pid;
	int pidfd;
	bool exited, destroyed;
	int exit_code, signal;
};

struct berth_container *berth_container_free(struct berth_container *c)
{
	if (!c)
		return NULL;
	closep(&c->pidfd);
	free(c->id);
	free(c->runtime_root);
	free(c->bundles);
	free(c->bundle);
	free(c->image_store);
	free(c->cgroup_path);
	free(c);
	return NULL;
}

static void berth_container_freep(struct berth_container **c)
{
	berth_container_free(*c);
}

const char *berth_container_id(const struct berth_container *c)
{
	return c ? c->id : NULL;
}

pid_t berth_container_pid(const struct berth_container *c)
{
	return c ? c->pid : 0;
}

int berth_container_pidfd(const struct berth_container *c)
{
	return c ? c->pidfd : -EBADF;
}

static int random_id(char **ret)
{
	uint64_t n;
	if (getrandom(&n, sizeof(n), 0) != sizeof(n))
		return -errno;
	return asprintf(ret, "sandbox-%016" PRIx64, n) < 0 ? -ENOMEM : 0;
}

static int container_new(const char *state_root, const char *id, const struct berth_spec *spec,
			 struct berth_container **ret, struct berth_error **err)
{
	if (!state_root)
		state_root = SANDBOX_DEFAULT_ROOT;
	if (state_root[0] != '/')
		return berth_error_set(err, EINVAL, "state root %s: must be an absolute path", state_root);
	_cleanup_(berth_container_freep) struct berth_container *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->pidfd = -EBADF;
	int r = id ? ((c->id = strdup(id)) ? 0 : -ENOMEM) : random_id(&c->id);
	if (r < 0)
		return berth_error_setsys(err, -r, "container id");
	if ((r = state_id_check(c->id, err)) < 0)
		return r;
	if (asprintf(&c->runtime_root, "%s/runtime", state_root) < 0 ||
	    asprintf(&c->bundles, "%s/bundles", state_root) < 0 ||
	    asprintf(&c->bundle, "%s/%s", c->bundles, c->id) < 0 ||
	    (spec->image_store && !(c->image_store = strdup(spec->image_store))))
		return -ENOMEM;
	c->has_image = spec->image_name != NULL;
	*ret = TAKE_PTR(c);
	return 0;
}

static void image_store_freep(struct image_store **s)
{
	if (*s)
		image_store_free(*s);
}

static int open_image_store(const struct berth_container *c, struct image_store **ret,
			    struct berth_error **err)
{
	struct image_store_options o = { .root = c->image_store };
	return image_store_open(&o, ret, err);
}

/* Removes the bundle (and the image's root in it); tolerates a bundle made half-way. */
static int bundle_remove(const struct berth_container *c, struct berth_error **err)
{
	if (c->has_image) {
		_cleanup_(image_store_freep) struct image_store *s = NULL;
		int r = open_image_store(c, &s, err);
		if (r < 0 || (r = image_rootfs_remove(s, c->bundle, err)) < 0)
			return berth_error_wrap(err, "remove the root of %s", c->id);
	}
	_cleanup_close_ int dfd = open(c->bundles, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return berth_error_setsys(err, errno, "%s", c->bundles);
	int r = remove_tree_at(dfd, c->id);
	return r < 0 ? berth_error_setsys(err, -r, "remove the bundle %s", c->bundle) : 0;
}

static int bundle_make(const struct berth_container *c, const struct berth_spec *spec,
		       const char *config, struct berth_error **err)
{
	_cleanup_close_ int bundles = -EBADF, dfd = -EBADF;
	/* the runtime's helper: it makes the parents, the leaf private to root */
	int r = state_root_open(c->bundles, true, &bundles, err);
	if (r < 0)
		return r;
	if (mkdirat(bundles, c->id, 0700) < 0)
		return errno == EEXIST ? berth_error_set(err, EEXIST, "container %s already exists", c->id)
				       : berth_error_setsys(err, errno, "bundle %s", c->bundle);
	if ((dfd = openat(bundles, c->id, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		r = berth_error_setsys(err, errno, "bundle %s", c->bundle);
	} else if (c->has_image) {
		_cleanup_(image_store_freep) struct image_store *s = NULL;
		if ((r = open_image_store(c, &s, err)) == 0)
			r = image_rootfs_create(s, spec->image_name, c->bundle, err);
		if (r < 0)
			(void)berth_error_wrap(err, "image %s", spec->image_name);
	}
	if (r == 0)
		r = write_file_atomic_at(dfd, "config.json", config, strlen(config), 0600, false, err);
	if (r < 0)
		(void)bundle_remove(c, NULL); /* the error being reported wins */
	return r;
}

/* -1 in the spec's stdio is /dev/null. */
static int open_stdio(const struct berth_spec *s, int fds[3], int *devnull,
		      struct berth_error **err)
{
	for (int i = 0; i < 3; i++) {
		fds[i] = s->stdio[i];
		if (fds[i] >= 0)
			continue;
		if (*devnull < 0 && (*devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
			return berth_error_setsys(err, errno, "/dev/null");
		fds[i] = *devnull;
	}
	return 0;
}

static int loopback_cb(void *opaque, struct berth_error **err)
{
	int r = ns_loopback_up();
	return r < 0 ? berth_error_setsys(err, -r, "bring up the loopback interface") : 0;
}

/* The init's pid, pidfd and cgroup, from the runtime's state. The pidfd is proven to be the init
 * (start time) and this process's child (else waiting could not report its status). */
static int container_attach(struct berth_container *c, struct berth_error **err)
{
	_cleanup_close_ int dir_fd = -EBADF;
	_cleanup_(stored_state_freep) struct stored_state *st = NULL;
	int r = open_and_load(c->runtime_root, c->id, false, &dir_fd, &st, err);
	if (r < 0)
		return r;
	c->pid = st->pid;
	if (st->cgroup_path && !(c->cgroup_path = strdup(st->cgroup_path)))
		return -ENOMEM;
	if ((c->pidfd = state_open_init_pidfd(st)) < 0)
		return berth_error_set(err, ESRCH, "container %s: its init died during create", c->id);
	siginfo_t si = { 0 };
	if (waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		return berth_error_setsys(err, errno,
					  "container %s: its init is not a child of this process (is SIGCHLD ignored?)",
					  c->id);
	return 0;
}

/* The runtime's create, then what the library adds: the handle's pidfd, the loopback. */
static int container_spawn(struct berth_container *c, const struct berth_spec *spec, bool new_netns,
			   struct berth_error **err)
{
	_cleanup_close_ int devnull = -EBADF;
	int fds[3];
	int r = spec->has_stdio ? open_stdio(spec, fds, &devnull, err) : 0;
	if (r < 0)
		return r;
	struct runtime_create_options o = { .state_root = c->runtime_root, .id = c->id,
					    .bundle = c->bundle,
					    .stdio = spec->has_stdio ? fds : NULL };
	pthread_mutex_lock(&runtime_lock);
	r = runtime_container_create(&o, err);
	pthread_mutex_unlock(&runtime_lock);
	if (r < 0)
		return r;
	r = container_attach(c, err);
	if (r == 0 && new_netns) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/net", c->pid);
		r = ns_run_in_netns(path, loopback_cb, NULL, err);
	}
	if (r < 0) {
		pthread_mutex_lock(&runtime_lock);
		(void)runtime_container_delete(c->runtime_root, c->id, true, NULL);
		pthread_mutex_unlock(&runtime_lock);
		if (c->pidfd >= 0)
			(void)process_wait(c->pidfd, -1); /* delete killed it: reap */
	}
	return r;
}

int berth_container_create(const char *state_root, const char *id, const struct berth_spec *spec,
			   struct berth_container **ret, struct berth_error **err)
{
	if (!spec || !ret)
		return berth_error_set(err, EINVAL, "%s: spec and ret are required", __func__);
	_cleanup_(berth_container_freep) struct berth_container *c = NULL;
	_cleanup_free_ char *config = NULL;
	bool new_netns = false;
	int r = container_new(state_root, id, spec, &c, err);
	if (r == 0)
		r = spec_render(spec, c->bundle, &config, &new_netns, err);
	if (r == 0 && (r = bundle_make(c, spec, config, err)) == 0 &&
	    (r = container_spawn(c, spec, new_netns, err)) < 0)
		(void)bundle_remove(c, NULL); /* the error being reported wins */
	if (r < 0)
		return berth_error_wrap(err, "%s %s", __func__, c ? c->id : id ? id : "");
	*ret = TAKE_PTR(c);
	return 0;
}

static int check_usable(const struct berth_container *c, const char *what,
			struct berth_error **err)
{
	if (!c)
		return berth_error_set(err, EINVAL, "%s: the container is NULL", what);
	if (c->destroyed)
		return berth_error_set(err, EINVAL, "%s: container %s was destroyed", what, c->id);
	return 0;
}

int berth_container_start(struct berth_container *c, struct berth_error **err)
{
	int r = check_usable(c, __func__, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&runtime_lock);
	r = runtime_container_start(c->runtime_root, c->id, err);
	pthread_mutex_unlock(&runtime_lock);
	return r;
}

static int reap(struct berth_container *c, struct berth_error **err)
{
	siginfo_t si = { 0 };
	while (waitid(P_PIDFD, (id_t)c->pidfd, &si, WEXITED) < 0)
		if (errno != EINTR)
			return berth_error_setsys(err, errno, "container %s: wait for its init", c->id);
	c->exited = true;
	c->exit_code = si.si_code == CLD_EXITED ? si.si_status : -1;
	c->signal = si.si_code == CLD_EXITED ? 0 : si.si_status;
	return 0;
}

int berth_container_wait(struct berth_container *c, int timeout_ms, int *ret_exit_code,
			 int *ret_signal, struct berth_error **err)
{
	int r = check_usable(c, __func__, err);
	if (r < 0)
		return r;
	if (!c->exited) {
		struct pollfd p = { .fd = c->pidfd, .events = POLLIN };
		while ((r = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
			;
		if (r < 0)
			return berth_error_setsys(err, errno, "container %s: wait", c->id);
		if (r == 0)
			return berth_error_set(err, ETIMEDOUT, "container %s: still running after %d ms",
					       c->id, timeout_ms);
		if ((r = reap(c, err)) < 0)
			return r;
	}
	if (ret_exit_code)
		*ret_exit_code = c->exit_code;
	if (ret_signal)
		*ret_signal = c->signal;
	return 0;
}

int berth_container_kill(struct berth_container *c, int sig, struct berth_error **err)
{
	int r = check_usable(c, __func__, err);
	if (r < 0)
		return r;
	if (c->exited)
		return berth_error_set(err, ESRCH, "%s: container %s has exited", __func__, c->id);
	r = process_signal(c->pidfd, sig);
	return r < 0 ? berth_error_setsys(err, -r, "%s: container %s: signal %d", __func__, c->id, sig)
		     : 0;
}

/* memory.peak exists since Linux 5.19, with the memory controller. */
static bool read_memory_peak(const struct cgroup *cg, uint64_t *ret)
{
	_cleanup_free_ char *text = NULL;
	if (read_file_at(cgroup_fd(cg), "memory.peak", &text, NULL, NULL) < 0)
		return false;
	*ret = strtoull(text, NULL, 10);
	return true;
}

int berth_container_stats(struct berth_container *c, struct berth_stats *ret,
			  struct berth_error **err)
{
	int r = check_usable(c, __func__, err);
	if (r < 0)
		return r;
	if (!ret)
		return berth_error_set(err, EINVAL, "%s: ret is NULL", __func__);
	if (!c->cgroup_path)
		return berth_error_set(err, ENOTSUP,
				       "%s: container %s has no cgroup (no cgroup2 hierarchy is mounted)",
				       __func__, c->id);
	_cleanup_(cgroup_freep) struct cgroup *cg = NULL;
	struct cgroup_stats st;
	if ((r = cgroup_open(c->cgroup_path, &cg, err)) < 0 ||
	    (r = cgroup_stats_read(cg, &st, err)) < 0)
		return berth_error_wrap(err, "%s: container %s", __func__, c->id);
	struct berth_stats out = { .cpu_usage_usec = st.cpu_usage_usec,
				   .memory_current = st.memory_current,
				   .pids_current = st.pids_current };
	out.valid = (st.has_cpu ? BERTH_STATS_CPU : 0) | (st.has_memory ? BERTH_STATS_MEMORY : 0) |
		    (st.has_pids ? BERTH_STATS_PIDS : 0) |
		    (read_memory_peak(cg, &out.memory_peak) ? BERTH_STATS_MEMORY_PEAK : 0);
	cgroup_stats_clear(&st);
	*ret = out;
	return 0;
}

int berth_container_destroy(struct berth_container *c, struct berth_error **err)
{
	int r = check_usable(c, __func__, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&runtime_lock);
	r = runtime_container_delete(c->runtime_root, c->id, true, err);
	pthread_mutex_unlock(&runtime_lock);
	if (r == -ENOENT && err) /* removed behind our back (berth-runtime delete): the rest is ours */
		berth_error_freep(err);
	else if (r < 0 && r != -ENOENT)
		return berth_error_wrap(err, "%s", __func__);
	if (!c->exited) {
		(void)process_signal(c->pidfd, SIGKILL); /* an init delete no longer knew (a zombie) */
		if ((r = reap(c, err)) < 0)
			return berth_error_wrap(err, "%s", __func__);
	}
	if ((r = bundle_remove(c, err)) < 0)
		return berth_error_wrap(err, "%s", __func__);
	c->destroyed = true;
	return 0;
}
