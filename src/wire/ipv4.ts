/**
 * IPv4 header layout (RFC 791): offsets, accessors and a header writer.
 *
 * Addresses are handled as uint32 numbers (network order, `>>> 0`). Writers also accept the int32
 * view (`addr | 0`, same bits), which V8 keeps unboxed: on a hot path prefer int32 when passing an
 * address through calls or using it as a `Map` key, since uint32 values ≥ 2^31 become heap numbers. All offsets are relative to the start of the IPv4 header (`off`).
 * Hot path: no allocation.
 *
 * @module
 */

import { checksumAdd, checksumFinish, checksumFold } from "./checksum.ts";

export const IPV4_VERSION_IHL_OFF = 0;
export const IPV4_TOS_OFF = 1;
export const IPV4_TOTAL_LEN_OFF = 2;
export const IPV4_ID_OFF = 4;
export const IPV4_FLAGS_FRAG_OFF = 6;
export const IPV4_TTL_OFF = 8;
export const IPV4_PROTOCOL_OFF = 9;
export const IPV4_CHECKSUM_OFF = 10;
export const IPV4_SRC_OFF = 12;
export const IPV4_DST_OFF = 16;
/** Header length without options. */
export const IPV4_MIN_HEADER_LEN = 20;
/** Header length with the maximum 40 bytes of options (IHL 15). */
export const IPV4_MAX_HEADER_LEN = 60;

/** TTL / hop limit of the packets built for tests and simulations (Linux default). */
export const DEFAULT_BUILD_TTL = 64;

/** "Don't fragment" in the 16-bit flags/fragment-offset word. */
export const IPV4_FLAG_DF = 0x4000;
/** "More fragments" in the 16-bit flags/fragment-offset word. */
export const IPV4_FLAG_MF = 0x2000;
/** Fragment offset (in 8-byte units) in the 16-bit flags/fragment-offset word. */
export const IPV4_FRAG_OFFSET_MASK = 0x1fff;

/** Header length in bytes from the IHL nibble. */
export function ipv4HeaderLen(buf: Uint8Array, off: number): number {
  return (buf[off]! & 0x0f) * 4;
}

/** The total-length field. */
export function ipv4TotalLen(buf: Uint8Array, off: number): number {
  return (buf[off + IPV4_TOTAL_LEN_OFF]! << 8) | buf[off + IPV4_TOTAL_LEN_OFF + 1]!;
}

/** The protocol field. */
export function ipv4Protocol(buf: Uint8Array, off: number): number {
  return buf[off + IPV4_PROTOCOL_OFF]!;
}

/** The time-to-live field. */
export function ipv4Ttl(buf: Uint8Array, off: number): number {
  return buf[off + IPV4_TTL_OFF]!;
}

/** The ECN bits (low two bits of the TOS byte, RFC 3168). */
export function ipv4Ecn(buf: Uint8Array, off: number): number {
  return buf[off + IPV4_TOS_OFF]! & 0x03;
}

/** The source address as uint32. */
export function ipv4Src(buf: Uint8Array, off: number): number {
  return readU32(buf, off + IPV4_SRC_OFF);
}

/** The destination address as uint32. */
export function ipv4Dst(buf: Uint8Array, off: number): number {
  return readU32(buf, off + IPV4_DST_OFF);
}

/** Reads 4 address bytes at `off` as a uint32 (e.g. `ipv4Uint32(parseIpv4("10.0.0.1")!, 0)`). */
export function ipv4Uint32(bytes: Uint8Array, off: number): number {
  return readU32(bytes, off);
}

/** Writes a uint32 address as 4 bytes at `off`. */
export function writeIpv4Addr(buf: Uint8Array, off: number, addr: number): void {
  buf[off] = addr >>> 24;
  buf[off + 1] = (addr >>> 16) & 0xff;
  buf[off + 2] = (addr >>> 8) & 0xff;
  buf[off + 3] = addr & 0xff;
}

/** Dotted-quad text for a uint32 address (control path / logs only: allocates a string). */
export function formatIpv4Uint32(addr: number): string {
  return `${addr >>> 24}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

/** True when the header checksum over `IHL * 4` bytes verifies (sums to 0xffff). */
export function ipv4HeaderChecksumOk(buf: Uint8Array, off: number): boolean {
  return checksumFold(checksumAdd(0, buf, off, ipv4HeaderLen(buf, off))) === 0xffff;
}

/** Recomputes and stores the header checksum over `IHL * 4` bytes. */
export function fillIpv4HeaderChecksum(buf: Uint8Array, off: number): void {
  buf[off + IPV4_CHECKSUM_OFF] = 0;
  buf[off + IPV4_CHECKSUM_OFF + 1] = 0;
  const c = checksumFinish(checksumAdd(0, buf, off, ipv4HeaderLen(buf, off)));
  buf[off + IPV4_CHECKSUM_OFF] = c >>> 8;
  buf[off + IPV4_CHECKSUM_OFF + 1] = c & 0xff;
}

/**
 * Writes a 20-byte IPv4 header (no options, identification 0, DF set) with a valid header
 * checksum.
 *
 * @param tos the whole TOS byte (DSCP << 2 | ECN)
 * @returns the header length (20), or 0 if `buf` has no room for it
 */
export function writeIpv4Header(
  buf: Uint8Array,
  off: number,
  src: number,
  dst: number,
  protocol: number,
  payloadLen: number,
  ttl: number,
  tos = 0,
): number {
  if (off < 0 || off + IPV4_MIN_HEADER_LEN > buf.length) return 0;
  const total = IPV4_MIN_HEADER_LEN + payloadLen;
  buf[off] = 0x45;
  buf[off + IPV4_TOS_OFF] = tos;
  buf[off + IPV4_TOTAL_LEN_OFF] = total >>> 8;
  buf[off + IPV4_TOTAL_LEN_OFF + 1] = total & 0xff;
  buf[off + IPV4_ID_OFF] = 0;
  buf[off + IPV4_ID_OFF + 1] = 0;
  buf[off + IPV4_FLAGS_FRAG_OFF] = IPV4_FLAG_DF >>> 8;
  buf[off + IPV4_FLAGS_FRAG_OFF + 1] = 0;
  buf[off + IPV4_TTL_OFF] = ttl;
  buf[off + IPV4_PROTOCOL_OFF] = protocol;
  writeIpv4Addr(buf, off + IPV4_SRC_OFF, src);
  writeIpv4Addr(buf, off + IPV4_DST_OFF, dst);
  fillIpv4HeaderChecksum(buf, off);
  return IPV4_MIN_HEADER_LEN;
}

function readU32(buf: Uint8Array, i: number): number {
  return ((buf[i]! << 24) | (buf[i + 1]! << 16) | (buf[i + 2]! << 8) | buf[i + 3]!) >>> 0;
}
