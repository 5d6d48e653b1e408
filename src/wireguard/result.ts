/**
 * Result codes, drop reasons and the reusable out-object of the {@link Tunnel} methods. Codes instead of
 * per-packet unions: the data path allocates nothing (boringtun's borrowed `TunnResult`).
 *
 * @module
 */

/** What a tunnel call produced. */
export const WgResult = {
  /** Nothing to do (a keepalive was received, a packet was queued, no timer was due). */
  Done: 0,
  /** Send `out.buf[out.off, out.off + out.len)` to the peer (`out.messageType` says which message). */
  WriteToNetwork: 1,
  /** Write the decrypted IP packet `out.buf[out.off, out.off + out.len)` to the TUN device. */
  WriteToTunnel: 2,
  /** The input was dropped; `out.dropReason` says why. */
  Drop: 3,
  /** The connection expired (no session for 3 × REJECT_AFTER_TIME, or the handshake gave up). */
  Expired: 4,
} as const;
export type WgResult = (typeof WgResult)[keyof typeof WgResult];

/** Why a packet was dropped (for logs and metrics; names in {@link DROP_REASON_NAMES}). */
export const DropReason = {
  None: 0,
  /** Known type but the wrong length. */
  Truncated: 1,
  /** Unknown message type or non-zero reserved bytes. */
  UnknownType: 2,
  /** MAC1 does not verify with our public key. */
  BadMac1: 3,
  /** Under load and MAC2 is missing or wrong (a cookie reply is sent when the source is known). */
  CookieRequired: 4,
  /** AEAD authentication failed. */
  DecryptFailed: 5,
  /** Data counter already received. */
  Replayed: 6,
  /** Data counter below the replay window. */
  ReplayTooOld: 7,
  /** The initiation's static key is not this tunnel's peer. */
  WrongKey: 8,
  /** No tunnel has the initiation's static key (routing by key, spec §3.4). */
  UnknownStaticKey: 9,
  /** The initiation's TAI64N timestamp is not newer than the last accepted one (replay). */
  StaleTimestamp: 10,
  /** No session for the receiver index. */
  NoSession: 11,
  /** The receiver index is not ours. */
  InvalidReceiverIndex: 12,
  /** The session (or connection) has expired. */
  Expired: 13,
  /** Under load and the source address is unknown, so no cookie can be sent. */
  RateLimited: 14,
  /** A response or cookie reply we were not waiting for. */
  UnexpectedPacket: 15,
  /** The decrypted payload is not an IPv4/IPv6 packet (or is shorter than its header says). */
  InvalidPacket: 16,
  /** The data counter is beyond REJECT_AFTER_MESSAGES. */
  InvalidCounter: 17,
  /** An X25519 result was all zero (low-order point). */
  InvalidPublicKey: 18,
  /** No session and the queue of packets waiting for one is full. */
  QueueFull: 19,
  /** The caller's buffer has no room for the message (a caller bug). */
  BufferTooSmall: 20,
} as const;
export type DropReason = (typeof DropReason)[keyof typeof DropReason];

/** `DROP_REASON_NAMES[reason]` is the reason's name. */
export const DROP_REASON_NAMES: readonly string[] = reasonNames();

function reasonNames(): string[] {
  const names: string[] = [];
  for (const [name, code] of Object.entries(DropReason)) names[code] = name;
  return names;
}

/** Number of drop reasons (size of a per-reason counter array). */
export const DROP_REASON_COUNT = DROP_REASON_NAMES.length;

/** The name of a drop reason, e.g. `"Replayed"`. */
export function dropReasonName(reason: number): string {
  return DROP_REASON_NAMES[reason] ?? `Unknown(${reason})`;
}

const EMPTY = new Uint8Array(0);

/**
 * Reusable out-object: allocate one per caller and pass it to every call. Only the fields relevant to
 * the returned {@link WgResult} are meaningful.
 */
export class WgOut {
  /** The buffer holding the output (the caller's, or a tunnel-owned one for handshake messages). */
  buf: Uint8Array = EMPTY;
  /** Offset of the output in {@link buf}. */
  off = 0;
  /** Length of the output. */
  len = 0;
  /** WireGuard message type of a `WriteToNetwork` output (1 init, 2 response, 3 cookie reply, 4 data). */
  messageType = 0;
  /** IP version (4 or 6) of a `WriteToTunnel` output. */
  ipVersion = 0;
  /** Reason of a `Drop`. */
  dropReason: DropReason = DropReason.None;

  /** Resets every field (called by the tunnel at the start of each call). */
  clear(): void {
    this.buf = EMPTY;
    this.off = 0;
    this.len = 0;
    this.messageType = 0;
    this.ipVersion = 0;
    this.dropReason = DropReason.None;
  }
}
