/**
 * Test helpers for the gateway policy: packet builders over the wire codecs, an independent
 * checksum verifier (naive arithmetic, no code shared with src/wire), and small accessors.
 *
 * @module
 */

import { parseIp } from "../../../src/wire/ip_addr.ts";
import { buildUdpPacket } from "../../../src/wire/udp.ts";
import { buildTcpPacket, TCP_FLAG_ACK } from "../../../src/wire/tcp.ts";
import { buildIcmpEchoPacket } from "../../../src/wire/icmp.ts";
import { ClientOnGateway } from "../../../src/gateway/client_on_gateway.ts";
import type { Filter, ResourceDescription } from "../../../src/portal/messages.ts";

export const CLIENT_V4 = "100.64.0.1";
export const CLIENT_V6 = "fd00:2021:1111::1";
export const GATEWAY_V4 = "100.64.0.2";
export const GATEWAY_V6 = "fd00:2021:1111::2";

export const CLIENT_ID = "9d4b79f6-1db7-4cb3-a077-712102204d73";
export const FOO_RESOURCE_ID = "9d4b79f6-1db7-4cb3-a077-712102204d73";
export const BAR_RESOURCE_ID = "ed29c148-2acf-4ceb-8db5-d796c2671631";
export const BAZ_RESOURCE_ID = "40b725b2-5904-46fd-b739-756f7d1cbb88";
export const INTERNET_RESOURCE_ID = "ed29c148-2acf-4ceb-8db5-d796c267163a";

/** A client with the upstream test addresses. */
export function newClient(id = CLIENT_ID, v4 = CLIENT_V4, v6 = CLIENT_V6): ClientOnGateway {
  return new ClientOnGateway(id, { ipv4: v4, ipv6: v6 }, { ipv4: GATEWAY_V4, ipv6: GATEWAY_V6 });
}

export function ip(text: string): Uint8Array {
  const b = parseIp(text);
  if (!b) throw new Error(`bad ip ${text}`);
  return b;
}

export function udp(
  src: string,
  dst: string,
  sport: number,
  dport: number,
  payload = new Uint8Array(8),
): Uint8Array {
  const buf = new Uint8Array(1500);
  const n = buildUdpPacket(buf, 0, ip(src), ip(dst), sport, dport, payload);
  if (n === 0) throw new Error("udp packet does not fit");
  return buf.slice(0, n);
}

export function tcp(
  src: string,
  dst: string,
  sport: number,
  dport: number,
  flags = TCP_FLAG_ACK,
  payload = new Uint8Array(100),
): Uint8Array {
  const buf = new Uint8Array(1500);
  const n = buildTcpPacket(buf, 0, ip(src), ip(dst), sport, dport, 1000, 2000, flags, 65535, payload);
  if (n === 0) throw new Error("tcp packet does not fit");
  return buf.slice(0, n);
}

export function icmpEcho(src: string, dst: string, id: number, seq: number, reply = false): Uint8Array {
  const buf = new Uint8Array(1500);
  const n = buildIcmpEchoPacket(buf, 0, ip(src), ip(dst), reply, id, seq, new Uint8Array([1, 2, 3, 4]));
  if (n === 0) throw new Error("icmp packet does not fit");
  return buf.slice(0, n);
}

export function cidr(id: string, address: string, filters: Filter[], name = "cidr"): ResourceDescription {
  const [addr, prefix] = address.split("/");
  const bytes = ip(addr!);
  return {
    type: "cidr",
    id,
    address: { family: bytes.length === 4 ? 4 : 6, ip: addr!, prefix: Number(prefix) },
    name,
    filters,
  };
}

export function dns(id: string, address: string, filters: Filter[], name = "dns"): ResourceDescription {
  return { type: "dns", id, address, name, filters };
}

export function internet(id = INTERNET_RESOURCE_ID): ResourceDescription {
  return { type: "internet", id };
}

export function tcpFilter(start: number, end: number): Filter {
  return { protocol: "tcp", portRangeStart: start, portRangeEnd: end };
}

export function udpFilter(start: number, end: number): Filter {
  return { protocol: "udp", portRangeStart: start, portRangeEnd: end };
}

export const ICMP_FILTER: Filter = { protocol: "icmp" };

// ---------------------------------------------------------------------------------------------
// Field accessors (independent of src/)

export function version(p: Uint8Array): number {
  return p[0]! >> 4;
}

export function ipHeaderLen(p: Uint8Array): number {
  return version(p) === 4 ? (p[0]! & 15) * 4 : 40;
}

export function srcIp(p: Uint8Array): string {
  return version(p) === 4 ? fmt(p.subarray(12, 16)) : fmt(p.subarray(8, 24));
}

export function dstIp(p: Uint8Array): string {
  return version(p) === 4 ? fmt(p.subarray(16, 20)) : fmt(p.subarray(24, 40));
}

export function ttl(p: Uint8Array): number {
  return version(p) === 4 ? p[8]! : p[7]!;
}

export function protocol(p: Uint8Array): number {
  return version(p) === 4 ? p[9]! : p[6]!;
}

export function totalLen(p: Uint8Array): number {
  return version(p) === 4 ? u16(p, 2) : 40 + u16(p, 4);
}

/** TCP/UDP source port, or ICMP byte 4-5 (identifier). */
export function l4Word(p: Uint8Array, wordOff: number): number {
  return u16(p, ipHeaderLen(p) + wordOff);
}

export function srcPort(p: Uint8Array): number {
  return l4Word(p, 0);
}

export function dstPort(p: Uint8Array): number {
  return l4Word(p, 2);
}

export function icmpTypeOf(p: Uint8Array): number {
  return p[ipHeaderLen(p)]!;
}

export function icmpCodeOf(p: Uint8Array): number {
  return p[ipHeaderLen(p) + 1]!;
}

export function u16(p: Uint8Array, i: number): number {
  return p[i]! * 256 + p[i + 1]!;
}

function fmt(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join(".");
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  // RFC 5952: compress the longest run of two or more zero groups (independent of src/wire).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === "0") j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return words.join(":");
  return `${words.slice(0, best).join(":")}::${words.slice(best + bestLen).join(":")}`;
}

// ---------------------------------------------------------------------------------------------
// Independent checksum verification

function onesSum(bytes: number[]): number {
  let total = 0;
  for (let i = 0; i < bytes.length; i += 2) total += bytes[i]! * 256 + (bytes[i + 1] ?? 0);
  while (total > 0xffff) total = (total % 0x10000) + Math.floor(total / 0x10000);
  return total;
}

function sumsToAllOnes(bytes: number[]): boolean {
  return onesSum(bytes) === 0xffff;
}

/**
 * True when the IPv4 header checksum (if IPv4) and the TCP/UDP/ICMP checksum verify. No IPv6
 * extension headers.
 */
export function checksumsValid(p: Uint8Array): boolean {
  const b = Array.from(p.subarray(0, totalLen(p)));
  const v = version(p);
  const hl = ipHeaderLen(p);
  if (v === 4 && !sumsToAllOnes(b.slice(0, hl))) return false;
  const proto = protocol(p);
  const l4 = b.slice(hl);
  if (v === 4 && proto === 1) return sumsToAllOnes(l4);
  if (proto !== 6 && proto !== 17 && proto !== 58) return true;
  if (v === 4 && proto === 17 && l4[6] === 0 && l4[7] === 0) return true;
  const len = l4.length;
  const pseudo = v === 4
    ? [...b.slice(12, 20), 0, proto, len >> 8, len & 255]
    : [...b.slice(8, 40), 0, 0, len >> 8, len & 255, 0, 0, 0, proto];
  return sumsToAllOnes([...pseudo, ...l4]);
}
