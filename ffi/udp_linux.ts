/**
 * UDP sockets through libc: creation, options, bind, and the control-message (cmsg) encoders and
 * decoders used with `sendmmsg`/`recvmmsg` (IP_PKTINFO, IPV6_PKTINFO, UDP_SEGMENT, UDP_GRO).
 *
 * Control-path functions throw {@link Errno}. The batch calls ({@link recvmmsgRaw},
 * {@link sendmmsgRaw}) return a count or `-errno` and never allocate.
 *
 * @module
 */
import { EINTR, Errno, NEED_NET_ADMIN_HINT } from "./errno.ts";
import { lastErrno, libc } from "./libc.ts";
import {
  AF_INET,
  AF_INET6,
  CMSGHDR,
  cmsgSpace,
  getU64,
  IN6_PKTINFO,
  IN_PKTINFO,
  IP_PKTINFO,
  IP_TOS,
  IPV6_PKTINFO,
  IPV6_TCLASS,
  MSG_DONTWAIT,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCKADDR_IN,
  SOCKADDR_IN6,
  SOCKADDR_STORAGE_SIZE,
  SOL_IP,
  SOL_IPV6,
  SOL_UDP,
  UDP_GRO,
  UDP_SEGMENT,
  writeCmsgHeader,
  writeSockaddr,
} from "./structs.ts";

/** Bytes of a send-side UDP_SEGMENT cmsg (u16 payload). */
export const CMSG_SPACE_UDP_SEGMENT = cmsgSpace(2);
/** Bytes of an IP_PKTINFO cmsg. */
export const CMSG_SPACE_PKTINFO4 = cmsgSpace(IN_PKTINFO.SIZE);
/** Bytes of an IPV6_PKTINFO cmsg. */
export const CMSG_SPACE_PKTINFO6 = cmsgSpace(IN6_PKTINFO.SIZE);
/** Bytes of an IP_TOS / IPV6_TCLASS send cmsg (an int). */
export const CMSG_SPACE_TOS = cmsgSpace(4);
/** Bytes of a receive-side UDP_GRO cmsg (int payload). */
export const CMSG_SPACE_UDP_GRO = cmsgSpace(4);

const intBuf = new Uint8Array(4);
const intView = new DataView(intBuf.buffer);
const lenBuf = new Uint8Array(4);
const lenView = new DataView(lenBuf.buffer);

/** Creates a non-blocking, close-on-exec UDP socket of the given family. */
export function udpSocket(family: 4 | 6): number {
  const fd = libc().socket(family === 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Errno(lastErrno(), "socket", { detail: `(UDP, IPv${family})` });
  return fd;
}

/** `setsockopt` with an int value; returns 0 or the errno. */
export function trySetSockOptInt(fd: number, level: number, name: number, value: number): number {
  intView.setInt32(0, value, true);
  return libc().setsockopt(fd, level, name, intBuf, 4) === 0 ? 0 : lastErrno();
}

/** `setsockopt` with an int value; throws {@link Errno} naming the option. */
export function setSockOptInt(fd: number, level: number, name: number, value: number, what: string): void {
  const errno = trySetSockOptInt(fd, level, name, value);
  if (errno !== 0) {
    throw new Errno(errno, "setsockopt", {
      detail: `(${what} = ${value})`,
      ...(errno === 1 ? { hint: NEED_NET_ADMIN_HINT } : {}),
    });
  }
}

/** `getsockopt` for an int option; throws {@link Errno}. */
export function getSockOptInt(fd: number, level: number, name: number, what: string): number {
  lenView.setUint32(0, 4, true);
  if (libc().getsockopt(fd, level, name, intBuf, lenBuf) !== 0) {
    throw new Errno(lastErrno(), "getsockopt", { detail: `(${what})` });
  }
  return intView.getInt32(0, true);
}

/** Binds `fd` to `addr` (4 or 16 bytes) and `port` (0: any). Throws {@link Errno} (EADDRINUSE...). */
export function bindSocket(fd: number, family: 4 | 6, addr: Uint8Array, port: number): void {
  const sa = new Uint8Array(SOCKADDR_IN6.SIZE);
  const len = writeSockaddr(sa, new DataView(sa.buffer), 0, family, addr, 0, port);
  if (libc().bind(fd, sa, len) !== 0) {
    throw new Errno(lastErrno(), "bind", { detail: `(port ${port})` });
  }
}

/** Connects a datagram socket (tests and probes). */
export function connectSocket(fd: number, family: 4 | 6, addr: Uint8Array, port: number): void {
  const sa = new Uint8Array(SOCKADDR_IN6.SIZE);
  const len = writeSockaddr(sa, new DataView(sa.buffer), 0, family, addr, 0, port);
  if (libc().connect(fd, sa, len) !== 0) throw new Errno(lastErrno(), "connect");
}

/** A socket's local address. */
export interface LocalAddress {
  family: 4 | 6;
  /** 4 or 16 bytes. */
  addr: Uint8Array;
  port: number;
}

/** `getsockname` for an IPv4/IPv6 socket. */
export function localAddress(fd: number): LocalAddress {
  const sa = new Uint8Array(SOCKADDR_STORAGE_SIZE);
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, SOCKADDR_STORAGE_SIZE, true);
  if (libc().getsockname(fd, sa, len) !== 0) throw new Errno(lastErrno(), "getsockname");
  const view = new DataView(sa.buffer);
  const af = view.getUint16(0, true);
  const port = view.getUint16(SOCKADDR_IN.PORT);
  if (af === AF_INET) return { family: 4, addr: sa.slice(SOCKADDR_IN.ADDR, SOCKADDR_IN.ADDR + 4), port };
  if (af === AF_INET6) {
    return { family: 6, addr: sa.slice(SOCKADDR_IN6.ADDR, SOCKADDR_IN6.ADDR + 16), port };
  }
  throw new TypeError(`getsockname returned address family ${af}, expected AF_INET or AF_INET6`);
}

/**
 * Whether the kernel accepts UDP_SEGMENT (send-side GSO, Linux ≥ 4.18) on this socket. Setting the
 * socket default to 0 keeps per-message control: we always pass the size as a cmsg.
 */
export function probeUdpGso(fd: number): boolean {
  return trySetSockOptInt(fd, SOL_UDP, UDP_SEGMENT, 0) === 0;
}

/** Turns on UDP_GRO (receive coalescing, Linux ≥ 5.0). False if the kernel refuses. */
export function enableUdpGro(fd: number): boolean {
  return trySetSockOptInt(fd, SOL_UDP, UDP_GRO, 1) === 0;
}

/**
 * Writes a UDP_SEGMENT cmsg (GSO segment size) at `off` (8-byte aligned) and returns the bytes used.
 */
export function writeUdpSegmentCmsg(view: DataView, off: number, segmentSize: number): number {
  const data = writeCmsgHeader(view, off, SOL_UDP, UDP_SEGMENT, 2);
  view.setUint16(data, segmentSize, true);
  view.setUint16(data + 2, 0, true);
  view.setUint32(data + 4, 0, true);
  return CMSG_SPACE_UDP_SEGMENT;
}

/**
 * Writes a source-address cmsg at `off`: IP_PKTINFO with `ipi_spec_dst` = the 4 bytes at
 * `src[srcOff]`, or IPV6_PKTINFO with `ipi6_addr` = 16 bytes. Returns the bytes used.
 */
export function writePktinfoCmsg(
  bytes: Uint8Array,
  view: DataView,
  off: number,
  family: 4 | 6,
  src: Uint8Array,
  srcOff: number,
): number {
  if (family === 4) {
    const data = writeCmsgHeader(view, off, SOL_IP, IP_PKTINFO, IN_PKTINFO.SIZE);
    view.setInt32(data + IN_PKTINFO.IFINDEX, 0, true);
    for (let i = 0; i < 4; i++) {
      bytes[data + IN_PKTINFO.SPEC_DST + i] = src[srcOff + i]!;
      bytes[data + IN_PKTINFO.ADDR + i] = 0;
    }
    view.setUint32(data + IN_PKTINFO.SIZE, 0, true); // alignment padding
    return CMSG_SPACE_PKTINFO4;
  }
  const data = writeCmsgHeader(view, off, SOL_IPV6, IPV6_PKTINFO, IN6_PKTINFO.SIZE);
  for (let i = 0; i < 16; i++) bytes[data + IN6_PKTINFO.ADDR + i] = src[srcOff + i]!;
  view.setUint32(data + IN6_PKTINFO.IFINDEX, 0, true);
  view.setUint32(data + IN6_PKTINFO.SIZE, 0, true); // alignment padding
  return CMSG_SPACE_PKTINFO6;
}

/**
 * Writes the traffic-class cmsg of a send (IP_TOS for IPv4, IPV6_TCLASS for IPv6, an int) carrying
 * `ecn` in its two low bits (spec §4.11: the outer ECN follows the inner packet). Returns the bytes used.
 */
export function writeTosCmsg(view: DataView, off: number, family: 4 | 6, ecn: number): number {
  const data = family === 4
    ? writeCmsgHeader(view, off, SOL_IP, IP_TOS, 4)
    : writeCmsgHeader(view, off, SOL_IPV6, IPV6_TCLASS, 4);
  view.setInt32(data, ecn & 3, true);
  view.setUint32(data + 4, 0, true); // alignment padding
  return CMSG_SPACE_TOS;
}

/** What {@link parseRecvCmsgs} found in one datagram's control buffer. */
export class RecvCmsgInfo {
  /** Offset of the local destination address (4 or 16 bytes), or -1 when no pktinfo was present. */
  dstAddrOff = -1;
  /** GRO segment size, or 0 when the datagram was not coalesced. */
  groSegmentSize = 0;
  /** ECN bits of the outer IP header (IP_RECVTOS / IPV6_RECVTCLASS), 0 when not reported. */
  ecn = 0;
}

/**
 * Walks the control messages in `[off, off + len)` and fills `out`. For IPv4 the local address is
 * `in_pktinfo.ipi_addr` (the header destination), for IPv6 `in6_pktinfo.ipi6_addr`.
 */
export function parseRecvCmsgs(view: DataView, off: number, len: number, out: RecvCmsgInfo): void {
  out.dstAddrOff = -1;
  out.groSegmentSize = 0;
  out.ecn = 0;
  let p = off;
  const end = off + len;
  while (p + CMSGHDR.SIZE <= end) {
    const cmsgLen = getU64(view, p + CMSGHDR.LEN);
    if (cmsgLen < CMSGHDR.SIZE || p + cmsgLen > end) break;
    const level = view.getInt32(p + CMSGHDR.LEVEL, true);
    const type = view.getInt32(p + CMSGHDR.TYPE, true);
    const data = p + CMSGHDR.DATA;
    if (level === SOL_IP && type === IP_PKTINFO && cmsgLen >= CMSGHDR.SIZE + IN_PKTINFO.SIZE) {
      out.dstAddrOff = data + IN_PKTINFO.ADDR;
    } else if (level === SOL_IPV6 && type === IPV6_PKTINFO && cmsgLen >= CMSGHDR.SIZE + IN6_PKTINFO.SIZE) {
      out.dstAddrOff = data + IN6_PKTINFO.ADDR;
    } else if (level === SOL_UDP && type === UDP_GRO && cmsgLen >= CMSGHDR.SIZE + 2) {
      // The kernel writes an int; older ones a u16. Both are little-endian, so read 16 bits.
      out.groSegmentSize = view.getUint16(data, true);
    } else if (level === SOL_IP && type === IP_TOS && cmsgLen >= CMSGHDR.SIZE + 1) {
      out.ecn = view.getUint8(data) & 3; // IPv4 delivers the TOS byte
    } else if (level === SOL_IPV6 && type === IPV6_TCLASS && cmsgLen >= CMSGHDR.SIZE + 4) {
      out.ecn = view.getInt32(data, true) & 3; // IPv6 delivers the traffic class as an int
    }
    p += (cmsgLen + 7) & ~7;
  }
}

/**
 * `recvmmsg(fd, msgs, vlen, MSG_DONTWAIT, NULL)`: the number of messages received, or `-errno`
 * (`-EAGAIN` when nothing is queued). Retries on EINTR.
 */
export function recvmmsgRaw(fd: number, msgs: Deno.PointerObject, vlen: number): number {
  const sym = libc();
  for (;;) {
    const n = sym.recvmmsg(fd, msgs, vlen, MSG_DONTWAIT, null);
    if (n >= 0) return n;
    const errno = lastErrno();
    if (errno !== EINTR) return -errno;
  }
}

/** `sendmmsg(fd, msgs, vlen, 0)`: the number of messages sent, or `-errno`. Retries on EINTR. */
export function sendmmsgRaw(fd: number, msgs: Deno.PointerObject, vlen: number): number {
  const sym = libc();
  for (;;) {
    const n = sym.sendmmsg(fd, msgs, vlen, 0);
    if (n >= 0) return n;
    const errno = lastErrno();
    if (errno !== EINTR) return -errno;
  }
}
