#!/usr/bin/env bash
# Real network faults between an SSE server and ssekit clients: two network
# namespaces joined by a veth pair, the server (examples/soak.rs --serve) in
# one, the checking client (--client) in the other, and a schedule of faults
# while events flow:
#
#   20 s  clean
#   20 s  200 ms +- 50 ms latency (netem, both directions)
#   20 s  5 % packet loss (netem, or nftables' random numgen without it)
#   20 s  reordering (25 % of packets sent at once, the rest 10 ms late)
#   10 s  the link down, then up again
#    3 s  the server process killed (SIGKILL), then restarted
#   the rest: clean, to show every stream recovered
#
# The client asserts, per stream: every event exactly once and in order
# (ids), no error reaching the caller (every fault here is transient), and
# events flowing again at the end (reconnection within the policy's bounds:
# 5 s idle and response timeouts, backoff capped at 30 s). Exits 0 on PASS,
# 1 on FAIL, and 0 with a SKIP message where the machine forbids network
# namespaces (not root, no iproute2). A kernel without sch_netem (such as
# the CI machines' VM kernel) cannot delay or reorder packets: those two
# phases are then skipped, saying so, and loss comes from nftables.
#
# The addresses are in 127.0.0.0/8 (route_localnet on), so no traffic can
# leave the machine. Whole run: about 150 s. Usage:
#   scripts/netfault.sh [path/to/soak-binary]
set -euo pipefail

BIN="${1:-target/release/examples/soak}"
SRV=ssekit-nf-srv
CLI=ssekit-nf-cli
SRV_IP=127.77.0.1
CLI_IP=127.77.0.2
PORT=8811
STREAMS="${NETFAULT_STREAMS:-20}"
RUN_SECONDS=150

skip() { echo "netfault: SKIP: $*"; exit 0; }

[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
command -v ip >/dev/null && command -v tc >/dev/null || skip "iproute2 (ip, tc) is not installed"
[ -x "$BIN" ] || { echo "netfault: $BIN not found (cargo build --release --example soak)"; exit 1; }

cleanup() {
  [ -n "${SERVER_PID:-}" ] && kill -9 "$SERVER_PID" 2>/dev/null || true
  [ -n "${CLIENT_PID:-}" ] && kill -9 "$CLIENT_PID" 2>/dev/null || true
  ip netns del "$SRV" 2>/dev/null || true
  ip netns del "$CLI" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

ip netns add "$SRV" 2>/dev/null || skip "ip netns add is not permitted here"
ip netns add "$CLI"
ip link add nf-srv type veth peer name nf-cli || skip "veth pairs are not permitted here"
ip link set nf-srv netns "$SRV"
ip link set nf-cli netns "$CLI"
for ns_dev in "$SRV nf-srv $SRV_IP" "$CLI nf-cli $CLI_IP"; do
  set -- $ns_dev
  ip netns exec "$1" ip link set lo up
  ip netns exec "$1" sysctl -qw net.ipv4.conf.all.route_localnet=1
  ip netns exec "$1" sysctl -qw "net.ipv4.conf.$2.route_localnet=1"
  ip netns exec "$1" ip addr add "$3/24" dev "$2"
  ip netns exec "$1" ip link set "$2" up
done

start_server() {
  ip netns exec "$SRV" "$BIN" --serve "$SRV_IP:$PORT" >/dev/null &
  SERVER_PID=$!
}
netem() { # netem ARGS...: the same qdisc on both ends
  ip netns exec "$SRV" tc qdisc replace dev nf-srv root netem "$@"
  ip netns exec "$CLI" tc qdisc replace dev nf-cli root netem "$@"
}
nft_loss() { # nft_loss PERCENT: drop that share of packets leaving either end
  for ns in "$SRV" "$CLI"; do
    ip netns exec "$ns" nft add table inet netfault
    ip netns exec "$ns" nft add chain inet netfault out '{ type filter hook output priority 0; }'
    ip netns exec "$ns" nft add rule inet netfault out numgen random mod 100 '<' "$1" drop
  done
}
clean() {
  for ns_dev in "$SRV nf-srv" "$CLI nf-cli"; do
    set -- $ns_dev
    ip netns exec "$1" tc qdisc del dev "$2" root 2>/dev/null || true
    ip netns exec "$1" nft delete table inet netfault 2>/dev/null || true
  done
}
HAVE_NETEM=yes
ip netns exec "$SRV" tc qdisc replace dev nf-srv root netem delay 1ms 2>/dev/null || HAVE_NETEM=no
clean
HAVE_NFT=yes
command -v nft >/dev/null || HAVE_NFT=no
say() { echo "netfault: t=$(( $(date +%s) - T0 ))s $*"; }

start_server
sleep 0.5
T0=$(date +%s)
ip netns exec "$CLI" "$BIN" --client "http://$SRV_IP:$PORT" --streams "$STREAMS" \
  --seconds "$RUN_SECONDS" --idle 5 2>/tmp/netfault-client.log &
CLIENT_PID=$!

sleep 20
if [ "$HAVE_NETEM" = yes ]; then
  say "latency 200 ms +- 50 ms"; netem delay 200ms 50ms
else
  say "SKIP latency: this kernel has no netem qdisc (sch_netem)"
fi
sleep 20; clean
if [ "$HAVE_NETEM" = yes ]; then
  say "5 % packet loss (netem)"; netem loss 5%
elif [ "$HAVE_NFT" = yes ]; then
  say "5 % packet loss (nftables)"; nft_loss 5
else
  say "SKIP packet loss: neither netem nor nft"
fi
sleep 20; clean
if [ "$HAVE_NETEM" = yes ]; then
  say "reordering"; netem delay 10ms reorder 25% 50%
else
  say "SKIP reordering: this kernel has no netem qdisc (sch_netem)"
fi
sleep 20; clean; say "link down"; ip netns exec "$SRV" ip link set nf-srv down
sleep 10; say "link up"; ip netns exec "$SRV" ip link set nf-srv up
sleep 5; say "server killed"; kill -9 "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
sleep 3; say "server restarted"; start_server

set +e
wait "$CLIENT_PID"
status=$?
set -e
CLIENT_PID=
say "client exited with $status; $(grep -c reconnecting /tmp/netfault-client.log || true) reconnections logged in /tmp/netfault-client.log"
exit "$status"
