/**
 * Interop against a real handshake captured from wireguard-go (scripts/capture_wg_handshake.sh):
 * wireguard-go initiated with a PSK, our Tunnel (with the fixed Rng of `_fixture_rng.ts`) responded,
 * and a ping went through both ways. Replaying our side must reproduce the capture byte for byte.
 */
import assert from "node:assert/strict";
import { kdf1, kdf2 } from "../../../src/crypto/hkdf.ts";
import { socketAddr } from "../../../src/wire/ip_addr.ts";
import {
  readU32Le,
  WG_HANDSHAKE_INIT_LEN,
  WG_HANDSHAKE_RESPONSE_LEN,
  WG_INIT_EPHEMERAL_OFF,
  WG_INIT_MAC1_OFF,
  WG_INIT_SENDER_OFF,
  WG_INIT_STATIC_OFF,
  WG_INIT_TIMESTAMP_OFF,
  WG_RESP_MAC1_OFF,
  WG_RESP_RECEIVER_OFF,
  WG_RESP_SENDER_OFF,
  WG_TYPE_HANDSHAKE_RESPONSE,
} from "../../../src/wire/wireguard.ts";
import {
  anchoredWallClock,
  connectionIndexOf,
  HandshakeRateLimiter,
  IndexAllocator,
  mac1KeyFor,
  noiseStart,
  parseHandshakeAnon,
  StaticIdentity,
  Tunnel,
  verifyMac1,
  WgOut,
  WgResult,
} from "../../../src/wireguard/mod.ts";
import fixture from "../../fixtures/wireguard/wireguard_go_handshake.json" with { type: "json" };
import { fixtureRng } from "./_fixture_rng.ts";
import { noble } from "./_pair.ts";

const init = hex(fixture.initiation);
const responderPrivate = hex(fixture.responderPrivateKey);
const responderPublic = hex(fixture.responderPublicKey);
const initiatorPrivate = hex(fixture.initiatorPrivateKey);
const initiatorPublic = hex(fixture.initiatorPublicKey);
const psk = hex(fixture.presharedKey);
const FROM = socketAddr(fixture.initiatorSource, 51820);

Deno.test("wireguard-go fixture: the keys and the 148-byte initiation are consistent", () => {
  assert.equal(init.length, WG_HANDSHAKE_INIT_LEN);
  assert.deepEqual(noble.x25519PublicKey(responderPrivate), responderPublic);
  assert.deepEqual(noble.x25519PublicKey(initiatorPrivate), initiatorPublic);
  assert.equal(fixture.pingThroughTunnel, true, "the capture proved two-way traffic through our responder");
});

Deno.test("wireguard-go initiation: MAC1 verifies with the responder's public key only", () => {
  assert.equal(verifyMac1(noble, mac1KeyFor(noble, responderPublic), init, 0, WG_INIT_MAC1_OFF), true);
  assert.equal(verifyMac1(noble, mac1KeyFor(noble, initiatorPublic), init, 0, WG_INIT_MAC1_OFF), false);
  const mac2 = init.subarray(WG_INIT_MAC1_OFF + 16, WG_INIT_MAC1_OFF + 32);
  assert.ok(mac2.every((b) => b === 0), "no cookie: MAC2 is zero");
});

Deno.test("wireguard-go initiation: the static key decrypts to the initiator's public key", () => {
  const identity = new StaticIdentity(noble, responderPrivate);
  const anon = parseHandshakeAnon(noble, identity, init, 0, init.length);
  assert.notEqual(typeof anon, "number", "anonymous parse succeeds");
  if (typeof anon === "number") return;
  assert.deepEqual(anon.peerStaticPublic, initiatorPublic);
  assert.equal(anon.senderIndex, readU32Le(init, WG_INIT_SENDER_OFF));
});

Deno.test("wireguard-go initiation: the TAI64N timestamp is within seconds of the capture time", () => {
  // Re-derive the timestamp key independently of Handshake (paper §5.4.2, responder side).
  const start = noiseStart(noble);
  let hash = noble.blake2s256(start.hash, responderPublic);
  const ephemeral = init.slice(WG_INIT_EPHEMERAL_OFF, WG_INIT_EPHEMERAL_OFF + 32);
  hash = noble.blake2s256(hash, ephemeral);
  let ck = kdf1(noble, start.chainingKey, ephemeral);
  let key: Uint8Array;
  [ck, key] = kdf2(noble, ck, noble.x25519(responderPrivate, ephemeral)!);
  const encStatic = init.slice(WG_INIT_STATIC_OFF, WG_INIT_TIMESTAMP_OFF);
  assert.deepEqual(openAead(key, hash, encStatic), initiatorPublic);
  hash = noble.blake2s256(hash, encStatic);
  [ck, key] = kdf2(noble, ck, noble.x25519(responderPrivate, initiatorPublic)!);
  const ts = openAead(key, hash, init.slice(WG_INIT_TIMESTAMP_OFF, WG_INIT_MAC1_OFF));
  assert.ok(ts !== null && ts.length === 12);
  const view = new DataView(ts.buffer, ts.byteOffset, 12);
  // TAI64 label of Unix second s is 2^62 + 10 + s (wireguard-go), then nanoseconds.
  // (Subtract 2^62 from the high word first: the label itself is beyond double precision.)
  const unixS = (view.getUint32(0) - 0x4000_0000) * 2 ** 32 + view.getUint32(4) - 10;
  const unixMs = unixS * 1000 + Math.floor(view.getUint32(8) / 1e6);
  assert.ok(
    Math.abs(unixMs - fixture.capturedAtUnixMs) < 5_000,
    `timestamp ${new Date(unixMs).toISOString()} vs capture ${
      new Date(fixture.capturedAtUnixMs).toISOString()
    }`,
  );
});

Deno.test("Tunnel answers the wireguard-go initiation with the captured 92-byte response", () => {
  const { tunnel, out, dst } = replayResponder();
  const buf = init.slice();
  assert.equal(tunnel.decapsulate(buf, 0, buf.length, FROM, dst, 0, out, 0), WgResult.WriteToNetwork);
  const resp = dst.slice(out.off, out.off + out.len);
  assert.equal(resp.length, WG_HANDSHAKE_RESPONSE_LEN);
  assert.equal(resp[0], WG_TYPE_HANDSHAKE_RESPONSE);
  assert.equal(readU32Le(resp, WG_RESP_RECEIVER_OFF), readU32Le(init, WG_INIT_SENDER_OFF));
  assert.equal(connectionIndexOf(readU32Le(resp, WG_RESP_SENDER_OFF)), tunnel.index);
  assert.equal(verifyMac1(noble, mac1KeyFor(noble, initiatorPublic), resp, 0, WG_RESP_MAC1_OFF), true);
  assert.deepEqual(resp, hex(fixture.response), "same bytes wireguard-go accepted during the capture");
});

Deno.test("Tunnel derives wireguard-go's transport keys: its data decrypts and our replies match", () => {
  const { tunnel, out, dst } = replayResponder();
  const buf = new Uint8Array(2048);
  buf.set(init, 16);
  assert.equal(tunnel.decapsulate(buf, 16, init.length, FROM, dst, 0, out, 0), WgResult.WriteToNetwork);
  assert.equal(fixture.initiatorData.length, fixture.responderData.length);
  for (let i = 0; i < fixture.initiatorData.length; i++) {
    const msg = hex(fixture.initiatorData[i]!);
    const rx = new Uint8Array(2048);
    rx.set(msg, 16);
    assert.equal(tunnel.decapsulate(rx, 16, msg.length, FROM, dst, 0, out, 1 + i), WgResult.WriteToTunnel);
    const ip = rx.slice(out.off, out.off + out.len);
    // wireguard-go's ping: ICMP echo request 10.214.0.1 -> 10.214.0.2
    assert.equal(ip[0], 0x45);
    assert.equal(ip[9], 1);
    assert.deepEqual([...ip.subarray(12, 20)], [10, 214, 0, 1, 10, 214, 0, 2]);
    assert.equal(ip[20], 8);
    // Our echo reply, sealed with our sending key, is exactly what wireguard-go accepted.
    const reply = echoReply(ip);
    const tx = new Uint8Array(2048);
    tx.set(reply, 32);
    assert.equal(tunnel.encapsulate(tx, 32, reply.length, out, 1 + i), WgResult.WriteToNetwork);
    assert.deepEqual(tx.slice(out.off, out.off + out.len), hex(fixture.responderData[i]!));
  }
});

function replayResponder(): { tunnel: Tunnel; out: WgOut; dst: Uint8Array } {
  const rng = fixtureRng();
  const identity = new StaticIdentity(noble, responderPrivate);
  const limiter = new HandshakeRateLimiter(noble, identity, rng, 0);
  const tunnel = new Tunnel({
    backend: noble,
    identity,
    peerStaticPublic: initiatorPublic,
    presharedKey: psk,
    index: new IndexAllocator(rng).next(),
    rateLimiter: limiter,
    rng,
    wallClock: anchoredWallClock(fixture.capturedAtUnixMs, 0),
  }, 0);
  return { tunnel, out: new WgOut(), dst: new Uint8Array(2048) };
}

/** The capture script's echo reply: swap addresses, type 0, recompute both checksums. */
function echoReply(request: Uint8Array): Uint8Array {
  const p = request.slice();
  const src = p.slice(12, 16);
  p.copyWithin(12, 16, 20);
  p.set(src, 16);
  p[20] = 0;
  checksum(p, 10, 0, 20);
  checksum(p, 22, 20, p.length);
  return p;
}

function checksum(p: Uint8Array, at: number, from: number, to: number): void {
  p[at] = 0;
  p[at + 1] = 0;
  let sum = 0;
  for (let i = from; i < to; i += 2) sum += (p[i]! << 8) | (i + 1 < to ? p[i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  p[at] = c >> 8;
  p[at + 1] = c & 0xff;
}

function openAead(key: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | null {
  const k = noble.aeadKey(key);
  const buf = sealed.slice();
  const n = k.open(0, aad, buf, 0, buf.length);
  k.dispose();
  return n < 0 ? null : buf.subarray(0, n);
}

function hex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}
