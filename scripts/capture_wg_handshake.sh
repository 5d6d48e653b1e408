#!/usr/bin/env bash
# Captures a real WireGuard handshake from wireguard-go for tests/fixtures/wireguard/.
#
#   fzwg-i (initiator)                          fzwg-r (responder)
#   wireguard-go fzwg0 10.214.0.1/24            our Tunnel (Deno, UDP 10.213.0.2:51820)
#   veth fzwg-vi 10.213.0.1/24  <---------->    veth fzwg-vr 10.213.0.2/24
#
# 1. Generates both static keys (wg genkey/pubkey) and a PSK (wg genpsk).
# 2. Starts wireguard-go in fzwg-i with the responder as peer (endpoint 10.213.0.2:51820, PSK).
# 3. Runs a Deno responder in fzwg-r built on src/wireguard (a fixed, documented Rng so the test can
#    replay it): it records wireguard-go's 148-byte initiation and the wall-clock time it arrived,
#    answers it, records wireguard-go's first data packet (the queued ICMP echo request) and answers
#    every echo request with an echo reply through the tunnel.
# 4. Pings 10.214.0.2 from fzwg-i: the ping succeeds only if wireguard-go accepted our response and
#    decrypted our data, i.e. both sides derived the same transport keys.
# 5. Writes tests/fixtures/wireguard/wireguard_go_handshake.json.
#
# Needs root, /dev/net/tun, wireguard-go, wg, ip. Namespaces are named fzwg-* and removed on exit.
# Usage: sudo scripts/capture_wg_handshake.sh [output.json]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
out="${1:-$repo/tests/fixtures/wireguard/wireguard_go_handshake.json}"
ns_i=fzwg-i
ns_r=fzwg-r
tmp="$(mktemp -d /tmp/fzwg.XXXXXX)"
wg_pid=""
resp_pid=""

cleanup() {
  set +e
  [ -n "$resp_pid" ] && kill "$resp_pid" 2>/dev/null && wait "$resp_pid" 2>/dev/null
  [ -n "$wg_pid" ] && kill "$wg_pid" 2>/dev/null && wait "$wg_pid" 2>/dev/null
  ip netns del "$ns_i" 2>/dev/null
  ip netns del "$ns_r" 2>/dev/null
  rm -f /var/run/wireguard/fzwg0.sock
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

for tool in wireguard-go wg ip; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install wireguard-go wireguard-tools iproute2)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (network namespaces, TUN)" >&2; exit 1; }

# Keys (private files).
umask 077
wg genkey >"$tmp/i.key"
wg pubkey <"$tmp/i.key" >"$tmp/i.pub"
wg genkey >"$tmp/r.key"
wg pubkey <"$tmp/r.key" >"$tmp/r.pub"
wg genpsk >"$tmp/psk"

# Topology.
ip netns add "$ns_i"
ip netns add "$ns_r"
ip link add fzwg-vi netns "$ns_i" type veth peer name fzwg-vr netns "$ns_r"
ip -n "$ns_i" addr add 10.213.0.1/24 dev fzwg-vi
ip -n "$ns_r" addr add 10.213.0.2/24 dev fzwg-vr
ip -n "$ns_i" link set lo up
ip -n "$ns_r" link set lo up
ip -n "$ns_i" link set fzwg-vi up
ip -n "$ns_r" link set fzwg-vr up

# Responder (our code) in fzwg-r.
cat >"$tmp/responder.ts" <<EOF
import dgram from "node:dgram";
import { writeFileSync } from "node:fs";
import { createNobleBackend } from "$repo/src/crypto/noble_backend.ts";
import { type SocketAddr, socketAddr } from "$repo/src/wire/ip_addr.ts";
import {
  anchoredWallClock, HandshakeRateLimiter, IndexAllocator, StaticIdentity, Tunnel, WgOut, WgResult,
} from "$repo/src/wireguard/mod.ts";
import { fixtureRng } from "$repo/tests/unit/wireguard/_fixture_rng.ts";

const b64 = (s: string) => Uint8Array.from(atob(s.trim()), (c) => c.charCodeAt(0));
const hex = (u: Uint8Array) => Array.from(u, (x) => x.toString(16).padStart(2, "0")).join("");
const [rKey, iPub, psk, outFile, readyFile] = Deno.args;
const backend = createNobleBackend();
const rng = fixtureRng();
const identity = new StaticIdentity(backend, b64(rKey!));
const t0 = performance.now();
const limiter = new HandshakeRateLimiter(backend, identity, rng, 0);
const tunnel = new Tunnel({
  backend, identity, peerStaticPublic: b64(iPub!), presharedKey: b64(psk!),
  index: new IndexAllocator(rng).next(), rateLimiter: limiter, rng,
  wallClock: anchoredWallClock(Date.now(), 0),
}, 0);
const rec: Record<string, unknown> = { data: [] as string[], replies: [] as string[] };
const out = new WgOut();
const dst = new Uint8Array(2048);
const sock = dgram.createSocket("udp4");
const save = () => writeFileSync(outFile!, JSON.stringify(rec));
sock.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
  const now = performance.now() - t0;
  const from: SocketAddr = socketAddr(rinfo.address, rinfo.port);
  const buf = new Uint8Array(2048);
  buf.set(msg, 16);
  if (msg[0] === 1 && rec.initiation === undefined) {
    rec.initiation = hex(msg);
    rec.receivedAtUnixMs = Date.now();
  }
  if (msg[0] === 4) (rec.data as string[]).push(hex(msg));
  const r = tunnel.decapsulate(buf, 16, msg.length, from, dst, 0, out, now);
  if (r === WgResult.WriteToNetwork) {
    const m = out.buf.slice(out.off, out.off + out.len);
    if (m[0] === 2 && rec.response === undefined) rec.response = hex(m);
    sock.send(m, rinfo.port, rinfo.address);
  } else if (r === WgResult.WriteToTunnel && out.buf[out.off + 9] === 1 && out.buf[out.off + 20] === 8) {
    // ICMP echo request -> echo reply through the tunnel.
    const p = out.buf.slice(out.off, out.off + out.len);
    const src = p.slice(12, 16);
    p.copyWithin(12, 16, 20);
    p.set(src, 16);
    p[20] = 0;
    fixChecksum(p, 10, 0, 20);
    fixChecksum(p, 22, 20, p.length);
    const tx = new Uint8Array(2048);
    tx.set(p, 32);
    if (tunnel.encapsulate(tx, 32, p.length, out, now) === WgResult.WriteToNetwork) {
      const m = out.buf.slice(out.off, out.off + out.len);
      (rec.replies as string[]).push(hex(m));
      sock.send(m, rinfo.port, rinfo.address);
    }
  } else if (r === WgResult.Drop) {
    console.error("drop", out.dropReason);
  }
  save();
});
function fixChecksum(p: Uint8Array, at: number, from: number, to: number) {
  p[at] = 0; p[at + 1] = 0;
  let sum = 0;
  for (let i = from; i < to; i += 2) sum += (p[i]! << 8) | (i + 1 < to ? p[i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  p[at] = c >> 8; p[at + 1] = c & 0xff;
}
sock.bind(51820, "10.213.0.2", () => writeFileSync(readyFile!, "ready"));
EOF

ip netns exec "$ns_r" "$here/deno" run --quiet --allow-all --config "$repo/deno.json" "$tmp/responder.ts" \
  "$(cat "$tmp/r.key")" "$(cat "$tmp/i.pub")" "$(cat "$tmp/psk")" "$tmp/responder.json" "$tmp/ready" &
resp_pid=$!
for _ in $(seq 1 100); do [ -f "$tmp/ready" ] && break; sleep 0.1; done
[ -f "$tmp/ready" ] || { echo "responder did not start" >&2; exit 1; }

# Initiator: wireguard-go in fzwg-i.
ip netns exec "$ns_i" env WG_PROCESS_FOREGROUND=1 wireguard-go fzwg0 >"$tmp/wg.log" 2>&1 &
wg_pid=$!
for _ in $(seq 1 50); do ip -n "$ns_i" link show fzwg0 >/dev/null 2>&1 && break; sleep 0.1; done
ip netns exec "$ns_i" wg set fzwg0 private-key "$tmp/i.key" \
  peer "$(cat "$tmp/r.pub")" preshared-key "$tmp/psk" endpoint 10.213.0.2:51820 allowed-ips 10.214.0.2/32
ip -n "$ns_i" addr add 10.214.0.1/24 dev fzwg0
ip -n "$ns_i" link set fzwg0 up

ping_ok=false
if ip netns exec "$ns_i" ping -c 3 -i 0.3 -W 3 10.214.0.2 >"$tmp/ping.log" 2>&1; then ping_ok=true; fi
cat "$tmp/ping.log" >&2
kill "$resp_pid" 2>/dev/null || true
wait "$resp_pid" 2>/dev/null || true
resp_pid=""
[ -f "$tmp/responder.json" ] || { echo "responder wrote no record" >&2; exit 1; }

mkdir -p "$(dirname "$out")"
python3 - "$tmp" "$out" "$ping_ok" "$(wireguard-go --version | head -1)" <<'PY'
import base64, json, sys
tmp, out, ping_ok, version = sys.argv[1:5]
rd = lambda n: open(f"{tmp}/{n}").read().strip()
hx = lambda b: base64.b64decode(b).hex()
rec = json.load(open(f"{tmp}/responder.json"))
fixture = {
    "description": "A real WireGuard handshake: wireguard-go initiates (PSK), fz-gateway's Tunnel responds "
                   "(Rng = tests/unit/wireguard/_fixture_rng.ts). Captured by scripts/capture_wg_handshake.sh.",
    "wireguardGo": version,
    "initiatorPrivateKey": hx(rd("i.key")),
    "initiatorPublicKey": hx(rd("i.pub")),
    "responderPrivateKey": hx(rd("r.key")),
    "responderPublicKey": hx(rd("r.pub")),
    "presharedKey": hx(rd("psk")),
    "initiatorSource": "10.213.0.1",
    "capturedAtUnixMs": rec.get("receivedAtUnixMs"),
    "initiation": rec.get("initiation"),
    "response": rec.get("response"),
    "initiatorData": rec.get("data", []),
    "responderData": rec.get("replies", []),
    "pingThroughTunnel": ping_ok == "true",
}
if not fixture["initiation"] or len(fixture["initiation"]) != 296:
    sys.exit("no 148-byte initiation captured")
json.dump(fixture, open(out, "w"), indent=2)
open(out, "a").write("\n")
print(f"wrote {out} (ping through tunnel: {ping_ok})")
PY
