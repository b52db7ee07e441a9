#!/bin/bash
# berth-shim's exit records under real cgroup v2 limits, run inside the test guest:
# tests/vm/run bash tests/vm/shim-tests.sh (meson's "vm" suite does that). Needs BERTH_SHIM,
# BERTH_SHIMCTL and BERTH_FIXTURES. Prints one line per check and ends with "N passed, N failed";
# exits non-zero when a check failed. Spawning a program costs ~50 ms in the emulated guest:
# checks are few commands each.
set -u
ctl=${BERTH_SHIMCTL:?} fixtures=${BERTH_FIXTURES:?}
export BERTH_SHIM=${BERTH_SHIM:?}
work=$(mktemp -d /run/shimtests.XXXXXX) # the guest's own tmpfs
root=$work/runtime
cg=/sys/fs/cgroup/berth
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

# fields JSON: exit_code, signal and oom_killed of a status or exit record, on one line
fields() {
	python3 -c 'import json, sys; j = json.loads(sys.argv[1])
print(j["exit_code"], j["signal"], str(j["oom_killed"]).lower())' "$1"
}

# run NAME BUNDLE: spawn a shim, start its container, print the status once it exited
run() {
	"$ctl" spawn --dir "$work/shims/$1" --id "$1" --bundle "$2" --runtime-root "$root" \
		--log "$work/logs/$1.log" >/dev/null &&
		"$ctl" start "$work/shims/$1" &&
		"$ctl" wait "$work/shims/$1" --timeout 300000
}

# end NAME: shutdown and removal leave no cgroup, state or directory
end() {
	local d=$work/shims/$1
	"$ctl" shutdown "$d" && "$ctl" remove "$d" "$root" "$1" && [ ! -e "$cg/$1" ] &&
		[ ! -e "$root/$1" ] && [ ! -e "$d" ] && ok "$1: shutdown and remove leave nothing" ||
		bad "$1: cleanup" "$(ls "$cg" "$root" "$work/shims" 2>&1 | tr '\n' ' ')"
}

limit='{"memory":{"limit":33554432,"swap":33554432}}'

# --- an OOM kill: the init fills tmpfs (charged to the cgroup) past its 32 MiB ---
b=$(bundle oom "$limit" /bin/dd if=/dev/zero of=/dev/shm/fill bs=1M count=200)
if st=$(run oom "$b"); then
	expect_eq "a 32 MiB container writing 200 MiB: exit_code signal oom_killed" "$(fields "$st")" "137 9 true"
	expect_eq "the exit record says the same" "$(fields "$(cat "$work/shims/oom/exit.json")")" "137 9 true"
	kills=$(awk '/^oom_kill /{print $2}' "$cg/oom/memory.events" 2>/dev/null)
	[ "${kills:-0}" -ge 1 ] && ok "memory.events counted the kill" || bad "memory.events" "${kills:-none}"
else
	bad "oom container" "$st"
fi
end oom

# --- a normal exit under the same limit is not an OOM kill ---
b=$(bundle fine "$limit" /bin/sh -c 'head -c 8m /dev/zero | tail -c 1 >/dev/null; exit 4')
if st=$(run fine "$b"); then
	expect_eq "a container within its limit: exit_code signal oom_killed" "$(fields "$st")" "4 0 false"
	expect_eq "its exit record" "$(fields "$(cat "$work/shims/fine/exit.json")")" "4 0 false"
else
	bad "normal container" "$st"
fi
end fine

# --- update, then killed by a signal (not by the OOM killer) ---
b=$(bundle killed "$limit" /bin/sleep 1000)
d=$work/shims/killed
"$ctl" spawn --dir "$d" --id killed --bundle "$b" --runtime-root "$root" >/dev/null &&
	"$ctl" start "$d" &&
	"$ctl" update "$d" '{"memory":{"limit":67108864,"swap":67108864}}'
expect_eq "update through the shim sets memory.max" "$(cat "$cg/killed/memory.max" 2>&1)" 67108864
"$ctl" kill "$d" KILL
st=$("$ctl" wait "$d" --timeout 300000)
expect_eq "SIGKILL from outside: exit_code signal oom_killed" "$(fields "$st")" "137 9 false"
end killed

left=$(pgrep -f "berth-shim --dir $work" || true)
[ -z "$left" ] && ok "no shim is left" || bad "leftovers" "shims $left"
rm -rf "$work"
summary
