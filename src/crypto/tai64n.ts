/**
 * TAI64N timestamps (https://cr.yp.to/libtai/tai64.html), the 12-byte timestamp inside WireGuard's
 * handshake initiation: an 8-byte big-endian TAI64 label (2^62 + 10 + Unix seconds, the label of the
 * Unix epoch being 2^62 + 10 as in wireguard-go and the Linux kernel; leap seconds are ignored) and a
 * 4-byte big-endian nanosecond count. A responder rejects an initiation whose timestamp is not strictly
 * greater than the last one it accepted from that peer (replay protection), which byte-wise comparison
 * of the big-endian encoding decides.
 *
 * Pure: the wall-clock value is passed in.
 *
 * @module
 */

/** Encoded length. */
export const TAI64N_LEN = 12;

/** 2^62 split: the label's high 32 bits start at 0x40000000. */
const TAI64_LABEL_HIGH = 0x4000_0000;
/** TAI − UTC at the Unix epoch, as used by the TAI64 label of 1970-01-01. */
const TAI64_UNIX_OFFSET_S = 10;
const TWO_POW_32 = 0x1_0000_0000;
const NS_PER_MS = 1_000_000;
const MS_PER_S = 1000;

/**
 * Encodes the instant `unixMs` (+ `subMsNanos` nanoseconds, 0..999 999) as TAI64N into
 * `out[off, off + 12)` (a new array when `out` is omitted) and returns `out`.
 *
 * @param unixMs wall-clock milliseconds since the Unix epoch (a non-negative safe integer or fraction
 *   thereof; a fractional part is folded into the nanoseconds)
 * @param subMsNanos extra nanoseconds below the millisecond, 0..999 999
 * @throws RangeError when an argument is negative, not finite, or `subMsNanos` ≥ 1 000 000
 */
export function encodeTai64n(
  unixMs: number,
  subMsNanos = 0,
  out: Uint8Array = new Uint8Array(TAI64N_LEN),
  off = 0,
): Uint8Array {
  if (!Number.isFinite(unixMs) || unixMs < 0 || unixMs > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(`unixMs must be a non-negative safe number of milliseconds, got ${unixMs}`);
  }
  if (!Number.isInteger(subMsNanos) || subMsNanos < 0 || subMsNanos >= NS_PER_MS) {
    throw new RangeError(`subMsNanos must be an integer in 0..999999, got ${subMsNanos}`);
  }
  if (off < 0 || off + TAI64N_LEN > out.length) {
    throw new RangeError(`TAI64N needs ${TAI64N_LEN} bytes at offset ${off}, buffer has ${out.length}`);
  }
  const wholeMs = Math.floor(unixMs);
  const secs = Math.floor(wholeMs / MS_PER_S) + TAI64_UNIX_OFFSET_S;
  const fracNs = Math.floor((unixMs - wholeMs) * NS_PER_MS);
  const nanos = (wholeMs % MS_PER_S) * NS_PER_MS + Math.min(NS_PER_MS - 1, fracNs + subMsNanos);
  const lo = secs % TWO_POW_32;
  const hi = TAI64_LABEL_HIGH + (secs - lo) / TWO_POW_32;
  const view = new DataView(out.buffer, out.byteOffset + off, TAI64N_LEN);
  view.setUint32(0, hi);
  view.setUint32(4, lo);
  view.setUint32(8, nanos);
  return out;
}

/**
 * Compares two TAI64N timestamps (`a[aOff..]` and `b[bOff..]`, 12 bytes each).
 * @returns a negative number when a < b, 0 when equal, positive when a > b
 */
export function compareTai64n(a: Uint8Array, b: Uint8Array, aOff = 0, bOff = 0): number {
  for (let i = 0; i < TAI64N_LEN; i++) {
    const d = a[aOff + i]! - b[bOff + i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * True when `candidate` is strictly later than `previous` (WireGuard accepts an initiation only then).
 * `previous` null means nothing was accepted yet.
 */
export function isTai64nNewer(candidate: Uint8Array, previous: Uint8Array | null): boolean {
  return previous === null || compareTai64n(candidate, previous) > 0;
}
