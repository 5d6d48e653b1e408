/**
 * The node-wide handshake rate limiter (spec §3.6: 100 handshakes/s per node, reset every second).
 * One instance is shared by every {@link Tunnel} of a node, so the limit holds per node, not per peer.
 *
 * Every handshake initiation and response first has its MAC1 checked. Beyond the limit within the
 * current one-second window the node is "under load": a message is processed only if its MAC2 proves
 * the sender owns its source address (paper §5.4.7); otherwise a cookie reply is written instead.
 *
 * Sans-IO: time is passed in, randomness (the cookie secret and reply nonces) comes from the {@link Rng}.
 *
 * @module
 */

import type { CryptoBackend } from "../crypto/backend.ts";
import { randomBytes, type Rng } from "../rng.ts";
import { parseIp, type SocketAddr } from "../wire/ip_addr.ts";
import {
  readU32Le,
  WG_COOKIE_NONCE_LEN,
  WG_COOKIE_REPLY_LEN,
  WG_INIT_MAC1_OFF,
  WG_INIT_SENDER_OFF,
  WG_MAC_LEN,
  WG_RESP_MAC1_OFF,
  WG_RESP_SENDER_OFF,
  WG_TYPE_COOKIE_REPLY,
  WG_TYPE_HANDSHAKE_INIT,
} from "../wire/wireguard.ts";
import { COOKIE_SECRET_LIFETIME_MS, HANDSHAKE_RATE_LIMIT_PER_S, RATE_LIMIT_RESET_MS } from "./constants.ts";
import { computeMac, macEquals, writeCookieReply } from "./cookie.ts";
import type { StaticIdentity } from "./identity.ts";
import { DropReason, type WgOut } from "./result.ts";

/** Verdict of {@link HandshakeRateLimiter.verify}. */
export const RateVerdict = {
  /** Process the message. */
  Pass: 0,
  /** Drop it; `out.dropReason` says why. */
  Drop: 1,
  /** A cookie reply was written to `out` (send it instead of processing the message). */
  CookieReply: 2,
} as const;
export type RateVerdict = (typeof RateVerdict)[keyof typeof RateVerdict];

const COOKIE_SECRET_LEN = 32;

/** Shared per-node handshake rate limiter and cookie issuer. */
export class HandshakeRateLimiter {
  readonly #backend: CryptoBackend;
  readonly #identity: StaticIdentity;
  readonly #rng: Rng;
  readonly #limit: number;
  #count = 0;
  #windowStart: number;
  #secret: Uint8Array;
  #secretAt: number;

  /**
   * @param limitPerSecond handshake messages per second before cookies are required (default 100)
   */
  constructor(
    backend: CryptoBackend,
    identity: StaticIdentity,
    rng: Rng,
    now: number,
    limitPerSecond: number = HANDSHAKE_RATE_LIMIT_PER_S,
  ) {
    if (!Number.isInteger(limitPerSecond) || limitPerSecond < 0) {
      throw new RangeError(`Handshake rate limit must be a non-negative integer, got ${limitPerSecond}`);
    }
    this.#backend = backend;
    this.#identity = identity;
    this.#rng = rng;
    this.#limit = limitPerSecond;
    this.#windowStart = now;
    this.#secret = randomBytes(rng, COOKIE_SECRET_LEN);
    this.#secretAt = now;
  }

  /** The node identity whose MAC1/cookie keys this limiter uses. */
  get identity(): StaticIdentity {
    return this.#identity;
  }

  /** Handshake messages counted in the current window. */
  get count(): number {
    return this.#count;
  }

  /** True when the next handshake message in this window would need a valid MAC2. */
  isUnderLoad(now: number): boolean {
    this.resetCountAt(now);
    return this.#count >= this.#limit;
  }

  /** Starts a new counting window when the current one is at least a second old. */
  resetCountAt(now: number): void {
    if (now - this.#windowStart >= RATE_LIMIT_RESET_MS) {
      this.#count = 0;
      this.#windowStart = now;
    }
  }

  /**
   * Checks MAC1 of a handshake initiation (`type` 1) or response (`type` 2) at `buf[off]` and applies
   * the rate limit. Under load, a message without a valid MAC2 for `from` gets a cookie reply written
   * at `dst[dstOff]` (64 bytes); with `from` unknown it is dropped as {@link DropReason.RateLimited}.
   */
  verify(
    buf: Uint8Array,
    off: number,
    type: number,
    from: SocketAddr | null,
    dst: Uint8Array,
    dstOff: number,
    out: WgOut,
    now: number,
  ): RateVerdict {
    const isInit = type === WG_TYPE_HANDSHAKE_INIT;
    const mac1Off = isInit ? WG_INIT_MAC1_OFF : WG_RESP_MAC1_OFF;
    const mac1 = computeMac(this.#backend, this.#identity.mac1Key, buf, off, mac1Off);
    if (!macEquals(buf, off + mac1Off, mac1)) {
      out.dropReason = DropReason.BadMac1;
      return RateVerdict.Drop;
    }
    this.resetCountAt(now);
    const underLoad = this.#count >= this.#limit;
    this.#count++;
    if (!underLoad) return RateVerdict.Pass;

    if (from === null) {
      out.dropReason = DropReason.RateLimited;
      return RateVerdict.Drop;
    }
    const cookie = this.cookieFor(from, now);
    const mac2Off = mac1Off + WG_MAC_LEN;
    if (macEquals(buf, off + mac2Off, computeMac(this.#backend, cookie, buf, off, mac2Off))) {
      return RateVerdict.Pass;
    }
    if (dst.length - dstOff < WG_COOKIE_REPLY_LEN) {
      out.dropReason = DropReason.BufferTooSmall;
      return RateVerdict.Drop;
    }
    const senderIndex = readU32Le(buf, off + (isInit ? WG_INIT_SENDER_OFF : WG_RESP_SENDER_OFF));
    const nonce = randomBytes(this.#rng, WG_COOKIE_NONCE_LEN);
    out.buf = dst;
    out.off = dstOff;
    out.len = writeCookieReply(
      this.#backend,
      this.#identity.cookieKey,
      senderIndex,
      nonce,
      cookie,
      mac1,
      dst,
      dstOff,
    );
    out.messageType = WG_TYPE_COOKIE_REPLY;
    out.dropReason = DropReason.CookieRequired;
    return RateVerdict.CookieReply;
  }

  /** The current cookie for `from`: MAC(R_m, source IP || source port); R_m changes every 2 minutes. */
  cookieFor(from: SocketAddr, now: number): Uint8Array {
    if (now - this.#secretAt >= COOKIE_SECRET_LIFETIME_MS) {
      this.#secret.fill(0);
      this.#secret = randomBytes(this.#rng, COOKIE_SECRET_LEN);
      this.#secretAt = now;
    }
    const ip = parseIp(from.ip) ?? new Uint8Array(16);
    const addr = new Uint8Array(ip.length + 2);
    addr.set(ip);
    addr[ip.length] = from.port >>> 8;
    addr[ip.length + 1] = from.port & 0xff;
    return this.#backend.blake2sMac128(this.#secret, addr);
  }
}
