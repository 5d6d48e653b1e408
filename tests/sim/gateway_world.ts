/**
 * A deterministic end-to-end world around the gateway core ({@link GatewayState}): the gateway as a
 * {@link SimNet} host with a simulated TUN device, simulated Firezone clients (our own `P2pNode` in the
 * client role plus the client's share of the p2p control protocol), TURN relays, a stub portal that
 * produces the typed portal messages through the real parsers (`parseIngressMessage`) and relays ICE
 * candidates both ways, resources behind the TUN device that answer packets, and a fake DNS resolver
 * answering the core's `resolve` events.
 *
 * Everything is seeded: the same seed gives the same run, datagram for datagram ({@link SimNet.trace}).
 * Wall-clock time (authorization expiry) is {@link FluxCapacitor.wallClock} of the simulated instant.
 *
 * @module
 */

import { pbkdf2 } from "@noble/hashes/pbkdf2.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { createNobleBackend } from "../../src/crypto/mod.ts";
import { type GatewayEvent, GatewayState } from "../../src/gateway/gateway_state.ts";
import { policyResultName } from "../../src/gateway/packet_policy.ts";
import { buildAssignedIpsPacket, decodeP2pControl, type NatStatus } from "../../src/gateway/p2p_control.ts";
import type { IceCredentials } from "../../src/ice/agent.ts";
import { CORE_HEADROOM, CORE_TAILROOM, CoreOut, CoreResult, DropLayer } from "../../src/packet_core.ts";
import type { RelayInfo } from "../../src/p2p/node.ts";
import { PeerAddrView } from "../../src/p2p/peer_addr.ts";
import { P2P_DROP_NAMES } from "../../src/p2p/transmit.ts";
import {
  type AuthorizeFlowMessage,
  broadcastIceCandidates,
  broadcastInvalidatedIceCandidates,
  connectionReady,
  type EgressMessage,
  encodeBase64,
  flowAuthorized,
  type IngressMessage,
  parseIngressMessage,
} from "../../src/portal/messages.ts";
import type { AuthorizeFlowResult, RequestConnectionResult } from "../../src/portal/tunnel_control.ts";
import { randomUuidV4 } from "../../src/portal/uuid.ts";
import { SeededRng } from "../../src/rng.ts";
import {
  formatIp,
  formatSocketAddr,
  type IpFamily,
  parseIp,
  type SocketAddr,
} from "../../src/wire/ip_addr.ts";
import {
  buildIcmpEchoPacket,
  buildIcmpv4DestUnreachable,
  buildIcmpv6DestUnreachable,
  ICMPV4_ECHO_REQUEST,
  ICMPV6_ECHO_REQUEST,
} from "../../src/wire/icmp.ts";
import { IpPacketInfo, isP2pControl, L4Kind, parseIpPacket, ParseResult } from "../../src/wire/ip_packet.ts";
import { buildTcpPacket, TCP_FLAG_ACK, TCP_FLAG_RST, TCP_FLAG_SYN } from "../../src/wire/tcp.ts";
import { buildUdpPacket } from "../../src/wire/udp.ts";
import { DROP_REASON_NAMES } from "../../src/wireguard/result.ts";
import { FluxCapacitor } from "./flux_capacitor.ts";
import { type NatOptions, SimNet, type SimTransmit } from "./sim_net.ts";
import type { SimHost } from "./sim_net.ts";
import { NODE_PORT, SimNodeHost } from "./sim_node.ts";
import { RELAY_PORT, SimRelay } from "./sim_relay.ts";

const nobleBackend = createNobleBackend();
const encoder = new TextEncoder();
const SLOT_LEN = 2048;

/** The gateway's public address. */
export const GATEWAY_PUBLIC_IP = "203.0.113.10";
/** The gateway's tunnel addresses (portal `init.interface`). */
export const GATEWAY_TUN_V4 = "100.66.0.1";
export const GATEWAY_TUN_V6 = "fd00:2021:1111::42:1";
/** TURN credentials minted by the portal are valid for 90 days. */
const RELAY_CREDENTIAL_LIFETIME_S = 90 * 24 * 3600;

// ---------------------------------------------------------------------------------------------
// The gateway host

/** A packet the core wrote to the simulated TUN device. */
export interface TunWrite {
  readonly at: number;
  readonly packet: Uint8Array;
}

/** A drop reported by the core on either packet path. */
export interface CoreDrop {
  readonly at: number;
  /** "client": a datagram from a client (`handleDatagram`); "resource": a TUN read (`handleTunPacket`). */
  readonly path: "client" | "resource";
  readonly layer: DropLayer;
  readonly reason: number;
  /** `policy.Filtered`, `p2p.UnknownConnection`, `wireguard.…`. */
  readonly name: string;
}

/** The gateway core as a simulation host, the way the packet worker drives it. */
export class SimGatewayHost implements SimHost {
  readonly name = "gateway";
  readonly ips: readonly string[];
  readonly core: GatewayState;
  /** Every packet written to TUN, in order. */
  readonly tun: TunWrite[] = [];
  readonly drops: CoreDrop[] = [];
  /** Every event of the core, in order. */
  readonly events: { readonly at: number; readonly event: GatewayEvent }[] = [];
  /** Called for every packet written to TUN (the resources' network). */
  readonly tunListeners: ((packet: Uint8Array, now: number) => void)[] = [];
  /** Called for every event of the core (the main thread: portal, DNS resolution). */
  readonly eventListeners: ((event: GatewayEvent, now: number) => void)[] = [];
  readonly #queue: SimTransmit[] = [];
  readonly #from = new PeerAddrView();
  readonly #local = new PeerAddrView();
  readonly #out = new CoreOut();
  readonly #rx = new Uint8Array(SLOT_LEN);
  readonly #tx = new Uint8Array(SLOT_LEN);

  constructor(options: { ips: readonly string[]; seed: number; clock: FluxCapacitor }) {
    this.ips = options.ips;
    const privateKey = new Uint8Array(32);
    new SeededRng(options.seed * 7919).fill(privateKey);
    this.core = new GatewayState({
      privateKey,
      backend: nobleBackend,
      rng: new SeededRng(options.seed),
      now: options.clock.now,
      wallClock: options.clock.wallClock,
    });
  }

  defaultSource(family: IpFamily): SocketAddr | null {
    const ip = this.ips.find((i) => (i.includes(":") ? 6 : 4) === family);
    return ip === undefined ? null : { family, ip, port: NODE_PORT };
  }

  handleDatagram(src: SocketAddr, dst: SocketAddr, payload: Uint8Array, now: number): void {
    const buf = this.#rx;
    buf.set(payload, 0);
    this.#from.setSocketAddr(src);
    this.#local.setSocketAddr(dst);
    const out = this.#out;
    const r = this.core.handleDatagram(buf, 0, payload.length, this.#from, this.#local, out, now);
    if (r === CoreResult.ToTun) {
      const packet = out.buf.slice(out.off, out.off + out.len);
      this.tun.push({ at: now, packet });
      for (const l of this.tunListeners) l(packet, now);
    } else {
      this.#handleResult(r, "client", now);
    }
    this.afterStep(now);
  }

  /**
   * A packet read from TUN (a resource's packet for a client), placed with the head- and tailroom the
   * packet worker gives. Returns the core's result code.
   */
  fromResource(packet: Uint8Array, now: number): CoreResult {
    const buf = this.#tx;
    buf.set(packet, CORE_HEADROOM);
    if (CORE_HEADROOM + packet.length + CORE_TAILROOM > buf.length) throw new RangeError("packet too large");
    const r = this.core.handleTunPacket(buf, CORE_HEADROOM, packet.length, this.#out, now);
    if (r === CoreResult.ToTun) throw new Error("the gateway core wrote a TUN packet back to TUN");
    this.#handleResult(r, "resource", now);
    this.afterStep(now);
    return r;
  }

  pollTransmit(): SimTransmit | undefined {
    const queued = this.#queue.shift();
    if (queued !== undefined) return queued;
    const t = this.core.pollTransmit();
    if (t === undefined) return undefined;
    return {
      src: t.src === null ? null : t.src.toSocketAddr(),
      dst: t.dst.toSocketAddr(),
      payload: t.payload,
    };
  }

  pollTimeout(): number {
    return this.core.pollTimeout();
  }

  handleTimeout(now: number): void {
    this.core.handleTimeout(now);
    this.afterStep(now);
  }

  /** Drains the core's events to {@link events} and the listeners. */
  afterStep(now: number): void {
    for (let e = this.core.pollEvent(); e !== undefined; e = this.core.pollEvent()) {
      this.events.push({ at: now, event: e });
      for (const l of this.eventListeners) l(e, now);
    }
  }

  /** Drop names seen since index `from` of {@link drops}. */
  dropNames(from = 0): string[] {
    return this.drops.slice(from).map((d) => d.name);
  }

  #handleResult(r: CoreResult, path: CoreDrop["path"], now: number): void {
    const out = this.#out;
    if (r === CoreResult.ToNetwork) {
      this.#queue.push({
        src: out.src === null ? null : out.src.toSocketAddr(),
        dst: out.dst!.toSocketAddr(),
        payload: out.buf.slice(out.off, out.off + out.len),
      });
    } else if (r === CoreResult.Drop) {
      this.drops.push({
        at: now,
        path,
        layer: out.dropLayer,
        reason: out.dropReason,
        name: dropName(out.dropLayer, out.dropReason),
      });
    }
  }
}

function dropName(layer: DropLayer, reason: number): string {
  switch (layer) {
    case DropLayer.Policy:
      return `policy.${policyResultName(reason)}`;
    case DropLayer.WireGuard:
      return `wireguard.${DROP_REASON_NAMES[reason] ?? reason}`;
    default:
      return `p2p.${P2P_DROP_NAMES[reason] ?? reason}`;
  }
}

// ---------------------------------------------------------------------------------------------
// The simulated Firezone client

/** What the portal knows about a client. */
export interface FzClientIdentity {
  readonly id: string;
  readonly ipv4: string;
  readonly ipv6: string;
  /** The portal's per-client PSK base (`client.psk_base`). */
  readonly pskBase: Uint8Array;
}

/** A packet the client's TUN device received from the gateway. */
export interface ClientPacket {
  readonly at: number;
  readonly packet: Uint8Array;
}

/** A DomainStatus the client received. */
export interface ReceivedDomainStatus {
  readonly at: number;
  readonly resource: string;
  readonly domain: string;
  readonly status: NatStatus;
}

/** Interval of the client's AssignedIps retransmissions while no DomainStatus arrived (spec §4.7). */
export const ASSIGNED_IPS_RESEND_MS = 2_000;

interface PendingAssignedIps {
  readonly resource: string;
  readonly domain: string;
  readonly proxyIps: readonly string[];
  nextAt: number;
}

/**
 * A Firezone client: our own p2p node in the client role (ICE controlling, WireGuard initiator), the
 * connection to the gateway under the id `"gateway"`, and the client's part of the p2p control protocol:
 * sends AssignedIps (resent every 2 s until answered), reads DomainStatus and goodbye (closing the
 * connection, as the client does).
 */
export class SimFzClient extends SimNodeHost {
  readonly fz: FzClientIdentity;
  /** IP packets (not p2p control) from the gateway, in order. */
  readonly received: ClientPacket[] = [];
  readonly domainStatuses: ReceivedDomainStatus[] = [];
  /** Instants a goodbye arrived. */
  readonly goodbyes: number[] = [];
  /** Close the connection on goodbye (the client's behaviour). */
  closeOnGoodbye = true;
  /** Every AssignedIps sent: [time, domain]. */
  readonly assignedIpsSent: [number, string][] = [];
  readonly #pending: PendingAssignedIps[] = [];
  readonly #scratch = new Uint8Array(1400);
  readonly #clock: FluxCapacitor;

  constructor(
    name: string,
    options: { ips: readonly string[]; seed: number; clock: FluxCapacitor; fz: FzClientIdentity },
  ) {
    super(name, { role: "client", ips: options.ips, seed: options.seed, clock: options.clock });
    this.fz = options.fz;
    this.#clock = options.clock;
  }

  /** Sends one IP packet to the gateway; returns the node's `P2pResult`. */
  send(packet: Uint8Array): number {
    return this.sendIp("gateway", packet);
  }

  /**
   * Sends AssignedIps for `domain` of DNS resource `resource`; with `resend`, again every 2 s until a
   * DomainStatus for that resource and domain arrives.
   */
  assignIps(resource: string, domain: string, proxyIps: readonly string[], resend = true): number {
    const n = buildAssignedIpsPacket(this.#scratch, 0, { resource, domain, proxyIps });
    if (n === 0) throw new RangeError("AssignedIps does not fit");
    this.assignedIpsSent.push([this.#clock.now, domain]);
    if (resend && !this.#pending.some((p) => p.resource === resource && p.domain === domain)) {
      this.#pending.push({ resource, domain, proxyIps, nextAt: this.#clock.now + ASSIGNED_IPS_RESEND_MS });
    }
    return this.send(this.#scratch.slice(0, n));
  }

  /** The last DomainStatus for `domain`, if any. */
  statusOf(domain: string): NatStatus | undefined {
    return this.domainStatuses.findLast((s) => s.domain === domain)?.status;
  }

  override handleDatagram(src: SocketAddr, dst: SocketAddr, payload: Uint8Array, now: number): void {
    const before = this.tun.length;
    super.handleDatagram(src, dst, payload, now);
    for (let i = before; i < this.tun.length; i++) this.#onTunPacket(this.tun[i]!.packet, now);
  }

  override pollTimeout(): number {
    let at = super.pollTimeout();
    for (const p of this.#pending) if (p.nextAt < at) at = p.nextAt;
    return at;
  }

  override handleTimeout(now: number): void {
    super.handleTimeout(now);
    for (const p of this.#pending) {
      if (p.nextAt > now) continue;
      p.nextAt = now + ASSIGNED_IPS_RESEND_MS;
      this.assignIps(p.resource, p.domain, p.proxyIps, false);
    }
  }

  #onTunPacket(packet: Uint8Array, now: number): void {
    if (!isP2pControl(packet, 0, packet.length)) {
      this.received.push({ at: now, packet });
      return;
    }
    const msg = decodeP2pControl(packet, 0, packet.length);
    if (msg.type === "DomainStatus") {
      this.domainStatuses.push({ at: now, resource: msg.resource, domain: msg.domain, status: msg.status });
      const i = this.#pending.findIndex((p) => p.resource === msg.resource && p.domain === msg.domain);
      if (i >= 0) this.#pending.splice(i, 1);
    } else if (msg.type === "Goodbye") {
      this.goodbyes.push(now);
      if (this.closeOnGoodbye) this.node.closeConnection("gateway", now);
    } else {
      throw new Error(`unexpected p2p control message for a client: ${msg.type}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Resources behind the gateway's TUN device

/**
 * The network behind the TUN device: resources answer the packets the gateway writes to TUN, after
 * `latencyMs`, by feeding their replies to {@link SimGatewayHost.fromResource}.
 *
 * - Addresses in {@link answering} echo: UDP back with the same payload, TCP SYN → SYN|ACK and other
 *   segments → ACK (RST → nothing), ICMP echo request → echo reply.
 * - Addresses in {@link unreachable} answer TCP/UDP with ICMP port unreachable quoting the packet.
 * - Anything else is swallowed.
 */
export class SimResources {
  readonly answering = new Set<string>();
  readonly unreachable = new Set<string>();
  /** Every reply fed to the gateway and the core's result. */
  readonly replies: { at: number; packet: Uint8Array; result: CoreResult }[] = [];
  readonly #info = new IpPacketInfo();
  readonly #buf = new Uint8Array(SLOT_LEN);

  constructor(
    readonly net: SimNet,
    readonly gateway: SimGatewayHost,
    readonly latencyMs: number,
  ) {
    gateway.tunListeners.push((packet, now) => {
      const reply = this.replyTo(packet);
      if (reply !== null) this.net.schedule(now + this.latencyMs, (t) => this.inject(reply, t));
    });
  }

  /** Feeds a resource packet to the gateway now (a TUN read). */
  inject(packet: Uint8Array, now = this.net.now): CoreResult {
    const result = this.gateway.fromResource(packet, now);
    this.replies.push({ at: now, packet, result });
    return result;
  }

  /** The reply of the resource `packet` is addressed to, or null. */
  replyTo(packet: Uint8Array): Uint8Array | null {
    const info = this.#info;
    if (parseIpPacket(packet, 0, packet.length, info) !== ParseResult.Ok) return null;
    const bytes = info.version === 4 ? 4 : 16;
    const src = packet.slice(info.srcOff, info.srcOff + bytes);
    const dst = packet.slice(info.dstOff, info.dstOff + bytes);
    const dstText = formatIp(dst);
    const buf = this.#buf;
    const end = info.off + info.totalLen;
    let n = 0;
    if (this.unreachable.has(dstText) && (info.l4Kind === L4Kind.Tcp || info.l4Kind === L4Kind.Udp)) {
      n = info.version === 4
        ? buildIcmpv4DestUnreachable(buf, 0, packet, 0, packet.length, 3)
        : buildIcmpv6DestUnreachable(buf, 0, packet, 0, packet.length, 4);
    } else if (!this.answering.has(dstText)) {
      return null;
    } else if (info.l4Kind === L4Kind.Udp) {
      n = buildUdpPacket(buf, 0, dst, src, info.dstPort, info.srcPort, packet.subarray(info.l4Off + 8, end));
    } else if (info.l4Kind === L4Kind.Tcp) {
      if ((info.tcpFlags & TCP_FLAG_RST) !== 0) return null;
      const flags = (info.tcpFlags & TCP_FLAG_SYN) !== 0 ? TCP_FLAG_SYN | TCP_FLAG_ACK : TCP_FLAG_ACK;
      const dataOff = info.l4Off + (packet[info.l4Off + 12]! >> 4) * 4;
      n = buildTcpPacket(
        buf,
        0,
        dst,
        src,
        info.dstPort,
        info.srcPort,
        7_000,
        1_001,
        flags,
        65535,
        packet.subarray(dataOff, end),
      );
    } else if (
      info.l4Kind === L4Kind.Icmp &&
      info.icmpType === (info.version === 4 ? ICMPV4_ECHO_REQUEST : ICMPV6_ECHO_REQUEST)
    ) {
      n = buildIcmpEchoPacket(
        buf,
        0,
        dst,
        src,
        true,
        info.icmpId,
        info.icmpSeq,
        packet.subarray(info.l4Off + 8, end),
      );
    }
    return n === 0 ? null : buf.slice(0, n);
  }
}

// ---------------------------------------------------------------------------------------------
// DNS resolution (the main thread's job in production)

/** Answers the core's `resolve` events from a table, after `latencyMs`. Unknown names fail (null). */
export class FakeResolver {
  readonly records = new Map<string, readonly string[] | null>();
  /** Every query: [time, request id, domain]. */
  readonly queries: [number, number, string][] = [];

  constructor(readonly net: SimNet, readonly gateway: SimGatewayHost, readonly latencyMs: number) {
    gateway.eventListeners.push((e, now) => {
      if (e.type !== "resolve") return;
      this.queries.push([now, e.requestId, e.domain]);
      const ips = this.records.get(e.domain) ?? null;
      this.net.schedule(now + this.latencyMs, (t) => {
        this.gateway.core.handleDnsResolved(e.requestId, ips, false, t);
        this.gateway.afterStep(t);
      });
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Portal

/** A resource as the portal sends it (JSON, snake_case). */
export type ResourceJson =
  | { type: "cidr"; id: string; address: string; name: string; filters: FilterJson[] }
  | { type: "dns"; id: string; address: string; name: string; filters: FilterJson[] }
  | { type: "internet"; id: string; name?: string };

/** A filter as the portal sends it. */
export type FilterJson =
  | { protocol: "tcp" | "udp"; port_range_start?: number; port_range_end?: number }
  | { protocol: "icmp" };

/** A CIDR resource (`address` like "10.0.0.0/8"; no filters = permit all). */
export function cidrResource(id: string, address: string, filters: FilterJson[] = []): ResourceJson {
  return { type: "cidr", id, address, name: `cidr ${address}`, filters };
}

/** A DNS resource with the address pattern `pattern` ("*.corp.example"). */
export function dnsResource(id: string, pattern: string, filters: FilterJson[] = []): ResourceJson {
  return { type: "dns", id, address: pattern, name: `dns ${pattern}`, filters };
}

/** The Internet resource. */
export function internetResource(id: string): ResourceJson {
  return { type: "internet", id, name: "Internet" };
}

/** A TCP port-range filter. */
export function tcpPorts(start: number, end = start): FilterJson {
  return { protocol: "tcp", port_range_start: start, port_range_end: end };
}

/** A UDP port-range filter. */
export function udpPorts(start: number, end = start): FilterJson {
  return { protocol: "udp", port_range_start: start, port_range_end: end };
}

/** The ICMP filter. */
export const ICMP: FilterJson = { protocol: "icmp" };

/** A message the stub portal exchanged (ingress: to the gateway; egress: from it; client: to a client). */
export interface PortalLogEntry {
  readonly at: number;
  readonly direction: "ingress" | "egress" | "client";
  readonly event: string;
  readonly payload: unknown;
}

/**
 * The portal's part: builds every ingress message as JSON and parses it with the real parser, derives
 * ICE credentials and PSKs as the portal does (deterministic per client/gateway pair), tells clients
 * about authorized flows (`flow_created`), and relays ICE candidates both ways with a signalling delay.
 */
export class SimPortal {
  readonly gatewayId: string;
  readonly gatewayPskBase: Uint8Array;
  readonly log: PortalLogEntry[] = [];
  /** While true, ICE candidates are lost (portal partition). */
  partitioned = false;
  readonly #clients = new Map<string, SimFzClient>();
  readonly #refs: SeededRng;
  #nextRef = 1;

  constructor(
    readonly net: SimNet,
    readonly gateway: SimGatewayHost,
    readonly latencyMs: number,
    seed: number,
  ) {
    const rng = new SeededRng(seed);
    this.gatewayId = randomUuidV4(rng);
    this.gatewayPskBase = new Uint8Array(32);
    rng.fill(this.gatewayPskBase);
    this.#refs = rng;
    gateway.eventListeners.push((e, now) => {
      if (e.type === "tunnel") this.#onTunnelEvent(e.event, now);
    });
  }

  get now(): number {
    return this.net.now;
  }

  /** Registers a client and forwards its ICE candidates to the gateway. */
  addClient(client: SimFzClient): void {
    this.#clients.set(client.fz.id, client);
    client.listeners.push((e, now) => {
      if (e.type !== "NewIceCandidate" && e.type !== "InvalidateIceCandidate") return;
      if (e.cid !== "gateway" || this.partitioned) return;
      const event = e.type === "NewIceCandidate" ? "ice_candidates" : "invalidate_ice_candidates";
      const payload = { "client_id": client.fz.id, candidates: [e.candidate] };
      this.net.schedule(now + this.latencyMs, (t) => {
        const msg = this.#ingress(event, payload, t);
        if (msg.event === "ice_candidates") this.gateway.core.addIceCandidates(msg.payload, t);
        else if (msg.event === "invalidate_ice_candidates") {
          this.gateway.core.removeIceCandidates(msg.payload, t);
        }
        this.gateway.afterStep(t);
      });
    });
  }

  /** The portal's JSON for a relay (one entry per address family, same id). */
  relayJson(relay: SimRelay, id: string): Record<string, unknown>[] {
    const expires = this.#unixNowS() + RELAY_CREDENTIAL_LIFETIME_S;
    return [relay.listen4, relay.listen6].filter((a) => a !== undefined).map((addr) => ({
      type: "turn",
      id,
      addr: formatSocketAddr(addr),
      username: relay.username,
      password: relay.password,
      expires_at: expires,
    }));
  }

  /** `init` with the gateway's interface, `relays` and `authorizations` (`expires_at` in Unix seconds). */
  init(
    relays: readonly { relay: SimRelay; id: string }[],
    authorizations: readonly { clientId: string; resourceId: string; expiresAtS: number }[] = [],
  ): void {
    const msg = this.#ingress("init", {
      interface: { ipv4: GATEWAY_TUN_V4, ipv6: GATEWAY_TUN_V6 },
      config: { ipv4_masquerade_enabled: true, ipv6_masquerade_enabled: true },
      account_slug: "sim",
      relays: relays.flatMap((r) => this.relayJson(r.relay, r.id)),
      authorizations: authorizations.map((a) => ({
        client_id: a.clientId,
        resource_id: a.resourceId,
        expires_at: a.expiresAtS,
      })),
    });
    if (msg.event !== "init") throw new Error("not init");
    this.gateway.core.init(msg.payload, this.now);
    this.gateway.afterStep(this.now);
  }

  /** The ICE credentials the portal derives for a (client, gateway) pair. */
  iceCredentials(client: SimFzClient): { client: IceCredentials; gateway: IceCredentials } {
    const h = base32LowerNoPad(
      sha256(
        encoder.encode(
          `${client.fz.id}:${encodeBase64(client.node.publicKey)}:${this.gatewayId}:${
            encodeBase64(this.gateway.core.publicKey)
          }`,
        ),
      ),
    );
    // Elixir `String.slice(h, a..b)` with inclusive ranges; the hash has 52 characters.
    return {
      client: { ufrag: h.slice(0, 4), pwd: h.slice(4, 26) },
      gateway: { ufrag: h.slice(26, 30), pwd: h.slice(30, 53) },
    };
  }

  /** The PSK the portal derives for a (client, gateway) pair. */
  presharedKey(client: SimFzClient): Uint8Array {
    const password = new Uint8Array(64);
    password.set(client.fz.pskBase, 0);
    password.set(this.gatewayPskBase, 32);
    const salt = `WG_PSK|C_ID:${client.fz.id}|G_ID:${this.gatewayId}|C_PK:${
      encodeBase64(client.node.publicKey)
    }|G_PK:${encodeBase64(this.gateway.core.publicKey)}`;
    return pbkdf2(sha256, password, encoder.encode(salt), { c: 1, dkLen: 32 });
  }

  /** The typed `authorize_flow` for `client` and `resource` (parsed from the portal's JSON). */
  authorizeFlowMessage(
    client: SimFzClient,
    resource: ResourceJson,
    expiresAtS: number | null,
    overrides: { psk?: Uint8Array } = {},
  ): AuthorizeFlowMessage {
    const creds = this.iceCredentials(client);
    const msg = this.#ingress("authorize_flow", {
      ref: `ref-${this.#nextRef++}-${this.#refs.nextU32().toString(36)}`,
      resource,
      client: {
        id: client.fz.id,
        public_key: encodeBase64(client.node.publicKey),
        preshared_key: encodeBase64(overrides.psk ?? this.presharedKey(client)),
        ipv4: client.fz.ipv4,
        ipv6: client.fz.ipv6,
      },
      actor: { id: "24eb631e-c529-4182-a746-d99ee66f7426" },
      flow_id: randomUuidV4(this.#refs),
      gateway_ice_credentials: { username: creds.gateway.ufrag, password: creds.gateway.pwd },
      client_ice_credentials: { username: creds.client.ufrag, password: creds.client.pwd },
      expires_at: expiresAtS,
    });
    if (msg.event !== "authorize_flow") throw new Error("not authorize_flow");
    return msg.payload;
  }

  /**
   * `authorize_flow`; when accepted, the gateway's `flow_authorized` goes out and the client gets
   * `flow_created` after the signalling delay (it upserts its side of the connection).
   */
  authorizeFlow(client: SimFzClient, resource: ResourceJson, expiresAtS: number | null): AuthorizeFlowResult {
    const now = this.now;
    const msg = this.authorizeFlowMessage(client, resource, expiresAtS);
    const result = this.gateway.core.authorizeFlow(msg, now);
    if (result === "accepted") {
      this.#egress(flowAuthorized(msg.ref), now);
      const creds = this.iceCredentials(client);
      const psk = msg.client.presharedKey.expose();
      const gatewayKey = this.gateway.core.publicKey;
      this.net.schedule(now + this.latencyMs, (t) => {
        this.log.push({
          at: t,
          direction: "client",
          event: "flow_created",
          payload: { gateway: this.gatewayId },
        });
        client.node.upsertConnection("gateway", gatewayKey, psk, creds.client, creds.gateway, t);
        client.afterStep(t);
      });
    }
    this.gateway.afterStep(now);
    return result;
  }

  /**
   * Legacy `request_connection` (clients < 1.4): the client's ICE credentials go in, the gateway answers
   * with random local credentials (`connection_ready`), which the client then uses as its remote side.
   * `resolved` is what the main thread resolved for `domain` first.
   */
  requestConnection(
    client: SimFzClient,
    resource: ResourceJson,
    expiresAtS: number | null,
    domain: { name: string; proxyIps: readonly string[] } | null,
    resolved: readonly string[] | null,
  ): RequestConnectionResult {
    const now = this.now;
    const local = this.iceCredentials(client).client;
    const psk = this.presharedKey(client);
    const msg = this.#ingress("request_connection", {
      ref: `ref-${this.#nextRef++}`,
      resource,
      expires_at: expiresAtS,
      client: {
        id: client.fz.id,
        peer: {
          persistent_keepalive: 25,
          public_key: encodeBase64(client.node.publicKey),
          preshared_key: encodeBase64(psk),
          ipv4: client.fz.ipv4,
          ipv6: client.fz.ipv6,
        },
        payload: {
          ice_parameters: { username: local.ufrag, password: local.pwd },
          ...(domain === null ? {} : { domain: { name: domain.name, proxy_ips: domain.proxyIps } }),
        },
      },
    });
    if (msg.event !== "request_connection") throw new Error("not request_connection");
    const result = this.gateway.core.requestConnection(msg.payload, resolved, now);
    if (result.type === "accepted") {
      const remote = { ufrag: result.iceCredentials.username, pwd: result.iceCredentials.password };
      this.#egress(connectionReady(msg.payload.ref, result.iceCredentials), now);
      const gatewayKey = this.gateway.core.publicKey;
      this.net.schedule(now + this.latencyMs, (t) => {
        client.node.upsertConnection("gateway", gatewayKey, psk, local, remote, t);
        client.afterStep(t);
      });
    }
    this.gateway.afterStep(now);
    return result;
  }

  /** Legacy `allow_access`: another resource over an existing connection (no reply). */
  allowAccess(
    client: SimFzClient,
    resource: ResourceJson,
    expiresAtS: number | null,
    payload: { name: string; proxyIps: readonly string[] } | null,
    resolved: readonly string[] | null,
  ): void {
    const msg = this.#ingress("allow_access", {
      ref: `ref-${this.#nextRef++}`,
      client_id: client.fz.id,
      resource,
      expires_at: expiresAtS,
      payload: payload === null ? null : { name: payload.name, proxy_ips: payload.proxyIps },
      client_ipv4: client.fz.ipv4,
      client_ipv6: client.fz.ipv6,
    });
    if (msg.event !== "allow_access") throw new Error("not allow_access");
    this.gateway.core.allowAccess(msg.payload, resolved, this.now);
    this.gateway.afterStep(this.now);
  }

  rejectAccess(client: SimFzClient, resourceId: string): void {
    const msg = this.#ingress("reject_access", { client_id: client.fz.id, resource_id: resourceId });
    if (msg.event !== "reject_access") throw new Error("not reject_access");
    this.gateway.core.rejectAccess(msg.payload, this.now);
    this.gateway.afterStep(this.now);
  }

  resourceUpdated(resource: ResourceJson): void {
    const msg = this.#ingress("resource_updated", resource);
    if (msg.event !== "resource_updated") throw new Error("not resource_updated");
    this.gateway.core.updateResource(msg.payload);
    this.gateway.afterStep(this.now);
  }

  expiryUpdated(client: SimFzClient, resourceId: string, expiresAtS: number): void {
    const msg = this.#ingress("access_authorization_expiry_updated", {
      client_id: client.fz.id,
      resource_id: resourceId,
      expires_at: expiresAtS,
    });
    if (msg.event !== "access_authorization_expiry_updated") throw new Error("wrong event");
    this.gateway.core.updateExpiry(msg.payload);
    this.gateway.afterStep(this.now);
  }

  /** `relays_presence` to the gateway (and, as the client channel does, to `clients`). */
  relaysPresence(
    disconnectedIds: readonly string[],
    connected: readonly { relay: SimRelay; id: string }[],
    clients: readonly SimFzClient[] = [],
  ): void {
    const now = this.now;
    const msg = this.#ingress("relays_presence", {
      disconnected_ids: disconnectedIds,
      connected: connected.flatMap((r) => this.relayJson(r.relay, r.id)),
    });
    if (msg.event !== "relays_presence") throw new Error("not relays_presence");
    this.gateway.core.updateRelays(msg.payload, now);
    this.gateway.afterStep(now);
    for (const c of clients) {
      c.node.updateRelays(disconnectedIds, connected.map((r) => r.relay.info(r.id)), now);
      c.afterStep(now);
    }
  }

  /** Shutdown: the gateway says goodbye to every client. */
  goodbyeAll(): void {
    this.gateway.core.goodbyeAll(this.now);
    this.gateway.afterStep(this.now);
  }

  #onTunnelEvent(
    event: Extract<GatewayEvent, { type: "tunnel" }>["event"],
    now: number,
  ): void {
    if (event.type === "fatal") throw new Error(`fatal tunnel event: ${event.error}`);
    const egress = event.type === "new_ice_candidates"
      ? broadcastIceCandidates([event.clientId], event.candidates)
      : broadcastInvalidatedIceCandidates([event.clientId], event.candidates);
    this.#egress(egress, now);
    if (this.partitioned) return;
    const client = this.#clients.get(event.clientId);
    if (client === undefined) return;
    const { candidates } = egress.payload as { candidates: readonly string[] };
    const add = event.type === "new_ice_candidates";
    this.net.schedule(now + this.latencyMs, (t) => {
      this.log.push({
        at: t,
        direction: "client",
        event: add ? "ice_candidates" : "invalidate_ice_candidates",
        payload: { gateway_id: this.gatewayId, candidates },
      });
      for (const c of candidates) {
        if (add) client.node.addRemoteCandidate("gateway", c, t);
        else client.node.removeRemoteCandidate("gateway", c, t);
      }
      client.afterStep(t);
    });
  }

  #ingress(event: string, payload: unknown, at = this.now): IngressMessage {
    // Through JSON text, as it arrives on the websocket.
    const parsed = JSON.parse(JSON.stringify(payload));
    this.log.push({ at, direction: "ingress", event, payload: parsed });
    return parseIngressMessage(event, parsed);
  }

  #egress(msg: EgressMessage, at: number): void {
    this.log.push({ at, direction: "egress", event: msg.event, payload: msg.payload });
  }

  #unixNowS(): number {
    return Math.floor(this.net.clock.wallClock(this.net.now) / 1000);
  }
}

// ---------------------------------------------------------------------------------------------
// The world

/** Options of {@link GatewayWorld}. */
export interface GatewayWorldOptions {
  readonly seed?: number;
  /** One-way network latency (default 10 ms). */
  readonly latencyMs?: number;
  /** Portal signalling delay (default 50 ms). */
  readonly signallingLatencyMs?: number;
  /** DNS resolution time (default 5 ms). */
  readonly dnsLatencyMs?: number;
  /** Resource reply time behind the TUN device (default 1 ms). */
  readonly resourceLatencyMs?: number;
  /** Number of relays to create (default 1). */
  readonly relays?: number;
  /** Indices of the relays in the gateway's `init` (default: all). `[]` → no relays. */
  readonly initRelays?: readonly number[];
  /** Gateway and clients may only send to relays (port 3478). */
  readonly relayOnly?: boolean;
  /** Instant of `init` (default 0); the world then runs until `startAt`. */
  readonly startAt?: number;
}

/** Options of {@link GatewayWorld.addClient}. */
export interface ClientOptions {
  readonly publicIp?: string;
  readonly ipv4?: string;
  readonly ipv6?: string;
  /** Indices of the relays the client knows (default: the gateway's init relays). */
  readonly relays?: readonly number[];
  readonly nat?: NatOptions;
}

/** The whole simulation. */
export class GatewayWorld {
  readonly clock = new FluxCapacitor();
  readonly net: SimNet;
  readonly seed: number;
  readonly gateway: SimGatewayHost;
  readonly portal: SimPortal;
  readonly resources: SimResources;
  readonly dns: FakeResolver;
  readonly relays: SimRelay[] = [];
  /** The portal's relay ids (UUIDs), by index. */
  readonly relayIds: string[] = [];
  readonly clients: SimFzClient[] = [];
  readonly #rng: SeededRng;
  readonly #initRelays: readonly number[];
  #nextSeed: number;

  constructor(options: GatewayWorldOptions = {}) {
    this.seed = options.seed ?? 1;
    this.#rng = new SeededRng(this.seed * 31 + 7);
    this.#nextSeed = this.seed * 1000;
    this.net = new SimNet(this.clock, options.latencyMs ?? 10);
    this.clock.installLogSink();
    const relayCount = options.relays ?? 1;
    for (let i = 0; i < relayCount; i++) {
      const relay = this.net.addHost(
        new SimRelay(`relay-${i + 1}`, {
          ip4: `192.0.2.${i + 1}`,
          seed: this.#nextSeed++,
          firstRelayPort: 49152 + i * 1000,
        }),
      );
      this.relays.push(relay);
      this.relayIds.push(randomUuidV4(this.#rng));
    }
    this.gateway = this.net.addHost(
      new SimGatewayHost({ ips: [GATEWAY_PUBLIC_IP], seed: this.#nextSeed++, clock: this.clock }),
    );
    this.portal = new SimPortal(this.net, this.gateway, options.signallingLatencyMs ?? 50, this.#nextSeed++);
    this.resources = new SimResources(this.net, this.gateway, options.resourceLatencyMs ?? 1);
    this.dns = new FakeResolver(this.net, this.gateway, options.dnsLatencyMs ?? 5);
    if (options.relayOnly) {
      const relayIps = new Set(this.relays.flatMap((r) => r.ips));
      this.net.block((from, _src, dst) =>
        (from === this.gateway || this.clients.includes(from as SimFzClient)) &&
        !(relayIps.has(dst.ip) && dst.port === RELAY_PORT)
      );
    }
    this.#initRelays = options.initRelays ?? this.relays.map((_, i) => i);
    this.portal.init(this.#initRelays.map((i) => this.relayRef(i)));
    this.net.runUntil(options.startAt ?? 500);
  }

  get now(): number {
    return this.clock.now;
  }

  /** Wall clock now, Unix seconds (the unit of the portal's `expires_at`). */
  get unixNowS(): number {
    return Math.floor(this.clock.wallClock(this.now) / 1000);
  }

  relayRef(i: number): { relay: SimRelay; id: string } {
    return { relay: this.relays[i]!, id: this.relayIds[i]! };
  }

  relayInfo(i: number): RelayInfo {
    return this.relays[i]!.info(this.relayIds[i]!);
  }

  /** A fresh portal-style UUID (resource ids). */
  uuid(): string {
    return randomUuidV4(this.#rng);
  }

  /** Adds a client host (public IP 198.51.100.<20 + n>, tunnel 100.64.0.<10 + n>) knowing the relays. */
  addClient(name: string, options: ClientOptions = {}): SimFzClient {
    const n = this.clients.length;
    const pskBase = new Uint8Array(32);
    this.#rng.fill(pskBase);
    const fz: FzClientIdentity = {
      id: randomUuidV4(this.#rng),
      ipv4: options.ipv4 ?? `100.64.0.${10 + n}`,
      ipv6: options.ipv6 ?? `fd00:2021:1111::${(10 + n).toString(16)}`,
      pskBase,
    };
    const client = new SimFzClient(name, {
      ips: [options.publicIp ?? `198.51.100.${20 + n}`],
      seed: this.#nextSeed++,
      clock: this.clock,
      fz,
    });
    this.clients.push(client);
    this.net.addHost(client, options.nat);
    this.portal.addClient(client);
    const relays = (options.relays ?? this.#initRelays).map((i) => this.relayInfo(i));
    client.node.updateRelays([], relays, this.now);
    client.afterStep(this.now);
    return client;
  }

  /** Runs until both sides of the client's connection have a WireGuard session. */
  untilEstablished(client: SimFzClient, cutOffMs = 10_000): number {
    return this.net.advanceUntil(
      () => this.isEstablished(client),
      cutOffMs,
      `${client.name} connected to the gateway`,
    );
  }

  isEstablished(client: SimFzClient): boolean {
    const gw = this.gateway.core.node.connectionInfo(client.fz.id);
    const cl = client.info("gateway");
    return gw !== undefined && gw.established && cl !== undefined && cl.established;
  }

  /**
   * Authorizes `resource` for `client` (`authorize_flow`), then runs until the connection is up.
   * Returns the gateway's answer.
   */
  connect(
    client: SimFzClient,
    resource: ResourceJson,
    expiresAtS: number | null = null,
  ): AuthorizeFlowResult {
    const result = this.portal.authorizeFlow(client, resource, expiresAtS);
    if (result === "accepted") this.untilEstablished(client);
    return result;
  }

  /**
   * Sends `packet` from the client and runs the network for `ms` (enough for the round trip through
   * the gateway, a resource's reply and the way back). Returns the client's send result.
   */
  sendAndSettle(client: SimFzClient, packet: Uint8Array, ms = 100): number {
    const r = client.send(packet);
    this.net.runFor(ms);
    return r;
  }
}

// ---------------------------------------------------------------------------------------------
// Packet builders (valid checksums)

/** A UDP packet (IPv4 or IPv6 by the address family). */
export function udpPacket(
  src: string,
  dst: string,
  sport: number,
  dport: number,
  payload?: Uint8Array,
): Uint8Array {
  const buf = new Uint8Array(SLOT_LEN);
  const n = buildUdpPacket(
    buf,
    0,
    ipBytes(src),
    ipBytes(dst),
    sport,
    dport,
    payload ?? encoder.encode(`udp ${sport}`),
  );
  if (n === 0) throw new RangeError("UDP packet does not fit");
  return buf.slice(0, n);
}

/** A TCP segment (default: SYN) with `payload`. */
export function tcpPacket(
  src: string,
  dst: string,
  sport: number,
  dport: number,
  flags = TCP_FLAG_SYN,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const buf = new Uint8Array(SLOT_LEN);
  const n = buildTcpPacket(buf, 0, ipBytes(src), ipBytes(dst), sport, dport, 1_000, 0, flags, 64240, payload);
  if (n === 0) throw new RangeError("TCP packet does not fit");
  return buf.slice(0, n);
}

/** An ICMP(v6) echo request. */
export function pingPacket(
  src: string,
  dst: string,
  id: number,
  seq: number,
  payload?: Uint8Array,
): Uint8Array {
  const buf = new Uint8Array(SLOT_LEN);
  const n = buildIcmpEchoPacket(
    buf,
    0,
    ipBytes(src),
    ipBytes(dst),
    false,
    id,
    seq,
    payload ?? encoder.encode(`ping ${seq}`),
  );
  if (n === 0) throw new RangeError("ICMP packet does not fit");
  return buf.slice(0, n);
}

/** Address bytes of an IP text (throws when it is not one). */
export function ipBytes(text: string): Uint8Array {
  const b = parseIp(text);
  if (b === null) throw new TypeError(`not an IP address: ${text}`);
  return b;
}

/** Elixir `Base.encode32(bytes, case: :lower, padding: false)`. */
export function base32LowerNoPad(bytes: Uint8Array): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += alphabet[(acc << (5 - bits)) & 31];
  return out;
}
