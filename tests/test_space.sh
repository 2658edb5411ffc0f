#!/bin/bash
# test_space.sh - disk space is checked before bytes move: in a private
# mount namespace with a 4 MiB tmpfs, a transfer twice too large fails at
# once, both ways, with the documented exit code (4: no space here, for a
# fetch with -o; 3: no space on the server, for a --put), leaves nothing on
# the small filesystem, and moves no data: the fetch never sends its FETCH
# (rcatd's log has only the STAT), and the store's STORE line says 0 B.
# A transfer that fits still works, each way.
#
# Needs root (a mount namespace and a tmpfs); without it the test is
# skipped (exit 77). Servers start on port 0 and are stopped by their PID.
set -u
umask 022
export TZ=UTC LC_ALL=C

if [ -z "${TEST_SPACE_IN_NS:-}" ]; then
    unshare --mount --propagation private true 2>/dev/null || {
        echo "SKIP: cannot make a mount namespace here"
        exit 77
    }
    TEST_SPACE_IN_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi

bin="${top_builddir:-.}/rcat"
rcat="$bin/rcat"
rcatd="$bin/rcatd"
[ -x "$rcat" ] && [ -x "$rcatd" ] || { echo "FAIL: $rcat or $rcatd not built"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_space.XXXXXX") || exit 1
mkdir "$tmp/bg" "$tmp/small" "$tmp/root"
cleanup() {
    local f
    for f in "$tmp"/bg/*.pid; do
        [ -e "$f" ] && [ ! -e "${f%.pid}.rc" ] && kill -9 "$(cat "$f")" 2>/dev/null
    done
    wait
    umount "$tmp/small" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

mount -t tmpfs -o size=4m none "$tmp/small" 2>/dev/null || {
    echo "SKIP: cannot mount a tmpfs here"
    exit 77
}

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
fatal() {
    echo "FAIL: $*"
    exit 1
}

# serve NAME ROOT: rcatd --writable on ROOT, logging to $tmp/NAME.log; sets port.
serve() {
    local name=$1 root=$2
    (
        "$rcatd" --listen 127.0.0.1:0 --root "$root" --writable --log "$tmp/$name.log" \
            >"$tmp/$name.out" 2>"$tmp/$name.err" &
        echo $! >"$tmp/bg/$name.pid"
        wait $!
        echo $? >"$tmp/bg/$name.rc"
    ) &
    port=""
    for _ in $(seq 1 200); do
        port=$(sed -n 's/^rcatd listening on \([0-9][0-9]*\)$/\1/p' "$tmp/$name.out" 2>/dev/null)
        [ -n "$port" ] && return 0
        sleep 0.05
    done
    fatal "rcatd $name did not start: $(cat "$tmp/$name.err" 2>/dev/null)"
}

# entries DIR: how many names DIR holds, hidden ones too
entries() { find "$1" -mindepth 1 | wc -l; }

# stop_bytes: FileBytes of the STOP event in $tmp/err
stop_bytes() { sed -n 's/.*"Type":"STOP".*"FileBytes":\([0-9]*\).*/\1/p' "$tmp/err"; }

head -c $((8 * 1024 * 1024)) /dev/urandom >"$tmp/root/big"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$tmp/root/fits"

# ---- fetch: rcat's -o on the small filesystem ------------------------------

echo "fetch: 8 MiB into 4 MiB"
serve local "$tmp/root"
U="rcat://127.0.0.1:$port"
timeout 60 "$rcat" --json "$U/big" -o "$tmp/small/big" 2>"$tmp/err"
rc=$?
[ "$rc" = 4 ] || fail "fetch too large: exit $rc, want 4: $(grep ERROR "$tmp/err")"
grep -q '"Error":"RPC2_ENOSPC"' "$tmp/err" || fail "fetch too large: no RPC2_ENOSPC: $(cat "$tmp/err")"
[ "$(stop_bytes)" = 0 ] || fail "fetch too large: STOP says $(stop_bytes) bytes moved"
[ "$(entries "$tmp/small")" = 0 ] || fail "fetch too large left: $(ls -A "$tmp/small")"
grep -q " FETCH " "$tmp/local.log" && fail "fetch too large: the FETCH was sent: $(grep FETCH "$tmp/local.log")"
grep -q " STAT big " "$tmp/local.log" || fail "fetch too large: no STAT first: $(cat "$tmp/local.log")"

echo "fetch: 2 MiB into 4 MiB"
timeout 60 "$rcat" "$U/fits" -o "$tmp/small/fits" 2>"$tmp/err" || fail "fetch that fits: $(cat "$tmp/err")"
cmp -s "$tmp/root/fits" "$tmp/small/fits" || fail "fetch that fits: wrong bytes"
rm -f "$tmp/small/fits"

# ---- store: rcatd's root is the small filesystem ------------------------------

echo "store: 8 MiB into 4 MiB"
serve remote "$tmp/small"
U="rcat://127.0.0.1:$port"
timeout 60 "$rcat" --json --put "$tmp/root/big" "$U/big" 2>"$tmp/err"
rc=$?
[ "$rc" = 3 ] || fail "store too large: exit $rc, want 3: $(grep ERROR "$tmp/err")"
grep -q '"Error":"RCAT_NO_SPACE"' "$tmp/err" || fail "store too large: no RCAT_NO_SPACE: $(cat "$tmp/err")"
[ "$(stop_bytes)" = 0 ] || fail "store too large: STOP says $(stop_bytes) bytes moved"
[ "$(entries "$tmp/small")" = 0 ] || fail "store too large left: $(ls -A "$tmp/small")"
grep -q " STORE big 0 B .* RCAT_NO_SPACE" "$tmp/remote.log" ||
    fail "store too large: the server's log says: $(grep STORE "$tmp/remote.log")"

echo "store: 2 MiB into 4 MiB"
timeout 60 "$rcat" --put "$tmp/root/fits" "$U/fits" 2>"$tmp/err" || fail "store that fits: $(cat "$tmp/err")"
cmp -s "$tmp/root/fits" "$tmp/small/fits" || fail "store that fits: wrong bytes"

for name in local remote; do
    kill -TERM "$(cat "$tmp/bg/$name.pid")" 2>/dev/null
    for _ in $(seq 1 400); do [ -e "$tmp/bg/$name.rc" ] && break; sleep 0.1; done
    [ -s "$tmp/$name.err" ] && fail "rcatd $name wrote to stderr: $(head -3 "$tmp/$name.err")"
done

if [ "$failures" -gt 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "PASS"
exit 0
