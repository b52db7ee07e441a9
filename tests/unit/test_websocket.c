/* cri/websocket.c: the RFC 6455 handshake on both sides and the frame codec. */
#include "unit.h"

#include "base/cleanup.h"
#include "base/hash.h"
#include "cri/websocket.h"

struct fixture {
	struct berth_error *err;
	struct ws_request req;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	if (!fx)
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	berth_error_free(fx->err);
	ws_request_clear(&fx->req);
	free(fx);
	return 0;
}

/* ---- handshake, server side ---- */

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* A valid request with extra header lines (each ending in CRLF) before the blank line. */
#define REQUEST(extra)                                                                             \
	"GET /exec/tok?cmd=sh HTTP/1.1\r\n"                                                        \
	"Host: berthd:10010\r\n" extra "\r\n"
#define UPGRADE_HEADERS                                                                            \
	"Upgrade: websocket\r\n"                                                                   \
	"Connection: Upgrade\r\n"                                                                  \
	"Sec-WebSocket-Version: 13\r\n"
#define KEY_HEADER "Sec-WebSocket-Key: " RFC_KEY "\r\n"

static int parse(struct fixture *fx, const char *head, const char *const *supported, int *status)
{
	return ws_request_parse(head, strlen(head), supported, &fx->req, status, &fx->err);
}

static void test_rfc6455_example(void **state)
{
	struct fixture *fx = *state;
	static const char head[] = "GET /chat HTTP/1.1\r\n"
				   "Host: server.example.com\r\n"
				   "Upgrade: websocket\r\n"
				   "Connection: Upgrade\r\n"
				   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
				   "Origin: http://example.com\r\n"
				   "Sec-WebSocket-Protocol: chat, superchat\r\n"
				   "Sec-WebSocket-Version: 13\r\n"
				   "\r\n";
	static const char *const supported[] = { "chat", NULL };
	assert_int_equal(ws_head_length(head, sizeof(head) - 1), sizeof(head) - 1);
	int status = 0;
	MUST_OK(fx, parse(fx, head, supported, &status));
	assert_int_equal(status, 101);
	assert_string_equal(fx->req.path, "/chat");
	assert_ptr_equal(fx->req.protocol, supported[0]);
	assert_string_equal(fx->req.accept, RFC_ACCEPT);

	_cleanup_free_ char *resp = ws_response_101(&fx->req);
	assert_string_equal(resp, "HTTP/1.1 101 Switching Protocols\r\n"
				  "Upgrade: websocket\r\n"
				  "Connection: Upgrade\r\n"
				  "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n"
				  "Sec-WebSocket-Protocol: chat\r\n"
				  "\r\n");
}

static void test_header_names_are_case_insensitive(void **state)
{
	struct fixture *fx = *state;
	MUST_OK(fx, parse(fx,
			  REQUEST("upgrade: WebSocket\r\n"
				  "CONNECTION: UPGRADE\r\n"
				  "sec-websocket-version: 13\r\n"
				  "SEC-WEBSOCKET-KEY:   " RFC_KEY " \t\r\n"),
			  NULL, NULL));
	assert_string_equal(fx->req.path, "/exec/tok?cmd=sh");
	assert_null(fx->req.protocol);
	assert_string_equal(fx->req.accept, RFC_ACCEPT);

	_cleanup_free_ char *resp = ws_response_101(&fx->req);
	assert_null(strstr(resp, "Sec-WebSocket-Protocol"));
}

static void test_connection_token_list(void **state)
{
	struct fixture *fx = *state;
	MUST_OK(fx, parse(fx,
			  REQUEST("Upgrade: websocket\r\n"
				  "Connection: keep-alive, Upgrade\r\n"
				  "Sec-WebSocket-Version: 13\r\n" KEY_HEADER),
			  NULL, NULL));
	ws_request_clear(&fx->req);
	/* the list may also be split over several fields */
	MUST_OK(fx, parse(fx,
			  REQUEST("Upgrade: websocket\r\n"
				  "Connection: keep-alive\r\n"
				  "Connection: ,upgrade,\r\n"
				  "Sec-WebSocket-Version: 13\r\n" KEY_HEADER),
			  NULL, NULL));
	ws_request_clear(&fx->req);
	/* a token that merely starts with "upgrade" is not it */
	int status = 0;
	assert_int_equal(parse(fx,
			       REQUEST("Upgrade: websocket\r\n"
				       "Connection: keep-alive, upgrades\r\n"
				       "Sec-WebSocket-Version: 13\r\n" KEY_HEADER),
			       NULL, &status),
			 -EINVAL);
	assert_int_equal(status, 400);
	assert_contains(fx->err->msg, "Connection");
}

#define K8S_OFFER                                                                                  \
	"Sec-WebSocket-Protocol: v1.channel.k8s.io\r\n"                                            \
	"Sec-WebSocket-Protocol: base64.channel.k8s.io, v4.channel.k8s.io\r\n"

static void test_protocol_by_server_preference(void **state)
{
	struct fixture *fx = *state;
	static const char *const v4_first[] = { "v4.channel.k8s.io", "v1.channel.k8s.io", NULL };
	MUST_OK(fx, parse(fx, REQUEST(UPGRADE_HEADERS KEY_HEADER K8S_OFFER), v4_first, NULL));
	assert_ptr_equal(fx->req.protocol, v4_first[0]);
	ws_request_clear(&fx->req);

	static const char *const other_first[] = { "v5.channel.k8s.io", "base64.channel.k8s.io",
						   "v1.channel.k8s.io", NULL };
	MUST_OK(fx, parse(fx, REQUEST(UPGRADE_HEADERS KEY_HEADER K8S_OFFER), other_first, NULL));
	assert_ptr_equal(fx->req.protocol, other_first[1]);
	ws_request_clear(&fx->req);

	/* names are compared exactly */
	static const char *const upper[] = { "V4.CHANNEL.K8S.IO", NULL };
	int status = 0;
	assert_int_equal(parse(fx, REQUEST(UPGRADE_HEADERS KEY_HEADER K8S_OFFER), upper, &status),
			 -EINVAL);
	assert_int_equal(status, 400);
	assert_contains(fx->err->msg, "Sec-WebSocket-Protocol offers none of the supported");
	assert_contains(fx->err->msg, "V4.CHANNEL.K8S.IO");
}

static void test_protocol_required_or_refused(void **state)
{
	struct fixture *fx = *state;
	static const char *const v4[] = { "v4.channel.k8s.io", NULL };
	static const char *const none[] = { NULL };
	int status = 0;

	/* the server needs one and the client offered none */
	assert_int_equal(parse(fx, REQUEST(UPGRADE_HEADERS KEY_HEADER), v4, &status), -EINVAL);
	assert_int_equal(status, 400);
	assert_contains(fx->err->msg,
			"Sec-WebSocket-Protocol is missing (one of v4.channel.k8s.io");
	fx->err = berth_error_free(fx->err);

	/* the client offered some and the server has none */
	status = 0;
	assert_int_equal(parse(fx, REQUEST(UPGRADE_HEADERS KEY_HEADER K8S_OFFER), none, &status),
			 -EINVAL);
	assert_int_equal(status, 400);
	assert_contains(fx->err->msg, "offers none of the supported (none)");
	fx->err = berth_error_free(fx->err);

	/* neither has any, and an empty field offers nothing */
	MUST_OK(fx, parse(fx, REQUEST(UPGRADE_HEADERS KEY_HEADER "Sec-WebSocket-Protocol: \r\n"),
			  none, NULL));
	assert_null(fx->req.protocol);
}

struct refusal {
	const char *what, *head;
	int status;
	const char *msg;
};

static const struct refusal refusals[] = {
	{ "no key", REQUEST(UPGRADE_HEADERS), 400, "Sec-WebSocket-Key is missing" },
	{ "short key", REQUEST(UPGRADE_HEADERS "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\n"),
	  400, "Sec-WebSocket-Key \"dGhlIHNhbXBsZSBub25jZQ\" is not base64 of 16 bytes" },
	{ "long key",
	  REQUEST(UPGRADE_HEADERS "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQAAAA==\r\n"), 400,
	  "is not base64 of 16 bytes" },
	{ "key not base64",
	  REQUEST(UPGRADE_HEADERS "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ!==\r\n"), 400,
	  "is not base64 of 16 bytes" },
	{ "two keys", REQUEST(UPGRADE_HEADERS KEY_HEADER KEY_HEADER), 400,
	  "Sec-WebSocket-Key is repeated" },
	{ "version 8",
	  REQUEST("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: "
		  "8\r\n" KEY_HEADER),
	  426, "websocket: Sec-WebSocket-Version 8 is not supported (13 is)" },
	{ "two versions", REQUEST(UPGRADE_HEADERS "Sec-WebSocket-Version: 13\r\n" KEY_HEADER), 426,
	  "Sec-WebSocket-Version is repeated" },
	{ "no version", REQUEST("Upgrade: websocket\r\nConnection: Upgrade\r\n" KEY_HEADER), 426,
	  "Sec-WebSocket-Version is missing (13 is required)" },
	{ "POST", "POST /exec/tok HTTP/1.1\r\nHost: h\r\n" UPGRADE_HEADERS KEY_HEADER "\r\n", 405,
	  "websocket: method POST is not allowed (GET is)" },
	{ "no Upgrade", REQUEST("Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" KEY_HEADER),
	  400, "Upgrade header is missing or does not name websocket" },
	{ "Upgrade h2c",
	  REQUEST(
	      "Upgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" KEY_HEADER),
	  400, "Upgrade header is missing or does not name websocket" },
	{ "no Connection",
	  REQUEST("Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" KEY_HEADER), 400,
	  "Connection header is missing or does not include upgrade" },
	{ "HTTP/1.0", "GET / HTTP/1.0\r\n" UPGRADE_HEADERS KEY_HEADER "\r\n", 400,
	  "protocol HTTP/1.0 is not supported (HTTP/1.1 is)" },
	{ "absolute URI", "GET http://h/ HTTP/1.1\r\n" UPGRADE_HEADERS KEY_HEADER "\r\n", 400,
	  "request target \"http://h/\" is not an absolute path" },
	{ "no target", "GET  HTTP/1.1\r\n" UPGRADE_HEADERS KEY_HEADER "\r\n", 400,
	  "request line \"GET  HTTP/1.1\" is malformed" },
	{ "folded line", REQUEST(UPGRADE_HEADERS KEY_HEADER "X-A: b\r\n c\r\n"), 400,
	  "header line \" c\" is malformed" },
	{ "no colon", REQUEST(UPGRADE_HEADERS KEY_HEADER "X-A b\r\n"), 400,
	  "header line \"X-A b\" is malformed" },
	{ "bare LF", REQUEST(UPGRADE_HEADERS KEY_HEADER "X-A: b\n"), 400,
	  "control character or no CRLF" },
	{ "escape char", REQUEST(UPGRADE_HEADERS KEY_HEADER "X-A: \x1b[2J\r\n"), 400,
	  "control character or no CRLF" },
	{ "no blank line", "GET / HTTP/1.1\r\n" UPGRADE_HEADERS KEY_HEADER, 400,
	  "does not end in a blank line" },
};

static void test_refusals(void **state)
{
	struct fixture *fx = *state;
	for (size_t i = 0; i < ARRAY_SIZE(refusals); i++) {
		const struct refusal *t = &refusals[i];
		int status = 0;
		int r = parse(fx, t->head, NULL, &status);
		if (r != -EINVAL || status != t->status || !fx->err)
			fail_msg("%s: returned %d, status %d", t->what, r, status);
		assert_contains(fx->err->msg, t->msg);
		assert_null(fx->req.path); /* ret is written only on success */
		fx->err = berth_error_free(fx->err);
		/* ret_status is optional */
		assert_int_equal(
		    ws_request_parse(t->head, strlen(t->head), NULL, &fx->req, NULL, NULL),
		    -EINVAL);
	}
}

static void test_head_length(void **state)
{
	(void)state;
	static const char head[] = REQUEST(UPGRADE_HEADERS KEY_HEADER);
	size_t n = sizeof(head) - 1;
	for (size_t cut = 0; cut < n; cut++)
		assert_int_equal(ws_head_length(head, cut), 0);
	assert_int_equal(ws_head_length(head, n), n);

	/* the first frame may follow in the same read */
	char more[sizeof(head) + 8];
	memcpy(more, head, n);
	memcpy(more + n, "\x81\x02hi", 4);
	assert_int_equal(ws_head_length(more, n + 4), n);

	/* a head must end within WS_MAX_HEAD bytes */
	char *big = malloc(WS_MAX_HEAD + 16);
	assert_non_null(big);
	memset(big, 'x', WS_MAX_HEAD + 16);
	assert_int_equal(ws_head_length(big, WS_MAX_HEAD - 1), 0);
	assert_int_equal(ws_head_length(big, WS_MAX_HEAD), -E2BIG);
	memcpy(big + WS_MAX_HEAD - 4, "\r\n\r\n", 4);
	assert_int_equal(ws_head_length(big, WS_MAX_HEAD + 16), WS_MAX_HEAD);
	memcpy(big + WS_MAX_HEAD - 4, "xx\r\n\r\n", 6);
	assert_int_equal(ws_head_length(big, WS_MAX_HEAD + 16), -E2BIG);
	free(big);
}

static void test_response_error(void **state)
{
	(void)state;
	_cleanup_free_ char *r426 = ws_response_error(426, "websocket: version 8");
	assert_string_equal(r426, "HTTP/1.1 426 Upgrade Required\r\n"
				  "Content-Type: text/plain\r\n"
				  "Content-Length: 21\r\n"
				  "Sec-WebSocket-Version: 13\r\n"
				  "Connection: close\r\n"
				  "\r\n"
				  "websocket: version 8\n");
	_cleanup_free_ char *r405 = ws_response_error(405, "GET only");
	assert_contains(r405, "HTTP/1.1 405 Method Not Allowed\r\n");
	assert_contains(r405, "Allow: GET\r\n");
	_cleanup_free_ char *r400 = ws_response_error(400, NULL);
	assert_contains(r400, "HTTP/1.1 400 Bad Request\r\n");
	assert_contains(r400, "Content-Length: 1\r\n");
	assert_int_equal(ws_head_length(r400, strlen(r400)), strlen(r400) - 1);
}

/* ---- handshake, client side ---- */

static void test_client_request_round_trip(void **state)
{
	struct fixture *fx = *state;
	static const char *const offered[] = { "v4.channel.k8s.io", "v5.channel.k8s.io", NULL };
	static const char *const supported[] = { "v5.channel.k8s.io", "v4.channel.k8s.io", NULL };
	char key[25], key2[25];
	_cleanup_free_ char *req = ws_client_request("berthd:10010", "/attach/tok", offered, key);
	_cleanup_free_ char *req2 = ws_client_request("h", "/", NULL, key2);
	assert_non_null(req);
	assert_non_null(req2);
	assert_int_equal(strlen(key), 24);
	uint8_t raw[18];
	assert_int_equal(base64_decode(key, 24, raw), 16);
	assert_string_not_equal(key, key2);
	assert_contains(req, "Sec-WebSocket-Protocol: v4.channel.k8s.io, v5.channel.k8s.io\r\n");
	assert_null(strstr(req2, "Sec-WebSocket-Protocol"));

	assert_int_equal(ws_head_length(req, strlen(req)), strlen(req));
	MUST_OK(fx, parse(fx, req, supported, NULL));
	assert_string_equal(fx->req.path, "/attach/tok");
	assert_ptr_equal(fx->req.protocol, supported[0]);

	_cleanup_free_ char *resp = ws_response_101(&fx->req);
	const char *chosen = NULL;
	MUST_OK(fx, ws_client_check_response(resp, strlen(resp), key, offered, NULL, 0, &chosen,
					     &fx->err));
	assert_ptr_equal(chosen, offered[1]);

	/* without protocols on either side */
	ws_request_clear(&fx->req);
	MUST_OK(fx, parse(fx, req2, NULL, NULL));
	assert_string_equal(fx->req.path, "/");
	_cleanup_free_ char *resp2 = ws_response_101(&fx->req);
	chosen = "unset";
	MUST_OK(fx, ws_client_check_response(resp2, strlen(resp2), key2, NULL, NULL, 0, &chosen,
					     &fx->err));
	assert_null(chosen);
}

/* A 101 response for RFC_KEY with the given protocol line (or "") and Upgrade/Connection. */
#define RESPONSE_101(proto)                                                                        \
	"HTTP/1.1 101 Switching Protocols\r\n"                                                     \
	"Upgrade: websocket\r\n"                                                                   \
	"Connection: Upgrade\r\n"                                                                  \
	"Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n" proto "\r\n"

static int check_response(struct fixture *fx, const char *head, const char *body,
			  const char **chosen)
{
	static const char *const offered[] = { "chat", "superchat", NULL };
	fx->err = berth_error_free(fx->err);
	return ws_client_check_response(head, strlen(head), RFC_KEY, offered, body,
					body ? strlen(body) : 0, chosen, &fx->err);
}

static void test_client_refusals(void **state)
{
	struct fixture *fx = *state;
	const char *chosen = NULL;
	MUST_OK(fx, check_response(fx, RESPONSE_101("Sec-WebSocket-Protocol: superchat\r\n"), NULL,
				   &chosen));
	assert_string_equal(chosen, "superchat");

	chosen = NULL;
	const char *wrong =
	    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n";
	assert_int_equal(check_response(fx, wrong, NULL, &chosen), -EPROTO);
	assert_contains(fx->err->msg,
			"Sec-WebSocket-Accept \"AAAAAAAAAAAAAAAAAAAAAAAAAAA=\" does not match");
	assert_null(chosen);

	assert_int_equal(check_response(fx, "HTTP/1.1 404 Not Found\r\nContent-Length: 30\r\n\r\n",
					"session tok was not found\nsecond line\n", &chosen),
			 -ENOENT);
	assert_string_equal(fx->err->msg, "websocket: server answered \"HTTP/1.1 404 Not Found\": "
					  "session tok was not found");

	assert_int_equal(check_response(fx, "HTTP/1.1 403 Forbidden\r\n\r\n", NULL, &chosen),
			 -EACCES);
	assert_string_equal(fx->err->msg, "websocket: server answered \"HTTP/1.1 403 Forbidden\"");
	assert_int_equal(check_response(fx, "HTTP/1.1 500 Oops\r\n\r\n", "", &chosen), -EPROTO);

	assert_int_equal(
	    check_response(fx, RESPONSE_101("Sec-WebSocket-Protocol: other\r\n"), NULL, &chosen),
	    -EPROTO);
	assert_contains(fx->err->msg, "Sec-WebSocket-Protocol other was not offered");
	assert_int_equal(check_response(fx,
					RESPONSE_101("Sec-WebSocket-Protocol: chat\r\n"
						     "Sec-WebSocket-Protocol: chat\r\n"),
					NULL, &chosen),
			 -EPROTO);

	assert_int_equal(
	    check_response(fx,
			   "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
			   "Sec-WebSocket-Accept: " RFC_ACCEPT "\r\n\r\n",
			   NULL, &chosen),
	    -EPROTO);
	assert_contains(fx->err->msg, "Upgrade header is missing");
	assert_int_equal(check_response(fx, "HTTP/1.1 1O1 Switching\r\n\r\n", NULL, &chosen),
			 -EPROTO);
	assert_contains(fx->err->msg, "status line \"HTTP/1.1 1O1 Switching\" is malformed");
	assert_int_equal(check_response(fx, "SSH-2.0-OpenSSH\r\n\r\n", NULL, &chosen), -EPROTO);
	assert_null(chosen);
}

/* ---- frames ---- */

static const uint8_t test_mask[4] = { 0x37, 0xfa, 0x21, 0x3d };

/* Writes a frame (header and payload, masked when mask is given) into out; returns its size. */
static size_t build_frame(uint8_t *out, bool fin, enum ws_opcode op, const uint8_t *payload,
			  size_t len, const uint8_t *mask)
{
	size_t hdr = ws_frame_header(out, fin, op, len, mask);
	if (len) {
		memcpy(out + hdr, payload, len);
		if (mask)
			ws_mask(out + hdr, len, mask, 0);
	}
	return hdr + len;
}

static void test_frame_lengths_both_ways(void **state)
{
	(void)state;
	static const struct {
		size_t len, hdr;
	} cases[] = { { 0, 2 },	    { 1, 2 },	   { 125, 2 },	 { 126, 4 },
		      { 65535, 4 }, { 65536, 10 }, { 70000, 10 } };
	uint8_t *payload = malloc(70000), *buf = malloc(70000 + WS_MAX_FRAME_HEADER);
	assert_non_null(payload);
	assert_non_null(buf);
	for (size_t i = 0; i < 70000; i++)
		payload[i] = (uint8_t)(i * 31 + 7);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		for (int masked = 0; masked <= 1; masked++) {
			const uint8_t *mask = masked ? test_mask : NULL;
			size_t n =
			    build_frame(buf, true, WS_OP_BINARY, payload, cases[i].len, mask);
			assert_int_equal(n, cases[i].hdr + (masked ? 4 : 0) + cases[i].len);
			if (masked && cases[i].len)
				assert_memory_not_equal(buf + n - cases[i].len, payload,
							cases[i].len);
			struct ws_frame f;
			assert_int_equal(ws_frame_parse(buf, n, masked, 70000, &f), n);
			assert_true(f.fin);
			assert_int_equal(f.opcode, WS_OP_BINARY);
			assert_int_equal(f.len, cases[i].len);
			assert_ptr_equal(f.payload, buf + n - cases[i].len);
			if (f.len)
				assert_memory_equal(f.payload, payload, f.len);
		}
	}
	free(payload);
	free(buf);
}

static void test_frame_partial_input(void **state)
{
	(void)state;
	uint8_t payload[300], frame[400], copy[400];
	memset(payload, 'p', sizeof(payload));
	static const size_t lens[] = { 5, 300 };
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		for (int masked = 0; masked <= 1; masked++) {
			size_t n = build_frame(frame, true, WS_OP_TEXT, payload, lens[i],
					       masked ? test_mask : NULL);
			for (size_t cut = 0; cut < n; cut++) {
				struct ws_frame f;
				memcpy(copy, frame, n);
				if (ws_frame_parse(copy, cut, masked, 1000, &f) != 0)
					fail_msg("len %zu masked %d: cut at %zu", lens[i], masked,
						 cut);
				/* nothing is unmasked until the whole frame is there */
				assert_memory_equal(copy, frame, n);
			}
		}
	}
	/* a 64-bit length: every cut in the header itself */
	uint8_t big[10] = { 0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0 };
	struct ws_frame f;
	for (size_t cut = 0; cut <= sizeof(big); cut++)
		assert_int_equal(ws_frame_parse(big, cut, false, 1 << 20, &f), 0);
}

static void test_frame_mask_rules(void **state)
{
	(void)state;
	uint8_t buf[32];
	struct ws_frame f;
	size_t n = build_frame(buf, true, WS_OP_TEXT, (const uint8_t *)"hi", 2, NULL);
	assert_int_equal(ws_frame_parse(buf, n, true, 100, &f), -EPROTO); /* server: unmasked */
	n = build_frame(buf, true, WS_OP_TEXT, (const uint8_t *)"hi", 2, test_mask);
	assert_int_equal(ws_frame_parse(buf, n, false, 100, &f), -EPROTO); /* client: masked */
	assert_int_equal(ws_frame_parse(buf, n, true, 100, &f), n);
	assert_memory_equal(f.payload, "hi", 2);
}

static void test_frame_protocol_errors(void **state)
{
	(void)state;
	struct ws_frame f;
	uint8_t buf[200] = { 0 };

	/* a fragmented control frame, and one longer than 125 bytes */
	ws_frame_header(buf, false, WS_OP_PING, 0, NULL);
	assert_int_equal(ws_frame_parse(buf, 2, false, 1000, &f), -EPROTO);
	ws_frame_header(buf, true, WS_OP_PING, 126, NULL);
	assert_int_equal(ws_frame_parse(buf, 2, false, 1000, &f), -EPROTO);
	ws_frame_header(buf, true, WS_OP_CLOSE, 125, NULL);
	assert_int_equal(ws_frame_parse(buf, 127, false, 1000, &f), 127);

	/* reserved bits and opcodes */
	for (uint8_t rsv = 0x10; rsv <= 0x40; rsv <<= 1) {
		uint8_t b[2] = { (uint8_t)(0x81 | rsv), 0 };
		assert_int_equal(ws_frame_parse(b, 2, false, 1000, &f), -EPROTO);
	}
	static const uint8_t bad_ops[] = { 3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf };
	for (size_t i = 0; i < ARRAY_SIZE(bad_ops); i++) {
		uint8_t b[2] = { (uint8_t)(0x80 | bad_ops[i]), 0 };
		assert_int_equal(ws_frame_parse(b, 2, false, 1000, &f), -EPROTO);
	}

	/* a 64-bit length with the top bit set */
	uint8_t top[10] = { 0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1 };
	assert_int_equal(ws_frame_parse(top, sizeof(top), false, SIZE_MAX, &f), -EPROTO);

	/* too long for the caller, known as soon as the length is */
	ws_frame_header(buf, true, WS_OP_BINARY, 100, NULL);
	assert_int_equal(ws_frame_parse(buf, 2, false, 99, &f), -EMSGSIZE);
	assert_int_equal(ws_frame_parse(buf, 2, false, 100, &f), 0);
	uint8_t huge[10] = { 0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	assert_int_equal(ws_frame_parse(huge, sizeof(huge), false, 1 << 20, &f), -EMSGSIZE);
}

static void test_frame_sequence(void **state)
{
	(void)state;
	uint8_t buf[64];
	size_t n = build_frame(buf, false, WS_OP_TEXT, (const uint8_t *)"hel", 3, test_mask);
	n += build_frame(buf + n, true, WS_OP_PING, NULL, 0, test_mask);
	n += build_frame(buf + n, true, WS_OP_CONTINUATION, (const uint8_t *)"lo", 2, test_mask);
	/* a non-minimal length encoding is accepted */
	static const uint8_t long_form[] = { 0x82, 0x80 | 126, 0, 1, 0, 0, 0, 0, 'x' };
	memcpy(buf + n, long_form, sizeof(long_form));
	n += sizeof(long_form);

	static const struct {
		bool fin;
		enum ws_opcode op;
		const char *payload;
	} want[] = { { false, WS_OP_TEXT, "hel" },
		     { true, WS_OP_PING, "" },
		     { true, WS_OP_CONTINUATION, "lo" },
		     { true, WS_OP_BINARY, "x" } };
	size_t off = 0;
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		struct ws_frame f;
		ssize_t r = ws_frame_parse(buf + off, n - off, true, 100, &f);
		assert_true(r > 0);
		off += (size_t)r;
		assert_int_equal(f.fin, want[i].fin);
		assert_int_equal(f.opcode, want[i].op);
		assert_int_equal(f.len, strlen(want[i].payload));
		if (f.len)
			assert_memory_equal(f.payload, want[i].payload, f.len);
	}
	assert_int_equal(off, n);
}

static void test_mask_in_pieces(void **state)
{
	(void)state;
	uint8_t data[257], whole[257], pieces[257];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i ^ 0x5a);
	memcpy(whole, data, sizeof(data));
	ws_mask(whole, sizeof(whole), test_mask, 0);
	assert_int_equal(whole[5], data[5] ^ test_mask[1]);

	for (size_t step = 1; step <= 9; step++) {
		memcpy(pieces, data, sizeof(data));
		for (size_t off = 0; off < sizeof(pieces); off += step) {
			size_t n = sizeof(pieces) - off < step ? sizeof(pieces) - off : step;
			ws_mask(pieces + off, n, test_mask, off);
		}
		assert_memory_equal(pieces, whole, sizeof(whole));
	}
	/* masking twice gives the data back; a length of zero touches nothing */
	ws_mask(whole, sizeof(whole), test_mask, 0);
	assert_memory_equal(whole, data, sizeof(data));
	ws_mask(NULL, 0, test_mask, 3);
}

/* ---- close frames ---- */

static void test_close_payload(void **state)
{
	(void)state;
	uint8_t out[125];
	assert_int_equal(ws_close_payload(out, WS_CLOSE_NORMAL, "bye"), 5);
	assert_memory_equal(out,
			    "\x03\xe8"
			    "bye",
			    5);
	assert_int_equal(ws_close_payload(out, WS_CLOSE_GOING_AWAY, NULL), 2);
	assert_memory_equal(out, "\x03\xe9", 2);

	char reason[200];
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	assert_int_equal(ws_close_payload(out, WS_CLOSE_INTERNAL, reason), 125);

	/* "a" then 50 euro signs (3 bytes each): the cut at 123 would split the 41st */
	strcpy(reason, "a");
	for (int i = 0; i < 50; i++)
		strcat(reason, "\xe2\x82\xac");
	assert_int_equal(ws_close_payload(out, WS_CLOSE_INTERNAL, reason), 2 + 121);
	assert_memory_equal(out + 2, reason, 121);
	/* two-byte characters: the cut moves back by one */
	reason[0] = '\0';
	for (int i = 0; i < 70; i++)
		strcat(reason, "\xc3\xa9");
	assert_int_equal(ws_close_payload(out, WS_CLOSE_INTERNAL, reason), 2 + 122);
}

static void test_close_parse(void **state)
{
	(void)state;
	uint16_t code = 0;
	const char *reason = NULL;
	size_t reason_len = 99;
	assert_int_equal(ws_close_parse(NULL, 0, &code, &reason, &reason_len), 0);
	assert_int_equal(code, 1005);
	assert_int_equal(reason_len, 0);
	assert_non_null(reason);

	assert_int_equal(ws_close_parse((const uint8_t *)"\x03", 1, &code, &reason, &reason_len),
			 -EPROTO);

	uint8_t out[125];
	size_t n = ws_close_payload(out, WS_CLOSE_TOO_BIG, "message too big");
	assert_int_equal(ws_close_parse(out, n, &code, &reason, &reason_len), 0);
	assert_int_equal(code, WS_CLOSE_TOO_BIG);
	assert_int_equal(reason_len, strlen("message too big"));
	assert_memory_equal(reason, "message too big", reason_len);

	static const uint16_t valid[] = { 1000, 1003, 1007, 1011, 1014, 3000, 4999 };
	static const uint16_t invalid[] = {
		0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535
	};
	for (size_t i = 0; i < ARRAY_SIZE(valid); i++) {
		n = ws_close_payload(out, valid[i], "");
		assert_int_equal(ws_close_parse(out, n, &code, &reason, &reason_len), 0);
		assert_int_equal(code, valid[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(invalid); i++) {
		n = ws_close_payload(out, invalid[i], "x");
		assert_int_equal(ws_close_parse(out, n, &code, &reason, &reason_len), -EPROTO);
	}
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_rfc6455_example),
		T(test_header_names_are_case_insensitive),
		T(test_connection_token_list),
		T(test_protocol_by_server_preference),
		T(test_protocol_required_or_refused),
		T(test_refusals),
		T(test_head_length),
		T(test_response_error),
		T(test_client_request_round_trip),
		T(test_client_refusals),
		T(test_frame_lengths_both_ways),
		T(test_frame_partial_input),
		T(test_frame_mask_rules),
		T(test_frame_protocol_errors),
		T(test_frame_sequence),
		T(test_mask_in_pieces),
		T(test_close_payload),
		T(test_close_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
