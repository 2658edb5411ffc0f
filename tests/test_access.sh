#!/bin/bash
# test_access.sh - what rcatd gives out, and to whom (issue 10, items 2, 3
# and 5), with real rcatd and rcat processes on loopback:
#  - only regular files: a FIFO (whose waiting writer must stay waiting:
#    the FIFO was never opened), a device node (as root), the daemon's own
#    key and access files under the root (a hard link too), /proc by a
#    symlink, and /proc and /sys bind-mounted under the root in a mount
#    namespace of the test's own (as root): FETCH, STAT, LIST and STORE refused;
#  - per-identity access (rcatd --access): a read-only identity refused a
#    store, a list-less one refused LIST, one confined to its subdirectory,
#    one refused level none, one allowed it, an unlisted key holder, and
#    anonymous clients with the defaults;
#  - SIGHUP: a revoked key and a withdrawn right end live sessions (a fetch
#    whose reader never drains, a store whose pipe stays silent) at the
#    reload, while another identity's session goes on; a FIFO at the key or
#    access file's path does not hang the reload.
set -u
umask 022
export TZ=UTC LC_ALL=C
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_access.XXXXXX") || exit 1
. "${top_srcdir:-.}/tests/rcatd_lib.sh"

is_root=0
[ "$(id -u)" = 0 ] && is_root=1

root="$tmp/root"
keys="$tmp/keys"
mkdir -p "$root/pub" "$root/bob/sub" "$root/dave" "$root/etc" "$root/proc" "$root/sys" "$keys"
echo "public" >"$root/pub/a.txt"
echo "bob's" >"$root/bob/b.txt"
echo "top" >"$root/top.txt"
ln -s ../pub "$root/bob/to_pub"
ln -s /proc "$root/proc_abs"
ln -s ../../../../../../../../../../../../../proc "$root/proc_rel"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$root/bob/big"

for who in alice bob carol dave mallory; do
    (umask 077 && "$rcat" --genkey >"$keys/$who.key") || fatal "rcat --genkey"
done
# keys_file NAMES...: the server's key file, under the root, with NAMES' keys.
keys_file() {
    local who
    (umask 077 && for who in "$@"; do echo "$who $(cat "$keys/$who.key")"; done >"$root/etc/server.keys.new") &&
        mv "$root/etc/server.keys.new" "$root/etc/server.keys"
}
keys_file alice bob carol dave mallory
# access_file LINES...: the access file, under the root too.
access_file() {
    printf '%s\n' "# IDENTITY RIGHTS ROOT [LOWEST-LEVEL]" "$@" >"$root/etc/access.new" &&
        mv "$root/etc/access.new" "$root/etc/access"
}
access_file "alice rwl ." "bob r bob" "carol rl pub none" "dave rw dave"
as() { echo --identity "$1" --key-file "$keys/$1.key"; }

# ---- only regular files ----------------------------------------------------------
echo "only regular files"
start_server files "$rcatd" --listen 127.0.0.1:0 --root "$root" --writable --keys "$root/etc/server.keys" \
    --access "$root/etc/access"
R="rcat://127.0.0.1:$port"

# refused WHAT PATH: FETCH, STAT and STORE of PATH (as alice, who may do all)
# answer exit 3 with a refusal, and LIST of it too when it is a directory.
refused() {
    local what=$1 path=$2
    run 3 "$what: FETCH" "$rcat" $(as alice) "$R/$path" && [ -s "$tmp/out" ] && fail "$what: FETCH wrote data"
    run 3 "$what: STAT" "$rcat" $(as alice) --stat "$R/$path"
    run 3 "$what: STORE" "$rcat" $(as alice) --put "$root/top.txt" "$R/$path"
}

# a FIFO with a writer waiting in open(2): opening it for reading would
# release the writer (and fail its writes); it must stay waiting.
mkfifo "$root/fifo"
spawn fifo_writer sh -c "exec 3>'$root/fifo'; echo released >'$tmp/fifo.released'"
refused "a FIFO" fifo
run 3 "a FIFO: STAT names the refusal" "$rcat" $(as alice) --stat "$R/fifo" && said "FIFO STAT" "permission denied"
sleep 1 # had the FIFO been opened, the writer would have written by now
[ -e "$tmp/fifo.released" ] && fail "a FIFO: rcatd opened it (its waiting writer was released)"
[ -p "$root/fifo" ] || fail "a FIFO: STORE replaced it"
signal KILL fifo_writer

if [ "$is_root" = 1 ]; then
    mknod "$root/zero" c 1 5 && mknod "$root/null" c 1 3 || fatal "mknod"
    refused "a device node (zero)" zero
    refused "a device node (null)" null
    [ -c "$root/zero" ] && [ -c "$root/null" ] || fail "a device node: STORE replaced it"
else
    note "SKIP: device nodes need root"
fi

# the daemon's own files, and a hard link to the key file
ln "$root/etc/server.keys" "$root/pub/keys.link"
cp "$root/etc/server.keys" "$tmp/keys.before"
refused "the key file" etc/server.keys
refused "a hard link to the key file" pub/keys.link
refused "the access file" etc/access
same "$root/etc/server.keys" "$tmp/keys.before" "the key file after a STORE over it"
for who in alice bob carol dave; do
    grep -qF -- "$(cat "$keys/$who.key")" "$tmp/files.log" && fail "a secret is in rcatd's log"
done
rm "$root/pub/keys.link"

# /proc by a symlink: out of the root, as any absolute or upward link
run 3 "/proc by an absolute symlink" "$rcat" $(as alice) "$R/proc_abs/self/status" && said "/proc symlink" "outside the server's root"
run 3 "/proc by a relative symlink" "$rcat" $(as alice) "$R/proc_rel/self/environ" && said "/proc symlink" "outside the server's root"
run 3 "/proc by a symlink: LIST" "$rcat" $(as alice) --ls "$R/proc_abs/"
run 0 "a regular file is still served" "$rcat" $(as alice) "$R/top.txt" && same "$tmp/out" "$root/top.txt" "top.txt"
stop_server files

# /proc and /sys bind-mounted under the root, in a mount namespace of rcatd's own
if [ "$is_root" = 1 ] && unshare -m --propagation private true 2>/dev/null; then
    start_server mounted unshare -m --propagation private sh -c \
        'mount --bind /proc "$1/proc" && mount --bind /sys "$1/sys" && shift && exec "$@"' \
        sh "$root" "$rcatd" --listen 127.0.0.1:0 --root "$root" --writable
    R="rcat://127.0.0.1:$port"
    run 0 "mounted: a regular file" "$rcat" "$R/top.txt"
    for p in proc/self/mem proc/self/environ proc/self/status proc/version sys/kernel/uevent_seqnum; do
        run 3 "mounted: FETCH $p" "$rcat" "$R/$p" && said "mounted $p" "permission denied"
        [ -s "$tmp/out" ] && fail "mounted: FETCH $p wrote data"
    done
    run 3 "mounted: LIST proc" "$rcat" --ls "$R/proc/"
    run 3 "mounted: LIST sys/kernel" "$rcat" --ls "$R/sys/kernel/"
    run 3 "mounted: STAT proc" "$rcat" --stat "$R/proc"
    run 3 "mounted: STAT proc/self" "$rcat" --stat "$R/proc/self"
    run 3 "mounted: STORE proc/sys/kernel/x" "$rcat" --put "$root/top.txt" "$R/proc/sys/kernel/x"
    run 3 "mounted: STORE sys/x" "$rcat" --put "$root/top.txt" "$R/sys/x"
    stop_server mounted
    [ -z "$(ls -A "$root/proc")" ] || fail "the bind mount leaked out of rcatd's namespace"
else
    note "SKIP: bind-mounting /proc needs root and unshare -m"
fi

# ---- per-identity access -----------------------------------------------------------
echo "per-identity access"
start_server acl "$rcatd" --listen 127.0.0.1:0 --root "$root" --keys "$root/etc/server.keys" \
    --access "$root/etc/access"
R="rcat://127.0.0.1:$port"
run 0 "alice stores" "$rcat" $(as alice) --put "$root/top.txt" "$R/pub/by_alice" && same "$root/pub/by_alice" "$root/top.txt" "alice's store"
run 0 "alice lists" "$rcat" $(as alice) --ls "$R/pub/" && grep -q "by_alice" "$tmp/out" || fail "alice's LIST lacks by_alice"
# bob: read-only, in bob/
run 0 "bob reads in his root" "$rcat" $(as bob) "$R/b.txt" && same "$tmp/out" "$root/bob/b.txt" "bob's b.txt"
run 3 "bob (read-only) stores" "$rcat" $(as bob) --put "$root/top.txt" "$R/new" && said "bob stores" "read-only"
[ -e "$root/bob/new" ] && fail "bob's refused store created a file"
run 3 "bob (no l) lists" "$rcat" $(as bob) --ls "$R/" && said "bob lists" "permission denied"
run 3 "bob reaches up" "$rcat" $(as bob) "$R/../pub/a.txt" && said "bob up" "outside the server's root"
run 3 "bob's symlink up" "$rcat" $(as bob) "$R/to_pub/a.txt" && said "bob symlink up" "outside the server's root"
run 3 "bob's pub/a.txt is not the root's" "$rcat" $(as bob) "$R/pub/a.txt"
run 3 "bob's top.txt is not the root's" "$rcat" $(as bob) "$R/top.txt"
run 0 "bob stats in his root" "$rcat" $(as bob) --stat "$R/b.txt"
# dave: read and write, no list, in dave/
run 3 "dave (no l) lists" "$rcat" $(as dave) --ls "$R/" && said "dave lists" "permission denied"
run 0 "dave stores" "$rcat" $(as dave) --put "$root/top.txt" "$R/d.txt" && same "$root/dave/d.txt" "$root/top.txt" "dave's store"
# carol: may use level none, in pub/
run 0 "carol at level none" "$rcat" --identity carol --security none "$R/a.txt" && same "$tmp/out" "$root/pub/a.txt" "carol's a.txt"
run 0 "carol lists at level none" "$rcat" --identity carol --security none --ls "$R/"
run 0 "carol at encrypt" "$rcat" $(as carol) "$R/a.txt"
run 3 "carol (no w) stores" "$rcat" $(as carol) --put "$root/top.txt" "$R/c.txt"
# alice may not use level none: her name, only claimed, is refused
run 3 "alice at level none" "$rcat" --identity alice --security none "$R/top.txt" && said "alice at none" "security level refused"
run 3 "bob at level none" "$rcat" --identity bob --security none "$R/b.txt"
# a key but no line: nothing
run 3 "mallory (a key, no line)" "$rcat" $(as mallory) "$R/top.txt" && said "mallory" "permission denied"
# anonymous: the defaults (read and list; no --writable, so no store)
run 0 "anonymous reads" "$rcat" "$R/pub/a.txt" && same "$tmp/out" "$root/pub/a.txt" "anonymous a.txt"
run 0 "anonymous lists" "$rcat" --ls "$R/pub/"
run 3 "anonymous stores" "$rcat" --put "$root/top.txt" "$R/pub/anon" && said "anonymous store" "read-only"
run 3 "anonymous reads the key file" "$rcat" "$R/etc/server.keys"
grep -q " bob auth STORE new .* RCAT_READ_ONLY" "$tmp/acl.log" || grep -q " bob encrypt STORE new .* RCAT_READ_ONLY" "$tmp/acl.log" ||
    fail "rcatd's log lacks bob's refused STORE"

# ---- revocation by SIGHUP ------------------------------------------------------------
# Three live sessions: bob fetching into a reader that never drains, dave
# storing from a pipe that stays silent, alice storing from one too. Then
# bob's key goes and dave loses w: theirs end at the reload; alice's goes on.
echo "revocation by SIGHUP"
mkfifo "$tmp/bob.out" "$tmp/dave.in" "$tmp/alice.in"
# The test holds the other end of each FIFO (opened read-write, so no open
# waits); the clients must not: a subshell closes them for good (a function
# call's "9>&-" would leave bash's saved copy open in spawn's wrapper).
exec 7<>"$tmp/bob.out" 8<>"$tmp/dave.in" 9<>"$tmp/alice.in"
(
    exec 7<&- 8>&- 9>&-
    spawn bob_fetch "$rcat" --timeout 5 $(as bob) "$R/big" >"$tmp/bob.out" 2>"$tmp/bob_fetch.err"
    spawn dave_store "$rcat" --timeout 5 $(as dave) --put - "$R/silent" <"$tmp/dave.in" 2>"$tmp/dave_store.err"
    spawn alice_store "$rcat" --timeout 5 $(as alice) --put - "$R/pub/alice_silent" <"$tmp/alice.in" 2>"$tmp/alice_store.err"
)
# all three calls running: the counters say so
for _ in $(seq 1 300); do
    signal USR1 acl
    sleep 0.1
    tail -1 "$tmp/acl.log" | grep -q "requests_running=3 " && break
done
tail -1 "$tmp/acl.log" | grep -q "requests_running=3 " || fail "the three sessions did not start: $(tail -1 "$tmp/acl.log")"
keys_file alice carol dave mallory
access_file "alice rwl ." "carol rl pub none" "dave r dave"
signal HUP acl
await_log "$tmp/acl.log" "access reloaded" 30 || fail "SIGHUP: no 'access reloaded'"
await_log "$tmp/acl.log" "2 connections ended by the reload" 30 ||
    fail "SIGHUP: rcatd did not end bob's and dave's connections: $(grep -E 'revoked|ended' "$tmp/acl.log")"
grep -q "revoked: ending a connection of bob " "$tmp/acl.log" || fail "the log does not name bob"
grep -q "revoked: ending a connection of dave " "$tmp/acl.log" || fail "the log does not name dave"
grep -q "revoked: ending a connection of alice" "$tmp/acl.log" && fail "alice's connection was ended"
# their calls are over on the server (each logs its line), dave's temporary gone
await_log "$tmp/acl.log" " bob [a-z]+ FETCH big " 30 || fail "bob's FETCH still runs after the reload"
await_log "$tmp/acl.log" " dave [a-z]+ STORE silent " 30 || fail "dave's STORE still runs after the reload"
grep -E " (bob [a-z]+ FETCH big|dave [a-z]+ STORE silent) .* ok$" "$tmp/acl.log" && fail "a revoked transfer says ok"
for _ in $(seq 1 50); do
    [ -z "$(ls -A "$root/dave" | grep -v '^d\.txt$')" ] && break
    sleep 0.1
done
[ -z "$(ls -A "$root/dave" | grep -v '^d\.txt$')" ] || fail "dave's store left $(ls -A "$root/dave")"
# the clients find the server silent and give up (--timeout 5; bound 60 s)
await dave_store 60 || fail "dave's rcat still runs 60 s after the reload"
running dave_store || [ "$(status dave_store)" != 0 ] || fail "dave's revoked store exited 0"
exec 7<&- # bob's reader goes away: his rcat must not be stuck writing
await bob_fetch 60 || fail "bob's rcat still runs 60 s after the reload"
running bob_fetch || [ "$(status bob_fetch)" != 0 ] || fail "bob's revoked fetch exited 0"
# alice's session went on: her data now arrives and the store completes
running alice_store || fail "alice's store ended with the reload (status $(status alice_store))"
echo "alice's data, after the reload" >&9
exec 8>&- 9>&-
await alice_store 60 || fail "alice's store did not finish after her pipe closed"
[ "$(status alice_store)" = 0 ] || { sed 's/^/    /' "$tmp/alice_store.err"; fail "alice's store: status $(status alice_store)"; }
grep -q "after the reload" "$root/pub/alice_silent" 2>/dev/null || fail "alice's store did not arrive"
run 3 "bob after the reload" "$rcat" $(as bob) "$R/b.txt" && said "bob revoked" "authentication failed"
run 3 "dave may no longer store" "$rcat" $(as dave) --put "$root/top.txt" "$R/d2.txt"
run 0 "dave still reads" "$rcat" $(as dave) "$R/d.txt"

# a FIFO at the key or access file's path: the reload refuses it, at once
mv "$root/etc/server.keys" "$tmp/server.keys.saved"
mkfifo "$root/etc/server.keys"
signal HUP acl
await_log "$tmp/acl.log" "keys not reloaded.*not a regular file" 30 || fail "SIGHUP with a FIFO as key file: no refusal logged"
run 0 "alice after a FIFO key file (old keys stay)" "$rcat" $(as alice) "$R/top.txt"
rm "$root/etc/server.keys"
mv "$tmp/server.keys.saved" "$root/etc/server.keys"
mv "$root/etc/access" "$tmp/access.saved"
mkfifo "$root/etc/access"
signal HUP acl
await_log "$tmp/acl.log" "access not reloaded.*not a regular file" 30 || fail "SIGHUP with a FIFO as access file: no refusal logged"
run 0 "alice after a FIFO access file (old access stays)" "$rcat" $(as alice) "$R/top.txt"
run 3 "dave after a FIFO access file (old access stays)" "$rcat" $(as dave) --put "$root/top.txt" "$R/d3.txt"
rm "$root/etc/access"
mv "$tmp/access.saved" "$root/etc/access"
stop_server acl

# the access file's own errors: a bad line and a root that is not there stop rcatd
printf 'alice rwl .\nbob rx .\n' >"$tmp/bad.access"
run 1 "rcatd with a bad access line" "$rcatd" --listen 127.0.0.1:0 --root "$root" --access "$tmp/bad.access" &&
    said "bad access line" "$tmp/bad.access:2: "
printf 'bob r nowhere\n' >"$tmp/bad.access"
run 1 "rcatd with a missing identity root" "$rcatd" --listen 127.0.0.1:0 --root "$root" --access "$tmp/bad.access" &&
    said "missing root" "nowhere"
chmod 0666 "$tmp/bad.access"
run 1 "rcatd with an access file others may write" "$rcatd" --listen 127.0.0.1:0 --root "$root" --access "$tmp/bad.access" &&
    said "access 0666" "writable by group or others"

finish access
