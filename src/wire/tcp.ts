/**
 * TCP header layout (RFC 9293) and a segment builder for tests and simulations.
 *
 * Offsets are relative to the start of the TCP header. The gateway only reads ports and flags
 * and rewrites ports; it never generates TCP segments itself (spec 4.2). Hot path: no allocation.
 *
 * @module
 */

import {
  checksumAdd,
  checksumFinish,
  IPPROTO_TCP,
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

export const TCP_SRC_PORT_OFF = 0;
export const TCP_DST_PORT_OFF = 2;
export const TCP_SEQ_OFF = 4;
export const TCP_ACK_OFF = 8;
export const TCP_DATA_OFFSET_OFF = 12;
export const TCP_FLAGS_OFF = 13;
export const TCP_WINDOW_OFF = 14;
export const TCP_CHECKSUM_OFF = 16;
export const TCP_URGENT_OFF = 18;
/** Header length without options. */
export const TCP_MIN_HEADER_LEN = 20;

/** Flag bits of the byte at {@link TCP_FLAGS_OFF}. */
export const TCP_FLAG_FIN = 0x01;
export const TCP_FLAG_SYN = 0x02;
export const TCP_FLAG_RST = 0x04;
export const TCP_FLAG_PSH = 0x08;
export const TCP_FLAG_ACK = 0x10;
export const TCP_FLAG_URG = 0x20;
export const TCP_FLAG_ECE = 0x40;
export const TCP_FLAG_CWR = 0x80;

/** The source port. */
export function tcpSrcPort(buf: Uint8Array, off: number): number {
  return (buf[off]! << 8) | buf[off + 1]!;
}

/** The destination port. */
export function tcpDstPort(buf: Uint8Array, off: number): number {
  return (buf[off + TCP_DST_PORT_OFF]! << 8) | buf[off + TCP_DST_PORT_OFF + 1]!;
}

/** The header length in bytes (data offset * 4). */
export function tcpHeaderLen(buf: Uint8Array, off: number): number {
  return (buf[off + TCP_DATA_OFFSET_OFF]! >>> 4) * 4;
}

/** The flags byte (FIN..CWR). */
export function tcpFlags(buf: Uint8Array, off: number): number {
  return buf[off + TCP_FLAGS_OFF]!;
}

/** The sequence number (uint32). */
export function tcpSeq(buf: Uint8Array, off: number): number {
  return readU32(buf, off + TCP_SEQ_OFF);
}

/** The acknowledgment number (uint32). */
export function tcpAck(buf: Uint8Array, off: number): number {
  return readU32(buf, off + TCP_ACK_OFF);
}

/**
 * Builds a whole IPv4 or IPv6 TCP segment (20-byte header, no options) at `off` with valid
 * checksums. The family follows the address length (4 or 16 bytes; both must match).
 *
 * @param flags a combination of `TCP_FLAG_*`
 * @returns the packet length, or 0 if it does not fit in `buf` or the addresses are invalid
 */
export function buildTcpPacket(
  buf: Uint8Array,
  off: number,
  src: Uint8Array,
  dst: Uint8Array,
  srcPort: number,
  dstPort: number,
  seq: number,
  ack: number,
  flags: number,
  window: number,
  payload: Uint8Array,
  ttl = DEFAULT_BUILD_TTL,
): number {
  const length = TCP_MIN_HEADER_LEN + payload.length;
  let hl: number;
  if (src.length === 4 && dst.length === 4) hl = IPV4_MIN_HEADER_LEN;
  else if (src.length === 16 && dst.length === 16) hl = IPV6_HEADER_LEN;
  else return 0;
  if (off < 0 || off + hl + length > buf.length || length + (hl === IPV4_MIN_HEADER_LEN ? hl : 0) > 0xffff) {
    return 0;
  }
  const t = off + hl;
  buf[t] = srcPort >>> 8;
  buf[t + 1] = srcPort & 0xff;
  buf[t + TCP_DST_PORT_OFF] = dstPort >>> 8;
  buf[t + TCP_DST_PORT_OFF + 1] = dstPort & 0xff;
  writeU32(buf, t + TCP_SEQ_OFF, seq);
  writeU32(buf, t + TCP_ACK_OFF, ack);
  buf[t + TCP_DATA_OFFSET_OFF] = (TCP_MIN_HEADER_LEN / 4) << 4;
  buf[t + TCP_FLAGS_OFF] = flags;
  buf[t + TCP_WINDOW_OFF] = window >>> 8;
  buf[t + TCP_WINDOW_OFF + 1] = window & 0xff;
  buf[t + TCP_CHECKSUM_OFF] = 0;
  buf[t + TCP_CHECKSUM_OFF + 1] = 0;
  buf[t + TCP_URGENT_OFF] = 0;
  buf[t + TCP_URGENT_OFF + 1] = 0;
  buf.set(payload, t + TCP_MIN_HEADER_LEN);
  let pseudo: number;
  if (hl === IPV4_MIN_HEADER_LEN) {
    writeIpv4Header(buf, off, ipv4Uint32(src, 0), ipv4Uint32(dst, 0), IPPROTO_TCP, length, ttl);
    pseudo = pseudoHeaderSumIpv4(buf, off + IPV4_SRC_OFF, off + IPV4_DST_OFF, IPPROTO_TCP, length);
  } else {
    writeIpv6Header(buf, off, src, 0, dst, 0, IPPROTO_TCP, length, ttl);
    pseudo = pseudoHeaderSumIpv6(buf, off + IPV6_SRC_OFF, off + IPV6_DST_OFF, IPPROTO_TCP, length);
  }
  const c = checksumFinish(checksumAdd(pseudo, buf, t, length));
  buf[t + TCP_CHECKSUM_OFF] = c >>> 8;
  buf[t + TCP_CHECKSUM_OFF + 1] = c & 0xff;
  return hl + length;
}

function readU32(buf: Uint8Array, i: number): number {
  return ((buf[i]! << 24) | (buf[i + 1]! << 16) | (buf[i + 2]! << 8) | buf[i + 3]!) >>> 0;
}

function writeU32(buf: Uint8Array, i: number, v: number): void {
  buf[i] = v >>> 24;
  buf[i + 1] = (v >>> 16) & 0xff;
  buf[i + 2] = (v >>> 8) & 0xff;
  buf[i + 3] = v & 0xff;
}
