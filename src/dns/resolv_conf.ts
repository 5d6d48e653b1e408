/**
 * Parser for `/etc/resolv.conf` (resolv.conf(5)). The gateway reads it once at start-up (spec §1.2
 * step 9): its `nameserver` entries are the upstream set of the DNS forwarder (§4.8). A file that
 * cannot be parsed is a fatal start-up error, so errors name the line and what to fix.
 *
 * Rules (glibc's, where they are stricter than needed we are lenient):
 * - `#` or `;` starts a comment, anywhere on a line.
 * - Keywords: `nameserver <ip>`; `search`/`domain`, `options` and unknown keywords are kept or
 *   ignored, never errors.
 * - `nameserver` takes one IPv4 or IPv6 address; extra words after it are ignored (as glibc does).
 *   An IPv6 address may carry a zone id (`fe80::1%eth0`, `fe80::1%2`), which is kept: it is what
 *   makes a link-local nameserver reachable. A zone id on an IPv4 address is an error.
 * - Duplicate nameservers are listed once (first position wins).
 *
 * @module
 */

import { formatIp, type IpFamily, parseIpv4, parseIpv6 } from "../wire/ip_addr.ts";

/** One `nameserver` entry. */
export interface Nameserver {
  /** Canonical address text without zone id. */
  readonly ip: string;
  readonly family: IpFamily;
  /** IPv6 zone id (interface name or index), if given. */
  readonly zone?: string;
}

/** The parts of resolv.conf the gateway cares about. */
export interface ResolvConf {
  /** Nameservers in file order, without duplicates. */
  readonly nameservers: readonly Nameserver[];
  /** `search` (or `domain`) list; informational only. */
  readonly search: readonly string[];
  /** `options` words; informational only. */
  readonly options: readonly string[];
}

/** A resolv.conf that cannot be used. `line` is 1-based, or 0 for whole-file problems. */
export class ResolvConfError extends SyntaxError {
  readonly line: number;

  constructor(message: string, line: number) {
    super(message);
    this.name = "ResolvConfError";
    this.line = line;
  }
}

const ZONE_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * Parses resolv.conf text.
 * @param options.requireNameserver when true (the default) a file without any `nameserver` line is
 *   an error: the forwarder would answer every query with SERVFAIL.
 * @throws ResolvConfError naming the line for a bad `nameserver` entry, or for no nameserver at all
 */
export function parseResolvConf(text: string, options: { requireNameserver?: boolean } = {}): ResolvConf {
  const nameservers: Nameserver[] = [];
  const seen = new Set<string>();
  let search: string[] = [];
  const opts: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const content = stripComment(lines[i]!).trim();
    if (content === "") continue;
    const words = content.split(/\s+/);
    const keyword = words[0]!;
    if (keyword === "nameserver") {
      if (words.length < 2) {
        throw new ResolvConfError(
          `resolv.conf line ${lineNo}: "nameserver" needs an IP address, e.g. "nameserver 1.1.1.1"`,
          lineNo,
        );
      }
      const ns = parseNameserverAddress(words[1]!, lineNo);
      const key = nameserverHost(ns);
      if (!seen.has(key)) {
        seen.add(key);
        nameservers.push(ns);
      }
    } else if (keyword === "search" || keyword === "domain") {
      // The last search/domain line wins (resolv.conf(5)).
      search = words.slice(1);
    } else if (keyword === "options") {
      opts.push(...words.slice(1));
    }
    // Other keywords (sortlist, lookup, family, ...) do not affect the gateway.
  }
  if (nameservers.length === 0 && options.requireNameserver !== false) {
    throw new ResolvConfError(
      'resolv.conf has no "nameserver" line: add one (e.g. "nameserver 1.1.1.1"), or point the gateway ' +
        "at a resolv.conf that has one",
      0,
    );
  }
  return { nameservers, search, options: opts };
}

/**
 * Parses one nameserver address (`1.2.3.4`, `2001:db8::1`, `fe80::1%eth0`).
 * @throws ResolvConfError when it is not an IP address
 */
export function parseNameserverAddress(text: string, lineNo = 0): Nameserver {
  const where = lineNo > 0 ? `resolv.conf line ${lineNo}: ` : "";
  const pct = text.indexOf("%");
  const addr = pct < 0 ? text : text.slice(0, pct);
  const zone = pct < 0 ? undefined : text.slice(pct + 1);
  if (addr.includes(":")) {
    const bytes = parseIpv6(addr);
    if (!bytes) {
      throw new ResolvConfError(`${where}"${text}" is not a valid IPv6 address`, lineNo);
    }
    if (zone !== undefined && !ZONE_RE.test(zone)) {
      throw new ResolvConfError(
        `${where}"${text}" has an invalid zone id "${zone}" (expected an interface name or index)`,
        lineNo,
      );
    }
    const ip = formatIp(bytes);
    return zone === undefined ? { ip, family: 6 } : { ip, family: 6, zone };
  }
  const bytes = parseIpv4(addr);
  if (!bytes) {
    throw new ResolvConfError(`${where}"${text}" is not an IPv4 or IPv6 address`, lineNo);
  }
  if (zone !== undefined) {
    throw new ResolvConfError(
      `${where}"${text}": zone ids ("%${zone}") are only valid on IPv6 addresses`,
      lineNo,
    );
  }
  return { ip: formatIp(bytes), family: 4 };
}

/** The address as sockets take it: `ip` or `ip%zone`. */
export function nameserverHost(ns: Nameserver): string {
  return ns.zone === undefined ? ns.ip : `${ns.ip}%${ns.zone}`;
}

function stripComment(line: string): string {
  let cut = line.length;
  const hash = line.indexOf("#");
  const semi = line.indexOf(";");
  if (hash >= 0) cut = hash;
  if (semi >= 0 && semi < cut) cut = semi;
  return line.slice(0, cut);
}
