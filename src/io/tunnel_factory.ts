/**
 * Where the data plane plugs into portal mode: `main.ts` passes {@link createTunnel} to
 * `runGateway`. This build has no data plane yet, so the factory throws
 * {@link DataPlaneUnavailableError}; `runGateway` then still connects to the portal (which checks
 * token, URL and identity) but exits with code 1 as soon as the portal sends `init` or anything else
 * that needs the tunnel, and `/readyz` answers 503 with that reason.
 *
 * The packet-worker implementation replaces the body of {@link createTunnel} with one that starts
 * the worker and returns its {@link TunnelControl} proxy.
 *
 * @module
 */

import {
  DataPlaneUnavailableError,
  type TunnelControl,
  type TunnelOptions,
} from "../portal/tunnel_control.ts";

/** The message of {@link DataPlaneUnavailableError} in this build. */
export const DATA_PLANE_UNAVAILABLE =
  "data plane not available in this build (the packet worker with TUN, UDP, ICE, TURN and WireGuard " +
  "is not part of it yet)";

/** Creates the tunnel for portal mode (a `TunnelFactory`). */
export function createTunnel(_options: TunnelOptions): Promise<TunnelControl> {
  return Promise.reject(new DataPlaneUnavailableError(DATA_PLANE_UNAVAILABLE));
}
