import assert from "node:assert/strict";
import {
  readU32Le,
  readU64LeNumber,
  WG_COOKIE_REPLY_LEN,
  WG_DATA_MIN_LEN,
  WG_HANDSHAKE_INIT_LEN,
  WG_HANDSHAKE_RESPONSE_LEN,
  WG_INIT_MAC1_OFF,
  WG_INIT_MAC2_OFF,
  WG_INIT_STATIC_OFF,
  WG_INIT_TIMESTAMP_OFF,
  WG_RESP_EMPTY_OFF,
  WG_RESP_MAC1_OFF,
  WG_RESP_MAC2_OFF,
  WG_TYPE_COOKIE_REPLY,
  WG_TYPE_DATA,
  WG_TYPE_HANDSHAKE_INIT,
  WG_TYPE_HANDSHAKE_RESPONSE,
  WG_TYPE_NONE,
  wgDataMessageLen,
  wgMessageType,
  wgReceiverIndex,
  writeU32Le,
  writeU64LeNumber,
} from "../../../src/wire/wireguard.ts";
import { noiseStart } from "../../../src/wireguard/mod.ts";
import { noble } from "./_pair.ts";

Deno.test("WireGuard message sizes and offsets add up (paper §5.4)", () => {
  assert.equal(WG_HANDSHAKE_INIT_LEN, 148);
  assert.equal(WG_HANDSHAKE_RESPONSE_LEN, 92);
  assert.equal(WG_COOKIE_REPLY_LEN, 64);
  assert.equal(WG_DATA_MIN_LEN, 32);
  assert.equal(WG_INIT_TIMESTAMP_OFF - WG_INIT_STATIC_OFF, 48);
  assert.equal(WG_INIT_MAC1_OFF - WG_INIT_TIMESTAMP_OFF, 28);
  assert.equal(WG_INIT_MAC2_OFF + 16, WG_HANDSHAKE_INIT_LEN);
  assert.equal(WG_RESP_MAC1_OFF - WG_RESP_EMPTY_OFF, 16);
  assert.equal(WG_RESP_MAC2_OFF + 16, WG_HANDSHAKE_RESPONSE_LEN);
  assert.equal(wgDataMessageLen(0), 32);
  assert.equal(wgDataMessageLen(1), 48);
  assert.equal(wgDataMessageLen(1280), 1312);
});

Deno.test("wgMessageType() classifies by type and exact length", () => {
  const msg = (type: number, len: number) => {
    const b = new Uint8Array(len + 8);
    b[4] = type;
    return wgMessageType(b, 4, len);
  };
  assert.equal(msg(1, 148), WG_TYPE_HANDSHAKE_INIT);
  assert.equal(msg(1, 149), WG_TYPE_NONE);
  assert.equal(msg(2, 92), WG_TYPE_HANDSHAKE_RESPONSE);
  assert.equal(msg(2, 91), WG_TYPE_NONE);
  assert.equal(msg(3, 64), WG_TYPE_COOKIE_REPLY);
  assert.equal(msg(4, 32), WG_TYPE_DATA);
  assert.equal(msg(4, 1500), WG_TYPE_DATA);
  assert.equal(msg(4, 31), WG_TYPE_NONE);
  assert.equal(msg(5, 64), WG_TYPE_NONE);
  assert.equal(msg(0, 64), WG_TYPE_NONE);
  const reserved = new Uint8Array(32);
  reserved[0] = 4;
  reserved[2] = 1;
  assert.equal(wgMessageType(reserved, 0, 32), WG_TYPE_NONE);
  assert.equal(wgMessageType(reserved, 0, 3), WG_TYPE_NONE);
});

Deno.test("wgReceiverIndex() reads the receiver field of each type", () => {
  const resp = new Uint8Array(92);
  resp[0] = 2;
  writeU32Le(resp, 8, 0xdeadbeef);
  assert.equal(wgReceiverIndex(resp, 0, 92), 0xdeadbeef);
  const data = new Uint8Array(32);
  data[0] = 4;
  writeU32Le(data, 4, 0x01020304);
  assert.equal(wgReceiverIndex(data, 0, 32), 0x01020304);
  const init = new Uint8Array(148);
  init[0] = 1;
  assert.equal(wgReceiverIndex(init, 0, 148), -1);
});

Deno.test("Little-endian accessors round-trip u32 and safe-integer u64", () => {
  const b = new Uint8Array(16);
  writeU32Le(b, 1, 0x89abcdef);
  assert.deepEqual([...b.subarray(1, 5)], [0xef, 0xcd, 0xab, 0x89]);
  assert.equal(readU32Le(b, 1), 0x89abcdef);
  for (const v of [0, 1, 0xffffffff, 0x100000000, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER]) {
    writeU64LeNumber(b, 4, v);
    assert.equal(readU64LeNumber(b, 4), v);
    assert.equal(new DataView(b.buffer).getBigUint64(4, true), BigInt(v));
  }
  new DataView(b.buffer).setBigUint64(4, 2n ** 53n, true);
  assert.equal(readU64LeNumber(b, 4), -1, "beyond safe integers");
});

Deno.test("noiseStart() matches the WireGuard constants (HASH(CONSTRUCTION), HASH(Ck || IDENTIFIER))", () => {
  const s = noiseStart(noble);
  // Values from the WireGuard reference implementations (e.g. boringtun INITIAL_CHAIN_KEY/HASH).
  assert.equal(hex(s.chainingKey), "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36");
  assert.equal(hex(s.hash), "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3");
});

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
