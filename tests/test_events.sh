#!/bin/bash
# test_events.sh - rcat's --json STATS and STOP come from the library's
# transfer events (include/rpc2/event.h), with real rcatd and rcat on
# loopback: the fields the library names (StartByte, EndByte, Size,
# FileBytes, Rate, Delay, Loss) are there and agree with what moved, in both
# directions; and a SIGINT or SIGTERM during a transfer cancels it at both
# ends: rcat exits 128+N with STOP's Result INTERRUPTED, no temporary is
# left on either side, and rcatd's log names the cancel (RPC2_ECANCELED).
#
# Transfers are slowed with --rate so that they are surely running when
# signalled: the signal is sent once a STATS event says bytes moved.
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
        sed 's/^INIT$/I/;s/^SESSION$/S/;s/^STATS$/T/;s/^STOP$/P/;s/^ERROR$/E/;s/^LOG$/L/;s/^DONE$/D/' |
        tr -d '\n'
}

start_server ev "$rcatd" --listen 127.0.0.1:0 --root "$root" --writable
R="rcat://127.0.0.1:$port"

# ---- fields from the library's events --------------------------------------------
echo "STATS and STOP from the library's events"
run 0 "--json fetch" "$rcat" --json --rate 16M -o "$local_dir/big" "$R/big" || true
j="$tmp/fetch.json"
cp "$tmp/err" "$j"
same "$local_dir/big" "$root/big" "--json fetch"
order=$(jorder "$j")
[[ "$order" =~ ^IST+PD$ ]] || fail "--json fetch: events $order, want INIT SESSION STATS+ STOP DONE"
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

# a range of a store: StartByte and EndByte say it
run 0 "--json store of a range" "$rcat" --json --rate 16M --offset 1000 --length 200000 \
    --put "$local_dir/mid" "$R/ranged" || true
j="$tmp/store.json"
cp "$tmp/err" "$j"
[ "$(jfield "$j" STOP StartByte)" = 1000 ] || fail "store STOP StartByte $(jfield "$j" STOP StartByte), want 1000"
[ "$(jfield "$j" STOP EndByte)" = 200999 ] || fail "store STOP EndByte $(jfield "$j" STOP EndByte), want 200999"
[ "$(jfield "$j" STOP FileBytes)" = 200000 ] || fail "store STOP FileBytes"
tail -c +1001 "$local_dir/mid" | head -c 200000 | cmp -s - "$root/ranged" || fail "store of a range: bytes differ"

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
