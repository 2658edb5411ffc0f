#!/bin/bash
# test_rcat_client.sh - rcat's own end, as real processes on loopback: a
# closed port fails fast and a silent one waits for --timeout; --max-time
# bounds a run against a server that answers only BUSY; -o DIR/ never
# writes two sources on one name; --genkey FILE; closed standard streams;
# a reader that goes away; ranges far past the end; HOST:PORT:PATH refused.
#
# Servers start on port 0 and print "... listening on PORT"; they are
# stopped by their PID. Waits are bounded and generous (3x what is asked:
# valgrind and ASan runs are slow); no check passes on speed. Checks go on
# after a failure; the test fails at the end, listing what failed.
set -u
umask 022
export LC_ALL=C

bin="${top_builddir:-.}"
rcat="$bin/rcat/rcat"
rcatd="$bin/rcat/rcatd"
busysrv="$bin/tests/busysrv"
for p in "$rcat" "$rcatd" "$busysrv"; do
    [ -x "$p" ] || { echo "FAIL: $p not built"; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_rcat_client.XXXXXX") || exit 1
pids=""
cleanup() {
    local p
    exec 2>/dev/null # no "Killed" notices from the shell
    for p in $pids; do kill -9 "$p"; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

failures=0
failed=""
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
    failed="$failed
    $*"
}
fatal() {
    echo "FAIL: $*"
    exit 1
}

# start NAME PROGRAM ARGS...: a server in the background; sets port and
# NAME's pid in $tmp/NAME.pid.
start() {
    local name=$1
    shift
    "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    echo $! >"$tmp/$name.pid"
    pids="$pids $!"
    port=""
    for _ in $(seq 1 200); do
        port=$(sed -n 's/^[a-z]* listening on \([0-9][0-9]*\)$/\1/p' "$tmp/$name.out")
        [ -n "$port" ] && return 0
        sleep 0.05
    done
    cat "$tmp/$name.err"
    fatal "$name did not start"
}
pid_of() { cat "$tmp/$1.pid"; }

# run WANT NAME CMD...: runs CMD (stdout to $tmp/out, stderr to $tmp/err),
# wants exit status WANT; sets took (seconds, with a fraction).
run() {
    local want=$1 name=$2 t0 t1 rc
    shift 2
    t0=$(date +%s.%N)
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    t1=$(date +%s.%N)
    took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    if [ "$rc" != "$want" ]; then
        fail "$name: exit $rc, want $want: $(head -c 400 "$tmp/err")"
        return 1
    fi
    return 0
}
said() { grep -qF -- "$2" "$tmp/err" || fail "$1: stderr lacks '$2': $(head -c 400 "$tmp/err")"; }
# within NAME SECONDS: the last run took less (a generous bound), plus what
# an idle --stat took here (base): on a loaded machine, or under the
# sanitizers, starting rcat alone can take seconds.
base=0
within() {
    awk -v t="$took" -v b="$2" -v base="$base" 'BEGIN { exit !(t < b + base) }' ||
        fail "$1: took $took s, bound $2 s + $base s (an idle --stat)"
}
# at_least NAME SECONDS: the last run waited at least that long.
at_least() { awk -v t="$took" -v b="$2" 'BEGIN { exit !(t >= b) }' || fail "$1: took only $took s, want >= $2 s"; }

root="$tmp/root"
mkdir -p "$root/d0" "$root/d1"
echo zero >"$root/d0/f.dat"
echo one >"$root/d1/f.dat"
head -c 300000 /dev/urandom >"$root/big"

start srv "$rcatd" --listen 127.0.0.1:0 --root "$root"
P=$port
R="rcat://127.0.0.1:$P"
run 0 "an idle --stat" "$rcat" --stat "$R/big" && base=$took

# ---- refused ports fail fast; silence waits -----------------------------------
start gone "$rcatd" --listen 127.0.0.1:0 --root "$root"
gone=$port
kill "$(pid_of gone)"
wait "$(pid_of gone)" 2>/dev/null
run 2 "closed port" "$rcat" "rcat://127.0.0.1:$gone/big" &&
    said "closed port" "connection refused by 127.0.0.1 port $gone"
within "closed port" 3
run 2 "closed port, --stat, the next operand too" "$rcat" --stat "rcat://127.0.0.1:$gone/a" "rcat://127.0.0.1:$gone/b" &&
    said "closed port, next operand" "rcat: b: connection refused"
within "closed port, two operands" 3
if grep -q '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null; then # ::1 exists
    run 2 "closed IPv6 port" "$rcat" "rcat://[::1]:$gone/big" && said "closed IPv6 port" "::1 port $gone"
    within "closed IPv6 port" 3
fi
run 2 "--json closed port" "$rcat" --json "rcat://127.0.0.1:$gone/big" &&
    said "--json closed port" '"Error":"RPC2_ECONNREFUSED"'

start frozen "$rcatd" --listen 127.0.0.1:0 --root "$root"
frozen=$port
kill -STOP "$(pid_of frozen)" # bound, but silent: no ICMP
run 2 "a silent server" "$rcat" --timeout 1 "rcat://127.0.0.1:$frozen/big" &&
    said "a silent server" "no answer from 127.0.0.1 port $frozen (silent for 1 s)"
at_least "a silent server waits for --timeout" 1
within "a silent server" 5
kill -CONT "$(pid_of frozen)"

# ---- --timeout is silence; --max-time is the whole run ---------------------------
start busy "$busysrv"
busy=$port
run 2 "--max-time against BUSY" "$rcat" --timeout 1 --max-time 2 --stat "rcat://127.0.0.1:$busy/x" &&
    said "--max-time against BUSY" "rcat: x: time limit reached (--max-time 2 s)"
at_least "BUSY answers are not silence: --timeout 1 did not end it" 2
within "--max-time 2" 8
run 2 "--max-time, two operands" "$rcat" --max-time 1 --ls "rcat://127.0.0.1:$busy/x" "rcat://127.0.0.1:$busy/y" &&
    said "--max-time, second operand" "rcat: y: time limit reached"
within "--max-time 1 for the whole run" 5
run 0 "--max-time with units" "$rcat" --max-time 2m --timeout 90s --stat "$R/big"
run 1 "--max-time 5x" "$rcat" --max-time 5x "$R/big" && said "--max-time 5x" "'5x' is not a duration"
run 1 "--timeout -1" "$rcat" --timeout -1 "$R/big"
run 1 "--timeout 2h (past what the library keeps)" "$rcat" --timeout 2h "$R/big"

# ---- -o DIR/: one name, one source ---------------------------------------------
mkdir "$tmp/dir"
run 4 "-o DIR/ with two sources of one name" "$rcat" -o "$tmp/dir/" "$R/d0/f.dat" "$R/d1/f.dat" "$R/big" &&
    said "-o DIR/ collision" "rcat: d1/f.dat: not written: $tmp/dir/f.dat is already the name for d0/f.dat (operand 1)"
[ "$(cat "$tmp/dir/f.dat" 2>/dev/null)" = zero ] || fail "-o DIR/ collision: f.dat is not the first source's copy"
cmp -s "$root/big" "$tmp/dir/big" || fail "-o DIR/ collision: the operand after it was not written"
run 4 "-o DIR (no slash), the same remote twice" "$rcat" -o "$tmp/dir" "$R/big" "$R/big"
mkdir "$tmp/tree"
run 0 "--parents keeps the paths" "$rcat" --parents -o "$tmp/tree/" "$R/d0/f.dat" "$R/d1/f.dat"
[ "$(cat "$tmp/tree/d0/f.dat" "$tmp/tree/d1/f.dat" 2>/dev/null)" = "zero
one" ] || fail "--parents: DIR/d0/f.dat and DIR/d1/f.dat are not the two sources"
run 1 "--parents with '..'" "$rcat" --parents -o "$tmp/tree/" "$R/d0/../big"
run 1 "--parents without -o DIR/" "$rcat" --parents "$R/big"

# ---- small things ----------------------------------------------------------------
run 0 "--genkey FILE" "$rcat" --genkey "$tmp/alice.key"
[ "$(stat -c %a "$tmp/alice.key")" = 600 ] || fail "--genkey FILE: mode $(stat -c %a "$tmp/alice.key"), want 600"
[ "$(wc -c <"$tmp/alice.key")" = 45 ] || fail "--genkey FILE: not one secret line"
cp "$tmp/alice.key" "$tmp/alice.copy"
run 4 "--genkey FILE never replaces" "$rcat" --genkey "$tmp/alice.key" && said "--genkey exists" "file exists"
cmp -s "$tmp/alice.key" "$tmp/alice.copy" || fail "--genkey FILE replaced an existing key"
(umask 022 && "$rcat" --genkey >"$tmp/bob.key" 2>"$tmp/err")
[ "$(stat -c %a "$tmp/bob.key")" = 600 ] || fail "--genkey > FILE: mode $(stat -c %a "$tmp/bob.key"), want 600"
run 1 "--genkey REMOTE" "$rcat" --genkey "$R/x"
"$rcat" "$R/big" >&- 2>"$tmp/err"
rc=$?
[ "$rc" = 4 ] || fail "stdout closed: exit $rc, want 4 (134: libev's assertion)"
said "stdout closed" "standard output: bad file descriptor"
"$rcat" --stat "$R/big" >&- 2>"$tmp/err"
rc=$?
[ "$rc" = 4 ] || fail "--stat, stdout closed: exit $rc, want 4"
run 4 "--put -, stdin closed" "$rcat" --put - "$R/x" <&- && said "stdin closed" "standard input: bad file descriptor"
"$rcat" "$R/big" <&- 2>&- >"$tmp/got" || fail "stdin and stderr closed: a fetch to stdout failed"
cmp -s "$root/big" "$tmp/got" || fail "stdin and stderr closed: wrong bytes"
(trap '' PIPE && "$rcat" "$R/big" 2>"$tmp/err" | head -c 10 >/dev/null; echo "${PIPESTATUS[0]}" >"$tmp/rc")
[ "$(cat "$tmp/rc")" = 4 ] || fail "reader gone, SIGPIPE ignored: exit $(cat "$tmp/rc"), want 4"
said "reader gone" "standard output: broken pipe"
run 0 "--offset 16T: past the end is no error" "$rcat" --offset 16T "$R/big"
[ -s "$tmp/out" ] && fail "--offset 16T: bytes came"
run 1 "HOST:PORT:PATH" "$rcat" "127.0.0.1:$P:big" && said "HOST:PORT:PATH" "rcat://HOST:PORT/PATH"
run 0 "rcatd --help" "$rcatd" --help && grep -q "^Usage: rcatd \[OPTION\]" "$tmp/out" ||
    fail "rcatd --help: not in rcat's style"
run 1 "rcatd --idle-timeout 5x" "$rcatd" --idle-timeout 5x

# ---- end ---------------------------------------------------------------------
if [ "$failures" -gt 0 ]; then
    echo "$failures check(s) failed:$failed"
    exit 1
fi
echo "all checks passed"
