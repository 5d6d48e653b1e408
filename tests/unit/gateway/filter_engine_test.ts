import assert from "node:assert/strict";
import { FilterEngine, FilterVerdict, filterVerdictName } from "../../../src/gateway/filter_engine.ts";
import { L4Kind } from "../../../src/wire/ip_packet.ts";
import { ICMP_FILTER, tcpFilter, udpFilter } from "./_packets.ts";

// Upstream filter_engine.rs `allows_icmpv4_destination_unreachable` / `allows_icmpv6_destination_unreachable`:
// with the ICMP filter set, non-echo ICMP types are allowed too.
Deno.test("FilterEngine allows any ICMP type when the ICMP filter is set", () => {
  const engine = FilterEngine.fromFilterLists([[ICMP_FILTER]]);

  assert.equal(engine.check(L4Kind.Icmp, 0), FilterVerdict.Allowed);
  assert.equal(engine.icmp, true);
  assert.equal(engine.permitAll, false);
});

Deno.test("FilterEngine blocks ICMP (echo and other types) without the ICMP filter", () => {
  const engine = FilterEngine.fromFilterLists([[tcpFilter(0, 65535), udpFilter(0, 65535)]]);

  assert.equal(engine.check(L4Kind.Icmp, 0), FilterVerdict.IcmpNotAllowed);
});

Deno.test("FilterEngine is permit-all when any contributing list is empty", () => {
  const engine = FilterEngine.fromFilterLists([[tcpFilter(80, 80)], [], [udpFilter(53, 53)]]);

  assert.equal(engine.permitAll, true);
  assert.equal(engine.check(L4Kind.Other, 0), FilterVerdict.Allowed);
  assert.equal(engine.check(L4Kind.Tcp, 1), FilterVerdict.Allowed);
  assert.equal(engine.check(L4Kind.Icmp, 0), FilterVerdict.Allowed);
});

Deno.test("FilterEngine with no lists allows nothing", () => {
  const engine = FilterEngine.fromFilterLists([]);

  assert.equal(engine.check(L4Kind.Tcp, 80), FilterVerdict.TcpPortNotAllowed);
  assert.equal(engine.check(L4Kind.Other, 0), FilterVerdict.UnsupportedProtocol);
});

Deno.test("FilterEngine refuses other IP protocols unless permit-all", () => {
  const engine = FilterEngine.fromFilterLists([[tcpFilter(0, 65535), udpFilter(0, 65535), ICMP_FILTER]]);

  assert.equal(engine.check(L4Kind.Other, 0), FilterVerdict.UnsupportedProtocol);
});

Deno.test("FilterEngine port ranges are inclusive at 0, 65535 and start = end", () => {
  const engine = FilterEngine.fromFilterLists([[
    tcpFilter(0, 0),
    tcpFilter(65535, 65535),
    udpFilter(443, 443),
  ]]);

  assert.equal(engine.check(L4Kind.Tcp, 0), FilterVerdict.Allowed);
  assert.equal(engine.check(L4Kind.Tcp, 1), FilterVerdict.TcpPortNotAllowed);
  assert.equal(engine.check(L4Kind.Tcp, 65534), FilterVerdict.TcpPortNotAllowed);
  assert.equal(engine.check(L4Kind.Tcp, 65535), FilterVerdict.Allowed);
  assert.equal(engine.check(L4Kind.Udp, 442), FilterVerdict.UdpPortNotAllowed);
  assert.equal(engine.check(L4Kind.Udp, 443), FilterVerdict.Allowed);
  assert.equal(engine.check(L4Kind.Udp, 444), FilterVerdict.UdpPortNotAllowed);
  // TCP and UDP ranges are separate.
  assert.equal(engine.check(L4Kind.Udp, 0), FilterVerdict.UdpPortNotAllowed);
  assert.equal(engine.check(L4Kind.Tcp, 443), FilterVerdict.TcpPortNotAllowed);
});

Deno.test("FilterEngine unions overlapping and adjacent ranges from several lists", () => {
  const engine = FilterEngine.fromFilterLists([[tcpFilter(20, 100)], [
    tcpFilter(90, 200),
    tcpFilter(201, 300),
  ], [
    tcpFilter(1000, 1000),
  ]]);

  assert.deepEqual(Array.from(engine.tcpRanges), [20, 300, 1000, 1000]);
  for (const port of [20, 99, 150, 300, 1000]) {
    assert.equal(engine.check(L4Kind.Tcp, port), FilterVerdict.Allowed);
  }
  for (const port of [19, 301, 999, 1001]) {
    assert.equal(engine.check(L4Kind.Tcp, port), FilterVerdict.TcpPortNotAllowed);
  }
});

Deno.test("FilterEngine.check() agrees with a linear scan of the filters", () => {
  const filters = [tcpFilter(5, 9), tcpFilter(1, 3), tcpFilter(8, 12), tcpFilter(30, 31), tcpFilter(14, 14)];
  const engine = FilterEngine.fromFilterLists([filters]);

  for (let port = 0; port < 40; port++) {
    const expected = filters.some((f) =>
      f.protocol === "tcp" && f.portRangeStart <= port && port <= f.portRangeEnd
    );
    assert.equal(engine.check(L4Kind.Tcp, port) === FilterVerdict.Allowed, expected, `port ${port}`);
  }
});

Deno.test("filterVerdictName() names every verdict", () => {
  assert.equal(filterVerdictName(FilterVerdict.Allowed), "Allowed");
  assert.equal(filterVerdictName(FilterVerdict.NoResource), "NoResource");
  assert.equal(filterVerdictName(99), "Unknown");
});
