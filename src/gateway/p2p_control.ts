/**
 * Firezone's p2p control protocol inside the WireGuard tunnel (spec §4.7): the JSON bodies of the
 * DNS-resource NAT events and their encoding into/decoding from p2p control packets (an IPv6
 * packet `::` → `::`, next header 0xFF, hop limit 0, an 8-byte header whose first byte is the event
 * type, then the body; see `src/wire/ip_packet.ts`).
 *
 * Events: 0 `AssignedIps` (client → gateway), 1 `DomainStatus` (gateway → client), 2 `goodbye`
 * (empty body; from later upstream versions, section 9). Control path: allocates.
 *
 * @module
 */

import { formatIp, parseIp } from "../wire/ip_addr.ts";
import {
  buildP2pControl,
  isP2pControl,
  p2pControlBodyLen,
  p2pControlBodyOffset,
  p2pControlEvent,
} from "../wire/ip_packet.ts";
import { parseUuid } from "../portal/uuid.ts";

/** Event type of `AssignedIps`. */
export const ASSIGNED_IPS_EVENT = 0;
/** Event type of `DomainStatus`. */
export const DOMAIN_STATUS_EVENT = 1;
/** Event type of `goodbye` (empty body). */
export const GOODBYE_EVENT = 2;

/** Longest domain name in presentation form (253 characters, no trailing dot). */
export const MAX_DOMAIN_NAME_LEN = 253;

/** Result of setting up the NAT for a domain. Unknown values on the wire decode as `Inactive`. */
export type NatStatus = "Active" | "Inactive";

/** `AssignedIps` (event 0): the proxy IPs a client assigned to `domain` of DNS resource `resource`. */
export interface AssignedIps {
  readonly resource: string;
  /** Without trailing dot. */
  readonly domain: string;
  /** Canonical textual addresses (4 IPv4 then 4 IPv6 from current clients). */
  readonly proxyIps: readonly string[];
}

/** `DomainStatus` (event 1): the gateway's answer to `AssignedIps`. */
export interface DomainStatus {
  readonly resource: string;
  readonly domain: string;
  readonly status: NatStatus;
}

/** A decoded p2p control packet. */
export type P2pControlMessage =
  | ({ readonly type: "AssignedIps" } & AssignedIps)
  | ({ readonly type: "DomainStatus" } & DomainStatus)
  | { readonly type: "Goodbye" }
  | { readonly type: "Unknown"; readonly event: number };

/** A p2p control packet or body that does not decode (the gateway logs it at DEBUG and ignores it). */
export class P2pControlError extends SyntaxError {
  override name = "P2pControlError";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The JSON body of `AssignedIps`: keys `resource`, `domain`, `proxy_ips` in this order. */
export function encodeAssignedIps(msg: AssignedIps): Uint8Array {
  const proxyIps = msg.proxyIps.map((ip) => canonicalIpOrThrow(ip, "proxy_ips"));
  return encoder.encode(
    JSON.stringify({ resource: msg.resource, domain: stripTrailingDot(msg.domain), proxy_ips: proxyIps }),
  );
}

/** The JSON body of `DomainStatus`: keys `resource`, `domain`, `status` in this order. */
export function encodeDomainStatus(msg: DomainStatus): Uint8Array {
  return encoder.encode(
    JSON.stringify({ resource: msg.resource, domain: stripTrailingDot(msg.domain), status: msg.status }),
  );
}

/**
 * Decodes an `AssignedIps` body. Unknown fields are ignored.
 *
 * @throws P2pControlError when the JSON or a field is invalid
 */
export function decodeAssignedIps(body: Uint8Array): AssignedIps {
  const o = parseObject(body);
  const resource = uuidField(o, "resource");
  const domain = domainField(o, "domain");
  const list = o.proxy_ips;
  if (!Array.isArray(list)) throw new P2pControlError("Invalid `proxy_ips`: expected an array");
  const proxyIps = list.map((v, i) => {
    if (typeof v !== "string") throw new P2pControlError(`Invalid \`proxy_ips[${i}]\`: expected a string`);
    return canonicalIpOrThrow(v, `proxy_ips[${i}]`);
  });
  return { resource, domain, proxyIps };
}

/**
 * Decodes a `DomainStatus` body. A status other than `"Active"` decodes as `Inactive`.
 *
 * @throws P2pControlError when the JSON or a field is invalid
 */
export function decodeDomainStatus(body: Uint8Array): DomainStatus {
  const o = parseObject(body);
  const resource = uuidField(o, "resource");
  const domain = domainField(o, "domain");
  if (typeof o.status !== "string") throw new P2pControlError("Invalid `status`: expected a string");
  return { resource, domain, status: o.status === "Active" ? "Active" : "Inactive" };
}

/**
 * Writes a p2p control packet for `AssignedIps` at `buf[off..]`.
 *
 * @returns the packet length, or 0 when it does not fit (in `buf` or in 1280 bytes)
 */
export function buildAssignedIpsPacket(buf: Uint8Array, off: number, msg: AssignedIps): number {
  return buildP2pControl(buf, off, ASSIGNED_IPS_EVENT, encodeAssignedIps(msg));
}

/** Writes a p2p control packet for `DomainStatus`; returns its length or 0. */
export function buildDomainStatusPacket(buf: Uint8Array, off: number, msg: DomainStatus): number {
  return buildP2pControl(buf, off, DOMAIN_STATUS_EVENT, encodeDomainStatus(msg));
}

/** Writes a `goodbye` p2p control packet (empty body); returns its length (48) or 0. */
export function buildGoodbyePacket(buf: Uint8Array, off: number): number {
  return buildP2pControl(buf, off, GOODBYE_EVENT, new Uint8Array(0));
}

/**
 * Decodes the p2p control packet at `buf[off..off+len)`. Unknown event types decode as
 * `{ type: "Unknown" }` (the gateway ignores them at DEBUG).
 *
 * @throws P2pControlError when it is not a p2p control packet or its body does not decode
 */
export function decodeP2pControl(buf: Uint8Array, off: number, len: number): P2pControlMessage {
  if (!isP2pControl(buf, off, len)) throw new P2pControlError("Not a p2p control packet");
  const event = p2pControlEvent(buf, off);
  const bodyOff = p2pControlBodyOffset(off);
  const body = buf.subarray(bodyOff, bodyOff + p2pControlBodyLen(buf, off));
  switch (event) {
    case ASSIGNED_IPS_EVENT:
      return { type: "AssignedIps", ...decodeAssignedIps(body) };
    case DOMAIN_STATUS_EVENT:
      return { type: "DomainStatus", ...decodeDomainStatus(body) };
    case GOODBYE_EVENT:
      return { type: "Goodbye" };
    default:
      return { type: "Unknown", event };
  }
}

/**
 * Validates a domain name the way the `domain` crate does for `DomainName`: non-empty labels of at
 * most 63 bytes, at most 255 bytes in wire form. Returns it without a trailing dot, or null.
 */
export function normalizeDomainName(text: string): string | null {
  const d = stripTrailingDot(text);
  if (d.length === 0) return null;
  const bytes = encoder.encode(d);
  if (bytes.length + 2 > 255) return null;
  let labelLen = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x2e) {
      if (labelLen === 0) return null;
      labelLen = 0;
    } else if (++labelLen > 63) {
      return null;
    }
  }
  return labelLen === 0 ? null : d;
}

function parseObject(body: Uint8Array): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(decoder.decode(body));
  } catch (e) {
    throw new P2pControlError(`Invalid JSON body: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new P2pControlError("Invalid body: expected a JSON object");
  }
  return v as Record<string, unknown>;
}

function uuidField(o: Record<string, unknown>, key: string): string {
  const v = o[key];
  const id = typeof v === "string" ? parseUuid(v) : null;
  if (id === null) throw new P2pControlError(`Invalid \`${key}\`: expected a UUID string`);
  return id;
}

function domainField(o: Record<string, unknown>, key: string): string {
  const v = o[key];
  const d = typeof v === "string" ? normalizeDomainName(v) : null;
  if (d === null) throw new P2pControlError(`Invalid \`${key}\`: expected a domain name`);
  return d;
}

function canonicalIpOrThrow(text: string, field: string): string {
  const b = parseIp(text);
  if (b === null) throw new P2pControlError(`Invalid \`${field}\`: "${text}" is not an IP address`);
  return formatIp(b);
}

function stripTrailingDot(d: string): string {
  return d.length > 1 && d.endsWith(".") ? d.slice(0, -1) : d;
}
