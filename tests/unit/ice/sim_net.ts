/**
 * A tiny deterministic network for driving {@link IceAgent}s with a fake clock: fixed one-way
 * latency, optional NAT per peer (endpoint-independent mapping, address-dependent filtering),
 * "relayed" addresses that are just extra public addresses of a peer, and a drop predicate.
 *
 * @module
 */

import type { IceAgent, IceEvent } from "../../../src/ice/agent.ts";
import { formatSocketAddr, sameSocketAddr, type SocketAddr, socketAddr } from "../../../src/wire/ip_addr.ts";
import { parseStun, StunAttr, StunClass, type StunMessage } from "../../../src/wire/stun.ts";

/** A NAT in front of a peer's private addresses. */
export interface SimNat {
  readonly publicIp: string;
  /** First public port handed out. */
  nextPort: number;
  /** Symmetric NATs map every (private source, destination) anew. */
  readonly symmetric: boolean;
  readonly out: Map<string, number>;
  readonly back: Map<number, SocketAddr>;
  /** "publicPort|remoteIp" pairs allowed back in. */
  readonly permits: Set<string>;
}

export interface SimPeer {
  readonly name: string;
  readonly agent: IceAgent;
  /** Addresses the peer owns (host and relayed). Private ones sit behind `nat`. */
  readonly addrs: SocketAddr[];
  readonly nat?: SimNat;
  /** Addresses behind the NAT (a subset of addrs). */
  readonly privateAddrs: SocketAddr[];
  readonly events: IceEvent[];
  /** When each event was polled (same index as `events`). */
  readonly eventTimes: number[];
}

/** A datagram on the wire, recorded for assertions. */
export interface SimPacket {
  readonly at: number;
  readonly from: string;
  readonly source: SocketAddr;
  readonly destination: SocketAddr;
  readonly payload: Uint8Array;
  readonly stun: StunMessage | null;
}

interface InFlight {
  at: number;
  to: SimPeer;
  source: SocketAddr;
  destination: SocketAddr;
  payload: Uint8Array;
}

export function addr(text: string): SocketAddr {
  const i = text.lastIndexOf(":");
  return socketAddr(text.slice(0, i).replace(/^\[|\]$/g, ""), Number(text.slice(i + 1)));
}

export class SimNet {
  now = 0;
  readonly latencyMs: number;
  readonly peers: SimPeer[] = [];
  /** Every datagram a peer sent (before NAT/drop). */
  readonly sent: SimPacket[] = [];
  /** Return true to drop a datagram (evaluated on the original, pre-NAT addresses). */
  drop: (from: SimPeer, source: SocketAddr, destination: SocketAddr) => boolean = () => false;
  #inFlight: InFlight[] = [];

  constructor(latencyMs = 10) {
    this.latencyMs = latencyMs;
  }

  addPeer(
    name: string,
    agent: IceAgent,
    addrs: SocketAddr[],
    nat?: { publicIp: string; firstPort?: number; symmetric?: boolean; privateAddrs: SocketAddr[] },
  ): SimPeer {
    const peer: SimPeer = {
      name,
      agent,
      addrs,
      privateAddrs: nat?.privateAddrs ?? [],
      events: [],
      eventTimes: [],
      ...(nat
        ? {
          nat: {
            publicIp: nat.publicIp,
            nextPort: nat.firstPort ?? 40000,
            symmetric: nat.symmetric ?? false,
            out: new Map(),
            back: new Map(),
            permits: new Set(),
          },
        }
        : {}),
    };
    this.peers.push(peer);
    return peer;
  }

  /** Runs until `until` (absolute ms) or until `stop()` is true after a step. */
  run(until: number, stop: () => boolean = () => false): void {
    for (let guard = 0; guard < 1_000_000; guard++) {
      this.#flush();
      if (stop()) return;
      let next = Infinity;
      for (const p of this.peers) next = Math.min(next, p.agent.pollTimeout());
      for (const f of this.#inFlight) next = Math.min(next, f.at);
      if (next > until) {
        this.now = Math.max(this.now, until);
        return;
      }
      this.now = Math.max(this.now, next);
      const due = this.#inFlight.filter((f) => f.at <= this.now);
      this.#inFlight = this.#inFlight.filter((f) => f.at > this.now);
      for (const f of due) this.#deliver(f);
      for (const p of this.peers) {
        if (p.agent.pollTimeout() <= this.now) p.agent.handleTimeout(this.now);
      }
    }
    throw new Error("simulation did not settle (livelock?)");
  }

  /** Requests sent by `name` (parsed). */
  requestsFrom(name: string): StunMessage[] {
    return this.sent.filter((p) => p.from === name && p.stun?.cls === StunClass.Request).map((p) => p.stun!);
  }

  /** True when any request sent by `name` carried USE-CANDIDATE. */
  sentUseCandidate(name: string): boolean {
    return this.requestsFrom(name).some((m) => m.has(StunAttr.UseCandidate));
  }

  #flush(): void {
    for (const p of this.peers) {
      for (let t = p.agent.pollTransmit(); t; t = p.agent.pollTransmit()) {
        this.#send(p, t.source, t.destination, t.payload);
      }
      for (let e = p.agent.pollEvent(); e; e = p.agent.pollEvent()) {
        p.events.push(e);
        p.eventTimes.push(this.now);
      }
    }
  }

  #send(from: SimPeer, source: SocketAddr, destination: SocketAddr, payload: Uint8Array): void {
    const parsed = parseStun(payload);
    this.sent.push({
      at: this.now,
      from: from.name,
      source,
      destination,
      payload,
      stun: parsed.ok ? parsed.msg : null,
    });
    if (!from.addrs.some((a) => sameSocketAddr(a, source))) {
      throw new Error(`${from.name} sent from ${formatSocketAddr(source)}, an address it does not own`);
    }
    if (this.drop(from, source, destination)) return;
    let src = source;
    if (from.nat && from.privateAddrs.some((a) => sameSocketAddr(a, source))) {
      src = this.#mapOut(from.nat, source, destination);
    }
    const target = this.#route(src, destination);
    if (!target) return;
    this.#inFlight.push({
      at: this.now + this.latencyMs,
      to: target.peer,
      source: src,
      destination: target.dst,
      payload,
    });
  }

  #mapOut(nat: SimNat, source: SocketAddr, destination: SocketAddr): SocketAddr {
    const key = nat.symmetric
      ? `${formatSocketAddr(source)}>${formatSocketAddr(destination)}`
      : formatSocketAddr(source);
    let port = nat.out.get(key);
    if (port === undefined) {
      port = nat.nextPort++;
      nat.out.set(key, port);
      nat.back.set(port, source);
    }
    nat.permits.add(`${port}|${destination.ip}`);
    return { family: source.family, ip: nat.publicIp, port };
  }

  #route(source: SocketAddr, destination: SocketAddr): { peer: SimPeer; dst: SocketAddr } | null {
    for (const p of this.peers) {
      if (p.nat && p.nat.publicIp === destination.ip) {
        const inner = p.nat.back.get(destination.port);
        if (!inner || !p.nat.permits.has(`${destination.port}|${source.ip}`)) return null;
        return { peer: p, dst: inner };
      }
      const owned = p.addrs.some((a) => sameSocketAddr(a, destination));
      const isPrivate = p.privateAddrs.some((a) => sameSocketAddr(a, destination));
      if (owned && !isPrivate) return { peer: p, dst: destination };
    }
    return null;
  }

  #deliver(f: InFlight): void {
    const parsed = parseStun(f.payload);
    if (!parsed.ok) return;
    if (!f.to.agent.acceptsMessage(parsed.msg)) return;
    f.to.agent.handlePacket(this.now, f.source, f.destination, parsed.msg);
  }
}

/** The last NominatedSend a peer reported, or undefined. */
export function lastNominated(p: SimPeer): { source: SocketAddr; destination: SocketAddr } | undefined {
  for (let i = p.events.length - 1; i >= 0; i--) {
    const e = p.events[i]!;
    if (e.type === "NominatedSend") return { source: e.source, destination: e.destination };
  }
  return undefined;
}

/** When the peer first entered `state`, or undefined. */
export function stateTime(p: SimPeer, state: string): number | undefined {
  const i = p.events.findIndex((e) => e.type === "StateChanged" && e.state === state);
  return i < 0 ? undefined : p.eventTimes[i];
}

/** The states a peer went through, in order. */
export function states(p: SimPeer): string[] {
  return p.events.flatMap((e) => (e.type === "StateChanged" ? [e.state] : []));
}
