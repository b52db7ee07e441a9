"""The container lifecycle and the runc command line: run, create/start/state/kill/delete,
list, ps, exec, spec, features and the global options."""

import json
import os
import time
from datetime import datetime, timezone

import pytest
from conftest import (
    RFC3339,
    describe,
    expect_error,
    marked_pids,
    ns_id,
    parse_rfc3339,
    pid_alive,
    pids_in_pid_namespace_of,
    proc_cmdline,
    wait_for,
)

SLEEP = ["/bin/sleep", "1000"]


# --- run ------------------------------------------------------------------------------------


def test_run_prints_output(rt, bundle, leftovers):
    result = rt.run(bundle)
    assert result.stdout == "hello from berth\n"
    # run deletes the container once its process exited
    leftovers.assert_clean()


@pytest.mark.parametrize("code", [1, 7, 42])
def test_run_exits_with_process_exit_code(rt, bundle, code):
    result = rt.sh(bundle, f"echo before-exit; exit {code}", check=False)
    assert result.returncode == code, describe(result)
    assert result.stdout == "before-exit\n"


def test_run_passes_stderr(rt, bundle):
    result = rt.sh(bundle, "echo to-stderr >&2; echo to-stdout")
    assert result.stdout == "to-stdout\n"
    assert "to-stderr\n" in result.stderr


def test_run_detach(rt, bundle, cid):
    bundle.set_args(SLEEP)
    started = time.monotonic()
    rt.ok("run", "-d", "--bundle", bundle.path, cid)
    assert time.monotonic() - started < 10, "run -d should not wait for the process"
    state = rt.state(cid)
    assert state["status"] == "running"
    wait_for(lambda: proc_cmdline(state["pid"]) == SLEEP, 5, what="sleep to be exec'd")
    rt.destroy(cid)


def test_run_pid_file(rt, bundle, cid, tmp_path):
    bundle.set_args(SLEEP)
    pid_file = tmp_path / "run.pid"
    rt.ok("run", "--detach", "--pid-file", pid_file, "--bundle", bundle.path, cid)
    assert int(pid_file.read_text().strip()) == rt.state(cid)["pid"]
    rt.destroy(cid)


# --- create / start / state / kill / delete ------------------------------------------------


@pytest.mark.parametrize("sig", ["KILL", "9", "SIGKILL"])
def test_create_start_kill_delete(rt, bundle, cid, sig):
    bundle.set_args(SLEEP)
    state = rt.create(bundle, cid)
    assert state["status"] == "created"
    pid = state["pid"]
    assert isinstance(pid, int) and pid > 0
    assert pid_alive(pid)
    # created: the process waits at the barrier and has not exec'd the container's args yet
    time.sleep(0.1)
    assert proc_cmdline(pid) != SLEEP

    rt.start(cid)
    assert rt.status(cid) == "running"
    assert rt.state(cid)["pid"] == pid
    wait_for(lambda: proc_cmdline(pid) == SLEEP, 5, what="the container to exec sleep")

    rt.ok("kill", cid, sig)
    rt.wait_status(cid, "stopped")
    rt.ok("delete", cid)
    wait_for(lambda: not pid_alive(pid), 5, what="the init process to be gone")
    gone = rt("state", cid)
    assert gone.returncode != 0, describe(gone)
    assert not (rt.root / cid).exists()


def test_created_container_runs_nothing_until_start(rt, bundle, cid, tmp_path):
    out_path = tmp_path / "out.txt"
    bundle.set_args(["/bin/sh", "-c", "echo started"])
    with open(out_path, "w") as out:
        rt.create(bundle, cid, stdout=out)
    time.sleep(0.3)
    assert out_path.read_text() == "", "the process ran before start"
    assert rt.status(cid) == "created"
    rt.start(cid)
    rt.wait_status(cid, "stopped")
    assert out_path.read_text() == "started\n"
    rt.ok("delete", cid)


@pytest.mark.parametrize("preserve", [True, False])
def test_create_preserve_fds(rt, bundle, cid, tmp_path, preserve):
    passed = tmp_path / "passed.txt"
    passed.write_text("through fd 3\n")
    out_path = tmp_path / "out.txt"
    bundle.set_args(["/bin/sh", "-c", "cat <&3 2>/dev/null || echo no-fd-3"])
    extra = ["--preserve-fds", "1"] if preserve else []
    fd = os.open(passed, os.O_RDONLY)
    try:
        with open(out_path, "w") as out:
            rt.ok("create", "--bundle", bundle.path, *extra, cid, stdout=out, fd3=fd)
    finally:
        os.close(fd)
    rt.start(cid)
    rt.wait_status(cid, "stopped")
    rt.ok("delete", cid)
    assert out_path.read_text() == ("through fd 3\n" if preserve else "no-fd-3\n")


def test_start_twice_fails(rt, bundle):
    cid, _ = rt.create_running(bundle)
    again = rt("start", cid)
    assert again.returncode != 0, describe(again)
    assert rt.status(cid) == "running"
    rt.destroy(cid)


def test_exited_process_is_stopped(rt, bundle, cid):
    bundle.set_args(["/bin/true"])
    rt.ok("run", "-d", "--bundle", bundle.path, cid)
    rt.wait_status(cid, "stopped")
    rt.ok("delete", cid)
    assert rt("state", cid).returncode != 0


def test_delete_running_needs_force(rt, bundle):
    cid, pid = rt.create_running(bundle)
    refused = rt("delete", cid)
    assert refused.returncode != 0, describe(refused)
    assert rt.status(cid) == "running"
    assert pid_alive(pid)

    rt.ok("delete", "--force", cid)
    wait_for(lambda: not pid_alive(pid), 5, what="the forced delete to kill the process")
    assert rt("state", cid).returncode != 0


def test_delete_force_created(rt, bundle, cid):
    bundle.set_args(SLEEP)
    pid = rt.create(bundle, cid)["pid"]
    rt.ok("delete", "--force", cid)
    wait_for(lambda: not pid_alive(pid), 5, what="the created process to be gone")
    assert rt("state", cid).returncode != 0


def test_create_pid_file(rt, bundle, cid, tmp_path):
    bundle.set_args(SLEEP)
    pid_file = tmp_path / "create.pid"
    rt.ok("create", "--bundle", bundle.path, "--pid-file", pid_file, cid)
    pid = int(pid_file.read_text().strip())
    assert pid == rt.state(cid)["pid"]
    assert pid_alive(pid)
    rt.ok("delete", "--force", cid)


def test_state_fields(rt, bundle, cid, tmp_path):
    bundle.config["annotations"] = {"org.berth.test": "yes", "org.berth.other": "2"}
    bundle.set_args(SLEEP)
    before = datetime.now(timezone.utc)
    # a relative --bundle: state must report it absolute
    rt.ok("create", "--bundle", bundle.path.name, cid, cwd=tmp_path)
    state = rt.state(cid)

    assert isinstance(state["ociVersion"], str) and state["ociVersion"]
    assert state["id"] == cid
    assert state["status"] == "created"
    assert isinstance(state["pid"], int) and state["pid"] > 0
    assert state["bundle"] == str(bundle.path)
    assert os.path.isabs(state["bundle"])
    if rt.like_runc:  # crun 1.8 reports root.path as written
        assert state["rootfs"] == str(bundle.rootfs)
    else:
        assert "rootfs" in state
    created = parse_rfc3339(state["created"])
    assert abs((created - before).total_seconds()) < 60
    assert isinstance(state.get("owner", ""), str)
    if rt.like_runc or "annotations" in state:
        assert state["annotations"] == {"org.berth.test": "yes", "org.berth.other": "2"}
    rt.ok("delete", "--force", cid)


def test_state_of_stopped_container(rt, bundle):
    cid, pid = rt.create_running(bundle)
    rt.ok("kill", cid, "KILL")
    rt.wait_status(cid, "stopped")
    state = rt.state(cid)
    assert state["id"] == cid
    assert state["bundle"] == str(bundle.path)
    rt.ok("delete", cid)


# --- list and ps ----------------------------------------------------------------------------


def _two_containers(rt, bundle):
    """One created and one running container."""
    running, _ = rt.create_running(bundle)
    created = rt.new_id()
    rt.create(bundle, created)
    return created, running


def test_list_table(rt, bundle):
    created, running = _two_containers(rt, bundle)
    result = rt.ok("list")
    lines = result.stdout.strip().splitlines()
    header = lines[0].split()
    if rt.like_runc:
        assert header == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"], lines[0]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {created, running}, result.stdout
    assert rows[created][1] == str(rt.state(created)["pid"])
    assert rows[created][2] == "created"
    assert rows[running][1] == str(rt.state(running)["pid"])
    assert rows[running][2] == "running"
    assert rows[running][3] == str(bundle.path)
    if rt.like_runc:
        assert rows[running][5] == "root"
    rt.ok("delete", "--force", created)
    rt.destroy(running)


def test_list_quiet(rt, bundle):
    created, running = _two_containers(rt, bundle)
    result = rt.ok("list", "-q")
    assert sorted(result.stdout.split()) == sorted([created, running])
    rt.ok("delete", "--force", created)
    rt.destroy(running)


def test_list_json(rt, bundle):
    created, running = _two_containers(rt, bundle)
    result = rt.ok("list", "--format", "json")
    entries = json.loads(result.stdout)
    assert isinstance(entries, list)
    by_id = {entry["id"]: entry for entry in entries}
    assert set(by_id) == {created, running}
    want = {"id", "pid", "status", "bundle", "created", "owner"}
    if rt.like_runc:
        want.add("rootfs")
    for cid, status in ((created, "created"), (running, "running")):
        entry = by_id[cid]
        assert want <= set(entry), entry
        assert entry["status"] == status
        assert entry["pid"] == rt.state(cid)["pid"]
        assert entry["bundle"] == str(bundle.path)
        assert RFC3339.match(entry["created"])
        if rt.like_runc:
            assert entry["rootfs"] == str(bundle.rootfs)
    rt.ok("delete", "--force", created)
    rt.destroy(running)


def test_list_empty(rt):
    result = rt.ok("list", "--format", "json")
    assert json.loads(result.stdout) in ([], None)
    table = rt.ok("list")
    assert len(table.stdout.strip().splitlines()) <= 1


def test_ps_json(rt, bundle, tmp_path):
    cid, pid = rt.create_running(bundle)
    pid_file = tmp_path / "exec.pid"
    rt.ok("exec", "-d", "--pid-file", pid_file, cid, "/bin/sleep", "999")
    exec_pid = int(pid_file.read_text())
    result = rt.ok("ps", "--format", "json", cid)
    pids = json.loads(result.stdout)
    assert isinstance(pids, list)
    assert pid in pids and exec_pid in pids, result.stdout
    assert os.getpid() not in pids
    rt.destroy(cid)
    assert not pid_alive(exec_pid)


# --- kill -----------------------------------------------------------------------------------


def test_kill_all(rt, bundle):
    # init ignores TERM (set after the children started, so they keep the default action)
    script = "sleep 1001 & sleep 1002 & trap '' TERM; exec sleep 1000"
    cid, pid = rt.create_running(bundle, ["/bin/sh", "-c", script])
    wait_for(lambda: len(pids_in_pid_namespace_of(pid)) == 3, 5, what="init and two children")
    children = [p for p in pids_in_pid_namespace_of(pid) if p != pid]
    assert sorted(proc_cmdline(p)[1] for p in children) == ["1001", "1002"]

    # plain kill reaches init only, which ignores TERM
    rt.ok("kill", cid, "TERM")
    time.sleep(0.2)
    assert all(pid_alive(p) for p in children)

    rt.ok("kill", "--all", cid, "TERM")
    wait_for(lambda: not any(pid_alive(p) for p in children), 5, what="--all to reach children")
    assert pid_alive(pid), "init ignores TERM and must survive"
    assert rt.status(cid) == "running"

    rt.ok("kill", "--all", cid, "KILL")
    rt.wait_status(cid, "stopped")
    rt.ok("delete", cid)


def test_kill_default_signal_is_term(rt, bundle):
    # init handles TERM, so TERM from outside the pid namespace reaches it
    script = (
        "trap 'echo got-term > /tmp/signal; exit 3' TERM; touch /tmp/ready; "
        "while :; do sleep 0.05; done"
    )
    cid, pid = rt.create_running(bundle, ["/bin/sh", "-c", script])
    wait_for(lambda: (bundle.rootfs / "tmp" / "ready").exists(), 5, what="the trap")
    rt.ok("kill", cid)
    rt.wait_status(cid, "stopped")
    rt.ok("delete", cid)
    assert (bundle.rootfs / "tmp" / "signal").read_text() == "got-term\n"


# --- exec -----------------------------------------------------------------------------------


@pytest.fixture
def running(rt, bundle):
    """A running sleep container; destroyed (and checked gone) at teardown."""
    cid, _ = rt.create_running(bundle)
    yield cid
    rt.destroy(cid)


def test_exec_echo(rt, running):
    result = rt.ok("exec", running, "/bin/echo", "hi")
    assert result.stdout == "hi\n"


def test_exec_exit_code(rt, running):
    result = rt("exec", running, "/bin/sh", "-c", "exit 5")
    assert result.returncode == 5, describe(result)


def test_exec_joins_container_namespaces(rt, running):
    init = rt.state(running)["pid"]
    kinds = ["pid", "mnt", "net", "ipc", "uts"]
    script = "hostname; echo $$; " + "; ".join(f"readlink /proc/self/ns/{k}" for k in kinds)
    result = rt.ok("exec", running, "/bin/sh", "-c", script)
    hostname, pid, *namespaces = result.stdout.split()
    assert hostname == "berth"
    assert 1 < int(pid) < 100  # in the container's pid namespace, but not its init
    assert namespaces == [ns_id(f"/proc/{init}/ns/{k}") for k in kinds]
    assert namespaces != [ns_id(f"/proc/self/ns/{k}") for k in kinds]


def test_exec_env(rt, running, mark):
    script = 'echo "$A|$C|$PATH|$BERTH_TEST_MARK"'
    result = rt.ok("exec", "--env", "A=B", "--env", "C=d e", running, "/bin/sh", "-c", script)
    a, c, path, container_mark = result.stdout.rstrip("\n").split("|")
    assert (a, c) == ("B", "d e")
    if rt.like_runc:  # runc starts from the config's process.env; crun does not
        assert (path, container_mark) == ("/bin:/usr/bin:/sbin", mark)


def test_exec_cwd(rt, running):
    result = rt.ok("exec", "--cwd", "/tmp", running, "/bin/pwd")
    assert result.stdout == "/tmp\n"


def test_exec_user(rt, running):
    result = rt.ok("exec", "--user", "1000:1000", running, "/bin/sh", "-c", "id -u; id -g")
    assert result.stdout == "1000\n1000\n"


def test_exec_process_json(rt, bundle, running, tmp_path, mark):
    process = dict(bundle.config["process"])
    process.update(
        args=["/bin/sh", "-c", 'echo "$X"; pwd; id -u; id -g'],
        env=process["env"] + ["X=from-json"],
        cwd="/var/run",
        user={"uid": 1000, "gid": 2000},
    )
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    result = rt.ok("exec", "-p", path, running)
    assert result.stdout == "from-json\n/var/run\n1000\n2000\n"


def test_exec_detach_and_pid_file(rt, running, tmp_path):
    pid_file = tmp_path / "exec.pid"
    started = time.monotonic()
    rt.ok("exec", "-d", "--pid-file", pid_file, running, "/bin/sleep", "998")
    assert time.monotonic() - started < 10
    pid = int(pid_file.read_text().strip())
    wait_for(lambda: proc_cmdline(pid) == ["/bin/sleep", "998"], 5, what="the exec'd sleep")
    assert pid in marked_pids(rt.mark)


def test_exec_pid_file_foreground(rt, running, tmp_path):
    pid_file = tmp_path / "exec.pid"
    result = rt.ok("exec", "--pid-file", pid_file, running, "/bin/sh", "-c", "echo $$")
    pid = int(pid_file.read_text().strip())
    assert pid > 0 and pid != rt.state(running)["pid"]
    assert int(result.stdout) > 1  # the same process, seen from inside the pid namespace


def test_exec_tty_console_socket(rt, running, console_socket):
    script = "tty; test -t 0 && test -t 1 && echo exec-ttys; sleep 0.3"
    rt.ok("exec", "--tty", "--detach", "--console-socket", console_socket.path, running,
          "/bin/sh", "-c", script)
    console_socket.receive()
    text = console_socket.read_until("exec-ttys")
    assert "/dev/pts/" in text and "exec-ttys" in text, text


def test_exec_in_stopped_container_fails(rt, bundle, cid):
    bundle.set_args(["/bin/true"])
    rt.ok("run", "-d", "--bundle", bundle.path, cid)
    rt.wait_status(cid, "stopped")
    result = rt("exec", cid, "/bin/echo", "hi")
    assert result.returncode != 0, describe(result)
    assert "hi" not in result.stdout
    rt.ok("delete", cid)


# --- spec, features, global options ---------------------------------------------------------


def test_spec_writes_runnable_config(rt, bundle, tmp_path, mark):
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    rt.ok("spec", cwd=spec_dir)
    config = json.loads((spec_dir / "config.json").read_text())
    assert config["ociVersion"].startswith("1.")
    for key in ("process", "root", "mounts", "linux"):
        assert key in config
    types = {ns["type"] for ns in config["linux"]["namespaces"]}
    assert {"pid", "mount"} <= types
    assert "user" not in types

    config["root"]["path"] = str(bundle.rootfs)
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/echo", "from spec"]
    config["process"]["env"].append(f"BERTH_TEST_MARK={mark}")
    (spec_dir / "config.json").write_text(json.dumps(config))
    result = rt.ok("run", "--bundle", spec_dir, rt.new_id())
    assert result.stdout == "from spec\n"


def test_spec_refuses_to_overwrite(rt, tmp_path):
    existing = tmp_path / "config.json"
    existing.write_text("keep me\n")
    result = rt("spec", cwd=tmp_path)
    assert result.returncode != 0, describe(result)
    assert existing.read_text() == "keep me\n"


def test_spec_rootless(rt, tmp_path):
    if rt.is_berth:
        # rootless mode (berth-runtime without root) is not supported yet: refused, not faked
        expect_error(rt, rt("spec", "--rootless", cwd=tmp_path), "--rootless")
        assert not (tmp_path / "config.json").exists()
        return
    rt.ok("spec", "--rootless", cwd=tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    types = {ns["type"] for ns in config["linux"]["namespaces"]}
    assert "user" in types
    if rt.like_runc:
        assert config["linux"]["uidMappings"] and config["linux"]["gidMappings"]


def test_features(rt):
    if rt.flavor == "crun":
        pytest.skip("crun 1.8 has no features command")
    result = rt.ok("features")
    features = json.loads(result.stdout)
    assert features["ociVersionMin"].startswith("1.")
    assert features["ociVersionMax"].startswith("1.")
    assert isinstance(features["hooks"], list)
    options = features["mountOptions"]
    assert {"ro", "rw", "nosuid", "nodev", "noexec", "bind", "rbind"} <= set(options)
    namespaces = set(features["linux"]["namespaces"])
    assert {"pid", "network", "ipc", "uts", "mount", "cgroup"} <= namespaces


def test_version(rt):
    result = rt.ok("--version")
    assert any(ch.isdigit() for ch in result.stdout), result.stdout
    if rt.like_runc:
        assert "version" in result.stdout.splitlines()[0]


def test_debug_flag_accepted(rt):
    rt.ok("--debug", "list")


def test_log_json(rt, tmp_path):
    log = tmp_path / "runtime.log"
    result = rt("--log", log, "--log-format", "json", "delete", "t-does-not-exist")
    assert result.returncode != 0
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert records, "nothing was logged"
    for record in records:
        assert "level" in record and "msg" in record, record
    errors = [r for r in records if r["level"] == "error"]
    assert errors, records
    if rt.is_berth:
        assert any("t-does-not-exist" in r["msg"] for r in errors), records


def test_log_text(rt, tmp_path):
    log = tmp_path / "runtime.log"
    result = rt("--log", log, "--log-format", "text", "delete", "t-does-not-exist")
    assert result.returncode != 0
    text = log.read_text()
    assert text.strip(), "nothing was logged"
    if rt.is_berth:
        assert "t-does-not-exist" in text
        with pytest.raises(json.JSONDecodeError):
            json.loads(text.splitlines()[0])
