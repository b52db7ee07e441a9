#!/bin/sh
# run-fuzzer.sh TARGET NEW-CORPUS-DIR SEED-DIR [DICT]: replays the seeds (regressions first), then
# fuzzes for FUZZ_SECONDS (default 30) with DICT (default json.dict). Prints libFuzzer's statistics
# and one summary line.
set -eu
target=$1 new=$2 seeds=$3 dict=${4:-$(dirname "$0")/json.dict}
secs=${FUZZ_SECONDS:-30}
# every seed is a past finding or a valid config: each must run clean on its own
"$target" -runs=0 "$seeds"
"$target" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-dict="$dict" "$new" "$seeds"
echo "fuzz: $(basename "$target") ran ${secs}s without a finding"
