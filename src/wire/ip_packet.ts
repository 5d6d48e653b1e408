/**
 * A version-independent view of an IP packet: a validating parser that fills a reusable
 * {@link IpPacketInfo}, checksum verification, NAT rewrites with incremental checksum updates
 * (RFC 1624), ECN merging, the ICMP errors quoted packet, the gateway's ICMP unreachable replies,
 * and the Firezone p2p control packet (spec 4.7).
 *
 * Hot path: parse, accessors and rewrites allocate nothing and never throw; malformed input yields
 * a {@link ParseResult} drop-reason code.
 *
 * @module
 */

import {
  checksumAdd,
  checksumApplyDelta,
  checksumDelta,
  checksumFinish,
  checksumFold,
  checksumUpdate16,
  checksumUpdate32,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  pseudoHeaderSumIpv4,
  pseudoHeaderSumIpv6,
} from "./checksum.ts";
import {
  buildIcmpv4DestUnreachable,
  buildIcmpv6DestUnreachable,
  ICMP_CHECKSUM_OFF,
  ICMP_HEADER_LEN,
  ICMP_ID_OFF,
  icmpv4IsEcho,
  icmpv4IsError,
  Icmpv4UnreachableCode,
  icmpv6IsEcho,
  icmpv6IsError,
  Icmpv6UnreachableCode,
} from "./icmp.ts";
import {
  fillIpv4HeaderChecksum,
  formatIpv4Uint32,
  IPV4_CHECKSUM_OFF,
  IPV4_DST_OFF,
  IPV4_FLAG_MF,
  IPV4_FRAG_OFFSET_MASK,
  IPV4_MIN_HEADER_LEN,
  IPV4_SRC_OFF,
  ipv4HeaderChecksumOk,
  writeIpv4Addr,
} from "./ipv4.ts";
import {
  copyIpv6Addr,
  IPV6_DST_OFF,
  IPV6_EXT_DESTINATION_OPTIONS,
  IPV6_EXT_FRAGMENT,
  IPV6_EXT_HOP_BY_HOP,
  IPV6_EXT_ROUTING,
  IPV6_FRAGMENT_HEADER_LEN,
  IPV6_HEADER_LEN,
  IPV6_SRC_OFF,
  ipv6AddrIsUnspecified,
  writeIpv6Header,
} from "./ipv6.ts";
import { formatIp } from "./ip_addr.ts";
import { TCP_CHECKSUM_OFF, TCP_MIN_HEADER_LEN } from "./tcp.ts";
import { UDP_CHECKSUM_OFF, UDP_HEADER_LEN, UDP_LEN_OFF } from "./udp.ts";

/** Largest IP packet accepted anywhere (TUN MTU, spec 3.7). */
export const MAX_IP_SIZE_BYTES = 1280;

/** Outcome of {@link parseIpPacket} / {@link parseIcmpQuote}: `Ok` or why the packet is dropped. */
export const ParseResult = {
  Ok: 0,
  /** The buffer ends before the fixed IP header (20 / 40 bytes). */
  Truncated: 1,
  /** The version nibble is neither 4 nor 6. */
  BadVersion: 2,
  /** IPv4 IHL below 5, or a header longer than the total length. */
  BadHeaderLength: 3,
  /** The declared length (IPv4 total length, IPv6 40 + payload length) exceeds the buffer. */
  BadTotalLength: 4,
  /** The declared length exceeds {@link MAX_IP_SIZE_BYTES}. */
  TooBig: 5,
  /** A non-first fragment (no transport header to filter or translate). */
  Fragment: 6,
  /** An IPv6 extension header runs past the packet, or hop-by-hop is not first. */
  BadExtensionHeader: 7,
  /** The packet is too short for its TCP (20), UDP (8) or ICMP (8) header. */
  L4Truncated: 8,
  /** TCP data offset below 5 or past the end of the packet. */
  BadTcpHeader: 9,
  /** UDP length field below 8 or past the end of the packet. */
  BadUdpLength: 10,
  /** {@link parseIcmpQuote}: the packet is not an ICMP error carrying a quoted packet. */
  NotIcmpError: 11,
  /** {@link parseIcmpQuote}: the quoted packet is of the other IP version. */
  VersionMismatch: 12,
} as const;
export type ParseResult = (typeof ParseResult)[keyof typeof ParseResult];

/** Number of {@link ParseResult} codes (size for per-reason counter arrays). */
export const PARSE_RESULT_COUNT = 13;

const PARSE_RESULT_NAMES: string[] = [];
for (const [name, code] of Object.entries(ParseResult)) PARSE_RESULT_NAMES[code] = name;

/** The name of a {@link ParseResult} code for logs and metrics (`"Unknown"` for other numbers). */
export function dropReasonName(code: number): string {
  return PARSE_RESULT_NAMES[code] ?? "Unknown";
}

/** Transport classification, independent of the IP version (ICMP = ICMPv4 over v4, ICMPv6 over v6). */
export const L4Kind = { Other: 0, Tcp: 1, Udp: 2, Icmp: 3 } as const;
export type L4Kind = (typeof L4Kind)[keyof typeof L4Kind];

/** ECN codepoints (RFC 3168 section 5). */
export const Ecn = { NotEct: 0, Ect1: 1, Ect0: 2, Ce: 3 } as const;
export type Ecn = (typeof Ecn)[keyof typeof Ecn];

/**
 * Reusable parse result. All offsets are absolute indices into the parsed buffer. Allocate one
 * per worker and pass it to every {@link parseIpPacket} call.
 */
export class IpPacketInfo {
  /** Offset of the IP header. */
  off = 0;
  /** 4 or 6 (0 before a successful parse). */
  version = 0;
  /** IP header length; for IPv6 including extension headers (= `l4Off - off`). */
  headerLen = 0;
  /** Declared packet length (IPv4 total length; IPv6 40 + payload length). For a quoted packet: the bytes present. */
  totalLen = 0;
  /** Upper-layer protocol number (IPv6: after extension headers). */
  protocol = 0;
  /** Transport classification. */
  l4Kind: L4Kind = L4Kind.Other;
  /** Offset of the transport header. */
  l4Off = 0;
  /** Transport bytes (header + payload) within `totalLen`. */
  l4Len = 0;
  /** Offset of the source address (4 or 16 bytes). */
  srcOff = 0;
  /** Offset of the destination address (4 or 16 bytes). */
  dstOff = 0;
  /** IPv4 source as uint32 (0 for IPv6). */
  src4 = 0;
  /** IPv4 destination as uint32 (0 for IPv6). */
  dst4 = 0;
  /** TCP/UDP source port (0 otherwise). */
  srcPort = 0;
  /** TCP/UDP destination port (0 otherwise). */
  dstPort = 0;
  /** ICMP type (-1 when not ICMP). */
  icmpType = -1;
  /** ICMP code (-1 when not ICMP). */
  icmpCode = -1;
  /** ICMP bytes 4-5: the echo identifier for echo request/reply. */
  icmpId = 0;
  /** ICMP bytes 6-7: the echo sequence number for echo request/reply. */
  icmpSeq = 0;
  /** TCP flags byte (`TCP_FLAG_*`), 0 when not TCP. */
  tcpFlags = 0;
  /** ECN bits of the IP header ({@link Ecn}). */
  ecn = 0;
  /** TTL / hop limit. */
  ttl = 0;
  /** A first fragment (offset 0, more fragments set): the L4 header is present, the payload is partial. */
  moreFragments = false;

  /** True for ICMP echo request/reply of the packet's family. */
  isIcmpEcho(): boolean {
    if (this.l4Kind !== L4Kind.Icmp) return false;
    return this.version === 4 ? icmpv4IsEcho(this.icmpType) : icmpv6IsEcho(this.icmpType);
  }

  /** True for ICMP error messages of the packet's family (they quote the offending packet). */
  isIcmpError(): boolean {
    if (this.l4Kind !== L4Kind.Icmp) return false;
    return this.version === 4 ? icmpv4IsError(this.icmpType) : icmpv6IsError(this.icmpType);
  }

  /** Source L4 id used by the NAT: TCP/UDP source port or ICMP echo identifier; -1 otherwise. */
  srcL4Id(): number {
    if (this.l4Kind === L4Kind.Tcp || this.l4Kind === L4Kind.Udp) return this.srcPort;
    return this.isIcmpEcho() ? this.icmpId : -1;
  }

  /** Destination L4 id: TCP/UDP destination port or ICMP echo identifier; -1 otherwise. */
  dstL4Id(): number {
    if (this.l4Kind === L4Kind.Tcp || this.l4Kind === L4Kind.Udp) return this.dstPort;
    return this.isIcmpEcho() ? this.icmpId : -1;
  }

  /** Clears every field. */
  reset(): void {
    this.off = 0;
    this.version = 0;
    this.headerLen = 0;
    this.totalLen = 0;
    this.protocol = 0;
    this.l4Kind = L4Kind.Other;
    this.l4Off = 0;
    this.l4Len = 0;
    this.srcOff = 0;
    this.dstOff = 0;
    this.src4 = 0;
    this.dst4 = 0;
    this.srcPort = 0;
    this.dstPort = 0;
    this.icmpType = -1;
    this.icmpCode = -1;
    this.icmpId = 0;
    this.icmpSeq = 0;
    this.tcpFlags = 0;
    this.ecn = 0;
    this.ttl = 0;
    this.moreFragments = false;
  }
}

/**
 * Validates the IP packet at `[off, off + len)` and fills `out`. Hot path: no allocation, never
 * throws.
 *
 * Accepted: IPv4 (options allowed) and IPv6 (hop-by-hop, routing, destination-options and
 * fragment extension headers walked), declared length ≤ `len` (extra trailing bytes, e.g.
 * WireGuard padding, are ignored: use `out.totalLen`) and ≤ {@link MAX_IP_SIZE_BYTES}, first
 * fragments, and any upper-layer protocol (unknown ones get `L4Kind.Other`; the filter decides).
 * TCP, UDP and ICMP headers must be complete and consistent. Checksums are not verified here
 * (see {@link checksumsOk}).
 *
 * @returns `ParseResult.Ok` or a drop-reason code (`out` is then partially filled)
 */
export function parseIpPacket(buf: Uint8Array, off: number, len: number, out: IpPacketInfo): ParseResult {
  return parseInto(buf, off, len, out, false);
}

/**
 * Parses the packet quoted in the ICMP error described by `outer` (already parsed from the same
 * `buf`) into `out`, leniently: the quote is usually cut short, so only the IP header and the
 * first bytes of the transport header must be present (ports: 4 bytes; ICMP: 8 bytes). `out.totalLen`
 * and `out.l4Len` count the bytes present. Rewrites on `out` update the quoted IPv4 header checksum
 * and the quoted transport checksum when its field lies within the quote.
 *
 * @returns `ParseResult.Ok`, `NotIcmpError`, `VersionMismatch`, or another drop-reason code
 */
export function parseIcmpQuote(buf: Uint8Array, outer: IpPacketInfo, out: IpPacketInfo): ParseResult {
  out.reset();
  if (!outer.isIcmpError()) return ParseResult.NotIcmpError;
  const qOff = outer.l4Off + ICMP_HEADER_LEN;
  const qLen = outer.l4Len - ICMP_HEADER_LEN;
  if (qLen < 1) return ParseResult.Truncated;
  const v = buf[qOff]! >>> 4;
  if (v !== 4 && v !== 6) return ParseResult.BadVersion;
  if (v !== outer.version) return ParseResult.VersionMismatch;
  return parseInto(buf, qOff, qLen, out, true);
}

function parseInto(buf: Uint8Array, off: number, len: number, out: IpPacketInfo, lax: boolean): ParseResult {
  out.reset();
  out.off = off;
  if (len < 1 || off < 0 || off + len > buf.length) return ParseResult.Truncated;
  const version = buf[off]! >>> 4;
  let l4Off: number;
  let end: number;
  let protocol: number;
  if (version === 4) {
    if (len < IPV4_MIN_HEADER_LEN) return ParseResult.Truncated;
    out.version = 4;
    const ihl = (buf[off]! & 0x0f) * 4;
    if (ihl < IPV4_MIN_HEADER_LEN) return ParseResult.BadHeaderLength;
    const declared = u16(buf, off + 2);
    if (lax) {
      if (ihl > len) return ParseResult.Truncated;
      if (declared < ihl) return ParseResult.BadHeaderLength;
      out.totalLen = declared < len ? declared : len;
    } else {
      if (declared > len) return ParseResult.BadTotalLength;
      if (declared < ihl) return ParseResult.BadHeaderLength;
      if (declared > MAX_IP_SIZE_BYTES) return ParseResult.TooBig;
      out.totalLen = declared;
    }
    out.ecn = buf[off + 1]! & 0x03;
    out.ttl = buf[off + 8]!;
    out.srcOff = off + IPV4_SRC_OFF;
    out.dstOff = off + IPV4_DST_OFF;
    out.src4 = u32(buf, off + IPV4_SRC_OFF);
    out.dst4 = u32(buf, off + IPV4_DST_OFF);
    protocol = buf[off + 9]!;
    out.protocol = protocol;
    out.headerLen = ihl;
    const frag = u16(buf, off + 6);
    if ((frag & IPV4_FRAG_OFFSET_MASK) !== 0) return ParseResult.Fragment;
    out.moreFragments = (frag & IPV4_FLAG_MF) !== 0;
    l4Off = off + ihl;
    end = off + out.totalLen;
  } else if (version === 6) {
    if (len < IPV6_HEADER_LEN) return ParseResult.Truncated;
    out.version = 6;
    const declared = IPV6_HEADER_LEN + u16(buf, off + 4);
    if (lax) {
      out.totalLen = declared < len ? declared : len;
    } else {
      if (declared > len) return ParseResult.BadTotalLength;
      if (declared > MAX_IP_SIZE_BYTES) return ParseResult.TooBig;
      out.totalLen = declared;
    }
    out.ecn = (buf[off + 1]! >>> 4) & 0x03;
    out.ttl = buf[off + 7]!;
    out.srcOff = off + IPV6_SRC_OFF;
    out.dstOff = off + IPV6_DST_OFF;
    end = off + out.totalLen;
    // RFC 8200 section 4: walk the extension headers to the upper-layer header.
    protocol = buf[off + 6]!;
    let p = off + IPV6_HEADER_LEN;
    let first = true;
    for (;;) {
      if (
        protocol === IPV6_EXT_HOP_BY_HOP || protocol === IPV6_EXT_ROUTING ||
        protocol === IPV6_EXT_DESTINATION_OPTIONS
      ) {
        if (protocol === IPV6_EXT_HOP_BY_HOP && !first) return ParseResult.BadExtensionHeader;
        if (p + 8 > end) return ParseResult.BadExtensionHeader;
        const extLen = (buf[p + 1]! + 1) * 8;
        if (p + extLen > end) return ParseResult.BadExtensionHeader;
        protocol = buf[p]!;
        p += extLen;
      } else if (protocol === IPV6_EXT_FRAGMENT) {
        if (p + IPV6_FRAGMENT_HEADER_LEN > end) return ParseResult.BadExtensionHeader;
        const fo = u16(buf, p + 2);
        out.protocol = buf[p]!;
        out.headerLen = p + IPV6_FRAGMENT_HEADER_LEN - off;
        if ((fo >>> 3) !== 0) return ParseResult.Fragment;
        out.moreFragments = (fo & 1) !== 0;
        protocol = buf[p]!;
        p += IPV6_FRAGMENT_HEADER_LEN;
      } else {
        break;
      }
      first = false;
    }
    out.protocol = protocol;
    out.headerLen = p - off;
    l4Off = p;
  } else {
    return ParseResult.BadVersion;
  }
  out.l4Off = l4Off;
  const l4Len = end - l4Off;
  out.l4Len = l4Len;
  if (protocol === IPPROTO_TCP) {
    out.l4Kind = L4Kind.Tcp;
    if (lax) {
      if (l4Len < 4) return ParseResult.L4Truncated;
      if (l4Len > 13) out.tcpFlags = buf[l4Off + 13]!;
    } else {
      if (l4Len < TCP_MIN_HEADER_LEN) return ParseResult.L4Truncated;
      const doff = (buf[l4Off + 12]! >>> 4) * 4;
      if (doff < TCP_MIN_HEADER_LEN || doff > l4Len) return ParseResult.BadTcpHeader;
      out.tcpFlags = buf[l4Off + 13]!;
    }
    out.srcPort = u16(buf, l4Off);
    out.dstPort = u16(buf, l4Off + 2);
  } else if (protocol === IPPROTO_UDP) {
    out.l4Kind = L4Kind.Udp;
    if (lax) {
      if (l4Len < 4) return ParseResult.L4Truncated;
    } else {
      if (l4Len < UDP_HEADER_LEN) return ParseResult.L4Truncated;
      const ulen = u16(buf, l4Off + UDP_LEN_OFF);
      if (ulen < UDP_HEADER_LEN || ulen > l4Len) return ParseResult.BadUdpLength;
    }
    out.srcPort = u16(buf, l4Off);
    out.dstPort = u16(buf, l4Off + 2);
  } else if (
    (protocol === IPPROTO_ICMP && version === 4) || (protocol === IPPROTO_ICMPV6 && version === 6)
  ) {
    out.l4Kind = L4Kind.Icmp;
    if (l4Len < ICMP_HEADER_LEN) return ParseResult.L4Truncated;
    out.icmpType = buf[l4Off]!;
    out.icmpCode = buf[l4Off + 1]!;
    out.icmpId = u16(buf, l4Off + 4);
    out.icmpSeq = u16(buf, l4Off + 6);
  }
  return ParseResult.Ok;
}

// ---------------------------------------------------------------------------------------------
// Checksums

/**
 * True when the IPv4 header checksum (IPv4 only) and the transport checksum verify. Covers TCP,
 * UDP (0 over IPv4 = none = valid; 0 over IPv6 = invalid) and ICMPv4/ICMPv6; other protocols have
 * nothing to verify. For whole packets from {@link parseIpPacket} only (not quotes). Used by tests
 * and the `--validate-checksums` debug option.
 */
export function checksumsOk(buf: Uint8Array, info: IpPacketInfo): boolean {
  if (info.version === 4 && !ipv4HeaderChecksumOk(buf, info.off)) return false;
  return l4ChecksumOk(buf, info);
}

/** True when the transport checksum verifies (see {@link checksumsOk}). */
export function l4ChecksumOk(buf: Uint8Array, info: IpPacketInfo): boolean {
  const kind = info.l4Kind;
  if (kind === L4Kind.Other) return true;
  if (kind === L4Kind.Udp && u16(buf, info.l4Off + UDP_CHECKSUM_OFF) === 0) return info.version === 4;
  const len = l4ChecksumLen(buf, info);
  return checksumFold(checksumAdd(l4PseudoSum(buf, info, len), buf, info.l4Off, len)) === 0xffff;
}

/**
 * Recomputes the transport checksum and (IPv4) the header checksum from scratch. A UDP checksum of
 * 0 over IPv4 stays 0 ("none"); a computed UDP checksum of 0 is stored as 0xffff.
 */
export function recomputeChecksums(buf: Uint8Array, info: IpPacketInfo): void {
  const kind = info.l4Kind;
  if (kind !== L4Kind.Other) {
    const pos = info.l4Off + l4ChecksumFieldOff(info);
    const keepNone = kind === L4Kind.Udp && info.version === 4 && u16(buf, pos) === 0;
    if (!keepNone) {
      buf[pos] = 0;
      buf[pos + 1] = 0;
      const len = l4ChecksumLen(buf, info);
      let c = checksumFinish(checksumAdd(l4PseudoSum(buf, info, len), buf, info.l4Off, len));
      if (c === 0 && kind === L4Kind.Udp) c = 0xffff;
      w16(buf, pos, c);
    }
  }
  if (info.version === 4) fillIpv4HeaderChecksum(buf, info.off);
}

// ---------------------------------------------------------------------------------------------
// Rewrites (incremental checksum updates, RFC 1624)

/**
 * Sets the IPv4 source address, fixing the header checksum and the TCP/UDP pseudo-header checksum
 * (a UDP checksum of 0 stays 0). Updates `info.src4`. Hot path: no allocation.
 *
 * @returns false if the packet is not IPv4
 */
export function setIpv4Src(buf: Uint8Array, info: IpPacketInfo, addr: number): boolean {
  if (info.version !== 4) return false;
  rewriteIpv4Addr(buf, info, info.srcOff, addr | 0);
  info.src4 = addr >>> 0;
  return true;
}

/** Like {@link setIpv4Src} for the destination address. */
export function setIpv4Dst(buf: Uint8Array, info: IpPacketInfo, addr: number): boolean {
  if (info.version !== 4) return false;
  rewriteIpv4Addr(buf, info, info.dstOff, addr | 0);
  info.dst4 = addr >>> 0;
  return true;
}

/**
 * Sets the IPv6 source address from the 16 bytes at `addrOff` in `addr`, fixing the TCP/UDP/ICMPv6
 * pseudo-header checksum. Hot path: no allocation.
 *
 * @returns false if the packet is not IPv6
 */
export function setIpv6Src(buf: Uint8Array, info: IpPacketInfo, addr: Uint8Array, addrOff: number): boolean {
  if (info.version !== 6) return false;
  rewriteIpv6Addr(buf, info, info.srcOff, addr, addrOff);
  return true;
}

/** Like {@link setIpv6Src} for the destination address. */
export function setIpv6Dst(buf: Uint8Array, info: IpPacketInfo, addr: Uint8Array, addrOff: number): boolean {
  if (info.version !== 6) return false;
  rewriteIpv6Addr(buf, info, info.dstOff, addr, addrOff);
  return true;
}

/**
 * Sets the TCP/UDP source port and fixes the transport checksum. Updates `info.srcPort`.
 *
 * @returns false if the packet is neither TCP nor UDP
 */
export function setSrcPort(buf: Uint8Array, info: IpPacketInfo, port: number): boolean {
  if (info.l4Kind !== L4Kind.Tcp && info.l4Kind !== L4Kind.Udp) return false;
  rewriteL4Word(buf, info, 0, port);
  info.srcPort = port;
  return true;
}

/** Like {@link setSrcPort} for the destination port. */
export function setDstPort(buf: Uint8Array, info: IpPacketInfo, port: number): boolean {
  if (info.l4Kind !== L4Kind.Tcp && info.l4Kind !== L4Kind.Udp) return false;
  rewriteL4Word(buf, info, 2, port);
  info.dstPort = port;
  return true;
}

/**
 * Sets the ICMP echo identifier and fixes the ICMP checksum (the identifier is not part of the
 * ICMPv6 pseudo-header, so one update serves both families). Updates `info.icmpId`.
 *
 * @returns false if the packet is not an ICMP echo request/reply
 */
export function setIcmpIdentifier(buf: Uint8Array, info: IpPacketInfo, id: number): boolean {
  if (!info.isIcmpEcho()) return false;
  rewriteL4Word(buf, info, ICMP_ID_OFF, id);
  info.icmpId = id;
  return true;
}

/** Sets the NAT source L4 id: TCP/UDP source port or ICMP echo identifier. False otherwise. */
export function setSrcL4Id(buf: Uint8Array, info: IpPacketInfo, value: number): boolean {
  return info.l4Kind === L4Kind.Icmp ? setIcmpIdentifier(buf, info, value) : setSrcPort(buf, info, value);
}

/** Sets the NAT destination L4 id: TCP/UDP destination port or ICMP echo identifier. False otherwise. */
export function setDstL4Id(buf: Uint8Array, info: IpPacketInfo, value: number): boolean {
  return info.l4Kind === L4Kind.Icmp ? setIcmpIdentifier(buf, info, value) : setDstPort(buf, info, value);
}

/**
 * Writes the ECN bits of the IP header (fixing the IPv4 header checksum). Updates `info.ecn`.
 * Mostly for tests; the data path uses {@link mergeEcnFromOuter}.
 */
export function setEcn(buf: Uint8Array, info: IpPacketInfo, ecn: number): void {
  const off = info.off;
  if (info.version === 4) {
    const old = u16(buf, off);
    buf[off + 1] = (buf[off + 1]! & 0xfc) | (ecn & 0x03);
    const hc = checksumUpdate16(u16(buf, off + IPV4_CHECKSUM_OFF), old, u16(buf, off));
    w16(buf, off + IPV4_CHECKSUM_OFF, hc);
  } else {
    buf[off + 1] = (buf[off + 1]! & 0xcf) | ((ecn & 0x03) << 4);
  }
  info.ecn = ecn & 0x03;
}

/**
 * Merges the ECN bits of the outer UDP datagram into the decapsulated packet (spec 4.2 step 6,
 * RFC 6040 spirit): only an ECN-capable inner packet (ECT(0)/ECT(1)) with a CE outer mark is
 * upgraded to CE; nothing is ever cleared. Hot path: no allocation.
 *
 * @returns true if the packet was changed
 */
export function mergeEcnFromOuter(buf: Uint8Array, info: IpPacketInfo, outerEcn: number): boolean {
  if (outerEcn !== Ecn.Ce || (info.ecn !== Ecn.Ect0 && info.ecn !== Ecn.Ect1)) return false;
  setEcn(buf, info, Ecn.Ce);
  return true;
}

// ---------------------------------------------------------------------------------------------
// ICMP unreachable replies (spec 4.2)

/** Why the gateway rejects a packet from a client (selects the ICMP code per family). */
export const UnreachableReason = {
  /** Filtered: ICMPv4 3/13 (communication administratively prohibited), ICMPv6 1/1. */
  Prohibited: 0,
  /** DestinationUnreachable: ICMPv4 3/0 (network unreachable), ICMPv6 1/3 (address unreachable). */
  Unreachable: 1,
} as const;
export type UnreachableReason = (typeof UnreachableReason)[keyof typeof UnreachableReason];

/**
 * Builds the ICMP destination-unreachable reply to the parsed packet `orig` into `out` at `outOff`
 * (source = original destination, destination = original source, TTL 20; payload: ICMPv4 = IP
 * header + 8 bytes, ICMPv6 = as much as fits in 1280 bytes). `out` must not overlap the original.
 *
 * @returns the reply length, or 0 if it does not fit
 */
export function buildIcmpUnreachableReply(
  out: Uint8Array,
  outOff: number,
  buf: Uint8Array,
  orig: IpPacketInfo,
  reason: UnreachableReason,
): number {
  if (orig.version === 4) {
    const code = reason === UnreachableReason.Prohibited
      ? Icmpv4UnreachableCode.CommunicationProhibited
      : Icmpv4UnreachableCode.Network;
    return buildIcmpv4DestUnreachable(out, outOff, buf, orig.off, orig.totalLen, code);
  }
  if (orig.version === 6) {
    const code = reason === UnreachableReason.Prohibited
      ? Icmpv6UnreachableCode.AdministrativelyProhibited
      : Icmpv6UnreachableCode.AddressUnreachable;
    return buildIcmpv6DestUnreachable(out, outOff, buf, orig.off, orig.totalLen, code);
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Firezone p2p control packet (spec 4.7)

/** Next-header value of p2p control packets. */
export const P2P_CONTROL_NEXT_HEADER = 0xff;
/** Length of the p2p control header (event type + 7 zero bytes). */
export const P2P_CONTROL_HEADER_LEN = 8;
/** Offset of the JSON body from the start of the packet. */
export const P2P_CONTROL_BODY_OFF = IPV6_HEADER_LEN + P2P_CONTROL_HEADER_LEN;

/** p2p control event types at this commit. */
export const P2pEventType = { AssignedIps: 0, DomainStatus: 1 } as const;
export type P2pEventType = (typeof P2pEventType)[keyof typeof P2pEventType];

const UNSPECIFIED_IPV6 = new Uint8Array(16);

/**
 * True for a p2p control packet: IPv6, next header 0xFF, source and destination `::`, and a
 * payload of at least the 8-byte header within `len`. (The hop limit is not checked.)
 */
export function isP2pControl(buf: Uint8Array, off: number, len: number): boolean {
  if (len < P2P_CONTROL_BODY_OFF || off < 0 || off + len > buf.length) return false;
  if (buf[off]! >>> 4 !== 6 || buf[off + 6] !== P2P_CONTROL_NEXT_HEADER) return false;
  const payloadLen = u16(buf, off + 4);
  if (payloadLen < P2P_CONTROL_HEADER_LEN || IPV6_HEADER_LEN + payloadLen > len) return false;
  return ipv6AddrIsUnspecified(buf, off + IPV6_SRC_OFF) && ipv6AddrIsUnspecified(buf, off + IPV6_DST_OFF);
}

/** The event type byte of a p2p control packet (check {@link isP2pControl} first). */
export function p2pControlEvent(buf: Uint8Array, off: number): number {
  return buf[off + IPV6_HEADER_LEN]!;
}

/** Offset of the JSON body of the p2p control packet at `off`. */
export function p2pControlBodyOffset(off: number): number {
  return off + P2P_CONTROL_BODY_OFF;
}

/** Length of the JSON body (payload length minus the 8-byte header). */
export function p2pControlBodyLen(buf: Uint8Array, off: number): number {
  return u16(buf, off + 4) - P2P_CONTROL_HEADER_LEN;
}

/**
 * Builds a p2p control packet (traffic class 0, flow label 0, hop limit 0, `::` → `::`, next
 * header 0xFF, header `[eventType, 0 × 7]`, then `body`).
 *
 * @returns the packet length, or 0 if it would exceed 1280 bytes or does not fit in `buf`
 */
export function buildP2pControl(buf: Uint8Array, off: number, eventType: number, body: Uint8Array): number {
  const total = P2P_CONTROL_BODY_OFF + body.length;
  if (total > MAX_IP_SIZE_BYTES || off < 0 || off + total > buf.length) return 0;
  writeIpv6Header(
    buf,
    off,
    UNSPECIFIED_IPV6,
    0,
    UNSPECIFIED_IPV6,
    0,
    P2P_CONTROL_NEXT_HEADER,
    P2P_CONTROL_HEADER_LEN + body.length,
    0,
  );
  const h = off + IPV6_HEADER_LEN;
  buf[h] = eventType;
  for (let i = 1; i < P2P_CONTROL_HEADER_LEN; i++) buf[h + i] = 0;
  buf.set(body, off + P2P_CONTROL_BODY_OFF);
  return total;
}

// ---------------------------------------------------------------------------------------------
// Debugging

/**
 * A one-line description for debug logs (allocates: call only behind a log-level check), e.g.
 * `IPv4 10.0.0.1:5353 -> 10.0.0.2:53 UDP len=61`.
 */
export function describeIpPacket(buf: Uint8Array, info: IpPacketInfo): string {
  const addrLen = info.version === 4 ? 4 : 16;
  const src = info.version === 4 ? formatIpv4Uint32(info.src4) : formatIp(buf, info.srcOff, addrLen);
  const dst = info.version === 4 ? formatIpv4Uint32(info.dst4) : formatIp(buf, info.dstOff, addrLen);
  const fam = `IPv${info.version}`;
  const srcP = info.version === 4 ? `${src}:${info.srcPort}` : `[${src}]:${info.srcPort}`;
  const dstP = info.version === 4 ? `${dst}:${info.dstPort}` : `[${dst}]:${info.dstPort}`;
  switch (info.l4Kind) {
    case L4Kind.Tcp:
      return `${fam} ${srcP} -> ${dstP} TCP flags=0x${info.tcpFlags.toString(16)} len=${info.totalLen}`;
    case L4Kind.Udp:
      return `${fam} ${srcP} -> ${dstP} UDP len=${info.totalLen}`;
    case L4Kind.Icmp:
      return `${fam} ${src} -> ${dst} ICMP type=${info.icmpType} code=${info.icmpCode} id=${info.icmpId} len=${info.totalLen}`;
    default:
      return `${fam} ${src} -> ${dst} proto=${info.protocol} len=${info.totalLen}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** Offset of the transport checksum field within the transport header. */
function l4ChecksumFieldOff(info: IpPacketInfo): number {
  if (info.l4Kind === L4Kind.Tcp) return TCP_CHECKSUM_OFF;
  if (info.l4Kind === L4Kind.Udp) return UDP_CHECKSUM_OFF;
  return ICMP_CHECKSUM_OFF;
}

/** Bytes covered by the transport checksum: the UDP length field for UDP, else `l4Len`. */
function l4ChecksumLen(buf: Uint8Array, info: IpPacketInfo): number {
  return info.l4Kind === L4Kind.Udp ? u16(buf, info.l4Off + UDP_LEN_OFF) : info.l4Len;
}

/** Pseudo-header sum for the transport checksum (0 for ICMPv4, which has none). */
function l4PseudoSum(buf: Uint8Array, info: IpPacketInfo, len: number): number {
  if (info.version === 4) {
    if (info.l4Kind === L4Kind.Icmp) return 0;
    return pseudoHeaderSumIpv4(buf, info.srcOff, info.dstOff, info.protocol, len);
  }
  return pseudoHeaderSumIpv6(buf, info.srcOff, info.dstOff, info.protocol, len);
}

/**
 * Absolute offset of a transport checksum that covers the pseudo-header and must follow an address
 * change, or -1: none for ICMPv4 and other protocols, none for UDP checksum 0 ("no checksum"),
 * none when the field lies outside the bytes present (a short quote).
 */
function pseudoCoveredChecksumPos(buf: Uint8Array, info: IpPacketInfo): number {
  const kind = info.l4Kind;
  if (kind === L4Kind.Other || (kind === L4Kind.Icmp && info.version === 4)) return -1;
  const fieldOff = l4ChecksumFieldOff(info);
  if (fieldOff + 2 > info.l4Len) return -1;
  const pos = info.l4Off + fieldOff;
  if (kind === L4Kind.Udp && u16(buf, pos) === 0) return -1;
  return pos;
}

/** `addr` is passed as int32 (`| 0`): values above 2^31 would be boxed across calls. */
function rewriteIpv4Addr(buf: Uint8Array, info: IpPacketInfo, addrOff: number, addr: number): void {
  const old = i32(buf, addrOff);
  if (old === addr) return;
  const hcPos = info.off + IPV4_CHECKSUM_OFF;
  w16(buf, hcPos, checksumUpdate32(u16(buf, hcPos), old, addr));
  const pos = pseudoCoveredChecksumPos(buf, info);
  if (pos >= 0) {
    let c = checksumUpdate32(u16(buf, pos), old, addr);
    if (c === 0 && info.l4Kind === L4Kind.Udp) c = 0xffff;
    w16(buf, pos, c);
  }
  writeIpv4Addr(buf, addrOff, addr);
}

function rewriteIpv6Addr(
  buf: Uint8Array,
  info: IpPacketInfo,
  fieldOff: number,
  addr: Uint8Array,
  addrOff: number,
): void {
  const pos = pseudoCoveredChecksumPos(buf, info);
  if (pos >= 0) {
    let c = checksumApplyDelta(u16(buf, pos), checksumDelta(buf, fieldOff, addr, addrOff, 16));
    if (c === 0 && info.l4Kind === L4Kind.Udp) c = 0xffff;
    w16(buf, pos, c);
  }
  copyIpv6Addr(buf, fieldOff, addr, addrOff);
}

/** Rewrites the 16-bit word at `l4Off + wordOff` and its transport checksum (if present). */
function rewriteL4Word(buf: Uint8Array, info: IpPacketInfo, wordOff: number, value: number): void {
  const at = info.l4Off + wordOff;
  const old = u16(buf, at);
  if (old === value) return;
  w16(buf, at, value);
  const fieldOff = l4ChecksumFieldOff(info);
  if (fieldOff + 2 > info.l4Len) return;
  const pos = info.l4Off + fieldOff;
  const hc = u16(buf, pos);
  if (info.l4Kind === L4Kind.Udp && hc === 0) return;
  let c = checksumUpdate16(hc, old, value);
  if (c === 0) {
    // UDP: a computed 0 is sent as 0xffff. ICMPv4 (no pseudo-header): an all-zero message must
    // carry 0xffff, the one case where RFC 1624 eqn. 3 yields the other zero.
    if (info.l4Kind === L4Kind.Udp || (info.version === 4 && allZero(buf, info.l4Off, info.l4Len))) {
      c = 0xffff;
    }
  }
  w16(buf, pos, c);
}

/** True when `[off, off + len)` is all zero except the ICMP checksum field at `off + 2`. */
function allZero(buf: Uint8Array, off: number, len: number): boolean {
  for (let i = 0; i < len; i++) {
    if (buf[off + i] !== 0 && i !== ICMP_CHECKSUM_OFF && i !== ICMP_CHECKSUM_OFF + 1) return false;
  }
  return true;
}

function u16(buf: Uint8Array, i: number): number {
  return (buf[i]! << 8) | buf[i + 1]!;
}

function i32(buf: Uint8Array, i: number): number {
  return (buf[i]! << 24) | (buf[i + 1]! << 16) | (buf[i + 2]! << 8) | buf[i + 3]!;
}

function u32(buf: Uint8Array, i: number): number {
  return ((buf[i]! << 24) | (buf[i + 1]! << 16) | (buf[i + 2]! << 8) | buf[i + 3]!) >>> 0;
}

function w16(buf: Uint8Array, i: number, v: number): void {
  buf[i] = v >>> 8;
  buf[i + 1] = v & 0xff;
}
