import assert from "node:assert/strict";
import {
  WG_TYPE_COOKIE_REPLY,
  WG_TYPE_DATA,
  WG_TYPE_HANDSHAKE_INIT,
  WG_TYPE_HANDSHAKE_RESPONSE,
} from "../../../src/wire/wireguard.ts";
import {
  CONNECTION_EXPIRY_MS,
  DropReason,
  KEEPALIVE_TIMEOUT_MS,
  MAX_JITTER_MS,
  REJECT_AFTER_TIME_MS,
  REKEY_AFTER_TIME_MS,
  REKEY_ATTEMPT_TIME_MS,
  REKEY_TIMEOUT_MS,
  SHOULD_NOT_USE_AFTER_TIME_MS,
  WgResult,
} from "../../../src/wireguard/mod.ts";
import { deliver, handshake, ipv4Packet, makePair, open, PairSim, seal, take, tick } from "./_pair.ts";

Deno.test("Tunnel: the initiator rekeys REKEY_AFTER_TIME (120 s) after the session, the responder never", () => {
  const sim = new PairSim(makePair());
  handshake(sim.pair, 0);
  sim.now = 1_000;
  sim.sendData("a", 100);
  sim.sendData("b", 100);
  sim.runUntil(REKEY_AFTER_TIME_MS - 1);
  assert.equal(sim.sent("a", WG_TYPE_HANDSHAKE_INIT).length, 0, "no rekey before 120 s");
  sim.runUntil(REKEY_AFTER_TIME_MS + MAX_JITTER_MS);
  const inits = sim.sent("a", WG_TYPE_HANDSHAKE_INIT);
  assert.equal(inits.length, 1);
  assert.ok(inits[0]!.at >= REKEY_AFTER_TIME_MS && inits[0]!.at <= REKEY_AFTER_TIME_MS + MAX_JITTER_MS);
  assert.equal(sim.sent("b", WG_TYPE_HANDSHAKE_RESPONSE).length, 1, "B answered");
  // After the rekey both sides use the new session and traffic keeps flowing.
  sim.runUntil(REKEY_AFTER_TIME_MS + 2_000);
  assert.equal(sim.sent("b", WG_TYPE_HANDSHAKE_INIT).length, 0, "the responder never initiates");
  sim.sendData("a", 300);
  sim.sendData("b", 301);
  assert.deepEqual(sim.delivered.b.at(-1)?.length, 300);
  assert.deepEqual(sim.delivered.a.at(-1)?.length, 301);
  assert.equal(sim.pair.a.tunnel.lastHandshakeAt, inits[0]!.at);
});

Deno.test("Tunnel: without data sent on the session there is no time-based rekey", () => {
  const sim = new PairSim(makePair());
  handshake(sim.pair, 0);
  sim.runUntil(REJECT_AFTER_TIME_MS - 1);
  assert.equal(sim.sent("a", WG_TYPE_HANDSHAKE_INIT).length, 0);
  assert.equal(sim.sent("b", WG_TYPE_HANDSHAKE_INIT).length, 0);
});

Deno.test("Tunnel: the initiator stops sending on a session after 170 s, the responder after 180 s", () => {
  const { a, b } = makePair();
  handshake({ a, b }, 0);
  seal(a, ipv4Packet(40), SHOULD_NOT_USE_AFTER_TIME_MS - 1); // still usable
  const fromA = seal(a, ipv4Packet(40), SHOULD_NOT_USE_AFTER_TIME_MS - 1);
  // At 170 s the initiator queues and starts a handshake instead.
  const buf = new Uint8Array(2048);
  buf.set(ipv4Packet(40), 20);
  assert.equal(
    a.tunnel.encapsulate(buf, 20, 40, a.out, SHOULD_NOT_USE_AFTER_TIME_MS),
    WgResult.WriteToNetwork,
  );
  assert.equal(a.out.messageType, WG_TYPE_HANDSHAKE_INIT);
  assert.equal(a.tunnel.queuedCount, 1);
  // The responder may still send (and receive) until REJECT_AFTER_TIME.
  const fromB = seal(b, ipv4Packet(44), REJECT_AFTER_TIME_MS - 1);
  assert.equal(open(a, fromB, REJECT_AFTER_TIME_MS - 1).length, 44);
  // At 180 s the session is rejected in both directions.
  assert.equal(deliver(b, fromA, REJECT_AFTER_TIME_MS), WgResult.Drop);
  assert.equal(b.out.dropReason, DropReason.Expired);
  assert.equal(b.tunnel.hasSession(REJECT_AFTER_TIME_MS), false);
  // Once the timers ran, the session is gone altogether.
  assert.equal(b.tunnel.pollTimeout(), REJECT_AFTER_TIME_MS);
  assert.equal(tick(b, REJECT_AFTER_TIME_MS).code, WgResult.Done);
  assert.equal(deliver(b, fromA, REJECT_AFTER_TIME_MS + 1), WgResult.Drop);
  assert.equal(b.out.dropReason, DropReason.NoSession);
});

Deno.test("Tunnel: a passive keepalive follows 10 s of receiving data without sending", () => {
  const { a, b } = makePair();
  handshake({ a, b }, 0);
  open(b, seal(a, ipv4Packet(80), 2_000), 2_000);
  assert.equal(b.tunnel.pollTimeout(), 2_000 + KEEPALIVE_TIMEOUT_MS);
  assert.equal(tick(b, 2_000 + KEEPALIVE_TIMEOUT_MS - 1).code, WgResult.Done);
  const { code, msg } = tick(b, 2_000 + KEEPALIVE_TIMEOUT_MS);
  assert.equal(code, WgResult.WriteToNetwork);
  assert.equal(msg![0], WG_TYPE_DATA);
  assert.equal(msg!.length, 32, "an empty data message");
  assert.equal(deliver(a, msg!, 2_000 + KEEPALIVE_TIMEOUT_MS), WgResult.Done, "A accepts the keepalive");
  assert.equal(tick(b, 2_000 + KEEPALIVE_TIMEOUT_MS).code, WgResult.Done, "only one keepalive");
});

Deno.test("Tunnel: no passive keepalive when it replied within 10 s", () => {
  const { a, b } = makePair();
  handshake({ a, b }, 0);
  open(b, seal(a, ipv4Packet(80), 2_000), 2_000);
  open(a, seal(b, ipv4Packet(80), 5_000), 5_000);
  assert.equal(tick(b, 2_000 + KEEPALIVE_TIMEOUT_MS).code, WgResult.Done);
});

Deno.test("Tunnel: handshake retries every REKEY_TIMEOUT + jitter and gives up after REKEY_ATTEMPT_TIME", () => {
  const sim = new PairSim(makePair());
  sim.linkUp = false;
  assert.equal(sim.sendData("a", 60), WgResult.WriteToNetwork);
  sim.runUntil(60_000);
  const inits = sim.sent("a", WG_TYPE_HANDSHAKE_INIT).map((e) => e.at);
  assert.equal(inits.length, 3, `initiations at ${inits}`);
  for (let i = 1; i < inits.length; i++) {
    const gap = inits[i]! - inits[i - 1]!;
    assert.ok(gap >= REKEY_TIMEOUT_MS && gap <= REKEY_TIMEOUT_MS + MAX_JITTER_MS, `gap ${gap}`);
  }
  assert.deepEqual(sim.sent("a", 0).map((e) => e.at), [REKEY_ATTEMPT_TIME_MS], "expired at 15 s");
  assert.equal(sim.pair.a.tunnel.isExpired, true);
  assert.equal(sim.pair.a.tunnel.queuedCount, 0, "queued packets are dropped");
  assert.equal(sim.pair.a.tunnel.pollTimeout(), Infinity);
  assert.equal(tick(sim.pair.a, 70_000).code, WgResult.Expired);
});

Deno.test("Tunnel: jitter varies the retransmission times", () => {
  const gaps = new Set<number>();
  for (let seed = 1; seed <= 6; seed++) {
    const sim = new PairSim(makePair({ seed }));
    sim.linkUp = false;
    sim.sendData("a", 60);
    sim.runUntil(6_000);
    const inits = sim.sent("a", WG_TYPE_HANDSHAKE_INIT);
    gaps.add(inits[1]!.at - inits[0]!.at);
  }
  assert.ok(gaps.size > 1, `gaps ${[...gaps]}`);
});

Deno.test("Tunnel: an expired tunnel is revived by new data", () => {
  const sim = new PairSim(makePair());
  sim.linkUp = false;
  sim.sendData("a", 60);
  sim.runUntil(20_000);
  assert.equal(sim.pair.a.tunnel.isExpired, true);
  sim.linkUp = true;
  assert.equal(sim.sendData("a", 70), WgResult.WriteToNetwork);
  assert.equal(sim.pair.a.tunnel.isExpired, false);
  assert.deepEqual(sim.delivered.b.map((p) => p.length), [70]);
});

Deno.test("Tunnel (responder): the connection expires 540 s after its last session", () => {
  const { a, b } = makePair();
  handshake({ a, b }, 0);
  assert.equal(b.tunnel.pollTimeout(), REJECT_AFTER_TIME_MS);
  assert.equal(tick(b, REJECT_AFTER_TIME_MS).code, WgResult.Done);
  assert.equal(b.tunnel.pollTimeout(), CONNECTION_EXPIRY_MS);
  assert.equal(tick(b, CONNECTION_EXPIRY_MS - 1).code, WgResult.Done);
  assert.equal(tick(b, CONNECTION_EXPIRY_MS).code, WgResult.Expired);
  assert.equal(b.tunnel.isExpired, true);
  assert.equal(b.tunnel.pollTimeout(), Infinity);
  // The peer can still come back with a fresh handshake.
  assert.equal(a.tunnel.initiateHandshake(a.out, 600_000), WgResult.WriteToNetwork);
  assert.equal(deliver(b, take(a.out), 600_000), WgResult.WriteToNetwork);
  assert.equal(b.tunnel.isExpired, false);
});

Deno.test("Tunnel (initiator): an expired session it initiated is renewed right away", () => {
  const sim = new PairSim(makePair());
  handshake(sim.pair, 0);
  sim.runUntil(REJECT_AFTER_TIME_MS + MAX_JITTER_MS);
  const inits = sim.sent("a", WG_TYPE_HANDSHAKE_INIT);
  assert.equal(inits.length, 1);
  assert.ok(inits[0]!.at >= REJECT_AFTER_TIME_MS);
  assert.equal(sim.pair.a.tunnel.hasSession(sim.now), true);
  sim.runUntil(CONNECTION_EXPIRY_MS + 1);
  assert.equal(sim.sent("a", 0).length + sim.sent("b", 0).length, 0, "nobody expired");
});

Deno.test("Tunnel: data without an answer for KEEPALIVE + REKEY_TIMEOUT triggers a handshake", () => {
  const sim = new PairSim(makePair());
  handshake(sim.pair, 0);
  sim.now = 1_000;
  sim.linkUp = false;
  sim.sendData("b", 100); // B (responder) sends, A never answers
  sim.runUntil(1_000 + KEEPALIVE_TIMEOUT_MS + REKEY_TIMEOUT_MS - 1);
  assert.equal(sim.sent("b", WG_TYPE_HANDSHAKE_INIT).length, 0);
  sim.runUntil(1_000 + KEEPALIVE_TIMEOUT_MS + REKEY_TIMEOUT_MS + MAX_JITTER_MS);
  assert.equal(sim.sent("b", WG_TYPE_HANDSHAKE_INIT).length, 1);
});

Deno.test("Tunnel: persistent keepalive is off by default and sent every interval when configured", () => {
  const off = new PairSim(makePair());
  handshake(off.pair, 0);
  off.runUntil(100_000);
  assert.equal(off.sent("a", WG_TYPE_DATA).length + off.sent("b", WG_TYPE_DATA).length, 0);

  const on = new PairSim(makePair({ tunnel: { persistentKeepaliveMs: 25_000 } }));
  handshake(on.pair, 0);
  on.runUntil(100_000);
  assert.deepEqual(on.sent("a", WG_TYPE_DATA).map((e) => e.at), [25_000, 50_000, 75_000, 100_000]);
});

Deno.test("Tunnel: REKEY_AFTER_MESSAGES makes the initiator rekey", () => {
  const sim = new PairSim(makePair({ tunnel: { rekeyAfterMessages: 10 } }));
  handshake(sim.pair, 0);
  sim.now = 1_000;
  for (let i = 0; i < 8; i++) sim.sendData("a", 50);
  assert.equal(sim.pair.a.tunnel.pollTimeout() > 1_000, true, "not yet (the confirmation was message 1)");
  sim.sendData("a", 50); // counter 9 sent -> 10 messages
  assert.equal(sim.pair.a.tunnel.pollTimeout(), 1_000);
  sim.runUntil(1_000);
  assert.equal(sim.sent("a", WG_TYPE_HANDSHAKE_INIT).length, 1);
});

Deno.test("Tunnel: REJECT_AFTER_MESSAGES stops a session in both directions", () => {
  const { a, b } = makePair({ tunnel: { rejectAfterMessages: 4 } });
  handshake({ a, b }, 0); // counter 0 = confirmation keepalive
  const msgs = [1, 2, 3].map(() => seal(a, ipv4Packet(40), 1));
  for (const m of msgs) open(b, m, 1);
  const buf = new Uint8Array(2048);
  buf.set(ipv4Packet(40), 20);
  // Counter 4 is not sent: the packet waits for a new handshake, held back until REKEY_TIMEOUT after
  // the previous initiation.
  assert.equal(a.tunnel.encapsulate(buf, 20, 40, a.out, 2), WgResult.Done);
  assert.equal(a.tunnel.queuedCount, 1);
  assert.equal(a.tunnel.pollTimeout(), REKEY_TIMEOUT_MS);
  const { code, msg } = tick(a, REKEY_TIMEOUT_MS);
  assert.equal(code, WgResult.WriteToNetwork);
  assert.equal(msg![0], WG_TYPE_HANDSHAKE_INIT);
  // A forged high counter is refused before decryption.
  const forged = msgs[0]!.slice();
  new DataView(forged.buffer).setUint32(8, 4, true);
  assert.equal(deliver(b, forged, 2), WgResult.Drop);
  assert.equal(b.out.dropReason, DropReason.InvalidCounter);
});

Deno.test("Tunnel timers always make progress over a long run with bursts and a partition", () => {
  // A long mixed run: traffic bursts, a partition, recovery. PairSim asserts it always settles.
  const sim = new PairSim(makePair({ tunnel: { persistentKeepaliveMs: 15_000 } }));
  handshake(sim.pair, 0);
  for (let t = 1_000; t < 400_000; t += 7_919) {
    sim.runUntil(t);
    sim.linkUp = t < 150_000 || t > 200_000;
    sim.sendData(t % 2 === 0 ? "a" : "b", 100 + (t % 500));
  }
  sim.runUntil(1_500_000);
  assert.ok(sim.trace.length > 50);
  assert.equal(sim.sent("b", WG_TYPE_COOKIE_REPLY).length, 0);
});
