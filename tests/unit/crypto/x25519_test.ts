import assert from "node:assert/strict";
import { BACKENDS, hex, toHex, VECTORS } from "./_support.ts";

/** Low-order u-coordinates (order 1, 2, 4, 8 on the curve and its twist): X25519 gives all zeros. */
const LOW_ORDER_POINTS = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
  "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

for (const { name, backend } of BACKENDS) {
  const ignore = backend === null;

  Deno.test({
    name: `[${name}] x25519() matches the RFC 7748 §5.2 vectors (including a u with bit 255 set)`,
    ignore,
    fn() {
      for (const v of VECTORS.x25519_rfc7748_5_2) {
        assert.equal(toHex(backend!.x25519(hex(v.scalar), hex(v.u))!), v.out);
      }
    },
  });

  Deno.test({
    name: `[${name}] x25519() matches the RFC 7748 §5.2 iterated vector after 1 and 1000 rounds`,
    ignore,
    fn() {
      let k: Uint8Array = hex("09" + "00".repeat(31));
      let u: Uint8Array = k.slice();
      for (let i = 1; i <= 1000; i++) {
        const r = backend!.x25519(k, u)!;
        u = k;
        k = r;
        if (i === 1) assert.equal(toHex(k), VECTORS.x25519_rfc7748_iterated.after1);
      }
      assert.equal(toHex(k), VECTORS.x25519_rfc7748_iterated.after1000);
    },
  });

  Deno.test({
    name: `[${name}] x25519PublicKey() and x25519() reproduce the RFC 7748 §6.1 Diffie-Hellman example`,
    ignore,
    fn() {
      const v = VECTORS.x25519_rfc7748_6_1;
      assert.equal(toHex(backend!.x25519PublicKey(hex(v.alice_private))), v.alice_public);
      assert.equal(toHex(backend!.x25519PublicKey(hex(v.bob_private))), v.bob_public);
      assert.equal(toHex(backend!.x25519(hex(v.alice_private), hex(v.bob_public))!), v.shared);
      assert.equal(toHex(backend!.x25519(hex(v.bob_private), hex(v.alice_public))!), v.shared);
    },
  });

  Deno.test({
    name: `[${name}] x25519() returns null for low-order public keys (all-zero shared secret)`,
    ignore,
    fn() {
      const priv = hex(VECTORS.x25519_rfc7748_6_1.alice_private);
      for (const p of LOW_ORDER_POINTS) {
        assert.equal(backend!.x25519(priv, hex(p)), null, p);
      }
    },
  });

  Deno.test({
    name: `[${name}] x25519 functions reject wrong-length keys with a TypeError`,
    ignore,
    fn() {
      assert.throws(() => backend!.x25519PublicKey(new Uint8Array(31)), TypeError);
      assert.throws(() => backend!.x25519(new Uint8Array(32), new Uint8Array(33)), TypeError);
      assert.throws(() => backend!.x25519(new Uint8Array(16), new Uint8Array(32)), TypeError);
    },
  });
}
