#!/bin/bash
# runtime-start.sh [--out FILE] [--json-dir DIR] [--runtime PATH] [--hardened]: container start speed,
# berth-runtime against crun (Debian's package), on the same busybox bundle.
#
#   (a) one container: `run` of /bin/true in the foreground. Like runc's, the foreground `run`
#       of both runtimes deletes the container once its process has exited (checked below
#       before timing), so the timed command is the whole create + start + wait + delete. A
#       `delete -f` before each run (hyperfine --prepare, not timed) is the safety net that lets
#       the next run reuse the id whatever happened.
#   (b) 100 sequential containers, crun's own headline benchmark: one command running that
#       loop of `run`s, stopping at the first failure.
#
# A third command, crun --cgroup-manager=disabled, is measured alongside for reference. crun
# 1.8 refuses this hybrid cgroup host, so everything runs in a private mount namespace where
# the cgroup2 mount /sys/fs/cgroup/unified is unmounted (in that namespace only: the host's
# mounts are never touched) and an empty tmpfs of the namespace takes its place. There crun
# puts each container in the host's v1 hierarchies (/sys/fs/cgroup/<controller>/<id>), while
# berth-runtime, which only knows cgroup v2, finds no cgroup2 mount and runs the container
# without a cgroup: crun without cgroups is the like-for-like line.
#
# The machines are noisy: hyperfine runs all the commands in one invocation, ROUNDS times,
# rotating their order each round (hyperfine runs one command's runs back to back), and the
# medians are over the pooled runs of every round. Medians of wall time decide; CPU time is
# hyperfine's user+system (the runtime and the container it waits for). Not part of the
# pass/fail test run. Needs root; installs hyperfine, crun and busybox-static if missing.
#
# Environment: BERTH_RUNTIME (default build/tools/berth-runtime), ROUNDS (3), RUNS_A (30 per
# round), RUNS_B (5 per round), WARMUP_A (5), WARMUP_B (1).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	echo "usage: $prog [--out FILE] [--json-dir DIR] [--runtime PATH] [--hardened]" >&2
	exit 2
}

out='' json_dir='' hardened='' runtime=${BERTH_RUNTIME:-$repo/build/tools/berth-runtime}
while [ $# -gt 0 ]; do
	case $1 in
	--out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
	--out=*) out=${1#*=}; shift ;;
	--json-dir) [ $# -ge 2 ] || usage; json_dir=$2; shift 2 ;;
	--json-dir=*) json_dir=${1#*=}; shift ;;
	--runtime) [ $# -ge 2 ] || usage; runtime=$2; shift 2 ;;
	--runtime=*) runtime=${1#*=}; shift ;;
	--hardened) hardened=1; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) usage ;;
	esac
done

ROUNDS=${ROUNDS:-3} RUNS_A=${RUNS_A:-30} RUNS_B=${RUNS_B:-5}
WARMUP_A=${WARMUP_A:-5} WARMUP_B=${WARMUP_B:-1}

# ---------------------------------------------------------------------------------------------
# Outside: checks, packages, the temp dir; then the same script again in a private mount ns.
if [ -z "${BERTH_BENCH_INNER:-}" ]; then
	[ "$(id -u)" = 0 ] || die "needs root (containers, mount namespaces)"
	[ -x "$runtime" ] || die "$runtime: not found (build it: ninja -C $repo/build)"
	runtime=$(realpath "$runtime")
	missing=()
	command -v hyperfine >/dev/null || missing+=(hyperfine)
	command -v crun >/dev/null || missing+=(crun)
	[ -x /bin/busybox ] || missing+=(busybox-static)
	command -v python3 >/dev/null || missing+=(python3)
	if [ ${#missing[@]} -gt 0 ]; then
		echo "$prog: installing ${missing[*]}" >&2
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
	# --out and --json-dir are written from inside the namespace: resolve them here
	[ -z "$out" ] || out=$(realpath -m "$out")
	[ -z "$json_dir" ] || json_dir=$(realpath -m "$json_dir")
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	args=(--runtime "$runtime")
	[ -z "$out" ] || args+=(--out "$out")
	[ -z "$json_dir" ] || args+=(--json-dir "$json_dir")
	[ -z "$hardened" ] || args+=(--hardened)
	rc=0
	BERTH_BENCH_INNER=$tmp unshare --mount --propagation private -- "$BASH" "$here/$prog" "${args[@]}" || rc=$?
	exit "$rc"
fi

# ---------------------------------------------------------------------------------------------
# Inside the private mount namespace.
tmp=$BERTH_BENCH_INNER
cgroups="both runtimes used cgroup v2"
if mountpoint -q /sys/fs/cgroup/unified; then # a hybrid host
	umount /sys/fs/cgroup/unified # this namespace only (propagation is private)
	# crun 1.8 still sees the "0::" line of /proc/self/cgroup and writes ID/cgroup.procs into
	# the bare directory left, which is on the host's /sys/fs/cgroup tmpfs, and never removes
	# it. An empty tmpfs of this namespace over it catches those writes and vanishes with it.
	mount -t tmpfs -o mode=0755,size=1m berth-bench-unified /sys/fs/cgroup/unified
	cgroups="hybrid cgroup host with the cgroup2 mount hidden for both runtimes, so berth-runtime ran without a cgroup and crun used cgroup v1"
fi
# State and bundle on a tmpfs of this namespace, like the runtimes' default roots in /run; it
# vanishes with the namespace.
mount -t tmpfs -o mode=0700,size=256m berth-bench "$tmp"

# The build tree is shared and rebuilt while others work: a relink during the benchmark fails
# a run ("libberth.so.0: file too short") or mixes two builds. Measure a copy taken now: the
# binary in bin/tools, the libraries it loads from the build tree in bin/, where its RUNPATH
# ($ORIGIN/..) finds them. An installed berth-runtime is measured where it is.
snapshot_runtime() {
	local dir lib
	dir=$(dirname "$runtime")
	mkdir -p "$tmp/bin/tools"
	cp "$runtime" "$tmp/bin/tools/berth-runtime"
	while read -r lib; do
		cp "$lib" "$tmp/bin/"
	done < <(ldd "$runtime" | awk -v d="$dir/../" 'index($3, d) == 1 { print $3 }')
	if ldd "$tmp/bin/tools/berth-runtime" | grep -q -e "not found" -e " $dir/"; then
		echo "$prog: could not copy $runtime with its libraries; measuring it in place" >&2
	else
		runtime=$tmp/bin/tools/berth-runtime
	fi
}
snapshot_runtime

bundle=$tmp/bundle
id=bench-${tmp##*.} # unique: crun's v1 cgroups are named after it, host-wide
names=(berth-runtime crun crun-nocgroup)
declare -A rt=(
	[berth-runtime]="$runtime --root $tmp/state/berth-runtime"
	[crun]="crun --root $tmp/state/crun"
	[crun-nocgroup]="crun --cgroup-manager=disabled --root $tmp/state/crun-nocgroup"
)
mkdir -p "$tmp/state" "$tmp/json" "$tmp/err"

cleanup() {
	local name c left=0
	set +e
	for name in "${names[@]}"; do
		[ -d "$tmp/state/$name" ] || continue
		for c in $(${rt[$name]} list -q 2>/dev/null); do
			echo "$prog: removing leftover container $c of $name" >&2
			${rt[$name]} delete -f "$c" >/dev/null 2>&1 || {
				echo "$prog: $name delete -f $c failed" >&2
				left=1
			}
		done
	done
	# crun's cgroup v1 directories are on the host: none may stay behind
	for c in /sys/fs/cgroup/*/"$id"; do
		if [ ! -d "$c" ] || [ "$c" = "/sys/fs/cgroup/unified/$id" ]; then
			continue
		fi
		echo "$prog: removing leftover cgroup $c" >&2
		rmdir "$c" || left=1
	done
	[ $left = 0 ] || echo "$prog: some leftovers could not be removed" >&2
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$repo/tests/fixtures/make-bundle.sh" "$bundle" >/dev/null
if [ -n "$hardened" ]; then
	# --hardened: both runtimes get Docker's default capability set, no_new_privs and berth's
	# default seccomp profile (a Docker-like allow-list), as issue 3's speed goal asks
	python3 - "$bundle/config.json" "$repo/runtime/seccomp-default.json" <<'EOF'
import json, sys
path, profile = sys.argv[1], sys.argv[2]
with open(path) as f:
    c = json.load(f)
caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
c["process"]["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
c["process"]["noNewPrivileges"] = True
with open(profile) as f:
    c["linux"]["seccomp"] = json.load(f)
with open(path, "w") as f:
    json.dump(c, f, indent=1)
EOF
fi

set_args() { # set_args ARG...: the bundle's process.args
	python3 - "$bundle/config.json" "$@" <<'EOF'
import json, sys
path = sys.argv[1]
with open(path) as f:
    c = json.load(f)
c["process"]["args"] = sys.argv[2:]
with open(path, "w") as f:
    json.dump(c, f, indent=1)
EOF
}

# Each runtime must really run the container, and its foreground run must remove it.
set_args /bin/echo ok
for name in "${names[@]}"; do
	cmd="${rt[$name]} run -b $bundle $id"
	if ! got=$($cmd 2>"$tmp/err/check"); then
		echo "$prog: $name failed: $cmd" >&2
		cat "$tmp/err/check" >&2
		exit 1
	fi
	[ "$got" = ok ] || die "$name: $cmd printed \"$got\", not \"ok\""
	left=$(${rt[$name]} list -q)
	[ -z "$left" ] || die "$name: $cmd left container(s) behind: $left"
done
set_args /bin/true
echo "$prog: both runtimes ran the bundle (printed ok, left nothing); timing /bin/true" >&2
$runtime --version | head -1 >&2
crun --version | head -1 >&2

# timed_cmd BENCH NAME: the command hyperfine times. (a) runs the runtime directly (hyperfine
# -N: no shell, whose start-up hyperfine cannot subtract precisely from a few milliseconds);
# (b) is a loop in sh, whose start-up is noise next to 100 containers, keeping stderr.
timed_cmd() {
	local run="${rt[$2]} run -b $bundle $id"
	if [ "$1" = a ]; then
		echo "$run"
	else
		echo "for i in \$(seq 100); do $run >/dev/null 2>>$tmp/err/$2 || exit 1; done"
	fi
}

# run_round BENCH ROUND WARMUP RUNS: one hyperfine invocation of every command.
run_round() {
	local bench=$1 round=$2 warmup=$3 runs=$4 k n name cmd
	local -a hf=(hyperfine --style basic --warmup "$warmup" --runs "$runs"
		--export-json "$tmp/json/$bench-$round.json")
	[ "$bench" != a ] || hf+=(-N)
	n=${#names[@]}
	for ((k = 0; k < n; k++)); do
		name=${names[$(((k + round) % n))]}
		# untimed, before each run: the safety net that frees the id whatever happened
		hf+=(--prepare "sh -c '${rt[$name]} delete -f $id >/dev/null 2>&1 || true'"
			-n "$name" "$(timed_cmd "$bench" "$name")")
	done
	"${hf[@]}" && return 0

	echo "$prog: benchmark ($bench) round $((round + 1)) failed; the timed commands were:" >&2
	for name in "${names[@]}"; do
		echo "  $name: $(timed_cmd "$bench" "$name")" >&2
	done
	for name in "${names[@]}"; do
		if [ -s "$tmp/err/$name" ]; then
			echo "$prog: $name wrote to stderr:" >&2
			tail -n 20 "$tmp/err/$name" >&2
		fi
	done
	if [ "$bench" = a ]; then # hyperfine -N threw the output away: run each once more
		for name in "${names[@]}"; do
			${rt[$name]} delete -f "$id" >/dev/null 2>&1 || true
			cmd=$(timed_cmd a "$name")
			if ! $cmd >/dev/null 2>"$tmp/err/rerun"; then
				echo "$prog: re-run of $name: $cmd failed:" >&2
				cat "$tmp/err/rerun" >&2
			fi
		done
	fi
	exit 1
}

start=$SECONDS
for ((r = 0; r < ROUNDS; r++)); do
	echo "== (a) one container, round $((r + 1))/$ROUNDS" >&2
	run_round a "$r" "$WARMUP_A" "$RUNS_A"
done
for ((r = 0; r < ROUNDS; r++)); do
	echo "== (b) 100 sequential containers, round $((r + 1))/$ROUNDS" >&2
	run_round b "$r" "$WARMUP_B" "$RUNS_B"
done
echo "$prog: timing took $((SECONDS - start)) s" >&2

if [ -n "$json_dir" ]; then
	mkdir -p "$json_dir"
	cp "$tmp"/json/*.json "$json_dir"/
fi

PYTHONPATH=$here python3 - "$tmp/json" "$ROUNDS" "${out:-}" "$(crun --version | head -1)" "$(nproc)" "$cgroups" <<'EOF'
import datetime, sys

import hyperfine_rounds  # tests/bench/hyperfine_rounds.py

jdir, rounds, out, crun_version, ncpu, cgroups = sys.argv[1:7]
rounds = int(rounds)

def load(bench):
    return hyperfine_rounds.load(jdir, bench, rounds)

fmt = hyperfine_rounds.fmt

benches = [("a", "one container (run /bin/true, removed on exit)"),
           ("b", "100 sequential containers")]
rows, lines = [], []
for b, title in benches:
    pooled, per_round = load(b)
    be, cr, cn = pooled["berth-runtime"], pooled["crun"], pooled["crun-nocgroup"]
    n = len(be["times"])
    rows.append((f"({b}) {title}, median wall", be["median"], cr["median"], cn["median"]))
    rows.append((f"({b}) {title}, mean CPU (user+sys)", be["cpu"], cr["cpu"], cn["cpu"]))
    spread = ", ".join(f"{r['berth-runtime'] / r['crun']:.2f}" for r in per_round)
    lines.append(f"({b}) berth/crun median ratio per round: {spread} ({n} runs per command)")

print()
w = max(len(r[0]) for r in rows)
print(f"{'benchmark':<{w}}  {'berth-runtime':>13}  {'crun':>10}  {'ratio':>5}  "
      f"{'crun, no cgroups':>16}  {'ratio':>5}")
for name, be, cr, cn in rows:
    print(f"{name:<{w}}  {fmt(be):>13}  {fmt(cr):>10}  {be / cr:>5.2f}  {fmt(cn):>16}  {be / cn:>5.2f}")
print()
for l in lines:
    print(l)
print("ratio = berth-runtime / crun; goal (issue 2): at most 0.80 on both medians")

if out:
    md = ["| benchmark | berth-runtime | crun | ratio |", "|---|---|---|---|"]
    for name, be, cr, cn in rows:
        md.append(f"| {name} | {fmt(be)} | {fmt(cr)} | {be / cr:.2f} |")
    for name, be, cr, cn in rows:
        if "wall" in name:
            md.append(f"| {name}, vs crun --cgroup-manager=disabled | {fmt(be)} | {fmt(cn)} | {be / cn:.2f} |")
    md.append("")
    md.append(f"Measured by `tests/bench/runtime-start.sh` on {datetime.date.today()} "
              f"({crun_version}, {ncpu} CPUs, {cgroups}). "
              f"Absolute times are illustrations; the ratio is what counts.")
    with open(out, "w") as f:
        f.write("\n".join(md) + "\n")
    print(f"wrote {out}")
EOF
