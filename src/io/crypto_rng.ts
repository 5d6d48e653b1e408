/**
 * The process's one source of real entropy (Web Crypto). Built once in `main.ts` / the packet worker
 * and handed to the sans-IO cores as an {@link Rng}.
 *
 * @module
 */
import type { Rng } from "../rng.ts";

const MAX_CHUNK = 65_536; // getRandomValues refuses more per call

/** An {@link Rng} backed by `crypto.getRandomValues`. */
export class CryptoRng implements Rng {
  readonly #word = new Uint32Array(64);
  #next = 64;

  nextU32(): number {
    if (this.#next === this.#word.length) {
      crypto.getRandomValues(this.#word);
      this.#next = 0;
    }
    return this.#word[this.#next++]!;
  }

  fill(bytes: Uint8Array): void {
    for (let off = 0; off < bytes.length; off += MAX_CHUNK) {
      crypto.getRandomValues(bytes.subarray(off, Math.min(bytes.length, off + MAX_CHUNK)));
    }
  }
}
