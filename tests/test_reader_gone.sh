#!/bin/bash
# test_reader_gone.sh - a client that ends a transfer by its own doing is
# heard at once, and blamed in rcatd's log, not the server's file. With
# real rcatd and rcat on loopback:
#  - `rcat URL | head -c 1` (SIGPIPE at its default, as in any shell): rcat
#    ends by SIGPIPE without a word, as cat does; the server hears the abort
#    (a client killed by SIGPIPE would leave it waiting for the dead-peer
#    silence, to log RPC2_EDEAD) and logs the error as the client's ("by the
#    client"), not as an I/O error of its own file;
#  - the same with SIGPIPE ignored (a shell script that ignores it): rcat
#    says "broken pipe" and exits 4, the server's log as above;
#  - with --json: the STOP and DONE events say EPIPE and 141.
set -u
umask 022
export LC_ALL=C
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_reader_gone.XXXXXX") || exit 1
. "${top_srcdir:-.}/tests/rcatd_lib.sh"

mkdir "$tmp/root"
truncate -s 512M "$tmp/root/big" # far more than a pipe and a window: sparse, so free

start_server srv "$rcatd" --listen 127.0.0.1:0 --root "$tmp/root"
U="rcat://127.0.0.1:$port"

# fetch_lines N: waits (bounded) until the log has N FETCH lines.
fetch_lines() {
    local start=$SECONDS
    while [ "$(grep -c ' FETCH big ' "$tmp/srv.log")" -lt "$1" ] && [ $((SECONDS - start)) -lt 30 ]; do
        sleep 0.1
    done
    [ "$(grep -c ' FETCH big ' "$tmp/srv.log")" -ge "$1" ]
}

# blamed N WHAT: the Nth FETCH line names the client's error as the client's.
blamed() {
    local line
    line=$(grep ' FETCH big ' "$tmp/srv.log" | sed -n "${1}p")
    case "$line" in
    *" RPC2_EIO by the client") ;;
    *) fail "$2: the server's log says: $line" ;;
    esac
}

# 1. SIGPIPE at its default.
timeout 60 bash -c 'trap - PIPE; "$1" "$2/big" 2>"$3/err1" | head -c 1 >/dev/null; exit ${PIPESTATUS[0]}' \
    sh "$rcat" "$U" "$tmp"
rc=$?
[ "$rc" = 141 ] || fail "reader gone: rcat exited $rc, not by SIGPIPE (141)"
[ -s "$tmp/err1" ] && fail "reader gone: rcat said something: $(cat "$tmp/err1")"
fetch_lines 1 || fail "reader gone: no FETCH line within 30 s: the server did not hear the abort"
blamed 1 "reader gone"

# 2. SIGPIPE ignored.
timeout 60 bash -c 'trap "" PIPE; "$1" "$2/big" 2>"$3/err2" | head -c 1 >/dev/null; exit ${PIPESTATUS[0]}' \
    sh "$rcat" "$U" "$tmp"
rc=$?
[ "$rc" = 4 ] || fail "reader gone, SIGPIPE ignored: rcat exited $rc, not 4"
grep -q "standard output: broken pipe" "$tmp/err2" ||
    fail "reader gone, SIGPIPE ignored: rcat said: $(cat "$tmp/err2")"
fetch_lines 2 || fail "reader gone, SIGPIPE ignored: no FETCH line within 30 s"
blamed 2 "reader gone, SIGPIPE ignored"

# 3. --json.
timeout 60 bash -c 'trap - PIPE; "$1" --json "$2/big" 2>"$3/err3" | head -c 1 >/dev/null; exit ${PIPESTATUS[0]}' \
    sh "$rcat" "$U" "$tmp"
rc=$?
[ "$rc" = 141 ] || fail "reader gone, --json: rcat exited $rc, not 141"
grep -q '"Type":"STOP".*"Result":"EPIPE"' "$tmp/err3" ||
    fail "reader gone, --json: no STOP with EPIPE: $(cat "$tmp/err3")"
grep -q '"Type":"DONE".*"ExitCode":141' "$tmp/err3" ||
    fail "reader gone, --json: no DONE with 141: $(cat "$tmp/err3")"
fetch_lines 3 || fail "reader gone, --json: no FETCH line within 30 s"

stop_server srv
finish reader-gone
