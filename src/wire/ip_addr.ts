/**
 * IP addresses and socket addresses for the control path (ICE, TURN, portal messages).
 *
 * Addresses are kept as canonical strings (dotted quad; RFC 5952 for IPv6) so they compare with
 * `===` and print as-is. The data path never builds these: it works on raw header bytes.
 *
 * @module
 */

export type IpFamily = 4 | 6;

/** An IP address and a UDP/TCP port. `ip` is canonical (see {@link formatIp}). */
export interface SocketAddr {
  readonly family: IpFamily;
  readonly ip: string;
  readonly port: number;
}

/** Parses a textual IPv4 or IPv6 address into 4 or 16 bytes, or null if it is not one. */
export function parseIp(text: string): Uint8Array | null {
  return text.includes(":") ? parseIpv6(text) : parseIpv4(text);
}

/** Parses dotted-quad IPv4 (no leading zeros beyond "0", no shorthand). */
export function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

/** Parses IPv6 text, including `::` compression and an embedded IPv4 tail. Zone ids are refused. */
export function parseIpv6(text: string): Uint8Array | null {
  if (text.includes("%")) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === "") return [];
    const out: number[] = [];
    const parts = s.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes(".")) {
        const v4 = parseIpv4(p);
        if (!v4) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return null;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = all[i]! >> 8;
    out[2 * i + 1] = all[i]! & 0xff;
  }
  return out;
}

/** Canonical text for 4 or 16 address bytes (RFC 5952: lowercase, longest zero run compressed). */
export function formatIp(bytes: Uint8Array, off = 0, len = bytes.length - off): string {
  if (len === 4) return `${bytes[off]}.${bytes[off + 1]}.${bytes[off + 2]}.${bytes[off + 3]}`;
  if (len !== 16) throw new RangeError(`An IP address has 4 or 16 bytes, got ${len}`);
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((bytes[off + 2 * i]! << 8) | bytes[off + 2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 1; // RFC 5952 4.2.2: a single zero group is not compressed
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(":");
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** The canonical form of a textual address, or null if it does not parse. */
export function canonicalIp(text: string): string | null {
  const b = parseIp(text);
  return b ? formatIp(b) : null;
}

/** The family of a canonical address string. */
export function ipFamily(ip: string): IpFamily {
  return ip.includes(":") ? 6 : 4;
}

/** Builds a {@link SocketAddr}; `ip` may be any valid textual form. Throws TypeError when invalid. */
export function socketAddr(ip: string, port: number): SocketAddr {
  const bytes = parseIp(ip);
  if (!bytes) throw new TypeError(`Invalid IP address "${ip}"`);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`Invalid port ${port}: expected an integer from 0 to 65535`);
  }
  return { family: bytes.length === 4 ? 4 : 6, ip: formatIp(bytes), port };
}

/** Builds a {@link SocketAddr} from raw address bytes (4 or 16) and a port. */
export function socketAddrFromBytes(bytes: Uint8Array, off: number, len: 4 | 16, port: number): SocketAddr {
  return { family: len === 4 ? 4 : 6, ip: formatIp(bytes, off, len), port };
}

/** Parses `"a.b.c.d:port"` or `"[v6]:port"` (the portal's `sock` format); null when invalid. */
export function parseSocketAddr(text: string): SocketAddr | null {
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":") return null;
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!host.includes(":")) return null;
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) return null;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(":")) return null;
  }
  if (!/^[0-9]{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  const bytes = parseIp(host);
  if (!bytes || port > 65535) return null;
  return { family: bytes.length === 4 ? 4 : 6, ip: formatIp(bytes), port };
}

/** `"a.b.c.d:port"` or `"[v6]:port"`. */
export function formatSocketAddr(addr: SocketAddr): string {
  return addr.family === 6 ? `[${addr.ip}]:${addr.port}` : `${addr.ip}:${addr.port}`;
}

/** True when both name the same address and port. */
export function sameSocketAddr(a: SocketAddr, b: SocketAddr): boolean {
  return a.port === b.port && a.ip === b.ip;
}
