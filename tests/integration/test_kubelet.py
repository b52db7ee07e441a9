"""berthd's kubelet loop (berthd(8), KUBELET): static pods from manifest files, run through the
same manager as the CRI. A pod with an init container, a web server with a readiness probe and a
hostPort, and a crashing container shows the right phases, readiness, restart counts and
back-off; a failing liveness probe restarts its container; an OnFailure pod whose container
exits 0 completes; configMap and secret files appear with the right modes; a changed manifest
replaces the pod; a removed one is stopped and removed; an invalid one is reported with its file
and field; berthd's restart adopts the running pods.

Each test runs its own berthd inside a network namespace it made (berthdtools.py), with images
pulled from a local registry (tests/fixtures/fake-registry.py) in that namespace. The restart
back-off is shortened (restart_backoff = 1s, restart_backoff_max = 4s).
"""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from berthdtools import BERTH, FIXTURES, PYTHON, bd, image_tar, node  # noqa: F401 (fixtures)
from nettools import run
from proctools import wait_until

NODE_ADDR = "10.88.0.1"  # the node's address on berth's bridge (berthd's default subnet)


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    path = tmp_path_factory.mktemp("kubelet-image") / "layout"
    result = run([PYTHON, FIXTURES / "make-image.py", "build", "--ref", "v1", path, "small"],
                 timeout=120)
    assert result.returncode == 0, result.stderr
    return path


class Node:
    """berthd with its manifest directory, config maps and secrets, and a registry."""

    def __init__(self, bd, layout, tmp_path):
        self.bd = bd
        self.manifests = bd.dir / "manifests"
        self.configmaps = bd.dir / "configmaps"
        self.secrets = bd.dir / "secrets"
        for d in (self.manifests, self.configmaps, self.secrets):
            d.mkdir()
        bd.settings.update({"manifest_dir": self.manifests, "config_map_dir": self.configmaps,
                            "secret_dir": self.secrets, "restart_backoff": "1s",
                            "restart_backoff_max": "4s", "manifest_check_interval": "2s"})
        self.reg = subprocess.Popen(bd.node.enter() + [PYTHON, FIXTURES / "fake-registry.py",
                                                       layout],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
        self.image = f"127.0.0.1:{int(self.reg.stdout.readline())}/kubelet/small:v1"

    def close(self):
        self.reg.kill()  # our own child
        self.reg.wait()
        self.reg.stdout.close()

    def status_path(self, name, namespace="default"):
        return self.bd.state / "kubelet" / "status" / f"{namespace}_{name}.json"

    def status(self, name, namespace="default"):
        try:
            return json.loads(self.status_path(name, namespace).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def wait(self, name, pred, timeout=30, what="the status"):
        last = {}

        def check():
            last["s"] = self.status(name)
            return last["s"] if last["s"] and pred(last["s"]) else None
        try:
            return wait_until(check, timeout, f"{name}: {what}", 0.1)
        except AssertionError as e:
            raise AssertionError(f"{e}\nlast status: {json.dumps(last.get('s'), indent=1)}\n"
                                 f"berthd log:\n{self.bd.log()[-4000:]}") from None

    def write(self, file, text):
        tmp = self.manifests / f".{file}.tmp"
        tmp.write_text(text)
        os.rename(tmp, self.manifests / file)

    def remove_all(self):
        """Removes every manifest and waits for the loop to remove their pods."""
        for f in self.manifests.iterdir():
            f.unlink()
        c = self.bd.client()
        wait_until(lambda: not c.ok("pod.list")["pods"], 60, "the pods to be removed", 0.1)
        status = self.bd.state / "kubelet" / "status"
        wait_until(lambda: not [p for p in status.iterdir() if not p.name.startswith(".")], 10,
                   "the status files to go", 0.1)
        c.close()


@pytest.fixture
def kn(bd, layout, tmp_path):
    n = Node(bd, layout, tmp_path)
    yield n
    try:
        if bd.running():
            n.remove_all()
    finally:
        n.close()


def ctr(status, name):
    for c in status["status"]["containerStatuses"] + status["status"]["initContainerStatuses"]:
        if c["name"] == name:
            return c
    raise KeyError(name)


def cond(status, type_):
    return next(c["status"] for c in status["status"]["conditions"] if c["type"] == type_)


def http_get(bd, host, port, path="/"):
    got = bd.node.run(PYTHON, "-c", (
        "import socket,sys\n"
        f"s=socket.create_connection(('{host}',{port}),timeout=2)\n"
        f"s.sendall(b'GET {path} HTTP/1.0\\r\\n\\r\\n')\n"
        "d=b''\n"
        "while True:\n"
        "    b=s.recv(4096)\n"
        "    if not b: break\n"
        "    d+=b\n"
        "sys.stdout.write(d.decode())\n"), check=False)
    return got.stdout if got.returncode == 0 else None


WEB = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {{app: web}}
spec:
  terminationGracePeriodSeconds: 2
  initContainers:
  - name: init
    image: {image}
    command: ["/bin/sh", "-c", "echo made-by-init > /work/index.html"]
    volumeMounts: [{{name: work, mountPath: /work}}]
  containers:
  - name: web
    image: {image}
    command: ["/bin/sh", "-c", "sleep 1; exec httpd -f -p 8080 -h /work"]
    ports: [{{name: http, containerPort: 8080, hostPort: 18080}}]
    startupProbe:
      tcpSocket: {{port: http}}
      periodSeconds: 1
      failureThreshold: 10
    readinessProbe:
      httpGet: {{path: /index.html, port: 8080}}
      periodSeconds: 1
    volumeMounts: [{{name: work, mountPath: /work}}]
  - name: crash
    image: {image}
    command: ["/bin/sh", "-c", "exit 3"]
  volumes:
  - name: work
    emptyDir: {{}}
"""


def test_init_readiness_host_port_crash_backoff(bd, kn):
    bd.start()
    kn.write("web.yaml", WEB.format(image=kn.image))
    s = kn.wait("web", lambda s: ctr(s, "init")["state"].get("terminated"),
                what="the init container to finish")
    assert ctr(s, "init")["state"]["terminated"]["exitCode"] == 0
    assert ctr(s, "init")["state"]["terminated"]["reason"] == "Completed"
    s = kn.wait("web", lambda s: ctr(s, "web")["ready"], what="web to be ready")
    assert s["status"]["phase"] == "Running"
    assert cond(s, "Initialized") == "True"
    assert s["status"]["qosClass"] == "BestEffort"
    assert s["status"]["podIP"]
    assert "made-by-init" in (http_get(bd, s["status"]["podIP"], 8080) or "")
    body = wait_until(lambda: http_get(bd, NODE_ADDR, 18080), 20, "the hostPort to answer")
    assert "made-by-init" in body
    # the crashing container: restarted with a doubling back-off (1s, 2s, 4s, then 4s: the max)
    seen = {}  # restartCount: when it was first seen

    def restarted(s):
        n = ctr(s, "crash")["restartCount"]
        seen.setdefault(n, time.monotonic())
        return n >= 4 and ctr(s, "crash")["state"].get("waiting")
    s = kn.wait("web", restarted, timeout=40, what="crash to be restarted 4 times")
    assert 3.5 <= seen[4] - seen[3] <= 6, seen
    if 2 in seen:
        assert 3.5 <= seen[3] - seen[2] <= 6, seen
    crash = ctr(s, "crash")
    assert crash["lastState"]["terminated"]["exitCode"] == 3, crash
    assert crash["lastState"]["terminated"]["reason"] == "Error", crash
    assert not crash["ready"]
    assert crash["state"]["waiting"]["reason"] == "CrashLoopBackOff", crash
    assert "back-off" in crash["state"]["waiting"]["message"], crash
    assert cond(s, "Ready") == "False" and cond(s, "ContainersReady") == "False"
    assert s["status"]["phase"] == "Running"
    assert ctr(s, "web")["restartCount"] == 0
    # one instance per container at a time (the exited one is removed when the next starts)
    c = bd.client()
    pods = c.ok("pod.list")["pods"]
    assert len(pods) == 1
    names = [x["name"] for x in c.ok("container.list")["containers"]]
    assert sorted(set(names)) == ["crash", "init", "web"], names
    assert names.count("crash") == 1, names
    c.close()


def test_liveness_failure_restarts_and_onfailure_completes(bd, kn):
    bd.start()
    kn.write("live.yaml", f"""\
apiVersion: v1
kind: Pod
metadata: {{name: live}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {kn.image}
    command: ["/bin/sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 1000"]
    livenessProbe:
      exec: {{command: ["cat", "/tmp/healthy"]}}
      periodSeconds: 1
      failureThreshold: 2
""")
    kn.write("job.json", json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "job"},
        "spec": {"restartPolicy": "OnFailure", "containers": [
            {"name": "once", "image": kn.image, "command": ["/bin/sh", "-c", "echo done"]}]}}))
    s = kn.wait("job", lambda s: s["status"]["phase"] == "Succeeded", what="job to complete")
    once = ctr(s, "once")
    assert once["state"]["terminated"]["exitCode"] == 0 and once["restartCount"] == 0, once
    assert cond(s, "Ready") == "False"
    s = kn.wait("live", lambda s: ctr(s, "c")["restartCount"] >= 1, timeout=40,
                what="the liveness probe to restart c")
    assert s["status"]["phase"] == "Running"
    assert ctr(s, "c")["lastState"]["terminated"]["exitCode"] in (137, 143), ctr(s, "c")


def container_log(bd, cid):
    from shimtools import log_lines, log_records
    c = bd.client()
    path = c.status(cid)["log_path"]
    c.close()
    return [x.decode() for x in log_lines(log_records(path), "stdout")]


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sleeper(kn, name, secs, extra=""):
    """A pod of one container that sleeps."""
    return f"""\
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
{extra}  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {kn.image}
    command: ["/bin/sh", "-c", "sleep {secs}"]
"""


def cid_of(s, name):
    return ctr(s, name)["containerID"].split("://", 1)[1]


def test_config_map_secret_env_and_hooks(bd, kn):
    cm = kn.configmaps / "default" / "cfg"
    cm.mkdir(parents=True)
    (cm / "a.conf").write_text("alpha\n")
    (cm / "greeting").write_text("hello")
    sec = kn.secrets / "default" / "creds"
    sec.mkdir(parents=True)
    (sec / "password").write_text("s3cret")
    hooks = bd.dir / "hooks"
    bd.start()
    kn.write("vol.yaml", f"""\
apiVersion: v1
kind: Pod
metadata: {{name: vol}}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: c
    image: {kn.image}
    command: ["/bin/sh", "-c"]
    args:
    - >-
      stat -c '%a %n' /cfg/a.conf /cfg/sub/g /sec/password;
      cat /cfg/a.conf /sec/password; echo;
      echo "GREETING=$GREETING PW=$PW POD=$POD_NAME NS=$POD_NS";
      ls /opt | wc -l;
      touch /sec/x 2>/dev/null || echo secret-read-only;
      exec sleep 1000
    env:
    - {{name: GREETING, valueFrom: {{configMapKeyRef: {{name: cfg, key: greeting}}}}}}
    - {{name: PW, valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}}}
    - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    - {{name: POD_NS, valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}}}
    - {{name: NONE, valueFrom: {{configMapKeyRef: {{name: cfg, key: nope, optional: true}}}}}}
    volumeMounts:
    - {{name: cfg, mountPath: /cfg}}
    - {{name: sec, mountPath: /sec}}
    - {{name: opt, mountPath: /opt}}
    - {{name: hooks, mountPath: /hooks}}
    - {{name: mem, mountPath: /mem}}
    lifecycle:
      postStart:
        exec: {{command: ["/bin/sh", "-c", "echo started > /hooks/post-start"]}}
      preStop:
        exec: {{command: ["/bin/sh", "-c", "echo stopping > /hooks/pre-stop"]}}
  volumes:
  - name: cfg
    configMap:
      name: cfg
      defaultMode: 0640
      items:
      - {{key: a.conf, path: a.conf, mode: 0600}}
      - {{key: greeting, path: sub/g}}
  - name: sec
    secret: {{secretName: creds, defaultMode: 0400}}
  - name: opt
    configMap: {{name: missing, optional: true}}
  - name: hooks
    hostPath: {{path: {hooks}, type: DirectoryOrCreate}}
  - name: mem
    emptyDir: {{medium: Memory, sizeLimit: 1Mi}}
""")
    s = kn.wait("vol", lambda s: ctr(s, "c")["ready"], what="c to run")
    cid = cid_of(s, "c")
    lines = wait_until(lambda: (lambda x: x if len(x) >= 7 else None)(container_log(bd, cid)),
                       10, "the container's output", 0.1)
    assert lines[:3] == ["600 /cfg/a.conf", "640 /cfg/sub/g", "400 /sec/password"], lines
    assert lines[3:5] == ["alpha", "s3cret"], lines
    assert lines[5] == "GREETING=hello PW=s3cret POD=vol NS=default", lines
    assert lines[6].strip() == "0", lines  # the optional, missing config map: empty
    assert lines[7] == "secret-read-only", lines
    assert (hooks / "post-start").read_text() == "started\n"
    assert oct(hooks.stat().st_mode & 0o777) == oct(0o755)
    # the secret is on a tmpfs under the state directory
    mounts = Path("/proc/self/mountinfo").read_text()
    uid = s["metadata"]["uid"]
    assert f"/kubelet/pods/{uid}/volumes/sec " in mounts
    mem = next(line for line in mounts.splitlines() if f"/{uid}/volumes/mem " in line)
    assert " - tmpfs " in mem and "size=1024k" in mem, mem
    # removal: preStop runs, the pod and its volumes go
    kn.remove_all()
    assert (hooks / "pre-stop").read_text() == "stopping\n"
    assert f"/kubelet/pods/{uid}/" not in Path("/proc/self/mountinfo").read_text()
    assert not (bd.state / "kubelet" / "pods" / uid).exists()


def test_missing_config_map_keeps_the_container_waiting(bd, kn):
    bd.start()
    kn.write("w.yaml", f"""\
apiVersion: v1
kind: Pod
metadata: {{name: w}}
spec:
  containers:
  - name: c
    image: {kn.image}
    command: ["/bin/sh", "-c", "sleep 1000"]
    env:
    - {{name: X, valueFrom: {{configMapKeyRef: {{name: absent, key: k}}}}}}
""")
    s = kn.wait("w", lambda s: ctr(s, "c")["state"].get("waiting", {}).get("reason") ==
                "CreateContainerConfigError", what="CreateContainerConfigError")
    msg = ctr(s, "c")["state"]["waiting"]["message"]
    assert "absent" in msg and "X" in msg, msg
    assert s["status"]["phase"] == "Pending"
    # the config map appears: the container starts
    d = kn.configmaps / "default" / "absent"
    d.mkdir(parents=True)
    (d / "k").write_text("v")
    kn.wait("w", lambda s: ctr(s, "c")["state"].get("running"), timeout=30,
            what="c to run once the config map is there")


def test_changed_manifest_replaces_removed_stops_invalid_reported(bd, kn):
    bd.start()
    kn.write("app.yaml", sleeper(kn, "app", 1000))
    s1 = kn.wait("app", lambda s: ctr(s, "c")["state"].get("running"), what="app to run")
    kn.write("app.yaml", sleeper(kn, "app", 2000))
    s2 = kn.wait("app", lambda s: s["metadata"]["podID"] != s1["metadata"]["podID"] and
                 ctr(s, "c")["state"].get("running"), what="app to be replaced")
    assert s2["metadata"]["hash"] != s1["metadata"]["hash"]
    c = bd.client()
    assert [p["id"] for p in c.ok("pod.list")["pods"]] == [s2["metadata"]["podID"]]
    # an invalid manifest: reported with its file and field, once; the rest keeps running
    kn.write("bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n"
             "  containres: []\n")
    kn.write("https.yaml", f"""\
apiVersion: v1
kind: Pod
metadata: {{name: https}}
spec:
  containers:
  - name: c
    image: {kn.image}
    livenessProbe: {{httpGet: {{port: 443, scheme: HTTPS}}}}
""")
    status_dir = bd.state / "kubelet" / "status"
    bad = wait_until(lambda: (status_dir / "@dir_bad.yaml.json").exists() and
                     json.loads((status_dir / "@dir_bad.yaml.json").read_text()), 10,
                     "the invalid manifest's status")
    assert bad["metadata"]["file"] == str(kn.manifests / "bad.yaml")
    assert "bad.yaml: spec.containres" in bad["error"], bad
    https = json.loads((status_dir / "@dir_https.yaml.json").read_text())
    assert "spec.containers[0].livenessProbe.httpGet.scheme: HTTPS" in https["error"], https
    time.sleep(5)  # two rescans: the error is logged once
    assert bd.log().count("bad.yaml: spec.containres") == 1, bd.log()
    assert kn.status("app")["metadata"]["podID"] == s2["metadata"]["podID"]
    (kn.manifests / "bad.yaml").unlink()
    (kn.manifests / "https.yaml").unlink()
    wait_until(lambda: not (status_dir / "@dir_bad.yaml.json").exists(), 10,
               "the error status to go")
    # removal
    (kn.manifests / "app.yaml").unlink()
    wait_until(lambda: not c.ok("pod.list")["pods"], 30, "app to be removed", 0.1)
    wait_until(lambda: kn.status("app") is None, 10, "app's status to go", 0.1)
    c.close()


def test_restart_adopts_running_pods_and_replaces_changed_ones(bd, kn):
    bd.start()
    kn.write("keep.yaml", sleeper(kn, "keep", 1000))
    kn.write("change.yaml", sleeper(kn, "change", 1000))
    kn.write("gone.yaml", sleeper(kn, "gone", 1000))
    keep = kn.wait("keep", lambda s: ctr(s, "c")["state"].get("running"), what="keep to run")
    change = kn.wait("change", lambda s: ctr(s, "c")["state"].get("running"), what="change")
    kn.wait("gone", lambda s: ctr(s, "c")["state"].get("running"), what="gone to run")
    # three pod workers ticking (every 200 ms) cost berthd little CPU
    cpu0 = cpu_seconds(bd.pid)
    time.sleep(3)
    assert cpu_seconds(bd.pid) - cpu0 < 0.5
    assert bd.stop() == 0
    kn.write("change.yaml", sleeper(kn, "change", 2000))
    (kn.manifests / "gone.yaml").unlink()
    bd.start()
    s = kn.wait("keep", lambda s: ctr(s, "c")["state"].get("running"), what="keep adopted")
    assert s["metadata"]["podID"] == keep["metadata"]["podID"]
    assert ctr(s, "c")["containerID"] == ctr(keep, "c")["containerID"]
    assert ctr(s, "c")["restartCount"] == 0
    s = kn.wait("change", lambda s: s["metadata"]["podID"] != change["metadata"]["podID"] and
                ctr(s, "c")["state"].get("running"), what="change replaced")
    c = bd.client()
    ids = sorted(p["id"] for p in c.ok("pod.list")["pods"])
    assert ids == sorted([keep["metadata"]["podID"], s["metadata"]["podID"]])
    assert kn.status("gone") is None
    c.close()


def test_active_deadline_fails_the_pod(bd, kn):
    bd.start()
    kn.write("dl.yaml", sleeper(kn, "dl", 1000, "  activeDeadlineSeconds: 2\n"))
    s = kn.wait("dl", lambda s: s["status"]["phase"] == "Failed", what="the deadline")
    assert s["status"]["reason"] == "DeadlineExceeded"
    s = kn.wait("dl", lambda s: ctr(s, "c")["state"].get("terminated"), what="c stopped")
    assert ctr(s, "c")["restartCount"] == 0


def test_applied_manifests_and_duplicate_names(bd, kn):
    """What `berth apply` stores (<root>/manifests) runs like the manifest directory's files; a
    second manifest of the same pod is reported, not run."""
    bd.start()
    applied = bd.root / "manifests"
    kn.write("dup.yaml", sleeper(kn, "dup", 1000))
    kn.wait("dup", lambda s: ctr(s, "c")["state"].get("running"), what="dup to run")
    (applied / "default_dup.yaml").write_text(sleeper(kn, "dup", 2000))
    (applied / "default_ap.yaml").write_text(sleeper(kn, "ap", 1000))
    s = kn.wait("ap", lambda s: ctr(s, "c")["state"].get("running"), what="ap to run")
    assert s["metadata"]["file"] == str(applied / "default_ap.yaml")
    err = json.loads((bd.state / "kubelet" / "status" /
                      "@applied_default_dup.yaml.json").read_text())
    assert "is already defined by" in err["error"] and "dup.yaml" in err["error"], err
    assert kn.status("dup")["metadata"]["file"] == str(kn.manifests / "dup.yaml")
    (applied / "default_ap.yaml").unlink()
    (applied / "default_dup.yaml").unlink()
    wait_until(lambda: kn.status("ap") is None, 30, "ap to be removed", 0.1)


def berth(bd, *args, input=None):
    return subprocess.run([BERTH, "--socket", str(bd.socket), *args], input=input,
                          capture_output=True, text=True, timeout=60)


def test_berth_apply_pod_ls_and_delete(bd, kn, tmp_path):
    """`berth apply -f` runs a pod from a manifest file, `berth pod ls` shows its phase,
    readiness and restarts, `pod inspect` its Kubernetes status, `delete -f` removes it; an
    invalid manifest is refused with its file and field path, and `pod ls` names a bad file of
    the manifest directory."""
    bd.start()
    m = tmp_path / "ap.yaml"
    m.write_text(sleeper(kn, "ap", 1000))
    r = berth(bd, "apply", "-f", str(m))
    assert (r.returncode, r.stdout) == (0, "pod/default/ap applied\n"), r
    kn.wait("ap", lambda s: s["status"]["phase"] == "Running" and ctr(s, "c")["ready"],
            what="ap to run")
    r = berth(bd, "pod", "ls")
    assert r.returncode == 0, r
    head, row = r.stdout.splitlines()[0].split(), next(
        line.split() for line in r.stdout.splitlines() if " ap " in f" {line} ")
    cols = dict(zip(head, row))
    assert (cols["PHASE"], cols["READY"], cols["RESTARTS"]) == ("Running", "1/1", "0"), r.stdout
    r = berth(bd, "pod", "inspect", "ap")
    got = json.loads(r.stdout)
    got = got[0] if isinstance(got, list) else got
    assert got["podStatus"]["phase"] == "Running", got
    # the same manifest from standard input is the same pod
    assert berth(bd, "apply", "-f", "-", input=m.read_text()).returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(sleeper(kn, "bad", 1).replace("containers:", "containres:"))
    r = berth(bd, "apply", "-f", str(bad))
    assert r.returncode == 1 and "bad.yaml: spec.containres: unknown field" in r.stderr, r
    kn.write("broken.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {}\n")
    wait_until(lambda: "broken.yaml" in berth(bd, "pod", "ls").stderr, 20,
               "pod ls to name the broken manifest", 0.2)
    (kn.manifests / "broken.yaml").unlink()
    r = berth(bd, "delete", "-f", str(m))
    assert (r.returncode, r.stdout) == (0, "deleted\n"), r
    wait_until(lambda: kn.status("ap") is None, 30, "ap to be removed", 0.1)
    r = berth(bd, "delete", "-f", str(m))
    assert r.returncode == 1 and "ap" in r.stderr, r
    assert berth(bd, "apply").returncode == 2
