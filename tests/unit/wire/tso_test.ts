import assert from "node:assert/strict";
import {
  COALESCE_MAX_BYTES,
  completeChecksum,
  GsoError,
  gsoSegmentCount,
  gsoSplit,
  GsoType,
  tcpCanFollow,
  tcpCoalesceHeader,
  tcpSameFlow,
  TcpSegmentInfo,
  tcpSegmentInfo,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VirtioNetHdr,
} from "../../../src/wire/tso.ts";

// ---------------------------------------------------------------------------------------------
// Independent reference helpers (straightforward RFC 1071 code, no shared implementation).

function refChecksum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function pseudo(packet: Uint8Array, v6: boolean, proto: number, l4Len: number): number {
  const addrs = v6 ? packet.subarray(8, 40) : packet.subarray(12, 20);
  return refChecksum(addrs) + proto + l4Len;
}

/** True when the L4 checksum of an IPv4/IPv6 packet verifies. */
function l4ChecksumOk(packet: Uint8Array): boolean {
  const v6 = packet[0]! >> 4 === 6;
  const l4Off = v6 ? 40 : (packet[0]! & 15) * 4;
  const proto = v6 ? packet[6]! : packet[9]!;
  const l4 = packet.subarray(l4Off);
  return refChecksum(l4, pseudo(packet, v6, proto, l4.length)) === 0xffff;
}

function ipv4HeaderOk(packet: Uint8Array): boolean {
  return refChecksum(packet.subarray(0, (packet[0]! & 15) * 4)) === 0xffff;
}

function u16(b: Uint8Array, off: number): number {
  return (b[off]! << 8) | b[off + 1]!;
}

function u32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) >>> 0) + (b[off + 1]! << 16) + (b[off + 2]! << 8) + b[off + 3]!;
}

function put16(b: Uint8Array, off: number, v: number): void {
  b[off] = v >> 8;
  b[off + 1] = v & 0xff;
}

function put32(b: Uint8Array, off: number, v: number): void {
  put16(b, off, Math.floor(v / 65536));
  put16(b, off + 2, v % 65536);
}

function payloadOf(n: number): Uint8Array {
  const p = new Uint8Array(n);
  for (let i = 0; i < n; i++) p[i] = (i * 7 + 3) & 0xff;
  return p;
}

/** A TCP super-packet as the kernel hands it over (IP total length = whole packet). */
function tcpSuperPacket(
  v6: boolean,
  payload: Uint8Array,
  opts: { seq: number; flags: number; ipId?: number; options?: number },
): Uint8Array {
  const ipLen = v6 ? 40 : 20;
  const tcpLen = 20 + (opts.options ?? 0);
  const pkt = new Uint8Array(ipLen + tcpLen + payload.length);
  if (v6) {
    pkt[0] = 0x60;
    put16(pkt, 4, tcpLen + payload.length);
    pkt[6] = 6;
    pkt[7] = 64;
    pkt.set([0xfd, 0, 0x20, 0x21, 0x11, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 8);
    pkt.set([0xfd, 0, 0x20, 0x21, 0x11, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3], 24);
  } else {
    pkt[0] = 0x45;
    put16(pkt, 2, Math.min(pkt.length, 0xffff));
    put16(pkt, 4, opts.ipId ?? 0x1234);
    pkt[6] = 0x40; // DF
    pkt[8] = 64;
    pkt[9] = 6;
    pkt.set([100, 64, 0, 2], 12);
    pkt.set([100, 64, 0, 3], 16);
  }
  const t = ipLen;
  put16(pkt, t, 443);
  put16(pkt, t + 2, 51000);
  put32(pkt, t + 4, opts.seq);
  put32(pkt, t + 8, 0x01020304);
  pkt[t + 12] = (tcpLen / 4) << 4;
  pkt[t + 13] = opts.flags;
  put16(pkt, t + 14, 65535);
  for (let i = 20; i < tcpLen; i++) pkt[t + i] = 1; // NOP options
  pkt.set(payload, ipLen + tcpLen);
  return pkt;
}

function udpSuperPacket(v6: boolean, payload: Uint8Array): Uint8Array {
  const ipLen = v6 ? 40 : 20;
  const pkt = new Uint8Array(ipLen + 8 + payload.length);
  if (v6) {
    pkt[0] = 0x60;
    put16(pkt, 4, 8 + payload.length);
    pkt[6] = 17;
    pkt[7] = 64;
    pkt[23] = 2;
    pkt[39] = 3;
    pkt[8] = 0xfd;
    pkt[24] = 0xfd;
  } else {
    pkt[0] = 0x45;
    put16(pkt, 2, pkt.length);
    put16(pkt, 4, 0xfffe);
    pkt[8] = 64;
    pkt[9] = 17;
    pkt.set([100, 64, 0, 2], 12);
    pkt.set([100, 64, 0, 3], 16);
  }
  put16(pkt, ipLen, 5353);
  put16(pkt, ipLen + 2, 53);
  put16(pkt, ipLen + 4, 8 + payload.length);
  pkt.set(payload, ipLen + 8);
  return pkt;
}

const SLOT = 2048;
const SRC_OFF = 64 * SLOT; // the super-packet sits after 64 slots, like the TUN scratch region

/** Puts `pkt` at SRC_OFF of a fresh buffer and splits it into slots 0.. with the given window. */
function split(pkt: Uint8Array, hdr: VirtioNetHdr, first = 0, max = 64, cap = SLOT) {
  const buf = new Uint8Array(SRC_OFF + pkt.length);
  buf.set(pkt, SRC_OFF);
  const offsets = new Uint32Array(64).map((_, i) => i * SLOT + 20);
  const lengths = new Uint32Array(64);
  const n = gsoSplit(buf, SRC_OFF, pkt.length, hdr, first, offsets, lengths, 0, max, cap);
  const segments: Uint8Array[] = [];
  for (let i = 0; i < n; i++) segments.push(buf.slice(offsets[i]!, offsets[i]! + lengths[i]!));
  return { n, segments };
}

function gsoHdr(
  type: number,
  gsoSize: number,
  hdrLen: number,
  csumStart: number,
  csumOffset: number,
): VirtioNetHdr {
  const h = new VirtioNetHdr();
  h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  h.gsoType = type;
  h.gsoSize = gsoSize;
  h.hdrLen = hdrLen;
  h.csumStart = csumStart;
  h.csumOffset = csumOffset;
  return h;
}

// ---------------------------------------------------------------------------------------------

Deno.test("gsoSplit() splits an IPv4 TCP super-packet into MSS segments with correct headers", () => {
  const mss = 1228;
  const payload = payloadOf(mss * 5 + 300);
  const seq0 = 0xffff_f000; // wraps during the split
  const pkt = tcpSuperPacket(false, payload, { seq: seq0, flags: 0x18 | 0x01 | 0x80, ipId: 0xfffe }); // PSH|ACK|FIN|CWR
  const hdr = gsoHdr(GsoType.TcpV4, mss, 40, 20, 16);
  assert.equal(gsoSegmentCount(pkt, 0, pkt.length, hdr), 6);
  const { n, segments } = split(pkt, hdr);
  assert.equal(n, 6);
  const joined: number[] = [];
  segments.forEach((seg, k) => {
    const last = k === 5;
    assert.equal(seg.length, 40 + (last ? 300 : mss));
    assert.equal(u16(seg, 2), seg.length, "IPv4 total length");
    assert.equal(u16(seg, 4), (0xfffe + k) & 0xffff, "IPv4 id increments");
    assert.ok(ipv4HeaderOk(seg), "IPv4 header checksum");
    assert.equal(u32(seg, 24), (seq0 + k * mss) % 2 ** 32, "sequence number");
    assert.equal(u32(seg, 28), 0x01020304, "ack number kept");
    const flags = seg[33]!;
    assert.equal((flags & 0x08) !== 0, last, "PSH only on the last segment");
    assert.equal((flags & 0x01) !== 0, last, "FIN only on the last segment");
    assert.equal((flags & 0x80) !== 0, k === 0, "CWR only on the first segment");
    assert.ok((flags & 0x10) !== 0, "ACK on every segment");
    assert.ok(l4ChecksumOk(seg), `TCP checksum of segment ${k}`);
    joined.push(...seg.subarray(40));
  });
  assert.deepEqual(new Uint8Array(joined), payload);
});

Deno.test("gsoSplit() handles IPv6 TCP with options and resumes where a full batch stopped", () => {
  const mss = 1208;
  const payload = payloadOf(mss * 7);
  const pkt = tcpSuperPacket(true, payload, { seq: 1000, flags: 0x18, options: 12 });
  const hdr = gsoHdr(GsoType.TcpV6, mss, 72, 40, 16);
  const a = split(pkt, hdr, 0, 3);
  const b = split(pkt, hdr, 3, 64);
  assert.equal(a.n, 3);
  assert.equal(b.n, 4);
  const all = [...a.segments, ...b.segments];
  const joined: number[] = [];
  all.forEach((seg, k) => {
    assert.equal(seg.length, 72 + mss);
    assert.equal(u16(seg, 4), seg.length - 40, "IPv6 payload length");
    assert.equal(u32(seg, 44), 1000 + k * mss);
    assert.equal((seg[53]! & 0x08) !== 0, k === 6, "PSH only on the last segment");
    assert.deepEqual([...seg.subarray(60, 72)], new Array(12).fill(1), "TCP options copied");
    assert.ok(l4ChecksumOk(seg));
    joined.push(...seg.subarray(72));
  });
  assert.deepEqual(new Uint8Array(joined), payload);
});

Deno.test("gsoSplit() splits UDP (USO) for IPv4 and IPv6 with per-segment lengths and checksums", () => {
  for (const v6 of [false, true]) {
    const ipLen = v6 ? 40 : 20;
    const size = 1200;
    const payload = payloadOf(size * 3 + 17);
    const pkt = udpSuperPacket(v6, payload);
    const { n, segments } = split(pkt, gsoHdr(GsoType.UdpL4, size, ipLen + 8, ipLen, 6));
    assert.equal(n, 4);
    segments.forEach((seg, k) => {
      const len = k === 3 ? 17 : size;
      assert.equal(seg.length, ipLen + 8 + len);
      assert.equal(u16(seg, ipLen + 4), 8 + len, "UDP length");
      assert.notEqual(u16(seg, ipLen + 6), 0, "UDP checksum present");
      assert.ok(l4ChecksumOk(seg));
      if (!v6) {
        assert.ok(ipv4HeaderOk(seg));
        assert.equal(u16(seg, 4), (0xfffe + k) & 0xffff);
      } else {
        assert.equal(u16(seg, 4), 8 + len);
      }
      assert.deepEqual(seg.subarray(ipLen + 8), payload.subarray(k * size, k * size + len));
    });
  }
});

Deno.test("gsoSplit() rejects what it cannot split", () => {
  const pkt = tcpSuperPacket(false, payloadOf(3000), { seq: 1, flags: 0x10 });
  const hdr = gsoHdr(GsoType.TcpV4, 1400, 40, 20, 16);
  assert.equal(split(pkt, hdr, 0, 64, 1000).n, GsoError.TooBig);
  assert.equal(
    gsoSegmentCount(pkt, 0, pkt.length, gsoHdr(GsoType.TcpV6, 1400, 40, 20, 16)),
    GsoError.Malformed,
  );
  assert.equal(
    gsoSegmentCount(pkt, 0, pkt.length, gsoHdr(GsoType.UdpL4, 1400, 28, 20, 6)),
    GsoError.Malformed,
  );
  assert.equal(
    gsoSegmentCount(pkt, 0, pkt.length, gsoHdr(GsoType.Udp, 1400, 28, 20, 6)),
    GsoError.Unsupported,
  );
  assert.equal(gsoSegmentCount(pkt, 0, pkt.length, gsoHdr(GsoType.TcpV4, 0, 40, 20, 16)), GsoError.Malformed);
  const v6ext = tcpSuperPacket(true, payloadOf(3000), { seq: 1, flags: 0x10 });
  v6ext[6] = 0; // hop-by-hop extension header
  assert.equal(
    gsoSegmentCount(v6ext, 0, v6ext.length, gsoHdr(GsoType.TcpV6, 1400, 60, 40, 16)),
    GsoError.Unsupported,
  );
  const garbage = new Uint8Array(100);
  garbage[0] = 0x25;
  assert.equal(gsoSegmentCount(garbage, 0, 100, hdr), GsoError.Malformed);
  assert.equal(gsoSegmentCount(garbage, 0, 100, new VirtioNetHdr()), 1, "no GSO: one packet");
});

Deno.test("completeChecksum() finishes a partial (pseudo-header) checksum", () => {
  for (const v6 of [false, true]) {
    const good = tcpSuperPacket(v6, payloadOf(333), { seq: 77, flags: 0x18 });
    const l4Off = v6 ? 40 : 20;
    const l4Len = good.length - l4Off;
    put16(good, l4Off + 16, 0);
    put16(good, l4Off + 16, ~refChecksum(good.subarray(l4Off), pseudo(good, v6, 6, l4Len)) & 0xffff);
    assert.ok(l4ChecksumOk(good));
    const partial = good.slice();
    put16(partial, l4Off + 16, refChecksum(new Uint8Array(0), pseudo(good, v6, 6, l4Len))); // folded pseudo sum
    assert.ok(completeChecksum(partial, 0, partial.length, l4Off, 16));
    assert.ok(l4ChecksumOk(partial));
    assert.deepEqual(partial, good);
  }
  assert.equal(completeChecksum(new Uint8Array(30), 0, 30, 20, 16), false, "offsets outside the packet");
});

Deno.test("VirtioNetHdr reads and writes little-endian fields", () => {
  const bytes = new Uint8Array([1, 4, 0x48, 0, 0xb8, 0x04, 40, 0, 16, 0]);
  const hdr = new VirtioNetHdr().read(bytes, 0);
  assert.deepEqual(
    [hdr.flags, hdr.gsoType, hdr.hdrLen, hdr.gsoSize, hdr.csumStart, hdr.csumOffset],
    [1, GsoType.TcpV6, 72, 1208, 40, 16],
  );
  const out = new Uint8Array(12);
  hdr.write(out, 2);
  assert.deepEqual(out.subarray(2), bytes);
  hdr.clear().write(out, 0);
  assert.deepEqual([...out.subarray(0, 10)], new Array(10).fill(0));
});

// ---------------------------------------------------------------------------------------------
// Coalescing

/** Splits a super-packet the way the kernel's TSO would, with checksums finished. */
function segmentsOf(v6: boolean, payload: Uint8Array, mss: number, seq: number, ipId: number): Uint8Array[] {
  const full = tcpSuperPacket(v6, payload, { seq, flags: 0x18, ipId });
  const hdrLen = (v6 ? 40 : 20) + 20;
  const { n, segments } = split(
    full,
    gsoHdr(v6 ? GsoType.TcpV6 : GsoType.TcpV4, mss, hdrLen, v6 ? 40 : 20, 16),
  );
  assert.ok(n > 0);
  return segments;
}

/**
 * What TunDevice.writeBatch does for a run of segments: rewrite the first one's headers, then
 * (here, instead of an iovec gather) append the other payloads; returns the super-packet and header.
 */
function coalesce(segments: Uint8Array[]): { packet: Uint8Array; hdr: VirtioNetHdr } {
  const first = new TcpSegmentInfo();
  const info = new TcpSegmentInfo();
  const buf = new Uint8Array(70_000);
  buf.set(segments[0]!, 0);
  assert.ok(tcpSegmentInfo(buf, 0, segments[0]!.length, first));
  let total = segments[0]!.length;
  let psh = false;
  const tail: Uint8Array[] = [];
  for (const seg of segments.slice(1)) {
    const at = 66_000;
    buf.set(seg, at);
    assert.ok(tcpSegmentInfo(buf, at, seg.length, info));
    assert.ok(tcpSameFlow(buf, 0, first, at, seg.length));
    assert.ok(tcpCanFollow(buf, 0, first, at, info));
    tail.push(seg.slice(info.hdrLen));
    total += info.payloadLen;
    psh ||= info.psh;
  }
  const hdr = new VirtioNetHdr();
  tcpCoalesceHeader(buf, 0, first, total, first.payloadLen, psh, hdr);
  const packet = new Uint8Array(total);
  packet.set(buf.subarray(0, segments[0]!.length));
  let at = segments[0]!.length;
  for (const t of tail) {
    packet.set(t, at);
    at += t.length;
  }
  return { packet, hdr };
}

for (const v6 of [false, true]) {
  Deno.test(`tcpCoalesceHeader() + gsoSplit() round-trip ${v6 ? "IPv6" : "IPv4"} segments exactly`, () => {
    const mss = 1200;
    const original = segmentsOf(v6, payloadOf(mss * 9 + 77), mss, 0xffff_ff00, 0xfff0);
    assert.equal(original.length, 10);
    const { packet, hdr } = coalesce(original);
    assert.equal(hdr.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    assert.equal(hdr.gsoType, v6 ? GsoType.TcpV6 : GsoType.TcpV4);
    assert.equal(hdr.gsoSize, mss);
    assert.equal(hdr.csumStart, v6 ? 40 : 20);
    assert.equal(hdr.csumOffset, 16);
    if (v6) assert.equal(u16(packet, 4), packet.length - 40);
    else {
      assert.equal(u16(packet, 2), packet.length);
      assert.ok(ipv4HeaderOk(packet));
    }
    assert.ok((packet[(v6 ? 40 : 20) + 13]! & 0x08) !== 0, "PSH of the last segment carried");
    // The partial checksum plus the segment data must verify once complemented (NEEDS_CSUM).
    const finished = packet.slice();
    assert.ok(completeChecksum(finished, 0, finished.length, hdr.csumStart, hdr.csumOffset));
    assert.ok(l4ChecksumOk(finished));
    // Resegmenting gives back the original packets byte for byte.
    const again = split(packet, hdr).segments;
    assert.equal(again.length, original.length);
    again.forEach((seg, k) => assert.deepEqual(seg, original[k], `segment ${k}`));
  });
}

Deno.test("tcpSegmentInfo() only accepts plain ACK/PSH data segments", () => {
  const info = new TcpSegmentInfo();
  const ok = tcpSuperPacket(false, payloadOf(100), { seq: 5, flags: 0x10 });
  ok[6] = 0x40; // DF
  assert.ok(tcpSegmentInfo(ok, 0, ok.length, info));
  assert.deepEqual([info.hdrLen, info.payloadLen, info.seq, info.psh], [40, 100, 5, false]);
  const noDf = ok.slice();
  noDf[6] = 0;
  assert.equal(tcpSegmentInfo(noDf, 0, noDf.length, info), false, "IPv4 without DF");
  for (const flags of [0x11, 0x12, 0x14, 0x30, 0x50, 0x90, 0x00]) {
    const p = ok.slice();
    p[33] = flags;
    assert.equal(tcpSegmentInfo(p, 0, p.length, info), false, `flags 0x${flags.toString(16)}`);
  }
  const empty = tcpSuperPacket(false, new Uint8Array(0), { seq: 5, flags: 0x10 });
  empty[6] = 0x40;
  assert.equal(tcpSegmentInfo(empty, 0, empty.length, info), false, "pure ACK");
  assert.equal(tcpSegmentInfo(ok, 0, ok.length - 1, info), false, "length disagrees with the header");
  const v6 = tcpSuperPacket(true, payloadOf(10), { seq: 5, flags: 0x18 });
  assert.ok(tcpSegmentInfo(v6, 0, v6.length, info));
  assert.equal(info.psh, true);
  const udp = udpSuperPacket(false, payloadOf(10));
  assert.equal(tcpSegmentInfo(udp, 0, udp.length, info), false);
});

Deno.test("tcpCanFollow()/tcpSameFlow() separate flows and header differences", () => {
  const a = segmentsOf(false, payloadOf(2400), 1200, 100, 1)[0]!;
  const buf = new Uint8Array(4096);
  const ai = new TcpSegmentInfo();
  const bi = new TcpSegmentInfo();
  buf.set(a, 0);
  assert.ok(tcpSegmentInfo(buf, 0, a.length, ai));
  const variants: Array<[string, (p: Uint8Array) => void, boolean, boolean]> = [
    // [what, change, same flow?, can follow?]
    ["identical", () => {}, true, true],
    ["other source port", (p) => put16(p, 20, 1), false, false],
    ["other destination address", (p) => (p[19] = 9), false, false],
    ["other ack", (p) => put32(p, 28, 5), true, false],
    ["other window", (p) => put16(p, 34, 100), true, false],
    ["other TTL", (p) => (p[8] = 1), true, false],
    ["other TOS", (p) => (p[1] = 4), true, false],
  ];
  for (const [what, change, sameFlow, canFollow] of variants) {
    const b = a.slice();
    change(b);
    buf.set(b, 2048);
    assert.equal(tcpSameFlow(buf, 0, ai, 2048, b.length), sameFlow, what);
    assert.equal(
      tcpSegmentInfo(buf, 2048, b.length, bi) && tcpCanFollow(buf, 0, ai, 2048, bi),
      canFollow,
      what,
    );
  }
  assert.equal(COALESCE_MAX_BYTES, 65535);
});
