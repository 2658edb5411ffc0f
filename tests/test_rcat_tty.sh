#!/bin/bash
# test_rcat_tty.sh - rcat's progress bar is drawn where someone watches it:
# on a terminal (script(1) gives the command a pty) and not in a pipe; not
# across file contents going to that same terminal; never with -q or
# --no-progress; always with --progress. Names from the server are made
# harmless on a terminal. Skipped (77) without util-linux script(1).
#
# The server starts on port 0 and is stopped by its PID; every wait is
# bounded; nothing asserts on time. Programs are found under
# ${top_builddir:-.}/rcat/ (make check sets top_builddir).
set -u
umask 022
export LC_ALL=C TZ=UTC

bin="${top_builddir:-.}/rcat"
rcat="$bin/rcat"
rcatd="$bin/rcatd"
[ -x "$rcat" ] && [ -x "$rcatd" ] || { echo "FAIL: $rcat or $rcatd not built"; exit 1; }
if ! command -v script >/dev/null 2>&1 || ! script -qfec true /dev/null </dev/null >/dev/null 2>&1; then
    echo "RPC2-SKIP: test_rcat_tty.sh: no util-linux script(1) to give rcat a terminal"
    exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_rcat_tty.XXXXXX") || exit 1
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
show() { od -c "$1" | head -8 | sed 's/^/    /'; }

CR=$(printf '\r')
ESC=$(printf '\033')

mkdir "$tmp/root" "$tmp/local"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$tmp/root/bigfile"
printf hello >"$tmp/root/hello"
: >"$tmp/root/bad${ESC}[31mname"

"$rcatd" --listen 127.0.0.1:0 --root "$tmp/root" --writable --log "$tmp/rcatd.log" >"$tmp/rcatd.out" 2>&1 &
pid=$!
port=""
for _ in $(seq 1 200); do
    port=$(sed -n 's/^rcatd listening on \([0-9][0-9]*\)$/\1/p' "$tmp/rcatd.out")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
done
[ -n "$port" ] || { cat "$tmp/rcatd.out"; echo "FAIL: rcatd did not start"; exit 1; }
R="rcat://127.0.0.1:$port"

# on_tty OUT CMD...: runs CMD with a pty for stdin, stdout and stderr; what it
# wrote there goes to OUT. Returns CMD's status.
on_tty() {
    local out=$1 cmd="" a
    shift
    for a in "$@"; do
        cmd="$cmd '$a'" # the temporary paths hold no quote
    done
    timeout 60 script -qfec "$cmd" /dev/null </dev/null >"$out" 2>&1
}

# a bar: a carriage return that starts a redraw of the label, and a rate
has_bar() { grep -q "${CR}[^${CR}]*$2" "$1" && grep -q 'B/s' "$1"; }
no_bar() { ! grep -q 'B/s' "$1" && ! grep -q "${CR}." "$1"; }

echo "a terminal: the bar is drawn"
on_tty "$tmp/t1" "$rcat" -o "$tmp/local/bigfile" "$R/bigfile" || fail "fetch on a terminal: exit status $?"
cmp -s "$tmp/local/bigfile" "$tmp/root/bigfile" || fail "fetch on a terminal: the copy differs"
has_bar "$tmp/t1" bigfile || { show "$tmp/t1"; fail "fetch on a terminal: no progress bar"; }
grep -q '100%' "$tmp/t1" || { show "$tmp/t1"; fail "fetch on a terminal: the last bar does not say 100%"; }
grep -q 'MiB' "$tmp/t1" || { show "$tmp/t1"; fail "fetch on a terminal: no byte count"; }

on_tty "$tmp/t2" "$rcat" --put "$tmp/local/bigfile" "$R/stored" || fail "store on a terminal: exit status $?"
cmp -s "$tmp/root/stored" "$tmp/root/bigfile" || fail "store on a terminal: the copy differs"
has_bar "$tmp/t2" "local/bigfile" || { show "$tmp/t2"; fail "store on a terminal: no progress bar"; }

echo "a pipe: silence"
{ timeout 60 "$rcat" -o "$tmp/local/p1" "$R/bigfile" 2>"$tmp/p1.err"; echo $? >"$tmp/p1.rc"; } | cat
[ "$(cat "$tmp/p1.rc")" = 0 ] || fail "fetch in a pipe: exit status $(cat "$tmp/p1.rc")"
[ -s "$tmp/p1.err" ] && { show "$tmp/p1.err"; fail "fetch in a pipe: stderr is not empty"; }
cmp -s "$tmp/local/p1" "$tmp/root/bigfile" || fail "fetch in a pipe: the copy differs"
{ timeout 60 "$rcat" "$R/bigfile" 2>"$tmp/p2.err"; echo $? >"$tmp/p2.rc"; } | cmp -s - "$tmp/root/bigfile" || fail "fetch to a pipe: differs"
[ "$(cat "$tmp/p2.rc")" = 0 ] || fail "fetch to a pipe: exit status $(cat "$tmp/p2.rc")"
[ -s "$tmp/p2.err" ] && { show "$tmp/p2.err"; fail "fetch to a pipe: stderr is not empty"; }
timeout 60 "$rcat" --progress -o "$tmp/local/p3" "$R/bigfile" 2>"$tmp/p3.err" || fail "--progress in a pipe: exit status $?"
cmp -s "$tmp/local/p3" "$tmp/root/bigfile" || fail "--progress in a pipe: the copy differs"
has_bar "$tmp/p3.err" bigfile || { show "$tmp/p3.err"; fail "--progress in a pipe: no bar"; }
timeout 60 "$rcat" -v -o "$tmp/local/p4" "$R/bigfile" 2>"$tmp/p4.err" || fail "-v in a pipe: exit status $?"
cmp -s "$tmp/local/p4" "$tmp/root/bigfile" || fail "-v in a pipe: the copy differs"
grep -q "$CR" "$tmp/p4.err" && { show "$tmp/p4.err"; fail "-v in a pipe: a bar was drawn"; }
grep -q "^rcat: bigfile -> $tmp/local/p4: 4.0 MiB in " "$tmp/p4.err" || { cat "$tmp/p4.err"; fail "-v in a pipe: no line for the file"; }

echo "a terminal, but no bar: -q, --no-progress, --json, contents on the same terminal"
on_tty "$tmp/t3" "$rcat" -q -o "$tmp/local/q" "$R/bigfile" || fail "-q on a terminal: exit status $?"
[ -s "$tmp/t3" ] && { show "$tmp/t3"; fail "-q on a terminal: something was written"; }
cmp -s "$tmp/local/q" "$tmp/root/bigfile" || fail "-q on a terminal: the copy differs"
on_tty "$tmp/t4" "$rcat" --no-progress -o "$tmp/local/np" "$R/bigfile" || fail "--no-progress: exit status $?"
[ -s "$tmp/t4" ] && { show "$tmp/t4"; fail "--no-progress on a terminal: something was written"; }
cmp -s "$tmp/local/np" "$tmp/root/bigfile" || fail "--no-progress on a terminal: the copy differs"
on_tty "$tmp/t5" "$rcat" --json -o "$tmp/local/js" "$R/bigfile" || fail "--json on a terminal: exit status $?"
no_bar "$tmp/t5" || { show "$tmp/t5"; fail "--json on a terminal: a bar was drawn"; }
grep -q '^{"Type":"DONE",' "$tmp/t5" || { show "$tmp/t5"; fail "--json on a terminal: no DONE event"; }
on_tty "$tmp/t6" "$rcat" "$R/hello" || fail "contents to the terminal: exit status $?"
[ "$(cat "$tmp/t6")" = hello ] || { show "$tmp/t6"; fail "contents to the terminal: more than the file came out"; }
on_tty "$tmp/t7" sh -c '"$0" "$1" >/dev/null' "$rcat" "$R/bigfile" || fail "stdout elsewhere: exit status $?"
has_bar "$tmp/t7" bigfile || { show "$tmp/t7"; fail "stdout to /dev/null, stderr a terminal: no bar"; }

echo "a terminal: an error is not glued to a bar"
on_tty "$tmp/t8" "$rcat" -o "$tmp/local/x" "$R/missing"
rc=$?
[ "$rc" -eq 3 ] || fail "missing on a terminal: exit status $rc, want 3"
grep -q "^rcat: missing: not found on server" "$tmp/t8" ||
    grep -q "${CR}rcat: missing: not found on server" "$tmp/t8" || { show "$tmp/t8"; fail "missing on a terminal: the message"; }

echo "names from the server: harmless on a terminal, as they are elsewhere"
on_tty "$tmp/t9" "$rcat" --ls "$R/" || fail "--ls on a terminal: exit status $?"
grep -q "$ESC" "$tmp/t9" && { show "$tmp/t9"; fail "--ls on a terminal: an escape sequence came through"; }
grep -q 'bad?\[31mname' "$tmp/t9" || { show "$tmp/t9"; fail "--ls on a terminal: the name is not shown with ?"; }
timeout 60 "$rcat" --ls "$R/" >"$tmp/ls" 2>&1
grep -q "bad${ESC}\[31mname" "$tmp/ls" || { show "$tmp/ls"; fail "--ls in a pipe: the name is not as it is"; }

kill -0 "$pid" 2>/dev/null || fail "rcatd died"
kill "$pid"
wait "$pid"
rc=$?
pid=""
[ "$rc" -eq 0 ] || fail "rcatd stopped with status $rc"
[ "$failures" -eq 0 ] || { echo "$failures check(s) failed"; exit 1; }
echo "all terminal checks passed"
