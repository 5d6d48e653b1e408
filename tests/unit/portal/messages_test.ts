import assert from "node:assert/strict";
import {
  broadcastIceCandidates,
  broadcastInvalidatedIceCandidates,
  connectionReady,
  decodeKey32,
  flowAuthorized,
  INGRESS_EVENTS,
  MessageError,
  parseFilter,
  parseIceCandidates,
  parseIngressMessage,
  parseRelays,
  parseResource,
  sortCandidatesForPortal,
  type TurnRelay,
} from "../../../src/portal/messages.ts";
import { encodeFrame, parseFrame } from "../../../src/portal/phoenix_channel.ts";
import { Secret } from "../../../src/log.ts";

const FIXTURES = new URL("../../fixtures/portal/", import.meta.url);

function fixtureText(name: string): string {
  return Deno.readTextFileSync(new URL(name, FIXTURES)).trim();
}

function fixture(name: string): unknown {
  return JSON.parse(fixtureText(name));
}

/** Parses a full-envelope fixture like the channel does. */
function ingress(name: string) {
  const frame = parseFrame(fixtureText(name));
  return parseIngressMessage(frame.event, frame.payload);
}

Deno.test("parseIngressMessage() parses ingress_init_1.json (minimal init)", () => {
  const msg = ingress("ingress_init_1.json");
  assert.equal(msg.event, "init");
  if (msg.event !== "init") return;
  assert.deepEqual(msg.payload, {
    interface: { ipv4: "100.115.164.78", ipv6: "fd00:2021:1111::2c:f6ab" },
    config: { ipv4MasqueradeEnabled: true, ipv6MasqueradeEnabled: true },
    accountSlug: null,
    relays: [],
    authorizations: [],
  });
});

Deno.test("parseIngressMessage() parses derived init with a dual-stack relay merged into one", () => {
  const msg = ingress("derived/ingress_init_1.json");
  assert.equal(msg.event, "init");
  if (msg.event !== "init") return;
  assert.equal(msg.payload.accountSlug, "mycorp");
  assert.deepEqual(msg.payload.authorizations, [{
    clientId: "3abd725a-733b-4801-ac16-72f26cd98a24",
    resourceId: "c7793628-8579-465b-83e3-1a5d4af4db3b",
    expiresAtUtcMs: 1729813989_000,
  }]);
  assert.equal(msg.payload.relays.length, 1);
  const relay = msg.payload.relays[0] as TurnRelay;
  assert.equal(relay.type, "turn");
  assert.equal(relay.id, "0a133356-7a9e-4b9a-b413-0d95a5720fd8");
  assert.deepEqual(relay.addrV4, { family: 4, ip: "172.28.0.101", port: 3478 });
  assert.deepEqual(relay.addrV6, { family: 6, ip: "2001:db8::101", port: 3478 });
  assert.equal(relay.username, "1737589989:ZQHcVGkdnfgGmcP1bXl2Q0aW3hYy9vT8l1Lq6yU2kQs");
  assert.equal(relay.password.expose(), "ZWYiBeFHOJyYq0mcwAXjRpcuXIJJpzWlOXVdxwttrWg");
  assert.equal(relay.expiresAtUtcMs, 1737589989_000);
  assert.equal(JSON.stringify(relay.password), '"[redacted]"');
});

Deno.test("parseIngressMessage() parses ingress_authorize_flow_1.json (unknown fields ignored)", () => {
  const msg = ingress("ingress_authorize_flow_1.json");
  assert.equal(msg.event, "authorize_flow");
  if (msg.event !== "authorize_flow") return;
  const p = msg.payload;
  assert.ok(p.ref.startsWith("SFMyNTY.g2gDbQAAAkxnMmdHV0hj"));
  assert.deepEqual(p.resource, {
    type: "cidr",
    id: "c7793628-8579-465b-83e3-1a5d4af4db3b",
    address: { family: 4, ip: "172.20.0.0", prefix: 16 },
    name: "MyCorp Network",
    filters: [],
  });
  assert.equal(p.client.id, "3abd725a-733b-4801-ac16-72f26cd98a24");
  assert.equal(p.client.ipv4, "100.93.74.51");
  assert.equal(p.client.ipv6, "fd00:2021:1111::f:853b");
  assert.deepEqual(p.client.publicKey, decodeKey32("fiAjSBWDgQfD1CFJkTwOf4zg+1QhH0eTT+oLaVIMpH8="));
  assert.deepEqual(
    p.client.presharedKey.expose(),
    decodeKey32("BzPiNE9qszKczZcZzGsyieLYeJ2EQfkfdibls/l3beM="),
  );
  assert.equal(p.gatewayIceCredentials.username, "ejqt");
  assert.equal(p.gatewayIceCredentials.password.expose(), "zfjrrjdkbci42t2axyd45a");
  assert.equal(p.clientIceCredentials.username, "hgwh");
  assert.equal(p.clientIceCredentials.password.expose(), "j2fqufatn7xlrrvv6fsvea");
  assert.equal(p.expiresAtUtcMs, 1729813989_000);
});

Deno.test("parseIngressMessage() parses ingress_request_connection_1.json (legacy, no domain)", () => {
  const msg = ingress("ingress_request_connection_1.json");
  assert.equal(msg.event, "request_connection");
  if (msg.event !== "request_connection") return;
  const p = msg.payload;
  assert.equal(p.ref, "78e1159d-9dc6-480d-b2ef-1fcec2cd5730");
  assert.equal(p.client.id, "3a25ff38-f8d7-47de-9b30-c7c40c206083");
  assert.equal(p.client.peer.ipv4, "100.114.114.30");
  assert.equal(p.client.peer.ipv6, "fd00:2021:1111::3a:ab1b");
  assert.deepEqual(p.client.peer.publicKey, decodeKey32("OR2dYCLwMEtwqtjOxSm4SU7BbHJDfM8ZCqK7HKXXxDw="));
  assert.equal(p.client.iceParameters.username, "PvCPFevCOgkvVCtH");
  assert.equal(p.client.iceParameters.password.expose(), "xEwoXEzHuSyrcgOCSRnwOXQVnbnbeGeF");
  assert.equal(p.client.domain, null);
  assert.equal(p.expiresAtUtcMs, 1719367575_000);
  assert.equal(p.resource.type, "cidr");
});

Deno.test("parseIngressMessage() parses ingress_request_connection_2.json (legacy DNS with proxy IPs)", () => {
  const msg = ingress("ingress_request_connection_2.json");
  if (msg.event !== "request_connection") throw new Error(`unexpected ${msg.event}`);
  const p = msg.payload;
  assert.deepEqual(p.client.domain, {
    name: "download.httpbin",
    proxyIps: [
      "100.96.0.1",
      "100.96.0.2",
      "100.96.0.3",
      "100.96.0.4",
      "fd00:2021:1111:8000::",
      "fd00:2021:1111:8000::1",
      "fd00:2021:1111:8000::2",
      "fd00:2021:1111:8000::3",
    ],
  });
  assert.deepEqual(p.resource, {
    type: "dns",
    id: "619fbe83-bc95-4635-9a08-68da9a944c88",
    address: "?.httpbin",
    name: "?.httpbin",
    filters: [
      { protocol: "tcp", portRangeStart: 80, portRangeEnd: 80 },
      { protocol: "tcp", portRangeStart: 433, portRangeEnd: 433 },
      { protocol: "udp", portRangeStart: 53, portRangeEnd: 53 },
      { protocol: "icmp" },
    ],
  });
  assert.equal(p.expiresAtUtcMs, 1718663242_000);
});

Deno.test("parseIngressMessage() parses derived allow_access", () => {
  const msg = ingress("derived/ingress_allow_access_1.json");
  if (msg.event !== "allow_access") throw new Error(`unexpected ${msg.event}`);
  const p = msg.payload;
  assert.equal(p.ref, "SFMyNTY.opaque-signed-ref");
  assert.equal(p.clientId, "3abd725a-733b-4801-ac16-72f26cd98a24");
  assert.equal(p.clientIpv4, "100.93.74.51");
  assert.equal(p.clientIpv6, "fd00:2021:1111::f:853b");
  assert.equal(p.expiresAtUtcMs, 1729813989_000);
  assert.equal(p.payload?.name, "download.httpbin");
  assert.equal(p.payload?.proxyIps.length, 8);
  assert.deepEqual(p.resource.type === "dns" ? p.resource.filters : null, [
    { protocol: "tcp", portRangeStart: 80, portRangeEnd: 80 },
    { protocol: "icmp" },
  ]);
});

Deno.test("parseIngressMessage() parses reject_access and access_authorization_expiry_updated", () => {
  assert.deepEqual(ingress("derived/ingress_reject_access_1.json"), {
    event: "reject_access",
    payload: {
      clientId: "3abd725a-733b-4801-ac16-72f26cd98a24",
      resourceId: "c7793628-8579-465b-83e3-1a5d4af4db3b",
    },
  });
  assert.deepEqual(ingress("derived/ingress_access_authorization_expiry_updated_1.json"), {
    event: "access_authorization_expiry_updated",
    payload: {
      clientId: "3abd725a-733b-4801-ac16-72f26cd98a24",
      resourceId: "c7793628-8579-465b-83e3-1a5d4af4db3b",
      expiresAtUtcMs: 1729900389_000,
    },
  });
});

Deno.test("parseIngressMessage() parses ice_candidates and invalidate_ice_candidates", () => {
  const add = ingress("derived/ingress_ice_candidates_1.json");
  if (add.event !== "ice_candidates") throw new Error(`unexpected ${add.event}`);
  assert.equal(add.payload.clientId, "3abd725a-733b-4801-ac16-72f26cd98a24");
  assert.deepEqual(add.payload.candidates.map((c) => [c.kind, c.addr.ip, c.addr.port, c.priority]), [
    ["host", "192.168.1.20", 52625, 2130706175],
    ["srflx", "198.51.100.77", 40123, 1694498559],
  ]);
  const remove = ingress("ingress_invalidate_ice_candidates_1.json");
  if (remove.event !== "invalidate_ice_candidates") throw new Error(`unexpected ${remove.event}`);
  assert.equal(remove.payload.clientId, "2b1524e6-239e-4570-bc73-70a188e12101");
  assert.equal(remove.payload.candidates.length, 1);
  assert.equal(remove.payload.candidates[0]!.addr.ip, "172.28.0.100");
});

Deno.test("parseIceCandidates() keeps 1 of 4 candidates in faulty_candidate_get_skipped", () => {
  const msg = parseIceCandidates(fixture("ingress_ice_candidates_1.json"));
  assert.equal(msg.clientId, "f16ecfa0-a94f-4bfd-a2ef-1cc1f2ef3da3");
  assert.equal(msg.candidates.length, 1);
  const c = msg.candidates[0]!;
  assert.equal(c.kind, "srflx");
  assert.deepEqual(c.addr, { family: 4, ip: "87.121.72.60", port: 57114 });
  assert.equal(c.priority, 1694498559);
  assert.equal(c.foundation, "fffeff6435be70ddbf995982");
});

Deno.test("parseIceCandidates() skips non-string elements but rejects a missing list", () => {
  const msg = parseIceCandidates({
    client_id: "f16ecfa0-a94f-4bfd-a2ef-1cc1f2ef3da3",
    candidates: [42, null, "candidate:1 1 udp 2130706175 10.0.0.1 52625 typ host"],
  });
  assert.equal(msg.candidates.length, 1);
  assert.throws(
    () => parseIceCandidates({ client_id: "f16ecfa0-a94f-4bfd-a2ef-1cc1f2ef3da3" }),
    /Missing field `payload.candidates`/,
  );
});

Deno.test("parseIngressMessage() parses ingress_relays_presence_1.json", () => {
  const msg = ingress("ingress_relays_presence_1.json");
  if (msg.event !== "relays_presence") throw new Error(`unexpected ${msg.event}`);
  assert.deepEqual(msg.payload.disconnectedIds, [
    "e95f9517-2152-4677-a16a-fbb2687050a3",
    "b0724bd1-a8cc-4faf-88cd-f21159cfec47",
  ]);
  assert.equal(msg.payload.connected.length, 1);
  const relay = msg.payload.connected[0] as TurnRelay;
  assert.deepEqual(relay.addrV4, { family: 4, ip: "172.28.0.101", port: 3478 });
  assert.equal(relay.addrV6, null);
  assert.equal(relay.username, "1719367575:ZQHcVGkdnfgGmcP1");
});

Deno.test("parseIngressMessage() parses resource_updated (dns with filters, internet)", () => {
  assert.deepEqual(ingress("ingress_resource_updated_1.json"), {
    event: "resource_updated",
    payload: {
      type: "dns",
      id: "57f9ebbb-21d5-4f9f-bf86-b25122fc7a43",
      address: "?.httpbin",
      name: "?.httpbin",
      filters: [{ protocol: "icmp" }, { protocol: "tcp", portRangeStart: 0, portRangeEnd: 65535 }],
    },
  });
  assert.deepEqual(ingress("derived/ingress_resource_updated_1.json"), {
    event: "resource_updated",
    payload: { type: "internet", id: "ea6570d1-47c7-49d2-9dc3-efff1c0c9e0b" },
  });
});

Deno.test("parseFilter() applies the port defaults of filter fixtures 1-5", () => {
  assert.deepEqual(parseFilter(fixture("ingress_filter_1.json")), {
    protocol: "udp",
    portRangeStart: 10,
    portRangeEnd: 20,
  });
  assert.deepEqual(parseFilter(fixture("ingress_filter_2.json")), {
    protocol: "udp",
    portRangeStart: 0,
    portRangeEnd: 65535,
  });
  assert.deepEqual(parseFilter(fixture("ingress_filter_3.json")), {
    protocol: "tcp",
    portRangeStart: 10,
    portRangeEnd: 20,
  });
  assert.deepEqual(parseFilter(fixture("ingress_filter_4.json")), {
    protocol: "tcp",
    portRangeStart: 0,
    portRangeEnd: 65535,
  });
  assert.deepEqual(parseFilter(fixture("ingress_filter_5.json")), { protocol: "icmp" });
  assert.throws(() => parseFilter({ protocol: "sctp" }), /unknown protocol "sctp"/);
  assert.throws(() => parseFilter({ protocol: "tcp", port_range_end: 70000 }), /port_range_end/);
});

Deno.test("parseResource() parses ingress_resource_list_1.json (internet with unknown fields)", () => {
  const list = fixture("ingress_resource_list_1.json") as unknown[];
  assert.deepEqual(list.map((r) => parseResource(r)), [
    {
      type: "cidr",
      id: "73037362-715d-4a83-a749-f18eadd970e6",
      address: { family: 4, ip: "172.172.0.0", prefix: 16 },
      name: "172.172.0.0/16",
      filters: [],
    },
    {
      type: "dns",
      id: "03000143-e25e-45c7-aafb-144990e57dcd",
      address: "gitlab.mycorp.com",
      name: "gitlab.mycorp.com",
      filters: [],
    },
    { type: "internet", id: "1106047c-cd5d-4151-b679-96b93da7383b" },
  ]);
});

Deno.test("parseResource() canonicalises CIDR addresses and rejects bad ones", () => {
  const r = parseResource({
    type: "cidr",
    id: "73037362-715D-4a83-a749-f18eadd970e6",
    address: "2001:DB8:0:0::1/64",
    name: "v6",
    filters: [],
  });
  assert.equal(r.id, "73037362-715d-4a83-a749-f18eadd970e6");
  assert.deepEqual(r.type === "cidr" ? r.address : null, { family: 6, ip: "2001:db8::", prefix: 64 });
  for (const address of ["10.0.0.0/33", "10.0.0.0", "nonsense/8", "2001:db8::/129"]) {
    assert.throws(
      () =>
        parseResource({
          type: "cidr",
          id: "73037362-715d-4a83-a749-f18eadd970e6",
          address,
          name: "x",
          filters: [],
        }),
      /Invalid `resource.address`/,
      address,
    );
  }
  assert.throws(
    () => parseResource({ type: "ip", id: "73037362-715d-4a83-a749-f18eadd970e6" }),
    /unknown resource type/,
  );
  assert.throws(
    () => parseResource({ type: "dns", id: "73037362-715d-4a83-a749-f18eadd970e6", address: "x", name: "x" }),
    /Missing field `resource.filters`/,
  );
});

Deno.test("decodeKey32() decodes ingress_public_key_1.json and rejects other lengths", () => {
  const key = decodeKey32(fixture("ingress_public_key_1.json") as string);
  assert.equal(key.length, 32);
  assert.equal(key[0], 0x4b);
  assert.equal(key[31], 0x65);
  assert.throws(() => decodeKey32("S6REkbStSNMfn8hpLkVxibjR+zz3RO/Gq40TprHJE2U"), /44 characters/);
  assert.throws(() => decodeKey32("AAAA"), MessageError);
  assert.throws(() => decodeKey32("S6REkbStSNMfn8hpLkVxibjR+zz3RO/Gq40TprHJE2V="), /non-canonical/);
});

Deno.test("parseRelays() merges consecutive same-id entries in either order and keeps others apart", () => {
  const turn = (id: string, addr: string, username = "u") => ({
    type: "turn",
    id,
    addr,
    username,
    password: "p",
    expires_at: 1,
  });
  const a = "0a133356-7a9e-4b9a-b413-0d95a5720fd8";
  const b = "75542064-e5f7-491b-b054-5350b4f34963";
  const relays = parseRelays([
    turn(a, "[2001:db8::1]:3478"),
    turn(a, "192.0.2.1:3478", "later"),
    { type: "stun", id: b, addr: "192.0.2.9:3478" },
    turn(b, "192.0.2.2:3478"),
    turn(a, "192.0.2.3:3478"),
  ]);
  assert.deepEqual(
    relays.map((r) => r.type === "turn" ? [r.id, r.addrV4?.ip ?? null, r.addrV6?.ip ?? null] : [r.type]),
    [
      [a, "192.0.2.1", "2001:db8::1"],
      ["stun"],
      [b, "192.0.2.2", null],
      [a, "192.0.2.3", null],
    ],
  );
  assert.equal((relays[0] as TurnRelay).username, "later");
});

Deno.test("parseIngressMessage() names the offending field and rejects unknown events", () => {
  const base = fixture("ingress_authorize_flow_1.json") as { payload: Record<string, unknown> };
  const noExpiry = { ...base.payload };
  delete noExpiry.expires_at;
  assert.throws(() => parseIngressMessage("authorize_flow", noExpiry), /Missing field `payload.expires_at`/);
  const badKey = structuredClone(base.payload) as { client: Record<string, unknown> };
  badKey.client.public_key = "not base64";
  assert.throws(() => parseIngressMessage("authorize_flow", badKey), /`payload.client.public_key`/);
  const badIp = structuredClone(base.payload) as { client: Record<string, unknown> };
  badIp.client.ipv4 = "fd00::1";
  assert.throws(
    () => parseIngressMessage("authorize_flow", badIp),
    /`payload.client.ipv4`: expected an IPv4/,
  );
  assert.throws(() => parseIngressMessage("shout", {}), /Unknown event "shout"/);
  assert.throws(() => parseIngressMessage("init", null), /Invalid `payload`: expected an object, got null/);
  assert.throws(
    () =>
      parseIngressMessage("access_authorization_expiry_updated", {
        client_id: "3abd725a-733b-4801-ac16-72f26cd98a24",
        resource_id: "c7793628-8579-465b-83e3-1a5d4af4db3b",
        expires_at: null,
      }),
    /`payload.expires_at`: expected integer seconds/,
  );
  assert.equal(INGRESS_EVENTS.length, 10);
});

Deno.test("egress builders reproduce the derived egress fixtures byte for byte", () => {
  const flowRef = (fixture("ingress_authorize_flow_1.json") as { payload: { ref: string } }).payload.ref;
  const cases: [string, { event: string; payload?: unknown }, number][] = [
    ["derived/egress_flow_authorized_1.json", flowAuthorized(flowRef), 2],
    [
      "derived/egress_connection_ready_1.json",
      connectionReady("SFMyNTY.opaque-signed-ref-from-request_connection", {
        username: "qWe4RtYu8IoP1aSd",
        password: new Secret("fGh2JkL3zXc4VbN5mQw6Er"),
      }),
      5,
    ],
    [
      "derived/egress_broadcast_ice_candidates_1.json",
      broadcastIceCandidates(["3abd725a-733b-4801-ac16-72f26cd98a24"], [
        "candidate:fffe3f02a1b2c3d4e5f60718 1 udp 37748479 198.51.100.9 61234 typ relay raddr 0.0.0.0 rport 0 ufrag ejqt",
        "candidate:fffeff7e1a2b3c4d5e6f7081 1 udp 2130706175 10.0.0.5 52625 typ host ufrag ejqt",
        "candidate:fffeff6435be70ddbf995982 1 udp 1694498559 203.0.113.7 52625 typ srflx raddr 0.0.0.0 rport 0",
      ]),
      3,
    ],
    [
      "derived/egress_broadcast_invalidated_ice_candidates_1.json",
      broadcastInvalidatedIceCandidates(["3abd725a-733b-4801-ac16-72f26cd98a24"], [
        "candidate:fffe3f02a1b2c3d4e5f60718 1 udp 37748479 198.51.100.9 61234 typ relay raddr 0.0.0.0 rport 0 ufrag ejqt",
      ]),
      4,
    ],
    ["derived/egress_heartbeat_1.json", { event: "heartbeat", payload: {} }, 1],
  ];
  for (const [name, msg, ref] of cases) {
    const topic = msg.event === "heartbeat" ? "phoenix" : "gateway";
    assert.equal(encodeFrame(topic, msg.event, msg.payload, ref), fixtureText(name), name);
  }
  assert.equal(encodeFrame("gateway", "phx_join", null, 0), fixtureText("derived/egress_phx_join_1.json"));
  assert.equal(encodeFrame("test", "phx_join", null, 1), fixtureText("egress_phx_join_1.json"));
  assert.equal(encodeFrame("test", "bar", undefined, 0), fixtureText("egress_bar_1.json"));
});

Deno.test("sortCandidatesForPortal() orders by priority and drops equal priorities (upstream quirk)", () => {
  const host = "candidate:a 1 udp 2130706175 10.0.0.5 52625 typ host";
  const hostSamePriority = "candidate:b 1 udp 2130706175 10.0.0.6 52625 typ host";
  const relay = "candidate:c 1 udp 37748479 198.51.100.9 61234 typ relay raddr 0.0.0.0 rport 0";
  const srflx = "candidate:d 1 udp 1694498559 203.0.113.7 52625 typ srflx raddr 0.0.0.0 rport 0";
  assert.deepEqual(sortCandidatesForPortal([relay, host, srflx, hostSamePriority]), [host, srflx, relay]);
});

Deno.test("parseFrame() accepts the Phoenix fixtures and refuses string refs", () => {
  assert.deepEqual(parseFrame(fixtureText("ingress_shout_1.json")), {
    topic: "room:lobby",
    event: "shout",
    payload: { hello: "world" },
    ref: null,
  });
  assert.deepEqual(parseFrame(fixtureText("ingress_foo_1.json")), {
    topic: "test",
    event: "foo",
    payload: null,
    ref: null,
  });
  assert.equal(parseFrame(fixtureText("ingress_phx_reply_5.json")).ref, 1);
  assert.equal(parseFrame(fixtureText("ingress_phx_reply_4.json")).ref, null);
  assert.deepEqual(parseFrame(fixtureText("ingress_disconnect_1.json")).payload, { reason: "token_expired" });
  assert.equal(parseFrame(fixtureText("ingress_phx_close_1.json")).event, "phx_close");
  assert.throws(
    () => parseFrame(fixtureText("ingress_phx_reply_1.json")),
    /`ref` must be a non-negative integer/,
  );
  assert.throws(() => parseFrame("[1,2]"), /not a JSON object/);
  assert.throws(() => parseFrame("{"), SyntaxError);
});
