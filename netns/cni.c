/* CNI mode: a network configuration list loaded from a directory, and its plugins run as the CNI
 * spec (1.0.0, and the 0.x versions Debian's plugins still speak) describes.
 *
 * A plugin run is one short-lived child: the config on stdin (a memfd, so a plugin that never
 * reads it cannot block us), stdout and stderr on pipes read with bounds, a deadline after
 * which the plugin and everything it started are killed, and a reap on every path. The child gets
 * only the CNI_* variables and PATH, and none of our descriptors. */
#include "netns/cni-internal.h"

#include "base/cleanup.h"
#include "base/command.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "base/log.h"
#include "base/process.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A result is a few KiB; megabytes mean a broken plugin, not a network. */
#define CNI_STDOUT_MAX (1u << 20)
#define CNI_STDERR_MAX (64u << 10)
#define CNI_EXCERPT_MAX 200
#define CNI_DEFAULT_BIN_DIRS "/usr/lib/cni:/opt/cni/bin"
/* Plugins exec iptables and friends; a daemon started with a bare environment still finds them. */
#define CNI_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static int plugin_timeout_ms = 60 * 1000;

int cni_plugin_timeout_set(int timeout_ms)
{
	int old = plugin_timeout_ms;
	plugin_timeout_ms = timeout_ms;
	return old;
}

struct cni_network {
	char *file; /* where it came from, for messages */
	const char *name;
	const char *version;
	unsigned major, minor;
	bool disable_check;
	struct json *tree;
	const struct json **plugins; /* objects inside tree */
	size_t n_plugins;
};

void cni_network_free(struct cni_network *n)
{
	if (!n)
		return;
	free(n->file);
	bjson_free(n->tree);
	free(n->plugins);
	free(n);
}

static void cni_network_freep(struct cni_network **n)
{
	cni_network_free(*n);
}

const char *cni_network_name(const struct cni_network *n)
{
	return n->name;
}

/* ---- loading ---- */

static bool has_suffix(const char *s, const char *suffix)
{
	size_t len = strlen(s), slen = strlen(suffix);
	return len > slen && strcmp(s + len - slen, suffix) == 0;
}

static bool is_config_file(const char *name)
{
	return has_suffix(name, ".conflist") || has_suffix(name, ".conf") ||
	       has_suffix(name, ".json");
}

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

/* The first config file in byte order (not the locale's, so every node picks the same one). */
static int first_config_file(DIR *d, const char *dir, char **ret, struct berth_error **err)
{
	_cleanup_free_ char *best = NULL;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!is_config_file(e->d_name) || (best && strcmp(e->d_name, best) >= 0))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
			continue;
		free(best);
		best = strdup(e->d_name);
		if (!best)
			return berth_error_set(err, ENOMEM, "CNI config dir %s: out of memory",
					       dir);
	}
	if (!best)
		return berth_error_set(err, ENOENT,
				       "CNI config dir %s: no *.conflist, *.conf or *.json file",
				       dir);
	*ret = TAKE_PTR(best);
	return 0;
}

/* "1.0.0" → 1, 0; every CNI version has three numbers. */
static bool parse_version(const char *v, unsigned *ret_major, unsigned *ret_minor)
{
	unsigned major, minor, patch;
	int end = -1;
	if (sscanf(v, "%u.%u.%u%n", &major, &minor, &patch, &end) != 3 || end < 0 || v[end] ||
	    v[0] < '0' || v[0] > '9')
		return false;
	*ret_major = major;
	*ret_minor = minor;
	return true;
}

/* CHECK, and prevResult on DEL, came with 0.4.0; older plugins do not know them. */
static bool version_has_check(const struct cni_network *n)
{
	return n->major > 0 || n->minor >= 4;
}

/* The spec's rule for network names, which host-local also uses as a directory name. */
static bool valid_network_name(const char *s)
{
	if (!s[0] ||
	    !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", s[0]))
		return false;
	return s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")] ==
	       '\0';
}

/* A plugin object; where is "" for a .conf, "plugins[i]." in a list. */
static int validate_plugin(const struct cni_network *n, const struct json *p, const char *where,
			   struct berth_error **err)
{
	if (bjson_type_of(p) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, "CNI config %s: %.*s: must be an object",
				       n->file, (int)strlen(where) - 1, where);
	const char *type = bjson_string(bjson_object_get(p, "type"));
	if (!type)
		return berth_error_set(
			err, EINVAL, "CNI config %s: %stype: must be a string (the plugin's name)",
			n->file, where);
	/* the type becomes a path under the bin dirs: a plain file name, nothing that climbs out */
	if (!type[0] || strchr(type, '/') || strcmp(type, ".") == 0 || strcmp(type, "..") == 0)
		return berth_error_set(err, EINVAL,
				       "CNI config %s: %stype: \"%s\" is not a plugin file name",
				       n->file, where, type);
	const struct json *caps = bjson_object_get(p, "capabilities");
	if (bjson_type_of(caps) != JSON_ABSENT && bjson_type_of(caps) != JSON_OBJECT)
		return berth_error_set(err, EINVAL,
				       "CNI config %s: %scapabilities: must be an object", n->file,
				       where);
	return 0;
}

static int validate_plugins(struct cni_network *n, bool single, struct berth_error **err)
{
	const struct json *list = bjson_object_get(n->tree, "plugins");
	if (single) {
		if (!bjson_object_get(n->tree, "type") && list)
			return berth_error_set(err, EINVAL,
					       "CNI config %s: type: missing (a plugins list "
					       "belongs in a .conflist)",
					       n->file);
		n->n_plugins = 1;
	} else {
		if (bjson_type_of(list) != JSON_ARRAY || bjson_array_size(list) == 0)
			return berth_error_set(err, EINVAL,
					       "CNI config %s: plugins: must be a non-empty array",
					       n->file);
		n->n_plugins = bjson_array_size(list);
	}
	n->plugins = calloc(n->n_plugins, sizeof(*n->plugins));
	if (!n->plugins)
		return berth_error_set(err, ENOMEM, "CNI config %s: out of memory", n->file);
	for (size_t i = 0; i < n->n_plugins; i++) {
		char where[32] = "";
		if (!single)
			snprintf(where, sizeof(where), "plugins[%zu].", i);
		n->plugins[i] = single ? n->tree : bjson_array_get(list, i);
		int r = validate_plugin(n, n->plugins[i], where, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int validate_network(struct cni_network *n, bool single, struct berth_error **err)
{
	if (bjson_type_of(n->tree) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, "CNI config %s: must hold a JSON object",
				       n->file);
	n->version = bjson_string(bjson_object_get(n->tree, "cniVersion"));
	if (!n->version)
		return berth_error_set(err, EINVAL, "CNI config %s: cniVersion: must be a string",
				       n->file);
	if (!parse_version(n->version, &n->major, &n->minor))
		return berth_error_set(
			err, EINVAL,
			"CNI config %s: cniVersion: \"%s\" is not a version like 1.0.0", n->file,
			n->version);
	n->name = bjson_string(bjson_object_get(n->tree, "name"));
	if (!n->name)
		return berth_error_set(err, EINVAL, "CNI config %s: name: must be a string",
				       n->file);
	if (!valid_network_name(n->name))
		return berth_error_set(err, EINVAL,
				       "CNI config %s: name: \"%s\" must be letters, digits, '_', "
				       "'.' or '-', starting with a letter or digit",
				       n->file, n->name);
	const struct json *dc = bjson_object_get(n->tree, "disableCheck");
	if (bjson_type_of(dc) != JSON_ABSENT && bjson_type_of(dc) != JSON_BOOL)
		return berth_error_set(err, EINVAL,
				       "CNI config %s: disableCheck: must be a boolean", n->file);
	n->disable_check = bjson_bool(dc);
	return validate_plugins(n, single, err);
}

int cni_network_load(const char *dir, struct cni_network **ret, struct berth_error **err)
{
	_cleanup_(closedirp) DIR *d = opendir(dir);
	if (!d)
		return berth_error_setsys(err, errno, "CNI config dir %s", dir);
	_cleanup_free_ char *name = NULL;
	int r = first_config_file(d, dir, &name, err);
	if (r < 0)
		return r;
	_cleanup_(cni_network_freep) struct cni_network *n = calloc(1, sizeof(*n));
	if (!n || asprintf(&n->file, "%s/%s", dir, name) < 0) {
		if (n)
			n->file = NULL;
		return berth_error_set(err, ENOMEM, "CNI config %s/%s: out of memory", dir, name);
	}
	_cleanup_free_ char *text = NULL;
	r = read_file_at(dirfd(d), name, &text, NULL, err);
	if (r < 0)
		return berth_error_wrap(err, "CNI config dir %s", dir);
	r = bjson_parse(text, &n->tree, err);
	if (r < 0)
		return berth_error_wrap(err, "CNI config %s", n->file);
	r = validate_network(n, !has_suffix(name, ".conflist"), err);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(n);
	return 0;
}

/* ---- one plugin run ---- */

struct run {
	const char *type;
	const char *command;
	struct command_result res;
};

/* Runs path with env and input on stdin; the outcome in run. Errors are about running it. */
static int spawn_and_collect(const char *path, char *const env[], const char *input,
			     struct run *run, struct berth_error **err)
{
	const struct command c = { .path = path,
				   .env = env,
				   .input = input,
				   .timeout_ms = plugin_timeout_ms,
				   .out_max = CNI_STDOUT_MAX,
				   .err_max = CNI_STDERR_MAX };
	int r = command_run(&c, &run->res);
	if (r == -ETIMEDOUT)
		return berth_error_set(err, ETIMEDOUT,
				       "CNI plugin %s (%s): no answer within %d ms, killed",
				       run->type, run->command, plugin_timeout_ms);
	if (r == -EMSGSIZE)
		return berth_error_set(err, EMSGSIZE,
				       "CNI plugin %s (%s): more than %u bytes of output, killed",
				       run->type, run->command, CNI_STDOUT_MAX);
	if (r < 0)
		return berth_error_setsys(err, -r, "CNI plugin %s (%s): running %s", run->type,
					  run->command, path);
	return 0;
}

/* The spec's well-known error codes, as errno values. */
static int errno_of_cni_code(int64_t code)
{
	switch (code) {
	case 1: /* incompatible CNI version */
		return ENOTSUP;
	case 2: /* unsupported field */
	case 4: /* invalid environment variables */
	case 6: /* failed to decode content */
	case 7: /* invalid network config */
		return EINVAL;
	case 3: /* container unknown or does not exist */
		return ENOENT;
	case 11: /* try again later */
		return EAGAIN;
	default: /* 5 (I/O failure) and the plugins' own */
		return EIO;
	}
}

/* A plugin that exited non-zero: its CNI error object when it printed one, else its status and a
 * bit of stderr. */
static int plugin_failed(const struct run *run, struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *j = NULL;
	const char *msg = NULL;
	if (run->res.out.len && bjson_parse(run->res.out.buf, &j, NULL) == 0)
		msg = bjson_string(bjson_object_get(j, "msg"));
	if (msg) {
		const char *details = bjson_string(bjson_object_get(j, "details"));
		int64_t code = 0;
		(void)bjson_int64(bjson_object_get(j, "code"), &code);
		bool has_details = details && details[0];
		return berth_error_set(err, errno_of_cni_code(code), "CNI plugin %s (%s): %s%s%s",
				       run->type, run->command, msg, has_details ? ": " : "",
				       has_details ? details : "");
	}
	char excerpt[CNI_EXCERPT_MAX + 1];
	command_stderr_excerpt(&run->res, excerpt, sizeof(excerpt));
	if (run->res.status > 128)
		return berth_error_set(err, EIO, "CNI plugin %s (%s): killed by signal %d%s%s",
				       run->type, run->command, run->res.status - 128,
				       excerpt[0] ? ": " : "", excerpt);
	return berth_error_set(err, EIO, "CNI plugin %s (%s): exit status %d%s%s", run->type,
			       run->command, run->res.status, excerpt[0] ? ": " : "", excerpt);
}

/* ---- what the plugin is given ---- */

/* The executable: the first regular, executable file named type in the ':'-separated dirs. */
static int find_plugin(const char *bin_dirs, const char *type, char **ret, struct berth_error **err)
{
	_cleanup_free_ char *dirs = strdup(bin_dirs);
	if (!dirs)
		return berth_error_set(err, ENOMEM, "CNI plugin %s: out of memory", type);
	bool unusable = false;
	char *save = NULL;
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		_cleanup_free_ char *path = NULL;
		if (asprintf(&path, "%s/%s", d, type) < 0)
			return berth_error_set(err, ENOMEM, "CNI plugin %s: out of memory", type);
		struct stat st;
		if (stat(path, &st) < 0)
			continue;
		if (S_ISREG(st.st_mode) && access(path, X_OK) == 0) {
			*ret = TAKE_PTR(path);
			return 0;
		}
		unusable = true;
	}
	if (unusable)
		return berth_error_set(err, EACCES, "CNI plugin %s: not an executable file in %s",
				       type, bin_dirs);
	return berth_error_set(err, ENOENT, "CNI plugin %s: not found in %s", type, bin_dirs);
}

/* The spec's CNI_* variables and PATH, nothing else of ours. */
static int plugin_env(const char *command, const struct cni_call *call, const char *bin_dirs,
		      char ***ret)
{
	const char *path = getenv("PATH");
	const char *const vars[][2] = {
		{ "CNI_COMMAND", command },
		{ "CNI_CONTAINERID", call->container_id },
		{ "CNI_NETNS", call->netns_path ? call->netns_path : "" },
		{ "CNI_IFNAME", call->ifname ? call->ifname : "eth0" },
		{ "CNI_ARGS", call->args ? call->args : "" },
		{ "CNI_PATH", bin_dirs },
		{ "PATH", path && path[0] ? path : CNI_DEFAULT_PATH },
	};
	_cleanup_strv_ char **env = calloc(ARRAY_SIZE(vars) + 1, sizeof(*env));
	if (!env)
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(vars); i++)
		if (asprintf(&env[i], "%s=%s", vars[i][0], vars[i][1]) < 0) {
			env[i] = NULL;
			return -ENOMEM;
		}
	*ret = TAKE_PTR(env);
	return 0;
}

static bool wants_port_mappings(const struct json *plugin)
{
	return bjson_bool(bjson_object_get(bjson_object_get(plugin, "capabilities"), "portMappings"));
}

/* runtimeConfig.portMappings, in the form CONVENTIONS.md gives and portmap reads. */
static void write_port_mappings(struct json_writer *w, const struct cni_call *call)
{
	static const char *const protocols[] = {
		[POD_PROTO_TCP] = "tcp", [POD_PROTO_UDP] = "udp", [POD_PROTO_SCTP] = "sctp"
	};
	bjson_writer_key(w, "runtimeConfig");
	bjson_writer_begin_object(w);
	bjson_writer_key(w, "portMappings");
	bjson_writer_begin_array(w);
	for (size_t i = 0; i < call->n_ports; i++) {
		const struct pod_port *p = &call->ports[i];
		bjson_writer_begin_object(w);
		bjson_writer_kv_int(w, "hostPort", p->host_port);
		bjson_writer_kv_int(w, "containerPort", p->container_port);
		bjson_writer_kv_string(w, "protocol",
				      (unsigned)p->protocol < ARRAY_SIZE(protocols)
					      ? protocols[p->protocol]
					      : "tcp");
		if (p->host_ip && p->host_ip[0])
			bjson_writer_kv_string(w, "hostIP", p->host_ip);
		bjson_writer_end_object(w);
	}
	bjson_writer_end_array(w);
	bjson_writer_end_object(w);
}

/* The plugin's stdin (SPEC "Deriving execution configuration from plugin configuration"): its
 * own object, with the list's name and cniVersion, prevResult, and runtimeConfig for the
 * capabilities it asks for, each replacing whatever the file had there. */
static int plugin_input(const struct cni_network *n, const struct json *plugin,
			const struct json *prev, const struct cni_call *call, char **ret)
{
	bool ports = call->n_ports > 0 && wants_port_mappings(plugin);
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	for (size_t i = 0; i < bjson_object_size(plugin); i++) {
		const char *key = bjson_object_key(plugin, i);
		if (strcmp(key, "name") == 0 || strcmp(key, "cniVersion") == 0 ||
		    strcmp(key, "prevResult") == 0 || (ports && strcmp(key, "runtimeConfig") == 0))
			continue;
		bjson_writer_key(w, key);
		bjson_writer_value(w, bjson_object_value(plugin, i));
	}
	bjson_writer_kv_string(w, "cniVersion", n->version);
	bjson_writer_kv_string(w, "name", n->name);
	if (prev) {
		bjson_writer_key(w, "prevResult");
		bjson_writer_value(w, prev);
	}
	if (ports)
		write_port_mappings(w, call);
	bjson_writer_end_object(w);
	return bjson_writer_finish(w, ret, NULL);
}

/* An ADD's stdout: a result object. */
static int parse_result(const struct run *run, struct json **ret, struct berth_error **err)
{
	if (run->res.out.len == 0)
		return berth_error_set(err, EPROTO, "CNI plugin %s (ADD): printed no result",
				       run->type);
	_cleanup_(bjson_freep) struct json *j = NULL;
	int r = bjson_parse(run->res.out.buf, &j, err);
	if (r < 0)
		return berth_error_wrap(err, "CNI plugin %s (ADD): result", run->type);
	if (bjson_type_of(j) != JSON_OBJECT)
		return berth_error_set(
			err, EPROTO, "CNI plugin %s (ADD): result is not a JSON object", run->type);
	*ret = TAKE_PTR(j);
	return 0;
}

/* Runs plugin i for command with prev as prevResult; for ADD, its result in *ret_result. */
static int invoke(const struct cni_network *n, size_t i, const char *command,
		  const struct json *prev, const struct cni_call *call, struct json **ret_result,
		  struct berth_error **err)
{
	const struct json *plugin = n->plugins[i];
	struct run run = { .type = bjson_string(bjson_object_get(plugin, "type")),
			   .command = command };
	const char *bin_dirs = call->bin_dirs ? call->bin_dirs : CNI_DEFAULT_BIN_DIRS;
	_cleanup_free_ char *path = NULL, *input = NULL;
	_cleanup_strv_ char **env = NULL;
	if (!call->container_id || !call->container_id[0])
		return berth_error_set(err, EINVAL, "CNI plugin %s (%s): no container id", run.type,
				       command);
	int r = find_plugin(bin_dirs, run.type, &path, err);
	if (r < 0)
		return r;
	if (plugin_input(n, plugin, prev, call, &input) < 0 ||
	    plugin_env(command, call, bin_dirs, &env) < 0)
		return berth_error_set(err, ENOMEM, "CNI plugin %s (%s): out of memory", run.type,
				       command);

	log_debug("CNI network %s: %s %s for %s", n->name, command, run.type, call->container_id);
	r = spawn_and_collect(path, env, input, &run, err);
	if (r >= 0 && run.res.status != 0)
		r = plugin_failed(&run, err);
	else if (r >= 0 && ret_result)
		r = parse_result(&run, ret_result, err);
	if (r >= 0 && run.res.err.len)
		log_debug("CNI plugin %s (%s) wrote on stderr: %s", run.type, command,
			  run.res.err.buf);
	command_result_clear(&run.res);
	return r;
}

/* ---- the three commands ---- */

/* DEL for plugins last..0, as the spec expects after a failed ADD; errors are only logged,
 * since the ADD's error is the one the caller gets. */
static void rollback(const struct cni_network *n, size_t last, const struct cni_call *call,
		     const struct json *prev)
{
	for (size_t i = last + 1; i-- > 0;) {
		_cleanup_error_ struct berth_error *e = NULL;
		if (invoke(n, i, "DEL", version_has_check(n) ? prev : NULL, call, NULL, &e) < 0)
			log_debug("CNI network %s: undoing a failed ADD: %s", n->name,
				  e ? e->msg : "?");
	}
}

/* The first address of family in a result's "ips", without the prefix length. */
static int first_address(const struct json *result, int family, char **ret)
{
	const struct json *ips = bjson_object_get(result, "ips");
	for (size_t i = 0; i < bjson_array_size(ips); i++) {
		const char *a = bjson_string(bjson_object_get(bjson_array_get(ips, i), "address"));
		char buf[INET6_ADDRSTRLEN];
		unsigned char bin[sizeof(struct in6_addr)];
		size_t len = a ? strcspn(a, "/") : sizeof(buf);
		if (len >= sizeof(buf))
			continue;
		memcpy(buf, a, len);
		buf[len] = '\0';
		if (inet_pton(family, buf, bin) != 1)
			continue;
		*ret = strdup(buf);
		return *ret ? 0 : -ENOMEM;
	}
	*ret = NULL;
	return 0;
}

/* The result text and its addresses, all or nothing. */
static int add_outputs(const struct json *result, char **ret_result, char **ret_ip4, char **ret_ip6)
{
	_cleanup_free_ char *text = NULL, *ip4 = NULL, *ip6 = NULL;
	struct json_writer *w = bjson_writer_new(false);
	if (w)
		bjson_writer_value(w, result);
	if (bjson_writer_finish(w, &text, NULL) < 0 || first_address(result, AF_INET, &ip4) < 0 ||
	    first_address(result, AF_INET6, &ip6) < 0)
		return -ENOMEM;
	*ret_result = TAKE_PTR(text);
	if (ret_ip4)
		*ret_ip4 = TAKE_PTR(ip4);
	if (ret_ip6)
		*ret_ip6 = TAKE_PTR(ip6);
	return 0;
}

int cni_add(const struct cni_network *n, const struct cni_call *call, char **ret_result,
	    char **ret_ip4, char **ret_ip6, struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *result = NULL;
	for (size_t i = 0; i < n->n_plugins; i++) {
		struct json *next = NULL;
		int r = invoke(n, i, "ADD", result, call, &next, err);
		if (r < 0) {
			rollback(n, i, call, result);
			return r;
		}
		bjson_free(result);
		result = next;
	}
	if (add_outputs(result, ret_result, ret_ip4, ret_ip6) < 0) {
		rollback(n, n->n_plugins - 1, call, result);
		return berth_error_set(err, ENOMEM, "CNI network %s: ADD: out of memory", n->name);
	}
	return 0;
}

/* The cached result for DEL and CHECK; NULL text gives NULL. */
static int parse_cached(const struct cni_network *n, const char *text, const char *command,
			struct json **ret, struct berth_error **err)
{
	*ret = NULL;
	if (!text)
		return 0;
	int r = bjson_parse(text, ret, err);
	if (r < 0)
		return berth_error_wrap(err, "CNI network %s (%s): the cached ADD result", n->name,
					command);
	return 0;
}

int cni_del(const struct cni_network *n, const struct cni_call *call, const char *prev_result,
	    struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *prev = NULL;
	_cleanup_error_ struct berth_error *first = NULL;
	/* a damaged cache must not stop the teardown: plugins clean up without prevResult too */
	if (version_has_check(n) && parse_cached(n, prev_result, "DEL", &prev, &first) < 0) {
		log_warn("%s; DEL goes on without it", first ? first->msg : "?");
		first = berth_error_free(first);
	}
	int first_r = 0;
	for (size_t i = n->n_plugins; i-- > 0;) {
		_cleanup_error_ struct berth_error *e = NULL;
		int r = invoke(n, i, "DEL", prev, call, NULL, &e);
		if (r >= 0)
			continue;
		if (first_r < 0) {
			log_debug("%s (DEL goes on)", e ? e->msg : "?");
			continue;
		}
		/* keep going, so the teardown is as complete as the plugins allow */
		first_r = r;
		first = TAKE_PTR(e);
	}
	if (first_r < 0)
		(void)berth_error_move(err, &first);
	return first_r;
}

int cni_check(const struct cni_network *n, const struct cni_call *call, const char *prev_result,
	      struct berth_error **err)
{
	if (n->disable_check)
		return 0;
	if (!version_has_check(n)) {
		log_debug("CNI network %s: cniVersion %s has no CHECK; skipped", n->name,
			  n->version);
		return 0;
	}
	if (!prev_result)
		return berth_error_set(err, EINVAL,
				       "CNI network %s (CHECK): needs the result of ADD", n->name);
	_cleanup_(bjson_freep) struct json *prev = NULL;
	int r = parse_cached(n, prev_result, "CHECK", &prev, err);
	for (size_t i = 0; r >= 0 && i < n->n_plugins; i++)
		r = invoke(n, i, "CHECK", prev, call, NULL, err);
	return r < 0 ? r : 0;
}
