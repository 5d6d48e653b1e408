import assert from "node:assert/strict";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { AEAD_TAG_LEN } from "../../../src/crypto/backend.ts";
import { type AeadKeyWithNonce, hasExplicitNonce, writeWgNonce } from "../../../src/crypto/aead_nonce.ts";
import { BACKENDS, hex, hexFixture, toHex, VECTORS } from "./_support.ts";
import type { CryptoBackend } from "../../../src/crypto/backend.ts";

function explicitKey(backend: CryptoBackend, key: Uint8Array): AeadKeyWithNonce {
  const k = backend.aeadKey(key);
  assert.ok(hasExplicitNonce(k), "built-in keys support explicit nonces");
  return k;
}

/** Independent reference: noble's own chacha20poly1305 wrapper with WireGuard's nonce layout. */
function referenceSeal(key: Uint8Array, counter: number, aad: Uint8Array | null, pt: Uint8Array): Uint8Array {
  const nonce = new Uint8Array(12);
  writeWgNonce(nonce, counter);
  return chacha20poly1305(key, nonce, aad ?? undefined).encrypt(pt);
}

Deno.test("writeWgNonce() lays out 4 zero bytes and a little-endian 64-bit counter", () => {
  const n = new Uint8Array(12).fill(0xff);
  writeWgNonce(n, 2 ** 32 + 5);
  assert.equal(toHex(n), "000000000500000001000000");
  writeWgNonce(n, Number.MAX_SAFE_INTEGER);
  assert.equal(toHex(n), "00000000ffffffffffff1f00");
  writeWgNonce(n, 0x01020304);
  assert.equal(toHex(n), "000000000403020100000000");
});

for (const { name, backend } of BACKENDS) {
  const ignore = backend === null;

  Deno.test({
    name: `[${name}] AeadKey seals the RFC 8439 §2.8.2 vector in place`,
    ignore,
    fn() {
      const key = explicitKey(backend!, hexFixture("aead_chacha20poly1305_1_key"));
      const pt = hexFixture("aead_chacha20poly1305_1_plaintext");
      const buf = new Uint8Array(pt.length + AEAD_TAG_LEN);
      buf.set(pt);
      const n = key.sealWithNonce(
        hexFixture("aead_chacha20poly1305_1_nonce"),
        hexFixture("aead_chacha20poly1305_1_aad"),
        buf,
        0,
        pt.length,
      );
      assert.equal(n, pt.length + AEAD_TAG_LEN);
      assert.equal(
        toHex(buf.subarray(0, pt.length)),
        toHex(hexFixture("aead_chacha20poly1305_1_ciphertext")),
      );
      assert.equal(toHex(buf.subarray(pt.length)), toHex(hexFixture("aead_chacha20poly1305_1_tag")));
      key.dispose();
    },
  });

  Deno.test({
    name: `[${name}] AeadKey opens the RFC 8439 A.5 decryption vector`,
    ignore,
    fn() {
      const v = VECTORS.chacha20poly1305_rfc8439_a5;
      const key = explicitKey(backend!, hex(v.key));
      const ct = hex(v.ciphertext);
      const buf = new Uint8Array(ct.length + AEAD_TAG_LEN);
      buf.set(ct);
      buf.set(hex(v.tag), ct.length);
      const n = key.openWithNonce(hex(v.nonce), hex(v.aad), buf, 0, buf.length);
      assert.equal(n, ct.length);
      assert.equal(toHex(buf.subarray(0, n)), v.plaintext);
      assert.match(new TextDecoder().decode(buf.subarray(0, 15)), /^Internet-Drafts/);
      key.dispose();
    },
  });

  Deno.test({
    name: `[${name}] AeadKey.open() returns -1 for a tampered ciphertext, tag, AAD or counter`,
    ignore,
    fn() {
      const k = new Uint8Array(32).fill(7);
      const key = backend!.aeadKey(k);
      const aad = hex("0102030405");
      const pt = new TextEncoder().encode("a packet that must not be forged");
      const sealed = new Uint8Array(pt.length + AEAD_TAG_LEN);
      sealed.set(pt);
      key.seal(42, aad, sealed, 0, pt.length);

      const cases: [string, (b: Uint8Array) => void, Uint8Array, number][] = [
        ["ciphertext bit", (b) => (b[3]! ^= 0x01), aad, 42],
        ["tag bit", (b) => (b[b.length - 1]! ^= 0x80), aad, 42],
        ["no change, other AAD", () => {}, hex("0102030406"), 42],
        ["no change, other counter", () => {}, aad, 43],
      ];
      for (const [what, mutate, useAad, counter] of cases) {
        const b = sealed.slice();
        mutate(b);
        assert.equal(key.open(counter, useAad, b, 0, b.length), -1, what);
      }
      assert.equal(key.open(42, null, sealed.slice(), 0, sealed.length), -1, "AAD missing");
      assert.equal(key.open(42, aad, sealed.slice(), 0, AEAD_TAG_LEN - 1), -1, "shorter than a tag");
      const ok = sealed.slice();
      assert.equal(key.open(42, aad, ok, 0, ok.length), pt.length);
      assert.deepEqual(ok.subarray(0, pt.length), pt);
      key.dispose();
    },
  });

  Deno.test({
    name: `[${name}] AeadKey works in place at a non-zero offset and leaves the rest of the buffer alone`,
    ignore,
    fn() {
      const k = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
      const key = backend!.aeadKey(k);
      const pt = new Uint8Array(1420);
      for (let i = 0; i < pt.length; i++) pt[i] = (i * 31) & 0xff;
      const off = 37;
      const buf = new Uint8Array(off + pt.length + AEAD_TAG_LEN + 29).fill(0xa5);
      buf.set(pt, off);

      assert.equal(key.seal(9, null, buf, off, pt.length), pt.length + AEAD_TAG_LEN);
      assert.equal(
        toHex(buf.subarray(off, off + pt.length + AEAD_TAG_LEN)),
        toHex(referenceSeal(k, 9, null, pt)),
      );
      assert.ok(buf.subarray(0, off).every((b) => b === 0xa5), "headroom untouched");
      assert.ok(buf.subarray(off + pt.length + AEAD_TAG_LEN).every((b) => b === 0xa5), "tailroom untouched");

      assert.equal(key.open(9, null, buf, off, pt.length + AEAD_TAG_LEN), pt.length);
      assert.deepEqual(buf.subarray(off, off + pt.length), pt);
      assert.ok(buf.subarray(0, off).every((b) => b === 0xa5), "headroom untouched after open");

      // A view with its own byteOffset into a larger ArrayBuffer.
      const big = new Uint8Array(4096);
      const view = big.subarray(100, 100 + 64 + AEAD_TAG_LEN + 8);
      view.set(pt.subarray(0, 64), 5);
      key.seal(10, null, view, 5, 64);
      assert.equal(
        toHex(view.subarray(5, 5 + 64 + AEAD_TAG_LEN)),
        toHex(referenceSeal(k, 10, null, pt.subarray(0, 64))),
      );
      assert.equal(key.open(10, null, big, 105, 64 + AEAD_TAG_LEN), 64);
      assert.deepEqual(big.subarray(105, 105 + 64), pt.subarray(0, 64));
      key.dispose();
    },
  });

  Deno.test({
    name: `[${name}] AeadKey encodes counters above 2^32 into the nonce's high word`,
    ignore,
    fn() {
      const k = new Uint8Array(32).fill(0x42);
      const key = backend!.aeadKey(k);
      const pt = new TextEncoder().encode("counter beyond 32 bits");
      for (const counter of [2 ** 32 - 1, 2 ** 32, 2 ** 32 + 5, 2 ** 48 + 3, Number.MAX_SAFE_INTEGER]) {
        const buf = new Uint8Array(pt.length + AEAD_TAG_LEN);
        buf.set(pt);
        key.seal(counter, null, buf, 0, pt.length);
        assert.equal(toHex(buf), toHex(referenceSeal(k, counter, null, pt)), `counter ${counter}`);
        // 2^32 + 5 must not alias counter 5 (a 32-bit truncation bug).
        if (counter === 2 ** 32 + 5) assert.notEqual(toHex(buf), toHex(referenceSeal(k, 5, null, pt)));
        assert.equal(key.open(counter, null, buf, 0, buf.length), pt.length);
        assert.deepEqual(buf.subarray(0, pt.length), pt);
      }
      key.dispose();
    },
  });

  Deno.test({
    name: `[${name}] AeadKey seals an empty payload (keepalive) to a bare tag`,
    ignore,
    fn() {
      const k = new Uint8Array(32).fill(1);
      const key = backend!.aeadKey(k);
      const buf = new Uint8Array(AEAD_TAG_LEN);
      assert.equal(key.seal(3, null, buf, 0, 0), AEAD_TAG_LEN);
      assert.equal(toHex(buf), toHex(referenceSeal(k, 3, null, new Uint8Array(0))));
      assert.equal(key.open(3, null, buf, 0, AEAD_TAG_LEN), 0);
      buf[0]! ^= 1;
      assert.equal(key.open(3, null, buf, 0, AEAD_TAG_LEN), -1);
      key.dispose();
    },
  });

  Deno.test({
    name: `[${name}] AeadKey reuses one key for many packets in both directions`,
    ignore,
    fn() {
      const k = new Uint8Array(32).fill(9);
      const sender = backend!.aeadKey(k);
      const receiver = backend!.aeadKey(k);
      const buf = new Uint8Array(256);
      for (let counter = 0; counter < 200; counter++) {
        const len = counter % 200;
        for (let i = 0; i < len; i++) buf[16 + i] = (counter + i) & 0xff;
        const aad = counter % 3 === 0 ? new Uint8Array([counter & 0xff]) : null;
        assert.equal(sender.seal(counter, aad, buf, 16, len), len + AEAD_TAG_LEN);
        assert.equal(receiver.open(counter, aad, buf, 16, len + AEAD_TAG_LEN), len);
        for (let i = 0; i < len; i++) assert.equal(buf[16 + i], (counter + i) & 0xff);
        // The same key object also works the other way round (separate contexts per direction).
        assert.equal(receiver.seal(counter, aad, buf, 16, len), len + AEAD_TAG_LEN);
        assert.equal(sender.open(counter, aad, buf, 16, len + AEAD_TAG_LEN), len);
      }
      sender.dispose();
      receiver.dispose();
    },
  });

  Deno.test({
    name: `[${name}] AeadKey rejects bad keys, nonces and ranges, and use after dispose()`,
    ignore,
    fn() {
      assert.throws(() => backend!.aeadKey(new Uint8Array(31)), TypeError);
      const key = explicitKey(backend!, new Uint8Array(32));
      assert.throws(() => key.sealWithNonce(new Uint8Array(8), null, new Uint8Array(32), 0, 0), TypeError);
      const buf = new Uint8Array(40);
      assert.throws(() => key.seal(0, null, buf, 0, 30), RangeError, "no tailroom for the tag");
      assert.throws(() => key.seal(0, null, buf, -1, 4), RangeError);
      assert.throws(() => key.open(0, null, buf, 30, 20), RangeError);
      assert.ok(buf.every((b) => b === 0), "nothing written on a range error");
      key.dispose();
      key.dispose(); // idempotent
      assert.throws(() => key.seal(0, null, buf, 0, 8));
    },
  });
}
