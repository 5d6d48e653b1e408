/**
 * ECN between the outer UDP datagram and the inner IP packet (spec §4.2 step 6, §4.11): the outer
 * header carries the inner packet's ECN bits on send, and on receive a Congestion Experienced mark
 * on the outer header is copied onto an ECN-capable inner packet (only ECT → CE upgrades).
 * Hot path: header byte arithmetic, no parse, no allocation.
 *
 * @module
 */

import { checksumUpdate16 } from "./checksum.ts";

export const ECN_NOT_ECT = 0;
export const ECN_ECT1 = 1;
export const ECN_ECT0 = 2;
export const ECN_CE = 3;

const IPV4_CHECKSUM_OFF = 10;

/** The ECN bits of the IP packet at `buf[off]` (0 for anything that is not IPv4/IPv6). */
export function innerEcn(buf: Uint8Array, off: number, len: number): number {
  if (len < 2) return ECN_NOT_ECT;
  const v = buf[off]! >> 4;
  if (v === 4) return buf[off + 1]! & 3;
  if (v === 6) return (buf[off + 1]! >> 4) & 3;
  return ECN_NOT_ECT;
}

/**
 * Applies the outer ECN bits to the inner packet at `buf[off]`: when the outer header says CE and the
 * inner packet is ECT(0) or ECT(1), the inner packet becomes CE (IPv4 header checksum updated
 * incrementally). Anything else is left alone. Returns true when the packet changed.
 */
export function applyOuterEcn(buf: Uint8Array, off: number, len: number, outerEcn: number): boolean {
  if (outerEcn !== ECN_CE || len < 20) return false;
  const v = buf[off]! >> 4;
  if (v === 4) {
    const ecn = buf[off + 1]! & 3;
    if (ecn !== ECN_ECT0 && ecn !== ECN_ECT1) return false;
    const oldWord = (buf[off]! << 8) | buf[off + 1]!;
    buf[off + 1] = buf[off + 1]! | ECN_CE;
    const newWord = (buf[off]! << 8) | buf[off + 1]!;
    const sum = (buf[off + IPV4_CHECKSUM_OFF]! << 8) | buf[off + IPV4_CHECKSUM_OFF + 1]!;
    const updated = checksumUpdate16(sum, oldWord, newWord);
    buf[off + IPV4_CHECKSUM_OFF] = updated >> 8;
    buf[off + IPV4_CHECKSUM_OFF + 1] = updated & 0xff;
    return true;
  }
  if (v === 6 && len >= 40) {
    const ecn = (buf[off + 1]! >> 4) & 3;
    if (ecn !== ECN_ECT0 && ecn !== ECN_ECT1) return false;
    buf[off + 1] = buf[off + 1]! | (ECN_CE << 4);
    return true;
  }
  return false;
}
