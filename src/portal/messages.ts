/**
 * Typed portal messages of the `gateway` topic (spec §2.6, §2.7): validating parsers for the ten
 * ingress events and builders for the egress events.
 *
 * Edge validation, as upstream's serde definitions do it: unknown fields are ignored everywhere; a
 * missing or mistyped required field makes the whole message invalid ({@link MessageError} naming
 * the field, the caller logs a WARN and skips it); ICE candidate lists are parsed element by element
 * and invalid elements are dropped. Addresses come out canonical (`src/wire/ip_addr.ts`), keys as
 * 32-byte arrays, secrets (pre-shared keys, TURN and ICE passwords) inside {@link Secret}, times as
 * `expiresAtUtcMs` (wall clock, milliseconds). Pure.
 *
 * @module
 */

import { type Candidate, parseCandidate } from "../ice/candidate.ts";
import { logger, Secret } from "../log.ts";
import {
  formatIp,
  type IpFamily,
  parseIp,
  parseIpv4,
  parseIpv6,
  parseSocketAddr,
  type SocketAddr,
} from "../wire/ip_addr.ts";
import { parseUuid } from "./uuid.ts";

const log = logger("fz_gateway::portal::messages");

/** A message (or part of one) does not match the schema. The message names the offending field. */
export class MessageError extends SyntaxError {
  override name = "MessageError";
}

// ---------------------------------------------------------------------------------------------
// Ingress types

/** A lowercase hyphenated UUID string. */
export type Uuid = string;

/** TCP/UDP port range filter (inclusive). */
export interface PortRangeFilter {
  readonly protocol: "tcp" | "udp";
  readonly portRangeStart: number;
  readonly portRangeEnd: number;
}

/** ICMP filter. */
export interface IcmpFilter {
  readonly protocol: "icmp";
}

/** One resource filter; an empty filter list permits everything. */
export type Filter = PortRangeFilter | IcmpFilter;

/** An IP network: canonical network address (host bits cleared) and prefix length. */
export interface Cidr {
  readonly family: IpFamily;
  readonly ip: string;
  readonly prefix: number;
}

/** A CIDR (or single-IP) resource. */
export interface CidrResource {
  readonly type: "cidr";
  readonly id: Uuid;
  readonly address: Cidr;
  readonly name: string;
  readonly filters: readonly Filter[];
}

/** A DNS resource; `address` is the name pattern (`*.corp.example`, `?.httpbin`, ...). */
export interface DnsResource {
  readonly type: "dns";
  readonly id: Uuid;
  readonly address: string;
  readonly name: string;
  readonly filters: readonly Filter[];
}

/** The Internet resource. */
export interface InternetResource {
  readonly type: "internet";
  readonly id: Uuid;
}

/** `ResourceDescription` (tagged by `type`). */
export type ResourceDescription = CidrResource | DnsResource | InternetResource;

/**
 * A TURN relay. Consecutive entries with the same id (one per address family) are merged into one
 * dual-stack relay, so at least one of `addrV4`/`addrV6` is set.
 */
export interface TurnRelay {
  readonly type: "turn";
  readonly id: Uuid;
  readonly addrV4: SocketAddr | null;
  readonly addrV6: SocketAddr | null;
  readonly username: string;
  readonly password: Secret<string>;
  readonly expiresAtUtcMs: number;
}

/** A STUN server (accepted, unused by the gateway: the portal only sends `turn`). */
export interface StunRelay {
  readonly type: "stun";
  readonly id: Uuid;
  readonly addr: SocketAddr;
}

/** One relay of `init.relays` / `relays_presence.connected`. */
export type Relay = TurnRelay | StunRelay;

/** ICE username fragment and password. */
export interface IceCredentials {
  readonly username: string;
  readonly password: Secret<string>;
}

/** The TUN addresses the portal assigned to this gateway. */
export interface InterfaceConfig {
  readonly ipv4: string;
  readonly ipv6: string;
}

/** One (client, resource) authorization of `init`. */
export interface Authorization {
  readonly clientId: Uuid;
  readonly resourceId: Uuid;
  readonly expiresAtUtcMs: number;
}

/** `init` (§2.6.1). `config` is required by the schema but ignored by the gateway. */
export interface InitMessage {
  readonly interface: InterfaceConfig;
  readonly config: { readonly ipv4MasqueradeEnabled: boolean; readonly ipv6MasqueradeEnabled: boolean };
  readonly accountSlug: string | null;
  readonly relays: readonly Relay[];
  readonly authorizations: readonly Authorization[];
}

/** The client of an `authorize_flow`. */
export interface FlowClient {
  readonly id: Uuid;
  readonly publicKey: Uint8Array;
  readonly presharedKey: Secret<Uint8Array>;
  readonly ipv4: string;
  readonly ipv6: string;
}

/** `authorize_flow` (§2.6.2); answered with `flow_authorized` carrying the same `ref`. */
export interface AuthorizeFlowMessage {
  readonly ref: string;
  readonly resource: ResourceDescription;
  readonly client: FlowClient;
  readonly gatewayIceCredentials: IceCredentials;
  readonly clientIceCredentials: IceCredentials;
  /** null = never expires. */
  readonly expiresAtUtcMs: number | null;
}

/** A DNS resource's domain with the proxy IPs the client assigned to it. */
export interface ResolveRequest {
  readonly name: string;
  readonly proxyIps: readonly string[];
}

/** `request_connection` (legacy, clients < 1.4, §2.6.3); answered with `connection_ready`. */
export interface RequestConnectionMessage {
  readonly ref: string;
  readonly resource: ResourceDescription;
  readonly expiresAtUtcMs: number | null;
  readonly client: {
    readonly id: Uuid;
    readonly peer: {
      readonly publicKey: Uint8Array;
      readonly presharedKey: Secret<Uint8Array>;
      readonly ipv4: string;
      readonly ipv6: string;
    };
    readonly iceParameters: IceCredentials;
    readonly domain: ResolveRequest | null;
  };
}

/** `allow_access` (legacy, §2.6.4); no reply. */
export interface AllowAccessMessage {
  readonly ref: string;
  readonly clientId: Uuid;
  readonly resource: ResourceDescription;
  readonly expiresAtUtcMs: number | null;
  readonly payload: ResolveRequest | null;
  readonly clientIpv4: string;
  readonly clientIpv6: string;
}

/** `reject_access` (§2.6.5). */
export interface RejectAccessMessage {
  readonly clientId: Uuid;
  readonly resourceId: Uuid;
}

/** `ice_candidates` / `invalidate_ice_candidates` (§2.6.6): only the candidates that parsed. */
export interface IceCandidatesMessage {
  readonly clientId: Uuid;
  readonly candidates: readonly Candidate[];
}

/** `relays_presence` (§2.6.7). */
export interface RelaysPresenceMessage {
  readonly disconnectedIds: readonly Uuid[];
  readonly connected: readonly Relay[];
}

/** `access_authorization_expiry_updated` (§2.6.9). */
export interface ExpiryUpdatedMessage {
  readonly clientId: Uuid;
  readonly resourceId: Uuid;
  readonly expiresAtUtcMs: number;
}

/** The ten application events the portal pushes on the `gateway` topic. */
export type IngressMessage =
  | { readonly event: "init"; readonly payload: InitMessage }
  | { readonly event: "authorize_flow"; readonly payload: AuthorizeFlowMessage }
  | { readonly event: "request_connection"; readonly payload: RequestConnectionMessage }
  | { readonly event: "allow_access"; readonly payload: AllowAccessMessage }
  | { readonly event: "reject_access"; readonly payload: RejectAccessMessage }
  | { readonly event: "ice_candidates"; readonly payload: IceCandidatesMessage }
  | { readonly event: "invalidate_ice_candidates"; readonly payload: IceCandidatesMessage }
  | { readonly event: "relays_presence"; readonly payload: RelaysPresenceMessage }
  | { readonly event: "resource_updated"; readonly payload: ResourceDescription }
  | { readonly event: "access_authorization_expiry_updated"; readonly payload: ExpiryUpdatedMessage };

/** Event names of {@link IngressMessage}. */
export type IngressEvent = IngressMessage["event"];

/** All ingress application event names, in spec order. */
export const INGRESS_EVENTS: readonly IngressEvent[] = [
  "init",
  "authorize_flow",
  "request_connection",
  "allow_access",
  "reject_access",
  "ice_candidates",
  "invalidate_ice_candidates",
  "relays_presence",
  "resource_updated",
  "access_authorization_expiry_updated",
];

// ---------------------------------------------------------------------------------------------
// Ingress parsers

/**
 * Parses the payload of an application event.
 * @throws MessageError for an unknown event or a payload that does not match its schema
 */
export function parseIngressMessage(event: string, payload: unknown): IngressMessage {
  const p = "payload";
  switch (event) {
    case "init":
      return { event, payload: parseInit(payload, p) };
    case "authorize_flow":
      return { event, payload: parseAuthorizeFlow(payload, p) };
    case "request_connection":
      return { event, payload: parseRequestConnection(payload, p) };
    case "allow_access":
      return { event, payload: parseAllowAccess(payload, p) };
    case "reject_access": {
      const o = obj(payload, p);
      return { event, payload: { clientId: uuid(o, "client_id", p), resourceId: uuid(o, "resource_id", p) } };
    }
    case "ice_candidates":
    case "invalidate_ice_candidates":
      return { event, payload: parseIceCandidates(payload, p) };
    case "relays_presence": {
      const o = obj(payload, p);
      return {
        event,
        payload: {
          disconnectedIds: arr(o, "disconnected_ids", p).map((v, i) =>
            uuidValue(v, `${p}.disconnected_ids[${i}]`)
          ),
          connected: parseRelays(arr(o, "connected", p), `${p}.connected`),
        },
      };
    }
    case "resource_updated":
      return { event, payload: parseResource(payload, p) };
    case "access_authorization_expiry_updated": {
      const o = obj(payload, p);
      return {
        event,
        payload: {
          clientId: uuid(o, "client_id", p),
          resourceId: uuid(o, "resource_id", p),
          expiresAtUtcMs: unixSeconds(o, "expires_at", p),
        },
      };
    }
    default:
      throw new MessageError(`Unknown event "${event}"`);
  }
}

/** Parses an `init` payload. */
export function parseInit(payload: unknown, path = "payload"): InitMessage {
  const o = obj(payload, path);
  const iface = obj(o.interface, `${path}.interface`);
  const config = obj(o.config, `${path}.config`);
  return {
    interface: {
      ipv4: ipv4(iface, "ipv4", `${path}.interface`),
      ipv6: ipv6(iface, "ipv6", `${path}.interface`),
    },
    config: {
      ipv4MasqueradeEnabled: bool(config, "ipv4_masquerade_enabled", `${path}.config`),
      ipv6MasqueradeEnabled: bool(config, "ipv6_masquerade_enabled", `${path}.config`),
    },
    accountSlug: o.account_slug === undefined || o.account_slug === null
      ? null
      : str(o, "account_slug", path),
    relays: o.relays === undefined || o.relays === null
      ? []
      : parseRelays(arr(o, "relays", path), `${path}.relays`),
    authorizations: o.authorizations === undefined || o.authorizations === null
      ? []
      : arr(o, "authorizations", path).map((v, i) => {
        const ap = `${path}.authorizations[${i}]`;
        const a = obj(v, ap);
        return {
          clientId: uuid(a, "client_id", ap),
          resourceId: uuid(a, "resource_id", ap),
          expiresAtUtcMs: unixSeconds(a, "expires_at", ap),
        };
      }),
  };
}

/** Parses an `authorize_flow` payload. `expires_at` must be present (null = never). */
export function parseAuthorizeFlow(payload: unknown, path = "payload"): AuthorizeFlowMessage {
  const o = obj(payload, path);
  const cp = `${path}.client`;
  const c = obj(o.client, cp);
  if (!("expires_at" in o)) throw new MessageError(`Missing field \`${path}.expires_at\``);
  return {
    ref: str(o, "ref", path),
    resource: parseResource(o.resource, `${path}.resource`),
    client: {
      id: uuid(c, "id", cp),
      publicKey: key32(c, "public_key", cp),
      presharedKey: new Secret(key32(c, "preshared_key", cp)),
      ipv4: ipv4(c, "ipv4", cp),
      ipv6: ipv6(c, "ipv6", cp),
    },
    gatewayIceCredentials: iceCredentials(o.gateway_ice_credentials, `${path}.gateway_ice_credentials`),
    clientIceCredentials: iceCredentials(o.client_ice_credentials, `${path}.client_ice_credentials`),
    expiresAtUtcMs: optionalUnixSeconds(o, "expires_at", path),
  };
}

/** Parses a legacy `request_connection` payload. */
export function parseRequestConnection(payload: unknown, path = "payload"): RequestConnectionMessage {
  const o = obj(payload, path);
  const cp = `${path}.client`;
  const c = obj(o.client, cp);
  const pp = `${cp}.peer`;
  const peer = obj(c.peer, pp);
  const yp = `${cp}.payload`;
  const y = obj(c.payload, yp);
  return {
    ref: str(o, "ref", path),
    resource: parseResource(o.resource, `${path}.resource`),
    expiresAtUtcMs: optionalUnixSeconds(o, "expires_at", path),
    client: {
      id: uuid(c, "id", cp),
      peer: {
        publicKey: key32(peer, "public_key", pp),
        presharedKey: new Secret(key32(peer, "preshared_key", pp)),
        ipv4: ipv4(peer, "ipv4", pp),
        ipv6: ipv6(peer, "ipv6", pp),
      },
      iceParameters: iceCredentials(y.ice_parameters, `${yp}.ice_parameters`),
      domain: y.domain === undefined || y.domain === null ? null : resolveRequest(y.domain, `${yp}.domain`),
    },
  };
}

/** Parses a legacy `allow_access` payload. */
export function parseAllowAccess(payload: unknown, path = "payload"): AllowAccessMessage {
  const o = obj(payload, path);
  return {
    ref: str(o, "ref", path),
    clientId: uuid(o, "client_id", path),
    resource: parseResource(o.resource, `${path}.resource`),
    expiresAtUtcMs: optionalUnixSeconds(o, "expires_at", path),
    payload: o.payload === undefined || o.payload === null
      ? null
      : resolveRequest(o.payload, `${path}.payload`),
    clientIpv4: ipv4(o, "client_ipv4", path),
    clientIpv6: ipv6(o, "client_ipv6", path),
  };
}

/**
 * Parses `{"client_id", "candidates": [...]}`; each candidate is parsed on its own and the invalid
 * ones are skipped (upstream `VecSkipError`).
 */
export function parseIceCandidates(payload: unknown, path = "payload"): IceCandidatesMessage {
  const o = obj(payload, path);
  const clientId = uuid(o, "client_id", path);
  const list = arr(o, "candidates", path);
  const candidates: Candidate[] = [];
  for (let i = 0; i < list.length; i++) {
    const text = list[i];
    const c = typeof text === "string" ? parseCandidate(text) : null;
    if (c) candidates.push(c);
    else log.debug("Skipping invalid ICE candidate", { client: clientId, index: i, candidate: String(text) });
  }
  return { clientId, candidates };
}

/** Parses a `ResourceDescription`. */
export function parseResource(value: unknown, path = "resource"): ResourceDescription {
  const o = obj(value, path);
  const type = str(o, "type", path);
  switch (type) {
    case "cidr":
      return {
        type,
        id: uuid(o, "id", path),
        address: cidr(o, "address", path),
        name: str(o, "name", path),
        filters: arr(o, "filters", path).map((f, i) => parseFilter(f, `${path}.filters[${i}]`)),
      };
    case "dns":
      return {
        type,
        id: uuid(o, "id", path),
        address: str(o, "address", path),
        name: str(o, "name", path),
        filters: arr(o, "filters", path).map((f, i) => parseFilter(f, `${path}.filters[${i}]`)),
      };
    case "internet":
      return { type, id: uuid(o, "id", path) };
    default:
      throw new MessageError(`Invalid \`${path}.type\`: unknown resource type "${type}"`);
  }
}

/** Parses one filter; missing port bounds default to 0 and 65535. */
export function parseFilter(value: unknown, path = "filter"): Filter {
  const o = obj(value, path);
  const protocol = str(o, "protocol", path);
  switch (protocol) {
    case "tcp":
    case "udp":
      return {
        protocol,
        portRangeStart: o.port_range_start === undefined ? 0 : u16(o, "port_range_start", path),
        portRangeEnd: o.port_range_end === undefined ? 65535 : u16(o, "port_range_end", path),
      };
    case "icmp":
      return { protocol };
    default:
      throw new MessageError(`Invalid \`${path}.protocol\`: unknown protocol "${protocol}"`);
  }
}

/**
 * Parses a relay list and merges consecutive TURN entries with the same id into one dual-stack
 * relay (IPv4 and IPv6 in either order; the later entry's credentials win; a second address of the
 * same family is ignored with a WARN, as upstream does). STUN entries pass through.
 */
export function parseRelays(list: readonly unknown[], path = "relays"): Relay[] {
  const out: Relay[] = [];
  let last: TurnRelay | null = null;
  for (let i = 0; i < list.length; i++) {
    const relay = parseRelay(list[i], `${path}[${i}]`);
    if (relay.type === "stun") {
      out.push(relay);
      continue;
    }
    if (last !== null && last.id === relay.id) {
      const merged = mergeRelay(last, relay);
      out[out.lastIndexOf(last)] = merged;
      last = merged;
      continue;
    }
    out.push(relay);
    last = relay;
  }
  return out;
}

/** Parses one relay entry (`turn` or `stun`). */
export function parseRelay(value: unknown, path = "relay"): Relay {
  const o = obj(value, path);
  const type = str(o, "type", path);
  if (type === "stun") return { type, id: uuid(o, "id", path), addr: sock(o, "addr", path) };
  if (type !== "turn") throw new MessageError(`Invalid \`${path}.type\`: unknown relay type "${type}"`);
  const addr = sock(o, "addr", path);
  return {
    type,
    id: uuid(o, "id", path),
    addrV4: addr.family === 4 ? addr : null,
    addrV6: addr.family === 6 ? addr : null,
    username: str(o, "username", path),
    password: new Secret(str(o, "password", path)),
    expiresAtUtcMs: unixSeconds(o, "expires_at", path),
  };
}

/** Decodes standard padded base64 of exactly 32 bytes (a WireGuard key), or throws MessageError. */
export function decodeKey32(text: string, path = "key"): Uint8Array {
  if (!/^[A-Za-z0-9+/]{43}=$/.test(text)) {
    throw new MessageError(`Invalid \`${path}\`: expected standard base64 of 32 bytes (44 characters)`);
  }
  const bin = atob(text);
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = bin.charCodeAt(i);
  if (encodeBase64(out) !== text) {
    throw new MessageError(`Invalid \`${path}\`: non-canonical base64 (trailing bits set)`);
  }
  return out;
}

/** Standard base64 with padding. */
export function encodeBase64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

// ---------------------------------------------------------------------------------------------
// Egress

/** An application message to the portal (serialized by the channel with topic and ref). */
export type EgressMessage =
  | { readonly event: "flow_authorized"; readonly payload: { readonly ref: string } }
  | {
    readonly event: "connection_ready";
    readonly payload: {
      readonly ref: string;
      readonly gateway_payload: {
        readonly ConnectionAccepted: {
          readonly ice_parameters: { readonly username: string; readonly password: string };
        };
      };
    };
  }
  | {
    readonly event: "broadcast_ice_candidates" | "broadcast_invalidated_ice_candidates";
    readonly payload: { readonly client_ids: readonly string[]; readonly candidates: readonly string[] };
  };

/** `flow_authorized`: the answer to `authorize_flow`, echoing its opaque `ref`. */
export function flowAuthorized(ref: string): EgressMessage {
  return { event: "flow_authorized", payload: { ref } };
}

/** `connection_ready` (legacy): the gateway's ICE credentials wrapped in `ConnectionAccepted`. */
export function connectionReady(
  ref: string,
  ice: { username: string; password: Secret<string> | string },
): EgressMessage {
  const password = typeof ice.password === "string" ? ice.password : ice.password.expose();
  return {
    event: "connection_ready",
    payload: {
      ref,
      gateway_payload: { ConnectionAccepted: { ice_parameters: { username: ice.username, password } } },
    },
  };
}

/** `broadcast_ice_candidates`: new local candidates for the given clients (sorted, see below). */
export function broadcastIceCandidates(
  clientIds: readonly string[],
  candidates: readonly string[],
): EgressMessage {
  return {
    event: "broadcast_ice_candidates",
    payload: { client_ids: [...clientIds], candidates: sortCandidatesForPortal(candidates) },
  };
}

/** `broadcast_invalidated_ice_candidates`: withdrawn local candidates (sorted, see below). */
export function broadcastInvalidatedIceCandidates(
  clientIds: readonly string[],
  candidates: readonly string[],
): EgressMessage {
  return {
    event: "broadcast_invalidated_ice_candidates",
    payload: { client_ids: [...clientIds], candidates: sortCandidatesForPortal(candidates) },
  };
}

/**
 * Orders candidate strings by priority, highest first, keeping only the first candidate of each
 * priority (upstream quirk: its set is keyed by priority alone). Strings without a readable
 * priority sort last and are kept.
 */
export function sortCandidatesForPortal(candidates: readonly string[]): string[] {
  const seen = new Set<number>();
  const keyed: { priority: number; text: string; index: number }[] = [];
  for (let i = 0; i < candidates.length; i++) {
    const text = candidates[i]!;
    const priority = candidatePriorityOf(text);
    if (priority !== null) {
      if (seen.has(priority)) continue;
      seen.add(priority);
    }
    keyed.push({ priority: priority ?? -1, text, index: i });
  }
  keyed.sort((a, b) => b.priority - a.priority || a.index - b.index);
  return keyed.map((k) => k.text);
}

/** The priority field (4th token after `candidate:`) of a candidate string, or null. */
function candidatePriorityOf(text: string): number | null {
  const body = text.startsWith("candidate:") ? text.slice(10) : text;
  const token = body.split(" ")[3];
  return token !== undefined && /^[0-9]{1,10}$/.test(token) ? Number(token) : null;
}

// ---------------------------------------------------------------------------------------------
// Field helpers (each names the path of the offending field)

type Obj = Record<string, unknown>;

function obj(value: unknown, path: string): Obj {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new MessageError(`Invalid \`${path}\`: expected an object, got ${describe(value)}`);
  }
  return value as Obj;
}

function field(o: Obj, key: string, path: string): unknown {
  if (!(key in o) || o[key] === undefined) throw new MessageError(`Missing field \`${path}.${key}\``);
  return o[key];
}

function str(o: Obj, key: string, path: string): string {
  const v = field(o, key, path);
  if (typeof v !== "string") {
    throw new MessageError(`Invalid \`${path}.${key}\`: expected a string, got ${describe(v)}`);
  }
  return v;
}

function bool(o: Obj, key: string, path: string): boolean {
  const v = field(o, key, path);
  if (typeof v !== "boolean") {
    throw new MessageError(`Invalid \`${path}.${key}\`: expected a boolean, got ${describe(v)}`);
  }
  return v;
}

function arr(o: Obj, key: string, path: string): unknown[] {
  const v = field(o, key, path);
  if (!Array.isArray(v)) {
    throw new MessageError(`Invalid \`${path}.${key}\`: expected an array, got ${describe(v)}`);
  }
  return v;
}

function u16(o: Obj, key: string, path: string): number {
  const v = field(o, key, path);
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 65535) {
    throw new MessageError(
      `Invalid \`${path}.${key}\`: expected an integer from 0 to 65535, got ${describe(v)}`,
    );
  }
  return v;
}

function uuid(o: Obj, key: string, path: string): Uuid {
  return uuidValue(field(o, key, path), `${path}.${key}`);
}

function uuidValue(v: unknown, path: string): Uuid {
  const parsed = typeof v === "string" ? parseUuid(v) : null;
  if (parsed === null) throw new MessageError(`Invalid \`${path}\`: expected a UUID, got ${describe(v)}`);
  return parsed;
}

function unixSeconds(o: Obj, key: string, path: string): number {
  const v = field(o, key, path);
  if (typeof v !== "number" || !Number.isSafeInteger(v)) {
    throw new MessageError(
      `Invalid \`${path}.${key}\`: expected integer seconds since the epoch, got ${describe(v)}`,
    );
  }
  return v * 1000;
}

function optionalUnixSeconds(o: Obj, key: string, path: string): number | null {
  return o[key] === undefined || o[key] === null ? null : unixSeconds(o, key, path);
}

function ipv4(o: Obj, key: string, path: string): string {
  const v = field(o, key, path);
  const bytes = typeof v === "string" ? parseIpv4(v) : null;
  if (!bytes) {
    throw new MessageError(`Invalid \`${path}.${key}\`: expected an IPv4 address, got ${describe(v)}`);
  }
  return formatIp(bytes);
}

function ipv6(o: Obj, key: string, path: string): string {
  const v = field(o, key, path);
  const bytes = typeof v === "string" ? parseIpv6(v) : null;
  if (!bytes) {
    throw new MessageError(`Invalid \`${path}.${key}\`: expected an IPv6 address, got ${describe(v)}`);
  }
  return formatIp(bytes);
}

function anyIp(v: unknown, path: string): string {
  const bytes = typeof v === "string" ? parseIp(v) : null;
  if (!bytes) throw new MessageError(`Invalid \`${path}\`: expected an IP address, got ${describe(v)}`);
  return formatIp(bytes);
}

function sock(o: Obj, key: string, path: string): SocketAddr {
  const v = field(o, key, path);
  const addr = typeof v === "string" ? parseSocketAddr(v) : null;
  if (!addr) {
    throw new MessageError(
      `Invalid \`${path}.${key}\`: expected "ip:port" or "[ipv6]:port", got ${describe(v)}`,
    );
  }
  return addr;
}

function key32(o: Obj, key: string, path: string): Uint8Array {
  const v = field(o, key, path);
  if (typeof v !== "string") {
    throw new MessageError(`Invalid \`${path}.${key}\`: expected a string, got ${describe(v)}`);
  }
  return decodeKey32(v, `${path}.${key}`);
}

function cidr(o: Obj, key: string, path: string): Cidr {
  const v = field(o, key, path);
  const text = typeof v === "string" ? v : "";
  const slash = text.indexOf("/");
  const bytes = slash > 0 ? parseIp(text.slice(0, slash)) : null;
  const prefixText = text.slice(slash + 1);
  const max = bytes?.length === 16 ? 128 : 32;
  if (!bytes || !/^[0-9]{1,3}$/.test(prefixText) || Number(prefixText) > max) {
    throw new MessageError(`Invalid \`${path}.${key}\`: expected "<ip>/<prefix>", got ${describe(v)}`);
  }
  const prefix = Number(prefixText);
  for (let bit = prefix; bit < bytes.length * 8; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return { family: bytes.length === 16 ? 6 : 4, ip: formatIp(bytes), prefix };
}

function iceCredentials(value: unknown, path: string): IceCredentials {
  const o = obj(value, path);
  return { username: str(o, "username", path), password: new Secret(str(o, "password", path)) };
}

function resolveRequest(value: unknown, path: string): ResolveRequest {
  const o = obj(value, path);
  return {
    name: str(o, "name", path),
    proxyIps: arr(o, "proxy_ips", path).map((v, i) => anyIp(v, `${path}.proxy_ips[${i}]`)),
  };
}

function mergeRelay(current: TurnRelay, next: TurnRelay): TurnRelay {
  let addrV4 = current.addrV4;
  let addrV6 = current.addrV6;
  if (next.addrV4 !== null) {
    if (addrV4 === null) addrV4 = next.addrV4;
    else log.warn("Duplicate IPv4 address for relay", { id: current.id });
  }
  if (next.addrV6 !== null) {
    if (addrV6 === null) addrV6 = next.addrV6;
    else log.warn("Duplicate IPv6 address for relay", { id: current.id });
  }
  return { ...next, addrV4, addrV6 };
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `"${v.length > 64 ? `${v.slice(0, 64)}...` : v}"`;
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}
