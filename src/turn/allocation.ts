/**
 * Sans-IO TURN client: one {@link Allocation} per relay (spec §3.5, Firezone snownet `Allocation`).
 *
 * Life cycle: BINDING to every known relay address; the first success fixes the active socket and
 * yields host + srflx candidates, then ALLOCATE (UDP, dual-stack via ADDITIONAL-ADDRESS-FAMILY) with
 * long-term credentials (realm "firezone", nonce round on 401/438). The allocation is refreshed at
 * half its lifetime, kept alive with a BINDING every 25 s, expires locally at receipt + lifetime, and
 * binds channels 0x4000–0x4FFF on demand. Requests are retransmitted after 1 s, ×1.5, and abandoned
 * after 8 s. Responses to authenticated requests must carry a valid MESSAGE-INTEGRITY.
 *
 * {@link RelayKind} selects the exact Firezone behaviour (default) or an RFC 8656 dialect for
 * third-party servers such as coturn.
 *
 * Data path: {@link Allocation.encodeToPeer} writes the 4-byte ChannelData header into the header
 * room in front of a payload; {@link Allocation.decapsulate} unwraps ChannelData from the relay.
 * Neither allocates.
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { logger } from "../log.ts";
import { randomBytes, type Rng } from "../rng.ts";
import { earliest } from "../time.ts";
import { RingQueue } from "../util/ring_queue.ts";
import { CHANNEL_DATA_HEADER_LEN, channelDataChannel, writeChannelDataHeader } from "../wire/channel_data.ts";
import { formatSocketAddr, sameSocketAddr, type SocketAddr } from "../wire/ip_addr.ts";
import {
  longTermKey,
  parseStun,
  StunAddressFamily,
  StunAttr,
  StunClass,
  StunMessage,
  StunMessageBuilder,
  StunMethod,
  stunMethodName,
  transactionKey,
} from "../wire/stun.ts";
import { type ExponentialBackoff, requestBackoff, singleAttemptBackoff } from "./backoff.ts";
import { ChannelBindings } from "./channel_bindings.ts";

const log = logger("fz_gateway::turn");

/** The realm Firezone relays use; a 401/438 naming another realm is refused. */
export const FIREZONE_REALM = "firezone";
/** Keepalive BINDING interval once an allocation exists. */
export const BINDING_INTERVAL_MS = 25_000;
/** Channel bindings requested while there is no allocation are kept in a ring of this size. */
export const BUFFERED_CHANNEL_BINDINGS = 100;
/** REQUESTED-TRANSPORT protocol number for UDP. */
export const UDP_TRANSPORT = 17;

/** STUN error codes the client reacts to. */
export const TurnError = {
  Unauthorized: 401,
  UnknownAttribute: 420,
  AllocationMismatch: 437,
  StaleNonce: 438,
} as const;

/** The address(es) a relay is reachable on: IPv4, IPv6 or both (dual-stack). */
export interface RelaySocket {
  readonly v4?: SocketAddr;
  readonly v6?: SocketAddr;
}

/** True when `addr` is one of the relay's addresses. */
export function relaySocketMatches(server: RelaySocket, addr: SocketAddr): boolean {
  return (server.v4 !== undefined && sameSocketAddr(server.v4, addr)) ||
    (server.v6 !== undefined && sameSocketAddr(server.v6, addr));
}

/** True when both describe the same address set. */
export function sameRelaySocket(a: RelaySocket, b: RelaySocket): boolean {
  const same = (x: SocketAddr | undefined, y: SocketAddr | undefined) =>
    x === undefined ? y === undefined : y !== undefined && sameSocketAddr(x, y);
  return same(a.v4, b.v4) && same(a.v6, b.v6);
}

/**
 * The SESSION_ID sent in SOFTWARE: uppercase hex of SHA-256("SESSION-ID" ‖ node X25519 public key).
 */
export function sessionIdFromPublicKey(publicKey: Uint8Array): string {
  const prefix = new TextEncoder().encode("SESSION-ID");
  const input = new Uint8Array(prefix.length + publicKey.length);
  input.set(prefix);
  input.set(publicKey, prefix.length);
  let hex = "";
  for (const b of sha256(input)) hex += b.toString(16).padStart(2, "0");
  return hex.toUpperCase();
}

/**
 * The TURN server dialect.
 *
 * - `firezone` (default): exactly upstream snownet, for Firezone relays. The first ALLOCATE carries
 *   USERNAME/REALM/MESSAGE-INTEGRITY without NONCE; every non-BINDING response, 401/438 included,
 *   must be signed; REFRESH carries REQUESTED-TRANSPORT and ADDITIONAL-ADDRESS-FAMILY.
 * - `rfc8656`: interop with third-party servers such as coturn, which answer a MESSAGE-INTEGRITY
 *   without NONCE with 400, send unsigned 401/438 challenges, and refuse REFRESH with
 *   REQUESTED-TRANSPORT (420) or ADDITIONAL-ADDRESS-FAMILY (443). Requests go out without
 *   credentials until a 401 supplies a nonce, unsigned 401/438 are accepted, and REFRESH carries
 *   SOFTWARE (and LIFETIME 0 to delete) only. Everything else is unchanged.
 */
export const RelayKind = { Firezone: "firezone", Rfc8656: "rfc8656" } as const;
export type RelayKind = (typeof RelayKind)[keyof typeof RelayKind];

/** Why an allocation gave up (Firezone `FreeReason`). */
export const FreeReason = {
  AuthenticationError: "authentication_error",
  NoResponseReceived: "no_response_received",
  ProtocolFailure: "protocol_failure",
} as const;
export type FreeReason = (typeof FreeReason)[keyof typeof FreeReason];

const FREE_REASON_TEXT: Record<FreeReason, string> = {
  [FreeReason.AuthenticationError]: "authentication error (the relay refused our credentials)",
  [FreeReason.NoResponseReceived]: "no response received. Is STUN blocked?",
  [FreeReason.ProtocolFailure]: "TURN protocol failure (the relay did not understand our request)",
};

/** host: local address the relay answered on; srflx: as seen by the relay; relay: allocated on the relay. */
export type TurnCandidateKind = "host" | "srflx" | "relay";

/** A candidate learned from the relay. `base` is the local address it belongs to. */
export interface TurnCandidate {
  readonly kind: TurnCandidateKind;
  readonly addr: SocketAddr;
  readonly base: SocketAddr;
}

/** Events for the parent (drain with {@link Allocation.pollEvent}). */
export type AllocationEvent =
  | { readonly type: "new_candidate"; readonly candidate: TurnCandidate }
  | { readonly type: "invalid_candidate"; readonly candidate: TurnCandidate }
  /** The allocation gave up; the parent removes it. Emitted once, after every other event. */
  | { readonly type: "freed"; readonly reason: FreeReason; readonly message: string };

/** A datagram to send; relay traffic goes out with "any" source. */
export interface TurnTransmit {
  readonly source?: SocketAddr;
  readonly destination: SocketAddr;
  readonly payload: Uint8Array;
}

/** Where a ChannelData payload came from (reused between calls: copy what you keep). */
export interface DecapsulatedChannelData {
  /** The peer that sent the data to our relayed address. */
  peer: SocketAddr;
  payloadOff: number;
  payloadLen: number;
  /** Our relayed address (of the peer's family) the data was sent to. */
  relayAddr: SocketAddr;
}

/** Constructor arguments. */
export interface AllocationOptions {
  readonly server: RelaySocket;
  readonly username: string;
  readonly password: string;
  /** Defaults to {@link FIREZONE_REALM}. */
  readonly realm?: string;
  /** Uppercase hex SESSION_ID ({@link sessionIdFromPublicKey}). */
  readonly sessionId: string;
  readonly rng: Rng;
  readonly now: number;
  /** Which TURN server dialect to speak; defaults to {@link RelayKind.Firezone} (exactly upstream). */
  readonly relayKind?: RelayKind;
}

interface Credentials {
  readonly username: string;
  readonly password: string;
  readonly realm: string;
  readonly key: Uint8Array;
  nonce: string | null;
}

/** A request attribute: raw value bytes, or an address encoded as XOR-*-ADDRESS per send. */
interface Attr {
  readonly type: number;
  readonly value: Uint8Array | null;
  readonly xorAddr: SocketAddr | null;
}

function bytesAttr(type: number, value: Uint8Array): Attr {
  return { type, value, xorAddr: null };
}

/** A request before authentication: its method and non-auth attributes (encoded once). */
interface RequestSpec {
  readonly method: number;
  readonly attrs: readonly Attr[];
  /** CHANNEL-BIND only. */
  readonly channel: number;
  readonly peer: SocketAddr | null;
}

interface SentRequest {
  readonly dst: SocketAddr;
  readonly spec: RequestSpec;
  readonly payload: Uint8Array;
  readonly transactionId: Uint8Array;
  readonly hadNonce: boolean;
  readonly backoff: ExponentialBackoff;
}

interface ActiveSocket {
  readonly addr: SocketAddr;
  nextBinding: number;
}

const REQUESTED_TRANSPORT_UDP = Uint8Array.of(UDP_TRANSPORT, 0, 0, 0);
const ADDITIONAL_FAMILY_V6 = Uint8Array.of(StunAddressFamily.V6, 0, 0, 0);
const textEncoder = new TextEncoder();

/** One TURN allocation on one relay. */
export class Allocation {
  readonly #server: RelaySocket;
  readonly #software: Uint8Array;
  readonly #rng: Rng;
  readonly #rfcRelay: boolean;
  #credentials: Credentials | null;
  #activeSocket: ActiveSocket | null = null;

  #ip4Host: TurnCandidate | null = null;
  #ip6Host: TurnCandidate | null = null;
  #ip4Srflx: TurnCandidate | null = null;
  #ip6Srflx: TurnCandidate | null = null;
  #ip4Relay: TurnCandidate | null = null;
  #ip6Relay: TurnCandidate | null = null;

  /** When the allocation (or its last refresh) was confirmed, and its lifetime. */
  #lifetimeReceivedAt = 0;
  #lifetimeMs = -1;

  readonly #sent = new Map<string, SentRequest>();
  readonly #transmits = new RingQueue<TurnTransmit>(8);
  readonly #events = new RingQueue<AllocationEvent>(8);
  readonly #channels = new ChannelBindings();
  readonly #bufferedBindings = new RingQueue<SocketAddr>(BUFFERED_CHANNEL_BINDINGS);
  #explicitFailure: FreeReason | null = null;
  /** Responses dropped for a bad MESSAGE-INTEGRITY since the last good one (names the likely cause when freed). */
  #integrityFailures = 0;
  #freed: FreeReason | null = null;
  readonly #decapOut: DecapsulatedChannelData;

  constructor(options: AllocationOptions) {
    if (options.server.v4 === undefined && options.server.v6 === undefined) {
      throw new TypeError("A relay needs at least one address (IPv4 or IPv6)");
    }
    if (options.server.v4 !== undefined && options.server.v4.family !== 4) {
      throw new TypeError(`Relay v4 address ${formatSocketAddr(options.server.v4)} is not IPv4`);
    }
    if (options.server.v6 !== undefined && options.server.v6.family !== 6) {
      throw new TypeError(`Relay v6 address ${formatSocketAddr(options.server.v6)} is not IPv6`);
    }
    this.#server = options.server;
    this.#rng = options.rng;
    const software = `snownet; session=${options.sessionId}`;
    if ([...software].length >= 128) {
      throw new RangeError(`SOFTWARE "${software}" must be shorter than 128 characters (RFC 8489 §14.14)`);
    }
    this.#software = textEncoder.encode(software);
    this.#rfcRelay = options.relayKind === RelayKind.Rfc8656;
    this.#credentials = makeCredentials(options.username, options.password, options.realm ?? FIREZONE_REALM);
    const any = (options.server.v4 ?? options.server.v6)!;
    this.#decapOut = { peer: any, payloadOff: 0, payloadLen: 0, relayAddr: any };
    this.#sendBindingRequests(options.now);
  }

  // --- queries ---------------------------------------------------------------------------

  /** The relay's address(es). */
  get server(): RelaySocket {
    return this.#server;
  }

  /** The relay address in use (where ChannelData goes), or null before the first BINDING success. */
  get activeSocket(): SocketAddr | null {
    return this.#activeSocket?.addr ?? null;
  }

  /** True once the relay answered a BINDING. */
  receivedAnyResponse(): boolean {
    return this.#activeSocket !== null;
  }

  hasCredentials(): boolean {
    return this.#credentials !== null;
  }

  /** True when the allocation has at least one relayed address. */
  hasAllocation(): boolean {
    return this.#ip4Relay !== null || this.#ip6Relay !== null;
  }

  /** True once the freed event has been emitted. */
  get isFreed(): boolean {
    return this.#freed !== null;
  }

  /** Same username and password (the relay-list "kept" rule). */
  matchesCredentials(username: string, password: string): boolean {
    return this.#credentials !== null && this.#credentials.username === username &&
      this.#credentials.password === password;
  }

  /** Same relay address set (the relay-list "kept" rule). */
  matchesServer(server: RelaySocket): boolean {
    return sameRelaySocket(this.#server, server);
  }

  /** True when `addr` is one of our relayed addresses. */
  hasRelayedAddress(addr: SocketAddr): boolean {
    return (this.#ip4Relay !== null && sameSocketAddr(this.#ip4Relay.addr, addr)) ||
      (this.#ip6Relay !== null && sameSocketAddr(this.#ip6Relay.addr, addr));
  }

  /** Our relayed address of `family`, if any. */
  relayedAddress(family: 4 | 6): SocketAddr | null {
    return (family === 4 ? this.#ip4Relay : this.#ip6Relay)?.addr ?? null;
  }

  /** Current host and srflx candidates (offered to every connection). */
  hostAndServerReflexiveCandidates(): TurnCandidate[] {
    return [this.#ip4Host, this.#ip6Host, this.#ip4Srflx, this.#ip6Srflx].filter((c) => c !== null);
  }

  /** Current relay candidates (offered to connections that selected this relay). */
  relayCandidates(): TurnCandidate[] {
    return [this.#ip4Relay, this.#ip6Relay].filter((c) => c !== null);
  }

  /** The confirmed, live channel to `peer`, or -1 (in-flight bindings do not count). */
  boundChannel(peer: SocketAddr, now: number): number {
    return this.#channels.connectedChannelToPeer(peer, now);
  }

  /** Absolute time the allocation expires locally, or Infinity without one. */
  expiresAt(): number {
    return this.#lifetimeMs < 0 ? Infinity : this.#lifetimeReceivedAt + this.#lifetimeMs;
  }

  /**
   * Why the allocation can be freed, or null (snownet `can_be_freed`): a protocol failure, or no
   * request in flight and either no relay response ever (no active socket) or no credentials left.
   */
  canBeFreed(): FreeReason | null {
    if (this.#explicitFailure !== null) return this.#explicitFailure;
    if (this.#sent.size !== 0) return null;
    if (this.#activeSocket === null) return FreeReason.NoResponseReceived;
    if (this.#credentials === null) return FreeReason.AuthenticationError;
    return null;
  }

  // --- inputs ----------------------------------------------------------------------------

  /**
   * Offers a STUN message from `from`, received on local address `local`. Returns true when it
   * belonged to this allocation (even if ignored, e.g. failing the integrity check).
   */
  handleInput(from: SocketAddr, local: SocketAddr, packet: Uint8Array | StunMessage, now: number): boolean {
    if (this.#freed !== null || !relaySocketMatches(this.#server, from)) return false;
    let message: StunMessage;
    if (packet instanceof StunMessage) {
      message = packet;
    } else {
      const parsed = parseStun(packet);
      if (!parsed.ok) return false;
      message = parsed.msg;
    }
    const key = message.transactionKey;
    const request = this.#sent.get(key);
    if (request === undefined) return false;

    if (message.method !== StunMethod.Binding && !this.#checkIntegrity(message)) {
      // Keep the request: an unauthenticated message must not change our state.
      this.#integrityFailures++;
      log.warn("Message integrity check failed", {
        relay: formatSocketAddr(from),
        method: stunMethodName(message.method),
        class: message.cls,
      });
      return true;
    }
    this.#sent.delete(key);
    if (message.method !== StunMethod.Binding) this.#integrityFailures = 0;
    if (log.debugEnabled) {
      log.debug("TURN response", {
        relay: formatSocketAddr(from),
        method: stunMethodName(message.method),
        class: message.cls,
        rttMs: now - request.backoff.startTime,
      });
    }

    const error = message.cls === StunClass.Error ? message.errorCode() : null;
    if (message.cls === StunClass.Error) {
      this.#handleError(message, error, request, now);
      return true;
    }
    if (message.cls !== StunClass.Success) {
      log.warn("Can only handle success messages from here", { class: message.cls });
      return true;
    }
    switch (request.spec.method) {
      case StunMethod.Binding:
        this.#handleBindingSuccess(message, request, local, now);
        break;
      case StunMethod.Allocate:
        this.#handleAllocateSuccess(message, local, now);
        break;
      case StunMethod.Refresh:
        this.#handleRefreshSuccess(message, now);
        break;
      case StunMethod.ChannelBind:
        if (!this.#channels.setConfirmed(request.spec.channel, now)) {
          log.warn("Unknown channel", { channel: request.spec.channel });
        } else if (log.debugEnabled) {
          log.debug("Bound channel", {
            channel: request.spec.channel,
            peer: formatSocketAddr(request.spec.peer!),
          });
        }
        break;
    }
    return true;
  }

  /** Fires every due timer: expiry, keepalive, retransmissions, refreshes. */
  handleTimeout(now: number): void {
    if (this.#freed !== null) return;
    if (now >= this.expiresAt()) {
      log.debug("Allocation is expired");
      this.#invalidateAllocation();
    }

    if (this.hasAllocation() && this.#activeSocket !== null && now >= this.#activeSocket.nextBinding) {
      this.#activeSocket.nextBinding = now + BINDING_INTERVAL_MS;
      this.#queueBinding(this.#activeSocket.addr, null, now);
    }

    for (;;) {
      let dueKey: string | null = null;
      for (const [key, r] of this.#sent) {
        if (now >= r.backoff.nextTrigger) {
          dueKey = key;
          break;
        }
      }
      if (dueKey === null) break;
      const request = this.#sent.get(dueKey)!;
      this.#sent.delete(dueKey);
      request.backoff.handleTimeout(now); // advances the trigger, or leaves it when expired
      if (log.debugEnabled) {
        log.debug("Request timed out, re-sending", {
          method: stunMethodName(request.spec.method),
          dst: formatSocketAddr(request.dst),
        });
      }
      const queued = request.spec.method === StunMethod.Binding
        ? this.#queueBinding(request.dst, request, now)
        : this.#authenticateAndQueue(request.spec, request.backoff, now);
      // A request to the active socket's family gave up: the relay seems unreachable.
      if (!queued && this.#activeSocket !== null && this.#activeSocket.addr.family === request.dst.family) {
        log.info("Relay stopped answering; forgetting the active socket", {
          dst: formatSocketAddr(request.dst),
        });
        this.#activeSocket = null;
        this.#invalidateAllocation();
      }
    }

    const refreshAt = this.#refreshAt();
    if (now >= refreshAt && !this.#inFlight(StunMethod.Refresh)) {
      log.debug("Allocation is due for a refresh");
      this.#authenticateAndQueue(this.#refreshSpec(false), null, now);
    }

    const due = this.#channels.channelsToRefresh(now, (n) => this.#channelBindInFlightByNumber(n));
    for (const channel of due) {
      if (log.debugEnabled) log.debug("Channel is due for a refresh", { channel: channel.number });
      this.#authenticateAndQueue(this.#channelBindSpec(channel.peer, channel.number), null, now);
    }
  }

  /**
   * Proactive refresh (portal `init` / relay presence): a single 1 s REFRESH attempt; a suspended
   * allocation starts over with BINDING; nothing while an ALLOCATE is in flight.
   */
  refresh(now: number): void {
    if (this.#freed !== null) return;
    if (!this.hasAllocation() && this.#inFlight(StunMethod.Allocate)) {
      log.debug("Not refreshing allocation because we are already making one");
      return;
    }
    if (this.#isSuspended()) {
      log.debug("Attempting to make a new allocation");
      this.#activeSocket = null;
      this.#sendBindingRequests(now);
      return;
    }
    log.debug("Refreshing allocation");
    this.#authenticateAndQueue(this.#refreshSpec(false), singleAttemptBackoff(now), now);
  }

  /**
   * Binds a channel to `peer` (idempotent). Buffered while there is no allocation; skipped when the
   * allocation has no relayed address of the peer's family.
   */
  bindChannel(peer: SocketAddr, now: number): void {
    if (this.#freed !== null) return;
    if (this.#isSuspended()) {
      log.debug("Allocation is suspended");
      return;
    }
    if (this.#channels.connectedChannelToPeer(peer, now) >= 0) return;
    if (this.#channelBindInFlightByPeer(peer)) return;
    if (!this.hasAllocation()) {
      log.debug("No allocation yet, buffering channel binding", { peer: formatSocketAddr(peer) });
      this.#bufferBinding(peer);
      return;
    }
    if ((peer.family === 4 ? this.#ip4Relay : this.#ip6Relay) === null) {
      log.debug("Allocation cannot relay to this IP version", { peer: formatSocketAddr(peer) });
      return;
    }
    const channel = this.#channels.newChannelToPeer(peer, now);
    if (channel < 0) {
      log.warn("All channels are exhausted");
      return;
    }
    if (log.debugEnabled) log.debug("Binding new channel", { channel, peer: formatSocketAddr(peer) });
    this.#authenticateAndQueue(this.#channelBindSpec(peer, channel), null, now);
  }

  // --- data path -------------------------------------------------------------------------

  /**
   * Frames `buf[off, off + len)` for `peer`: writes the ChannelData header into the 4 bytes of header
   * room at `off - 4` and returns the channel number; the caller sends `buf[off - 4, off + len)` to
   * {@link activeSocket}. Uses a confirmed channel, else one still being bound (optimistic). Returns -1
   * (nothing written) without an active socket, or when no channel exists — then a binding is started.
   */
  encodeToPeer(peer: SocketAddr, buf: Uint8Array, off: number, len: number, now: number): number {
    if (this.#activeSocket === null || off < CHANNEL_DATA_HEADER_LEN) return -1;
    const channel = this.#channels.channelForSend(peer, now);
    if (channel < 0) {
      this.bindChannel(peer, now);
      return -1;
    }
    writeChannelDataHeader(buf, off - CHANNEL_DATA_HEADER_LEN, channel, len);
    return channel;
  }

  /**
   * Unwraps a ChannelData message `buf[off, off + len)` received from `from`. Returns a reused
   * out-object (peer, payload range, our relayed address) or null when it is not from this relay,
   * malformed, or on an unknown/unconfirmed channel.
   */
  decapsulate(
    from: SocketAddr,
    buf: Uint8Array,
    off: number,
    len: number,
    now: number,
  ): DecapsulatedChannelData | null {
    if (!relaySocketMatches(this.#server, from)) return null;
    const number = channelDataChannel(buf, off, len);
    if (number < 0) return null;
    const channel = this.#channels.tryHandlePacket(number, now);
    if (channel === undefined) return null;
    const relay = channel.peer.family === 4 ? this.#ip4Relay : this.#ip6Relay;
    if (relay === null) return null;
    const out = this.#decapOut;
    out.peer = channel.peer;
    out.payloadOff = off + CHANNEL_DATA_HEADER_LEN;
    out.payloadLen = len - CHANNEL_DATA_HEADER_LEN;
    out.relayAddr = relay.addr;
    return out;
  }

  // --- outputs ---------------------------------------------------------------------------

  pollTransmit(): TurnTransmit | undefined {
    return this.#transmits.shift();
  }

  /** The next event; once nothing else is pending and {@link canBeFreed} holds, a single "freed". */
  pollEvent(): AllocationEvent | undefined {
    const event = this.#events.shift();
    if (event !== undefined || this.#freed !== null) return event;
    const reason = this.canBeFreed();
    if (reason === null) return undefined;
    this.#freed = reason;
    this.#sent.clear();
    this.#transmits.clear();
    let message = FREE_REASON_TEXT[reason];
    if (reason === FreeReason.NoResponseReceived && this.#integrityFailures > 0) {
      message = `no valid response received: ${this.#integrityFailures} responses failed the ` +
        "MESSAGE-INTEGRITY check (wrong password?)";
    }
    log.info("Disconnecting from relay", { reason: message, relay: this.#describeServer() });
    return { type: "freed", reason, message };
  }

  /** Earliest deadline: refresh (unless one is in flight), keepalive, expiry, retransmissions. */
  pollTimeout(): number {
    if (this.#freed !== null) return Infinity;
    let at = this.expiresAt();
    if (!this.#inFlight(StunMethod.Refresh)) at = earliest(at, this.#refreshAt());
    if (this.hasAllocation() && this.#activeSocket !== null) {
      at = earliest(at, this.#activeSocket.nextBinding);
    }
    for (const r of this.#sent.values()) at = earliest(at, r.backoff.nextTrigger);
    return at;
  }

  // --- response handling -----------------------------------------------------------------

  #handleError(
    message: StunMessage,
    error: { code: number; reason: string } | null,
    request: SentRequest,
    now: number,
  ): void {
    const method = request.spec.method;
    const code = error?.code ?? 0;
    if (code === TurnError.Unauthorized && request.hadNonce) {
      log.warn(`Invalid credentials, refusing to re-authenticate ${stunMethodName(method)}`, {
        relay: this.#describeServer(),
      });
      this.#credentials = null;
      this.#invalidateAllocation();
      return;
    }
    if (code === TurnError.Unauthorized || code === TurnError.StaleNonce) {
      const credentials = this.#credentials;
      if (credentials === null) return;
      const nonce = message.stringAttr(StunAttr.Nonce);
      if (nonce !== null) credentials.nonce = nonce;
      const realm = message.stringAttr(StunAttr.Realm);
      if (realm !== null && realm !== credentials.realm) {
        log.warn("Refusing to authenticate with server", {
          allowedRealm: credentials.realm,
          serverRealm: realm,
        });
        return;
      }
      log.debug("Request failed, re-authenticating", { code, error: error?.reason });
      this.#authenticateAndQueue(request.spec, null, now);
      return;
    }
    if (code === TurnError.AllocationMismatch) {
      this.#invalidateAllocation();
      if (method === StunMethod.Allocate) {
        log.debug("Deleting existing allocation to re-sync");
        this.#authenticateAndQueue(this.#refreshSpec(true), null, now);
      } else if (method === StunMethod.Refresh || method === StunMethod.ChannelBind) {
        log.debug("Making new allocation to re-sync");
        this.#authenticateAndQueue(this.#allocateSpec(), null, now);
        if (method === StunMethod.ChannelBind && request.spec.peer !== null) {
          this.#bufferBinding(request.spec.peer);
        }
      }
      return;
    }
    if (code === TurnError.UnknownAttribute) {
      log.warn("Server did not understand one or more attributes in our request", {
        attributes: message.unknownAttributes().map((t) => `0x${t.toString(16)}`),
      });
      this.#explicitFailure = FreeReason.ProtocolFailure;
      return;
    }
    if (method === StunMethod.Allocate) {
      this.#bufferedBindings.clear();
    } else if (method === StunMethod.ChannelBind) {
      this.#channels.handleFailedBinding(request.spec.channel);
      log.warn("Channel bind failed", {
        error: error?.reason,
        channel: request.spec.channel,
        peer: request.spec.peer ? formatSocketAddr(request.spec.peer) : null,
      });
      return;
    }
    log.warn("TURN request failed with unhandled error code", { error: error?.reason, code });
  }

  #handleBindingSuccess(message: StunMessage, request: SentRequest, local: SocketAddr, now: number): void {
    const host: TurnCandidate = { kind: "host", addr: local, base: local };
    if (local.family === 4) this.#ip4Host = this.#updateCandidate(host, this.#ip4Host);
    else this.#ip6Host = this.#updateCandidate(host, this.#ip6Host);

    const mapped = message.xorAddress(StunAttr.XorMappedAddress);
    if (mapped !== null) {
      const srflx: TurnCandidate = { kind: "srflx", addr: mapped, base: local };
      if (request.dst.family === 4) this.#ip4Srflx = this.#updateCandidate(srflx, this.#ip4Srflx);
      else this.#ip6Srflx = this.#updateCandidate(srflx, this.#ip6Srflx);
    }

    // The first BINDING answered fixes the socket; later answers (other family, keepalives) don't.
    if (this.#activeSocket !== null) return;
    this.#activeSocket = { addr: request.dst, nextBinding: now + BINDING_INTERVAL_MS };
    log.debug("Updating active socket", { activeSocket: formatSocketAddr(request.dst) });
    this.#authenticateAndQueue(
      this.hasAllocation() ? this.#refreshSpec(false) : this.#allocateSpec(),
      null,
      now,
    );
  }

  #handleAllocateSuccess(message: StunMessage, local: SocketAddr, now: number): void {
    const lifetimeS = message.u32Attr(StunAttr.Lifetime);
    if (lifetimeS === null) {
      log.warn("Message does not contain `LIFETIME`");
      return;
    }
    let relay4: SocketAddr | null = null;
    let relay6: SocketAddr | null = null;
    for (const a of message.attributes) {
      if (a.type !== StunAttr.XorRelayedAddress) continue;
      const addr = message.xorAddressOf(a);
      if (addr === null) continue;
      if (addr.family === 4 && relay4 === null) relay4 = addr;
      if (addr.family === 6 && relay6 === null) relay6 = addr;
    }
    if (relay4 === null && relay6 === null) {
      log.warn("Relay sent a successful allocate response without addresses");
      return;
    }
    this.#lifetimeReceivedAt = now;
    this.#lifetimeMs = lifetimeS * 1000;
    if (relay4 !== null) {
      this.#ip4Relay = this.#updateCandidate({ kind: "relay", addr: relay4, base: local }, this.#ip4Relay);
    }
    if (relay6 !== null) {
      this.#ip6Relay = this.#updateCandidate({ kind: "relay", addr: relay6, base: local }, this.#ip6Relay);
    }
    log.info("Allocation created", {
      relay: this.#describeServer(),
      relay4: relay4 ? formatSocketAddr(relay4) : null,
      relay6: relay6 ? formatSocketAddr(relay6) : null,
      lifetimeS,
    });
    for (
      let peer = this.#bufferedBindings.shift();
      peer !== undefined;
      peer = this.#bufferedBindings.shift()
    ) {
      this.bindChannel(peer, now);
    }
  }

  #handleRefreshSuccess(message: StunMessage, now: number): void {
    const lifetimeS = message.u32Attr(StunAttr.Lifetime);
    if (lifetimeS === null) {
      log.warn("Message does not contain lifetime");
      return;
    }
    if (lifetimeS === 0) {
      // We deleted our previous allocation (437 re-sync): make a new one.
      this.#authenticateAndQueue(this.#allocateSpec(), null, now);
      return;
    }
    this.#lifetimeReceivedAt = now;
    this.#lifetimeMs = lifetimeS * 1000;
    log.debug("Allocation refreshed", { lifetimeS });
  }

  #checkIntegrity(message: StunMessage): boolean {
    const credentials = this.#credentials;
    if (!message.has(StunAttr.MessageIntegrity)) {
      if (this.#rfcRelay && message.cls === StunClass.Error) {
        const code = message.errorCode()?.code;
        return code === TurnError.Unauthorized || code === TurnError.StaleNonce;
      }
      return false;
    }
    return credentials !== null && message.verifyIntegrity(credentials.key);
  }

  // --- state helpers ---------------------------------------------------------------------

  /** Replaces `current` by `next` when they differ, emitting new (+ invalidated old) events. */
  #updateCandidate(next: TurnCandidate, current: TurnCandidate | null): TurnCandidate {
    if (current !== null && sameCandidate(current, next)) return current;
    this.#events.push({ type: "new_candidate", candidate: next });
    if (current !== null) this.#events.push({ type: "invalid_candidate", candidate: current });
    return next;
  }

  #invalidateAllocation(): void {
    log.info("Invalidating allocation", {
      activeSocket: this.#activeSocket ? formatSocketAddr(this.#activeSocket.addr) : null,
    });
    if (this.#ip4Relay !== null) this.#events.push({ type: "invalid_candidate", candidate: this.#ip4Relay });
    if (this.#ip6Relay !== null) this.#events.push({ type: "invalid_candidate", candidate: this.#ip6Relay });
    this.#ip4Relay = null;
    this.#ip6Relay = null;
    this.#channels.clear();
    this.#lifetimeMs = -1;
    this.#sent.clear();
  }

  #refreshAt(): number {
    return this.#lifetimeMs < 0 ? Infinity : this.#lifetimeReceivedAt + this.#lifetimeMs / 2;
  }

  #inFlight(method: number): boolean {
    for (const r of this.#sent.values()) if (r.spec.method === method) return true;
    return false;
  }

  #channelBindInFlightByNumber(channel: number): boolean {
    for (const r of this.#sent.values()) {
      if (r.spec.method === StunMethod.ChannelBind && r.spec.channel === channel) return true;
    }
    return false;
  }

  #channelBindInFlightByPeer(peer: SocketAddr): boolean {
    for (const r of this.#sent.values()) {
      if (
        r.spec.method === StunMethod.ChannelBind && r.spec.peer !== null && sameSocketAddr(r.spec.peer, peer)
      ) {
        return true;
      }
    }
    for (let i = 0; i < this.#bufferedBindings.length; i++) {
      if (sameSocketAddr(this.#bufferedBindings.at(i)!, peer)) return true;
    }
    return false;
  }

  /** Ring buffer semantics: the oldest buffered binding makes room for the newest. */
  #bufferBinding(peer: SocketAddr): void {
    if (this.#bufferedBindings.length === BUFFERED_CHANNEL_BINDINGS) this.#bufferedBindings.shift();
    this.#bufferedBindings.push(peer);
  }

  /** No allocation, nothing in flight or queued: we gave up until the next {@link refresh}. */
  #isSuspended(): boolean {
    return !this.hasAllocation() && this.#sent.size === 0 && this.#transmits.length === 0;
  }

  // --- request construction and sending --------------------------------------------------

  #sendBindingRequests(now: number): void {
    log.debug("Sending BINDING requests to pick active socket", { relay: this.#describeServer() });
    if (this.#server.v4 !== undefined) this.#queueBinding(this.#server.v4, null, now);
    if (this.#server.v6 !== undefined) this.#queueBinding(this.#server.v6, null, now);
  }

  /** Queues a BINDING (SOFTWARE only, unauthenticated); a retransmission keeps its transaction id. */
  #queueBinding(dst: SocketAddr, previous: SentRequest | null, now: number): boolean {
    if (previous !== null) return this.#queue(previous, now);
    const transactionId = randomBytes(this.#rng, 12);
    const payload = new StunMessageBuilder(StunMethod.Binding, StunClass.Request, transactionId)
      .addBytes(StunAttr.Software, this.#software)
      .build();
    const spec: RequestSpec = { method: StunMethod.Binding, attrs: [], channel: -1, peer: null };
    return this.#queue(
      { dst, spec, payload, transactionId, hadNonce: false, backoff: requestBackoff(now) },
      now,
    );
  }

  /**
   * Adds USERNAME, REALM, NONCE (when known) and long-term MESSAGE-INTEGRITY to `spec` with a new
   * random transaction id, and queues it to the active socket. False when there is no active
   * socket, no credentials, or the backoff has expired.
   */
  #authenticateAndQueue(spec: RequestSpec, backoff: ExponentialBackoff | null, now: number): boolean {
    const active = this.#activeSocket;
    if (active === null) {
      log.debug(`Unable to queue ${stunMethodName(spec.method)} because we haven't nominated a socket yet`);
      return false;
    }
    const credentials = this.#credentials;
    if (credentials === null) {
      log.debug(`Unable to queue ${stunMethodName(spec.method)} because we don't have credentials`);
      return false;
    }
    const transactionId = randomBytes(this.#rng, 12);
    const b = new StunMessageBuilder(spec.method, StunClass.Request, transactionId);
    for (const a of spec.attrs) {
      if (a.xorAddr !== null) b.addXorAddress(a.type, a.xorAddr);
      else b.addBytes(a.type, a.value!);
    }
    // RFC 8656 servers challenge a bare request; they refuse MESSAGE-INTEGRITY without a NONCE.
    if (!this.#rfcRelay || credentials.nonce !== null) {
      b.addString(StunAttr.Username, credentials.username).addString(StunAttr.Realm, credentials.realm);
      if (credentials.nonce !== null) b.addString(StunAttr.Nonce, credentials.nonce);
      b.addMessageIntegrity(credentials.key);
    }
    const payload = b.build();
    return this.#queue({
      dst: active.addr,
      spec,
      payload,
      transactionId,
      hadNonce: credentials.nonce !== null,
      backoff: backoff ?? requestBackoff(now),
    }, now);
  }

  #queue(request: SentRequest, now: number): boolean {
    if (request.backoff.isExpired(now)) {
      log.debug("Backoff expired, giving up", {
        method: stunMethodName(request.spec.method),
        dst: formatSocketAddr(request.dst),
      });
      return false;
    }
    this.#sent.set(transactionKey(request.transactionId), request);
    this.#transmits.push({ destination: request.dst, payload: request.payload });
    return true;
  }

  #allocateSpec(): RequestSpec {
    return {
      method: StunMethod.Allocate,
      attrs: [
        bytesAttr(StunAttr.RequestedTransport, REQUESTED_TRANSPORT_UDP),
        bytesAttr(StunAttr.AdditionalAddressFamily, ADDITIONAL_FAMILY_V6),
        bytesAttr(StunAttr.Software, this.#software),
      ],
      channel: -1,
      peer: null,
    };
  }

  /** REFRESH; `deleteAllocation` adds LIFETIME 0. */
  #refreshSpec(deleteAllocation: boolean): RequestSpec {
    const attrs: Attr[] = this.#rfcRelay ? [bytesAttr(StunAttr.Software, this.#software)] : [
      bytesAttr(StunAttr.RequestedTransport, REQUESTED_TRANSPORT_UDP),
      bytesAttr(StunAttr.AdditionalAddressFamily, ADDITIONAL_FAMILY_V6),
      bytesAttr(StunAttr.Software, this.#software),
    ];
    if (deleteAllocation) attrs.push(bytesAttr(StunAttr.Lifetime, new Uint8Array(4)));
    return { method: StunMethod.Refresh, attrs, channel: -1, peer: null };
  }

  #channelBindSpec(peer: SocketAddr, channel: number): RequestSpec {
    // XOR-PEER-ADDRESS depends on the transaction id (IPv6): encoded per send.
    return {
      method: StunMethod.ChannelBind,
      attrs: [
        { type: StunAttr.XorPeerAddress, value: null, xorAddr: peer },
        bytesAttr(StunAttr.ChannelNumber, Uint8Array.of(channel >>> 8, channel & 0xff, 0, 0)),
        bytesAttr(StunAttr.Software, this.#software),
      ],
      channel,
      peer,
    };
  }

  #describeServer(): string {
    const parts: string[] = [];
    if (this.#server.v4 !== undefined) parts.push(formatSocketAddr(this.#server.v4));
    if (this.#server.v6 !== undefined) parts.push(formatSocketAddr(this.#server.v6));
    return parts.join(" / ");
  }
}

function makeCredentials(username: string, password: string, realm: string): Credentials {
  return { username, password, realm, key: longTermKey(username, realm, password), nonce: null };
}

function sameCandidate(a: TurnCandidate, b: TurnCandidate): boolean {
  return a.kind === b.kind && sameSocketAddr(a.addr, b.addr) && sameSocketAddr(a.base, b.base);
}
