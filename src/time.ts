/**
 * Time conventions shared by every sans-IO core.
 *
 * `now` is monotonic milliseconds (a `number`, from `performance.now()` in the I/O layer or a fake
 * clock in tests). Absolute instants end in `At`, durations in `Ms`. `Infinity` means "no deadline".
 * Wall-clock values (portal expiry only) are named `utcNowMs` / `expiresAtUtcMs`.
 *
 * @module
 */

/** A monotonic instant in milliseconds. */
export type Instant = number;

/** A duration in milliseconds. */
export type Millis = number;

/** "No deadline": the value `pollTimeout()` returns when nothing is scheduled. */
export const NEVER: Instant = Infinity;

/** The earlier of two deadlines. */
export function earliest(a: Instant, b: Instant): Instant {
  return a < b ? a : b;
}
