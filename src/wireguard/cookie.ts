/**
 * MAC1/MAC2 and cookies (the WireGuard paper §5.4.4 and §5.4.7).
 *
 * ```
 * msg.mac1 = MAC(HASH(LABEL_MAC1 || Spub_m'), msg[0:offsetof(msg.mac1)])
 * msg.mac2 = MAC(cookie, msg[0:offsetof(msg.mac2)])   (zeros when no fresh cookie is known)
 * cookie   = MAC(R_m, A_m')                           (R_m: responder secret, changes every 2 minutes;
 *                                                      A_m': initiator's source IP and port)
 * reply.encrypted_cookie = XAEAD(HASH(LABEL_COOKIE || Spub_m), reply.nonce, cookie, M.mac1)
 * ```
 *
 * MAC is keyed BLAKE2s with a 16-byte output. Handshake path only: these functions allocate.
 *
 * @module
 */

import type { CryptoBackend } from "../crypto/backend.ts";
import {
  readU32Le,
  WG_COOKIE_ENCRYPTED_LEN,
  WG_COOKIE_ENCRYPTED_OFF,
  WG_COOKIE_LEN,
  WG_COOKIE_NONCE_LEN,
  WG_COOKIE_NONCE_OFF,
  WG_COOKIE_RECEIVER_OFF,
  WG_COOKIE_REPLY_LEN,
  WG_MAC_LEN,
  WG_TYPE_COOKIE_REPLY,
  writeU32Le,
  writeWgType,
} from "../wire/wireguard.ts";
import { COOKIE_EXPIRATION_TIME_MS } from "./constants.ts";
import { DropReason } from "./result.ts";

/** MAC(key, buf[off, off + n)): keyed BLAKE2s-128. */
export function computeMac(
  backend: CryptoBackend,
  key: Uint8Array,
  buf: Uint8Array,
  off: number,
  n: number,
): Uint8Array {
  return backend.blake2sMac128(key, buf.subarray(off, off + n));
}

/** True when the 16 bytes at `buf[macOff]` equal `mac` (constant time). */
export function macEquals(buf: Uint8Array, macOff: number, mac: Uint8Array): boolean {
  let diff = 0;
  for (let i = 0; i < WG_MAC_LEN; i++) diff |= buf[macOff + i]! ^ mac[i]!;
  return diff === 0;
}

/**
 * Checks MAC1 of the handshake message at `buf[off]` whose MAC1 field starts at `off + mac1Off`.
 * @param mac1Key HASH(LABEL_MAC1 || our public key)
 */
export function verifyMac1(
  backend: CryptoBackend,
  mac1Key: Uint8Array,
  buf: Uint8Array,
  off: number,
  mac1Off: number,
): boolean {
  return macEquals(buf, off + mac1Off, computeMac(backend, mac1Key, buf, off, mac1Off));
}

/**
 * Initiator side of the cookie mechanism, one per tunnel: stamps MAC1/MAC2 on the handshake messages
 * we send, remembers the last MAC1 (the AAD of a cookie reply) and stores the cookie a reply brings.
 */
export class CookieJar {
  readonly #backend: CryptoBackend;
  /** HASH(LABEL_MAC1 || peer public key). */
  readonly #peerMac1Key: Uint8Array;
  /** HASH(LABEL_COOKIE || peer public key). */
  readonly #peerCookieKey: Uint8Array;
  #cookie: Uint8Array | null = null;
  #cookieAt = -Infinity;
  #lastMac1: Uint8Array | null = null;
  #lastSenderIndex = -1;

  constructor(backend: CryptoBackend, peerMac1Key: Uint8Array, peerCookieKey: Uint8Array) {
    this.#backend = backend;
    this.#peerMac1Key = peerMac1Key;
    this.#peerCookieKey = peerCookieKey;
  }

  /** True while a cookie from the peer is fresh enough to be used for MAC2. */
  hasCookie(now: number): boolean {
    return this.#cookie !== null && now < this.#cookieAt + COOKIE_EXPIRATION_TIME_MS;
  }

  /** When the stored cookie stops being used (Infinity when none). */
  get cookieExpiresAt(): number {
    return this.#cookie === null ? Infinity : this.#cookieAt + COOKIE_EXPIRATION_TIME_MS;
  }

  /** Forgets an expired cookie. */
  expire(now: number): void {
    if (this.#cookie !== null && now >= this.#cookieAt + COOKIE_EXPIRATION_TIME_MS) {
      this.#cookie.fill(0);
      this.#cookie = null;
    }
  }

  /**
   * Writes MAC1 and MAC2 (zeros without a fresh cookie) of the handshake message at `buf[off]` and
   * remembers MAC1 and `senderIndex` for a cookie reply.
   */
  stamp(buf: Uint8Array, off: number, mac1Off: number, senderIndex: number, now: number): void {
    const mac2Off = mac1Off + WG_MAC_LEN;
    // msg.mac1 = MAC(HASH(LABEL_MAC1 || Spub_m'), msg[0:offsetof(msg.mac1)])
    const mac1 = computeMac(this.#backend, this.#peerMac1Key, buf, off, mac1Off);
    buf.set(mac1, off + mac1Off);
    if (this.hasCookie(now)) {
      // msg.mac2 = MAC(initiator.last_received_cookie, msg[0:offsetof(msg.mac2)])
      buf.set(computeMac(this.#backend, this.#cookie!, buf, off, mac2Off), off + mac2Off);
    } else {
      buf.fill(0, off + mac2Off, off + mac2Off + WG_MAC_LEN);
    }
    this.#lastMac1 = mac1;
    this.#lastSenderIndex = senderIndex;
  }

  /**
   * Processes a cookie reply (already length/type checked) addressed to our last handshake message.
   * @returns DropReason.None when the cookie was stored
   */
  consumeReply(buf: Uint8Array, off: number, now: number): DropReason {
    if (this.#lastMac1 === null) return DropReason.UnexpectedPacket;
    if (readU32Le(buf, off + WG_COOKIE_RECEIVER_OFF) !== this.#lastSenderIndex) {
      return DropReason.InvalidReceiverIndex;
    }
    const nonce = buf.slice(off + WG_COOKIE_NONCE_OFF, off + WG_COOKIE_NONCE_OFF + WG_COOKIE_NONCE_LEN);
    const sealed = buf.slice(
      off + WG_COOKIE_ENCRYPTED_OFF,
      off + WG_COOKIE_ENCRYPTED_OFF + WG_COOKIE_ENCRYPTED_LEN,
    );
    // cookie = XAEAD_open(HASH(LABEL_COOKIE || Spub_m), msg.nonce, msg.encrypted_cookie, last mac1)
    const cookie = this.#backend.xaeadOpen(this.#peerCookieKey, nonce, this.#lastMac1, sealed);
    if (cookie === null || cookie.length !== WG_COOKIE_LEN) return DropReason.DecryptFailed;
    this.#cookie = cookie;
    this.#cookieAt = now;
    return DropReason.None;
  }
}

/**
 * Writes a cookie reply (64 bytes) at `dst[dstOff]` for a handshake message whose sender index is
 * `receiverIndex` and whose MAC1 is `mac1`.
 *
 * @param cookieKey HASH(LABEL_COOKIE || our public key)
 * @param nonce 24 fresh random bytes
 * @param cookie MAC(R_m, A_m') for the message's source
 */
export function writeCookieReply(
  backend: CryptoBackend,
  cookieKey: Uint8Array,
  receiverIndex: number,
  nonce: Uint8Array,
  cookie: Uint8Array,
  mac1: Uint8Array,
  dst: Uint8Array,
  dstOff: number,
): number {
  // msg.message_type = 3, msg.reserved_zero = { 0, 0, 0 }
  writeWgType(dst, dstOff, WG_TYPE_COOKIE_REPLY);
  // msg.receiver_index = little_endian(initiator.sender_index)
  writeU32Le(dst, dstOff + WG_COOKIE_RECEIVER_OFF, receiverIndex);
  dst.set(nonce, dstOff + WG_COOKIE_NONCE_OFF);
  // msg.encrypted_cookie = XAEAD(HASH(LABEL_COOKIE || Spub_m), msg.nonce, cookie, last_received_msg.mac1)
  dst.set(backend.xaeadSeal(cookieKey, nonce, mac1, cookie), dstOff + WG_COOKIE_ENCRYPTED_OFF);
  return WG_COOKIE_REPLY_LEN;
}
