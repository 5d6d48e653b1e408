/**
 * Wires one sans-IO {@link Allocation} to a {@link SimTurnServer} and a peer, with a fake clock.
 * Datagrams move instantly; `dropClientToServer` simulates loss.
 */

import { SeededRng } from "../../../src/rng.ts";
import {
  Allocation,
  type AllocationEvent,
  type AllocationOptions,
  type RelayKind,
  type RelaySocket,
} from "../../../src/turn/allocation.ts";
import { type SocketAddr, socketAddr } from "../../../src/wire/ip_addr.ts";
import { parseStun, type StunMessage } from "../../../src/wire/stun.ts";
import { SimTurnServer, type SimTurnServerOptions } from "../../_helpers/sim_turn_server.ts";

export const LOCAL4 = socketAddr("10.0.0.2", 52625);
export const LOCAL6 = socketAddr("fd00::2", 52625);
/** Where the v4 client appears to the relay (NAT). */
export const MAPPED4 = socketAddr("203.0.113.5", 40000);
export const RELAY4 = socketAddr("198.51.100.1", 3478);
export const RELAY6 = socketAddr("2001:db8::1", 3478);
export const PEER4 = socketAddr("192.0.2.50", 6000);
export const PEER6 = socketAddr("2001:db8:99::50", 6000);
export const SESSION_ID = "A".repeat(64);
export const USER = "1700000000:gateway";
export const PASS = "secret-password";

export interface BedOptions {
  readonly server?: RelaySocket;
  readonly password?: string;
  readonly relayKind?: RelayKind;
  readonly sim?: Partial<SimTurnServerOptions>;
  readonly seed?: number;
  /** Share a relay with another testbed (same client 5-tuple). */
  readonly serverInstance?: SimTurnServer;
}

export class Testbed {
  now = 0;
  readonly alloc: Allocation;
  readonly server: SimTurnServer;
  /** Datagrams the relay delivered to peers. */
  readonly peerInbox: { from: SocketAddr; to: SocketAddr; payload: Uint8Array }[] = [];
  /** ChannelData payloads the allocation unwrapped. */
  readonly clientInbox: { peer: SocketAddr; relayAddr: SocketAddr; payload: Uint8Array }[] = [];
  /** Every datagram the allocation sent, with the time. */
  readonly sent: { at: number; destination: SocketAddr; payload: Uint8Array }[] = [];
  readonly events: AllocationEvent[] = [];
  dropClientToServer = false;
  dropServerToClient = false;

  constructor(options: BedOptions = {}) {
    const rng = new SeededRng(options.seed ?? 1);
    const serverAddrs = options.server ?? { v4: RELAY4 };
    this.server = options.serverInstance ?? new SimTurnServer({
      listen: serverAddrs,
      relayIp4: "198.51.100.1",
      ...(serverAddrs.v6 !== undefined ? { relayIp6: "2001:db8::1" } : {}),
      users: { [USER]: PASS },
      rng: new SeededRng(999),
      ...options.sim,
    });
    const allocOptions: AllocationOptions = {
      server: serverAddrs,
      username: USER,
      password: options.password ?? PASS,
      sessionId: SESSION_ID,
      rng,
      now: this.now,
      ...(options.relayKind !== undefined ? { relayKind: options.relayKind } : {}),
    };
    this.alloc = new Allocation(allocOptions);
  }

  /** Moves datagrams until nothing is left in flight. */
  pump(): void {
    for (let guard = 0; guard < 10_000; guard++) {
      let moved = false;
      for (let t = this.alloc.pollTransmit(); t !== undefined; t = this.alloc.pollTransmit()) {
        moved = true;
        this.sent.push({ at: this.now, destination: t.destination, payload: t.payload });
        if (this.dropClientToServer) continue;
        const from = t.destination.family === 4 ? MAPPED4 : LOCAL6;
        this.server.handleClientInput(from, t.destination, t.payload, this.now);
      }
      for (let t = this.server.pollTransmit(); t !== undefined; t = this.server.pollTransmit()) {
        moved = true;
        this.#deliverFromServer(t.source, t.destination, t.payload);
      }
      this.#drainEvents();
      if (!moved) return;
    }
    throw new Error("pump did not settle");
  }

  /** Advances the clock to `to`, firing every timer on the way (allocation and server). */
  advance(to: number): void {
    this.pump();
    for (let guard = 0; guard < 100_000; guard++) {
      const next = Math.min(this.alloc.pollTimeout(), this.server.pollTimeout());
      if (next > to) break;
      this.now = Math.max(this.now, next);
      this.alloc.handleTimeout(this.now);
      this.server.handleTimeout(this.now);
      this.pump();
    }
    this.now = to;
    this.alloc.handleTimeout(this.now);
    this.pump();
  }

  advanceBy(ms: number): void {
    this.advance(this.now + ms);
  }

  /** Sends `payload` from the allocation to `peer` through the relay. Returns the channel or -1. */
  sendToPeer(peer: SocketAddr, payload: Uint8Array): number {
    const buf = new Uint8Array(payload.length + 8);
    buf.set(payload, 4);
    const channel = this.alloc.encodeToPeer(peer, buf, 4, payload.length, this.now);
    if (channel >= 0) {
      const dst = this.alloc.activeSocket!;
      this.sent.push({ at: this.now, destination: dst, payload: buf.subarray(0, 4 + payload.length) });
      if (!this.dropClientToServer) {
        const from = dst.family === 4 ? MAPPED4 : LOCAL6;
        this.server.handleClientInput(from, dst, buf.subarray(0, 4 + payload.length), this.now);
      }
    }
    this.pump();
    return channel;
  }

  /** A peer sends `payload` to one of our relayed addresses. */
  peerSends(peer: SocketAddr, relayed: SocketAddr, payload: Uint8Array): void {
    this.server.handlePeerInput(peer, relayed, payload, this.now);
    this.pump();
  }

  /** Requests the allocation sent (parsed), optionally of one method. */
  sentStun(method?: number): { at: number; msg: StunMessage }[] {
    const out: { at: number; msg: StunMessage }[] = [];
    for (const s of this.sent) {
      const r = parseStun(s.payload);
      if (r.ok && (method === undefined || r.msg.method === method)) out.push({ at: s.at, msg: r.msg });
    }
    return out;
  }

  takeEvents(): AllocationEvent[] {
    this.#drainEvents();
    return this.events.splice(0);
  }

  #drainEvents(): void {
    for (let e = this.alloc.pollEvent(); e !== undefined; e = this.alloc.pollEvent()) this.events.push(e);
  }

  #deliverFromServer(source: SocketAddr, destination: SocketAddr, payload: Uint8Array): void {
    const toClient = (destination.ip === MAPPED4.ip && destination.port === MAPPED4.port) ||
      (destination.ip === LOCAL6.ip && destination.port === LOCAL6.port);
    if (!toClient) {
      this.peerInbox.push({ from: source, to: destination, payload });
      return;
    }
    if (this.dropServerToClient) return;
    const local = destination.family === 4 ? LOCAL4 : LOCAL6;
    if (payload[0]! >= 0x40 && payload[0]! <= 0x4f) {
      const d = this.alloc.decapsulate(source, payload, 0, payload.length, this.now);
      if (d !== null) {
        this.clientInbox.push({
          peer: d.peer,
          relayAddr: d.relayAddr,
          payload: payload.slice(d.payloadOff, d.payloadOff + d.payloadLen),
        });
      }
      return;
    }
    this.alloc.handleInput(source, local, payload, this.now);
  }
}

/** Runs the initial BINDING + ALLOCATE exchange and returns the testbed with events drained. */
export function allocated(options: BedOptions = {}): Testbed {
  const bed = new Testbed(options);
  bed.pump();
  if (!bed.alloc.hasAllocation()) throw new Error("allocation did not succeed");
  bed.takeEvents();
  return bed;
}
