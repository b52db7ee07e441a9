"""cgroup behaviour on this host (hybrid: a cgroup2 hierarchy without resource controllers).
Real limits are tested in the qemu guest (tests/vm); here: the clear error for a missing
controller, the operator's opt-out, and what core cgroup v2 still gives (freeze, kill, stats)."""
import json
import os
import time

import pytest

from conftest import cgroup2_mount, describe, expect_error, wait_for

pytestmark = pytest.mark.skipif(
    not os.path.basename(os.environ.get("BERTH_RUNTIME", "berth")).startswith("berth"),
    reason="berth's own cgroup behaviour",
)


def lacks(controller):
    root = cgroup2_mount()
    return root is not None and controller not in (root / "cgroup.controllers").read_text().split()


needs_hybrid = pytest.mark.skipif(not lacks("memory"), reason="this host's cgroup2 has memory")
needs_cgroup2 = pytest.mark.skipif(cgroup2_mount() is None, reason="no cgroup2 hierarchy")


@needs_hybrid
def test_missing_controller_is_a_clear_error(rt, bundle):
    bundle.config["linux"]["resources"] = {"memory": {"limit": 33554432}}
    bundle.save()
    result = rt("run", "--bundle", bundle.path, rt.new_id())
    expect_error(rt, result, "linux.resources.memory",
                 f"memory controller not enabled in cgroup2 at {cgroup2_mount()}")
    assert "cgroup v1" in result.stderr  # and says why
    assert "hello from berth" not in result.stdout


@needs_hybrid
def test_operator_may_allow_missing_controllers(rt, bundle):
    bundle.config["linux"]["resources"] = {"memory": {"limit": 33554432}, "pids": {"limit": 10}}
    bundle.save()
    result = rt("--allow-missing-controllers", "run", "--bundle", bundle.path, rt.new_id())
    assert result.returncode == 0, describe(result)
    assert "hello from berth" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if "NOT applied" in line]
    assert len(warnings) == 2, result.stderr  # one per controller, each named
    assert any("linux.resources.memory" in w for w in warnings)
    assert any("linux.resources.pids" in w for w in warnings)


@needs_cgroup2
def test_pause_and_resume(rt, bundle, tmp_path):
    bundle.set_args(["/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.02; done"])
    cid = rt.new_id()
    rt.ok("run", "-d", "--bundle", bundle.path, cid)
    counter = bundle.rootfs / "tmp/n"
    try:
        wait_for(lambda: counter.exists() and counter.read_text().strip(), 5, what="the counter")
        rt.ok("pause", cid)
        assert rt.status(cid) == "paused"
        before = counter.read_text()
        time.sleep(0.3)
        assert counter.read_text() == before
        expect_error(rt, rt("delete", cid), "paused")  # not without --force
        rt.ok("resume", cid)
        assert rt.status(cid) == "running"
        wait_for(lambda: counter.read_text() != before, 5, what="the counter to move")
    finally:
        rt.ok("delete", "--force", cid)


@needs_cgroup2
def test_events_stats_and_update_refusal(rt, bundle):
    cid, _ = rt.create_running(bundle)
    try:
        event = json.loads(rt.ok("events", "--stats", cid).stdout)
        assert event["type"] == "stats" and event["id"] == cid
        assert event["data"]["cpu"]["usage"]["total"] >= 0
        if lacks("pids"):
            expect_error(rt, rt("update", "--pids-limit", "5", cid),
                         "linux.resources.pids", "pids controller not enabled")
        expect_error(rt, rt("update", "--memory", "lots", cid), "--memory lots")
        expect_error(rt, rt("events", "--interval", "0", cid), "--interval")
    finally:
        rt.destroy(cid)


def test_pause_of_a_stopped_container_is_refused(rt, bundle):
    bundle.set_args(["/bin/true"])
    cid = rt.new_id()
    rt.create(bundle, cid)
    rt.start(cid)
    rt.wait_status(cid, "stopped")
    expect_error(rt, rt("pause", cid), "stopped")
    expect_error(rt, rt("events", "--stats", cid), "stopped")
    rt.ok("delete", cid)
