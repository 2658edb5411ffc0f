#!/bin/bash
# test_split_put.sh - rcat --put --split=N and --rate as one total over
# lanes (issues 14 and 11), with real rcatd and rcat processes on loopback:
#  - a file of a few MiB of random bytes stored as 3 ranges at once arrives
#    byte-identical, one STORE_RANGE line per range in rcatd's log, no
#    temporary left; -p keeps the mode and mtime;
#  - while a slow put runs, the final name is either absent or the whole
#    file, never part of it; the run takes at least 0.7 of size/--rate
#    (one rate for all its lanes: a lower bound only);
#  - rcat killed mid-put leaves nothing under the final name, and rcatd
#    removes its temporary once no call used it for --split-idle, while a
#    live put's temporary beside it stays and its put succeeds;
#  - the server makes the temporary (SPLIT_BEGIN, no STORE of it) and puts
#    it in place (SPLIT_END);
#  - a file changed here while its ranges move is refused (exit 6) and
#    nothing is stored; -n onto an existing name is refused and the name
#    keeps its file;
#  - a read-only identity is refused (exit 3), and so are bad ranges sent
#    straight to STORE_RANGE (tests/remote_raw when built);
#  - a live rate change (--rate-control) reaches a running rcat -r: its
#    transfers in flight and the later ones move at the new total rate;
#  - a server older than SPLIT_BEGIN (tests/oldsrv --upto 15) gets the file
#    in one stream, said once with -v, and it arrives whole.
set -u
umask 022
export LC_ALL=C
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_split_put.XXXXXX") || exit 1
. "${top_srcdir:-.}/tests/rcatd_lib.sh"

root="$tmp/root"
keys="$tmp/keys"
mkdir -p "$root/in" "$root/etc" "$keys" "$tmp/src"
head -c $((12 << 20)) /dev/urandom >"$tmp/src/file"
chmod 640 "$tmp/src/file"
touch -d '2022-01-02 03:04:05' "$tmp/src/file"
size=$(stat -c %s "$tmp/src/file")

for who in alice bob; do
    (umask 077 && "$rcat" --genkey >"$keys/$who.key") || fatal "rcat --genkey"
done
(umask 077 && for who in alice bob; do echo "$who $(cat "$keys/$who.key")"; done >"$root/etc/server.keys")
printf '%s\n' "alice rl ." "bob rwld in" >"$root/etc/access"
as() { echo --identity "$1" --key-file "$keys/$1.key"; }
start_server sp "$rcatd" --listen 127.0.0.1:0 --root "$root" --keys "$root/etc/server.keys" \
    --access "$root/etc/access"
H=127.0.0.1
r="$tmp/r"
printf '#!/bin/sh\nexec "%s" -P "%s" $(echo "%s") "$@"\n' "$rcat" "$port" "$(as bob)" >"$r" && chmod +x "$r"

leftovers() { ls -A "$root/in" | grep -v -x -e "$1" || true; }
now() { date +%s.%N; }

# ---- the file in ranges --------------------------------------------------------
echo "  --put --split"
if run 0 "--put --split=4" "$r" --split=4 -p -v --put "$tmp/src/file" "$H:file"; then
    same "$tmp/src/file" "$root/in/file" "--put --split=4"
    [ "$(stat -c %a.%Y "$root/in/file")" = "$(stat -c %a.%Y "$tmp/src/file")" ] ||
        fail "--put --split=4 -p: mode or mtime not kept"
    grep -q "3 ranges at once" "$tmp/err" || fail "--put --split=4 -v: no word of 3 ranges"
    # bob's paths are beneath his root, in/
    n=$(grep -c " bob .* STORE_RANGE \.file\.rcat-split-[0-9a-f]\{8\} 4194304 B .* ok$" "$tmp/sp.log")
    [ "$n" = 3 ] || fail "--put --split=4: $n STORE_RANGE lines of 4 MiB in the log, want 3"
    # the server made the temporary (no STORE of an empty file) and put it in place
    grep -qE " SPLIT_BEGIN file 0 B .* ok temporary=\.file\.rcat-split-[0-9a-f]{8}$" "$tmp/sp.log" ||
        fail "--put --split: no SPLIT_BEGIN in the log"
    grep -q " STORE \.file\.rcat-split" "$tmp/sp.log" && fail "--put --split: a STORE of the temporary"
    grep -qE " SPLIT_END \.file\.rcat-split-[0-9a-f]{8} 0 B .* ok .*to=file$" "$tmp/sp.log" ||
        fail "--put --split: no SPLIT_END into place in the log"
    [ -z "$(leftovers file)" ] || fail "--put --split left $(leftovers file)"
fi

# ---- slow: never partial under the name; one total rate --------------------------
echo "  --rate over the ranges, the name only ever whole"
rm -f "$root/in/file"
rate=40M # bit/s: 5 MB/s for the whole put, 2.5 s for 12 MiB
t0=$(now)
spawn slow "$r" --split=4 --rate "$rate" --put "$tmp/src/file" "$H:file" >"$tmp/slow.out" 2>"$tmp/slow.err"
seen_partial=0 seen_whole=0
while running slow; do
    if [ -e "$root/in/file" ]; then
        if cmp -s "$tmp/src/file" "$root/in/file"; then seen_whole=1; else seen_partial=1; fi
    fi
    sleep 0.02
done
t1=$(now)
[ "$(status slow)" = 0 ] || { sed 's/^/    /' "$tmp/slow.err"; fail "slow --put --split: exit $(status slow)"; }
same "$tmp/src/file" "$root/in/file" "slow --put --split"
[ "$seen_partial" = 0 ] || fail "a part of the file was seen under its final name"
awk -v a="$t0" -v b="$t1" -v s="$size" 'BEGIN { want = 0.7 * s / 5e6; got = b - a;
    if (got < want) { printf "took %.2f s, want at least %.2f s\n", got, want; exit 1 } }' ||
    fail "--split=4 --rate $rate: the lanes together went faster than the rate"

# ---- killed mid-put: nothing under the name ----------------------------------------
echo "  killed mid-put"
rm -f "$root/in/file"
spawn killed "$r" --split=4 --rate 8M -v --put "$tmp/src/file" "$H:file" >"$tmp/killed.out" 2>"$tmp/killed.err"
await_log "$tmp/sp.log" " SPLIT_BEGIN file .* ok" 20 || fail "the killed put did not start"
sleep 0.5
signal KILL killed
await killed 10
[ ! -e "$root/in/file" ] || fail "rcat killed mid-put left a file under the name"
rm -f "$root/in"/.file.rcat-split-*

# ---- killed mid-put: the server removes its temporary, never a live one ---------------
# rcatd --split-idle 2s: a temporary no call has used for 2 s is its gone
# client's; a slow live put (ranges in flight all along) keeps its own
echo "  the temporary of a killed put goes, a live one stays"
sp_port=$port
start_server idle "$rcatd" --listen 127.0.0.1:0 --root "$root" --keys "$root/etc/server.keys" \
    --access "$root/etc/access" --split-idle 2s --idle-timeout 3s --stall-timeout 3s
ri="$tmp/ri"
printf '#!/bin/sh\nexec "%s" -P "%s" $(echo "%s") "$@"\n' "$rcat" "$port" "$(as bob)" >"$ri" && chmod +x "$ri"
mkdir -p "$root/in/k" "$root/in/l"
spawn gone "$ri" --split=3 --rate 8M --put "$tmp/src/file" "$H:k/file" >"$tmp/gone.out" 2>"$tmp/gone.err"
await_log "$tmp/idle.log" " SPLIT_BEGIN k/file .* ok" 20 || fail "the put to kill did not start"
# 12 MiB at 0.5 MB/s: about 25 s, far longer than the idle bound
spawn live "$ri" --split=3 --rate 4M --put "$tmp/src/file" "$H:l/file" >"$tmp/live.out" 2>"$tmp/live.err"
await_log "$tmp/idle.log" " SPLIT_BEGIN l/file .* ok" 20 || fail "the live put did not start"
sleep 1 # ranges in flight
signal KILL gone
killed_at=$SECONDS
await gone 10
ls -A "$root/in/k" | grep -q "^\.file\.rcat-split-" || fail "the killed put had no temporary to remove"
# its ranges end once the server hears nothing (--stall-timeout 3s, the
# dead-peer silence), then 2 s idle, a sweep each 0.5 s: generous bound, 60 s
gone_at=""
for _ in $(seq 600); do
    ls -A "$root/in/k" | grep -q rcat-split || { gone_at=$SECONDS; break; }
    sleep 0.1
done
[ -n "$gone_at" ] || fail "the killed put's temporary was not removed within 60 s"
echo "    removed $((gone_at - killed_at)) s after the kill"
await_log "$tmp/idle.log" "removed the split temporary \.file\.rcat-split-[0-9a-f]*: no call" 5 ||
    fail "the removal was not logged"
if running live; then
    ls -A "$root/in/l" | grep -q "^\.file\.rcat-split-" || fail "the live put's temporary was removed"
else
    echo "    (the live put ended before the killed one's temporary went: not judged)"
fi
if ! await live 90; then
    fail "the live put did not end"
    signal KILL live
    await live 5
fi
[ "$(status live)" = 0 ] || { sed 's/^/    /' "$tmp/live.err" | tail -5; fail "the live put beside a sweep failed: exit $(status live)"; }
same "$tmp/src/file" "$root/in/l/file" "the live put beside a sweep"
[ -z "$(ls -A "$root/in/l" | grep -v -x file)" ] || fail "the live put left $(ls -A "$root/in/l")"
stop_server idle
port=$sp_port
rm -rf "$root/in/k" "$root/in/l"

# ---- changed here while its ranges move ----------------------------------------------
echo "  changed locally"
cp "$tmp/src/file" "$tmp/src/changing"
spawn changing "$r" --split=4 --rate 16M -v --put "$tmp/src/changing" "$H:changing" \
    >"$tmp/changing.out" 2>"$tmp/changing.err"
await_log "$tmp/changing.err" "ranges at once" 20 || fail "the changing put did not start"
sleep 0.5
dd if=/dev/urandom of="$tmp/src/changing" bs=64k count=1 seek=1 conv=notrunc status=none
if ! await changing 60; then
    fail "a put of a changing file did not end"
    signal KILL changing
    await changing 5
fi
[ "$(status changing)" = 6 ] || { sed 's/^/    /' "$tmp/changing.err" | tail -5; fail "a file changed mid-put: exit $(status changing), want 6"; }
grep -q "changed here" "$tmp/changing.err" || fail "a file changed mid-put: no word of the change"
[ ! -e "$root/in/changing" ] || fail "a file changed mid-put was stored"
[ -z "$(leftovers file)" ] || fail "the changed put left $(leftovers file)"

# ---- -n, rights -------------------------------------------------------------------------
echo "  -n and rights"
echo "keep me" >"$root/in/taken"
run 3 "--put --split -n onto a name" "$r" --split=2 -n --put "$tmp/src/file" "$H:taken" &&
    said "--put --split -n" "already exists"
grep -q " STORE_RANGE \.taken" "$tmp/sp.log" && fail "--split -n moved the file before refusing it"
[ "$(cat "$root/in/taken")" = "keep me" ] || fail "--split -n replaced an existing file"
[ -z "$(leftovers file | grep -v -x taken)" ] || fail "the -n put left $(leftovers file)"
run 3 "--put --split as a read-only identity" "$rcat" -P "$port" $(as alice) --split=2 \
    --put "$tmp/src/file" "$H:in/alice" && said "read-only --put --split" "read-only"
[ -z "$(ls -A "$root/in" | grep alice)" ] || fail "a read-only identity left a file"

raw="${top_builddir:-.}/tests/range_raw"
if [ -x "$raw" ]; then
    mkdir -p "$root/raw/in/d"
    printf abcdefgh >"$root/raw/in/f"
    start_server rw "$rcatd" --listen 127.0.0.1:0 --root "$root/raw" --writable
    "$raw" "$port" || fail "range_raw: bad ranges not refused as they should be"
    got=$(cat "$root/raw/in/f")
    case "$got" in
    aBCDe??h) ;;
    *) fail "STORE_RANGE wrote outside its range: in/f is now '$got'" ;;
    esac
    [ ! -e "$root/raw/in/none" ] || fail "STORE_RANGE created a file"
    [ -z "$(ls -A "$root/raw/in" | grep -v -x -e f -e d)" ] ||
        fail "refused SPLIT_BEGIN/SPLIT_END calls left $(ls -A "$root/raw/in")"
    grep -qE " STORE_RANGE in/f 3 B .* ok$" "$tmp/rw.log" || fail "log: no STORE_RANGE line"
    grep -qE " STORE_RANGE in/f 0 B .* RPC2_EINVAL$" "$tmp/rw.log" || fail "log: no refused STORE_RANGE line"
    stop_server rw
else
    fail "$raw not built"
fi

# ---- a live rate change reaches every lane of rcat -r --------------------------------------
echo "  --rate-control and rcat -r"
mkdir -p "$root/in/tree"
head -c $((3 << 20)) /dev/urandom >"$root/in/tree/a"
head -c $((1 << 20)) /dev/urandom >"$root/in/tree/b"
fifo="$tmp/rate.fifo"
mkfifo "$fifo"
# a streams at once, b starts later (the start pacing at the total rate)
t0=$(now)
spawn tree "$r" -r -j 2 --rate 16M --rate-control "$fifo" "$H:tree" "$tmp/tree" \
    >"$tmp/tree.out" 2>"$tmp/tree.err"
sleep 0.5
tc=$(now)
echo "rate 4M" | timeout 10 tee "$fifo" >/dev/null || fail "cannot write to the control FIFO"
ta=""
while running tree; do
    [ -z "$ta" ] && [ -e "$tmp/tree/a" ] && ta=$(now) # renamed into place once whole
    sleep 0.02
done
t1=$(now)
[ -n "$ta" ] || ta=$t1
[ "$(status tree)" = 0 ] || { sed 's/^/    /' "$tmp/tree.err" | tail -5; fail "rcat -r --rate-control: exit $(status tree)"; }
for f in a b; do same "$root/in/tree/$f" "$tmp/tree/$f" "rcat -r --rate-control: $f"; done
# by the change at most 2 MB/s (and half again, and a window's burst) had
# moved; the rest moves at 0.5 MB/s: at least 0.7 of that time, for a
# (in flight at the change) and for the run (b started after it)
least() { # SINCE-START CHANGE-AT BYTES
    awk -v a="$t0" -v c="$tc" -v b="$1" -v s="$2" 'BEGIN {
        moved = 1.5 * 2e6 * (c - a) + 262144; left = s - moved; if (left < 0) left = 0;
        want = (c - a) + 0.7 * left / 0.5e6; got = b - a;
        if (got < want) { printf "    took %.2f s, want at least %.2f s\n", got, want; exit 1 } }'
}
least "$ta" $((3 << 20)) || fail "rcat -r: the live rate change did not reach the transfer in flight"
least "$t1" $((4 << 20)) || fail "rcat -r: the live rate change did not reach the later transfer"

stop_server sp

# ---- a server without SPLIT_BEGIN ----------------------------------------------
echo "  --put --split to a server older than SPLIT_BEGIN"
oldsrv="${top_builddir:-.}/tests/oldsrv"
[ -x "$oldsrv" ] || fatal "$oldsrv not built"
mkdir -p "$tmp/oldroot"
start_server old "$oldsrv" --root "$tmp/oldroot" --upto 15 --writable 1
if run 0 "--put --split=4 to an older server" "$rcat" -P "$port" --split=4 -v --put "$tmp/src/file" \
    "$H:file"; then
    same "$tmp/src/file" "$tmp/oldroot/file" "--put --split=4 to an older server"
    grep -q "no SPLIT_BEGIN.*one stream instead" "$tmp/err" ||
        fail "--put --split=4 to an older server: no word of one stream"
fi
grep -q "SPLIT_BEGIN\|STORE_RANGE" "$tmp/old.log" && fail "the older server was sent ranges"
grep -q " STORE file .* ok$" "$tmp/old.log" || fail "the older server logged no STORE of the file"
[ -z "$(ls -A "$tmp/oldroot" | grep -v -x file)" ] || fail "the older server's root holds leftovers"
stop_server old
finish test_split_put
