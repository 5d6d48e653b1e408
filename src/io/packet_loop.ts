/**
 * The packet worker's batch loop: blocks in `poll()` on TUN, the UDP sockets and the control eventfd,
 * then moves packets between them through a sans-IO {@link PacketCore}. Synchronous by design: it
 * never awaits, so the main thread keeps its own event loop for the portal, health and DNS.
 *
 * Per wake-up (Firezone's priority order): control messages, then up to {@link MAX_ITERS_PER_WAKE}
 * rounds of (UDP batch → core → TUN writes + UDP sends, TUN batch → core → UDP sends), then due timers
 * and the core's control transmits. Steady state allocates nothing: arenas, offset/length arrays,
 * the out-object and the address views are created once.
 *
 * @module
 */

import { POLLIN, POLLOUT } from "../../ffi/structs.ts";
import type { EventFd } from "../../ffi/poll.ts";
import { PollSet } from "../../ffi/poll.ts";
import { logger } from "../log.ts";
import { CoreOut, CoreResult, type PacketCore } from "../packet_core.ts";
import { PeerAddrView } from "../p2p/peer_addr.ts";
import { applyOuterEcn, ECN_CE, innerEcn } from "../wire/ecn.ts";
import { PacketArena, TUN_HEADROOM, TUN_TAILROOM } from "./packet_arena.ts";
import { TunDevice } from "./tun_device.ts";
import { type UdpRecvBatch, UdpSendBatch, type UdpSockets } from "./udp_sockets.ts";

const log = logger("fz_gateway::io::loop");

/** Work rounds per wake-up before timers and control get their turn again. */
export const MAX_ITERS_PER_WAKE = 64;
/** Packets read from TUN per round. */
export const TUN_BATCH = 64;
/** UDP receive slots per round (each a GRO message of up to 64 datagrams when GRO is on). */
export const UDP_RECV_SLOTS = 16;
/** The longest `poll()` sleep: timers are re-read at least this often. */
const MAX_POLL_MS = 1_000;
/** How long a blocked UDP send may wait for socket space before its datagrams are dropped. */
const SEND_BLOCK_MS = 5;
/** TUN slot: a 1280-byte MTU packet with head- and tailroom, rounded up. */
const TUN_SLOT_BYTES = 2048;
const CONTROL_SLOTS = 64;

/** Indices into {@link PacketLoop.stats}. */
export const LoopStat = {
  Wakeups: 0,
  UdpRxPackets: 1,
  TunRxPackets: 2,
  TunTxPackets: 3,
  UdpTxPackets: 4,
  Drops: 5,
  ControlTransmits: 6,
  SendBlocked: 7,
  SendDropped: 8,
  ControlMessages: 9,
  /** Unexpected exceptions caught in the loop (bugs; each is logged at ERROR). */
  Errors: 10,
} as const;
const STAT_COUNT = 11;

/** Options of a {@link PacketLoop}. */
export interface PacketLoopOptions {
  tun: TunDevice;
  udp: UdpSockets;
  core: PacketCore;
  /** Signalled by the main thread after it put a message into the mailbox. */
  wake: EventFd;
  /** Called with each control message drained from the mailbox (control path). */
  onControl: (messages: unknown[]) => void;
  /** Drains the mailbox. */
  drainMailbox: () => unknown[];
  /** Monotonic clock in ms. */
  clock: () => number;
  /** Called once per wake-up after timers (drain the core's events here). */
  onWake?: (now: number) => void;
}

/** The synchronous packet loop of the worker. */
export class PacketLoop {
  /** Counters indexed by {@link LoopStat}. */
  readonly stats = new Float64Array(STAT_COUNT);
  /** Drops by `layer * 64 + reason` (see `DropLayer`). */
  readonly drops = new Float64Array(4 * 64);

  readonly #tun: TunDevice;
  readonly #udp: UdpSockets;
  readonly #core: PacketCore;
  readonly #wake: EventFd;
  readonly #opts: PacketLoopOptions;
  readonly #poll: PollSet;
  readonly #pollTun: number;
  readonly #pollV4: number;
  readonly #pollV6: number;
  readonly #pollWake: number;
  readonly #rx: UdpRecvBatch;
  readonly #tunArena: PacketArena;
  readonly #tunOffsets: Uint32Array;
  readonly #tunLengths: Uint32Array;
  readonly #tunTxOffsets: Uint32Array;
  readonly #tunTxLengths: Uint32Array;
  readonly #tx = new UdpSendBatch(1024);
  readonly #control: PacketArena;
  #controlNext = 0;
  readonly #oneOffset = new Uint32Array(1);
  readonly #oneLength = new Uint32Array(1);
  readonly #out = new CoreOut();
  readonly #from = new PeerAddrView();
  readonly #local = new PeerAddrView();
  #stopped = false;

  constructor(options: PacketLoopOptions) {
    this.#opts = options;
    this.#tun = options.tun;
    this.#udp = options.udp;
    this.#core = options.core;
    this.#wake = options.wake;
    this.#poll = new PollSet(4);
    this.#pollTun = this.#poll.add(this.#tun.fd, POLLIN);
    this.#pollV4 = this.#poll.add(this.#udp.v4?.fd ?? -1, POLLIN);
    this.#pollV6 = this.#poll.add(this.#udp.v6?.fd ?? -1, POLLIN);
    this.#pollWake = this.#poll.add(this.#wake.fd, POLLIN);
    this.#rx = this.#udp.newRecvBatch(UDP_RECV_SLOTS);
    this.#tunArena = new PacketArena({
      slots: TUN_BATCH,
      slotSize: TUN_SLOT_BYTES,
      headroom: TUN_HEADROOM,
      tailroom: TUN_TAILROOM,
      scratchBytes: this.#tun.vnetHdr ? TunDevice.scratchBytesFor(TUN_SLOT_BYTES) : 0,
    });
    this.#tunOffsets = new Uint32Array(TUN_BATCH);
    this.#tunLengths = new Uint32Array(TUN_BATCH);
    this.#tunArena.fillDataOffsets(this.#tunOffsets);
    this.#tunTxOffsets = new Uint32Array(this.#rx.maxEntries);
    this.#tunTxLengths = new Uint32Array(this.#rx.maxEntries);
    this.#control = new PacketArena({ slots: CONTROL_SLOTS, slotSize: 2048 });
  }

  /** Asks {@link run} to return after the current wake-up (call from a control message handler). */
  stop(): void {
    this.#stopped = true;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Runs until {@link stop}. Blocks the calling thread. */
  run(): void {
    const core = this.#core;
    const poll = this.#poll;
    const clock = this.#opts.clock;
    const stats = this.stats;
    this.#flushControlTransmits();
    while (!this.#stopped) {
      // One bad packet or message must not take the whole data plane down: a broken invariant is
      // logged with its stack and the loop goes on (a try block per wake-up costs nothing per packet).
      try {
        let now = clock();
        const deadline = core.pollTimeout();
        let wait = deadline - now;
        if (wait > MAX_POLL_MS) wait = MAX_POLL_MS;
        if (wait < 0 || this.#tun.hasPendingSegments) wait = 0;
        poll.poll(wait);
        stats[LoopStat.Wakeups]!++;
        now = clock();
        if (poll.revents(this.#pollWake) !== 0) this.#handleControl();
        for (let i = 0; i < MAX_ITERS_PER_WAKE && !this.#stopped; i++) {
          const fromUdp = this.#pumpUdp(now);
          const fromTun = this.#pumpTun(now);
          if (fromUdp === 0 && fromTun === 0) break;
          now = clock();
        }
        if (core.pollTimeout() <= now) core.handleTimeout(now);
        this.#flushControlTransmits();
        this.#opts.onWake?.(now);
      } catch (error) {
        stats[LoopStat.Errors]!++;
        this.#tx.clear();
        log.error("Packet loop error; continuing", {
          error: error instanceof Error ? (error.stack ?? error.message) : String(error),
        });
      }
    }
  }

  #handleControl(): void {
    this.#wake.drain();
    const messages = this.#opts.drainMailbox();
    if (messages.length === 0) return;
    this.stats[LoopStat.ControlMessages]! += messages.length;
    this.#opts.onControl(messages);
    this.#flushControlTransmits();
  }

  /** Hot path: one UDP batch through the core. Returns the number of datagrams. */
  #pumpUdp(now: number): number {
    const rx = this.#rx;
    const n = this.#udp.recvBatch(rx);
    if (n === 0) return 0;
    this.stats[LoopStat.UdpRxPackets]! += n;
    const core = this.#core;
    const out = this.#out;
    const from = this.#from;
    const local = this.#local;
    const bytes = rx.arena.bytes;
    const addr = rx.addrBytes;
    let tunCount = 0;
    for (let i = 0; i < n; i++) {
      const family = rx.family[i] === 4 ? 4 : 6;
      from.setBytes(addr, rx.srcAddrOff[i]!, family, rx.srcPort[i]!);
      local.setBytes(addr, rx.dstAddrOff[i]!, family, rx.localPort[i]!);
      const r = core.handleDatagram(bytes, rx.offset[i]!, rx.length[i]!, from, local, out, now);
      if (r === CoreResult.ToTun) {
        // Congestion Experienced on the outer header carries over to an ECN-capable inner packet.
        if (rx.ecn[i] === ECN_CE) applyOuterEcn(out.buf, out.off, out.len, ECN_CE);
        if (out.buf === bytes) {
          this.#tunTxOffsets[tunCount] = out.off;
          this.#tunTxLengths[tunCount] = out.len;
          tunCount++;
        } else {
          this.#writeTunCopy(out.buf, out.off, out.len);
        }
      } else if (r === CoreResult.ToNetwork) {
        this.#queueCopy(out);
      } else if (r === CoreResult.Drop) {
        this.#countDrop(out.dropLayer, out.dropReason);
      }
    }
    if (tunCount > 0) {
      this.#tun.writeBatch(rx.arena, this.#tunTxOffsets, this.#tunTxLengths, tunCount);
      this.stats[LoopStat.TunTxPackets]! += tunCount;
    }
    this.#flushUdp();
    return n;
  }

  /** Hot path: one TUN batch through the core. Returns the number of packets. */
  #pumpTun(now: number): number {
    const arena = this.#tunArena;
    const n = this.#tun.readBatch(arena, this.#tunOffsets, this.#tunLengths, TUN_BATCH);
    if (n === 0) return 0;
    this.stats[LoopStat.TunRxPackets]! += n;
    const core = this.#core;
    const out = this.#out;
    const tx = this.#tx;
    const bytes = arena.bytes;
    for (let i = 0; i < n; i++) {
      const off = this.#tunOffsets[i]!;
      const len = this.#tunLengths[i]!;
      // The outer datagram carries the inner packet's ECN bits (read before encryption).
      const ecn = innerEcn(bytes, off, len);
      const r = core.handleTunPacket(bytes, off, len, out, now);
      if (r === CoreResult.ToNetwork) {
        const dst = out.dst!;
        const src = out.src ? out.src.bytes : null;
        if (out.buf === bytes) {
          if (!tx.push(arena, out.off, out.len, dst.family, dst.bytes, 0, dst.port, src, 0, ecn)) {
            this.#flushUdp();
            tx.push(arena, out.off, out.len, dst.family, dst.bytes, 0, dst.port, src, 0, ecn);
          }
        } else {
          this.#queueCopy(out);
        }
      } else if (r === CoreResult.ToTun) {
        this.#writeTunCopy(out.buf, out.off, out.len);
      } else if (r === CoreResult.Drop) {
        this.#countDrop(out.dropLayer, out.dropReason);
      }
    }
    // The TUN slots are reused by the next read: everything referring to them must be sent now.
    this.#flushUdp();
    return n;
  }

  /** Sends the queued datagrams; waits briefly for socket space, then drops what still does not fit. */
  #flushUdp(): void {
    const tx = this.#tx;
    if (tx.count === 0) return;
    const total = tx.count;
    this.#udp.sendBatch(tx);
    if (tx.count > 0) {
      this.stats[LoopStat.SendBlocked]!++;
      const poll = this.#poll;
      const deadline = this.#opts.clock() + SEND_BLOCK_MS;
      // Wait only for the sockets that still have datagrams queued; nothing else may wake us.
      poll.setEvents(this.#pollTun, 0);
      poll.setEvents(this.#pollWake, 0);
      while (tx.count > 0) {
        const left = deadline - this.#opts.clock();
        if (left <= 0) break;
        let v4 = false;
        let v6 = false;
        for (let i = 0; i < tx.count; i++) {
          if (tx.family[i] === 4) v4 = true;
          else v6 = true;
        }
        poll.setEvents(this.#pollV4, v4 ? POLLOUT : 0);
        poll.setEvents(this.#pollV6, v6 ? POLLOUT : 0);
        poll.poll(left);
        this.#udp.sendBatch(tx);
      }
      poll.setEvents(this.#pollV4, POLLIN);
      poll.setEvents(this.#pollV6, POLLIN);
      poll.setEvents(this.#pollTun, POLLIN);
      poll.setEvents(this.#pollWake, POLLIN);
      if (tx.count > 0) {
        const dropped = tx.count;
        this.stats[LoopStat.SendDropped]! += dropped;
        tx.clear();
        this.stats[LoopStat.UdpTxPackets]! += total - dropped;
        return;
      }
    }
    this.stats[LoopStat.UdpTxPackets]! += total;
  }

  /** Control path: copies an output that does not live in an arena into a control slot. */
  #queueCopy(out: CoreOut): void {
    const dst = out.dst;
    if (dst === null) return;
    this.#queueBytes(out.buf, out.off, out.len, dst, out.src);
  }

  #queueBytes(buf: Uint8Array, off: number, len: number, dst: PeerAddrView, src: PeerAddrView | null): void {
    const arena = this.#control;
    if (len > arena.slotSize) return;
    if (this.#controlNext === CONTROL_SLOTS) {
      this.#flushUdp();
      this.#controlNext = 0;
    }
    const slotOff = this.#controlNext++ * arena.slotSize;
    arena.bytes.set(buf.subarray(off, off + len), slotOff);
    if (!this.#tx.push(arena, slotOff, len, dst.family, dst.bytes, 0, dst.port, src ? src.bytes : null, 0)) {
      this.#flushUdp();
      this.#tx.push(arena, slotOff, len, dst.family, dst.bytes, 0, dst.port, src ? src.bytes : null, 0);
    }
  }

  #writeTunCopy(buf: Uint8Array, off: number, len: number): void {
    const arena = this.#control;
    if (len > arena.slotSize) return;
    this.#flushUdp(); // control slots may be referenced by pending sends
    this.#controlNext = 0;
    arena.bytes.set(buf.subarray(off, off + len), 0);
    this.#oneOffset[0] = 0;
    this.#oneLength[0] = len;
    this.#tun.writeBatch(arena, this.#oneOffset, this.#oneLength, 1);
    this.stats[LoopStat.TunTxPackets]!++;
  }

  #flushControlTransmits(): void {
    const core = this.#core;
    let sent = 0;
    for (let t = core.pollTransmit(); t !== undefined; t = core.pollTransmit()) {
      this.#queueBytes(t.payload, 0, t.payload.length, t.dst, t.src);
      sent++;
    }
    if (sent > 0) {
      this.stats[LoopStat.ControlTransmits]! += sent;
      this.#flushUdp();
      this.#controlNext = 0;
    }
  }

  #countDrop(layer: number, reason: number): void {
    this.stats[LoopStat.Drops]!++;
    const i = (layer << 6) | (reason & 63);
    this.drops[i] = this.drops[i]! + 1;
    if (log.traceEnabled) log.trace("Dropped packet", { layer, reason });
  }
}
