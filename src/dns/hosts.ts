/**
 * Parser for `/etc/hosts` (hosts(5)), so DNS-resource names resolve like upstream's `getaddrinfo`
 * (spec §4.6): with the usual `hosts: files dns` order, a name listed in the hosts file for the
 * requested family is answered from the file and DNS is not asked; a name that is absent (for that
 * family) falls through to DNS.
 *
 * Format: `<address> <canonical name> [aliases...]`, `#` starts a comment. Lines whose address does
 * not parse are skipped, as glibc does. Names compare case-insensitively and a trailing dot is
 * ignored. An IPv6 zone id on an address is dropped (a zone is meaningless to the NAT that uses the
 * result).
 *
 * @module
 */

import { formatIp, type IpFamily, parseIpv4, parseIpv6 } from "../wire/ip_addr.ts";

/** Name → addresses per family, from a hosts file. */
export class HostsTable {
  readonly #v4 = new Map<string, string[]>();
  readonly #v6 = new Map<string, string[]>();

  /** Addresses listed for `name` in `family`, in file order (empty when none). */
  lookup(name: string, family: IpFamily): readonly string[] {
    const map = family === 4 ? this.#v4 : this.#v6;
    return map.get(normalizeHostName(name)) ?? [];
  }

  /** Number of distinct (name, family) entries. */
  get size(): number {
    return this.#v4.size + this.#v6.size;
  }

  /** Adds one mapping (used by the parser). Duplicate addresses for a name are listed once. */
  add(name: string, ip: string, family: IpFamily): void {
    const map = family === 4 ? this.#v4 : this.#v6;
    const key = normalizeHostName(name);
    if (key === "") return;
    const list = map.get(key);
    if (!list) map.set(key, [ip]);
    else if (!list.includes(ip)) list.push(ip);
  }
}

/** Parses hosts-file text. Never throws: malformed lines are skipped. */
export function parseHosts(text: string): HostsTable {
  const table = new HostsTable();
  for (const raw of text.split(/\r?\n/)) {
    const hash = raw.indexOf("#");
    const line = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (line === "") continue;
    const words = line.split(/\s+/);
    if (words.length < 2) continue;
    const parsed = parseHostAddress(words[0]!);
    if (!parsed) continue;
    for (let i = 1; i < words.length; i++) table.add(words[i]!, parsed.ip, parsed.family);
  }
  return table;
}

/** Lower-case, without one trailing dot: how names are compared. */
export function normalizeHostName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith(".") ? lower.slice(0, -1) : lower;
}

function parseHostAddress(text: string): { ip: string; family: IpFamily } | null {
  if (text.includes(":")) {
    const pct = text.indexOf("%");
    const bytes = parseIpv6(pct < 0 ? text : text.slice(0, pct));
    return bytes ? { ip: formatIp(bytes), family: 6 } : null;
  }
  const bytes = parseIpv4(text);
  return bytes ? { ip: formatIp(bytes), family: 4 } : null;
}
