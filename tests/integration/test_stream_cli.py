"""berth exec, attach and port-forward (issue 9, the command line) against a real berthd: stdin
piped in, stdout and stderr kept apart, exit codes passed through; `exec -it` under a
pseudo-terminal, where the process sees the terminal's size and its changes; attach to a running
container (Ctrl-C detaches, the container's exit code comes back); port-forward moving bytes both
ways, a URL per connection; bad input, each a one-line error with the documented exit status.

berthd runs in the test's "node" network namespace and its streaming server listens on
127.0.0.1 there, so berth (and the TCP clients of port-forward) run there too, through
`nsenter --net`. The bd fixture (berthdtools.py) removes every pod at the end and fails the test
when anything is left.
"""

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time

import pytest
from berthdtools import BERTH, PYTHON, bd, image_tar, node  # noqa: F401 (fixtures)
from proctools import wait_until

TIMEOUT = 30  # seconds, for one berth command
SLEEPER = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
ECHO_PORT = 8080
# busybox nc: one `cat` per accepted connection, persistently (-ll)
ECHO_SERVER = ["/bin/sh", "-c", f"exec nc -ll -p {ECHO_PORT} -e busybox cat"]


def berth_argv(bd, *args):
    return bd.node.enter() + [BERTH, "--socket", str(bd.socket), *args]


def berth(bd, *args, input=b"", timeout=TIMEOUT):
    """Runs berth in the node namespace: a CompletedProcess with bytes output."""
    return subprocess.run(berth_argv(bd, *args), input=input, capture_output=True,
                          timeout=timeout, check=False)


def one_line(stderr):
    text = stderr.decode()
    assert text.endswith("\n") and text.count("\n") == 1 and text.startswith("berth: "), text
    return text


def start(c, pod, name, command, **config):
    cid = c.create(pod, name, command, **config)
    c.ok("container.start", container_id=cid)
    c.wait_state(cid, "running")
    return cid


@pytest.fixture
def web(bd):
    """berthd started, a pod "web" with a running container "main" (a sleeper)."""
    bd.start()
    c = bd.client()
    pod = c.run_pod("web")
    cid = start(c, pod, "main", SLEEPER)
    yield c, pod, cid
    c.close()


# --- exec -------------------------------------------------------------------------------------


def test_exec_pipes_stdin_and_keeps_stdout_and_stderr_apart(bd, web):
    r = berth(bd, "exec", "-i", "main", "sh", "-c", "cat; echo oops >&2; exit 3",
              input=b"hello\nworld\n")
    assert r.returncode == 3, r
    assert r.stdout == b"hello\nworld\n"
    assert r.stderr == b"oops\n"


def test_exec_moves_a_large_stream_both_ways(bd, web):
    # more than the shim's and the sockets' buffers together: stdin and stdout must flow at once
    data = os.urandom(8 << 20)
    r = berth(bd, "exec", "-i", "main", "sh", "-c", "cat", input=data, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == data


def test_exec_exit_codes_and_names(bd, web):
    c, pod, cid = web
    assert berth(bd, "exec", "main", "sh", "-c", "exit 3").returncode == 3
    assert berth(bd, "exec", cid, "sh", "-c", "true").returncode == 0  # the full id
    r = berth(bd, "exec", cid[:12], "sh", "-c", "echo $((6*7))")  # a unique prefix
    assert (r.returncode, r.stdout) == (0, b"42\n"), r
    r = berth(bd, "exec", "main", "sh", "-c", "kill -9 $$")
    assert r.returncode == 137, r  # 128 + SIGKILL, as the status says
    # without -i, stdin is not read: the process sees none
    r = berth(bd, "exec", "main", "sh", "-c", "cat; echo done", input=b"unread\n")
    assert (r.returncode, r.stdout) == (0, b"done\n"), r


def test_exec_command_that_cannot_start(bd, web):
    r = berth(bd, "exec", "main", "/no/such/program")
    assert r.returncode != 0
    assert r.stderr, r


class Terminal:
    """berth run under a pseudo-terminal (pty.fork): the child is nsenter, which execs berth."""

    def __init__(self, argv, rows, cols):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: berth on the pty's slave side
            try:
                os.execvp(argv[0], argv)
            finally:
                os._exit(127)
        self.resize(rows, cols)
        self.out = b""

    def resize(self, rows, cols):
        # the kernel sends SIGWINCH to the terminal's foreground process group: berth
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def write(self, data):
        os.write(self.fd, data)

    def read_until(self, needle, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while needle not in self.out and time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # EIO: the slave side is closed
                    break
                if not chunk:
                    break
                self.out += chunk
        return needle in self.out

    def wait(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read_until(b"\0never", 0.1)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.pid = 0
                return os.waitstatus_to_exitcode(status)
        raise AssertionError(f"berth did not exit; output: {self.out[-500:]!r}")

    def close(self):
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)  # our own child
            os.waitpid(self.pid, 0)
        os.close(self.fd)


def test_exec_tty_sees_the_terminal_size_and_its_changes(bd, web):
    t = Terminal(berth_argv(bd, "exec", "-it", "main", "sh"), 33, 111)
    try:
        # ash's line editing flushes what was typed before its prompt
        assert t.read_until(b"# "), t.out
        time.sleep(0.2)
        t.write(b"stty size; echo mark-$((1+1))\n")
        assert t.read_until(b"33 111"), t.out
        assert t.read_until(b"mark-2"), t.out
        t.resize(40, 120)
        time.sleep(0.3)  # the resize message travels on its own channel
        t.write(b"stty size\n")
        assert t.read_until(b"40 120"), t.out
        # a tty merges stderr into stdout
        t.write(b"echo to-stderr >&2\n")
        assert t.read_until(b"to-stderr"), t.out
        # raw mode: ^C is a byte for the container's terminal, which interrupts the sleep there;
        # berth itself goes on
        t.write(b"sleep 30; echo slept-$((6*7))\n")
        time.sleep(0.5)
        t.write(b"\x03")
        t.write(b"echo after-$((2+3))\n")
        assert t.read_until(b"after-5", 10), t.out
        assert b"slept-42" not in t.out
        t.write(b"exit 5\n")
        assert t.wait() == 5
        # the terminal is no longer raw: berth restored it (icanon back on)
        assert termios.tcgetattr(t.fd)[3] & termios.ICANON
    finally:
        t.close()


# --- attach -----------------------------------------------------------------------------------


def test_attach_streams_output_and_ctrl_c_detaches(bd, web):
    c, pod, _ = web
    cid = start(c, pod, "ticker", ["/bin/sh", "-c",
                                   "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done"])
    p = subprocess.Popen(berth_argv(bd, "attach", "ticker"), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lines = [p.stdout.readline() for _ in range(3)]
        assert all(line.startswith(b"tick ") for line in lines), lines
        p.send_signal(signal.SIGINT)  # nsenter exec'd berth: our child
        assert p.wait(TIMEOUT) == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()
    assert c.status(cid)["state"] == "running"  # detached, not killed


def test_attach_returns_the_containers_exit_code(bd, web):
    c, pod, _ = web
    start(c, pod, "brief", ["/bin/sh", "-c", "sleep 1.5; echo bye; echo err >&2; exit 4"])
    r = berth(bd, "attach", "brief")
    assert r.returncode == 4, r
    assert r.stdout == b"bye\n" and r.stderr == b"err\n", r


def test_attach_stdin_and_tty_mismatch(bd, web):
    c, pod, _ = web
    start(c, pod, "reader", ["/bin/sh", "-c", "read line; echo got $line; exit 0"], stdin=True)
    r = berth(bd, "attach", "-i", "reader", input=b"hello\n")
    assert (r.returncode, r.stdout) == (0, b"got hello\n"), r
    start(c, pod, "console", SLEEPER, tty=True, stdin=True)
    r = berth(bd, "attach", "console")
    assert r.returncode == 1
    assert "-t" in one_line(r.stderr), r.stderr


# --- port-forward -----------------------------------------------------------------------------


# A TCP client in the node namespace: per connection, sends SIZE random bytes and expects them
# back (the pod runs an echo server), then closes; prints "ok" per connection.
CLIENT = """
import os, socket, sys
port, n, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for _ in range(n):
    c = socket.create_connection(("127.0.0.1", port), timeout=20)
    data = os.urandom(size)
    c.sendall(data)
    got = b""
    while len(got) < size:
        chunk = c.recv(65536)
        if not chunk:
            break
        got += chunk
    print("ok" if got == data else f"bad {len(got)}", flush=True)
    c.close()
"""


def forwarder(bd, *args):
    """berth port-forward, started; returns (Popen, [local ports in the order given])."""
    p = subprocess.Popen(berth_argv(bd, "port-forward", *args), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ports = []
    for _ in args[1:]:
        line = p.stdout.readline().decode()
        assert line.startswith("Forwarding from 127.0.0.1:"), (line, p.stderr.read())
        ports.append(int(line.split(":")[1].split()[0]))
    return p, ports


def stop(p):
    p.send_signal(signal.SIGINT)
    try:
        rc = p.wait(TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read()
    p.stdout.close()
    p.stderr.close()
    return rc, err


def test_port_forward_moves_bytes_both_ways(bd, web):
    c, pod, _ = web
    cid = start(c, pod, "echo", ECHO_SERVER)
    wait_until(lambda: berth(bd, "exec", cid, "sh", "-c", f"netstat -ltn | grep -q :{ECHO_PORT}")
               .returncode == 0, 20, "the echo server to listen", 0.1)
    p, (any_port, same_port) = forwarder(bd, "web", f"0:{ECHO_PORT}", f"{ECHO_PORT}")
    try:
        assert any_port > 0 and same_port == ECHO_PORT
        for port, n, size in ((any_port, 3, 1000), (same_port, 1, 1 << 20)):
            r = bd.node.run(PYTHON, "-c", CLIENT, str(port), str(n), str(size), timeout=60)
            assert r.stdout.split() == ["ok"] * n, r.stdout
    finally:
        rc, err = stop(p)
    assert rc == 0, err


def test_port_forward_to_a_closed_port_reports_it(bd, web):
    p, (port,) = forwarder(bd, "web", "0:9")
    try:
        r = bd.node.run(PYTHON, "-c", CLIENT, str(port), "1", "10", check=False)
        assert r.stdout.strip() in ("bad 0", ""), r  # closed without a byte
    finally:
        rc, err = stop(p)
    assert rc == 0
    assert b"connect to port 9" in err and err.count(b"\n") == 1, err


# --- bad input --------------------------------------------------------------------------------


def test_bad_input(bd, web):
    c, pod, _ = web
    r = berth(bd, "exec", "nosuch", "true")
    assert r.returncode == 1
    assert one_line(r.stderr) == 'berth: exec: container "nosuch": no such container\n'
    r = berth(bd, "port-forward", "nosuch", "80")
    assert r.returncode == 1 and "no such pod" in one_line(r.stderr)
    for args in (["exec"], ["exec", "main"], ["exec", "--bogus", "main", "true"], ["attach"],
                 ["attach", "main", "extra"], ["port-forward", "web"],
                 ["port-forward", "web", "70000"], ["port-forward", "web", "x:80"]):
        r = berth(bd, *args)
        assert r.returncode == 2, (args, r)
        one_line(r.stderr)
    cid = c.create(pod, "done", ["/bin/sh", "-c", "exit 0"])
    c.ok("container.start", container_id=cid)
    c.wait_state(cid, "exited")
    for args in (["exec", "done", "sh"], ["attach", "done"]):
        r = berth(bd, *args)
        assert r.returncode == 1, r
        assert "is not running" in one_line(r.stderr)


def test_no_berthd(bd, tmp_path):
    r = subprocess.run([BERTH, "--socket", str(tmp_path / "none.sock"), "exec", "x", "true"],
                       capture_output=True, timeout=TIMEOUT, check=False)
    assert r.returncode == 1 and "connect to berthd" in one_line(r.stderr)
    env = dict(os.environ, BERTH_SOCKET=str(tmp_path / "env.sock"))
    r = subprocess.run([BERTH, "attach", "x"], capture_output=True, timeout=TIMEOUT, check=False,
                       env=env)
    assert r.returncode == 1 and "env.sock" in one_line(r.stderr)
