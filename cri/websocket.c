/* RFC 6455: the opening handshake (both sides) and the frame codec. Heads are read as spans of
 * the caller's bytes (never NUL-terminated, never copied) and checked strictly: CRLF line ends,
 * no control characters, no obsolete line folding, so that whatever is quoted in an error
 * message is one printable line. */
#include "cri/websocket.h"
#include "base/cleanup.h"
#include "base/hash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_BYTES 16
/* How much of a peer's text an error message quotes. */
#define QUOTE_MAX 100

/* ---- spans and tokens ---- */

struct span {
	const char *p;
	size_t n;
};

#define SPAN_FMT(s) (int)((s).n < QUOTE_MAX ? (s).n : QUOTE_MAX), (s).p

static bool span_eq_ci(struct span s, const char *lit)
{
	return s.n == strlen(lit) && strncasecmp(s.p, lit, s.n) == 0;
}

static bool span_eq(struct span s, const char *str)
{
	return s.n == strlen(str) && memcmp(s.p, str, s.n) == 0;
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static struct span span_trim(struct span s)
{
	while (s.n > 0 && is_ows(s.p[0])) {
		s.p++;
		s.n--;
	}
	while (s.n > 0 && is_ows(s.p[s.n - 1]))
		s.n--;
	return s;
}

/* Pops the next non-empty element of a comma-separated list (RFC 9110 5.6.1) into *tok. */
static bool list_next(struct span *list, struct span *tok)
{
	while (list->n > 0) {
		const char *comma = memchr(list->p, ',', list->n);
		size_t n = comma ? (size_t)(comma - list->p) : list->n;
		*tok = span_trim((struct span){ list->p, n });
		list->p += comma ? n + 1 : n;
		list->n -= comma ? n + 1 : n;
		if (tok->n > 0)
			return true;
	}
	return false;
}

/* Whether the list holds str: header tokens (Upgrade, Connection) compare ignoring case,
 * subprotocol names exactly. */
static bool list_has(struct span list, const char *str, bool ignore_case)
{
	struct span tok;
	while (list_next(&list, &tok))
		if (ignore_case ? span_eq_ci(tok, str) : span_eq(tok, str))
			return true;
	return false;
}

/* ---- heads ---- */

ssize_t ws_head_length(const char *buf, size_t len)
{
	size_t scan = len < WS_MAX_HEAD ? len : WS_MAX_HEAD;
	const char *end = scan >= 4 ? memmem(buf, scan, "\r\n\r\n", 4) : NULL;
	if (end)
		return end - buf + 4;
	return len >= WS_MAX_HEAD ? -E2BIG : 0;
}

/* A head being read line by line: cur..end is what is left. */
struct head {
	const char *cur, *end;
};

/* The next line without its CRLF: 1, or 0 at the end of the bytes, or -1 for a bare CR or LF
 * or a control character (NUL included) inside the line. */
static int head_line(struct head *h, struct span *ret)
{
	if (h->cur >= h->end)
		return 0;
	const char *lf = memchr(h->cur, '\n', (size_t)(h->end - h->cur));
	if (!lf || lf == h->cur || lf[-1] != '\r')
		return -1;
	struct span line = { h->cur, (size_t)(lf - 1 - h->cur) };
	for (size_t i = 0; i < line.n; i++) {
		unsigned char c = (unsigned char)line.p[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -1;
	}
	h->cur = lf + 1;
	*ret = line;
	return 1;
}

static bool is_tchar(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The next header field: 1 with name and (trimmed) value, 0 at the blank line that ends the
 * head, or -code with a message (the server refuses a request with EINVAL, the client a
 * response with EPROTO). */
static int head_field(struct head *h, struct span *name, struct span *value, int code,
		      struct berth_error **err)
{
	struct span line;
	int r = head_line(h, &line);
	if (r == 0)
		return berth_error_set(err, code,
				       "websocket: the head does not end in a blank line");
	if (r < 0)
		return berth_error_set(
		    err, code, "websocket: a header line has a control character or no CRLF");
	if (line.n == 0)
		return 0;
	const char *colon = memchr(line.p, ':', line.n);
	size_t n = colon ? (size_t)(colon - line.p) : 0;
	for (size_t i = 0; i < n; i++)
		if (!is_tchar(line.p[i]))
			n = 0;
	if (n == 0) /* also refuses obsolete folding, whose line starts with white space */
		return berth_error_set(err, code, "websocket: header line \"%.*s\" is malformed",
				       SPAN_FMT(line));
	*name = (struct span){ line.p, n };
	*value = span_trim((struct span){ colon + 1, line.n - n - 1 });
	return 1;
}

/* The headers the handshake looks at, from either side. Lists (Upgrade, Connection,
 * Sec-WebSocket-Protocol) may come in several fields; the others must come once. */
struct ws_fields {
	bool upgrade_websocket, connection_upgrade, protocol_seen;
	struct span version, key, accept, protocol;
	int n_version, n_key, n_accept, n_protocol;
};

static void fields_take(struct ws_fields *f, struct span name, struct span value)
{
	if (span_eq_ci(name, "Upgrade")) {
		f->upgrade_websocket |= list_has(value, "websocket", true);
	} else if (span_eq_ci(name, "Connection")) {
		f->connection_upgrade |= list_has(value, "upgrade", true);
	} else if (span_eq_ci(name, "Sec-WebSocket-Version")) {
		f->version = value;
		f->n_version++;
	} else if (span_eq_ci(name, "Sec-WebSocket-Key")) {
		f->key = value;
		f->n_key++;
	} else if (span_eq_ci(name, "Sec-WebSocket-Accept")) {
		f->accept = value;
		f->n_accept++;
	} else if (span_eq_ci(name, "Sec-WebSocket-Protocol")) {
		struct span tok, list = value;
		f->protocol_seen |= list_next(&list, &tok);
		f->protocol = value;
		f->n_protocol++;
	}
}

/* Reads every header field after the start line into f. */
static int fields_read(struct head *h, struct ws_fields *f, int code, struct berth_error **err)
{
	*f = (struct ws_fields){ 0 };
	struct span name, value;
	int r;
	while ((r = head_field(h, &name, &value, code, err)) > 0)
		fields_take(f, name, value);
	return r;
}

/* Whether any Sec-WebSocket-Protocol field in the headers h offers proto. */
static bool head_offers_protocol(struct head h, const char *proto)
{
	struct span name, value;
	while (head_field(&h, &name, &value, EINVAL, NULL) > 0)
		if (span_eq_ci(name, "Sec-WebSocket-Protocol") && list_has(value, proto, false))
			return true;
	return false;
}

static int fields_check_upgrade(const struct ws_fields *f, int code, struct berth_error **err)
{
	if (!f->upgrade_websocket)
		return berth_error_set(
		    err, code, "websocket: Upgrade header is missing or does not name websocket");
	if (!f->connection_upgrade)
		return berth_error_set(
		    err, code,
		    "websocket: Connection header is missing or does not include upgrade");
	return 0;
}

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)). */
static void accept_for_key(struct span key, char out[29])
{
	char buf[64 + sizeof(WS_GUID)];
	size_t n = key.n < 64 ? key.n : 64;
	if (n > 0)
		memcpy(buf, key.p, n);
	memcpy(buf + n, WS_GUID, sizeof(WS_GUID) - 1);
	uint8_t digest[SHA1_DIGEST_LEN];
	sha1(buf, n + sizeof(WS_GUID) - 1, digest);
	base64_encode(digest, sizeof(digest), out);
}

/* ---- server side ---- */

/* "GET /path HTTP/1.1": sets *ret_path (malloc'd) and *status on error. */
static int request_line_parse(struct head *h, char **ret_path, int *status,
			      struct berth_error **err)
{
	struct span line;
	*status = 400;
	if (head_line(h, &line) <= 0)
		return berth_error_set(err, EINVAL, "websocket: request line is malformed");
	const char *sp1 = memchr(line.p, ' ', line.n);
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', line.n - (size_t)(sp1 + 1 - line.p)) : NULL;
	if (!sp2 || sp1 == line.p || sp2 == sp1 + 1)
		return berth_error_set(err, EINVAL, "websocket: request line \"%.*s\" is malformed",
				       SPAN_FMT(line));
	struct span method = { line.p, (size_t)(sp1 - line.p) };
	struct span target = { sp1 + 1, (size_t)(sp2 - sp1 - 1) };
	struct span version = { sp2 + 1, line.n - (size_t)(sp2 + 1 - line.p) };
	if (!span_eq(method, "GET")) {
		*status = 405;
		return berth_error_set(err, EINVAL,
				       "websocket: method %.*s is not allowed (GET is)",
				       SPAN_FMT(method));
	}
	if (!span_eq(version, "HTTP/1.1"))
		return berth_error_set(err, EINVAL,
				       "websocket: protocol %.*s is not supported (HTTP/1.1 is)",
				       SPAN_FMT(version));
	if (target.p[0] != '/' || memchr(target.p, '\t', target.n))
		return berth_error_set(err, EINVAL,
				       "websocket: request target \"%.*s\" is not an absolute path",
				       SPAN_FMT(target));
	char *path = strndup(target.p, target.n);
	if (!path)
		return berth_error_set(err, ENOMEM, "websocket: out of memory");
	*ret_path = path;
	return 0;
}

static int request_check_version_and_key(const struct ws_fields *f, int *status,
					 struct berth_error **err)
{
	*status = 426;
	if (f->n_version == 0)
		return berth_error_set(
		    err, EINVAL, "websocket: Sec-WebSocket-Version is missing (13 is required)");
	if (f->n_version > 1)
		return berth_error_set(err, EINVAL, "websocket: Sec-WebSocket-Version is repeated");
	if (!span_eq(f->version, "13"))
		return berth_error_set(
		    err, EINVAL, "websocket: Sec-WebSocket-Version %.*s is not supported (13 is)",
		    SPAN_FMT(f->version));
	*status = 400;
	if (f->n_key == 0)
		return berth_error_set(err, EINVAL, "websocket: Sec-WebSocket-Key is missing");
	if (f->n_key > 1)
		return berth_error_set(err, EINVAL, "websocket: Sec-WebSocket-Key is repeated");
	uint8_t raw[WS_KEY_BYTES + 3];
	if (f->key.n != base64_encoded_len(WS_KEY_BYTES) ||
	    base64_decode(f->key.p, f->key.n, raw) != WS_KEY_BYTES)
		return berth_error_set(
		    err, EINVAL, "websocket: Sec-WebSocket-Key \"%.*s\" is not base64 of 16 bytes",
		    SPAN_FMT(f->key));
	return 0;
}

/* Writes "a, b, c" (the NULL-terminated list) to f. */
static void list_write(FILE *f, const char *const *items)
{
	for (const char *const *p = items; p && *p; p++)
		fprintf(f, "%s%s", p == items ? "" : ", ", *p);
}

/* The first of the server's protocols (in its order of preference) that the client offered;
 * -EINVAL when there is none and there should be one. */
static int request_choose_protocol(struct head headers, const struct ws_fields *f,
				   const char *const *supported, const char **ret,
				   struct berth_error **err)
{
	*ret = NULL;
	for (const char *const *s = supported; s && *s; s++)
		if (head_offers_protocol(headers, *s)) {
			*ret = *s;
			return 0;
		}
	bool server_has_some = supported && *supported;
	if (!f->protocol_seen && !server_has_some)
		return 0;
	_cleanup_free_ char *list = NULL;
	size_t size = 0;
	FILE *m = open_memstream(&list, &size);
	if (!m)
		return berth_error_set(err, ENOMEM, "websocket: out of memory");
	list_write(m, supported);
	if (fclose(m) != 0)
		return berth_error_set(err, ENOMEM, "websocket: out of memory");
	if (!f->protocol_seen)
		return berth_error_set(
		    err, EINVAL,
		    "websocket: Sec-WebSocket-Protocol is missing (one of %s is required)", list);
	return berth_error_set(
	    err, EINVAL, "websocket: Sec-WebSocket-Protocol offers none of the supported (%s)",
	    server_has_some ? list : "none");
}

int ws_request_parse(const char *head, size_t len, const char *const *supported,
		     struct ws_request *ret, int *ret_status, struct berth_error **err)
{
	int status_local, *status = ret_status ? ret_status : &status_local;
	struct head h = { head, head + len };
	_cleanup_free_ char *path = NULL;
	int r = request_line_parse(&h, &path, status, err);
	if (r < 0)
		return r;

	struct head headers = h;
	struct ws_fields f;
	*status = 400;
	if ((r = fields_read(&h, &f, EINVAL, err)) < 0 ||
	    (r = fields_check_upgrade(&f, EINVAL, err)) < 0 ||
	    (r = request_check_version_and_key(&f, status, err)) < 0)
		return r;
	const char *protocol;
	*status = 400;
	if ((r = request_choose_protocol(headers, &f, supported, &protocol, err)) < 0)
		return r;

	*status = 101;
	*ret = (struct ws_request){ .path = TAKE_PTR(path), .protocol = protocol };
	accept_for_key(f.key, ret->accept);
	return 0;
}

void ws_request_clear(struct ws_request *r)
{
	if (!r)
		return;
	free(r->path);
	*r = (struct ws_request){ 0 };
}

char *ws_response_101(const struct ws_request *r)
{
	char *s = NULL;
	int n = asprintf(&s,
			 "HTTP/1.1 101 Switching Protocols\r\n"
			 "Upgrade: websocket\r\n"
			 "Connection: Upgrade\r\n"
			 "Sec-WebSocket-Accept: %s\r\n"
			 "%s%s%s"
			 "\r\n",
			 r->accept, r->protocol ? "Sec-WebSocket-Protocol: " : "",
			 r->protocol ? r->protocol : "", r->protocol ? "\r\n" : "");
	return n < 0 ? NULL : s;
}

static const char *status_reason(int status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 426:
		return "Upgrade Required";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return status >= 500 ? "Server Error" : "Client Error";
	}
}

char *ws_response_error(int status, const char *body)
{
	if (!body)
		body = "";
	/* RFC 9110 15.5.6 and RFC 6455 4.4: say what would have been accepted */
	const char *extra = status == 405   ? "Allow: GET\r\n"
			    : status == 426 ? "Sec-WebSocket-Version: 13\r\n"
					    : "";
	char *s = NULL;
	int n = asprintf(&s,
			 "HTTP/1.1 %d %s\r\n"
			 "Content-Type: text/plain\r\n"
			 "Content-Length: %zu\r\n"
			 "%s"
			 "Connection: close\r\n"
			 "\r\n"
			 "%s\n",
			 status, status_reason(status), strlen(body) + 1, extra, body);
	return n < 0 ? NULL : s;
}

/* ---- client side ---- */

static int random_key(char key[25])
{
	uint8_t raw[WS_KEY_BYTES];
	size_t got = 0;
	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			got += (size_t)n;
	}
	base64_encode(raw, sizeof(raw), key);
	return 0;
}

char *ws_client_request(const char *host, const char *path, const char *const *protocols,
			char key[25])
{
	if (random_key(key) < 0)
		return NULL;
	char *s = NULL;
	size_t size = 0;
	FILE *m = open_memstream(&s, &size);
	if (!m)
		return NULL;
	fprintf(m,
		"GET %s HTTP/1.1\r\n"
		"Host: %s\r\n"
		"Upgrade: websocket\r\n"
		"Connection: Upgrade\r\n"
		"Sec-WebSocket-Key: %s\r\n"
		"Sec-WebSocket-Version: 13\r\n",
		path, host, key);
	if (protocols && *protocols) {
		fputs("Sec-WebSocket-Protocol: ", m);
		list_write(m, protocols);
		fputs("\r\n", m);
	}
	fputs("\r\n", m);
	if (fclose(m) != 0) {
		free(s);
		return NULL;
	}
	return s;
}

/* The body's first line, up to the first control character, for an error message. */
static struct span body_first_line(const char *body, size_t len)
{
	size_t n = 0;
	while (body && n < len && n < QUOTE_MAX && (unsigned char)body[n] >= 0x20 &&
	       body[n] != 0x7f)
		n++;
	return (struct span){ body, n };
}

/* What a refusal means to the caller: a missing object, a permission, or a protocol failure. */
static int status_errno(int status)
{
	if (status == 404)
		return ENOENT;
	if (status == 401 || status == 403)
		return EACCES;
	return EPROTO;
}

/* "HTTP/1.1 101 ...": the status code, or -EPROTO with a message quoting line (and body) for
 * any other status. */
static int status_line_check(struct span line, const char *body, size_t body_len,
			     struct berth_error **err)
{
	int status = 0;
	if (line.n >= 12 && memcmp(line.p, "HTTP/1.1 ", 9) == 0 &&
	    (line.n == 12 || line.p[12] == ' '))
		for (size_t i = 9; i < 12 && status >= 0; i++)
			status = line.p[i] >= '0' && line.p[i] <= '9'
				     ? status * 10 + line.p[i] - '0'
				     : -1;
	if (status < 100)
		return berth_error_set(err, EPROTO, "websocket: status line \"%.*s\" is malformed",
				       SPAN_FMT(line));
	if (status == 101)
		return 0;
	struct span first = body_first_line(body, body_len);
	return berth_error_set(err, status_errno(status),
			       "websocket: server answered \"%.*s\"%s%.*s", SPAN_FMT(line),
			       first.n ? ": " : "", SPAN_FMT(first));
}

/* The server's Sec-WebSocket-Protocol: absent, or exactly one of those offered. */
static int response_check_protocol(const struct ws_fields *f, const char *const *protocols,
				   const char **ret, struct berth_error **err)
{
	*ret = NULL;
	if (f->n_protocol == 0)
		return 0;
	for (const char *const *p = protocols; f->n_protocol == 1 && p && *p; p++)
		if (span_eq(f->protocol, *p)) {
			*ret = *p;
			return 0;
		}
	return berth_error_set(err, EPROTO,
			       "websocket: Sec-WebSocket-Protocol %.*s was not offered",
			       SPAN_FMT(f->protocol));
}

int ws_client_check_response(const char *head, size_t len, const char *key,
			     const char *const *protocols, const char *body, size_t body_len,
			     const char **ret_protocol, struct berth_error **err)
{
	struct head h = { head, head + len };
	struct span line;
	if (head_line(&h, &line) <= 0)
		return berth_error_set(err, EPROTO, "websocket: status line is malformed");
	int r = status_line_check(line, body, body_len, err);
	if (r < 0)
		return r;

	struct ws_fields f;
	if ((r = fields_read(&h, &f, EPROTO, err)) < 0 ||
	    (r = fields_check_upgrade(&f, EPROTO, err)) < 0)
		return r;
	char want[29];
	accept_for_key((struct span){ key, strlen(key) }, want);
	if (f.n_accept != 1 || !span_eq(f.accept, want))
		return berth_error_set(
		    err, EPROTO, "websocket: Sec-WebSocket-Accept \"%.*s\" does not match the key",
		    SPAN_FMT(f.accept));
	const char *protocol;
	if ((r = response_check_protocol(&f, protocols, &protocol, err)) < 0)
		return r;
	if (ret_protocol)
		*ret_protocol = protocol;
	return 0;
}

/* ---- frames ---- */

static bool opcode_known(unsigned op)
{
	return op <= WS_OP_BINARY || (op >= WS_OP_CLOSE && op <= WS_OP_PONG);
}

/* The checks the first two bytes allow, before the rest of the header is there. */
static int frame_check_start(uint8_t b0, uint8_t b1, bool must_mask)
{
	unsigned op = b0 & 0x0f;
	if ((b0 & 0x70) || !opcode_known(op))
		return -EPROTO; /* no extension was negotiated that would define them */
	if ((op & 0x08) && (!(b0 & 0x80) || (b1 & 0x7f) > 125))
		return -EPROTO; /* control frames: unfragmented, payload <= 125 */
	if (!!(b1 & 0x80) != must_mask)
		return -EPROTO;
	return 0;
}

ssize_t ws_frame_parse(uint8_t *buf, size_t len, bool must_mask, size_t max_payload,
		       struct ws_frame *ret)
{
	if (len < 2)
		return 0;
	int r = frame_check_start(buf[0], buf[1], must_mask);
	if (r < 0)
		return r;
	size_t ext = (buf[1] & 0x7f) == 126 ? 2 : (buf[1] & 0x7f) == 127 ? 8 : 0;
	size_t hdr = 2 + ext + (must_mask ? 4 : 0);
	if (len < 2 + ext)
		return 0;
	uint64_t plen = buf[1] & 0x7f;
	if (ext > 0) {
		plen = 0;
		for (size_t i = 0; i < ext; i++)
			plen = plen << 8 | buf[2 + i];
	}
	if (plen >> 63)
		return -EPROTO;
	if (plen > max_payload)
		return -EMSGSIZE;
	if (len < hdr || len - hdr < plen)
		return 0;

	uint8_t *payload = buf + hdr;
	if (must_mask)
		ws_mask(payload, (size_t)plen, buf + 2 + ext, 0);
	*ret = (struct ws_frame){
		.fin = buf[0] & 0x80,
		.opcode = (enum ws_opcode)(buf[0] & 0x0f),
		.payload = payload,
		.len = (size_t)plen,
	};
	return (ssize_t)(hdr + plen);
}

size_t ws_frame_header(uint8_t *out, bool fin, enum ws_opcode opcode, uint64_t len,
		       const uint8_t mask[4])
{
	size_t n = 2;
	out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
	out[1] = mask ? 0x80 : 0;
	if (len <= 125) {
		out[1] |= (uint8_t)len;
	} else if (len <= 0xffff) {
		out[1] |= 126;
		out[n++] = (uint8_t)(len >> 8);
		out[n++] = (uint8_t)len;
	} else {
		out[1] |= 127;
		for (int shift = 56; shift >= 0; shift -= 8)
			out[n++] = (uint8_t)(len >> shift);
	}
	if (mask) {
		memcpy(out + n, mask, 4);
		n += 4;
	}
	return n;
}

void ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset)
{
	/* rotate the mask so that data[0] meets mask[offset % 4]: the loop then runs in step */
	uint8_t m[4];
	for (unsigned i = 0; i < 4; i++)
		m[i] = mask[(offset + i) & 3];
	for (size_t i = 0; i < len; i++)
		data[i] ^= m[i & 3];
}

/* ---- close frames ---- */

size_t ws_close_payload(uint8_t out[125], uint16_t code, const char *reason)
{
	out[0] = (uint8_t)(code >> 8);
	out[1] = (uint8_t)code;
	size_t n = reason ? strlen(reason) : 0;
	if (n > 123) {
		/* back up from the cut to the lead byte of the character it would split */
		n = 123;
		while (n > 0 && ((unsigned char)reason[n] & 0xc0) == 0x80)
			n--;
	}
	if (n > 0)
		memcpy(out + 2, reason, n);
	return 2 + n;
}

/* RFC 6455 7.4: the codes a peer may send (1004-1006 and 1015 are reserved for local use;
 * 1012-1014 were registered with IANA since). */
static bool close_code_valid(uint16_t code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
	       (code >= 3000 && code <= 4999);
}

int ws_close_parse(const uint8_t *payload, size_t len, uint16_t *ret_code, const char **ret_reason,
		   size_t *ret_reason_len)
{
	if (len == 1)
		return -EPROTO;
	uint16_t code = 1005; /* "no status received" */
	if (len >= 2) {
		code = (uint16_t)(payload[0] << 8 | payload[1]);
		if (!close_code_valid(code))
			return -EPROTO;
	}
	*ret_code = code;
	*ret_reason = len > 2 ? (const char *)payload + 2 : "";
	*ret_reason_len = len > 2 ? len - 2 : 0;
	return 0;
}
