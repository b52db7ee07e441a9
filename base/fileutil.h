/* Small file helpers. Every fd they open is O_CLOEXEC; paths are relative to a directory fd. */
#ifndef BERTH_BASE_FILEUTIL_H
#define BERTH_BASE_FILEUTIL_H

#include "base/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Reads the whole file (NUL-terminated; *ret_len may be NULL). */
int read_file_at(int dirfd, const char *path, char **ret, size_t *ret_len, struct berth_error **err);
/* Writes data to an existing file (O_WRONLY|O_TRUNC if it is a regular file), in one write. */
int write_file_at(int dirfd, const char *path, const char *data, struct berth_error **err);
/* Writes a temporary file, fsyncs it when asked, and renames it over name: readers see the old
 * contents or the new, never a part. */
int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
			 bool sync, struct berth_error **err);
/* Removes name (file or tree) under dirfd without following symlinks. ENOENT is success. */
int remove_tree_at(int dirfd, const char *name);
/* Writes all of buf, retrying on EINTR and short writes. */
int write_all(int fd, const void *buf, size_t len);

#endif
