import assert from "node:assert/strict";
import fc from "fast-check";
import type { Filter } from "../../../src/portal/messages.ts";
import { SetupDnsNatResult } from "../../../src/gateway/client_on_gateway.ts";
import { PolicyOutput, PolicyResult, policyResultName } from "../../../src/gateway/packet_policy.ts";
import { parseIpNetwork } from "../../../src/gateway/ip_network_table.ts";
import {
  checksumsValid,
  cidr,
  CLIENT_V4,
  CLIENT_V6,
  dns,
  dstIp,
  dstPort,
  icmpEcho,
  internet,
  ip,
  newClient,
  srcIp,
  srcPort,
  tcp,
  udp,
} from "./_packets.ts";

// ---------------------------------------------------------------------------------------------
// NAT round trips

type Proto = "tcp" | "udp" | "icmp";

interface Flow {
  proxy: number;
  proto: Proto;
  id: number;
  payload: number;
}

Deno.test("DNS NAT property: outbound then the matching reply restores the original tuple, checksums valid", () => {
  fc.assert(
    fc.property(
      fc.constantFrom<4 | 6>(4, 6),
      fc.uniqueArray(fc.integer({ min: 1, max: 0x1fffff }), { minLength: 1, maxLength: 4 }),
      fc.uniqueArray(fc.integer({ min: 1, max: 250 }), { minLength: 1, maxLength: 3 }),
      fc.array(
        fc.record({
          proxy: fc.nat(3),
          proto: fc.constantFrom<Proto>("tcp", "udp", "icmp"),
          // Few distinct ids so that flows collide on the outside and need another port.
          id: fc.oneof(fc.constantFrom(0, 1, 2, 65534, 65535), fc.integer({ min: 0, max: 65535 })),
          payload: fc.nat(40),
        }),
        { minLength: 1, maxLength: 12 },
      ),
      (family, proxyLows, realLows, flows: Flow[]) => {
        const client = family === 4 ? CLIENT_V4 : CLIENT_V6;
        const proxies = proxyLows.map((low) => canonical(proxyAddr(family, low)));
        const reals = realLows.map((n) =>
          canonical(family === 4 ? `192.0.2.${n}` : `2001:db8::${n.toString(16)}`)
        );
        const peer = newClient();
        peer.addResource(dns("aaaaaaaa-0000-0000-0000-000000000001", "nat.example", []), null);
        assert.equal(
          peer.setupDnsNat("aaaaaaaa-0000-0000-0000-000000000001", "nat.example", proxies, reals, 0),
          SetupDnsNatResult.Ok,
        );
        const expectedReal = pairing(proxies, reals);

        const sent: { flow: Flow; proxy: string; real: string; outsideId: number }[] = [];
        for (const flow of flows) {
          const proxy = proxies[flow.proxy % proxies.length]!;
          const pkt = build(flow.proto, client, proxy, flow.id, 443, false, flow.payload);
          const code = translate(peer, pkt, "out");
          assert.equal(code, PolicyResult.Forward, policyResultName(code));
          assert.equal(checksumsValid(pkt), true, "outbound checksums");
          assert.equal(dstIp(pkt), expectedReal.get(proxy));
          assert.equal(srcIp(pkt), client);
          sent.push({ flow, proxy, real: dstIp(pkt), outsideId: l4Id(pkt, flow.proto, "src") });
        }
        // Distinct inside tuples get distinct outside tuples.
        const insideKeys = new Set(sent.map((s) => `${s.flow.proto}|${s.flow.id}|${s.proxy}`));
        const outsideKeys = new Set(sent.map((s) => `${s.flow.proto}|${s.outsideId}|${s.real}`));
        assert.equal(outsideKeys.size, insideKeys.size);

        for (const s of sent) {
          const reply = build(s.flow.proto, s.real, client, 443, s.outsideId, true, s.flow.payload);
          const code = translate(peer, reply, "in");
          assert.equal(code, PolicyResult.Forward, policyResultName(code));
          assert.equal(srcIp(reply), s.proxy);
          assert.equal(dstIp(reply), client);
          assert.equal(l4Id(reply, s.flow.proto, "dst"), s.flow.id);
          assert.equal(checksumsValid(reply), true, "inbound checksums");
        }
      },
    ),
    { numRuns: 150 },
  );
});

// ---------------------------------------------------------------------------------------------
// Authorization model

const CIDR_NETS = [
  "10.0.0.0/8",
  "10.1.0.0/16",
  "10.1.2.0/24",
  "10.1.2.3/32",
  "10.2.0.0/16",
  "2001:db8::/32",
  "2001:db8:1::/48",
];
const DESTS = [
  "10.0.0.1",
  "10.1.0.1",
  "10.1.2.3",
  "10.1.2.4",
  "10.2.3.4",
  "192.168.1.1",
  "1.1.1.1",
  "100.96.0.1",
  "100.96.0.2",
  "100.96.0.9",
  "2001:db8::1",
  "2001:db8:1::5",
  "2001:db9::1",
  "fd00:2021:1111:8000::1",
];
const PORTS = [0, 22, 80, 443, 1000, 65535];

type PacketProto = "tcp" | "udp" | "icmp" | "gre";

interface ModelResource {
  kind: "cidr" | "dns" | "internet";
  net: string;
  filters: Filter[];
  expiresAt: number | null;
}

const filterArb: fc.Arbitrary<Filter> = fc.oneof(
  fc.constant<Filter>({ protocol: "icmp" }),
  fc.tuple(fc.constantFrom<"tcp" | "udp">("tcp", "udp"), fc.constantFrom(...PORTS), fc.constantFrom(...PORTS))
    .map((
      [protocol, a, b],
    ): Filter => ({ protocol, portRangeStart: Math.min(a, b), portRangeEnd: Math.max(a, b) })),
);

const resourceArb: fc.Arbitrary<ModelResource> = fc.record({
  kind: fc.constantFrom<"cidr" | "dns" | "internet">("cidr", "cidr", "cidr", "dns", "internet"),
  net: fc.constantFrom(...CIDR_NETS),
  filters: fc.array(filterArb, { maxLength: 3 }),
  expiresAt: fc.constantFrom<number | null>(null, null, 100, 200),
});

Deno.test("Policy property: no packet is forwarded without a matching authorization", () => {
  fc.assert(
    fc.property(
      fc.array(resourceArb, { maxLength: 6 }),
      fc.array(
        fc.record({
          dst: fc.constantFrom(...DESTS),
          proto: fc.constantFrom<PacketProto>("tcp", "udp", "icmp", "gre"),
          port: fc.constantFrom(...PORTS),
          spoofed: fc.boolean(),
        }),
        { minLength: 1, maxLength: 10 },
      ),
      (resources, packets) => {
        const peer = newClient();
        let dnsCount = 0;
        const proxyOf = new Map<ModelResource, string>();
        resources.forEach((r, i) => {
          const id = `00000000-0000-0000-0000-${(i + 1).toString().padStart(12, "0")}`;
          const desc = r.kind === "cidr"
            ? cidr(id, r.net, r.filters)
            : r.kind === "dns"
            ? dns(id, `r${i}.example`, r.filters)
            : internet(id);
          peer.addResource(desc, r.expiresAt);
          if (r.kind === "dns" && dnsCount < 2) {
            dnsCount++;
            // The first two DNS resources get proxy 100.96.0.1 / .2, resolved to 198.51.100.x.
            peer.setupDnsNat(id, `r${i}.example`, [`100.96.0.${dnsCount}`], [`198.51.100.${dnsCount}`], 0);
            proxyOf.set(r, `100.96.0.${dnsCount}`);
          }
        });
        peer.expire(150);
        const alive = resources.filter((r) => r.expiresAt === null || r.expiresAt > 150);

        for (const p of packets) {
          const v6 = p.dst.includes(":");
          const src = p.spoofed ? (v6 ? "fd00:2021:1111::99" : "100.64.0.99") : (v6 ? CLIENT_V6 : CLIENT_V4);
          const pkt = buildAny(p.proto, src, p.dst, p.port);
          const got = translate(peer, pkt, "out");
          const expected = model(alive, proxyOf, p.spoofed, p.dst, p.proto, p.port);
          assert.equal(
            policyResultName(got),
            policyResultName(expected),
            `${p.proto} ${src} -> ${p.dst}:${p.port} with ${JSON.stringify(resources)}`,
          );
        }
      },
    ),
    { numRuns: 300 },
  );
});

/** The reference: what §4.2 says should happen to one outbound packet. */
function model(
  alive: ModelResource[],
  proxyOf: Map<ModelResource, string>,
  spoofed: boolean,
  dst: string,
  proto: PacketProto,
  port: number,
): number {
  if (spoofed) return PolicyResult.NotClientSource;
  const isProxy = dst.startsWith("100.96.") || dst.startsWith("fd00:2021:1111:8000:");
  if (!isProxy && alive.some((r) => r.kind === "internet")) return PolicyResult.Forward;
  if (isProxy) {
    const owner = alive.find((r) => proxyOf.get(r) === dst);
    if (owner === undefined || !allows(owner.filters, proto, port)) return PolicyResult.Filtered;
    return proto === "gre" ? PolicyResult.UnsupportedProtocol : PolicyResult.Forward;
  }
  const covering = alive.filter((r) => r.kind === "cidr" && contains(r.net, dst));
  if (covering.length === 0) return PolicyResult.Filtered;
  return covering.some((r) => allows(r.filters, proto, port)) ? PolicyResult.Forward : PolicyResult.Filtered;
}

function allows(filters: Filter[], proto: PacketProto, port: number): boolean {
  if (filters.length === 0) return true;
  return filters.some((f) =>
    f.protocol === "icmp"
      ? proto === "icmp"
      : f.protocol === proto && f.portRangeStart <= port && port <= f.portRangeEnd
  );
}

function contains(net: string, addr: string): boolean {
  const n = parseIpNetwork(net)!;
  const a = ip(addr);
  if (a.length !== n.bytes.length) return false;
  for (let bit = 0; bit < n.prefix; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if ((a[byte]! & mask) !== (n.bytes[byte]! & mask)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function translate(peer: ReturnType<typeof newClient>, pkt: Uint8Array, dir: "in" | "out"): number {
  const out = new PolicyOutput();
  return dir === "out"
    ? peer.translateOutbound(pkt, 0, pkt.length, 0, out)
    : peer.translateInbound(pkt, 0, pkt.length, 0, out);
}

function build(
  proto: Proto,
  src: string,
  dst: string,
  sport: number,
  dport: number,
  reply: boolean,
  n: number,
) {
  const payload = new Uint8Array(n).map((_, i) => (i * 7 + sport) & 0xff);
  if (proto === "tcp") return tcp(src, dst, sport, dport, 0x18, payload);
  if (proto === "udp") return udp(src, dst, sport, dport, payload);
  return icmpEcho(src, dst, reply ? dport : sport, 1, reply);
}

function buildAny(proto: PacketProto, src: string, dst: string, port: number): Uint8Array {
  if (proto === "gre") {
    const p = udp(src, dst, 1, port);
    if (p[0]! >> 4 === 6) {
      p[6] = 47;
      return p;
    }
    p[9] = 47;
    p[10] = 0;
    p[11] = 0;
    let s = 0;
    for (let i = 0; i < 20; i += 2) s += (p[i]! << 8) | p[i + 1]!;
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    const c = ~s & 0xffff;
    p[10] = c >> 8;
    p[11] = c & 0xff;
    return p;
  }
  return build(proto, src, dst, 1234, port, false, 4);
}

function l4Id(p: Uint8Array, proto: Proto, which: "src" | "dst"): number {
  if (proto === "icmp") {
    const hl = p[0]! >> 4 === 4 ? 20 : 40;
    return (p[hl + 4]! << 8) | p[hl + 5]!;
  }
  return which === "src" ? srcPort(p) : dstPort(p);
}

function proxyAddr(family: 4 | 6, low: number): string {
  if (family === 4) return `100.96.${(low >> 8) & 0xff}.${low & 0xff}`;
  return `fd00:2021:1111:8000::${(low >> 16).toString(16)}:${(low & 0xffff).toString(16)}`;
}

/** The spec's pairing: sorted proxies round-robin over sorted resolved addresses (same family here). */
function pairing(proxies: string[], reals: string[]): Map<string, string> {
  const key = (s: string) => Array.from(ip(s), (b) => b.toString(16).padStart(2, "0")).join("");
  const ps = proxies.slice().sort((a, b) => key(a).localeCompare(key(b)));
  const rs = reals.slice().sort((a, b) => key(a).localeCompare(key(b)));
  const m = new Map<string, string>();
  ps.forEach((p, i) => m.set(canonical(p), canonical(rs[i % rs.length]!)));
  return m;
}

function canonical(s: string): string {
  return srcIp(udp(s, s, 1, 1));
}
