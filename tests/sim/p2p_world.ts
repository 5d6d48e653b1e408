/**
 * Builders for p2p simulations: a clock, a network, relays, a gateway (server node) and clients (client
 * nodes) with Firezone-shaped ICE credentials and keys, and `connect()` doing what `authorize_flow` /
 * `flow_created` do on both sides.
 *
 * @module
 */

import type { CryptoBackend } from "../../src/crypto/backend.ts";
import type { IceCredentials } from "../../src/ice/agent.ts";
import { SeededRng } from "../../src/rng.ts";
import { FluxCapacitor } from "./flux_capacitor.ts";
import { type NatOptions, SimNet } from "./sim_net.ts";
import { SimNodeHost } from "./sim_node.ts";
import { SimRelay, type SimRelayOptions } from "./sim_relay.ts";
import { SimSignalling } from "./sim_signalling.ts";

/** ICE credentials of the gateway side (ufrag 4, pwd 23 chars, like the portal's). */
export const GATEWAY_CREDS: IceCredentials = { ufrag: "gw01", pwd: "gatewaypasswordgatewayp" };
/** ICE credentials of the client side (ufrag 4, pwd 22 chars). */
export const CLIENT_CREDS: IceCredentials = { ufrag: "cl01", pwd: "clientpasswordclientpa" };

/** Options of {@link World}. */
export interface WorldOptions {
  readonly seed?: number;
  readonly latencyMs?: number;
  readonly signallingLatencyMs?: number;
  /** Crypto backend of the nodes (default: noble). */
  readonly backend?: CryptoBackend;
}

/** A simulation: clock, network, signalling and the hosts added to it. */
export class World {
  readonly clock: FluxCapacitor = new FluxCapacitor();
  readonly net: SimNet;
  readonly signalling: SimSignalling;
  readonly seed: number;
  readonly #backend: CryptoBackend | undefined;
  #nextSeed: number;

  constructor(options: WorldOptions = {}) {
    this.seed = options.seed ?? 1;
    this.#backend = options.backend;
    this.#nextSeed = this.seed * 1000;
    this.net = new SimNet(this.clock, options.latencyMs ?? 10);
    this.signalling = new SimSignalling(this.net, options.signallingLatencyMs ?? 50);
    this.clock.installLogSink();
  }

  get now(): number {
    return this.clock.now;
  }

  relay(name: string, options: SimRelayOptions): SimRelay {
    return this.net.addHost(new SimRelay(name, { seed: this.#nextSeed++, ...options }));
  }

  gateway(ips: readonly string[], nat?: NatOptions): SimNodeHost {
    return this.net.addHost(
      new SimNodeHost("gateway", {
        role: "server",
        ips,
        seed: this.#nextSeed++,
        clock: this.clock,
        ...this.#extra(),
      }),
      nat,
    );
  }

  client(name: string, ips: readonly string[], nat?: NatOptions): SimNodeHost {
    return this.net.addHost(
      new SimNodeHost(name, {
        role: "client",
        ips,
        seed: this.#nextSeed++,
        clock: this.clock,
        ...this.#extra(),
      }),
      nat,
    );
  }

  #extra(): { backend?: CryptoBackend } {
    return this.#backend === undefined ? {} : { backend: this.#backend };
  }

  /**
   * Sets up the connection on both sides (gateway: `cid` = client id; client: `cid` = "gateway") with
   * the portal-style credentials and a PSK, and links their candidate signalling.
   */
  connect(gateway: SimNodeHost, client: SimNodeHost, clientId = client.name): void {
    const psk = new Uint8Array(32);
    new SeededRng(this.seed + 77).fill(psk);
    const now = this.now;
    this.signalling.link(gateway, clientId, client, "gateway");
    gateway.node.upsertConnection(clientId, client.node.publicKey, psk, GATEWAY_CREDS, CLIENT_CREDS, now);
    client.node.upsertConnection("gateway", gateway.node.publicKey, psk, CLIENT_CREDS, GATEWAY_CREDS, now);
    gateway.afterStep(now);
    client.afterStep(now);
  }

  /** Runs until both sides reported ConnectionEstablished (throws after `cutOffMs`). */
  untilEstablished(
    gateway: SimNodeHost,
    client: SimNodeHost,
    clientId = client.name,
    cutOffMs = 10_000,
  ): number {
    return this.net.advanceUntil(
      () =>
        gateway.eventsOf("ConnectionEstablished").some((e) => e.event.cid === clientId) &&
        client.eventsOf("ConnectionEstablished").some((e) => e.event.cid === "gateway"),
      cutOffMs,
      "both sides established",
    );
  }
}
