import assert from "node:assert/strict";
import {
  WG_HANDSHAKE_INIT_LEN,
  WG_HANDSHAKE_RESPONSE_LEN,
  WG_TYPE_DATA,
  WG_TYPE_HANDSHAKE_INIT,
  WG_TYPE_HANDSHAKE_RESPONSE,
} from "../../../src/wire/wireguard.ts";
import {
  connectionIndexOf,
  DropReason,
  dropReasonName,
  Handshake,
  N_SESSIONS,
  parseHandshakeAnon,
  SessionIndex,
  StaticIdentity,
  WgResult,
} from "../../../src/wireguard/mod.ts";
import {
  ADDR_B,
  deliver,
  handshake,
  HEADROOM,
  ipv4Packet,
  makePair,
  makePeer,
  noble,
  open,
  type Pair,
  seal,
  SLOT_LEN,
  take,
  testKey,
  WALL_CLOCK_AT_ZERO_MS,
} from "./_pair.ts";
import { SeededRng } from "../../../src/rng.ts";

Deno.test("Tunnel completes a handshake and carries data both ways", () => {
  exchangeBothWays(makePair());
});

Deno.test("Tunnel completes a handshake with a preshared key", () => {
  exchangeBothWays(makePair({ psk: testKey(99) }));
});

Deno.test("Tunnel.decapsulate() rejects a handshake response made with a different preshared key", () => {
  const { a, b } = makePair({ psk: testKey(99), pskB: testKey(98) });
  assert.equal(a.tunnel.initiateHandshake(a.out, 0), WgResult.WriteToNetwork);
  const init = take(a.out);
  // The PSK only enters at the response, so B still answers ...
  assert.equal(deliver(b, init, 0), WgResult.WriteToNetwork);
  const resp = take(b.out);
  // ... but A cannot authenticate the response.
  assert.equal(deliver(a, resp, 0, ADDR_B), WgResult.Drop);
  assert.equal(a.out.dropReason, DropReason.DecryptFailed);
  assert.equal(a.tunnel.hasSession(0), false);
});

Deno.test("Tunnel.decapsulate() rejects a PSK-less peer when a PSK is configured", () => {
  const { a, b } = makePair({ psk: null, pskB: testKey(7) });
  assert.equal(a.tunnel.initiateHandshake(a.out, 0), WgResult.WriteToNetwork);
  assert.equal(deliver(b, take(a.out), 0), WgResult.WriteToNetwork);
  assert.equal(deliver(a, take(b.out), 0, ADDR_B), WgResult.Drop);
  assert.equal(a.out.dropReason, DropReason.DecryptFailed);
});

Deno.test("Tunnel messages have the WireGuard sizes, types and index layout", () => {
  const pair = makePair();
  const { init, resp, confirm } = handshake(pair, 0);
  assert.equal(init.length, WG_HANDSHAKE_INIT_LEN);
  assert.equal(init[0], WG_TYPE_HANDSHAKE_INIT);
  assert.equal(resp.length, WG_HANDSHAKE_RESPONSE_LEN);
  assert.equal(resp[0], WG_TYPE_HANDSHAKE_RESPONSE);
  assert.equal(confirm.length, 32);
  assert.equal(confirm[0], WG_TYPE_DATA);
  const view = new DataView(resp.buffer);
  const respSender = view.getUint32(4, true);
  const respReceiver = view.getUint32(8, true);
  const initSender = new DataView(init.buffer).getUint32(4, true);
  assert.equal(respReceiver, initSender);
  assert.equal(connectionIndexOf(initSender), pair.a.tunnel.index);
  assert.equal(connectionIndexOf(respSender), pair.b.tunnel.index);
  // The confirmation is addressed to B's session index.
  assert.equal(new DataView(confirm.buffer).getUint32(4, true), respSender);
});

Deno.test("Tunnel.encapsulate() pads to 16 bytes and writes the message at off - 16", () => {
  const pair = makePair();
  handshake(pair, 0);
  for (const n of [20, 21, 35, 36, 1280]) {
    const msg = seal(pair.a, ipv4Packet(n), 1);
    assert.equal(msg.length, 16 + Math.ceil(n / 16) * 16 + 16, `size for ${n}`);
    const got = open(pair.b, msg, 1);
    assert.deepEqual(got, ipv4Packet(n));
  }
});

Deno.test("Tunnel.decapsulate() rejects a replayed data packet", () => {
  const pair = makePair();
  handshake(pair, 0);
  const msg = seal(pair.a, ipv4Packet(60), 1);
  open(pair.b, msg, 1);
  assert.equal(deliver(pair.b, msg, 2), WgResult.Drop);
  assert.equal(pair.b.out.dropReason, DropReason.Replayed);
  assert.equal(dropReasonName(pair.b.out.dropReason), "Replayed");
});

Deno.test("Tunnel.decapsulate() rejects truncated and unknown messages", () => {
  const pair = makePair();
  const { init } = handshake(pair, 0);
  const msg = seal(pair.a, ipv4Packet(60), 1);
  const cases: [Uint8Array, DropReason][] = [
    [msg.subarray(0, 31), DropReason.Truncated],
    [init.subarray(0, 147), DropReason.Truncated],
    [new Uint8Array([1, 0, 0]), DropReason.Truncated],
    [Uint8Array.of(5, 0, 0, 0, ...new Uint8Array(60)), DropReason.UnknownType],
    [Uint8Array.of(4, 1, 0, 0, ...new Uint8Array(60)), DropReason.UnknownType],
  ];
  for (const [bytes, reason] of cases) {
    assert.equal(deliver(pair.b, bytes, 1), WgResult.Drop);
    assert.equal(dropReasonName(pair.b.out.dropReason), dropReasonName(reason));
  }
});

Deno.test("Tunnel.decapsulate() rejects tampered data and handshake messages", () => {
  const pair = makePair();
  handshake(pair, 0);
  const msg = seal(pair.a, ipv4Packet(60), 1);
  const flipped = msg.slice();
  flipped[40]! ^= 1;
  assert.equal(deliver(pair.b, flipped, 1), WgResult.Drop);
  assert.equal(pair.b.out.dropReason, DropReason.DecryptFailed);
  // The genuine packet still goes through afterwards (a forgery does not burn the counter).
  open(pair.b, msg, 1);

  // A tampered initiation fails MAC1 before any expensive work.
  assert.equal(pair.a.tunnel.initiateHandshake(pair.a.out, 2), WgResult.WriteToNetwork);
  const init = take(pair.a.out);
  init[50]! ^= 0x80;
  assert.equal(deliver(pair.b, init, 2), WgResult.Drop);
  assert.equal(pair.b.out.dropReason, DropReason.BadMac1);
});

Deno.test("Tunnel.decapsulate() rejects an initiation from the wrong static key", () => {
  const pair = makePair();
  // C knows B's public key, but B expects A.
  const c = new StaticIdentity(noble, testKey(555));
  const cToB = makePeer({ identity: c, peerPublic: pair.b.identity.publicKey, rngSeed: 77 });
  assert.equal(cToB.tunnel.initiateHandshake(cToB.out, 0), WgResult.WriteToNetwork);
  const init = take(cToB.out);
  assert.equal(deliver(pair.b, init, 0), WgResult.Drop);
  assert.equal(pair.b.out.dropReason, DropReason.WrongKey);
  // Anonymous parsing tells who it was, without any tunnel state.
  const anon = parseHandshakeAnon(noble, pair.b.identity, init, 0, init.length);
  assert.notEqual(typeof anon, "number");
  if (typeof anon !== "number") assert.deepEqual(anon.peerStaticPublic, c.publicKey);
});

Deno.test("Tunnel.decapsulate() rejects a replayed initiation (TAI64N)", () => {
  const pair = makePair();
  const { init } = handshake(pair, 0);
  assert.equal(deliver(pair.b, init, 10), WgResult.Drop);
  assert.equal(pair.b.out.dropReason, DropReason.StaleTimestamp);
});

Deno.test("Tunnel.decapsulate() routes data only for its own connection index", () => {
  const pair = makePair();
  handshake(pair, 0);
  const msg = seal(pair.a, ipv4Packet(60), 1);
  const other = msg.slice();
  const view = new DataView(other.buffer);
  view.setUint32(4, (view.getUint32(4, true) ^ 0x100) >>> 0, true);
  assert.equal(deliver(pair.b, other, 1), WgResult.Drop);
  assert.equal(pair.b.out.dropReason, DropReason.InvalidReceiverIndex);
  view.setUint32(4, (view.getUint32(4, true) ^ 0x100 ^ 0x1) >>> 0, true);
  assert.equal(deliver(pair.b, other, 1), WgResult.Drop);
  assert.equal(pair.b.out.dropReason, DropReason.NoSession);
});

Deno.test("Tunnel.decapsulate() rejects a decrypted payload that is not an IP packet", () => {
  const pair = makePair();
  handshake(pair, 0);
  const junk = new Uint8Array(40).fill(0x11); // version nibble 1
  assert.equal(deliver(pair.b, seal(pair.a, junk, 1), 1), WgResult.Drop);
  assert.equal(pair.b.out.dropReason, DropReason.InvalidPacket);
  const short = ipv4Packet(60);
  short[3] = 100; // claims 100 bytes, carries 60
  assert.equal(deliver(pair.b, seal(pair.a, short, 1), 1), WgResult.Drop);
  assert.equal(pair.b.out.dropReason, DropReason.InvalidPacket);
});

Deno.test("Tunnel queues data without a session, initiates, and flushes after the handshake", () => {
  const { a, b } = makePair();
  const buf = new Uint8Array(SLOT_LEN);
  const pkt = ipv4Packet(100);
  buf.set(pkt, HEADROOM);
  assert.equal(a.tunnel.encapsulate(buf, HEADROOM, pkt.length, a.out, 0), WgResult.WriteToNetwork);
  assert.equal(a.out.messageType, WG_TYPE_HANDSHAKE_INIT);
  const init = take(a.out);
  // A second packet is queued behind the handshake already in flight.
  buf.set(ipv4Packet(120), HEADROOM);
  assert.equal(a.tunnel.encapsulate(buf, HEADROOM, 120, a.out, 1), WgResult.Done);
  assert.equal(a.tunnel.queuedCount, 2);
  assert.equal(a.tunnel.pollQueued(a.out, 1), WgResult.Done, "nothing to send before the session exists");

  assert.equal(deliver(b, init, 2), WgResult.WriteToNetwork);
  assert.equal(deliver(a, take(b.out), 3, ADDR_B), WgResult.WriteToNetwork);
  assert.equal(deliver(b, take(a.out), 4), WgResult.Done);
  const sizes: number[] = [];
  while (a.tunnel.pollQueued(a.out, 5) === WgResult.WriteToNetwork) {
    sizes.push(open(b, take(a.out), 5).length);
  }
  assert.deepEqual(sizes, [100, 120]);
  assert.equal(a.tunnel.queuedCount, 0);
});

Deno.test("Tunnel (responder) queues data until the initiator confirms the new session", () => {
  const { a, b } = makePair();
  assert.equal(a.tunnel.initiateHandshake(a.out, 0), WgResult.WriteToNetwork);
  assert.equal(deliver(b, take(a.out), 0), WgResult.WriteToNetwork);
  const resp = take(b.out);
  // B has keys but no confirmation yet: it queues and does not race with its own initiation.
  const buf = new Uint8Array(SLOT_LEN);
  buf.set(ipv4Packet(64), HEADROOM);
  assert.equal(b.tunnel.encapsulate(buf, HEADROOM, 64, b.out, 1), WgResult.Done);
  assert.equal(b.tunnel.queuedCount, 1);
  assert.equal(deliver(a, resp, 2, ADDR_B), WgResult.WriteToNetwork);
  assert.equal(deliver(b, take(a.out), 3), WgResult.Done);
  assert.equal(b.tunnel.pollQueued(b.out, 3), WgResult.WriteToNetwork);
  assert.equal(open(a, take(b.out), 3).length, 64);
});

Deno.test("Tunnel keeps at most 8 sessions: the 9th handshake evicts the oldest", () => {
  const pair = makePair();
  const firstMsgs: Uint8Array[] = [];
  for (let i = 0; i < N_SESSIONS + 1; i++) {
    const now = i * 1000;
    handshake(pair, now);
    // A packet from B on each session, kept for later (B sends on the session A's keepalive confirmed).
    firstMsgs.push(seal(pair.b, ipv4Packet(40, i), now));
  }
  const now = 20_000;
  // The first session's slot now holds the 9th: its index no longer matches.
  assert.equal(deliver(pair.a, firstMsgs[0]!, now, ADDR_B), WgResult.Drop);
  assert.equal(pair.a.out.dropReason, DropReason.NoSession);
  for (let i = 1; i <= N_SESSIONS; i++) {
    assert.equal(open(pair.a, firstMsgs[i]!, now)[20], i, `session ${i} still decrypts`);
  }
});

Deno.test("Tunnel uses a new session counter for each initiation, same connection index", () => {
  const pair = makePair();
  assert.equal(pair.a.tunnel.initiateHandshake(pair.a.out, 0), WgResult.WriteToNetwork);
  const first = new DataView(take(pair.a.out).buffer).getUint32(4, true);
  // Retransmission after REKEY_TIMEOUT (+ jitter) carries the next counter.
  let now = 5_000;
  assert.equal(pair.a.tunnel.handleTimeout(pair.a.out, now), WgResult.Done);
  now = pair.a.tunnel.pollTimeout();
  assert.equal(pair.a.tunnel.handleTimeout(pair.a.out, now), WgResult.WriteToNetwork);
  const second = new DataView(take(pair.a.out).buffer).getUint32(4, true);
  assert.equal(connectionIndexOf(first), pair.a.tunnel.index);
  assert.equal(connectionIndexOf(second), pair.a.tunnel.index);
  assert.equal(second & 0xff, ((first & 0xff) + 1) & 0xff);
});

/** Both directions, several packets each, with matching plaintext. */
function exchangeBothWays(pair: Pair): void {
  handshake(pair, 0);
  for (let i = 0; i < 5; i++) {
    const ab = ipv4Packet(100 + i, i);
    assert.deepEqual(open(pair.b, seal(pair.a, ab, 1 + i), 1 + i), ab);
    const ba = ipv4Packet(200 + i, 0x80 + i);
    assert.deepEqual(open(pair.a, seal(pair.b, ba, 1 + i), 1 + i), ba);
  }
  assert.equal(pair.a.tunnel.isInitiator, true);
  assert.equal(pair.b.tunnel.isInitiator, false);
}

Deno.test("Handshake timestamps strictly increase even within one millisecond", () => {
  const pair = makePair();
  const fixedClock = () => WALL_CLOCK_AT_ZERO_MS;
  const idxA = new SessionIndex(1);
  const idxB = new SessionIndex(2);
  const hsA = new Handshake(
    noble,
    pair.a.identity,
    pair.b.identity.publicKey,
    null,
    idxA,
    new SeededRng(1),
    fixedClock,
  );
  const hsB = new Handshake(
    noble,
    pair.b.identity,
    pair.a.identity.publicKey,
    null,
    idxB,
    new SeededRng(2),
    fixedClock,
  );
  const dst = new Uint8Array(256);
  for (let i = 0; i < 3; i++) {
    const init = new Uint8Array(148);
    hsA.createInitiation(init, 0, 0);
    const keys = hsB.respond(init, 0, dst, 0, 0);
    assert.notEqual(typeof keys, "number", `initiation ${i} accepted`);
    // The same initiation again is a replay.
    assert.equal(hsB.respond(init, 0, dst, 0, 0), DropReason.StaleTimestamp);
  }
});
