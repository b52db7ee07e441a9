/* RFC 6455 WebSocket, the parts berth needs: the HTTP/1.1 upgrade handshake on both sides (the
 * streaming server in berthd, the client in `berth exec/attach/port-forward`) and the frame codec.
 * No I/O here: callers feed bytes in and get bytes out, so the same code serves libuv streams in
 * berthd and blocking sockets in the CLI, and is unit-tested and fuzzed without sockets. */
#ifndef BERTH_CRI_WEBSOCKET_H
#define BERTH_CRI_WEBSOCKET_H

#include "base/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum ws_opcode {
	WS_OP_CONTINUATION = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xa,
};

/* Close codes (RFC 6455 7.4.1) used by berth. */
enum {
	WS_CLOSE_NORMAL = 1000,
	WS_CLOSE_GOING_AWAY = 1001,
	WS_CLOSE_PROTOCOL_ERROR = 1002,
	WS_CLOSE_TOO_BIG = 1009,
	WS_CLOSE_INTERNAL = 1011,
};

/* Longest request or response head accepted (request line or status line, and headers). */
#define WS_MAX_HEAD 8192
/* A frame header is at most 14 bytes (2 + 8 extended length + 4 mask). */
#define WS_MAX_FRAME_HEADER 14

/* The length of an HTTP head (through the blank line "\r\n\r\n") at the start of buf: > 0 when
 * complete, 0 when more bytes are needed, -E2BIG when none ends within WS_MAX_HEAD bytes. */
ssize_t ws_head_length(const char *buf, size_t len);

/* A client's upgrade request, as the server sees it. */
struct ws_request {
	char *path;	       /* the request target, e.g. "/exec/TOKEN?x=1" (malloc'd) */
	const char *protocol;  /* the chosen subprotocol: an element of the server's list, or NULL */
	char accept[29];       /* Sec-WebSocket-Accept for the response, NUL-terminated */
};

/* Parses and checks a complete request head (as measured by ws_head_length): method GET,
 * HTTP/1.1, "Upgrade: websocket", a Connection header whose comma-separated tokens include
 * "upgrade" (case-insensitive), "Sec-WebSocket-Version: 13", a Sec-WebSocket-Key that is base64 of
 * 16 bytes. Header names are case-insensitive; repeated Sec-WebSocket-Protocol headers and
 * comma-separated lists are merged. The chosen protocol is the first of `supported` (the server's
 * order of preference, NULL-terminated) that the client offered; when the client offered some and
 * none is supported, or offered none while `supported` is non-empty, it is an error.
 * On error returns -EINVAL (or -ENOMEM) with a one-line message, and *ret_status gets the HTTP
 * status to answer (400, 405 for a method other than GET, 426 for a missing/wrong version); on
 * success ret is filled (free with ws_request_clear). ret_status may be NULL. */
int ws_request_parse(const char *head, size_t len, const char *const *supported,
		     struct ws_request *ret, int *ret_status, struct berth_error **err);
void ws_request_clear(struct ws_request *r);

/* "HTTP/1.1 101 Switching Protocols" with Upgrade, Connection, Sec-WebSocket-Accept and, when
 * r->protocol is set, Sec-WebSocket-Protocol; malloc'd, NUL-terminated. */
char *ws_response_101(const struct ws_request *r);
/* A complete plain HTTP/1.1 error response: status line, "Content-Type: text/plain",
 * Content-Length, "Connection: close", and body + "\n". malloc'd. */
char *ws_response_error(int status, const char *body);

/* Client side. Writes a random 16-byte key (base64, 24 chars + NUL) into key (from getrandom)
 * and returns the request head (malloc'd) for GET path with Host, Upgrade, Connection,
 * Sec-WebSocket-Version 13, Sec-WebSocket-Key and, when protocols is non-empty, one
 * Sec-WebSocket-Protocol header listing them. */
char *ws_client_request(const char *host, const char *path, const char *const *protocols,
			char key[25]);
/* Checks a complete response head to that request: status 101, Upgrade and Connection, the
 * accept value for key, and a Sec-WebSocket-Protocol that is one of those offered (returned in
 * *ret_protocol as a pointer into `protocols`, or NULL if the server named none). Any other status
 * is an error whose message carries the status line and, when the caller passes the bytes after
 * the head in `body`, the body's first line (servers put their reason there). */
int ws_client_check_response(const char *head, size_t len, const char *key,
			     const char *const *protocols, const char *body, size_t body_len,
			     const char **ret_protocol, struct berth_error **err);

/* One parsed frame. payload points into the caller's buffer, already unmasked. */
struct ws_frame {
	bool fin;
	enum ws_opcode opcode;
	uint8_t *payload;
	size_t len;
};

/* Parses one frame at the start of buf[0..len), unmasking its payload in place. A server passes
 * must_mask = true (RFC 6455: client frames are masked, an unmasked one is an error); a client
 * passes false (server frames must not be masked). Returns the bytes consumed (> 0) when a whole
 * frame is there, 0 when more bytes are needed, or an error: -EPROTO for a protocol violation
 * (reserved bits, unknown opcode, a control frame that is fragmented or longer than 125 bytes,
 * masking wrong for the side, a 64-bit length with the top bit set, a non-minimal length
 * encoding is accepted), -EMSGSIZE when the payload is longer than max_payload. Fragments are
 * returned as they come (the caller joins continuation frames). */
ssize_t ws_frame_parse(uint8_t *buf, size_t len, bool must_mask, size_t max_payload,
		       struct ws_frame *ret);

/* Writes a frame header for a payload of len bytes into out (WS_MAX_FRAME_HEADER bytes of room)
 * and returns its length. With mask non-NULL (client side) the header carries the 4-byte mask
 * and the caller masks the payload with ws_mask. */
size_t ws_frame_header(uint8_t *out, bool fin, enum ws_opcode opcode, uint64_t len,
		       const uint8_t mask[4]);
/* XORs data[0..len) with mask, starting at position `offset` of the payload (so a payload can be
 * masked in pieces). */
void ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset);

/* A close frame's payload: 2-byte big-endian code then the reason truncated to fit the 125-byte
 * control frame limit (at a UTF-8 character boundary). Returns its length (<= 125). */
size_t ws_close_payload(uint8_t out[125], uint16_t code, const char *reason);
/* Reads a received close payload: code (1005 when empty) and reason (points into payload, not
 * NUL-terminated, length in *ret_reason_len). -EPROTO for a 1-byte payload or an invalid code. */
int ws_close_parse(const uint8_t *payload, size_t len, uint16_t *ret_code,
		   const char **ret_reason, size_t *ret_reason_len);

#endif
