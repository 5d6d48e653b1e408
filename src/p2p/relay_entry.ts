/**
 * {@link RelayEntry}: one TURN allocation as the node's data path sees it, with the relay's addresses
 * precomputed as {@link PeerAddrView}s so incoming datagrams are matched to their relay by integer
 * compares, and relayed sends reuse one cached destination.
 *
 * @module
 */

import type { Allocation } from "../turn/allocation.ts";
import type { SocketAddr } from "../wire/ip_addr.ts";
import { PeerAddrView } from "./peer_addr.ts";

/** A relay (allocation) known to the node. */
export class RelayEntry {
  readonly id: string;
  readonly allocation: Allocation;
  /** False once the allocation was removed or replaced (connections still pointing here drop). */
  alive = true;
  readonly #v4: PeerAddrView | null;
  readonly #v6: PeerAddrView | null;
  #activeAddr: SocketAddr | null = null;
  #activeView: PeerAddrView | null = null;

  constructor(id: string, allocation: Allocation) {
    this.id = id;
    this.allocation = allocation;
    const server = allocation.server;
    this.#v4 = server.v4 !== undefined ? PeerAddrView.fromSocketAddr(server.v4) : null;
    this.#v6 = server.v6 !== undefined ? PeerAddrView.fromSocketAddr(server.v6) : null;
  }

  /**
   * Hot path: the relay address (as given by the portal) equal to `from`, or null when `from` is not
   * this relay. No allocation.
   */
  serverMatching(from: PeerAddrView): SocketAddr | null {
    const v4 = this.#v4;
    if (v4 !== null && v4.equals(from)) return v4.toSocketAddr();
    const v6 = this.#v6;
    if (v6 !== null && v6.equals(from)) return v6.toSocketAddr();
    return null;
  }

  /** True when some address of this relay uses `port` (cheap pre-filter). */
  usesPort(port: number): boolean {
    return (this.#v4 !== null && this.#v4.port === port) || (this.#v6 !== null && this.#v6.port === port);
  }

  /**
   * Hot path: the relay socket ChannelData goes to, as a cached view; null before the relay answered.
   * Rebuilt only when the allocation switches its active socket.
   */
  activeView(): PeerAddrView | null {
    const active = this.allocation.activeSocket;
    if (active !== this.#activeAddr) {
      this.#activeAddr = active;
      this.#activeView = active === null ? null : PeerAddrView.fromSocketAddr(active);
    }
    return this.#activeView;
  }
}
