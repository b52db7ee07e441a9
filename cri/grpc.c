/* gRPC over HTTP/2 with nghttp2 (see cri/grpc.h). One struct grpc_stream per HTTP/2 stream,
 * that is per call: it collects the request's headers and body, is dispatched once the client
 * ends its side (to the worker pool for unary methods, to the service's stream_open for
 * server-streaming ones) and queues the framed response messages that the stream's data source
 * hands to nghttp2, followed by the trailers.
 *
 * Lifetimes: a stream is referenced by the HTTP/2 stream (until nghttp2 closes it or the
 * connection goes), by a worker running its handler, and by its deadline timer (until the timer
 * handle is closed); it holds a reference on its connection. The connection is referenced by its
 * owner until grpc_conn_close, which deletes the nghttp2 session at once: workers that finish
 * later find their stream detached and drop the answer. Everything runs on the loop thread except
 * the handler itself (work_cb), which only touches the stream's request and result fields. */
#include "cri/grpc.h"
#include "base/cleanup.h"
#include "base/log.h"
#include "cri/errcode.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONCURRENT_STREAMS 1000
#define STREAM_WINDOW (1u << 20)
#define CONN_WINDOW (16u << 20)
#define PREFIX_LEN 5
/* Request bytes one connection may hold in partly received calls: past it, the call whose data
 * arrives is refused (ResourceExhausted) rather than buffered. */
#define CONN_BODY_MAX (64u << 20)
/* Response bytes a stream may have queued that the client has not taken (HTTP/2 flow control
 * holds them here): past it grpc_stream_send refuses with -ENOBUFS. */
#define STREAM_QUEUE_MAX (8u << 20)
/* The connection's output buffer is kept between writes up to this size. */
#define WBUF_KEEP (256u << 10)

/* A framed message (prefix included) waiting for the stream's data source. */
struct out_msg {
	struct out_msg *next;
	size_t len, off;
	uint8_t data[];
};

struct grpc_stream {
	struct grpc_conn *c;
	int32_t id;
	unsigned refs;
	struct grpc_stream *prev, *next; /* c->streams, while attached */

	/* the request, as it arrives */
	char *path;
	const struct grpc_method *method;
	uint8_t *body;
	size_t body_len, body_cap;
	int64_t timeout_ms; /* -1: none */
	bool bad_method, bad_type, bad_encoding, bad_timeout;

	bool detached;      /* the HTTP/2 stream or the connection is gone */
	bool remote_closed; /* the client ended its side */
	bool answered;      /* response headers submitted: what comes later is dropped */
	bool dispatched, streaming, finishing, close_called, timer_on;

	uv_timer_t timer;
	uv_work_t work;
	ProtobufCMessage *req;
	/* the handler's result (written on the worker) */
	int result;
	uint8_t *resp;
	size_t resp_len;
	struct berth_error *herr;

	/* what goes out: messages, then trailers with this status */
	struct out_msg *out_head, *out_tail;
	size_t out_bytes;
	enum grpc_code status;
	char *message;

	void (*close_cb)(struct grpc_stream *s, void *ud);
	void *close_ud;
};

struct grpc_conn {
	uv_loop_t *loop;
	const struct grpc_service_table *services;
	struct grpc_conn_io io;
	nghttp2_session *session;
	unsigned refs;
	unsigned in_input; /* inside nghttp2_session_mem_recv: no sending from callbacks */
	bool closed, io_closed;
	struct grpc_stream *streams;
	size_t body_bytes; /* the streams' body_cap, together */
	uint8_t *wbuf;
	size_t wbuf_cap;
};

/* ---- connections: references and output ---- */

static void conn_unref(struct grpc_conn *c)
{
	if (--c->refs > 0)
		return;
	free(c->wbuf);
	free(c);
}

/* Hands what the session has to send to io.write, in one piece. The caller holds a reference:
 * the owner may close the connection from inside io.write. */
static int conn_flush(struct grpc_conn *c)
{
	size_t len = 0;
	for (;;) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(c->session, &data);
		if (n < 0)
			return -EPROTO;
		if (n == 0)
			break;
		if (len + (size_t)n > c->wbuf_cap) {
			size_t cap = (len + (size_t)n) * 2;
			uint8_t *b = realloc(c->wbuf, cap);
			if (!b)
				return -ENOMEM;
			c->wbuf = b;
			c->wbuf_cap = cap;
		}
		memcpy(c->wbuf + len, data, (size_t)n);
		len += (size_t)n;
	}
	if (len > 0) {
		int r = c->io.write(c->io.io_ud, c->wbuf, len);
		if (c->wbuf_cap > WBUF_KEEP) { /* one large answer does not pin its size */
			free(c->wbuf);
			c->wbuf = NULL;
			c->wbuf_cap = 0;
		}
		if (r < 0)
			return r;
		if (c->closed) /* the write path closed the connection */
			return -EPIPE;
	}
	if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session))
		return -ECONNRESET; /* GOAWAY exchanged and every stream done */
	return 0;
}

/* Sends what is pending, from outside nghttp2's callbacks; a connection that fails or is
 * finished is handed back to its owner to close. */
static void conn_kick(struct grpc_conn *c)
{
	if (c->closed || c->in_input || c->io_closed)
		return;
	c->refs++;
	int r = conn_flush(c);
	if (r < 0 && !c->closed) {
		if (r != -ECONNRESET)
			log_debug("grpc: connection failed: %s", strerror(-r));
		c->io_closed = true;
		c->io.close(c->io.io_ud);
	}
	conn_unref(c);
}

/* ---- streams: references ---- */

static void out_free(struct grpc_stream *s)
{
	while (s->out_head) {
		struct out_msg *m = s->out_head;
		s->out_head = m->next;
		free(m);
	}
	s->out_tail = NULL;
	s->out_bytes = 0;
}

static void stream_free_body(struct grpc_stream *s)
{
	s->c->body_bytes -= s->body_cap;
	free(s->body);
	s->body = NULL;
	s->body_len = s->body_cap = 0;
}

static void stream_unref(struct grpc_stream *s)
{
	if (--s->refs > 0)
		return;
	struct grpc_conn *c = s->c;
	if (s->req)
		protobuf_c_message_free_unpacked(s->req, NULL);
	berth_error_free(s->herr);
	free(s->resp);
	free(s->path);
	stream_free_body(s);
	free(s->message);
	out_free(s);
	free(s);
	conn_unref(c);
}

static void timer_closed_cb(uv_handle_t *h)
{
	stream_unref(h->data);
}

static void stream_stop_timer(struct grpc_stream *s)
{
	if (!s->timer_on)
		return;
	s->timer_on = false;
	uv_close((uv_handle_t *)&s->timer, timer_closed_cb);
}

/* The HTTP/2 stream is gone (closed, reset, or the connection ended): the stream no longer
 * belongs to the session. Its handler's close_cb learns it here. */
static void stream_detach(struct grpc_stream *s)
{
	struct grpc_conn *c = s->c;
	if (s->detached)
		return;
	s->detached = true;
	if (s->prev)
		s->prev->next = s->next;
	else
		c->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	if (!c->closed)
		nghttp2_session_set_stream_user_data(c->session, s->id, NULL);
	stream_stop_timer(s);
	out_free(s);
	if (s->streaming && s->close_cb && !s->close_called) {
		s->close_called = true;
		s->close_cb(s, s->close_ud);
	}
	stream_unref(s);
}

static struct grpc_stream *stream_new(struct grpc_conn *c, int32_t id)
{
	struct grpc_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->c = c;
	s->id = id;
	s->refs = 1;
	s->timeout_ms = -1;
	s->next = c->streams;
	if (c->streams)
		c->streams->prev = s;
	c->streams = s;
	c->refs++;
	return s;
}

/* ---- answers ---- */

/* grpc-message is percent-encoded: printable ASCII except '%' goes as is. */
static char *percent_encode(const char *msg)
{
	size_t len = strlen(msg);
	char *out = malloc(len * 3 + 1);
	if (!out)
		return NULL;
	char *p = out;
	for (const unsigned char *m = (const unsigned char *)msg; *m; m++) {
		if (*m >= 0x20 && *m <= 0x7e && *m != '%')
			*p++ = (char)*m;
		else
			p += sprintf(p, "%%%02X", *m);
	}
	*p = '\0';
	return out;
}

#define NV(n, v)                                                                                   \
	{ (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE }

/* Fills the grpc-status and grpc-message headers; returns how many. */
static size_t status_headers(struct grpc_stream *s, nghttp2_nv *nv, char *code, size_t code_len,
			     char **enc)
{
	snprintf(code, code_len, "%d", (int)s->status);
	nv[0] = (nghttp2_nv)NV("grpc-status", code);
	if (!s->message || !*s->message || !(*enc = percent_encode(s->message)))
		return 1;
	nv[1] = (nghttp2_nv)NV("grpc-message", *enc);
	return 2;
}

static void stream_set_status(struct grpc_stream *s, enum grpc_code code, const char *message)
{
	s->status = code;
	free(s->message);
	s->message = message ? strdup(message) : NULL;
}

/* A response that is only trailers: every error before or instead of a message. http_status is
 * 200 for gRPC errors, 405/415 for requests that are not gRPC at all. */
static void stream_answer_error(struct grpc_stream *s, int http_status, enum grpc_code code,
				const char *message)
{
	if (s->answered || s->detached)
		return;
	s->answered = true;
	stream_free_body(s); /* what else the client sends is dropped */
	stream_set_status(s, code, message);
	char status[8], code_s[12];
	_cleanup_free_ char *enc = NULL;
	snprintf(status, sizeof(status), "%d", http_status);
	nghttp2_nv nv[5] = {
		NV(":status", status),
		NV("content-type", "application/grpc"),
	};
	size_t n = 2 + status_headers(s, nv + 2, code_s, sizeof(code_s), &enc);
	if (s->bad_encoding)
		nv[n++] = (nghttp2_nv)NV("grpc-accept-encoding", "identity");
	nghttp2_submit_response(s->c->session, s->id, nv, n, NULL);
}

static void stream_answer_errnum(struct grpc_stream *s, int errnum, const char *message)
{
	stream_answer_error(s, 200, errcode_from_errno(errnum), message ? message : strerror(errnum));
}

/* The data source: queued messages, then (once the call is finishing) the trailers. */
static ssize_t data_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
				  size_t length, uint32_t *data_flags, nghttp2_data_source *source,
				  void *user_data)
{
	struct grpc_stream *s = source->ptr;
	size_t n = 0;
	while (s->out_head && n < length) {
		struct out_msg *m = s->out_head;
		size_t k = m->len - m->off < length - n ? m->len - m->off : length - n;
		memcpy(buf + n, m->data + m->off, k);
		m->off += k;
		n += k;
		s->out_bytes -= k;
		if (m->off == m->len) {
			s->out_head = m->next;
			if (!s->out_head)
				s->out_tail = NULL;
			free(m);
		}
	}
	if (s->out_head || n > 0)
		return (ssize_t)n;
	if (!s->finishing)
		return NGHTTP2_ERR_DEFERRED;
	char code[12];
	_cleanup_free_ char *enc = NULL;
	nghttp2_nv nv[2];
	size_t nvlen = status_headers(s, nv, code, sizeof(code), &enc);
	if (nghttp2_submit_trailer(session, stream_id, nv, nvlen) != 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	*data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
	return 0;
}

/* Response headers and a data source that serves s's queue. */
static int stream_open_response(struct grpc_stream *s)
{
	nghttp2_nv nv[] = {
		NV(":status", "200"),
		NV("content-type", "application/grpc"),
	};
	nghttp2_data_provider dp = { .source.ptr = s, .read_callback = data_read_cb };
	if (nghttp2_submit_response(s->c->session, s->id, nv, ARRAY_SIZE(nv), &dp) != 0)
		return -ENOMEM;
	s->answered = true;
	return 0;
}

/* Queues one framed message: buf (len bytes, copied). */
static int stream_queue(struct grpc_stream *s, const uint8_t *buf, size_t len)
{
	if (len > GRPC_MESSAGE_MAX)
		return -EMSGSIZE;
	struct out_msg *m = malloc(sizeof(*m) + PREFIX_LEN + len);
	if (!m)
		return -ENOMEM;
	m->next = NULL;
	m->len = PREFIX_LEN + len;
	m->off = 0;
	m->data[0] = 0;
	m->data[1] = (uint8_t)(len >> 24);
	m->data[2] = (uint8_t)(len >> 16);
	m->data[3] = (uint8_t)(len >> 8);
	m->data[4] = (uint8_t)len;
	if (len)
		memcpy(m->data + PREFIX_LEN, buf, len);
	if (s->out_tail)
		s->out_tail->next = m;
	else
		s->out_head = m;
	s->out_tail = m;
	s->out_bytes += m->len;
	nghttp2_session_resume_data(s->c->session, s->id);
	return 0;
}

/* ---- unary calls on the worker pool ---- */

static void work_cb(uv_work_t *w)
{
	struct grpc_stream *s = w->data;
	const struct grpc_method *m = s->method;
	s->result = m->unary(m->userdata, s->req, &s->resp, &s->resp_len, &s->herr);
}

static void answer_unary(struct grpc_stream *s)
{
	if (s->result < 0) {
		stream_answer_errnum(s, -s->result, s->herr ? s->herr->msg : NULL);
		return;
	}
	if (s->resp_len > GRPC_MESSAGE_MAX) {
		char msg[96];
		snprintf(msg, sizeof(msg), "the response is %zu bytes, more than the %u allowed",
			 s->resp_len, GRPC_MESSAGE_MAX);
		stream_answer_error(s, 200, GRPC_RESOURCE_EXHAUSTED, msg);
		return;
	}
	s->finishing = true;
	stream_set_status(s, GRPC_OK, NULL);
	if (stream_queue(s, s->resp, s->resp_len) < 0 || stream_open_response(s) < 0) {
		out_free(s);
		stream_answer_error(s, 200, GRPC_RESOURCE_EXHAUSTED, "out of memory");
	}
}

static void after_work_cb(uv_work_t *w, int status)
{
	struct grpc_stream *s = w->data;
	struct grpc_conn *c = s->c;
	c->refs++; /* conn_kick may close the connection under us */
	if (!s->detached && !s->answered) /* not timed out, client still there */
		answer_unary(s);
	stream_unref(s);
	conn_kick(c);
	conn_unref(c);
}

/* ---- the request ---- */

static void deadline_cb(uv_timer_t *t)
{
	struct grpc_stream *s = t->data;
	struct grpc_conn *c = s->c;
	if (s->streaming && !s->finishing)
		grpc_stream_finish(s, ETIMEDOUT, "the deadline passed");
	else if (!s->streaming)
		stream_answer_error(s, 200, GRPC_DEADLINE_EXCEEDED, "the deadline passed");
	conn_kick(c);
}

/* grpc-timeout: at most 8 digits and a unit (H, M, S, m, u, n). Returns ms (rounded up). */
static int64_t parse_timeout(const uint8_t *v, size_t len)
{
	if (len < 2 || len > 9)
		return -1;
	uint64_t n = 0;
	for (size_t i = 0; i < len - 1; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		n = n * 10 + (v[i] - '0');
	}
	switch (v[len - 1]) {
	case 'H': return (int64_t)(n * 3600000);
	case 'M': return (int64_t)(n * 60000);
	case 'S': return (int64_t)(n * 1000);
	case 'm': return (int64_t)n;
	case 'u': return (int64_t)((n + 999) / 1000);
	case 'n': return (int64_t)((n + 999999) / 1000000);
	default: return -1;
	}
}

static bool header_is(const uint8_t *name, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(name, want, len) == 0;
}

/* application/grpc, optionally followed by +proto (or another subtype) or ;parameters */
static bool grpc_content_type(const uint8_t *v, size_t len)
{
	static const char t[] = "application/grpc";
	size_t tl = sizeof(t) - 1;
	return len >= tl && memcmp(v, t, tl) == 0 && (len == tl || v[tl] == '+' || v[tl] == ';');
}

static int on_header_cb(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
			size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
			void *user_data)
{
	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0; /* the client's trailers carry nothing a call needs */
	struct grpc_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (!s)
		return 0;
	if (header_is(name, namelen, ":method")) {
		s->bad_method = !header_is(value, valuelen, "POST");
	} else if (header_is(name, namelen, ":path")) {
		free(s->path);
		if (!(s->path = strndup((const char *)value, valuelen)))
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	} else if (header_is(name, namelen, "content-type")) {
		s->bad_type = !grpc_content_type(value, valuelen);
	} else if (header_is(name, namelen, "grpc-encoding")) {
		s->bad_encoding = !header_is(value, valuelen, "identity");
	} else if (header_is(name, namelen, "grpc-timeout")) {
		s->timeout_ms = parse_timeout(value, valuelen);
		s->bad_timeout = s->timeout_ms < 0;
	}
	return 0;
}

static int on_begin_headers_cb(nghttp2_session *session, const nghttp2_frame *frame,
			       void *user_data)
{
	struct grpc_conn *c = user_data;
	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct grpc_stream *s = stream_new(c, frame->hd.stream_id);
	if (!s)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets this stream only */
	s->bad_type = true; /* until a content-type says otherwise */
	nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, s);
	return 0;
}

static const struct grpc_method *find_method(const struct grpc_conn *c, const char *path)
{
	for (const struct grpc_method *m = c->services ? c->services->methods : NULL; m && m->path;
	     m++)
		if (strcmp(m->path, path) == 0)
			return m;
	return NULL;
}

static void start_deadline(struct grpc_stream *s)
{
	if (s->timeout_ms < 0 || uv_timer_init(s->c->loop, &s->timer) < 0)
		return;
	s->timer.data = s;
	s->timer_on = true;
	s->refs++; /* released by timer_closed_cb */
	uv_update_time(s->c->loop); /* the loop's clock may be a whole iteration old */
	uv_timer_start(&s->timer, deadline_cb, (uint64_t)s->timeout_ms, 0);
	uv_unref((uv_handle_t *)&s->timer); /* a deadline alone does not keep the loop alive */
}

/* The request headers are complete: refuse what is not a call we serve. */
static void stream_headers_done(struct grpc_stream *s)
{
	char msg[256];
	if (s->bad_method) {
		stream_answer_error(s, 405, GRPC_UNIMPLEMENTED, "gRPC calls are POST requests");
	} else if (s->bad_type) {
		stream_answer_error(s, 415, GRPC_INTERNAL, "content-type must be application/grpc");
	} else if (s->bad_encoding) {
		stream_answer_error(s, 200, GRPC_UNIMPLEMENTED,
				    "compressed messages are not accepted (grpc-encoding: identity "
				    "only)");
	} else if (s->bad_timeout) {
		stream_answer_error(s, 200, GRPC_INTERNAL, "malformed grpc-timeout");
	} else if (!s->path || !(s->method = find_method(s->c, s->path))) {
		snprintf(msg, sizeof(msg), "unknown method %.200s", s->path ? s->path : "(none)");
		stream_answer_error(s, 200, GRPC_UNIMPLEMENTED, msg);
	} else {
		start_deadline(s);
	}
}

static int decode_fail(struct grpc_stream *s, enum grpc_code code, const char *message)
{
	stream_answer_error(s, 200, code, message);
	return -EBADMSG;
}

/* Takes the body's one message apart: 0 with s->req set, or an answer was sent. */
static int stream_decode(struct grpc_stream *s)
{
	char msg[160];
	if (s->body_len < PREFIX_LEN)
		return decode_fail(s, GRPC_INTERNAL,
				   s->body_len ? "truncated gRPC message prefix"
					       : "the request has no message");
	const uint8_t *b = s->body;
	if (b[0] != 0)
		return decode_fail(s, GRPC_INTERNAL,
				   b[0] == 1 ? "compressed message without grpc-encoding"
					     : "invalid gRPC message flags");
	size_t len = (size_t)b[1] << 24 | (size_t)b[2] << 16 | (size_t)b[3] << 8 | b[4];
	if (len > GRPC_MESSAGE_MAX) {
		snprintf(msg, sizeof(msg), "the request message is %zu bytes, more than the %u allowed",
			 len, GRPC_MESSAGE_MAX);
		return decode_fail(s, GRPC_RESOURCE_EXHAUSTED, msg);
	}
	if (s->body_len - PREFIX_LEN != len)
		return decode_fail(s, GRPC_INTERNAL,
				   s->body_len - PREFIX_LEN < len ? "truncated gRPC message"
								  : "more than one request message");
	s->req = protobuf_c_message_unpack(s->method->input, NULL, len, b + PREFIX_LEN);
	if (!s->req) {
		snprintf(msg, sizeof(msg), "the request is not a valid %s message",
			 s->method->input->name);
		return decode_fail(s, GRPC_INVALID_ARGUMENT, msg);
	}
	stream_free_body(s);
	return 0;
}

static void dispatch_stream_open(struct grpc_stream *s)
{
	_cleanup_error_ struct berth_error *err = NULL;
	const struct grpc_method *m = s->method;
	s->streaming = true;
	if (stream_open_response(s) < 0) {
		stream_answer_error(s, 200, GRPC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	s->refs++; /* the handler may finish (and the stream close) from inside stream_open */
	int r = m->stream_open(m->userdata, s->req, s, &err);
	protobuf_c_message_free_unpacked(s->req, NULL); /* the handler copied what it keeps */
	s->req = NULL;
	if (r < 0) { /* the handler did not keep the stream: its close_cb is not called */
		s->close_cb = NULL;
		if (!s->finishing)
			grpc_stream_finish(s, -r, err ? err->msg : strerror(-r));
	}
	stream_unref(s);
}

/* The client ended its side: run the call. */
static void stream_dispatch(struct grpc_stream *s)
{
	if (s->answered || s->dispatched || !s->method)
		return;
	s->dispatched = true;
	if (stream_decode(s) < 0)
		return;
	if (s->method->stream_open) {
		dispatch_stream_open(s);
		return;
	}
	s->work.data = s;
	if (!s->method->unary ||
	    uv_queue_work(s->c->loop, &s->work, work_cb, after_work_cb) < 0) {
		stream_answer_error(s, 200, GRPC_UNAVAILABLE, "the call cannot be run");
		return;
	}
	s->refs++;
}

static int on_frame_recv_cb(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
		return 0;
	struct grpc_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (!s)
		return 0;
	if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
		stream_headers_done(s);
	if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
		s->remote_closed = true;
		stream_dispatch(s);
	}
	return 0;
}

static int on_data_chunk_cb(nghttp2_session *session, uint8_t flags, int32_t stream_id,
			    const uint8_t *data, size_t len, void *user_data)
{
	struct grpc_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
	if (!s || s->answered || s->dispatched)
		return 0; /* consumed and dropped: nghttp2 still updates the window */
	if (s->body_len + len > GRPC_MESSAGE_MAX + PREFIX_LEN) {
		char msg[96];
		snprintf(msg, sizeof(msg), "the request is more than the %u bytes allowed",
			 GRPC_MESSAGE_MAX);
		stream_answer_error(s, 200, GRPC_RESOURCE_EXHAUSTED, msg);
		return 0;
	}
	if (s->body_len + len > s->body_cap) {
		size_t cap = (s->body_len + len) * 2;
		if (cap > GRPC_MESSAGE_MAX + PREFIX_LEN)
			cap = GRPC_MESSAGE_MAX + PREFIX_LEN;
		struct grpc_conn *c = s->c;
		uint8_t *b = NULL;
		if (c->body_bytes - s->body_cap + cap > CONN_BODY_MAX) {
			stream_answer_error(s, 200, GRPC_RESOURCE_EXHAUSTED,
					    "too many request bytes on this connection at once");
			return 0;
		}
		if (!(b = realloc(s->body, cap))) {
			stream_answer_error(s, 200, GRPC_RESOURCE_EXHAUSTED, "out of memory");
			return 0;
		}
		c->body_bytes += cap - s->body_cap;
		s->body = b;
		s->body_cap = cap;
	}
	memcpy(s->body + s->body_len, data, len);
	s->body_len += len;
	return 0;
}

/* A client still sending its request when its complete (trailers-only) response has gone out is
 * told to stop (RFC 9113 8.1: RST_STREAM NO_ERROR). Not before: nghttp2 sends a RST_STREAM
 * submitted with the response ahead of it, and the response is lost. */
static int on_frame_send_cb(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	if (frame->hd.type != NGHTTP2_HEADERS || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	struct grpc_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (s && !s->remote_closed)
		nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
	return 0;
}

static int on_stream_close_cb(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
			      void *user_data)
{
	struct grpc_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
	if (s)
		stream_detach(s);
	return 0;
}

/* ---- server streaming ---- */

int grpc_stream_send(struct grpc_stream *s, const ProtobufCMessage *msg)
{
	if (s->detached || s->finishing)
		return -EPIPE;
	if (s->out_bytes > STREAM_QUEUE_MAX)
		return -ENOBUFS; /* the client does not read */
	size_t len = protobuf_c_message_get_packed_size(msg);
	if (len > GRPC_MESSAGE_MAX)
		return -EMSGSIZE;
	_cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(msg, buf);
	int r = stream_queue(s, buf, len);
	if (r < 0)
		return r;
	conn_kick(s->c);
	return 0;
}

void grpc_stream_finish(struct grpc_stream *s, int errnum, const char *message)
{
	if (s->detached || s->finishing)
		return;
	s->finishing = true;
	if (errnum < 0)
		errnum = -errnum;
	stream_set_status(s, errcode_from_errno(errnum), errnum ? message : NULL);
	nghttp2_session_resume_data(s->c->session, s->id);
	conn_kick(s->c);
}

void grpc_stream_set_close_cb(struct grpc_stream *s, void (*cb)(struct grpc_stream *s, void *ud),
			      void *ud)
{
	s->close_cb = cb;
	s->close_ud = ud;
}

/* ---- the connection ---- */

static int new_session(struct grpc_conn *c)
{
	nghttp2_session_callbacks *cbs;
	if (nghttp2_session_callbacks_new(&cbs) != 0)
		return -ENOMEM;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers_cb);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header_cb);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close_cb);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send_cb);
	int r = nghttp2_session_server_new(&c->session, cbs, c);
	nghttp2_session_callbacks_del(cbs);
	if (r != 0)
		return -ENOMEM;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_CONCURRENT_STREAMS },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW },
	};
	if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, ARRAY_SIZE(iv)) != 0 ||
	    nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0)
		return -ENOMEM;
	return 0;
}

int grpc_conn_new(uv_loop_t *loop, const struct grpc_service_table *services,
		  const struct grpc_conn_io *io, struct grpc_conn **ret, struct berth_error **err)
{
	struct grpc_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return berth_error_set(err, ENOMEM, "grpc: out of memory");
	c->loop = loop;
	c->services = services;
	c->io = *io;
	c->refs = 1;
	int r = new_session(c);
	if (r < 0) {
		nghttp2_session_del(c->session);
		free(c);
		return berth_error_set(err, -r, "grpc: cannot start an HTTP/2 session");
	}
	*ret = c;
	return 0;
}

int grpc_conn_input(struct grpc_conn *c, const uint8_t *buf, size_t len)
{
	if (c->closed || c->io_closed)
		return -EPIPE;
	c->refs++;
	c->in_input++;
	ssize_t n = nghttp2_session_mem_recv(c->session, buf, len);
	c->in_input--;
	int r = c->closed ? -EPIPE : conn_flush(c); /* a GOAWAY for a protocol error goes too */
	conn_unref(c);
	if (n < 0) {
		log_debug("grpc: bad HTTP/2 input: %s", nghttp2_strerror((int)n));
		return -EPROTO;
	}
	return r;
}

void grpc_conn_close(struct grpc_conn *c)
{
	if (!c || c->closed)
		return;
	c->closed = true;
	while (c->streams)
		stream_detach(c->streams);
	nghttp2_session_del(c->session);
	c->session = NULL;
	conn_unref(c);
}
