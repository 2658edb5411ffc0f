#!/bin/sh
# install-deps.sh - installs the Debian packages rpc2 builds and tests with,
# only those missing, so it is quick when there is nothing to do. Run as root
# on Debian 12 (or with sudo); anything else must provide the same tools.
# Flags add packages for one job, and may be combined:
#   --fuzz     clang and libFuzzer, for `make fuzz'
#   --bench    iperf3 and gnuplot, for bench/run_wan.sh
#   --deb      debhelper, dpkg-dev and lintian, for dpkg-buildpackage
#   --metrics  promtool (Debian's prometheus package), for checking what
#              `rcatd --metrics' serves; its own daemon is kept from starting
set -eu
packages="build-essential autoconf automake libtool pkg-config libev-dev libtirpc-dev
rpcsvc-proto check valgrind libxxhash-dev xxhash libsodium-dev libssl-dev libmicrohttpd-dev
curl iproute2 nftables libsqlite3-dev libpq-dev postgresql"
# iproute2, nftables: test_reverse.sh's namespaces and firewall; libsqlite3-dev,
# libpq-dev, postgresql: rcat queue and its tests (a server of their own)
fuzz_packages="clang libclang-rt-14-dev" # libclang_rt.fuzzer: -fsanitize=fuzzer links
bench_packages="iperf3 gnuplot-nox iproute2 kmod" # run_wan.sh: TCP baseline, --plot, netns
deb_packages="debhelper dpkg-dev lintian fakeroot"
metrics_packages="prometheus"
for flag in "$@"; do
    case $flag in
    --fuzz) packages="$packages $fuzz_packages" ;;
    --bench) packages="$packages $bench_packages" ;;
    --deb) packages="$packages $deb_packages" ;;
    --metrics) packages="$packages $metrics_packages" ;;
    *) echo "install-deps.sh: unknown flag $flag (--fuzz, --bench, --deb, --metrics)" >&2; exit 1 ;;
    esac
done
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=""; fi
# Packages that bring a daemon (prometheus, postgresql: the queue's tests
# start a server of their own) must not start it: we want their tools. policy-rc.d is Debian's switch for that (invoke-rc.d asks it);
# one already in place is left alone.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    $sudo sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
    trap '$sudo rm -f "$policy"' EXIT
fi
$sudo apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
