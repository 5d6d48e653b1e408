/**
 * The contract between the packet worker's I/O loop and a sans-IO packet core (standalone WireGuard
 * node or the Firezone gateway state). Both modes share every byte of the data path: the worker reads
 * batches from UDP and TUN, hands each packet to the core, and writes what comes out.
 *
 * Buffers: UDP datagrams are handed over in place (decryption happens in place; the plaintext ends up
 * 16 bytes further in). TUN packets are handed over at an offset with at least
 * {@link CORE_HEADROOM} bytes in front and {@link CORE_TAILROOM} bytes behind, so WireGuard and
 * ChannelData headers and the AEAD tag are written around the packet without copying.
 *
 * @module
 */

import type { PeerAddrView } from "./p2p/peer_addr.ts";

/** Headroom the core needs in front of a TUN packet: 4 (ChannelData) + 16 (WireGuard data header). */
export const CORE_HEADROOM = 20;
/** Tailroom the core needs behind a TUN packet: 16 (tag) + 15 (padding to 16). */
export const CORE_TAILROOM = 31;

/** What a core call produced. */
export const CoreResult = {
  /** Nothing to write (consumed, queued, or a keepalive). */
  Done: 0,
  /** Write `out.buf[out.off, out.off + out.len)` to the TUN device. */
  ToTun: 1,
  /** Send `out.buf[out.off, out.off + out.len)` to `out.dst` (from `out.src` when set). */
  ToNetwork: 2,
  /** Dropped; `out.dropReason` and `out.dropLayer` say why. */
  Drop: 3,
} as const;
export type CoreResult = (typeof CoreResult)[keyof typeof CoreResult];

/** Which layer's reason table `dropReason` indexes. */
export const DropLayer = { Core: 0, WireGuard: 1, Packet: 2, Policy: 3 } as const;
export type DropLayer = (typeof DropLayer)[keyof typeof DropLayer];

/** Reusable out-object of the data-path calls (no allocation per packet). */
export class CoreOut {
  buf: Uint8Array = new Uint8Array(0);
  off = 0;
  len = 0;
  /** Destination of a `ToNetwork` output (owned by the core; copy before the next call if kept). */
  dst: PeerAddrView | null = null;
  /** Explicit source address of a `ToNetwork` output, or null for the kernel's choice. */
  src: PeerAddrView | null = null;
  dropLayer: DropLayer = DropLayer.Core;
  dropReason = 0;

  clear(): void {
    this.off = 0;
    this.len = 0;
    this.dst = null;
    this.src = null;
    this.dropLayer = DropLayer.Core;
    this.dropReason = 0;
  }
}

/** A datagram the core wants sent, produced off the data path (handshakes, STUN, keepalives). */
export interface CoreTransmit {
  readonly payload: Uint8Array;
  readonly dst: PeerAddrView;
  readonly src: PeerAddrView | null;
}

/** The sans-IO core driven by the packet worker. */
export interface PacketCore {
  /** Our WireGuard static public key. */
  readonly publicKey: Uint8Array;
  /**
   * Hot path: a datagram `buf[off, off + len)` from `from` arrived on local address `local`.
   * The core may decrypt in place.
   */
  handleDatagram(
    buf: Uint8Array,
    off: number,
    len: number,
    from: PeerAddrView,
    local: PeerAddrView,
    out: CoreOut,
    now: number,
  ): CoreResult;
  /** Hot path: an IP packet read from TUN at `buf[off, off + len)` (headroom and tailroom as above). */
  handleTunPacket(buf: Uint8Array, off: number, len: number, out: CoreOut, now: number): CoreResult;
  handleTimeout(now: number): void;
  /** Earliest deadline (Infinity: none). */
  pollTimeout(): number;
  pollTransmit(): CoreTransmit | undefined;
}
