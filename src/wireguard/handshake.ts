/**
 * The Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s handshake of WireGuard (the WireGuard paper §5.4), as the
 * initiator and as the responder, with the paper's pseudocode beside each step. Control path: these
 * functions allocate freely (a few dozen small arrays per handshake).
 *
 * ```
 * HASH = BLAKE2s-256, MAC = keyed BLAKE2s-128, HMAC = HMAC-BLAKE2s, KDFn per the paper,
 * AEAD = ChaCha20-Poly1305 (counter 0 for handshake fields), DH = X25519
 * ```
 *
 * @module
 */

import type { CryptoBackend } from "../crypto/backend.ts";
import { KEY_LEN } from "../crypto/backend.ts";
import { kdf1, kdf2, kdf3 } from "../crypto/hkdf.ts";
import { encodeTai64n, isTai64nNewer, TAI64N_LEN } from "../crypto/tai64n.ts";
import { randomBytes, type Rng } from "../rng.ts";
import {
  readU32Le,
  WG_HANDSHAKE_RESPONSE_LEN,
  WG_INIT_EPHEMERAL_OFF,
  WG_INIT_MAC1_OFF,
  WG_INIT_SENDER_OFF,
  WG_INIT_STATIC_LEN,
  WG_INIT_STATIC_OFF,
  WG_INIT_TIMESTAMP_LEN,
  WG_INIT_TIMESTAMP_OFF,
  WG_RESP_EMPTY_LEN,
  WG_RESP_EMPTY_OFF,
  WG_RESP_EPHEMERAL_OFF,
  WG_RESP_MAC1_OFF,
  WG_RESP_RECEIVER_OFF,
  WG_RESP_SENDER_OFF,
  WG_TYPE_HANDSHAKE_INIT,
  WG_TYPE_HANDSHAKE_RESPONSE,
  wgMessageType,
  writeU32Le,
  writeWgType,
} from "../wire/wireguard.ts";
import { NOISE_CONSTRUCTION, WG_IDENTIFIER } from "./constants.ts";
import { CookieJar, verifyMac1 } from "./cookie.ts";
import { cookieKeyFor, mac1KeyFor, type StaticIdentity } from "./identity.ts";
import type { SessionIndex } from "./index_allocator.ts";
import { DropReason } from "./result.ts";

/** The keys and indices of a completed handshake, from which the tunnel builds a {@link Session}. */
export interface SessionKeys {
  /** Our index for the session (receiver index of incoming data). */
  readonly localIndex: number;
  /** The peer's index (receiver index we write on outgoing data). */
  readonly peerIndex: number;
  readonly sendKey: Uint8Array;
  readonly recvKey: Uint8Array;
  /** True when we were the initiator of this handshake. */
  readonly isInitiator: boolean;
}

/** What {@link parseHandshakeAnon} learns from an initiation without any per-peer state. */
export interface AnonymousInitiation {
  /** The initiator's sender index. */
  readonly senderIndex: number;
  /** The initiator's static public key (route the message to the tunnel with this peer key). */
  readonly peerStaticPublic: Uint8Array;
}

/** A wall clock: maps the monotonic `now` to Unix milliseconds (TAI64N timestamps need it). */
export type WallClock = (now: number) => number;

/**
 * A {@link WallClock} anchored once: `utcAtMs` was the wall-clock time at monotonic instant `at`; later
 * instants are offset from it, so timestamps stay monotonic even if the system clock steps.
 */
export function anchoredWallClock(utcAtMs: number, at: number): WallClock {
  return (now: number) => utcAtMs + (now - at);
}

const ENCODER = new TextEncoder();
const ZERO_KEY = new Uint8Array(KEY_LEN);
const EMPTY = new Uint8Array(0);

interface NoiseStart {
  /** Ci = HASH(CONSTRUCTION) */
  chainingKey: Uint8Array;
  /** Hi = HASH(Ci || IDENTIFIER) */
  hash: Uint8Array;
}

const noiseStarts = new WeakMap<CryptoBackend, NoiseStart>();

/** The initial chaining key and hash, shared by every handshake (computed once per backend). */
export function noiseStart(backend: CryptoBackend): NoiseStart {
  let s = noiseStarts.get(backend);
  if (s === undefined) {
    const chainingKey = backend.blake2s256(ENCODER.encode(NOISE_CONSTRUCTION));
    s = { chainingKey, hash: backend.blake2s256(chainingKey, ENCODER.encode(WG_IDENTIFIER)) };
    noiseStarts.set(backend, s);
  }
  return s;
}

/**
 * Learns the initiator's static public key and sender index from a handshake initiation using only our
 * static private key, without creating any state (snownet routes initiations to connections by key,
 * spec §3.4). MAC1 is checked first, so junk costs no Diffie-Hellman.
 *
 * @returns the initiator's key and index, or a {@link DropReason}
 */
export function parseHandshakeAnon(
  backend: CryptoBackend,
  identity: StaticIdentity,
  buf: Uint8Array,
  off: number,
  len: number,
): AnonymousInitiation | DropReason {
  if (wgMessageType(buf, off, len) !== WG_TYPE_HANDSHAKE_INIT) {
    return len >= 4 && buf[off] === WG_TYPE_HANDSHAKE_INIT ? DropReason.Truncated : DropReason.UnknownType;
  }
  if (!verifyMac1(backend, identity.mac1Key, buf, off, WG_INIT_MAC1_OFF)) return DropReason.BadMac1;
  const r = consumeInitStatic(backend, identity, buf, off);
  if (typeof r === "number") return r;
  return { senderIndex: readU32Le(buf, off + WG_INIT_SENDER_OFF), peerStaticPublic: r.peerStatic };
}

interface InitStaticState {
  chainingKey: Uint8Array;
  hash: Uint8Array;
  peerEphemeral: Uint8Array;
  peerStatic: Uint8Array;
}

/** Responder steps up to and including the decryption of msg.static. */
function consumeInitStatic(
  backend: CryptoBackend,
  identity: StaticIdentity,
  buf: Uint8Array,
  off: number,
): InitStaticState | DropReason {
  const start = noiseStart(backend);
  // initiator.hash = HASH(HASH(initiator.chaining_key || IDENTIFIER) || responder.static_public)
  let hash = backend.blake2s256(start.hash, identity.publicKey);
  const peerEphemeral = buf.slice(off + WG_INIT_EPHEMERAL_OFF, off + WG_INIT_EPHEMERAL_OFF + KEY_LEN);
  // initiator.chaining_key = KDF1(initiator.chaining_key, msg.unencrypted_ephemeral)
  let chainingKey = kdf1(backend, start.chainingKey, peerEphemeral);
  // initiator.hash = HASH(initiator.hash || msg.unencrypted_ephemeral)
  hash = backend.blake2s256(hash, peerEphemeral);
  // (initiator.chaining_key, key) = KDF2(initiator.chaining_key, DH(responder.static_private, E_i))
  const es = backend.x25519(identity.privateKey, peerEphemeral);
  if (es === null) return DropReason.InvalidPublicKey;
  let key: Uint8Array;
  [chainingKey, key] = kdf2(backend, chainingKey, es);
  // initiator.static_public = AEAD-open(key, 0, msg.encrypted_static, initiator.hash)
  const peerStatic = aeadOpen(backend, key, hash, buf, off + WG_INIT_STATIC_OFF, WG_INIT_STATIC_LEN);
  if (peerStatic === null) return DropReason.DecryptFailed;
  return { chainingKey, hash, peerEphemeral, peerStatic };
}

interface InitSentState {
  localIndex: number;
  chainingKey: Uint8Array;
  hash: Uint8Array;
  ephemeralPrivate: Uint8Array;
  sentAt: number;
}

/**
 * Per-tunnel handshake state: our outstanding initiations (the current and the previous one, so a late
 * response to a retransmitted initiation still completes), the replay-protecting timestamp of the
 * peer's last initiation, and the cookie jar for MAC2.
 */
export class Handshake {
  readonly #backend: CryptoBackend;
  readonly #identity: StaticIdentity;
  readonly #peerStatic: Uint8Array;
  readonly #psk: Uint8Array;
  /** DH(our static private, peer static public), fixed for the tunnel's life. */
  readonly #staticShared: Uint8Array;
  readonly #index: SessionIndex;
  readonly #rng: Rng;
  readonly #wallClock: WallClock;
  readonly #cookies: CookieJar;
  #state: InitSentState | null = null;
  #previous: InitSentState | null = null;
  #expired = false;
  #lastPeerTimestamp: Uint8Array | null = null;
  #lastStampMs = -1;
  #lastStampNanos = 0;
  #lastRttMs = -1;

  /**
   * @throws TypeError when a key has the wrong length or the peer key is a low-order point
   */
  constructor(
    backend: CryptoBackend,
    identity: StaticIdentity,
    peerStatic: Uint8Array,
    presharedKey: Uint8Array | null,
    index: SessionIndex,
    rng: Rng,
    wallClock: WallClock,
  ) {
    if (!(peerStatic instanceof Uint8Array) || peerStatic.length !== KEY_LEN) {
      throw new TypeError(`A WireGuard public key is ${KEY_LEN} bytes, got length ${peerStatic?.length}`);
    }
    if (presharedKey !== null && presharedKey.length !== KEY_LEN) {
      throw new TypeError(`A WireGuard preshared key is ${KEY_LEN} bytes, got length ${presharedKey.length}`);
    }
    const shared = backend.x25519(identity.privateKey, peerStatic);
    if (shared === null) throw new TypeError("Invalid WireGuard peer public key: it is a low-order point");
    this.#backend = backend;
    this.#identity = identity;
    this.#peerStatic = peerStatic.slice();
    this.#psk = presharedKey === null ? ZERO_KEY : presharedKey.slice();
    this.#staticShared = shared;
    this.#index = index;
    this.#rng = rng;
    this.#wallClock = wallClock;
    this.#cookies = new CookieJar(
      backend,
      mac1KeyFor(backend, this.#peerStatic),
      cookieKeyFor(backend, this.#peerStatic),
    );
  }

  /** The peer's static public key. */
  get peerStaticPublic(): Uint8Array {
    return this.#peerStatic;
  }

  /** True when a preshared key is configured. */
  get hasPresharedKey(): boolean {
    return this.#psk !== ZERO_KEY;
  }

  /** True when `psk` (null = none) equals the configured preshared key (constant time). */
  presharedKeyEquals(psk: Uint8Array | null): boolean {
    const other = psk ?? ZERO_KEY;
    if (other.length !== KEY_LEN) return false;
    let diff = 0;
    for (let i = 0; i < KEY_LEN; i++) diff |= other[i]! ^ this.#psk[i]!;
    return diff === 0;
  }

  /** True while one of our initiations awaits its response. */
  get inProgress(): boolean {
    return this.#state !== null;
  }

  /** When our current initiation was (re)sent; Infinity when none is outstanding. */
  get initSentAt(): number {
    return this.#state === null ? Infinity : this.#state.sentAt;
  }

  /** The local index of our outstanding initiation, -1 when none. */
  get initLocalIndex(): number {
    return this.#state === null ? -1 : this.#state.localIndex;
  }

  /** True after {@link setExpired} until a new handshake starts or completes. */
  get isExpired(): boolean {
    return this.#expired;
  }

  /** Round-trip time of the last completed initiation, -1 when unknown. */
  get lastRttMs(): number {
    return this.#lastRttMs;
  }

  /** The cookie jar (MAC2 state). */
  get cookies(): CookieJar {
    return this.#cookies;
  }

  /** Abandons outstanding initiations and marks the handshake expired. */
  setExpired(): void {
    this.#wipe(this.#state);
    this.#wipe(this.#previous);
    this.#state = null;
    this.#previous = null;
    this.#expired = true;
  }

  /**
   * Writes a handshake initiation (148 bytes) at `dst[dstOff]`. A previous outstanding initiation stays
   * acceptable for one more round.
   * @returns our local index of the new handshake
   */
  createInitiation(dst: Uint8Array, dstOff: number, now: number): number {
    const b = this.#backend;
    const start = noiseStart(b);
    const localIndex = this.#index.next();
    // initiator.hash = HASH(HASH(initiator.chaining_key || IDENTIFIER) || responder.static_public)
    let hash = b.blake2s256(start.hash, this.#peerStatic);
    // initiator.ephemeral_private = DH_GENERATE()
    const ephemeralPrivate = randomBytes(this.#rng, KEY_LEN);
    const ephemeralPublic = b.x25519PublicKey(ephemeralPrivate);
    // msg.message_type = 1, msg.reserved_zero = { 0, 0, 0 }
    writeWgType(dst, dstOff, WG_TYPE_HANDSHAKE_INIT);
    // msg.sender_index = little_endian(initiator.sender_index)
    writeU32Le(dst, dstOff + WG_INIT_SENDER_OFF, localIndex);
    // msg.unencrypted_ephemeral = DH_PUBKEY(initiator.ephemeral_private)
    dst.set(ephemeralPublic, dstOff + WG_INIT_EPHEMERAL_OFF);
    // initiator.hash = HASH(initiator.hash || msg.unencrypted_ephemeral)
    hash = b.blake2s256(hash, ephemeralPublic);
    // initiator.chaining_key = KDF1(initiator.chaining_key, msg.unencrypted_ephemeral)
    let chainingKey = kdf1(b, start.chainingKey, ephemeralPublic);
    // (initiator.chaining_key, key) = KDF2(initiator.chaining_key, DH(initiator.ephemeral_private,
    //                                      responder.static_public))
    const es = b.x25519(ephemeralPrivate, this.#peerStatic);
    let key: Uint8Array;
    [chainingKey, key] = kdf2(b, chainingKey, es ?? ZERO_KEY);
    // msg.encrypted_static = AEAD(key, 0, initiator.static_public, initiator.hash)
    aeadSeal(b, key, hash, this.#identity.publicKey, dst, dstOff + WG_INIT_STATIC_OFF);
    // initiator.hash = HASH(initiator.hash || msg.encrypted_static)
    hash = b.blake2s256(hash, dst.subarray(dstOff + WG_INIT_STATIC_OFF, dstOff + WG_INIT_TIMESTAMP_OFF));
    // (initiator.chaining_key, key) = KDF2(initiator.chaining_key, DH(initiator.static_private,
    //                                      responder.static_public))
    [chainingKey, key] = kdf2(b, chainingKey, this.#staticShared);
    // msg.encrypted_timestamp = AEAD(key, 0, TAI64N(), initiator.hash)
    aeadSeal(b, key, hash, this.#timestamp(now), dst, dstOff + WG_INIT_TIMESTAMP_OFF);
    // initiator.hash = HASH(initiator.hash || msg.encrypted_timestamp)
    hash = b.blake2s256(
      hash,
      dst.subarray(dstOff + WG_INIT_TIMESTAMP_OFF, dstOff + WG_INIT_TIMESTAMP_OFF + WG_INIT_TIMESTAMP_LEN),
    );
    // msg.mac1 / msg.mac2
    this.#cookies.stamp(dst, dstOff, WG_INIT_MAC1_OFF, localIndex, now);

    this.#wipe(this.#previous);
    this.#previous = this.#state;
    this.#state = { localIndex, chainingKey, hash, ephemeralPrivate, sentAt: now };
    this.#expired = false;
    return localIndex;
  }

  /**
   * Responder: processes a handshake initiation (type, length and MAC1 already checked) and writes
   * the handshake response (92 bytes) at `dst[dstOff]`.
   * @returns the new session's keys, or a {@link DropReason}
   */
  respond(
    buf: Uint8Array,
    off: number,
    dst: Uint8Array,
    dstOff: number,
    now: number,
  ): SessionKeys | DropReason {
    const b = this.#backend;
    if (dst.length - dstOff < WG_HANDSHAKE_RESPONSE_LEN) return DropReason.BufferTooSmall;
    const s = consumeInitStatic(b, this.#identity, buf, off);
    if (typeof s === "number") return s;
    if (!bytesEqual(s.peerStatic, this.#peerStatic)) return DropReason.WrongKey;
    let hash = s.hash;
    let chainingKey = s.chainingKey;
    // initiator.hash = HASH(initiator.hash || msg.encrypted_static)
    hash = b.blake2s256(hash, buf.subarray(off + WG_INIT_STATIC_OFF, off + WG_INIT_TIMESTAMP_OFF));
    // (initiator.chaining_key, key) = KDF2(initiator.chaining_key, DH(responder.static_private,
    //                                      initiator.static_public))
    let key: Uint8Array;
    [chainingKey, key] = kdf2(b, chainingKey, this.#staticShared);
    // timestamp = AEAD-open(key, 0, msg.encrypted_timestamp, initiator.hash)
    const timestamp = aeadOpen(b, key, hash, buf, off + WG_INIT_TIMESTAMP_OFF, WG_INIT_TIMESTAMP_LEN);
    if (timestamp === null || timestamp.length !== TAI64N_LEN) return DropReason.DecryptFailed;
    // Replay protection: the timestamp must be strictly newer than the last accepted one.
    if (!isTai64nNewer(timestamp, this.#lastPeerTimestamp)) return DropReason.StaleTimestamp;
    this.#lastPeerTimestamp = timestamp;
    // initiator.hash = HASH(initiator.hash || msg.encrypted_timestamp)
    hash = b.blake2s256(
      hash,
      buf.subarray(off + WG_INIT_TIMESTAMP_OFF, off + WG_INIT_TIMESTAMP_OFF + WG_INIT_TIMESTAMP_LEN),
    );
    const peerIndex = readU32Le(buf, off + WG_INIT_SENDER_OFF);

    // --- Response ---
    const localIndex = this.#index.next();
    // responder.ephemeral_private = DH_GENERATE()
    const ephemeralPrivate = randomBytes(this.#rng, KEY_LEN);
    const ephemeralPublic = b.x25519PublicKey(ephemeralPrivate);
    // msg.message_type = 2, msg.reserved_zero = { 0, 0, 0 }
    writeWgType(dst, dstOff, WG_TYPE_HANDSHAKE_RESPONSE);
    // msg.sender_index = little_endian(responder.sender_index)
    writeU32Le(dst, dstOff + WG_RESP_SENDER_OFF, localIndex);
    // msg.receiver_index = little_endian(initiator.sender_index)
    writeU32Le(dst, dstOff + WG_RESP_RECEIVER_OFF, peerIndex);
    // msg.unencrypted_ephemeral = DH_PUBKEY(responder.ephemeral_private)
    dst.set(ephemeralPublic, dstOff + WG_RESP_EPHEMERAL_OFF);
    // responder.hash = HASH(responder.hash || msg.unencrypted_ephemeral)
    hash = b.blake2s256(hash, ephemeralPublic);
    // responder.chaining_key = KDF1(responder.chaining_key, msg.unencrypted_ephemeral)
    chainingKey = kdf1(b, chainingKey, ephemeralPublic);
    // responder.chaining_key = KDF1(responder.chaining_key, DH(responder.ephemeral_private,
    //                                                        initiator.ephemeral_public))
    const ee = b.x25519(ephemeralPrivate, s.peerEphemeral);
    if (ee === null) return DropReason.InvalidPublicKey;
    chainingKey = kdf1(b, chainingKey, ee);
    // responder.chaining_key = KDF1(responder.chaining_key, DH(responder.ephemeral_private,
    //                                                        initiator.static_public))
    const se = b.x25519(ephemeralPrivate, this.#peerStatic);
    if (se === null) return DropReason.InvalidPublicKey;
    chainingKey = kdf1(b, chainingKey, se);
    // (responder.chaining_key, temp, key) = KDF3(responder.chaining_key, preshared_key)
    let temp: Uint8Array;
    [chainingKey, temp, key] = kdf3(b, chainingKey, this.#psk);
    // responder.hash = HASH(responder.hash || temp)
    hash = b.blake2s256(hash, temp);
    // msg.encrypted_nothing = AEAD(key, 0, [empty], responder.hash)
    aeadSeal(b, key, hash, EMPTY, dst, dstOff + WG_RESP_EMPTY_OFF);
    // responder.hash = HASH(responder.hash || msg.encrypted_nothing) -- not needed afterwards
    // msg.mac1 / msg.mac2
    this.#cookies.stamp(dst, dstOff, WG_RESP_MAC1_OFF, localIndex, now);

    // (responder.receiving_key, responder.sending_key) = KDF2(responder.chaining_key, ε)
    const [recvKey, sendKey] = kdf2(b, chainingKey, EMPTY);
    ephemeralPrivate.fill(0);
    // Our own outstanding initiation (if any) stays acceptable as "previous" (boringtun behaviour).
    if (this.#state !== null) {
      this.#wipe(this.#previous);
      this.#previous = this.#state;
      this.#state = null;
    }
    this.#expired = false;
    return { localIndex, peerIndex, sendKey, recvKey, isInitiator: false };
  }

  /**
   * Initiator: processes a handshake response (type, length and MAC1 already checked).
   * @returns the new session's keys, or a {@link DropReason}
   */
  consumeResponse(buf: Uint8Array, off: number, now: number): SessionKeys | DropReason {
    const b = this.#backend;
    const receiver = readU32Le(buf, off + WG_RESP_RECEIVER_OFF);
    let isPrevious = false;
    let st = this.#state;
    if (st === null || st.localIndex !== receiver) {
      st = this.#previous;
      isPrevious = true;
      if (st === null || st.localIndex !== receiver) return DropReason.UnexpectedPacket;
    }
    const peerIndex = readU32Le(buf, off + WG_RESP_SENDER_OFF);
    const peerEphemeral = buf.slice(off + WG_RESP_EPHEMERAL_OFF, off + WG_RESP_EPHEMERAL_OFF + KEY_LEN);
    // responder.hash = HASH(responder.hash || msg.unencrypted_ephemeral)
    let hash = b.blake2s256(st.hash, peerEphemeral);
    // responder.chaining_key = KDF1(responder.chaining_key, msg.unencrypted_ephemeral)
    let chainingKey = kdf1(b, st.chainingKey, peerEphemeral);
    // responder.chaining_key = KDF1(responder.chaining_key, DH(initiator.ephemeral_private, E_r))
    const ee = b.x25519(st.ephemeralPrivate, peerEphemeral);
    if (ee === null) return DropReason.InvalidPublicKey;
    chainingKey = kdf1(b, chainingKey, ee);
    // responder.chaining_key = KDF1(responder.chaining_key, DH(initiator.static_private, E_r))
    const se = b.x25519(this.#identity.privateKey, peerEphemeral);
    if (se === null) return DropReason.InvalidPublicKey;
    chainingKey = kdf1(b, chainingKey, se);
    // (responder.chaining_key, temp, key) = KDF3(responder.chaining_key, preshared_key)
    let temp: Uint8Array;
    let key: Uint8Array;
    [chainingKey, temp, key] = kdf3(b, chainingKey, this.#psk);
    // responder.hash = HASH(responder.hash || temp)
    hash = b.blake2s256(hash, temp);
    // [empty] = AEAD-open(key, 0, msg.encrypted_nothing, responder.hash)
    if (aeadOpen(b, key, hash, buf, off + WG_RESP_EMPTY_OFF, WG_RESP_EMPTY_LEN) === null) {
      return DropReason.DecryptFailed;
    }
    // (initiator.sending_key, initiator.receiving_key) = KDF2(initiator.chaining_key, ε)
    const [sendKey, recvKey] = kdf2(b, chainingKey, EMPTY);
    this.#lastRttMs = now - st.sentAt;
    this.#wipe(st);
    if (isPrevious) this.#previous = null;
    else this.#state = null;
    this.#expired = false;
    return { localIndex: st.localIndex, peerIndex, sendKey, recvKey, isInitiator: true };
  }

  /** Processes a cookie reply (type and length already checked). */
  consumeCookieReply(buf: Uint8Array, off: number, now: number): DropReason {
    return this.#cookies.consumeReply(buf, off, now);
  }

  /** The TAI64N of `now`, strictly increasing across calls. */
  #timestamp(now: number): Uint8Array {
    let ms = Math.floor(this.#wallClock(now));
    let nanos = 0;
    if (ms <= this.#lastStampMs) {
      ms = this.#lastStampMs;
      nanos = this.#lastStampNanos + 1;
    }
    this.#lastStampMs = ms;
    this.#lastStampNanos = nanos;
    return encodeTai64n(ms, nanos);
  }

  #wipe(s: InitSentState | null): void {
    if (s !== null) s.ephemeralPrivate.fill(0);
  }
}

/** AEAD(key, 0, plaintext, aad) written at dst[dstOff] (ciphertext || tag). */
function aeadSeal(
  backend: CryptoBackend,
  key: Uint8Array,
  aad: Uint8Array,
  plaintext: Uint8Array,
  dst: Uint8Array,
  dstOff: number,
): void {
  dst.set(plaintext, dstOff);
  const k = backend.aeadKey(key);
  k.seal(0, aad, dst, dstOff, plaintext.length);
  k.dispose();
}

/** AEAD-open(key, 0, src[srcOff, srcOff + sealedLen), aad) into a fresh array; null on a bad tag. */
function aeadOpen(
  backend: CryptoBackend,
  key: Uint8Array,
  aad: Uint8Array,
  src: Uint8Array,
  srcOff: number,
  sealedLen: number,
): Uint8Array | null {
  const tmp = src.slice(srcOff, srcOff + sealedLen);
  const k = backend.aeadKey(key);
  const n = k.open(0, aad, tmp, 0, sealedLen);
  k.dispose();
  return n < 0 ? null : tmp.subarray(0, n);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
