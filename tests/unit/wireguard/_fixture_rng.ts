/**
 * The fixed {@link Rng} the wireguard-go fixture's responder ran with (scripts/capture_wg_handshake.sh).
 * Its output does not depend on call order: every `fill` writes the same byte pattern from the start
 * and `nextU32` is constant, so replaying the fixture yields the same ephemeral key and index as the
 * capture no matter how many random values the code draws on the way. Never use it outside tests.
 *
 * @module
 */

import type { Rng } from "../../../src/rng.ts";

/** `fill` writes `(0x5a + 13 * i) & 0xff` at position i; `nextU32` always returns 0x00c0ffee. */
export function fixtureRng(): Rng {
  return {
    nextU32: () => 0x00c0ffee,
    fill(bytes: Uint8Array): void {
      for (let i = 0; i < bytes.length; i++) bytes[i] = (0x5a + 13 * i) & 0xff;
    },
  };
}
