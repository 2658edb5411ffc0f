#!/bin/sh
# run_sftp.sh - measures SFTP bulk transfers (1 GiB fetches and stores on
# loopback) against TCP on the same machine in the same run: iperf3 with one
# stream, and a plain file-to-sink TCP copy with 256 KiB buffers
# (bench_sftp tcp-serve / tcp-fetch). Then a 1 KiB piggybacked fetch's
# latency against a null call's on the same connection. Only ratios mean
# anything: loopback speed changes from machine to machine and from minute
# to minute. Within each round every measurement runs once, in one order in
# odd rounds and the reverse in even ones; the table shows medians and the
# median of the per-round ratios.
#
#   bench/run_sftp.sh [--quick] [--rounds N] [--size MiB] [--packet BYTES] [--baseline DIR] [BUILDDIR]
#
# --baseline DIR runs a second build's testsrv and bench_sftp (DIR holds
# tests/testsrv and bench/bench_sftp, e.g. main built in another
# directory) in the same rounds: each rpc2 row gets a "base" twin, run
# beside it in every round, and a column with this build over the baseline.
#
# --packet makes the client ask for DATA packets of BYTES (bench_sftp
# --packet: the client picks a transfer's packet size) instead of the 63 KiB
# picked on loopback: the rpc2 rows then measure the per-packet path at an
# Ethernet size (1400), as a WAN transfer runs it.
#
# BUILDDIR (default: $top_builddir, else .) must hold tests/testsrv and
# bench/bench_sftp; this script builds nothing. iperf3 should be installed
# (its rows are skipped with a message if not). Files go to a temporary
# directory under ${TMPDIR:-/tmp}: the source file (SIZE), and two
# preallocated sink files (2 x SIZE), whose rows are skipped when the disk
# has no room. The default (5 rounds of 1 GiB) takes 30-40 s on a 2-vCPU
# VM, --quick (2 rounds of 256 MiB, coarse CPU figures) under 10 s.
# VERBOSE=1 also prints every line of every round. bench/README.md says
# what each figure means.
set -eu
. "$(dirname "$0")/lib.sh"

ROUNDS=5
SIZE_MIB=1024
PAIRS=5000            # pairs of calls per latency round
BULK_TARGET=1.0       # rpc2 MB/s at least this times iperf3's
LAT_TARGET=1.2        # piggybacked 1 KiB fetch at most this times a null call
BUILD=${top_builddir:-.}
PACKET=

BASE=
usage() {
    echo "usage: $0 [--quick] [--rounds N] [--size MiB] [--packet BYTES] [--baseline DIR] [BUILDDIR]" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --quick) ROUNDS=2 SIZE_MIB=256 PAIRS=2000 ;;
    --packet)
        [ $# -ge 2 ] || usage
        PACKET=$2
        shift
        ;;
    --baseline)
        [ $# -ge 2 ] || usage
        BASE=$2
        shift
        ;;
    --rounds | --size)
        [ $# -ge 2 ] || usage
        if [ "$1" = --rounds ]; then ROUNDS=$2; else SIZE_MIB=$2; fi
        shift
        ;;
    -*) usage ;;
    *) BUILD=$1 ;;
    esac
    shift
done
bench_counts "$ROUNDS" "$SIZE_MIB" ${PACKET:+"$PACKET"}
SIZE=$((SIZE_MIB * 1048576))

TESTSRV=$BUILD/tests/testsrv
BENCH=$BUILD/bench/bench_sftp
BASE_TESTSRV=${BASE:+$BASE/tests/testsrv}
BASE_BENCH=${BASE:+$BASE/bench/bench_sftp}
for prog in "$TESTSRV" "$BENCH" $BASE_TESTSRV $BASE_BENCH; do
    if [ ! -x "$prog" ]; then
        echo "run_sftp.sh: $prog is missing; run 'make tests/testsrv bench' in $BUILD" >&2
        exit 1
    fi
done
HAVE_IPERF=1
if ! command -v iperf3 >/dev/null 2>&1; then
    echo "run_sftp.sh: iperf3 is not installed (apt-get install iperf3): its row is skipped" >&2
    HAVE_IPERF=0
fi

bench_scratch "${TMPDIR:-/tmp}" rpc2-bench-sftp

# ---- files -------------------------------------------------------------------

# The server's root holds the source and the 1 KiB file; the client's sink
# file (shared by the TCP copy and rpc2 fetch, which never run at once) sits
# beside it, the server's (for stores) inside it.
ROOT=$TMP/srv
mkdir "$ROOT"
SRC=$ROOT/src
CLI_SINK=$TMP/cli.sink
SRV_SINK=$ROOT/srv.sink
# From the root up to / and down to /dev/null, for stores to /dev/null.
DEVNULL_REL=$(echo "$ROOT" | sed 's|/[^/]*|../|g')dev/null

avail_kib=$(df -Pk "$TMP" | awk 'NR == 2 { print $4 }')
need_src=$((SIZE / 1024 + 65536))   # the source and a 64 MiB margin
need_all=$((need_src + 2 * SIZE / 1024))
if [ "$avail_kib" -lt "$need_src" ]; then
    echo "run_sftp.sh: $TMP has $((avail_kib / 1024)) MiB free; the source alone needs" \
        "$((need_src / 1024)) MiB" >&2
    exit 1
fi
FILES=1
if [ "$avail_kib" -lt "$need_all" ]; then
    echo "run_sftp.sh: $TMP has $((avail_kib / 1024)) MiB free, the preallocated sinks need" \
        "$((need_all / 1024)) MiB with the source: the file-sink rows are skipped" >&2
    FILES=0
fi

echo "run_sftp.sh: making a ${SIZE_MIB} MiB source file in $TMP" >&2
dd if=/dev/urandom of="$SRC" bs=1M count="$SIZE_MIB" status=none
cat "$SRC" >/dev/null # cached from here on
head -c 1024 "$SRC" >"$ROOT/1k"
if [ "$FILES" = 1 ]; then
    # Preallocated, then written once untimed: the first write to each page
    # of a fallocated ext4 file costs ~3 s of kernel CPU per GiB (page cache
    # and unwritten-extent conversion), 10x the copy itself. After this pass
    # the rounds overwrite cached pages, and measure the transfer.
    for f in "$CLI_SINK" "$SRV_SINK"; do
        fallocate -l "$SIZE" "$f" ||
            echo "run_sftp.sh: fallocate failed: $f is written, not preallocated" >&2
        dd if="$SRC" of="$f" bs=256K conv=notrunc status=none
    done
fi

# ---- servers ---------------------------------------------------------------

"$TESTSRV" --listen 127.0.0.1:0 --root "$ROOT" >"$TMP/testsrv.out" 2>&1 &
SRV_PID=$!
PIDS="$PIDS $SRV_PID"
"$BENCH" tcp-serve --port 0 --file "$SRC" >"$TMP/tcp.out" 2>&1 &
TCP_PID=$!
PIDS="$PIDS $TCP_PID"
SRV_PORT=$(bench_wait_port "$TMP/testsrv.out" "testsrv listening on")
BASE_SRV_PID= BASE_SRV_PORT=
if [ -n "$BASE" ]; then
    "$BASE_TESTSRV" --listen 127.0.0.1:0 --root "$ROOT" >"$TMP/base_testsrv.out" 2>&1 &
    BASE_SRV_PID=$!
    PIDS="$PIDS $BASE_SRV_PID"
    BASE_SRV_PORT=$(bench_wait_port "$TMP/base_testsrv.out" "testsrv listening on")
fi
TCP_PORT=$(bench_wait_port "$TMP/tcp.out" "bench_sftp tcp listening on")

# One iperf3 server for all rounds (not -1), so its CPU is read from /proc
# like the others'.
IPERF_PID=
if [ "$HAVE_IPERF" = 1 ] && ! bench_iperf_server "$TMP/iperf.out"; then
    echo "run_sftp.sh: iperf3 -s found no free port: its row is skipped" >&2
    HAVE_IPERF=0
fi

# ---- the clients: each prints one line of key=value ---------------------------

# iperf3's JSON, reduced to the line the others print. Its client CPU is
# iperf3's own host_total percentage over the test's seconds.
run_iperf() {
    iperf3 -c 127.0.0.1 -p "$IPERF_PORT" -n "$SIZE" -J | awk '
        /"sum_received"/ { in_sum = 1 }
        in_sum && /"seconds"/ { gsub(/[^0-9.e+-]/, "", $2); secs = $2 }
        in_sum && /"bits_per_second"/ { gsub(/[^0-9.e+-]/, "", $2); bps = $2; in_sum = 0 }
        /"host_total"/ { gsub(/[^0-9.e+-]/, "", $2); host = $2 }
        END {
            if (bps == "") exit 1
            printf "op=iperf3 bytes='"$SIZE"' seconds=%.4f mb_per_s=%.1f client_cpu_s=%.3f\n",
                secs, bps / 8e6, host / 100 * secs
        }'
}

run_tcp() {
    case $1 in
    devnull) "$BENCH" tcp-fetch --port "$TCP_PORT" --sink devnull ;;
    file) "$BENCH" tcp-fetch --port "$TCP_PORT" --sink "$CLI_SINK" ;;
    esac
}

# run_fetch SINK BENCH PORT, run_store SINK BENCH PORT: this build's or the baseline's.
run_fetch() {
    case $1 in
    devnull) "$2" fetch --port "$3" --path src --sink devnull ${PACKET:+--packet "$PACKET"} ;;
    file) "$2" fetch --port "$3" --path src --sink "$CLI_SINK" ${PACKET:+--packet "$PACKET"} ;;
    esac
}

run_store() {
    case $1 in
    devnull) "$2" store --port "$3" --src "$SRC" --path "$DEVNULL_REL" ${PACKET:+--packet "$PACKET"} ;;
    file) "$2" store --port "$3" --src "$SRC" --path srv.sink ${PACKET:+--packet "$PACKET"} ;;
    esac
}

# ---- measuring -------------------------------------------------------------

# field LINE KEY: the value of KEY=value in a client's output line.
field() {
    printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# CPU ticks (user + system, every thread) a process has used so far.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

HZ=$(getconf CLK_TCK)
GIB=$(awk -v s="$SIZE" 'BEGIN { print s / 1073741824 }')

# measure NAME SERVER_PID CLIENT [ARG]: runs a client, appends its figures
# to $TMP/NAME.*: MB/s, client and server CPU seconds per GiB, and
# retransmitted packets as a share of the packets the file needed.
measure() {
    name=$1 pid=$2
    shift 2
    c0=$(cpu_ticks "$pid")
    if ! out=$("$@" 2>"$TMP/client.err"); then
        echo "run_sftp.sh: $name failed:" >&2
        cat "$TMP/client.err" >&2
        exit 1
    fi
    c1=$(cpu_ticks "$pid")
    echo "  $name: $out srv_cpu_s=$(awk -v c="$((c1 - c0))" -v hz="$HZ" \
        'BEGIN { printf "%.2f", c / hz }')" >>"$TMP/log"
    field "$out" mb_per_s >>"$TMP/$name.mbs"
    awk -v c="$(field "$out" client_cpu_s)" -v g="$GIB" 'BEGIN { printf "%.3f\n", c / g }' \
        >>"$TMP/$name.ccpu"
    awk -v c="$((c1 - c0))" -v hz="$HZ" -v g="$GIB" 'BEGIN { printf "%.3f\n", c / hz / g }' \
        >>"$TMP/$name.scpu"
    awk -v a="$(tail -n 1 "$TMP/$name.ccpu")" -v b="$(tail -n 1 "$TMP/$name.scpu")" \
        'BEGIN { printf "%.3f\n", a + b }' >>"$TMP/$name.tcpu"
    case $name in
    fetch_* | store_* | base_fetch_* | base_store_*)
        # the sender's retransmissions: a store's client counts its own; for
        # a fetch bench_sftp derives the server's (see its print_xfer)
        awk -v r="$(field "$out" retrans)" -v p="$(field "$out" packets)" \
            'BEGIN { printf "%.3f\n", 100 * r / p }' >>"$TMP/$name.rtx"
        echo $(($(field "$out" cli_drops) + $(field "$out" srv_drops))) >>"$TMP/$name.drops"
        field "$out" timeouts >>"$TMP/$name.rto"
        ;;
    esac
}

ROWS=
[ "$HAVE_IPERF" = 1 ] && ROWS="$ROWS iperf"
ROWS="$ROWS tcp_devnull"
[ "$FILES" = 1 ] && ROWS="$ROWS tcp_file"
# with_base ROW: the row, and its baseline twin beside it when there is one.
with_base() {
    echo "$1${BASE:+ base_$1}"
}
ROWS="$ROWS $(with_base fetch_devnull)"
[ "$FILES" = 1 ] && ROWS="$ROWS $(with_base fetch_file)"
ROWS="$ROWS $(with_base store_devnull)"
[ "$FILES" = 1 ] && ROWS="$ROWS $(with_base store_file)"
REVERSED=$(for r in $ROWS; do echo "$r"; done | sed -n '1!G;h;$p' | tr '\n' ' ')

run_row() {
    case $1 in
    iperf) measure iperf "$IPERF_PID" run_iperf ;;
    tcp_*) measure "$1" "$TCP_PID" run_tcp "${1#tcp_}" ;;
    fetch_*) measure "$1" "$SRV_PID" run_fetch "${1#fetch_}" "$BENCH" "$SRV_PORT" ;;
    store_*) measure "$1" "$SRV_PID" run_store "${1#store_}" "$BENCH" "$SRV_PORT" ;;
    base_fetch_*)
        measure "$1" "$BASE_SRV_PID" run_fetch "${1#base_fetch_}" "$BASE_BENCH" "$BASE_SRV_PORT" ;;
    base_store_*)
        measure "$1" "$BASE_SRV_PID" run_store "${1#base_store_}" "$BASE_BENCH" "$BASE_SRV_PORT" ;;
    esac
}

# ratio NAME BASE: this round's NAME MB/s over BASE's, appended to NAME.vs_BASE.
ratio() {
    awk -v a="$(tail -n 1 "$TMP/$1.mbs")" -v b="$(tail -n 1 "$TMP/$2.mbs")" \
        'BEGIN { printf "%.4f\n", a / b }' >>"$TMP/$1.vs_$2"
}

echo "rpc2 SFTP bulk transfers vs TCP on loopback: $ROUNDS rounds of $SIZE_MIB MiB; then" \
    "$ROUNDS latency rounds of $PAIRS call pairs${PACKET:+; DATA packets of $PACKET bytes}"
round=1
while [ "$round" -le "$ROUNDS" ]; do
    echo "round $round" >>"$TMP/log"
    order=$ROWS
    [ $((round % 2)) -eq 0 ] && order=$REVERSED
    for r in $order; do
        run_row "$r"
    done
    for r in $ROWS; do
        case $r in
        base_*)
            [ "$HAVE_IPERF" = 1 ] && ratio "$r" iperf
            ratio "$r" "tcp_${r##*_}"
            ratio "${r#base_}" "$r"
            ;;
        fetch_* | store_*)
            [ "$HAVE_IPERF" = 1 ] && ratio "$r" iperf
            ratio "$r" "tcp_${r#*_}"
            ;;
        tcp_*) [ "$HAVE_IPERF" = 1 ] && ratio "$r" iperf ;;
        esac
    done
    printf '.' >&2
    round=$((round + 1))
done

round=1
while [ "$round" -le "$ROUNDS" ]; do
    if ! out=$("$BENCH" latency --port "$SRV_PORT" --path 1k --n "$PAIRS" 2>"$TMP/client.err"); then
        echo "run_sftp.sh: latency failed:" >&2
        cat "$TMP/client.err" >&2
        exit 1
    fi
    echo "  latency: $out" >>"$TMP/log"
    field "$out" null_median_us >>"$TMP/lat.null"
    field "$out" fetch_median_us >>"$TMP/lat.fetch"
    field "$out" ratio >>"$TMP/lat.ratio"
    awk -v f="$(field "$out" fetch_median_us)" -v n="$(field "$out" null_median_us)" \
        'BEGIN { printf "%.2f\n", f - n }' >>"$TMP/lat.diff"
    field "$out" piggybacked >>"$TMP/lat.piggy"
    printf '.' >&2
    round=$((round + 1))
done
echo >&2

# ---- the table ---------------------------------------------------------------

label() {
    case $1 in
    iperf) echo "iperf3, 1 stream, memory" ;;
    tcp_devnull) echo "TCP copy -> /dev/null" ;;
    tcp_file) echo "TCP copy -> file" ;;
    fetch_devnull) echo "rpc2 fetch -> /dev/null" ;;
    fetch_file) echo "rpc2 fetch -> file" ;;
    store_devnull) echo "rpc2 store -> /dev/null" ;;
    store_file) echo "rpc2 store -> file" ;;
    base_*) echo "  baseline" ;;
    esac
}

# opt FILE FORMAT: its median printed with FORMAT, or "-".
opt() {
    if [ -s "$TMP/$1" ]; then
        awk -v v="$(median "$TMP/$1")" -v f="$2" 'BEGIN { printf f, v }'
    else
        echo "-"
    fi
}

echo
printf '| %-25s |  MB/s | vs iperf3 | vs TCP copy | target | result |' "transfer, $SIZE_MIB MiB"
echo " cpu s/GiB: client | server | both | retrans % | drops | RTOs |"
echo "| ------------------------- | ----: | --------: | ----------: | ------ | ------" \
    "| ----------------: | -----: | ---: | --------: | ----: | ---: |"
for r in $ROWS; do
    vi=$(opt "$r.vs_iperf" %.2f)
    vt=$(opt "$r.vs_tcp_${r##*_}" %.2f)
    target="-" result="-"
    case $r in
    fetch_* | store_* | base_*)
        target=">= $BULK_TARGET"
        result=$(awk -v v="$vi" -v t="$BULK_TARGET" \
            'BEGIN { print v == "-" ? "-" : (v >= t ? "PASS" : "MISS") }')
        ;;
    esac
    printf '| %-25s | %5.0f | %9s | %11s | %-6s | %-6s | %17.2f | %6.2f | %4.2f |' \
        "$(label "$r")" "$(median "$TMP/$r.mbs")" "$vi" "$vt" "$target" "$result" \
        "$(median "$TMP/$r.ccpu")" "$(median "$TMP/$r.scpu")" "$(median "$TMP/$r.tcpu")"
    printf ' %9s | %5s | %4s |\n' "$(opt "$r.rtx" %.2f)" "$(opt "$r.drops" %.0f)" \
        "$(opt "$r.rto" %.0f)"
done
echo
lr=$(median "$TMP/lat.ratio")
echo "| latency, median           | null call (us) | 1 KiB fetch (us) | difference (us) | ratio" \
    "| target | result |"
echo "| ------------------------- | -------------: | ---------------: | --------------: | ----:" \
    "| ------ | ------ |"
printf '| one call at a time        | %14.2f | %16.2f | %15.2f | %5.2f | <= %-3s | %-6s |\n' \
    "$(median "$TMP/lat.null")" "$(median "$TMP/lat.fetch")" "$(median "$TMP/lat.diff")" "$lr" \
    "$LAT_TARGET" \
    "$(awk -v v="$lr" -v t="$LAT_TARGET" 'BEGIN { print v <= t ? "PASS" : "MISS" }')"
echo
echo "MB/s, CPU, retransmissions, drops and RTOs are medians over the rounds (both: of the"
echo "per-round sums); the ratios are medians of the per-round ratios;"
echo "vs TCP copy compares with the TCP copy into the same sink. retrans %: packets sent again"
echo "per packet the file needed; drops: datagrams the kernel dropped at either end's socket;"
if [ -n "$BASE" ]; then
    echo "Baseline ($BASE) rows run beside this build's in every round; this build over it"
    echo "(median of the per-round MB/s ratios):"
    for r in $ROWS; do
        case $r in
        base_*) printf '  %-25s %s\n' "$(label "${r#base_}")" "$(opt "${r#base_}.vs_$r" %.2f)" ;;
        esac
    done
fi
echo "RTOs: retransmission timeouts. 1 KiB fetches piggybacked (of $PAIRS per round):" \
    "$(tr '\n' ' ' <"$TMP/lat.piggy")"
if [ "${VERBOSE:-0}" = 1 ]; then
    cat "$TMP/log"
fi
