import assert from "node:assert/strict";
import fc from "fast-check";
import {
  CandidatePair,
  CheckState,
  comparePairPriority,
  NominationState,
  pairPriority,
  pairPriorityValue,
} from "../../../src/ice/pair.ts";
import {
  ACTIVE_STUN_TIMING,
  iceTimeoutMs,
  IDLE_STUN_TIMING,
  stunResendDelayMs,
} from "../../../src/ice/stun_timing.ts";

function reference(g: number, d: number): bigint {
  const min = BigInt(Math.min(g, d));
  const max = BigInt(Math.max(g, d));
  return (1n << 32n) * min + 2n * max + (g > d ? 1n : 0n);
}

Deno.test("pairPriority() equals RFC 8445's 64-bit formula exactly", () => {
  assert.equal(pairPriorityValue(pairPriority(2130706175, 1694498559)), reference(2130706175, 1694498559));
  assert.equal(pairPriorityValue(pairPriority(1694498559, 2130706175)), reference(1694498559, 2130706175));
  // Beyond 2^53: a plain double would round this.
  const big = pairPriorityValue(pairPriority(0x7fffffff, 0x7ffffffe));
  assert.equal(big, reference(0x7fffffff, 0x7ffffffe));
  assert.ok(big > BigInt(Number.MAX_SAFE_INTEGER));
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 0x7fffffff }), fc.integer({ min: 1, max: 0x7fffffff }), (g, d) => {
      assert.equal(pairPriorityValue(pairPriority(g, d)), reference(g, d));
    }),
  );
});

Deno.test("comparePairPriority() orders like the 64-bit values", () => {
  const prio = fc.integer({ min: 1, max: 0x7fffffff });
  fc.assert(
    fc.property(prio, prio, prio, prio, (a, b, c, d) => {
      const cmp = Math.sign(comparePairPriority(pairPriority(a, b), pairPriority(c, d)));
      const r1 = reference(a, b);
      const r2 = reference(c, d);
      assert.equal(cmp, r1 === r2 ? 0 : r1 > r2 ? 1 : -1);
    }),
  );
  // Neighbours that differ only in the last bit (which side is larger) still order.
  assert.ok(comparePairPriority(pairPriority(5, 4), pairPriority(4, 5)) > 0);
  // host/host beats host/srflx beats relay/relay.
  const hostHost = pairPriority(2130706175, 2130706175);
  const hostSrflx = pairPriority(1694498559, 2130706175);
  const relayRelay = pairPriority(37748479, 37748479);
  const sorted = [relayRelay, hostHost, hostSrflx].sort((x, y) => comparePairPriority(y, x));
  assert.deepEqual(sorted, [hostHost, hostSrflx, relayRelay]);
});

Deno.test("stunResendDelayMs() doubles from the initial RTO up to the max RTO", () => {
  const t = ACTIVE_STUN_TIMING;
  assert.deepEqual([0, 1, 2, 3, 4, 5, 12, 40].map((n) => stunResendDelayMs(t, n)), [
    0,
    250,
    500,
    1000,
    1500,
    1500,
    1500,
    1500,
  ]);
  assert.equal(stunResendDelayMs(IDLE_STUN_TIMING, 1), 25_000);
  assert.equal(stunResendDelayMs(IDLE_STUN_TIMING, 4), 25_000);
});

Deno.test("iceTimeoutMs() is 15 250 ms active (default_ice_timeout) and 100 s idle (idle_ice_timeout)", () => {
  assert.equal(iceTimeoutMs(ACTIVE_STUN_TIMING), 15_250);
  assert.equal(iceTimeoutMs(IDLE_STUN_TIMING), 100_000);
});

Deno.test("CandidatePair: an unanswered pair retransmits on the back-off and dies at the ICE timeout", () => {
  const t = ACTIVE_STUN_TIMING;
  const pair = new CandidatePair(1, 0, 0, pairPriority(1, 2));
  const sentAt: number[] = [];
  let now = 1000;
  for (let i = 0; i < 12; i++) {
    const due = pair.nextAttemptAt(now, t);
    now = Math.max(now, due);
    assert.ok(pair.isStillPossible(now, t));
    pair.newAttempt(now, `tx${i}`, t);
    sentAt.push(now - 1000);
  }
  assert.deepEqual(sentAt, [0, 250, 750, 1750, 3250, 4750, 6250, 7750, 9250, 10750, 12250, 13750]);
  assert.equal(pair.attemptCount, 12);
  assert.equal(pair.state, CheckState.InProgress);
  assert.ok(pair.isStillPossible(1000 + 15_249, t));
  assert.ok(!pair.isStillPossible(1000 + 15_250, t));
  assert.equal(pair.nextAttemptAt(now, t), 1000 + 15_250);
});

Deno.test("CandidatePair: a succeeded pair is re-checked every max RTO and remembers only the window", () => {
  const t = ACTIVE_STUN_TIMING;
  const pair = new CandidatePair(1, 0, 0, pairPriority(1, 2));
  let now = 0;
  const dropped: string[] = [];
  for (let i = 0; i < 20; i++) {
    now = Math.max(now, pair.nextAttemptAt(now, t));
    const d = pair.newAttempt(now, `tx${i}`, t);
    if (d) dropped.push(d);
    pair.recordResponse(now + 5, `tx${i}`, 0);
  }
  assert.equal(pair.state, CheckState.Succeeded);
  assert.equal(pair.attemptCount, 12);
  assert.deepEqual(dropped, ["tx0", "tx1", "tx2", "tx3", "tx4", "tx5", "tx6", "tx7"]);
  assert.ok(!pair.hasAttempt("tx7") && pair.hasAttempt("tx8"));
  const last = now;
  assert.equal(pair.nextAttemptAt(last + 5, t), last + 1500);
});

Deno.test("CandidatePair: nomination jumps the queue and completes on the nominating check's answer", () => {
  const t = ACTIVE_STUN_TIMING;
  const pair = new CandidatePair(1, 0, 0, pairPriority(1, 2));
  pair.newAttempt(0, "a", t);
  pair.recordResponse(10, "a", 0);
  assert.equal(pair.nextAttemptAt(10, t), 250);
  pair.nominate();
  assert.equal(pair.nomination, NominationState.Nominated);
  assert.ok(pair.nextAttemptAt(10, t) <= 10, "a nominated pair is due at once");
  pair.newAttempt(10, "b", t);
  assert.equal(pair.nomination, NominationState.Attempt);
  assert.equal(pair.recordResponse(20, "a", 0), false, "a late answer to a plain check does not complete it");
  assert.equal(pair.recordResponse(20, "b", 0), true);
  assert.equal(pair.nomination, NominationState.Success);
});
