import assert from "node:assert/strict";
import fc from "fast-check";
import {
  ICMP_TTL_MS,
  NatIncoming,
  NatProto,
  NatTable,
  NatTuple,
  TCP_TTL_MS,
  UDP_TTL_MS,
} from "../../../src/gateway/nat_table.ts";
import { L4Kind } from "../../../src/wire/ip_packet.ts";

const PROXY_A = 1; // proxy keys as ClientOnGateway makes them (100.96.0.1)
const PROXY_B = 2;
const PROXY_C = 3;
const REAL_1 = 7;
const REAL_2 = 8;

const protoArb = fc.constantFrom<NatProto>(NatProto.Tcp, NatProto.Udp, NatProto.Icmp);

// Upstream nat_table.rs proptest `translates_back_and_forth_packet` (TTL TCP 7200 s, UDP/ICMP 120 s).
Deno.test("NatTable translates a tuple out and the reply back, until the TTL", () => {
  fc.assert(
    fc.property(
      protoArb,
      fc.integer({ min: 0, max: 65535 }),
      fc.integer({ min: 0, max: 15000 }),
      (proto, l4Id, delaySecs) => {
        const table = new NatTable();
        const sentAt = 1_000;

        const outsideId = table.translateOutgoing(proto, l4Id, PROXY_A, REAL_1, false, sentAt);
        table.handleTimeout(sentAt + delaySecs * 1000);
        const out = new NatTuple();
        const r = table.translateIncoming(proto, outsideId, REAL_1, false, out);

        const ttlSecs = proto === NatProto.Tcp ? 7200 : 120;
        if (delaySecs >= ttlSecs) return r === NatIncoming.Expired;
        return r === NatIncoming.Ok && out.l4Id === l4Id && out.ipKey === PROXY_A && outsideId === l4Id;
      },
    ),
  );
});

// Upstream nat_table.rs proptest `can_handle_multiple_packets`.
Deno.test("NatTable keeps two different inside tuples apart", () => {
  fc.assert(
    fc.property(
      protoArb,
      fc.integer({ min: 0, max: 65535 }),
      fc.constantFrom(PROXY_A, PROXY_B),
      protoArb,
      fc.integer({ min: 0, max: 65535 }),
      fc.constantFrom(PROXY_A, PROXY_B),
      fc.constantFrom(REAL_1, REAL_2),
      fc.constantFrom(REAL_1, REAL_2),
      (p1, id1, in1, p2, id2, in2, real1, real2) => {
        fc.pre(!(p1 === p2 && id1 === id2 && in1 === in2));
        const table = new NatTable();

        const o1 = table.translateOutgoing(p1, id1, in1, real1, false, 0);
        const o2 = table.translateOutgoing(p2, id2, in2, real2, false, 0);
        const r1 = new NatTuple();
        const r2 = new NatTuple();

        return table.translateIncoming(p1, o1, real1, false, r1) === NatIncoming.Ok &&
          table.translateIncoming(p2, o2, real2, false, r2) === NatIncoming.Ok &&
          r1.l4Id === id1 && r1.ipKey === in1 && r2.l4Id === id2 && r2.ipKey === in2;
      },
    ),
  );
});

// Upstream nat_table.rs proptest `outgoing_tcp_rst_removes_nat_mapping`.
Deno.test("NatTable: an outgoing TCP RST ends the session, later replies are expired", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 65535 }), (port) => {
      const table = new NatTable();
      const out = new NatTuple();
      const o = table.translateOutgoing(NatProto.Tcp, port, PROXY_A, REAL_1, false, 0);
      assert.equal(table.translateIncoming(NatProto.Tcp, o, REAL_1, false, out), NatIncoming.Ok);

      const rstOutside = table.translateOutgoing(NatProto.Tcp, port, PROXY_A, REAL_1, true, 1);

      assert.equal(rstOutside, o, "the RST itself is still translated");
      assert.equal(table.translateIncoming(NatProto.Tcp, o, REAL_1, false, out), NatIncoming.Expired);
      assert.equal(table.size, 0);
    }),
  );
});

Deno.test("NatTable: an incoming TCP RST is translated once, then the session is expired", () => {
  const table = new NatTable();
  const out = new NatTuple();
  const o = table.translateOutgoing(NatProto.Tcp, 40000, PROXY_A, REAL_1, false, 0);

  assert.equal(table.translateIncoming(NatProto.Tcp, o, REAL_1, true, out), NatIncoming.Ok);
  assert.equal(out.l4Id, 40000);
  assert.equal(table.translateIncoming(NatProto.Tcp, o, REAL_1, false, out), NatIncoming.Expired);
  assert.equal(table.hasEntryForInside(PROXY_A), false);
});

Deno.test("NatTable allocates the next free port for the same real IP and wraps to 1", () => {
  const table = new NatTable();

  assert.equal(table.translateOutgoing(NatProto.Udp, 1000, PROXY_A, REAL_1, false, 0), 1000);
  assert.equal(table.translateOutgoing(NatProto.Udp, 1000, PROXY_B, REAL_1, false, 0), 1001);
  // Another real IP or protocol does not collide.
  assert.equal(table.translateOutgoing(NatProto.Udp, 1000, PROXY_C, REAL_2, false, 0), 1000);
  assert.equal(table.translateOutgoing(NatProto.Tcp, 1000, PROXY_C, REAL_1, false, 0), 1000);

  assert.equal(table.translateOutgoing(NatProto.Tcp, 65535, PROXY_A, REAL_2, false, 0), 65535);
  assert.equal(table.translateOutgoing(NatProto.Tcp, 65535, PROXY_B, REAL_2, false, 0), 1);

  const out = new NatTuple();
  assert.equal(table.translateIncoming(NatProto.Udp, 1001, REAL_1, false, out), NatIncoming.Ok);
  assert.deepEqual([out.l4Id, out.ipKey], [1000, PROXY_B]);
  assert.equal(table.translateIncoming(NatProto.Tcp, 1, REAL_2, false, out), NatIncoming.Ok);
  assert.deepEqual([out.l4Id, out.ipKey], [65535, PROXY_B]);
});

Deno.test("NatTable reports exhaustion when every outside id is taken", () => {
  const table = new NatTable();
  for (let p = 1; p <= 65535; p++) {
    assert.equal(table.translateOutgoing(NatProto.Icmp, p, PROXY_A, REAL_1, false, 0), p);
  }

  assert.equal(table.translateOutgoing(NatProto.Icmp, 5, PROXY_B, REAL_1, false, 0), -1);
});

Deno.test("NatTable TTLs: TCP 2 h, UDP and ICMP 2 min, refreshed by outgoing traffic only", () => {
  assert.equal(TCP_TTL_MS, 7_200_000);
  assert.equal(UDP_TTL_MS, 120_000);
  assert.equal(ICMP_TTL_MS, 120_000);
  const table = new NatTable();
  const out = new NatTuple();
  table.translateOutgoing(NatProto.Tcp, 1, PROXY_A, REAL_1, false, 0);
  table.translateOutgoing(NatProto.Udp, 2, PROXY_A, REAL_1, false, 0);
  table.translateOutgoing(NatProto.Icmp, 3, PROXY_A, REAL_1, false, 0);

  // Incoming traffic does not keep a mapping alive (upstream quirk).
  table.translateIncoming(NatProto.Udp, 2, REAL_1, false, out);
  table.handleTimeout(UDP_TTL_MS - 1);
  assert.equal(table.size, 3);
  table.translateOutgoing(NatProto.Icmp, 3, PROXY_A, REAL_1, false, 60_000);
  table.handleTimeout(UDP_TTL_MS);
  assert.equal(table.translateIncoming(NatProto.Udp, 2, REAL_1, false, out), NatIncoming.Expired);
  assert.equal(table.translateIncoming(NatProto.Icmp, 3, REAL_1, false, out), NatIncoming.Ok);
  table.handleTimeout(TCP_TTL_MS - 1);
  assert.equal(table.translateIncoming(NatProto.Tcp, 1, REAL_1, false, out), NatIncoming.Ok);
  assert.equal(table.translateIncoming(NatProto.Icmp, 3, REAL_1, false, out), NatIncoming.Expired);
  table.handleTimeout(TCP_TTL_MS);
  assert.equal(table.translateIncoming(NatProto.Tcp, 1, REAL_1, false, out), NatIncoming.Expired);
  assert.equal(table.size, 0);
});

Deno.test("NatTable: an expired outside tuple is reused by a new session", () => {
  const table = new NatTable();
  const out = new NatTuple();
  table.translateOutgoing(NatProto.Udp, 5000, PROXY_A, REAL_1, false, 0);
  table.handleTimeout(UDP_TTL_MS);
  assert.equal(table.translateIncoming(NatProto.Udp, 5000, REAL_1, false, out), NatIncoming.Expired);

  assert.equal(table.translateOutgoing(NatProto.Udp, 5000, PROXY_B, REAL_1, false, UDP_TTL_MS), 5000);

  assert.equal(table.translateIncoming(NatProto.Udp, 5000, REAL_1, false, out), NatIncoming.Ok);
  assert.equal(out.ipKey, PROXY_B);
});

Deno.test("NatTable: a new real IP for the same inside tuple replaces the mapping", () => {
  const table = new NatTable();
  const out = new NatTuple();
  table.translateOutgoing(NatProto.Udp, 5000, PROXY_A, REAL_1, false, 0);

  assert.equal(table.translateOutgoing(NatProto.Udp, 5000, PROXY_A, REAL_2, false, 1), 5000);

  assert.equal(table.size, 1);
  // Upstream does not mark the replaced outside tuple expired: replies to it pass as "no session".
  assert.equal(table.translateIncoming(NatProto.Udp, 5000, REAL_1, false, out), NatIncoming.NoSession);
  assert.equal(table.translateIncoming(NatProto.Udp, 5000, REAL_2, false, out), NatIncoming.Ok);
});

Deno.test("NatTable.hasEntryForInside() tracks live mappings per proxy IP", () => {
  const table = new NatTable();
  assert.equal(table.hasEntryForInside(PROXY_A), false);
  table.translateOutgoing(NatProto.Udp, 1, PROXY_A, REAL_1, false, 0);
  table.translateOutgoing(NatProto.Udp, 2, PROXY_A, REAL_1, false, 0);

  assert.equal(table.hasEntryForInside(PROXY_A), true);
  assert.equal(table.hasEntryForInside(PROXY_B), false);
  table.handleTimeout(UDP_TTL_MS);
  assert.equal(table.hasEntryForInside(PROXY_A), false);
});

Deno.test("NatTable.lookupQuoted() finds the inside tuple of a quoted outgoing packet", () => {
  const table = new NatTable();
  const out = new NatTuple();
  table.translateOutgoing(NatProto.Udp, 1000, PROXY_A, REAL_1, false, 0);
  const o = table.translateOutgoing(NatProto.Udp, 1000, PROXY_B, REAL_1, false, 0);

  assert.equal(table.lookupQuoted(NatProto.Udp, o, REAL_1, out), NatIncoming.Ok);
  assert.deepEqual([out.l4Id, out.ipKey], [1000, PROXY_B]);
  assert.equal(table.lookupQuoted(NatProto.Udp, 9, REAL_1, out), NatIncoming.NoSession);
  table.handleTimeout(UDP_TTL_MS);
  assert.equal(table.lookupQuoted(NatProto.Udp, o, REAL_1, out), NatIncoming.Expired);
});

Deno.test("NatProto numbers equal L4Kind numbers (the packet paths rely on it)", () => {
  assert.equal(NatProto.Tcp, L4Kind.Tcp);
  assert.equal(NatProto.Udp, L4Kind.Udp);
  assert.equal(NatProto.Icmp, L4Kind.Icmp);
});
