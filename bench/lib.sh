# shellcheck shell=sh
# lib.sh - what the bench scripts share, sourced by each (POSIX sh):
#
#   . "$(dirname "$0")/lib.sh"
#
# counts checked against the script's own usage, a scratch directory that
# goes at exit together with the servers the script started, waiting for a
# server's port, an iperf3 server, and a median.

# bench_counts VALUE...: each a positive integer, else the script's usage.
bench_counts() {
    for v in "$@"; do
        case $v in
        '' | *[!0-9]* | 0) usage ;;
        esac
    done
}

# bench_scratch DIR NAME: TMP becomes a new directory NAME.XXXXXX under DIR
# (its path resolved). At exit every pid the script added to PIDS is ended
# (only those: nothing else is killed), BENCH_ATEXIT is run when set (what
# else the script made), and TMP is removed.
bench_scratch() {
    TMP=$(mktemp -d "$1/$2.XXXXXX") || exit 1
    TMP=$(cd "$TMP" && pwd -P)
    PIDS=
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM HUP PIPE
}

bench_cleanup() {
    for pid in $PIDS; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [ -z "${BENCH_ATEXIT:-}" ] || eval "$BENCH_ATEXIT"
    rm -rf "$TMP"
}

# median FILE: the median of FILE's numbers, one a line.
median() {
    sort -g "$1" | awk '{ v[NR] = $1 }
        END { printf "%s", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_wait_port FILE PATTERN: the port a server printed as "PATTERN PORT"
# at the start of a line of FILE (PATTERN a sed regex), once it has (5 s).
bench_wait_port() {
    for _ in $(seq 50); do
        port=$(sed -n "s/^$2 \\([0-9][0-9]*\\).*/\\1/p" "$1" | head -n 1)
        if [ -n "$port" ]; then
            echo "$port"
            return 0
        fi
        sleep 0.1
    done
    echo "$(basename "$0"): no port in $1:" >&2
    cat "$1" >&2
    return 1
}

# bench_iperf_server OUT: starts one `iperf3 -s` for the whole run (its
# output to OUT) and adds it to PIDS; sets IPERF_PORT and IPERF_PID.
# iperf3 has no "any free port", so a few are tried; 1 when none would do.
bench_iperf_server() {
    for try in 1 2 3 4 5 6 7 8; do
        IPERF_PORT=$((20000 + ($$ * 7 + try * 997) % 40000))
        iperf3 -s -p "$IPERF_PORT" --forceflush >"$1" 2>&1 &
        IPERF_PID=$!
        if bench_wait_port "$1" "Server listening on" >/dev/null 2>&1; then
            PIDS="$PIDS $IPERF_PID"
            return 0
        fi
        kill "$IPERF_PID" 2>/dev/null || true
        wait "$IPERF_PID" 2>/dev/null || true
    done
    IPERF_PID=
    return 1
}
