import assert from "node:assert/strict";
import { REPLAY_WINDOW_SIZE, ReplayCheck, ReplayWindow } from "../../../src/wireguard/mod.ts";

const { Ok, Duplicate, TooOld } = ReplayCheck;

Deno.test("ReplayWindow accepts each counter once, in order", () => {
  const w = new ReplayWindow();
  for (let c = 0; c < 3000; c++) {
    assert.equal(w.check(c), Ok);
    assert.equal(w.accept(c), Ok);
    assert.equal(w.accept(c), Duplicate);
  }
  assert.equal(w.last, 2999);
});

Deno.test("ReplayWindow has a window of 1024: last - 1023 is accepted, last - 1024 is too old", () => {
  assert.equal(REPLAY_WINDOW_SIZE, 1024);
  const w = new ReplayWindow();
  assert.equal(w.accept(5000), Ok);
  assert.equal(w.check(5000 - 1023), Ok);
  assert.equal(w.check(5000 - 1024), TooOld);
  assert.equal(w.accept(5000 - 1024), TooOld);
  assert.equal(w.accept(5000 - 1023), Ok);
  assert.equal(w.accept(5000 - 1023), Duplicate);
});

Deno.test("ReplayWindow accepts out-of-order counters within the window exactly once", () => {
  const w = new ReplayWindow();
  assert.equal(w.accept(100), Ok);
  for (const c of [99, 50, 0, 77, 98]) assert.equal(w.accept(c), Ok, `counter ${c}`);
  for (const c of [99, 50, 0, 77, 98, 100]) assert.equal(w.accept(c), Duplicate, `counter ${c} again`);
  assert.equal(w.accept(101), Ok);
  assert.equal(w.accept(1100), Ok);
  assert.equal(w.accept(76), TooOld, "1100 - 76 = 1024");
  assert.equal(w.accept(77), Duplicate, "still inside the window, already seen");
  assert.equal(w.accept(78), Ok, "inside the window, never seen");
});

Deno.test("ReplayWindow forgets bits of recycled blocks after a jump", () => {
  const w = new ReplayWindow();
  for (let c = 0; c < 64; c++) w.accept(c);
  // Jump far ahead: the ring wraps, old bits must not make new counters look replayed.
  assert.equal(w.accept(2048 + 5), Ok);
  for (let c = 2048 + 5 - 1023; c < 2048 + 5; c++) assert.equal(w.check(c), Ok, `counter ${c}`);
  // A jump of less than a ring only clears the blocks in between.
  assert.equal(w.accept(2048 + 40), Ok);
  assert.equal(w.accept(2048 + 5), Duplicate);
  assert.equal(w.accept(2048 + 6), Ok);
});

Deno.test("ReplayWindow handles counters beyond 2^32 without BigInt", () => {
  const w = new ReplayWindow();
  const big = 2 ** 40 + 17;
  assert.equal(w.accept(big), Ok);
  assert.equal(w.accept(big - 1), Ok);
  assert.equal(w.accept(big), Duplicate);
  assert.equal(w.accept(big - 1024), TooOld);
  assert.equal(w.accept(Number.MAX_SAFE_INTEGER), Ok);
  assert.equal(w.accept(Number.MAX_SAFE_INTEGER - 1), Ok);
  assert.equal(w.accept(Number.MAX_SAFE_INTEGER - 1), Duplicate);
});

Deno.test("ReplayWindow matches a simple model on random sequences", () => {
  let x = 12345;
  const rand = (n: number) => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) % n;
  for (let run = 0; run < 20; run++) {
    const w = new ReplayWindow();
    const seen = new Set<number>();
    let last = -1;
    let base = 0;
    for (let i = 0; i < 2000; i++) {
      base += rand(4) === 0 ? rand(40) : 0;
      const c = Math.max(0, base + rand(1200) - 1100 + (rand(50) === 0 ? rand(3000) : 0));
      const expected = c > last ? Ok : last - c >= 1024 ? TooOld : seen.has(c) ? Duplicate : Ok;
      assert.equal(w.accept(c), expected, `run ${run} step ${i} counter ${c} last ${last}`);
      if (expected === Ok) {
        seen.add(c);
        if (c > last) last = c;
      }
    }
  }
});
