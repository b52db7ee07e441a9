/* Pod and container requests: strict JSON parsing (every field checked, unknown ones refused)
 * and the canonical JSON written back for the database. */
#include "cri/request.h"
#include "base/cleanup.h"
#include "base/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static void path_of(char *buf, size_t len, const char *where, const char *key)
{
	snprintf(buf, len, "%s%s%s", where ? where : "", where && *where ? "." : "", key);
}

static const struct json *get(const struct json *obj, const char *key)
{
	const struct json *v = bjson_object_get(obj, key);
	return bjson_type_of(v) == JSON_NULL ? NULL : v;
}

int req_check_keys(const struct json *obj, const char *where, const char *const *allowed,
		   struct berth_error **err)
{
	if (bjson_type_of(obj) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, "%s: not a JSON object", where);
	for (size_t i = 0; i < bjson_object_size(obj); i++) {
		const char *key = bjson_object_key(obj, i);
		bool known = false;
		for (const char *const *a = allowed; *a && !known; a++)
			known = strcmp(*a, key) == 0;
		if (!known) {
			char p[256];
			path_of(p, sizeof(p), where, key);
			return berth_error_set(err, EINVAL, "%s: unknown field", p);
		}
	}
	return 0;
}

int req_string(const struct json *obj, const char *where, const char *key, bool required,
	       char **ret, struct berth_error **err)
{
	char p[256];
	path_of(p, sizeof(p), where, key);
	const struct json *v = get(obj, key);
	if (!v || (bjson_type_of(v) == JSON_STRING && !*bjson_string(v) && required)) {
		if (required)
			return berth_error_set(err, EINVAL, "%s: required", p);
		return 0;
	}
	if (bjson_type_of(v) != JSON_STRING)
		return berth_error_set(err, EINVAL, "%s: not a string", p);
	if (!*bjson_string(v))
		return 0; /* "" is "not set", as protobuf has it */
	char *s = strdup(bjson_string(v));
	if (!s)
		return -ENOMEM;
	free(*ret);
	*ret = s;
	return 0;
}

int req_int64(const struct json *obj, const char *where, const char *key, int64_t min, int64_t max,
	      int64_t *ret, struct berth_error **err)
{
	char p[256];
	path_of(p, sizeof(p), where, key);
	const struct json *v = get(obj, key);
	if (!v)
		return 0;
	int64_t n;
	if (!bjson_int64(v, &n))
		return berth_error_set(err, EINVAL, "%s: not an integer", p);
	if (n < min || n > max)
		return berth_error_set(err, EINVAL, "%s: %lld is out of range [%lld, %lld]", p,
				       (long long)n, (long long)min, (long long)max);
	*ret = n;
	return 0;
}

int req_bool(const struct json *obj, const char *where, const char *key, bool *ret,
	     struct berth_error **err)
{
	const struct json *v = get(obj, key);
	if (!v)
		return 0;
	if (bjson_type_of(v) != JSON_BOOL) {
		char p[256];
		path_of(p, sizeof(p), where, key);
		return berth_error_set(err, EINVAL, "%s: not a boolean", p);
	}
	*ret = bjson_bool(v);
	return 0;
}

int req_strv(const struct json *obj, const char *where, const char *key, char ***ret,
	     struct berth_error **err)
{
	char p[256];
	path_of(p, sizeof(p), where, key);
	const struct json *v = get(obj, key);
	if (!v)
		return 0;
	if (bjson_type_of(v) != JSON_ARRAY)
		return berth_error_set(err, EINVAL, "%s: not an array of strings", p);
	size_t n = bjson_array_size(v);
	_cleanup_strv_ char **out = calloc(n + 1, sizeof(char *));
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *s = bjson_string(bjson_array_get(v, i));
		if (!s)
			return berth_error_set(err, EINVAL, "%s[%zu]: not a string", p, i);
		if (!(out[i] = strdup(s)))
			return -ENOMEM;
	}
	strv_free(*ret);
	*ret = TAKE_PTR(out);
	return 0;
}

int req_string_map(const struct json *obj, const char *where, const char *key, char **ret,
		   struct berth_error **err)
{
	char p[256];
	path_of(p, sizeof(p), where, key);
	const struct json *v = get(obj, key);
	if (!v)
		return 0;
	if (bjson_type_of(v) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, "%s: not an object of strings", p);
	for (size_t i = 0; i < bjson_object_size(v); i++)
		if (bjson_type_of(bjson_object_value(v, i)) != JSON_STRING)
			return berth_error_set(err, EINVAL, "%s.%s: not a string", p,
					       bjson_object_key(v, i));
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return -ENOMEM;
	bjson_writer_value(w, v);
	char *text = NULL;
	if (bjson_writer_finish(w, &text, NULL) < 0)
		return berth_error_set(err, EINVAL, "%s: not valid UTF-8", p);
	free(*ret);
	*ret = text;
	return 0;
}

void req_write_strv(struct json_writer *w, const char *key, char *const *v)
{
	if (!v)
		return;
	bjson_writer_key(w, key);
	bjson_writer_begin_array(w);
	for (; *v; v++)
		bjson_writer_string(w, *v);
	bjson_writer_end_array(w);
}

void req_write_raw(struct json_writer *w, const char *key, const char *text)
{
	struct json *j = NULL;
	if (!text || bjson_parse(text, &j, NULL) < 0)
		return;
	bjson_writer_key(w, key);
	bjson_writer_value(w, j);
	bjson_free(j);
}

/* An array of objects into a calloc'd array of elements of size bytes; *ret_n counts the
 * elements begun, so the caller's clear frees what a failure left half-parsed. */
static int
parse_objects(const struct json *arr, const char *what, size_t size, void **ret, size_t *ret_n,
	      int (*fn)(const struct json *, const char *, void *, struct berth_error **),
	      struct berth_error **err)
{
	if (!arr)
		return 0;
	if (bjson_type_of(arr) != JSON_ARRAY)
		return berth_error_set(err, EINVAL, "%s: not an array", what);
	size_t n = bjson_array_size(arr);
	if (n == 0)
		return 0;
	char *v = calloc(n, size);
	if (!(*ret = v))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char where[96];
		snprintf(where, sizeof(where), "%s[%zu]", what, i);
		*ret_n = i + 1;
		int r = fn(bjson_array_get(arr, i), where, v + i * size, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Names used in paths (log files, cgroups): DNS-label-like, never "." or "..". */
static int check_name(const char *s, const char *where, struct berth_error **err)
{
	size_t n = strlen(s);
	if (n > 253)
		return berth_error_set(err, EINVAL, "%s: longer than 253 characters", where);
	if (s[0] == '.' || s[0] == '-')
		return berth_error_set(err, EINVAL, "%s: \"%s\" must start with a letter or digit",
				       where, s);
	if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n)
		return berth_error_set(err, EINVAL,
				       "%s: \"%s\" may hold only letters, digits, '.', '_' and '-'",
				       where, s);
	return 0;
}

static bool has_dotdot(const char *path)
{
	for (const char *p = path; (p = strstr(p, "..")); p += 2)
		if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return true;
	return false;
}

static int check_path(const char *s, const char *where, bool absolute, struct berth_error **err)
{
	if (absolute && s[0] != '/')
		return berth_error_set(err, EINVAL, "%s: \"%s\" is not an absolute path", where, s);
	if (has_dotdot(s))
		return berth_error_set(err, EINVAL, "%s: \"%s\" must not contain \"..\"", where, s);
	return 0;
}

/* A field berth does not implement: set (non-null, not false, "" or an empty array/object) is
 * -EINVAL naming it and why, never silently ignored. */
struct refusal {
	const char *key, *why;
};

static bool json_is_set(const struct json *v)
{
	switch (bjson_type_of(v)) {
	case JSON_ABSENT:
	case JSON_NULL:
		return false;
	case JSON_BOOL:
		return bjson_bool(v);
	case JSON_STRING:
		return *bjson_string(v) != '\0';
	case JSON_ARRAY:
		return bjson_array_size(v) > 0;
	case JSON_OBJECT:
		for (size_t i = 0; i < bjson_object_size(v); i++)
			if (json_is_set(bjson_object_value(v, i)))
				return true;
		return false;
	default: {
		int64_t n = 0;
		return !bjson_int64(v, &n) || n != 0;
	}
	}
}

static int refuse_set(const struct json *obj, const char *where, const struct refusal *list,
		      struct berth_error **err)
{
	for (; list->key; list++)
		if (json_is_set(bjson_object_get(obj, list->key)))
			return berth_error_set(err, EINVAL, "%s.%s: %s", where, list->key,
					       list->why);
	return 0;
}

#define NO_APPARMOR "AppArmor is not supported by berth"
#define NO_SELINUX "SELinux is not supported by berth"

/* CRI's LinuxContainerSecurityContext.apparmor (a SecurityProfile): berth applies no AppArmor
 * profile, so Unconfined and RuntimeDefault run as on a host without AppArmor (containerd's
 * behaviour there, and what the gRPC path accepts); a named profile is refused. */
static int check_apparmor(const struct json *sc, const char *where, struct berth_error **err)
{
	static const char *const keys[] = { "profile_type", "localhost_ref", NULL };
	const struct json *a = get(sc, "apparmor");
	char p[160];
	path_of(p, sizeof(p), where, "apparmor");
	if (!a)
		return 0;
	int r = req_check_keys(a, p, keys, err);
	if (r < 0)
		return r;
	const char *type = bjson_string(bjson_object_get(a, "profile_type"));
	if (type && (strcmp(type, "Unconfined") == 0 || strcmp(type, "RuntimeDefault") == 0) &&
	    !json_is_set(get(a, "localhost_ref")))
		return 0;
	return berth_error_set(err, EINVAL, "%s: " NO_APPARMOR, p);
}

static int parse_metadata(const struct json *md, const char *where, bool pod, char **name,
			  char **namespace_, char **uid, uint32_t *attempt,
			  struct berth_error **err)
{
	static const char *const pod_keys[] = { "name", "namespace", "uid", "attempt", NULL };
	static const char *const ctr_keys[] = { "name", "attempt", NULL };
	if (!md)
		return berth_error_set(err, EINVAL, "%s: required", where);
	int64_t a = 0;
	int r;
	if ((r = req_check_keys(md, where, pod ? pod_keys : ctr_keys, err)) < 0 ||
	    (r = req_string(md, where, "name", true, name, err)) < 0 ||
	    (r = req_int64(md, where, "attempt", 0, UINT32_MAX, &a, err)) < 0)
		return r;
	char p[256];
	path_of(p, sizeof(p), where, "name");
	if ((r = check_name(*name, p, err)) < 0)
		return r;
	*attempt = (uint32_t)a;
	if (!pod)
		return 0;
	if ((r = req_string(md, where, "namespace", true, namespace_, err)) < 0 ||
	    (r = req_string(md, where, "uid", true, uid, err)) < 0)
		return r;
	path_of(p, sizeof(p), where, "namespace");
	if ((r = check_name(*namespace_, p, err)) < 0)
		return r;
	if (strchr(*uid, '/') || strlen(*uid) > 128) {
		path_of(p, sizeof(p), where, "uid");
		return berth_error_set(err, EINVAL,
				       "%s: must not contain '/' or pass 128 characters", p);
	}
	return 0;
}

static int parse_ns_mode(const struct json *obj, const char *where, const char *key,
			 enum ns_mode dflt, bool allow_node, bool allow_target, enum ns_mode *ret,
			 struct berth_error **err)
{
	*ret = dflt;
	const struct json *v = get(obj, key);
	if (!v)
		return 0;
	char p[256];
	path_of(p, sizeof(p), where, key);
	const char *s = bjson_string(v);
	if (!s)
		return berth_error_set(err, EINVAL, "%s: not a string (POD, CONTAINER or NODE)", p);
	if (strcmp(s, "POD") == 0)
		*ret = NS_MODE_POD;
	else if (strcmp(s, "CONTAINER") == 0)
		*ret = NS_MODE_CONTAINER;
	else if (strcmp(s, "NODE") == 0 && allow_node)
		*ret = NS_MODE_NODE;
	else if (strcmp(s, "TARGET") == 0 && allow_target)
		*ret = NS_MODE_TARGET;
	else if (strcmp(s, "NODE") == 0 || strcmp(s, "TARGET") == 0)
		return berth_error_set(err, EOPNOTSUPP, "%s: %s is not supported", p, s);
	else
		return berth_error_set(err, EINVAL, "%s: \"%s\" is not POD, CONTAINER or NODE", p,
				       s);
	return 0;
}

const char *ns_mode_name(enum ns_mode m)
{
	static const char *const names[] = { "POD", "CONTAINER", "NODE", "TARGET" };
	return names[m];
}

/* ---- pods ---- */

static int parse_dns(const struct json *dns, struct pod_config *c, struct berth_error **err)
{
	static const char *const keys[] = { "servers", "searches", "options", NULL };
	const char *where = "config.dns_config";
	int r;
	if (!dns)
		return 0;
	c->has_dns = true;
	if ((r = req_check_keys(dns, where, keys, err)) < 0 ||
	    (r = req_strv(dns, where, "servers", &c->dns_servers, err)) < 0 ||
	    (r = req_strv(dns, where, "searches", &c->dns_searches, err)) < 0 ||
	    (r = req_strv(dns, where, "options", &c->dns_options, err)) < 0)
		return r;
	return 0;
}

static int parse_port(const struct json *o, const char *where, struct port_mapping *pm,
		      struct berth_error **err)
{
	static const char *const keys[] = { "protocol", "container_port", "host_port", "host_ip",
					    NULL };
	int64_t cport = 0, hport = 0;
	int r;
	if ((r = req_check_keys(o, where, keys, err)) < 0 ||
	    (r = req_string(o, where, "protocol", false, &pm->protocol, err)) < 0 ||
	    (r = req_int64(o, where, "container_port", 1, 65535, &cport, err)) < 0 ||
	    (r = req_int64(o, where, "host_port", 0, 65535, &hport, err)) < 0 ||
	    (r = req_string(o, where, "host_ip", false, &pm->host_ip, err)) < 0)
		return r;
	if (cport == 0)
		return berth_error_set(err, EINVAL, "%s.container_port: required", where);
	if (!pm->protocol && !(pm->protocol = strdup("TCP")))
		return -ENOMEM;
	if (strcmp(pm->protocol, "TCP") && strcmp(pm->protocol, "UDP") &&
	    strcmp(pm->protocol, "SCTP"))
		return berth_error_set(err, EINVAL, "%s.protocol: \"%s\" is not TCP, UDP or SCTP",
				       where, pm->protocol);
	pm->container_port = (uint16_t)cport;
	pm->host_port = (uint16_t)hport;
	return 0;
}

static int parse_port_cb(const struct json *o, const char *where, void *elem,
			 struct berth_error **err)
{
	return parse_port(o, where, elem, err);
}

static int parse_ports(const struct json *arr, struct pod_config *c, struct berth_error **err)
{
	return parse_objects(arr, "config.port_mappings", sizeof(*c->ports), (void **)&c->ports,
			     &c->n_ports, parse_port_cb, err);
}

static int parse_pod_linux(const struct json *lx, struct pod_config *c, struct berth_error **err)
{
	static const char *const keys[] = { "cgroup_parent", "security_context", "sysctls", NULL };
	static const char *const sc_keys[] = { "namespace_options", "privileged", "selinux_options",
					       "apparmor", NULL };
	static const struct refusal refused[] = {
		{ "sysctls", "sysctls are not supported by berth" }, { NULL, NULL }
	};
	static const struct refusal sc_refused[] = { { "selinux_options", NO_SELINUX },
						     { NULL, NULL } };
	static const char *const ns_keys[] = { "network", "pid", "ipc", NULL };
	const char *w = "config.linux", *wsc = "config.linux.security_context",
		   *wns = "config.linux.security_context.namespace_options";
	int r;
	c->net_mode = c->ipc_mode = NS_MODE_POD;
	c->pid_mode = NS_MODE_CONTAINER;
	if (!lx)
		return 0;
	if ((r = req_check_keys(lx, w, keys, err)) < 0 || (r = refuse_set(lx, w, refused, err)) < 0 ||
	    (r = req_string(lx, w, "cgroup_parent", false, &c->cgroup_parent, err)) < 0)
		return r;
	if (c->cgroup_parent &&
	    (r = check_path(c->cgroup_parent, "config.linux.cgroup_parent", false, err)) < 0)
		return r;
	const struct json *sc = get(lx, "security_context");
	if (!sc)
		return 0;
	if ((r = req_check_keys(sc, wsc, sc_keys, err)) < 0 ||
	    (r = refuse_set(sc, wsc, sc_refused, err)) < 0 || (r = check_apparmor(sc, wsc, err)) < 0 ||
	    (r = req_bool(sc, wsc, "privileged", &c->privileged, err)) < 0)
		return r;
	const struct json *ns = get(sc, "namespace_options");
	if (!ns)
		return 0;
	if ((r = req_check_keys(ns, wns, ns_keys, err)) < 0 ||
	    (r = parse_ns_mode(ns, wns, "network", NS_MODE_POD, true, false, &c->net_mode, err)) <
		    0 ||
	    (r = parse_ns_mode(ns, wns, "pid", NS_MODE_CONTAINER, true, false, &c->pid_mode,
			       err)) < 0 ||
	    (r = parse_ns_mode(ns, wns, "ipc", NS_MODE_POD, false, false, &c->ipc_mode, err)) < 0)
		return r;
	if (c->net_mode == NS_MODE_CONTAINER)
		return berth_error_set(err, EINVAL, "%s.network: CONTAINER is not a pod's mode",
				       wns);
	if (c->ipc_mode == NS_MODE_CONTAINER)
		return berth_error_set(err, EINVAL, "%s.ipc: CONTAINER is not a pod's mode", wns);
	return 0;
}

static int pod_config_parse_fields(const struct json *obj, const char *where, struct pod_config *c,
				   struct berth_error **err)
{
	/* clang-format off */
	static const char *const keys[] = { "metadata", "hostname", "log_directory",
					    "dns_config", "port_mappings", "labels",
					    "annotations", "linux", NULL };
	/* clang-format on */
	int r;
	if (!obj)
		return berth_error_set(err, EINVAL, "%s: required", where);
	if ((r = req_check_keys(obj, where, keys, err)) < 0 ||
	    (r = parse_metadata(get(obj, "metadata"), "config.metadata", true, &c->name,
				&c->namespace_, &c->uid, &c->attempt, err)) < 0 ||
	    (r = req_string(obj, where, "hostname", false, &c->hostname, err)) < 0 ||
	    (r = req_string(obj, where, "log_directory", false, &c->log_directory, err)) < 0 ||
	    (r = parse_dns(get(obj, "dns_config"), c, err)) < 0 ||
	    (r = parse_ports(get(obj, "port_mappings"), c, err)) < 0 ||
	    (r = req_string_map(obj, where, "labels", &c->labels_json, err)) < 0 ||
	    (r = req_string_map(obj, where, "annotations", &c->annotations_json, err)) < 0 ||
	    (r = parse_pod_linux(get(obj, "linux"), c, err)) < 0)
		return r;
	if (c->log_directory &&
	    (r = check_path(c->log_directory, "config.log_directory", true, err)) < 0)
		return r;
	return 0;
}

int pod_config_parse(const struct json *obj, const char *where, struct pod_config *ret,
		     struct berth_error **err)
{
	struct pod_config c = { 0 };
	int r = pod_config_parse_fields(obj, where, &c, err);
	if (r < 0) {
		pod_config_clear(&c);
		return r;
	}
	*ret = c;
	return 0;
}

int pod_config_to_json(const struct pod_config *c, char **ret)
{
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	bjson_writer_key(w, "metadata");
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "name", c->name);
	bjson_writer_kv_string(w, "namespace", c->namespace_);
	bjson_writer_kv_string(w, "uid", c->uid);
	bjson_writer_kv_int(w, "attempt", c->attempt);
	bjson_writer_end_object(w);
	if (c->hostname)
		bjson_writer_kv_string(w, "hostname", c->hostname);
	if (c->log_directory)
		bjson_writer_kv_string(w, "log_directory", c->log_directory);
	if (c->has_dns) {
		bjson_writer_key(w, "dns_config");
		bjson_writer_begin_object(w);
		req_write_strv(w, "servers", c->dns_servers);
		req_write_strv(w, "searches", c->dns_searches);
		req_write_strv(w, "options", c->dns_options);
		bjson_writer_end_object(w);
	}
	if (c->n_ports) {
		bjson_writer_key(w, "port_mappings");
		bjson_writer_begin_array(w);
		for (size_t i = 0; i < c->n_ports; i++) {
			bjson_writer_begin_object(w);
			bjson_writer_kv_string(w, "protocol", c->ports[i].protocol);
			bjson_writer_kv_int(w, "container_port", c->ports[i].container_port);
			bjson_writer_kv_int(w, "host_port", c->ports[i].host_port);
			if (c->ports[i].host_ip)
				bjson_writer_kv_string(w, "host_ip", c->ports[i].host_ip);
			bjson_writer_end_object(w);
		}
		bjson_writer_end_array(w);
	}
	req_write_raw(w, "labels", c->labels_json);
	req_write_raw(w, "annotations", c->annotations_json);
	bjson_writer_key(w, "linux");
	bjson_writer_begin_object(w);
	if (c->cgroup_parent)
		bjson_writer_kv_string(w, "cgroup_parent", c->cgroup_parent);
	bjson_writer_key(w, "security_context");
	bjson_writer_begin_object(w);
	bjson_writer_kv_bool(w, "privileged", c->privileged);
	bjson_writer_key(w, "namespace_options");
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "network", ns_mode_name(c->net_mode));
	bjson_writer_kv_string(w, "pid", ns_mode_name(c->pid_mode));
	bjson_writer_kv_string(w, "ipc", ns_mode_name(c->ipc_mode));
	bjson_writer_end_object(w);
	bjson_writer_end_object(w);
	bjson_writer_end_object(w);
	bjson_writer_end_object(w);
	return bjson_writer_finish(w, ret, NULL);
}

void pod_config_clear(struct pod_config *c)
{
	free(c->name);
	free(c->namespace_);
	free(c->uid);
	free(c->hostname);
	free(c->log_directory);
	strv_free(c->dns_servers);
	strv_free(c->dns_searches);
	strv_free(c->dns_options);
	for (size_t i = 0; i < c->n_ports; i++) {
		free(c->ports[i].protocol);
		free(c->ports[i].host_ip);
	}
	free(c->ports);
	free(c->labels_json);
	free(c->annotations_json);
	free(c->cgroup_parent);
	*c = (struct pod_config){ 0 };
}

/* ---- containers ---- */

static int parse_envs(const struct json *arr, struct container_config *c, struct berth_error **err)
{
	static const char *const keys[] = { "key", "value", NULL };
	if (!arr)
		return 0;
	if (bjson_type_of(arr) != JSON_ARRAY)
		return berth_error_set(err, EINVAL, "config.envs: not an array");
	size_t n = bjson_array_size(arr);
	if (!(c->envs = calloc(n + 1, sizeof(char *))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char where[64];
		snprintf(where, sizeof(where), "config.envs[%zu]", i);
		_cleanup_free_ char *key = NULL, *value = NULL;
		const struct json *e = bjson_array_get(arr, i);
		int r;
		if ((r = req_check_keys(e, where, keys, err)) < 0 ||
		    (r = req_string(e, where, "key", true, &key, err)) < 0 ||
		    (r = req_string(e, where, "value", false, &value, err)) < 0)
			return r;
		if (strchr(key, '='))
			return berth_error_set(err, EINVAL, "%s.key: \"%s\" contains '='", where,
					       key);
		if (asprintf(&c->envs[i], "%s=%s", key, value ? value : "") < 0) {
			c->envs[i] = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

static const char *const propagation_names[] = { "PROPAGATION_PRIVATE",
						 "PROPAGATION_HOST_TO_CONTAINER",
						 "PROPAGATION_BIDIRECTIONAL", NULL };

/* A string that must be one of names (NULL-terminated); absent leaves *ret alone. */
static int parse_enum(const struct json *obj, const char *where, const char *key,
		      const char *const *names, int *ret, struct berth_error **err)
{
	const struct json *v = get(obj, key);
	if (!v)
		return 0;
	const char *s = bjson_string(v);
	for (int i = 0; s && names[i]; i++)
		if (strcmp(s, names[i]) == 0) {
			*ret = i;
			return 0;
		}
	char p[160];
	path_of(p, sizeof(p), where, key);
	return berth_error_set(err, EINVAL, "%s: not one of %s%s%s%s%s", p, names[0],
			       names[1] ? ", " : "", names[1] ? names[1] : "",
			       names[1] && names[2] ? ", " : "",
			       names[1] && names[2] ? names[2] : "");
}

static int parse_mount(const struct json *o, const char *where, struct bind_mount *m,
		       struct berth_error **err)
{
	static const char *const keys[] = { "container_path",	   "host_path",	  "readonly",
					    "propagation",	   "selinux_relabel", "uid_mappings",
					    "gid_mappings",	   "recursive_read_only", "image",
					    "image_sub_path",	   NULL };
	static const struct refusal refused[] = {
		{ "selinux_relabel", NO_SELINUX },
		{ "uid_mappings", "id-mapped mounts are not supported by berth" },
		{ "gid_mappings", "id-mapped mounts are not supported by berth" },
		{ "recursive_read_only", "recursive read-only mounts are not supported by berth" },
		{ "image", "image volumes are not supported by berth" },
		{ "image_sub_path", "image volumes are not supported by berth" },
		{ NULL, NULL }
	};
	char p[128];
	int prop = PROPAGATION_PRIVATE;
	int r;
	if ((r = req_check_keys(o, where, keys, err)) < 0 ||
	    (r = refuse_set(o, where, refused, err)) < 0 ||
	    (r = req_string(o, where, "container_path", true, &m->container_path, err)) < 0 ||
	    (r = req_string(o, where, "host_path", true, &m->host_path, err)) < 0 ||
	    (r = req_bool(o, where, "readonly", &m->readonly, err)) < 0 ||
	    (r = parse_enum(o, where, "propagation", propagation_names, &prop, err)) < 0)
		return r;
	m->propagation = (enum mount_propagation)prop;
	snprintf(p, sizeof(p), "%s.container_path", where);
	if ((r = check_path(m->container_path, p, true, err)) < 0)
		return r;
	snprintf(p, sizeof(p), "%s.host_path", where);
	return check_path(m->host_path, p, true, err);
}

static int parse_mount_cb(const struct json *o, const char *where, void *elem,
			  struct berth_error **err)
{
	return parse_mount(o, where, elem, err);
}

static int parse_mounts(const struct json *arr, struct container_config *c,
			struct berth_error **err)
{
	return parse_objects(arr, "config.mounts", sizeof(*c->mounts), (void **)&c->mounts,
			     &c->n_mounts, parse_mount_cb, err);
}

static int parse_device(const struct json *o, const char *where, void *elem,
			struct berth_error **err)
{
	static const char *const keys[] = { "container_path", "host_path", "permissions", NULL };
	struct device_mapping *d = elem;
	char p[128];
	int r;
	if ((r = req_check_keys(o, where, keys, err)) < 0 ||
	    (r = req_string(o, where, "container_path", true, &d->container_path, err)) < 0 ||
	    (r = req_string(o, where, "host_path", true, &d->host_path, err)) < 0 ||
	    (r = req_string(o, where, "permissions", false, &d->permissions, err)) < 0)
		return r;
	if (!d->permissions && !(d->permissions = strdup("rwm")))
		return -ENOMEM;
	size_t n = strlen(d->permissions);
	if (strspn(d->permissions, "rwm") != n || n > 3 ||
	    (n > 1 && d->permissions[0] == d->permissions[1]) ||
	    (n > 2 && (d->permissions[2] == d->permissions[0] ||
		       d->permissions[2] == d->permissions[1])))
		return berth_error_set(err, EINVAL,
				       "%s.permissions: \"%s\" is not a subset of \"rwm\"", where,
				       d->permissions);
	snprintf(p, sizeof(p), "%s.container_path", where);
	if ((r = check_path(d->container_path, p, true, err)) < 0)
		return r;
	snprintf(p, sizeof(p), "%s.host_path", where);
	return check_path(d->host_path, p, true, err);
}

static int parse_devices(const struct json *arr, struct container_config *c,
			 struct berth_error **err)
{
	return parse_objects(arr, "config.devices", sizeof(*c->devices), (void **)&c->devices,
			     &c->n_devices, parse_device, err);
}

/* CRI's Int64Value: {"value": N} */
static int parse_int64_value(const struct json *obj, const char *where, const char *key, bool *has,
			     int64_t *ret, struct berth_error **err)
{
	static const char *const keys[] = { "value", NULL };
	const struct json *v = get(obj, key);
	if (!v)
		return 0;
	char p[128];
	path_of(p, sizeof(p), where, key);
	int r;
	if ((r = req_check_keys(v, p, keys, err)) < 0 ||
	    (r = req_int64(v, p, "value", 0, UINT32_MAX - 1, ret, err)) < 0)
		return r;
	*has = true;
	return 0;
}

static int parse_hugepage(const struct json *o, const char *where, void *elem,
			  struct berth_error **err)
{
	static const char *const keys[] = { "page_size", "limit", NULL };
	struct hugepage_limit *h = elem;
	int64_t limit = 0;
	int r;
	if ((r = req_check_keys(o, where, keys, err)) < 0 ||
	    (r = req_string(o, where, "page_size", true, &h->page_size, err)) < 0 ||
	    (r = req_int64(o, where, "limit", 0, INT64_MAX, &limit, err)) < 0)
		return r;
	size_t n = strlen(h->page_size);
	if (n < 3 || strspn(h->page_size, "0123456789") != n - 2 ||
	    (strcmp(h->page_size + n - 2, "KB") && strcmp(h->page_size + n - 2, "MB") &&
	     strcmp(h->page_size + n - 2, "GB")))
		return berth_error_set(err, EINVAL,
				       "%s.page_size: \"%s\" is not a size such as 2MB or 1GB", where,
				       h->page_size);
	h->limit = (uint64_t)limit;
	return 0;
}

/* cpusets: "0-3,7" */
static int check_cpuset(const char *s, const char *where, const char *key,
			struct berth_error **err)
{
	if (!s || strspn(s, "0123456789,-") == strlen(s))
		return 0;
	return berth_error_set(err, EINVAL, "%s.%s: \"%s\" is not a list such as 0-3,7", where, key,
			       s);
}

static int parse_resources(const struct json *res, struct container_config *c,
			   struct berth_error **err)
{
	/* clang-format off */
	static const char *const keys[] = { "cpu_period", "cpu_quota", "cpu_shares",
					    "memory_limit_in_bytes", "oom_score_adj", "cpuset_cpus",
					    "cpuset_mems", "hugepage_limits", "unified",
					    "memory_swap_limit_in_bytes", NULL };
	/* clang-format on */
	const char *w = "config.linux.resources";
	int r;
	if (!res)
		return 0;
	if ((r = req_check_keys(res, w, keys, err)) < 0 ||
	    (r = req_int64(res, w, "cpu_period", 0, 1000000, &c->cpu_period, err)) < 0 ||
	    (r = req_int64(res, w, "cpu_quota", -1, INT64_MAX, &c->cpu_quota, err)) < 0 ||
	    (r = req_int64(res, w, "cpu_shares", 0, 262144, &c->cpu_shares, err)) < 0 ||
	    (r = req_int64(res, w, "memory_limit_in_bytes", 0, INT64_MAX, &c->memory_limit_in_bytes,
			   err)) < 0 ||
	    (r = req_int64(res, w, "memory_swap_limit_in_bytes", -1, INT64_MAX,
			   &c->memory_swap_limit_in_bytes, err)) < 0 ||
	    (r = req_int64(res, w, "oom_score_adj", -1000, 1000, &c->oom_score_adj, err)) < 0 ||
	    (r = req_string(res, w, "cpuset_cpus", false, &c->cpuset_cpus, err)) < 0 ||
	    (r = req_string(res, w, "cpuset_mems", false, &c->cpuset_mems, err)) < 0 ||
	    (r = check_cpuset(c->cpuset_cpus, w, "cpuset_cpus", err)) < 0 ||
	    (r = check_cpuset(c->cpuset_mems, w, "cpuset_mems", err)) < 0 ||
	    (r = parse_objects(get(res, "hugepage_limits"), "config.linux.resources.hugepage_limits",
			       sizeof(*c->hugepage_limits), (void **)&c->hugepage_limits,
			       &c->n_hugepage_limits, parse_hugepage, err)) < 0 ||
	    (r = req_string_map(res, w, "unified", &c->unified_json, err)) < 0)
		return r;
	if (c->unified_json && strcmp(c->unified_json, "{}") == 0) {
		free(c->unified_json);
		c->unified_json = NULL;
	}
	return 0;
}

static bool cap_name_ok(const char *s)
{
	if (strncasecmp(s, "CAP_", 4) == 0)
		s += 4;
	return *s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_") == strlen(s);
}

static int parse_capabilities(const struct json *caps, const char *where,
			      struct container_config *c, struct berth_error **err)
{
	static const char *const keys[] = { "add_capabilities", "drop_capabilities",
					    "add_ambient_capabilities", NULL };
	static const struct refusal refused[] = {
		{ "add_ambient_capabilities", "ambient capabilities are not supported by berth" },
		{ NULL, NULL }
	};
	char p[160];
	path_of(p, sizeof(p), where, "capabilities");
	int r;
	if (!caps)
		return 0;
	if ((r = req_check_keys(caps, p, keys, err)) < 0 ||
	    (r = refuse_set(caps, p, refused, err)) < 0 ||
	    (r = req_strv(caps, p, "add_capabilities", &c->add_capabilities, err)) < 0 ||
	    (r = req_strv(caps, p, "drop_capabilities", &c->drop_capabilities, err)) < 0)
		return r;
	/* the names are checked against the kernel's list when the config is generated; here
	 * only their shape */
	for (int pass = 0; pass < 2; pass++)
		for (char **v = pass ? c->drop_capabilities : c->add_capabilities; v && *v; v++)
			if (!cap_name_ok(*v))
				return berth_error_set(err, EINVAL, "%s.%s: \"%s\" is not a capability",
						       p, pass ? "drop_capabilities"
							       : "add_capabilities",
						       *v);
	return 0;
}

static int parse_ctr_namespaces(const struct json *ns, const char *where,
				struct container_config *c, struct berth_error **err)
{
	static const char *const keys[] = { "network", "pid", "ipc", "target_id", "userns_options",
					    NULL };
	static const struct refusal refused[] = {
		{ "userns_options", "user namespaces for pods are not supported by berth" },
		{ NULL, NULL }
	};
	char p[160];
	path_of(p, sizeof(p), where, "namespace_options");
	int r;
	if (!ns)
		return 0;
	c->has_ns_options = true;
	if ((r = req_check_keys(ns, p, keys, err)) < 0 || (r = refuse_set(ns, p, refused, err)) < 0 ||
	    (r = parse_ns_mode(ns, p, "network", NS_MODE_POD, true, false, &c->net_mode, err)) < 0 ||
	    (r = parse_ns_mode(ns, p, "pid", NS_MODE_CONTAINER, true, true, &c->pid_mode, err)) < 0 ||
	    (r = parse_ns_mode(ns, p, "ipc", NS_MODE_POD, true, false, &c->ipc_mode, err)) < 0 ||
	    (r = req_string(ns, p, "target_id", false, &c->target_id, err)) < 0)
		return r;
	if (c->net_mode == NS_MODE_CONTAINER || c->ipc_mode == NS_MODE_CONTAINER)
		return berth_error_set(err, EINVAL,
				       "%s: a container shares its pod's network and ipc namespaces "
				       "(CONTAINER is not supported for them)",
				       p);
	if ((c->pid_mode == NS_MODE_TARGET) != (c->target_id != NULL))
		return berth_error_set(err, EINVAL, "%s.target_id: %s", p,
				       c->target_id ? "only with pid TARGET"
						    : "required with pid TARGET");
	return 0;
}

static const char *const seccomp_names[] = { "RuntimeDefault", "Unconfined", "Localhost", NULL };

static int parse_seccomp(const struct json *sc, const char *where, struct container_config *c,
			 struct berth_error **err)
{
	static const char *const keys[] = { "profile_type", "localhost_ref", NULL };
	const struct json *o = get(sc, "seccomp");
	char p[160];
	path_of(p, sizeof(p), where, "seccomp");
	int type = 0, r;
	if (!o)
		return 0;
	if ((r = req_check_keys(o, p, keys, err)) < 0 ||
	    (r = parse_enum(o, p, "profile_type", seccomp_names, &type, err)) < 0 ||
	    (r = req_string(o, p, "localhost_ref", false, &c->seccomp_localhost_ref, err)) < 0)
		return r;
	c->seccomp = SECCOMP_RUNTIME_DEFAULT + type;
	if ((c->seccomp == SECCOMP_LOCALHOST) != (c->seccomp_localhost_ref != NULL))
		return berth_error_set(err, EINVAL, "%s.localhost_ref: %s", p,
				       c->seccomp_localhost_ref ? "only with profile_type Localhost"
								: "required with Localhost");
	if (c->seccomp_localhost_ref) {
		char lp[192];
		snprintf(lp, sizeof(lp), "%s.localhost_ref", p);
		return check_path(c->seccomp_localhost_ref, lp, true, err);
	}
	return 0;
}

static int parse_gids(const struct json *sc, const char *where, struct container_config *c,
		      struct berth_error **err)
{
	const struct json *v = get(sc, "supplemental_groups");
	char p[160];
	path_of(p, sizeof(p), where, "supplemental_groups");
	if (!v)
		return 0;
	if (bjson_type_of(v) != JSON_ARRAY)
		return berth_error_set(err, EINVAL, "%s: not an array of integers", p);
	size_t n = bjson_array_size(v);
	if (n == 0)
		return 0;
	if (!(c->supplemental_groups = calloc(n, sizeof(int64_t))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int64_t g;
		if (!bjson_int64(bjson_array_get(v, i), &g) || g < 0 || g >= UINT32_MAX)
			return berth_error_set(err, EINVAL, "%s[%zu]: not a group id", p, i);
		c->supplemental_groups[c->n_supplemental_groups++] = g;
	}
	return 0;
}

/* masked_paths / readonly_paths: absent keeps the defaults, a list (even empty) replaces them. */
static int parse_path_list(const struct json *sc, const char *where, const char *key, char ***ret,
			   struct berth_error **err)
{
	const struct json *v = get(sc, key);
	if (!v)
		return 0;
	int r = req_strv(sc, where, key, ret, err);
	if (r < 0)
		return r;
	if (!*ret && !(*ret = calloc(1, sizeof(char *))))
		return -ENOMEM;
	for (char **s = *ret; *s; s++) {
		char p[192];
		snprintf(p, sizeof(p), "%s.%s", where, key);
		if ((r = check_path(*s, p, true, err)) < 0)
			return r;
	}
	return 0;
}

static int parse_security_context(const struct json *sc, struct container_config *c,
				  struct berth_error **err)
{
	/* clang-format off */
	static const char *const keys[] = { "run_as_user", "run_as_group", "run_as_username",
		"readonly_rootfs", "privileged", "capabilities", "namespace_options",
		"selinux_options", "supplemental_groups", "supplemental_groups_policy",
		"apparmor_profile", "seccomp_profile_path", "no_new_privs", "masked_paths",
		"readonly_paths", "seccomp", "apparmor", NULL };
	static const char *const policies[] = { "Merge", "Strict", NULL };
	static const struct refusal refused[] = {
		{ "selinux_options", NO_SELINUX },
		{ "apparmor_profile", NO_APPARMOR },
		{ "seccomp_profile_path", "deprecated: use seccomp (a SecurityProfile)" },
		{ NULL, NULL } };
	/* clang-format on */
	const char *w = "config.linux.security_context";
	int policy = 0, r;
	c->no_new_privs = true; /* the JSON API's default; see request.h */
	if (!sc)
		return 0;
	if ((r = req_check_keys(sc, w, keys, err)) < 0 ||
	    (r = refuse_set(sc, w, refused, err)) < 0 || (r = check_apparmor(sc, w, err)) < 0 ||
	    (r = parse_int64_value(sc, w, "run_as_user", &c->has_run_as_user, &c->run_as_user,
				   err)) < 0 ||
	    (r = parse_int64_value(sc, w, "run_as_group", &c->has_run_as_group, &c->run_as_group,
				   err)) < 0 ||
	    (r = req_string(sc, w, "run_as_username", false, &c->run_as_username, err)) < 0 ||
	    (r = req_bool(sc, w, "readonly_rootfs", &c->readonly_rootfs, err)) < 0 ||
	    (r = req_bool(sc, w, "privileged", &c->privileged, err)) < 0 ||
	    (r = req_bool(sc, w, "no_new_privs", &c->no_new_privs, err)) < 0 ||
	    (r = parse_capabilities(get(sc, "capabilities"), w, c, err)) < 0 ||
	    (r = parse_ctr_namespaces(get(sc, "namespace_options"), w, c, err)) < 0 ||
	    (r = parse_gids(sc, w, c, err)) < 0 ||
	    (r = parse_enum(sc, w, "supplemental_groups_policy", policies, &policy, err)) < 0 ||
	    (r = parse_seccomp(sc, w, c, err)) < 0 ||
	    (r = parse_path_list(sc, w, "masked_paths", &c->masked_paths, err)) < 0 ||
	    (r = parse_path_list(sc, w, "readonly_paths", &c->readonly_paths, err)) < 0)
		return r;
	c->supplemental_groups_strict = policy == 1;
	if (c->has_run_as_user && c->run_as_username)
		return berth_error_set(err, EINVAL,
				       "%s: run_as_user and run_as_username are exclusive", w);
	return 0;
}

static int parse_container_linux(const struct json *lx, struct container_config *c,
				 struct berth_error **err)
{
	static const char *const keys[] = { "resources", "security_context", NULL };
	int r;
	c->no_new_privs = true;
	if (!lx)
		return 0;
	if ((r = req_check_keys(lx, "config.linux", keys, err)) < 0 ||
	    (r = parse_resources(get(lx, "resources"), c, err)) < 0)
		return r;
	return parse_security_context(get(lx, "security_context"), c, err);
}

static int parse_image(const struct json *img, struct container_config *c, struct berth_error **err)
{
	static const char *const keys[] = { "image", NULL };
	if (!img)
		return berth_error_set(err, EINVAL, "config.image: required");
	int r = req_check_keys(img, "config.image", keys, err);
	return r < 0 ? r : req_string(img, "config.image", "image", true, &c->image, err);
}

static int container_config_parse_fields(const struct json *obj, const char *where,
					 struct container_config *c, struct berth_error **err)
{
	/* clang-format off */
	static const char *const keys[] = { "metadata", "image", "command", "args", "working_dir",
					    "envs", "mounts", "labels", "annotations", "log_path",
					    "tty", "stdin", "stdin_once", "linux", "devices",
					    "CDI_devices", "windows", NULL };
	static const struct refusal refused[] = {
		{ "CDI_devices", "CDI devices are not supported by berth" },
		{ "windows", "Windows containers are not supported by berth" },
		{ NULL, NULL } };
	/* clang-format on */
	int r;
	if (!obj)
		return berth_error_set(err, EINVAL, "%s: required", where);
	if ((r = req_check_keys(obj, where, keys, err)) < 0 ||
	    (r = refuse_set(obj, where, refused, err)) < 0 ||
	    (r = parse_devices(get(obj, "devices"), c, err)) < 0 ||
	    (r = parse_metadata(get(obj, "metadata"), "config.metadata", false, &c->name, NULL,
				NULL, &c->attempt, err)) < 0 ||
	    (r = parse_image(get(obj, "image"), c, err)) < 0 ||
	    (r = req_strv(obj, where, "command", &c->command, err)) < 0 ||
	    (r = req_strv(obj, where, "args", &c->args, err)) < 0 ||
	    (r = req_string(obj, where, "working_dir", false, &c->working_dir, err)) < 0 ||
	    (r = parse_envs(get(obj, "envs"), c, err)) < 0 ||
	    (r = parse_mounts(get(obj, "mounts"), c, err)) < 0 ||
	    (r = req_string_map(obj, where, "labels", &c->labels_json, err)) < 0 ||
	    (r = req_string_map(obj, where, "annotations", &c->annotations_json, err)) < 0 ||
	    (r = req_string(obj, where, "log_path", false, &c->log_path, err)) < 0 ||
	    (r = req_bool(obj, where, "tty", &c->tty, err)) < 0 ||
	    (r = req_bool(obj, where, "stdin", &c->stdin_open, err)) < 0 ||
	    (r = req_bool(obj, where, "stdin_once", &c->stdin_once, err)) < 0 ||
	    (r = parse_container_linux(get(obj, "linux"), c, err)) < 0)
		return r;
	if (c->working_dir && (r = check_path(c->working_dir, "config.working_dir", true, err)) < 0)
		return r;
	if (c->log_path && (r = check_path(c->log_path, "config.log_path", false, err)) < 0)
		return r;
	return 0;
}

int container_config_parse(const struct json *obj, const char *where, struct container_config *ret,
			   struct berth_error **err)
{
	struct container_config c = { 0 };
	int r = container_config_parse_fields(obj, where, &c, err);
	if (r < 0) {
		container_config_clear(&c);
		return r;
	}
	*ret = c;
	return 0;
}

static void write_envs(struct json_writer *w, char *const *envs)
{
	if (!envs)
		return;
	bjson_writer_key(w, "envs");
	bjson_writer_begin_array(w);
	for (; *envs; envs++) {
		const char *eq = strchr(*envs, '=');
		_cleanup_free_ char *key = strndup(*envs, (size_t)(eq - *envs));
		bjson_writer_begin_object(w);
		bjson_writer_kv_string(w, "key", key ? key : "");
		bjson_writer_kv_string(w, "value", eq + 1);
		bjson_writer_end_object(w);
	}
	bjson_writer_end_array(w);
}

static void write_mounts(struct json_writer *w, const struct container_config *c)
{
	if (!c->n_mounts)
		return;
	bjson_writer_key(w, "mounts");
	bjson_writer_begin_array(w);
	for (size_t i = 0; i < c->n_mounts; i++) {
		bjson_writer_begin_object(w);
		bjson_writer_kv_string(w, "container_path", c->mounts[i].container_path);
		bjson_writer_kv_string(w, "host_path", c->mounts[i].host_path);
		bjson_writer_kv_bool(w, "readonly", c->mounts[i].readonly);
		bjson_writer_kv_string(w, "propagation",
				       propagation_names[c->mounts[i].propagation]);
		bjson_writer_end_object(w);
	}
	bjson_writer_end_array(w);
}

static void write_devices(struct json_writer *w, const struct container_config *c)
{
	if (!c->n_devices)
		return;
	bjson_writer_key(w, "devices");
	bjson_writer_begin_array(w);
	for (size_t i = 0; i < c->n_devices; i++) {
		bjson_writer_begin_object(w);
		bjson_writer_kv_string(w, "container_path", c->devices[i].container_path);
		bjson_writer_kv_string(w, "host_path", c->devices[i].host_path);
		bjson_writer_kv_string(w, "permissions", c->devices[i].permissions);
		bjson_writer_end_object(w);
	}
	bjson_writer_end_array(w);
}

static void write_int64_value(struct json_writer *w, const char *key, bool has, int64_t v)
{
	if (!has)
		return;
	bjson_writer_key(w, key);
	bjson_writer_begin_object(w);
	bjson_writer_kv_int(w, "value", v);
	bjson_writer_end_object(w);
}

static void write_resources(struct json_writer *w, const struct container_config *c)
{
	bjson_writer_key(w, "resources");
	bjson_writer_begin_object(w);
	bjson_writer_kv_int(w, "cpu_period", c->cpu_period);
	bjson_writer_kv_int(w, "cpu_quota", c->cpu_quota);
	bjson_writer_kv_int(w, "cpu_shares", c->cpu_shares);
	bjson_writer_kv_int(w, "memory_limit_in_bytes", c->memory_limit_in_bytes);
	bjson_writer_kv_int(w, "memory_swap_limit_in_bytes", c->memory_swap_limit_in_bytes);
	bjson_writer_kv_int(w, "oom_score_adj", c->oom_score_adj);
	if (c->cpuset_cpus)
		bjson_writer_kv_string(w, "cpuset_cpus", c->cpuset_cpus);
	if (c->cpuset_mems)
		bjson_writer_kv_string(w, "cpuset_mems", c->cpuset_mems);
	if (c->n_hugepage_limits) {
		bjson_writer_key(w, "hugepage_limits");
		bjson_writer_begin_array(w);
		for (size_t i = 0; i < c->n_hugepage_limits; i++) {
			bjson_writer_begin_object(w);
			bjson_writer_kv_string(w, "page_size", c->hugepage_limits[i].page_size);
			bjson_writer_kv_int(w, "limit", (int64_t)c->hugepage_limits[i].limit);
			bjson_writer_end_object(w);
		}
		bjson_writer_end_array(w);
	}
	req_write_raw(w, "unified", c->unified_json);
	bjson_writer_end_object(w);
}

static void write_ctr_namespaces(struct json_writer *w, const struct container_config *c)
{
	if (!c->has_ns_options)
		return;
	bjson_writer_key(w, "namespace_options");
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "network", ns_mode_name(c->net_mode));
	bjson_writer_kv_string(w, "pid", ns_mode_name(c->pid_mode));
	bjson_writer_kv_string(w, "ipc", ns_mode_name(c->ipc_mode));
	if (c->target_id)
		bjson_writer_kv_string(w, "target_id", c->target_id);
	bjson_writer_end_object(w);
}

static void write_security_context(struct json_writer *w, const struct container_config *c)
{
	bjson_writer_key(w, "security_context");
	bjson_writer_begin_object(w);
	write_int64_value(w, "run_as_user", c->has_run_as_user, c->run_as_user);
	write_int64_value(w, "run_as_group", c->has_run_as_group, c->run_as_group);
	if (c->run_as_username)
		bjson_writer_kv_string(w, "run_as_username", c->run_as_username);
	bjson_writer_kv_bool(w, "readonly_rootfs", c->readonly_rootfs);
	bjson_writer_kv_bool(w, "privileged", c->privileged);
	bjson_writer_kv_bool(w, "no_new_privs", c->no_new_privs);
	if (c->add_capabilities || c->drop_capabilities) {
		bjson_writer_key(w, "capabilities");
		bjson_writer_begin_object(w);
		req_write_strv(w, "add_capabilities", c->add_capabilities);
		req_write_strv(w, "drop_capabilities", c->drop_capabilities);
		bjson_writer_end_object(w);
	}
	write_ctr_namespaces(w, c);
	if (c->n_supplemental_groups) {
		bjson_writer_key(w, "supplemental_groups");
		bjson_writer_begin_array(w);
		for (size_t i = 0; i < c->n_supplemental_groups; i++)
			bjson_writer_int(w, c->supplemental_groups[i]);
		bjson_writer_end_array(w);
	}
	bjson_writer_kv_string(w, "supplemental_groups_policy",
			       c->supplemental_groups_strict ? "Strict" : "Merge");
	if (c->seccomp != SECCOMP_UNSET) {
		bjson_writer_key(w, "seccomp");
		bjson_writer_begin_object(w);
		bjson_writer_kv_string(w, "profile_type",
				       seccomp_names[c->seccomp - SECCOMP_RUNTIME_DEFAULT]);
		if (c->seccomp_localhost_ref)
			bjson_writer_kv_string(w, "localhost_ref", c->seccomp_localhost_ref);
		bjson_writer_end_object(w);
	}
	if (c->masked_paths)
		req_write_strv(w, "masked_paths", c->masked_paths);
	if (c->readonly_paths)
		req_write_strv(w, "readonly_paths", c->readonly_paths);
	bjson_writer_end_object(w);
}

static void write_container_linux(struct json_writer *w, const struct container_config *c)
{
	bjson_writer_key(w, "linux");
	bjson_writer_begin_object(w);
	write_resources(w, c);
	write_security_context(w, c);
	bjson_writer_end_object(w);
}

int container_config_to_json(const struct container_config *c, char **ret)
{
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	bjson_writer_key(w, "metadata");
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "name", c->name);
	bjson_writer_kv_int(w, "attempt", c->attempt);
	bjson_writer_end_object(w);
	bjson_writer_key(w, "image");
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "image", c->image);
	bjson_writer_end_object(w);
	req_write_strv(w, "command", c->command);
	req_write_strv(w, "args", c->args);
	if (c->working_dir)
		bjson_writer_kv_string(w, "working_dir", c->working_dir);
	write_envs(w, c->envs);
	write_mounts(w, c);
	write_devices(w, c);
	req_write_raw(w, "labels", c->labels_json);
	req_write_raw(w, "annotations", c->annotations_json);
	if (c->log_path)
		bjson_writer_kv_string(w, "log_path", c->log_path);
	bjson_writer_kv_bool(w, "tty", c->tty);
	bjson_writer_kv_bool(w, "stdin", c->stdin_open);
	bjson_writer_kv_bool(w, "stdin_once", c->stdin_once);
	write_container_linux(w, c);
	bjson_writer_end_object(w);
	return bjson_writer_finish(w, ret, NULL);
}

int pod_config_from_text(const char *json_text, struct pod_config *ret, struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *j = NULL;
	int r = bjson_parse(json_text, &j, err);
	return r < 0 ? r : pod_config_parse(j, "config", ret, err);
}

int container_config_from_text(const char *json_text, struct container_config *ret,
			       struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *j = NULL;
	int r = bjson_parse(json_text, &j, err);
	return r < 0 ? r : container_config_parse(j, "config", ret, err);
}

void container_config_clear(struct container_config *c)
{
	free(c->name);
	free(c->image);
	strv_free(c->command);
	strv_free(c->args);
	free(c->working_dir);
	strv_free(c->envs);
	for (size_t i = 0; i < c->n_mounts; i++) {
		free(c->mounts[i].container_path);
		free(c->mounts[i].host_path);
	}
	free(c->mounts);
	free(c->labels_json);
	free(c->annotations_json);
	free(c->log_path);
	free(c->run_as_username);
	for (size_t i = 0; i < c->n_devices; i++) {
		free(c->devices[i].container_path);
		free(c->devices[i].host_path);
		free(c->devices[i].permissions);
	}
	free(c->devices);
	free(c->cpuset_cpus);
	free(c->cpuset_mems);
	for (size_t i = 0; i < c->n_hugepage_limits; i++)
		free(c->hugepage_limits[i].page_size);
	free(c->hugepage_limits);
	free(c->unified_json);
	strv_free(c->add_capabilities);
	strv_free(c->drop_capabilities);
	free(c->supplemental_groups);
	free(c->seccomp_localhost_ref);
	strv_free(c->masked_paths);
	strv_free(c->readonly_paths);
	free(c->target_id);
	*c = (struct container_config){ 0 };
}
