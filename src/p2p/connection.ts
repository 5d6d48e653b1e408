/**
 * One p2p connection of the node (snownet `Connection`): an ICE agent, a WireGuard tunnel, the selected
 * relay, the nominated peer socket and the connection-level rules of spec §3.3 (no remote candidate in
 * 10 s, ICE disconnected for more than 2 s, idle after 20 s without tunneled packets, at most 128
 * WireGuard messages buffered before nomination).
 *
 * The node drives it; this class holds the state and the deadlines derived from it.
 *
 * @module
 */

import type { Candidate } from "../ice/candidate.ts";
import type { IceAgent, IceCredentials } from "../ice/agent.ts";
import { RingQueue } from "../util/ring_queue.ts";
import type { SocketAddr } from "../wire/ip_addr.ts";
import type { Tunnel } from "../wireguard/tunnel.ts";
import type { FailReason } from "./events.ts";
import type { PeerAddrView } from "./peer_addr.ts";
import type { RelayEntry } from "./relay_entry.ts";

/** A connection fails when no remote candidate arrived this long after its creation. */
export const CANDIDATE_TIMEOUT_MS = 10_000;
/** A connection fails when ICE stays `Disconnected` longer than this. */
export const DISCONNECTED_GRACE_MS = 2_000;
/** A connected connection goes idle after this long without a tunneled packet in either direction. */
export const IDLE_AFTER_MS = 20_000;
/** WireGuard messages kept while no socket is nominated yet (the oldest is dropped beyond). */
export const MAX_BUFFERED_PACKETS = 128;
/** Room kept in front of each buffered message for a ChannelData header. */
export const BUFFERED_HEADROOM = 4;

/** Life-cycle state of a connection. */
export const ConnState = {
  /** ICE has not nominated a socket yet: application packets are dropped, WireGuard output buffered. */
  Connecting: 0,
  /** A socket is nominated and tunneled packets flowed within the last 20 s (active ICE timings). */
  Connected: 1,
  /** A socket is nominated but no tunneled packet for 20 s (idle ICE timings). */
  Idle: 2,
  /** Failed; removed at the end of the current node call. */
  Failed: 3,
} as const;
export type ConnState = (typeof ConnState)[keyof typeof ConnState];

/** Names of {@link ConnState} values. */
export const CONN_STATE_NAMES = ["connecting", "connected", "idle", "failed"] as const;

/** Construction parameters. */
export interface ConnectionInit {
  readonly cid: string;
  readonly agent: IceAgent;
  readonly tunnel: Tunnel;
  readonly remotePublicKey: Uint8Array;
  readonly presharedKey: Uint8Array;
  readonly local: IceCredentials;
  readonly remote: IceCredentials;
  readonly selectedRelay: string | null;
  readonly now: number;
}

/** State of one connection. Fields are public to the node (same module family), not to its users. */
export class Connection {
  readonly cid: string;
  readonly agent: IceAgent;
  readonly tunnel: Tunnel;
  /** The tunnel's 24-bit connection index (key of the node's index map). */
  readonly index: number;
  readonly remotePublicKey: Uint8Array;
  /** Lowercase hex of the remote key (key of the node's initiator map). */
  readonly remoteKeyHex: string;
  readonly presharedKey: Uint8Array;
  readonly local: IceCredentials;
  readonly remote: IceCredentials;
  readonly createdAt: number;

  state: ConnState = ConnState.Connecting;
  /** Relay id whose candidates this connection uses (one per connection), or null when none. */
  selectedRelay: string | null;

  /** Nominated socket: the relay it goes through (null = direct). */
  relay: RelayEntry | null = null;
  /** Direct: our local address to send from. */
  peerSrc: PeerAddrView | null = null;
  /** Direct: the peer's address. Relayed: unused (the relay socket is the destination). */
  peerDst: PeerAddrView | null = null;
  /** The peer's address (direct destination, or the relayed peer the ChannelData is for). */
  peerAddr: SocketAddr | null = null;

  /** WireGuard messages produced before nomination, each with {@link BUFFERED_HEADROOM} in front. */
  readonly buffered: RingQueue<Uint8Array> = new RingQueue<Uint8Array>(8);
  lastIncomingAt: number;
  lastOutgoingAt: number;
  /** When ICE entered `Disconnected` (Infinity while it is not). */
  disconnectedAt = Infinity;
  /** Whether the agent knows any remote candidate (signalled or learned). */
  hasRemoteCandidates = false;
  /** True once the first WireGuard session was established (ConnectionEstablished sent). */
  established = false;
  failReason: FailReason | null = null;
  /** Local srflx candidates signalled on this connection (not in the agent, spec §3.2). */
  readonly srflx: Candidate[] = [];
  /** Remote srflx/relay/prflx addresses signalled by the peer: channels are bound to them. */
  readonly channelPeers: SocketAddr[] = [];

  constructor(init: ConnectionInit) {
    this.cid = init.cid;
    this.agent = init.agent;
    this.tunnel = init.tunnel;
    this.index = init.tunnel.index;
    this.remotePublicKey = init.remotePublicKey.slice();
    this.remoteKeyHex = hex(init.remotePublicKey);
    this.presharedKey = init.presharedKey.slice();
    this.local = init.local;
    this.remote = init.remote;
    this.selectedRelay = init.selectedRelay;
    this.createdAt = init.now;
    this.lastIncomingAt = init.now;
    this.lastOutgoingAt = init.now;
  }

  /** True when a socket is nominated (Connected or Idle). */
  get isNominated(): boolean {
    return this.state === ConnState.Connected || this.state === ConnState.Idle;
  }

  /** True when this connection was made with exactly these parameters (the upsert reuse rule). */
  matches(
    remotePublicKey: Uint8Array,
    presharedKey: Uint8Array,
    local: IceCredentials,
    remote: IceCredentials,
  ): boolean {
    return sameBytes(this.remotePublicKey, remotePublicKey) && sameBytes(this.presharedKey, presharedKey) &&
      this.local.ufrag === local.ufrag && this.local.pwd === local.pwd &&
      this.remote.ufrag === remote.ufrag && this.remote.pwd === remote.pwd;
  }

  /** Keeps a WireGuard message for after nomination (copied; the oldest goes beyond 128). */
  bufferMessage(buf: Uint8Array, off: number, len: number): void {
    const copy = new Uint8Array(BUFFERED_HEADROOM + len);
    copy.set(buf.subarray(off, off + len), BUFFERED_HEADROOM);
    if (this.buffered.length >= MAX_BUFFERED_PACKETS) this.buffered.shift();
    this.buffered.push(copy);
  }

  /** When the missing-candidate rule fires (Infinity once a remote candidate is known). */
  candidateDeadline(): number {
    return this.hasRemoteCandidates ? Infinity : this.createdAt + CANDIDATE_TIMEOUT_MS;
  }

  /** When the disconnected grace period ends (Infinity while ICE is not disconnected). */
  disconnectedDeadline(): number {
    return this.disconnectedAt + DISCONNECTED_GRACE_MS;
  }

  /** When a connected connection goes idle (Infinity in any other state). */
  idleDeadline(): number {
    if (this.state !== ConnState.Connected) return Infinity;
    return Math.max(this.lastIncomingAt, this.lastOutgoingAt) + IDLE_AFTER_MS;
  }

  /** The earliest instant the node must run this connection's timers. */
  pollTimeout(): number {
    if (this.state === ConnState.Failed) return Infinity;
    let at = this.agent.pollTimeout();
    const wg = this.tunnel.pollTimeout();
    if (wg < at) at = wg;
    const c = this.candidateDeadline();
    if (c < at) at = c;
    const d = this.disconnectedDeadline();
    if (d < at) at = d;
    const i = this.idleDeadline();
    if (i < at) at = i;
    return at;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lowercase hex of `bytes`. */
export function hex(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += bytes[i]!.toString(16).padStart(2, "0");
  return s;
}
