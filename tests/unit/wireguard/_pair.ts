/**
 * Test helpers for WireGuard tunnel pairs: two sans-IO tunnels wired back to back, packets carried by
 * hand, time moved explicitly.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { CryptoBackend } from "../../../src/crypto/backend.ts";
import { createNobleBackend } from "../../../src/crypto/noble_backend.ts";
import { type Rng, SeededRng } from "../../../src/rng.ts";
import { socketAddr } from "../../../src/wire/ip_addr.ts";
import {
  anchoredWallClock,
  HandshakeRateLimiter,
  IndexAllocator,
  StaticIdentity,
  Tunnel,
  type TunnelOptions,
  WgOut,
  WgResult,
} from "../../../src/wireguard/mod.ts";

export const noble: CryptoBackend = createNobleBackend();

/** 2024-05-01T00:00:00Z: the fake wall clock of every test tunnel at now = 0. */
export const WALL_CLOCK_AT_ZERO_MS = 1_714_521_600_000;

export const ADDR_A = socketAddr("192.0.2.1", 51820);
export const ADDR_B = socketAddr("198.51.100.2", 52625);

/** Buffer layout used for data: IP packets at HEADROOM, room for the tag and padding behind. */
export const HEADROOM = 20;
export const SLOT_LEN = 2048;

export interface Peer {
  readonly identity: StaticIdentity;
  readonly limiter: HandshakeRateLimiter;
  readonly allocator: IndexAllocator;
  readonly rng: Rng;
  readonly tunnel: Tunnel;
  /** Reusable out-object and reply buffer. */
  readonly out: WgOut;
  readonly dst: Uint8Array;
}

export interface PairOptions {
  backend?: CryptoBackend;
  seed?: number;
  /** PSK of A (and of B unless `pskB` is given). */
  psk?: Uint8Array | null;
  pskB?: Uint8Array | null;
  /** Extra tunnel options for both sides. */
  tunnel?: Partial<
    Pick<TunnelOptions, "persistentKeepaliveMs" | "rekeyAfterMessages" | "rejectAfterMessages">
  >;
  /** Rate limit of B's limiter (handshakes/s). */
  limitB?: number;
}

/** A pair of peers: A and B know each other's static keys. */
export interface Pair {
  readonly a: Peer;
  readonly b: Peer;
}

/** Deterministic 32-byte key from a seed. */
export function testKey(seed: number): Uint8Array {
  const k = new Uint8Array(32);
  new SeededRng(seed).fill(k);
  return k;
}

export function makePair(options: PairOptions = {}, now = 0): Pair {
  const backend = options.backend ?? noble;
  const seed = options.seed ?? 1;
  const idA = new StaticIdentity(backend, testKey(seed * 10 + 1));
  const idB = new StaticIdentity(backend, testKey(seed * 10 + 2));
  const psk = options.psk ?? null;
  const pskB = options.pskB === undefined ? psk : options.pskB;
  const common = { backend, tunnel: options.tunnel ?? {}, now };
  const a = makePeer({ ...common, identity: idA, peerPublic: idB.publicKey, psk, rngSeed: seed * 10 + 3 });
  const b = makePeer({
    ...common,
    identity: idB,
    peerPublic: idA.publicKey,
    psk: pskB,
    rngSeed: seed * 10 + 4,
    ...(options.limitB === undefined ? {} : { limit: options.limitB }),
  });
  return { a, b };
}

export interface PeerOptions {
  identity: StaticIdentity;
  peerPublic: Uint8Array;
  backend?: CryptoBackend;
  psk?: Uint8Array | null;
  rngSeed?: number;
  tunnel?: PairOptions["tunnel"];
  /** Limit of a new limiter (ignored when `limiter` is given). */
  limit?: number;
  /** A shared limiter (per node). */
  limiter?: HandshakeRateLimiter;
  now?: number;
}

export function makePeer(o: PeerOptions): Peer {
  const backend = o.backend ?? noble;
  const now = o.now ?? 0;
  const rng = new SeededRng(o.rngSeed ?? 1234);
  const limiter = o.limiter ?? new HandshakeRateLimiter(backend, o.identity, rng, now, o.limit);
  const allocator = new IndexAllocator(rng);
  const tunnel = new Tunnel({
    backend,
    identity: o.identity,
    peerStaticPublic: o.peerPublic,
    presharedKey: o.psk ?? null,
    index: allocator.next(),
    rateLimiter: limiter,
    rng,
    wallClock: anchoredWallClock(WALL_CLOCK_AT_ZERO_MS, 0),
    ...o.tunnel,
  }, now);
  return {
    identity: o.identity,
    limiter,
    allocator,
    rng,
    tunnel,
    out: new WgOut(),
    dst: new Uint8Array(SLOT_LEN),
  };
}

/** Copies the message an out-object points at (it lives in a buffer the next call may overwrite). */
export function take(out: WgOut): Uint8Array {
  return out.buf.slice(out.off, out.off + out.len);
}

/** Delivers `msg` to `to` (as if from `from`), returning the result code; output stays in `to.out`. */
export function deliver(
  to: Peer,
  msg: Uint8Array,
  now: number,
  from = ADDR_A,
): WgResult {
  const buf = new Uint8Array(SLOT_LEN);
  buf.set(msg, HEADROOM);
  return to.tunnel.decapsulate(buf, HEADROOM, msg.length, from, to.dst, 0, to.out, now);
}

/**
 * Full handshake A → B at `now`: A initiates, B responds, A confirms with a keepalive that B accepts.
 * Returns the three messages.
 */
export function handshake(
  pair: Pair,
  now: number,
): { init: Uint8Array; resp: Uint8Array; confirm: Uint8Array } {
  const { a, b } = pair;
  assert.equal(a.tunnel.initiateHandshake(a.out, now), WgResult.WriteToNetwork);
  const init = take(a.out);
  assert.equal(deliver(b, init, now, ADDR_A), WgResult.WriteToNetwork, "B answers the initiation");
  const resp = take(b.out);
  assert.equal(deliver(a, resp, now, ADDR_B), WgResult.WriteToNetwork, "A confirms with a keepalive");
  const confirm = take(a.out);
  assert.equal(deliver(b, confirm, now, ADDR_A), WgResult.Done, "B accepts the keepalive");
  return { init, resp, confirm };
}

/** A minimal IPv4/UDP packet of `total` bytes (>= 28) from 100.64.0.1 to 10.0.0.1 with a fill byte. */
export function ipv4Packet(total: number, fill = 0xab): Uint8Array {
  const p = new Uint8Array(total).fill(fill);
  p[0] = 0x45;
  p[1] = 0;
  p[2] = total >> 8;
  p[3] = total & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set([100, 64, 0, 1], 12);
  p.set([10, 0, 0, 1], 16);
  return p;
}

/** Encrypts `packet` on `from` and returns the wire message (asserting a session exists). */
export function seal(from: Peer, packet: Uint8Array, now: number): Uint8Array {
  const buf = new Uint8Array(SLOT_LEN);
  buf.set(packet, HEADROOM);
  assert.equal(from.tunnel.encapsulate(buf, HEADROOM, packet.length, from.out, now), WgResult.WriteToNetwork);
  assert.equal(from.out.off, HEADROOM - 16);
  return take(from.out);
}

/** Delivers a data message and returns the decrypted IP packet (asserting WriteToTunnel). */
export function open(to: Peer, msg: Uint8Array, now: number): Uint8Array {
  assert.equal(deliver(to, msg, now), WgResult.WriteToTunnel);
  return take(to.out);
}

/** Runs `handleTimeout` and returns the code plus a copy of any message. */
export function tick(p: Peer, now: number): { code: WgResult; msg: Uint8Array | null } {
  const code = p.tunnel.handleTimeout(p.out, now);
  return { code, msg: code === WgResult.WriteToNetwork ? take(p.out) : null };
}

/** One entry of a {@link PairSim} trace. */
export interface SimEvent {
  readonly at: number;
  /** Which peer sent (or, for "expired", which peer expired). */
  readonly peer: "a" | "b";
  /** WireGuard message type sent (1..4), or 0 for a connection expiry. */
  readonly type: number;
  readonly len: number;
}

/**
 * Drives a pair with a shared fake clock and an instant, lossless link (optionally cut): every message a
 * peer produces is delivered to the other at once, replies cascade, queues are flushed.
 */
export class PairSim {
  now: number;
  linkUp = true;
  readonly trace: SimEvent[] = [];
  readonly pair: Pair;
  readonly delivered: { a: Uint8Array[]; b: Uint8Array[] } = { a: [], b: [] };

  constructor(pair: Pair, now = 0) {
    this.pair = pair;
    this.now = now;
  }

  peer(name: "a" | "b"): Peer {
    return name === "a" ? this.pair.a : this.pair.b;
  }

  /** Sends an IP packet of `size` bytes from `name` through the tunnel. */
  sendData(name: "a" | "b", size: number): WgResult {
    const p = this.peer(name);
    const buf = new Uint8Array(SLOT_LEN);
    buf.set(ipv4Packet(size), HEADROOM);
    const code = p.tunnel.encapsulate(buf, HEADROOM, size, p.out, this.now);
    if (code === WgResult.WriteToNetwork) this.transmit(name, take(p.out));
    return code;
  }

  /** Puts `msg` from `name` on the link and processes whatever it triggers. */
  transmit(name: "a" | "b", msg: Uint8Array): void {
    this.trace.push({ at: this.now, peer: name, type: msg[0]!, len: msg.length });
    if (!this.linkUp) return;
    const toName = name === "a" ? "b" : "a";
    const to = this.peer(toName);
    const code = deliver(to, msg, this.now, name === "a" ? ADDR_A : ADDR_B);
    if (code === WgResult.WriteToTunnel) this.delivered[toName].push(take(to.out));
    if (code === WgResult.WriteToNetwork) this.transmit(toName, take(to.out));
    if (code !== WgResult.Drop) this.flush(toName);
  }

  /** Sends what `name` queued while it had no session. */
  flush(name: "a" | "b"): void {
    const p = this.peer(name);
    while (p.tunnel.pollQueued(p.out, this.now) === WgResult.WriteToNetwork) this.transmit(name, take(p.out));
  }

  /** Fires every timer due up to `until` in time order, then sets the clock to `until`. */
  runUntil(until: number): void {
    for (let guard = 0;; guard++) {
      assert.ok(guard < 100_000, "simulation does not settle");
      const next = Math.min(this.pair.a.tunnel.pollTimeout(), this.pair.b.tunnel.pollTimeout());
      if (next > until) break;
      if (next > this.now) this.now = next;
      for (const name of ["a", "b"] as const) {
        const p = this.peer(name);
        if (p.tunnel.pollTimeout() > this.now) continue;
        for (let i = 0; i < 8; i++) {
          const code = p.tunnel.handleTimeout(p.out, this.now);
          if (code === WgResult.Expired) {
            this.trace.push({ at: this.now, peer: name, type: 0, len: 0 });
            break;
          }
          if (code !== WgResult.WriteToNetwork) break;
          this.transmit(name, take(p.out));
          this.flush(name);
        }
      }
    }
    if (until > this.now) this.now = until;
  }

  /** Trace entries of `peer` with message `type` (0 = expiry). */
  sent(peer: "a" | "b", type: number): SimEvent[] {
    return this.trace.filter((e) => e.peer === peer && e.type === type);
  }
}
