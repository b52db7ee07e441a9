/* berthd's configuration: one table describes every key (name, kind, where it is stored, its
 * default as text). Defaults go through the same parser as the file, and the dump prints each
 * value in the form the parser reads, so init, load and dump cannot disagree about a key. */
#include "cri/config.h"

#include "base/cleanup.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#ifndef BERTH_SHIM_PATH
#error "BERTH_SHIM_PATH must be defined (cri/meson.build passes it)"
#endif

#define STOP_TIMEOUT_MAX 86400u /* a day: longer is a typo, not a grace period */

enum kind {
	K_PATH,     /* absolute path */
	K_ENUM,     /* one of names[]; stored as an index, a bool or the name */
	K_UINT,     /* number in [min, max] (K_UINT with zero_ok: 0 or [min, max]) */
	K_SIZE,     /* bytes, K/M/G/T suffixes */
	K_DURATION, /* seconds; s, ms, m, h suffixes */
	K_CIDR4,
	K_CIDR6,
	K_GROUP,   /* a group name that exists, or a number */
	K_IFNAME,  /* a network interface name */
	K_ADDRESS, /* a numeric IPv4 or IPv6 address */
	K_CGROUP,  /* a relative cgroup path, or a systemd slice name */
};

enum store { S_STR, S_LEVEL, S_BOOL, S_UNSIGNED, S_U64 };

struct key {
	const char *name;
	enum kind kind;
	enum store store;
	size_t off;
	const char *def;          /* the default as the file would spell it; "" for none/derived */
	bool optional;            /* "" leaves it unset (NULL) */
	const char *const *names; /* K_ENUM */
	const char *noun;         /* K_ENUM: "unknown <noun>" */
	unsigned long long min, max;
	bool zero_ok;
};

#define F(field) offsetof(struct berthd_config, field)

static const char *const level_names[] = { "error", "warn", "info", "debug", NULL };
static const char *const format_names[] = { "text", "json", NULL };
static const char *const driver_names[] = { "cgroupfs", "systemd", NULL };
static const char *const network_names[] = { "bridge", "cni", "none", NULL };

/* Plain strings of a kind; optional ones may be set to "" (none). */
#define STR(n, k, field, d) { .name = n, .kind = k, .store = S_STR, .off = F(field), .def = d }
#define OPT(n, k, field, d)                                                                        \
	{ .name = n, .kind = k, .store = S_STR, .off = F(field), .def = d, .optional = true }
#define ENUM(n, st, field, d, list, what)                                                          \
	{ .name = n, .kind = K_ENUM, .store = st, .off = F(field), .def = d, .names = list,     \
	  .noun = what }
#define NUM(n, k, st, field, d, lo, hi)                                                            \
	{ .name = n, .kind = k, .store = st, .off = F(field), .def = d, .min = lo, .max = hi }

static const struct key keys[] = {
	STR("root", K_PATH, root, "/var/lib/berth"),
	STR("state", K_PATH, state, "/run/berth"),
	OPT("socket", K_PATH, socket, ""), /* derived by finish */
	OPT("socket_group", K_GROUP, socket_group, ""),
	ENUM("log_level", S_LEVEL, log_level, "info", level_names, "level"),
	ENUM("log_format", S_BOOL, log_json, "text", format_names, "format"),
	STR("shim_path", K_PATH, shim_path, BERTH_SHIM_PATH),
	STR("berth_path", K_PATH, berth_path, BERTH_PATH),
	NUM("workers", K_UINT, S_UNSIGNED, workers, "8", 1, 256),
	NUM("container_log_max_size", K_SIZE, S_U64, container_log_max_size, "10M", 0, ULLONG_MAX),
	NUM("container_log_max_files", K_UINT, S_UNSIGNED, container_log_max_files, "5", 1, 1000),
	STR("log_dir", K_PATH, log_dir, "/var/log/berth"),
	OPT("cgroup_parent", K_CGROUP, cgroup_parent, ""), /* derived by finish */
	ENUM("cgroup_driver", S_BOOL, systemd_cgroup, "cgroupfs", driver_names, "driver"),
	ENUM("network", S_STR, network, "bridge", network_names, "network mode"),
	STR("bridge", K_IFNAME, bridge, "berth0"),
	OPT("subnet", K_CIDR4, subnet, "10.88.0.0/16"),
	OPT("subnet6", K_CIDR6, subnet6, ""),
	{ .name = "mtu", .kind = K_UINT, .store = S_UNSIGNED, .off = F(mtu), .def = "0",
	  .min = 576, .max = 65535, .zero_ok = true },
	STR("cni_conf_dir", K_PATH, cni_conf_dir, "/etc/cni/net.d"),
	STR("cni_bin_dir", K_PATH, cni_bin_dir, "/usr/lib/cni"),
	STR("registries", K_PATH, registries, "/etc/berth/registries.json"),
	OPT("auth_file", K_PATH, auth_file, ""),
	NUM("stop_timeout", K_DURATION, S_UNSIGNED, stop_timeout, "10s", 0, STOP_TIMEOUT_MAX),
	STR("stream_address", K_ADDRESS, stream_address, "127.0.0.1"),
	NUM("stream_port", K_UINT, S_UNSIGNED, stream_port, "0", 0, 65535),
	NUM("stream_url_timeout", K_DURATION, S_UNSIGNED, stream_url_timeout, "1m", 1, 3600),
	NUM("stream_idle_timeout", K_DURATION, S_UNSIGNED, stream_idle_timeout, "4h", 1,
	    STOP_TIMEOUT_MAX * 7),
	NUM("stream_max_per_client", K_UINT, S_UNSIGNED, stream_max_per_client, "16", 1, 1024),
	OPT("manifest_dir", K_PATH, manifest_dir, "/etc/berth/manifests"),
	NUM("manifest_check_interval", K_DURATION, S_UNSIGNED, manifest_check_interval, "20s", 1,
	    STOP_TIMEOUT_MAX),
	STR("config_map_dir", K_PATH, config_map_dir, "/etc/berth/configmaps"),
	STR("secret_dir", K_PATH, secret_dir, "/etc/berth/secrets"),
	NUM("restart_backoff", K_DURATION, S_UNSIGNED, restart_backoff, "10s", 1, STOP_TIMEOUT_MAX),
	NUM("restart_backoff_max", K_DURATION, S_UNSIGNED, restart_backoff_max, "5m", 1,
	    STOP_TIMEOUT_MAX),
	NUM("restart_backoff_reset", K_DURATION, S_UNSIGNED, restart_backoff_reset, "10m", 1,
	    STOP_TIMEOUT_MAX),
};

#define NKEYS ARRAY_SIZE(keys)

const char *const berthd_config_keys[] = {
	"root", "state", "socket", "socket_group", "log_level", "log_format", "shim_path", "berth_path",
	"workers", "container_log_max_size", "container_log_max_files", "log_dir",
	"cgroup_parent", "cgroup_driver", "network", "bridge", "subnet", "subnet6", "mtu",
	"cni_conf_dir", "cni_bin_dir", "registries", "auth_file", "stop_timeout", "stream_address",
	"stream_port", "stream_url_timeout", "stream_idle_timeout", "stream_max_per_client",
	"manifest_dir", "manifest_check_interval", "config_map_dir", "secret_dir", "restart_backoff",
	"restart_backoff_max", "restart_backoff_reset", NULL,
};
_Static_assert(ARRAY_SIZE(berthd_config_keys) == NKEYS + 1, "berthd_config_keys[] and keys[]");

static void *field(struct berthd_config *c, const struct key *k)
{
	return (char *)c + k->off;
}

static const void *cfield(const struct berthd_config *c, const struct key *k)
{
	return (const char *)c + k->off;
}

static const struct key *key_find(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

/* "WHERE: KEY: message", or "KEY: message" without a source. */
__attribute__((format(printf, 4, 5))) static int key_error(struct berth_error **err,
							   const char *where, const char *key,
							   const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return berth_error_set(err, ENOMEM, "out of memory");
	if (where)
		return berth_error_set(err, EINVAL, "%s: %s: %s", where, key, msg);
	return berth_error_set(err, EINVAL, "%s: %s", key, msg);
}

/* Digits only (no sign, no space), without overflow. */
static bool parse_digits(const char *s, size_t len, unsigned long long *ret)
{
	unsigned long long v = 0;
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]) || v > (ULLONG_MAX - (unsigned)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*ret = v;
	return true;
}

/* The number of digits at the start of s. */
static size_t digits_len(const char *s)
{
	return strspn(s, "0123456789");
}

static bool parse_size(const char *s, uint64_t *ret)
{
	static const struct {
		const char *suffix;
		unsigned shift;
	} units[] = {
		{ "", 0 },     { "B", 0 },     { "K", 10 },    { "KiB", 10 }, { "M", 20 },
		{ "MiB", 20 }, { "G", 30 },    { "GiB", 30 },  { "T", 40 },   { "TiB", 40 },
	};
	size_t n = digits_len(s);
	unsigned long long v;
	if (!parse_digits(s, n, &v))
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcasecmp(s + n, units[i].suffix) != 0)
			continue;
		if (v > (UINT64_MAX >> units[i].shift))
			return false;
		*ret = (uint64_t)v << units[i].shift;
		return true;
	}
	return false;
}

/* A duration in whole seconds; ms must come to whole seconds (the timeout is kept in seconds). */
static bool parse_duration(const char *s, unsigned long long *ret)
{
	size_t n = digits_len(s);
	unsigned long long v;
	if (!parse_digits(s, n, &v))
		return false;
	const char *u = s + n;
	if (!*u || strcmp(u, "s") == 0)
		*ret = v;
	else if (strcmp(u, "ms") == 0 && v % 1000 == 0)
		*ret = v / 1000;
	else if (strcmp(u, "m") == 0 && v <= ULLONG_MAX / 60)
		*ret = v * 60;
	else if (strcmp(u, "h") == 0 && v <= ULLONG_MAX / 3600)
		*ret = v * 3600;
	else
		return false;
	return true;
}

/* The largest unit that makes it whole: 4h, not 14400s. */
static int format_duration(unsigned s, char **ret)
{
	if (s && s % 3600 == 0)
		return asprintf(ret, "%uh", s / 3600);
	if (s && s % 60 == 0)
		return asprintf(ret, "%um", s / 60);
	return asprintf(ret, "%us", s);
}

/* "address/prefix" of the family, without host bits: what the bridge's address manager takes,
 * checked here so a mistake is reported with the file and line. */
static int check_cidr(const char *v, int family, const char *where, const char *key,
		      struct berth_error **err)
{
	const char *fam = family == AF_INET ? "IPv4" : "IPv6";
	const char *eg = family == AF_INET ? "10.88.0.0/16" : "fd88::/64";
	unsigned bits = family == AF_INET ? 32 : 128;
	const char *slash = strchr(v, '/');
	unsigned char a[16];
	char addr[INET6_ADDRSTRLEN];
	unsigned long long prefix;
	if (!slash || (size_t)(slash - v) >= sizeof(addr) ||
	    !parse_digits(slash + 1, strlen(slash + 1), &prefix))
		return key_error(err, where, key, "\"%s\" is not an %s CIDR (address/prefix, e.g. %s)",
				 v, fam, eg);
	snprintf(addr, sizeof(addr), "%.*s", (int)(slash - v), v);
	if (inet_pton(family, addr, a) != 1)
		return key_error(err, where, key, "\"%s\": %s is not an %s address (e.g. %s)", v,
				 addr, fam, eg);
	if (prefix < 1 || prefix > bits - 2)
		return key_error(err, where, key,
				 "\"%s\": prefix /%llu is out of range (1 to %u: room for a gateway "
				 "and pods)",
				 v, prefix, bits - 2);
	for (unsigned i = (unsigned)prefix; i < bits; i++)
		if (a[i / 8] & (0x80u >> (i % 8)))
			return key_error(err, where, key,
					 "\"%s\" has host bits set after /%llu", v, prefix);
	return 0;
}

static int check_group(const char *v, const char *where, const char *key,
		       struct berth_error **err)
{
	unsigned long long gid;
	if (parse_digits(v, strlen(v), &gid)) {
		if (gid >= UINT32_MAX)
			return key_error(err, where, key, "group id %s is out of range", v);
		return 0;
	}
	struct group gr, *res = NULL;
	char buf[4096];
	int r = getgrnam_r(v, &gr, buf, sizeof(buf), &res);
	if (r == 0 && !res)
		return key_error(err, where, key, "no group \"%s\" (a group name or number)", v);
	if (r != 0)
		return key_error(err, where, key, "cannot look up group \"%s\": %s", v, strerror(r));
	return 0;
}

/* Interface names: what the kernel takes (IFNAMSIZ, no '/', ':' or spaces, not "." or ".."). */
static int check_ifname(const char *v, const char *where, const char *key,
			struct berth_error **err)
{
	size_t len = strlen(v);
	if (len == 0 || len > 15 || strcmp(v, ".") == 0 || strcmp(v, "..") == 0 ||
	    strpbrk(v, "/: \t"))
		return key_error(err, where, key,
				 "\"%s\" is not an interface name (1 to 15 characters, no '/', ':' "
				 "or spaces)",
				 v);
	return 0;
}

/* A relative cgroup path (components that are not "." or ".."), or a slice name. */
static int check_cgroup(const char *v, const char *where, const char *key,
			struct berth_error **err)
{
	_cleanup_free_ char *copy = strdup(v);
	if (!copy)
		return berth_error_set(err, ENOMEM, "out of memory");
	bool ok = v[0] != '/';
	char *save = NULL;
	for (char *p = strtok_r(copy, "/", &save); ok && p; p = strtok_r(NULL, "/", &save))
		ok = strcmp(p, ".") != 0 && strcmp(p, "..") != 0;
	if (!ok || strstr(v, "//") || v[strlen(v) - 1] == '/')
		return key_error(err, where, key,
				 "\"%s\" is not a relative cgroup path (like berth or a/b, no \".\" "
				 "or \"..\")",
				 v);
	return 0;
}

static int check_path(const char *v, const struct key *k, const char *where,
		      struct berth_error **err)
{
	if (v[0] != '/')
		return key_error(err, where, k->name, "\"%s\" is not an absolute path", v);
	if (k->off == F(socket) && strlen(v) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return key_error(err, where, k->name,
				 "\"%s\" is longer than a unix socket path can be (%zu bytes)", v,
				 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	return 0;
}

/* K_ENUM: the index of v in names, or an error listing them. */
static int parse_enum(const struct key *k, const char *v, const char *where,
		      struct berth_error **err)
{
	char list[128] = "";
	for (int i = 0; k->names[i]; i++) {
		if (strcmp(v, k->names[i]) == 0)
			return i;
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
			 k->names[i]);
	}
	return key_error(err, where, k->name, "unknown %s \"%s\" (%s)", k->noun, v, list);
}

/* Numbers of every numeric kind, range-checked. */
static int parse_number(const struct key *k, const char *v, const char *where,
			unsigned long long *ret, struct berth_error **err)
{
	unsigned long long n = 0;
	uint64_t size;
	switch (k->kind) {
	case K_SIZE:
		if (!parse_size(v, &size))
			return key_error(err, where, k->name,
					 "bad size \"%s\" (bytes, or a number with K, M, G or T; "
					 "also KiB, MiB, GiB, TiB)",
					 v);
		*ret = size;
		return 0;
	case K_DURATION:
		if (!parse_duration(v, &n))
			return key_error(err, where, k->name,
					 "bad duration \"%s\" (seconds, or a number with s, m, h, "
					 "or ms making whole seconds)",
					 v);
		break;
	default:
		if (!parse_digits(v, strlen(v), &n))
			return key_error(err, where, k->name, "\"%s\" is not a number", v);
		break;
	}
	if ((n < k->min && !(k->zero_ok && n == 0)) || n > k->max) {
		if (k->kind == K_DURATION)
			return key_error(err, where, k->name, "%s is out of range (at most %llus)",
					 v, k->max);
		return key_error(err, where, k->name, "%s is out of range (%s%llu to %llu)", v,
				 k->zero_ok ? "0, or " : "", k->min, k->max);
	}
	*ret = n;
	return 0;
}

/* A numeric address, as bind takes it: names would need a resolver at start. */
static int check_address(const char *v, const char *where, const char *key,
			 struct berth_error **err)
{
	unsigned char buf[16];
	if (inet_pton(AF_INET, v, buf) == 1 || inet_pton(AF_INET6, v, buf) == 1)
		return 0;
	return key_error(err, where, key, "\"%s\" is not an IPv4 or IPv6 address", v);
}

/* Checks a string value of its kind. */
static int check_string(const struct key *k, const char *v, const char *where,
			struct berth_error **err)
{
	switch (k->kind) {
	case K_PATH:
		return check_path(v, k, where, err);
	case K_CIDR4:
		return check_cidr(v, AF_INET, where, k->name, err);
	case K_CIDR6:
		return check_cidr(v, AF_INET6, where, k->name, err);
	case K_GROUP:
		return check_group(v, where, k->name, err);
	case K_IFNAME:
		return check_ifname(v, where, k->name, err);
	case K_ADDRESS:
		return check_address(v, where, k->name, err);
	case K_CGROUP:
		return check_cgroup(v, where, k->name, err);
	default:
		return 0;
	}
}

static int store_string(struct berthd_config *c, const struct key *k, const char *v,
			struct berth_error **err)
{
	char *copy = NULL;
	if (*v && !(copy = strdup(v)))
		return berth_error_set(err, ENOMEM, "out of memory");
	char **p = field(c, k);
	free(*p);
	*p = copy;
	return 0;
}

static int key_set(struct berthd_config *c, const struct key *k, const char *v, const char *where,
		   struct berth_error **err)
{
	for (const char *p = v; *p; p++)
		if (iscntrl((unsigned char)*p))
			return key_error(err, where, k->name, "the value has a control character");
	if (!*v && !k->optional)
		return key_error(err, where, k->name, "a value is required");
	if (k->kind == K_ENUM) {
		int i = parse_enum(k, v, where, err);
		if (i < 0)
			return i;
		if (k->store == S_LEVEL)
			*(enum log_level *)field(c, k) = (enum log_level)i;
		else if (k->store == S_BOOL)
			*(bool *)field(c, k) = i == 1;
		else
			return store_string(c, k, v, err);
		return 0;
	}
	if (k->store == S_UNSIGNED || k->store == S_U64) {
		unsigned long long n = 0;
		int r = parse_number(k, v, where, &n, err);
		if (r < 0)
			return r;
		if (k->store == S_U64)
			*(uint64_t *)field(c, k) = n;
		else
			*(unsigned *)field(c, k) = (unsigned)n;
		return 0;
	}
	if (*v) {
		int r = check_string(k, v, where, err);
		if (r < 0)
			return r;
	}
	return store_string(c, k, v, err);
}

int berthd_config_set(struct berthd_config *c, const char *key, const char *value,
		      const char *where, struct berth_error **err)
{
	const struct key *k = key_find(key);
	if (!k)
		return key_error(err, where, key, "unknown key");
	return key_set(c, k, value, where, err);
}

int berthd_config_init(struct berthd_config *c, struct berth_error **err)
{
	*c = (struct berthd_config){ 0 };
	for (size_t i = 0; i < NKEYS; i++) {
		int r = key_set(c, &keys[i], keys[i].def, "default", err);
		if (r < 0) {
			berthd_config_clear(c);
			return r;
		}
	}
	return 0;
}

void berthd_config_clear(struct berthd_config *c)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].store == S_STR)
			free(*(char **)field(c, &keys[i]));
	*c = (struct berthd_config){ 0 };
}

/* Rotation needs somewhere to rotate to: the live file and at least one old one. */
static int check_rotation(const struct berthd_config *c, const char *where, const char *key,
			  struct berth_error **err)
{
	if (c->container_log_max_size > 0 && c->container_log_max_files < 2)
		return key_error(err, where, key,
				 "container_log_max_files = %u is too few to rotate at "
				 "container_log_max_size = %" PRIu64
				 " (at least 2, or container_log_max_size = 0 to never rotate)",
				 c->container_log_max_files, c->container_log_max_size);
	return 0;
}

/* One line of the file: blank, a comment, or `key = value` (value maybe quoted). On success
 * *ret_key is NULL for a line without a setting; both point into line. */
static int parse_line(char *line, const char *where, char **ret_key, char **ret_value,
		      struct berth_error **err)
{
	char *p = line + strspn(line, " \t\r");
	*ret_key = NULL;
	if (!*p || *p == '#')
		return 0;
	char *key = p;
	p += strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
	char *key_end = p;
	p += strspn(p, " \t");
	if (key_end == key || *p != '=')
		return berth_error_set(err, EINVAL, "%s: expected \"key = value\", got \"%s\"", where,
				       key);
	*key_end = '\0';
	p += 1 + strspn(p + 1, " \t");
	char *value = p, *end;
	if (*p == '"') {
		/* Quoted: \" and \\ are the only escapes; after the closing quote only a comment. */
		char *out = value;
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
				p++;
			*out++ = *p;
		}
		if (*p != '"')
			return key_error(err, where, key, "no closing quote");
		*out = '\0';
		p++;
		p += strspn(p, " \t\r");
		if (*p && *p != '#')
			return key_error(err, where, key, "text after the closing quote: \"%s\"", p);
	} else {
		end = value + strcspn(value, "#");
		while (end > value && strchr(" \t\r", end[-1]))
			end--;
		*end = '\0';
	}
	*ret_key = key;
	*ret_value = value;
	return 0;
}

/* Applies the lines of f; seen[] holds the line each key was set on (repeats are errors). */
static int load_lines(struct berthd_config *c, FILE *f, const char *path, unsigned seen[],
		      struct berth_error **err)
{
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	for (unsigned no = 1; (len = getline(&line, &cap, f)) >= 0; no++) {
		char where[PATH_MAX + 32];
		snprintf(where, sizeof(where), "%s:%u", path, no);
		if ((size_t)len != strlen(line))
			return berth_error_set(err, EINVAL, "%s: a NUL byte in the line", where);
		if (len > 0 && line[len - 1] == '\n')
			line[len - 1] = '\0';
		char *key, *value;
		int r = parse_line(line, where, &key, &value, err);
		if (r < 0)
			return r;
		if (!key)
			continue;
		const struct key *k = key_find(key);
		if (!k)
			return key_error(err, where, key, "unknown key");
		if (seen[k - keys])
			return key_error(err, where, key, "set again (first on line %u)",
					 seen[k - keys]);
		seen[k - keys] = no;
		r = key_set(c, k, value, where, err);
		if (r < 0)
			return r;
	}
	if (ferror(f))
		return berth_error_setsys(err, errno, "%s: read", path);
	return 0;
}

int berthd_config_load(struct berthd_config *c, const char *path, bool required,
		       struct berth_error **err)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT && !required) {
			log_debug("%s: not there, using the defaults", path);
			return 0;
		}
		return berth_error_setsys(err, errno, "%s", path);
	}
	unsigned seen[NKEYS] = { 0 };
	int r = load_lines(c, f, path, seen, err);
	if (r < 0)
		return r;
	/* The rotation pair is checked once the whole file is read, naming the line that set the
	 * later of the two, so their order in the file does not matter. */
	size_t files = (size_t)(key_find("container_log_max_files") - keys);
	size_t size = (size_t)(key_find("container_log_max_size") - keys);
	if (!seen[files] && !seen[size])
		return 0;
	size_t last = seen[files] > seen[size] ? files : size;
	char where[PATH_MAX + 32];
	snprintf(where, sizeof(where), "%s:%u", path, seen[last]);
	return check_rotation(c, where, keys[last].name, err);
}

/* *p = a + b, unless set. */
static int derive(char **p, const char *a, const char *b, struct berth_error **err)
{
	if (*p)
		return 0;
	if (asprintf(p, "%s%s", a, b) < 0) {
		*p = NULL;
		return berth_error_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

int berthd_config_finish(struct berthd_config *c, struct berth_error **err)
{
	int r = derive(&c->socket, c->state, "/berth.sock", err);
	if (r < 0)
		return r;
	r = check_path(c->socket, key_find("socket"), NULL, err);
	if (r < 0)
		return r;
	r = derive(&c->cgroup_parent, "berth", c->systemd_cgroup ? ".slice" : "", err);
	if (r < 0)
		return r;
	if (c->systemd_cgroup) {
		size_t len = strlen(c->cgroup_parent);
		if (strchr(c->cgroup_parent, '/') || len <= 6 ||
		    strcmp(c->cgroup_parent + len - 6, ".slice") != 0)
			return key_error(err, NULL, "cgroup_parent",
					 "\"%s\" is not a slice name (cgroup_driver = systemd "
					 "wants NAME.slice, e.g. berth.slice)",
					 c->cgroup_parent);
	}
	if (strcmp(c->network, "bridge") == 0 && !c->subnet && !c->subnet6)
		return key_error(err, NULL, "subnet",
				 "network = bridge needs subnet or subnet6 (or both)");
	return check_rotation(c, NULL, "container_log_max_files", err);
}

/* The value as the parser reads it back. */
static int key_format(const struct berthd_config *c, const struct key *k, char **ret)
{
	const void *p = cfield(c, k);
	int n;
	switch (k->store) {
	case S_LEVEL:
		n = asprintf(ret, "%s", k->names[*(const enum log_level *)p]);
		break;
	case S_BOOL:
		n = asprintf(ret, "%s", k->names[*(const bool *)p ? 1 : 0]);
		break;
	case S_UNSIGNED:
		n = k->kind == K_DURATION ? format_duration(*(const unsigned *)p, ret)
					  : asprintf(ret, "%u", *(const unsigned *)p);
		break;
	case S_U64: {
		static const char units[] = "KMGT";
		uint64_t v = *(const uint64_t *)p;
		int u = 0;
		while (v && u < 4 && v % 1024 == 0) {
			v /= 1024;
			u++;
		}
		n = u ? asprintf(ret, "%" PRIu64 "%c", v, units[u - 1])
		      : asprintf(ret, "%" PRIu64, v);
		break;
	}
	default: {
		const char *s = *(char *const *)p;
		n = asprintf(ret, "%s", s ? s : "");
		break;
	}
	}
	if (n < 0) {
		*ret = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Appends `key = value`, quoting a value the parser would otherwise read differently. */
static int dump_line(FILE *out, const char *key, const char *v)
{
	size_t len = strlen(v);
	bool quote = len == 0 || strpbrk(v, "#\"") || isspace((unsigned char)v[0]) ||
		     isspace((unsigned char)v[len - 1]);
	fprintf(out, "%s = ", key);
	if (!quote)
		return fprintf(out, "%s\n", v) < 0 ? -EIO : 0;
	fputc('"', out);
	for (const char *p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			fputc('\\', out);
		fputc(*p, out);
	}
	return fputs("\"\n", out) < 0 ? -EIO : 0;
}

int berthd_config_dump(const struct berthd_config *c, char **ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&buf, &size);
	if (!out)
		return -errno;
	int r = 0;
	for (size_t i = 0; i < NKEYS && r >= 0; i++) {
		_cleanup_free_ char *v = NULL;
		r = key_format(c, &keys[i], &v);
		if (r >= 0)
			r = dump_line(out, keys[i].name, v);
	}
	if (fclose(out) != 0 && r >= 0)
		r = -EIO;
	if (r < 0)
		return r;
	*ret = TAKE_PTR(buf);
	return 0;
}
