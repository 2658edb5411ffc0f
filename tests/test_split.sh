#!/bin/bash
# test_split.sh - rcat --split=N (issue 14) with real rcatd and rcat
# processes on loopback:
#  - a file of a few hundred MiB (sparse, with random blocks, so the
#    content is checked) fetched as 4 ranges at once: the copy is the file
#    (cmp), one STOP for the whole file, no temporary left; a small file is
#    fetched whole; -p keeps the mode and mtime;
#  - through faultproxy with loss, duplication and reordering: still the file;
#  - rcatd killed mid-run and started again on its port: the failed ranges
#    are fetched again and the copy is the file, or rcat fails and leaves
#    nothing under the name;
#  - the file changed on the server while its ranges move: refused (exit 6),
#    nothing under the name;
#  - bad --split values and combinations refused (exit 1). --put --split
#    is test_split_put.sh's.
# RPC2_TEST_SMALL=1 (sanitizer runs) makes the big file 64 MiB.
set -u
umask 022
export LC_ALL=C
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_split.XXXXXX") || exit 1
. "${top_srcdir:-.}/tests/rcatd_lib.sh"
proxy="${top_builddir:-.}/tests/faultproxy"

root="$tmp/root"
mkdir -p "$root"
mib=$([ -n "${RPC2_TEST_SMALL:-}" ] && echo 64 || echo 320)
# sparse, with random blocks at the start, inside and at the very end
truncate -s "${mib}M" "$root/big" || fatal "cannot make the file"
for at in 0 5 $((mib / 3)) $((mib / 2 + 1)) $((mib - 1)); do
    dd if=/dev/urandom of="$root/big" bs=1M count=1 seek="$at" conv=notrunc status=none
done
head -c 70000 /dev/urandom >"$root/small"
chmod 640 "$root/big"
touch -d '2021-03-04 05:06:07' "$root/big"

start_server split "$rcatd" --listen 127.0.0.1:0 --root "$root"
H=127.0.0.1
r="$tmp/rcat-p"
printf '#!/bin/sh\nexec "%s" -P "%s" "$@"\n' "$rcat" "$port" >"$r" && chmod +x "$r"
mkdir "$tmp/got"

leftovers() { ls -A "$tmp/got" | grep -v -x -e "$1" -e "$2" || true; }

# ---- the file in 4 ranges ----------------------------------------------------
if run 0 "--split=4" "$r" --split=4 -p -v --json -o "$tmp/got/big" "$H:big"; then
    same "$root/big" "$tmp/got/big" "--split=4"
    stops=$(grep -c '"Type":"STOP"' "$tmp/err")
    [ "$stops" = 1 ] || fail "--split=4: $stops STOP events, want one for the file"
    grep '"Type":"STOP"' "$tmp/err" | grep -q "\"FileBytes\":$((mib << 20))," ||
        fail "--split=4: the STOP does not count the whole file's bytes"
    grep -q '"Type":"STATS"' "$tmp/err" || note "(no STATS: the fetch was quicker than one)"
    [ "$(stat -c %a.%Y "$tmp/got/big")" = "$(stat -c %a.%Y "$root/big")" ] ||
        fail "--split=4 -p: mode or mtime not kept"
    [ -z "$(leftovers big small)" ] || fail "--split=4 left $(leftovers big small)"
    # four connections: four sessions in rcatd's log
    grep -q "ranges at once" "$tmp/err" || fail "--split=4 -v: no word of the ranges"
fi

if run 0 "--split on a small file" "$r" --split=8 -v -o "$tmp/got/small" "$H:small"; then
    same "$root/small" "$tmp/got/small" "--split on a small file"
    grep -q "ranges at once" "$tmp/err" && fail "a 70 kB file was split"
fi

if run 0 "--split to standard output" "$r" --split=4 "$H:big"; then
    same "$root/big" "$tmp/out" "--split to standard output"
fi

# ---- bad values and combinations ---------------------------------------------
for bad in 0 65 -1 abc 4x ""; do
    run 1 "--split='$bad'" "$r" --split="$bad" -o "$tmp/got/bad" "$H:big" &&
        said "--split='$bad'" "--split"
done
run 1 "--split -r" "$r" --split=4 -r "$H:big" "$tmp/got/tree"
run 1 "--split --offset" "$r" --split=4 --offset 10 -o "$tmp/got/bad" "$H:big"
run 1 "--split -C" "$r" --split=4 -C -o "$tmp/got/bad" "$H:big"
[ ! -e "$tmp/got/bad" ] || fail "a refused command wrote a file"

# ---- through a damaging link -------------------------------------------------
spawn proxy "$proxy" --server "127.0.0.1:$port" --seed 14 --loss 0.01 --dup 0.01 \
    --reorder 0.02,5 >"$tmp/proxy.out" 2>"$tmp/proxy.err"
pport=""
for _ in $(seq 1 100); do
    pport=$(sed -n 's/^faultproxy listening on \([0-9]*\)$/\1/p' "$tmp/proxy.out")
    [ -n "$pport" ] && break
    sleep 0.05
done
[ -n "$pport" ] || fatal "faultproxy did not start"
rm -f "$tmp/got/big"
if run 0 "--split=4 through loss" "$rcat" -P "$pport" --split=4 -o "$tmp/got/big" "$H:big"; then
    same "$root/big" "$tmp/got/big" "--split=4 through loss"
fi
signal TERM proxy
await proxy 10

# ---- the server killed and started again mid-run -------------------------------
# slow ranges (--rate per range: about 4 s each), so the kill lands while they move
rate="$((mib / 2))M"
rm -f "$tmp/got/big"
spawn fetch "$r" --split=4 -v --rate "$rate" --timeout 3 -o "$tmp/got/big" "$H:big" \
    >"$tmp/fetch.out" 2>"$tmp/fetch.err"
await_log "$tmp/fetch.err" "ranges at once" 20 || fail "the restart fetch did not start"
sleep 1
signal KILL split
await split 10
start_server split2 "$rcatd" --listen "127.0.0.1:$port" --root "$root"
if ! await fetch 120; then
    fail "rcat --split did not end after the server came back"
    signal KILL fetch
    await fetch 5
fi
rc=$(status fetch)
if [ "$rc" = 0 ]; then
    same "$root/big" "$tmp/got/big" "--split across a server restart"
    grep -q "fetching them again" "$tmp/fetch.err" ||
        note "(the restart fell between ranges: nothing was fetched again)"
else
    sed 's/^/    /' "$tmp/fetch.err" | tail -5
    [ ! -e "$tmp/got/big" ] || fail "a failed split fetch left a file under the name"
    fail "--split across a server restart: exit $rc"
fi
[ -z "$(leftovers big small)" ] || fail "the restart fetch left $(leftovers big small)"

# ---- the file changed while its ranges move ------------------------------------
rm -f "$tmp/got/big"
cp "$root/big" "$tmp/orig"
spawn changing "$r" --split=4 -v --rate "$rate" -o "$tmp/got/big" "$H:big" \
    >"$tmp/changing.out" 2>"$tmp/changing.err"
await_log "$tmp/changing.err" "ranges at once" 20 || fail "the changing fetch did not start"
sleep 1
# new bytes at each range's start, which every range has passed by now
q=$((mib / 4))
for at in 0 $q $((2 * q)) $((3 * q)); do
    dd if=/dev/urandom of="$root/big" bs=64k count=1 seek=$((at * 16)) conv=notrunc status=none
done
if ! await changing 120; then
    fail "rcat --split on a changing file did not end"
    signal KILL changing
    await changing 5
fi
rc=$(status changing)
[ "$rc" = 6 ] || { sed 's/^/    /' "$tmp/changing.err" | tail -5; fail "a file changed mid-split: exit $rc, want 6"; }
grep -q "changed" "$tmp/changing.err" || fail "a file changed mid-split: no word of the change"
[ ! -e "$tmp/got/big" ] || fail "a file changed mid-split was kept"
[ -z "$(leftovers big small)" ] || fail "the changed fetch left $(leftovers big small)"

stop_server split2
finish test_split
