#!/bin/bash
# engine-tests.sh: berth-runtime as the low-level runtime of real engines, as root: containerd
# (ctr run --runc-binary, with the daemon's own root, state, socket and config) and podman
# (--runtime, --root/--runroot under a temp dir, --network none), each running a container of
# the small test image (tests/fixtures/make-image.py, imported from an OCI layout: nothing is
# pulled). Both engines send linux.resources.devices (deny all, then allow the default devices),
# which berth-runtime applies as a cgroup v2 eBPF device filter.
#
# Checks: `echo hi` prints hi and exits 0; `exit 7` passes 7 back; /dev/null opens and a device
# outside the engine's list (/dev/mem, c 1:1, made in the container with mknod) does not.
#
# Everything runs in a private mount and network namespace made here (the engines get loopback
# only; their state dirs, /run and /var/lib are tmpfs), so nothing is left on the machine; the
# containers' cgroups, under berth-engines-<pid> in the cgroup2 hierarchy, are removed at the end.
# The root suite runs it on the host, the vm suite in the cgroup v2 guest (tests/vm/run).
# One line per check ("ok -", "not ok -", "skip -" with the reason), then the counts; exits 0
# when nothing failed (77, meson's skip, when an engine is missing and nothing ran).
# Environment: BERTH_RUNTIME (build/tools/berth-runtime), BERTH_FIXTURES (tests/fixtures).
set -u
here=$(cd "$(dirname "$0")" && pwd)
rt=$(realpath "${BERTH_RUNTIME:-$here/../../build/tools/berth-runtime}")
fixtures=${BERTH_FIXTURES:-$here/../fixtures}
passed=0 failed=0 skipped=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
bad() { echo "not ok - $1: $2"; failed=$((failed + 1)); }
skip() { echo "skip - $1: $2"; skipped=$((skipped + 1)); }
expect_eq() { # NAME GOT WANT
	if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "got '$2', want '$3'"; fi
}

if [ -z "${BERTH_ENGINES_INNER:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "skip - engines: needs root"; exit 77; }
	[ -x "$rt" ] || { echo "not ok - $rt: not built"; exit 1; }
	tmp=$(mktemp -d /tmp/berth-engines.XXXXXX)
	cg=berth-engines-$$
	rc=0
	BERTH_ENGINES_INNER=$tmp BERTH_ENGINES_CGROUP=$cg BERTH_RUNTIME=$rt BERTH_FIXTURES=$fixtures \
		unshare --net --mount --propagation private -- "$BASH" "$0" || rc=$?
	# the containers' cgroups, in every hierarchy an engine may have used
	for d in /sys/fs/cgroup/"$cg" /sys/fs/cgroup/*/"$cg"; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	rm -rf "$tmp"
	exit "$rc"
fi

# ---- inside: our own network namespace (checked) and private mounts ----
tmp=$BERTH_ENGINES_INNER cg=$BERTH_ENGINES_CGROUP
[ "$(readlink /proc/self/ns/net)" != "$(readlink /proc/1/ns/net)" ] ||
	{ echo "not ok - not in a network namespace of our own"; exit 1; }
ip link set lo up
mount -t tmpfs -o mode=0700,size=512m berth-engines "$tmp"
mount -t tmpfs -o mode=0755,size=64m berth-engines-run /run
mount -t tmpfs -o mode=0755,size=64m berth-engines-varlib /var/lib
mkdir -p "$tmp/bin" "$tmp/image"
cp "$rt" "$tmp/bin/berth-runtime" # the build tree may be rebuilt while this runs
rt=$tmp/bin/berth-runtime

# The image, as an OCI layout and as its tar; containerd's importer names it by its annotation.
/usr/bin/python3 "$fixtures/make-image.py" build "$tmp/image/layout" small --ref docker.io/test/small:v1 >/dev/null
/usr/bin/python3 - "$tmp/image/layout/index.json" <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    index = json.load(f)
for m in index["manifests"]:
    m["annotations"]["io.containerd.image.name"] = m["annotations"]["org.opencontainers.image.ref.name"]
with open(sys.argv[1], "w") as f:
    json.dump(index, f)
PY
tar -C "$tmp/image/layout" -cf "$tmp/image/image.tar" .
image=docker.io/test/small:v1

# A hybrid host (cgroup v1 controllers, a cgroup2 mount without them) cannot take the engines'
# cpu limits in cgroup v2, where berth puts every container: containerd and podman always send
# linux.resources.cpu (shares 1024; podman also a pids limit), and berth-runtime refuses a limit
# it cannot apply unless the operator says --allow-missing-controllers. Here the engines get a
# berth-runtime that says so (checked first: without it, the refusal names the field), and the
# device rules, which need no controller, are applied all the same.
engine_rt=$rt
cgroot=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
if ! grep -qw cpu "$cgroot/cgroup.controllers" 2>/dev/null; then
	hybrid="the cgroup2 hierarchy at $cgroot has no cpu controller (cgroup v1 keeps it: a hybrid host)"
	printf '#!/bin/sh\nexec %s --allow-missing-controllers "$@"\n' "$rt" >"$tmp/bin/berth-runtime-allow"
	chmod +x "$tmp/bin/berth-runtime-allow"
	engine_rt=$tmp/bin/berth-runtime-allow
	echo "# $hybrid: the engines run berth-runtime --allow-missing-controllers"
fi

# In the container: /dev/null opens; /dev/mem (c 1:1, outside the engine's list) can be made
# (runc's defaults, which berth-runtime adds as runc does, allow mknod of any device) but not
# opened.
probe='echo x >/dev/null && echo null-ok; if mknod /tmp/mem c 1 1 2>/dev/null; then head -c1 /tmp/mem >/dev/null 2>&1 && echo mem-opened || echo open-denied; else echo mknod-denied; fi'

# ---- containerd ----
containerd_tests() {
	local d=$tmp/containerd pid
	mkdir -p "$d/root" "$d/state"
	cat >"$d/config.toml" <<TOML
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp",
                    "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
TOML
	containerd --config "$d/config.toml" >"$d/log" 2>&1 &
	pid=$!
	C() { ctr --address "$d/containerd.sock" "$@"; }
	for _ in $(seq 100); do C version >/dev/null 2>&1 && break; sleep 0.1; done
	if ! C version >/dev/null 2>&1; then
		bad "containerd starts" "$(tail -5 "$d/log")"
	elif ! C images import "$tmp/image/image.tar" >"$d/import.log" 2>&1; then
		bad "ctr images import" "$(cat "$d/import.log")"
	else
		local out rc
		if [ -n "${hybrid:-}" ]; then
			out=$(C run --rm --runc-binary "$rt" --cgroup "/$cg/ctr-v1" "$image" v1 sh -c 'echo hi' 2>&1)
			case $out in
			*"linux.resources.cpu: cpu controller not enabled"*)
				skip "ctr run with plain berth-runtime" "$hybrid; berth-runtime refuses containerd's cpu shares by name" ;;
			*) bad "ctr run on a hybrid host" "$out" ;;
			esac
		fi
		out=$(C run --rm --runc-binary "$engine_rt" --cgroup "/$cg/ctr-hi" "$image" hi sh -c 'echo hi' 2>"$d/err")
		rc=$?
		expect_eq "ctr run --runc-binary berth-runtime: echo hi" "$out $rc" "hi 0"
		[ "$rc" = 0 ] || cat "$d/err"
		out=$(C run --rm --runc-binary "$engine_rt" --cgroup "/$cg/ctr-exit" "$image" exit7 sh -c 'exit 7' 2>"$d/err")
		rc=$?
		expect_eq "ctr run: the exit code passes through" "$out$rc" "7"
		out=$(C run --rm --runc-binary "$engine_rt" --cgroup "/$cg/ctr-dev" "$image" dev sh -c "$probe" 2>"$d/err")
		expect_eq "ctr run: containerd's device rules hold" "$(echo $out)" "null-ok open-denied"
	fi
	kill -TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

# ---- podman ----
podman_tests() {
	local d=$tmp/podman out rc
	mkdir -p "$d/root" "$d/runroot" "$d/tmp"
	P() {
		podman --root "$d/root" --runroot "$d/runroot" --tmpdir "$d/tmp" --runtime "$engine_rt" \
			--cgroup-manager cgroupfs --events-backend file --storage-driver overlay "$@"
	}
	if ! P load -q -i "$tmp/image/image.tar" >"$d/load.log" 2>&1; then
		bad "podman load of the OCI layout" "$(cat "$d/load.log")"
		return
	fi
	# stdout only: on a hybrid host berth-runtime's warnings about the limits it could not apply
	# reach stderr
	out=$(P run --rm --network none --cgroup-parent "/$cg" "$image" sh -c 'echo hi' 2>"$d/err")
	rc=$?
	expect_eq "podman --runtime berth-runtime run: echo hi" "$out $rc" "hi 0"
	[ "$rc" = 0 ] || cat "$d/err"
	out=$(P run --rm --network none --cgroup-parent "/$cg" "$image" sh -c 'exit 7' 2>"$d/err")
	rc=$?
	expect_eq "podman run: the exit code passes through" "$out$rc" "7"
	out=$(P run --rm --network none --cap-add MKNOD --cgroup-parent "/$cg" "$image" sh -c "$probe" 2>"$d/err")
	expect_eq "podman run: podman's device rules hold" "$(echo $out)" "null-ok open-denied"
}

if command -v containerd >/dev/null && command -v ctr >/dev/null; then
	containerd_tests
else
	skip "containerd" "not installed (tools/deps.sh test installs it)"
fi
if command -v podman >/dev/null; then
	podman_tests
else
	skip "podman" "not installed (tools/deps.sh test installs it)"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] || exit 1
[ "$passed" -gt 0 ] || exit 77
