import assert from "node:assert/strict";
import {
  CHANNEL_DATA_HEADER_LEN,
  channelDataChannel,
  writeChannelDataHeader,
} from "../../../src/wire/channel_data.ts";

function fixture(name: string): Uint8Array {
  const hex = Deno.readTextFileSync(new URL(`../../fixtures/stun/${name}.hex`, import.meta.url)).trim();
  return Uint8Array.from({ length: hex.length / 2 }, (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16));
}

Deno.test("channelDataChannel() decodes the Firezone relay fixture (channel 0x4001, 64 bytes)", () => {
  const cd = fixture("turn_channel_data_1");
  assert.equal(cd.length, 68);
  assert.equal(channelDataChannel(cd, 0, cd.length), 0x4001);
  assert.deepEqual(cd.subarray(CHANNEL_DATA_HEADER_LEN), fixture("stun_binding_success_1"));
});

Deno.test("channelDataChannel() requires the length to match the remaining bytes exactly", () => {
  const cd = fixture("turn_channel_data_1");
  assert.equal(channelDataChannel(cd, 0, cd.length - 1), -1, "truncated");
  const padded = new Uint8Array(cd.length + 4);
  padded.set(cd);
  assert.equal(channelDataChannel(padded, 0, padded.length), -1, "trailing padding is refused");
  assert.equal(channelDataChannel(cd, 0, 3), -1, "shorter than the header");
});

Deno.test("channelDataChannel() accepts channels 0x4000..0x7FFF only", () => {
  const buf = new Uint8Array(8);
  for (const [ch, ok] of [[0x3fff, false], [0x4000, true], [0x4fff, true], [0x7fff, true], [0x8000, false]]) {
    writeChannelDataHeader(buf, 0, ch as number, 4);
    assert.equal(channelDataChannel(buf, 0, 8), ok ? ch : -1, `channel 0x${ch!.toString(16)}`);
  }
});

Deno.test("writeChannelDataHeader() fills the header room in front of a payload without padding", () => {
  const buf = new Uint8Array(64).fill(0xee);
  const payloadOff = 20;
  buf.set([1, 2, 3, 4, 5], payloadOff);
  const total = writeChannelDataHeader(buf, payloadOff - CHANNEL_DATA_HEADER_LEN, 0x4abc, 5);
  assert.equal(total, 9);
  assert.deepEqual([...buf.subarray(16, 25)], [0x4a, 0xbc, 0x00, 0x05, 1, 2, 3, 4, 5]);
  assert.equal(buf[15], 0xee, "nothing written before the header");
  assert.equal(buf[25], 0xee, "no padding written");
  assert.equal(channelDataChannel(buf, 16, total), 0x4abc);
  // Empty payloads are valid.
  assert.equal(writeChannelDataHeader(buf, 0, 0x4000, 0), 4);
  assert.equal(channelDataChannel(buf, 0, 4), 0x4000);
});
