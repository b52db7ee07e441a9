"""Helpers and fixtures for the image tests (test_images.py): test images, local registries and
per-test image stores.

Fixtures (a test module imports the ones it uses: `from imagetools import images, ...`):
  images         (session) every test image, built once by tests/fixtures/make-image.py into one
                 OCI layout; `images.expected["full"]` is its expected description (see
                 make-image.py), `images.layout` the layout's path, `images.escape` the host
                 directory the hostile images aim at (holding only the file "victim").
  registry       (session) Debian's docker-registry on 127.0.0.1 with every image pushed
                 (test/small:v1 and :latest, test/small-b:v1, test/full:v1, test/multi:v1,
                 test/hostile-*:v1); `registry.ref("test/full:v1")` is the full name.
  auth_registry  (session) a second docker-registry, htpasswd basic auth (USER:PASSWORD), with
                 test/small:v1.
  store          a fresh berth store (its --root in /tmp, removed after the test, which must
                 leave no mount under it): `store("pull", name)` runs `berth --root R image pull
                 NAME` and returns a CompletedProcess.
  fake_registry  factory: fake_registry(*options, layout=None) starts
                 tests/fixtures/fake-registry.py (default layout: the images' layout), stopped at
                 teardown.
Every process started here is stopped by its pid; nothing is left behind (skopeo's blob-info
cache goes to the session's temporary directory, not /var/lib/containers).
"""

import base64
import ctypes
import hashlib
import importlib.util
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from proctools import mounts_under, stop_process, umount, wait_until  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
BERTH = os.environ.get("BERTH") or str(REPO / "build" / "tools" / "berth")
FIXTURES = Path(os.environ.get("BERTH_FIXTURES") or REPO / "tests" / "fixtures")
MAKE_IMAGE = FIXTURES / "make-image.py"
FAKE_REGISTRY = FIXTURES / "fake-registry.py"
PYTHON = "/usr/bin/python3"

USER, PASSWORD = "berth-user", "s3cret-pass"
BERTH_TIMEOUT = 180  # seconds, for one berth command
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = ", ".join([MT_MANIFEST, MT_INDEX,
                    "application/vnd.docker.distribution.manifest.v2+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json"])

_libc = ctypes.CDLL(None, use_errno=True)
MNT_DETACH = 2


def _load_make_image():
    spec = importlib.util.spec_from_file_location("make_image", MAKE_IMAGE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mi = _load_make_image()


# --- small helpers ----------------------------------------------------------------------------


def describe(result):
    return (f"$ {' '.join(map(str, result.args))}\nrc={result.returncode}\n"
            f"--- stdout ---\n{result.stdout}--- stderr ---\n{result.stderr}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, headers=None, method="GET", timeout=10):
    """(status, headers, body) of one HTTP request; never raises for an HTTP status."""
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    # the tests' TLS registry has a self-signed certificate: the tests' own probes accept it
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        urllib.request.HTTPSHandler(context=ssl._create_unverified_context()))
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def assert_tree(expected_tree, path, what):
    """The tree at path equals the expected tree (make-image.py's format)."""
    problems = mi.compare_trees(expected_tree, mi.scan_tree(path))
    assert not problems, f"{what} ({path}) differs from the expected tree:\n  " + \
        "\n  ".join(problems)


def skopeo_env(tmp):
    """skopeo as root writes a blob-info cache to /var/lib/containers: point it at tmp."""
    env = dict(os.environ)
    env.update({"_CONTAINERS_ROOTLESS_UID": "1", "XDG_DATA_HOME": str(tmp),
                "HOME": str(tmp), "XDG_RUNTIME_DIR": str(tmp)})
    for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env.pop(key, None)
    return env


def run(argv, env=None, timeout=120, check=True):
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                            timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    if check:
        assert result.returncode == 0, "command failed\n" + describe(result)
    return result


# --- images -----------------------------------------------------------------------------------


class Images:
    """The test images, built into one layout at the start of the session."""

    SIMPLE = {"small": {}, "small-b": {"profile": "small", "salt": "b"}, "full": {},
              "multi": {}, "latest": {"profile": "small"}}

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.layout = self.workdir / "layout"
        self.escape = Path(tempfile.mkdtemp(prefix="berth-hostile-", dir="/tmp"))
        (self.escape / "victim").write_bytes(b"victim\n")
        self.expected = {}
        for ref, spec in self.SIMPLE.items():
            spec = dict(spec)
            profile = spec.pop("profile", ref)
            self.expected[ref] = mi.build(str(self.layout), profile, ref, **spec)
        self.hostile = [p for p in mi.PROFILES if p.startswith("hostile-")]
        for profile in self.hostile:
            self.expected[profile] = mi.build(str(self.layout), profile, profile,
                                              escape=str(self.escape))

    def escape_intact(self):
        """The hostile images' target directory still holds only its untouched victim."""
        entries = sorted(os.listdir(self.escape))
        victim = self.escape / "victim"
        assert entries == ["victim"], f"{self.escape} was written to: {entries}"
        assert victim.read_bytes() == b"victim\n", f"{victim} was overwritten"
        assert victim.stat().st_nlink == 1, f"{victim} got a hard link"

    def build_extra(self, profile, ref, layout=None, **params):
        """Another image (e.g. a uniquely salted one) into layout (default: a new one)."""
        layout = Path(layout or tempfile.mkdtemp(prefix="layout-", dir=self.workdir))
        return layout, mi.build(str(layout), profile, ref, **params)

    def cleanup(self):
        shutil.rmtree(self.escape, ignore_errors=True)


def layout_blob(layout, digest):
    return Path(layout) / "blobs" / "sha256" / digest.split(":", 1)[1]


def layout_put_json(layout, obj):
    data = mi.canonical_json(obj)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    layout_blob(layout, digest).write_bytes(data)
    return digest, len(data)


def layout_retag(layout, ref, manifest_digest, size):
    mi.Layout(str(layout)).tag(ref, {"mediaType": MT_MANIFEST, "digest": manifest_digest,
                                     "size": size})


def flip_byte(path, offset=None):
    """Change one byte of a file in place (the middle one by default)."""
    data = bytearray(Path(path).read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0x55
    Path(path).write_bytes(bytes(data))


# --- registries -------------------------------------------------------------------------------


class DockerRegistry:
    """Debian's docker-registry (the CNCF distribution registry) on 127.0.0.1:PORT."""

    tls = False

    def __init__(self, workdir, htpasswd=False, tls=False):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.storage = self.workdir / "storage"
        self.storage.mkdir(exist_ok=True)
        self.creds = f"{USER}:{PASSWORD}" if htpasswd else None
        auth = ""
        if htpasswd:
            line = run(["htpasswd", "-Bbn", USER, PASSWORD]).stdout.strip()
            (self.workdir / "htpasswd").write_text(line + "\n")
            auth = (f"auth:\n  htpasswd:\n    realm: berth-tests\n"
                    f"    path: {self.workdir / 'htpasswd'}\n")
        tls_yaml = ""
        if tls:  # a self-signed certificate that no system CA store trusts
            cert, key = self.workdir / "cert.pem", self.workdir / "key.pem"
            run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                 "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                 "-keyout", str(key), "-out", str(cert)])
            tls_yaml = f"  tls:\n    certificate: {cert}\n    key: {key}\n"
        self.proc = None
        self.log = None
        for _ in range(5):  # the free port may be taken between probe and bind
            self.port = free_port()
            (self.workdir / "config.yml").write_text(
                "version: 0.1\n"
                "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
                f"storage:\n  filesystem:\n    rootdirectory: {self.storage}\n"
                "  delete:\n    enabled: true\n"
                "  maintenance:\n    uploadpurging:\n      enabled: false\n"
                f"http:\n  addr: 127.0.0.1:{self.port}\n  secret: berth-tests\n" + tls_yaml + auth)
            self.log = open(self.workdir / "registry.log", "ab")
            self.proc = subprocess.Popen(
                ["docker-registry", "serve", str(self.workdir / "config.yml")],
                stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
            if self._wait_ready():
                return
            stop_process(self.proc)
            self.log.close()
        raise RuntimeError("docker-registry did not start: " +
                           (self.workdir / "registry.log").read_text()[-2000:])

    def _wait_ready(self):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                status, _, _ = http(f"{self.url}/v2/", timeout=2)
                if status in (200, 401):
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def ref(self, repo_tag):
        return f"{self.host}/{repo_tag}"

    def _auth_header(self):
        if not self.creds:
            return {}
        return {"Authorization": "Basic " + base64.b64encode(self.creds.encode()).decode()}

    def manifest_digest(self, repo, ref):
        status, headers, body = http(f"{self.url}/v2/{repo}/manifests/{ref}",
                                     {"Accept": ACCEPT, **self._auth_header()})
        assert status == 200, f"GET manifest {repo}:{ref}: HTTP {status} {body[:200]!r}"
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def push(self, layout, ref, repo_tag, expected_digest, tmp):
        """skopeo copy oci:LAYOUT:REF docker://HOST/REPO:TAG, keeping every digest (checked)."""
        argv = ["skopeo", "copy", "-q", "--all", "--preserve-digests", "--dest-tls-verify=false",
                f"oci:{layout}:{ref}", f"docker://{self.host}/{repo_tag}"]
        if self.creds:
            argv[2:2] = ["--dest-creds", self.creds]
        run(argv, env=skopeo_env(tmp), timeout=300)
        repo, tag = repo_tag.rsplit(":", 1)
        got = self.manifest_digest(repo, tag)
        assert got == expected_digest, f"skopeo changed {repo_tag}'s digest: {got}"

    def blob_path(self, digest):
        hexd = digest.split(":", 1)[1]
        return self.storage / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"

    def stop(self):
        if self.proc:
            stop_process(self.proc)
            self.proc = None
        if self.log:
            self.log.close()


class FakeRegistry:
    """tests/fixtures/fake-registry.py serving an OCI layout (see its docstring)."""

    def __init__(self, layout, *options, logdir=None):
        self.log = open(Path(logdir or tempfile.gettempdir()) / "fake-registry.log", "ab")
        self.proc = subprocess.Popen([PYTHON, str(FAKE_REGISTRY), *map(str, options),
                                      str(layout)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.log)
        line = self.proc.stdout.readline().decode().strip()
        if not line.isdigit():
            stop_process(self.proc)
            raise RuntimeError(f"fake-registry.py did not print its port (got {line!r})")
        self.port = int(line)

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def ref(self, repo_tag):
        return f"{self.host}/{repo_tag}"

    def stats(self):
        status, _, body = http(f"{self.url}/stats")
        assert status == 200, f"GET /stats: HTTP {status}"
        return json.loads(body)

    def stop(self):
        stop_process(self.proc)
        self.proc.stdout.close()
        self.log.close()


# --- the store under test ---------------------------------------------------------------------


class Store:
    """A berth image store: `store(*args)` runs `berth --root ROOT [--registries F]
    [--authfile F] image ARGS...` and returns a text CompletedProcess."""

    def __init__(self, root, workdir):
        self.root = Path(root)
        self.workdir = Path(workdir)
        self.registries = None
        self.authfile = None
        self.options = []  # more global options, before the command
        self.spawned = 0
        home = self.workdir / "home"
        home.mkdir(exist_ok=True)
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR",
                                 "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                                 "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY")}
        self.env["HOME"] = str(home)  # no ~/.docker/config.json of the machine's

    def argv(self, *args, image=True):
        argv = [BERTH, "--root", str(self.root)]
        if self.registries:
            argv += ["--registries", str(self.registries)]
        if self.authfile:
            argv += ["--authfile", str(self.authfile)]
        argv += self.options
        if image:
            argv.append("image")
        return argv + [str(a) for a in args]

    def __call__(self, *args, timeout=BERTH_TIMEOUT, image=True, env=None):
        argv = self.argv(*args, image=image)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                      env=env or self.env, timeout=timeout)
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                rc = None
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(argv, rc, out.read().decode(errors="replace"),
                                                 err.read().decode(errors="replace"))
        if rc is None:
            pytest.fail(f"berth timed out after {timeout}s\n" + describe(result), pytrace=False)
        return result

    def ok(self, *args, **kw):
        result = self(*args, **kw)
        assert result.returncode == 0, "berth failed\n" + describe(result)
        return result

    def spawn(self, *args):
        """Start berth in the background (stdout/stderr to files in workdir); a Popen."""
        self.spawned += 1
        out = open(self.workdir / f"spawn-{self.spawned}.out", "wb")
        err = open(self.workdir / f"spawn-{self.spawned}.err", "wb")
        proc = subprocess.Popen(self.argv(*args), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, env=self.env)
        out.close()
        err.close()
        return proc

    def pull(self, name, *options):
        """Pull; return (printed name, printed digest)."""
        result = self.ok("pull", *options, name)
        fields = result.stdout.split()
        assert len(fields) == 2 and result.stdout.count("\n") == 1, \
            "pull should print one line \"NAME DIGEST\"\n" + describe(result)
        return fields[0], fields[1]

    def ls(self):
        result = self.ok("ls", "--format", "json")
        try:
            return json.loads(result.stdout)
        except ValueError:
            pytest.fail("ls --format json did not print JSON\n" + describe(result))

    def inspect(self, name):
        result = self.ok("inspect", name)
        try:
            return json.loads(result.stdout)
        except ValueError:
            pytest.fail("inspect did not print JSON\n" + describe(result))

    # the store's files

    @property
    def content(self):
        return self.root / "content"

    def blobs(self):
        d = self.content / "blobs" / "sha256"
        return {"sha256:" + n for n in os.listdir(d)} if d.is_dir() else set()

    def blob_path(self, digest):
        return self.content / "blobs" / "sha256" / digest.split(":", 1)[1]

    def snapshots(self):
        """Names of the snapshot directories (chain ID hex)."""
        d = self.root / "snapshots"
        return sorted(n for n in os.listdir(d) if (d / n).is_dir()) if d.is_dir() else []

    def snapshot_dir(self, chain_id):
        return self.root / "snapshots" / chain_id.split(":", 1)[1] / "fs"

    def ingest(self):
        d = self.root / "ingest"
        return sorted(os.listdir(d)) if d.is_dir() else []

    def leases(self):
        d = self.root / "leases"
        return sorted(os.listdir(d)) if d.is_dir() else []

    def index_names(self):
        path = self.content / "index.json"
        if not path.exists():
            return []
        index = json.loads(path.read_text())
        return [m.get("annotations", {}).get("org.opencontainers.image.ref.name")
                for m in index.get("manifests", [])]

    def du(self):
        result = self.ok("du")
        values = {}
        for line in result.stdout.splitlines():
            key, _, value = line.partition(" ")
            values[key] = int(value)
        assert set(values) == {"bytes", "inodes"}, "du: expected bytes and inodes\n" + \
            describe(result)
        return values

    def assert_consistent(self):
        """`check` is clean and every blob file matches its name."""
        result = self("check")
        assert result.returncode == 0 and result.stdout.strip() == "ok", \
            "check should print ok\n" + describe(result)
        for digest in self.blobs():
            assert sha256_file(self.blob_path(digest)) == digest, f"blob {digest} is corrupt"

    def assert_no_leftovers(self, allow_partials=False):
        """Nothing half-done: no snapshot under construction, partial download (unless
        allow_partials: kept for a later resume) or stray file outside the store's fixed
        layout, and every snapshot directory is complete."""
        if not allow_partials:
            assert self.ingest() == [], f"ingest/ is not empty: {self.ingest()}"
        allowed_dirs = {"content", "content/blobs", "content/blobs/sha256", "snapshots",
                        "ingest", "leases"}
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel = os.path.relpath(dirpath, self.root)
            if rel.startswith("snapshots/"):
                dirnames[:] = []
                continue
            for d in dirnames:
                p = os.path.normpath(os.path.join(rel, d))
                if p in allowed_dirs:
                    continue
                if p.startswith("snapshots/") and p.count("/") == 1 and \
                        re.fullmatch(r"[0-9a-f]{64}", d):
                    continue
                raise AssertionError(f"unexpected directory in the store: {p}")
            for f in filenames:
                p = os.path.normpath(os.path.join(rel, f))
                if rel in ("content/blobs/sha256",):
                    assert len(f) == 64 and all(c in "0123456789abcdef" for c in f), \
                        f"stray file in blobs: {p}"
                elif rel == "content":
                    assert f in ("oci-layout", "index.json"), f"stray file in content/: {p}"
                elif rel == "ingest" and not allow_partials:
                    raise AssertionError(f"partial download left: {p}")
                elif rel == "snapshots" or rel == "leases":
                    assert not f.startswith((".tmp", "tmp")), f"stray temporary file: {p}"
        for name in self.snapshots():
            d = self.root / "snapshots" / name
            assert (d / "fs").is_dir(), f"snapshot {name} has no fs/: {os.listdir(d)}"


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def session_dir():
    d = Path(tempfile.mkdtemp(prefix="berth-images-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def images(session_dir):
    built = Images(session_dir / "images")
    yield built
    built.cleanup()


PUSHED = [("small", "test/small:v1"), ("small", "test/small:latest"),
          ("small-b", "test/small-b:v1"), ("full", "test/full:v1"), ("multi", "test/multi:v1")]


@pytest.fixture(scope="session")
def registry(images, session_dir):
    reg = DockerRegistry(session_dir / "registry")
    try:
        pushes = PUSHED + [(p, f"test/{p}:v1") for p in images.hostile]
        for ref, repo_tag in pushes:
            reg.push(images.layout, ref, repo_tag, images.expected[ref]["manifestDigest"],
                     session_dir)
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def auth_registry(images, session_dir):
    reg = DockerRegistry(session_dir / "auth-registry", htpasswd=True)
    try:
        reg.push(images.layout, "small", "test/small:v1",
                 images.expected["small"]["manifestDigest"], session_dir)
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def store(request, tmp_path):
    """The store's root is tmp_path/root; tmp_path (under /tmp) is emptied after the test."""
    workdir = tmp_path
    s = Store(workdir / "root", workdir)
    yield s
    left = mounts_under(workdir)
    for point in reversed(left):
        try:
            umount(point, MNT_DETACH)
        except OSError:
            pass
    for entry in os.listdir(workdir):
        path = workdir / entry
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()
    call = getattr(request.node, "rep_call", None)
    if left and call is not None and call.passed:
        pytest.fail("test left mounts under its store:\n  " + "\n  ".join(left), pytrace=False)


@pytest.fixture
def fake_registry(images, tmp_path):
    started = []

    def start(*options, layout=None):
        reg = FakeRegistry(layout or images.layout, *options, logdir=tmp_path)
        started.append(reg)
        return reg

    yield start
    for reg in started:
        reg.stop()
