/**
 * Preallocated packet memory shared by the TUN and UDP wrappers and the packet worker.
 *
 * Ownership rules:
 * - A {@link PacketArena} is created once at start-up by whoever drives a batch direction (the
 *   packet worker) and lives for the rest of the process. Its memory never moves: the FFI
 *   wrappers compute raw addresses (`baseAddress + offset`) and write them into kernel structs
 *   (iovec, mmsghdr), so the arena object must stay referenced as long as any such struct or
 *   queued send refers to it. The wrappers keep a reference themselves while they hold one.
 * - Slot `i` occupies `[i * slotSize, (i + 1) * slotSize)`. A packet lives at
 *   `dataOffset(i) = i * slotSize + headroom` with room for `dataCapacity` bytes, leaving
 *   `headroom` bytes before it and `tailroom` bytes after a full-size packet, so encapsulation can
 *   happen in place. For the gateway: TUN reads use headroom ≥ 16 (WireGuard data header) + 4
 *   (TURN ChannelData header) = {@link TUN_HEADROOM}, and tailroom ≥ 16 (AEAD tag) + 15 (padding
 *   to a multiple of 16) = {@link TUN_TAILROOM}.
 * - The optional scratch region after the slots belongs to exactly one consumer (the TUN device
 *   uses it to stage offload super-packets); nothing else may write there.
 *
 * @module
 */
import { addressOf } from "../../ffi/libc.ts";

/** Headroom the packet worker needs in front of an IP packet read from TUN: WG (16) + ChannelData (4). */
export const TUN_HEADROOM = 20;
/** Tailroom after an IP packet read from TUN: AEAD tag (16) + padding to 16 bytes (≤ 15). */
export const TUN_TAILROOM = 31;

/** Options for {@link PacketArena}. */
export interface PacketArenaOptions {
  /** Number of packet slots. */
  slots: number;
  /** Bytes per slot, including head- and tailroom. */
  slotSize: number;
  /** Bytes reserved in front of each packet (default 0). */
  headroom?: number;
  /** Bytes reserved after a full-size packet (default 0). */
  tailroom?: number;
  /** Extra bytes after the slots for one consumer's staging use (default 0). */
  scratchBytes?: number;
}

/** One contiguous, never-moving block of packet slots plus an optional scratch region. */
export class PacketArena {
  readonly buffer: ArrayBuffer;
  /** The whole arena as bytes (slots, then scratch). */
  readonly bytes: Uint8Array<ArrayBuffer>;
  /** The whole arena as a DataView (network order by default). */
  readonly view: DataView;
  readonly slots: number;
  readonly slotSize: number;
  readonly headroom: number;
  readonly tailroom: number;
  /** Packet bytes available per slot: `slotSize - headroom - tailroom`. */
  readonly dataCapacity: number;
  /** Offset of the scratch region (= slots * slotSize). */
  readonly scratchOffset: number;
  readonly scratchBytes: number;
  /** Address of byte 0, for kernel structs. Fixed for the arena's life. */
  readonly baseAddress: number;

  constructor(options: PacketArenaOptions) {
    const { slots, slotSize } = options;
    const headroom = options.headroom ?? 0;
    const tailroom = options.tailroom ?? 0;
    const scratchBytes = options.scratchBytes ?? 0;
    if (!Number.isInteger(slots) || slots < 1) {
      throw new RangeError(`slots must be a positive integer, got ${slots}`);
    }
    if (!Number.isInteger(slotSize) || slotSize < 1) {
      throw new RangeError(`slotSize must be a positive integer, got ${slotSize}`);
    }
    if (headroom < 0 || tailroom < 0 || headroom + tailroom >= slotSize) {
      throw new RangeError(
        `headroom (${headroom}) + tailroom (${tailroom}) must leave room for data in a ${slotSize}-byte slot`,
      );
    }
    this.slots = slots;
    this.slotSize = slotSize;
    this.headroom = headroom;
    this.tailroom = tailroom;
    this.dataCapacity = slotSize - headroom - tailroom;
    this.scratchOffset = slots * slotSize;
    this.scratchBytes = scratchBytes;
    this.buffer = new ArrayBuffer(this.scratchOffset + scratchBytes);
    this.bytes = new Uint8Array(this.buffer);
    this.view = new DataView(this.buffer);
    this.baseAddress = addressOf(this.bytes);
  }

  /** Offset of slot `i`'s first byte. */
  slotOffset(i: number): number {
    return i * this.slotSize;
  }

  /** Offset where slot `i`'s packet starts (after the headroom). */
  dataOffset(i: number): number {
    return i * this.slotSize + this.headroom;
  }

  /** Fills `out[0..n)` with `dataOffset(first + k)`: the usual `offsets` argument of a batch read. */
  fillDataOffsets(out: Uint32Array, first = 0, n = out.length): void {
    for (let k = 0; k < n; k++) out[k] = (first + k) * this.slotSize + this.headroom;
  }

  /**
   * Bytes that may be written at `offset` without entering the slot's tailroom (or, for an offset
   * in the scratch region, the end of the arena).
   */
  capacityAt(offset: number): number {
    if (offset >= this.scratchOffset) return this.buffer.byteLength - offset;
    const slotEnd = (Math.floor(offset / this.slotSize) + 1) * this.slotSize;
    return slotEnd - this.tailroom - offset;
  }
}
