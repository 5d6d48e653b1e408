/**
 * The narrow interface between the portal control plane and the data plane ("the tunnel": the
 * packet worker owning TUN, UDP, ICE, TURN and WireGuard). `src/io/gateway_app.ts` calls it for
 * every portal message (spec §2.6) and turns its events into egress messages (§2.7).
 *
 * Implementations run the tunnel wherever they like (a Worker behind a mailbox, or in-process in
 * tests); every method either completes or throws, and methods are called one at a time, in portal
 * message order.
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
} from "./messages.ts";

/** Outcome of `authorize_flow`. */
export type AuthorizeFlowResult =
  /** Connection upserted and access granted: reply `flow_authorized` with the same ref. */
  | "accepted"
  /** No TURN allocation exists: send nothing and force a portal reconnect to get a fresh `init`. */
  | "no_relays";

/** Outcome of the legacy `request_connection`. */
export type RequestConnectionResult =
  /** Reply `connection_ready` with these (random, per-connection) local ICE credentials. */
  | {
    readonly type: "accepted";
    readonly iceCredentials: { readonly username: string; readonly password: string };
  }
  /** No TURN allocation: no reply, force a portal reconnect. */
  | { readonly type: "no_relays" }
  /** Domain resolution or access setup failed: no reply (the client times out); `reason` is logged. */
  | { readonly type: "failed"; readonly reason: string };

/** What the tunnel reports back. */
export type TunnelEvent =
  /** New local ICE candidates for a client → `broadcast_ice_candidates`. */
  | { readonly type: "new_ice_candidates"; readonly clientId: string; readonly candidates: readonly string[] }
  /** Withdrawn local ICE candidates → `broadcast_invalidated_ice_candidates`. */
  | {
    readonly type: "invalidated_ice_candidates";
    readonly clientId: string;
    readonly candidates: readonly string[];
  }
  /** The data plane cannot continue (e.g. a UDP socket thread died): the gateway exits with 1. */
  | { readonly type: "fatal"; readonly error: string };

/** Receives {@link TunnelEvent}s. */
export type TunnelEventListener = (event: TunnelEvent) => void;

/** The control surface of the data plane. */
export interface TunnelControl {
  /** Receives the tunnel's events from now on (replaces an earlier listener). */
  setEventListener(listener: TunnelEventListener): void;

  /**
   * Applies an `init` (§2.6.1 steps 2–5): add/replace relays, record the TUN addresses, retain only
   * the listed resources of the clients named in `authorizations`, set their expiries. Idempotent:
   * `init` arrives again after every reconnect.
   */
  init(message: InitMessage): Promise<void>;

  /**
   * Configures the TUN device for the addresses of an `init` (§2.6.1 steps 6–7, §4.9): MTU 1280,
   * `ipv4/32` and `ipv6/128`, link up, policy rules and routes, then (re)binds the DNS forwarder on
   * `<ip>:53535`. Throwing is fatal for the gateway (exit 1).
   */
  configureTun(config: InterfaceConfig): Promise<void>;

  /** True once {@link configureTun} succeeded and the device is up (drives `/readyz`). */
  isTunUp(): boolean;

  /** Data-path counters for `GET /metrics` (JSON), or null when none are available yet. */
  stats(): unknown;

  /** §2.6.2: upsert the client's connection, then allow access to the resource. */
  authorizeFlow(message: AuthorizeFlowMessage): Promise<AuthorizeFlowResult>;

  /** §2.6.3 (legacy): resolve the domain if any, create the connection, allow access. */
  requestConnection(message: RequestConnectionMessage): Promise<RequestConnectionResult>;

  /** §2.6.4 (legacy): resolve the domain if any, allow access; no reply exists. */
  allowAccess(message: AllowAccessMessage): Promise<void>;

  /** §2.6.5: remove a resource from a client (drop the client state when none is left). */
  rejectAccess(message: RejectAccessMessage): void;

  /** §2.6.6 `ice_candidates`: add remote candidates. Unknown client: ignored. */
  addIceCandidates(message: IceCandidatesMessage): void;

  /** §2.6.6 `invalidate_ice_candidates`: remove remote candidates. */
  removeIceCandidates(message: IceCandidatesMessage): void;

  /** §2.6.7: drop the disconnected relays, then add/replace the connected ones. */
  updateRelays(message: RelaysPresenceMessage): void;

  /** §2.6.8: replace the filters of that resource for every client holding it. */
  updateResource(resource: ResourceDescription): void;

  /** §2.6.9: replace the expiry of one (client, resource) pair. */
  updateExpiry(message: ExpiryUpdatedMessage): void;

  /**
   * Graceful stop: send the p2p `goodbye` to every connected client, then release TUN and sockets.
   * Called once, on SIGINT/SIGTERM and on fatal errors.
   */
  shutdown(): Promise<void>;
}

/** What the tunnel needs from the control plane when it is created. */
export interface TunnelOptions {
  /** The X25519 static private key (fresh per process start); its public key is in the login URL. */
  readonly privateKey: Uint8Array;
  /** `nameserver` entries of `/etc/resolv.conf` (upstreams of the DNS forwarder). */
  readonly nameservers: readonly string[];
  /** `--validate-checksums`: WARN for every packet written to TUN with a bad checksum. */
  readonly validateChecksums: boolean;
  /** Log line format of the data plane's own logs (same as the control plane's). */
  readonly logFormat?: "human" | "json";
}

/** Creates the tunnel (upstream startup step 10–13). */
export type TunnelFactory = (options: TunnelOptions) => Promise<TunnelControl>;
