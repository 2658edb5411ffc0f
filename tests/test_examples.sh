#!/bin/sh
# test_examples.sh - runs the rcat, store and vmfile examples as a newcomer
# would: each server in the background on a free port of 127.0.0.1, its
# client against it, what came out compared with what went in (cmp), then
# the server stopped by its PID. The programs are found under
# ${top_builddir:-.}/examples/<name>/ (make check sets top_builddir).
set -u
bin="${top_builddir:-.}/examples"
tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

fail() {
    echo "FAIL: $*"
    exit 1
}

# start NAME ARGS...: starts NAME_server in the background; sets pid and port.
start() {
    name=$1
    shift
    server="$bin/$name/${name}_server"
    [ -x "$server" ] || fail "$server not built"
    "$server" 127.0.0.1:0 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pid=$!
    port=""
    for _ in $(seq 1 100); do
        port=$(sed -n "s/^${name}_server listening on \([0-9]*\)\$/\1/p" "$tmp/$name.out")
        [ -n "$port" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    cat "$tmp/$name.err"
    fail "${name}_server did not start"
}

# stop NAME: the server must still be alive (no crash), then it is killed.
stop() {
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/$1.err"; fail "$1_server died"; }
    kill "$pid"
    wait "$pid" 2>/dev/null
    pid=""
}

# ok WHAT CMD...: CMD must succeed; its output goes to $tmp/out.
ok() {
    what=$1
    shift
    timeout 60 "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ "$rc" -eq 0 ] && return 0
    sed 's/^/    /' "$tmp/err"
    [ "$rc" -eq 124 ] && fail "$what: timed out after 60 s"
    fail "$what: exit status $rc"
}

# refused WHAT PATTERN CMD...: CMD must fail (not hang) and say PATTERN on stderr.
refused() {
    what=$1 pattern=$2
    shift 2
    timeout 60 "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ "$rc" -eq 124 ] && fail "$what: timed out after 60 s"
    [ "$rc" -ne 0 ] || fail "$what: succeeded, should have failed"
    grep -q "$pattern" "$tmp/err" || { sed 's/^/    /' "$tmp/err"; fail "$what: no '$pattern'"; }
}

same() { cmp "$1" "$2" || fail "$3: $1 and $2 differ"; }

# in a directory: listing NAMES... must be all it holds (no temporary left over)
only() {
    dir=$1
    shift
    [ "$(ls -A "$dir" | tr '\n' ' ')" = "$* " ] || fail "$dir holds: $(ls -A "$dir")"
}

# The inputs: empty, one line, and 3.4 MB (it streams instead of riding in a datagram).
mkdir "$tmp/files" "$tmp/local" "$tmp/stored"
: >"$tmp/files/empty"
echo "hello, rpc2" >"$tmp/files/small"
seq 1 500000 >"$tmp/files/big"

echo "rcat: fetch files by name"
start rcat "$tmp/files"
rcat="$bin/rcat/rcat_client"
for f in empty small big; do
    ok "rcat $f" "$rcat" 127.0.0.1 "$port" "$f"
    same "$tmp/out" "$tmp/files/$f" "rcat $f to standard output"
done
ok "rcat big to a file" "$rcat" 127.0.0.1 "$port" big "$tmp/local/big"
same "$tmp/local/big" "$tmp/files/big" "rcat big to a file"
"$rcat" 127.0.0.1 "$port" big | cat >"$tmp/out" || fail "rcat into a pipe"
same "$tmp/out" "$tmp/files/big" "rcat big into a pipe"
refused "rcat a missing file" "no such file" "$rcat" 127.0.0.1 "$port" missing "$tmp/local/missing"
refused "rcat ../" "not a plain file name" "$rcat" 127.0.0.1 "$port" ../files/small
only "$tmp/local" big
stop rcat

echo "store: send files from an open descriptor"
start store "$tmp/stored"
store="$bin/store/store_client"
ok "store big" "$store" 127.0.0.1 "$port" big "$tmp/files/big"
same "$tmp/stored/big" "$tmp/files/big" "store big"
grep -q "^stored $(wc -c <"$tmp/files/big") bytes as big\$" "$tmp/out" || fail "store said: $(cat "$tmp/out")"
cat "$tmp/files/big" | ok "store from a pipe" "$store" 127.0.0.1 "$port" piped || exit 1
same "$tmp/stored/piped" "$tmp/files/big" "store from a pipe"
ok "store empty" "$store" 127.0.0.1 "$port" empty </dev/null
same "$tmp/stored/empty" "$tmp/files/empty" "store empty"
head -c 16777217 /dev/zero >"$tmp/files/over" # STORE_MAX_BYTES + 1
refused "store over the quota" "quota" "$store" 127.0.0.1 "$port" over "$tmp/files/over"
refused "store ../" "not a plain file name" "$store" 127.0.0.1 "$port" ../x "$tmp/files/small"
only "$tmp/stored" big empty piped
stop store

echo "vmfile: memory to memory, both ways"
start vmfile
vmfile="$bin/vmfile/vmfile_client"
head -c 1048576 "$tmp/files/big" >"$tmp/files/max" # VMFILE_MAX
for f in empty small max; do
    ok "vmfile $f" "$vmfile" 127.0.0.1 "$port" "$tmp/files/$f"
    same "$tmp/out" "$tmp/files/$f" "vmfile $f"
done
head -c 300000 "$tmp/files/big" | ok "vmfile from a pipe" "$vmfile" 127.0.0.1 "$port" || exit 1
head -c 300000 "$tmp/files/big" | cmp - "$tmp/out" || fail "vmfile from a pipe: differs"
refused "vmfile over the bound" "larger than" "$vmfile" 127.0.0.1 "$port" "$tmp/files/big"
stop vmfile
echo "all examples passed"
