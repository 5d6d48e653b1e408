/**
 * Regression (review finding): StandaloneNode moves a peer's endpoint ("roaming") on a handshake message that was
 * never authenticated: under load the rate limiter answers with a cookie reply before the
 * initiation is checked, and `handleDatagram` treats every non-Drop result as authenticated.
 * An off-path attacker who replays one captured initiation ~100 times redirects the peer's traffic.
 */
import assert from "node:assert/strict";
import { createNobleBackend } from "../../../src/crypto/mod.ts";
import { PeerAddrView } from "../../../src/p2p/peer_addr.ts";
import { CoreOut } from "../../../src/packet_core.ts";
import { SeededRng } from "../../../src/rng.ts";
import { parseStandaloneConfig } from "../../../src/standalone/config.ts";
import { StandaloneNode } from "../../../src/standalone/standalone_node.ts";
import { socketAddr } from "../../../src/wire/ip_addr.ts";

const backend = createNobleBackend();

function keypair(seed: number): { priv: string; pub: string } {
  const priv = new Uint8Array(32);
  new SeededRng(seed).fill(priv);
  return { priv: priv.toBase64(), pub: backend.x25519PublicKey(priv).toBase64() };
}

Deno.test("StandaloneNode does not roam to the source of an unauthenticated (replayed) initiation under load", () => {
  const A = keypair(1);
  const B = keypair(2);
  const addrA = PeerAddrView.fromSocketAddr(socketAddr("192.0.2.1", 51820));
  const addrB = PeerAddrView.fromSocketAddr(socketAddr("192.0.2.2", 51821));
  const attacker = PeerAddrView.fromSocketAddr(socketAddr("203.0.113.66", 4444));
  const wallClock = (t: number) => 1_700_000_000_000 + t;
  const now = 1_000;
  // A knows B's endpoint and initiates at start (PersistentKeepalive); B learns A's endpoint.
  const a = new StandaloneNode({
    config: parseStandaloneConfig(
      `[Interface]\nPrivateKey=${A.priv}\n[Peer]\nPublicKey=${B.pub}\nAllowedIPs=10.0.0.2/32\nPersistentKeepalive=25\n`,
    ),
    endpoints: [addrB.toSocketAddr()],
    backend,
    rng: new SeededRng(10),
    wallClock,
    now,
  });
  const b = new StandaloneNode({
    config: parseStandaloneConfig(
      `[Interface]\nPrivateKey=${B.priv}\n[Peer]\nPublicKey=${A.pub}\nAllowedIPs=10.0.0.1/32\n`,
    ),
    endpoints: [null],
    backend,
    rng: new SeededRng(11),
    wallClock,
    now,
  });
  const init = a.pollTransmit();
  assert.ok(init, "A sends an initiation at start");
  const captured = init.payload.slice();
  const out = new CoreOut();
  const deliver = (from: PeerAddrView) => {
    const buf = new Uint8Array(2048);
    buf.set(captured);
    return b.handleDatagram(buf, 0, captured.length, from, addrB, out, now);
  };
  deliver(addrA); // the genuine one
  assert.equal(b.peerStatus()[0]!.endpoint, "192.0.2.1:51820");
  while (b.pollTransmit()) { /* discard B's response */ }

  // The attacker replays the captured initiation until the handshake rate limit (100/s) is hit.
  for (let i = 0; i < 101; i++) deliver(attacker);

  assert.equal(
    b.peerStatus()[0]!.endpoint,
    "192.0.2.1:51820",
    "an unauthenticated replay must not move the peer's endpoint",
  );
});
