/**
 * Local WireGuard indices (spec §3.6). Each connection gets a 24-bit value from an xorshift LFSR
 * (polynomial 0xD80000, output XOR-masked, seed and mask from the {@link Rng}), so indices look random
 * and never repeat within a node's lifetime (2^24 − 1 values). On the wire a sender/receiver index is
 * `(value << 8) | sessionCounter` with an 8-bit counter that wraps; incoming responses, cookie replies
 * and data are routed to their connection by `receiverIndex >>> 8`.
 *
 * @module
 */

import type { Rng } from "../rng.ts";

/** Largest 24-bit value. */
export const INDEX_VALUE_MAX = 0xff_ffff;
/** Feedback polynomial of the 24-bit Galois LFSR. */
const LFSR_POLY = 0xd8_0000;

/**
 * Hot path: the connection part of a receiver index (its upper 24 bits), used to route responses,
 * cookie replies and data to their tunnel.
 */
export function connectionIndexOf(receiverIndex: number): number {
  return receiverIndex >>> 8;
}

/** The session counter of an index (its low 8 bits). */
export function sessionCounterOf(index: number): number {
  return index & 0xff;
}

/** The index on the wire for connection value `value` and session counter `counter` (wraps at 256). */
export function makeWireIndex(value: number, counter: number): number {
  return ((value << 8) | (counter & 0xff)) >>> 0;
}

/** Hands out distinct 24-bit connection values for one node. */
export class IndexAllocator {
  readonly #initial: number;
  readonly #mask: number;
  #lfsr: number;
  #exhausted = false;

  constructor(rng: Rng) {
    this.#initial = nonZero24(rng);
    this.#lfsr = this.#initial;
    this.#mask = nonZero24(rng);
  }

  /**
   * The next 24-bit connection value.
   * @throws RangeError after 2^24 − 1 values (the LFSR came back to its seed)
   */
  next(): number {
    if (this.#exhausted) {
      throw new RangeError("Cannot allocate a WireGuard index: all 2^24 - 1 connection indices were used");
    }
    const value = ((this.#lfsr - 1) ^ this.#mask) & INDEX_VALUE_MAX;
    // Galois step: shift right, fold the polynomial in when the dropped bit was 1.
    this.#lfsr = (this.#lfsr >>> 1) ^ (-(this.#lfsr & 1) & LFSR_POLY);
    if (this.#lfsr === this.#initial) this.#exhausted = true;
    return value;
  }
}

/**
 * The per-tunnel session index counter: `(value << 8) | counter`, the counter wrapping 255 → 0 while the
 * connection value never changes (boringtun `Index::wrapping_increment`).
 */
export class SessionIndex {
  readonly value: number;
  #counter: number;

  /** @param value the 24-bit connection value from {@link IndexAllocator.next} */
  constructor(value: number) {
    if (!Number.isInteger(value) || value < 0 || value > INDEX_VALUE_MAX) {
      throw new RangeError(`A WireGuard connection index is a 24-bit integer, got ${value}`);
    }
    this.value = value;
    this.#counter = 0;
  }

  /** The wire index the next handshake will use, and advances the counter. */
  next(): number {
    const idx = makeWireIndex(this.value, this.#counter);
    this.#counter = (this.#counter + 1) & 0xff;
    return idx;
  }

  /** The counter the next call to {@link next} will use. */
  get counter(): number {
    return this.#counter;
  }
}

function nonZero24(rng: Rng): number {
  for (;;) {
    const v = rng.nextU32() & INDEX_VALUE_MAX;
    if (v !== 0) return v;
  }
}
