#!/bin/bash
# test_resume.sh - rcat -C continues a transfer an earlier attempt left,
# with real rcatd and rcat on loopback, both directions:
# - the client killed (-9) at about 30 %, 60 % and 90 % of a 1 GiB file
#   (128 MiB with RPC2_TEST_SMALL=1; the partial's size is watched, the
#   first attempt slowed by --rate): the resumed file is byte-identical and
#   the bytes the resume moved (its --json STOP) are at most the bytes the
#   killed attempt had not written plus one restart interval;
# - the server killed (-9) mid-transfer and started again: resumed the same;
# - the source changed between the attempts: detected (StartedOver), the
#   result is the new version whole; with --resume-strict exit 6 and no file;
# - the restart-point file damaged or cut short: detected, started over;
# - a transfer already complete in its partial: nothing moves again.
# Servers start on port 0 and are tracked by PID; every wait is bounded.
set -u
umask 022
export TZ=UTC LC_ALL=C

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_resume.XXXXXX") || exit 1
. "${srcdir:-.}/tests/rcatd_lib.sh"

if [ "${RPC2_TEST_SMALL:-0}" = 1 ]; then
    mib=128
else
    mib=1024
fi
size=$((mib << 20))
interval_mib=$((mib / 32))
interval=$((interval_mib << 20))
rate="$((mib * 8 / 8))M" # bits/s: about 8 s for the whole file
root="$tmp/root"
cli="$tmp/cli"
mkdir -p "$root" "$cli"
head -c "$size" /dev/urandom >"$root/big" || fatal "cannot write the test file"
cp "$root/big" "$cli/src"
servers=0

# serve: a fresh rcatd on $root (port in $port, log in $tmp/$srv.log)
serve() {
    servers=$((servers + 1))
    srv="rcatd$servers"
    start_server "$srv" "$rcatd" --listen 127.0.0.1:0 --root "$root" --writable \
        --restart-interval "$interval_mib"
}

fsize() { stat -c %s "$1" 2>/dev/null || echo 0; }
field() { grep '"Type":"STOP"' "$2" | tail -1 | grep -o "\"$1\":[0-9]*" | cut -d: -f2; }

# interrupt NAME FILE PERCENT: waits until FILE (the partial) holds PERCENT
# of the file, then kills NAME with SIGKILL; prints the size it had.
interrupt() {
    local want=$((size / 100 * $3)) start=$SECONDS
    while running "$1" && [ "$(fsize "$2")" -lt "$want" ] && [ $((SECONDS - start)) -lt 120 ]; do
        sleep 0.02
    done
    local had
    had=$(fsize "$2")
    signal KILL "$1"
    await "$1" 10
    echo "$had"
}

# await_store_end N: rcatd's log holds N ended STOREs (a killed client's
# store ends when the server finds it gone; its partial stays locked until then).
await_store_end() {
    local start=$SECONDS
    while [ "$(grep -c ' STORE ' "$tmp/$srv.log")" -lt "$1" ] && [ $((SECONDS - start)) -lt 90 ]; do
        sleep 0.2
    done
}

# resumed WHAT HAD: the last run's STOP says it continued, and moved no
# more than the killed attempt left (size - had) plus one interval. The
# partial's size (had) also counts bytes the sink wrote past a gap, which no
# point can vouch for yet: up to a receive window's, allowed as slack.
slack=$((4 << 20))
resumed() {
    local start moved
    start=$(field StartByte "$tmp/err")
    moved=$(field FileBytes "$tmp/err")
    note "$1: killed at $2 B, continued from ${start:-?} B, moved ${moved:-?} B"
    [ -n "$start" ] && [ "$start" -gt 0 ] || fail "$1: did not continue (StartByte ${start:-none})"
    [ -n "$moved" ] && [ "$moved" -le $((size - $2 + interval + slack)) ] ||
        fail "$1: moved ${moved:-?} B, more than $((size - $2)) B left plus one interval (and $slack B)"
    [ -n "$moved" ] && [ -n "$start" ] && [ $((start + moved)) -eq "$size" ] ||
        fail "$1: StartByte + FileBytes is not the size"
    [ "$(field StartedOver "$tmp/err")" = 0 ] || fail "$1: said it started over"
}

started_over() {
    [ "$(field StartedOver "$tmp/err")" = 1 ] || fail "$1: did not say it started over"
    [ "$(field StartByte "$tmp/err")" = 0 ] || fail "$1: continued from a point it should not"
    [ "$(field FileBytes "$tmp/err")" = "$size" ] || fail "$1: did not move the whole file"
}

no_partials() {
    local left
    left=$(find "$1" -name '.*rcat-part*' | head -3)
    [ -z "$left" ] || fail "$2: partials left behind: $left"
}

serve
url="rcat://127.0.0.1:$port"

# ---- fetch: the client killed at 30, 60, 90 % ------------------------------------
for pct in 30 60 90; do
    rm -f "$cli/big"
    spawn fetch "$rcat" -C --restart-interval "$interval" --rate "$rate" -q -o "$cli/big" "$url/big"
    had=$(interrupt fetch "$cli/.big.rcat-part" "$pct")
    [ -e "$cli/big" ] && fail "fetch killed at $pct %: the name exists"
    [ -s "$cli/.big.rcat-part.rp" ] || fail "fetch killed at $pct %: no restart point kept"
    if run 0 "fetch resumed after $pct %" "$rcat" -C --json -o "$cli/big" "$url/big"; then
        same "$root/big" "$cli/big" "fetch resumed after $pct %"
        resumed "fetch, client killed at $pct %" "$had"
        no_partials "$cli" "fetch resumed after $pct %"
    fi
done

# ---- store: the client killed at 30, 60, 90 % ------------------------------------
stores=0
for pct in 30 60 90; do
    rm -f "$root/up"
    spawn put "$rcat" -C --rate "$rate" -q --put "$cli/src" "$url/up"
    had=$(interrupt put "$root/.up.rcat-part" "$pct")
    stores=$((stores + 1))
    await_store_end "$stores"
    [ -e "$root/up" ] && fail "store killed at $pct %: the name exists"
    if run 0 "store resumed after $pct %" "$rcat" -C --json --put "$cli/src" "$url/up"; then
        stores=$((stores + 1))
        same "$cli/src" "$root/up" "store resumed after $pct %"
        resumed "store, client killed at $pct %" "$had"
        logged=$(grep ' STORE up ' "$tmp/$srv.log" | tail -1 | awk '{for (i = 1; i < NF; i++) if ($(i + 1) == "B") print $i}')
        [ "$logged" = "$(field FileBytes "$tmp/err")" ] ||
            fail "store after $pct %: rcatd logged $logged B, rcat said $(field FileBytes "$tmp/err")"
        no_partials "$root" "store resumed after $pct %"
    fi
done

# ---- the server killed mid-transfer, started again -----------------------------
rm -f "$cli/big"
spawn fetch "$rcat" -C --restart-interval "$interval" --rate "$rate" --timeout 2s -q \
    -o "$cli/big" "$url/big"
want=$((size / 2))
start=$SECONDS
while running fetch && [ "$(fsize "$cli/.big.rcat-part")" -lt "$want" ] && [ $((SECONDS - start)) -lt 120 ]; do
    sleep 0.02
done
had=$(fsize "$cli/.big.rcat-part")
signal KILL "$srv"
await fetch 60 || fail "fetch did not end after its server was killed"
[ "$(status fetch)" = 2 ] || fail "fetch whose server was killed: exit $(status fetch), want 2"
serve
url="rcat://127.0.0.1:$port"
if run 0 "fetch resumed after the server was killed" "$rcat" -C --json -o "$cli/big" "$url/big"; then
    same "$root/big" "$cli/big" "fetch resumed after the server was killed"
    resumed "fetch, server killed" "$had"
fi

rm -f "$root/up"
spawn put "$rcat" -C --rate "$rate" --timeout 2s -q --put "$cli/src" "$url/up"
start=$SECONDS
while running put && [ "$(fsize "$root/.up.rcat-part")" -lt "$want" ] && [ $((SECONDS - start)) -lt 120 ]; do
    sleep 0.02
done
had=$(fsize "$root/.up.rcat-part")
signal KILL "$srv"
await put 60 || fail "store did not end after its server was killed"
[ "$(status put)" = 2 ] || fail "store whose server was killed: exit $(status put), want 2"
serve
url="rcat://127.0.0.1:$port"
if run 0 "store resumed after the server was killed" "$rcat" -C --json --put "$cli/src" "$url/up"; then
    same "$cli/src" "$root/up" "store resumed after the server was killed"
    resumed "store, server killed" "$had"
fi

# ---- an interrupted fetch, for the cases below ----------------------------------
interrupted_fetch() {
    rm -f "$cli/big"
    spawn fetch "$rcat" -C --restart-interval "$interval" --rate "$rate" -q -o "$cli/big" "$url/big"
    interrupt fetch "$cli/.big.rcat-part" 50 >/dev/null
    [ -s "$cli/.big.rcat-part.rp" ] || fail "$1: no restart point kept"
}

# The source changed between the attempts: never spliced.
interrupted_fetch "source changed"
printf 'changed' | dd of="$root/big" bs=1 seek=1000 conv=notrunc status=none
if run 6 "fetch --resume-strict of a changed source" "$rcat" -C --resume-strict --json \
    -o "$cli/big" "$url/big"; then
    said "fetch --resume-strict of a changed source" "RPC2_ECHANGED"
    [ -e "$cli/big" ] && fail "fetch --resume-strict of a changed source: the name exists"
fi
if run 0 "fetch of a changed source" "$rcat" -C --json -v -o "$cli/big" "$url/big"; then
    same "$root/big" "$cli/big" "fetch of a changed source"
    started_over "fetch of a changed source"
    said "fetch of a changed source" "starting over"
fi

interrupted_put() {
    rm -f "$root/up"
    spawn put "$rcat" -C --rate "$rate" -q --put "$cli/src" "$url/up"
    interrupt put "$root/.up.rcat-part" 50 >/dev/null
    stores=$(($(grep -c ' STORE ' "$tmp/$srv.log") + 1))
    await_store_end "$stores"
}
interrupted_put
printf 'changed' | dd of="$cli/src" bs=1 seek=1000 conv=notrunc status=none
if run 0 "store of a changed source" "$rcat" -C --json --put "$cli/src" "$url/up"; then
    same "$cli/src" "$root/up" "store of a changed source"
    started_over "store of a changed source"
fi

# A named checksum covers the whole file, the prefix an earlier attempt moved
# included: each end feeds its hasher the prefix it confirmed.
rm -f "$cli/big"
spawn fetch "$rcat" -C --restart-interval "$interval" --rate "$rate" -q -o "$cli/big" "$url/big"
had=$(interrupt fetch "$cli/.big.rcat-part" 50)
if run 0 "fetch resumed with --checksum sha256" "$rcat" -C --json --checksum sha256 \
    -o "$cli/big" "$url/big"; then
    same "$root/big" "$cli/big" "fetch resumed with --checksum sha256"
    resumed "fetch resumed with --checksum sha256" "$had"
    want=$(sha256sum <"$root/big" | cut -d' ' -f1)
    grep -q "\"Checksum\":\"$want\"" "$tmp/err" ||
        fail "fetch resumed with --checksum sha256: not sha256sum's $want: $(grep STOP "$tmp/err")"
fi
rm -f "$root/up"
spawn put "$rcat" -C --rate "$rate" -q --put "$cli/src" "$url/up"
had=$(interrupt put "$root/.up.rcat-part" 50)
await_store_end $(($(grep -c ' STORE ' "$tmp/$srv.log") + 1))
if run 0 "store resumed with --checksum md5" "$rcat" -C --json --checksum md5 \
    --put "$cli/src" "$url/up"; then
    same "$cli/src" "$root/up" "store resumed with --checksum md5"
    resumed "store resumed with --checksum md5" "$had"
    want=$(md5sum <"$cli/src" | cut -d' ' -f1)
    grep -q "\"Checksum\":\"$want\"" "$tmp/err" ||
        fail "store resumed with --checksum md5: not md5sum's $want: $(grep STOP "$tmp/err")"
fi

# The restart-point file damaged, or cut short: detected, started over.
interrupted_fetch "damaged restart points"
rp="$cli/.big.rcat-part.rp"
printf '\377' | dd of="$rp" bs=1 seek=$(($(fsize "$rp") - 30)) conv=notrunc status=none
if run 0 "fetch with damaged restart points" "$rcat" -C --json -v -o "$cli/big" "$url/big"; then
    same "$root/big" "$cli/big" "fetch with damaged restart points"
    started_over "fetch with damaged restart points"
    said "fetch with damaged restart points" "damaged"
fi
interrupted_fetch "truncated restart points"
truncate -s -7 "$cli/.big.rcat-part.rp"
if run 0 "fetch with truncated restart points" "$rcat" -C --json -o "$cli/big" "$url/big"; then
    same "$root/big" "$cli/big" "fetch with truncated restart points"
    started_over "fetch with truncated restart points"
fi
# The partial cut shorter than its restart point: the same.
interrupted_fetch "partial cut short"
truncate -s 1000 "$cli/.big.rcat-part"
if run 0 "fetch with a partial cut short" "$rcat" -C --json -o "$cli/big" "$url/big"; then
    same "$root/big" "$cli/big" "fetch with a partial cut short"
    started_over "fetch with a partial cut short"
fi

# ---- already complete: a partial whole, and its last point at the end ------------
# (what a crash between the last write and the rename leaves): nothing moves.
if command -v xxhsum >/dev/null; then
    rm -f "$cli/big"
    cp "$root/big" "$cli/.big.rcat-part"
    {
        printf 'RCRP\0\0\0\1'
        printf '%016x' "$size" | xxd -r -p
        xxhsum -H2 "$root/big" | cut -d' ' -f1 | xxd -r -p
    } >"$tmp/rec"
    { cat "$tmp/rec"; xxhsum -H1 <"$tmp/rec" | cut -d' ' -f1 | xxd -r -p; } >"$cli/.big.rcat-part.rp"
    if run 0 "fetch already complete" "$rcat" -C --json -o "$cli/big" "$url/big"; then
        same "$root/big" "$cli/big" "fetch already complete"
        [ "$(field StartByte "$tmp/err")" = "$size" ] || fail "fetch already complete: StartByte $(field StartByte "$tmp/err")"
        [ "$(field FileBytes "$tmp/err")" = 0 ] || fail "fetch already complete: moved $(field FileBytes "$tmp/err") B"
    fi
else
    note "xxhsum missing: the already-complete case was not run"
fi

# ---- without -C nothing is kept, and -C makes sense only for whole files ---------
run 1 "-C to standard output" "$rcat" -C "$url/big" && said "-C to standard output" "-C continues"
run 1 "-C with --length" "$rcat" -C --length 10 -o "$cli/x" "$url/big"

stop_server "$srv"
finish resume
