/**
 * The fast {@link CryptoBackend}: OpenSSL 3's libcrypto through `Deno.dlopen`.
 *
 * - ChaCha20-Poly1305: one `EVP_CIPHER_CTX` per {@link AeadKey} and direction, keyed once (created on
 *   the first use of that direction). Per packet only the IV is set (`EVP_CipherInit_ex` with NULL
 *   cipher and key), then `EVP_CipherUpdate` for the AAD and, in place, for the data, `EVP_CipherFinal_ex`
 *   and `EVP_CIPHER_CTX_ctrl` GET_TAG/SET_TAG. No JS allocation per packet when the caller reuses a
 *   buffer at a fixed offset, otherwise one small BigInt for the data address (see {@link dataAddress}
 *   for why that beat passing a `subarray` view).
 * - XChaCha20-Poly1305 (not in OpenSSL): HChaCha20 (noble's `hchacha`, via `src/crypto`) derives the
 *   subkey, then OpenSSL's ChaCha20-Poly1305 seals with nonce `0^4 || nonce[16..24]`
 *   (draft-irtf-cfrg-xchacha-03 §2.3).
 * - X25519: `EVP_PKEY_new_raw_private_key` / `EVP_PKEY_derive` (OpenSSL refuses an all-zero result,
 *   which maps to `null`).
 * - BLAKE2s-256: `EVP_MD_fetch("BLAKE2S-256")` on one reused `EVP_MD_CTX`; keyed BLAKE2s-128:
 *   `EVP_MAC_fetch("BLAKE2SMAC")` with `size = 16`.
 *
 * Contexts are per backend or per key and not shared across threads: each Worker opens its own backend.
 *
 * @module
 */

import { AEAD_TAG_LEN, type AeadKey, type CryptoBackend, KEY_LEN } from "../src/crypto/backend.ts";
import { AEAD_NONCE_LEN, checkAeadRange, NonceAeadKey } from "../src/crypto/aead_nonce.ts";
import { checkXNonce, hchacha20 } from "../src/crypto/noble_backend.ts";

/** Default soname of OpenSSL 3's libcrypto on Linux. */
export const DEFAULT_LIBCRYPTO_PATH = "libcrypto.so.3";

const EVP_CTRL_AEAD_GET_TAG = 0x10;
const EVP_CTRL_AEAD_SET_TAG = 0x11;
/** `EVP_PKEY_X25519` = `NID_X25519`. */
const EVP_PKEY_X25519 = 1034;
/** `OSSL_PARAM_UNSIGNED_INTEGER` (openssl/core.h). */
const OSSL_PARAM_UNSIGNED_INTEGER = 2;
/** `sizeof(OSSL_PARAM)` on LP64: key ptr, uint data_type (+4 pad), data ptr, data_size, return_size. */
const OSSL_PARAM_SIZE = 40;
/** OpenSSL 3.0.0's `OPENSSL_VERSION_NUMBER`. */
const OPENSSL_3_VERSION = 0x3000_0000n;
const BLAKE2S_256_LEN = 32;
const BLAKE2S_MAC_LEN = 16;
const X25519_LEN = 32;

const SYMBOLS = {
  OpenSSL_version_num: { parameters: [], result: "u64" },
  ERR_clear_error: { parameters: [], result: "void" },
  EVP_chacha20_poly1305: { parameters: [], result: "pointer" },
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  EVP_CIPHER_CTX_free: { parameters: ["pointer"], result: "void" },
  // (ctx, cipher, engine, key, iv, enc)
  EVP_CipherInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  // Data in place: (ctx, out address, int *outl, in address, inl); see dataAddress().
  EVP_CipherUpdate: { parameters: ["pointer", "usize", "buffer", "usize", "i32"], result: "i32" },
  // AAD: (ctx, NULL, int *outl, aad, aadl).
  EVP_CipherUpdateAad: {
    name: "EVP_CipherUpdate",
    parameters: ["pointer", "pointer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  EVP_CipherFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_CIPHER_CTX_ctrl: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
  EVP_PKEY_new_raw_private_key: {
    parameters: ["i32", "pointer", "buffer", "usize"],
    result: "pointer",
  },
  EVP_PKEY_new_raw_public_key: {
    parameters: ["i32", "pointer", "buffer", "usize"],
    result: "pointer",
  },
  EVP_PKEY_get_raw_public_key: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_PKEY_free: { parameters: ["pointer"], result: "void" },
  EVP_PKEY_CTX_new: { parameters: ["pointer", "pointer"], result: "pointer" },
  EVP_PKEY_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_PKEY_derive_init: { parameters: ["pointer"], result: "i32" },
  EVP_PKEY_derive_set_peer: { parameters: ["pointer", "pointer"], result: "i32" },
  EVP_PKEY_derive: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_MD_fetch: { parameters: ["pointer", "buffer", "pointer"], result: "pointer" },
  EVP_MD_CTX_new: { parameters: [], result: "pointer" },
  EVP_DigestInit_ex: { parameters: ["pointer", "pointer", "pointer"], result: "i32" },
  EVP_DigestUpdate: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  EVP_DigestFinal_ex: { parameters: ["pointer", "buffer", "pointer"], result: "i32" },
  EVP_MAC_fetch: { parameters: ["pointer", "buffer", "pointer"], result: "pointer" },
  EVP_MAC_CTX_new: { parameters: ["pointer"], result: "pointer" },
  EVP_MAC_init: { parameters: ["pointer", "buffer", "usize", "buffer"], result: "i32" },
  EVP_MAC_update: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  EVP_MAC_final: { parameters: ["pointer", "buffer", "buffer", "usize"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Thrown when libcrypto cannot be loaded or is unusable; the message says why. */
export class LibcryptoUnavailableError extends Error {
  override name = "LibcryptoUnavailableError";
}

/** NUL-terminated C string. */
function cString(s: string): Uint8Array {
  return new TextEncoder().encode(s + "\0");
}

const loaded = new Map<string, Lib>();

function loadLibrary(path: string): Lib {
  const cached = loaded.get(path);
  if (cached !== undefined) return cached;
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen(path, SYMBOLS);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new LibcryptoUnavailableError(
      `cannot load OpenSSL libcrypto from "${path}" (need OpenSSL 3 with the EVP symbols): ${why}`,
    );
  }
  const version = lib.symbols.OpenSSL_version_num();
  if (version < OPENSSL_3_VERSION) {
    lib.close();
    throw new LibcryptoUnavailableError(
      `"${path}" is OpenSSL 0x${version.toString(16)}; OpenSSL 3 or newer is required`,
    );
  }
  loaded.set(path, lib.symbols);
  return lib.symbols;
}

// --- Data addresses --------------------------------------------------------------------------------

/** The base address of one ArrayBuffer, and the last data pointer handed out for it. */
interface AddressEntry {
  base: number;
  lastAddr: number;
  lastPtr: bigint;
  /** BigInt per byte offset seen in this buffer (packet arenas use a bounded set of offsets). */
  readonly byOffset: Map<number, bigint>;
}

/** Offsets cached per buffer before the cache is reset (bounds memory for buffers used at random offsets). */
const MAX_CACHED_OFFSETS = 16_384;

/**
 * Keyed on the ArrayBuffer object (backing stores do not move), so a different buffer never reuses a
 * stale address; a detached buffer has length 0 and fails the bounds check before its entry is used.
 */
const addresses = new WeakMap<ArrayBufferLike, AddressEntry>();

/**
 * Address of `buf[off]` as the BigInt an FFI "usize" parameter takes.
 *
 * Measured here (Deno 2.9.6, OpenSSL 3.0, 1420-byte seal, 1 M calls, `--trace-gc`): a "usize" data
 * parameter passed a BigInt from this cache: ~1.10 µs/seal and 21 scavenges; a "buffer" parameter
 * passed a fresh `subarray` view: ~1.24 µs and 52 scavenges. A plain number for a "usize" parameter is
 * accepted but leaves V8's fast-call path (~140 ns per call instead of ~25 ns), so it is not used.
 * One BigInt per (buffer, offset) is kept, so a caller that reuses packet arenas (the data path)
 * allocates nothing in the steady state; a new offset costs one small BigInt once.
 *
 * Reading `buf.buffer` first also makes V8 move a small on-heap typed array's data to a fixed
 * off-heap backing store before its address is taken.
 */
function dataAddress(buf: Uint8Array, off: number): bigint {
  const ab = buf.buffer;
  let entry = addresses.get(ab);
  if (entry === undefined) {
    const base = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf))) - buf.byteOffset;
    entry = { base, lastAddr: -1, lastPtr: 0n, byOffset: new Map() };
    addresses.set(ab, entry);
  }
  const rel = buf.byteOffset + off;
  const addr = entry.base + rel;
  if (addr !== entry.lastAddr) {
    // Packet arenas are used at a bounded set of slot offsets: keep one BigInt per offset so the
    // steady state allocates nothing even when consecutive packets sit in different slots.
    let ptr = entry.byOffset.get(rel);
    if (ptr === undefined) {
      if (entry.byOffset.size >= MAX_CACHED_OFFSETS) entry.byOffset.clear();
      ptr = BigInt(addr);
      entry.byOffset.set(rel, ptr);
    }
    entry.lastAddr = addr;
    entry.lastPtr = ptr;
  }
  return entry.lastPtr;
}

// --- ChaCha20-Poly1305 -----------------------------------------------------------------------------

interface CtxHandle {
  enc: Deno.PointerValue;
  dec: Deno.PointerValue;
}

/** Frees the contexts of keys that were garbage-collected without dispose(). */
const ctxFinalizer = new FinalizationRegistry<{ lib: Lib; handle: CtxHandle }>(({ lib, handle }) => {
  freeCtxs(lib, handle);
});

function freeCtxs(lib: Lib, handle: CtxHandle): void {
  if (handle.enc !== null) lib.EVP_CIPHER_CTX_free(handle.enc);
  if (handle.dec !== null) lib.EVP_CIPHER_CTX_free(handle.dec);
  handle.enc = null;
  handle.dec = null;
}

class OpenSslAeadKey extends NonceAeadKey {
  readonly #lib: Lib;
  readonly #cipher: Deno.PointerValue;
  readonly #key = new Uint8Array(KEY_LEN);
  readonly #handle: CtxHandle = { enc: null, dec: null };
  // Scratch views on one explicit ArrayBuffer: always off-heap, so "buffer" parameters get a stable
  // pointer on V8's fast-call path (tiny `new Uint8Array(n)` arrays start out on the JS heap).
  // The nonce (in the base class) is at offset 0 of it.
  readonly #tag: Uint8Array;
  readonly #outl: Int32Array;
  /** Final's output for a stream cipher is empty, but OpenSSL wants a pointer. */
  readonly #finalOut: Uint8Array;
  #disposed = false;

  constructor(lib: Lib, cipher: Deno.PointerValue, key: Uint8Array) {
    if (!(key instanceof Uint8Array) || key.length !== KEY_LEN) {
      throw new TypeError(`ChaCha20-Poly1305 key must be a ${KEY_LEN}-byte Uint8Array, got ${key?.length}`);
    }
    const scratch = new ArrayBuffer(64);
    super(new Uint8Array(scratch, 0, AEAD_NONCE_LEN));
    this.#tag = new Uint8Array(scratch, 16, AEAD_TAG_LEN);
    this.#outl = new Int32Array(scratch, 32, 1);
    this.#finalOut = new Uint8Array(scratch, 48, 16);
    this.#lib = lib;
    this.#cipher = cipher;
    this.#key.set(key);
    ctxFinalizer.register(this, { lib, handle: this.#handle }, this);
  }

  override dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#key.fill(0);
    ctxFinalizer.unregister(this);
    freeCtxs(this.#lib, this.#handle);
  }

  protected sealCurrentNonce(aad: Uint8Array | null, buf: Uint8Array, off: number, len: number): number {
    checkAeadRange(buf, off, len, AEAD_TAG_LEN);
    const lib = this.#lib;
    const ctx = this.#handle.enc ?? this.#newCtx(1);
    let ok = lib.EVP_CipherInit_ex(ctx, null, null, null, this.nonce, 1);
    if (ok === 1 && aad !== null && aad.length > 0) {
      ok = lib.EVP_CipherUpdateAad(ctx, null, this.#outl, aad, aad.length);
    }
    if (ok === 1 && len > 0) {
      const p = dataAddress(buf, off);
      ok = lib.EVP_CipherUpdate(ctx, p, this.#outl, p, len);
    }
    if (ok === 1) ok = lib.EVP_CipherFinal_ex(ctx, this.#finalOut, this.#outl);
    if (ok === 1) ok = lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG_LEN, this.#tag);
    if (ok !== 1) {
      lib.ERR_clear_error();
      throw new Error("OpenSSL ChaCha20-Poly1305 encryption failed");
    }
    const tag = this.#tag;
    const t = off + len;
    for (let i = 0; i < AEAD_TAG_LEN; i++) buf[t + i] = tag[i]!;
    return len + AEAD_TAG_LEN;
  }

  protected openCurrentNonce(aad: Uint8Array | null, buf: Uint8Array, off: number, len: number): number {
    if (len < AEAD_TAG_LEN) return -1;
    checkAeadRange(buf, off, len, 0);
    const ctLen = len - AEAD_TAG_LEN;
    const lib = this.#lib;
    const ctx = this.#handle.dec ?? this.#newCtx(0);
    const tag = this.#tag;
    const t = off + ctLen;
    for (let i = 0; i < AEAD_TAG_LEN; i++) tag[i] = buf[t + i]!;
    let ok = lib.EVP_CipherInit_ex(ctx, null, null, null, this.nonce, 0);
    if (ok === 1) ok = lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG_LEN, tag);
    if (ok === 1 && aad !== null && aad.length > 0) {
      ok = lib.EVP_CipherUpdateAad(ctx, null, this.#outl, aad, aad.length);
    }
    if (ok === 1 && ctLen > 0) {
      // OpenSSL decrypts while it authenticates; on a bad tag the plaintext in `buf` is garbage, which
      // the -1 tells the caller to discard (the data path drops such packets).
      const p = dataAddress(buf, off);
      ok = lib.EVP_CipherUpdate(ctx, p, this.#outl, p, ctLen);
    }
    if (ok === 1) ok = lib.EVP_CipherFinal_ex(ctx, this.#finalOut, this.#outl);
    if (ok !== 1) {
      lib.ERR_clear_error();
      return -1;
    }
    return ctLen;
  }

  #newCtx(enc: 0 | 1): Deno.PointerObject {
    if (this.#disposed) throw new Error("AeadKey used after dispose()");
    const lib = this.#lib;
    const ctx = lib.EVP_CIPHER_CTX_new();
    if (ctx === null) throw new Error("EVP_CIPHER_CTX_new failed (out of memory?)");
    if (lib.EVP_CipherInit_ex(ctx, this.#cipher, null, this.#key, null, enc) !== 1) {
      lib.EVP_CIPHER_CTX_free(ctx);
      lib.ERR_clear_error();
      throw new Error("EVP_CipherInit_ex(ChaCha20-Poly1305) failed");
    }
    if (enc === 1) this.#handle.enc = ctx;
    else this.#handle.dec = ctx;
    return ctx;
  }
}

// --- The backend -----------------------------------------------------------------------------------

function checkLen(bytes: Uint8Array, want: number, what: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== want) {
    throw new TypeError(`${what} must be a ${want}-byte Uint8Array, got length ${bytes?.length}`);
  }
}

function fail(lib: Lib, what: string): never {
  lib.ERR_clear_error();
  throw new Error(`OpenSSL ${what} failed`);
}

/**
 * Opens OpenSSL 3's libcrypto and returns a backend on it.
 *
 * @param path the library to `dlopen` (a soname or a file path)
 * @throws LibcryptoUnavailableError (an `Error`) when the library cannot be opened, a symbol is
 *   missing, it is older than OpenSSL 3, or an algorithm (ChaCha20-Poly1305, BLAKE2s) is unavailable
 */
export function openLibcrypto(path: string = DEFAULT_LIBCRYPTO_PATH): CryptoBackend {
  const lib = loadLibrary(path);
  const cipher = lib.EVP_chacha20_poly1305();
  const md = lib.EVP_MD_fetch(null, cString("BLAKE2S-256"), null);
  const mac = lib.EVP_MAC_fetch(null, cString("BLAKE2SMAC"), null);
  const mdCtx = lib.EVP_MD_CTX_new();
  const macCtx = mac === null ? null : lib.EVP_MAC_CTX_new(mac);
  if (cipher === null || md === null || mac === null || mdCtx === null || macCtx === null) {
    lib.ERR_clear_error();
    const missing = cipher === null ? "ChaCha20-Poly1305" : md === null ? "BLAKE2S-256" : "BLAKE2SMAC";
    throw new LibcryptoUnavailableError(`OpenSSL at "${path}" does not provide ${missing}`);
  }
  // These live as long as the process (the backend has no dispose()).

  // OSSL_PARAM[] { { "size", UNSIGNED_INTEGER, &size, sizeof(size_t), UNMODIFIED }, END }, with the
  // key string and the size_t value in the same buffer so they live exactly as long as the array
  // (the closures below keep `macParams` alive).
  const macParams = new Uint8Array(new ArrayBuffer(OSSL_PARAM_SIZE * 2 + 16));
  const paramsBase = Deno.UnsafePointer.value(Deno.UnsafePointer.of(macParams));
  const sizeValueOff = OSSL_PARAM_SIZE * 2;
  const sizeKeyOff = sizeValueOff + 8;
  macParams.set(cString("size"), sizeKeyOff);
  const pv = new DataView(macParams.buffer);
  pv.setBigUint64(sizeValueOff, BigInt(BLAKE2S_MAC_LEN), true);
  pv.setBigUint64(0, paramsBase + BigInt(sizeKeyOff), true);
  pv.setUint32(8, OSSL_PARAM_UNSIGNED_INTEGER, true);
  pv.setBigUint64(16, paramsBase + BigInt(sizeValueOff), true);
  pv.setBigUint64(24, 8n, true);
  pv.setBigUint64(32, 0xffff_ffff_ffff_ffffn, true);
  // macParams[40, 80) stays zero: the terminating OSSL_PARAM_END.

  const sizeOut = new BigUint64Array(new ArrayBuffer(8));
  const hashOut = new Uint8Array(new ArrayBuffer(BLAKE2S_256_LEN));

  function xaead(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, input: Uint8Array, enc: boolean) {
    checkLen(key, KEY_LEN, "XChaCha20-Poly1305 key");
    checkXNonce(nonce);
    const subkey = hchacha20(key, nonce.subarray(0, 16));
    const n = new Uint8Array(AEAD_NONCE_LEN);
    n.set(nonce.subarray(16, 24), 4);
    const k = new OpenSslAeadKey(lib, cipher, subkey);
    subkey.fill(0);
    try {
      if (enc) {
        const out = new Uint8Array(input.length + AEAD_TAG_LEN);
        out.set(input);
        k.sealWithNonce(n, aad, out, 0, input.length);
        return out;
      }
      if (input.length < AEAD_TAG_LEN) return null;
      const out = input.slice();
      const ptLen = k.openWithNonce(n, aad, out, 0, out.length);
      return ptLen < 0 ? null : out.subarray(0, ptLen);
    } finally {
      k.dispose();
    }
  }

  return {
    name: "openssl",
    aeadKey(key: Uint8Array): AeadKey {
      return new OpenSslAeadKey(lib, cipher, key);
    },
    xaeadSeal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
      return xaead(key, nonce, aad, plaintext, true)!;
    },
    xaeadOpen(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | null {
      return xaead(key, nonce, aad, sealed, false);
    },
    x25519PublicKey(privateKey: Uint8Array): Uint8Array {
      checkLen(privateKey, X25519_LEN, "X25519 private key");
      const pkey = lib.EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, null, privateKey, BigInt(X25519_LEN));
      if (pkey === null) fail(lib, "EVP_PKEY_new_raw_private_key");
      const out = new Uint8Array(X25519_LEN);
      sizeOut[0] = BigInt(X25519_LEN);
      const ok = lib.EVP_PKEY_get_raw_public_key(pkey, out, sizeOut);
      lib.EVP_PKEY_free(pkey);
      if (ok !== 1) fail(lib, "EVP_PKEY_get_raw_public_key");
      return out;
    },
    x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null {
      checkLen(privateKey, X25519_LEN, "X25519 private key");
      checkLen(publicKey, X25519_LEN, "X25519 public key");
      const priv = lib.EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, null, privateKey, BigInt(X25519_LEN));
      const peer = lib.EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, null, publicKey, BigInt(X25519_LEN));
      const ctx = priv === null ? null : lib.EVP_PKEY_CTX_new(priv, null);
      try {
        if (priv === null || peer === null || ctx === null) fail(lib, "X25519 key setup");
        if (lib.EVP_PKEY_derive_init(ctx) !== 1 || lib.EVP_PKEY_derive_set_peer(ctx, peer) !== 1) {
          fail(lib, "X25519 derive setup");
        }
        const out = new Uint8Array(X25519_LEN);
        sizeOut[0] = BigInt(X25519_LEN);
        if (lib.EVP_PKEY_derive(ctx, out, sizeOut) !== 1) {
          // OpenSSL's X25519 derive fails exactly when the shared secret is all zero (a low-order
          // peer point, RFC 7748 §6.1); the inputs are otherwise well-formed here.
          lib.ERR_clear_error();
          return null;
        }
        return out;
      } finally {
        if (ctx !== null) lib.EVP_PKEY_CTX_free(ctx);
        if (peer !== null) lib.EVP_PKEY_free(peer);
        if (priv !== null) lib.EVP_PKEY_free(priv);
      }
    },
    blake2s256(...parts: Uint8Array[]): Uint8Array {
      if (lib.EVP_DigestInit_ex(mdCtx, md, null) !== 1) fail(lib, "EVP_DigestInit_ex(BLAKE2S-256)");
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i]!;
        if (part.length > 0 && lib.EVP_DigestUpdate(mdCtx, part, BigInt(part.length)) !== 1) {
          fail(lib, "EVP_DigestUpdate");
        }
      }
      if (lib.EVP_DigestFinal_ex(mdCtx, hashOut, null) !== 1) fail(lib, "EVP_DigestFinal_ex");
      return hashOut.slice();
    },
    blake2sMac128(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
      if (!(key instanceof Uint8Array) || key.length < 1 || key.length > KEY_LEN) {
        throw new TypeError(`BLAKE2s MAC key must be 1..${KEY_LEN} bytes, got length ${key?.length}`);
      }
      if (lib.EVP_MAC_init(macCtx, key, BigInt(key.length), macParams) !== 1) fail(lib, "EVP_MAC_init");
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i]!;
        if (part.length > 0 && lib.EVP_MAC_update(macCtx, part, BigInt(part.length)) !== 1) {
          fail(lib, "EVP_MAC_update");
        }
      }
      const out = new Uint8Array(BLAKE2S_MAC_LEN);
      if (lib.EVP_MAC_final(macCtx, out, sizeOut, BigInt(BLAKE2S_MAC_LEN)) !== 1) fail(lib, "EVP_MAC_final");
      return out;
    },
  };
}
