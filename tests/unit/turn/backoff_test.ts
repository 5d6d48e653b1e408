import assert from "node:assert/strict";
import {
  ExponentialBackoff,
  requestBackoff,
  requestBackoffSteps,
  singleAttemptBackoff,
} from "../../../src/turn/backoff.ts";

Deno.test("requestBackoff() triggers at +1, +2.5, +4.75, +8.125 s and expires at 8 s (backoff_steps)", () => {
  let now = 5_000;
  const b = requestBackoff(now);
  const steps = new Set<number>();
  while (!b.isExpired(now)) {
    now += 100; // updated more often than the interval
    b.handleTimeout(now);
    steps.add(b.nextTrigger);
  }
  assert.deepEqual([...steps], requestBackoffSteps(5_000));
  assert.deepEqual(requestBackoffSteps(0), [1_000, 2_500, 4_750, 8_125]);
  assert.ok(!b.isExpired(12_999));
  assert.ok(b.isExpired(13_000));
});

Deno.test("singleAttemptBackoff() is expired at its first trigger", () => {
  const b = singleAttemptBackoff(0);
  assert.equal(b.nextTrigger, 1_000);
  assert.ok(!b.isExpired(999));
  assert.ok(b.isExpired(1_000));
  b.handleTimeout(1_000);
  assert.equal(b.nextTrigger, 1_000, "an expired backoff does not advance");
});

Deno.test("ExponentialBackoff.handleTimeout() ignores early calls", () => {
  const b = new ExponentialBackoff(0, 1_000, 8_000);
  b.handleTimeout(999);
  assert.equal(b.nextTrigger, 1_000);
  b.handleTimeout(1_000);
  assert.equal(b.nextTrigger, 2_500);
  assert.equal(b.intervalMs, 1_500);
});
