/**
 * The portal's part in a p2p simulation: forwards candidate events between two nodes with a signalling
 * delay (as `broadcast_ice_candidates` → `ice_candidates`), through the candidate strings, and can be
 * partitioned.
 *
 * @module
 */

import type { SimNet } from "./sim_net.ts";
import type { SimNodeHost } from "./sim_node.ts";

/** Candidate forwarding between node pairs. */
export class SimSignalling {
  readonly #net: SimNet;
  readonly latencyMs: number;
  /** While true, candidate events are lost (portal partition). */
  partitioned = false;
  /** Every forwarded candidate message: [delivered at, to host, cid, kind, candidate]. */
  readonly log: [number, string, string, "add" | "remove", string][] = [];

  constructor(net: SimNet, latencyMs = 50) {
    this.#net = net;
    this.latencyMs = latencyMs;
  }

  /** Forwards `a`'s candidates for `cidOnA` to `b` as `cidOnB`, and the other way round. */
  link(a: SimNodeHost, cidOnA: string, b: SimNodeHost, cidOnB: string): void {
    this.#forward(a, cidOnA, b, cidOnB);
    this.#forward(b, cidOnB, a, cidOnA);
  }

  #forward(from: SimNodeHost, fromCid: string, to: SimNodeHost, toCid: string): void {
    from.listeners.push((e, now) => {
      if (this.partitioned) return;
      if (e.type !== "NewIceCandidate" && e.type !== "InvalidateIceCandidate") return;
      if (e.cid !== fromCid) return;
      const candidate = e.candidate;
      const kind = e.type === "NewIceCandidate" ? "add" : "remove";
      this.#net.schedule(now + this.latencyMs, (t) => {
        this.log.push([t, to.name, toCid, kind, candidate]);
        if (kind === "add") to.node.addRemoteCandidate(toCid, candidate, t);
        else to.node.removeRemoteCandidate(toCid, candidate, t);
        to.afterStep(t);
      });
    });
  }
}
