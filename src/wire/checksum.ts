/**
 * The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 *
 * Sums are kept as plain non-negative numbers and folded at the end: 16-bit words of a 1280-byte
 * packet stay far below 2^53, so no 32-bit wrap-around can lose a carry.
 *
 * Hot path: every function here is allocation-free.
 *
 * @module
 */

/** IP protocol numbers used by the pseudo-header functions and the codecs. */
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;

/**
 * Adds the bytes `[off, off + len)` of `buf`, as big-endian 16-bit words, to `sum` (RFC 1071).
 * An odd trailing byte is padded with a zero byte. The result is unfolded; finish with
 * {@link checksumFinish} or {@link checksumFold}.
 */
export function checksumAdd(sum: number, buf: Uint8Array, off: number, len: number): number {
  const end = off + len;
  const evenEnd = off + (len & ~1);
  let s = sum;
  for (let i = off; i < evenEnd; i += 2) s += (buf[i]! << 8) | buf[i + 1]!;
  if (evenEnd < end) s += buf[evenEnd]! << 8;
  return s;
}

/** Folds a sum to 16 bits with end-around carry. */
export function checksumFold(sum: number): number {
  let s = sum;
  while (s > 0xffffffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** The checksum field value for a finished sum: the one's complement of the folded sum. */
export function checksumFinish(sum: number): number {
  return ~checksumFold(sum) & 0xffff;
}

/** The Internet checksum of `[off, off + len)` (the value to store in a zeroed checksum field). */
export function internetChecksum(buf: Uint8Array, off: number, len: number): number {
  return checksumFinish(checksumAdd(0, buf, off, len));
}

/**
 * Unfolded sum of the IPv4 pseudo-header (RFC 793/768): source, destination, zero, protocol,
 * upper-layer length. `srcOff`/`dstOff` point at the 4-byte addresses in `buf`.
 */
export function pseudoHeaderSumIpv4(
  buf: Uint8Array,
  srcOff: number,
  dstOff: number,
  protocol: number,
  l4Len: number,
): number {
  let s = checksumAdd(0, buf, srcOff, 4);
  s = checksumAdd(s, buf, dstOff, 4);
  return s + protocol + l4Len;
}

/**
 * Unfolded sum of the IPv6 pseudo-header (RFC 8200 section 8.1): source, destination, 32-bit
 * upper-layer length, three zero bytes, next header. Uses the addresses as they appear in the header
 * (routing headers are not followed to the final destination).
 */
export function pseudoHeaderSumIpv6(
  buf: Uint8Array,
  srcOff: number,
  dstOff: number,
  nextHeader: number,
  l4Len: number,
): number {
  let s = checksumAdd(0, buf, srcOff, 16);
  s = checksumAdd(s, buf, dstOff, 16);
  return s + Math.floor(l4Len / 0x10000) + (l4Len & 0xffff) + nextHeader;
}

/**
 * RFC 1624 eqn. 3: the new checksum after one 16-bit word of the covered data changed from
 * `oldWord` to `newWord`: `HC' = ~(~HC + ~m + m')`.
 */
export function checksumUpdate16(hc: number, oldWord: number, newWord: number): number {
  return checksumApplyDelta(hc, (~oldWord & 0xffff) + (newWord & 0xffff));
}

/** {@link checksumUpdate16} for a 32-bit field (e.g. an IPv4 address as uint32). */
export function checksumUpdate32(hc: number, oldValue: number, newValue: number): number {
  const delta = (~(oldValue >>> 16) & 0xffff) + (~oldValue & 0xffff) + (newValue >>> 16) +
    (newValue & 0xffff);
  return checksumApplyDelta(hc, delta);
}

/**
 * The delta for replacing `len` bytes (even) at `oldOff` in `oldBuf` with those at `newOff` in
 * `newBuf`: the sum of the complemented old words plus the new words. Apply it with
 * {@link checksumApplyDelta} to every checksum that covers the field (e.g. a 128-bit IPv6 address).
 */
export function checksumDelta(
  oldBuf: Uint8Array,
  oldOff: number,
  newBuf: Uint8Array,
  newOff: number,
  len: number,
): number {
  let d = 0;
  for (let i = 0; i < len; i += 2) {
    d += (~((oldBuf[oldOff + i]! << 8) | oldBuf[oldOff + i + 1]!) & 0xffff) +
      ((newBuf[newOff + i]! << 8) | newBuf[newOff + i + 1]!);
  }
  return d;
}

/** Applies a delta from {@link checksumDelta} (or a sum of them) to checksum `hc`: `~(~HC + delta)`. */
export function checksumApplyDelta(hc: number, delta: number): number {
  return ~checksumFold((~hc & 0xffff) + delta) & 0xffff;
}

/** {@link checksumUpdate16} for a 128-bit field: old bytes at `oldOff`, new bytes at `newOff`. */
export function checksumUpdate128(
  hc: number,
  oldBuf: Uint8Array,
  oldOff: number,
  newBuf: Uint8Array,
  newOff: number,
): number {
  return checksumApplyDelta(hc, checksumDelta(oldBuf, oldOff, newBuf, newOff, 16));
}
