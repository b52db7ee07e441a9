/* Image reference parsing and normalisation (the grammar of distribution/reference). */
#include "image/reference-internal.h"
#include "image/image.h"

#include "base/cleanup.h"
#include "image/digest-internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define NAME_MAX_LEN 255
#define TAG_MAX_LEN 128

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )* */
static bool path_component_valid(const char *s, size_t len)
{
	size_t i = 0;
	if (len == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
		return false;
	while (i < len) {
		if (is_lower_alnum(s[i])) {
			i++;
			continue;
		}
		size_t sep = i;
		if (s[i] == '-') {
			while (i < len && s[i] == '-')
				i++;
		} else if (s[i] == '_' && i + 1 < len && s[i + 1] == '_') {
			i += 2;
		} else if (s[i] == '.' || s[i] == '_') {
			i++;
		} else {
			return false;
		}
		if (i == sep || i >= len || !is_lower_alnum(s[i]))
			return false;
	}
	return true;
}

/* domain := host [":" port]; host is DNS labels, an IPv4 address or "[" IPv6 "]". */
static bool domain_valid(const char *s)
{
	const char *port = NULL;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end == s + 1)
			return false;
		for (const char *p = s + 1; p < end; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				return false;
		if (end[1] == ':')
			port = end + 2;
		else if (end[1])
			return false;
	} else {
		const char *colon = strchr(s, ':');
		const char *host_end = colon ? colon : s + strlen(s);
		if (host_end == s)
			return false;
		for (const char *p = s; p < host_end; p++)
			if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
				return false;
		if (s[0] == '-' || s[0] == '.' || host_end[-1] == '-' || host_end[-1] == '.')
			return false;
		if (colon)
			port = colon + 1;
	}
	if (port) {
		if (!*port || strlen(port) > 5)
			return false;
		for (const char *p = port; *p; p++)
			if (!isdigit((unsigned char)*p))
				return false;
	}
	return true;
}

static bool tag_valid(const char *t)
{
	size_t len = strlen(t);
	if (len == 0 || len > TAG_MAX_LEN || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
		return false;
	for (const char *p = t; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
			return false;
	return true;
}

static bool looks_like_domain(const char *first, size_t len)
{
	return memchr(first, '.', len) || memchr(first, ':', len) ||
	       (len == 9 && memcmp(first, "localhost", 9) == 0) || first[0] == '[';
}

static int split_domain(const char *name, struct reference *r, struct berth_error **err)
{
	const char *slash = strchr(name, '/');
	const char *path = name;
	if (slash && looks_like_domain(name, (size_t)(slash - name))) {
		r->domain = strndup(name, (size_t)(slash - name));
		path = slash + 1;
		if (r->domain && strcmp(r->domain, "index.docker.io") == 0) {
			free(r->domain);
			r->domain = strdup("docker.io");
		}
		if (r->domain && !domain_valid(r->domain))
			return berth_error_set(err, EINVAL, "image reference \"%s\": invalid registry \"%s\"",
					       name, r->domain);
	} else {
		r->domain = strdup("docker.io");
	}
	if (!r->domain)
		return -ENOMEM;
	if (strcmp(r->domain, "docker.io") == 0 && !strchr(path, '/')) {
		if (asprintf(&r->path, "library/%s", path) < 0)
			return r->path = NULL, -ENOMEM;
	} else {
		r->path = strdup(path);
		if (!r->path)
			return -ENOMEM;
	}
	return 0;
}

static int check_path(const char *input, const char *path, struct berth_error **err)
{
	for (const char *p = path; *p; p++)
		if (isupper((unsigned char)*p))
			return berth_error_set(err, EINVAL, "image reference \"%s\": repository name must be lowercase",
					       input);
	const char *c = path;
	for (;;) {
		const char *slash = strchr(c, '/');
		size_t len = slash ? (size_t)(slash - c) : strlen(c);
		if (!path_component_valid(c, len))
			return berth_error_set(err, EINVAL, "image reference \"%s\": invalid repository name \"%s\"",
					       input, path);
		if (!slash)
			return 0;
		c = slash + 1;
	}
}

static int parse_into(const char *s, struct reference *r, struct berth_error **err)
{
	if (!*s)
		return berth_error_set(err, EINVAL, "image reference: empty name");
	_cleanup_free_ char *name = strdup(s);
	if (!name)
		return -ENOMEM;
	char *at = strchr(name, '@');
	if (at) {
		*at = '\0';
		int rc = digest_validate(at + 1, "image reference digest", err);
		if (rc < 0)
			return berth_error_wrap(err, "image reference \"%s\"", s);
		r->digest = strdup(at + 1);
		if (!r->digest)
			return -ENOMEM;
	}
	/* A tag is after the last ':' that follows the last '/' (a ':' before it is a port). */
	char *slash = strrchr(name, '/');
	char *colon = strrchr(slash ? slash : name, ':');
	if (colon) {
		*colon = '\0';
		if (!tag_valid(colon + 1))
			return berth_error_set(err, EINVAL, "image reference \"%s\": invalid tag \"%s\"", s, colon + 1);
		r->tag = strdup(colon + 1);
		if (!r->tag)
			return -ENOMEM;
	}
	if (!*name || name[strlen(name) - 1] == '/')
		return berth_error_set(err, EINVAL, "image reference \"%s\": missing repository name", s);
	int rc = split_domain(name, r, err);
	if (rc < 0)
		return rc;
	rc = check_path(s, r->path, err);
	if (rc < 0)
		return rc;
	if (strlen(r->domain) + 1 + strlen(r->path) > NAME_MAX_LEN)
		return berth_error_set(err, EINVAL, "image reference \"%s\": name longer than %d characters", s,
				       NAME_MAX_LEN);
	if (!r->tag && !r->digest) {
		r->tag = strdup("latest");
		if (!r->tag)
			return -ENOMEM;
	}
	return 0;
}

int reference_parse(const char *s, struct reference *ret, struct berth_error **err)
{
	struct reference r = {0};
	int rc = parse_into(s, &r, err);
	if (rc < 0) {
		reference_clear(&r);
		return rc == -ENOMEM ? berth_error_set(err, ENOMEM, "image reference: out of memory") : rc;
	}
	*ret = r;
	return 0;
}

void reference_clear(struct reference *r)
{
	free(r->domain);
	free(r->path);
	free(r->tag);
	free(r->digest);
	*r = (struct reference){0};
}

char *reference_string(const struct reference *r)
{
	char *s = NULL;
	if (asprintf(&s, "%s/%s%s%s%s%s", r->domain, r->path, r->tag ? ":" : "", r->tag ? r->tag : "",
		     r->digest ? "@" : "", r->digest ? r->digest : "") < 0)
		return NULL;
	return s;
}

char *reference_repository(const struct reference *r)
{
	char *s = NULL;
	if (asprintf(&s, "%s/%s", r->domain, r->path) < 0)
		return NULL;
	return s;
}

int image_reference_normalize(const char *name, char **ret, struct berth_error **err)
{
	struct reference r;
	int rc = reference_parse(name, &r, err);
	if (rc < 0)
		return rc;
	*ret = reference_string(&r);
	reference_clear(&r);
	return *ret ? 0 : berth_error_set(err, ENOMEM, "image reference: out of memory");
}
