#!/bin/bash
# run_tree.sh - a tree of many small files copied whole (issue 14): 2,000
# files of 1-20 KiB in 10 directories, fetched with `rcat -r -j N` from
# rcatd and with `rsync -a` from an rsync daemon, both on loopback (with
# --put: stored with `rcat -r --put` into rcatd and pushed with `rsync -a`
# into the daemon), alternating in one run, each round into a fresh
# directory. With --baseline DIR, a second build's rcat and rcatd run in
# the same rounds too (before/after in one run). Prints each round, the
# medians, and rcat's time over rsync's (target: at most 0.5).
#
#   bench/run_tree.sh [--put] [--rounds N] [--jobs N] [--files N]
#                     [--sync-rsync 0|1] [--baseline DIR] [BUILDDIR]
#
# BUILDDIR (default: $top_builddir, else .) must hold rcat/rcat and
# rcat/rcatd; nothing is built. rcat and rcatd are run as installed ones
# are (the binaries under .libs with the build's library), not through
# libtool's wrapper scripts, whose shell costs ~0.1 s a run that is no
# part of rcat. Copies are removed only at the end: on this ext4 (no
# journal), creating files soon after thousands were deleted costs the
# kernel a scan of the recently freed inodes per file (recently_deleted in
# find_inode_bit, 77% of rcat's CPU with `rm -rf` before each round),
# which made the figures depend on what was deleted in the last 30 s.
# rsync (a Debian package) is installed with apt-get when missing. rcat
# flushes the copy to disk once at the end (syncfs; with --put the server
# does, on rcat's SYNC call); rsync does not flush at all, so rsync's side
# is given a sync of its copy's filesystem too (--sync-rsync 0 leaves it
# out).
set -u

ROUNDS=5
JOBS=8
FILES=2000
SYNC_RSYNC=1
PUT=0
BASE=""
BUILD=${top_builddir:-.}
usage="usage: $0 [--put] [--rounds N] [--jobs N] [--files N] [--sync-rsync 0|1] [--baseline DIR] [BUILDDIR]"
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --jobs) JOBS=$2; shift ;;
    --files) FILES=$2; shift ;;
    --sync-rsync) SYNC_RSYNC=$2; shift ;;
    --baseline) BASE=$2; shift ;;
    --put) PUT=1 ;;
    -*) echo "$usage" >&2; exit 2 ;;
    *) BUILD=$1 ;;
    esac
    shift
done

# prog DIR NAME: the command that runs the build's NAME as installed
prog() {
    local b
    b=$(cd "$1" && pwd)
    if [ -x "$b/rcat/.libs/$2" ]; then
        echo "env LD_LIBRARY_PATH=$b/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} $b/rcat/.libs/$2"
    elif [ -x "$b/rcat/$2" ]; then
        echo "$b/rcat/$2"
    else
        echo "$b/rcat/$2 not built" >&2
        return 1
    fi
}
rcat=$(prog "$BUILD" rcat) && rcatd=$(prog "$BUILD" rcatd) || exit 1
if [ -n "$BASE" ]; then
    base_rcat=$(prog "$BASE" rcat) && base_rcatd=$(prog "$BASE" rcatd) || exit 1
fi
command -v rsync >/dev/null || apt-get install -y -q rsync >/dev/null 2>&1 ||
    { echo "rsync is missing and could not be installed" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/run_tree.XXXXXX") || exit 1
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

mkdir -p "$tmp/root/tree" "$tmp/root/put" "$tmp/dst"
python3 - "$tmp/root/tree" "$FILES" <<'PY'
import os, random, sys
random.seed(7)
top, n = sys.argv[1], int(sys.argv[2])
for d in range(10):
    os.mkdir(os.path.join(top, "dir%02d" % d))
for i in range(n):
    with open(os.path.join(top, "dir%02d" % (i % 10), "file%05d" % i), "wb") as f:
        f.write(os.urandom(random.randint(1024, 20 * 1024)))
PY

# start_rcatd NAME CMD: rcatd serving $tmp/root; its port in $port
start_rcatd() {
    local name=$1
    shift
    $@ --listen 127.0.0.1:0 --root "$tmp/root" --writable >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pids+=($!)
    port=""
    for _ in $(seq 1 100); do
        port=$(sed -n 's/^rcatd listening on \([0-9]*\)$/\1/p' "$tmp/$name.out")
        [ -n "$port" ] && return 0
        sleep 0.1
    done
    cat "$tmp/$name.err"
    echo "rcatd ($name) did not start" >&2
    exit 1
}
start_rcatd rcatd "$rcatd"
new_port=$port
[ -n "$BASE" ] && start_rcatd base_rcatd "$base_rcatd" && base_port=$port

# an rsync daemon on a free port (bind to 0 is not offered: try a few)
cat >"$tmp/rsyncd.conf" <<EOF
use chroot = no
uid = $(id -u)
gid = $(id -g)
[root]
    path = $tmp/root
    read only = no
EOF
rsyncd=""
for try in $(seq 1 20); do
    rport=$((20000 + RANDOM % 20000))
    rsync --daemon --no-detach --address=127.0.0.1 --port="$rport" --config="$tmp/rsyncd.conf" \
        --log-file="$tmp/rsyncd.log" &
    rsyncd=$!
    sleep 0.3
    if kill -0 "$rsyncd" 2>/dev/null && rsync "rsync://127.0.0.1:$rport/root/" >/dev/null 2>&1; then
        pids+=("$rsyncd")
        break
    fi
    kill "$rsyncd" 2>/dev/null
    wait "$rsyncd" 2>/dev/null
    rsyncd=""
done
[ -n "$rsyncd" ] || { echo "rsync daemon did not start" >&2; exit 1; }

now() { date +%s.%N; }
since() { echo "$(now) $1" | awk '{printf "%.3f", $1 - $2}'; }
# run_rcat CMD PORT NAME: one copy into a fresh NAME; prints its time
run_rcat() {
    local t0
    t0=$(now)
    if [ "$PUT" = 1 ]; then
        $1 -q -P "$2" -r -j "$JOBS" --put "$tmp/root/tree/" "127.0.0.1:put/$3" ||
            { echo "rcat failed" >&2; exit 1; }
    else
        $1 -q -P "$2" -r -j "$JOBS" "127.0.0.1:tree/" "$tmp/dst/$3" || { echo "rcat failed" >&2; exit 1; }
    fi
    since "$t0"
}
run_rsync() {
    local t0 dst
    t0=$(now)
    if [ "$PUT" = 1 ]; then
        rsync -a "$tmp/root/tree/" "rsync://127.0.0.1:$rport/root/put/$1/" || { echo "rsync failed" >&2; exit 1; }
        dst=$tmp/root/put
    else
        rsync -a "rsync://127.0.0.1:$rport/root/tree/" "$tmp/dst/$1/" || { echo "rsync failed" >&2; exit 1; }
        dst=$tmp/dst
    fi
    [ "$SYNC_RSYNC" = 1 ] && sync -f "$dst"
    since "$t0"
}
where() { [ "$PUT" = 1 ] && echo "$tmp/root/put/$1" || echo "$tmp/dst/$1"; }

what="fetched: rcat -r -j $JOBS vs rsync -a (daemon)"
[ "$PUT" = 1 ] && what="stored: rcat -r --put -j $JOBS vs rsync -a (into the daemon)"
echo "tree: $FILES files of 1-20 KiB in 10 directories ($(du -sk "$tmp/root/tree" | cut -f1) KiB)" \
    "$what, $ROUNDS rounds${BASE:+, baseline $BASE}"
# warm the page cache and the servers; the copies must agree
run_rcat "$rcat" "$new_port" warm.rcat >/dev/null
run_rsync warm.rsync >/dev/null
diff -r "$(where warm.rcat)" "$(where warm.rsync)" >/dev/null || { echo "the two copies differ" >&2; exit 1; }
if [ -n "$BASE" ]; then
    run_rcat "$base_rcat" "$base_port" warm.base >/dev/null
    diff -r "$(where warm.base)" "$(where warm.rsync)" >/dev/null || { echo "the baseline's copy differs" >&2; exit 1; }
fi
ra=()
rb=()
rc=()
for i in $(seq 1 "$ROUNDS"); do
    c=""
    # the order turns each round, so none always runs after the same one
    if [ $((i % 2)) = 1 ]; then
        [ -n "$BASE" ] && c=$(run_rcat "$base_rcat" "$base_port" "base.$i")
        a=$(run_rcat "$rcat" "$new_port" "rcat.$i")
        b=$(run_rsync "rsync.$i")
    else
        b=$(run_rsync "rsync.$i")
        a=$(run_rcat "$rcat" "$new_port" "rcat.$i")
        [ -n "$BASE" ] && c=$(run_rcat "$base_rcat" "$base_port" "base.$i")
    fi
    ra+=("$a")
    rb+=("$b")
    [ -n "$c" ] && rc+=("$c")
    printf "  round %d: rcat %s s  rsync %s s%s\n" "$i" "$a" "$b" "${c:+  baseline rcat $c s}"
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
ma=$(median "${ra[@]}")
mb=$(median "${rb[@]}")
echo "median: rcat $ma s, rsync $mb s, rcat/rsync $(echo "$ma $mb" | awk '{printf "%.2f", $1 / $2}') (target <= 0.5)"
if [ -n "$BASE" ]; then
    mc=$(median "${rc[@]}")
    echo "baseline: rcat $mc s, rcat/rsync $(echo "$mc $mb" | awk '{printf "%.2f", $1 / $2}'); this build over the baseline $(echo "$ma $mc" | awk '{printf "%.2f", $1 / $2}')"
fi
