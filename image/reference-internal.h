/* Image references as Docker and containerd read them:
 *   [domain/]path[:tag][@sha256:hex]
 * A first component with a '.' or ':' or named "localhost" is a domain; otherwise the domain is
 * docker.io, where a one-component path gets "library/" in front. No tag and no digest means
 * ":latest". */
#ifndef BERTH_IMAGE_REFERENCE_INTERNAL_H
#define BERTH_IMAGE_REFERENCE_INTERNAL_H
#include "base/error.h"

struct reference {
	char *domain; /* "docker.io", "127.0.0.1:5000" */
	char *path;   /* "library/busybox" */
	char *tag;    /* NULL when only a digest was given */
	char *digest; /* NULL unless pinned */
};

int reference_parse(const char *s, struct reference *ret, struct berth_error **err);
void reference_clear(struct reference *r);
/* "domain/path[:tag][@digest]" */
char *reference_string(const struct reference *r);
/* "domain/path" */
char *reference_repository(const struct reference *r);
#endif
