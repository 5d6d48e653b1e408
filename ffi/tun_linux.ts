/**
 * Linux TUN devices and interface ioctls through libc.
 *
 * - {@link ensureTunNode} creates `/dev/net/tun` (char 10:200) when a container lacks it.
 * - {@link openTun} opens the clone device and attaches it to an interface with TUNSETIFF
 *   (`IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE`, optionally `IFF_VNET_HDR`), non-blocking.
 * - {@link negotiateTunOffload} asks for checksum/TSO/USO offload with TUNSETOFFLOAD, falling back
 *   to fewer flags when the kernel refuses.
 * - MTU, TX queue length, flags and index through the classic SIOC* ioctls on a helper socket.
 *
 * All functions here are control path and throw {@link Errno}. The packet path (`readv`/`writev`)
 * lives in `src/io/tun_device.ts`.
 *
 * @module
 */
import { EEXIST, EINVAL, Errno, NEED_NET_ADMIN_HINT } from "./errno.ts";
import { closeFd, lastErrno, libc } from "./libc.ts";
import {
  AF_INET,
  cString,
  IFF_MULTI_QUEUE,
  IFF_NO_PI,
  IFF_TUN,
  IFF_VNET_HDR,
  IFNAMSIZ,
  IFREQ,
  makedev,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDWR,
  readCString,
  S_IFCHR,
  SIOCGIFFLAGS,
  SIOCGIFINDEX,
  SIOCGIFMTU,
  SIOCGIFTXQLEN,
  SIOCSIFFLAGS,
  SIOCSIFMTU,
  SIOCSIFTXQLEN,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  TUN_F_CSUM,
  TUN_F_TSO4,
  TUN_F_TSO6,
  TUN_F_USO4,
  TUN_F_USO6,
  TUNGETFEATURES,
  TUNGETVNETHDRSZ,
  TUNSETIFF,
  TUNSETOFFLOAD,
  writeIfName,
} from "./structs.ts";

/** The clone device. */
export const TUN_DEVICE_PATH = "/dev/net/tun";

/** Everything we ask for when offloads are on. */
export const TUN_OFFLOAD_ALL = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6;

/** The offload sets tried in order, most capable first (USO needs Linux ≥ 6.2). */
export const TUN_OFFLOAD_FALLBACKS: readonly number[] = [
  TUN_OFFLOAD_ALL,
  TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6,
  TUN_F_CSUM,
];

/** Human-readable names of TUN_F_* flags, for logs (`"csum|tso4|tso6"`). */
export function tunOffloadNames(flags: number): string {
  const names: string[] = [];
  if (flags & TUN_F_CSUM) names.push("csum");
  if (flags & TUN_F_TSO4) names.push("tso4");
  if (flags & TUN_F_TSO6) names.push("tso6");
  if (flags & TUN_F_USO4) names.push("uso4");
  if (flags & TUN_F_USO6) names.push("uso6");
  return names.length === 0 ? "none" : names.join("|");
}

/**
 * Creates the TUN clone device node if it is missing (parent directory mode 0751, node
 * `crw-rw-rw-` 10:200, like the reference gateway). Returns true if it created the node.
 */
export function ensureTunNode(path = TUN_DEVICE_PATH): boolean {
  try {
    const info = Deno.statSync(path);
    if (info.isCharDevice) return false;
    throw new TypeError(`${path} exists but is not a character device`);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const sym = libc();
  const dir = path.slice(0, path.lastIndexOf("/"));
  if (dir !== "" && sym.mkdir(cString(dir), 0o751) !== 0) {
    const errno = lastErrno();
    if (errno !== EEXIST) throw new Errno(errno, "mkdir", { detail: `"${dir}"` });
  } else if (dir !== "") {
    sym.chmod(cString(dir), 0o751); // mkdir's mode is filtered by the umask
  }
  if (sym.mknod(cString(path), S_IFCHR | 0o666, makedev(10, 200)) !== 0) {
    const errno = lastErrno();
    if (errno === EEXIST) return false;
    throw new Errno(errno, "mknod", { detail: `"${path}" (char 10:200)`, hint: NEED_NET_ADMIN_HINT });
  }
  sym.chmod(cString(path), 0o666);
  return true;
}

/** Options for {@link openTun}. */
export interface OpenTunOptions {
  /** Interface name (at most 15 bytes). */
  name: string;
  /** Add IFF_VNET_HDR: every read/write starts with a 10-byte virtio_net_hdr. */
  vnetHdr?: boolean;
  /** Add IFF_MULTI_QUEUE (default true, like the reference gateway; one queue is opened). */
  multiQueue?: boolean;
  /** Clone device path (default `/dev/net/tun`). */
  devicePath?: string;
}

/** An opened TUN queue. */
export interface OpenedTun {
  fd: number;
  /** The name the kernel used (equal to the requested one). */
  name: string;
  /** The IFF_* flags passed to TUNSETIFF. */
  flags: number;
}

/** Opens the clone device non-blocking and attaches it to interface `name` (created if needed). */
export function openTun(options: OpenTunOptions): OpenedTun {
  const devicePath = options.devicePath ?? TUN_DEVICE_PATH;
  const sym = libc();
  const fd = sym.open(cString(devicePath), O_RDWR | O_NONBLOCK | O_CLOEXEC, 0);
  if (fd < 0) {
    throw new Errno(lastErrno(), "open", { detail: `"${devicePath}"`, hint: NEED_NET_ADMIN_HINT });
  }
  let flags = IFF_TUN | IFF_NO_PI;
  if (options.multiQueue ?? true) flags |= IFF_MULTI_QUEUE;
  if (options.vnetHdr) flags |= IFF_VNET_HDR;
  const ifr = new Uint8Array(IFREQ.SIZE);
  writeIfName(ifr, IFREQ.NAME, options.name);
  new DataView(ifr.buffer).setInt16(IFREQ.FLAGS, flags, true);
  if (sym.ioctl(fd, BigInt(TUNSETIFF), ifr) !== 0) {
    const errno = lastErrno();
    closeFd(fd);
    throw new Errno(errno, "ioctl(TUNSETIFF)", {
      detail: `on "${options.name}"`,
      hint: errno === EINVAL
        ? "An interface of that name may already exist with different flags (delete it first)"
        : NEED_NET_ADMIN_HINT,
    });
  }
  return { fd, name: readCString(ifr, IFREQ.NAME, IFNAMSIZ), flags };
}

/** TUNGETFEATURES: the IFF_* flags this kernel's TUN driver supports. */
export function tunFeatures(fd: number): number {
  const buf = new Uint8Array(4);
  if (libc().ioctl(fd, BigInt(TUNGETFEATURES), buf) !== 0) {
    throw new Errno(lastErrno(), "ioctl(TUNGETFEATURES)");
  }
  return new DataView(buf.buffer).getUint32(0, true);
}

/** TUNGETVNETHDRSZ: the virtio_net_hdr size the device uses (10 by default). */
export function tunVnetHdrSize(fd: number): number {
  const buf = new Uint8Array(4);
  if (libc().ioctl(fd, BigInt(TUNGETVNETHDRSZ), buf) !== 0) {
    throw new Errno(lastErrno(), "ioctl(TUNGETVNETHDRSZ)");
  }
  return new DataView(buf.buffer).getInt32(0, true);
}

/** TUNSETOFFLOAD with exactly `flags`; returns 0 or the errno (EINVAL: a flag is unsupported). */
export function trySetTunOffload(fd: number, flags: number): number {
  return libc().ioctl_value(fd, BigInt(TUNSETOFFLOAD), BigInt(flags)) === 0 ? 0 : lastErrno();
}

/**
 * Enables the most capable offload set from `candidates` the kernel accepts and returns it (0 when
 * none was accepted: the device then never produces GSO packets or partial checksums). The fd must
 * have been opened with `vnetHdr`.
 */
export function negotiateTunOffload(
  fd: number,
  candidates: readonly number[] = TUN_OFFLOAD_FALLBACKS,
): number {
  for (const flags of candidates) {
    const errno = trySetTunOffload(fd, flags);
    if (errno === 0) return flags;
    if (errno !== EINVAL) throw new Errno(errno, "ioctl(TUNSETOFFLOAD)", { detail: tunOffloadNames(flags) });
  }
  trySetTunOffload(fd, 0);
  return 0;
}

/**
 * Runs an `ifreq` ioctl on a throw-away AF_INET socket. `value` goes into the union as an i32 (or
 * i16 for flags); returns the union's value afterwards.
 */
function ifreqIoctl(
  name: string,
  request: number,
  requestName: string,
  value: number,
  short: boolean,
): number {
  const sym = libc();
  const sock = sym.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) throw new Errno(lastErrno(), "socket", { detail: "(for interface ioctls)" });
  try {
    const ifr = new Uint8Array(IFREQ.SIZE);
    const view = new DataView(ifr.buffer);
    writeIfName(ifr, IFREQ.NAME, name);
    if (short) view.setInt16(IFREQ.FLAGS, value, true);
    else view.setInt32(IFREQ.MTU, value, true);
    if (sym.ioctl(sock, BigInt(request), ifr) !== 0) {
      const errno = lastErrno();
      throw new Errno(errno, `ioctl(${requestName})`, {
        detail: `on "${name}"`,
        ...(errno === 1 ? { hint: NEED_NET_ADMIN_HINT } : {}),
      });
    }
    return short ? view.getUint16(IFREQ.FLAGS, true) : view.getInt32(IFREQ.MTU, true);
  } finally {
    closeFd(sock);
  }
}

/** SIOCSIFTXQLEN: sets the interface's transmit queue length. */
export function setTxQueueLen(name: string, qlen: number): void {
  ifreqIoctl(name, SIOCSIFTXQLEN, "SIOCSIFTXQLEN", qlen, false);
}

/** SIOCGIFTXQLEN: the interface's transmit queue length. */
export function getTxQueueLen(name: string): number {
  return ifreqIoctl(name, SIOCGIFTXQLEN, "SIOCGIFTXQLEN", 0, false);
}

/** SIOCSIFMTU. */
export function setMtu(name: string, mtu: number): void {
  ifreqIoctl(name, SIOCSIFMTU, "SIOCSIFMTU", mtu, false);
}

/** SIOCGIFMTU. */
export function getMtu(name: string): number {
  return ifreqIoctl(name, SIOCGIFMTU, "SIOCGIFMTU", 0, false);
}

/** SIOCGIFFLAGS: the IFF_* flags (low 16 bits). */
export function getIfFlags(name: string): number {
  return ifreqIoctl(name, SIOCGIFFLAGS, "SIOCGIFFLAGS", 0, true);
}

/** SIOCSIFFLAGS: replaces the IFF_* flags (read them first with {@link getIfFlags}). */
export function setIfFlags(name: string, flags: number): void {
  ifreqIoctl(name, SIOCSIFFLAGS, "SIOCSIFFLAGS", flags, true);
}

/** SIOCGIFINDEX: the interface index. */
export function getIfIndex(name: string): number {
  return ifreqIoctl(name, SIOCGIFINDEX, "SIOCGIFINDEX", 0, false);
}
