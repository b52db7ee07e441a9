/* gRPC over HTTP/2 (nghttp2) on berthd's socket: the transport under the CRI services.
 *
 * cri/server.c hands a connection whose first bytes are the HTTP/2 client preface to
 * grpc_conn_new; the connection then feeds every byte it reads to grpc_conn_input and writes
 * what the session produces. Each request stream carries one call: POST /<package>.<Service>/
 * <Method>, content-type application/grpc, one length-prefixed message (1 byte compressed flag,
 * 4 bytes big-endian length), optional grpc-timeout. The method is looked up in the table the
 * services registered; the message is unpacked with the method's protobuf-c descriptor and the
 * handler runs on the libuv worker pool (many calls at once, on one connection or many); the
 * answer is HEADERS (:status 200, content-type), DATA (the response message) and trailers
 * (grpc-status, grpc-message percent-encoded). Errors map through cri/errcode.h; unknown methods
 * are Unimplemented; a deadline that passes answers DeadlineExceeded (the handler's result is
 * dropped when it finishes). Compressed messages (no grpc-encoding is accepted) and bodies over
 * GRPC_MESSAGE_MAX get the proper status, malformed frames a GOAWAY or RST_STREAM: never a
 * crash.
 *
 * Server-streaming methods (GetContainerEvents) get a struct grpc_stream instead: the handler
 * keeps it and sends messages on the loop thread until the client goes away (close_cb) or the
 * server ends it. */
#ifndef BERTH_CRI_GRPC_H
#define BERTH_CRI_GRPC_H

#include "base/error.h"

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define GRPC_MESSAGE_MAX (16u << 20) /* kubelet's default limit, both ways */

struct grpc_stream;

/* Runs on a worker thread. req is the unpacked request (owned by the transport). On success
 * the handler sets *ret_buf and *ret_len to the packed response (malloc'd; the transport frees it;
 * an empty message may be NULL/0); on failure it returns -errno with *err set (the message goes
 * to grpc-message). userdata: what the service registered. */
typedef int (*grpc_unary_fn)(void *userdata, const ProtobufCMessage *req, uint8_t **ret_buf,
			     size_t *ret_len, struct berth_error **err);
/* Runs on the loop thread, for server-streaming methods: returns -errno (the call ends with
 * that status) or 0 having kept stream. */
typedef int (*grpc_stream_open_fn)(void *userdata, const ProtobufCMessage *req,
				   struct grpc_stream *stream, struct berth_error **err);

struct grpc_method {
	const char *path; /* "/runtime.v1.RuntimeService/Version" */
	const ProtobufCMessageDescriptor *input;
	grpc_unary_fn unary;             /* one of unary, */
	grpc_stream_open_fn stream_open; /* or stream_open */
	void *userdata;
};

/* The methods a server serves: a NULL-path-terminated array that outlives the server. */
struct grpc_service_table {
	const struct grpc_method *methods;
};

/* Loop thread only. Sends one message on the stream (packed here); -EPIPE once the client has
 * gone. */
int grpc_stream_send(struct grpc_stream *s, const ProtobufCMessage *msg);
/* Ends the stream with a status (0: OK). The stream is freed after its close_cb. */
void grpc_stream_finish(struct grpc_stream *s, int errnum, const char *message);
/* Called once when the stream ends for any reason (client gone, finish, shutdown); after it
 * the stream must not be used. */
void grpc_stream_set_close_cb(struct grpc_stream *s, void (*cb)(struct grpc_stream *s, void *ud),
			      void *ud);

/* One HTTP/2 connection (server side). The transport's I/O is the caller's (server.c): it
 * provides a write function and calls grpc_conn_input with what it read. */
struct grpc_conn;
struct grpc_conn_io {
	/* queue bytes for writing (copy them); return 0 or -errno */
	int (*write)(void *io_ud, const uint8_t *buf, size_t len);
	/* the session is finished (GOAWAY sent and drained, or a fatal error): close the socket */
	void (*close)(void *io_ud);
	void *io_ud;
};
int grpc_conn_new(uv_loop_t *loop, const struct grpc_service_table *services,
		  const struct grpc_conn_io *io, struct grpc_conn **ret, struct berth_error **err);
/* Bytes read from the socket; returns 0, or -errno when the connection must be closed. */
int grpc_conn_input(struct grpc_conn *c, const uint8_t *buf, size_t len);
/* The peer closed or the server shuts down: cancels streams, drops pending answers. Calls in
 * flight on workers finish and are discarded. Frees c (possibly later, once they have). */
void grpc_conn_close(struct grpc_conn *c);

#endif
