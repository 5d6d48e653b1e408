/**
 * Events the p2p node reports to its parent (drained with `P2pNode.pollEvent()`): local ICE candidates
 * to signal through the portal, and connection life-cycle changes.
 *
 * Control path: plain objects, allocated per event.
 *
 * @module
 */

/** Why a connection failed (`ConnectionFailed.reason`). */
export const FailReason = {
  /** No remote candidate arrived within 10 s of the connection's creation (spec §3.3). */
  NoRemoteCandidates: "no_remote_candidates",
  /** ICE stayed `Disconnected` for more than the 2 s grace period. */
  IceDisconnected: "ice_disconnected",
  /** WireGuard gave up: no session for 540 s, or a handshake attempt ran out (REKEY_ATTEMPT_TIME). */
  WireGuardExpired: "wireguard_expired",
} as const;
export type FailReason = (typeof FailReason)[keyof typeof FailReason];

/** An event of the node. `cid` is the connection id given to `upsertConnection`. */
export type NodeEvent =
  /**
   * A local candidate to signal to the peer (portal `broadcast_ice_candidates`). `candidate` is the
   * str0m SDP attribute string without `a=` (spec §3.2). Ordering by priority and de-duplication across
   * one drain are the portal layer's job (spec §2.7).
   */
  | { readonly type: "NewIceCandidate"; readonly cid: string; readonly candidate: string }
  /** A local candidate withdrawn (portal `broadcast_invalidated_ice_candidates`). */
  | { readonly type: "InvalidateIceCandidate"; readonly cid: string; readonly candidate: string }
  /** The WireGuard session is up for the first time on this connection. */
  | { readonly type: "ConnectionEstablished"; readonly cid: string }
  /** The connection failed and was removed (the parent keeps its authorization state). */
  | { readonly type: "ConnectionFailed"; readonly cid: string; readonly reason: FailReason }
  /** The connection was closed on request (`closeConnection`) and removed. */
  | { readonly type: "ConnectionClosed"; readonly cid: string };
