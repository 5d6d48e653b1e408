/**
 * A mutable, numeric socket address for the data path: family, 16 address bytes (IPv4 in the first
 * four) and a port. The I/O layer's batches carry addresses as bytes; comparing and copying them here
 * allocates nothing, where building a {@link SocketAddr} (strings) would. Convert with
 * {@link NetAddr.toSocketAddr} only on control paths.
 *
 * @module
 */

import { formatIp, parseIp, type SocketAddr } from "./ip_addr.ts";

export class NetAddr {
  family: 4 | 6 = 4;
  readonly bytes: Uint8Array = new Uint8Array(16);
  port = 0;

  /** A NetAddr holding `addr`. Throws TypeError for an invalid address. */
  static from(addr: SocketAddr): NetAddr {
    const bytes = parseIp(addr.ip);
    if (!bytes) throw new TypeError(`Invalid IP address "${addr.ip}"`);
    const out = new NetAddr();
    out.set(bytes.length === 4 ? 4 : 6, bytes, 0, addr.port);
    return out;
  }

  /** Hot path: copies an address from raw bytes. */
  set(family: 4 | 6, src: Uint8Array, off: number, port: number): void {
    this.family = family;
    const n = family === 4 ? 4 : 16;
    for (let i = 0; i < n; i++) this.bytes[i] = src[off + i]!;
    this.port = port;
  }

  copyFrom(other: NetAddr): void {
    this.set(other.family, other.bytes, 0, other.port);
  }

  /** Hot path: true when this is `family`/`src[off..]`/`port`. */
  equals(family: 4 | 6, src: Uint8Array, off: number, port: number): boolean {
    if (this.family !== family || this.port !== port) return false;
    const n = family === 4 ? 4 : 16;
    for (let i = 0; i < n; i++) if (this.bytes[i] !== src[off + i]) return false;
    return true;
  }

  sameAs(other: NetAddr): boolean {
    return this.equals(other.family, other.bytes, 0, other.port);
  }

  /** Allocates: control paths and logs only. */
  toSocketAddr(): SocketAddr {
    return { family: this.family, ip: formatIp(this.bytes, 0, this.family === 4 ? 4 : 16), port: this.port };
  }

  toString(): string {
    const a = this.toSocketAddr();
    return a.family === 6 ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`;
  }
}
