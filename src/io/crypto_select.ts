/**
 * Chooses the process's {@link CryptoBackend}: OpenSSL's libcrypto (fast) or noble (pure JS).
 *
 * @module
 */

import { openLibcrypto } from "../../ffi/libcrypto.ts";
import type { CryptoBackend } from "../crypto/backend.ts";
import { createNobleBackend } from "../crypto/noble_backend.ts";
import { logger } from "../log.ts";

const log = logger("fz_gateway::crypto");

/** The values `FZ_CRYPTO` accepts. */
export const CRYPTO_BACKEND_NAMES = ["openssl", "noble"] as const;

/**
 * Returns the crypto backend selected by `FZ_CRYPTO`:
 *
 * - `openssl`: OpenSSL 3's libcrypto; throws an `Error` naming `FZ_CRYPTO` when it cannot be loaded.
 * - `noble`: the pure-JS noble backend, even when libcrypto is present.
 * - unset (or empty): try OpenSSL, and if that fails use noble, logging one warning (target
 *   `fz_gateway::crypto`) with the reason and that data-path performance is reduced.
 *
 * The library path is `libPath`, else the `FZ_LIBCRYPTO_PATH` environment variable, else
 * `libcrypto.so.3` (found through the dynamic linker's search path).
 *
 * @param env the value of `FZ_CRYPTO` (read from the environment by default)
 * @param libPath the libcrypto to load (tests pass a bad path to simulate its absence)
 * @throws RangeError when `env` is set to anything else
 */
export function selectCryptoBackend(
  env: string | undefined = Deno.env.get("FZ_CRYPTO"),
  libPath: string = Deno.env.get("FZ_LIBCRYPTO_PATH") || "libcrypto.so.3",
): CryptoBackend {
  if (env === "noble") return createNobleBackend();
  if (env === "openssl") {
    try {
      return openLibcrypto(libPath);
    } catch (err) {
      throw new Error(
        `FZ_CRYPTO=openssl but OpenSSL libcrypto is unusable: ${errorMessage(err)}. ` +
          `Install OpenSSL 3 (libcrypto.so.3), point FZ_LIBCRYPTO_PATH at it, or unset FZ_CRYPTO.`,
        { cause: err },
      );
    }
  }
  if (env !== undefined && env !== "") {
    throw new RangeError(
      `Invalid FZ_CRYPTO value "${env}": expected one of ${CRYPTO_BACKEND_NAMES.join(", ")} ` +
        `(or unset to try openssl and fall back to noble)`,
    );
  }
  try {
    return openLibcrypto(libPath);
  } catch (err) {
    log.warn(
      "OpenSSL libcrypto unavailable, using the pure-JS noble crypto backend; WireGuard data-path " +
        "performance is reduced (roughly 10x slower encryption)",
      { reason: errorMessage(err), libPath },
    );
    return createNobleBackend();
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
