/**
 * The packet worker (a Deno Worker): owns the TUN device, the UDP sockets and the sans-IO core, and
 * runs the synchronous {@link PacketLoop}. Started by {@link PacketWorkerHost}. Two modes share the
 * loop: standalone WireGuard ({@link StandaloneNode}) and the Firezone gateway ({@link GatewayState}).
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { EventFd } from "../../ffi/poll.ts";
import { ChecksumValidatingCore } from "../checksum_validator.ts";
import type { CryptoBackend } from "../crypto/backend.ts";
import { GatewayState } from "../gateway/gateway_state.ts";
import { policyResultName } from "../gateway/packet_policy.ts";
import { logger } from "../log.ts";
import { buildLogFilter } from "../log_filter.ts";
import { P2P_DROP_NAMES } from "../p2p/transmit.ts";
import { DropLayer, type PacketCore } from "../packet_core.ts";
import { parseStandaloneConfig } from "../standalone/config.ts";
import { STANDALONE_DROP_NAMES, StandaloneNode } from "../standalone/standalone_node.ts";
import { anchoredWallClock } from "../wireguard/handshake.ts";
import { DROP_REASON_NAMES } from "../wireguard/result.ts";
import { CryptoRng } from "./crypto_rng.ts";
import { selectCryptoBackend } from "./crypto_select.ts";
import { installLogging } from "./log_sink.ts";
import { Mailbox } from "./mailbox.ts";
import { LoopStat, PacketLoop } from "./packet_loop.ts";
import { configureStandaloneInterface } from "./standalone_interface.ts";
import { TunDevice, TunStat } from "./tun_device.ts";
import { UdpSockets, UdpStat } from "./udp_sockets.ts";
import type {
  GatewayOp,
  GatewaySetup,
  StandaloneSetup,
  WorkerControl,
  WorkerEvent,
  WorkerSetup,
  WorkerStats,
} from "./worker_protocol.ts";

const log = logger("fz_gateway::io::worker");
const STATS_INTERVAL_MS = 1_000;

function post(event: WorkerEvent): void {
  self.postMessage(event);
}

self.onmessage = (e: MessageEvent<WorkerSetup>) => {
  self.onmessage = null;
  try {
    run(e.data);
  } catch (error) {
    post({ type: "error", message: error instanceof Error ? error.message : String(error) });
  }
  self.close();
};

/** What a mode contributes to the shared loop. */
interface Mode {
  readonly core: PacketCore;
  readonly dropName: (layer: number, reason: number) => string;
  readonly handleOp: (op: GatewayOp, now: number) => void;
  readonly onWake: (now: number) => void;
}

function run(setup: WorkerSetup): void {
  installLogging({ format: setup.logFormat, filter: buildLogFilter(setup.logFilter).filter });
  const backend = selectCryptoBackend();
  const m = setup.mode;
  const standalone = m.mode === "standalone" ? parseStandaloneConfig(m.configText, m.configPath) : null;
  const tun = TunDevice.open({ ...(standalone ? { name: standalone.name } : {}), offload: setup.offload });
  let udp: UdpSockets | null = null;
  try {
    if (standalone) {
      configureStandaloneInterface(tun, standalone);
      udp = UdpSockets.bind({ port: standalone.listenPort ?? 0, fallbackToAnyPort: false });
    } else {
      udp = UdpSockets.bind();
    }
    const now = Math.floor(performance.now());
    const mode = m.mode === "standalone"
      ? standaloneMode(m, backend, now)
      : gatewayMode(m, backend, tun, now);
    runLoop(setup, tun, udp, mode, backend);
  } finally {
    udp?.close();
    tun.close();
  }
  post({ type: "stopped" });
}

function runLoop(
  setup: WorkerSetup,
  tun: TunDevice,
  udp: UdpSockets,
  mode: Mode,
  backend: CryptoBackend,
): void {
  const mailbox = new Mailbox(setup.mailbox);
  const wake = EventFd.fromFd(setup.wakeFd);
  let lastStats = 0;
  const loop: PacketLoop = new PacketLoop({
    tun,
    udp,
    core: mode.core,
    wake,
    drainMailbox: () => mailbox.drain(),
    onControl: (messages) => {
      const now = Math.floor(performance.now());
      for (const msg of messages as WorkerControl[]) {
        if (msg.type === "stop") loop.stop();
        else if (msg.type === "stats") post({ type: "stats", stats: collectStats(loop, tun, udp, mode) });
        else if (msg.type === "gateway") mode.handleOp(msg.op, now);
      }
    },
    onWake: (now) => {
      mode.onWake(now);
      if (now - lastStats >= STATS_INTERVAL_MS) {
        lastStats = now;
        post({ type: "stats", stats: collectStats(loop, tun, udp, mode) });
      }
    },
    // Whole milliseconds: a fractional `now` is a heap-allocated double wherever V8 cannot keep it
    // unboxed, which showed up as garbage on the per-packet path; integer ms stay small integers.
    clock: () => Math.floor(performance.now()),
  });
  post({
    type: "ready",
    info: {
      publicKey: mode.core.publicKey.toBase64(),
      tunName: tun.name,
      udpPorts: { v4: udp.v4?.localPort ?? null, v6: udp.v6?.localPort ?? null },
      crypto: backend.name,
      offloads: tun.vnetHdr ? `vnet_hdr flags=0x${tun.offloadFlags.toString(16)}` : "off",
    },
  });
  loop.run();
  log.debug("Packet loop stopped");
}

function standaloneMode(m: StandaloneSetup, backend: CryptoBackend, now: number): Mode {
  const cfg = parseStandaloneConfig(m.configText, m.configPath);
  const core = new StandaloneNode({
    config: cfg,
    endpoints: m.endpoints,
    backend,
    rng: new CryptoRng(),
    wallClock: anchoredWallClock(Date.now(), now),
    now,
  });
  return {
    core,
    dropName: (layer, reason) =>
      layer === DropLayer.WireGuard
        ? `wireguard.${DROP_REASON_NAMES[reason] ?? reason}`
        : `standalone.${STANDALONE_DROP_NAMES[reason] ?? reason}`,
    handleOp: () => {},
    onWake: () => {},
  };
}

function gatewayMode(m: GatewaySetup, backend: CryptoBackend, tun: TunDevice, now: number): Mode {
  const core = new GatewayState({
    privateKey: m.privateKey,
    backend,
    rng: new CryptoRng(),
    now,
    wallClock: anchoredWallClock(Date.now(), now),
  });
  const reply = (id: number, fn: () => unknown) => {
    try {
      post({ type: "reply", id, result: fn() ?? null });
    } catch (e) {
      post({ type: "reply", id, error: e instanceof Error ? e.message : String(e) });
    }
  };
  const drainEvents = () => {
    for (let e = core.pollEvent(); e !== undefined; e = core.pollEvent()) post(e);
  };
  return {
    core: m.validateChecksums ? new ChecksumValidatingCore(core) : core,
    dropName: (layer, reason) =>
      layer === DropLayer.Policy
        ? `policy.${policyResultName(reason)}`
        : layer === DropLayer.WireGuard
        ? `wireguard.${DROP_REASON_NAMES[reason] ?? reason}`
        : `p2p.${P2P_DROP_NAMES[reason] ?? reason}`,
    handleOp: (op, now) => {
      try {
        applyOp(op, now);
      } catch (e) {
        log.error("Failed to apply a portal message in the data plane", {
          op: op.op,
          error: e instanceof Error ? e.message : String(e),
        });
      }
      drainEvents();
    },
    onWake: drainEvents,
  };

  function applyOp(op: GatewayOp, now: number): void {
    switch (op.op) {
      case "init":
        reply(op.id, () => core.init(op.msg, now));
        break;
      case "configureTun":
        reply(op.id, () => tun.configure({ ipv4: op.config.ipv4, ipv6: op.config.ipv6 }));
        break;
      case "authorizeFlow":
        reply(op.id, () => core.authorizeFlow(op.msg, now));
        break;
      case "requestConnection":
        reply(op.id, () => core.requestConnection(op.msg, op.resolved, now));
        break;
      case "allowAccess":
        reply(op.id, () => core.allowAccess(op.msg, op.resolved, now));
        break;
      case "rejectAccess":
        core.rejectAccess(op.msg, now);
        break;
      case "addIceCandidates":
        core.addIceCandidates(op.msg, now);
        break;
      case "removeIceCandidates":
        core.removeIceCandidates(op.msg, now);
        break;
      case "updateRelays":
        core.updateRelays(op.msg, now);
        break;
      case "updateResource":
        core.updateResource(op.resource);
        break;
      case "updateExpiry":
        core.updateExpiry(op.msg);
        break;
      case "dnsResolved":
        core.handleDnsResolved(op.requestId, op.ips, op.dropped, now);
        break;
      case "goodbye":
        reply(op.id, () => core.goodbyeAll(now));
        break;
    }
  }
}

function collectStats(loop: PacketLoop, tun: TunDevice, udp: UdpSockets, mode: Mode): WorkerStats {
  const named = (names: Record<string, number>, values: Float64Array) => {
    const out: Record<string, number> = {};
    for (const [name, i] of Object.entries(names)) out[name] = values[i]!;
    return out;
  };
  const udpStats: Record<string, number> = {};
  for (const s of [udp.v4, udp.v6]) {
    if (!s) continue;
    for (const [name, i] of Object.entries(UdpStat)) udpStats[name] = (udpStats[name] ?? 0) + s.stats[i]!;
  }
  const drops: Record<string, number> = {};
  for (let i = 0; i < loop.drops.length; i++) {
    const n = loop.drops[i]!;
    if (n !== 0) drops[mode.dropName(i >> 6, i & 63)] = n;
  }
  const sum = (a: Uint32Array | undefined, b: Uint32Array | undefined) => {
    const n = Math.max(a?.length ?? 0, b?.length ?? 0);
    const out = new Uint32Array(n);
    for (let i = 0; i < n; i++) out[i] = (a?.[i] ?? 0) + (b?.[i] ?? 0);
    return out;
  };
  return {
    loop: named(LoopStat, loop.stats),
    tun: named(TunStat, tun.stats),
    udp: udpStats,
    drops,
    batches: {
      tunRead: bucketize(tun.rxBatchSizes),
      tunWriteCoalesced: bucketize(tun.txCoalesced),
      udpRecv: bucketize(sum(udp.v4?.rxBatchSizes, udp.v6?.rxBatchSizes)),
      udpSendSegments: bucketize(sum(udp.v4?.txSegments, udp.v6?.txSegments)),
    },
  };
}

/** Upstream's `system.queue.length` histogram buckets. */
const BUCKETS = [1, 2, 5, 10, 100, 200, 500, 1000, 2000, 5000, 10000];

/** Folds a histogram indexed by size into `{ "<=1": n, "<=2": n, ... }` (empty buckets left out). */
function bucketize(bySize: Uint32Array): Record<string, number> {
  const out: Record<string, number> = {};
  for (let size = 1; size < bySize.length; size++) {
    const n = bySize[size]!;
    if (n === 0) continue;
    const b = BUCKETS.find((x) => size <= x) ?? Infinity;
    const key = b === Infinity ? ">10000" : `<=${b}`;
    out[key] = (out[key] ?? 0) + n;
  }
  return out;
}
