#!/bin/bash
# test_multifetch.sh - examples/multifetch against a real rcatd on a free
# port of 127.0.0.1: ten files (small ones that ride in the reply, one of
# 2 MiB that streams) fetched at once over four connections of one
# context, each whole and with its INIT and STOP; a missing one among
# them makes it exit 1 while the others still come.
set -u
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_multifetch.XXXXXX") || exit 1
. "${top_srcdir:-.}/tests/rcatd_lib.sh"

mkdir "$tmp/root" "$tmp/copies" "$tmp/copies2"
for i in 0 1 2 3 4 5 6 7 8; do head -c $((i * 3000 + 1)) /dev/urandom >"$tmp/root/f$i"; done
head -c 2097152 /dev/urandom >"$tmp/root/big"
start_server m "$rcatd" --root "$tmp/root" --listen 127.0.0.1:0

m="${top_builddir:-.}/examples/multifetch/multifetch"
run 0 "multifetch of ten files" "$m" 127.0.0.1 "$port" "$tmp/copies" f0 f1 f2 big f3 f4 f5 f6 f7 f8
cp "$tmp/out" "$tmp/events"
for f in f0 f1 f2 f3 f4 f5 f6 f7 f8 big; do
    cmp -s "$tmp/root/$f" "$tmp/copies/$f" || fail "$f: the copy differs"
    grep -q "^INIT $f\$" "$tmp/events" || fail "$f: no INIT"
    grep -q "^STOP $f .* ok\$" "$tmp/events" || fail "$f: no STOP ok"
done
grep -q "^STOP f1 3001 bytes (in the reply) ok" "$tmp/events" || fail "a small file did not ride in the reply"

run 1 "multifetch with a missing file" "$m" 127.0.0.1 "$port" "$tmp/copies2" f0 missing f1
cmp -s "$tmp/root/f1" "$tmp/copies2/f1" || fail "the file after a missing one did not come"
stop_server m
finish test_multifetch
