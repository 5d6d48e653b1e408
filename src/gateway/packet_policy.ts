/**
 * Shared pieces of the two packet paths of `ClientOnGateway` (spec §4.2, §4.3): result codes with
 * names for logs and metrics, the reusable {@link PolicyOutput}, the Firezone address ranges, and
 * the rebuild of ICMP errors for NATed flows (§4.5).
 *
 * Hot path: nothing here allocates per packet.
 *
 * @module
 */

import {
  buildIcmpv4Error,
  buildIcmpv6Error,
  ICMP_HEADER_LEN,
  icmpRestOfHeader,
  icmpv4ErrorRestOfHeader,
  icmpv6ErrorRestOfHeader,
} from "../wire/icmp.ts";
import {
  IpPacketInfo,
  MAX_IP_SIZE_BYTES,
  parseIcmpQuote,
  parseIpPacket,
  ParseResult,
  recomputeChecksums,
  setIpv4Dst,
  setIpv6Dst,
  setSrcL4Id,
} from "../wire/ip_packet.ts";
import { NatTuple } from "./nat_table.ts";

/**
 * Outcome of `translateOutbound` / `translateInbound`. Everything but `Forward`, `ForwardRebuilt`
 * and `P2pControl` is a drop reason. Independently of the code, `out.replyLen > 0` means an ICMP
 * error for the client was written at `out.replyBuf[out.replyOff..]` (send it into the tunnel).
 */
export const PolicyResult = {
  /** Forward the packet, possibly rewritten in place: `buf[off..off+out.len)`. */
  Forward: 0,
  /** Inbound: forward the rebuilt packet at `out.replyBuf[out.replyOff..+out.replyLen)` instead. */
  ForwardRebuilt: 1,
  /** Outbound: a p2p control packet (`out.p2pEvent`); handle it, never forward it. */
  P2pControl: 2,
  /** No resource allows this destination/protocol (outbound: ICMP "prohibited" reply). */
  Filtered: 3,
  /** Outbound: the source is not the client's tunnel address (ICMP "prohibited" reply). */
  NotClientSource: 4,
  /** Outbound: a DNS proxy IP without a translation (ICMP "unreachable" reply). */
  UnknownProxyIp: 5,
  /** Outbound: the real IP is of the other family, no NAT64/46 (ICMP "unreachable" reply). */
  DestinationUnreachable: 6,
  /** Inbound: the reply belongs to an ended NAT session. */
  ExpiredNatSession: 7,
  /** Inbound: the destination is not the client's tunnel address. */
  NotClientDestination: 8,
  /** The NAT cannot handle the protocol (not TCP/UDP/ICMP echo, or an unsupported ICMP type). */
  UnsupportedProtocol: 9,
  /** Outbound: every NAT port for this real IP is taken. */
  NatExhausted: 10,
  /** The packet does not parse (`out.parseResult` says why). */
  Malformed: 11,
  /** Inbound: an ICMP error of a NATed flow that cannot be rebuilt (family mismatch, no room). */
  IcmpErrorUntranslatable: 12,
} as const;
export type PolicyResult = (typeof PolicyResult)[keyof typeof PolicyResult];

/** Number of {@link PolicyResult} codes (size for per-reason counter arrays). */
export const POLICY_RESULT_COUNT = 13;

const POLICY_RESULT_NAMES: string[] = [];
for (const [name, code] of Object.entries(PolicyResult)) POLICY_RESULT_NAMES[code] = name;

/** The name of a {@link PolicyResult} for logs and metrics (`error.type`). */
export function policyResultName(code: number): string {
  return POLICY_RESULT_NAMES[code] ?? "Unknown";
}

/**
 * Reusable in/out object of the packet paths: the caller sets `replyBuf`/`replyOff` once (a region
 * of at least 1280 bytes that does not overlap the packets), the policy fills the rest.
 */
export class PolicyOutput {
  /** Caller-owned region for ICMP replies and rebuilt packets. */
  replyBuf: Uint8Array;
  /** Where in `replyBuf` to write (set by the caller). */
  replyOff: number;
  /** Length written at `replyOff`, 0 if none. */
  replyLen = 0;
  /** Length of the packet to forward in place (the IP total length, without trailing padding). */
  len = 0;
  /** The p2p control event type for {@link PolicyResult.P2pControl}, else -1. */
  p2pEvent = -1;
  /** The parser's verdict for {@link PolicyResult.Malformed} (a `ParseResult`). */
  parseResult: number = ParseResult.Ok;
  /** The filter verdict for {@link PolicyResult.Filtered} (a `FilterVerdict`), else 0. */
  filterVerdict = 0;
  /** The parsed packet (valid after a call, describing the packet as forwarded). */
  readonly info: IpPacketInfo = new IpPacketInfo();
  /** Scratch: a quoted packet. */
  readonly quote: IpPacketInfo = new IpPacketInfo();
  /** Scratch: the rebuilt packet. */
  readonly rebuilt: IpPacketInfo = new IpPacketInfo();
  /** Scratch: the quote inside the rebuilt packet. */
  readonly rebuiltQuote: IpPacketInfo = new IpPacketInfo();
  /** Scratch: a NAT lookup result. */
  readonly nat: NatTuple = new NatTuple();

  constructor(replyBuf: Uint8Array = new Uint8Array(MAX_IP_SIZE_BYTES), replyOff = 0) {
    this.replyBuf = replyBuf;
    this.replyOff = replyOff;
  }

  /** Clears the per-packet outputs (not the reply region). */
  reset(): void {
    this.replyLen = 0;
    this.len = 0;
    this.p2pEvent = -1;
    this.parseResult = ParseResult.Ok;
    this.filterVerdict = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Firezone address ranges (connlib `IPV4_RESOURCES`, `IPV6_RESOURCES`, `IPV4_TUNNEL`, `IPV6_TUNNEL`)

/** DNS resource proxy range `100.96.0.0/11` (network as uint32). */
export const IPV4_DNS_PROXY_NET = 0x64600000;
/** Client/gateway tunnel range `100.64.0.0/11`. */
export const IPV4_TUNNEL_NET = 0x64400000;
const IPV4_SLASH11_MASK = 0xffe00000 | 0;

/** First 13 bytes of `fd00:2021:1111:8000::/107` (byte 13 adds 3 more zero bits). */
const IPV6_DNS_PROXY_PREFIX = new Uint8Array([0xfd, 0x00, 0x20, 0x21, 0x11, 0x11, 0x80, 0, 0, 0, 0, 0, 0]);
/** First 13 bytes of `fd00:2021:1111::/107`. */
const IPV6_TUNNEL_PREFIX = new Uint8Array([0xfd, 0x00, 0x20, 0x21, 0x11, 0x11, 0, 0, 0, 0, 0, 0, 0]);

/** True for IPv4 addresses (uint32 or int32) in the DNS proxy range `100.96.0.0/11`. */
export function isDnsProxy4(addr: number): boolean {
  return (addr & IPV4_SLASH11_MASK) === IPV4_DNS_PROXY_NET;
}

/** True for the IPv6 address at `buf[off..]` in the DNS proxy range `fd00:2021:1111:8000::/107`. */
export function isDnsProxy6(buf: Uint8Array, off: number): boolean {
  return hasPrefix107(buf, off, IPV6_DNS_PROXY_PREFIX);
}

/** True for IPv4 addresses in the tunnel range `100.64.0.0/11`. */
export function isTunnel4(addr: number): boolean {
  return (addr & IPV4_SLASH11_MASK) === IPV4_TUNNEL_NET;
}

/** True for the IPv6 address at `buf[off..]` in the tunnel range `fd00:2021:1111::/107`. */
export function isTunnel6(buf: Uint8Array, off: number): boolean {
  return hasPrefix107(buf, off, IPV6_TUNNEL_PREFIX);
}

/**
 * Small numeric keys for DNS proxy addresses (they stay V8 Smis, so map lookups do not allocate):
 * an IPv4 proxy is its low 21 bits, an IPv6 proxy `2^21 +` its low 21 bits. Call only after
 * {@link isDnsProxy4}/{@link isDnsProxy6}.
 */
export function proxyKey4(addr: number): number {
  return addr & 0x1fffff;
}

/** The proxy key of the IPv6 proxy address at `buf[off..]` (see {@link proxyKey4}). */
export function proxyKey6(buf: Uint8Array, off: number): number {
  return 0x200000 | ((buf[off + 13]! & 0x1f) << 16) | (buf[off + 14]! << 8) | buf[off + 15]!;
}

/** True when a proxy key is an IPv6 one. */
export function isProxyKey6(key: number): boolean {
  return key >= 0x200000;
}

/** The IPv4 proxy address (int32) of an IPv4 proxy key. */
export function proxyAddr4(key: number): number {
  return IPV4_DNS_PROXY_NET | (key & 0x1fffff);
}

/** Writes the 16-byte IPv6 proxy address of `key` (from {@link proxyKey6}) at `out[off..]`. */
export function writeProxyAddr6(key: number, out: Uint8Array, off: number): void {
  for (let i = 0; i < 13; i++) out[off + i] = IPV6_DNS_PROXY_PREFIX[i]!;
  out[off + 13] = (key >>> 16) & 0x1f;
  out[off + 14] = (key >>> 8) & 0xff;
  out[off + 15] = key & 0xff;
}

function hasPrefix107(buf: Uint8Array, off: number, prefix: Uint8Array): boolean {
  for (let i = 0; i < 13; i++) {
    if (buf[off + i] !== prefix[i]) return false;
  }
  return (buf[off + 13]! & 0xe0) === 0;
}

// ---------------------------------------------------------------------------------------------
// ICMP errors of NATed flows (spec §4.5)

/**
 * Rebuilds the ICMP error `outer` (parsed from `buf`, its quote parsed into `quote`) for the client
 * into `out.replyBuf[out.replyOff..]`: same type and code (MTU / pointer kept), source = the proxy
 * IP, destination = the client's tunnel address of that family, TTL 20, payload = the quoted packet
 * with its destination set back to the proxy IP and its source port / ICMP identifier to
 * `insideL4Id`. The quoted headers' checksums are updated along (upstream leaves them stale).
 *
 * For IPv4 pass `proxy4`/`client4` (uint32 or int32); for IPv6 the 16-byte addresses at offset 0 of
 * `proxy6`/`client6`. Hot path: no allocation.
 *
 * @returns the rebuilt length (also in `out.replyLen`), or 0 when the families differ or it does
 *   not fit
 */
export function rebuildNatIcmpError(
  buf: Uint8Array,
  outer: IpPacketInfo,
  quote: IpPacketInfo,
  proxyIsV6: boolean,
  proxy4: number,
  client4: number,
  proxy6: Uint8Array,
  client6: Uint8Array,
  insideL4Id: number,
  out: PolicyOutput,
): number {
  out.replyLen = 0;
  if ((outer.version === 6) !== proxyIsV6 || quote.version !== outer.version) return 0;
  const qOff = outer.l4Off + ICMP_HEADER_LEN;
  const qLen = outer.l4Len - ICMP_HEADER_LEN;
  const rest = icmpRestOfHeader(buf, outer.l4Off);
  const rb = out.replyBuf;
  const ro = out.replyOff;
  let len: number;
  if (outer.version === 4) {
    len = buildIcmpv4Error(
      rb,
      ro,
      proxy4 | 0,
      client4 | 0,
      outer.icmpType,
      outer.icmpCode,
      icmpv4ErrorRestOfHeader(outer.icmpType, outer.icmpCode, rest),
      buf,
      qOff,
      qLen,
    );
  } else {
    len = buildIcmpv6Error(
      rb,
      ro,
      proxy6,
      0,
      client6,
      0,
      outer.icmpType,
      outer.icmpCode,
      icmpv6ErrorRestOfHeader(outer.icmpType, outer.icmpCode, rest),
      buf,
      qOff,
      qLen,
    );
  }
  if (len === 0) return 0;
  const r = out.rebuilt;
  const rq = out.rebuiltQuote;
  if (parseIpPacket(rb, ro, len, r) !== ParseResult.Ok) return 0;
  if (parseIcmpQuote(rb, r, rq) !== ParseResult.Ok) return 0;
  if (outer.version === 4) setIpv4Dst(rb, rq, proxy4);
  else setIpv6Dst(rb, rq, proxy6, 0);
  setSrcL4Id(rb, rq, insideL4Id);
  recomputeChecksums(rb, r);
  out.replyLen = len;
  return len;
}
