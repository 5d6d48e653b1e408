/**
 * The per-network filter engine (spec §4.1, §4.2 step 4, §4.3 step 6): either permit-all, or the
 * union of TCP port ranges, UDP port ranges and an ICMP flag.
 *
 * An engine is built from the filter lists of every resource that contributes to a network; it is
 * permit-all as soon as one contributing list is empty (an empty `filters` array means "permit
 * everything"). Otherwise TCP/UDP are checked against the port (destination port outbound, source
 * port inbound), ICMP of any type (echo or not) needs the ICMP flag, and every other IP protocol is
 * refused. Checks are hot path: no allocation.
 *
 * @module
 */

import type { Filter } from "../portal/messages.ts";
import { L4Kind } from "../wire/ip_packet.ts";

/** Outcome of {@link FilterEngine.check}. */
export const FilterVerdict = {
  Allowed: 0,
  /** TCP port is not in an allowed range. */
  TcpPortNotAllowed: 1,
  /** UDP port is not in an allowed range. */
  UdpPortNotAllowed: 2,
  /** ICMP is not allowed (no ICMP filter). */
  IcmpNotAllowed: 3,
  /** Another IP protocol, allowed only under permit-all. */
  UnsupportedProtocol: 4,
  /** No resource covers the address (set by the packet paths, never by an engine). */
  NoResource: 5,
} as const;
export type FilterVerdict = (typeof FilterVerdict)[keyof typeof FilterVerdict];

const VERDICT_NAMES: string[] = [];
for (const [name, code] of Object.entries(FilterVerdict)) VERDICT_NAMES[code] = name;

/** The name of a {@link FilterVerdict} for logs. */
export function filterVerdictName(v: number): string {
  return VERDICT_NAMES[v] ?? "Unknown";
}

/** An immutable filter engine; build with {@link FilterEngine.fromFilterLists}. */
export class FilterEngine {
  /** True when every packet is allowed. */
  readonly permitAll: boolean;
  /** True when ICMP (any type) is allowed. */
  readonly icmp: boolean;
  /** Merged, sorted, disjoint inclusive TCP ranges: `[start0, end0, start1, end1, ...]`. */
  readonly tcpRanges: Int32Array;
  /** Merged, sorted, disjoint inclusive UDP ranges. */
  readonly udpRanges: Int32Array;

  /** Prefer {@link FilterEngine.fromFilterLists}; the range arrays must be merged and sorted. */
  constructor(permitAll: boolean, icmp: boolean, tcp: Int32Array, udp: Int32Array) {
    this.permitAll = permitAll;
    this.icmp = icmp;
    this.tcpRanges = tcp;
    this.udpRanges = udp;
  }

  /** The engine that allows everything. */
  static readonly PERMIT_ALL: FilterEngine = new FilterEngine(
    true,
    true,
    new Int32Array(0),
    new Int32Array(0),
  );

  /**
   * Combines the filter lists of all contributing resources: permit-all if any list is empty,
   * otherwise the union of all their rules. An empty iterable of lists yields an engine that
   * allows nothing.
   */
  static fromFilterLists(lists: Iterable<readonly Filter[]>): FilterEngine {
    const tcp: [number, number][] = [];
    const udp: [number, number][] = [];
    let icmp = false;
    for (const list of lists) {
      if (list.length === 0) return FilterEngine.PERMIT_ALL;
      for (const f of list) {
        if (f.protocol === "icmp") icmp = true;
        else if (f.protocol === "tcp") tcp.push([f.portRangeStart, f.portRangeEnd]);
        else udp.push([f.portRangeStart, f.portRangeEnd]);
      }
    }
    return new FilterEngine(false, icmp, mergeRanges(tcp), mergeRanges(udp));
  }

  /**
   * Checks one packet's protocol. `kind` is the {@link L4Kind}; `port` the TCP/UDP port to check
   * (destination port for client → resource, source port for resource → client). Hot path.
   */
  check(kind: number, port: number): FilterVerdict {
    if (this.permitAll) return FilterVerdict.Allowed;
    switch (kind) {
      case L4Kind.Tcp:
        return rangesContain(this.tcpRanges, port) ? FilterVerdict.Allowed : FilterVerdict.TcpPortNotAllowed;
      case L4Kind.Udp:
        return rangesContain(this.udpRanges, port) ? FilterVerdict.Allowed : FilterVerdict.UdpPortNotAllowed;
      case L4Kind.Icmp:
        // Upstream: echo needs the flag, and with the flag any other ICMP type is fine too.
        return this.icmp ? FilterVerdict.Allowed : FilterVerdict.IcmpNotAllowed;
      default:
        return FilterVerdict.UnsupportedProtocol;
    }
  }

  /** For debug logs: `PermitAll` or `tcp=[80-80] udp=[] icmp=false`. Allocates. */
  toString(): string {
    if (this.permitAll) return "PermitAll";
    return `tcp=${fmtRanges(this.tcpRanges)} udp=${fmtRanges(this.udpRanges)} icmp=${this.icmp}`;
  }
}

/** Sorts and merges inclusive ranges (overlapping or adjacent ones collapse). Inverted ranges are empty. */
function mergeRanges(ranges: [number, number][]): Int32Array {
  const valid = ranges.filter(([s, e]) => s <= e).sort((a, b) => a[0] - b[0]);
  const out: number[] = [];
  for (const [s, e] of valid) {
    const n = out.length;
    if (n > 0 && s <= out[n - 1]! + 1) {
      if (e > out[n - 1]!) out[n - 1] = e;
    } else {
      out.push(s, e);
    }
  }
  return Int32Array.from(out);
}

/** Binary search over merged `[start, end]` pairs. Hot path. */
function rangesContain(r: Int32Array, port: number): boolean {
  let lo = 0;
  let hi = (r.length >> 1) - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = r[2 * mid]!;
    if (port < s) hi = mid - 1;
    else if (port > r[2 * mid + 1]!) lo = mid + 1;
    else return true;
  }
  return false;
}

function fmtRanges(r: Int32Array): string {
  const parts: string[] = [];
  for (let i = 0; i < r.length; i += 2) parts.push(`${r[i]}-${r[i + 1]}`);
  return `[${parts.join(",")}]`;
}
