"""berth-shim through its client API (shimctl): CRI logs, exit records, the socket's requests,
attach and exec streams, shutdown and removal, bad input, and a create/start/wait/remove cycle
that must leave nothing behind. Containers are busybox bundles; the runtime root is the test's
own (conftest's rt.root), so conftest's leftovers check covers them."""

import json
import os
import select
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
from conftest import cgroup_dirs, pids_in_pid_namespace_of, proc_cmdline, read_mountinfo
from proctools import marked_pids, pid_alive, stop_process, wait_until
from shimtools import (
    SHIM,
    SHIMCTL,
    Shim,
    Shims,
    describe,
    elapsed,
    expect_ctl_error,
    log_lines,
    log_records,
    wait_for_records,
)

SLEEP = ["/bin/sleep", "1000"]
CYCLES = int(os.environ.get("BERTH_SHIM_CYCLES", "200"))


@pytest.fixture
def shims(rt, tmp_path, request):
    if not os.access(SHIM, os.X_OK) or not os.access(SHIMCTL, os.X_OK):
        pytest.fail(f"{SHIM} or {SHIMCTL} is missing: build them or set BERTH_SHIM/BERTH_SHIMCTL")
    s = Shims(rt, tmp_path)
    yield s
    left = s.teardown()
    call = getattr(request.node, "rep_call", None)
    if left and call is not None and call.passed:
        pytest.fail("test left shims behind:\n  " + "\n  ".join(left), pytrace=False)


def sh(script):
    return ["/bin/sh", "-c", script]


def finished(shim, timeout_ms=20000):
    """Wait for the container's exit; return its status."""
    st = shim.wait(timeout_ms)
    assert st["state"] == "stopped", st
    return st


def read_until(stream, needle, timeout=10):
    """Read a pipe until needle (bytes) appeared; return what was read."""
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data:
        left = deadline - time.monotonic()
        assert left > 0, f"timed out waiting for {needle!r}; got {data!r}"
        ready, _, _ = select.select([stream], [], [], left)
        if ready:
            chunk = os.read(stream.fileno(), 65536)
            assert chunk, f"EOF before {needle!r}; got {data!r}"
            data += chunk
    return data


# --- the CRI log ----------------------------------------------------------------------------


def test_log_format_is_cri(shims, bundle):
    shim = shims.running(bundle, sh('echo out1; echo err1 >&2; echo "  spaced  out "; '
                                    'printf "tab\\there\\n"; echo; echo last'))
    st = finished(shim)
    assert st["exit_code"] == 0
    records = shim.records()
    assert log_lines(records, "stdout") == [b"out1", b"  spaced  out ", b"tab\there", b"", b"last"]
    assert log_lines(records, "stderr") == [b"err1"]
    assert all(tag == "F" for _, _, tag, _ in records)
    times = [t for t, _, _, _ in records]
    assert times == sorted(times), "record times go backwards"
    # the records fall between the container's start and its exit (1 s of clock slack)
    assert st["started"] - 10**9 <= times[0] and times[-1] <= st["finished"] + 10**9
    shim.finish()


@pytest.mark.parametrize("line_max, length", [(64, 300), (None, 40000)])
def test_log_long_line_split_into_partials(shims, bundle, line_max, length):
    extra = ["--log-line-max", line_max] if line_max else []
    shim = shims.spawn(bundle, *extra,
                       args=sh(f"head -c {length} /dev/zero | tr '\\0' a; echo; echo short"))
    shim.start()
    finished(shim)
    records = shim.records()
    limit = line_max or 16 * 1024
    tags = [tag for _, _, tag, _ in records]
    parts = -(-length // limit)
    assert tags == ["P"] * (parts - 1) + ["F", "F"], tags
    assert all(len(text) <= limit for _, _, _, text in records)
    assert log_lines(records) == [("stdout", b"a" * length), ("stdout", b"short")]
    shim.finish()


def test_log_partial_last_line_is_final(shims, bundle):
    shim = shims.running(bundle, sh("printf 'whole\\npartial'; printf 'no newline' >&2"))
    finished(shim)
    records = shim.records()
    assert [(s, tag, text) for _, s, tag, text in records if s == "stdout"] == [
        ("stdout", "F", b"whole"), ("stdout", "F", b"partial")]
    assert [(tag, text) for _, s, tag, text in records if s == "stderr"] == [("F", b"no newline")]
    shim.finish()


def test_log_interleaves_stdout_and_stderr_in_order(shims, bundle):
    n = 15
    shim = shims.running(bundle, sh(f"for i in $(seq {n}); do echo out$i; usleep 20000; "
                                    "echo err$i >&2; usleep 20000; done"))
    finished(shim)
    want = []
    for i in range(1, n + 1):
        want += [("stdout", f"out{i}".encode()), ("stderr", f"err{i}".encode())]
    assert log_lines(shim.records()) == want
    shim.finish()


def rotated_files(log):
    """The log and its rotated files, oldest first (by their first record's time)."""
    files = [p for p in log.parent.iterdir() if p.name == log.name or
             p.name.startswith(log.name + ".")]
    return sorted(files, key=lambda p: (log_records(p)[0][0] if p.stat().st_size else 0, p.name))


@pytest.mark.parametrize("lines", [150, 3000])
def test_log_rotation_keeps_max_files_and_every_line(shims, bundle, lines):
    max_size, max_files = 4096, 4
    shim = shims.spawn(bundle, "--log-max-size", max_size, "--log-max-files", max_files,
                       args=sh(f"i=1; while [ $i -le {lines} ]; do echo line-$i; i=$((i+1)); done"))
    shim.start()
    finished(shim)
    files = rotated_files(shim.log)
    assert 2 <= len(files) <= max_files, [f.name for f in files]
    for f in files:
        assert f.stat().st_size <= max_size, f"{f.name} is {f.stat().st_size} bytes"
    records = [r for f in files for r in log_records(f)]
    numbers = [int(text.split(b"-")[1]) for text in log_lines(records, "stdout")]
    # the kept lines are one unbroken run that ends with the last line
    assert numbers == list(range(numbers[0], lines + 1)), "a line is missing or out of order"
    if lines == 150:  # small enough to fit in the kept files: every line is there
        assert numbers[0] == 1
    shim.finish()
    for f in files[:-1]:
        f.unlink()


def test_log_reopen_after_move_continues_in_new_file(shims, bundle):
    shim = shims.running(bundle, sh("i=0; while :; do echo tick-$i; i=$((i+1)); usleep 20000; done"))
    wait_for_records(shim, lambda r: len(r) >= 5)
    moved = shim.log.with_name(shim.log.name + ".moved")
    shim.log.rename(moved)
    shims.ctl.ok("reopen-log", shim.dir)
    wait_for_records(shim, lambda r: len(r) >= 5, what="records in the reopened log")
    shim.kill("KILL")
    finished(shim)
    old, new = log_lines(log_records(moved), "stdout"), log_lines(shim.records(), "stdout")
    ticks = [int(t.split(b"-")[1]) for t in old + new]
    assert ticks == list(range(len(ticks))), "a line was lost or repeated across the reopen"
    assert new and int(new[0].split(b"-")[1]) > 0
    shim.finish()
    moved.unlink()


def test_reopen_log_without_log_is_refused(shims, bundle):
    shim = shims.spawn(bundle, args=SLEEP, log=False)
    expect_ctl_error(shims.ctl("reopen-log", shim.dir), "log")
    shim.finish()


# --- status and exit records ----------------------------------------------------------------


def test_status_through_the_lifecycle(shims, bundle):
    shim = shims.spawn(bundle, args=SLEEP)
    spawned = shim.spawned
    assert spawned["state"] == "created" and spawned["pid"] > 0 and spawned["created"] > 0
    assert spawned["started"] == 0 and spawned["finished"] == 0
    assert pid_alive(shim.shim_pid) and pid_alive(spawned["pid"])
    shim.start()
    st = shim.status()
    assert st["state"] == "running" and st["pid"] == spawned["pid"]
    assert st["started"] >= st["created"] and st["finished"] == 0
    expect_ctl_error(shims.ctl("wait", shim.dir, "--timeout", 200), "200 ms")
    shim.finish()


def test_exit_code_recorded(shims, bundle):
    shim = shims.running(bundle, sh("exit 3"))
    st = finished(shim)
    assert (st["exit_code"], st["signal"], st["oom_killed"]) == (3, 0, False)
    assert st["created"] <= st["started"] <= st["finished"]
    record = shim.exit_record()
    for key in ("exit_code", "signal", "oom_killed", "created", "started", "finished"):
        assert record[key] == st[key], key
    # written atomically: the temp file is gone once the record is there
    assert sorted(p.name for p in shim.dir.iterdir() if "exit" in p.name) == ["exit.json"]
    assert not list(shim.dir.glob("*.tmp"))
    shim.finish()


def test_killed_by_signal_recorded(shims, bundle):
    shim = shims.running(bundle, SLEEP)
    shim.kill("KILL")
    st = finished(shim)
    assert (st["exit_code"], st["signal"], st["oom_killed"]) == (137, 9, False)
    record = shim.exit_record()
    assert (record["exit_code"], record["signal"]) == (137, 9)
    shim.finish()


def test_kill_signals_the_init(shims, bundle):
    shim = shims.running(bundle, sh('trap "echo got-term; exit 3" TERM; echo ready; '
                                    "while :; do usleep 20000; done"))
    wait_for_records(shim, lambda r: r, what="the trap to be set")
    shim.kill("TERM")
    st = finished(shim)
    assert (st["exit_code"], st["signal"]) == (3, 0)
    assert log_lines(shim.records(), "stdout") == [b"ready", b"got-term"]
    shim.finish()


def test_kill_all_reaches_every_process(shims, bundle):
    shim = shims.running(bundle, sh('trap "echo init-got-term" TERM; sleep 1001 & '
                                    "while :; do usleep 20000; done"))
    init = shim.status()["pid"]
    sleeper = lambda: [p for p in pids_in_pid_namespace_of(init)
                       if proc_cmdline(p) == ["sleep", "1001"]]
    wait_until(sleeper, 10, "the sleep")
    shim.kill("TERM", "--all")
    wait_until(lambda: not sleeper(), 10, "the sleep to get SIGTERM")
    wait_for_records(shim, lambda r: any(t == b"init-got-term" for _, _, _, t in r))
    assert shim.status()["state"] == "running"
    shim.finish()


def test_status_after_shutdown_comes_from_the_exit_record(shims, bundle):
    shim = shims.running(bundle, sh("exit 7"))
    finished(shim)
    shim.shutdown()
    st = shim.status()
    assert st["state"] == "stopped" and st["exit_code"] == 7
    expect_ctl_error(shims.ctl("start", shim.dir), "gone")
    shim.remove()


def test_shim_killed_before_exit_leaves_no_record(shims, bundle, rt):
    shim = shims.spawn(bundle, args=SLEEP)
    init = shim.spawned["pid"]
    os.kill(shim.shim_pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(shim.shim_pid), 10, "the shim to die")
    expect_ctl_error(shims.ctl("status", shim.dir), "no exit record")
    # removal finds the orphaned container (still at its barrier) and deletes it
    shim.remove()
    wait_until(lambda: not pid_alive(init), 10, "the container's init to be gone")
    assert not (rt.root / shim.id).exists()


# --- the shim's independence ----------------------------------------------------------------


def test_shim_is_detached_and_survives_its_spawner(shims, bundle, tmp_path):
    bundle.set_args(SLEEP)
    cid = shims.rt.new_id()
    shims.rt.ids.add(cid)
    argv, dir_, log = shims.args(bundle, cid)
    spawner = shims.ctl.popen(*argv, "--hold", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = read_until(spawner.stdout, b"\n", timeout=30)
        spawned = json.loads(line)
        shim_pid = spawned["shim_pid"]
        stat_fields = Path(f"/proc/{shim_pid}/stat").read_text().rsplit(")", 1)[1].split()
        ppid, sid = int(stat_fields[1]), int(stat_fields[3])
        assert ppid != spawner.pid, "the shim is its spawner's child"
        assert sid != os.getsid(spawner.pid), "the shim is in its spawner's session"
    finally:
        spawner.kill()  # SIGKILL
        spawner.wait()
    shim = Shim(shims.ctl, shims.rt.root, dir_, cid, log, spawned)
    shims.made.append(shim)
    assert pid_alive(shim_pid)
    assert shim.status()["state"] == "created"
    shim.start()
    assert shim.status()["state"] == "running"
    shim.finish()


def test_shim_dir_and_socket(shims, bundle):
    shim = shims.spawn(bundle, args=SLEEP)
    assert stat.S_IMODE(shim.dir.stat().st_mode) == 0o700
    sock = shim.dir / "shim.sock"
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.stat().st_mode) & 0o077 == 0, oct(sock.stat().st_mode)
    assert int((shim.dir / "shim.pid").read_text()) == shim.shim_pid
    # the shim listens on a path socket (CVE-2020-15257: never an abstract one)
    fds = Path(f"/proc/{shim.shim_pid}/fd")
    inodes = {os.readlink(fd)[8:-1] for fd in fds.iterdir() if os.readlink(fd).startswith("socket:")}
    listening = [line.split() for line in Path("/proc/net/unix").read_text().splitlines()[1:]
                 if line.split()[6] in inodes and int(line.split()[3], 16) & 0x10000]
    assert len(listening) == 1, listening
    assert len(listening[0]) == 8 and listening[0][7].startswith("/"), listening
    assert shim.status()["state"] == "created"  # and it serves that path
    shim.finish()


# --- shutdown and removal -------------------------------------------------------------------


def test_shutdown_leaves_nothing_but_the_exit_record(shims, bundle, rt):
    shim = shims.running(bundle, sh("exit 0"))
    finished(shim)
    assert (rt.root / shim.id).exists()
    cgroups = lambda: [c for c in cgroup_dirs() if os.path.basename(c) == shim.id]
    assert cgroups() or not cgroup_dirs(), "no cgroup to begin with: the check below is void"
    shim.shutdown()
    # the exit record stays (and the shim's own log, for whoever removes the directory)
    assert sorted(p.name for p in shim.dir.iterdir() if p.name != "shim.log") == ["exit.json"]
    assert not (rt.root / shim.id).exists(), "the runtime's state is left"
    assert not cgroups(), "a cgroup is left"
    shim.remove()


def test_shutdown_of_running_container_is_refused(shims, bundle):
    shim = shims.running(bundle, SLEEP)
    expect_ctl_error(shims.ctl("shutdown", shim.dir), "running")
    assert shim.status()["state"] == "running" and pid_alive(shim.shim_pid)
    shim.finish()


def test_remove_kills_live_shim_and_container(shims, bundle, rt):
    shim = shims.running(bundle, SLEEP)
    init = shim.status()["pid"]
    shim.remove()
    assert not pid_alive(shim.shim_pid)
    wait_until(lambda: not pid_alive(init), 10, "the container's init to be gone")
    assert not (rt.root / shim.id).exists()
    # idempotent
    shims.ctl.ok("remove", shim.dir, rt.root, shim.id)


# --- bad input ------------------------------------------------------------------------------


def test_spawn_missing_bundle(shims, tmp_path, rt):
    missing = tmp_path / "no-such-bundle"
    dir_ = tmp_path / "s" / "bad1"
    result = shims.ctl("spawn", "--dir", dir_, "--id", "bad1", "--bundle", missing,
                       "--runtime-root", rt.root)
    expect_ctl_error(result, str(missing))
    assert not dir_.exists()


def test_spawn_bad_config(shims, bundle, tmp_path, rt):
    bundle.config_path.write_text("{ not json")
    dir_ = tmp_path / "s" / "bad2"
    result = shims.ctl("spawn", "--dir", dir_, "--id", "bad2", "--bundle", bundle.path,
                       "--runtime-root", rt.root, "--log", tmp_path / "logs" / "bad2.log")
    expect_ctl_error(result, str(bundle.path), "JSON")
    assert not dir_.exists()
    assert not (tmp_path / "logs" / "bad2.log").exists()


def test_spawn_into_existing_dir(shims, bundle, tmp_path, rt):
    dir_ = tmp_path / "s" / "taken"
    dir_.mkdir(parents=True)
    (dir_ / "keep").write_text("mine")
    result = shims.ctl("spawn", "--dir", dir_, "--id", "taken", "--bundle", bundle.path,
                       "--runtime-root", rt.root)
    expect_ctl_error(result, str(dir_), "exists")
    assert (dir_ / "keep").read_text() == "mine"


def test_spawn_bad_process_fails_at_start(shims, bundle):
    shim = shims.spawn(bundle, args=["/no/such/program"])
    result = shims.ctl("start", shim.dir)
    if result.returncode == 0:  # the exec failure may come after start: then it is the exit
        st = finished(shim)
        assert st["exit_code"] != 0
    else:
        expect_ctl_error(result, "/no/such/program")
    shim.finish()


# --- attach ---------------------------------------------------------------------------------


def test_attach_sees_output_and_feeds_stdin(shims, bundle):
    shim = shims.spawn(bundle, "--stdin",
                       args=sh("while read l; do echo got:$l; echo err:$l >&2; done"))
    shim.start()
    attach = shims.ctl.popen("attach", shim.dir, "-i", stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        attach.stdin.write(b"one\n")
        attach.stdin.flush()
        assert b"got:one\n" in read_until(attach.stdout, b"got:one\n")
        assert b"err:one\n" in read_until(attach.stderr, b"err:one\n")
        shim.kill("KILL")
        assert attach.wait(10) == 137
    finally:
        stop_process(attach)
    assert log_lines(shim.records(), "stdout") == [b"got:one"]
    shim.finish()


def test_attach_stdin_once_closes_stdin_when_it_ends(shims, bundle):
    shim = shims.spawn(bundle, "--stdin", "--stdin-once", args=sh("cat; echo done"))
    shim.start()
    result = shims.ctl("attach", shim.dir, "-i", input="abc\n")
    assert result.returncode == 0, describe(result)
    assert result.stdout == "abc\ndone\n"
    assert finished(shim)["exit_code"] == 0
    assert log_lines(shim.records(), "stdout") == [b"abc", b"done"]
    shim.finish()


def test_container_terminal_resize(shims, bundle):
    bundle.config["process"]["terminal"] = True
    shim = shims.running(bundle, sh("while :; do stty size; usleep 100000; done"))
    shims.ctl.ok("resize", shim.dir, 123, 45)
    wait_for_records(shim, lambda r: any(b"45 123" in t for _, _, _, t in r), what="45 123")
    expect_ctl_error(shims.ctl("resize", shim.dir, 0, 10), "resize")
    shim.finish()


def test_resize_without_terminal_is_refused(shims, bundle):
    shim = shims.running(bundle, SLEEP)
    expect_ctl_error(shims.ctl("resize", shim.dir, 80, 24), "terminal")
    shim.finish()


# --- exec -----------------------------------------------------------------------------------


def test_exec_streams_and_exit_code(shims, bundle):
    shim = shims.running(bundle, SLEEP)
    result = shim.exec(*sh("echo out; echo err >&2; exit 5"))
    assert (result.returncode, result.stdout, result.stderr) == (5, "out\n", "err\n")
    result = shims.ctl(*shim.exec_args("exec", ["/bin/cat"], "-i"), input="fed\nthrough\n")
    assert (result.returncode, result.stdout) == (0, "fed\nthrough\n"), describe(result)
    shim.finish()


def test_exec_tty_gets_its_size(shims, bundle):
    shim = shims.running(bundle, SLEEP)
    result = shims.ctl(*shim.exec_args("exec", sh("read x; stty size; tty"), "-t", "-i",
                                       "--size", "100x40"), input="go\n")
    assert result.returncode == 0, describe(result)
    assert "40 100" in result.stdout and "/dev/pts/" in result.stdout, describe(result)
    shim.finish()


def test_exec_client_disconnect_kills_the_process(shims, bundle):
    shim = shims.running(bundle, SLEEP)
    init = shim.status()["pid"]
    execp = shims.ctl.popen(*shim.exec_args("exec", sh("echo started; exec sleep 1234")),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        read_until(execp.stdout, b"started\n")
        sleeper = lambda: [p for p in pids_in_pid_namespace_of(init)
                           if proc_cmdline(p) == ["sleep", "1234"]]
        wait_until(sleeper, 5, "the exec'd sleep")
        execp.kill()
        execp.wait()
        wait_until(lambda: not sleeper(), 10, "the exec'd process to be killed")
    finally:
        stop_process(execp)
    assert shim.status()["state"] == "running"
    shim.finish()


def test_exec_sync_timeout_kills_the_process(shims, bundle):
    shim = shims.running(bundle, SLEEP)
    init = shim.status()["pid"]
    start = time.monotonic()
    result = shims.ctl(*shim.exec_args("exec-sync", ["sleep", "1235"], "--timeout", 500))
    expect_ctl_error(result, "timed out")
    assert elapsed(start) < 5
    wait_until(lambda: not [p for p in pids_in_pid_namespace_of(init)
                            if proc_cmdline(p) == ["sleep", "1235"]], 10, "the sleep to go")
    shim.finish()


def test_exec_sync_output_cap_and_stdin(shims, bundle):
    shim = shims.running(bundle, SLEEP)
    res = shims.ctl.json(*shim.exec_args(
        "exec-sync", sh("head -c 100000 /dev/zero | tr '\\0' x; echo e >&2; exit 2"),
        "--max-output", 100))
    assert res["stdout"] == "x" * 100 and res["stderr"] == "e\n"
    assert (res["truncated"], res["exit_code"]) == (True, 2)
    res = shims.ctl.json(*shim.exec_args("exec-sync", ["/bin/cat"], "-i"), input="in\n")
    assert (res["stdout"], res["truncated"], res["exit_code"]) == ("in\n", False, 0)
    shim.finish()


def test_exec_in_stopped_container_is_refused(shims, bundle):
    shim = shims.running(bundle, sh("exit 0"))
    finished(shim)
    result = shim.exec("/bin/true")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    shim.finish()


# --- many cycles ----------------------------------------------------------------------------


def counts(shims, rt, prefix):
    """What a cycle could leak. Cgroups are counted by name: other tests on the machine make
    and remove theirs in the same hierarchy."""
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "marked processes": len(marked_pids(shims.rt.mark)),
        "mounts": len(read_mountinfo()),
        "cgroups": len([c for c in cgroup_dirs() if os.path.basename(c).startswith(prefix)]),
        "runtime state": len(os.listdir(rt.root)) if rt.root.exists() else 0,
        "shim dirs": len(os.listdir(shims.base)) if shims.base.exists() else 0,
    }


def test_cycles_leave_nothing_behind(shims, bundle, rt, tmp_path):
    """CYCLES lives in one long-lived client (shimctl cycles: spawn, start, wait, shutdown,
    remove through the API, as berthd would), which counts its own fds; the machine's side is
    counted here."""
    bundle.set_args(["/bin/true"])
    prefix = f"cyc{shims.rt.mark[:8]}-"
    rt.ids.update(f"{prefix}{n}" for n in range(CYCLES))
    before = counts(shims, rt, prefix)
    res = shims.ctl.json("cycles", "--count", CYCLES, "--bundle", bundle.path, "--runtime-root",
                         rt.root, "--dir-base", shims.base, "--id-prefix", prefix,
                         timeout=max(120, CYCLES))
    print(f"\n{CYCLES} create/start/wait/shutdown/remove cycles: {res['seconds']:.1f} s "
          f"({res['seconds'] / CYCLES * 1000:.0f} ms each)")
    assert res["fds_after"] == res["fds_before"], f"the client leaked fds: {res}"
    deadline = time.monotonic() + 5  # a process on its way out
    while (after := counts(shims, rt, prefix)) != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert after == before, f"before {CYCLES} cycles: {before}; after: {after}"
