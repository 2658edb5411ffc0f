#!/bin/bash
# test_remote.sh - the remote operations through rcatd (issue 14, item 4),
# with real rcatd and rcat processes on loopback:
#  - --mkdir with and without --parents; --mv (atomic, -n refused with exit
#    3, both names beneath the root); --rm of a file, of an empty directory
#    (--dir), a non-empty one refused without -r, and -r of a tree that holds
#    symlinks pointing out of the root (what they point to survives);
#  - --glob over several components, leading dots, no match; --sum equal to
#    sha256sum and md5sum of the file; --symlink and --readlink;
#  - names that would leave the root refused for every operation ("..", an
#    absolute path, a symlink out);
#  - rights (rcatd --access): a read-only identity refused every change
#    (exit 3, "read-only"), one with w but not d refused DELETE, one with d
#    confined to its own root; and one log line per call.
set -u
umask 022
export TZ=UTC LC_ALL=C
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_remote.XXXXXX") || exit 1
. "${top_srcdir:-.}/tests/rcatd_lib.sh"

root="$tmp/root"
outside="$tmp/outside"
keys="$tmp/keys"
mkdir -p "$root" "$outside/dir" "$keys"
echo "keep me" >"$outside/precious"
echo "keep me too" >"$outside/dir/f"
ln -s "$outside" "$root/abs_out"
ln -s ../outside "$root/rel_out"

# ---- an anonymous, writable server ---------------------------------------------
echo "writable server"
start_server rw "$rcatd" --listen 127.0.0.1:0 --root "$root" --writable
H="127.0.0.1"
# $r: rcat with the port of the server started last (run needs a command, not a function)
r="$tmp/r"
use_port() { printf '#!/bin/sh\nexec "%s" -P "%s" "$@"\n' "$rcat" "$port" >"$r" && chmod +x "$r"; }
use_port

echo "  mkdir"
run 3 "mkdir without --parents, parent missing" "$r" --mkdir "$H:a/b/c" && said "mkdir" "not found on server"
[ -e "$root/a" ] && fail "mkdir without --parents made a"
run 0 "mkdir --parents" "$r" --mkdir --parents "$H:a/b/c" && { [ -d "$root/a/b/c" ] || fail "mkdir --parents: no a/b/c"; }
run 0 "mkdir --parents again" "$r" --mkdir --parents "$H:a/b/c"
run 3 "mkdir of an existing directory" "$r" --mkdir "$H:a/b" && said "mkdir existing" "already exists on server"
run 0 "mkdir" "$r" --mkdir "$H:a/d" && { [ -d "$root/a/d" ] || fail "mkdir: no a/d"; }
echo x >"$root/a/file"
run 3 "mkdir --parents over a file" "$r" --mkdir --parents "$H:a/file" && said "mkdir file" "already exists on server"
run 3 "mkdir --parents through a file" "$r" --mkdir --parents "$H:a/file/x" && said "mkdir through file" "not a directory on server"

echo "  rename"
echo "one" >"$root/a/one"
echo "two" >"$root/a/two"
run 0 "mv to a new name" "$r" --mv "$H:a/one" "$H:a/b/c/one.moved" &&
    { [ -e "$root/a/one" ] || [ "$(cat "$root/a/b/c/one.moved")" != one ]; } && fail "mv: not moved"
run 3 "mv -n onto an existing name" "$r" --mv -n "$H:a/b/c/one.moved" a/two && said "mv -n" "already exists on server"
[ "$(cat "$root/a/two")" = two ] || fail "mv -n replaced a/two"
[ "$(cat "$root/a/b/c/one.moved")" = one ] || fail "mv -n lost the source"
run 0 "mv replacing an existing name" "$r" --mv "$H:a/b/c/one.moved" a/two &&
    { [ "$(cat "$root/a/two")" = one ] && [ ! -e "$root/a/b/c/one.moved" ]; } || fail "mv: a/two is not the moved file"
run 3 "mv of a missing name" "$r" --mv "$H:a/none" a/other && said "mv missing" "not found on server"
run 1 "mv to another server is a usage error" "$r" --mv "$H:a/two" "[::1]:x" && said "mv other server" "renames on one server"
run 3 "mv a directory into itself" "$r" --mv "$H:a/b" a/b/c/b
[ -d "$root/a/b/c" ] || fail "mv into itself moved something"
# atomic: a reader never sees the name missing while it is replaced
for i in $(seq 1 20); do echo "v$i" >"$root/a/v$i"; done
(
    for i in $(seq 1 400); do
        [ -e "$root/a/two" ] || { echo missing >"$tmp/gap"; break; }
    done
) &
reader=$!
for i in $(seq 1 20); do "$r" --mv "$H:a/v$i" a/two || fail "mv v$i"; done
wait $reader
[ -e "$tmp/gap" ] && fail "mv: a/two was missing while it was replaced"
[ "$(cat "$root/a/two")" = v20 ] || fail "mv: a/two is not the last version"

echo "  symlink, readlink"
run 0 "symlink" "$r" --symlink ../two "$H:a/b/link" && [ "$(readlink "$root/a/b/link")" = ../two ] || fail "symlink: wrong link"
run 0 "readlink" "$r" --readlink "$H:a/b/link" && [ "$(cat "$tmp/out")" = ../two ] || fail "readlink: '$(cat "$tmp/out")'"
run 3 "symlink onto an existing name" "$r" --symlink x "$H:a/b/link" && said "symlink existing" "already exists on server"
run 3 "readlink of a file" "$r" --readlink "$H:a/two" && said "readlink file" "not a symlink on server"
run 0 "symlink to a path out of the root is stored" "$r" --symlink /etc/passwd "$H:a/etc_link"
run 3 "but never followed" "$r" "$H:a/etc_link" && said "etc_link" "outside the server's root"

echo "  glob"
mkdir -p "$root/g/x1/logs" "$root/g/x2/logs" "$root/g/y/logs" "$root/g/.hidden/logs"
touch "$root/g/x1/logs/a.gz" "$root/g/x1/logs/b.txt" "$root/g/x2/logs/c.gz" "$root/g/y/logs/d.gz" \
    "$root/g/.hidden/logs/e.gz" "$root/g/x2/logs/.f.gz" "$root/g/x1/logs/name with space.gz"
run 0 "glob over three components" "$r" --glob "$H:g/x*/logs/*.gz" &&
    [ "$(awk '{print $NF}' "$tmp/out" | tr '\n' ' ')" = "g/x1/logs/a.gz space.gz g/x2/logs/c.gz " ] ||
    { cat "$tmp/out"; fail "glob g/x*/logs/*.gz"; }
grep -q "g/x1/logs/name with space.gz" "$tmp/out" || fail "glob: the name with a space"
run 0 "glob: leading dots only by a dot" "$r" --glob "$H:g/.*/logs/*" && [ "$(awk '{print $NF}' "$tmp/out")" = "g/.hidden/logs/e.gz" ] ||
    { cat "$tmp/out"; fail "glob .*"; }
run 0 "glob: [...] and ?" "$r" --glob "$H:g/[xy]?/logs/?.gz" && [ "$(wc -l <"$tmp/out")" = 2 ] || { cat "$tmp/out"; fail "glob [xy]?"; }
run 3 "glob with no match" "$r" --glob "$H:g/*/logs/*.zip" && said "glob none" "not found on server"
run 3 "glob up" "$r" --glob "$H:g/../*" && said "glob up" "outside the server's root"
run 3 "glob through a symlink out" "$r" --glob "$H:abs_out/*" && said "glob out" "not found on server"
# pages: more matches than one reply holds, each once, in order
mkdir -p "$root/many"
for i in $(seq 1000 1299); do : >"$root/many/f$i"; done
run 0 "glob over pages" "$r" --glob "$H:many/f1*" && [ "$(wc -l <"$tmp/out")" = 300 ] &&
    [ "$(awk '{print $NF}' "$tmp/out" | sort -u | wc -l)" = 300 ] || fail "glob pages: $(wc -l <"$tmp/out") lines"

# pages cut by bytes: 200 paths of 456 bytes, 72 to a page of RCAT_GLOB_BYTES (32 KiB)
pad=$(printf '%0245d' 0)
long="long/$(printf '%0200d' 0)"
mkdir -p "$root/$long"
for i in $(seq 1000 1199); do : >"$root/$long/$i$pad"; done
run 0 "glob over pages of long names" "$r" --glob "$H:long/*/1*" && [ "$(wc -l <"$tmp/out")" = 200 ] &&
    [ "$(awk '{print $NF}' "$tmp/out" | sort -u | wc -l)" = 200 ] || fail "glob long pages: $(wc -l <"$tmp/out") lines"

echo "  sum"
head -c 3000000 /dev/urandom >"$root/a/big"
run 0 "sum sha256" "$r" --sum --checksum sha256 "$H:a/big" &&
    [ "$(awk '{print $1}' "$tmp/out")" = "$(sha256sum <"$root/a/big" | awk '{print $1}')" ] || fail "sum sha256 differs"
run 0 "sum md5" "$r" --sum --checksum md5 "$H:a/big" &&
    [ "$(awk '{print $1}' "$tmp/out")" = "$(md5sum <"$root/a/big" | awk '{print $1}')" ] || fail "sum md5 differs"
run 3 "sum of a directory" "$r" --sum "$H:a" && said "sum dir" "is a directory on server"

echo "  delete"
run 0 "rm a file" "$r" --rm "$H:a/two" && [ -e "$root/a/two" ] && fail "rm: a/two still there"
run 3 "rm a missing file" "$r" --rm "$H:a/two" && said "rm missing" "not found on server"
run 3 "rm a directory without --dir" "$r" --rm "$H:a/d" && said "rm dir" "is a directory on server"
run 0 "rm --dir an empty directory" "$r" --rm --dir "$H:a/d" && [ -e "$root/a/d" ] && fail "rm --dir: a/d still there"
run 3 "rm --dir a non-empty directory" "$r" --rm --dir "$H:a/b" && said "rm --dir non-empty" "directory not empty on server"
run 0 "rm a symlink to a directory" "$r" --rm "$H:rel_out" && { [ -L "$root/rel_out" ] && fail "rm: the link is still there"; }
[ -d "$outside/dir" ] || fail "rm of a link removed its target"
mkdir -p "$root/tree/d1/d2/d3" "$root/tree/empty"
for i in $(seq 1 10); do echo "$i" >"$root/tree/d1/d2/d3/f$i"; done
ln -s "$outside" "$root/tree/d1/abs_link"
ln -s ../../../outside/dir "$root/tree/d1/d2/rel_link"
ln -s "$outside/precious" "$root/tree/file_link"
run 3 "rm -r through a symlink out" "$r" --rm -r "$H:abs_out/dir" && said "rm out" "outside the server's root"
run 0 "rm -r a tree with symlinks out" "$r" --rm -r "$H:tree" && [ -e "$root/tree" ] && fail "rm -r: tree still there"
[ "$(cat "$outside/precious" 2>/dev/null)" = "keep me" ] && [ "$(cat "$outside/dir/f" 2>/dev/null)" = "keep me too" ] ||
    fail "rm -r followed a symlink out of the root"
# more entries than one call removes: the client calls again until it is gone
mkdir -p "$root/wide"
for d in $(seq 1 5); do mkdir "$root/wide/$d" && (cd "$root/wide/$d" && seq 1 1000 | xargs touch); done
run 0 "rm -r a tree of 5005 entries" "$r" -v --rm -r "$H:wide" && [ -e "$root/wide" ] && fail "rm -r wide: still there"
said "rm -r wide count" "removed 5006 entries"
run 3 "rm the root" "$r" --rm -r "$H:." && said "rm root" "permission denied on server"
[ -d "$root/a" ] || fail "rm of the root removed something"

echo "  names that leave the root"
for op in "--mkdir" "--rm" "--rm -r" "--sum" "--readlink" "--symlink=x" "--glob"; do
    run 3 "$op .." "$r" $op "$H:a/../../x" && said "$op .." "outside the server's root"
    run 3 "$op absolute" "$r" $op "rcat://$H:$port//tmp/x" && said "$op absolute" "outside the server's root"
done
for op in "--mkdir" "--rm" "--sum" "--symlink=x"; do
    run 3 "$op through a symlink out" "$r" $op "$H:abs_out/dir/new" && said "$op out" "outside the server's root"
done
run 3 "mv out by .." "$r" --mv "$H:a/file" ../x && said "mv .." "outside the server's root"
run 3 "mv out by an absolute name" "$r" --mv "$H:a/file" /tmp/x && said "mv abs" "outside the server's root"
run 3 "mv out through a symlink" "$r" --mv "$H:a/file" abs_out/x && said "mv link" "outside the server's root"
run 3 "mv in from outside" "$r" --mv "$H:abs_out/precious" a/p && said "mv in" "outside the server's root"
[ -e "$root/a/file" ] && [ -e "$outside/precious" ] && [ ! -e "$outside/x" ] || fail "a refused mv moved something"

echo "  what rcat never sends (tests/remote_raw)"
mkdir -p "$root/raw"
printf abcd >"$root/raw/f"
printf g >"$root/raw/g" # replaced by a link
ln -s f "$root/raw/l"
raw="${top_builddir:-.}/tests/remote_raw"
if [ -x "$raw" ]; then
    timeout 60 "$raw" "$port" || fail "remote_raw: a case went wrong (above)"
    [ "$(stat -c %a "$root/raw/f")" = 600 ] && [ "$(stat -c %Y "$root/raw/f")" = 1000000000 ] ||
        fail "SETATTR: raw/f is $(stat -c '%a %Y' "$root/raw/f")"
    [ "$(readlink "$root/raw/g")" = f ] && [ "$(cat "$root/raw/f")" = abcd ] && [ ! -e "$root/raw/d" ] ||
        fail "remote_raw: the tree is not as the cases left it"
else
    fail "$raw not built"
fi

echo "  the log"
grep -qE " MKDIR a/b/c 0 B [0-9.]+ ms ok$" "$tmp/rw.log" || fail "log: no MKDIR line"
grep -qE " RENAME a/one 0 B [0-9.]+ ms ok to=a/b/c/one.moved$" "$tmp/rw.log" || fail "log: no RENAME line"
grep -qE " DELETE tree 0 B [0-9.]+ ms ok removed=" "$tmp/rw.log" || fail "log: no DELETE line"
grep -qE " GLOB g/x\*/logs/\*.gz 0 B [0-9.]+ ms ok matches=3$" "$tmp/rw.log" || fail "log: no GLOB line"
grep -qE " GLOB long/\*/1\* 0 B [0-9.]+ ms ok matches=72$" "$tmp/rw.log" || fail "log: GLOB pages not cut at 32 KiB"
grep -qE " SUM a/big 3000000 B [0-9.]+ ms ok sum=sha256$" "$tmp/rw.log" || fail "log: no SUM line"
grep -qE " SYMLINK a/b/link 0 B [0-9.]+ ms ok target=../two$" "$tmp/rw.log" || fail "log: no SYMLINK line"
grep -qE " READLINK a/b/link 0 B [0-9.]+ ms ok$" "$tmp/rw.log" || fail "log: no READLINK line"
stop_server rw

# ---- rights ----------------------------------------------------------------------
echo "rights"
mkdir -p "$root/etc" "$root/bob" "$root/carol"
for who in alice bob carol; do
    (umask 077 && "$rcat" --genkey >"$keys/$who.key") || fatal "rcat --genkey"
done
(umask 077 && for who in alice bob carol; do echo "$who $(cat "$keys/$who.key")"; done >"$root/etc/server.keys")
# alice: read-only; bob: may write, not delete; carol: everything, in carol/
printf '%s\n' "alice rl ." "bob rwl bob" "carol rwld carol" >"$root/etc/access"
as() { echo --identity "$1" --key-file "$keys/$1.key"; }
start_server acl "$rcatd" --listen 127.0.0.1:0 --root "$root" --keys "$root/etc/server.keys" --access "$root/etc/access"
use_port
echo "in bob's" >"$root/bob/f"
echo "in carol's" >"$root/carol/f"
for op in "--mkdir a/new" "--mkdir --parents a/x/y" "--rm a/file" "--rm -r a" "--mv a/file a/file2" \
    "--symlink=x a/newlink"; do
    set -- $op
    n=$#
    args=("$@")
    last=${args[$((n - 1))]}
    unset "args[$((n - 1))]"
    if [ "${args[0]}" = --mv ]; then
        run 3 "alice (read-only): $op" "$r" $(as alice) --mv "$H:a/file" a/file2 && said "alice $op" "read-only"
    else
        run 3 "alice (read-only): $op" "$r" $(as alice) "${args[@]}" "$H:$last" && said "alice $op" "read-only"
    fi
done
[ -e "$root/a/file" ] && [ ! -e "$root/a/new" ] && [ ! -e "$root/a/x" ] && [ ! -e "$root/a/newlink" ] ||
    fail "a refused change by alice happened"
run 0 "alice may sum" "$r" $(as alice) --sum "$H:a/file"
run 0 "alice may glob" "$r" $(as alice) --glob "$H:a/*"
run 0 "bob may mkdir" "$r" $(as bob) --mkdir "$H:d" && { [ -d "$root/bob/d" ] || fail "bob's mkdir: no bob/d"; }
run 0 "bob may rename" "$r" $(as bob) --mv "$H:f" d/f && { [ -e "$root/bob/d/f" ] || fail "bob's mv: no bob/d/f"; }
run 3 "bob may not delete" "$r" $(as bob) --rm "$H:d/f" && said "bob rm" "permission denied on server"
[ -e "$root/bob/d/f" ] || fail "bob's refused rm removed d/f"
run 3 "bob's mv stays in his root" "$r" $(as bob) --mv "$H:d/f" ../carol/f && said "bob mv up" "outside the server's root"
run 0 "carol may delete" "$r" $(as carol) --rm "$H:f" && { [ -e "$root/carol/f" ] && fail "carol's rm: f still there"; }
run 3 "carol may not delete her root" "$r" $(as carol) --rm -r "$H:." && said "carol rm root" "permission denied on server"
run 3 "carol cannot reach the key file" "$r" $(as carol) --rm "$H:../etc/server.keys" && said "carol rm keys" "outside the server's root"
[ -e "$root/etc/server.keys" ] && [ -d "$root/carol" ] || fail "carol removed what she may not"
stop_server acl

# ---- the daemon's own files ------------------------------------------------------
echo "hidden files"
printf '%s\n' "alice rwld ." >"$root/etc/access"
start_server hidden "$rcatd" --listen 127.0.0.1:0 --root "$root" --keys "$root/etc/server.keys" --access "$root/etc/access"
use_port
run 3 "rm the key file" "$r" $(as alice) --rm "$H:etc/server.keys" && said "rm keys" "permission denied on server"
run 3 "mv the key file" "$r" $(as alice) --mv "$H:etc/server.keys" k && said "mv keys" "permission denied on server"
run 3 "mv onto the access file" "$r" $(as alice) --mv "$H:a/file" etc/access && said "mv onto access" "permission denied on server"
run 3 "rm -r the directory that holds them" "$r" $(as alice) --rm -r "$H:etc" && said "rm -r etc" "permission denied on server"
[ -e "$root/etc/server.keys" ] && [ -e "$root/etc/access" ] || fail "the daemon's files were removed"
stop_server hidden

finish test_remote
