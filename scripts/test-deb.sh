#!/bin/sh
# test-deb.sh - the Debian packages, built, checked, installed, used and
# purged on this machine, which is left as it was. As root, from the top of
# a configured tree (sh scripts/install-deps.sh --deb first):
#
#  1. dpkg-buildpackage -us -uc -b in the release tarball (made here unless
#     TARBALL is set; DEB_BUILD_OPTIONS "nocheck parallel=2" unless set: CI
#     runs the suite elsewhere), then lintian: errors fail, warnings show;
#  2. apt-get install of the three packages;
#  3. rcatd started as rcatd.service starts it: the unit's own ExecStart
#     line, its EnvironmentFile (/etc/default/rcatd) expanded as systemd
#     does, as its User= with no new privileges (setpriv), its
#     StateDirectory made -- or by systemctl where systemd runs; then a file
#     put in /srv/rcat fetched with the installed rcat and compared, and a
#     program built against librpc2-dev with pkg-config alone;
#  4. apt-get purge, then checks that no package, file, user or directory
#     of ours is left.
# Without systemd the service runs in a network and PID namespace of its
# own, so its fixed port (127.0.0.1:7755) collides with nothing.
set -eu
top=$(pwd)
[ "$(id -u)" -eq 0 ] || { echo "test-deb.sh: run it as root" >&2; exit 1; }
command -v dpkg-buildpackage >/dev/null && command -v lintian >/dev/null || {
    echo "test-deb.sh: sh scripts/install-deps.sh --deb first" >&2
    exit 1
}
for p in librpc2-1 librpc2-dev rcat; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q installed; then
        echo "test-deb.sh: $p is installed already; this test would remove it" >&2
        exit 1
    fi
done
! getent passwd rcatd >/dev/null || { echo "test-deb.sh: a user rcatd exists" >&2; exit 1; }
srv_existed=no
[ -e /srv/rcat ] && srv_existed=yes

work=$(mktemp -d)
installed=no
cleanup() {
    rm -f /srv/rcat/test-deb.txt /srv/rcat/test-deb.bin
    if [ "$installed" = yes ]; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq rcat librpc2-dev librpc2-1 \
            >/dev/null 2>&1 || :
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# ---- 1. build and lintian ----------------------------------------------------
tarball=${TARBALL:-}
if [ -z "$tarball" ]; then
    make -s dist-gzip >/dev/null
    tarball=$(ls -t "$top"/rpc2-*.tar.gz | head -n 1)
fi
tar -xzf "$tarball" -C "$work"
src=$(echo "$work"/rpc2-*)
echo "== dpkg-buildpackage -us -uc -b =="
(cd "$src" && DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-nocheck parallel=2} dpkg-buildpackage -us -uc -b) \
    >"$work/build.log" 2>&1 || {
    tail -n 60 "$work/build.log"
    fail "dpkg-buildpackage"
}
ls "$work"/*.deb
for p in librpc2-1 librpc2-dev rcat; do
    ls "$work/${p}_"*.deb >/dev/null 2>&1 || fail "no $p package"
done
echo "== lintian =="
lintian --tag-display-limit 0 "$work"/*.changes >"$work/lintian.log" 2>&1 || :
cat "$work/lintian.log"
! grep -q '^E: ' "$work/lintian.log" || fail "lintian found errors"
echo "lintian: $(grep -c '^E: ' "$work/lintian.log") errors, $(grep -c '^W: ' "$work/lintian.log") warnings"

# ---- 2. install ------------------------------------------------------------------
echo "== apt-get install =="
installed=yes
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$work"/librpc2-1_*.deb \
    "$work"/librpc2-dev_*.deb "$work"/rcat_*.deb >"$work/apt.log" 2>&1 || {
    cat "$work/apt.log"
    fail "apt-get install"
}
getent passwd rcatd >/dev/null || fail "no rcatd user after install"
[ -d /srv/rcat ] || fail "no /srv/rcat after install"
[ -f /etc/default/rcatd ] || fail "no /etc/default/rcatd"
unit=/lib/systemd/system/rcatd.service
[ -f "$unit" ] || fail "no $unit"
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify "$unit" 2>&1 | grep -v -e '^$' >"$work/verify.log" || :
    grep -i 'rcatd.service' "$work/verify.log" && fail "systemd-analyze verify $unit"
fi

# ---- 3. the service, and a fetch through it ------------------------------------------
printf 'served by the rcat package (%s)\n' "$(date)" >/srv/rcat/test-deb.txt
head -c 2000000 /dev/urandom >/srv/rcat/test-deb.bin
chmod 644 /srv/rcat/test-deb.txt /srv/rcat/test-deb.bin

# The unit's command line with its environment, expanded as systemd does
# for these forms: ${VAR} one word, $VAR split on white space.
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
user=$(sed -n 's/^User=//p' "$unit")
group=$(sed -n 's/^Group=//p' "$unit")
state=$(sed -n 's/^StateDirectory=//p' "$unit")
[ -n "$exec_start" ] && [ -n "$user" ] && [ -n "$state" ] || fail "$unit lacks ExecStart, User or StateDirectory"
echo "ExecStart=$exec_start (User=$user)"

client_checks='
rcat -q rcat://127.0.0.1:7755/test-deb.txt >"$work/got.txt"
cmp /srv/rcat/test-deb.txt "$work/got.txt"
rcat -q -o "$work/got.bin" rcat://127.0.0.1:7755/test-deb.bin
cmp /srv/rcat/test-deb.bin "$work/got.bin"
pgrep -u "'"$user"'" -x rcatd >/dev/null
'
if [ -d /run/systemd/system ]; then
    echo "== systemctl start rcatd =="
    systemctl start rcatd
    sleep 1
    work=$work sh -euc "$client_checks" || { journalctl -u rcatd | tail; fail "fetch through rcatd.service"; }
    systemctl stop rcatd
else
    echo "== no systemd here: the unit's ExecStart as $user, in namespaces of its own =="
    install -d -o "$user" -g "$group" -m 0700 "/var/lib/$state"
    # shellcheck disable=SC2016
    run_unit='set -a; . /etc/default/rcatd; set +a
ip link set lo up
cmdline=$(printf "%s\n" "$EXEC_START" | sed "s/\${\([A-Za-z_]*\)}/\"\$\1\"/g")
eval "set -- $cmdline"
cd /
setpriv --reuid="$USER_" --regid="$GROUP_" --init-groups --no-new-privs "$@" >"$work/rcatd.out" 2>"$work/rcatd.err" &
for _ in $(seq 1 100); do grep -q "^rcatd listening" "$work/rcatd.out" && break; sleep 0.1; done
grep -q "^rcatd listening" "$work/rcatd.out" || { cat "$work/rcatd.err"; exit 1; }
'"$client_checks"
    EXEC_START=$exec_start USER_=$user GROUP_=$group work=$work \
        unshare --net --pid --fork sh -euc "$run_unit" ||
        { cat "$work/rcatd.err" 2>/dev/null; fail "fetch through the unit's command line"; }
    cat "$work/rcatd.err"
fi
echo "fetched test-deb.txt and test-deb.bin (2000000 bytes) through rcatd as $user"

# librpc2-dev: a program with pkg-config alone, against the packaged library.
cp "$src/examples/rcatd_client/rcatd_client.c" "$src/examples/rcatd_client/Makefile" "$work/"
make -s -C "$work" rcatd_client >/dev/null || fail "rcatd_client against librpc2-dev"
ldd "$work/rcatd_client" | grep -q "librpc2.so.1 => /\(usr/\)\?lib/" || fail "rcatd_client's librpc2"
echo "examples/rcatd_client built with pkg-config against librpc2-dev"
rm -f /srv/rcat/test-deb.txt /srv/rcat/test-deb.bin

# ---- 4. purge --------------------------------------------------------------------
echo "== apt-get purge =="
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq rcat librpc2-dev librpc2-1 \
    >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "apt-get purge"; }
installed=no
for p in librpc2-1 librpc2-dev rcat; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q -v 'not-installed' &&
        fail "$p still known to dpkg: $(dpkg-query -W -f='${Status}' "$p")"
done
! getent passwd rcatd >/dev/null || fail "the rcatd user is left"
! getent group rcatd >/dev/null || fail "the rcatd group is left"
[ ! -e /etc/default/rcatd ] || fail "/etc/default/rcatd is left"
[ ! -e /var/lib/rcatd ] || fail "/var/lib/rcatd is left"
[ "$srv_existed" = yes ] || [ ! -e /srv/rcat ] || fail "/srv/rcat is left"
[ ! -e /usr/bin/rcatd ] && [ ! -e /usr/include/rpc2 ] || fail "files are left"
! ldconfig -p | grep -q 'librpc2\.so' || fail "the loader's cache still names librpc2"
echo "test-deb.sh: passed"
