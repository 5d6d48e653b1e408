import assert from "node:assert/strict";
import { SeededRng } from "../../../src/rng.ts";
import {
  Allocation,
  BINDING_INTERVAL_MS,
  FreeReason,
  RelayKind,
  sessionIdFromPublicKey,
} from "../../../src/turn/allocation.ts";
import { requestBackoffSteps } from "../../../src/turn/backoff.ts";
import { socketAddr } from "../../../src/wire/ip_addr.ts";
import {
  longTermKey,
  parseStun,
  StunAttr,
  StunClass,
  StunMessageBuilder,
  StunMethod,
} from "../../../src/wire/stun.ts";
import {
  allocated,
  LOCAL4,
  LOCAL6,
  MAPPED4,
  PASS,
  PEER4,
  PEER6,
  RELAY4,
  RELAY6,
  SESSION_ID,
  Testbed,
  USER,
} from "./testbed.ts";

const SOFTWARE = `snownet; session=${SESSION_ID}`;
const LIFETIME_MS = 600_000;
const te = new TextEncoder();

Deno.test("Allocation starts with a BINDING carrying only SOFTWARE", () => {
  const bed = new Testbed();
  const t = bed.alloc.pollTransmit()!;
  assert.deepEqual(t.destination, RELAY4);
  assert.equal(t.source, undefined);
  const msg = parseStun(t.payload);
  assert.ok(msg.ok);
  assert.equal(msg.msg.method, StunMethod.Binding);
  assert.equal(msg.msg.cls, StunClass.Request);
  assert.deepEqual(msg.msg.attributes.map((a) => a.type), [StunAttr.Software]);
  assert.equal(msg.msg.stringAttr(StunAttr.Software), SOFTWARE);
  assert.equal(bed.alloc.pollTransmit(), undefined);
});

Deno.test("Allocation allocates with the 401 nonce round and yields host, srflx and relay candidates", () => {
  const bed = new Testbed();
  bed.pump();
  assert.ok(bed.alloc.hasAllocation());
  assert.deepEqual(bed.alloc.activeSocket, RELAY4);

  const allocates = bed.sentStun(StunMethod.Allocate).map((s) => s.msg);
  assert.equal(allocates.length, 2, "first ALLOCATE is challenged, second succeeds");
  const [first, second] = allocates as [typeof allocates[0], typeof allocates[0]];
  // initial_allocate_has_username_realm_and_message_integrity_set / initial_allocate_is_missing_nonce
  assert.equal(first.stringAttr(StunAttr.Username), USER);
  assert.equal(first.stringAttr(StunAttr.Realm), "firezone");
  assert.ok(first.has(StunAttr.MessageIntegrity));
  assert.ok(!first.has(StunAttr.Nonce));
  assert.ok(first.verifyIntegrity(longTermKey(USER, "firezone", PASS)));
  assert.deepEqual(
    first.attributes.map((a) => a.type),
    [
      StunAttr.RequestedTransport,
      StunAttr.AdditionalAddressFamily,
      StunAttr.Software,
      StunAttr.Username,
      StunAttr.Realm,
      StunAttr.MessageIntegrity,
    ],
  );
  assert.deepEqual([...first.value(StunAttr.RequestedTransport)!], [17, 0, 0, 0]);
  assert.deepEqual([...first.value(StunAttr.AdditionalAddressFamily)!], [2, 0, 0, 0]);
  assert.equal(first.stringAttr(StunAttr.Software), SOFTWARE);
  assert.ok(!first.has(StunAttr.Lifetime));
  // The re-sent ALLOCATE carries the nonce from the 401, a new transaction id, and still no FINGERPRINT.
  assert.ok(second.has(StunAttr.Nonce));
  assert.notDeepEqual(second.transactionId, first.transactionId);
  for (const s of bed.sentStun()) {
    assert.ok(!s.msg.has(StunAttr.Fingerprint), "no FINGERPRINT on TURN requests");
  }
  assert.deepEqual(bed.server.errorsSent, [401]);

  const events = bed.takeEvents();
  assert.deepEqual(events, [
    { type: "new_candidate", candidate: { kind: "host", addr: LOCAL4, base: LOCAL4 } },
    { type: "new_candidate", candidate: { kind: "srflx", addr: MAPPED4, base: LOCAL4 } },
    {
      type: "new_candidate",
      candidate: { kind: "relay", addr: socketAddr("198.51.100.1", 49152), base: LOCAL4 },
    },
  ]);
  assert.deepEqual(bed.alloc.relayCandidates().map((c) => c.addr), [socketAddr("198.51.100.1", 49152)]);
  assert.equal(bed.alloc.expiresAt(), LIFETIME_MS);
});

Deno.test("Allocation gets a dual-stack allocation when the relay offers both families", () => {
  const bed = new Testbed({ server: { v4: RELAY4, v6: RELAY6 } });
  bed.pump();
  assert.deepEqual(
    bed.alloc.relayCandidates().map((c) => c.addr),
    [socketAddr("198.51.100.1", 49152), socketAddr("2001:db8::1", 49152)],
  );
  // Host and srflx for both families: both BINDINGs were answered.
  const kinds = bed.takeEvents().map((e) =>
    e.type === "new_candidate" ? `${e.candidate.kind}${e.candidate.addr.family}` : e.type
  );
  assert.deepEqual(kinds, ["host4", "srflx4", "host6", "srflx6", "relay4", "relay6"]);
});

Deno.test("Allocation uses the socket of the first BINDING answered (first_binding_response_sets_socket_to_use)", () => {
  const alloc = new Allocation({
    server: { v4: RELAY4, v6: RELAY6 },
    username: USER,
    password: PASS,
    sessionId: SESSION_ID,
    rng: new SeededRng(3),
    now: 0,
  });
  const b4 = alloc.pollTransmit()!;
  const b6 = alloc.pollTransmit()!;
  assert.deepEqual([b4.destination, b6.destination], [RELAY4, RELAY6]);
  const req6 = parseStun(b6.payload);
  assert.ok(req6.ok);
  const resp = new StunMessageBuilder(StunMethod.Binding, StunClass.Success, req6.msg.transactionId)
    .addXorAddress(StunAttr.XorMappedAddress, LOCAL6)
    .build();
  assert.ok(alloc.handleInput(RELAY6, LOCAL6, resp, 10));
  assert.deepEqual(alloc.activeSocket, RELAY6);
  const next = alloc.pollTransmit()!;
  assert.deepEqual(next.destination, RELAY6);
  // Not from the relay, or not a pending transaction: not ours.
  assert.ok(!alloc.handleInput(socketAddr("198.51.100.2", 3478), LOCAL4, resp, 10));
  assert.ok(!alloc.handleInput(RELAY6, LOCAL6, resp, 10), "transaction already answered");
});

Deno.test("Allocation ignores responses without a valid MESSAGE-INTEGRITY but keeps the request", () => {
  const bed = new Testbed();
  bed.dropServerToClient = true;
  bed.pump(); // BINDING lost on the way back
  bed.dropServerToClient = false;
  // Answer the BINDING by hand so that an ALLOCATE goes out.
  const binding = bed.sentStun(StunMethod.Binding)[0]!.msg;
  const ok = new StunMessageBuilder(StunMethod.Binding, StunClass.Success, binding.transactionId)
    .addXorAddress(StunAttr.XorMappedAddress, MAPPED4)
    .build();
  bed.alloc.handleInput(RELAY4, LOCAL4, ok, 0);
  const allocate = parseStun(bed.alloc.pollTransmit()!.payload);
  assert.ok(allocate.ok);
  const forged = new StunMessageBuilder(StunMethod.Allocate, StunClass.Success, allocate.msg.transactionId)
    .addXorAddress(StunAttr.XorRelayedAddress, socketAddr("198.51.100.1", 50000))
    .addU32(StunAttr.Lifetime, 600)
    .addMessageIntegrity(longTermKey(USER, "firezone", "not-the-password"))
    .build();
  assert.ok(bed.alloc.handleInput(RELAY4, LOCAL4, forged, 0), "counts as ours");
  assert.ok(!bed.alloc.hasAllocation());
  assert.equal(bed.alloc.pollTimeout(), 1_000, "the ALLOCATE is still waiting for its retransmission");
  // An unsigned one is ignored too.
  const unsigned = new StunMessageBuilder(StunMethod.Allocate, StunClass.Success, allocate.msg.transactionId)
    .addXorAddress(StunAttr.XorRelayedAddress, socketAddr("198.51.100.1", 50000))
    .addU32(StunAttr.Lifetime, 600)
    .build();
  assert.ok(bed.alloc.handleInput(RELAY4, LOCAL4, unsigned, 0));
  assert.ok(!bed.alloc.hasAllocation());
});

Deno.test("Allocation is refreshed at half its lifetime (no LIFETIME attribute) and stays alive", () => {
  const bed = allocated();
  const refreshAt = LIFETIME_MS / 2;
  bed.advance(refreshAt - 1);
  assert.equal(bed.sentStun(StunMethod.Refresh).length, 0);
  bed.advance(refreshAt);
  const refreshes = bed.sentStun(StunMethod.Refresh);
  assert.equal(refreshes.length, 1);
  assert.equal(refreshes[0]!.at, refreshAt);
  const refresh = refreshes[0]!.msg;
  assert.ok(!refresh.has(StunAttr.Lifetime));
  assert.deepEqual(
    refresh.attributes.map((a) => a.type),
    [
      StunAttr.RequestedTransport,
      StunAttr.AdditionalAddressFamily,
      StunAttr.Software,
      StunAttr.Username,
      StunAttr.Realm,
      StunAttr.Nonce,
      StunAttr.MessageIntegrity,
    ],
  );
  assert.equal(bed.alloc.expiresAt(), refreshAt + LIFETIME_MS);
  // allocation_is_refreshed_only_once: the next deadline is later.
  assert.ok(bed.alloc.pollTimeout() > refreshAt);
  bed.advance(3 * LIFETIME_MS);
  assert.ok(bed.alloc.hasAllocation(), "still allocated after three lifetimes");
  assert.equal(bed.sentStun(StunMethod.Refresh).length, 6);
  assert.deepEqual(bed.takeEvents(), []);
});

Deno.test("Allocation sends a keepalive BINDING every 25 s on the active socket", () => {
  const bed = allocated();
  const before = bed.sentStun(StunMethod.Binding).length;
  bed.advance(100_000);
  const keepalives = bed.sentStun(StunMethod.Binding).slice(before);
  assert.deepEqual(keepalives.map((k) => k.at), [25_000, 50_000, 75_000, 100_000]);
  for (const k of keepalives) assert.deepEqual(k.msg.attributes.map((a) => a.type), [StunAttr.Software]);
  assert.equal(BINDING_INTERVAL_MS, 25_000);
});

Deno.test("Allocation binds a channel and relays data both ways", () => {
  const bed = allocated();
  bed.alloc.bindChannel(PEER4, bed.now);
  bed.pump();
  const binds = bed.sentStun(StunMethod.ChannelBind);
  assert.equal(binds.length, 1);
  const bind = binds[0]!.msg;
  assert.deepEqual(bind.xorAddress(StunAttr.XorPeerAddress), PEER4);
  assert.deepEqual([...bind.value(StunAttr.ChannelNumber)!], [0x40, 0x00, 0, 0]);
  assert.equal(bind.stringAttr(StunAttr.Software), SOFTWARE);
  assert.ok(bind.has(StunAttr.MessageIntegrity));

  const channel = bed.sendToPeer(PEER4, te.encode("hello peer"));
  assert.equal(channel, 0x4000);
  const last = bed.sent.at(-1)!;
  assert.deepEqual([...last.payload.subarray(0, 4)], [0x40, 0x00, 0x00, 10], "header, no padding");
  assert.equal(last.payload.length, 14);
  assert.deepEqual(bed.peerInbox.map((p) => [p.from, p.to, new TextDecoder().decode(p.payload)]), [
    [socketAddr("198.51.100.1", 49152), PEER4, "hello peer"],
  ]);

  bed.peerSends(PEER4, socketAddr("198.51.100.1", 49152), te.encode("hi gateway"));
  assert.deepEqual(bed.clientInbox.map((c) => [c.peer, c.relayAddr, new TextDecoder().decode(c.payload)]), [
    [PEER4, socketAddr("198.51.100.1", 49152), "hi gateway"],
  ]);
  // Binding again is a no-op (rebinding_existing_channel_send_no_message).
  const count = bed.sent.length;
  bed.alloc.bindChannel(PEER4, bed.now);
  bed.pump();
  assert.equal(bed.sent.length, count);
});

Deno.test("Allocation sends optimistically on an in-flight channel; without a channel it drops and binds", () => {
  const bed = allocated();
  bed.dropClientToServer = true;
  const buf = new Uint8Array(16);
  assert.equal(bed.alloc.encodeToPeer(PEER4, buf, 4, 8, bed.now), -1, "no channel yet: dropped");
  const bind = bed.alloc.pollTransmit();
  assert.ok(bind, "a CHANNEL-BIND was started");
  assert.equal(bed.alloc.encodeToPeer(PEER4, buf, 4, 8, bed.now), 0x4000, "in-flight channel is used");
  assert.deepEqual([...buf.subarray(0, 4)], [0x40, 0x00, 0x00, 0x08]);
  assert.equal(bed.alloc.pollTransmit(), undefined, "no second CHANNEL-BIND while one is in flight");
  // Data on an unconfirmed channel is not accepted.
  const cd = Uint8Array.of(0x40, 0x00, 0x00, 0x01, 0xaa);
  assert.equal(bed.alloc.decapsulate(RELAY4, cd, 0, cd.length, bed.now), null);
});

Deno.test("Allocation does not bind channels to a family it has no relayed address for", () => {
  const bed = allocated();
  bed.alloc.bindChannel(PEER6, bed.now);
  assert.equal(bed.alloc.pollTransmit(), undefined);
});

Deno.test("Allocation buffers channel bindings until the allocation exists (ring of 100)", () => {
  const bed = new Testbed();
  bed.alloc.bindChannel(PEER4, 0);
  bed.alloc.bindChannel(PEER4, 0); // dont_buffer_channel_bindings_twice
  bed.alloc.bindChannel(PEER6, 0); // dropped later: no IPv6 relayed address
  for (let i = 0; i < 100; i++) bed.alloc.bindChannel(socketAddr("192.0.2.60", 7000 + i), 0);
  bed.pump();
  const peers = new Map<string, number>();
  for (const s of bed.sentStun(StunMethod.ChannelBind)) {
    const peer = s.msg.xorAddress(StunAttr.XorPeerAddress)!;
    peers.set(
      `${peer.ip}:${peer.port}`,
      (s.msg.value(StunAttr.ChannelNumber)![0]! << 8) | s.msg.value(StunAttr.ChannelNumber)![1]!,
    );
  }
  // PEER4 and PEER6 were pushed out of the ring by the 100 later peers (re-sends after 438 repeat peers).
  assert.equal(peers.size, 100);
  assert.equal(peers.get("192.0.2.60:7000"), 0x4000);
  assert.equal(peers.get("192.0.2.60:7099"), 0x4063);
  assert.ok(!peers.has(`${PEER4.ip}:${PEER4.port}`));
});

Deno.test("Allocation recovers from a stale nonce (438) with the new nonce", () => {
  const bed = allocated({ sim: { nonceUses: 3 } });
  for (let i = 0; i < 8; i++) bed.alloc.bindChannel(socketAddr("192.0.2.70", 8000 + i), bed.now);
  bed.pump();
  assert.ok(bed.server.errorsSent.includes(438));
  for (let i = 0; i < 8; i++) {
    assert.equal(bed.sendToPeer(socketAddr("192.0.2.70", 8000 + i), te.encode(`m${i}`)), 0x4000 + i);
  }
  assert.equal(bed.peerInbox.length, 8, "every channel got bound despite stale nonces");
  // upon_stale_nonce_reauthorizes_using_new_nonce: every re-send after a 438 uses a different nonce.
  const nonces = new Set(bed.sentStun(StunMethod.ChannelBind).map((s) => s.msg.stringAttr(StunAttr.Nonce)));
  assert.ok(nonces.size >= 3);
});

Deno.test("Allocation re-allocates after 437 on REFRESH (relay restarted)", () => {
  const bed = allocated();
  bed.alloc.bindChannel(PEER4, bed.now);
  bed.pump();
  bed.server.forgetAllocations();
  bed.advance(LIFETIME_MS / 2);
  const events = bed.takeEvents();
  assert.deepEqual(events.map((e) => e.type), ["invalid_candidate", "new_candidate"]);
  assert.deepEqual(
    events.map((e) => e.type !== "freed" ? e.candidate.addr : null),
    [socketAddr("198.51.100.1", 49152), socketAddr("198.51.100.1", 49153)],
  );
  assert.ok(bed.alloc.hasAllocation());
  assert.deepEqual(bed.server.errorsSent.at(-1), 437);
  // Channels were cleared with the old allocation (failed_refresh_clears_all_channel_bindings).
  const buf = new Uint8Array(12);
  bed.dropClientToServer = true;
  assert.equal(bed.alloc.encodeToPeer(PEER4, buf, 4, 4, bed.now), -1);
});

Deno.test("Allocation deletes and re-creates after 437 on ALLOCATE (REFRESH LIFETIME 0, then ALLOCATE)", () => {
  const bed = allocated();
  // A restarted client on the same 5-tuple: the relay still holds the first allocation.
  const again = new Testbed({ serverInstance: bed.server, seed: 2 });
  again.pump();
  const refresh = again.sentStun(StunMethod.Refresh);
  assert.equal(refresh.length, 1);
  assert.equal(refresh[0]!.msg.u32Attr(StunAttr.Lifetime), 0, "delete request");
  assert.equal(again.sentStun(StunMethod.Allocate).length, 3, "challenged, mismatched, then allocated");
  assert.ok(again.alloc.hasAllocation());
  assert.deepEqual(bed.server.errorsSent, [401, 401, 437]);
});

Deno.test("Allocation re-allocates and re-binds after 437 on CHANNEL-BIND", () => {
  const bed = allocated();
  bed.server.forgetAllocations();
  bed.alloc.bindChannel(PEER4, bed.now);
  bed.pump();
  const methods = bed.sentStun().map((s) => s.msg.method).slice(-3);
  assert.deepEqual(methods, [StunMethod.ChannelBind, StunMethod.Allocate, StunMethod.ChannelBind]);
  // Round-robin continues after the channels were cleared with the old allocation.
  assert.equal(bed.sendToPeer(PEER4, te.encode("x")), 0x4001);
  assert.equal(bed.peerInbox.length, 1);
});

Deno.test("Allocation with a wrong password (Firezone relay) is freed after the 8 s backoff with a clear reason", () => {
  const bed = new Testbed({ password: "wrong" });
  bed.pump();
  assert.ok(!bed.alloc.hasAllocation());
  bed.advance(20_000);
  const events = bed.takeEvents();
  const freed = events.filter((e) => e.type === "freed");
  assert.equal(freed.length, 1);
  assert.equal(events.at(-1)!.type, "freed");
  const f = freed[0]!;
  assert.ok(f.type === "freed");
  assert.equal(f.reason, FreeReason.NoResponseReceived);
  assert.match(f.message, /MESSAGE-INTEGRITY/);
  assert.match(f.message, /wrong password/);
  assert.ok(bed.alloc.isFreed);
  assert.equal(bed.alloc.pollTimeout(), Infinity);
});

Deno.test("Allocation with a wrong password (unsigned 401 after a nonce) is freed as an authentication error", () => {
  const bed = new Testbed({ password: "wrong", relayKind: RelayKind.Rfc8656, sim: { dialect: "coturn" } });
  bed.pump();
  const events = bed.takeEvents();
  assert.deepEqual(events.map((e) => e.type), ["new_candidate", "new_candidate", "freed"]);
  const f = events[2]!;
  assert.ok(f.type === "freed");
  assert.equal(f.reason, FreeReason.AuthenticationError);
  assert.match(f.message, /credentials/);
  // given_a_request_with_nonce_and_we_are_unauthorized_dont_retry
  assert.equal(bed.sentStun(StunMethod.Allocate).length, 2);
  assert.equal(bed.alloc.pollTransmit(), undefined);
});

Deno.test("Allocation speaks the RFC 8656 dialect to coturn-like relays", () => {
  const bed = allocated({ relayKind: RelayKind.Rfc8656, sim: { dialect: "coturn" } });
  const first = bed.sentStun(StunMethod.Allocate)[0]!.msg;
  assert.ok(!first.has(StunAttr.MessageIntegrity) && !first.has(StunAttr.Username), "bare first ALLOCATE");
  bed.advance(LIFETIME_MS / 2);
  const refresh = bed.sentStun(StunMethod.Refresh)[0]!.msg;
  assert.ok(!refresh.has(StunAttr.RequestedTransport));
  assert.ok(!refresh.has(StunAttr.AdditionalAddressFamily));
  assert.ok(bed.alloc.hasAllocation());
  assert.ok(!bed.server.errorsSent.includes(420));
  bed.alloc.bindChannel(PEER4, bed.now);
  bed.pump();
  assert.equal(bed.sendToPeer(PEER4, te.encode("ok")), 0x4000);
  assert.equal(bed.peerInbox.length, 1);
});

Deno.test("Allocation with the Firezone dialect against coturn fails on 400 (why the RFC dialect exists)", () => {
  const bed = new Testbed({ sim: { dialect: "coturn" } });
  bed.pump();
  assert.deepEqual(bed.server.errorsSent, [400]);
  assert.ok(!bed.alloc.hasAllocation());
});

Deno.test("Allocation refuses a challenge naming another realm", () => {
  const bed = new Testbed({ sim: { realm: "evil" } });
  bed.pump();
  assert.equal(bed.sentStun(StunMethod.Allocate).length, 1, "no re-send");
  assert.ok(!bed.alloc.hasAllocation());
});

Deno.test("Allocation without any response retransmits at +1, +2.5, +4.75 s and gives up at the 8 s expiry", () => {
  const bed = new Testbed();
  bed.dropClientToServer = true;
  const timeouts: number[] = [];
  for (;;) {
    const t = bed.alloc.pollTimeout();
    if (t === Infinity) break;
    timeouts.push(t);
    assert.ok(bed.alloc.pollTransmit(), "one transmit before each timeout");
    assert.equal(bed.alloc.pollTransmit(), undefined);
    bed.alloc.handleTimeout(t);
  }
  assert.deepEqual(timeouts, requestBackoffSteps(0));
  assert.deepEqual(timeouts, [1_000, 2_500, 4_750, 8_125]);
  const event = bed.alloc.pollEvent();
  assert.deepEqual(event, {
    type: "freed",
    reason: FreeReason.NoResponseReceived,
    message: "no response received. Is STUN blocked?",
  });
  assert.equal(bed.alloc.pollEvent(), undefined);
});

Deno.test("Allocation keeps its BINDING transaction id across retransmissions, but not ALLOCATE's", () => {
  const bed = new Testbed();
  bed.dropClientToServer = true;
  bed.advance(5_000);
  const ids = new Set(bed.sentStun(StunMethod.Binding).map((s) => s.msg.transactionKey));
  assert.equal(bed.sentStun(StunMethod.Binding).length, 4);
  assert.equal(ids.size, 1);
});

Deno.test("Allocation loses the relay: keepalive retransmits, then candidates are invalidated and it is freed", () => {
  const bed = allocated();
  bed.server.dropping = true;
  bed.advance(60_000);
  const bindings = bed.sentStun(StunMethod.Binding).filter((b) => b.at >= 25_000).map((b) => b.at);
  assert.deepEqual(bindings, [25_000, 26_000, 27_500, 29_750]);
  const events = bed.takeEvents();
  assert.deepEqual(events.map((e) => e.type), ["invalid_candidate", "freed"]);
  assert.ok(!bed.alloc.hasAllocation());
  assert.equal(bed.alloc.activeSocket, null);
});

Deno.test("Allocation expires locally at receipt + LIFETIME (expires_allocation_invalidates_candidates)", () => {
  const alloc = manualAllocation();
  assert.equal(alloc.expiresAt(), 600_000);
  assert.ok(alloc.pollTimeout() <= 25_000, "keepalive comes first");
  alloc.handleTimeout(599_999);
  assert.ok(alloc.hasAllocation());
  for (let t = alloc.pollTransmit(); t; t = alloc.pollTransmit());
  alloc.handleTimeout(600_000);
  assert.ok(!alloc.hasAllocation());
  const e = alloc.pollEvent();
  assert.ok(e?.type === "invalid_candidate");
  assert.deepEqual(e.candidate, { kind: "relay", addr: socketAddr("198.51.100.1", 49152), base: LOCAL4 });
});

Deno.test("Allocation data path refuses foreign or unknown ChannelData and needs header room", () => {
  const alloc = manualAllocation();
  const cd = Uint8Array.of(0x40, 0x00, 0x00, 0x01, 0xaa);
  assert.equal(alloc.decapsulate(RELAY4, cd, 0, cd.length, 0), null, "unknown channel");
  assert.equal(
    alloc.decapsulate(socketAddr("198.51.100.9", 3478), cd, 0, cd.length, 0),
    null,
    "not our relay",
  );
  assert.equal(alloc.encodeToPeer(PEER4, new Uint8Array(10), 2, 4, 0), -1, "no header room");
  const fresh = new Allocation({
    server: { v4: RELAY4 },
    username: USER,
    password: PASS,
    sessionId: SESSION_ID,
    rng: new SeededRng(1),
    now: 0,
  });
  assert.equal(fresh.encodeToPeer(PEER4, new Uint8Array(10), 4, 4, 0), -1, "no active socket");
});

Deno.test("Allocation.refresh() is a single 1 s attempt; a suspended allocation restarts with BINDING", () => {
  const bed = allocated();
  bed.advance(10_000);
  bed.alloc.refresh(bed.now);
  bed.pump();
  assert.equal(bed.sentStun(StunMethod.Refresh).length, 1);
  assert.equal(bed.alloc.expiresAt(), 10_000 + LIFETIME_MS, "proactive refresh renewed the lifetime");

  // Unanswered: given up after 1 s, the active socket is forgotten and the allocation invalidated.
  bed.dropServerToClient = true;
  bed.alloc.refresh(bed.now);
  bed.advance(bed.now + 1_000);
  assert.equal(bed.sentStun(StunMethod.Refresh).length, 2, "no retransmission");
  assert.ok(!bed.alloc.hasAllocation());
  assert.deepEqual(bed.takeEvents().map((e) => e.type), ["invalid_candidate", "freed"]);
});

Deno.test("Allocation.refresh() after a failed ALLOCATE tries again from BINDING, without stale bindings", () => {
  const key = longTermKey(USER, "firezone", PASS);
  const alloc = new Allocation({
    server: { v4: RELAY4 },
    username: USER,
    password: PASS,
    sessionId: SESSION_ID,
    rng: new SeededRng(11),
    now: 0,
  });
  answerBinding(alloc);
  alloc.bindChannel(PEER4, 0); // buffered: no allocation yet
  const allocate = next(alloc);
  assert.equal(allocate.method, StunMethod.Allocate);
  alloc.handleInput(
    RELAY4,
    LOCAL4,
    new StunMessageBuilder(StunMethod.Allocate, StunClass.Error, allocate.transactionId)
      .addErrorCode(500, "Server Error")
      .addMessageIntegrity(key)
      .build(),
    0,
  );
  assert.equal(alloc.pollTransmit(), undefined, "suspended");
  assert.equal(alloc.pollTimeout(), Infinity);
  assert.equal(alloc.pollEvent()?.type, "new_candidate");
  assert.equal(alloc.pollEvent()?.type, "new_candidate");
  assert.equal(alloc.pollEvent(), undefined, "not freed: the relay answers and credentials are fine");
  alloc.refresh(1_000);
  assert.equal(answerBinding(alloc, 1_000).method, StunMethod.Binding);
  const again = next(alloc);
  assert.equal(again.method, StunMethod.Allocate);
  alloc.handleInput(
    RELAY4,
    LOCAL4,
    new StunMessageBuilder(StunMethod.Allocate, StunClass.Success, again.transactionId)
      .addXorAddress(StunAttr.XorRelayedAddress, socketAddr("198.51.100.1", 49152))
      .addU32(StunAttr.Lifetime, 600)
      .addMessageIntegrity(key)
      .build(),
    1_000,
  );
  assert.ok(alloc.hasAllocation());
  // failed_allocation_clears_buffered_channel_bindings
  assert.equal(alloc.pollTransmit(), undefined);
});

Deno.test("Allocation is freed with a protocol failure on 420", () => {
  const alloc = new Allocation({
    server: { v4: RELAY4 },
    username: USER,
    password: PASS,
    sessionId: SESSION_ID,
    rng: new SeededRng(12),
    now: 0,
  });
  answerBinding(alloc);
  const allocate = next(alloc);
  alloc.handleInput(
    RELAY4,
    LOCAL4,
    new StunMessageBuilder(StunMethod.Allocate, StunClass.Error, allocate.transactionId)
      .addErrorCode(420, "Unknown Attribute")
      .addUnknownAttributes([StunAttr.AdditionalAddressFamily])
      .addMessageIntegrity(longTermKey(USER, "firezone", PASS))
      .build(),
    0,
  );
  const events = [];
  for (let e = alloc.pollEvent(); e; e = alloc.pollEvent()) events.push(e);
  const f = events.at(-1)!;
  assert.ok(f.type === "freed" && f.reason === FreeReason.ProtocolFailure);
});

Deno.test("Allocation forgets a channel whose CHANNEL-BIND failed with another error", () => {
  const alloc = manualAllocation();
  alloc.bindChannel(PEER4, 0);
  const bind = parseStun(alloc.pollTransmit()!.payload);
  assert.ok(bind.ok);
  alloc.handleInput(
    RELAY4,
    LOCAL4,
    new StunMessageBuilder(StunMethod.ChannelBind, StunClass.Error, bind.msg.transactionId)
      .addErrorCode(400, "Bad Request")
      .addMessageIntegrity(longTermKey(USER, "firezone", PASS))
      .build(),
    0,
  );
  const buf = new Uint8Array(12);
  // failed_channel_binding_removes_state: a new binding is started on the next send.
  assert.equal(alloc.encodeToPeer(PEER4, buf, 4, 4, 0), -1);
  const rebind = parseStun(alloc.pollTransmit()!.payload);
  assert.ok(rebind.ok && rebind.msg.method === StunMethod.ChannelBind);
  assert.deepEqual(
    [...rebind.msg.value(StunAttr.ChannelNumber)!],
    [0x40, 0x01, 0, 0],
    "round-robin: next number",
  );
});

Deno.test("Allocation refreshes a channel after 5 min only when data was received", () => {
  const bed = allocated();
  bed.alloc.bindChannel(PEER4, bed.now);
  bed.alloc.bindChannel(socketAddr("192.0.2.51", 6001), bed.now);
  bed.pump();
  bed.advance(60_000);
  bed.peerSends(PEER4, socketAddr("198.51.100.1", 49152), te.encode("activity"));
  bed.advance(5 * 60_000 + 25_000);
  const binds = bed.sentStun(StunMethod.ChannelBind);
  assert.equal(binds.length, 3, "only the active channel was refreshed");
  assert.deepEqual(binds[2]!.msg.xorAddress(StunAttr.XorPeerAddress), PEER4);
  assert.ok(binds[2]!.at >= 5 * 60_000 && binds[2]!.at <= 5 * 60_000 + 25_000, "within a keepalive tick");
  assert.deepEqual([...binds[2]!.msg.value(StunAttr.ChannelNumber)!], [0x40, 0x00, 0, 0], "same number");
});

Deno.test("sessionIdFromPublicKey() is uppercase hex SHA-256 of 'SESSION-ID' || key", () => {
  const id = sessionIdFromPublicKey(new Uint8Array(32));
  assert.match(id, /^[0-9A-F]{64}$/);
  assert.notEqual(id, sessionIdFromPublicKey(new Uint8Array(32).fill(1)));
  // Reference value computed independently: sha256(b"SESSION-ID" + bytes(32)) in Python.
  assert.equal(id, "4A9043208F90A9EDCBC9845CB75B296FC9B7A1FE3A236A9235F7D8282FC300BE");
});

/** The next transmit of `alloc`, parsed. */
function next(alloc: Allocation) {
  const t = alloc.pollTransmit();
  assert.ok(t, "expected a transmit");
  const r = parseStun(t.payload);
  assert.ok(r.ok);
  return r.msg;
}

/** Answers the pending BINDING (returns it). */
function answerBinding(alloc: Allocation, now = 0) {
  const binding = next(alloc);
  alloc.handleInput(
    RELAY4,
    LOCAL4,
    new StunMessageBuilder(StunMethod.Binding, StunClass.Success, binding.transactionId)
      .addXorAddress(StunAttr.XorMappedAddress, MAPPED4)
      .build(),
    now,
  );
  return binding;
}

function manualAllocation(): Allocation {
  const key = longTermKey(USER, "firezone", PASS);
  const alloc = new Allocation({
    server: { v4: RELAY4 },
    username: USER,
    password: PASS,
    sessionId: SESSION_ID,
    rng: new SeededRng(21),
    now: 0,
  });
  const binding = parseStun(alloc.pollTransmit()!.payload);
  assert.ok(binding.ok);
  alloc.handleInput(
    RELAY4,
    LOCAL4,
    new StunMessageBuilder(StunMethod.Binding, StunClass.Success, binding.msg.transactionId)
      .addXorAddress(StunAttr.XorMappedAddress, MAPPED4)
      .build(),
    0,
  );
  const allocate = parseStun(alloc.pollTransmit()!.payload);
  assert.ok(allocate.ok);
  alloc.handleInput(
    RELAY4,
    LOCAL4,
    new StunMessageBuilder(StunMethod.Allocate, StunClass.Success, allocate.msg.transactionId)
      .addXorAddress(StunAttr.XorRelayedAddress, socketAddr("198.51.100.1", 49152))
      .addU32(StunAttr.Lifetime, 600)
      .addMessageIntegrity(key)
      .build(),
    0,
  );
  assert.ok(alloc.hasAllocation());
  for (let e = alloc.pollEvent(); e; e = alloc.pollEvent());
  return alloc;
}
