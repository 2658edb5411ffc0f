#!/bin/bash
# test_policies.sh - what happens at the target, both ways, with a real
# rcatd on loopback: --no-clobber refuses an existing file (exit 4 for a
# fetch's local file, 3 for a store's remote one) and leaves it alone;
# --overwrite (the default) replaces it; --append adds to its end (creating
# a missing one), and a failed append leaves the file as it was; --mkdirs
# makes three missing levels of directories on either side (mode 0777
# under the umask, as mkdir -p), and on rcatd only beneath the root and
# with the right to write. Each for a 0-byte file, a piggybacked one and
# one that fills whole SFTP packets exactly (4 x 63 KiB on loopback).
set -u
umask 022
export TZ=UTC LC_ALL=C

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_policies.XXXXXX") || exit 1
. "${top_srcdir:-.}/tests/rcatd_lib.sh"

root="$tmp/root"
mkdir -p "$root" "$tmp/outside" "$tmp/local"
ln -s "$tmp/outside" "$root/out" # a way out of the root, which must stay shut

: >"$tmp/size0"
head -c 100 /dev/urandom >"$tmp/size100"
head -c $((4 * 63 * 1024)) /dev/urandom >"$tmp/size258048"
head -c 777 /dev/urandom >"$tmp/old" # what a target holds before

start_server rw "$rcatd" --listen 127.0.0.1:0 --root "$root" --writable --drain-time 0
rw=$port
start_server ro "$rcatd" --listen 127.0.0.1:0 --root "$root"
ro=$port

url() { echo "rcat://127.0.0.1:$1/$2"; }

for size in 0 100 258048; do
    src="$tmp/size$size"
    cp "$src" "$root/f$size"
    cat "$tmp/old" "$src" >"$tmp/appended$size"

    # ---- fetch: the target is local ----
    cp "$tmp/old" "$tmp/local/t"
    run 4 "fetch -n $size" "$rcat" -n "$(url $rw f$size)" -o "$tmp/local/t" &&
        said "fetch -n $size" "file exists (--no-clobber)"
    same "$tmp/old" "$tmp/local/t" "fetch -n $size kept the file"
    rm -f "$tmp/local/new"
    run 0 "fetch -n $size, new" "$rcat" --no-clobber "$(url $rw f$size)" -o "$tmp/local/new"
    same "$src" "$tmp/local/new" "fetch -n $size, new"

    run 0 "fetch --overwrite $size" "$rcat" --overwrite "$(url $rw f$size)" -o "$tmp/local/t"
    same "$src" "$tmp/local/t" "fetch --overwrite $size"

    cp "$tmp/old" "$tmp/local/t"
    run 0 "fetch --append $size" "$rcat" --append "$(url $rw f$size)" -o "$tmp/local/t"
    same "$tmp/appended$size" "$tmp/local/t" "fetch --append $size"
    rm -f "$tmp/local/a$size"
    run 0 "fetch --append $size, new" "$rcat" --append "$(url $rw f$size)" -o "$tmp/local/a$size"
    same "$src" "$tmp/local/a$size" "fetch --append $size, new"

    run 0 "fetch --mkdirs $size" "$rcat" --mkdirs "$(url $rw f$size)" \
        -o "$tmp/local/m$size/x/y/f"
    same "$src" "$tmp/local/m$size/x/y/f" "fetch --mkdirs $size"

    # ---- store: the target is on rcatd ----
    cp "$tmp/old" "$root/t"
    run 3 "store -n $size" "$rcat" -n --put "$src" "$(url $rw t)" &&
        said "store -n $size" "already exists on server"
    same "$tmp/old" "$root/t" "store -n $size kept the file"

    run 0 "store --overwrite $size" "$rcat" --overwrite --put "$src" "$(url $rw t)"
    same "$src" "$root/t" "store --overwrite $size"

    cp "$tmp/old" "$root/t"
    run 0 "store --append $size" "$rcat" --append --put "$src" "$(url $rw t)"
    same "$tmp/appended$size" "$root/t" "store --append $size"
    run 0 "store --append $size, new" "$rcat" --append --put "$src" "$(url $rw a$size)"
    same "$src" "$root/a$size" "store --append $size, new"

    run 0 "store --mkdirs $size" "$rcat" --mkdirs --put "$src" "$(url $rw m$size/x/y/f)"
    same "$src" "$root/m$size/x/y/f" "store --mkdirs $size"
done

# --mkdirs: mkdir -p's modes, and nothing without it
for d in "$tmp/local/m0" "$tmp/local/m0/x" "$tmp/local/m0/x/y" "$root/m0" "$root/m0/x" \
    "$root/m0/x/y"; do
    [ "$(stat -c %a "$d")" = 755 ] || fail "--mkdirs: $d has mode $(stat -c %a "$d"), want 755"
done
run 4 "fetch without --mkdirs" "$rcat" "$(url $rw f100)" -o "$tmp/local/no/such/dir/f"
run 3 "store without --mkdirs" "$rcat" --put "$tmp/size100" "$(url $rw no/such/dir/f)"
[ -e "$root/no" ] && fail "store without --mkdirs made a directory"
run 0 "fetch --mkdirs into DIR/" "$rcat" --mkdirs "$(url $rw f100)" "$(url $rw f0)" \
    -o "$tmp/local/d1/d2/d3/"
same "$tmp/size100" "$tmp/local/d1/d2/d3/f100" "fetch --mkdirs into DIR/"

# --mkdirs on rcatd stays beneath the root and needs the right to write
run 3 "store --mkdirs through a symlink out" "$rcat" --mkdirs --put "$tmp/size100" \
    "$(url $rw out/a/b/f)" && said "store --mkdirs out" "outside the server's root"
[ -z "$(ls -A "$tmp/outside")" ] || fail "store --mkdirs made something outside the root"
run 3 "store --mkdirs with .." "$rcat" --mkdirs --put "$tmp/size100" "$(url $rw x/../../a/b/f)"
run 3 "store --mkdirs, read-only" "$rcat" --mkdirs --put "$tmp/size100" "$(url $ro r/s/t/f)" &&
    said "store --mkdirs, read-only" "read-only"
[ -e "$root/r" ] && fail "store --mkdirs on a read-only server made a directory"
run 3 "store --append, read-only" "$rcat" --append --put "$tmp/size100" "$(url $ro t)"

# the policies exclude each other, and make no sense for queries
run 1 "-n --append" "$rcat" -n --append "$(url $rw f0)" -o "$tmp/local/x"
run 1 "--overwrite -n" "$rcat" --overwrite -n "$(url $rw f0)" -o "$tmp/local/x"
run 1 "--append -p" "$rcat" --append -p "$(url $rw f0)" -o "$tmp/local/x"
run 1 "--append to stdout" "$rcat" --append "$(url $rw f0)"
run 1 "--stat --mkdirs" "$rcat" --stat --mkdirs "$(url $rw f0)"

# ---- a failed append leaves the target as it was -----------------------------

head -c $((16 * 1024 * 1024)) /dev/urandom >"$root/big"
cp "$tmp/old" "$tmp/local/victim"
spawn append_fetch "$rcat" --json --append --rate 40M "$(url $rw big)" \
    -o "$tmp/local/victim" 2>"$tmp/append_fetch.json"
if await_log "$tmp/append_fetch.json" '"Type":"STATS".*"FileBytes":[1-9][0-9]{6}' 30; then
    signal KILL rw
    await append_fetch 60 || fail "failed fetch --append: rcat did not end"
    [ "$(status append_fetch)" = 2 ] || fail "failed fetch --append: exit $(status append_fetch)"
    same "$tmp/old" "$tmp/local/victim" "failed fetch --append: the file as it was"
else
    fail "failed fetch --append: no bytes moved within 30 s"
fi
await rw 10

start_server rw2 "$rcatd" --listen 127.0.0.1:0 --root "$root" --writable --drain-time 0
cp "$tmp/old" "$root/victim"
head -c $((16 * 1024 * 1024)) /dev/urandom >"$tmp/big"
spawn append_store "$rcat" --json --append --rate 40M --put "$tmp/big" "$(url $port victim)" \
    2>"$tmp/append_store.json"
if await_log "$tmp/append_store.json" '"Type":"STATS".*"FileBytes":[1-9][0-9]{6}' 30; then
    signal TERM rw2 # ends its transfers at once (--drain-time 0): the store fails there
    await append_store 60 || fail "failed store --append: rcat did not end"
    [ "$(status append_store)" != 0 ] || fail "failed store --append: exit 0"
    await rw2 30 || fail "failed store --append: rcatd did not stop"
    same "$tmp/old" "$root/victim" "failed store --append: the file as it was"
else
    fail "failed store --append: no bytes moved within 30 s"
fi

stop_server ro
finish policies
