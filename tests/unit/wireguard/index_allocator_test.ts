import assert from "node:assert/strict";
import { SeededRng } from "../../../src/rng.ts";
import {
  connectionIndexOf,
  INDEX_VALUE_MAX,
  IndexAllocator,
  makeWireIndex,
  sessionCounterOf,
  SessionIndex,
} from "../../../src/wireguard/mod.ts";

Deno.test("IndexAllocator hands out distinct 24-bit values", () => {
  const alloc = new IndexAllocator(new SeededRng(3));
  const seen = new Set<number>();
  for (let i = 0; i < 100_000; i++) {
    const v = alloc.next();
    assert.ok(Number.isInteger(v) && v >= 0 && v <= INDEX_VALUE_MAX, `value ${v}`);
    assert.equal(seen.has(v), false, `duplicate ${v} after ${i}`);
    seen.add(v);
  }
});

Deno.test("IndexAllocator's LFSR (0xD80000) has the full period 2^24 - 1, then refuses", () => {
  const alloc = new IndexAllocator(new SeededRng(11));
  const seen = new Uint8Array(INDEX_VALUE_MAX + 1);
  let duplicates = 0;
  for (let i = 0; i < INDEX_VALUE_MAX; i++) {
    const v = alloc.next();
    duplicates += seen[v]!;
    seen[v] = 1;
  }
  assert.equal(duplicates, 0);
  assert.throws(() => alloc.next(), RangeError);
});

Deno.test("IndexAllocator sequences depend on the seed", () => {
  const a = new IndexAllocator(new SeededRng(1));
  const b = new IndexAllocator(new SeededRng(2));
  assert.notDeepEqual([a.next(), a.next(), a.next()], [b.next(), b.next(), b.next()]);
});

Deno.test("Wire index layout: (value << 8) | counter, routed by >>> 8", () => {
  const idx = makeWireIndex(0xabcdef, 0x12);
  assert.equal(idx, 0xabcdef12);
  assert.equal(connectionIndexOf(idx), 0xabcdef);
  assert.equal(sessionCounterOf(idx), 0x12);
  assert.equal(connectionIndexOf(0xffffffff), 0xffffff, "unsigned shift, no sign");
});

Deno.test("SessionIndex wraps the 8-bit counter and never changes the connection part", () => {
  const s = new SessionIndex(0xfedcba);
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 256; i++) {
      const idx = s.next();
      assert.equal(sessionCounterOf(idx), i);
      assert.equal(connectionIndexOf(idx), 0xfedcba);
    }
  }
  assert.throws(() => new SessionIndex(0x1000000), RangeError);
});
