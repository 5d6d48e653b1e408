/**
 * Retransmission schedule of TURN requests (snownet `backoff.rs`): the first retransmission after
 * the initial interval, then each interval ×1.5, giving up once `maxElapsed` has passed since the
 * first send. With 1 s / 8 s the timer fires at +1, +2.5, +4.75 and +8.125 s; the last one finds
 * the backoff expired (8 s) and the request is abandoned.
 *
 * @module
 */

/** Multiplier applied to the interval after each retransmission. */
export const BACKOFF_MULTIPLIER = 1.5;
/** First retransmission delay of a TURN request. */
export const REQUEST_TIMEOUT_MS = 1_000;
/** A request is abandoned once this much time has passed since its first send. */
export const REQUEST_MAX_ELAPSED_MS = 8_000;

/** Exponential backoff with a manual clock (times in ms). */
export class ExponentialBackoff {
  readonly startTime: number;
  readonly maxElapsedMs: number;
  #intervalMs: number;
  #nextTrigger: number;

  constructor(now: number, intervalMs: number, maxElapsedMs: number) {
    this.startTime = now;
    this.maxElapsedMs = maxElapsedMs;
    this.#intervalMs = intervalMs;
    this.#nextTrigger = now + intervalMs;
  }

  /** When the request should next be retransmitted (or found expired). */
  get nextTrigger(): number {
    return this.#nextTrigger;
  }

  /** The interval that led to the current trigger. */
  get intervalMs(): number {
    return this.#intervalMs;
  }

  /** True once `maxElapsed` has passed since the first send. */
  isExpired(at: number): boolean {
    return at >= this.startTime + this.maxElapsedMs;
  }

  /** Advances to the next interval when the trigger is due (and the backoff not expired). */
  handleTimeout(now: number): void {
    if (this.isExpired(now) || now < this.#nextTrigger) return;
    this.#intervalMs *= BACKOFF_MULTIPLIER;
    this.#nextTrigger += this.#intervalMs;
  }
}

/** The default request backoff: 1 s, ×1.5, 8 s. */
export function requestBackoff(now: number): ExponentialBackoff {
  return new ExponentialBackoff(now, REQUEST_TIMEOUT_MS, REQUEST_MAX_ELAPSED_MS);
}

/** A single 1 s attempt (proactive refresh on `init` / relay presence). */
export function singleAttemptBackoff(now: number): ExponentialBackoff {
  return new ExponentialBackoff(now, REQUEST_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
}

/** The trigger instants of {@link requestBackoff} started at `start` (for tests): +1, +2.5, +4.75, +8.125 s. */
export function requestBackoffSteps(start: number): number[] {
  return [start + 1_000, start + 2_500, start + 4_750, start + 8_125];
}
