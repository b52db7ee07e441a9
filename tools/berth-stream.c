/* berth exec, attach and port-forward: ask berthd (its JSON-lines socket) for a single-use
 * streaming URL, then bridge this process's stdin/stdout/stderr (or accepted TCP connections)
 * with the WebSocket session at that URL. */
#include "tools/berth-stream.h"

#include "base/cleanup.h"
#include "base/json.h"
#include "tools/berth-cmd.h"
#include "tools/berthd-client.h"
#include "tools/cli.h"
#include "tools/stream-client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PROG "berth"
/* port-forward: connections bridged at once (each is a thread and a berthd session). */
#define MAX_CONNECTIONS 64
#define MAX_FORWARDS 32
/* port-forward: how long SIGINT waits for the open connections to close their sessions. */
#define SHUTDOWN_WAIT_S 5

/* ---- shared ---- */

/* Sends the request (from berthd_request) and returns the "url" of the answer. */
static int request_url(const char *socket_path, struct json_writer *w, char **ret_url,
		       struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *answer = NULL;
	int r = berthd_call(socket_path, w, &answer, err);
	if (r < 0)
		return r;
	const char *url = bjson_string(bjson_object_get(answer, "url"));
	if (!url)
		return berth_error_set(err, EPROTO, "berthd's answer carries no url");
	if (!(*ret_url = strdup(url)))
		return berth_error_set(err, ENOMEM, "out of memory");
	return 0;
}

/* The full id, or a one-line error when it names nothing, or something not in `state`. */
static int resolve_live(const char *socket_path, enum berthd_kind kind, const char *given,
			const char *state, char **ret_id, struct berth_error **err)
{
	_cleanup_free_ char *id = NULL, *now = NULL;
	int r = berthd_resolve(socket_path, kind, given, &id, &now, err);
	if (r < 0)
		return r;
	if (strcmp(now, state) != 0)
		return berth_error_set(err, EBUSY, "%s \"%s\" is not %s (it is %s)",
				       kind == BERTHD_POD ? "pod" : "container", given, state, now);
	*ret_id = TAKE_PTR(id);
	return 0;
}

/* Blocks sigs and returns a signalfd for them: the session's poll loop handles them, so that no
 * signal ends berth with the terminal left raw. */
static int signals_take(const int *sigs, size_t n, struct berth_error **err)
{
	sigset_t set;
	sigemptyset(&set);
	for (size_t k = 0; k < n; k++)
		sigaddset(&set, sigs[k]);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return berth_error_set(err, EINVAL, "sigprocmask");
	int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? berth_error_setsys(err, errno, "signalfd") : fd;
}

static int signal_read(int fd)
{
	struct signalfd_siginfo si;
	ssize_t n = read(fd, &si, sizeof(si));
	return n == (ssize_t)sizeof(si) ? (int)si.ssi_signo : 0;
}

/* ---- exec and attach ---- */

struct terminal {
	int fd; /* the terminal in raw mode, or -1 */
	struct termios saved;
};

static void terminal_restore(struct terminal *t)
{
	if (t->fd >= 0)
		(void)tcsetattr(t->fd, TCSAFLUSH, &t->saved); /* nothing better to do if it fails */
	t->fd = -1;
}

static int terminal_make_raw(struct terminal *t, int fd, struct berth_error **err)
{
	struct termios raw;
	if (tcgetattr(fd, &t->saved) < 0)
		return berth_error_setsys(err, errno, "the terminal's settings");
	raw = t->saved;
	cfmakeraw(&raw);
	if (tcsetattr(fd, TCSAFLUSH, &raw) < 0)
		return berth_error_setsys(err, errno, "raw mode");
	t->fd = fd;
	return 0;
}

/* The terminal whose size a -t process gets: berth's stdin's, else its stdout's; -1 when none. */
static int terminal_of_stdio(void)
{
	if (isatty(STDIN_FILENO))
		return STDIN_FILENO;
	return isatty(STDOUT_FILENO) ? STDOUT_FILENO : -1;
}

/* A stop of the run: a signal (128 + its number, as a shell reports it) or a detach. */
enum { STOP_DETACH = 1000, STOP_SIGNAL = 1001 };

struct channels {
	const char *what; /* "exec", "attach" */
	bool attach;
	int tty_fd; /* the terminal whose size the process gets, or -1 */
	int signal_fd;
	int stopped_by; /* the signal that stopped the run */
	bool have_status;
	int exit_code;
	char *failure; /* a status without an exit code: why the process did not run */
};

static int send_resize(struct channels *c, struct stream_session *s, struct berth_error **err)
{
	struct winsize ws;
	if (c->tty_fd < 0 || ioctl(c->tty_fd, TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0)
		return 0; /* no size to tell */
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "{\"Width\":%u,\"Height\":%u}", ws.ws_col, ws.ws_row);
	return stream_session_send(s, STREAM_RESIZE, msg, (size_t)n, err);
}

static int on_signal(void *userdata, struct stream_session *s, struct berth_error **err)
{
	struct channels *c = userdata;
	int sig = signal_read(c->signal_fd);
	if (sig == 0)
		return 0;
	if (sig == SIGWINCH)
		return send_resize(c, s, err);
	c->stopped_by = sig;
	/* Ctrl-C detaches from an attach (the container runs on); raw mode passes ^C as a byte */
	return sig == SIGINT && c->attach ? STOP_DETACH : STOP_SIGNAL;
}

/* The exit code in a NonZeroExitCode status: details.causes[reason=ExitCode].message. */
static bool status_exit_code(const struct json *status, int *ret)
{
	const struct json *causes = bjson_object_get(bjson_object_get(status, "details"), "causes");
	for (size_t k = 0; k < bjson_array_size(causes); k++) {
		const struct json *cause = bjson_array_get(causes, k);
		const char *reason = bjson_string(bjson_object_get(cause, "reason"));
		const char *msg = bjson_string(bjson_object_get(cause, "message"));
		char *end;
		long v = msg ? strtol(msg, &end, 10) : -1;
		if (reason && strcmp(reason, "ExitCode") == 0 && msg && *msg && !*end && v >= 0 &&
		    v <= 255) {
			*ret = (int)v;
			return true;
		}
	}
	return false;
}

static int on_status(struct channels *c, const uint8_t *data, size_t len, struct berth_error **err)
{
	_cleanup_free_ char *text = strndup((const char *)data, len);
	_cleanup_(bjson_freep) struct json *status = NULL;
	if (!text)
		return berth_error_set(err, ENOMEM, "out of memory");
	int r = bjson_parse(text, &status, err);
	if (r < 0)
		return berth_error_wrap(err, "%s: the status the server sent", c->what);
	const char *st = bjson_string(bjson_object_get(status, "status"));
	const char *reason = bjson_string(bjson_object_get(status, "reason"));
	const char *msg = bjson_string(bjson_object_get(status, "message"));
	c->have_status = true;
	if (st && strcmp(st, "Success") == 0)
		c->exit_code = 0;
	else if (!(reason && strcmp(reason, "NonZeroExitCode") == 0 &&
		   status_exit_code(status, &c->exit_code)) &&
		 !(c->failure = strdup(msg ? msg : "the server reported a failure")))
		return berth_error_set(err, ENOMEM, "out of memory");
	return 0;
}

static int on_message(void *userdata, struct stream_session *s, uint8_t channel,
		      const uint8_t *data, size_t len, struct berth_error **err)
{
	struct channels *c = userdata;
	int fd = channel == STREAM_STDOUT ? STDOUT_FILENO : STDERR_FILENO;
	int r;
	switch (channel) {
	case STREAM_STDOUT:
	case STREAM_STDERR:
		if ((r = stream_write_all(fd, data, len)) < 0)
			return berth_error_set(err, -r, "%s: write standard %s: %s", c->what,
					       fd == STDOUT_FILENO ? "output" : "error",
					       strerror(-r));
		return 0;
	case STREAM_STATUS:
		return on_status(c, data, len, err);
	default:
		return 0; /* nothing else flows this way */
	}
}

/* The exit status once the server closed the session. */
static int session_result(const struct channels *c, struct stream_session *s,
			  struct berth_error **err)
{
	if (c->failure)
		return berth_error_set(err, EIO, "%s: %s", c->what, c->failure);
	if (c->have_status)
		return c->exit_code;
	const char *reason;
	uint16_t code = stream_session_close_code(s, &reason);
	return berth_error_set(err, ECONNRESET,
			       "%s: the session ended without an exit status (close %u%s%s)",
			       c->what, code, *reason ? ": " : "", reason);
}

/* Runs an open exec or attach session to its end; returns the exit status to exit with. The
 * terminal is back in its own mode when this returns. */
static int run_channels(struct channels *c, struct stream_session *s, bool in, bool tty,
			struct berth_error **err)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGWINCH };
	_cleanup_close_ int sfd = signals_take(sigs, ARRAY_SIZE(sigs), err);
	if (sfd < 0)
		return sfd;
	c->signal_fd = sfd;
	c->tty_fd = tty ? terminal_of_stdio() : -1;
	_cleanup_(terminal_restore) struct terminal term = { .fd = -1 };
	int r;
	if (in && c->tty_fd == STDIN_FILENO &&
	    (r = terminal_make_raw(&term, STDIN_FILENO, err)) < 0)
		return r;
	if ((r = send_resize(c, s, err)) < 0)
		return r;
	const struct stream_bridge b = {
		.in_fd = in ? STDIN_FILENO : -1,
		.in_channel = STREAM_STDIN,
		.on_eof = STREAM_EOF_CLOSE_CHANNEL,
		.event_fd = sfd,
		.event_cb = on_signal,
		.message_cb = on_message,
		.userdata = c,
	};
	r = stream_session_run(s, &b, err);
	if (r == STOP_DETACH)
		return 0;
	if (r == STOP_SIGNAL)
		return 128 + c->stopped_by;
	return r < 0 ? r : session_result(c, s, err);
}

struct session_args {
	bool in, tty;
	char **argv; /* the rest after the container (exec's command) */
	int argc;
	const char *container;
};

static int parse_session_args(int argc, char **argv, int i, const char *what, int min,
			      const char *usage, struct session_args *ret, char ***ret_words)
{
	int n = 0;
	const struct opt opts[] = {
		{ "stdin", 'i', OPT_FLAG, &ret->in },
		{ "tty", 't', OPT_FLAG, &ret->tty },
		{ NULL, 0, 0, NULL },
	};
	/* "-it" is "-i -t", as people type docker's and kubectl's combined flags */
	_cleanup_free_ char **v = berth_cmd_split_flags(argc, argv, i, opts, &n);
	if (!v)
		return cli_fail(NULL, -ENOMEM);
	int r = cli_parse(n, v, &i, opts, what);
	if (r || (r = cli_positional(n, i, min, min == 1 ? 1 : -1, what, usage)))
		return r;
	ret->container = v[i];
	ret->argv = v + i + 1;
	ret->argc = n - i - 1;
	*ret_words = TAKE_PTR(v);
	return 0;
}

static void attach_hint(bool tty, struct berth_error **err)
{
	/* berthd refuses an attach whose tty differs from the container's: without -t, the reason
	 * can only be that the container has one */
	if (!tty && *err && (*err)->code == EINVAL && (*err)->msg && strstr((*err)->msg, "tty"))
		berth_error_wrap(err, "the container has a tty, attach with -t");
}

/* exec and attach: their requests differ, and attach names a tty refusal; the rest is one. */
static int stream_channels(const char *socket_path, bool attach, const struct session_args *a)
{
	const char *what = attach ? "attach" : "exec";
	_cleanup_error_ struct berth_error *err = NULL;
	_cleanup_free_ char *id = NULL, *url = NULL;
	_cleanup_(stream_session_freep) struct stream_session *s = NULL;
	int r = resolve_live(socket_path, BERTHD_CONTAINER, a->container, "running", &id, &err);
	if (r < 0) {
		berth_error_wrap(&err, "%s", what);
		return cli_fail(TAKE_PTR(err), r);
	}
	struct json_writer *w = berthd_request(attach ? "stream.attach" : "stream.exec");
	if (w) {
		bjson_writer_kv_string(w, "container_id", id);
		if (!attach) {
			bjson_writer_key(w, "cmd");
			bjson_writer_begin_array(w);
			for (int k = 0; k < a->argc; k++)
				bjson_writer_string(w, a->argv[k]);
			bjson_writer_end_array(w);
		}
		bjson_writer_kv_bool(w, "tty", a->tty);
		bjson_writer_kv_bool(w, "stdin", a->in);
		bjson_writer_kv_bool(w, "stdout", true);
		bjson_writer_kv_bool(w, "stderr", !a->tty); /* a tty merges them */
	}
	if ((r = request_url(socket_path, w, &url, &err)) < 0 && attach)
		attach_hint(a->tty, &err);
	if (r < 0) {
		berth_error_wrap(&err, "%s: container \"%s\"", what, a->container);
		return cli_fail(TAKE_PTR(err), r);
	}
	if ((r = stream_session_open(url, STREAM_CHANNELS, &s, &err)) < 0) {
		berth_error_wrap(&err, "%s", what);
		return cli_fail(TAKE_PTR(err), r);
	}
	(void)signal(SIGPIPE, SIG_IGN); /* a closed stdout is a write error, reported */
	struct channels c = { .what = what, .attach = attach };
	r = run_channels(&c, s, a->in, a->tty, &err);
	free(c.failure);
	return r < 0 ? cli_fail(TAKE_PTR(err), r) : r;
}

int berth_exec(const char *socket_path, int argc, char **argv, int i)
{
	struct session_args a = { 0 };
	_cleanup_free_ char **words = NULL;
	int r = parse_session_args(argc, argv, i, "exec", 2, "[-i] [-t] CONTAINER CMD [ARG...]", &a,
				   &words);
	return r ? r : stream_channels(socket_path, false, &a);
}

int berth_attach(const char *socket_path, int argc, char **argv, int i)
{
	struct session_args a = { 0 };
	_cleanup_free_ char **words = NULL;
	int r = parse_session_args(argc, argv, i, "attach", 1, "[-i] [-t] CONTAINER", &a, &words);
	return r ? r : stream_channels(socket_path, true, &a);
}

/* ---- port-forward ---- */

struct forward {
	uint16_t local, remote;
	int listen_fd;
};

/* What the connection threads share with the accepting loop. */
struct forwarder {
	const char *socket_path;
	const char *pod_id;
	int stop_fd; /* an eventfd: readable once berth is to stop */
	pthread_mutex_t lock;
	pthread_cond_t idle;
	unsigned active;
};

struct connection {
	struct forwarder *f;
	int fd;
	uint16_t local, remote;
	bool header_seen[2]; /* the port number each channel opens with */
};

static bool parse_port(const char *s, size_t len, unsigned min, uint16_t *ret)
{
	unsigned v = 0;
	if (len == 0 || len > 5 || strspn(s, "0123456789") < len)
		return false;
	for (size_t k = 0; k < len; k++)
		v = v * 10 + (unsigned)(s[k] - '0');
	if (v < min || v > 65535)
		return false;
	*ret = (uint16_t)v;
	return true;
}

/* [LOCAL:]REMOTE; LOCAL 0 is any free port. */
static int parse_forward(const char *spec, struct forward *ret)
{
	const char *colon = strchr(spec, ':');
	const char *remote = colon ? colon + 1 : spec;
	if (!parse_port(remote, strlen(remote), 1, &ret->remote) ||
	    (colon && !parse_port(spec, (size_t)(colon - spec), 0, &ret->local)))
		return cli_usage("port-forward: \"%s\": expects [LOCAL:]REMOTE, ports 1-65535 "
				 "(LOCAL may be 0)",
				 spec);
	if (!colon)
		ret->local = ret->remote;
	ret->listen_fd = -EBADF;
	return 0;
}

static int forward_listen(struct forward *fw, struct berth_error **err)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(fw->local),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int one = 1;
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berth_error_setsys(err, errno, "socket");
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)); /* only eases restarts */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return berth_error_setsys(err, errno, "port-forward: listen on 127.0.0.1:%u",
					  fw->local);
	fw->local = ntohs(sa.sin_port);
	fw->listen_fd = TAKE_FD(fd);
	return 0;
}

/* Errors of one connection go to stderr while the others run on: one line each, whole. */
static void connection_report(struct connection *c, struct berth_error *err, int r)
{
	berth_error_wrap(&err, "port-forward: 127.0.0.1:%u -> %u", c->local, c->remote);
	flockfile(stderr);
	cli_fail(err, r);
	funlockfile(stderr);
}

static int on_forward_message(void *userdata, struct stream_session *s, uint8_t channel,
			      const uint8_t *data, size_t len, struct berth_error **err)
{
	struct connection *c = userdata;
	if (channel > 1)
		return 0; /* one port a session: channels 0 (data) and 1 (error) */
	if (!c->header_seen[channel]) {
		c->header_seen[channel] = true;
		return 0;
	}
	if (channel == 1)
		return berth_error_set(err, ECONNREFUSED, "%.*s", (int)len, (const char *)data);
	/* the local client went away: end the session, which closes the pod's side */
	return stream_write_all(c->fd, data, len) < 0 ? 1 : 0;
}

static int on_stop(void *userdata, struct stream_session *s, struct berth_error **err)
{
	return 1;
}

static int forward_connection(struct connection *c, struct berth_error **err)
{
	struct forwarder *f = c->f;
	_cleanup_free_ char *url = NULL;
	_cleanup_(stream_session_freep) struct stream_session *s = NULL;
	struct json_writer *w = berthd_request("stream.port_forward");
	if (w) {
		bjson_writer_kv_string(w, "pod_id", f->pod_id);
		bjson_writer_key(w, "ports");
		bjson_writer_begin_array(w);
		bjson_writer_uint(w, c->remote);
		bjson_writer_end_array(w);
	}
	/* URLs are single use: every connection gets its own */
	int r = request_url(f->socket_path, w, &url, err);
	if (r < 0 || (r = stream_session_open(url, STREAM_PORTFORWARD, &s, err)) < 0)
		return r;
	const struct stream_bridge b = {
		.in_fd = c->fd,
		.in_channel = 0,
		.on_eof = STREAM_EOF_CLOSE_SESSION,
		.event_fd = f->stop_fd,
		.event_cb = on_stop,
		.message_cb = on_forward_message,
		.userdata = c,
	};
	r = stream_session_run(s, &b, err);
	return r < 0 ? r : 0;
}

static void *connection_thread(void *arg)
{
	struct connection *c = arg;
	struct forwarder *f = c->f;
	struct berth_error *err = NULL;
	int r = forward_connection(c, &err);
	if (r < 0)
		connection_report(c, err, r);
	close(c->fd);
	free(c);
	pthread_mutex_lock(&f->lock);
	f->active--;
	pthread_cond_signal(&f->idle);
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

static void forward_accept(struct forwarder *f, const struct forward *fw)
{
	int fd = accept4(fw->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return; /* the client gave up already; nothing to serve */
	struct connection *c = calloc(1, sizeof(*c));
	pthread_mutex_lock(&f->lock);
	bool room = f->active < MAX_CONNECTIONS;
	pthread_t t;
	pthread_attr_t attr;
	if (c && room) {
		*c = (struct connection){
			.f = f, .fd = fd, .local = fw->local, .remote = fw->remote
		};
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		room = pthread_create(&t, &attr, connection_thread, c) == 0;
		pthread_attr_destroy(&attr);
		f->active += room;
	}
	pthread_mutex_unlock(&f->lock);
	if (c && room)
		return;
	free(c);
	close(fd);
	cli_fail_msg("port-forward: 127.0.0.1:%u: connection refused: %u connections already open",
		     fw->local, MAX_CONNECTIONS);
}

/* Tells the connections to stop, and waits (a while) for them to close their sessions; false
 * when some are still open. */
static bool forwarder_stop(struct forwarder *f)
{
	uint64_t one = 1;
	(void)!write(f->stop_fd, &one, sizeof(one)); /* an eventfd write of 1 cannot fail here */
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += SHUTDOWN_WAIT_S;
	pthread_mutex_lock(&f->lock);
	while (f->active > 0 && pthread_cond_timedwait(&f->idle, &f->lock, &deadline) == 0)
		;
	bool idle = f->active == 0;
	pthread_mutex_unlock(&f->lock);
	return idle;
}

/* Accepts until SIGINT or SIGTERM. */
static int forward_loop(struct forwarder *f, struct forward *fws, size_t n, int sfd)
{
	struct pollfd p[MAX_FORWARDS + 1];
	for (size_t k = 0; k < n; k++)
		p[k] = (struct pollfd){ .fd = fws[k].listen_fd, .events = POLLIN };
	p[n] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	for (;;) {
		if (poll(p, n + 1, -1) < 0 && errno != EINTR)
			return cli_fail_msg("port-forward: poll: %s", strerror(errno));
		if (p[n].revents && signal_read(sfd))
			return 0;
		for (size_t k = 0; k < n; k++)
			if (p[k].revents)
				forward_accept(f, &fws[k]);
	}
}

/* Takes pod_id (freed here, unless a connection thread outlived the wait and may still read it). */
static int port_forward_run(const char *socket_path, char *pod_id, struct forward *fws, size_t n)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct berth_error *err = NULL;
	/* blocked before any thread starts, so every thread inherits the mask */
	_cleanup_close_ int sfd = signals_take(sigs, ARRAY_SIZE(sigs), &err);
	_cleanup_close_ int stop_fd = eventfd(0, EFD_CLOEXEC);
	if (sfd < 0 || stop_fd < 0) {
		free(pod_id);
		return sfd < 0 ? cli_fail(err, sfd)
			       : cli_fail_msg("port-forward: eventfd: %s", strerror(errno));
	}
	(void)signal(SIGPIPE, SIG_IGN); /* a client gone is a write error of its connection */
	/* static: a connection thread that outlives the shutdown wait still finds it until exit */
	static struct forwarder f = { .lock = PTHREAD_MUTEX_INITIALIZER,
				      .idle = PTHREAD_COND_INITIALIZER };
	f.socket_path = socket_path;
	f.pod_id = pod_id;
	f.stop_fd = stop_fd;
	int r = forward_loop(&f, fws, n, sfd);
	if (forwarder_stop(&f))
		free(pod_id);
	else
		(void)TAKE_FD(stop_fd); /* stays open (and readable) for those threads until exit */
	return r;
}

static void forwards_close(struct forward *fws, size_t n)
{
	for (size_t k = 0; k < n; k++)
		closep(&fws[k].listen_fd);
}

int berth_port_forward(const char *socket_path, int argc, char **argv, int i)
{
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "port-forward");
	if (r || (r = cli_positional(argc, i, 2, MAX_FORWARDS + 1, "port-forward",
				     "POD [LOCAL:]REMOTE...")))
		return r;
	struct forward fws[MAX_FORWARDS];
	size_t n = 0;
	for (int k = i + 1; k < argc; k++)
		if ((r = parse_forward(argv[k], &fws[n++])))
			return r;
	struct berth_error *err = NULL;
	_cleanup_free_ char *pod_id = NULL;
	if ((r = resolve_live(socket_path, BERTHD_POD, argv[i], "ready", &pod_id, &err)) < 0) {
		berth_error_wrap(&err, "port-forward");
		return cli_fail(err, r);
	}
	for (size_t k = 0; k < n; k++) {
		if ((r = forward_listen(&fws[k], &err)) < 0) {
			forwards_close(fws, k);
			return cli_fail(err, r);
		}
	}
	for (size_t k = 0; k < n; k++)
		printf("Forwarding from 127.0.0.1:%u -> %u\n", fws[k].local, fws[k].remote);
	fflush(stdout);
	r = port_forward_run(socket_path, TAKE_PTR(pod_id), fws, n);
	forwards_close(fws, n);
	return r;
}
