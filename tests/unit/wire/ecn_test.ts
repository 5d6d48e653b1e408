import assert from "node:assert/strict";
import { ipv4HeaderChecksumOk } from "../../../src/wire/ipv4.ts";
import { applyOuterEcn, ECN_CE, ECN_ECT0, ECN_ECT1, ECN_NOT_ECT, innerEcn } from "../../../src/wire/ecn.ts";
import { buildUdpPacket } from "../../../src/wire/udp.ts";

function v4(ecn: number): { buf: Uint8Array; len: number } {
  const buf = new Uint8Array(128);
  const len = buildUdpPacket(
    buf,
    0,
    new Uint8Array([10, 0, 0, 1]),
    new Uint8Array([10, 0, 0, 2]),
    1,
    2,
    new Uint8Array(4),
  );
  buf[1] = (buf[1]! & ~3) | ecn;
  // Recompute the header checksum after changing TOS (test set-up only).
  buf[10] = 0;
  buf[11] = 0;
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += (buf[i]! << 8) | buf[i + 1]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >> 16);
  buf[10] = (~s >> 8) & 0xff;
  buf[11] = ~s & 0xff;
  return { buf, len };
}

function v6(ecn: number): { buf: Uint8Array; len: number } {
  const buf = new Uint8Array(128);
  const src = new Uint8Array(16).fill(1);
  const dst = new Uint8Array(16).fill(2);
  const len = buildUdpPacket(buf, 0, src, dst, 1, 2, new Uint8Array(4));
  buf[1] = (buf[1]! & 0xcf) | (ecn << 4);
  return { buf, len };
}

Deno.test("applyOuterEcn() upgrades only ECT inner packets to CE, and only for a CE outer header", () => {
  for (const make of [v4, v6]) {
    for (const inner of [ECN_NOT_ECT, ECN_ECT1, ECN_ECT0, ECN_CE]) {
      for (const outer of [ECN_NOT_ECT, ECN_ECT1, ECN_ECT0, ECN_CE]) {
        const p = make(inner);
        const changed = applyOuterEcn(p.buf, 0, p.len, outer);
        const expected = outer === ECN_CE && (inner === ECN_ECT0 || inner === ECN_ECT1);
        assert.equal(changed, expected, `${make.name} inner=${inner} outer=${outer}`);
        assert.equal(innerEcn(p.buf, 0, p.len), expected ? ECN_CE : inner);
        if (make === v4) assert.ok(ipv4HeaderChecksumOk(p.buf, 0), "the IPv4 header checksum stays valid");
      }
    }
  }
});

Deno.test("innerEcn() reads the ECN bits of IPv4 and IPv6 packets", () => {
  assert.equal(innerEcn(v4(ECN_ECT0).buf, 0, 32), ECN_ECT0);
  assert.equal(innerEcn(v6(ECN_ECT1).buf, 0, 52), ECN_ECT1);
  assert.equal(innerEcn(new Uint8Array([0x10, 0xff]), 0, 2), ECN_NOT_ECT);
});
