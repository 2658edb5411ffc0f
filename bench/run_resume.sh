#!/bin/bash
# run_resume.sh - what resuming costs: a fetch of SIZE (1 GiB) with rcat -C
# killed (SIGKILL) at 50 % and continued, against the same fetch
# uninterrupted, alternating the two in one run (rcatd and rcat on
# loopback). Prints per round and as medians: the bytes the resume moved
# (target: at most 0.55 of the file) and all attempts together (the killed
# one's as rcatd logged them), and the time of killed + resumed attempts
# over the uninterrupted one (the resume hashes the prefix again on both
# ends, and the killed attempt's unacknowledged window moves twice).
#
#   bench/run_resume.sh [--rounds N] [--size MiB] [BUILDDIR]
#
# BUILDDIR (default: $top_builddir, else .) must hold rcat/rcat and
# rcat/rcatd; nothing is built. Files go to a temporary directory under
# ${TMPDIR:-/tmp} (3 x SIZE). The default (3 rounds of 1 GiB) takes about a
# minute; each killed attempt's server side needs some seconds to find its
# client gone before its bytes are logged.
set -u

ROUNDS=3
SIZE_MIB=1024
BUILD=${top_builddir:-.}
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --size) SIZE_MIB=$2; shift ;;
    -*) echo "usage: $0 [--rounds N] [--size MiB] [BUILDDIR]" >&2; exit 2 ;;
    *) BUILD=$1 ;;
    esac
    shift
done
rcat="$BUILD/rcat/rcat"
rcatd="$BUILD/rcat/rcatd"
[ -x "$rcat" ] && [ -x "$rcatd" ] || { echo "$rcat or $rcatd not built" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/run_resume.XXXXXX") || exit 1
server=""
client=""
cleanup() {
    [ -n "$client" ] && kill -9 "$client" 2>/dev/null
    [ -n "$server" ] && kill "$server" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

size=$((SIZE_MIB << 20))
mkdir "$tmp/root" "$tmp/cli"
head -c "$size" /dev/urandom >"$tmp/root/big" || exit 1
"$rcatd" --listen 127.0.0.1:0 --root "$tmp/root" --log "$tmp/d.log" >"$tmp/d.out" 2>&1 &
server=$!
port=""
for _ in $(seq 1 100); do
    port=$(sed -n 's/^rcatd listening on \([0-9]*\)$/\1/p' "$tmp/d.out")
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || { echo "rcatd did not start" >&2; exit 1; }
url="rcat://127.0.0.1:$port/big"

now() { date +%s.%N; }
calc() { awk "BEGIN {printf \"%.6f\", $1}"; }
fsize() { stat -c %s "$1" 2>/dev/null || echo 0; }
field() { grep '"Type":"STOP"' "$2" | tail -1 | grep -o "\"$1\":[0-9]*" | cut -d: -f2; }
fetches() { grep -c ' FETCH big ' "$tmp/d.log"; }

uninterrupted() {
    rm -f "$tmp/cli/big"
    local t0
    t0=$(now)
    "$rcat" -q -o "$tmp/cli/big" "$url" || return 1
    calc "$(now) - $t0"
}

# prints: seconds (killed + resumed), bytes the resume moved, bytes in all
interrupted() {
    rm -f "$tmp/cli/big"
    local before t0 t1 t2 killed resumed_bytes
    before=$(fetches)
    t0=$(now)
    "$rcat" -C -q -o "$tmp/cli/big" "$url" &
    client=$!
    while kill -0 "$client" 2>/dev/null && [ "$(fsize "$tmp/cli/.big.rcat-part")" -lt $((size / 2)) ]; do
        sleep 0.01
    done
    kill -9 "$client" 2>/dev/null
    wait "$client" 2>/dev/null
    client=""
    t1=$(now)
    "$rcat" -C --json -o "$tmp/cli/big" "$url" 2>"$tmp/resume.json" || return 1
    t2=$(now)
    cmp -s "$tmp/root/big" "$tmp/cli/big" || { echo "resumed file differs" >&2; return 1; }
    resumed_bytes=$(field FileBytes "$tmp/resume.json")
    # the killed attempt's line comes once the server finds its client gone
    for _ in $(seq 1 600); do
        [ "$(fetches)" -ge $((before + 2)) ] && break
        sleep 0.1
    done
    killed=$(grep ' FETCH big ' "$tmp/d.log" | sed -n "$((before + 1))p" |
        awk '{for (i = 1; i < NF; i++) if ($(i + 1) == "B") print $i}')
    echo "$(calc "$t1 - $t0 + $t2 - $t1") $resumed_bytes $((killed + resumed_bytes))"
}

median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

printf '%-6s %12s %12s %10s %12s %12s\n' round full_s kill+res_s ratio resume_GiB all_GiB
: >"$tmp/rows"
for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
        full=$(uninterrupted) || exit 1
        set -- $(interrupted) || exit 1
    else
        set -- $(interrupted) || exit 1
        full=$(uninterrupted) || exit 1
    fi
    [ $# -eq 3 ] || { echo "round $r: the interrupted fetch failed" >&2; exit 1; }
    ratio=$(calc "$1 / $full")
    rg=$(calc "$2 / $size")
    ag=$(calc "$3 / $size")
    printf '%-6s %12.3f %12.3f %10.3f %12.3f %12.3f\n' "$r" "$full" "$1" "$ratio" "$rg" "$ag"
    echo "$full $1 $ratio $rg $ag" >>"$tmp/rows"
done
col() { awk -v c="$1" '{print $c}' "$tmp/rows" | median; }
printf '%-6s %12.3f %12.3f %10.3f %12.3f %12.3f\n' median "$(col 1)" "$(col 2)" "$(col 3)" \
    "$(col 4)" "$(col 5)"
verdict=ok
awk -v v="$(col 4)" 'BEGIN {exit !(v <= 0.55)}' || verdict="OVER TARGET"
echo "resume moved $(col 4) of the file (target <= 0.55): $verdict"
echo "killed + resumed took $(col 3) x an uninterrupted fetch's time"
