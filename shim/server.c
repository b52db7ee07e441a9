/* shim.sock (server-internal.h, protocol.h): one request per connection, answered with one JSON
 * line; attach and exec connections then carry frames both ways. Nothing here blocks: a client
 * that does not read gets its output queued up to SHIM_CONN_OUT_MAX (attach: then dropped and
 * counted; exec: then the process's output waits), a container that does not read its stdin
 * makes the writing client wait (its connection is not read meanwhile). */
#include "shim/server-internal.h"
#include "base/cleanup.h"
#include "base/json.h"
#include "base/log.h"
#include "runtime/runtime.h"
#include "shim/protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define FRAME_IN_MAX 4096 /* resize and close-stdin frames; stdin frames are streamed */
#define CONN_IN_CHUNK (SHIM_READ_CHUNK + FRAME_IN_MAX)

/* ---- output ---- */

size_t conn_pending(const struct conn *c)
{
	return c->out.len - c->out.head;
}

static bool outbuf_append(struct outbuf *b, const void *data, size_t len)
{
	if (b->head > 0 && b->len + len > b->cap) {
		memmove(b->data, b->data + b->head, b->len - b->head);
		b->len -= b->head;
		b->head = 0;
	}
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len)
			cap *= 2;
		char *p = realloc(b->data, cap);
		if (!p)
			return false;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return true;
}

/* Sends what the socket takes; -errno when the client is gone. */
static int conn_flush(struct conn *c)
{
	struct outbuf *b = &c->out;
	while (b->head < b->len) {
		ssize_t n = send(c->src.fd, b->data + b->head, b->len - b->head,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		b->head += (size_t)n;
	}
	b->head = b->len = 0;
	if (b->cap > 64 * 1024) { /* a burst is over: give the memory back */
		free(b->data);
		*b = (struct outbuf){ 0 };
	}
	return 0;
}

void conn_update_events(struct conn *c)
{
	/* EPOLLHUP (always reported) keeps the connection in the set: a client that goes away
	 * is noticed even while nothing else is watched */
	uint32_t ev = EPOLLHUP;
	if (conn_pending(c))
		ev |= EPOLLOUT;
	if (!c->closing && !c->stdin_blocked && !c->read_done)
		ev |= EPOLLIN;
	loop_set_events(&c->shim->loop, &c->src, ev);
}

/* Queues bytes (header and payload), sending at once what the socket takes. */
static bool conn_queue(struct conn *c, const void *a, size_t alen, const void *b, size_t blen)
{
	size_t sent = 0;
	if (conn_pending(c) == 0) {
		struct iovec iov[2] = { { (void *)a, alen }, { (void *)b, blen } };
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = blen ? 2 : 1 };
		ssize_t n;
		do
			n = sendmsg(c->src.fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
		sent = n > 0 ? (size_t)n : 0;
		if (sent == alen + blen)
			return true;
	}
	bool ok = sent < alen ? outbuf_append(&c->out, (const char *)a + sent, alen - sent) &&
					outbuf_append(&c->out, b, blen)
			      : outbuf_append(&c->out, (const char *)b + (sent - alen),
					      blen - (sent - alen));
	if (!ok)
		log_error("out of memory queueing output for a client");
	conn_update_events(c);
	return ok;
}

bool conn_send_frame(struct conn *c, int stream, const void *buf, size_t len)
{
	if (c->kind == CONN_ATTACH &&
	    conn_pending(c) + SHIM_FRAME_HEADER + len > SHIM_CONN_OUT_MAX) {
		if (c->dropped == 0)
			log_warn("an attach client does not keep up: dropping its output");
		c->dropped += len;
		return false;
	}
	unsigned char head[SHIM_FRAME_HEADER] = {(unsigned char)stream, (unsigned char)(len >> 24),
						 (unsigned char)(len >> 16),
						 (unsigned char)(len >> 8), (unsigned char)len};
	return conn_queue(c, head, sizeof(head), buf, len);
}

void conn_send_exit_frame(struct conn *c, int exit_code, int sig, bool oom_killed)
{
	char text[96];
	int n = snprintf(text, sizeof(text), "{\"exit_code\":%d,\"signal\":%d,\"oom_killed\":%s}",
			 exit_code, sig, oom_killed ? "true" : "false");
	conn_send_frame(c, SHIM_STREAM_EXIT, text, (size_t)n);
}

void conn_reply(struct conn *c, char *json)
{
	conn_queue(c, json, strlen(json), "\n", 1);
	free(json);
}

void conn_reply_error(struct conn *c, int r, const struct berth_error *err)
{
	struct json_writer *w = bjson_writer_new(false);
	char *text = NULL;
	if (w) {
		bjson_writer_begin_object(w);
		bjson_writer_kv_bool(w, "ok", false);
		bjson_writer_kv_int(w, "errno", r < 0 ? -r : EIO);
		bjson_writer_kv_string(w, "error",
				       err && err->msg ? err->msg : strerror(r < 0 ? -r : EIO));
		bjson_writer_end_object(w);
		if (bjson_writer_finish(w, &text, NULL) < 0)
			text = NULL;
	}
	if (text)
		conn_reply(c, text);
}

void conn_close(struct conn *c)
{
	struct shim *s = c->shim;
	int fd = c->src.fd;
	loop_unwatch(&s->loop, &c->src);
	closep(&fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->exec)
		exec_client_gone(c->exec);
	if (c->kind == CONN_ATTACH && c->had_stdin && s->a.stdin_once && !s->stdin_once_done) {
		s->stdin_once_done = true;
		log_debug("the first attach with stdin ended: closing the container's stdin");
		input_close(&s->io.in);
	}
	if (c->dropped)
		log_warn("an attach client missed %llu bytes of output",
			 (unsigned long long)c->dropped);
	free(c->in);
	free(c->out.data);
	free(c);
}

void conn_finish(struct conn *c)
{
	c->closing = true;
	if (conn_pending(c) == 0)
		conn_close(c);
	else
		conn_update_events(c);
}

/* ---- ops ---- */

typedef int (*op_fn)(struct conn *c, const struct json *req, struct json_writer *w,
		     struct berth_error **err);

static int op_status(struct conn *c, const struct json *req, struct json_writer *w,
		     struct berth_error **err)
{
	status_write(w, c->shim);
	return OP_DONE;
}

static int op_start(struct conn *c, const struct json *req, struct json_writer *w,
		    struct berth_error **err)
{
	struct shim *s = c->shim;
	if (s->state != SHIM_STATE_CREATED)
		return berth_error_set(err, EINVAL, "container %s is not created", s->a.id);
	int r = runtime_container_start(s->a.runtime_root, s->a.id, err);
	if (r < 0)
		return r;
	s->state = SHIM_STATE_RUNNING;
	s->started_ns = now_ns();
	log_info("container %s started", s->a.id);
	return OP_DONE;
}

int req_bool(const struct json *req, const char *key, bool *ret, struct berth_error **err)
{
	const struct json *v = bjson_object_get(req, key);
	if (bjson_type_of(v) == JSON_ABSENT) {
		*ret = false;
		return 0;
	}
	if (bjson_type_of(v) != JSON_BOOL)
		return berth_error_set(err, EINVAL, "%s: expects true or false", key);
	*ret = bjson_bool(v);
	return 0;
}

static int get_uint(const struct json *req, const char *key, uint64_t max, uint64_t *ret,
		    struct berth_error **err)
{
	if (!bjson_uint64(bjson_object_get(req, key), ret) || *ret > max)
		return berth_error_set(err, EINVAL, "%s: expects a number up to %llu", key,
				       (unsigned long long)max);
	return 0;
}

static int op_kill(struct conn *c, const struct json *req, struct json_writer *w,
		   struct berth_error **err)
{
	struct shim *s = c->shim;
	uint64_t sig;
	bool all;
	int r = get_uint(req, "signal", 64, &sig, err);
	if (r < 0 || (r = req_bool(req, "all", &all, err)) < 0)
		return r;
	if (sig == 0)
		return berth_error_set(err, EINVAL, "signal: 0 is not a signal");
	if (s->state == SHIM_STATE_STOPPED)
		return berth_error_set(err, ESRCH, "container %s is stopped", s->a.id);
	r = runtime_container_kill(s->a.runtime_root, s->a.id, (int)sig, all, err);
	return r < 0 ? r : OP_DONE;
}

static int parse_size(const struct json *j, uint64_t *width, uint64_t *height,
		      struct berth_error **err)
{
	int r = get_uint(j, "width", 0xffff, width, err);
	return r < 0 ? r : get_uint(j, "height", 0xffff, height, err);
}

static int op_resize(struct conn *c, const struct json *req, struct json_writer *w,
		     struct berth_error **err)
{
	uint64_t width, height;
	int r = parse_size(req, &width, &height, err);
	if (r < 0 || (r = proc_io_resize(&c->shim->io, (unsigned)width, (unsigned)height, err)) < 0)
		return r;
	return OP_DONE;
}

static int op_reopen_log(struct conn *c, const struct json *req, struct json_writer *w,
			 struct berth_error **err)
{
	struct shim *s = c->shim;
	if (!s->log)
		return berth_error_set(err, EINVAL, "the shim writes no log (no --log)");
	int r = crilog_reopen(s->log, err);
	return r < 0 ? r : OP_DONE;
}

static int op_update(struct conn *c, const struct json *req, struct json_writer *w,
		     struct berth_error **err)
{
	const struct json *res = bjson_object_get(req, "resources");
	if (bjson_type_of(res) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, "resources: expects an object");
	struct json_writer *rw = bjson_writer_new(false);
	if (!rw)
		return -ENOMEM;
	bjson_writer_value(rw, res);
	_cleanup_free_ char *text = NULL;
	if (bjson_writer_finish(rw, &text, NULL) < 0)
		return -ENOMEM;
	int r = runtime_container_update(c->shim->a.runtime_root, c->shim->a.id, text, err);
	return r < 0 ? r : OP_DONE;
}

static int op_wait(struct conn *c, const struct json *req, struct json_writer *w,
		   struct berth_error **err)
{
	if (c->shim->state != SHIM_STATE_STOPPED) {
		c->kind = CONN_WAIT;
		return OP_DEFERRED;
	}
	status_write(w, c->shim);
	return OP_DONE;
}

static int op_attach(struct conn *c, const struct json *req, struct json_writer *w,
		     struct berth_error **err)
{
	struct shim *s = c->shim;
	bool in, out, errs;
	int r = req_bool(req, "stdin", &in, err);
	if (r < 0 || (r = req_bool(req, "stdout", &out, err)) < 0 ||
	    (r = req_bool(req, "stderr", &errs, err)) < 0)
		return r;
	if (in && s->state != SHIM_STATE_STOPPED) {
		if (!s->a.stdin_open)
			return berth_error_set(
				err, EINVAL,
				"container %s has no stdin (it was not created with stdin open)",
				s->a.id);
		if (s->io.in.closed)
			return berth_error_set(err, EPIPE, "the stdin of container %s is closed",
					       s->a.id);
		c->stdin_to = &s->io.in;
		c->had_stdin = true;
	}
	c->kind = CONN_ATTACH;
	c->out_stdout = out;
	c->out_stderr = errs && !s->io.tty;
	bjson_writer_kv_bool(w, "tty", s->io.tty);
	return OP_STREAM;
}

static int op_shutdown(struct conn *c, const struct json *req, struct json_writer *w,
		       struct berth_error **err)
{
	struct shim *s = c->shim;
	if (s->state != SHIM_STATE_STOPPED)
		return berth_error_set(err, EBUSY, "container %s is %s", s->a.id,
				       s->state == SHIM_STATE_CREATED ? "created" : "running");
	int r = runtime_container_delete(s->a.runtime_root, s->a.id, true, err);
	if (r < 0)
		return r;
	/* gone before the answer: a client that has it finds no socket to talk to */
	server_unlisten(s);
	return OP_SHUTDOWN;
}

static const struct {
	const char *name;
	op_fn fn;
} ops[] = {
	{ "status", op_status }, { "start", op_start },	      { "kill", op_kill },
	{ "resize", op_resize }, { "reopen-log", op_reopen_log }, { "update", op_update },
	{ "wait", op_wait },	 { "shutdown", op_shutdown },     { "attach", op_attach },
	{ "exec", op_exec },
};

static int dispatch(struct conn *c, const char *line, struct json_writer *w,
		    struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *req = NULL;
	int r = bjson_parse(line, &req, err);
	if (r < 0)
		return berth_error_wrap(err, "request");
	const char *op = bjson_string(bjson_object_get(req, "op"));
	if (!op)
		return berth_error_set(err, EINVAL, "request: \"op\" missing");
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
		if (strcmp(ops[i].name, op) == 0) {
			log_debug("request: %s", op);
			r = ops[i].fn(c, req, w, err);
			return r < 0 ? berth_error_wrap(err, "%s", op) : r;
		}
	return berth_error_set(err, EOPNOTSUPP, "request: unknown op \"%s\"", op);
}

static void conn_process_frames(struct conn *c);

/* Answers the request line; the connection lives on for streams and waits. */
static void conn_request(struct conn *c, const char *line)
{
	struct shim *s = c->shim;
	struct berth_error *err = NULL;
	struct json_writer *w = bjson_writer_new(false);
	if (!w) {
		conn_reply_error(c, -ENOMEM, NULL);
		conn_finish(c);
		return;
	}
	bjson_writer_begin_object(w);
	bjson_writer_kv_bool(w, "ok", true);
	int r = dispatch(c, line, w, &err);
	bjson_writer_end_object(w);
	char *text = NULL;
	if (bjson_writer_finish(w, &text, NULL) < 0 && r >= 0)
		r = -ENOMEM;
	if (r < 0) {
		free(text);
		log_debug("request failed: %s", err ? err->msg : strerror(-r));
		conn_reply_error(c, r, err);
		berth_error_free(err);
		conn_finish(c);
		return;
	}
	if (r == OP_DEFERRED) {
		free(text);
		conn_update_events(c);
		return;
	}
	conn_reply(c, text);
	if (r == OP_SHUTDOWN) {
		(void)conn_flush(c);
		s->loop.quit = true;
	} else if (r == OP_DONE) {
		conn_finish(c);
	} else if (c->kind == CONN_ATTACH && s->state == SHIM_STATE_STOPPED) {
		conn_send_exit_frame(c, s->exit_code, s->signal, s->oom_killed);
		conn_finish(c);
	} else {
		conn_process_frames(c); /* frames that came with the request */
	}
}

/* ---- input ---- */

static void conn_block_stdin(struct conn *c)
{
	c->stdin_blocked = true;
	conn_update_events(c);
}

/* One resize or close-stdin frame (whole). false: a protocol error, the connection is done. */
static bool conn_control_frame(struct conn *c, int stream, const char *payload, size_t len)
{
	struct proc_io *io = c->exec ? exec_io(c->exec) : &c->shim->io;
	if (stream == SHIM_STREAM_CLOSE_STDIN) {
		if (c->stdin_to) {
			input_close(c->stdin_to);
			server_input_ready(c->shim, c->stdin_to); /* writers waiting on it go on */
		}
		return true;
	}
	_cleanup_free_ char *text = strndup(payload, len);
	_cleanup_(bjson_freep) struct json *j = NULL;
	struct berth_error *err = NULL;
	uint64_t width, height;
	if (!text || bjson_parse(text, &j, &err) < 0 || parse_size(j, &width, &height, &err) < 0) {
		log_warn("resize frame: %s", err ? err->msg : "out of memory");
		berth_error_free(err);
		return false;
	}
	if (io && proc_io_resize(io, (unsigned)width, (unsigned)height, &err) < 0) {
		log_debug("resize frame: %s", err->msg); /* e.g. a client that resizes a pipe */
		berth_error_free(err);
	}
	return true;
}

static void conn_protocol_error(struct conn *c, const char *what)
{
	log_warn("client sent %s: closing its connection", what);
	conn_close(c);
}

static void conn_process_frames(struct conn *c)
{
	size_t off = 0;
	while (off < c->in_len && !c->stdin_blocked) {
		const char *p = c->in + off;
		size_t avail = c->in_len - off;
		if (c->frame_left > 0) {
			size_t n = avail < c->frame_left ? avail : c->frame_left;
			ssize_t w = c->stdin_to ? input_write(c->stdin_to, p, n) : -EPIPE;
			if (w < 0) {
				log_debug("stdin: %s: %zu bytes dropped", strerror((int)-w), n);
				w = (ssize_t)n;
			}
			off += (size_t)w;
			c->frame_left -= (uint32_t)w;
			if ((size_t)w < n)
				conn_block_stdin(c);
			continue;
		}
		if (avail < SHIM_FRAME_HEADER)
			break;
		int stream = (unsigned char)p[0];
		uint32_t len = (uint32_t)(unsigned char)p[1] << 24 |
			       (uint32_t)(unsigned char)p[2] << 16 |
			       (uint32_t)(unsigned char)p[3] << 8 | (unsigned char)p[4];
		if (stream == SHIM_STREAM_STDIN && c->stdin_to && len <= SHIM_FRAME_MAX) {
			off += SHIM_FRAME_HEADER;
			c->frame_left = len;
			continue;
		}
		if ((stream != SHIM_STREAM_RESIZE && stream != SHIM_STREAM_CLOSE_STDIN) ||
		    len > FRAME_IN_MAX) {
			conn_protocol_error(c, stream == SHIM_STREAM_STDIN
						       ? "stdin it did not ask for"
						       : "a bad frame");
			return;
		}
		if (avail < SHIM_FRAME_HEADER + len)
			break;
		if (!conn_control_frame(c, stream, p + SHIM_FRAME_HEADER, len)) {
			conn_close(c);
			return;
		}
		off += SHIM_FRAME_HEADER + len;
	}
	if (off > 0) { /* c->in may still be NULL (nothing read past the request) */
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	conn_update_events(c);
}

void server_input_ready(struct shim *s, struct input *in)
{
	/* mark first, then go on one at a time from the top: each may close its connection or
	 * block again, and a close-stdin among them may call back here */
	for (struct conn *c = s->conns; c; c = c->next)
		if (c->stdin_blocked && c->stdin_to == in) {
			c->stdin_blocked = false;
			c->resume = true;
		}
	for (;;) {
		struct conn *c = s->conns;
		while (c && !c->resume)
			c = c->next;
		if (!c)
			break;
		c->resume = false;
		conn_process_frames(c);
	}
}

static void conn_read_request(struct conn *c)
{
	if (c->in_len == c->in_cap) {
		size_t cap = c->in_cap ? c->in_cap * 2 : 1024;
		if (cap > SHIM_REQUEST_MAX + 1)
			cap = SHIM_REQUEST_MAX + 1;
		char *p = realloc(c->in, cap);
		if (!p) {
			conn_close(c);
			return;
		}
		c->in = p;
		c->in_cap = cap;
	}
	ssize_t n = recv(c->src.fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) { /* gone before the request was whole */
		conn_close(c);
		return;
	}
	char *nl = memchr(c->in + c->in_len, '\n', (size_t)n);
	c->in_len += (size_t)n;
	if (!nl && c->in_len == SHIM_REQUEST_MAX + 1) {
		struct berth_error *err = NULL;
		int r = berth_error_set(&err, EMSGSIZE, "request: longer than %d bytes",
					SHIM_REQUEST_MAX);
		conn_reply_error(c, r, err);
		berth_error_free(err);
		conn_finish(c);
		return;
	}
	if (!nl)
		return;
	*nl = '\0';
	/* what follows the line is the first frames of an attach or exec */
	size_t line_len = (size_t)(nl - c->in) + 1;
	_cleanup_free_ char *line = c->in;
	size_t rest = c->in_len - line_len;
	c->in = NULL;
	c->in_len = c->in_cap = 0;
	if (rest > 0) {
		size_t cap = rest > CONN_IN_CHUNK ? rest : CONN_IN_CHUNK;
		if (!(c->in = malloc(cap))) {
			conn_close(c);
			return;
		}
		c->in_cap = cap;
		memcpy(c->in, line + line_len, rest);
		c->in_len = rest;
	}
	conn_request(c, line);
}

/* A wait connection only listens for its client going away. */
static void conn_read_wait(struct conn *c, uint32_t events)
{
	char buf[256];
	ssize_t n = recv(c->src.fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		log_debug("a waiting client sent %zd bytes: ignored", n);
		return;
	}
	if (n == 0 && !(events & EPOLLHUP)) { /* done sending, still waiting */
		c->read_done = true;
		conn_update_events(c);
		return;
	}
	conn_close(c);
}

static void conn_read_frames(struct conn *c, uint32_t events)
{
	if (!c->in) {
		if (!(c->in = malloc(CONN_IN_CHUNK))) {
			conn_close(c);
			return;
		}
		c->in_cap = CONN_IN_CHUNK;
	}
	if (c->in_len == c->in_cap)
		return; /* not reached: frames are consumed as they come, or the reading stops */
	ssize_t n = recv(c->src.fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n == 0 && !(events & EPOLLHUP)) {
		/* done sending, not gone: it still gets the output */
		c->read_done = true;
		conn_update_events(c);
		return;
	}
	if (n <= 0) {
		conn_close(c);
		return;
	}
	c->in_len += (size_t)n;
	conn_process_frames(c);
}

static void conn_cb(struct loop_source *src, uint32_t events)
{
	struct conn *c = container_of(src, struct conn, src);
	if (events & EPOLLOUT) {
		if (conn_flush(c) < 0 || (c->closing && conn_pending(c) == 0)) {
			conn_close(c);
			return;
		}
		if (c->exec && conn_pending(c) < SHIM_CONN_OUT_MAX / 2)
			exec_output_room(c->exec);
		conn_update_events(c);
	}
	if (events & EPOLLIN) {
		if (c->kind == CONN_REQUEST)
			conn_read_request(c);
		else if (c->kind == CONN_WAIT)
			conn_read_wait(c, events);
		else
			conn_read_frames(c, events);
		return;
	}
	if (events & (EPOLLHUP | EPOLLERR))
		conn_close(c);
}

static void listen_cb(struct loop_source *src, uint32_t events)
{
	struct shim *s = container_of(src, struct shim, listen_src);
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("accept: %s", strerror(errno));
		return;
	}
	struct conn *c = calloc(1, sizeof(*c));
	if (!c || loop_watch(&s->loop, &c->src, fd, EPOLLIN | EPOLLHUP, conn_cb, NULL) < 0) {
		log_warn("accept: out of memory");
		free(c);
		close(fd);
		return;
	}
	c->shim = s;
	c->kind = CONN_REQUEST;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
}

int server_listen(struct shim *s, struct berth_error **err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	/* through the directory's fd: a directory path of any length fits */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", s->dir_fd, SHIM_SOCKET);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->listen_fd < 0)
		return berth_error_setsys(err, errno, "socket");
	if (bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return berth_error_setsys(err, errno, "%s/%s", s->a.dir, SHIM_SOCKET);
	if (fchmodat(s->dir_fd, SHIM_SOCKET, 0600, 0) < 0 || listen(s->listen_fd, 64) < 0)
		return berth_error_setsys(err, errno, "%s/%s", s->a.dir, SHIM_SOCKET);
	return loop_watch(&s->loop, &s->listen_src, s->listen_fd, EPOLLIN, listen_cb, err);
}

void server_unlisten(struct shim *s)
{
	if (s->listen_fd < 0)
		return;
	loop_unwatch(&s->loop, &s->listen_src);
	closep(&s->listen_fd);
	s->listen_fd = -1;
	(void)unlinkat(s->dir_fd, SHIM_SOCKET, 0);
	(void)unlinkat(s->dir_fd, SHIM_PID_FILE, 0);
}

void server_close_all(struct shim *s)
{
	while (s->conns)
		conn_close(s->conns);
}

void server_container_stopped(struct shim *s)
{
	for (struct conn *c = s->conns, *next; c; c = next) {
		next = c->next; /* conn_finish closes only c */
		if (c->kind == CONN_WAIT) {
			struct json_writer *w = bjson_writer_new(false);
			char *text = NULL;
			if (w) {
				bjson_writer_begin_object(w);
				bjson_writer_kv_bool(w, "ok", true);
				status_write(w, s);
				bjson_writer_end_object(w);
				if (bjson_writer_finish(w, &text, NULL) < 0)
					text = NULL;
			}
			if (text)
				conn_reply(c, text);
			else
				conn_reply_error(c, -ENOMEM, NULL);
			conn_finish(c);
		} else if (c->kind == CONN_ATTACH && !c->closing) {
			c->stdin_to = NULL;
			conn_send_exit_frame(c, s->exit_code, s->signal, s->oom_killed);
			conn_finish(c);
		}
	}
}

void server_broadcast(struct shim *s, int stream, const char *buf, size_t len)
{
	for (struct conn *c = s->conns; c; c = c->next)
		if (c->kind == CONN_ATTACH && !c->closing &&
		    (stream == SHIM_STREAM_STDOUT ? c->out_stdout : c->out_stderr))
			conn_send_frame(c, stream, buf, len);
}
