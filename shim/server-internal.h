/* berth-shim's parts (the program, not the client library): one context (struct shim) that the
 * event loop's callbacks reach through container_of, no other globals.
 *
 *   berth-shim.c  command line, start-up (directory, logs, sockets, the container), signals,
 *                 the drain timer, shutdown
 *   io.c          a process's stdio: output pipes or a pty master read as soon as they are
 *                 readable, stdin written without blocking, the drain after the process exited
 *   server.c      shim.sock: connections, requests and their answers, frames, attach
 *   exec.c        the exec op: a process in the container, streamed over its connection
 *   exit.c        reaping (the shim is the subreaper), the exit record, status fields
 *
 * Lifecycle: created (init waiting at the runtime's barrier) -> running (start) -> the init is
 * reaped, its output drained (at most SHIM_DRAIN_IDLE_MS without data) -> exit.json written,
 * "stopped": waits answered, attach clients get an exit frame -> shutdown removes the runtime's
 * state and the shim exits. */
#ifndef BERTH_SHIM_SERVER_INTERNAL_H
#define BERTH_SHIM_SERVER_INTERNAL_H

#include "base/error.h"
#include "shim/crilog-internal.h"
#include "shim/loop-internal.h"
#include "shim/shim.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SHIM_CONN_OUT_MAX (1024 * 1024) /* queued output per connection */
#define SHIM_DRAIN_IDLE_MS 500          /* after the process exited: output silent this long */
#define SHIM_TICK_MS 100
#define SHIM_READ_CHUNK 16384

struct json;
struct json_writer;
struct shim;
struct conn;
struct exec_session;

/* ---- io.c ---- */

struct proc_io;

/* A readable end of a process's output: a pipe, or the pty master (stdout only). */
struct output {
	struct loop_source src;
	int stream; /* SHIM_STREAM_STDOUT or SHIM_STREAM_STDERR */
	struct proc_io *io;
};

/* Where stdin frames go: a pipe, or a copy of the pty master's fd. */
struct input {
	struct loop_source src; /* watched for EPOLLOUT only while a writer waits */
	int fd;
	bool tty;
	bool closed;
	struct proc_io *io;
};

struct proc_io_ops {
	void (*data)(struct proc_io *io, int stream, const char *buf, size_t len);
	void (*ended)(struct proc_io *io, int stream); /* that stream reached its end */
	void (*finished)(struct proc_io *io);           /* exited, and the output drained */
};

/* The stdio of one process (the container's init, or an exec'd one), from the shim's side. */
struct proc_io {
	struct shim *shim;
	const struct proc_io_ops *ops;
	struct output out, err;
	struct input in;
	bool tty;
	bool paused;   /* output not read for now (the exec client's buffer is full) */
	bool exited;   /* the process is reaped: draining */
	bool finished; /* finished() was called */
	int64_t last_data_ms;
};

void proc_io_init(struct proc_io *io, struct shim *s, const struct proc_io_ops *ops);
/* Pipes: stdin (or /dev/null without with_stdin), stdout, stderr. child_fds gets the ends for
 * the process (the caller closes them once it runs). */
int proc_io_pipes(struct proc_io *io, bool with_stdin, int child_fds[3], struct berth_error **err);
/* A pty master (taken over) as stdout and stdin. */
int proc_io_pty(struct proc_io *io, int master, struct berth_error **err);
int proc_io_watch(struct proc_io *io, struct berth_error **err);
void proc_io_pause(struct proc_io *io, bool pause);
/* The process was reaped: finish once the output ends or stays silent SHIM_DRAIN_IDLE_MS. */
void proc_io_exited(struct proc_io *io);
/* From the timer: true while this io still drains. */
bool proc_io_tick(struct proc_io *io, int64_t now_ms);
int proc_io_resize(struct proc_io *io, unsigned width, unsigned height, struct berth_error **err);
/* Closes every fd (no callbacks). */
void proc_io_clear(struct proc_io *io);
/* Writes what the input takes now: bytes written, or -errno (-EPIPE: its reader is gone). */
ssize_t input_write(struct input *in, const char *buf, size_t len);
/* The end of input: closes the pipe; a pty gets its end-of-file character. */
void input_close(struct input *in);
/* The console socket the runtime hands a pty master over (<dir>/console.sock), and the
 * receiving end once the process exists. */
int console_listen(struct shim *s, char *ret_path, size_t len, struct berth_error **err);
int console_receive(struct shim *s, int listen_fd, int *ret_master, struct berth_error **err);

int64_t now_ms(void);
int64_t now_ns(void);

/* ---- server.c ---- */

struct outbuf {
	char *data;
	size_t head, len, cap;
};

enum conn_kind { CONN_REQUEST, CONN_WAIT, CONN_ATTACH, CONN_EXEC };

struct conn {
	struct loop_source src;
	struct shim *shim;
	struct conn *prev, *next;
	enum conn_kind kind;
	bool closing; /* close once the output queued so far is sent */
	char *in;
	size_t in_len, in_cap;
	struct outbuf out;
	bool out_stdout, out_stderr; /* attach: the streams asked for */
	struct input *stdin_to;      /* attach/exec with stdin: where stdin frames go */
	bool had_stdin;              /* attach: asked for stdin (--stdin-once) */
	uint32_t frame_left;         /* bytes of the current stdin frame still to come */
	bool stdin_blocked;          /* the input is full: not read until it drains */
	bool resume;                 /* unblocked, its queued frames to be processed */
	bool read_done;              /* the client shut its sending side */
	uint64_t dropped;            /* attach: output bytes dropped (the client is too slow) */
	struct exec_session *exec;
};

/* What a request handler left to do (>= 0), or -errno. */
enum op_result { OP_DONE, OP_STREAM, OP_DEFERRED, OP_SHUTDOWN };
/* An optional boolean member (absent: false). */
int req_bool(const struct json *req, const char *key, bool *ret, struct berth_error **err);

int server_listen(struct shim *s, struct berth_error **err);
/* Removes shim.sock and shim.pid: no new connections. */
void server_unlisten(struct shim *s);
void server_close_all(struct shim *s);
/* Queues a frame; false when an attach client's buffer is full (the frame is dropped). */
bool conn_send_frame(struct conn *c, int stream, const void *buf, size_t len);
/* Queues the last frame (exit) or answer, and closes the connection once it is sent. */
void conn_finish(struct conn *c);
void conn_send_exit_frame(struct conn *c, int exit_code, int sig, bool oom_killed);
void conn_reply_error(struct conn *c, int r, const struct berth_error *err);
void conn_reply(struct conn *c, char *json_without_newline);
void conn_update_events(struct conn *c);
size_t conn_pending(const struct conn *c);
void conn_close(struct conn *c);
/* The container stopped: answers waits, ends attaches. */
void server_container_stopped(struct shim *s);
/* A blocked stdin writer may go on (the input drained, or closed). */
void server_input_ready(struct shim *s, struct input *in);
/* The container's output, to the attached clients that asked for that stream. */
void server_broadcast(struct shim *s, int stream, const char *buf, size_t len);

/* ---- exec.c ---- */

int op_exec(struct conn *c, const struct json *req, struct json_writer *w,
	    struct berth_error **err);
/* A reaped child that was an exec'd process: true when it was one. */
bool exec_reaped(struct shim *s, pid_t pid, int exit_code, int sig);
/* The exec's client went away: kill the process (the session ends once it is reaped). */
void exec_client_gone(struct exec_session *e);
/* Resumes an exec's output once its client's buffer has room. */
void exec_output_room(struct exec_session *e);
struct proc_io *exec_io(struct exec_session *e);
bool exec_tick(struct shim *s, int64_t now_ms);
void exec_free_all(struct shim *s);

/* ---- exit.c ---- */

void status_write(struct json_writer *w, const struct shim *s);
/* SIGCHLD: reaps every child that exited. */
void shim_reap(struct shim *s);
extern const struct proc_io_ops container_io_ops;

/* ---- berth-shim.c ---- */

/* The drain timer ticks while some io drains. */
void shim_timer_arm(struct shim *s);

struct shim_args {
	const char *dir, *id, *bundle, *runtime_root, *log_path, *log_level;
	uint64_t log_max_size;
	unsigned log_max_files;
	size_t log_line_max;
	bool stdin_open, stdin_once, systemd_cgroup;
	int ready_fd;
};

struct shim {
	struct loop loop;
	struct shim_args a;
	int dir_fd, log_fd; /* log_fd: <dir>/shim.log, the shim's own log */
	bool dir_made, created;
	int listen_fd, signal_fd, timer_fd;
	struct loop_source listen_src, signal_src, timer_src;
	bool timer_armed;
	struct crilog *log; /* NULL without --log */
	struct cgroup *cg;  /* the container's, for its OOM kill count; NULL without cgroup2 */
	uint64_t oom_base;
	struct proc_io io; /* the container's init */
	enum shim_state state;
	pid_t pid;
	int64_t created_ns, started_ns, finished_ns;
	int exit_code, signal;
	bool oom_killed;
	bool stdin_once_done;
	struct conn *conns;
	struct exec_session *execs;
	char rbuf[SHIM_READ_CHUNK]; /* every read lands here first */
};

#endif
