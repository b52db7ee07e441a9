#!/bin/sh
# Installs berth's dependencies from Debian 12's packages (as root).
#   tools/deps.sh build   what building and running berth needs
#   tools/deps.sh test    that, plus what the test suite and the benchmarks need
set -eu
what=${1:-build}
build="meson ninja-build pkg-config gcc libc6-dev libyajl-dev libcap-dev libseccomp-dev libcmocka-dev
       libcurl4-openssl-dev libarchive-dev libssl-dev libnl-3-dev libnl-route-3-dev libnftables-dev
       libuv1-dev libsqlite3-dev libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler libyaml-dev
       busybox-static python3 util-linux"
test="$build python3-pytest crun hyperfine man-db groff-base clang-14 libclang-rt-14-dev
      qemu-system-x86 cpio xz-utils docker-registry skopeo umoci apache2-utils containerd podman zstd pigz
      python3-zstandard attr containernetworking-plugins iptables iproute2 nftables openssl conmon
      bash-completion python3-grpcio python3-protobuf protobuf-compiler python3-h2 python3-websocket"
case $what in
build) pkgs=$build ;;
test) pkgs=$test ;;
*) echo "usage: $0 build|test" >&2; exit 2 ;;
esac
missing=$(for p in $pkgs; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"; done)
if [ -n "$missing" ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
fi
