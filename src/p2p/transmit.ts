/**
 * What the p2p node hands back to the I/O layer: result codes and drop reasons of the data path, the
 * reusable {@link NodeOut} out-object, and control-path {@link Transmit}s.
 *
 * @module
 */

import type { SocketAddr } from "../wire/ip_addr.ts";
import { CHANNEL_DATA_HEADER_LEN } from "../wire/channel_data.ts";
import { WG_DATA_HEADER_LEN, WG_DATA_TAILROOM_LEN } from "../wire/wireguard.ts";
import { DropReason } from "../wireguard/result.ts";
import type { PeerAddrView } from "./peer_addr.ts";

/**
 * Bytes an IP packet given to `P2pNode.encapsulate` needs in front of it: the WireGuard data header
 * (16) and, when the peer is reached through a relay, the ChannelData header (4).
 */
export const ENCAPSULATE_HEADROOM = WG_DATA_HEADER_LEN + CHANNEL_DATA_HEADER_LEN;
/** Bytes an IP packet given to `P2pNode.encapsulate` needs after it: AEAD tag (16) + padding (≤ 15). */
export const ENCAPSULATE_TAILROOM = WG_DATA_TAILROOM_LEN;

/** What a data-path call produced. */
export const P2pResult = {
  /** Handled internally (STUN, TURN, handshake, keepalive) or queued; anything to send is in `pollTransmit`. */
  Done: 0,
  /** Write the decrypted IP packet `out.buf[out.off, out.off + out.len)` (connection `out.cid`) to TUN. */
  WriteToTunnel: 1,
  /** Send `out.buf[out.off, out.off + out.len)` to `out.dst`, from `out.src` (null: any source). */
  WriteToNetwork: 2,
  /** Dropped: `out.dropReason` (and `out.wgDropReason` for {@link P2pDrop.WireGuard}) says why. */
  Drop: 3,
} as const;
export type P2pResult = (typeof P2pResult)[keyof typeof P2pResult];

/** Why the node dropped a datagram or packet. */
export const P2pDrop = {
  None: 0,
  /** Datagram longer than 1316 bytes (`MAX_FZ_PAYLOAD`), dropped before processing. */
  Oversized: 1,
  /** Neither STUN, ChannelData from a relay, nor WireGuard. */
  NotWireGuard: 2,
  /** A STUN message from port 3478 that no relay of ours sent, or ChannelData from an unknown relay. */
  UnknownRelay: 3,
  /** ChannelData on a channel that is unknown or not yet confirmed. */
  UnknownChannel: 4,
  /** A STUN message no ICE agent accepted. */
  UnhandledStun: 5,
  /** No connection for the WireGuard receiver index, initiator key, or connection id. */
  UnknownConnection: 6,
  /** WireGuard refused it; see `out.wgDropReason`. */
  WireGuard: 7,
  /** No socket nominated yet (application packets are not sent before ICE nominated a pair). */
  NotConnected: 8,
  /** The nominated relay has no allocation any more. */
  NoAllocation: 9,
  /** No channel to the peer on the nominated relay yet (a binding was started). */
  NoChannel: 10,
  /** The caller's buffer lacks the documented head- or tailroom. */
  BufferTooSmall: 11,
} as const;
export type P2pDrop = (typeof P2pDrop)[keyof typeof P2pDrop];

/** `P2P_DROP_NAMES[reason]` is the reason's name. */
export const P2P_DROP_NAMES: readonly string[] = Object.entries(P2pDrop).reduce<string[]>(
  (names, [name, code]) => {
    names[code] = name;
    return names;
  },
  [],
);

const EMPTY = new Uint8Array(0);

/**
 * Reusable out-object of `P2pNode.decapsulate` / `P2pNode.encapsulate`: allocate one per caller. Only the
 * fields relevant to the returned {@link P2pResult} are meaningful, and only until the next call.
 */
export class NodeOut {
  /** Connection of a `WriteToTunnel` packet. */
  cid = "";
  /** Buffer holding the output (always the caller's buffer). */
  buf: Uint8Array = EMPTY;
  off = 0;
  len = 0;
  /** Source address of a `WriteToNetwork` (null: relay traffic, any source). Cached by the node: do not mutate. */
  src: PeerAddrView | null = null;
  /** Destination of a `WriteToNetwork`. Cached by the node: do not mutate. */
  dst: PeerAddrView | null = null;
  /** IP version (4 or 6) of a `WriteToTunnel` packet. */
  ipVersion = 0;
  dropReason: P2pDrop = P2pDrop.None;
  /** WireGuard's reason when `dropReason` is {@link P2pDrop.WireGuard}. */
  wgDropReason: DropReason = DropReason.None;

  clear(): void {
    this.cid = "";
    this.buf = EMPTY;
    this.off = 0;
    this.len = 0;
    this.src = null;
    this.dst = null;
    this.ipVersion = 0;
    this.dropReason = P2pDrop.None;
    this.wgDropReason = DropReason.None;
  }
}

/**
 * A control-path datagram (STUN, TURN, WireGuard handshakes, keepalives, buffered packets). The payload
 * is owned by the transmit. `src` null means "any source" (relay traffic); otherwise send from exactly
 * that local address (spec §3.1).
 */
export interface Transmit {
  readonly src: SocketAddr | null;
  readonly dst: SocketAddr;
  readonly payload: Uint8Array;
}
