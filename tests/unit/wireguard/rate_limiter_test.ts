import assert from "node:assert/strict";
import { socketAddr } from "../../../src/wire/ip_addr.ts";
import {
  WG_COOKIE_REPLY_LEN,
  WG_INIT_MAC1_OFF,
  WG_TYPE_COOKIE_REPLY,
  WG_TYPE_HANDSHAKE_RESPONSE,
} from "../../../src/wire/wireguard.ts";
import {
  DropReason,
  HANDSHAKE_RATE_LIMIT_PER_S,
  HandshakeRateLimiter,
  MAX_JITTER_MS,
  REKEY_TIMEOUT_MS,
  StaticIdentity,
  WgResult,
} from "../../../src/wireguard/mod.ts";
import { SeededRng } from "../../../src/rng.ts";
import { ADDR_A, deliver, makePair, makePeer, noble, type Peer, take, testKey, tick } from "./_pair.ts";

Deno.test("HandshakeRateLimiter: under a flood the responder answers with cookie replies", () => {
  const { a, b } = makePair();
  floodUntilUnderLoad(b, 0);
  assert.equal(a.tunnel.initiateHandshake(a.out, 100), WgResult.WriteToNetwork);
  assert.equal(deliver(b, take(a.out), 100, ADDR_A), WgResult.WriteToNetwork);
  assert.equal(b.out.messageType, WG_TYPE_COOKIE_REPLY);
  assert.equal(b.out.len, WG_COOKIE_REPLY_LEN);
  assert.equal(b.out.dropReason, DropReason.CookieRequired);
  assert.equal(b.tunnel.hasSession(100), false, "no handshake work was done");
});

Deno.test("HandshakeRateLimiter: a peer that processed the cookie reply gets through with MAC2", () => {
  const { a, b } = makePair();
  floodUntilUnderLoad(b, 0);
  assert.equal(a.tunnel.initiateHandshake(a.out, 100), WgResult.WriteToNetwork);
  const init = take(a.out);
  assert.ok(init.subarray(WG_INIT_MAC1_OFF + 16).every((x) => x === 0), "no MAC2 yet");
  assert.equal(deliver(b, init, 100, ADDR_A), WgResult.WriteToNetwork);
  const cookieReply = take(b.out);
  assert.equal(deliver(a, cookieReply, 101), WgResult.Done, "A stores the cookie");
  // A retries after REKEY_TIMEOUT + jitter; B is flooded again in that second.
  let now = 100 + REKEY_TIMEOUT_MS;
  assert.equal(tick(a, now).code, WgResult.Done);
  now = a.tunnel.pollTimeout();
  assert.ok(now <= 100 + REKEY_TIMEOUT_MS + MAX_JITTER_MS);
  floodUntilUnderLoad(b, now);
  const retry = tick(a, now).msg!;
  assert.ok(retry.subarray(WG_INIT_MAC1_OFF + 16).some((x) => x !== 0), "MAC2 is set");
  assert.equal(deliver(b, retry, now, ADDR_A), WgResult.WriteToNetwork);
  assert.equal(b.out.messageType, WG_TYPE_HANDSHAKE_RESPONSE, "accepted despite the load");
  assert.equal(deliver(a, take(b.out), now), WgResult.WriteToNetwork);
  assert.equal(a.tunnel.hasSession(now), true);
});

Deno.test("HandshakeRateLimiter: MAC2 is bound to the source address", () => {
  const { a, b } = makePair();
  floodUntilUnderLoad(b, 0);
  a.tunnel.initiateHandshake(a.out, 100);
  deliver(b, take(a.out), 100, ADDR_A);
  deliver(a, take(b.out), 101);
  const now = 100 + REKEY_TIMEOUT_MS + MAX_JITTER_MS;
  tick(a, 100 + REKEY_TIMEOUT_MS);
  floodUntilUnderLoad(b, now);
  const retry = tick(a, now).msg!;
  // Same message from another address: the cookie does not match, another cookie reply.
  assert.equal(deliver(b, retry, now, socketAddr("203.0.113.9", 4000)), WgResult.WriteToNetwork);
  assert.equal(b.out.messageType, WG_TYPE_COOKIE_REPLY);
});

Deno.test("HandshakeRateLimiter: under load without a source address the message is dropped", () => {
  const { a, b } = makePair();
  floodUntilUnderLoad(b, 0);
  a.tunnel.initiateHandshake(a.out, 10);
  const init = take(a.out);
  const buf = new Uint8Array(256);
  buf.set(init);
  assert.equal(b.tunnel.decapsulate(buf, 0, init.length, null, b.dst, 0, b.out, 10), WgResult.Drop);
  assert.equal(b.out.dropReason, DropReason.RateLimited);
});

Deno.test("HandshakeRateLimiter: the window resets after one second", () => {
  const { a, b } = makePair();
  floodUntilUnderLoad(b, 0);
  assert.equal(b.limiter.isUnderLoad(999), true);
  assert.equal(b.limiter.isUnderLoad(1_000), false);
  a.tunnel.initiateHandshake(a.out, 1_000);
  assert.equal(deliver(b, take(a.out), 1_000, ADDR_A), WgResult.WriteToNetwork);
  assert.equal(b.out.messageType, WG_TYPE_HANDSHAKE_RESPONSE);
});

Deno.test("HandshakeRateLimiter: the limit is per node, shared by all its tunnels", () => {
  // One gateway identity and limiter (limit 3/s), a tunnel per client.
  const gw = new StaticIdentity(noble, testKey(900));
  const limiter = new HandshakeRateLimiter(noble, gw, new SeededRng(5), 0, 3);
  const ids = [new StaticIdentity(noble, testKey(901)), new StaticIdentity(noble, testKey(902))];
  const servers = ids.map((id) => makePeer({ identity: gw, peerPublic: id.publicKey, limiter }));
  const results: number[] = [];
  for (let round = 0; round < 2; round++) {
    for (let k = 0; k < 2; k++) {
      const now = 10 + round * 2 + k; // later wall clock: a fresh TAI64N each time
      const client = makePeer({
        identity: ids[k]!,
        peerPublic: gw.publicKey,
        rngSeed: 40 + round * 2 + k,
        now,
      });
      client.tunnel.initiateHandshake(client.out, now);
      deliver(servers[k]!, take(client.out), now, ADDR_A);
      results.push(servers[k]!.out.messageType);
    }
  }
  // The 4th handshake of the second, on either tunnel, needs a cookie.
  assert.deepEqual(results, [2, 2, 2, 3]);
  assert.equal(limiter.count, 4);
});

Deno.test("HandshakeRateLimiter: the default limit is 100 handshakes per second", () => {
  assert.equal(HANDSHAKE_RATE_LIMIT_PER_S, 100);
  const { b } = makePair();
  floodUntilUnderLoad(b, 0);
  assert.equal(b.limiter.count, HANDSHAKE_RATE_LIMIT_PER_S);
});

Deno.test("Tunnel.decapsulate() rejects a cookie reply it did not ask for", () => {
  const { a, b } = makePair();
  floodUntilUnderLoad(b, 0);
  a.tunnel.initiateHandshake(a.out, 10);
  deliver(b, take(a.out), 10, ADDR_A);
  const reply = take(b.out);
  // A tampered cookie reply does not authenticate.
  const bad = reply.slice();
  bad[40]! ^= 1;
  assert.equal(deliver(a, bad, 11), WgResult.Drop);
  assert.equal(a.out.dropReason, DropReason.DecryptFailed);
  // A tunnel that never sent a handshake message expects no cookie.
  const { a: other } = makePair({ seed: 3 });
  assert.equal(deliver(other, reply, 11), WgResult.Drop);
  assert.equal(other.out.dropReason, DropReason.UnexpectedPacket);
});

/** Replays one valid initiation to `b` until its limiter is at the limit (replays fail later on). */
function floodUntilUnderLoad(b: Peer, now: number): void {
  // Mallory targets B's key so MAC1 is valid; B rejects the message later (wrong key), after counting it.
  const mallory = makePeer({
    identity: new StaticIdentity(noble, testKey(4242)),
    peerPublic: b.identity.publicKey,
    rngSeed: 99,
    now,
  });
  mallory.tunnel.initiateHandshake(mallory.out, now);
  const init = take(mallory.out);
  while (!b.limiter.isUnderLoad(now)) {
    const code = deliver(b, init, now, socketAddr("203.0.113.66", 666));
    assert.equal(code, WgResult.Drop);
    assert.equal(b.out.dropReason, DropReason.WrongKey);
  }
}
