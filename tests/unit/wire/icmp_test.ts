import assert from "node:assert/strict";
import {
  buildIcmpEchoPacket,
  buildIcmpv4DestUnreachable,
  buildIcmpv4Error,
  buildIcmpv6DestUnreachable,
  buildIcmpv6Error,
  ICMP_ERROR_TTL,
  icmpChecksum,
  icmpCode,
  icmpIdentifier,
  icmpRestOfHeader,
  icmpSequence,
  icmpType,
  ICMPV4_DEST_UNREACHABLE,
  ICMPV4_ECHO_REPLY,
  ICMPV4_ECHO_REQUEST,
  ICMPV4_PARAMETER_PROBLEM,
  ICMPV4_TIME_EXCEEDED,
  icmpv4ChecksumValue,
  icmpv4ErrorRestOfHeader,
  icmpv4IsEcho,
  icmpv4IsError,
  icmpv4IsNatTranslatableError,
  Icmpv4UnreachableCode,
  ICMPV6_DEST_UNREACHABLE,
  ICMPV6_ECHO_REPLY,
  ICMPV6_ECHO_REQUEST,
  ICMPV6_PACKET_TOO_BIG,
  ICMPV6_TIME_EXCEEDED,
  icmpv6ChecksumValue,
  icmpv6ErrorRestOfHeader,
  icmpv6IsEcho,
  icmpv6IsError,
  icmpv6IsNatTranslatableError,
  Icmpv6UnreachableCode,
  MAX_ICMP_ERROR_PACKET_LEN,
} from "../../../src/wire/icmp.ts";
import { parseIp } from "../../../src/wire/ip_addr.ts";
import { buildUdpPacket } from "../../../src/wire/udp.ts";
import { hex, kernelPacket, refPacketVerifies, toHex } from "./_reference.ts";

Deno.test("icmp accessors read kernel echo requests", () => {
  const v4 = kernelPacket("ipv4_icmp_echo_request");
  const v6 = kernelPacket("ipv6_icmp_echo_request");

  assert.equal(icmpType(v4, 20), ICMPV4_ECHO_REQUEST);
  assert.equal(icmpCode(v4, 20), 0);
  assert.equal(icmpIdentifier(v4, 20), 0x1cb2);
  assert.equal(icmpSequence(v4, 20), 1);
  assert.equal(icmpChecksum(v4, 20), 0xee80);
  assert.equal(icmpv4ChecksumValue(v4, 20, v4.length - 20), 0xee80);
  assert.equal(icmpType(v6, 40), ICMPV6_ECHO_REQUEST);
  assert.equal(icmpIdentifier(v6, 40), 0x1cb4);
  assert.equal(icmpv6ChecksumValue(v6, 0, 40, v6.length - 40), icmpChecksum(v6, 40));
});

Deno.test("buildIcmpEchoPacket() reproduces the kernel's ICMPv4 and ICMPv6 echo requests", () => {
  const v4 = kernelPacket("ipv4_icmp_echo_request");
  const v6 = kernelPacket("ipv6_icmp_echo_request");
  const buf = new Uint8Array(200);

  const n4 = buildIcmpEchoPacket(buf, 0, ip("10.9.0.1"), ip("10.9.0.2"), false, 0x1cb2, 1, v4.subarray(28));
  assert.equal(n4, v4.length);
  assert.equal(toHex(buf.subarray(20, n4)), toHex(v4.subarray(20)));
  assert.ok(refPacketVerifies(buf.subarray(0, n4)));

  const n6 = buildIcmpEchoPacket(buf, 0, ip("fd00:9::1"), ip("fd00:9::2"), false, 0x1cb4, 1, v6.subarray(48));
  assert.equal(n6, v6.length);
  assert.equal(toHex(buf.subarray(40, n6)), toHex(v6.subarray(40)));
  assert.ok(refPacketVerifies(buf.subarray(0, n6)));
});

Deno.test("buildIcmpEchoPacket() builds replies with the reply type", () => {
  const buf = new Uint8Array(100);

  const n4 = buildIcmpEchoPacket(buf, 0, ip("10.0.0.2"), ip("10.0.0.1"), true, 7, 9, new Uint8Array(0));
  assert.equal(n4, 28);
  assert.equal(icmpType(buf, 20), ICMPV4_ECHO_REPLY);
  assert.ok(refPacketVerifies(buf.subarray(0, n4)));

  const n6 = buildIcmpEchoPacket(buf, 0, ip("::2"), ip("::1"), true, 7, 9, new Uint8Array(3));
  assert.equal(n6, 51);
  assert.equal(icmpType(buf, 40), ICMPV6_ECHO_REPLY);
  assert.ok(refPacketVerifies(buf.subarray(0, n6)));
  assert.equal(buildIcmpEchoPacket(buf, 60, ip("::2"), ip("::1"), true, 7, 9, new Uint8Array(3)), 0);
});

Deno.test("buildIcmpv4DestUnreachable() answers with header + 8 bytes, swapped addresses, TTL 20", () => {
  const orig = kernelPacket("ipv4_udp_dns_query");
  const out = new Uint8Array(1500);

  const n = buildIcmpv4DestUnreachable(
    out,
    0,
    orig,
    0,
    orig.length,
    Icmpv4UnreachableCode.CommunicationProhibited,
  );

  assert.equal(n, 20 + 8 + 20 + 8);
  assert.equal(out[8], ICMP_ERROR_TTL);
  assert.equal(out[9], 1);
  assert.equal(toHex(out.subarray(12, 16)), toHex(orig.subarray(16, 20)));
  assert.equal(toHex(out.subarray(16, 20)), toHex(orig.subarray(12, 16)));
  assert.equal(icmpType(out, 20), ICMPV4_DEST_UNREACHABLE);
  assert.equal(icmpCode(out, 20), 13);
  assert.equal(icmpRestOfHeader(out, 20), 0);
  assert.equal(toHex(out.subarray(28, n)), toHex(orig.subarray(0, 28)));
  assert.ok(refPacketVerifies(out.subarray(0, n)));
});

Deno.test("buildIcmpv4DestUnreachable() quotes IPv4 options and short originals", () => {
  const withOptions = hex(
    "4600002c00004000401100000a0000010a00000201010100" + "9c40003500140000" + "6162636465666768",
  );
  const short = hex("4500001600004000402f00000a0000010a0000020800");
  const out = new Uint8Array(200);

  const n1 = buildIcmpv4DestUnreachable(out, 0, withOptions, 0, withOptions.length, 0);
  assert.equal(n1, 20 + 8 + 24 + 8);
  assert.equal(toHex(out.subarray(28, n1)), toHex(withOptions.subarray(0, 32)));

  const n2 = buildIcmpv4DestUnreachable(out, 0, short, 0, short.length, 0);
  assert.equal(n2, 20 + 8 + 22);
  assert.ok(refPacketVerifies(out.subarray(0, n2)));
});

Deno.test("buildIcmpv6DestUnreachable() quotes the whole packet when it fits", () => {
  const orig = kernelPacket("ipv6_tcp_syn");
  const out = new Uint8Array(1500);

  const n = buildIcmpv6DestUnreachable(
    out,
    0,
    orig,
    0,
    orig.length,
    Icmpv6UnreachableCode.AddressUnreachable,
  );

  assert.equal(n, 40 + 8 + orig.length);
  assert.equal(out[7], ICMP_ERROR_TTL);
  assert.equal(out[6], 58);
  assert.equal(toHex(out.subarray(8, 24)), toHex(orig.subarray(24, 40)));
  assert.equal(toHex(out.subarray(24, 40)), toHex(orig.subarray(8, 24)));
  assert.equal(icmpType(out, 40), ICMPV6_DEST_UNREACHABLE);
  assert.equal(icmpCode(out, 40), 3);
  assert.equal(toHex(out.subarray(48, n)), toHex(orig));
  assert.ok(refPacketVerifies(out.subarray(0, n)));
});

Deno.test("buildIcmpv6DestUnreachable() caps the reply at 1280 bytes for a maximum-size original", () => {
  const orig = new Uint8Array(1280);
  const payload = new Uint8Array(1280 - 48).map((_, i) => i & 0xff);
  assert.equal(buildUdpPacket(orig, 0, ip("fd00::1"), ip("::1"), 1, 2, payload), 1280);
  const out = new Uint8Array(2000);

  const n = buildIcmpv6DestUnreachable(out, 0, orig, 0, orig.length, 1);

  assert.equal(n, MAX_ICMP_ERROR_PACKET_LEN);
  assert.equal(toHex(out.subarray(48, n)), toHex(orig.subarray(0, 1232)));
  assert.ok(refPacketVerifies(out.subarray(0, n)));
});

Deno.test("buildIcmpv4Error() reproduces the kernel's port-unreachable ICMP message", () => {
  const kernel = kernelPacket("ipv4_icmp_port_unreachable");
  const quote = kernel.subarray(28);
  const out = new Uint8Array(200);

  const n = buildIcmpv4Error(out, 0, 0x0a090001, 0x0a090002, 3, 3, 0, quote, 0, quote.length);

  assert.equal(n, kernel.length);
  assert.equal(toHex(out.subarray(20, n)), toHex(kernel.subarray(20)));
  assert.ok(refPacketVerifies(out.subarray(0, n)));
});

Deno.test("buildIcmpv6Error() reproduces the kernel's ICMPv6 port-unreachable message", () => {
  const kernel = kernelPacket("ipv6_icmp_port_unreachable");
  const out = new Uint8Array(300);

  const n = buildIcmpv6Error(out, 0, kernel, 8, kernel, 24, 1, 4, 0, kernel, 48, kernel.length - 48);

  assert.equal(n, kernel.length);
  // Identical except flow label and hop limit (kernel: 64, gateway errors: 20).
  assert.equal(toHex(out.subarray(4, 7)), toHex(kernel.subarray(4, 7)));
  assert.equal(out[7], ICMP_ERROR_TTL);
  assert.equal(toHex(out.subarray(8, n)), toHex(kernel.subarray(8)));
});

Deno.test("buildIcmpv4Error()/buildIcmpv6Error() keep the rest of header and cap the size", () => {
  const quote = new Uint8Array(3000).fill(0x45);
  const out = new Uint8Array(3000);
  const a = ip("fd00::1");

  const n4 = buildIcmpv4Error(out, 0, 1, 2, 3, 4, 1400, quote, 0, quote.length);
  assert.equal(n4, 1280);
  assert.equal(icmpRestOfHeader(out, 20), 1400);
  assert.ok(refPacketVerifies(out.subarray(0, n4)));

  const n6 = buildIcmpv6Error(out, 0, a, 0, a, 0, ICMPV6_PACKET_TOO_BIG, 0, 1280, quote, 0, quote.length);
  assert.equal(n6, 1280);
  assert.equal(icmpRestOfHeader(out, 40), 1280);
  assert.ok(refPacketVerifies(out.subarray(0, n6)));

  assert.equal(buildIcmpv4Error(new Uint8Array(100), 0, 1, 2, 3, 0, 0, quote, 0, 80), 0);
  assert.equal(buildIcmpv6Error(new Uint8Array(100), 0, a, 0, a, 0, 1, 0, 0, quote, 0, 60), 0);
});

Deno.test("buildIcmpv4Error() may move a quote within the same buffer", () => {
  const kernel = kernelPacket("ipv4_icmp_port_unreachable");
  const buf = new Uint8Array(300);
  buf.set(kernel.subarray(28), 100);

  const n = buildIcmpv4Error(buf, 90, 0x0a090001, 0x0a090002, 3, 3, 0, buf, 100, kernel.length - 28);

  assert.equal(toHex(buf.subarray(90 + 20, 90 + n)), toHex(kernel.subarray(20)));
});

Deno.test("ICMP type classifiers", () => {
  assert.ok(icmpv4IsEcho(0) && icmpv4IsEcho(8) && !icmpv4IsEcho(3));
  assert.ok(icmpv6IsEcho(128) && icmpv6IsEcho(129) && !icmpv6IsEcho(1));
  assert.deepEqual([3, 4, 5, 11, 12].map(icmpv4IsError), [true, true, true, true, true]);
  assert.deepEqual([0, 8, 13, 14].map(icmpv4IsError), [false, false, false, false]);
  assert.ok(icmpv6IsError(1) && icmpv6IsError(4) && !icmpv6IsError(128) && !icmpv6IsError(135));
  assert.deepEqual([3, 11, 12, 5].map(icmpv4IsNatTranslatableError), [true, true, false, false]);
  assert.deepEqual([1, 2, 3, 4, 128].map(icmpv6IsNatTranslatableError), [true, true, true, false, false]);
});

Deno.test("icmpv4ErrorRestOfHeader()/icmpv6ErrorRestOfHeader() keep only meaningful fields", () => {
  assert.equal(icmpv4ErrorRestOfHeader(ICMPV4_DEST_UNREACHABLE, 4, 0xdead05dc), 0x05dc);
  assert.equal(icmpv4ErrorRestOfHeader(ICMPV4_DEST_UNREACHABLE, 3, 0xdead05dc), 0);
  assert.equal(icmpv4ErrorRestOfHeader(ICMPV4_TIME_EXCEEDED, 0, 0xffffffff), 0);
  assert.equal(icmpv4ErrorRestOfHeader(ICMPV4_PARAMETER_PROBLEM, 0, 0x14ffffff), 0x14000000);
  assert.equal(icmpv6ErrorRestOfHeader(ICMPV6_PACKET_TOO_BIG, 0, 1280), 1280);
  assert.equal(icmpv6ErrorRestOfHeader(ICMPV6_TIME_EXCEEDED, 0, 99), 0);
  assert.equal(icmpv6ErrorRestOfHeader(ICMPV6_DEST_UNREACHABLE, 1, 99), 0);
});

function ip(text: string): Uint8Array {
  return parseIp(text)!;
}
