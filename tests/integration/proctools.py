"""Helpers the integration test modules share: processes (alive, found by a mark in their
environment, stopped), mounts (listed under a path, unmounted) and waiting for a condition."""
import ctypes
import os
import re
import signal
import subprocess
import time
from pathlib import Path

MARK_VAR = "BERTH_TEST_MARK"  # every process a test starts carries MARK_VAR=<the test's mark>
_libc = ctypes.CDLL(None, use_errno=True)


def wait_until(predicate, timeout=10.0, what="condition", interval=0.02):
    """predicate()'s first true value; an AssertionError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def pids_with_env(entry, zombies=True):
    """Pids of the processes (but this one) whose environment holds entry ("NAME=value");
    without zombies when zombies is False."""
    needle = entry.encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            env = Path(f"/proc/{name}/environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0") and (zombies or pid_alive(int(name))):
            found.append(int(name))
    return found


def marked_pids(mark, zombies=True):
    """Pids of the processes whose environment holds MARK_VAR=mark."""
    return pids_with_env(f"{MARK_VAR}={mark}", zombies)


def stop_process(proc, timeout=5):
    """SIGTERM, then SIGKILL, one process we started (by its pid); reap it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def unescape_mount_path(path):
    """A mountinfo path with its octal escapes (\\040 for a space, ...) undone."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def mounts_under(path):
    """Mount points at or under path in this mount namespace."""
    path = os.path.realpath(path)
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = unescape_mount_path(line.split()[4])
        if point == path or point.startswith(path + "/"):
            found.append(point)
    return found


def umount(path, flags=0):
    if _libc.umount2(os.fsencode(str(path)), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {path}: {os.strerror(err)}")
