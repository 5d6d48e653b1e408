/**
 * Messages between the main thread and the packet worker.
 *
 * Main → worker: the {@link WorkerSetup} as the first `postMessage`; afterwards control messages go
 * through the SharedArrayBuffer mailbox plus an eventfd write (the worker never returns to its event
 * loop, so it cannot receive `postMessage` again). Worker → main: `postMessage` of {@link WorkerEvent}.
 *
 * @module
 */

import type { SocketAddr } from "../wire/ip_addr.ts";

/** Standalone WireGuard mode. */
export interface StandaloneSetup {
  readonly mode: "standalone";
  readonly configText: string;
  readonly configPath: string;
  /** Resolved `Endpoint` of each peer, in file order. */
  readonly endpoints: readonly (SocketAddr | null)[];
}

/** What every mode needs. */
export interface WorkerSetup {
  readonly mailbox: SharedArrayBuffer;
  /** The eventfd the main thread signals after each mailbox write. */
  readonly wakeFd: number;
  readonly logFormat: "human" | "json";
  readonly logFilter: { readonly RUST_LOG?: string; readonly FZ_LOG?: string };
  /** TUN offloads (IFF_VNET_HDR, TSO/USO, write coalescing); off only for debugging. */
  readonly offload: boolean;
  readonly mode: StandaloneSetup;
}

/** Control messages through the mailbox. */
export type WorkerControl = { readonly type: "stop" } | { readonly type: "stats" };

/** Counters of the data path, as posted by the worker about once a second. */
export interface WorkerStats {
  readonly loop: Record<string, number>;
  readonly tun: Record<string, number>;
  readonly udp: Record<string, number>;
  readonly drops: Record<string, number>;
}

/** Facts about the running data path, posted once the worker is ready. */
export interface WorkerReady {
  readonly publicKey: string;
  readonly tunName: string;
  readonly udpPorts: { readonly v4: number | null; readonly v6: number | null };
  readonly crypto: string;
  readonly offloads: string;
}

export type WorkerEvent =
  | { readonly type: "ready"; readonly info: WorkerReady }
  | { readonly type: "error"; readonly message: string }
  | { readonly type: "stats"; readonly stats: WorkerStats }
  | { readonly type: "stopped" };
