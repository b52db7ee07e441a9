/* Registry configuration: registries.json (mirrors, plain-HTTP registries, retries, timeouts)
 * and credentials from Docker's config.json. The formats are described at the top of
 * registry.c and in image/README.md. */
#include "image/registry-config-internal.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/hash.h"
#include "base/json.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_CONFIG "/etc/berth/registries.json"
#define DEFAULT_RETRIES 4
#define DEFAULT_CONNECT_TIMEOUT 30
#define DEFAULT_STALL_TIMEOUT 60

void registry_config_free(struct registry_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_registries; i++) {
		free(c->registries[i].domain);
		strv_free(c->registries[i].mirrors);
	}
	free(c->registries);
	for (size_t i = 0; i < c->n_credentials; i++) {
		free(c->credentials[i].host);
		free_secret(c->credentials[i].username);
		free_secret(c->credentials[i].password);
	}
	free(c->credentials);
	free(c);
}

static void registry_config_freep(struct registry_config **c)
{
	registry_config_free(*c);
}

unsigned registry_config_max_parallel(const struct registry_config *c)
{
	return c->max_parallel;
}

/* The path of a key in messages, as `registries."docker.io".mirrors[0]`; an absurdly long one
 * is cut, which only shortens the message. */
__attribute__((format(printf, 3, 4))) static char *key_path(char *buf, size_t size, const char *fmt,
							    ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return buf;
}

static int expect_type(const struct json *v, enum json_type t, const char *file, const char *path,
		       struct berth_error **err)
{
	if (bjson_type_of(v) == t)
		return 0;
	return berth_error_set(err, EINVAL, "%s: %s: expected %s", file, path, bjson_type_name(t));
}

/* "host[:port]" of a URL or of a config.json key: scheme and path dropped, Docker Hub's aliases
 * folded into "docker.io". */
char *registry_host_of(const char *s)
{
	static const char *const hub[] = { "docker.io", "index.docker.io", "registry-1.docker.io" };
	if (strncasecmp(s, "https://", 8) == 0)
		s += 8;
	else if (strncasecmp(s, "http://", 7) == 0)
		s += 7;
	size_t n = strcspn(s, "/");
	for (size_t i = 0; i < ARRAY_SIZE(hub); i++)
		if (strlen(hub[i]) == n && strncasecmp(s, hub[i], n) == 0)
			return strdup("docker.io");
	return strndup(s, n);
}

/* The length of the "http://" or "https://" url starts with, else 0. */
static size_t url_scheme_len(const char *url)
{
	if (strncmp(url, "http://", 7) == 0)
		return 7;
	return strncmp(url, "https://", 8) == 0 ? 8 : 0;
}

static int parse_mirrors(struct registry_settings *s, const struct json *v, const char *file,
			 const char *path, struct berth_error **err)
{
	int r = expect_type(v, JSON_ARRAY, file, path, err);
	if (r < 0)
		return r;
	size_t n = bjson_array_size(v);
	s->mirrors = calloc(n + 1, sizeof(char *));
	if (!s->mirrors)
		return berth_error_set(err, ENOMEM, "%s: out of memory", file);
	for (size_t i = 0; i < n; i++) {
		char item[600];
		key_path(item, sizeof(item), "%s[%zu]", path, i);
		r = expect_type(bjson_array_get(v, i), JSON_STRING, file, item, err);
		if (r < 0)
			return r;
		const char *url = bjson_string(bjson_array_get(v, i));
		size_t scheme = url_scheme_len(url);
		if (!scheme || !url[scheme] || url[scheme] == '/')
			return berth_error_set(err, EINVAL,
					       "%s: %s: \"%s\" is not an http:// or https:// URL",
					       file, item, url);
		size_t len = strlen(url);
		while (url[len - 1] == '/')
			len--;
		s->mirrors[i] = strndup(url, len);
		if (!s->mirrors[i])
			return berth_error_set(err, ENOMEM, "%s: out of memory", file);
	}
	return 0;
}

static int parse_registry_settings(struct registry_settings *s, const char *domain,
				   const struct json *v, const char *file, struct berth_error **err)
{
	char path[512];
	key_path(path, sizeof(path), "registries.\"%s\"", domain);
	s->insecure = -1;
	s->domain = strdup(domain);
	if (!s->domain)
		return berth_error_set(err, ENOMEM, "%s: out of memory", file);
	int r = expect_type(v, JSON_OBJECT, file, path, err);
	for (size_t i = 0; r >= 0 && i < bjson_object_size(v); i++) {
		const char *key = bjson_object_key(v, i);
		const struct json *value = bjson_object_value(v, i);
		char sub[600];
		key_path(sub, sizeof(sub), "%s.%s", path, key);
		if (strcmp(key, "mirrors") == 0)
			r = parse_mirrors(s, value, file, sub, err);
		else if (strcmp(key, "insecure") == 0) {
			r = expect_type(value, JSON_BOOL, file, sub, err);
			s->insecure = bjson_bool(value);
		} else
			r = berth_error_set(err, EINVAL, "%s: %s: unknown key", file, sub);
	}
	return r;
}

static int parse_registries(struct registry_config *c, const struct json *v, const char *file,
			    struct berth_error **err)
{
	int r = expect_type(v, JSON_OBJECT, file, "registries", err);
	if (r < 0)
		return r;
	size_t n = bjson_object_size(v);
	c->registries = calloc(n ? n : 1, sizeof(*c->registries));
	if (!c->registries)
		return berth_error_set(err, ENOMEM, "%s: out of memory", file);
	for (size_t i = 0; i < n; i++) {
		c->n_registries++;
		r = parse_registry_settings(&c->registries[i], bjson_object_key(v, i),
					    bjson_object_value(v, i), file, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static const struct {
	const char *key;
	size_t offset;
	unsigned min, max;
} config_numbers[] = {
	{ "retries", offsetof(struct registry_config, retries), 0, 100 },
	{ "connectTimeout", offsetof(struct registry_config, connect_timeout), 1, 3600 },
	{ "stallTimeout", offsetof(struct registry_config, stall_timeout), 1, 3600 },
	{ "maxParallelDownloads", offsetof(struct registry_config, max_parallel), 1, 64 },
};

/* A number among config_numbers; any other key is unknown. */
static int parse_number_key(struct registry_config *c, const char *key, const struct json *v,
			    const char *file, struct berth_error **err)
{
	for (size_t i = 0; i < ARRAY_SIZE(config_numbers); i++) {
		if (strcmp(key, config_numbers[i].key) != 0)
			continue;
		uint64_t n;
		if (bjson_type_of(v) != JSON_NUMBER || !bjson_uint64(v, &n) ||
		    n < config_numbers[i].min || n > config_numbers[i].max)
			return berth_error_set(err, EINVAL,
					       "%s: %s: expected an integer from %u to %u", file,
					       key, config_numbers[i].min, config_numbers[i].max);
		*(unsigned *)((char *)c + config_numbers[i].offset) = (unsigned)n;
		return 0;
	}
	return berth_error_set(err, EINVAL, "%s: %s: unknown key", file, key);
}

static int parse_config(struct registry_config *c, const struct json *root, const char *file,
			struct berth_error **err)
{
	if (bjson_type_of(root) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, "%s: expected an object", file);
	for (size_t i = 0; i < bjson_object_size(root); i++) {
		const char *key = bjson_object_key(root, i);
		const struct json *v = bjson_object_value(root, i);
		int r = strcmp(key, "registries") == 0 ? parse_registries(c, v, file, err)
						       : parse_number_key(c, key, v, file, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Decodes base64 text that must come out as NUL-free text. */
static int decode_base64_text(const char *in, char **ret)
{
	size_t n = strlen(in);
	if (n == 0 || n % 4 != 0 || n > 65536)
		return -EINVAL;
	_cleanup_free_ unsigned char *out = malloc(n / 4 * 3 + 1);
	if (!out)
		return -ENOMEM;
	long len = base64_decode(in, n, out);
	if (len < 0)
		return -EINVAL;
	out[len] = '\0';
	if (memchr(out, '\0', (size_t)len))
		return -EINVAL;
	*ret = (char *)TAKE_PTR(out);
	return 0;
}

/* A string member that may be absent (*ret = NULL) but is a string when present. */
static int optional_string(const struct json *obj, const char *key, const char *file,
			   const char *path, const char **ret, struct berth_error **err)
{
	const struct json *v = bjson_object_get(obj, key);
	*ret = NULL;
	if (!v)
		return 0;
	char sub[600];
	key_path(sub, sizeof(sub), "%s.%s", path, key);
	int r = expect_type(v, JSON_STRING, file, sub, err);
	if (r >= 0)
		*ret = bjson_string(v);
	return r;
}

/* One "auths" entry; an entry without credentials (a credential helper's) leaves cr->host NULL. */
static int parse_credential(struct credential *cr, const char *key, const struct json *v,
			    const char *file, struct berth_error **err)
{
	char path[512];
	key_path(path, sizeof(path), "auths.\"%s\"", key);
	const char *auth, *user, *pass;
	int r = expect_type(v, JSON_OBJECT, file, path, err);
	if (r >= 0)
		r = optional_string(v, "auth", file, path, &auth, err);
	if (r >= 0)
		r = optional_string(v, "username", file, path, &user, err);
	if (r >= 0)
		r = optional_string(v, "password", file, path, &pass, err);
	if (r < 0)
		return r;
	if (auth && *auth) {
		_cleanup_free_ char *plain = NULL;
		char *colon = NULL;
		if (decode_base64_text(auth, &plain) < 0 || !(colon = strchr(plain, ':'))) {
			free_secret(TAKE_PTR(plain));
			return berth_error_set(err, EINVAL,
					       "%s: %s.auth: not base64 of user:password", file,
					       path);
		}
		cr->username = strndup(plain, (size_t)(colon - plain));
		cr->password = strdup(colon + 1);
		free_secret(TAKE_PTR(plain));
	} else if (user && *user) {
		if (!pass)
			return berth_error_set(err, EINVAL, "%s: %s: username without password",
					       file, path);
		cr->username = strdup(user);
		cr->password = strdup(pass);
	} else
		return 0;
	cr->host = registry_host_of(key);
	if (!cr->host || !cr->username || !cr->password)
		return berth_error_set(err, ENOMEM, "%s: out of memory", file);
	return 0;
}

static int parse_auths(struct registry_config *c, const struct json *root, const char *file,
		       struct berth_error **err)
{
	if (bjson_type_of(root) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, "%s: expected an object", file);
	const struct json *auths = bjson_object_get(root, "auths");
	if (!auths)
		return 0;
	int r = expect_type(auths, JSON_OBJECT, file, "auths", err);
	if (r < 0)
		return r;
	size_t n = bjson_object_size(auths);
	c->credentials = calloc(n ? n : 1, sizeof(*c->credentials));
	if (!c->credentials)
		return berth_error_set(err, ENOMEM, "%s: out of memory", file);
	for (size_t i = 0; i < n; i++) {
		struct credential *cr = &c->credentials[c->n_credentials];
		r = parse_credential(cr, bjson_object_key(auths, i), bjson_object_value(auths, i),
				     file, err);
		if (cr->host || cr->username || cr->password)
			c->n_credentials++; /* owned (and freed) by c from here on */
		if (r < 0)
			return r;
	}
	return 0;
}

/* Parses a JSON file; an optional file that does not exist leaves *ret NULL. */
static int load_json_file(const char *path, bool required, struct json **ret,
			  struct berth_error **err)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_error_ struct berth_error *e = NULL;
	*ret = NULL;
	int r = read_file_at(AT_FDCWD, path, &text, NULL, &e);
	if (r == -ENOENT && !required)
		return 0;
	if (r >= 0 && bjson_parse(text, ret, &e) < 0)
		r = berth_error_wrap(&e, "%s", path);
	return r < 0 ? berth_error_move(err, &e) : 0;
}

/* $REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
static char *default_auth_path(void)
{
	const char *env = getenv("REGISTRY_AUTH_FILE");
	char *path = NULL;
	if (env && *env)
		return strdup(env);
	env = getenv("DOCKER_CONFIG");
	if (env && *env)
		return asprintf(&path, "%s/config.json", env) < 0 ? NULL : path;
	env = getenv("HOME");
	if (env && *env)
		return asprintf(&path, "%s/.docker/config.json", env) < 0 ? NULL : path;
	return NULL;
}

int registry_config_load(const char *config_path, const char *auth_path,
			 struct registry_config **ret, struct berth_error **err)
{
	_cleanup_(registry_config_freep) struct registry_config *c = calloc(1, sizeof(*c));
	_cleanup_(bjson_freep) struct json *config = NULL;
	_cleanup_(bjson_freep) struct json *auths = NULL;
	_cleanup_free_ char *default_auth = NULL;
	if (!c)
		return berth_error_set(err, ENOMEM, "registry configuration: out of memory");
	c->retries = DEFAULT_RETRIES;
	c->connect_timeout = DEFAULT_CONNECT_TIMEOUT;
	c->stall_timeout = DEFAULT_STALL_TIMEOUT;

	const char *file = config_path ? config_path : DEFAULT_CONFIG;
	int r = load_json_file(file, config_path != NULL, &config, err);
	if (r >= 0 && config)
		r = parse_config(c, config, file, err);
	if (r < 0)
		return r;
	if (!auth_path)
		auth_path = default_auth = default_auth_path();
	if (auth_path) {
		r = load_json_file(auth_path, !default_auth, &auths, err);
		if (r >= 0 && auths)
			r = parse_auths(c, auths, auth_path, err);
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(c);
	return 0;
}

