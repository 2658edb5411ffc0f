#!/bin/bash
# test_checksum.sh - rcat --checksum and --check against real rcatd on
# loopback: the md5, sha1 and sha256 rcat reports (JSON STOP Checksum and
# ChecksumType, and -v) are what md5sum, sha1sum and sha256sum print, for
# 0 B, 1 B, a piggybacked file and a streamed one (1 GiB; 64 MiB with
# RPC2_TEST_SMALL=1), fetched and stored, and for a byte range; --check
# with a wrong sum exits 5 and leaves no target (fetch -o and store), with
# the right one (any case) exits 0.
set -u
umask 022
export TZ=UTC LC_ALL=C

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_checksum.XXXXXX") || exit 1
. "${top_srcdir:-.}/tests/rcatd_lib.sh"

for tool in md5sum sha1sum sha256sum; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done

root="$tmp/root"
mkdir -p "$root" "$tmp/local"
big_mib=1024
[ -n "${RPC2_TEST_SMALL:-}" ] && big_mib=64
: >"$root/zero"
printf 'x' >"$root/one"
head -c 3000 /dev/urandom >"$root/piggy"
head -c $((big_mib << 20)) /dev/urandom >"$root/big"
for f in zero one piggy big; do cp "$root/$f" "$tmp/local/$f"; done

start_server files "$rcatd" --listen 127.0.0.1:0 --root "$root" --writable
url="rcat://127.0.0.1:$port"

# json_sum FILE: "TYPE HEX" from the STOP event in FILE.
json_sum() {
    local line
    line=$(grep '"Type":"STOP"' "$1")
    printf '%s %s\n' "$(sed -n 's/.*"ChecksumType":"\([a-z0-9]*\)".*/\1/p' <<<"$line")" \
        "$(sed -n 's/.*"Checksum":"\([0-9a-f]*\)".*/\1/p' <<<"$line")"
}

# want TYPE FILE: the sum the coreutils tool prints for FILE's bytes.
want() { "${1}sum" <"$2" | cut -d' ' -f1; }

for f in zero one piggy big; do
    for t in md5 sha1 sha256; do
        rm -f "$tmp/got"
        if run 0 "fetch $f --checksum $t" "$rcat" --json --checksum "$t" -o "$tmp/got" "$url/$f"; then
            same "$root/$f" "$tmp/got" "fetch $f"
            [ "$(json_sum "$tmp/err")" = "$t $(want "$t" "$root/$f")" ] ||
                fail "fetch $f: STOP says '$(json_sum "$tmp/err")', ${t}sum says $(want "$t" "$root/$f")"
        fi
        rm -f "$root/up.$f"
        if run 0 "store $f --checksum $t" "$rcat" --json --checksum "$t" --put "$tmp/local/$f" "$url/up.$f"; then
            same "$tmp/local/$f" "$root/up.$f" "store $f"
            [ "$(json_sum "$tmp/err")" = "$t $(want "$t" "$tmp/local/$f")" ] ||
                fail "store $f: STOP says '$(json_sum "$tmp/err")', ${t}sum says $(want "$t" "$tmp/local/$f")"
        fi
    done
done
grep -q 'sum=sha256' "$tmp/files.log" || fail "rcatd's log names no sum type"

# The default is the transfer's own XXH3-128, reported as xxh128.
run 0 "fetch without --checksum" "$rcat" --json -o "$tmp/got" "$url/piggy" &&
    [ "$(json_sum "$tmp/err" | cut -d' ' -f1)" = xxh128 ] || fail "the default ChecksumType is not xxh128"

# -v says it in the human log.
run 0 "fetch -v" "$rcat" -v --checksum md5 -o "$tmp/got" "$url/piggy" &&
    said "-v shows the md5" "piggy: md5 $(want md5 "$root/piggy")"

# A byte range: the sum is of the bytes moved, both ways.
off=1000 len=$((3 << 20))
tail -c +$((off + 1)) "$root/big" | head -c $len >"$tmp/range"
if run 0 "fetch a range" "$rcat" --json --checksum sha256 --offset $off --length $len -o "$tmp/got" "$url/big"; then
    same "$tmp/range" "$tmp/got" "fetch a range"
    [ "$(json_sum "$tmp/err")" = "sha256 $(want sha256 "$tmp/range")" ] || fail "fetch a range: wrong sum"
fi
if run 0 "store a range" "$rcat" --json --checksum md5 --offset $off --length $len --put "$tmp/local/big" "$url/range"; then
    same "$tmp/range" "$root/range" "store a range"
    [ "$(json_sum "$tmp/err")" = "md5 $(want md5 "$tmp/range")" ] || fail "store a range: wrong sum"
fi

# --check: a wrong sum exits 5 and keeps nothing; the right one, in upper case, exits 0.
for f in piggy big; do
    right=$(want md5 "$root/$f")
    wrong=$(printf '%s' "$right" | tr '0-9a-f' '1-9a-f0')
    rm -f "$tmp/checked"
    run 5 "fetch $f --check wrong" "$rcat" --checksum md5 --check "$wrong" -o "$tmp/checked" "$url/$f" &&
        said "fetch $f --check wrong" "not the sum given with --check"
    [ -e "$tmp/checked" ] && fail "fetch $f --check wrong: the target was written"
    ls -A "$tmp" | grep -q '^\.checked' && fail "fetch $f --check wrong: a temporary was left"
    rm -f "$root/checked.$f"
    run 5 "store $f --check wrong" "$rcat" --checksum md5 --check "$wrong" --put "$tmp/local/$f" "$url/checked.$f"
    [ -e "$root/checked.$f" ] && fail "store $f --check wrong: the server kept the file"
    ls -A "$root" | grep -q '^\.checked' && fail "store $f --check wrong: a temporary was left"
    upper=$(printf '%s' "$right" | tr 'a-f' 'A-F')
    run 0 "fetch $f --check right" "$rcat" --checksum md5 --check "$upper" -o "$tmp/checked" "$url/$f" &&
        same "$root/$f" "$tmp/checked" "fetch $f --check right"
    run 0 "store $f --check right" "$rcat" --checksum md5 --check "$right" --put "$tmp/local/$f" "$url/checked.$f" &&
        same "$tmp/local/$f" "$root/checked.$f" "store $f --check right"
done
# --check alone means xxh128; a sum of the wrong length is a usage error.
if command -v xxhsum >/dev/null; then
    xxh=$(xxhsum -H2 <"$root/one" | cut -d' ' -f1)
    run 0 "--check with the default type" "$rcat" --json --check "$xxh" -o "$tmp/got" "$url/one" &&
        [ "$(json_sum "$tmp/err")" = "xxh128 $xxh" ] || fail "--check alone: not xxh128 $xxh"
else
    note "xxhsum not installed: --check's default type not compared"
fi
run 1 "--check too short" "$rcat" --checksum sha256 --check "$(want md5 "$root/one")" -o "$tmp/got" "$url/one" &&
    said "--check too short" "not as long as a sum of that type"
run 1 "--checksum unknown" "$rcat" --checksum crc32 -o "$tmp/got" "$url/one"

stop_server files
finish checksum
