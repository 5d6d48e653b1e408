import assert from "node:assert/strict";
import {
  buildP2pControl,
  IpPacketInfo,
  isP2pControl,
  L4Kind,
  P2P_CONTROL_BODY_OFF,
  P2P_CONTROL_NEXT_HEADER,
  p2pControlBodyLen,
  p2pControlBodyOffset,
  p2pControlEvent,
  P2pEventType,
  parseIpPacket,
  ParseResult,
} from "../../../src/wire/ip_packet.ts";
import { buildUdpPacket } from "../../../src/wire/udp.ts";
import { parseIp } from "../../../src/wire/ip_addr.ts";
import { fixtureText, hex, toHex } from "./_reference.ts";

const FIXTURES: [string, string, number][] = [
  ["p2p_domain_status_1.hex", "p2p_domain_status_payload_1.json", P2pEventType.DomainStatus],
  ["p2p_domain_status_2.hex", "p2p_domain_status_2.json", P2pEventType.DomainStatus],
  ["p2p_assigned_ips_1.hex", "p2p_assigned_ips_1.json", P2pEventType.AssignedIps],
];

Deno.test("buildP2pControl() reproduces the p2p control fixtures byte for byte", () => {
  for (const [packetFile, jsonFile, event] of FIXTURES) {
    const expected = fixtureText(packetFile).trim();
    const body = new TextEncoder().encode(fixtureText(jsonFile).trim());
    const buf = new Uint8Array(1500).fill(0xcc);

    const n = buildP2pControl(buf, 4, event, body);

    assert.equal(n, expected.length / 2, packetFile);
    assert.equal(toHex(buf.subarray(4, 4 + n)), expected, packetFile);
  }
});

Deno.test("isP2pControl()/p2pControlEvent()/body accessors read the fixtures", () => {
  const info = new IpPacketInfo();
  for (const [packetFile, jsonFile, event] of FIXTURES) {
    const p = hex(fixtureText(packetFile));
    const json = fixtureText(jsonFile).trim();

    assert.ok(isP2pControl(p, 0, p.length), packetFile);
    assert.equal(p2pControlEvent(p, 0), event);
    const bodyOff = p2pControlBodyOffset(0);
    assert.equal(bodyOff, P2P_CONTROL_BODY_OFF);
    assert.equal(new TextDecoder().decode(p.subarray(bodyOff, bodyOff + p2pControlBodyLen(p, 0))), json);
    assert.equal(parseIpPacket(p, 0, p.length, info), ParseResult.Ok);
    assert.deepEqual([info.version, info.protocol, info.l4Kind, info.ttl], [
      6,
      P2P_CONTROL_NEXT_HEADER,
      L4Kind.Other,
      0,
    ]);
  }
});

Deno.test("buildP2pControl() fits the longest AssignedIps payload (402 bytes) and refuses > 1280 bytes", () => {
  const longest = new TextEncoder().encode(fixtureText("p2p_assigned_ips_2.json").trim());
  const buf = new Uint8Array(2000);
  assert.equal(longest.length, 402);

  assert.equal(buildP2pControl(buf, 0, P2pEventType.AssignedIps, longest), 48 + 402);
  assert.ok(isP2pControl(buf, 0, 450));
  assert.equal(buildP2pControl(buf, 0, 0, new Uint8Array(1280 - 48)), 1280);
  assert.equal(buildP2pControl(buf, 0, 0, new Uint8Array(1280 - 47)), 0);
  assert.equal(buildP2pControl(new Uint8Array(100), 0, 0, new Uint8Array(53)), 0);
  assert.equal(buildP2pControl(new Uint8Array(100), 0, 0, new Uint8Array(52)), 100);
});

Deno.test("isP2pControl() rejects look-alikes", () => {
  const good = hex(fixtureText("p2p_domain_status_2.hex"));
  const mutate = (i: number, v: number) => {
    const p = good.slice();
    p[i] = v;
    return p;
  };

  assert.equal(isP2pControl(mutate(6, 17), 0, good.length), false, "next header");
  assert.equal(isP2pControl(mutate(8, 1), 0, good.length), false, "source");
  assert.equal(isP2pControl(mutate(39, 1), 0, good.length), false, "destination");
  assert.equal(isP2pControl(mutate(0, 0x45), 0, good.length), false, "version");
  assert.equal(isP2pControl(good, 0, good.length - 1), false, "payload length past the buffer");
  assert.equal(isP2pControl(good, 0, 47), false, "too short");
  const shortPayload = mutate(4, 0);
  shortPayload[5] = 7;
  assert.equal(isP2pControl(shortPayload, 0, good.length), false, "payload shorter than the header");
  const udp = new Uint8Array(100);
  const n = buildUdpPacket(udp, 0, parseIp("::")!, parseIp("::")!, 1, 2, new Uint8Array(8));
  assert.equal(isP2pControl(udp, 0, n), false, "UDP between unspecified addresses");
  assert.ok(isP2pControl(mutate(7, 64), 0, good.length), "the hop limit is not checked");
});
