"""A client of berthd's streaming server (test_stream.py), written against the protocol only
(the contract of berth issue 9): Debian's python3-websocket (websocket-client) for the WebSocket
sessions, raw sockets for requests that a well-behaved client never makes.

The streaming server listens on 127.0.0.1 inside the test's "node" network namespace, where
berthd runs. Sockets belong to the network namespace they are created in, so in_namespace()
creates each socket in a short-lived thread that setns()'d itself into the node's namespace (a
thread's network namespace is its own; the test process and its other threads stay where they
are), and the socket, once connected, is used from the test's thread as usual.

  s = Session(bd.node, url)            a WebSocket session on an exec/attach/portforward URL;
                                       subprotocols=[...] to offer others (default: v5, then v4
                                       for exec/attach, portforward.k8s.io for port forwarding)
  s.stdin(b"..."), s.close_stdin()     channel 0; v5's [255, 0]
  s.resize(w, h)                       channel 4, {"Width": w, "Height": h}
  s.read_until(pred)                   messages until pred(s) is true (s.out[channel] holds the
                                       bytes received per channel, s.status the parsed status)
  s.finish()                           every message until the server's close; returns s
  s.drop(rst=False)                    the TCP connection closed without a WebSocket close
  handshake(node, url, protocols)      a raw upgrade request: (status, headers, body)
"""

import ctypes
import json
import os
import re
import socket
import struct
import threading
import time
from urllib.parse import urlsplit

import websocket

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
PORTFORWARD = "portforward.k8s.io"
EXEC_PROTOCOLS = [V5, V4]
PF_PROTOCOLS = [PORTFORWARD, V4]
STDIN, STDOUT, STDERR, STATUS, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
URL = re.compile(r"^http://127\.0\.0\.1:(\d+)/(exec|attach|portforward)/([0-9a-f]{32})$")
CLONE_NEWNET = 0x40000000
TIMEOUT = 15  # seconds, for one read

_libc = ctypes.CDLL(None, use_errno=True)


def in_namespace(node, fn):
    """fn() run in a thread of its own that entered node's network namespace; its result."""
    out = {}

    def body():
        try:
            if _libc.setns(node.fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns into {node.name}: {os.strerror(err)}")
            assert os.stat("/proc/thread-self/ns/net").st_ino == node.ino
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 (re-raised in the caller's thread)
            out["error"] = e

    t = threading.Thread(target=body)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def tcp_socket(node):
    """An unconnected TCP socket of node's network namespace."""
    return in_namespace(node, lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))


def connect(node, host, port, timeout=TIMEOUT):
    sock = tcp_socket(node)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def parse_url(url):
    """(port, kind, token) of a streaming URL, which must have the contract's form."""
    m = URL.match(url)
    assert m, f"not a streaming URL of the contract's form: {url!r}"
    return int(m.group(1)), m.group(2), m.group(3)


def ws_url(url):
    assert url.startswith("http://"), url
    return "ws://" + url[len("http://"):]


def handshake(node, url, protocols=None, path=None, extra=(), timeout=TIMEOUT):
    """A raw upgrade request to url's server (path: another request target); returns
    (status, headers, body) of the answer: headers a dict with lower-case names, body what
    follows the head (read to the end when the server closes, which error answers do)."""
    parts = urlsplit(url)
    sock = connect(node, parts.hostname, parts.port, timeout)
    try:
        lines = [f"GET {path or parts.path} HTTP/1.1", f"Host: {parts.netloc}",
                 "Upgrade: websocket", "Connection: Upgrade",
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
        if protocols:
            lines.append("Sec-WebSocket-Protocol: " + ", ".join(protocols))
        lines += list(extra)
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"the server closed before a whole answer: {data!r}"
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"^HTTP/1\.1 (\d{3}) ", status_line + " ")
        assert m, f"not an HTTP/1.1 status line: {status_line!r}"
        status = int(m.group(1))
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status != 101:
            want = int(headers.get("content-length", "-1"))
            deadline = time.monotonic() + timeout
            while (want < 0 or len(body) < want) and time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                body += chunk
        return status, headers, body
    finally:
        sock.close()


def bad_status(node, url, protocols=None, timeout=TIMEOUT):
    """The HTTP status of a refused upgrade (websocket-client's WebSocketBadStatusException);
    fails if the server switched protocols."""
    try:
        s = Session(node, url, protocols, timeout)
    except websocket.WebSocketBadStatusException as e:
        return e.status_code
    s.drop()
    raise AssertionError(f"{url}: the upgrade was accepted ({s.protocol})")


class Session:
    """One WebSocket session on a streaming URL, read message by message."""

    def __init__(self, node, url, protocols=None, timeout=TIMEOUT):
        port, kind, _ = parse_url(url)
        if protocols is None:
            protocols = PF_PROTOCOLS if kind == "portforward" else EXEC_PROTOCOLS
        self.url = url
        self.kind = kind
        self.sock = connect(node, "127.0.0.1", port, timeout)
        try:
            self.ws = websocket.create_connection(ws_url(url), subprotocols=list(protocols),
                                                  socket=self.sock, timeout=timeout)
        except BaseException:
            self.sock.close()
            raise
        self.ws.settimeout(timeout)
        self.protocol = self.ws.subprotocol
        self.out = {}          # channel -> bytes received on it
        self.messages = []     # (channel, payload) in arrival order
        self.status = None     # the status channel's JSON, parsed
        self.status_raw = None
        self.close_code = None
        self.close_reason = None
        self.closed = False    # the server's close frame (or the end of the connection) came
        self.eof_without_close = False
        self.reset = False     # the connection was reset (RST) before a close frame came
        self.after_close_error = None  # our answer to the server's close could not be sent
        self.problems = []     # protocol breaches seen while reading (asserted by the tests)

    # sending

    def send(self, channel, data=b""):
        self.ws.send_binary(bytes([channel]) + bytes(data))

    def stdin(self, data):
        self.send(STDIN, data.encode() if isinstance(data, str) else data)

    def close_stdin(self):
        self.send(CLOSE, bytes([STDIN]))

    def resize(self, width, height):
        self.send(RESIZE, json.dumps({"Width": width, "Height": height}).encode())

    # reading

    def text(self, channel):
        return self.out.get(channel, b"").decode(errors="replace")

    def read_one(self):
        """One message from the server, recorded; False once the session has ended. Frames are
        taken one by one (not with recv_data, whose answer to a close frame raises when the
        server has already reset the connection, losing the close code)."""
        if self.closed:
            return False
        ws = self.ws
        try:
            while True:
                frame = ws.recv_frame()
                op = frame.opcode
                if op in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY,
                          websocket.ABNF.OPCODE_CONT):
                    ws.cont_frame.validate(frame)
                    ws.cont_frame.add(frame)
                    if ws.cont_frame.is_fire(frame):
                        opcode, whole = ws.cont_frame.extract(frame)
                        data = whole.data
                        break
                elif op == websocket.ABNF.OPCODE_CLOSE:
                    self.closed = True
                    if len(frame.data) >= 2:
                        self.close_code = struct.unpack(">H", frame.data[:2])[0]
                        self.close_reason = frame.data[2:].decode(errors="replace")
                    try:
                        ws.send_close()
                    except (websocket.WebSocketException, OSError) as e:
                        self.after_close_error = repr(e)
                    return False
                elif op == websocket.ABNF.OPCODE_PING:
                    ws.pong(frame.data)
        except websocket.WebSocketConnectionClosedException:
            self.closed = True
            self.eof_without_close = True
            return False
        except ConnectionResetError:
            self.closed = True
            self.eof_without_close = True
            self.reset = True
            return False
        if isinstance(data, str):
            data = data.encode()
        if opcode != websocket.ABNF.OPCODE_BINARY:
            self.problems.append(f"a message of opcode {opcode} (not binary): {data!r}")
        if not data:
            self.problems.append("an empty message (no channel byte)")
            return True
        channel, payload = data[0], data[1:]
        if self.status_raw is not None and self.kind != "portforward":
            self.problems.append(f"a message on channel {channel} after the status: {payload!r}")
        self.messages.append((channel, payload))
        self.out[channel] = self.out.get(channel, b"") + payload
        if channel == STATUS and self.kind != "portforward":
            if self.status_raw is not None:
                self.problems.append(f"a second status message: {payload!r}")
            self.status_raw = payload
            try:
                self.status = json.loads(payload)
            except ValueError:
                self.problems.append(f"a status that is not JSON: {payload!r}")
        return True

    def read_until(self, pred, timeout=TIMEOUT, what="the expected output"):
        """Read messages until pred(self) holds; fail (showing what came) after timeout."""
        deadline = time.monotonic() + timeout
        while not pred(self):
            left = deadline - time.monotonic()
            assert left > 0, f"timed out after {timeout}s waiting for {what}; got {self.describe()}"
            self.ws.settimeout(left)
            try:
                more = self.read_one()
            except websocket.WebSocketTimeoutException:
                continue
            except socket.timeout:
                continue
            assert more or pred(self), \
                f"the session ended before {what}; got {self.describe()}"
        self.ws.settimeout(TIMEOUT)
        return self

    def wait_text(self, channel, needle, timeout=TIMEOUT):
        return self.read_until(lambda s: needle in s.text(channel), timeout,
                               f"{needle!r} on channel {channel}")

    def finish(self, timeout=TIMEOUT):
        """Every message until the server closes the session."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            left = deadline - time.monotonic()
            assert left > 0, f"the session did not end in {timeout}s; got {self.describe()}"
            self.ws.settimeout(left)
            try:
                self.read_one()
            except (websocket.WebSocketTimeoutException, socket.timeout):
                continue
        return self

    def describe(self):
        return (f"messages={self.messages[-20:]!r} status={self.status_raw!r} "
                f"close={self.close_code} {self.close_reason!r} closed={self.closed} "
                f"eof_without_close={self.eof_without_close} reset={self.reset} "
                f"after_close_error={self.after_close_error} problems={self.problems}")

    def assert_clean_end(self):
        """The contract's ending: the status message last, then a close 1000."""
        assert not self.problems, self.describe()
        assert self.closed and not self.eof_without_close, \
            f"no WebSocket close before the end of the connection: {self.describe()}"
        assert self.close_code == 1000, f"close code {self.close_code}: {self.describe()}"
        if self.kind != "portforward":
            assert self.status is not None, f"no status message: {self.describe()}"
            assert self.messages[-1][0] == STATUS, f"the status is not last: {self.describe()}"

    # ending

    def close(self):
        """A polite close (a close frame from us; websocket-client waits for the answer)."""
        try:
            self.ws.close(timeout=3)
        except (websocket.WebSocketException, OSError):
            pass
        self.sock.close()

    def drop(self, rst=False):
        """Close the TCP connection without a WebSocket close: a FIN, or a RST (SO_LINGER 0)."""
        if rst:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def status_failure_exit(code):
    """The contract's status for exit code `code` != 0."""
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: exit status {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


STATUS_SUCCESS = {"metadata": {}, "status": "Success"}


def listening(pid, port):
    """The local addresses (host, port) of pid's network namespace's TCP listeners on port,
    from /proc/PID/net/tcp and tcp6 (state 0A), for sockets that pid holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        m = re.match(r"^socket:\[(\d+)\]$", target)
        if m:
            inodes.add(m.group(1))
    found = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        try:
            lines = open(f"/proc/{pid}/net/{table}").read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            local, state, inode = f[1], f[3], f[9]
            addr_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port or inode not in inodes:
                continue
            raw = bytes.fromhex(addr_hex)
            # /proc prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.append((socket.inet_ntop(family, raw), port))
    return found
