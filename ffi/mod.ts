/**
 * Deno FFI bindings for the Linux I/O layer: the libc symbol table, struct layouts and ABI
 * constants, errno, rtnetlink, TUN and UDP helpers, and poll/eventfd.
 *
 * Typed batch wrappers built on these live in `src/io/` (`TunDevice`, `UdpSockets`).
 *
 * @module
 */
export * from "./errno.ts";
export { addressOf, closeFd, lastErrno, libc, type LibcSymbols, pointerTo } from "./libc.ts";
export * from "./structs.ts";
export * from "./netlink.ts";
export * from "./poll.ts";
export * from "./tun_linux.ts";
export * from "./udp_linux.ts";
