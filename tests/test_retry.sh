#!/bin/bash
# test_retry.sh - rcat --retries against a real rcatd on loopback: the
# server killed (SIGKILL, or SIGTERM with no drain time) in the middle of a
# fetch and of a store slowed by --rate, then started again on the same
# port after a pause; rcat finishes with a byte-identical file, a RETR
# event per retry, exit 0. With --max-time and the server gone it ends with
# exit 2 within 3x the bound; an error a retry cannot cure (no such file)
# is not retried; bytes that went to standard output are not sent twice.
#
# Servers start on port 0 (the restart takes the same port) and are stopped
# by their PID; every wait is bounded; nothing asserts on time except the
# --max-time bound, at 3x.
set -u
umask 022
export TZ=UTC LC_ALL=C

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_retry.XXXXXX") || exit 1
. "${top_srcdir:-.}/tests/rcatd_lib.sh"

PAUSE=${RETRY_TEST_PAUSE:-4} # seconds the server stays away (the issue says 10)
root="$tmp/root"
mkdir -p "$root/in"
head -c $((16 * 1024 * 1024 + 333)) /dev/urandom >"$root/big"
head -c $((16 * 1024 * 1024 + 777)) /dev/urandom >"$tmp/local_big"

# bytes_seen FILE: the largest FileBytes of the STATS events in FILE.
bytes_seen() {
    sed -n 's/.*"Type":"STATS".*"FileBytes":\([0-9]*\).*/\1/p' "$1" | sort -n | tail -1
}

# await_bytes FILE N SECONDS: until a STATS event in FILE says N bytes moved.
await_bytes() {
    local start=$SECONDS b
    while [ $((SECONDS - start)) -lt "$3" ]; do
        b=$(bytes_seen "$1")
        [ -n "$b" ] && [ "$b" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# interrupted NAME SIG WHAT RCAT-ARGS...: rcat (as client NAME; @PORT@ in
# its arguments is the server's port) starts a
# slowed transfer, the server gets SIG once a few MB moved, comes back on
# the same port after PAUSE seconds; rcat must finish on its own, exit 0.
interrupted() {
    local name=$1 sig=$2 what=$3
    shift 3
    start_server "srv_$name" "$rcatd" --listen 127.0.0.1:0 --root "$root" --writable \
        --drain-time 0
    local p=$port a args=()
    for a in "$@"; do args+=("${a//@PORT@/$p}"); done
    spawn "$name" timeout 120 "$rcat" --json --no-progress --retries 5 --retry-interval 0.5s \
        --rate 40M "${args[@]}" 2>"$tmp/$name.json"
    if ! await_bytes "$tmp/$name.json" $((3 * 1024 * 1024)) 30; then
        fail "$what: no bytes moved within 30 s"
        return
    fi
    signal "$sig" "srv_$name"
    await "srv_$name" 20 || fail "$what: rcatd did not end on SIG$sig"
    sleep "$PAUSE"
    start_server "srv2_$name" "$rcatd" --listen "127.0.0.1:$p" --root "$root" --writable
    [ "$port" = "$p" ] || fail "$what: restarted on port $port, not $p"
    if ! await "$name" 90; then
        fail "$what: rcat did not finish within 90 s of the restart"
        stop_server "srv2_$name"
        return
    fi
    [ "$(status "$name")" = 0 ] || {
        grep -v STATS "$tmp/$name.json" | sed 's/^/    /' | head -20
        fail "$what: rcat exit status $(status "$name"), want 0"
    }
    grep -q '"Type":"RETR".*"Attempt":2,.*"Error":"RPC2_E[A-Z]*".*"Delayusec":500000' \
        "$tmp/$name.json" || fail "$what: no RETR event for attempt 2 with its error and delay"
    grep -q '"Type":"DONE".*"TransfersFailed":0,.*"Retries":[1-9].*"ExitCode":0' \
        "$tmp/$name.json" || fail "$what: DONE does not say the retries and success"
    stop_server "srv2_$name"
}

# ---- the server killed, then back ----------------------------------------

interrupted fetch_kill KILL "fetch, server SIGKILLed" "rcat://127.0.0.1:@PORT@/big" \
    -o "$tmp/fetched_kill" --restart-interval 1M
same "$root/big" "$tmp/fetched_kill" "fetch after SIGKILL"
# the retry continued from a restart point (one per MiB; the kill came after 3)
start=$(grep '"Type":"STOP"' "$tmp/fetch_kill.json" | tail -n 1 | sed -n 's/.*"StartByte":\([0-9]*\).*/\1/p')
[ "${start:-0}" -gt 0 ] ||
    fail "fetch after SIGKILL: the retry started over (StartByte ${start:-none}), not from a restart point"
ls -A "$tmp" | grep -q '^\.fetched_kill' && fail "fetch after SIGKILL: a temporary was left"

interrupted fetch_term TERM "fetch, server SIGTERMed" "rcat://127.0.0.1:@PORT@/big" \
    -o "$tmp/fetched_term"
same "$root/big" "$tmp/fetched_term" "fetch after SIGTERM"

interrupted store_kill KILL "store, server SIGKILLed" --put "$tmp/local_big" \
    "rcat://127.0.0.1:@PORT@/in/stored"
same "$tmp/local_big" "$root/in/stored" "store after SIGKILL"

# ---- --max-time with the server gone ---------------------------------------

start_server gone "$rcatd" --listen 127.0.0.1:0 --root "$root"
gone_port=$port
stop_server gone
t0=$(date +%s%N)
run 2 "--max-time 5s, server gone" "$rcat" --json --retries 1000 --retry-interval 0.2 \
    --max-time 5s "rcat://127.0.0.1:$gone_port/big" -o "$tmp/never"
took_ms=$((($(date +%s%N) - t0) / 1000000))
[ "$took_ms" -lt 15000 ] || fail "--max-time 5s: took $took_ms ms (bound: 3x 5 s)"
grep -q '"Type":"RETR"' "$tmp/err" || fail "--max-time 5s: no retry was made"
grep -q '"Type":"DONE".*"ExitCode":2' "$tmp/err" || fail "--max-time 5s: DONE does not say 2"
[ -e "$tmp/never" ] && fail "--max-time 5s: a file was left"

# text mode says each retry
run 2 "retries in text mode" "$rcat" --retries 2 --retry-interval 0.1 \
    "rcat://127.0.0.1:$gone_port/big" -o "$tmp/never"
said "retries in text mode" "RPC2_ECONNREFUSED: trying again in 0.1 s (attempt 2 of 3)"
said "retries in text mode" "trying again in 0.2 s (attempt 3 of 3)"

# a signal during a wait ends rcat at once, with its DONE event (SIGTERM:
# a background job of a script ignores SIGINT)
spawn waiting "$rcat" --json --retries 5 --retry-interval 60 "rcat://127.0.0.1:$gone_port/big" \
    -o "$tmp/never" 2>"$tmp/waiting.json"
if await_log "$tmp/waiting.json" '"Type":"RETR"' 20; then
    signal TERM waiting
    await waiting 20 || fail "SIGTERM during a wait: rcat did not end"
    [ "$(status waiting)" = 143 ] || fail "SIGTERM during a wait: exit $(status waiting), want 143"
    grep -q '"Type":"DONE".*"ExitCode":143' "$tmp/waiting.json" ||
        fail "SIGTERM during a wait: no DONE event"
else
    fail "no RETR event within 20 s"
fi

# ---- what a retry cannot cure --------------------------------------------

start_server final "$rcatd" --listen 127.0.0.1:0 --root "$root"
run 3 "missing file" "$rcat" --json --retries 5 --retry-interval 0.1 \
    "rcat://127.0.0.1:$port/missing" -o "$tmp/missing"
grep -q '"Type":"RETR"' "$tmp/err" && fail "missing file: retried"
run 3 "read-only server" "$rcat" --json --retries 5 --retry-interval 0.1 \
    --put "$tmp/local_big" "rcat://127.0.0.1:$port/x"
grep -q '"Type":"RETR"' "$tmp/err" && fail "read-only server: retried"
run 1 "--retries -1" "$rcat" --retries -1 "rcat://127.0.0.1:$port/big"
run 1 "--retry-interval 0" "$rcat" --retry-interval 0 "rcat://127.0.0.1:$port/big"
run 0 "--retry-interval 1m accepted" "$rcat" --retries 1 --retry-interval 1m \
    "rcat://127.0.0.1:$port/big" -o "$tmp/units"
same "$root/big" "$tmp/units" "fetch with --retry-interval 1m"
stop_server final

# ---- bytes already written to standard output are not sent twice -------------

start_server stream "$rcatd" --listen 127.0.0.1:0 --root "$root" --drain-time 0
spawn stdout_fetch timeout 60 "$rcat" --json --retries 3 --retry-interval 0.2 --rate 40M \
    "rcat://127.0.0.1:$port/big" >"$tmp/streamed" 2>"$tmp/stdout.json"
if await_bytes "$tmp/stdout.json" $((2 * 1024 * 1024)) 30; then
    signal KILL stream
    await stdout_fetch 60 || fail "stdout fetch: rcat did not end"
    [ "$(status stdout_fetch)" = 2 ] || fail "stdout fetch: exit $(status stdout_fetch), want 2"
    grep -q '"Type":"RETR"' "$tmp/stdout.json" && fail "stdout fetch: retried after bytes were written"
else
    fail "stdout fetch: no bytes moved within 30 s"
fi

finish retry
