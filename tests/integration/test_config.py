"""Every config.json field berth-runtime supports, checked from inside a real container."""

import os

import pytest
from conftest import mount_options, mountinfo_entries, ns_id

# --- process --------------------------------------------------------------------------------


def test_hostname(rt, bundle):
    assert rt.sh(bundle, "hostname").stdout == "berth\n"
    bundle.config["hostname"] = "other-name"
    assert rt.sh(bundle, "hostname; cat /proc/sys/kernel/hostname").stdout == "other-name\n" * 2


def test_hostname_does_not_leak_to_host(rt, bundle):
    host = os.uname().nodename
    bundle.config["hostname"] = "not-the-host"
    rt.sh(bundle, "hostname")
    assert os.uname().nodename == host


def test_domainname(rt, bundle):
    if rt.flavor == "runc":
        pytest.skip("runc 1.1 ignores domainname (added in runc 1.2)")
    bundle.config["domainname"] = "example.test"
    result = rt.sh(bundle, "cat /proc/sys/kernel/domainname")
    assert result.stdout == "example.test\n"


def test_env(rt, bundle, mark):
    bundle.config["process"]["env"] += ["FOO=bar baz", "EMPTY=", "EQ=a=b"]
    result = rt.sh(bundle, 'echo "$FOO|$EMPTY|$EQ|$PATH|$TERM"; env')
    first, rest = result.stdout.split("\n", 1)
    assert first == "bar baz||a=b|/bin:/usr/bin:/sbin|xterm"
    env = dict(line.split("=", 1) for line in rest.splitlines())
    assert env["BERTH_TEST_MARK"] == mark
    # exactly the config's variables, plus what the runtime (HOME) and the shell add; nothing
    # from the runtime's own environment
    configured = {"PATH", "TERM", "FOO", "EMPTY", "EQ", "BERTH_TEST_MARK"}
    assert configured <= set(env)
    assert set(env) - configured <= {"HOME", "PWD", "SHLVL", "OLDPWD", "_"}, env
    assert env.get("HOME", "/root") == "/root"


def test_cwd(rt, bundle):
    bundle.config["process"]["cwd"] = "/var/run"
    assert rt.sh(bundle, "pwd").stdout == "/var/run\n"


def test_cwd_is_created(rt, bundle):
    bundle.config["process"]["cwd"] = "/does/not/exist"
    assert not (bundle.rootfs / "does").exists()
    assert rt.sh(bundle, "pwd; test -d /does/not/exist && echo isdir").stdout == (
        "/does/not/exist\nisdir\n"
    )


def test_user_uid_gid_additional_gids(rt, bundle):
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [2000]}
    result = rt.sh(bundle, "id -u; id -g; id -un; grep -E '^(Uid|Gid|Groups):' /proc/self/status")
    lines = result.stdout.splitlines()
    assert lines[:3] == ["1000", "1000", "tester"]
    status = {line.split(":")[0]: line.split(":")[1].split() for line in lines[3:]}
    assert status["Uid"] == ["1000"] * 4
    assert status["Gid"] == ["1000"] * 4
    groups = set(status["Groups"])
    assert "2000" in groups
    assert "0" not in groups, "root's supplementary groups leaked"


def test_user_without_additional_gids_drops_root_groups(rt, bundle):
    bundle.config["process"]["user"] = {"uid": 65534, "gid": 65534}
    result = rt.sh(bundle, "id -u; id -g; grep '^Groups:' /proc/self/status")
    uid, gid, groups = result.stdout.splitlines()
    assert (uid, gid) == ("65534", "65534")
    assert "0" not in groups.split()[1:], groups


def test_non_root_user_cannot_write_root_files(rt, bundle):
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    result = rt.sh(bundle, "touch /root/x 2>&1 && echo wrote || echo denied")
    assert result.stdout.strip().endswith("denied")


@pytest.mark.parametrize("umask,want", [(23, "0027"), (0o077, "0077"), (0, "0000")])
def test_umask(rt, bundle, umask, want):
    bundle.config["process"]["user"]["umask"] = umask
    result = rt.sh(bundle, "umask; touch /tmp/f; stat -c %a /tmp/f")
    shown, mode = result.stdout.split()
    assert shown == want
    assert int(mode, 8) == 0o666 & ~umask


def test_rlimits(rt, bundle):
    hard = int(open("/proc/self/limits").read().split("Max open files")[1].split()[1])
    assert hard > 300
    soft_want, hard_want = 123, 257
    bundle.config["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": soft_want, "hard": hard_want},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
    ]
    result = rt.sh(bundle, "ulimit -n; ulimit -Hn; ulimit -c; ulimit -Hc")
    assert result.stdout.split() == [str(soft_want), str(hard_want), "0", "0"]


@pytest.mark.parametrize("value,want", [(True, "1"), (False, "0")])
def test_no_new_privileges(rt, bundle, value, want):
    bundle.config["process"]["noNewPrivileges"] = value
    result = rt.sh(bundle, "grep NoNewPrivs /proc/self/status")
    assert result.stdout.split() == ["NoNewPrivs:", want]


def test_oom_score_adj(rt, bundle):
    bundle.config["process"]["oomScoreAdj"] = 500
    assert rt.sh(bundle, "cat /proc/self/oom_score_adj").stdout == "500\n"
    host = open("/proc/self/oom_score_adj").read()
    assert host.strip() != "500"


# --- root -----------------------------------------------------------------------------------


def test_root_readonly(rt, bundle):
    bundle.config["root"]["readonly"] = True
    result = rt.sh(
        bundle,
        "touch /x 2>/dev/null && echo root-writable; "
        "touch /tmp/x 2>/dev/null && echo tmp-writable; "
        "echo ok > /dev/shm/x && cat /dev/shm/x; "
        "cat /proc/self/mountinfo",
    )
    first, info = result.stdout.split("\n", 1)
    assert first == "ok", "root is writable, or mounts on it are not:\n" + result.stdout
    per_mount, _ = mount_options(_mount_line(info, "/"))
    assert "ro" in per_mount
    assert not (bundle.rootfs / "x").exists()


def test_root_writable_by_default(rt, bundle):
    rt.sh(bundle, "echo written > /root/file")
    assert (bundle.rootfs / "root" / "file").read_text() == "written\n"


def test_root_is_the_bundle_rootfs(rt, bundle):
    (bundle.rootfs / "etc" / "marker").write_text("from-bundle\n")
    result = rt.sh(bundle, "cat /etc/marker; ls /")
    assert result.stdout.startswith("from-bundle\n")
    listing = set(result.stdout.split()[1:])
    assert {"bin", "dev", "etc", "proc", "sys", "tmp"} <= listing
    assert "work" not in listing


def test_root_path_absolute(rt, bundle, make_bundle):
    other = make_bundle("other")
    (other.rootfs / "etc" / "which").write_text("other\n")
    bundle.config["root"]["path"] = str(other.rootfs)
    assert rt.sh(bundle, "cat /etc/which").stdout == "other\n"


def test_no_pivot(rt, bundle):
    script = "echo in-no-pivot; ls /; test -e /work && echo host-visible; true"
    result = rt.sh(bundle, script, "--no-pivot")
    lines = result.stdout.split()
    assert lines[0] == "in-no-pivot"
    assert {"bin", "etc", "proc"} <= set(lines)
    assert "host-visible" not in lines


@pytest.mark.parametrize("propagation", ["shared", "slave", "private"])
def test_rootfs_propagation(rt, bundle, propagation):
    if rt.flavor == "runc" and propagation == "shared":
        pytest.skip("runc 1.1.5 applies rootfsPropagation before pivot_root only")
    bundle.config["linux"]["rootfsPropagation"] = propagation
    result = rt.sh(bundle, "cat /proc/self/mountinfo")
    line = _mount_line(result.stdout, "/")
    fields = line.split()
    optional = fields[6 : fields.index("-")]
    if propagation == "shared":
        assert any(f.startswith("shared:") for f in optional), line
    else:
        assert not any(f.startswith("shared:") for f in optional), line


# --- mounts ---------------------------------------------------------------------------------


def _mount_line(result_text, point):
    lines = mountinfo_entries(result_text, point)
    assert lines, f"{point} is not mounted:\n{result_text}"
    return lines[-1]


def test_tmpfs_size_and_mode(rt, bundle):
    bundle.add_mount("/data", "tmpfs", "tmpfs", ["size=1m", "mode=750"])
    result = rt.sh(bundle, "stat -c %a /data; cat /proc/self/mountinfo")
    mode, info = result.stdout.split("\n", 1)
    assert mode == "750"
    line = _mount_line(info, "/data")
    _, super_opts = mount_options(line)
    assert "size=1024k" in super_opts and "mode=750" in super_opts, line
    assert " - tmpfs " in line


def test_mount_flags(rt, bundle):
    bundle.add_mount("/flags", "tmpfs", "tmpfs", ["nosuid", "nodev", "noexec", "noatime", "ro"])
    bundle.add_mount("/plain", "tmpfs", "tmpfs", ["rw"])
    result = rt.sh(
        bundle,
        "cat /proc/self/mountinfo; touch /flags/x 2>/dev/null && echo flags-writable; "
        "touch /plain/x && cp /bin/busybox /plain/true && /plain/true && echo plain-exec",
    )
    flags, _ = mount_options(_mount_line(result.stdout, "/flags"))
    assert {"nosuid", "nodev", "noexec", "noatime", "ro"} <= flags
    plain, _ = mount_options(_mount_line(result.stdout, "/plain"))
    assert not {"nosuid", "nodev", "noexec", "ro"} & plain
    assert "flags-writable" not in result.stdout
    assert "plain-exec" in result.stdout


def test_noexec_is_enforced(rt, bundle):
    bundle.add_mount("/nx", "tmpfs", "tmpfs", ["noexec"])
    bundle.add_mount("/x", "tmpfs", "tmpfs", [])
    result = rt.sh(
        bundle,
        "for d in nx x; do cp /bin/busybox /$d/true && /$d/true 2>/dev/null && echo $d-ran; "
        "done; true",
    )
    assert result.stdout == "x-ran\n"


def test_bind_mount_ro_and_rw(rt, bundle, tmp_path):
    ro_dir, rw_dir = tmp_path / "host-ro", tmp_path / "host-rw"
    ro_dir.mkdir()
    rw_dir.mkdir()
    (ro_dir / "hello").write_text("hello from host\n")
    bundle.add_mount("/mnt/ro", "bind", ro_dir, ["bind", "ro"])
    bundle.add_mount("/mnt/rw", "none", rw_dir, ["rbind", "rw"])
    result = rt.sh(
        bundle,
        "cat /mnt/ro/hello; echo x > /mnt/ro/new 2>/dev/null && echo ro-writable; "
        "echo from container > /mnt/rw/new && echo rw-ok",
    )
    assert result.stdout == "hello from host\nrw-ok\n"
    assert not (ro_dir / "new").exists()
    assert (rw_dir / "new").read_text() == "from container\n"


def test_bind_vs_rbind_submounts(rt, bundle, submount_tree):
    bundle.add_mount("/bind", "bind", submount_tree, ["bind"])
    bundle.add_mount("/rbind", "bind", submount_tree, ["rbind"])
    result = rt.sh(bundle, "ls /bind/sub; echo --; ls /rbind/sub")
    plain, recursive = result.stdout.split("--\n")
    assert plain.split() == ["under"]
    assert recursive.split() == ["on-submount"]


def test_rro_makes_submounts_read_only(rt, bundle, submount_tree):
    bundle.add_mount("/ro", "bind", submount_tree, ["rbind", "ro"])
    bundle.add_mount("/rro", "bind", submount_tree, ["rbind", "rro"])
    result = rt.sh(
        bundle,
        "for d in /ro /ro/sub /rro /rro/sub; do touch $d/f 2>/dev/null && echo $d-writable; "
        "done; true",
    )
    # plain ro covers the top mount only; rro covers the submount too
    assert result.stdout == "/ro/sub-writable\n"


@pytest.mark.parametrize("propagation", ["rshared", "rslave", "rprivate"])
def test_mount_propagation_option(rt, bundle, propagation):
    if rt.flavor == "crun" and propagation == "rshared":
        pytest.skip("crun 1.8 leaves the mount private")
    bundle.add_mount("/prop", "tmpfs", "tmpfs", [propagation])
    result = rt.sh(bundle, "cat /proc/self/mountinfo")
    line = _mount_line(result.stdout, "/prop")
    fields = line.split()
    optional = fields[6 : fields.index("-")]
    shared = any(f.startswith("shared:") for f in optional)
    assert shared == (propagation == "rshared"), line


def test_cgroup2_mount(rt, bundle):
    bundle.config["linux"]["namespaces"].append({"type": "cgroup"})
    bundle.add_mount("/sys/fs/cgroup", "cgroup2", "cgroup2", ["nosuid", "noexec", "nodev", "ro"])
    result = rt.sh(
        bundle, "cat /proc/self/mountinfo; test -f /sys/fs/cgroup/cgroup.procs && echo has-procs"
    )
    line = _mount_line(result.stdout, "/sys/fs/cgroup")
    assert " - cgroup2 " in line, line
    assert "ro" in mount_options(line)[0]
    assert result.stdout.endswith("has-procs\n")


def test_bind_mount_single_file(rt, bundle, tmp_path):
    host_file = tmp_path / "single.txt"
    host_file.write_text("one file\n")
    bundle.add_mount("/etc/single.txt", "bind", host_file, ["bind", "ro"])
    assert not (bundle.rootfs / "etc" / "single.txt").exists()
    result = rt.sh(bundle, "cat /etc/single.txt; test -f /etc/single.txt && echo is-file")
    assert result.stdout == "one file\nis-file\n"


def test_mount_destination_is_created(rt, bundle):
    bundle.add_mount("/a/b/c", "tmpfs", "tmpfs", [])
    result = rt.sh(bundle, "test -d /a/b/c && echo isdir; cat /proc/self/mountinfo")
    assert result.stdout.startswith("isdir\n")
    _mount_line(result.stdout, "/a/b/c")


def test_mount_order(rt, bundle):
    # a later mount goes on top of an earlier one
    bundle.add_mount("/stack", "tmpfs", "tmpfs", ["size=1m"])
    bundle.add_mount("/stack/inner", "tmpfs", "tmpfs", ["size=2m"])
    result = rt.sh(bundle, "cat /proc/self/mountinfo")
    _, inner = mount_options(_mount_line(result.stdout, "/stack/inner"))
    assert "size=2048k" in inner


def test_default_mounts(rt, bundle):
    result = rt.sh(bundle, "cat /proc/self/mountinfo")
    for point, fstype in [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/sys", "sysfs"),
    ]:
        line = _mount_line(result.stdout, point)
        assert f" - {fstype} " in line, line
    sys_opts, _ = mount_options(_mount_line(result.stdout, "/sys"))
    assert {"ro", "nosuid", "nodev", "noexec"} <= sys_opts
    shm_opts, shm_super = mount_options(_mount_line(result.stdout, "/dev/shm"))
    assert {"nosuid", "nodev", "noexec"} <= shm_opts and "size=65536k" in shm_super


def test_proc_is_the_containers(rt, bundle):
    result = rt.sh(bundle, "echo $$; ls /proc | grep -c '^[0-9]'")
    pid, count = result.stdout.split()
    assert pid == "1"
    assert int(count) <= 3  # sh, ls and grep, not the host's processes


def test_mounts_do_not_reach_the_host(rt, bundle, tmp_path):
    before = open("/proc/self/mountinfo").read()
    bundle.add_mount("/data", "tmpfs", "tmpfs", [])
    rt.sh(bundle, "true")
    assert str(bundle.rootfs) not in open("/proc/self/mountinfo").read()
    assert open("/proc/self/mountinfo").read() == before


# --- masked and read-only paths -------------------------------------------------------------


def test_masked_paths(rt, bundle):
    assert open("/proc/timer_list").read(), "the host's /proc/timer_list should not be empty"
    secret = bundle.rootfs / "secret"
    secret.mkdir()
    (secret / "file").write_text("secret\n")
    (bundle.rootfs / "etc" / "secret.txt").write_text("secret\n")
    bundle.config["linux"]["maskedPaths"] += ["/secret", "/etc/secret.txt", "/no/such/path"]
    result = rt.sh(
        bundle,
        "wc -c < /proc/timer_list; ls -A /sys/firmware | wc -l; ls -A /secret | wc -l; "
        "wc -c < /etc/secret.txt; echo x > /secret/new 2>/dev/null && echo masked-writable; "
        "wc -c < /proc/uptime",
    )
    timer, firmware, secret_dir, secret_file, uptime = result.stdout.split()
    assert (timer, firmware, secret_dir, secret_file) == ("0", "0", "0", "0")
    assert int(uptime) > 0  # /proc itself still works
    assert (secret / "file").read_text() == "secret\n"


def test_readonly_paths(rt, bundle):
    rodir = bundle.rootfs / "rodir"
    rodir.mkdir()
    (rodir / "file").write_text("readable\n")
    bundle.config["linux"]["readonlyPaths"] += ["/rodir"]
    result = rt.sh(
        bundle,
        "echo changed > /proc/sys/kernel/hostname 2>/dev/null && echo sys-writable; hostname; "
        "cat /rodir/file; touch /rodir/new 2>/dev/null && echo rodir-writable; "
        "touch /tmp/new && echo tmp-writable",
    )
    assert result.stdout == "berth\nreadable\ntmp-writable\n"


def test_without_readonly_paths_proc_sys_is_writable(rt, bundle):
    # the counterpart of test_readonly_paths: the write fails because of readonlyPaths only
    bundle.config["linux"]["readonlyPaths"] = []
    result = rt.sh(bundle, "echo changed > /proc/sys/kernel/hostname && hostname")
    assert result.stdout == "changed\n"


# --- devices --------------------------------------------------------------------------------


def test_devices(rt, bundle):
    bundle.config["linux"]["devices"] = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
         "fileMode": 0o666, "uid": 1000, "gid": 2000},
        {"path": "/dev/xblk", "type": "b", "major": 7, "minor": 200,
         "fileMode": 0o600, "uid": 0, "gid": 0},
    ]
    result = rt.sh(bundle, "stat -c '%F|%t|%T|%a|%u|%g' /dev/fuse /dev/xblk")
    fuse, blk = result.stdout.splitlines()
    assert fuse == "character special file|a|e5|666|1000|2000"
    assert blk == "block special file|7|c8|600|0|0"


def test_default_devices(rt, bundle):
    script = (
        "for d in null zero full random urandom tty; do test -c /dev/$d && echo $d; done; "
        "stat -c '%t %T %a' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; "
        "for p in ptmx fd stdin stdout stderr pts/ptmx; do test -e /dev/$p && echo $p; done; "
        "echo x > /dev/null && head -c 3 /dev/zero | wc -c; "
        "echo x 2>/dev/null > /dev/full || echo full"
    )
    lines = rt.sh(bundle, script).stdout.splitlines()
    assert lines[:6] == ["null", "zero", "full", "random", "urandom", "tty"]
    assert lines[6:12] == ["1 3 666", "1 5 666", "1 7 666", "1 8 666", "1 9 666", "5 0 666"]
    assert lines[12:18] == ["ptmx", "fd", "stdin", "stdout", "stderr", "pts/ptmx"]
    assert lines[18:] == ["3", "full"]


def test_no_host_devices_leak(rt, bundle):
    result = rt.sh(bundle, "ls /dev")
    names = set(result.stdout.split())
    assert not {"sda", "vda", "nvme0n1", "mem", "kmsg", "loop0"} & names, names


# --- sysctl and namespaces ------------------------------------------------------------------


def test_sysctl(rt, bundle):
    host_before = open("/proc/sys/net/ipv4/ip_forward").read()
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.msgmax": "4242"}
    result = rt.sh(bundle, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax")
    assert result.stdout.split() == ["1", "4242"]
    assert open("/proc/sys/net/ipv4/ip_forward").read() == host_before
    assert open("/proc/sys/kernel/msgmax").read().strip() != "4242"


NS_KINDS = ["pid", "net", "ipc", "uts", "mnt"]
CONFIG_NS = {"pid": "pid", "net": "network", "ipc": "ipc", "uts": "uts", "mnt": "mount",
             "cgroup": "cgroup"}


def test_namespaces_are_new(rt, bundle):
    kinds = NS_KINDS + ["cgroup"]
    bundle.config["linux"]["namespaces"].append({"type": "cgroup"})
    script = "; ".join(f"readlink /proc/self/ns/{k}" for k in kinds)
    inside = rt.sh(bundle, script).stdout.split()
    host = [ns_id(f"/proc/self/ns/{k}") for k in kinds]
    for kind, mine, theirs in zip(kinds, inside, host):
        assert mine.startswith(kind + ":[")
        assert mine != theirs, f"{kind} namespace is the host's"


def test_time_namespace(rt, bundle):
    if not rt.is_berth:
        pytest.skip("crun 1.8 and runc 1.1 do not support the time namespace")
    bundle.config["linux"]["namespaces"].append({"type": "time"})
    bundle.config["linux"]["timeOffsets"] = {"boottime": {"secs": 86400, "nanosecs": 0}}
    host_uptime = float(open("/proc/uptime").read().split()[0])
    result = rt.sh(bundle, "readlink /proc/self/ns/time; cut -d' ' -f1 /proc/uptime")
    ns, uptime = result.stdout.split()
    assert ns.startswith("time:[") and ns != ns_id("/proc/self/ns/time")
    assert host_uptime + 86400 - 5 < float(uptime) < host_uptime + 86400 + 60


def test_namespace_left_out_is_shared(rt, bundle):
    bundle.remove_namespace("ipc")
    inside = rt.sh(bundle, "readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts").stdout.split()
    assert inside[0] == ns_id("/proc/self/ns/ipc")
    assert inside[1] != ns_id("/proc/self/ns/uts")


def test_join_uts_namespace_by_path(rt, bundle, persistent_ns):
    path = persistent_ns("uts", "hostname joined-ns")
    bundle.namespace("uts")["path"] = str(path)
    del bundle.config["hostname"]
    result = rt.sh(bundle, "hostname; readlink /proc/self/ns/uts")
    hostname, ns = result.stdout.split()
    assert hostname == "joined-ns"
    assert ns == f"uts:[{os.stat(path).st_ino}]"


@pytest.mark.parametrize("kind", ["net", "ipc"])
def test_join_namespace_by_path(rt, bundle, persistent_ns, kind):
    path = persistent_ns(kind)
    bundle.namespace(CONFIG_NS[kind])["path"] = str(path)
    result = rt.sh(bundle, f"readlink /proc/self/ns/{kind}")
    assert result.stdout.strip() == f"{kind}:[{os.stat(path).st_ino}]"


# --- terminal -------------------------------------------------------------------------------


def _terminal_container(rt, bundle, console_socket, script, size=None):
    bundle.config["process"]["terminal"] = True
    if size:
        bundle.config["process"]["consoleSize"] = size
    bundle.set_args(["/bin/sh", "-c", script])
    cid = rt.new_id()
    rt.ok("create", "--bundle", bundle.path, "--console-socket", console_socket.path, cid)
    console_socket.receive()
    return cid


def test_console_socket_pty(rt, bundle, console_socket):
    cid = _terminal_container(
        rt, bundle, console_socket,
        "tty; test -t 0 && test -t 1 && test -t 2 && echo all-ttys; echo in-pty; sleep 0.3",
    )
    rt.start(cid)
    text = console_socket.read_until("in-pty")
    rt.wait_status(cid, "stopped")
    rt.ok("delete", cid)
    assert "/dev/pts/0" in text, text
    assert "all-ttys" in text and "in-pty" in text, text


def test_console_pty_is_interactive(rt, bundle, console_socket):
    cid = _terminal_container(rt, bundle, console_socket, "read line; echo got:$line")
    rt.start(cid)
    os.write(console_socket.master, b"typed-in\n")
    text = console_socket.read_until("got:typed-in")
    rt.wait_status(cid, "stopped")
    rt.ok("delete", cid)
    assert "got:typed-in" in text, text


def test_console_size(rt, bundle, console_socket):
    cid = _terminal_container(
        rt, bundle, console_socket, "echo size:$(stty size); sleep 0.3",
        size={"height": 37, "width": 123},
    )
    rt.start(cid)
    text = console_socket.read_until("size:")
    rt.wait_status(cid, "stopped")
    rt.ok("delete", cid)
    assert "size:37 123" in text, text
