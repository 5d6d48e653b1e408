import assert from "node:assert/strict";
import {
  buildUdpPacket,
  udpChecksum,
  udpChecksumValue,
  udpDstPort,
  udpLen,
  udpSrcPort,
  writeUdpHeader,
} from "../../../src/wire/udp.ts";
import { pseudoHeaderSumIpv4 } from "../../../src/wire/checksum.ts";
import { parseIp } from "../../../src/wire/ip_addr.ts";
import { kernelPacket, refPacketVerifies, toHex } from "./_reference.ts";

Deno.test("udp accessors read a kernel DNS query", () => {
  const p = kernelPacket("ipv4_udp_dns_query");

  assert.equal(udpSrcPort(p, 20), 40000);
  assert.equal(udpDstPort(p, 20), 53);
  assert.equal(udpLen(p, 20), p.length - 20);
  assert.equal(udpChecksum(p, 20), 0x6d78);
});

Deno.test("buildUdpPacket() reproduces the kernel's IPv4 UDP datagram and checksum", () => {
  const kernel = kernelPacket("ipv4_udp_dns_query");
  const buf = new Uint8Array(1500);

  const n = buildUdpPacket(buf, 0, ip("10.9.0.1"), ip("10.9.0.2"), 40000, 53, kernel.subarray(28));

  assert.equal(n, kernel.length);
  // The IP header differs only in the identification the kernel picked; UDP is byte-identical.
  assert.equal(toHex(buf.subarray(20, n)), toHex(kernel.subarray(20)));
  assert.ok(refPacketVerifies(buf.subarray(0, n)));
});

Deno.test("buildUdpPacket() reproduces the kernel's IPv6 UDP datagram and checksum", () => {
  const kernel = kernelPacket("ipv6_udp");
  const buf = new Uint8Array(1500);

  const n = buildUdpPacket(buf, 4, ip("fd00:9::1"), ip("fd00:9::2"), 40002, 5353, kernel.subarray(48));

  assert.equal(n, kernel.length);
  // Only the flow label differs (not covered by the checksum).
  assert.equal(toHex(buf.subarray(4 + 4, 4 + n)), toHex(kernel.subarray(4)));
  assert.ok(refPacketVerifies(buf.subarray(4, 4 + n)));
});

Deno.test("buildUdpPacket() returns 0 for mixed families, bad addresses or no room", () => {
  const buf = new Uint8Array(100);
  const payload = new Uint8Array(10);

  assert.equal(buildUdpPacket(buf, 0, ip("10.0.0.1"), ip("::1"), 1, 2, payload), 0);
  assert.equal(buildUdpPacket(buf, 0, new Uint8Array(5), new Uint8Array(5), 1, 2, payload), 0);
  assert.equal(buildUdpPacket(buf, 43, ip("::1"), ip("::1"), 1, 2, payload), 0);
  assert.equal(buildUdpPacket(buf, 42, ip("::1"), ip("::1"), 1, 2, payload), 58);
});

Deno.test("udpChecksumValue() sends a computed 0 as 0xffff", () => {
  // Pick the pseudo-header/port values so the sum is 0xffff: the checksum would be 0.
  const buf = new Uint8Array(28);
  buf.set([0, 0, 0, 0, 0, 0, 0, 0], 12);
  writeUdpHeader(buf, 20, 0, 0, 8);
  const pseudo = pseudoHeaderSumIpv4(buf, 12, 16, 17, 8);
  // pseudo + udp = 17 + 8 + 8 = 33; add a port making the total 0xffff.
  writeUdpHeader(buf, 20, 0xffff - 33, 0, 8);

  assert.equal(udpChecksumValue(pseudo, buf, 20, 8), 0xffff);
});

function ip(text: string): Uint8Array {
  return parseIp(text)!;
}
