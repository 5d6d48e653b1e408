/**
 * The state of one client on this gateway (upstream `ClientOnGateway`, spec §4.1–§4.5): its tunnel
 * addresses, the resources it may access, the filter table derived from them, the DNS "permanent
 * translations" (proxy IP → real IP) and its NAT table; plus the two packet paths.
 *
 * Sans-IO. Control-plane methods allocate; `translateOutbound` and `translateInbound` are hot
 * path: in place, no allocation, result codes and a reusable {@link PolicyOutput}.
 *
 * @module
 */

import type { Filter, ResourceDescription } from "../portal/messages.ts";
import { logger } from "../log.ts";
import { formatIp, parseIpv4, parseIpv6 } from "../wire/ip_addr.ts";
import {
  buildIcmpUnreachableReply,
  type IpPacketInfo,
  isP2pControl,
  L4Kind,
  p2pControlEvent,
  parseIcmpQuote,
  parseIpPacket,
  ParseResult,
  setDstL4Id,
  setIpv4Dst,
  setIpv4Src,
  setIpv6Dst,
  setIpv6Src,
  setSrcL4Id,
  UnreachableReason,
} from "../wire/ip_packet.ts";
import { icmpv4IsNatTranslatableError, icmpv6IsNatTranslatableError } from "../wire/icmp.ts";
import { ipv4Uint32 } from "../wire/ipv4.ts";
import { ipv6AddrEqual } from "../wire/ipv6.ts";
import { TCP_FLAG_RST } from "../wire/tcp.ts";
import { FilterEngine, FilterVerdict } from "./filter_engine.ts";
import { type IpNetwork, IpNetworkTable, networkContainsNetwork } from "./ip_network_table.ts";
import { NatIncoming, type NatProto, NatTable } from "./nat_table.ts";
import {
  isDnsProxy4,
  isDnsProxy6,
  isProxyKey6,
  type PolicyOutput,
  PolicyResult,
  proxyAddr4,
  proxyKey4,
  proxyKey6,
  rebuildNatIcmpError,
  writeProxyAddr6,
} from "./packet_policy.ts";
import {
  type ResolvedIp,
  resourceAllowedAt,
  resourceFilters,
  resourceFromDescription,
  resourceNetworks,
  type ResourceState,
  updateResourceFilters,
} from "./resources.ts";

const log = logger("fz_gateway::gateway::client");

/** The IPv4 and IPv6 tunnel addresses of a client or of the gateway (textual). */
export interface TunAddresses {
  readonly ipv4: string;
  readonly ipv6: string;
}

/** Outcome of {@link ClientOnGateway.setupDnsNat}. Anything but `Ok` answers `DomainStatus` Inactive. */
export const SetupDnsNatResult = {
  Ok: 0,
  /** The client has no authorization for the resource. */
  UnknownResource: 1,
  /** The resource is not a DNS resource. */
  NotDnsResource: 2,
  /** The domain does not match the resource's address pattern (or the pattern is invalid). */
  DomainMismatch: 3,
} as const;
export type SetupDnsNatResult = (typeof SetupDnsNatResult)[keyof typeof SetupDnsNatResult];

/** What {@link ClientOnGateway.expire} removed. */
export interface ExpireResult {
  /** Ids of the resources whose access expired (log each at INFO "Access to resource expired"). */
  readonly removed: readonly string[];
  /** True when the client has no resources left (the caller drops the client state). */
  readonly empty: boolean;
}

/** Outcome of {@link ClientOnGateway.updateFilters}. */
export const UpdateFiltersResult = { Updated: 0, UnknownResource: 1, TypeChanged: 2 } as const;
export type UpdateFiltersResult = (typeof UpdateFiltersResult)[keyof typeof UpdateFiltersResult];

/** A DNS proxy IP's translation: which DNS resource it belongs to and the real address. */
interface Translation {
  readonly resourceId: string;
  readonly domain: string;
  readonly realFamily: 4 | 6;
  /** IPv4 real address as int32 (0 for IPv6). */
  readonly real4: number;
  /** 4 or 16 bytes. */
  readonly realBytes: Uint8Array;
  /** Interned index of the real address (the NAT's outside IP key). */
  readonly realKey: number;
}

/**
 * One client's policy state.
 *
 * @example
 * ```ts
 * const client = new ClientOnGateway(clientId, { ipv4: "100.64.0.1", ipv6: "fd00:2021:1111::1" },
 *   { ipv4: "100.64.0.2", ipv6: "fd00:2021:1111::2" });
 * client.addResource(resourceDescription, null);
 * const out = new PolicyOutput(replyArena, 0);
 * const code = client.translateOutbound(buf, off, len, now, out);
 * if (code === PolicyResult.Forward) writeToTun(buf, off, out.len);
 * if (out.replyLen > 0) encryptToClient(out.replyBuf, out.replyOff, out.replyLen);
 * ```
 */
export class ClientOnGateway {
  /** The client's id. */
  readonly id: string;
  /** Canonical client tunnel IPv4. */
  readonly clientIpv4: string;
  /** Canonical client tunnel IPv6. */
  readonly clientIpv6: string;
  readonly #clientV4: number;
  readonly #clientV6: Uint8Array;
  readonly #gatewayV4: number;
  readonly #gatewayV6: Uint8Array;

  readonly #resources = new Map<string, ResourceState>();
  #filters = new IpNetworkTable<FilterEngine>();
  #internetEnabled = false;
  /** Proxy key (see `proxyKey4`/`proxyKey6`) → translation. */
  readonly #translations = new Map<number, Translation>();
  readonly #nat = new NatTable();
  /** Real addresses seen in translations → interned index (never forgotten: NAT keys refer to it). */
  readonly #realIps = new IpNetworkTable<number>();
  #nextRealKey = 0;
  readonly #proxy6 = new Uint8Array(16);

  /**
   * @throws TypeError when an address is not a valid IPv4/IPv6 address
   */
  constructor(id: string, client: TunAddresses, gateway: TunAddresses) {
    this.id = id;
    const c4 = parseIpv4(client.ipv4);
    const c6 = parseIpv6(client.ipv6);
    const g4 = parseIpv4(gateway.ipv4);
    const g6 = parseIpv6(gateway.ipv6);
    if (!c4 || !c6) {
      throw new TypeError(`Invalid tunnel addresses for client "${id}": ${client.ipv4}, ${client.ipv6}`);
    }
    if (!g4 || !g6) throw new TypeError(`Invalid gateway tunnel addresses: ${gateway.ipv4}, ${gateway.ipv6}`);
    this.clientIpv4 = formatIp(c4);
    this.clientIpv6 = formatIp(c6);
    this.#clientV4 = ipv4Uint32(c4, 0);
    this.#clientV6 = c6;
    this.#gatewayV4 = ipv4Uint32(g4, 0);
    this.#gatewayV6 = g6;
  }

  // -------------------------------------------------------------------------------------------
  // Control plane

  /**
   * Grants access to a resource (`authorize_flow`, `allow_access`, `request_connection`). A resource
   * that already exists only gets its filters replaced; its expiry is kept (quirk).
   *
   * @returns false when an existing resource of another type was not changed (ERROR logged)
   */
  addResource(desc: ResourceDescription, expiresAtUtcMs: number | null): boolean {
    const existing = this.#resources.get(desc.id);
    let ok = true;
    if (existing === undefined) {
      log.info("Allowing access to resource", {
        cid: this.id,
        rid: desc.id,
        expires: isoOrNull(expiresAtUtcMs),
      });
      this.#resources.set(desc.id, resourceFromDescription(desc, expiresAtUtcMs));
    } else {
      ok = updateResourceFilters(existing, desc);
      if (!ok) {
        log.error("Resources cannot change type", {
          cid: this.id,
          rid: desc.id,
          current: existing.kind,
          new: desc.type,
        });
      }
    }
    this.#recalculateFilters();
    return ok;
  }

  /** Replaces a resource's filters (`resource_updated`); name/address changes have no effect. */
  updateFilters(desc: ResourceDescription): UpdateFiltersResult {
    const existing = this.#resources.get(desc.id);
    if (existing === undefined) return UpdateFiltersResult.UnknownResource;
    const ok = updateResourceFilters(existing, desc);
    if (!ok) {
      log.error("Resources cannot change type", {
        cid: this.id,
        rid: desc.id,
        current: existing.kind,
        new: desc.type,
      });
    }
    this.#recalculateFilters();
    return ok ? UpdateFiltersResult.Updated : UpdateFiltersResult.TypeChanged;
  }

  /**
   * Replaces a resource's expiry (`access_authorization_expiry_updated`, `init.authorizations`).
   *
   * @returns false when the resource is unknown (upstream logs it at DEBUG)
   */
  updateExpiry(resourceId: string, expiresAtUtcMs: number | null): boolean {
    const r = this.#resources.get(resourceId);
    if (r === undefined) return false;
    const old = r.expiresAtUtcMs;
    r.expiresAtUtcMs = expiresAtUtcMs;
    log.info("Updated resource expiry", {
      cid: this.id,
      rid: resourceId,
      old: isoOrNull(old),
      new: isoOrNull(expiresAtUtcMs),
    });
    return true;
  }

  /** Removes a resource (`reject_access`). Returns false when it was unknown. */
  removeResource(resourceId: string): boolean {
    const had = this.#resources.delete(resourceId);
    this.#recalculateFilters();
    return had;
  }

  /**
   * Keeps only the resources listed (`init.authorizations` for this client).
   *
   * @returns the ids removed (upstream logs each at INFO "Revoking resource authorization")
   */
  retainResources(resourceIds: Iterable<string>): string[] {
    const keep = new Set(resourceIds);
    const removed: string[] = [];
    for (const id of [...this.#resources.keys()]) {
      if (!keep.has(id)) {
        this.#resources.delete(id);
        removed.push(id);
        log.info("Revoking resource authorization", { cid: this.id, rid: id });
      }
    }
    this.#recalculateFilters();
    return removed;
  }

  /**
   * Removes every resource whose expiry is at or before `utcNowMs` (call every second); each is
   * logged at INFO "Access to resource expired".
   */
  expire(utcNowMs: number): ExpireResult {
    const removed: string[] = [];
    for (const [id, r] of [...this.#resources]) {
      if (!resourceAllowedAt(r, utcNowMs)) {
        this.#resources.delete(id);
        removed.push(id);
        log.info("Access to resource expired", { cid: this.id, rid: id });
      }
    }
    if (removed.length > 0) this.#recalculateFilters();
    return { removed, empty: this.#resources.size === 0 };
  }

  /** True when the client has no resources left. */
  isEmpty(): boolean {
    return this.#resources.size === 0;
  }

  /** True when the client may access `resourceId` (e.g. before answering `AssignedIps`). */
  hasResource(resourceId: string): boolean {
    return this.#resources.has(resourceId);
  }

  /** Ids of the client's resources. */
  resourceIds(): string[] {
    return [...this.#resources.keys()];
  }

  /** Read-only view of a resource's state (tests, debugging). */
  resource(resourceId: string): Readonly<ResourceState> | undefined {
    return this.#resources.get(resourceId);
  }

  /** True while an Internet resource is authorized. */
  get internetResourceEnabled(): boolean {
    return this.#internetEnabled;
  }

  /**
   * Sets up the DNS-resource NAT for `domain` of DNS resource `resourceId` (after resolving it).
   * Proxy IPv4s are paired round-robin with the resolved IPv4s (or IPv6s when there is none), proxy
   * IPv6s with the resolved IPv6s (or IPv4s); both lists are sorted first. A proxy IP that has open
   * NAT sessions keeps its current translation. The domain's resolved set is recorded and the
   * filters recomputed. Proxy IPs outside the DNS proxy ranges and unparsable addresses are ignored.
   *
   * @param _now monotonic time (reserved; NAT sessions are swept by {@link handleTimeout})
   */
  setupDnsNat(
    resourceId: string,
    domain: string,
    proxyIps: readonly string[],
    resolvedIps: readonly string[],
    _now: number,
  ): SetupDnsNatResult {
    const resource = this.#resources.get(resourceId);
    if (resource === undefined) return SetupDnsNatResult.UnknownResource;
    if (resource.kind !== "dns") return SetupDnsNatResult.NotDnsResource;
    const name = normalizeDomain(domain);
    if (resource.pattern === null || !resource.pattern.matches(name)) return SetupDnsNatResult.DomainMismatch;

    const resolved = sortedUniqueIps(resolvedIps);
    const proxies = sortedUniqueIps(proxyIps);
    const resolved4 = resolved.filter((ip) => ip.family === 4);
    const resolved6 = resolved.filter((ip) => ip.family === 6);
    const mapped4 = resolved4.length > 0 ? resolved4 : resolved6;
    const mapped6 = resolved6.length > 0 ? resolved6 : resolved4;
    let i4 = 0;
    let i6 = 0;
    for (const proxy of proxies) {
      const pool = proxy.family === 4 ? mapped4 : mapped6;
      if (pool.length === 0) continue;
      const real = proxy.family === 4 ? pool[i4++ % pool.length]! : pool[i6++ % pool.length]!;
      const key = proxyKeyOf(proxy);
      if (key < 0) {
        log.debug("Ignoring proxy IP outside the DNS proxy ranges", { cid: this.id, proxyIp: proxy.text });
        continue;
      }
      if (this.#nat.hasEntryForInside(key)) {
        log.debug("Keeping DNS resource NAT entry with open sessions", {
          cid: this.id,
          domain: name,
          proxyIp: proxy.text,
        });
        continue;
      }
      if (log.debugEnabled) {
        log.debug("DNS resource NAT", { cid: this.id, domain: name, proxyIp: proxy.text, realIp: real.text });
      }
      this.#translations.set(key, {
        resourceId,
        domain: name,
        realFamily: real.family,
        real4: real.family === 4 ? ipv4Uint32(real.bytes, 0) | 0 : 0,
        realBytes: real.bytes,
        realKey: this.#internReal(real),
      });
    }
    resource.domains.set(name, resolved);
    this.#recalculateFilters();
    return SetupDnsNatResult.Ok;
  }

  /** Sweeps the NAT table (TTL expiry). Call every second. */
  handleTimeout(now: number): void {
    this.#nat.handleTimeout(now);
  }

  /** Number of live NAT sessions (metrics, tests). */
  get natSessionCount(): number {
    return this.#nat.size;
  }

  // -------------------------------------------------------------------------------------------
  // Packet paths (hot path: no allocation)

  /**
   * Client → resource (a decrypted packet from the tunnel), spec §4.2. On `Forward` the packet at
   * `buf[off..off+out.len)` was rewritten in place (DNS NAT) and goes to TUN. Rejections write an
   * ICMP error for the client into the reply region (`out.replyLen > 0`). Hot path.
   */
  translateOutbound(buf: Uint8Array, off: number, len: number, now: number, out: PolicyOutput): PolicyResult {
    out.reset();
    if (isP2pControl(buf, off, len)) {
      out.p2pEvent = p2pControlEvent(buf, off);
      return PolicyResult.P2pControl;
    }
    const info = out.info;
    const pr = parseIpPacket(buf, off, len, info);
    if (pr !== ParseResult.Ok) {
      out.parseResult = pr;
      return PolicyResult.Malformed;
    }
    out.len = info.totalLen;
    const v4 = info.version === 4;

    if (v4 ? info.src4 !== this.#clientV4 : !ipv6AddrEqual(buf, info.srcOff, this.#clientV6, 0)) {
      this.#reply(buf, out, UnreachableReason.Prohibited);
      return PolicyResult.NotClientSource;
    }
    if (v4 ? info.dst4 === this.#gatewayV4 : ipv6AddrEqual(buf, info.dstOff, this.#gatewayV6, 0)) {
      return PolicyResult.Forward;
    }
    const verdict = this.#checkResource(buf, info.version, info.dst4, info.dstOff, info.l4Kind, info.dstPort);
    if (verdict !== FilterVerdict.Allowed) {
      out.filterVerdict = verdict;
      this.#reply(buf, out, UnreachableReason.Prohibited);
      return PolicyResult.Filtered;
    }
    const isDns = v4 ? isDnsProxy4(info.dst4) : isDnsProxy6(buf, info.dstOff);
    if (!isDns) return PolicyResult.Forward;

    const key = v4 ? proxyKey4(info.dst4) : proxyKey6(buf, info.dstOff);
    const t = this.#translations.get(key);
    if (t === undefined) {
      this.#reply(buf, out, UnreachableReason.Unreachable);
      return PolicyResult.UnknownProxyIp;
    }
    if (t.realFamily !== info.version) {
      this.#reply(buf, out, UnreachableReason.Unreachable);
      return PolicyResult.DestinationUnreachable;
    }
    const srcId = info.srcL4Id();
    if (srcId < 0) return PolicyResult.UnsupportedProtocol;
    const rst = info.l4Kind === L4Kind.Tcp && (info.tcpFlags & TCP_FLAG_RST) !== 0;
    const outsideId = this.#nat.translateOutgoing(info.l4Kind as NatProto, srcId, key, t.realKey, rst, now);
    if (outsideId < 0) return PolicyResult.NatExhausted;
    if (v4) setIpv4Dst(buf, info, t.real4);
    else setIpv6Dst(buf, info, t.realBytes, 0);
    setSrcL4Id(buf, info, outsideId);
    return PolicyResult.Forward;
  }

  /**
   * Resource → client (a packet read from TUN for this client), spec §4.3. `Forward`: send
   * `buf[off..off+out.len)` (reverse-NATed in place) to the client; `ForwardRebuilt`: send the
   * rebuilt ICMP error at `out.replyBuf[out.replyOff..+out.replyLen)` instead. `_now` is unused:
   * incoming packets do not refresh NAT sessions (see `nat_table.ts`). Hot path.
   */
  translateInbound(buf: Uint8Array, off: number, len: number, _now: number, out: PolicyOutput): PolicyResult {
    out.reset();
    const info = out.info;
    const pr = parseIpPacket(buf, off, len, info);
    if (pr !== ParseResult.Ok) {
      out.parseResult = pr;
      return PolicyResult.Malformed;
    }
    out.len = info.totalLen;
    const v4 = info.version === 4;
    if (v4 ? info.src4 === this.#gatewayV4 : ipv6AddrEqual(buf, info.srcOff, this.#gatewayV6, 0)) {
      return PolicyResult.Forward;
    }

    // Reverse NAT.
    if (info.l4Kind === L4Kind.Icmp && !info.isIcmpEcho()) {
      const translatable = v4
        ? icmpv4IsNatTranslatableError(info.icmpType)
        : icmpv6IsNatTranslatableError(info.icmpType);
      if (!translatable) return PolicyResult.UnsupportedProtocol;
      const code = this.#reverseNatIcmpError(buf, info, out);
      if (code !== PolicyResult.Forward) return code;
    } else {
      const dstId = info.dstL4Id();
      if (dstId < 0) return PolicyResult.UnsupportedProtocol;
      const realKey = v4
        ? this.#realIps.exactMatch4(info.src4, 32)
        : this.#realIps.exactMatch6(buf, info.srcOff, 128);
      if (realKey !== undefined) {
        const rst = info.l4Kind === L4Kind.Tcp && (info.tcpFlags & TCP_FLAG_RST) !== 0;
        const nat = out.nat;
        const r = this.#nat.translateIncoming(info.l4Kind as NatProto, dstId, realKey, rst, nat);
        if (r === NatIncoming.Expired) return PolicyResult.ExpiredNatSession;
        if (r === NatIncoming.Ok) {
          // A mapping only exists for same-family translations, so the proxy has this packet's family.
          if (v4) {
            setIpv4Src(buf, info, proxyAddr4(nat.ipKey));
          } else {
            writeProxyAddr6(nat.ipKey, this.#proxy6, 0);
            setIpv6Src(buf, info, this.#proxy6, 0);
          }
          setDstL4Id(buf, info, nat.l4Id);
        }
      }
    }

    if (v4 ? info.dst4 !== this.#clientV4 : !ipv6AddrEqual(buf, info.dstOff, this.#clientV6, 0)) {
      return PolicyResult.NotClientDestination;
    }
    if (info.isIcmpError()) return PolicyResult.Forward;
    const verdict = this.#checkResource(buf, info.version, info.src4, info.srcOff, info.l4Kind, info.srcPort);
    if (verdict !== FilterVerdict.Allowed) {
      out.filterVerdict = verdict;
      return PolicyResult.Filtered;
    }
    return PolicyResult.Forward;
  }

  // -------------------------------------------------------------------------------------------
  // Helpers

  /**
   * An inbound ICMP error: when its quoted packet belongs to a NAT session, rebuild it for the
   * client (`ForwardRebuilt`); expired session → drop; no session → `Forward` (pass unchanged).
   */
  #reverseNatIcmpError(buf: Uint8Array, info: IpPacketInfo, out: PolicyOutput): PolicyResult {
    const quote = out.quote;
    const qr = parseIcmpQuote(buf, info, quote);
    if (qr !== ParseResult.Ok) {
      out.parseResult = qr;
      return PolicyResult.Malformed;
    }
    const srcId = quote.srcL4Id();
    if (srcId < 0) return PolicyResult.UnsupportedProtocol;
    const realKey = quote.version === 4
      ? this.#realIps.exactMatch4(quote.dst4, 32)
      : this.#realIps.exactMatch6(buf, quote.dstOff, 128);
    if (realKey === undefined) return PolicyResult.Forward;
    const nat = out.nat;
    const r = this.#nat.lookupQuoted(quote.l4Kind as NatProto, srcId, realKey, nat);
    if (r === NatIncoming.Expired) return PolicyResult.ExpiredNatSession;
    if (r === NatIncoming.NoSession) return PolicyResult.Forward;
    const proxyIsV6 = isProxyKey6(nat.ipKey);
    if (proxyIsV6) writeProxyAddr6(nat.ipKey, this.#proxy6, 0);
    const n = rebuildNatIcmpError(
      buf,
      info,
      quote,
      proxyIsV6,
      proxyIsV6 ? 0 : proxyAddr4(nat.ipKey),
      this.#clientV4,
      this.#proxy6,
      this.#clientV6,
      nat.l4Id,
      out,
    );
    return n > 0 ? PolicyResult.ForwardRebuilt : PolicyResult.IcmpErrorUntranslatable;
  }

  /**
   * The resource check of §4.2 step 4 / §4.3 step 6 for the address (`addr4` or `buf[addrOff..]`)
   * and protocol/port. Returns a FilterVerdict (`NoResource` when nothing covers the address).
   */
  #checkResource(
    buf: Uint8Array,
    version: number,
    addr4: number,
    addrOff: number,
    kind: number,
    port: number,
  ): number {
    const v4 = version === 4;
    const isDns = v4 ? isDnsProxy4(addr4) : isDnsProxy6(buf, addrOff);
    // A gateway with the Internet resource forwards everything except DNS-resource traffic.
    if (this.#internetEnabled && !isDns) return FilterVerdict.Allowed;
    const engine = v4 ? this.#filters.longestMatch4(addr4) : this.#filters.longestMatch6(buf, addrOff);
    if (engine === undefined) return FilterVerdict.NoResource;
    return engine.check(kind, port);
  }

  #reply(buf: Uint8Array, out: PolicyOutput, reason: UnreachableReason): void {
    out.replyLen = buildIcmpUnreachableReply(out.replyBuf, out.replyOff, buf, out.info, reason);
  }

  #internReal(ip: ResolvedIp): number {
    const existing = ip.family === 4
      ? this.#realIps.exactMatch4(ipv4Uint32(ip.bytes, 0), 32)
      : this.#realIps.exactMatch6(ip.bytes, 0, 128);
    if (existing !== undefined) return existing;
    const key = this.#nextRealKey++;
    if (ip.family === 4) this.#realIps.insert4(ipv4Uint32(ip.bytes, 0), 32, key);
    else this.#realIps.insert6(ip.bytes, 0, 128, key);
    return key;
  }

  /**
   * Rebuilds the filter table: for each CIDR network, the union of the filters of every resource
   * covering it (supersets included; permit-all if any of those lists is empty); then, for each
   * proxy IP with a translation, the filters of its DNS resource.
   */
  #recalculateFilters(): void {
    const table = new IpNetworkTable<FilterEngine>();
    const all = [...this.#resources.values()];
    const nets = all.map(resourceNetworks);
    for (let i = 0; i < all.length; i++) {
      const r = all[i]!;
      if (r.kind !== "cidr") continue;
      const net = r.network;
      const lists: (readonly Filter[])[] = [];
      for (let j = 0; j < all.length; j++) {
        if (nets[j]!.some((n: IpNetwork) => networkContainsNetwork(n, net))) {
          lists.push(resourceFilters(all[j]!));
        }
      }
      table.insert(net, FilterEngine.fromFilterLists(lists));
    }
    for (const [key, t] of this.#translations) {
      const r = this.#resources.get(t.resourceId);
      if (r === undefined) continue;
      const engine = FilterEngine.fromFilterLists([resourceFilters(r)]);
      if (isProxyKey6(key)) {
        const addr = new Uint8Array(16);
        writeProxyAddr6(key, addr, 0);
        table.insert6(addr, 0, 128, engine);
      } else {
        table.insert4(proxyAddr4(key), 32, engine);
      }
    }
    this.#filters = table;
    this.#internetEnabled = all.some((r) => r.kind === "internet");
  }
}

/** Proxy key of a parsed proxy address, or -1 when it is outside the DNS proxy ranges. */
function proxyKeyOf(ip: ResolvedIp): number {
  if (ip.family === 4) {
    const a = ipv4Uint32(ip.bytes, 0);
    return isDnsProxy4(a) ? proxyKey4(a) : -1;
  }
  return isDnsProxy6(ip.bytes, 0) ? proxyKey6(ip.bytes, 0) : -1;
}

/** Parses, de-duplicates and sorts addresses (IPv4 first, then by bytes), like a `BTreeSet<IpAddr>`. */
function sortedUniqueIps(texts: readonly string[]): ResolvedIp[] {
  const byText = new Map<string, ResolvedIp>();
  for (const t of texts) {
    const bytes = t.includes(":") ? parseIpv6(t) : parseIpv4(t);
    if (bytes === null) continue;
    const text = formatIp(bytes);
    if (!byText.has(text)) byText.set(text, { family: bytes.length === 4 ? 4 : 6, bytes, text });
  }
  return [...byText.values()].sort(compareIps);
}

function compareIps(a: ResolvedIp, b: ResolvedIp): number {
  if (a.family !== b.family) return a.family - b.family;
  for (let i = 0; i < a.bytes.length; i++) {
    const d = a.bytes[i]! - b.bytes[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

function normalizeDomain(d: string): string {
  const s = d.length > 1 && d.endsWith(".") ? d.slice(0, -1) : d;
  return s.toLowerCase();
}

/** RFC 3339 text of a wall-clock time for logs (the number itself when out of `Date` range). */
function isoOrNull(ms: number | null): string | null {
  if (ms === null) return null;
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}
