/**
 * Sans-IO TURN client (spec §3.5): {@link Allocation} per relay, the {@link Allocations} set with the
 * relay-list rules, channel bookkeeping and the request backoff.
 *
 * @module
 */

export * from "./allocation.ts";
export * from "./allocations.ts";
export * from "./backoff.ts";
export * from "./channel_bindings.ts";
