#!/usr/bin/env bash
# GC trace of the data path: two fz-gateway standalone peers in network namespaces, iperf3 one TCP
# stream each way through the tunnel, V8's --trace-gc on. Prints the packet worker's scavenges per
# million packets in the steady state (the hot path is meant to allocate nothing per packet).
# Root only. Usage: sudo [FZ_GC_EXTRA=--no-offload] scripts/gc_trace.sh [SECONDS_PER_DIRECTION]
# (FZ_GC_EXTRA: extra options for both peers, e.g. --no-offload to leave TUN offloads out)
set -euo pipefail
secs=${1:-8}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deno="$here/scripts/deno"
tmp=$(mktemp -d /tmp/fz_gc_trace.XXXX)
a=fzgca$$; b=fzgcb$$
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  ip netns del "$a" 2>/dev/null || true
  ip netns del "$b" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] || { echo "gc_trace.sh: needs root (network namespaces, TUN)" >&2; exit 1; }
command -v iperf3 >/dev/null || { echo "gc_trace.sh: needs iperf3" >&2; exit 1; }

for n in a b; do wg genkey >"$tmp/$n.key" 2>/dev/null; done
pub() { "$deno" eval "import { x25519 } from '@noble/curves/ed25519.js'; console.log(x25519.getPublicKey(Uint8Array.fromBase64(Deno.args[0])).toBase64())" "$(cat "$1")"; }
cat >"$tmp/a.conf" <<CONF
[Interface]
PrivateKey = $(cat "$tmp/a.key")
ListenPort = 51820
Address = 10.77.0.1/24
[Peer]
PublicKey = $(pub "$tmp/b.key")
AllowedIPs = 10.77.0.2/32
Endpoint = 192.0.2.2:51820
CONF
cat >"$tmp/b.conf" <<CONF
[Interface]
PrivateKey = $(cat "$tmp/b.key")
ListenPort = 51820
Address = 10.77.0.2/24
[Peer]
PublicKey = $(pub "$tmp/a.key")
AllowedIPs = 10.77.0.1/32
CONF
ip netns add "$a"; ip netns add "$b"
ip link add "${a}v" type veth peer name "${b}v"
ip link set "${a}v" netns "$a"; ip link set "${b}v" netns "$b"
ip -n "$a" addr add 192.0.2.1/24 dev "${a}v"; ip -n "$b" addr add 192.0.2.2/24 dev "${b}v"
for n in "$a" "$b"; do ip -n "$n" link set lo up; done
ip -n "$a" link set "${a}v" up; ip -n "$b" link set "${b}v" up

cd "$here"
ip netns exec "$a" "$deno" run --v8-flags=--trace-gc,--max-inlined-bytecode-size-cumulative=20000 -A main.ts standalone ${FZ_GC_EXTRA:-} -c "$tmp/a.conf" \
  --health-check-addr 127.0.0.1:9911 >"$tmp/a.log" 2>&1 &
pids+=($!)
ip netns exec "$b" "$deno" run --v8-flags=--trace-gc,--max-inlined-bytecode-size-cumulative=20000 -A main.ts standalone ${FZ_GC_EXTRA:-} -c "$tmp/b.conf" \
  --health-check-addr 127.0.0.1:9911 >"$tmp/b.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do ip netns exec "$a" ping -c1 -W1 10.77.0.2 >/dev/null 2>&1 && break; sleep 0.2; done
metric() { ip netns exec "$1" "$deno" eval "const m = await (await fetch('http://127.0.0.1:9911/metrics')).json(); console.log((m.loop?.UdpRxPackets ?? 0) + (m.loop?.TunRxPackets ?? 0))"; }
scavenges() { grep -c "Scavenge" "$1" || true; }
sleep 2 # warm-up done: count from here
a0=$(scavenges "$tmp/a.log"); b0=$(scavenges "$tmp/b.log"); pa0=$(metric "$a"); pb0=$(metric "$b")
ip netns exec "$b" iperf3 -s -D -1 -B 10.77.0.2 >/dev/null; sleep 0.3
ip netns exec "$a" iperf3 -c 10.77.0.2 -t "$secs" | grep receiver
ip netns exec "$b" iperf3 -s -D -1 -B 10.77.0.2 >/dev/null; sleep 0.3
ip netns exec "$a" iperf3 -R -c 10.77.0.2 -t "$secs" | grep receiver
sleep 1.2 # the stats are posted once a second
a1=$(scavenges "$tmp/a.log"); b1=$(scavenges "$tmp/b.log"); pa1=$(metric "$a"); pb1=$(metric "$b")
# Both isolates (main thread and worker) print Scavenge lines; all of them count against the data path.
for side in a b; do
  if [ $side = a ]; then s=$((a1 - a0)); p=$((pa1 - pa0)); else s=$((b1 - b0)); p=$((pb1 - pb0)); fi
  awk -v s="$s" -v p="$p" -v side="$side" 'BEGIN { printf "peer %s: %d packets, %d scavenges, %.1f scavenges per million packets\n", side, p, s, (p > 0 ? s * 1e6 / p : 0) }'
done
