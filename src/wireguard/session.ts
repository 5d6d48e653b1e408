/**
 * A WireGuard transport session: the two ChaCha20-Poly1305 keys from one handshake, the send counter and
 * the receive replay window. Encrypts and decrypts data messages in place (hot path: no allocation).
 *
 * @module
 */

import type { AeadKey, CryptoBackend } from "../crypto/backend.ts";
import {
  readU64LeNumber,
  WG_DATA_COUNTER_OFF,
  WG_DATA_HEADER_LEN,
  WG_DATA_RECEIVER_OFF,
  WG_TAG_LEN,
  WG_TYPE_DATA,
  wgPaddedLen,
  writeU32Le,
  writeU64LeNumber,
  writeWgType,
} from "../wire/wireguard.ts";
import { REJECT_AFTER_TIME_MS, SHOULD_NOT_USE_AFTER_TIME_MS } from "./constants.ts";
import { ReplayCheck, ReplayWindow } from "./replay.ts";
import { DropReason } from "./result.ts";

/** One session (keypair) of a tunnel. */
export class Session {
  /** Our index for this session (the receiver index of incoming data). */
  readonly localIndex: number;
  /** The peer's index for this session (the receiver index we write on outgoing data). */
  readonly peerIndex: number;
  /** When the handshake completed. */
  readonly establishedAt: number;
  /** True when we sent the initiation of this session's handshake. */
  readonly isInitiator: boolean;
  readonly #send: AeadKey;
  readonly #recv: AeadKey;
  readonly #replay = new ReplayWindow();
  #sendCounter = 0;
  #receivedCount = 0;
  #disposed = false;

  /**
   * @param sendKey our sending key (32 bytes; copied into the backend key, then the caller may wipe it)
   * @param recvKey our receiving key
   */
  constructor(
    backend: CryptoBackend,
    localIndex: number,
    peerIndex: number,
    sendKey: Uint8Array,
    recvKey: Uint8Array,
    isInitiator: boolean,
    now: number,
  ) {
    this.localIndex = localIndex;
    this.peerIndex = peerIndex;
    this.isInitiator = isInitiator;
    this.establishedAt = now;
    this.#send = backend.aeadKey(sendKey);
    this.#recv = backend.aeadKey(recvKey);
  }

  /** The counter the next sent message will carry (= messages sent so far). */
  get sendCounter(): number {
    return this.#sendCounter;
  }

  /** Messages received and authenticated on this session. */
  get receivedCount(): number {
    return this.#receivedCount;
  }

  /** Highest received counter, -1 when nothing was received. */
  get lastReceivedCounter(): number {
    return this.#replay.last;
  }

  /** True once REJECT_AFTER_TIME has passed: the session must not be used at all. */
  isExpired(now: number): boolean {
    return now >= this.establishedAt + REJECT_AFTER_TIME_MS;
  }

  /** False once the session is too old for new outgoing packets (fork: 170 s). */
  shouldUse(now: number): boolean {
    return now < this.establishedAt + SHOULD_NOT_USE_AFTER_TIME_MS;
  }

  /**
   * Hot path: encrypts `buf[off, off + len)` in place into a data message that starts at
   * `off - 16` (header) and ends after the zero padding and the tag. The caller guarantees 16 bytes of
   * headroom and 31 bytes of tailroom.
   * @returns the message length (`16 + padded + 16`)
   */
  seal(buf: Uint8Array, off: number, len: number): number {
    const counter = this.#sendCounter++;
    const padded = wgPaddedLen(len);
    if (padded !== len) buf.fill(0, off + len, off + padded);
    const msgOff = off - WG_DATA_HEADER_LEN;
    // msg.message_type = 4, msg.reserved_zero = { 0, 0, 0 }
    writeWgType(buf, msgOff, WG_TYPE_DATA);
    // msg.receiver_index = little_endian(receiver_index)
    writeU32Le(buf, msgOff + WG_DATA_RECEIVER_OFF, this.peerIndex);
    // msg.counter = little_endian(sending_key_counter)
    writeU64LeNumber(buf, msgOff + WG_DATA_COUNTER_OFF, counter);
    // msg.encrypted_encapsulated_packet = AEAD(sending_key, counter, P || pad, ε)
    this.#send.seal(counter, null, buf, off, padded);
    return WG_DATA_HEADER_LEN + padded + WG_TAG_LEN;
  }

  /**
   * Hot path: authenticates and decrypts the data message `buf[off, off + len)` in place; the plaintext
   * (with its padding) lands at `off + 16`. Rejects counters at or above `rejectAfterMessages`.
   * @returns the plaintext length (>= 0), or the negated {@link DropReason}
   */
  open(buf: Uint8Array, off: number, len: number, rejectAfterMessages: number): number {
    const counter = readU64LeNumber(buf, off + WG_DATA_COUNTER_OFF);
    if (counter < 0 || counter >= rejectAfterMessages) return -DropReason.InvalidCounter;
    // Cheap replay check first so replays cost no AEAD work.
    const check = this.#replay.check(counter);
    if (check !== ReplayCheck.Ok) {
      return check === ReplayCheck.Duplicate ? -DropReason.Replayed : -DropReason.ReplayTooOld;
    }
    const n = this.#recv.open(counter, null, buf, off + WG_DATA_HEADER_LEN, len - WG_DATA_HEADER_LEN);
    if (n < 0) return -DropReason.DecryptFailed;
    const accepted = this.#replay.accept(counter);
    if (accepted !== ReplayCheck.Ok) {
      return accepted === ReplayCheck.Duplicate ? -DropReason.Replayed : -DropReason.ReplayTooOld;
    }
    this.#receivedCount++;
    return n;
  }

  /** Wipes the keys. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#send.dispose();
    this.#recv.dispose();
  }
}
