#!/bin/bash
# run_rcat.sh - issue 11's whole-process figure on loopback: `rcat URL >
# /dev/null` fetching one file from rcatd, against `iperf3 -c -n SIZE`
# moving as many bytes over one TCP stream, alternating in one run. Both
# are timed as a user times them, start to exit: start-up, connection,
# transfer and teardown. bench_sftp (run_sftp.sh) times the transfer alone
# inside one process; this is what an operator's script sees.
#
#   bench/run_rcat.sh [--rounds N] [--size MiB] [--dir DIR] [BUILDDIR]
#
# --dir: where the served file lives (default ${TMPDIR:-/tmp}). The file is
# read once before the rounds, so every fetch is served from the page
# cache; which filesystem's page cache matters (tmpfs looks up every 4 KiB
# page, where ext4 keeps large folios), so the table says which it was.
# BUILDDIR (default: $top_builddir, else .) holds rcat/rcat and
# rcat/rcatd; the binaries under .libs run with the build's library, as
# installed ones would (libtool's wrapper scripts cost a shell each run).
# Given an install prefix's bin directory instead (BUILDDIR/rcat and
# BUILDDIR/rcatd), those run. iperf3 must be installed.
set -eu
. "$(dirname "$0")/lib.sh"

ROUNDS=7
SIZE_MIB=1024
DIR=${TMPDIR:-/tmp}
BUILD=${top_builddir:-.}
TARGET=1.2 # rcat's rate at least this times iperf3's

usage() {
    echo "usage: $0 [--rounds N] [--size MiB] [--dir DIR] [BUILDDIR]" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
    --rounds | --size | --dir)
        [ $# -ge 2 ] || usage
        case $1 in
        --rounds) ROUNDS=$2 ;;
        --size) SIZE_MIB=$2 ;;
        --dir) DIR=$2 ;;
        esac
        shift
        ;;
    -*) usage ;;
    *) BUILD=$1 ;;
    esac
    shift
done
bench_counts "$ROUNDS" "$SIZE_MIB"
SIZE=$((SIZE_MIB * 1048576))

if [ -x "$BUILD/rcat/.libs/rcat" ]; then
    RCAT=$BUILD/rcat/.libs/rcat RCATD=$BUILD/rcat/.libs/rcatd
    LD_LIBRARY_PATH=$(cd "$BUILD/.libs" && pwd)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LD_LIBRARY_PATH
elif [ -x "$BUILD/rcat" ] && [ -x "$BUILD/rcatd" ]; then
    RCAT=$BUILD/rcat RCATD=$BUILD/rcatd
else
    echo "run_rcat.sh: no rcat and rcatd in $BUILD (run 'make' there)" >&2
    exit 1
fi
if ! command -v iperf3 >/dev/null 2>&1; then
    echo "run_rcat.sh: iperf3 is not installed (apt-get install iperf3)" >&2
    exit 1
fi

bench_scratch "$DIR" rpc2-bench-rcat

avail_kib=$(df -Pk "$TMP" | awk 'NR == 2 { print $4 }')
if [ "$avail_kib" -lt $((SIZE / 1024 + 65536)) ]; then
    echo "run_rcat.sh: $TMP has $((avail_kib / 1024)) MiB free; $SIZE_MIB MiB and a margin needed" >&2
    exit 1
fi
FSTYPE=$(stat -f -c %T "$TMP")
mkdir "$TMP/root"
echo "run_rcat.sh: making a $SIZE_MIB MiB file in $TMP ($FSTYPE)" >&2
dd if=/dev/urandom of="$TMP/root/big" bs=1M count="$SIZE_MIB" status=none
cat "$TMP/root/big" >/dev/null

"$RCATD" --listen 127.0.0.1:0 --root "$TMP/root" >"$TMP/rcatd.out" 2>&1 &
RCATD_PID=$!
PIDS="$PIDS $RCATD_PID"
RCATD_PORT=$(bench_wait_port "$TMP/rcatd.out" "rcatd listening on") || exit 1
bench_iperf_server "$TMP/iperf.out" || {
    echo "run_rcat.sh: iperf3 -s found no free port" >&2
    exit 1
}

# server_cpu PID: nanoseconds of CPU all its threads have used (schedstat).
server_cpu() {
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d", s }'
}

# timed NAME SERVER_PID CMD...: runs CMD once; appends its wall and CPU
# seconds and the server's CPU seconds to $TMP/NAME.*.
timed() {
    local name=$1 spid=$2 s0 s1 t
    shift 2
    s0=$(server_cpu "$spid")
    t=$({ TIMEFORMAT='%R %U %S'; time "$@" >/dev/null 2>"$TMP/$name.err"; } 2>&1) || {
        echo "run_rcat.sh: $name failed:" >&2
        cat "$TMP/$name.err" >&2
        exit 1
    }
    s1=$(server_cpu "$spid")
    set -- $t
    echo "$1" >>"$TMP/$name.wall"
    awk -v u="$2" -v s="$3" 'BEGIN { print u + s }' >>"$TMP/$name.cpu"
    awk -v a="$s0" -v b="$s1" 'BEGIN { print (b - a) / 1e9 }' >>"$TMP/$name.scpu"
}

echo "rcat > /dev/null vs iperf3 on loopback: $ROUNDS rounds of $SIZE_MIB MiB, the file on $FSTYPE (load $(cut -d' ' -f1-3 /proc/loadavg))"
run_rcat() { timed rcat "$RCATD_PID" "$RCAT" "rcat://127.0.0.1:$RCATD_PORT/big"; }
run_iperf() { timed iperf3 "$IPERF_PID" iperf3 -c 127.0.0.1 -p "$IPERF_PORT" -n "$SIZE"; }
timed warmup "$RCATD_PID" "$RCAT" "rcat://127.0.0.1:$RCATD_PORT/big"
round=1
while [ "$round" -le "$ROUNDS" ]; do
    if [ $((round % 2)) -eq 1 ]; then
        run_rcat
        run_iperf
    else
        run_iperf
        run_rcat
    fi
    r=$(tail -n 1 "$TMP/rcat.wall") i=$(tail -n 1 "$TMP/iperf3.wall")
    echo "  round $round: rcat $r s  iperf3 $i s"
    awk -v r="$r" -v i="$i" 'BEGIN { printf "%.4f\n", i / r }' >>"$TMP/ratio"
    round=$((round + 1))
done

GIB=$(awk -v s="$SIZE" 'BEGIN { print s / 1073741824 }')
row() { # NAME LABEL
    awk -v w="$(median "$TMP/$1.wall")" -v c="$(median "$TMP/$1.cpu")" \
        -v s="$(median "$TMP/$1.scpu")" -v n="$SIZE" -v g="$GIB" -v l="$2" \
        'BEGIN { printf "| %-22s | %7.3f | %6.0f | %19.2f | %19.2f |\n", l, w, n / w / 1e6, c / g, s / g }'
}
echo
echo "| whole process, $SIZE_MIB MiB | wall s |   MB/s | client cpu s/GiB | server cpu s/GiB |"
echo "| ---------------------- | ------: | -----: | ------------------: | ------------------: |"
row rcat "rcat > /dev/null"
row iperf3 "iperf3 -c -n"
ratio=$(median "$TMP/ratio")
verdict=$(awk -v r="$ratio" -v t="$TARGET" 'BEGIN { print (r >= t) ? "PASS" : "MISS" }')
echo
echo "rcat's rate over iperf3's (median of the per-round ratios): $ratio (target >= $TARGET: $verdict)"
