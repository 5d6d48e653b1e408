import assert from "node:assert/strict";
import {
  copyIpv6Addr,
  IPV6_DST_OFF,
  IPV6_SRC_OFF,
  ipv6AddrEqual,
  ipv6AddrIsUnspecified,
  ipv6AddrWord,
  ipv6Ecn,
  ipv6FlowLabel,
  ipv6HopLimit,
  ipv6NextHeader,
  ipv6PayloadLen,
  ipv6TrafficClass,
  writeIpv6Header,
} from "../../../src/wire/ipv6.ts";
import { formatIp, parseIpv6 } from "../../../src/wire/ip_addr.ts";
import { kernelPacket, toHex } from "./_reference.ts";

Deno.test("ipv6 accessors read a kernel-generated TCP SYN", () => {
  const p = kernelPacket("ipv6_tcp_syn");

  assert.equal(ipv6PayloadLen(p, 0), p.length - 40);
  assert.equal(ipv6NextHeader(p, 0), 6);
  assert.equal(ipv6HopLimit(p, 0), 64);
  assert.equal(ipv6TrafficClass(p, 0), 0);
  assert.equal(ipv6FlowLabel(p, 0), 0x79b73);
  assert.equal(formatIp(p, IPV6_SRC_OFF, 16), "fd00:9::1");
  assert.equal(formatIp(p, IPV6_DST_OFF, 16), "fd00:9::2");
});

Deno.test("writeIpv6Header() splits traffic class and flow label across the first bytes", () => {
  const buf = new Uint8Array(40);
  const a = parseIpv6("fd00:2021:1111::1")!;
  const b = parseIpv6("2001:db8::abcd")!;

  const n = writeIpv6Header(buf, 0, a, 0, b, 0, 17, 8, 20, 0xb9, 0xabcde);

  assert.equal(n, 40);
  assert.equal(toHex(buf.subarray(0, 8)), "6b9abcde00081114");
  assert.equal(ipv6TrafficClass(buf, 0), 0xb9);
  assert.equal(ipv6Ecn(buf, 0), 0x01);
  assert.equal(ipv6FlowLabel(buf, 0), 0xabcde);
  assert.ok(ipv6AddrEqual(buf, IPV6_SRC_OFF, a, 0));
  assert.ok(ipv6AddrEqual(buf, IPV6_DST_OFF, b, 0));
});

Deno.test("writeIpv6Header() returns 0 when the buffer is too small", () => {
  const z = new Uint8Array(16);

  assert.equal(writeIpv6Header(new Uint8Array(39), 0, z, 0, z, 0, 17, 0, 64), 0);
});

Deno.test("ipv6AddrWord() returns network-order 32-bit words", () => {
  const a = parseIpv6("fd00:2021:1111::8000:abcd")!;

  assert.equal(ipv6AddrWord(a, 0, 0), 0xfd002021);
  assert.equal(ipv6AddrWord(a, 0, 1), 0x11110000);
  assert.equal(ipv6AddrWord(a, 0, 3), 0x8000abcd);
});

Deno.test("ipv6AddrIsUnspecified()/ipv6AddrEqual()/copyIpv6Addr()", () => {
  const buf = new Uint8Array(40);
  const a = parseIpv6("::1")!;

  assert.ok(ipv6AddrIsUnspecified(buf, 8));
  copyIpv6Addr(buf, 8, a, 0);
  assert.equal(ipv6AddrIsUnspecified(buf, 8), false);
  assert.ok(ipv6AddrEqual(buf, 8, a, 0));
  assert.equal(ipv6AddrEqual(buf, 8, buf, 24), false);
});
