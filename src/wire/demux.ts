/**
 * Classifies a datagram received on the gateway's single UDP socket (spec §3.4, RFC 7983 first-byte
 * ranges) without parsing it. Routing (which relay, which ICE agent, which WireGuard peer) belongs
 * to the node; this is the cheap, exact first step.
 *
 * Order of the rules:
 * 1. Source port 3478 (a relay): first byte 0x00–0x03 and a plausible STUN header → {@link DatagramKind.RelayStun};
 *    first byte 0x40–0x4F and a valid ChannelData frame → {@link DatagramKind.ChannelData}; anything else from
 *    port 3478 falls through to rule 2 unchanged.
 * 2. A plausible STUN header → {@link DatagramKind.Stun} (ICE checks).
 * 3. A WireGuard message (boringtun `parse_incoming_packet`: little-endian u32 type 1 with 148 bytes,
 *    2 with 92, 3 with 64, 4 with at least 32) → {@link DatagramKind.WireGuard}.
 * 4. Otherwise {@link DatagramKind.Garbage}.
 *
 * Datagrams longer than {@link MAX_FZ_PAYLOAD_LEN} are {@link DatagramKind.Oversized} (spec §3.1: dropped
 * before any processing).
 *
 * A RelayStun/Stun datagram that then fails the full STUN decode continues at rule 3 (spec §3.4
 * "continue at step 2", and the ICE parser would refuse it too): check it with {@link isWireGuard}.
 * A ChannelData datagram whose relay or channel is unknown is dropped (spec §3.4).
 *
 * @module
 */

import { channelDataChannel } from "./channel_data.ts";
import { looksLikeStun } from "./stun.ts";
import {
  WG_COOKIE_REPLY_LEN,
  WG_DATA_MIN_LEN,
  WG_HANDSHAKE_INIT_LEN,
  WG_HANDSHAKE_RESPONSE_LEN,
  WG_TYPE_COOKIE_REPLY,
  WG_TYPE_DATA,
  WG_TYPE_HANDSHAKE_INIT,
  WG_TYPE_HANDSHAKE_RESPONSE,
} from "./wireguard.ts";

/** Result codes of {@link classifyDatagram}. */
export const DatagramKind = {
  Garbage: 0,
  /** STUN/TURN from port 3478: offer to the allocation whose server address matches the source. */
  RelayStun: 1,
  /** TURN ChannelData from port 3478: unwrap with the matching allocation. */
  ChannelData: 2,
  /** STUN not from a relay: offer to the ICE agents. */
  Stun: 3,
  WireGuard: 4,
  Oversized: 5,
} as const;
export type DatagramKind = (typeof DatagramKind)[keyof typeof DatagramKind];

/** The port relays are contacted on (and send from). */
export const TURN_SERVER_PORT = 3478;
/** Largest datagram processed: 1280 (IP) + 32 (WireGuard) + 4 (ChannelData). */
export const MAX_FZ_PAYLOAD_LEN = 1316;

/** Classifies `buf[off, off + len)` received from `sourcePort`. Pure integer work; no allocation. */
export function classifyDatagram(
  buf: Uint8Array,
  off: number,
  len: number,
  sourcePort: number,
): DatagramKind {
  if (len > MAX_FZ_PAYLOAD_LEN) return DatagramKind.Oversized;
  if (len <= 0) return DatagramKind.Garbage;
  const first = buf[off]!;
  if (sourcePort === TURN_SERVER_PORT) {
    if (first <= 0x03) {
      if (looksLikeStun(buf, off, len)) return DatagramKind.RelayStun;
    } else if (first >= 0x40 && first <= 0x4f) {
      if (channelDataChannel(buf, off, len) >= 0) return DatagramKind.ChannelData;
    }
  }
  if (first <= 0x03 && looksLikeStun(buf, off, len)) return DatagramKind.Stun;
  return isWireGuard(buf, off, len) ? DatagramKind.WireGuard : DatagramKind.Garbage;
}

/** True when the message type and length fit one of the four WireGuard messages. */
export function isWireGuard(buf: Uint8Array, off: number, len: number): boolean {
  if (len < 4 || buf[off + 1] !== 0 || buf[off + 2] !== 0 || buf[off + 3] !== 0) return false;
  switch (buf[off]) {
    case WG_TYPE_HANDSHAKE_INIT:
      return len === WG_HANDSHAKE_INIT_LEN;
    case WG_TYPE_HANDSHAKE_RESPONSE:
      return len === WG_HANDSHAKE_RESPONSE_LEN;
    case WG_TYPE_COOKIE_REPLY:
      return len === WG_COOKIE_REPLY_LEN;
    case WG_TYPE_DATA:
      return len >= WG_DATA_MIN_LEN;
    default:
      return false;
  }
}
