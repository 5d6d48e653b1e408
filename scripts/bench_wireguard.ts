/**
 * WireGuard data-path benchmark: one full `Tunnel.encapsulate` + `Tunnel.decapsulate` round per
 * 1420-byte IP packet between two tunnels that completed a handshake, per crypto backend (noble, and
 * OpenSSL when libcrypto 3 loads). Short runs; prints a table; asserts only that packets round-trip.
 *
 *     ./scripts/deno run --allow-all scripts/bench_wireguard.ts [--seconds=1] [--lib=libcrypto.so.3]
 *
 * @module
 */

// deno-lint-ignore-file no-console

import { openLibcrypto } from "../ffi/libcrypto.ts";
import type { CryptoBackend } from "../src/crypto/backend.ts";
import { createNobleBackend } from "../src/crypto/noble_backend.ts";
import { SeededRng } from "../src/rng.ts";
import { socketAddr } from "../src/wire/ip_addr.ts";
import { WG_DATA_HEADER_LEN, WG_DATA_TAILROOM_LEN } from "../src/wire/wireguard.ts";
import {
  anchoredWallClock,
  HandshakeRateLimiter,
  IndexAllocator,
  StaticIdentity,
  Tunnel,
  WgOut,
  WgResult,
} from "../src/wireguard/mod.ts";

const PACKET_LEN = 1420;
const HEADROOM = 4 + WG_DATA_HEADER_LEN; // ChannelData + WireGuard, as in the gateway's arena
const BATCH = 128;

interface Result {
  name: string;
  usPerRound: number;
}

function argValue(name: string, fallback: string): string {
  const arg = Deno.args.find((a) => a.startsWith(`--${name}=`));
  return arg === undefined ? fallback : arg.slice(name.length + 3);
}

function makeTunnel(backend: CryptoBackend, me: StaticIdentity, peer: Uint8Array, seed: number): Tunnel {
  const rng = new SeededRng(seed);
  return new Tunnel({
    backend,
    identity: me,
    peerStaticPublic: peer,
    presharedKey: new Uint8Array(32).fill(7),
    index: new IndexAllocator(rng).next(),
    rateLimiter: new HandshakeRateLimiter(backend, me, rng, 0),
    rng,
    wallClock: anchoredWallClock(1_700_000_000_000, 0),
  }, 0);
}

function bench(backend: CryptoBackend, seconds: number): Result {
  const keyA = new Uint8Array(32).fill(1);
  const keyB = new Uint8Array(32).fill(2);
  const idA = new StaticIdentity(backend, keyA);
  const idB = new StaticIdentity(backend, keyB);
  const a = makeTunnel(backend, idA, idB.publicKey, 1);
  const b = makeTunnel(backend, idB, idA.publicKey, 2);
  const from = socketAddr("192.0.2.1", 51820);
  const out = new WgOut();
  const dst = new Uint8Array(2048);
  const hs = new Uint8Array(2048);

  // Handshake: A -> init -> B -> response -> A -> keepalive -> B.
  const relay = (to: Tunnel): number => {
    hs.set(out.buf.subarray(out.off, out.off + out.len), 0);
    return to.decapsulate(hs, 0, out.len, from, dst, 0, out, 0);
  };
  if (a.initiateHandshake(out, 0) !== WgResult.WriteToNetwork) throw new Error("no initiation");
  if (relay(b) !== WgResult.WriteToNetwork) throw new Error("no response");
  if (relay(a) !== WgResult.WriteToNetwork) throw new Error("no confirmation");
  if (relay(b) !== WgResult.Done) throw new Error("confirmation refused");

  // One slot: the packet is encrypted in place, then decrypted in place by the peer.
  const slot = new Uint8Array(HEADROOM + PACKET_LEN + WG_DATA_TAILROOM_LEN);
  const template = new Uint8Array(PACKET_LEN).fill(0x5a);
  template[0] = 0x45;
  template[2] = PACKET_LEN >> 8;
  template[3] = PACKET_LEN & 0xff;
  let now = 1;

  function round(): void {
    slot.set(template, HEADROOM);
    if (a.encapsulate(slot, HEADROOM, PACKET_LEN, out, now) !== WgResult.WriteToNetwork) {
      throw new Error(`${backend.name}: encapsulate failed`);
    }
    if (b.decapsulate(slot, out.off, out.len, from, dst, 0, out, now) !== WgResult.WriteToTunnel) {
      throw new Error(`${backend.name}: decapsulate failed (${out.dropReason})`);
    }
    if (out.len !== PACKET_LEN) throw new Error("wrong length");
  }

  const timeLoop = (ms: number): number => {
    let rounds = 0;
    const start = performance.now();
    let t = start;
    while (t - start < ms) {
      for (let i = 0; i < BATCH; i++) round();
      rounds += BATCH;
      t = performance.now();
      now = 1 + (t - start) / 1e6; // stays far from every timer
    }
    return ((t - start) * 1000) / rounds;
  };
  timeLoop(seconds * 200); // warm-up (JIT)
  const usPerRound = timeLoop(seconds * 1000);
  a.dispose();
  b.dispose();
  return { name: backend.name, usPerRound };
}

const seconds = Number(argValue("seconds", "1"));
const libPath = argValue("lib", "libcrypto.so.3");
const backends: CryptoBackend[] = [createNobleBackend()];
try {
  backends.push(openLibcrypto(libPath));
} catch (err) {
  console.log(`openssl backend unavailable: ${err instanceof Error ? err.message : err}`);
}

const results = backends.map((b) => bench(b, seconds));
console.log(`WireGuard encapsulate + decapsulate, ${PACKET_LEN}-byte IP packet, ~${seconds} s per backend`);
console.log(
  `${"backend".padEnd(8)} ${"µs/round".padStart(9)} ${"packets/s".padStart(11)} ${"Mbit/s".padStart(8)}`,
);
for (const r of results) {
  const pps = 1e6 / r.usPerRound;
  const mbps = (pps * PACKET_LEN * 8) / 1e6;
  console.log(
    `${r.name.padEnd(8)} ${r.usPerRound.toFixed(2).padStart(9)} ${
      Math.round(pps).toLocaleString("en-US").padStart(11)
    } ${mbps.toFixed(0).padStart(8)}`,
  );
}
const noble = results.find((r) => r.name === "noble");
const openssl = results.find((r) => r.name === "openssl");
if (noble !== undefined && openssl !== undefined) {
  console.log(`openssl/noble ratio (packets/s): ${(noble.usPerRound / openssl.usPerRound).toFixed(2)}x`);
}
