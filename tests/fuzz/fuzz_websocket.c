/* libFuzzer target: cri/websocket.c. The input is read the way berthd reads a connection: an
 * HTTP head (ws_head_length, then ws_request_parse, and ws_client_check_response as if it were a
 * server's answer), then frames one after another until one is incomplete or refused, once as
 * the server (masked frames) and once as the client (unmasked). Close frames' payloads go
 * through ws_close_parse. The seeds in tests/fuzz/corpus-websocket are a valid upgrade request
 * followed by frames, a 101 response, and bare frames. */
#include "base/error.h"
#include "cri/websocket.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PAYLOAD 4096

static const char *const protocols[] = { "v5.channel.k8s.io", "v4.channel.k8s.io", NULL };

/* Every refusal must say why; a request's also names a status to answer. */
static void check_refusal(int r, const struct berth_error *err, int status, bool request)
{
	if (r >= 0)
		return;
	if (!err || !err->msg || !err->msg[0] || err->code != -r)
		abort();
	if (request && status != 400 && status != 405 && status != 426)
		abort();
}

static void fuzz_request(const char *head, size_t len)
{
	struct ws_request req = { 0 };
	struct berth_error *err = NULL;
	int status = 0;
	int r = ws_request_parse(head, len, protocols, &req, &status, &err);
	check_refusal(r, err, status, true);
	if (r == 0) {
		char *resp = ws_response_101(&req);
		if (!resp || ws_head_length(resp, strlen(resp)) != (ssize_t)strlen(resp))
			abort();
		free(resp);
	}
	ws_request_clear(&req);
	berth_error_free(err);
}

static void fuzz_response(const char *head, size_t len, const char *body, size_t body_len)
{
	struct berth_error *err = NULL;
	const char *chosen = NULL;
	int r = ws_client_check_response(head, len, "dGhlIHNhbXBsZSBub25jZQ==", protocols, body,
					 body_len, &chosen, &err);
	check_refusal(r, err, 0, false);
	berth_error_free(err);
}

/* Parses frames from the start of buf until one is incomplete or refused. */
static void fuzz_frames(uint8_t *buf, size_t len, bool must_mask)
{
	size_t off = 0;
	for (;;) {
		struct ws_frame f;
		ssize_t r = ws_frame_parse(buf + off, len - off, must_mask, MAX_PAYLOAD, &f);
		if (r <= 0)
			return;
		if ((size_t)r > len - off || f.len > MAX_PAYLOAD ||
		    f.payload + f.len != buf + off + r)
			abort();
		if (f.opcode == WS_OP_CLOSE) {
			uint16_t code;
			const char *reason;
			size_t reason_len;
			if (ws_close_parse(f.payload, f.len, &code, &reason, &reason_len) == 0 &&
			    reason_len > 123)
				abort();
		}
		off += (size_t)r;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	ssize_t head = ws_head_length(text, size);
	if (head > 0) {
		fuzz_request(text, (size_t)head);
		fuzz_response(text, (size_t)head, text + head, size - (size_t)head);
	}

	/* the frames after the head (or the whole input), unmasked in a copy */
	size_t start = head > 0 ? (size_t)head : 0;
	uint8_t *buf = malloc(size - start + 1);
	if (!buf)
		return 0;
	for (int must_mask = 0; must_mask <= 1; must_mask++) {
		if (size > start)
			memcpy(buf, data + start, size - start);
		fuzz_frames(buf, size - start, must_mask);
	}
	free(buf);
	return 0;
}
