"""berthd's streaming server (berth issue 9) driven by an independent client: the CRI's Exec,
Attach and PortForward (gRPC, critools.py) and the JSON API's stream.* ops hand out URLs, and
Debian's python3-websocket (websocket-client, through streamtools.py) speaks Kubernetes'
channel protocols on them: exec with and without a tty, stdin and its v5 close, stdout and stderr
apart, the exit code on the status channel, tty resizes, attach to a running container's output
and input, port forwarding to a server in a pod, single-use and expiring URLs, bad requests,
concurrent sessions, input that arrives as the process ends (the status must still come), the
limits (sessions per client, idle sessions), and clients that vanish mid-stream (no process,
fd or thread left behind).

Each test runs its own berthd inside a network namespace it made (berthdtools.py); the streaming
server listens on 127.0.0.1 there, and streamtools creates the client's sockets inside that
namespace. The bd fixture removes every pod at the end and fails the test if anything is left.
"""

import os
import random
import re
import time
from pathlib import Path

import pytest
from berthdtools import (  # noqa: F401 (fixtures)
    IMAGE,
    bd,
    image_tar,
    node,
)
from critools import CriClient
from proctools import pid_alive, wait_until
from streamtools import (
    PORTFORWARD,
    STATUS,
    STATUS_SUCCESS,
    STDERR,
    STDOUT,
    V4,
    V5,
    Session,
    bad_status,
    connect,
    handshake,
    listening,
    parse_url,
    status_failure_exit,
)

UNKNOWN = "0123456789abcdef0123456789abcdef"
# a container that runs until it is stopped (exits 0 on SIGTERM at once)
SLEEPER = ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
TOKEN_GONE = "stream token unknown, used or expired"


def cri(bd):
    return CriClient(bd.socket, log_root=bd.logs)


@pytest.fixture
def ws(bd):
    """open(url, protocols=None) -> a streamtools.Session in the node namespace; every session
    opened is closed at the end (before the bd fixture's checks)."""
    made = []

    def open_session(url, protocols=None, timeout=15):
        s = Session(bd.node, url, protocols, timeout)
        made.append(s)
        return s

    yield open_session
    for s in made:
        s.close()


def start_container(c, pod, pcfg, name, command, **config):
    cid = c.create(pod, pcfg, name, command, IMAGE, **config)
    c.call("StartContainer", container_id=cid)
    c.wait_state(cid, "CONTAINER_RUNNING")
    return cid


def pod_with(c, name, command=SLEEPER, **config):
    """A ready pod with one running container: (pod, pod config, container id)."""
    pod, pcfg = c.run_pod(name)
    return pod, pcfg, start_container(c, pod, pcfg, "main", command, **config)


def exec_url(c, cid, cmd, tty=False, stdin=False, stdout=True, stderr=True):
    url = c.call("Exec", container_id=cid, cmd=cmd, tty=tty, stdin=stdin, stdout=stdout,
                 stderr=stderr).url
    assert parse_url(url)[1] == "exec", url
    return url


def attach_url(c, cid, stdin=False, tty=False, stdout=True, stderr=True):
    url = c.call("Attach", container_id=cid, stdin=stdin, tty=tty, stdout=stdout,
                 stderr=stderr).url
    assert parse_url(url)[1] == "attach", url
    return url


def pf_url(c, pod, ports):
    url = c.call("PortForward", pod_sandbox_id=pod, port=list(ports)).url
    assert parse_url(url)[1] == "portforward", url
    return url


def pids_with_argv(argv):
    """Live pids whose command line is exactly argv (a list of str)."""
    want = b"\0".join(a.encode() for a in argv) + b"\0"
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if Path(f"/proc/{name}/cmdline").read_bytes() == want and pid_alive(int(name)):
                found.append(int(name))
        except OSError:
            continue
    return found


def unique_number():
    return str(random.randint(100000, 999999))


# --- exec ---------------------------------------------------------------------------------------


def test_exec_stdin_stdout_stderr_and_exit_code(bd, ws):
    bd.start()
    c = cri(bd)
    _, _, cid = pod_with(c, "ex")
    url = exec_url(c, cid, ["/bin/sh", "-c", "cat; echo err >&2; exit 3"], stdin=True)
    s = ws(url)
    assert s.protocol == V5, s.protocol
    s.stdin("hello")
    # cat passes it on while stdin is still open: the stream is not buffered to the end
    s.wait_text(STDOUT, "hello")
    s.close_stdin()  # v5's [255, 0]: cat sees EOF
    s.finish()
    s.assert_clean_end()
    assert s.out.get(STDOUT) == b"hello", s.describe()
    assert s.out.get(STDERR) == b"err\n", s.describe()
    assert s.status == status_failure_exit(3), s.describe()
    assert set(s.out) == {STDOUT, STDERR, STATUS}, s.describe()
    c.close()


def test_exec_success_v4_signal_and_failure(bd, ws):
    bd.start()
    c = cri(bd)
    _, _, cid = pod_with(c, "ex")

    # success, both streams apart, no stdin asked for
    s = ws(exec_url(c, cid, ["/bin/sh", "-c", "echo out; echo err >&2"]))
    s.finish()
    s.assert_clean_end()
    assert (s.out.get(STDOUT), s.out.get(STDERR)) == (b"out\n", b"err\n"), s.describe()
    assert s.status == STATUS_SUCCESS, s.describe()

    # the server's preference wins over the client's order
    s = ws(exec_url(c, cid, ["/bin/sh", "-c", "true"]), protocols=[V4, V5])
    assert s.protocol == V5, s.protocol
    s.finish()
    s.assert_clean_end()
    assert s.status == STATUS_SUCCESS, s.describe()

    # a v4 client (no 255 close channel): the same framing and status
    s = ws(exec_url(c, cid, ["/bin/sh", "-c", "echo v4; echo e4 >&2; exit 2"]), protocols=[V4])
    assert s.protocol == V4, s.protocol
    s.finish()
    s.assert_clean_end()
    assert (s.out.get(STDOUT), s.out.get(STDERR)) == (b"v4\n", b"e4\n"), s.describe()
    assert s.status == status_failure_exit(2), s.describe()

    # only stdout asked for: stderr goes nowhere, nothing on channel 2
    s = ws(exec_url(c, cid, ["/bin/sh", "-c", "echo o; echo e >&2"], stderr=False))
    s.finish()
    s.assert_clean_end()
    assert s.out.get(STDOUT) == b"o\n" and STDERR not in s.out, s.describe()
    assert s.status == STATUS_SUCCESS, s.describe()

    # killed by a signal: exit status 128+S
    s = ws(exec_url(c, cid, ["/bin/sh", "-c", "kill -9 $$"]))
    s.finish()
    s.assert_clean_end()
    assert s.status == status_failure_exit(137), s.describe()

    # an exec that cannot start: a Failure with a one-line message, no hang
    s = ws(exec_url(c, cid, ["/no/such/program"]))
    s.finish()
    s.assert_clean_end()
    st = s.status
    assert st.get("status") == "Failure" and st.get("metadata") == {}, s.describe()
    msg = st.get("message", "")
    assert msg and "\n" not in msg, s.describe()

    # the container was not disturbed by any of it
    assert c.state_name(c.status(cid).state) == "CONTAINER_RUNNING"
    c.close()


def sizes(s):
    """The "ROWS COLUMNS" lines of stty size in a session's tty output."""
    return re.findall(r"^(\d+ \d+)\r?$", s.text(STDOUT), re.M)


def test_exec_tty_and_resize(bd, ws):
    bd.start()
    c = cri(bd)
    _, _, cid = pod_with(c, "tty")
    script = ("test -t 0 && test -t 1 && echo IS-A-TTY; read a; stty size; read b; stty size; "
              "echo done-$a-$b")
    url = exec_url(c, cid, ["/bin/sh", "-c", script], tty=True, stdin=True, stderr=False)
    s = ws(url)
    s.resize(100, 40)
    # a tty's output discipline: "\n" goes out as "\r\n" (the pty may hand the line over in two
    # reads, so wait for all of it)
    s.wait_text(STDOUT, "IS-A-TTY\r\n")
    assert "IS-A-TTY\r\n" in s.text(STDOUT), s.describe()
    time.sleep(0.3)  # the resize and the line may go different ways to the process
    s.stdin("a\n")
    s.read_until(lambda x: len(sizes(x)) >= 1, what="stty's first answer")
    assert sizes(s)[0] == "40 100", \
        f"the first resize (100x40) is not what stty sees: {s.describe()}"
    s.resize(120, 50)
    time.sleep(0.3)
    s.stdin("b\n")
    s.wait_text(STDOUT, "done-a-b")
    assert sizes(s) == ["40 100", "50 120"], \
        f"the second resize (120x50) is not what stty sees: {s.describe()}"
    s.finish()
    s.assert_clean_end()
    assert s.status == STATUS_SUCCESS, s.describe()
    assert STDERR not in s.out, s.describe()  # a tty has one output stream
    c.close()


def test_tty_exec_starts_with_the_first_size(bd, ws):
    """kubectl sends the terminal's size first thing: a process that asks at once (stty size,
    a shell drawing its prompt) already has it, not 0x0."""
    bd.start()
    c = cri(bd)
    _, _, cid = pod_with(c, "size")
    url = exec_url(c, cid, ["/bin/sh", "-c", "stty size"], tty=True, stdin=True, stderr=False)
    s = ws(url)
    s.resize(132, 43)
    s.finish()
    s.assert_clean_end()
    assert sizes(s) == ["43 132"], s.describe()
    assert s.status == STATUS_SUCCESS, s.describe()
    c.close()


def test_status_survives_input_the_process_never_takes(bd, ws):
    """`echo data | kubectl exec -i POD -- true`: what the client sends as, or after, the
    process ends (stdin it never reads, stdin's close, a resize) must not cost the client the
    exit status and the close."""
    bd.start()
    c = cri(bd)
    _, _, cid = pod_with(c, "late")
    blob = b"x" * 100_000
    lost = []
    for i in range(15):
        s = ws(exec_url(c, cid, ["/bin/sh", "-c", "exit 4"], stdin=True))
        try:
            s.stdin(blob)
            s.close_stdin()
        except OSError:  # the server may have gone on before we were done sending
            pass
        s.finish()
        if s.status != status_failure_exit(4) or s.close_code != 1000:
            lost.append(f"stdin, round {i}: {s.describe()}")
        s.close()
        s = ws(exec_url(c, cid, ["/bin/sh", "-c", "true"], tty=True, stdin=True, stderr=False))
        try:
            s.resize(80, 24)
            s.stdin("x")
        except OSError:
            pass
        s.finish()
        if s.status != STATUS_SUCCESS or s.close_code != 1000:
            lost.append(f"tty, round {i}: {s.describe()}")
        s.close()
    assert not lost, f"{len(lost)} of 30 sessions ended without status or close:\n" + \
        "\n".join(lost[:5])
    c.close()


def test_concurrent_sessions(bd, ws):
    """Ten exec sessions at once, each with its own data: nothing crosses between them."""
    bd.start()
    c = cri(bd)
    _, _, cid = pod_with(c, "many")
    sessions = [ws(exec_url(c, cid, ["/bin/busybox", "cat"], stdin=True)) for _ in range(10)]
    for k, s in enumerate(sessions):
        s.stdin(f"session {k} says hello\n" * 50)
    for k, s in enumerate(sessions):
        s.wait_text(STDOUT, f"session {k} says hello\n" * 50)
        s.close_stdin()
    for k, s in enumerate(sessions):
        s.finish()
        s.assert_clean_end()
        assert s.out[STDOUT] == f"session {k} says hello\n".encode() * 50, s.describe()
        assert s.status == STATUS_SUCCESS, s.describe()
    c.close()


# --- attach -------------------------------------------------------------------------------------


def test_attach(bd, ws):
    bd.start()
    c = cri(bd)
    pod, pcfg = c.run_pod("att")
    counter = start_container(c, pod, pcfg, "counter", [
        "/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo line $i; sleep 0.2; done"])

    def numbers(s):
        return [int(x.split()[1]) for x in s.text(STDOUT).splitlines()
                if x.startswith("line ") and x.split()[1:2] and x.split()[1].isdigit()]

    s = ws(attach_url(c, counter))
    s.read_until(lambda x: len(numbers(x)) >= 4, what="four numbered lines")
    got = numbers(s)
    assert got == list(range(got[0], got[0] + len(got))), f"lines out of order: {got}"
    assert not s.status_raw, s.describe()
    s.close()
    time.sleep(0.6)
    st = c.status(counter)
    assert c.state_name(st.state) == "CONTAINER_RUNNING", st
    # attach again: live output still comes (the first session did not take it away)
    s = ws(attach_url(c, counter))
    s.read_until(lambda x: len(numbers(x)) >= 2, what="lines on a second attach")
    assert numbers(s)[0] > got[-1], (got, numbers(s))
    s.drop()
    time.sleep(0.6)
    assert c.state_name(c.status(counter).state) == "CONTAINER_RUNNING"

    # a container created with stdin: what the client sends reaches it
    echo = start_container(c, pod, pcfg, "echo", [
        "/bin/sh", "-c", "while read l; do echo \"got $l\"; done"], stdin=True)
    s = ws(attach_url(c, echo, stdin=True))
    s.stdin("hi\n")
    s.wait_text(STDOUT, "got hi\n")
    s.close()
    time.sleep(0.3)
    assert c.state_name(c.status(echo).state) == "CONTAINER_RUNNING"
    # its stdin outlives the session: a second one reaches the same process
    s = ws(attach_url(c, echo, stdin=True))
    s.stdin("again\n")
    s.wait_text(STDOUT, "got again\n")
    s.close()

    # the container exits while attached: its exit code on the status channel, then the close
    ender = start_container(c, pod, pcfg, "ender", [
        "/bin/sh", "-c", "read x; echo bye $x; echo gone >&2; exit 5"], stdin=True)
    s = ws(attach_url(c, ender, stdin=True))
    s.stdin("z\n")
    s.finish()
    s.assert_clean_end()
    assert b"bye z\n" in s.out.get(STDOUT, b""), s.describe()
    assert b"gone\n" in s.out.get(STDERR, b""), s.describe()
    assert s.status == status_failure_exit(5), s.describe()
    st = c.wait_state(ender, "CONTAINER_EXITED")
    assert st.exit_code == 5, st
    c.close()


# --- port forwarding ----------------------------------------------------------------------------


def tcp_listening(c, cid, port):
    """True once something listens on port in the pod's network namespace (as cid sees it)."""
    r = c.call("ExecSync", container_id=cid, timeout=10,
               cmd=["/bin/busybox", "cat", "/proc/net/tcp", "/proc/net/tcp6"])
    want = f":{port:04X} "
    return any(want in line and line.split()[3] == "0A" for line in
               r.stdout.decode().splitlines())


def tcp_connections(c, cid, port):
    """Established TCP connections to port in the pod's network namespace (as cid sees it)."""
    r = c.call("ExecSync", container_id=cid, timeout=10,
               cmd=["/bin/busybox", "cat", "/proc/net/tcp", "/proc/net/tcp6"])
    want = f":{port:04X}"
    return [line for line in r.stdout.decode().splitlines()
            if line.split()[1:2] and line.split()[1].endswith(want) and line.split()[3] == "01"]


def test_port_forward(bd, ws):
    bd.start()
    c = cri(bd)
    pod, pcfg = c.run_pod("pf")
    echo = start_container(c, pod, pcfg, "echo", [
        "/bin/busybox", "nc", "-ll", "-p", "8080", "-e", "/bin/busybox", "cat"])
    once = start_container(c, pod, pcfg, "once", [
        "/bin/busybox", "nc", "-ll", "-p", "8081", "-e", "/bin/sh", "-c",
        "read l; echo \"re $l\""])
    try:
        wait_until(lambda: tcp_listening(c, echo, 8080) and tcp_listening(c, echo, 8081), 10,
                   "the pod's servers to listen")
    except AssertionError:
        tcp = c.call("ExecSync", container_id=echo, timeout=10,
                     cmd=["/bin/busybox", "cat", "/proc/net/tcp",
                          "/proc/net/tcp6"]).stdout.decode()
        states = {x.metadata.name: (c.state_name(x.state), x.exit_code)
                  for x in (c.status(i) for i in (echo, once))}
        raise AssertionError(f"no servers in the pod: {states}\n{tcp}") from None
    p8080, p8081 = (8080).to_bytes(2, "little"), (8081).to_bytes(2, "little")

    # one port: the port number first on its data and error channels, then an echo
    s = ws(pf_url(c, pod, [8080]))
    assert s.protocol == PORTFORWARD, s.protocol
    s.read_until(lambda x: len(x.messages) >= 2, what="the two port messages")
    assert sorted(s.messages[:2]) == [(0, p8080), (1, p8080)], s.describe()
    s.send(0, b"ping\n")
    s.read_until(lambda x: x.out.get(0, b"").endswith(b"ping\n"), what="the echo")
    assert s.out[0] == p8080 + b"ping\n", s.describe()
    # a large message comes back whole, in order
    blob = bytes(random.getrandbits(8) for _ in range(200_000))
    s.send(0, blob)
    s.read_until(lambda x: len(x.out.get(0, b"")) >= 2 + 5 + len(blob), timeout=30,
                 what="200 kB back")
    assert s.out[0] == p8080 + b"ping\n" + blob, "the echoed bytes differ"
    assert 1 not in s.out or s.out[1] == p8080, s.describe()  # no error
    s.close()

    # two ports in one session: channels 0/1 for the first, 2/3 for the second
    s = ws(pf_url(c, pod, [8080, 8081]))
    s.read_until(lambda x: len(x.messages) >= 4, what="the four port messages")
    assert sorted(s.messages[:4]) == [(0, p8080), (1, p8080), (2, p8081), (3, p8081)], \
        s.describe()
    s.send(2, b"x\n")
    s.send(0, b"y\n")
    s.read_until(lambda x: x.out.get(2, b"") == p8081 + b"re x\n" and
                 x.out.get(0, b"") == p8080 + b"y\n", what="both ports' answers")
    s.close()

    # the pod side closes: the server closes the session
    s = ws(pf_url(c, pod, [8081]))
    s.read_until(lambda x: len(x.messages) >= 2, what="the two port messages")
    s.send(0, b"w\n")
    s.finish()
    assert s.out.get(0) == p8081 + b"re w\n", s.describe()
    s.assert_clean_end()

    # a port nobody listens on: a message on its error channel naming the port and the pod
    s = ws(pf_url(c, pod, [9999]))
    p9999 = (9999).to_bytes(2, "little")
    s.read_until(lambda x: len(x.out.get(1, b"")) > 2, what="an error on channel 1")
    assert s.out.get(1, b"")[:2] == p9999 and (0, p9999) in s.messages, s.describe()
    err = s.out[1][2:].decode(errors="replace")
    assert "connect to port 9999 in pod" in err and pod in err and "refused" in err.lower(), err
    s.close()

    # the v4 channel protocol is accepted for port forwarding too
    s = ws(pf_url(c, pod, [8080]), protocols=[V4])
    assert s.protocol == V4, s.protocol
    s.read_until(lambda x: len(x.messages) >= 2, what="the two port messages")
    s.send(0, b"v4\n")
    s.read_until(lambda x: x.out.get(0, b"") == p8080 + b"v4\n", what="the v4 echo")
    s.close()
    c.close()


# --- URLs and bad requests ----------------------------------------------------------------------


def test_urls_are_single_use(bd, ws):
    bd.start()
    c = cri(bd)
    _, _, cid = pod_with(c, "url")
    url = exec_url(c, cid, ["/bin/sh", "-c", "echo once"])
    port, kind, token = parse_url(url)
    s = ws(url)
    # reused while the first session is on, and after it ended
    assert bad_status(bd.node, url) == 404
    s.finish()
    s.assert_clean_end()
    assert s.out.get(STDOUT) == b"once\n", s.describe()
    assert bad_status(bd.node, url) == 404
    status, headers, body = handshake(bd.node, url, [V5])
    assert status == 404, (status, headers, body)
    assert body.decode().strip() == TOKEN_GONE, body
    # a token never issued, and one of the wrong shape
    other = url[:-32] + (UNKNOWN if token != UNKNOWN else "f" * 32)
    assert bad_status(bd.node, other) == 404
    status, _, body = handshake(bd.node, other, [V5])
    assert (status, body.decode().strip()) == (404, TOKEN_GONE), body
    status, _, _ = handshake(bd.node, url, [V5], path="/exec/nothex")
    assert status in (400, 404), status
    status, _, _ = handshake(bd.node, url, [V5], path="/nowhere/" + UNKNOWN)
    assert status in (400, 404), status
    # no subprotocol offered, or none the server speaks: 400
    assert bad_status(bd.node, exec_url(c, cid, ["/bin/sh", "-c", "true"]), protocols=[]) == 400
    status, _, body = handshake(bd.node, exec_url(c, cid, ["/bin/sh", "-c", "true"]),
                                ["chat", "v3.channel.k8s.io"])
    assert status == 400 and body.strip(), (status, body)
    # the server still serves
    s = ws(exec_url(c, cid, ["/bin/sh", "-c", "echo still"]))
    s.finish()
    assert s.out.get(STDOUT) == b"still\n", s.describe()
    c.close()


def test_urls_expire(bd, ws):
    bd.settings["stream_url_timeout"] = "1s"
    bd.start()
    c = cri(bd)
    _, _, cid = pod_with(c, "exp")
    stale = exec_url(c, cid, ["/bin/sh", "-c", "echo late"])
    time.sleep(1.5)
    fresh = exec_url(c, cid, ["/bin/sh", "-c", "echo early"])
    assert bad_status(bd.node, stale) == 404
    s = ws(fresh)  # issued under a second ago: good
    s.finish()
    assert s.out.get(STDOUT) == b"early\n", s.describe()
    # a session that outlives its URL's life is not cut short by it
    s = ws(exec_url(c, cid, ["/bin/sh", "-c", "sleep 2; echo slow"]))
    s.finish(timeout=15)
    s.assert_clean_end()
    assert s.out.get(STDOUT) == b"slow\n", s.describe()
    c.close()


def test_bad_requests(bd):
    bd.start()
    c = cri(bd)
    pod, pcfg, cid = pod_with(c, "bad")
    sh = ["/bin/sh", "-c", "true"]
    msg = c.fail("NOT_FOUND", "Exec", container_id=UNKNOWN, cmd=sh, stdout=True)
    assert UNKNOWN in msg, msg
    msg = c.fail("INVALID_ARGUMENT", "Exec", container_id=cid, cmd=sh, tty=True, stdout=True,
                 stderr=True)
    assert "tty" in msg and "stderr" in msg, msg
    c.fail("INVALID_ARGUMENT", "Exec", container_id=cid, cmd=[], stdout=True)
    c.fail("INVALID_ARGUMENT", "Exec", container_id=cid, cmd=sh)  # no stream at all
    c.fail("INVALID_ARGUMENT", "Exec", container_id="", cmd=sh, stdout=True)
    c.fail("NOT_FOUND", "Attach", container_id=UNKNOWN, stdout=True)
    msg = c.fail("INVALID_ARGUMENT", "Attach", container_id=cid, stdin=True, stdout=True)
    assert "stdin" in msg, msg
    c.fail("INVALID_ARGUMENT", "Attach", container_id=cid, tty=True, stdout=True)  # not a tty one
    # a container that is not running
    created = c.create(pod, pcfg, "created", sh, IMAGE)
    c.fail("FAILED_PRECONDITION", "Exec", container_id=created, cmd=sh, stdout=True)
    stopped = start_container(c, pod, pcfg, "stopped", SLEEPER)
    c.call("StopContainer", container_id=stopped, timeout=10)
    c.fail("FAILED_PRECONDITION", "Exec", container_id=stopped, cmd=sh, stdout=True)
    # port forwarding
    for ports in ([0], [70000], [-1], [], [8080, 0], list(range(1, 18))):
        c.fail("INVALID_ARGUMENT", "PortForward", pod_sandbox_id=pod, port=ports)
    pf_url(c, pod, list(range(1, 17)))  # 16 is the limit, allowed
    c.fail("NOT_FOUND", "PortForward", pod_sandbox_id=UNKNOWN, port=[8080])
    down, _ = c.run_pod("down")
    c.call("StopPodSandbox", pod_sandbox_id=down)
    c.fail("FAILED_PRECONDITION", "PortForward", pod_sandbox_id=down, port=[8080])
    assert c.call("Version").runtime_name == "berth"
    c.close()


def test_json_api_stream_ops(bd, ws):
    bd.start()
    c = cri(bd)
    pod, _, cid = pod_with(c, "json")
    j = bd.client()
    url = j.ok("stream.exec", container_id=cid, cmd=["/bin/sh", "-c", "echo j; echo k >&2"])["url"]
    assert parse_url(url)[1] == "exec", url
    s = ws(url)  # defaults: stdout and stderr
    s.finish()
    s.assert_clean_end()
    assert (s.out.get(STDOUT), s.out.get(STDERR)) == (b"j\n", b"k\n"), s.describe()
    assert s.status == STATUS_SUCCESS
    url = j.ok("stream.exec", container_id=cid, cmd=["/bin/sh", "-c", "cat"], stdin=True,
               stderr=False)["url"]
    s = ws(url)
    s.stdin("via json\n")
    s.wait_text(STDOUT, "via json\n")
    s.close_stdin()
    s.finish()
    s.assert_clean_end()
    url = j.ok("stream.attach", container_id=cid)["url"]
    assert parse_url(url)[1] == "attach", url
    url = j.ok("stream.port_forward", pod_id=pod, ports=[8080])["url"]
    assert parse_url(url)[1] == "portforward", url

    j.fail("NotFound", "stream.exec", container_id=UNKNOWN, cmd=["sh"])
    j.fail("InvalidArgument", "stream.exec", container_id=cid)
    j.fail("InvalidArgument", "stream.exec", container_id=cid, cmd=[])
    j.fail("InvalidArgument", "stream.exec", container_id=cid, cmd=[1])
    j.fail("InvalidArgument", "stream.exec", container_id=cid, cmd="sh")
    reply = j.fail("InvalidArgument", "stream.exec", container_id=cid, cmd=["sh"], tty=True)
    assert "tty and stderr cannot both be true" in reply["error"], reply
    j.fail("InvalidArgument", "stream.exec", container_id=cid, cmd=["sh"], stdout=False,
           stderr=False)
    reply = j.fail("InvalidArgument", "stream.attach", container_id=cid, stdin=True)
    # the contract's wording is "stdin: the container was created without stdin"; berthd names
    # the container ("stdin: container ID was created without stdin"): either will do
    assert reply["error"].startswith("stdin:") and "created without stdin" in reply["error"], \
        reply
    j.fail("NotFound", "stream.port_forward", pod_id=UNKNOWN, ports=[80])
    for ports in ([], [0], [65536], ["80"], list(range(1, 18))):
        j.fail("InvalidArgument", "stream.port_forward", pod_id=pod, ports=ports)
    j.close()
    c.close()


# --- clients that go away -----------------------------------------------------------------------


def holdings(bd):
    """What berthd holds that a session may leak: (open fds, threads)."""
    return bd.fds(), len(os.listdir(f"/proc/{bd.pid}/task"))


def settled(bd, before, timeout=10):
    """Wait until berthd holds no more fds and threads than before."""
    try:
        wait_until(lambda: all(n <= b for n, b in zip(holdings(bd), before)), timeout)
    except AssertionError:
        raise AssertionError(f"berthd's (fds, threads) are {holdings(bd)} {timeout} s after "
                             f"the session, {before} before it") from None


def test_disconnect_mid_stream_leaves_nothing(bd, ws):
    bd.start()
    c = cri(bd)
    pod, pcfg, cid = pod_with(c, "gone")
    # a whole session first, so that whatever berthd keeps for good (a connection to the
    # container's shim, a thread) is there before the count
    s = ws(exec_url(c, cid, ["/bin/sh", "-c", "true"]))
    s.finish()
    time.sleep(0.5)
    procs0 = sorted(bd.processes())

    for rst in (False, True):
        n = unique_number()
        argv = ["/bin/busybox", "sleep", n]
        held = holdings(bd)
        s = ws(exec_url(c, cid, argv))
        pids = wait_until(lambda: pids_with_argv(argv), 10, f"{argv} to run")
        s.drop(rst=rst)
        wait_until(lambda: not any(pid_alive(p) for p in pids), 10,
                   f"the exec'd {argv} to go with its client ({'RST' if rst else 'FIN'})")
        settled(bd, held)

    # stdin flowing when the client vanishes
    n = unique_number()
    argv = ["/bin/busybox", "tee", f"/tmp/tee-{n}"]
    held = holdings(bd)
    s = ws(exec_url(c, cid, argv, stdin=True))
    pids = wait_until(lambda: pids_with_argv(argv), 10, f"{argv} to run")
    s.stdin("some\n")
    s.wait_text(STDOUT, "some\n")
    s.stdin("more")
    s.drop(rst=True)
    wait_until(lambda: not any(pid_alive(p) for p in pids), 10, f"{argv} to go")
    settled(bd, held)

    # an attach whose client vanishes: the container runs on, nothing is kept for it
    held = holdings(bd)
    s = ws(attach_url(c, cid))
    time.sleep(0.3)
    s.drop(rst=True)
    settled(bd, held)
    assert c.state_name(c.status(cid).state) == "CONTAINER_RUNNING"

    # a client that connects and never finishes its upgrade request, then goes
    port = parse_url(exec_url(c, cid, ["/bin/sh", "-c", "true"]))[0]
    held = holdings(bd)
    raw = connect(bd.node, "127.0.0.1", port)
    raw.sendall(b"GET /exec/" + UNKNOWN.encode() + b" HTTP/1.1\r\nHost: x\r\n")
    time.sleep(0.3)
    raw.close()
    settled(bd, held)

    assert sorted(bd.processes()) == procs0, (procs0, bd.processes())

    # a port forward whose client vanishes: its connection in the pod goes too
    srv = start_container(c, pod, pcfg, "srv", [
        "/bin/busybox", "nc", "-ll", "-p", "8080", "-e", "/bin/busybox", "cat"])
    wait_until(lambda: tcp_listening(c, srv, 8080), 10, "the pod's server to listen")
    procs0 = sorted(bd.processes())  # with srv's shim
    held = holdings(bd)
    s = ws(pf_url(c, pod, [8080]))
    s.send(0, b"hey\n")
    s.read_until(lambda x: x.out.get(0, b"").endswith(b"hey\n"), what="the echo")
    assert tcp_connections(c, srv, 8080), "no connection to the pod's server"
    s.drop(rst=True)
    settled(bd, held)
    wait_until(lambda: not tcp_connections(c, srv, 8080), 10,
               "the connection to the pod's server to close")

    assert sorted(bd.processes()) == procs0, (procs0, bd.processes())
    # and the server goes on serving
    s = ws(exec_url(c, cid, ["/bin/sh", "-c", "echo after"]))
    s.finish()
    assert s.out.get(STDOUT) == b"after\n", s.describe()
    c.close()


# --- where it listens, and its limits -----------------------------------------------------------


def test_binds_loopback_only(bd, ws):
    bd.start()
    c = cri(bd)
    _, _, cid = pod_with(c, "lo")
    url = exec_url(c, cid, ["/bin/sh", "-c", "true"])
    port = parse_url(url)[0]  # http://127.0.0.1:PORT/...
    assert listening(bd.pid, port) == [("127.0.0.1", port)], listening(bd.pid, port)
    # another loopback address of the same namespace: nobody listens there
    with pytest.raises(ConnectionRefusedError):
        connect(bd.node, "127.0.0.2", port, timeout=5).close()
    s = ws(url)
    s.finish()
    s.assert_clean_end()
    c.close()


def test_sessions_per_client_are_limited(bd, ws):
    bd.settings["stream_max_per_client"] = "2"
    bd.start()
    c = cri(bd)
    _, _, cid = pod_with(c, "lim")
    sleep = ["/bin/sh", "-c", "sleep 1000"]
    a = ws(exec_url(c, cid, sleep))
    ws(exec_url(c, cid, sleep))
    assert bad_status(bd.node, exec_url(c, cid, sleep)) == 429
    a.drop()
    # once one ends, another may start (its exec killed, its slot freed)
    def third():
        try:
            s = ws(exec_url(c, cid, ["/bin/sh", "-c", "echo third"]))
        except Exception:  # noqa: BLE001 (429 until the slot is free)
            return None
        return s
    s = wait_until(third, 10, "a slot for a third session", 0.2)
    s.finish()
    assert s.out.get(STDOUT) == b"third\n", s.describe()
    c.close()


def test_idle_sessions_are_closed(bd, ws):
    bd.settings["stream_idle_timeout"] = "1s"
    bd.start()
    c = cri(bd)
    _, _, cid = pod_with(c, "idle")
    n = unique_number()
    argv = ["/bin/busybox", "sleep", n]
    s = ws(exec_url(c, cid, argv))
    pids = wait_until(lambda: pids_with_argv(argv), 10, f"{argv} to run")
    t0 = time.monotonic()
    s.finish(timeout=10)
    took = time.monotonic() - t0
    assert s.close_code == 1001, s.describe()
    assert 0.5 < took < 5, took
    wait_until(lambda: not any(pid_alive(p) for p in pids), 10, "the idle exec to be killed")
    # a session with traffic is not idle
    s = ws(exec_url(c, cid, ["/bin/sh", "-c", "for i in 1 2 3 4 5 6; do echo $i; sleep 0.4; done"]))
    s.finish(timeout=15)
    s.assert_clean_end()
    assert s.out.get(STDOUT) == b"1\n2\n3\n4\n5\n6\n", s.describe()
    c.close()

