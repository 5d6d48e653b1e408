/**
 * Messages between the main thread and the packet worker.
 *
 * Main → worker: the {@link WorkerSetup} as the first `postMessage`; afterwards control messages go
 * through the SharedArrayBuffer mailbox plus an eventfd write (the worker never returns to its event
 * loop, so it cannot receive `postMessage` again). Worker → main: `postMessage` of {@link WorkerEvent}.
 *
 * @module
 */

import type {
  AllowAccessMessage,
  AuthorizeFlowMessage,
  ExpiryUpdatedMessage,
  IceCandidatesMessage,
  InitMessage,
  InterfaceConfig,
  RejectAccessMessage,
  RelaysPresenceMessage,
  RequestConnectionMessage,
  ResourceDescription,
} from "../portal/messages.ts";
import type { TunnelEvent } from "../portal/tunnel_control.ts";
import type { SocketAddr } from "../wire/ip_addr.ts";

/** Standalone WireGuard mode. */
export interface StandaloneSetup {
  readonly mode: "standalone";
  readonly configText: string;
  readonly configPath: string;
  /** Resolved `Endpoint` of each peer, in file order. */
  readonly endpoints: readonly (SocketAddr | null)[];
}

/** Portal mode: the Firezone gateway data plane. */
export interface GatewaySetup {
  readonly mode: "gateway";
  /** The X25519 static private key (its public key went into the portal login URL). */
  readonly privateKey: Uint8Array;
  readonly validateChecksums: boolean;
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
  readonly mode: StandaloneSetup | GatewaySetup;
}

/**
 * Portal messages and other requests for the gateway core. Those with an `id` are answered with a
 * `reply` event carrying the same id.
 */
export type GatewayOp =
  | { readonly op: "init"; readonly id: number; readonly msg: InitMessage }
  | { readonly op: "configureTun"; readonly id: number; readonly config: InterfaceConfig }
  | { readonly op: "authorizeFlow"; readonly id: number; readonly msg: AuthorizeFlowMessage }
  | {
    readonly op: "requestConnection";
    readonly id: number;
    readonly msg: RequestConnectionMessage;
    /** Addresses of `msg.client.payload.domain.name`, resolved by the main thread; null when none. */
    readonly resolved: readonly string[] | null;
  }
  | {
    readonly op: "allowAccess";
    readonly id: number;
    readonly msg: AllowAccessMessage;
    readonly resolved: readonly string[] | null;
  }
  | { readonly op: "rejectAccess"; readonly msg: RejectAccessMessage }
  | { readonly op: "addIceCandidates"; readonly msg: IceCandidatesMessage }
  | { readonly op: "removeIceCandidates"; readonly msg: IceCandidatesMessage }
  | { readonly op: "updateRelays"; readonly msg: RelaysPresenceMessage }
  | { readonly op: "updateResource"; readonly resource: ResourceDescription }
  | { readonly op: "updateExpiry"; readonly msg: ExpiryUpdatedMessage }
  /** The answer to a `resolve` event (null: resolution failed). */
  | {
    readonly op: "dnsResolved";
    readonly requestId: number;
    readonly ips: readonly string[] | null;
    /** True when the request was dropped (resolver overloaded): forget it without answering. */
    readonly dropped: boolean;
  }
  /** Say goodbye to every client (p2p control), then answer. */
  | { readonly op: "goodbye"; readonly id: number };

/** Control messages through the mailbox. */
export type WorkerControl =
  | { readonly type: "stop" }
  | { readonly type: "stats" }
  | { readonly type: "gateway"; readonly op: GatewayOp };

/** Counters of the data path, as posted by the worker about once a second. */
export interface WorkerStats {
  readonly loop: Record<string, number>;
  readonly tun: Record<string, number>;
  readonly udp: Record<string, number>;
  readonly drops: Record<string, number>;
  /**
   * Batch-size histograms (upstream's `system.queue.length` buckets: count of batches whose size was
   * at most the key): packets per TUN read batch, datagrams per UDP receive, segments per UDP send
   * (GSO), segments per coalesced TUN write.
   */
  readonly batches: Record<string, Record<string, number>>;
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
  | { readonly type: "stopped" }
  /** Answer to a {@link GatewayOp} with an id; `error` set when it failed. */
  | { readonly type: "reply"; readonly id: number; readonly result?: unknown; readonly error?: string }
  /** ICE candidates for the portal, or a fatal data-plane error. */
  | { readonly type: "tunnel"; readonly event: TunnelEvent }
  /** Resolve `domain` (A and AAAA) and answer with a `dnsResolved` op. */
  | { readonly type: "resolve"; readonly requestId: number; readonly domain: string };
