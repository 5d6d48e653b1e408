/**
 * Randomness is injected into every sans-IO core as an {@link Rng}. The only source of real
 * entropy is `src/io/crypto_rng.ts`, built in `main.ts`; tests use {@link SeededRng}.
 *
 * @module
 */

/** A source of random numbers and bytes. */
export interface Rng {
  /** A uniformly distributed unsigned 32-bit integer. */
  nextU32(): number;
  /** Fills `bytes` with random bytes. */
  fill(bytes: Uint8Array): void;
}

/** A uniformly distributed float in [0, 1). */
export function randomUnit(rng: Rng): number {
  return rng.nextU32() / 0x1_0000_0000;
}

/** A uniformly distributed integer in [0, n) for n <= 2^32. */
export function randomBelow(rng: Rng, n: number): number {
  return Math.floor(randomUnit(rng) * n);
}

/** `n` fresh random bytes. Allocates: not for the data path. */
export function randomBytes(rng: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  rng.fill(out);
  return out;
}

/**
 * Deterministic generator (xoshiro128**) for tests and simulations. Same seed, same sequence.
 * Never use it for keys outside tests.
 */
export class SeededRng implements Rng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  constructor(seed: number) {
    // splitmix32 expands the seed into four non-zero state words.
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#s0 = next();
    this.#s1 = next();
    this.#s2 = next();
    this.#s3 = next() | 1;
  }

  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.#s1 << 9) >>> 0;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3 >>> 0, 11);
    this.#s0 >>>= 0;
    this.#s1 >>>= 0;
    this.#s2 >>>= 0;
    return result;
  }

  fill(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i += 4) {
      let v = this.nextU32();
      for (let j = i; j < i + 4 && j < bytes.length; j++) {
        bytes[j] = v & 0xff;
        v >>>= 8;
      }
    }
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
