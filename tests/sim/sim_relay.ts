/**
 * A TURN relay host for {@link SimNet}: wraps the sans-IO {@link SimTurnServer} (Firezone dialect by
 * default). Datagrams to port 3478 are client traffic (STUN/TURN, ChannelData); datagrams to any other
 * port of the relay's IPs are peer traffic to a relayed address.
 *
 * @module
 */

import type { RelayInfo } from "../../src/p2p/node.ts";
import { SeededRng } from "../../src/rng.ts";
import { type IpFamily, type SocketAddr, socketAddr } from "../../src/wire/ip_addr.ts";
import { SimTurnServer, type SimTurnServerOptions } from "../_helpers/sim_turn_server.ts";
import type { SimHost, SimTransmit } from "./sim_net.ts";

/** The port relays listen on. */
export const RELAY_PORT = 3478;

/** Options of {@link SimRelay}. */
export interface SimRelayOptions {
  readonly ip4?: string;
  readonly ip6?: string;
  /** Seed of the relay's nonce generator. */
  readonly seed?: number;
  readonly username?: string;
  readonly password?: string;
  readonly firstRelayPort?: number;
  readonly server?: Partial<SimTurnServerOptions>;
}

/** A simulated relay. */
export class SimRelay implements SimHost {
  readonly name: string;
  readonly ips: readonly string[];
  readonly server: SimTurnServer;
  readonly listen4: SocketAddr | undefined;
  readonly listen6: SocketAddr | undefined;
  readonly username: string;
  readonly password: string;

  constructor(name: string, options: SimRelayOptions) {
    this.name = name;
    this.ips = [options.ip4, options.ip6].filter((ip) => ip !== undefined);
    this.listen4 = options.ip4 !== undefined ? socketAddr(options.ip4, RELAY_PORT) : undefined;
    this.listen6 = options.ip6 !== undefined ? socketAddr(options.ip6, RELAY_PORT) : undefined;
    this.username = options.username ?? `1900000000:${name}`;
    this.password = options.password ?? `password-of-${name}`;
    this.server = new SimTurnServer({
      listen: {
        ...(this.listen4 !== undefined ? { v4: this.listen4 } : {}),
        ...(this.listen6 !== undefined ? { v6: this.listen6 } : {}),
      },
      users: { [this.username]: this.password },
      rng: new SeededRng(options.seed ?? 4242),
      firstRelayPort: options.firstRelayPort ?? 49152,
      ...options.server,
    });
  }

  /** The relay as the portal announces it (`relays_presence` / `init`). */
  info(id = this.name): RelayInfo {
    return {
      id,
      ...(this.listen4 !== undefined ? { v4: this.listen4 } : {}),
      ...(this.listen6 !== undefined ? { v6: this.listen6 } : {}),
      username: this.username,
      password: this.password,
    };
  }

  defaultSource(family: IpFamily): SocketAddr | null {
    return (family === 4 ? this.listen4 : this.listen6) ?? null;
  }

  handleDatagram(src: SocketAddr, dst: SocketAddr, payload: Uint8Array, now: number): void {
    if (dst.port === RELAY_PORT) this.server.handleClientInput(src, dst, payload, now);
    else this.server.handlePeerInput(src, dst, payload, now);
  }

  pollTransmit(): SimTransmit | undefined {
    const t = this.server.pollTransmit();
    return t === undefined ? undefined : { src: t.source, dst: t.destination, payload: t.payload };
  }

  pollTimeout(): number {
    return this.server.pollTimeout();
  }

  handleTimeout(now: number): void {
    this.server.handleTimeout(now);
  }
}
