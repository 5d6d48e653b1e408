/**
 * Property tests of the whole gateway core in the simulation: packets travel from a simulated client
 * through WireGuard, `GatewayState` and the simulated TUN device and back. Bounded runs with fixed seeds.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { parseIp } from "../../src/wire/ip_addr.ts";
import { TCP_FLAG_SYN } from "../../src/wire/tcp.ts";
import {
  checksumsValid,
  dstIp,
  dstPort,
  icmpTypeOf,
  ipHeaderLen,
  l4Word,
  protocol,
  srcIp,
  srcPort,
} from "../unit/gateway/_packets.ts";
import {
  cidrResource,
  dnsResource,
  type FilterJson,
  GATEWAY_TUN_V4,
  GATEWAY_TUN_V6,
  GatewayWorld,
  internetResource,
  pingPacket,
  type ResourceJson,
  tcpPacket,
  udpPacket,
} from "./gateway_world.ts";

// ---------------------------------------------------------------------------------------------
// NAT round trips through the whole core

const PROXIES_V4 = ["100.96.0.1", "100.96.0.2", "100.96.0.3", "100.96.0.4"];
const PROXIES_V6 = [
  "fd00:2021:1111:8000::1",
  "fd00:2021:1111:8000::2",
  "fd00:2021:1111:8000::3",
  "fd00:2021:1111:8000::4",
];
const REALS_V4 = ["10.7.0.1", "10.7.0.2", "10.7.0.3"];
const REALS_V6 = ["2001:db8:7::1", "2001:db8:7::2", "2001:db8:7::3"];

type Proto = "tcp" | "udp" | "icmp";

interface Flow {
  readonly family: 4 | 6;
  readonly proxy: number;
  readonly proto: Proto;
  /** Source port or echo identifier; few distinct values so that flows collide on the outside. */
  readonly id: number;
  readonly payloadLen: number;
}

const flowArb: fc.Arbitrary<Flow> = fc.record({
  family: fc.constantFrom<4 | 6>(4, 6),
  proxy: fc.nat(3),
  proto: fc.constantFrom<Proto>("tcp", "udp", "icmp"),
  id: fc.oneof(fc.constantFrom(1, 2, 65534, 65535, 40000), fc.integer({ min: 1, max: 65535 })),
  payloadLen: fc.nat(200),
});

Deno.test("gateway property: DNS NAT round-trips through the whole core with valid checksums after every rewrite", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 1000 }),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 3 }),
      fc.array(flowArb, { minLength: 1, maxLength: 10 }),
      (seed, n4, n6, flows) => {
        const world = new GatewayWorld({ seed });
        const cl = world.addClient("alice");
        const rid = world.uuid();
        assert.equal(world.connect(cl, dnsResource(rid, "**.nat.example")), "accepted");
        const reals = [...REALS_V4.slice(0, n4), ...REALS_V6.slice(0, n6)];
        world.dns.records.set("svc.nat.example", reals);
        for (const r of reals) world.resources.answering.add(r);
        cl.assignIps(rid, "svc.nat.example", [...PROXIES_V4, ...PROXIES_V6]);
        world.net.runFor(200);
        assert.equal(cl.statusOf("svc.nat.example"), "Active");

        const outside = new Map<string, string>(); // inside tuple → outside tuple
        for (const flow of flows) {
          const src = flow.family === 4 ? cl.fz.ipv4 : cl.fz.ipv6;
          const proxy = (flow.family === 4 ? PROXIES_V4 : PROXIES_V6)[flow.proxy]!;
          // Round-robin over the sorted real addresses of the same family (spec §4.6).
          const real = flow.family === 4 ? REALS_V4[flow.proxy % n4]! : REALS_V6[flow.proxy % n6]!;
          const payload = new Uint8Array(flow.payloadLen).map((_, i) => (i * 7 + flow.id) & 0xff);
          const p = build(flow.proto, src, proxy, flow.id, 443, payload);
          const tunBefore = world.gateway.tun.length;
          const receivedBefore = cl.received.length;
          world.sendAndSettle(cl, p, 60);

          assert.equal(world.gateway.tun.length, tunBefore + 1, "reached TUN");
          const onTun = world.gateway.tun.at(-1)!.packet;
          assert.equal(srcIp(onTun), src);
          assert.equal(dstIp(onTun), real);
          assert.equal(checksumsValid(onTun), true, "checksums on TUN");
          assert.deepEqual(payloadOf(onTun), payload);
          const inside = `${flow.proto}|${flow.id}|${proxy}`;
          const out = `${flow.proto}|${l4Id(onTun, "src")}|${real}`;
          const known = outside.get(inside);
          if (known !== undefined) assert.equal(out, known, "an existing mapping is reused");
          else assert.ok(![...outside.values()].includes(out), "distinct flows get distinct outside tuples");
          outside.set(inside, out);

          assert.equal(cl.received.length, receivedBefore + 1, "the reply reached the client");
          const back = cl.received.at(-1)!.packet;
          assert.equal(srcIp(back), proxy, "from the proxy address");
          assert.equal(dstIp(back), src);
          assert.equal(l4Id(back, "dst"), flow.id, "port or identifier restored");
          if (flow.proto !== "icmp") assert.equal(srcPort(back), 443);
          assert.equal(checksumsValid(back), true, "checksums at the client");
          assert.deepEqual(payloadOf(back), payload);
        }
        assert.equal(world.gateway.core.client(cl.fz.id)!.natSessionCount, outside.size);
      },
    ),
    { seed: 0x6a7e, numRuns: 20 },
  );
});

// ---------------------------------------------------------------------------------------------
// Authorization: nothing reaches TUN without a matching authorization

interface PoolResource {
  readonly kind: "cidr" | "internet";
  readonly net: string;
}

/** Resource networks (index = resource slot; the same slot always has the same network). */
const POOL: readonly PoolResource[] = [
  { kind: "cidr", net: "10.0.0.0/8" },
  { kind: "cidr", net: "10.1.0.0/16" },
  { kind: "cidr", net: "10.1.2.0/24" },
  { kind: "cidr", net: "10.1.2.3/32" },
  { kind: "cidr", net: "2001:db8::/32" },
  { kind: "cidr", net: "2001:db8:1::/64" },
  { kind: "cidr", net: "100.96.0.0/16" }, // covers DNS proxy addresses: still never forwarded untranslated
  { kind: "internet", net: "" },
];
const ANCHOR: PoolResource = { kind: "cidr", net: "192.168.77.0/24" };
const DESTS = [
  "10.0.0.1",
  "10.1.0.1",
  "10.1.2.3",
  "10.1.2.4",
  "192.168.77.7",
  "1.1.1.1",
  "100.96.0.1",
  "100.64.0.99",
  GATEWAY_TUN_V4,
  "2001:db8::1",
  "2001:db8:1::5",
  "2001:db9::1",
  "fd00:2021:1111:8000::1",
  GATEWAY_TUN_V6,
];
const PORTS = [1, 22, 53, 80, 443, 65535];

type Op =
  | { op: "authorize"; slot: number; filters: FilterJson[] }
  | { op: "reject"; slot: number }
  | { op: "update"; slot: number; filters: FilterJson[] }
  | { op: "send"; dst: string; proto: Proto; port: number; spoofed: boolean };

const filterArb: fc.Arbitrary<FilterJson> = fc.oneof(
  fc.constant<FilterJson>({ protocol: "icmp" }),
  fc.tuple(fc.constantFrom<"tcp" | "udp">("tcp", "udp"), fc.constantFrom(...PORTS), fc.constantFrom(...PORTS))
    .map(([protocol, a, b]): FilterJson => ({
      protocol,
      port_range_start: Math.min(a, b),
      port_range_end: Math.max(a, b),
    })),
);

/** Permit-all is common in practice and makes many packets pass. */
const filtersArb: fc.Arbitrary<FilterJson[]> = fc.oneof(
  fc.constant<FilterJson[]>([]),
  fc.array(filterArb, { minLength: 1, maxLength: 3 }),
);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("authorize" as const),
      slot: fc.nat(POOL.length - 1),
      filters: filtersArb,
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("reject" as const), slot: fc.nat(POOL.length - 1) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("update" as const),
      slot: fc.nat(POOL.length - 1),
      filters: filtersArb,
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant("send" as const),
      dst: fc.constantFrom(...DESTS),
      proto: fc.constantFrom<Proto>("tcp", "udp", "icmp"),
      port: fc.constantFrom(...PORTS),
      spoofed: fc.constantFrom(false, false, false, false, true),
    }),
  },
);

Deno.test("gateway property: no packet from a client reaches TUN without a matching authorization", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 1000 }),
      fc.array(opArb, { minLength: 8, maxLength: 30 }),
      (seed, ops) => {
        const world = new GatewayWorld({ seed });
        const cl = world.addClient("alice");
        const ids = POOL.map(() => world.uuid());
        const anchorId = world.uuid();
        assert.equal(world.connect(cl, cidrResource(anchorId, ANCHOR.net)), "accepted");
        /** The model: resource id → (pool entry, filters). */
        const model = new Map<string, { res: PoolResource; filters: FilterJson[] }>([
          [anchorId, { res: ANCHOR, filters: [] }],
        ]);
        const describe = () => JSON.stringify([...model.values()]);

        for (const op of ops) {
          if (op.op === "authorize") {
            const res = POOL[op.slot]!;
            world.portal.authorizeFlow(cl, describeResource(ids[op.slot]!, res, op.filters), null);
            const existing = model.get(ids[op.slot]!);
            // Quirk: a known resource only gets its filters replaced (the Internet resource has none).
            model.set(ids[op.slot]!, { res, filters: res.kind === "internet" ? [] : op.filters });
            if (existing !== undefined && existing.res !== res) throw new Error("pool slots never change");
          } else if (op.op === "reject") {
            world.portal.rejectAccess(cl, ids[op.slot]!);
            model.delete(ids[op.slot]!);
          } else if (op.op === "update") {
            const res = POOL[op.slot]!;
            world.portal.resourceUpdated(describeResource(ids[op.slot]!, res, op.filters));
            const m = model.get(ids[op.slot]!);
            if (m !== undefined && res.kind !== "internet") m.filters = op.filters;
          } else {
            const v6 = op.dst.includes(":");
            const own = v6 ? cl.fz.ipv6 : cl.fz.ipv4;
            const src = op.spoofed ? (v6 ? "fd00:2021:1111::99" : "100.64.0.99") : own;
            const p = build(op.proto, src, op.dst, 40_000, op.port, new Uint8Array(16).fill(0xab));
            const expected = allowed([...model.values()], op.spoofed, op.dst, op.proto, op.port);
            const tunBefore = world.gateway.tun.length;
            const receivedBefore = cl.received.length;
            world.sendAndSettle(cl, p, 40);
            const reached = world.gateway.tun.length > tunBefore;
            const what = `${op.proto} ${src} -> ${op.dst}:${op.port} with ${describe()}`;
            assert.equal(reached, expected, what);
            if (reached) {
              assert.equal(world.gateway.tun.length, tunBefore + 1);
              assert.deepEqual(world.gateway.tun.at(-1)!.packet, p, "forwarded unchanged");
              assert.equal(cl.received.length, receivedBefore, "nobody answers on the resource side");
            } else {
              assert.equal(cl.received.length, receivedBefore + 1, `an ICMP error for ${what}`);
              const err = cl.received.at(-1)!.packet;
              assert.equal(icmpTypeOf(err), v6 ? 1 : 3);
              assert.equal(srcIp(err), op.dst);
              assert.equal(checksumsValid(err), true);
            }
          }
        }
      },
    ),
    { seed: 0xa11d, numRuns: 25 },
  );
});

/** The reference model of spec §4.2 steps 2–5 for CIDR/Internet resources (no DNS translations). */
function allowed(
  resources: readonly { res: PoolResource; filters: FilterJson[] }[],
  spoofed: boolean,
  dst: string,
  proto: Proto,
  port: number,
): boolean {
  if (spoofed) return false;
  if (dst === GATEWAY_TUN_V4 || dst === GATEWAY_TUN_V6) return true;
  if (inNet(dst, "100.96.0.0/11") || inNet(dst, "fd00:2021:1111:8000::/107")) return false;
  if (resources.some((r) => r.res.kind === "internet")) return true;
  return resources.some((r) =>
    r.res.kind === "cidr" && inNet(dst, r.res.net) &&
    (r.filters.length === 0 || r.filters.some((f) => filterAdmits(f, proto, port)))
  );
}

function filterAdmits(f: FilterJson, proto: Proto, port: number): boolean {
  if (f.protocol === "icmp") return proto === "icmp";
  if (f.protocol !== proto) return false;
  return port >= (f.port_range_start ?? 0) && port <= (f.port_range_end ?? 65535);
}

function inNet(ip: string, cidr: string): boolean {
  const [net, prefixText] = cidr.split("/");
  const a = parseIp(ip)!;
  const b = parseIp(net!)!;
  if (a.length !== b.length) return false;
  const prefix = Number(prefixText);
  for (let bit = 0; bit < prefix; bit++) {
    const mask = 0x80 >> (bit & 7);
    if ((a[bit >> 3]! & mask) !== (b[bit >> 3]! & mask)) return false;
  }
  return true;
}

function describeResource(id: string, res: PoolResource, filters: FilterJson[]): ResourceJson {
  return res.kind === "internet" ? internetResource(id) : cidrResource(id, res.net, filters);
}

// ---------------------------------------------------------------------------------------------
// helpers

function build(
  proto: Proto,
  src: string,
  dst: string,
  id: number,
  port: number,
  payload: Uint8Array,
): Uint8Array {
  if (proto === "udp") return udpPacket(src, dst, id, port, payload);
  if (proto === "tcp") return tcpPacket(src, dst, id, port, TCP_FLAG_SYN, payload);
  return pingPacket(src, dst, id, 1, payload);
}

/** Source or destination port, or the echo identifier. */
function l4Id(p: Uint8Array, which: "src" | "dst"): number {
  if (protocol(p) === 1 || protocol(p) === 58) return l4Word(p, 4);
  return which === "src" ? srcPort(p) : dstPort(p);
}

function payloadOf(p: Uint8Array): Uint8Array {
  const hl = ipHeaderLen(p);
  return p.subarray(hl + (protocol(p) === 6 ? 20 : 8));
}
