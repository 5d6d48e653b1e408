import assert from "node:assert/strict";
import { createNobleBackend } from "../../../src/crypto/mod.ts";
import { configureLogging, Level, type LogRecord } from "../../../src/log.ts";
import { CoreOut, CoreResult, DropLayer } from "../../../src/packet_core.ts";
import { SeededRng } from "../../../src/rng.ts";
import { parseStandaloneConfig } from "../../../src/standalone/config.ts";
import { StandaloneDrop, StandaloneNode } from "../../../src/standalone/standalone_node.ts";
import { socketAddr } from "../../../src/wire/ip_addr.ts";
import { PeerAddrView } from "../../../src/p2p/peer_addr.ts";
import { buildUdpPacket } from "../../../src/wire/udp.ts";

const backend = createNobleBackend();
const HEAD = 20;

function keypair(seed: number): { priv: string; pub: string } {
  const priv = new Uint8Array(32);
  new SeededRng(seed).fill(priv);
  return { priv: priv.toBase64(), pub: backend.x25519PublicKey(priv).toBase64() };
}

const A = keypair(1);
const B = keypair(2);
const ADDR_A = PeerAddrView.fromSocketAddr(socketAddr("192.0.2.1", 51820));
const ADDR_B = PeerAddrView.fromSocketAddr(socketAddr("192.0.2.2", 51821));

function makePair(now: number, opts: { endpointOnA?: boolean; keepalive?: number } = {}) {
  const cfgA = parseStandaloneConfig(
    `[Interface]\nPrivateKey=${A.priv}\nAddress=10.0.0.1/24\n[Peer]\nPublicKey=${B.pub}\nAllowedIPs=10.0.0.2/32, 198.51.100.0/24\n` +
      (opts.keepalive ? `PersistentKeepalive=${opts.keepalive}\n` : ""),
  );
  const cfgB = parseStandaloneConfig(
    `[Interface]\nPrivateKey=${B.priv}\nAddress=10.0.0.2/24\n[Peer]\nPublicKey=${A.pub}\nAllowedIPs=10.0.0.1/32\n`,
  );
  const wallClock = (t: number) => 1_700_000_000_000 + t;
  const a = new StandaloneNode({
    config: cfgA,
    endpoints: [opts.endpointOnA === false ? null : ADDR_B.toSocketAddr()],
    backend,
    rng: new SeededRng(10),
    wallClock,
    now,
  });
  const b = new StandaloneNode({
    config: cfgB,
    endpoints: [null],
    backend,
    rng: new SeededRng(11),
    wallClock,
    now,
  });
  return { a, b };
}

function ipPacket(src: string, dst: string, payload: string): { buf: Uint8Array; len: number } {
  const buf = new Uint8Array(2048);
  const s = new Uint8Array(src.split(".").map(Number));
  const d = new Uint8Array(dst.split(".").map(Number));
  const len = buildUdpPacket(buf, HEAD, s, d, 1000, 2000, new TextEncoder().encode(payload));
  return { buf, len };
}

/** Delivers every queued control transmit of `from` to `to`, returning what reached TUN. */
function pump(
  from: StandaloneNode,
  fromAddr: PeerAddrView,
  to: StandaloneNode,
  toAddr: PeerAddrView,
  now: number,
): string[] {
  const delivered: string[] = [];
  const out = new CoreOut();
  for (let t = from.pollTransmit(); t; t = from.pollTransmit()) {
    const buf = new Uint8Array(2048);
    buf.set(t.payload);
    if (to.handleDatagram(buf, 0, t.payload.length, fromAddr, toAddr, out, now) === CoreResult.ToTun) {
      delivered.push(new TextDecoder().decode(out.buf.subarray(out.off + 28, out.off + out.len)));
    }
  }
  return delivered;
}

Deno.test("StandaloneNode: a TUN packet triggers a handshake, then data flows both ways", () => {
  let now = 1000;
  const { a, b } = makePair(now);
  const out = new CoreOut();
  const p = ipPacket("10.0.0.1", "10.0.0.2", "hello");
  assert.equal(a.handleTunPacket(p.buf, HEAD, p.len, out, now), CoreResult.Done); // queued + initiation
  assert.deepEqual(pump(a, ADDR_A, b, ADDR_B, now), []); // B answers the initiation
  now += 5;
  assert.deepEqual(pump(b, ADDR_B, a, ADDR_A, now), []); // A gets the response, flushes the queue
  assert.deepEqual(pump(a, ADDR_A, b, ADDR_B, now), ["hello"]);

  // B learned A's endpoint from the handshake and can answer on the data path.
  const reply = ipPacket("10.0.0.2", "10.0.0.1", "world");
  assert.equal(b.handleTunPacket(reply.buf, HEAD, reply.len, out, now), CoreResult.ToNetwork);
  assert.ok(out.dst!.equals(ADDR_A));
  const wire = out.buf.slice(out.off, out.off + out.len);
  const rx = new Uint8Array(2048);
  rx.set(wire);
  assert.equal(a.handleDatagram(rx, 0, wire.length, ADDR_B, ADDR_A, out, now), CoreResult.ToTun);
  assert.equal(new TextDecoder().decode(out.buf.subarray(out.off + 28, out.off + out.len)), "world");
});

Deno.test("StandaloneNode routes by longest prefix and drops what no peer covers", () => {
  const now = 0;
  const { a } = makePair(now);
  const out = new CoreOut();
  const p = ipPacket("10.0.0.1", "203.0.113.9", "x");
  assert.equal(a.handleTunPacket(p.buf, HEAD, p.len, out, now), CoreResult.Drop);
  assert.equal(out.dropLayer, DropLayer.Core);
  assert.equal(out.dropReason, StandaloneDrop.NoRoute);
  const q = ipPacket("10.0.0.1", "198.51.100.77", "y");
  assert.equal(a.handleTunPacket(q.buf, HEAD, q.len, out, now), CoreResult.Done); // routed, handshake starts
});

Deno.test("StandaloneNode drops a decrypted packet whose source is outside the peer's AllowedIPs", () => {
  let now = 0;
  const { a, b } = makePair(now);
  const out = new CoreOut();
  const p = ipPacket("10.0.0.1", "10.0.0.2", "first");
  a.handleTunPacket(p.buf, HEAD, p.len, out, now);
  pump(a, ADDR_A, b, ADDR_B, now);
  now += 1;
  pump(b, ADDR_B, a, ADDR_A, now);
  pump(a, ADDR_A, b, ADDR_B, now);
  // B's peer (A) may only send from 10.0.0.1: a spoofed source is dropped after decryption.
  const spoof = ipPacket("10.9.9.9", "10.0.0.2", "spoof");
  assert.equal(a.handleTunPacket(spoof.buf, HEAD, spoof.len, out, now), CoreResult.ToNetwork);
  const rx = out.buf.slice(out.off, out.off + out.len + 64);
  assert.equal(b.handleDatagram(rx, 0, out.len, ADDR_A, ADDR_B, out, now), CoreResult.Drop);
  assert.equal(out.dropReason, StandaloneDrop.SourceNotAllowed);
});

Deno.test("StandaloneNode without an endpoint waits for the peer to call", () => {
  const { a } = makePair(0, { endpointOnA: false });
  const out = new CoreOut();
  const p = ipPacket("10.0.0.1", "10.0.0.2", "x");
  assert.equal(a.handleTunPacket(p.buf, HEAD, p.len, out, 0), CoreResult.Drop);
  assert.equal(out.dropReason, StandaloneDrop.NoEndpoint);
});

Deno.test("StandaloneNode with PersistentKeepalive initiates at start, retries, then keeps the path warm", () => {
  let now = 0;
  const { a, b } = makePair(now, { keepalive: 25 });
  const first = a.pollTransmit();
  assert.equal(first?.payload[0], 1, "an initiation is sent at start");
  // Unanswered: retried every REKEY_TIMEOUT (5 s + jitter), still trying after 30 s (standard 90 s limit).
  let retries = 0;
  for (; now <= 30_000; now += 100) {
    if (a.pollTimeout() <= now) a.handleTimeout(now);
    for (let t = a.pollTransmit(); t; t = a.pollTransmit()) if (t.payload[0] === 1) retries++;
  }
  assert.ok(retries >= 4 && retries <= 6, `retries: ${retries}`);
  // Answered: once established and idle, a keepalive goes out about every 25 s.
  const out = new CoreOut();
  let keepalives = 0;
  let established = -1;
  for (const end = now + 60_000; now <= end; now += 100) {
    if (a.pollTimeout() <= now) a.handleTimeout(now);
    if (b.pollTimeout() <= now) b.handleTimeout(now);
    for (let t = a.pollTransmit(); t; t = a.pollTransmit()) {
      if (t.payload[0] === 4 && t.payload.length === 32 && established >= 0 && now > established + 1000) {
        keepalives++;
      }
      const rx = new Uint8Array(2048);
      rx.set(t.payload);
      b.handleDatagram(rx, 0, t.payload.length, ADDR_A, ADDR_B, out, now);
    }
    for (let t = b.pollTransmit(); t; t = b.pollTransmit()) {
      const rx = new Uint8Array(2048);
      rx.set(t.payload);
      a.handleDatagram(rx, 0, t.payload.length, ADDR_B, ADDR_A, out, now);
      if (established < 0 && t.payload[0] === 2) established = now;
    }
  }
  assert.ok(established >= 0, "the handshake completes on a retry");
  assert.equal(keepalives, 2, "one per 25 s of silence (the confirming keepalive not counted)");
});

Deno.test("StandaloneNode warns (rate-limited) when a peer's handshake fails authentication", () => {
  const records: LogRecord[] = [];
  configureLogging({ sink: (r) => records.push(r), filter: () => Level.Warn });
  try {
    const cfgA = parseStandaloneConfig(
      `[Interface]\nPrivateKey=${A.priv}\n[Peer]\nPublicKey=${B.pub}\nPresharedKey=${
        "A".repeat(43)
      }=\nAllowedIPs=10.0.0.2/32\n`,
    );
    const cfgB = parseStandaloneConfig(
      `[Interface]\nPrivateKey=${B.priv}\n[Peer]\nPublicKey=${A.pub}\nPresharedKey=${
        "B".repeat(43)
      }=\nAllowedIPs=10.0.0.1/32\n`,
    );
    const wallClock = (t: number) => 1_700_000_000_000 + t;
    const a = new StandaloneNode({
      config: cfgA,
      endpoints: [ADDR_B.toSocketAddr()],
      backend,
      rng: new SeededRng(3),
      wallClock,
      now: 0,
    });
    const b = new StandaloneNode({
      config: cfgB,
      endpoints: [null],
      backend,
      rng: new SeededRng(4),
      wallClock,
      now: 0,
    });
    const out = new CoreOut();
    for (let i = 0; i < 3; i++) {
      const now = i * 1000;
      const p = ipPacket("10.0.0.1", "10.0.0.2", "x");
      a.handleTunPacket(p.buf, HEAD, p.len, out, now);
      a.handleTimeout(now + 6000);
      pump(a, ADDR_A, b, ADDR_B, now);
      pump(b, ADDR_B, a, ADDR_A, now);
    }
    const warnings = records.filter((r) => r.message.startsWith("Handshake from peer failed authentication"));
    assert.equal(warnings.length, 1, "logged once per 10 s");
    assert.equal(a.peerStatus()[0]!.hasSession, false);
  } finally {
    configureLogging({ sink: () => {}, filter: () => Level.Info });
  }
});

Deno.test("StandaloneNode gives a network listed by two peers to the last one (as wg does)", () => {
  const C = keypair(3);
  const cfg = parseStandaloneConfig(
    `[Interface]\nPrivateKey=${A.priv}\n[Peer]\nPublicKey=${B.pub}\nAllowedIPs=10.5.0.0/16\nEndpoint=192.0.2.2:1\n` +
      `[Peer]\nPublicKey=${C.pub}\nAllowedIPs=10.5.0.0/16\nEndpoint=192.0.2.3:1\n`,
  );
  const node = new StandaloneNode({
    config: cfg,
    endpoints: [socketAddr("192.0.2.2", 1), socketAddr("192.0.2.3", 1)],
    backend,
    rng: new SeededRng(5),
    wallClock: (t) => t,
    now: 0,
  });
  const out = new CoreOut();
  const p = ipPacket("10.0.0.1", "10.5.1.1", "x");
  node.handleTunPacket(p.buf, HEAD, p.len, out, 0); // no session yet: an initiation goes to the owner
  const t = node.pollTransmit();
  assert.equal(t?.dst.toString(), "192.0.2.3:1");
});
