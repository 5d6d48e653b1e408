import assert from "node:assert/strict";
import {
  longTermKey,
  looksLikeStun,
  parseStun,
  shortTermKey,
  StunAttr,
  StunClass,
  type StunMessage,
  StunMessageBuilder,
  stunMessageType,
  StunMethod,
} from "../../../src/wire/stun.ts";
import { socketAddr } from "../../../src/wire/ip_addr.ts";

const FIXTURES = new URL("../../fixtures/stun/", import.meta.url);

function fixture(name: string): Uint8Array {
  const hex = Deno.readTextFileSync(new URL(`${name}.hex`, FIXTURES)).trim();
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function parsed(bytes: Uint8Array, off = 0, len = bytes.length - off): StunMessage {
  const r = parseStun(bytes, off, len);
  if (!r.ok) throw new Error(`expected a STUN message: ${r.reason}`);
  return r.msg;
}

/** Re-encodes every attribute before MESSAGE-INTEGRITY verbatim, then recomputes MI and FINGERPRINT. */
function reencode(msg: StunMessage, key: Uint8Array | null): Uint8Array {
  const b = new StunMessageBuilder(msg.method, msg.cls, msg.transactionId);
  for (const a of msg.attributes) {
    if (a.type === StunAttr.MessageIntegrity) {
      assert.ok(key, "vector has MESSAGE-INTEGRITY but no key given");
      b.addMessageIntegrity(key);
    } else if (a.type === StunAttr.Fingerprint) {
      b.addFingerprint();
    } else {
      b.addAttributeFrom(msg, a);
    }
  }
  return b.build();
}

const RFC5769_PASSWORD = "VOkJxbRl1RmTxUk/WvJxBt";

Deno.test("parseStun() decodes the RFC 5769 §2.1 sample request and verifies MI + FINGERPRINT", () => {
  const bytes = fixture("rfc5769_request");
  const msg = parsed(bytes);
  assert.equal(msg.method, StunMethod.Binding);
  assert.equal(msg.cls, StunClass.Request);
  assert.deepEqual([...msg.transactionId], [
    0xb7,
    0xe7,
    0xa7,
    0x01,
    0xbc,
    0x34,
    0xd6,
    0x86,
    0xfa,
    0x87,
    0xdf,
    0xae,
  ]);
  assert.equal(msg.stringAttr(StunAttr.Software), "STUN test client");
  assert.equal(msg.stringAttr(StunAttr.Username), "evtj:h6vY");
  assert.equal(msg.u32Attr(StunAttr.Priority), 0x6e0001ff);
  assert.equal(msg.u64Attr(StunAttr.IceControlled), 0x932ff9b151263b36n);
  assert.deepEqual(
    msg.attributes.map((a) => a.type),
    [
      StunAttr.Software,
      StunAttr.Priority,
      StunAttr.IceControlled,
      StunAttr.Username,
      StunAttr.MessageIntegrity,
      StunAttr.Fingerprint,
    ],
  );
  assert.ok(msg.verifyIntegrity(shortTermKey(RFC5769_PASSWORD)));
  assert.ok(!msg.verifyIntegrity(shortTermKey("wrong")));
  assert.ok(msg.verifyFingerprint());
  assert.deepEqual(reencode(msg, shortTermKey(RFC5769_PASSWORD)), bytes);
});

Deno.test("parseStun() decodes the RFC 5769 §2.2 IPv4 response", () => {
  const bytes = fixture("rfc5769_response_ipv4");
  const msg = parsed(bytes);
  assert.equal(msg.cls, StunClass.Success);
  assert.equal(msg.stringAttr(StunAttr.Software), "test vector");
  assert.deepEqual(msg.xorAddress(StunAttr.XorMappedAddress), socketAddr("192.0.2.1", 32853));
  assert.ok(msg.verifyIntegrity(shortTermKey(RFC5769_PASSWORD)));
  assert.ok(msg.verifyFingerprint());
  assert.deepEqual(reencode(msg, shortTermKey(RFC5769_PASSWORD)), bytes);
});

Deno.test("parseStun() decodes the RFC 5769 §2.3 IPv6 response", () => {
  const bytes = fixture("rfc5769_response_ipv6");
  const msg = parsed(bytes);
  assert.deepEqual(
    msg.xorAddress(StunAttr.XorMappedAddress),
    socketAddr("2001:db8:1234:5678:11:2233:4455:6677", 32853),
  );
  assert.ok(msg.verifyIntegrity(shortTermKey(RFC5769_PASSWORD)));
  assert.ok(msg.verifyFingerprint());
  assert.deepEqual(reencode(msg, shortTermKey(RFC5769_PASSWORD)), bytes);
});

Deno.test("parseStun() decodes the RFC 5769 §2.4 long-term request and verifies with MD5(u:r:p)", () => {
  const bytes = fixture("rfc5769_request_long_term");
  const msg = parsed(bytes);
  const username = "\u30de\u30c8\u30ea\u30c3\u30af\u30b9";
  assert.equal(msg.stringAttr(StunAttr.Username), username);
  assert.equal(msg.stringAttr(StunAttr.Realm), "example.org");
  assert.equal(msg.stringAttr(StunAttr.Nonce), "f//499k954d6OL34oL9FSTvy64sA");
  assert.ok(!msg.has(StunAttr.Fingerprint));
  assert.ok(!msg.verifyFingerprint(), "absent FINGERPRINT does not verify");
  const key = longTermKey(username, "example.org", "TheMatrIX");
  assert.ok(msg.verifyIntegrity(key));
  assert.ok(!msg.verifyIntegrity(longTermKey(username, "example.org", "TheMatrix")));
  assert.deepEqual(reencode(msg, key), bytes);
});

Deno.test("parseStun() handles the Firezone/str0m wire fixtures", () => {
  const req = parsed(fixture("stun_binding_request_1"));
  assert.equal(req.method, StunMethod.Binding);
  assert.equal(req.cls, StunClass.Request);
  assert.equal(req.attributes.length, 0);

  const ok = parsed(fixture("stun_binding_success_1"));
  assert.equal(ok.cls, StunClass.Success);
  assert.deepEqual(ok.xorAddress(StunAttr.XorMappedAddress), socketAddr("172.28.0.105", 38871));
  assert.ok(ok.has(StunAttr.MessageIntegrity));
  assert.ok(ok.verifyFingerprint());

  const ice = fixture("ice_binding_request_1");
  const check = parsed(ice);
  assert.equal(check.stringAttr(StunAttr.Username), "p9KA:SQAt");
  assert.equal(check.u32Attr(StunAttr.Priority), 0x6e7f1eff);
  assert.ok(check.has(StunAttr.UseCandidate));
  assert.equal(check.value(StunAttr.UseCandidate)?.length, 0);
  assert.equal(check.u64Attr(StunAttr.IceControlling), 0x6eeec6e97d18395cn);
  assert.ok(check.has(0xc057), "unknown comprehension-optional NETWORK-COST is kept");
  assert.ok(check.verifyIntegrity(shortTermKey("xJcE9AQAR7kczUDVOXRUCl")));
  assert.ok(check.verifyFingerprint());
  assert.deepEqual(reencode(check, shortTermKey("xJcE9AQAR7kczUDVOXRUCl")), ice);
});

Deno.test("parseStun() parses a message at an offset inside a larger buffer (ChannelData payload)", () => {
  const cd = fixture("turn_channel_data_1");
  const msg = parsed(cd, 4, cd.length - 4);
  assert.equal(msg.raw.length, 64);
  assert.deepEqual(msg.xorAddress(StunAttr.XorMappedAddress), socketAddr("172.28.0.105", 38871));
  assert.ok(msg.verifyFingerprint());
  assert.ok(looksLikeStun(cd, 4, cd.length - 4));
  assert.ok(!looksLikeStun(cd, 0, cd.length));
});

Deno.test("parseStun() rejects malformed input with a reason and never throws", () => {
  const good = fixture("rfc5769_request");
  const cases: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["short header", good.slice(0, 19)],
    ["top bits set", Uint8Array.from(good, (v, i) => (i === 0 ? 0x40 : v))],
    ["bad cookie", Uint8Array.from(good, (v, i) => (i === 4 ? 0x22 : v))],
    ["length not multiple of 4", Uint8Array.from(good, (v, i) => (i === 3 ? 0x57 : v))],
    ["length mismatch", good.slice(0, good.length - 4)],
    // SOFTWARE claims 0x40 bytes: overruns the message.
    ["attribute overrun", Uint8Array.from(good, (v, i) => (i === 23 ? 0x60 : v))],
  ];
  for (const [name, bytes] of cases) {
    const r = parseStun(bytes);
    assert.equal(r.ok, false, name);
    if (!r.ok) assert.ok(r.reason.length > 0, name);
  }
  // A MESSAGE-INTEGRITY of the wrong size is refused.
  const b = new StunMessageBuilder(StunMethod.Binding, StunClass.Request, new Uint8Array(12));
  b.addBytes(StunAttr.MessageIntegrity, new Uint8Array(16));
  assert.equal(parseStun(b.build()).ok, false);
  // Out-of-range slices are refused rather than read.
  assert.equal(parseStun(good, 10, good.length).ok, false);
});

Deno.test("parseStun() ignores attributes after MESSAGE-INTEGRITY except FINGERPRINT", () => {
  const key = shortTermKey("pw");
  const bytes = new StunMessageBuilder(StunMethod.Binding, StunClass.Request, new Uint8Array(12).fill(7))
    .addString(StunAttr.Username, "a:b")
    .addMessageIntegrity(key)
    .addU32(StunAttr.Priority, 5)
    .build();
  const msg = parsed(bytes);
  assert.ok(!msg.has(StunAttr.Priority));
  assert.ok(msg.verifyIntegrity(key), "MI covers the message up to itself only");
});

Deno.test("StunMessageBuilder round-trips every attribute kind", () => {
  const tid = Uint8Array.from({ length: 12 }, (_, i) => i + 1);
  const key = longTermKey("user", "firezone", "pass");
  const bytes = new StunMessageBuilder(StunMethod.ChannelBind, StunClass.Error, tid)
    .addErrorCode(438, "Stale Nonce")
    .addXorAddress(StunAttr.XorPeerAddress, socketAddr("10.0.0.1", 5000))
    .addXorAddress(StunAttr.XorRelayedAddress, socketAddr("2001:db8::1", 49152))
    .addAddress(StunAttr.MappedAddress, socketAddr("192.0.2.1", 1))
    .addU32(StunAttr.Lifetime, 600)
    .addU64(StunAttr.IceControlling, 0xffff_ffff_0000_0001n)
    .addString(StunAttr.Nonce, "abcde")
    .addEmpty(StunAttr.UseCandidate)
    .addUnknownAttributes([0x0031, 0x0032])
    .addMessageIntegrity(key)
    .addFingerprint()
    .build();
  assert.equal(bytes.length % 4, 0);
  assert.equal((bytes[0]! << 8) | bytes[1]!, stunMessageType(StunMethod.ChannelBind, StunClass.Error));
  assert.equal((bytes[0]! << 8) | bytes[1]!, 0x0119);
  const msg = parsed(bytes);
  assert.equal(msg.method, StunMethod.ChannelBind);
  assert.equal(msg.cls, StunClass.Error);
  assert.deepEqual(msg.transactionId, tid);
  assert.deepEqual(msg.errorCode(), { code: 438, reason: "Stale Nonce" });
  assert.deepEqual(msg.xorAddress(StunAttr.XorPeerAddress), socketAddr("10.0.0.1", 5000));
  assert.deepEqual(msg.xorAddress(StunAttr.XorRelayedAddress), socketAddr("2001:db8::1", 49152));
  assert.deepEqual(msg.address(StunAttr.MappedAddress), socketAddr("192.0.2.1", 1));
  assert.equal(msg.u32Attr(StunAttr.Lifetime), 600);
  assert.equal(msg.u64Attr(StunAttr.IceControlling), 0xffff_ffff_0000_0001n);
  assert.equal(msg.stringAttr(StunAttr.Nonce), "abcde");
  assert.deepEqual(msg.unknownAttributes(), [0x0031, 0x0032]);
  // Padding after "abcde" is zero.
  const nonce = msg.attribute(StunAttr.Nonce)!;
  assert.deepEqual([...msg.raw.subarray(nonce.offset + 5, nonce.offset + 8)], [0, 0, 0]);
  assert.ok(msg.verifyIntegrity(key));
  assert.ok(msg.verifyFingerprint());
  // Tampering breaks both.
  const tampered = bytes.slice();
  tampered[30] = tampered[30]! ^ 1;
  const t = parsed(tampered);
  assert.ok(!t.verifyIntegrity(key));
  assert.ok(!t.verifyFingerprint());
});

Deno.test("StunMessage accessors return null for absent or malformed attributes", () => {
  const bytes = new StunMessageBuilder(StunMethod.Binding, StunClass.Success, new Uint8Array(12))
    .addBytes(StunAttr.XorMappedAddress, new Uint8Array([0, 3, 0, 0, 1, 2, 3, 4]))
    .addBytes(StunAttr.Lifetime, new Uint8Array(3))
    .addBytes(StunAttr.ErrorCode, new Uint8Array([0, 0, 2, 0]))
    .build();
  const msg = parsed(bytes);
  assert.equal(msg.xorAddress(StunAttr.XorMappedAddress), null);
  assert.equal(msg.xorAddress(StunAttr.XorRelayedAddress), null);
  assert.equal(msg.u32Attr(StunAttr.Lifetime), null);
  assert.equal(msg.errorCode(), null, "class 2 is not an error class");
  assert.equal(msg.stringAttr(StunAttr.Realm), null);
  assert.equal(msg.value(StunAttr.Realm), undefined);
  assert.ok(!msg.verifyIntegrity(new Uint8Array(16)));
});

Deno.test("StunMessageBuilder refuses invalid arguments", () => {
  assert.throws(
    () => new StunMessageBuilder(StunMethod.Binding, StunClass.Request, new Uint8Array(11)),
    RangeError,
  );
  const b = new StunMessageBuilder(StunMethod.Binding, StunClass.Request, new Uint8Array(12));
  assert.throws(() => b.addErrorCode(200, "x"), RangeError);
});

Deno.test("looksLikeStun() is the cheap header check", () => {
  const req = fixture("stun_binding_request_1");
  assert.ok(looksLikeStun(req, 0, req.length));
  assert.ok(!looksLikeStun(req, 0, req.length - 1));
  const wg = new Uint8Array(148);
  wg[0] = 1;
  assert.ok(!looksLikeStun(wg, 0, wg.length));
});
