/**
 * TURN ChannelData framing (RFC 8656 §12.4): `[channel u16 BE][length u16 BE][payload]`.
 *
 * Hot path: plain integer functions over `(buf, off, len)`, no allocation. Firezone sends no padding
 * and accepts a message only when the length field equals the remaining length exactly (spec §3.4).
 *
 * @module
 */

/** Size of the ChannelData header the sender reserves in front of each payload. */
export const CHANNEL_DATA_HEADER_LEN = 4;
/** Lowest channel number a ChannelData message may carry. */
export const CHANNEL_NUMBER_MIN = 0x4000;
/** Highest channel number accepted on receive (RFC 5766 range). */
export const CHANNEL_NUMBER_MAX = 0x7fff;

/**
 * The channel number of a valid ChannelData message in `buf[off, off + len)`, or -1 when it is not one
 * (shorter than 4 bytes, channel outside 0x4000–0x7FFF, or length field ≠ `len - 4`).
 */
export function channelDataChannel(buf: Uint8Array, off: number, len: number): number {
  if (len < CHANNEL_DATA_HEADER_LEN) return -1;
  const channel = (buf[off]! << 8) | buf[off + 1]!;
  if (channel < CHANNEL_NUMBER_MIN || channel > CHANNEL_NUMBER_MAX) return -1;
  const payloadLen = (buf[off + 2]! << 8) | buf[off + 3]!;
  return payloadLen === len - CHANNEL_DATA_HEADER_LEN ? channel : -1;
}

/**
 * Writes the 4-byte header at `buf[off, off + 4)` for a payload already in place at `off + 4`.
 * Returns the total message length (`payloadLen + 4`). No padding is added.
 */
export function writeChannelDataHeader(
  buf: Uint8Array,
  off: number,
  channel: number,
  payloadLen: number,
): number {
  buf[off] = (channel >>> 8) & 0xff;
  buf[off + 1] = channel & 0xff;
  buf[off + 2] = (payloadLen >>> 8) & 0xff;
  buf[off + 3] = payloadLen & 0xff;
  return payloadLen + CHANNEL_DATA_HEADER_LEN;
}
