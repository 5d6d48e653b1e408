/**
 * The cache in front of DNS-resource resolution (spec §4.6): one entry per domain, kept for 30 s
 * after the lookup finished; concurrent lookups of the same domain share one resolver call; failures
 * are not cached; and at most 1000 requests wait at any time (upstream bounds its resolution futures
 * the same way, counting every request, coalesced or not; cache hits answer at once and do not
 * count).
 *
 * The resolver call itself is injected (`resolve(key)`), and so is the clock, so the logic is tested
 * without sockets or real time. Keys are used as given: normalise them first (see
 * `normalizeDomain` in `src/io/dns_resolver.ts`).
 *
 * @module
 */

import type { Instant, Millis } from "../time.ts";

/** How long a successful resolution is reused (spec §4.6). */
export const DNS_CACHE_TTL_MS: Millis = 30_000;

/** At most this many resolution requests may be outstanding (spec §4.6). */
export const MAX_CONCURRENT_RESOLUTIONS = 1000;

/** A request refused because {@link MAX_CONCURRENT_RESOLUTIONS} were already outstanding. */
export class ResolutionLimitError extends Error {
  readonly limit: number;

  constructor(limit: number) {
    super(`Too many concurrent DNS resolutions (limit ${limit}); request dropped`);
    this.name = "ResolutionLimitError";
    this.limit = limit;
  }
}

/** Options for {@link ResolutionCache}. */
export interface ResolutionCacheOptions {
  /** Monotonic milliseconds; read when a request arrives and when a lookup finishes. */
  readonly clock: () => Instant;
  /** Defaults to {@link DNS_CACHE_TTL_MS}. */
  readonly ttlMs?: Millis;
  /** Defaults to {@link MAX_CONCURRENT_RESOLUTIONS}. */
  readonly maxConcurrent?: number;
}

interface Entry<T> {
  readonly value: T;
  readonly expiresAt: Instant;
}

/** A TTL cache with request coalescing and a bound on outstanding requests. */
export class ResolutionCache<T> {
  readonly #clock: () => Instant;
  readonly #ttlMs: Millis;
  readonly #maxConcurrent: number;
  readonly #entries = new Map<string, Entry<T>>();
  readonly #inFlight = new Map<string, Promise<T>>();
  #pending = 0;
  #nextSweepAt: Instant;

  constructor(options: ResolutionCacheOptions) {
    this.#clock = options.clock;
    this.#ttlMs = options.ttlMs ?? DNS_CACHE_TTL_MS;
    this.#maxConcurrent = options.maxConcurrent ?? MAX_CONCURRENT_RESOLUTIONS;
    if (!(this.#ttlMs >= 0)) throw new RangeError(`ttlMs must be >= 0, got ${this.#ttlMs}`);
    if (!Number.isInteger(this.#maxConcurrent) || this.#maxConcurrent < 1) {
      throw new RangeError(`maxConcurrent must be a positive integer, got ${this.#maxConcurrent}`);
    }
    this.#nextSweepAt = this.#clock() + this.#ttlMs;
  }

  /**
   * The cached value for `key` if fresh; otherwise joins the lookup in flight for `key`, or starts
   * one with `resolve(key)`. Rejects with {@link ResolutionLimitError} (without calling `resolve`)
   * when the limit of outstanding requests is reached, and with `resolve`'s error when it fails
   * (nothing is cached then, so the next request tries again).
   */
  get(key: string, resolve: (key: string) => Promise<T>): Promise<T> {
    const now = this.#clock();
    if (now >= this.#nextSweepAt) this.#sweep(now);
    const hit = this.#entries.get(key);
    if (hit && now < hit.expiresAt) return Promise.resolve(hit.value);
    if (this.#pending >= this.#maxConcurrent) {
      return Promise.reject(new ResolutionLimitError(this.#maxConcurrent));
    }
    this.#pending++;
    const shared = this.#inFlight.get(key) ?? this.#start(key, resolve);
    return shared.finally(() => {
      this.#pending--;
    });
  }

  /** The fresh cached value for `key`, if any (does not start a lookup). */
  peek(key: string): T | undefined {
    const hit = this.#entries.get(key);
    return hit && this.#clock() < hit.expiresAt ? hit.value : undefined;
  }

  /** Requests currently waiting for a lookup (coalesced ones included). */
  get pending(): number {
    return this.#pending;
  }

  /** Distinct lookups currently running. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Cached entries (fresh or not yet swept). */
  get size(): number {
    return this.#entries.size;
  }

  /** Forgets every cached value (lookups in flight still complete and are cached). */
  clear(): void {
    this.#entries.clear();
  }

  #start(key: string, resolve: (key: string) => Promise<T>): Promise<T> {
    let started: Promise<T>;
    try {
      started = resolve(key);
    } catch (e) {
      started = Promise.reject(e);
    }
    const tracked = Promise.resolve(started).then(
      (value) => {
        this.#inFlight.delete(key);
        this.#entries.set(key, { value, expiresAt: this.#clock() + this.#ttlMs });
        return value;
      },
      (error: unknown) => {
        this.#inFlight.delete(key);
        throw error;
      },
    );
    this.#inFlight.set(key, tracked);
    return tracked;
  }

  #sweep(now: Instant): void {
    for (const [key, entry] of this.#entries) {
      if (now >= entry.expiresAt) this.#entries.delete(key);
    }
    this.#nextSweepAt = now + this.#ttlMs;
  }
}
