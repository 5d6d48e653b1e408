/**
 * Reads or creates the persisted gateway identity (`/var/lib/firezone/gateway_id`, spec §1.3).
 *
 * Reproduces upstream exactly: a non-empty `FIREZONE_ID` wins; else the raw file text is used
 * verbatim when non-empty (quirk: after the first start that is `{"id":"<hex>"}` itself); else the
 * directory is created (mode 0770), an existing `{"id": ...}` document is reused, or a new ID is
 * written atomically without overwriting anything (mode 0640).
 *
 * @module
 */

import {
  chooseExistingId,
  DEFAULT_STATE_DIR,
  formatIdFile,
  GATEWAY_ID_FILE_NAME,
  generateId,
  ID_FILE_MODE,
  identityErrorMessage,
  parseIdFile,
  STATE_DIR_MODE,
} from "../identity.ts";
import type { Rng } from "../rng.ts";

/** The identity could not be read nor written; the message is upstream's. */
export class IdentityError extends Error {
  override name = "IdentityError";
}

/** Options for {@link resolveFirezoneId}. */
export interface IdentityStoreOptions {
  /** Directory holding `gateway_id`; `/var/lib/firezone` unless a test injects another. */
  stateDir?: string;
  /** Randomness for a new ID. */
  rng: Rng;
}

/**
 * The Firezone ID to use for this run.
 *
 * @param cliId `--firezone-id` / `FIREZONE_ID` (undefined or empty when not given)
 * @throws IdentityError when the file can neither be read nor created
 */
export async function resolveFirezoneId(
  cliId: string | undefined,
  options: IdentityStoreOptions,
): Promise<string> {
  const dir = options.stateDir ?? DEFAULT_STATE_DIR;
  const path = `${dir}/${GATEWAY_ID_FILE_NAME}`;
  const existing = chooseExistingId(cliId, await readOrNull(path));
  if (existing !== null) return existing;
  try {
    return await getOrCreate(dir, path, options.rng);
  } catch (cause) {
    throw new IdentityError(`${identityErrorMessage(dir)}: ${describe(cause)}`, { cause });
  }
}

async function getOrCreate(dir: string, path: string, rng: Rng): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.chmod(dir, STATE_DIR_MODE);
  const text = await readOrNull(path);
  const stored = text === null ? null : parseIdFile(text);
  if (stored !== null) return stored;
  const id = generateId(rng);
  await writeNew(dir, path, formatIdFile(id), rng);
  await Deno.chmod(path, ID_FILE_MODE);
  return id;
}

/** Atomic create that refuses to overwrite: write a temp file, then hard-link it into place. */
async function writeNew(dir: string, path: string, content: string, rng: Rng): Promise<void> {
  const tmp = `${dir}/.${GATEWAY_ID_FILE_NAME}.${rng.nextU32().toString(16)}.tmp`;
  await Deno.writeTextFile(tmp, content, { createNew: true, mode: ID_FILE_MODE });
  try {
    await Deno.link(tmp, path);
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}

async function readOrNull(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return null;
  }
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
