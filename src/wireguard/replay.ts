/**
 * Anti-replay sliding window for transport data counters (RFC 6479 style, as in wireguard-go's
 * `replay` package) on a `Uint32Array` ring of 32-bit blocks. Counters are safe-integer numbers.
 *
 * A counter is accepted once if it is above the highest accepted counter, or at most
 * {@link REPLAY_WINDOW_SIZE} − 1 below it and not seen before.
 *
 * @module
 */

import { REPLAY_WINDOW_SIZE } from "./constants.ts";

/** Outcome of a replay check. */
export const ReplayCheck = { Ok: 0, Duplicate: 1, TooOld: 2 } as const;
export type ReplayCheck = (typeof ReplayCheck)[keyof typeof ReplayCheck];

const BLOCK_BITS = 32;
/** Ring size in blocks: a power of two with (RING_BLOCKS − 1) × 32 ≥ the window, so every bit of the
 *  window lives in a block that has not been recycled. */
const RING_BLOCKS = 64;
const RING_MASK = RING_BLOCKS - 1;

/** RFC 6479 replay window. */
export class ReplayWindow {
  readonly #ring = new Uint32Array(RING_BLOCKS);
  /** Highest accepted counter; -1 before the first. */
  #last = -1;
  readonly #window: number;

  /** @param windowSize counters accepted below the highest one (default {@link REPLAY_WINDOW_SIZE}) */
  constructor(windowSize: number = REPLAY_WINDOW_SIZE) {
    if (!Number.isInteger(windowSize) || windowSize < 1 || windowSize > (RING_BLOCKS - 1) * BLOCK_BITS) {
      throw new RangeError(`Replay window must be 1..${(RING_BLOCKS - 1) * BLOCK_BITS}, got ${windowSize}`);
    }
    this.#window = windowSize;
  }

  /** Highest accepted counter, -1 before the first. */
  get last(): number {
    return this.#last;
  }

  /**
   * Hot path: would `counter` be accepted? Does not change the window (called before decryption so
   * that replays cost no AEAD work).
   */
  check(counter: number): ReplayCheck {
    if (counter > this.#last) return ReplayCheck.Ok;
    if (this.#last - counter >= this.#window) return ReplayCheck.TooOld;
    const block = Math.floor(counter / BLOCK_BITS) & RING_MASK;
    const bit = 1 << (counter % BLOCK_BITS);
    return (this.#ring[block]! & bit) === 0 ? ReplayCheck.Ok : ReplayCheck.Duplicate;
  }

  /**
   * Hot path: marks `counter` as received (after the packet authenticated). Returns the same verdict
   * {@link check} would; the window only changes on `Ok`.
   */
  accept(counter: number): ReplayCheck {
    if (counter > this.#last) {
      // Slide: zero every block between the old top block and the new one (at most the whole ring).
      const newTop = Math.floor(counter / BLOCK_BITS);
      const oldTop = this.#last < 0 ? -1 : Math.floor(this.#last / BLOCK_BITS);
      let diff = newTop - oldTop;
      if (diff > RING_BLOCKS) diff = RING_BLOCKS;
      for (let i = 1; i <= diff; i++) this.#ring[(oldTop + i) & RING_MASK] = 0;
      this.#last = counter;
    } else if (this.#last - counter >= this.#window) {
      return ReplayCheck.TooOld;
    }
    const block = Math.floor(counter / BLOCK_BITS) & RING_MASK;
    const bit = 1 << (counter % BLOCK_BITS);
    const old = this.#ring[block]!;
    if ((old & bit) !== 0) return ReplayCheck.Duplicate;
    this.#ring[block] = old | bit;
    return ReplayCheck.Ok;
  }

  /** Forgets everything (a fresh session). */
  reset(): void {
    this.#ring.fill(0);
    this.#last = -1;
  }
}
