/**
 * The gateway's sans-IO core (Firezone's `GatewayState`): the p2p node (ICE, TURN, WireGuard per
 * client) plus the per-client policy ({@link ClientOnGateway}), driven by portal messages and by
 * packets. It is the {@link PacketCore} of the packet worker in portal mode, and runs unchanged in
 * the deterministic simulation.
 *
 * - Client → resource (`handleDatagram`): the node decrypts; p2p control packets are handled here;
 *   everything else goes through the client's outbound policy and, if allowed, to TUN. Refused
 *   packets are answered with the policy's ICMP error, encrypted back to the client.
 * - Resource → client (`handleTunPacket`): the destination picks the client (by tunnel address);
 *   inbound policy (reverse NAT, filters), then the node encrypts.
 * - Timers: the node's, plus every second the expiry of authorizations (wall clock) and the NAT sweep.
 *
 * @module
 */

import type { CryptoBackend } from "../crypto/backend.ts";
import type { IceCredentials as AgentCredentials } from "../ice/agent.ts";
import { logger } from "../log.ts";
import { type CoreOut, CoreResult, type CoreTransmit, DropLayer, type PacketCore } from "../packet_core.ts";
import { P2pNode, type RelayInfo } from "../p2p/node.ts";
import { PeerAddrView } from "../p2p/peer_addr.ts";
import { NodeOut, P2pResult } from "../p2p/transmit.ts";
import type {
  AllowAccessMessage,
  AuthorizeFlowMessage,
  ExpiryUpdatedMessage,
  IceCandidatesMessage,
  IceCredentials,
  InitMessage,
  RejectAccessMessage,
  RelaysPresenceMessage,
  RequestConnectionMessage,
  ResourceDescription,
} from "../portal/messages.ts";
import type { AuthorizeFlowResult, RequestConnectionResult, TunnelEvent } from "../portal/tunnel_control.ts";
import type { Rng } from "../rng.ts";
import { RingQueue } from "../util/ring_queue.ts";
import { parseIp } from "../wire/ip_addr.ts";
import type { WallClock } from "../wireguard/handshake.ts";
import { ClientOnGateway, SetupDnsNatResult } from "./client_on_gateway.ts";
import { PolicyOutput, PolicyResult } from "./packet_policy.ts";
import {
  buildDomainStatusPacket,
  buildGoodbyePacket,
  decodeP2pControl,
  type NatStatus,
  P2pControlError,
} from "./p2p_control.ts";

const log = logger("fz_gateway::gateway");

/** Expiry of authorizations and the NAT sweep run this often (spec §4.4, §4.5). */
export const EXPIRY_CHECK_INTERVAL_MS = 1_000;
/** Head/tailroom of the scratch buffers this core encrypts replies and control packets in. */
const HEADROOM = 20;
const TAILROOM = 31;
const SCRATCH_BYTES = HEADROOM + 1280 + TAILROOM + 1;
/** Random local ICE credentials of legacy connections (str0m `IceCreds::new`). */
const LEGACY_UFRAG_LEN = 16;
const LEGACY_PWD_LEN = 22;
const LEGACY_ICE_CHARS = "abcdefghijklmnopqrstuvxyzABCDEFGHIJKLMNOPQRSTUVXYZ0123456789"; // no w/W

/** Events for the main thread. */
export type GatewayEvent =
  | { readonly type: "tunnel"; readonly event: TunnelEvent }
  /** Resolve `domain` and call {@link GatewayState.handleDnsResolved} with the answer. */
  | { readonly type: "resolve"; readonly requestId: number; readonly domain: string };

/** Options of {@link GatewayState}. */
export interface GatewayStateOptions {
  readonly privateKey: Uint8Array;
  readonly backend: CryptoBackend;
  readonly rng: Rng;
  readonly now: number;
  /** Maps `now` to Unix ms: TAI64N timestamps and authorization expiry (wall clock, spec §4.4). */
  readonly wallClock: WallClock;
  /** A p2p node to use instead of a new server node (tests). */
  readonly node?: P2pNode;
}

interface PendingResolution {
  readonly clientId: string;
  readonly resourceId: string;
  readonly domain: string;
  readonly proxyIps: readonly string[];
}

/**
 * The gateway core.
 *
 * @example
 * ```ts
 * const gw = new GatewayState({ privateKey, backend, rng, now, wallClock });
 * gw.init(initMessage, now);
 * if (gw.authorizeFlow(msg, now) === "accepted") portal.send(flowAuthorized(msg.ref));
 * // data path: see PacketCore
 * for (let e = gw.pollEvent(); e; e = gw.pollEvent()) mainThread.post(e);
 * ```
 */
export class GatewayState implements PacketCore {
  readonly node: P2pNode;
  readonly #rng: Rng;
  readonly #wallClock: WallClock;
  readonly #clients = new Map<string, ClientOnGateway>();
  /** Client by tunnel IPv4 (uint32 | 0). */
  readonly #byIpv4 = new Map<number, ClientOnGateway>();
  /** Client by the low 32 bits of its tunnel IPv6 (| 0); unique inside fd00:2021:1111::/107. */
  readonly #byIpv6 = new Map<number, ClientOnGateway>();
  #tunIpv4: string | null = null;
  #tunIpv6: string | null = null;
  readonly #nodeOut = new NodeOut();
  readonly #policy: PolicyOutput;
  readonly #scratch = new Uint8Array(SCRATCH_BYTES);
  readonly #transmits = new RingQueue<CoreTransmit>(32);
  readonly #events = new RingQueue<GatewayEvent>(32);
  readonly #pending = new Map<number, PendingResolution>();
  #nextRequestId = 1;
  #nextExpiryCheckAt: number;
  /** Drops per policy result (`PolicyResult` code), for metrics. */
  readonly policyDrops = new Float64Array(16);

  constructor(options: GatewayStateOptions) {
    this.#rng = options.rng;
    this.#wallClock = options.wallClock;
    this.node = options.node ?? new P2pNode({
      role: "server",
      privateKey: options.privateKey,
      backend: options.backend,
      rng: options.rng,
      now: options.now,
      wallClock: options.wallClock,
    });
    this.#policy = new PolicyOutput(new Uint8Array(SCRATCH_BYTES), HEADROOM);
    this.#nextExpiryCheckAt = options.now + EXPIRY_CHECK_INTERVAL_MS;
  }

  get publicKey(): Uint8Array {
    return this.node.publicKey;
  }

  /** Ids of clients with authorization state. */
  clientIds(): string[] {
    return [...this.#clients.keys()];
  }

  /** A client's policy state (tests, diagnostics). */
  client(id: string): ClientOnGateway | undefined {
    return this.#clients.get(id);
  }

  // --- portal messages (spec §2.6) ------------------------------------------------------------

  /**
   * `init` steps 2–5: add/replace relays (no removals), record the tunnel addresses, retain only the
   * listed resources of the clients named in `authorizations`, and set those expiries. Idempotent.
   * (Configuring the TUN device itself is the I/O layer's job.)
   */
  init(msg: InitMessage, now: number): void {
    this.node.updateRelays([], relayInfos(msg.relays), now);
    this.#tunIpv4 = msg.interface.ipv4;
    this.#tunIpv6 = msg.interface.ipv6;
    const byClient = new Map<string, string[]>();
    for (const a of msg.authorizations) {
      const list = byClient.get(a.clientId) ?? [];
      list.push(a.resourceId);
      byClient.set(a.clientId, list);
    }
    for (const [clientId, resourceIds] of byClient) {
      const client = this.#clients.get(clientId);
      if (!client) {
        log.debug("init names an unknown client", { cid: clientId });
        continue;
      }
      const removed = client.retainResources(resourceIds);
      if (removed.length > 0) {
        log.debug("Removed resources not in init", { cid: clientId, removed: removed.join(",") });
      }
      if (client.isEmpty()) this.#dropClient(client, now);
    }
    for (const a of msg.authorizations) {
      const client = this.#clients.get(a.clientId);
      if (!client || !client.updateExpiry(a.resourceId, a.expiresAtUtcMs)) {
        log.debug("Cannot set expiry of an unknown client or resource", {
          cid: a.clientId,
          rid: a.resourceId,
        });
      }
    }
  }

  /** `authorize_flow` (§2.6.2): upsert the connection, then allow access. */
  authorizeFlow(msg: AuthorizeFlowMessage, now: number): AuthorizeFlowResult {
    if (!this.node.hasRelays()) return "no_relays";
    const client = msg.client;
    this.node.upsertConnection(
      client.id,
      client.publicKey,
      client.presharedKey.expose(),
      agentCredentials(msg.gatewayIceCredentials),
      agentCredentials(msg.clientIceCredentials),
      now,
    );
    this.#allowAccess(client.id, client.ipv4, client.ipv6, msg.resource, msg.expiresAtUtcMs);
    return "accepted";
  }

  /**
   * Legacy `request_connection` (§2.6.3): random local ICE credentials, the client's as remote; then
   * access, with the DNS NAT for `payload.domain` when present (`resolved`: its addresses).
   */
  requestConnection(
    msg: RequestConnectionMessage,
    resolved: readonly string[] | null,
    now: number,
  ): RequestConnectionResult {
    if (!this.node.hasRelays()) return { type: "no_relays" };
    const c = msg.client;
    const local = { ufrag: this.#randomText(LEGACY_UFRAG_LEN), pwd: this.#randomText(LEGACY_PWD_LEN) };
    this.node.upsertConnection(
      c.id,
      c.peer.publicKey,
      c.peer.presharedKey.expose(),
      local,
      agentCredentials(c.iceParameters),
      now,
    );
    try {
      const client = this.#allowAccess(c.id, c.peer.ipv4, c.peer.ipv6, msg.resource, msg.expiresAtUtcMs);
      if (c.domain) {
        const r = client.setupDnsNat(msg.resource.id, c.domain.name, c.domain.proxyIps, resolved ?? [], now);
        if (r !== SetupDnsNatResult.Ok) throw new Error(`DNS resource NAT not set up (${r})`);
      }
    } catch (e) {
      const existing = this.#clients.get(c.id);
      if (existing) this.#forgetClient(existing);
      return { type: "failed", reason: (e as Error).message };
    }
    return { type: "accepted", iceCredentials: { username: local.ufrag, password: local.pwd } };
  }

  /** Legacy `allow_access` (§2.6.4). Throws when the TUN is not configured yet. */
  allowAccess(msg: AllowAccessMessage, resolved: readonly string[] | null, now: number): void {
    const client = this.#allowAccess(
      msg.clientId,
      msg.clientIpv4,
      msg.clientIpv6,
      msg.resource,
      msg.expiresAtUtcMs,
    );
    if (msg.payload) {
      const r = client.setupDnsNat(
        msg.resource.id,
        msg.payload.name,
        msg.payload.proxyIps,
        resolved ?? [],
        now,
      );
      if (r !== SetupDnsNatResult.Ok) {
        log.warn("Failed to setup DNS resource NAT", { cid: msg.clientId, result: r });
      }
    }
  }

  /** `reject_access` (§2.6.5): remove the resource; drop the client state when none is left. */
  rejectAccess(msg: RejectAccessMessage, now: number): void {
    const client = this.#clients.get(msg.clientId);
    if (!client) return;
    client.removeResource(msg.resourceId);
    if (client.isEmpty()) this.#dropClient(client, now);
  }

  /** `ice_candidates` (§2.6.6). */
  addIceCandidates(msg: IceCandidatesMessage, now: number): void {
    for (const c of msg.candidates) this.node.addRemoteCandidate(msg.clientId, c, now);
  }

  /** `invalidate_ice_candidates` (§2.6.6). */
  removeIceCandidates(msg: IceCandidatesMessage, now: number): void {
    for (const c of msg.candidates) this.node.removeRemoteCandidate(msg.clientId, c, now);
  }

  /** `relays_presence` (§2.6.7). */
  updateRelays(msg: RelaysPresenceMessage, now: number): void {
    this.node.updateRelays(msg.disconnectedIds, relayInfos(msg.connected), now);
  }

  /** `resource_updated` (§2.6.8): new filters for every client holding the resource. */
  updateResource(resource: ResourceDescription): void {
    for (const client of this.#clients.values()) {
      if (client.hasResource(resource.id)) client.updateFilters(resource);
    }
  }

  /** `access_authorization_expiry_updated` (§2.6.9). */
  updateExpiry(msg: ExpiryUpdatedMessage): void {
    const client = this.#clients.get(msg.clientId);
    if (!client) {
      log.warn("Failed to update expiry of access authorization: unknown client", { cid: msg.clientId });
      return;
    }
    if (!client.updateExpiry(msg.resourceId, msg.expiresAtUtcMs)) {
      log.debug("Cannot update expiry of an unknown resource", { cid: msg.clientId, rid: msg.resourceId });
    }
  }

  /**
   * The answer to a `resolve` event: sets up the DNS-resource NAT and answers the client with a
   * DomainStatus (§4.6, §4.7). `ips` null = resolution failed; `dropped` = forget silently.
   */
  handleDnsResolved(requestId: number, ips: readonly string[] | null, dropped: boolean, now: number): void {
    const p = this.#pending.get(requestId);
    if (!p) return;
    this.#pending.delete(requestId);
    if (dropped) return;
    const client = this.#clients.get(p.clientId);
    let status: NatStatus = "Inactive";
    if (client && ips !== null) {
      const r = client.setupDnsNat(p.resourceId, p.domain, p.proxyIps, ips, now);
      if (r === SetupDnsNatResult.Ok) status = "Active";
      else log.warn("Failed to setup DNS resource NAT", { cid: p.clientId, domain: p.domain, result: r });
    } else if (ips === null) {
      log.warn("Failed to setup DNS resource NAT: resolution failed", { cid: p.clientId, domain: p.domain });
    }
    this.#sendDomainStatus(p.clientId, p.resourceId, p.domain, status, now);
  }

  /** Sends the p2p `goodbye` to every client with a connection (§9): on shutdown. */
  goodbyeAll(now: number): void {
    for (const cid of this.node.connectionIds()) this.#sendGoodbye(cid, now);
  }

  // --- data path ------------------------------------------------------------------------------

  handleDatagram(
    buf: Uint8Array,
    off: number,
    len: number,
    from: PeerAddrView,
    local: PeerAddrView,
    out: CoreOut,
    now: number,
  ): CoreResult {
    out.clear();
    const nodeOut = this.#nodeOut;
    const r = this.node.decapsulate(buf, off, len, from, local, now, nodeOut);
    if (r === P2pResult.Drop) return drop(out, DropLayer.Core, nodeOut.dropReason);
    if (r !== P2pResult.WriteToTunnel) return CoreResult.Done;
    const client = this.#clients.get(nodeOut.cid);
    if (client === undefined) {
      if (log.debugEnabled) log.debug("No peer for connection", { cid: nodeOut.cid });
      return drop(out, DropLayer.Policy, PolicyResult.Filtered);
    }
    const policy = this.#policy;
    const p = client.translateOutbound(nodeOut.buf, nodeOut.off, nodeOut.len, now, policy);
    if (p === PolicyResult.Forward) {
      out.buf = nodeOut.buf;
      out.off = nodeOut.off;
      out.len = policy.len;
      return CoreResult.ToTun;
    }
    if (p === PolicyResult.P2pControl) {
      this.#handleP2pControl(client, nodeOut.buf, nodeOut.off, nodeOut.len, now);
      return CoreResult.Done;
    }
    this.policyDrops[p] = this.policyDrops[p]! + 1;
    if (policy.replyLen > 0) {
      // The ICMP error goes back into the tunnel to the client.
      this.#encapsulateToTransmit(client.id, policy.replyBuf, policy.replyOff, policy.replyLen, now);
    }
    return drop(out, DropLayer.Policy, p);
  }

  handleTunPacket(buf: Uint8Array, off: number, len: number, out: CoreOut, now: number): CoreResult {
    out.clear();
    const client = this.#clientForDestination(buf, off, len);
    if (client === undefined) return drop(out, DropLayer.Policy, PolicyResult.NotClientDestination);
    const policy = this.#policy;
    const p = client.translateInbound(buf, off, len, now, policy);
    let src = buf;
    let srcOff = off;
    let srcLen = policy.len;
    if (p === PolicyResult.ForwardRebuilt) {
      src = policy.replyBuf;
      srcOff = policy.replyOff;
      srcLen = policy.replyLen;
    } else if (p !== PolicyResult.Forward) {
      this.policyDrops[p] = this.policyDrops[p]! + 1;
      return drop(out, DropLayer.Policy, p);
    }
    const nodeOut = this.#nodeOut;
    const r = this.node.encapsulate(client.id, src, srcOff, srcLen, now, nodeOut);
    if (r === P2pResult.Drop) return drop(out, DropLayer.Core, nodeOut.dropReason);
    if (r !== P2pResult.WriteToNetwork) return CoreResult.Done;
    out.buf = nodeOut.buf;
    out.off = nodeOut.off;
    out.len = nodeOut.len;
    out.dst = nodeOut.dst;
    out.src = nodeOut.src;
    return CoreResult.ToNetwork;
  }

  handleTimeout(now: number): void {
    if (this.node.pollTimeout() <= now) this.node.handleTimeout(now);
    if (now >= this.#nextExpiryCheckAt) {
      this.#nextExpiryCheckAt = now + EXPIRY_CHECK_INTERVAL_MS;
      const utcNowMs = this.#wallClock(now);
      for (const client of [...this.#clients.values()]) {
        client.handleTimeout(now);
        const { removed, empty } = client.expire(utcNowMs);
        if (removed.length > 0 && empty) this.#dropClient(client, now);
      }
    }
    this.#drainNode();
  }

  pollTimeout(): number {
    const n = this.node.pollTimeout();
    return n < this.#nextExpiryCheckAt ? n : this.#nextExpiryCheckAt;
  }

  pollTransmit(): CoreTransmit | undefined {
    this.#drainNode();
    return this.#transmits.shift();
  }

  /** Events for the main thread: ICE candidates per client, DNS resolution requests. */
  pollEvent(): GatewayEvent | undefined {
    this.#drainNode();
    return this.#events.shift();
  }

  // --- internals ------------------------------------------------------------------------------

  #allowAccess(
    clientId: string,
    ipv4: string,
    ipv6: string,
    resource: ResourceDescription,
    expiresAtUtcMs: number | null,
  ): ClientOnGateway {
    if (this.#tunIpv4 === null || this.#tunIpv6 === null) {
      throw new Error("TUN device not configured: the portal's init has not arrived yet");
    }
    let client = this.#clients.get(clientId);
    if (client === undefined) {
      client = new ClientOnGateway(clientId, { ipv4, ipv6 }, { ipv4: this.#tunIpv4, ipv6: this.#tunIpv6 });
      this.#clients.set(clientId, client);
      this.#byIpv4.set(ipv4Key(client.clientIpv4), client);
      this.#byIpv6.set(ipv6Key(client.clientIpv6), client);
    }
    client.addResource(resource, expiresAtUtcMs);
    return client;
  }

  /** The client lost its last authorization: forget its state and say goodbye (§4.4, §9). */
  #dropClient(client: ClientOnGateway, now: number): void {
    log.info("Client has no resources left", { cid: client.id });
    this.#forgetClient(client);
    this.#sendGoodbye(client.id, now);
  }

  #forgetClient(client: ClientOnGateway): void {
    this.#clients.delete(client.id);
    if (this.#byIpv4.get(ipv4Key(client.clientIpv4)) === client) {
      this.#byIpv4.delete(ipv4Key(client.clientIpv4));
    }
    if (this.#byIpv6.get(ipv6Key(client.clientIpv6)) === client) {
      this.#byIpv6.delete(ipv6Key(client.clientIpv6));
    }
  }

  /** Hot path: the client owning the packet's destination (tunnel ranges only, §4.3 step 1). */
  #clientForDestination(buf: Uint8Array, off: number, len: number): ClientOnGateway | undefined {
    if (len < 20) return undefined;
    const v = buf[off]! >> 4;
    if (v === 4) {
      // 100.64.0.0/11
      if (buf[off + 16] !== 100 || (buf[off + 17]! & 0xe0) !== 64) return undefined;
      const key = (buf[off + 16]! << 24) | (buf[off + 17]! << 16) | (buf[off + 18]! << 8) | buf[off + 19]!;
      return this.#byIpv4.get(key);
    }
    if (v === 6 && len >= 40) {
      // fd00:2021:1111::/107: bytes 0-12 fixed, then the top 3 bits of byte 13.
      const d = off + 24;
      if (
        buf[d] !== 0xfd || buf[d + 1] !== 0x00 || buf[d + 2] !== 0x20 || buf[d + 3] !== 0x21 ||
        buf[d + 4] !== 0x11 || buf[d + 5] !== 0x11 || buf[d + 6] !== 0 || buf[d + 7] !== 0 ||
        buf[d + 8] !== 0 || buf[d + 9] !== 0 || buf[d + 10] !== 0 || buf[d + 11] !== 0 ||
        buf[d + 12] !== 0 || (buf[d + 13]! & 0xe0) !== 0
      ) {
        return undefined;
      }
      const key = (buf[d + 12]! << 24) | (buf[d + 13]! << 16) | (buf[d + 14]! << 8) | buf[d + 15]!;
      return this.#byIpv6.get(key);
    }
    return undefined;
  }

  #handleP2pControl(client: ClientOnGateway, buf: Uint8Array, off: number, len: number, now: number): void {
    let msg;
    try {
      msg = decodeP2pControl(buf, off, len);
    } catch (e) {
      if (e instanceof P2pControlError) {
        log.debug("Ignoring malformed p2p control packet", { cid: client.id, error: e.message });
        return;
      }
      throw e;
    }
    if (msg.type === "Goodbye") {
      log.debug("Client said goodbye", { cid: client.id });
      this.node.closeConnection(client.id, now);
      return;
    }
    if (msg.type !== "AssignedIps") {
      log.debug("Ignoring p2p control event", { cid: client.id, type: msg.type });
      return;
    }
    if (!client.hasResource(msg.resource)) {
      log.warn("Received AssignedIps for a resource the client is not authorized for", {
        cid: client.id,
        rid: msg.resource,
      });
      this.#sendDomainStatus(client.id, msg.resource, msg.domain, "Inactive", now);
      return;
    }
    const requestId = this.#nextRequestId++;
    this.#pending.set(requestId, {
      clientId: client.id,
      resourceId: msg.resource,
      domain: msg.domain,
      proxyIps: msg.proxyIps,
    });
    this.#events.push({ type: "resolve", requestId, domain: msg.domain });
  }

  #sendDomainStatus(cid: string, resource: string, domain: string, status: NatStatus, now: number): void {
    const n = buildDomainStatusPacket(this.#scratch, HEADROOM, { resource, domain, status });
    if (n > 0) this.#encapsulateToTransmit(cid, this.#scratch, HEADROOM, n, now);
  }

  #sendGoodbye(cid: string, now: number): void {
    const n = buildGoodbyePacket(this.#scratch, HEADROOM);
    if (n > 0) this.#encapsulateToTransmit(cid, this.#scratch, HEADROOM, n, now);
  }

  /** Control path: encrypts a packet for `cid` and queues it as a transmit (copied). */
  #encapsulateToTransmit(cid: string, buf: Uint8Array, off: number, len: number, now: number): void {
    const nodeOut = this.#nodeOut;
    if (this.node.encapsulate(cid, buf, off, len, now, nodeOut) !== P2pResult.WriteToNetwork) return;
    this.#transmits.push({
      payload: nodeOut.buf.slice(nodeOut.off, nodeOut.off + nodeOut.len),
      dst: copyAddr(nodeOut.dst!),
      src: nodeOut.src === null ? null : copyAddr(nodeOut.src),
    });
  }

  /** Moves the node's transmits and events into ours (control path). */
  #drainNode(): void {
    for (let t = this.node.pollTransmit(); t !== undefined; t = this.node.pollTransmit()) {
      this.#transmits.push({
        payload: t.payload,
        dst: PeerAddrView.fromSocketAddr(t.dst),
        src: t.src === null ? null : PeerAddrView.fromSocketAddr(t.src),
      });
    }
    let fresh: Map<string, string[]> | null = null;
    let stale: Map<string, string[]> | null = null;
    for (let e = this.node.pollEvent(); e !== undefined; e = this.node.pollEvent()) {
      switch (e.type) {
        case "NewIceCandidate":
          fresh ??= new Map();
          (fresh.get(e.cid) ?? fresh.set(e.cid, []).get(e.cid)!).push(e.candidate);
          break;
        case "InvalidateIceCandidate":
          stale ??= new Map();
          (stale.get(e.cid) ?? stale.set(e.cid, []).get(e.cid)!).push(e.candidate);
          break;
        case "ConnectionFailed":
          log.info("Connection failed", { cid: e.cid, reason: e.reason });
          break;
        case "ConnectionEstablished":
          log.info("Connection established", { cid: e.cid });
          break;
        case "ConnectionClosed":
          break;
      }
    }
    if (fresh) {
      for (const [clientId, candidates] of fresh) {
        this.#events.push({ type: "tunnel", event: { type: "new_ice_candidates", clientId, candidates } });
      }
    }
    if (stale) {
      for (const [clientId, candidates] of stale) {
        this.#events.push({
          type: "tunnel",
          event: { type: "invalidated_ice_candidates", clientId, candidates },
        });
      }
    }
  }

  #randomText(len: number): string {
    let s = "";
    for (let i = 0; i < len; i++) s += LEGACY_ICE_CHARS[this.#rng.nextU32() % LEGACY_ICE_CHARS.length];
    return s;
  }
}

function drop(out: CoreOut, layer: DropLayer, reason: number): CoreResult {
  out.dropLayer = layer;
  out.dropReason = reason;
  return CoreResult.Drop;
}

function agentCredentials(c: IceCredentials): AgentCredentials {
  return { ufrag: c.username, pwd: c.password.expose() };
}

function relayInfos(relays: InitMessage["relays"]): RelayInfo[] {
  const out: RelayInfo[] = [];
  for (const r of relays) {
    if (r.type !== "turn") continue; // STUN-only relays are accepted but unused (§2.6)
    out.push({
      id: r.id,
      ...(r.addrV4 ? { v4: r.addrV4 } : {}),
      ...(r.addrV6 ? { v6: r.addrV6 } : {}),
      username: r.username,
      password: r.password.expose(),
    });
  }
  return out;
}

function copyAddr(a: PeerAddrView): PeerAddrView {
  return new PeerAddrView().copyFrom(a);
}

/** Map key of a client's tunnel IPv4 (as the hot path computes it from header bytes). */
function ipv4Key(ip: string): number {
  const b = parseIp(ip)!;
  return (b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!;
}

/** Map key of a client's tunnel IPv6: its low 32 bits (unique inside fd00:2021:1111::/107). */
function ipv6Key(ip: string): number {
  const b = parseIp(ip)!;
  return (b[12]! << 24) | (b[13]! << 16) | (b[14]! << 8) | b[15]!;
}
