import assert from "node:assert/strict";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import {
  chooseExistingId,
  externalIdFor,
  formatIdFile,
  generateId,
  identityErrorMessage,
  parseIdFile,
} from "../../../src/identity.ts";
import { isUuid, parseUuid, randomUuidV4 } from "../../../src/portal/uuid.ts";
import { SeededRng } from "../../../src/rng.ts";

const HYPHENATED = "67e55044-10b1-426f-9247-bb680e5fe0c8";

function hex(text: string): string {
  return bytesToHex(sha256(new TextEncoder().encode(text)));
}

Deno.test("parseUuid() accepts the uuid crate's forms and nothing else", () => {
  for (
    const form of [
      HYPHENATED,
      HYPHENATED.toUpperCase(),
      "67e5504410b1426f9247bb680e5fe0c8",
      `{${HYPHENATED}}`,
      `urn:uuid:${HYPHENATED}`,
    ]
  ) {
    assert.equal(parseUuid(form), HYPHENATED, form);
  }
  for (
    const bad of [
      "",
      "67e55044-10b1-426f-9247-bb680e5fe0c",
      "{67e5504410b1426f9247bb680e5fe0c8}",
      `URN:UUID:${HYPHENATED}`,
      "67e55044_10b1_426f_9247_bb680e5fe0c8",
      "g7e55044-10b1-426f-9247-bb680e5fe0c8",
      '{"id":"abc"}',
    ]
  ) {
    assert.equal(isUuid(bad), false, bad);
  }
});

Deno.test("externalIdFor() hashes UUID IDs exactly as given and passes other IDs through", () => {
  assert.equal(externalIdFor(HYPHENATED), hex(HYPHENATED));
  assert.equal(externalIdFor(HYPHENATED.toUpperCase()), hex(HYPHENATED.toUpperCase()));
  assert.equal(externalIdFor(`{${HYPHENATED}}`), hex(`{${HYPHENATED}}`));
  assert.equal(externalIdFor("my-gateway-1"), "my-gateway-1");
  const quirk = '{"id":"0000000000000000000000000000000000000000000000000000000000000000"}';
  assert.equal(externalIdFor(quirk), quirk);
  assert.equal(hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
});

Deno.test("generateId() is the SHA-256 of a random v4 UUID (64 lowercase hex)", () => {
  const id = generateId(new SeededRng(9));
  const uuid = randomUuidV4(new SeededRng(9));
  assert.match(uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(id, hex(uuid));
  assert.match(id, /^[0-9a-f]{64}$/);
});

Deno.test("chooseExistingId() prefers a non-empty CLI ID, then the raw file text verbatim", () => {
  assert.equal(chooseExistingId("cli", "file"), "cli");
  assert.equal(chooseExistingId("", '{"id":"abc"}\n'), '{"id":"abc"}\n');
  assert.equal(chooseExistingId(undefined, ""), null);
  assert.equal(chooseExistingId(undefined, null), null);
});

Deno.test('formatIdFile() and parseIdFile() use {"id":"..."}', () => {
  assert.equal(formatIdFile("abc"), '{"id":"abc"}');
  assert.equal(parseIdFile('{"id":"abc","other":1}'), "abc");
  assert.equal(parseIdFile('{"id":1}'), null);
  assert.equal(parseIdFile("abc"), null);
  assert.equal(
    identityErrorMessage(),
    "Couldn't read FIREZONE_ID or write it to disk: Please provide it through the env variable or provide rw access to /var/lib/firezone/",
  );
});
