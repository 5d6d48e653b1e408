/**
 * WireGuard (Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s), sans-IO and boringtun-shaped: a {@link Tunnel} per
 * peer, a node-wide {@link HandshakeRateLimiter} and {@link IndexAllocator}, and the anonymous
 * initiation parser used to route initiations by the initiator's static key (spec §3.4). Time,
 * randomness and the wall clock are injected; the data path allocates nothing.
 *
 * @module
 */

export * from "./constants.ts";
export { computeMac, CookieJar, macEquals, verifyMac1, writeCookieReply } from "./cookie.ts";
export {
  anchoredWallClock,
  type AnonymousInitiation,
  Handshake,
  noiseStart,
  parseHandshakeAnon,
  type SessionKeys,
  type WallClock,
} from "./handshake.ts";
export { cookieKeyFor, mac1KeyFor, StaticIdentity } from "./identity.ts";
export {
  connectionIndexOf,
  INDEX_VALUE_MAX,
  IndexAllocator,
  makeWireIndex,
  sessionCounterOf,
  SessionIndex,
} from "./index_allocator.ts";
export { HandshakeRateLimiter, RateVerdict } from "./rate_limiter.ts";
export { ReplayCheck, ReplayWindow } from "./replay.ts";
export {
  DROP_REASON_COUNT,
  DROP_REASON_NAMES,
  DropReason,
  dropReasonName,
  WgOut,
  WgResult,
} from "./result.ts";
export { Session } from "./session.ts";
export { WgTimers } from "./timers.ts";
export { Tunnel, TUNNEL_SCRATCH_HEADROOM, type TunnelOptions } from "./tunnel.ts";
