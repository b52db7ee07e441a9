/* registries.json and Docker's config.json, as registry.c reads them (see the comment at the top
 * of registry.c for the formats). */
#ifndef BERTH_IMAGE_REGISTRY_CONFIG_INTERNAL_H
#define BERTH_IMAGE_REGISTRY_CONFIG_INTERNAL_H
#include "image/registry-internal.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct registry_settings {
	char *domain;
	char **mirrors; /* NULL-terminated, without trailing slashes */
	int insecure;	/* -1: not said */
};

struct credential {
	char *host; /* normalised key of "auths" */
	char *username;
	char *password;
};

struct registry_config {
	struct registry_settings *registries;
	size_t n_registries;
	struct credential *credentials;
	size_t n_credentials;
	unsigned retries;
	unsigned connect_timeout;
	unsigned stall_timeout;
	unsigned max_parallel; /* 0: not set */
};

/* "host[:port]" of a URL or of a config.json key: scheme and path dropped, Docker Hub's aliases
 * folded into "docker.io". */
char *registry_host_of(const char *s);

/* Passwords do not linger in freed memory. */
static inline void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static inline bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}
#endif
