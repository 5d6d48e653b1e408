/**
 * Longest-prefix-match tables over IPv4 and IPv6 networks, with numeric keys only.
 *
 * Every map key is a small integer (a V8 Smi, below 2^30), so lookups never box a number:
 * IPv4 networks live in one `Map<number, bucket>` per prefix length keyed by the masked address
 * shifted right by two (only /31 and /32 share a bucket); IPv6 networks in one `Map<number, bucket>`
 * per prefix length keyed by a 30-bit hash of the masked address. Buckets hold the masked words
 * and are compared exactly. A lookup walks only the prefix lengths that are present, longest first.
 * Inserts are control-path work (they may allocate); lookups are hot path: no allocation.
 *
 * @module
 */

import { parseIp } from "../wire/ip_addr.ts";

/** A network: 4 or 16 address bytes (host bits may be set; they are masked) and a prefix length. */
export interface IpNetwork {
  readonly family: 4 | 6;
  /** 4 or 16 bytes. */
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

interface V4Entry<T> {
  /** Masked address as int32. */
  w: number;
  value: T;
}

interface V6Entry<T> {
  w0: number;
  w1: number;
  w2: number;
  w3: number;
  value: T;
}

/** Longest-prefix-match table mapping IP networks to values of type `T`. */
export class IpNetworkTable<T> {
  readonly #v4: (Map<number, V4Entry<T>[]> | undefined)[] = new Array<Map<number, V4Entry<T>[]> | undefined>(
    33,
  )
    .fill(undefined);
  readonly #v6: (Map<number, V6Entry<T>[]> | undefined)[] = new Array<Map<number, V6Entry<T>[]> | undefined>(
    129,
  ).fill(undefined);
  /** Present IPv4 prefix lengths, longest first. */
  #v4Lens: number[] = [];
  /** Present IPv6 prefix lengths, longest first. */
  #v6Lens: number[] = [];
  #size = 0;

  /** Number of networks stored. */
  get size(): number {
    return this.#size;
  }

  /** Removes every network. */
  clear(): void {
    this.#v4.fill(undefined);
    this.#v6.fill(undefined);
    this.#v4Lens = [];
    this.#v6Lens = [];
    this.#size = 0;
  }

  /** Inserts (or replaces) the value for `network`. */
  insert(network: IpNetwork, value: T): void {
    if (network.family === 4) this.insert4(readU32(network.bytes, 0), network.prefix, value);
    else this.insert6(network.bytes, 0, network.prefix, value);
  }

  /** Inserts (or replaces) the value for the IPv4 network `addr/prefix` (`addr` as uint32 or int32). */
  insert4(addr: number, prefix: number, value: T): void {
    checkPrefix(prefix, 32);
    let map = this.#v4[prefix];
    if (map === undefined) {
      map = new Map();
      this.#v4[prefix] = map;
      this.#v4Lens = insertLen(this.#v4Lens, prefix);
    }
    const w = addr & mask32(prefix);
    const key = w >>> 2;
    let bucket = map.get(key);
    if (bucket === undefined) {
      bucket = [];
      map.set(key, bucket);
    }
    for (let i = 0; i < bucket.length; i++) {
      if (bucket[i]!.w === w) {
        bucket[i]!.value = value;
        return;
      }
    }
    bucket.push({ w, value });
    this.#size++;
  }

  /** Inserts (or replaces) the value for the IPv6 network at `buf[off..off+16)` / `prefix`. */
  insert6(buf: Uint8Array, off: number, prefix: number, value: T): void {
    checkPrefix(prefix, 128);
    let map = this.#v6[prefix];
    if (map === undefined) {
      map = new Map();
      this.#v6[prefix] = map;
      this.#v6Lens = insertLen(this.#v6Lens, prefix);
    }
    const w0 = readI32(buf, off) & wordMask(prefix, 0);
    const w1 = readI32(buf, off + 4) & wordMask(prefix, 1);
    const w2 = readI32(buf, off + 8) & wordMask(prefix, 2);
    const w3 = readI32(buf, off + 12) & wordMask(prefix, 3);
    const h = hash6(w0, w1, w2, w3);
    let bucket = map.get(h);
    if (bucket === undefined) {
      bucket = [];
      map.set(h, bucket);
    }
    for (let i = 0; i < bucket.length; i++) {
      const e = bucket[i]!;
      if (e.w0 === w0 && e.w1 === w1 && e.w2 === w2 && e.w3 === w3) {
        e.value = value;
        return;
      }
    }
    bucket.push({ w0, w1, w2, w3, value });
    this.#size++;
  }

  /** The value of the longest network containing the IPv4 address `addr`. Hot path: no allocation. */
  longestMatch4(addr: number): T | undefined {
    const lens = this.#v4Lens;
    for (let i = 0; i < lens.length; i++) {
      const p = lens[i]!;
      const v = lookup4(this.#v4[p]!, addr & mask32(p));
      if (v !== undefined) return v;
    }
    return undefined;
  }

  /**
   * The value of the longest network containing the IPv6 address at `buf[off..off+16)`.
   * Hot path: no allocation.
   */
  longestMatch6(buf: Uint8Array, off: number): T | undefined {
    const lens = this.#v6Lens;
    if (lens.length === 0) return undefined;
    const a0 = readI32(buf, off);
    const a1 = readI32(buf, off + 4);
    const a2 = readI32(buf, off + 8);
    const a3 = readI32(buf, off + 12);
    for (let i = 0; i < lens.length; i++) {
      const p = lens[i]!;
      const v = lookup6(
        this.#v6[p]!,
        a0 & wordMask(p, 0),
        a1 & wordMask(p, 1),
        a2 & wordMask(p, 2),
        a3 & wordMask(p, 3),
      );
      if (v !== undefined) return v;
    }
    return undefined;
  }

  /** The value stored for exactly `addr/prefix` (IPv4). */
  exactMatch4(addr: number, prefix: number): T | undefined {
    const map = this.#v4[prefix];
    return map === undefined ? undefined : lookup4(map, addr & mask32(prefix));
  }

  /** The value stored for exactly the IPv6 network at `buf[off..off+16)` / `prefix`. */
  exactMatch6(buf: Uint8Array, off: number, prefix: number): T | undefined {
    const map = this.#v6[prefix];
    if (map === undefined) return undefined;
    return lookup6(
      map,
      readI32(buf, off) & wordMask(prefix, 0),
      readI32(buf, off + 4) & wordMask(prefix, 1),
      readI32(buf, off + 8) & wordMask(prefix, 2),
      readI32(buf, off + 12) & wordMask(prefix, 3),
    );
  }

  /** The value stored for exactly `network`. */
  exactMatch(network: IpNetwork): T | undefined {
    return network.family === 4
      ? this.exactMatch4(readU32(network.bytes, 0), network.prefix)
      : this.exactMatch6(network.bytes, 0, network.prefix);
  }
}

/**
 * True when network `outer` contains network `inner` (same family, `outer.prefix <= inner.prefix`,
 * and `inner`'s address masked to `outer.prefix` equals `outer`'s masked address).
 */
export function networkContainsNetwork(outer: IpNetwork, inner: IpNetwork): boolean {
  if (outer.family !== inner.family || outer.prefix > inner.prefix) return false;
  const words = outer.family === 4 ? 1 : 4;
  for (let i = 0; i < words; i++) {
    const m = outer.family === 4 ? mask32(outer.prefix) : wordMask(outer.prefix, i);
    if ((readI32(outer.bytes, 4 * i) & m) !== (readI32(inner.bytes, 4 * i) & m)) return false;
  }
  return true;
}

/**
 * Parses `"a.b.c.d/p"`, `"v6/p"` or a bare address (host prefix). Host bits are cleared. Returns
 * null when the text is not a network. Control path.
 */
export function parseIpNetwork(text: string): IpNetwork | null {
  const slash = text.indexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const bytes = parseIp(addrText);
  if (bytes === null) return null;
  const max = bytes.length === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p)) return null;
    prefix = Number(p);
    if (prefix > max) return null;
  }
  return makeNetwork(bytes, prefix);
}

/** A network from address bytes (copied, host bits cleared) and a prefix length. */
export function makeNetwork(bytes: Uint8Array, prefix: number): IpNetwork {
  const family = bytes.length === 4 ? 4 : 6;
  checkPrefix(prefix, family === 4 ? 32 : 128);
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const bitsLeft = prefix - 8 * i;
    const m = bitsLeft >= 8 ? 0xff : bitsLeft <= 0 ? 0 : (0xff << (8 - bitsLeft)) & 0xff;
    out[i] = bytes[i]! & m;
  }
  return { family, bytes: out, prefix };
}

/** The IPv4 netmask for `prefix` as int32 (`mask32(0) === 0`). */
export function mask32(prefix: number): number {
  return prefix === 0 ? 0 : (-1 << (32 - prefix)) | 0;
}

/** The int32 mask of 32-bit word `i` (0..3) of an IPv6 netmask for `prefix`. */
function wordMask(prefix: number, i: number): number {
  const bits = prefix - 32 * i;
  if (bits >= 32) return -1;
  if (bits <= 0) return 0;
  return (-1 << (32 - bits)) | 0;
}

function lookup4<T>(map: Map<number, V4Entry<T>[]>, w: number): T | undefined {
  const bucket = map.get(w >>> 2);
  if (bucket === undefined) return undefined;
  for (let i = 0; i < bucket.length; i++) {
    const e = bucket[i]!;
    if (e.w === w) return e.value;
  }
  return undefined;
}

function lookup6<T>(
  map: Map<number, V6Entry<T>[]>,
  w0: number,
  w1: number,
  w2: number,
  w3: number,
): T | undefined {
  const bucket = map.get(hash6(w0, w1, w2, w3));
  if (bucket === undefined) return undefined;
  for (let i = 0; i < bucket.length; i++) {
    const e = bucket[i]!;
    if (e.w0 === w0 && e.w1 === w1 && e.w2 === w2 && e.w3 === w3) return e.value;
  }
  return undefined;
}

/** A 31-bit hash of four int32 words (a small integer keeps V8 on its fast Smi map path). */
function hash6(w0: number, w1: number, w2: number, w3: number): number {
  let h = Math.imul(w0 ^ 0x5bd1e995, 0x01000193);
  h = Math.imul(h ^ w1, 0x01000193);
  h = Math.imul(h ^ w2, 0x01000193);
  h = Math.imul(h ^ w3, 0x01000193);
  return (h ^ (h >>> 15)) & 0x3fffffff;
}

function insertLen(lens: number[], prefix: number): number[] {
  const out = lens.slice();
  out.push(prefix);
  out.sort((a, b) => b - a);
  return out;
}

function checkPrefix(prefix: number, max: number): void {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) {
    throw new RangeError(`Invalid prefix length ${prefix}: expected an integer from 0 to ${max}`);
  }
}

function readI32(buf: Uint8Array, i: number): number {
  return (buf[i]! << 24) | (buf[i + 1]! << 16) | (buf[i + 2]! << 8) | buf[i + 3]!;
}

function readU32(buf: Uint8Array, i: number): number {
  return readI32(buf, i) >>> 0;
}
