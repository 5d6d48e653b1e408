import assert from "node:assert/strict";
import fc from "fast-check";
import { AEAD_TAG_LEN } from "../../../src/crypto/backend.ts";
import { createNobleBackend } from "../../../src/crypto/noble_backend.ts";
import { OPENSSL, toHex } from "./_support.ts";

const noble = createNobleBackend();
const ignore = OPENSSL === null;

const bytes = (len: number) => fc.uint8Array({ minLength: len, maxLength: len });

Deno.test({
  name: "AEAD: a packet sealed by one backend opens with the other (random key/counter/aad/plaintext)",
  ignore,
  fn() {
    const openssl = OPENSSL!;
    fc.assert(
      fc.property(
        bytes(32),
        fc.maxSafeNat(),
        fc.option(fc.uint8Array({ maxLength: 64 }), { nil: null }),
        fc.uint8Array({ maxLength: 1500 }),
        fc.nat(40),
        fc.nat(40),
        fc.boolean(),
        (key, counter, aad, pt, offA, offB, nobleSeals) => {
          const [sealer, opener] = nobleSeals ? [noble, openssl] : [openssl, noble];
          const sk = sealer.aeadKey(key);
          const ok = opener.aeadKey(key);
          try {
            const a = new Uint8Array(offA + pt.length + AEAD_TAG_LEN);
            a.set(pt, offA);
            assert.equal(sk.seal(counter, aad, a, offA, pt.length), pt.length + AEAD_TAG_LEN);
            const b = new Uint8Array(offB + pt.length + AEAD_TAG_LEN + 3);
            b.set(a.subarray(offA), offB);
            assert.equal(ok.open(counter, aad, b, offB, pt.length + AEAD_TAG_LEN), pt.length);
            assert.equal(toHex(b.subarray(offB, offB + pt.length)), toHex(pt));
            // And a flipped bit fails on the other side too.
            if (pt.length > 0) {
              const c = a.slice();
              c[offA]! ^= 0x40;
              assert.equal(ok.open(counter, aad, c, offA, pt.length + AEAD_TAG_LEN), -1);
            }
          } finally {
            sk.dispose();
            ok.dispose();
          }
        },
      ),
      { numRuns: 150 },
    );
  },
});

Deno.test({
  name: "XAEAD, X25519 and BLAKE2s agree between the backends on random inputs",
  ignore,
  fn() {
    const openssl = OPENSSL!;
    fc.assert(
      fc.property(
        bytes(32),
        bytes(24),
        fc.uint8Array({ maxLength: 48 }),
        fc.uint8Array({ maxLength: 200 }),
        bytes(32),
        fc.uint8Array({ minLength: 1, maxLength: 32 }),
        (key, nonce, aad, pt, peerPriv, macKey) => {
          const sealed = noble.xaeadSeal(key, nonce, aad, pt);
          assert.equal(toHex(openssl.xaeadSeal(key, nonce, aad, pt)), toHex(sealed));
          assert.equal(toHex(openssl.xaeadOpen(key, nonce, aad, sealed)!), toHex(pt));

          const pub = noble.x25519PublicKey(peerPriv);
          assert.equal(toHex(openssl.x25519PublicKey(peerPriv)), toHex(pub));
          assert.equal(toHex(openssl.x25519(key, pub)!), toHex(noble.x25519(key, pub)!));

          assert.equal(toHex(openssl.blake2s256(aad, pt)), toHex(noble.blake2s256(aad, pt)));
          assert.equal(toHex(openssl.blake2sMac128(macKey, pt)), toHex(noble.blake2sMac128(macKey, pt)));
        },
      ),
      { numRuns: 60 },
    );
  },
});
