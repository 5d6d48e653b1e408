/**
 * UUID text forms as the Rust `uuid` crate parses them (the portal and the gateway ID rules use it).
 *
 * Accepted: hyphenated (`67e55044-10b1-426f-9247-bb680e5fe0c8`), simple (32 hex digits), braced
 * (`{hyphenated}`) and URN (`urn:uuid:hyphenated`, prefix in lower case). Hex digits in any case.
 * No version or variant check. Pure.
 *
 * @module
 */

import type { Rng } from "../rng.ts";

const HYPHENATED = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const SIMPLE = /^[0-9a-fA-F]{32}$/;

/**
 * Parses any accepted UUID form and returns it lowercase and hyphenated, or null when `text` is not
 * a UUID.
 */
export function parseUuid(text: string): string | null {
  let body: string;
  if (text.length === 32) {
    if (!SIMPLE.test(text)) return null;
    const t = text.toLowerCase();
    return `${t.slice(0, 8)}-${t.slice(8, 12)}-${t.slice(12, 16)}-${t.slice(16, 20)}-${t.slice(20)}`;
  } else if (text.length === 36) {
    body = text;
  } else if (text.length === 38 && text.startsWith("{") && text.endsWith("}")) {
    body = text.slice(1, -1);
  } else if (text.length === 45 && text.startsWith("urn:uuid:")) {
    body = text.slice(9);
  } else {
    return null;
  }
  return HYPHENATED.test(body) ? body.toLowerCase() : null;
}

/** True when {@link parseUuid} accepts `text`. */
export function isUuid(text: string): boolean {
  return parseUuid(text) !== null;
}

/** A random (version 4, RFC 4122 variant) UUID in lowercase hyphenated form. */
export function randomUuidV4(rng: Rng): string {
  const b = new Uint8Array(16);
  rng.fill(b);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  let hex = "";
  for (let i = 0; i < 16; i++) hex += b[i]!.toString(16).padStart(2, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
