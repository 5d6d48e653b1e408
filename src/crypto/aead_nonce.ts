/**
 * WireGuard's ChaCha20-Poly1305 nonce layout, and the explicit-nonce extension both backends' keys
 * implement. {@link AeadKey} only takes WireGuard's counter (nonce = 4 zero bytes || le64(counter)),
 * which cannot express the RFC 8439 test vectors (their nonces do not start with four zero bytes, or
 * exceed a safe integer); {@link AeadKeyWithNonce} lets the vectors and cross-checks run through the very
 * same code path with any 96-bit nonce.
 *
 * @module
 */

import type { AeadKey } from "./backend.ts";

/** ChaCha20-Poly1305 (RFC 8439) nonce length. */
export const AEAD_NONCE_LEN = 12;

/** 2^32, to split a safe-integer counter into two 32-bit halves without BigInt. */
const TWO_POW_32 = 0x1_0000_0000;

/** An {@link AeadKey} that also accepts an explicit 12-byte nonce (tests, vectors). */
export interface AeadKeyWithNonce extends AeadKey {
  /** Like {@link AeadKey.seal} with an explicit RFC 8439 nonce. */
  sealWithNonce(nonce: Uint8Array, aad: Uint8Array | null, buf: Uint8Array, off: number, len: number): number;
  /** Like {@link AeadKey.open} with an explicit RFC 8439 nonce; -1 on a bad tag. */
  openWithNonce(nonce: Uint8Array, aad: Uint8Array | null, buf: Uint8Array, off: number, len: number): number;
}

/** True when `key` supports explicit nonces (both built-in backends do). */
export function hasExplicitNonce(key: AeadKey): key is AeadKeyWithNonce {
  const k = key as Partial<AeadKeyWithNonce>;
  return typeof k.sealWithNonce === "function" && typeof k.openWithNonce === "function";
}

/** Throws a TypeError unless `nonce` is a 12-byte Uint8Array. */
export function checkAeadNonce(nonce: Uint8Array): void {
  if (!(nonce instanceof Uint8Array) || nonce.length !== AEAD_NONCE_LEN) {
    throw new TypeError(
      `ChaCha20-Poly1305 nonce must be a ${AEAD_NONCE_LEN}-byte Uint8Array, got length ${nonce?.length}`,
    );
  }
}

/**
 * Writes WireGuard's 96-bit nonce into `nonce[0, 12)`: 4 zero bytes, then `counter` as a 64-bit
 * little-endian integer. `counter` is a non-negative safe integer.
 */
export function writeWgNonce(nonce: Uint8Array, counter: number): void {
  const lo = counter >>> 0;
  const hi = (counter - lo) / TWO_POW_32;
  nonce[0] = 0;
  nonce[1] = 0;
  nonce[2] = 0;
  nonce[3] = 0;
  nonce[4] = lo;
  nonce[5] = lo >>> 8;
  nonce[6] = lo >>> 16;
  nonce[7] = lo >>> 24;
  nonce[8] = hi;
  nonce[9] = hi >>> 8;
  nonce[10] = hi >>> 16;
  nonce[11] = hi >>> 24;
}

/**
 * Throws a RangeError unless `buf[off, off + len + tail)` lies inside `buf`. Both backends check this
 * before touching memory (the OpenSSL one writes through raw pointers).
 */
export function checkAeadRange(buf: Uint8Array, off: number, len: number, tail: number): void {
  if (!(off >= 0 && len >= 0 && off + len + tail <= buf.length)) {
    throw new RangeError(
      `AEAD range [${off}, ${off} + ${len} + ${tail}) is outside the ${buf.length}-byte buffer`,
    );
  }
}

/**
 * The nonce handling both backends share: WireGuard counters for the data path, explicit nonces for
 * vectors. A backend supplies the two primitives that seal/open with the nonce currently in
 * {@link nonce} (which may live in FFI-visible memory, hence supplied by the subclass).
 */
export abstract class NonceAeadKey implements AeadKeyWithNonce {
  /** The 12-byte nonce of the next operation. */
  protected readonly nonce: Uint8Array;

  constructor(nonce: Uint8Array) {
    this.nonce = nonce;
  }

  /** Hot path: see {@link AeadKey.seal}. */
  seal(counter: number, aad: Uint8Array | null, buf: Uint8Array, off: number, len: number): number {
    writeWgNonce(this.nonce, counter);
    return this.sealCurrentNonce(aad, buf, off, len);
  }

  /** Hot path: see {@link AeadKey.open}. */
  open(counter: number, aad: Uint8Array | null, buf: Uint8Array, off: number, len: number): number {
    writeWgNonce(this.nonce, counter);
    return this.openCurrentNonce(aad, buf, off, len);
  }

  sealWithNonce(
    nonce: Uint8Array,
    aad: Uint8Array | null,
    buf: Uint8Array,
    off: number,
    len: number,
  ): number {
    checkAeadNonce(nonce);
    this.nonce.set(nonce);
    return this.sealCurrentNonce(aad, buf, off, len);
  }

  openWithNonce(
    nonce: Uint8Array,
    aad: Uint8Array | null,
    buf: Uint8Array,
    off: number,
    len: number,
  ): number {
    checkAeadNonce(nonce);
    this.nonce.set(nonce);
    return this.openCurrentNonce(aad, buf, off, len);
  }

  abstract dispose(): void;

  /** Seals in place with {@link nonce}; returns `len + 16`. */
  protected abstract sealCurrentNonce(
    aad: Uint8Array | null,
    buf: Uint8Array,
    off: number,
    len: number,
  ): number;

  /** Opens in place with {@link nonce}; returns the plaintext length or -1. */
  protected abstract openCurrentNonce(
    aad: Uint8Array | null,
    buf: Uint8Array,
    off: number,
    len: number,
  ): number;
}
