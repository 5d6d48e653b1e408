import assert from "node:assert/strict";
import { BACKENDS, hex, toHex, VECTORS } from "./_support.ts";

for (const { name, backend } of BACKENDS) {
  const ignore = backend === null;

  Deno.test({
    name: `[${name}] blake2s256() matches RFC 7693 Appendix B ("abc") and the empty-string digest`,
    ignore,
    fn() {
      for (const v of VECTORS.blake2s256) {
        assert.equal(toHex(backend!.blake2s256(hex(v.input))), v.out, `input "${v.input}"`);
      }
      assert.equal(toHex(backend!.blake2s256()), VECTORS.blake2s256[0].out, "no parts = empty input");
    },
  });

  Deno.test({
    name: `[${name}] blake2s256() of several parts equals the digest of their concatenation`,
    ignore,
    fn() {
      const whole = new Uint8Array(300).map((_, i) => i & 0xff);
      const expected = toHex(backend!.blake2s256(whole));
      assert.equal(
        toHex(
          backend!.blake2s256(
            whole.subarray(0, 1),
            new Uint8Array(0),
            whole.subarray(1, 64),
            whole.subarray(64),
          ),
        ),
        expected,
      );
      assert.notEqual(toHex(backend!.blake2s256(whole.subarray(1))), expected);
    },
  });

  Deno.test({
    name: `[${name}] blake2sMac128() matches keyed BLAKE2s-128 vectors (key 00..1f)`,
    ignore,
    fn() {
      for (const v of VECTORS.blake2s_mac128) {
        const input = hex(v.input);
        assert.equal(toHex(backend!.blake2sMac128(hex(v.key), input)), v.out, `input length ${input.length}`);
        // Split parts give the same MAC.
        assert.equal(
          toHex(backend!.blake2sMac128(hex(v.key), input.subarray(0, 7), input.subarray(7))),
          v.out,
        );
      }
    },
  });

  Deno.test({
    name: `[${name}] blake2sMac128() is keyed (differs from another key) and rejects bad key lengths`,
    ignore,
    fn() {
      const msg = new TextEncoder().encode("mac1");
      const a = backend!.blake2sMac128(new Uint8Array(32).fill(1), msg);
      const b = backend!.blake2sMac128(new Uint8Array(32).fill(2), msg);
      assert.equal(a.length, 16);
      assert.notEqual(toHex(a), toHex(b));
      assert.throws(() => backend!.blake2sMac128(new Uint8Array(0), msg), TypeError);
      assert.throws(() => backend!.blake2sMac128(new Uint8Array(33), msg), TypeError);
    },
  });
}
