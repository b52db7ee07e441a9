/* cri/grpc.c: the gRPC transport, driven in-process by a real HTTP/2 client (nghttp2's client
 * session) over memory buffers, against a method table of test handlers that use the CRI's own
 * messages. The loop runs the handlers on libuv's worker pool as berthd does. */
#include "unit.h"

#include "base/cleanup.h"
#include "cri/cri-api.pb-c.h"
#include "cri/errcode.h"
#include "cri/grpc.h"

#include <nghttp2/nghttp2.h>
#include <stdatomic.h>
#include <time.h>

#define PATH_VERSION "/runtime.v1.RuntimeService/Version"
#define PATH_STATUS "/runtime.v1.RuntimeService/ContainerStatus"
#define PATH_SLOW "/runtime.v1.RuntimeService/StopContainer"
#define PATH_EVENTS "/runtime.v1.RuntimeService/GetContainerEvents"
#define PATH_REFUSED "/runtime.v1.RuntimeService/StreamContainers"

/* ---- the server side: handlers ---- */

static atomic_int slow_done;
static struct grpc_stream *events_stream;
static int events_closed;

/* Version: answers runtime_name "berth" and echoes the requested version. */
static int version_cb(void *ud, const ProtobufCMessage *req, uint8_t **ret_buf, size_t *ret_len,
		      struct berth_error **err)
{
	const Runtime__V1__VersionRequest *r = (const Runtime__V1__VersionRequest *)req;
	Runtime__V1__VersionResponse resp = RUNTIME__V1__VERSION_RESPONSE__INIT;
	resp.version = r->version;
	resp.runtime_name = "berth";
	size_t len = runtime__v1__version_response__get_packed_size(&resp);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	runtime__v1__version_response__pack(&resp, buf);
	*ret_buf = buf;
	*ret_len = len;
	return 0;
}

/* ContainerStatus: always NotFound, naming the id (with bytes that need percent-encoding). */
static int status_cb(void *ud, const ProtobufCMessage *req, uint8_t **ret_buf, size_t *ret_len,
		     struct berth_error **err)
{
	const Runtime__V1__ContainerStatusRequest *r =
		(const Runtime__V1__ContainerStatusRequest *)req;
	return berth_error_set(err, ENOENT, "container \"%s\" 100%% not found\n", r->container_id);
}

/* StopContainer: sleeps timeout ms on the worker, then answers an empty response. */
static int slow_cb(void *ud, const ProtobufCMessage *req, uint8_t **ret_buf, size_t *ret_len,
		   struct berth_error **err)
{
	const Runtime__V1__StopContainerRequest *r = (const Runtime__V1__StopContainerRequest *)req;
	struct timespec ts = { r->timeout / 1000, (r->timeout % 1000) * 1000000 };
	nanosleep(&ts, NULL);
	atomic_fetch_add(&slow_done, 1);
	return 0;
}

static void events_close_cb(struct grpc_stream *s, void *ud)
{
	events_closed++;
	events_stream = NULL;
}

static int send_event(struct grpc_stream *s, const char *id)
{
	Runtime__V1__ContainerEventResponse ev = RUNTIME__V1__CONTAINER_EVENT_RESPONSE__INIT;
	ev.container_id = (char *)id;
	ev.container_event_type = RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT;
	return grpc_stream_send(s, &ev.base);
}

/* GetContainerEvents: two events at once; the test sends more and ends it. */
static int events_open(void *ud, const ProtobufCMessage *req, struct grpc_stream *s,
		       struct berth_error **err)
{
	grpc_stream_set_close_cb(s, events_close_cb, NULL);
	events_stream = s;
	if (send_event(s, "c1") < 0 || send_event(s, "c2") < 0)
		return berth_error_set(err, EIO, "send failed");
	return 0;
}

/* StreamContainers: refused at once, after setting a close_cb that must then not run. */
static int refused_open(void *ud, const ProtobufCMessage *req, struct grpc_stream *s,
			struct berth_error **err)
{
	grpc_stream_set_close_cb(s, events_close_cb, NULL);
	return berth_error_set(err, EPERM, "streaming containers is not allowed");
}

static const struct grpc_method methods[] = {
	{ PATH_VERSION, &runtime__v1__version_request__descriptor, version_cb, NULL, NULL },
	{ PATH_STATUS, &runtime__v1__container_status_request__descriptor, status_cb, NULL, NULL },
	{ PATH_SLOW, &runtime__v1__stop_container_request__descriptor, slow_cb, NULL, NULL },
	{ PATH_EVENTS, &runtime__v1__get_events_request__descriptor, NULL, events_open, NULL },
	{ PATH_REFUSED, &runtime__v1__stream_containers_request__descriptor, NULL, refused_open,
	  NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};
static const struct grpc_service_table table = { methods };

/* ---- the client side ---- */

struct call {
	int32_t id;
	uint8_t *req;
	size_t req_len, req_off;
	int http_status, grpc_status; /* -1 until seen */
	char message[512];
	uint8_t *data;
	size_t data_len;
	bool closed;
	uint32_t close_error;
};

struct fx {
	uv_loop_t loop;
	struct grpc_conn *conn;
	nghttp2_session *client;
	uint8_t *wire; /* server -> client bytes not yet read */
	size_t wire_len, wire_cap;
	size_t written; /* bytes the server wrote in all */
	bool io_closed;
	struct call *calls;
	size_t ncalls;
};

static int io_write(void *ud, const uint8_t *buf, size_t len)
{
	struct fx *f = ud;
	if (f->wire_len + len > f->wire_cap) {
		f->wire_cap = (f->wire_len + len) * 2;
		f->wire = realloc(f->wire, f->wire_cap);
		assert_non_null(f->wire);
	}
	memcpy(f->wire + f->wire_len, buf, len);
	f->wire_len += len;
	f->written += len;
	return 0;
}

static void io_close(void *ud)
{
	struct fx *f = ud;
	f->io_closed = true;
}

static ssize_t req_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
			   size_t length, uint32_t *flags, nghttp2_data_source *source, void *ud)
{
	struct call *c = source->ptr;
	size_t n = c->req_len - c->req_off < length ? c->req_len - c->req_off : length;
	memcpy(buf, c->req + c->req_off, n);
	c->req_off += n;
	if (c->req_off == c->req_len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

static int client_header_cb(nghttp2_session *session, const nghttp2_frame *frame,
			    const uint8_t *name, size_t namelen, const uint8_t *value,
			    size_t valuelen, uint8_t flags, void *ud)
{
	struct call *c = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (!c)
		return 0;
	if (namelen == 7 && memcmp(name, ":status", 7) == 0)
		c->http_status = atoi((const char *)value);
	else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
		c->grpc_status = atoi((const char *)value);
	else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0)
		snprintf(c->message, sizeof(c->message), "%.*s", (int)valuelen, value);
	return 0;
}

static int client_data_cb(nghttp2_session *session, uint8_t flags, int32_t stream_id,
			  const uint8_t *data, size_t len, void *ud)
{
	struct call *c = nghttp2_session_get_stream_user_data(session, stream_id);
	if (!c)
		return 0;
	c->data = realloc(c->data, c->data_len + len);
	assert_non_null(c->data);
	memcpy(c->data + c->data_len, data, len);
	c->data_len += len;
	return 0;
}

static int client_close_cb(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
			   void *ud)
{
	struct call *c = nghttp2_session_get_stream_user_data(session, stream_id);
	if (c) {
		c->closed = true;
		c->close_error = error_code;
	}
	return 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	struct grpc_conn_io io = { io_write, io_close, f };
	struct berth_error *err = NULL;
	assert_int_equal(grpc_conn_new(&f->loop, &table, &io, &f->conn, &err), 0);
	nghttp2_session_callbacks *cbs;
	assert_int_equal(nghttp2_session_callbacks_new(&cbs), 0);
	nghttp2_session_callbacks_set_on_header_callback(cbs, client_header_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, client_data_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, client_close_cb);
	assert_int_equal(nghttp2_session_client_new(&f->client, cbs, f), 0);
	nghttp2_session_callbacks_del(cbs);
	assert_int_equal(nghttp2_submit_settings(f->client, NGHTTP2_FLAG_NONE, NULL, 0), 0);
	f->calls = calloc(400, sizeof(*f->calls));
	assert_non_null(f->calls);
	atomic_store(&slow_done, 0);
	events_stream = NULL;
	events_closed = 0;
	*state = f;
	return 0;
}

static void close_loop(struct fx *f)
{
	while (uv_run(&f->loop, UV_RUN_DEFAULT) != 0)
		;
	assert_int_equal(uv_loop_close(&f->loop), 0);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	grpc_conn_close(f->conn);
	close_loop(f); /* workers still running finish; their answers are dropped */
	nghttp2_session_del(f->client);
	for (size_t i = 0; i < f->ncalls; i++) {
		free(f->calls[i].req);
		free(f->calls[i].data);
	}
	free(f->calls);
	free(f->wire);
	free(f);
	return 0;
}

/* Moves bytes both ways and runs the loop once; returns the server's input result. */
static int pump(struct fx *f)
{
	int r = 0;
	for (;;) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(f->client, &data);
		assert_true(n >= 0);
		if (n == 0)
			break;
		if (r == 0 && !f->io_closed)
			r = grpc_conn_input(f->conn, data, (size_t)n);
	}
	if (f->wire_len) {
		size_t len = f->wire_len;
		f->wire_len = 0;
		_cleanup_free_ uint8_t *copy = malloc(len);
		memcpy(copy, f->wire, len);
		ssize_t n = nghttp2_session_mem_recv(f->client, copy, len);
		assert_int_equal(n, (ssize_t)len);
	}
	uv_run(&f->loop, UV_RUN_NOWAIT);
	return r;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Pumps until every call so far is closed (or 10 s pass). */
static void run_calls(struct fx *f)
{
	uint64_t end = now_ms() + 10000;
	for (;;) {
		pump(f);
		bool all = true;
		for (size_t i = 0; i < f->ncalls; i++)
			all = all && f->calls[i].closed;
		if (all)
			return;
		assert_true(now_ms() < end);
		usleep(200);
	}
}

/* Submits a call whose body is given raw (prefix included). */
static struct call *submit_raw(struct fx *f, const char *path, const char *content_type,
			       const char *timeout, const uint8_t *body, size_t len)
{
	struct call *c = &f->calls[f->ncalls++];
	c->http_status = c->grpc_status = -1;
	c->req = malloc(len ? len : 1);
	if (len)
		memcpy(c->req, body, len);
	c->req_len = len;
	nghttp2_nv nv[8];
	size_t n = 0;
#define ADD(k, v)                                                                                  \
	nv[n++] = (nghttp2_nv){ (uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v),              \
				NGHTTP2_NV_FLAG_NONE }
	ADD(":method", "POST");
	ADD(":scheme", "http");
	ADD(":authority", "localhost");
	ADD(":path", path);
	ADD("te", "trailers");
	if (content_type)
		ADD("content-type", content_type);
	if (timeout)
		ADD("grpc-timeout", timeout);
#undef ADD
	nghttp2_data_provider dp = { .source.ptr = c, .read_callback = req_read_cb };
	c->id = nghttp2_submit_request(f->client, NULL, nv, n, &dp, c);
	assert_true(c->id > 0);
	return c;
}

/* Submits a call with msg packed behind a proper prefix. */
static struct call *submit(struct fx *f, const char *path, const ProtobufCMessage *msg,
			   const char *timeout)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	_cleanup_free_ uint8_t *buf = malloc(len + 5);
	buf[0] = 0;
	buf[1] = (uint8_t)(len >> 24);
	buf[2] = (uint8_t)(len >> 16);
	buf[3] = (uint8_t)(len >> 8);
	buf[4] = (uint8_t)len;
	protobuf_c_message_pack(msg, buf + 5);
	return submit_raw(f, path, "application/grpc", timeout, buf, len + 5);
}

static struct call *submit_version(struct fx *f, const char *version)
{
	Runtime__V1__VersionRequest req = RUNTIME__V1__VERSION_REQUEST__INIT;
	req.version = (char *)version;
	return submit(f, PATH_VERSION, &req.base, NULL);
}

/* Counts the length-prefixed messages in a response body, checking the framing; at, at_len:
 * where message number want starts (when there is one). */
static size_t find_message(const struct call *c, size_t want, const uint8_t **at, size_t *at_len)
{
	size_t n = 0, off = 0;
	while (off < c->data_len) {
		assert_true(c->data_len - off >= 5);
		assert_int_equal(c->data[off], 0);
		size_t len = (size_t)c->data[off + 1] << 24 | (size_t)c->data[off + 2] << 16 |
			     (size_t)c->data[off + 3] << 8 | c->data[off + 4];
		assert_true(c->data_len - off - 5 >= len);
		if (n == want && at) {
			*at = c->data + off + 5;
			*at_len = len;
		}
		off += 5 + len;
		n++;
	}
	return n;
}

static size_t count_messages(const struct call *c)
{
	return find_message(c, 0, NULL, NULL);
}

static void assert_status(const struct call *c, int http, int code)
{
	assert_true(c->closed);
	assert_int_equal(c->http_status, http);
	assert_int_equal(c->grpc_status, code);
}

/* ---- tests ---- */

static void test_unary_ok(void **state)
{
	struct fx *f = *state;
	struct call *c = submit_version(f, "v1");
	run_calls(f);
	assert_status(c, 200, GRPC_OK);
	assert_int_equal(count_messages(c), 1);
	Runtime__V1__VersionResponse *resp =
		runtime__v1__version_response__unpack(NULL, c->data_len - 5, c->data + 5);
	assert_non_null(resp);
	assert_string_equal(resp->version, "v1");
	assert_string_equal(resp->runtime_name, "berth");
	runtime__v1__version_response__free_unpacked(resp, NULL);
	assert_false(f->io_closed);
}

static void test_error_status(void **state)
{
	struct fx *f = *state;
	Runtime__V1__ContainerStatusRequest req = RUNTIME__V1__CONTAINER_STATUS_REQUEST__INIT;
	req.container_id = "abc";
	struct call *c = submit(f, PATH_STATUS, &req.base, NULL);
	run_calls(f);
	assert_status(c, 200, GRPC_NOT_FOUND);
	assert_int_equal(c->data_len, 0);
	/* '%' and the newline are percent-encoded, the rest goes as is */
	assert_string_equal(c->message, "container \"abc\" 100%25 not found%0A");
}

static void test_unknown_method(void **state)
{
	struct fx *f = *state;
	Runtime__V1__VersionRequest req = RUNTIME__V1__VERSION_REQUEST__INIT;
	struct call *c = submit(f, "/runtime.v1.RuntimeService/NoSuchThing", &req.base, NULL);
	struct call *d = submit(f, "/x", &req.base, NULL);
	run_calls(f);
	assert_status(c, 200, GRPC_UNIMPLEMENTED);
	assert_contains(c->message, "NoSuchThing");
	assert_status(d, 200, GRPC_UNIMPLEMENTED);
	/* the connection still serves */
	struct call *e = submit_version(f, "v1");
	run_calls(f);
	assert_status(e, 200, GRPC_OK);
}

static void test_bad_content_type(void **state)
{
	struct fx *f = *state;
	static const uint8_t empty[5] = { 0 };
	struct call *c = submit_raw(f, PATH_VERSION, "application/json", NULL, empty, 5);
	struct call *d = submit_raw(f, PATH_VERSION, NULL, NULL, empty, 5);
	struct call *e = submit_raw(f, PATH_VERSION, "application/grpc+proto", NULL, empty, 5);
	run_calls(f);
	assert_status(c, 415, GRPC_INTERNAL);
	assert_status(d, 415, GRPC_INTERNAL);
	assert_status(e, 200, GRPC_OK);
}

static void test_malformed_prefix(void **state)
{
	struct fx *f = *state;
	static const uint8_t short_prefix[3] = { 0, 0, 0 };
	static const uint8_t compressed[6] = { 1, 0, 0, 0, 1, 0 };
	static const uint8_t bad_flags[5] = { 0x80, 0, 0, 0, 0 };
	static const uint8_t truncated[7] = { 0, 0, 0, 0, 9, 0x0a, 1 };
	static const uint8_t two[10] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t bad_pb[8] = { 0, 0, 0, 0, 3, 0x0a, 0x7f, 'x' }; /* string past end */
	struct call *c[] = {
		submit_raw(f, PATH_VERSION, "application/grpc", NULL, short_prefix, 3),
		submit_raw(f, PATH_VERSION, "application/grpc", NULL, compressed, 6),
		submit_raw(f, PATH_VERSION, "application/grpc", NULL, bad_flags, 5),
		submit_raw(f, PATH_VERSION, "application/grpc", NULL, truncated, 7),
		submit_raw(f, PATH_VERSION, "application/grpc", NULL, two, 10),
		submit_raw(f, PATH_VERSION, "application/grpc", NULL, NULL, 0),
		submit_raw(f, PATH_VERSION, "application/grpc", NULL, bad_pb, 8),
	};
	run_calls(f);
	for (size_t i = 0; i < 6; i++)
		assert_status(c[i], 200, GRPC_INTERNAL);
	assert_contains(c[1]->message, "compressed");
	assert_contains(c[4]->message, "more than one");
	assert_status(c[6], 200, GRPC_INVALID_ARGUMENT);
	assert_contains(c[6]->message, "runtime.v1.VersionRequest");
	assert_int_equal(atomic_load(&slow_done), 0);
	assert_false(f->io_closed);
}

static void test_compressed_encoding(void **state)
{
	struct fx *f = *state;
	static const uint8_t empty[5] = { 0 };
	struct call *c = submit_raw(f, PATH_VERSION, "application/grpc", NULL, empty, 5);
	/* the same with grpc-encoding: gzip, added by hand */
	nghttp2_nv nv[] = {
		{ (uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0 },
		{ (uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0 },
		{ (uint8_t *)":authority", (uint8_t *)"l", 10, 1, 0 },
		{ (uint8_t *)":path", (uint8_t *)PATH_VERSION, 5, strlen(PATH_VERSION), 0 },
		{ (uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0 },
		{ (uint8_t *)"grpc-encoding", (uint8_t *)"gzip", 13, 4, 0 },
	};
	struct call *d = &f->calls[f->ncalls++];
	d->http_status = d->grpc_status = -1;
	d->id = nghttp2_submit_request(f->client, NULL, nv, ARRAY_SIZE(nv), NULL, d);
	run_calls(f);
	assert_status(c, 200, GRPC_OK);
	assert_status(d, 200, GRPC_UNIMPLEMENTED);
	assert_contains(d->message, "grpc-encoding");
}

static void test_oversized(void **state)
{
	struct fx *f = *state;
	/* a prefix that announces more than the limit */
	static const uint8_t big[5] = { 0, 0x01, 0x00, 0x00, 0x01 };
	struct call *c = submit_raw(f, PATH_VERSION, "application/grpc", NULL, big, 5);
	/* a body that really is larger: refused while it arrives, the upload stopped */
	size_t len = GRPC_MESSAGE_MAX + (8u << 20); /* past the limit by more than the windows */
	_cleanup_free_ uint8_t *body = calloc(1, len);
	body[1] = 0x01;
	struct call *d = submit_raw(f, PATH_VERSION, "application/grpc", NULL, body, len);
	run_calls(f);
	assert_status(c, 200, GRPC_RESOURCE_EXHAUSTED);
	assert_status(d, 200, GRPC_RESOURCE_EXHAUSTED);
	assert_true(d->req_off < len); /* the client was told to stop sending */
	struct call *e = submit_version(f, "after");
	run_calls(f);
	assert_status(e, 200, GRPC_OK);
}

static void test_garbage(void **state)
{
	struct fx *f = *state;
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	assert_int_equal(grpc_conn_input(f->conn, (const uint8_t *)preface, 24), 0);
	/* a frame header announcing an unknown-length SETTINGS with garbage after */
	static const uint8_t junk[] = { 0, 0, 5, 4, 0, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 0x55 };
	int r = grpc_conn_input(f->conn, junk, sizeof(junk));
	uint8_t more[4096];
	for (size_t i = 0; i < sizeof(more); i++)
		more[i] = (uint8_t)(i * 7919u >> 3);
	if (r == 0)
		r = grpc_conn_input(f->conn, more, sizeof(more));
	assert_true(r < 0);
	/* a GOAWAY went out: the last frame written is type 7 */
	assert_true(f->wire_len >= 17);
	bool goaway = false;
	for (size_t off = 0; off + 9 <= f->wire_len;) {
		size_t flen = (size_t)f->wire[off] << 16 | (size_t)f->wire[off + 1] << 8 |
			      f->wire[off + 2];
		goaway = goaway || f->wire[off + 3] == 7;
		off += 9 + flen;
	}
	assert_true(goaway);
	f->wire_len = 0;
	/* the client's own preface has not been sent: bytes that are not HTTP/2 at all */
}

static void test_not_http2(void **state)
{
	struct fx *f = *state;
	static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	assert_true(grpc_conn_input(f->conn, (const uint8_t *)junk, sizeof(junk) - 1) < 0);
	f->wire_len = 0;
}

static void test_deadline(void **state)
{
	struct fx *f = *state;
	Runtime__V1__StopContainerRequest req = RUNTIME__V1__STOP_CONTAINER_REQUEST__INIT;
	req.timeout = 600; /* the handler sleeps 600 ms */
	uint64_t start = now_ms();
	struct call *c = submit(f, PATH_SLOW, &req.base, "100m");
	struct call *d = submit(f, PATH_SLOW, &req.base, "5S");
	while (!c->closed) {
		pump(f);
		usleep(500);
		assert_true(now_ms() - start < 5000);
	}
	uint64_t took = now_ms() - start;
	assert_status(c, 200, GRPC_DEADLINE_EXCEEDED);
	assert_true(took >= 95 && took < 590); /* before the handler's 600 ms */
	assert_false(d->closed);
	run_calls(f);
	assert_status(d, 200, GRPC_OK);
	assert_int_equal(atomic_load(&slow_done), 2); /* c's late result was dropped */
	assert_int_equal(count_messages(c), 0);
	/* malformed timeouts */
	struct call *e = submit(f, PATH_SLOW, &req.base, "1x");
	struct call *g = submit(f, PATH_SLOW, &req.base, "123456789S");
	run_calls(f);
	assert_status(e, 200, GRPC_INTERNAL);
	assert_status(g, 200, GRPC_INTERNAL);
}

static void test_concurrent(void **state)
{
	struct fx *f = *state;
	Runtime__V1__StopContainerRequest req = RUNTIME__V1__STOP_CONTAINER_REQUEST__INIT;
	req.timeout = 20;
	for (int i = 0; i < 200; i++) {
		if (i % 2)
			submit(f, PATH_SLOW, &req.base, NULL);
		else
			submit_version(f, "v");
	}
	uint64_t start = now_ms();
	run_calls(f);
	for (size_t i = 0; i < f->ncalls; i++) {
		assert_status(&f->calls[i], 200, GRPC_OK);
		assert_int_equal(count_messages(&f->calls[i]), 1);
	}
	assert_int_equal(atomic_load(&slow_done), 100);
	/* 100 x 20 ms in sequence would be 2 s: the worker pool runs them side by side */
	assert_true(now_ms() - start < 1900);
}

static void test_server_streaming(void **state)
{
	struct fx *f = *state;
	Runtime__V1__GetEventsRequest req = RUNTIME__V1__GET_EVENTS_REQUEST__INIT;
	struct call *c = submit(f, PATH_EVENTS, &req.base, NULL);
	for (int i = 0; i < 50; i++)
		pump(f);
	assert_non_null(events_stream);
	assert_false(c->closed);
	assert_int_equal(c->http_status, 200);
	assert_int_equal(count_messages(c), 2);
	assert_int_equal(send_event(events_stream, "c3"), 0);
	for (int i = 0; i < 20; i++)
		pump(f);
	assert_int_equal(count_messages(c), 3);
	grpc_stream_finish(events_stream, 0, NULL);
	run_calls(f);
	assert_status(c, 200, GRPC_OK);
	assert_int_equal(events_closed, 1);
	assert_null(events_stream);
	/* the last message decodes */
	const uint8_t *at = NULL;
	size_t at_len = 0;
	find_message(c, 2, &at, &at_len);
	Runtime__V1__ContainerEventResponse *ev =
		runtime__v1__container_event_response__unpack(NULL, at_len, at);
	assert_non_null(ev);
	assert_string_equal(ev->container_id, "c3");
	runtime__v1__container_event_response__free_unpacked(ev, NULL);
}

static void test_stream_refused(void **state)
{
	struct fx *f = *state;
	Runtime__V1__StreamContainersRequest req = RUNTIME__V1__STREAM_CONTAINERS_REQUEST__INIT;
	struct call *c = submit(f, PATH_REFUSED, &req.base, NULL);
	run_calls(f);
	assert_status(c, 200, GRPC_PERMISSION_DENIED);
	assert_string_equal(c->message, "streaming containers is not allowed");
	assert_int_equal(count_messages(c), 0);
	assert_int_equal(events_closed, 0);
}

/* A client that does not read its stream: HTTP/2 flow control holds the messages in the
 * server, up to a limit, then grpc_stream_send refuses. */
static void test_stream_not_read(void **state)
{
	struct fx *f = *state;
	Runtime__V1__GetEventsRequest req = RUNTIME__V1__GET_EVENTS_REQUEST__INIT;
	submit(f, PATH_EVENTS, &req.base, NULL);
	for (int i = 0; i < 20 && !events_stream; i++)
		pump(f);
	assert_non_null(events_stream);
	size_t big = 1u << 20;
	_cleanup_free_ char *id = malloc(big + 1);
	memset(id, 'x', big);
	id[big] = '\0';
	int r = 0, sent = 0;
	while (sent < 40 && (r = send_event(events_stream, id)) == 0)
		sent++;
	assert_int_equal(r, -ENOBUFS);
	assert_true(sent >= 8 && sent <= 10);
	grpc_stream_finish(events_stream, ENOSPC, "the client does not read");
	run_calls(f); /* reading now, the client gets everything queued, then the status */
	assert_status(&f->calls[0], 200, GRPC_RESOURCE_EXHAUSTED);
	assert_int_equal(count_messages(&f->calls[0]), (size_t)sent + 2);
	assert_int_equal(events_closed, 1);
}

static void test_client_reset(void **state)
{
	struct fx *f = *state;
	/* a stream the client resets: close_cb, and sending fails from then on */
	Runtime__V1__GetEventsRequest ereq = RUNTIME__V1__GET_EVENTS_REQUEST__INIT;
	struct call *c = submit(f, PATH_EVENTS, &ereq.base, NULL);
	for (int i = 0; i < 20 && !events_stream; i++)
		pump(f);
	assert_non_null(events_stream);
	nghttp2_submit_rst_stream(f->client, NGHTTP2_FLAG_NONE, c->id, NGHTTP2_CANCEL);
	/* a unary call on a worker that the client resets */
	Runtime__V1__StopContainerRequest req = RUNTIME__V1__STOP_CONTAINER_REQUEST__INIT;
	req.timeout = 200;
	struct call *d = submit(f, PATH_SLOW, &req.base, NULL);
	for (int i = 0; i < 20; i++)
		pump(f);
	assert_int_equal(events_closed, 1);
	nghttp2_submit_rst_stream(f->client, NGHTTP2_FLAG_NONE, d->id, NGHTTP2_CANCEL);
	pump(f);
	run_calls(f);
	uint64_t end = now_ms() + 5000;
	while (atomic_load(&slow_done) < 1 && now_ms() < end)
		pump(f);
	for (int i = 0; i < 20; i++)
		pump(f);
	assert_int_equal(d->grpc_status, -1); /* nothing came after the reset */
	struct call *e = submit_version(f, "after");
	run_calls(f);
	assert_status(e, 200, GRPC_OK);
}

static void test_close_with_calls_in_flight(void **state)
{
	struct fx *f = *state;
	Runtime__V1__StopContainerRequest req = RUNTIME__V1__STOP_CONTAINER_REQUEST__INIT;
	req.timeout = 100;
	for (int i = 0; i < 5; i++)
		submit(f, PATH_SLOW, &req.base, "10S");
	Runtime__V1__GetEventsRequest ereq = RUNTIME__V1__GET_EVENTS_REQUEST__INIT;
	submit(f, PATH_EVENTS, &ereq.base, "10S");
	for (int i = 0; i < 20; i++)
		pump(f);
	assert_non_null(events_stream);
	grpc_conn_close(f->conn);
	f->conn = NULL;
	assert_int_equal(events_closed, 1);
	close_loop(f); /* workers finish into a closed connection; ASan checks the rest */
	assert_int_equal(atomic_load(&slow_done), 5);
	assert_int_equal(uv_loop_init(&f->loop), 0);
}

static void test_goaway(void **state)
{
	struct fx *f = *state;
	struct call *c = submit_version(f, "v1");
	run_calls(f);
	assert_status(c, 200, GRPC_OK);
	nghttp2_submit_goaway(f->client, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
	nghttp2_session_terminate_session(f->client, NGHTTP2_NO_ERROR);
	int r = 0;
	for (int i = 0; i < 10 && r == 0; i++)
		r = pump(f);
	assert_true(r < 0 || f->io_closed); /* the session is finished: the owner closes */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unary_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_method, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_content_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compressed_encoding, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_http2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_streaming, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stream_not_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_with_calls_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_goaway, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
