/**
 * WireGuard constants: the protocol's (the WireGuard paper §6.1, with the Firezone boringtun fork's
 * values where they differ) and this implementation's.
 *
 * @module
 */

// ---- Specification constants (paper §6.1; fork values noted) ----

/** The initiator of a session starts a new handshake once the session is this old (after sending). */
export const REKEY_AFTER_TIME_MS = 120_000;
/** A session is never used (either direction) once it is this old. */
export const REJECT_AFTER_TIME_MS = 180_000;
/** Fork: a session is not used for new outgoing packets after 170 s (REJECT_AFTER_TIME − KEEPALIVE_TIMEOUT). */
export const SHOULD_NOT_USE_AFTER_TIME_MS = 170_000;
/** Handshake initiation retransmission interval (plus jitter). */
export const REKEY_TIMEOUT_MS = 5_000;
/** Upper bound of the random jitter added to each handshake (re)transmission. */
export const MAX_JITTER_MS = 333;
/** Passive keepalive: sent when data was received but nothing sent back for this long. */
export const KEEPALIVE_TIMEOUT_MS = 10_000;
/** Fork value (upstream: 90 s): a handshake attempt is abandoned after this long. */
export const REKEY_ATTEMPT_TIME_MS = 15_000;
/** A connection without a new session for 3 × REJECT_AFTER_TIME expires (keys zeroed). */
export const CONNECTION_EXPIRY_MS = 3 * REJECT_AFTER_TIME_MS;
/** A received cookie is used for MAC2 for this long. */
export const COOKIE_EXPIRATION_TIME_MS = 120_000;
/**
 * The responder's cookie secret changes with this period (paper: "every two minutes"; boringtun uses
 * 128 s so the division is a shift; we keep the paper's 120 s).
 */
export const COOKIE_SECRET_LIFETIME_MS = 120_000;
/**
 * Messages after which the initiator rekeys (paper: 2^60). Unreachable with safe-integer counters at
 * any realistic rate, kept for completeness and configurable for tests.
 */
export const REKEY_AFTER_MESSAGES = 2 ** 60;
/**
 * Counter at which a session stops being used (paper: 2^64 − 2^13 − 1). Our counters are safe integers,
 * so the limit is 2^53 − 1: far beyond what any session sends before REJECT_AFTER_TIME.
 */
export const REJECT_AFTER_MESSAGES = Number.MAX_SAFE_INTEGER;

// ---- Implementation constants ----

/** Concurrent sessions per tunnel (boringtun's ring, indexed by `index & 7`). */
export const N_SESSIONS = 8;
/** Packets queued while no session exists (boringtun `MAX_QUEUE_DEPTH`). */
export const MAX_QUEUE_DEPTH = 256;
/** Handshake messages per second a node answers before it demands cookies. */
export const HANDSHAKE_RATE_LIMIT_PER_S = 100;
/** The rate limiter's counting window. */
export const RATE_LIMIT_RESET_MS = 1_000;
/** Replay window: a counter this far (or farther) below the highest accepted one is rejected. */
export const REPLAY_WINDOW_SIZE = 1024;
/** Spec §3.6: the parent evaluates WireGuard timers at least this often. */
export const TIMER_TICK_MS = 1_000;

/** Noise construction name hashed into the initial chaining key. */
export const NOISE_CONSTRUCTION = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
/** WireGuard's identifier mixed into the initial hash. */
export const WG_IDENTIFIER = "WireGuard v1 zx2c4 Jason@zx2c4.com";
/** MAC1 key label: MAC1 key = HASH(LABEL_MAC1 || responder static public). */
export const LABEL_MAC1 = "mac1----";
/** Cookie key label: cookie key = HASH(LABEL_COOKIE || responder static public). */
export const LABEL_COOKIE = "cookie--";
