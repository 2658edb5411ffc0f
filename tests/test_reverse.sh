#!/bin/bash
# test_reverse.sh - connecting from the other side (issue 15, item 5): a
# server behind a firewall that lets only its own traffic out, with real
# rcatd and rcat processes in two network namespaces the test creates (a
# veth pair between them) and removes. The server's namespace drops every
# packet that is not an answer to one it sent (nftables, conntrack):
#  - rcat cannot reach rcatd there the usual way (exit 2);
#  - rcatd --connect announces itself to rcat --listen, which then fetches
#    and stores through the same firewall, at level none and at encrypt;
#  - rcat believes only the host its operand names: an announcement from
#    elsewhere is passed over, and the wait ends at --timeout (exit 2).
# Needs root, ip(8) and nft(8) (scripts/install-deps.sh installs them);
# without them it is skipped (77), saying why.
set -u
umask 022
export LC_ALL=C

skip() {
    echo "SKIP: $*"
    exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
command -v ip >/dev/null || skip "needs ip(8) (iproute2)"
command -v nft >/dev/null || skip "needs nft(8) (nftables)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_reverse.XXXXXX") || exit 1
. "${top_srcdir:-.}/tests/rcatd_lib.sh"

ns_srv="rpc2rev_s$$"
ns_cli="rpc2rev_c$$"
srv_addr=10.231.$(($$ % 250)).1
cli_addr=10.231.$(($$ % 250)).2
other_addr=10.231.$(($$ % 250)).3
listen_port=7000

remove_namespaces() {
    ip netns del "$ns_srv" 2>/dev/null
    ip netns del "$ns_cli" 2>/dev/null
}
trap 'cleanup; remove_namespaces' EXIT

ip netns add "$ns_srv" 2>/dev/null || skip "cannot create a network namespace here"
ip netns add "$ns_cli" || fatal "ip netns add $ns_cli"
ip link add "rv$$s" netns "$ns_srv" type veth peer name "rv$$c" netns "$ns_cli" ||
    skip "cannot create a veth pair here"
ip -n "$ns_srv" addr add "$srv_addr/24" dev "rv$$s"
ip -n "$ns_cli" addr add "$cli_addr/24" dev "rv$$c"
ip -n "$ns_cli" addr add "$other_addr/24" dev "rv$$c"
for ns in "$ns_srv" "$ns_cli"; do
    ip -n "$ns" link set lo up
done
ip -n "$ns_srv" link set "rv$$s" up
ip -n "$ns_cli" link set "rv$$c" up
# Only answers get in: what a firewall allowing outbound traffic only does.
ip netns exec "$ns_srv" nft -f - <<'EOF' || skip "nftables cannot filter in a namespace here"
table inet outbound_only {
    chain input {
        type filter hook input priority 0; policy drop;
        ct state established,related accept
        iifname "lo" accept
    }
}
EOF

# Commands run in either namespace (ip netns exec execs them: a PID is theirs).
srv=(ip netns exec "$ns_srv")
cli=(ip netns exec "$ns_cli")

root="$tmp/root"
mkdir -p "$root/in" "$tmp/keys"
head -c $((3 * 1024 * 1024)) /dev/urandom >"$root/big"
echo "small" >"$root/small"
head -c $((1024 * 1024 + 7)) /dev/urandom >"$tmp/upload"
"$rcat" --genkey "$tmp/keys/alice.key" || fatal "rcat --genkey"
echo "alice $(cat "$tmp/keys/alice.key")" >"$tmp/keys/server.keys"
chmod 600 "$tmp/keys/server.keys"

# The firewall works: rcatd there cannot be reached the usual way.
start_server plain "${srv[@]}" "$rcatd" --listen "$srv_addr:0" --root "$root"
if run 2 "a bind through the firewall" "${cli[@]}" "$rcat" --timeout 2 "rcat://$srv_addr:$port/small"; then
    note "without --connect: refused by the firewall, as expected (exit 2)"
fi
stop_server plain

# rcatd announces itself every second to the client's listening port.
start_server reverse "${srv[@]}" "$rcatd" --listen "$srv_addr:0" --root "$root" --writable \
    --keys "$tmp/keys/server.keys" --connect "$cli_addr:$listen_port" --connect-interval 1
await_log "$tmp/reverse.log" "announcing to $cli_addr:$listen_port every 1 s" 10 ||
    fail "rcatd did not log its announcements"

if run 0 "fetch at level none through --listen" \
    "${cli[@]}" "$rcat" --listen "$listen_port" --timeout 10 -o "$tmp/got" "$srv_addr:big"; then
    same "$root/big" "$tmp/got" "fetch through --listen"
fi
if run 0 "store at level encrypt through --listen" \
    "${cli[@]}" "$rcat" --listen "$cli_addr:$listen_port" --timeout 10 --identity alice \
    --key-file "$tmp/keys/alice.key" --put "$tmp/upload" "$srv_addr:in/upload"; then
    same "$tmp/upload" "$root/in/upload" "store through --listen"
    grep -q " alice encrypt STORE in/upload " "$tmp/reverse.log" ||
        fail "the store was not logged as alice at level encrypt"
fi

# An announcement proves nothing: one from a host the operand does not name
# is passed over, and rcat gives up at --timeout.
if run 2 "--listen naming another host" \
    "${cli[@]}" "$rcat" -v --listen "$listen_port" --timeout 3 "$other_addr:small"; then
    said "--listen naming another host" "did not announce itself on $listen_port within 3 s"
    said "--listen naming another host" "passed over: not the server named"
fi
stop_server reverse

finish test_reverse
