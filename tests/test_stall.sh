#!/bin/bash
# test_stall.sh - no client can hold rcatd (issue 10), with real rcatd and
# rcat processes on loopback. Clients whose readers never drain
# (`rcat URL | sleep 60`) and clients whose store pipes stay silent
# (`sleep 60 | rcat --put - URL`) once took every worker: another user's
# `rcat --stat` then waited 30 s. Now:
#   - a fifth client's --stat answers within 3 s (the issue asks 1 s; 3x for
#     a shared machine) all the while, with 4 + 4 such clients and 4 workers,
#     and again with 100 such clients and --workers 2 (and a packet-memory
#     cap far below their windows: shared, not handed to the first few);
#   - each stalled transfer ends at --stall-timeout (3 s here; within 3x),
#     with an error on the client that says so, and leaves no temporary file;
#   - SIGTERM with stalled calls ends rcatd within --drain-time (3x), the
#     clients hearing that the server stopped.
# Servers start on port 0 and say "rcatd listening on PORT"; they are
# stopped by their PID. Checks go on after a failure; the test fails at the end.
set -u
umask 022
export LC_ALL=C

bin="${top_builddir:-.}/rcat"
rcat="$bin/rcat"
rcatd="$bin/rcatd"
[ -x "$rcat" ] && [ -x "$rcatd" ] || { echo "FAIL: $rcat or $rcatd not built"; exit 1; }

STALL=3 # --stall-timeout, seconds
DRAIN=2 # --drain-time, seconds
HOLD=90 # how long a stalled client's pipe stays stuck: far past its stall

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_stall.XXXXXX") || exit 1
mkdir "$tmp/bg" "$tmp/root"
# Background jobs: PID in bg/NAME.pid, status in bg/NAME.rc once it ends; a
# PID is signalled only while its .rc is missing (not reaped, not reused).
cleanup() {
    local f
    for f in "$tmp"/bg/*.pid; do # each job is a process group of its own (setsid)
        [ -e "$f" ] && [ ! -e "${f%.pid}.rc" ] && kill -9 -- "-$(cat "$f")" 2>/dev/null
    done
    wait
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

spawn() {
    local name=$1
    shift
    (
        setsid "$@" &
        echo $! >"$tmp/bg/$name.pid"
        wait $!
        echo $? >"$tmp/bg/$name.rc.new"
        mv "$tmp/bg/$name.rc.new" "$tmp/bg/$name.rc"
    ) &
}
running() { [ ! -e "$tmp/bg/$1.rc" ]; }
# A stalled client's rcat writes its status to $tmp/NAME.rcat as it ends.
rcat_running() { [ ! -e "$tmp/$1.rcat" ]; }
await_rcat() {
    local start=$SECONDS
    while rcat_running "$1" && [ $((SECONDS - start)) -lt "$2" ]; do sleep 0.1; done
    ! rcat_running "$1"
}
status() { cat "$tmp/bg/$1.rc"; }
await() {
    local start=$SECONDS
    while running "$1" && [ $((SECONDS - start)) -lt "$2" ]; do sleep 0.1; done
    ! running "$1"
}

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# start_server NAME ARGS...: sets port.
start_server() {
    local name=$1
    shift
    spawn "$name" "$rcatd" "$@" --log "$tmp/$name.log" >"$tmp/$name.out" 2>"$tmp/$name.err"
    port=""
    for _ in $(seq 1 200); do
        port=$(sed -n 's/^rcatd listening on \([0-9][0-9]*\)$/\1/p' "$tmp/$name.out" 2>/dev/null)
        [ -n "$port" ] && return 0
        sleep 0.05
    done
    cat "$tmp/$name.err" "$tmp/$name.log" 2>/dev/null
    echo "FAIL: rcatd $name did not start"
    exit 1
}

# A file far larger than a pipe and a window: sparse, so it costs nothing.
truncate -s 512M "$tmp/root/big"

# stalled_clients URL N: N readers that never drain and N stores whose pipe
# stays silent, as background jobs rN and sN (stderr in $tmp/rN.err ...).
stalled_clients() {
    local url=$1 n=$2 i
    for i in $(seq 1 "$n"); do
        rm -f "$tmp/r$i.rcat" "$tmp/s$i.rcat"
        spawn "r$i" sh -c '{ t=$(date +%s); "$1" "$2/big" 2>"$3.err"
            echo $? $(($(date +%s) - t)) >"$3.rcat"; } | sleep "$4"' \
            sh "$rcat" "$url" "$tmp/r$i" "$HOLD"
        spawn "s$i" sh -c 'sleep "$4" | { t=$(date +%s); "$1" --put - "$2/s'"$i"'" 2>"$3.err"
            echo $? $(($(date +%s) - t)) >"$3.rcat"; }' \
            sh "$rcat" "$url" "$tmp/s$i" "$HOLD"
    done
}

# A --stat on an idle server, in seconds (at least 1): on a loaded machine
# starting a process alone can take a while, and a bound must allow for it.
base_stat_s() {
    local t0 t1
    t0=$(date +%s%N)
    timeout 20 "$rcat" --stat "$1/big" >/dev/null 2>&1
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000000 + 1))
}

# stats_meanwhile URL SECONDS: --stat every 0.2 s for SECONDS; each must
# answer within 3 s (plus what one took before any client stalled: on a
# loaded machine starting a process alone can take that long).
stats_meanwhile() {
    local url=$1 secs=$2 start=$SECONDS n=0 slow=0 t0 t1 bound=$((3 + BASE))
    while [ $((SECONDS - start)) -lt "$secs" ]; do
        t0=$(date +%s%N)
        if ! timeout "$bound" "$rcat" --stat "$url/big" >/dev/null 2>"$tmp/stat.err"; then
            slow=$((slow + 1))
            echo "  --stat failed or took over $bound s: $(cat "$tmp/stat.err")"
        fi
        t1=$(date +%s%N)
        n=$((n + 1))
        echo "$(((t1 - t0) / 1000000))" >>"$tmp/stat_ms"
        sleep 0.2
    done
    [ "$slow" -eq 0 ] || fail "$slow of $n --stat calls did not answer within $bound s"
    echo "  $n --stat calls, slowest $(sort -n "$tmp/stat_ms" | tail -n 1) ms"
    rm -f "$tmp/stat_ms"
}

# judge_stalled N LOG: every stalled client ended with an error naming the
# stall; the server's log has each call ending RPC2_ESTALLED no sooner than
# STALL after its handler started, and each stall warning a silence between
# STALL and 3 x STALL seconds (the server's own clock, from the last byte
# moved: on a loaded machine 100 fetches still trickle bytes for seconds
# before their readers' windows are full, and that is progress, not a
# stall); no temporary file is left.
judge_stalled() {
    local n=$1 log=$2 i name ok=0 ms
    for i in $(seq 1 "$n"); do
        for name in "r$i" "s$i"; do
            if ! await_rcat "$name" $((3 * STALL + 30)); then
                fail "$name still running long past the stall timeout"
                continue
            fi
            read -r rc secs <"$tmp/$name.rcat"
            [ "$rc" != 0 ] || fail "$name succeeded"
            if grep -q "stall" "$tmp/$name.err"; then
                ok=$((ok + 1))
            else
                fail "$name ended without a stall error: $(cat "$tmp/$name.err")"
            fi
        done
    done
    echo "  $ok of $((2 * n)) stalled transfers ended with the stall error"
    grep -E " (FETCH big|STORE s[0-9]+) [0-9]+ B [0-9.]+ ms RPC2_ESTALLED$" "$log" |
        sed 's/.* B \([0-9]*\)\.[0-9]* ms .*/\1/' >"$tmp/stall_ms"
    [ "$(wc -l <"$tmp/stall_ms")" -eq $((2 * n)) ] ||
        fail "the log shows $(wc -l <"$tmp/stall_ms") calls ended by the stall, not $((2 * n))"
    while read -r ms; do
        [ "$ms" -ge $((STALL * 1000 - 100)) ] ||
            fail "a stalled call ended after $ms ms, before the stall timeout ($STALL s)"
    done <"$tmp/stall_ms"
    echo "  calls ended by the stall after $(sort -n "$tmp/stall_ms" | head -n 1) to $(sort -n "$tmp/stall_ms" | tail -n 1) ms"
    sed -n 's/.* stalled: no byte moved for \([0-9]*\)\.\([0-9]\) s .*/\1\2/p' "$log" >"$tmp/quiet_ds"
    [ "$(wc -l <"$tmp/quiet_ds")" -eq $((2 * n)) ] ||
        fail "the log has $(wc -l <"$tmp/quiet_ds") stall warnings, not $((2 * n))"
    while read -r ds; do
        [ "$ds" -ge $((STALL * 10 - 1)) ] && [ "$ds" -le $((3 * STALL * 10)) ] ||
            fail "a transfer was ended after $((ds / 10)).$((ds % 10)) s without progress, not at the stall timeout ($STALL s)"
    done <"$tmp/quiet_ds"
    echo "  ended after $(sort -n "$tmp/quiet_ds" | head -n 1 | sed 's/.$/.&/') to $(sort -n "$tmp/quiet_ds" | tail -n 1 | sed 's/.$/.&/') s without progress"
    if ls -A "$tmp/root" | grep -q '^\.'; then
        fail "temporary files left: $(ls -A "$tmp/root" | grep '^\.' | head -n 5 | tr '\n' ' ')"
    fi
}

# await_running NAME N SECONDS: waits until rcatd NAME runs N calls at once
# (its SIGUSR1 counters), so that what follows finds every client's call
# under way however long a loaded machine takes to start the processes.
await_running() {
    local name=$1 n=$2 start=$SECONDS now
    while [ $((SECONDS - start)) -lt "$3" ]; do
        kill -USR1 "$(cat "$tmp/bg/$name.pid")"
        sleep 0.2
        now=$(sed -n 's/.*rcatd: stats (SIGUSR1) .* requests_running=\([0-9]*\) .*/\1/p' \
            "$tmp/$name.log" | tail -n 1)
        [ "${now:-0}" -ge "$n" ] && return 0
    done
    fail "rcatd $name ran ${now:-no} calls after $3 s, not $n"
    return 1
}

stop_server() {
    local name=$1 bound=$2
    running "$name" || { fail "rcatd $name died (status $(status "$name"))"; return; }
    kill -TERM "$(cat "$tmp/bg/$name.pid")"
    if ! await "$name" "$bound"; then
        fail "rcatd $name did not stop within $bound s of SIGTERM"
        kill -KILL "$(cat "$tmp/bg/$name.pid")" 2>/dev/null
        await "$name" 10
    fi
}

# ---- 4 readers that never drain, 4 silent stores, 4 workers --------------------
echo "4 + 4 stalled clients, 4 workers, --stall-timeout $STALL"
start_server four --listen 127.0.0.1:0 --root "$tmp/root" --writable --workers 4 \
    --stall-timeout "$STALL"
U="rcat://127.0.0.1:$port"
BASE=$(base_stat_s "$U")
echo "  an idle --stat: under $BASE s"
stalled_clients "$U" 4
sleep 1 # the clients' processes start
stats_meanwhile "$U" $((STALL + 2))
judge_stalled 4 "$tmp/four.log"
grep -q "transfers_stalled\|stalled" "$tmp/four.log" || fail "rcatd's log says nothing of the stalls"
grep -c "RPC2_ESTALLED" "$tmp/four.log" | sed 's/^/  log lines with RPC2_ESTALLED: /'
stop_server four 10

# ---- 100 of them, 2 workers ----------------------------------------------------
# --memory-cap 32: the fetches' loopback windows (6 MiB each) would need
# 300 MiB; the cap is shared among them (every one runs, on a smaller
# window), where once the first five took it all and the rest were refused
# with RPC2_ELIMIT. Stores into files hold no packets.
echo "50 + 50 stalled clients, 2 workers, --memory-cap 32"
rm -f "$tmp"/bg/[rs][0-9]*
start_server hundred --listen 127.0.0.1:0 --root "$tmp/root" --writable --workers 2 \
    --stall-timeout "$STALL" --memory-cap 32
U="rcat://127.0.0.1:$port"
stalled_clients "$U" 50
sleep 3 # 200 processes start
stats_meanwhile "$U" $((STALL + 2))
judge_stalled 50 "$tmp/hundred.log"
stop_server hundred 10

# ---- a bounded stop ------------------------------------------------------------
echo "SIGTERM with 4 + 4 stalled calls, --drain-time $DRAIN"
rm -f "$tmp"/bg/[rs][0-9]*
start_server drain --listen 127.0.0.1:0 --root "$tmp/root" --writable --workers 4 \
    --drain-time "$DRAIN"
U="rcat://127.0.0.1:$port"
stalled_clients "$U" 4
await_running drain 8 60
stats_meanwhile "$U" 2 # and the transfers are well under way
t0=$SECONDS
stop_server drain $((3 * DRAIN + 2))
echo "  stopped after $((SECONDS - t0)) s"
running drain || [ "$(status drain)" = 0 ] || fail "rcatd drain stopped with status $(status drain)"
stopped=0
for i in 1 2 3 4; do
    for name in "r$i" "s$i"; do
        await_rcat "$name" 10 || { fail "$name still running after the server stopped"; continue; }
        grep -q "stopping" "$tmp/$name.err" && stopped=$((stopped + 1))
        read -r rc _ <"$tmp/$name.rcat"
        [ "$rc" = 2 ] || fail "$name: exit $rc when the server stopped, not 2 (server lost)"
    done
done
[ "$stopped" -eq 8 ] || fail "only $stopped of 8 clients heard that the server was stopping"
grep -q "ending their transfers" "$tmp/drain.log" || fail "rcatd's log does not say it ended the transfers"
ls -A "$tmp/root" | grep -q '^\.' && fail "temporary files left after the stop"

if [ "$failures" -gt 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all checks passed"
