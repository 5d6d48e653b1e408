/**
 * PURE p2p layer (Firezone snownet): {@link P2pNode} multiplexes ICE, TURN and WireGuard on one UDP
 * socket per family and manages one connection (ICE agent + WireGuard tunnel + selected relay) per
 * peer. Sans-IO: time, randomness and the wall clock are inputs; the data path allocates nothing.
 *
 * @module
 */

export {
  type ConnectionInfo,
  type NodeRole,
  P2pNode,
  type P2pNodeOptions,
  type PeerSocketInfo,
  type RelayInfo,
  type UpsertOutcome,
} from "./node.ts";
export {
  BUFFERED_HEADROOM,
  CANDIDATE_TIMEOUT_MS,
  DISCONNECTED_GRACE_MS,
  IDLE_AFTER_MS,
  MAX_BUFFERED_PACKETS,
} from "./connection.ts";
export { FailReason, type NodeEvent } from "./events.ts";
export { PeerAddrView } from "./peer_addr.ts";
export {
  ENCAPSULATE_HEADROOM,
  ENCAPSULATE_TAILROOM,
  NodeOut,
  P2P_DROP_NAMES,
  P2pDrop,
  P2pResult,
  type Transmit,
} from "./transmit.ts";
