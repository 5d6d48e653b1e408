/**
 * HMAC-BLAKE2s and WireGuard's KDF1/KDF2/KDF3 (the WireGuard paper §5.4, "HKDF" with HMAC-BLAKE2s):
 *
 * ```
 * τ0 = HMAC(key, input)
 * τ1 = HMAC(τ0, 0x1)
 * τi = HMAC(τ0, τi-1 || i)
 * KDFn(key, input) = (τ1, ..., τn)
 * ```
 *
 * Used only by the handshake (a handful of calls per handshake), so results are fresh arrays.
 * The hash comes from the {@link CryptoBackend} so both backends share this code.
 *
 * @module
 */

import type { CryptoBackend } from "./backend.ts";

/** BLAKE2s block length: the HMAC key is padded to it (RFC 2104). */
export const BLAKE2S_BLOCK_LEN = 64;
/** BLAKE2s-256 output length, the length of every τ. */
export const BLAKE2S_HASH_LEN = 32;

const IPAD = 0x36;
const OPAD = 0x5c;

/** The part of a backend HMAC needs. */
export type Blake2sHasher = Pick<CryptoBackend, "blake2s256">;

/**
 * HMAC-BLAKE2s-256 (RFC 2104 over BLAKE2s-256) of the concatenation of `parts`.
 * Keys longer than 64 bytes are hashed first, as RFC 2104 says (WireGuard's are always 32 bytes).
 */
export function hmacBlake2s(hasher: Blake2sHasher, key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const k = key.length > BLAKE2S_BLOCK_LEN ? hasher.blake2s256(key) : key;
  const ipad = new Uint8Array(BLAKE2S_BLOCK_LEN);
  const opad = new Uint8Array(BLAKE2S_BLOCK_LEN);
  for (let i = 0; i < BLAKE2S_BLOCK_LEN; i++) {
    const b = i < k.length ? k[i]! : 0;
    ipad[i] = b ^ IPAD;
    opad[i] = b ^ OPAD;
  }
  const inner = hasher.blake2s256(ipad, ...parts);
  const outer = hasher.blake2s256(opad, inner);
  ipad.fill(0);
  opad.fill(0);
  inner.fill(0);
  return outer;
}

/** τ1..τn of WireGuard's KDF; `n` is 1, 2 or 3. */
function kdf(hasher: Blake2sHasher, n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Uint8Array[] {
  const t0 = hmacBlake2s(hasher, key, input);
  const out: Uint8Array[] = [];
  const counter = new Uint8Array(1);
  let prev: Uint8Array | null = null;
  for (let i = 1; i <= n; i++) {
    counter[0] = i;
    prev = prev === null ? hmacBlake2s(hasher, t0, counter) : hmacBlake2s(hasher, t0, prev, counter);
    out.push(prev);
  }
  t0.fill(0);
  return out;
}

/** KDF1(key, input) = τ1 (the WireGuard paper §5.4). */
export function kdf1(hasher: Blake2sHasher, key: Uint8Array, input: Uint8Array): Uint8Array {
  return kdf(hasher, 1, key, input)[0]!;
}

/** KDF2(key, input) = (τ1, τ2). */
export function kdf2(hasher: Blake2sHasher, key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array] {
  const [t1, t2] = kdf(hasher, 2, key, input);
  return [t1!, t2!];
}

/** KDF3(key, input) = (τ1, τ2, τ3). */
export function kdf3(
  hasher: Blake2sHasher,
  key: Uint8Array,
  input: Uint8Array,
): [Uint8Array, Uint8Array, Uint8Array] {
  const [t1, t2, t3] = kdf(hasher, 3, key, input);
  return [t1!, t2!, t3!];
}
