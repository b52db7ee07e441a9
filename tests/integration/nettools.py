"""Helpers and fixtures for the pod network tests (test_pods.py): a fresh "node" network
namespace per test, podnet (the lead's test driver over netns/netns.h) run inside it, an
"outside" namespace behind the node, and echo servers and clients run inside pods.

THE NETWORK RULE: nothing here touches the host's network namespace. Every `ip`, `nft`, podnet
command and connection runs through `nsenter --net=<a namespace this module created>`, and
NetNamespace.run() refuses a namespace whose inode is the host's (the one pytest runs in).

Fixtures (a test module imports the ones it uses: `from nettools import node, outside, ...`):
  node     a Node: a new network namespace (held by an `unshare --net sleep infinity` we started,
           and by an fd pytest keeps open), loopback up, its own podnet --state under tmp_path.
           `node.create(ID, *opts)` runs `podnet ... create ID OPTS` in it and returns the status
           JSON. Teardown stops the test's servers, removes every pod, then checks that nothing
           is left (links other than lo and the bridge, IPAM reservations, nft rules commented
           "berth:", mounts and pod directories under the state dir, processes podnet started,
           and in CNI mode the plugins' reservations and per-container iptables chains), fails
           the test if something is (when the test itself passed), and kills the holder by pid.
  outside  an Outside: a second new network namespace joined to the node by a veth pair on
           192.0.2.0/24 (node side "out0" 192.0.2.1, outside side "eth0" 192.0.2.2); no route
           back to the pods, so whatever reaches it from a pod came through the node's NAT.
  backend  parametrized "bridge" (podnet's built-in networking) and "cni" (Debian's bridge,
           host-local and portmap plugins in /usr/lib/cni, configured into a tmp dir with their
           own bridge cni-test0, subnet 10.77.0.0/16 and host-local dataDir under tmp_path).

Environment: BERTH_PODNET, the podnet binary (default <repo>/build/tests/podnet).
"""

import ctypes
import fcntl
import ipaddress
import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from proctools import (  # noqa: F401 (re-exported for the tests)
    MARK_VAR, marked_pids, mounts_under, pid_alive, pids_with_env, umount, wait_until)

REPO = Path(__file__).resolve().parents[2]
PODNET = os.environ.get("BERTH_PODNET") or str(REPO / "build" / "tests" / "podnet")
PYTHON = "/usr/bin/python3"
BUSYBOX = "/bin/busybox"
CNI_BIN = "/usr/lib/cni"
TIMEOUT = 20  # seconds, for one command
PODNET_TIMEOUT = 10  # seconds, for one podnet command (they take milliseconds)

DEFAULT_SUBNET4 = ipaddress.ip_network("10.88.0.0/16")
CNI_SUBNET4 = ipaddress.ip_network("10.77.0.0/16")
CNI_BRIDGE = "cni-test0"
CNI_NETWORK = "berth-cni-test"
NODE_IP, OUTSIDE_IP = "192.0.2.1", "192.0.2.2"
OUTSIDE_NET = "192.0.2.0/24"

VALID_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")  # netns.h's pod id
# netns/nat.c's rules for the whole pod subnet, not for one pod
SHARED_RULE_COMMENTS = ("berth:masq", "berth:hairpin")
NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3)
CLONE_NEW = {"net": 0x40000000, "ipc": 0x08000000, "uts": 0x04000000, "pid": 0x20000000,
             "mnt": 0x00020000}
MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)
HOST_NET_INO = os.stat("/proc/self/ns/net").st_ino  # pytest's own: never entered


# --- small helpers ----------------------------------------------------------------------------


def describe(result):
    return (f"$ {' '.join(map(str, result.args))}\nrc={result.returncode}\n"
            f"--- stdout ---\n{result.stdout}--- stderr ---\n{result.stderr}")


def run(argv, timeout=TIMEOUT, check=True, env=None, input=None):
    """Run argv (text; output through temporary files, so a command that times out still
    shows what it wrote); fail the test on a timeout, and on failure when check."""
    argv = [str(a) for a in argv]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        stdin = subprocess.PIPE if input is not None else subprocess.DEVNULL
        proc = subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=err, env=env)
        try:
            proc.communicate(input.encode() if input is not None else None, timeout=timeout)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            proc.kill()  # by pid: our own child
            proc.wait()
            rc = None
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(argv, rc, out.read().decode(errors="replace"),
                                             err.read().decode(errors="replace"))
    if rc is None:
        pytest.fail(f"timed out after {timeout}s (killed)\n" + describe(result), pytrace=False)
    if check:
        assert result.returncode == 0, "command failed\n" + describe(result)
    return result


def proc_state(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def pids_in_ns(kind, ino):
    """Pids (zombies included) whose namespace of kind has inode ino."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/{kind}").st_ino == ino:
                found.append(int(entry))
        except OSError:
            continue
    return sorted(found)


def cni_plugin_pids(container_id):
    """Live processes running a CNI command for container_id (the plugins and what they run:
    their environment holds CNI_CONTAINERID=container_id)."""
    return pids_with_env(f"CNI_CONTAINERID={container_id}", zombies=False)


def proc_cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return None


def ns_type(path):
    """The CLONE_NEW* type of a namespace file (raises OSError if it is not one)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return fcntl.ioctl(fd, NS_GET_NSTYPE)
    finally:
        os.close(fd)


def expect_podnet_error(result, code, *needles):
    """A refused podnet command: exit `code` (a tuple: any of them) and, when needles are given,
    exactly one stderr line "podnet: ..." naming each needle (a tuple of needles: any one)."""
    codes = code if isinstance(code, tuple) else (code,)
    assert result.returncode in codes, f"expected exit {code}\n" + describe(result)
    if not needles:
        return
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("podnet: "), \
        "expected exactly one \"podnet: \" error line\n" + describe(result)
    for needle in needles:
        options = needle if isinstance(needle, tuple) else (needle,)
        assert any(o in lines[0] for o in options), \
            f"the error should name {' or '.join(map(repr, options))}\n" + describe(result)


# --- namespaces -------------------------------------------------------------------------------


class NetNamespace:
    """A fresh network namespace: held by `unshare --net sleep infinity` (started here, killed
    by pid in close()) and by an fd this process keeps, so its path /proc/<pytest>/fd/<fd> stays
    valid whatever happens to the holder. Loopback is up."""

    def __init__(self, name):
        self.name = name
        self.holder = subprocess.Popen(["unshare", "--net", "--", "sleep", "infinity"],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        self.fd = -1
        pid = self.holder.pid

        def unshared():
            try:
                return os.stat(f"/proc/{pid}/ns/net").st_ino != HOST_NET_INO
            except OSError:
                return False

        try:
            wait_until(unshared, 5, f"the {name} namespace's holder to unshare")
            self.fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except BaseException:
            self.close()
            raise
        self.ino = os.fstat(self.fd).st_ino
        assert self.ino != HOST_NET_INO and ns_type(self.path) == CLONE_NEW["net"]
        self.run("ip", "link", "set", "lo", "up")

    @property
    def path(self):
        return f"/proc/{os.getpid()}/fd/{self.fd}"

    def enter(self):
        """The nsenter prefix that runs a command in this namespace (checked: never the host's)."""
        assert self.fd >= 0, f"the {self.name} namespace is closed"
        assert os.stat(self.path).st_ino == self.ino != HOST_NET_INO, \
            f"{self.path} is not the {self.name} namespace"
        return ["nsenter", f"--net={self.path}", "--"]

    def run(self, *argv, check=True, timeout=TIMEOUT, env=None, input=None):
        return run(self.enter() + list(argv), timeout=timeout, check=check, env=env, input=input)

    def ip_json(self, *args):
        out = self.run("ip", "-j", *args).stdout.strip()
        return json.loads(out) if out else []

    def links(self, *filters):
        """`ip -j -d link show FILTERS` in this namespace: a list of dicts."""
        return self.ip_json("-d", "link", "show", *filters)

    def close(self):
        if self.holder is not None:
            self.holder.kill()  # by its pid: our own child
            self.holder.wait()
            self.holder = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Pod:
    """A created pod's status JSON, with a way to run commands inside it."""

    def __init__(self, status):
        self.status = status
        self.id = status["id"]

    def __getitem__(self, key):
        return self.status[key]

    def enter(self, net=True):
        argv = ["nsenter"]
        for key, opt in (("netns", "--net"), ("utsns", "--uts"), ("ipcns", "--ipc")):
            if key == "netns" and not net:
                continue
            path = self.status.get(key)
            if path:
                argv.append(f"{opt}={path}")
        assert self.status.get("netns") or not net, f"pod {self.id} has no network namespace"
        # a pod's network namespace is never the host's
        if net:
            assert os.stat(self.status["netns"]).st_ino != HOST_NET_INO
        return argv + ["--"]

    def run(self, *argv, check=True, timeout=TIMEOUT):
        return run(self.enter() + list(argv), check=check, timeout=timeout)

    def eth0(self):
        return json.loads(self.run("ip", "-j", "-d", "link", "show", "eth0").stdout)[0]


# --- echo servers and clients -----------------------------------------------------------------

# argv: PROTO FAMILY PORT [BIND]. Prints "ready", then "peer HOST PORT" for every connection or
# datagram (flushed), and echoes what it receives.
SERVER = r"""
import socket, sys, threading
proto, family, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
bind = sys.argv[4] if len(sys.argv) > 4 else ("::" if family == "6" else "0.0.0.0")
fam = socket.AF_INET6 if family == "6" else socket.AF_INET
kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
s = socket.socket(fam, kind)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((bind, port))
def say(*words):
    sys.stdout.write(" ".join(map(str, words)) + "\n"); sys.stdout.flush()
if proto == "udp":
    say("ready")
    while True:
        data, peer = s.recvfrom(65536)
        say("peer", peer[0], peer[1])
        s.sendto(data, peer)
s.listen(64)
say("ready")
def echo(conn, peer):
    say("peer", peer[0], peer[1])
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
while True:
    conn, peer = s.accept()
    threading.Thread(target=echo, args=(conn, peer), daemon=True).start()
"""

# argv: PROTO HOST PORT PAYLOAD RETRY_SECONDS. Prints one JSON line: {"ok": true, "reply": ...,
# "local": [host, port]} or {"ok": false, "error": "..."}. Connection failures are retried for
# RETRY_SECONDS (a server that just started, an address still settling).
CLIENT = r"""
import json, socket, sys, time
proto, host, port, payload, retry = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
deadline = time.monotonic() + retry
while True:
    s = socket.socket(fam, kind)
    s.settimeout(1.0 if proto == "udp" else 3.0)
    try:
        s.connect((host, port))
        if proto == "udp":
            s.send(payload.encode())
            reply = s.recv(65536)
        else:
            s.sendall(payload.encode())
            s.shutdown(socket.SHUT_WR)
            reply = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
        print(json.dumps({"ok": True, "reply": reply.decode(errors="replace"),
                          "local": list(s.getsockname()[:2])}))
        break
    except OSError as e:
        if time.monotonic() >= deadline:
            print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
            break
        time.sleep(0.05)
    finally:
        s.close()
"""


class Server:
    """An echo server (SERVER) run through an nsenter prefix; stopped by its pid."""

    def __init__(self, prefix, proto, port, family="4", bind=None):
        argv = list(prefix) + [PYTHON, "-c", SERVER, proto, family, str(port)]
        if bind:
            argv.append(bind)
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.buffer = b""
        self.lines = []
        line = self.next_line(10)
        if line != "ready":
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            err = self.proc.stderr.read()
            self.stop()
            raise AssertionError(f"echo server did not start ({line!r}): {' '.join(argv[:3])} "
                                 f"...\n{err.decode(errors='replace')}")

    def next_line(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    def peers(self, count=1, timeout=5):
        """The first `count` peers ("HOST", PORT) the server reported."""
        while len(self.lines) < count:
            line = self.next_line(timeout)
            assert line is not None, f"the server reported {len(self.lines)} peers, not {count}"
            if line.startswith("peer "):
                _, host, port = line.split()
                self.lines.append((host, int(port)))
        return self.lines[:count]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()  # by pid: nsenter exec'd python, our own child
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def connect(prefix, host, port, proto="tcp", payload="ping", retry=5.0, timeout=TIMEOUT):
    """Run CLIENT through an nsenter prefix; return its JSON result."""
    result = run(list(prefix) + [PYTHON, "-c", CLIENT, proto, str(host), str(port), payload,
                                 str(retry)], timeout=timeout)
    return json.loads(result.stdout)


def assert_echo(prefix, host, port, proto="tcp", payload=None, **kw):
    payload = payload or f"hello-{proto}-{host}-{port}"
    got = connect(prefix, host, port, proto, payload, **kw)
    assert got["ok"] and got["reply"] == payload, \
        f"{proto} to {host}:{port}: expected the echo of {payload!r}, got {got}"
    return got


# --- the node ---------------------------------------------------------------------------------


class Node(NetNamespace):
    """The node: a new network namespace where podnet runs with a per-test state dir."""

    def __init__(self, workdir, mark):
        super().__init__("node")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.state = self.workdir / "state"
        self.mark = mark
        self.options = []  # global podnet options before the command (besides --state)
        self.bridge = "berth0"
        self.subnet4 = DEFAULT_SUBNET4
        self.allowed_links = {"lo"}  # links the test made itself (the outside veth)
        self.cni = None
        self.ids = set()
        self.servers = []
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("CNI_COMMAND", "CNI_PATH", "CNI_NETNS", "CNI_CONTAINERID")}
        self.env[MARK_VAR] = mark

    # podnet

    def argv(self, *args, options=None):
        opts = self.options if options is None else options
        return self.enter() + [PODNET, "--state", str(self.state), *opts] + [str(a) for a in args]

    def podnet(self, *args, options=None, timeout=None):
        """Run `podnet --state S OPTIONS ARGS` in the node; a CompletedProcess."""
        if len(args) > 1 and args[0] == "create":
            self.ids.add(str(args[1]))
        if timeout is None:  # remove takes many ids at once
            timeout = PODNET_TIMEOUT + 0.2 * len(args)
        return run(self.argv(*args, options=options), timeout=timeout, check=False,
                   env=self.env)

    def spawn(self, *args, options=None):
        """Start podnet in the background (output to files); a Popen (nsenter execs podnet,
        so the Popen's pid is podnet's)."""
        if len(args) > 1 and args[0] == "create":
            self.ids.add(str(args[1]))
        out = tempfile.TemporaryFile(dir=self.workdir)
        err = tempfile.TemporaryFile(dir=self.workdir)
        proc = subprocess.Popen(self.argv(*args, options=options), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, env=self.env)
        proc.out, proc.err = out, err
        return proc

    def ok(self, *args, **kw):
        result = self.podnet(*args, **kw)
        assert result.returncode == 0, "podnet failed\n" + describe(result)
        return result

    def create(self, pid, *opts, **kw):
        """Create a pod; return it as a Pod (its status JSON, checked for shape)."""
        result = self.ok("create", pid, *opts, **kw)
        try:
            status = json.loads(result.stdout)
        except json.JSONDecodeError:
            pytest.fail("create did not print JSON\n" + describe(result))
        check_status_shape(status)
        assert status["id"] == pid and status["state"] == "ready", describe(result)
        return Pod(status)

    def status(self, pid):
        result = self.ok("status", pid)
        try:
            return json.loads(result.stdout)
        except json.JSONDecodeError:
            pytest.fail("status did not print JSON\n" + describe(result))

    def remove(self, *ids):
        return self.ok("remove", *ids)

    def list(self):
        return self.ok("list").stdout.split()

    def serve(self, prefix, proto, port, family="4", bind=None):
        server = Server(prefix, proto, port, family, bind)
        self.servers.append(server)
        return server

    def use_cni(self, workdir):
        self.cni = CniNetwork(workdir)
        self.options = self.options + ["--cni-conf-dir", str(self.cni.conf_dir),
                                       "--cni-bin-dir", CNI_BIN]
        self.bridge = CNI_BRIDGE
        self.subnet4 = CNI_SUBNET4

    # what is there

    def veths(self):
        """Names of the veth links in the node."""
        return [link["ifname"] for link in self.links("type", "veth")]

    def bridge_ports(self):
        return [link["ifname"] for link in self.links("master", self.bridge)] \
            if self.links_named(self.bridge) else []

    def links_named(self, name):
        return [link for link in self.links() if link["ifname"] == name]

    def reservations(self):
        """{address: content} of podnet's IPAM reservation files (STATE/ipam/<network>/<ip>)."""
        return ip_named_files(self.state / "ipam")

    def berth_rules(self):
        """nft rule lines in the node commented "berth:<pod id>" (a pod's own rules: not the
        shared masquerade rules, commented SHARED_RULE_COMMENTS)."""
        text = self.run("nft", "list", "ruleset").stdout
        return [line.strip() for line in text.splitlines() if 'comment "berth:' in line
                and not any(f'comment "{c}"' in line for c in SHARED_RULE_COMMENTS)]

    def ruleset(self):
        return self.run("nft", "list", "ruleset").stdout

    def pod_dirs(self):
        pods = self.state / "pods"
        return sorted(os.listdir(pods)) if pods.is_dir() else []

    def problems(self):
        """What podnet left in the node and its state dir."""
        found = []
        allowed = self.allowed_links | {self.bridge}
        links = [link["ifname"] for link in self.links() if link["ifname"] not in allowed]
        if links:
            found.append(f"links remain in the node: {links}")
        reservations = self.reservations()
        if reservations:
            found.append(f"IPAM reservations remain: {reservations}")
        rules = self.berth_rules()
        if rules:
            found.append("nft rules commented berth: remain:\n  " + "\n  ".join(rules))
        mounts = mounts_under(self.state)
        if mounts:
            found.append("mounts remain under the state dir:\n  " + "\n  ".join(mounts))
        pods = self.pod_dirs()
        if pods:
            found.append(f"pod directories remain: {pods}")
        pids = marked_pids(self.mark, zombies=False)
        if pids:
            found.append("processes podnet started remain:\n  " +
                         "\n  ".join(f"{p} {proc_cmdline(p)}" for p in pids))
        if self.cni:
            found += self.cni.problems(self)
        return found

    def assert_clean(self):
        found = self.problems()
        assert not found, "leftovers:\n" + "\n".join(found)

    def teardown(self):
        """Stop servers, remove every pod; return the leftovers found (then cleaned up)."""
        for server in self.servers:
            server.stop()
        found = []
        if self.fd < 0:
            return found
        ids = sorted(i for i in self.ids | set(self.pod_dirs()) if VALID_ID.match(i))
        if ids and os.access(PODNET, os.X_OK):
            try:
                result = self.podnet("remove", *ids, timeout=60)
                if result.returncode != 0:
                    found.append("podnet remove at teardown failed\n" + describe(result))
            except pytest.fail.Exception as e:  # timed out
                found.append(f"podnet remove at teardown: {e}")
        found += self.problems()
        # clean up whatever is left, so that the rest of the session is not affected
        for pid in marked_pids(self.mark, zombies=False):
            try:
                os.kill(pid, signal.SIGKILL)  # started by podnet for this test (marked)
            except ProcessLookupError:
                pass
        for point in reversed(mounts_under(self.state)):
            _libc.umount2(os.fsencode(point), MNT_DETACH)
        return found


def check_status_shape(status):
    """The status JSON carries every field of the contract, with the right types."""
    for key in ("id", "state", "mode", "hosts", "hostname", "resolvConf"):
        assert isinstance(status.get(key), str), f"status[{key!r}] should be a string: {status}"
    for key in ("netns", "ipcns", "utsns", "pidns", "ip4", "ip6"):
        assert key in status and (status[key] is None or isinstance(status[key], str)), \
            f"status[{key!r}] should be a string or null: {status}"
    assert isinstance(status.get("initPid"), int), f"status['initPid'] should be an int: {status}"
    assert status["state"] in ("ready", "incomplete"), status
    assert status["mode"] in ("bridge", "cni", "host"), status


def ip_named_files(root):
    """{address: content} of the files named like an IP address in root's subdirectories."""
    found = {}
    root = Path(root)
    if not root.is_dir():
        return found
    for sub in root.iterdir():
        if not sub.is_dir():
            continue
        for f in sub.iterdir():
            try:
                ipaddress.ip_address(f.name)
            except ValueError:
                continue
            try:
                found[f"{sub.name}/{f.name}"] = f.read_text().strip()
            except OSError as e:
                found[f"{sub.name}/{f.name}"] = f"<{e}>"
    return found


# --- CNI --------------------------------------------------------------------------------------


class CniNetwork:
    """A conflist for Debian's CNI plugins in workdir/conf: bridge (cni-test0, isGateway,
    ipMasq) with host-local IPAM (10.77.0.0/16, dataDir workdir/ipam — never /var/lib/cni),
    then portmap (capabilities portMappings)."""

    # chains the plugins keep for the whole network, not per container
    SHARED_CHAINS = {"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ"}

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.conf_dir = self.workdir / "conf"
        self.data_dir = self.workdir / "ipam"
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        assert shutil.which("iptables"), "CNI's bridge (ipMasq) and portmap plugins need " \
            "iptables: apt-get install iptables"
        for plugin in ("bridge", "host-local", "portmap", "loopback"):
            assert os.access(f"{CNI_BIN}/{plugin}", os.X_OK), \
                f"{CNI_BIN}/{plugin} is missing: apt-get install containernetworking-plugins"
        conflist = {
            "cniVersion": "1.0.0",
            "name": CNI_NETWORK,
            "plugins": [
                {"type": "bridge", "bridge": CNI_BRIDGE, "isGateway": True, "ipMasq": True,
                 "hairpinMode": True,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": str(CNI_SUBNET4)}]],
                          "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(self.data_dir)}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        (self.conf_dir / "10-berth-test.conflist").write_text(json.dumps(conflist, indent=2))

    def reservations(self):
        return ip_named_files(self.data_dir)

    def container_chains(self, node):
        """iptables-nft chains the plugins made per container (CNI-<hash>, CNI-DN-<hash>)."""
        chains = re.findall(r"^\s*chain (CNI-\S+) \{", node.ruleset(), re.M)
        return sorted(set(chains) - self.SHARED_CHAINS)

    def problems(self, node):
        found = []
        reservations = self.reservations()
        if reservations:
            found.append(f"host-local reservations remain in {self.data_dir}: {reservations}")
        chains = self.container_chains(node)
        if chains:
            found.append(f"per-container CNI chains remain: {chains}")
        return found


# --- the outside ------------------------------------------------------------------------------


class Outside(NetNamespace):
    """A namespace behind the node: node "out0" 192.0.2.1/24 <-> outside "eth0" 192.0.2.2/24."""

    def __init__(self, node):
        super().__init__("outside")
        try:
            node.run("ip", "link", "add", "out0", "type", "veth", "peer", "name", "eth0",
                     "netns", self.path)
            node.allowed_links.add("out0")
            node.run("ip", "addr", "add", f"{NODE_IP}/24", "dev", "out0")
            node.run("ip", "link", "set", "out0", "up")
            self.run("ip", "addr", "add", f"{OUTSIDE_IP}/24", "dev", "eth0")
            self.run("ip", "link", "set", "eth0", "up")
        except BaseException:
            self.close()
            raise
        self.node = node
        self.servers = []

    def serve(self, proto, port, family="4", bind=None):
        server = Server(self.enter(), proto, port, family, bind)
        self.servers.append(server)
        return server

    def close(self):
        for server in getattr(self, "servers", []):
            server.stop()
        super().close()


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def node(request, tmp_path, mark):
    assert os.access(PODNET, os.X_OK), f"{PODNET} is not an executable: build it " \
        "(build/tests/podnet) or set BERTH_PODNET"
    the_node = Node(tmp_path / "node", mark)
    try:
        yield the_node
        found = the_node.teardown()
    finally:
        the_node.close()
    call = getattr(request.node, "rep_call", None)
    if found and call is not None and call.passed:
        pytest.fail("the test left things behind in its node:\n" + "\n".join(found),
                    pytrace=False)


@pytest.fixture
def outside(node):
    the_outside = Outside(node)
    yield the_outside
    the_outside.close()


@pytest.fixture(params=["bridge", "cni"])
def backend(request, node, tmp_path):
    """The same tests over podnet's built-in bridge and over Debian's CNI plugins."""
    if request.param == "cni":
        node.use_cni(tmp_path / "cni")
    return request.param
