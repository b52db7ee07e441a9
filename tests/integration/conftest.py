"""Shared fixtures for berth-runtime's integration tests.

The suite drives an OCI runtime binary with runc's command line on busybox bundles built by
tests/fixtures/make-bundle.sh. It runs as root inside a private mount namespace that the harness
made (`unshare --mount --propagation private`), so stray mounts die with the session; each test
still proves that it left nothing behind.

Environment:
  BERTH_RUNTIME   the runtime binary (default: <repo>/build/tools/berth-runtime). Pointing it at
                  crun or runc validates the tests themselves; checks of berth's own wording are
                  guarded by `rt.is_berth`, checks of runc's field names by `rt.like_runc`.
  BERTH_FIXTURES  the directory holding make-bundle.sh (default: <repo>/tests/fixtures).

Fixtures:
  rt        a Runtime: `rt("state", cid)` runs `<runtime> --root <per-test state dir> state cid`.
  bundle    a fresh Bundle in tmp_path; `bundle.config` is the parsed config.json.
  cid       a unique container id.
  leftovers the per-test checker of mounts, state directories and marked processes; it runs by
            itself after every test, and tests may call `leftovers.assert_clean()` themselves.
"""

import ctypes
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from proctools import MARK_VAR, marked_pids, pid_alive, umount, wait_until  # noqa: F401
from proctools import unescape_mount_path as _unescape  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
RUNTIME = os.environ.get("BERTH_RUNTIME") or str(REPO / "build" / "tools" / "berth-runtime")
FIXTURES = Path(os.environ.get("BERTH_FIXTURES") or REPO / "tests" / "fixtures")
MAKE_BUNDLE = FIXTURES / "make-bundle.sh"

TIMEOUT = 20  # seconds, for every runtime command
_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


# --- session checks -------------------------------------------------------------------------


def pytest_report_header(config):
    return [f"runtime under test: {RUNTIME} ({runtime_flavor(RUNTIME)})"]


def pytest_sessionstart(session):
    if session.config.option.collectonly:
        return
    if os.geteuid() != 0:
        pytest.exit("the integration tests need root", returncode=1)
    if not os.access(RUNTIME, os.X_OK):
        pytest.exit(f"{RUNTIME} is not an executable: build it or set BERTH_RUNTIME", returncode=1)
    if not os.access(MAKE_BUNDLE, os.X_OK):
        pytest.exit(f"{MAKE_BUNDLE} is not an executable: set BERTH_FIXTURES", returncode=1)
    # The harness starts the session in a private mount namespace; make sure of it anyway, so
    # that the tests' own mounts and any mount a runtime leaks die with the session.
    _private_mount_namespace()


def _private_mount_namespace():
    if _libc.unshare(CLONE_NEWNS) != 0 or _libc.mount(
        b"none", b"/", None, MS_REC | MS_PRIVATE, None
    ) != 0:
        err = ctypes.get_errno()
        pytest.exit(f"cannot make a private mount namespace: {os.strerror(err)}", returncode=1)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, so teardown knows whether the test passed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


# --- small helpers --------------------------------------------------------------------------


def runtime_flavor(binary):
    name = os.path.basename(binary)
    if name.startswith("berth"):
        return "berth"
    if "crun" in name:
        return "crun"
    if "runc" in name:
        return "runc"
    return name


def parse_rfc3339(text):
    """An RFC 3339 timestamp (nanoseconds allowed) as an aware datetime."""
    match = RFC3339.match(text)
    assert match, f"not an RFC 3339 timestamp: {text!r}"
    main, frac, zone = text[:19], (match.group(1) or ".0")[1:7], match.group(2)
    zone = "+00:00" if zone == "Z" else zone
    return datetime.fromisoformat(f"{main}.{frac.ljust(6, '0')}{zone}")


def describe(result):
    """A CompletedProcess as text for assertion messages."""
    return (
        f"$ {' '.join(map(str, result.args))}\nrc={result.returncode}\n"
        f"--- stdout ---\n{result.stdout}--- stderr ---\n{result.stderr}"
    )


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    """Poll predicate() until it returns a true value; return that value or fail."""
    return wait_until(predicate, timeout, what, interval)


def proc_cmdline(pid):
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.decode(errors="replace").split("\0")[:-1]
    except (FileNotFoundError, ProcessLookupError):
        return None


def ns_id(path):
    """The 'type:[inode]' name of a namespace file, as /proc/PID/ns/* links show it."""
    return os.readlink(path)


def pids_in_pid_namespace_of(pid):
    """Live pids sharing pid's pid namespace (pid included)."""
    want = ns_id(f"/proc/{pid}/ns/pid")
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if ns_id(f"/proc/{entry}/ns/pid") == want and pid_alive(int(entry)):
                found.append(int(entry))
        except OSError:
            continue
    return sorted(found)


def read_mountinfo():
    """Mount id -> mountinfo line for this mount namespace."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return {line.split()[0]: line for line in lines}


def mountinfo_entries(text, mount_point):
    """Lines of a mountinfo text whose mount point is mount_point."""
    return [line for line in text.splitlines() if line.split()[4:5] == [mount_point]]


def mount_options(line):
    """(per-mount options, super-block options) of one mountinfo line, as sets."""
    fields = line.split()
    sep = fields.index("-")
    return set(fields[5].split(",")), set(fields[sep + 3].split(","))


def expect_error(rt, result, *needles):
    """A refused command: non-zero exit; for berth, exactly one stderr line naming each needle
    (a tuple of needles means any one of them)."""
    assert result.returncode != 0, "expected a failure\n" + describe(result)
    if rt.is_berth:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, "expected exactly one error line\n" + describe(result)
        for needle in needles:
            options = needle if isinstance(needle, tuple) else (needle,)
            assert any(o in lines[0] for o in options), (
                f"error line should name {' or '.join(map(repr, options))}\n" + describe(result)
            )


# --- the runtime ----------------------------------------------------------------------------


class Runtime:
    """Runs the runtime under test with a per-test state root and the test's marker."""

    def __init__(self, binary, root, mark):
        self.binary = str(binary)
        self.root = Path(root)
        self.mark = mark
        self.flavor = runtime_flavor(self.binary)
        self.is_berth = self.flavor == "berth"
        # runc's field names and output formats, which berth promises; crun differs in places.
        self.like_runc = self.flavor in ("berth", "runc")
        self.env = dict(os.environ)
        # The runtime and everything it forks (even a container that never exec'd) carry the
        # marker, so the leftovers check finds them.
        self.env[MARK_VAR] = mark
        self.ids = set()

    def __call__(self, *args, timeout=TIMEOUT, cwd=None, stdout=None, stderr=None, env=None,
                 fd3=None):
        """Run `<runtime> --root <state> ARGS...`; return a text CompletedProcess.

        Output goes through temporary files, never pipes: a detached container inherits the
        runtime's stdio and would otherwise keep a pipe open for its whole life. Pass stdout= (an
        open file) to keep a created container's output somewhere the test can read it, and
        fd3= (an open fd) to hand the runtime that file as its fd 3, for --preserve-fds.
        """
        argv = [self.binary, "--root", str(self.root), *map(str, args)]
        if args and args[0] in ("create", "run"):
            self.ids.add(str(args[-1]))  # the leftovers check looks for its cgroup
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=stdout or out,
                    stderr=stderr or err,
                    cwd=cwd,
                    env=env or self.env,
                    timeout=timeout,
                    pass_fds=(3,) if fd3 is not None else (),
                    preexec_fn=(lambda: os.dup2(fd3, 3)) if fd3 is not None else None,
                )
                timed_out = False
            except subprocess.TimeoutExpired:  # run() killed the runtime
                timed_out = True
            out.seek(0)
            err.seek(0)
            text_out = out.read().decode(errors="replace")
            text_err = err.read().decode(errors="replace")
        if timed_out:
            pytest.fail(
                f"runtime command timed out after {timeout}s\n$ {' '.join(argv)}\n"
                f"--- stdout ---\n{text_out}--- stderr ---\n{text_err}",
                pytrace=False,
            )
        return subprocess.CompletedProcess(argv, proc.returncode, text_out, text_err)

    def ok(self, *args, **kwargs):
        """Like calling the runtime, but the command must succeed."""
        result = self(*args, **kwargs)
        assert result.returncode == 0, "runtime command failed\n" + describe(result)
        return result

    @staticmethod
    def new_id():
        return "t-" + uuid.uuid4().hex[:12]

    # lifecycle shorthands

    def state(self, cid):
        result = self.ok("state", cid)
        try:
            return json.loads(result.stdout)
        except json.JSONDecodeError:
            pytest.fail("state did not print JSON\n" + describe(result))

    def status(self, cid):
        return self.state(cid)["status"]

    def wait_status(self, cid, want, timeout=10.0):
        wait_for(lambda: self.status(cid) == want, timeout, what=f"{cid} to be {want}")

    def create(self, bundle, cid, *extra, stdout=None):
        self.ok("create", "--bundle", bundle.path, *extra, cid, stdout=stdout)
        return self.state(cid)

    def start(self, cid):
        return self.ok("start", cid)

    def create_running(self, bundle, args=("/bin/sleep", "1000"), stdout=None):
        """Create and start a container running args; return (id, init pid)."""
        bundle.set_args(list(args))
        cid = self.new_id()
        state = self.create(bundle, cid, stdout=stdout)
        self.start(cid)
        self.wait_status(cid, "running")
        return cid, state["pid"]

    def destroy(self, cid):
        """Kill a container, wait for it to stop, delete it, and check that it is gone."""
        pid = self.state(cid)["pid"]
        self.ok("kill", cid, "KILL")
        self.wait_status(cid, "stopped")
        self.ok("delete", cid)
        wait_for(lambda: not pid_alive(pid), 5, what=f"init pid {pid} to exit")
        assert self("state", cid).returncode != 0

    def run(self, bundle, args=None, *extra, check=True):
        """`run` a container in the foreground (args are saved to the bundle first)."""
        if args is not None:
            bundle.set_args(list(args))
        result = self("run", "--bundle", bundle.path, *extra, self.new_id())
        if check:
            assert result.returncode == 0, "container failed\n" + describe(result)
        return result

    def sh(self, bundle, script, *extra, check=True):
        """Run `/bin/sh -c script` in a container; return the CompletedProcess."""
        return self.run(bundle, ["/bin/sh", "-c", script], *extra, check=check)


# --- bundles --------------------------------------------------------------------------------


class Bundle:
    """An OCI bundle from make-bundle.sh; edit `config` and call save()."""

    def __init__(self, path, mark):
        self.path = Path(path)
        self.rootfs = self.path / "rootfs"
        self.config_path = self.path / "config.json"
        self.mark = mark
        self.config = json.loads(self.config_path.read_text())
        self.config["process"]["env"].append(f"{MARK_VAR}={mark}")
        self.save()

    def save(self):
        self.config_path.write_text(json.dumps(self.config, indent=2) + "\n")

    def set_args(self, args):
        self.config["process"]["args"] = list(args)
        self.save()

    def add_mount(self, destination, mtype, source, options=None):
        mount = {"destination": destination, "type": mtype, "source": str(source)}
        if options is not None:
            mount["options"] = list(options)
        self.config["mounts"].append(mount)

    def namespace(self, ns_type):
        """The linux.namespaces entry of ns_type (None when absent)."""
        for ns in self.config["linux"]["namespaces"]:
            if ns["type"] == ns_type:
                return ns
        return None

    def remove_namespace(self, ns_type):
        namespaces = self.config["linux"]["namespaces"]
        namespaces[:] = [ns for ns in namespaces if ns["type"] != ns_type]


def build_bundle(path, mark):
    result = subprocess.run(
        [str(MAKE_BUNDLE), str(path)], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 0, "make-bundle.sh failed\n" + describe(result)
    return Bundle(path, mark)


# --- leftovers ------------------------------------------------------------------------------


def cgroup2_mount():
    """The cgroup2 mount point seen by this mount namespace, or None."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if " - cgroup2 " in line:
            return Path(_unescape(line.split()[4]))
    return None


def cgroup_dirs():
    """Every cgroup directory under the cgroup2 mount (a set of paths)."""
    root = cgroup2_mount()
    if root is None:
        return set()
    return {dirpath for dirpath, _, _ in os.walk(root)}


class Leftovers:
    """What a test must not leave behind: mounts, state entries, marked processes, cgroups."""

    def __init__(self, rt):
        self.rt = rt
        self.mounts_before = read_mountinfo()
        self.cgroups_before = cgroup_dirs()

    def new_cgroups(self):
        return sorted(cgroup_dirs() - self.cgroups_before)

    def new_mounts(self):
        return [line for mid, line in read_mountinfo().items() if mid not in self.mounts_before]

    def state_entries(self):
        return sorted(os.listdir(self.rt.root)) if self.rt.root.exists() else []

    def problems(self, settle=3.0):
        # A killed process may still be on its way out: give marked ones a moment.
        deadline = time.monotonic() + settle
        pids = marked_pids(self.rt.mark)
        while pids and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = marked_pids(self.rt.mark)
        found = []
        mounts = self.new_mounts()
        if mounts:
            found.append("new mounts remain:\n  " + "\n  ".join(mounts))
        entries = self.state_entries()
        if entries:
            found.append(f"state root {self.rt.root} is not empty: {entries}")
        # only this test's containers: other runs on the machine may have theirs
        cgroups = [c for c in self.new_cgroups() if os.path.basename(c) in self.rt.ids]
        if cgroups:
            found.append("new cgroups remain:\n  " + "\n  ".join(cgroups))
        if pids:
            desc = [f"{pid} {proc_cmdline(pid)}" for pid in pids]
            found.append(
                f"processes with {MARK_VAR}={self.rt.mark} remain:\n  " + "\n  ".join(desc)
            )
        return found

    def assert_clean(self):
        found = self.problems()
        assert not found, "leftovers:\n" + "\n".join(found)

    def cleanup(self):
        """Best effort: delete containers, kill marked processes, detach new mounts."""
        for cid in self.state_entries():
            try:
                self.rt("delete", "--force", cid, timeout=10)
            except pytest.fail.Exception:  # timed out
                pass
        for pid in marked_pids(self.rt.mark):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for line in reversed(self.new_mounts()):
            try:
                umount(_unescape(line.split()[4]), MNT_DETACH)
            except OSError:
                pass
        if self.rt.root.exists():
            subprocess.run(["rm", "-rf", "--one-file-system", str(self.rt.root)], check=False)
        for path in reversed(self.new_cgroups()):
            if os.path.basename(path) not in self.rt.ids:
                continue
            try:
                os.rmdir(path)
            except OSError:
                pass


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def mark():
    return uuid.uuid4().hex


@pytest.fixture
def rt(tmp_path, mark):
    state = tmp_path / "state"
    state.mkdir()
    return Runtime(RUNTIME, state, mark)


@pytest.fixture(autouse=True)
def leftovers(request, rt):
    checker = Leftovers(rt)
    yield checker
    found = checker.problems()
    if not found:
        return
    checker.cleanup()
    call = getattr(request.node, "rep_call", None)
    if call is not None and call.passed:
        pytest.fail("test left things behind:\n" + "\n".join(found), pytrace=False)


@pytest.fixture
def bundle(tmp_path, mark):
    return build_bundle(tmp_path / "bundle", mark)


@pytest.fixture
def make_bundle(tmp_path, mark):
    """Factory for extra bundles: make_bundle("name") -> Bundle in tmp_path/name."""
    return lambda name: build_bundle(tmp_path / name, mark)


@pytest.fixture
def cid(rt):
    return rt.new_id()


@pytest.fixture
def persistent_ns(tmp_path):
    """Factory: persistent_ns("uts", "hostname joined-ns") makes a namespace of that kind,
    runs the shell command in it, and keeps it alive as a bind mount of an empty file (see
    unshare(1)); returns the file. Unmounted at teardown."""
    made = []

    def make(kind, command="true"):
        path = tmp_path / f"ns-{kind}-{len(made)}"
        path.touch()
        result = subprocess.run(
            ["unshare", f"--{kind}={path}", "sh", "-c", command],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert result.returncode == 0, "unshare failed\n" + describe(result)
        made.append(path)
        return path

    yield make
    for path in reversed(made):
        umount(path, MNT_DETACH)


@pytest.fixture
def submount_tree(tmp_path):
    """A host directory tree/ whose sub/ has a file underneath and a tmpfs mounted on top
    (holding on-submount); unmounted at teardown."""
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "under").write_text("hidden by the submount\n")
    mount = ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(tree / "sub")]
    subprocess.run(mount, check=True)
    (tree / "sub" / "on-submount").write_text("on the submount\n")
    yield tree
    umount(tree / "sub", MNT_DETACH)


# --- console sockets ------------------------------------------------------------------------


class ConsoleSocket:
    """A --console-socket listener that receives the pty master fd over SCM_RIGHTS."""

    def __init__(self, path):
        self.path = Path(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.path))
        self.sock.listen(1)
        self.sock.settimeout(TIMEOUT)
        self.master = None

    def receive(self):
        """Accept the runtime's connection and return the pty master fd it sent."""
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
        assert len(fds) == 1, f"expected one fd over the console socket, got {fds}"
        self.master = fds[0]
        return self.master

    def read_until(self, *needles, timeout=10.0):
        """Read the master until every needle appeared, EOF, or timeout; return the text."""
        import select

        data = b""
        deadline = time.monotonic() + timeout
        while not all(n.encode() in data for n in needles):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([self.master], [], [], left)
            if not ready:
                break
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO once the last slave fd closed
                break
            if not chunk:
                break
            data += chunk
        return data.decode(errors="replace")

    def close(self):
        if self.master is not None:
            os.close(self.master)
            self.master = None
        self.sock.close()


@pytest.fixture
def console_socket(tmp_path):
    console = ConsoleSocket(tmp_path / "console.sock")
    yield console
    console.close()
