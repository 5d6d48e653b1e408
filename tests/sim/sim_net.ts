/**
 * A deterministic simulated IP network for sans-IO hosts: hosts with IP addresses, per-link latency,
 * optional NAT in front of a host, blocked paths, and a time-ordered delivery heap driven by a
 * {@link FluxCapacitor}. Scheduled callbacks (signalling, test actions) share the heap.
 *
 * Processing order at one instant: due deliveries and callbacks (heap order), then hosts whose timers are
 * due (in the order they were added). After every action every host's transmits are flushed onto the
 * wire. Ties in the heap are broken by insertion order, so a run is fully determined by its inputs.
 *
 * @module
 */

import { crc32 } from "node:zlib";
import { formatSocketAddr, type IpFamily, type SocketAddr } from "../../src/wire/ip_addr.ts";
import type { FluxCapacitor } from "./flux_capacitor.ts";
import { MinHeap } from "./min_heap.ts";

/** A datagram a host wants to send; `src` null means "pick my address" ({@link SimHost.defaultSource}). */
export interface SimTransmit {
  readonly src: SocketAddr | null;
  readonly dst: SocketAddr;
  readonly payload: Uint8Array;
}

/** A participant of the simulation. */
export interface SimHost {
  readonly name: string;
  /** The host's interface IPs (private ones when it sits behind a NAT). */
  readonly ips: readonly string[];
  /** The source to use for a transmit without one. */
  defaultSource(family: IpFamily): SocketAddr | null;
  handleDatagram(src: SocketAddr, dst: SocketAddr, payload: Uint8Array, now: number): void;
  pollTransmit(): SimTransmit | undefined;
  pollTimeout(): number;
  handleTimeout(now: number): void;
  /** Called after every simulation step (drain events, record state). */
  afterStep?(now: number): void;
}

/** NAT in front of a host. */
export interface NatOptions {
  readonly publicIp: string;
  /** A new public port per (source, destination) instead of per source (endpoint-dependent mapping). */
  readonly symmetric?: boolean;
  /** Filter inbound by remote IP and port instead of remote IP only. */
  readonly portRestricted?: boolean;
  readonly firstPort?: number;
}

/** A datagram that went onto the wire (after NAT), for assertions and determinism checks. */
export interface SimPacket {
  readonly at: number;
  readonly from: string;
  readonly src: SocketAddr;
  readonly dst: SocketAddr;
  readonly payload: Uint8Array;
  /** "sent" | "blocked" | "unroutable" | "filtered" (NAT refused it on arrival). */
  outcome: "sent" | "blocked" | "unroutable" | "filtered";
}

interface Nat {
  readonly options: NatOptions;
  nextPort: number;
  readonly out: Map<string, number>;
  readonly back: Map<number, SocketAddr>;
  readonly permits: Set<string>;
}

interface HostEntry {
  readonly host: SimHost;
  readonly nat: Nat | null;
}

type Entry =
  | { at: number; seq: number; kind: "packet"; to: HostEntry; packet: SimPacket; dst: SocketAddr }
  | { at: number; seq: number; kind: "call"; fn: (now: number) => void };

/** Predicate deciding that a datagram is dropped (evaluated on the sender's own addresses, before NAT). */
export type BlockRule = (from: SimHost, src: SocketAddr, dst: SocketAddr, payload: Uint8Array) => boolean;

const MAX_STEPS_PER_INSTANT = 100_000;

/** The simulated network. */
export class SimNet {
  readonly clock: FluxCapacitor;
  readonly defaultLatencyMs: number;
  /** Every datagram put on the wire, in order. */
  readonly packets: SimPacket[] = [];
  /** Drops datagrams for which any rule returns true. */
  readonly blockRules: BlockRule[] = [];
  readonly #hosts: HostEntry[] = [];
  readonly #latency = new Map<string, number>();
  readonly #heap = new MinHeap<Entry>((a, b) => a.at < b.at || (a.at === b.at && a.seq < b.seq));
  #seq = 0;
  #inFlight = 0;
  #stepsAtInstant = 0;
  #lastInstant = -1;

  constructor(clock: FluxCapacitor, defaultLatencyMs = 10) {
    this.clock = clock;
    this.defaultLatencyMs = defaultLatencyMs;
  }

  get now(): number {
    return this.clock.now;
  }

  /** Adds a host, optionally behind a NAT. */
  addHost<T extends SimHost>(host: T, nat?: NatOptions): T {
    this.#hosts.push({
      host,
      nat: nat === undefined ? null : {
        options: nat,
        nextPort: nat.firstPort ?? 40000,
        out: new Map(),
        back: new Map(),
        permits: new Set(),
      },
    });
    return host;
  }

  /** One-way latency between two hosts (both directions). */
  setLatency(a: SimHost, b: SimHost, ms: number): void {
    this.#latency.set(`${a.name}|${b.name}`, ms);
    this.#latency.set(`${b.name}|${a.name}`, ms);
  }

  /** Forgets every mapping of the NAT in front of `host` (as after a NAT reboot); ports keep counting up. */
  resetNat(host: SimHost): void {
    const nat = this.#hosts.find((e) => e.host === host)?.nat;
    if (nat === undefined || nat === null) throw new Error(`${host.name} is not behind a NAT`);
    nat.out.clear();
    nat.back.clear();
    nat.permits.clear();
  }

  /** Adds a rule that drops matching datagrams; returns a function removing it again. */
  block(rule: BlockRule): () => void {
    this.blockRules.push(rule);
    return () => {
      const i = this.blockRules.indexOf(rule);
      if (i >= 0) this.blockRules.splice(i, 1);
    };
  }

  /** Runs `fn` at simulated instant `at` (in heap order with deliveries). */
  schedule(at: number, fn: (now: number) => void): void {
    this.#heap.push({ at: Math.max(at, this.now), seq: this.#seq++, kind: "call", fn });
  }

  /** Datagrams still travelling. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Processes everything due up to and including `until`, then sets the clock to `until`. */
  runUntil(until: number): void {
    while (this.step(until)) { /* keep going */ }
    if (this.now < until) this.clock.advanceTo(until);
  }

  runFor(ms: number): void {
    this.runUntil(this.now + ms);
  }

  /**
   * Steps until `done()` holds; throws when `cutOffMs` of simulated time pass first. Returns the instant
   * it became true.
   */
  advanceUntil(done: () => boolean, cutOffMs: number, what = "condition"): number {
    const end = this.now + cutOffMs;
    this.flushAll();
    for (;;) {
      if (done()) return this.now;
      if (!this.step(end)) {
        if (done()) return this.now;
        if (this.now < end) this.clock.advanceTo(end);
        throw new Error(`Simulation cut off after ${cutOffMs} ms waiting for ${what}`);
      }
    }
  }

  /**
   * Advances until the network is quiet: nothing in flight and no host timer due within `quietMs`.
   * Small steps towards the next delivery, large steps towards the next timer, never beyond `cutOffMs`.
   * Returns true when it went quiet, false when the cut-off was reached first.
   */
  advanceUntilIdle(options: { cutOffMs: number; quietMs?: number }): boolean {
    const end = this.now + options.cutOffMs;
    const quiet = options.quietMs ?? 1_000;
    this.flushAll();
    for (;;) {
      if (this.#heap.size === 0 && this.#nextHostDeadline() > this.now + quiet) return true;
      if (!this.step(end)) return false;
    }
  }

  /**
   * One step: the earliest due delivery/callback, else every host whose timer is due. Returns false
   * (without moving the clock) when nothing happens at or before `until`.
   */
  step(until = Infinity): boolean {
    this.flushAll(); // transmits queued by test code since the last step leave now
    const head = this.#heap.peek();
    const next = Math.min(head?.at ?? Infinity, this.#nextHostDeadline());
    if (next > until) return false;
    if (next > this.now) this.clock.advanceTo(next);
    this.#guard();
    const now = this.now;
    if (head !== undefined && head.at <= now) {
      this.#heap.pop();
      if (head.kind === "call") {
        head.fn(now);
      } else {
        this.#inFlight--;
        this.#deliver(head.to, head.packet, head.dst, now);
      }
    } else {
      for (const { host } of this.#hosts) if (host.pollTimeout() <= now) host.handleTimeout(now);
    }
    this.flushAll();
    return true;
  }

  /** Puts every host's pending transmits on the wire and runs the after-step hooks. */
  flushAll(): void {
    const now = this.now;
    for (let round = 0; round < 16; round++) {
      let any = false;
      for (const entry of this.#hosts) {
        entry.host.afterStep?.(now);
        for (let t = entry.host.pollTransmit(); t !== undefined; t = entry.host.pollTransmit()) {
          any = true;
          this.#send(entry, t, now);
        }
      }
      if (!any) return;
    }
  }

  /** Datagrams on the wire as compact lines (time, sender, 5-tuple, length, CRC-32): a run's fingerprint. */
  trace(): string[] {
    return this.packets.map((p) =>
      `${p.at} ${p.from} ${formatSocketAddr(p.src)}>${formatSocketAddr(p.dst)} ${p.payload.length} ` +
      `${crc32(p.payload).toString(16)} ${p.outcome}`
    );
  }

  // --- internals -------------------------------------------------------------------------------

  #send(from: HostEntry, t: SimTransmit, now: number): void {
    const src = t.src ?? from.host.defaultSource(t.dst.family);
    if (src === null) return; // no address of that family: the socket does not exist
    const blocked = this.blockRules.some((rule) => rule(from.host, src, t.dst, t.payload));
    let wireSrc = src;
    if (!blocked && from.nat !== null && from.host.ips.includes(src.ip) && !this.#isLocal(from, t.dst)) {
      wireSrc = mapOut(from.nat, src, t.dst);
    }
    const packet: SimPacket = {
      at: now,
      from: from.host.name,
      src: wireSrc,
      dst: t.dst,
      payload: t.payload.slice(),
      outcome: "sent",
    };
    this.packets.push(packet);
    if (blocked) {
      packet.outcome = "blocked";
      return;
    }
    const route = this.#route(wireSrc, t.dst);
    if (route === null) {
      packet.outcome = "unroutable";
      return;
    }
    const latency = route.to === from ? 0 : this.#latencyBetween(from.host, route.to.host);
    this.#inFlight++;
    this.#heap.push({
      at: now + latency,
      seq: this.#seq++,
      kind: "packet",
      to: route.to,
      packet,
      dst: route.dst,
    });
  }

  #deliver(to: HostEntry, packet: SimPacket, dst: SocketAddr, now: number): void {
    if (to.nat !== null && dst.ip === to.nat.options.publicIp) {
      const inner = inbound(to.nat, packet.src, dst);
      if (inner === null) {
        packet.outcome = "filtered";
        return;
      }
      dst = inner;
    }
    to.host.handleDatagram(packet.src, dst, packet.payload.slice(), now);
  }

  #route(src: SocketAddr, dst: SocketAddr): { to: HostEntry; dst: SocketAddr } | null {
    for (const entry of this.#hosts) {
      if (entry.nat !== null && entry.nat.options.publicIp === dst.ip) return { to: entry, dst };
      if (entry.nat === null && entry.host.ips.includes(dst.ip)) return { to: entry, dst };
    }
    // Private destinations are reachable only from the same host.
    for (const entry of this.#hosts) {
      if (entry.nat !== null && entry.host.ips.includes(dst.ip) && entry.host.ips.includes(src.ip)) {
        return { to: entry, dst };
      }
    }
    return null;
  }

  #isLocal(from: HostEntry, dst: SocketAddr): boolean {
    return from.host.ips.includes(dst.ip);
  }

  #latencyBetween(a: SimHost, b: SimHost): number {
    return this.#latency.get(`${a.name}|${b.name}`) ?? this.defaultLatencyMs;
  }

  #nextHostDeadline(): number {
    let at = Infinity;
    for (const { host } of this.#hosts) {
      const t = host.pollTimeout();
      if (t < at) at = t;
    }
    return at;
  }

  #guard(): void {
    if (this.now !== this.#lastInstant) {
      this.#lastInstant = this.now;
      this.#stepsAtInstant = 0;
    }
    if (++this.#stepsAtInstant > MAX_STEPS_PER_INSTANT) {
      throw new Error(`Simulation livelock: more than ${MAX_STEPS_PER_INSTANT} steps at ${this.now} ms`);
    }
  }
}

function mapOut(nat: Nat, src: SocketAddr, dst: SocketAddr): SocketAddr {
  const key = nat.options.symmetric
    ? `${formatSocketAddr(src)}>${formatSocketAddr(dst)}`
    : formatSocketAddr(src);
  let port = nat.out.get(key);
  if (port === undefined) {
    port = nat.nextPort++;
    nat.out.set(key, port);
    nat.back.set(port, src);
  }
  nat.permits.add(permitKey(nat, port, dst));
  return { family: src.family, ip: nat.options.publicIp, port };
}

function inbound(nat: Nat, remote: SocketAddr, dst: SocketAddr): SocketAddr | null {
  const inner = nat.back.get(dst.port);
  if (inner === undefined || !nat.permits.has(permitKey(nat, dst.port, remote))) return null;
  return inner;
}

function permitKey(nat: Nat, port: number, remote: SocketAddr): string {
  return nat.options.portRestricted ? `${port}|${formatSocketAddr(remote)}` : `${port}|${remote.ip}`;
}
