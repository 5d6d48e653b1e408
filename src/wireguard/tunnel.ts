/**
 * A sans-IO WireGuard tunnel to one peer (boringtun's `Tunn`, Firezone fork semantics): handshakes as
 * initiator and responder, up to 8 concurrent sessions, transport data in place, the timer rules of
 * spec §3.6 and the node-wide handshake rate limiter.
 *
 * Time (`now`, monotonic ms), randomness (an {@link Rng}) and the wall clock for TAI64N (a
 * {@link WallClock}) are inputs. Nothing here touches the OS.
 *
 * @module
 */

import type { CryptoBackend } from "../crypto/backend.ts";
import { logger } from "../log.ts";
import { randomBelow, type Rng } from "../rng.ts";
import { RingQueue } from "../util/ring_queue.ts";
import type { SocketAddr } from "../wire/ip_addr.ts";
import {
  readU32Le,
  WG_DATA_HEADER_LEN,
  WG_DATA_RECEIVER_OFF,
  WG_DATA_TAILROOM_LEN,
  WG_HANDSHAKE_INIT_LEN,
  WG_HANDSHAKE_RESPONSE_LEN,
  WG_TAG_LEN,
  WG_TYPE_COOKIE_REPLY,
  WG_TYPE_DATA,
  WG_TYPE_HANDSHAKE_INIT,
  WG_TYPE_HANDSHAKE_RESPONSE,
  WG_TYPE_NONE,
  wgMessageType,
} from "../wire/wireguard.ts";
import {
  MAX_JITTER_MS,
  MAX_QUEUE_DEPTH,
  N_SESSIONS,
  REJECT_AFTER_MESSAGES,
  REJECT_AFTER_TIME_MS,
  REKEY_AFTER_MESSAGES,
  REKEY_ATTEMPT_TIME_MS,
  REKEY_TIMEOUT_MS,
} from "./constants.ts";
import { Handshake, type SessionKeys, type WallClock } from "./handshake.ts";
import type { StaticIdentity } from "./identity.ts";
import { SessionIndex } from "./index_allocator.ts";
import { type HandshakeRateLimiter, RateVerdict } from "./rate_limiter.ts";
import { DropReason, type WgOut, WgResult } from "./result.ts";
import { Session } from "./session.ts";
import { WgTimers } from "./timers.ts";

const log = logger("fz_gateway::wireguard");

/**
 * Bytes kept free in front of the handshake messages and keepalives a tunnel writes into its own
 * buffers, so a caller can prepend a header (e.g. 4-byte TURN ChannelData) without copying.
 */
export const TUNNEL_SCRATCH_HEADROOM = 32;

/** Construction options of a {@link Tunnel}. */
export interface TunnelOptions {
  backend: CryptoBackend;
  /** Our static key (shared by all tunnels of the node). */
  identity: StaticIdentity;
  /** The peer's static X25519 public key (32 bytes). */
  peerStaticPublic: Uint8Array;
  /** The 32-byte preshared key, or null for none (all zero). */
  presharedKey: Uint8Array | null;
  /** This tunnel's 24-bit connection index (from `IndexAllocator.next()`). */
  index: number;
  /** The node's shared rate limiter (must use the same identity). */
  rateLimiter: HandshakeRateLimiter;
  /** Randomness: ephemeral keys, jitter. */
  rng: Rng;
  /** Wall clock for the TAI64N timestamp of our initiations. */
  wallClock: WallClock;
  /** Persistent keepalive interval in ms (standalone `PersistentKeepalive`); 0 or absent = off. */
  persistentKeepaliveMs?: number;
  /** Give up a handshake attempt after this long (default 15 s, the fork's value). */
  rekeyAttemptTimeMs?: number;
  /** Tests: messages after which the initiator rekeys (default 2^60). */
  rekeyAfterMessages?: number;
  /** Tests: counter at which a session stops sending/accepting (default 2^53 − 1). */
  rejectAfterMessages?: number;
}

interface QueuedPacket {
  buf: Uint8Array;
  len: number;
}

/**
 * A WireGuard tunnel to one peer.
 *
 * Data path (no allocation): {@link encapsulate} encrypts an IP packet in place (16 bytes headroom,
 * 31 bytes tailroom), {@link decapsulate} decrypts in place. Handshake messages are written to the
 * caller's `dst` (responses, cookie replies, the keepalive confirming a session) or to a tunnel-owned
 * buffer (initiations, timer keepalives); `out.buf` says which. Send an output before the next call.
 *
 * @example
 * ```ts
 * const out = new WgOut();
 * // IP packet at buf[20, 20 + n): encrypt in place
 * if (tunnel.encapsulate(buf, 20, n, out, now) === WgResult.WriteToNetwork) {
 *   udp.send(out.buf.subarray(out.off, out.off + out.len));
 * }
 * // datagram from the peer
 * const r = tunnel.decapsulate(rx, 0, rxLen, from, scratch, 0, out, now);
 * if (r === WgResult.WriteToTunnel) tun.write(out.buf, out.off, out.len);
 * else if (r === WgResult.WriteToNetwork) udp.send(out.buf.subarray(out.off, out.off + out.len));
 * while (tunnel.pollQueued(out, now) === WgResult.WriteToNetwork) udp.send(...);
 * // timers
 * if (now >= tunnel.pollTimeout()) tunnel.handleTimeout(out, now);
 * ```
 */
export class Tunnel {
  readonly #backend: CryptoBackend;
  readonly #rateLimiter: HandshakeRateLimiter;
  readonly #rng: Rng;
  readonly #handshake: Handshake;
  readonly #timers: WgTimers;
  readonly #indexValue: number;
  readonly #rekeyAttemptTimeMs: number;
  readonly #rekeyAfterMessages: number;
  readonly #rejectAfterMessages: number;
  readonly #sessions: (Session | null)[] = new Array<Session | null>(N_SESSIONS).fill(null);
  /** Insertion order of each slot's session: the newest established session wins `current`. */
  readonly #sessionSeq = new Float64Array(N_SESSIONS);
  #nextSeq = 1;
  /** Slot of the session used for sending, -1 when none. */
  #current = -1;
  readonly #queue = new RingQueue<QueuedPacket>(16);
  /** Initiations produced by encapsulate/handleTimeout, at TUNNEL_SCRATCH_HEADROOM. */
  readonly #initBuf = new Uint8Array(TUNNEL_SCRATCH_HEADROOM + WG_HANDSHAKE_INIT_LEN);
  /** Keepalives produced by handleTimeout: header at TUNNEL_SCRATCH_HEADROOM, then the tag. */
  readonly #keepaliveBuf = new Uint8Array(
    TUNNEL_SCRATCH_HEADROOM + WG_DATA_HEADER_LEN + WG_DATA_TAILROOM_LEN,
  );
  /** When we last sent an initiation or a response (throttles data-triggered initiations). */
  #lastHandshakeSentAt = -Infinity;
  #txBytes = 0;
  #rxBytes = 0;

  /**
   * @throws TypeError for malformed keys, RangeError for a bad index or interval
   */
  constructor(options: TunnelOptions, now: number) {
    if (!sameBytes(options.rateLimiter.identity.publicKey, options.identity.publicKey)) {
      throw new TypeError("The rate limiter must be built with the same static key as the tunnel");
    }
    this.#backend = options.backend;
    this.#rateLimiter = options.rateLimiter;
    this.#rng = options.rng;
    const index = new SessionIndex(options.index);
    this.#indexValue = index.value;
    this.#handshake = new Handshake(
      options.backend,
      options.identity,
      options.peerStaticPublic,
      options.presharedKey,
      index,
      options.rng,
      options.wallClock,
    );
    this.#timers = new WgTimers(options.persistentKeepaliveMs ?? 0, now);
    this.#rekeyAttemptTimeMs = options.rekeyAttemptTimeMs ?? REKEY_ATTEMPT_TIME_MS;
    this.#rekeyAfterMessages = options.rekeyAfterMessages ?? REKEY_AFTER_MESSAGES;
    this.#rejectAfterMessages = options.rejectAfterMessages ?? REJECT_AFTER_MESSAGES;
  }

  /** The 24-bit connection index (incoming responses/data carry it in `receiverIndex >>> 8`). */
  get index(): number {
    return this.#indexValue;
  }

  /** The peer's static public key. */
  get remoteStaticPublic(): Uint8Array {
    return this.#handshake.peerStaticPublic;
  }

  /** True when `psk` (null = none) is this tunnel's preshared key. */
  presharedKeyEquals(psk: Uint8Array | null): boolean {
    return this.#handshake.presharedKeyEquals(psk);
  }

  /** True once the connection expired (until a new handshake starts). */
  get isExpired(): boolean {
    return this.#handshake.isExpired;
  }

  /** True while one of our initiations awaits a response. */
  get isHandshakeInProgress(): boolean {
    return this.#handshake.inProgress;
  }

  /** True when we initiated the current session. */
  get isInitiator(): boolean {
    return this.#timers.isInitiator;
  }

  /** True when a session is usable for sending at `now`. */
  hasSession(now: number): boolean {
    return this.#sendSession(now) !== null;
  }

  /** When the last session was established; -1 when there is no current session. */
  get lastHandshakeAt(): number {
    return this.#current < 0 ? -1 : this.#timers.sessionEstablishedAt;
  }

  /** Round-trip time of our last completed initiation, -1 when unknown. */
  get lastRttMs(): number {
    return this.#handshake.lastRttMs;
  }

  /** Plaintext bytes sent / received (statistics). */
  get txBytes(): number {
    return this.#txBytes;
  }

  get rxBytes(): number {
    return this.#rxBytes;
  }

  /** Packets waiting for a session. */
  get queuedCount(): number {
    return this.#queue.length;
  }

  /** The session occupying `slot` (0..7), for diagnostics and tests. */
  sessionAt(slot: number): Session | null {
    return this.#sessions[slot & (N_SESSIONS - 1)] ?? null;
  }

  /**
   * Hot path: encrypts the IP packet `buf[off, off + len)` in place. On `WriteToNetwork` the data message
   * is `buf[off - 16, off - 16 + out.len)`. Without a usable session the packet is copied into a queue
   * (depth 256) and an initiation is produced (`out.buf` is then the tunnel's own buffer) unless one is
   * in flight; `Done` means queued.
   *
   * @param off needs >= 16 bytes of headroom; `off + len + 31 <= buf.length`
   */
  encapsulate(buf: Uint8Array, off: number, len: number, out: WgOut, now: number): WgResult {
    out.clear();
    if (off < WG_DATA_HEADER_LEN || off + len + WG_DATA_TAILROOM_LEN > buf.length) {
      out.dropReason = DropReason.BufferTooSmall;
      return WgResult.Drop;
    }
    const s = this.#sendSession(now);
    if (s !== null) return this.#sealWith(s, buf, off, len, out, now);

    // No usable session: keep the packet for later and get a handshake going.
    if (len > 0) {
      if (this.#queue.length >= MAX_QUEUE_DEPTH) {
        out.dropReason = DropReason.QueueFull;
        return WgResult.Drop;
      }
      const copy = new Uint8Array(WG_DATA_HEADER_LEN + len + WG_DATA_TAILROOM_LEN);
      copy.set(buf.subarray(off, off + len), WG_DATA_HEADER_LEN);
      this.#queue.push({ buf: copy, len });
    }
    return this.#maybeInitiate(out, now);
  }

  /**
   * Sends the oldest queued packet once a session exists (call after every `decapsulate` and
   * `handleTimeout` that did not drop, until it returns `Done`). The message is in a tunnel-owned
   * buffer at `out.off`.
   */
  pollQueued(out: WgOut, now: number): WgResult {
    out.clear();
    if (this.#queue.length === 0) return WgResult.Done;
    const s = this.#sendSession(now);
    if (s === null) return WgResult.Done;
    const q = this.#queue.shift()!;
    return this.#sealWith(s, q.buf, WG_DATA_HEADER_LEN, q.len, out, now);
  }

  /**
   * Processes a datagram from the peer, `buf[off, off + len)`, already routed to this tunnel (by static
   * key for initiations, by `receiverIndex >>> 8` otherwise).
   *
   * - data: decrypted in place; `WriteToTunnel` with the IP packet at `out.off` (= `off + 16`), or
   *   `Done` for a keepalive;
   * - initiation: `WriteToNetwork` with the response in `dst[dstOff, dstOff + 92)`;
   * - response: `WriteToNetwork` with a keepalive (32 bytes) in `dst` confirming the new session;
   * - cookie reply: `Done` (the cookie is used for MAC2 from the next initiation on);
   * - under load, a handshake message without a valid MAC2: `WriteToNetwork` with a cookie reply in `dst`.
   *
   * Hot path for data (no allocation).
   *
   * @param from the datagram's source, used for cookies under load (null: unknown)
   * @param dst buffer for handshake replies (>= 92 bytes from `dstOff`)
   */
  decapsulate(
    buf: Uint8Array,
    off: number,
    len: number,
    from: SocketAddr | null,
    dst: Uint8Array,
    dstOff: number,
    out: WgOut,
    now: number,
  ): WgResult {
    out.clear();
    const type = wgMessageType(buf, off, len);
    if (type === WG_TYPE_DATA) return this.#handleData(buf, off, len, out, now);
    if (type === WG_TYPE_NONE) {
      out.dropReason = classifyMalformed(buf, off, len);
      return WgResult.Drop;
    }
    if (type === WG_TYPE_COOKIE_REPLY) {
      const reason = this.#handshake.consumeCookieReply(buf, off, now);
      if (reason !== DropReason.None) {
        out.dropReason = reason;
        return WgResult.Drop;
      }
      if (log.debugEnabled) log.debug("Received cookie reply", { index: this.#indexValue });
      return WgResult.Done;
    }
    if (dst.length - dstOff < WG_HANDSHAKE_RESPONSE_LEN) {
      out.dropReason = DropReason.BufferTooSmall;
      return WgResult.Drop;
    }
    const verdict = this.#rateLimiter.verify(buf, off, type, from, dst, dstOff, out, now);
    if (verdict === RateVerdict.CookieReply) return WgResult.WriteToNetwork;
    if (verdict === RateVerdict.Drop) return WgResult.Drop;
    return type === WG_TYPE_HANDSHAKE_INIT
      ? this.#handleInitiation(buf, off, dst, dstOff, out, now)
      : this.#handleResponse(buf, off, dst, dstOff, out, now);
  }

  /**
   * Evaluates every timer rule (spec §3.6). May produce one message (`WriteToNetwork`: an initiation or
   * a keepalive, in a tunnel-owned buffer), or `Expired` when the connection is dead (no session for
   * 540 s, or a handshake attempt ran past REKEY_ATTEMPT_TIME). Call it again after `WriteToNetwork`.
   */
  handleTimeout(out: WgOut, now: number): WgResult {
    out.clear();
    const t = this.#timers;
    const hs = this.#handshake;
    if (hs.isExpired) return WgResult.Expired;

    if (t.sendHandshakeAt !== Infinity) {
      if (now < t.sendHandshakeAt) return WgResult.Done;
      t.sendHandshakeAt = Infinity;
      return this.#initiate(out, now);
    }

    this.#rateLimiter.resetCountAt(now);
    this.#expireSessions(now);
    hs.cookies.expire(now);

    if (now >= t.connectionExpiresAt()) {
      if (log.debugEnabled) {
        log.debug("CONNECTION_EXPIRED(REJECT_AFTER_TIME * 3)", { index: this.#indexValue });
      }
      this.#expire(now);
      return WgResult.Expired;
    }

    let handshakeNeeded = false;
    let keepaliveNeeded = false;
    if (hs.inProgress) {
      if (now >= t.rekeyAttemptEndsAt(this.#rekeyAttemptTimeMs)) {
        if (log.debugEnabled) {
          log.debug("CONNECTION_EXPIRED(REKEY_ATTEMPT_TIME)", { index: this.#indexValue });
        }
        this.#expire(now);
        return WgResult.Expired;
      }
      // Retransmit the initiation after REKEY_TIMEOUT (+ jitter below).
      if (now >= hs.initSentAt + REKEY_TIMEOUT_MS) handshakeNeeded = true;
    } else {
      // Our session expired: renew it only if we initiated it (fork rule).
      if (this.#current < 0 && t.isInitiator) handshakeNeeded = true;
      if (now >= t.rekeyAfterTimeOnSendAt()) handshakeNeeded = true;
      if (now >= t.rejectAfterTimeOnReceiveAt()) handshakeNeeded = true;
      if (now >= t.noResponseHandshakeAt()) handshakeNeeded = true;
      if (!handshakeNeeded) {
        if (now >= t.passiveKeepaliveAt()) keepaliveNeeded = true;
        if (now >= t.persistentKeepaliveAt()) keepaliveNeeded = true;
      }
    }

    if (handshakeNeeded) {
      t.sendHandshakeAt = now + randomBelow(this.#rng, MAX_JITTER_MS + 1);
      return WgResult.Done;
    }
    if (keepaliveNeeded) return this.#sendKeepalive(out, now);
    return WgResult.Done;
  }

  /** The next instant {@link handleTimeout} has work to do; Infinity when none. */
  pollTimeout(): number {
    const t = this.#timers;
    const hs = this.#handshake;
    if (hs.isExpired) return Infinity;
    if (t.sendHandshakeAt !== Infinity) return t.sendHandshakeAt;
    let at = t.connectionExpiresAt();
    for (let i = 0; i < N_SESSIONS; i++) {
      const s = this.#sessions[i];
      if (s != null) at = min(at, s.establishedAt + REJECT_AFTER_TIME_MS);
    }
    at = min(at, hs.cookies.cookieExpiresAt);
    if (hs.inProgress) {
      at = min(at, t.rekeyAttemptEndsAt(this.#rekeyAttemptTimeMs));
      at = min(at, hs.initSentAt + REKEY_TIMEOUT_MS);
    } else {
      at = min(at, t.rekeyAfterTimeOnSendAt());
      at = min(at, t.rejectAfterTimeOnReceiveAt());
      at = min(at, t.noResponseHandshakeAt());
      at = min(at, t.passiveKeepaliveAt());
      at = min(at, t.persistentKeepaliveAt());
      // A session we initiated is gone: handleTimeout renews it at once.
      if (this.#current < 0 && t.isInitiator) at = min(at, t.sessionEstablishedAt);
    }
    return at;
  }

  /**
   * Starts a handshake now (e.g. a standalone client's first contact). `Done` when one is already in
   * flight; otherwise `WriteToNetwork` with the initiation in a tunnel-owned buffer.
   */
  initiateHandshake(out: WgOut, now: number): WgResult {
    out.clear();
    if (this.#handshake.inProgress) return WgResult.Done;
    return this.#initiate(out, now);
  }

  /** Wipes every session key and drops queued packets. The tunnel must not be used afterwards. */
  dispose(): void {
    for (let i = 0; i < N_SESSIONS; i++) this.#dropSlot(i);
    this.#queue.clear();
    this.#handshake.setExpired();
  }

  // ---- internals ----

  /** The current session if it may carry new packets at `now`, else null. */
  #sendSession(now: number): Session | null {
    if (this.#current < 0) return null;
    const s = this.#sessions[this.#current]!;
    if (s.isExpired(now) || s.sendCounter >= this.#rejectAfterMessages) return null;
    // Fork: after 170 s only the responder keeps sending on the old session (it cannot rekey by time).
    if (!s.shouldUse(now) && s.isInitiator) return null;
    return s;
  }

  /** Hot path: seals `buf[off, off + len)` with `s` and fills `out`. */
  #sealWith(s: Session, buf: Uint8Array, off: number, len: number, out: WgOut, now: number): WgResult {
    const n = s.seal(buf, off, len);
    out.buf = buf;
    out.off = off - WG_DATA_HEADER_LEN;
    out.len = n;
    out.messageType = WG_TYPE_DATA;
    this.#timers.onPacketSent(now);
    if (len > 0) {
      this.#timers.onDataSent(now);
      this.#txBytes += len;
    }
    if (
      s.sendCounter >= this.#rekeyAfterMessages && s.isInitiator && !this.#handshake.inProgress &&
      this.#timers.sendHandshakeAt === Infinity
    ) {
      this.#timers.sendHandshakeAt = now; // REKEY_AFTER_MESSAGES: the next handleTimeout initiates
    }
    return WgResult.WriteToNetwork;
  }

  /** Data has to go out but there is no session: initiate unless a handshake is already under way. */
  #maybeInitiate(out: WgOut, now: number): WgResult {
    if (this.#handshake.inProgress) return WgResult.Done;
    const t = this.#timers;
    // At most one handshake message per REKEY_TIMEOUT (wireguard-go): after answering an initiation we
    // wait for the peer to confirm the new session; the handshake goes out later if it does not.
    const earliest = this.#lastHandshakeSentAt + REKEY_TIMEOUT_MS;
    if (!this.#handshake.isExpired && now < earliest) {
      if (t.sendHandshakeAt > earliest) t.sendHandshakeAt = earliest;
      return WgResult.Done;
    }
    t.sendHandshakeAt = Infinity;
    return this.#initiate(out, now);
  }

  /** Writes an initiation into the tunnel's buffer. */
  #initiate(out: WgOut, now: number): WgResult {
    const hs = this.#handshake;
    if (hs.isExpired) this.#timers.clear(now); // a queued packet revives an expired connection
    const starting = !hs.inProgress;
    const localIndex = hs.createInitiation(this.#initBuf, TUNNEL_SCRATCH_HEADROOM, now);
    if (starting) this.#timers.onHandshakeStarted(now);
    this.#timers.onPacketSent(now);
    this.#lastHandshakeSentAt = now;
    if (log.debugEnabled) log.debug("Sending handshake initiation", { localIndex, retry: !starting });
    out.buf = this.#initBuf;
    out.off = TUNNEL_SCRATCH_HEADROOM;
    out.len = WG_HANDSHAKE_INIT_LEN;
    out.messageType = WG_TYPE_HANDSHAKE_INIT;
    return WgResult.WriteToNetwork;
  }

  #sendKeepalive(out: WgOut, now: number): WgResult {
    this.#timers.onKeepaliveAttempt(now);
    const s = this.#sendSession(now);
    if (s === null) return this.#maybeInitiate(out, now);
    if (log.debugEnabled) log.debug("Sending keepalive", { index: this.#indexValue });
    return this.#sealWith(s, this.#keepaliveBuf, TUNNEL_SCRATCH_HEADROOM + WG_DATA_HEADER_LEN, 0, out, now);
  }

  #handleInitiation(
    buf: Uint8Array,
    off: number,
    dst: Uint8Array,
    dstOff: number,
    out: WgOut,
    now: number,
  ): WgResult {
    const r = this.#handshake.respond(buf, off, dst, dstOff, now);
    if (typeof r === "number") {
      out.dropReason = r;
      return WgResult.Drop;
    }
    this.#storeSession(r, now);
    const t = this.#timers;
    t.onPacketReceived(now);
    t.onPacketSent(now);
    t.onSessionEstablished(false, now);
    t.sendHandshakeAt = Infinity;
    this.#lastHandshakeSentAt = now;
    if (log.debugEnabled) {
      log.debug("Received handshake initiation, sending response", {
        localIndex: r.localIndex,
        peerIndex: r.peerIndex,
      });
    }
    out.buf = dst;
    out.off = dstOff;
    out.len = WG_HANDSHAKE_RESPONSE_LEN;
    out.messageType = WG_TYPE_HANDSHAKE_RESPONSE;
    return WgResult.WriteToNetwork;
  }

  #handleResponse(
    buf: Uint8Array,
    off: number,
    dst: Uint8Array,
    dstOff: number,
    out: WgOut,
    now: number,
  ): WgResult {
    const r = this.#handshake.consumeResponse(buf, off, now);
    if (typeof r === "number") {
      out.dropReason = r;
      return WgResult.Drop;
    }
    const slot = this.#storeSession(r, now);
    const t = this.#timers;
    t.onPacketReceived(now);
    t.onSessionEstablished(true, now);
    t.sendHandshakeAt = Infinity;
    this.#makeCurrent(slot);
    if (log.debugEnabled) {
      log.debug("Received handshake response, session established", {
        localIndex: r.localIndex,
        peerIndex: r.peerIndex,
        rttMs: this.#handshake.lastRttMs,
      });
    }
    // Confirm the session to the responder right away (it may not send until it hears from us).
    const s = this.#sessions[slot]!;
    if (dst.length - dstOff < WG_DATA_HEADER_LEN + WG_TAG_LEN) return WgResult.Done;
    return this.#sealWith(s, dst, dstOff + WG_DATA_HEADER_LEN, 0, out, now);
  }

  /** Hot path: a transport data message. */
  #handleData(buf: Uint8Array, off: number, len: number, out: WgOut, now: number): WgResult {
    const receiver = readU32Le(buf, off + WG_DATA_RECEIVER_OFF);
    if (receiver >>> 8 !== this.#indexValue) {
      out.dropReason = DropReason.InvalidReceiverIndex;
      return WgResult.Drop;
    }
    const slot = receiver & (N_SESSIONS - 1);
    const s = this.#sessions[slot]!;
    if (s === null || s.localIndex !== receiver) {
      out.dropReason = DropReason.NoSession;
      return WgResult.Drop;
    }
    if (s.isExpired(now)) {
      out.dropReason = DropReason.Expired;
      return WgResult.Drop;
    }
    const n = s.open(buf, off, len, this.#rejectAfterMessages);
    if (n < 0) {
      out.dropReason = -n as DropReason;
      return WgResult.Drop;
    }
    if (slot !== this.#current) {
      this.#makeCurrent(slot);
      // The peer confirmed a new session: a handshake we held back for want of one is moot.
      if (this.#current === slot && !this.#handshake.inProgress) this.#timers.sendHandshakeAt = Infinity;
    }
    this.#timers.onPacketReceived(now);
    if (n === 0) return WgResult.Done; // keepalive

    const p = off + WG_DATA_HEADER_LEN;
    const version = buf[p]! >>> 4;
    let ipLen: number;
    if (version === 4 && n >= 20) {
      ipLen = (buf[p + 2]! << 8) | buf[p + 3]!;
      if (ipLen < 20) ipLen = n + 1; // rejected below
    } else if (version === 6 && n >= 40) {
      ipLen = 40 + ((buf[p + 4]! << 8) | buf[p + 5]!);
    } else {
      out.dropReason = DropReason.InvalidPacket;
      return WgResult.Drop;
    }
    if (ipLen > n) {
      out.dropReason = DropReason.InvalidPacket;
      return WgResult.Drop;
    }
    this.#timers.onDataReceived(now);
    this.#rxBytes += ipLen;
    out.buf = buf;
    out.off = p;
    out.len = ipLen;
    out.ipVersion = version;
    return WgResult.WriteToTunnel;
  }

  /** Puts a new session into its slot (`localIndex & 7`), wiping whatever was there. */
  #storeSession(k: SessionKeys, now: number): number {
    const slot = k.localIndex & (N_SESSIONS - 1);
    this.#dropSlot(slot);
    this.#sessions[slot] = new Session(
      this.#backend,
      k.localIndex,
      k.peerIndex,
      k.sendKey,
      k.recvKey,
      k.isInitiator,
      now,
    );
    k.sendKey.fill(0);
    k.recvKey.fill(0);
    this.#sessionSeq[slot] = this.#nextSeq++;
    return slot;
  }

  /** Makes `slot` the sending session unless the current one is newer. */
  #makeCurrent(slot: number): void {
    const cur = this.#current;
    if (cur >= 0 && cur !== slot && this.#sessionSeq[cur]! > this.#sessionSeq[slot]!) return;
    this.#current = slot;
  }

  #dropSlot(slot: number): void {
    const s = this.#sessions[slot];
    if (s == null) return;
    s.dispose();
    this.#sessions[slot] = null;
    if (this.#current === slot) this.#current = -1;
  }

  #expireSessions(now: number): void {
    for (let i = 0; i < N_SESSIONS; i++) {
      const s = this.#sessions[i];
      if (s != null && s.isExpired(now)) {
        if (log.debugEnabled) log.debug("SESSION_EXPIRED(REJECT_AFTER_TIME)", { localIndex: s.localIndex });
        this.#dropSlot(i);
      }
    }
  }

  #expire(now: number): void {
    this.#handshake.setExpired();
    for (let i = 0; i < N_SESSIONS; i++) this.#dropSlot(i);
    this.#queue.clear();
    this.#timers.clear(now);
  }
}

/** Why a datagram that is not a well-formed WireGuard message was refused. */
function classifyMalformed(buf: Uint8Array, off: number, len: number): DropReason {
  if (len < 4) return DropReason.Truncated;
  const type = buf[off]!;
  const reservedZero = (buf[off + 1]! | buf[off + 2]! | buf[off + 3]!) === 0;
  return reservedZero && type >= WG_TYPE_HANDSHAKE_INIT && type <= WG_TYPE_DATA
    ? DropReason.Truncated
    : DropReason.UnknownType;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function min(a: number, b: number): number {
  return a < b ? a : b;
}
