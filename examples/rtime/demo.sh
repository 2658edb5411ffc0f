#!/bin/sh
# demo.sh - the smallest rpc2 program at work: the rtime server started in the
# background on a free port, the client calling it, the server stopped.
set -eu
dir=$(dirname "$0")
out=$(mktemp)
"$dir/rtime_server" 127.0.0.1:0 >"$out" &
pid=$!
trap 'kill "$pid" 2>/dev/null; rm -f "$out"' EXIT
port=""
while [ -z "$port" ]; do
    sleep 0.05
    port=$(sed -n 's/^rtime_server listening on //p' "$out")
done
echo "rtime_server (pid $pid) listening on 127.0.0.1:$port"
"$dir/rtime_client" 127.0.0.1 "$port"
