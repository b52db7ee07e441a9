/* berthd's streaming server: see stream.h. One acceptor thread, one thread per session; the
 * token table and the per-client counts are the only shared state (one lock). */
#include "cri/stream.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "base/log.h"
#include "cri/websocket.h"
#include "shim/protocol.h"
#include "shim/shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define TOKEN_HEX 32
/* A client gets this long to send its upgrade request. */
#define HEAD_TIMEOUT_MS 10000
/* The largest WebSocket message a client may send (stdin arrives in pieces anyway). */
#define MAX_MESSAGE (1u << 20)
#define IO_CHUNK 32768

enum stream_kind { KIND_EXEC, KIND_ATTACH, KIND_PORTFORWARD };

static const char *const kind_names[] = { "exec", "attach", "portforward" };
static const char *const channel_protocols[] = { "v5.channel.k8s.io", "v4.channel.k8s.io", NULL };
static const char *const portforward_protocols[] = { "portforward.k8s.io", "v4.channel.k8s.io",
						     NULL };

/* What a URL was issued for. */
struct token {
	struct token *next;
	char hex[TOKEN_HEX + 1];
	enum stream_kind kind;
	char *id; /* container or pod */
	char **cmd;
	bool tty, in, out, errs;
	int32_t ports[STREAM_MAX_PORTS];
	size_t n_ports;
	uint64_t expires_ms;
};

struct client_count {
	char addr[INET6_ADDRSTRLEN];
	unsigned n;
};

struct stream_server {
	struct manager *m;
	int listen_fd;
	char *base_url;
	pthread_t acceptor;
	bool acceptor_started;
	unsigned url_timeout_ms, idle_timeout_ms, max_per_client;

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t idle;  /* signalled when sessions drops to 0 */
	struct token *tokens;
	struct client_count *clients;
	size_t n_clients, cap_clients;
	unsigned sessions;
	bool closing;
	int *session_fds; /* the client sockets of live sessions, to shut down at the end */
	size_t n_session_fds, cap_session_fds;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- tokens ---- */

static void token_free(struct token *t)
{
	if (!t)
		return;
	free(t->id);
	strv_free(t->cmd);
	free(t);
}

static int token_hex(char out[TOKEN_HEX + 1])
{
	uint8_t raw[TOKEN_HEX / 2];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -errno;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

/* Drops expired tokens; with the lock held. */
static void tokens_expire(struct stream_server *s, uint64_t now)
{
	for (struct token **p = &s->tokens; *p;) {
		struct token *t = *p;
		if (t->expires_ms <= now) {
			*p = t->next;
			token_free(t);
		} else {
			p = &t->next;
		}
	}
}

/* Files t and answers its URL; takes t (freed on error). */
static int token_issue(struct stream_server *s, struct token *t, char **ret_url,
		       struct berth_error **err)
{
	int r = token_hex(t->hex);
	if (r < 0) {
		token_free(t);
		return berth_error_setsys(err, -r, "stream token");
	}
	char *url = NULL;
	if (asprintf(&url, "%s/%s/%s", s->base_url, kind_names[t->kind], t->hex) < 0) {
		token_free(t);
		return -ENOMEM;
	}
	uint64_t now = now_ms();
	t->expires_ms = now + s->url_timeout_ms;
	pthread_mutex_lock(&s->lock);
	tokens_expire(s, now);
	t->next = s->tokens;
	s->tokens = t;
	pthread_mutex_unlock(&s->lock);
	*ret_url = url;
	return 0;
}

/* The token of that kind, taken out of the table (single use); NULL when unknown, used or
 * expired. */
static struct token *token_take(struct stream_server *s, enum stream_kind kind, const char *hex)
{
	struct token *found = NULL;
	pthread_mutex_lock(&s->lock);
	tokens_expire(s, now_ms());
	for (struct token **p = &s->tokens; *p; p = &(*p)->next) {
		if (strcmp((*p)->hex, hex) == 0 && (*p)->kind == kind) {
			found = *p;
			*p = found->next;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return found;
}

/* ---- issuing URLs ---- */

static char **strv_copy(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	char **out = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; out && i < n; i++)
		if (!(out[i] = strdup(v[i]))) {
			strv_free(out);
			return NULL;
		}
	return out;
}

static int check_streams(const struct stream_exec *req, struct berth_error **err)
{
	if (!req->container_id || !req->container_id[0])
		return berth_error_set(err, EINVAL, "container_id: required");
	if (req->tty && req->errs)
		return berth_error_set(err, EINVAL,
				       "tty and stderr cannot both be true (a terminal has one "
				       "output stream)");
	if (!req->in && !req->out && !req->errs)
		return berth_error_set(err, EINVAL,
				       "one of stdin, stdout and stderr must be true");
	return 0;
}

static int stdio_url(struct stream_server *s, enum stream_kind kind, const struct stream_exec *req,
		     char **ret_url, struct berth_error **err)
{
	int r = check_streams(req, err);
	if (r < 0)
		return r;
	if (kind == KIND_EXEC && (!req->cmd || !req->cmd[0] || !req->cmd[0][0]))
		return berth_error_set(err, EINVAL, "cmd: required (the program and its arguments)");
	if ((r = manager_container_stream_check(s->m, req->container_id, kind == KIND_ATTACH,
						req->tty, req->in, err)) < 0)
		return r;
	struct token *t = calloc(1, sizeof(*t));
	if (!t || !(t->id = strdup(req->container_id)) ||
	    (kind == KIND_EXEC && !(t->cmd = strv_copy(req->cmd)))) {
		token_free(t);
		return -ENOMEM;
	}
	t->kind = kind;
	t->tty = req->tty;
	t->in = req->in;
	t->out = req->out;
	t->errs = req->errs;
	return token_issue(s, t, ret_url, err);
}

int stream_server_exec_url(struct stream_server *s, const struct stream_exec *req, char **ret_url,
			   struct berth_error **err)
{
	return stdio_url(s, KIND_EXEC, req, ret_url, err);
}

int stream_server_attach_url(struct stream_server *s, const struct stream_exec *req,
			     char **ret_url, struct berth_error **err)
{
	return stdio_url(s, KIND_ATTACH, req, ret_url, err);
}

/* The pod's network namespace, when it is ready (malloc'd path). */
static int pod_netns(struct manager *m, const char *pod_id, char **ret, struct berth_error **err)
{
	struct manager_pod p = { 0 };
	int r = manager_pod_status(m, pod_id, &p, err);
	if (r < 0)
		return r;
	if (!p.rec.state || strcmp(p.rec.state, "ready") != 0)
		r = berth_error_set(err, EBUSY, "pod %s is not ready", pod_id);
	else if (!p.netns_path)
		r = berth_error_set(err, EINVAL, "pod %s has no network namespace of its own",
				    pod_id);
	else if (!(*ret = strdup(p.netns_path)))
		r = -ENOMEM;
	manager_pod_clear(&p);
	return r;
}

int stream_server_port_forward_url(struct stream_server *s, const char *pod_id,
				   const int32_t *ports, size_t n_ports, char **ret_url,
				   struct berth_error **err)
{
	if (!pod_id || !pod_id[0])
		return berth_error_set(err, EINVAL, "pod_sandbox_id: required");
	if (n_ports == 0 || n_ports > STREAM_MAX_PORTS)
		return berth_error_set(err, EINVAL, "port: 1 to %d ports (got %zu)",
				       STREAM_MAX_PORTS, n_ports);
	for (size_t i = 0; i < n_ports; i++)
		if (ports[i] < 1 || ports[i] > 65535)
			return berth_error_set(err, EINVAL, "port[%zu]: %d is not a TCP port", i,
					       (int)ports[i]);
	_cleanup_free_ char *ns = NULL;
	int r = pod_netns(s->m, pod_id, &ns, err);
	if (r < 0)
		return r;
	struct token *t = calloc(1, sizeof(*t));
	if (!t || !(t->id = strdup(pod_id))) {
		token_free(t);
		return -ENOMEM;
	}
	t->kind = KIND_PORTFORWARD;
	memcpy(t->ports, ports, n_ports * sizeof(*ports));
	t->n_ports = n_ports;
	return token_issue(s, t, ret_url, err);
}

/* ---- WebSocket output (server frames are not masked) ---- */

static int write_iov(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t k = writev(fd, iov, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		while (n > 0 && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

static int ws_send(int fd, enum ws_opcode op, const void *payload, size_t len)
{
	uint8_t h[WS_MAX_FRAME_HEADER];
	struct iovec iov[2] = { { h, ws_frame_header(h, true, op, len, NULL) },
				{ (void *)payload, len } };
	return write_iov(fd, iov, len ? 2 : 1);
}

/* One binary message on a channel: the channel byte, then the payload. */
static int ws_send_channel(int fd, uint8_t channel, const void *payload, size_t len)
{
	uint8_t h[WS_MAX_FRAME_HEADER];
	struct iovec iov[3] = { { h, ws_frame_header(h, true, WS_OP_BINARY, len + 1, NULL) },
				{ &channel, 1 },
				{ (void *)payload, len } };
	return write_iov(fd, iov, len ? 3 : 2);
}

static void ws_send_close(int fd, uint16_t code, const char *reason)
{
	uint8_t p[125];
	(void)ws_send(fd, WS_OP_CLOSE, p, ws_close_payload(p, code, reason));
}

static void http_refuse(int fd, int status, const char *body)
{
	_cleanup_free_ char *resp = ws_response_error(status, body);
	if (resp)
		(void)write_all(fd, resp, strlen(resp));
}

/* ---- WebSocket input ---- */

/* Bytes from the client, and the message being put together from its fragments. */
struct ws_in {
	uint8_t *buf;
	size_t len, cap;
	uint8_t *msg;
	size_t msg_len;
	enum ws_opcode msg_op;
	bool in_message;
};

static void ws_in_clear(struct ws_in *in)
{
	free(in->buf);
	free(in->msg);
	*in = (struct ws_in){ 0 };
}

/* Reads what the socket has: 1 read something, 0 end of stream, < 0 error. */
static int ws_in_fill(int fd, struct ws_in *in)
{
	if (in->cap - in->len < IO_CHUNK) {
		size_t cap = in->cap ? in->cap * 2 : 2 * IO_CHUNK;
		if (cap > MAX_MESSAGE + 2 * IO_CHUNK)
			return -EMSGSIZE;
		uint8_t *b = realloc(in->buf, cap);
		if (!b)
			return -ENOMEM;
		in->buf = b;
		in->cap = cap;
	}
	ssize_t n = read(fd, in->buf + in->len, in->cap - in->len);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : -errno;
	in->len += (size_t)n;
	return n > 0;
}

/* What one whole message (or control frame) is, for the session. */
struct ws_message {
	enum ws_opcode op;
	const uint8_t *data;
	size_t len;
};

/* The next complete message or control frame in the buffer: 1 with *ret set (valid until the
 * next call), 0 when more bytes are needed, < 0 on a protocol error. */
static int ws_in_next(struct ws_in *in, size_t *consumed, struct ws_message *ret)
{
	for (;;) {
		struct ws_frame f;
		ssize_t k = ws_frame_parse(in->buf + *consumed, in->len - *consumed, true,
					   MAX_MESSAGE, &f);
		if (k <= 0)
			return (int)k;
		*consumed += (size_t)k;
		if (f.opcode >= WS_OP_CLOSE) {
			*ret = (struct ws_message){ f.opcode, f.payload, f.len };
			return 1;
		}
		if ((f.opcode == WS_OP_CONTINUATION) != in->in_message)
			return -EPROTO; /* a continuation out of a message, or a message inside one */
		if (!in->in_message)
			in->msg_op = f.opcode;
		if (in->msg_len + f.len > MAX_MESSAGE)
			return -EMSGSIZE;
		uint8_t *m = realloc(in->msg, in->msg_len + f.len + 1);
		if (!m)
			return -ENOMEM;
		in->msg = m;
		if (f.len)
			memcpy(in->msg + in->msg_len, f.payload, f.len);
		in->msg_len += f.len;
		in->in_message = !f.fin;
		if (f.fin) {
			*ret = (struct ws_message){ in->msg_op, in->msg, in->msg_len };
			in->msg_len = 0;
			return 1;
		}
	}
}

/* Drops the consumed bytes from the front of the buffer. */
static void ws_in_shift(struct ws_in *in, size_t consumed)
{
	if (consumed && consumed < in->len)
		memmove(in->buf, in->buf + consumed, in->len - consumed);
	in->len -= consumed < in->len ? consumed : in->len;
}

/* ---- a session ---- */

/* Frames for the shim, written as it takes them: a session that blocked writing stdin while the
 * shim blocked writing output to it would hold both forever. Above QUEUE_HIGH bytes the client
 * is not read (its TCP window fills: backpressure). */
#define QUEUE_HIGH (1u << 20)

struct outq {
	uint8_t *buf;
	size_t len, cap;
};

static int outq_frame(struct outq *q, int stream, const void *payload, size_t n)
{
	if (q->cap - q->len < SHIM_FRAME_HEADER + n) {
		size_t cap = q->len + SHIM_FRAME_HEADER + n + IO_CHUNK;
		uint8_t *b = realloc(q->buf, cap);
		if (!b)
			return -ENOMEM;
		q->buf = b;
		q->cap = cap;
	}
	uint8_t *h = q->buf + q->len;
	shim_frame_header(h, stream, n);
	if (n)
		memcpy(h + SHIM_FRAME_HEADER, payload, n);
	q->len += SHIM_FRAME_HEADER + n;
	return 0;
}

/* Writes what the socket takes now; -errno when the shim is gone. */
static int outq_flush(int fd, struct outq *q)
{
	while (q->len) {
		ssize_t k = send(fd, q->buf, q->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return errno == EAGAIN ? 0 : -errno;
		memmove(q->buf, q->buf + k, q->len - (size_t)k);
		q->len -= (size_t)k;
	}
	return 0;
}

struct session {
	struct stream_server *s;
	int fd;
	char peer[INET6_ADDRSTRLEN];
	struct token *t;
	bool v5;
	struct ws_in in;
	uint64_t last_ms;  /* the last traffic either way */
	bool shim_closed;  /* a write to the shim failed: its exit frame is what is left to read */
	struct outq to_shim;
	unsigned cols, rows; /* a tty exec's first size, when the client sent it at once */
};

/* What a message handler tells the loop. */
enum verdict { GO_ON, END };

/* Handles the control frames every session treats alike; END for a close (answered). */
static enum verdict control_frame(struct session *se, const struct ws_message *msg)
{
	if (msg->op == WS_OP_PING) {
		(void)ws_send(se->fd, WS_OP_PONG, msg->data, msg->len);
		return GO_ON;
	}
	if (msg->op == WS_OP_PONG)
		return GO_ON;
	ws_send_close(se->fd, WS_CLOSE_NORMAL, "");
	return END;
}

/* metav1.Status on the error channel: how the process ended. */
static void send_status(struct session *se, const struct shim_status *st, const char *failure)
{
	struct json_writer *w = bjson_writer_new(false);
	bjson_writer_begin_object(w);
	bjson_writer_key(w, "metadata");
	bjson_writer_begin_object(w);
	bjson_writer_end_object(w);
	int code = st ? (st->signal ? 128 + st->signal : st->exit_code) : -1;
	if (!failure && code == 0) {
		bjson_writer_kv_string(w, "status", "Success");
	} else if (!failure) {
		char msg[96], num[16];
		snprintf(msg, sizeof(msg),
			 "command terminated with non-zero exit code: exit status %d", code);
		snprintf(num, sizeof(num), "%d", code);
		bjson_writer_kv_string(w, "status", "Failure");
		bjson_writer_kv_string(w, "message", msg);
		bjson_writer_kv_string(w, "reason", "NonZeroExitCode");
		bjson_writer_key(w, "details");
		bjson_writer_begin_object(w);
		bjson_writer_key(w, "causes");
		bjson_writer_begin_array(w);
		bjson_writer_begin_object(w);
		bjson_writer_kv_string(w, "reason", "ExitCode");
		bjson_writer_kv_string(w, "message", num);
		bjson_writer_end_object(w);
		bjson_writer_end_array(w);
		bjson_writer_end_object(w);
	} else {
		bjson_writer_kv_string(w, "status", "Failure");
		bjson_writer_kv_string(w, "message", failure);
	}
	bjson_writer_end_object(w);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if (bjson_writer_finish(w, &text, &len) == 0)
		(void)ws_send_channel(se->fd, SHIM_STREAM_EXIT, text, len);
}

/* A resize message's payload, {"Width":W,"Height":H}: false when it is not one (then it is
 * dropped, as kubelet drops it). */
static bool client_size(const uint8_t *data, size_t len, unsigned *ret_cols, unsigned *ret_rows)
{
	_cleanup_free_ char *text = strndup((const char *)data, len);
	_cleanup_(bjson_freep) struct json *j = NULL;
	uint64_t wd = 0, ht = 0;
	if (!text || bjson_parse(text, &j, NULL) < 0 ||
	    !bjson_uint64(bjson_object_get(j, "Width"), &wd) ||
	    !bjson_uint64(bjson_object_get(j, "Height"), &ht) || wd > 65535 || ht > 65535)
		return false;
	*ret_cols = (unsigned)wd;
	*ret_rows = (unsigned)ht;
	return true;
}

/* The client's size as the shim's {"width":W,"height":H}. */
static int forward_resize(struct outq *q, const uint8_t *data, size_t len)
{
	unsigned cols = 0, rows = 0;
	if (!client_size(data, len, &cols, &rows))
		return 0;
	char buf[64];
	int n = snprintf(buf, sizeof(buf), "{\"width\":%u,\"height\":%u}", cols, rows);
	return outq_frame(q, SHIM_STREAM_RESIZE, buf, (size_t)n);
}

/* A client message for an exec or attach: stdin, resize, or v5's close of stdin, queued for the
 * shim. Once the shim refuses a write (the process has ended), input is dropped: the exit frame
 * still comes. */
static enum verdict stdio_client_message(struct session *se, const struct ws_message *msg)
{
	if (msg->op >= WS_OP_CLOSE)
		return control_frame(se, msg);
	if (msg->op != WS_OP_BINARY || msg->len == 0 || se->shim_closed)
		return GO_ON; /* text frames belong to the base64 protocols, which are not served */
	uint8_t ch = msg->data[0];
	const uint8_t *p = msg->data + 1;
	size_t n = msg->len - 1;
	int r = 0;
	if (ch == SHIM_STREAM_STDIN && se->t->in && n)
		r = outq_frame(&se->to_shim, SHIM_STREAM_STDIN, p, n);
	else if (ch == SHIM_STREAM_RESIZE && se->t->tty)
		r = forward_resize(&se->to_shim, p, n);
	else if (ch == 255 && se->v5 && n == 1 && p[0] == SHIM_STREAM_STDIN && se->t->in)
		r = outq_frame(&se->to_shim, SHIM_STREAM_CLOSE_STDIN, NULL, 0);
	return r < 0 ? END : GO_ON;
}

/* A frame from the shim: output goes to its channel; the exit ends the session. */
static enum verdict stdio_shim_frame(struct session *se, int shim_fd)
{
	int stream = 0;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = shim_frame_read(shim_fd, &stream, &buf, &len, NULL);
	if (r < 0) {
		send_status(se, NULL, se->t->kind == KIND_EXEC
					      ? "the exec's stream ended without an exit status"
					      : "the container's stream ended");
		ws_send_close(se->fd, WS_CLOSE_NORMAL, "");
		return END;
	}
	if ((stream == SHIM_STREAM_STDOUT && se->t->out) ||
	    (stream == SHIM_STREAM_STDERR && se->t->errs)) {
		if (ws_send_channel(se->fd, (uint8_t)stream, buf, len) < 0)
			return END;
	} else if (stream == SHIM_STREAM_EXIT) {
		struct shim_status st = { 0 };
		if (shim_exit_frame_parse(buf, len, &st, NULL) < 0)
			send_status(se, NULL, "the exit status could not be read");
		else
			send_status(se, &st, NULL);
		ws_send_close(se->fd, WS_CLOSE_NORMAL, "");
		return END;
	}
	return GO_ON;
}

/* Milliseconds until the idle timeout (at least 1), or 0 when it has passed. */
static int idle_left(const struct session *se)
{
	uint64_t now = now_ms(), end = se->last_ms + se->s->idle_timeout_ms;
	if (now >= end)
		return 0;
	return end - now > INT32_MAX ? INT32_MAX : (int)(end - now);
}

/* Reads from the client and hands each complete message to fn; END when the session is over. */
static enum verdict client_input(struct session *se,
				 enum verdict (*fn)(struct session *se, void *opaque,
						    const struct ws_message *msg),
				 void *opaque)
{
	int r = ws_in_fill(se->fd, &se->in);
	if (r <= 0) {
		if (r < 0 && r != -ECONNRESET)
			log_debug("stream %s: from %s: %s", kind_names[se->t->kind], se->peer,
				  strerror(-r));
		return END;
	}
	size_t consumed = 0;
	struct ws_message msg;
	while ((r = ws_in_next(&se->in, &consumed, &msg)) > 0)
		if (fn(se, opaque, &msg) == END)
			return END;
	if (r < 0) {
		ws_send_close(se->fd, r == -EMSGSIZE ? WS_CLOSE_TOO_BIG : WS_CLOSE_PROTOCOL_ERROR,
			      strerror(-r));
		return END;
	}
	ws_in_shift(&se->in, consumed);
	return GO_ON;
}

static enum verdict stdio_message_cb(struct session *se, void *opaque, const struct ws_message *msg)
{
	return stdio_client_message(se, msg);
}

/* exec and attach: the client and the shim's frames, until the process ends or a side goes. */
static void bridge_stdio(struct session *se, int shim_fd)
{
	struct pollfd p[2] = { { .fd = se->fd }, { .fd = shim_fd } };
	for (;;) {
		if (outq_flush(shim_fd, &se->to_shim) < 0) {
			se->shim_closed = true; /* the process is gone: its exit frame is still to come */
			se->to_shim.len = 0;
		}
		p[0].events = se->to_shim.len < QUEUE_HIGH ? POLLIN : 0;
		p[1].events = POLLIN | (se->to_shim.len ? POLLOUT : 0);
		int left = idle_left(se);
		if (left == 0) {
			ws_send_close(se->fd, WS_CLOSE_GOING_AWAY, "idle timeout");
			return;
		}
		int r = poll(p, 2, left);
		if (r < 0 && errno != EINTR)
			return;
		if (r <= 0)
			continue;
		se->last_ms = now_ms();
		if ((p[1].revents & ~POLLOUT) && stdio_shim_frame(se, shim_fd) == END)
			return;
		if (p[0].revents && client_input(se, stdio_message_cb, NULL) == END)
			return;
	}
}

/* A terminal client sends its size first thing: an exec's process is made with that size, so a
 * program that asks at once (stty size, a shell's prompt) never sees 0x0. Waits a moment for it;
 * a first message that is something else is kept for after the start. */
#define FIRST_RESIZE_WAIT_MS 100

static bool first_resize(struct session *se, struct ws_message *ret_pending, uint8_t **ret_copy)
{
	struct pollfd p = { .fd = se->fd, .events = POLLIN };
	uint64_t end = now_ms() + FIRST_RESIZE_WAIT_MS;
	size_t consumed = 0;
	struct ws_message msg;
	int r = 0;
	while ((r = ws_in_next(&se->in, &consumed, &msg)) == 0) {
		uint64_t now = now_ms();
		if (now >= end || poll(&p, 1, (int)(end - now)) <= 0 || ws_in_fill(se->fd, &se->in) <= 0)
			return false;
	}
	if (r < 0)
		return false;
	unsigned cols = 0, rows = 0;
	bool resize = msg.op == WS_OP_BINARY && msg.len > 1 && msg.data[0] == SHIM_STREAM_RESIZE &&
		      client_size(msg.data + 1, msg.len - 1, &cols, &rows) && cols && rows;
	if (resize) {
		se->cols = cols;
		se->rows = rows;
	} else if ((*ret_copy = malloc(msg.len + 1))) {
		if (msg.len)
			memcpy(*ret_copy, msg.data, msg.len);
		*ret_pending = (struct ws_message){ msg.op, *ret_copy, msg.len };
	}
	ws_in_shift(&se->in, consumed);
	return resize;
}

static void run_exec_or_attach(struct session *se)
{
	struct token *t = se->t;
	_cleanup_error_ struct berth_error *e = NULL;
	_cleanup_close_ int shim_fd = -EBADF;
	_cleanup_free_ uint8_t *pending_copy = NULL;
	struct ws_message pending = { .op = WS_OP_CONTINUATION };
	if (t->kind == KIND_EXEC && t->tty)
		(void)first_resize(se, &pending, &pending_copy);
	const struct manager_exec x = { .argv = t->cmd, .tty = t->tty, .in = t->in,
					.cols = se->cols, .rows = se->rows };
	int r = t->kind == KIND_EXEC
			? manager_container_exec_open(se->s->m, t->id, &x, &shim_fd, &e)
			: manager_container_attach_open(se->s->m, t->id, t->in, t->out, t->errs,
							&shim_fd, &e);
	if (r < 0) {
		send_status(se, NULL, e ? e->msg : strerror(-r));
		ws_send_close(se->fd, WS_CLOSE_NORMAL, "");
		return;
	}
	if (pending_copy && stdio_client_message(se, &pending) == END)
		return;
	bridge_stdio(se, shim_fd);
}

/* ---- port forwarding ---- */

/* A TCP connection to 127.0.0.1:port in the network namespace at ns_path: the calling thread
 * (the session's own) enters it and comes back, so the socket belongs to the pod's namespace. */
static int connect_in_netns(const char *ns_path, const char *pod_id, int port, int *ret,
			    struct berth_error **err)
{
	_cleanup_close_ int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int target = open(ns_path, O_RDONLY | O_CLOEXEC);
	if (self < 0 || target < 0)
		return berth_error_setsys(err, errno, "%s", self < 0 ? "own network namespace"
								     : ns_path);
	if (setns(target, CLONE_NEWNET) < 0)
		return berth_error_setsys(err, errno, "entering %s", ns_path);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int e = fd < 0 ? errno : 0;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		e = errno;
		close(fd);
		fd = -1;
	}
	if (setns(self, CLONE_NEWNET) < 0) {
		/* this thread would go on in the pod's namespace: it must not go on at all */
		log_error("stream: cannot return to berthd's network namespace: %m");
		abort();
	}
	if (fd < 0)
		return berth_error_setsys(err, e, "connect to port %d in pod %s", port, pod_id);
	*ret = fd;
	return 0;
}

struct forward {
	int fds[STREAM_MAX_PORTS]; /* -EBADF once closed */
	size_t open;
};

static enum verdict forward_message_cb(struct session *se, void *opaque,
				       const struct ws_message *msg)
{
	struct forward *fw = opaque;
	if (msg->op >= WS_OP_CLOSE)
		return control_frame(se, msg);
	if (msg->op != WS_OP_BINARY || msg->len < 2)
		return GO_ON;
	size_t ch = msg->data[0];
	/* data channels are even; what a client sends on an error channel means nothing */
	if (ch % 2 || ch / 2 >= se->t->n_ports || fw->fds[ch / 2] < 0)
		return GO_ON;
	if (write_all(fw->fds[ch / 2], msg->data + 1, msg->len - 1) < 0) {
		closep(&fw->fds[ch / 2]);
		fw->fds[ch / 2] = -EBADF;
		fw->open--;
	}
	return fw->open ? GO_ON : END;
}

/* Pod side readable: its bytes on the data channel; at its end the port is done. */
static enum verdict forward_pod_output(struct session *se, struct forward *fw, size_t i)
{
	char buf[IO_CHUNK];
	ssize_t n = read(fw->fds[i], buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return GO_ON;
	if (n > 0)
		return ws_send_channel(se->fd, (uint8_t)(2 * i), buf, (size_t)n) < 0 ? END : GO_ON;
	closep(&fw->fds[i]);
	fw->fds[i] = -EBADF;
	fw->open--;
	return fw->open ? GO_ON : END;
}

static void bridge_ports(struct session *se, struct forward *fw)
{
	struct pollfd p[1 + STREAM_MAX_PORTS];
	size_t n = se->t->n_ports;
	while (fw->open) {
		p[0] = (struct pollfd){ .fd = se->fd, .events = POLLIN };
		for (size_t i = 0; i < n; i++)
			p[1 + i] = (struct pollfd){ .fd = fw->fds[i] >= 0 ? fw->fds[i] : -1,
						    .events = POLLIN };
		int left = idle_left(se);
		if (left == 0) {
			ws_send_close(se->fd, WS_CLOSE_GOING_AWAY, "idle timeout");
			return;
		}
		int r = poll(p, 1 + n, left);
		if (r < 0 && errno != EINTR)
			return;
		if (r <= 0)
			continue;
		se->last_ms = now_ms();
		for (size_t i = 0; i < n; i++)
			if (p[1 + i].revents && forward_pod_output(se, fw, i) == END)
				goto done;
		if (p[0].revents && client_input(se, forward_message_cb, fw) == END)
			return;
	}
done:
	ws_send_close(se->fd, WS_CLOSE_NORMAL, "");
}

static void run_port_forward(struct session *se)
{
	struct token *t = se->t;
	struct forward fw = { .open = 0 };
	_cleanup_free_ char *ns = NULL;
	_cleanup_error_ struct berth_error *e = NULL;
	int r = pod_netns(se->s->m, t->id, &ns, &e);
	for (size_t i = 0; i < t->n_ports; i++) {
		uint8_t port[2] = { (uint8_t)(t->ports[i] & 0xff), (uint8_t)(t->ports[i] >> 8) };
		fw.fds[i] = -EBADF;
		/* kubelet's protocol: each channel starts with its port, little-endian */
		(void)ws_send_channel(se->fd, (uint8_t)(2 * i), port, 2);
		(void)ws_send_channel(se->fd, (uint8_t)(2 * i + 1), port, 2);
		_cleanup_error_ struct berth_error *ce = NULL;
		if (r >= 0 && connect_in_netns(ns, t->id, t->ports[i], &fw.fds[i], &ce) >= 0) {
			fw.open++;
			continue;
		}
		const char *why = e ? e->msg : ce ? ce->msg : "port forward failed";
		(void)ws_send_channel(se->fd, (uint8_t)(2 * i + 1), why, strlen(why));
	}
	if (fw.open)
		bridge_ports(se, &fw);
	else
		ws_send_close(se->fd, WS_CLOSE_NORMAL, "");
	for (size_t i = 0; i < t->n_ports; i++)
		closep(&fw.fds[i]);
}

/* ---- the upgrade ---- */

/* The request head, read within HEAD_TIMEOUT_MS; bytes after it stay in se->in. */
static int read_head(struct session *se, size_t *ret_len)
{
	uint64_t end = now_ms() + HEAD_TIMEOUT_MS;
	for (;;) {
		ssize_t h = ws_head_length((const char *)se->in.buf, se->in.len);
		if (h > 0) {
			*ret_len = (size_t)h;
			return 0;
		}
		if (h < 0)
			return (int)h;
		uint64_t now = now_ms();
		if (now >= end)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = se->fd, .events = POLLIN };
		int r = poll(&p, 1, (int)(end - now));
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0 && (r = ws_in_fill(se->fd, &se->in)) <= 0)
			return r < 0 ? r : -ECONNRESET;
	}
}

/* The kind and the token from the request line's target: /<kind>/<token>[?query]. */
static int route(const char *head, enum stream_kind *ret_kind, char hex[TOKEN_HEX + 1],
		 const char **ret_query)
{
	if (strncmp(head, "GET /", 5) != 0)
		return -EINVAL;
	const char *p = head + 5;
	for (size_t k = 0; k < 3; k++) {
		size_t n = strlen(kind_names[k]);
		if (strncmp(p, kind_names[k], n) != 0 || p[n] != '/')
			continue;
		const char *tok = p + n + 1;
		size_t len = strspn(tok, "0123456789abcdef");
		if (len != TOKEN_HEX || (tok[len] != ' ' && tok[len] != '?'))
			return -ENOENT;
		memcpy(hex, tok, TOKEN_HEX);
		hex[TOKEN_HEX] = '\0';
		*ret_kind = (enum stream_kind)k;
		*ret_query = tok[len] == '?' ? tok + len + 1 : NULL;
		return 0;
	}
	return -ENOENT;
}

/* ?port=N&port=M narrows a port forward to those of its ports (kubelet's clients name them). */
static int narrow_ports(struct token *t, const char *query)
{
	if (!query)
		return 0;
	int32_t keep[STREAM_MAX_PORTS];
	size_t n = 0;
	for (const char *q = query; *q && *q != ' ';) {
		size_t len = strcspn(q, "& ");
		if (len > 5 && strncmp(q, "port=", 5) == 0) {
			long v = strtol(q + 5, NULL, 10);
			bool known = false;
			for (size_t i = 0; i < t->n_ports; i++)
				known = known || t->ports[i] == v;
			if (!known || n == STREAM_MAX_PORTS)
				return -EINVAL;
			keep[n++] = (int32_t)v;
		}
		q += len + (q[len] == '&');
	}
	if (n) {
		memcpy(t->ports, keep, n * sizeof(*keep));
		t->n_ports = n;
	}
	return 0;
}

/* Reads and answers the upgrade request; on success se->t is the session's token. */
static int upgrade(struct session *se)
{
	size_t head_len = 0;
	int r = read_head(se, &head_len);
	if (r < 0) {
		if (r == -E2BIG)
			http_refuse(se->fd, 431, "request head too large");
		return r;
	}
	_cleanup_free_ char *head = strndup((const char *)se->in.buf, head_len);
	enum stream_kind kind;
	char hex[TOKEN_HEX + 1];
	const char *query = NULL;
	if (!head)
		return -ENOMEM;
	if ((r = route(head, &kind, hex, &query)) < 0) {
		http_refuse(se->fd, r == -EINVAL ? 405 : 404,
			    r == -EINVAL ? "only GET upgrades to a stream" : "no such stream");
		return r;
	}
	const char *const *protocols = kind == KIND_PORTFORWARD ? portforward_protocols
								: channel_protocols;
	struct ws_request req = { 0 };
	int status = 400;
	_cleanup_error_ struct berth_error *e = NULL;
	if ((r = ws_request_parse(head, head_len, protocols, &req, &status, &e)) < 0) {
		http_refuse(se->fd, status, e ? e->msg : "bad upgrade request");
		return r;
	}
	se->t = token_take(se->s, kind, hex);
	if (!se->t) {
		ws_request_clear(&req);
		http_refuse(se->fd, 404, "stream token unknown, used or expired");
		return -ENOENT;
	}
	if (kind == KIND_PORTFORWARD && narrow_ports(se->t, query) < 0) {
		ws_request_clear(&req);
		http_refuse(se->fd, 400, "port: only the ports the URL was issued for");
		return -EINVAL;
	}
	se->v5 = req.protocol && strcmp(req.protocol, "v5.channel.k8s.io") == 0;
	_cleanup_free_ char *resp = ws_response_101(&req);
	ws_request_clear(&req);
	if (!resp || (r = write_all(se->fd, resp, strlen(resp))) < 0)
		return resp ? r : -ENOMEM;
	ws_in_shift(&se->in, head_len);
	return 0;
}

/* ---- sessions and the acceptor ---- */

static struct client_count *client_slot(struct stream_server *s, const char *addr)
{
	for (size_t i = 0; i < s->n_clients; i++)
		if (strcmp(s->clients[i].addr, addr) == 0)
			return &s->clients[i];
	if (s->n_clients == s->cap_clients) {
		size_t cap = s->cap_clients ? 2 * s->cap_clients : 8;
		struct client_count *v = realloc(s->clients, cap * sizeof(*v));
		if (!v)
			return NULL;
		s->clients = v;
		s->cap_clients = cap;
	}
	struct client_count *c = &s->clients[s->n_clients++];
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	c->n = 0;
	return c;
}

/* Counts a new session of the client in, unless it is at its limit or the server closes. */
static bool session_admit(struct stream_server *s, struct session *se)
{
	pthread_mutex_lock(&s->lock);
	struct client_count *c = s->closing ? NULL : client_slot(s, se->peer);
	bool ok = c && c->n < s->max_per_client;
	if (ok && s->n_session_fds == s->cap_session_fds) {
		size_t cap = s->cap_session_fds ? 2 * s->cap_session_fds : 16;
		int *v = realloc(s->session_fds, cap * sizeof(*v));
		ok = v != NULL;
		if (v) {
			s->session_fds = v;
			s->cap_session_fds = cap;
		}
	}
	if (ok) {
		c->n++;
		s->sessions++;
		s->session_fds[s->n_session_fds++] = se->fd;
	}
	pthread_mutex_unlock(&s->lock);
	return ok;
}

static void session_leave(struct stream_server *s, struct session *se)
{
	pthread_mutex_lock(&s->lock);
	struct client_count *c = client_slot(s, se->peer);
	if (c && c->n)
		c->n--;
	for (size_t i = 0; i < s->n_session_fds; i++)
		if (s->session_fds[i] == se->fd) {
			s->session_fds[i] = s->session_fds[--s->n_session_fds];
			break;
		}
	if (--s->sessions == 0)
		pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
}

/* Closing a socket with unread input makes the kernel send a reset, which may overtake the
 * status and close frame still on their way: say we are done, read what is left (briefly),
 * then close. */
#define CLOSE_DRAIN_MS 1000

static void close_gracefully(int fd)
{
	(void)shutdown(fd, SHUT_WR);
	uint64_t end = now_ms() + CLOSE_DRAIN_MS;
	char buf[4096];
	for (uint64_t now = now_ms(); now < end; now = now_ms()) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, (int)(end - now)) <= 0 || read(fd, buf, sizeof(buf)) <= 0)
			break;
	}
	close(fd);
}

static void *session_thread(void *arg)
{
	struct session *se = arg;
	se->last_ms = now_ms();
	if (upgrade(se) == 0) {
		log_debug("stream %s for %s from %s", kind_names[se->t->kind], se->t->id, se->peer);
		if (se->t->kind == KIND_PORTFORWARD)
			run_port_forward(se);
		else
			run_exec_or_attach(se);
	}
	struct stream_server *s = se->s;
	session_leave(s, se);
	close_gracefully(se->fd);
	token_free(se->t);
	ws_in_clear(&se->in);
	free(se->to_shim.buf);
	free(se);
	return NULL;
}

static void peer_name(int fd, char out[INET6_ADDRSTRLEN])
{
	struct sockaddr_storage a;
	socklen_t len = sizeof(a);
	snprintf(out, INET6_ADDRSTRLEN, "?");
	if (getpeername(fd, (struct sockaddr *)&a, &len) < 0)
		return;
	if (a.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&a)->sin_addr, out, INET6_ADDRSTRLEN);
	else if (a.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a)->sin6_addr, out, INET6_ADDRSTRLEN);
}

static void start_session(struct stream_server *s, int fd)
{
	struct session *se = calloc(1, sizeof(*se));
	if (!se) {
		close(fd);
		return;
	}
	se->s = s;
	se->fd = fd;
	peer_name(fd, se->peer);
	if (!session_admit(s, se)) {
		http_refuse(fd, 429, "too many streams from this client");
		close(fd);
		free(se);
		return;
	}
	/* a client that stops reading must not hold a session's thread forever */
	struct timeval tv = { .tv_sec = (time_t)(s->idle_timeout_ms / 1000) };
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	pthread_attr_t attr;
	pthread_t th;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (pthread_create(&th, &attr, session_thread, se) != 0) {
		session_leave(s, se);
		close(fd);
		free(se);
	}
	pthread_attr_destroy(&attr);
}

static void *acceptor_thread(void *arg)
{
	struct stream_server *s = arg;
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0) {
			start_session(s, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE ||
		    errno == ENOBUFS || errno == ENOMEM) {
			if (errno != EINTR && errno != ECONNABORTED)
				usleep(100 * 1000); /* out of fds or memory: a breath, not a spin */
			continue;
		}
		return NULL; /* shut down by stream_server_free */
	}
}

static int listen_on(const struct berthd_config *cfg, int *ret_fd, unsigned *ret_port,
		     struct berth_error **err)
{
	struct sockaddr_storage a = { 0 };
	socklen_t len;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&a;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&a;
	if (inet_pton(AF_INET, cfg->stream_address, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)cfg->stream_port);
		len = sizeof(*a4);
	} else if (inet_pton(AF_INET6, cfg->stream_address, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)cfg->stream_port);
		len = sizeof(*a6);
	} else {
		return berth_error_set(err, EINVAL, "stream_address: \"%s\" is not an address",
				       cfg->stream_address);
	}
	_cleanup_close_ int fd = socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&a, len) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		return berth_error_setsys(err, errno, "streaming server on %s port %u",
					  cfg->stream_address, cfg->stream_port);
	*ret_port = ntohs(a.ss_family == AF_INET ? a4->sin_port : a6->sin6_port);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int stream_server_start(const struct berthd_config *cfg, struct manager *m,
			struct stream_server **ret, struct berth_error **err)
{
	struct stream_server *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*s = (struct stream_server){ .m = m,
				     .listen_fd = -EBADF,
				     .url_timeout_ms = cfg->stream_url_timeout * 1000,
				     .idle_timeout_ms = cfg->stream_idle_timeout * 1000,
				     .max_per_client = cfg->stream_max_per_client };
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);
	unsigned port = 0;
	int r = listen_on(cfg, &s->listen_fd, &port, err);
	bool v6 = strchr(cfg->stream_address, ':') != NULL;
	if (r >= 0 && asprintf(&s->base_url, v6 ? "http://[%s]:%u" : "http://%s:%u",
			       cfg->stream_address, port) < 0)
		r = -ENOMEM;
	if (r >= 0 && (r = -pthread_create(&s->acceptor, NULL, acceptor_thread, s)) < 0)
		berth_error_setsys(err, -r, "streaming server thread");
	s->acceptor_started = r >= 0;
	if (r < 0) {
		stream_server_free(s);
		return r;
	}
	log_info("streaming server on %s", s->base_url);
	*ret = s;
	return 0;
}

const char *stream_server_base_url(const struct stream_server *s)
{
	return s->base_url;
}

void stream_server_free(struct stream_server *s)
{
	if (!s)
		return;
	if (s->acceptor_started) {
		(void)shutdown(s->listen_fd, SHUT_RDWR); /* accept returns EINVAL */
		pthread_join(s->acceptor, NULL);
	}
	pthread_mutex_lock(&s->lock);
	s->closing = true;
	for (size_t i = 0; i < s->n_session_fds; i++)
		(void)shutdown(s->session_fds[i], SHUT_RDWR);
	while (s->sessions)
		pthread_cond_wait(&s->idle, &s->lock);
	pthread_mutex_unlock(&s->lock);
	while (s->tokens) {
		struct token *t = s->tokens;
		s->tokens = t->next;
		token_free(t);
	}
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	free(s->clients);
	free(s->session_fds);
	free(s->base_url);
	pthread_cond_destroy(&s->idle);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
