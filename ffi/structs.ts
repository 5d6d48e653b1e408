/**
 * Linux ABI for the FFI layer: struct sizes and field offsets, and the constants that go with them.
 *
 * Layouts are the LP64 ones shared by x86_64 and aarch64 (pointers, `size_t` and `long` are 8
 * bytes, little-endian). `tests/ffi/structs_test.ts` compiles a C program and compares every
 * size, offset and constant here with the system headers.
 *
 * Conventions: each struct is an `as const` object of byte offsets plus `SIZE`. Multi-byte host
 * fields are little-endian (pass `true` to `DataView` getters); network-order fields (ports, IP
 * addresses) are big-endian. 64-bit fields (pointers, `size_t`) are written as two 32-bit halves
 * with {@link setU64} so that nothing allocates a BigInt on the data path.
 *
 * @module
 */

// ---------------------------------------------------------------------------------------------
// Sockets

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;

export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;

export const IPPROTO_IP = 0;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;
export const IPPROTO_ICMPV6 = 58;

export const SOL_SOCKET = 1;
export const SOL_IP = 0;
export const SOL_IPV6 = 41;
export const SOL_UDP = 17;
export const SOL_NETLINK = 270;

export const SO_REUSEADDR = 2;
export const SO_TYPE = 3;
export const SO_ERROR = 4;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;
export const SO_MARK = 36;

export const IP_TOS = 1;
export const IP_PKTINFO = 8;
export const IP_MTU_DISCOVER = 10;
export const IP_RECVTOS = 13;
export const IPV6_V6ONLY = 26;
export const IPV6_RECVPKTINFO = 49;
export const IPV6_PKTINFO = 50;
export const IPV6_RECVTCLASS = 66;
export const IPV6_TCLASS = 67;

/** `setsockopt(SOL_UDP, UDP_SEGMENT, u16)` and the send cmsg of the same type: GSO segment size. */
export const UDP_SEGMENT = 103;
/** `setsockopt(SOL_UDP, UDP_GRO, int)`; on receive a cmsg of this type carries the segment size. */
export const UDP_GRO = 104;

export const MSG_CTRUNC = 0x8;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;

export const NETLINK_ROUTE = 0;
export const NETLINK_EXT_ACK = 11;

// ---------------------------------------------------------------------------------------------
// Files, devices, events

export const O_RDONLY = 0;
export const O_RDWR = 2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const S_IFCHR = 0o20000;

export const EFD_SEMAPHORE = 1;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;

export const POLLIN = 0x1;
export const POLLPRI = 0x2;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;

/** glibc's `makedev(major, minor)` for the small numbers used here (`/dev/net/tun` is 10:200). */
export function makedev(major: number, minor: number): bigint {
  const maj = BigInt(major);
  const min = BigInt(minor);
  return ((maj & 0xfffff000n) << 32n) | ((maj & 0xfffn) << 8n) | ((min & 0xffffff00n) << 12n) |
    (min & 0xffn);
}

// ---------------------------------------------------------------------------------------------
// TUN and interface ioctls

export const IFNAMSIZ = 16;
export const IFF_UP = 0x1;
export const IFF_RUNNING = 0x40;
export const IFF_NOARP = 0x80;
export const IFF_POINTOPOINT = 0x10;
export const IFF_MULTICAST = 0x1000;

export const IFF_TUN = 0x0001;
export const IFF_NO_PI = 0x1000;
export const IFF_MULTI_QUEUE = 0x0100;
export const IFF_VNET_HDR = 0x4000;

export const TUNSETIFF = 0x400454ca;
export const TUNGETFEATURES = 0x800454cf;
export const TUNSETOFFLOAD = 0x400454d0;
export const TUNGETIFF = 0x800454d2;
export const TUNSETVNETHDRSZ = 0x400454d8;
export const TUNGETVNETHDRSZ = 0x800454d7;

export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_TSO_ECN = 0x08;
export const TUN_F_UFO = 0x10;
export const TUN_F_USO4 = 0x20;
export const TUN_F_USO6 = 0x40;

export const SIOCGIFFLAGS = 0x8913;
export const SIOCSIFFLAGS = 0x8914;
export const SIOCGIFMTU = 0x8921;
export const SIOCSIFMTU = 0x8922;
export const SIOCGIFINDEX = 0x8933;
export const SIOCGIFTXQLEN = 0x8942;
export const SIOCSIFTXQLEN = 0x8943;

// ---------------------------------------------------------------------------------------------
// Layouts

/** `struct sockaddr_in` (16 bytes). Family is host order; port and address network order. */
export const SOCKADDR_IN = { SIZE: 16, FAMILY: 0, PORT: 2, ADDR: 4 } as const;
/** `struct sockaddr_in6` (28 bytes). */
export const SOCKADDR_IN6 = { SIZE: 28, FAMILY: 0, PORT: 2, FLOWINFO: 4, ADDR: 8, SCOPE_ID: 24 } as const;
/** `struct sockaddr_nl` (12 bytes). */
export const SOCKADDR_NL = { SIZE: 12, FAMILY: 0, PID: 4, GROUPS: 8 } as const;
/** `struct sockaddr_storage` size: room for any address we receive. */
export const SOCKADDR_STORAGE_SIZE = 128;
/** `struct iovec` (16 bytes). */
export const IOVEC = { SIZE: 16, BASE: 0, LEN: 8 } as const;
/** `struct msghdr` (56 bytes). `NAMELEN` is a u32; `IOVLEN` and `CONTROLLEN` are `size_t`. */
export const MSGHDR = {
  SIZE: 56,
  NAME: 0,
  NAMELEN: 8,
  IOV: 16,
  IOVLEN: 24,
  CONTROL: 32,
  CONTROLLEN: 40,
  FLAGS: 48,
} as const;
/** `struct mmsghdr` (64 bytes): a msghdr plus the kernel-written byte count. */
export const MMSGHDR = { SIZE: 64, HDR: 0, LEN: 56 } as const;
/** `struct cmsghdr` (16 bytes); data follows at `DATA` (= CMSG_LEN(0)). `LEN` is a `size_t`. */
export const CMSGHDR = { SIZE: 16, LEN: 0, LEVEL: 8, TYPE: 12, DATA: 16 } as const;
/** `struct in_pktinfo` (12 bytes). `ADDR` is the header destination address of a received packet. */
export const IN_PKTINFO = { SIZE: 12, IFINDEX: 0, SPEC_DST: 4, ADDR: 8 } as const;
/** `struct in6_pktinfo` (20 bytes). */
export const IN6_PKTINFO = { SIZE: 20, ADDR: 0, IFINDEX: 16 } as const;
/** `struct ifreq` (40 bytes). The union at 16 holds flags (i16), mtu/qlen/ifindex (i32). */
export const IFREQ = { SIZE: 40, NAME: 0, FLAGS: 16, MTU: 16, QLEN: 16, IFINDEX: 16 } as const;
/** `struct pollfd` (8 bytes). */
export const POLLFD = { SIZE: 8, FD: 0, EVENTS: 4, REVENTS: 6 } as const;
/** `struct timespec` (16 bytes). */
export const TIMESPEC = { SIZE: 16, SEC: 0, NSEC: 8 } as const;
/**
 * `struct virtio_net_hdr` (10 bytes), prepended to TUN reads/writes with IFF_VNET_HDR. Fields are
 * host order (little-endian on both supported machines).
 */
export const VIRTIO_NET_HDR = {
  SIZE: 10,
  FLAGS: 0,
  GSO_TYPE: 1,
  HDR_LEN: 2,
  GSO_SIZE: 4,
  CSUM_START: 6,
  CSUM_OFFSET: 8,
} as const;

/** Rounds a control-message length up to the next multiple of `sizeof(size_t)` (CMSG_ALIGN). */
export function cmsgAlign(len: number): number {
  return (len + 7) & ~7;
}

/** Bytes a control message with `dataLen` data bytes occupies in the buffer (CMSG_SPACE). */
export function cmsgSpace(dataLen: number): number {
  return CMSGHDR.SIZE + cmsgAlign(dataLen);
}

/** The `cmsg_len` value for `dataLen` data bytes (CMSG_LEN). */
export function cmsgLen(dataLen: number): number {
  return CMSGHDR.SIZE + dataLen;
}

// ---------------------------------------------------------------------------------------------
// DataView helpers (allocation-free)

const TWO_32 = 4294967296;

/** Writes a non-negative safe integer as a little-endian u64 (pointer, size_t) without BigInt. */
export function setU64(view: DataView, off: number, value: number): void {
  view.setUint32(off, value % TWO_32, true);
  view.setUint32(off + 4, Math.floor(value / TWO_32), true);
}

/** Reads a little-endian u64 as a number (exact below 2^53, which every length and address is). */
export function getU64(view: DataView, off: number): number {
  return view.getUint32(off + 4, true) * TWO_32 + view.getUint32(off, true);
}

/** Writes an iovec at `off`. */
export function writeIovec(view: DataView, off: number, base: number, len: number): void {
  setU64(view, off + IOVEC.BASE, base);
  setU64(view, off + IOVEC.LEN, len);
}

/**
 * Writes a `sockaddr_in` (`family` 4, 4 address bytes) or `sockaddr_in6` (`family` 6, 16 bytes)
 * at `off` in `bytes`/`view` (the same memory) and returns its length for `msg_namelen`.
 */
export function writeSockaddr(
  bytes: Uint8Array,
  view: DataView,
  off: number,
  family: 4 | 6,
  addr: Uint8Array,
  addrOff: number,
  port: number,
): number {
  if (family === 4) {
    view.setUint16(off + SOCKADDR_IN.FAMILY, AF_INET, true);
    view.setUint16(off + SOCKADDR_IN.PORT, port);
    for (let i = 0; i < 4; i++) bytes[off + SOCKADDR_IN.ADDR + i] = addr[addrOff + i]!;
    for (let i = 8; i < 16; i++) bytes[off + i] = 0;
    return SOCKADDR_IN.SIZE;
  }
  view.setUint16(off + SOCKADDR_IN6.FAMILY, AF_INET6, true);
  view.setUint16(off + SOCKADDR_IN6.PORT, port);
  view.setUint32(off + SOCKADDR_IN6.FLOWINFO, 0);
  for (let i = 0; i < 16; i++) bytes[off + SOCKADDR_IN6.ADDR + i] = addr[addrOff + i]!;
  view.setUint32(off + SOCKADDR_IN6.SCOPE_ID, 0, true);
  return SOCKADDR_IN6.SIZE;
}

/** The address family (4, 6, or 0 for anything else) of the sockaddr at `off`. */
export function sockaddrFamily(view: DataView, off: number): 0 | 4 | 6 {
  const af = view.getUint16(off, true);
  return af === AF_INET ? 4 : af === AF_INET6 ? 6 : 0;
}

/** The port of the `sockaddr_in`/`sockaddr_in6` at `off` (same offset in both). */
export function sockaddrPort(view: DataView, off: number): number {
  return view.getUint16(off + SOCKADDR_IN.PORT);
}

/** Offset of the address bytes of the sockaddr at `off` for its family. */
export function sockaddrAddrOffset(family: 4 | 6, off: number): number {
  return off + (family === 4 ? SOCKADDR_IN.ADDR : SOCKADDR_IN6.ADDR);
}

/**
 * Writes a control-message header at `off` (which must be 8-byte aligned) for `dataLen` data
 * bytes and returns the offset of its data.
 */
export function writeCmsgHeader(
  view: DataView,
  off: number,
  level: number,
  type: number,
  dataLen: number,
): number {
  setU64(view, off + CMSGHDR.LEN, cmsgLen(dataLen));
  view.setInt32(off + CMSGHDR.LEVEL, level, true);
  view.setInt32(off + CMSGHDR.TYPE, type, true);
  return off + CMSGHDR.DATA;
}

/** Writes a NUL-terminated interface name into an `ifreq` (or any 16-byte name field) at `off`. */
export function writeIfName(bytes: Uint8Array, off: number, name: string): void {
  const encoded = new TextEncoder().encode(name);
  if (encoded.length === 0 || encoded.length >= IFNAMSIZ) {
    throw new RangeError(
      `Interface name "${name}" must have 1 to ${IFNAMSIZ - 1} bytes, got ${encoded.length}`,
    );
  }
  bytes.fill(0, off, off + IFNAMSIZ);
  bytes.set(encoded, off);
}

/** Reads a NUL-terminated name of at most `max` bytes at `off`. */
export function readCString(bytes: Uint8Array, off: number, max: number): string {
  let end = off;
  while (end < off + max && bytes[end] !== 0) end++;
  return new TextDecoder().decode(bytes.subarray(off, end));
}

/** Encodes a string as a NUL-terminated C string. */
export function cString(text: string): Uint8Array<ArrayBuffer> {
  const encoded = new TextEncoder().encode(text);
  const out = new Uint8Array(encoded.length + 1);
  out.set(encoded);
  return out;
}
