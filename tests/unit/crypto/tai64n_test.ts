import assert from "node:assert/strict";
import { compareTai64n, encodeTai64n, isTai64nNewer, TAI64N_LEN } from "../../../src/crypto/tai64n.ts";
import { toHex } from "./_support.ts";

Deno.test("encodeTai64n() encodes a known instant (2023-11-14T22:13:20.123456789Z)", () => {
  // 1_700_000_000 s + 10 = 0x6553f10a; 123_456_789 ns = 0x075bcd15.
  const t = encodeTai64n(1_700_000_000_123, 456_789);
  assert.equal(t.length, TAI64N_LEN);
  assert.equal(toHex(t), "400000006553f10a075bcd15");
});

Deno.test("encodeTai64n() puts the Unix epoch at label 2^62 + 10", () => {
  assert.equal(toHex(encodeTai64n(0)), "400000000000000a00000000");
  assert.equal(toHex(encodeTai64n(999, 999_999)), "400000000000000a3b9ac9ff");
});

Deno.test("encodeTai64n() handles seconds beyond 2^32 and fractional milliseconds", () => {
  // 2^32 s after the epoch: the label's high word becomes 0x40000001.
  assert.equal(toHex(encodeTai64n(2 ** 32 * 1000)), "400000010000000a00000000");
  assert.equal(toHex(encodeTai64n(1000.5)), "400000000000000b0007a120");
});

Deno.test("encodeTai64n() writes into a caller buffer at an offset", () => {
  const buf = new Uint8Array(20).fill(0xee);
  const out = encodeTai64n(1_700_000_000_123, 456_789, buf, 4);
  assert.equal(out, buf);
  assert.equal(toHex(buf), "eeeeeeee400000006553f10a075bcd15eeeeeeee");
  assert.throws(() => encodeTai64n(0, 0, buf, 10), RangeError);
});

Deno.test("encodeTai64n() rejects negative or non-finite times and out-of-range nanoseconds", () => {
  assert.throws(() => encodeTai64n(-1), RangeError);
  assert.throws(() => encodeTai64n(Number.NaN), RangeError);
  assert.throws(() => encodeTai64n(Infinity), RangeError);
  assert.throws(() => encodeTai64n(0, 1_000_000), RangeError);
  assert.throws(() => encodeTai64n(0, -1), RangeError);
});

Deno.test("compareTai64n()/isTai64nNewer() order timestamps and reject non-increasing ones", () => {
  const a = encodeTai64n(1_700_000_000_000);
  const b = encodeTai64n(1_700_000_000_000, 1);
  const c = encodeTai64n(1_700_000_001_000);
  assert.ok(compareTai64n(a, b) < 0);
  assert.ok(compareTai64n(c, b) > 0);
  assert.equal(compareTai64n(a, a.slice()), 0);
  assert.equal(isTai64nNewer(b, a), true);
  assert.equal(isTai64nNewer(a, a.slice()), false, "equal is a replay");
  assert.equal(isTai64nNewer(a, c), false, "older is a replay");
  assert.equal(isTai64nNewer(a, null), true, "first initiation");

  // Monotonic over a run of increasing instants, including a seconds carry.
  let prev: Uint8Array | null = null;
  for (const ms of [999, 1000, 1001, 59_999, 60_000, 2 ** 32 * 1000 - 1, 2 ** 32 * 1000]) {
    const t = encodeTai64n(ms);
    assert.ok(isTai64nNewer(t, prev), `${ms}`);
    prev = t;
  }
  const buf = new Uint8Array(30);
  encodeTai64n(5000, 0, buf, 3);
  encodeTai64n(4000, 0, buf, 17);
  assert.ok(compareTai64n(buf, buf, 3, 17) > 0);
});
