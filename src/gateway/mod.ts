/**
 * Per-client gateway policy (sans-IO): resources and their filters, longest-prefix filter tables,
 * DNS resource patterns, the DNS-resource NAT, the p2p control protocol bodies, and the two packet
 * paths of `ClientOnGateway` (client → resource, resource → client). Pure: no I/O, clock or
 * randomness; the packet paths allocate nothing per packet.
 *
 * @module
 */

export * from "./client_on_gateway.ts";
export * from "./dns_pattern.ts";
export * from "./filter_engine.ts";
export * from "./ip_network_table.ts";
export * from "./nat_table.ts";
export * from "./p2p_control.ts";
export * from "./packet_policy.ts";
export * from "./resources.ts";
