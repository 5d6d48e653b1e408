/**
 * The pure rules of the gateway identity (spec §1.3): which `FIREZONE_ID` to use, how a new one is
 * generated, the content of `/var/lib/firezone/gateway_id`, and the `external_id` transform.
 *
 * The file system part lives in `src/io/identity_store.ts`.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import type { Rng } from "./rng.ts";
import { isUuid, randomUuidV4 } from "./portal/uuid.ts";

/** Where the upstream gateway keeps its identity. */
export const DEFAULT_STATE_DIR = "/var/lib/firezone";
/** File name of the persisted identity inside the state directory. */
export const GATEWAY_ID_FILE_NAME = "gateway_id";
/** Mode of the state directory (upstream `chmod 0770`). */
export const STATE_DIR_MODE = 0o770;
/** Mode of the identity file (upstream `chmod 0640`). */
export const ID_FILE_MODE = 0o640;

/**
 * The upstream error text when no identity can be read or written, with the state directory of
 * this run (the default directory gives the exact upstream message).
 */
export function identityErrorMessage(stateDir: string = DEFAULT_STATE_DIR): string {
  const dir = stateDir.endsWith("/") ? stateDir : `${stateDir}/`;
  return `Couldn't read FIREZONE_ID or write it to disk: Please provide it through the env variable or provide rw access to ${dir}`;
}

/**
 * Step 1 and 2 of the lookup: a non-empty `--firezone-id` wins; else the raw text of the file if it
 * is non-empty, **verbatim** (no trimming, no JSON parsing: the upstream quirk that makes the second
 * start use `{"id":"<hex>"}` as the ID). Returns null when step 3 (create) has to run.
 */
export function chooseExistingId(cliId: string | undefined, rawFileText: string | null): string | null {
  if (cliId !== undefined && cliId !== "") return cliId;
  if (rawFileText !== null && rawFileText !== "") return rawFileText;
  return null;
}

/** The `id` of a `{"id": "<string>"}` document (other fields ignored), or null. */
export function parseIdFile(text: string): string | null {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return null;
  const id = (doc as Record<string, unknown>).id;
  return typeof id === "string" ? id : null;
}

/** The file content upstream writes: `{"id":"<id>"}` (no newline). */
export function formatIdFile(id: string): string {
  return JSON.stringify({ id });
}

/** A new identity: lowercase hex SHA-256 of a random UUIDv4 in hyphenated form (64 hex digits). */
export function generateId(rng: Rng): string {
  return sha256Hex(randomUuidV4(rng));
}

/**
 * The `external_id` sent to the portal: the lowercase hex SHA-256 of the ID string exactly as given
 * when it parses as a UUID in any accepted form, otherwise the ID verbatim.
 */
export function externalIdFor(firezoneId: string): string {
  return isUuid(firezoneId) ? sha256Hex(firezoneId) : firezoneId;
}

function sha256Hex(text: string): string {
  return bytesToHex(sha256(new TextEncoder().encode(text)));
}
