import assert from "node:assert/strict";
import {
  DNS_CACHE_TTL_MS,
  ResolutionCache,
  ResolutionLimitError,
} from "../../../src/dns/resolution_cache.ts";

/** A resolver whose calls are counted and settled by the test. */
function controlledResolver() {
  const calls: { key: string; resolve: (v: string[]) => void; reject: (e: Error) => void }[] = [];
  const fn = (key: string) =>
    new Promise<string[]>((resolve, reject) => {
      calls.push({ key, resolve, reject });
    });
  return { calls, fn };
}

Deno.test("ResolutionCache.get() coalesces concurrent lookups of one key into one resolver call", async () => {
  const now = 0;
  const cache = new ResolutionCache<string[]>({ clock: () => now });
  const r = controlledResolver();
  const a = cache.get("example.com", r.fn);
  const b = cache.get("example.com", r.fn);
  assert.equal(r.calls.length, 1);
  assert.equal(cache.pending, 2);
  assert.equal(cache.inFlight, 1);
  r.calls[0]!.resolve(["1.2.3.4"]);
  assert.deepEqual(await a, ["1.2.3.4"]);
  assert.deepEqual(await b, ["1.2.3.4"]);
  assert.equal(cache.pending, 0);
  assert.equal(cache.inFlight, 0);
});

Deno.test("ResolutionCache.get() serves from the cache for 30 s after the lookup finished", async () => {
  let now = 1_000;
  const cache = new ResolutionCache<string[]>({ clock: () => now });
  const r = controlledResolver();
  const first = cache.get("example.com", r.fn);
  now = 1_500; // the lookup takes 500 ms; the TTL counts from its end
  r.calls[0]!.resolve(["1.2.3.4"]);
  await first;
  now = 1_500 + DNS_CACHE_TTL_MS - 1;
  assert.deepEqual(await cache.get("example.com", r.fn), ["1.2.3.4"]);
  assert.equal(r.calls.length, 1);
  assert.deepEqual(cache.peek("example.com"), ["1.2.3.4"]);
  now = 1_500 + DNS_CACHE_TTL_MS;
  assert.equal(cache.peek("example.com"), undefined);
  const again = cache.get("example.com", r.fn);
  assert.equal(r.calls.length, 2, "expired entry triggers a new lookup");
  r.calls[1]!.resolve(["5.6.7.8"]);
  assert.deepEqual(await again, ["5.6.7.8"]);
});

Deno.test("ResolutionCache.get() does not cache failures", async () => {
  const now = 0;
  const cache = new ResolutionCache<string[]>({ clock: () => now });
  const r = controlledResolver();
  const a = cache.get("bad.example", r.fn);
  const b = cache.get("bad.example", r.fn);
  r.calls[0]!.reject(new Error("NXDOMAIN"));
  await assert.rejects(a, /NXDOMAIN/);
  await assert.rejects(b, /NXDOMAIN/);
  assert.equal(cache.size, 0);
  const c = cache.get("bad.example", r.fn);
  assert.equal(r.calls.length, 2, "the next request looks up again");
  r.calls[1]!.resolve(["9.9.9.9"]);
  assert.deepEqual(await c, ["9.9.9.9"]);
});

Deno.test("ResolutionCache.get() turns a synchronous throw of the resolver into a rejection", async () => {
  const cache = new ResolutionCache<string[]>({ clock: () => 0 });
  await assert.rejects(
    cache.get("x", () => {
      throw new Error("boom");
    }),
    /boom/,
  );
  assert.equal(cache.pending, 0);
  assert.equal(cache.inFlight, 0);
});

Deno.test("ResolutionCache.get() refuses requests beyond the concurrency cap; hits still answer", async () => {
  const cache = new ResolutionCache<string[]>({ clock: () => 0, maxConcurrent: 3 });
  const r = controlledResolver();
  const warm = cache.get("cached.example", r.fn);
  r.calls[0]!.resolve(["1.1.1.1"]);
  await warm;
  const waiting = [cache.get("a", r.fn), cache.get("b", r.fn), cache.get("a", r.fn)];
  assert.equal(cache.pending, 3);
  await assert.rejects(
    cache.get("c", r.fn),
    (e: unknown) => e instanceof ResolutionLimitError && e.limit === 3,
  );
  await assert.rejects(cache.get("a", r.fn), ResolutionLimitError, "coalesced requests count too");
  assert.equal(r.calls.length, 3, "no resolver call for refused requests");
  assert.deepEqual(await cache.get("cached.example", r.fn), ["1.1.1.1"]);
  r.calls[1]!.resolve(["10.0.0.1"]);
  r.calls[2]!.resolve(["10.0.0.2"]);
  await Promise.all(waiting);
  assert.equal(cache.pending, 0);
  const more = cache.get("c", r.fn);
  assert.equal(r.calls.length, 4, "room again once requests finished");
  r.calls[3]!.resolve(["10.0.0.3"]);
  await more;
});

Deno.test("ResolutionCache sweeps expired entries", async () => {
  let now = 0;
  const cache = new ResolutionCache<string[]>({ clock: () => now, ttlMs: 100 });
  await cache.get("a", () => Promise.resolve(["1.1.1.1"]));
  await cache.get("b", () => Promise.resolve(["2.2.2.2"]));
  assert.equal(cache.size, 2);
  now = 250;
  await cache.get("c", () => Promise.resolve(["3.3.3.3"]));
  assert.equal(cache.size, 1);
});
