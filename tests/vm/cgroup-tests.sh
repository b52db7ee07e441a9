#!/bin/bash
# Real cgroup v2 limits, run inside the test guest: tests/vm/run bash tests/vm/cgroup-tests.sh
# (meson's "vm" suite does that). Needs BERTH_RUNTIME and BERTH_FIXTURES. Prints one line per
# check and ends with "N passed, N failed"; exits non-zero when a check failed.
# Spawning a program costs ~50 ms in the emulated guest: checks are few commands each.
set -u
rt=${BERTH_RUNTIME:?} fixtures=${BERTH_FIXTURES:?}
state=/run/berth-vm-tests
cg=/sys/fs/cgroup/berth
work=$(mktemp -d /run/cgtests.XXXXXX) # the guest's own tmpfs
. "$(dirname "$0")/checks.sh"
R() { "$rt" --root "$state" "$@"; }

wait_status() { # ID STATUS
	for _ in $(seq 100); do
		R state "$1" 2>/dev/null | grep -q "\"status\": \"$2\"" && return 0
		sleep 0.1
	done
	return 1
}

gone() { [ ! -e "$cg/$1" ]; }

# --- memory: OOM kill ---
# the init itself fills tmpfs (charged to the cgroup): the OOM killer must pick it
b=$(bundle oom '{"memory":{"limit":33554432}}' /bin/dd if=/dev/zero of=/dev/shm/fill bs=1M count=60)
R create -b "$b" oom >/dev/null 2>&1 && R start oom
expect_eq "memory.max is the limit" "$(cat $cg/oom/memory.max)" 33554432
wait_status oom stopped || bad "oom: container stopped" "still $(R state oom | grep status)"
kills=$(awk '/^oom_kill /{print $2}' $cg/oom/memory.events 2>/dev/null)
if [ "${kills:-0}" -ge 1 ]; then ok "a 32 MiB container filling 60 MiB is OOM-killed"; else bad "oom kill" "memory.events: $(cat $cg/oom/memory.events 2>&1)"; fi
R delete oom && gone oom && ok "delete removes the OOM-killed container's cgroup" || bad "oom delete" "cgroup left"

# --- pids: a fork bomb held at 16 ---
# the init only sleeps; the fork loop comes through exec (a shell whose fork fails exits, and
# its children stay, reparented to the init)
b=$(bundle pids '{"pids":{"limit":16}}' /bin/sleep 100)
R run -d -b "$b" pids >/dev/null 2>&1
R exec pids /bin/sh -c 'i=0; while [ $i -lt 40 ]; do sleep 100 & i=$((i+1)); done' >/dev/null 2>&1
sleep 1
cur=$(cat $cg/pids/pids.current)
if [ "$cur" -le 16 ] && [ "$cur" -ge 10 ]; then ok "pids.max 16 holds a fork loop ($cur running)"; else bad "pids.max" "pids.current $cur"; fi
expect_eq "pids.events counts the refusals" "$(awk '/^max /{print ($2 > 0)}' $cg/pids/pids.events)" 1
R delete --force pids && gone pids && ok "delete --force after a fork bomb leaves no cgroup" || bad "pids delete" "$(ls $cg 2>&1)"

# --- cpu: 0.2 CPU keeps a busy loop near 20% ---
b=$(bundle cpu '{"cpu":{"quota":20000,"period":100000,"shares":1024}}' /bin/sh -c 'while :; do :; done')
R run -d -b "$b" cpu >/dev/null 2>&1
expect_eq "cpu.max from quota/period" "$(cat $cg/cpu/cpu.max)" "20000 100000"
expect_eq "cpu.weight from shares 1024 (runc's conversion)" "$(cat $cg/cpu/cpu.weight)" 39
u0=$(awk '/^usage_usec/{print $2}' $cg/cpu/cpu.stat)
sleep 3
u1=$(awk '/^usage_usec/{print $2}' $cg/cpu/cpu.stat)
used=$(((u1 - u0) / 1000)) # ms of CPU over ~3 s
if [ "$used" -gt 150 ] && [ "$used" -lt 1200 ]; then ok "a busy loop at cpu.max 0.2 used ${used} ms of 3 s"; else bad "cpu.max" "used ${used} ms of 3 s"; fi
throttled=$(awk '/^nr_throttled/{print $2}' $cg/cpu/cpu.stat)
[ "$throttled" -gt 0 ] && ok "cpu.stat counts throttling ($throttled)" || bad "throttling" "nr_throttled $throttled"
R delete --force cpu

# --- pause and resume ---
# The counter is rewritten in place (truncate, then write): a read can fall between the two and
# see nothing, so an empty read is tried again.
read_count() {
	n=0
	v=$(cat "$1")
	while [ -z "$v" ] && [ $n -lt 50 ]; do
		sleep 0.01
		v=$(cat "$1")
		n=$((n + 1))
	done
	echo "$v"
}
b=$(bundle pause '{}' /bin/sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done')
R run -d -b "$b" pause >/dev/null 2>&1
sleep 1
R pause pause
expect_eq "state says paused" "$(R state pause | grep -o '"status": "[a-z]*"')" '"status": "paused"'
c0=$(read_count "$b/rootfs/tmp/count")
sleep 1
expect_eq "a paused process does not advance" "$(read_count "$b/rootfs/tmp/count")" "$c0"
R resume pause
sleep 1
c2=$(read_count "$b/rootfs/tmp/count")
[ "$c2" -gt "$c0" ] && ok "resume continues it ($c0 -> $c2)" || bad "resume" "$c0 -> $c2"
R delete --force pause

# --- update, live ---
b=$(bundle upd '{"memory":{"limit":104857600}}' /bin/sleep 100)
R run -d -b "$b" upd >/dev/null 2>&1
R update --memory 50M upd
expect_eq "update --memory changes memory.max live" "$(cat $cg/upd/memory.max)" 52428800
R update --memory 64M --memory-swap 96M --pids-limit 7 upd
expect_eq "update --memory-swap sets swap beyond memory" "$(cat $cg/upd/memory.swap.max)" 33554432
expect_eq "update --pids-limit" "$(cat $cg/upd/pids.max)" 7
echo '{"unified":{"memory.high":"41943040"},"cpu":{"cpus":"0"}}' >"$work/res.json"
R update -r "$work/res.json" upd
expect_eq "update -r with unified" "$(cat $cg/upd/memory.high)" 41943040
expect_eq "update -r with cpuset" "$(cat $cg/upd/cpuset.cpus)" 0
err=$(R update --memory-swap 10M upd 2>&1)
case $err in *linux.resources.memory.swap*) ok "a swap limit without a memory limit is refused" ;; *) bad "swap refusal" "$err" ;; esac
R delete --force upd
gone upd && ok "delete leaves no cgroup" || bad "upd delete" "cgroup left"

# --- kill --all reaches the whole tree through cgroup.kill ---
b=$(bundle tree '{}' /bin/sh -c 'sh -c "sleep 100 & sleep 100" & sleep 100')
R run -d -b "$b" tree >/dev/null 2>&1
sleep 1
n=$(wc -l <$cg/tree/cgroup.procs)
R kill --all tree KILL
sleep 0.5
expect_eq "kill --all KILL ends all $n processes" "$(wc -l <$cg/tree/cgroup.procs)" 0
R delete tree && gone tree && ok "and delete removes the cgroup" || bad "tree delete" "left"

# --- events: stats, and an oom event when a process is OOM-killed ---
b=$(bundle ev '{"memory":{"limit":33554432},"pids":{"limit":50}}' /bin/sleep 100)
R run -d -b "$b" ev >/dev/null 2>&1
stats=$(R events --stats ev)
case $stats in *'"type":"stats"'*'"memory":{"usage":{"usage":'*'"limit":33554432}'*'"pids":{"current":1,"limit":50}'*)
	ok "events --stats reports memory and pids" ;;
*) bad "events --stats" "$stats" ;;
esac
R events --interval 60s ev >"$work/events" 2>&1 &
evpid=$!
sleep 1
R exec ev /bin/dd if=/dev/zero of=/dev/shm/fill bs=1M count=60 >/dev/null 2>&1
sleep 1
grep -q '{"type":"oom","id":"ev"}' "$work/events" && ok "events reports the OOM kill" || bad "oom event" "$(cat "$work/events")"
R delete --force ev
wait $evpid && ok "events ends when the container stops" || bad "events end" "status $?"

# --- the systemd cgroupsPath form lands where kubelet expects ---
b=$(bundle sysd '{"pids":{"limit":20}}' /bin/sleep 100)
sed -i 's|"linux": {|"linux": {"cgroupsPath": "kubepods-burstable-pod1234.slice:cri-berth:sysd", |' "$b/config.json"
R --systemd-cgroup run -d -b "$b" sysd >/dev/null 2>&1
scope=/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-berth-sysd.scope
expect_eq "slice:prefix:name becomes kubelet's scope path" "$(cat $scope/pids.max 2>&1)" 20
R delete --force sysd
[ ! -e $scope ] && ok "and delete removes the scope" || bad "sysd delete" "$scope left"

# --- devices: the eBPF device filter (deny all, then allow /dev/null) ---
# /dev/kmsg (c 1:11, made from linux.devices) is outside the rules; /dev/zero stays open as one of
# runc's default devices, which follow every rule list (runc and crun allow them alike).
nullonly='{"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}]}'
with_kmsg() { sed -i 's|"linux": {|"linux": {"devices": [{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}], |' "$1/config.json"; }
b=$(bundle dev "$nullonly" /bin/sh -c 'echo x >/dev/null && echo null-ok; head -c1 /dev/zero >/dev/null && echo zero-ok; (: </dev/kmsg) 2>/dev/null || echo kmsg-denied; exit 3')
with_kmsg "$b"
out=$(R run -b "$b" dev 2>&1)
rc=$?
expect_eq "devices: /dev/null and /dev/zero open, /dev/kmsg is denied, the status passes" "$(echo $out) $rc" "null-ok zero-ok kmsg-denied 3"
b=$(bundle devu "$nullonly" /bin/sleep 100)
with_kmsg "$b"
R run -d -b "$b" devu >/dev/null 2>&1
err=$(R exec devu /bin/sh -c ': </dev/kmsg' 2>&1)
case $err in *"Operation not permitted"*) ok "exec in the container meets the same filter" ;; *) bad "exec /dev/kmsg" "$err" ;; esac
echo '{"devices":[{"allow":false},{"allow":true,"type":"c","major":1,"access":"rw"}]}' >"$work/dev.json"
R update -r "$work/dev.json" devu
R exec devu /bin/sh -c ': </dev/kmsg' && ok "update replaces the device filter" || bad "update devices" "/dev/kmsg still denied"
R delete --force devu
b=$(bundle devbad '{"devices":[{"allow":true,"access":"x"}]}' /bin/true)
err=$(R run -b "$b" devbad 2>&1)
case $err in *'linux.resources.devices[0].access: "x" is not a subset of rwm'*) ok "a bad access is refused by its field" ;; *) bad "devices access" "$err" ;; esac

# --- bad input: a controller file that is not one ---
b=$(bundle badu '{"unified":{"../cgroup.procs":"1"}}' /bin/true)
err=$(R run -b "$b" badu 2>&1)
case $err in *linux.resources.unified*) ok "unified refuses a path" ;; *) bad "unified path" "$err" ;; esac
gone badu && ok "and leaves no cgroup" || bad "badu" "cgroup left"

left=$(R list -q)
[ -z "$left" ] && ok "no container is left" || bad "leftovers" "$left"
rm -rf "$work"
summary
