/* cri/pod-manifest-schema.c: Pod v1 as berth reads it. Every field Kubernetes' Pod v1 has is in
 * these tables: the ones berth supports with their type and checks, the others as
 * FT_UNSUPPORTED (refused by name rather than reported as unknown). Checks across fields
 * (defaults that depend on other fields, names that must be unique or must resolve) are the
 * schemas' finish callbacks. berth-manifest(5) documents the same tables. */
#include "cri/pod-manifest.h"
#include "cri/pod-manifest-internal.h"

#include "base/cleanup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- string checks ---- */

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* s[0..len) is [a-z0-9]([-a-z0-9]*[a-z0-9])? */
static bool dns_label_n(const char *s, size_t len)
{
	if (len == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

static const char *check_dns_label(const char *s)
{
	size_t len = strlen(s);
	return len <= 63 && dns_label_n(s, len)
		       ? NULL
		       : "a DNS-1123 label (at most 63 lowercase letters, digits and '-', "
			 "starting and ending with a letter or digit)";
}

static bool dns_subdomain(const char *s)
{
	if (strlen(s) > 253)
		return false;
	for (;;) {
		const char *dot = strchr(s, '.');
		size_t len = dot ? (size_t)(dot - s) : strlen(s);
		if (!dns_label_n(s, len))
			return false;
		if (!dot)
			return true;
		s = dot + 1;
	}
}

static const char *check_dns_subdomain(const char *s)
{
	return dns_subdomain(s) ? NULL
				: "a DNS-1123 subdomain (at most 253 characters: DNS-1123 labels "
				  "joined by '.')";
}

/* [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?, at most 63 */
static bool label_name(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > 63 || !is_alnum(s[0]) || !is_alnum(s[len - 1]))
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == len;
}

static const char *check_qualified_name(const char *s)
{
	const char *slash = strchr(s, '/');
	bool ok = label_name(slash ? slash + 1 : s);
	if (ok && slash) {
		_cleanup_free_ char *prefix = strndup(s, (size_t)(slash - s));
		ok = prefix && dns_subdomain(prefix);
	}
	return ok ? NULL
		  : "a qualified name (an optional DNS subdomain and '/', then at most 63 letters, "
		    "digits, '-', '_' and '.', starting and ending with a letter or digit)";
}

static const char *check_label_value(const char *s)
{
	return !s[0] || label_name(s) ? NULL
				      : "empty or at most 63 letters, digits, '-', '_' and '.', "
					"starting and ending with a letter or digit";
}

static const char *check_port_name(const char *s)
{
	size_t len = strlen(s);
	bool letter = false, ok = len > 0 && len <= 15 && s[0] != '-' && s[len - 1] != '-' &&
				  !strstr(s, "--");
	for (size_t i = 0; ok && i < len; i++) {
		ok = is_lower_alnum(s[i]) || s[i] == '-';
		letter |= s[i] >= 'a' && s[i] <= 'z';
	}
	return ok && letter ? NULL
			    : "a port name (at most 15 lowercase letters, digits and single '-', "
			      "with at least one letter)";
}

static const char *check_env_name(const char *s)
{
	bool ok = s[0] != '\0';
	for (; ok && *s; s++)
		ok = *s >= 0x20 && *s < 0x7f && *s != '=';
	return ok ? NULL : "a variable name (printable ASCII without '=')";
}

static const char *check_ip(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1
		       ? NULL
		       : "an IPv4 or IPv6 address";
}

static const char *check_abs_path(const char *s)
{
	return s[0] == '/' ? NULL : "an absolute path";
}

static bool has_dotdot(const char *s)
{
	for (const char *p = s; (p = strstr(p, "..")); p += 2)
		if ((p == s || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return true;
	return false;
}

static const char *check_rel_path(const char *s)
{
	return s[0] && s[0] != '/' && !has_dotdot(s) ? NULL
						     : "a relative path without \"..\" elements";
}

static const char *check_chars(const char *s, const char *set, size_t max, const char *what)
{
	size_t len = strlen(s);
	return len > 0 && len <= max && strspn(s, set) == len ? NULL : what;
}

static const char *check_cap(const char *s)
{
	return check_chars(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", 64,
			   "a capability name (\"NET_ADMIN\", \"ALL\")");
}

static const char *check_key(const char *s)
{
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return "a key other than \".\" and \"..\"";
	return check_chars(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._",
			   253, "a key (at most 253 letters, digits, '-', '_' and '.')");
}

static const char *check_sysctl(const char *s)
{
	return check_chars(s, "abcdefghijklmnopqrstuvwxyz0123456789_-./", 253,
			   "a sysctl name (\"net.ipv4.ip_forward\")");
}

static const char *check_header(const char *s)
{
	return check_chars(s,
			   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			   "!#$%&'*+-.^_`|~",
			   256, "an HTTP header name");
}

static const char *check_search(const char *s)
{
	return check_chars(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.",
			   253, "a DNS search domain");
}

static const char *check_image(const char *s)
{
	bool ok = s[0] != '\0';
	for (; ok && *s; s++)
		ok = *s > 0x20 && *s < 0x7f;
	return ok ? NULL : "an image reference (no spaces)";
}

static const char *check_v1(const char *s)
{
	return strcmp(s, "v1") == 0 ? NULL : "\"v1\"";
}

/* ---- table rows ---- */

#define ROW(n, t, T, m) .name = (n), .type = (t), .off = offsetof(T, m)
#define FSTR(n, T, m, chk, fl) { ROW(n, FT_STR, T, m), .check = (chk), .flags = (fl) }
#define FINT(n, T, m, lo, hi) { ROW(n, FT_INT, T, m), .min = (lo), .max = (hi) }
#define FOPTINT(n, T, m, lo, hi) { ROW(n, FT_OPT_INT, T, m), .min = (lo), .max = (hi) }
#define FBOOL(n, T, m) { ROW(n, FT_BOOL, T, m) }
#define FOPTBOOL(n, T, m) { ROW(n, FT_OPT_BOOL, T, m) }
#define FENUM(n, T, m, vals, fl) { ROW(n, FT_ENUM, T, m), .values = (vals), .flags = (fl) }
#define FSTRV(n, T, m, chk) { ROW(n, FT_STRV, T, m), .check = (chk) }
#define FINTV(n, T, m, cnt, lo, hi)                                                                \
	{ ROW(n, FT_INTV, T, m), .count_off = offsetof(T, cnt), .min = (lo), .max = (hi) }
#define FKV(n, T, m, kchk, vchk) { ROW(n, FT_KV, T, m), .check = (kchk), .check_value = (vchk) }
#define FRES(n, T, m) { ROW(n, FT_RESOURCES, T, m) }
#define FQTY(n, T, m) { ROW(n, FT_QUANTITY, T, m) }
#define FPORT(n, T, m)                                                                             \
	{ ROW(n, FT_PORT, T, m), .check = check_port_name, .min = 1, .max = 65535,                 \
	  .flags = FIELD_REQUIRED }
#define FOBJ(n, T, m, s, fl) { ROW(n, FT_OBJ, T, m), .sub = &(s), .flags = (fl) }
#define FPTR(n, T, m, s) { ROW(n, FT_PTR, T, m), .sub = &(s) }
#define FLIST(n, T, m, cnt, s, fl)                                                                 \
	{ ROW(n, FT_LIST, T, m), .count_off = offsetof(T, cnt), .sub = &(s), .flags = (fl) }
#define UNSUP(n) { .name = (n), .type = FT_UNSUPPORTED }
#define REQ FIELD_REQUIRED
#define INT32 INT32_MAX
#define ID_MAX 2147483647

#define SCHEMA(T, f, init, finish)                                                                 \
	{ .size = sizeof(T), .fields = (f), .init_cb = (init), .finish_cb = (finish) }

/* ---- enums ---- */

static const struct enum_value restart_values[] = {
	{ "Always", POD_RESTART_ALWAYS, false },
	{ "OnFailure", POD_RESTART_ON_FAILURE, false },
	{ "Never", POD_RESTART_NEVER, false },
	{ NULL, 0, false },
};
static const struct enum_value pull_values[] = {
	{ "Always", POD_PULL_ALWAYS, false },
	{ "IfNotPresent", POD_PULL_IF_NOT_PRESENT, false },
	{ "Never", POD_PULL_NEVER, false },
	{ NULL, 0, false },
};
static const struct enum_value protocol_values[] = {
	{ "TCP", POD_PROTOCOL_TCP, false },
	{ "UDP", POD_PROTOCOL_UDP, false },
	{ "SCTP", 0, true },
	{ NULL, 0, false },
};
static const struct enum_value scheme_values[] = {
	{ "HTTP", POD_SCHEME_HTTP, false },
	{ "HTTPS", POD_SCHEME_HTTPS, false },
	{ NULL, 0, false },
};
static const struct enum_value dns_policy_values[] = {
	{ "ClusterFirst", POD_DNS_CLUSTER_FIRST, false },
	{ "ClusterFirstWithHostNet", POD_DNS_CLUSTER_FIRST_WITH_HOST_NET, false },
	{ "Default", POD_DNS_DEFAULT, false },
	{ "None", POD_DNS_NONE, false },
	{ NULL, 0, false },
};
static const struct enum_value medium_values[] = {
	{ "", POD_MEDIUM_DEFAULT, false },
	{ "Memory", POD_MEDIUM_MEMORY, false },
	{ "HugePages", 0, true },
	{ NULL, 0, false },
};
static const struct enum_value host_path_values[] = {
	{ "", POD_HOST_PATH_ANY, false },
	{ "DirectoryOrCreate", POD_HOST_PATH_DIRECTORY_OR_CREATE, false },
	{ "Directory", POD_HOST_PATH_DIRECTORY, false },
	{ "FileOrCreate", POD_HOST_PATH_FILE_OR_CREATE, false },
	{ "File", POD_HOST_PATH_FILE, false },
	{ "Socket", POD_HOST_PATH_SOCKET, false },
	{ "CharDevice", POD_HOST_PATH_CHAR_DEVICE, false },
	{ "BlockDevice", POD_HOST_PATH_BLOCK_DEVICE, false },
	{ NULL, 0, false },
};
static const struct enum_value seccomp_values[] = {
	{ "RuntimeDefault", POD_SECCOMP_RUNTIME_DEFAULT, false },
	{ "Unconfined", POD_SECCOMP_UNCONFINED, false },
	{ "Localhost", POD_SECCOMP_LOCALHOST, false },
	{ NULL, 0, false },
};
static const struct enum_value field_path_values[] = {
	{ "metadata.name", POD_FIELD_NAME, false },
	{ "metadata.namespace", POD_FIELD_NAMESPACE, false },
	{ "status.podIP", POD_FIELD_POD_IP, false },
	{ "metadata.uid", 0, true },
	{ "metadata.labels", 0, true },
	{ "metadata.annotations", 0, true },
	{ "spec.nodeName", 0, true },
	{ "spec.serviceAccountName", 0, true },
	{ "status.hostIP", 0, true },
	{ "status.hostIPs", 0, true },
	{ "status.podIPs", 0, true },
	{ NULL, 0, false },
};

/* ---- finish callbacks: defaults and checks across fields ---- */

static int set_default_str(char **s, const char *value)
{
	if (!*s)
		*s = strdup(value);
	return *s ? 0 : -ENOMEM;
}

static int metadata_finish(struct decoder *d, void *obj)
{
	struct pod_metadata *m = obj;
	size_t total = 0;
	for (size_t i = 0; i < m->annotations.n; i++)
		total += strlen(m->annotations.items[i].key) +
			 strlen(m->annotations.items[i].value);
	if (total > 256 * 1024)
		return decoder_fail_at(d, "annotations", "larger than 256 KiB in total");
	return set_default_str(&m->namespace, "default");
}

static int resources_finish(struct decoder *d, void *obj)
{
	struct pod_resources *r = obj;
	struct pod_opt_int *req[] = { &r->requests.cpu_millis, &r->requests.memory_bytes };
	const struct pod_opt_int *lim[] = { &r->limits.cpu_millis, &r->limits.memory_bytes };
	static const char *const names[] = { "requests.cpu", "requests.memory" };
	for (size_t i = 0; i < ARRAY_SIZE(req); i++) {
		if (!req[i]->set)
			*req[i] = *lim[i];
		else if (lim[i]->set && req[i]->value > lim[i]->value)
			return decoder_fail_at(d, names[i], "must be less than or equal to the limit");
	}
	return 0;
}

static int env_finish(struct decoder *d, void *obj)
{
	struct pod_env_var *e = obj;
	if (e->value && e->value_from)
		return decoder_fail_at(d, "valueFrom", "may not be set together with value");
	return e->value_from ? 0 : set_default_str(&e->value, "");
}

static int env_source_finish(struct decoder *d, void *obj)
{
	struct pod_env_source *s = obj;
	if (!!s->config_map_key_ref + !!s->secret_key_ref + !!s->field_ref != 1)
		return decoder_fail(d,
				    "must have exactly one of fieldRef, configMapKeyRef, secretKeyRef");
	return 0;
}

static int field_ref_finish(struct decoder *d, void *obj)
{
	(void)d;
	return set_default_str(&((struct pod_object_field_selector *)obj)->api_version, "v1");
}

static int seccomp_finish(struct decoder *d, void *obj)
{
	struct pod_seccomp_profile *p = obj;
	if (p->type == POD_SECCOMP_LOCALHOST && !p->localhost_profile)
		return decoder_fail_at(d, "localhostProfile", "required with type Localhost");
	if (p->type != POD_SECCOMP_LOCALHOST && p->localhost_profile)
		return decoder_fail_at(d, "localhostProfile", "only allowed with type Localhost");
	return 0;
}

static int security_context_finish(struct decoder *d, void *obj)
{
	struct pod_security_context *s = obj;
	if (s->privileged.set && s->privileged.value && s->allow_privilege_escalation.set &&
	    !s->allow_privilege_escalation.value)
		return decoder_fail_at(d, "allowPrivilegeEscalation",
				       "may not be false when privileged is true");
	return 0;
}

static int exec_finish(struct decoder *d, void *obj)
{
	return ((struct pod_exec_action *)obj)->command ? 0
							: decoder_fail_at(d, "command",
									  "must not be empty");
}

static int http_get_finish(struct decoder *d, void *obj)
{
	(void)d;
	return set_default_str(&((struct pod_http_get *)obj)->path, "/");
}

static int one_handler(struct decoder *d, int n, const char *names)
{
	return n == 1 ? 0 : decoder_fail(d, "must have exactly one of %s", names);
}

static void probe_init(void *obj)
{
	struct pod_probe *p = obj;
	p->timeout_seconds = 1;
	p->period_seconds = 10;
	p->success_threshold = 1;
	p->failure_threshold = 3;
}

/* Kubernetes' defaulting: 0 is "not given" for the probe's timings. */
static int probe_finish(struct decoder *d, void *obj)
{
	struct pod_probe *p = obj;
	struct pod_probe def;
	probe_init(&def);
	p->timeout_seconds = p->timeout_seconds ? p->timeout_seconds : def.timeout_seconds;
	p->period_seconds = p->period_seconds ? p->period_seconds : def.period_seconds;
	p->success_threshold = p->success_threshold ? p->success_threshold : def.success_threshold;
	p->failure_threshold = p->failure_threshold ? p->failure_threshold : def.failure_threshold;
	return one_handler(d, !!p->exec + !!p->http_get + !!p->tcp_socket,
			   "exec, httpGet, tcpSocket");
}

static int handler_finish(struct decoder *d, void *obj)
{
	struct pod_lifecycle_handler *h = obj;
	return one_handler(d, !!h->exec + !!h->http_get + !!h->sleep, "exec, httpGet, sleep");
}

/* The port a probe or handler names, by number or by a container port's name. */
static int resolve_port(struct decoder *d, const struct pod_container *c, const char *sub,
			struct pod_port_ref *p)
{
	if (!p->name)
		return 0;
	for (size_t i = 0; i < c->n_ports; i++)
		if (c->ports[i].name && strcmp(c->ports[i].name, p->name) == 0) {
			p->number = c->ports[i].container_port;
			return 0;
		}
	return decoder_fail_at(d, sub, "no container port named \"%s\"", p->name);
}

static int resolve_http_tcp(struct decoder *d, const struct pod_container *c, const char *what,
			    struct pod_http_get *h, struct pod_tcp_socket *t)
{
	char sub[64];
	snprintf(sub, sizeof(sub), "%s.%s.port", what, h ? "httpGet" : "tcpSocket");
	return h || t ? resolve_port(d, c, sub, h ? &h->port : &t->port) : 0;
}

static int probes_finish(struct decoder *d, struct pod_container *c)
{
	struct {
		const char *name;
		struct pod_probe *p;
	} probes[] = { { "livenessProbe", c->liveness_probe },
		       { "readinessProbe", c->readiness_probe },
		       { "startupProbe", c->startup_probe } };
	for (size_t i = 0; i < ARRAY_SIZE(probes); i++) {
		struct pod_probe *p = probes[i].p;
		if (!p)
			continue;
		char sub[64];
		snprintf(sub, sizeof(sub), "%s.successThreshold", probes[i].name);
		if (p != c->readiness_probe && p->success_threshold != 1)
			return decoder_fail_at(d, sub, "must be 1");
		snprintf(sub, sizeof(sub), "%s.terminationGracePeriodSeconds", probes[i].name);
		if (p == c->readiness_probe && p->termination_grace_period_seconds.set)
			return decoder_fail_at(d, sub, "not allowed in a readiness probe");
		int r = resolve_http_tcp(d, c, probes[i].name, p->http_get, p->tcp_socket);
		if (r < 0)
			return r;
	}
	struct pod_lifecycle_handler *h[] = { c->lifecycle ? c->lifecycle->post_start : NULL,
					      c->lifecycle ? c->lifecycle->pre_stop : NULL };
	static const char *const names[] = { "lifecycle.postStart", "lifecycle.preStop" };
	for (size_t i = 0; i < ARRAY_SIZE(h); i++) {
		int r = h[i] ? resolve_http_tcp(d, c, names[i], h[i]->http_get, NULL) : 0;
		if (r < 0)
			return r;
	}
	return 0;
}

/* Always for ":latest" or no tag (and no digest), else IfNotPresent. */
static enum pod_pull_policy default_pull_policy(const char *image)
{
	if (strchr(image, '@'))
		return POD_PULL_IF_NOT_PRESENT;
	const char *slash = strrchr(image, '/');
	const char *colon = strchr(slash ? slash : image, ':');
	return !colon || strcmp(colon + 1, "latest") == 0 ? POD_PULL_ALWAYS
							   : POD_PULL_IF_NOT_PRESENT;
}

/* Fails at "<list>[i].<what>" for the first duplicate of names[0..n). */
static int unique(struct decoder *d, const char *const *names, size_t n, const char *list,
		  const char *what, const char *msg)
{
	size_t dup = first_duplicate(names, n);
	if (dup == SIZE_MAX - 1)
		return -ENOMEM;
	if (dup == SIZE_MAX)
		return 0;
	char sub[96];
	snprintf(sub, sizeof(sub), "%s[%zu].%s", list, dup, what);
	return decoder_fail_at(d, sub, "%s \"%.100s\"", msg, names[dup]);
}

static int container_finish(struct decoder *d, void *obj)
{
	struct pod_container *c = obj;
	if (!c->image_pull_policy)
		c->image_pull_policy = default_pull_policy(c->image);
	size_t n = c->n_ports > c->n_volume_mounts ? c->n_ports : c->n_volume_mounts;
	_cleanup_free_ const char **names = calloc(n ? n : 1, sizeof(*names));
	if (!names)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_ports; i++)
		names[i] = c->ports[i].name;
	int r = unique(d, names, c->n_ports, "ports", "name", "duplicate port name");
	for (size_t i = 0; i < c->n_volume_mounts; i++)
		names[i] = c->volume_mounts[i].mount_path;
	if (r == 0)
		r = unique(d, names, c->n_volume_mounts, "volumeMounts", "mountPath",
			   "duplicate mount path");
	return r < 0 ? r : probes_finish(d, c);
}

static int init_container_finish(struct decoder *d, void *obj)
{
	struct pod_container *c = obj;
	const void *refused[] = { c->liveness_probe, c->readiness_probe, c->startup_probe,
				  c->lifecycle };
	static const char *const names[] = { "livenessProbe", "readinessProbe", "startupProbe",
					     "lifecycle" };
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++)
		if (refused[i])
			return decoder_fail_at(d, names[i], "not allowed in an init container");
	return container_finish(d, obj);
}

static void object_volume_init(void *obj)
{
	((struct pod_object_volume *)obj)->default_mode = 0644;
}

static int volume_finish(struct decoder *d, void *obj)
{
	struct pod_volume *v = obj;
	int sources = !!v->empty_dir + !!v->host_path + !!v->config_map + !!v->secret;
	if (sources > 1)
		return decoder_fail(d, "may not have more than one volume source");
	if (sources == 0) { /* Kubernetes' default */
		v->empty_dir = calloc(1, sizeof(*v->empty_dir));
		if (!v->empty_dir)
			return -ENOMEM;
	}
	v->type = v->empty_dir	 ? POD_VOLUME_EMPTY_DIR
		  : v->host_path ? POD_VOLUME_HOST_PATH
		  : v->config_map ? POD_VOLUME_CONFIG_MAP
				  : POD_VOLUME_SECRET;
	return 0;
}

static int dns_config_finish(struct decoder *d, void *obj)
{
	struct pod_dns_config *c = obj;
	size_t n = 0, s = 0;
	while (c->nameservers && c->nameservers[n])
		n++;
	while (c->searches && c->searches[s])
		s++;
	if (n > 3)
		return decoder_fail_at(d, "nameservers", "at most 3");
	return s > 32 ? decoder_fail_at(d, "searches", "at most 32") : 0;
}

static void spec_init(void *obj)
{
	((struct pod_spec *)obj)->termination_grace_period_seconds = 30;
}

/* Container k of init containers then containers, with its path prefix. */
static struct pod_container *spec_container(struct pod_spec *s, size_t k, char *prefix,
					    size_t size)
{
	bool init = k < s->n_init_containers;
	size_t i = init ? k : k - s->n_init_containers;
	snprintf(prefix, size, "%s[%zu]", init ? "initContainers" : "containers", i);
	return init ? &s->init_containers[i] : &s->containers[i];
}

static int check_container_names(struct decoder *d, struct pod_spec *s)
{
	size_t n = s->n_init_containers + s->n_containers;
	_cleanup_free_ const char **names = calloc(n, sizeof(*names));
	if (!names)
		return -ENOMEM;
	char prefix[64];
	for (size_t k = 0; k < n; k++)
		names[k] = spec_container(s, k, prefix, sizeof(prefix))->name;
	size_t dup = first_duplicate(names, n);
	if (dup == SIZE_MAX - 1)
		return -ENOMEM;
	if (dup == SIZE_MAX)
		return 0;
	spec_container(s, dup, prefix, sizeof(prefix));
	strcat(prefix, ".name");
	return decoder_fail_at(d, prefix, "duplicate container name \"%s\"", names[dup]);
}

static bool has_volume(const struct pod_spec *s, const char *name)
{
	for (size_t i = 0; i < s->n_volumes; i++)
		if (strcmp(s->volumes[i].name, name) == 0)
			return true;
	return false;
}

static int check_volumes(struct decoder *d, struct pod_spec *s)
{
	_cleanup_free_ const char **names = calloc(s->n_volumes + 1, sizeof(*names));
	if (!names)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_volumes; i++)
		names[i] = s->volumes[i].name;
	int r = unique(d, names, s->n_volumes, "volumes", "name", "duplicate volume name");
	char prefix[64], sub[128];
	for (size_t k = 0; r == 0 && k < s->n_init_containers + s->n_containers; k++) {
		const struct pod_container *c = spec_container(s, k, prefix, sizeof(prefix));
		for (size_t i = 0; r == 0 && i < c->n_volume_mounts; i++) {
			if (has_volume(s, c->volume_mounts[i].name))
				continue;
			snprintf(sub, sizeof(sub), "%s.volumeMounts[%zu].name", prefix, i);
			r = decoder_fail_at(d, sub, "no volume named \"%s\"",
					    c->volume_mounts[i].name);
		}
	}
	return r;
}

static int host_port_taken(struct decoder *d, struct pod_spec *s, size_t dup, const char *key);

/* "8080/TCP on all addresses"; init containers run one at a time, so theirs only collide with
 * their own (`scope` is their path). */
static int host_port_key(char **ret, const char *scope, const struct pod_container_port *p)
{
	if (asprintf(ret, "%" PRId64 "/%s on %s%s%s", p->host_port,
		     p->protocol == POD_PROTOCOL_UDP ? "UDP" : "TCP",
		     p->host_ip ? p->host_ip : "all addresses", scope[0] ? " in " : "", scope) < 0) {
		*ret = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* hostNetwork: a host port is the container port. Then no two ports may claim the same host
 * port, protocol and address. */
static int check_host_ports(struct decoder *d, struct pod_spec *s)
{
	size_t n = 0, j = 0;
	char prefix[64], sub[128];
	for (size_t k = 0; k < s->n_init_containers + s->n_containers; k++)
		n += spec_container(s, k, prefix, sizeof(prefix))->n_ports;
	char **keys = calloc(n + 1, sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	int r = 0;
	for (size_t k = 0; r == 0 && k < s->n_init_containers + s->n_containers; k++) {
		struct pod_container *c = spec_container(s, k, prefix, sizeof(prefix));
		for (size_t i = 0; r == 0 && i < c->n_ports; i++, j++) {
			struct pod_container_port *p = &c->ports[i];
			snprintf(sub, sizeof(sub), "%s.ports[%zu].hostPort", prefix, i);
			if (s->host_network && !p->host_port)
				p->host_port = p->container_port;
			if (s->host_network && p->host_port != p->container_port)
				r = decoder_fail_at(d, sub, "must equal containerPort with hostNetwork");
			else if (p->host_port)
				r = host_port_key(&keys[j], k < s->n_init_containers ? prefix : "", p);
		}
	}
	size_t dup = r < 0 ? SIZE_MAX : first_duplicate((const char *const *)keys, n);
	if (dup < SIZE_MAX - 1)
		r = host_port_taken(d, s, dup, keys[dup]);
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	return dup == SIZE_MAX - 1 ? -ENOMEM : r;
}

static int host_port_taken(struct decoder *d, struct pod_spec *s, size_t dup, const char *key)
{
	char prefix[64], sub[128] = "";
	/* find the port `dup` again for its path */
	for (size_t k = 0, m = 0; k < s->n_init_containers + s->n_containers; k++) {
		struct pod_container *c = spec_container(s, k, prefix, sizeof(prefix));
		if (dup < m + c->n_ports) {
			snprintf(sub, sizeof(sub), "%s.ports[%zu].hostPort", prefix, dup - m);
			break;
		}
		m += c->n_ports;
	}
	return decoder_fail_at(d, sub, "host port %s is already used", key);
}

static int spec_finish(struct decoder *d, void *obj)
{
	struct pod_spec *s = obj;
	if (s->n_containers == 0)
		return decoder_fail_at(d, "containers", "must have at least one container");
	if (s->dns_policy == POD_DNS_NONE && !s->dns_config)
		return decoder_fail_at(d, "dnsConfig", "required with dnsPolicy None");
	if (s->share_process_namespace && s->host_pid)
		return decoder_fail_at(d, "shareProcessNamespace", "may not be set with hostPID");
	int r = check_container_names(d, s);
	if (r == 0)
		r = check_volumes(d, s);
	return r < 0 ? r : check_host_ports(d, s);
}

/* ---- the tables ---- */

static const struct schema container_schema, init_container_schema, probe_schema,
	lifecycle_schema, handler_schema, exec_schema, http_get_schema, tcp_socket_schema,
	header_schema, sleep_schema, port_schema, env_schema, env_source_schema, key_ref_schema,
	field_ref_schema, resources_schema, mount_schema, security_context_schema,
	capabilities_schema, seccomp_schema, pod_security_context_schema, sysctl_schema,
	volume_schema, empty_dir_schema, host_path_schema, config_map_schema, secret_schema,
	key_to_path_schema, dns_config_schema, dns_option_schema, metadata_schema, spec_schema;

#define T struct pod_manifest
static const struct field pod_fields[] = {
	FSTR("apiVersion", T, api_version, check_v1, REQ),
	FSTR("kind", T, kind, NULL, REQ),
	FOBJ("metadata", T, metadata, metadata_schema, REQ),
	FOBJ("spec", T, spec, spec_schema, REQ),
	UNSUP("status"),
	{ 0 },
};
#undef T
const struct schema pod_manifest_schema = SCHEMA(struct pod_manifest, pod_fields, NULL, NULL);

#define T struct pod_metadata
static const struct field metadata_fields[] = {
	FSTR("name", T, name, check_dns_subdomain, REQ),
	FSTR("namespace", T, namespace, check_dns_label, 0),
	FSTR("uid", T, uid, NULL, 0),
	FKV("labels", T, labels, check_qualified_name, check_label_value),
	FKV("annotations", T, annotations, check_qualified_name, NULL),
	UNSUP("generateName"), UNSUP("selfLink"), UNSUP("resourceVersion"), UNSUP("generation"),
	UNSUP("creationTimestamp"), UNSUP("deletionTimestamp"),
	UNSUP("deletionGracePeriodSeconds"), UNSUP("ownerReferences"), UNSUP("finalizers"),
	UNSUP("managedFields"),
	{ 0 },
};
#undef T
static const struct schema metadata_schema =
	SCHEMA(struct pod_metadata, metadata_fields, NULL, metadata_finish);

#define T struct pod_spec
static const struct field spec_fields[] = {
	FLIST("volumes", T, volumes, n_volumes, volume_schema, 0),
	FLIST("initContainers", T, init_containers, n_init_containers, init_container_schema, 0),
	FLIST("containers", T, containers, n_containers, container_schema, REQ),
	FENUM("restartPolicy", T, restart_policy, restart_values, 0),
	FINT("terminationGracePeriodSeconds", T, termination_grace_period_seconds, 0, INT64_MAX),
	FOPTINT("activeDeadlineSeconds", T, active_deadline_seconds, 1, INT64_MAX),
	FENUM("dnsPolicy", T, dns_policy, dns_policy_values, 0),
	FPTR("dnsConfig", T, dns_config, dns_config_schema),
	FBOOL("hostNetwork", T, host_network),
	FBOOL("hostPID", T, host_pid),
	FBOOL("hostIPC", T, host_ipc),
	FBOOL("shareProcessNamespace", T, share_process_namespace),
	FSTR("hostname", T, hostname, check_dns_label, 0),
	FPTR("securityContext", T, security_context, pod_security_context_schema),
	UNSUP("ephemeralContainers"), UNSUP("nodeSelector"), UNSUP("serviceAccountName"),
	UNSUP("serviceAccount"), UNSUP("automountServiceAccountToken"), UNSUP("nodeName"),
	UNSUP("imagePullSecrets"), UNSUP("subdomain"), UNSUP("affinity"), UNSUP("schedulerName"),
	UNSUP("tolerations"), UNSUP("hostAliases"), UNSUP("priorityClassName"), UNSUP("priority"),
	UNSUP("readinessGates"), UNSUP("runtimeClassName"), UNSUP("enableServiceLinks"),
	UNSUP("preemptionPolicy"), UNSUP("overhead"), UNSUP("topologySpreadConstraints"),
	UNSUP("setHostnameAsFQDN"), UNSUP("os"), UNSUP("hostUsers"), UNSUP("schedulingGates"),
	UNSUP("resourceClaims"), UNSUP("resources"), UNSUP("hostnameOverride"),
	{ 0 },
};
#undef T
static const struct schema spec_schema = SCHEMA(struct pod_spec, spec_fields, spec_init,
						spec_finish);

#define T struct pod_container
static const struct field container_fields[] = {
	FSTR("name", T, name, check_dns_label, REQ),
	FSTR("image", T, image, check_image, REQ),
	FENUM("imagePullPolicy", T, image_pull_policy, pull_values, 0),
	FSTRV("command", T, command, NULL),
	FSTRV("args", T, args, NULL),
	FSTR("workingDir", T, working_dir, check_abs_path, 0),
	FLIST("ports", T, ports, n_ports, port_schema, 0),
	FLIST("env", T, env, n_env, env_schema, 0),
	FOBJ("resources", T, resources, resources_schema, 0),
	FLIST("volumeMounts", T, volume_mounts, n_volume_mounts, mount_schema, 0),
	FPTR("securityContext", T, security_context, security_context_schema),
	FPTR("livenessProbe", T, liveness_probe, probe_schema),
	FPTR("readinessProbe", T, readiness_probe, probe_schema),
	FPTR("startupProbe", T, startup_probe, probe_schema),
	FPTR("lifecycle", T, lifecycle, lifecycle_schema),
	UNSUP("envFrom"), UNSUP("resizePolicy"), UNSUP("restartPolicy"), UNSUP("volumeDevices"),
	UNSUP("terminationMessagePath"), UNSUP("terminationMessagePolicy"), UNSUP("stdin"),
	UNSUP("stdinOnce"), UNSUP("tty"),
	{ 0 },
};
#undef T
static const struct schema container_schema =
	SCHEMA(struct pod_container, container_fields, NULL, container_finish);
static const struct schema init_container_schema =
	SCHEMA(struct pod_container, container_fields, NULL, init_container_finish);

#define T struct pod_container_port
static const struct field port_fields[] = {
	FSTR("name", T, name, check_port_name, 0),
	{ ROW("containerPort", FT_INT, T, container_port), .min = 1, .max = 65535, .flags = REQ },
	FINT("hostPort", T, host_port, 0, 65535),
	FENUM("protocol", T, protocol, protocol_values, 0),
	FSTR("hostIP", T, host_ip, check_ip, 0),
	{ 0 },
};
#undef T
static const struct schema port_schema = SCHEMA(struct pod_container_port, port_fields, NULL, NULL);

#define T struct pod_env_var
static const struct field env_fields[] = {
	FSTR("name", T, name, check_env_name, REQ),
	FSTR("value", T, value, NULL, 0),
	FPTR("valueFrom", T, value_from, env_source_schema),
	{ 0 },
};
#undef T
static const struct schema env_schema = SCHEMA(struct pod_env_var, env_fields, NULL, env_finish);

#define T struct pod_env_source
static const struct field env_source_fields[] = {
	FPTR("fieldRef", T, field_ref, field_ref_schema),
	FPTR("configMapKeyRef", T, config_map_key_ref, key_ref_schema),
	FPTR("secretKeyRef", T, secret_key_ref, key_ref_schema),
	UNSUP("resourceFieldRef"), UNSUP("fileKeyRef"),
	{ 0 },
};
#undef T
static const struct schema env_source_schema =
	SCHEMA(struct pod_env_source, env_source_fields, NULL, env_source_finish);

#define T struct pod_key_selector
static const struct field key_ref_fields[] = {
	FSTR("name", T, name, check_dns_subdomain, REQ),
	FSTR("key", T, key, check_key, REQ),
	FBOOL("optional", T, optional),
	{ 0 },
};
#undef T
static const struct schema key_ref_schema = SCHEMA(struct pod_key_selector, key_ref_fields, NULL,
						   NULL);

#define T struct pod_object_field_selector
static const struct field field_ref_fields[] = {
	FSTR("apiVersion", T, api_version, check_v1, 0),
	FENUM("fieldPath", T, field, field_path_values, REQ),
	{ 0 },
};
#undef T
static const struct schema field_ref_schema =
	SCHEMA(struct pod_object_field_selector, field_ref_fields, NULL, field_ref_finish);

#define T struct pod_resources
static const struct field resources_fields[] = {
	FRES("limits", T, limits),
	FRES("requests", T, requests),
	UNSUP("claims"),
	{ 0 },
};
#undef T
static const struct schema resources_schema =
	SCHEMA(struct pod_resources, resources_fields, NULL, resources_finish);

#define T struct pod_volume_mount
static const struct field mount_fields[] = {
	FSTR("name", T, name, NULL, REQ),
	FSTR("mountPath", T, mount_path, check_abs_path, REQ),
	FSTR("subPath", T, sub_path, check_rel_path, 0),
	FBOOL("readOnly", T, read_only),
	UNSUP("subPathExpr"), UNSUP("mountPropagation"), UNSUP("recursiveReadOnly"),
	{ 0 },
};
#undef T
static const struct schema mount_schema = SCHEMA(struct pod_volume_mount, mount_fields, NULL, NULL);

#define T struct pod_security_context
static const struct field security_context_fields[] = {
	FPTR("capabilities", T, capabilities, capabilities_schema),
	FOPTBOOL("privileged", T, privileged),
	FOPTINT("runAsUser", T, run_as_user, 0, ID_MAX),
	FOPTINT("runAsGroup", T, run_as_group, 0, ID_MAX),
	FOPTBOOL("runAsNonRoot", T, run_as_non_root),
	FOPTBOOL("readOnlyRootFilesystem", T, read_only_root_filesystem),
	FOPTBOOL("allowPrivilegeEscalation", T, allow_privilege_escalation),
	FPTR("seccompProfile", T, seccomp_profile, seccomp_schema),
	UNSUP("seLinuxOptions"), UNSUP("windowsOptions"), UNSUP("procMount"),
	UNSUP("appArmorProfile"),
	{ 0 },
};
#undef T
static const struct schema security_context_schema =
	SCHEMA(struct pod_security_context, security_context_fields, NULL, security_context_finish);

#define T struct pod_capabilities
static const struct field capabilities_fields[] = {
	FSTRV("add", T, add, check_cap),
	FSTRV("drop", T, drop, check_cap),
	{ 0 },
};
#undef T
static const struct schema capabilities_schema =
	SCHEMA(struct pod_capabilities, capabilities_fields, NULL, NULL);

#define T struct pod_seccomp_profile
static const struct field seccomp_fields[] = {
	FENUM("type", T, type, seccomp_values, REQ),
	FSTR("localhostProfile", T, localhost_profile, check_rel_path, 0),
	{ 0 },
};
#undef T
static const struct schema seccomp_schema =
	SCHEMA(struct pod_seccomp_profile, seccomp_fields, NULL, seccomp_finish);

#define T struct pod_pod_security_context
static const struct field pod_security_context_fields[] = {
	FOPTINT("runAsUser", T, run_as_user, 0, ID_MAX),
	FOPTINT("runAsGroup", T, run_as_group, 0, ID_MAX),
	FOPTBOOL("runAsNonRoot", T, run_as_non_root),
	FINTV("supplementalGroups", T, supplemental_groups, n_supplemental_groups, 0, ID_MAX),
	FPTR("seccompProfile", T, seccomp_profile, seccomp_schema),
	FLIST("sysctls", T, sysctls, n_sysctls, sysctl_schema, 0),
	UNSUP("seLinuxOptions"), UNSUP("windowsOptions"), UNSUP("supplementalGroupsPolicy"),
	UNSUP("fsGroup"), UNSUP("fsGroupChangePolicy"), UNSUP("appArmorProfile"),
	UNSUP("seLinuxChangePolicy"),
	{ 0 },
};
#undef T
static const struct schema pod_security_context_schema =
	SCHEMA(struct pod_pod_security_context, pod_security_context_fields, NULL, NULL);

#define T struct pod_sysctl
static const struct field sysctl_fields[] = {
	FSTR("name", T, name, check_sysctl, REQ),
	FSTR("value", T, value, NULL, REQ),
	{ 0 },
};
#undef T
static const struct schema sysctl_schema = SCHEMA(struct pod_sysctl, sysctl_fields, NULL, NULL);

#define T struct pod_probe
static const struct field probe_fields[] = {
	FPTR("exec", T, exec, exec_schema),
	FPTR("httpGet", T, http_get, http_get_schema),
	FPTR("tcpSocket", T, tcp_socket, tcp_socket_schema),
	FINT("initialDelaySeconds", T, initial_delay_seconds, 0, INT32),
	FINT("timeoutSeconds", T, timeout_seconds, 0, INT32),
	FINT("periodSeconds", T, period_seconds, 0, INT32),
	FINT("successThreshold", T, success_threshold, 0, INT32),
	FINT("failureThreshold", T, failure_threshold, 0, INT32),
	FOPTINT("terminationGracePeriodSeconds", T, termination_grace_period_seconds, 1, INT64_MAX),
	UNSUP("grpc"),
	{ 0 },
};
#undef T
static const struct schema probe_schema = SCHEMA(struct pod_probe, probe_fields, probe_init,
						 probe_finish);

#define T struct pod_exec_action
static const struct field exec_fields[] = {
	FSTRV("command", T, command, NULL),
	{ 0 },
};
#undef T
static const struct schema exec_schema = SCHEMA(struct pod_exec_action, exec_fields, NULL,
						exec_finish);

#define T struct pod_http_get
static const struct field http_get_fields[] = {
	FSTR("path", T, path, NULL, 0),
	FPORT("port", T, port),
	FSTR("host", T, host, NULL, 0),
	FENUM("scheme", T, scheme, scheme_values, 0),
	FLIST("httpHeaders", T, http_headers, n_http_headers, header_schema, 0),
	{ 0 },
};
#undef T
static const struct schema http_get_schema =
	SCHEMA(struct pod_http_get, http_get_fields, NULL, http_get_finish);

#define T struct pod_http_header
static const struct field header_fields[] = {
	FSTR("name", T, name, check_header, REQ),
	FSTR("value", T, value, NULL, REQ),
	{ 0 },
};
#undef T
static const struct schema header_schema = SCHEMA(struct pod_http_header, header_fields, NULL, NULL);

#define T struct pod_tcp_socket
static const struct field tcp_socket_fields[] = {
	FPORT("port", T, port),
	FSTR("host", T, host, NULL, 0),
	{ 0 },
};
#undef T
static const struct schema tcp_socket_schema =
	SCHEMA(struct pod_tcp_socket, tcp_socket_fields, NULL, NULL);

#define T struct pod_lifecycle
static const struct field lifecycle_fields[] = {
	FPTR("postStart", T, post_start, handler_schema),
	FPTR("preStop", T, pre_stop, handler_schema),
	UNSUP("stopSignal"),
	{ 0 },
};
#undef T
static const struct schema lifecycle_schema =
	SCHEMA(struct pod_lifecycle, lifecycle_fields, NULL, NULL);

#define T struct pod_lifecycle_handler
static const struct field handler_fields[] = {
	FPTR("exec", T, exec, exec_schema),
	FPTR("httpGet", T, http_get, http_get_schema),
	FPTR("sleep", T, sleep, sleep_schema),
	UNSUP("tcpSocket"),
	{ 0 },
};
#undef T
static const struct schema handler_schema =
	SCHEMA(struct pod_lifecycle_handler, handler_fields, NULL, handler_finish);

#define T struct pod_sleep_action
static const struct field sleep_fields[] = {
	{ ROW("seconds", FT_INT, T, seconds), .min = 0, .max = INT64_MAX, .flags = REQ },
	{ 0 },
};
#undef T
static const struct schema sleep_schema = SCHEMA(struct pod_sleep_action, sleep_fields, NULL, NULL);

#define T struct pod_volume
static const struct field volume_fields[] = {
	FSTR("name", T, name, check_dns_label, REQ),
	FPTR("emptyDir", T, empty_dir, empty_dir_schema),
	FPTR("hostPath", T, host_path, host_path_schema),
	FPTR("configMap", T, config_map, config_map_schema),
	FPTR("secret", T, secret, secret_schema),
	UNSUP("persistentVolumeClaim"), UNSUP("nfs"), UNSUP("projected"), UNSUP("downwardAPI"),
	UNSUP("ephemeral"), UNSUP("image"), UNSUP("csi"), UNSUP("iscsi"), UNSUP("gitRepo"),
	UNSUP("awsElasticBlockStore"), UNSUP("gcePersistentDisk"), UNSUP("glusterfs"),
	UNSUP("rbd"), UNSUP("flexVolume"), UNSUP("cinder"), UNSUP("cephfs"), UNSUP("flocker"),
	UNSUP("fc"), UNSUP("azureFile"), UNSUP("azureDisk"), UNSUP("vsphereVolume"),
	UNSUP("quobyte"), UNSUP("photonPersistentDisk"), UNSUP("portworxVolume"),
	UNSUP("scaleIO"), UNSUP("storageos"),
	{ 0 },
};
#undef T
static const struct schema volume_schema = SCHEMA(struct pod_volume, volume_fields, NULL,
						  volume_finish);

#define T struct pod_empty_dir
static const struct field empty_dir_fields[] = {
	FENUM("medium", T, medium, medium_values, 0),
	FQTY("sizeLimit", T, size_limit),
	{ 0 },
};
#undef T
static const struct schema empty_dir_schema =
	SCHEMA(struct pod_empty_dir, empty_dir_fields, NULL, NULL);

#define T struct pod_host_path
static const struct field host_path_fields[] = {
	FSTR("path", T, path, check_abs_path, REQ),
	FENUM("type", T, type, host_path_values, 0),
	{ 0 },
};
#undef T
static const struct schema host_path_schema =
	SCHEMA(struct pod_host_path, host_path_fields, NULL, NULL);

#define T struct pod_object_volume
static const struct field config_map_fields[] = {
	FSTR("name", T, name, check_dns_subdomain, REQ),
	FLIST("items", T, items, n_items, key_to_path_schema, 0),
	FINT("defaultMode", T, default_mode, 0, 0777),
	FBOOL("optional", T, optional),
	{ 0 },
};
static const struct field secret_fields[] = {
	FSTR("secretName", T, name, check_dns_subdomain, REQ),
	FLIST("items", T, items, n_items, key_to_path_schema, 0),
	FINT("defaultMode", T, default_mode, 0, 0777),
	FBOOL("optional", T, optional),
	{ 0 },
};
#undef T
static const struct schema config_map_schema =
	SCHEMA(struct pod_object_volume, config_map_fields, object_volume_init, NULL);
static const struct schema secret_schema =
	SCHEMA(struct pod_object_volume, secret_fields, object_volume_init, NULL);

#define T struct pod_key_to_path
static const struct field key_to_path_fields[] = {
	FSTR("key", T, key, check_key, REQ),
	FSTR("path", T, path, check_rel_path, REQ),
	FOPTINT("mode", T, mode, 0, 0777),
	{ 0 },
};
#undef T
static const struct schema key_to_path_schema =
	SCHEMA(struct pod_key_to_path, key_to_path_fields, NULL, NULL);

#define T struct pod_dns_config
static const struct field dns_config_fields[] = {
	FSTRV("nameservers", T, nameservers, check_ip),
	FSTRV("searches", T, searches, check_search),
	FLIST("options", T, options, n_options, dns_option_schema, 0),
	{ 0 },
};
#undef T
static const struct schema dns_config_schema =
	SCHEMA(struct pod_dns_config, dns_config_fields, NULL, dns_config_finish);

#define T struct pod_dns_option
static const struct field dns_option_fields[] = {
	FSTR("name", T, name, NULL, REQ),
	FSTR("value", T, value, NULL, 0),
	{ 0 },
};
#undef T
static const struct schema dns_option_schema =
	SCHEMA(struct pod_dns_option, dns_option_fields, NULL, NULL);
