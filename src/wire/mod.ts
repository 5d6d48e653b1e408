/**
 * Pure wire codecs over `(Uint8Array, offset)`: IP addresses, IPv4/IPv6/UDP/TCP/ICMP headers and
 * checksums, the version-independent packet view with NAT rewrites and the p2p control packet,
 * STUN, TURN ChannelData, WireGuard message layouts, TUN segmentation offload, and the UDP
 * datagram demultiplexer. No I/O, clock or randomness; hot-path functions allocate nothing.
 *
 * @module
 */

export * from "./ip_addr.ts";
export * from "./checksum.ts";
export * from "./ipv4.ts";
export * from "./ipv6.ts";
export * from "./udp.ts";
export * from "./tcp.ts";
export * from "./icmp.ts";
export * from "./ip_packet.ts";
export * from "./stun.ts";
export * from "./channel_data.ts";
export * from "./wireguard.ts";
// demux.ts repeats the WireGuard message sizes of wireguard.ts; re-export only its own names.
export {
  classifyDatagram,
  DatagramKind,
  isWireGuard,
  MAX_FZ_PAYLOAD_LEN,
  TURN_SERVER_PORT,
} from "./demux.ts";
export * from "./tso.ts";
export * from "./ecn.ts";
