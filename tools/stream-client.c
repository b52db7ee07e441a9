#include "tools/stream-client.h"

#include "base/cleanup.h"
#include "cri/websocket.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

/* The server's frames stay far below this (it sends what one read gave it); a message put together
 * from fragments may be larger. Beyond either, the server is not berthd. */
#define MAX_FRAME_PAYLOAD (1u << 20)
#define MAX_MESSAGE (16u << 20)
/* What a blocked send buffers of the server's output (send_all). */
#define MAX_BACKLOG (64u << 20)
/* One read of a local fd becomes one message. */
#define IN_CHUNK 32768
/* How long a closing client waits for the server's close frame. */
#define CLOSE_WAIT_MS 500

static const char *const channel_protocols[] = { "v5.channel.k8s.io", "v4.channel.k8s.io", NULL };
static const char *const portforward_protocols[] = { "portforward.k8s.io", NULL };

struct buffer {
	uint8_t *data;
	size_t len, cap;
};

struct stream_session {
	int fd;
	const char *protocol;
	struct buffer in;      /* bytes received, not yet parsed into frames */
	struct buffer message; /* a fragmented message being joined */
	bool in_message;
	struct buffer out; /* the frame being sent */
	bool close_sent, close_received, eof;
	uint16_t close_code;
	char close_reason[124];
};

static int buffer_reserve(struct buffer *b, size_t want, size_t limit)
{
	if (want <= b->cap)
		return 0;
	if (want > limit)
		return -EMSGSIZE;
	size_t cap = b->cap ? b->cap : 65536;
	while (cap < want)
		cap *= 2;
	if (cap > limit)
		cap = limit;
	uint8_t *d = realloc(b->data, cap);
	if (!d)
		return -ENOMEM;
	b->data = d;
	b->cap = cap;
	return 0;
}

static int buffer_append(struct buffer *b, const uint8_t *data, size_t len, size_t limit)
{
	int r = buffer_reserve(b, b->len + len, limit);
	if (r < 0)
		return r;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

int stream_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) { /* someone made our stdout non-blocking */
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			(void)poll(&pfd, 1, -1);
			continue;
		}
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- connecting ---- */

struct url {
	char *authority; /* HOST:PORT, for the Host header */
	char *host, *port, *path;
};

static void url_clear(struct url *u)
{
	free(u->authority);
	free(u->host);
	free(u->port);
	free(u->path);
}

/* http://HOST:PORT/PATH, HOST a name, an IPv4 address or a bracketed IPv6 one. */
static int url_parse(const char *url, struct url *u, struct berth_error **err)
{
	static const char scheme[] = "http://";
	*u = (struct url){ 0 };
	if (strncmp(url, scheme, strlen(scheme)) != 0)
		return berth_error_set(err, EINVAL, "stream URL \"%s\": not http://", url);
	const char *auth = url + strlen(scheme), *slash = strchr(auth, '/');
	const char *colon = slash ? memrchr(auth, ':', (size_t)(slash - auth)) : NULL;
	bool v6 = auth[0] == '[';
	const char *host_end = v6 ? colon - 1 : colon;
	if (!slash || !colon || colon == auth || colon + 1 == slash ||
	    strspn(colon + 1, "0123456789") != (size_t)(slash - colon - 1) ||
	    (v6 && *host_end != ']'))
		return berth_error_set(err, EINVAL, "stream URL \"%s\": not http://HOST:PORT/PATH",
				       url);
	u->authority = strndup(auth, (size_t)(slash - auth));
	u->host = strndup(auth + v6, (size_t)(host_end - auth - v6));
	u->port = strndup(colon + 1, (size_t)(slash - colon - 1));
	u->path = strdup(slash);
	if (!u->authority || !u->host || !u->port || !u->path) {
		url_clear(u);
		return berth_error_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

static int tcp_connect(const struct url *u, int *ret_fd, struct berth_error **err)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *list = NULL;
	int g = getaddrinfo(u->host, u->port, &hints, &list);
	if (g != 0)
		return berth_error_set(err, EHOSTUNREACH, "stream server %s: %s", u->authority,
				       gai_strerror(g));
	int saved = ECONNREFUSED;
	for (struct addrinfo *a = list; a; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
			freeaddrinfo(list);
			*ret_fd = fd;
			return 0;
		}
		saved = errno;
		if (fd >= 0)
			close(fd);
	}
	freeaddrinfo(list);
	return berth_error_setsys(err, saved, "connect to the stream server %s", u->authority);
}

static int read_some(struct stream_session *s, size_t limit, struct berth_error **err);

/* Sends all of buf. While the socket is full, what the server sends meanwhile is read into s->in
 * (up to MAX_BACKLOG): a server that stops reading until we read (flow control) and a client
 * blocked in send would otherwise wait for each other forever. */
static int send_all(struct stream_session *s, const void *buf, size_t len, struct berth_error **err)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = send(s->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			bool room = s->in.len < MAX_BACKLOG && !s->eof;
			struct pollfd pfd = { .fd = s->fd,
					      .events = POLLOUT | (room ? POLLIN : 0) };
			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				return berth_error_setsys(err, errno, "poll");
			int r = 0;
			if ((pfd.revents & POLLIN) && (r = read_some(s, MAX_BACKLOG, err)) < 0)
				return r;
			continue;
		}
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
			/* the server is gone: a hang-up, judged by what it said before (read_some) */
			s->eof = true;
			return 0;
		}
		if (n < 0)
			return berth_error_setsys(err, errno, "send to the stream server");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_some(struct stream_session *s, size_t limit, struct berth_error **err)
{
	int r = buffer_reserve(&s->in, s->in.len + 4096, limit);
	if (r < 0)
		return berth_error_set(err, -r, "websocket: %s", strerror(-r));
	ssize_t n = read(s->fd, s->in.data + s->in.len, s->in.cap - s->in.len);
	if (n < 0 && errno == EINTR)
		return 0;
	/* A reset is a hang-up: a server that closes with bytes of ours unread (a pong, the answer
	 * to its close) resets the connection, and whether its last words arrived is for the
	 * caller to judge (exec without a status). */
	if (n < 0 && errno != ECONNRESET)
		return berth_error_setsys(err, errno, "read from the stream server");
	if (n <= 0)
		s->eof = true;
	else
		s->in.len += (size_t)n;
	return 0;
}

/* One read into s->in; end of file sets s->eof. timeout_ms < 0: block. 0 on a timeout too. */
static int fill(struct stream_session *s, int timeout_ms, struct berth_error **err)
{
	if (timeout_ms >= 0) {
		struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
		int n = poll(&pfd, 1, timeout_ms);
		if (n <= 0)
			return n < 0 && errno != EINTR ? berth_error_setsys(err, errno, "poll") : 0;
	}
	/* s->in may hold a backlog (send_all) beyond one frame: read on when there is room */
	return read_some(s, s->in.len + MAX_FRAME_PAYLOAD + WS_MAX_FRAME_HEADER, err);
}

/* A refusal's body names the reason on its first line; it may come in a later packet. */
static int read_refusal_body(struct stream_session *s, size_t head_len, struct berth_error **err)
{
	for (int i = 0; i < 10 && !s->eof && s->in.len - head_len < 512; i++) {
		if (memchr(s->in.data + head_len, '\n', s->in.len - head_len))
			break;
		int r = fill(s, 100, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int read_response_head(struct stream_session *s, size_t *ret_len, struct berth_error **err)
{
	for (;;) {
		ssize_t n = ws_head_length((const char *)s->in.data, s->in.len);
		if (n < 0)
			return berth_error_set(err, EPROTO,
					       "stream server: the response head is too long");
		if (n > 0) {
			*ret_len = (size_t)n;
			return 0;
		}
		if (s->eof)
			return berth_error_set(err, ECONNRESET,
					       "stream server: closed before answering");
		int r = fill(s, -1, err);
		if (r < 0)
			return r;
	}
}

static int handshake(struct stream_session *s, const struct url *u, const char *const *protocols,
		     struct berth_error **err)
{
	char key[25];
	_cleanup_free_ char *request = ws_client_request(u->authority, u->path, protocols, key);
	if (!request)
		return berth_error_set(err, ENOMEM, "out of memory");
	size_t head_len = 0;
	int r = send_all(s, request, strlen(request), err);
	if (r < 0 || (r = read_response_head(s, &head_len, err)) < 0)
		return r;
	if (strncmp((const char *)s->in.data, "HTTP/1.1 101 ", 13) != 0 &&
	    (r = read_refusal_body(s, head_len, err)) < 0)
		return r;
	r = ws_client_check_response((const char *)s->in.data, head_len, key, protocols,
				     (const char *)s->in.data + head_len, s->in.len - head_len,
				     &s->protocol, err);
	if (r < 0)
		return berth_error_wrap(err, "stream server %s", u->authority);
	/* Frames may have followed the 101 in the same packet (port-forward's port headers). */
	memmove(s->in.data, s->in.data + head_len, s->in.len - head_len);
	s->in.len -= head_len;
	return 0;
}

int stream_session_open(const char *url, enum stream_kind kind, struct stream_session **ret,
			struct berth_error **err)
{
	struct url u;
	int r = url_parse(url, &u, err);
	if (r < 0)
		return r;
	_cleanup_(stream_session_freep) struct stream_session *s = calloc(1, sizeof(*s));
	if (!s) {
		url_clear(&u);
		return berth_error_set(err, ENOMEM, "out of memory");
	}
	s->fd = -EBADF;
	s->close_code = 1005;
	r = tcp_connect(&u, &s->fd, err);
	if (r == 0)
		r = handshake(s, &u,
			      kind == STREAM_PORTFORWARD ? portforward_protocols
							 : channel_protocols,
			      err);
	url_clear(&u);
	if (r < 0) {
		s->close_received = true; /* no WebSocket to close */
		return r;
	}
	*ret = TAKE_PTR(s);
	return 0;
}

const char *stream_session_protocol(const struct stream_session *s)
{
	return s->protocol ? s->protocol : "";
}

bool stream_session_can_close_channel(const struct stream_session *s)
{
	return s->protocol && strcmp(s->protocol, "v5.channel.k8s.io") == 0;
}

uint16_t stream_session_close_code(const struct stream_session *s, const char **ret_reason)
{
	if (ret_reason)
		*ret_reason = s->close_reason;
	return s->close_code;
}

/* ---- sending ---- */

/* One whole frame, masked (RFC 6455: every client frame is): an optional prefix byte (the
 * channel), then data. */
static int send_frame(struct stream_session *s, enum ws_opcode op, const uint8_t *prefix,
		      const void *data, size_t len, struct berth_error **err)
{
	size_t plen = (prefix ? 1 : 0) + len;
	uint8_t mask[4];
	if (getrandom(mask, sizeof(mask), 0) != sizeof(mask))
		return berth_error_setsys(err, errno, "getrandom");
	s->out.len = 0;
	int r = buffer_reserve(&s->out, WS_MAX_FRAME_HEADER + plen, SIZE_MAX);
	if (r < 0)
		return berth_error_set(err, -r, "websocket: %s", strerror(-r));
	size_t h = ws_frame_header(s->out.data, true, op, plen, mask);
	if (prefix)
		s->out.data[h] = *prefix;
	if (len)
		memcpy(s->out.data + h + (prefix ? 1 : 0), data, len);
	ws_mask(s->out.data + h, plen, mask, 0);
	return send_all(s, s->out.data, h + plen, err);
}

int stream_session_send(struct stream_session *s, uint8_t channel, const void *data, size_t len,
			struct berth_error **err)
{
	if (s->close_sent) /* RFC 6455 5.5.1: no data frames after a close */
		return 0;
	return send_frame(s, WS_OP_BINARY, &channel, data, len, err);
}

int stream_session_close(struct stream_session *s, uint16_t code, struct berth_error **err)
{
	if (s->close_sent || s->eof)
		return 0;
	uint8_t payload[125];
	size_t n = ws_close_payload(payload, code, "");
	s->close_sent = true;
	return send_frame(s, WS_OP_CLOSE, NULL, payload, n, err);
}

/* ---- receiving ---- */

static int deliver(struct stream_session *s, const struct stream_bridge *b, const uint8_t *data,
		   size_t len, struct berth_error **err)
{
	if (!b || !b->message_cb || len == 0)
		return 0;
	return b->message_cb(b->userdata, s, data[0], data + 1, len - 1, err);
}

static int on_close(struct stream_session *s, const struct ws_frame *f)
{
	const char *reason = NULL;
	size_t reason_len = 0;
	s->close_received = true;
	if (ws_close_parse(f->payload, f->len, &s->close_code, &reason, &reason_len) < 0) {
		s->close_code = WS_CLOSE_PROTOCOL_ERROR;
		reason_len = 0;
	}
	snprintf(s->close_reason, sizeof(s->close_reason), "%.*s", (int)reason_len,
		 reason ? reason : "");
	/* Answer with the code the server gave (RFC 6455 5.5.1; 1005 may not be sent). A server
	 * that hung up right after its close cannot read the answer: that is no error. */
	(void)stream_session_close(s, s->close_code == 1005 ? WS_CLOSE_NORMAL : s->close_code,
				   NULL);
	return 0;
}

static int on_data(struct stream_session *s, const struct stream_bridge *b,
		   const struct ws_frame *f, struct berth_error **err)
{
	bool first = f->opcode != WS_OP_CONTINUATION;
	if (first == s->in_message)
		return berth_error_set(err, EPROTO, "websocket: the server %s",
				       first ? "began a message inside a fragmented one"
					     : "continued a message it had not begun");
	if (f->fin && first)
		return deliver(s, b, f->payload, f->len, err);
	int r = buffer_append(&s->message, f->payload, f->len, MAX_MESSAGE);
	if (r < 0)
		return berth_error_set(err, -r, "websocket: a message of the server: %s",
				       strerror(-r));
	s->in_message = !f->fin;
	if (!f->fin)
		return 0;
	size_t len = s->message.len;
	s->message.len = 0;
	return deliver(s, b, s->message.data, len, err);
}

static int on_frame(struct stream_session *s, const struct stream_bridge *b,
		    const struct ws_frame *f, struct berth_error **err)
{
	switch (f->opcode) {
	case WS_OP_PING:
		return s->close_sent ? 0 : send_frame(s, WS_OP_PONG, NULL, f->payload, f->len, err);
	case WS_OP_PONG:
		return 0;
	case WS_OP_CLOSE:
		return on_close(s, f);
	default:
		return on_data(s, b, f, err);
	}
}

/* Handles every complete frame in s->in. */
static int drain(struct stream_session *s, const struct stream_bridge *b, struct berth_error **err)
{
	size_t off = 0;
	int r = 0;
	while (r == 0 && !s->close_received) {
		struct ws_frame f;
		ssize_t n = ws_frame_parse(s->in.data + off, s->in.len - off, false,
					   MAX_FRAME_PAYLOAD, &f);
		if (n == 0)
			break;
		if (n < 0) {
			r = berth_error_set(err, (int)-n, "websocket: the server sent %s",
					    n == -EMSGSIZE ? "a frame too large"
							   : "a malformed frame");
			break;
		}
		off += (size_t)n;
		r = on_frame(s, b, &f, err);
	}
	if (off) {
		memmove(s->in.data, s->in.data + off, s->in.len - off);
		s->in.len -= off;
	}
	return r;
}

/* ---- bridging ---- */

static int in_eof(struct stream_session *s, const struct stream_bridge *b, struct berth_error **err)
{
	if (b->on_eof == STREAM_EOF_CLOSE_SESSION)
		return stream_session_close(s, WS_CLOSE_NORMAL, err);
	if (!stream_session_can_close_channel(s))
		return 0; /* v4 cannot say it; the process keeps its stdin open */
	uint8_t channel = b->in_channel;
	return stream_session_send(s, STREAM_CLOSE, &channel, 1, err);
}

/* One read of the local input, sent as one message. */
static int pump_in(struct stream_session *s, const struct stream_bridge *b, bool *open,
		   struct berth_error **err)
{
	uint8_t buf[IN_CHUNK];
	ssize_t n = read(b->in_fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n < 0 && errno != EIO && errno != ECONNRESET) /* EIO: a terminal hung up */
		return berth_error_setsys(err, errno, "read the input");
	if (n <= 0) {
		*open = false;
		return in_eof(s, b, err);
	}
	return stream_session_send(s, b->in_channel, buf, (size_t)n, err);
}

int stream_session_run(struct stream_session *s, const struct stream_bridge *b,
		       struct berth_error **err)
{
	bool in_open = b->in_fd >= 0;
	for (;;) {
		int r = drain(s, b, err);
		if (r != 0)
			return r;
		if (s->close_received || s->eof)
			return 0;
		struct pollfd p[3] = { { .fd = s->fd, .events = POLLIN },
				       { .fd = in_open && !s->close_sent ? b->in_fd : -1,
					 .events = POLLIN },
				       { .fd = b->event_fd, .events = POLLIN } };
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return berth_error_setsys(err, errno, "poll");
		}
		if (p[0].revents && (r = fill(s, -1, err)) < 0)
			return r;
		if (s->eof)
			continue; /* what it sent before hanging up is drained first */
		if (p[1].revents && (r = pump_in(s, b, &in_open, err)) != 0)
			return r;
		if (p[2].revents && (r = b->event_cb(b->userdata, s, err)) != 0)
			return r;
	}
}

struct stream_session *stream_session_free(struct stream_session *s)
{
	if (!s)
		return NULL;
	if (s->fd >= 0 && !s->close_received && !s->eof &&
	    stream_session_close(s, WS_CLOSE_NORMAL, NULL) == 0) {
		/* The server answers our close with its own, then hangs up: wait a little for that,
		 * so it does not see a reset; what it still sends is dropped. */
		for (int i = 0; i < 10 && !s->close_received && !s->eof; i++)
			if (fill(s, CLOSE_WAIT_MS / 10, NULL) < 0 || drain(s, NULL, NULL) < 0)
				break;
	}
	if (s->fd >= 0)
		close(s->fd);
	free(s->in.data);
	free(s->message.data);
	free(s->out.data);
	free(s);
	return NULL;
}

void stream_session_freep(struct stream_session **s)
{
	stream_session_free(*s);
}
