/* A process's stdio from the shim's side (server-internal.h): output read as soon as epoll
 * reports it (so stdout and stderr stay in the order they were written, as far as two pipes
 * can tell), stdin written without ever blocking, the drain after the process exited. */
#include "shim/server-internal.h"
#include "base/cleanup.h"
#include "base/log.h"
#include "shim/protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void proc_io_init(struct proc_io *io, struct shim *s, const struct proc_io_ops *ops)
{
	*io = (struct proc_io){ .shim = s, .ops = ops };
	io->out = (struct output){ .src.fd = -1, .stream = SHIM_STREAM_STDOUT, .io = io };
	io->err = (struct output){ .src.fd = -1, .stream = SHIM_STREAM_STDERR, .io = io };
	io->in = (struct input){ .src.fd = -1, .fd = -1, .closed = true, .io = io };
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

/* Our end non-blocking, the process's end as processes expect it (blocking). */
static int make_pipe(int *ours, int *theirs, bool we_read, struct berth_error **err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return berth_error_setsys(err, errno, "pipe");
	*ours = we_read ? p[0] : p[1];
	*theirs = we_read ? p[1] : p[0];
	int r = set_nonblock(*ours);
	return r < 0 ? berth_error_setsys(err, -r, "pipe: O_NONBLOCK") : 0;
}

int proc_io_pipes(struct proc_io *io, bool with_stdin, int child_fds[3], struct berth_error **err)
{
	int r;
	child_fds[0] = child_fds[1] = child_fds[2] = -1;
	if (with_stdin) {
		if ((r = make_pipe(&io->in.fd, &child_fds[0], false, err)) < 0)
			return r;
		io->in.closed = false;
	} else if ((child_fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		return berth_error_setsys(err, errno, "open /dev/null");
	}
	if ((r = make_pipe(&io->out.src.fd, &child_fds[1], true, err)) < 0 ||
	    (r = make_pipe(&io->err.src.fd, &child_fds[2], true, err)) < 0)
		return r;
	return 0;
}

int proc_io_pty(struct proc_io *io, int master, struct berth_error **err)
{
	io->tty = true;
	io->out.src.fd = master;
	int r = set_nonblock(master);
	if (r < 0)
		return berth_error_setsys(err, -r, "pty: O_NONBLOCK");
	/* a second fd for writing: epoll watches each fd once */
	if ((io->in.fd = fcntl(master, F_DUPFD_CLOEXEC, 3)) < 0)
		return berth_error_setsys(err, errno, "pty: dup");
	io->in.tty = true;
	io->in.closed = false;
	return 0;
}

static void maybe_finished(struct proc_io *io)
{
	if (io->finished || !io->exited || io->out.src.fd >= 0 || io->err.src.fd >= 0)
		return;
	io->finished = true;
	io->ops->finished(io); /* may free io */
}

/* Closes the output; the owner hears of it, and of the end of the drain when it is the last. */
static void output_close(struct output *o)
{
	int fd = o->src.fd;
	loop_unwatch(&o->io->shim->loop, &o->src);
	closep(&fd);
	o->io->ops->ended(o->io, o->stream);
}

static void output_end(struct output *o)
{
	output_close(o);
	maybe_finished(o->io);
}

static void output_cb(struct loop_source *src, uint32_t events)
{
	struct output *o = container_of(src, struct output, src);
	struct proc_io *io = o->io;
	ssize_t n = read(src->fd, io->shim->rbuf, sizeof(io->shim->rbuf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* EOF; a pty master reads EIO once no one holds the slave */
		if (n < 0 && errno != EIO)
			log_warn("read the output: %s", strerror(errno));
		output_end(o);
		return;
	}
	io->last_data_ms = now_ms();
	io->ops->data(io, o->stream, io->shim->rbuf, (size_t)n);
}

static int output_watch(struct output *o, struct berth_error **err)
{
	if (o->src.fd < 0)
		return 0;
	return loop_watch(&o->io->shim->loop, &o->src, o->src.fd, EPOLLIN, output_cb, err);
}

int proc_io_watch(struct proc_io *io, struct berth_error **err)
{
	int r = output_watch(&io->out, err);
	return r < 0 ? r : output_watch(&io->err, err);
}

void proc_io_pause(struct proc_io *io, bool pause)
{
	if (io->paused == pause)
		return;
	io->paused = pause;
	loop_set_events(&io->shim->loop, &io->out.src, pause ? 0 : EPOLLIN);
	loop_set_events(&io->shim->loop, &io->err.src, pause ? 0 : EPOLLIN);
	io->last_data_ms = now_ms(); /* a pause is not silence */
}

void proc_io_exited(struct proc_io *io)
{
	io->exited = true;
	io->last_data_ms = now_ms();
	if (io->out.src.fd < 0 && io->err.src.fd < 0)
		maybe_finished(io); /* may free io */
	else
		shim_timer_arm(io->shim);
}

bool proc_io_tick(struct proc_io *io, int64_t now)
{
	if (!io->exited || io->finished)
		return false;
	if (io->paused || now - io->last_data_ms < SHIM_DRAIN_IDLE_MS)
		return true;
	/* someone else (a process outside the container's pid namespace) holds the pipes */
	log_info("output still open %d ms after the process exited: closing it",
		 SHIM_DRAIN_IDLE_MS);
	if (io->out.src.fd >= 0)
		output_close(&io->out);
	if (io->err.src.fd >= 0)
		output_close(&io->err);
	maybe_finished(io);
	return false;
}

int proc_io_resize(struct proc_io *io, unsigned width, unsigned height, struct berth_error **err)
{
	if (!io->tty)
		return berth_error_set(err, ENOTTY, "the process has no terminal");
	if (width == 0 || height == 0 || width > 0xffff || height > 0xffff)
		return berth_error_set(err, EINVAL, "%ux%u: out of range", width, height);
	if (io->in.fd < 0)
		return berth_error_set(err, ENOTTY, "the terminal is closed");
	struct winsize ws = { .ws_row = (unsigned short)height, .ws_col = (unsigned short)width };
	if (ioctl(io->in.fd, TIOCSWINSZ, &ws) < 0)
		return berth_error_setsys(err, errno, "TIOCSWINSZ");
	return 0;
}

static void input_cb(struct loop_source *src, uint32_t events)
{
	struct input *in = container_of(src, struct input, src);
	loop_set_events(&in->io->shim->loop, src, 0);
	server_input_ready(in->io->shim, in);
}

ssize_t input_write(struct input *in, const char *buf, size_t len)
{
	if (in->closed)
		return -EPIPE;
	ssize_t n = write(in->fd, buf, len);
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		return -errno;
	if (n < 0)
		n = 0;
	if ((size_t)n < len) {
		/* tell the writers when there is room again */
		struct loop *l = &in->io->shim->loop;
		if (in->src.cb)
			loop_set_events(l, &in->src, EPOLLOUT);
		else if (loop_watch(l, &in->src, in->fd, EPOLLOUT, input_cb, NULL) < 0)
			return -EIO;
	}
	return n;
}

void input_close(struct input *in)
{
	if (in->closed)
		return;
	in->closed = true;
	loop_unwatch(&in->io->shim->loop, &in->src);
	in->src.cb = NULL;
	if (in->tty) {
		/* the terminal stays (it is the output too): send what ^D sends */
		struct termios t;
		char eof = tcgetattr(in->fd, &t) == 0 ? (char)t.c_cc[VEOF] : 4;
		if (write(in->fd, &eof, 1) != 1)
			log_debug("stdin: end of file on the terminal: %s", strerror(errno));
		return;
	}
	closep(&in->fd);
	in->fd = -1;
}

void proc_io_clear(struct proc_io *io)
{
	struct loop *l = &io->shim->loop;
	struct output *outs[] = { &io->out, &io->err };
	for (size_t i = 0; i < ARRAY_SIZE(outs); i++) {
		int fd = outs[i]->src.fd;
		loop_unwatch(l, &outs[i]->src);
		closep(&fd);
	}
	loop_unwatch(l, &io->in.src);
	io->in.src.cb = NULL;
	closep(&io->in.fd);
	io->in.fd = -1;
	io->in.closed = true;
}

int console_listen(struct shim *s, char *ret_path, size_t len, struct berth_error **err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	/* through our directory's fd: any length of directory path fits */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", s->dir_fd,
		 SHIM_CONSOLE_SOCKET);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return berth_error_setsys(err, errno, "socket");
	(void)unlinkat(s->dir_fd, SHIM_CONSOLE_SOCKET, 0); /* one left by a failed exec */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0)
		return berth_error_setsys(err, errno, "%s/%s", s->a.dir, SHIM_CONSOLE_SOCKET);
	snprintf(ret_path, len, "%s", sa.sun_path);
	return TAKE_FD(fd);
}

/* The runtime connected and its process sent the master before create/exec returned. */
int console_receive(struct shim *s, int listen_fd, int *ret_master, struct berth_error **err)
{
	_cleanup_close_ int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	(void)unlinkat(s->dir_fd, SHIM_CONSOLE_SOCKET, 0);
	if (c < 0)
		return berth_error_setsys(err, errno,
					  "console socket: no connection from the runtime");
	char name[128];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = name, .iov_len = sizeof(name) - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	ssize_t n;
	do
		n = recvmsg(c, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN(sizeof(int)))
		return berth_error_set(err, EPROTO, "console socket: no pty master received");
	memcpy(ret_master, CMSG_DATA(cm), sizeof(int));
	return 0;
}
