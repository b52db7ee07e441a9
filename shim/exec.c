/* The exec op (server-internal.h): a process run in the container through the runtime, as the
 * shim's child (it reaps it), its stdio streamed over the connection that asked for it. The
 * connection ends with one exit frame once the process has exited and its output is drained; a
 * client that goes away first has the process killed. */
#include "shim/server-internal.h"
#include "base/cleanup.h"
#include "base/json.h"
#include "base/log.h"
#include "base/process.h"
#include "runtime/runtime.h"
#include "shim/protocol.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct exec_session {
	struct exec_session *prev, *next;
	struct shim *shim;
	struct conn *conn; /* NULL once its client is gone */
	pid_t pid;
	int pidfd;
	bool reaped;
	int exit_code, signal;
	struct proc_io io;
};

struct proc_io *exec_io(struct exec_session *e)
{
	return &e->io;
}

static void exec_free(struct exec_session *e)
{
	struct shim *s = e->shim;
	if (e->prev)
		e->prev->next = e->next;
	else if (s->execs == e)
		s->execs = e->next;
	if (e->next)
		e->next->prev = e->prev;
	proc_io_clear(&e->io);
	closep(&e->pidfd);
	free(e);
}

static void exec_data(struct proc_io *io, int stream, const char *buf, size_t len)
{
	struct exec_session *e = container_of(io, struct exec_session, io);
	if (!e->conn)
		return; /* its client is gone and the process is being killed */
	conn_send_frame(e->conn, stream, buf, len);
	/* backpressure: the process waits on its pipes until the client catches up */
	if (conn_pending(e->conn) >= SHIM_CONN_OUT_MAX)
		proc_io_pause(io, true);
}

static void exec_ended(struct proc_io *io, int stream)
{
}

static void exec_finished(struct proc_io *io)
{
	struct exec_session *e = container_of(io, struct exec_session, io);
	log_debug("exec %d exited: code %d, signal %d", e->pid, e->exit_code, e->signal);
	struct conn *c = e->conn;
	if (c) {
		c->exec = NULL;
		c->stdin_to = NULL;
		conn_send_exit_frame(c, e->exit_code, e->signal, false);
		conn_finish(c);
	}
	exec_free(e);
}

static const struct proc_io_ops exec_io_ops = {
	.data = exec_data,
	.ended = exec_ended,
	.finished = exec_finished,
};

static int json_text(const struct json *j, char **ret)
{
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return -ENOMEM;
	bjson_writer_value(w, j);
	return bjson_writer_finish(w, ret, NULL);
}

/* Runs the process; its stdio are pipes, or a pty that comes through the console socket. */
static int exec_spawn(struct exec_session *e, const char *process, bool tty, bool with_stdin,
		      struct berth_error **err)
{
	struct shim *s = e->shim;
	_cleanup_close_ int console = -EBADF;
	int child[3] = { -1, -1, -1 }, status = 0, r;
	char path[128];
	if (tty)
		r = console = console_listen(s, path, sizeof(path), err);
	else
		r = proc_io_pipes(&e->io, with_stdin, child, err);
	if (r >= 0) {
		struct runtime_exec_options o = {
			.state_root = s->a.runtime_root, .id = s->a.id, .process_json = process,
			.detach = true, .console_socket = tty ? path : NULL,
			.stdio = tty ? NULL : child, .ret_pid = &e->pid, .ret_pidfd = &e->pidfd,
		};
		r = runtime_container_exec(&o, &status, err);
	}
	for (int i = 0; i < 3; i++)
		closep(&child[i]); /* the process has its copies */
	if (r < 0) {
		if (tty)
			(void)unlinkat(s->dir_fd, SHIM_CONSOLE_SOCKET, 0);
		return r;
	}
	if (tty) {
		int master = -1;
		if ((r = console_receive(s, console, &master, err)) < 0 ||
		    (r = proc_io_pty(&e->io, master, err)) < 0) {
			(void)process_signal(e->pidfd, SIGKILL); /* reaped by the loop */
			return r;
		}
	}
	return 0;
}

int op_exec(struct conn *c, const struct json *req, struct json_writer *w,
	    struct berth_error **err)
{
	struct shim *s = c->shim;
	const struct json *process = bjson_object_get(req, "process");
	bool with_stdin = false, tty = false;
	int r = req_bool(req, "stdin", &with_stdin, err);
	if (r < 0)
		return r;
	if (bjson_type_of(process) != JSON_OBJECT)
		return berth_error_set(err, EINVAL,
				       "process: expects a runtime-spec process object");
	if ((r = req_bool(process, "terminal", &tty, err)) < 0)
		return berth_error_wrap(err, "process");
	if (s->state == SHIM_STATE_STOPPED)
		return berth_error_set(err, EINVAL, "container %s is stopped", s->a.id);
	_cleanup_free_ char *text = NULL;
	if (json_text(process, &text) < 0)
		return -ENOMEM;
	struct exec_session *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->shim = s;
	e->pidfd = -1;
	proc_io_init(&e->io, s, &exec_io_ops);
	if ((r = exec_spawn(e, text, tty, with_stdin, err)) < 0 ||
	    (r = proc_io_watch(&e->io, err)) < 0) {
		if (e->pidfd >= 0) {
			/* it runs but cannot be served: kill it; the loop reaps a child nobody
			 * claims */
			(void)process_signal(e->pidfd, SIGKILL);
		}
		proc_io_clear(&e->io);
		closep(&e->pidfd);
		free(e);
		return r;
	}
	e->next = s->execs;
	if (s->execs)
		s->execs->prev = e;
	s->execs = e;
	e->conn = c;
	c->exec = e;
	c->kind = CONN_EXEC;
	c->stdin_to = with_stdin ? &e->io.in : NULL;
	log_debug("exec %d in %s", e->pid, s->a.id);
	bjson_writer_kv_int(w, "pid", e->pid);
	return OP_STREAM;
}

bool exec_reaped(struct shim *s, pid_t pid, int exit_code, int sig)
{
	struct exec_session *e = s->execs;
	while (e && e->pid != pid)
		e = e->next;
	if (!e)
		return false;
	e->reaped = true;
	e->exit_code = exit_code;
	e->signal = sig;
	closep(&e->pidfd); /* its pid may be reused from now on */
	e->pidfd = -1;
	proc_io_exited(&e->io); /* may free e */
	return true;
}

void exec_client_gone(struct exec_session *e)
{
	e->conn = NULL;
	if (!e->reaped && e->pidfd >= 0) {
		log_debug("exec %d: its client went away: killing it", e->pid);
		(void)process_signal(e->pidfd, SIGKILL);
	}
	proc_io_pause(&e->io, false); /* drain and discard what is left */
}

void exec_output_room(struct exec_session *e)
{
	proc_io_pause(&e->io, false);
}

bool exec_tick(struct shim *s, int64_t now)
{
	bool busy = false;
	for (struct exec_session *e = s->execs, *next; e; e = next) {
		next = e->next; /* e may end here */
		busy |= proc_io_tick(&e->io, now);
	}
	return busy;
}

void exec_free_all(struct shim *s)
{
	while (s->execs) {
		struct exec_session *e = s->execs;
		if (!e->reaped && e->pidfd >= 0)
			(void)process_signal(e->pidfd, SIGKILL);
		exec_free(e);
	}
}
