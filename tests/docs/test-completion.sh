#!/bin/bash
# tests/docs/test-completion.sh BERTH COMPLETION: the bash completion of berth offers what
# `berth --help` lists (every command, every image command, every option of each), nothing it
# does not, and completes image names (which hold ':') through `berth image ls -q`.
set -euo pipefail

berth_bin=$1
completion=$2
helpers=/usr/share/bash-completion/bash_completion
if [ ! -r "$helpers" ]; then
	echo "SKIP: $helpers missing (tools/deps.sh test installs bash-completion)"
	exit 77
fi
# bash_completion reads unset variables and returns non-zero on the way
set +eu
# shellcheck disable=SC1090
. "$helpers"
# shellcheck disable=SC1090
. "$completion"
set -u

help=$("$berth_bin" --help)
failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# The completions of a command line (cursor at its end), sorted, one per line.
complete_line() {
	local line=$1
	read -r -a COMP_WORDS <<<"$line"
	[[ $line == *" " ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE=$line
	COMP_POINT=${#line}
	COMPREPLY=()
	_berth berth "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort -u
}

# A list on one line.
words() { tr '\n' ' ' <<<"$1" | sed 's/ *$//'; }

# want and got as sorted lists; `extra` words may be offered beyond want.
expect_same() {
	local what=$1 want=$2 got=$3 extra=${4:-}
	local missing surplus
	missing=$(comm -23 <(echo "$want" | sort -u) <(echo "$got"))
	surplus=$(comm -13 <({ echo "$want"; tr ' ' '\n' <<<"$extra"; } | sort -u) <(echo "$got"))
	[ -z "$missing" ] || fail "$what: not offered: $(words "$missing")"
	[ -z "$surplus" ] || fail "$what: offered but not in berth --help: $(words "$surplus")"
}

commands=$(echo "$help" | sed -n '/^commands:/,$p' | sed -n 's/^  \([a-z][a-z-]*\).*/\1/p' | sort -u)
expect_same "berth COMMAND" "$commands" "$(complete_line "berth ")" help

image_commands=$(echo "$help" | sed -n 's/^  image \([a-z]\+\).*/\1/p' | sort -u)
expect_same "berth image COMMAND" "$image_commands" "$(complete_line "berth image ")"
expect_same "berth --root /x image COMMAND" "$image_commands" \
	"$(complete_line "berth --root /x --debug image ")"

# the global options: the usage lines before "commands:", plus --version and --help
global=$(echo "$help" | sed '/^commands:/,$d' | grep -o -- '--[a-z-]\+' | sort -u)
expect_same "berth --OPTION" "$(printf '%s\n' "$global" --version --help)" \
	"$(complete_line "berth --")"

# each image command's options as its help line spells them (-q may also be --quiet)
while read -r sub rest; do
	want=$(echo "$rest" | grep -o -- '-\{1,2\}[a-z][a-z-]*' | sort -u || true)
	got=$(complete_line "berth image $sub -")
	expect_same "berth image $sub -OPTION" "$want" "$got" "--quiet -a"
done < <(echo "$help" | sed -n 's/^  image \([a-z]\+\)\(.*\)/\1 \2/p')

# exec, attach and port-forward: their options as their help lines spell them (-i may also be
# --stdin, -t --tty), before the container only; nothing after it (the command's own words)
for cmd in exec attach port-forward; do
	rest=$(echo "$help" | sed -n "s/^  $cmd \(.*\)/\1/p")
	[ -n "$rest" ] || fail "berth --help has no $cmd line"
	want=$(echo "$rest" | grep -o -- '-\{1,2\}[a-z][a-z-]*' | sort -u || true)
	expect_same "berth $cmd -OPTION" "$want" "$(complete_line "berth --socket /s $cmd -")" \
		"--stdin --tty"
done
# the berthd commands: their options as their help lines spell them (long forms may be offered
# too), and pod's commands
while read -r cmd rest; do
	want=$(echo "$rest" | grep -o -- '-\{1,2\}[a-z][a-z-]*' | sort -u || true)
	got=$(complete_line "berth $cmd -")
	expect_same "berth $cmd -OPTION" "$want" "$got" \
		"--detach --interactive --tty --quiet --env --volume --publish -m -u -w --all --follow -n -t --time --signal --force"
done < <(echo "$help" | sed -n 's/^  \(run\|ps\|logs\|stop\|kill\|rm\|stats\|events\|info\|version\) \(.*\)/\1 \2/p')
pod_commands=$(echo "$help" | sed -n 's/^  pod \([a-z]\+\).*/\1/p' | sort -u)
expect_same "berth pod COMMAND" "$pod_commands" "$(complete_line "berth pod ")"
while read -r sub rest; do
	want=$(echo "$rest" | grep -o -- '-\{1,2\}[a-z][a-z-]*' | sort -u || true)
	[ -n "$want" ] || continue
	got=$(complete_line "berth pod $sub -")
	expect_same "berth pod $sub -OPTION" "$want" "$got" \
		"--publish --label --quiet --force --follow -n -t"
done < <(echo "$help" | sed -n 's/^  pod \([a-z]\+\)\(.*\)/\1 \2/p')

# container names through `berth ps -a` (its NAME column), with the --socket given
berth() {
	[ "$*" = "--socket /s ps -a" ] || return 1
	printf 'ID  NAME  IMAGE\nabc  web  x\ndef  worker  y\n'
}
got=$(complete_line "berth --socket /s stop w")
[ "$got" = "$(printf 'web\nworker')" ] || fail "stop CONTAINER: got \"$got\""
unset -f berth

got=$(complete_line "berth exec web -")
[ -z "$got" ] || fail "berth exec CONTAINER -: offered \"$(words "$got")\" (the command's own words)"

# image names through `berth image ls -q`, colons and all, with the --root given
berth() {
	[ "$*" = "--root /srv/images image ls -q" ] || return 1
	printf '%s\n' docker.io/library/busybox:latest docker.io/library/alpine:3.19 localhost/x:1
}
got=$(complete_line "berth --root /srv/images image rm docker.io/library/b")
[ "$got" = "docker.io/library/busybox:latest" ] || fail "image rm NAME: got \"$got\""
got=$(complete_line "berth --root /srv/images image inspect docker.io/library/busybox:")
[ "$got" = "latest" ] || fail "image inspect NAME after the colon: got \"$got\""
got=$(complete_line "berth --root /srv/images image ls --format ")
[ "$got" = "$(printf 'json\ntable')" ] || fail "image ls --format: got \"$got\""
got=$(complete_line "berth image pull --format ")
[ "$got" = "$(printf 'json\ntext')" ] || fail "image pull --format: got \"$got\""

if [ "$failures" -ne 0 ]; then
	exit 1
fi
echo "ok: $(words "$commands") / image $(words "$image_commands") / pod $(words "$pod_commands")"
