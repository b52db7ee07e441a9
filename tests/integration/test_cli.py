"""The berth command line as a client of berthd (issue 10): run (pulling from a local registry,
streaming the output, passing the exit code on, --rm leaving nothing behind, -d, -e, -v, -p,
--memory, --cpus, --user, --workdir, --entrypoint), ps, logs, stop, kill, rm, inspect, stats,
events, pod run|ls|inspect|stop|rm|logs, info and version; names, unique id prefixes and the
ambiguous-prefix error; bad input, each a one-line error with the exit status berth(1) documents
(1 an error, 2 bad usage).

berthd runs in the test's "node" network namespace (the bd fixture, berthdtools.py), so berth and
the registry run there too, through `nsenter --net`. The fixture removes every pod at the end and
fails the test when anything is left.
"""

import json
import os
import signal
import subprocess
import time

import pytest
from berthdtools import (BERTH, FIXTURES, IMAGE, PYTHON, bd, cgroup2_root,  # noqa: F401
                         image_tar, node)
from imagetools import layout_blob, layout_put_json, layout_retag
from proctools import mounts_under, wait_until

TIMEOUT = 60  # seconds, for one berth command
SLEEPER = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]


def berth_argv(bd, *args):
    return bd.node.enter() + [BERTH, "--socket", str(bd.socket), *map(str, args)]


def berth(bd, *args, input=b"", timeout=TIMEOUT):
    """Runs berth in the node namespace: a CompletedProcess with bytes output."""
    return subprocess.run(berth_argv(bd, *args), input=input, capture_output=True,
                          timeout=timeout, check=False)


def ok(bd, *args, **kw):
    r = berth(bd, *args, **kw)
    assert r.returncode == 0, f"berth {args}: {r.returncode} {r.stderr.decode()}"
    return r.stdout.decode()


def one_line(stderr):
    text = stderr.decode()
    assert text.endswith("\n") and text.count("\n") == 1 and text.startswith("berth: "), text
    return text


def fails(bd, code, *args, needle=None):
    r = berth(bd, *args)
    assert r.returncode == code, f"berth {args}: {r.returncode} {r.stdout} {r.stderr}"
    text = one_line(r.stderr)
    if needle:
        assert needle in text, text
    return text


def run_detached(bd, *args, name=None):
    extra = ["--name", name] if name else []
    cid = ok(bd, "run", "-d", *extra, IMAGE, *args).strip()
    assert len(cid) == 32 and all(c in "0123456789abcdef" for c in cid), cid
    return cid


def inspect(bd, what):
    got = json.loads(ok(bd, "inspect", what))
    assert len(got) == 1, got
    return got[0]


def state(bd, what):
    return inspect(bd, what)["status"]["state"]


def nothing_left(bd):
    c = bd.client()
    try:
        assert c.ok("pod.list")["pods"] == []
        assert c.ok("container.list")["containers"] == []
    finally:
        c.close()
    assert bd.entries() == {}, bd.entries()
    assert bd.cgroups() == [], bd.cgroups()
    assert mounts_under(bd.dir) == []
    assert [p for p in bd.processes() if p != bd.pid] == []


def with_entrypoint(layout, tag, entrypoint):
    """The layout's image `tag` given an Entrypoint (the small image has only /bin/busybox and
    /bin/sh: `run IMAGE echo hi` is then busybox's echo)."""
    index = json.loads((layout / "index.json").read_text())
    desc = next(m for m in index["manifests"]
                if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
    manifest = json.loads(layout_blob(layout, desc["digest"]).read_bytes())
    config = json.loads(layout_blob(layout, manifest["config"]["digest"]).read_bytes())
    config.setdefault("config", {})["Entrypoint"] = entrypoint
    digest, size = layout_put_json(layout, config)
    manifest["config"].update(digest=digest, size=size)
    layout_retag(layout, tag, *layout_put_json(layout, manifest))


@pytest.fixture
def registry(bd, tmp_path):
    """A local registry in the node namespace serving the small image (with busybox as its
    Entrypoint); its reference."""
    layout = tmp_path / "layout"
    made = subprocess.run([PYTHON, FIXTURES / "make-image.py", "build", "--ref", "v1", layout,
                           "small"], capture_output=True, timeout=120, check=False)
    assert made.returncode == 0, made.stderr
    with_entrypoint(layout, "v1", ["/bin/busybox"])
    reg = subprocess.Popen(bd.node.enter() + [PYTHON, str(FIXTURES / "fake-registry.py"),
                                              str(layout)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
    try:
        port = int(reg.stdout.readline())
        yield f"127.0.0.1:{port}/pulled/small:v1"
    finally:
        reg.kill()  # our own child (nsenter exec'd python)
        reg.wait()
        reg.stdout.close()


@pytest.fixture
def up(bd):
    bd.start()
    return bd


# --- run --------------------------------------------------------------------------------------


def test_run_rm_echo_hi_pulls_prints_and_leaves_nothing(up, registry):
    r = berth(up, "run", "--rm", registry, "echo", "hi")
    assert r.returncode == 0, r
    assert r.stdout == b"hi\n"
    assert b"pulling" in r.stderr  # progress on stderr, output alone on stdout
    nothing_left(up)
    # the image stays, pulled through berthd
    c = up.client()
    assert any("pulled/small:v1" in i["name"] for i in c.ok("image.list")["images"])
    c.close()
    # a second run finds it there: nothing pulled
    r = berth(up, "run", "--rm", "-q", registry, "echo", "again")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"again\n", b""), r


def test_run_passes_the_exit_code_on(up, registry):
    r = berth(up, "run", "-q", "--name", "three", registry, "sh", "-c", "exit 3")
    assert r.returncode == 3, r
    assert (r.stdout, r.stderr) == (b"", b"")
    got = inspect(up, "three")["status"]
    assert (got["state"], got["exit_code"]) == ("exited", 3)
    assert ok(up, "rm", "three") == "three\n"
    nothing_left(up)


def ps_names(bd, all=False):
    rows = json.loads(ok(bd, "ps", *(["-a"] if all else []), "--format", "json"))
    return [row["name"] for row in rows]


def test_run_keeps_stdout_and_stderr_apart(up):
    r = berth(up, "run", "--rm", IMAGE, "sh", "-c", "echo out; echo err >&2; echo out2; exit 7")
    assert r.returncode == 7, r
    assert r.stdout == b"out\nout2\n"
    assert r.stderr == b"err\n"
    nothing_left(up)


def test_run_streams_output_as_it_comes_and_signals_stop_the_container(up):
    proc = subprocess.Popen(berth_argv(up, "run", "--rm", "--name", "looper", IMAGE, "sh", "-c",
                                       "trap 'echo bye; exit 0' TERM; echo started; "
                                       "while :; do sleep 0.1; done"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"started\n"
        proc.send_signal(signal.SIGINT)  # our own child (nsenter exec'd berth)
        rc = proc.wait(TIMEOUT)
        assert rc == 130, (rc, proc.stderr.read())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    nothing_left(up)


def test_run_interactive_attaches_stdin(up):
    r = berth(up, "run", "--rm", "-i", IMAGE, "sh", "-c", "read x; echo got $x; exit 4",
              input=b"hello\n")
    assert (r.returncode, r.stdout) == (4, b"got hello\n"), r
    nothing_left(up)


def test_run_detached_then_logs_follow_stop_and_rm(up):
    cid = run_detached(up, "sh", "-c", "trap 'echo stopping; exit 0' TERM; echo ready; "
                       "while :; do sleep 0.1; done", name="svc")
    wait_until(lambda: ok(up, "logs", "svc") == "ready\n", 20, "the container's first line")
    follower = subprocess.Popen(berth_argv(up, "logs", "-f", "svc"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    try:
        assert follower.stdout.readline() == b"ready\n"
        assert ok(up, "stop", "-t", "5", "svc") == "svc\n"
        out, err = follower.communicate(timeout=TIMEOUT)
        assert follower.returncode == 0, err
        assert out == b"stopping\n"
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert state(up, cid[:12]) == "exited"
    assert ok(up, "rm", "svc") == "svc\n"
    nothing_left(up)  # rm also removed run's pod


def test_run_env_volumes_workdir_user_entrypoint(up, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("from the host\n")
    os.chmod(tmp_path, 0o755)
    rw = tmp_path / "rw"
    rw.mkdir()
    os.chmod(rw, 0o777)
    r = berth(up, "run", "--rm", "-e", "GREETING=hello there", "-e", "EMPTY=",
              "-v", f"{data}:/data:ro", "-v", f"{rw}:/rw", "--workdir", "/data",
              "--user", "1000:1000", IMAGE, "sh", "-c",
              'echo "$GREETING|${EMPTY-unset}"; pwd; cat in.txt; id -u; id -g; '
              "touch /data/x 2>/dev/null && echo writable || echo read-only; "
              "echo made > /rw/out")
    assert r.returncode == 0, r
    assert r.stdout.decode().splitlines() == [
        "hello there|", "/data", "from the host", "1000", "1000", "read-only"]
    assert (rw / "out").read_text() == "made\n"
    assert os.stat(rw / "out").st_uid == 1000
    # --entrypoint replaces the image's; CMD becomes its arguments
    r = berth(up, "run", "--rm", "--entrypoint", "/bin/busybox", IMAGE, "echo", "via", "entrypoint")
    assert (r.returncode, r.stdout) == (0, b"via entrypoint\n"), r
    nothing_left(up)


def test_run_publishes_a_host_port(up):
    port = 18080
    # an address of the node's own (on the loopback of the test's namespace, never the host's)
    up.node.run("ip", "addr", "add", "192.0.2.10/32", "dev", "lo")
    cid = ok(up, "run", "-d", "--name", "pub", "-p", f"{port}:8080", IMAGE, "sh", "-c",
             "exec nc -ll -p 8080 -e busybox echo served").strip()
    assert state(up, cid) == "running"

    def reach():
        got = up.node.run(PYTHON, "-c", (
            "import socket,sys\n"
            f"s=socket.create_connection(('192.0.2.10',{port}),timeout=2)\n"
            "sys.stdout.write(s.recv(100).decode())\n"), check=False)
        return got.returncode == 0 and got.stdout.strip() == "served"
    wait_until(reach, 20, f"hostPort {port} to answer")
    pod = inspect(up, inspect(up, cid)["status"]["pod_id"])
    assert pod["config"]["port_mappings"][0]["host_port"] == port
    assert pod["config"]["port_mappings"][0]["container_port"] == 8080
    assert ok(up, "rm", "-f", "pub") == "pub\n"
    nothing_left(up)


def test_run_memory_and_cpus_reach_the_config(up):
    fails(up, 2, "run", "--memory", "lots", IMAGE, "true", needle="--memory lots")
    fails(up, 2, "run", "--cpus", "-1", IMAGE, "true", needle="--cpus -1")
    info = json.loads(ok(up, "info", "--format", "json"))["cgroup"]
    offered = set(info.get("parent_controllers") or info.get("controllers") or [])
    args = ["run", "-d", "--memory", "64m", "--cpus", "0.5", IMAGE, *SLEEPER]
    if not {"memory", "cpu"} <= offered:
        # a hybrid host: berthd refuses the limits it cannot apply, naming them; run cleans up
        text = fails(up, 1, *args, needle="linux.resources.")
        assert "controller" in text, text
        nothing_left(up)
        pytest.skip(f"the cgroup2 hierarchy offers {sorted(offered)}: no memory or cpu "
                    "controller to apply the limits with")
    cid = ok(up, *args).strip()
    res = inspect(up, cid)["config"]["linux"]["resources"]
    assert res["memory_limit_in_bytes"] == 64 << 20
    assert (res["cpu_period"], res["cpu_quota"]) == (100000, 50000)
    got = json.loads(ok(up, "stats", "--no-stream", "--format", "json", cid[:8]))
    assert [s["id"] for s in got] == [cid]
    assert got[0]["memory_limit"] == 64 << 20 and got[0]["pids"] >= 1, got
    ok(up, "rm", "-f", cid)
    nothing_left(up)


# --- ps, logs, kill, rm, inspect, stats, events ------------------------------------------------


def test_ps_tables_json_and_quiet(up):
    a = run_detached(up, *SLEEPER, name="alpha")
    r = berth(up, "run", "--name", "beta", IMAGE, "sh", "-c", "true")
    assert r.returncode == 0, r
    table = ok(up, "ps").splitlines()
    assert table[0].split() == ["ID", "NAME", "IMAGE", "STATE", "CREATED", "POD"]
    assert len(table) == 2 and table[1].startswith(a[:12] + "  "), table
    assert "alpha" in table[1] and "running" in table[1] and "ago" in table[1], table
    # the columns line up: NAME starts at the same place in every line
    assert len({line.index(word) for line, word in zip(table, ["NAME", "alpha"])}) == 1
    every = ok(up, "ps", "-a").splitlines()
    assert len(every) == 3 and any("beta" in l and "exited (0)" in l for l in every), every
    rows = json.loads(ok(up, "ps", "-a", "--format", "json"))
    assert {r["name"]: r["state"] for r in rows} == {"alpha": "running", "beta": "exited"}
    assert {r["pod_name"] for r in rows} == {"alpha", "beta"}
    assert ok(up, "ps", "-q").split() == [a]
    assert sorted(ok(up, "ps", "-aq").split()) == sorted(r["id"] for r in rows)
    fails(up, 2, "ps", "--format", "yaml", needle="--format yaml")
    ok(up, "rm", "-f", "alpha", "beta")
    nothing_left(up)


def test_logs_tail_since_timestamps(up):
    r = berth(up, "run", "--name", "talker", IMAGE, "sh", "-c",
              "for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2; echo last")
    assert r.returncode == 0, r
    assert ok(up, "logs", "talker") == "line1\nline2\nline3\nline4\nline5\nlast\n"
    # the last two records: "last" and "oops", whose order in the file is the shim's
    r = berth(up, "logs", "--tail", "2", "talker")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"last\n", b"oops\n"), r
    r = berth(up, "logs", "--tail", "0", "talker")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b""), r
    stamped = ok(up, "logs", "--timestamps", "talker").splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == [
        "line1", "line2", "line3", "line4", "line5", "last"]
    stamp = stamped[0].split(" ", 1)[0]
    assert stamp.endswith("Z") and stamp[10] == "T" and len(stamp) == 30, stamp
    assert ok(up, "logs", "--since", "1h", "talker").startswith("line1\n")
    assert ok(up, "logs", "--since", "2200-01-01T00:00:00Z", "talker") == ""
    fails(up, 2, "logs", "--since", "yesterday", "talker", needle="--since yesterday")
    fails(up, 2, "logs", "--tail", "x", "talker", needle="--tail x")
    ok(up, "rm", "talker")
    nothing_left(up)


def test_kill_with_a_signal_and_rm_force(up):
    run_detached(up, "sh", "-c", "trap 'exit 42' USR1; while :; do sleep 0.1; done", name="k")
    time.sleep(0.3)  # the trap is set
    assert ok(up, "kill", "-s", "USR1", "k") == "k\n"
    wait_until(lambda: state(up, "k") == "exited", 20, "k to exit")
    assert inspect(up, "k")["status"]["exit_code"] == 42
    fails(up, 1, "kill", "-s", "SIGNOPE", "k", needle="kill")
    run_detached(up, *SLEEPER, name="busy")
    fails(up, 1, "rm", "busy", needle='container "busy" is running')
    assert state(up, "busy") == "running"
    assert ok(up, "rm", "-f", "busy", "k") == "busy\nk\n"
    nothing_left(up)


def test_inspect_container_and_pod(up):
    cid = run_detached(up, *SLEEPER, name="insp")
    got = inspect(up, "insp")
    assert got["status"]["id"] == cid and got["status"]["state"] == "running"
    assert got["config"]["metadata"]["name"] == "insp"
    assert got["config"]["args"] == SLEEPER
    pod = inspect(up, got["status"]["pod_id"][:10])
    assert pod["status"]["labels"] == {"io.berth.run": "true"}
    assert pod["status"]["name"] == "insp"
    fails(up, 1, "inspect", "nothing-here", needle='container "nothing-here": no such container')
    ok(up, "rm", "-f", cid)


def test_stats_no_stream_table(up):
    run_detached(up, *SLEEPER, name="st")
    lines = ok(up, "stats", "--no-stream").splitlines()
    assert lines[0].split()[:3] == ["ID", "NAME", "CPU"], lines
    assert len(lines) == 2 and "st" in lines[1].split() and "%" in lines[1], lines
    ok(up, "rm", "-f", "st")


def test_events_stream_while_containers_come_and_go(up):
    proc = subprocess.Popen(berth_argv(up, "events", "--format", "json"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    human = subprocess.Popen(berth_argv(up, "events"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)  # both subscribed
        r = berth(up, "run", "--rm", IMAGE, "sh", "-c", "true")
        assert r.returncode == 0, r
        seen = []
        while [e["event"] for e in seen] != ["created", "started", "exited", "removed"]:
            seen.append(json.loads(proc.stdout.readline()))
        assert len({e["container_id"] for e in seen}) == 1
        assert seen[2]["exit_code"] == 0
        words = [human.stdout.readline().decode().split()[2] for _ in range(4)]
        assert words == ["created", "started", "exited", "removed"]
    finally:
        for p in (proc, human):
            p.kill()  # our own children
            p.wait()


# --- pods -------------------------------------------------------------------------------------


def test_pod_run_ls_inspect_logs_stop_rm(up):
    pid = ok(up, "pod", "run", "--name", "pp", "--label", "team=a").strip()
    assert len(pid) == 32
    table = ok(up, "pod", "ls").splitlines()
    assert table[0].split() == ["ID", "NAME", "NAMESPACE", "STATE", "PHASE", "READY",
                                "RESTARTS", "CREATED", "CONTAINERS", "IP"]
    # not a pod from a manifest: no Kubernetes phase, readiness or restarts
    row = dict(zip(table[0].split(), table[1].split()))
    assert (row["NAME"], row["STATE"], row["PHASE"], row["READY"], row["RESTARTS"]) == \
        ("pp", "ready", "-", "-", "-"), table
    assert "podStatus" not in json.loads(ok(up, "pod", "inspect", "pp"))[0]
    rows = json.loads(ok(up, "pod", "ls", "--format", "json"))
    assert [(p["name"], p["labels"]) for p in rows] == [("pp", {"team": "a"})]
    assert ok(up, "pod", "ls", "-q").split() == [pid]
    c = up.client()
    one = c.create(pid, "one", ["/bin/sh", "-c", "echo from-one"])
    two = c.create(pid, "two", SLEEPER)
    c.ok("container.start", container_id=one)
    c.ok("container.start", container_id=two)
    c.wait_state(one, "exited")
    c.close()
    got = json.loads(ok(up, "pod", "inspect", "pp"))
    assert got[0]["status"]["id"] == pid
    assert sorted(x["name"] for x in got[0]["containers"]) == ["one", "two"]
    assert ok(up, "pod", "logs", "pp") == "one | from-one\n"
    fails(up, 1, "pod", "rm", "pp", needle='pod "pp" has running containers')
    assert ok(up, "pod", "stop", pid[:8]) == pid[:8] + "\n"
    assert json.loads(ok(up, "pod", "inspect", "pp"))[0]["status"]["state"] == "notready"
    assert ok(up, "pod", "rm", "pp") == "pp\n"
    fails(up, 1, "pod", "inspect", "pp", needle='pod "pp": no such pod')
    nothing_left(up)


# --- names, prefixes, info, version -----------------------------------------------------------


def test_names_prefixes_and_ambiguity(up):
    ids = [run_detached(up, *SLEEPER) for _ in range(6)]
    names = ps_names(up)
    assert all(n.startswith("berth-") and len(n) == 14 for n in names), names
    # a prefix shared by two ids
    first = {}
    shared = None
    for cid in ids:
        if cid[0] in first:
            shared = cid[0]
            break
        first[cid[0]] = cid
    if shared:
        fails(up, 1, "stop", shared, needle="ambiguous")
    for cid in ids:
        unique = next(cid[:n] for n in range(1, 33)
                      if sum(x.startswith(cid[:n]) for x in ids) == 1)
        assert inspect(up, unique)["status"]["id"] == cid
    assert inspect(up, names[0])["status"]["name"] == names[0]
    fails(up, 2, "run", "--name", names[0], "--bogus", IMAGE)
    fails(up, 1, "run", "--name", names[0], IMAGE, "true", needle="the name is in use")
    ok(up, "rm", "-f", *ids)
    nothing_left(up)


def test_info_and_version(up):
    info = json.loads(ok(up, "info", "--format", "json"))
    assert info["runtime_name"] == "berth" and info["version"]
    assert info["storage"]["root"] == str(up.root)
    assert info["storage"]["images"]["bytes"] > 0
    assert info["cgroup"]["parent"] == up.cgroup_parent
    root = cgroup2_root()
    if root:
        assert info["cgroup"]["version"] == 2
        assert info["cgroup"]["controllers"] == (root / "cgroup.controllers").read_text().split()
    assert info["network"]["mode"] == "bridge"
    assert f"root = {up.root}" in info["config"]
    text = ok(up, "info")
    for heading in ("Client:", "Server:", "Cgroups:", "Storage:", "Network:", "Configuration:"):
        assert heading in text.splitlines(), text
    assert ok(up, "version").splitlines()[0:2] == ["Client:", f" Version: {info['version']}"]
    v = json.loads(ok(up, "version", "--format", "json"))
    assert v["server"]["version"] == info["version"]


# --- bad input --------------------------------------------------------------------------------


def test_bad_input_one_line_and_documented_status(up):
    for args in (("stop", "ghost"), ("kill", "ghost"), ("rm", "ghost"), ("logs", "ghost")):
        fails(up, 1, *args, needle=f'{args[0]}: container "ghost": no such container')
    fails(up, 1, "pod", "stop", "ghost", needle='pod "ghost": no such pod')
    for args in (("ps", "--bogus"), ("run",), ("stop",), ("logs", "a", "b"),
                 ("run", "-p", "99999:1", IMAGE), ("run", "-v", "nocolon", IMAGE),
                 ("run", "-d", "--rm", IMAGE), ("pod", "fly"), ("fly",),
                 ("stop", "-t", "soon", "x")):
        fails(up, 2, *args)
    fails(up, 1, "run", "--rm", "-q", "127.0.0.1:1/nothing/here:v1", "true",
          needle="127.0.0.1:1")
    nothing_left(up)


def test_no_berthd_is_one_line_exit_1(bd):
    r = subprocess.run([BERTH, "--socket", "/nonexistent/berth.sock", "ps"], capture_output=True,
                       timeout=TIMEOUT, check=False)
    assert r.returncode == 1
    assert "connect to berthd at /nonexistent/berth.sock" in one_line(r.stderr)
    r = subprocess.run([BERTH, "ps"], capture_output=True, timeout=TIMEOUT, check=False,
                       env={**os.environ, "BERTH_SOCKET": "/nonexistent/env.sock"})
    assert r.returncode == 1 and "/nonexistent/env.sock" in one_line(r.stderr)
    r = subprocess.run([BERTH, "--socket", "/nonexistent/s", "version"], capture_output=True,
                       timeout=TIMEOUT, check=False)
    assert r.returncode == 1 and r.stdout.decode().startswith("Client:\n")
    one_line(r.stderr)
