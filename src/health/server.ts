/**
 * Serves the health app on `--health-check-addr`. A bind failure is logged as a WARN and is not
 * fatal (upstream ignores it silently).
 *
 * @module
 */

import type { Hono } from "hono";
import { logger } from "../log.ts";
import type { SocketAddr } from "../wire/ip_addr.ts";

const log = logger("fz_gateway::health");

/** A running health server. */
export interface HealthServer {
  /** The bound address (the port is the real one when 0 was requested). */
  readonly port: number;
  shutdown(): Promise<void>;
}

/** Starts serving `app` on `addr`; returns null (after a WARN) when the address cannot be bound. */
export function startHealthServer(addr: SocketAddr, app: Hono): HealthServer | null {
  try {
    const server = Deno.serve({ hostname: addr.ip, port: addr.port, onListen: () => {} }, app.fetch);
    const bound = server.addr as Deno.NetAddr;
    log.debug("Health check listening", {
      addr: `${addr.family === 6 ? `[${bound.hostname}]` : bound.hostname}:${bound.port}`,
    });
    return { port: bound.port, shutdown: () => server.shutdown() };
  } catch (e) {
    log.warn("Failed to start health check server", {
      addr: addr.family === 6 ? `[${addr.ip}]:${addr.port}` : `${addr.ip}:${addr.port}`,
      error: (e as Error).message,
    });
    return null;
  }
}
