/**
 * The gateway's TUN device: open, configure through rtnetlink, and batch read/write without
 * allocating.
 *
 * Buffer ownership: the caller (packet worker) owns the {@link PacketArena}s and passes them in
 * with an `offsets` array saying where each packet goes (normally `arena.dataOffset(slot)`, i.e.
 * after {@link TUN_HEADROOM} bytes of headroom, with {@link TUN_TAILROOM} bytes of tailroom after a
 * full-size packet). The device keeps no reference to read arenas between calls except the
 * scratch region of an arena it is still splitting a super-packet from (see below), and writes
 * complete synchronously, so the caller may reuse the memory as soon as a call returns.
 * `writeBatch` may rewrite the IP/TCP headers of packets it merges (they are consumed anyway).
 *
 * Offloads: with `offload: true` the device is opened with IFF_VNET_HDR and TUNSETOFFLOAD (checksum,
 * TSO4/6, USO4/6, falling back to fewer flags). The kernel may then return a TCP/UDP super-packet
 * of up to 64 KB; {@link TunDevice.readBatch} stages it in the arena's scratch region (which must be
 * at least {@link TunDevice.scratchBytesFor}`(arena.slotSize)` bytes and belongs to this device) and
 * splits it into MTU-sized packets across the caller's slots, continuing in the next call if the
 * batch is full. Packets with a partial checksum are completed. On write, consecutive TCP segments
 * of a flow are merged into one super-packet per `writev` (the first segment's headers are
 * rewritten in place, the other payloads gathered by iovec); everything else is written with an
 * all-zero virtio header (checksums complete, no GSO).
 *
 * @module
 */
import { EAFNOSUPPORT, EAGAIN, EEXIST, EINTR, EOPNOTSUPP, Errno, ERRNO_MAX } from "../../ffi/errno.ts";
import { addressOf, closeFd, lastErrno, libc, pointerTo } from "../../ffi/libc.ts";
import { FIB_RULE_INVERT, RtNetlink } from "../../ffi/netlink.ts";
import { IOVEC, setU64, TUN_F_TSO4, TUN_F_TSO6, VIRTIO_NET_HDR } from "../../ffi/structs.ts";
import {
  ensureTunNode,
  getIfIndex,
  getTxQueueLen,
  negotiateTunOffload,
  openTun,
  setTxQueueLen,
  TUN_DEVICE_PATH,
  tunOffloadNames,
} from "../../ffi/tun_linux.ts";
import { logger } from "../log.ts";
import { parseIp } from "../wire/ip_addr.ts";
import {
  COALESCE_MAX_BYTES,
  COALESCE_MAX_SEGMENTS,
  completeChecksum,
  gsoSegmentCount,
  gsoSplit,
  GsoType,
  tcpCanFollow,
  tcpCoalesceHeader,
  tcpSameFlow,
  TcpSegmentInfo,
  tcpSegmentInfo,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_LEN,
  VirtioNetHdr,
} from "../wire/tso.ts";
import type { PacketArena } from "./packet_arena.ts";

export { TUN_HEADROOM, TUN_TAILROOM } from "./packet_arena.ts";

const log = logger("fz_gateway::io::tun");

/** The reference gateway's interface name. */
export const TUN_NAME = "tun-firezone";
/** TX queue length the gateway sets (kernel default 500). */
export const TUN_TX_QUEUE_LEN = 10_000;
/** TUN MTU. */
export const TUN_MTU = 1280;
/** Policy-routing table for the tunnel ranges (539 098 368). */
export const FIREZONE_TABLE = 0x2021fd00;
/** fwmark on the gateway's own sockets; packets carrying it bypass {@link FIREZONE_TABLE}. */
export const FIREZONE_MARK = 0xfd002021;
/** Routes the gateway installs on `init`. */
export const TUNNEL_ROUTES: readonly string[] = ["100.64.0.0/11", "fd00:2021:1111::/107"];

const MAX_SUPER_PACKET = 65536;
const TWO_32 = 4294967296;

/** Indices into {@link TunDevice.stats}. */
export const TunStat = {
  RxPackets: 0,
  RxBytes: 1,
  /** read() calls that returned data. */
  RxReads: 2,
  /** GSO super-packets split. */
  RxSuperPackets: 3,
  /** Packets with a partial checksum that we completed. */
  RxChecksumsCompleted: 4,
  /** Reads dropped (malformed super-packet, segment too big for a slot, bad checksum offsets). */
  RxDropped: 5,
  RxErrors: 6,
  TxPackets: 7,
  TxBytes: 8,
  /** Packets dropped on a write error (by errno in {@link TunDevice.errors}). */
  TxErrors: 9,
  /** write calls. */
  TxWrites: 10,
  /** Writes that carried a coalesced TCP super-packet. */
  TxSuperPackets: 11,
} as const;
const STAT_COUNT = 12;

/** Options for {@link TunDevice.open}. */
export interface TunOpenOptions {
  /** Interface name (default `tun-firezone`). */
  name?: string;
  /** Open with IFF_VNET_HDR and negotiate TSO/USO/checksum offload (default false). */
  offload?: boolean;
  /** TX queue length to set (default 10 000; 0 leaves the kernel default). */
  txQueueLen?: number;
  /** Clone device path (default `/dev/net/tun`); created when missing. */
  devicePath?: string;
  /**
   * Merge consecutive TCP segments of a flow into one super-packet per write when TSO was
   * negotiated (default true; only with `offload`).
   */
  coalesce?: boolean;
}

/** Addresses, MTU, routes and policy rules for {@link TunDevice.configure}. */
export interface TunConfig {
  /** The gateway's IPv4 tunnel address (installed as /32), or null for none. */
  ipv4: string | null;
  /** The gateway's IPv6 tunnel address (installed as /128), or null for none. */
  ipv6: string | null;
  /** Default 1280. */
  mtu?: number;
  /** CIDRs routed to the device in {@link table} (default {@link TUNNEL_ROUTES}). */
  routes?: readonly string[];
  /** Default {@link FIREZONE_TABLE}. */
  table?: number;
  /** Default {@link FIREZONE_MARK}: rule `not fwmark <mark> lookup <table>` per family. */
  fwmark?: number;
}

/** A parsed CIDR. */
export interface Cidr {
  family: 4 | 6;
  addr: Uint8Array;
  prefixLen: number;
}

/** Parses `"a.b.c.d/n"` or `"v6/n"` (host bits are cleared). Throws TypeError when invalid. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf("/");
  const addr = parseIp(slash < 0 ? text : text.slice(0, slash));
  const bits = addr ? addr.length * 8 : 0;
  const prefixLen = slash < 0 ? bits : Number(text.slice(slash + 1));
  if (!addr || !/^\d{1,3}$/.test(slash < 0 ? String(bits) : text.slice(slash + 1)) || prefixLen > bits) {
    throw new TypeError(
      `Invalid CIDR "${text}": expected an address and a prefix length, e.g. 100.64.0.0/11`,
    );
  }
  for (let i = 0; i < addr.length; i++) {
    const keep = Math.max(0, Math.min(8, prefixLen - i * 8));
    addr[i]! &= (0xff << (8 - keep)) & 0xff;
  }
  return { family: addr.length === 4 ? 4 : 6, addr, prefixLen };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** An open TUN queue attached to an interface. */
export class TunDevice {
  /** The TUN fd (non-blocking): poll it for POLLIN. */
  readonly fd: number;
  readonly name: string;
  readonly ifIndex: number;
  /** Whether reads/writes carry a virtio_net_hdr. */
  readonly vnetHdr: boolean;
  /** TUN_F_* flags the kernel accepted (0 without offload). */
  readonly offloadFlags: number;
  /** TX queue length read back after setting it. */
  readonly txQueueLen: number;
  /** Counters, indexed by {@link TunStat}. */
  readonly stats = new Float64Array(STAT_COUNT);
  /** Failed read/write calls by errno. */
  readonly errors = new Uint32Array(ERRNO_MAX + 1);
  /** Histogram of packets per {@link readBatch} call (index = count, capped at 128). */
  readonly rxBatchSizes = new Uint32Array(129);
  /** Histogram of segments per coalesced write (index 2..64). */
  readonly txCoalesced = new Uint32Array(COALESCE_MAX_SEGMENTS + 1);
  /** Whether {@link writeBatch} merges TCP segments into super-packets. */
  readonly coalesce: boolean;

  readonly #netlink: RtNetlink;
  // iovecs used by every read and write (a coalesced write gathers up to 1 + 1 + 63 pieces); the
  // array's address is in #iovPtr.
  readonly #iovBytes = new Uint8Array((COALESCE_MAX_SEGMENTS + 2) * IOVEC.SIZE);
  readonly #iov = new DataView(this.#iovBytes.buffer);
  readonly #iovPtr: Deno.PointerObject;
  // virtio_net_hdr landing zone for reads, and the all-zero header for writes.
  readonly #hdrIn = new Uint8Array(VIRTIO_NET_HDR.SIZE);
  readonly #hdrOut = new Uint8Array(VIRTIO_NET_HDR.SIZE);
  readonly #hdrGso = new Uint8Array(VIRTIO_NET_HDR.SIZE);
  readonly #hdrInAddr: number;
  readonly #hdrOutAddr: number;
  readonly #hdrGsoAddr: number;
  readonly #hdr = new VirtioNetHdr();
  // Coalescing scratch: which packets of the current write batch are done, and segment facts.
  #consumed = new Uint8Array(256);
  readonly #first = new TcpSegmentInfo();
  readonly #cand = new TcpSegmentInfo();
  // A super-packet still being split (in #pendArena's scratch region).
  readonly #pendHdr = new VirtioNetHdr();
  #pendArena: PacketArena | null = null;
  #pendOff = 0;
  #pendLen = 0;
  #pendNext = 0;
  #pendTotal = 0;
  #closed = false;

  /** Use {@link TunDevice.open}. */
  constructor(
    fd: number,
    name: string,
    ifIndex: number,
    offloadFlags: number,
    vnetHdr: boolean,
    txQueueLen: number,
    netlink: RtNetlink,
    coalesce: boolean,
  ) {
    this.fd = fd;
    this.name = name;
    this.ifIndex = ifIndex;
    this.offloadFlags = offloadFlags;
    this.vnetHdr = vnetHdr;
    this.txQueueLen = txQueueLen;
    this.#netlink = netlink;
    this.#iovPtr = pointerTo(addressOf(this.#iovBytes));
    this.#hdrInAddr = addressOf(this.#hdrIn);
    this.#hdrOutAddr = addressOf(this.#hdrOut);
    this.#hdrGsoAddr = addressOf(this.#hdrGso);
    this.coalesce = coalesce && vnetHdr && (offloadFlags & (TUN_F_TSO4 | TUN_F_TSO6)) !== 0;
  }

  /** Scratch bytes an arena needs for reads from an offload device: one slot plus 64 KB. */
  static scratchBytesFor(slotSize: number): number {
    return slotSize + MAX_SUPER_PACKET;
  }

  /**
   * Creates `/dev/net/tun` if missing, opens the queue (IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE,
   * non-blocking), negotiates offloads when asked, and sets the TX queue length (netlink, falling
   * back to SIOCSIFTXQLEN), logging a WARN if the read-back value differs.
   */
  static open(options: TunOpenOptions = {}): TunDevice {
    const devicePath = options.devicePath ?? TUN_DEVICE_PATH;
    if (ensureTunNode(devicePath)) log.info("Created TUN device node", { path: devicePath });
    const wantOffload = options.offload ?? false;
    const opened = openTun({
      name: options.name ?? TUN_NAME,
      vnetHdr: wantOffload,
      multiQueue: true,
      devicePath,
    });
    let netlink: RtNetlink | null = null;
    try {
      const offloadFlags = wantOffload ? negotiateTunOffload(opened.fd) : 0;
      if (wantOffload) {
        log.info("TUN offload negotiated", { name: opened.name, offload: tunOffloadNames(offloadFlags) });
      }
      const ifIndex = getIfIndex(opened.name);
      netlink = RtNetlink.open();
      const wantQlen = options.txQueueLen ?? TUN_TX_QUEUE_LEN;
      let qlen = getTxQueueLen(opened.name);
      if (wantQlen > 0 && qlen !== wantQlen) {
        try {
          netlink.setLink(ifIndex, { txQueueLen: wantQlen });
        } catch (error) {
          log.debug("Netlink IFLA_TXQLEN failed; trying SIOCSIFTXQLEN", { error: String(error) });
          setTxQueueLen(opened.name, wantQlen);
        }
        qlen = netlink.getLink(opened.name).txQueueLen;
        if (qlen !== wantQlen) {
          log.warn("TUN TX queue length not applied", { wanted: wantQlen, actual: qlen });
        }
      }
      return new TunDevice(
        opened.fd,
        opened.name,
        ifIndex,
        offloadFlags,
        wantOffload,
        qlen,
        netlink,
        options.coalesce ?? true,
      );
    } catch (error) {
      netlink?.close();
      closeFd(opened.fd);
      throw error;
    }
  }

  /**
   * Applies the `init` configuration (spec 4.9): delete every address, set the MTU, add the /32 and
   * /128, set the link up, add `not fwmark M lookup T` rules for both families (skipped when already
   * present; EEXIST ignored), then {@link setRoutes}. Throws {@link Errno} on failures that are not ignorable.
   */
  configure(config: TunConfig): void {
    const nl = this.#netlink;
    const table = config.table ?? FIREZONE_TABLE;
    const fwmark = config.fwmark ?? FIREZONE_MARK;
    nl.flushAddresses(this.ifIndex);
    nl.setLink(this.ifIndex, { mtu: config.mtu ?? TUN_MTU });
    if (config.ipv4 !== null) {
      const v4 = parseIp(config.ipv4);
      if (!v4 || v4.length !== 4) throw new TypeError(`Invalid IPv4 tunnel address "${config.ipv4}"`);
      nl.addAddress(this.ifIndex, 4, v4, 32);
    }
    if (config.ipv6 !== null) {
      const v6 = parseIp(config.ipv6);
      if (!v6 || v6.length !== 16) throw new TypeError(`Invalid IPv6 tunnel address "${config.ipv6}"`);
      nl.addAddress(this.ifIndex, 6, v6, 128);
    }
    nl.setLink(this.ifIndex, { up: true });
    for (const family of [4, 6] as const) {
      try {
        // The kernel gives a rule without FRA_PRIORITY a fresh priority, so NLM_F_EXCL alone does
        // not stop duplicates on a second `init`: look first.
        const present = nl.listRules(family).some((r) =>
          r.table === table && r.fwmark === fwmark && (r.flags & FIB_RULE_INVERT) !== 0
        );
        if (present) continue;
        nl.addRule({ family, table, fwmark, invert: true });
      } catch (error) {
        if (Errno.is(error, EEXIST)) continue;
        if (family === 6 && (Errno.is(error, EAFNOSUPPORT) || Errno.is(error, EOPNOTSUPP))) {
          log.warn("IPv6 policy rule not supported; IPv6 disabled on this host?", { error: String(error) });
          continue;
        }
        throw error;
      }
    }
    this.setRoutes(config.routes ?? TUNNEL_ROUTES, table);
  }

  /**
   * Makes `routes` the device's routes in `table`: adds missing ones (protocol static, scope
   * universe; EEXIST/EOPNOTSUPP ignored) and removes stale ones on this device.
   */
  setRoutes(routes: readonly string[], table = FIREZONE_TABLE): void {
    const nl = this.#netlink;
    const wanted = routes.map(parseCidr);
    for (const cidr of wanted) {
      try {
        nl.addRoute({
          family: cidr.family,
          dst: cidr.addr,
          prefixLen: cidr.prefixLen,
          table,
          oif: this.ifIndex,
        });
      } catch (error) {
        if (Errno.is(error, EEXIST) || Errno.is(error, EOPNOTSUPP)) continue;
        throw error;
      }
    }
    for (const family of [4, 6] as const) {
      let existing;
      try {
        existing = nl.listRoutes(family, table, this.ifIndex);
      } catch (error) {
        if (Errno.is(error, EAFNOSUPPORT) || Errno.is(error, EOPNOTSUPP)) continue;
        throw error;
      }
      for (const route of existing) {
        const keep = wanted.some((w) =>
          w.family === family && w.prefixLen === route.prefixLen && sameBytes(w.addr, route.dst)
        );
        if (keep) continue;
        nl.deleteRoute({ family, dst: route.dst, prefixLen: route.prefixLen, table, oif: this.ifIndex });
        log.debug("Removed stale route", { prefixLen: route.prefixLen, family });
      }
    }
  }

  /** The netlink socket the device configures itself with (for callers that need more). */
  get netlink(): RtNetlink {
    return this.#netlink;
  }

  /**
   * Reads up to `max` packets. Packet `i` is written at `arena.bytes[offsets[i]]` (at most
   * `arena.capacityAt(offsets[i])` bytes) and its length stored in `lengths[i]`. Returns the number
   * of packets (0 when nothing is queued). Errors other than EAGAIN end the batch and are counted in
   * {@link errors}; offload super-packets are split (see the module doc).
   */
  readBatch(arena: PacketArena, offsets: Uint32Array, lengths: Uint32Array, max: number): number {
    let n = 0;
    if (this.#pendArena !== null) n = this.#continueSplit(arena, offsets, lengths, 0, max);
    const sym = libc();
    const iov = this.#iov;
    const stats = this.stats;
    while (n < max) {
      const off = offsets[n]!;
      const cap = arena.capacityAt(off);
      let r: number;
      if (!this.vnetHdr) {
        {
          const a = arena.baseAddress + off; // inlined: a double argument to a non-inlined call is boxed
          iov.setUint32(0, a % TWO_32, true);
          iov.setUint32(4, (a - (a % TWO_32)) / TWO_32, true);
        }
        setU64(iov, 8, cap);
        r = sym.readv(this.fd, this.#iovPtr, 1);
      } else {
        if (arena.scratchBytes < arena.slotSize + MAX_SUPER_PACKET) {
          throw new RangeError(
            `TUN offload needs an arena with scratchBytes >= ${TunDevice.scratchBytesFor(arena.slotSize)}`,
          );
        }
        {
          const a = this.#hdrInAddr; // inlined: a double argument to a non-inlined call is boxed
          iov.setUint32(0, a % TWO_32, true);
          iov.setUint32(4, (a - (a % TWO_32)) / TWO_32, true);
        }
        setU64(iov, 8, VIRTIO_NET_HDR_LEN);
        {
          const a = arena.baseAddress + off; // inlined: a double argument to a non-inlined call is boxed
          iov.setUint32(16, a % TWO_32, true);
          iov.setUint32(16 + 4, (a - (a % TWO_32)) / TWO_32, true);
        }
        setU64(iov, 24, cap);
        {
          const a = arena.baseAddress + arena.scratchOffset + arena.slotSize; // inlined: a double argument to a non-inlined call is boxed
          iov.setUint32(32, a % TWO_32, true);
          iov.setUint32(32 + 4, (a - (a % TWO_32)) / TWO_32, true);
        }
        setU64(iov, 40, MAX_SUPER_PACKET);
        r = sym.readv(this.fd, this.#iovPtr, 3);
      }
      if (r < 0) {
        const errno = lastErrno();
        if (errno === EINTR) continue;
        if (errno !== EAGAIN) {
          this.errors[errno > ERRNO_MAX ? 0 : errno]!++;
          stats[TunStat.RxErrors]!++;
        }
        break;
      }
      stats[TunStat.RxReads]!++;
      if (!this.vnetHdr) {
        lengths[n] = r;
        stats[TunStat.RxPackets]!++;
        stats[TunStat.RxBytes]! += r;
        n++;
        continue;
      }
      const len = r - VIRTIO_NET_HDR_LEN;
      if (len <= 0) {
        stats[TunStat.RxDropped]!++;
        continue;
      }
      const hdr = this.#hdr.read(this.#hdrIn, 0);
      if ((hdr.gsoType & ~GsoType.Ecn) === GsoType.None && len <= cap) {
        if ((hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0) {
          if (!completeChecksum(arena.bytes, off, len, hdr.csumStart, hdr.csumOffset)) {
            stats[TunStat.RxDropped]!++;
            continue;
          }
          stats[TunStat.RxChecksumsCompleted]!++;
        }
        lengths[n] = len;
        stats[TunStat.RxPackets]!++;
        stats[TunStat.RxBytes]! += len;
        n++;
        continue;
      }
      // A super-packet (or an oversized one): make it contiguous in scratch, then split.
      const stage = arena.scratchOffset + arena.slotSize - Math.min(cap, len);
      arena.bytes.copyWithin(stage, off, off + Math.min(cap, len));
      const total = gsoSegmentCount(arena.bytes, stage, len, hdr);
      if (total <= 0 || (hdr.gsoType & ~GsoType.Ecn) === GsoType.None) {
        stats[TunStat.RxDropped]!++; // malformed, unsupported, or a non-GSO packet above the slot size
        continue;
      }
      stats[TunStat.RxSuperPackets]!++;
      const p = this.#pendHdr;
      p.flags = hdr.flags;
      p.gsoType = hdr.gsoType;
      p.hdrLen = hdr.hdrLen;
      p.gsoSize = hdr.gsoSize;
      p.csumStart = hdr.csumStart;
      p.csumOffset = hdr.csumOffset;
      this.#pendArena = arena;
      this.#pendOff = stage;
      this.#pendLen = len;
      this.#pendNext = 0;
      this.#pendTotal = total;
      n = this.#continueSplit(arena, offsets, lengths, n, max);
    }
    this.rxBatchSizes[n > 128 ? 128 : n]!++;
    return n;
  }

  #continueSplit(
    arena: PacketArena,
    offsets: Uint32Array,
    lengths: Uint32Array,
    n: number,
    max: number,
  ): number {
    if (arena !== this.#pendArena) {
      // A different arena cannot take segments staged in another one; drop the rest.
      this.stats[TunStat.RxDropped]!++;
      this.#pendArena = null;
      return n;
    }
    const room = max - n;
    const cap = arena.capacityAt(offsets[n] ?? 0);
    const k = gsoSplit(
      arena.bytes,
      this.#pendOff,
      this.#pendLen,
      this.#pendHdr,
      this.#pendNext,
      offsets,
      lengths,
      n,
      room,
      cap,
    );
    if (k < 0) {
      this.stats[TunStat.RxDropped]!++;
      this.#pendArena = null;
      return n;
    }
    for (let j = 0; j < k; j++) this.stats[TunStat.RxBytes]! += lengths[n + j]!;
    this.stats[TunStat.RxPackets]! += k;
    this.#pendNext += k;
    if (this.#pendNext >= this.#pendTotal) this.#pendArena = null;
    return n + k;
  }

  /** True while a super-packet has segments left for the next {@link readBatch}. */
  get hasPendingSegments(): boolean {
    return this.#pendArena !== null;
  }

  /**
   * Writes packets `i < count` (`lengths[i]` bytes at `arena.bytes[offsets[i]]`). Every packet is
   * consumed: a write error (EAGAIN included; a TUN reports it only when the kernel cannot
   * allocate) drops the packet and is counted in {@link errors}. Returns the number written.
   *
   * With {@link coalesce}, consecutive TCP segments of one flow (in sequence, equal sizes with a
   * shorter last one, same headers) are written as one super-packet: the first segment's headers
   * are rewritten in place and the other payloads are gathered by iovec. Packets of other flows
   * may be written before a merged super-packet; order within a flow is kept.
   */
  writeBatch(arena: PacketArena, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
    const iov = this.#iov;
    const vnet = this.vnetHdr;
    if (vnet) {
      {
        const a = this.#hdrOutAddr; // inlined: a double argument to a non-inlined call is boxed
        iov.setUint32(0, a % TWO_32, true);
        iov.setUint32(4, (a - (a % TWO_32)) / TWO_32, true);
      }
      setU64(iov, 8, VIRTIO_NET_HDR_LEN);
    }
    if (!this.coalesce) {
      const dataIov = vnet ? 16 : 0;
      let written = 0;
      for (let i = 0; i < count; i++) {
        {
          const a = arena.baseAddress + offsets[i]!; // inlined: a double argument to a non-inlined call is boxed
          iov.setUint32(dataIov, a % TWO_32, true);
          iov.setUint32(dataIov + 4, (a - (a % TWO_32)) / TWO_32, true);
        }
        setU64(iov, dataIov + 8, lengths[i]!);
        written += this.#writev(vnet ? 2 : 1, lengths[i]!, 1);
      }
      return written;
    }
    if (this.#consumed.length < count) this.#consumed = new Uint8Array(count * 2);
    const consumed = this.#consumed;
    consumed.fill(0, 0, count);
    const bytes = arena.bytes;
    const base = arena.baseAddress;
    const first = this.#first;
    const cand = this.#cand;
    let written = 0;
    for (let i = 0; i < count; i++) {
      if (consumed[i] === 1) continue;
      consumed[i] = 1;
      const off = offsets[i]!;
      const len = lengths[i]!;
      {
        const a = base + off; // inlined: a double argument to a non-inlined call is boxed
        iov.setUint32(16, a % TWO_32, true);
        iov.setUint32(16 + 4, (a - (a % TWO_32)) / TWO_32, true);
      }
      setU64(iov, 24, len);
      if (!tcpSegmentInfo(bytes, off, len, first) || first.psh) {
        written += this.#writev(2, len, 1);
        continue;
      }
      const segSize = first.payloadLen;
      let total = len;
      let nextSeq = (first.seq + segSize) % TWO_32;
      let members = 1;
      let psh = false;
      for (let j = i + 1; j < count && members < COALESCE_MAX_SEGMENTS; j++) {
        if (consumed[j] === 1) continue;
        const offJ = offsets[j]!;
        const lenJ = lengths[j]!;
        if (!tcpSameFlow(bytes, off, first, offJ, lenJ)) continue; // other flows keep their order
        // Same flow: it either extends the super-packet or ends it (nothing may overtake it).
        if (
          !tcpSegmentInfo(bytes, offJ, lenJ, cand) || cand.seq !== nextSeq || cand.payloadLen > segSize ||
          total + cand.payloadLen > COALESCE_MAX_BYTES || !tcpCanFollow(bytes, off, first, offJ, cand)
        ) break;
        consumed[j] = 1;
        const slot = 16 * (members + 1);
        {
          const a = base + offJ + cand.hdrLen; // inlined: a double argument to a non-inlined call is boxed
          iov.setUint32(slot, a % TWO_32, true);
          iov.setUint32(slot + 4, (a - (a % TWO_32)) / TWO_32, true);
        }
        setU64(iov, slot + 8, cand.payloadLen);
        total += cand.payloadLen;
        nextSeq = (nextSeq + cand.payloadLen) % TWO_32;
        members++;
        if (cand.psh) psh = true;
        if (cand.psh || cand.payloadLen < segSize) break;
      }
      if (members === 1) {
        written += this.#writev(2, len, 1);
        continue;
      }
      tcpCoalesceHeader(bytes, off, first, total, segSize, psh, this.#hdr);
      this.#hdr.write(this.#hdrGso, 0);
      {
        const a = this.#hdrGsoAddr; // inlined: a double argument to a non-inlined call is boxed
        iov.setUint32(0, a % TWO_32, true);
        iov.setUint32(4, (a - (a % TWO_32)) / TWO_32, true);
      }
      const n = this.#writev(members + 1, total, members);
      {
        const a = this.#hdrOutAddr; // inlined: a double argument to a non-inlined call is boxed
        iov.setUint32(0, a % TWO_32, true);
        iov.setUint32(4, (a - (a % TWO_32)) / TWO_32, true);
      }
      if (n > 0) {
        this.stats[TunStat.TxSuperPackets]!++;
        this.txCoalesced[members]!++;
      }
      written += n;
    }
    return written;
  }

  /** One writev of the first `iovcnt` iovecs carrying `packets` packets; returns packets written. */
  #writev(iovcnt: number, bytes: number, packets: number): number {
    const stats = this.stats;
    for (;;) {
      stats[TunStat.TxWrites]!++;
      const r = libc().writev(this.fd, this.#iovPtr, iovcnt);
      if (r >= 0) {
        stats[TunStat.TxPackets]! += packets;
        stats[TunStat.TxBytes]! += bytes;
        return packets;
      }
      const errno = lastErrno();
      if (errno === EINTR) continue;
      this.errors[errno > ERRNO_MAX ? 0 : errno]!++;
      stats[TunStat.TxErrors]! += packets;
      return 0;
    }
  }

  /** Closes the queue (the kernel removes the interface when its last queue closes). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pendArena = null;
    this.#netlink.close();
    closeFd(this.fd);
  }
}
