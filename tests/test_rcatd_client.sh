#!/bin/sh
# test_rcatd_client.sh - examples/rcatd_client, a program written against
# rcatd's interface as installed (<rpc2/rcat_proto.h>), against a real
# rcatd on a free port of 127.0.0.1: a file fetched whole and equal, a
# missing one refused with exit 1 and rcat_status 3 (RCAT_NOT_FOUND).
set -u
b="${top_builddir:-.}"
tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

fail() {
    echo "FAIL: $*"
    [ -f "$tmp/rcatd.err" ] && cat "$tmp/rcatd.err"
    exit 1
}

mkdir "$tmp/root"
head -c 300000 /dev/urandom >"$tmp/root/data.bin"
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

client="$b/examples/rcatd_client/rcatd_client"
"$client" 127.0.0.1 "$port" data.bin >"$tmp/copy" 2>"$tmp/client.err" ||
    fail "fetch: $(cat "$tmp/client.err")"
cmp "$tmp/root/data.bin" "$tmp/copy" || fail "the copy differs"
grep -q '^data.bin: 300000 bytes, mode 0' "$tmp/client.err" || fail "STAT: $(cat "$tmp/client.err")"

"$client" 127.0.0.1 "$port" missing >/dev/null 2>"$tmp/client.err"
rc=$?
[ "$rc" -eq 1 ] || fail "a missing file: exit $rc, not 1"
grep -q 'rcat_status 3' "$tmp/client.err" || fail "a missing file: $(cat "$tmp/client.err")"
kill -0 "$pid" 2>/dev/null || fail "rcatd died"
echo "PASS: rcatd_client fetched 300000 bytes, a missing file refused"
