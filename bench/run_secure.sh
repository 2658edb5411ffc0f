#!/bin/sh
# run_secure.sh - measures what security costs a bulk transfer: one file
# (1 GiB) fetched over loopback by rcat from rcatd at security levels none,
# auth and encrypt, and the same file fetched with OpenSSH's sftp using
# aes128-gcm@openssh.com from an sshd this script starts, all in the same
# run. Only ratios mean anything: loopback speed changes from machine to
# machine and from minute to minute. Within each round every row runs once,
# in one order in odd rounds and the reverse in even ones; the table shows
# medians, and the median of the per-round ratios encrypt/sftp, auth/none
# and encrypt/none.
#
#   bench/run_secure.sh [--quick] [--rounds N] [--size MiB] [BUILDDIR]
#
# RPC2_BENCH_SIZE (MiB, or with a G or M suffix) sets the size as --size
# does. BUILDDIR (default: $top_builddir, else .) must hold rcat/rcat and
# rcat/rcatd; this script builds nothing. It needs OpenSSH's server: when
# /usr/sbin/sshd is missing it installs the Debian package openssh-server
# (apt-get, as root) and says so. Its sshd runs on 127.0.0.1 on a free port
# with a temporary sshd_config, host key and authorized key; it changes no
# system configuration, and stops only the processes it started (when run
# as root, sshd needs the directory /run/sshd: made if missing, removed at
# the end if made here). Files go to a temporary directory under
# ${TMPDIR:-/tmp}; both tools write to /dev/null. The default (5 rounds of
# 1 GiB) takes about a minute on a 2-vCPU VM, --quick (2 rounds of 256 MiB)
# about 20 s. VERBOSE=1 also prints every line of every round.
# bench/README.md says what each figure means.
set -eu
. "$(dirname "$0")/lib.sh"

ROUNDS=5
SIZE_SPEC=${RPC2_BENCH_SIZE:-1024}
TARGET=1.5 # encrypt at least this times sftp's MB/s (issue 6)
BUILD=${top_builddir:-.}
SSHD=/usr/sbin/sshd
SFTP_SERVER=/usr/lib/openssh/sftp-server
CIPHER=aes128-gcm@openssh.com

usage() {
    echo "usage: $0 [--quick] [--rounds N] [--size MiB] [BUILDDIR]" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --quick) ROUNDS=2 SIZE_SPEC=256 ;;
    --rounds | --size)
        [ $# -ge 2 ] || usage
        if [ "$1" = --rounds ]; then ROUNDS=$2; else SIZE_SPEC=$2; fi
        shift
        ;;
    -*) usage ;;
    *) BUILD=$1 ;;
    esac
    shift
done
case $SIZE_SPEC in
*[gG]) SIZE_MIB=$((${SIZE_SPEC%?} * 1024)) ;;
*[mM]) SIZE_MIB=${SIZE_SPEC%?} ;;
*) SIZE_MIB=$SIZE_SPEC ;;
esac
bench_counts "$ROUNDS" "$SIZE_MIB"
SIZE=$((SIZE_MIB * 1048576))

RCAT=$BUILD/rcat/rcat
RCATD=$BUILD/rcat/rcatd
for prog in "$RCAT" "$RCATD"; do
    if [ ! -x "$prog" ]; then
        echo "run_secure.sh: $prog is missing; run 'make' in $BUILD" >&2
        exit 1
    fi
done
for prog in sftp ssh-keygen; do
    command -v "$prog" >/dev/null 2>&1 || MISSING_CLIENT=1
done

# The OpenSSH server, installed only when missing. Debian's maintainer
# scripts start no daemon where no init system runs (a container); if one
# did, it is left alone and said.
if [ ! -x "$SSHD" ] || [ ! -x "$SFTP_SERVER" ] || [ "${MISSING_CLIENT:-0}" = 1 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "run_secure.sh: OpenSSH's server is missing: install openssh-server" >&2
        exit 1
    fi
    echo "run_secure.sh: installing openssh-server (apt-get install -y openssh-server)" >&2
    export DEBIAN_FRONTEND=noninteractive
    # the package lists may be missing (a fresh container): update once, then retry
    if ! apt-get install -y -q openssh-server >/dev/null 2>&1; then
        apt-get update -q >/dev/null 2>&1 || true
        if ! apt-get install -y -q openssh-server >/dev/null; then
            echo "run_secure.sh: apt-get install openssh-server failed" >&2
            exit 1
        fi
    fi
    if ps -C sshd -o pid= >/dev/null 2>&1; then
        echo "run_secure.sh: note: the package started sshd $(ps -C sshd -o pid= | tr -d ' \n');" \
            "not stopped by this script" >&2
    fi
fi

MADE_RUN_DIR= # /run/sshd, when made here
BENCH_ATEXIT='[ -z "$MADE_RUN_DIR" ] || rmdir "$MADE_RUN_DIR" 2>/dev/null || true'
bench_scratch "${TMPDIR:-/tmp}" rpc2-bench-secure

# ---- files -------------------------------------------------------------------

ROOT=$TMP/srv
mkdir "$ROOT" "$TMP/keys" "$TMP/ssh"
chmod 700 "$TMP/keys" "$TMP/ssh"
SRC=$ROOT/src
avail_kib=$(df -Pk "$TMP" | awk 'NR == 2 { print $4 }')
if [ "$avail_kib" -lt $((SIZE / 1024 + 65536)) ]; then
    echo "run_secure.sh: $TMP has $((avail_kib / 1024)) MiB free; the source needs" \
        "$((SIZE_MIB + 64)) MiB with a margin" >&2
    exit 1
fi
echo "run_secure.sh: making a ${SIZE_MIB} MiB source file in $TMP" >&2
dd if=/dev/urandom of="$SRC" bs=1M count="$SIZE_MIB" status=none
cat "$SRC" >/dev/null # cached from here on: the rows measure the transfer, not the disk

# rcat's identity: a key made by rcat itself, as an operator would.
(umask 077 && "$RCAT" --genkey >"$TMP/keys/bench.key")
(umask 077 && echo "bench $(cat "$TMP/keys/bench.key")" >"$TMP/keys/rcatd.keys")

# sshd's host key and the client's key, both throwaway.
ssh-keygen -q -t ed25519 -N '' -C rpc2-bench-host -f "$TMP/ssh/host_key"
ssh-keygen -q -t ed25519 -N '' -C rpc2-bench-client -f "$TMP/ssh/client_key"
cp "$TMP/ssh/client_key.pub" "$TMP/ssh/authorized_keys"
USER_NAME=$(id -un)

# ---- servers ---------------------------------------------------------------

# wait_line FILE PATTERN: waits (at most 5 s) for a line matching PATTERN.
wait_line() {
    for _ in $(seq 50); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# One rcatd for every level: it accepts none, and the key file's identity
# above it.
"$RCATD" --listen 127.0.0.1:0 --root "$ROOT" --keys "$TMP/keys/rcatd.keys" --min-security none \
    --log "$TMP/rcatd.log" >"$TMP/rcatd.out" 2>&1 &
RCATD_PID=$!
PIDS="$PIDS $RCATD_PID"
if ! wait_line "$TMP/rcatd.out" "^rcatd listening on"; then
    echo "run_secure.sh: rcatd did not start:" >&2
    cat "$TMP/rcatd.out" "$TMP/rcatd.log" >&2
    exit 1
fi
RCATD_PORT=$(sed -n 's/^rcatd listening on \([0-9]*\)$/\1/p' "$TMP/rcatd.out")

# Privilege separation wants this directory when sshd runs as root.
if [ "$(id -u)" = 0 ] && [ ! -d /run/sshd ]; then
    mkdir -m 0755 /run/sshd
    MADE_RUN_DIR=/run/sshd
fi

# sshd_config: this run's keys, this user only, by key only, the one cipher
# (so the measurement cannot silently use another), no PID file outside $TMP.
# StrictModes is off because $TMP lies under /tmp, which others may write.
write_sshd_config() {
    cat >"$TMP/ssh/sshd_config" <<EOF
ListenAddress 127.0.0.1:$1
HostKey $TMP/ssh/host_key
PidFile $TMP/ssh/sshd.pid
AuthorizedKeysFile $TMP/ssh/authorized_keys
StrictModes no
AllowUsers $USER_NAME
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
Ciphers $CIPHER
Compression no
Subsystem sftp $SFTP_SERVER
LogLevel INFO
EOF
}

# sshd has no "any free port": try a few (as run_sftp.sh does for iperf3).
# -D: no daemon, so $! is the listener; -e: its log to the file.
SSHD_PID=
for try in 1 2 3 4 5 6 7 8; do
    SSH_PORT=$((20000 + ($$ * 7 + try * 997) % 40000))
    write_sshd_config "$SSH_PORT"
    "$SSHD" -D -e -f "$TMP/ssh/sshd_config" >"$TMP/sshd.log" 2>&1 &
    SSHD_PID=$!
    if wait_line "$TMP/sshd.log" "Server listening on 127.0.0.1 port $SSH_PORT"; then
        PIDS="$PIDS $SSHD_PID"
        break
    fi
    kill "$SSHD_PID" 2>/dev/null || true
    wait "$SSHD_PID" 2>/dev/null || true
    SSHD_PID=
done
if [ -z "$SSHD_PID" ]; then
    echo "run_secure.sh: sshd did not start:" >&2
    cat "$TMP/sshd.log" >&2
    exit 1
fi
echo "get $SRC /dev/null" >"$TMP/sftp.batch"

# ---- the clients ---------------------------------------------------------------

# Both write to /dev/null: rcat into the device as it is, sftp opening it.
run_client() {
    case $1 in
    none | auth | encrypt)
        "$RCAT" -q --no-progress --identity bench --key-file "$TMP/keys/bench.key" \
            --security "$1" -o /dev/null "rcat://127.0.0.1:$RCATD_PORT/src"
        ;;
    sftp)
        sftp -q -b "$TMP/sftp.batch" -P "$SSH_PORT" -F /dev/null -i "$TMP/ssh/client_key" \
            -o Ciphers="$CIPHER" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
            -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityAgent=none -o LogLevel=ERROR \
            "$USER_NAME@127.0.0.1" >/dev/null
        ;;
    esac
}

# ---- measuring -------------------------------------------------------------

HZ=$(getconf CLK_TCK)
GIB=$(awk -v s="$SIZE" 'BEGIN { print s / 1073741824 }')

# Server CPU ticks so far: rcatd's own (every thread); sshd's listener's
# children, reaped (cutime, cstime): each connection is a child, its session
# and sftp-server grandchildren, counted once the connection has ended.
server_ticks() {
    awk '{ print $14 + $15 + $16 + $17 }' "/proc/$1/stat"
}

# sshd reaps a connection's process a moment after the client exits.
wait_reaped() {
    for _ in $(seq 100); do
        [ -z "$(ps --ppid "$1" -o pid= 2>/dev/null)" ] && return 0
        sleep 0.02
    done
    echo "run_secure.sh: sshd still has a connection child after 2 s: its CPU is not counted" >&2
}

# children_cpu FILE: this shell's children's CPU seconds so far (user +
# system), into FILE. `times` must run in this shell itself: in a subshell
# it would count only that subshell's children.
children_cpu() {
    times >"$TMP/times"
    sed -n 2p "$TMP/times" | awk '{
        t = 0
        for (i = 1; i <= 2; i++) { split($i, a, "m"); t += a[1] * 60 + a[2] }
        printf "%.3f\n", t }' >"$1"
}

now_ns() {
    date +%s%N
}

# measure ROW: runs it once, appends MB/s and CPU seconds per GiB to
# $TMP/ROW.*. The time is the whole client run (start, handshake, transfer,
# exit), what a user waits for; either handshake is a few ms of seconds.
measure() {
    row=$1
    srv=$RCATD_PID
    [ "$row" = sftp ] && srv=$SSHD_PID
    s0=$(server_ticks "$srv")
    children_cpu "$TMP/cpu.before"
    t0=$(now_ns)
    if ! run_client "$row" 2>"$TMP/client.err"; then
        echo "run_secure.sh: $row failed:" >&2
        cat "$TMP/client.err" >&2
        exit 1
    fi
    t1=$(now_ns)
    children_cpu "$TMP/cpu.after"
    [ "$row" = sftp ] && wait_reaped "$SSHD_PID"
    s1=$(server_ticks "$srv")
    ccpu=$(awk -v a="$(cat "$TMP/cpu.before")" -v b="$(cat "$TMP/cpu.after")" \
        'BEGIN { printf "%.3f", b - a }')
    scpu=$(awk -v c="$((s1 - s0))" -v hz="$HZ" 'BEGIN { printf "%.3f", c / hz }')
    awk -v b="$SIZE" -v ns="$((t1 - t0))" 'BEGIN { printf "%.1f\n", b / ns * 1000 }' \
        >>"$TMP/$row.mbs"
    awk -v c="$ccpu" -v g="$GIB" 'BEGIN { printf "%.3f\n", c / g }' >>"$TMP/$row.ccpu"
    awk -v c="$scpu" -v g="$GIB" 'BEGIN { printf "%.3f\n", c / g }' >>"$TMP/$row.scpu"
    echo "  $row: $(tail -n 1 "$TMP/$row.mbs") MB/s, cpu s: client $ccpu, server $scpu" \
        >>"$TMP/log"
}

# ratio NAME BASE: this round's NAME MB/s over BASE's, appended to NAME.vs_BASE.
ratio() {
    awk -v a="$(tail -n 1 "$TMP/$1.mbs")" -v b="$(tail -n 1 "$TMP/$2.mbs")" \
        'BEGIN { printf "%.4f\n", a / b }' >>"$TMP/$1.vs_$2"
}

ROWS="none auth encrypt sftp"
REVERSED="sftp encrypt auth none"

echo "rcat fetches at security none, auth, encrypt vs OpenSSH sftp ($CIPHER) on loopback:" \
    "$ROUNDS rounds of $SIZE_MIB MiB"
# One unmeasured fetch of each: page cache, sshd's first re-exec, the ARP-free
# loopback path all warm before the first timed round.
for r in $ROWS; do
    run_client "$r" 2>"$TMP/client.err" || { cat "$TMP/client.err" >&2; exit 1; }
done
[ -n "$SSHD_PID" ] && wait_reaped "$SSHD_PID"
round=1
while [ "$round" -le "$ROUNDS" ]; do
    echo "round $round" >>"$TMP/log"
    order=$ROWS
    [ $((round % 2)) -eq 0 ] && order=$REVERSED
    for r in $order; do
        measure "$r"
    done
    ratio encrypt sftp
    ratio auth none
    ratio encrypt none
    printf '.' >&2
    round=$((round + 1))
done
echo >&2

# ---- the table ---------------------------------------------------------------

label() {
    case $1 in
    none) echo "rcat, security none" ;;
    auth) echo "rcat, security auth" ;;
    encrypt) echo "rcat, security encrypt" ;;
    sftp) echo "OpenSSH sftp, $CIPHER" ;;
    esac
}

echo
printf '| %-36s |  MB/s | min-max MB/s | cpu s/GiB: client | server | both |\n' \
    "fetch, $SIZE_MIB MiB -> /dev/null"
echo "| ------------------------------------ | ----: | -----------: | ----------------: | -----: | ---: |"
for r in $ROWS; do
    paste -d ' ' "$TMP/$r.ccpu" "$TMP/$r.scpu" | awk '{ printf "%.3f\n", $1 + $2 }' >"$TMP/$r.tcpu"
    printf '| %-36s | %5.0f | %12s | %17.2f | %6.2f | %4.2f |\n' "$(label "$r")" \
        "$(median "$TMP/$r.mbs")" \
        "$(sort -g "$TMP/$r.mbs" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f-%.0f", lo, hi }')" \
        "$(median "$TMP/$r.ccpu")" "$(median "$TMP/$r.scpu")" "$(median "$TMP/$r.tcpu")"
done
echo
echo "| ratio (median of the per-round ratios) | value | per round                     | target | result |"
echo "| -------------------------------------- | ----: | ----------------------------- | ------ | ------ |"
for pair in encrypt:sftp auth:none encrypt:none; do
    a=${pair%:*} b=${pair#*:}
    v=$(median "$TMP/$a.vs_$b")
    target="-" result="-"
    if [ "$pair" = encrypt:sftp ]; then
        target=">= $TARGET"
        result=$(awk -v v="$v" -v t="$TARGET" 'BEGIN { print (v >= t ? "PASS" : "MISS") }')
    fi
    printf '| %-38s | %5.2f | %-29s | %-6s | %-6s |\n' "$a / $b" "$v" \
        "$(awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), $1 }' "$TMP/$a.vs_$b")" "$target" "$result"
done
echo
echo "MB/s: 10^6 bytes per second over the whole client run (start, handshake, transfer, exit);"
echo "CPU: seconds per GiB, the client's from this shell's children times, the server's from"
echo "/proc (rcatd's threads; sshd's reaped connection processes, sftp-server included)."
if [ "${VERBOSE:-0}" = 1 ]; then
    cat "$TMP/log"
fi
