#!/bin/sh
# test_rtime.sh - runs the rtime example as a newcomer would: the server in
# the background on a free port, the client calling it, then the server
# stopped by its PID.
set -u
bin="${top_builddir:-.}/examples/rtime"
out=$(mktemp)
trap 'kill "$pid" 2>/dev/null; rm -f "$out"' EXIT
"$bin/rtime_server" 127.0.0.1:0 >"$out" &
pid=$!
port=""
for _ in $(seq 1 100); do
    port=$(sed -n 's/^rtime_server listening on \([0-9]*\)$/\1/p' "$out")
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || { echo "rtime_server did not start"; exit 1; }
answer=$("$bin/rtime_client" 127.0.0.1 "$port") || { echo "rtime_client failed"; exit 1; }
echo "$answer"
case "$answer" in
"server time: "[0-9][0-9][0-9][0-9]-*" UTC") ;;
*) echo "unexpected answer: $answer"; exit 1 ;;
esac
# a client pointed at a port with no server must fail, not hang
if timeout 30 "$bin/rtime_client" 127.0.0.1 1 >/dev/null 2>&1; then
    echo "rtime_client succeeded against nothing"; exit 1
fi
