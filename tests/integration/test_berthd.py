"""berthd, the daemon, through its socket (JSON lines): a pod with a container from run to
remove; the kill -9 recovery of 50 containers (running ones keep running with the same pids,
exits that happened while it was down are recorded, logs are whole); a shim killed while berthd is
down (ShimDied); creates and runs cut short by a crash (BERTHD_TEST_CRASH) undone at the next
start; SIGTERM leaving every container running; 1000 create/start/wait/remove cycles leaving
nothing behind; bad requests; slow clients; image pulls.

Each test runs its own berthd inside a network namespace it made (berthdtools.py), with the
"small" test image (busybox) imported into its store; the bd fixture removes every pod at the end
and fails the test if anything is left (processes, mounts, cgroups, directories).
"""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from berthdtools import (  # noqa: F401 (fixtures)
    BERTHD,
    FIXTURES,
    IMAGE,
    PYTHON,
    ApiError,
    Client,
    bd,
    image_tar,
    node,
)
from nettools import run
from proctools import mounts_under, pid_alive, wait_until
from shimtools import log_lines, log_records

# Prints 0, 1, 2... one line per 100 ms; exits with the code written in /ctl/<NAME> once there.
LOOP = ("i=0; while :; do echo $i; i=$((i+1)); "
        "if [ -e /ctl/$NAME ]; then exit $(cat /ctl/$NAME); fi; sleep 0.1; done")


def loop_config(ctl, name):
    return {"envs": [{"key": "NAME", "value": name}],
            "mounts": [{"container_path": "/ctl", "host_path": str(ctl), "readonly": True}]}


def numbers(log_path):
    """The container's stdout lines, as integers; they must be 0, 1, 2... without a gap."""
    lines = log_lines(log_records(log_path), "stdout")
    got = [int(x) for x in lines]
    assert got == list(range(len(got))), f"{log_path}: numbered lines are not contiguous: " \
        f"{[b for a, b in zip(range(len(got)), got) if a != b][:5]}..."
    return len(got)


def lines_in(path):
    try:
        return len(log_lines(log_records(path), "stdout"))
    except (FileNotFoundError, AssertionError):
        return 0


# --- the whole lifecycle ----------------------------------------------------------------------


def test_pod_and_container_lifecycle(bd):
    bd.start()
    c = bd.client()
    events = bd.events()
    pod = c.run_pod("web", hostname="web-1", labels={"app": "web"})
    st = c.ok("pod.status", pod_id=pod)["status"]
    assert st["state"] == "ready" and st["name"] == "web" and st["labels"] == {"app": "web"}
    assert st["ip4"].startswith("10.88."), st
    assert [p["id"] for p in c.ok("pod.list")["pods"]] == [pod]

    script = ("echo hello; echo oops >&2; trap 'echo bye; exit 7' TERM; "
              "while :; do sleep 0.1; done")
    cid = c.create(pod, "main", ["/bin/sh", "-c", script],
                   envs=[{"key": "GREETING", "value": "hi there"}], labels={"tier": "a"})
    s = c.status(cid)
    assert s["state"] == "created" and s["pid"] > 0 and s["pod_id"] == pod
    assert s["log_path"] == str(bd.logs / "web_default" / "main" / "0.log")
    assert s["image"] == IMAGE and s["image_id"].startswith("sha256:")
    assert s["labels"] == {"tier": "a"}
    assert (bd.root / "containers" / cid / "config.json").is_file()
    assert mounts_under(bd.root / "containers" / cid) == [str(bd.root / "containers" / cid / "rootfs")]

    c.ok("container.start", container_id=cid)
    s = c.wait_state(cid, "running")
    pid = s["pid"]
    assert pid_alive(pid) and s["started_ns"] >= s["created_ns"] > 0
    cgroup = Path(f"/proc/{pid}/cgroup").read_text()
    assert f"/{bd.cgroup_parent}/{pod}/{cid}" in cgroup, cgroup

    # its output, in the CRI log format
    wait_until(lambda: len(log_records(s["log_path"])) >= 2, 10, "the log's two lines")
    streams = {(r[1], r[2], r[3]) for r in log_records(s["log_path"])}
    assert ("stdout", "F", b"hello") in streams and ("stderr", "F", b"oops") in streams, streams

    # exec: environment, pod hostname, user, exit code, both streams
    r = c.ok("container.exec", container_id=cid, timeout=10,
             cmd=["/bin/sh", "-c", "echo $GREETING; hostname; id -u; echo e >&2; exit 4"])
    assert (r["exit_code"], r["stdout"], r["stderr"]) == (4, "hi there\nweb-1\n0\n", "e\n"), r
    assert c.fail("DeadlineExceeded", "container.exec", container_id=cid, timeout=1,
                  cmd=["/bin/sh", "-c", "sleep 30"])

    # stop: SIGTERM, which the trap turns into exit 7
    c.ok("container.stop", container_id=cid, timeout=10)
    s = c.status(cid)
    assert (s["state"], s["exit_code"], s["reason"], s["pid"]) == ("exited", 7, "Error", 0), s
    assert s["finished_ns"] >= s["started_ns"]
    assert not pid_alive(pid)
    assert b"bye" in log_lines(log_records(s["log_path"]), "stdout")
    c.ok("container.stop", container_id=cid)  # idempotent

    c.ok("container.remove", container_id=cid)
    c.fail("NotFound", "container.status", container_id=cid)
    c.ok("container.remove", container_id=cid)  # idempotent
    events.wait(lambda e: e["event"] == "removed" and e["container_id"] == cid)
    assert events.of(cid) == ["created", "started", "exited", "removed"]
    exited = events.wait(lambda e: e["event"] == "exited")
    assert exited["exit_code"] == 7 and exited["reason"] == "Error" and exited["pod_id"] == pod
    assert not (bd.root / "containers" / cid).exists()
    assert not (bd.state / "shims" / cid).exists()
    assert mounts_under(bd.root / "containers") == []

    c.ok("pod.stop", pod_id=pod)
    assert c.ok("pod.status", pod_id=pod)["status"]["state"] == "notready"
    c.ok("pod.remove", pod_id=pod)
    c.fail("NotFound", "pod.status", pod_id=pod)
    c.ok("pod.remove", pod_id=pod)
    assert c.ok("pod.list")["pods"] == []
    assert bd.problems() == []
    events.close()


def test_pod_remove_takes_its_containers(bd):
    bd.start()
    c = bd.client()
    pod = c.run_pod("p")
    ids = [c.create(pod, f"c{i}", ["/bin/sh", "-c", "sleep 1000"]) for i in range(3)]
    c.ok("container.start", container_id=ids[0])
    c.wait_state(ids[0], "running")
    c.ok("pod.remove", pod_id=pod)
    for cid in ids:
        c.fail("NotFound", "container.status", container_id=cid)
    assert bd.problems() == []


def test_user_workdir_and_image_defaults(bd):
    bd.start()
    c = bd.client()
    pod = c.run_pod("u")
    # no command: the image's Cmd (/bin/sh) with args given is Entrypoint (none) + args
    cid = c.create(pod, "a", None, args=["/bin/sh", "-c", "id; pwd; echo $PATH"],
                   working_dir="/tmp",
                   linux={"security_context": {"run_as_username": "tester"}})
    c.ok("container.start", container_id=cid)
    s = c.wait_state(cid, "exited")
    out = log_lines(log_records(s["log_path"]), "stdout")
    assert out[0].startswith(b"uid=1000(tester) gid=1000(tester)") and b"2000" in out[0], out
    assert out[1:] == [b"/tmp", b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    assert s["exit_code"] == 0 and s["reason"] == "Completed"
    bad = c.fail("NotFound", "container.create", pod_id=pod, config={
        "metadata": {"name": "b"}, "image": {"image": IMAGE}, "command": ["/bin/true"],
        "linux": {"security_context": {"run_as_username": "nobody-here"}}})
    assert "nobody-here" in bad["error"]
    assert bd.entries()["root/containers"] == [cid]  # the refused create left nothing


def test_pod_namespace_options(bd):
    bd.start()
    c = bd.client()
    shared = c.run_pod("shared", linux={"security_context": {"namespace_options": {"pid": "POD"}}})
    ids = [c.create(shared, f"c{i}", ["/bin/sh", "-c", f"echo c{i}; sleep 1000"]) for i in (0, 1)]
    pids = []
    for cid in ids:
        c.ok("container.start", container_id=cid)
        pids.append(c.wait_state(cid, "running")["pid"])
    ns = {os.readlink(f"/proc/{p}/ns/{k}") for p in pids for k in ("pid",)}
    assert len(ns) == 1, "containers of a pid POD pod share one PID namespace"
    for kind in ("net", "ipc", "uts"):
        assert len({os.readlink(f"/proc/{p}/ns/{kind}") for p in pids}) == 1, kind
    r = c.ok("container.exec", container_id=ids[0], cmd=["/bin/sh", "-c", "ls /proc"])
    visible = {int(x) for x in r["stdout"].split() if x.isdigit()}
    assert len(visible) >= 3, f"the pod's init and both containers' processes: {visible}"
    host = c.run_pod("host", linux={"security_context": {"namespace_options": {"network": "NODE"}}})
    assert c.ok("pod.status", pod_id=host)["status"]["ip4"] is None
    cid = c.create(host, "h", ["/bin/sh", "-c", "sleep 1000"])
    c.ok("container.start", container_id=cid)
    pid = c.wait_state(cid, "running")["pid"]
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(bd.node.path).st_ino
    assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    assert [x["id"] for x in c.ok("container.list", pod_id=host)["containers"]] == [cid]
    assert len(c.ok("container.list")["containers"]) == 3
    r = c.fail("Unimplemented", "pod.run", config={
        "metadata": {"name": "t", "namespace": "d", "uid": "t"},
        "linux": {"security_context": {"namespace_options": {"ipc": "NODE"}}}})
    assert "namespace_options.ipc" in r["error"], r


def test_reopen_log_exec_output_cap_and_limits(bd):
    bd.start()
    c = bd.client()
    pod = c.run_pod("p")
    cid = c.create(pod, "logger", ["/bin/sh", "-c", "i=0; while :; do echo $i; i=$((i+1)); "
                                   "sleep 0.05; done"])
    c.ok("container.start", container_id=cid)
    log = Path(c.wait_state(cid, "running")["log_path"])
    wait_until(lambda: lines_in(log) > 2, 10, "the first lines")
    moved = log.with_name("rotated.log")
    log.rename(moved)
    c.ok("container.reopen_log", container_id=cid)
    wait_until(lambda: lines_in(log) > 2, 10, "lines in the reopened log")
    first_new = int(log_lines(log_records(log), "stdout")[0])
    assert first_new == numbers(moved), "a line lost or repeated across the reopen"
    # exec output is capped at 16 MiB per stream
    r = c.ok("container.exec", container_id=cid, timeout=60,
             cmd=["/bin/sh", "-c", "head -c 17000000 /dev/zero | tr '\\0' a; echo done >&2"])
    assert r["truncated"] is True and r["stderr"] == "done\n", {k: v for k, v in r.items()
                                                                 if k != "stdout"}
    assert len(r["stdout"]) == 16 << 20 and set(r["stdout"]) == {"a"}
    c.ok("container.stop", container_id=cid, timeout=0)
    c.fail("FailedPrecondition", "container.reopen_log", container_id=cid)
    # a memory limit this host's cgroup2 cannot apply: refused by name, nothing left behind
    entries = bd.entries()
    r = c.call("container.create", pod_id=pod, config={
        "metadata": {"name": "limited"}, "image": {"image": IMAGE}, "command": ["/bin/sh"],
        "linux": {"resources": {"memory_limit_in_bytes": 64 << 20}}})
    if r["ok"]:  # a host with a real memory controller
        c.ok("container.remove", container_id=r["container_id"])
    else:
        assert "memory" in r["error"], r
    assert bd.entries() == entries
    assert mounts_under(bd.root / "containers") == [str(bd.root / "containers" / cid / "rootfs")]


# --- restarts ---------------------------------------------------------------------------------


def recovered_line(log):
    m = re.search(r"recovered (\d+) pods and (\d+) containers \((\d+) created or running\) "
                  r"in ([\d.]+) ms", log)
    assert m, f"no recovery line in the log:\n{log[-2000:]}"
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), float(m.group(4))


def start_all(bd, jobs, threads=5):
    """Create and start (pod, name, command, config) jobs from several clients at once;
    return the ids in the jobs' order."""
    ids = [None] * len(jobs)
    errors = []

    def worker(k):
        c = bd.client()
        try:
            for i in range(k, len(jobs), threads):
                pod, name, cmd, cfg = jobs[i]
                ids[i] = c.create(pod, name, cmd, **cfg)
                c.ok("container.start", container_id=ids[i])
        except Exception as e:  # noqa: BLE001 (re-raised below)
            errors.append(e)
        finally:
            c.close()

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    return ids


def test_kill9_recovery_of_50_containers(bd, capsys):
    ctl = bd.dir / "ctl"
    ctl.mkdir()
    bd.start()
    c = bd.client()
    pods = [c.run_pod(f"pod{i}") for i in range(10)]
    jobs = [(pods[i], f"c{i}-{j}", ["/bin/sh", "-c", LOOP], loop_config(ctl, f"c{i}-{j}"))
            for i in range(10) for j in range(5)]
    t0 = time.monotonic()
    ids = start_all(bd, jobs)
    t_start = time.monotonic() - t0
    status = {cid: c.wait_state(cid, "running") for cid in ids}
    pids = {cid: s["pid"] for cid, s in status.items()}
    logs = {cid: s["log_path"] for cid, s in status.items()}
    for cid in ids:
        wait_until(lambda: lines_in(logs[cid]) >= 3, 20, f"{cid}'s first lines")
    # one container per pod will exit while berthd is down, each with its own code
    exiting = {ids[i * 5]: (jobs[i * 5][1], 10 + i) for i in range(10)}
    c.close()
    bd.kill9()

    for cid, (name, code) in exiting.items():
        (ctl / name).write_text(f"{code}\n")
    for cid in exiting:
        wait_until(lambda: not pid_alive(pids[cid]), 20, f"{cid} to exit while berthd is down")
    for cid in set(ids) - set(exiting):
        assert pid_alive(pids[cid]), f"{cid} died while berthd was down"

    t0 = time.monotonic()
    bd.start()
    t_ready = time.monotonic() - t0
    n_pods, n_ctrs, n_live, ms = recovered_line(bd.log())
    assert (n_pods, n_ctrs, n_live) == (10, 50, 40)
    c = bd.client()
    for cid in ids:
        s = c.status(cid)
        if cid in exiting:
            assert (s["state"], s["exit_code"], s["reason"]) == ("exited", exiting[cid][1],
                                                                 "Error"), s
            assert s["finished_ns"] > s["started_ns"] > 0
        else:
            assert s["state"] == "running" and s["pid"] == pids[cid] and pid_alive(pids[cid]), s
    # logs are whole, and the running ones keep writing
    before = {cid: numbers(logs[cid]) for cid in ids}
    time.sleep(0.6)
    for cid in ids:
        after = numbers(logs[cid])
        if cid in exiting:
            assert after == before[cid]
        else:
            assert after > before[cid], f"{cid} stopped writing"
    # the re-armed watches see exits after the restart
    events = bd.events()
    last = ids[-1]
    (ctl / jobs[-1][1]).write_text("42\n")
    ev = events.wait(lambda e: e["event"] == "exited" and e["container_id"] == last)
    assert ev["exit_code"] == 42
    assert c.status(last)["exit_code"] == 42
    events.close()
    with capsys.disabled():
        print(f"\n[berthd] 50 containers created and started in {t_start:.2f} s; recovery "
              f"{ms:.1f} ms (berthd ready {t_ready:.2f} s after exec)")


def test_shim_killed_while_down_is_reported(bd):
    bd.start()
    c = bd.client()
    pod = c.run_pod("p")
    cid = c.create(pod, "victim", ["/bin/sh", "-c", "while :; do sleep 0.1; done"])
    other = c.create(pod, "bystander", ["/bin/sh", "-c", "while :; do sleep 0.1; done"])
    for x in (cid, other):
        c.ok("container.start", container_id=x)
    pid = c.wait_state(cid, "running")["pid"]
    other_pid = c.wait_state(other, "running")["pid"]
    shim = bd.shim_pid(cid)
    c.close()
    bd.kill9()
    os.kill(shim, signal.SIGKILL)  # the shim bd's berthd started for this test
    wait_until(lambda: not pid_alive(shim), 10, "the shim to die")

    bd.start()
    log = bd.log()
    assert re.search(rf"container {cid} .*shim died.*ShimDied", log), log[-3000:]
    c = bd.client()
    s = c.status(cid)
    assert (s["state"], s["reason"], s["exit_code"]) == ("exited", "ShimDied", 255), s
    assert "shim died" in s["message"]
    wait_until(lambda: not pid_alive(pid), 10, "the dead shim's container to be killed")
    assert not (bd.state / "shims" / cid).exists()
    assert not any(cid in g for g in bd.cgroups()), bd.cgroups()
    s = c.status(other)
    assert s["state"] == "running" and s["pid"] == other_pid and pid_alive(other_pid)
    c.ok("container.remove", container_id=cid)
    assert not (bd.root / "containers" / cid).exists()


@pytest.mark.parametrize("point", ["container-dir", "shim-spawned"])
def test_create_cut_short_is_undone(bd, point):
    ctl = bd.dir / "ctl"
    ctl.mkdir()
    bd.start()
    pod = bd.client().run_pod("p")
    bd.stop()
    bd.start(env={"BERTHD_TEST_CRASH": point})
    c = bd.client()
    with pytest.raises(EOFError):
        c.create(pod, "half", ["/bin/sh", "-c", "sleep 1000"])
    assert bd.proc.wait(10) == -signal.SIGKILL
    bd.proc = None
    half = os.listdir(bd.root / "containers")
    assert len(half) == 1, half
    cid = half[0]
    if point == "shim-spawned":
        assert mounts_under(bd.root / "containers" / cid)
        assert os.listdir(bd.state / "shims") == [cid]
        assert any(cid in g for g in bd.cgroups()), bd.cgroups()

    bd.start()
    assert re.search(rf"container {cid}: found in .* without a database row", bd.log()), \
        bd.log()[-3000:]
    assert bd.entries().get("root/containers") is None
    assert bd.entries().get("state/shims") is None
    assert bd.entries().get("state/runtime") is None
    assert mounts_under(bd.root / "containers") == []
    assert bd.cgroups() == [pod], bd.cgroups()
    c = bd.client()
    assert c.ok("container.list")["containers"] == []
    # the name is free again
    cid = c.create(pod, "half", ["/bin/sh", "-c", "exit 0"])
    c.ok("container.start", container_id=cid)
    c.wait_state(cid, "exited")


def test_leftovers_without_rows_are_removed(bd):
    bd.start(env={"BERTHD_TEST_CRASH": "pod-sandbox"})
    c = bd.client()
    with pytest.raises(EOFError):
        c.run_pod("cut")
    assert bd.proc.wait(10) == -signal.SIGKILL
    bd.proc = None
    pods = os.listdir(bd.state / "pods")
    assert len(pods) == 1, pods
    veths = [l for l in bd.node.links("type", "veth")]
    assert len(veths) == 1, veths
    # directories a daemon could have left (made by hand)
    ghost_ctr = "0123456789abcdef0123456789abcdef"
    ghost_shim = "fedcba9876543210fedcba9876543210"
    (bd.root / "containers" / ghost_ctr / "rootfs").mkdir(parents=True)
    (bd.root / "containers" / ghost_ctr / "config.json").write_text("{}")
    (bd.state / "shims" / ghost_shim).mkdir(mode=0o700)

    bd.start()
    log = bd.log()
    for ghost in (ghost_ctr, ghost_shim):
        assert re.search(rf"container {ghost}: found in .* without a database row", log), log
    assert re.search(rf"pod {pods[0]}: its sandbox exists without a database row", log), log
    assert bd.entries() == {}, bd.entries()
    assert bd.node.links("type", "veth") == []
    assert bd.cgroups() == []
    assert bd.client().ok("pod.list")["pods"] == []


def test_sigterm_leaves_containers_running(bd):
    ctl = bd.dir / "ctl"
    ctl.mkdir()
    bd.start()
    c = bd.client()
    pod = c.run_pod("p")
    cid = c.create(pod, "loop", ["/bin/sh", "-c", LOOP], **loop_config(ctl, "loop"))
    stays = c.create(pod, "stays", ["/bin/sh", "-c", LOOP], **loop_config(ctl, "stays"))
    for x in (cid, stays):
        c.ok("container.start", container_id=x)
    s = c.wait_state(cid, "running")
    stays_pid = c.wait_state(stays, "running")["pid"]
    shim = bd.shim_pid(cid)
    events = bd.events()
    assert bd.stop(signal.SIGTERM) == 0
    assert "SIGTERM: shutting down" in bd.log(), bd.log()
    assert not bd.socket.exists()
    assert c.closed()
    events.thread.join(5)
    assert not events.thread.is_alive() and events.events[-1] is None
    assert pid_alive(s["pid"]) and pid_alive(shim)
    before = lines_in(s["log_path"])
    wait_until(lambda: lines_in(s["log_path"]) > before + 3, 10, "the log to grow while down")
    (ctl / "loop").write_text("3\n")  # exits while berthd is down
    wait_until(lambda: not pid_alive(s["pid"]), 10, "the container to exit")

    bd.start()
    assert recovered_line(bd.log())[:3] == (1, 2, 1)
    c = bd.client()
    s2 = c.status(cid)
    assert (s2["state"], s2["exit_code"]) == ("exited", 3), s2
    numbers(s["log_path"])
    s3 = c.status(stays)
    assert s3["state"] == "running" and s3["pid"] == stays_pid and pid_alive(stays_pid), s3
    numbers(s3["log_path"])
    # SIGINT too
    assert bd.stop(signal.SIGINT) == 0
    bd.start()


def test_sigterm_finishes_requests_in_flight(bd):
    bd.start()
    c = bd.client()
    pod = c.run_pod("p")
    cid = c.create(pod, "stubborn", ["/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"])
    c.ok("container.start", container_id=cid)
    pid = c.wait_state(cid, "running")["pid"]
    c.send_raw(json.dumps({"op": "container.stop", "container_id": cid, "timeout": 2}).encode()
               + b"\n")
    time.sleep(0.3)  # the stop is running on a worker
    t0 = time.monotonic()
    assert bd.stop(signal.SIGTERM) == 0
    took = time.monotonic() - t0
    assert 1.0 < took < 9, f"berthd exited {took:.1f} s after SIGTERM"
    assert not pid_alive(pid), "the stop in flight was finished (SIGKILL after its timeout)"
    with pytest.raises(EOFError):  # its answer went with the connection
        c.read_line()
    bd.start()
    s = Client(bd.socket).status(cid)
    assert (s["state"], s["exit_code"]) == ("exited", 137), s


def test_second_daemon_and_bad_config_are_refused(bd):
    bd.settings["socket_group"] = "4321"
    bd.settings["socket"] = bd.dir / "run" / "api.sock"
    bd.socket = bd.dir / "run" / "api.sock"
    bd.start()
    st = os.stat(bd.socket)
    assert (oct(st.st_mode & 0o7777), st.st_uid, st.st_gid) == (oct(0o660), 0, 4321)
    assert oct(os.stat(bd.socket.parent).st_mode & 0o7777) == oct(0o711)
    result = run(bd.argv(), timeout=30, check=False)
    assert result.returncode == 1 and "another berthd runs with state" in result.stderr, \
        result.stderr
    result = run(bd.argv("--log-level", "loud"), timeout=30, check=False)
    assert result.returncode == 1 and "--log-level" in result.stderr, result.stderr
    result = run([BERTHD, "--bogus"], timeout=30, check=False)
    assert result.returncode == 2
    assert bd.client().ok("version")["version"]


# --- the 1000 cycles --------------------------------------------------------------------------


def test_1000_cycles_leave_nothing_behind(bd, capsys):
    cycles = int(os.environ.get("BERTHD_CYCLES", "1000"))
    bd.start()
    c = bd.client()
    events = bd.events()
    pod = c.run_pod("cycles")

    def cycle(i):
        cid = c.create(pod, f"c{i}", ["/bin/sh", "-c", "exit 0"])
        c.ok("container.start", container_id=cid)
        events.wait(lambda e: e["event"] == "exited" and e["container_id"] == cid)
        c.ok("container.remove", container_id=cid)

    def counts():
        return {"fds": bd.fds(), "processes": len(bd.processes()),
                "mounts": len(mounts_under(bd.dir)), "cgroups": bd.cgroups(),
                "rows": bd.db_counts(), "entries": bd.entries()}

    for i in range(3):  # the worker threads and the store's files are opened lazily
        cycle(f"warm{i}")
    before = counts()
    t0 = time.monotonic()
    for i in range(cycles):
        cycle(i)
    elapsed = time.monotonic() - t0
    after = counts()
    assert after == before, f"before: {before}\nafter:  {after}"
    assert before["rows"] == {"pods": 1, "containers": 0}
    events.close()
    with capsys.disabled():
        print(f"\n[berthd] {cycles} create/start/wait/remove cycles in {elapsed:.1f} s "
              f"({elapsed / cycles * 1000:.0f} ms each)")


# --- the socket -------------------------------------------------------------------------------


def test_bad_requests_get_the_right_codes(bd):
    bd.start()
    c = bd.client()
    c.fail("Unimplemented", "no.such.op")
    for raw in (b"not json\n", b"[1, 2]\n", b'{"op": 3}\n', b'{"nop": 1}\n'):
        c.send_raw(raw)
        r = c.read_line()
        assert r["ok"] is False and r["code"] == "InvalidArgument", (raw, r)
    assert "container_id" in c.fail("InvalidArgument", "container.start")["error"]
    assert "bogus" in c.fail("InvalidArgument", "version", bogus=1)["error"]
    r = c.fail("InvalidArgument", "pod.run", config={"metadata": {"name": "x"}})
    assert "config.metadata.namespace" in r["error"], r
    r = c.fail("InvalidArgument", "pod.run", config={
        "metadata": {"name": "x", "namespace": "d", "uid": "u"}, "bogus": 1})
    assert "config.bogus" in r["error"], r
    r = c.fail("InvalidArgument", "pod.run", config={
        "metadata": {"name": "../x", "namespace": "d", "uid": "u"}})
    assert "config.metadata.name" in r["error"], r
    unknown = "00000000000000000000000000000000"
    for op in ("container.status", "container.start", "container.stop", "container.kill",
               "container.reopen_log"):
        assert unknown in c.fail("NotFound", op, container_id=unknown)["error"]
    c.fail("NotFound", "container.exec", container_id=unknown, cmd=["/bin/true"])
    for op in ("pod.status", "pod.stop"):
        c.fail("NotFound", op, pod_id=unknown)
    c.ok("container.remove", container_id=unknown)
    c.ok("pod.remove", pod_id=unknown)
    c.fail("NotFound", "container.create", pod_id=unknown,
           config={"metadata": {"name": "a"}, "image": {"image": IMAGE}})

    pod = c.run_pod("dup")
    r = c.fail("AlreadyExists", "pod.run", config={
        "metadata": {"name": "dup", "namespace": "default", "uid": "uid-dup"}})
    assert pod in r["error"]
    cid = c.create(pod, "a", ["/bin/sh", "-c", "sleep 1000"])
    assert cid in c.fail("AlreadyExists", "container.create", pod_id=pod, config={
        "metadata": {"name": "a"}, "image": {"image": IMAGE}, "command": ["/bin/true"]})["error"]
    r = c.fail("NotFound", "container.create", pod_id=pod, config={
        "metadata": {"name": "b"}, "image": {"image": "not/pulled:v9"}, "command": ["/bin/true"]})
    assert "not/pulled:v9" in r["error"] and "pull" in r["error"], r
    r = c.fail("InvalidArgument", "container.create", pod_id=pod, config={
        "metadata": {"name": "b"}, "image": {"image": IMAGE}, "command": ["/bin/x"],
        "tty": "yes"})
    assert "config.tty" in r["error"], r
    c.fail("FailedPrecondition", "container.exec", container_id=cid, cmd=["/bin/true"])
    c.ok("container.start", container_id=cid)
    c.fail("FailedPrecondition", "container.start", container_id=cid)
    c.fail("InvalidArgument", "container.kill", container_id=cid, signal="SIGNOPE")
    c.ok("container.kill", container_id=cid, signal="TERM")  # pid 1 without a handler: ignored
    c.ok("container.kill", container_id=cid, signal=9)
    s = c.wait_state(cid, "exited")
    assert (s["exit_code"], s["signal"]) == (137, 9), s
    assert bd.entries().get("root/containers") == [cid]  # the refusals left nothing

    # a line over 1 MiB: refused, then the connection ends
    big = bd.client()
    big.send_raw(b'{"op":"version","x":"' + b"a" * (1 << 20) + b'"}\n')
    r = big.read_line()
    assert r["code"] == "InvalidArgument" and "longer than" in r["error"], r
    assert big.closed()
    # an HTTP/2 client is served gRPC (cri/grpc.c): frames that are not HTTP/2 after the preface
    # get the server's SETTINGS, then a GOAWAY, and the connection ends
    h2 = bd.client()
    h2.send_raw(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 64)
    assert h2.closed()
    types, off = [], 0
    while off + 9 <= len(h2.buf):
        types.append(h2.buf[off + 3])
        off += 9 + int.from_bytes(h2.buf[off:off + 3], "big")
    assert types[0] == 4 and 7 in types, types  # SETTINGS first, a GOAWAY
    # pipelined requests are answered in order
    c.send_raw(b'{"op":"version"}\n{"op":"pod.list"}\n\n{"op":"nope"}\n')
    assert "version" in c.read_line() and "pods" in c.read_line()
    assert c.read_line()["code"] == "Unimplemented"
    assert c.ok("version")["runtime_name"] == "berth"


def test_slow_clients_do_not_block_others(bd):
    bd.start()
    c = bd.client()
    pod = c.run_pod("p")
    # ignores SIGTERM: a stop waits its whole timeout
    cid = c.create(pod, "stubborn", ["/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"])
    c.ok("container.start", container_id=cid)
    c.wait_state(cid, "running")
    stalled = bd.client()
    stalled.send_raw(b'{"op":"vers')  # never finished
    deaf = bd.client()
    deaf.send_raw(b'{"op":"pod.list"}\n' * 2000)  # never reads its answers
    stopper = bd.client()
    done = {}

    def stop():
        t = time.monotonic()
        stopper.ok("container.stop", container_id=cid, timeout=6)
        done["stop"] = time.monotonic() - t

    t = threading.Thread(target=stop)
    t.start()
    time.sleep(0.3)
    errors = []

    def busy(k):
        try:
            cl = bd.client()
            for _ in range(20):
                cl.ok("version")
                cl.ok("container.status", container_id=cid)
            cl.close()
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    t0 = time.monotonic()
    ts = [threading.Thread(target=busy, args=(k,)) for k in range(20)]
    for x in ts:
        x.start()
    for x in ts:
        x.join()
    busy_time = time.monotonic() - t0
    stop_done = "stop" in done
    assert not errors, errors
    assert not stop_done and busy_time < 5, f"800 requests took {busy_time:.1f} s"
    t.join()
    assert 5.5 < done["stop"] < 20, done
    s = c.status(cid)
    assert (s["state"], s["exit_code"]) == ("exited", 137), s
    for cl in (stalled, deaf, stopper):
        cl.close()
    assert c.ok("version")


def children_named(ppid, comm):
    found = []
    for e in os.listdir("/proc"):
        try:
            with open(f"/proc/{e}/stat") as f:
                stat = f.read()
        except (OSError, ValueError):
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        if name == comm and int(stat[stat.rindex(")") + 2:].split()[1]) == ppid:
            found.append(int(e))
    return found


def test_image_pull_list_remove(bd, tmp_path):
    layout = tmp_path / "layout"
    result = run([PYTHON, FIXTURES / "make-image.py", "build", "--ref", "v1", layout, "small"],
                 timeout=120)
    assert result.returncode == 0, result.stderr
    # the registry listens on the node's loopback, where berthd pulls from
    reg = subprocess.Popen(bd.node.enter() + [PYTHON, FIXTURES / "fake-registry.py", layout],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
    try:
        port = int(reg.stdout.readline())
        ref = f"127.0.0.1:{port}/pulled/small:v1"
        bd.start()
        c = bd.client()
        im = c.ok("image.pull", image=ref)["image"]
        assert im["name"] == ref and im["id"].startswith("sha256:") and im["size"] > 0, im
        names = {i["name"]: i for i in c.ok("image.list")["images"]}
        assert (names[ref]["id"], names[ref]["digest"]) == (im["id"], im["digest"]), names
        assert "docker.io/test/small:v1" in names, names
        pod = c.run_pod("p")
        cid = c.create(pod, "x", ["/bin/sh", "-c", "cat /usr/share/berth/hello.txt"], image=ref)
        c.ok("container.start", container_id=cid)
        s = c.wait_state(cid, "exited")
        assert log_lines(log_records(s["log_path"]), "stdout") == [b"hello from a berth test image"]
        assert s["image_id"] == im["id"]
        c.ok("image.remove", image=ref)
        c.ok("image.remove", image=ref)  # idempotent
        assert ref not in {i["name"] for i in c.ok("image.list")["images"]}
        r = c.fail("NotFound", "container.create", pod_id=pod, config={
            "metadata": {"name": "y"}, "image": {"image": ref}, "command": ["/bin/true"]})
        assert ref in r["error"]
        r = c.call("image.pull", image="127.0.0.1:1/nothing/here:v1")
        assert r["ok"] is False and "127.0.0.1:1" in r["error"], r
        # a pull runs in `berth image pull`, which the daemon waits for: none is left
        assert not children_named(bd.proc.pid, "berth")
    finally:
        reg.kill()  # our own child (nsenter exec'd python)
        reg.wait()
        reg.stdout.close()


def test_berthd_links_no_pull_libraries():
    """The registry client (libcurl, TLS) and the layer unpacker (libarchive, OpenSSL's hashes)
    are `berth image pull`'s, never resident in the daemon (issue 8's memory goal)."""
    out = subprocess.run(["ldd", BERTHD], capture_output=True, text=True, check=True).stdout
    linked = [lib for lib in ("libcurl", "libarchive", "libcrypto", "libssl", "libgnutls")
              if lib in out]
    assert not linked, out
