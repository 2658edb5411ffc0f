#!/bin/bash
# test_handoff.sh - rcat handoff (issue 15 item 4, docs/HANDOFF.md) with a
# real rcatd on loopback, both ways (send: local spool to the server's;
# receive: the server's to a local one):
#  - the whole cycle: a batch not yet marked ready waits; marked, it is
#    delivered whole and byte-identical; waits for the receiver; marked
#    processed, both copies are removed (send) or archived (receive);
#  - repeated runs are idempotent: a run with nothing to do moves 0 bytes
#    and changes nothing on either side;
#  - a run killed (SIGKILL) after each step (RCAT_HANDOFF_TEST_KILL, the
#    test-only knob) and in the middle of the copy (after its first file
#    is stored): the destination never shows a partial batch, the next run
#    continues (files already stored are not moved again), every file
#    arrives exactly once, and the cycle ends with both sides clear;
#  - a delivered batch the receiver removes unprocessed is sent again;
#  - a read-only identity is refused with a clear error (exit 3) and
#    changes nothing; usage errors exit 1.
set -u
umask 022
export TZ=UTC LC_ALL=C.UTF-8
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_handoff.XXXXXX") || exit 1
. "${top_srcdir:-.}/tests/rcatd_lib.sh"

root="$tmp/root"   # the server's
local="$tmp/local" # the client's
ref="$tmp/ref"     # what each batch must look like wherever it arrives
mkdir -p "$root/in" "$root/pub" "$root/arch" "$local/out" "$local/got" "$local/arch" "$ref"
start_server rw "$rcatd" --listen 127.0.0.1:0 --root "$root" --writable
H=127.0.0.1
r="$tmp/r" # rcat handoff SUB -P PORT ...
use_port() {
    printf '#!/bin/sh\nsub=$1\nshift\nexec "%s" handoff "$sub" -P "%s" "$@"\n' "$rcat" "$port" >"$r" &&
        chmod +x "$r"
}
use_port
done_field() { sed -n 's/.*"Type":"DONE".*"'"$1"'":\([0-9]*\).*/\1/p' "$tmp/err"; }

# batch SPOOL NAME [big]: a batch (nested, empty directory, a name with
# a space, a symbolic link, a few hundred KiB; with big, four 1 MiB files more), marked
# ready last; its reference copy in $ref/NAME.
batch() {
    local d="$1/$2" i
    rm -rf "$ref/$2"
    mkdir -p "$d/sub/deeper" "$d/empty"
    echo "batch $2" >"$d/readme"
    printf 'with a space\n' >"$d/sub/a name"
    head -c 300000 /dev/urandom >"$d/sub/deeper/data.bin"
    : >"$d/sub/zero"
    ln -s readme "$d/link"
    if [ "${3:-}" = big ]; then
        for i in 1 2 3 4; do head -c 1048576 /dev/urandom >"$d/big$i"; done
    fi
    cp -a "$d" "$ref/$2"
    : >"$d/.ready"
    : >"$ref/$2/.ready"
}
# delivered SPOOL NAME WHAT: SPOOL/NAME is the batch, byte for byte.
delivered() {
    diff -r -x .processed "$ref/$2" "$1/$2" >/dev/null || fail "$3: $1/$2 is not the batch sent"
}
# whole_or_none SPOOL NAME WHAT: a batch appears whole or not at all.
whole_or_none() {
    [ ! -e "$1/$2" ] || delivered "$@"
}
# only SPOOL WHAT NAMES...: the visible entries of SPOOL are exactly NAMES.
only() {
    local spool=$1 what=$2 got want
    shift 2
    got=$(ls "$spool" | tr '\n' ' ')
    want=$(printf '%s\n' "$@" | sed '/^$/d' | sort | tr '\n' ' ')
    [ "$got" = "$want" ] || fail "$what: $spool holds '$got', want '$want'"
}
# no_hidden SPOOL WHAT: no incoming or trash copy left behind.
no_hidden() {
    local left
    left=$(ls -A "$1" | grep '^\.rcat-handoff\.' | tr '\n' ' ')
    [ -z "$left" ] || fail "$2: $1 still holds $left"
}
# snapshot: every entry of both sides with its size, mtime and inode.
snapshot() { find "$root" "$local" -printf '%p %s %T@ %i\n' | sort; }
# says WHAT LINE: the last run's standard output holds LINE.
says() { grep -qxF -- "$2" "$tmp/out" || { sed 's/^/    /' "$tmp/out"; fail "$1: no '$2' line"; }; }

send() { run "$1" "$2" "$r" send "${@:3}" "$local/out" "$H:in"; }
recv() {
    run "$1" "$2" "$r" receive --source-archive arch --dest-archive "$local/arch" \
        "${@:3}" "$H:pub" "$local/got"
}

# ---- the whole cycle, both ways ------------------------------------------------
echo "the whole cycle: send"
mkdir -p "$local/out/b1"
echo "half made" >"$local/out/b1/readme"
send 0 "not ready" && says "not ready" "b1 waiting-for-sender"
only "$root/in" "not ready"
batch "$local/out" b1
send 0 "ready" --json && says "ready" "b1 sent"
delivered "$root/in" b1 "send"
no_hidden "$root/in" "send"
[ "$(done_field FileBytes)" -gt 300000 ] || fail "send: DONE FileBytes $(done_field FileBytes)"
before=$(snapshot)
for i in 1 2; do
    send 0 "again $i" --json && says "again $i" "b1 waiting-for-receiver"
    [ "$(done_field FileBytes)" = 0 ] || fail "again $i: moved $(done_field FileBytes) bytes"
done
[ "$(snapshot)" = "$before" ] || fail "runs with nothing to do changed something"
: >"$root/in/b1/.processed"
send 0 "processed" && says "processed" "b1 cleared"
only "$root/in" "send cleared"
only "$local/out" "send cleared"
no_hidden "$root/in" "send cleared"
no_hidden "$local/out" "send cleared"
before=$(snapshot)
send 0 "after the cycle" --json && [ ! -s "$tmp/out" ] || fail "after the cycle: said '$(cat "$tmp/out")'"
[ "$(snapshot)" = "$before" ] || fail "a run after the cycle changed something"

echo "the whole cycle: receive, archiving both copies"
batch "$root/pub" r1
recv 0 "receive" && says "receive" "r1 sent"
delivered "$local/got" r1 "receive"
no_hidden "$local/got" "receive"
before=$(snapshot)
recv 0 "receive again" --json && says "receive again" "r1 waiting-for-receiver"
[ "$(done_field FileBytes)" = 0 ] || fail "receive again: moved $(done_field FileBytes) bytes"
[ "$(snapshot)" = "$before" ] || fail "receive again changed something"
: >"$local/got/r1/.processed"
recv 0 "receive processed" && says "receive processed" "r1 cleared"
only "$root/pub" "receive cleared"
only "$local/got" "receive cleared"
[ "$(ls "$root/arch" | grep -c '^r1\.[0-9]\{8\}\.[0-9]\{6\}$')" = 1 ] || fail "no r1 archive on the server: $(ls "$root/arch")"
[ "$(ls "$local/arch" | grep -c '^r1\.[0-9]\{8\}\.[0-9]\{6\}$')" = 1 ] || fail "no r1 archive here: $(ls "$local/arch")"
a=$(ls -d "$root/arch"/r1.*)
diff -r "$ref/r1" "$a" >/dev/null || fail "the server's archive of r1 is not the batch"

# ---- a kill after each step ----------------------------------------------------
# cycle DIR NAME STEP: a batch through a whole handoff, the run at STEP
# killed by SIGKILL; after each run, the destination holds the batch whole
# or not at all; in the end, both sides are clear and the batch was
# delivered once.
cycle() {
    local dir=$1 name=$2 step=$3 srcspool dstspool go what="$1 killed after $3"
    if [ "$dir" = send ]; then
        srcspool=$local/out dstspool=$root/in go=send
    else
        srcspool=$root/pub dstspool=$local/got go=recv
    fi
    batch "$srcspool" "$name"
    case $step in source-* | dest-*)
        $go 0 "$what: delivery" && says "$what: delivery" "$name sent"
        : >"$dstspool/$name/.processed"
        ;;
    esac
    RCAT_HANDOFF_TEST_KILL=$step $go 137 "$what: the killed run"
    whole_or_none "$dstspool" "$name" "$what"
    case $step in transferred | verified)
        [ -e "$dstspool/$name" ] && fail "$what: delivered before the rename"
        ;;
    esac
    $go 0 "$what: the next run"
    whole_or_none "$dstspool" "$name" "$what: the next run"
    if [ -e "$dstspool/$name" ] && [ ! -e "$dstspool/$name/.processed" ]; then
        says "$what: the next run" "$name $([ "$step" = delivered ] && echo waiting-for-receiver || echo sent)"
        $go 0 "$what: waiting" && says "$what: waiting" "$name waiting-for-receiver"
        delivered "$dstspool" "$name" "$what"
        : >"$dstspool/$name/.processed"
        $go 0 "$what: processed"
    fi
    # killed after the destination went to its hidden name, the next run
    # only removes that: no batch is left to name
    [ "$step" = dest-moved ] || says "$what: the last run" "$name cleared"
    [ -e "$srcspool/$name" ] || [ -e "$dstspool/$name" ] && fail "$what: not cleared"
    no_hidden "$srcspool" "$what"
    no_hidden "$dstspool" "$what"
    before=$(snapshot)
    $go 0 "$what: once more" --json
    [ ! -s "$tmp/out" ] && [ "$(done_field FileBytes)" = 0 ] || fail "$what: once more did something"
    [ "$(snapshot)" = "$before" ] || fail "$what: once more changed something"
}
for dir in send receive; do
    echo "kills: $dir"
    n=0
    for step in transferred verified delivered source-moved source-cleared dest-moved; do
        n=$((n + 1))
        cycle "$dir" "k$n" "$step"
    done
done
archived=$(ls "$root/arch" | grep -c '^k[0-9]\.')
[ "$archived" = 6 ] || fail "receive kills: $archived server archives of 6 batches: $(ls "$root/arch")"
for a in "$root/arch"/k*; do
    n=$(basename "$a" | cut -d. -f1)
    diff -r "$ref/$n" "$a" >/dev/null || fail "the archive $a is not the batch $n"
done

# ---- a kill in the middle of the copy -------------------------------------------
# Through faultproxy's bottleneck (4 Mbit/s), one file at a time: the run is
# killed once its first 1 MiB file is stored, with three more to go (about
# 6 s of them); the next run moves only what was not stored.
echo "a kill in the middle of the copy"
proxy="${top_builddir:-.}/tests/faultproxy"
spawn proxy "$proxy" --server "127.0.0.1:$port" --rate 4M >"$tmp/proxy.out" 2>"$tmp/proxy.err"
for _ in $(seq 1 200); do
    pport=$(sed -n "s/^faultproxy listening on \\([0-9][0-9]*\\)$/\\1/p" "$tmp/proxy.out")
    [ -n "$pport" ] && break
    sleep 0.05
done
[ -n "$pport" ] || fatal "faultproxy did not start: $(cat "$tmp/proxy.err")"
for dir in send receive; do
    if [ "$dir" = send ]; then
        batch "$local/out" m1 big
        go=(send -j 1 --json "$local/out" "$H:in")
        dstspool=$root/in
    else
        batch "$root/pub" m1 big
        go=(receive -j 1 --json --source-archive arch --dest-archive "$local/arch" "$H:pub" "$local/got")
        dstspool=$local/got
    fi
    spawn mid "$rcat" handoff "${go[0]}" -P "$pport" "${go[@]:1}" >"$tmp/mid.out" 2>"$tmp/mid.err"
    await_log "$tmp/mid.err" '"Type":"STOP".*"File":"[^"]*big1".*"Result":"OK"' 120 ||
        fail "$dir: big1 was not stored"
    signal KILL mid
    await mid 20 || fail "$dir: the killed run is still there"
    [ "$(status mid)" = 137 ] || fail "$dir: the killed run ended with $(status mid), not by the kill"
    [ -e "$dstspool/m1" ] && fail "$dir: delivered though killed mid-copy"
    run 0 "$dir: after the mid-copy kill" "$r" "${go[@]}" && says "$dir: after the kill" "m1 sent"
    grep -q '"Type":"SKIP".*big1' "$tmp/err" || fail "$dir: the next run moved big1 again"
    total=$(find "$ref/m1" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
    [ "$(done_field FileBytes)" -lt "$total" ] || fail "$dir: the next run moved $(done_field FileBytes) of $total bytes"
    delivered "$dstspool" m1 "$dir: after the mid-copy kill"
    rm -rf "$dstspool/m1" # the receiver takes it away unprocessed: sent again
    run 0 "$dir: taken away" "$r" "${go[@]}" && says "$dir: taken away" "m1 sent"
    delivered "$dstspool" m1 "$dir: sent again"
    : >"$dstspool/m1/.processed"
    run 0 "$dir: processed" "$r" "${go[@]}" && says "$dir: processed" "m1 cleared"
    no_hidden "$dstspool" "$dir: processed"
done
signal TERM proxy
await proxy 20 || signal KILL proxy

# ---- rights ----------------------------------------------------------------------
echo "rights"
stop_server rw
mkdir -p "$tmp/keys" "$tmp/etc"
for who in alice carol; do
    (umask 077 && "$rcat" --genkey >"$tmp/keys/$who.key") || fatal "rcat --genkey"
done
(umask 077 && for who in alice carol; do echo "$who $(cat "$tmp/keys/$who.key")"; done >"$tmp/etc/server.keys")
printf '%s\n' "alice rl ." "carol rwld ." >"$tmp/etc/access"
start_server acl "$rcatd" --listen 127.0.0.1:0 --root "$root" --keys "$tmp/etc/server.keys" --access "$tmp/etc/access"
use_port
as() { echo --identity "$1" --key-file "$tmp/keys/$1.key"; }
batch "$local/out" ro
before=$(snapshot)
send 3 "alice (read-only) sends" $(as alice) && said "alice sends" "read-only"
[ "$(snapshot)" = "$before" ] || fail "alice's refused send changed something"
batch "$root/pub" ro2
recv 0 "alice (read-only) receives" $(as alice) && says "alice receives" "ro2 sent"
: >"$local/got/ro2/.processed"
recv 3 "alice may not clear the server's copy" $(as alice) && said "alice clears" "read-only"
[ -e "$root/pub/ro2/.ready" ] && [ -e "$local/got/ro2/.processed" ] || fail "alice's refused clear changed something"
recv 0 "carol clears it" $(as carol) && says "carol clears" "ro2 cleared"
send 0 "carol sends" $(as carol) && says "carol sends" "ro sent"
delivered "$root/in" ro "carol's send"
stop_server acl

# ---- usage ----------------------------------------------------------------------
echo "usage"
run 1 "no command" "$rcat" handoff && said "no command" "send or receive"
run 1 "one operand" "$rcat" handoff send "$local/out" && said "one operand" "LOCAL-SPOOL REMOTE-SPOOL"
run 1 "a local destination" "$rcat" handoff send "$local/out" "$local/got" && said "local" "not a remote spool"
run 1 "a marker with /" "$rcat" handoff send --ready=a/b "$local/out" "$H:in" && said "marker" "--ready"
run 0 "--help" "$rcat" handoff --help && grep -q "Exit status" "$tmp/out" || fail "--help says no exit status"

finish handoff
