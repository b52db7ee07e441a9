# Sourced by the benchmarks in tests/bench: their name, where they are, the repository, and die.
# shellcheck shell=bash
prog=${0##*/}
here=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

die() {
	echo "$prog: $*" >&2
	exit 1
}
