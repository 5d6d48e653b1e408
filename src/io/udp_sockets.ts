/**
 * The gateway's UDP sockets (spec 3.1, 4.11): one IPv4 and one IPv6 socket on port 52625 (port 0
 * when taken), `SO_MARK 0xfd002021`, large buffers, per-datagram local address through
 * IP_PKTINFO/IPV6_RECVPKTINFO, explicit source addresses on send, GSO on send and GRO on receive,
 * all batched through `recvmmsg`/`sendmmsg` without allocating per datagram.
 *
 * Buffer ownership:
 * - A {@link UdpRecvBatch} owns its payload arena (`batch.arena`) and the kernel structs pointing
 *   into it (mmsghdr, iovec, sockaddr and control buffers, written once at construction). Entries
 *   stay valid until the next receive into the same batch. With GRO the slots are 64 KB each.
 * - A {@link UdpSendBatch} owns its kernel structs; payloads stay in the caller's arenas
 *   (e.g. the TUN arena after in-place encryption). `push()` records the payload's address and a
 *   reference to its arena; the caller must not reuse that memory until the datagram has left the
 *   batch (sent or dropped; see {@link UdpSockets.sendBatch}).
 *
 * @module
 */
import { EAGAIN, EINVAL, EIO, EPERM, Errno, ERRNO_MAX } from "../../ffi/errno.ts";
import { addressOf, closeFd, pointerTo } from "../../ffi/libc.ts";
import {
  getU64,
  IOVEC,
  IP_PKTINFO,
  IP_RECVTOS,
  IPV6_RECVPKTINFO,
  IPV6_RECVTCLASS,
  IPV6_V6ONLY,
  MMSGHDR,
  MSG_TRUNC,
  MSGHDR,
  setU64,
  SO_MARK,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_SNDBUF,
  SO_SNDBUFFORCE,
  SOCKADDR_IN,
  SOCKADDR_IN6,
  SOL_IP,
  SOL_IPV6,
  SOL_SOCKET,
  writeIovec,
  writeSockaddr,
} from "../../ffi/structs.ts";
import {
  bindSocket,
  CMSG_SPACE_PKTINFO6,
  CMSG_SPACE_TOS,
  CMSG_SPACE_UDP_SEGMENT,
  enableUdpGro,
  getSockOptInt,
  localAddress,
  parseRecvCmsgs,
  probeUdpGso,
  RecvCmsgInfo,
  recvmmsgRaw,
  sendmmsgRaw,
  setSockOptInt,
  trySetSockOptInt,
  udpSocket,
  writePktinfoCmsg,
  writeTosCmsg,
  writeUdpSegmentCmsg,
} from "../../ffi/udp_linux.ts";
import { logger } from "../log.ts";
import { formatIp, parseIp, type SocketAddr } from "../wire/ip_addr.ts";
import { PacketArena } from "./packet_arena.ts";

const log = logger("fz_gateway::io::udp");

/** The gateway's UDP port: 49152 + 3473 ("FIRE"). */
export const GATEWAY_UDP_PORT = 52625;
/** SO_MARK on the gateway's sockets so their traffic bypasses the tunnel routing table. */
export const SOCKET_MARK = 0xfd002021;
/** Requested send buffer per socket. */
export const SEND_BUFFER_BYTES = 1024 * 1024;
/** Requested receive buffer per socket. */
export const RECV_BUFFER_BYTES = 10 * 1024 * 1024;
/** Most segments in one GSO send. */
export const MAX_GSO_SEGMENTS = 64;
/** Most payload bytes in one GSO send (65535 - 20 IPv4 - 8 UDP; also safe for IPv6). */
export const MAX_GSO_BYTES = 65507;
/** Receive slot size with GRO (a coalesced datagram can be up to 64 KB). */
export const GRO_SLOT_BYTES = 65536;
/** Receive slot size without GRO (largest Firezone payload is 1316 bytes). */
export const DEFAULT_SLOT_BYTES = 2048;
/** The kernel coalesces at most this many datagrams per GRO receive. */
const MAX_GRO_SEGMENTS = 64;

const SOCKADDR_SLOT = 32;
const TWO_32 = 4294967296; // sockaddr_in6 (28) rounded up for alignment
const RECV_CONTROL_BYTES = 128;
const SEND_CONTROL_BYTES = CMSG_SPACE_UDP_SEGMENT + CMSG_SPACE_PKTINFO6 + CMSG_SPACE_TOS; // 80

/** Indices into {@link UdpSocket.stats}. */
export const UdpStat = {
  RxDatagrams: 0,
  RxBytes: 1,
  /** recvmmsg calls that returned data. */
  RxCalls: 2,
  /** Received coalesced (GRO) messages. */
  RxGroMessages: 3,
  /** Datagrams skipped because the kernel gave no pktinfo. */
  RxNoPktinfo: 4,
  /** Datagrams skipped because they did not fit a slot. */
  RxTruncated: 5,
  RxErrors: 6,
  TxDatagrams: 7,
  TxBytes: 8,
  /** sendmmsg calls. */
  TxCalls: 9,
  /** Messages sent with UDP_SEGMENT (more than one segment). */
  TxGsoMessages: 10,
  /** Datagrams dropped on a send error. */
  TxErrors: 11,
  /** Sends that stopped on EAGAIN. */
  TxWouldBlock: 12,
} as const;
const STAT_COUNT = 13;

/** Receive-side batch: a payload arena plus per-datagram metadata arrays (see module doc). */
export class UdpRecvBatch {
  /** Payload memory: slot `i` at `i * slotSize`. */
  readonly arena: PacketArena;
  /** Kernel structs and addresses; `srcAddrOff`/`dstAddrOff` index into this. */
  readonly addrBytes: Uint8Array<ArrayBuffer>;
  readonly slots: number;
  readonly slotSize: number;
  /** Largest number of entries (datagrams) one receive can produce. */
  readonly maxEntries: number;
  /** Datagrams in the batch. */
  count = 0;
  /** Payload offset in `arena.bytes`. */
  readonly offset: Uint32Array;
  readonly length: Uint32Array;
  /** 4 or 6. */
  readonly family: Uint8Array;
  /** Offset of the source address (4 or 16 bytes) in {@link addrBytes}. */
  readonly srcAddrOff: Uint32Array;
  readonly srcPort: Uint16Array;
  /** The IPv4 source as a uint32 (0 for IPv6): a ready numeric map key. */
  readonly srcV4: Uint32Array;
  /** Offset of the local (destination) address (4 or 16 bytes) in {@link addrBytes}. */
  readonly dstAddrOff: Uint32Array;
  /** The receiving socket's port. */
  readonly localPort: Uint16Array;
  /** GRO segment size of the message the datagram came from (its own length if not coalesced). */
  readonly segmentSize: Uint32Array;
  /** ECN bits of the datagram's outer IP header (0 when the kernel did not report them). */
  readonly ecn: Uint8Array;

  /** @internal Receive slots used so far in this batch (several sockets may append). */
  slotsUsed = 0;
  /** @internal */ readonly meta: DataView;
  /** @internal */ readonly mmsgOff: number;
  /** @internal */ readonly nameOff: number;
  /** @internal */ readonly controlOff: number;
  readonly #mmsgPtrs: Deno.PointerObject[] = [];

  /**
   * @param slots receive slots (messages per recvmmsg)
   * @param slotSize bytes per slot: {@link GRO_SLOT_BYTES} when the socket has GRO on
   */
  constructor(slots = 64, slotSize = DEFAULT_SLOT_BYTES) {
    if (!Number.isInteger(slots) || slots < 1 || slots > 1024) {
      throw new RangeError(`slots must be an integer from 1 to 1024, got ${slots}`);
    }
    this.slots = slots;
    this.slotSize = slotSize;
    this.arena = new PacketArena({ slots, slotSize });
    this.maxEntries = slotSize >= GRO_SLOT_BYTES ? slots * MAX_GRO_SEGMENTS : slots;
    const e = this.maxEntries;
    this.offset = new Uint32Array(e);
    this.length = new Uint32Array(e);
    this.family = new Uint8Array(e);
    this.srcAddrOff = new Uint32Array(e);
    this.srcPort = new Uint16Array(e);
    this.srcV4 = new Uint32Array(e);
    this.dstAddrOff = new Uint32Array(e);
    this.localPort = new Uint16Array(e);
    this.segmentSize = new Uint32Array(e);
    this.ecn = new Uint8Array(e);

    const iovOff = slots * MMSGHDR.SIZE;
    this.mmsgOff = 0;
    this.nameOff = iovOff + slots * IOVEC.SIZE;
    this.controlOff = this.nameOff + slots * SOCKADDR_SLOT;
    this.addrBytes = new Uint8Array(this.controlOff + slots * RECV_CONTROL_BYTES);
    this.meta = new DataView(this.addrBytes.buffer);
    const metaBase = addressOf(this.addrBytes);
    for (let i = 0; i < slots; i++) {
      const m = i * MMSGHDR.SIZE;
      writeIovec(this.meta, iovOff + i * IOVEC.SIZE, this.arena.baseAddress + i * slotSize, slotSize);
      setU64(this.meta, m + MSGHDR.NAME, metaBase + this.nameOff + i * SOCKADDR_SLOT);
      setU64(this.meta, m + MSGHDR.IOV, metaBase + iovOff + i * IOVEC.SIZE);
      setU64(this.meta, m + MSGHDR.IOVLEN, 1);
      setU64(this.meta, m + MSGHDR.CONTROL, metaBase + this.controlOff + i * RECV_CONTROL_BYTES);
      this.#mmsgPtrs.push(pointerTo(metaBase + m));
    }
  }

  /** @internal The mmsghdr pointer for slot `i`. */
  mmsgPointer(i: number): Deno.PointerObject {
    return this.#mmsgPtrs[i]!;
  }

  /** @internal Prepares slots `from..slots-1` for recvmmsg (the kernel overwrites these fields). */
  resetSlots(from: number): void {
    const meta = this.meta;
    for (let i = from; i < this.slots; i++) {
      const m = i * MMSGHDR.SIZE;
      meta.setUint32(m + MSGHDR.NAMELEN, SOCKADDR_IN6.SIZE, true);
      setU64(meta, m + MSGHDR.CONTROLLEN, RECV_CONTROL_BYTES);
      meta.setInt32(m + MSGHDR.FLAGS, 0, true);
    }
  }

  /** Empties the batch. */
  clear(): void {
    this.count = 0;
    this.slotsUsed = 0;
  }

  /** The source of datagram `i` (allocates: control path). */
  sourceAddr(i: number): SocketAddr {
    const family = this.family[i] === 4 ? 4 : 6;
    return {
      family,
      ip: formatIp(this.addrBytes, this.srcAddrOff[i]!, family === 4 ? 4 : 16),
      port: this.srcPort[i]!,
    };
  }

  /** The local address datagram `i` arrived on (allocates: control path). */
  localAddr(i: number): SocketAddr {
    const family = this.family[i] === 4 ? 4 : 6;
    return {
      family,
      ip: formatIp(this.addrBytes, this.dstAddrOff[i]!, family === 4 ? 4 : 16),
      port: this.localPort[i]!,
    };
  }
}

/** Send-side batch: datagrams referencing payloads in caller arenas (see module doc). */
export class UdpSendBatch {
  readonly capacity: number;
  /** Datagrams queued. */
  count = 0;
  /** @internal Absolute payload addresses. */
  readonly address: Float64Array;
  /** Payload offsets in their arenas (for the caller's bookkeeping after a partial send). */
  readonly offset: Uint32Array;
  readonly length: Uint32Array;
  readonly family: Uint8Array;
  /** ECN bits to put in the outer IP header (0 = Not-ECT). */
  readonly ecn: Uint8Array;
  readonly dstPort: Uint16Array;
  /** @internal 16 bytes per entry (IPv4 in the first 4). */
  readonly dst: Uint8Array;
  /** @internal 1 when `src` holds an explicit source address. */
  readonly hasSrc: Uint8Array;
  /** @internal 16 bytes per entry. */
  readonly src: Uint8Array;
  /** The arena each payload lives in (kept referenced while queued). */
  readonly arenas: (PacketArena | null)[];
  /** @internal 0 = pending, 1 = done (sent or dropped). */
  readonly state: Uint8Array;
  /** @internal */ readonly meta: Uint8Array<ArrayBuffer>;
  /** @internal */ readonly metaView: DataView;
  /** @internal */ readonly metaBase: number;
  /** @internal */ readonly iovOff: number;
  /** @internal */ readonly nameOff: number;
  /** @internal */ readonly controlOff: number;
  /** @internal Entry indices of the messages being built, grouped. */
  readonly groupEntries: Uint32Array;
  /** @internal */ readonly groupStart: Uint32Array;
  /** @internal */ readonly groupLen: Uint32Array;
  readonly #mmsgPtrs: Deno.PointerObject[] = [];

  constructor(capacity = 256) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 4096) {
      throw new RangeError(`capacity must be an integer from 1 to 4096, got ${capacity}`);
    }
    this.capacity = capacity;
    this.address = new Float64Array(capacity);
    this.offset = new Uint32Array(capacity);
    this.length = new Uint32Array(capacity);
    this.family = new Uint8Array(capacity);
    this.ecn = new Uint8Array(capacity);
    this.dstPort = new Uint16Array(capacity);
    this.dst = new Uint8Array(capacity * 16);
    this.hasSrc = new Uint8Array(capacity);
    this.src = new Uint8Array(capacity * 16);
    this.arenas = new Array<PacketArena | null>(capacity).fill(null);
    this.state = new Uint8Array(capacity);
    this.groupEntries = new Uint32Array(capacity);
    this.groupStart = new Uint32Array(capacity);
    this.groupLen = new Uint32Array(capacity);
    this.iovOff = capacity * MMSGHDR.SIZE;
    this.nameOff = this.iovOff + capacity * IOVEC.SIZE;
    this.controlOff = this.nameOff + capacity * SOCKADDR_SLOT;
    this.meta = new Uint8Array(this.controlOff + capacity * SEND_CONTROL_BYTES);
    this.metaView = new DataView(this.meta.buffer);
    this.metaBase = addressOf(this.meta);
    for (let i = 0; i < capacity; i++) {
      const m = i * MMSGHDR.SIZE;
      setU64(this.metaView, m + MSGHDR.NAME, this.metaBase + this.nameOff + i * SOCKADDR_SLOT);
      setU64(this.metaView, m + MSGHDR.CONTROL, this.metaBase + this.controlOff + i * SEND_CONTROL_BYTES);
      this.#mmsgPtrs.push(pointerTo(this.metaBase + m));
    }
  }

  /** @internal The mmsghdr pointer for message `i`. */
  mmsgPointer(i: number): Deno.PointerObject {
    return this.#mmsgPtrs[i]!;
  }

  /**
   * Queues `len` bytes at `arena.bytes[off]` for `dst` (4 or 16 bytes at `dstBytes[dstOff]`,
   * by `family`) port `dstPort`, from source address `srcBytes[srcOff]` (same family) or, when
   * `srcBytes` is null, whatever the kernel picks, with `ecn` in the outer IP header (default
   * Not-ECT). Returns false when the batch is full.
   */
  push(
    arena: PacketArena,
    off: number,
    len: number,
    family: 4 | 6,
    dstBytes: Uint8Array,
    dstOff: number,
    dstPort: number,
    srcBytes: Uint8Array | null,
    srcOff: number,
    ecn = 0,
  ): boolean {
    const i = this.count;
    if (i === this.capacity) return false;
    this.ecn[i] = ecn;
    this.address[i] = arena.baseAddress + off;
    this.offset[i] = off;
    this.length[i] = len;
    this.family[i] = family;
    this.dstPort[i] = dstPort;
    this.arenas[i] = arena;
    this.state[i] = 0;
    const n = family === 4 ? 4 : 16;
    const d = i * 16;
    for (let k = 0; k < n; k++) this.dst[d + k] = dstBytes[dstOff + k]!;
    if (srcBytes === null) {
      this.hasSrc[i] = 0;
    } else {
      this.hasSrc[i] = 1;
      for (let k = 0; k < n; k++) this.src[d + k] = srcBytes[srcOff + k]!;
    }
    this.count = i + 1;
    return true;
  }

  /** Drops every queued datagram. */
  clear(): void {
    for (let i = 0; i < this.count; i++) this.arenas[i] = null;
    this.count = 0;
  }

  /** @internal Keeps only pending entries (state 0), in order. */
  retainPending(): void {
    let w = 0;
    const n = this.count;
    for (let r = 0; r < n; r++) {
      if (this.state[r] !== 0) {
        this.arenas[r] = null;
        continue;
      }
      if (w !== r) {
        this.address[w] = this.address[r]!;
        this.offset[w] = this.offset[r]!;
        this.length[w] = this.length[r]!;
        this.family[w] = this.family[r]!;
        this.ecn[w] = this.ecn[r]!;
        this.dstPort[w] = this.dstPort[r]!;
        this.hasSrc[w] = this.hasSrc[r]!;
        this.arenas[w] = this.arenas[r]!;
        this.arenas[r] = null;
        this.dst.copyWithin(w * 16, r * 16, r * 16 + 16);
        this.src.copyWithin(w * 16, r * 16, r * 16 + 16);
        this.state[w] = 0;
      }
      w++;
    }
    this.count = w;
  }
}

/** Options for one socket ({@link UdpSocket.bind}). */
export interface UdpSocketOptions {
  family: 4 | 6;
  /** Local address to bind (default any: "0.0.0.0" / "::"). */
  address?: string;
  /** Port to bind (default 52625). */
  port?: number;
  /** When binding `port` fails, bind port 0 instead (default true). */
  fallbackToAnyPort?: boolean;
  /** SO_MARK value, or null for none (default 0xfd002021; needs CAP_NET_ADMIN). */
  mark?: number | null;
  /** Default 1 MiB. */
  sendBufferBytes?: number;
  /** Default 10 MiB. */
  recvBufferBytes?: number;
  /** Use UDP_SEGMENT when the kernel supports it (default true). */
  gso?: boolean;
  /** Turn on UDP_GRO when the kernel supports it (default true). */
  gro?: boolean;
}

/** One non-blocking UDP socket. */
export class UdpSocket {
  readonly fd: number;
  readonly family: 4 | 6;
  readonly localPort: number;
  /** The bound address, canonical text. */
  readonly localIp: string;
  readonly groEnabled: boolean;
  /** Counters, indexed by {@link UdpStat}. */
  readonly stats = new Float64Array(STAT_COUNT);
  /** Failed calls / dropped datagrams by errno. */
  readonly errors = new Uint32Array(ERRNO_MAX + 1);
  /** Histogram of messages per recvmmsg that returned data (capped at 1024). */
  readonly rxBatchSizes = new Uint32Array(1025);
  /** Histogram of segments per sent message (index 1..64). */
  readonly txSegments = new Uint32Array(MAX_GSO_SEGMENTS + 1);
  #gso: boolean;
  readonly #cmsg = new RecvCmsgInfo();
  #closed = false;

  /** Use {@link UdpSocket.bind}. */
  constructor(fd: number, family: 4 | 6, localIp: string, localPort: number, gso: boolean, gro: boolean) {
    this.fd = fd;
    this.family = family;
    this.localIp = localIp;
    this.localPort = localPort;
    this.#gso = gso;
    this.groEnabled = gro;
  }

  /** Whether sends may use UDP_SEGMENT (turned off for good after EIO/EINVAL). */
  get gsoEnabled(): boolean {
    return this.#gso;
  }

  /** Turns GSO off (also done automatically when the kernel refuses a GSO send). */
  disableGso(): void {
    this.#gso = false;
  }

  /** Creates, configures and binds a socket. Throws {@link Errno} if it cannot be bound at all. */
  static bind(options: UdpSocketOptions): UdpSocket {
    const family = options.family;
    const addrText = options.address ?? (family === 4 ? "0.0.0.0" : "::");
    const addr = parseIp(addrText);
    if (!addr || addr.length !== (family === 4 ? 4 : 16)) {
      throw new TypeError(`Invalid IPv${family} bind address "${addrText}"`);
    }
    const fd = udpSocket(family);
    try {
      if (family === 6) setSockOptInt(fd, SOL_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY");
      const mark = options.mark === undefined ? SOCKET_MARK : options.mark;
      if (mark !== null) {
        const errno = trySetSockOptInt(fd, SOL_SOCKET, SO_MARK, mark | 0);
        if (errno !== 0) {
          log.warn("Failed to set SO_MARK; tunnel-range traffic of this socket may loop", {
            error: new Errno(errno, "setsockopt(SO_MARK)").message,
          });
        }
      }
      setBuffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, options.sendBufferBytes ?? SEND_BUFFER_BYTES, "send");
      setBuffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, options.recvBufferBytes ?? RECV_BUFFER_BYTES, "receive");
      if (family === 4) setSockOptInt(fd, SOL_IP, IP_PKTINFO, 1, "IP_PKTINFO");
      else setSockOptInt(fd, SOL_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO");
      // Report each datagram's ECN bits (spec §4.2 step 6); without them ECN is just not propagated.
      if (family === 4) trySetSockOptInt(fd, SOL_IP, IP_RECVTOS, 1);
      else trySetSockOptInt(fd, SOL_IPV6, IPV6_RECVTCLASS, 1);
      const gso = (options.gso ?? true) && probeUdpGso(fd);
      const gro = (options.gro ?? true) && enableUdpGro(fd);
      const port = options.port ?? GATEWAY_UDP_PORT;
      try {
        bindSocket(fd, family, addr, port);
      } catch (error) {
        if (port === 0 || options.fallbackToAnyPort === false) throw error;
        log.warn("Failed to bind UDP port; using a random port", { family, port, error: String(error) });
        bindSocket(fd, family, addr, 0);
      }
      const local = localAddress(fd);
      log.debug("Bound UDP socket", { family, port: local.port, gso, gro });
      return new UdpSocket(fd, family, formatIp(local.addr), local.port, gso, gro);
    } catch (error) {
      closeFd(fd);
      throw error;
    }
  }

  /** A receive batch whose slot size suits this socket (64 KB slots when GRO is on). */
  newRecvBatch(slots = 32): UdpRecvBatch {
    return new UdpRecvBatch(slots, this.groEnabled ? GRO_SLOT_BYTES : DEFAULT_SLOT_BYTES);
  }

  /**
   * Receives what is queued (up to the batch's free slots) and appends one entry per datagram,
   * GRO messages split by their segment size. Datagrams without pktinfo or truncated are skipped
   * and counted. Returns the number of entries added (0 when nothing was queued).
   */
  recvBatch(batch: UdpRecvBatch): number {
    if (this.groEnabled && batch.slotSize < GRO_SLOT_BYTES) {
      throw new RangeError(`A GRO socket needs receive slots of ${GRO_SLOT_BYTES} bytes; use newRecvBatch()`);
    }
    const first = batch.slotsUsed;
    const free = batch.slots - first;
    if (free <= 0) return 0;
    batch.resetSlots(first);
    const r = recvmmsgRaw(this.fd, batch.mmsgPointer(first), free);
    const stats = this.stats;
    if (r <= 0) {
      if (r < 0 && r !== -EAGAIN) {
        this.errors[-r > ERRNO_MAX ? 0 : -r]!++;
        stats[UdpStat.RxErrors]!++;
      }
      return 0;
    }
    stats[UdpStat.RxCalls]!++;
    this.rxBatchSizes[r > 1024 ? 1024 : r]!++;
    batch.slotsUsed = first + r;
    const meta = batch.meta;
    const info = this.#cmsg;
    const before = batch.count;
    let e = batch.count;
    for (let s = first; s < first + r; s++) {
      const m = s * MMSGHDR.SIZE;
      const mlen = meta.getUint32(m + MMSGHDR.LEN, true);
      if ((meta.getInt32(m + MSGHDR.FLAGS, true) & MSG_TRUNC) !== 0) {
        stats[UdpStat.RxTruncated]!++;
        continue;
      }
      parseRecvCmsgs(
        meta,
        batch.controlOff + s * RECV_CONTROL_BYTES,
        getU64(meta, m + MSGHDR.CONTROLLEN),
        info,
      );
      if (info.dstAddrOff < 0) {
        stats[UdpStat.RxNoPktinfo]!++;
        continue;
      }
      const name = batch.nameOff + s * SOCKADDR_SLOT;
      const v4 = this.family === 4;
      const srcAddrOff = name + (v4 ? SOCKADDR_IN.ADDR : SOCKADDR_IN6.ADDR);
      const srcPort = meta.getUint16(name + SOCKADDR_IN.PORT);
      const srcV4 = v4 ? meta.getUint32(srcAddrOff) : 0;
      const seg = info.groSegmentSize > 0 ? info.groSegmentSize : mlen;
      if (info.groSegmentSize > 0) stats[UdpStat.RxGroMessages]!++;
      const base = s * batch.slotSize;
      // One entry per segment; a zero-length datagram is one empty entry.
      let o = 0;
      do {
        if (e === batch.maxEntries) break;
        const len = mlen - o < seg ? mlen - o : seg;
        batch.offset[e] = base + o;
        batch.length[e] = len;
        batch.family[e] = this.family;
        batch.srcAddrOff[e] = srcAddrOff;
        batch.srcPort[e] = srcPort;
        batch.srcV4[e] = srcV4;
        batch.dstAddrOff[e] = info.dstAddrOff;
        batch.localPort[e] = this.localPort;
        batch.segmentSize[e] = seg;
        batch.ecn[e] = info.ecn;
        stats[UdpStat.RxBytes]! += len;
        e++;
        o += seg;
      } while (o < mlen);
    }
    batch.count = e;
    stats[UdpStat.RxDatagrams]! += e - before;
    return e - before;
  }

  /**
   * Sends the batch's pending datagrams of this socket's family, grouped into GSO messages
   * (consecutive datagrams to the same destination from the same source, equal sizes with a
   * shorter last one allowed, at most {@link MAX_GSO_SEGMENTS} segments and {@link MAX_GSO_BYTES}).
   * If the kernel refuses a GSO message with EIO or EINVAL, GSO is turned off for this socket and
   * the rest is sent one datagram per message. A datagram failing with any other error is dropped
   * and counted. On EAGAIN it stops. Afterwards the batch holds only the datagrams still pending.
   * Returns the number of datagrams sent.
   */
  sendBatch(batch: UdpSendBatch): number {
    let sent = 0;
    for (;;) {
      const messages = this.#buildMessages(batch);
      if (messages === 0) break;
      const result = this.#sendMessages(batch, messages);
      sent += result >= 0 ? result : -result - 1;
      if (result >= 0) break; // done or EAGAIN
      // result < 0: GSO was just disabled; rebuild the rest as single datagrams.
    }
    batch.retainPending();
    return sent;
  }

  /** Builds mmsghdrs for the pending entries of this family; returns the number of messages. */
  #buildMessages(batch: UdpSendBatch): number {
    const family = this.family;
    const view = batch.metaView;
    const meta = batch.meta;
    const count = batch.count;
    const len = batch.length;
    const gso = this.#gso;
    let m = 0;
    let g = 0; // next free slot in groupEntries (= iovec index)
    let i = 0;
    while (i < count) {
      if (batch.family[i] !== family || batch.state[i] !== 0) {
        i++;
        continue;
      }
      const seg = len[i]!;
      batch.groupStart[m] = g;
      batch.groupEntries[g++] = i;
      let nseg = 1;
      let total = seg;
      let last = seg;
      let j = i + 1;
      if (gso) {
        while (j < count && nseg < MAX_GSO_SEGMENTS && last === seg) {
          if (batch.family[j] !== family || batch.state[j] !== 0) {
            j++;
            continue;
          }
          const lj = len[j]!;
          if (lj > seg || lj === 0 || total + lj > MAX_GSO_BYTES || !sameRoute(batch, i, j, family)) break;
          batch.groupEntries[g++] = j;
          nseg++;
          total += lj;
          last = lj;
          j++;
        }
      }
      batch.groupLen[m] = nseg;
      // The message: destination, iovecs, control.
      const mo = m * MMSGHDR.SIZE;
      const nameOff = batch.nameOff + m * SOCKADDR_SLOT;
      const nameLen = writeSockaddr(meta, view, nameOff, family, batch.dst, i * 16, batch.dstPort[i]!);
      view.setUint32(mo + MSGHDR.NAMELEN, nameLen, true);
      const iovFirst = batch.groupStart[m]!;
      for (let k = 0; k < nseg; k++) {
        const entry = batch.groupEntries[iovFirst + k]!;
        // Inlined writeIovec: the address is a double, which a non-inlined call would box.
        const io = batch.iovOff + (iovFirst + k) * IOVEC.SIZE;
        const a = batch.address[entry]!;
        view.setUint32(io + IOVEC.BASE, a % TWO_32, true);
        view.setUint32(io + IOVEC.BASE + 4, (a - (a % TWO_32)) / TWO_32, true);
        setU64(view, io + IOVEC.LEN, len[entry]!);
      }
      {
        const a = batch.metaBase + batch.iovOff + iovFirst * IOVEC.SIZE; // inlined: a double argument to a non-inlined call is boxed
        view.setUint32(mo + MSGHDR.IOV, a % TWO_32, true);
        view.setUint32(mo + MSGHDR.IOV + 4, (a - (a % TWO_32)) / TWO_32, true);
      }
      setU64(view, mo + MSGHDR.IOVLEN, nseg);
      let ctrl = 0;
      const ctrlOff = batch.controlOff + m * SEND_CONTROL_BYTES;
      if (nseg > 1) ctrl += writeUdpSegmentCmsg(view, ctrlOff, seg);
      if (batch.hasSrc[i] === 1) {
        ctrl += writePktinfoCmsg(meta, view, ctrlOff + ctrl, family, batch.src, i * 16);
      }
      if (batch.ecn[i] !== 0) ctrl += writeTosCmsg(view, ctrlOff + ctrl, family, batch.ecn[i]!);
      setU64(view, mo + MSGHDR.CONTROLLEN, ctrl);
      view.setInt32(mo + MSGHDR.FLAGS, 0, true);
      m++;
      // Continue after the last member (skipped other-family entries are picked up by index order).
      i = nseg > 1 ? batch.groupEntries[g - 1]! + 1 : i + 1;
    }
    return m;
  }

  /**
   * Sends built messages. Returns the datagrams sent (≥ 0) when finished or blocked, or
   * `-(sent + 1)` when GSO had to be disabled and the caller should rebuild and continue.
   */
  #sendMessages(batch: UdpSendBatch, messages: number): number {
    const stats = this.stats;
    let sent = 0;
    let s = 0;
    while (s < messages) {
      stats[UdpStat.TxCalls]!++;
      const r = sendmmsgRaw(this.fd, batch.mmsgPointer(s), messages - s);
      if (r > 0) {
        for (let k = s; k < s + r; k++) sent += this.#finishGroup(batch, k, true);
        s += r;
        continue;
      }
      const errno = -r;
      if (errno === EAGAIN) {
        stats[UdpStat.TxWouldBlock]!++;
        return sent;
      }
      if ((errno === EIO || errno === EINVAL) && batch.groupLen[s]! > 1 && this.#gso) {
        this.#gso = false;
        log.warn("Kernel refused UDP GSO; sending one datagram per message from now on", {
          family: this.family,
          error: new Errno(errno, "sendmmsg").message,
        });
        return -(sent + 1);
      }
      this.errors[errno > ERRNO_MAX ? 0 : errno]! += batch.groupLen[s]!;
      stats[UdpStat.TxErrors]! += batch.groupLen[s]!;
      this.#finishGroup(batch, s, false);
      s++;
    }
    return sent;
  }

  /** Marks message `m`'s datagrams done; returns how many (counted as sent when `ok`). */
  #finishGroup(batch: UdpSendBatch, m: number, ok: boolean): number {
    const first = batch.groupStart[m]!;
    const n = batch.groupLen[m]!;
    for (let k = 0; k < n; k++) {
      const entry = batch.groupEntries[first + k]!;
      batch.state[entry] = 1;
      if (ok) this.stats[UdpStat.TxBytes]! += batch.length[entry]!;
    }
    if (ok) {
      this.stats[UdpStat.TxDatagrams]! += n;
      this.txSegments[n]!++;
      if (n > 1) this.stats[UdpStat.TxGsoMessages]!++;
    }
    return n;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeFd(this.fd);
  }
}

/** Same destination (address, port) and same source choice for entries `a` and `b`. */
function sameRoute(batch: UdpSendBatch, a: number, b: number, family: 4 | 6): boolean {
  if (batch.dstPort[a] !== batch.dstPort[b] || batch.hasSrc[a] !== batch.hasSrc[b]) return false;
  if (batch.ecn[a] !== batch.ecn[b]) return false; // one TOS cmsg per (GSO) message
  const n = family === 4 ? 4 : 16;
  const dst = batch.dst;
  const src = batch.src;
  const checkSrc = batch.hasSrc[a] === 1;
  for (let k = 0; k < n; k++) {
    if (dst[a * 16 + k] !== dst[b * 16 + k]) return false;
    if (checkSrc && src[a * 16 + k] !== src[b * 16 + k]) return false;
  }
  return true;
}

/** Requests a socket buffer size, forcing past the sysctl cap when allowed; WARNs if less was granted. */
function setBuffer(fd: number, forceOpt: number, plainOpt: number, bytes: number, what: string): void {
  let errno = trySetSockOptInt(fd, SOL_SOCKET, forceOpt, bytes);
  if (errno === EPERM) errno = trySetSockOptInt(fd, SOL_SOCKET, plainOpt, bytes);
  if (errno !== 0) {
    log.warn(`Failed to set UDP socket ${what} buffer size`, {
      error: new Errno(errno, "setsockopt").message,
    });
    return;
  }
  const granted = getSockOptInt(fd, SOL_SOCKET, plainOpt, what) / 2; // the kernel reports twice the size
  if (granted < bytes) {
    log.warn(`UDP socket ${what} buffer is smaller than requested`, { requested: bytes, granted });
  }
}

/** Options for {@link UdpSockets.bind}. Per-family addresses may be null to skip that family. */
export interface UdpSocketsOptions {
  /** Default "0.0.0.0". */
  ipv4?: string | null;
  /** Default "::". */
  ipv6?: string | null;
  /** Default 52625, falling back to port 0. */
  port?: number;
  /** When binding `port` fails, bind port 0 instead (default true). */
  fallbackToAnyPort?: boolean;
  mark?: number | null;
  sendBufferBytes?: number;
  recvBufferBytes?: number;
  gso?: boolean;
  gro?: boolean;
}

/** Thrown when neither family could be bound. */
export class NoUdpSocketsError extends Error {
  override name = "NoUdpSocketsError";
}

/** The IPv4 + IPv6 socket pair. */
export class UdpSockets {
  readonly v4: UdpSocket | null;
  readonly v6: UdpSocket | null;

  constructor(v4: UdpSocket | null, v6: UdpSocket | null) {
    this.v4 = v4;
    this.v6 = v6;
  }

  /**
   * Binds the IPv4 and IPv6 sockets (spec 3.1): port 52625, else port 0; a family that fails is
   * logged and skipped; throws {@link NoUdpSocketsError} if both fail.
   */
  static bind(options: UdpSocketsOptions = {}): UdpSockets {
    const common = {
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...(options.fallbackToAnyPort !== undefined ? { fallbackToAnyPort: options.fallbackToAnyPort } : {}),
      ...(options.mark !== undefined ? { mark: options.mark } : {}),
      ...(options.sendBufferBytes !== undefined ? { sendBufferBytes: options.sendBufferBytes } : {}),
      ...(options.recvBufferBytes !== undefined ? { recvBufferBytes: options.recvBufferBytes } : {}),
      ...(options.gso !== undefined ? { gso: options.gso } : {}),
      ...(options.gro !== undefined ? { gro: options.gro } : {}),
    };
    const open = (family: 4 | 6, address: string | null | undefined): UdpSocket | null => {
      if (address === null) return null;
      try {
        return UdpSocket.bind({ family, ...(address !== undefined ? { address } : {}), ...common });
      } catch (error) {
        log.warn(`Failed to bind IPv${family} UDP socket`, { error: String(error) });
        return null;
      }
    };
    const v4 = open(4, options.ipv4);
    const v6 = open(6, options.ipv6);
    if (v4 === null && v6 === null) {
      log.error("No available UDP sockets");
      throw new NoUdpSocketsError(
        "No available UDP sockets: neither the IPv4 nor the IPv6 socket could be bound",
      );
    }
    return new UdpSockets(v4, v6);
  }

  /** A receive batch suitable for both sockets. */
  newRecvBatch(slots = 32): UdpRecvBatch {
    const gro = (this.v4?.groEnabled ?? false) || (this.v6?.groEnabled ?? false);
    return new UdpRecvBatch(slots, gro ? GRO_SLOT_BYTES : DEFAULT_SLOT_BYTES);
  }

  /** Clears `batch` and fills it from the IPv4 socket, then the IPv6 socket. Returns the count. */
  recvBatch(batch: UdpRecvBatch): number {
    batch.clear();
    if (this.v4 !== null) this.v4.recvBatch(batch);
    if (this.v6 !== null) this.v6.recvBatch(batch);
    return batch.count;
  }

  /**
   * Sends each family's datagrams on its socket (see {@link UdpSocket.sendBatch}); datagrams of a
   * family without a socket are dropped. Afterwards the batch holds only datagrams that hit EAGAIN.
   * Returns the number sent.
   */
  sendBatch(batch: UdpSendBatch): number {
    let sent = 0;
    if (this.v4 !== null) sent += this.v4.sendBatch(batch);
    if (this.v6 !== null) sent += this.v6.sendBatch(batch);
    if (this.v4 === null || this.v6 === null) {
      const missing = this.v4 === null ? 4 : 6;
      for (let i = 0; i < batch.count; i++) if (batch.family[i] === missing) batch.state[i] = 1;
      batch.retainPending();
    }
    return sent;
  }

  close(): void {
    this.v4?.close();
    this.v6?.close();
  }
}

/** Options for {@link raiseSocketBufferLimits}. */
export interface BufferLimitOptions {
  /** Target `net.core.rmem_max` (default 128 MiB, as Firezone ≥ 1.4.17). */
  rmemMax?: number;
  /** Target `net.core.wmem_max` (default 16 MiB). */
  wmemMax?: number;
  /** Root of the sysctl tree (default `/proc/sys`; tests point it elsewhere). */
  procSys?: string;
}

/**
 * Raises `net.core.rmem_max`/`wmem_max` to at least the targets (never lowers them) so the socket
 * buffer requests can be granted (spec 9, optional). Returns what was changed; failures are WARNed.
 */
export function raiseSocketBufferLimits(
  options: BufferLimitOptions = {},
): { rmemMax: number; wmemMax: number } {
  const root = options.procSys ?? "/proc/sys";
  const raise = (name: string, target: number): number => {
    const path = `${root}/net/core/${name}`;
    try {
      const current = Number(Deno.readTextFileSync(path).trim());
      if (Number.isFinite(current) && current >= target) return current;
      Deno.writeTextFileSync(path, `${target}\n`);
      log.info(`Raised net.core.${name}`, { from: current, to: target });
      return target;
    } catch (error) {
      log.warn(`Failed to raise net.core.${name}`, { error: String(error) });
      return -1;
    }
  };
  return {
    rmemMax: raise("rmem_max", options.rmemMax ?? 128 * 1024 * 1024),
    wmemMax: raise("wmem_max", options.wmemMax ?? 16 * 1024 * 1024),
  };
}
