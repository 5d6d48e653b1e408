/** Shared helpers for the crypto tests: hex, fixtures, and the backends to loop over. */

import { openLibcrypto } from "../../../ffi/libcrypto.ts";
import type { CryptoBackend } from "../../../src/crypto/backend.ts";
import { createNobleBackend } from "../../../src/crypto/noble_backend.ts";

export function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, "");
  if (clean.length % 2 !== 0 || /[^0-9a-f]/i.test(clean)) throw new SyntaxError(`bad hex: ${s}`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += bytes[i]!.toString(16).padStart(2, "0");
  return s;
}

const VECTORS_DIR = new URL("../../fixtures/vectors/", import.meta.url);

/** Reads `tests/fixtures/vectors/<name>.hex`. */
export function hexFixture(name: string): Uint8Array {
  return hex(Deno.readTextFileSync(new URL(`${name}.hex`, VECTORS_DIR)).trim());
}

/** `tests/fixtures/vectors/crypto_vectors.json`. */
// deno-lint-ignore no-explicit-any
export const VECTORS: any = JSON.parse(
  Deno.readTextFileSync(new URL("crypto_vectors.json", VECTORS_DIR)),
);

function tryOpenssl(): { backend: CryptoBackend | null; why: string } {
  try {
    return { backend: openLibcrypto(), why: "" };
  } catch (err) {
    return { backend: null, why: err instanceof Error ? err.message : String(err) };
  }
}

const openssl = tryOpenssl();
if (openssl.backend === null) {
  // deno-lint-ignore no-console
  console.warn(`crypto tests: skipping the openssl backend: ${openssl.why}`);
}

/** Both backends (openssl only when libcrypto loads; the reason is printed otherwise). */
export const BACKENDS: { name: string; backend: CryptoBackend | null }[] = [
  { name: "noble", backend: createNobleBackend() },
  { name: "openssl", backend: openssl.backend },
];

/** The openssl backend, or null when libcrypto is absent. */
export const OPENSSL: CryptoBackend | null = openssl.backend;
