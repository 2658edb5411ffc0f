#!/bin/bash
# run_split.sh - rcat --split=N against one fetch of the same file, in one run
# (issue 14: "one 4 GiB file with --split versus without").
#
# Rounds alternate the two (no split, then split) so that the machine's load
# falls on both alike; each round prints both times, the end the medians and
# split/no-split (below 1: splitting is faster). First on loopback, then, when
# this can be done here (root, ip, /dev/net/tun, bench/wan/linkemu), through
# the emulated link of run_wan.sh on a long, lossy path, where one transfer's
# window and rate controller leave the path unfilled and several ranges at
# once should not. The file is sparse with random blocks (cheap to make, its
# content still checked by rcat's whole-file sum); copies go to tmpfs when
# there is one.
#
# Each way: a fetch, and a store (--put, whose ranges go into a temporary the
# server makes, SPLIT_BEGIN, STORE_RANGE, SPLIT_END). After each split run, where its time went, from
# rcatd's log: the longest range's time and the whole-file SUM's; the rest
# is rcat's own (binding the lanes, the local sum, the calls around them).
#
# Knobs (environment): SPLIT=4 ranges; ROUNDS=3; PUT=1 also stores; SPLIT_MIB=512 on loopback
# (SPLIT_MIB=4096 is the issue's 4 GiB: it needs that much free memory for
# the copy on tmpfs); WAN_MIB=24 and WAN_PROFILE=100M,100,1 (rate bit/s,
# RTT ms, loss %) through the link; WAN=0 skips the link; RUN_SECS=120 caps
# each fetch; SCRATCH=DIR where the files go (default /dev/shm when it has
# room for two copies, else $TMPDIR).
set -u

SPLIT=${SPLIT:-4} ROUNDS=${ROUNDS:-3} SPLIT_MIB=${SPLIT_MIB:-512} WAN_MIB=${WAN_MIB:-24}
WAN_PROFILE=${WAN_PROFILE:-100M,100,1} WAN=${WAN:-1} RUN_SECS=${RUN_SECS:-120} PUT=${PUT:-1}
top=${top_builddir:-.}
rcat=$top/rcat/rcat rcatd=$top/rcat/rcatd linkemu=$top/bench/wan/linkemu
for p in "$rcat" "$rcatd"; do
    [ -x "$p" ] || { echo "run_split.sh: $p not built (make)" >&2; exit 1; }
done

# the file, its fetched copy and its stored copy: two dense copies at once
# at most (the file itself is sparse)
need_kib=$(((SPLIT_MIB > WAN_MIB ? SPLIT_MIB : WAN_MIB) * 2 * 1024 + 65536))
avail_kib() { df -Pk "$1" 2>/dev/null | awk 'NR == 2 { print $4 }'; }
scratch=${SCRATCH:-}
if [ -z "$scratch" ]; then
    scratch=/dev/shm
    { [ -d "$scratch" ] && [ -w "$scratch" ] && [ "$(avail_kib "$scratch")" -ge "$need_kib" ]; } ||
        scratch=${TMPDIR:-/tmp}
fi
[ "$(avail_kib "$scratch")" -ge "$need_kib" ] || {
    echo "run_split.sh: $scratch has less than $((need_kib >> 10)) MiB free (SCRATCH=DIR elsewhere)" >&2
    exit 1
}
tmp=$(mktemp -d "$scratch/run_split.XXXXXX") || exit 1
echo "scratch: $scratch (load $(cut -d' ' -f1-3 /proc/loadavg))"
rcatd_pid="" emu_pid="" ns_srv=rsplit$$srv ns_cli=rsplit$$cli ns_made=0

stop() {
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null || return 0
    for _ in $(seq 1 50); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
cleanup() {
    stop "$rcatd_pid"
    stop "$emu_pid"
    if [ "$ns_made" = 1 ]; then
        ip netns del "$ns_srv" 2>/dev/null
        ip netns del "$ns_cli" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# make_file PATH MIB: sparse, with a random MiB every 64 MiB and at the end.
make_file() {
    truncate -s "$2M" "$1"
    for at in $(seq 0 64 $(($2 - 1))) $(($2 - 1)); do
        dd if=/dev/urandom of="$1" bs=1M count=1 seek="$at" conv=notrunc status=none
    done
}

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

# where_split LOGLINES-BEFORE: the ranges' and the SUM's time of the last
# split run, from rcatd's log lines after the first LOGLINES-BEFORE.
where_split() {
    tail -n +"$(($1 + 1))" "$tmp/rcatd.log" | awk '
        / (FETCH|STORE_RANGE) / { for (i = 1; i < NF; i++) if ($(i + 1) == "ms") { if ($i > r) r = $i } }
        / SUM / { for (i = 1; i < NF; i++) if ($(i + 1) == "ms") s = $i }
        END { printf "(ranges %.2f s, sum %.2f s)", r / 1000, s / 1000 }'
}

# move_once PREFIX URL SPLIT_N WAY: the seconds one fetch (WAY=fetch) or
# store (put) took, and where a split one's time went; or "fail".
move_once() {
    local pre=$1 url=$2 n=$3 way=$4 t0 rc before
    rm -f "$tmp/copy" "$tmp/root/up.bin"
    before=$(wc -l <"$tmp/rcatd.log")
    t0=$(now)
    if [ "$way" = put ]; then
        $pre timeout "$RUN_SECS" "$rcat" --no-progress --split="$n" --put "$tmp/root/file.bin" \
            "${url%/*}/up.bin" 2>"$tmp/err"
    else
        $pre timeout "$RUN_SECS" "$rcat" --no-progress --split="$n" -o "$tmp/copy" "$url" 2>"$tmp/err"
    fi
    rc=$?
    local got=$tmp/copy
    [ "$way" = put ] && got=$tmp/root/up.bin
    if [ $rc -ne 0 ] || ! cmp -s "$got" "$tmp/root/file.bin"; then
        echo "fail"
        sed 's/^/    /' "$tmp/err" | tail -3 >&2
        return
    fi
    echo "$(now) $t0" | awk '{printf "%.3f", $1 - $2}'
    [ "$n" -gt 1 ] && echo " $(where_split "$before")"
}

# compare LABEL PREFIX URL: ROUNDS alternating rounds, then the medians.
compare() {
    local label=$1 pre=$2 url=$3 way a b ra rb
    for way in fetch put; do
        [ "$way" = put ] && [ "$PUT" != 1 ] && continue
        ra=() rb=()
        echo "$label, $way: $ROUNDS rounds, no split then --split=$SPLIT"
        for i in $(seq 1 "$ROUNDS"); do
            a=$(move_once "$pre" "$url" 1 "$way")
            b=$(move_once "$pre" "$url" "$SPLIT" "$way")
            echo "  round $i: no split $a s, --split=$SPLIT $b"
            [ "$a" = fail ] || ra+=("$a")
            [ "$b" = fail ] || rb+=("${b%% *}")
        done
        [ ${#ra[@]} -gt 0 ] && [ ${#rb[@]} -gt 0 ] || { echo "  no median: runs failed"; continue; }
        local ma mb
        ma=$(median "${ra[@]}")
        mb=$(median "${rb[@]}")
        echo "$label, $way median: no split $ma s, --split=$SPLIT $mb s, split/no-split $(echo "$mb $ma" |
            awk '{printf "%.2f", $1 / $2}') ($(echo "$ma $mb" | awk -v m="$MIB" '{printf "%.0f and %.0f", m * 8.388608 / $1, m * 8.388608 / $2}') Mbit/s; load $(cut -d' ' -f1 /proc/loadavg))"
    done
}

# ---- loopback ---------------------------------------------------------------------
mkdir "$tmp/root"
MIB=$SPLIT_MIB
make_file "$tmp/root/file.bin" "$MIB"
"$rcatd" --listen 127.0.0.1:0 --root "$tmp/root" --writable --log "$tmp/rcatd.log" >"$tmp/rcatd.out" 2>&1 &
rcatd_pid=$!
port=""
for _ in $(seq 1 100); do
    port=$(sed -n 's/^rcatd listening on \([0-9]*\)$/\1/p' "$tmp/rcatd.out")
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || { cat "$tmp/rcatd.out"; echo "run_split.sh: rcatd did not start" >&2; exit 1; }
compare "loopback, $MIB MiB" "" "rcat://127.0.0.1:$port/file.bin"
stop "$rcatd_pid"
rcatd_pid=""

# ---- through the emulated link ------------------------------------------------------
why=""
[ "$WAN" = 1 ] || why="WAN=0"
[ -n "$why" ] || [ "$(id -u)" -eq 0 ] || why="not root"
[ -n "$why" ] || [ -c /dev/net/tun ] || why="no /dev/net/tun"
[ -n "$why" ] || command -v ip >/dev/null || why="no ip (iproute2)"
[ -n "$why" ] || [ -x "$linkemu" ] || why="$linkemu not built"
if [ -n "$why" ]; then
    echo "emulated link: skipped ($why)"
    exit 0
fi
IFS=, read -r rate rtt loss <<<"$WAN_PROFILE"
rate_bps=$(awk -v r="$rate" 'BEGIN { m = 1; u = substr(r, length(r));
    if (u == "k") m = 1e3; if (u == "M") m = 1e6; if (u == "G") m = 1e9;
    if (m > 1) r = substr(r, 1, length(r) - 1); printf "%.0f", r * m }')
srv_ip=10.79.0.1 cli_ip=10.79.0.2
ns_made=1
for ns in "$ns_srv" "$ns_cli"; do
    ip netns add "$ns" && ip -n "$ns" link set lo up &&
        ip -n "$ns" tuntap add dev wan0 mode tun &&
        ip -n "$ns" link set wan0 mtu 1500 txqueuelen 10000 up ||
        { echo "emulated link: skipped (cannot make namespace $ns)"; exit 0; }
done
ip -n "$ns_srv" addr add "$srv_ip/24" dev wan0
ip -n "$ns_cli" addr add "$cli_ip/24" dev wan0
queue=$(awk -v b="$rate_bps" -v r="$rtt" 'BEGIN { q = b * r / 8000; if (q < 16384) q = 16384; printf "%.0f", q }')
"$linkemu" --ns-a "$ns_srv" --dev-a wan0 --ns-b "$ns_cli" --dev-b wan0 --rate "$rate_bps" \
    --queue "$queue" --delay "$(awk -v r="$rtt" 'BEGIN { printf "%g", r / 2 }')" \
    --loss "$loss%" --seed $$ >"$tmp/linkemu.out" 2>"$tmp/linkemu.err" &
emu_pid=$!
for _ in $(seq 1 200); do
    grep -q "linkemu ready" "$tmp/linkemu.out" 2>/dev/null && break
    sleep 0.05
done
grep -q "linkemu ready" "$tmp/linkemu.out" || { cat "$tmp/linkemu.err"; echo "emulated link: linkemu did not start"; exit 0; }
MIB=$WAN_MIB
make_file "$tmp/root/file.bin" "$MIB"
ip netns exec "$ns_srv" "$rcatd" --listen "$srv_ip:7755" --root "$tmp/root" --writable \
    --log "$tmp/rcatd.log" >"$tmp/rcatd.out" 2>&1 &
rcatd_pid=$!
for _ in $(seq 1 100); do
    grep -q "rcatd listening" "$tmp/rcatd.out" && break
    sleep 0.05
done
compare "link $rate bit/s, $rtt ms RTT, $loss % loss, $MIB MiB" "ip netns exec $ns_cli" \
    "rcat://$srv_ip:7755/file.bin"
