#!/bin/sh
# demo.sh - the main job: rcatd serving a sample directory on a free port in
# the background, rcat fetching from it (a file to standard output, a stat,
# a listing, a byte range into a file), then rcatd stopped by its PID.
# Run from the build directory (after ./configure && make).
set -eu
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/root/docs"
printf 'Hello from rcatd: this file came over UDP with rcat.\n' >"$work/root/hello.txt"
seq 1 100000 >"$work/root/docs/numbers.txt"

rcat/rcatd --listen 127.0.0.1:0 --root "$work/root" >"$work/port" 2>"$work/rcatd.log" &
pid=$!
port=""
while [ -z "$port" ]; do
    sleep 0.05
    kill -0 "$pid" || { cat "$work/rcatd.log"; exit 1; }
    port=$(sed -n 's/^rcatd listening on //p' "$work/port")
done
url="rcat://127.0.0.1:$port"
echo "rcatd (pid $pid) serves $work/root at $url"
set -x
rcat/rcat "$url/hello.txt"
rcat/rcat --stat "$url/docs/numbers.txt"
rcat/rcat --ls "$url/"
rcat/rcat --offset 10 --length 20 -o "$work/range.txt" "$url/docs/numbers.txt"
cat "$work/range.txt"
rcat/rcat -o "$work/copy.txt" "$url/docs/numbers.txt"
cmp "$work/copy.txt" "$work/root/docs/numbers.txt"
set +x
echo "rcatd's log:"
cat "$work/rcatd.log"
