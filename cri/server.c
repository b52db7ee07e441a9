/* The socket: accepting, reading, sniffing each connection's protocol, running JSON-lines requests
 * on the worker pool, writing answers and events. Everything here runs on the loop thread except
 * request_work_cb. */
#include "cri/server.h"
#include "base/cleanup.h"
#include "base/log.h"
#include "cri/grpc.h"

#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define READ_CHUNK (64u << 10)
/* A client that sends requests but does not read the answers: past this many bytes waiting to be
 * written, its next request waits (and so does reading from it). */
#define WRITE_BACKLOG_MAX (4u << 20)

struct conn;

/* A protocol a connection may speak, told apart by its first bytes. */
struct conn_protocol {
	const char *name;
	/* > 0: the bytes start this protocol; 0: they do not; -EAGAIN: too few bytes to tell */
	int (*sniff)(const char *buf, size_t len);
	/* bytes were added to c->in, or the peer ended its side (c->eof) */
	void (*on_input)(struct conn *c);
};

struct conn {
	uv_pipe_t pipe;
	uv_shutdown_t shutdown;
	struct server *s;
	const struct conn_protocol *proto;
	struct grpc_conn *grpc; /* an HTTP/2 connection's session */
	char *in;
	size_t in_len, in_cap;
	unsigned refs; /* the handle, and the request in flight */
	bool busy, eof, reading, finishing, closing, subscribed, backlogged;
	struct conn *prev, *next;
};

struct server {
	uv_loop_t *loop;
	const struct api_context *ctx;
	const struct grpc_service_table *grpc_services;
	uv_pipe_t listener;
	char *path;
	struct conn *conns;
	unsigned inflight;
};

struct request {
	uv_work_t work;
	struct conn *c;
	char *line;
	size_t len;
	char *response;
	bool subscribe;
};

struct write_req {
	uv_write_t req;
	char *buf;
};

/* ---- connections ---- */

static void conn_unref(struct conn *c)
{
	if (--c->refs > 0)
		return;
	free(c->in);
	free(c);
}

static void conn_closed_cb(uv_handle_t *h)
{
	struct conn *c = h->data;
	/* here rather than in conn_close, which the session's own write path may reach */
	grpc_conn_close(c->grpc);
	c->grpc = NULL;
	conn_unref(c);
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->prev)
		c->prev->next = c->next;
	else
		c->s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	uv_close((uv_handle_t *)&c->pipe, conn_closed_cb);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
	conn_close(req->data);
}

static void conn_read(struct conn *c, bool on);

/* Ends the connection once what was written has gone out. */
static void conn_finish(struct conn *c)
{
	if (c->finishing || c->closing)
		return;
	c->finishing = true;
	conn_read(c, false); /* nothing more is read from a connection that is ending */
	c->shutdown.data = c;
	if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->pipe, shutdown_cb) < 0)
		conn_close(c);
}

static void write_cb(uv_write_t *req, int status)
{
	struct write_req *w = req->data;
	struct conn *c = req->handle->data;
	free(w->buf);
	free(w);
	if (status < 0 && status != UV_ECANCELED) {
		conn_close(c);
		return;
	}
	if (c->backlogged && !c->closing &&
	    uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) < WRITE_BACKLOG_MAX / 2) {
		c->backlogged = false;
		c->proto->on_input(c);
	}
}

/* Queues buf (taken) for writing. */
static void conn_write(struct conn *c, char *buf, size_t len)
{
	struct write_req *w = malloc(sizeof(*w));
	if (!w || c->closing || c->finishing) {
		free(buf);
		free(w);
		if (!w)
			conn_close(c);
		return;
	}
	w->buf = buf;
	w->req.data = w;
	uv_buf_t b = uv_buf_init(buf, (unsigned)len);
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, write_cb) < 0) {
		free(buf);
		free(w);
		conn_close(c);
	}
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	if (c->in_cap - c->in_len < READ_CHUNK) {
		char *n = realloc(c->in, c->in_len + READ_CHUNK);
		if (!n) {
			*buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
			return;
		}
		c->in = n;
		c->in_cap = c->in_len + READ_CHUNK;
	}
	*buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void conn_read(struct conn *c, bool on)
{
	if (c->closing || c->eof || c->reading == on)
		return;
	c->reading = on;
	int r = on ? uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb)
		   : uv_read_stop((uv_stream_t *)&c->pipe);
	if (r < 0)
		conn_close(c);
}

/* ---- HTTP/2: the seam for the CRI gRPC server ---- */

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static int h2_sniff(const char *buf, size_t len)
{
	size_t want = sizeof(h2_preface) - 1;
	if (memcmp(buf, h2_preface, len < want ? len : want) != 0)
		return 0;
	return len >= want ? 1 : -EAGAIN;
}

static int h2_write(void *ud, const uint8_t *buf, size_t len)
{
	struct conn *c = ud;
	if (c->closing || c->finishing)
		return -EPIPE;
	char *copy = malloc(len);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, buf, len);
	conn_write(c, copy, len);
	return 0;
}

static void h2_close(void *ud)
{
	conn_finish(ud);
}

/* Everything read goes to the connection's gRPC session (cri/grpc.c). */
static void h2_on_input(struct conn *c)
{
	if (c->closing || c->finishing)
		return;
	if (!c->grpc) {
		_cleanup_error_ struct berth_error *err = NULL;
		struct grpc_conn_io io = { .write = h2_write, .close = h2_close, .io_ud = c };
		if (grpc_conn_new(c->s->loop, c->s->grpc_services, &io, &c->grpc, &err) < 0) {
			log_warn("%s: %s", c->s->path, err ? err->msg : "grpc: cannot start");
			conn_close(c);
			return;
		}
	}
	int r = grpc_conn_input(c->grpc, (const uint8_t *)c->in, c->in_len);
	c->in_len = 0;
	if (r < 0 || c->eof) {
		conn_finish(c); /* what the session queued (a GOAWAY) goes out first */
	} else if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > WRITE_BACKLOG_MAX) {
		c->backlogged = true; /* a client that does not read: write_cb reads on later */
		conn_read(c, false);
	} else {
		conn_read(c, true);
	}
}

static const struct conn_protocol h2_protocol = { "http2", h2_sniff, h2_on_input };

/* ---- JSON lines ---- */

static void jsonl_pump(struct conn *c);

static void request_work_cb(uv_work_t *work)
{
	struct request *req = work->data;
	req->response = api_handle(req->c->s->ctx, req->line, req->len, &req->subscribe);
}

static void request_after_cb(uv_work_t *work, int status)
{
	struct request *req = work->data;
	struct conn *c = req->c;
	c->busy = false;
	c->s->inflight--;
	if (!c->closing && req->response) {
		size_t len = strlen(req->response);
		conn_write(c, TAKE_PTR(req->response), len);
	} else if (!c->closing) {
		conn_close(c); /* out of memory: not even an error line */
	}
	free(req->response);
	if (!c->closing && req->subscribe)
		c->subscribed = true;
	free(req->line);
	free(req);
	if (!c->closing)
		jsonl_pump(c);
	conn_unref(c);
}

static void start_request(struct conn *c, const char *line, size_t len)
{
	struct request *req = calloc(1, sizeof(*req));
	if (!req || !(req->line = malloc(len + 1))) {
		free(req);
		conn_close(c);
		return;
	}
	memcpy(req->line, line, len);
	req->line[len] = '\0';
	req->len = len;
	req->c = c;
	req->work.data = req;
	if (uv_queue_work(c->s->loop, &req->work, request_work_cb, request_after_cb) < 0) {
		free(req->line);
		free(req);
		conn_close(c);
		return;
	}
	c->busy = true;
	c->refs++;
	c->s->inflight++;
}

static bool blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

static void too_long(struct conn *c)
{
	char msg[96];
	snprintf(msg, sizeof(msg), "the request line is longer than %u bytes", API_REQUEST_MAX);
	char *line = api_error_line(E2BIG, msg);
	if (line)
		conn_write(c, line, strlen(line));
	c->in_len = 0;
	conn_finish(c);
}

/* Starts the next request in c->in, if the one before is done. */
static void jsonl_pump(struct conn *c)
{
	if (c->closing || c->finishing)
		return;
	if (c->busy) { /* the next line waits; so does reading, once a whole line is buffered */
		if (c->in_len > API_REQUEST_MAX)
			conn_read(c, false);
		return;
	}
	if (!c->subscribed &&
	    uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > WRITE_BACKLOG_MAX) {
		c->backlogged = true; /* write_cb pumps again once the client has read */
		conn_read(c, false);
		return;
	}
	if (c->subscribed) { /* an events connection: what the client sends is not read */
		c->in_len = 0;
		if (c->eof)
			conn_close(c);
		return;
	}
	for (;;) {
		char *nl = memchr(c->in, '\n', c->in_len);
		size_t len = nl ? (size_t)(nl - c->in) : c->in_len;
		if (len > API_REQUEST_MAX) {
			too_long(c);
			return;
		}
		if (!nl && !c->eof) {
			conn_read(c, true);
			return;
		}
		if (!nl && blank(c->in, c->in_len)) {
			conn_finish(c);
			return;
		}
		size_t used = nl ? len + 1 : len; /* at EOF, a last line without its newline */
		if (!blank(c->in, len))
			start_request(c, c->in, len);
		memmove(c->in, c->in + used, c->in_len - used);
		c->in_len -= used;
		if (c->busy || c->closing)
			break;
	}
	/* the next request waits: hold reading while a whole line is already buffered */
	if (c->in_len > API_REQUEST_MAX)
		conn_read(c, false);
}

static int jsonl_sniff(const char *buf, size_t len)
{
	return 1;
}

static const struct conn_protocol jsonl_protocol = { "json-lines", jsonl_sniff, jsonl_pump };

/* Tried in order; JSON lines takes whatever the others do not claim. */
static const struct conn_protocol *const protocols[] = { &h2_protocol, &jsonl_protocol };

static void conn_input(struct conn *c)
{
	for (size_t i = 0; !c->proto && i < ARRAY_SIZE(protocols); i++) {
		int r = protocols[i]->sniff(c->in, c->in_len);
		if (r == -EAGAIN) {
			if (c->eof)
				conn_close(c);
			return;
		}
		if (r > 0)
			c->proto = protocols[i];
	}
	c->proto->on_input(c);
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = stream->data;
	if (nread == UV_EOF) {
		c->eof = true;
		c->reading = false;
		uv_read_stop(stream);
		if (c->in_len == 0 && !c->busy)
			conn_close(c);
		else if (c->proto || c->in_len)
			conn_input(c);
		return;
	}
	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (nread == 0)
		return;
	c->in_len += (size_t)nread;
	conn_input(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct server *s = listener->data;
	if (status < 0) {
		log_warn("%s: accept: %s", s->path, uv_strerror(status));
		return;
	}
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->s = s;
	c->refs = 1;
	c->pipe.data = c;
	uv_pipe_init(s->loop, &c->pipe, 0);
	if (uv_accept(listener, (uv_stream_t *)&c->pipe) < 0) {
		c->closing = true;
		uv_close((uv_handle_t *)&c->pipe, conn_closed_cb);
		return;
	}
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	conn_read(c, true);
}

/* ---- events ---- */

static void event_cb(const struct manager_event *ev, void *userdata)
{
	struct server *s = userdata;
	_cleanup_free_ char *line = api_event_line(ev);
	if (!line)
		return;
	size_t len = strlen(line);
	for (struct conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (!c->subscribed || c->closing)
			continue;
		if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > EVENTS_BACKLOG_MAX) {
			log_warn("an events client on %s fell %u bytes behind: disconnected",
				 s->path, EVENTS_BACKLOG_MAX);
			conn_close(c);
			continue;
		}
		char *copy = strdup(line);
		if (copy)
			conn_write(c, copy, len);
	}
}

/* ---- the listener ---- */

static int make_parent(const char *path, struct berth_error **err)
{
	_cleanup_free_ char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	char *dir = dirname(copy);
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return berth_error_setsys(err, errno, "socket: %s", dir);
		*p = '/';
	}
	/* only root reaches the socket's directory's entries by name: 0711 */
	if (mkdir(dir, 0711) < 0 && errno != EEXIST)
		return berth_error_setsys(err, errno, "socket: %s", dir);
	return 0;
}

/* A socket left by a berthd that died is replaced; one that answers is another berthd's. */
static int clear_stale(const char *path, struct berth_error **err)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : berth_error_setsys(err, errno, "socket: %s", path);
	if (!S_ISSOCK(st.st_mode))
		return berth_error_set(err, EEXIST, "socket: %s exists and is not a socket", path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return berth_error_set(err, EADDRINUSE, "socket: another berthd serves %s", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return berth_error_setsys(err, errno, "socket: removing the stale %s", path);
	return 0;
}

static int set_owner(const char *path, const char *group, struct berth_error **err)
{
	if (chmod(path, 0660) < 0)
		return berth_error_setsys(err, errno, "socket: chmod %s", path);
	if (!group || !*group)
		return 0;
	struct group gr, *found = NULL;
	char buf[4096];
	gid_t gid;
	if (strspn(group, "0123456789") == strlen(group)) { /* a number, as the config allows */
		gid = (gid_t)strtoul(group, NULL, 10);
	} else {
		int r = getgrnam_r(group, &gr, buf, sizeof(buf), &found);
		if (r != 0 || !found)
			return berth_error_set(err, r ? r : ENOENT,
					       "socket_group: group \"%s\" not found", group);
		gid = gr.gr_gid;
	}
	if (chown(path, 0, gid) < 0)
		return berth_error_setsys(err, errno, "socket: chown %s", path);
	return 0;
}

static void listener_failed_cb(uv_handle_t *h)
{
	struct server *s = h->data;
	free(s->path);
	free(s);
}

static int listen_on(struct server *s, const char *group, struct berth_error **err)
{
	const char *path = s->path;
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return berth_error_set(err, ENAMETOOLONG, "socket: %s is longer than %zu bytes",
				       path, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	int r;
	if ((r = make_parent(path, err)) < 0 || (r = clear_stale(path, err)) < 0)
		return r;
	/* never more than 0600 until the group is set (startup is single-threaded) */
	mode_t old = umask(0177);
	r = uv_pipe_bind(&s->listener, path);
	umask(old);
	if (r < 0)
		return berth_error_set(err, -r, "socket: bind %s: %s", path, uv_strerror(r));
	if ((r = set_owner(path, group, err)) < 0 ||
	    (r = uv_listen((uv_stream_t *)&s->listener, 128, on_connection)) < 0) {
		if (r < 0 && !(err && *err))
			berth_error_set(err, -r, "socket: listen %s: %s", path, uv_strerror(r));
		unlink(path);
		return r;
	}
	return 0;
}

int server_new(uv_loop_t *loop, const struct api_context *ctx,
	       const struct grpc_service_table *grpc_services, struct server **ret,
	       struct berth_error **err)
{
	struct server *s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(ctx->config->socket))) {
		free(s);
		return -ENOMEM;
	}
	s->loop = loop;
	s->ctx = ctx;
	s->grpc_services = grpc_services;
	s->listener.data = s;
	int r = uv_pipe_init(loop, &s->listener, 0);
	if (r < 0) {
		free(s->path);
		free(s);
		return berth_error_set(err, -r, "libuv: %s", uv_strerror(r));
	}
	if ((r = listen_on(s, ctx->config->socket_group, err)) < 0) {
		uv_close((uv_handle_t *)&s->listener, listener_failed_cb);
		return r;
	}
	manager_set_event_cb(ctx->manager, event_cb, s);
	log_info("serving %s", s->path);
	*ret = s;
	return 0;
}

void server_close(struct server *s)
{
	manager_set_event_cb(s->ctx->manager, NULL, NULL);
	uv_close((uv_handle_t *)&s->listener, NULL);
	if (unlink(s->path) < 0 && errno != ENOENT)
		log_warn("removing %s: %m", s->path);
	while (s->conns)
		conn_close(s->conns);
}

unsigned server_inflight(const struct server *s)
{
	return s->inflight;
}

struct server *server_free(struct server *s)
{
	if (s) {
		free(s->path);
		free(s);
	}
	return NULL;
}
