/**
 * Resolution of DNS-resource domains on the main thread (spec §4.6): A and AAAA looked up
 * separately, the result is the IPv6 addresses followed by the IPv4 ones, and it succeeds if either
 * family has an address. Results are cached for 30 s per domain, concurrent requests for a domain
 * share one lookup, failures are not cached, each lookup times out after 10 s, and at most 1000
 * requests may be outstanding (the excess is dropped with a WARN).
 *
 * Differences from upstream's `getaddrinfo` (glibc, `hosts: files dns`), and what is done about them:
 * - `Deno.resolveDns` asks DNS only; it never reads `/etc/hosts`. We read `/etc/hosts` ourselves
 *   (re-read when it changes) and, per family, answer from it when the name is listed there, just as
 *   nss `files` before `dns` would. Other NSS sources (mDNS, `myhostname`, LDAP, systemd-resolved's
 *   synthesised names) are not consulted.
 * - An IP literal resolves to itself in its own family (getaddrinfo without AI_V4MAPPED), never via DNS.
 * - `Deno.resolveDns` follows `/etc/resolv.conf` itself (nameservers, search list, ndots), or the
 *   `nameServer` option when given.
 * - The address order within a family is the DNS answer order; glibc would apply RFC 6724 sorting.
 *   Upstream only uses the set of addresses (round-robin pairing with proxy IPs), so this rarely
 *   shows.
 * - The 10 s timeout applies to the shared lookup: a request that joins a lookup already in flight
 *   waits for that lookup's remaining time.
 *
 * @module
 */

import { HostsTable, normalizeHostName, parseHosts } from "../dns/hosts.ts";
import {
  DNS_CACHE_TTL_MS,
  MAX_CONCURRENT_RESOLUTIONS,
  ResolutionCache,
  ResolutionLimitError,
} from "../dns/resolution_cache.ts";
import { logger } from "../log.ts";
import type { Instant, Millis } from "../time.ts";
import { canonicalIp, type IpFamily, parseIpv4, parseIpv6 } from "../wire/ip_addr.ts";

export { ResolutionLimitError } from "../dns/resolution_cache.ts";

const log = logger("fz_gateway::dns");

/** Each lookup (both families) gives up after this long (spec §4.6). */
export const DNS_RESOLVE_TIMEOUT_MS: Millis = 10_000;

/** Looks up one record type; resolves with address strings, rejects on NXDOMAIN/NODATA/errors. */
export type AddressLookup = (name: string, type: "A" | "AAAA", signal: AbortSignal) => Promise<string[]>;

/** Options for {@link DnsResolver}; every default is the spec's. */
export interface DnsResolverOptions {
  /** Defaults to {@link DNS_RESOLVE_TIMEOUT_MS}. */
  readonly timeoutMs?: Millis;
  /** Defaults to 30 s. */
  readonly cacheTtlMs?: Millis;
  /** Defaults to 1000. */
  readonly maxConcurrent?: number;
  /** Hosts file consulted before DNS; `null` disables it. Defaults to `/etc/hosts`. */
  readonly hostsPath?: string | null;
  /** Ask this nameserver instead of the system configuration (passed to `Deno.resolveDns`). */
  readonly nameServer?: { readonly ipAddr: string; readonly port?: number };
  /** Replaces `Deno.resolveDns` (tests). */
  readonly lookup?: AddressLookup;
  /** Monotonic clock; defaults to `performance.now`. */
  readonly clock?: () => Instant;
}

/** Neither family produced an address (or the lookup timed out). */
export class DnsResolutionError extends Error {
  readonly domain: string;

  constructor(domain: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DnsResolutionError";
    this.domain = domain;
  }
}

/**
 * Lower-cases a domain and drops one trailing dot, the cache key and the name looked up.
 * @throws TypeError for an empty name, empty labels or a name over 253 characters
 */
export function normalizeDomain(domain: string): string {
  const name = normalizeHostName(domain.trim());
  if (name === "" || name.length > 253 || name.split(".").some((l) => l === "" || l.length > 63)) {
    throw new TypeError(`Invalid domain name "${domain}"`);
  }
  return name;
}

/** The DNS-resource resolver (see the module documentation for the semantics). */
export class DnsResolver {
  readonly #timeoutMs: Millis;
  readonly #hostsPath: string | null;
  readonly #lookup: AddressLookup;
  readonly #cache: ResolutionCache<string[]>;
  #hosts: { table: HostsTable; mtimeMs: number; size: number } | null = null;

  constructor(options: DnsResolverOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? DNS_RESOLVE_TIMEOUT_MS;
    this.#hostsPath = options.hostsPath === undefined ? "/etc/hosts" : options.hostsPath;
    const nameServer = options.nameServer;
    this.#lookup = options.lookup ?? ((name, type, signal) => denoLookup(name, type, signal, nameServer));
    this.#cache = new ResolutionCache<string[]>({
      clock: options.clock ?? (() => performance.now()),
      ttlMs: options.cacheTtlMs ?? DNS_CACHE_TTL_MS,
      maxConcurrent: options.maxConcurrent ?? MAX_CONCURRENT_RESOLUTIONS,
    });
  }

  /**
   * The addresses of `domain`: IPv6 first, then IPv4, canonical text, no duplicates.
   * @throws DnsResolutionError when neither family has an address or the lookup timed out
   * @throws ResolutionLimitError when 1000 requests are already outstanding (logged at WARN);
   *   upstream drops such a request without answering the client
   * @throws TypeError for a syntactically invalid domain
   */
  async resolve(domain: string): Promise<string[]> {
    const name = normalizeDomain(domain);
    try {
      // The returned array is shared with the cache: hand out copies.
      return [...await this.#cache.get(name, (key) => this.#resolveUncached(key))];
    } catch (e) {
      if (e instanceof ResolutionLimitError) {
        log.warn("Too many concurrent DNS resolutions, dropping request", { domain: name, limit: e.limit });
      }
      throw e;
    }
  }

  /** Requests waiting for a lookup right now. */
  get pending(): number {
    return this.#cache.pending;
  }

  /** Forgets cached results. */
  clearCache(): void {
    this.#cache.clear();
  }

  async #resolveUncached(name: string): Promise<string[]> {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new DnsResolutionError(name, `Resolving "${name}" timed out after ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
    });
    try {
      // The race also covers lookups that ignore the abort signal.
      return await Promise.race([this.#lookupBoth(name, controller.signal), timeout]);
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  }

  async #lookupBoth(name: string, signal: AbortSignal): Promise<string[]> {
    const hosts = await this.#hostsTable();
    const [v6, v4] = await Promise.allSettled([
      this.#family(name, 6, hosts, signal),
      this.#family(name, 4, hosts, signal),
    ]);
    const out: string[] = [];
    for (const r of [v6, v4]) {
      if (r.status !== "fulfilled") continue;
      for (const ip of r.value) if (!out.includes(ip)) out.push(ip);
    }
    if (out.length === 0) {
      throw new DnsResolutionError(
        name,
        `No addresses for "${name}" (AAAA: ${reason(v6)}; A: ${reason(v4)})`,
      );
    }
    if (log.debugEnabled) log.debug("Resolved domain", { domain: name, addresses: out.join(",") });
    return out;
  }

  async #family(name: string, family: IpFamily, hosts: HostsTable, signal: AbortSignal): Promise<string[]> {
    const literal = family === 4 ? parseIpv4(name) : name.includes(":") ? parseIpv6(name) : null;
    if (literal) return [canonicalIp(name)!];
    if (parseIpv4(name) || name.includes(":")) return []; // a literal of the other family
    const fromHosts = hosts.lookup(name, family);
    if (fromHosts.length > 0) return [...fromHosts];
    const answers = await this.#lookup(name, family === 4 ? "A" : "AAAA", signal);
    const out: string[] = [];
    for (const a of answers) {
      const ip = canonicalIp(a);
      if (ip !== null && (ip.includes(":") ? 6 : 4) === family && !out.includes(ip)) out.push(ip);
    }
    return out;
  }

  /** The hosts file, re-parsed only when its mtime or size changed; empty when absent. */
  async #hostsTable(): Promise<HostsTable> {
    if (this.#hostsPath === null) return EMPTY_HOSTS;
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(this.#hostsPath);
    } catch {
      this.#hosts = null;
      return EMPTY_HOSTS;
    }
    const mtimeMs = info.mtime?.getTime() ?? -1;
    if (this.#hosts && this.#hosts.mtimeMs === mtimeMs && this.#hosts.size === info.size) {
      return this.#hosts.table;
    }
    try {
      const table = parseHosts(await Deno.readTextFile(this.#hostsPath));
      this.#hosts = { table, mtimeMs, size: info.size };
      return table;
    } catch (e) {
      log.debug("Failed to read hosts file", { path: this.#hostsPath, error: String(e) });
      return EMPTY_HOSTS;
    }
  }
}

const EMPTY_HOSTS = new HostsTable();

async function denoLookup(
  name: string,
  type: "A" | "AAAA",
  signal: AbortSignal,
  nameServer: { readonly ipAddr: string; readonly port?: number } | undefined,
): Promise<string[]> {
  const options: Deno.ResolveDnsOptions = nameServer
    ? { signal, nameServer: { ipAddr: nameServer.ipAddr, port: nameServer.port ?? 53 } }
    : { signal };
  return await Deno.resolveDns(name, type, options);
}

function reason(r: PromiseSettledResult<string[]>): string {
  if (r.status === "fulfilled") return r.value.length === 0 ? "no records" : "ok";
  const e = r.reason;
  return e instanceof Error ? e.message : String(e);
}
