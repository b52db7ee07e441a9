#!/bin/bash
# tests/example/test-install.sh: `meson install --destdir` of this build puts everything in its
# standard place, and a program of the library's users builds against the installed libberth
# with `pkg-config --cflags --libs libberth` alone and runs a container through it.
#
# The environment (tests/meson.build sets it): BUILD_DIR, MESON, CC, SANITIZE (b_sanitize),
# PREFIX and the meson directory options BINDIR SBINDIR LIBDIR LIBEXECDIR INCLUDEDIR DATADIR
# MANDIR SYSCONFDIR, UNITDIR (berthd.service's directory), EXAMPLE (sandbox-example.c), FIXTURES.
# Needs root: the example runs a container.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root (the example runs a container)"
	exit 77
fi
tmp=$(mktemp -d /tmp/berth-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest
failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# A directory option as an absolute path (meson keeps those under the prefix relative).
dir() {
	case $1 in
	/*) echo "$1" ;;
	*) echo "$PREFIX/$1" ;;
	esac
}
# shellcheck disable=SC2153 # the upper-case names come from the environment
{
	bindir=$(dir "$BINDIR") sbindir=$(dir "$SBINDIR") libdir=$(dir "$LIBDIR")
	libexecdir=$(dir "$LIBEXECDIR") includedir=$(dir "$INCLUDEDIR") datadir=$(dir "$DATADIR")
	mandir=$(dir "$MANDIR") sysconfdir=$(dir "$SYSCONFDIR")
}

# ---- install ----
if ! "$MESON" install -C "$BUILD_DIR" --no-rebuild --destdir "$dest" >"$tmp/install.log" 2>&1; then
	cat "$tmp/install.log"
	echo "FAIL: meson install --destdir"
	exit 1
fi

# ---- the layout ----
expect_file() { # PATH [MODE-TEST]
	local path=$dest$1
	if [ ! -f "$path" ]; then
		fail "not installed: $1"
	elif [ "${2:-}" = -x ] && [ ! -x "$path" ]; then
		fail "not executable: $1"
	fi
}
expect_file "$bindir/berth" -x
expect_file "$sbindir/berth-runtime" -x
expect_file "$sbindir/berthd" -x
expect_file "$libexecdir/berth/berth-shim" -x
expect_file "$libdir/libberth.so.0.1.0"
[ "$(readlink "$dest$libdir/libberth.so.0")" = libberth.so.0.1.0 ] ||
	fail "$libdir/libberth.so.0 is not a link to libberth.so.0.1.0"
[ -e "$dest$libdir/libberth.so" ] || fail "not installed: $libdir/libberth.so (the link to build with)"
expect_file "$includedir/berth/sandbox.h"
expect_file "$libdir/pkgconfig/libberth.pc"
expect_file "$mandir/man1/berth.1"
expect_file "$mandir/man3/libberth.3"
expect_file "$mandir/man8/berth-runtime.8"
expect_file "$mandir/man8/berthd.8"
expect_file "$mandir/man5/berthd.conf.5"
expect_file "$mandir/man5/berth-manifest.5"
expect_file "$mandir/man7/berth-architecture.7"
expect_file "$sysconfdir/berth/berthd.conf"
expect_file "$datadir/bash-completion/completions/berth"
expect_file "$UNITDIR/berthd.service"
expect_file "$datadir/berth/seccomp-default.json"
# nothing outside the prefix but the unit (whose directory systemd's pkg-config file names) and
# the configuration (meson's sysconfdir is /etc for the prefix /usr)
stray=$(find "$dest" -type f | sed "s|^$dest||" |
	grep -v -e "^$PREFIX/" -e "^$UNITDIR/" -e "^$sysconfdir/" || true)
[ -z "$stray" ] || fail "installed outside $PREFIX: $stray"
# no path into the build tree in what was installed (meson drops build RUNPATHs on install)
for f in "$dest$bindir/berth" "$dest$sbindir/berthd" "$dest$libdir/libberth.so.0.1.0"; do
	if [ -f "$f" ] && readelf -d "$f" | grep -E 'R(UN)?PATH' | grep -q "$BUILD_DIR"; then
		fail "$f keeps a RUNPATH into $BUILD_DIR"
	fi
done

# ---- the unit ----
unit=$dest$UNITDIR/berthd.service
if [ -f "$unit" ]; then
	for line in "ExecStart=$sbindir/berthd" Delegate=yes KillMode=process Restart=always \
		"After=network-online.target local-fs.target" Wants=network-online.target \
		LimitNOFILE=1048576 Type=simple; do
		grep -qx "$line" "$unit" || fail "berthd.service lacks $line"
	done
	if command -v systemd-analyze >/dev/null; then
		# the unit as this host's systemd reads it, ExecStart pointing into the destdir; an
		# unknown key is only a warning there, and a failure here
		sed "s|^ExecStart=.*|ExecStart=$dest$sbindir/berthd|" "$unit" >"$tmp/berthd.service"
		if ! systemd-analyze verify --man=no "$tmp/berthd.service" >"$tmp/verify.log" 2>&1 ||
			[ -s "$tmp/verify.log" ]; then
			fail "systemd-analyze verify berthd.service: $(cat "$tmp/verify.log")"
		fi
	fi
fi

# ---- the library: SONAME and exports ----
lib=$dest$libdir/libberth.so.0.1.0
if [ -f "$lib" ]; then
	soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
	[ "$soname" = libberth.so.0 ] || fail "SONAME is \"$soname\", not libberth.so.0"
	exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -vx LIBBERTH_0 | sort)
	unversioned=$(echo "$exported" | grep -v '@@LIBBERTH_0$' || true)
	[ -z "$unversioned" ] || fail "exported outside the version node LIBBERTH_0: $unversioned"
	declared=$(grep -o 'berth_[a-z_]*(' "$dest$includedir/berth/sandbox.h" | tr -d '(' | sort -u)
	names=${exported//@@LIBBERTH_0/}
	missing=$(comm -23 <(echo "$declared") <(echo "$names"))
	extra=$(comm -13 <(echo "$declared") <(echo "$names"))
	[ -z "$missing" ] || fail "declared in sandbox.h but not exported: $missing"
	[ -z "$extra" ] || fail "exported but not in sandbox.h: $extra"
fi

# ---- a user's program, through pkg-config alone ----
export PKG_CONFIG_PATH=$dest$libdir/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
if ! flags=$(pkg-config --cflags --libs libberth); then
	fail "pkg-config --cflags --libs libberth"
elif echo "$flags" | grep -q -e "$BUILD_DIR" -e "$(dirname "$EXAMPLE")/../.."; then
	fail "pkg-config names the build or source tree: $flags"
else
	extra_flags=()
	[ "$SANITIZE" = none ] || extra_flags=(-fsanitize="$SANITIZE")
	# shellcheck disable=SC2086 # flags is a list of words
	if ! $CC -std=c17 -Wall -Wextra -Werror -Wpedantic -Wstrict-prototypes -Wmissing-prototypes \
		"${extra_flags[@]}" -o "$tmp/sandbox-example" "$EXAMPLE" $flags 2>"$tmp/cc.log"; then
		fail "the example does not build against the installed libberth: $(cat "$tmp/cc.log")"
	fi
	# the header alone, as C99 and as C++
	echo '#include <berth/sandbox.h>' >"$tmp/h.c"
	cflags=$(pkg-config --cflags libberth)
	# shellcheck disable=SC2086
	$CC -std=c99 -Wall -Wextra -Werror -Wpedantic -fsyntax-only $cflags "$tmp/h.c" \
		2>"$tmp/c99.log" || fail "sandbox.h as C99: $(cat "$tmp/c99.log")"
	if command -v c++ >/dev/null; then
		# shellcheck disable=SC2086
		c++ -x c++ -Wall -Wextra -Werror -fsyntax-only $cflags "$tmp/h.c" 2>"$tmp/cxx.log" ||
			fail "sandbox.h as C++: $(cat "$tmp/cxx.log")"
	fi
fi
if [ -x "$tmp/sandbox-example" ]; then
	export LD_LIBRARY_PATH=$dest$libdir
	resolved=$(ldd "$tmp/sandbox-example" | awk '$1 == "libberth.so.0" {print $3}')
	[ "$resolved" = "$dest$libdir/libberth.so.0" ] ||
		fail "the example loads libberth.so.0 from \"$resolved\", not the installed one"
	"$FIXTURES/make-bundle.sh" "$tmp/bundle"
	if "$tmp/sandbox-example" "$tmp/bundle/rootfs" "$tmp/state" >"$tmp/example.log" 2>&1; then
		cat "$tmp/example.log"
	else
		fail "the example: $(cat "$tmp/example.log")"
	fi
	left=$(find "$tmp/state" -mindepth 2 2>/dev/null || true)
	[ -z "$left" ] || fail "the example left state behind: $left"
fi

[ "$failures" -eq 0 ] || exit 1
echo "ok: installed under $dest$PREFIX and $dest$UNITDIR; the example ran"
