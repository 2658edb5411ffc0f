#!/bin/sh
# run.sh - runs one libFuzzer target for a bounded time and says what it
# did: executions, coverage, corpus. Fails (exit 1, with the report and the
# input that did it) on a crash, a leak, an invariant the target checks, a
# run over the time limit or memory limit. New inputs it finds go to the
# build tree's fuzz/work/TARGET/corpus; the seed directory is only read.
#
# Usage: run.sh TARGET SEED_DIR    (FUZZ_SECONDS: the time, default 60)
set -eu
target=$1
seeds=$2
secs=${FUZZ_SECONDS:-60}
name=$(basename "$target")
work=fuzz/work/$name
mkdir -p "$work/corpus" "$work/crashes" "$work/scratch"
# files a target makes (fuzz_server's stores) go here, and go with the run
FUZZ_SCRATCH=$(cd "$work/scratch" && pwd)
export FUZZ_SCRATCH
trap 'rm -rf "$FUZZ_SCRATCH"' EXIT
rm -f "$work/crashes"/* # what failed last time was reported then
log=$work/log

status=0
started=$(date +%s)
"$target" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$work/crashes/" "$work/corpus" "$seeds" >"$log" 2>&1 || status=$?
elapsed=$(($(date +%s) - started))

stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
# libFuzzer's last status line: "#N DONE cov: E ft: F corp: C/SIZE ..."
cov=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 |
    sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\) corp: \([0-9]*\).*/\1 edges, \2 features, corpus \3/p')
execs=$(stat number_of_executed_units)
if [ -n "$execs" ]; then
    printf '%-15s %s s: %s executions (%s/s), coverage %s, %s new inputs, peak RSS %s MB\n' \
        "$name" "$elapsed" "$execs" "$(stat average_exec_per_sec)" "${cov:-unknown}" \
        "$(stat new_units_added)" "$(stat peak_rss_mb)"
fi
if [ "$status" -ne 0 ]; then
    echo "$name FAILED (exit $status); the end of its log ($log):"
    tail -n 80 "$log"
    for f in "$work/crashes"/*; do
        [ -e "$f" ] && echo "input that failed: $f (replay: $target $f)"
    done
    exit 1
fi
