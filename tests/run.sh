#!/bin/sh
# The whole test suite on a fresh Debian 12 machine as root: installs what it needs, builds
# twice (warnings as errors; then with ASan+UBSan) and runs the unit and root suites in each,
# then fuzzes the config parser in a clang build. The vm suite (real cgroup v2 limits) boots a
# qemu guest: the first run fetches Debian's kernel package into /var/cache/berth-vm.
# Ends with one line "berth tests: N passed, N failed, N skipped". Exit status 0 only when
# everything passed.
set -eu
cd "$(dirname "$0")/.."
tools/deps.sh test

setup() { # DIR [meson options...]
	dir=$1
	shift
	if [ -d "$dir" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
	ninja -C "$dir"
}

rc=0
setup build-ci --werror -Dbuildtype=debugoptimized
meson test -C build-ci --no-rebuild --print-errorlogs --suite unit --suite root --suite vm || rc=1

# Sanitizers: UB is fatal, leaks are reported by LeakSanitizer at exit.
setup build-asan --werror -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false \
	-Dc_args=-fno-sanitize-recover=all
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	meson test -C build-asan --no-rebuild --print-errorlogs --suite unit --suite root || rc=1

# libFuzzer: the config parser for a bounded time (FUZZ_SECONDS, default 30) with clang-14
CC=clang-14 setup build-fuzz --werror -Dbuildtype=debugoptimized -Dfuzzing=true \
	-Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link
meson test -C build-fuzz --no-rebuild --print-errorlogs --suite fuzz || rc=1

/usr/bin/python3 tests/summary.py build-ci build-asan build-fuzz || rc=1
exit $rc
