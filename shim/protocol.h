/* The wire protocol between berth-shim and its clients (berthd, the tests), shared by both
 * sides. Internal: nothing outside shim/ includes it except the shim's own tests.
 *
 * A shim's directory (berthd: <state>/shims/<id>, mode 0700, root's) holds:
 *   shim.sock   the shim's socket (SOCK_STREAM, mode 0600; a path, never abstract: CVE-2020-15257)
 *   shim.pid    the shim's pid, written once it serves
 *   exit.json   the exit record, written to exit.json.tmp and renamed once the container's init
 *               has been reaped and its output drained; present means "stopped"
 *   console.sock  transient: where the runtime hands the shim a pty master
 *
 * A connection carries one request: a JSON object on one line ('\n'-terminated, at most
 * SHIM_REQUEST_MAX bytes) with "op" naming it. The shim answers with one JSON line:
 *   {"ok":true, ...}                          success, op-specific fields beside "ok"
 *   {"ok":false,"errno":N,"error":"message"}  failure (N > 0, the errno the shim saw)
 * Ops:
 *   status                  -> {"ok":true, SHIM_STATUS_FIELDS}
 *   start                   releases the created container's init (runtime start)
 *   kill  {"signal":N,"all":bool}
 *   resize {"width":W,"height":H}     the container's own terminal (fails without one)
 *   reopen-log              closes and reopens the log file (after it was moved away)
 *   update {"resources":{...}}        a runtime-spec linux.resources object
 *   wait                    the answer comes once the container has exited (at once if it has):
 *                           {"ok":true, SHIM_STATUS_FIELDS}
 *   shutdown                for a stopped container (refused with EBUSY otherwise): the shim
 *                           removes the runtime's state and cgroup, answers, closes every
 *                           connection, removes shim.sock and shim.pid and exits. exit.json stays.
 *   attach {"stdin":bool,"stdout":bool,"stderr":bool}
 *                           -> {"ok":true,"tty":bool}, then the connection carries frames:
 *                           stdout/stderr frames with the container's output from now on (tty:
 *                           stdout only), stdin frames into the container's stdin (when it was
 *                           opened with --stdin), resize frames, close-stdin. When the container
 *                           exits the shim sends an exit frame and closes.
 *   exec {"process":{runtime-spec process object: args, env, cwd, user, terminal, ...},
 *         "stdin":bool}
 *                           -> {"ok":true,"pid":N}, then frames both ways as for attach; after
 *                           the process exits and its output is drained, one exit frame, close.
 *                           A client that goes away kills the exec'd process (SIGKILL).
 *
 * SHIM_STATUS_FIELDS: "state":"created"|"running"|"stopped", "pid":N (the init, host pid),
 * "created":ns, "started":ns (0 before start), "finished":ns (0 while running), "exit_code":N
 * (128+signal when killed by one), "signal":N (0 unless killed by one), "oom_killed":bool.
 * Times are nanoseconds since the epoch (CRI's int64 form).
 *
 * Start-up: berth-shim --ready-fd N writes one JSON line to fd N and closes it: once the
 * container is created and shim.sock serves, {"ok":true,"shim_pid":N, SHIM_STATUS_FIELDS};
 * on failure {"ok":false,"errno":N,"error":"message"}, after removing everything it made (its
 * directory included), and exits 1.
 *
 * A frame: 1 byte stream id, 4 bytes payload length (big endian), then the payload (at most
 * SHIM_FRAME_MAX bytes). Stream ids follow Kubernetes' remote-command channels. */
#ifndef BERTH_SHIM_PROTOCOL_H
#define BERTH_SHIM_PROTOCOL_H

#include <stdint.h>

#define SHIM_SOCKET "shim.sock"
#define SHIM_PID_FILE "shim.pid"
#define SHIM_EXIT_FILE "exit.json"
#define SHIM_CONSOLE_SOCKET "console.sock"

#define SHIM_REQUEST_MAX (64 * 1024)
#define SHIM_FRAME_HEADER 5
#define SHIM_FRAME_MAX (1024 * 1024)

enum shim_stream {
	SHIM_STREAM_STDIN = 0,  /* client -> shim: bytes for the process's stdin */
	SHIM_STREAM_STDOUT = 1, /* shim -> client */
	SHIM_STREAM_STDERR = 2, /* shim -> client */
	SHIM_STREAM_EXIT = 3,   /* shim -> client: {"exit_code":N,"signal":N,"oom_killed":bool} */
	SHIM_STREAM_RESIZE = 4, /* client -> shim: {"width":W,"height":H} */
	SHIM_STREAM_CLOSE_STDIN = 255, /* client -> shim, empty: end of the client's stdin */
};

#endif
