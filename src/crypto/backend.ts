/**
 * The one interface both crypto backends implement: OpenSSL's libcrypto through FFI
 * (`ffi/libcrypto.ts`, the fast path) and the noble libraries (`src/crypto/noble_backend.ts`, the
 * fallback). Everything is synchronous. The AEAD works in place on caller-owned buffers so the data
 * path allocates nothing per packet.
 *
 * @module
 */

/** ChaCha20-Poly1305 / XChaCha20-Poly1305 tag length. */
export const AEAD_TAG_LEN = 16;
/** Symmetric key length (ChaCha20, BLAKE2s, X25519). */
export const KEY_LEN = 32;
/** XChaCha20-Poly1305 nonce length (cookie replies). */
export const XNONCE_LEN = 24;

/**
 * A ChaCha20-Poly1305 (RFC 8439) key bound to a reusable cipher context. The 96-bit nonce is WireGuard's:
 * 4 zero bytes followed by the 64-bit little-endian `counter`.
 *
 * `counter` is a non-negative safe integer (WireGuard rekeys long before 2^53).
 */
export interface AeadKey {
  /**
   * Hot path: encrypts `buf[off, off + len)` in place and writes the 16-byte tag right after it.
   * The caller guarantees 16 bytes of tailroom.
   * @returns `len + 16`
   */
  seal(counter: number, aad: Uint8Array | null, buf: Uint8Array, off: number, len: number): number;
  /**
   * Hot path: verifies and decrypts `buf[off, off + len)` (ciphertext followed by its tag) in place.
   * @returns the plaintext length (`len - 16`), or -1 when the tag does not verify or `len < 16`
   */
  open(counter: number, aad: Uint8Array | null, buf: Uint8Array, off: number, len: number): number;
  /** Releases native resources; the key must not be used afterwards. Idempotent. */
  dispose(): void;
}

/** The primitives WireGuard needs. */
export interface CryptoBackend {
  readonly name: "openssl" | "noble";
  /** A ChaCha20-Poly1305 key for many operations (one per session direction). */
  aeadKey(key: Uint8Array): AeadKey;
  /** XChaCha20-Poly1305 seal (cookie replies; allocates). Returns ciphertext || tag. */
  xaeadSeal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /** XChaCha20-Poly1305 open; null when the tag does not verify. */
  xaeadOpen(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | null;
  /** The X25519 public key for a 32-byte private key (RFC 7748 clamping applies). */
  x25519PublicKey(privateKey: Uint8Array): Uint8Array;
  /** X25519(privateKey, publicKey). Returns null for an all-zero result (low-order point). */
  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null;
  /** BLAKE2s-256 of the concatenation of `parts`. */
  blake2s256(...parts: Uint8Array[]): Uint8Array;
  /** Keyed BLAKE2s with a 16-byte output (WireGuard MAC1/MAC2 and the cookie). */
  blake2sMac128(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array;
}
