#!/bin/bash
# test_batch.sh - rcat -r fetches small files several to a call
# (RCAT_FETCH_BATCH), with real rcatd and rcat processes on loopback:
#  - a tree of many small files, a file too large for a batch, a large one
#    and an empty one is copied whole (diff -r), the small ones through
#    FETCH_BATCH (one server log line each), the large ones by FETCH;
#  - a file the server may not read fails alone (its own error, exit 3,
#    no copy, no temporary left) while the files of its batch are copied;
#  - a file removed between the listing and its batch's call fails alone
#    (not found), the others of its batch are copied;
#  - FETCH_BATCH sent by hand (tests/batch_raw.c): a good file, a missing
#    one, a directory, one outside the root and an unreadable one in one
#    call each get their own status, the good ones their bytes in order;
#    more paths or path bytes than the call's bounds are refused whole;
#  - with one client stopped (SIGSTOP) and one killed in the middle of
#    their batches, a third is served the whole tree and a --stat at once;
#    the stopped one, resumed, ends with the whole tree too;
#  - a server without FETCH_BATCH (tests/oldsrv: rcatd's code before it)
#    is fetched from file by file, silently: exit 0, the same copy.
# A reply whose lengths do not add up is refused by rcat before it writes
# anything: tests/test_fetch_batch.c.
set -u
umask 022
export TZ=UTC LC_ALL=C
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_batch.XXXXXX") || exit 1
. "${top_srcdir:-.}/tests/rcatd_lib.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 makes the tree"; exit 77; }
oldsrv="${top_builddir:-.}/tests/oldsrv"
[ -x "$oldsrv" ] || fatal "$oldsrv not built"

root="$tmp/root"
mkdir -p "$root"
python3 - "$root" <<'PY'
import os, random, sys
random.seed(18)
top = sys.argv[1]
def put(path, size):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(os.urandom(size))
for d in range(5):                                     # the tree: many small files
    for i in range(60):
        put(os.path.join(top, "src", "d%d" % d, "f%03d" % i), random.randint(1, 16 * 1024))
put(os.path.join(top, "src", "d1", "empty"), 0)
put(os.path.join(top, "src", "d2", "alone-40k"), 40 * 1024)  # too large for a batch
put(os.path.join(top, "src", "d3", "big"), 3 << 20)          # streamed
put(os.path.join(top, "src", "d2", "secret"), 5000)           # made unreadable below
for i in range(40):                                    # removed while the run goes on
    put(os.path.join(top, "late", "a", "f%03d" % i), 8 * 1024)
for n in ("x1", "x2", "victim", "x3"):
    put(os.path.join(top, "late", "z", n), 3000)
os.makedirs(os.path.join(top, "raw", "d"))             # for batch_raw
for n, text in (("a", b"alpha"), ("b", b"bravo!"), ("secret", b"s")):
    with open(os.path.join(top, "raw", n), "wb") as f:
        f.write(text)
PY
chmod 000 "$root/src/d2/secret" "$root/raw/secret"

# The server may not read the secret: as root, it runs without the
# capabilities that let root read anything. (Not as nobody: nobody may not
# reach a build in a private directory, as CI's of the tarball is.)
server=("$rcatd")
if [ "$(id -u)" = 0 ]; then
    command -v setpriv >/dev/null || { echo "SKIP: no setpriv to limit rcatd's rights"; exit 77; }
    server=(setpriv --bounding-set -dac_override,-dac_read_search "$rcatd")
fi
start_server batch "${server[@]}" --listen 127.0.0.1:0 --root "$root"
r="$tmp/r"
printf '#!/bin/sh\nexec "%s" -P "%s" "$@"\n' "$rcat" "$port" >"$r" && chmod +x "$r"
small=$(find "$root/src" -type f -size -17k ! -name secret | wc -l)

echo "a tree of small files, one the server may not read"
if run 3 "rcat -r with an unreadable file" "$r" -r -j 8 --json 127.0.0.1:src/ "$tmp/got"; then
    said "the unreadable file's error" "d2/secret"
    said "the unreadable file's error" "permission denied on server"
    diff -r -x secret "$root/src" "$tmp/got" >"$tmp/diff" 2>&1 || { head "$tmp/diff"; fail "the copy differs"; }
    [ -e "$tmp/got/d2/secret" ] && fail "the unreadable file has a copy"
    find "$tmp/got" -name '*.rcat-*' | grep -q . && fail "a temporary was left behind"
    [ "$(grep -c '"Type":"STOP"' "$tmp/err")" = "$(find "$root/src" -type f | wc -l)" ] ||
        fail "not one STOP per file: $(grep -c '"Type":"STOP"' "$tmp/err")"
fi
# one line per file, FETCH_BATCH for the small ones, FETCH for the others
await_log "$tmp/batch.log" " FETCH src/d3/big " 10 || fail "the large file was not fetched alone"
batched=$(grep -c ' FETCH_BATCH src/.* ok$' "$tmp/batch.log")
[ "$batched" = "$small" ] || fail "$batched small files fetched in batches, want $small"
grep -q ' FETCH_BATCH src/d2/secret .*RCAT_PERMISSION' "$tmp/batch.log" ||
    fail "the server's log has no line for the unreadable file"
grep -q ' FETCH src/d2/alone-40k ' "$tmp/batch.log" || fail "the 40 KiB file did not go alone"
# a batch's lines are written at once, each still a line of its own with its time
bad=$(grep -c -v '^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T[0-9:]\{8\}Z ' "$tmp/batch.log")
[ "$bad" = 0 ] || fail "$bad lines of the server's log without their time"

echo "FETCH_BATCH as another client sends it: each path's own outcome, the bounds"
"${top_builddir:-.}/tests/batch_raw" "$port" || fail "batch_raw: a batch not answered as it should be"

echo "a file removed between the listing and its batch"
# paced (--rate), the run lists everything first and reaches z/ seconds
# after a/ began: the victim goes once the first file of a/ is in place
spawn late "$r" -r -j 2 --rate 1m 127.0.0.1:late/ "$tmp/late" >"$tmp/late.out" 2>"$tmp/late.err"
for _ in $(seq 1 200); do
    [ -n "$(ls "$tmp/late/a" 2>/dev/null)" ] && break
    sleep 0.05
done
rm -f "$root/late/z/victim"
await late 60 || fail "the paced run did not end"
[ "$(status late)" = 3 ] || { cat "$tmp/late.err"; fail "removed file: exit $(status late), want 3"; }
grep -q 'z/victim' "$tmp/late.err" && grep -q 'not found on server' "$tmp/late.err" ||
    { cat "$tmp/late.err"; fail "removed file: no error of its own"; }
for n in x1 x2 x3; do same "$root/late/z/$n" "$tmp/late/z/$n" "z/$n beside the removed file"; done
[ -e "$tmp/late/z/victim" ] && fail "the removed file has a copy"
diff -r "$root/late/a" "$tmp/late/a" >/dev/null 2>&1 || fail "late/a differs"

echo "one client stopped and one killed in the middle of their batches: a third served whole"
# paced, so that both are mid-run when the signals come
spawn stopped "$r" -r -j 8 --rate 10m 127.0.0.1:src/ "$tmp/stopped" >/dev/null 2>"$tmp/stopped.err"
spawn killed "$r" -r -j 8 --rate 10m 127.0.0.1:src/ "$tmp/killed" >/dev/null 2>&1
for _ in $(seq 1 200); do
    [ -n "$(find "$tmp/stopped" "$tmp/killed" -type f 2>/dev/null | head -1)" ] && break
    sleep 0.05
done
signal STOP stopped
signal KILL killed
if run 3 "rcat -r beside a stopped and a killed client" "$r" -r -j 8 127.0.0.1:src/ "$tmp/third"; then
    diff -r -x secret "$root/src" "$tmp/third" >/dev/null 2>&1 || fail "the third client's copy differs"
fi
run 0 "rcat --stat beside a stopped client" "$r" --stat 127.0.0.1:src/d3/big
signal CONT stopped
await stopped 120 || fail "the stopped client did not end once resumed"
[ "$(status stopped)" = 3 ] || { cat "$tmp/stopped.err"; fail "the resumed client: exit $(status stopped), want 3"; }
diff -r -x secret "$root/src" "$tmp/stopped" >/dev/null 2>&1 || fail "the resumed client's copy differs"
stop_server batch

echo "a server without FETCH_BATCH: file by file"
chmod 644 "$root/src/d2/secret"
start_server old "$oldsrv" --root "$root"
if run 0 "rcat -r from an older server" "$rcat" -P "$port" -r -j 8 127.0.0.1:src/ "$tmp/old"; then
    diff -r "$root/src" "$tmp/old" >"$tmp/diff" 2>&1 || { head "$tmp/diff"; fail "the copy from the older server differs"; }
    [ -s "$tmp/err" ] && { head "$tmp/err"; fail "the fallback was not silent"; }
fi
grep -q FETCH_BATCH "$tmp/old.log" && fail "the older server logged a FETCH_BATCH"
n=$(grep -c ' FETCH src/.* ok$' "$tmp/old.log")
[ "$n" = "$(find "$root/src" -type f | wc -l)" ] || fail "$n files fetched one by one from the older server"
stop_server old

finish batch
