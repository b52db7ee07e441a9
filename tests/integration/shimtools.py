"""Helpers for berth-shim's integration tests: shimctl (tests/shim/shimctl.c, the client API on
a command line), shims in a test's tmp dir, and CRI log files read back as records.

Environment: BERTH_SHIM (the shim, default <repo>/build/tools/berth-shim) and BERTH_SHIMCTL
(default <repo>/build/tests/shimctl), both set by meson's integration test.
"""

import json
import os
import re
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
from proctools import pid_alive, wait_until

REPO = Path(__file__).resolve().parents[2]
SHIM = os.environ.get("BERTH_SHIM") or str(REPO / "build" / "tools" / "berth-shim")
SHIMCTL = os.environ.get("BERTH_SHIMCTL") or str(REPO / "build" / "tests" / "shimctl")
TIMEOUT = 30

# <RFC 3339 time> <stdout|stderr> <P|F> <text>: kubelet's CRI log line
CRI_RECORD = re.compile(
    rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([PF]) (.*)$",
    re.S,
)


def describe(result):
    return (
        f"$ {' '.join(map(str, result.args))}\nrc={result.returncode}\n"
        f"--- stdout ---\n{result.stdout}--- stderr ---\n{result.stderr}"
    )


def cri_time_ns(stamp):
    """A CRI record's timestamp (bytes) as nanoseconds since the epoch."""
    text = stamp.decode()
    main, rest = text[:19], text[19:]
    frac = ""
    if rest.startswith("."):
        digits = re.match(r"\.(\d+)", rest).group(1)
        frac, rest = digits, rest[1 + len(digits):]
    zone = "+00:00" if rest == "Z" else rest
    seconds = datetime.fromisoformat(main + zone).timestamp()
    return int(seconds) * 10**9 + int(frac.ljust(9, "0"))


def log_records(path):
    """The records of one CRI log file: (time_ns, stream, tag, text bytes); every line must be
    one well-formed record."""
    data = Path(path).read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"{path} does not end with a newline"
    records = []
    for n, line in enumerate(data.split(b"\n")[:-1], 1):
        match = CRI_RECORD.match(line)
        assert match, f"{path}:{n}: not a CRI log record: {line[:200]!r}"
        stamp, stream, tag, text = match.groups()
        records.append((cri_time_ns(stamp), stream.decode(), tag.decode(), text))
    return records


def log_lines(records, stream=None):
    """The container's lines (P parts joined to their F) as (stream, text) tuples."""
    lines, pending = [], {}
    for _, s, tag, text in records:
        pending[s] = pending.get(s, b"") + text
        if tag == "F":
            lines.append((s, pending.pop(s)))
    assert not pending, f"P records without their F: {pending}"
    return [text for s, text in lines if s == stream] if stream else lines


class ShimCtl:
    """Runs shimctl with the test's environment (its mark reaches the shim and containers)."""

    def __init__(self, env):
        self.env = env

    def __call__(self, *args, timeout=TIMEOUT, input=None):
        argv = [SHIMCTL, *map(str, args)]
        try:
            return subprocess.run(argv, capture_output=True, text=True, env=self.env,
                                  timeout=timeout, input=input,
                                  stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"shimctl timed out after {timeout}s: {' '.join(argv)}\n{e.stderr}",
                        pytrace=False)

    def ok(self, *args, **kwargs):
        result = self(*args, **kwargs)
        assert result.returncode == 0, "shimctl failed\n" + describe(result)
        return result

    def json(self, *args, **kwargs):
        return json.loads(self.ok(*args, **kwargs).stdout)

    def popen(self, *args, **kwargs):
        return subprocess.Popen([SHIMCTL, *map(str, args)], env=self.env, **kwargs)


def expect_ctl_error(result, *needles, code=1):
    """A refused shimctl command: exit code, one stderr line naming each needle."""
    assert result.returncode == code, "expected a failure\n" + describe(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, "expected exactly one error line\n" + describe(result)
    for needle in needles:
        assert needle in lines[0], f"error line should name {needle!r}\n" + describe(result)


class Shim:
    """One spawned shim: its directory, container id, log and the spawn's answer."""

    def __init__(self, ctl, root, dir_, cid, log, spawned):
        self.ctl, self.root, self.dir, self.id, self.log = ctl, root, Path(dir_), cid, log
        self.spawned = spawned
        self.shim_pid = spawned["shim_pid"]
        self.removed = False

    def status(self):
        return self.ctl.json("status", self.dir)

    def start(self):
        self.ctl.ok("start", self.dir)

    def kill(self, sig="KILL", *extra):
        self.ctl.ok("kill", self.dir, sig, *extra)

    def wait(self, timeout_ms=20000):
        return self.ctl.json("wait", self.dir, "--timeout", timeout_ms)

    def exit_record(self):
        return json.loads((self.dir / "exit.json").read_text())

    def records(self):
        return log_records(self.log)

    def exec(self, *argv, **kwargs):
        """shimctl exec DIR -- argv (the test's mark goes into the process's environment)."""
        return self.ctl(*self.exec_args("exec", argv), **kwargs)

    def exec_args(self, cmd, argv, *opts):
        return [cmd, self.dir, "--env", f"BERTH_TEST_MARK={self.ctl.env['BERTH_TEST_MARK']}",
                *opts, "--", *argv]

    def shutdown(self):
        self.ctl.ok("shutdown", self.dir)
        wait_until(lambda: not pid_alive(self.shim_pid), 10, f"shim {self.shim_pid} to exit")

    def remove(self):
        self.ctl.ok("remove", self.dir, self.root, self.id)
        self.removed = True
        assert not self.dir.exists()

    def finish(self):
        """The whole ending: kill what runs, wait, shutdown, remove."""
        if self.status()["state"] != "stopped":
            result = self.ctl("kill", self.dir, "KILL")
            # it may have stopped on its own in between
            assert result.returncode == 0 or "stopped" in result.stderr, describe(result)
        self.wait()
        self.shutdown()
        self.remove()


class Shims:
    """Spawns shims for one test (dirs under tmp/s, the test's runtime root) and, at teardown,
    reports and removes those the test did not remove itself."""

    def __init__(self, rt, tmp_path):
        self.rt = rt
        self.ctl = ShimCtl(dict(rt.env, BERTH_SHIM=SHIM))
        self.base = tmp_path / "s"
        self.logs = tmp_path / "logs"
        self.made = []

    def args(self, bundle, cid, log=True, extra=()):
        dir_ = self.base / cid
        log_path = self.logs / f"{cid}.log" if log else None
        argv = ["spawn", "--dir", dir_, "--id", cid, "--bundle", bundle.path,
                "--runtime-root", self.rt.root]
        if log_path:
            argv += ["--log", log_path]
        return argv + list(extra), dir_, log_path

    def spawn(self, bundle, *extra, args=None, log=True, cid=None):
        """Spawn a shim over bundle (args: the process's args, saved first)."""
        if args is not None:
            bundle.set_args(list(args))
        cid = cid or self.rt.new_id()
        self.rt.ids.add(cid)  # the leftovers check looks for its cgroup
        argv, dir_, log_path = self.args(bundle, cid, log, extra)
        spawned = self.ctl.json(*argv)
        shim = Shim(self.ctl, self.rt.root, dir_, cid, log_path, spawned)
        self.made.append(shim)
        return shim

    def running(self, bundle, args, *extra):
        shim = self.spawn(bundle, *extra, args=args)
        shim.start()
        return shim

    def teardown(self):
        left = []
        for shim in self.made:
            if shim.removed and not shim.dir.exists() and not pid_alive(shim.shim_pid):
                continue
            left.append(f"shim {shim.id} in {shim.dir} (pid {shim.shim_pid})")
            self.ctl("remove", shim.dir, self.rt.root, shim.id)
        return left


def wait_for_records(shim, predicate, timeout=10, what="log records"):
    """Polls shim's log until predicate(records) holds; returns the records."""
    def check():
        try:
            records = log_records(shim.log)
        except (FileNotFoundError, AssertionError):
            return None  # not there yet, or a record being written
        return records if predicate(records) else None

    return wait_until(check, timeout, what)


def elapsed(start):
    return time.monotonic() - start
