#!/bin/bash
# test_tree_rate.sh - rcat -r --rate R is one rate for the whole run, however
# many lanes (-j): a tree of small files (each moves in one packet, which
# nothing paces) and a few files large enough to stream, fetched and stored
# with -j 8 through a rate far below loopback's. The run must take at least
# most of the time its bytes need at R: each lane at R, or the small files
# unpaced, would end in a fraction of it. Only a lower bound is checked (a
# loaded machine is slower, never faster), and the copies must be whole.
set -u
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_tree_rate.XXXXXX") || exit 1
. "${top_srcdir:-.}/tests/rcatd_lib.sh"

root="$tmp/root"
src="$root/src"
mkdir -p "$src/a" "$src/b"
# 48 small files of 16 KiB and 3 of 192 KiB (streamed, not piggybacked)
for i in $(seq 1 24); do
    head -c 16384 /dev/urandom >"$src/a/small$i"
    head -c 16384 /dev/urandom >"$src/b/small$i"
done
for i in 1 2 3; do head -c 196608 /dev/urandom >"$src/b/large$i"; done
bytes=$(find "$src" -type f -printf '%s\n' | awk '{s += $1} END {print s}')

start_server rate "$rcatd" --listen 127.0.0.1:0 --root "$root" --writable
rate_bits=4000000 # 4 Mbit/s: 500,000 bytes/s
need=$(awk -v b="$bytes" -v r="$rate_bits" 'BEGIN {printf "%.2f", b * 8 / r}')
note "$bytes bytes at $rate_bits bit/s: $need s"

now() { date +%s.%N; }
# timed WHAT CMD...: runs CMD (exit 0 wanted); its time must be at least
# 0.7 of what the bytes need at the rate
timed() {
    local what=$1 t0 took
    shift
    t0=$(now)
    run 0 "$what" "$@" || return 1
    took=$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}')
    note "$what: $took s"
    awk -v t="$took" -v n="$need" 'BEGIN {exit !(t >= 0.7 * n)}' ||
        fail "$what took $took s: faster than --rate allows ($need s for its bytes)"
}

echo "fetch with -j 8 --rate 4M"
timed "rcat -r -j 8 --rate" "$rcat" -P "$port" -r -j 8 --rate 4M "127.0.0.1:src/" "$tmp/got" &&
    { diff -r "$src" "$tmp/got" >/dev/null || fail "fetched tree differs"; }

echo "store with -j 8 --rate 4M"
timed "rcat -r --put -j 8 --rate" "$rcat" -P "$port" -r -j 8 --rate 4M --put "$src/" "127.0.0.1:put" &&
    { diff -r "$src" "$root/put" >/dev/null || fail "stored tree differs"; }

echo "without --rate the same fetch is not held back"
t0=$(now)
run 0 "rcat -r -j 8" "$rcat" -P "$port" -r -j 8 "127.0.0.1:src/" "$tmp/got2"
note "unpaced: $(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}') s"

stop_server rate
finish test_tree_rate
