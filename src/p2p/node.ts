/**
 * The sans-IO p2p node (Firezone snownet `Node`): ICE, TURN and WireGuard multiplexed on one UDP socket
 * per IP family (spec §3).
 *
 * The gateway runs it as a **server** (ICE controlled, WireGuard responder: it never starts a handshake
 * when a pair is nominated). The **client** role (ICE controlling, nominates, initiates the WireGuard
 * handshake once nominated) serves tests and simulations.
 *
 * Inputs: {@link P2pNode.upsertConnection}, {@link P2pNode.addRemoteCandidate},
 * {@link P2pNode.removeRemoteCandidate}, {@link P2pNode.updateRelays}, {@link P2pNode.closeConnection},
 * {@link P2pNode.decapsulate} (every datagram), {@link P2pNode.encapsulate} (every IP packet for a peer),
 * {@link P2pNode.handleTimeout}. Outputs: {@link P2pNode.pollTransmit}, {@link P2pNode.pollEvent},
 * {@link P2pNode.pollTimeout}.
 *
 * ## Buffer contract with the I/O layer
 *
 * - **Receive** (`decapsulate`): the datagram is `buf[off, off + len)`; no headroom is needed. It is
 *   processed in place: ChannelData is unwrapped and WireGuard data decrypted inside that range, and a
 *   `WriteToTunnel` result points into it. Keep the bytes untouched until the result is consumed.
 * - **Send** (`encapsulate`): the IP packet is `buf[off, off + len)` with at least
 *   {@link ENCAPSULATE_HEADROOM} (20) bytes before it and {@link ENCAPSULATE_TAILROOM} (31) bytes after
 *   it (`off + len + 31 <= buf.length`). It is encrypted in place; a `WriteToNetwork` result is
 *   `buf[out.off, out.off + out.len)`: at `off - 16` when direct, at `off - 20` (ChannelData header in
 *   front) when relayed.
 * - Addresses come in as reusable {@link PeerAddrView}s (`from`: the datagram's source; `local`: the
 *   local address it arrived on, i.e. the destination IP from `IP_PKTINFO` and the socket's port). The
 *   node converts them to {@link SocketAddr} only on control paths. `out.src` / `out.dst` are cached
 *   per connection / relay: read them, never mutate them.
 * - Everything else (STUN, TURN, handshakes, keepalives, messages buffered before nomination) is a
 *   {@link Transmit} from {@link P2pNode.pollTransmit} with its own payload.
 *
 * @example
 * ```ts
 * const node = new P2pNode({ role: "server", privateKey, backend, rng, now, wallClock });
 * node.updateRelays([], [{ id: "relay-1", v4: relayAddr, username, password }], now);
 * node.upsertConnection(clientId, clientKey, psk, gatewayCreds, clientCreds, now);
 * // per datagram (from/local are reusable views filled by the UDP layer)
 * switch (node.decapsulate(rx, off, len, from, local, now, out)) {
 *   case P2pResult.WriteToTunnel: tun.write(out.buf, out.off, out.len); break;
 *   case P2pResult.Drop: counters[out.dropReason]++; break;
 * }
 * // per IP packet read from TUN at slot offset 20
 * if (node.encapsulate(clientId, slot, 20, n, now, out) === P2pResult.WriteToNetwork) {
 *   udp.send(out.buf, out.off, out.len, out.src, out.dst);
 * }
 * for (let t = node.pollTransmit(); t; t = node.pollTransmit()) udp.sendTo(t.payload, t.src, t.dst);
 * for (let e = node.pollEvent(); e; e = node.pollEvent()) portal.handle(e);
 * if (now >= node.pollTimeout()) node.handleTimeout(now);
 * ```
 *
 * @module
 */

import type { CryptoBackend } from "../crypto/backend.ts";
import { IceAgent, type IceCredentials, type IceState, type IceTransmit } from "../ice/agent.ts";
import {
  type Candidate,
  equivalentCandidates,
  formatCandidate,
  hostCandidate,
  parseCandidate,
  relayCandidate,
  serverReflexiveCandidate,
} from "../ice/candidate.ts";
import { IDLE_STUN_TIMING } from "../ice/stun_timing.ts";
import { logger } from "../log.ts";
import type { Rng } from "../rng.ts";
import {
  type Allocation,
  RelayKind,
  sessionIdFromPublicKey,
  type TurnCandidate,
} from "../turn/allocation.ts";
import { Allocations } from "../turn/allocations.ts";
import { RingQueue } from "../util/ring_queue.ts";
import { CHANNEL_DATA_HEADER_LEN, channelDataChannel } from "../wire/channel_data.ts";
import { MAX_FZ_PAYLOAD_LEN, TURN_SERVER_PORT } from "../wire/demux.ts";
import { formatSocketAddr, sameSocketAddr, type SocketAddr } from "../wire/ip_addr.ts";
import { looksLikeStun, parseStun, type StunMessage } from "../wire/stun.ts";
import {
  readU32Le,
  WG_COOKIE_RECEIVER_OFF,
  WG_DATA_RECEIVER_OFF,
  WG_HANDSHAKE_INIT_LEN,
  WG_RESP_RECEIVER_OFF,
  WG_TYPE_COOKIE_REPLY,
  WG_TYPE_DATA,
  WG_TYPE_HANDSHAKE_INIT,
  WG_TYPE_HANDSHAKE_RESPONSE,
  wgMessageType,
} from "../wire/wireguard.ts";
import { parseHandshakeAnon, type WallClock } from "../wireguard/handshake.ts";
import { StaticIdentity } from "../wireguard/identity.ts";
import { IndexAllocator } from "../wireguard/index_allocator.ts";
import { HandshakeRateLimiter } from "../wireguard/rate_limiter.ts";
import { WgOut, WgResult } from "../wireguard/result.ts";
import { Tunnel, TUNNEL_SCRATCH_HEADROOM } from "../wireguard/tunnel.ts";
import { BUFFERED_HEADROOM, CONN_STATE_NAMES, Connection, ConnState, hex } from "./connection.ts";
import { FailReason, type NodeEvent } from "./events.ts";
import { PeerAddrView } from "./peer_addr.ts";
import { RelayEntry } from "./relay_entry.ts";
import {
  ENCAPSULATE_HEADROOM,
  ENCAPSULATE_TAILROOM,
  type NodeOut,
  P2pDrop,
  P2pResult,
  type Transmit,
} from "./transmit.ts";

const log = logger("snownet");

/** Upper bound of `handleTimeout` rounds on one tunnel per call (each may emit one message). */
const MAX_WG_TIMER_ROUNDS = 16;
const WG_KEY_LEN = 32;

/** `server`: the gateway (ICE controlled, WireGuard responder). `client`: tests and simulations. */
export type NodeRole = "server" | "client";

/** One relay as announced by the portal (a dual-stack relay has both addresses). */
export interface RelayInfo {
  readonly id: string;
  readonly v4?: SocketAddr;
  readonly v6?: SocketAddr;
  readonly username: string;
  readonly password: string;
  /** Defaults to "firezone". */
  readonly realm?: string;
}

/** Constructor options of {@link P2pNode}. */
export interface P2pNodeOptions {
  readonly role: NodeRole;
  /** Our X25519 static private key (32 bytes). */
  readonly privateKey: Uint8Array;
  readonly backend: CryptoBackend;
  /** Randomness for ICE tie-breakers and transaction ids, TURN, WireGuard indices and ephemerals, relay choice. */
  readonly rng: Rng;
  readonly now: number;
  /** Wall clock for WireGuard TAI64N timestamps. */
  readonly wallClock: WallClock;
  /** TURN dialect of the relays (default: Firezone relays, exactly upstream). */
  readonly relayKind?: RelayKind;
  /** Handshake messages per second before cookies are demanded (default 100). */
  readonly handshakeRateLimitPerS?: number;
}

/** Outcome of {@link P2pNode.upsertConnection}. */
export type UpsertOutcome =
  /** A new connection (there was none for this id). */
  | "created"
  /** The existing connection had other credentials, key or PSK: replaced (new agent, new index). */
  | "replaced"
  /** Identical parameters: the connection was kept, moved out of idle, its candidates re-signalled. */
  | "reused";

/** The nominated socket of a connection, as reported by {@link P2pNode.connectionInfo}. */
export type PeerSocketInfo =
  | { readonly kind: "direct"; readonly src: SocketAddr; readonly dst: SocketAddr }
  | { readonly kind: "relay"; readonly relayId: string; readonly peer: SocketAddr };

/** A snapshot of one connection (diagnostics and tests; allocates). */
export interface ConnectionInfo {
  readonly cid: string;
  readonly state: (typeof CONN_STATE_NAMES)[number];
  readonly iceState: IceState;
  /** True while the idle ICE timings (25 s / 25 s / 4) are in force. */
  readonly idleTimings: boolean;
  /** The 24-bit WireGuard connection index. */
  readonly wgIndex: number;
  readonly selectedRelay: string | null;
  readonly peerSocket: PeerSocketInfo | null;
  readonly established: boolean;
  /** WireGuard messages waiting for nomination. */
  readonly buffered: number;
  readonly localCandidates: readonly Candidate[];
  readonly remoteCandidates: readonly Candidate[];
}

/** The p2p node. See the module documentation. */
export class P2pNode {
  readonly role: NodeRole;
  readonly #backend: CryptoBackend;
  readonly #rng: Rng;
  readonly #wallClock: WallClock;
  readonly #identity: StaticIdentity;
  readonly #rateLimiter: HandshakeRateLimiter;
  readonly #indices: IndexAllocator;
  readonly #allocations: Allocations;
  /** Live relays, for the data path (rebuilt when the allocation set changes). */
  #relays: RelayEntry[] = [];
  /** Set by {@link #relayFrom}: the relay address the datagram came from. */
  #matchedServer: SocketAddr | null = null;

  readonly #byCid = new Map<string, Connection>();
  /** Hot path: `receiverIndex >>> 8` (24 bits, a small integer) → connection. */
  readonly #byIndex = new Map<number, Connection>();
  /** Handshake initiations: hex of the initiator's static key → connection. */
  readonly #byKey = new Map<string, Connection>();

  readonly #transmits = new RingQueue<Transmit>(32);
  readonly #events = new RingQueue<NodeEvent>(32);
  readonly #wgOut = new WgOut();
  /** Handshake responses and cookie replies land here (headroom for a ChannelData header). */
  readonly #scratch = new Uint8Array(TUNNEL_SCRATCH_HEADROOM + WG_HANDSHAKE_INIT_LEN);

  /**
   * @throws TypeError when the private key is not 32 bytes
   */
  constructor(options: P2pNodeOptions) {
    this.role = options.role;
    this.#backend = options.backend;
    this.#rng = options.rng;
    this.#wallClock = options.wallClock;
    this.#identity = new StaticIdentity(options.backend, options.privateKey);
    this.#rateLimiter = new HandshakeRateLimiter(
      options.backend,
      this.#identity,
      options.rng,
      options.now,
      options.handshakeRateLimitPerS,
    );
    this.#indices = new IndexAllocator(options.rng);
    this.#allocations = new Allocations({
      sessionId: sessionIdFromPublicKey(this.#identity.publicKey),
      rng: options.rng,
      relayKind: options.relayKind ?? RelayKind.Firezone,
    });
  }

  /** Our X25519 static public key (32 bytes). */
  get publicKey(): Uint8Array {
    return this.#identity.publicKey;
  }

  /** Ids of the current connections. */
  connectionIds(): string[] {
    return [...this.#byCid.keys()];
  }

  /** True when at least one TURN allocation exists (without one the portal layer forces a reconnect, §2.4). */
  hasRelays(): boolean {
    return this.#allocations.size > 0;
  }

  /** Ids of the known relays. */
  relayIds(): string[] {
    return this.#allocations.ids();
  }

  // --- control inputs -------------------------------------------------------------------------

  /**
   * Creates or updates the connection `cid` (spec §3.3 `upsert_connection`). Identical local and remote
   * ICE credentials, remote key and PSK keep the connection (moved out of idle, local candidates
   * signalled again); anything else replaces it with a new ICE agent and WireGuard tunnel (new index).
   * A new connection takes one relay at random and offers the host and srflx candidates of every
   * allocation plus the relay candidates of that relay.
   *
   * @param remotePublicKey the peer's X25519 static key (32 bytes)
   * @param presharedKey the WireGuard PSK (32 bytes)
   * @throws TypeError for keys that are not 32 bytes
   */
  upsertConnection(
    cid: string,
    remotePublicKey: Uint8Array,
    presharedKey: Uint8Array,
    local: IceCredentials,
    remote: IceCredentials,
    now: number,
  ): UpsertOutcome {
    checkKey("remote public key", remotePublicKey);
    checkKey("preshared key", presharedKey);
    const existing = this.#byCid.get(cid);
    if (
      existing !== undefined && existing.state !== ConnState.Failed &&
      existing.matches(remotePublicKey, presharedKey, local, remote)
    ) {
      log.debug("Reusing existing connection", { cid });
      this.#wake(existing, now);
      this.#signalLocalCandidates(existing);
      return "reused";
    }
    if (existing !== undefined) this.#remove(existing);

    const agent = new IceAgent({ controlling: this.role === "client", local, remote, rng: this.#rng, now });
    const tunnel = new Tunnel({
      backend: this.#backend,
      identity: this.#identity,
      peerStaticPublic: remotePublicKey,
      presharedKey,
      index: this.#indices.next(),
      rateLimiter: this.#rateLimiter,
      rng: this.#rng,
      wallClock: this.#wallClock,
    }, now);
    const selected = this.#allocations.sample(this.#rng);
    const conn = new Connection({
      cid,
      agent,
      tunnel,
      remotePublicKey,
      presharedKey,
      local,
      remote,
      selectedRelay: selected?.[0] ?? null,
      now,
    });
    this.#byCid.set(cid, conn);
    this.#byIndex.set(conn.index, conn);
    this.#byKey.set(conn.remoteKeyHex, conn);
    if (selected === undefined) {
      log.warn("No TURN servers connected; connection may fail to establish", { cid });
    }

    for (const c of this.#allocations.sharedCandidates()) this.#addLocal(conn, c);
    if (selected !== undefined) {
      for (const c of selected[1].relayCandidates()) this.#addLocal(conn, c);
    }
    agent.handleTimeout(now);
    this.#drainAgent(conn, now);
    log.info(existing === undefined ? "Created new connection" : "Replaced existing connection", {
      cid,
      relay: conn.selectedRelay,
    });
    return existing === undefined ? "created" : "replaced";
  }

  /**
   * Adds a remote candidate (a string in the portal's format, or a parsed one). Unparsable strings and
   * unknown connections are ignored (false). For srflx/relay/prflx candidates a channel to the
   * candidate's address is bound on the connection's relay at once (spec §3.2). Switches an idle
   * connection back to active timings.
   */
  addRemoteCandidate(cid: string, candidate: string | Candidate, now: number): boolean {
    const conn = this.#byCid.get(cid);
    if (conn === undefined || conn.state === ConnState.Failed) {
      log.debug("Unknown connection, ignoring remote candidate", { cid });
      return false;
    }
    const c = typeof candidate === "string" ? parseCandidate(candidate) : candidate;
    if (c === null) {
      log.debug("Failed to parse candidate", { cid, candidate });
      return false;
    }
    conn.agent.addRemoteCandidate(c, now);
    this.#wake(conn, now);
    if (c.kind !== "host") {
      if (!conn.channelPeers.some((p) => sameSocketAddr(p, c.addr))) conn.channelPeers.push(c.addr);
      const allocation = conn.selectedRelay === null ? undefined : this.#allocations.get(conn.selectedRelay);
      if (allocation !== undefined) allocation.bindChannel(c.addr, now);
      else log.debug("No relay selected for connection", { cid });
    }
    // The new pairs are checked at the next handleTimeout (pollTimeout says: now).
    this.#drainAgent(conn, now);
    return true;
  }

  /** Removes a remote candidate (portal `invalidate_ice_candidates`). False when unknown. */
  removeRemoteCandidate(cid: string, candidate: string | Candidate, now: number): boolean {
    const conn = this.#byCid.get(cid);
    if (conn === undefined || conn.state === ConnState.Failed) return false;
    const c = typeof candidate === "string" ? parseCandidate(candidate) : candidate;
    if (c === null) {
      log.debug("Failed to parse candidate", { cid, candidate });
      return false;
    }
    const removed = conn.agent.invalidateRemoteCandidate(c);
    const i = conn.channelPeers.findIndex((p) => sameSocketAddr(p, c.addr));
    if (i >= 0) conn.channelPeers.splice(i, 1);
    // We may have removed the last candidate: re-evaluate the nomination state now.
    conn.agent.handleTimeout(now);
    this.#drainAgent(conn, now);
    return removed;
  }

  /**
   * Applies a relay-list change (spec §2.6.7, §3.5): removes `removeIds` (their relay candidates are
   * invalidated towards every connection), adds or replaces `add` (unchanged relays are kept), then
   * refreshes every other known allocation. Connections whose relay disappeared pick another one at
   * random and signal its candidates.
   */
  updateRelays(removeIds: readonly string[], add: readonly RelayInfo[], now: number): void {
    for (const id of removeIds) {
      const allocation = this.#allocations.remove(id);
      if (allocation === undefined) {
        log.debug("Cannot delete unknown allocation", { rid: id });
        continue;
      }
      this.#retire(allocation, now);
      log.info("Removed TURN server", { rid: id });
    }
    const added = new Set<string>();
    for (const relay of add) {
      if (relay.v4 === undefined && relay.v6 === undefined) {
        log.warn("Ignoring relay without address", { rid: relay.id });
        continue;
      }
      added.add(relay.id);
      const result = this.#allocations.upsert({
        id: relay.id,
        server: {
          ...(relay.v4 !== undefined ? { v4: relay.v4 } : {}),
          ...(relay.v6 !== undefined ? { v6: relay.v6 } : {}),
        },
        username: relay.username,
        password: relay.password,
        ...(relay.realm !== undefined ? { realm: relay.realm } : {}),
      }, now);
      if (result.type === "replaced") this.#retire(result.previous, now);
      if (result.type === "skipped") log.info("Skipping known TURN server", { rid: relay.id });
      else {log.info(result.type === "added" ? "Added new TURN server" : "Replaced TURN server", {
          rid: relay.id,
        });}
    }
    this.#allocations.refreshAll(now, added);
    this.#rebuildRelays();
    this.#drainAllocations(now);
    this.#reselectRelays(now);
  }

  /** Closes and removes a connection; emits `ConnectionClosed`. False when unknown. */
  closeConnection(cid: string, _now: number): boolean {
    const conn = this.#byCid.get(cid);
    if (conn === undefined) return false;
    this.#remove(conn);
    this.#events.push({ type: "ConnectionClosed", cid });
    log.info("Closed connection", { cid });
    return true;
  }

  // --- data path ------------------------------------------------------------------------------

  /**
   * Hot path: one datagram from the network, demultiplexed in the order of spec §3.4: relay STUN,
   * ChannelData from a relay (unwrapped, then processed further), ICE STUN, WireGuard. Oversized
   * datagrams (> 1316 bytes) are dropped first. No allocation for WireGuard data (direct or relayed).
   *
   * @param from the datagram's source (reusable view)
   * @param local the local address it arrived on (reusable view)
   * @returns `WriteToTunnel` (IP packet in `out`), `Done`, or `Drop` (`out.dropReason`)
   */
  decapsulate(
    buf: Uint8Array,
    off: number,
    len: number,
    from: PeerAddrView,
    local: PeerAddrView,
    now: number,
    out: NodeOut,
  ): P2pResult {
    out.clear();
    if (len > MAX_FZ_PAYLOAD_LEN) return drop(out, P2pDrop.Oversized);
    if (len <= 0) return drop(out, P2pDrop.NotWireGuard);
    let first = buf[off]!;
    let p = off;
    let n = len;
    let peer: SocketAddr | null = null;
    let relayAddr: SocketAddr | null = null;

    // Step 1: traffic from a relay (source port 3478 or a known relay socket).
    if (first <= 0x03 || (first >= 0x40 && first <= 0x4f)) {
      const relay = this.#relayFrom(from);
      if (relay !== null || from.port === TURN_SERVER_PORT) {
        if (first <= 0x03) {
          const parsed = looksLikeStun(buf, off, len) ? parseStun(buf, off, len) : null;
          if (parsed !== null && parsed.ok) {
            if (relay === null) return drop(out, P2pDrop.UnknownRelay);
            relay.allocation.handleInput(this.#matchedServer!, local.toSocketAddr(), parsed.msg, now);
            this.#drainAllocations(now);
            return P2pResult.Done;
          }
          // Decode failure: continue with the original bytes.
        } else if (channelDataChannel(buf, off, len) >= 0) {
          if (relay === null) return drop(out, P2pDrop.UnknownRelay);
          const d = relay.allocation.decapsulate(this.#matchedServer!, buf, off, len, now);
          if (d === null) return drop(out, P2pDrop.UnknownChannel);
          p = d.payloadOff;
          n = d.payloadLen;
          peer = d.peer;
          relayAddr = d.relayAddr;
          if (n <= 0) return drop(out, P2pDrop.NotWireGuard);
          first = buf[p]!;
        }
      }
    }

    // Step 2: ICE STUN (for STUN that came through a channel, "to" is our relayed address).
    if (first <= 0x03 && looksLikeStun(buf, p, n)) {
      const parsed = parseStun(buf, p, n);
      if (parsed.ok) {
        return this.#handleIceStun(
          parsed.msg,
          peer ?? from.toSocketAddr(),
          relayAddr ?? local.toSocketAddr(),
          now,
          out,
        );
      }
    }

    // Step 3: WireGuard.
    return this.#handleWireGuard(buf, p, n, from, peer, now, out);
  }

  /**
   * Hot path: encrypts the IP packet `buf[off, off + len)` for connection `cid` (buffer contract in the
   * module documentation). Before a socket is nominated, packets are dropped (`NotConnected`). Without
   * a WireGuard session the tunnel queues the packet and a handshake initiation goes to `pollTransmit`
   * (`Done`). No allocation when the message goes out.
   *
   * @returns `WriteToNetwork` (message in `out`), `Done` (queued), or `Drop` (`out.dropReason`)
   */
  encapsulate(cid: string, buf: Uint8Array, off: number, len: number, now: number, out: NodeOut): P2pResult {
    out.clear();
    const conn = this.#byCid.get(cid);
    if (conn === undefined) return drop(out, P2pDrop.UnknownConnection);
    const state = conn.state;
    if (state !== ConnState.Connected && state !== ConnState.Idle) {
      if (log.debugEnabled) log.debug("No socket nominated yet, dropping packet", { cid });
      return drop(out, P2pDrop.NotConnected);
    }
    if (off < ENCAPSULATE_HEADROOM || off + len + ENCAPSULATE_TAILROOM > buf.length) {
      return drop(out, P2pDrop.BufferTooSmall);
    }
    if (len > 0) {
      conn.lastOutgoingAt = now;
      if (state === ConnState.Idle) this.#wake(conn, now);
    }
    const wg = this.#wgOut;
    const r = conn.tunnel.encapsulate(buf, off, len, wg, now);
    if (r === WgResult.Drop) {
      out.wgDropReason = wg.dropReason;
      return drop(out, P2pDrop.WireGuard);
    }
    if (r !== WgResult.WriteToNetwork) return P2pResult.Done;
    if (wg.messageType !== WG_TYPE_DATA) {
      // A handshake initiation for the queued packet (tunnel-owned buffer).
      this.#sendToPeer(conn, wg.buf, wg.off, wg.len, now);
      return P2pResult.Done;
    }
    const relay = conn.relay;
    if (relay === null) {
      out.buf = buf;
      out.off = wg.off;
      out.len = wg.len;
      out.src = conn.peerSrc;
      out.dst = conn.peerDst;
      return P2pResult.WriteToNetwork;
    }
    const dst = relay.alive ? relay.activeView() : null;
    if (dst === null) return drop(out, P2pDrop.NoAllocation);
    if (relay.allocation.encodeToPeer(conn.peerAddr!, buf, wg.off, wg.len, now) < 0) {
      return drop(out, P2pDrop.NoChannel);
    }
    out.buf = buf;
    out.off = wg.off - CHANNEL_DATA_HEADER_LEN;
    out.len = wg.len + CHANNEL_DATA_HEADER_LEN;
    out.src = null;
    out.dst = dst;
    return P2pResult.WriteToNetwork;
  }

  // --- time and outputs -----------------------------------------------------------------------

  /**
   * Runs every due timer: TURN allocations, ICE agents, the connection rules (10 s without remote
   * candidates, 2 s disconnected grace, idle after 20 s), WireGuard timers (handshake retries,
   * keepalives, expiry). Failed connections are removed and reported.
   */
  handleTimeout(now: number): void {
    this.#allocations.handleTimeout(now);
    this.#drainAllocations(now);
    for (const conn of this.#byCid.values()) {
      if (conn.state !== ConnState.Failed && conn.pollTimeout() <= now) {
        this.#handleConnectionTimeout(conn, now);
      }
    }
    this.#collectFailed();
  }

  /** The earliest instant {@link handleTimeout} has work; Infinity when none. */
  pollTimeout(): number {
    let at = this.#allocations.pollTimeout();
    for (const conn of this.#byCid.values()) {
      const t = conn.pollTimeout();
      if (t < at) at = t;
    }
    return at;
  }

  /** The next control-path datagram: TURN traffic first, then ICE and WireGuard control messages. */
  pollTransmit(): Transmit | undefined {
    const t = this.#allocations.pollTransmit();
    if (t !== undefined) return { src: t.source ?? null, dst: t.destination, payload: t.payload };
    return this.#transmits.shift();
  }

  /** The next event for the parent. */
  pollEvent(): NodeEvent | undefined {
    return this.#events.shift();
  }

  /** A snapshot of a connection, or undefined (diagnostics and tests; allocates). */
  connectionInfo(cid: string): ConnectionInfo | undefined {
    const conn = this.#byCid.get(cid);
    if (conn === undefined) return undefined;
    let peerSocket: PeerSocketInfo | null = null;
    if (conn.isNominated && conn.peerAddr !== null) {
      peerSocket = conn.relay !== null
        ? { kind: "relay", relayId: conn.relay.id, peer: conn.peerAddr }
        : { kind: "direct", src: conn.peerSrc!.toSocketAddr(), dst: conn.peerAddr };
    }
    return {
      cid,
      state: CONN_STATE_NAMES[conn.state],
      iceState: conn.agent.state,
      idleTimings: conn.agent.timing === IDLE_STUN_TIMING,
      wgIndex: conn.index,
      selectedRelay: conn.selectedRelay,
      peerSocket,
      established: conn.established,
      buffered: conn.buffered.length,
      localCandidates: conn.agent.localCandidates(),
      remoteCandidates: conn.agent.remoteCandidates(),
    };
  }

  // --- demultiplexing helpers -----------------------------------------------------------------

  /** Hot path: the relay whose address is `from` (sets {@link #matchedServer}), or null. */
  #relayFrom(from: PeerAddrView): RelayEntry | null {
    const relays = this.#relays;
    for (let i = 0; i < relays.length; i++) {
      const r = relays[i]!;
      if (!r.usesPort(from.port)) continue;
      const server = r.serverMatching(from);
      if (server !== null) {
        this.#matchedServer = server;
        return r;
      }
    }
    return null;
  }

  #handleIceStun(
    msg: StunMessage,
    source: SocketAddr,
    destination: SocketAddr,
    now: number,
    out: NodeOut,
  ): P2pResult {
    for (const conn of this.#byCid.values()) {
      if (conn.state === ConnState.Failed || !conn.agent.acceptsMessage(msg)) continue;
      conn.agent.handlePacket(now, source, destination, msg);
      this.#drainAgent(conn, now);
      return P2pResult.Done;
    }
    if (log.debugEnabled) {
      log.debug("Packet is a STUN message but no agent handled it", {
        from: formatSocketAddr(source),
        agents: this.#byCid.size,
      });
    }
    return drop(out, P2pDrop.UnhandledStun);
  }

  /** Hot path for data messages: routes by receiver index (initiations by static key) and decrypts. */
  #handleWireGuard(
    buf: Uint8Array,
    off: number,
    len: number,
    from: PeerAddrView,
    peer: SocketAddr | null,
    now: number,
    out: NodeOut,
  ): P2pResult {
    const type = wgMessageType(buf, off, len);
    let conn: Connection | undefined;
    switch (type) {
      case WG_TYPE_DATA:
        conn = this.#byIndex.get(readU32Le(buf, off + WG_DATA_RECEIVER_OFF) >>> 8);
        break;
      case WG_TYPE_HANDSHAKE_RESPONSE:
        conn = this.#byIndex.get(readU32Le(buf, off + WG_RESP_RECEIVER_OFF) >>> 8);
        break;
      case WG_TYPE_COOKIE_REPLY:
        conn = this.#byIndex.get(readU32Le(buf, off + WG_COOKIE_RECEIVER_OFF) >>> 8);
        break;
      case WG_TYPE_HANDSHAKE_INIT: {
        const anon = parseHandshakeAnon(this.#backend, this.#identity, buf, off, len);
        if (typeof anon === "number") {
          out.wgDropReason = anon;
          return drop(out, P2pDrop.WireGuard);
        }
        conn = this.#byKey.get(hex(anon.peerStaticPublic));
        break;
      }
      default:
        return drop(out, P2pDrop.NotWireGuard);
    }
    if (conn === undefined || conn.state === ConnState.Failed) return drop(out, P2pDrop.UnknownConnection);

    const wg = this.#wgOut;
    const source = type === WG_TYPE_DATA ? null : (peer ?? from.toSocketAddr());
    const r = conn.tunnel.decapsulate(buf, off, len, source, this.#scratch, TUNNEL_SCRATCH_HEADROOM, wg, now);
    switch (r) {
      case WgResult.WriteToTunnel:
        out.cid = conn.cid;
        out.buf = wg.buf;
        out.off = wg.off;
        out.len = wg.len;
        out.ipVersion = wg.ipVersion;
        conn.lastIncomingAt = now;
        if (conn.state === ConnState.Idle) this.#wake(conn, now);
        if (!conn.established) this.#checkEstablished(conn);
        if (conn.tunnel.queuedCount > 0) this.#flushQueued(conn, now);
        return P2pResult.WriteToTunnel;
      case WgResult.WriteToNetwork:
        this.#sendToPeer(conn, wg.buf, wg.off, wg.len, now);
        this.#afterWireGuardControl(conn, now);
        return P2pResult.Done;
      case WgResult.Drop:
        out.wgDropReason = wg.dropReason;
        if (log.debugEnabled) {
          log.debug("WireGuard dropped a packet", { cid: conn.cid, reason: wg.dropReason });
        }
        return drop(out, P2pDrop.WireGuard);
      default:
        this.#afterWireGuardControl(conn, now);
        return P2pResult.Done;
    }
  }

  #afterWireGuardControl(conn: Connection, now: number): void {
    if (!conn.established) this.#checkEstablished(conn);
    if (conn.tunnel.queuedCount > 0) this.#flushQueued(conn, now);
  }

  // --- connection internals -------------------------------------------------------------------

  #handleConnectionTimeout(conn: Connection, now: number): void {
    const agent = conn.agent;
    if (agent.pollTimeout() <= now) {
      agent.handleTimeout(now);
      this.#drainAgent(conn, now);
      if (conn.state === ConnState.Failed) return;
    }
    if (now >= conn.candidateDeadline()) {
      this.#fail(conn, FailReason.NoRemoteCandidates, "no remote candidates received");
      return;
    }
    if (now >= conn.disconnectedDeadline()) {
      this.#fail(conn, FailReason.IceDisconnected, "ICE disconnected for too long");
      return;
    }
    if (now >= conn.idleDeadline()) {
      conn.state = ConnState.Idle;
      agent.setIdle(true);
      log.debug("Connection is idle", { cid: conn.cid });
    }
    if (conn.tunnel.pollTimeout() <= now) {
      const wg = this.#wgOut;
      for (let i = 0; i < MAX_WG_TIMER_ROUNDS; i++) {
        const r = conn.tunnel.handleTimeout(wg, now);
        if (r === WgResult.WriteToNetwork) {
          this.#sendToPeer(conn, wg.buf, wg.off, wg.len, now);
          continue;
        }
        if (r === WgResult.Expired) {
          this.#fail(conn, FailReason.WireGuardExpired, "WireGuard tunnel expired");
          return;
        }
        break;
      }
      this.#afterWireGuardControl(conn, now);
    }
  }

  /** Drains the agent's transmits and events (control path). */
  #drainAgent(conn: Connection, now: number): void {
    const agent = conn.agent;
    for (let t = agent.pollTransmit(); t !== undefined; t = agent.pollTransmit()) this.#sendIce(t, now);
    for (let e = agent.pollEvent(); e !== undefined; e = agent.pollEvent()) {
      if (e.type === "StateChanged") {
        if (e.state === "Disconnected") {
          if (conn.disconnectedAt === Infinity) conn.disconnectedAt = now;
        } else {
          conn.disconnectedAt = Infinity;
        }
        if (log.debugEnabled) log.debug("ICE state changed", { cid: conn.cid, state: e.state });
      } else if (e.type === "NominatedSend") {
        this.#onNominated(conn, e.source, e.destination, now);
      }
    }
    conn.hasRemoteCandidates = agent.remoteCandidates().length > 0;
  }

  /** ICE picked (or changed) the pair to send on. */
  #onNominated(conn: Connection, source: SocketAddr, destination: SocketAddr, now: number): void {
    const relay = this.#relayByRelayedAddress(source);
    conn.relay = relay;
    conn.peerAddr = destination;
    if (relay !== null) {
      conn.peerSrc = null;
      conn.peerDst = null;
    } else {
      conn.peerSrc = PeerAddrView.fromSocketAddr(source);
      conn.peerDst = PeerAddrView.fromSocketAddr(destination);
    }
    log.info("Nominated socket", {
      cid: conn.cid,
      src: formatSocketAddr(source),
      dst: formatSocketAddr(destination),
      relay: relay?.id ?? null,
    });
    if (conn.state === ConnState.Connecting) {
      conn.state = ConnState.Connected;
      conn.lastIncomingAt = now;
      conn.lastOutgoingAt = now;
      if (conn.buffered.length > 0) {
        log.debug("Flushing WireGuard messages buffered during ICE", {
          cid: conn.cid,
          count: conn.buffered.length,
        });
      }
      for (let m = conn.buffered.shift(); m !== undefined; m = conn.buffered.shift()) {
        this.#sendCopyToPeer(conn, m, now);
      }
    }
    // Only clients start handshakes on nomination; the gateway waits for the client's initiation.
    if (this.role === "client" && !conn.tunnel.hasSession(now) && !conn.tunnel.isHandshakeInProgress) {
      const wg = this.#wgOut;
      if (conn.tunnel.initiateHandshake(wg, now) === WgResult.WriteToNetwork) {
        this.#sendToPeer(conn, wg.buf, wg.off, wg.len, now);
      }
    }
  }

  #checkEstablished(conn: Connection): void {
    if (conn.tunnel.lastHandshakeAt < 0) return;
    conn.established = true;
    log.info("Completed WireGuard handshake", { cid: conn.cid });
    this.#events.push({ type: "ConnectionEstablished", cid: conn.cid });
  }

  #flushQueued(conn: Connection, now: number): void {
    const wg = this.#wgOut;
    while (conn.tunnel.pollQueued(wg, now) === WgResult.WriteToNetwork) {
      this.#sendToPeer(conn, wg.buf, wg.off, wg.len, now);
    }
  }

  /** Moves an idle connection back to active timings. */
  #wake(conn: Connection, now: number): void {
    if (conn.state !== ConnState.Idle) return;
    conn.state = ConnState.Connected;
    conn.lastIncomingAt = now;
    conn.lastOutgoingAt = now;
    conn.agent.setIdle(false);
    log.debug("Connection resumed", { cid: conn.cid });
  }

  #fail(conn: Connection, reason: FailReason, message: string): void {
    if (conn.state === ConnState.Failed) return;
    conn.state = ConnState.Failed;
    conn.failReason = reason;
    log.info(`Connection failed (${message})`, { cid: conn.cid });
  }

  #collectFailed(): void {
    for (const conn of this.#byCid.values()) {
      if (conn.state !== ConnState.Failed) continue;
      this.#remove(conn);
      this.#events.push({ type: "ConnectionFailed", cid: conn.cid, reason: conn.failReason! });
    }
  }

  #remove(conn: Connection): void {
    if (this.#byCid.get(conn.cid) === conn) this.#byCid.delete(conn.cid);
    if (this.#byIndex.get(conn.index) === conn) this.#byIndex.delete(conn.index);
    if (this.#byKey.get(conn.remoteKeyHex) === conn) this.#byKey.delete(conn.remoteKeyHex);
    conn.tunnel.dispose();
  }

  // --- sending (control path) -----------------------------------------------------------------

  /** An ICE transmit: direct from a host address, or wrapped in ChannelData when sent "from" a relayed address. */
  #sendIce(t: IceTransmit, now: number): void {
    const relay = this.#relayByRelayedAddress(t.source);
    if (relay === null) {
      this.#transmits.push({ src: t.source, dst: t.destination, payload: t.payload });
      return;
    }
    const active = relay.allocation.activeSocket;
    if (active === null) return;
    const len = t.payload.length;
    const framed = new Uint8Array(CHANNEL_DATA_HEADER_LEN + len);
    framed.set(t.payload, CHANNEL_DATA_HEADER_LEN);
    if (relay.allocation.encodeToPeer(t.destination, framed, CHANNEL_DATA_HEADER_LEN, len, now) < 0) {
      if (log.debugEnabled) {
        log.debug("No channel to peer yet, binding one", { peer: formatSocketAddr(t.destination) });
      }
      return;
    }
    this.#transmits.push({ src: null, dst: active, payload: framed });
  }

  /** A WireGuard message for the peer: buffered before nomination, else sent on the nominated socket. */
  #sendToPeer(conn: Connection, buf: Uint8Array, off: number, len: number, now: number): void {
    if (!conn.isNominated) {
      conn.bufferMessage(buf, off, len);
      if (log.debugEnabled) {
        log.debug("ICE is still in progress, buffering WireGuard message", {
          cid: conn.cid,
          buffered: conn.buffered.length,
        });
      }
      return;
    }
    const copy = new Uint8Array(BUFFERED_HEADROOM + len);
    copy.set(buf.subarray(off, off + len), BUFFERED_HEADROOM);
    this.#sendCopyToPeer(conn, copy, now);
  }

  /** Sends `framed[4..]` to the nominated peer (ChannelData header written into `framed[0..4)` if relayed). */
  #sendCopyToPeer(conn: Connection, framed: Uint8Array, now: number): void {
    const len = framed.length - BUFFERED_HEADROOM;
    const relay = conn.relay;
    if (relay === null) {
      this.#transmits.push({
        src: conn.peerSrc!.toSocketAddr(),
        dst: conn.peerAddr!,
        payload: framed.subarray(BUFFERED_HEADROOM),
      });
      return;
    }
    const active = relay.alive ? relay.allocation.activeSocket : null;
    if (active === null) {
      log.debug("No allocation for the nominated relay, dropping message", { cid: conn.cid });
      return;
    }
    if (relay.allocation.encodeToPeer(conn.peerAddr!, framed, BUFFERED_HEADROOM, len, now) < 0) {
      log.debug("No channel to peer, dropping message", { cid: conn.cid });
      return;
    }
    this.#transmits.push({ src: null, dst: active, payload: framed });
  }

  // --- candidates and relays (control path) ---------------------------------------------------

  /** Offers a TURN-learned candidate to a connection (srflx: signalled only, spec §3.2). */
  #addLocal(conn: Connection, tc: TurnCandidate): void {
    if (tc.kind === "srflx") {
      const c = serverReflexiveCandidate(tc.addr, tc.base);
      if (conn.srflx.some((s) => equivalentCandidates(s, c))) return;
      conn.srflx.push(c);
      this.#events.push({ type: "NewIceCandidate", cid: conn.cid, candidate: formatCandidate(c) });
      return;
    }
    const c = tc.kind === "host" ? hostCandidate(tc.addr) : relayCandidate(tc.addr, tc.base);
    const added = conn.agent.addLocalCandidate(c);
    if (added !== null) {
      this.#events.push({ type: "NewIceCandidate", cid: conn.cid, candidate: formatCandidate(added) });
    }
  }

  /** Withdraws a TURN-learned candidate from a connection. */
  #removeLocal(conn: Connection, tc: TurnCandidate): void {
    if (tc.kind === "srflx") {
      const c = serverReflexiveCandidate(tc.addr, tc.base);
      const i = conn.srflx.findIndex((s) => equivalentCandidates(s, c));
      if (i < 0) return;
      conn.srflx.splice(i, 1);
      this.#events.push({ type: "InvalidateIceCandidate", cid: conn.cid, candidate: formatCandidate(c) });
      return;
    }
    const probe = tc.kind === "host" ? hostCandidate(tc.addr) : relayCandidate(tc.addr, tc.base);
    const found = conn.agent.localCandidates().find((c) => equivalentCandidates(c, probe));
    if (found === undefined || !conn.agent.invalidateLocalCandidate(found)) return;
    this.#events.push({ type: "InvalidateIceCandidate", cid: conn.cid, candidate: formatCandidate(found) });
  }

  /** Local candidates of a reused connection, signalled again: host, srflx, relay. */
  #signalLocalCandidates(conn: Connection): void {
    const locals = conn.agent.localCandidates();
    const push = (c: Candidate) =>
      this.#events.push({ type: "NewIceCandidate", cid: conn.cid, candidate: formatCandidate(c) });
    for (const c of locals) if (c.kind === "host") push(c);
    for (const c of conn.srflx) push(c);
    for (const c of locals) if (c.kind === "relay") push(c);
  }

  /** An allocation left the node: its relay candidates are withdrawn from every connection. */
  #retire(allocation: Allocation, now: number): void {
    for (const r of this.#relays) if (r.allocation === allocation) r.alive = false;
    const relayCandidates = allocation.relayCandidates();
    for (const conn of this.#byCid.values()) {
      if (conn.state === ConnState.Failed) continue;
      for (const c of relayCandidates) this.#removeLocal(conn, c);
      conn.agent.handleTimeout(now);
      this.#drainAgent(conn, now);
    }
  }

  #rebuildRelays(): void {
    const next: RelayEntry[] = [];
    for (const [id, allocation] of this.#allocations.entries()) {
      const existing = this.#relays.find((r) => r.allocation === allocation);
      next.push(existing ?? new RelayEntry(id, allocation));
    }
    for (const r of this.#relays) if (!next.includes(r)) r.alive = false;
    this.#relays = next;
  }

  #relayByRelayedAddress(addr: SocketAddr): RelayEntry | null {
    for (const r of this.#relays) if (r.allocation.hasRelayedAddress(addr)) return r;
    return null;
  }

  /** Drains allocation events: candidates to the connections, freed allocations out. */
  #drainAllocations(now: number): void {
    let freed = false;
    for (const id of this.#allocations.ids()) {
      const allocation = this.#allocations.get(id)!;
      for (let e = allocation.pollEvent(); e !== undefined; e = allocation.pollEvent()) {
        switch (e.type) {
          case "new_candidate":
            for (const conn of this.#byCid.values()) {
              if (conn.state === ConnState.Failed || conn.selectedRelay !== id) continue;
              this.#addLocal(conn, e.candidate);
              conn.agent.handleTimeout(now);
              this.#drainAgent(conn, now);
            }
            break;
          case "invalid_candidate":
            this.#onInvalidCandidate(e.candidate, now);
            break;
          case "freed":
            log.warn(`Disconnecting from relay; ${e.message}`, { rid: id });
            this.#allocations.remove(id);
            this.#retire(allocation, now);
            freed = true;
            break;
        }
      }
    }
    if (freed) {
      this.#rebuildRelays();
      this.#reselectRelays(now);
    }
  }

  #onInvalidCandidate(tc: TurnCandidate, now: number): void {
    // Another allocation may still offer the same host/srflx address.
    if (tc.kind !== "relay") {
      const stillOffered = this.#allocations.sharedCandidates().some((c) =>
        c.kind === tc.kind && sameSocketAddr(c.addr, tc.addr) && sameSocketAddr(c.base, tc.base)
      );
      if (stillOffered) return;
    }
    for (const conn of this.#byCid.values()) {
      if (conn.state === ConnState.Failed) continue;
      this.#removeLocal(conn, tc);
      conn.agent.handleTimeout(now);
      this.#drainAgent(conn, now);
    }
  }

  /** Connections whose relay is gone (or that never had one) take a random current relay. */
  #reselectRelays(now: number): void {
    for (const conn of this.#byCid.values()) {
      if (conn.state === ConnState.Failed) continue;
      if (conn.selectedRelay !== null && this.#allocations.get(conn.selectedRelay) !== undefined) continue;
      const picked = this.#allocations.sample(this.#rng);
      if (picked === undefined) {
        if (conn.selectedRelay !== null) {
          log.info("Selected relay disappeared; no other relay", { cid: conn.cid });
        }
        conn.selectedRelay = null;
        continue;
      }
      const [id, allocation] = picked;
      log.info("Updating relay", { cid: conn.cid, old: conn.selectedRelay, new: id });
      conn.selectedRelay = id;
      for (const c of allocation.hostAndServerReflexiveCandidates()) this.#addLocal(conn, c);
      for (const c of allocation.relayCandidates()) this.#addLocal(conn, c);
      for (const peer of conn.channelPeers) allocation.bindChannel(peer, now);
      conn.agent.handleTimeout(now);
      this.#drainAgent(conn, now);
    }
  }
}

function drop(out: NodeOut, reason: P2pDrop): P2pResult {
  out.dropReason = reason;
  return P2pResult.Drop;
}

function checkKey(what: string, key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== WG_KEY_LEN) {
    throw new TypeError(`The ${what} must be ${WG_KEY_LEN} bytes, got length ${key?.length}`);
  }
}
