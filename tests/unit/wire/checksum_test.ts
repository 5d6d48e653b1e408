import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checksumAdd,
  checksumApplyDelta,
  checksumDelta,
  checksumFinish,
  checksumFold,
  checksumUpdate128,
  checksumUpdate16,
  checksumUpdate32,
  internetChecksum,
  IPPROTO_UDP,
  pseudoHeaderSumIpv4,
  pseudoHeaderSumIpv6,
} from "../../../src/wire/checksum.ts";
import { hex, kernelPacket, refOnesSum } from "./_reference.ts";

Deno.test("checksumAdd() matches the RFC 1071 section 3 example", () => {
  const data = hex("0001f203f4f5f6f7");

  const sum = checksumFold(checksumAdd(0, data, 0, data.length));

  assert.equal(sum, 0xddf2);
  assert.equal(internetChecksum(data, 0, data.length), 0x220d);
});

Deno.test("internetChecksum() computes a known IPv4 header checksum", () => {
  // 192.168.0.1 -> 192.168.0.199, UDP, total length 0x73: checksum 0xb861.
  const header = hex("450000730000400040110000c0a80001c0a800c7");

  assert.equal(internetChecksum(header, 0, 20), 0xb861);
});

Deno.test("checksumAdd() pads an odd trailing byte with zero and honours the offset", () => {
  const data = hex("ff0102030405");

  assert.equal(checksumAdd(0, data, 1, 5), 0x0102 + 0x0304 + 0x0500);
  assert.equal(checksumAdd(7, data, 1, 0), 7);
});

Deno.test("checksumFold() folds carries repeatedly, including sums beyond 32 bits", () => {
  assert.equal(checksumFold(0x1fffe), 0xffff);
  assert.equal(checksumFold(0xffff), 0xffff);
  assert.equal(checksumFold(0), 0);
  assert.equal(checksumFold(0x2_0000_0001), 3); // words 0x0002 + 0x0000 + 0x0001
  assert.equal(checksumFinish(0xffff), 0);
});

Deno.test("internetChecksum() agrees with the reference on random data", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
      assert.equal(internetChecksum(data, 0, data.length), 0xffff - refOnesSum(Array.from(data)));
    }),
    { numRuns: 300 },
  );
});

Deno.test("pseudoHeaderSumIpv4()/Ipv6() make kernel UDP checksums verify", () => {
  const v4 = kernelPacket("ipv4_udp_dns_query");
  const v6 = kernelPacket("ipv6_udp");

  const s4 = pseudoHeaderSumIpv4(v4, 12, 16, IPPROTO_UDP, v4.length - 20);
  const s6 = pseudoHeaderSumIpv6(v6, 8, 24, IPPROTO_UDP, v6.length - 40);

  assert.equal(checksumFold(checksumAdd(s4, v4, 20, v4.length - 20)), 0xffff);
  assert.equal(checksumFold(checksumAdd(s6, v6, 40, v6.length - 40)), 0xffff);
});

Deno.test("pseudoHeaderSumIpv6() splits a length above 16 bits into two words", () => {
  const zero = new Uint8Array(32);

  assert.equal(pseudoHeaderSumIpv6(zero, 0, 16, 17, 0x12345), 0x1 + 0x2345 + 17);
});

Deno.test("checksumUpdate16/32/128() equal a full recompute after a field change", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 20, maxLength: 200 }),
      fc.nat(),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.constantFrom(2, 4, 16),
      (data, at, replacement, width) => {
        const words = Math.floor((data.length - width) / 2);
        const pos = 2 * (at % (words + 1));
        // All-zero data has two representations of zero (0x0000/0xffff); real headers never are.
        fc.pre(data.some((b, i) => b !== 0 && (i < pos || i >= pos + width)));
        const before = internetChecksum(data, 0, data.length);
        const after = data.slice();
        after.set(replacement.subarray(0, width), pos);
        const full = internetChecksum(after, 0, after.length);

        let inc: number;
        if (width === 2) inc = checksumUpdate16(before, u16(data, pos), u16(after, pos));
        else if (width === 4) inc = checksumUpdate32(before, u32(data, pos), u32(after, pos));
        else inc = checksumUpdate128(before, data, pos, after, pos);

        assert.equal(inc, full);
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("checksumApplyDelta() composes deltas of several fields", () => {
  const data = hex("45000073000040004011b861c0a80001c0a800c7");
  const changed = data.slice();
  changed.set([10, 0, 0, 1], 12);
  changed.set([10, 0, 0, 2], 16);
  changed[10] = 0;
  changed[11] = 0;

  const delta = checksumDelta(data, 12, changed, 12, 8);
  const inc = checksumApplyDelta(0xb861, delta);

  assert.equal(inc, internetChecksum(changed, 0, 20));
});

function u16(b: Uint8Array, i: number): number {
  return (b[i]! << 8) | b[i + 1]!;
}

function u32(b: Uint8Array, i: number): number {
  return ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
}
