/**
 * Connectivity-check pacing (str0m `StunTiming`), applied per candidate pair.
 *
 * The n-th check of a pair waits `min(initialRto · 2^(n-1), maxRto)` after the previous one; a
 * succeeded pair keeps being re-checked about every `maxRto` (consent/keepalive); a pair is dead
 * once `maxRetransmits` checks in a row went unanswered and the last delay has passed.
 *
 * @module
 */

/** Immutable timing parameters. */
export interface StunTiming {
  readonly initialRtoMs: number;
  readonly maxRtoMs: number;
  readonly maxRetransmits: number;
}

/** Firezone's active timings: 250 ms / 1500 ms / 12 → ICE timeout 15.25 s. */
export const ACTIVE_STUN_TIMING: StunTiming = Object.freeze({
  initialRtoMs: 250,
  maxRtoMs: 1500,
  maxRetransmits: 12,
});

/** Firezone's idle timings (20 s without tunnel traffic): 25 s / 25 s / 4 → ICE timeout 100 s. */
export const IDLE_STUN_TIMING: StunTiming = Object.freeze({
  initialRtoMs: 25_000,
  maxRtoMs: 25_000,
  maxRetransmits: 4,
});

/**
 * Delay before the next check when `sendCount` checks were already sent:
 * `min(initialRto · 2^(sendCount-1), maxRto)`; 0 when nothing was sent yet.
 */
export function stunResendDelayMs(t: StunTiming, sendCount: number): number {
  if (sendCount <= 0) return 0;
  const doublings = Math.min(sendCount - 1, t.maxRetransmits, 52);
  return Math.min(t.initialRtoMs * 2 ** doublings, t.maxRtoMs);
}

/** The delay after the last allowed retransmit, before the pair counts as dead. */
export function stunLastResendDelayMs(t: StunTiming): number {
  return stunResendDelayMs(t, t.maxRetransmits);
}

/**
 * How long a pair tolerates unanswered checks from its first unanswered one: the sum of the
 * delays after each of `maxRetransmits` sends (snownet `default_ice_timeout` 15 250 ms,
 * `idle_ice_timeout` 100 s).
 */
export function iceTimeoutMs(t: StunTiming): number {
  let sum = 0;
  for (let n = 1; n <= t.maxRetransmits; n++) sum += stunResendDelayMs(t, n);
  return sum;
}
