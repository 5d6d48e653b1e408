/**
 * Standalone mode (`fz-gateway standalone --config FILE`): a plain WireGuard peer driven by a
 * wg-quick style file, with the same packet worker and data path as portal mode. Runs in the
 * foreground; SIGINT/SIGTERM stop it cleanly (exit 0).
 *
 * @module
 */

import { type HealthServer, startHealthServer } from "../health/server.ts";
import { createHealthApp } from "../health/app.ts";
import { logger } from "../log.ts";
import type { LogFormat } from "../log_format.ts";
import { ConfigError, parseStandaloneConfig, type StandaloneConfig } from "../standalone/config.ts";
import { parseIp, parseSocketAddr, type SocketAddr, socketAddr } from "../wire/ip_addr.ts";
import { LoopLagMonitor } from "./loop_lag.ts";
import { onShutdownSignal } from "./signals.ts";
import { PacketWorkerHost } from "./worker_host.ts";

const log = logger("fz_gateway::standalone");

/** Options of {@link runStandalone}. */
export interface StandaloneOptions {
  readonly configPath: string;
  /** `IP:PORT` for `/healthz`, `/readyz`, `/metrics`, `/metrics/loop-lag`; null for none. */
  readonly healthCheckAddr: string | null;
  readonly logFormat: LogFormat;
  /** Log filter directives, also handed to the packet worker. */
  readonly logFilter: { readonly RUST_LOG?: string; readonly FZ_LOG?: string };
  readonly offload: boolean;
}

/** Runs standalone mode; resolves with the exit code. */
export async function runStandalone(options: StandaloneOptions): Promise<number> {
  let text: string;
  try {
    text = await Deno.readTextFile(options.configPath);
  } catch (e) {
    log.error(`Cannot read the configuration file ${options.configPath}: ${(e as Error).message}`);
    return 1;
  }
  let cfg: StandaloneConfig;
  try {
    cfg = parseStandaloneConfig(text, options.configPath);
  } catch (e) {
    if (e instanceof ConfigError) {
      log.error(`Invalid configuration: ${e.message}`);
      return 1;
    }
    throw e;
  }
  let health: SocketAddr | null = null;
  if (options.healthCheckAddr !== null) {
    health = parseSocketAddr(options.healthCheckAddr);
    if (health === null) {
      log.error(
        `Invalid --health-check-addr "${options.healthCheckAddr}": expected IP:PORT, e.g. 127.0.0.1:8080`,
      );
      return 1;
    }
  }
  const endpoints: (SocketAddr | null)[] = [];
  for (const peer of cfg.peers) {
    if (peer.endpoint === null) {
      endpoints.push(null);
      continue;
    }
    const resolved = await resolveEndpoint(peer.endpoint.host, peer.endpoint.port);
    if (resolved === null) {
      log.error(
        `Cannot resolve Endpoint ${peer.endpoint.host} of the [Peer] at ${options.configPath}:${peer.line}`,
      );
      return 1;
    }
    endpoints.push(resolved);
  }

  let host: PacketWorkerHost;
  try {
    host = await PacketWorkerHost.start(
      { mode: "standalone", configText: text, configPath: options.configPath, endpoints },
      {
        logFormat: options.logFormat,
        logFilter: options.logFilter,
        offload: options.offload,
      },
    );
  } catch (e) {
    log.error(`Failed to start the data path: ${(e as Error).message}`);
    return 1;
  }
  const ports = [host.info.udpPorts.v4, host.info.udpPorts.v6].filter((p) => p !== null);
  log.info("Standalone WireGuard interface up", {
    interface: host.info.tunName,
    public_key: host.info.publicKey,
    listen_port: ports[0] ?? "none",
    peers: cfg.peers.length,
    crypto: host.info.crypto,
    offloads: host.info.offloads,
  });

  const lag = new LoopLagMonitor();
  lag.start();
  let server: HealthServer | null = null;
  if (health !== null) {
    const app = createHealthApp(() => ({ ready: true }), {
      metrics: () => host.stats ?? {},
      loopLag: () => lag.read(),
    });
    server = startHealthServer(health, app);
  }

  const code = await new Promise<number>((resolve) => {
    const removeSignals = onShutdownSignal((signal) => {
      log.info(`Received ${signal}, shutting down`);
      removeSignals();
      host.stop().then(() => resolve(0));
    });
    host.onExit((reason) => {
      log.error(`The packet worker stopped: ${reason}`);
      removeSignals();
      resolve(1);
    });
  });
  lag.stop();
  await server?.shutdown();
  return code;
}

async function resolveEndpoint(host: string, port: number): Promise<SocketAddr | null> {
  if (parseIp(host)) return socketAddr(host, port);
  for (const type of ["A", "AAAA"] as const) {
    try {
      const ips = await Deno.resolveDns(host, type);
      if (ips.length > 0) return socketAddr(ips[0]!, port);
    } catch {
      // try the other family
    }
  }
  return null;
}
