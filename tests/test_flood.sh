#!/bin/bash
# test_flood.sh - rcatd under attack: a real server on loopback takes a
# flood of hostile datagrams (tests/flood: random bytes, truncated and forged
# headers with and without a valid check, foreign versions, bad lengths and
# flags, forged cookies, binds that never follow up) while 20 rcat clients
# fetch files of a few MiB over and over. Every fetch must come out
# byte-identical, the server must stay under a memory cap, and its logged
# counters must show the rejects by reason.
#
# Then a second server, with cookies always required, takes 10,000 binds
# from 1,000 addresses (127.x.y.z; Linux routes all of 127/8 to lo): its
# connection count must not grow at all. A third, with the default policy,
# takes the same: its connections stop at the half-open budget.
#
# 1,000,000 datagrams in the first part, 100,000 with RPC2_TEST_SMALL=1
# (sanitizer and valgrind runs). Nothing asserts on time; every wait is
# bounded. The figures are printed. Programs are found under
# ${top_builddir:-.} (make check sets top_builddir).
set -u
export LC_ALL=C

top="${top_builddir:-.}"
rcat="$top/rcat/rcat"
rcatd="$top/rcat/rcatd"
flood="$top/tests/flood"
for p in "$rcat" "$rcatd" "$flood"; do
    [ -x "$p" ] || { echo "FAIL: $p not built"; exit 1; }
done

if [ "${RPC2_TEST_SMALL:-0}" = 1 ]; then
    count=100000
    rss_cap_mb=512 # sanitizers keep freed memory in quarantine; valgrind has its own
else
    count=1000000
    rss_cap_mb=64
fi
clients=20
binds=10000
sources=1000
cookie_budget=1024 # rcatd's default --cookie-threshold

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_flood.XXXXXX") || exit 1
pids=""
cleanup() {
    local p
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
fatal() {
    echo "FAIL: $*"
    exit 1
}

# start_server NAME ARGS...: rcatd on a free loopback port, logging to
# $tmp/NAME.log; sets port and pid.
start_server() {
    local name=$1
    shift
    "$rcatd" --listen 127.0.0.1:0 --root "$tmp/root" --log "$tmp/$name.log" "$@" \
        >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pid=$!
    pids="$pids $pid"
    port=""
    for _ in $(seq 1 200); do
        port=$(sed -n 's/^rcatd listening on \([0-9][0-9]*\)$/\1/p' "$tmp/$name.out")
        [ -n "$port" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    cat "$tmp/$name.err" "$tmp/$name.log" 2>/dev/null
    fatal "rcatd $name did not start"
}

# stats NAME PID: asks for the counters (SIGUSR1) and waits for the line;
# leaves it in $tmp/NAME.stats.
stats() {
    local name=$1 pid=$2 before
    before=$(grep -c 'rcatd: stats' "$tmp/$name.log")
    kill -USR1 "$pid" || fatal "rcatd $name is gone"
    for _ in $(seq 1 100); do
        [ "$(grep -c 'rcatd: stats' "$tmp/$name.log")" -gt "$before" ] && break
        sleep 0.05
    done
    grep 'rcatd: stats' "$tmp/$name.log" | tail -1 >"$tmp/$name.stats"
    [ -s "$tmp/$name.stats" ] || fatal "rcatd $name logged no counters"
}

# counter NAME KEY: a value from the last stats line.
counter() {
    sed -n "s/.* $2=\([0-9][0-9]*\).*/\1/p" "$tmp/$1.stats"
}

# stop NAME PID: SIGTERM must stop it cleanly (status 0) within 40 s.
stop() {
    local name=$1 pid=$2 rc
    kill -TERM "$pid" 2>/dev/null || { fail "rcatd $name died"; return; }
    for _ in $(seq 1 400); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && { kill -9 "$pid"; fail "rcatd $name did not stop"; }
    wait "$pid"
    rc=$?
    [ "$rc" = 0 ] || fail "rcatd $name exited with status $rc"
}

# peak_rss_kb PID: the most memory the process ever had resident.
peak_rss_kb() {
    sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"
}

# ---- the files -----------------------------------------------------------------
mkdir -p "$tmp/root" "$tmp/got"
for i in 0 1 2 3 4; do
    head -c $(((2 + i) * 1024 * 1024 + i * 4099)) /dev/urandom >"$tmp/root/f$i" ||
        fatal "cannot make test files"
done

# ---- 1. a flood of hostile datagrams while 20 clients fetch ----------------------
echo "part 1: $count hostile datagrams against rcatd while $clients clients fetch"
start_server d1
d1=$pid

"$flood" --to "127.0.0.1:$port" --count "$count" --seed 7 >"$tmp/flood1.out" 2>&1 &
flood_pid=$!
pids="$pids $flood_pid"

# Each client fetches until the flood is over (at least once), checking
# every copy; it records one line per fetch.
client() {
    local c=$1 n=0 f rc
    while :; do
        f=$(((c + n) % 5))
        timeout 120 "$rcat" -o "$tmp/got/c$c" "rcat://127.0.0.1:$port/f$f" 2>"$tmp/got/c$c.err"
        rc=$?
        if [ "$rc" != 0 ]; then
            echo "fail $c $f rc=$rc $(head -c 300 "$tmp/got/c$c.err")"
        elif cmp -s "$tmp/got/c$c" "$tmp/root/f$f"; then
            echo "ok $c $f"
        else
            echo "differ $c $f"
        fi
        n=$((n + 1))
        kill -0 "$flood_pid" 2>/dev/null || break
    done
}
start=$SECONDS
client_pids=""
for c in $(seq 1 "$clients"); do
    client "$c" >"$tmp/client$c.out" &
    client_pids="$client_pids $!"
done
pids="$pids $client_pids"
wait "$flood_pid" || fail "the flooder failed: $(cat "$tmp/flood1.out")"
for p in $client_pids; do wait "$p"; done
secs=$((SECONDS - start))
cat "$tmp/flood1.out"

fetches=$(cat "$tmp"/client*.out | grep -c '^ok')
bad=$(cat "$tmp"/client*.out | grep -v '^ok')
[ -z "$bad" ] && [ "$fetches" -ge "$clients" ] ||
    fail "fetches under the flood: $fetches good; $(echo "$bad" | head -5)"
mib=$(cat "$tmp"/client*.out | awk '/^ok/ {n += 2 + $3} END {print n}')
echo "  $fetches fetches by $clients clients during the flood ($mib MiB and more), all byte-identical, in ${secs}s"

stats d1 "$d1"
rss=$(peak_rss_kb "$d1")
echo "  rcatd peak RSS: $((rss / 1024)) MiB (cap $rss_cap_mb MiB)"
[ "$rss" -lt $((rss_cap_mb * 1024)) ] || fail "rcatd's RSS reached $rss kB, over $rss_cap_mb MiB"
echo "  rcatd counters:$(sed 's/.*rcatd: stats ([A-Z0-9]*)//' "$tmp/d1.stats")"
for k in rejected_short rejected_version rejected_type rejected_length rejected_flags \
    rejected_check rejected_unknown_conn binds_cookie_missing binds_cookie_bad cookies_sent; do
    v=$(counter d1 "$k")
    [ -n "$v" ] && [ "$v" -gt 0 ] || fail "rcatd's $k is '$v' after the flood"
done
# The flood's binds never follow up: they stop at the half-open budget. (A
# fetch whose UNBIND was lost in the flood leaves its connection to expire.)
half_open=$(counter d1 connections_half_open)
conns=$(counter d1 connections)
[ "$half_open" -le "$cookie_budget" ] ||
    fail "rcatd holds $half_open half-open connections: the budget is $cookie_budget"
[ "$conns" -le $((cookie_budget + fetches)) ] ||
    fail "rcatd holds $conns connections after $fetches fetches and a budget of $cookie_budget"
sent_bytes=$(sed -n 's/.*datagrams, \([0-9]*\) bytes,.*/\1/p' "$tmp/flood1.out")
answer_bytes=$(sed -n 's/.*answers [0-9]*, \([0-9]*\) bytes.*/\1/p' "$tmp/flood1.out")
[ "$answer_bytes" -le "$sent_bytes" ] ||
    fail "rcatd answered $answer_bytes bytes to $sent_bytes: an amplifier"
stop d1 "$d1"
grep -q 'rcatd: stats (exit)' "$tmp/d1.log" || fail "rcatd logged no counters at exit"

# ---- 2. binds from many addresses, cookies always required -------------------------
echo "part 2: $binds binds from $sources addresses, cookies required"
start_server d2 --cookie-threshold 0
d2=$pid
"$flood" --to "127.0.0.1:$port" --binds --count "$binds" --sources "$sources" --seed 8 \
    >"$tmp/flood2.out" 2>&1 || fail "the flooder failed: $(cat "$tmp/flood2.out")"
cat "$tmp/flood2.out"
stats d2 "$d2"
conns=$(counter d2 connections)
missing=$(counter d2 binds_cookie_missing)
echo "  rcatd: connections=$conns binds_cookie_missing=$missing cookies_sent=$(counter d2 cookies_sent) rx_dropped=$(counter d2 rx_dropped)"
[ "$conns" = 0 ] || fail "with cookies required, $binds forged binds left $conns connections"
[ "$missing" -gt 0 ] || fail "no bind was asked for a cookie"
# An honest client still gets in (two round trips).
timeout 60 "$rcat" -o "$tmp/got/after2" "rcat://127.0.0.1:$port/f0" &&
    cmp -s "$tmp/got/after2" "$tmp/root/f0" || fail "a fetch after the bind flood failed"
stop d2 "$d2"

# ---- 3. the same with the default policy ----------------------------------------------
echo "part 3: $binds binds from $sources addresses, default policy (cookies past $cookie_budget half-open)"
start_server d3
d3=$pid
"$flood" --to "127.0.0.1:$port" --binds --count "$binds" --sources "$sources" --seed 9 \
    >"$tmp/flood3.out" 2>&1 || fail "the flooder failed: $(cat "$tmp/flood3.out")"
cat "$tmp/flood3.out"
stats d3 "$d3"
conns=$(counter d3 connections)
echo "  rcatd: connections=$conns connections_half_open=$(counter d3 connections_half_open) binds_cookie_missing=$(counter d3 binds_cookie_missing)"
[ "$conns" -le "$cookie_budget" ] || fail "$conns connections: over the half-open budget $cookie_budget"
# Both halves of the policy were met: binds taken at once up to the budget
# (not refused outright), and cookies asked for once it was reached. The
# flood's binds are ten times the budget, so each half must show.
accepted=$(counter d3 binds_accepted)
missing=$(counter d3 binds_cookie_missing)
[ "$accepted" -ge "$((cookie_budget / 2))" ] ||
    fail "default policy: only $accepted of $binds binds accepted below the budget $cookie_budget"
[ "$missing" -gt 0 ] && [ "$(counter d3 cookies_sent)" -gt 0 ] ||
    fail "default policy: no bind was asked for a cookie once the budget was reached ($missing)"
timeout 60 "$rcat" -o "$tmp/got/after3" "rcat://127.0.0.1:$port/f1" &&
    cmp -s "$tmp/got/after3" "$tmp/root/f1" || fail "a fetch after the bind flood failed"
stop d3 "$d3"

if [ "$failures" -gt 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "PASS"
