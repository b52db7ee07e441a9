/* libFuzzer target: the gRPC request decoder (cri/grpc.c). The input is what a client sends after
 * the HTTP/2 preface: frames (SETTINGS, HEADERS with HPACK, DATA carrying length-prefixed
 * protobuf messages, RST_STREAM, GOAWAY...). They go to a grpc_conn serving a small table of
 * handlers that use the CRI's own messages (unary ones on the worker pool, and a server-streaming
 * one); the loop then runs until every call is done and the connection is closed. The seeds in
 * tests/fuzz/corpus-grpc are valid calls (tests/fuzz/make-grpc-seeds.py). */
#include "cri/cri-api.pb-c.h"
#include "cri/grpc.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Version: echoes the request's version in a response. */
static int version_cb(void *ud, const ProtobufCMessage *req, uint8_t **ret_buf, size_t *ret_len,
		      struct berth_error **err)
{
	const Runtime__V1__VersionRequest *r = (const Runtime__V1__VersionRequest *)req;
	Runtime__V1__VersionResponse resp = RUNTIME__V1__VERSION_RESPONSE__INIT;
	resp.version = r->version;
	size_t len = runtime__v1__version_response__get_packed_size(&resp);
	if (!(*ret_buf = malloc(len ? len : 1)))
		return -ENOMEM;
	*ret_len = runtime__v1__version_response__pack(&resp, *ret_buf);
	return 0;
}

/* RunPodSandbox: walks the decoded config (a deep message) and fails with a message. */
static int run_pod_cb(void *ud, const ProtobufCMessage *req, uint8_t **ret_buf, size_t *ret_len,
		      struct berth_error **err)
{
	const Runtime__V1__RunPodSandboxRequest *r = (const Runtime__V1__RunPodSandboxRequest *)req;
	size_t labels = r->config ? r->config->n_labels : 0;
	return berth_error_set(err, EINVAL, "config: %zu labels, handler \"%s\"", labels,
			       r->runtime_handler);
}

static void events_close_cb(struct grpc_stream *s, void *ud)
{
}

/* GetContainerEvents: one event, then (every other call) the end of the stream. */
static int events_open(void *ud, const ProtobufCMessage *req, struct grpc_stream *s,
		       struct berth_error **err)
{
	static unsigned n;
	grpc_stream_set_close_cb(s, events_close_cb, NULL);
	Runtime__V1__ContainerEventResponse ev = RUNTIME__V1__CONTAINER_EVENT_RESPONSE__INIT;
	ev.container_id = "c";
	int r = grpc_stream_send(s, &ev.base);
	if (r < 0)
		return r;
	if (n++ % 2)
		grpc_stream_finish(s, 0, NULL);
	return 0;
}

static const struct grpc_method methods[] = {
	{ "/runtime.v1.RuntimeService/Version", &runtime__v1__version_request__descriptor,
	  version_cb, NULL, NULL },
	{ "/runtime.v1.RuntimeService/RunPodSandbox",
	  &runtime__v1__run_pod_sandbox_request__descriptor, run_pod_cb, NULL, NULL },
	{ "/runtime.v1.RuntimeService/GetContainerEvents", &runtime__v1__get_events_request__descriptor,
	  NULL, events_open, NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};
static const struct grpc_service_table table = { methods };

static int io_write(void *ud, const uint8_t *buf, size_t len)
{
	return 0; /* what the server answers is not checked here, only that it survives */
}

static void io_close(void *ud)
{
	*(int *)ud = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	static uv_loop_t loop;
	static int ready;
	if (!ready) {
		if (uv_loop_init(&loop) < 0)
			abort();
		ready = 1;
	}
	int closed = 0;
	struct grpc_conn_io io = { io_write, io_close, &closed };
	struct grpc_conn *c = NULL;
	struct berth_error *err = NULL;
	if (grpc_conn_new(&loop, &table, &io, &c, &err) < 0)
		abort();
	int r = grpc_conn_input(c, (const uint8_t *)preface, sizeof(preface) - 1);
	/* in two pieces, so frames split across reads are exercised too */
	size_t half = size / 2;
	if (r == 0 && !closed)
		r = grpc_conn_input(c, data, half);
	if (r == 0 && !closed)
		r = grpc_conn_input(c, data + half, size - half);
	uv_run(&loop, UV_RUN_DEFAULT); /* the handlers finish and answer (deadlines do not hold it) */
	grpc_conn_close(c);
	uv_run(&loop, UV_RUN_DEFAULT); /* timers close */
	return 0;
}
