/**
 * Pure DNS helpers for the gateway's control plane (spec §4.6, §4.8): a minimal wire codec for the
 * forwarder, resolv.conf and hosts-file parsers, and the resolution cache with request coalescing.
 * The sockets live in `src/io/dns_forwarder.ts` and `src/io/dns_resolver.ts`.
 *
 * @module
 */

export * from "./hosts.ts";
export * from "./message.ts";
export * from "./resolution_cache.ts";
export * from "./resolv_conf.ts";
