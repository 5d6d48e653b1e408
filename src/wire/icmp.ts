/**
 * ICMPv4 (RFC 792) and ICMPv6 (RFC 4443): types, codes, accessors, and builders for echo messages
 * and for the error messages the gateway sends (spec 4.2: destination unreachable with TTL 20,
 * source = original destination, destination = original source) or rebuilds for the DNS NAT
 * (spec 4.5: destination unreachable, time exceeded, packet too big).
 *
 * Both families share the 8-byte header layout (type, code, checksum, 4 bytes "rest of header").
 * The ICMPv4 checksum covers the message only; the ICMPv6 checksum adds the IPv6 pseudo-header.
 * Offsets are relative to the start of the ICMP header. Hot path: no allocation.
 *
 * @module
 */

import {
  checksumAdd,
  checksumFinish,
  internetChecksum,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  pseudoHeaderSumIpv6,
} from "./checksum.ts";
import {
  DEFAULT_BUILD_TTL,
  IPV4_DST_OFF,
  IPV4_MIN_HEADER_LEN,
  IPV4_SRC_OFF,
  ipv4Uint32,
  writeIpv4Header,
} from "./ipv4.ts";
import { IPV6_DST_OFF, IPV6_HEADER_LEN, IPV6_SRC_OFF, writeIpv6Header } from "./ipv6.ts";

export const ICMP_TYPE_OFF = 0;
export const ICMP_CODE_OFF = 1;
export const ICMP_CHECKSUM_OFF = 2;
/** Echo identifier (echo request/reply only). */
export const ICMP_ID_OFF = 4;
/** Echo sequence number (echo request/reply only). */
export const ICMP_SEQ_OFF = 6;
/** The 4 type-specific bytes: unused, next-hop MTU (v4 type 3 code 4), MTU (v6 type 2), pointer. */
export const ICMP_REST_OFF = 4;
export const ICMP_HEADER_LEN = 8;

/** TTL / hop limit of the ICMP errors the gateway generates (spec 4.2). */
export const ICMP_ERROR_TTL = 20;
/** Largest ICMP error packet built, IP header included (the 1280-byte MTU, spec 3.7). */
export const MAX_ICMP_ERROR_PACKET_LEN = 1280;

export const ICMPV4_ECHO_REPLY = 0;
export const ICMPV4_DEST_UNREACHABLE = 3;
export const ICMPV4_SOURCE_QUENCH = 4;
export const ICMPV4_REDIRECT = 5;
export const ICMPV4_ECHO_REQUEST = 8;
export const ICMPV4_TIME_EXCEEDED = 11;
export const ICMPV4_PARAMETER_PROBLEM = 12;

/** ICMPv4 destination-unreachable codes (RFC 792, RFC 1812). */
export const Icmpv4UnreachableCode = {
  Network: 0,
  Host: 1,
  Protocol: 2,
  Port: 3,
  FragmentationNeeded: 4,
  SourceRouteFailed: 5,
  NetworkUnknown: 6,
  HostUnknown: 7,
  NetworkProhibited: 9,
  HostProhibited: 10,
  /** Communication administratively prohibited (RFC 1812): the gateway's "Filtered" reply. */
  CommunicationProhibited: 13,
} as const;

export const ICMPV6_DEST_UNREACHABLE = 1;
export const ICMPV6_PACKET_TOO_BIG = 2;
export const ICMPV6_TIME_EXCEEDED = 3;
export const ICMPV6_PARAMETER_PROBLEM = 4;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;

/** ICMPv6 destination-unreachable codes (RFC 4443 section 3.1). */
export const Icmpv6UnreachableCode = {
  NoRoute: 0,
  /** The gateway's "Filtered" reply. */
  AdministrativelyProhibited: 1,
  BeyondScope: 2,
  /** The gateway's "DestinationUnreachable" reply. */
  AddressUnreachable: 3,
  PortUnreachable: 4,
  SourcePolicyFailed: 5,
  RejectRoute: 6,
} as const;

/** The type byte. */
export function icmpType(buf: Uint8Array, off: number): number {
  return buf[off]!;
}

/** The code byte. */
export function icmpCode(buf: Uint8Array, off: number): number {
  return buf[off + ICMP_CODE_OFF]!;
}

/** The checksum field. */
export function icmpChecksum(buf: Uint8Array, off: number): number {
  return (buf[off + ICMP_CHECKSUM_OFF]! << 8) | buf[off + ICMP_CHECKSUM_OFF + 1]!;
}

/** The echo identifier (meaningful for echo request/reply). */
export function icmpIdentifier(buf: Uint8Array, off: number): number {
  return (buf[off + ICMP_ID_OFF]! << 8) | buf[off + ICMP_ID_OFF + 1]!;
}

/** The echo sequence number (meaningful for echo request/reply). */
export function icmpSequence(buf: Uint8Array, off: number): number {
  return (buf[off + ICMP_SEQ_OFF]! << 8) | buf[off + ICMP_SEQ_OFF + 1]!;
}

/** The 4 "rest of header" bytes as uint32. */
export function icmpRestOfHeader(buf: Uint8Array, off: number): number {
  const p = off + ICMP_REST_OFF;
  return ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0;
}

/** True for ICMPv4 echo request and reply. */
export function icmpv4IsEcho(type: number): boolean {
  return type === ICMPV4_ECHO_REQUEST || type === ICMPV4_ECHO_REPLY;
}

/** True for ICMPv6 echo request and reply. */
export function icmpv6IsEcho(type: number): boolean {
  return type === ICMPV6_ECHO_REQUEST || type === ICMPV6_ECHO_REPLY;
}

/** True for ICMPv4 error messages that quote the offending packet (types 3, 4, 5, 11, 12). */
export function icmpv4IsError(type: number): boolean {
  return type === ICMPV4_DEST_UNREACHABLE || type === ICMPV4_TIME_EXCEEDED ||
    type === ICMPV4_PARAMETER_PROBLEM || type === ICMPV4_SOURCE_QUENCH || type === ICMPV4_REDIRECT;
}

/** True for ICMPv6 error messages (types 0..127, RFC 4443 section 2.1). */
export function icmpv6IsError(type: number): boolean {
  return type < 128;
}

/**
 * True for the ICMPv4 errors the DNS NAT translates (spec 4.5): destination unreachable (any code)
 * and time exceeded.
 */
export function icmpv4IsNatTranslatableError(type: number): boolean {
  return type === ICMPV4_DEST_UNREACHABLE || type === ICMPV4_TIME_EXCEEDED;
}

/**
 * True for the ICMPv6 errors the DNS NAT translates (spec 4.5): destination unreachable, packet
 * too big, time exceeded.
 */
export function icmpv6IsNatTranslatableError(type: number): boolean {
  return type === ICMPV6_DEST_UNREACHABLE || type === ICMPV6_PACKET_TOO_BIG || type === ICMPV6_TIME_EXCEEDED;
}

/**
 * The "rest of header" to keep when rebuilding an ICMPv4 error of this type/code: the next-hop MTU
 * of "fragmentation needed" (low 16 bits), the pointer of "parameter problem", else 0 (unused).
 */
export function icmpv4ErrorRestOfHeader(type: number, code: number, rest: number): number {
  if (type === ICMPV4_DEST_UNREACHABLE && code === Icmpv4UnreachableCode.FragmentationNeeded) {
    return rest & 0xffff;
  }
  if (type === ICMPV4_PARAMETER_PROBLEM) return (rest & 0xff000000) >>> 0;
  return 0;
}

/**
 * The "rest of header" to keep when rebuilding an ICMPv6 error: the MTU of "packet too big", the
 * pointer of "parameter problem", else 0 (unused).
 */
export function icmpv6ErrorRestOfHeader(type: number, _code: number, rest: number): number {
  return type === ICMPV6_PACKET_TOO_BIG || type === ICMPV6_PARAMETER_PROBLEM ? rest >>> 0 : 0;
}

/** The ICMPv4 checksum for the message at `[off, off + len)` (the field itself counted as zero). */
export function icmpv4ChecksumValue(buf: Uint8Array, off: number, len: number): number {
  const saved = icmpChecksum(buf, off);
  buf[off + ICMP_CHECKSUM_OFF] = 0;
  buf[off + ICMP_CHECKSUM_OFF + 1] = 0;
  const c = internetChecksum(buf, off, len);
  buf[off + ICMP_CHECKSUM_OFF] = saved >>> 8;
  buf[off + ICMP_CHECKSUM_OFF + 1] = saved & 0xff;
  return c;
}

/**
 * The ICMPv6 checksum for the message at `[off, off + len)` given the IPv6 header at `ipOff`
 * (the field itself counted as zero).
 */
export function icmpv6ChecksumValue(buf: Uint8Array, ipOff: number, off: number, len: number): number {
  const saved = icmpChecksum(buf, off);
  buf[off + ICMP_CHECKSUM_OFF] = 0;
  buf[off + ICMP_CHECKSUM_OFF + 1] = 0;
  const pseudo = pseudoHeaderSumIpv6(buf, ipOff + IPV6_SRC_OFF, ipOff + IPV6_DST_OFF, IPPROTO_ICMPV6, len);
  const c = checksumFinish(checksumAdd(pseudo, buf, off, len));
  buf[off + ICMP_CHECKSUM_OFF] = saved >>> 8;
  buf[off + ICMP_CHECKSUM_OFF + 1] = saved & 0xff;
  return c;
}

/**
 * Builds an IPv4 ICMP error (TTL 20) carrying `quoteLen` bytes of `quote` from `quoteOff`,
 * truncated so the whole packet stays within {@link MAX_ICMP_ERROR_PACKET_LEN}. The output may
 * overlap the quote (it is moved with memmove semantics).
 *
 * @param src outer source (uint32; its int32 view `| 0` is accepted too)
 * @param dst outer destination (uint32 or int32 view)
 * @param rest the 4 "rest of header" bytes as uint32 (see {@link icmpv4ErrorRestOfHeader})
 * @returns the packet length, or 0 if it does not fit in `buf`
 */
export function buildIcmpv4Error(
  buf: Uint8Array,
  off: number,
  src: number,
  dst: number,
  type: number,
  code: number,
  rest: number,
  quote: Uint8Array,
  quoteOff: number,
  quoteLen: number,
): number {
  const maxQuote = MAX_ICMP_ERROR_PACKET_LEN - IPV4_MIN_HEADER_LEN - ICMP_HEADER_LEN;
  const q = quoteLen < maxQuote ? quoteLen : maxQuote;
  const icmpLen = ICMP_HEADER_LEN + q;
  if (q < 0 || off < 0 || off + IPV4_MIN_HEADER_LEN + icmpLen > buf.length) return 0;
  const i = off + IPV4_MIN_HEADER_LEN;
  copyBytes(buf, i + ICMP_HEADER_LEN, quote, quoteOff, q);
  writeIcmpHeader(buf, i, type, code, rest);
  const c = internetChecksum(buf, i, icmpLen);
  buf[i + ICMP_CHECKSUM_OFF] = c >>> 8;
  buf[i + ICMP_CHECKSUM_OFF + 1] = c & 0xff;
  writeIpv4Header(buf, off, src, dst, IPPROTO_ICMP, icmpLen, ICMP_ERROR_TTL);
  return IPV4_MIN_HEADER_LEN + icmpLen;
}

/**
 * Builds an IPv6 ICMPv6 error (hop limit 20) carrying as much of `quote` as fits in
 * {@link MAX_ICMP_ERROR_PACKET_LEN} (RFC 4443 section 2.4 (c)). Addresses are 16 bytes at
 * `srcOff`/`dstOff`. The output may overlap the quote (it is moved with memmove semantics) but not
 * the addresses.
 *
 * @param rest the 4 "rest of header" bytes as uint32 (see {@link icmpv6ErrorRestOfHeader})
 * @returns the packet length, or 0 if it does not fit in `buf`
 */
export function buildIcmpv6Error(
  buf: Uint8Array,
  off: number,
  src: Uint8Array,
  srcOff: number,
  dst: Uint8Array,
  dstOff: number,
  type: number,
  code: number,
  rest: number,
  quote: Uint8Array,
  quoteOff: number,
  quoteLen: number,
): number {
  const maxQuote = MAX_ICMP_ERROR_PACKET_LEN - IPV6_HEADER_LEN - ICMP_HEADER_LEN;
  const q = quoteLen < maxQuote ? quoteLen : maxQuote;
  const icmpLen = ICMP_HEADER_LEN + q;
  if (q < 0 || off < 0 || off + IPV6_HEADER_LEN + icmpLen > buf.length) return 0;
  const i = off + IPV6_HEADER_LEN;
  copyBytes(buf, i + ICMP_HEADER_LEN, quote, quoteOff, q);
  writeIpv6Header(buf, off, src, srcOff, dst, dstOff, IPPROTO_ICMPV6, icmpLen, ICMP_ERROR_TTL);
  writeIcmpHeader(buf, i, type, code, rest);
  const pseudo = pseudoHeaderSumIpv6(buf, off + IPV6_SRC_OFF, off + IPV6_DST_OFF, IPPROTO_ICMPV6, icmpLen);
  const c = checksumFinish(checksumAdd(pseudo, buf, i, icmpLen));
  buf[i + ICMP_CHECKSUM_OFF] = c >>> 8;
  buf[i + ICMP_CHECKSUM_OFF + 1] = c & 0xff;
  return IPV6_HEADER_LEN + icmpLen;
}

/**
 * Builds the ICMPv4 destination unreachable (type 3, `code`) answering the IPv4 packet at
 * `origOff`: source = its destination, destination = its source, TTL 20, payload = its IP header
 * plus the first 8 bytes of its payload (fewer if it is shorter). `origLen` bounds what is read.
 * `buf` must not overlap the original packet.
 *
 * @returns the packet length (20 + 8 + IHL*4 + 8 for a long enough original), or 0 if it does not fit
 */
export function buildIcmpv4DestUnreachable(
  buf: Uint8Array,
  off: number,
  orig: Uint8Array,
  origOff: number,
  origLen: number,
  code: number,
): number {
  const ihl = (orig[origOff]! & 0x0f) * 4;
  const total = (orig[origOff + 2]! << 8) | orig[origOff + 3]!;
  let q = ihl + 8;
  if (total < q) q = total;
  if (origLen < q) q = origLen;
  return buildIcmpv4Error(
    buf,
    off,
    // int32 views of the addresses: uint32 values above 2^31 would be boxed at each call.
    ipv4Uint32(orig, origOff + IPV4_DST_OFF) | 0,
    ipv4Uint32(orig, origOff + IPV4_SRC_OFF) | 0,
    ICMPV4_DEST_UNREACHABLE,
    code,
    0,
    orig,
    origOff,
    q,
  );
}

/**
 * Builds the ICMPv6 destination unreachable (type 1, `code`) answering the IPv6 packet at
 * `origOff`: source = its destination, destination = its source, hop limit 20, payload = as much
 * of it as fits in a 1280-byte packet. `origLen` bounds what is read. `buf` must not overlap the
 * original packet.
 *
 * @returns the packet length (at most 1280), or 0 if it does not fit
 */
export function buildIcmpv6DestUnreachable(
  buf: Uint8Array,
  off: number,
  orig: Uint8Array,
  origOff: number,
  origLen: number,
  code: number,
): number {
  let q = IPV6_HEADER_LEN + ((orig[origOff + 4]! << 8) | orig[origOff + 5]!);
  if (origLen < q) q = origLen;
  return buildIcmpv6Error(
    buf,
    off,
    orig,
    origOff + IPV6_DST_OFF,
    orig,
    origOff + IPV6_SRC_OFF,
    ICMPV6_DEST_UNREACHABLE,
    code,
    0,
    orig,
    origOff,
    q,
  );
}

/**
 * Builds an ICMP echo request or reply (ICMPv4 or ICMPv6 by address length, 4 or 16 bytes) with
 * valid checksums.
 *
 * @returns the packet length, or 0 if it does not fit in `buf` or the addresses are invalid
 */
export function buildIcmpEchoPacket(
  buf: Uint8Array,
  off: number,
  src: Uint8Array,
  dst: Uint8Array,
  reply: boolean,
  identifier: number,
  sequence: number,
  payload: Uint8Array,
  ttl = DEFAULT_BUILD_TTL,
): number {
  const icmpLen = ICMP_HEADER_LEN + payload.length;
  let hl: number;
  if (src.length === 4 && dst.length === 4) hl = IPV4_MIN_HEADER_LEN;
  else if (src.length === 16 && dst.length === 16) hl = IPV6_HEADER_LEN;
  else return 0;
  if (
    off < 0 || off + hl + icmpLen > buf.length || icmpLen + (hl === IPV4_MIN_HEADER_LEN ? hl : 0) > 0xffff
  ) {
    return 0;
  }
  const i = off + hl;
  buf.set(payload, i + ICMP_HEADER_LEN);
  if (hl === IPV4_MIN_HEADER_LEN) {
    writeIcmpHeader(buf, i, reply ? ICMPV4_ECHO_REPLY : ICMPV4_ECHO_REQUEST, 0, 0);
    writeEcho(buf, i, identifier, sequence);
    const c = internetChecksum(buf, i, icmpLen);
    buf[i + ICMP_CHECKSUM_OFF] = c >>> 8;
    buf[i + ICMP_CHECKSUM_OFF + 1] = c & 0xff;
    writeIpv4Header(buf, off, ipv4Uint32(src, 0), ipv4Uint32(dst, 0), IPPROTO_ICMP, icmpLen, ttl);
  } else {
    writeIpv6Header(buf, off, src, 0, dst, 0, IPPROTO_ICMPV6, icmpLen, ttl);
    writeIcmpHeader(buf, i, reply ? ICMPV6_ECHO_REPLY : ICMPV6_ECHO_REQUEST, 0, 0);
    writeEcho(buf, i, identifier, sequence);
    const pseudo = pseudoHeaderSumIpv6(buf, off + IPV6_SRC_OFF, off + IPV6_DST_OFF, IPPROTO_ICMPV6, icmpLen);
    const c = checksumFinish(checksumAdd(pseudo, buf, i, icmpLen));
    buf[i + ICMP_CHECKSUM_OFF] = c >>> 8;
    buf[i + ICMP_CHECKSUM_OFF + 1] = c & 0xff;
  }
  return hl + icmpLen;
}

/** Writes type, code, a zero checksum and the rest-of-header word. */
function writeIcmpHeader(buf: Uint8Array, off: number, type: number, code: number, rest: number): void {
  buf[off] = type;
  buf[off + ICMP_CODE_OFF] = code;
  buf[off + ICMP_CHECKSUM_OFF] = 0;
  buf[off + ICMP_CHECKSUM_OFF + 1] = 0;
  buf[off + ICMP_REST_OFF] = rest >>> 24;
  buf[off + ICMP_REST_OFF + 1] = (rest >>> 16) & 0xff;
  buf[off + ICMP_REST_OFF + 2] = (rest >>> 8) & 0xff;
  buf[off + ICMP_REST_OFF + 3] = rest & 0xff;
}

function writeEcho(buf: Uint8Array, off: number, identifier: number, sequence: number): void {
  buf[off + ICMP_ID_OFF] = identifier >>> 8;
  buf[off + ICMP_ID_OFF + 1] = identifier & 0xff;
  buf[off + ICMP_SEQ_OFF] = sequence >>> 8;
  buf[off + ICMP_SEQ_OFF + 1] = sequence & 0xff;
}

/** memmove semantics when both are the same buffer; a plain loop otherwise (no view allocation). */
function copyBytes(dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number, len: number): void {
  if (dst === src) {
    if (dstOff !== srcOff) dst.copyWithin(dstOff, srcOff, srcOff + len);
    return;
  }
  for (let k = 0; k < len; k++) dst[dstOff + k] = src[srcOff + k]!;
}
