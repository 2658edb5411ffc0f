#!/bin/sh
# test_multifetch.sh - examples/multifetch against a real rcatd on a free
# port of 127.0.0.1: ten files (small ones that ride in the reply, one of
# 2 MiB that streams) fetched at once over four connections of one
# context, each whole and with its INIT and STOP; a missing one among
# them makes it exit 1 while the others still come.
set -u
b="${top_builddir:-.}"
tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

fail() {
    echo "FAIL: $*"
    [ -f "$tmp/err" ] && cat "$tmp/err"
    exit 1
}

mkdir "$tmp/root" "$tmp/out" "$tmp/out2"
for i in 0 1 2 3 4 5 6 7 8; do head -c $((i * 3000 + 1)) /dev/urandom >"$tmp/root/f$i"; done
head -c 2097152 /dev/urandom >"$tmp/root/big"
"$b/rcat/rcatd" --root "$tmp/root" --listen 127.0.0.1:0 >"$tmp/rcatd.out" 2>"$tmp/rcatd.err" &
pid=$!
port=""
for _ in $(seq 1 100); do
    port=$(sed -n 's/^rcatd listening on \([0-9]*\)$/\1/p' "$tmp/rcatd.out")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || fail "rcatd did not start"
    sleep 0.05
done
[ -n "$port" ] || fail "rcatd did not start"

m="$b/examples/multifetch/multifetch"
timeout 60 "$m" 127.0.0.1 "$port" "$tmp/out" f0 f1 f2 big f3 f4 f5 f6 f7 f8 >"$tmp/events" 2>"$tmp/err" ||
    fail "multifetch exited $?"
for f in f0 f1 f2 f3 f4 f5 f6 f7 f8 big; do
    cmp -s "$tmp/root/$f" "$tmp/out/$f" || fail "$f: the copy differs"
    grep -q "^INIT $f\$" "$tmp/events" || fail "$f: no INIT"
    grep -q "^STOP $f .* ok\$" "$tmp/events" || fail "$f: no STOP ok"
done
grep -q "^STOP f1 3001 bytes (in the reply) ok" "$tmp/events" || fail "a small file did not ride in the reply"

timeout 60 "$m" 127.0.0.1 "$port" "$tmp/out2" f0 missing f1 >"$tmp/events" 2>"$tmp/err"
rc=$?
[ "$rc" -eq 1 ] || fail "a missing file: exit $rc, not 1"
cmp -s "$tmp/root/f1" "$tmp/out2/f1" || fail "the file after a missing one did not come"
kill -0 "$pid" 2>/dev/null || fail "rcatd died"
echo "PASS: multifetch fetched 10 files over 4 connections at once; a missing one refused"
