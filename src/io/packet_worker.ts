/**
 * The packet worker (a Deno Worker): owns the TUN device, the UDP sockets and the sans-IO core, and
 * runs the synchronous {@link PacketLoop}. Started by {@link PacketWorkerHost}.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { EventFd } from "../../ffi/poll.ts";
import { logger } from "../log.ts";
import { buildLogFilter } from "../log_filter.ts";
import { parseStandaloneConfig, type StandaloneConfig } from "../standalone/config.ts";
import { STANDALONE_DROP_NAMES, StandaloneNode } from "../standalone/standalone_node.ts";
import { DROP_REASON_NAMES } from "../wireguard/result.ts";
import { anchoredWallClock } from "../wireguard/handshake.ts";
import { CryptoRng } from "./crypto_rng.ts";
import { selectCryptoBackend } from "./crypto_select.ts";
import { installLogging } from "./log_sink.ts";
import { Mailbox } from "./mailbox.ts";
import { LoopStat, PacketLoop } from "./packet_loop.ts";
import { TunDevice, TunStat } from "./tun_device.ts";
import { UdpSockets, UdpStat } from "./udp_sockets.ts";
import type { WorkerControl, WorkerEvent, WorkerSetup, WorkerStats } from "./worker_protocol.ts";
import { configureStandaloneInterface } from "./standalone_interface.ts";
import { DropLayer } from "../packet_core.ts";

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

function run(setup: WorkerSetup): void {
  installLogging({ format: setup.logFormat, filter: buildLogFilter(setup.logFilter).filter });
  const backend = selectCryptoBackend();
  const cfg: StandaloneConfig = parseStandaloneConfig(setup.mode.configText, setup.mode.configPath);
  const tun = TunDevice.open({ name: cfg.name, offload: setup.offload });
  let udp: UdpSockets | null = null;
  try {
    configureStandaloneInterface(tun, cfg);
    udp = UdpSockets.bind({ port: cfg.listenPort ?? 0, fallbackToAnyPort: false });
    const now = performance.now();
    const core = new StandaloneNode({
      config: cfg,
      endpoints: setup.mode.endpoints,
      backend,
      rng: new CryptoRng(),
      wallClock: anchoredWallClock(Date.now(), now),
      now,
    });
    const mailbox = new Mailbox(setup.mailbox);
    const wake = EventFd.fromFd(setup.wakeFd);
    let lastStats = now;
    const loop: PacketLoop = new PacketLoop({
      tun,
      udp,
      core,
      wake,
      drainMailbox: () => mailbox.drain(),
      onControl: (messages) => {
        for (const m of messages as WorkerControl[]) {
          if (m.type === "stop") loop.stop();
          else if (m.type === "stats") post({ type: "stats", stats: collectStats(loop, tun, udp!, core) });
        }
      },
      // Whole milliseconds: a fractional `now` is a heap-allocated double wherever V8 cannot keep it
      // unboxed, which showed up as garbage on the per-packet path; integer ms stay small integers.
      clock: () => {
        const t = Math.floor(performance.now());
        if (t - lastStats >= STATS_INTERVAL_MS) {
          lastStats = t;
          post({ type: "stats", stats: collectStats(loop, tun, udp!, core) });
        }
        return t;
      },
    });
    post({
      type: "ready",
      info: {
        publicKey: core.publicKey.toBase64(),
        tunName: tun.name,
        udpPorts: { v4: udp.v4?.localPort ?? null, v6: udp.v6?.localPort ?? null },
        crypto: backend.name,
        offloads: tun.vnetHdr ? `vnet_hdr flags=0x${tun.offloadFlags.toString(16)}` : "off",
      },
    });
    loop.run();
    log.debug("Packet loop stopped");
  } finally {
    udp?.close();
    tun.close();
  }
  post({ type: "stopped" });
}

function collectStats(loop: PacketLoop, tun: TunDevice, udp: UdpSockets, core: StandaloneNode): WorkerStats {
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
    if (n === 0) continue;
    const layer = i >> 6;
    const reason = i & 63;
    const name = layer === DropLayer.WireGuard
      ? `wireguard.${DROP_REASON_NAMES[reason] ?? reason}`
      : layer === DropLayer.Core
      ? `core.${STANDALONE_DROP_NAMES[reason] ?? reason}`
      : `layer${layer}.${reason}`;
    drops[name] = n;
  }
  void core;
  return { loop: named(LoopStat, loop.stats), tun: named(TunStat, tun.stats), udp: udpStats, drops };
}
