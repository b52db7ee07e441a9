/* Reaping and the exit record (server-internal.h): the shim is the container's parent and the
 * subreaper of whatever the container leaves behind; the container's exit is recorded once its
 * output is drained, in exit.json (temp file, fsync, rename), before anyone hears of it. */
#include "shim/server-internal.h"
#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "base/log.h"
#include "cgroup/cgroup.h"
#include "shim/protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *state_name(enum shim_state st)
{
	switch (st) {
	case SHIM_STATE_CREATED:
		return "created";
	case SHIM_STATE_RUNNING:
		return "running";
	case SHIM_STATE_STOPPED:
		return "stopped";
	}
	return "unknown";
}

void status_write(struct json_writer *w, const struct shim *s)
{
	bjson_writer_kv_string(w, "state", state_name(s->state));
	bjson_writer_kv_int(w, "pid", s->pid);
	bjson_writer_kv_int(w, "created", s->created_ns);
	bjson_writer_kv_int(w, "started", s->started_ns);
	bjson_writer_kv_int(w, "finished", s->finished_ns);
	bjson_writer_kv_int(w, "exit_code", s->exit_code);
	bjson_writer_kv_int(w, "signal", s->signal);
	bjson_writer_kv_bool(w, "oom_killed", s->oom_killed);
}

/* exit.json.tmp, fsync, rename, fsync the directory: present means complete. */
static int exit_record_write(struct shim *s, struct berth_error **err)
{
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "id", s->a.id);
	status_write(w, s);
	bjson_writer_end_object(w);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if (bjson_writer_finish(w, &text, &len) < 0)
		return -ENOMEM;
	const char *tmp = SHIM_EXIT_FILE ".tmp";
	_cleanup_close_ int fd = openat(s->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
							O_NOFOLLOW, 0600);
	if (fd < 0)
		return berth_error_setsys(err, errno, "create %s", tmp);
	int r = write_all(fd, text, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && renameat(s->dir_fd, tmp, s->dir_fd, SHIM_EXIT_FILE) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlinkat(s->dir_fd, tmp, 0);
		return berth_error_setsys(err, -r, "write %s", SHIM_EXIT_FILE);
	}
	if (fsync(s->dir_fd) < 0)
		log_warn("fsync %s: %s", s->a.dir, strerror(errno));
	return 0;
}

static void container_data(struct proc_io *io, int stream, const char *buf, size_t len)
{
	struct shim *s = io->shim;
	if (s->log)
		crilog_write(s->log, stream == SHIM_STREAM_STDOUT ? CRILOG_STDOUT : CRILOG_STDERR,
			     buf, len);
	server_broadcast(s, stream, buf, len);
}

static void container_ended(struct proc_io *io, int stream)
{
	struct shim *s = io->shim;
	if (s->log)
		crilog_end_stream(s->log,
				  stream == SHIM_STREAM_STDOUT ? CRILOG_STDOUT : CRILOG_STDERR);
}

static void container_finished(struct proc_io *io)
{
	struct shim *s = io->shim;
	input_close(&io->in);
	if (s->cg && cgroup_oom_kills(s->cg) > s->oom_base)
		s->oom_killed = true;
	s->state = SHIM_STATE_STOPPED;
	struct berth_error *err = NULL;
	if (exit_record_write(s, &err) < 0) {
		/* the status op and waits still tell; only a restarted client would miss it */
		log_error("%s", err ? err->msg : "write the exit record: out of memory");
		berth_error_free(err);
	}
	if (s->log && crilog_drops(s->log))
		log_warn("log %s: %llu records could not be written", s->a.log_path,
			 (unsigned long long)crilog_drops(s->log));
	log_info("container %s exited: code %d, signal %d%s", s->a.id, s->exit_code, s->signal,
		 s->oom_killed ? ", OOM killed" : "");
	server_container_stopped(s);
}

const struct proc_io_ops container_io_ops = {
	.data = container_data,
	.ended = container_ended,
	.finished = container_finished,
};

/* A container that shares a pid namespace (its pod's, or the node's) does not take its other
 * processes with its init, as one with a namespace of its own does: they are killed now (as
 * containerd's shim does), so that the output they hold closes at once and nothing of an exited
 * container runs on. Its cgroup is empty otherwise. */
static void kill_leftovers(struct shim *s)
{
	struct berth_error *err = NULL;
	if (s->cg && cgroup_kill(s->cg, SIGKILL, &err) < 0) {
		log_warn("killing what the container's init left running: %s", err->msg);
		berth_error_free(err);
	}
}

static void container_reaped(struct shim *s, int exit_code, int sig)
{
	s->exit_code = exit_code;
	s->signal = sig;
	s->finished_ns = now_ns();
	kill_leftovers(s);
	proc_io_exited(&s->io);
}

void shim_reap(struct shim *s)
{
	for (;;) {
		siginfo_t si = { 0 };
		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG) < 0) {
			if (errno == EINTR)
				continue;
			if (errno != ECHILD)
				log_error("waitid: %s", strerror(errno));
			return;
		}
		if (si.si_pid == 0)
			return;
		bool exited = si.si_code == CLD_EXITED;
		int sig = exited ? 0 : si.si_status;
		int code = exited ? si.si_status : 128 + si.si_status;
		if (s->pid > 0 && si.si_pid == s->pid)
			container_reaped(s, code, sig);
		else if (!exec_reaped(s, si.si_pid, code, sig))
			log_debug("reaped %d (code %d)", si.si_pid, code);
	}
}
