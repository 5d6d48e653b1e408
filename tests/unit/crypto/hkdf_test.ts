import assert from "node:assert/strict";
import { hmacBlake2s, kdf1, kdf2, kdf3 } from "../../../src/crypto/hkdf.ts";
import { BACKENDS, hex, toHex, VECTORS } from "./_support.ts";

for (const { name, backend } of BACKENDS) {
  const ignore = backend === null;

  Deno.test({
    name: `[${name}] hmacBlake2s() matches an independent HMAC-BLAKE2s (short and over-long keys)`,
    ignore,
    fn() {
      for (const v of VECTORS.hmac_blake2s) {
        assert.equal(toHex(hmacBlake2s(backend!, hex(v.key), hex(v.input))), v.out);
      }
      const v = VECTORS.hmac_blake2s[0];
      const input = hex(v.input);
      assert.equal(toHex(hmacBlake2s(backend!, hex(v.key), input.subarray(0, 5), input.subarray(5))), v.out);
    },
  });

  Deno.test({
    name: `[${name}] kdf1/kdf2/kdf3 match the WireGuard paper's HKDF (τ0 = HMAC(key, input), τi chained)`,
    ignore,
    fn() {
      for (const v of VECTORS.kdf) {
        const key = hex(v.key);
        const input = hex(v.input);
        assert.deepEqual(kdf3(backend!, key, input).map(toHex), v.t);
        assert.deepEqual(kdf2(backend!, key, input).map(toHex), v.t.slice(0, 2));
        assert.equal(toHex(kdf1(backend!, key, input)), v.t[0]);
      }
    },
  });

  Deno.test({
    name: `[${name}] kdf outputs are consistent with hmacBlake2s step by step`,
    ignore,
    fn() {
      const key = new Uint8Array(32).fill(0x5a);
      const input = new TextEncoder().encode("ephemeral");
      const t0 = hmacBlake2s(backend!, key, input);
      const t1 = hmacBlake2s(backend!, t0, new Uint8Array([1]));
      const t2 = hmacBlake2s(backend!, t0, t1, new Uint8Array([2]));
      const t3 = hmacBlake2s(backend!, t0, t2, new Uint8Array([3]));
      assert.deepEqual(kdf3(backend!, key, input), [t1, t2, t3]);
      assert.deepEqual(kdf1(backend!, key, input), t1);
      assert.notEqual(toHex(t1), toHex(t2));
    },
  });

  Deno.test({
    name: `[${name}] blake2s256 yields WireGuard's initial chaining key and hash`,
    ignore,
    fn() {
      const w = VECTORS.wireguard_initial;
      const ck = backend!.blake2s256(hex(w.construction));
      assert.equal(toHex(ck), w.chaining_key);
      assert.equal(toHex(backend!.blake2s256(ck, hex(w.identifier))), w.hash);
      assert.equal(new TextDecoder().decode(hex(w.construction)), "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s");
    },
  });
}
