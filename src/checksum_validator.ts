/**
 * `--validate-checksums` (spec §1.1): wraps a {@link PacketCore} and logs a WARN for every packet it
 * hands to TUN whose IPv4 header, TCP, UDP or ICMP checksum is wrong. The packet is still written
 * (a debug aid, as upstream). Pure; costs one parse and checksum pass per packet when enabled.
 *
 * @module
 */

import { logger } from "./log.ts";
import type { PeerAddrView } from "./p2p/peer_addr.ts";
import { type CoreOut, CoreResult, type CoreTransmit, type PacketCore } from "./packet_core.ts";
import { checksumsOk, describeIpPacket, IpPacketInfo, parseIpPacket, ParseResult } from "./wire/ip_packet.ts";

const log = logger("fz_gateway::validate_checksums");

export class ChecksumValidatingCore implements PacketCore {
  readonly #inner: PacketCore;
  readonly #info = new IpPacketInfo();
  /** Packets written to TUN with a bad checksum. */
  invalid = 0;

  constructor(inner: PacketCore) {
    this.#inner = inner;
  }

  get publicKey(): Uint8Array {
    return this.#inner.publicKey;
  }

  handleDatagram(
    buf: Uint8Array,
    off: number,
    len: number,
    from: PeerAddrView,
    local: PeerAddrView,
    out: CoreOut,
    now: number,
  ): CoreResult {
    const r = this.#inner.handleDatagram(buf, off, len, from, local, out, now);
    if (r === CoreResult.ToTun) this.#check(out.buf, out.off, out.len);
    return r;
  }

  handleTunPacket(buf: Uint8Array, off: number, len: number, out: CoreOut, now: number): CoreResult {
    const r = this.#inner.handleTunPacket(buf, off, len, out, now);
    if (r === CoreResult.ToTun) this.#check(out.buf, out.off, out.len);
    return r;
  }

  handleTimeout(now: number): void {
    this.#inner.handleTimeout(now);
  }

  pollTimeout(): number {
    return this.#inner.pollTimeout();
  }

  pollTransmit(): CoreTransmit | undefined {
    return this.#inner.pollTransmit();
  }

  #check(buf: Uint8Array, off: number, len: number): void {
    const info = this.#info;
    if (parseIpPacket(buf, off, len, info) !== ParseResult.Ok) return; // not ours to judge
    if (checksumsOk(buf, info)) return;
    this.invalid++;
    log.warn("Packet with invalid checksum written to TUN", { packet: describeIpPacket(buf, info) });
  }
}
