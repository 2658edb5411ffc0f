#!/bin/bash
# run_tree.sh - a tree of many small files fetched whole (issue 14): 2,000
# files of 1-20 KiB in 10 directories, fetched with `rcat -r -j N` from
# rcatd and with `rsync -a` from an rsync daemon, both on loopback,
# alternating A B A B in one run into a fresh directory each time. Prints
# each round and the medians, and rcat's time over rsync's (target: at
# most 0.5).
#
#   bench/run_tree.sh [--rounds N] [--jobs N] [--files N] [BUILDDIR]
#
# BUILDDIR (default: $top_builddir, else .) must hold rcat/rcat and
# rcat/rcatd; nothing is built. rsync (a Debian package) is installed with
# apt-get when missing. rcat flushes the copy to disk once at the end
# (syncfs); rsync does not flush at all, so rsync's side is given a sync of
# its own copy's filesystem too (--sync-rsync 0 leaves it out).
set -u

ROUNDS=5
JOBS=8
FILES=2000
SYNC_RSYNC=1
BUILD=${top_builddir:-.}
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --jobs) JOBS=$2; shift ;;
    --files) FILES=$2; shift ;;
    --sync-rsync) SYNC_RSYNC=$2; shift ;;
    -*) echo "usage: $0 [--rounds N] [--jobs N] [--files N] [--sync-rsync 0|1] [BUILDDIR]" >&2; exit 2 ;;
    *) BUILD=$1 ;;
    esac
    shift
done
rcat="$BUILD/rcat/rcat"
rcatd="$BUILD/rcat/rcatd"
[ -x "$rcat" ] && [ -x "$rcatd" ] || { echo "$rcat or $rcatd not built" >&2; exit 1; }
command -v rsync >/dev/null || apt-get install -y -q rsync >/dev/null 2>&1 ||
    { echo "rsync is missing and could not be installed" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/run_tree.XXXXXX") || exit 1
server=""
rsyncd=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null
    [ -n "$rsyncd" ] && kill "$rsyncd" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

mkdir -p "$tmp/root/tree"
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

"$rcatd" --listen 127.0.0.1:0 --root "$tmp/root" >"$tmp/rcatd.out" 2>"$tmp/rcatd.err" &
server=$!
port=""
for _ in $(seq 1 100); do
    port=$(sed -n 's/^rcatd listening on \([0-9]*\)$/\1/p' "$tmp/rcatd.out")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/rcatd.err"; echo "rcatd did not start" >&2; exit 1; }

# an rsync daemon on a free port (bind to 0 is not offered: try a few)
cat >"$tmp/rsyncd.conf" <<EOF
use chroot = no
[root]
    path = $tmp/root
    read only = yes
EOF
for try in $(seq 1 20); do
    rport=$((20000 + RANDOM % 20000))
    rsync --daemon --no-detach --address=127.0.0.1 --port="$rport" --config="$tmp/rsyncd.conf" \
        --log-file="$tmp/rsyncd.log" &
    rsyncd=$!
    sleep 0.3
    if kill -0 "$rsyncd" 2>/dev/null && rsync "rsync://127.0.0.1:$rport/root/" >/dev/null 2>&1; then
        break
    fi
    kill "$rsyncd" 2>/dev/null
    wait "$rsyncd" 2>/dev/null
    rsyncd=""
done
[ -n "$rsyncd" ] || { echo "rsync daemon did not start" >&2; exit 1; }

now() { date +%s.%N; }
run_rcat() {
    rm -rf "$tmp/a"
    local t0=$(now)
    "$rcat" -q -P "$port" -r -j "$JOBS" "127.0.0.1:tree/" "$tmp/a" || { echo "rcat failed" >&2; exit 1; }
    echo "$(now) $t0" | awk '{printf "%.3f", $1 - $2}'
}
run_rsync() {
    rm -rf "$tmp/b"
    local t0=$(now)
    rsync -a "rsync://127.0.0.1:$rport/root/tree/" "$tmp/b/" || { echo "rsync failed" >&2; exit 1; }
    [ "$SYNC_RSYNC" = 1 ] && sync -f "$tmp/b"
    echo "$(now) $t0" | awk '{printf "%.3f", $1 - $2}'
}

echo "tree: $FILES files of 1-20 KiB in 10 directories ($(du -sk "$tmp/root/tree" | cut -f1) KiB);" \
    "rcat -r -j $JOBS vs rsync -a (daemon), $ROUNDS rounds"
run_rcat >/dev/null # warm the page cache and both servers
run_rsync >/dev/null
diff -r "$tmp/a" "$tmp/b" >/dev/null || { echo "the two copies differ" >&2; exit 1; }
ra=()
rb=()
for i in $(seq 1 "$ROUNDS"); do
    a=$(run_rcat)
    b=$(run_rsync)
    ra+=("$a")
    rb+=("$b")
    printf "  round %d: rcat %s s  rsync %s s\n" "$i" "$a" "$b"
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
ma=$(median "${ra[@]}")
mb=$(median "${rb[@]}")
echo "median: rcat $ma s, rsync $mb s, rcat/rsync $(echo "$ma $mb" | awk '{printf "%.2f", $1 / $2}') (target <= 0.5)"
