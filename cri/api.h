/* berthd's JSON-lines API: one request line in, one response line out, independent of the
 * transport (cri/server.c reads and writes the lines).
 *
 * Request: {"op":"pod.run", ...fields}. Response: {"ok":true, ...} or
 * {"ok":false,"code":"NotFound","error":"message naming the field"}, code as cri/errcode.h maps
 * the errno. The ops and their fields are listed in berthd(8). Strings that carry process output
 * (container.exec) are UTF-8: invalid sequences and NUL bytes become U+FFFD. */
#ifndef BERTH_CRI_API_H
#define BERTH_CRI_API_H

#include "cri/config.h"
#include "cri/manager.h"

struct stream_server;
struct kubelet;

#include <stdbool.h>
#include <stddef.h>

#define API_REQUEST_MAX (1u << 20) /* bytes in one request line */

struct api_context {
	struct manager *manager;
	const struct berthd_config *config;
	struct stream_server *streams;
	struct kubelet *kubelet;
};

/* Handles one request line (not NUL-terminated, no newline); runs on a worker thread. Returns
 * the response line (with its newline, malloc'd; NULL only when out of memory); *ret_subscribe
 * is set for a successful "events" request: the connection then receives event lines. */
char *api_handle(const struct api_context *ctx, const char *line, size_t len, bool *ret_subscribe);
/* An error response line for errnum (a positive errno) and message. */
char *api_error_line(int errnum, const char *msg);
/* {"event":"exited","container_id":...,"pod_id":...,"time_ns":N[,"exit_code":N,"reason":R]}\n */
char *api_event_line(const struct manager_event *ev);
/* s (len bytes) as a NUL-terminated UTF-8 string: invalid sequences and NULs become U+FFFD. */
char *api_utf8_sanitize(const char *s, size_t len);

#endif
