/**
 * Segmentation offload helpers for a TUN device opened with IFF_VNET_HDR (pure).
 *
 * With TUNSETOFFLOAD the kernel hands us "super-packets": one IP header, one TCP (or UDP) header
 * and up to 64 KB of payload, described by a `virtio_net_hdr` (`gsoType`, `gsoSize` = payload bytes
 * per segment). {@link gsoSplit} turns such a packet into the MTU-sized packets the kernel would
 * have sent: per segment the IP total/payload length, IPv4 identification (+1 per segment) and
 * header checksum, the TCP sequence number (+gsoSize per segment), TCP flags (CWR only on the first
 * segment, FIN and PSH only on the last) or the UDP length, and a full L4 checksum.
 *
 * Packets without GSO may still carry a partial checksum (`VIRTIO_NET_HDR_F_NEEDS_CSUM`: the field
 * holds the pseudo-header sum); {@link completeChecksum} finishes it.
 *
 * The opposite direction (GRO-like coalescing before a TUN write): {@link tcpSegmentInfo} decides
 * whether a packet may join a super-packet and {@link tcpCanFollow} whether it continues another
 * one's flow; {@link tcpCoalesceHeader} rewrites the first packet's headers for the merged length
 * and describes the result in a `virtio_net_hdr` (the kernel resegments it, or delivers it whole
 * to a local socket). Payloads are gathered with an iovec, so nothing is copied.
 *
 * All functions work on `(buf, offset, length)` integers, allocate nothing, and return a segment
 * count or a negative {@link GsoError} code. Source and destinations live in the same `buf` (the
 * TUN wrapper keeps its staging area in the packet arena) and must not overlap.
 *
 * @module
 */

import {
  checksumAdd,
  checksumFinish,
  checksumFold,
  pseudoHeaderSumIpv4,
  pseudoHeaderSumIpv6,
} from "./checksum.ts";

/** Bytes of `struct virtio_net_hdr` (without `num_buffers`). */
export const VIRTIO_NET_HDR_LEN = 10;
/** `flags`: the L4 checksum is partial and must be completed (csumStart/csumOffset are valid). */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
/** `flags`: the checksum was already validated. */
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;

/** `virtio_net_hdr.gso_type` values. */
export const GsoType = {
  None: 0,
  TcpV4: 1,
  /** UFO (obsolete, never negotiated). */
  Udp: 3,
  TcpV6: 4,
  /** UDP segmentation (USO), IPv4 or IPv6. */
  UdpL4: 5,
  /** Flag bit: the sender set ECN CWR on the super-packet. */
  Ecn: 0x80,
} as const;

/** Negative results of {@link gsoSegmentCount} / {@link gsoSplit}. */
export const GsoError = {
  /** Headers do not parse or disagree with the virtio header. */
  Malformed: -1,
  /** A layout we do not split (IPv6 extension headers, UFO, unknown gso type). */
  Unsupported: -2,
  /** A segment would not fit the destination capacity. */
  TooBig: -3,
} as const;
export type GsoError = (typeof GsoError)[keyof typeof GsoError];

/** A decoded `virtio_net_hdr`; reuse one instance (little-endian fields, as on x86_64/aarch64). */
export class VirtioNetHdr {
  flags = 0;
  gsoType = 0;
  hdrLen = 0;
  gsoSize = 0;
  csumStart = 0;
  csumOffset = 0;

  /** Reads the 10 header bytes at `off`. */
  read(buf: Uint8Array, off: number): this {
    this.flags = buf[off]!;
    this.gsoType = buf[off + 1]!;
    this.hdrLen = buf[off + 2]! | (buf[off + 3]! << 8);
    this.gsoSize = buf[off + 4]! | (buf[off + 5]! << 8);
    this.csumStart = buf[off + 6]! | (buf[off + 7]! << 8);
    this.csumOffset = buf[off + 8]! | (buf[off + 9]! << 8);
    return this;
  }

  /** Writes the 10 header bytes at `off`. */
  write(buf: Uint8Array, off: number): void {
    buf[off] = this.flags;
    buf[off + 1] = this.gsoType;
    buf[off + 2] = this.hdrLen & 0xff;
    buf[off + 3] = this.hdrLen >>> 8;
    buf[off + 4] = this.gsoSize & 0xff;
    buf[off + 5] = this.gsoSize >>> 8;
    buf[off + 6] = this.csumStart & 0xff;
    buf[off + 7] = this.csumStart >>> 8;
    buf[off + 8] = this.csumOffset & 0xff;
    buf[off + 9] = this.csumOffset >>> 8;
  }

  /** Resets to "no offload, checksums complete". */
  clear(): this {
    this.flags = 0;
    this.gsoType = 0;
    this.hdrLen = 0;
    this.gsoSize = 0;
    this.csumStart = 0;
    this.csumOffset = 0;
    return this;
  }
}

const PROTO_TCP = 6;
const PROTO_UDP = 17;
const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;
const TWO_32 = 4294967296;

/** The pseudo-header sum (not folded) of the IP packet at `ipOff` for an L4 length and protocol. */
function pseudoHeaderSum(buf: Uint8Array, ipOff: number, v6: boolean, proto: number, l4Len: number): number {
  return v6
    ? pseudoHeaderSumIpv6(buf, ipOff + 8, ipOff + 24, proto, l4Len)
    : pseudoHeaderSumIpv4(buf, ipOff + 12, ipOff + 16, proto, l4Len);
}

/**
 * Parsed geometry of a super-packet, shared by {@link gsoSegmentCount} and {@link gsoSplit}.
 * Module-level scratch: these functions are not re-entrant (and nothing here calls back).
 */
const geo = { v6: false, proto: 0, l4Off: 0, hdrLen: 0, payloadLen: 0, segments: 0 };

function parseGeometry(buf: Uint8Array, off: number, len: number, hdr: VirtioNetHdr): number {
  if (len < 20) return GsoError.Malformed;
  const version = buf[off]! >> 4;
  const type = hdr.gsoType & ~GsoType.Ecn;
  let l4Off: number;
  let proto: number;
  if (version === 4) {
    l4Off = (buf[off]! & 0x0f) * 4;
    proto = buf[off + 9]!;
    if (l4Off < 20 || l4Off > len) return GsoError.Malformed;
    if (type === GsoType.TcpV6) return GsoError.Malformed;
  } else if (version === 6) {
    if (len < 40) return GsoError.Malformed;
    l4Off = 40;
    proto = buf[off + 6]!;
    if (proto !== PROTO_TCP && proto !== PROTO_UDP) return GsoError.Unsupported; // extension headers
    if (type === GsoType.TcpV4) return GsoError.Malformed;
  } else {
    return GsoError.Malformed;
  }
  let hdrLen: number;
  if (type === GsoType.TcpV4 || type === GsoType.TcpV6) {
    if (proto !== PROTO_TCP || len < l4Off + 20) return GsoError.Malformed;
    hdrLen = l4Off + (buf[off + l4Off + 12]! >> 4) * 4;
    if (hdrLen < l4Off + 20) return GsoError.Malformed;
  } else if (type === GsoType.UdpL4) {
    if (proto !== PROTO_UDP) return GsoError.Malformed;
    hdrLen = l4Off + 8;
  } else {
    return GsoError.Unsupported;
  }
  if (hdrLen > len || hdr.gsoSize === 0) return GsoError.Malformed;
  geo.v6 = version === 6;
  geo.proto = proto;
  geo.l4Off = l4Off;
  geo.hdrLen = hdrLen;
  geo.payloadLen = len - hdrLen;
  geo.segments = geo.payloadLen === 0 ? 1 : Math.ceil(geo.payloadLen / hdr.gsoSize);
  return geo.segments;
}

/**
 * The number of packets the super-packet at `(buf, off, len)` splits into (1 for `GsoType.None`),
 * or a negative {@link GsoError}.
 */
export function gsoSegmentCount(buf: Uint8Array, off: number, len: number, hdr: VirtioNetHdr): number {
  if ((hdr.gsoType & ~GsoType.Ecn) === GsoType.None) return 1;
  return parseGeometry(buf, off, len, hdr);
}

/**
 * Splits the super-packet at `(buf, off, len)` described by `hdr` into segments
 * `first .. first + max - 1` (fewer at the end). Segment `j` is written at `dstOffsets[dstIndex + j]`
 * in `buf` (at most `dstCapacity` bytes each) and its length stored in `dstLengths[dstIndex + j]`.
 * Returns the number of segments written, or a negative {@link GsoError} (nothing written).
 * Call again with `first` advanced to continue a packet that did not fit in one batch.
 */
export function gsoSplit(
  buf: Uint8Array,
  off: number,
  len: number,
  hdr: VirtioNetHdr,
  first: number,
  dstOffsets: Uint32Array,
  dstLengths: Uint32Array,
  dstIndex: number,
  max: number,
  dstCapacity: number,
): number {
  const total = parseGeometry(buf, off, len, hdr);
  if (total < 0) return total;
  const { v6, proto, l4Off, hdrLen, payloadLen } = geo;
  const mss = hdr.gsoSize;
  if (hdrLen + Math.min(mss, payloadLen) > dstCapacity) return GsoError.TooBig;
  const count = Math.max(0, Math.min(max, total - first));
  const ipId = v6 ? 0 : (buf[off + 4]! << 8) | buf[off + 5]!;
  const seq0 = proto === PROTO_TCP
    ? ((buf[off + l4Off + 4]! << 24) >>> 0) + (buf[off + l4Off + 5]! << 16) + (buf[off + l4Off + 6]! << 8) +
      buf[off + l4Off + 7]!
    : 0;
  const tcpFlags = proto === PROTO_TCP ? buf[off + l4Off + 13]! : 0;
  for (let j = 0; j < count; j++) {
    const k = first + j;
    const start = k * mss;
    const chunk = Math.min(mss, payloadLen - start);
    const segLen = hdrLen + chunk;
    const dst = dstOffsets[dstIndex + j]!;
    buf.copyWithin(dst, off, off + hdrLen);
    buf.copyWithin(dst + hdrLen, off + hdrLen + start, off + hdrLen + start + chunk);
    dstLengths[dstIndex + j] = segLen;
    const l4 = dst + l4Off;
    const l4Len = segLen - l4Off;
    if (v6) {
      writeU16(buf, dst + 4, segLen - 40);
    } else {
      writeU16(buf, dst + 2, segLen);
      writeU16(buf, dst + 4, (ipId + k) & 0xffff);
      writeU16(buf, dst + 10, 0);
      writeU16(buf, dst + 10, checksumFinish(checksumAdd(0, buf, dst, l4Off)));
    }
    if (proto === PROTO_TCP) {
      const seq = (seq0 + start) % TWO_32;
      buf[l4 + 4] = seq >>> 24;
      buf[l4 + 5] = (seq >>> 16) & 0xff;
      buf[l4 + 6] = (seq >>> 8) & 0xff;
      buf[l4 + 7] = seq & 0xff;
      let flags = tcpFlags;
      if (k !== total - 1) flags &= ~(TCP_FIN | TCP_PSH);
      if (k !== 0) flags &= ~TCP_CWR;
      buf[l4 + 13] = flags;
      writeU16(buf, l4 + 16, 0);
      writeU16(
        buf,
        l4 + 16,
        checksumFinish(checksumAdd(pseudoHeaderSum(buf, dst, v6, proto, l4Len), buf, l4, l4Len)),
      );
    } else {
      writeU16(buf, l4 + 4, l4Len);
      writeU16(buf, l4 + 6, 0);
      const sum = checksumFinish(checksumAdd(pseudoHeaderSum(buf, dst, v6, proto, l4Len), buf, l4, l4Len));
      writeU16(buf, l4 + 6, sum === 0 ? 0xffff : sum);
    }
  }
  return count;
}

/**
 * Completes a partial L4 checksum (`VIRTIO_NET_HDR_F_NEEDS_CSUM`): the 16-bit field at
 * `csumStart + csumOffset` holds the pseudo-header sum; sum everything from `csumStart` to the end
 * and store the complement. False (nothing changed) when the offsets fall outside the packet.
 */
export function completeChecksum(
  buf: Uint8Array,
  off: number,
  len: number,
  csumStart: number,
  csumOffset: number,
): boolean {
  if (csumStart + csumOffset + 2 > len) return false;
  const sum = checksumFinish(checksumAdd(0, buf, off + csumStart, len - csumStart));
  writeU16(buf, off + csumStart + csumOffset, sum === 0 ? 0xffff : sum);
  return true;
}

function writeU16(buf: Uint8Array, off: number, value: number): void {
  buf[off] = value >>> 8;
  buf[off + 1] = value & 0xff;
}

// ---------------------------------------------------------------------------------------------
// Coalescing (TUN write side)

/** Most segments merged into one super-packet written to TUN. */
export const COALESCE_MAX_SEGMENTS = 64;
/** Most bytes of a merged IP packet (IPv4 total length / IPv6 payload length are 16-bit). */
export const COALESCE_MAX_BYTES = 65535;

const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;
const TCP_URG = 0x20;
const TCP_ECE = 0x40;

/** What {@link tcpSegmentInfo} learned about a packet (reusable out-object). */
export class TcpSegmentInfo {
  v6 = false;
  /** IP header length (L4 offset). */
  ipHdrLen = 0;
  /** IP + TCP header length. */
  hdrLen = 0;
  payloadLen = 0;
  /** Sequence number of the first payload byte. */
  seq = 0;
  /** PSH set. */
  psh = false;
}

/**
 * Fills `out` and returns true when the packet at `(buf, off, len)` is a TCP segment that may be
 * coalesced: IPv4 without options or fragmentation and with DF set, or IPv6 without extension
 * headers; only ACK (and PSH) flags; a non-empty payload; consistent lengths. Checksums are not
 * verified: packets reaching the TUN were authenticated by WireGuard, so they are as the peer's
 * kernel built them.
 */
export function tcpSegmentInfo(buf: Uint8Array, off: number, len: number, out: TcpSegmentInfo): boolean {
  if (len < 40) return false;
  const version = buf[off]! >> 4;
  let ipHdrLen: number;
  if (version === 4) {
    if (buf[off] !== 0x45 || buf[off + 9] !== PROTO_TCP) return false;
    if (((buf[off + 2]! << 8) | buf[off + 3]!) !== len) return false;
    // DF must be set, MF clear, fragment offset zero.
    if ((buf[off + 6]! & 0xbf) !== 0 || (buf[off + 6]! & 0x40) === 0 || buf[off + 7] !== 0) return false;
    ipHdrLen = 20;
  } else if (version === 6) {
    if (len < 60 || buf[off + 6] !== PROTO_TCP) return false;
    if (((buf[off + 4]! << 8) | buf[off + 5]!) !== len - 40) return false;
    ipHdrLen = 40;
  } else {
    return false;
  }
  const t = off + ipHdrLen;
  const tcpHdrLen = (buf[t + 12]! >> 4) * 4;
  if (tcpHdrLen < 20 || ipHdrLen + tcpHdrLen >= len) return false;
  const flags = buf[t + 13]!;
  if ((flags & (TCP_SYN | TCP_FIN | TCP_RST | TCP_URG | TCP_ECE | TCP_CWR)) !== 0) return false;
  if ((flags & TCP_ACK) === 0 || (buf[t + 12]! & 0x0f) !== 0) return false;
  out.v6 = version === 6;
  out.ipHdrLen = ipHdrLen;
  out.hdrLen = ipHdrLen + tcpHdrLen;
  out.payloadLen = len - out.hdrLen;
  out.seq = ((buf[t + 4]! << 24) >>> 0) + (buf[t + 5]! << 16) + (buf[t + 6]! << 8) + buf[t + 7]!;
  out.psh = (flags & TCP_PSH) !== 0;
  return true;
}

/**
 * Whether segment `b` (at `bOff`, described by `bi`) belongs to the same flow as segment `a`
 * with headers that allow merging: same addresses and ports, same IPv4 TOS/TTL or IPv6 traffic
 * class/flow label/hop limit, same TCP header length, ack number, window and options. Flags are
 * known to be ACK (+PSH) from {@link tcpSegmentInfo}. Sequence continuity is the caller's check.
 */
export function tcpCanFollow(
  buf: Uint8Array,
  aOff: number,
  ai: TcpSegmentInfo,
  bOff: number,
  bi: TcpSegmentInfo,
): boolean {
  if (ai.v6 !== bi.v6 || ai.hdrLen !== bi.hdrLen) return false;
  if (ai.v6) {
    // Version/traffic class/flow label (0..3), next header and hop limit (6..7), addresses (8..39).
    for (let k = 0; k < 4; k++) if (buf[aOff + k] !== buf[bOff + k]) return false;
    for (let k = 6; k < 40; k++) if (buf[aOff + k] !== buf[bOff + k]) return false;
  } else {
    if (buf[aOff + 1] !== buf[bOff + 1] || buf[aOff + 8] !== buf[bOff + 8]) return false; // TOS, TTL
    for (let k = 12; k < 20; k++) if (buf[aOff + k] !== buf[bOff + k]) return false;
  }
  const a = aOff + ai.ipHdrLen;
  const b = bOff + bi.ipHdrLen;
  for (let k = 0; k < 4; k++) if (buf[a + k] !== buf[b + k]) return false; // ports
  for (let k = 8; k < 13; k++) if (buf[a + k] !== buf[b + k]) return false; // ack, data offset
  if (buf[a + 14] !== buf[b + 14] || buf[a + 15] !== buf[b + 15]) return false; // window
  for (let k = 20; k < ai.hdrLen - ai.ipHdrLen; k++) if (buf[a + k] !== buf[b + k]) return false; // options
  return true;
}

/**
 * Whether the packet at `bOff` is TCP in the same flow (addresses and ports) as segment `a`,
 * whatever its flags or options: used to stop coalescing before a packet that must stay in order.
 */
export function tcpSameFlow(
  buf: Uint8Array,
  aOff: number,
  ai: TcpSegmentInfo,
  bOff: number,
  bLen: number,
): boolean {
  const version = buf[bOff]! >> 4;
  let b: number;
  if (ai.v6) {
    if (version !== 6 || bLen < 44 || buf[bOff + 6] !== PROTO_TCP) return false;
    for (let k = 8; k < 40; k++) if (buf[aOff + k] !== buf[bOff + k]) return false;
    b = bOff + 40;
  } else {
    if (version !== 4 || buf[bOff + 9] !== PROTO_TCP) return false;
    const ihl = (buf[bOff]! & 0x0f) * 4;
    if (ihl < 20 || bLen < ihl + 4) return false;
    for (let k = 12; k < 20; k++) if (buf[aOff + k] !== buf[bOff + k]) return false;
    b = bOff + ihl;
  }
  const a = aOff + ai.ipHdrLen;
  return buf[a] === buf[b] && buf[a + 1] === buf[b + 1] && buf[a + 2] === buf[b + 2] &&
    buf[a + 3] === buf[b + 3];
}

/**
 * Turns the first segment at `off` (described by `first`) into the header of a super-packet of
 * `totalLen` bytes whose payload segments are `segmentSize` bytes (the last may be shorter): sets
 * the IP length (and IPv4 header checksum), PSH when `psh`, and the TCP checksum field to the
 * pseudo-header sum for the whole length (a partial checksum the kernel completes per segment).
 * Fills `hdr` accordingly (NEEDS_CSUM, TCPV4/TCPV6).
 */
export function tcpCoalesceHeader(
  buf: Uint8Array,
  off: number,
  first: TcpSegmentInfo,
  totalLen: number,
  segmentSize: number,
  psh: boolean,
  hdr: VirtioNetHdr,
): void {
  const t = off + first.ipHdrLen;
  if (first.v6) {
    writeU16(buf, off + 4, totalLen - 40);
  } else {
    writeU16(buf, off + 2, totalLen);
    writeU16(buf, off + 10, 0);
    writeU16(buf, off + 10, checksumFinish(checksumAdd(0, buf, off, 20)));
  }
  if (psh) buf[t + 13]! |= TCP_PSH;
  const l4Len = totalLen - first.ipHdrLen;
  // The partial checksum is the folded pseudo-header sum, not complemented.
  writeU16(buf, t + 16, checksumFold(pseudoHeaderSum(buf, off, first.v6, PROTO_TCP, l4Len)));
  hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  hdr.gsoType = first.v6 ? GsoType.TcpV6 : GsoType.TcpV4;
  hdr.hdrLen = first.hdrLen;
  hdr.gsoSize = segmentSize;
  hdr.csumStart = first.ipHdrLen;
  hdr.csumOffset = 16;
}
