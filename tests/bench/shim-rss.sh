#!/bin/bash
# shim-rss.sh [--count N] [--out FILE]: issue 7's memory goal, berth-shim against conmon.
#
# N containers (default 10) each run `sleep` under berth-shim (spawned through shimctl, the
# client API's test driver) and N more under conmon (Debian's, driving crun), all at the same
# time on the same busybox bundle. Once every container runs, each shim's VmRSS
# (/proc/PID/status) and Pss (/proc/PID/smaps_rollup: shared pages divided among their users)
# are read; the medians per shim and the ratio berth-shim / conmon are printed (and written as
# a markdown table to FILE). Not part of the pass/fail test run.
#
# Both run without cgroups, like for like: crun 1.8 refuses this hybrid cgroup host, so the
# benchmark runs in a private mount namespace where the cgroup2 mount is hidden (berth then
# finds no cgroup v2 and runs its containers without one) and crun gets
# --cgroup-manager=disabled. State, bundle and logs are on a tmpfs of that namespace.
# Needs root; installs conmon, crun and busybox-static if missing. Environment: BERTH_SHIM,
# BERTH_SHIMCTL (default build/tools/berth-shim, build/tests/shimctl).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
usage() {
	echo "usage: $prog [--count N] [--out FILE]" >&2
	exit 2
}

count=10 out=''
while [ $# -gt 0 ]; do
	case $1 in
	--count) [ $# -ge 2 ] || usage; count=$2; shift 2 ;;
	--out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) usage ;;
	esac
done
[[ $count =~ ^[1-9][0-9]*$ ]] || usage

# ---------------------------------------------------------------------------------------------
# Outside: checks, packages; then the same script again in a private mount namespace.
if [ -z "${BERTH_BENCH_INNER:-}" ]; then
	[ "$(id -u)" = 0 ] || die "needs root (containers, mount namespaces)"
	shim=$(realpath "${BERTH_SHIM:-$repo/build/tools/berth-shim}")
	shimctl=$(realpath "${BERTH_SHIMCTL:-$repo/build/tests/shimctl}")
	[ -x "$shim" ] && [ -x "$shimctl" ] || die "build berth-shim and shimctl first (ninja -C build)"
	missing=()
	command -v conmon >/dev/null || missing+=(conmon)
	command -v crun >/dev/null || missing+=(crun)
	[ -x /bin/busybox ] || missing+=(busybox-static)
	if [ ${#missing[@]} -gt 0 ]; then
		echo "$prog: installing ${missing[*]}" >&2
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
	[ -z "$out" ] || out=$(realpath -m "$out")
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-shim-rss.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	rc=0
	BERTH_BENCH_INNER=$tmp BERTH_SHIM=$shim BERTH_SHIMCTL=$shimctl \
		unshare --mount --propagation private -- "$BASH" "$here/$prog" --count "$count" \
		${out:+--out "$out"} || rc=$?
	exit "$rc"
fi

# ---------------------------------------------------------------------------------------------
# Inside the private mount namespace.
tmp=$BERTH_BENCH_INNER
if mountpoint -q /sys/fs/cgroup/unified; then # a hybrid host: hide its cgroup2 (here only)
	umount /sys/fs/cgroup/unified
	mount -t tmpfs -o mode=0755,size=1m berth-bench-unified /sys/fs/cgroup/unified
fi
mount -t tmpfs -o mode=0700,size=256m berth-shim-rss "$tmp"

# The build tree is shared and rebuilt while others work: measure copies taken now (berth-shim
# is static; shimctl only links system libraries besides libberth's static archive).
mkdir -p "$tmp/bin" "$tmp/logs" "$tmp/shims" "$tmp/conmon" "$tmp/exits" "$tmp/sockets"
cp "$BERTH_SHIM" "$tmp/bin/berth-shim"
cp "$BERTH_SHIMCTL" "$tmp/bin/shimctl"
export BERTH_SHIM=$tmp/bin/berth-shim
shimctl=$tmp/bin/shimctl
berth_root=$tmp/state-berth crun_root=$tmp/state-crun
bundle=$tmp/bundle
crun_=(crun --root "$crun_root" --cgroup-manager=disabled)

alive() { # PID: a live process, not a zombie
	[ -n "$1" ] && [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

berth_ids=() conmon_ids=() berth_pids=() conmon_pids=()
cleanup() {
	local id pid
	set +e
	for id in "${berth_ids[@]}"; do
		"$shimctl" remove "$tmp/shims/$id" "$berth_root" "$id" ||
			echo "$prog: could not remove berth container $id" >&2
	done
	for id in "${conmon_ids[@]}"; do
		"${crun_[@]}" kill "$id" KILL >/dev/null 2>&1
		"${crun_[@]}" delete -f "$id" >/dev/null 2>&1
		pid=$(cat "$tmp/conmon/$id.pid" 2>/dev/null)
		# conmon leaves once its container is gone
		for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
		alive "$pid" && kill -KILL "$pid"
	done
	left=$("${crun_[@]}" list -q 2>/dev/null)
	[ -z "$left" ] || echo "$prog: crun containers left: $left" >&2
	for pid in "${berth_pids[@]}" "${conmon_pids[@]}"; do
		alive "$pid" && echo "$prog: shim $pid is still there" >&2
	done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$repo/tests/fixtures/make-bundle.sh" "$bundle" >/dev/null
python3 - "$bundle/config.json" <<'EOF'
import json, sys
path = sys.argv[1]
c = json.load(open(path))
c["process"]["args"] = ["/bin/sleep", "100000"]
json.dump(c, open(path, "w"), indent=1)
EOF

# start_berth ID, start_conmon ID: a running container under each; the shim's pid is appended
# to berth_pids / conmon_pids (no command substitution: the id lists are the cleanup's)
start_berth() {
	local id=$1 st
	berth_ids+=("$id")
	st=$("$shimctl" spawn --dir "$tmp/shims/$id" --id "$id" --bundle "$bundle" \
		--runtime-root "$berth_root" --log "$tmp/logs/$id.log") || die "berth-shim spawn $id failed"
	"$shimctl" start "$tmp/shims/$id" || die "berth-shim start $id failed"
	berth_pids+=("$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["shim_pid"])' "$st")")
}

start_conmon() {
	local id=$1
	conmon_ids+=("$id")
	conmon --api-version 1 -c "$id" -u "$id" -n "$id" -r /usr/bin/crun -b "$bundle" \
		-p "$tmp/conmon/$id.ctr-pid" -P "$tmp/conmon/$id.pid" --exit-dir "$tmp/exits" \
		--socket-dir-path "$tmp/sockets" -l "k8s-file:$tmp/logs/$id.conmon.log" \
		--runtime-arg "--root=$crun_root" --runtime-arg --cgroup-manager=disabled \
		>"$tmp/conmon/$id.out" 2>&1 || { cat "$tmp/conmon/$id.out" >&2; die "conmon $id failed"; }
	# conmon's parent returns before crun's create is done: its pid file says it is
	for _ in $(seq 100); do [ -s "$tmp/conmon/$id.ctr-pid" ] && break; sleep 0.05; done
	[ -s "$tmp/conmon/$id.ctr-pid" ] || die "conmon $id: the container was not created"
	"${crun_[@]}" start "$id" || die "crun start $id failed"
	conmon_pids+=("$(cat "$tmp/conmon/$id.pid")")
}

# wait_running ID berth|conmon: the container really runs (shimctl status, crun state)
wait_running() {
	local id=$1 kind=$2
	for _ in $(seq 100); do
		if [ "$kind" = berth ]; then
			"$shimctl" status "$tmp/shims/$id" | grep -q '"state":"running"' && return 0
		else
			"${crun_[@]}" state "$id" 2>/dev/null | grep -q '"status": "running"' && return 0
		fi
		sleep 0.1
	done
	die "$kind container $id is not running"
}

for ((i = 0; i < count; i++)); do # alternate, so that both see the same machine
	start_berth "b$i"
	start_conmon "c$i"
done
for ((i = 0; i < count; i++)); do
	wait_running "b$i" berth
	wait_running "c$i" conmon
done
sleep 1 # settle: both have served their start-up
echo "$prog: $count containers under each shim are running sleep" >&2

measure() { # PID...: "rss pss" lines in KiB
	local pid
	for pid in "$@"; do
		echo "$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status") $(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup")"
	done
}
measure "${berth_pids[@]}" >"$tmp/berth.kib"
measure "${conmon_pids[@]}" >"$tmp/conmon.kib"

python3 - "$tmp/berth.kib" "$tmp/conmon.kib" "$count" "${out:-}" "$(conmon --version | head -1)" \
	"$(crun --version | head -1)" "$(nproc)" <<'EOF'
import datetime, statistics, sys
berth_f, conmon_f, count, out, conmon_v, crun_v, ncpu = sys.argv[1:8]

def load(path):
    rows = [tuple(map(int, line.split())) for line in open(path) if line.strip()]
    return statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows), rows

b_rss, b_pss, brows = load(berth_f)
c_rss, c_pss, crows = load(conmon_f)
print()
print(f"{'per shim (median of ' + count + ')':<28} {'berth-shim':>11} {'conmon':>11} {'ratio':>6}")
print(f"{'VmRSS':<28} {b_rss:>7.0f} KiB {c_rss:>7.0f} KiB {b_rss / c_rss:>6.2f}")
print(f"{'Pss (smaps_rollup)':<28} {b_pss:>7.0f} KiB {c_pss:>7.0f} KiB {b_pss / c_pss:>6.2f}")
print(f"berth-shim VmRSS range {min(r[0] for r in brows)}-{max(r[0] for r in brows)} KiB, "
      f"conmon {min(r[0] for r in crows)}-{max(r[0] for r in crows)} KiB")
print("ratio = berth-shim / conmon; goal (issue 7): at most 1.00")
if out:
    md = ["| per shim, median of %s | berth-shim | conmon | ratio |" % count, "|---|---|---|---|",
          f"| VmRSS | {b_rss:.0f} KiB | {c_rss:.0f} KiB | {b_rss / c_rss:.2f} |",
          f"| Pss | {b_pss:.0f} KiB | {c_pss:.0f} KiB | {b_pss / c_pss:.2f} |", "",
          f"Measured by `tests/bench/shim-rss.sh` on {datetime.date.today()} ({conmon_v} with "
          f"{crun_v}, {ncpu} CPUs, both without cgroups), {count} containers running sleep under each."]
    open(out, "w").write("\n".join(md) + "\n")
    print(f"wrote {out}")
EOF
