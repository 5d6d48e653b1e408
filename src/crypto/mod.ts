/**
 * Cryptography for WireGuard (Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s): the {@link CryptoBackend}
 * interface, the pure-JS noble backend, HMAC/KDF helpers and TAI64N timestamps.
 *
 * The OpenSSL backend lives in `ffi/libcrypto.ts` (it touches the OS); `src/io/crypto_select.ts`
 * chooses between the two at startup (`FZ_CRYPTO`).
 *
 * @module
 */

export { AEAD_TAG_LEN, type AeadKey, type CryptoBackend, KEY_LEN, XNONCE_LEN } from "./backend.ts";
export {
  AEAD_NONCE_LEN,
  type AeadKeyWithNonce,
  checkAeadNonce,
  checkAeadRange,
  hasExplicitNonce,
  writeWgNonce,
} from "./aead_nonce.ts";
export { checkXNonce, createNobleBackend, hchacha20, isAllZero } from "./noble_backend.ts";
export {
  BLAKE2S_BLOCK_LEN,
  BLAKE2S_HASH_LEN,
  type Blake2sHasher,
  hmacBlake2s,
  kdf1,
  kdf2,
  kdf3,
} from "./hkdf.ts";
export { compareTai64n, encodeTai64n, isTai64nNewer, TAI64N_LEN } from "./tai64n.ts";
