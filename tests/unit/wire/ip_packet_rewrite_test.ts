import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checksumsOk,
  IpPacketInfo,
  L4Kind,
  parseIpPacket,
  ParseResult,
  recomputeChecksums,
  setDstL4Id,
  setDstPort,
  setEcn,
  setIcmpIdentifier,
  setIpv4Dst,
  setIpv4Src,
  setIpv6Dst,
  setIpv6Src,
  setSrcL4Id,
  setSrcPort,
} from "../../../src/wire/ip_packet.ts";
import { refOnesSum, refPacketVerifies, toHex } from "./_reference.ts";

/** A packet description; bytes are laid out by {@link makePacket} without using src/wire. */
interface PacketSpec {
  v6: boolean;
  kind: "tcp" | "udp" | "icmp";
  src: number[];
  dst: number[];
  a: number; // TCP/UDP source port, ICMP identifier
  b: number; // TCP/UDP destination port, ICMP sequence
  icmpReply: boolean;
  payload: number[];
  optionWords: number; // IPv4 options (4-byte words) or IPv6 destination-options blocks (8 bytes)
  ecn: number;
  udpNoChecksum: boolean;
  headroom: number;
}

type Rewrite =
  | { op: "src" | "dst"; addr: number[] }
  | { op: "srcPort" | "dstPort" | "icmpId" | "srcL4" | "dstL4"; value: number }
  | { op: "ecn"; value: number };

const u16 = fc.integer({ min: 0, max: 0xffff });

function specArb(): fc.Arbitrary<PacketSpec> {
  return fc.boolean().chain((v6) =>
    fc.record({
      v6: fc.constant(v6),
      kind: fc.constantFrom("tcp" as const, "udp" as const, "icmp" as const),
      src: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: v6 ? 16 : 4, maxLength: v6 ? 16 : 4 }),
      dst: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: v6 ? 16 : 4, maxLength: v6 ? 16 : 4 }),
      a: u16,
      b: u16,
      icmpReply: fc.boolean(),
      payload: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 64 }),
      optionWords: fc.integer({ min: 0, max: 2 }),
      ecn: fc.integer({ min: 0, max: 3 }),
      udpNoChecksum: fc.boolean(),
      headroom: fc.integer({ min: 0, max: 20 }),
    })
  );
}

function rewriteArb(v6: boolean): fc.Arbitrary<Rewrite> {
  const addr = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: v6 ? 16 : 4, maxLength: v6 ? 16 : 4 });
  return fc.oneof(
    fc.record({ op: fc.constantFrom("src" as const, "dst" as const), addr }),
    fc.record({
      op: fc.constantFrom(
        "srcPort" as const,
        "dstPort" as const,
        "icmpId" as const,
        "srcL4" as const,
        "dstL4" as const,
      ),
      value: u16,
    }),
    fc.record({ op: fc.constant("ecn" as const), value: fc.integer({ min: 0, max: 3 }) }),
  );
}

Deno.test("rewrites with incremental checksums equal a full recompute (fast-check, both families, TCP/UDP/ICMP)", () => {
  const info = new IpPacketInfo();
  const check = new IpPacketInfo();
  const arb = specArb().chain((spec) =>
    fc.tuple(fc.constant(spec), fc.array(rewriteArb(spec.v6), { minLength: 1, maxLength: 8 }))
  );
  fc.assert(
    fc.property(arb, ([spec, rewrites]) => {
      const buf = makePacket(spec);
      const off = spec.headroom;
      const len = buf.length - off;
      assert.equal(parseIpPacket(buf, off, len, info), ParseResult.Ok);
      assert.ok(refPacketVerifies(buf.subarray(off)), "generated packet must verify");

      for (const rw of rewrites) {
        const applied = apply(buf, info, rw);

        assert.equal(applied, expectApplied(spec, rw), `${rw.op} applicability`);
        const full = buf.slice();
        assert.equal(parseIpPacket(full, off, len, check), ParseResult.Ok);
        recomputeChecksums(full, check);
        assert.equal(toHex(buf), toHex(full), `after ${rw.op}: incremental != full recompute`);
        assert.ok(checksumsOk(buf, info));
        assert.ok(refPacketVerifies(buf.subarray(off)));
        assert.equal(parseIpPacket(buf, off, len, check), ParseResult.Ok);
        assert.deepEqual(fieldsOf(check), fieldsOf(info), "info kept in sync with the bytes");
      }
      if (spec.kind === "udp" && !spec.v6 && spec.udpNoChecksum) {
        assert.equal((buf[info.l4Off + 6]! << 8) | buf[info.l4Off + 7]!, 0);
      }
    }),
    { numRuns: 400 },
  );
});

Deno.test("setIcmpIdentifier() writes 0xffff for an all-zero ICMPv4 message (never the other zero)", () => {
  const info = new IpPacketInfo();
  const spec: PacketSpec = {
    v6: false,
    kind: "icmp",
    src: [10, 0, 0, 1],
    dst: [10, 0, 0, 2],
    a: 0x1234,
    b: 0,
    icmpReply: true,
    payload: [0, 0, 0, 0],
    optionWords: 0,
    ecn: 0,
    udpNoChecksum: false,
    headroom: 0,
  };
  const buf = makePacket(spec);
  parseIpPacket(buf, 0, buf.length, info);

  assert.ok(setIcmpIdentifier(buf, info, 0));

  assert.equal((buf[22]! << 8) | buf[23]!, 0xffff);
  assert.ok(checksumsOk(buf, info));
});

Deno.test("rewrites refuse the wrong family or protocol and leave the packet untouched", () => {
  const info = new IpPacketInfo();
  const base: PacketSpec = {
    v6: false,
    kind: "icmp",
    src: [10, 0, 0, 1],
    dst: [10, 0, 0, 2],
    a: 1,
    b: 2,
    icmpReply: false,
    payload: [1, 2, 3],
    optionWords: 0,
    ecn: 0,
    udpNoChecksum: false,
    headroom: 0,
  };
  const v4 = makePacket(base);
  parseIpPacket(v4, 0, v4.length, info);
  const before = toHex(v4);

  assert.equal(setIpv6Src(v4, info, new Uint8Array(16), 0), false);
  assert.equal(setIpv6Dst(v4, info, new Uint8Array(16), 0), false);
  assert.equal(setSrcPort(v4, info, 9), false);
  assert.equal(setDstPort(v4, info, 9), false);
  assert.equal(toHex(v4), before);

  const v6 = makePacket({
    ...base,
    v6: true,
    kind: "udp",
    src: new Array(16).fill(1),
    dst: new Array(16).fill(2),
  });
  parseIpPacket(v6, 0, v6.length, info);
  const before6 = toHex(v6);
  assert.equal(setIpv4Src(v6, info, 1), false);
  assert.equal(setIpv4Dst(v6, info, 1), false);
  assert.equal(setIcmpIdentifier(v6, info, 9), false);
  assert.equal(toHex(v6), before6);

  const unreachable = makePacket({ ...base, a: 0, b: 0 });
  unreachable[20] = 3; // turn the echo request into a destination unreachable (checksum now stale)
  parseIpPacket(unreachable, 0, unreachable.length, info);
  assert.equal(setIcmpIdentifier(unreachable, info, 9), false);
  assert.equal(setSrcL4Id(unreachable, info, 9), false);
  assert.equal(info.l4Kind, L4Kind.Icmp);
});

function apply(buf: Uint8Array, info: IpPacketInfo, rw: Rewrite): boolean {
  switch (rw.op) {
    case "src":
      return info.version === 4
        ? setIpv4Src(buf, info, u32(rw.addr))
        : setIpv6Src(buf, info, Uint8Array.from(rw.addr), 0);
    case "dst":
      return info.version === 4
        ? setIpv4Dst(buf, info, u32(rw.addr))
        : setIpv6Dst(buf, info, Uint8Array.from(rw.addr), 0);
    case "srcPort":
      return setSrcPort(buf, info, rw.value);
    case "dstPort":
      return setDstPort(buf, info, rw.value);
    case "icmpId":
      return setIcmpIdentifier(buf, info, rw.value);
    case "srcL4":
      return setSrcL4Id(buf, info, rw.value);
    case "dstL4":
      return setDstL4Id(buf, info, rw.value);
    case "ecn":
      setEcn(buf, info, rw.value);
      return true;
  }
}

function expectApplied(spec: PacketSpec, rw: Rewrite): boolean {
  switch (rw.op) {
    case "src":
    case "dst":
    case "ecn":
      return true;
    case "srcPort":
    case "dstPort":
      return spec.kind !== "icmp";
    case "icmpId":
      return spec.kind === "icmp";
    case "srcL4":
    case "dstL4":
      return true;
  }
}

function fieldsOf(i: IpPacketInfo): unknown[] {
  return [i.version, i.l4Kind, i.src4, i.dst4, i.srcPort, i.dstPort, i.icmpId, i.icmpSeq, i.ecn, i.totalLen];
}

function u32(b: number[]): number {
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

/** Lays out the packet byte by byte and fills checksums with the reference implementation. */
function makePacket(s: PacketSpec): Uint8Array {
  const proto = s.kind === "tcp" ? 6 : s.kind === "udp" ? 17 : s.v6 ? 58 : 1;
  const l4: number[] = [];
  if (s.kind === "tcp") {
    l4.push(
      s.a >> 8,
      s.a & 255,
      s.b >> 8,
      s.b & 255,
      0,
      0,
      0,
      1,
      0,
      0,
      0,
      0,
      0x50,
      0x18,
      0xff,
      0xff,
      0,
      0,
      0,
      0,
    );
  } else if (s.kind === "udp") {
    const ulen = 8 + s.payload.length;
    l4.push(s.a >> 8, s.a & 255, s.b >> 8, s.b & 255, ulen >> 8, ulen & 255, 0, 0);
  } else {
    const type = s.v6 ? (s.icmpReply ? 129 : 128) : (s.icmpReply ? 0 : 8);
    l4.push(type, 0, 0, 0, s.a >> 8, s.a & 255, s.b >> 8, s.b & 255);
  }
  l4.push(...s.payload);
  const csumAt = s.kind === "tcp" ? 16 : s.kind === "udp" ? 6 : 2;
  let header: number[];
  let pseudo: number[];
  if (!s.v6) {
    const ihl = 20 + 4 * s.optionWords;
    const total = ihl + l4.length;
    header = [
      0x40 | (ihl / 4),
      s.ecn,
      total >> 8,
      total & 255,
      0x12,
      0x34,
      0x40,
      0,
      64,
      proto,
      0,
      0,
      ...s.src,
      ...s.dst,
    ];
    for (let i = 0; i < s.optionWords; i++) header.push(1, 1, 1, 1); // NOPs
    const hc = 0xffff - refOnesSum(header);
    header[10] = hc >> 8;
    header[11] = hc & 255;
    pseudo = [...s.src, ...s.dst, 0, proto, l4.length >> 8, l4.length & 255];
  } else {
    const ext: number[] = [];
    for (let i = 0; i < s.optionWords; i++) {
      ext.push(i === s.optionWords - 1 ? proto : 60, 0, 1, 4, 0, 0, 0, 0); // PadN-filled destination options
    }
    const plen = ext.length + l4.length;
    header = [0x60, (s.ecn << 4) | 0x0a, 0xbc, 0xde, plen >> 8, plen & 255, s.optionWords ? 60 : proto, 64];
    header.push(...s.src, ...s.dst, ...ext);
    pseudo = [...s.src, ...s.dst, 0, 0, l4.length >> 8, l4.length & 255, 0, 0, 0, proto];
  }
  if (!(s.kind === "udp" && !s.v6 && s.udpNoChecksum)) {
    let c = 0xffff - refOnesSum(s.kind === "icmp" && !s.v6 ? l4 : [...pseudo, ...l4]);
    if (c === 0 && s.kind === "udp") c = 0xffff;
    l4[csumAt] = c >> 8;
    l4[csumAt + 1] = c & 255;
  }
  const out = new Uint8Array(s.headroom + header.length + l4.length);
  out.set(header, s.headroom);
  out.set(l4, s.headroom + header.length);
  return out;
}
