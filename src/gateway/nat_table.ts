/**
 * The per-client DNS-resource NAT table (spec §4.5): a symmetric NAT between the client's "inside"
 * tuples (source L4 id, proxy IP) and the "outside" tuples (allocated L4 id, real IP).
 *
 * L4 ids are TCP/UDP source ports or ICMP echo identifiers; protocols never mix. IPs are small
 * numeric keys chosen by the caller (`ClientOnGateway` uses a 22-bit proxy key for the inside and
 * an interned index of the real address for the outside). Maps are two-level, IP key → (proto,
 * L4 id) → mapping, so every key is a small integer (a V8 Smi): lookups allocate nothing.
 *
 * Behaviour kept from upstream: an outgoing TCP RST ends the mapping (the packet is still
 * translated) and so does an incoming one; the outside tuples of ended sessions are remembered so
 * late packets are reported as expired rather than passed through; TTLs count from the last
 * *outgoing* packet only (quirk: upstream refreshes incoming activity under the inside tuple, which
 * its sweeper never looks at, so incoming traffic does not keep a mapping alive; here it is simply
 * not recorded); replacing a mapping because the real IP changed does not mark the old outside
 * tuple expired. The expired set is never pruned (as upstream: it lives as long as the client).
 *
 * @module
 */

/** NAT protocol numbers (the `proto` part of a tuple). Equal to the `L4Kind` numbers. */
export const NatProto = { Tcp: 1, Udp: 2, Icmp: 3 } as const;
export type NatProto = (typeof NatProto)[keyof typeof NatProto];

/** Idle time after which a TCP mapping expires: 2 h. */
export const TCP_TTL_MS = 2 * 60 * 60 * 1000;
/** Idle time after which a UDP mapping expires: 2 min. */
export const UDP_TTL_MS = 2 * 60 * 1000;
/** Idle time after which an ICMP mapping expires: 2 min. */
export const ICMP_TTL_MS = 2 * 60 * 1000;

/** Largest IP key accepted (keys must stay small integers). */
export const MAX_NAT_IP_KEY = 0x3fffffff;

/** Outcome of {@link NatTable.translateIncoming}. */
export const NatIncoming = {
  /** A live mapping: `out.l4Id` / `out.ipKey` hold the inside tuple. */
  Ok: 0,
  /** No mapping, but the outside tuple belonged to an ended session: drop. */
  Expired: 1,
  /** No mapping at all: not DNS-resource traffic, pass unchanged. */
  NoSession: 2,
} as const;
export type NatIncoming = (typeof NatIncoming)[keyof typeof NatIncoming];

/** Reusable result of an incoming lookup. */
export class NatTuple {
  l4Id = 0;
  ipKey = 0;
}

/** One live mapping. `lastSeenAt` is a double field updated in place (no allocation per packet). */
class NatMapping {
  readonly insideIp: number;
  /** `proto << 16 | l4Id` of the inside tuple. */
  readonly insidePl: number;
  readonly outsideIp: number;
  /** `proto << 16 | l4Id` of the outside tuple. */
  readonly outsidePl: number;
  /** Last outgoing use (monotonic ms). */
  lastSeenAt: number;

  constructor(insideIp: number, insidePl: number, outsideIp: number, outsidePl: number, now: number) {
    this.insideIp = insideIp;
    this.insidePl = insidePl;
    this.outsideIp = outsideIp;
    this.outsidePl = outsidePl;
    this.lastSeenAt = now;
  }
}

/** The NAT table of one client. */
export class NatTable {
  /** Inside IP key → (proto, L4 id) → mapping. */
  readonly #byInside = new Map<number, Map<number, NatMapping>>();
  /** Outside IP key → (proto, L4 id) → mapping. */
  readonly #byOutside = new Map<number, Map<number, NatMapping>>();
  /** Outside IP key → (proto, L4 id) of sessions that timed out or saw a RST. */
  readonly #expired = new Map<number, Set<number>>();
  #size = 0;

  /** Number of live mappings. */
  get size(): number {
    return this.#size;
  }

  /**
   * Translates an outgoing packet's source tuple. Reuses the mapping of the inside tuple when its
   * outside IP is still `outsideIpKey`; otherwise allocates the first free outside L4 id for that
   * IP starting at `l4Id` (`l4Id..65535`, then `1..l4Id-1`). An outgoing RST ends the mapping.
   * Hot path: no allocation once the mapping exists.
   *
   * @returns the outside L4 id, or -1 when every id is taken ("Exhausted NAT")
   */
  translateOutgoing(
    proto: NatProto,
    l4Id: number,
    insideIpKey: number,
    outsideIpKey: number,
    tcpRst: boolean,
    now: number,
  ): number {
    const insidePl = (proto << 16) | l4Id;
    const existing = this.#byInside.get(insideIpKey)?.get(insidePl);
    if (existing !== undefined && existing.outsideIp === outsideIpKey) {
      if (tcpRst) {
        this.#remove(existing);
        this.#markExpired(existing.outsideIp, existing.outsidePl);
      }
      existing.lastSeenAt = now;
      return existing.outsidePl & 0xffff;
    }
    const used = this.#byOutside.get(outsideIpKey);
    const base = proto << 16;
    let port = -1;
    if (used === undefined) {
      port = l4Id;
    } else {
      for (let p = l4Id; p <= 0xffff; p++) {
        if (!used.has(base | p)) {
          port = p;
          break;
        }
      }
      if (port < 0) {
        for (let p = 1; p < l4Id; p++) {
          if (!used.has(base | p)) {
            port = p;
            break;
          }
        }
      }
    }
    if (port < 0) return -1;
    // Bidirectional insert: the inside tuple's previous mapping (to another real IP) is replaced,
    // without marking its outside tuple expired (as upstream's BiMap does).
    if (existing !== undefined) this.#remove(existing);
    const m = new NatMapping(insideIpKey, insidePl, outsideIpKey, base | port, now);
    inner(this.#byInside, insideIpKey).set(insidePl, m);
    inner(this.#byOutside, outsideIpKey).set(m.outsidePl, m);
    this.#size++;
    this.#expired.get(outsideIpKey)?.delete(m.outsidePl);
    return port;
  }

  /**
   * Looks up an incoming packet by (destination L4 id, source IP key). An incoming RST ends the
   * mapping (the packet itself is still translated). Hot path: no allocation.
   */
  translateIncoming(
    proto: NatProto,
    l4Id: number,
    outsideIpKey: number,
    tcpRst: boolean,
    out: NatTuple,
  ): NatIncoming {
    const pl = (proto << 16) | l4Id;
    const m = this.#byOutside.get(outsideIpKey)?.get(pl);
    if (m !== undefined) {
      if (tcpRst) {
        this.#remove(m);
        this.#markExpired(outsideIpKey, pl);
      }
      out.l4Id = m.insidePl & 0xffff;
      out.ipKey = m.insideIp;
      return NatIncoming.Ok;
    }
    return this.#isExpired(outsideIpKey, pl) ? NatIncoming.Expired : NatIncoming.NoSession;
  }

  /**
   * Looks up the packet quoted in an incoming ICMP error by its (source L4 id, destination IP key),
   * i.e. the outside tuple of the failed outgoing packet. No RST handling. Hot path.
   */
  lookupQuoted(proto: NatProto, l4Id: number, outsideIpKey: number, out: NatTuple): NatIncoming {
    const pl = (proto << 16) | l4Id;
    const m = this.#byOutside.get(outsideIpKey)?.get(pl);
    if (m !== undefined) {
      out.l4Id = m.insidePl & 0xffff;
      out.ipKey = m.insideIp;
      return NatIncoming.Ok;
    }
    return this.#isExpired(outsideIpKey, pl) ? NatIncoming.Expired : NatIncoming.NoSession;
  }

  /** True when some live mapping has `insideIpKey` as its inside IP (a proxy IP in use). */
  hasEntryForInside(insideIpKey: number): boolean {
    return this.#byInside.has(insideIpKey);
  }

  /**
   * Ends every mapping idle for at least its TTL (TCP 2 h, UDP/ICMP 2 min since the last outgoing
   * packet) and remembers its outside tuple as expired. Call every second.
   *
   * @returns the number of mappings ended
   */
  handleTimeout(now: number): number {
    let ended = 0;
    for (const byPl of this.#byOutside.values()) {
      for (const m of byPl.values()) {
        if (now - m.lastSeenAt < ttlOf(m.outsidePl >>> 16)) continue;
        this.#remove(m);
        this.#markExpired(m.outsideIp, m.outsidePl);
        ended++;
      }
    }
    return ended;
  }

  /** Forgets everything, including the expired set. */
  clear(): void {
    this.#byInside.clear();
    this.#byOutside.clear();
    this.#expired.clear();
    this.#size = 0;
  }

  #remove(m: NatMapping): void {
    const a = this.#byInside.get(m.insideIp);
    if (a !== undefined && a.get(m.insidePl) === m) {
      a.delete(m.insidePl);
      if (a.size === 0) this.#byInside.delete(m.insideIp);
    }
    const b = this.#byOutside.get(m.outsideIp);
    if (b !== undefined && b.get(m.outsidePl) === m) {
      b.delete(m.outsidePl);
      if (b.size === 0) this.#byOutside.delete(m.outsideIp);
    }
    this.#size--;
  }

  #markExpired(outsideIp: number, pl: number): void {
    let set = this.#expired.get(outsideIp);
    if (set === undefined) {
      set = new Set();
      this.#expired.set(outsideIp, set);
    }
    set.add(pl);
  }

  #isExpired(outsideIp: number, pl: number): boolean {
    const set = this.#expired.get(outsideIp);
    return set !== undefined && set.has(pl);
  }
}

function inner(outer: Map<number, Map<number, NatMapping>>, key: number): Map<number, NatMapping> {
  let m = outer.get(key);
  if (m === undefined) {
    m = new Map();
    outer.set(key, m);
  }
  return m;
}

function ttlOf(proto: number): number {
  return proto === NatProto.Tcp ? TCP_TTL_MS : proto === NatProto.Udp ? UDP_TTL_MS : ICMP_TTL_MS;
}
