/**
 * UDP header layout (RFC 768) and a whole-packet builder (IPv4 or IPv6 + UDP).
 *
 * Offsets are relative to the start of the UDP header. Hot path: no allocation.
 *
 * @module
 */

import {
  checksumAdd,
  checksumFinish,
  IPPROTO_UDP,
  pseudoHeaderSumIpv4,
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

export const UDP_SRC_PORT_OFF = 0;
export const UDP_DST_PORT_OFF = 2;
export const UDP_LEN_OFF = 4;
export const UDP_CHECKSUM_OFF = 6;
export const UDP_HEADER_LEN = 8;

/** The source port. */
export function udpSrcPort(buf: Uint8Array, off: number): number {
  return (buf[off]! << 8) | buf[off + 1]!;
}

/** The destination port. */
export function udpDstPort(buf: Uint8Array, off: number): number {
  return (buf[off + UDP_DST_PORT_OFF]! << 8) | buf[off + UDP_DST_PORT_OFF + 1]!;
}

/** The length field (header + payload). */
export function udpLen(buf: Uint8Array, off: number): number {
  return (buf[off + UDP_LEN_OFF]! << 8) | buf[off + UDP_LEN_OFF + 1]!;
}

/** The checksum field (0 over IPv4 means "no checksum"). */
export function udpChecksum(buf: Uint8Array, off: number): number {
  return (buf[off + UDP_CHECKSUM_OFF]! << 8) | buf[off + UDP_CHECKSUM_OFF + 1]!;
}

/** Writes an 8-byte UDP header with a zero checksum; returns 8. */
export function writeUdpHeader(
  buf: Uint8Array,
  off: number,
  srcPort: number,
  dstPort: number,
  length: number,
): number {
  buf[off] = srcPort >>> 8;
  buf[off + 1] = srcPort & 0xff;
  buf[off + UDP_DST_PORT_OFF] = dstPort >>> 8;
  buf[off + UDP_DST_PORT_OFF + 1] = dstPort & 0xff;
  buf[off + UDP_LEN_OFF] = length >>> 8;
  buf[off + UDP_LEN_OFF + 1] = length & 0xff;
  buf[off + UDP_CHECKSUM_OFF] = 0;
  buf[off + UDP_CHECKSUM_OFF + 1] = 0;
  return UDP_HEADER_LEN;
}

/**
 * Turns a pseudo-header sum plus the UDP datagram at `udpOff` into the checksum field value:
 * a computed 0 is sent as 0xffff (RFC 768), because 0 means "no checksum".
 */
export function udpChecksumValue(pseudoSum: number, buf: Uint8Array, udpOff: number, length: number): number {
  const c = checksumFinish(checksumAdd(pseudoSum, buf, udpOff, length));
  return c === 0 ? 0xffff : c;
}

/**
 * Builds a whole IPv4 or IPv6 UDP packet at `off` with valid checksums. The family follows the
 * address length (4 or 16 bytes; both must match).
 *
 * @returns the packet length, or 0 if it does not fit in `buf` or the addresses are invalid
 */
export function buildUdpPacket(
  buf: Uint8Array,
  off: number,
  src: Uint8Array,
  dst: Uint8Array,
  srcPort: number,
  dstPort: number,
  payload: Uint8Array,
  ttl = DEFAULT_BUILD_TTL,
): number {
  const length = UDP_HEADER_LEN + payload.length;
  let hl: number;
  if (src.length === 4 && dst.length === 4) hl = IPV4_MIN_HEADER_LEN;
  else if (src.length === 16 && dst.length === 16) hl = IPV6_HEADER_LEN;
  else return 0;
  if (off < 0 || off + hl + length > buf.length || length + (hl === IPV4_MIN_HEADER_LEN ? hl : 0) > 0xffff) {
    return 0;
  }
  const u = off + hl;
  writeUdpHeader(buf, u, srcPort, dstPort, length);
  buf.set(payload, u + UDP_HEADER_LEN);
  let pseudo: number;
  if (hl === IPV4_MIN_HEADER_LEN) {
    writeIpv4Header(buf, off, ipv4Uint32(src, 0), ipv4Uint32(dst, 0), IPPROTO_UDP, length, ttl);
    pseudo = pseudoHeaderSumIpv4(buf, off + IPV4_SRC_OFF, off + IPV4_DST_OFF, IPPROTO_UDP, length);
  } else {
    writeIpv6Header(buf, off, src, 0, dst, 0, IPPROTO_UDP, length, ttl);
    pseudo = pseudoHeaderSumIpv6(buf, off + IPV6_SRC_OFF, off + IPV6_DST_OFF, IPPROTO_UDP, length);
  }
  const c = udpChecksumValue(pseudo, buf, u, length);
  buf[u + UDP_CHECKSUM_OFF] = c >>> 8;
  buf[u + UDP_CHECKSUM_OFF + 1] = c & 0xff;
  return hl + length;
}
