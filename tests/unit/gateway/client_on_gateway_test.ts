import assert from "node:assert/strict";
import {
  type ClientOnGateway,
  SetupDnsNatResult,
  UpdateFiltersResult,
} from "../../../src/gateway/client_on_gateway.ts";
import { UDP_TTL_MS } from "../../../src/gateway/nat_table.ts";
import { PolicyOutput, PolicyResult, policyResultName } from "../../../src/gateway/packet_policy.ts";
import { FilterVerdict } from "../../../src/gateway/filter_engine.ts";
import { TCP_FLAG_ACK } from "../../../src/wire/tcp.ts";
import {
  BAR_RESOURCE_ID,
  BAZ_RESOURCE_ID,
  checksumsValid,
  cidr,
  CLIENT_V4,
  CLIENT_V6,
  dns,
  dstIp,
  dstPort,
  FOO_RESOURCE_ID,
  GATEWAY_V4,
  GATEWAY_V6,
  ICMP_FILTER,
  icmpEcho,
  internet,
  newClient,
  srcIp,
  srcPort,
  tcp,
  tcpFilter,
  udp,
  udpFilter,
} from "./_packets.ts";

const FOO_NAME = "foo.com";
const FOO_ALLOWED_PORT = 80;
const BAR_ALLOWED_PORT = 443;
const FOO_REAL_IP1 = "10.0.0.1";
const FOO_REAL_IP2 = "10.0.0.2";
const BAR_CONTAINED_IP = "10.0.0.1";
const PROXY_IP4_1 = "100.96.0.1";
const PROXY_IP4_2 = "100.96.0.2";
const PROXY_IP6_1 = "fd00:2021:1111:8000::";
const PROXY_IP6_2 = "fd00:2021:1111:8000::1";

const fooDnsResource = () =>
  dns(FOO_RESOURCE_ID, FOO_NAME, [udpFilter(FOO_ALLOWED_PORT, FOO_ALLOWED_PORT)], "foo");
const barCidrResource = () =>
  cidr(BAR_RESOURCE_ID, "10.0.0.0/24", [udpFilter(BAR_ALLOWED_PORT, BAR_ALLOWED_PORT)], "bar");

// ---------------------------------------------------------------------------------------------
// Upstream peer.rs tests

Deno.test("ClientOnGateway: gateway filters expire individually", () => {
  const peer = newClient();
  const now = Date.UTC(2025, 0, 1);
  const then = now + 10_000;
  const afterThen = then + 10_000;
  peer.addResource(cidr(FOO_RESOURCE_ID, "10.0.0.0/24", [tcpFilter(20, 100)], "cidr1"), then);
  peer.addResource(cidr(BAR_RESOURCE_ID, "10.0.0.0/24", [udpFilter(20, 100)], "cidr2"), afterThen);
  const tcpPacket = () => tcp(CLIENT_V4, "10.0.0.1", 5401, 80);
  const udpPacket = () => udp(CLIENT_V4, "10.0.0.1", 5401, 80, new Uint8Array(100));

  assert.deepEqual(peer.expire(now), { removed: [], empty: false });
  assert.equal(outbound(peer, tcpPacket()), PolicyResult.Forward);
  assert.equal(outbound(peer, udpPacket()), PolicyResult.Forward);

  assert.deepEqual(peer.expire(then), { removed: [FOO_RESOURCE_ID], empty: false });
  assert.equal(outbound(peer, tcpPacket()), PolicyResult.Filtered);
  assert.equal(outbound(peer, udpPacket()), PolicyResult.Forward);

  assert.deepEqual(peer.expire(afterThen), { removed: [BAR_RESOURCE_ID], empty: true });
  assert.equal(outbound(peer, tcpPacket()), PolicyResult.Filtered);
  assert.equal(outbound(peer, udpPacket()), PolicyResult.Filtered);
});

Deno.test("ClientOnGateway: allows packets for and from the gateway's tunnel IP", () => {
  const peer = newClient();

  assert.equal(outbound(peer, tcp(CLIENT_V4, GATEWAY_V4, 5401, 80)), PolicyResult.Forward);
  assert.equal(inbound(peer, tcp(GATEWAY_V4, CLIENT_V4, 80, 5401)), PolicyResult.Forward);
  assert.equal(outbound(peer, udp(CLIENT_V6, GATEWAY_V6, 5401, 53535)), PolicyResult.Forward);
  assert.equal(inbound(peer, udp(GATEWAY_V6, CLIENT_V6, 53535, 5401)), PolicyResult.Forward);
});

Deno.test("ClientOnGateway: DNS and CIDR filters don't mix", () => {
  const peer = newClient();
  peer.addResource(fooDnsResource(), null);
  peer.addResource(barCidrResource(), null);
  assert.equal(
    peer.setupDnsNat(FOO_RESOURCE_ID, FOO_NAME, [PROXY_IP4_1], [FOO_REAL_IP1], 0),
    SetupDnsNatResult.Ok,
  );
  assert.equal(BAR_CONTAINED_IP, FOO_REAL_IP1);

  assert.equal(outbound(peer, udp(CLIENT_V4, BAR_CONTAINED_IP, 1, BAR_ALLOWED_PORT)), PolicyResult.Forward);
  assert.equal(outbound(peer, udp(CLIENT_V4, BAR_CONTAINED_IP, 1, FOO_ALLOWED_PORT)), PolicyResult.Filtered);
  assert.equal(outbound(peer, udp(CLIENT_V4, PROXY_IP4_1, 1, BAR_ALLOWED_PORT)), PolicyResult.Filtered);
  assert.equal(outbound(peer, udp(CLIENT_V4, PROXY_IP4_1, 1, FOO_ALLOWED_PORT)), PolicyResult.Forward);
});

Deno.test("ClientOnGateway: the Internet resource doesn't allow all traffic for DNS resources", () => {
  const peer = newClient();
  peer.addResource(fooDnsResource(), null);
  peer.addResource(internet(), null);
  peer.setupDnsNat(FOO_RESOURCE_ID, FOO_NAME, [PROXY_IP4_1], [FOO_REAL_IP1], 0);

  assert.equal(outbound(peer, udp(CLIENT_V4, PROXY_IP4_1, 1, FOO_ALLOWED_PORT)), PolicyResult.Forward);
  assert.equal(outbound(peer, udp(CLIENT_V4, PROXY_IP4_1, 1, 600)), PolicyResult.Filtered);
  assert.equal(outbound(peer, udp(CLIENT_V4, "1.1.1.1", 1, 600)), PolicyResult.Forward);
});

Deno.test("ClientOnGateway: a DNS resource packet is dropped after its NAT session expires", () => {
  const peer = newClient();
  peer.addResource(fooDnsResource(), null);
  peer.setupDnsNat(FOO_RESOURCE_ID, FOO_NAME, [PROXY_IP4_1], [FOO_REAL_IP1], 0);
  let now = 5_000;

  assert.equal(outbound(peer, udp(CLIENT_V4, PROXY_IP4_1, 1, FOO_ALLOWED_PORT), now), PolicyResult.Forward);

  now += 30_000;
  peer.handleTimeout(now);
  assert.equal(
    inbound(peer, udp(FOO_REAL_IP1, CLIENT_V4, FOO_ALLOWED_PORT, 1), now),
    PolicyResult.Forward,
    "After 30s remote should still be able to send a packet back",
  );

  now += UDP_TTL_MS;
  peer.handleTimeout(now);
  assert.equal(
    inbound(peer, udp(FOO_REAL_IP1, CLIENT_V4, FOO_ALLOWED_PORT, 1), now),
    PolicyResult.ExpiredNatSession,
  );
});

Deno.test("ClientOnGateway: setting up DNS resource NAT does not clear an existing NAT session", () => {
  const peer = newClient();
  peer.addResource(fooDnsResource(), null);
  peer.setupDnsNat(FOO_RESOURCE_ID, FOO_NAME, [PROXY_IP4_1, PROXY_IP4_2], [FOO_REAL_IP1], 0);
  const request = () => udp(CLIENT_V4, PROXY_IP4_1, 1, FOO_ALLOWED_PORT);
  assert.equal(outbound(peer, request()), PolicyResult.Forward);

  // Setting up with a new IP: the proxy IP with an open session keeps its translation.
  peer.setupDnsNat(FOO_RESOURCE_ID, FOO_NAME, [PROXY_IP4_1, PROXY_IP4_2], [FOO_REAL_IP2], 0);

  const again = request();
  assert.equal(outbound(peer, again), PolicyResult.Forward);
  assert.equal(dstIp(again), FOO_REAL_IP1);
  assert.equal(inbound(peer, udp(FOO_REAL_IP1, CLIENT_V4, FOO_ALLOWED_PORT, 1)), PolicyResult.Forward);
  // A new flow to the same proxy IP still uses the kept translation.
  const newPort = udp(CLIENT_V4, PROXY_IP4_1, 2, FOO_ALLOWED_PORT);
  assert.equal(outbound(peer, newPort), PolicyResult.Forward);
  assert.equal(dstIp(newPort), FOO_REAL_IP1);
  // The proxy IP without sessions was re-pointed to the new address.
  const other = udp(CLIENT_V4, PROXY_IP4_2, 3, FOO_ALLOWED_PORT);
  assert.equal(outbound(peer, other), PolicyResult.Forward);
  assert.equal(dstIp(other), FOO_REAL_IP2);
});

Deno.test("ClientOnGateway: a proxy IP is re-pointed once its NAT sessions expired", () => {
  const peer = newClient();
  peer.addResource(fooDnsResource(), null);
  peer.setupDnsNat(FOO_RESOURCE_ID, FOO_NAME, [PROXY_IP4_1], [FOO_REAL_IP1], 0);
  assert.equal(outbound(peer, udp(CLIENT_V4, PROXY_IP4_1, 1, FOO_ALLOWED_PORT), 0), PolicyResult.Forward);
  peer.handleTimeout(UDP_TTL_MS);

  peer.setupDnsNat(FOO_RESOURCE_ID, FOO_NAME, [PROXY_IP4_1], [FOO_REAL_IP2], UDP_TTL_MS);

  const p = udp(CLIENT_V4, PROXY_IP4_1, 1, FOO_ALLOWED_PORT);
  assert.equal(outbound(peer, p, UDP_TTL_MS), PolicyResult.Forward);
  assert.equal(dstIp(p), FOO_REAL_IP2);
});

// ---------------------------------------------------------------------------------------------
// Resource model

Deno.test("ClientOnGateway.addResource() on an existing resource only replaces its filters", () => {
  const peer = newClient();
  peer.addResource(cidr(FOO_RESOURCE_ID, "10.0.0.0/24", [tcpFilter(80, 80)]), 1000);

  assert.equal(peer.addResource(cidr(FOO_RESOURCE_ID, "10.9.0.0/24", [tcpFilter(81, 81)]), null), true);

  assert.equal(peer.resource(FOO_RESOURCE_ID)?.expiresAtUtcMs, 1000, "expiry kept (quirk)");
  assert.equal(outbound(peer, tcp(CLIENT_V4, "10.0.0.5", 1, 81)), PolicyResult.Forward, "address kept");
  assert.equal(outbound(peer, tcp(CLIENT_V4, "10.0.0.5", 1, 80)), PolicyResult.Filtered);
  assert.equal(outbound(peer, tcp(CLIENT_V4, "10.9.0.5", 1, 81)), PolicyResult.Filtered);
  assert.deepEqual(peer.expire(1000), { removed: [FOO_RESOURCE_ID], empty: true });
});

Deno.test("ClientOnGateway.updateFilters() replaces filters and refuses type changes", () => {
  const peer = newClient();
  peer.addResource(cidr(FOO_RESOURCE_ID, "10.0.0.0/24", [tcpFilter(80, 80)]), null);

  assert.equal(
    peer.updateFilters(cidr(FOO_RESOURCE_ID, "10.0.0.0/24", [udpFilter(53, 53)])),
    UpdateFiltersResult.Updated,
  );
  assert.equal(outbound(peer, udp(CLIENT_V4, "10.0.0.5", 1, 53)), PolicyResult.Forward);
  assert.equal(outbound(peer, tcp(CLIENT_V4, "10.0.0.5", 1, 80)), PolicyResult.Filtered);

  assert.equal(peer.updateFilters(dns(FOO_RESOURCE_ID, "x.com", [])), UpdateFiltersResult.TypeChanged);
  assert.equal(outbound(peer, tcp(CLIENT_V4, "10.0.0.5", 1, 80)), PolicyResult.Filtered, "unchanged");
  assert.equal(
    peer.updateFilters(cidr(BAR_RESOURCE_ID, "10.0.0.0/24", [])),
    UpdateFiltersResult.UnknownResource,
  );
});

Deno.test("ClientOnGateway.updateExpiry(), removeResource() and retainResources()", () => {
  const peer = newClient();
  peer.addResource(cidr(FOO_RESOURCE_ID, "10.0.0.0/24", []), null);
  peer.addResource(cidr(BAR_RESOURCE_ID, "10.1.0.0/24", []), null);
  peer.addResource(internet(), null);

  assert.equal(peer.updateExpiry(FOO_RESOURCE_ID, 500), true);
  assert.equal(peer.updateExpiry(BAZ_RESOURCE_ID, 500), false);
  assert.deepEqual(peer.expire(499).removed, []);
  assert.deepEqual(peer.expire(500).removed, [FOO_RESOURCE_ID]);
  assert.equal(peer.internetResourceEnabled, true);

  assert.deepEqual(peer.retainResources([BAR_RESOURCE_ID]), [internet().id]);
  assert.equal(peer.internetResourceEnabled, false);
  assert.equal(outbound(peer, udp(CLIENT_V4, "1.1.1.1", 1, 53)), PolicyResult.Filtered);
  assert.equal(peer.removeResource(BAR_RESOURCE_ID), true);
  assert.equal(peer.removeResource(BAR_RESOURCE_ID), false);
  assert.equal(peer.isEmpty(), true);
});

Deno.test("ClientOnGateway.setupDnsNat() refuses unknown, non-DNS and mismatching resources", () => {
  const peer = newClient();
  peer.addResource(dns(FOO_RESOURCE_ID, "*.corp.example", []), null);
  peer.addResource(cidr(BAR_RESOURCE_ID, "10.0.0.0/8", []), null);

  assert.equal(
    peer.setupDnsNat(BAZ_RESOURCE_ID, "a.corp.example", [PROXY_IP4_1], ["1.2.3.4"], 0),
    SetupDnsNatResult.UnknownResource,
  );
  assert.equal(
    peer.setupDnsNat(BAR_RESOURCE_ID, "a.corp.example", [PROXY_IP4_1], ["1.2.3.4"], 0),
    SetupDnsNatResult.NotDnsResource,
  );
  assert.equal(
    peer.setupDnsNat(FOO_RESOURCE_ID, "a.b.corp.example", [PROXY_IP4_1], ["1.2.3.4"], 0),
    SetupDnsNatResult.DomainMismatch,
  );
  assert.equal(
    peer.setupDnsNat(FOO_RESOURCE_ID, "A.Corp.Example.", [PROXY_IP4_1], ["1.2.3.4"], 0),
    SetupDnsNatResult.Ok,
  );
  assert.equal(
    peer.setupDnsNat(FOO_RESOURCE_ID, "corp.example", [PROXY_IP4_2], ["1.2.3.5"], 0),
    SetupDnsNatResult.Ok,
  );
  const domains = (peer.resource(FOO_RESOURCE_ID) as { domains: Map<string, unknown> }).domains;
  assert.deepEqual([...domains.keys()], ["a.corp.example", "corp.example"]);
});

Deno.test("ClientOnGateway.setupDnsNat() pairs sorted proxy and resolved IPs round-robin per family", () => {
  const peer = newClient();
  peer.addResource(dns(FOO_RESOURCE_ID, FOO_NAME, []), null);
  const proxies4 = ["100.96.0.4", "100.96.0.3", "100.96.0.2", "100.96.0.1"];
  const proxies6 = [
    "fd00:2021:1111:8000::4",
    "fd00:2021:1111:8000::3",
    "fd00:2021:1111:8000::2",
    "fd00:2021:1111:8000::1",
  ];

  peer.setupDnsNat(FOO_RESOURCE_ID, FOO_NAME, [...proxies6, ...proxies4], [
    "2001:db8::2",
    "10.0.0.2",
    "2001:db8::1",
    "10.0.0.1",
  ], 0);

  const dest = (proxy: string) => {
    const p = proxy.includes(":") ? udp(CLIENT_V6, proxy, 7, 9) : udp(CLIENT_V4, proxy, 7, 9);
    assert.equal(outbound(peer, p), PolicyResult.Forward);
    return dstIp(p);
  };
  assert.deepEqual(["100.96.0.1", "100.96.0.2", "100.96.0.3", "100.96.0.4"].map(dest), [
    "10.0.0.1",
    "10.0.0.2",
    "10.0.0.1",
    "10.0.0.2",
  ]);
  assert.deepEqual(proxies6.slice().reverse().map(dest), [
    "2001:db8::1",
    "2001:db8::2",
    "2001:db8::1",
    "2001:db8::2",
  ]);
});

Deno.test("ClientOnGateway: an IPv4-only domain maps IPv6 proxies to IPv4 → ICMPv6 address unreachable", () => {
  const peer = newClient();
  peer.addResource(fooDnsResource(), null);
  peer.setupDnsNat(FOO_RESOURCE_ID, FOO_NAME, [PROXY_IP4_1, PROXY_IP4_2, PROXY_IP6_1, PROXY_IP6_2], [
    FOO_REAL_IP1,
  ], 0);
  const out = new PolicyOutput();
  const request = udp(CLIENT_V6, PROXY_IP6_1, 1, FOO_ALLOWED_PORT);

  const code = peer.translateOutbound(request, 0, request.length, 0, out);

  assert.equal(code, PolicyResult.DestinationUnreachable);
  const reply = out.replyBuf.slice(out.replyOff, out.replyOff + out.replyLen);
  assert.equal(dstIp(reply), CLIENT_V6);
  assert.equal(srcIp(reply), PROXY_IP6_1);
  assert.deepEqual([reply[40], reply[41]], [1, 3], "ICMPv6 destination unreachable, address unreachable");
  assert.equal(checksumsValid(reply), true);
});

Deno.test("ClientOnGateway: a resolution without addresses installs no translation", () => {
  const peer = newClient();
  peer.addResource(fooDnsResource(), null);

  assert.equal(peer.setupDnsNat(FOO_RESOURCE_ID, FOO_NAME, [PROXY_IP4_1], [], 0), SetupDnsNatResult.Ok);

  assert.equal(outbound(peer, udp(CLIENT_V4, PROXY_IP4_1, 1, FOO_ALLOWED_PORT)), PolicyResult.Filtered);
});

Deno.test("ClientOnGateway: proxy IPs outside the DNS proxy ranges are ignored", () => {
  const peer = newClient();
  peer.addResource(dns(FOO_RESOURCE_ID, FOO_NAME, []), null);

  peer.setupDnsNat(FOO_RESOURCE_ID, FOO_NAME, ["10.0.0.9", PROXY_IP4_1], [FOO_REAL_IP1], 0);

  assert.equal(outbound(peer, udp(CLIENT_V4, "10.0.0.9", 1, 80)), PolicyResult.Filtered);
  assert.equal(outbound(peer, udp(CLIENT_V4, PROXY_IP4_1, 1, 80)), PolicyResult.Forward);
});

// ---------------------------------------------------------------------------------------------
// Filters on the packet paths

Deno.test("translateOutbound(): only the client's own tunnel addresses may send", () => {
  const peer = newClient();
  peer.addResource(cidr(FOO_RESOURCE_ID, "0.0.0.0/0", []), null);
  peer.addResource(cidr(BAR_RESOURCE_ID, "::/0", []), null);

  assert.equal(outbound(peer, udp("100.64.0.9", "10.0.0.1", 1, 53)), PolicyResult.NotClientSource);
  assert.equal(outbound(peer, udp("fd00:2021:1111::9", "2001:db8::1", 1, 53)), PolicyResult.NotClientSource);
  assert.equal(outbound(peer, udp(CLIENT_V4, "10.0.0.1", 1, 53)), PolicyResult.Forward);
  assert.equal(outbound(peer, udp(CLIENT_V6, "2001:db8::1", 1, 53)), PolicyResult.Forward);
});

Deno.test("translateOutbound(): ICMP echo needs the ICMP filter; other ICMP types iff the flag is set", () => {
  const withIcmp = newClient();
  withIcmp.addResource(cidr(FOO_RESOURCE_ID, "10.0.0.0/24", [ICMP_FILTER]), null);
  const without = newClient();
  without.addResource(cidr(FOO_RESOURCE_ID, "10.0.0.0/24", [tcpFilter(0, 65535), udpFilter(0, 65535)]), null);
  const timestamp = () => icmpOfType(CLIENT_V4, "10.0.0.1", 13);

  assert.equal(outbound(withIcmp, icmpEcho(CLIENT_V4, "10.0.0.1", 7, 1)), PolicyResult.Forward);
  assert.equal(outbound(withIcmp, timestamp()), PolicyResult.Forward);
  assert.equal(outbound(withIcmp, tcp(CLIENT_V4, "10.0.0.1", 1, 80)), PolicyResult.Filtered);
  assert.equal(outbound(without, icmpEcho(CLIENT_V4, "10.0.0.1", 7, 1)), PolicyResult.Filtered);
  assert.equal(outbound(without, timestamp()), PolicyResult.Filtered);
  assert.equal(outbound(without, tcp(CLIENT_V4, "10.0.0.1", 1, 80)), PolicyResult.Forward);
});

Deno.test("translateInbound(): ICMP errors from resources pass without the ICMP filter; echo replies need it", () => {
  const peer = newClient();
  peer.addResource(cidr(FOO_RESOURCE_ID, "10.0.0.0/24", [tcpFilter(80, 80)]), null);
  const quoted = tcp(CLIENT_V4, "10.0.0.1", 5000, 80);
  const error = icmpV4Error("10.0.0.1", CLIENT_V4, 3, 3, quoted);

  assert.equal(inbound(peer, error), PolicyResult.Forward);
  assert.equal(inbound(peer, icmpEcho("10.0.0.1", CLIENT_V4, 7, 1, true)), PolicyResult.Filtered);
  assert.equal(inbound(peer, tcp("10.0.0.1", CLIENT_V4, 80, 5000)), PolicyResult.Forward);
  assert.equal(inbound(peer, tcp("10.0.0.1", CLIENT_V4, 81, 5000)), PolicyResult.Filtered);
  assert.equal(inbound(peer, tcp("10.0.1.1", CLIENT_V4, 80, 5000)), PolicyResult.Filtered);
  assert.equal(inbound(peer, tcp("10.0.0.1", "100.64.0.77", 80, 5000)), PolicyResult.NotClientDestination);
});

Deno.test("translateInbound(): unsupported ICMP types and IP protocols fail (as upstream's NAT lookup does)", () => {
  const peer = newClient();
  peer.addResource(cidr(FOO_RESOURCE_ID, "10.0.0.0/24", []), null);

  assert.equal(inbound(peer, icmpOfType("10.0.0.1", CLIENT_V4, 13)), PolicyResult.UnsupportedProtocol);
  assert.equal(inbound(peer, rawIpv4("10.0.0.1", CLIENT_V4, 47)), PolicyResult.UnsupportedProtocol);
  assert.equal(
    outbound(peer, rawIpv4(CLIENT_V4, "10.0.0.1", 47)),
    PolicyResult.Forward,
    "GRE under permit-all",
  );
});

Deno.test("translateOutbound(): port-range edges 0, 65535 and start = end", () => {
  const peer = newClient();
  peer.addResource(
    cidr(FOO_RESOURCE_ID, "10.0.0.0/24", [tcpFilter(0, 0), tcpFilter(65535, 65535), udpFilter(53, 53)]),
    null,
  );

  assert.equal(outbound(peer, tcp(CLIENT_V4, "10.0.0.1", 1, 0)), PolicyResult.Forward);
  assert.equal(outbound(peer, tcp(CLIENT_V4, "10.0.0.1", 1, 1)), PolicyResult.Filtered);
  assert.equal(outbound(peer, tcp(CLIENT_V4, "10.0.0.1", 1, 65535)), PolicyResult.Forward);
  assert.equal(outbound(peer, tcp(CLIENT_V4, "10.0.0.1", 1, 65534)), PolicyResult.Filtered);
  assert.equal(outbound(peer, udp(CLIENT_V4, "10.0.0.1", 1, 53)), PolicyResult.Forward);
  assert.equal(outbound(peer, udp(CLIENT_V4, "10.0.0.1", 1, 54)), PolicyResult.Filtered);
  assert.equal(outbound(peer, udp(CLIENT_V4, "10.0.0.1", 1, 52)), PolicyResult.Filtered);
});

Deno.test("translateOutbound(): permit-all when any resource covering the network has no filters", () => {
  const peer = newClient();
  peer.addResource(cidr(FOO_RESOURCE_ID, "10.0.0.0/24", [tcpFilter(80, 80)]), null);
  peer.addResource(cidr(BAR_RESOURCE_ID, "10.0.0.0/16", []), null);

  assert.equal(outbound(peer, udp(CLIENT_V4, "10.0.0.1", 1, 9999)), PolicyResult.Forward);
  assert.equal(outbound(peer, rawIpv4(CLIENT_V4, "10.0.0.1", 132)), PolicyResult.Forward);
});

Deno.test("translateOutbound(): overlapping CIDRs combine the filters of supersets", () => {
  const peer = newClient();
  peer.addResource(cidr(FOO_RESOURCE_ID, "10.0.0.0/24", [tcpFilter(80, 80)]), null);
  peer.addResource(cidr(BAR_RESOURCE_ID, "10.0.0.0/16", [udpFilter(53, 53)]), null);
  peer.addResource(cidr(BAZ_RESOURCE_ID, "10.0.0.5/32", [ICMP_FILTER]), null);

  // /32: its own ICMP + the /24's TCP 80 + the /16's UDP 53.
  assert.equal(outbound(peer, icmpEcho(CLIENT_V4, "10.0.0.5", 1, 1)), PolicyResult.Forward);
  assert.equal(outbound(peer, tcp(CLIENT_V4, "10.0.0.5", 1, 80)), PolicyResult.Forward);
  assert.equal(outbound(peer, udp(CLIENT_V4, "10.0.0.5", 1, 53)), PolicyResult.Forward);
  // /24: TCP 80 + UDP 53, no ICMP.
  assert.equal(outbound(peer, tcp(CLIENT_V4, "10.0.0.6", 1, 80)), PolicyResult.Forward);
  assert.equal(outbound(peer, udp(CLIENT_V4, "10.0.0.6", 1, 53)), PolicyResult.Forward);
  assert.equal(outbound(peer, icmpEcho(CLIENT_V4, "10.0.0.6", 1, 1)), PolicyResult.Filtered);
  // /16 only: UDP 53.
  assert.equal(outbound(peer, tcp(CLIENT_V4, "10.0.1.6", 1, 80)), PolicyResult.Filtered);
  assert.equal(outbound(peer, udp(CLIENT_V4, "10.0.1.6", 1, 53)), PolicyResult.Forward);

  peer.removeResource(BAR_RESOURCE_ID);
  assert.equal(outbound(peer, udp(CLIENT_V4, "10.0.0.5", 1, 53)), PolicyResult.Filtered);
  assert.equal(outbound(peer, udp(CLIENT_V4, "10.0.1.6", 1, 53)), PolicyResult.Filtered);
});

Deno.test("translateOutbound(): the Internet resource allows everything but the DNS proxy ranges", () => {
  const peer = newClient();
  peer.addResource(internet(), null);

  assert.equal(outbound(peer, udp(CLIENT_V4, "1.1.1.1", 1, 53)), PolicyResult.Forward);
  assert.equal(outbound(peer, udp(CLIENT_V4, "100.95.255.255", 1, 53)), PolicyResult.Forward);
  assert.equal(outbound(peer, udp(CLIENT_V4, "100.128.0.0", 1, 53)), PolicyResult.Forward);
  assert.equal(outbound(peer, udp(CLIENT_V4, "100.96.0.0", 1, 53)), PolicyResult.Filtered);
  assert.equal(outbound(peer, udp(CLIENT_V4, "100.127.255.255", 1, 53)), PolicyResult.Filtered);
  assert.equal(outbound(peer, udp(CLIENT_V6, "2001:db8::1", 1, 53)), PolicyResult.Forward);
  assert.equal(outbound(peer, udp(CLIENT_V6, "fd00:2021:1111:8000::1f:ffff", 1, 53)), PolicyResult.Filtered);
  assert.equal(outbound(peer, udp(CLIENT_V6, "fd00:2021:1111:8000::20:0", 1, 53)), PolicyResult.Forward);
  assert.equal(
    outbound(peer, udp(CLIENT_V6, "fd00:2021:1111:7fff:ffff:ffff:ffff:ffff", 1, 53)),
    PolicyResult.Forward,
  );
});

// ---------------------------------------------------------------------------------------------
// ICMP replies (byte level)

Deno.test("translateOutbound(): Filtered IPv4 → ICMP 3/13, TTL 20, swapped addresses, IP header + 8 bytes", () => {
  const peer = newClient();
  const original = udp(CLIENT_V4, "10.0.0.1", 1234, 81, new Uint8Array(100));
  const out = new PolicyOutput(new Uint8Array(2000), 100);

  const code = peer.translateOutbound(original, 0, original.length, 0, out);

  assert.equal(code, PolicyResult.Filtered);
  assert.equal(out.filterVerdict, FilterVerdict.NoResource);
  assert.equal(out.replyLen, 20 + 8 + 20 + 8);
  const reply = out.replyBuf.slice(100, 100 + out.replyLen);
  assert.equal(reply[0], 0x45);
  assert.equal(reply[8], 20, "TTL");
  assert.equal(reply[9], 1, "ICMP");
  assert.equal(srcIp(reply), "10.0.0.1");
  assert.equal(dstIp(reply), CLIENT_V4);
  assert.deepEqual([reply[20], reply[21]], [3, 13]);
  assert.deepEqual(Array.from(reply.subarray(24, 28)), [0, 0, 0, 0]);
  assert.deepEqual(Array.from(reply.subarray(28)), Array.from(original.subarray(0, 28)));
  assert.equal(checksumsValid(reply), true);
  assert.equal(out.replyBuf[99], 0, "nothing written before replyOff");
});

Deno.test("translateOutbound(): Filtered IPv6 → ICMPv6 1/1, hop limit 20, whole packet quoted", () => {
  const peer = newClient();
  const original = tcp(CLIENT_V6, "2001:db8::1", 1234, 22, TCP_FLAG_ACK, new Uint8Array(50));
  const out = new PolicyOutput();

  const code = peer.translateOutbound(original, 0, original.length, 0, out);

  assert.equal(code, PolicyResult.Filtered);
  assert.equal(out.replyLen, 40 + 8 + original.length);
  const reply = out.replyBuf.slice(0, out.replyLen);
  assert.equal(reply[0]! >> 4, 6);
  assert.equal(reply[6], 58, "next header ICMPv6");
  assert.equal(reply[7], 20, "hop limit");
  assert.equal(srcIp(reply), "2001:db8::1");
  assert.equal(dstIp(reply), CLIENT_V6);
  assert.deepEqual([reply[40], reply[41]], [1, 1]);
  assert.deepEqual(Array.from(reply.subarray(48)), Array.from(original));
  assert.equal(checksumsValid(reply), true);
});

Deno.test("translateOutbound(): an ICMPv6 reply to a 1280-byte packet is cut to 1280 bytes", () => {
  const peer = newClient();
  const original = udp(CLIENT_V6, "2001:db8::1", 1, 2, new Uint8Array(1280 - 48));
  assert.equal(original.length, 1280);
  const out = new PolicyOutput();

  peer.translateOutbound(original, 0, original.length, 0, out);

  assert.equal(out.replyLen, 1280);
  const reply = out.replyBuf.slice(0, 1280);
  assert.deepEqual(Array.from(reply.subarray(48)), Array.from(original.subarray(0, 1232)));
  assert.equal(checksumsValid(reply), true);
});

Deno.test("translateOutbound(): a DNS proxy IP without translation → ICMP network unreachable (3/0)", () => {
  const peer = newClient();
  // A CIDR resource over the proxy range lets the packet past the filter to the NAT step.
  peer.addResource(cidr(FOO_RESOURCE_ID, "100.96.0.0/11", []), null);
  peer.addResource(cidr(BAR_RESOURCE_ID, "fd00:2021:1111:8000::/107", []), null);
  const out = new PolicyOutput();
  const v4 = udp(CLIENT_V4, "100.96.0.9", 1, 2);

  assert.equal(peer.translateOutbound(v4, 0, v4.length, 0, out), PolicyResult.UnknownProxyIp);
  const reply4 = out.replyBuf.slice(0, out.replyLen);
  assert.deepEqual([reply4[20], reply4[21], reply4[8]], [3, 0, 20]);
  assert.equal(srcIp(reply4), "100.96.0.9");
  assert.equal(checksumsValid(reply4), true);

  const v6 = udp(CLIENT_V6, "fd00:2021:1111:8000::9", 1, 2);
  assert.equal(peer.translateOutbound(v6, 0, v6.length, 0, out), PolicyResult.UnknownProxyIp);
  const reply6 = out.replyBuf.slice(0, out.replyLen);
  assert.deepEqual([reply6[40], reply6[41], reply6[7]], [1, 3, 20]);
  assert.equal(checksumsValid(reply6), true);
});

Deno.test("translateOutbound(): a spoofed source is Filtered with a prohibited reply to that source", () => {
  const peer = newClient();
  const spoofed = udp("100.64.0.50", "10.0.0.1", 1, 2);
  const out = new PolicyOutput();

  assert.equal(peer.translateOutbound(spoofed, 0, spoofed.length, 0, out), PolicyResult.NotClientSource);

  const reply = out.replyBuf.slice(0, out.replyLen);
  assert.deepEqual([reply[20], reply[21]], [3, 13]);
  assert.equal(dstIp(reply), "100.64.0.50");
});

Deno.test("translateOutbound(): p2p control packets are reported, never forwarded", () => {
  const peer = newClient();
  const pkt = new Uint8Array(48 + 2);
  pkt[0] = 0x60;
  pkt[5] = 8 + 2;
  pkt[6] = 0xff;
  pkt[40] = 2;
  const out = new PolicyOutput();

  assert.equal(peer.translateOutbound(pkt, 0, pkt.length, 0, out), PolicyResult.P2pControl);
  assert.equal(out.p2pEvent, 2);
  assert.equal(out.replyLen, 0);
});

Deno.test("translateOutbound()/translateInbound(): malformed packets are dropped with a parse reason", () => {
  const peer = newClient();
  const out = new PolicyOutput();
  const junk = new Uint8Array([0x45, 0, 0, 99, 0, 0, 0, 0, 64, 17, 0, 0]);

  assert.equal(peer.translateOutbound(junk, 0, junk.length, 0, out), PolicyResult.Malformed);
  assert.notEqual(out.parseResult, 0);
  assert.equal(peer.translateInbound(junk, 0, junk.length, 0, out), PolicyResult.Malformed);
  assert.equal(policyResultName(PolicyResult.Malformed), "Malformed");
  assert.equal(policyResultName(PolicyResult.ExpiredNatSession), "ExpiredNatSession");
});

Deno.test("translateOutbound(): WireGuard padding after the IP packet is excluded from out.len", () => {
  const peer = newClient();
  peer.addResource(cidr(FOO_RESOURCE_ID, "10.0.0.0/8", []), null);
  const p = udp(CLIENT_V4, "10.0.0.1", 1, 2, new Uint8Array(3));
  const padded = new Uint8Array(p.length + 5);
  padded.set(p);
  const out = new PolicyOutput();

  assert.equal(peer.translateOutbound(padded, 0, padded.length, 0, out), PolicyResult.Forward);
  assert.equal(out.len, p.length);
});

// ---------------------------------------------------------------------------------------------
// DNS NAT through the packet paths

for (const family of [4, 6] as const) {
  const client = family === 4 ? CLIENT_V4 : CLIENT_V6;
  const proxy = family === 4 ? PROXY_IP4_1 : PROXY_IP6_1;
  const real = family === 4 ? "192.0.2.10" : "2001:db8::10";
  const builders = {
    tcp: (s: string, d: string, sp: number, dp: number, _reply: boolean) => tcp(s, d, sp, dp),
    udp: (s: string, d: string, sp: number, dp: number, _reply: boolean) => udp(s, d, sp, dp),
    // Echo requests carry the source-side identifier; replies echo it back (the NAT's destination id).
    icmp: (s: string, d: string, sp: number, dp: number, reply: boolean) =>
      icmpEcho(s, d, reply ? dp : sp, 9, reply),
  };
  for (const [proto, build] of Object.entries(builders)) {
    Deno.test(`DNS NAT round trip IPv${family}/${proto} keeps checksums valid`, () => {
      const peer = natClient(proxy, real);
      const request = build(client, proxy, 40000, 443, false);

      assert.equal(outbound(peer, request), PolicyResult.Forward);
      assert.equal(dstIp(request), real);
      assert.equal(srcIp(request), client);
      assert.equal(checksumsValid(request), true);
      const outsideId = proto === "icmp" ? idOf(request) : srcPort(request);

      const response = build(real, client, 443, outsideId, true);
      assert.equal(inbound(peer, response), PolicyResult.Forward);
      assert.equal(srcIp(response), proxy);
      assert.equal(dstIp(response), client);
      assert.equal(proto === "icmp" ? idOf(response) : dstPort(response), 40000);
      assert.equal(checksumsValid(response), true);
    });
  }
}

Deno.test("DNS NAT: two inside ports onto one outside port → the next free port; replies map back", () => {
  const peer = newClient();
  peer.addResource(dns(FOO_RESOURCE_ID, "*.foo.com", []), null);
  peer.setupDnsNat(FOO_RESOURCE_ID, "a.foo.com", [PROXY_IP4_1], ["192.0.2.10"], 0);
  peer.setupDnsNat(FOO_RESOURCE_ID, "b.foo.com", [PROXY_IP4_2], ["192.0.2.10"], 0);
  const first = udp(CLIENT_V4, PROXY_IP4_1, 65535, 53);
  const second = udp(CLIENT_V4, PROXY_IP4_2, 65535, 53);

  assert.equal(outbound(peer, first), PolicyResult.Forward);
  assert.equal(outbound(peer, second), PolicyResult.Forward);

  assert.equal(srcPort(first), 65535);
  assert.equal(srcPort(second), 1, "wrapped to 1");
  const r1 = udp("192.0.2.10", CLIENT_V4, 53, 65535);
  const r2 = udp("192.0.2.10", CLIENT_V4, 53, 1);
  assert.equal(inbound(peer, r1), PolicyResult.Forward);
  assert.equal(inbound(peer, r2), PolicyResult.Forward);
  assert.deepEqual([srcIp(r1), dstPort(r1)], [PROXY_IP4_1, 65535]);
  assert.deepEqual([srcIp(r2), dstPort(r2)], [PROXY_IP4_2, 65535]);
  assert.equal(checksumsValid(r2), true);
});

Deno.test("DNS NAT: two clients' flows to the same real IP and port are independent", () => {
  const a = natClient(PROXY_IP4_1, "192.0.2.10");
  const b = natClient(PROXY_IP4_1, "192.0.2.10", "100.64.0.7", "fd00:2021:1111::7");
  const pa = udp(CLIENT_V4, PROXY_IP4_1, 5000, 53);
  const pb = udp("100.64.0.7", PROXY_IP4_1, 5000, 53);

  assert.equal(outbound(a, pa), PolicyResult.Forward);
  assert.equal(outbound(b, pb), PolicyResult.Forward);
  // Different sources on TUN, so both keep port 5000 (the kernel's masquerade separates them).
  assert.deepEqual([srcIp(pa), srcPort(pa)], [CLIENT_V4, 5000]);
  assert.deepEqual([srcIp(pb), srcPort(pb)], ["100.64.0.7", 5000]);
  assert.equal(inbound(b, udp("192.0.2.10", "100.64.0.7", 53, 5000)), PolicyResult.Forward);
  assert.equal(inbound(a, udp("192.0.2.10", "100.64.0.7", 53, 5000)), PolicyResult.NotClientDestination);
});

Deno.test("DNS NAT: an outgoing TCP RST tears the session down", () => {
  const peer = natClient(PROXY_IP4_1, "192.0.2.10");
  assert.equal(outbound(peer, tcp(CLIENT_V4, PROXY_IP4_1, 40000, 443)), PolicyResult.Forward);
  assert.equal(peer.natSessionCount, 1);

  const rst = tcp(CLIENT_V4, PROXY_IP4_1, 40000, 443, 0x04);
  assert.equal(outbound(peer, rst), PolicyResult.Forward, "the RST itself is forwarded");
  assert.equal(dstIp(rst), "192.0.2.10");

  assert.equal(peer.natSessionCount, 0);
  assert.equal(inbound(peer, tcp("192.0.2.10", CLIENT_V4, 443, 40000)), PolicyResult.ExpiredNatSession);
});

Deno.test("DNS NAT: an incoming TCP RST is delivered, then the session is gone", () => {
  const peer = natClient(PROXY_IP6_1, "2001:db8::10");
  assert.equal(outbound(peer, tcp(CLIENT_V6, PROXY_IP6_1, 40000, 443)), PolicyResult.Forward);

  const rst = tcp("2001:db8::10", CLIENT_V6, 443, 40000, 0x04);
  assert.equal(inbound(peer, rst), PolicyResult.Forward);
  assert.equal(srcIp(rst), PROXY_IP6_1);
  assert.equal(checksumsValid(rst), true);

  assert.equal(inbound(peer, tcp("2001:db8::10", CLIENT_V6, 443, 40000)), PolicyResult.ExpiredNatSession);
});

Deno.test("DNS NAT: TCP sessions live 2 h, UDP and ICMP 2 min after the last outgoing packet", () => {
  const peer = natClient(PROXY_IP4_1, "192.0.2.10");
  outbound(peer, tcp(CLIENT_V4, PROXY_IP4_1, 1, 443), 0);
  outbound(peer, udp(CLIENT_V4, PROXY_IP4_1, 2, 443), 0);
  outbound(peer, icmpEcho(CLIENT_V4, PROXY_IP4_1, 3, 1), 0);

  peer.handleTimeout(119_999);
  assert.equal(peer.natSessionCount, 3);
  peer.handleTimeout(120_000);
  assert.equal(peer.natSessionCount, 1);
  assert.equal(
    inbound(peer, icmpEcho("192.0.2.10", CLIENT_V4, 3, 1, true), 120_000),
    PolicyResult.ExpiredNatSession,
  );
  peer.handleTimeout(7_199_999);
  assert.equal(inbound(peer, tcp("192.0.2.10", CLIENT_V4, 443, 1)), PolicyResult.Forward);
  peer.handleTimeout(7_200_000);
  assert.equal(inbound(peer, tcp("192.0.2.10", CLIENT_V4, 443, 1)), PolicyResult.ExpiredNatSession);
});

Deno.test("DNS NAT: an ICMPv4 destination unreachable for a NATed flow is rebuilt for the client", () => {
  const peer = newClient();
  peer.addResource(dns(FOO_RESOURCE_ID, "*.foo.com", []), null);
  peer.setupDnsNat(FOO_RESOURCE_ID, "a.foo.com", [PROXY_IP4_1], ["192.0.2.10"], 0);
  peer.setupDnsNat(FOO_RESOURCE_ID, "b.foo.com", [PROXY_IP4_2], ["192.0.2.10"], 0);
  outbound(peer, udp(CLIENT_V4, PROXY_IP4_1, 7000, 53));
  const sent = udp(CLIENT_V4, PROXY_IP4_2, 7000, 53, new Uint8Array(30));
  outbound(peer, sent);
  assert.equal(srcPort(sent), 7001);
  // A router answers the forwarded packet (as the kernel delivers it on TUN after un-masquerading).
  const error = icmpV4Error("198.51.100.1", CLIENT_V4, 3, 4, sent, 1400);
  const out = new PolicyOutput(new Uint8Array(1500), 10);

  const code = peer.translateInbound(error, 0, error.length, 0, out);

  assert.equal(code, PolicyResult.ForwardRebuilt);
  const rebuilt = out.replyBuf.slice(10, 10 + out.replyLen);
  assert.equal(out.replyLen, 20 + 8 + 28);
  assert.deepEqual([srcIp(rebuilt), dstIp(rebuilt), rebuilt[8]], [PROXY_IP4_2, CLIENT_V4, 20]);
  assert.deepEqual([rebuilt[20], rebuilt[21]], [3, 4]);
  assert.equal((rebuilt[26]! << 8) | rebuilt[27]!, 1400, "next-hop MTU kept");
  const quote = rebuilt.subarray(28);
  assert.equal(dstIp(quote), PROXY_IP4_2);
  assert.equal(srcIp(quote), CLIENT_V4);
  assert.equal((quote[20]! << 8) | quote[21]!, 7000, "original source port");
  assert.equal(checksumsValid(rebuilt), true);
  assert.equal(ipv4HeaderValid(quote), true, "quoted header checksum updated");
});

Deno.test("DNS NAT: an ICMPv6 packet-too-big for a NATed flow is rebuilt with its MTU", () => {
  const peer = natClient(PROXY_IP6_2, "2001:db8::10");
  const sent = tcp(CLIENT_V6, PROXY_IP6_2, 40000, 443, TCP_FLAG_ACK, new Uint8Array(1100));
  outbound(peer, sent);
  const error = icmpV6Error("2001:db8:ffff::1", CLIENT_V6, 2, 0, 1280, sent);

  const out = new PolicyOutput();
  const code = peer.translateInbound(error, 0, error.length, 0, out);

  assert.equal(code, PolicyResult.ForwardRebuilt);
  const rebuilt = out.replyBuf.slice(0, out.replyLen);
  assert.equal(out.replyLen, error.length);
  assert.deepEqual([srcIp(rebuilt), dstIp(rebuilt), rebuilt[7]], [PROXY_IP6_2, CLIENT_V6, 20]);
  assert.deepEqual([rebuilt[40], rebuilt[41]], [2, 0]);
  assert.equal(
    ((rebuilt[44]! << 24) | (rebuilt[45]! << 16) | (rebuilt[46]! << 8) | rebuilt[47]!) >>> 0,
    1280,
  );
  const quote = rebuilt.subarray(48);
  assert.equal(dstIp(quote), PROXY_IP6_2);
  assert.equal((quote[40]! << 8) | quote[41]!, 40000);
  assert.equal(checksumsValid(rebuilt), true);
});

Deno.test("DNS NAT: ICMP errors for expired sessions are dropped, for unknown flows passed on", () => {
  const peer = natClient(PROXY_IP4_1, "192.0.2.10");
  const sent = udp(CLIENT_V4, PROXY_IP4_1, 7000, 53);
  outbound(peer, sent, 0);
  peer.handleTimeout(UDP_TTL_MS);

  assert.equal(
    inbound(peer, icmpV4Error("198.51.100.1", CLIENT_V4, 11, 0, sent)),
    PolicyResult.ExpiredNatSession,
  );
  const other = udp(CLIENT_V4, "203.0.113.5", 7000, 53);
  assert.equal(inbound(peer, icmpV4Error("198.51.100.1", CLIENT_V4, 3, 1, other)), PolicyResult.Forward);
  assert.equal(
    inbound(peer, icmpV4Error("198.51.100.1", CLIENT_V4, 12, 0, other)),
    PolicyResult.UnsupportedProtocol,
  );
});

// ---------------------------------------------------------------------------------------------
// Helpers

function outbound(peer: ClientOnGateway, pkt: Uint8Array, now = 0): number {
  const out = new PolicyOutput();
  const code = peer.translateOutbound(pkt, 0, pkt.length, now, out);
  if (code === PolicyResult.Forward) assert.equal(checksumsValid(pkt), true, "forwarded packet checksums");
  return code;
}

function inbound(peer: ClientOnGateway, pkt: Uint8Array, now = 0): number {
  const out = new PolicyOutput();
  const code = peer.translateInbound(pkt, 0, pkt.length, now, out);
  if (code === PolicyResult.Forward) assert.equal(checksumsValid(pkt), true, "forwarded packet checksums");
  return code;
}

function natClient(proxy: string, real: string, v4 = CLIENT_V4, v6 = CLIENT_V6): ClientOnGateway {
  const peer = newClient("11111111-1111-1111-1111-111111111111", v4, v6);
  peer.addResource(dns(FOO_RESOURCE_ID, FOO_NAME, []), null);
  assert.equal(peer.setupDnsNat(FOO_RESOURCE_ID, FOO_NAME, [proxy], [real], 0), SetupDnsNatResult.Ok);
  return peer;
}

function idOf(p: Uint8Array): number {
  const hl = p[0]! >> 4 === 4 ? 20 : 40;
  return (p[hl + 4]! << 8) | p[hl + 5]!;
}

function icmpOfType(src: string, dst: string, type: number): Uint8Array {
  const p = icmpEcho(src, dst, 1, 1);
  const hl = p[0]! >> 4 === 4 ? 20 : 40;
  p[hl] = type;
  fixIcmpChecksum(p);
  return p;
}

function rawIpv4(src: string, dst: string, proto: number): Uint8Array {
  const p = udp(src, dst, 1, 2);
  p[9] = proto;
  p[10] = 0;
  p[11] = 0;
  const c = checksum(Array.from(p.subarray(0, 20)));
  p[10] = c >> 8;
  p[11] = c & 0xff;
  return p;
}

function icmpV4Error(
  src: string,
  dst: string,
  type: number,
  code: number,
  quoted: Uint8Array,
  mtu = 0,
): Uint8Array {
  const q = quoted.subarray(0, 28);
  const p = icmpEcho(src, dst, 0, 0);
  const out = new Uint8Array(20 + 8 + q.length);
  out.set(p.subarray(0, 20));
  out[2] = out.length >> 8;
  out[3] = out.length & 0xff;
  out[20] = type;
  out[21] = code;
  out[26] = mtu >> 8;
  out[27] = mtu & 0xff;
  out.set(q, 28);
  out[10] = 0;
  out[11] = 0;
  const hc = checksum(Array.from(out.subarray(0, 20)));
  out[10] = hc >> 8;
  out[11] = hc & 0xff;
  fixIcmpChecksum(out);
  return out;
}

function icmpV6Error(
  src: string,
  dst: string,
  type: number,
  code: number,
  rest: number,
  quoted: Uint8Array,
): Uint8Array {
  const q = quoted.subarray(0, Math.min(quoted.length, 1280 - 48));
  const p = icmpEcho(src, dst, 0, 0);
  const out = new Uint8Array(48 + q.length);
  out.set(p.subarray(0, 40));
  const plen = 8 + q.length;
  out[4] = plen >> 8;
  out[5] = plen & 0xff;
  out[40] = type;
  out[41] = code;
  out[44] = rest >>> 24;
  out[45] = (rest >>> 16) & 0xff;
  out[46] = (rest >>> 8) & 0xff;
  out[47] = rest & 0xff;
  out.set(q, 48);
  fixIcmpChecksum(out);
  return out;
}

function fixIcmpChecksum(p: Uint8Array): void {
  const v4 = p[0]! >> 4 === 4;
  const hl = v4 ? 20 : 40;
  const len = v4 ? ((p[2]! << 8) | p[3]!) - hl : (p[4]! << 8) | p[5]!;
  p[hl + 2] = 0;
  p[hl + 3] = 0;
  const body = Array.from(p.subarray(hl, hl + len));
  const data = v4
    ? body
    : [...Array.from(p.subarray(8, 40)), 0, 0, len >> 8, len & 0xff, 0, 0, 0, 58, ...body];
  const c = checksum(data);
  p[hl + 2] = c >> 8;
  p[hl + 3] = c & 0xff;
}

function checksum(bytes: number[]): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += bytes[i]! * 256 + (bytes[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}

function ipv4HeaderValid(p: Uint8Array): boolean {
  return checksum(Array.from(p.subarray(0, 20))) === 0;
}
