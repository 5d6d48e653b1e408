/**
 * A {@link P2pNode} as a {@link SimNet} host: one UDP socket (port 52625) per IP, a fake TUN device
 * (decrypted packets are recorded; {@link SimNodeHost.sendIp} plays the role of a TUN read), and an
 * event log with the simulated time of every node event.
 *
 * The wrapper exercises the node the way the I/O layer does: reusable {@link PeerAddrView}s and
 * {@link NodeOut}, receive slots without headroom, send slots with 20 bytes of headroom.
 *
 * @module
 */

import type { CryptoBackend } from "../../src/crypto/backend.ts";
import { createNobleBackend } from "../../src/crypto/mod.ts";
import type { IceState } from "../../src/ice/agent.ts";
import type { NodeEvent } from "../../src/p2p/events.ts";
import { type ConnectionInfo, type NodeRole, P2pNode } from "../../src/p2p/node.ts";
import { PeerAddrView } from "../../src/p2p/peer_addr.ts";
import { ENCAPSULATE_HEADROOM, NodeOut, P2pResult, type Transmit } from "../../src/p2p/transmit.ts";
import { type Rng, SeededRng } from "../../src/rng.ts";
import { type IpFamily, type SocketAddr, socketAddr } from "../../src/wire/ip_addr.ts";
import type { FluxCapacitor } from "./flux_capacitor.ts";
import type { SimHost, SimTransmit } from "./sim_net.ts";

/** The gateway's UDP port (49152 + 3473). */
export const NODE_PORT = 52625;
const SLOT_LEN = 2048;
const nobleBackend = createNobleBackend();

/** Options of {@link SimNodeHost}. */
export interface SimNodeOptions {
  readonly role: NodeRole;
  readonly ips: readonly string[];
  readonly seed: number;
  readonly clock: FluxCapacitor;
  /** Private key seed (defaults to `seed`). */
  readonly keySeed?: number;
  /** Crypto backend (default: noble). */
  readonly backend?: CryptoBackend;
}

/** A node event with the instant it was drained. */
export interface TimedEvent {
  readonly at: number;
  readonly event: NodeEvent;
}

/** A record of a decrypted IP packet written to the fake TUN. */
export interface TunPacket {
  readonly at: number;
  readonly cid: string;
  readonly packet: Uint8Array;
}

/** A connection state change seen by the wrapper (polled after every step). */
export interface StateChange {
  readonly at: number;
  readonly cid: string;
  readonly state: string;
  readonly iceState: IceState;
  readonly idleTimings: boolean;
}

/** The host. */
export class SimNodeHost implements SimHost {
  readonly name: string;
  readonly ips: readonly string[];
  readonly node: P2pNode;
  readonly rng: Rng;
  readonly events: TimedEvent[] = [];
  readonly tun: TunPacket[] = [];
  /** Every data-path drop: [time, P2pDrop, WireGuard DropReason]. */
  readonly drops: [number, number, number][] = [];
  /** Every transmit the node produced, in order (control path and data path). */
  readonly sent: { at: number; src: SocketAddr | null; dst: SocketAddr; payload: Uint8Array }[] = [];
  readonly stateLog: StateChange[] = [];
  /** Listeners called for every event as it is drained (signalling). */
  readonly listeners: ((e: NodeEvent, now: number) => void)[] = [];
  readonly #clock: FluxCapacitor;
  readonly #queue: SimTransmit[] = [];
  readonly #from = new PeerAddrView();
  readonly #local = new PeerAddrView();
  readonly #out = new NodeOut();
  readonly #rx = new Uint8Array(SLOT_LEN);
  readonly #tx = new Uint8Array(SLOT_LEN);
  readonly #watched = new Map<string, string>();

  constructor(name: string, options: SimNodeOptions) {
    this.name = name;
    this.ips = options.ips;
    this.#clock = options.clock;
    this.rng = new SeededRng(options.seed);
    const privateKey = new Uint8Array(32);
    new SeededRng(options.keySeed ?? options.seed * 7919).fill(privateKey);
    this.node = new P2pNode({
      role: options.role,
      privateKey,
      backend: options.backend ?? nobleBackend,
      rng: this.rng,
      now: options.clock.now,
      wallClock: options.clock.wallClock,
    });
  }

  /** Records state changes of `cid` after every step ({@link stateLog}). */
  watch(cid: string): void {
    this.#watched.set(cid, "");
  }

  defaultSource(family: IpFamily): SocketAddr | null {
    const ip = this.ips.find((i) => (i.includes(":") ? 6 : 4) === family);
    return ip === undefined ? null : socketAddr(ip, NODE_PORT);
  }

  /** Sends one IP packet through the tunnel of `cid` (a TUN read). Returns the node's result code. */
  sendIp(cid: string, packet: Uint8Array): number {
    const now = this.#clock.now;
    const buf = this.#tx;
    buf.set(packet, ENCAPSULATE_HEADROOM);
    const out = this.#out;
    const r = this.node.encapsulate(cid, buf, ENCAPSULATE_HEADROOM, packet.length, now, out);
    if (r === P2pResult.WriteToNetwork) {
      const t: SimTransmit = {
        src: out.src === null ? null : out.src.toSocketAddr(),
        dst: out.dst!.toSocketAddr(),
        payload: out.buf.slice(out.off, out.off + out.len),
      };
      this.sent.push({ at: now, ...t });
      this.#queue.push(t);
    } else if (r === P2pResult.Drop) {
      this.drops.push([now, out.dropReason, out.wgDropReason]);
    }
    this.afterStep(now);
    return r;
  }

  handleDatagram(src: SocketAddr, dst: SocketAddr, payload: Uint8Array, now: number): void {
    const buf = this.#rx;
    buf.set(payload, 0);
    this.#from.setSocketAddr(src);
    this.#local.setSocketAddr(dst);
    const out = this.#out;
    const r = this.node.decapsulate(buf, 0, payload.length, this.#from, this.#local, now, out);
    if (r === P2pResult.WriteToTunnel) {
      this.tun.push({ at: now, cid: out.cid, packet: out.buf.slice(out.off, out.off + out.len) });
    } else if (r === P2pResult.Drop) {
      this.drops.push([now, out.dropReason, out.wgDropReason]);
    }
    this.afterStep(now);
  }

  pollTransmit(): SimTransmit | undefined {
    const queued = this.#queue.shift();
    if (queued !== undefined) return queued;
    const t: Transmit | undefined = this.node.pollTransmit();
    if (t === undefined) return undefined;
    this.sent.push({ at: this.#clock.now, src: t.src, dst: t.dst, payload: t.payload });
    return t;
  }

  pollTimeout(): number {
    return this.node.pollTimeout();
  }

  handleTimeout(now: number): void {
    this.node.handleTimeout(now);
    this.afterStep(now);
  }

  /** Drains node events (to {@link events} and the listeners) and records watched state changes. */
  afterStep(now: number): void {
    for (let e = this.node.pollEvent(); e !== undefined; e = this.node.pollEvent()) {
      this.events.push({ at: now, event: e });
      for (const l of this.listeners) l(e, now);
    }
    for (const [cid, last] of this.#watched) {
      const info = this.node.connectionInfo(cid);
      const state = info === undefined ? "gone" : info.state;
      const key = info === undefined ? state : `${state}|${info.iceState}|${info.idleTimings}`;
      if (key === last) continue;
      this.#watched.set(cid, key);
      this.stateLog.push({
        at: now,
        cid,
        state,
        iceState: info?.iceState ?? "Disconnected",
        idleTimings: info?.idleTimings ?? false,
      });
    }
  }

  info(cid: string): ConnectionInfo | undefined {
    return this.node.connectionInfo(cid);
  }

  /** Events of one type, in order. */
  eventsOf<T extends NodeEvent["type"]>(
    type: T,
  ): (TimedEvent & { event: Extract<NodeEvent, { type: T }> })[] {
    return this.events.filter((e) => e.event.type === type) as (TimedEvent & {
      event: Extract<NodeEvent, { type: T }>;
    })[];
  }

  /** Candidate strings signalled for `cid` (NewIceCandidate), in order. */
  signalled(cid: string): string[] {
    return this.eventsOf("NewIceCandidate").filter((e) => e.event.cid === cid).map((e) => e.event.candidate);
  }

  /** Candidate strings invalidated for `cid`, in order. */
  invalidated(cid: string): string[] {
    return this.eventsOf("InvalidateIceCandidate").filter((e) => e.event.cid === cid).map((e) =>
      e.event.candidate
    );
  }
}

/** A minimal IPv4/UDP packet (checksums zero) carrying `payload`: enough for the tunnel's checks. */
export function ipv4Packet(src: string, dst: string, payload: Uint8Array): Uint8Array {
  const total = 28 + payload.length;
  const p = new Uint8Array(total);
  p[0] = 0x45;
  p[2] = total >> 8;
  p[3] = total & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set(src.split(".").map(Number), 12);
  p.set(dst.split(".").map(Number), 16);
  p[20] = 0x30;
  p[21] = 0x39;
  p[22] = 0x00;
  p[23] = 0x35;
  p[24] = (8 + payload.length) >> 8;
  p[25] = (8 + payload.length) & 0xff;
  p.set(payload, 28);
  return p;
}
