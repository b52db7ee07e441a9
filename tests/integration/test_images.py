"""`berth image`: pulls from real and fake registries, the store's layout, snapshots and mounted
root filesystems compared file by file with make-image.py's expected trees, garbage collection,
import and export, hostile and corrupt images, and bad input.

Images come from tests/fixtures/make-image.py, pushed once per session to Debian's
docker-registry on 127.0.0.1 (imagetools.py), or served by tests/fixtures/fake-registry.py when a
test needs its counters or faults. Each test gets a fresh store (--root in /tmp) and must leave
no mount under it.
"""

import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest
from imagetools import (  # noqa: F401 (fixtures)
    MT_INDEX,
    MT_MANIFEST,
    PASSWORD,
    DockerRegistry,
    USER,
    assert_tree,
    auth_registry,
    describe,
    fake_registry,
    flip_byte,
    images,
    layout_blob,
    layout_put_json,
    layout_retag,
    mi,
    mounts_under,
    registry,
    run,
    session_dir,
    skopeo_env,
    store,
    wait_until,
)

HOST_PLATFORM = "linux/amd64"


# --- helpers ----------------------------------------------------------------------------------


def expect_error(result, code, *needles, progress_allowed=False):
    """A refused command: exit code `code` and one stderr line "berth: ..." naming each needle
    (a tuple of needles: any one of them). A pull may print progress lines before it."""
    assert result.returncode == code, f"expected exit {code}\n" + describe(result)
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("berth: ")]
    assert len(errors) == 1, "expected exactly one \"berth: \" error line\n" + describe(result)
    assert lines[-1] == errors[0], "the error should be the last line\n" + describe(result)
    if not progress_allowed:
        assert len(lines) == 1, "expected one line on stderr\n" + describe(result)
    for needle in needles:
        options = needle if isinstance(needle, tuple) else (needle,)
        assert any(str(o) in errors[0] for o in options), \
            f"the error should name {' or '.join(map(repr, options))}\n" + describe(result)
    return errors[0]


def check_inspect(info, exp, name, store):
    """inspect's JSON against an image's expected description."""
    assert info["name"] == name
    assert info["digest"] == exp["manifestDigest"]
    assert info["mediaType"] == MT_MANIFEST
    assert info["platform"] == exp["platform"]
    assert info["configDigest"] == exp["configDigest"]
    assert info["config"] == exp["config"], "inspect's config is not the image's config"
    assert info["size"] == exp["size"], "size: manifest + config + layer blobs"
    assert len(info["layers"]) == len(exp["layers"])
    unpacked = 0
    for got, want in zip(info["layers"], exp["layers"]):
        for key in ("digest", "mediaType", "size", "diffID", "chainID"):
            assert got[key] == want[key], f"layer {want['digest']}: {key}"
        assert os.path.isabs(got["snapshot"])
        assert os.path.realpath(got["snapshot"]) == \
            os.path.realpath(store.snapshot_dir(want["chainID"])), \
            "a layer's snapshot is snapshots/<chainID hex>/fs"
        assert isinstance(got["unpackedSize"], int) and got["unpackedSize"] >= 0
        unpacked += got["unpackedSize"]
    apparent = apparent_size(exp)
    assert info["unpackedSize"] == unpacked or abs(info["unpackedSize"] - unpacked) < 1 << 20
    assert apparent // 2 <= info["unpackedSize"] <= 2 * apparent + 8192 * entries(exp) + (1 << 20)


def apparent_size(exp):
    """Bytes of regular-file content across the image's layers (hardlinks counted once)."""
    total = 0
    for layer in exp["layers"]:
        seen = set()
        for path, d in layer["tree"].items():
            if d["type"] == "file" and d.get("hardlink", path) not in seen:
                seen.add(d.get("hardlink", path))
                total += d["size"]
    return total


def entries(exp):
    return sum(len(layer["tree"]) for layer in exp["layers"])


def assert_snapshots(store, info, exp):
    for got, want in zip(info["layers"], exp["layers"]):
        assert_tree(want["tree"], got["snapshot"], f"snapshot of layer {want['digest']}")


def pull_and_verify(store, name, exp, *options):
    got_name, digest = store.pull(name, *options)
    assert got_name == name
    assert digest == exp["manifestDigest"]
    info = store.inspect(name)
    check_inspect(info, exp, name, store)
    assert_snapshots(store, info, exp)
    return info


def progress_states(stderr):
    """{12-hex digest prefix: [states]} from pull's plain (non-tty) progress lines."""
    states = {}
    for line in stderr.splitlines():
        m = re.match(r"^(?:sha256:)?([0-9a-f]{12})[0-9a-f]*:? +(\w+)", line)
        if m:
            states.setdefault(m.group(1), []).append(m.group(2))
    return states


def write_json(path, obj):
    Path(path).write_text(json.dumps(obj))
    return path


def authfile(path, host, user=USER, password=PASSWORD):
    import base64

    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return write_json(path, {"auths": {host: {"auth": auth}}})


def snapshot_inodes(store):
    return {n: os.stat(store.root / "snapshots" / n / "fs").st_ino for n in store.snapshots()}


def assert_empty_store(store):
    assert store.blobs() == set(), f"blobs remain: {sorted(store.blobs())}"
    assert store.snapshots() == [], f"snapshots remain: {store.snapshots()}"
    assert store.index_names() == []
    assert store.ingest() == []
    assert store.leases() == []


# --- pull and the store's layout --------------------------------------------------------------


def test_pull_small(store, registry, images):
    exp = images.expected["small"]
    name = registry.ref("test/small:v1")
    pull_and_verify(store, name, exp)
    assert store.index_names() == [name], \
        "content/index.json names the image by its full normalised name"
    assert json.loads((store.content / "oci-layout").read_text())["imageLayoutVersion"]
    assert len(store.snapshots()) == 2
    assert store.blobs() == {exp["manifestDigest"], exp["configDigest"],
                             *(l["digest"] for l in exp["layers"])}
    store.assert_consistent()
    store.assert_no_leftovers()


def test_pull_full_snapshots(store, registry, images):
    """6 layers: gzip, zstd, uncompressed, gzip, an empty one, gzip; each snapshot equals its
    expected tree: whiteouts as 0/0 devices, the opaque xattr, modes, owners, xattrs (user.* and
    security.capability), links, hardlinks, FIFOs, mtimes."""
    exp = images.expected["full"]
    assert {l["mediaType"].rsplit(".", 1)[-1] for l in exp["layers"]} == \
        {"tar+gzip", "tar+zstd", "tar"}
    pull_and_verify(store, registry.ref("test/full:v1"), exp)
    assert len(store.snapshots()) == len(exp["layers"])
    store.assert_consistent()
    store.assert_no_leftovers()


def test_pull_quiet_prints_digest(store, registry, images):
    result = store.ok("pull", "-q", registry.ref("test/small:v1"))
    assert result.stdout == images.expected["small"]["manifestDigest"] + "\n"


def test_pull_format_json(store, registry, images):
    """--format json: one object on stdout, the result or the error with its errno's name (how
    berthd runs its pulls); no progress lines on stdout."""
    ref = registry.ref("test/small:v1")
    result = store.ok("pull", "--format", "json", ref)
    assert json.loads(result.stdout) == {
        "name": ref, "digest": images.expected["small"]["manifestDigest"]}
    bad = store("pull", "--format", "json", registry.ref("test/absent:v1"))
    assert bad.returncode == 1
    err = json.loads(bad.stdout)["error"]
    assert err["code"] == "ENOENT" and "test/absent" in err["message"], err
    assert "test/absent" in bad.stderr.splitlines()[-1]
    expect_error(store("pull", "--format", "yaml", ref), 2, ("--format yaml", "text or json"))


def test_mount_merged_rootfs(store, registry, images, tmp_path):
    """mount: the overlay of the image at DIR/rootfs equals the expected merged tree (whiteouts
    and opaque directories applied, hardlinks one inode); writes go to DIR/upper; unmount
    removes it all."""
    exp = images.expected["full"]
    name = registry.ref("test/full:v1")
    store.pull(name)
    target = tmp_path / "ctr"
    result = store.ok("mount", name, target)
    rootfs = target / "rootfs"
    assert result.stdout == f"{rootfs}\n"
    assert mounts_under(target) == [str(rootfs)]
    assert os.listdir(target / "upper") == []
    assert_tree(exp["merged"], rootfs, "the mounted root filesystem")
    assert len(store.leases()) == 1, "a mounted rootfs holds a lease"

    (rootfs / "etc" / "written").write_text("in the upper layer\n")
    (rootfs / "etc" / "passwd").unlink()  # a whiteout in upper/, the snapshot untouched
    assert (target / "upper" / "etc" / "written").read_text() == "in the upper layer\n"
    info = store.inspect(name)
    assert_tree(exp["layers"][0]["tree"], info["layers"][0]["snapshot"], "the base snapshot")

    store.ok("unmount", target)
    assert mounts_under(target) == []
    assert not any((target / d).exists() for d in ("rootfs", "upper", "work"))
    assert store.leases() == []
    store.ok("unmount", target)  # idempotent
    store.assert_consistent()


def test_mounted_busybox_runs(store, registry, images, tmp_path):
    name = registry.ref("test/small:v1")
    store.pull(name)
    rootfs = Path(store.ok("mount", name, tmp_path / "c").stdout.strip())
    try:
        out = run(["chroot", rootfs, "/bin/sh", "-c", "/bin/busybox cat /etc/hostname; echo ok"])
        assert out.stdout == "small\nok\n"
    finally:
        store.ok("unmount", tmp_path / "c")


def test_content_is_an_oci_layout(store, registry, images, tmp_path, session_dir):
    """Other tools read the store's content/ as an OCI image layout, by the full name."""
    small, full = registry.ref("test/small:v1"), registry.ref("test/full:v1")
    store.pull(small)
    store.pull(full)
    env = skopeo_env(session_dir)
    layout = store.content
    out = run(["skopeo", "inspect", f"oci:{layout}:{full}"], env=env)
    assert json.loads(out.stdout)["Digest"] == images.expected["full"]["manifestDigest"]
    run(["skopeo", "copy", "-q", "--preserve-digests", f"oci:{layout}:{full}",
         f"oci:{tmp_path / 'copy'}:y"], env=env)
    index = json.loads((tmp_path / "copy" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == images.expected["full"]["manifestDigest"]
    out = run(["umoci", "ls", "--layout", layout])
    assert sorted(out.stdout.split()) == sorted([small, full])
    # umoci 0.4.7 reads gzip layers only: unpack the small image and compare
    run(["umoci", "unpack", "--image", f"{layout}:{small}", tmp_path / "bundle"])
    assert_tree(images.expected["small"]["merged"], tmp_path / "bundle" / "rootfs",
                "umoci's unpack of the store's content")


def test_ls(store, registry, images):
    small, full = registry.ref("test/small:v1"), registry.ref("test/full:v1")
    store.pull(small)
    store.pull(full)
    listed = {i["name"]: i for i in store.ls()}
    assert set(listed) == {small, full}
    for name, ref in ((small, "small"), (full, "full")):
        exp = images.expected[ref]
        item = listed[name]
        assert item["digest"] == exp["manifestDigest"]
        assert item["configDigest"] == exp["configDigest"]
        assert item["platform"] == exp["platform"]
        assert item["created"] == mi.CREATED
        assert item["size"] == exp["size"]
        assert item["unpackedSize"] >= apparent_size(exp) // 2
    table = store.ok("ls").stdout.splitlines()
    assert table[0].split() == ["NAME", "DIGEST", "SIZE", "UNPACKED", "CREATED"]
    rows = {line.split()[0]: line.split()[1] for line in table[1:]}
    assert set(rows) == {small, full}
    for name, ref in ((small, "small"), (full, "full")):
        digest = images.expected[ref]["manifestDigest"]
        assert digest.startswith(rows[name]) or digest[7:].startswith(rows[name])
    assert sorted(store.ok("ls", "-q").stdout.split()) == sorted([small, full])


# --- names, digests, platforms ----------------------------------------------------------------


@pytest.mark.parametrize("form", ["digest", "tag+digest"])
def test_pull_by_digest(store, registry, images, form):
    exp = images.expected["small"]
    if form == "digest":
        name = registry.ref(f"test/small@{exp['manifestDigest']}")
    else:
        name = registry.ref(f"test/small:v1@{exp['manifestDigest']}")
    got_name, digest = store.pull(name)
    assert got_name == name and digest == exp["manifestDigest"]
    assert [i["name"] for i in store.ls()] == [name]
    assert_snapshots(store, store.inspect(name), exp)


def test_pull_unknown_digest(store, registry):
    name = registry.ref("test/small@sha256:" + "0" * 64)
    expect_error(store("pull", name), 1, ("0" * 64, name), progress_allowed=True)
    assert store.index_names() == []
    store.assert_no_leftovers()


def test_pull_unknown_tag_and_repository(store, registry):
    expect_error(store("pull", registry.ref("test/small:nope")), 1, ("nope", "test/small"),
                 progress_allowed=True)
    expect_error(store("pull", registry.ref("test/absent:v1")), 1, "test/absent",
                 progress_allowed=True)
    assert store.index_names() == []


def test_default_tag_is_latest(store, registry, images):
    got_name, digest = store.pull(registry.ref("test/small"))
    assert got_name == registry.ref("test/small:latest")
    assert digest == images.expected["small"]["manifestDigest"]
    assert [i["name"] for i in store.ls()] == [registry.ref("test/small:latest")]


def test_docker_hub_names_through_a_mirror(store, fake_registry, images, tmp_path):
    """busybox, library/busybox and docker.io/busybox:latest all normalise to
    docker.io/library/busybox:latest and come from the configured mirror; nothing tries the
    real docker.io (an https proxy that records and refuses every CONNECT stands guard)."""
    reg = fake_registry()
    store.registries = write_json(tmp_path / "registries.json", {
        "registries": {"docker.io": {"mirrors": [reg.url]}}})
    store.env.update({"https_proxy": reg.url, "http_proxy": reg.url, "HTTPS_PROXY": reg.url,
                      "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"})
    for alias in ("busybox", "library/busybox", "docker.io/busybox:latest"):
        got_name, digest = store.pull(alias)
        assert got_name == "docker.io/library/busybox:latest"
        assert digest == images.expected["latest"]["manifestDigest"]
    assert [i["name"] for i in store.ls()] == ["docker.io/library/busybox:latest"]
    stats = reg.stats()
    assert stats["requests"].get("/v2/library/busybox/manifests/latest", 0) >= 1
    assert stats["connect"] == [] and stats["proxied"] == [], \
        f"berth went past the mirror: {stats['connect']} {stats['proxied']}"


def test_platform_selection(store, registry, images):
    exp = images.expected["multi"]
    name = registry.ref("test/multi:v1")
    for platform in ("linux/arm64/v8", "linux/amd64"):
        sub = exp["manifests"][platform]
        root = store.root
        store.root = root.parent / ("root-" + platform.replace("/", "-"))
        try:
            opts = ["--platform", platform] if platform != HOST_PLATFORM else []
            got_name, digest = store.pull(name, *opts)
            assert got_name == name
            info = store.inspect(name)
            assert info["platform"] == platform
            assert info["configDigest"] == sub["configDigest"]
            if info["mediaType"] == MT_INDEX:
                assert info["digest"] == digest == exp["manifestDigest"]
            else:
                assert info["digest"] == digest == sub["manifestDigest"]
            assert_snapshots(store, info, sub)
            arch = Path(info["layers"][1]["snapshot"]) / "etc" / "arch"
            assert arch.read_text() == platform.split("/")[1] + "\n"
        finally:
            store.root = root


def test_platform_without_variant_matches(store, registry, images):
    sub = images.expected["multi"]["manifests"]["linux/arm64/v8"]
    store.pull(registry.ref("test/multi:v1"), "--platform", "linux/arm64")
    assert store.inspect(registry.ref("test/multi:v1"))["configDigest"] == sub["configDigest"]


def test_platform_missing_from_index(store, registry):
    result = store("pull", "--platform", "linux/s390x", registry.ref("test/multi:v1"))
    expect_error(result, 1, "linux/s390x", progress_allowed=True)
    assert store.index_names() == []
    assert store.snapshots() == []


def test_pull_platform_manifest_by_digest(store, registry, images):
    sub = images.expected["multi"]["manifests"]["linux/arm64/v8"]
    name = registry.ref(f"test/multi@{sub['manifestDigest']}")
    _, digest = store.pull(name)
    assert digest == sub["manifestDigest"]
    assert store.inspect(name)["platform"] == "linux/arm64/v8"


# --- sharing, no-ops, concurrency -------------------------------------------------------------


def test_second_pull_is_a_noop(store, fake_registry, images):
    reg = fake_registry()
    exp = images.expected["full"]
    name = reg.ref("test/full:full")
    store.pull(name)
    inodes = snapshot_inodes(store)
    blob_inodes = {d: os.stat(store.blob_path(d)).st_ino for d in store.blobs()}
    before = reg.stats()["requests"]
    result = store.ok("pull", name)
    assert result.stdout.split() == [name, exp["manifestDigest"]]
    after = reg.stats()["requests"]
    fetched = [p for p in after if "/blobs/" in p and after[p] != before.get(p, 0)]
    assert fetched == [], f"the second pull downloaded blobs again: {fetched}"
    states = progress_states(result.stderr)
    for layer in exp["layers"]:
        short = layer["digest"][7:19]
        assert "exists" in states.get(short, []), \
            f"layer {short} should be reported as \"exists\"\n" + describe(result)
    assert snapshot_inodes(store) == inodes, "snapshots were rebuilt"
    assert {d: os.stat(store.blob_path(d)).st_ino for d in store.blobs()} == blob_inodes


def test_shared_base_layer_stored_once(store, registry, images):
    a, b = images.expected["small"], images.expected["small-b"]
    assert a["layers"][0]["digest"] == b["layers"][0]["digest"]
    assert a["layers"][1]["digest"] != b["layers"][1]["digest"]
    store.pull(registry.ref("test/small:v1"))
    result = store.ok("pull", registry.ref("test/small-b:v1"))
    assert "exists" in progress_states(result.stderr).get(a["layers"][0]["digest"][7:19], []), \
        "the shared base layer should be reported as existing\n" + describe(result)
    assert len(store.snapshots()) == 3
    assert len(store.blobs()) == 7  # 2 manifests, 2 configs, 3 layers
    assert_snapshots(store, store.inspect(registry.ref("test/small-b:v1")), b)


def test_concurrent_pulls_of_one_image(store, registry, images):
    name = registry.ref("test/full:v1")
    procs = [store.spawn("pull", name) for _ in range(2)]
    for p in procs:
        p.wait(timeout=180)
    assert [p.returncode for p in procs] == [0, 0], \
        (store.workdir / "spawn-1.err").read_text() + (store.workdir / "spawn-2.err").read_text()
    exp = images.expected["full"]
    assert len(store.snapshots()) == len(exp["layers"])
    assert_snapshots(store, store.inspect(name), exp)
    store.assert_consistent()
    store.assert_no_leftovers()


# --- authentication ---------------------------------------------------------------------------


def test_https_verifies_certificates(store, tmp_path):
    """A registry not marked insecure is reached over HTTPS and its certificate is checked
    against the system's CA store: a self-signed one is refused, naming the problem."""
    reg = DockerRegistry(tmp_path / "tls-registry", tls=True)
    try:
        registries = tmp_path / "registries.json"
        registries.write_text(json.dumps({"registries": {reg.host: {"insecure": False}}}))
        store.registries = registries
        line = expect_error(store("pull", reg.ref("test/small:v1")), 1, reg.host,
                            progress_allowed=True)
        assert re.search(r"certificate|SSL", line), line
        assert "https://" + reg.host in line, line
        assert store.index_names() == []
    finally:
        reg.stop()


def test_basic_auth(store, auth_registry, images, tmp_path):
    name = auth_registry.ref("test/small:v1")
    expect_error(store("pull", name), 1, ("401", "unauthorized", "Unauthorized",
                                          "authentication", "credentials"),
                 progress_allowed=True)
    store.authfile = authfile(tmp_path / "wrong.json", auth_registry.host, password="wrong")
    expect_error(store("pull", name), 1, ("401", "unauthorized", "Unauthorized",
                                          "authentication", "credentials"),
                 progress_allowed=True)
    assert store.index_names() == []
    store.authfile = authfile(tmp_path / "auth.json", auth_registry.host)
    _, digest = store.pull(name)
    assert digest == images.expected["small"]["manifestDigest"]
    store.assert_consistent()


def test_bearer_token_auth(store, fake_registry, images, tmp_path):
    reg = fake_registry("--bearer", "--user", f"{USER}:{PASSWORD}")
    name = reg.ref("test/full:full")
    expect_error(store("pull", name), 1, ("401", "unauthorized", "Unauthorized",
                                          "authentication", "credentials", "token"),
                 progress_allowed=True)
    store.authfile = authfile(tmp_path / "auth.json", reg.host)
    before = reg.stats()["token_requests"]
    pull_and_verify(store, name, images.expected["full"])
    stats = reg.stats()
    tokens = stats["token_requests"] - before
    authorized = sum(n for p, n in stats["authorization"].items() if "/blobs/" in p)
    assert authorized >= len(images.expected["full"]["layers"]) + 1
    assert 1 <= tokens <= 2, f"the token should be reused, yet {tokens} were requested"
    assert any("repository:test/full:pull" in s for s in stats["token_scopes"])


def test_anonymous_bearer_token(store, fake_registry, images):
    reg = fake_registry("--bearer", "--access-token", "--scope-actions", "pull,push")
    pull_and_verify(store, reg.ref("test/small:small"), images.expected["small"])
    assert reg.stats()["token_requests"] >= 1


def test_credentials_not_sent_to_redirected_blobs(store, fake_registry, images, tmp_path):
    reg = fake_registry("--bearer", "--user", f"{USER}:{PASSWORD}", "--redirect")
    store.authfile = authfile(tmp_path / "auth.json", reg.host)
    pull_and_verify(store, reg.ref("test/small:small"), images.expected["small"])
    stats = reg.stats()
    assert stats["redirected_authorization"] == 0, "credentials leaked to the blob store"
    assert any(p.startswith("/redirected/") for p in stats["requests"])


# --- faults: resume, retries, corruption ------------------------------------------------------


def test_resume_after_kill(store, fake_registry, images):
    """kill -9 mid-download; the next pull resumes the partial download with a Range request
    and completes a consistent store."""
    reg = fake_registry("--stall", "4")
    name = reg.ref("test/small:small")
    exp = images.expected["small"]
    proc = store.spawn("pull", name)

    def partials():
        found = []
        for p in (store.root / "ingest").glob("*"):
            try:
                if p.stat().st_size > 0:
                    found.append(p)
            except FileNotFoundError:
                pass
        return found

    try:
        wait_until(partials, 45, "a partial download in ingest/")
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -9
    ranges_before = {p: len(r) for p, r in reg.stats()["ranges"].items()}
    pull_and_verify(store, name, exp)
    ranges = reg.stats()["ranges"]
    resumed = [r for p, rs in ranges.items() for r in rs[ranges_before.get(p, 0):]
               if re.match(r"bytes=[1-9]\d*-", r)]
    assert resumed, f"the second pull should resume with Range: {ranges}"
    store.assert_consistent()
    store.ok("prune")  # whatever the killed process left half-done
    store.assert_no_leftovers()
    assert_snapshots(store, store.inspect(name), exp)


def test_resume_after_cut_connection(store, fake_registry, images):
    reg = fake_registry("--cut-after", "3000")
    pull_and_verify(store, reg.ref("test/full:full"), images.expected["full"])
    ranges = reg.stats()["ranges"]
    assert any(re.match(r"bytes=[1-9]\d*-", r) for rs in ranges.values() for r in rs), \
        f"a cut download should resume with Range: {ranges}"
    store.assert_consistent()


def test_server_ignoring_range(store, fake_registry, images):
    """A server answering 200 with the whole blob to a Range request: berth starts over rather
    than appending."""
    reg = fake_registry("--cut-after", "3000", "--ignore-range")
    pull_and_verify(store, reg.ref("test/full:full"), images.expected["full"])
    store.assert_consistent()


def test_retries_on_5xx(store, fake_registry, images, tmp_path):
    reg = fake_registry("--fail-first", "2")
    pull_and_verify(store, reg.ref("test/small:small"), images.expected["small"])
    requests = reg.stats()["requests"]
    for path, n in requests.items():
        if "/blobs/" in path or "/manifests/" in path:
            assert n >= 3, f"{path}: 2 failures then a success, yet {n} requests"
    # retries: 1 gives up
    reg2 = fake_registry("--fail-first", "5")
    store.registries = write_json(tmp_path / "registries.json", {"retries": 1})
    expect_error(store("pull", reg2.ref("test/small:small")), 1, "503", progress_allowed=True)
    n = max(n for p, n in reg2.stats()["requests"].items() if "/manifests/" in p)
    assert n <= 2, f"retries: 1, yet {n} requests of one path"
    assert reg2.ref("test/small:small") not in store.index_names()


CORRUPTIONS = ["layer-bytes", "config-bytes", "manifest-bytes", "diffid", "layer-size"]


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_corrupt_content_refused(store, fake_registry, images, kind):
    """A blob that does not match its digest (or size, or the config's diffID) is refused and
    not kept; fixed, the same pull then works."""
    salt = uuid.uuid4().hex
    layout, exp = images.build_extra("small", "c", salt=salt)
    layer = exp["layers"][1]
    manifest_digest = exp["manifestDigest"]
    ref = "test/c:c"
    needle = None
    if kind == "layer-bytes":
        flip_byte(layout_blob(layout, layer["digest"]))
        needle = layer["digest"]
    elif kind == "config-bytes":
        flip_byte(layout_blob(layout, exp["configDigest"]), offset=40)
        needle = exp["configDigest"]
    elif kind == "manifest-bytes":
        path = layout_blob(layout, manifest_digest)
        path.write_text(path.read_text().replace(f'"size":{layer["size"]}',
                                                 f'"size":{layer["size"] + 1}'))
        ref = f"test/c@{manifest_digest}"
        needle = manifest_digest
    else:
        config = dict(exp["config"])
        if kind == "diffid":
            config["rootfs"] = {"type": "layers",
                                "diff_ids": [exp["layers"][0]["diffID"], "sha256:" + "1" * 64]}
            needle = (layer["digest"], "1" * 64, layer["diffID"])
        config_digest, config_size = layout_put_json(layout, config)
        manifest = json.loads(layout_blob(layout, manifest_digest).read_text())
        manifest["config"].update(digest=config_digest, size=config_size)
        if kind == "layer-size":
            manifest["layers"][1]["size"] += 7
            needle = layer["digest"]
        manifest_digest, size = layout_put_json(layout, manifest)
        layout_retag(layout, "c", manifest_digest, size)
    reg = fake_registry(layout=layout)
    name = reg.ref(ref)
    expect_error(store("pull", name), 1, needle, progress_allowed=True)
    assert store.index_names() == []
    if kind in ("layer-bytes", "layer-size", "diffid"):
        assert layer["digest"] not in store.blobs() or kind == "diffid", \
            "a corrupt blob was kept"
        assert layer["chainID"][7:] not in store.snapshots(), "a corrupt layer was unpacked"
    if kind == "config-bytes":
        assert exp["configDigest"] not in store.blobs()
    if kind.endswith("-bytes"):
        # bytes that do not match their digest are not kept for a "resume" either
        bad = needle[7:]
        assert not [p for p in store.ingest() if bad in p], \
            f"the corrupt download stays in ingest/: {store.ingest()}"
    # partial downloads of other, intact blobs (interrupted by the failure) may stay
    store.assert_no_leftovers(allow_partials=True)
    store.assert_consistent()
    # the real image (a fresh layout) pulls fine into the same store
    good, good_exp = images.build_extra("small", "c", salt=salt)
    reg2 = fake_registry(layout=good)
    pull_and_verify(store, reg2.ref("test/c:c"), good_exp)
    store.assert_consistent()


# --- hostile layers ---------------------------------------------------------------------------

REFUSED = ["hostile-abspath", "hostile-dotdot", "hostile-dotdot-inner", "hostile-symlink",
           "hostile-symlink-rel", "hostile-hardlink", "hostile-hardlink-abs",
           "hostile-whiteout-dotdot"]


@pytest.mark.parametrize("profile", REFUSED)
def test_hostile_layer_refused(store, registry, images, profile):
    exp = images.expected[profile]
    entry = exp["hostileEntry"]
    needle = os.path.basename(entry)
    if profile == "hostile-whiteout-dotdot":
        needle = ".wh.."
    elif profile.startswith("hostile-symlink"):
        needle = "escape"
    elif profile.startswith("hostile-hardlink"):
        needle = "victim"
    result = store("pull", registry.ref(f"test/{profile}:v1"))
    expect_error(result, 1, needle, progress_allowed=True)
    images.escape_intact()
    assert store.index_names() == []
    assert store.snapshots() == [], "the hostile layer left a snapshot"
    store.assert_no_leftovers()
    store.assert_consistent()


def test_device_nodes_dropped(store, registry, images):
    exp = images.expected["hostile-device"]
    name = registry.ref("test/hostile-device:v1")
    info = pull_and_verify(store, name, exp)
    snap = Path(info["layers"][0]["snapshot"])
    assert not (snap / "dev" / "evil-mem").exists() and not (snap / "dev" / "evil-sda").exists()
    assert (snap / "etc" / "after-devices").exists()


def test_device_nodes_allowed(store, registry, images):
    """--allow-devices: the layer's device nodes are made, with their numbers."""
    store.options = ["--allow-devices"]
    name = registry.ref("test/hostile-device:v1")
    store.ok("pull", name)
    snap = Path(store.inspect(name)["layers"][0]["snapshot"])
    mem, sda = os.lstat(snap / "dev" / "evil-mem"), os.lstat(snap / "dev" / "evil-sda")
    assert stat.S_ISCHR(mem.st_mode) and os.major(mem.st_rdev) == 1 and os.minor(mem.st_rdev) == 1
    assert stat.S_ISBLK(sda.st_mode) and os.major(sda.st_rdev) == 8 and os.minor(sda.st_rdev) == 0


@pytest.mark.parametrize("option,value,needle", [
    ("--max-layer-size", "64K", "limit of 65536 bytes"),
    ("--max-layer-entries", "3", "limit of 3 entries"),
])
def test_layer_limits_are_settable(store, registry, images, option, value, needle):
    """The tar-bomb limits apply per layer, from the command line; the refusal leaves nothing."""
    name = registry.ref("test/small:v1")
    store.options = [option, value]
    expect_error(store("pull", name), 1, needle, progress_allowed=True)
    assert store.index_names() == [] and store.snapshots() == []
    store.assert_no_leftovers()
    store.options = []
    store.ok("pull", name)


@pytest.fixture
def tmpfs_store(store):
    """The store on a 256 MiB tmpfs: a runaway unpack fills it in a second, not the disk."""
    store.root.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m,mode=0700", "berth-bomb",
                    str(store.root)], check=True)
    yield store
    subprocess.run(["umount", "-l", str(store.root)], check=False)


def test_tar_bomb_refused(tmpfs_store, registry, images):
    """A 2 MiB zstd layer holding a 64 GiB + 1 MiB file, past the default 64 GiB layer limit:
    refused quickly, naming the entry, leaving nothing."""
    store = tmpfs_store
    started = time.monotonic()
    result = store("pull", registry.ref("test/hostile-bomb:v1"), timeout=120)
    elapsed = time.monotonic() - started
    line = expect_error(result, 1, mi.BOMB_NAME, progress_allowed=True)
    assert any(w in line for w in ("limit", "too large", "exceeds", "size")), line
    assert elapsed < 60, f"the refusal took {elapsed:.0f}s"
    assert store.index_names() == [] and store.snapshots() == []
    store.assert_no_leftovers()
    usage = shutil.disk_usage(store.root)
    assert usage.used < 32 << 20, f"{usage.used} bytes left on the store's tmpfs"


# --- removal and garbage collection -----------------------------------------------------------


def test_rm_and_prune_empty_the_store(store, registry, images, tmp_path):
    small, full = registry.ref("test/small:v1"), registry.ref("test/full:v1")
    store.pull(small)
    store.pull(full)
    du_full = store.du()
    assert du_full["bytes"] >= images.expected["full"]["size"]
    assert du_full["inodes"] >= len(images.expected["full"]["merged"])

    store.ok("mount", full, tmp_path / "c")
    store.ok("rm", full)
    assert store.index_names() == [small]
    # the mounted rootfs' lease keeps full's snapshots
    full_chains = {l["chainID"][7:] for l in images.expected["full"]["layers"]}
    assert full_chains <= set(store.snapshots())
    store.ok("unmount", tmp_path / "c")
    store.ok("prune")
    assert not full_chains & set(store.snapshots())
    assert len(store.snapshots()) == 2
    store.assert_consistent()

    store.ok("rm", small)
    store.ok("prune")
    assert_empty_store(store)
    du_empty = store.du()
    assert du_empty["bytes"] < du_full["bytes"] // 20
    assert du_empty["inodes"] < 100
    store.assert_consistent()


def test_rm_several_names_and_unknown(store, registry):
    small, b = registry.ref("test/small:v1"), registry.ref("test/small-b:v1")
    store.pull(small)
    store.pull(b)
    store.ok("rm", small, b)
    assert_empty_store(store)
    expect_error(store("rm", small), 1, small)


def test_prune_all_keeps_images_in_use(store, registry, images, tmp_path):
    small, full = registry.ref("test/small:v1"), registry.ref("test/full:v1")
    store.pull(small)
    store.pull(full)
    store.ok("mount", small, tmp_path / "c")
    store.ok("prune", "--all")
    assert store.index_names() == [small]
    assert len(store.snapshots()) == 2
    assert_tree(images.expected["small"]["merged"], tmp_path / "c" / "rootfs", "the rootfs")
    store.ok("unmount", tmp_path / "c")
    store.ok("prune", "--all")
    assert_empty_store(store)


@pytest.mark.parametrize("damage", ["layer-blob-changed", "config-blob-removed",
                                    "snapshot-removed", "snapshot-info-removed"])
def test_check_finds_damage(store, registry, images, damage):
    exp = images.expected["small"]
    store.pull(registry.ref("test/small:v1"))
    store.assert_consistent()
    if damage == "layer-blob-changed":
        flip_byte(store.blob_path(exp["layers"][1]["digest"]))
        needle = exp["layers"][1]["digest"][7:]
    elif damage == "config-blob-removed":
        os.unlink(store.blob_path(exp["configDigest"]))
        needle = exp["configDigest"][7:]
    elif damage == "snapshot-removed":
        shutil.rmtree(store.snapshot_dir(exp["layers"][0]["chainID"]))
        needle = exp["layers"][0]["chainID"][7:]
    else:  # the snapshot's record (snapshots/<chain ID>/info.json)
        os.unlink(store.snapshot_dir(exp["layers"][0]["chainID"]).parent / "info.json")
        needle = exp["layers"][0]["chainID"][7:]
    result = store("check")
    assert result.returncode == 1, describe(result)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    needles = needle if isinstance(needle, tuple) else (needle,)
    assert any(n in line for line in problems for n in needles), \
        f"check should name {' or '.join(needles)}\n" + describe(result)
    assert "ok" not in result.stdout.split()


# --- import and export ------------------------------------------------------------------------


def test_export_import_round_trip(store, registry, images, tmp_path):
    small, full = registry.ref("test/small:v1"), registry.ref("test/full:v1")
    store.pull(small)
    store.pull(full)
    archive = tmp_path / "two.tar"
    store.ok("export", small, full, archive)
    original = sorted((i["name"], i["digest"], i["configDigest"]) for i in store.ls())

    store.root = tmp_path / "root2"  # a fresh store
    result = store.ok("import", archive)
    assert sorted(result.stdout.split()) == sorted([small, full])
    assert sorted((i["name"], i["digest"], i["configDigest"]) for i in store.ls()) == original
    store.assert_consistent()
    store.assert_no_leftovers()
    result = store.ok("mount", full, tmp_path / "c")
    try:
        assert_tree(images.expected["full"]["merged"], tmp_path / "c" / "rootfs",
                    "the imported image's rootfs")
    finally:
        store.ok("unmount", tmp_path / "c")


def _archive_index(archive):
    with tarfile.open(archive) as t:
        members = {os.path.normpath(m.name): m for m in t.getmembers()}
        index = json.load(t.extractfile(members["index.json"]))
        manifest = json.load(t.extractfile(members["manifest.json"]))
        assert "oci-layout" in members
    return index, manifest


def test_export_is_oci_and_docker_archive(store, registry, images, tmp_path, session_dir):
    """One tar, read by skopeo both as an oci-archive and as a docker-archive."""
    small, full = registry.ref("test/small:v1"), registry.ref("test/full:v1")
    store.pull(small)
    store.pull(full)
    archive = tmp_path / "two.tar"
    store.ok("export", small, full, archive)
    index, manifest = _archive_index(archive)
    tags = sorted(t for m in manifest for t in m.get("RepoTags") or [])
    assert tags == sorted([small, full])
    env = skopeo_env(session_dir)
    for name, ref in ((small, "small"), (full, "full")):
        exp = images.expected[ref]
        entry = [m for m in index["manifests"]
                 if name in (m.get("annotations", {}).get("org.opencontainers.image.ref.name"),
                             m.get("annotations", {}).get("io.containerd.image.name"))]
        assert len(entry) == 1, f"index.json should name {name}: {index}"
        assert entry[0]["digest"] == exp["manifestDigest"]
        refname = entry[0]["annotations"]["org.opencontainers.image.ref.name"]
        out = tmp_path / f"oci-{ref}"
        run(["skopeo", "copy", "-q", "--preserve-digests", f"oci-archive:{archive}:{refname}",
             f"oci:{out}:x"], env=env)
        got = json.loads((out / "index.json").read_text())["manifests"][0]["digest"]
        assert got == exp["manifestDigest"]
        # dir: keeps the docker-archive's manifest type (a copy to oci: would rewrite the
        # config); skopeo verifies every layer against the config's diffIDs on the way
        out = tmp_path / f"docker-{ref}"
        run(["skopeo", "copy", "-q", f"docker-archive:{archive}:{name}", f"dir:{out}"],
            env=env)
        m = json.loads((out / "manifest.json").read_text())
        assert m["config"]["digest"] == exp["configDigest"], \
            "read as a docker-archive, the image keeps its config (image ID)"
        assert len(m["layers"]) == len(exp["layers"])


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_import_skopeo_archives(store, registry, images, tmp_path, session_dir, fmt):
    name = registry.ref("test/small:v1")
    archive = tmp_path / "skopeo.tar"
    run(["skopeo", "copy", "-q", f"oci:{images.layout}:small", f"{fmt}:{archive}:{name}"],
        env=skopeo_env(session_dir))
    result = store.ok("import", archive)
    assert result.stdout.split() == [name]
    (item,) = store.ls()
    exp = images.expected["small"]
    assert item["name"] == name
    assert item["configDigest"] == exp["configDigest"]
    if fmt == "oci-archive":
        assert item["digest"] == exp["manifestDigest"]
    store.ok("mount", name, tmp_path / "c")
    try:
        assert_tree(exp["merged"], tmp_path / "c" / "rootfs", f"the image from a {fmt}")
    finally:
        store.ok("unmount", tmp_path / "c")
    store.assert_consistent()


def test_import_corrupt_archives(store, registry, images, tmp_path):
    name = registry.ref("test/small:v1")
    store.pull(name)
    good = tmp_path / "good.tar"
    store.ok("export", name, good)
    data = good.read_bytes()
    layer = images.expected["small"]["layers"][0]
    fresh = tmp_path / "fresh"
    store.root = fresh
    # random bytes
    junk = tmp_path / "junk.tar"
    junk.write_bytes(os.urandom(10000))
    expect_error(store("import", junk), 1, ("junk.tar",))
    # truncated in the middle of a layer
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: len(data) // 2])
    expect_error(store("import", cut), 1, ("cut.tar", "truncated", "unexpected end"))
    # a layer's bytes changed
    with tarfile.open(good) as t:
        (member,) = [m for m in t.getmembers()
                     if os.path.normpath(m.name) == "blobs/sha256/" + layer["digest"][7:]]
        offset = member.offset_data + member.size // 2
    bad = bytearray(data)
    bad[offset] ^= 0x55
    tampered = tmp_path / "tampered.tar"
    tampered.write_bytes(bytes(bad))
    expect_error(store("import", tampered), 1, layer["digest"][7:])
    assert store.index_names() == []
    assert store.snapshots() == []
    store.assert_no_leftovers()


# --- bad input --------------------------------------------------------------------------------


def _bad_cases(registry, tmp):
    small = registry.ref("test/small:v1")
    (tmp / "not-json.json").write_text("{nope")
    return [
        ("upper-case name", ["pull", "UPPER/Case:v1"], 1, "UPPER/Case"),
        ("name with a space", ["pull", "bad name"], 1, "bad name"),
        ("empty tag", ["pull", registry.ref("test/small:")], 1, "test/small:"),
        ("bad digest", ["pull", registry.ref("test/small@sha256:xyz")], 1, "sha256:xyz"),
        ("nothing listening", ["pull", "127.0.0.1:1/test/small:v1"], 1, "127.0.0.1:1"),
        ("bad platform", ["pull", "--platform", "nonsense", small], (1, 2), "nonsense"),
        ("unknown subcommand", ["frobnicate"], 2, "frobnicate"),
        ("no subcommand", [], 2, ()),
        ("pull without a name", ["pull"], 2, "pull"),
        ("unknown option", ["pull", "--frob", small], 2, "--frob"),
        ("ls bad format", ["ls", "--format", "yaml"], 2, "yaml"),
        ("inspect unknown image", ["inspect", small], 1, small),
        ("rm unknown image", ["rm", small], 1, small),
        ("mount unknown image", ["mount", small, str(tmp / "m")], 1, small),
        ("export unknown image", ["export", small, str(tmp / "x.tar")], 1, small),
        ("import missing file", ["import", str(tmp / "missing.tar")], 1,
         str(tmp / "missing.tar")),
        ("import a directory", ["import", str(tmp)], 1, str(tmp)),
        ("mount without dir", ["mount", small], 2, "mount"),
    ]


def test_bad_input(store, registry, tmp_path):
    failures = []
    for what, args, code, needle in _bad_cases(registry, tmp_path):
        result = store(*args)
        try:
            codes = code if isinstance(code, tuple) else (code,)
            assert result.returncode in codes, f"expected exit {code}"
            expect_error(result, result.returncode, *([needle] if needle else []),
                         progress_allowed=args[:1] == ["pull"])
        except AssertionError as e:
            failures.append(f"{what}: {e}")
    assert not failures, "\n\n".join(failures)
    assert store.index_names() == []


def test_bad_global_options(store, registry, tmp_path):
    small = registry.ref("test/small:v1")
    result = store("ls", image=False)
    expect_error(result, 2, "ls")
    result = subprocess.run(store.argv("ls")[:1] + ["--frob", "image", "ls"],
                            capture_output=True, text=True, env=store.env)
    expect_error(result, 2, "--frob")
    result = subprocess.run(store.argv("ls")[:1] + ["--root", "relative/dir", "image", "ls"],
                            capture_output=True, text=True, env=store.env)
    expect_error(result, 2, "relative/dir")
    store.ok("ls")
    assert store("pull", small).returncode == 0  # the store itself is fine


@pytest.mark.parametrize("content,needle", [
    ("{not json", ("registries.json", "JSON", "json")),
    ('{"registries": []}', "registries"),
    ('{"retries": "many"}', "retries"),
    ('{"registries": {"127.0.0.1:1": {"mirrors": "http://x"}}}', "mirrors"),
    ('{"maxParallelDownloads": -3}', "maxParallelDownloads"),
])
def test_bad_registries_json(store, registry, tmp_path, content, needle):
    path = tmp_path / "registries.json"
    path.write_text(content)
    store.registries = path
    result = store("pull", registry.ref("test/small:v1"))
    expect_error(result, 1, needle, progress_allowed=True)
    assert store.index_names() == []


def test_missing_registries_json(store, registry, tmp_path):
    store.registries = tmp_path / "absent.json"
    expect_error(store("pull", registry.ref("test/small:v1")), 1, str(tmp_path / "absent.json"),
                 progress_allowed=True)


@pytest.mark.parametrize("content,needle", [
    ("{not json", "auth.json"),
    ('{"auths": {"HOST": {"auth": "%%%not-base64"}}}', ("auth", "base64")),
])
def test_bad_authfile(store, auth_registry, tmp_path, content, needle):
    path = tmp_path / "auth.json"
    path.write_text(content.replace("HOST", auth_registry.host))
    store.authfile = path
    result = store("pull", auth_registry.ref("test/small:v1"))
    expect_error(result, 1, needle, progress_allowed=True)
