"""The fixture script itself: tests/fixtures/make-bundle.sh."""

import json
import os
import stat
import subprocess
import time

from conftest import MAKE_BUNDLE, describe


def make(path):
    return subprocess.run([str(MAKE_BUNDLE), str(path)], capture_output=True, text=True, timeout=20)


def test_rootfs_layout(tmp_path):
    started = time.monotonic()
    result = make(tmp_path / "b")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, describe(result)
    assert result.stdout.strip() in ("", str(tmp_path / "b")) and result.stderr == ""
    assert elapsed < 1.0, f"make-bundle.sh took {elapsed:.2f}s"

    rootfs = tmp_path / "b" / "rootfs"
    busybox = rootfs / "bin" / "busybox"
    assert stat.S_ISREG(os.lstat(busybox).st_mode)
    assert busybox.read_bytes() == open("/bin/busybox", "rb").read()
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True).stdout
    applets = set(applets.split()) - {"busybox"}
    assert {"sh", "ls", "id", "sleep", "mount", "stty"} <= applets
    for name in applets:
        assert os.readlink(rootfs / "bin" / name) == "busybox", name
    for d in ("proc", "sys", "dev", "etc", "tmp", "root", "var/run"):
        assert stat.S_ISDIR(os.lstat(rootfs / d).st_mode), d
    assert stat.S_IMODE(os.stat(rootfs / "tmp").st_mode) == 0o1777

    passwd = (rootfs / "etc/passwd").read_text().split()
    passwd = {line.split(":")[0]: line.split(":") for line in passwd}
    assert passwd["root"][2:4] == ["0", "0"]
    assert passwd["tester"][2:4] == ["1000", "1000"]
    assert passwd["nobody"][2] == "65534"
    group = (rootfs / "etc/group").read_text().split()
    group = {line.split(":")[0]: line.split(":") for line in group}
    assert group["root"][2] == "0" and group["tester"][2] == "1000" and group["extra"][2] == "2000"


def test_config(tmp_path):
    assert make(tmp_path / "b").returncode == 0
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["ociVersion"] == "1.0.2"
    process = config["process"]
    assert process["terminal"] is False
    assert process["user"] == {"uid": 0, "gid": 0}
    assert process["args"] == ["/bin/sh", "-c", "echo hello from berth"]
    assert process["env"] == ["PATH=/bin:/usr/bin:/sbin", "TERM=xterm"]
    assert process["cwd"] == "/"
    assert config["root"] == {"path": "rootfs", "readonly": False}
    assert config["hostname"] == "berth"
    assert [m["destination"] for m in config["mounts"]] == [
        "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"
    ]
    linux = config["linux"]
    assert [ns["type"] for ns in linux["namespaces"]] == ["pid", "network", "ipc", "uts", "mount"]
    assert "/proc/kcore" in linux["maskedPaths"] and "/proc/sys" in linux["readonlyPaths"]
    # nothing berth-runtime refuses until later issues
    assert "capabilities" not in process and "hooks" not in config
    assert not {"resources", "seccomp", "uidMappings"} & set(linux)


def test_refuses_non_empty_dir(tmp_path):
    target = tmp_path / "b"
    target.mkdir()
    (target / "keep").write_text("mine\n")
    result = make(target)
    assert result.returncode != 0
    assert result.stderr.strip()
    assert os.listdir(target) == ["keep"]


def test_accepts_empty_dir(tmp_path):
    target = tmp_path / "b"
    target.mkdir()
    result = make(target)
    assert result.returncode == 0, describe(result)
    assert (target / "config.json").is_file()
