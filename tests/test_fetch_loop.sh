#!/bin/bash
# test_fetch_loop.sh - rcatd opens a FETCH's file on its loop when the
# kernel can resolve it from its caches on the root's own filesystem, and
# on a worker otherwise (rcat/serve.c, h_fetch_loop). What a user sees must
# not change with where the file was opened:
#  - a tree whose root has a filesystem mounted beneath it (a tmpfs, in a
#    mount namespace of rcatd's own) is fetched whole with rcat -r, files
#    beneath the mount point included (those go through the worker), twice
#    (the second time every lookup is cached);
#  - links out of the root and paths with ".." are refused every time, the
#    first (lookups not cached) and the later ones (cached);
#  - a FIFO in the root is refused, not waited on.
set -u
umask 022
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_fetch_loop.XXXXXX") || exit 1
. "${top_srcdir:-.}/tests/rcatd_lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: a mount beneath the root needs root"; exit 77; }
unshare -m true 2>/dev/null || { echo "SKIP: unshare -m is refused here"; exit 77; }

root="$tmp/root"
seed="$tmp/seed"
outside="$tmp/outside"
marker="OUTSIDE-$$-CONTENT"
mkdir -p "$root/top/a" "$root/mnt" "$root/odd" "$seed/b" "$outside"
for i in $(seq 1 40); do
    head -c $((i * 97)) /dev/urandom >"$root/top/a/f$i"
    head -c $((i * 89)) /dev/urandom >"$seed/b/g$i"
done
echo "$marker" >"$outside/secret"
ln -s ../../outside/secret "$root/top/evil_rel"
ln -s "$outside/secret" "$root/top/evil_abs"
ln -s a/f1 "$root/top/in_link"
mkfifo "$root/odd/fifo" # beside the trees fetched with -r, which would fail on it

# rcatd in a mount namespace of its own, a tmpfs on root/mnt holding seed
cat >"$tmp/ns.sh" <<NS
#!/bin/sh
mount --make-rprivate / && mount -t tmpfs -o size=8m tmpfs "$root/mnt" &&
    cp -r "$seed/." "$root/mnt/" || exit 99
exec "\$@"
NS
chmod +x "$tmp/ns.sh"
start_server ns unshare -m "$tmp/ns.sh" "$rcatd" --listen 127.0.0.1:0 --root "$root"
R="rcat://127.0.0.1:$port"

for round in 1 2; do
    echo "round $round: rcat -r of a root with a mount point beneath it"
    if run 0 "round $round: rcat -r" "$rcat" -q -r -j 8 "$R/top" "$R/mnt" "$tmp/got$round"; then
        diff -r "$root/top/a" "$tmp/got$round/top/a" >/dev/null ||
            fail "round $round: the root's own files differ"
        diff -r "$seed/b" "$tmp/got$round/mnt/b" >/dev/null ||
            fail "round $round: the files beneath the mount point differ"
        [ -L "$tmp/got$round/top/in_link" ] || fail "round $round: the link inside was not kept"
    fi
    grep -rqF "$marker" "$tmp/got$round" 2>/dev/null &&
        fail "round $round: the outside content came out with -r"

    echo "round $round: escapes refused, the FIFO refused"
    for p in top/evil_rel top/evil_abs top/../../outside/secret ../outside/secret; do
        run 3 "round $round: $p" "$rcat" "$R/$p"
        grep -qF "$marker" "$tmp/out" && fail "round $round: $p gave the outside content"
    done
    run 3 "round $round: the FIFO" "$rcat" "$R/odd/fifo"
    run 0 "round $round: a link inside" "$rcat" -o "$tmp/in_link$round" "$R/top/in_link" &&
        same "$root/top/a/f1" "$tmp/in_link$round" "round $round: a link inside"
    run 0 "round $round: a file beneath the mount" "$rcat" -o "$tmp/g7.$round" "$R/mnt/b/g7" &&
        same "$seed/b/g7" "$tmp/g7.$round" "round $round: a file beneath the mount"
done

stop_server ns
finish fetch_loop
