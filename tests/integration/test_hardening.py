"""Hardening (issue 3): capabilities, hooks, and the defences against runc's known escapes, each
tried for real from inside a container."""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from conftest import Runtime, build_bundle, describe, expect_error, wait_for

pytestmark = pytest.mark.skipif(
    os.path.basename(os.environ.get("BERTH_RUNTIME", "berth")).startswith(("crun", "runc")),
    reason="berth's own hardening behaviour",
)

DOCKER_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
DOCKER_MASK = "00000000a80425fb"


def status_fields(text):
    """Lines 'Name:\\tvalue' of /proc/self/status → dict."""
    fields = {}
    for line in text.splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields


def caps_config(sets):
    return {name: list(sets.get(name, [])) for name in
            ("bounding", "effective", "permitted", "inheritable", "ambient")}


# --- capabilities ----------------------------------------------------------------------------


def test_spec_writes_docker_default_capabilities(rt, tmp_path):
    """Docker's set without CAP_MKNOD: berth has no device cgroup to make the nodes a container
    creates unusable."""
    rt.ok("spec", cwd=tmp_path)
    caps = json.loads((tmp_path / "config.json").read_text())["process"]["capabilities"]
    for name in ("bounding", "effective", "permitted"):
        assert sorted(caps[name]) == sorted(set(DOCKER_CAPS) - {"CAP_MKNOD"})
    assert caps.get("inheritable", []) == []  # CVE-2022-29162
    assert caps.get("ambient", []) == []


def test_default_capabilities_make_no_device_nodes(rt, bundle, tmp_path):
    """With the capabilities `spec` writes, a container's root cannot make a device node (a
    block device of the host's disk, say) in its /dev, but FIFOs still work."""
    rt.ok("spec", cwd=tmp_path)
    spec = json.loads((tmp_path / "config.json").read_text())
    bundle.config["process"]["capabilities"] = spec["process"]["capabilities"]
    bundle.save()
    result = rt.sh(bundle, "mknod /dev/disk b 8 0 && echo MKNOD-WORKED; "
                           "mknod /tmp/fifo p && echo FIFO-WORKED", check=False)
    assert "MKNOD-WORKED" not in result.stdout, result.stdout
    assert "FIFO-WORKED" in result.stdout, result.stdout + result.stderr


def test_default_capabilities_inside(rt, bundle):
    bundle.config["process"]["capabilities"] = caps_config(
        {"bounding": DOCKER_CAPS, "effective": DOCKER_CAPS, "permitted": DOCKER_CAPS})
    bundle.save()
    fields = status_fields(rt.sh(bundle, "cat /proc/self/status").stdout)
    assert fields["CapEff"] == DOCKER_MASK
    assert fields["CapPrm"] == DOCKER_MASK
    assert fields["CapBnd"] == DOCKER_MASK
    assert fields["CapInh"] == "0000000000000000"
    assert fields["CapAmb"] == "0000000000000000"


def test_capabilities_for_a_user_with_ambient(rt, bundle):
    one = ["CAP_NET_BIND_SERVICE"]
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.config["process"]["capabilities"] = caps_config(
        {"bounding": one + ["CAP_KILL"], "effective": one, "permitted": one,
         "inheritable": one, "ambient": one})
    bundle.save()
    result = rt.sh(bundle, "id -u; cat /proc/self/status")
    assert result.stdout.splitlines()[0] == "1000"
    fields = status_fields(result.stdout)
    assert fields["CapAmb"] == "0000000000000400"
    assert fields["CapEff"] == "0000000000000400"
    assert fields["CapBnd"] == "0000000000000420"


def test_empty_capabilities_drop_everything(rt, bundle):
    bundle.config["process"]["capabilities"] = {}
    bundle.save()
    result = rt.sh(bundle, "cat /proc/self/status; mknod /tmp/n c 1 3 && echo MKNOD-WORKED",
                   check=False)
    fields = status_fields(result.stdout)
    assert fields["CapEff"] == "0000000000000000"
    assert fields["CapBnd"] == "0000000000000000"
    assert "MKNOD-WORKED" not in result.stdout


def test_unknown_capability_is_refused(rt, bundle, tmp_path):
    bundle.config["process"]["capabilities"] = caps_config({"bounding": ["CAP_NOT_A_CAP"]})
    bundle.save()
    result = rt("run", "--bundle", bundle.path, rt.new_id())
    expect_error(rt, result, "process.capabilities.bounding[0]")
    assert "CAP_NOT_A_CAP" in result.stderr


def test_exec_gets_the_container_capabilities(rt, bundle):
    bundle.config["process"]["capabilities"] = caps_config(
        {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]})
    bundle.config["process"]["noNewPrivileges"] = True
    bundle.save()
    cid, _ = rt.create_running(bundle)
    try:
        fields = status_fields(rt.ok("exec", cid, "/bin/cat", "/proc/self/status").stdout)
        assert fields["CapEff"] == "0000000000000020"
        assert fields["CapBnd"] == "0000000000000020"
        assert fields["NoNewPrivs"] == "1"
    finally:
        rt.destroy(cid)


# --- hooks -----------------------------------------------------------------------------------

HOOK_SCRIPT = """#!/bin/sh
state=$(cat)
status=$(echo "$state" | sed 's/.*"status":"\\([a-z]*\\)".*/\\1/')
id=$(echo "$state" | sed 's/.*"id":"\\([^"]*\\)".*/\\1/')
echo "$1 $status $id $(readlink /proc/self/ns/mnt)" >> {log}
exit ${{HOOK_EXIT:-0}}
"""


@pytest.fixture
def hook(tmp_path):
    log = tmp_path / "hooks.log"
    script = tmp_path / "hook.sh"
    script.write_text(HOOK_SCRIPT.format(log=log))
    script.chmod(0o755)

    def make(name, **extra):
        entry = {"path": str(script), "args": ["hook.sh", name]}
        entry.update(extra)
        return entry

    make.log = log
    make.lines = lambda: log.read_text().splitlines() if log.exists() else []
    return make


def test_hooks_run_in_order_with_state(rt, bundle, hook):
    kinds = ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]
    bundle.config["hooks"] = {kind: [hook(kind)] for kind in kinds}
    bundle.config["hooks"]["startContainer"] = [
        {"path": "/bin/sh", "args": ["sh", "-c", "cat > /tmp/start-state; hostname >> /tmp/start-state"]}
    ]
    bundle.config["process"]["args"] = ["/bin/sh", "-c", "cat /tmp/start-state; sleep 100"]
    bundle.save()
    cid = rt.new_id()
    with open(bundle.path / "out", "w+") as out:
        rt.create(bundle, cid, stdout=out)
        assert [line.split()[0] for line in hook.lines()] == \
            ["prestart", "createRuntime", "createContainer"]
        rt.start(cid)
        wait_for(lambda: "berth" in (bundle.path / "out").read_text(), 10, what="startContainer")
        rt.ok("delete", "--force", cid)
        start_state = (bundle.path / "out").read_text()
    lines = [line.split() for line in hook.lines()]
    assert [line[0] for line in lines] == kinds
    assert [line[1] for line in lines] == ["creating", "creating", "creating", "running", "stopped"]
    assert all(line[2] == cid for line in lines)
    host_mnt = os.readlink("/proc/self/ns/mnt")
    # runtime namespace for all but createContainer, which runs in the container's
    assert [line[3] == host_mnt for line in lines] == [True, True, False, True, True]
    # startContainer ran inside the container (its hostname) and read the state
    assert '"status":"created"' in start_state and f'"id":"{cid}"' in start_state


def test_failing_create_hook_fails_and_cleans_up(rt, bundle, hook):
    bundle.config["hooks"] = {
        "createRuntime": [{"path": "/bin/false"}],
        "poststop": [hook("poststop")],
    }
    bundle.save()
    result = rt("run", "--bundle", bundle.path, rt.new_id())
    expect_error(rt, result, "hooks.createRuntime[0]")
    assert "exit status 1" in result.stderr
    # the spec's lifecycle still reaches poststop
    assert [line.split()[:2] for line in hook.lines()] == [["poststop", "stopped"]]


def test_hook_timeout(rt, bundle):
    bundle.config["hooks"] = {"createContainer": [
        {"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]}
    bundle.save()
    result = rt("run", "--bundle", bundle.path, rt.new_id(), timeout=15)
    expect_error(rt, result, "hooks.createContainer[0]")
    assert "timed out after 1 s" in result.stderr


def test_failing_start_container_hook_fails_start(rt, bundle):
    bundle.config["hooks"] = {"startContainer": [{"path": "/bin/false"}]}
    bundle.set_args(["/bin/sleep", "100"])
    cid = rt.new_id()
    rt.create(bundle, cid)
    result = rt("start", cid)
    expect_error(rt, result, "hooks.startContainer[0]")
    rt.wait_status(cid, "stopped")
    rt.ok("delete", cid)


def test_failing_poststart_hook_only_warns(rt, bundle):
    bundle.config["hooks"] = {"poststart": [{"path": "/bin/false"}]}
    bundle.save()
    result = rt.sh(bundle, "echo still-ran")
    assert "still-ran" in result.stdout
    assert "hooks.poststart[0]" in result.stderr and "warning" in result.stderr


def test_bad_hooks_are_refused(rt, bundle):
    for hooks, needle in [
        ({"prestart": [{"path": "relative"}]}, "hooks.prestart[0].path"),
        ({"poststop": [{"path": "/bin/true", "timeout": 0}]}, "hooks.poststop[0].timeout"),
        ({"createRuntime": "x"}, "hooks.createRuntime"),
    ]:
        bundle.config["hooks"] = hooks
        bundle.save()
        expect_error(rt, rt("run", "--bundle", bundle.path, rt.new_id()), needle)


# --- CVE-2019-5736: /proc/self/exe ----------------------------------------------------------


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_init_exe_is_a_protected_view(rt, bundle):
    before = sha256(rt.binary)
    bundle.set_args(["/bin/sleep", "100"])
    cid = rt.new_id()
    pid = rt.create(bundle, cid)["pid"]
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
        # a read-only overlay view of the binary (or, without overlayfs, a sealed memfd copy)
        assert exe != os.path.realpath(rt.binary), exe
        assert exe == "/" + os.path.basename(rt.binary) or exe.startswith("/memfd:"), exe
        # the attack: open the runtime through the init's exe and write to it
        try:
            fd = os.open(f"/proc/{pid}/exe", os.O_WRONLY)
        except OSError:
            pass
        else:
            try:
                with pytest.raises(OSError):
                    os.write(fd, b"owned")
            finally:
                os.close(fd)
        # from inside the container (with every capability root has): writing fails
        result = rt("exec", cid, "/bin/sh", "-c",
                    "(echo owned >> /proc/1/exe) 2>/dev/null && echo WROTE; echo tried")
        assert "tried" in result.stdout and "WROTE" not in result.stdout
    finally:
        rt.ok("delete", "--force", cid)
    assert sha256(rt.binary) == before


def copy_with_libraries(binary, rootfs):
    """Gives the rootfs the dynamic loader and libraries binary needs, so the kernel can run the
    runtime inside the container when a script's interpreter is /proc/self/exe."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        path = line.split("=>")[-1].split("(")[0].strip()
        if path.startswith("/"):
            dest = rootfs / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(os.path.realpath(path), dest)


def test_shebang_to_proc_self_exe_cannot_overwrite_the_runtime(rt, bundle, tmp_path, mark):
    # the attack is run against a copy: if the defence failed, only the copy is damaged
    binary = tmp_path / "berth-runtime-copy"
    shutil.copy(rt.binary, binary)
    before = sha256(binary)
    victim = Runtime(binary, rt.root, mark)
    copy_with_libraries(binary, bundle.rootfs)
    os.mkfifo(bundle.rootfs / "tmp/fifo")
    evil = bundle.rootfs / "evil"
    # the entrypoint's interpreter is /proc/self/exe: the kernel runs whatever the runtime's init
    # runs from, inside the container; it then blocks opening the FIFO given as its --log
    evil.write_text("#!/proc/self/exe --log=/tmp/fifo\n")
    evil.chmod(0o755)
    bundle.set_args(["/evil"])
    bundle.remove_namespace("pid")  # so the attacker outlives the runtime's exit
    bundle.save()
    cid = victim.new_id()
    victim.ok("create", "--bundle", bundle.path, cid)
    pid = victim.state(cid)["pid"]
    victim.ok("start", cid)
    # runc CVE-2019-5736: hold an fd on the runtime's exe while it runs, write through it after
    attack = """
        victim=/proc/%d
        exec 3< $victim/exe
        echo "GOT $(readlink /proc/self/fd/3)"
        cat /tmp/fifo > /dev/null
        # until the runtime has exited (it stays a zombie: its reaper is outside the container)
        while [ -e $victim ] && ! grep -q "^State:.Z" $victim/status; do sleep 0.05; done
        (echo owned >> /proc/self/fd/3) 2>/dev/null && echo WROTE
        echo tried""" % pid
    try:
        result = victim("exec", cid, "/bin/sh", "-c", attack)
    finally:
        victim("delete", "--force", cid)
    # the attack reached the runtime's exe: its protected view, not the copy on the host
    got = [line for line in result.stdout.splitlines() if line.startswith("GOT ")]
    assert got and got[0] != f"GOT {binary}" and "berth-runtime" in got[0], describe(result)
    assert "tried" in result.stdout and "WROTE" not in result.stdout, describe(result)
    assert sha256(binary) == before


# --- CVE-2024-21626: leaked fds and cwd -------------------------------------------------------


def test_only_stdio_and_preserved_fds_are_open(rt, bundle, tmp_path):
    result = rt.sh(bundle, "ls /proc/self/fd")
    # ls itself opens one fd for the directory it lists
    assert sorted(int(x) for x in result.stdout.split()) == [0, 1, 2, 3]
    extra = open(tmp_path / "preserved", "w+")
    try:
        bundle.set_args(["/bin/sh", "-c", "ls /proc/self/fd; echo via-fd3 >&3"])
        result = rt("run", "--bundle", bundle.path, "--preserve-fds", "1", rt.new_id(),
                    fd3=extra.fileno())
        assert result.returncode == 0, result.stderr
        assert sorted(int(x) for x in result.stdout.split()) == [0, 1, 2, 3, 4]
        assert (tmp_path / "preserved").read_text() == "via-fd3\n"
    finally:
        extra.close()


@pytest.mark.parametrize("cwd", ["/proc/self/fd/5", "/proc/self/cwd", "/proc/1/root"])
def test_magic_link_cwd_is_refused(rt, bundle, cwd):
    bundle.config["process"]["cwd"] = cwd
    bundle.save()
    result = rt("run", "--bundle", bundle.path, rt.new_id())
    expect_error(rt, result, "process.cwd")


# --- CVE-2021-30465: mount targets -------------------------------------------------------------


@pytest.mark.parametrize("link", ["/", "../../../../../../../..", "/../../.."])
def test_symlinked_mount_target_stays_in_the_rootfs(rt, bundle, tmp_path, link):
    (bundle.rootfs / "mnt-link").symlink_to(link)
    bundle.add_mount("/mnt-link/berth-escape", "tmpfs", "tmpfs")
    bundle.save()
    result = rt.sh(bundle, "grep -c berth-escape /proc/self/mountinfo", check=False)
    # either refused (a relative link climbing out) or mounted inside the rootfs
    host_target = Path("/berth-escape")
    assert not host_target.exists()
    if result.returncode == 0:
        assert (bundle.rootfs / "berth-escape").is_dir()
    else:
        expect_error(rt, result, "mounts[")


# --- CVE-2019-16884: a fake /proc ------------------------------------------------------------


def test_sysctl_is_not_written_through_a_fake_proc(rt, bundle, tmp_path):
    fake = tmp_path / "fakeproc"
    (fake / "sys/net/ipv4").mkdir(parents=True)
    target = fake / "sys/net/ipv4/ip_forward"
    target.write_text("0\n")
    bundle.add_mount("/proc", "bind", fake, ["rbind"])
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    bundle.save()
    result = rt("run", "--bundle", bundle.path, rt.new_id())
    expect_error(rt, result, "linux.sysctl")
    assert "not procfs" in result.stderr
    assert target.read_text() == "0\n"


# --- masked and read-only paths cannot be undone --------------------------------------------


def test_masked_and_readonly_paths_stay(rt, bundle):
    bundle.config["process"]["capabilities"] = caps_config(
        {"bounding": DOCKER_CAPS, "effective": DOCKER_CAPS, "permitted": DOCKER_CAPS})
    bundle.save()
    result = rt.sh(bundle, "umount /proc/timer_list 2>&1; umount /proc/sys 2>&1; "
                           "mount -o remount,rw /proc/sys 2>&1; "
                           "echo timer_list=$(wc -c < /proc/timer_list); "
                           "(echo x > /proc/sys/kernel/domainname) 2>&1; "
                           "(touch /sys/berth) 2>&1; echo done", check=False)
    out = result.stdout
    assert "done" in out
    assert "timer_list=0" in out  # still masked: /dev/null
    assert out.count("Read-only file system") == 2  # /proc/sys and /sys stayed read-only


# --- seccomp ---------------------------------------------------------------------------------

DEFAULT_PROFILE = Path(__file__).resolve().parents[2] / "runtime" / "seccomp-default.json"


def test_default_seccomp_profile(rt, bundle):
    bundle.config["linux"]["seccomp"] = json.loads(DEFAULT_PROFILE.read_text())
    bundle.config["process"]["capabilities"] = caps_config(
        {"bounding": DOCKER_CAPS, "effective": DOCKER_CAPS, "permitted": DOCKER_CAPS})
    bundle.save()
    result = rt.sh(bundle, "cat /proc/self/status; unshare -m true 2>&1; "
                           "ls /bin/busybox && echo normal-work", check=False)
    fields = status_fields(result.stdout)
    assert fields["Seccomp"] == "2" and fields["Seccomp_filters"] == "1"
    assert "Operation not permitted" in result.stdout  # unshare is outside the allow-list
    assert "normal-work" in result.stdout


@pytest.mark.parametrize("nnp", [False, True])
def test_seccomp_errno_ret(rt, bundle, nnp):
    bundle.config["process"]["noNewPrivileges"] = nnp
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}],
    }
    bundle.save()
    result = rt.sh(bundle, "mkdir /tmp/x 2>&1; grep Seccomp: /proc/self/status", check=False)
    assert "No message of desired type" in result.stdout  # strerror(42), ENOMSG
    assert "Seccomp:\t2" in result.stdout


def test_exec_gets_the_seccomp_filter(rt, bundle):
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}],
    }
    bundle.save()
    cid, _ = rt.create_running(bundle)
    try:
        result = rt("exec", cid, "/bin/sh", "-c", "mkdir /tmp/y 2>&1; grep Seccomp: /proc/self/status")
        assert "No message of desired type" in result.stdout
        assert "Seccomp:\t2" in result.stdout
    finally:
        rt.destroy(cid)


def test_bad_seccomp_is_refused(rt, bundle):
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOPE"}],
    }
    bundle.save()
    expect_error(rt, rt("run", "--bundle", bundle.path, rt.new_id()),
                 "linux.seccomp.syscalls[0].action")


def test_seccomp_notify_listener_receives_the_fd(rt, bundle, tmp_path):
    listener_path = tmp_path / "agent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(listener_path))
    server.listen(1)
    server.settimeout(15)
    received = {}

    def agent():
        conn, _ = server.accept()
        with conn:
            msg, fds, _, _ = socket.recv_fds(conn, 65536, 4)
            chunks = [msg]
            while True:
                more = conn.recv(65536)
                if not more:
                    break
                chunks.append(more)
            received["state"] = json.loads(b"".join(chunks))
            received["fds"] = fds
            for fd in fds:  # closing the listener makes the trapped call fail with ENOSYS
                received["fd_type"] = os.readlink(f"/proc/self/fd/{fd}")
                os.close(fd)

    thread = threading.Thread(target=agent)
    thread.start()
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": str(listener_path),
        "listenerMetadata": "berth-test",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
    }
    bundle.save()
    cid = rt.new_id()
    try:
        result = rt("run", "--bundle", bundle.path, cid)
    finally:
        thread.join(20)
        server.close()
    state = received["state"]
    assert state["fds"] == ["seccompFd"]
    assert state["metadata"] == "berth-test"
    assert state["state"]["id"] == cid and state["pid"] > 0
    assert len(received["fds"]) == 1 and "seccomp" in received["fd_type"]
    assert result.returncode == 0, describe(result)


# --- LSMs this host does not have: refused, not pretended -------------------------------------


@pytest.mark.parametrize("field,value", [
    ("apparmorProfile", "docker-default"),
    ("selinuxLabel", "system_u:system_r:container_t:s0:c1,c2"),
])
def test_lsm_labels_are_refused(rt, bundle, field, value):
    bundle.config["process"][field] = value
    bundle.save()
    result = rt("run", "--bundle", bundle.path, rt.new_id())
    expect_error(rt, result, f"process.{field}")
    assert "hello from berth" not in result.stdout
    # and for exec -p as well
    bundle.config["process"].pop(field)
    bundle.save()
    cid, _ = rt.create_running(bundle)
    try:
        process = dict(bundle.config["process"], args=["/bin/true"])
        process[field] = value
        path = bundle.path / "process.json"
        path.write_text(json.dumps(process))
        expect_error(rt, rt("exec", "-p", path, cid), f"process.{field}")
    finally:
        rt.destroy(cid)


# --- user namespaces ---------------------------------------------------------------------------

USERNS_BASE = 100000


@pytest.fixture
def userns_bundle(mark):
    """A bundle whose root maps to host ids 100000-165535; the rootfs belongs to that range and
    its path is traversable by it, as a user-namespaced container's must be (runc's rule too).
    pytest's own temporary directories are private (0700), so it lives in one of its own."""
    top = Path(tempfile.mkdtemp(prefix="berth-userns-", dir="/tmp"))
    top.chmod(0o711)
    try:
        yield _make_userns_bundle(build_bundle(top / "bundle", mark), top)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _make_userns_bundle(bundle, top):
    mapping = [{"containerID": 0, "hostID": USERNS_BASE, "size": 65536}]
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    bundle.config["linux"]["uidMappings"] = mapping
    bundle.config["linux"]["gidMappings"] = mapping
    for dirpath, dirnames, filenames in os.walk(bundle.rootfs):
        for name in dirnames + filenames + [""]:
            os.lchown(os.path.join(dirpath, name), USERNS_BASE, USERNS_BASE)
    bundle.path.chmod(0o711)
    data = top / "data"
    data.mkdir()
    data.chmod(0o777)
    bundle.add_mount("/data", "bind", data, ["rbind", "rw"])
    bundle.data = data
    bundle.save()
    return bundle


def test_user_namespace_maps_root_to_an_unprivileged_range(rt, userns_bundle):
    result = rt.sh(userns_bundle, "id -u; cat /proc/self/uid_map /proc/self/gid_map; "
                                  "touch /data/made-inside; mkdir /data/dir; "
                                  "echo x > /dev/null && echo devnull-ok; "
                                  "mknod /tmp/node c 1 3 2>&1; cat /proc/self/status")
    lines = result.stdout.splitlines()
    assert lines[0] == "0"  # root inside
    assert lines[1].split() == ["0", str(USERNS_BASE), "65536"]
    assert lines[2].split() == ["0", str(USERNS_BASE), "65536"]
    assert "devnull-ok" in result.stdout  # the host's /dev/null, bind-mounted
    assert "Operation not permitted" in result.stdout  # no mknod in a user namespace
    # what the container's root creates belongs to the mapped ids on the host
    for name in ("made-inside", "dir"):
        st = os.lstat(userns_bundle.data / name)
        assert (st.st_uid, st.st_gid) == (USERNS_BASE, USERNS_BASE), name
    # its capabilities are the namespace's, not the host's: it cannot touch host-owned files
    fields = status_fields(result.stdout)
    assert fields["CapEff"] != "0000000000000000"


def test_user_namespace_root_cannot_write_host_owned_files(rt, userns_bundle):
    victim = userns_bundle.data.parent / "host-owned"
    victim.write_text("host\n")
    victim.chmod(0o644)  # owned by host root: unmapped inside
    userns_bundle.add_mount("/victim", "bind", victim, ["bind", "rw"])
    userns_bundle.save()
    result = rt.sh(userns_bundle, "(echo owned > /victim) 2>&1; ls -ln /victim", check=False)
    assert "Permission denied" in result.stdout or "Read-only" in result.stdout
    assert victim.read_text() == "host\n"
    assert " 65534 " in result.stdout  # host root shows as the overflow id


def test_exec_joins_the_user_namespace(rt, userns_bundle):
    cid, pid = rt.create_running(userns_bundle)
    try:
        inside = rt.ok("exec", cid, "/bin/sh", "-c",
                       "readlink /proc/self/ns/user; id -u; touch /data/by-exec").stdout.split()
        assert inside[0] == os.readlink(f"/proc/{pid}/ns/user")
        assert inside[0] != os.readlink("/proc/self/ns/user")
        assert inside[1] == "0"
        assert os.lstat(userns_bundle.data / "by-exec").st_uid == USERNS_BASE
    finally:
        rt.destroy(cid)


def test_user_namespace_needs_a_mapping_for_root(rt, bundle):
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    bundle.config["linux"]["uidMappings"] = [{"containerID": 1, "hostID": USERNS_BASE, "size": 10}]
    bundle.config["linux"]["gidMappings"] = [{"containerID": 1, "hostID": USERNS_BASE, "size": 10}]
    bundle.save()
    expect_error(rt, rt("run", "--bundle", bundle.path, rt.new_id()), "linux.uidMappings")


def test_user_namespace_without_mappings_is_refused(rt, bundle):
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    bundle.save()
    expect_error(rt, rt("run", "--bundle", bundle.path, rt.new_id()), "linux.uidMappings")


def test_idmapped_bind_mount(rt, userns_bundle):
    host_dir = userns_bundle.data.parent / "host-root-owned"
    host_dir.mkdir()
    host_dir.chmod(0o755)  # host root's: unwritable through a plain bind from the namespace
    (host_dir / "hostfile").write_text("host\n")
    userns_bundle.add_mount("/idm", "bind", host_dir, ["rbind", "rw", "idmap"])
    userns_bundle.add_mount("/plain", "bind", host_dir, ["rbind", "rw"])
    userns_bundle.save()
    result = rt.sh(userns_bundle, "stat -c '%u %n' /idm/hostfile /plain/hostfile; "
                                  "touch /idm/made-idm && echo idm-ok; "
                                  "(touch /plain/made-plain) 2>&1", check=False)
    assert "0 /idm/hostfile" in result.stdout  # host root is the container's root here
    assert "65534 /plain/hostfile" in result.stdout  # and unmapped without idmap
    assert "idm-ok" in result.stdout
    assert "Permission denied" in result.stdout
    assert os.lstat(host_dir / "made-idm").st_uid == 0  # stored as host root on disk
    assert not (host_dir / "made-plain").exists()


def test_idmap_needs_a_user_namespace(rt, bundle, tmp_path):
    bundle.add_mount("/idm", "bind", tmp_path, ["rbind", "idmap"])
    bundle.save()
    expect_error(rt, rt("run", "--bundle", bundle.path, rt.new_id()), "idmap")


# --- exec: the same defences ---------------------------------------------------------------------


def test_exec_sees_only_stdio(rt, bundle, tmp_path):
    cid, _ = rt.create_running(bundle)
    leaked = open(tmp_path / "leak", "w")  # open in the runtime's caller: must not reach inside
    try:
        result = rt("exec", cid, "/bin/ls", "/proc/self/fd", fd3=leaked.fileno())
        assert sorted(int(x) for x in result.stdout.split()) == [0, 1, 2, 3]  # 3: ls's own dir
        result = rt("exec", "--preserve-fds", "1", cid, "/bin/sh", "-c", "echo via-exec >&3",
                    fd3=leaked.fileno())
        assert result.returncode == 0, describe(result)
        leaked.flush()
        assert (tmp_path / "leak").read_text() == "via-exec\n"
    finally:
        leaked.close()
        rt.destroy(cid)


@pytest.mark.parametrize("cwd", ["/proc/self/fd/3", "/proc/1/cwd", "/proc/self/root"])
def test_exec_magic_link_cwd_is_refused(rt, bundle, cwd):
    cid, _ = rt.create_running(bundle)
    try:
        result = rt("exec", "--cwd", cwd, cid, "/bin/pwd")
        expect_error(rt, result, "process.cwd")
    finally:
        rt.destroy(cid)


def test_symlink_swapped_during_setup_cannot_move_a_mount_out(rt, bundle):
    """CVE-2021-30465's shape: while containers are set up, /mnt in the rootfs keeps being
    swapped (atomically, by rename) between symlinks to /a and /b. A runtime that resolved the
    target from the host would mount on the host's /a/x or /b/x; berth resolves it to an fd in
    the rootfs and mounts through that, so every container sees its tmpfs at /a/x or /b/x of
    its own root, and nothing appears on the host."""
    for d in ("a/x", "b/x"):
        (bundle.rootfs / d).mkdir(parents=True)
    mnt = bundle.rootfs / "mnt"
    mnt.symlink_to("/a")
    stop = threading.Event()

    def swap():
        target = "/b"
        while not stop.is_set():
            tmp = bundle.rootfs / ".mnt-next"
            tmp.symlink_to(target)
            os.rename(tmp, mnt)
            target = "/a" if target == "/b" else "/b"

    bundle.add_mount("/mnt/x", "tmpfs", "tmpfs", ["size=1m"])
    bundle.set_args(["/bin/sh", "-c", "grep -c ' /a/x \\| /b/x ' /proc/self/mountinfo"])
    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        for _ in range(25):
            result = rt("run", "--bundle", bundle.path, rt.new_id())
            assert result.returncode == 0, describe(result)
            assert result.stdout.strip() == "1", describe(result)  # its own mount, in view
    finally:
        stop.set()
        swapper.join()
    assert not Path("/a/x").exists() and not Path("/b/x").exists()
