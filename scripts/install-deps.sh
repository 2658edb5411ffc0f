#!/bin/sh
# install-deps.sh - installs the Debian packages rpc2 builds and tests with,
# only those missing, so it is quick when there is nothing to do. Run as root
# on Debian 12 (or with sudo); anything else must provide the same tools.
# With --fuzz it also installs clang and libFuzzer, for `make fuzz`; with
# --bench, iperf3 and gnuplot for bench/run_wan.sh (both flags may be given).
set -eu
packages="build-essential autoconf automake libtool pkg-config libev-dev libtirpc-dev
rpcsvc-proto check valgrind libxxhash-dev xxhash libsodium-dev libssl-dev"
fuzz_packages="clang libclang-rt-14-dev" # libclang_rt.fuzzer: -fsanitize=fuzzer links
bench_packages="iperf3 gnuplot-nox iproute2 kmod" # run_wan.sh: TCP baseline, --plot, netns
for arg in "$@"; do
    case "$arg" in
    --fuzz) packages="$packages $fuzz_packages" ;;
    --bench) packages="$packages $bench_packages" ;;
    *) echo "install-deps.sh: unknown option '$arg' (expected --fuzz or --bench)" >&2; exit 1 ;;
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
$sudo apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
