import assert from "node:assert/strict";
import { P2pResult } from "../../src/p2p/transmit.ts";
import { buildIcmpv4DestUnreachable, buildIcmpv6DestUnreachable } from "../../src/wire/icmp.ts";
import { TCP_FLAG_ACK, TCP_FLAG_RST, TCP_FLAG_SYN } from "../../src/wire/tcp.ts";
import { WG_TYPE_HANDSHAKE_INIT } from "../../src/wire/wireguard.ts";
import {
  checksumsValid,
  dstIp,
  dstPort,
  icmpCodeOf,
  icmpTypeOf,
  ipHeaderLen,
  l4Word,
  protocol,
  srcIp,
  srcPort,
  totalLen,
  ttl,
} from "../unit/gateway/_packets.ts";
import {
  base32LowerNoPad,
  cidrResource,
  dnsResource,
  GATEWAY_TUN_V4,
  GatewayWorld,
  type GatewayWorldOptions,
  ICMP,
  internetResource,
  pingPacket,
  type SimFzClient,
  tcpPacket,
  tcpPorts,
  udpPacket,
  udpPorts,
} from "./gateway_world.ts";

const V4_NET = "172.20.0.0/16";
const V4_HOST = "172.20.1.1";
const V6_NET = "2001:db8:1::/64";
const V6_HOST = "2001:db8:1::5";
const DOMAIN = "app.corp.example";
const REAL_V4 = "10.1.0.5";
const REAL_V6 = "2001:db8:2::5";
const PROXY_V4 = ["100.96.0.1", "100.96.0.2", "100.96.0.3", "100.96.0.4"];
const PROXY_V6 = [
  "fd00:2021:1111:8000::1",
  "fd00:2021:1111:8000::2",
  "fd00:2021:1111:8000::3",
  "fd00:2021:1111:8000::4",
];

// ---------------------------------------------------------------------------------------------
// CIDR and Internet resources

Deno.test("gateway sim: CIDR resource — allowed TCP/UDP/ICMP reach TUN unchanged and the replies come back byte for byte", () => {
  const { world, cl, mark } = cidrSetup();
  world.resources.answering.add(V4_HOST);
  world.resources.answering.add(V6_HOST);
  const allowed = [
    tcpPacket(cl.fz.ipv4, V4_HOST, 40_000, 80),
    udpPacket(cl.fz.ipv4, V4_HOST, 40_001, 53, new Uint8Array(300).fill(7)),
    pingPacket(cl.fz.ipv4, V4_HOST, 0x1234, 1),
    tcpPacket(cl.fz.ipv6, V6_HOST, 40_002, 443, TCP_FLAG_SYN, new TextEncoder().encode("hello")),
    // The gateway's own tunnel address (the DNS forwarder) is always reachable.
    udpPacket(cl.fz.ipv4, GATEWAY_TUN_V4, 40_003, 53535),
  ];
  for (const p of allowed) {
    const tunBefore = world.gateway.tun.length;
    const repliesBefore = world.resources.replies.length;
    const receivedBefore = cl.received.length;
    assert.equal(world.sendAndSettle(cl, p), P2pResult.WriteToNetwork);
    assert.equal(world.gateway.tun.length, tunBefore + 1, "one packet on TUN");
    assert.deepEqual(world.gateway.tun.at(-1)!.packet, p, "unchanged");
    if (dstIp(p) === GATEWAY_TUN_V4) continue; // nobody answers on the forwarder port here
    assert.equal(world.resources.replies.length, repliesBefore + 1);
    const reply = world.resources.replies.at(-1)!.packet;
    assert.equal(cl.received.length, receivedBefore + 1, "the resource's reply reached the client");
    assert.deepEqual(cl.received.at(-1)!.packet, reply);
    assert.equal(srcIp(reply), dstIp(p));
    assert.equal(checksumsValid(cl.received.at(-1)!.packet), true);
  }
  // A packet from the gateway's tunnel address (forwarder reply) passes inbound unchanged.
  const fromForwarder = udpPacket(GATEWAY_TUN_V4, cl.fz.ipv4, 53535, 40_003);
  world.resources.inject(fromForwarder);
  world.net.runFor(50);
  assert.deepEqual(cl.received.at(-1)!.packet, fromForwarder);
  assert.deepEqual(world.gateway.dropNames(mark), [], "no drops after the set-up");
});

Deno.test("gateway sim: CIDR resource — refused ports, protocols and addresses get the exact ICMP prohibited reply", () => {
  const { world, cl } = cidrSetup();
  world.resources.answering.add(V4_HOST);
  const refused = [
    tcpPacket(cl.fz.ipv4, V4_HOST, 40_000, 81),
    udpPacket(cl.fz.ipv4, V4_HOST, 40_001, 54, new Uint8Array(500).fill(1)),
    udpPacket(cl.fz.ipv6, V6_HOST, 40_002, 443),
    pingPacket(cl.fz.ipv6, V6_HOST, 9, 9), // the IPv6 resource has no ICMP filter
    tcpPacket(cl.fz.ipv4, "10.9.9.9", 40_003, 80), // no resource at all
    tcpPacket(cl.fz.ipv6, "2001:db8:77::1", 40_004, 443),
    // Long IPv6 packet: the reply quotes as much as fits in 1280 bytes.
    udpPacket(cl.fz.ipv6, V6_HOST, 40_005, 9, new Uint8Array(1200).fill(3)),
  ];
  for (const p of refused) {
    const tunBefore = world.gateway.tun.length;
    const dropsBefore = world.gateway.drops.length;
    const receivedBefore = cl.received.length;
    assert.equal(world.sendAndSettle(cl, p), P2pResult.WriteToNetwork);
    assert.equal(world.gateway.tun.length, tunBefore, "nothing on TUN");
    assert.deepEqual(world.gateway.dropNames(dropsBefore), ["policy.Filtered"]);
    assert.equal(cl.received.length, receivedBefore + 1, "an ICMP error came back through the tunnel");
    assertIcmpProhibited(cl.received.at(-1)!.packet, p);
  }
});

Deno.test("gateway sim: resource → client packets pass the same filters (by source port); ICMP errors always pass", () => {
  const { world, cl, mark } = cidrSetup();
  const cases: [Uint8Array, boolean][] = [
    [tcpPacket(V4_HOST, cl.fz.ipv4, 80, 40_000, TCP_FLAG_ACK), true],
    [tcpPacket(V4_HOST, cl.fz.ipv4, 22, 40_000, TCP_FLAG_ACK), false],
    [udpPacket(V4_HOST, cl.fz.ipv4, 53, 40_000), true],
    [udpPacket("8.8.8.8", cl.fz.ipv4, 53, 40_000), false], // no resource
    [tcpPacket(V6_HOST, cl.fz.ipv6, 443, 40_000, TCP_FLAG_ACK), true],
    [pingPacket(V6_HOST, cl.fz.ipv6, 1, 1), false], // no ICMP filter on the IPv6 resource
    // An ICMPv6 error from that resource is still delivered.
    [icmpError(udpPacket(cl.fz.ipv6, V6_HOST, 40_000, 9)), true],
    [udpPacket(V4_HOST, "100.64.0.99", 53, 40_000), false], // no such client
  ];
  for (const [p, delivered] of cases) {
    const receivedBefore = cl.received.length;
    world.resources.inject(p);
    world.net.runFor(50);
    assert.equal(cl.received.length, receivedBefore + (delivered ? 1 : 0), `${srcIp(p)} -> ${dstIp(p)}`);
    if (delivered) assert.deepEqual(cl.received.at(-1)!.packet, p, "unchanged");
  }
  assert.deepEqual(world.gateway.dropNames(mark), [
    "policy.Filtered",
    "policy.Filtered",
    "policy.Filtered",
    "policy.NotClientDestination",
  ]);
});

Deno.test("gateway sim: a spoofed source address is filtered (not the client's, or another client's tunnel address)", () => {
  const { world, cl } = cidrSetup();
  const bob = world.addClient("bob");
  assert.equal(world.connect(bob, cidrResource(world.uuid(), V4_NET)), "accepted");
  const spoofed = [
    udpPacket("100.64.0.99", V4_HOST, 40_000, 53),
    udpPacket(bob.fz.ipv4, V4_HOST, 40_000, 53),
    udpPacket("fd00:2021:1111::99", V6_HOST, 40_000, 443),
    tcpPacket("203.0.113.77", V4_HOST, 40_000, 80),
  ];
  for (const p of spoofed) {
    const tunBefore = world.gateway.tun.length;
    const dropsBefore = world.gateway.drops.length;
    world.sendAndSettle(cl, p);
    assert.equal(world.gateway.tun.length, tunBefore);
    assert.deepEqual(world.gateway.dropNames(dropsBefore), ["policy.NotClientSource"]);
  }
  assert.equal(bob.received.length, 0, "nothing reached the impersonated client");
  // The same packet from its real owner passes.
  world.sendAndSettle(bob, udpPacket(bob.fz.ipv4, V4_HOST, 40_000, 53));
  assert.equal(srcIp(world.gateway.tun.at(-1)!.packet), bob.fz.ipv4);
});

Deno.test("gateway sim: Internet resource forwards everything except the DNS proxy ranges", () => {
  const world = new GatewayWorld();
  const cl = world.addClient("alice");
  assert.equal(world.connect(cl, internetResource(world.uuid())), "accepted");
  world.resources.answering.add("8.8.8.8");
  const forwarded = [
    udpPacket(cl.fz.ipv4, "8.8.8.8", 40_000, 53),
    tcpPacket(cl.fz.ipv6, "2001:4860:4860::8888", 40_001, 443),
    pingPacket(cl.fz.ipv4, "1.1.1.1", 1, 1),
    udpPacket(cl.fz.ipv4, "100.64.0.77", 40_002, 5), // another tunnel address: not a proxy IP
  ];
  for (const p of forwarded) {
    world.sendAndSettle(cl, p);
    assert.deepEqual(world.gateway.tun.at(-1)!.packet, p);
  }
  assert.equal(srcIp(cl.received.at(-1)!.packet), "8.8.8.8", "the reply came back");
  for (
    const p of [udpPacket(cl.fz.ipv4, "100.96.0.1", 40_000, 53), pingPacket(cl.fz.ipv6, PROXY_V6[0]!, 1, 1)]
  ) {
    const tunBefore = world.gateway.tun.length;
    world.sendAndSettle(cl, p);
    assert.equal(world.gateway.tun.length, tunBefore);
    assertIcmpProhibited(cl.received.at(-1)!.packet, p);
  }
});

Deno.test("gateway sim: with the Internet resource, DNS-resource traffic still obeys the DNS resource's filters", () => {
  const world = new GatewayWorld();
  const cl = world.addClient("alice");
  const rid = world.uuid();
  assert.equal(world.connect(cl, internetResource(world.uuid())), "accepted");
  world.portal.authorizeFlow(cl, dnsResource(rid, "*.corp.example", [tcpPorts(443)]), null);
  world.dns.records.set(DOMAIN, [REAL_V4]);
  cl.assignIps(rid, DOMAIN, PROXY_V4);
  world.net.runFor(200);
  assert.equal(cl.statusOf(DOMAIN), "Active");
  const denied = udpPacket(cl.fz.ipv4, PROXY_V4[0]!, 40_000, 53);
  const tunBefore = world.gateway.tun.length;
  world.sendAndSettle(cl, denied);
  assert.equal(world.gateway.tun.length, tunBefore);
  assertIcmpProhibited(cl.received.at(-1)!.packet, denied);
  world.sendAndSettle(cl, tcpPacket(cl.fz.ipv4, PROXY_V4[0]!, 40_000, 443));
  assert.equal(dstIp(world.gateway.tun.at(-1)!.packet), REAL_V4);
});

// ---------------------------------------------------------------------------------------------
// DNS resources and the NAT

Deno.test("gateway sim: DNS resource — AssignedIps, DomainStatus Active, NAT round trips for UDP/TCP/ICMP over IPv4 and IPv6", () => {
  const { world, cl, mark } = dnsSetup();
  assert.deepEqual(world.dns.queries.map(([, , d]) => d), [DOMAIN]);
  assert.equal(cl.domainStatuses.length, 1);
  assert.equal(cl.assignedIpsSent.length, 1, "answered before the 2 s retransmission");
  const flows = [
    udpPacket(cl.fz.ipv4, PROXY_V4[0]!, 40_000, 53, new TextEncoder().encode("query")),
    tcpPacket(cl.fz.ipv4, PROXY_V4[1]!, 40_001, 443),
    pingPacket(cl.fz.ipv4, PROXY_V4[2]!, 0x4242, 7),
    udpPacket(cl.fz.ipv6, PROXY_V6[0]!, 40_002, 53),
    tcpPacket(cl.fz.ipv6, PROXY_V6[3]!, 40_003, 443),
    pingPacket(cl.fz.ipv6, PROXY_V6[1]!, 0x77, 1),
  ];
  for (const p of flows) {
    const real = p[0]! >> 4 === 4 ? REAL_V4 : REAL_V6;
    const receivedBefore = cl.received.length;
    assert.equal(world.sendAndSettle(cl, p), P2pResult.WriteToNetwork);
    const onTun = world.gateway.tun.at(-1)!.packet;
    assert.equal(srcIp(onTun), srcIp(p));
    assert.equal(dstIp(onTun), real, "destination rewritten to the real address");
    assert.equal(l4Word(onTun, protocol(p) === 6 || protocol(p) === 17 ? 0 : 4), l4Id(p), "no collision");
    assert.equal(checksumsValid(onTun), true, "checksums after the rewrite");
    const l4Header = protocol(p) === 6 ? 20 : 8;
    assert.deepEqual(
      onTun.subarray(ipHeaderLen(onTun) + l4Header),
      p.subarray(ipHeaderLen(p) + l4Header),
      "payload kept",
    );

    assert.equal(cl.received.length, receivedBefore + 1, "reply reached the client");
    const back = cl.received.at(-1)!.packet;
    assert.equal(srcIp(back), dstIp(p), "the reply comes from the proxy address");
    assert.equal(dstIp(back), srcIp(p));
    if (protocol(p) === 6 || protocol(p) === 17) {
      assert.equal(srcPort(back), dstPort(p));
      assert.equal(dstPort(back), srcPort(p));
    } else {
      assert.equal(l4Word(back, 4), l4Id(p), "echo identifier restored");
    }
    assert.equal(checksumsValid(back), true);
  }
  assert.equal(world.gateway.core.client(cl.fz.id)!.natSessionCount, flows.length);
  assert.deepEqual(world.gateway.dropNames(mark), [], "no drops after the set-up");
});

Deno.test("gateway sim: DNS NAT — two flows needing the same outside port get different ports and map back", () => {
  const { world, cl } = dnsSetup();
  // All four IPv4 proxy addresses map to the one real address: same source port → collision.
  const a = udpPacket(cl.fz.ipv4, PROXY_V4[0]!, 5_000, 53, new TextEncoder().encode("a"));
  const b = udpPacket(cl.fz.ipv4, PROXY_V4[1]!, 5_000, 53, new TextEncoder().encode("b"));
  world.sendAndSettle(cl, a);
  world.sendAndSettle(cl, b);
  const [tunA, tunB] = world.gateway.tun.slice(-2).map((t) => t.packet);
  assert.equal(srcPort(tunA!), 5_000);
  assert.equal(srcPort(tunB!), 5_001, "next free outside port");
  assert.equal(dstIp(tunA!), REAL_V4);
  assert.equal(dstIp(tunB!), REAL_V4);
  assert.equal(checksumsValid(tunB!), true);
  const [backA, backB] = cl.received.slice(-2).map((r) => r.packet);
  assert.equal(srcIp(backA!), PROXY_V4[0]);
  assert.equal(srcIp(backB!), PROXY_V4[1]);
  assert.equal(dstPort(backA!), 5_000);
  assert.equal(dstPort(backB!), 5_000, "port restored");
  assert.equal(lastByte(backB!), "b".charCodeAt(0));
  // The same flow again reuses its mapping.
  world.sendAndSettle(cl, b);
  assert.equal(srcPort(world.gateway.tun.at(-1)!.packet), 5_001);
  assert.equal(world.gateway.core.client(cl.fz.id)!.natSessionCount, 2);
});

Deno.test("gateway sim: DNS NAT — a TCP RST in either direction tears the session down", () => {
  const { world, cl } = dnsSetup();
  const id = cl.fz.id;
  // Outgoing RST.
  world.sendAndSettle(cl, tcpPacket(cl.fz.ipv4, PROXY_V4[0]!, 6_000, 443));
  assert.equal(srcIp(cl.received.at(-1)!.packet), PROXY_V4[0], "SYN/ACK came back");
  world.sendAndSettle(cl, tcpPacket(cl.fz.ipv4, PROXY_V4[0]!, 6_000, 443, TCP_FLAG_RST | TCP_FLAG_ACK));
  const rst = world.gateway.tun.at(-1)!.packet;
  assert.equal(dstIp(rst), REAL_V4, "the RST itself is translated");
  assert.equal(checksumsValid(rst), true);
  assert.equal(world.gateway.core.client(id)!.natSessionCount, 0);
  const late = tcpPacket(REAL_V4, cl.fz.ipv4, 443, 6_000, TCP_FLAG_ACK);
  const receivedBefore = cl.received.length;
  const dropsBefore = world.gateway.drops.length;
  world.resources.inject(late);
  world.net.runFor(50);
  assert.deepEqual(world.gateway.dropNames(dropsBefore), ["policy.ExpiredNatSession"]);
  assert.equal(cl.received.length, receivedBefore);
  // A new connection from the same port works again.
  world.sendAndSettle(cl, tcpPacket(cl.fz.ipv4, PROXY_V4[0]!, 6_000, 443));
  assert.equal(srcIp(cl.received.at(-1)!.packet), PROXY_V4[0]);

  // Incoming RST: delivered (translated), then the session is gone.
  world.sendAndSettle(cl, tcpPacket(cl.fz.ipv4, PROXY_V4[1]!, 6_001, 443));
  const outside = srcPort(world.gateway.tun.at(-1)!.packet);
  world.resources.inject(tcpPacket(REAL_V4, cl.fz.ipv4, 443, outside, TCP_FLAG_RST));
  world.net.runFor(50);
  const gotRst = cl.received.at(-1)!.packet;
  assert.equal(srcIp(gotRst), PROXY_V4[1]);
  assert.equal(dstPort(gotRst), 6_001);
  assert.equal(checksumsValid(gotRst), true);
  const drops2 = world.gateway.drops.length;
  world.resources.inject(tcpPacket(REAL_V4, cl.fz.ipv4, 443, outside, TCP_FLAG_ACK));
  world.net.runFor(50);
  assert.deepEqual(world.gateway.dropNames(drops2), ["policy.ExpiredNatSession"]);
});

Deno.test("gateway sim: TUN packets for addresses outside fd00:2021:1111::/107 never touch a client's NAT", () => {
  const { world, cl } = dnsSetup();
  world.sendAndSettle(cl, tcpPacket(cl.fz.ipv6, PROXY_V6[0]!, 6_500, 443));
  const outside = srcPort(world.gateway.tun.at(-1)!.packet);
  // Same low 32 bits as the client's tunnel address, but outside the tunnel range (word 5 set):
  // the packet is not for any client, so its RST must not end the client's session.
  const stray = cl.fz.ipv6.replace("fd00:2021:1111::", "fd00:2021:1111::1:0:");
  assert.notEqual(stray, cl.fz.ipv6);
  const receivedBefore = cl.received.length;
  world.resources.inject(tcpPacket(REAL_V6, stray, 443, outside, TCP_FLAG_RST));
  world.net.runFor(50);
  assert.equal(cl.received.length, receivedBefore);
  assert.equal(world.gateway.core.client(cl.fz.id)!.natSessionCount, 1, "session intact");
  world.resources.inject(tcpPacket(REAL_V6, cl.fz.ipv6, 443, outside, TCP_FLAG_ACK));
  world.net.runFor(50);
  assert.equal(cl.received.length, receivedBefore + 1, "the session still maps replies back");
  assert.equal(srcIp(cl.received.at(-1)!.packet), PROXY_V6[0]);
});

Deno.test("gateway sim: DNS NAT — a UDP session ends 2 min after its last outgoing packet (replies do not refresh it), TCP lives on", () => {
  const { world, cl } = dnsSetup();
  world.sendAndSettle(cl, udpPacket(cl.fz.ipv4, PROXY_V4[0]!, 7_000, 53));
  world.sendAndSettle(cl, tcpPacket(cl.fz.ipv4, PROXY_V4[0]!, 7_001, 443));
  const lastOutgoing = world.gateway.tun.at(-2)!.at;
  const udpReply = udpPacket(REAL_V4, cl.fz.ipv4, 53, 7_000);
  const tcpReply = tcpPacket(REAL_V4, cl.fz.ipv4, 443, 7_001, TCP_FLAG_ACK);

  world.net.runUntil(lastOutgoing + 60_000);
  const receivedBefore = cl.received.length;
  world.resources.inject(udpReply);
  world.net.runFor(50);
  assert.equal(cl.received.length, receivedBefore + 1, "alive after 60 s");

  world.net.runUntil(lastOutgoing + 119_000);
  world.resources.inject(udpReply);
  world.net.runFor(50);
  assert.equal(cl.received.length, receivedBefore + 2, "alive after 119 s: the reply at 60 s did not matter");

  world.net.runUntil(lastOutgoing + 121_000);
  const dropsBefore = world.gateway.drops.length;
  world.resources.inject(udpReply);
  world.resources.inject(tcpReply);
  world.net.runFor(50);
  assert.deepEqual(world.gateway.dropNames(dropsBefore), ["policy.ExpiredNatSession"]);
  assert.equal(cl.received.length, receivedBefore + 3, "only the TCP reply (TTL 2 h) arrived");
  assert.equal(srcPort(cl.received.at(-1)!.packet), 443);

  // A new outgoing packet opens a new session; the connection survived two idle minutes (rekey).
  world.sendAndSettle(cl, udpPacket(cl.fz.ipv4, PROXY_V4[0]!, 7_000, 53), 200);
  assert.equal(srcIp(cl.received.at(-1)!.packet), PROXY_V4[0]);
});

Deno.test("gateway sim: DNS NAT — ICMP errors from the resource are translated back to the proxy address", () => {
  const { world, cl, mark } = dnsSetup();
  for (
    const [family, proxies, real, type, code] of [
      [4, PROXY_V4, REAL_V4, 3, 3],
      [6, PROXY_V6, REAL_V6, 1, 4],
    ] as const
  ) {
    const src = family === 4 ? cl.fz.ipv4 : cl.fz.ipv6;
    // A first flow takes outside port 8000, so the second one (same inside port) gets another.
    world.sendAndSettle(cl, udpPacket(src, proxies[0]!, 8_000, 9_999));
    world.resources.unreachable.add(real);
    const p = udpPacket(src, proxies[1]!, 8_000, 9_999, new TextEncoder().encode("are you there?"));
    const receivedBefore = cl.received.length;
    world.sendAndSettle(cl, p);
    const onTun = world.gateway.tun.at(-1)!.packet;
    assert.equal(srcPort(onTun), 8_001);
    const icmp = world.resources.replies.at(-1)!.packet;
    assert.equal(srcIp(icmp), real, "the resource network answered with an ICMP error");

    assert.equal(cl.received.length, receivedBefore + 1, "the ICMP error reached the client");
    const err = cl.received.at(-1)!.packet;
    assert.equal(protocol(err), family === 4 ? 1 : 58);
    assert.equal(icmpTypeOf(err), type);
    assert.equal(icmpCodeOf(err), code);
    assert.equal(ttl(err), 20);
    assert.equal(srcIp(err), proxies[1], "from the proxy address");
    assert.equal(dstIp(err), src);
    const quoteLen = family === 4 ? 28 : p.length;
    assert.equal(err.length, ipHeaderLen(err) + 8 + quoteLen);
    // The quote is the client's own packet again: proxy destination, inside port, original checksums.
    assert.deepEqual(err.subarray(ipHeaderLen(err) + 8), p.subarray(0, quoteLen));
    assert.equal(checksumsValid(err), true);
    world.resources.unreachable.delete(real);
  }
  assert.deepEqual(world.gateway.dropNames(mark), [], "no drops after the set-up");
});

Deno.test("gateway sim: DNS resource — pattern mismatch, unauthorized resource and resolution failure answer Inactive", () => {
  const { world, cl, rid } = dnsSetup();
  const queriesBefore = world.dns.queries.length;
  world.dns.records.set("evil.example.org", ["10.6.6.6"]);
  cl.assignIps(rid, "evil.example.org", ["100.96.1.1"]);
  cl.assignIps(world.uuid(), "other.corp.example", ["100.96.1.2"]); // not authorized
  cl.assignIps(rid, "missing.corp.example", ["100.96.1.3"]); // resolution fails
  world.net.runFor(300);
  assert.equal(cl.statusOf("evil.example.org"), "Inactive");
  assert.equal(cl.statusOf("other.corp.example"), "Inactive");
  assert.equal(cl.statusOf("missing.corp.example"), "Inactive");
  assert.deepEqual(
    world.dns.queries.slice(queriesBefore).map(([, , d]) => d),
    ["evil.example.org", "missing.corp.example"],
    "no resolution for a resource the client may not access",
  );
  // None of those proxy addresses works.
  for (const proxy of ["100.96.1.1", "100.96.1.2", "100.96.1.3"]) {
    const p = udpPacket(cl.fz.ipv4, proxy, 40_000, 53);
    const tunBefore = world.gateway.tun.length;
    world.sendAndSettle(cl, p);
    assert.equal(world.gateway.tun.length, tunBefore);
    assertIcmpProhibited(cl.received.at(-1)!.packet, p);
  }
  assert.equal(cl.statusOf(DOMAIN), "Active", "the good domain is unaffected");
});

Deno.test("gateway sim: DNS resource — AssignedIps is retransmitted until answered and every copy is resolved; open sessions keep their address", () => {
  const world = new GatewayWorld({ dnsLatencyMs: 3_000 });
  const cl = world.addClient("alice");
  const rid = world.uuid();
  assert.equal(world.connect(cl, dnsResource(rid, "**.corp.example")), "accepted");
  world.dns.records.set(DOMAIN, [REAL_V4]);
  world.resources.answering.add(REAL_V4);
  world.resources.answering.add("10.1.0.9");
  const t0 = world.now;
  cl.assignIps(rid, DOMAIN, PROXY_V4);
  world.net.runFor(3_500);
  assert.equal(cl.statusOf(DOMAIN), "Active");
  assert.deepEqual(cl.assignedIpsSent.map(([t]) => t - t0), [0, 2_000], "resent after 2 s, then answered");
  assert.equal(world.dns.queries.length, 2, "each AssignedIps triggers a resolution");
  world.net.runFor(3_000);
  assert.equal(cl.domainStatuses.length, 2);
  assert.equal(cl.assignedIpsSent.length, 2, "no more retransmissions once answered");

  // A session on proxy 1; then the name moves to another address and the client re-announces it.
  world.sendAndSettle(cl, udpPacket(cl.fz.ipv4, PROXY_V4[0]!, 9_000, 53));
  world.dns.records.set(DOMAIN, ["10.1.0.9"]);
  cl.assignIps(rid, DOMAIN, PROXY_V4, false);
  world.net.runFor(3_500);
  assert.equal(cl.domainStatuses.length, 3);
  world.sendAndSettle(cl, udpPacket(cl.fz.ipv4, PROXY_V4[0]!, 9_000, 53));
  assert.equal(
    dstIp(world.gateway.tun.at(-1)!.packet),
    REAL_V4,
    "the proxy with an open session keeps its address",
  );
  world.sendAndSettle(cl, udpPacket(cl.fz.ipv4, PROXY_V4[1]!, 9_001, 53));
  assert.equal(dstIp(world.gateway.tun.at(-1)!.packet), "10.1.0.9", "the other proxies move");
  assert.equal(srcIp(cl.received.at(-1)!.packet), PROXY_V4[1]);
});

Deno.test("gateway sim: DNS NAT — a proxy address mapped to the other family is answered with ICMP unreachable", () => {
  const world = new GatewayWorld();
  const cl = world.addClient("alice");
  const rid = world.uuid();
  assert.equal(world.connect(cl, dnsResource(rid, "*.corp.example")), "accepted");
  world.dns.records.set("v6only.corp.example", [REAL_V6]);
  cl.assignIps(rid, "v6only.corp.example", [...PROXY_V4, ...PROXY_V6]);
  world.net.runFor(200);
  assert.equal(cl.statusOf("v6only.corp.example"), "Active");
  const p = udpPacket(cl.fz.ipv4, PROXY_V4[0]!, 40_000, 53);
  const tunBefore = world.gateway.tun.length;
  const dropsBefore = world.gateway.drops.length;
  world.sendAndSettle(cl, p);
  assert.equal(world.gateway.tun.length, tunBefore, "no NAT64");
  assert.deepEqual(world.gateway.dropNames(dropsBefore), ["policy.DestinationUnreachable"]);
  const err = cl.received.at(-1)!.packet;
  assert.deepEqual([icmpTypeOf(err), icmpCodeOf(err), ttl(err)], [3, 0, 20], "network unreachable");
  assert.equal(srcIp(err), PROXY_V4[0]);
  assert.equal(checksumsValid(err), true);
  world.sendAndSettle(cl, udpPacket(cl.fz.ipv6, PROXY_V6[0]!, 40_000, 53));
  assert.equal(dstIp(world.gateway.tun.at(-1)!.packet), REAL_V6, "the same family works");
});

Deno.test("gateway sim: legacy request_connection with a domain and allow_access set up the connection and the NAT", () => {
  const world = new GatewayWorld();
  const cl = world.addClient("old-client");
  world.resources.answering.add(REAL_V4);
  world.resources.answering.add("10.2.0.1");
  const rid = world.uuid();
  const result = world.portal.requestConnection(
    cl,
    dnsResource(rid, "*.corp.example"),
    null,
    { name: `${DOMAIN}.`, proxyIps: PROXY_V4 },
    [REAL_V4],
  );
  assert.equal(result.type, "accepted");
  const creds = result.type === "accepted" ? result.iceCredentials : { username: "", password: "" };
  assert.match(creds.username, /^[a-vx-zA-VX-Z0-9]{16}$/, "random 16-character ufrag without w/W");
  assert.match(creds.password, /^[a-vx-zA-VX-Z0-9]{22}$/);
  assert.ok(world.portal.log.some((e) => e.event === "connection_ready"));
  world.untilEstablished(cl);

  world.sendAndSettle(cl, udpPacket(cl.fz.ipv4, PROXY_V4[2]!, 40_000, 53));
  assert.equal(dstIp(world.gateway.tun.at(-1)!.packet), REAL_V4);
  assert.equal(srcIp(cl.received.at(-1)!.packet), PROXY_V4[2]);

  world.portal.allowAccess(cl, cidrResource(world.uuid(), "10.2.0.0/16"), null, null, null);
  world.sendAndSettle(cl, udpPacket(cl.fz.ipv4, "10.2.0.1", 40_000, 53));
  assert.equal(srcIp(cl.received.at(-1)!.packet), "10.2.0.1");

  // A domain outside the resource's pattern fails the whole request: no reply, no client state.
  const other = world.addClient("older-client");
  const failed = world.portal.requestConnection(
    other,
    dnsResource(world.uuid(), "*.corp.example"),
    null,
    { name: "evil.example.org", proxyIps: PROXY_V4 },
    ["10.6.6.6"],
  );
  assert.equal(failed.type, "failed");
  assert.equal(world.gateway.core.client(other.fz.id), undefined);
});

// ---------------------------------------------------------------------------------------------
// Authorization life cycle

Deno.test("gateway sim: access expires mid-flow — refused from the expiry on, goodbye when the client has nothing left", () => {
  const world = new GatewayWorld();
  const cl = world.addClient("alice");
  cl.closeOnGoodbye = false; // keep sending to see what the gateway does
  world.resources.answering.add(V4_HOST);
  world.resources.answering.add("10.2.0.1");
  const a = world.uuid();
  const b = world.uuid();
  const base = world.unixNowS;
  const baseMs = world.now - (world.now % 1000); // the sim instant of `base` (the wall clock starts on a second)
  assert.equal(world.connect(cl, cidrResource(a, V4_NET), base + 30), "accepted");
  world.portal.authorizeFlow(cl, cidrResource(b, "10.2.0.0/16"), base + 60);
  world.net.runFor(100);
  const toA = udpPacket(cl.fz.ipv4, V4_HOST, 40_000, 53);
  const toB = udpPacket(cl.fz.ipv4, "10.2.0.1", 40_000, 53);
  world.sendAndSettle(cl, toA);
  assert.deepEqual(world.gateway.tun.at(-1)!.packet, toA);

  world.net.runUntil(baseMs + 29_900);
  world.sendAndSettle(cl, toA);
  assert.deepEqual(world.gateway.tun.at(-1)!.packet, toA, "still allowed just before expires_at");

  world.net.runUntil(baseMs + 30_000);
  const tunBefore = world.gateway.tun.length;
  world.sendAndSettle(cl, toA);
  assert.equal(world.gateway.tun.length, tunBefore, "refused at expires_at");
  assertIcmpProhibited(cl.received.at(-1)!.packet, toA);
  world.sendAndSettle(cl, toB);
  assert.deepEqual(world.gateway.tun.at(-1)!.packet, toB, "the other resource is unaffected");
  assert.deepEqual(cl.goodbyes, [], "no goodbye while something is left");
  assert.deepEqual(world.gateway.core.client(cl.fz.id)!.resourceIds(), [b]);

  world.net.runUntil(baseMs + 60_100);
  assert.deepEqual(
    cl.goodbyes,
    [baseMs + 60_000 + 10],
    "goodbye sent at the expiry, one hop later at the client",
  );
  assert.equal(world.gateway.core.client(cl.fz.id), undefined, "client state dropped");
  assert.equal(
    world.gateway.core.node.connectionInfo(cl.fz.id)?.state,
    "connected",
    "the connection is kept",
  );
  const receivedBefore = cl.received.length;
  const dropsBefore = world.gateway.drops.length;
  const tunBefore2 = world.gateway.tun.length;
  world.sendAndSettle(cl, toB);
  assert.equal(world.gateway.tun.length, tunBefore2);
  assert.deepEqual(world.gateway.dropNames(dropsBefore), ["policy.Filtered"], "no peer for the connection");
  assert.equal(cl.received.length, receivedBefore, "and no ICMP for a client without state");
});

Deno.test("gateway sim: reject_access removes one resource; the last one ends the client state with a goodbye", () => {
  const world = new GatewayWorld();
  const cl = world.addClient("alice");
  const a = world.uuid();
  const b = world.uuid();
  assert.equal(world.connect(cl, cidrResource(a, V4_NET)), "accepted");
  world.portal.authorizeFlow(cl, cidrResource(b, "10.2.0.0/16"), null);
  world.net.runFor(100);
  const toA = tcpPacket(cl.fz.ipv4, V4_HOST, 40_000, 22);
  const toB = tcpPacket(cl.fz.ipv4, "10.2.0.1", 40_000, 22);

  world.portal.rejectAccess(cl, a);
  const tunBefore = world.gateway.tun.length;
  world.sendAndSettle(cl, toA);
  assert.equal(world.gateway.tun.length, tunBefore);
  assertIcmpProhibited(cl.received.at(-1)!.packet, toA);
  world.sendAndSettle(cl, toB);
  assert.deepEqual(world.gateway.tun.at(-1)!.packet, toB);
  assert.deepEqual(cl.goodbyes, []);

  // Unknown client and unknown resource: no-ops.
  world.portal.rejectAccess(world.addClient("stranger"), b);
  world.portal.rejectAccess(cl, world.uuid());
  world.sendAndSettle(cl, toB);
  assert.deepEqual(world.gateway.tun.at(-1)!.packet, toB);

  const at = world.now;
  world.portal.rejectAccess(cl, b);
  world.net.runFor(100);
  assert.deepEqual(cl.goodbyes, [at + 10]);
  assert.equal(world.gateway.core.client(cl.fz.id), undefined);
  assert.equal(cl.info("gateway"), undefined, "the client closed its connection on goodbye");
  assert.equal(cl.send(toB), P2pResult.Drop);
});

Deno.test("gateway sim: a client sent away with goodbye comes back with a new authorize_flow", () => {
  const world = new GatewayWorld();
  const cl = world.addClient("alice");
  world.resources.answering.add(V4_HOST);
  const rid = world.uuid();
  assert.equal(world.connect(cl, cidrResource(rid, V4_NET)), "accepted");
  roundTrip(world, cl);
  world.portal.rejectAccess(cl, rid);
  world.net.runFor(100);
  assert.equal(cl.goodbyes.length, 1);
  assert.equal(cl.info("gateway"), undefined, "the client dropped its side");
  const gwIndex = world.gateway.core.node.connectionInfo(cl.fz.id)?.wgIndex;
  assert.notEqual(gwIndex, undefined, "the gateway still has its side");

  world.net.runFor(1_000);
  assert.equal(world.connect(cl, cidrResource(rid, V4_NET)), "accepted");
  roundTrip(world, cl);
  assert.equal(
    world.gateway.core.node.connectionInfo(cl.fz.id)?.wgIndex,
    gwIndex,
    "same credentials: reused",
  );
});

Deno.test("gateway sim: resource_updated replaces the filters of every client holding the resource", () => {
  const world = new GatewayWorld();
  const alice = world.addClient("alice");
  const bob = world.addClient("bob");
  const rid = world.uuid();
  const other = world.uuid();
  assert.equal(world.connect(alice, cidrResource(rid, V4_NET, [tcpPorts(80)])), "accepted");
  assert.equal(world.connect(bob, cidrResource(rid, V4_NET, [tcpPorts(80)])), "accepted");
  assert.equal(
    world.portal.authorizeFlow(bob, cidrResource(other, "10.2.0.0/16", [tcpPorts(80)]), null),
    "accepted",
  );
  const verdicts = (cl: SimFzClient, packets: Uint8Array[]) =>
    packets.map((p) => {
      const before = world.gateway.tun.length;
      world.sendAndSettle(cl, p);
      return world.gateway.tun.length > before;
    });
  const probes = (cl: SimFzClient) => [
    tcpPacket(cl.fz.ipv4, V4_HOST, 40_000, 80),
    udpPacket(cl.fz.ipv4, V4_HOST, 40_000, 53),
    tcpPacket(cl.fz.ipv4, V4_HOST, 40_000, 22),
    tcpPacket(cl.fz.ipv4, "10.2.0.1", 40_000, 22),
  ];
  assert.deepEqual(verdicts(alice, probes(alice)), [true, false, false, false]);

  world.portal.resourceUpdated(cidrResource(rid, V4_NET, [udpPorts(53)]));
  assert.deepEqual(verdicts(alice, probes(alice)), [false, true, false, false]);
  assert.deepEqual(
    verdicts(bob, probes(bob)),
    [false, true, false, false],
    "bob too; his other resource unchanged",
  );

  // Name/address changes have no effect; an empty list permits everything.
  world.portal.resourceUpdated(cidrResource(rid, "10.99.0.0/16", []));
  assert.deepEqual(verdicts(alice, probes(alice)), [true, true, true, false]);

  // A type change is refused: the filters stay as they are.
  world.portal.resourceUpdated(dnsResource(rid, "*.example.com", [tcpPorts(1)]));
  assert.deepEqual(verdicts(alice, probes(alice)), [true, true, true, false]);
});

Deno.test("gateway sim: access_authorization_expiry_updated moves the expiry; a repeated authorize_flow does not", () => {
  const world = new GatewayWorld();
  const cl = world.addClient("alice");
  cl.closeOnGoodbye = false;
  const rid = world.uuid();
  const base = world.unixNowS;
  const baseMs = world.now - (world.now % 1000);
  assert.equal(world.connect(cl, cidrResource(rid, V4_NET), base + 10), "accepted");
  const state = () => world.gateway.core.client(cl.fz.id)?.resource(rid)?.expiresAtUtcMs;
  assert.equal(state(), (base + 10) * 1000);
  assert.equal(world.portal.authorizeFlow(cl, cidrResource(rid, V4_NET), base + 100), "accepted");
  assert.equal(state(), (base + 10) * 1000, "quirk: authorize_flow for a known resource keeps its expiry");

  world.portal.expiryUpdated(cl, rid, base + 40);
  assert.equal(state(), (base + 40) * 1000);
  // Unknown client or resource: ignored.
  world.portal.expiryUpdated(cl, world.uuid(), base + 1);
  world.portal.expiryUpdated(world.addClient("stranger"), rid, base + 1);

  const p = udpPacket(cl.fz.ipv4, V4_HOST, 40_000, 53);
  world.net.runUntil(baseMs + 20_000);
  world.sendAndSettle(cl, p);
  assert.deepEqual(world.gateway.tun.at(-1)!.packet, p, "allowed after the original expiry");
  world.net.runUntil(baseMs + 39_950);
  assert.deepEqual(cl.goodbyes, []);
  world.net.runUntil(baseMs + 40_100);
  assert.deepEqual(cl.goodbyes, [baseMs + 40_010], "expired at the updated time");
  const tunBefore = world.gateway.tun.length;
  world.sendAndSettle(cl, p);
  assert.equal(world.gateway.tun.length, tunBefore);
});

Deno.test("gateway sim: init after a portal reconnect revokes resources it does not list and sets expiries", () => {
  const world = new GatewayWorld();
  const cl = world.addClient("alice");
  const a = world.uuid();
  const b = world.uuid();
  assert.equal(world.connect(cl, cidrResource(a, V4_NET)), "accepted");
  world.portal.authorizeFlow(cl, cidrResource(b, "10.2.0.0/16"), null);
  world.net.runFor(100);
  const base = world.unixNowS;
  world.portal.init([world.relayRef(0)], [{ clientId: cl.fz.id, resourceId: b, expiresAtS: base + 5 }]);
  world.net.runFor(100);
  assert.deepEqual(world.gateway.core.client(cl.fz.id)!.resourceIds(), [b]);
  const tunBefore = world.gateway.tun.length;
  world.sendAndSettle(cl, udpPacket(cl.fz.ipv4, V4_HOST, 40_000, 53));
  assert.equal(world.gateway.tun.length, tunBefore, "revoked");
  world.sendAndSettle(cl, udpPacket(cl.fz.ipv4, "10.2.0.1", 40_000, 53));
  assert.equal(world.gateway.tun.length, tunBefore + 1);
  assert.equal(world.isEstablished(cl), true, "init does not disturb the connection or the relay");
  world.net.runFor(6_000);
  assert.equal(cl.goodbyes.length, 1, "the expiry from init applied");
});

// ---------------------------------------------------------------------------------------------
// Connections

Deno.test("gateway sim: relay lost and replaced via relays_presence — a relay-only connection survives", () => {
  const world = new GatewayWorld({ relays: 2, initRelays: [0], relayOnly: true });
  const cl = world.addClient("alice");
  world.resources.answering.add(V4_HOST);
  assert.equal(world.connect(cl, cidrResource(world.uuid(), V4_NET)), "accepted");
  const gwInfo = () => world.gateway.core.node.connectionInfo(cl.fz.id)!;
  assert.equal(gwInfo().peerSocket?.kind, "relay");
  const index = gwInfo().wgIndex;
  roundTrip(world, cl);

  // Relay 1 dies; the portal says so and announces relay 2 (to the gateway and the client).
  world.relays[0]!.server.dropping = true;
  const t0 = world.now;
  world.portal.relaysPresence([world.relayIds[0]!], [world.relayRef(1)], [cl]);
  assert.ok(
    world.portal.log.some((e) =>
      e.direction === "egress" && e.event === "broadcast_invalidated_ice_candidates"
    ),
    "the gateway withdrew its relay-1 candidate",
  );
  world.net.advanceUntil(
    () => {
      const g = gwInfo().peerSocket;
      const c = cl.info("gateway")?.peerSocket;
      return g?.kind === "relay" && g.relayId === world.relayIds[1] && c?.kind === "relay" &&
        c.relayId === world.relayIds[1];
    },
    10_000,
    "both sides on relay 2",
  );
  assert.ok(world.now - t0 < 3_000, `migrated in ${world.now - t0} ms`);
  roundTrip(world, cl);
  assert.equal(gwInfo().wgIndex, index, "the same connection");
  assert.equal(cl.eventsOf("ConnectionFailed").length, 0);
  assert.ok(world.relays[1]!.server.relayedToClients > 0, "data went through relay 2");
});

Deno.test("gateway sim: a repeated authorize_flow with the same credentials reuses the connection (same WireGuard index)", () => {
  const world = new GatewayWorld();
  const cl = world.addClient("alice");
  world.resources.answering.add(V4_HOST);
  world.resources.answering.add("10.2.0.1");
  assert.equal(world.connect(cl, cidrResource(world.uuid(), V4_NET)), "accepted");
  const index = world.gateway.core.node.connectionInfo(cl.fz.id)!.wgIndex;
  const inits = handshakeInits(cl);
  roundTrip(world, cl);

  // The client reconnects to the portal and asks for another resource: same keys, same credentials.
  assert.equal(world.portal.authorizeFlow(cl, cidrResource(world.uuid(), "10.2.0.0/16"), null), "accepted");
  world.net.runFor(100);
  assert.equal(world.gateway.core.node.connectionInfo(cl.fz.id)!.wgIndex, index);
  const receivedBefore = cl.received.length;
  world.sendAndSettle(cl, udpPacket(cl.fz.ipv4, "10.2.0.1", 40_000, 53));
  assert.equal(cl.received.length, receivedBefore + 1, "traffic flows at once");
  assert.equal(handshakeInits(cl), inits, "no new handshake");

  // Contrast: another PSK replaces the connection (new index).
  const msg = world.portal.authorizeFlowMessage(cl, cidrResource(world.uuid(), "10.3.0.0/16"), null, {
    psk: new Uint8Array(32).fill(9),
  });
  assert.equal(world.gateway.core.authorizeFlow(msg, world.now), "accepted");
  assert.notEqual(world.gateway.core.node.connectionInfo(cl.fz.id)!.wgIndex, index);
});

Deno.test("gateway sim: a failed connection keeps the authorization; the client comes back with a new connection", () => {
  const world = new GatewayWorld();
  const cl = world.addClient("alice");
  world.resources.answering.add(V4_HOST);
  const rid = world.uuid();
  assert.equal(world.connect(cl, cidrResource(rid, V4_NET)), "accepted");
  const index = world.gateway.core.node.connectionInfo(cl.fz.id)!.wgIndex;
  const unblock = world.net.block(() => true);
  world.net.advanceUntil(
    () => world.gateway.core.node.connectionInfo(cl.fz.id) === undefined,
    60_000,
    "the gateway's connection failed",
  );
  unblock();
  assert.deepEqual(world.gateway.core.clientIds(), [cl.fz.id], "authorization kept");
  world.net.advanceUntil(() => cl.info("gateway") === undefined, 60_000, "the client's side failed too");

  assert.equal(world.connect(cl, cidrResource(rid, V4_NET)), "accepted");
  assert.notEqual(world.gateway.core.node.connectionInfo(cl.fz.id)!.wgIndex, index, "a new connection");
  roundTrip(world, cl);
});

Deno.test("gateway sim: a resource's reply after five idle minutes (WireGuard sessions renewed, idle ICE) still arrives", () => {
  const { world, cl } = dnsSetup();
  world.sendAndSettle(cl, tcpPacket(cl.fz.ipv4, PROXY_V4[0]!, 6_700, 443));
  const outside = srcPort(world.gateway.tun.at(-1)!.packet);
  world.net.runFor(310_000); // several REJECT_AFTER_TIMEs; the TCP mapping lives 2 h
  assert.equal(world.gateway.core.node.connectionInfo(cl.fz.id)?.state, "idle");
  const receivedBefore = cl.received.length;
  const late = tcpPacket(REAL_V4, cl.fz.ipv4, 443, outside, TCP_FLAG_ACK, new TextEncoder().encode("late"));
  world.resources.inject(late);
  world.net.runFor(500);
  assert.equal(cl.received.length, receivedBefore + 1);
  const got = cl.received.at(-1)!.packet;
  assert.equal(srcIp(got), PROXY_V4[0]);
  assert.equal(dstPort(got), 6_700);
  assert.equal(checksumsValid(got), true);
  assert.equal(world.gateway.core.node.connectionInfo(cl.fz.id)?.state, "connected", "woken up");
});

Deno.test("gateway sim: two clients using the same proxy addresses and ports get their own NAT and their own replies", () => {
  const world = new GatewayWorld();
  const alice = world.addClient("alice");
  const bob = world.addClient("bob");
  const rid = world.uuid();
  world.dns.records.set(DOMAIN, [REAL_V4]);
  world.resources.answering.add(REAL_V4);
  for (const cl of [alice, bob]) {
    assert.equal(world.connect(cl, dnsResource(rid, "*.corp.example")), "accepted");
    cl.assignIps(rid, DOMAIN, PROXY_V4);
  }
  world.net.runFor(200);
  for (const cl of [alice, bob]) {
    world.sendAndSettle(
      cl,
      udpPacket(cl.fz.ipv4, PROXY_V4[0]!, 5_353, 53, new TextEncoder().encode(cl.name)),
    );
    const onTun = world.gateway.tun.at(-1)!.packet;
    assert.equal(srcIp(onTun), cl.fz.ipv4);
    assert.equal(srcPort(onTun), 5_353, "per-client NAT: no collision between clients");
    const back = cl.received.at(-1)!.packet;
    assert.equal(srcIp(back), PROXY_V4[0]);
    assert.equal(new TextDecoder().decode(back.subarray(28)), cl.name, "each client gets its own reply");
  }
  assert.equal(alice.received.length, 1);
  assert.equal(bob.received.length, 1);
});

Deno.test("gateway sim: goodbyeAll on shutdown reaches every client, which close their connections", () => {
  const world = new GatewayWorld();
  const alice = world.addClient("alice");
  const bob = world.addClient("bob");
  assert.equal(world.connect(alice, cidrResource(world.uuid(), V4_NET)), "accepted");
  assert.equal(world.connect(bob, internetResource(world.uuid())), "accepted");
  const at = world.now;
  world.portal.goodbyeAll();
  world.net.runFor(100);
  assert.deepEqual(alice.goodbyes, [at + 10]);
  assert.deepEqual(bob.goodbyes, [at + 10]);
  assert.equal(alice.info("gateway"), undefined);
  assert.equal(bob.info("gateway"), undefined);
  assert.equal(alice.eventsOf("ConnectionClosed").length, 1);
});

Deno.test("gateway sim: a client's goodbye closes the gateway's side of the connection", () => {
  const world = new GatewayWorld();
  const cl = world.addClient("alice");
  assert.equal(world.connect(cl, cidrResource(world.uuid(), V4_NET)), "accepted");
  const goodbye = new Uint8Array(48);
  goodbye[0] = 0x60;
  goodbye[5] = 8;
  goodbye[6] = 0xff;
  goodbye[40] = 2;
  world.sendAndSettle(cl, goodbye);
  assert.equal(world.gateway.core.node.connectionInfo(cl.fz.id), undefined);
  assert.deepEqual(world.gateway.core.clientIds(), [cl.fz.id], "the authorization state is kept");
});

Deno.test("gateway sim: authorize_flow without relays answers no_relays and creates nothing", () => {
  const world = new GatewayWorld({ initRelays: [] });
  const cl = world.addClient("alice", { relays: [0] });
  assert.equal(world.portal.authorizeFlow(cl, cidrResource(world.uuid(), V4_NET), null), "no_relays");
  world.net.runFor(1_000);
  assert.deepEqual(world.gateway.core.clientIds(), []);
  assert.deepEqual(world.gateway.core.node.connectionIds(), []);
  assert.equal(world.portal.log.filter((e) => e.direction === "egress").length, 0, "no flow_authorized");
  assert.equal(cl.info("gateway"), undefined, "the client never heard of it");
  // Once the portal sends relays, the same flow is accepted.
  world.portal.relaysPresence([], [world.relayRef(0)]);
  assert.equal(world.connect(cl, cidrResource(world.uuid(), V4_NET)), "accepted");
});

Deno.test("gateway sim: the same seed gives the same run, another seed a different one", () => {
  const run = (seed: number) => {
    const { world, cl } = dnsSetup({ seed });
    world.sendAndSettle(cl, udpPacket(cl.fz.ipv4, PROXY_V4[0]!, 40_000, 53));
    world.sendAndSettle(cl, tcpPacket(cl.fz.ipv6, V6_HOST, 40_000, 443));
    world.net.runFor(3_000);
    return [
      ...world.net.trace(),
      ...world.portal.log.map((e) => `${e.at} ${e.event} ${JSON.stringify(e.payload)}`),
    ];
  };
  const a = run(3);
  assert.ok(a.length > 30);
  assert.deepEqual(run(3), a);
  assert.notDeepEqual(run(4), a);
});

Deno.test("gateway sim: the stub portal derives ICE credentials and PSKs like the portal (deterministic per pair)", () => {
  // RFC 4648 test vector, lower case without padding (Elixir `Base.encode32(case: :lower, padding: false)`).
  assert.equal(base32LowerNoPad(new TextEncoder().encode("foobar")), "mzxw6ytboi");
  const world = new GatewayWorld();
  const alice = world.addClient("alice");
  const bob = world.addClient("bob");
  const creds = world.portal.iceCredentials(alice);
  assert.deepEqual(
    [
      creds.client.ufrag.length,
      creds.client.pwd.length,
      creds.gateway.ufrag.length,
      creds.gateway.pwd.length,
    ],
    [4, 22, 4, 22], // the 52-character hash cuts the gateway password `h[30..=52]` to 22 characters
  );
  assert.deepEqual(world.portal.iceCredentials(alice), creds);
  assert.notDeepEqual(world.portal.iceCredentials(bob), creds);
  assert.deepEqual(world.portal.presharedKey(alice), world.portal.presharedKey(alice));
  assert.notDeepEqual(world.portal.presharedKey(bob), world.portal.presharedKey(alice));
  const msg = world.portal.authorizeFlowMessage(alice, cidrResource(world.uuid(), V4_NET), null);
  assert.equal(msg.gatewayIceCredentials.username, creds.gateway.ufrag);
  assert.deepEqual(msg.client.presharedKey.expose(), world.portal.presharedKey(alice));
});

// ---------------------------------------------------------------------------------------------
// helpers

function cidrSetup(options: GatewayWorldOptions = {}) {
  const world = new GatewayWorld(options);
  const cl = world.addClient("alice");
  const v4 = world.uuid();
  const v6 = world.uuid();
  assert.equal(world.connect(cl, cidrResource(v4, V4_NET, [tcpPorts(80), udpPorts(53), ICMP])), "accepted");
  assert.equal(world.portal.authorizeFlow(cl, cidrResource(v6, V6_NET, [tcpPorts(443)]), null), "accepted");
  world.net.runFor(100);
  return { world, cl, v4, v6, mark: world.gateway.drops.length };
}

function dnsSetup(options: GatewayWorldOptions = {}) {
  const world = new GatewayWorld(options);
  const cl = world.addClient("alice");
  const rid = world.uuid();
  assert.equal(world.connect(cl, dnsResource(rid, "*.corp.example")), "accepted");
  world.dns.records.set(DOMAIN, [REAL_V4, REAL_V6]);
  world.resources.answering.add(REAL_V4);
  world.resources.answering.add(REAL_V6);
  cl.assignIps(rid, DOMAIN, [...PROXY_V4, ...PROXY_V6]);
  world.net.runFor(200);
  assert.equal(cl.statusOf(DOMAIN), "Active");
  return { world, cl, rid, mark: world.gateway.drops.length };
}

/** The ICMP port unreachable a resource network sends for `orig` (a client's packet). */
function icmpError(orig: Uint8Array): Uint8Array {
  const buf = new Uint8Array(1500);
  const v4 = orig[0]! >> 4 === 4;
  const n = v4
    ? buildIcmpv4DestUnreachable(buf, 0, orig, 0, orig.length, 3)
    : buildIcmpv6DestUnreachable(buf, 0, orig, 0, orig.length, 4);
  return buf.slice(0, n);
}

/** One UDP packet to the IPv4 resource and its echo back. */
function roundTrip(world: GatewayWorld, cl: SimFzClient): void {
  const p = udpPacket(cl.fz.ipv4, V4_HOST, 41_000, 7, new TextEncoder().encode(`at ${world.now}`));
  const receivedBefore = cl.received.length;
  world.sendAndSettle(cl, p, 200);
  assert.deepEqual(world.gateway.tun.at(-1)!.packet, p);
  assert.equal(cl.received.length, receivedBefore + 1, "echo came back");
  assert.equal(srcIp(cl.received.at(-1)!.packet), V4_HOST);
}

/** WireGuard handshake initiations the client sent (direct or in ChannelData). */
function handshakeInits(cl: SimFzClient): number {
  return cl.sent.filter((s) => {
    const off = s.src === null && s.payload[0]! >= 0x40 && s.payload[0]! <= 0x4f ? 4 : 0;
    return s.payload.length === off + 148 && s.payload[off] === WG_TYPE_HANDSHAKE_INIT;
  }).length;
}

function l4Id(p: Uint8Array): number {
  return protocol(p) === 6 || protocol(p) === 17 ? srcPort(p) : l4Word(p, 4);
}

function lastByte(p: Uint8Array): number {
  return p[totalLen(p) - 1]!;
}

/** The ICMP "administratively prohibited" answer to `orig` (spec §4.2), checked field by field. */
function assertIcmpProhibited(reply: Uint8Array, orig: Uint8Array): void {
  const v4 = orig[0]! >> 4 === 4;
  assert.equal(reply[0]! >> 4, v4 ? 4 : 6);
  assert.equal(protocol(reply), v4 ? 1 : 58);
  assert.equal(ttl(reply), 20);
  assert.equal(srcIp(reply), dstIp(orig), "source = original destination");
  assert.equal(dstIp(reply), srcIp(orig), "destination = original source");
  assert.equal(icmpTypeOf(reply), v4 ? 3 : 1);
  assert.equal(icmpCodeOf(reply), v4 ? 13 : 1);
  const hl = ipHeaderLen(reply);
  assert.deepEqual([...reply.subarray(hl + 4, hl + 8)], [0, 0, 0, 0], "rest of header");
  const quoteLen = v4 ? Math.min(ipHeaderLen(orig) + 8, orig.length) : Math.min(orig.length, 1280 - 48);
  assert.equal(reply.length, hl + 8 + quoteLen, "size");
  assert.equal(totalLen(reply), reply.length);
  assert.deepEqual(reply.subarray(hl + 8), orig.subarray(0, quoteLen), "quote");
  assert.equal(checksumsValid(reply), true, "checksums");
}
