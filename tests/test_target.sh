#!/bin/bash
# test_target.sh - what rcat -o leaves at the name: a symlink is written
# through and stays a symlink (to a file, to /proc/self/fd/1, to a FIFO), a
# link to nothing is refused; a new file gets the server file's mode less
# the umask (as cp), a replaced one keeps its own, -p keeps mode and mtime
# exactly.
#
# rcatd starts on port 0 and is stopped by its PID; every wait is bounded.
set -u
umask 022
export TZ=UTC LC_ALL=C

bin="${top_builddir:-.}/rcat"
rcat="$bin/rcat"
rcatd="$bin/rcatd"
[ -x "$rcat" ] && [ -x "$rcatd" ] || { echo "FAIL: $rcat or $rcatd not built"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_target.XXXXXX") || exit 1
pid=""
cleanup() {
    [ -n "$pid" ] && [ ! -e "$tmp/rcatd.rc" ] && kill -9 "$pid" 2>/dev/null
    wait
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

mkdir "$tmp/root" "$tmp/out"
printf 'the content\n' >"$tmp/root/file"
(
    "$rcatd" --listen 127.0.0.1:0 --root "$tmp/root" --log "$tmp/rcatd.log" \
        >"$tmp/rcatd.out" 2>"$tmp/rcatd.err" &
    echo $! >"$tmp/rcatd.pid"
    wait $!
    echo $? >"$tmp/rcatd.rc"
) &
port=""
for _ in $(seq 1 200); do
    [ -e "$tmp/rcatd.pid" ] && pid=$(cat "$tmp/rcatd.pid")
    port=$(sed -n 's/^rcatd listening on \([0-9][0-9]*\)$/\1/p' "$tmp/rcatd.out" 2>/dev/null)
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || { echo "FAIL: rcatd did not start: $(cat "$tmp/rcatd.err")"; exit 1; }
U="rcat://127.0.0.1:$port"
o="$tmp/out"

fetch() { timeout 60 "$rcat" "$@" 2>"$tmp/err"; }
is_link() { [ -L "$1" ] || fail "$2: $1 is no longer a symlink"; }

echo "-o a symlink to a file: the file is replaced, the link stays"
printf 'old\n' >"$o/real"
ln -s real "$o/link"
fetch "$U/file" -o "$o/link" || fail "link to a file: $(cat "$tmp/err")"
is_link "$o/link" "link to a file"
[ "$(cat "$o/real")" = "the content" ] || fail "link to a file: real holds '$(cat "$o/real")'"

echo "-o a symlink to /proc/self/fd/1: written through to standard output's file"
ln -s /proc/self/fd/1 "$o/stdout"
fetch "$U/file" -o "$o/stdout" >"$o/captured" || fail "link to fd 1: $(cat "$tmp/err")"
is_link "$o/stdout" "link to fd 1"
[ "$(cat "$o/captured")" = "the content" ] || fail "link to fd 1: got '$(cat "$o/captured")'"

echo "-o a symlink to a FIFO: written into"
mkfifo "$o/fifo"
ln -s fifo "$o/tofifo"
timeout 60 cat "$o/fifo" >"$o/fromfifo" &
fetch "$U/file" -o "$o/tofifo" || fail "link to a FIFO: $(cat "$tmp/err")"
wait $!
is_link "$o/tofifo" "link to a FIFO"
[ -p "$o/fifo" ] || fail "link to a FIFO: the FIFO was replaced"
[ "$(cat "$o/fromfifo")" = "the content" ] || fail "link to a FIFO: got '$(cat "$o/fromfifo")'"

echo "-o a symlink to nothing: refused, nothing made"
ln -s nowhere "$o/dangling"
fetch "$U/file" -o "$o/dangling"
rc=$?
[ "$rc" = 4 ] || fail "dangling link: exit $rc, want 4"
is_link "$o/dangling" "dangling link"
[ -e "$o/nowhere" ] && fail "dangling link: its target was created"

echo "mode bits as cp, and -p exactly"
printf 'secret\n' >"$tmp/root/private"
chmod 0600 "$tmp/root/private"
printf '#!/bin/sh\n' >"$tmp/root/tool"
chmod 0757 "$tmp/root/tool"
touch -d '2001-02-03 04:05:06.789' "$tmp/root/tool"
mode() { stat -c %a "$1"; }
fetch "$U/private" -o "$o/private" || fail "0600 fetch: $(cat "$tmp/err")"
[ "$(mode "$o/private")" = 600 ] || fail "a 0600 file fetched anew is $(mode "$o/private"), want 600"
fetch "$U/tool" -o "$o/tool" || fail "0757 fetch: $(cat "$tmp/err")"
[ "$(mode "$o/tool")" = 755 ] || fail "a 0757 file fetched anew is $(mode "$o/tool"), want 755 (umask 022)"
printf 'x\n' >"$o/kept" && chmod 0640 "$o/kept"
fetch "$U/tool" -o "$o/kept" || fail "replace: $(cat "$tmp/err")"
[ "$(mode "$o/kept")" = 640 ] || fail "a replaced 0640 file is $(mode "$o/kept"), want 640"
fetch -p "$U/tool" -o "$o/kept" || fail "-p: $(cat "$tmp/err")"
[ "$(mode "$o/kept")" = 757 ] || fail "-p gave mode $(mode "$o/kept"), want 757"
[ "$(stat -c %y "$o/kept")" = "$(stat -c %y "$tmp/root/tool")" ] ||
    fail "-p gave mtime $(stat -c %y "$o/kept"), want $(stat -c %y "$tmp/root/tool")"
[ -z "$(find "$o" -name '.*' -type f)" ] || fail "a temporary was left: $(find "$o" -name '.*')"

echo "the rename is made durable: the directory is fsynced after it"
if command -v strace >/dev/null && strace -o /dev/null true 2>/dev/null; then
    # LeakSanitizer cannot run under ptrace: off for this one traced run (sanitizer builds)
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        strace -f -y -e trace=fsync,fdatasync,rename,renameat,renameat2 -o "$tmp/trace" \
        "$rcat" "$U/file" -o "$o/durable" 2>"$tmp/err" || fail "durable: $(cat "$tmp/err")"
    # the last calls: the file's flush, the rename, then its directory's fsync
    grep -q "fsync([0-9]*<$o>)" "$tmp/trace" ||
        fail "durable: no fsync of the directory: $(grep -E 'sync|rename' "$tmp/trace" | tail -4)"
    [ "$(grep -E 'sync|rename' "$tmp/trace" | tail -1 | grep -c "fsync([0-9]*<$o>)")" = 1 ] ||
        fail "durable: the directory's fsync is not the last step"
else
    echo "  skipped: no usable strace here"
fi

kill -TERM "$pid" 2>/dev/null
for _ in $(seq 1 400); do [ -e "$tmp/rcatd.rc" ] && break; sleep 0.1; done
[ -s "$tmp/rcatd.err" ] && fail "rcatd wrote to stderr: $(head -3 "$tmp/rcatd.err")"

if [ "$failures" -gt 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "PASS"
exit 0
