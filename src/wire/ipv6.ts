/**
 * IPv6 header layout (RFC 8200): offsets, extension-header numbers, accessors and a header writer.
 *
 * Addresses stay as 16 bytes inside the packet and are passed around as `(buf, off)`. Offsets are
 * relative to the start of the IPv6 header (`off`). Hot path: no allocation.
 *
 * @module
 */

export const IPV6_PAYLOAD_LEN_OFF = 4;
export const IPV6_NEXT_HEADER_OFF = 6;
export const IPV6_HOP_LIMIT_OFF = 7;
export const IPV6_SRC_OFF = 8;
export const IPV6_DST_OFF = 24;
/** Length of the fixed header. */
export const IPV6_HEADER_LEN = 40;
/** Length of an IPv6 address. */
export const IPV6_ADDR_LEN = 16;

/** Extension headers walked by the parser (RFC 8200 section 4). */
export const IPV6_EXT_HOP_BY_HOP = 0;
export const IPV6_EXT_ROUTING = 43;
export const IPV6_EXT_FRAGMENT = 44;
export const IPV6_EXT_DESTINATION_OPTIONS = 60;
/** "No next header" (RFC 8200 section 4.7). */
export const IPV6_NO_NEXT_HEADER = 59;
/** Length of the fragment extension header. */
export const IPV6_FRAGMENT_HEADER_LEN = 8;

/** The payload-length field (bytes after the fixed 40-byte header, extension headers included). */
export function ipv6PayloadLen(buf: Uint8Array, off: number): number {
  return (buf[off + IPV6_PAYLOAD_LEN_OFF]! << 8) | buf[off + IPV6_PAYLOAD_LEN_OFF + 1]!;
}

/** The next-header field of the fixed header. */
export function ipv6NextHeader(buf: Uint8Array, off: number): number {
  return buf[off + IPV6_NEXT_HEADER_OFF]!;
}

/** The hop-limit field. */
export function ipv6HopLimit(buf: Uint8Array, off: number): number {
  return buf[off + IPV6_HOP_LIMIT_OFF]!;
}

/** The 8-bit traffic class (it straddles bytes 0 and 1). */
export function ipv6TrafficClass(buf: Uint8Array, off: number): number {
  return ((buf[off]! & 0x0f) << 4) | (buf[off + 1]! >>> 4);
}

/** The ECN bits (low two bits of the traffic class, RFC 3168). */
export function ipv6Ecn(buf: Uint8Array, off: number): number {
  return (buf[off + 1]! >>> 4) & 0x03;
}

/** The 20-bit flow label. */
export function ipv6FlowLabel(buf: Uint8Array, off: number): number {
  return ((buf[off + 1]! & 0x0f) << 16) | (buf[off + 2]! << 8) | buf[off + 3]!;
}

/**
 * 32-bit word `i` (0..3, network order) of the 16-byte address at `addrOff`. Word 3 is the low
 * 32 bits, usable as a numeric key after a prefix check.
 */
export function ipv6AddrWord(buf: Uint8Array, addrOff: number, i: number): number {
  const p = addrOff + 4 * i;
  return ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!) >>> 0;
}

/** True when the 16 bytes at `aOff` in `a` equal those at `bOff` in `b`. */
export function ipv6AddrEqual(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < IPV6_ADDR_LEN; i++) {
    if (a[aOff + i] !== b[bOff + i]) return false;
  }
  return true;
}

/** True when the 16 bytes at `addrOff` are all zero (`::`). */
export function ipv6AddrIsUnspecified(buf: Uint8Array, addrOff: number): boolean {
  for (let i = 0; i < IPV6_ADDR_LEN; i++) {
    if (buf[addrOff + i] !== 0) return false;
  }
  return true;
}

/** Copies a 16-byte address. */
export function copyIpv6Addr(dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number): void {
  for (let i = 0; i < IPV6_ADDR_LEN; i++) dst[dstOff + i] = src[srcOff + i]!;
}

/**
 * Writes a 40-byte IPv6 header.
 *
 * @param trafficClass the whole traffic-class byte (DSCP << 2 | ECN)
 * @returns the header length (40), or 0 if `buf` has no room for it
 */
export function writeIpv6Header(
  buf: Uint8Array,
  off: number,
  src: Uint8Array,
  srcOff: number,
  dst: Uint8Array,
  dstOff: number,
  nextHeader: number,
  payloadLen: number,
  hopLimit: number,
  trafficClass = 0,
  flowLabel = 0,
): number {
  if (off < 0 || off + IPV6_HEADER_LEN > buf.length) return 0;
  buf[off] = 0x60 | ((trafficClass >>> 4) & 0x0f);
  buf[off + 1] = ((trafficClass & 0x0f) << 4) | ((flowLabel >>> 16) & 0x0f);
  buf[off + 2] = (flowLabel >>> 8) & 0xff;
  buf[off + 3] = flowLabel & 0xff;
  buf[off + IPV6_PAYLOAD_LEN_OFF] = payloadLen >>> 8;
  buf[off + IPV6_PAYLOAD_LEN_OFF + 1] = payloadLen & 0xff;
  buf[off + IPV6_NEXT_HEADER_OFF] = nextHeader;
  buf[off + IPV6_HOP_LIMIT_OFF] = hopLimit;
  copyIpv6Addr(buf, off + IPV6_SRC_OFF, src, srcOff);
  copyIpv6Addr(buf, off + IPV6_DST_OFF, dst, dstOff);
  return IPV6_HEADER_LEN;
}
