/* Running a helper program to completion: see command.h. */
#include "base/command.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/process.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* 1: read something, 0: end of file. What is beyond max is read and dropped, so the program
 * never blocks on us. */
static int output_read(int fd, struct command_output *s)
{
	char chunk[16384];
	ssize_t n = read(fd, chunk, sizeof(chunk));
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : -errno;
	if (n == 0)
		return 0;
	size_t take = (size_t)n;
	if (s->len + take > s->max) {
		s->overflow = true;
		take = s->max - s->len;
	}
	char *nbuf = realloc(s->buf, s->len + take + 1);
	if (!nbuf)
		return -ENOMEM;
	if (take)
		memcpy(nbuf + s->len, chunk, take);
	s->buf = nbuf;
	s->len += take;
	s->buf[s->len] = '\0';
	return 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left for poll: -1 without a deadline, 0 or less once it has passed. */
static int time_left(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline - now_ms();
	return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

/* Reads stdout and stderr to their ends; -ETIMEDOUT at the deadline, -EMSGSIZE when stdout is
 * over its bound. */
static int collect_output(int out_fd, int err_fd, struct command_result *res, int64_t deadline)
{
	struct pollfd p[2] = { { .fd = out_fd, .events = POLLIN },
			       { .fd = err_fd, .events = POLLIN } };
	struct command_output *sinks[2] = { &res->out, &res->err };
	while (p[0].fd >= 0 || p[1].fd >= 0) {
		int left = time_left(deadline);
		if (left == 0)
			return -ETIMEDOUT;
		int r = poll(p, 2, left);
		if (r < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; r > 0 && i < 2; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			int rr = output_read(p[i].fd, sinks[i]);
			if (rr < 0)
				return rr;
			/* at the end poll skips it; the caller still owns and closes it */
			if (rr == 0)
				p[i].fd = -1;
		}
		if (res->out.overflow)
			return -EMSGSIZE;
	}
	return 0;
}

/* Between clone and exec, so async-signal-safe calls only. */
static _Noreturn void child_exec(int in, int out, int errfd, const struct command *c)
{
	/* a daemon's blocked or ignored signals must not carry over into the program */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigaction(SIGPIPE, &dfl, NULL);
	/* its own group, so a timeout kills what it started too (CNI's bridge runs host-local) */
	setpgid(0, 0);
	if (dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
	    dup2(errfd, STDERR_FILENO) < 0)
		_exit(126);
	/* descriptors that other threads or libraries opened without O_CLOEXEC stay with us */
	(void)close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	char *const just_path[] = { (char *)c->path, NULL };
	execve(c->path, c->argv ? c->argv : just_path, c->env ? c->env : environ);
	static const char msg[] = "berth: execve failed\n";
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(127);
}

/* Moves fd off 0-2, so dup2 in the child cannot clobber one pipe end with another (a daemon
 * may run with its standard descriptors closed). */
static int fd_above_stdio(int fd)
{
	if (fd < 0 || fd > STDERR_FILENO)
		return fd;
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	int r = nfd < 0 ? -errno : nfd;
	close(fd);
	return r;
}

static int input_memfd(const char *input)
{
	int raw = memfd_create("command-input", MFD_CLOEXEC);
	if (raw < 0)
		return -errno;
	_cleanup_close_ int fd = fd_above_stdio(raw);
	if (fd < 0)
		return fd;
	int r = input ? write_all(fd, input, strlen(input)) : 0;
	if (r < 0)
		return r;
	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	return TAKE_FD(fd);
}

static int pipe_above_stdio(int *ret_r, int *ret_w)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	*ret_r = fd_above_stdio(p[0]);
	*ret_w = fd_above_stdio(p[1]);
	return *ret_r < 0 ? *ret_r : *ret_w < 0 ? *ret_w : 0;
}

/* Until the child exits (not reaped yet), or -ETIMEDOUT at the deadline. */
static int wait_for_exit(int pidfd, int64_t deadline)
{
	for (;;) {
		int left = time_left(deadline);
		if (left == 0)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		int r = poll(&p, 1, left);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0)
			return 0;
	}
}

int command_run(const struct command *c, struct command_result *ret)
{
	*ret = (struct command_result){ .out.max = c->out_max, .err.max = c->err_max };
	_cleanup_close_ int in = input_memfd(c->input);
	if (in < 0)
		return in;
	_cleanup_close_ int out_r = -EBADF, out_w = -EBADF, err_r = -EBADF, err_w = -EBADF;
	int r = pipe_above_stdio(&out_r, &out_w);
	if (r >= 0)
		r = pipe_above_stdio(&err_r, &err_w);
	if (r < 0)
		return r;

	int64_t deadline = c->timeout_ms > 0 ? now_ms() + c->timeout_ms : -1;
	_cleanup_close_ int pidfd = -EBADF;
	pid_t pid = process_clone(0, -1, &pidfd);
	if (pid < 0)
		return pid;
	if (pid == 0)
		child_exec(in, out_w, err_w, c);
	closep(&out_w);
	closep(&err_w);
	out_w = err_w = -EBADF;

	r = collect_output(out_r, err_r, ret, deadline);
	if (r >= 0)
		r = wait_for_exit(pidfd, deadline);
	if (r < 0) {
		/* the leader is not reaped yet, so its pid still names its group */
		(void)kill(-pid, SIGKILL);
		(void)process_signal(pidfd, SIGKILL);
	}
	ret->status = process_wait(pidfd, -1);
	if (r >= 0 && ret->status < 0)
		r = ret->status;
	return r < 0 ? r : 0;
}

void command_result_clear(struct command_result *r)
{
	free(r->out.buf);
	free(r->err.buf);
	r->out.buf = r->err.buf = NULL;
	r->out.len = r->err.len = 0;
}

void command_stderr_excerpt(const struct command_result *r, char *buf, size_t size)
{
	const struct command_output *s = &r->err;
	size_t len = s->len;
	while (len > 0 && strchr(" \t\r\n", s->buf[len - 1]))
		len--;
	size_t start = len > size - 1 ? len - (size - 1) : 0;
	size_t n = 0;
	for (size_t i = start; i < len; i++)
		buf[n++] = s->buf[i] == '\n' || s->buf[i] == '\r' ? ' ' : s->buf[i];
	buf[n] = '\0';
}
