/**
 * {@link PeerAddrView}: a socket address in numeric form (family, address bytes and words, port), the
 * shape the data path uses instead of {@link SocketAddr} strings.
 *
 * Two uses:
 * - **Input views** (mutable): the I/O layer keeps one per receive direction and overwrites it for every
 *   datagram with {@link PeerAddrView.setBytes} / {@link PeerAddrView.setV4}; nothing is allocated.
 * - **Cached addresses** (never mutated after creation): the node builds one per nominated peer socket
 *   and relay socket on the control path ({@link PeerAddrView.fromSocketAddr}) and hands them out with
 *   every data-path transmit, so sending allocates nothing either.
 *
 * {@link PeerAddrView.toSocketAddr} converts lazily (and caches) for control paths (STUN, TURN,
 * handshakes).
 *
 * @module
 */

import { formatIp, type IpFamily, parseIp, type SocketAddr } from "../wire/ip_addr.ts";

/** A numeric socket address; see the module documentation. */
export class PeerAddrView {
  /** 4 or 6. */
  family: IpFamily = 4;
  port = 0;
  /** Address bytes in network order: the first 4 (IPv4) or all 16 (IPv6) are meaningful. */
  readonly bytes: Uint8Array = new Uint8Array(16);
  /** The address as four big-endian 32-bit words (IPv4: `w0` only, the rest 0), as int32. */
  w0 = 0;
  w1 = 0;
  w2 = 0;
  w3 = 0;
  #cached: SocketAddr | null = null;

  /** A view holding `addr` (control path: parses the text once). */
  static fromSocketAddr(addr: SocketAddr): PeerAddrView {
    return new PeerAddrView().setSocketAddr(addr);
  }

  /**
   * Hot path: sets an IPv4 address given as a uint32 (`a.b.c.d` = `a << 24 | ...`) and a port.
   * No allocation.
   */
  setV4(ipv4: number, port: number): this {
    this.family = 4;
    this.port = port;
    const b = this.bytes;
    b[0] = (ipv4 >>> 24) & 0xff;
    b[1] = (ipv4 >>> 16) & 0xff;
    b[2] = (ipv4 >>> 8) & 0xff;
    b[3] = ipv4 & 0xff;
    this.w0 = ipv4 | 0;
    this.w1 = 0;
    this.w2 = 0;
    this.w3 = 0;
    this.#cached = null;
    return this;
  }

  /**
   * Hot path: copies 4 (`family` 4) or 16 (`family` 6) address bytes from `src[off]` and sets the port.
   * No allocation.
   */
  setBytes(src: Uint8Array, off: number, family: IpFamily, port: number): this {
    this.family = family;
    this.port = port;
    const b = this.bytes;
    const n = family === 4 ? 4 : 16;
    for (let i = 0; i < n; i++) b[i] = src[off + i]!;
    for (let i = n; i < 16; i++) b[i] = 0;
    this.w0 = word(b, 0);
    this.w1 = word(b, 4);
    this.w2 = word(b, 8);
    this.w3 = word(b, 12);
    this.#cached = null;
    return this;
  }

  /** Sets the view from a {@link SocketAddr} (control path). */
  setSocketAddr(addr: SocketAddr): this {
    const bytes = parseIp(addr.ip);
    if (bytes === null) throw new TypeError(`Invalid IP address "${addr.ip}"`);
    this.setBytes(bytes, 0, bytes.length === 4 ? 4 : 6, addr.port);
    this.#cached = addr;
    return this;
  }

  /** Copies another view. No allocation. */
  copyFrom(other: PeerAddrView): this {
    this.family = other.family;
    this.port = other.port;
    this.bytes.set(other.bytes);
    this.w0 = other.w0;
    this.w1 = other.w1;
    this.w2 = other.w2;
    this.w3 = other.w3;
    this.#cached = other.#cached;
    return this;
  }

  /** Hot path: same family, address and port. No allocation. */
  equals(other: PeerAddrView): boolean {
    return this.port === other.port && this.family === other.family && this.w0 === other.w0 &&
      this.w1 === other.w1 && this.w2 === other.w2 && this.w3 === other.w3;
  }

  /** The IPv4 address as a uint32 (0 for IPv6). */
  get ipv4(): number {
    return this.family === 4 ? this.w0 >>> 0 : 0;
  }

  /**
   * The address as a {@link SocketAddr} (control path: allocates on the first call after a change,
   * then returns the cached object).
   */
  toSocketAddr(): SocketAddr {
    if (this.#cached === null) {
      this.#cached = {
        family: this.family,
        ip: formatIp(this.bytes, 0, this.family === 4 ? 4 : 16),
        port: this.port,
      };
    }
    return this.#cached;
  }

  /** `"a.b.c.d:port"` / `"[v6]:port"` (for logs). */
  toString(): string {
    const a = this.toSocketAddr();
    return a.family === 6 ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`;
  }
}

function word(b: Uint8Array, i: number): number {
  return (b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!;
}
