/**
 * The core handshake + data test on the OpenSSL backend (FFI), and noble <-> OpenSSL interop.
 * Skipped (with a note) when libcrypto 3 cannot be loaded.
 */
import assert from "node:assert/strict";
import { openLibcrypto } from "../../../ffi/libcrypto.ts";
import type { CryptoBackend } from "../../../src/crypto/backend.ts";
import { StaticIdentity, WgResult } from "../../../src/wireguard/mod.ts";
import {
  deliver,
  handshake,
  ipv4Packet,
  makePair,
  makePeer,
  noble,
  open,
  seal,
  take,
  testKey,
} from "./_pair.ts";

let openssl: CryptoBackend | null = null;
let why = "";
try {
  openssl = openLibcrypto();
} catch (err) {
  why = err instanceof Error ? err.message : String(err);
  // deno-lint-ignore no-console
  console.warn(`OpenSSL backend tests skipped: ${why}`);
}

Deno.test({
  name: "Tunnel on the OpenSSL backend: handshake with PSK and data both ways",
  ignore: openssl === null,
  fn() {
    const pair = makePair({ backend: openssl!, psk: testKey(77) });
    handshake(pair, 0);
    for (let i = 0; i < 4; i++) {
      const p = ipv4Packet(60 + 300 * i, i);
      assert.deepEqual(open(pair.b, seal(pair.a, p, 1), 1), p);
      assert.deepEqual(open(pair.a, seal(pair.b, p, 1), 1), p);
    }
    const replay = seal(pair.a, ipv4Packet(40), 2);
    open(pair.b, replay, 2);
    assert.equal(deliver(pair.b, replay, 2), WgResult.Drop);
  },
});

Deno.test({
  name: "Tunnel: a noble peer and an OpenSSL peer interoperate",
  ignore: openssl === null,
  fn() {
    const psk = testKey(5);
    const idA = new StaticIdentity(noble, testKey(61));
    const idB = new StaticIdentity(openssl!, testKey(62));
    assert.deepEqual(idB.publicKey, new StaticIdentity(noble, testKey(62)).publicKey);
    const a = makePeer({ backend: noble, identity: idA, peerPublic: idB.publicKey, psk, rngSeed: 1 });
    const b = makePeer({ backend: openssl!, identity: idB, peerPublic: idA.publicKey, psk, rngSeed: 2 });
    assert.equal(a.tunnel.initiateHandshake(a.out, 0), WgResult.WriteToNetwork);
    assert.equal(deliver(b, take(a.out), 0), WgResult.WriteToNetwork);
    assert.equal(deliver(a, take(b.out), 0), WgResult.WriteToNetwork);
    assert.equal(deliver(b, take(a.out), 0), WgResult.Done);
    const p = ipv4Packet(1280, 9);
    assert.deepEqual(open(b, seal(a, p, 1), 1), p);
    assert.deepEqual(open(a, seal(b, p, 1), 1), p);
  },
});
