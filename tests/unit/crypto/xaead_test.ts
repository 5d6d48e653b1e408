import assert from "node:assert/strict";
import { BACKENDS, hex, toHex, VECTORS } from "./_support.ts";

const V = VECTORS.xchacha20poly1305_draft03_a31;

for (const { name, backend } of BACKENDS) {
  const ignore = backend === null;

  Deno.test({
    name: `[${name}] xaeadSeal() matches draft-irtf-cfrg-xchacha-03 §A.3.1`,
    ignore,
    fn() {
      const sealed = backend!.xaeadSeal(hex(V.key), hex(V.nonce), hex(V.aad), hex(V.plaintext));
      assert.equal(toHex(sealed), V.ciphertext + V.tag);
    },
  });

  Deno.test({
    name: `[${name}] xaeadOpen() opens the §A.3.1 vector and returns null when anything is altered`,
    ignore,
    fn() {
      const sealed = hex(V.ciphertext + V.tag);
      assert.equal(toHex(backend!.xaeadOpen(hex(V.key), hex(V.nonce), hex(V.aad), sealed)!), V.plaintext);
      assert.equal(toHex(sealed), V.ciphertext + V.tag, "input not modified");

      const badCt = sealed.slice();
      badCt[0]! ^= 1;
      assert.equal(backend!.xaeadOpen(hex(V.key), hex(V.nonce), hex(V.aad), badCt), null);
      const badNonce = hex(V.nonce);
      badNonce[23]! ^= 1;
      assert.equal(backend!.xaeadOpen(hex(V.key), badNonce, hex(V.aad), sealed), null);
      assert.equal(backend!.xaeadOpen(hex(V.key), hex(V.nonce), new Uint8Array(0), sealed), null);
      assert.equal(backend!.xaeadOpen(hex(V.key), hex(V.nonce), hex(V.aad), new Uint8Array(15)), null);
    },
  });

  Deno.test({
    name: `[${name}] xaead round-trips a WireGuard cookie (16 bytes, 16-byte AAD) and rejects bad sizes`,
    ignore,
    fn() {
      const key = new Uint8Array(32).fill(3);
      const nonce = new Uint8Array(24).map((_, i) => i);
      const cookie = new Uint8Array(16).fill(0xcc);
      const mac1 = new Uint8Array(16).fill(0x11);
      const sealed = backend!.xaeadSeal(key, nonce, mac1, cookie);
      assert.equal(sealed.length, 32);
      assert.deepEqual(backend!.xaeadOpen(key, nonce, mac1, sealed), cookie);
      assert.throws(() => backend!.xaeadSeal(key, new Uint8Array(12), mac1, cookie), TypeError);
      assert.throws(() => backend!.xaeadSeal(new Uint8Array(16), nonce, mac1, cookie), TypeError);
    },
  });
}
