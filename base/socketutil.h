/* Unix socket helpers. */
#ifndef BERTH_BASE_SOCKETUTIL_H
#define BERTH_BASE_SOCKETUTIL_H

#include <stddef.h>

/* Sends len bytes of buf with fd attached (SCM_RIGHTS) on the first part; the rest of buf
 * follows on a stream socket. Retries on EINTR; never raises SIGPIPE. Returns 0 or -errno. */
int unix_send_with_fd(int sock, const void *buf, size_t len, int fd);

#endif
