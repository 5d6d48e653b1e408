/**
 * A node's static X25519 identity plus the per-key values every handshake needs (MAC1 and cookie keys),
 * computed once and shared by all tunnels and the rate limiter of the node.
 *
 * @module
 */

import type { CryptoBackend } from "../crypto/backend.ts";
import { KEY_LEN } from "../crypto/backend.ts";
import { LABEL_COOKIE, LABEL_MAC1 } from "./constants.ts";

const ENCODER = new TextEncoder();
const LABEL_MAC1_BYTES = ENCODER.encode(LABEL_MAC1);
const LABEL_COOKIE_BYTES = ENCODER.encode(LABEL_COOKIE);

/** MAC1 key for messages sent to the owner of `publicKey`: HASH(LABEL_MAC1 || publicKey). */
export function mac1KeyFor(backend: CryptoBackend, publicKey: Uint8Array): Uint8Array {
  return backend.blake2s256(LABEL_MAC1_BYTES, publicKey);
}

/** Cookie-reply key of the owner of `publicKey`: HASH(LABEL_COOKIE || publicKey). */
export function cookieKeyFor(backend: CryptoBackend, publicKey: Uint8Array): Uint8Array {
  return backend.blake2s256(LABEL_COOKIE_BYTES, publicKey);
}

/** Our static key pair and the keys derived from our public key. Immutable. */
export class StaticIdentity {
  /** X25519 private key (32 bytes). Never log it. */
  readonly privateKey: Uint8Array;
  /** X25519 public key (32 bytes). */
  readonly publicKey: Uint8Array;
  /** HASH(LABEL_MAC1 || publicKey): verifies MAC1 of handshake messages sent to us. */
  readonly mac1Key: Uint8Array;
  /** HASH(LABEL_COOKIE || publicKey): encrypts the cookie replies we send. */
  readonly cookieKey: Uint8Array;

  /**
   * Derives the identity of `privateKey`.
   * @throws TypeError when the key is not 32 bytes
   */
  constructor(backend: CryptoBackend, privateKey: Uint8Array) {
    if (!(privateKey instanceof Uint8Array) || privateKey.length !== KEY_LEN) {
      throw new TypeError(`A WireGuard private key is ${KEY_LEN} bytes, got length ${privateKey?.length}`);
    }
    this.privateKey = privateKey.slice();
    this.publicKey = backend.x25519PublicKey(this.privateKey);
    this.mac1Key = mac1KeyFor(backend, this.publicKey);
    this.cookieKey = cookieKeyFor(backend, this.publicKey);
  }
}
