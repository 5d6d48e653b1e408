/**
 * The pure-JavaScript {@link CryptoBackend}: the noble libraries (audited, constant-time-minded JS).
 * Used when OpenSSL's libcrypto cannot be loaded, in tests, and in the simulation.
 *
 * ChaCha20-Poly1305 is composed here from noble's `chacha20` stream cipher (RFC 8439 §2.4, with an
 * output buffer and a start counter) and its `Poly1305` MAC (§2.5) rather than through noble's
 * `chacha20poly1305` wrapper, because the wrapper throws on a bad tag (an exception per forged packet
 * on the data path) and allocates a cipher object, two closures, the one-time key, the length block and
 * the tag per call. Here those buffers are preallocated per key, the tag compare is constant-time and
 * returns -1, and the data is encrypted in place.
 *
 * What noble still allocates per `seal`/`open` (nothing of it escapes, so it is young-generation
 * garbage): inside each `chacha20` call a key copy, a `Uint32Array` state/block and a few views (two
 * calls per packet: the one-time key and the payload), a `Poly1305` instance with its four small
 * arrays, and here one `subarray` view of the packet.
 *
 * @module
 */

import { chacha20, hchacha, xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { Poly1305 } from "@noble/ciphers/_poly1305.js";
import { x25519 as nobleX25519 } from "@noble/curves/ed25519.js";
import { blake2s } from "@noble/hashes/blake2.js";
import { AEAD_TAG_LEN, type AeadKey, type CryptoBackend, KEY_LEN, XNONCE_LEN } from "./backend.ts";
import { AEAD_NONCE_LEN, checkAeadRange, NonceAeadKey } from "./aead_nonce.ts";

/** Length of the BLAKE2s MAC used by WireGuard (MAC1/MAC2/cookie). */
const MAC128_LEN = 16;

const ZEROS16 = new Uint8Array(16);

function checkKey(key: Uint8Array, what: string): void {
  if (!(key instanceof Uint8Array) || key.length !== KEY_LEN) {
    throw new TypeError(`${what} must be a ${KEY_LEN}-byte Uint8Array, got length ${key?.length}`);
  }
}

/** Constant-time comparison of `a[aOff, aOff+n)` and `b[0, n)`. */
function equalCt(a: Uint8Array, aOff: number, b: Uint8Array, n: number): boolean {
  let diff = 0;
  for (let i = 0; i < n; i++) diff |= a[aOff + i]! ^ b[i]!;
  return diff === 0;
}

/** One ChaCha20-Poly1305 key with its scratch buffers. */
class NobleAeadKey extends NonceAeadKey {
  readonly #key = new Uint8Array(KEY_LEN);
  readonly #polyKey = new Uint8Array(32);
  readonly #lengths = new Uint8Array(16);
  readonly #lengthsView = new DataView(this.#lengths.buffer);
  readonly #tag = new Uint8Array(AEAD_TAG_LEN);
  #disposed = false;

  constructor(key: Uint8Array) {
    checkKey(key, "ChaCha20-Poly1305 key");
    super(new Uint8Array(AEAD_NONCE_LEN));
    this.#key.set(key);
  }

  override dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#key.fill(0);
    this.#polyKey.fill(0);
  }

  protected sealCurrentNonce(aad: Uint8Array | null, buf: Uint8Array, off: number, len: number): number {
    checkAeadRange(buf, off, len, AEAD_TAG_LEN);
    const data = buf.subarray(off, off + len);
    this.#derivePolyKey();
    // RFC 8439 §2.8: the payload keystream starts at block counter 1 (block 0 made the one-time key).
    chacha20(this.#key, this.nonce, data, data, 1);
    this.#computeTag(aad, data);
    buf.set(this.#tag, off + len);
    return len + AEAD_TAG_LEN;
  }

  protected openCurrentNonce(aad: Uint8Array | null, buf: Uint8Array, off: number, len: number): number {
    if (len < AEAD_TAG_LEN) return -1;
    checkAeadRange(buf, off, len, 0);
    const ctLen = len - AEAD_TAG_LEN;
    const data = buf.subarray(off, off + ctLen);
    this.#derivePolyKey();
    // Authenticate before decrypting (RFC 8439 §2.8): nothing is touched when the tag is wrong.
    this.#computeTag(aad, data);
    if (!equalCt(buf, off + ctLen, this.#tag, AEAD_TAG_LEN)) return -1;
    chacha20(this.#key, this.nonce, data, data, 1);
    return ctLen;
  }

  /** Derives the Poly1305 one-time key from keystream block 0 (RFC 8439 §2.6). */
  #derivePolyKey(): void {
    if (this.#disposed) throw new Error("AeadKey used after dispose()");
    this.#polyKey.fill(0);
    chacha20(this.#key, this.nonce, this.#polyKey, this.#polyKey, 0);
  }

  /** Poly1305 over AAD || pad16 || ciphertext || pad16 || le64(len AAD) || le64(len ct) into #tag. */
  #computeTag(aad: Uint8Array | null, ct: Uint8Array): void {
    const mac = new Poly1305(this.#polyKey);
    const aadLen = aad === null ? 0 : aad.length;
    if (aad !== null && aadLen > 0) {
      mac.update(aad);
      if (aadLen % 16 !== 0) mac.update(ZEROS16.subarray(aadLen % 16));
    }
    mac.update(ct);
    if (ct.length % 16 !== 0) mac.update(ZEROS16.subarray(ct.length % 16));
    const v = this.#lengthsView;
    v.setUint32(0, aadLen >>> 0, true);
    v.setUint32(4, 0, true);
    v.setUint32(8, ct.length >>> 0, true);
    v.setUint32(12, 0, true);
    mac.update(this.#lengths);
    mac.digestInto(this.#tag);
  }
}

/** Throws unless `nonce` is a 24-byte XChaCha20 nonce. */
export function checkXNonce(nonce: Uint8Array): void {
  if (!(nonce instanceof Uint8Array) || nonce.length !== XNONCE_LEN) {
    throw new TypeError(`XChaCha20-Poly1305 nonce must be ${XNONCE_LEN} bytes, got length ${nonce?.length}`);
  }
}

/**
 * HChaCha20 (draft-irtf-cfrg-xchacha-03 §2.2): derives the XChaCha20 subkey from the key and the first
 * 16 nonce bytes. Returns a fresh 32-byte key. Used by the OpenSSL backend's XChaCha20-Poly1305.
 */
export function hchacha20(key: Uint8Array, nonce16: Uint8Array): Uint8Array {
  checkKey(key, "HChaCha20 key");
  // "expand 32-byte k" as little-endian words (RFC 8439 §2.3).
  const sigma = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);
  const k = new Uint32Array(8);
  const n = new Uint32Array(4);
  const kv = new DataView(key.buffer, key.byteOffset, KEY_LEN);
  const nv = new DataView(nonce16.buffer, nonce16.byteOffset, 16);
  for (let i = 0; i < 8; i++) k[i] = kv.getUint32(i * 4, true);
  for (let i = 0; i < 4; i++) n[i] = nv.getUint32(i * 4, true);
  const out = new Uint32Array(8);
  hchacha(sigma, k, n, out);
  const res = new Uint8Array(32);
  const rv = new DataView(res.buffer);
  for (let i = 0; i < 8; i++) rv.setUint32(i * 4, out[i]!, true);
  k.fill(0);
  out.fill(0);
  return res;
}

/** The all-zero check RFC 7748 §6.1 asks for (constant-time over 32 bytes). */
export function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < bytes.length; i++) acc |= bytes[i]!;
  return acc === 0;
}

function blake2sOf(parts: Uint8Array[], key: Uint8Array | undefined, dkLen: number): Uint8Array {
  const h = key === undefined ? blake2s.create({ dkLen }) : blake2s.create({ key, dkLen });
  for (let i = 0; i < parts.length; i++) h.update(parts[i]!);
  return h.digest();
}

/** Creates the noble-based backend. Stateless apart from per-key scratch; cheap to create. */
export function createNobleBackend(): CryptoBackend {
  return {
    name: "noble",
    aeadKey(key: Uint8Array): AeadKey {
      return new NobleAeadKey(key);
    },
    xaeadSeal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
      checkKey(key, "XChaCha20-Poly1305 key");
      checkXNonce(nonce);
      return xchacha20poly1305(key, nonce, aad).encrypt(plaintext);
    },
    xaeadOpen(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | null {
      checkKey(key, "XChaCha20-Poly1305 key");
      checkXNonce(nonce);
      if (sealed.length < AEAD_TAG_LEN) return null;
      try {
        return xchacha20poly1305(key, nonce, aad).decrypt(sealed);
      } catch {
        // noble signals a bad tag by throwing; this is the cookie path, not the data path.
        return null;
      }
    },
    x25519PublicKey(privateKey: Uint8Array): Uint8Array {
      checkKey(privateKey, "X25519 private key");
      return nobleX25519.getPublicKey(privateKey);
    },
    x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null {
      checkKey(privateKey, "X25519 private key");
      checkKey(publicKey, "X25519 public key");
      let shared: Uint8Array;
      try {
        shared = nobleX25519.getSharedSecret(privateKey, publicKey);
      } catch {
        // Lengths are checked above, so noble only throws for low-order points, whose shared
        // secret would be all zero (it rejects them before running the ladder).
        return null;
      }
      return isAllZero(shared) ? null : shared;
    },
    blake2s256(...parts: Uint8Array[]): Uint8Array {
      return blake2sOf(parts, undefined, 32);
    },
    blake2sMac128(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
      if (!(key instanceof Uint8Array) || key.length < 1 || key.length > KEY_LEN) {
        throw new TypeError(`BLAKE2s MAC key must be 1..${KEY_LEN} bytes, got length ${key?.length}`);
      }
      return blake2sOf(parts, key, MAC128_LEN);
    },
  };
}
