#!/bin/sh
# berth's main job on a built-in default, on a fresh Debian 12 machine as root: install the
# dependencies, build, then start berthd and let its kubelet loop run a demo pod from a Kubernetes
# manifest, with an image built here (busybox, tests/fixtures/make-image.py); show `berth pod ls`
# and the pod's logs, and take it all down again.
#
# berthd runs in a network and mount namespace of its own (its bridge, NAT rules and mounts never
# reach the machine's), with its root, state and socket in a temporary directory; everything is
# removed at the end.
set -eu
cd "$(dirname "$0")/.."
repo=$(pwd)

if [ -z "${BERTH_DEMO_INNER:-}" ]; then
	tools/deps.sh build
	[ -d build ] || meson setup build --buildtype=release >/dev/null
	ninja -C build >/dev/null
	work=$(mktemp -d /tmp/berth-demo.XXXXXX)
	trap 'rm -rf "$work"' EXIT
	BERTH_DEMO_INNER=$work unshare --net --mount --propagation private -- sh "$0"
	exit
fi

work=$BERTH_DEMO_INNER
berth="$repo/build/tools/berth"
sock="$work/berth.sock"
cg="berth-demo-$$"
ip link set lo up

# the image: busybox in two layers, as an OCI archive imported into berthd's store
python3 tests/fixtures/make-image.py build --ref demo/hello:v1 "$work/layout" small >/dev/null
tar -C "$work/layout" -cf "$work/image.tar" .
"$berth" --root "$work/root" image import "$work/image.tar" >/dev/null

mkdir -p "$work/manifests"
cat >"$work/berthd.conf" <<EOF
root = $work/root
state = $work/state
socket = $sock
log_dir = $work/logs
manifest_dir = $work/manifests
manifest_check_interval = 2s
cgroup_parent = $cg
shim_path = $repo/build/tools/berth-shim
berth_path = $berth
EOF
cat >"$work/manifests/hello.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: hello
  labels: {app: demo}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: hello
    image: demo/hello:v1
    imagePullPolicy: Never
    command: ["/bin/sh", "-c"]
    args:
    - |
      trap 'echo bye; exit 0' TERM
      echo "hello from a berth pod: hostname $(/bin/busybox hostname), $(/bin/busybox id)"
      i=0; while :; do i=$((i + 1)); echo "tick $i"; /bin/busybox sleep 1; done
    readinessProbe:
      exec: {command: ["/bin/busybox", "true"]}
      periodSeconds: 1
EOF

"$repo/build/cri/berthd" --config "$work/berthd.conf" >"$work/berthd.log" 2>&1 &
bd=$!
stop_berthd() {
	# the pod goes with its manifest; then berthd, which leaves nothing else running
	rm -f "$work/manifests/hello.yaml"
	i=0
	while [ $i -lt 100 ] && "$berth" --socket "$sock" pod ls -q 2>/dev/null | grep -q .; do
		sleep 0.2
		i=$((i + 1))
	done
	kill "$bd" 2>/dev/null || true
	wait "$bd" 2>/dev/null || true
	# the pods' cgroups went with them; their parent is the demo's own
	cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
	[ -z "$cg2" ] || rmdir "$cg2/$cg" 2>/dev/null || true
}
trap stop_berthd EXIT

i=0
until "$berth" --socket "$sock" pod ls 2>/dev/null | grep -q " Running .* 1/1 "; do
	i=$((i + 1))
	if [ $i -gt 300 ] || ! kill -0 "$bd" 2>/dev/null; then
		echo "demo: the pod did not become ready; berthd's log:" >&2
		tail -n 20 "$work/berthd.log" >&2
		exit 1
	fi
	sleep 0.2
done
sleep 3
echo "\$ berth pod ls"
"$berth" --socket "$sock" pod ls
echo
echo "\$ berth pod logs hello"
"$berth" --socket "$sock" pod logs hello
