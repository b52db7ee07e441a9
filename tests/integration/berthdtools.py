"""Helpers for berthd's integration tests (test_berthd.py): a berthd per test, run in a "node"
network namespace the test made (nettools.NetNamespace), with its own root, state, socket, log
directory and cgroup parent under a short temporary directory; a JSON-lines client of its socket;
the test image imported into its store; and the leftovers check.

Fixtures:
  image_tar  (session) the "small" test image (tests/fixtures/make-image.py: busybox, /bin/sh) as
             an oci-archive, imported into each berthd's store as IMAGE.
  bd         a Berthd, not started: `bd.start()`, `bd.client()`, `bd.kill9()`, `bd.stop()`.
             Teardown removes every pod through the socket (starting berthd when it is down),
             stops it with SIGTERM, and fails the test when anything is left: processes whose
             command line names its directory (berthd, shims), processes of its containers,
             mounts under its directory, cgroups under its cgroup parent, entries under
             containers/, shims/, runtime/ and pods/.
The socket path is short (/tmp/bd-XXXXXXXX/state/...): a shim's socket is
state/shims/<32 hex>/shim.sock and unix socket paths end at 107 bytes.
"""

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from nettools import NetNamespace, run
from proctools import MARK_VAR, mounts_under, pid_alive, umount, wait_until

REPO = Path(__file__).resolve().parents[2]
BERTHD = os.environ.get("BERTHD") or str(REPO / "build" / "cri" / "berthd")
SHIM = os.environ.get("BERTH_SHIM") or str(REPO / "build" / "tools" / "berth-shim")
BERTH = os.environ.get("BERTH") or str(REPO / "build" / "tools" / "berth")
FIXTURES = Path(os.environ.get("BERTH_FIXTURES") or REPO / "tests" / "fixtures")
PYTHON = "/usr/bin/python3"
IMAGE = "test/small:v1"  # docker.io/test/small:v1 once normalised
CALL_TIMEOUT = 60  # seconds, for one request
MNT_DETACH = 2


def cgroup2_root():
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if " - cgroup2 " in line:
            return Path(line.split()[4])
    return None


class ApiError(AssertionError):
    def __init__(self, reply):
        super().__init__(f"{reply.get('code')}: {reply.get('error')}")
        self.reply = reply


class Client:
    """One connection to berthd's socket: call(op, **fields) sends a request line and returns the
    answer (a dict); ok() insists on "ok", fail() on a given error code."""

    def __init__(self, path, timeout=CALL_TIMEOUT):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buf = b""

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("berthd closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, op, **fields):
        self.send_raw(json.dumps({"op": op, **fields}).encode() + b"\n")
        return self.read_line()

    def ok(self, op, **fields):
        reply = self.call(op, **fields)
        if not reply.get("ok"):
            raise ApiError(reply)
        return reply

    def fail(self, code, op, **fields):
        reply = self.call(op, **fields)
        assert reply.get("ok") is False and reply.get("code") == code, \
            f"{op} {fields}: expected {code}, got {reply}"
        assert isinstance(reply.get("error"), str) and reply["error"], reply
        return reply

    def closed(self, timeout=5):
        """True once berthd has closed its side."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()

    # shorthands

    def run_pod(self, name, namespace="default", uid=None, **config):
        config = {"metadata": {"name": name, "namespace": namespace, "uid": uid or f"uid-{name}"},
                  **config}
        return self.ok("pod.run", config=config)["pod_id"]

    def create(self, pod_id, name, command, image=IMAGE, **config):
        config = {"metadata": {"name": name}, "image": {"image": image}, "command": command,
                  **config}
        return self.ok("container.create", pod_id=pod_id, config=config)["container_id"]

    def status(self, cid):
        return self.ok("container.status", container_id=cid)["status"]

    def wait_state(self, cid, state, timeout=20):
        return wait_until(lambda: (lambda s: s if s["state"] == state else None)(self.status(cid)),
                          timeout, f"container {cid} to be {state}", 0.05)


class Events:
    """An "events" connection read by a thread: `events.wait(pred)` returns the first event
    matching pred (a dict -> bool)."""

    def __init__(self, path):
        self.client = Client(path, timeout=None)
        assert self.client.ok("events") == {"ok": True}
        self.events = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            while True:
                ev = self.client.read_line()
                with self.cond:
                    self.events.append(ev)
                    self.cond.notify_all()
        except (EOFError, OSError, ValueError):
            with self.cond:
                self.events.append(None)
                self.cond.notify_all()

    def wait(self, pred, timeout=30):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for ev in self.events:
                    if ev is not None and pred(ev):
                        return ev
                left = deadline - time.monotonic()
                assert left > 0, f"no matching event in {timeout}s; got {self.events[-10:]}"
                self.cond.wait(left)

    def of(self, cid):
        with self.cond:
            return [ev["event"] for ev in self.events if ev and ev["container_id"] == cid]

    def close(self):
        try:
            self.client.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader's recv
        except OSError:
            pass
        self.thread.join(5)
        self.client.close()


class Berthd:
    """A berthd with its own directories, run inside the node namespace."""

    def __init__(self, node, mark):
        self.node = node
        self.mark = mark
        self.dir = Path(tempfile.mkdtemp(prefix="bd-", dir="/tmp"))
        self.root = self.dir / "root"
        self.state = self.dir / "state"
        self.socket = self.state / "berth.sock"
        self.logs = self.dir / "logs"
        self.cgroup_parent = f"berth-test-{mark}"
        self.conf = self.dir / "berthd.conf"
        self.settings = {"root": self.root, "state": self.state, "shim_path": SHIM,
                         "berth_path": BERTH,
                         # the machine's own /etc/berth/manifests is not the tests' business
                         "manifest_dir": '""',
                         "log_dir": self.logs, "cgroup_parent": self.cgroup_parent,
                         "log_level": "debug", "stop_timeout": "2s"}
        self.proc = None
        self.runs = 0
        self.log_files = []
        self.images_imported = False

    # lifecycle

    def write_config(self):
        self.conf.write_text("".join(f"{k} = {v}\n" for k, v in self.settings.items()))

    def import_image(self, tar):
        result = run([BERTH, "--root", self.root, "image", "import", tar], timeout=120)
        assert result.returncode == 0, result.stderr

    def argv(self, *extra):
        return self.node.enter() + [BERTHD, "--config", str(self.conf), *extra]

    def start(self, env=None, wait=True):
        self.write_config()
        self.runs += 1
        log = self.dir / f"berthd-{self.runs}.log"
        self.log_files.append(log)
        environ = dict(os.environ)
        environ[MARK_VAR] = self.mark
        environ.update(env or {})
        with open(log, "wb") as f:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=f,
                                         stderr=f, env=environ)
        if wait:
            self.wait_ready()
        return self.proc

    def wait_ready(self, timeout=60):
        def ready():
            assert self.proc.poll() is None, f"berthd exited ({self.proc.returncode}):\n{self.log()}"
            return "ready (root" in self.log()
        wait_until(ready, timeout, "berthd to serve", 0.02)

    @property
    def pid(self):
        return self.proc.pid  # nsenter exec's berthd: the same process

    def log(self, run=None):
        path = self.log_files[(run or self.runs) - 1]
        return path.read_text(errors="replace") if path.exists() else ""

    def kill9(self):
        self.proc.kill()  # by pid: our own child
        self.proc.wait()
        self.proc = None

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signal berthd and wait; return its exit code."""
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self.proc = None
        return rc

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def client(self):
        return Client(self.socket)

    def events(self):
        return Events(self.socket)

    # what it holds

    def fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def db_counts(self):
        con = sqlite3.connect(f"file:{self.root / 'berth.db'}?mode=ro", uri=True, timeout=10)
        try:
            return {t: con.execute(f"select count(*) from {t}").fetchone()[0]
                    for t in ("pods", "containers")}
        finally:
            con.close()

    def cgroups(self):
        root = cgroup2_root()
        base = root / self.cgroup_parent if root else None
        if not base or not base.is_dir():
            return []
        return sorted(str(Path(d).relative_to(base)) for d, _, _ in os.walk(base)
                      if Path(d) != base)

    def processes(self):
        """Pids (zombies aside) whose command line names this berthd's directory."""
        needle = str(self.dir).encode()
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                cmd = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                continue
            if needle in cmd and pid_alive(int(name)):
                found.append(int(name))
        return found

    def entries(self):
        found = {}
        for sub in ("root/containers", "state/shims", "state/runtime", "state/pods"):
            d = self.dir / sub
            items = sorted(os.listdir(d)) if d.is_dir() else []
            if items:
                found[sub] = items
        return found

    def shim_pid(self, cid):
        return int((self.state / "shims" / cid / "shim.pid").read_text().strip())

    def problems(self):
        found = []
        procs = [p for p in self.processes() if not self.running() or p != self.pid]
        if procs:
            found.append(f"processes remain: {[(p, proc_cmd(p)) for p in procs]}")
        mounts = mounts_under(self.dir)
        if mounts:
            found.append("mounts remain:\n  " + "\n  ".join(mounts))
        cgroups = self.cgroups()
        if cgroups:
            found.append(f"cgroups remain under {self.cgroup_parent}: {cgroups}")
        entries = self.entries()
        if entries:
            found.append(f"entries remain: {entries}")
        return found

    def teardown(self):
        """Remove every pod, stop berthd; return the leftovers found (then cleaned up)."""
        found = []
        try:
            if not self.running() and self.runs:
                self.start()
            if self.running():
                c = self.client()
                for pod in c.ok("pod.list")["pods"]:
                    c.ok("pod.remove", pod_id=pod["id"])
                left = c.ok("container.list")["containers"]
                if left:
                    found.append(f"containers remain after removing every pod: {left}")
                c.close()
                rc = self.stop()
                if rc != 0:
                    found.append(f"berthd exited {rc} on SIGTERM:\n{self.log()[-3000:]}")
        except Exception as e:  # noqa: BLE001 (reported as a leftover, cleaned below)
            found.append(f"teardown through the socket failed: {e!r}")
        found += self.problems()
        found += self.sanitizer_reports()
        self.cleanup()
        return found

    def sanitizer_reports(self):
        """ASan/UBSan/LSan findings in berthd's logs (a sanitizer build prints them there)."""
        found = []
        for path in self.log_files:
            text = path.read_text(errors="replace") if path.exists() else ""
            for needle in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
                at = text.find(needle)
                if at >= 0:
                    found.append(f"{path.name}: {text[max(0, at - 200):at + 3000]}")
                    break
        return found

    def cleanup(self):
        if self.running():
            self.kill9()
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)  # shims and containers of this test's berthd
            except ProcessLookupError:
                pass
        for point in reversed(mounts_under(self.dir)):
            try:
                umount(point, MNT_DETACH)
            except OSError:
                pass
        root = cgroup2_root()
        base = root / self.cgroup_parent if root else None
        if base and base.is_dir():
            for d, _, _ in sorted(os.walk(base), key=lambda t: -len(t[0])):
                kill = Path(d) / "cgroup.kill"
                if kill.exists():
                    kill.write_text("1")
                for _ in range(100):
                    try:
                        os.rmdir(d)
                        break
                    except OSError:
                        time.sleep(0.02)
        shutil.rmtree(self.dir, ignore_errors=True)


def proc_cmd(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return None


@pytest.fixture(scope="session")
def image_tar():
    """The small test image as an oci-archive (built once)."""
    work = Path(tempfile.mkdtemp(prefix="berthd-image-", dir="/tmp"))
    layout = work / "layout"
    result = run([PYTHON, FIXTURES / "make-image.py", "build", "--ref", IMAGE, layout, "small"],
                 timeout=120)
    assert result.returncode == 0, result.stderr
    tar = work / "small.tar"
    run(["tar", "-C", layout, "-cf", tar, "."])
    yield tar
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def node():
    """A network namespace for berthd (never the host's)."""
    ns = NetNamespace("node")
    yield ns
    ns.close()


@pytest.fixture
def bd(request, node, mark, image_tar):
    daemon = Berthd(node, mark)
    daemon.import_image(image_tar)
    yield daemon
    found = daemon.teardown()
    call = getattr(request.node, "rep_call", None)
    if found and call is not None and call.passed:
        pytest.fail("the test left things behind:\n" + "\n".join(found), pytrace=False)
