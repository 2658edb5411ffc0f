#!/bin/sh
# test-install.sh - `make install` as a newcomer meets it. From the release
# tarball (made from this configured tree unless TARBALL is set):
#
#   (default)  ./configure --prefix=SCRATCH && make install, then the
#              README's "rcat and rcatd in a minute" commands after its
#              build line, with the scratch bin first in PATH and nothing in
#              LD_LIBRARY_PATH (the tools' rpath, rpc2.pc's rpath);
#   --system   as root into /usr/local: the README's commands verbatim, the
#              build line included (ldconfig at install), then `make
#              uninstall`, checked to leave nothing of rpc2 behind.
#
# Either way the commands are read from README.md, so it cannot drift, and
# run in a network and PID namespace of their own where unshare allows (the
# README's fixed ports then collide with nothing, and its background rcatds
# die with the namespace). Then examples/rtime and examples/rcatd_client are
# compiled with nothing but `pkg-config --cflags --libs rpc2` and run
# against their servers: rtime_server, and the installed rcatd.
set -eu
mode=scratch
[ "${1:-}" = --system ] && mode=system
top=$(pwd)
[ -f "$top/README.md" ] && [ -f "$top/Makefile" ] || {
    echo "test-install.sh: run it from the top of a configured tree" >&2
    exit 1
}
work=$(mktemp -d)
pids=""
installed=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    # --system: a failure must not leave rpc2 in /usr/local
    if [ -n "$installed" ]; then
        (cd "$installed" && make -s uninstall >/dev/null 2>&1)
        remove_new_dirs
    fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# make uninstall leaves the directories make install created: those that
# were not there before and are empty now go too.
remove_new_dirs() {
    find /usr/local -depth -type d -empty | sort | comm -13 "$work/dirs.before" - |
        while read -r d; do rmdir "$d"; done
}

# The fenced block under the README's heading; line 1 builds and installs.
block=$(awk '/^## rcat and rcatd in a minute/ {h = 1; next}
             h && /^```sh$/ {b = 1; next}
             b && /^```$/ {exit}
             b' "$top/README.md")
build_line=$(printf '%s\n' "$block" | sed -n 1p)
use_lines=$(printf '%s\n' "$block" | sed 1d)
printf '%s\n' "$build_line" | grep -q 'make install$' ||
    fail "README: the first line of \"in a minute\" does not end in make install: $build_line"

# isolated SCRIPT: runs sh -eu SCRIPT in the current directory, in fresh
# network and PID namespaces when possible.
isolated() {
    if unshare --net --pid --fork true 2>/dev/null; then
        unshare --net --pid --fork sh -euc "ip link set lo up; $1"
    else
        echo "(no namespaces here: the README's ports must be free)"
        sh -euc "$1
kill \$(jobs -p) 2>/dev/null || :"
    fi
}

tarball=${TARBALL:-}
if [ -z "$tarball" ]; then
    make -s dist-gzip >/dev/null
    tarball=$(ls -t "$top"/rpc2-*.tar.gz | head -n 1)
fi
tar -xzf "$tarball" -C "$work"
src=$(echo "$work"/rpc2-*)

if [ "$mode" = scratch ]; then
    prefix="$work/prefix"
    echo "== make install into $prefix =="
    (cd "$src" && ./configure -q --prefix="$prefix" && make -s -j2 >/dev/null && make -s install >/dev/null)
    PATH="$prefix/bin:$PATH"
    PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
    export PATH PKG_CONFIG_PATH
    run_dir="$work/quick"
    mkdir "$run_dir"
else
    [ "$(id -u)" -eq 0 ] || fail "--system installs into /usr/local: run it as root"
    [ ! -e /usr/local/lib/librpc2.so ] || fail "rpc2 is installed in /usr/local already"
    echo "== the README's build line, verbatim, in $src =="
    echo "$build_line"
    find /usr/local -type d | sort >"$work/dirs.before"
    installed=$src
    (cd "$src" && sh -euc "$build_line") >"$work/build.log" 2>&1 || {
        tail -n 40 "$work/build.log"
        fail "the README's build line"
    }
    prefix=/usr/local
    run_dir="$src"
fi
unset LD_LIBRARY_PATH
[ "$(command -v rcatd)" = "$prefix/bin/rcatd" ] || fail "rcatd is not $prefix/bin/rcatd"
rcatd --version

echo "== the README's commands, verbatim =="
printf '%s\n' "$use_lines"
(cd "$run_dir" && isolated "$use_lines") >"$work/quick.out" 2>"$work/quick.err" || {
    cat "$work/quick.out" "$work/quick.err"
    fail "the README's commands"
}
cat "$work/quick.out"
(
    cd "$run_dir"
    [ "$(cat copy.txt)" = hello ] || fail "copy.txt is not hello"
    dd if=demo/big.iso bs=4096 skip=256 count=1 status=none | cmp - part.bin ||
        fail "part.bin is not big.iso's bytes from 1 MiB"
    cmp notes.txt demo/notes.txt || fail "notes.txt did not arrive in demo/"
    grep -q '^hello$' "$work/quick.out" || fail "rcat did not print hello.txt"
)

echo "== examples built with pkg-config --cflags --libs rpc2 alone =="
cflags=$(pkg-config --cflags rpc2)
libs=$(pkg-config --libs rpc2)
echo "cflags: $cflags"
echo "libs:   $libs"
ex="$work/examples"
mkdir -p "$ex/rtime" "$ex/rcatd_client"
for f in rtime.x rtime_server.c rtime_client.c; do cp "$src/examples/rtime/$f" "$ex/rtime/"; done
cp "$src/examples/rcatd_client/rcatd_client.c" "$src/examples/rcatd_client/Makefile" \
    "$ex/rcatd_client/"
(
    cd "$ex/rtime"
    rpcgen -h -o rtime.h rtime.x && rpcgen -c -i 0 -o rtime_xdr.c rtime.x
    for p in rtime_server rtime_client; do
        # shellcheck disable=SC2086
        cc -Wall -Werror $cflags -o "$p" "$p.c" rtime_xdr.c $libs
    done
)
make -s -C "$ex/rcatd_client" CFLAGS="-O2 -Wall -Werror"

# start NAME OUT CMD...: CMD in the background, printing "NAME listening on
# PORT" to OUT; sets port.
start() {
    name=$1 out=$2
    shift 2
    "$@" >"$out" 2>"$out.err" &
    pids="$pids $!"
    port=""
    for _ in $(seq 1 100); do
        port=$(sed -n "s/^$name listening on \([0-9]*\)\$/\1/p" "$out")
        [ -n "$port" ] && return 0
        sleep 0.05
    done
    cat "$out.err"
    fail "$name did not start"
}

start rtime_server "$work/rtime.out" "$ex/rtime/rtime_server" 127.0.0.1:0
"$ex/rtime/rtime_client" 127.0.0.1 "$port" | grep '^server time: ' || fail "rtime_client"

mkdir "$work/root"
head -c 1000000 /dev/urandom >"$work/root/one.bin"
start rcatd "$work/rcatd.out" rcatd --root "$work/root" --listen 127.0.0.1:0
"$ex/rcatd_client/rcatd_client" 127.0.0.1 "$port" one.bin >"$work/one.copy" ||
    fail "rcatd_client"
cmp "$work/root/one.bin" "$work/one.copy" || fail "rcatd_client's copy differs"
echo "rcatd_client fetched one.bin (1000000 bytes) from the installed rcatd"
for p in $pids; do kill "$p"; done
pids=""

if [ "$mode" = system ]; then
    echo "== make uninstall =="
    (cd "$src" && make -s uninstall >/dev/null)
    installed=""
    remove_new_dirs
    find /usr/local -type d | sort | cmp -s - "$work/dirs.before" ||
        fail "directories under /usr/local differ after make uninstall"
    left=$(find /usr/local -name '*rpc2*' -o -name 'rcat*' | head)
    [ -z "$left" ] || fail "make uninstall left: $left"
    ! ldconfig -p | grep -q 'librpc2\.so' || fail "the loader's cache still names librpc2"
fi
echo "test-install.sh ($mode): passed"
