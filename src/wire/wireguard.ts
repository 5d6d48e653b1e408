/**
 * WireGuard message layouts (the WireGuard paper §5.4): type constants, exact sizes, field offsets and
 * little-endian accessors over `(Uint8Array, offset)`. Pure byte arithmetic: no views, no allocation,
 * so every accessor is usable on the data path.
 *
 * ```
 * type 1 handshake initiation (148): type u8, 3 zero, sender u32le, ephemeral[32],
 *        static[32+16], timestamp[12+16], mac1[16], mac2[16]
 * type 2 handshake response (92):    type u8, 3 zero, sender u32le, receiver u32le, ephemeral[32],
 *        empty[0+16], mac1[16], mac2[16]
 * type 3 cookie reply (64):          type u8, 3 zero, receiver u32le, nonce[24], cookie[16+16]
 * type 4 transport data (>= 32):     type u8, 3 zero, receiver u32le, counter u64le, packet[n+16]
 * ```
 *
 * @module
 */

// Message types (the first little-endian u32; the three upper bytes are reserved zero).
/** Handshake initiation. */
export const WG_TYPE_HANDSHAKE_INIT = 1;
/** Handshake response. */
export const WG_TYPE_HANDSHAKE_RESPONSE = 2;
/** Cookie reply (sent instead of a response under load). */
export const WG_TYPE_COOKIE_REPLY = 3;
/** Transport data. */
export const WG_TYPE_DATA = 4;
/** Returned by {@link wgMessageType} for anything that is not a well-formed WireGuard message. */
export const WG_TYPE_NONE = 0;

// Sizes.
/** Handshake initiation length. */
export const WG_HANDSHAKE_INIT_LEN = 148;
/** Handshake response length. */
export const WG_HANDSHAKE_RESPONSE_LEN = 92;
/** Cookie reply length. */
export const WG_COOKIE_REPLY_LEN = 64;
/** Transport data header: type, receiver index, counter. Callers keep this much headroom. */
export const WG_DATA_HEADER_LEN = 16;
/** Poly1305 tag after every encrypted field. */
export const WG_TAG_LEN = 16;
/** Smallest transport data message (a keepalive): header + tag. */
export const WG_DATA_MIN_LEN = WG_DATA_HEADER_LEN + WG_TAG_LEN;
/** Per-packet overhead of transport data before padding. */
export const WG_DATA_OVERHEAD_LEN = WG_DATA_MIN_LEN;
/** Plaintext is zero-padded to a multiple of this many bytes. */
export const WG_PADDING_MULTIPLE = 16;
/** Tailroom a caller keeps after an IP packet for {@link WG_TAG_LEN} plus the worst-case padding. */
export const WG_DATA_TAILROOM_LEN = WG_TAG_LEN + WG_PADDING_MULTIPLE - 1;
/** MAC1/MAC2 length. */
export const WG_MAC_LEN = 16;
/** The cookie (MAC2 key) length. */
export const WG_COOKIE_LEN = 16;
/** Cookie reply XChaCha20 nonce length. */
export const WG_COOKIE_NONCE_LEN = 24;
/** The encrypted TAI64N timestamp plaintext length. */
export const WG_TIMESTAMP_LEN = 12;

// Common fields.
/** Offset of the type byte. */
export const WG_TYPE_OFF = 0;

// Handshake initiation.
export const WG_INIT_SENDER_OFF = 4;
export const WG_INIT_EPHEMERAL_OFF = 8;
export const WG_INIT_STATIC_OFF = 40;
/** Encrypted static key: 32 bytes + tag. */
export const WG_INIT_STATIC_LEN = 32 + WG_TAG_LEN;
export const WG_INIT_TIMESTAMP_OFF = 88;
/** Encrypted timestamp: 12 bytes + tag. */
export const WG_INIT_TIMESTAMP_LEN = WG_TIMESTAMP_LEN + WG_TAG_LEN;
export const WG_INIT_MAC1_OFF = 116;
export const WG_INIT_MAC2_OFF = 132;

// Handshake response.
export const WG_RESP_SENDER_OFF = 4;
export const WG_RESP_RECEIVER_OFF = 8;
export const WG_RESP_EPHEMERAL_OFF = 12;
export const WG_RESP_EMPTY_OFF = 44;
/** Encrypted empty payload: just a tag. */
export const WG_RESP_EMPTY_LEN = WG_TAG_LEN;
export const WG_RESP_MAC1_OFF = 60;
export const WG_RESP_MAC2_OFF = 76;

// Cookie reply.
export const WG_COOKIE_RECEIVER_OFF = 4;
export const WG_COOKIE_NONCE_OFF = 8;
export const WG_COOKIE_ENCRYPTED_OFF = 32;
/** Encrypted cookie: 16 bytes + tag. */
export const WG_COOKIE_ENCRYPTED_LEN = WG_COOKIE_LEN + WG_TAG_LEN;

// Transport data.
export const WG_DATA_RECEIVER_OFF = 4;
export const WG_DATA_COUNTER_OFF = 8;
export const WG_DATA_PAYLOAD_OFF = 16;

const TWO_POW_32 = 0x1_0000_0000;

/**
 * Hot path: the WireGuard message type of `buf[off, off + len)`, or {@link WG_TYPE_NONE} when the type is
 * unknown, the reserved bytes are not zero, or the length does not fit the type (boringtun's
 * `parse_incoming_packet`: 148, 92, 64 exactly; data at least 32).
 */
export function wgMessageType(buf: Uint8Array, off: number, len: number): number {
  if (len < 4) return WG_TYPE_NONE;
  if ((buf[off + 1]! | buf[off + 2]! | buf[off + 3]!) !== 0) return WG_TYPE_NONE;
  const type = buf[off]!;
  switch (type) {
    case WG_TYPE_HANDSHAKE_INIT:
      return len === WG_HANDSHAKE_INIT_LEN ? type : WG_TYPE_NONE;
    case WG_TYPE_HANDSHAKE_RESPONSE:
      return len === WG_HANDSHAKE_RESPONSE_LEN ? type : WG_TYPE_NONE;
    case WG_TYPE_COOKIE_REPLY:
      return len === WG_COOKIE_REPLY_LEN ? type : WG_TYPE_NONE;
    case WG_TYPE_DATA:
      return len >= WG_DATA_MIN_LEN ? type : WG_TYPE_NONE;
    default:
      return WG_TYPE_NONE;
  }
}

/**
 * The receiver index of a response, cookie reply or data message (our local index), or -1 for an
 * initiation (which carries only the sender's index) or a non-WireGuard message.
 */
export function wgReceiverIndex(buf: Uint8Array, off: number, len: number): number {
  switch (wgMessageType(buf, off, len)) {
    case WG_TYPE_HANDSHAKE_RESPONSE:
      return readU32Le(buf, off + WG_RESP_RECEIVER_OFF);
    case WG_TYPE_COOKIE_REPLY:
      return readU32Le(buf, off + WG_COOKIE_RECEIVER_OFF);
    case WG_TYPE_DATA:
      return readU32Le(buf, off + WG_DATA_RECEIVER_OFF);
    default:
      return -1;
  }
}

/** Reads a little-endian u32 at `off`. */
export function readU32Le(buf: Uint8Array, off: number): number {
  return (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24)) >>> 0;
}

/** Writes `value` (a u32) little-endian at `off`. */
export function writeU32Le(buf: Uint8Array, off: number, value: number): void {
  buf[off] = value;
  buf[off + 1] = value >>> 8;
  buf[off + 2] = value >>> 16;
  buf[off + 3] = value >>> 24;
}

/**
 * Reads a little-endian u64 at `off` as a number. Values above 2^53 - 1 (never a valid WireGuard
 * counter for us: we reject long before) come back as -1 instead of a rounded number.
 */
export function readU64LeNumber(buf: Uint8Array, off: number): number {
  const lo = readU32Le(buf, off);
  const hi = readU32Le(buf, off + 4);
  if (hi >= 0x20_0000) return -1;
  return hi * TWO_POW_32 + lo;
}

/** Writes a non-negative safe integer as a little-endian u64 at `off` (no BigInt). */
export function writeU64LeNumber(buf: Uint8Array, off: number, value: number): void {
  const lo = value >>> 0;
  writeU32Le(buf, off, lo);
  writeU32Le(buf, off + 4, (value - lo) / TWO_POW_32);
}

/** Writes the 4-byte message header (type + three reserved zero bytes) at `off`. */
export function writeWgType(buf: Uint8Array, off: number, type: number): void {
  buf[off] = type;
  buf[off + 1] = 0;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
}

/** Length of a data message carrying `plaintextLen` bytes: header + padded payload + tag. */
export function wgDataMessageLen(plaintextLen: number): number {
  return WG_DATA_HEADER_LEN + wgPaddedLen(plaintextLen) + WG_TAG_LEN;
}

/** `len` rounded up to a multiple of {@link WG_PADDING_MULTIPLE}. */
export function wgPaddedLen(len: number): number {
  return (len + WG_PADDING_MULTIPLE - 1) & ~(WG_PADDING_MULTIPLE - 1);
}
