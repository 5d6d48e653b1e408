/**
 * Standalone mode's packet core: a plain multi-peer WireGuard device (wg-quick semantics) with
 * cryptokey routing. Sans-IO: the packet worker drives it exactly like the gateway core, so both
 * modes share the whole data path.
 *
 * - UDP → TUN: route by receiver index (data, responses, cookies) or by the initiator's static key
 *   (initiations); decrypt in place; the inner source must be inside the peer's AllowedIPs; the
 *   peer's endpoint follows the last authenticated datagram (roaming).
 * - TUN → UDP: longest-prefix match of the destination over every peer's AllowedIPs; encrypt in
 *   place; without a session the tunnel queues the packet and initiates a handshake.
 *
 * @module
 */

import type { CryptoBackend } from "../crypto/backend.ts";
import { logger } from "../log.ts";
import type { Rng } from "../rng.ts";
import { RingQueue } from "../util/ring_queue.ts";
import type { SocketAddr } from "../wire/ip_addr.ts";
import { PeerAddrView } from "../p2p/peer_addr.ts";
import {
  WG_TYPE_COOKIE_REPLY,
  WG_TYPE_DATA,
  WG_TYPE_HANDSHAKE_INIT,
  wgMessageType,
  wgReceiverIndex,
} from "../wire/wireguard.ts";
import type { WallClock } from "../wireguard/handshake.ts";
import { parseHandshakeAnon } from "../wireguard/handshake.ts";
import { StaticIdentity } from "../wireguard/identity.ts";
import { connectionIndexOf, IndexAllocator } from "../wireguard/index_allocator.ts";
import { HandshakeRateLimiter } from "../wireguard/rate_limiter.ts";
import { DropReason, WgOut, WgResult } from "../wireguard/result.ts";
import { Tunnel } from "../wireguard/tunnel.ts";
import { type CoreOut, CoreResult, type CoreTransmit, DropLayer, type PacketCore } from "../packet_core.ts";
import type { IpNetwork, StandaloneConfig } from "./config.ts";

const log = logger("fz_gateway::standalone");

/**
 * Standard WireGuard's REKEY_ATTEMPT_TIME. Standalone mode talks to ordinary WireGuard peers, so it
 * keeps trying for 90 s like them, not the Firezone fork's 15 s (spec §3.6).
 */
export const STANDARD_REKEY_ATTEMPT_TIME_MS = 90_000;

/** Failed or unknown handshakes are logged at most this often (per peer / for unknown keys). */
export const HANDSHAKE_WARN_INTERVAL_MS = 10_000;

/** Drop reasons of the standalone core itself (layer {@link DropLayer.Core}). */
export const StandaloneDrop = {
  None: 0,
  /** A datagram whose receiver index or static key matches no peer. */
  UnknownPeer: 1,
  /** A TUN packet whose destination is in no peer's AllowedIPs. */
  NoRoute: 2,
  /** The peer has no endpoint yet (no Endpoint configured and it never sent us anything). */
  NoEndpoint: 3,
  /** A decrypted packet whose source is not in the sending peer's AllowedIPs. */
  SourceNotAllowed: 4,
  /** Not an IPv4/IPv6 packet. */
  Malformed: 5,
} as const;
export const STANDALONE_DROP_NAMES = [
  "None",
  "UnknownPeer",
  "NoRoute",
  "NoEndpoint",
  "SourceNotAllowed",
  "Malformed",
];

/** Options of a {@link StandaloneNode}. */
export interface StandaloneNodeOptions {
  config: StandaloneConfig;
  /** Resolved `Endpoint` of each configured peer (same order), null when none. */
  endpoints: readonly (SocketAddr | null)[];
  backend: CryptoBackend;
  rng: Rng;
  wallClock: WallClock;
  now: number;
}

/** Per-peer state. */
class Peer {
  readonly tunnel: Tunnel;
  readonly allowed: readonly IpNetwork[];
  readonly endpoint = new PeerAddrView();
  hasEndpoint = false;
  readonly name: string;
  /** When a failed handshake was last logged (rate limit). */
  lastHandshakeWarnAt = -Infinity;

  constructor(tunnel: Tunnel, allowed: readonly IpNetwork[], name: string) {
    this.tunnel = tunnel;
    this.allowed = allowed;
    this.name = name;
  }
}

/** One route: a network (as 4 big-endian words, prefix) pointing at a peer. */
interface Route {
  readonly family: 4 | 6;
  readonly words: Int32Array;
  readonly prefix: number;
  readonly peer: Peer;
  /** Index of the peer in the configuration. */
  readonly order: number;
}

/**
 * A WireGuard device with several peers.
 *
 * @example
 * ```ts
 * const node = new StandaloneNode({ config, endpoints, backend, rng, wallClock, now });
 * const out = new CoreOut();
 * if (node.handleDatagram(buf, off, len, from, local, out, now) === CoreResult.ToTun) tun.write(...);
 * ```
 */
export class StandaloneNode implements PacketCore {
  readonly #backend: CryptoBackend;
  readonly #identity: StaticIdentity;
  readonly #peers: Peer[] = [];
  readonly #byIndex = new Map<number, Peer>();
  readonly #routes: Route[] = [];
  readonly #transmits = new RingQueue<CoreTransmit>(16);
  readonly #wg = new WgOut();
  readonly #reply = new Uint8Array(256);
  #lastUnknownKeyWarnAt = -Infinity;
  /** Drop counters per reason of this layer. */
  readonly drops = new Float64Array(STANDALONE_DROP_NAMES.length);

  constructor(options: StandaloneNodeOptions) {
    const { config, backend, rng, now } = options;
    this.#backend = backend;
    this.#identity = new StaticIdentity(backend, config.privateKey);
    const limiter = new HandshakeRateLimiter(backend, this.#identity, rng, now);
    const indices = new IndexAllocator(rng);
    for (let i = 0; i < config.peers.length; i++) {
      const pc = config.peers[i]!;
      const tunnel = new Tunnel({
        backend,
        identity: this.#identity,
        peerStaticPublic: pc.publicKey,
        presharedKey: pc.presharedKey,
        index: indices.next(),
        rateLimiter: limiter,
        rng,
        wallClock: options.wallClock,
        persistentKeepaliveMs: pc.persistentKeepalive * 1000,
        rekeyAttemptTimeMs: STANDARD_REKEY_ATTEMPT_TIME_MS,
      }, now);
      const peer = new Peer(tunnel, pc.allowedIps, pc.publicKey.toBase64().slice(0, 8));
      const ep = options.endpoints[i] ?? null;
      if (ep) {
        peer.endpoint.setSocketAddr(ep);
        peer.hasEndpoint = true;
      }
      this.#peers.push(peer);
      this.#byIndex.set(tunnel.index, peer);
      for (const net of pc.allowedIps) this.#routes.push({ ...net, words: toWords(net), peer, order: i });
    }
    // Longest prefix first: the first match of a linear scan is the best one. A network listed by
    // several peers belongs to the last of them, as with wg(8).
    this.#routes.sort((a, b) => b.prefix - a.prefix || b.order - a.order);
    // Peers with an endpoint and a persistent keepalive start a handshake right away (like wg-quick).
    for (let i = 0; i < this.#peers.length; i++) {
      const peer = this.#peers[i]!;
      if (!peer.hasEndpoint || config.peers[i]!.persistentKeepalive === 0) continue;
      if (peer.tunnel.initiateHandshake(this.#wg, now) === WgResult.WriteToNetwork) {
        this.#queueCopy(this.#wg.buf, this.#wg.off, this.#wg.len, peer.endpoint);
      }
    }
  }

  /** Our public key. */
  get publicKey(): Uint8Array {
    return this.#identity.publicKey;
  }

  /** Per-peer status for logs and tests. */
  peerStatus(): {
    publicKey: string;
    endpoint: string | null;
    hasSession: boolean;
    rx: number;
    tx: number;
  }[] {
    return this.#peers.map((p) => ({
      publicKey: p.tunnel.remoteStaticPublic.toBase64(),
      endpoint: p.hasEndpoint ? p.endpoint.toString() : null,
      hasSession: p.tunnel.lastHandshakeAt >= 0,
      rx: p.tunnel.rxBytes,
      tx: p.tunnel.txBytes,
    }));
  }

  handleDatagram(
    buf: Uint8Array,
    off: number,
    len: number,
    from: PeerAddrView,
    _local: PeerAddrView,
    out: CoreOut,
    now: number,
  ): CoreResult {
    out.clear();
    const type = wgMessageType(buf, off, len);
    let peer: Peer | undefined;
    if (type === WG_TYPE_HANDSHAKE_INIT) {
      const anon = parseHandshakeAnon(this.#backend, this.#identity, buf, off, len);
      if (typeof anon === "number") return this.#drop(out, DropLayer.WireGuard, anon);
      peer = this.#peerByKey(anon.peerStaticPublic);
      if (!peer) {
        if (now - this.#lastUnknownKeyWarnAt >= HANDSHAKE_WARN_INTERVAL_MS) {
          this.#lastUnknownKeyWarnAt = now;
          log.warn("Handshake from an unknown public key: no [Peer] has it", {
            from: from.toString(),
            public_key: anon.peerStaticPublic.toBase64(),
          });
        }
        return this.#drop(out, DropLayer.Core, StandaloneDrop.UnknownPeer);
      }
    } else if (type !== 0) {
      peer = this.#byIndex.get(connectionIndexOf(wgReceiverIndex(buf, off, len)));
      if (!peer) return this.#drop(out, DropLayer.Core, StandaloneDrop.UnknownPeer);
    } else {
      return this.#drop(out, DropLayer.WireGuard, DropReason.UnknownType);
    }

    const wg = this.#wg;
    const fromAddr = type === WG_TYPE_DATA ? null : from.toSocketAddr(); // cookies need it; data does not
    const r = peer.tunnel.decapsulate(buf, off, len, fromAddr, this.#reply, 0, wg, now);
    if (r === WgResult.Drop) {
      if (type !== WG_TYPE_DATA && wg.dropReason === DropReason.DecryptFailed) {
        this.#warnHandshake(peer, from, now);
      }
      return this.#drop(out, DropLayer.WireGuard, wg.dropReason);
    }
    if (r === WgResult.WriteToNetwork && wg.messageType === WG_TYPE_COOKIE_REPLY) {
      // Under load: a cookie reply to whoever sent the (not yet authenticated) handshake message.
      // It proves nothing about the sender, so the peer's endpoint stays where it is.
      this.#queueCopy(wg.buf, wg.off, wg.len, from);
      return CoreResult.Done;
    }
    // Authenticated (data, keepalive, or a completed handshake step): the endpoint follows the
    // peer (roaming). A consumed cookie reply (type 3) authenticates nothing of the peer.
    if (type !== WG_TYPE_COOKIE_REPLY && (!peer.hasEndpoint || !peer.endpoint.equals(from))) {
      if (log.debugEnabled) {
        log.debug("Peer endpoint changed", { peer: peer.name, endpoint: from.toString() });
      }
      peer.endpoint.copyFrom(from);
      peer.hasEndpoint = true;
    }
    let result: CoreResult = CoreResult.Done;
    if (r === WgResult.WriteToTunnel) {
      if (!this.#sourceAllowed(peer, wg.buf, wg.off, wg.len)) {
        return this.#drop(out, DropLayer.Core, StandaloneDrop.SourceNotAllowed);
      }
      out.buf = wg.buf;
      out.off = wg.off;
      out.len = wg.len;
      result = CoreResult.ToTun;
    } else if (r === WgResult.WriteToNetwork) {
      this.#queueCopy(wg.buf, wg.off, wg.len, peer.endpoint);
    }
    this.#flushQueued(peer, now);
    return result;
  }

  handleTunPacket(buf: Uint8Array, off: number, len: number, out: CoreOut, now: number): CoreResult {
    out.clear();
    const peer = this.#route(buf, off, len);
    if (peer === null) return this.#drop(out, DropLayer.Core, StandaloneDrop.NoRoute);
    if (!peer.hasEndpoint) return this.#drop(out, DropLayer.Core, StandaloneDrop.NoEndpoint);
    const wg = this.#wg;
    const r = peer.tunnel.encapsulate(buf, off, len, wg, now);
    if (r === WgResult.Drop) return this.#drop(out, DropLayer.WireGuard, wg.dropReason);
    if (r !== WgResult.WriteToNetwork) return CoreResult.Done;
    if (wg.buf !== buf) {
      // An initiation from the tunnel's own buffer (the packet itself was queued).
      this.#queueCopy(wg.buf, wg.off, wg.len, peer.endpoint);
      return CoreResult.Done;
    }
    out.buf = wg.buf;
    out.off = wg.off;
    out.len = wg.len;
    out.dst = peer.endpoint;
    return CoreResult.ToNetwork;
  }

  handleTimeout(now: number): void {
    for (const peer of this.#peers) {
      if (peer.tunnel.pollTimeout() <= now) this.#runTimers(peer, now);
    }
  }

  pollTimeout(): number {
    let t = Infinity;
    for (const peer of this.#peers) {
      const p = peer.tunnel.pollTimeout();
      if (p < t) t = p;
    }
    return t;
  }

  pollTransmit(): CoreTransmit | undefined {
    return this.#transmits.shift();
  }

  #runTimers(peer: Peer, now: number): void {
    const wg = this.#wg;
    const r = peer.tunnel.handleTimeout(wg, now);
    if (r === WgResult.WriteToNetwork && peer.hasEndpoint) {
      this.#queueCopy(wg.buf, wg.off, wg.len, peer.endpoint);
    }
    if (r === WgResult.Expired && log.debugEnabled) log.debug("Peer session expired", { peer: peer.name });
    this.#flushQueued(peer, now);
  }

  /** Sends packets that waited for a session. */
  #flushQueued(peer: Peer, now: number): void {
    if (!peer.hasEndpoint) return;
    const wg = this.#wg;
    while (peer.tunnel.pollQueued(wg, now) === WgResult.WriteToNetwork) {
      this.#queueCopy(wg.buf, wg.off, wg.len, peer.endpoint);
    }
  }

  #queueCopy(buf: Uint8Array, off: number, len: number, dst: PeerAddrView): void {
    const copy = new PeerAddrView().copyFrom(dst);
    this.#transmits.push({ payload: buf.slice(off, off + len), dst: copy, src: null });
  }

  /** A handshake message from a known peer failed authentication: almost always a config mismatch. */
  #warnHandshake(peer: Peer, from: PeerAddrView, now: number): void {
    if (now - peer.lastHandshakeWarnAt < HANDSHAKE_WARN_INTERVAL_MS) return;
    peer.lastHandshakeWarnAt = now;
    log.warn(
      "Handshake from peer failed authentication (wrong PresharedKey, or the peer has another public key for us?)",
      {
        peer: peer.name,
        from: from.toString(),
      },
    );
  }

  #drop(out: CoreOut, layer: DropLayer, reason: number): CoreResult {
    out.dropLayer = layer;
    out.dropReason = reason;
    if (layer === DropLayer.Core) this.drops[reason] = this.drops[reason]! + 1;
    return CoreResult.Drop;
  }

  #peerByKey(key: Uint8Array): Peer | undefined {
    for (const p of this.#peers) if (sameKey(p.tunnel.remoteStaticPublic, key)) return p;
    return undefined;
  }

  /** Hot path: longest-prefix match of the packet's destination. */
  #route(buf: Uint8Array, off: number, len: number): Peer | null {
    if (len < 20) return null;
    const v = buf[off]! >> 4;
    if (v === 4) return this.#lookup(4, buf, off + 16);
    if (v === 6 && len >= 40) return this.#lookup(6, buf, off + 24);
    return null;
  }

  #sourceAllowed(peer: Peer, buf: Uint8Array, off: number, len: number): boolean {
    if (len < 20) return false;
    const v = buf[off]! >> 4;
    let found: Peer | null = null;
    if (v === 4) found = this.#lookup(4, buf, off + 12);
    else if (v === 6 && len >= 40) found = this.#lookup(6, buf, off + 8);
    return found === peer;
  }

  #lookup(family: 4 | 6, buf: Uint8Array, addrOff: number): Peer | null {
    const routes = this.#routes;
    for (let i = 0; i < routes.length; i++) {
      const r = routes[i]!;
      if (r.family === family && matches(r, buf, addrOff)) return r.peer;
    }
    return null;
  }
}

function toWords(net: IpNetwork): Int32Array {
  const words = new Int32Array(4);
  const v = new DataView(net.bytes.buffer, net.bytes.byteOffset, net.bytes.length);
  for (let i = 0; i < net.bytes.length / 4; i++) words[i] = v.getInt32(i * 4);
  return words;
}

/** Hot path: does the address at `buf[addrOff]` fall inside the route's network? */
function matches(r: Route, buf: Uint8Array, addrOff: number): boolean {
  let left = r.prefix;
  for (let w = 0; left > 0; w++, left -= 32) {
    const o = addrOff + 4 * w;
    const word = (buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!;
    const mask = left >= 32 ? -1 : ~(-1 >>> left);
    if (((word ^ r.words[w]!) & mask) !== 0) return false;
  }
  return true;
}

function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
