#!/bin/bash
# test_bottleneck.sh - a file fetched by a real rcat from a real rcatd through a slow
# link: faultproxy's bottleneck (20 Mbit/s, a drop-tail queue of one BDP) and 10 ms each
# way. Loopback alone never fills a queue, so nothing else in `make check` shows a
# transfer surviving one. The copy must be byte-identical and must really have crossed
# the proxy; the send efficiency (bytes the server sent into the link / bytes delivered)
# and the goodput are printed, never asserted: timing is no pass/fail criterion on a
# shared machine, and efficiency depends on the rate control under test.
#
# On loopback rpc2 sends 63 KiB datagrams, so the queue (50 KB) holds less than one
# beyond the one being sent: a coarse bottleneck, but a real one.
# RPC2_TEST_SMALL=1 moves 1 MiB instead of 4. Programs are found under
# ${top_builddir:-.} (make check sets it).
set -u
export LC_ALL=C

top=${top_builddir:-.}
rcat=$top/rcat/rcat rcatd=$top/rcat/rcatd proxy=$top/tests/faultproxy
for p in "$rcat" "$rcatd" "$proxy"; do
    [ -x "$p" ] || { echo "FAIL: $p not built"; exit 1; }
done

rate=20M queue=50k delay_ms=10 # RTT 20 ms; BDP = 20 Mbit/s x 20 ms = 50 KB
mib=4
[ "${RPC2_TEST_SMALL:-0}" = 1 ] && mib=1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_bottleneck.XXXXXX") || exit 1
rcatd_pid="" proxy_pid=""
# Only the PIDs this test started, and only while they are still its children.
cleanup() {
    for pid in $proxy_pid $rcatd_pid; do
        kill -9 "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fatal() {
    echo "FAIL: $*"
    exit 1
}

# port_of FILE PREFIX PID: the port in "PREFIX PORT" once PID has printed it (10 s).
port_of() {
    local port=""
    for _ in $(seq 1 200); do
        port=$(sed -n "s/^$2 \\([0-9][0-9]*\\)\$/\\1/p" "$1")
        [ -n "$port" ] && { echo "$port"; return 0; }
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# stop PID: SIGTERM, then at most 40 s for it to end; its exit status.
stop() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 400); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && { kill -9 "$pid"; echo "FAIL: $pid ignored SIGTERM"; }
    wait "$pid"
}

# counter FILE DIR NAME: NAME's value on the proxy's "faultproxy DIR:" line.
counter() {
    sed -n "s/^faultproxy $2:.* $3=\\([0-9][0-9]*\\).*/\\1/p" "$1"
}

mkdir "$tmp/root"
head -c $((mib * 1048576)) /dev/urandom >"$tmp/root/file.bin" || fatal "cannot make the file"

"$rcatd" --listen 127.0.0.1:0 --root "$tmp/root" --log "$tmp/rcatd.log" >"$tmp/rcatd.out" \
    2>"$tmp/rcatd.err" &
rcatd_pid=$!
rcatd_port=$(port_of "$tmp/rcatd.out" "rcatd listening on" "$rcatd_pid") ||
    { cat "$tmp/rcatd.err" "$tmp/rcatd.log"; fatal "rcatd did not start"; }

"$proxy" --server "127.0.0.1:$rcatd_port" --rate "$rate" --queue "$queue" \
    --delay "$delay_ms" >"$tmp/proxy.out" 2>"$tmp/proxy.err" &
proxy_pid=$!
proxy_port=$(port_of "$tmp/proxy.out" "faultproxy listening on" "$proxy_pid") ||
    { cat "$tmp/proxy.err"; fatal "faultproxy did not start"; }

# Generous: even 50 kbit/s would do 4 MiB well inside it; a hang still ends.
timeout 900 "$rcat" --json -o "$tmp/copy.bin" "rcat://127.0.0.1:$proxy_port/file.bin" \
    2>"$tmp/rcat.json"
rc=$?
[ $rc -eq 0 ] || { tail -n 5 "$tmp/rcat.json"; fatal "rcat exited $rc through the bottleneck"; }
cmp -s "$tmp/root/file.bin" "$tmp/copy.bin" || fatal "the copy differs from the file"

stop "$proxy_pid" || fatal "faultproxy did not stop cleanly"
proxy_pid=""
stop "$rcatd_pid" || fatal "rcatd did not stop cleanly"
rcatd_pid=""

size=$((mib * 1048576))
sent=$(counter "$tmp/proxy.err" s2c bytes_in)
passed=$(counter "$tmp/proxy.err" s2c bytes_forwarded)
qdrops=$(counter "$tmp/proxy.err" s2c queue_dropped)
[ -n "$sent" ] && [ -n "$passed" ] && [ -n "$qdrops" ] ||
    { cat "$tmp/proxy.err"; fatal "no counters from faultproxy"; }
# The file really crossed the bottleneck: at least its bytes went through the proxy.
[ "$passed" -ge "$size" ] || fatal "only $passed bytes crossed the proxy for a $size-byte file"
server_sent=$(sed -n 's/.*stats (exit).* bytes_sent=\([0-9]*\).*/\1/p' "$tmp/rcatd.log")
us=$(sed -n 's/.*"Type":"DONE".*"Elapsedusec":\([0-9]*\).*/\1/p' "$tmp/rcat.json")

awk -v size="$size" -v sent="$sent" -v passed="$passed" -v q="$qdrops" -v us="${us:-0}" \
    -v srv="${server_sent:-?}" -v rate="$rate" -v d="$delay_ms" -v queue="$queue" 'BEGIN {
    printf "bottleneck %s bit/s, %d ms RTT, queue %s: %d bytes moved intact", rate, 2 * d, queue, size
    if (us > 0) printf " in %.2f s (%.1f Mbit/s)", us / 1e6, size * 8 / us
    printf "\n  send efficiency %.2f: the server sent %d bytes into the link (rcatd counted %s),", sent / size, sent, srv
    printf "\n  %d crossed it, its queue dropped %d datagrams\n", passed, q
}'
echo "PASS: test_bottleneck"
exit 0
