/**
 * WireGuard timer state of one tunnel (the paper §6, with the Firezone boringtun fork's rules): the
 * instants of the last events, fed through `on<Event>()` hooks (wireguard-go's vocabulary), and the
 * deadlines derived from them. The decisions live in `Tunnel.handleTimeout`; this class is plain state,
 * so it allocates nothing.
 *
 * `Infinity` means "not set" (deadlines computed from it stay `Infinity`).
 *
 * @module
 */

import {
  CONNECTION_EXPIRY_MS,
  KEEPALIVE_TIMEOUT_MS,
  REJECT_AFTER_TIME_MS,
  REKEY_AFTER_TIME_MS,
  REKEY_TIMEOUT_MS,
} from "./constants.ts";

/** Timer state of a tunnel. */
export class WgTimers {
  /** True when we initiated the handshake of the current session (only then do we rekey by time). */
  isInitiator = false;
  /** When the last session was established (initially: when the tunnel was created). */
  sessionEstablishedAt: number;
  /** When the current series of handshake attempts began. */
  handshakeStartedAt: number;
  /** Last authenticated packet received / sent (any type). */
  lastPacketReceivedAt: number;
  lastPacketSentAt: number;
  /** Data (non-keepalive) received / sent since the current session was established. */
  dataReceivedSinceSession = false;
  dataSentSinceSession = false;
  /** The last data packet received that we have not answered with any packet; Infinity when none. */
  dataReceivedWithoutReplyAt = Infinity;
  /** The first data packet sent that the peer has not answered with any packet; Infinity when none. */
  firstDataSentWithoutReplyAt = Infinity;
  /** When a keepalive was last due (sent or not: without a session a handshake is attempted instead). */
  keepaliveAttemptAt = -Infinity;
  /** A handshake initiation scheduled (with jitter) for this instant; Infinity when none. */
  sendHandshakeAt = Infinity;
  /** Persistent keepalive interval; 0 disables it. */
  readonly persistentKeepaliveMs: number;

  constructor(persistentKeepaliveMs: number, now: number) {
    if (!Number.isFinite(persistentKeepaliveMs) || persistentKeepaliveMs < 0) {
      throw new RangeError(`Persistent keepalive must be >= 0 ms, got ${persistentKeepaliveMs}`);
    }
    this.persistentKeepaliveMs = persistentKeepaliveMs;
    this.sessionEstablishedAt = now;
    this.handshakeStartedAt = now;
    this.lastPacketReceivedAt = now;
    this.lastPacketSentAt = now;
  }

  /** Resets every instant to `now` (a fresh start after the connection expired). */
  clear(now: number): void {
    this.sessionEstablishedAt = now;
    this.handshakeStartedAt = now;
    this.lastPacketReceivedAt = now;
    this.lastPacketSentAt = now;
    this.dataReceivedSinceSession = false;
    this.dataSentSinceSession = false;
    this.dataReceivedWithoutReplyAt = Infinity;
    this.firstDataSentWithoutReplyAt = Infinity;
    this.sendHandshakeAt = Infinity;
    this.keepaliveAttemptAt = -Infinity;
  }

  /** A keepalive became due (passive or persistent). */
  onKeepaliveAttempt(now: number): void {
    this.keepaliveAttemptAt = now;
    this.dataReceivedWithoutReplyAt = Infinity;
  }

  /** Any packet (data, keepalive, handshake) was sent. */
  onPacketSent(now: number): void {
    this.lastPacketSentAt = now;
    this.dataReceivedWithoutReplyAt = Infinity;
  }

  /** A non-empty data packet was sent. */
  onDataSent(now: number): void {
    this.dataSentSinceSession = true;
    if (this.firstDataSentWithoutReplyAt === Infinity) this.firstDataSentWithoutReplyAt = now;
  }

  /** Any authenticated packet was received. */
  onPacketReceived(now: number): void {
    this.lastPacketReceivedAt = now;
    this.firstDataSentWithoutReplyAt = Infinity;
  }

  /** A non-empty data packet was received. */
  onDataReceived(now: number): void {
    this.dataReceivedSinceSession = true;
    this.dataReceivedWithoutReplyAt = now;
  }

  /** A new session was established; `isInitiator` when we sent its initiation. */
  onSessionEstablished(isInitiator: boolean, now: number): void {
    this.isInitiator = isInitiator;
    this.sessionEstablishedAt = now;
    this.dataReceivedSinceSession = false;
    this.dataSentSinceSession = false;
  }

  /** A new series of handshake attempts began (not a retransmission). */
  onHandshakeStarted(now: number): void {
    this.handshakeStartedAt = now;
  }

  /** No new session for 3 × REJECT_AFTER_TIME: the connection expires. */
  connectionExpiresAt(): number {
    return this.sessionEstablishedAt + CONNECTION_EXPIRY_MS;
  }

  /** The handshake attempt gives up at this instant. */
  rekeyAttemptEndsAt(rekeyAttemptTimeMs: number): number {
    return this.handshakeStartedAt + rekeyAttemptTimeMs;
  }

  /** Initiator only, after sending data: rekey once the session is REKEY_AFTER_TIME old. */
  rekeyAfterTimeOnSendAt(): number {
    if (!this.isInitiator || !this.dataSentSinceSession) return Infinity;
    return this.sessionEstablishedAt + REKEY_AFTER_TIME_MS;
  }

  /**
   * Initiator only, after receiving data: rekey at REJECT_AFTER_TIME − KEEPALIVE_TIMEOUT − REKEY_TIMEOUT
   * so a receive-only session is renewed before it is rejected.
   */
  rejectAfterTimeOnReceiveAt(): number {
    if (!this.isInitiator || !this.dataReceivedSinceSession) return Infinity;
    return this.sessionEstablishedAt + REJECT_AFTER_TIME_MS - KEEPALIVE_TIMEOUT_MS - REKEY_TIMEOUT_MS;
  }

  /** Data sent but nothing heard back for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT: new handshake. */
  noResponseHandshakeAt(): number {
    return this.firstDataSentWithoutReplyAt + KEEPALIVE_TIMEOUT_MS + REKEY_TIMEOUT_MS;
  }

  /** Data received but nothing sent back for KEEPALIVE_TIMEOUT: passive keepalive. */
  passiveKeepaliveAt(): number {
    return this.dataReceivedWithoutReplyAt + KEEPALIVE_TIMEOUT_MS;
  }

  /** No authenticated packet either way for the persistent keepalive interval: keepalive. */
  persistentKeepaliveAt(): number {
    if (this.persistentKeepaliveMs === 0) return Infinity;
    const last = Math.max(this.lastPacketSentAt, this.lastPacketReceivedAt, this.keepaliveAttemptAt);
    return last + this.persistentKeepaliveMs;
  }
}
