#!/bin/sh
# run.sh - measures rpc2 null calls against plain UDP on the same machine in
# the same run, because only the ratio means anything: loopback speed
# changes from machine to machine and from minute to minute. Baseline and
# rpc2 alternate within each round (each goes first in turn), and the table
# shows the median of each and the median of the per-round ratios.
#
#   bench/run.sh [--quick] [--rounds N] [BUILDDIR]
#
# BUILDDIR (default: $top_builddir, else .) must hold tests/testsrv,
# bench/bench_calls and bench/udp_baseline (`make tests/testsrv bench`);
# this script builds nothing. --quick takes about 30 s instead of about 2
# minutes. VERBOSE=1 also prints every figure of every round. Nothing is
# pinned: bench/README.md says how to read the figures on a small VM.
set -eu
. "$(dirname "$0")/lib.sh"

ROUNDS=5
PINGS=20000     # timed calls per latency round
LOAD_S=3        # measured seconds per load round
WARMUP_S=0.5    # unmeasured seconds before them
CLIENTS="1 4 16"
SIZE=48         # bytes of an rpc2 null CALL (and REPLY): header 40, proc 4, args length 4
LAT_TARGET=1.3  # rpc2 median latency at most this times the raw ping-pong's
TPUT_TARGET=0.6 # rpc2 calls/s at least this times the raw echo's
BUILD=${top_builddir:-.}

usage() {
    echo "usage: $0 [--quick] [--rounds N] [BUILDDIR]" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --quick) PINGS=5000 LOAD_S=0.6 WARMUP_S=0.2 ;;
    --rounds)
        [ $# -ge 2 ] || usage
        ROUNDS=$2
        shift
        ;;
    -*) usage ;;
    *) BUILD=$1 ;;
    esac
    shift
done
bench_counts "$ROUNDS"

TESTSRV=$BUILD/tests/testsrv
BENCH=$BUILD/bench/bench_calls
UDP=$BUILD/bench/udp_baseline
for prog in "$TESTSRV" "$BENCH" "$UDP"; do
    if [ ! -x "$prog" ]; then
        echo "run.sh: $prog is missing; run 'make tests/testsrv bench' in $BUILD" >&2
        exit 1
    fi
done

bench_scratch "${TMPDIR:-/tmp}" rpc2-bench

"$TESTSRV" --listen 127.0.0.1:0 >"$TMP/testsrv.out" 2>&1 &
SRV_PID=$!
PIDS="$PIDS $SRV_PID"
"$UDP" echo-server --host 127.0.0.1 --port 0 >"$TMP/echo.out" 2>&1 &
ECHO_PID=$!
PIDS="$PIDS $ECHO_PID"
SRV_PORT=$(bench_wait_port "$TMP/testsrv.out" ".* listening on")
ECHO_PORT=$(bench_wait_port "$TMP/echo.out" ".* listening on")

# ---- the four clients ------------------------------------------------------

raw_latency() {
    "$UDP" pingpong --port "$ECHO_PORT" --n "$PINGS" --size "$SIZE"
}

rpc2_latency() {
    "$BENCH" latency --port "$SRV_PORT" --n "$PINGS"
}

raw_load() {
    "$UDP" load --port "$ECHO_PORT" --clients "$1" --seconds "$LOAD_S" --warmup "$WARMUP_S" \
        --size "$SIZE"
}

rpc2_load() {
    "$BENCH" load --port "$SRV_PORT" --clients "$1" --seconds "$LOAD_S" --warmup "$WARMUP_S"
}

# ---- measuring -------------------------------------------------------------

# field LINE KEY: the value of KEY=value in a client's output line.
field() {
    printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# CPU ticks (user + system) a process has used so far.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# measure PID CLIENT [ARG]: runs a client and prints its output line with
# srv_cpu_pct= appended: the share of one core server PID used meanwhile.
measure() {
    pid=$1
    shift
    t0=$(date +%s.%N)
    c0=$(cpu_ticks "$pid")
    if ! out=$("$@" 2>"$TMP/client.err"); then
        echo "run.sh: $* failed:" >&2
        cat "$TMP/client.err" >&2
        exit 1
    fi
    c1=$(cpu_ticks "$pid")
    t1=$(date +%s.%N)
    pct=$(awk -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" -v t0="$t0" -v t1="$t1" \
        'BEGIN { printf "%.0f", 100 * c / hz / (t1 - t0) }')
    echo "$out srv_cpu_pct=$pct"
}

# record METRIC BASE_LINE SUBJ_LINE KEY: appends this round's figures.
record() {
    b=$(field "$2" "$4")
    s=$(field "$3" "$4")
    echo "$b" >>"$TMP/$1.base"
    echo "$s" >>"$TMP/$1.subj"
    awk -v b="$b" -v s="$s" 'BEGIN { printf "%.4f\n", s / b }' >>"$TMP/$1.ratio"
    field "$2" srv_cpu_pct >>"$TMP/$1.bcpu"
    field "$3" srv_cpu_pct >>"$TMP/$1.scpu"
}

# pair ROUND METRIC KEY KIND [ARG]: runs raw_KIND and rpc2_KIND, the
# baseline first in odd rounds and rpc2 first in even ones, so a drift of
# the machine during the run favours neither.
pair() {
    round_=$1 metric=$2 key=$3 kind=$4
    shift 4
    if [ $((round_ % 2)) -eq 1 ]; then
        base=$(measure "$ECHO_PID" "raw_$kind" "$@")
        subj=$(measure "$SRV_PID" "rpc2_$kind" "$@")
    else
        subj=$(measure "$SRV_PID" "rpc2_$kind" "$@")
        base=$(measure "$ECHO_PID" "raw_$kind" "$@")
    fi
    record "$metric" "$base" "$subj" "$key"
    if [ "$kind" = latency ]; then
        record p99 "$base" "$subj" p99_us
    fi
    printf '  %-8s raw:  %s\n  %-8s rpc2: %s\n' "$metric" "$base" "" "$subj" >>"$TMP/log"
}

echo "rpc2 null calls vs raw UDP on loopback: $ROUNDS rounds; $PINGS timed calls per latency" \
    "round; ${LOAD_S} s (+${WARMUP_S} s warm-up) per load round"
round=1
while [ "$round" -le "$ROUNDS" ]; do
    echo "round $round" >>"$TMP/log"
    pair "$round" latency median_us latency
    for c in $CLIENTS; do
        pair "$round" "load$c" calls_per_s load "$c"
    done
    printf '.' >&2
    round=$((round + 1))
done
echo >&2

# verdict RATIO KIND: PASS or MISS against the target of KIND (max or min).
verdict() {
    awk -v r="$1" -v lt="$LAT_TARGET" -v tt="$TPUT_TARGET" -v k="$2" \
        'BEGIN { ok = k == "max" ? r <= lt : r >= tt; print (ok ? "PASS" : "MISS") }'
}

# row LABEL METRIC KIND: KIND "max" (ratio <= target), "min" (>=) or "info".
row() {
    r=$(median "$TMP/$2.ratio")
    case $3 in
    max) target="<= $LAT_TARGET" result=$(verdict "$r" max) ;;
    min) target=">= $TPUT_TARGET" result=$(verdict "$r" min) ;;
    *) target="-" result="-" ;;
    esac
    printf '| %-21s | %9s | %9s | %5.2f | %-7s | %-6s | %3s / %3s |\n' "$1" \
        "$(median "$TMP/$2.base")" "$(median "$TMP/$2.subj")" "$r" "$target" "$result" \
        "$(median "$TMP/$2.bcpu")" "$(median "$TMP/$2.scpu")"
}

echo
echo "| metric                |   raw UDP |      rpc2 | ratio | target  | result | srv cpu % |"
echo "| --------------------- | --------: | --------: | ----: | ------- | ------ | --------: |"
row "latency median (us)" latency max
row "latency p99 (us)" p99 info
for c in $CLIENTS; do
    row "calls/s, $c client(s)" "load$c" min
done
echo
echo "Figures are medians over the rounds; ratio is the median of the per-round rpc2/raw ratios."
echo "srv cpu %: share of one core the server (echo-server / testsrv) used during the runs."
if [ "${VERBOSE:-0}" = 1 ]; then
    cat "$TMP/log"
fi
