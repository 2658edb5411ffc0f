# rcatd_lib.sh - what a loopback test of rcat and rcatd needs, sourced by
# such a script (test_access.sh): background processes tracked by PID file,
# servers started on port 0, bounded waits, checks that go on after a failure.
# The sourcing script sets $tmp (a fresh directory) first, and ends with
# finish. Every wait is bounded; nothing asserts on time.

bin="${top_builddir:-.}/rcat"
rcat="$bin/rcat"
rcatd="$bin/rcatd"
[ -x "$rcat" ] && [ -x "$rcatd" ] || { echo "FAIL: $rcat or $rcatd not built"; exit 1; }
mkdir -p "$tmp/bg"

# Background processes are started by spawn: their PID in $tmp/bg/NAME.pid,
# their exit status in $tmp/bg/NAME.rc once they end. A PID is signalled only
# while its .rc is missing, so a PID reused by someone else is never hit.
cleanup() {
    local f
    for f in "$tmp"/bg/*.pid; do
        [ -e "$f" ] && [ ! -e "${f%.pid}.rc" ] && kill -9 "$(cat "$f")" 2>/dev/null
    done
    wait
    if [ -n "${KEEP_TMP:-}" ]; then
        echo "kept $tmp"
        return
    fi
    chmod -R u+rwx "$tmp" 2>/dev/null
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
note() { echo "  $*"; }

# spawn NAME CMD...: runs CMD in the background (redirections given to spawn apply).
spawn() {
    local name=$1
    shift
    rm -f "$tmp/bg/$name.pid" "$tmp/bg/$name.rc"
    (
        "$@" <&0 &
        echo $! >"$tmp/bg/$name.pid.new"
        mv "$tmp/bg/$name.pid.new" "$tmp/bg/$name.pid"
        wait $!
        echo $? >"$tmp/bg/$name.rc.new"
        mv "$tmp/bg/$name.rc.new" "$tmp/bg/$name.rc"
    ) <&0 &
    for _ in $(seq 1 200); do
        [ -e "$tmp/bg/$name.pid" ] && return 0
        sleep 0.05
    done
    fatal "$name did not start"
}
running() { [ ! -e "$tmp/bg/$1.rc" ]; }
status() { cat "$tmp/bg/$1.rc"; }
# signal SIG NAME: sends SIG to NAME if it still runs.
signal() { running "$2" && kill "-$1" "$(cat "$tmp/bg/$2.pid")" 2>/dev/null; }
# await NAME SECONDS: waits for NAME to end; 1 when it still runs then.
await() {
    local start=$SECONDS
    while running "$1" && [ $((SECONDS - start)) -lt "$2" ]; do sleep 0.1; done
    running "$1" && return 1
    return 0
}
# await_log FILE TEXT SECONDS: waits until FILE holds TEXT (a grep -E pattern).
await_log() {
    local start=$SECONDS
    while [ $((SECONDS - start)) -lt "$3" ]; do
        grep -qE -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# start_server NAME CMD...: CMD (rcatd and its options, maybe behind a
# wrapper such as unshare) in the background, logging to $tmp/NAME.log;
# sets port.
start_server() {
    local name=$1
    shift
    spawn "$name" "$@" --log "$tmp/$name.log" >"$tmp/$name.out" 2>"$tmp/$name.err"
    port=""
    for _ in $(seq 1 200); do
        port=$(sed -n 's/^rcatd listening on \([0-9][0-9]*\)$/\1/p' "$tmp/$name.out")
        [ -n "$port" ] && return 0
        running "$name" || break
        sleep 0.05
    done
    cat "$tmp/$name.err" "$tmp/$name.log" 2>/dev/null
    fatal "rcatd $name did not start"
}

# stop_server NAME: the server must still be alive (no crash) and stop on
# SIGTERM with status 0 within 40 s.
stop_server() {
    local name=$1
    if ! running "$name"; then
        sed 's/^/    /' "$tmp/$name.err"
        fail "rcatd $name died (status $(status "$name"))"
        return
    fi
    signal TERM "$name"
    if ! await "$name" 40; then
        fail "rcatd $name did not stop within 40 s of SIGTERM"
        signal KILL "$name"
        await "$name" 10
    fi
    [ "$(status "$name")" = 0 ] || fail "rcatd $name stopped with status $(status "$name")"
}

# run WANT WHAT CMD...: CMD must exit with WANT (and not hang); its output
# goes to $tmp/out and $tmp/err. Returns 1 when it did not.
run() {
    local want=$1 what=$2 rc
    shift 2
    timeout 60 "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -eq 124 ]; then
        fail "$what: timed out after 60 s"
        return 1
    fi
    if [ "$rc" -ne "$want" ]; then
        sed 's/^/    /' "$tmp/err" | head -20
        fail "$what: exit status $rc, want $want"
        return 1
    fi
    return 0
}

# said WHAT TEXT: the last run's stderr must hold TEXT.
said() {
    grep -qF -- "$2" "$tmp/err" || { sed 's/^/    /' "$tmp/err" | head -10; fail "$1: stderr lacks '$2'"; }
}

same() { cmp -s "$1" "$2" || fail "$3: $1 and $2 differ"; }

# finish NAME: the verdict, and the exit status.
finish() {
    if [ "$failures" -ne 0 ]; then
        echo "$failures check(s) failed:$failed"
        exit 1
    fi
    echo "all $1 checks passed"
    exit 0
}
