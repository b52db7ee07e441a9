#!/bin/bash
# cri-lifecycle.sh [--iterations N] [--rounds R] [--pods P] [--out FILE]: issue 8's speed and
# memory goals, berthd's CRI service against Debian's containerd (its CRI plugin, runc, the CNI
# bridge and host-local plugins), both driven through their unix sockets by one Python gRPC
# client (tests/integration/critools.py: python3-grpcio, messages from cri/cri-api.proto).
#
#   (a) a pod's whole life, one step after another, timed per step: RunPodSandbox,
#       CreateContainer, StartContainer, StopContainer (the container exits on SIGTERM; timeout
#       10 s), RemoveContainer, StopPodSandbox, RemovePodSandbox. Median per step and of the
#       sum (end to end), over R rounds of N iterations per runtime, the runtimes' order
#       rotating each round. Goal: berthd's end to end at most 0.5x containerd's.
#   (b) resident memory with P pods running (one running container each): the daemon's
#       VmRSS (/proc/PID/status) and Pss (/proc/PID/smaps_rollup), and the daemon with its
#       shims (berth-shim per container; containerd-shim-runc-v2 per pod). Goal: berthd's RSS
#       at most 1/4 of containerd's.
#
# Both daemons run at the same time inside the benchmark's own network namespace and private
# mount namespace, never the host's: tmpfs on the work dir, on /run (containerd's shim sockets
# /run/containerd/s, the CRI plugin's netns pins /run/netns) and on /var/lib (the CNI result
# cache /var/lib/cni), so nothing is left on the machine. containerd gets its own root, state,
# socket and config.toml; its sandbox_image is a pause-like image (the small test image of
# tests/fixtures/make-image.py whose command is `busybox sleep`) imported with ctr from a local
# archive, as is the containers' image (into berthd's store with `berth image import`). Pods'
# cgroups go under berth-bench-<pid> (berthd's cgroup_parent; containerd's pods'
# cgroup_parent), removed at the end. Not part of the pass/fail test run. Needs root.
#
# Environment: BERTHD, BERTH_SHIM, BERTH (default build/cri/berthd, build/tools/berth-shim,
# build/tools/berth); ITERATIONS (30), ROUNDS (3), PODS (10), WARMUP (3 per runtime).
# SMAPS_DIR: a directory that gets each daemon's /proc/PID/smaps at the memory reading.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	echo "usage: $prog [--iterations N] [--rounds R] [--pods P] [--out FILE]" >&2
	exit 2
}

ITERATIONS=${ITERATIONS:-30} ROUNDS=${ROUNDS:-3} PODS=${PODS:-10} WARMUP=${WARMUP:-3} out=''
while [ $# -gt 0 ]; do
	case $1 in
	--iterations) [ $# -ge 2 ] || usage; ITERATIONS=$2; shift 2 ;;
	--rounds) [ $# -ge 2 ] || usage; ROUNDS=$2; shift 2 ;;
	--pods) [ $# -ge 2 ] || usage; PODS=$2; shift 2 ;;
	--out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) usage ;;
	esac
done
for n in "$ITERATIONS" "$ROUNDS" "$PODS"; do [[ $n =~ ^[1-9][0-9]*$ ]] || usage; done
[[ $WARMUP =~ ^[0-9]+$ ]] || usage
CNI_BIN=/usr/lib/cni

# ---------------------------------------------------------------------------------------------
# Outside: checks, packages, versions; then the same script again in new network and mount
# namespaces.
if [ -z "${BERTH_BENCH_INNER:-}" ]; then
	[ "$(id -u)" = 0 ] || die "needs root (containers, network namespaces)"
	berthd=$(realpath "${BERTHD:-$repo/build/cri/berthd}")
	shim=$(realpath "${BERTH_SHIM:-$repo/build/tools/berth-shim}")
	berth=$(realpath "${BERTH:-$repo/build/tools/berth}")
	for f in "$berthd" "$shim" "$berth"; do
		[ -x "$f" ] || die "$f: not found (build it: ninja -C $repo/build)"
	done
	missing=()
	command -v containerd >/dev/null || missing+=(containerd)
	command -v runc >/dev/null || missing+=(runc)
	[ -x "$CNI_BIN/bridge" ] && [ -x "$CNI_BIN/host-local" ] || missing+=(containernetworking-plugins)
	command -v protoc >/dev/null || missing+=(protobuf-compiler)
	/usr/bin/python3 -c 'import grpc' 2>/dev/null || missing+=(python3-grpcio)
	[ -x /bin/busybox ] || missing+=(busybox-static)
	command -v iptables >/dev/null || missing+=(iptables)
	if [ ${#missing[@]} -gt 0 ]; then
		echo "$prog: installing ${missing[*]}" >&2
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
	[ -z "$out" ] || out=$(realpath -m "$out")
	versions="containerd $(dpkg-query -W -f '${Version}' containerd 2>/dev/null || echo '?'), runc $(dpkg-query -W -f '${Version}' runc 2>/dev/null || echo '?'), containernetworking-plugins $(dpkg-query -W -f '${Version}' containernetworking-plugins 2>/dev/null || echo '?')"
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-cri-bench.XXXXXX")
	cg=berth-bench-$$
	cleanup_outside() {
		local d
		# the pods' cgroups (every hierarchy: containerd's runc uses cgroup v1 where it exists)
		for d in /sys/fs/cgroup/"$cg" /sys/fs/cgroup/*/"$cg"; do
			[ -d "$d" ] || continue
			find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
		done
		rm -rf "$tmp"
	}
	trap cleanup_outside EXIT
	rc=0
	BERTH_BENCH_INNER=$tmp BERTH_BENCH_CGROUP=$cg BERTH_BENCH_VERSIONS=$versions \
		BERTHD=$berthd BERTH_SHIM=$shim BERTH=$berth \
		ITERATIONS=$ITERATIONS ROUNDS=$ROUNDS PODS=$PODS WARMUP=$WARMUP \
		unshare --net --mount --propagation private -- "$BASH" "$here/$prog" \
		${out:+--out "$out"} || rc=$?
	exit "$rc"
fi

# ---------------------------------------------------------------------------------------------
# Inside: a network namespace of our own (checked), private mounts.
tmp=$BERTH_BENCH_INNER
cg=$BERTH_BENCH_CGROUP
[ "$(readlink /proc/self/ns/net)" != "$(readlink /proc/1/ns/net)" ] ||
	die "not in a network namespace of our own: refusing to touch the host's"
ip link set lo up
mount -t tmpfs -o mode=0700,size=1g berth-cri-bench "$tmp"
mount -t tmpfs -o mode=0755,size=64m berth-cri-bench-run /run
mount -t tmpfs -o mode=0755,size=64m berth-cri-bench-varlib /var/lib
mkdir -p "$tmp/bin" "$tmp/image" "$tmp/logs" "$tmp/cni/conf" /run/containerd

# The build tree is shared and rebuilt while others work: measure copies taken now.
cp "$BERTHD" "$tmp/bin/berthd"
cp "$BERTH_SHIM" "$tmp/bin/berth-shim"
cp "$BERTH" "$tmp/bin/berth"
if ldd "$tmp/bin/berthd" | grep -q "not found"; then
	die "berthd needs a library of the build tree; build it statically linked to libberth"
fi

# The images: the small test image (busybox) for the containers and, for containerd's
# sandbox, the same image whose command sleeps (a pause image).
/usr/bin/python3 - "$repo/tests/fixtures/make-image.py" "$tmp/image/layout" <<'EOF'
import importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location("make_image", sys.argv[1])
mi = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mi)
layout = sys.argv[2]

def pause():
    image = mi.profile_small(salt="pause")
    image.cmd = ["/bin/busybox", "sleep", "2147483647"]
    return image

mi.PROFILES["pause"] = pause
refs = {"docker.io/test/small:v1": "small", "docker.io/berth-bench/pause:1": "pause"}
for ref, profile in refs.items():
    mi.build(layout, profile, ref)
# containerd's importer names an image by this annotation
path = os.path.join(layout, "index.json")
with open(path) as f:
    index = json.load(f)
for m in index["manifests"]:
    ref = m["annotations"]["org.opencontainers.image.ref.name"]
    m["annotations"]["io.containerd.image.name"] = ref
with open(path, "w") as f:
    json.dump(index, f)
EOF
tar -C "$tmp/image/layout" -cf "$tmp/image/images.tar" .

# --- berthd -----------------------------------------------------------------------------------
bd=$tmp/berthd
mkdir -p "$bd/root" "$bd/state"
cat >"$bd/berthd.conf" <<EOF
root = $bd/root
state = $bd/state
socket = $bd/berthd.sock
shim_path = $tmp/bin/berth-shim
berth_path = $tmp/bin/berth
manifest_dir = ""
log_dir = $tmp/logs/berthd
log_level = warn
cgroup_parent = $cg
EOF
"$tmp/bin/berth" --root "$bd/root" image import "$tmp/image/images.tar" >/dev/null

# --- containerd -------------------------------------------------------------------------------
cd_=$tmp/containerd
mkdir -p "$cd_/root" "$cd_/state" "$cd_/opt"
cat >"$tmp/cni/conf/10-bench.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "berth-cri-bench",
  "plugins": [
    {"type": "bridge", "bridge": "cni-bench0", "isGateway": true, "ipMasq": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.77.0.0/16"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$tmp/cni/ipam"}}
  ]
}
EOF
cat >"$cd_/config.toml" <<EOF
version = 2
root = "$cd_/root"
state = "$cd_/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$cd_/containerd.sock"
[ttrpc]
  address = "$cd_/containerd.sock.ttrpc"
[debug]
  level = "warn"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$cd_/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/berth-bench/pause:1"
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # this machine withholds CAP_SYS_RESOURCE even from root: runc cannot lower a process's
  # oom_score_adj (the sandbox's default -998), so keep containerd's own as the floor
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$tmp/cni/conf"
    max_conf_num = 1
EOF

bd_pid='' cd_pid=''
cleanup() {
	set +e
	# remove every pod through the CRI (containerd's shims and pause processes, berthd's
	# shims), then stop the daemons by pid
	if [ -n "$bd_pid$cd_pid" ]; then
		/usr/bin/python3 "$tmp/driver.py" cleanup >&2 || echo "$prog: removing the pods failed" >&2
	fi
	for pid in $bd_pid $cd_pid; do
		kill -TERM "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	# whatever a daemon left (shims, containers): killed by pid, found by our work dir
	for p in /proc/[0-9]*; do
		if grep -qs -- "$tmp" "$p/cmdline"; then kill -KILL "${p#/proc/}" 2>/dev/null; fi
	done
	umount -R "$tmp" 2>/dev/null || umount -l "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$tmp/bin/berthd" --config "$bd/berthd.conf" >"$tmp/berthd.log" 2>&1 &
bd_pid=$!
containerd --config "$cd_/config.toml" >"$tmp/containerd.log" 2>&1 &
cd_pid=$!
for _ in $(seq 1 300); do
	[ -S "$bd/berthd.sock" ] && [ -S "$cd_/containerd.sock" ] && break
	kill -0 "$bd_pid" 2>/dev/null || { cat "$tmp/berthd.log" >&2; die "berthd exited"; }
	kill -0 "$cd_pid" 2>/dev/null || { cat "$tmp/containerd.log" >&2; die "containerd exited"; }
	sleep 0.1
done
[ -S "$bd/berthd.sock" ] && [ -S "$cd_/containerd.sock" ] || die "a daemon's socket did not appear"
ctr --address "$cd_/containerd.sock" -n k8s.io images import "$tmp/image/images.tar" >/dev/null

cat >"$tmp/driver.py" <<'EOF'
"""The benchmark's CRI client: `driver.py bench` times the lifecycles, `driver.py memory` runs
PODS pods per runtime and measures the daemons, `driver.py cleanup` removes every pod."""
import json, os, shutil, statistics, sys, time
sys.path.insert(0, os.environ["CRITOOLS_DIR"])
import critools

tmp = os.environ["BERTH_BENCH_INNER"]
cg = os.environ["BERTH_BENCH_CGROUP"]
IMAGE = "docker.io/test/small:v1"
STEPS = ["RunPodSandbox", "CreateContainer", "StartContainer", "StopContainer",
         "RemoveContainer", "StopPodSandbox", "RemovePodSandbox"]
# exits on SIGTERM at once (the wait is interrupted by the trap)
COMMAND = ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
RUNTIMES = {"berthd": (f"{tmp}/berthd/berthd.sock", int(os.environ["BD_PID"])),
            "containerd": (f"{tmp}/containerd/containerd.sock", int(os.environ["CD_PID"]))}


def client(name):
    return critools.CriClient(RUNTIMES[name][0], log_root=f"{tmp}/logs/{name}")


def pod_config(c, name):
    cfg = critools.pod_config(name, "bench", f"uid-{name}",
                              log_directory=f"{c.log_root}/bench_{name}",
                              linux={"cgroup_parent": f"/{cg}",
                                     **critools.KUBELET_NAMESPACES})
    return cfg


def lifecycle(c, name):
    """One pod's life; returns the seconds of each step."""
    t = []
    mark = time.perf_counter()

    def step():
        nonlocal mark
        now = time.perf_counter()
        t.append(now - mark)
        mark = now

    pcfg = pod_config(c, name)
    pod = c.call("RunPodSandbox", config=pcfg).pod_sandbox_id
    step()
    cid = c.create(pod, pcfg, "main", COMMAND, IMAGE)
    step()
    c.call("StartContainer", container_id=cid)
    step()
    c.call("StopContainer", container_id=cid, timeout=10)
    step()
    c.call("RemoveContainer", container_id=cid)
    step()
    c.call("StopPodSandbox", pod_sandbox_id=pod)
    step()
    c.call("RemovePodSandbox", pod_sandbox_id=pod)
    step()
    return t


def bench():
    iterations, rounds = int(os.environ["ITERATIONS"]), int(os.environ["ROUNDS"])
    warmup = int(os.environ["WARMUP"])
    names = list(RUNTIMES)
    clients = {n: client(n) for n in names}
    times = {n: [] for n in names}
    for n in names:
        for i in range(warmup):
            lifecycle(clients[n], f"warm-{i}")
    for r in range(rounds):
        order = names[r % 2:] + names[:r % 2]
        for n in order:
            for i in range(iterations):
                times[n].append(lifecycle(clients[n], f"r{r}-{i}"))
            print(f"round {r + 1}/{rounds}: {n} done", file=sys.stderr)
    with open(f"{tmp}/times.json", "w") as f:
        json.dump(times, f)


def proc_mem(pid):
    rss = pss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


def shims(comm_prefix):
    """Pids of this benchmark's shims: their name starts with comm_prefix and their command
    line names the work dir (other berth-shims may run on the machine)."""
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open(f"/proc/{e}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{e}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if comm.startswith(comm_prefix) and tmp.encode() in cmd:
            out.append(int(e))
    return out


def memory():
    pods = int(os.environ["PODS"])
    result = {}
    for n in RUNTIMES:
        c = client(n)
        for i in range(pods):
            pcfg = pod_config(c, f"mem-{i}")
            pod = c.call("RunPodSandbox", config=pcfg).pod_sandbox_id
            cid = c.create(pod, pcfg, "main", COMMAND, IMAGE)
            c.call("StartContainer", container_id=cid)
            c.wait_state(cid, "CONTAINER_RUNNING")
        c.close()
    time.sleep(2)  # let the daemons settle (their caches, idle threads)
    shim_comm = {"berthd": "berth-shim", "containerd": "containerd-shim"}
    for n, (_, pid) in RUNTIMES.items():
        rss, pss = proc_mem(pid)
        pids = shims(shim_comm[n])
        srss = spss = 0
        counted = 0
        for p in pids:
            try:
                a, b = proc_mem(p)
            except OSError:  # gone meanwhile (a shim's short-lived helper)
                continue
            srss += a
            spss += b
            counted += 1
        result[n] = {"rss": rss, "pss": pss, "shims": counted, "shim_rss": srss,
                     "shim_pss": spss}
        if os.environ.get("SMAPS_DIR"):  # where the memory goes, mapping by mapping
            shutil.copy(f"/proc/{pid}/smaps", f"{os.environ['SMAPS_DIR']}/{n}.smaps")
    with open(f"{tmp}/memory.json", "w") as f:
        json.dump(result, f)


def cleanup():
    for n in RUNTIMES:
        try:
            c = client(n)
            for p in c.call("ListPodSandbox").items:
                c.call("StopPodSandbox", pod_sandbox_id=p.id)
                c.call("RemovePodSandbox", pod_sandbox_id=p.id)
            c.close()
        except Exception as e:  # noqa: BLE001 (a best effort; reported)
            print(f"cleanup: {n}: {e!r}", file=sys.stderr)


{"bench": bench, "memory": memory, "cleanup": cleanup}[sys.argv[1]]()
EOF
export CRITOOLS_DIR=$repo/tests/integration BERTH_BENCH_INNER=$tmp BD_PID=$bd_pid CD_PID=$cd_pid
export ITERATIONS ROUNDS PODS WARMUP

# Both must really run a pod with a container (the lifecycle once each, checked).
/usr/bin/python3 - <<'EOF' || { tail -n 30 "$tmp/berthd.log" "$tmp/containerd.log" >&2; exit 1; }
import os, sys
sys.path.insert(0, os.environ["CRITOOLS_DIR"])
import critools
tmp = os.environ["BERTH_BENCH_INNER"]
for name, sock in (("berthd", f"{tmp}/berthd/berthd.sock"),
                   ("containerd", f"{tmp}/containerd/containerd.sock")):
    c = critools.CriClient(sock)
    v = c.call("Version", version="v1")
    print(f"{name}: {v.runtime_name} {v.runtime_version} ({v.runtime_api_version})",
          file=sys.stderr)
    cfg = critools.pod_config("check", "bench", log_directory=f"{tmp}/logs/{name}/check",
                              linux={"cgroup_parent": "/" + os.environ["BERTH_BENCH_CGROUP"],
                                     **critools.KUBELET_NAMESPACES})
    pod = c.call("RunPodSandbox", config=cfg).pod_sandbox_id
    cid = c.create(pod, cfg, "main", ["/bin/sh", "-c", "echo ok; sleep 100000"],
                   "docker.io/test/small:v1")
    c.call("StartContainer", container_id=cid)
    c.wait_state(cid, "CONTAINER_RUNNING")
    st = c.pod_status(pod).status
    assert st.network.ip, f"{name}: the pod has no IP: {st}"
    c.call("StopContainer", container_id=cid, timeout=0)
    s = c.wait_state(cid, "CONTAINER_EXITED")
    assert s.exit_code == 137, f"{name}: exit code {s.exit_code}"
    c.call("RemoveContainer", container_id=cid)
    c.call("StopPodSandbox", pod_sandbox_id=pod)
    c.call("RemovePodSandbox", pod_sandbox_id=pod)
    assert not c.call("ListPodSandbox").items, f"{name}: a pod left"
    c.close()
EOF
echo "$prog: both runtimes ran a pod (IP, container, SIGKILL exit code) and removed it; timing" >&2

start=$SECONDS
/usr/bin/python3 "$tmp/driver.py" bench
echo "$prog: timing took $((SECONDS - start)) s; $PODS pods per runtime for the memory" >&2
/usr/bin/python3 "$tmp/driver.py" memory

/usr/bin/python3 - "$tmp" "${out:-}" "$BERTH_BENCH_VERSIONS" "$(nproc)" <<'EOF'
import datetime, json, statistics, sys
tmp, out, versions, ncpu = sys.argv[1:5]
with open(f"{tmp}/times.json") as f:
    times = json.load(f)
with open(f"{tmp}/memory.json") as f:
    mem = json.load(f)
STEPS = ["RunPodSandbox", "CreateContainer", "StartContainer", "StopContainer",
         "RemoveContainer", "StopPodSandbox", "RemovePodSandbox"]

def med(n, i=None):
    vals = [sum(t) if i is None else t[i] for t in times[n]]
    return statistics.median(vals)

def ms(s):
    return f"{s * 1000:.1f} ms"

rows = [(s, med("berthd", i), med("containerd", i)) for i, s in enumerate(STEPS)]
rows.append(("end to end", med("berthd"), med("containerd")))
w = max(len(r[0]) for r in rows)
n = len(times["berthd"])
print()
print(f"{'step (median of ' + str(n) + ')':<{w + 12}}  {'berthd':>10}  {'containerd':>10}  {'ratio':>5}")
for name, b, c in rows:
    print(f"{name:<{w + 12}}  {ms(b):>10}  {ms(c):>10}  {b / c:>5.2f}")
mrows = []
for key, title in (("rss", "daemon VmRSS"), ("pss", "daemon Pss")):
    mrows.append((title, mem["berthd"][key], mem["containerd"][key]))
for key, title in (("rss", "daemon + shims VmRSS"), ("pss", "daemon + shims Pss")):
    mrows.append((title, mem["berthd"][key] + mem["berthd"]["shim_" + key],
                  mem["containerd"][key] + mem["containerd"]["shim_" + key]))
print()
print(f"{'memory, ' + str(mem['berthd']['shims']) + ' berth-shims / ' + str(mem['containerd']['shims']) + ' containerd shims':<{w + 12}}")
for name, b, c in mrows:
    print(f"{name:<{w + 12}}  {b / 1024:>7.1f} MiB  {c / 1024:>7.1f} MiB  {b / c:>5.2f}")
e2e = rows[-1][1] / rows[-1][2]
rss = mem["berthd"]["rss"] / mem["containerd"]["rss"]
print()
print(f"goal: end to end berthd/containerd at most 0.50: {e2e:.2f} ({'met' if e2e <= 0.5 else 'NOT met'})")
print(f"goal: berthd's VmRSS at most 1/4 of containerd's: {rss:.2f} ({'met' if rss <= 0.25 else 'NOT met'})")
print(f"({versions}; {ncpu} CPUs)")
if out:
    md = ["| step (median) | berthd | containerd | ratio |", "|---|---|---|---|"]
    md += [f"| {name} | {ms(b)} | {ms(c)} | {b / c:.2f} |" for name, b, c in rows]
    md += [f"| {name} | {b / 1024:.1f} MiB | {c / 1024:.1f} MiB | {b / c:.2f} |"
           for name, b, c in mrows]
    md.append("")
    md.append(f"Measured by `tests/bench/cri-lifecycle.sh` on {datetime.date.today()} ({versions}; "
              f"{ncpu} CPUs; {n} lifecycles per runtime; memory with "
              f"{mem['berthd']['shims']} pods running), in a network namespace of its own.")
    with open(out, "w") as f:
        f.write("\n".join(md) + "\n")
    print(f"wrote {out}")
EOF
