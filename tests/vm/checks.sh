# Helpers for the scripts the qemu guest runs (tests/vm/*-tests.sh), sourced after they set
# $work (a scratch directory) and $fixtures (tests/fixtures): one line per check, counted.
passed=0 failed=0

ok() { echo "ok - $1"; passed=$((passed + 1)); }
bad() { echo "not ok - $1: $2"; failed=$((failed + 1)); }
expect_eq() { # NAME GOT WANT
	if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "got '$2', want '$3'"; fi
}

# bundle NAME RESOURCES-JSON ARGS...: a bundle in $work whose process runs ARGS with
# linux.resources; prints its path
bundle() {
	local dir=$work/$1 res=$2
	shift 2
	"$fixtures/make-bundle.sh" "$dir" >/dev/null
	python3 - "$dir/config.json" "$res" "$@" <<'PY'
import json, sys
path, res, args = sys.argv[1], sys.argv[2], sys.argv[3:]
c = json.load(open(path))
c["linux"]["resources"] = json.loads(res)
c["process"]["args"] = args
json.dump(c, open(path, "w"))
PY
	echo "$dir"
}

# The closing line and the exit status: non-zero when a check failed.
summary() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
