#!/bin/bash
# test_tree.sh - rcat -r (issue 14, items 1-3) with real rcatd and rcat
# processes on loopback:
#  - a tree of ~2,000 files (0 B to 5 MiB, nested 6 deep, empty directories,
#    a symlink, names with spaces, UTF-8 and leading dashes) fetched and
#    stored back with -p and -j 8, compared with diff -r, and its modes and
#    mtimes (directories' too) compared entry by entry;
#  - a second run with --skip-existing moves 0 bytes (the JSON DONE's
#    FileBytes) and skips every file; one file changed on the server: only
#    it moves; a file touched but not changed: --checksum-compare leaves it;
#  - wildcards: a remote one resolved by the server, local ones by the shell;
#  - per-file events: STOP per file, SKIP, ARGSTOP per operand, DONE counts;
#  - nothing written outside the destination: a symlink planted in it is
#    not followed (exit 4, the outside untouched); a remote path with ".."
#    refused by the server (exit 3).
set -u
umask 022
export TZ=UTC LC_ALL=C.UTF-8
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_tree.XXXXXX") || exit 1
. "${top_srcdir:-.}/tests/rcatd_lib.sh"
command -v python3 >/dev/null || { echo "SKIP: python3 makes the tree"; exit 77; }

root="$tmp/root"
src="$root/src"
mkdir -p "$src"
# ~2,000 files, mostly small, a few large: a few MiB in all
python3 - "$src" <<'PY'
import os, random, sys
random.seed(14)
top = sys.argv[1]
dirs = [top]
path = top
for depth in range(6):                         # nested 6 deep
    path = os.path.join(path, "level %d" % depth)
    os.mkdir(path)
    dirs.append(path)
for i in range(24):
    d = os.path.join(random.choice(dirs), "d%02d" % i)
    os.mkdir(d)
    dirs.append(d)
names = ["-dash", "sp ace", "ünïcödé", "--double", "x"]
sizes = [0] + [5 << 20, 1 << 20, 300000, 70000, 65536, 65535] + [0] * 20
n = 0
while n < 2000:
    d = random.choice(dirs)
    name = "%s-%04d%s" % (random.choice(names), n, random.choice(["", ".txt", ".gz"]))
    size = sizes[n] if n < len(sizes) else random.choice([random.randint(1, 2048)] * 9 + [random.randint(2048, 40000)])
    with open(os.path.join(d, name), "wb") as f:
        f.write(os.urandom(size))
    os.chmod(os.path.join(d, name), random.choice([0o644, 0o600, 0o755, 0o640]))
    t = 1500000000 + random.randint(0, 10 ** 8)
    os.utime(os.path.join(d, name), ns=(t * 10 ** 9 + 123456789, t * 10 ** 9 + random.randint(0, 999999999)))
    n += 1
for e in ("empty one", "level 0/empty two", "-empty"):
    os.mkdir(os.path.join(top, e))
os.chmod(os.path.join(top, "empty one"), 0o700)
os.symlink("level 0/x-link-target", os.path.join(top, "a link"))
with open(os.path.join(top, "level 0", "x-link-target"), "w") as f:
    f.write("target\n")
for i, d in enumerate(reversed(dirs + [os.path.join(top, "empty one")])):
    os.utime(d, (1400000000 + i, 1400000000 + i))
PY
nfiles=$(find "$src" -type f | wc -l)
nlinks=$(find "$src" -type l | wc -l)
note "tree: $nfiles files, $nlinks link, $(find "$src" -type d | wc -l) directories, $(du -sk "$src" | cut -f1) KiB"

start_server tree "$rcatd" --listen 127.0.0.1:0 --root "$root" --writable
H=127.0.0.1
r="$tmp/r"
printf '#!/bin/sh\nexec "%s" -P "%s" "$@"\n' "$rcat" "$port" >"$r" && chmod +x "$r"

# attrs DIR: type, mode and mtime of every entry beneath DIR (not a link's
# own mtime, which no copy keeps), one line each, sorted
attrs() { (cd "$1" && find . -mindepth 1 \( -type l -printf '%p %y\n' \) -o -printf '%p %y %m %T@\n' | sort); }
# done_field FIELD: the value of FIELD in the last run's DONE event
done_field() { sed -n 's/.*"Type":"DONE".*"'"$1"'":\([0-9]*\).*/\1/p' "$tmp/err"; }
count() { grep -c "\"Type\":\"$1\"" "$tmp/err"; }

echo "fetch a tree with -p -j 8"
if run 0 "rcat -r fetch" "$r" -r -p -j 8 --json "$H:src/" "$tmp/got"; then
    diff -r "$src" "$tmp/got" >"$tmp/diff" 2>&1 || { head "$tmp/diff"; fail "fetched tree differs"; }
    [ "$(attrs "$src")" = "$(attrs "$tmp/got")" ] || fail "fetched tree: modes or mtimes differ"
    [ "$(readlink "$tmp/got/a link")" = "level 0/x-link-target" ] || fail "the link is not a link"
    [ "$(count STOP)" -eq $((nfiles + nlinks)) ] || fail "fetch: $(count STOP) STOP events, want $((nfiles + nlinks))"
    [ "$(count ARGSTOP)" -eq 1 ] || fail "fetch: no ARGSTOP"
    [ "$(done_field TransfersPassed)" = $((nfiles + nlinks)) ] || fail "fetch: DONE counts $(done_field TransfersPassed) passed"
    [ "$(done_field FileBytes)" = "$(find "$src" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')" ] ||
        fail "fetch: DONE FileBytes $(done_field FileBytes) is not the tree's bytes"
    ls -a "$tmp/got/level 0" | grep -q rcat- && fail "fetch left a temporary behind"
fi

echo "again with --skip-existing: nothing moves"
if run 0 "rcat -r --skip-existing" "$r" -r -p --skip-existing --json "$H:src/" "$tmp/got"; then
    [ "$(done_field FileBytes)" = 0 ] || fail "--skip-existing moved $(done_field FileBytes) bytes"
    [ "$(done_field TransfersSkipped)" = "$nfiles" ] || fail "--skip-existing skipped $(done_field TransfersSkipped) of $nfiles"
    [ "$(count SKIP)" -eq "$nfiles" ] || fail "--skip-existing: $(count SKIP) SKIP events"
fi

echo "one file changed on the server: only it moves"
changed=$(find "$src" -type f -name '*-0100*' | head -1)
echo "more" >>"$changed"
if run 0 "rcat -r --skip-existing after a change" "$r" -r -p --skip-existing --json "$H:src/" "$tmp/got"; then
    [ "$(done_field FileBytes)" = "$(stat -c %s "$changed")" ] ||
        fail "after one change: $(done_field FileBytes) bytes moved, want $(stat -c %s "$changed")"
    [ "$(grep '"Type":"STOP"' "$tmp/err" | grep -vc '"Link"')" -eq 1 ] || fail "after one change: more than one file moved"
    same "$changed" "$tmp/got/${changed#"$src"/}" "the changed file"
fi

echo "touched, not changed: --checksum-compare leaves it, --skip-existing would not"
touch -d @1600000000 "$changed"
if run 0 "rcat -r --checksum-compare" "$r" -r --checksum-compare --json "$H:src/" "$tmp/got"; then
    [ "$(done_field FileBytes)" = 0 ] || fail "--checksum-compare moved $(done_field FileBytes) bytes"
    grep -q '"Reason":"SameChecksum"' "$tmp/err" || fail "--checksum-compare: no SameChecksum SKIP"
fi

echo "store it back with -p --put"
if run 0 "rcat -r --put" "$r" -r -p -j 8 --json --put "$tmp/got/" "$H:up"; then
    diff -r "$tmp/got" "$root/up" >"$tmp/diff" 2>&1 || { head "$tmp/diff"; fail "stored tree differs"; }
    [ "$(attrs "$tmp/got")" = "$(attrs "$root/up")" ] || fail "stored tree: modes or mtimes differ"
    [ -d "$root/up/empty one" ] && [ -d "$root/up/level 0/empty two" ] || fail "empty directories not stored"
    [ -L "$root/up/a link" ] || fail "the link was not stored as a link"
    # durable at once at the end (RCAT_STORE_NO_FLUSH, then one RCAT_SYNC
    # after the last store), not one flush per file
    syncs=$(grep -c ' SYNC up ' "$tmp/tree.log")
    [ "$syncs" = 1 ] || fail "--put: $syncs SYNC calls for the tree, want 1"
    last_store=$(grep -n ' STORE ' "$tmp/tree.log" | tail -1 | cut -d: -f1)
    sync_at=$(grep -n ' SYNC up ' "$tmp/tree.log" | tail -1 | cut -d: -f1)
    [ "${sync_at:-0}" -gt "${last_store:-0}" ] || fail "--put: the SYNC came before the last STORE"
fi
if run 0 "rcat -r --put --skip-existing" "$r" -r -p --skip-existing --json --put "$tmp/got/" "$H:up"; then
    [ "$(done_field FileBytes)" = 0 ] || fail "--put --skip-existing moved $(done_field FileBytes) bytes"
fi

echo "wildcards"
if run 0 "remote wildcard" "$r" -r --json "$H:src/level 0/*.txt" "$tmp/wild"; then
    want=$(cd "$src/level 0" && ls -d -- *.txt | sort)
    [ "$(ls "$tmp/wild" | sort)" = "$want" ] || fail "remote wildcard: not the matches"
    [ -n "$want" ] || fail "remote wildcard: the tree has no match (test tree)"
fi
run 3 "remote wildcard matching nothing" "$r" -r "$H:src/*.none" "$tmp/none"
if run 0 "local wildcards, several sources" "$r" -r --json --put "$src/level 0/"*.gz "$H:wild/"; then
    [ "$(ls "$root/wild" | sort)" = "$(cd "$src/level 0" && ls -d -- *.gz | sort)" ] || fail "local wildcards: not the files"
    [ "$(count ARGSTOP)" -eq "$(cd "$src/level 0" && ls -d -- *.gz | wc -l)" ] || fail "local wildcards: one ARGSTOP per operand"
fi

echo "never outside the destination"
mkdir -p "$tmp/outside" "$tmp/trap"
ln -s "$tmp/outside" "$tmp/trap/level 0"
run 4 "a symlink planted in the destination" "$r" -r "$H:src/" "$tmp/trap"
[ -z "$(ls -A "$tmp/outside")" ] || fail "rcat -r wrote through a symlink out of the destination"
run 3 "a remote path leaving the root" "$r" -r "$H:../" "$tmp/dotdot"
[ -e "$tmp/dotdot" ] && [ -n "$(ls -A "$tmp/dotdot")" ] && fail "'..' copied something"

echo "usage"
run 1 "-r without a destination" "$r" -r "$H:src"
run 1 "-j without -r" "$r" -j 4 "$H:src/x"
run 1 "-r with --offset" "$r" -r --offset 1 "$H:src" "$tmp/x"

stop_server tree
finish test_tree
