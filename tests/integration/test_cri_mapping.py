"""The CRI -> OCI mapping (cri/ocispec.c) and the ImageService's credentials (cri/cri-image.c),
end to end through berthd: privileged containers, capabilities, seccomp profiles, a TARGET pid
namespace, devices, oom_score_adj; a pull from a registry behind basic auth with the request's
AuthConfig. Resource limits need cgroup v2 controllers: they are tested in the VM suite."""
import base64
import glob
import os
import subprocess

import grpc
from berthdtools import FIXTURES, IMAGE, PYTHON, bd, image_tar, node  # noqa: F401 (fixtures)
from critools import CriClient
from nettools import run

SLEEP = ["/bin/sh", "-c", "sleep 100000"]
NS = {"namespace_options": {"pid": "CONTAINER"}}


def ex(c, cid, *cmd):
    if cmd[0] != "/bin/sh":
        cmd = ("/bin/sh", "-c", " ".join(cmd))
    r = c.call("ExecSync", container_id=cid, cmd=list(cmd), timeout=10)
    return r.exit_code, r.stdout.decode(), r.stderr.decode()


def status_field(c, cid, key):
    code, out, _ = ex(c, cid, "/bin/sh", "-c", f"grep '^{key}:' /proc/self/status")
    assert code == 0
    return out.split()[1]


def start(c, pod, pcfg, name, **kw):
    cid = c.create(pod, pcfg, name, SLEEP, IMAGE, **kw)
    c.call("StartContainer", container_id=cid)
    return cid


def test_mapping(bd, tmp_path):
    bd.start()
    c = CriClient(bd.socket, log_root=bd.logs)
    pod, pcfg = c.run_pod("priv", linux={"security_context": {"privileged": True, **NS}})
    plain = start(c, pod, pcfg, "plain")
    assert status_field(c, plain, "Seccomp") == "2"  # the default profile
    assert status_field(c, plain, "CapEff") == "00000000a00425fb"  # the default set (no MKNOD)
    assert status_field(c, plain, "NoNewPrivs") == "0"  # kubelet's default (no_new_privs false)
    code, out, _ = ex(c, plain, "cat", "/proc/kcore")
    assert code != 0  # masked
    priv = start(c, pod, pcfg, "privd",
                 linux={"security_context": {"privileged": True, **NS}})
    assert status_field(c, priv, "Seccomp") == "0"
    assert int(status_field(c, priv, "CapEff"), 16) >= 0x1fffeffffff
    code, out, _ = ex(c, priv, "ls", "/dev")
    assert "kmsg" in out.split(), out
    # capabilities: drop ALL, add one
    capped = start(c, pod, pcfg, "capped", linux={"security_context": {
        "capabilities": {"drop_capabilities": ["ALL"], "add_capabilities": ["NET_BIND_SERVICE"]},
        "no_new_privs": True, **NS}})
    assert status_field(c, capped, "CapEff") == "0000000000000400"
    assert status_field(c, capped, "NoNewPrivs") == "1"
    # a Localhost seccomp profile that refuses mkdir
    prof = tmp_path / "no-mkdir.json"
    prof.write_text('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],'
                    '"action":"SCMP_ACT_ERRNO"}]}')
    local = start(c, pod, pcfg, "local", linux={"security_context": {
        "seccomp": {"profile_type": "Localhost", "localhost_ref": str(prof)}, **NS}})
    code, _, err = ex(c, local, "mkdir", "/tmp/x")
    assert code != 0 and "not permitted" in err, err
    # TARGET: the pid namespace of another container
    tgt = start(c, pod, pcfg, "tgt", linux={"security_context": {
        "namespace_options": {"pid": "TARGET", "target_id": plain}}})
    code, out, _ = ex(c, tgt, "cat", "/proc/1/cmdline")
    assert "sleep" in out.replace("\0", " "), out
    # a privileged container in a pod that is not
    pod2, pcfg2 = c.run_pod("plainpod")
    try:
        c.create(pod2, pcfg2, "p", SLEEP, IMAGE,
                 linux={"security_context": {"privileged": True, **NS}})
        raise AssertionError("privileged container in an unprivileged pod")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "not privileged" in e.details()
    # resources and devices reach the config
    dev = start(c, pod2, pcfg2, "dev", devices=[{"container_path": "/dev/mynull",
                                                  "host_path": "/dev/null", "permissions": "r"}],
                linux={"resources": {"oom_score_adj": 500}, "security_context": NS})
    code, out, _ = ex(c, dev, "cat", "/proc/self/oom_score_adj")
    assert out.strip() == "500"
    code, out, _ = ex(c, dev, "ls", "-l", "/dev/mynull")
    assert code == 0 and out.startswith("cr--r--r--"), out
    for p in (pod, pod2):
        c.call("StopPodSandbox", pod_sandbox_id=p)
        c.call("RemovePodSandbox", pod_sandbox_id=p)
    c.close()


def test_pull_with_auth(bd, tmp_path):
    layout = tmp_path / "layout"
    r = run([PYTHON, FIXTURES / "make-image.py", "build", "--ref", "v1", layout, "small"], timeout=120)
    assert r.returncode == 0, r.stderr
    reg = subprocess.Popen(bd.node.enter() + [str(a) for a in [PYTHON, FIXTURES / "fake-registry.py", "--basic", "alice:s3cret", layout]],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        port = int(reg.stdout.readline())
        ref = f"127.0.0.1:{port}/auth/small:v1"
        bd.start()
        c = CriClient(bd.socket, log_root=bd.logs)
        try:
            c.call("PullImage", image={"image": ref})
            raise AssertionError("anonymous pull succeeded")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e.details()
        try:
            c.call("PullImage", image={"image": ref}, auth={"username": "alice", "password": "bad"})
            raise AssertionError("bad password pull succeeded")
        except grpc.RpcError as e:
            assert "401" in e.details(), e.details()
        try:
            c.call("PullImage", image={"image": ref}, auth={"identity_token": "x"})
            raise AssertionError("identity token accepted")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "auth.identity_token" in e.details()
        ok = c.call("PullImage", image={"image": ref}, auth={"username": "alice", "password": "s3cret"})
        assert ok.image_ref.startswith("sha256:")
        c.call("RemoveImage", image={"image": ok.image_ref})
        assert not c.call("ImageStatus", image={"image": ref}).HasField("image")
        b64 = base64.b64encode(b"alice:s3cret").decode()
        ok2 = c.call("PullImage", image={"image": ref}, auth={"auth": b64, "server_address": f"http://127.0.0.1:{port}/v2/"})
        assert ok2.image_ref == ok.image_ref
        st = c.call("ImageStatus", image={"image": ok2.image_ref}).image
        assert st.repo_tags == [ref] and st.repo_digests[0].startswith(ref.rsplit(":", 1)[0] + "@")
        fs = c.call("ImageFsInfo")
        assert fs.image_filesystems[0].used_bytes.value > 0
        assert fs.container_filesystems[0].fs_id.mountpoint
        assert not glob.glob(os.path.join(bd.state, "pull-auth-*"))  # the credentials file went
        c.close()
    finally:
        reg.kill(); reg.wait(); reg.stdout.close()
