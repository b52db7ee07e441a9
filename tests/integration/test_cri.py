"""berthd's CRI (runtime.v1 over gRPC) driven by an independent client: Debian's python3-grpcio
with messages generated from cri/cri-api.proto (critools.py), and python3-h2 for what a
well-behaved client never sends. Full pod lifecycles, list filters, a pod sharing one PID
namespace, images, status codes of bad requests, deadlines, 20 concurrent clients, malformed
HTTP/2 frames, gRPC prefixes and protobuf bodies, the container event stream, and the JSON-lines
API served beside gRPC on the same socket. (OOMKilled needs a real memory controller: the VM
suites' business, not here.)

Each test runs its own berthd inside a network namespace it made (berthdtools.py), with the
"small" test image imported into its store; the bd fixture removes every pod at the end and fails
the test if anything is left (processes, mounts, cgroups, directories).
"""

import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import grpc
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import pytest
from berthdtools import (  # noqa: F401 (fixtures)
    FIXTURES,
    IMAGE,
    PYTHON,
    Events,
    bd,
    image_tar,
    node,
)
from critools import CriClient, container_config
from nettools import run
from proctools import mounts_under, pid_alive, wait_until
from shimtools import log_lines, log_records

FULL_IMAGE = "docker.io/test/small:v1"
UNKNOWN = "0123456789abcdef0123456789abcdef"
RT = "/runtime.v1.RuntimeService/"
TRUE = ["/bin/sh", "-c", "true"]  # the image has busybox and /bin/sh only
# exits 0 on SIGTERM at once (the trap interrupts the wait)
POLITE = ["/bin/sh", "-c", "trap 'exit 0' TERM; echo ready; sleep 100000 & wait"]


def start_polite(c, cid):
    """Starts a POLITE container and waits until its trap is set: a container's init ignores a
    signal it has no handler for, so a SIGTERM before the trap would wait for the SIGKILL."""
    c.call("StartContainer", container_id=cid)
    log = Path(c.status(cid).log_path)
    wait_until(lambda: log.exists() and b"ready" in log_lines(log_records(log), "stdout"), 30,
               "the container's TERM trap")


def cri(bd):
    return CriClient(bd.socket, log_root=bd.logs)


def names(items):
    return sorted(x.metadata.name for x in items)


def in_threads(*jobs):
    """Run each job (a function of no arguments) in a thread of its own, all at once; wait
    for them; return the exceptions they raised."""
    errors = []

    def run_one(job):
        try:
            job()
        except Exception as e:  # noqa: BLE001 (returned to the test)
            errors.append(e)

    ts = [threading.Thread(target=run_one, args=(job,)) for job in jobs]
    for x in ts:
        x.start()
    for x in ts:
        x.join()
    return errors


def events_of(events, cid, mods):
    return [mods.ContainerEventType.Name(e.container_event_type) for e in events
            if e is not None and e.container_id == cid]


class EventReader(Events):
    """GetContainerEvents read by a thread; wait(pred) as berthdtools.Events (the same list,
    None once the stream ended)."""

    def __init__(self, c):  # not Events.__init__: that one opens a JSON-lines connection
        self.c = c
        self.call = c.stream("GetContainerEvents")
        self.events = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for ev in self.call:
                with self.cond:
                    self.events.append(ev)
                    self.cond.notify_all()
        except grpc.RpcError:
            pass
        with self.cond:
            self.events.append(None)
            self.cond.notify_all()

    def close(self):
        self.call.cancel()
        self.thread.join(5)


# --- the whole lifecycle ----------------------------------------------------------------------


def test_runtime_info(bd):
    bd.start()
    c = cri(bd)
    v = c.call("Version", version="v1")
    assert (v.runtime_name, v.runtime_api_version) == ("berth", "v1"), v
    assert v.version and v.runtime_version, v
    st = c.call("Status", verbose=False).status
    cond = {x.type: x.status for x in st.conditions}
    assert cond == {"RuntimeReady": True, "NetworkReady": True}, st
    rc = c.call("RuntimeConfig")
    assert c.mods.CgroupDriver.Name(rc.linux.cgroup_driver) == "CGROUPFS", rc
    fs = c.call("ImageFsInfo")
    assert fs.image_filesystems, fs
    mount = fs.image_filesystems[0].fs_id.mountpoint
    assert Path(mount).is_dir() and str(bd.root) in mount, fs
    assert fs.image_filesystems[0].used_bytes.value > 0, fs
    c.close()


def test_pod_lifecycle(bd):
    bd.start()
    c = cri(bd)
    events = EventReader(c)
    pod, pcfg = c.run_pod("web", hostname="web-1", labels={"app": "web"},
                          annotations={"note": "x"})
    st = c.pod_status(pod).status
    assert c.mods.PodSandboxState.Name(st.state) == "SANDBOX_READY", st
    assert (st.metadata.name, st.metadata.namespace, st.metadata.uid) == \
        ("web", "default", "uid-web")
    assert dict(st.labels) == {"app": "web"} and dict(st.annotations) == {"note": "x"}
    assert st.network.ip.startswith("10.88."), st
    assert st.created_at > 0
    assert [p.id for p in c.call("ListPodSandbox").items] == [pod]

    script = ("echo hello; echo oops >&2; trap 'echo bye; exit 7' TERM; "
              "while :; do sleep 0.1; done")
    cid = c.create(pod, pcfg, "main", ["/bin/sh", "-c", script], IMAGE,
                   envs=[{"key": "GREETING", "value": "hi there"}], labels={"tier": "a"})
    s = c.status(cid)
    assert c.state_name(s.state) == "CONTAINER_CREATED", s
    assert s.metadata.name == "main" and dict(s.labels) == {"tier": "a"}
    assert s.created_at > 0 and s.started_at == 0
    assert s.image_ref.startswith("sha256:") or "@sha256:" in s.image_ref, s
    log = Path(pcfg["log_directory"]) / "main" / "0.log"
    assert s.log_path == str(log), s
    assert c.call("ListContainers").containers[0].pod_sandbox_id == pod

    c.call("StartContainer", container_id=cid)
    s = c.wait_state(cid, "CONTAINER_RUNNING")
    assert s.started_at >= s.created_at
    # its output, in the CRI log format, where the pod's log_directory and log_path say
    wait_until(lambda: log.exists() and len(log_records(log)) >= 2, 10, "the log's two lines")
    assert log_lines(log_records(log), "stdout")[0] == b"hello"
    assert log_lines(log_records(log), "stderr")[0] == b"oops"

    # ExecSync: environment, hostname, both streams, exit code
    r = c.call("ExecSync", container_id=cid, timeout=10,
               cmd=["/bin/sh", "-c", "echo $GREETING; hostname; id -u; echo e >&2; exit 4"])
    assert (r.exit_code, r.stdout, r.stderr) == (4, b"hi there\nweb-1\n0\n", b"e\n"), r
    r = c.call("ExecSync", container_id=cid, timeout=10, cmd=TRUE)
    assert (r.exit_code, r.stdout, r.stderr) == (0, b"", b"")
    # an exec past its own timeout
    t0 = time.monotonic()
    c.fail("DEADLINE_EXCEEDED", "ExecSync", container_id=cid, timeout=1,
           cmd=["/bin/sh", "-c", "sleep 30"])
    assert time.monotonic() - t0 < 10

    # stop: SIGTERM, which the trap turns into exit 7
    c.call("StopContainer", container_id=cid, timeout=10)
    s = c.status(cid)
    assert c.state_name(s.state) == "CONTAINER_EXITED", s
    assert (s.exit_code, s.reason) == (7, "Error"), s
    assert s.finished_at >= s.started_at > 0
    assert b"bye" in log_lines(log_records(log), "stdout")
    c.call("StopContainer", container_id=cid, timeout=10)  # idempotent

    # a container that finishes by itself: Completed
    done = c.create(pod, pcfg, "done", ["/bin/sh", "-c", "exit 0"], IMAGE)
    c.call("StartContainer", container_id=done)
    s = c.wait_state(done, "CONTAINER_EXITED")
    assert (s.exit_code, s.reason) == (0, "Completed"), s

    c.call("RemoveContainer", container_id=cid)
    c.fail("NOT_FOUND", "ContainerStatus", container_id=cid)
    c.call("RemoveContainer", container_id=cid)  # idempotent
    ev = events.wait(lambda e: e.container_id == cid and
                     e.container_event_type == c.mods.CONTAINER_DELETED_EVENT)
    assert events_of(events.events, cid, c.mods) == [
        "CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT", "CONTAINER_STOPPED_EVENT",
        "CONTAINER_DELETED_EVENT"]
    assert ev.created_at > 0, ev

    c.call("StopPodSandbox", pod_sandbox_id=pod)
    st = c.pod_status(pod).status
    assert c.mods.PodSandboxState.Name(st.state) == "SANDBOX_NOTREADY", st
    c.call("StopPodSandbox", pod_sandbox_id=pod)  # idempotent
    c.call("RemovePodSandbox", pod_sandbox_id=pod)
    c.fail("NOT_FOUND", "PodSandboxStatus", pod_sandbox_id=pod)
    c.fail("NOT_FOUND", "ContainerStatus", container_id=done)  # went with its pod
    c.call("RemovePodSandbox", pod_sandbox_id=pod)  # idempotent
    assert list(c.call("ListPodSandbox").items) == []
    assert list(c.call("ListContainers").containers) == []
    assert bd.problems() == []
    events.close()
    c.close()


def test_list_filters(bd):
    bd.start()
    c = cri(bd)
    a, acfg = c.run_pod("a", labels={"app": "x", "tier": "1"})
    b, bcfg = c.run_pod("b", labels={"app": "x", "tier": "2"})
    c.call("StopPodSandbox", pod_sandbox_id=b)

    def pods(**flt):
        return names(c.call("ListPodSandbox", filter=flt).items)

    assert pods() == ["a", "b"]
    assert pods(id=a) == ["a"]
    assert pods(id=UNKNOWN) == []
    assert pods(state={"state": "SANDBOX_READY"}) == ["a"]
    assert pods(state={"state": "SANDBOX_NOTREADY"}) == ["b"]
    assert pods(label_selector={"app": "x"}) == ["a", "b"]
    assert pods(label_selector={"app": "x", "tier": "2"}) == ["b"]
    assert pods(label_selector={"app": "y"}) == []

    run1 = c.create(a, acfg, "run", ["/bin/sh", "-c", "sleep 1000"], IMAGE, labels={"k": "r"})
    new = c.create(a, acfg, "new", TRUE, IMAGE, labels={"k": "n"})
    c.call("StartContainer", container_id=run1)
    c.wait_state(run1, "CONTAINER_RUNNING")

    def ctrs(**flt):
        return names(c.call("ListContainers", filter=flt).containers)

    assert ctrs() == ["new", "run"]
    assert ctrs(id=new) == ["new"]
    assert ctrs(pod_sandbox_id=a) == ["new", "run"]
    assert ctrs(pod_sandbox_id=b) == []
    assert ctrs(state={"state": "CONTAINER_RUNNING"}) == ["run"]
    assert ctrs(state={"state": "CONTAINER_CREATED"}) == ["new"]
    assert ctrs(label_selector={"k": "n"}) == ["new"]
    assert ctrs(pod_sandbox_id=a, state={"state": "CONTAINER_EXITED"}) == []
    listed = {x.id: x for x in c.call("ListContainers").containers}
    assert listed[run1].image.image and listed[run1].image_ref and listed[run1].created_at > 0
    assert dict(listed[run1].labels) == {"k": "r"}
    c.close()


def test_shared_pid_namespace(bd):
    """A pod sharing one PID namespace (namespace_options.pid POD, shareProcessNamespace):
    its containers see each other, and a container's leftover processes go when its init
    exits, as they would with a namespace of its own."""
    bd.start()
    c = cri(bd)
    shared = {"security_context": {"namespace_options": {"pid": "POD"}}}
    pod, pcfg = c.run_pod("shared", linux=shared)
    watcher = c.create(pod, pcfg, "watcher", ["/bin/sh", "-c", "sleep 100000"], IMAGE,
                       linux=shared)
    leaver = c.create(pod, pcfg, "leaver", ["/bin/sh", "-c", "sleep 99999 & "
                      "trap 'exit 0' TERM; wait"], IMAGE, linux=shared)
    for x in (watcher, leaver):
        c.call("StartContainer", container_id=x)
        c.wait_state(x, "CONTAINER_RUNNING")

    def ps():
        r = c.call("ExecSync", container_id=watcher, timeout=10, cmd=["/bin/busybox", "ps"])
        assert r.exit_code == 0, r
        return r.stdout.decode()

    wait_until(lambda: "sleep 99999" in ps(), 10, "the watcher to see the leaver's child")
    t0 = time.monotonic()
    c.call("StopContainer", container_id=leaver, timeout=10)
    took = time.monotonic() - t0
    s = c.status(leaver)
    assert (c.state_name(s.state), s.exit_code) == ("CONTAINER_EXITED", 0), s
    assert "sleep 99999" not in ps(), "the exited container's child still runs:\n" + ps()
    assert took < 0.4, f"StopContainer took {took:.2f} s for a container that exits at once"
    c.close()


def test_images(bd, tmp_path):
    layout = tmp_path / "layout"
    result = run([PYTHON, FIXTURES / "make-image.py", "build", "--ref", "v1", layout, "small"],
                 timeout=120)
    assert result.returncode == 0, result.stderr
    # the registry listens on the node's loopback, where berthd pulls from
    reg = subprocess_in(bd, [PYTHON, FIXTURES / "fake-registry.py", layout])
    try:
        port = int(reg.stdout.readline())
        ref = f"127.0.0.1:{port}/pulled/small:v1"
        bd.start()
        c = cri(bd)
        assert not c.call("ImageStatus", image={"image": ref}).HasField("image")
        pod, pcfg = c.run_pod("p")
        pulled = c.call("PullImage", image={"image": ref}, sandbox_config=pcfg).image_ref
        assert pulled, "PullImage names the image it pulled"
        st = c.call("ImageStatus", image={"image": ref}, verbose=True)
        im = st.image
        assert im.id.startswith("sha256:") and ref in im.repo_tags and im.size > 0, im
        assert any(d.startswith(f"127.0.0.1:{port}/pulled/small@sha256:") for d in im.repo_digests)
        assert pulled in (im.id, *im.repo_digests), (pulled, im)
        assert st.info, "verbose ImageStatus carries info"
        listed = {i.id: i for i in c.call("ListImages").images}
        assert im.id in listed and ref in listed[im.id].repo_tags
        assert any(FULL_IMAGE in i.repo_tags for i in listed.values()), listed
        only = c.call("ListImages", filter={"image": {"image": ref}}).images
        assert [i.id for i in only] == [im.id]
        # by id too
        assert c.call("ImageStatus", image={"image": im.id}).image.id == im.id
        cid = c.create(pod, pcfg, "x", ["/bin/sh", "-c", "cat /usr/share/berth/hello.txt"], ref)
        c.call("StartContainer", container_id=cid)
        s = c.wait_state(cid, "CONTAINER_EXITED")
        assert log_lines(log_records(s.log_path), "stdout") == [b"hello from a berth test image"]
        assert im.id in (s.image_ref, s.image_id), s
        c.call("RemoveContainer", container_id=cid)
        c.call("RemoveImage", image={"image": ref})
        c.call("RemoveImage", image={"image": ref})  # idempotent
        assert not c.call("ImageStatus", image={"image": ref}).HasField("image")
        msg = c.fail("NOT_FOUND", "CreateContainer", pod_sandbox_id=pod, sandbox_config=pcfg,
                     config=container_config("y", TRUE, ref))
        assert ref in msg
        # a registry that is not there: an error naming it, and the server goes on
        try:
            c.call("PullImage", image={"image": "127.0.0.1:1/nothing/here:v1"})
            raise AssertionError("a pull from a closed port succeeded")
        except grpc.RpcError as e:
            assert "127.0.0.1:1" in e.details(), e.details()
        assert c.call("Version").runtime_name == "berth"
        c.close()
    finally:
        reg.kill()  # our own child (nsenter exec'd python)
        reg.wait()
        reg.stdout.close()


def subprocess_in(bd, argv):
    """A process of ours started inside berthd's network namespace (its stdout a pipe)."""
    return subprocess.Popen(bd.node.enter() + [str(a) for a in argv], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


# --- bad requests -----------------------------------------------------------------------------


def test_bad_requests_get_the_right_codes(bd):
    bd.start()
    c = cri(bd)
    for method, field in (("ContainerStatus", "container_id"), ("StartContainer", "container_id"),
                          ("ReopenContainerLog", "container_id"),
                          ("PodSandboxStatus", "pod_sandbox_id")):
        msg = c.fail("NOT_FOUND", method, **{field: UNKNOWN})
        assert UNKNOWN in msg, (method, msg)
    c.fail("NOT_FOUND", "ExecSync", container_id=UNKNOWN, cmd=TRUE, timeout=5)
    c.fail("NOT_FOUND", "ContainerStats", container_id=UNKNOWN)
    c.fail("NOT_FOUND", "PodSandboxStats", pod_sandbox_id=UNKNOWN)
    # stopping or removing what is not there is not an error (CRI: idempotent; kubelet
    # retries them after a restart)
    c.call("StopContainer", container_id=UNKNOWN, timeout=0)
    c.call("StopPodSandbox", pod_sandbox_id=UNKNOWN)
    c.call("RemoveContainer", container_id=UNKNOWN)
    c.call("RemovePodSandbox", pod_sandbox_id=UNKNOWN)
    # a container in a pod that does not exist
    msg = c.fail("NOT_FOUND", "CreateContainer", pod_sandbox_id=UNKNOWN,
                 config=container_config("a", TRUE, IMAGE))
    assert UNKNOWN in msg

    # invalid fields: the message names the field
    msg = c.fail("INVALID_ARGUMENT", "RunPodSandbox", config={"metadata": {"name": "x"}})
    assert "namespace" in msg or "uid" in msg, msg
    msg = c.fail("INVALID_ARGUMENT", "RunPodSandbox", config={})
    assert "metadata" in msg, msg
    msg = c.fail("INVALID_ARGUMENT", "RunPodSandbox", config={
        "metadata": {"name": "../x", "namespace": "d", "uid": "u"}})
    assert "name" in msg, msg
    assert "container_id" in c.fail("INVALID_ARGUMENT", "ContainerStatus", container_id="")
    assert "container_id" in c.fail("INVALID_ARGUMENT", "StartContainer")
    assert "pod_sandbox_id" in c.fail("INVALID_ARGUMENT", "StopPodSandbox")

    pod, pcfg = c.run_pod("dup")
    msg = c.fail("ALREADY_EXISTS", "RunPodSandbox", config=pcfg)
    assert pod in msg, msg
    # another attempt is another pod
    pod2, _ = c.run_pod("dup", attempt=1)
    assert pod2 != pod
    msg = c.fail("INVALID_ARGUMENT", "CreateContainer", pod_sandbox_id=pod, sandbox_config=pcfg,
                 config={"image": {"image": IMAGE}, "command": TRUE})
    assert "metadata" in msg, msg
    msg = c.fail("INVALID_ARGUMENT", "CreateContainer", pod_sandbox_id=pod, sandbox_config=pcfg,
                 config=container_config("noimage", TRUE, ""))
    assert "image" in msg, msg
    cid = c.create(pod, pcfg, "a", ["/bin/sh", "-c", "sleep 1000"], IMAGE)
    msg = c.fail("ALREADY_EXISTS", "CreateContainer", pod_sandbox_id=pod, sandbox_config=pcfg,
                 config=container_config("a", TRUE, IMAGE))
    assert cid in msg, msg
    cid2 = c.create(pod, pcfg, "a", TRUE, IMAGE, attempt=1)
    assert cid2 != cid
    msg = c.fail("NOT_FOUND", "CreateContainer", pod_sandbox_id=pod, sandbox_config=pcfg,
                 config=container_config("b", TRUE, "not/pulled:v9"))
    assert "not/pulled:v9" in msg, msg
    c.fail("FAILED_PRECONDITION", "ExecSync", container_id=cid, cmd=TRUE, timeout=5)
    c.call("StartContainer", container_id=cid)
    c.fail("FAILED_PRECONDITION", "StartContainer", container_id=cid)
    c.call("StopContainer", container_id=cid, timeout=0)
    c.fail("FAILED_PRECONDITION", "StartContainer", container_id=cid)
    s = c.status(cid)
    assert (c.state_name(s.state), s.exit_code) == ("CONTAINER_EXITED", 137), s

    # methods nobody serves
    with pytest.raises(grpc.RpcError) as e:
        c.raw(RT + "NoSuchMethod", b"")
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED, e.value
    with pytest.raises(grpc.RpcError) as e:
        c.raw("/no.such.Service/Version", b"")
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED, e.value
    assert c.call("Version").runtime_name == "berth"
    c.close()


def start_stubborn(c, pod, pcfg, name):
    """A running container that ignores SIGTERM (a stop waits its whole timeout, then
    SIGKILLs), once its trap is in place (it says so in its log)."""
    cid = c.create(pod, pcfg, name,
                   ["/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"],
                   IMAGE)
    c.call("StartContainer", container_id=cid)
    log = c.wait_state(cid, "CONTAINER_RUNNING").log_path
    wait_until(lambda: Path(log).exists() and b"ready" in log_lines(log_records(log), "stdout"),
               10, f"{name}'s trap")
    return cid


def test_deadlines_and_long_calls_do_not_block_others(bd):
    bd.start()
    c = cri(bd)
    pod, pcfg = c.run_pod("p")
    cid = start_stubborn(c, pod, pcfg, "stubborn")
    # StopContainer's own "timeout" field (10 s before the SIGKILL) against the call's
    # deadline (1 s: grpc-timeout): the client gets DeadlineExceeded in time
    t0 = time.monotonic()
    c.fail("DEADLINE_EXCEEDED", "StopContainer", container_id=cid, timeout=10, deadline=1)
    assert time.monotonic() - t0 < 3
    # the server works on: other calls meanwhile, from this channel and others
    other = cri(bd)
    t1 = time.monotonic()
    for _ in range(20):
        assert other.call("Version").runtime_name == "berth"
        c.status(cid)
    assert time.monotonic() - t1 < 5
    other.close()
    # a StopContainer with a timeout of 3 s on another channel: a long call on a worker, while
    # 20 clients get quick answers
    stopper = cri(bd)
    cid2 = start_stubborn(c, pod, pcfg, "stubborn2")
    done = {}

    def stop():
        t = time.monotonic()
        stopper.call("StopContainer", container_id=cid2, timeout=3)
        done["stop"] = time.monotonic() - t

    t = threading.Thread(target=stop)
    t.start()
    time.sleep(0.3)

    def busy():
        with cri(bd) as cl:
            for _ in range(10):
                cl.call("Version")
                cl.status(cid2)

    t2 = time.monotonic()
    errors = in_threads(*[busy] * 20)
    busy_time = time.monotonic() - t2
    assert not errors, errors
    assert "stop" not in done and busy_time < 3, f"400 calls took {busy_time:.1f} s"
    t.join()
    assert 2.5 < done["stop"] < 15, done
    # the first stop (whose client gave up) went on to its SIGKILL too
    for x in (cid, cid2):
        s = c.wait_state(x, "CONTAINER_EXITED", timeout=30)
        assert s.exit_code == 137, s
    stopper.close()
    c.close()


# --- many clients -----------------------------------------------------------------------------


def test_20_concurrent_clients(bd, capsys):
    bd.start()
    rounds = 3
    made = []

    def client(k):
        with cri(bd) as c:
            for i in range(rounds):
                pod, pcfg = c.run_pod(f"c{k}-{i}", namespace=f"ns{k}")
                cid = c.create(pod, pcfg, "main", POLITE, IMAGE)
                start_polite(c, cid)
                r = c.call("ExecSync", container_id=cid, timeout=20,
                           cmd=["/bin/sh", "-c", f"echo {k}-{i}"])
                assert (r.exit_code, r.stdout) == (0, f"{k}-{i}\n".encode()), r
                c.call("StopContainer", container_id=cid, timeout=10)
                s = c.status(cid)
                assert (c.state_name(s.state), s.exit_code) == ("CONTAINER_EXITED", 0), s
                c.call("RemoveContainer", container_id=cid)
                c.call("StopPodSandbox", pod_sandbox_id=pod)
                c.call("RemovePodSandbox", pod_sandbox_id=pod)
                made.append(pod)

    t0 = time.monotonic()
    errors = in_threads(*[lambda k=k: client(k) for k in range(20)])
    took = time.monotonic() - t0
    assert not errors, errors[:3]
    assert len(set(made)) == 20 * rounds
    with cri(bd) as c:
        assert list(c.call("ListPodSandbox").items) == []
        assert list(c.call("ListContainers").containers) == []
    assert bd.problems() == []
    with capsys.disabled():
        print(f"\n[cri] 20 clients x {rounds} pod lifecycles (with ExecSync) in {took:.1f} s")


# --- malformed input --------------------------------------------------------------------------


class H2Client:
    """A raw HTTP/2 connection (python3-h2) for requests grpcio would never send."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(str(path))
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.flush()

    def flush(self):
        """Send what the session has queued; False once the peer has gone."""
        data = self.conn.data_to_send()
        try:
            if data:
                self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def request(self, path, body, headers=()):
        """One gRPC call with body as the whole DATA payload (prefix included); returns the
        stream's outcome: {"headers", "trailers", "data", "reset", "goaway", "closed"}."""
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"),
                                     (":path", path), (":authority", "localhost"),
                                     ("content-type", "application/grpc"), ("te", "trailers"),
                                     *headers])
        self.conn.send_data(sid, body, end_stream=True)
        self.flush()
        return self.read(sid)

    def read(self, sid=None, timeout=10):
        out = {"headers": None, "trailers": None, "data": b"", "reset": None, "goaway": None,
               "closed": False}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                out["closed"] = True
                break
            try:
                evs = self.conn.receive_data(chunk)
            except h2.exceptions.ProtocolError as e:
                out["goaway"] = f"client-side protocol error: {e}"
                break
            for ev in evs:
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    out["headers"] = dict((k.decode(), v.decode()) for k, v in ev.headers)
                elif isinstance(ev, h2.events.TrailersReceived) and ev.stream_id == sid:
                    out["trailers"] = dict((k.decode(), v.decode()) for k, v in ev.headers)
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    out["data"] += ev.data
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    out["reset"] = ev.error_code
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    out["goaway"] = ev.error_code
            if not self.flush():
                out["closed"] = True
                break
            if sid is not None and (out["trailers"] or out["reset"] is not None or
                                    (out["headers"] and "grpc-status" in out["headers"])):
                break
            if out["goaway"] is not None:
                break
        return out

    def close(self):
        self.sock.close()


def grpc_status(out):
    """The grpc-status of a finished call (trailers, or a trailers-only response)."""
    for part in ("trailers", "headers"):
        if out[part] and "grpc-status" in out[part]:
            return int(out[part]["grpc-status"]), out[part].get("grpc-message", "")
    return None, None


def frame(ftype, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid) + payload


def prefixed(body, compressed=0, length=None):
    return bytes([compressed]) + struct.pack(">I", len(body) if length is None else length) + body


def assert_refused(out, what):
    code, msg = grpc_status(out)
    ok = (code is not None and code != 0) or out["reset"] is not None or \
        out["goaway"] is not None or out["closed"]
    assert ok, f"{what}: no error status, reset or close: {out}"
    return code, msg


def test_malformed_input_never_crashes(bd):
    bd.start()
    c = cri(bd)
    version = c.request("Version", {"version": "v1"}).SerializeToString()

    # the raw client itself works: a well-formed call answers OK
    h = H2Client(bd.socket)
    out = h.request(RT + "Version", prefixed(version))
    assert grpc_status(out)[0] == 0 and out["headers"][":status"] == "200", out
    assert len(out["data"]) > 5

    # bad gRPC prefixes
    code, msg = assert_refused(h.request(RT + "Version", prefixed(version, compressed=1)),
                               "a compressed flag without grpc-encoding")
    assert code in (None, 3, 12, 13), (code, msg)
    assert_refused(h.request(RT + "Version", prefixed(version, length=len(version) + 100)),
                   "a length larger than the body")
    assert_refused(h.request(RT + "Version", prefixed(version)[:3]), "a cut prefix")
    assert_refused(h.request(RT + "Version", prefixed(b"x" * 100, length=1 << 30)),
                   "a length of 1 GiB")
    h.close()

    # protobuf bodies of garbage: InvalidArgument (or Internal), never a crash
    h = H2Client(bd.socket)
    for body in (b"\xff" * 40, b"\x0a\xff\xff\xff\xff\x0f", bytes(range(256)),
                 b"\x12\x05ab", b"\x08" + b"\xff" * 11):
        for method in ("Version", "RunPodSandbox", "CreateContainer", "ListContainers",
                       "ExecSync"):
            out = h.request(RT + method, prefixed(body))
            if out["goaway"] is not None or out["closed"]:
                h.close()
                h = H2Client(bd.socket)
                continue
            code, msg = grpc_status(out)
            assert code not in (None, 0), (method, body, out)  # none of them parses
    h.close()

    # bad HTTP/2 frames after the preface: GOAWAY or a closed connection
    bad_frames = [
        frame(0x0, 0x1, 0, b"data on stream 0"),            # DATA on stream 0
        frame(0x4, 0x0, 0, b"\x00\x01\x00"),                # SETTINGS, length not 6k
        frame(0x1, 0x5, 1, b"\xff\xff\xff\xff\xff\xff"),    # HEADERS, HPACK garbage
        frame(0x8, 0x0, 0, b"\x00\x00\x00\x00"),            # WINDOW_UPDATE of 0
        frame(0x6, 0x0, 0, b"\x00" * 3),                    # PING of 3 bytes
        b"\x00\xff\xff\x00\x00\x00\x00\x00\x01" + b"x" * 64,  # a frame longer than allowed
    ]
    for i, raw in enumerate(bad_frames):
        h = H2Client(bd.socket)
        h.sock.sendall(raw)
        out = h.read(timeout=10)
        assert out["goaway"] is not None or out["closed"], f"bad frame {i}: {out}"
        h.close()
    # not HTTP/2 at all after the preface
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(bd.socket))
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"GET / HTTP/1.1\r\n\r\n" * 10)
    try:
        while s.recv(65536):
            pass
    except ConnectionResetError:
        pass
    s.close()
    # a preface cut short, then the peer gone
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(bd.socket))
    s.sendall(b"PRI * HTTP/2.0\r\n")
    s.close()

    assert bd.running(), bd.log()[-3000:]
    assert c.call("Version").runtime_name == "berth"
    with cri(bd) as fresh:
        assert fresh.call("Version").runtime_name == "berth"
    c.close()


# --- events and the JSON API beside gRPC -------------------------------------------------------


def test_container_events_stream(bd):
    bd.start()
    c = cri(bd)
    events = EventReader(c)
    second = EventReader(cri(bd))  # every subscriber gets every event
    pod, pcfg = c.run_pod("ev")
    cid = c.create(pod, pcfg, "main", POLITE, IMAGE)
    start_polite(c, cid)
    c.call("StopContainer", container_id=cid, timeout=10)
    c.call("RemoveContainer", container_id=cid)
    for reader in (events, second):
        reader.wait(lambda e: e.container_id == cid and
                    e.container_event_type == c.mods.CONTAINER_DELETED_EVENT)
        assert events_of(reader.events, cid, c.mods) == [
            "CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT", "CONTAINER_STOPPED_EVENT",
            "CONTAINER_DELETED_EVENT"]
    stopped = [e for e in events.events if e is not None and e.container_id == cid and
               e.container_event_type == c.mods.CONTAINER_STOPPED_EVENT][0]
    assert stopped.pod_sandbox_status.id == pod
    st = {s.id: s for s in stopped.containers_statuses}
    assert cid in st and st[cid].exit_code == 0, stopped
    # a subscriber that goes away does not disturb the others
    second.close()
    second.c.close()
    cid2 = c.create(pod, pcfg, "again", TRUE, IMAGE)
    events.wait(lambda e: e.container_id == cid2)
    events.close()
    c.close()


def test_json_api_beside_grpc(bd):
    bd.start()
    c = cri(bd)
    j = bd.client()
    assert j.ok("version")["runtime_name"] == "berth"
    pod, pcfg = c.run_pod("both")
    assert [p["id"] for p in j.ok("pod.list")["pods"]] == [pod]
    cid = c.create(pod, pcfg, "g", POLITE, IMAGE)
    # a container made through the JSON API shows in CRI's lists, and the reverse
    jid = j.create(pod, "j", ["/bin/sh", "-c", "sleep 1000"])
    assert sorted(x.id for x in c.call("ListContainers").containers) == sorted([cid, jid])
    assert j.status(cid)["state"] == "created"
    # both protocols at once on many connections
    def grpc_user():
        with cri(bd) as cl:
            for _ in range(30):
                cl.call("ListContainers")

    def json_user():
        cl = bd.client()
        for _ in range(30):
            cl.ok("container.list")
        cl.close()

    errors = in_threads(*(grpc_user, json_user) * 5)
    assert not errors, errors
    j.ok("container.remove", container_id=jid)
    c.call("RemoveContainer", container_id=cid)
    assert list(c.call("ListContainers").containers) == []
    j.close()
    c.close()
    assert mounts_under(bd.root / "containers") == []
    assert pid_alive(bd.pid)
