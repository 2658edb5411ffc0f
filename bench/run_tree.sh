#!/bin/bash
# run_tree.sh - a tree of many small files copied whole (issue 14): 2,000
# files of 1-20 KiB in 10 directories, fetched with `rcat -r -j N` from
# rcatd and with `rsync -a` from an rsync daemon, both on loopback (with
# --put: stored with `rcat -r --put` into rcatd and pushed with `rsync -a`
# into the daemon), alternating in one run, each round into a fresh
# directory on each destination filesystem. With --baseline DIR, a second
# build's rcat and rcatd run in the same rounds too (before/after in one
# run). Prints each round, the medians per destination and rcat's time over
# rsync's (target: at most 0.5), then where rcat's time went (traced
# rounds, below).
#
#   bench/run_tree.sh [--put] [--rounds N] [--jobs N] [--files N]
#                     [--dest DIR]... [--phases N] [--sync-rsync 0|1]
#                     [--baseline DIR] [BUILDDIR]
#
# BUILDDIR (default: $top_builddir, else .) must hold rcat/rcat and
# rcat/rcatd; nothing is built. rcat and rcatd are run as installed ones
# are (the binaries under .libs with the build's library), not through
# libtool's wrapper scripts, whose shell costs ~0.1 s a run that is no
# part of rcat.
#
# Destinations. Each --dest DIR is a directory on a filesystem the copies
# go to (with --put: where the servers' roots are); every round copies to
# each, and each gets its own figures. By default: ${TMPDIR:-/tmp} (this
# machine's disk, ext4 without a journal) and /dev/shm when it is a tmpfs.
# The disk's figure is the noisy one, for a reason outside both tools:
# ext4 without a journal skips, on every inode it allocates, each inode of
# the block group freed in the last ~30 s (recently_deleted in
# find_inode_bit), and other processes on the machine (builds, test
# suites) free thousands a minute. One fetch's client then spent 0.05 s
# or 0.55 s of system time creating the same 2,000 files (perf: 60-75 % in
# recently_deleted), depending only on what others had deleted lately in
# the block group its directories landed in; rsync's receiver pays the
# same, when it happens to. A tmpfs has no such scan and no flush, so its
# figure is the two tools' own work. Copies are removed only at the end,
# so the script's own deletions never feed that scan.
#
# Durability. rcat flushes the copy to disk once at the end (syncfs; with
# --put the server does, on rcat's SYNC call); rsync does not flush at all,
# so rsync's side is given a sync of its copy's filesystem too, timed on
# its own and shown apart (--sync-rsync 0 leaves it out).
#
# Phases. After the timed rounds, --phases N (default 3; 0: none) more
# fetches per destination run under strace, tracing only mkdir/mkdirat,
# syncfs and exit_group (seccomp-bpf: the other calls are not stopped),
# to split rcat's time into: start (process start, connection, STAT and
# LIST of the tree, until the first directory is made), files (the
# transfers and renames), flush (syncfs) and end. Tracing adds ~10-20 ms
# a run, so these rounds are not in the medians. Needs strace (fetch only).
set -u

ROUNDS=7
JOBS=8
FILES=2000
SYNC_RSYNC=1
PUT=0
PHASES=3
BASE=""
DESTS=()
BUILD=${top_builddir:-.}
usage="usage: $0 [--put] [--rounds N] [--jobs N] [--files N] [--dest DIR]... [--phases N] [--sync-rsync 0|1] [--baseline DIR] [BUILDDIR]"
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --jobs) JOBS=$2; shift ;;
    --files) FILES=$2; shift ;;
    --dest) DESTS+=("$2"); shift ;;
    --phases) PHASES=$2; shift ;;
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
if [ "$PHASES" -gt 0 ] && { [ "$PUT" = 1 ] || ! command -v strace >/dev/null; }; then
    [ "$PUT" = 0 ] && echo "(no strace: no phases)"
    PHASES=0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/run_tree.XXXXXX") || exit 1
if [ ${#DESTS[@]} = 0 ]; then
    DESTS=("${TMPDIR:-/tmp}")
    [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] && DESTS+=(/dev/shm)
fi
pids=()
dirs=("$tmp")
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "${dirs[@]}"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# each destination: a directory of ours on it (dd), its filesystem (fs)
dd=()
fs=()
for d in "${DESTS[@]}"; do
    k=${#dd[@]}
    dd[k]=$(mktemp -d "$d/run_tree.XXXXXX") || exit 1
    dirs+=("${dd[k]}")
    fs[k]=$(stat -f -c %T "$d")
    [ "${fs[k]}" = ext2/ext3 ] && fs[k]=ext4 # stat's name for the family
    mkdir -p "${dd[k]}/dst" "${dd[k]}/root/put"
done

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

# start_rcatd NAME ROOT CMD: rcatd serving ROOT; its port in $port
start_rcatd() {
    local name=$1 root=$2
    shift 2
    # shellcheck disable=SC2048,SC2086 # CMD is prog's "env ... PATH": split into words
    $* --listen 127.0.0.1:0 --root "$root" --writable >"$tmp/$name.out" 2>"$tmp/$name.err" &
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
# A fetch reads $tmp/root from one pair of servers; a put writes into the
# destination's own root, so each destination has its pair (new_port[k],
# base_port[k], and module root$k of the one rsync daemon).
new_port=()
base_port=()
for k in "${!dd[@]}"; do
    root=$tmp/root
    [ "$PUT" = 1 ] && root=${dd[k]}/root
    if [ "$PUT" = 1 ] || [ "$k" = 0 ]; then
        start_rcatd "rcatd$k" "$root" "$rcatd"
        new_port[k]=$port
        [ -n "$BASE" ] && start_rcatd "base_rcatd$k" "$root" "$base_rcatd" && base_port[k]=$port
    else
        new_port[k]=${new_port[0]}
        [ -n "$BASE" ] && base_port[k]=${base_port[0]}
    fi
done

# an rsync daemon on a free port (bind to 0 is not offered: try a few)
{
    echo "use chroot = no"
    echo "uid = $(id -u)"
    echo "gid = $(id -g)"
    for k in "${!dd[@]}"; do
        root=$tmp/root
        [ "$PUT" = 1 ] && root=${dd[k]}/root
        printf '[root%d]\n    path = %s\n    read only = no\n' "$k" "$root"
    done
} >"$tmp/rsyncd.conf"
rsyncd=""
for _ in $(seq 1 20); do
    rport=$((20000 + RANDOM % 20000))
    rsync --daemon --no-detach --address=127.0.0.1 --port="$rport" --config="$tmp/rsyncd.conf" \
        --log-file="$tmp/rsyncd.log" &
    rsyncd=$!
    sleep 0.3
    if kill -0 "$rsyncd" 2>/dev/null && rsync "rsync://127.0.0.1:$rport/root0/" >/dev/null 2>&1; then
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
# where K NAME: the copy NAME on destination K
where() { [ "$PUT" = 1 ] && echo "${dd[$1]}/root/put/$2" || echo "${dd[$1]}/dst/$2"; }
# rcat_copy CMD PORT K NAME [WRAPPER...]: one copy into a fresh NAME (run
# under WRAPPER when given); CMD is split into words (prog's "env ...")
rcat_copy() {
    local cmd=$1 port=$2 k=$3 name=$4
    shift 4
    if [ "$PUT" = 1 ]; then
        # shellcheck disable=SC2086
        "$@" $cmd -q -P "$port" -r -j "$JOBS" --put "$tmp/root/tree/" "127.0.0.1:put/$name"
    else
        # shellcheck disable=SC2086
        "$@" $cmd -q -P "$port" -r -j "$JOBS" 127.0.0.1:tree/ "$(where "$k" "$name")"
    fi
}
# run_rcat CMD PORT K NAME: one copy into a fresh NAME; prints its time
run_rcat() {
    local t0
    t0=$(now)
    rcat_copy "$@" || { echo "rcat failed" >&2; exit 1; }
    since "$t0"
}
# run_rsync K NAME: one copy into a fresh NAME; prints "TOTAL FLUSH"
run_rsync() {
    local t0 t1 flush=0
    t0=$(now)
    if [ "$PUT" = 1 ]; then
        rsync -a "$tmp/root/tree/" "rsync://127.0.0.1:$rport/root$1/put/$2/" || { echo "rsync failed" >&2; exit 1; }
    else
        rsync -a "rsync://127.0.0.1:$rport/root0/tree/" "$(where "$1" "$2")/" || { echo "rsync failed" >&2; exit 1; }
    fi
    if [ "$SYNC_RSYNC" = 1 ]; then
        t1=$(now)
        sync -f "$(where "$1" "$2")"
        flush=$(since "$t1")
    fi
    echo "$(since "$t0") $flush"
}

what="fetched: rcat -r -j $JOBS vs rsync -a (daemon)"
[ "$PUT" = 1 ] && what="stored: rcat -r --put -j $JOBS vs rsync -a (into the daemon)"
echo "tree: $FILES files of 1-20 KiB in 10 directories ($(du -sk "$tmp/root/tree" | cut -f1) KiB)" \
    "$what, $ROUNDS rounds${BASE:+, baseline $BASE}; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for k in "${!dd[@]}"; do echo "  destination $k: ${dd[k]} (${fs[k]})"; done
[ "$SYNC_RSYNC" = 1 ] && echo "  rsync's time includes a sync -f of its copy (rcat flushes its own)"
# warm the page cache and the servers; the copies must agree
for k in "${!dd[@]}"; do
    run_rcat "$rcat" "${new_port[k]}" "$k" warm.rcat >/dev/null
    run_rsync "$k" warm.rsync >/dev/null
    diff -r "$(where "$k" warm.rcat)" "$(where "$k" warm.rsync)" >/dev/null ||
        { echo "the two copies differ" >&2; exit 1; }
    if [ -n "$BASE" ]; then
        run_rcat "$base_rcat" "${base_port[k]}" "$k" warm.base >/dev/null
        diff -r "$(where "$k" warm.base)" "$(where "$k" warm.rsync)" >/dev/null ||
            { echo "the baseline's copy differs" >&2; exit 1; }
    fi
done

# per destination: each round's times (ra: rcat, rb: rsync, rf: rsync's
# flush, rc: baseline), space-separated
ra=()
rb=()
rf=()
rc=()
for i in $(seq 1 "$ROUNDS"); do
    for k in "${!dd[@]}"; do
        c=""
        # the order turns each round, so none always runs after the same one
        if [ $((i % 2)) = 1 ]; then
            [ -n "$BASE" ] && c=$(run_rcat "$base_rcat" "${base_port[k]}" "$k" "base.$i")
            a=$(run_rcat "$rcat" "${new_port[k]}" "$k" "rcat.$i")
            b=$(run_rsync "$k" "rsync.$i")
        else
            b=$(run_rsync "$k" "rsync.$i")
            a=$(run_rcat "$rcat" "${new_port[k]}" "$k" "rcat.$i")
            [ -n "$BASE" ] && c=$(run_rcat "$base_rcat" "${base_port[k]}" "$k" "base.$i")
        fi
        ra[k]="${ra[k]:-} $a"
        rb[k]="${rb[k]:-} ${b% *}"
        rf[k]="${rf[k]:-} ${b#* }"
        rc[k]="${rc[k]:-} $c"
        printf "  round %d, %-6s rcat %s s  rsync %s s (flush %s s)%s\n" "$i" "${fs[k]}:" "$a" \
            "${b% *}" "${b#* }" "${c:+  baseline rcat $c s}"
    done
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
ratio() { echo "$1 $2" | awk '{printf "%.2f", $1 / $2}'; }
echo "medians (load now: $(cut -d' ' -f1-3 /proc/loadavg)):"
for k in "${!dd[@]}"; do
    # shellcheck disable=SC2086 # the lists are meant to split
    ma=$(median ${ra[k]})
    # shellcheck disable=SC2086
    mb=$(median ${rb[k]})
    # shellcheck disable=SC2086
    mf=$(median ${rf[k]})
    echo "  ${fs[k]}: rcat $ma s, rsync $mb s (its flush $mf s), rcat/rsync $(ratio "$ma" "$mb") (target <= 0.5)"
    if [ -n "$BASE" ]; then
        # shellcheck disable=SC2086
        mc=$(median ${rc[k]})
        echo "  ${fs[k]}: baseline rcat $mc s, baseline/rsync $(ratio "$mc" "$mb"); this build over the baseline $(ratio "$ma" "$mc")"
    fi
done

[ "$PHASES" -gt 0 ] || exit 0
# phases FILE: "start S files F flush Y end E total T" from strace -ttt -T
phases() {
    awk '
        NR == 1 { t0 = $2 }
        /mkdirat\(/ && !mk { mk = $2 }
        /syncfs\(/ && !sy { sy = $2 }
        /syncfs/ && match($0, /<[0-9.]+>$/) { dur = substr($0, RSTART + 1, RLENGTH - 2) }
        { last = $2 }
        END {
            if (!mk || !sy) { print "(not traced)"; exit }
            printf "start %.3f files %.3f flush %.3f end %.3f total %.3f\n",
                mk - t0, sy - mk, dur, last - sy - dur, last - t0
        }' "$1"
}
echo "where rcat's time went (traced under strace, which adds ~10-20 ms; not in the medians):"
for k in "${!dd[@]}"; do
    for i in $(seq 1 "$PHASES"); do
        for who in rcat ${BASE:+base}; do
            set -- "$rcat" "${new_port[k]}"
            [ "$who" = base ] && set -- "$base_rcat" "${base_port[k]}"
            rcat_copy "$1" "$2" "$k" "phase.$who.$i" strace -f --seccomp-bpf -ttt -T \
                -e trace=execve,mkdirat,syncfs,exit_group -o "$tmp/strace.out" ||
                { echo "rcat failed" >&2; exit 1; }
            printf "  %-6s %-8s %s\n" "${fs[k]}:" "$who" "$(phases "$tmp/strace.out")"
        done
    done
done
