/**
 * Test peers for focused node tests: a bare controlling {@link IceAgent} as a {@link SimNet} host (no
 * WireGuard unless the test drives one by hand), and a gateway world with one relay around it.
 *
 * @module
 */

import { createNobleBackend } from "../../../src/crypto/mod.ts";
import { IceAgent } from "../../../src/ice/agent.ts";
import { formatCandidate, hostCandidate, parseCandidate } from "../../../src/ice/candidate.ts";
import type { NodeEvent } from "../../../src/p2p/events.ts";
import { SeededRng } from "../../../src/rng.ts";
import { type IpFamily, type SocketAddr, socketAddr } from "../../../src/wire/ip_addr.ts";
import { parseStun } from "../../../src/wire/stun.ts";
import {
  anchoredWallClock,
  HandshakeRateLimiter,
  IndexAllocator,
  StaticIdentity,
  Tunnel,
  WgOut,
  WgResult,
} from "../../../src/wireguard/mod.ts";
import { CLIENT_CREDS, GATEWAY_CREDS, World } from "../../sim/p2p_world.ts";
import type { NatOptions, SimHost, SimTransmit } from "../../sim/sim_net.ts";
import type { SimNodeHost } from "../../sim/sim_node.ts";
import type { SimRelay } from "../../sim/sim_relay.ts";

export const backend = createNobleBackend();
export const GW_IP = "203.0.113.10";
export const RAW_IP = "198.51.100.30";
export const RAW_PORT = 4000;
export const RELAY_IP = "192.0.2.1";
export const CID = "raw-client";

/** A controlling ICE agent on one host address; non-STUN datagrams are recorded. */
export class RawIceClient implements SimHost {
  readonly name = "raw-client";
  readonly ips: readonly string[];
  readonly addr: SocketAddr;
  readonly agent: IceAgent;
  /** Datagrams that were not ICE STUN. */
  readonly received: { at: number; src: SocketAddr; payload: Uint8Array }[] = [];
  readonly #queue: SimTransmit[] = [];

  constructor(ip: string, port: number, now: number, local = CLIENT_CREDS, remote = GATEWAY_CREDS) {
    this.ips = [ip];
    this.addr = socketAddr(ip, port);
    this.agent = new IceAgent({ controlling: true, local, remote, rng: new SeededRng(99), now });
  }

  /** Our host candidate string (as the portal would carry it). */
  hostCandidateString(): string {
    return formatCandidate(this.agent.addLocalCandidate(hostCandidate(this.addr))!);
  }

  /** Adds the gateway's candidate strings as remote candidates. */
  addRemote(candidates: readonly string[], now: number): void {
    for (const s of candidates) this.agent.addRemoteCandidate(parseCandidate(s)!, now);
  }

  send(dst: SocketAddr, payload: Uint8Array): void {
    this.#queue.push({ src: this.addr, dst, payload });
  }

  defaultSource(family: IpFamily): SocketAddr | null {
    return family === 4 ? this.addr : null;
  }

  handleDatagram(src: SocketAddr, _dst: SocketAddr, payload: Uint8Array, now: number): void {
    const parsed = parseStun(payload);
    if (parsed.ok && this.agent.acceptsMessage(parsed.msg)) {
      this.agent.handlePacket(now, src, this.addr, parsed.msg);
      return;
    }
    this.received.push({ at: now, src, payload });
  }

  pollTransmit(): SimTransmit | undefined {
    const q = this.#queue.shift();
    if (q !== undefined) return q;
    const t = this.agent.pollTransmit();
    return t === undefined ? undefined : { src: t.source, dst: t.destination, payload: t.payload };
  }

  pollTimeout(): number {
    return this.agent.pollTimeout();
  }

  handleTimeout(now: number): void {
    this.agent.handleTimeout(now);
  }

  /** True once the agent reported a nominated pair. */
  nominated(): boolean {
    return this.agent.nominatedPair() !== null;
  }
}

/** A WireGuard identity for hand-made initiators towards the gateway. */
export class RawWireGuard {
  readonly identity: StaticIdentity;
  readonly #limiter: HandshakeRateLimiter;
  readonly #indices: IndexAllocator;
  readonly #rng = new SeededRng(31337);

  constructor(keySeed: number) {
    const key = new Uint8Array(32);
    new SeededRng(keySeed).fill(key);
    this.identity = new StaticIdentity(backend, key);
    this.#limiter = new HandshakeRateLimiter(backend, this.identity, this.#rng, 0);
    this.#indices = new IndexAllocator(this.#rng);
  }

  get publicKey(): Uint8Array {
    return this.identity.publicKey;
  }

  /** A fresh tunnel to `peer` (one handshake initiation each; the wall clock follows `now`). */
  tunnel(peer: Uint8Array, psk: Uint8Array, now: number): Tunnel {
    return new Tunnel({
      backend,
      identity: this.identity,
      peerStaticPublic: peer,
      presharedKey: psk,
      index: this.#indices.next(),
      rateLimiter: this.#limiter,
      rng: this.#rng,
      wallClock: anchoredWallClock(1_714_521_600_000, 0),
    }, now);
  }

  /** A handshake initiation (148 bytes, copied) from a fresh tunnel, and its sender index. */
  initiation(peer: Uint8Array, psk: Uint8Array, now: number): { bytes: Uint8Array; sender: number } {
    const out = new WgOut();
    const r = this.tunnel(peer, psk, now).initiateHandshake(out, now);
    if (r !== WgResult.WriteToNetwork) throw new Error("no initiation");
    const bytes = out.buf.slice(out.off, out.off + out.len);
    const sender = (bytes[4]! | (bytes[5]! << 8) | (bytes[6]! << 16) | (bytes[7]! << 24)) >>> 0;
    return { bytes, sender };
  }
}

/** A gateway with one relay, allocations done, plus a raw ICE client host (not yet connected). */
export function gatewayWithRawClient(
  options: { connectAt?: number; psk?: Uint8Array; gatewayIp?: string; gatewayNat?: NatOptions } = {},
): {
  world: World;
  gw: SimNodeHost;
  relay: SimRelay;
  raw: RawIceClient;
  wg: RawWireGuard;
  psk: Uint8Array;
} {
  const world = new World({ seed: 3 });
  const relay = world.relay("relay-1", { ip4: RELAY_IP });
  const gw = world.gateway([options.gatewayIp ?? GW_IP], options.gatewayNat);
  gw.node.updateRelays([], [relay.info()], 0);
  world.net.runUntil(options.connectAt ?? 500);
  const raw = world.net.addHost(new RawIceClient(RAW_IP, RAW_PORT, world.now));
  const wg = new RawWireGuard(555);
  const psk = options.psk ?? new Uint8Array(32).fill(7);
  return { world, gw, relay, raw, wg, psk };
}

/** Upserts the gateway connection for the raw client and exchanges candidates directly (no portal delay). */
export function connectRaw(
  world: World,
  gw: SimNodeHost,
  raw: RawIceClient,
  wg: RawWireGuard,
  psk: Uint8Array,
) {
  upsertRaw(world, gw, wg, psk);
  exchangeCandidates(world, gw, raw);
}

/** Creates the gateway's connection for the raw client (no candidates exchanged yet). */
export function upsertRaw(world: World, gw: SimNodeHost, wg: RawWireGuard, psk: Uint8Array): void {
  const now = world.now;
  gw.node.upsertConnection(CID, wg.publicKey, psk, GATEWAY_CREDS, CLIENT_CREDS, now);
  gw.afterStep(now);
}

/** Gives each side the other's candidates (directly, no portal delay). */
export function exchangeCandidates(world: World, gw: SimNodeHost, raw: RawIceClient): void {
  const now = world.now;
  raw.addRemote(gw.signalled(CID), now);
  gw.node.addRemoteCandidate(CID, raw.hostCandidateString(), now);
  gw.afterStep(now);
}

/** The candidate strings of NewIceCandidate events for `cid` among `events`. */
export function candidateStrings(events: readonly NodeEvent[], cid: string): string[] {
  return events.flatMap((e) => e.type === "NewIceCandidate" && e.cid === cid ? [e.candidate] : []);
}
