/**
 * The gateway's view of one authorized resource (spec §2.6, §4.1): a CIDR network, a DNS pattern
 * with the addresses resolved for each of its domains, or the Internet resource; each with its
 * filters and an optional wall-clock expiry. Control path.
 *
 * @module
 */

import type { Filter, ResourceDescription } from "../portal/messages.ts";
import { parseIp } from "../wire/ip_addr.ts";
import { DomainPattern } from "./dns_pattern.ts";
import { type IpNetwork, makeNetwork } from "./ip_network_table.ts";

/** A resolved address of a DNS resource's domain. */
export interface ResolvedIp {
  readonly family: 4 | 6;
  /** 4 or 16 bytes. */
  readonly bytes: Uint8Array;
  /** Canonical text. */
  readonly text: string;
}

/** A CIDR resource on the gateway. */
export interface CidrResourceState {
  readonly kind: "cidr";
  readonly id: string;
  readonly name: string;
  readonly network: IpNetwork;
  filters: readonly Filter[];
  /** Wall clock (ms since epoch); null = never. */
  expiresAtUtcMs: number | null;
}

/** A DNS resource on the gateway. */
export interface DnsResourceState {
  readonly kind: "dns";
  readonly id: string;
  readonly name: string;
  /** The portal's address pattern, e.g. `*.corp.example`. */
  readonly address: string;
  /** The compiled pattern, or null if it is not a valid glob (then no domain matches). */
  readonly pattern: DomainPattern | null;
  /** Lowercase domain (no trailing dot) → the addresses it resolved to at the last `setupDnsNat`. */
  readonly domains: Map<string, readonly ResolvedIp[]>;
  filters: readonly Filter[];
  expiresAtUtcMs: number | null;
}

/** The Internet resource on the gateway (its filters are always "permit all"). */
export interface InternetResourceState {
  readonly kind: "internet";
  readonly id: string;
  expiresAtUtcMs: number | null;
}

/** One resource a client may access through this gateway. */
export type ResourceState = CidrResourceState | DnsResourceState | InternetResourceState;

const NO_FILTERS: readonly Filter[] = Object.freeze([]);
const DEFAULT_ROUTE_V4 = makeNetwork(new Uint8Array(4), 0);
const DEFAULT_ROUTE_V6 = makeNetwork(new Uint8Array(16), 0);

/**
 * Builds the gateway state of a resource from its portal description.
 *
 * @throws TypeError when a CIDR address does not parse
 */
export function resourceFromDescription(
  desc: ResourceDescription,
  expiresAtUtcMs: number | null,
): ResourceState {
  switch (desc.type) {
    case "cidr": {
      const bytes = parseIp(desc.address.ip);
      if (bytes === null) throw new TypeError(`Invalid CIDR resource address "${desc.address.ip}"`);
      return {
        kind: "cidr",
        id: desc.id,
        name: desc.name,
        network: makeNetwork(bytes, desc.address.prefix),
        filters: desc.filters,
        expiresAtUtcMs,
      };
    }
    case "dns":
      return {
        kind: "dns",
        id: desc.id,
        name: desc.name,
        address: desc.address,
        pattern: DomainPattern.tryParse(desc.address),
        domains: new Map(),
        filters: desc.filters,
        expiresAtUtcMs,
      };
    case "internet":
      return { kind: "internet", id: desc.id, expiresAtUtcMs };
  }
}

/** The filters of a resource (the Internet resource has none, i.e. permit all). */
export function resourceFilters(r: ResourceState): readonly Filter[] {
  return r.kind === "internet" ? NO_FILTERS : r.filters;
}

/**
 * The networks a resource covers for the CIDR filter computation: the CIDR network; every
 * resolved address of a DNS resource as a host network; both default routes for the Internet
 * resource.
 */
export function resourceNetworks(r: ResourceState): IpNetwork[] {
  switch (r.kind) {
    case "cidr":
      return [r.network];
    case "dns": {
      const out: IpNetwork[] = [];
      for (const ips of r.domains.values()) {
        for (const ip of ips) out.push(makeNetwork(ip.bytes, ip.family === 4 ? 32 : 128));
      }
      return out;
    }
    case "internet":
      return [DEFAULT_ROUTE_V4, DEFAULT_ROUTE_V6];
  }
}

/** True while access is granted: no expiry, or an expiry strictly after `utcNowMs`. */
export function resourceAllowedAt(r: ResourceState, utcNowMs: number): boolean {
  return r.expiresAtUtcMs === null || r.expiresAtUtcMs > utcNowMs;
}

/**
 * Applies a `resource_updated`/repeated authorization to an existing resource: only the filters
 * change. A different resource type is refused.
 *
 * @returns false when the types differ (upstream logs "Resources cannot change type" at ERROR)
 */
export function updateResourceFilters(r: ResourceState, desc: ResourceDescription): boolean {
  if (r.kind === "cidr" && desc.type === "cidr") r.filters = desc.filters;
  else if (r.kind === "dns" && desc.type === "dns") r.filters = desc.filters;
  else if (!(r.kind === "internet" && desc.type === "internet")) return false;
  return true;
}
