/* berthd's socket: a unix stream socket (mode 0660, group socket_group) served from the libuv
 * loop. Each connection's protocol is chosen from its first bytes (see protocols[] in server.c):
 * newline-delimited JSON (cri/api.h), or, for a connection that opens with the HTTP/2 preface
 * ("PRI * HTTP/2.0"), the CRI over gRPC (cri/grpc.h) with the methods of grpc_services.
 *
 * Requests run on the libuv worker pool, one at a time per connection and in order; the loop only
 * moves bytes, so a slow client or a long request never holds up the others. A request line is
 * at most API_REQUEST_MAX bytes; an events subscriber that falls more than EVENTS_BACKLOG_MAX
 * bytes behind is disconnected. */
#ifndef BERTH_CRI_SERVER_H
#define BERTH_CRI_SERVER_H

#include "base/error.h"
#include "cri/api.h"
#include "cri/grpc.h"

#include <uv.h>

#define EVENTS_BACKLOG_MAX (8u << 20)

struct server;

/* Binds and listens (the socket's directory is created 0711 when missing; a stale socket is
 * replaced, a live one, another berthd's, is refused with -EADDRINUSE) and subscribes to the
 * manager's events. ctx and grpc_services (the gRPC methods; NULL serves none) must outlive the
 * server. */
int server_new(uv_loop_t *loop, const struct api_context *ctx,
	       const struct grpc_service_table *grpc_services, struct server **ret,
	       struct berth_error **err);
/* Stops accepting, removes the socket file and closes every connection; requests in flight
 * finish on their worker and their answers are dropped. */
void server_close(struct server *s);
/* Requests running on workers. */
unsigned server_inflight(const struct server *s);
/* After the loop ended. */
struct server *server_free(struct server *s);

#endif
