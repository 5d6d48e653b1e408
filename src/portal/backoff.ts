/**
 * Exponential backoff with a total time budget, shaped like the Rust `backoff` crate the upstream
 * portal connection uses: initial interval 500 ms, multiplier 1.5, randomization ±50 %, interval
 * capped at 60 s, and no more delays once the elapsed time since creation exceeds the budget
 * (15 min upstream at 1.4.16, configurable here through `FIREZONE_MAX_PARTITION_TIME`). Pure: time
 * and randomness are injected.
 *
 * @module
 */

import { randomUnit, type Rng } from "../rng.ts";

export const BACKOFF_INITIAL_INTERVAL_MS = 500;
export const BACKOFF_MULTIPLIER = 1.5;
export const BACKOFF_RANDOMIZATION_FACTOR = 0.5;
export const BACKOFF_MAX_INTERVAL_MS = 60_000;
/** Upstream 1.4.16's reconnect budget. */
export const DEFAULT_MAX_ELAPSED_MS = 15 * 60_000;

/** One backoff sequence; create a new one to start over. */
export class ExponentialBackoff {
  readonly maxElapsedMs: number;
  readonly #startedAt: number;
  readonly #rng: Rng;
  #intervalMs = BACKOFF_INITIAL_INTERVAL_MS;

  /**
   * @param now the instant the sequence starts (the budget is measured from here)
   * @param rng jitter source
   * @param maxElapsedMs total budget; `Infinity` never gives up
   */
  constructor(now: number, rng: Rng, maxElapsedMs: number = DEFAULT_MAX_ELAPSED_MS) {
    this.#startedAt = now;
    this.#rng = rng;
    this.maxElapsedMs = maxElapsedMs;
  }

  /**
   * The next delay in milliseconds, or null when the budget is exhausted: either the elapsed time
   * already exceeds it, or waiting the delay would.
   */
  next(now: number): number | null {
    const elapsed = now - this.#startedAt;
    if (elapsed > this.maxElapsedMs) return null;
    const delta = BACKOFF_RANDOMIZATION_FACTOR * this.#intervalMs;
    const delay = Math.round(this.#intervalMs - delta + randomUnit(this.#rng) * 2 * delta);
    this.#intervalMs = Math.min(this.#intervalMs * BACKOFF_MULTIPLIER, BACKOFF_MAX_INTERVAL_MS);
    if (elapsed + delay > this.maxElapsedMs) return null;
    return delay;
  }
}
