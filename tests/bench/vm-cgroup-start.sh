#!/bin/bash
# vm-cgroup-start.sh [--runs N]: issue 4's speed check. In the qemu guest (real cgroup v2), the
# foundation benchmark (run /bin/true, removed on exit) with a cgroupsPath and a memory limit,
# berth-runtime against crun, side by side with hyperfine. Prints the medians and the ratio.
# Not part of the pass/fail run. Needs a build (ninja -C build), crun and hyperfine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
runs=20
[ "${1:-}" = --runs ] && runs=$2

if [ -z "${BERTH_BENCH_IN_VM:-}" ]; then
	command -v hyperfine >/dev/null && command -v crun >/dev/null ||
		apt-get install -y -q hyperfine crun >/dev/null
	export BERTH_BENCH_IN_VM=1 BERTH_RUNTIME=${BERTH_RUNTIME:-$repo/build/tools/berth-runtime}
	BERTH_VM_ENV="BERTH_BENCH_IN_VM BERTH_RUNTIME" exec "$repo/tests/vm/run" bash "$0" --runs "$runs"
fi

# in the guest: /run is its own tmpfs
work=$(mktemp -d /run/bench.XXXXXX)
for rt in berth crun; do
	"$repo/tests/fixtures/make-bundle.sh" "$work/$rt" >/dev/null
	python3 - "$work/$rt/config.json" "$rt" <<'PY'
import json, sys
path, name = sys.argv[1], sys.argv[2]
c = json.load(open(path))
c["process"]["args"] = ["/bin/true"]
c["linux"]["cgroupsPath"] = "/bench-" + name
c["linux"]["resources"] = {"memory": {"limit": 67108864}}
json.dump(c, open(path, "w"))
PY
done
berth="$BERTH_RUNTIME --root $work/state-berth run -b $work/berth b"
crun="crun --root $work/state-crun run -b $work/crun c"
$berth && $crun # both really run it
hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/h.json" -n berth-runtime "$berth" -n crun "$crun" >&2
python3 - "$work/h.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
b, c = r["berth-runtime"]["median"], r["crun"]["median"]
print(f"| run /bin/true with cgroupsPath and memory.max, in the guest (median) | {b*1000:.1f} ms | {c*1000:.1f} ms | {b/c:.2f} |")
PY
rm -rf "$work"
