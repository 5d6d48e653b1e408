import assert from "node:assert/strict";
import {
  fillIpv4HeaderChecksum,
  formatIpv4Uint32,
  IPV4_CHECKSUM_OFF,
  IPV4_DST_OFF,
  IPV4_SRC_OFF,
  ipv4Dst,
  ipv4Ecn,
  ipv4HeaderChecksumOk,
  ipv4HeaderLen,
  ipv4Protocol,
  ipv4Src,
  ipv4TotalLen,
  ipv4Ttl,
  ipv4Uint32,
  writeIpv4Addr,
  writeIpv4Header,
} from "../../../src/wire/ipv4.ts";
import { parseIpv4 } from "../../../src/wire/ip_addr.ts";
import { hex, kernelPacket, toHex } from "./_reference.ts";

Deno.test("ipv4 accessors read a kernel-generated UDP packet", () => {
  const p = kernelPacket("ipv4_udp_dns_query");

  assert.equal(ipv4HeaderLen(p, 0), 20);
  assert.equal(ipv4TotalLen(p, 0), p.length);
  assert.equal(ipv4Protocol(p, 0), 17);
  assert.equal(ipv4Ttl(p, 0), 64);
  assert.equal(ipv4Ecn(p, 0), 0);
  assert.equal(ipv4Src(p, 0), 0x0a090001);
  assert.equal(ipv4Dst(p, 0), 0x0a090002);
  assert.ok(ipv4HeaderChecksumOk(p, 0));
});

Deno.test("ipv4 accessors honour the offset (packet behind headroom)", () => {
  const p = kernelPacket("ipv4_tcp_syn");
  const buf = new Uint8Array(20 + p.length);
  buf.set(p, 20);

  assert.equal(ipv4Src(buf, 20), 0x0a090001);
  assert.equal(ipv4Protocol(buf, 20), 6);
  assert.ok(ipv4HeaderChecksumOk(buf, 20));
});

Deno.test("ipv4HeaderChecksumOk() rejects a corrupted header", () => {
  const p = kernelPacket("ipv4_udp_dns_query");
  p[IPV4_SRC_OFF + 3] = p[IPV4_SRC_OFF + 3]! ^ 1;

  assert.equal(ipv4HeaderChecksumOk(p, 0), false);
});

Deno.test("writeIpv4Header() writes a known header byte for byte", () => {
  const buf = new Uint8Array(20);

  const n = writeIpv4Header(buf, 0, ipv4Uint32(parseIpv4("192.168.0.1")!, 0), 0xc0a800c7, 17, 0x73 - 20, 64);

  assert.equal(n, 20);
  assert.equal(toHex(buf), "45000073000040004011b861c0a80001c0a800c7");
});

Deno.test("writeIpv4Header() returns 0 when the buffer is too small", () => {
  assert.equal(writeIpv4Header(new Uint8Array(25), 6, 1, 2, 17, 0, 64), 0);
});

Deno.test("fillIpv4HeaderChecksum() covers options (IHL 6)", () => {
  const h = hex("460000180000400040110000c0a80001c0a800c701010100");

  fillIpv4HeaderChecksum(h, 0);

  assert.notEqual((h[IPV4_CHECKSUM_OFF]! << 8) | h[IPV4_CHECKSUM_OFF + 1]!, 0);
  assert.ok(ipv4HeaderChecksumOk(h, 0));
});

Deno.test("writeIpv4Addr()/ipv4Uint32()/formatIpv4Uint32() round-trip", () => {
  const buf = new Uint8Array(20);

  writeIpv4Addr(buf, IPV4_DST_OFF, 0xfe01020a);

  assert.equal(ipv4Dst(buf, 0), 0xfe01020a);
  assert.equal(formatIpv4Uint32(ipv4Dst(buf, 0)), "254.1.2.10");
  assert.equal(ipv4Uint32(parseIpv4("255.255.255.255")!, 0), 0xffffffff);
});
