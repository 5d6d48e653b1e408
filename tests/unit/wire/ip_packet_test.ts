import assert from "node:assert/strict";
import fc from "fast-check";
import {
  buildIcmpUnreachableReply,
  checksumsOk,
  describeIpPacket,
  dropReasonName,
  Ecn,
  IpPacketInfo,
  L4Kind,
  MAX_IP_SIZE_BYTES,
  mergeEcnFromOuter,
  PARSE_RESULT_COUNT,
  parseIcmpQuote,
  parseIpPacket,
  ParseResult,
  recomputeChecksums,
  setDstPort,
  setEcn,
  setIpv4Dst,
  setIpv6Dst,
  setSrcL4Id,
  UnreachableReason,
} from "../../../src/wire/ip_packet.ts";
import { buildUdpPacket } from "../../../src/wire/udp.ts";
import { buildIcmpEchoPacket, buildIcmpv4Error, icmpCode, icmpType } from "../../../src/wire/icmp.ts";
import { TCP_FLAG_SYN } from "../../../src/wire/tcp.ts";
import { parseIp } from "../../../src/wire/ip_addr.ts";
import { ipv4HeaderChecksumOk } from "../../../src/wire/ipv4.ts";
import { hex, kernelPacket, kernelQuote, refPacketVerifies, toHex } from "./_reference.ts";

const KERNEL_PACKETS = [
  "ipv4_udp_dns_query",
  "ipv6_tcp_syn",
  "ipv6_udp",
  "ipv4_tcp_syn",
  "ipv4_icmp_echo_request",
  "ipv6_icmp_echo_request",
  "ipv4_icmp_port_unreachable",
  "ipv6_icmp_port_unreachable",
];

Deno.test("parseIpPacket() reads an IPv4/UDP DNS query", () => {
  const p = kernelPacket("ipv4_udp_dns_query");
  const info = new IpPacketInfo();

  const r = parseIpPacket(p, 0, p.length, info);

  assert.equal(r, ParseResult.Ok);
  assert.equal(info.version, 4);
  assert.equal(info.headerLen, 20);
  assert.equal(info.totalLen, 57);
  assert.equal(info.protocol, 17);
  assert.equal(info.l4Kind, L4Kind.Udp);
  assert.equal(info.l4Off, 20);
  assert.equal(info.l4Len, 37);
  assert.equal(info.srcOff, 12);
  assert.equal(info.dstOff, 16);
  assert.equal(info.src4, 0x0a090001);
  assert.equal(info.dst4, 0x0a090002);
  assert.equal(info.srcPort, 40000);
  assert.equal(info.dstPort, 53);
  assert.equal(info.ttl, 64);
  assert.equal(info.ecn, Ecn.NotEct);
  assert.equal(info.icmpType, -1);
  assert.equal(info.moreFragments, false);
  assert.equal(info.srcL4Id(), 40000);
  assert.equal(info.dstL4Id(), 53);
});

Deno.test("parseIpPacket() reads an IPv6/TCP SYN behind headroom", () => {
  const p = kernelPacket("ipv6_tcp_syn");
  const buf = new Uint8Array(20 + p.length);
  buf.set(p, 20);
  const info = new IpPacketInfo();

  const r = parseIpPacket(buf, 20, p.length, info);

  assert.equal(r, ParseResult.Ok);
  assert.equal(info.off, 20);
  assert.equal(info.version, 6);
  assert.equal(info.headerLen, 40);
  assert.equal(info.totalLen, 80);
  assert.equal(info.l4Kind, L4Kind.Tcp);
  assert.equal(info.l4Off, 60);
  assert.equal(info.srcOff, 28);
  assert.equal(info.dstOff, 44);
  assert.equal(info.src4, 0);
  assert.equal(info.srcPort, 40001);
  assert.equal(info.dstPort, 443);
  assert.equal(info.tcpFlags, TCP_FLAG_SYN);
});

Deno.test("parseIpPacket() reads ICMP echo and error messages of both families", () => {
  const info = new IpPacketInfo();
  const e4 = kernelPacket("ipv4_icmp_echo_request");
  const e6 = kernelPacket("ipv6_icmp_echo_request");
  const u4 = kernelPacket("ipv4_icmp_port_unreachable");

  assert.equal(parseIpPacket(e4, 0, e4.length, info), ParseResult.Ok);
  assert.deepEqual([info.l4Kind, info.icmpType, info.icmpCode, info.icmpId, info.icmpSeq], [
    L4Kind.Icmp,
    8,
    0,
    0x1cb2,
    1,
  ]);
  assert.ok(info.isIcmpEcho() && !info.isIcmpError());
  assert.equal(info.srcL4Id(), 0x1cb2);

  assert.equal(parseIpPacket(e6, 0, e6.length, info), ParseResult.Ok);
  assert.deepEqual([info.l4Kind, info.icmpType, info.icmpId], [L4Kind.Icmp, 128, 0x1cb4]);
  assert.ok(info.isIcmpEcho());

  assert.equal(parseIpPacket(u4, 0, u4.length, info), ParseResult.Ok);
  assert.deepEqual([info.icmpType, info.icmpCode, info.ecn], [3, 3, 0]);
  assert.ok(info.isIcmpError() && !info.isIcmpEcho());
  assert.equal(info.srcL4Id(), -1);
  assert.equal(info.dstL4Id(), -1);
});

Deno.test("parseIpPacket() ignores trailing bytes beyond the declared length (WireGuard padding)", () => {
  const p = kernelPacket("ipv6_udp");
  const padded = new Uint8Array(p.length + 12);
  padded.set(p);
  const info = new IpPacketInfo();

  assert.equal(parseIpPacket(padded, 0, padded.length, info), ParseResult.Ok);
  assert.equal(info.totalLen, p.length);
  assert.equal(info.l4Len, p.length - 40);
  assert.ok(checksumsOk(padded, info));
});

Deno.test("parseIpPacket() reports the truncation reason at every length of every kernel packet", () => {
  const info = new IpPacketInfo();
  for (const name of KERNEL_PACKETS) {
    const p = kernelPacket(name);
    const fixed = p[0]! >> 4 === 4 ? 20 : 40;
    for (let len = 0; len < p.length; len++) {
      const expected = len < fixed ? ParseResult.Truncated : ParseResult.BadTotalLength;

      assert.equal(parseIpPacket(p, 0, len, info), expected, `${name} at ${len} bytes`);
    }
    assert.equal(parseIpPacket(p, 0, p.length, info), ParseResult.Ok, name);
  }
});

Deno.test("parseIpPacket() treats a length reaching past the buffer as truncated", () => {
  const p = kernelPacket("ipv4_udp_dns_query");

  assert.equal(parseIpPacket(p, 10, p.length, new IpPacketInfo()), ParseResult.Truncated);
  assert.equal(parseIpPacket(p, -1, 20, new IpPacketInfo()), ParseResult.Truncated);
});

Deno.test("parseIpPacket() rejects versions other than 4 and 6", () => {
  const p = kernelPacket("ipv4_udp_dns_query");
  const info = new IpPacketInfo();
  for (let v = 0; v < 16; v++) {
    if (v === 4 || v === 6) continue;
    p[0] = (v << 4) | 5;

    assert.equal(parseIpPacket(p, 0, p.length, info), ParseResult.BadVersion, `version ${v}`);
  }
});

Deno.test("parseIpPacket() rejects IHL below 5 and headers longer than the total length", () => {
  const info = new IpPacketInfo();
  for (let ihl = 0; ihl < 5; ihl++) {
    const p = kernelPacket("ipv4_udp_dns_query");
    p[0] = 0x40 | ihl;

    assert.equal(parseIpPacket(p, 0, p.length, info), ParseResult.BadHeaderLength, `IHL ${ihl}`);
  }
  const tiny = hex("4f00001400004000401100000a0000010a000002" + "00".repeat(40));
  assert.equal(parseIpPacket(tiny, 0, tiny.length, info), ParseResult.BadHeaderLength);
});

Deno.test("parseIpPacket() rejects a total length larger than the buffer or than the MTU", () => {
  const p = kernelPacket("ipv4_udp_dns_query");
  const info = new IpPacketInfo();
  p[3] = p[3]! + 1;

  assert.equal(parseIpPacket(p, 0, p.length, info), ParseResult.BadTotalLength);

  const big = new Uint8Array(1400);
  const n = buildUdpPacket(big, 0, ip("10.0.0.1"), ip("10.0.0.2"), 1, 2, new Uint8Array(1281 - 28));
  assert.equal(n, 1281);
  assert.equal(parseIpPacket(big, 0, n, info), ParseResult.TooBig);
  const ok = buildUdpPacket(big, 0, ip("fd00::1"), ip("fd00::2"), 1, 2, new Uint8Array(1280 - 48));
  assert.equal(parseIpPacket(big, 0, ok, info), ParseResult.Ok);
  assert.equal(info.totalLen, MAX_IP_SIZE_BYTES);
});

Deno.test("parseIpPacket() rejects an IPv6 payload length that disagrees with the packet", () => {
  const info = new IpPacketInfo();
  const longer = kernelPacket("ipv6_udp");
  longer[5] = longer[5]! + 1;
  assert.equal(parseIpPacket(longer, 0, longer.length, info), ParseResult.BadTotalLength);

  const shorterThanUdp = kernelPacket("ipv6_udp");
  shorterThanUdp[5] = 4;
  assert.equal(parseIpPacket(shorterThanUdp, 0, shorterThanUdp.length, info), ParseResult.L4Truncated);

  const shorterThanUdpLen = kernelPacket("ipv6_udp");
  shorterThanUdpLen[5] = 10;
  assert.equal(parseIpPacket(shorterThanUdpLen, 0, shorterThanUdpLen.length, info), ParseResult.BadUdpLength);
});

Deno.test("parseIpPacket() checks transport headers", () => {
  const info = new IpPacketInfo();
  // IPv4 + 12 bytes of "TCP"
  const shortTcp = hex("4500002000004000400600000a0000010a000002" + "00".repeat(12));
  assert.equal(parseIpPacket(shortTcp, 0, shortTcp.length, info), ParseResult.L4Truncated);

  const syn = kernelPacket("ipv4_tcp_syn");
  syn[20 + 12] = 0x40; // data offset 4
  assert.equal(parseIpPacket(syn, 0, syn.length, info), ParseResult.BadTcpHeader);
  syn[20 + 12] = 0xb0; // data offset 11 = 44 bytes > 40 present
  assert.equal(parseIpPacket(syn, 0, syn.length, info), ParseResult.BadTcpHeader);
  syn[20 + 12] = 0xa0;
  assert.equal(parseIpPacket(syn, 0, syn.length, info), ParseResult.Ok);

  const dns = kernelPacket("ipv4_udp_dns_query");
  dns[20 + 5] = 7; // UDP length 7
  assert.equal(parseIpPacket(dns, 0, dns.length, info), ParseResult.BadUdpLength);
  const shortUdp = hex("4500001a00004000401100000a0000010a000002" + "000100020008");
  assert.equal(parseIpPacket(shortUdp, 0, shortUdp.length, info), ParseResult.L4Truncated);

  const shortIcmp = hex("4500001b00004000400100000a0000010a000002" + "08000000000000");
  assert.equal(parseIpPacket(shortIcmp, 0, shortIcmp.length, info), ParseResult.L4Truncated);
});

Deno.test("parseIpPacket() accepts unknown protocols without transport fields (the filter decides)", () => {
  const info = new IpPacketInfo();
  const gre = hex("4500001800004000402f00000a0000010a00000200000800");
  const sctp6 = hex("6000000000048440" + "00".repeat(15) + "01" + "00".repeat(15) + "02" + "01020304");
  const icmpv4InV6 = hex(
    "6000000000080140" + "00".repeat(15) + "01" + "00".repeat(15) + "02" + "0800000000000000",
  );
  const icmpv6InV4 = hex("4500001c00004000403a00000a0000010a000002" + "8000000000000000");

  assert.equal(parseIpPacket(gre, 0, gre.length, info), ParseResult.Ok);
  assert.deepEqual([info.protocol, info.l4Kind, info.srcPort, info.dstPort, info.l4Len], [
    47,
    L4Kind.Other,
    0,
    0,
    4,
  ]);
  assert.equal(info.srcL4Id(), -1);
  assert.equal(parseIpPacket(sctp6, 0, sctp6.length, info), ParseResult.Ok);
  assert.deepEqual([info.protocol, info.l4Kind], [132, L4Kind.Other]);
  assert.equal(parseIpPacket(icmpv4InV6, 0, icmpv4InV6.length, info), ParseResult.Ok);
  assert.deepEqual([info.protocol, info.l4Kind, info.icmpType], [1, L4Kind.Other, -1]);
  assert.equal(parseIpPacket(icmpv6InV4, 0, icmpv6InV4.length, info), ParseResult.Ok);
  assert.deepEqual([info.protocol, info.l4Kind], [58, L4Kind.Other]);
});

Deno.test("parseIpPacket() drops non-first fragments and flags first fragments", () => {
  const info = new IpPacketInfo();
  const first = kernelPacket("ipv4_udp_dns_query");
  first[6] = 0x20; // MF, offset 0
  assert.equal(parseIpPacket(first, 0, first.length, info), ParseResult.Ok);
  assert.equal(info.moreFragments, true);
  assert.equal(info.dstPort, 53);

  const later = kernelPacket("ipv4_udp_dns_query");
  later[6] = 0x00;
  later[7] = 0x03; // offset 24 bytes
  assert.equal(parseIpPacket(later, 0, later.length, info), ParseResult.Fragment);
});

Deno.test("parseIpPacket() walks IPv6 extension headers to the transport header", () => {
  const info = new IpPacketInfo();
  const udp = kernelPacket("ipv6_udp");
  // hop-by-hop (8) -> routing (16) -> destination options (8) -> fragment (8, first) -> UDP
  const ext = hex(
    "2b00010400000000" + "3c01000000000000" + "0000000000000000" + "2c00010400000000" + "1100000112345678",
  );
  const p = insertExtensions(udp, 0, ext);

  assert.equal(parseIpPacket(p, 0, p.length, info), ParseResult.Ok);
  assert.equal(info.protocol, 17);
  assert.equal(info.headerLen, 40 + ext.length);
  assert.equal(info.l4Off, 40 + ext.length);
  assert.equal(info.l4Len, udp.length - 40);
  assert.equal(info.srcPort, 40002);
  assert.equal(info.moreFragments, true);
  assert.ok(checksumsOk(p, info));
  assert.ok(refPacketVerifies(p));
});

Deno.test("parseIpPacket() rejects bad IPv6 extension header chains", () => {
  const info = new IpPacketInfo();
  const udp = kernelPacket("ipv6_udp");

  const hbhNotFirst = insertExtensions(udp, 60, hex("0000000000000000" + "1100000000000000"));
  assert.equal(parseIpPacket(hbhNotFirst, 0, hbhNotFirst.length, info), ParseResult.BadExtensionHeader);

  const tooLong = insertExtensions(udp, 60, hex("1105000000000000"));
  assert.equal(parseIpPacket(tooLong, 0, tooLong.length, info), ParseResult.BadExtensionHeader);

  const laterFragment = insertExtensions(udp, 44, hex("1100002800000001"));
  assert.equal(parseIpPacket(laterFragment, 0, laterFragment.length, info), ParseResult.Fragment);
  assert.equal(info.protocol, 17);

  const cut = hex("6000000000043c40" + "00".repeat(32) + "11000000");
  assert.equal(parseIpPacket(cut, 0, cut.length, info), ParseResult.BadExtensionHeader);
});

Deno.test("parseIpPacket() never throws and keeps offsets in bounds on random input", () => {
  const info = new IpPacketInfo();
  const prefix = fc.constantFrom(0x45, 0x46, 0x4f, 0x60, 0x61, 0x00);
  fc.assert(
    fc.property(prefix, fc.uint8Array({ maxLength: 120 }), fc.nat(8), (first, rest, off) => {
      const buf = new Uint8Array(off + 1 + rest.length);
      buf[off] = first;
      buf.set(rest, off + 1);
      const len = buf.length - off;

      const r = parseIpPacket(buf, off, len, info);

      assert.ok(r >= 0 && r < PARSE_RESULT_COUNT);
      if (r === ParseResult.Ok) {
        assert.ok(info.l4Off >= off + 20 && info.l4Off + info.l4Len <= off + len);
        assert.equal(info.l4Off + info.l4Len, off + info.totalLen);
      }
    }),
    { numRuns: 2000 },
  );
});

Deno.test("dropReasonName() names every code", () => {
  const names = Object.keys(ParseResult);

  assert.equal(names.length, PARSE_RESULT_COUNT);
  for (const name of names) assert.equal(dropReasonName(ParseResult[name as keyof typeof ParseResult]), name);
  assert.equal(dropReasonName(99), "Unknown");
});

Deno.test("checksumsOk() verifies kernel packets and detects corruption", () => {
  const info = new IpPacketInfo();
  for (const name of KERNEL_PACKETS) {
    const p = kernelPacket(name);
    assert.equal(parseIpPacket(p, 0, p.length, info), ParseResult.Ok);
    assert.ok(checksumsOk(p, info), name);

    p[p.length - 1] = p[p.length - 1]! ^ 0x10;
    assert.equal(checksumsOk(p, info), false, `${name} corrupted payload`);
  }
  const hdr = kernelPacket("ipv4_tcp_syn");
  parseIpPacket(hdr, 0, hdr.length, info);
  hdr[8] = 63; // TTL: only the IPv4 header checksum covers it
  assert.equal(checksumsOk(hdr, info), false);
});

Deno.test("checksumsOk() accepts UDP checksum 0 over IPv4 only", () => {
  const info = new IpPacketInfo();
  const v4 = kernelPacket("ipv4_udp_dns_query");
  v4[26] = 0;
  v4[27] = 0;
  const v6 = kernelPacket("ipv6_udp");
  v6[46] = 0;
  v6[47] = 0;

  parseIpPacket(v4, 0, v4.length, info);
  assert.ok(checksumsOk(v4, info));
  parseIpPacket(v6, 0, v6.length, info);
  assert.equal(checksumsOk(v6, info), false);
});

Deno.test("recomputeChecksums() restores the kernel's checksums", () => {
  const info = new IpPacketInfo();
  for (const name of KERNEL_PACKETS) {
    const original = kernelPacket(name);
    const p = original.slice();
    assert.equal(parseIpPacket(p, 0, p.length, info), ParseResult.Ok);
    const l4Field = info.l4Off + (info.l4Kind === L4Kind.Tcp ? 16 : info.l4Kind === L4Kind.Udp ? 6 : 2);
    p.fill(0xaa, l4Field, l4Field + 2);
    if (info.version === 4) p.fill(0xaa, 10, 12);

    recomputeChecksums(p, info);

    assert.equal(toHex(p), toHex(original), name);
  }
});

Deno.test("recomputeChecksums() keeps IPv4 UDP checksum 0 and never writes a computed 0", () => {
  const info = new IpPacketInfo();
  const p = kernelPacket("ipv4_udp_dns_query");
  p[26] = 0;
  p[27] = 0;
  parseIpPacket(p, 0, p.length, info);

  recomputeChecksums(p, info);
  assert.equal((p[26]! << 8) | p[27]!, 0);

  // A datagram whose checksum computes to 0: choose the source port to make the sum 0xffff.
  const z = new Uint8Array(28);
  buildUdpPacket(z, 0, new Uint8Array(4), new Uint8Array(4), 0, 0, new Uint8Array(0));
  z[20] = 0xff;
  z[21] = 0xff - 17 - 8 - 8;
  parseIpPacket(z, 0, 28, info);
  recomputeChecksums(z, info);
  assert.equal((z[26]! << 8) | z[27]!, 0xffff);
  assert.ok(checksumsOk(z, info));
});

Deno.test("mergeEcnFromOuter() only upgrades ECT(0)/ECT(1) to CE, for both families", () => {
  const info = new IpPacketInfo();
  const all = [Ecn.NotEct, Ecn.Ect1, Ecn.Ect0, Ecn.Ce];
  for (const name of ["ipv4_udp_dns_query", "ipv6_udp"]) {
    for (const inner of all) {
      for (const outer of all) {
        const p = kernelPacket(name);
        parseIpPacket(p, 0, p.length, info);
        setEcn(p, info, inner);

        const changed = mergeEcnFromOuter(p, info, outer);

        const upgrade = outer === Ecn.Ce && (inner === Ecn.Ect0 || inner === Ecn.Ect1);
        assert.equal(changed, upgrade, `${name} inner ${inner} outer ${outer}`);
        assert.equal(parseIpPacket(p, 0, p.length, info), ParseResult.Ok);
        assert.equal(info.ecn, upgrade ? Ecn.Ce : inner);
        assert.ok(checksumsOk(p, info));
      }
    }
  }
});

Deno.test("setEcn() leaves DSCP alone and keeps the IPv4 header checksum valid", () => {
  const info = new IpPacketInfo();
  const p = kernelPacket("ipv4_icmp_port_unreachable"); // TOS 0xc0
  parseIpPacket(p, 0, p.length, info);

  setEcn(p, info, Ecn.Ect0);

  assert.equal(p[1], 0xc2);
  assert.ok(ipv4HeaderChecksumOk(p, 0));
  const v6 = hex("6b9abcde00000000" + "00".repeat(32));
  parseIpPacket(v6, 0, v6.length, info);
  setEcn(v6, info, Ecn.Ce);
  assert.equal(toHex(v6.subarray(0, 4)), "6bbabcde");
});

Deno.test("parseIcmpQuote() reads the packets quoted in kernel ICMP errors", () => {
  const outer = new IpPacketInfo();
  const quote = new IpPacketInfo();
  const v4 = kernelPacket("ipv4_icmp_port_unreachable");
  const v6 = kernelPacket("ipv6_icmp_port_unreachable");

  parseIpPacket(v4, 0, v4.length, outer);
  assert.equal(parseIcmpQuote(v4, outer, quote), ParseResult.Ok);
  assert.deepEqual(
    [
      quote.version,
      quote.off,
      quote.l4Kind,
      quote.src4,
      quote.dst4,
      quote.srcPort,
      quote.dstPort,
      quote.totalLen,
    ],
    [4, 28, L4Kind.Udp, 0x0a090002, 0x0a090001, 5555, 9, 36],
  );
  assert.equal(
    toHex(v4.subarray(quote.off, quote.off + quote.totalLen)),
    toHex(kernelQuote("ipv4_icmp_port_unreachable")),
  );

  parseIpPacket(v6, 0, v6.length, outer);
  assert.equal(parseIcmpQuote(v6, outer, quote), ParseResult.Ok);
  assert.deepEqual(
    [quote.version, quote.off, quote.l4Kind, quote.srcOff, quote.dstOff, quote.srcPort, quote.dstPort],
    [6, 48, L4Kind.Udp, 56, 72, 5556, 9],
  );
  assert.equal(
    toHex(v6.subarray(quote.off, quote.off + quote.totalLen)),
    toHex(kernelQuote("ipv6_icmp_port_unreachable")),
  );
});

Deno.test("parseIcmpQuote() accepts a header + 8 byte quote and rejects what cannot be translated", () => {
  const outer = new IpPacketInfo();
  const quote = new IpPacketInfo();
  const orig = kernelPacket("ipv4_tcp_syn");
  const out = new Uint8Array(200);
  const n = buildIcmpUnreachableReply(out, 0, orig, parsed(orig), UnreachableReason.Unreachable);
  parseIpPacket(out, 0, n, outer);

  assert.equal(parseIcmpQuote(out, outer, quote), ParseResult.Ok);
  assert.deepEqual([quote.l4Kind, quote.srcPort, quote.dstPort, quote.l4Len, quote.tcpFlags], [
    L4Kind.Tcp,
    40003,
    80,
    8,
    0,
  ]);

  const cut = buildIcmpv4Error(out, 0, 1, 2, 3, 0, 0, orig, 0, 23);
  parseIpPacket(out, 0, cut, outer);
  assert.equal(parseIcmpQuote(out, outer, quote), ParseResult.L4Truncated);

  const noHeader = buildIcmpv4Error(out, 0, 1, 2, 3, 0, 0, orig, 0, 19);
  parseIpPacket(out, 0, noHeader, outer);
  assert.equal(parseIcmpQuote(out, outer, quote), ParseResult.Truncated);

  const v6quote = kernelPacket("ipv6_udp");
  const mixed = buildIcmpv4Error(out, 0, 1, 2, 3, 0, 0, v6quote, 0, v6quote.length);
  parseIpPacket(out, 0, mixed, outer);
  assert.equal(parseIcmpQuote(out, outer, quote), ParseResult.VersionMismatch);

  const echo = kernelPacket("ipv4_icmp_echo_request");
  parseIpPacket(echo, 0, echo.length, outer);
  assert.equal(parseIcmpQuote(echo, outer, quote), ParseResult.NotIcmpError);
  const udp = kernelPacket("ipv6_udp");
  parseIpPacket(udp, 0, udp.length, outer);
  assert.equal(parseIcmpQuote(udp, outer, quote), ParseResult.NotIcmpError);
});

Deno.test("parseIcmpQuote() reads a quoted ICMP echo identifier", () => {
  const outer = new IpPacketInfo();
  const quote = new IpPacketInfo();
  const echo = new Uint8Array(100);
  const e = buildIcmpEchoPacket(echo, 0, ip("fd00::1"), ip("fd00::2"), false, 0x4242, 3, new Uint8Array(8));
  const out = new Uint8Array(300);
  const n = buildIcmpUnreachableReply(
    out,
    0,
    echo,
    parsed(echo.subarray(0, e)),
    UnreachableReason.Prohibited,
  );
  parseIpPacket(out, 0, n, outer);

  assert.equal(parseIcmpQuote(out, outer, quote), ParseResult.Ok);
  assert.deepEqual([quote.l4Kind, quote.icmpType, quote.icmpId, quote.srcL4Id()], [
    L4Kind.Icmp,
    128,
    0x4242,
    0x4242,
  ]);
});

Deno.test("rewriting a quoted packet keeps its IP and transport checksums valid", () => {
  const outer = new IpPacketInfo();
  const quote = new IpPacketInfo();
  const check = new IpPacketInfo();
  const v4 = kernelPacket("ipv4_icmp_port_unreachable");
  parseIpPacket(v4, 0, v4.length, outer);
  parseIcmpQuote(v4, outer, quote);

  assert.ok(setIpv4Dst(v4, quote, 0x64600001));
  assert.ok(setSrcL4Id(v4, quote, 12345));

  const q4 = v4.subarray(quote.off);
  assert.equal(parseIpPacket(q4, 0, q4.length, check), ParseResult.Ok);
  assert.deepEqual([check.dst4, check.srcPort], [0x64600001, 12345]);
  assert.ok(checksumsOk(q4, check));

  const v6 = kernelPacket("ipv6_icmp_port_unreachable");
  parseIpPacket(v6, 0, v6.length, outer);
  parseIcmpQuote(v6, outer, quote);
  assert.ok(setIpv6Dst(v6, quote, ip("fd00:2021:1111:8000::5"), 0));
  assert.ok(setSrcL4Id(v6, quote, 1));
  const q6 = v6.subarray(quote.off);
  assert.equal(parseIpPacket(q6, 0, q6.length, check), ParseResult.Ok);
  assert.ok(checksumsOk(q6, check));
  assert.ok(refPacketVerifies(q6));
});

Deno.test("rewrites on a short quote leave fields outside the quote untouched", () => {
  const outer = new IpPacketInfo();
  const quote = new IpPacketInfo();
  const orig = kernelPacket("ipv4_tcp_syn");
  const out = new Uint8Array(200);
  const n = buildIcmpUnreachableReply(out, 0, orig, parsed(orig), UnreachableReason.Prohibited);
  out.fill(0xee, n); // bytes after the quote must not be written (TCP checksum would be at +16)
  parseIpPacket(out, 0, n, outer);
  parseIcmpQuote(out, outer, quote);

  assert.ok(setIpv4Dst(out, quote, 0x64600002));
  assert.ok(setDstPort(out, quote, 8080));

  assert.ok(ipv4HeaderChecksumOk(out, quote.off));
  assert.ok(out.subarray(n).every((b) => b === 0xee));
});

Deno.test("buildIcmpUnreachableReply() picks the spec's codes per family and reason", () => {
  const out = new Uint8Array(1500);
  const info = new IpPacketInfo();
  const cases: [string, UnreachableReason, number, number, number][] = [
    ["ipv4_udp_dns_query", UnreachableReason.Prohibited, 3, 13, 56],
    ["ipv4_udp_dns_query", UnreachableReason.Unreachable, 3, 0, 56],
    ["ipv6_tcp_syn", UnreachableReason.Prohibited, 1, 1, 128],
    ["ipv6_tcp_syn", UnreachableReason.Unreachable, 1, 3, 128],
  ];
  for (const [name, reason, type, code, size] of cases) {
    const orig = kernelPacket(name);

    const n = buildIcmpUnreachableReply(out, 0, orig, parsed(orig), reason);

    assert.equal(n, size, name);
    assert.equal(parseIpPacket(out, 0, n, info), ParseResult.Ok);
    assert.equal(info.ttl, 20);
    const l4 = info.l4Off;
    assert.deepEqual([icmpType(out, l4), icmpCode(out, l4)], [type, code]);
    assert.ok(checksumsOk(out, info));
    assert.ok(refPacketVerifies(out.subarray(0, n)));
  }
  assert.equal(buildIcmpUnreachableReply(out, 0, out, new IpPacketInfo(), UnreachableReason.Prohibited), 0);
});

Deno.test("describeIpPacket() summarises a packet for debug logs", () => {
  const info = new IpPacketInfo();
  const dns = kernelPacket("ipv4_udp_dns_query");
  const syn = kernelPacket("ipv6_tcp_syn");
  const echo = kernelPacket("ipv4_icmp_echo_request");
  const gre = hex("4500001800004000402f00000a0000010a00000200000800");

  parseIpPacket(dns, 0, dns.length, info);
  assert.equal(describeIpPacket(dns, info), "IPv4 10.9.0.1:40000 -> 10.9.0.2:53 UDP len=57");
  parseIpPacket(syn, 0, syn.length, info);
  assert.equal(describeIpPacket(syn, info), "IPv6 [fd00:9::1]:40001 -> [fd00:9::2]:443 TCP flags=0x2 len=80");
  parseIpPacket(echo, 0, echo.length, info);
  assert.equal(describeIpPacket(echo, info), "IPv4 10.9.0.1 -> 10.9.0.2 ICMP type=8 code=0 id=7346 len=44");
  parseIpPacket(gre, 0, gre.length, info);
  assert.equal(describeIpPacket(gre, info), "IPv4 10.0.0.1 -> 10.0.0.2 proto=47 len=24");
});

function ip(text: string): Uint8Array {
  return parseIp(text)!;
}

function parsed(p: Uint8Array): IpPacketInfo {
  const info = new IpPacketInfo();
  assert.equal(parseIpPacket(p, 0, p.length, info), ParseResult.Ok);
  return info;
}

/**
 * Inserts extension headers after the fixed IPv6 header: the fixed header's next header becomes
 * `firstNextHeader` (0 = hop-by-hop) or, when it is 60/44/..., that value; the chain's last next
 * header must already name the transport protocol.
 */
function insertExtensions(p: Uint8Array, firstNextHeader: number, ext: Uint8Array): Uint8Array {
  const out = new Uint8Array(p.length + ext.length);
  out.set(p.subarray(0, 40));
  out.set(ext, 40);
  out.set(p.subarray(40), 40 + ext.length);
  out[6] = firstNextHeader;
  const payloadLen = ((p[4]! << 8) | p[5]!) + ext.length;
  out[4] = payloadLen >> 8;
  out[5] = payloadLen & 0xff;
  return out;
}
