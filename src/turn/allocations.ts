/**
 * The set of TURN allocations of a node, keyed by relay id, with the relay-list rules of spec §3.5
 * (snownet `Allocations`): `upsert` keeps an allocation whose id, credentials and addresses are
 * unchanged and replaces it otherwise; freed allocations leave the set when their "freed" event is
 * drained.
 *
 * @module
 */

import type { Rng } from "../rng.ts";
import { randomBelow } from "../rng.ts";
import { earliest } from "../time.ts";
import type { SocketAddr } from "../wire/ip_addr.ts";
import {
  Allocation,
  type AllocationEvent,
  RelayKind,
  type RelaySocket,
  relaySocketMatches,
  type TurnCandidate,
  type TurnTransmit,
} from "./allocation.ts";

/** Outcome of {@link Allocations.upsert}. */
export type UpsertResult =
  | { readonly type: "added" }
  | { readonly type: "skipped" }
  /** `previous` was dropped: the caller invalidates its candidates. */
  | { readonly type: "replaced"; readonly previous: Allocation };

/** One relay as announced by the portal. */
export interface RelayConfig {
  readonly id: string;
  readonly server: RelaySocket;
  readonly username: string;
  readonly password: string;
  readonly realm?: string;
}

/** An allocation event tagged with its relay id. */
export interface RelayEvent {
  readonly relayId: string;
  readonly event: AllocationEvent;
}

/** Construction parameters shared by every allocation of a node. */
export interface AllocationsOptions {
  readonly sessionId: string;
  readonly rng: Rng;
  /** TURN dialect of every relay; defaults to Firezone (see {@link RelayKind}). */
  readonly relayKind?: RelayKind;
}

/** All allocations of a node. */
export class Allocations {
  readonly #byId = new Map<string, Allocation>();
  readonly #options: AllocationsOptions;

  constructor(options: AllocationsOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#byId.size;
  }

  get(id: string): Allocation | undefined {
    return this.#byId.get(id);
  }

  ids(): string[] {
    return [...this.#byId.keys()];
  }

  entries(): IterableIterator<[string, Allocation]> {
    return this.#byId.entries();
  }

  /** The allocation whose relay address is `from` (incoming STUN/ChannelData), with its id. */
  byServer(from: SocketAddr): [string, Allocation] | undefined {
    for (const entry of this.#byId) if (relaySocketMatches(entry[1].server, from)) return entry;
    return undefined;
  }

  /** The allocation owning relayed address `addr`. */
  byRelayedAddress(addr: SocketAddr): [string, Allocation] | undefined {
    for (const entry of this.#byId) if (entry[1].hasRelayedAddress(addr)) return entry;
    return undefined;
  }

  /** Adds a relay, keeps it when unchanged (same credentials and addresses), or replaces it. */
  upsert(relay: RelayConfig, now: number): UpsertResult {
    const existing = this.#byId.get(relay.id);
    if (
      existing !== undefined && existing.matchesCredentials(relay.username, relay.password) &&
      existing.matchesServer(relay.server)
    ) {
      return { type: "skipped" };
    }
    this.#byId.set(relay.id, this.#create(relay, now));
    return existing === undefined ? { type: "added" } : { type: "replaced", previous: existing };
  }

  /** Removes a relay; returns it so the caller can invalidate its candidates. */
  remove(id: string): Allocation | undefined {
    const allocation = this.#byId.get(id);
    this.#byId.delete(id);
    return allocation;
  }

  /** Picks one allocation uniformly at random (relay selection for a new connection). */
  sample(rng: Rng): [string, Allocation] | undefined {
    if (this.#byId.size === 0) return undefined;
    let i = randomBelow(rng, this.#byId.size);
    for (const entry of this.#byId) if (i-- === 0) return entry;
    return undefined;
  }

  /** Host and srflx candidates of every allocation, without duplicates. */
  sharedCandidates(): TurnCandidate[] {
    const out: TurnCandidate[] = [];
    for (const a of this.#byId.values()) {
      for (const c of a.hostAndServerReflexiveCandidates()) {
        if (!out.some((o) => o.kind === c.kind && o.addr.ip === c.addr.ip && o.addr.port === c.addr.port)) {
          out.push(c);
        }
      }
    }
    return out;
  }

  /** Proactive refresh of every allocation except `except` (portal `init` / presence). */
  refreshAll(now: number, except: ReadonlySet<string> = new Set()): void {
    for (const [id, a] of this.#byId) if (!except.has(id)) a.refresh(now);
  }

  handleTimeout(now: number): void {
    for (const a of this.#byId.values()) a.handleTimeout(now);
  }

  pollTimeout(): number {
    let at = Infinity;
    for (const a of this.#byId.values()) at = earliest(at, a.pollTimeout());
    return at;
  }

  pollTransmit(): TurnTransmit | undefined {
    for (const a of this.#byId.values()) {
      const t = a.pollTransmit();
      if (t !== undefined) return t;
    }
    return undefined;
  }

  /** The next event of any allocation; a "freed" event also removes that allocation. */
  pollEvent(): RelayEvent | undefined {
    for (const [relayId, a] of this.#byId) {
      const event = a.pollEvent();
      if (event === undefined) continue;
      if (event.type === "freed") this.#byId.delete(relayId);
      return { relayId, event };
    }
    return undefined;
  }

  #create(relay: RelayConfig, now: number): Allocation {
    return new Allocation({
      server: relay.server,
      username: relay.username,
      password: relay.password,
      ...(relay.realm !== undefined ? { realm: relay.realm } : {}),
      sessionId: this.#options.sessionId,
      rng: this.#options.rng,
      now,
      relayKind: this.#options.relayKind ?? RelayKind.Firezone,
    });
  }
}
