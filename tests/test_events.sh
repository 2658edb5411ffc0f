#!/bin/bash
# test_events.sh - rcat's --json prints the library's transfer events
# (include/rpc2/event.h) as its callback delivered them, with real rcatd and
# rcat on loopback: after the run's INIT, each transfer the library began
# is exactly INIT SESSION [NOTIFICATION STATS*] [ERROR] STOP, in both
# directions, checked field by field (StartByte, EndByte, Size, FileBytes,
# Piggybacked, PacketSize, Window, Policy, Rate, Delay, Loss, ErrorCode,
# Checksum), with rcat's labels (SessionId, Host, Port, File, Destination,
# ArgIndex) and, on ERROR and STOP, rcat's outcome (Code, Error, Result);
# STATS come at the interval rcat asked for, none filtered out; each failure
# kind: the library's ERROR in rcat's words (a checksum that differs, a
# read-only server), rcat's own ERROR and STOP where the library began no
# transfer (not found); and a SIGINT or SIGTERM during a transfer cancels it
# at both ends: rcat exits 128+N, the library's ERROR says RPC2_ECANCELED,
# STOP's Result is INTERRUPTED, no temporary is left on either side, and
# rcatd's log names the cancel (RPC2_ECANCELED).
#
# Transfers are slowed with --rate so that they are surely running when
# signalled: the signal is sent once a STATS event says bytes moved. And
# -v prints a line per second of the figures STATS carries.
set -u
umask 022
export TZ=UTC LC_ALL=C
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_events.XXXXXX") || exit 1
. "${top_srcdir:-.}/tests/rcatd_lib.sh"

root="$tmp/root"
local_dir="$tmp/local"
mkdir -p "$root" "$local_dir"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$root/big"
head -c 300000 /dev/urandom >"$local_dir/mid"

# jfield FILE TYPE KEY [NTH]: KEY's value in the NTH (default last) event of TYPE.
jfield() {
    grep "\"Type\":\"$2\"" "$1" | { if [ -n "${4:-}" ]; then sed -n "${4}p"; else tail -n 1; fi; } |
        sed -n "s/.*\"$3\":\"\{0,1\}\([^,\"}]*\)\"\{0,1\}[,}].*/\1/p"
}
# jorder FILE: the events as letters, as test_rcat.sh spells them.
jorder() {
    sed -n 's/^{"Type":"\([A-Z]*\)".*/\1/p' "$1" |
        sed 's/^INIT$/I/;s/^SESSION$/S/;s/^NOTIFICATION$/N/;s/^STATS$/T/;s/^STOP$/P/;s/^ERROR$/E/;s/^LOG$/L/;s/^DONE$/D/' |
        tr -d '\n'
}

start_server ev "$rcatd" --listen 127.0.0.1:0 --root "$root" --writable
ev_port=$port
R="rcat://127.0.0.1:$port"

# jis FILE TYPE KEY WANT [NTH]: KEY of the NTH (default last) TYPE event is WANT.
jis() {
    local got
    got=$(jfield "$1" "$2" "$3" "${5:-}")
    [ "$got" = "$4" ] || fail "$(basename "$1") $2${5:+ $5} $3: '$got', want '$4'"
}
# jpos FILE TYPE KEY...: the fields are counts above 0.
jpos() {
    local f=$1 t=$2 k v
    shift 2
    for k in "$@"; do
        v=$(jfield "$f" "$t" "$k")
        [[ "$v" =~ ^[1-9][0-9]*$ ]] || fail "$(basename "$f") $t $k: '$v', want a count above 0"
    done
}
# transfer_fields FILE DIRECTION SIZE FILE DEST: what every event of the one
# transfer in FILE says: the same labels, the same range, bytes that only grow.
transfer_fields() {
    local f=$1.transfer sid last=0 b n t
    grep '"ArgIndex":' "$1" >"$f" # the run's INIT and DONE are rcat's, not the transfer's
    sid=$(jfield "$f" SESSION SessionId)
    echo "$sid" | grep -Eqx '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}' ||
        fail "$(basename "$f"): SessionId '$sid' is not a UUID"
    n=$(grep -c '"ArgIndex":1' "$f")
    for t in INIT SESSION NOTIFICATION STATS ERROR STOP; do
        for k in $(seq 1 "$(grep -c "\"Type\":\"$t\"" "$f")"); do
            jis "$f" "$t" SessionId "$sid" "$k"
            jis "$f" "$t" ArgIndex 1 "$k"
            [ "$t" = ERROR ] && continue # rcat's File there is the end that failed
            jis "$f" "$t" Direction "$2" "$k"
            jis "$f" "$t" File "$4" "$k"
            jis "$f" "$t" Destination "$5" "$k"
            jis "$f" "$t" StartByte 0 "$k"
            [ "$t" = STOP ] || jis "$f" "$t" Size "$3" "$k"
        done
    done
    [ "$n" -ge 3 ] || fail "$(basename "$f"): $n events with ArgIndex 1"
    for b in $(grep -E '"Type":"(INIT|SESSION|NOTIFICATION|STATS|STOP)"' "$f" | sed -n 's/.*"FileBytes":\([0-9]*\).*/\1/p'); do
        [ "$b" -ge "$last" ] && [ "$b" -le "$3" ] || fail "$(basename "$f"): FileBytes $b after $last (size $3)"
        last=$b
    done
    jis "$f" INIT FileBytes 0
    jis "$f" SESSION Host 127.0.0.1
    jis "$f" SESSION Port "$port"
    jis "$f" SESSION Piggybacked 0
    jpos "$f" NOTIFICATION PacketSize Window
    [ -n "$(jfield "$f" NOTIFICATION Policy)" ] || fail "$(basename "$f"): NOTIFICATION without a Policy"
}
# stats_interval FILE: consecutive STATS at least the 250 ms rcat asks the
# library for apart (the library's own bound: none is printed twice, none
# made up), and Elapsedusec only grows from INIT to STOP.
stats_interval() {
    local prev=-1 e
    for e in $(grep -E '"Type":"(INIT|SESSION|NOTIFICATION|STATS|STOP)".*"ArgIndex"' "$1" |
        sed -n 's/.*"Elapsedusec":\([0-9]*\).*/\1/p'); do
        [ "$e" -ge "$prev" ] || fail "$(basename "$1"): Elapsedusec $e after $prev"
        prev=$e
    done
    prev=-1
    for e in $(grep '"Type":"STATS"' "$1" | sed -n 's/.*"Elapsedusec":\([0-9]*\).*/\1/p'); do
        [ "$prev" -lt 0 ] || [ $((e - prev)) -ge 250000 ] || fail "$(basename "$1"): STATS $((e - prev)) us apart, want >= 250000"
        prev=$e
    done
}

# ---- fields from the library's events --------------------------------------------
echo "a fetch's events, from the library's"
run 0 "--json fetch" "$rcat" --json --rate 16M -o "$local_dir/big" "$R/big" || true
j="$tmp/fetch.json"
cp "$tmp/err" "$j"
same "$local_dir/big" "$root/big" "--json fetch"
order=$(jorder "$j")
[[ "$order" =~ ^IISNT+PD$ ]] || fail "--json fetch: events $order, want INIT (INIT SESSION NOTIFICATION STATS+ STOP) DONE"
transfer_fields "$j" Receive "$(stat -c %s "$root/big")" big "$local_dir/big"
stats_interval "$j"
jis "$j" NOTIFICATION Rate 16000000 # --rate 16M: the target the machines agreed on
jis "$j" STOP Code 0
jis "$j" STOP Result OK
jis "$j" STOP ChecksumType xxh128
if command -v xxhsum >/dev/null; then
    jis "$j" STOP Checksum "$(xxhsum -H2 "$root/big" | cut -d' ' -f1)"
fi
[ -z "$(jfield "$j" STOP ErrorCode)" ] || fail "a good fetch's STOP has an ErrorCode"
size=$(stat -c %s "$root/big")
[ "$(jfield "$j" STOP FileBytes)" = "$size" ] || fail "STOP FileBytes $(jfield "$j" STOP FileBytes), want $size"
[ "$(jfield "$j" STOP Size)" = "$size" ] || fail "STOP Size"
[ "$(jfield "$j" STOP StartByte)" = 0 ] || fail "STOP StartByte $(jfield "$j" STOP StartByte), want 0"
[ -z "$(jfield "$j" STOP EndByte)" ] || fail "STOP EndByte of a whole file: $(jfield "$j" STOP EndByte)"
[ "$(jfield "$j" STATS StartByte 1)" = 0 ] || fail "STATS StartByte"
for k in Rate Delay Loss FileBytes Elapsedusec; do
    v=$(jfield "$j" STATS "$k")
    [[ "$v" =~ ^[0-9]+$ ]] || fail "STATS $k is '$v', want a number"
done
last=0
for b in $(grep '"Type":"STATS"' "$j" | sed -n 's/.*"FileBytes":\([0-9]*\).*/\1/p'); do
    [ "$b" -ge "$last" ] && [ "$b" -le "$size" ] || fail "STATS FileBytes $b after $last (size $size)"
    last=$b
done

# -v: a line per second of the same figures, while the file moves (4 MiB at
# 16 Mbit/s: two seconds). The goodput it shows is what arrived that second:
# at most twice the cap, however the machine schedules the events.
echo "-v's line per second"
run 0 "-v fetch" "$rcat" -v --rate 16M -o "$tmp/big.v" "$R/big" || true
lines=$(grep -E '^rcat: big: [0-9]+\.[0-9] Mbit/s, [0-9.]+ [KM]iB moved, RTT [0-9.]+ ms( \(min [0-9]+ ms\))?, loss [0-9]+\.[0-9]{2} %, [0-9.]+ [KMG]?i?B resent$' "$tmp/err")
[ -n "$lines" ] || fail "-v fetch: no line per second on stderr: $(cat "$tmp/err")"
echo "$lines" | awk '{ if ($3 + 0 > 32) bad = 1 } END { exit bad }' ||
    fail "-v fetch: a second's goodput above twice the 16 Mbit/s cap: $lines"
same "$tmp/big.v" "$root/big" "-v fetch"
run 0 "fetch without -v" "$rcat" --rate 16M -o "$tmp/big.q" "$R/big" || true
! grep -q "Mbit/s" "$tmp/err" || fail "a fetch without -v printed lines per second: $(cat "$tmp/err")"

# a range of a store: StartByte and EndByte say it
run 0 "--json store of a range" "$rcat" --json --rate 16M --offset 1000 --length 200000 \
    --put "$local_dir/mid" "$R/ranged" || true
j="$tmp/store.json"
cp "$tmp/err" "$j"
[ "$(jfield "$j" STOP StartByte)" = 1000 ] || fail "store STOP StartByte $(jfield "$j" STOP StartByte), want 1000"
[ "$(jfield "$j" STOP EndByte)" = 200999 ] || fail "store STOP EndByte $(jfield "$j" STOP EndByte), want 200999"
[ "$(jfield "$j" STOP FileBytes)" = 200000 ] || fail "store STOP FileBytes"
tail -c +1001 "$local_dir/mid" | head -c 200000 | cmp -s - "$root/ranged" || fail "store of a range: bytes differ"
[[ "$(jorder "$j")" =~ ^IISNT*PD$ ]] || fail "--json store: events $(jorder "$j"), want INIT (INIT SESSION NOTIFICATION STATS* STOP) DONE"
for t in INIT SESSION NOTIFICATION; do
    jis "$j" "$t" StartByte 1000
    jis "$j" "$t" EndByte 200999
    jis "$j" "$t" Size 200000
done

echo "a store's events, from the library's"
run 0 "--json store" "$rcat" --json --rate 8M --put "$root/big" "$R/stored" || true
j="$tmp/store2.json"
cp "$tmp/err" "$j"
same "$root/big" "$root/stored" "--json store"
[[ "$(jorder "$j")" =~ ^IISNT+PD$ ]] || fail "--json store: events $(jorder "$j"), want INIT (INIT SESSION NOTIFICATION STATS+ STOP) DONE"
transfer_fields "$j" Send "$(stat -c %s "$root/big")" "$root/big" stored
stats_interval "$j"
jis "$j" NOTIFICATION Rate 8000000
jis "$j" STOP FileBytes "$(stat -c %s "$root/big")"
jis "$j" STOP Result OK
rm -f "$root/stored"

# ---- failures ------------------------------------------------------------------
echo "failures: the library's ERROR in rcat's words, or rcat's own"
# a sum that differs: the library's ERROR (RPC2_EINTEGRITY) with rcat's
# CHECKSUM_MISMATCH, and STOP with the sum of the bytes that came
run 5 "--json --check with a wrong sum" "$rcat" --json --check 00000000000000000000000000000000 \
    -o "$local_dir/checked" "$R/big" || true
j="$tmp/check.json"
cp "$tmp/err" "$j"
[[ "$(jorder "$j")" =~ ^IISNT*EPD$ ]] || fail "--check: events $(jorder "$j"), want INIT (INIT SESSION NOTIFICATION STATS* ERROR STOP) DONE"
transfer_fields "$j" Receive "$(stat -c %s "$root/big")" big "$local_dir/checked"
jis "$j" ERROR Code 5
jis "$j" ERROR Error CHECKSUM_MISMATCH
jis "$j" ERROR ErrorCode RPC2_EINTEGRITY
jis "$j" ERROR File big
jis "$j" STOP ErrorCode RPC2_EINTEGRITY
jis "$j" STOP Code 5
jis "$j" STOP Result CHECKSUM_MISMATCH
jis "$j" STOP FileBytes "$(stat -c %s "$root/big")"
if command -v xxhsum >/dev/null; then
    jis "$j" STOP Checksum "$(xxhsum -H2 "$root/big" | cut -d' ' -f1)"
fi
[ -e "$local_dir/checked" ] && fail "--check with a wrong sum kept the file"

# a read-only server refuses a store the library began: its ERROR, rcat's words
start_server ro "$rcatd" --listen 127.0.0.1:0 --root "$root"
run 3 "--json store to a read-only server" "$rcat" --json --put "$local_dir/mid" "rcat://127.0.0.1:$port/nope" || true
j="$tmp/ro.json"
cp "$tmp/err" "$j"
[ "$(jorder "$j")" = IIEPD ] || fail "read-only store: events $(jorder "$j"), want INIT (INIT ERROR STOP) DONE"
jis "$j" INIT Size 300000
jis "$j" INIT Direction Send
jis "$j" ERROR Code 3
jis "$j" ERROR Error RCAT_READ_ONLY
[[ "$(jfield "$j" ERROR ErrorCode)" =~ ^RPC2_E[A-Z0-9]+$ ]] || fail "read-only store: ERROR ErrorCode '$(jfield "$j" ERROR ErrorCode)'"
jis "$j" STOP Result RCAT_READ_ONLY
jis "$j" STOP FileBytes 0
stop_server ro
port=$ev_port

# not on the server: the library began no transfer: rcat's own ERROR and STOP
run 3 "--json fetch of a missing file" "$rcat" --json -o "$local_dir/none" "$R/missing" || true
j="$tmp/missing.json"
cp "$tmp/err" "$j"
[ "$(jorder "$j")" = IEPD ] || fail "missing: events $(jorder "$j"), want INIT ERROR STOP DONE"
jis "$j" ERROR Error RCAT_NOT_FOUND
[ -z "$(jfield "$j" ERROR ErrorCode)" ] || fail "missing: an ErrorCode where the library had no transfer"
jis "$j" STOP Result RCAT_NOT_FOUND

# ---- a signal cancels the transfer at both ends ------------------------------------
# interrupted SIG WHAT ARGS...: rcat --json ARGS, slowed, signalled once bytes moved.
interrupted() {
    local sig=$1 what=$2 n
    shift 2
    # a background job starts with SIGINT ignored, which rcat keeps: undo that
    spawn "$what" env --default-signal="$sig" "$rcat" --json --rate 8M "$@" 2>"$tmp/$what.err"
    await_log "$tmp/$what.err" '"Type":"STATS".*"FileBytes":[1-9]' 30 || fail "$what: no STATS with bytes"
    signal "$sig" "$what"
    await "$what" 30 || { fail "$what: still running 30 s after SIG$sig"; signal KILL "$what"; await "$what" 5; }
    n=$(kill -l "$sig")
    [ "$(status "$what")" = $((128 + n)) ] || fail "$what: exit status $(status "$what"), want $((128 + n))"
    [ "$(jfield "$tmp/$what.err" STOP Result)" = INTERRUPTED ] ||
        fail "$what: STOP Result '$(jfield "$tmp/$what.err" STOP Result)', want INTERRUPTED"
    [[ "$(jorder "$tmp/$what.err")" =~ ^IISNT+EPD$ ]] ||
        fail "$what: events $(jorder "$tmp/$what.err"), want INIT (INIT SESSION NOTIFICATION STATS+ ERROR STOP) DONE"
    jis "$tmp/$what.err" ERROR ErrorCode RPC2_ECANCELED
    jis "$tmp/$what.err" STOP ErrorCode RPC2_ECANCELED
    await_log "$tmp/ev.log" "RPC2_ECANCELED" 30 || { cat "$tmp/ev.log"; fail "$what: rcatd's log does not name the cancel"; }
    : >"$tmp/ev.log"
}

echo "SIGINT during a fetch"
interrupted INT fetch-int -o "$local_dir/copy" "$R/big"
[ -z "$(ls -A "$local_dir" | grep -v -x -e big -e mid)" ] || fail "fetch SIGINT left: $(ls -A "$local_dir")"

echo "SIGTERM during a store"
interrupted TERM store-term --put "$root/big" "$R/stored"
[ -z "$(ls -A "$root" | grep -v -x -e big -e ranged)" ] || fail "store SIGTERM left on the server: $(ls -A "$root")"

# the server is still serving
run 0 "a fetch after the cancels" "$rcat" -o "$local_dir/after" "$R/big" && same "$local_dir/after" "$root/big" "after"

stop_server ev
finish test_events
