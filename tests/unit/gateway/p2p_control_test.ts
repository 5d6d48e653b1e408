import assert from "node:assert/strict";
import {
  ASSIGNED_IPS_EVENT,
  type AssignedIps,
  buildAssignedIpsPacket,
  buildDomainStatusPacket,
  buildGoodbyePacket,
  decodeAssignedIps,
  decodeDomainStatus,
  decodeP2pControl,
  DOMAIN_STATUS_EVENT,
  encodeAssignedIps,
  encodeDomainStatus,
  GOODBYE_EVENT,
  normalizeDomainName,
  P2pControlError,
} from "../../../src/gateway/p2p_control.ts";
import { buildP2pControl, isP2pControl } from "../../../src/wire/ip_packet.ts";

const RESOURCE_100 = "00000000-0000-0000-0000-000000000064";
const RESOURCE_101 = "00000000-0000-0000-0000-000000000065";
const EIGHT_PROXY_IPS = ["127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1", "::1", "::1", "::1", "::1"];

// Upstream p2p_control.rs `max_payload_length_assigned_ips`.
Deno.test("encodeAssignedIps(): the longest domain with eight proxy IPs is 402 bytes", () => {
  const label = "a".repeat(49);
  const domain = `${label}.${label}.${label}.${label}.${label}.com`;
  assert.equal(domain.length, 253);

  const body = encodeAssignedIps({ resource: RESOURCE_100, domain, proxyIps: EIGHT_PROXY_IPS });

  assert.equal(body.length, 402);
  assert.equal(new TextDecoder().decode(body), fixture("p2p_assigned_ips_2.json").trimEnd());
  const buf = new Uint8Array(1280);
  assert.equal(
    buildAssignedIpsPacket(buf, 0, { resource: RESOURCE_100, domain, proxyIps: EIGHT_PROXY_IPS }),
    450,
  );
});

// Upstream p2p_control.rs `assigned_ips_serde_roundtrip`.
Deno.test("AssignedIps survives a packet round trip", () => {
  const buf = new Uint8Array(1280);
  const msg: AssignedIps = { resource: RESOURCE_101, domain: "example.com", proxyIps: EIGHT_PROXY_IPS };

  const len = buildAssignedIpsPacket(buf, 0, msg);
  const decoded = decodeP2pControl(buf, 0, len);

  assert.deepEqual(decoded, { type: "AssignedIps", ...msg });
  assert.equal(toHex(buf.subarray(0, len)), fixture("p2p_assigned_ips_1.hex").trim());
});

// Upstream p2p_control.rs `domain_status_serde_roundtrip`.
Deno.test("DomainStatus survives a packet round trip", () => {
  const buf = new Uint8Array(1280);

  const len = buildDomainStatusPacket(buf, 0, {
    resource: RESOURCE_101,
    domain: "example.com",
    status: "Active",
  });
  const decoded = decodeP2pControl(buf, 0, len);

  assert.deepEqual(decoded, {
    type: "DomainStatus",
    resource: RESOURCE_101,
    domain: "example.com",
    status: "Active",
  });
  assert.equal(toHex(buf.subarray(0, len)), fixture("p2p_domain_status_2.hex").trim());
  assert.equal(
    new TextDecoder().decode(
      encodeDomainStatus({ resource: RESOURCE_101, domain: "example.com", status: "Active" }),
    ),
    fixture("p2p_domain_status_2.json").trim(),
  );
});

// Upstream p2p_control.rs `domain_status_ignored_unknown_nat_status`.
Deno.test("decodeDomainStatus() maps an unknown status to Inactive", () => {
  const packet = hexToBytes(fixture("p2p_domain_status_1.hex"));
  const payload = new TextEncoder().encode(fixture("p2p_domain_status_payload_1.json").trim());

  const fromPacket = decodeP2pControl(packet, 0, packet.length);
  const fromBody = decodeDomainStatus(payload);

  assert.deepEqual(fromPacket, {
    type: "DomainStatus",
    resource: RESOURCE_101,
    domain: "example.com",
    status: "Inactive",
  });
  assert.deepEqual(fromBody, { resource: RESOURCE_101, domain: "example.com", status: "Inactive" });
});

Deno.test("decodeAssignedIps() ignores unknown fields, canonicalizes addresses and UUIDs", () => {
  const body = new TextEncoder().encode(
    JSON.stringify({
      extra: 1,
      resource: "00000000-0000-0000-0000-0000000000AB",
      domain: "App.Example.com.",
      proxy_ips: ["100.96.0.1", "FD00:2021:1111:8000:0:0:0:1"],
    }),
  );

  const msg = decodeAssignedIps(body);

  assert.deepEqual(msg, {
    resource: "00000000-0000-0000-0000-0000000000ab",
    domain: "App.Example.com",
    proxyIps: ["100.96.0.1", "fd00:2021:1111:8000::1"],
  });
});

Deno.test("decodeAssignedIps() refuses invalid bodies", () => {
  const cases = [
    "not json",
    "[]",
    JSON.stringify({ domain: "a.com", proxy_ips: [] }),
    JSON.stringify({ resource: "nope", domain: "a.com", proxy_ips: [] }),
    JSON.stringify({ resource: RESOURCE_101, domain: "", proxy_ips: [] }),
    JSON.stringify({ resource: RESOURCE_101, domain: "a..com", proxy_ips: [] }),
    JSON.stringify({ resource: RESOURCE_101, domain: `${"a".repeat(64)}.com`, proxy_ips: [] }),
    JSON.stringify({ resource: RESOURCE_101, domain: "a.com", proxy_ips: ["1.2.3"] }),
    JSON.stringify({ resource: RESOURCE_101, domain: "a.com", proxy_ips: "1.2.3.4" }),
  ];
  for (const text of cases) {
    assert.throws(() => decodeAssignedIps(new TextEncoder().encode(text)), P2pControlError, text);
  }
});

Deno.test("decodeDomainStatus() refuses a non-string status", () => {
  const body = new TextEncoder().encode(
    JSON.stringify({ resource: RESOURCE_101, domain: "a.com", status: 1 }),
  );

  assert.throws(() => decodeDomainStatus(body), P2pControlError);
});

Deno.test("goodbye (event 2) has an empty body; unknown events decode as Unknown", () => {
  const buf = new Uint8Array(1280);

  const len = buildGoodbyePacket(buf, 0);
  assert.equal(len, 48);
  assert.equal(isP2pControl(buf, 0, len), true);
  assert.deepEqual(decodeP2pControl(buf, 0, len), { type: "Goodbye" });

  const unknown = buildP2pControl(buf, 0, 9, new TextEncoder().encode("{}"));
  assert.deepEqual(decodeP2pControl(buf, 0, unknown), { type: "Unknown", event: 9 });
  assert.equal(GOODBYE_EVENT, 2);
  assert.equal(ASSIGNED_IPS_EVENT, 0);
  assert.equal(DOMAIN_STATUS_EVENT, 1);
});

Deno.test("decodeP2pControl() refuses a packet that is not p2p control", () => {
  const buf = new Uint8Array(60);
  buf[0] = 0x45;

  assert.throws(() => decodeP2pControl(buf, 0, 60), P2pControlError);
});

Deno.test("normalizeDomainName() enforces DNS name limits", () => {
  assert.equal(normalizeDomainName("example.com."), "example.com");
  assert.equal(normalizeDomainName("a".repeat(63) + ".com"), "a".repeat(63) + ".com");
  assert.equal(normalizeDomainName("a".repeat(64) + ".com"), null);
  const label = "a".repeat(49);
  assert.equal(normalizeDomainName(`${label}.${label}.${label}.${label}.${label}.com`)?.length, 253);
  assert.equal(normalizeDomainName(`${label}.${label}.${label}.${label}.${label}.comx`), null);
  assert.equal(normalizeDomainName(".example.com"), null);
});

function fixture(name: string): string {
  return Deno.readTextFileSync(new URL(`../../fixtures/gateway/${name}`, import.meta.url));
}

function hexToBytes(text: string): Uint8Array {
  const t = text.trim();
  const out = new Uint8Array(t.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(t.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
