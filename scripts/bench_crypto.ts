/**
 * Crypto backend benchmark: ChaCha20-Poly1305 at WireGuard's data-path size (1420-byte payload),
 * in place on one reused buffer, per backend. Prints a table; asserts nothing.
 *
 *     ./scripts/deno run --allow-all scripts/bench_crypto.ts [--seconds=2] [--lib=libcrypto.so.3]
 *
 * @module
 */

// deno-lint-ignore-file no-console

import { openLibcrypto } from "../ffi/libcrypto.ts";
import type { CryptoBackend } from "../src/crypto/backend.ts";
import { AEAD_TAG_LEN } from "../src/crypto/backend.ts";
import { createNobleBackend } from "../src/crypto/noble_backend.ts";

const PAYLOAD_LEN = 1420;
const HEADROOM = 16;
const BATCH = 256;

function argValue(name: string, fallback: string): string {
  const arg = Deno.args.find((a) => a.startsWith(`--${name}=`));
  return arg === undefined ? fallback : arg.slice(name.length + 3);
}

interface Result {
  name: string;
  sealUs: number;
  roundTripUs: number;
}

/** Runs `op` in batches until `ms` elapsed; returns µs per call. */
function timeLoop(ms: number, op: (i: number) => void): number {
  let calls = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < BATCH; i++) op(calls + i);
    calls += BATCH;
    now = performance.now();
  }
  return ((now - start) * 1000) / calls;
}

function bench(backend: CryptoBackend, seconds: number): Result {
  const key = backend.aeadKey(new Uint8Array(32).fill(0x42));
  const buf = new Uint8Array(HEADROOM + PAYLOAD_LEN + AEAD_TAG_LEN);
  for (let i = 0; i < PAYLOAD_LEN; i++) buf[HEADROOM + i] = i & 0xff;
  const budgetMs = seconds * 1000;

  function roundTrip(counter: number): void {
    key.seal(counter, null, buf, HEADROOM, PAYLOAD_LEN);
    if (key.open(counter, null, buf, HEADROOM, PAYLOAD_LEN + AEAD_TAG_LEN) !== PAYLOAD_LEN) {
      throw new Error(`${backend.name}: open failed`);
    }
  }

  timeLoop(budgetMs * 0.1, roundTrip); // warm-up (JIT)
  const roundTripUs = timeLoop(budgetMs * 0.6, roundTrip);
  // Seal alone keeps encrypting the previous ciphertext: the cost is the same, the data irrelevant.
  const sealUs = timeLoop(budgetMs * 0.3, (c) => key.seal(c, null, buf, HEADROOM, PAYLOAD_LEN));
  key.dispose();
  return { name: backend.name, sealUs, roundTripUs };
}

const seconds = Number(argValue("seconds", "2"));
const libPath = argValue("lib", "libcrypto.so.3");
const backends: CryptoBackend[] = [createNobleBackend()];
try {
  backends.push(openLibcrypto(libPath));
} catch (err) {
  console.log(`openssl backend unavailable: ${err instanceof Error ? err.message : err}`);
}

const results = backends.map((b) => bench(b, seconds));
const pad = (s: string, n: number) => s.padStart(n);
console.log(`ChaCha20-Poly1305, ${PAYLOAD_LEN}-byte payload, in place, ~${seconds} s per backend`);
console.log(
  `${"backend".padEnd(8)} ${pad("seal µs", 9)} ${pad("seal+open µs", 13)} ${pad("seal+open pkt/s", 16)} ${
    pad("Gbit/s (seal)", 14)
  }`,
);
for (const r of results) {
  const pps = 1e6 / r.roundTripUs;
  const gbps = (PAYLOAD_LEN * 8) / (r.sealUs * 1000);
  console.log(
    `${r.name.padEnd(8)} ${pad(r.sealUs.toFixed(3), 9)} ${pad(r.roundTripUs.toFixed(3), 13)} ${
      pad(Math.round(pps).toLocaleString("en-US"), 16)
    } ${pad(gbps.toFixed(2), 14)}`,
  );
}
const noble = results.find((r) => r.name === "noble");
const openssl = results.find((r) => r.name === "openssl");
if (noble !== undefined && openssl !== undefined) {
  console.log(
    `openssl/noble speed-up: seal ${(noble.sealUs / openssl.sealUs).toFixed(1)}x, seal+open ${
      (noble.roundTripUs / openssl.roundTripUs).toFixed(1)
    }x`,
  );
}
