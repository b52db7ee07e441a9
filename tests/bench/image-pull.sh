#!/bin/bash
# image-pull.sh [--out FILE] [--json-dir DIR] [--berth PATH]: image pull and unpack speed, berth
# against containerd and skopeo + umoci, on the `bench` image of tests/fixtures/make-image.py
# (~200 MB unpacked in ~45,000 entries, 3 gzip layers: Debian's /usr trees and generated files)
# served by Debian's docker-registry on 127.0.0.1.
#
#   (a) pull: `berth image pull` (download, verify, unpack) against containerd's
#       `ctr images pull --plain-http` (Debian's containerd, started here with its own root,
#       state and socket, overlayfs snapshotter) and against `skopeo copy` to an OCI layout
#       followed by `umoci unpack`. Before each run (hyperfine --prepare, not timed) the previous
#       result is removed: berth's store, containerd's image (`ctr images rm --sync`, which
#       garbage-collects its content and snapshots; checked empty below), skopeo's layout and
#       umoci's bundle.
#   (b) unpack alone: berth's pull into a store whose content/ already holds every blob (copied
#       in by --prepare from a store that pulled the image once, with index.json emptied, so the
#       image is unknown, no snapshot exists, and nothing is downloaded: the registry's blob
#       requests are counted to prove it; the manifest is still fetched, a few hundred bytes)
#       against the floor: `gzip -dc LAYER | tar -x` layer after layer, each into its own
#       directory as berth's snapshots are, the same with pigz, and gzip | tar of every layer at
#       once (berth unpacks up to 3 layers in parallel). All read the blobs from the page cache; berth's figure includes what it does beyond tar: verifying the blobs'
#       digests and diffIDs, converting whiteouts, recording snapshots.
#   (c) peak RSS of `berth image pull` (ru_maxrss of the finished process), a pull and an
#       unpack alone; the goal is under 64 MiB.
#
# Everything is written to a fresh journaled ext4 scratch filesystem (mkfs.ext4 on a sparse
# file, mounted -o loop in a private mount namespace: the machines' root is ext4 without a
# journal, where deleting a tree and writing another soon after is 5-7x slower), unmounted and
# deleted at the end. Before timing, berth's mounted image is compared file by file with the
# image's expected tree, and every tool's pull is checked to have worked.
#
# The machines are noisy: each hyperfine invocation runs every command of a benchmark, ROUNDS
# times with the order rotated, and the medians are over the pooled runs. Not part of the
# pass/fail test run. Needs root; installs what is missing from Debian's packages.
#
# Environment: BERTH (default build/tools/berth), ROUNDS (2), RUNS (3 per round), WARMUP (1),
# SCRATCH_SIZE (8G, sparse).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	echo "usage: $prog [--out FILE] [--json-dir DIR] [--berth PATH]" >&2
	exit 2
}

out='' json_dir='' berth=${BERTH:-$repo/build/tools/berth}
while [ $# -gt 0 ]; do
	case $1 in
	--out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
	--out=*) out=${1#*=}; shift ;;
	--json-dir) [ $# -ge 2 ] || usage; json_dir=$2; shift 2 ;;
	--json-dir=*) json_dir=${1#*=}; shift ;;
	--berth) [ $# -ge 2 ] || usage; berth=$2; shift 2 ;;
	--berth=*) berth=${1#*=}; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) usage ;;
	esac
done

ROUNDS=${ROUNDS:-2} RUNS=${RUNS:-3} WARMUP=${WARMUP:-1} SCRATCH_SIZE=${SCRATCH_SIZE:-8G}
PY=/usr/bin/python3

# ---------------------------------------------------------------------------------------------
# Outside: checks, packages, the temp dir; then the same script again in a private mount ns.
if [ -z "${BERTH_BENCH_INNER:-}" ]; then
	[ "$(id -u)" = 0 ] || die "needs root (mounts, containerd)"
	[ -x "$berth" ] || die "$berth: not found (build it: ninja -C $repo/build tools/berth)"
	berth=$(realpath "$berth")
	missing=()
	for p in hyperfine docker-registry skopeo umoci containerd pigz python3-zstandard \
		e2fsprogs busybox-static; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
			missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "$prog: installing ${missing[*]}" >&2
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
	[ -z "$out" ] || out=$(realpath -m "$out")
	[ -z "$json_dir" ] || json_dir=$(realpath -m "$json_dir")
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench-pull.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	args=(--berth "$berth")
	[ -z "$out" ] || args+=(--out "$out")
	[ -z "$json_dir" ] || args+=(--json-dir "$json_dir")
	rc=0
	BERTH_BENCH_INNER=$tmp unshare --mount --propagation private -- "$BASH" "$here/$prog" "${args[@]}" || rc=$?
	exit "$rc"
fi

# ---------------------------------------------------------------------------------------------
# Inside the private mount namespace.
tmp=$BERTH_BENCH_INNER
fs=$tmp/fs
pids=()

cleanup() {
	local p
	set +e
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	# berth's mounted rootfs of the correctness check, if a failure left it
	if [ -d "$fs/check-ctr" ]; then
		"$berth" --root "$fs/check-root" image unmount "$fs/check-ctr" >/dev/null 2>&1
		"$berth" --root "$fs/seed-check" image unmount "$fs/check-ctr" >/dev/null 2>&1
	fi
	if mountpoint -q "$fs"; then
		# containerd's snapshot mounts die with its namespace; the loop mount goes now
		umount -R "$fs" || umount -l "$fs"
	fi
	rm -f "$tmp/scratch.img"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The scratch filesystem: journaled ext4 (mkfs.ext4's default), fresh.
truncate -s "$SCRATCH_SIZE" "$tmp/scratch.img"
mkfs.ext4 -q -F -O has_journal "$tmp/scratch.img"
mkdir -p "$fs"
mount -o loop "$tmp/scratch.img" "$fs"

# Measure a copy of berth taken now (the build tree is shared and may be relinked meanwhile).
mkdir -p "$tmp/bin"
cp "$berth" "$tmp/bin/berth"
if ldd "$tmp/bin/berth" | grep -q -e "not found" -e " $(dirname "$berth")/"; then
	echo "$prog: $berth loads libraries from its build tree; measuring it in place" >&2
else
	berth=$tmp/bin/berth
fi

# The image, its expected tree, a registry serving it.
echo "$prog: building the bench image" >&2
$PY "$repo/tests/fixtures/make-image.py" build "$fs/layout" bench --expected "$fs/bench.json" >/dev/null
read -r -a layers < <($PY -c '
import json, sys
e = json.load(open(sys.argv[1]))
print(" ".join(l["digest"].split(":")[1] for l in e["layers"]))
' "$fs/bench.json")
summary=$($PY -c '
import json, sys
e = json.load(open(sys.argv[1]))
files = sum(d.get("size", 0) for t in [l["tree"] for l in e["layers"]] for d in t.values())
entries = sum(len(l["tree"]) for l in e["layers"])
n, size = len(e["layers"]), e["size"] / 1e6
print(f"{n} gzip layers, {size:.0f} MB compressed, {files / 1e6:.0f} MB of files in {entries} entries")
' "$fs/bench.json")
echo "$prog: bench image: $summary" >&2

port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$fs/registry"
cat >"$tmp/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $fs/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: berth-bench
EOF
docker-registry serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	curl -sf "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -sf "http://127.0.0.1:$port/v2/" >/dev/null || die "docker-registry did not start: $(tail -5 "$tmp/registry.log")"
ref=127.0.0.1:$port/bench/image:v1
# skopeo as root keeps a blob-info cache in /var/lib/containers: keep it in $tmp instead
skopeo_env=(env _CONTAINERS_ROOTLESS_UID=1 XDG_DATA_HOME="$tmp/skopeo" HOME="$tmp/skopeo" XDG_RUNTIME_DIR="$tmp/skopeo")
mkdir -p "$tmp/skopeo"
"${skopeo_env[@]}" skopeo copy -q --preserve-digests --dest-tls-verify=false \
	"oci:$fs/layout:bench" "docker://$ref"

# containerd with its own root, state and socket; only what `ctr images pull` needs (no CRI:
# that is also what would need restrict_oom_score_adj on these machines).
mkdir -p "$fs/containerd"
sock=$tmp/containerd.sock
cat >"$tmp/containerd.toml" <<EOF
version = 2
root = "$fs/containerd/root"
state = "$tmp/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
EOF
containerd --config "$tmp/containerd.toml" >"$tmp/containerd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	ctr -a "$sock" version >/dev/null 2>&1 && break
	sleep 0.1
done
ctr -a "$sock" version >/dev/null 2>&1 || die "containerd did not start: $(tail -5 "$tmp/containerd.log")"
ctr_cmd="ctr -a $sock -n bench"
csnap=$fs/containerd/root/io.containerd.snapshotter.v1.overlayfs/snapshots

# A fake registry for (b), serving the same layout: it counts blob requests.
$PY "$repo/tests/fixtures/fake-registry.py" "$fs/layout" >"$tmp/fake.port" 2>"$tmp/fake.log" &
pids+=($!)
for _ in $(seq 100); do
	[ -s "$tmp/fake.port" ] && break
	sleep 0.1
done
fport=$(head -1 "$tmp/fake.port")
[ -n "$fport" ] || die "fake-registry.py did not start: $(tail -5 "$tmp/fake.log")"
fref=127.0.0.1:$fport/bench/image:bench
blob_requests() {
	curl -sf "http://127.0.0.1:$fport/stats" | $PY -c '
import json, sys
print(sum(n for p, n in json.load(sys.stdin)["requests"].items() if "/blobs/" in p))'
}

# ---------------------------------------------------------------------------------------------
# Correctness first: each tool's pull works; berth's result is the expected tree.
echo "$prog: checking every tool's pull" >&2
"$berth" --root "$fs/check-root" image pull -q "$ref" >/dev/null
"$berth" --root "$fs/check-root" image mount "$ref" "$fs/check-ctr" >/dev/null
if ! $PY "$repo/tests/fixtures/make-image.py" compare "$fs/bench.json" merged "$fs/check-ctr/rootfs" >"$tmp/compare.out"; then
	head -20 "$tmp/compare.out" >&2
	die "berth's rootfs of the bench image differs from the expected tree"
fi
"$berth" --root "$fs/check-root" image unmount "$fs/check-ctr"
rmdir "$fs/check-ctr" 2>/dev/null || true
"$berth" --root "$fs/check-root" image check >/dev/null || die "berth image check failed after the pull"

$ctr_cmd images pull --plain-http "$ref" >/dev/null
n=$(find "$csnap" -mindepth 1 -maxdepth 1 | wc -l)
[ "$n" = "${#layers[@]}" ] || die "containerd made $n snapshots, not ${#layers[@]}"
$ctr_cmd images rm --sync "$ref" >/dev/null
n=$(find "$csnap" -mindepth 1 -maxdepth 1 | wc -l)
[ "$n" = 0 ] || die "ctr images rm --sync left $n snapshots: containerd's runs would not start afresh"

"${skopeo_env[@]}" skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$fs/check-oci:bench"
umoci unpack --image "$fs/check-oci:bench" "$fs/check-bundle" >/dev/null
$PY "$repo/tests/fixtures/make-image.py" compare "$fs/bench.json" merged "$fs/check-bundle/rootfs" --no-dir-mtime >/dev/null ||
	echo "$prog: note: umoci's rootfs differs from the expected tree" >&2

# The seed for (b): every blob in content/, the image itself unknown.
"$berth" --root "$fs/seed" image pull -q "$fref" >/dev/null
mkdir -p "$fs/seed-content"
cp -a "$fs/seed/content/." "$fs/seed-content/"
$PY - "$fs/seed-content/index.json" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    index = json.load(f)
index["manifests"] = []
with open(sys.argv[1], "w") as f:
    json.dump(index, f)
EOF
rm -rf "$fs/seed" "$fs/check-root" "$fs/check-oci" "$fs/check-bundle"
mkdir -p "$fs/seed-check"
cp -a "$fs/seed-content" "$fs/seed-check/content"
before=$(blob_requests)
"$berth" --root "$fs/seed-check" image pull -q "$fref" >/dev/null
seeded=$(blob_requests)
[ "$seeded" = "$before" ] ||
	die "berth downloaded $((seeded - before)) blobs in a seeded store: (b) would not be unpack alone"
"$berth" --root "$fs/seed-check" image check >/dev/null || die "berth image check failed after the seeded pull"
"$berth" --root "$fs/seed-check" image mount "$fref" "$fs/check-ctr" >/dev/null
if ! $PY "$repo/tests/fixtures/make-image.py" compare "$fs/bench.json" merged "$fs/check-ctr/rootfs" >"$tmp/compare.out"; then
	head -20 "$tmp/compare.out" >&2
	"$berth" --root "$fs/seed-check" image unmount "$fs/check-ctr"
	die "berth's rootfs of the bench image, unpacked in a seeded store, differs from the expected tree"
fi
"$berth" --root "$fs/seed-check" image unmount "$fs/check-ctr"
rm -rf "$fs/seed-check" "$fs/check-ctr"
sync

layer_paths=()
for l in "${layers[@]}"; do
	layer_paths+=("$fs/layout/blobs/sha256/$l")
done
floor_cmd() { # floor_cmd gzip|pigz: every layer into its own directory, one after the other
	local i=0 l cmd=""
	for l in "${layer_paths[@]}"; do
		cmd+="mkdir $fs/floor/$i && $1 -dc $l | tar -x -C $fs/floor/$i && "
		i=$((i + 1))
	done
	echo "${cmd}true"
}
floor_parallel_cmd() { # the same, every layer at once (as berth may unpack them)
	local i=0 l cmd="" waits=""
	for l in "${layer_paths[@]}"; do
		cmd+="(mkdir $fs/floor/$i && gzip -dc $l | tar -x -C $fs/floor/$i) & p$i=\$!; "
		waits+="wait \$p$i && "
		i=$((i + 1))
	done
	echo "${cmd}${waits}true"
}

# ---------------------------------------------------------------------------------------------
# Timing.
declare -A cmd prep
cmd[berth]="$berth --root $fs/a-berth image pull -q $ref >/dev/null"
prep[berth]="rm -rf $fs/a-berth; sync"
cmd[containerd]="$ctr_cmd images pull --plain-http $ref >/dev/null"
prep[containerd]="$ctr_cmd images rm --sync $ref >/dev/null 2>&1; sync"
cmd[skopeo+umoci]="${skopeo_env[*]} skopeo copy -q --src-tls-verify=false docker://$ref oci:$fs/a-oci:bench && umoci unpack --image $fs/a-oci:bench $fs/a-bundle >/dev/null"
prep[skopeo+umoci]="rm -rf $fs/a-oci $fs/a-bundle; sync"
cmd[berth-unpack]="$berth --root $fs/b-berth image pull -q $fref >/dev/null"
prep[berth-unpack]="rm -rf $fs/b-berth; mkdir -p $fs/b-berth; cp -a $fs/seed-content $fs/b-berth/content; sync"
cmd[gzip-tar]=$(floor_cmd gzip)
prep[gzip-tar]="rm -rf $fs/floor; mkdir $fs/floor; sync"
cmd[pigz-tar]=$(floor_cmd pigz)
prep[pigz-tar]="rm -rf $fs/floor; mkdir $fs/floor; sync"
cmd[gzip-tar-parallel]=$(floor_parallel_cmd)
prep[gzip-tar-parallel]="rm -rf $fs/floor; mkdir $fs/floor; sync"
bench_a=(berth containerd skopeo+umoci)
bench_b=(berth-unpack gzip-tar pigz-tar gzip-tar-parallel)
mkdir -p "$tmp/json"

run_round() { # run_round a|b ROUND: one hyperfine invocation of the benchmark's commands
	local bench=$1 round=$2 k n name
	local -n names=bench_$bench
	local -a hf=(hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS"
		--export-json "$tmp/json/$bench-$round.json")
	n=${#names[@]}
	for ((k = 0; k < n; k++)); do
		name=${names[$(((k + round) % n))]}
		hf+=(--prepare "${prep[$name]}" -n "$name" "${cmd[$name]}")
	done
	"${hf[@]}" || die "benchmark ($bench) round $((round + 1)) failed"
}

start=$SECONDS
for ((r = 0; r < ROUNDS; r++)); do
	echo "== (a) pull: berth, containerd, skopeo + umoci; round $((r + 1))/$ROUNDS" >&2
	run_round a "$r"
done
for ((r = 0; r < ROUNDS; r++)); do
	echo "== (b) unpack alone: berth against gzip|tar, pigz|tar, parallel gzip|tar; round $((r + 1))/$ROUNDS" >&2
	run_round b "$r"
done
[ "$(blob_requests)" = "$seeded" ] || die "berth downloaded blobs during (b): its figures are not unpack alone"
echo "$prog: timing took $((SECONDS - start)) s" >&2

# (c) peak RSS, in KiB, of the berth process (the largest child's ru_maxrss)
maxrss() {
	$PY -c '
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
if r.returncode:
    sys.exit(f"{sys.argv[1:]} failed")
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@"
}
rss_pull=() rss_unpack=()
for i in 1 2 3; do
	rm -rf "$fs/c-berth"
	rss_pull+=("$(maxrss "$berth" --root "$fs/c-berth" image pull -q "$ref")")
	rm -rf "$fs/c-berth"
	mkdir -p "$fs/c-berth"
	cp -a "$fs/seed-content" "$fs/c-berth/content"
	rss_unpack+=("$(maxrss "$berth" --root "$fs/c-berth" image pull -q "$fref")")
done
rm -rf "$fs/c-berth"

if [ -n "$json_dir" ]; then
	mkdir -p "$json_dir"
	cp "$tmp"/json/*.json "$json_dir"/
fi

$PY - "$tmp/json" "$ROUNDS" "${out:-}" "$summary" "$(nproc)" "${rss_pull[*]}" "${rss_unpack[*]}" \
	"$(containerd --version | awk '{print $3}')" "$(skopeo --version | awk '{print $3}')" \
	"$(umoci --version | awk '{print $3}')" <<'EOF'
import datetime, json, statistics, sys

jdir, rounds, out, summary, ncpu, rss_pull, rss_unpack, v_ctrd, v_skopeo, v_umoci = sys.argv[1:11]
rounds = int(rounds)

def load(bench):
    pooled = {}
    per_round = []
    for r in range(rounds):
        with open(f"{jdir}/{bench}-{r}.json") as f:
            res = json.load(f)["results"]
        per_round.append({x["command"]: x["median"] for x in res})
        for x in res:
            p = pooled.setdefault(x["command"], {"times": [], "cpu": []})
            p["times"] += x["times"]
            p["cpu"] += [u + s for u, s in zip(x["user"] if isinstance(x["user"], list) else [x["user"]] * len(x["times"]),
                                                x["system"] if isinstance(x["system"], list) else [x["system"]] * len(x["times"]))]
    for p in pooled.values():
        p["median"] = statistics.median(p["times"])
        p["cpu_median"] = statistics.median(p["cpu"])
    return pooled, per_round

a, a_rounds = load("a")
b, b_rounds = load("b")
rows = []
def row(title, name, peer, pooled, rounds_):
    r = pooled[name]["median"] / pooled[peer]["median"]
    spread = ", ".join(f"{x[name] / x[peer]:.2f}" for x in rounds_)
    rows.append((title, pooled[name]["median"], pooled[peer]["median"], r, spread,
                 pooled[name]["cpu_median"], pooled[peer]["cpu_median"]))

row("(a) pull: berth / containerd (ctr pull)", "berth", "containerd", a, a_rounds)
row("(a) pull: berth / skopeo copy + umoci unpack", "berth", "skopeo+umoci", a, a_rounds)
row("(b) unpack: berth / gzip -dc | tar -x", "berth-unpack", "gzip-tar", b, b_rounds)
row("(b) unpack: berth / pigz -dc | tar -x", "berth-unpack", "pigz-tar", b, b_rounds)
row("(b) unpack: berth / gzip -dc | tar -x, layers at once", "berth-unpack",
    "gzip-tar-parallel", b, b_rounds)

def fmt(s):
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.2f} s"

print()
print(f"bench image: {summary}")
w = max(len(r[0]) for r in rows)
print(f"{'benchmark':<{w}}  {'berth':>9}  {'peer':>9}  {'ratio':>5}  per round   "
      f"{'CPU berth':>9}  {'CPU peer':>9}")
for title, be, peer, ratio, spread, cb, cp in rows:
    print(f"{title:<{w}}  {fmt(be):>9}  {fmt(peer):>9}  {ratio:>5.2f}  {spread:<10}  "
          f"{fmt(cb):>9}  {fmt(cp):>9}")
mib = lambda v: max(int(x) for x in v.split()) / 1024
print()
print(f"(c) peak RSS of berth image pull: {mib(rss_pull):.1f} MiB (pull), "
      f"{mib(rss_unpack):.1f} MiB (unpack alone); max of 3 runs each; goal < 64 MiB")
print("ratio = median wall time of berth / the peer's (below 1: berth is faster); CPU is "
      "hyperfine's user+system of the command (containerd's daemon not included)")

if out:
    md = ["| benchmark | berth | peer | ratio |", "|---|---|---|---|"]
    for title, be, peer, ratio, spread, cb, cp in rows:
        md.append(f"| {title.replace('|', chr(92) + '|')} | {fmt(be)} | {fmt(peer)} | {ratio:.2f} |")
    md.append(f"| (c) peak RSS of berth image pull | {mib(rss_pull):.1f} MiB | goal < 64 MiB | |")
    md.append("")
    md.append(f"Measured by `tests/bench/image-pull.sh` on {datetime.date.today()} "
              f"(bench image: {summary}; containerd {v_ctrd}, skopeo {v_skopeo}, umoci {v_umoci}; "
              f"{ncpu} CPUs; fresh journaled ext4 scratch filesystem). "
              f"Absolute times are illustrations; the ratio is what counts.")
    with open(out, "w") as f:
        f.write("\n".join(md) + "\n")
    print(f"wrote {out}")
EOF
