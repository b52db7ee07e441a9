#!/bin/bash
# pod-network.sh [--out FILE] [--json-dir DIR] [--podnet PATH]: pod network setup speed, berth's
# built-in bridge networking (netns/, through the podnet test driver) against the same work done
# by Debian's CNI plugins (containernetworking-plugins: bridge with isGateway and ipMasq, and
# host-local IPAM), which podnet runs per the CNI spec when given --cni-conf-dir.
#
#   (a) one pod's whole network life: `podnet create X >/dev/null && podnet remove X`, built-in
#       against CNI (both in sh; hyperfine subtracts the shell's start-up).
#   (b) one pod's setup alone: `podnet create X`, the pod removed before each run (hyperfine
#       --prepare, not timed); goal for the built-in mode: a median under 20 ms.
# Goal (issue netns): built-in / CNI at most 0.5 on (a).
#
# THE NETWORK RULE: everything runs in a fresh network namespace made for the benchmark (the
# "node", with its own private mount namespace and a tmpfs for the state), never in the host's:
# the bridges, veths, nftables/iptables rules and pinned namespaces die with it. The CNI
# plugins' host-local dataDir is inside that tmpfs, never /var/lib/cni.
#
# The machines are noisy: hyperfine runs both commands in one invocation, ROUNDS times,
# rotating their order each round, and the medians are over the pooled runs of every round.
# Not part of the pass/fail test run. Needs root; installs hyperfine,
# containernetworking-plugins, iproute2, nftables and iptables if missing.
#
# Environment: BERTH_PODNET (default build/tests/podnet), ROUNDS (3), RUNS (30 per round
# and command), WARMUP (5).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	echo "usage: $prog [--out FILE] [--json-dir DIR] [--podnet PATH]" >&2
	exit 2
}

out='' json_dir='' podnet=${BERTH_PODNET:-$repo/build/tests/podnet}
while [ $# -gt 0 ]; do
	case $1 in
	--out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
	--out=*) out=${1#*=}; shift ;;
	--json-dir) [ $# -ge 2 ] || usage; json_dir=$2; shift 2 ;;
	--json-dir=*) json_dir=${1#*=}; shift ;;
	--podnet) [ $# -ge 2 ] || usage; podnet=$2; shift 2 ;;
	--podnet=*) podnet=${1#*=}; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) usage ;;
	esac
done

ROUNDS=${ROUNDS:-3} RUNS=${RUNS:-30} WARMUP=${WARMUP:-5}
CNI_BIN=/usr/lib/cni

# ---------------------------------------------------------------------------------------------
# Outside: checks, packages, the temp dir; then the same script again in a new network and
# mount namespace (the node).
if [ -z "${BERTH_BENCH_INNER:-}" ]; then
	[ "$(id -u)" = 0 ] || die "needs root (network namespaces, bridges, nftables)"
	[ -x "$podnet" ] || die "$podnet: not found (build it: ninja -C $repo/build)"
	podnet=$(realpath "$podnet")
	missing=()
	command -v hyperfine >/dev/null || missing+=(hyperfine)
	[ -x "$CNI_BIN/bridge" ] && [ -x "$CNI_BIN/host-local" ] || missing+=(containernetworking-plugins)
	command -v ip >/dev/null || missing+=(iproute2)
	command -v nft >/dev/null || missing+=(nftables)
	command -v iptables >/dev/null || missing+=(iptables) # the bridge plugin's ipMasq
	command -v python3 >/dev/null || missing+=(python3)
	if [ ${#missing[@]} -gt 0 ]; then
		echo "$prog: installing ${missing[*]}" >&2
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
	[ -z "$out" ] || out=$(realpath -m "$out")
	[ -z "$json_dir" ] || json_dir=$(realpath -m "$json_dir")
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	args=(--podnet "$podnet")
	[ -z "$out" ] || args+=(--out "$out")
	[ -z "$json_dir" ] || args+=(--json-dir "$json_dir")
	rc=0
	BERTH_BENCH_INNER=$tmp unshare --net --mount --propagation private -- \
		"$BASH" "$here/$prog" "${args[@]}" || rc=$?
	exit "$rc"
fi

# ---------------------------------------------------------------------------------------------
# Inside the node: a network namespace of our own (checked), private mounts.
tmp=$BERTH_BENCH_INNER
[ "$(readlink /proc/self/ns/net)" != "$(readlink /proc/1/ns/net)" ] ||
	die "not in a network namespace of our own: refusing to touch the host's"
ip link set lo up
mount -t tmpfs -o mode=0700,size=256m berth-bench "$tmp"
mkdir -p "$tmp/bin" "$tmp/json" "$tmp/err" "$tmp/cni/conf" "$tmp/state"

# The build tree is shared and rebuilt while others work: measure a copy of podnet taken now
# (when it needs no library from the build tree), not a binary that may be relinked mid-run.
if ! ldd "$podnet" 2>/dev/null | grep -q -e "not found" -e " $(dirname "$podnet")/../"; then
	cp "$podnet" "$tmp/bin/podnet"
	podnet=$tmp/bin/podnet
fi

cat >"$tmp/cni/conf/10-bench.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "berth-bench",
  "plugins": [
    {"type": "bridge", "bridge": "cni-bench0", "isGateway": true, "ipMasq": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.77.0.0/16"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$tmp/cni/ipam"}}
  ]
}
EOF

names=(built-in cni)
declare -A pn=(
	[built-in]="$podnet --state $tmp/state/built-in"
	[cni]="$podnet --state $tmp/state/cni --cni-conf-dir $tmp/cni/conf --cni-bin-dir $CNI_BIN"
)

cleanup() {
	local name
	set +e
	for name in "${names[@]}"; do
		${pn[$name]} remove bench-a bench-b check >/dev/null 2>&1 ||
			echo "$prog: removing $name's pods failed" >&2
	done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Each mode must really set a pod up (an address of its subnet, a veth on its bridge), and
# remove it completely.
for name in "${names[@]}"; do
	if ! status=$(${pn[$name]} create check 2>"$tmp/err/check"); then
		echo "$prog: $name: create failed" >&2
		cat "$tmp/err/check" >&2
		exit 1
	fi
	python3 - "$name" "$status" <<'EOF' || exit 1
import ipaddress, json, sys
name, status = sys.argv[1], json.loads(sys.argv[2])
want = {"built-in": ("bridge", "10.88.0.0/16"), "cni": ("cni", "10.77.0.0/16")}[name]
ok = status.get("mode") == want[0] and status.get("state") == "ready" and status.get("ip4") \
    and ipaddress.ip_address(status["ip4"]) in ipaddress.ip_network(want[1])
if not ok:
    sys.exit(f"pod-network.sh: {name}: unexpected status {status}")
EOF
	veths=$(ip -o link show type veth | wc -l)
	[ "$veths" = 1 ] || die "$name: $veths veths after one create, not 1"
	${pn[$name]} remove check || die "$name: remove failed"
	veths=$(ip -o link show type veth | wc -l)
	[ "$veths" = 0 ] || die "$name: $veths veths left after remove"
	[ -z "$(${pn[$name]} list)" ] || die "$name: pods left after remove"
done
[ -z "$(find "$tmp/cni/ipam" -name '10.77.*' 2>/dev/null)" ] || die "cni: host-local reservation left"
echo "$prog: both modes set a pod up and removed it completely; timing" >&2

# timed_cmd BENCH NAME: (a) a create and remove in sh; (b) the create alone, run directly
# (hyperfine -N), the pod removed by --prepare before each run.
timed_cmd() {
	if [ "$1" = a ]; then
		echo "${pn[$2]} create bench-a >/dev/null 2>>$tmp/err/$2 && ${pn[$2]} remove bench-a 2>>$tmp/err/$2"
	else
		echo "${pn[$2]} create bench-b"
	fi
}

# run_round BENCH ROUND: one hyperfine invocation of both commands.
run_round() {
	local bench=$1 round=$2 k n name
	local -a hf=(hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS"
		--export-json "$tmp/json/$bench-$round.json")
	[ "$bench" != b ] || hf+=(-N)
	n=${#names[@]}
	for ((k = 0; k < n; k++)); do
		name=${names[$(((k + round) % n))]}
		if [ "$bench" = b ]; then
			hf+=(--prepare "${pn[$name]} remove bench-b")
		else
			hf+=(--prepare "${pn[$name]} remove bench-a")
		fi
		hf+=(-n "$name" "$(timed_cmd "$bench" "$name")")
	done
	"${hf[@]}" && return 0
	echo "$prog: benchmark ($bench) round $((round + 1)) failed; the timed commands were:" >&2
	for name in "${names[@]}"; do
		echo "  $name: $(timed_cmd "$bench" "$name")" >&2
		[ ! -s "$tmp/err/$name" ] || tail -n 20 "$tmp/err/$name" >&2
		if [ "$bench" = b ]; then # hyperfine -N threw the output away: once more, to see it
			${pn[$name]} remove bench-b >/dev/null 2>&1 || true
			${pn[$name]} create bench-b >/dev/null || true
		fi
	done
	exit 1
}

start=$SECONDS
for bench in a b; do
	for ((r = 0; r < ROUNDS; r++)); do
		echo "== ($bench) round $((r + 1))/$ROUNDS" >&2
		run_round "$bench" "$r"
	done
done
echo "$prog: timing took $((SECONDS - start)) s" >&2

if [ -n "$json_dir" ]; then
	mkdir -p "$json_dir"
	cp "$tmp"/json/*.json "$json_dir"/
fi

PYTHONPATH=$here python3 - "$tmp/json" "$ROUNDS" "${out:-}" "$(dpkg-query -W -f '${Version}' containernetworking-plugins 2>/dev/null || echo '?')" "$(nproc)" <<'EOF'
import datetime, sys

import hyperfine_rounds  # tests/bench/hyperfine_rounds.py

jdir, rounds, out, cni_version, ncpu = sys.argv[1:6]
rounds = int(rounds)

def load(bench):
    return hyperfine_rounds.load(jdir, bench, rounds)

fmt = hyperfine_rounds.fmt

benches = [("a", "one pod, create + remove"), ("b", "one pod, create alone")]
rows, lines, setup = [], [], None
for b, title in benches:
    pooled, per_round = load(b)
    bi, cni = pooled["built-in"], pooled["cni"]
    rows.append((f"({b}) {title}, median wall", bi["median"], cni["median"]))
    rows.append((f"({b}) {title}, mean CPU (user+sys)", bi["cpu"], cni["cpu"]))
    spread = ", ".join(f"{r['built-in'] / r['cni']:.2f}" for r in per_round)
    lines.append(f"({b}) built-in/CNI median ratio per round: {spread} "
                 f"({len(bi['times'])} runs per command)")
    if b == "b":
        setup = bi["median"]

print()
w = max(len(r[0]) for r in rows)
print(f"{'benchmark':<{w}}  {'built-in':>10}  {'CNI':>10}  {'ratio':>5}")
for name, bi, cni in rows:
    print(f"{name:<{w}}  {fmt(bi):>10}  {fmt(cni):>10}  {bi / cni:>5.2f}")
print()
for l in lines:
    print(l)
a = rows[0]
print(f"goal: built-in/CNI at most 0.50 on (a): {a[1] / a[2]:.2f} "
      f"({'met' if a[1] / a[2] <= 0.5 else 'NOT met'})")
print(f"goal: one pod's setup (b) under 20 ms for the built-in mode: {fmt(setup)} "
      f"({'met' if setup < 0.020 else 'NOT met'})")

if out:
    md = ["| benchmark | built-in | CNI | ratio |", "|---|---|---|---|"]
    for name, bi, cni in rows:
        md.append(f"| {name} | {fmt(bi)} | {fmt(cni)} | {bi / cni:.2f} |")
    md.append("")
    md.append(f"Measured by `tests/bench/pod-network.sh` on {datetime.date.today()} "
              f"(containernetworking-plugins {cni_version}: bridge + host-local, {ncpu} CPUs), "
              f"in a network namespace of its own. Absolute times are illustrations; the ratio "
              f"is what counts.")
    with open(out, "w") as f:
        f.write("\n".join(md) + "\n")
    print(f"wrote {out}")
EOF
