import assert from "node:assert/strict";
import { classifyDatagram, DatagramKind, isWireGuard, MAX_FZ_PAYLOAD_LEN } from "../../../src/wire/demux.ts";
import { writeChannelDataHeader } from "../../../src/wire/channel_data.ts";

function fixture(name: string): Uint8Array {
  const hex = Deno.readTextFileSync(new URL(`../../fixtures/stun/${name}.hex`, import.meta.url)).trim();
  return Uint8Array.from({ length: hex.length / 2 }, (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16));
}

function wg(type: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  b[0] = type;
  b.fill(0xab, 4);
  return b;
}

const RELAY = 3478;
const PEER = 52625;

Deno.test("classifyDatagram() sends STUN from port 3478 to the relays, other STUN to ICE", () => {
  const stun = fixture("stun_binding_success_1");
  assert.equal(classifyDatagram(stun, 0, stun.length, RELAY), DatagramKind.RelayStun);
  assert.equal(classifyDatagram(stun, 0, stun.length, PEER), DatagramKind.Stun);
  const ice = fixture("ice_binding_request_1");
  assert.equal(classifyDatagram(ice, 0, ice.length, PEER), DatagramKind.Stun);
});

Deno.test("classifyDatagram() recognises ChannelData only from port 3478 with first byte 0x40..0x4F", () => {
  const cd = fixture("turn_channel_data_1");
  assert.equal(classifyDatagram(cd, 0, cd.length, RELAY), DatagramKind.ChannelData);
  assert.equal(classifyDatagram(cd, 0, cd.length, PEER), DatagramKind.Garbage);
  // A valid frame on channel 0x5000 (first byte 0x50) is outside the RFC 7983 TURN range checked first.
  const high = new Uint8Array(40);
  writeChannelDataHeader(high, 0, 0x5000, 36);
  assert.equal(classifyDatagram(high, 0, high.length, RELAY), DatagramKind.Garbage);
  // Wrong length from a relay: falls through to the later rules (and is garbage).
  assert.equal(classifyDatagram(cd, 0, cd.length - 1, RELAY), DatagramKind.Garbage);
});

Deno.test("classifyDatagram() recognises the four WireGuard messages by type and size", () => {
  for (const port of [RELAY, PEER]) {
    assert.equal(classifyDatagram(wg(1, 148), 0, 148, port), DatagramKind.WireGuard);
    assert.equal(classifyDatagram(wg(2, 92), 0, 92, port), DatagramKind.WireGuard);
    assert.equal(classifyDatagram(wg(3, 64), 0, 64, port), DatagramKind.WireGuard);
    assert.equal(classifyDatagram(wg(4, 32), 0, 32, port), DatagramKind.WireGuard);
    assert.equal(classifyDatagram(wg(4, 1312), 0, 1312, port), DatagramKind.WireGuard);
  }
  assert.equal(classifyDatagram(wg(1, 147), 0, 147, PEER), DatagramKind.Garbage);
  assert.equal(classifyDatagram(wg(2, 93), 0, 93, PEER), DatagramKind.Garbage);
  assert.equal(classifyDatagram(wg(4, 31), 0, 31, PEER), DatagramKind.Garbage);
  assert.equal(classifyDatagram(wg(5, 64), 0, 64, PEER), DatagramKind.Garbage);
  const reserved = wg(4, 64);
  reserved[2] = 1;
  assert.ok(!isWireGuard(reserved, 0, 64), "reserved bytes must be zero");
});

Deno.test("classifyDatagram() honours offsets, drops oversized and empty datagrams", () => {
  const stun = fixture("stun_binding_request_1");
  const buf = new Uint8Array(100);
  buf.set(stun, 30);
  assert.equal(classifyDatagram(buf, 30, stun.length, RELAY), DatagramKind.RelayStun);
  assert.equal(classifyDatagram(buf, 30, stun.length + 1, RELAY), DatagramKind.Garbage);
  const big = wg(4, MAX_FZ_PAYLOAD_LEN + 1);
  assert.equal(classifyDatagram(big, 0, big.length, PEER), DatagramKind.Oversized);
  assert.equal(classifyDatagram(big, 0, MAX_FZ_PAYLOAD_LEN, PEER), DatagramKind.WireGuard);
  assert.equal(classifyDatagram(buf, 0, 0, PEER), DatagramKind.Garbage);
});

Deno.test("classifyDatagram() never mistakes WireGuard for STUN even with a magic cookie in the index", () => {
  const init = wg(1, 148);
  init.set([0x21, 0x12, 0xa4, 0x42], 4);
  assert.equal(classifyDatagram(init, 0, 148, RELAY), DatagramKind.WireGuard);
});
