/**
 * Where the data plane plugs into portal mode: `main.ts` passes {@link createTunnel} to
 * `runGateway`, which calls it at upstream's start-up step 10–13. It starts the packet worker in
 * gateway mode (TUN `tun-firezone`, UDP 52625, the gateway core) and returns its
 * {@link TunnelControl} proxy.
 *
 * @module
 */

import type { TunnelControl, TunnelOptions } from "../portal/tunnel_control.ts";
import { startWorkerTunnel } from "./worker_tunnel.ts";

/** Creates the tunnel for portal mode (a `TunnelFactory`). */
export function createTunnel(options: TunnelOptions): Promise<TunnelControl> {
  return startWorkerTunnel(options);
}
