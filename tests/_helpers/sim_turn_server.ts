/**
 * A small sans-IO STUN/TURN server for tests and simulations (UDP only, ChannelData only).
 *
 * Two dialects:
 * - `firezone` (default), like Firezone's relay (`rust/relay/server`): long-term credentials with
 *   realm "firezone"; 401/438 carry REALM and a fresh NONCE and are signed with the user's key when
 *   the request named a known USERNAME; each nonce is valid for `nonceUses` (10) authenticated
 *   requests, then 438; REFRESH tolerates REQUESTED-TRANSPORT / ADDITIONAL-ADDRESS-FAMILY.
 * - `coturn`, like coturn 4.6: MESSAGE-INTEGRITY without NONCE → 400; unsigned 401/438 challenges;
 *   REQUESTED-TRANSPORT in REFRESH → 420; ADDITIONAL-ADDRESS-FAMILY IPv6 in REFRESH of a v4-only
 *   allocation → 443.
 *
 * Allocations are keyed by the client's address; relayed ports count up from `firstRelayPort`.
 * BINDING responses are unauthenticated. Knobs for tests: {@link SimTurnServer.dropping} (relay loss),
 * {@link SimTurnServer.forgetAllocations} (relay restart), {@link SimTurnServer.requests} (what clients sent).
 *
 * @module
 */

import type { Rng } from "../../src/rng.ts";
import { formatSocketAddr, type SocketAddr, socketAddr } from "../../src/wire/ip_addr.ts";
import {
  CHANNEL_DATA_HEADER_LEN,
  channelDataChannel,
  writeChannelDataHeader,
} from "../../src/wire/channel_data.ts";
import {
  longTermKey,
  parseStun,
  StunAddressFamily,
  StunAttr,
  StunClass,
  type StunMessage,
  StunMessageBuilder,
  StunMethod,
} from "../../src/wire/stun.ts";

export type SimTurnDialect = "firezone" | "coturn";

export interface SimTurnServerOptions {
  /** Addresses the server listens on (port 3478 in practice). */
  readonly listen: { readonly v4?: SocketAddr; readonly v6?: SocketAddr };
  /** IPs of relayed addresses; default: the listen IPs. */
  readonly relayIp4?: string;
  readonly relayIp6?: string;
  /** username → password. */
  readonly users: Readonly<Record<string, string>>;
  readonly realm?: string;
  readonly rng: Rng;
  readonly dialect?: SimTurnDialect;
  /** Authenticated requests one nonce is good for (Firezone: 10). */
  readonly nonceUses?: number;
  readonly defaultLifetimeS?: number;
  readonly maxLifetimeS?: number;
  readonly firstRelayPort?: number;
  readonly software?: string;
}

/** A datagram the server sends. */
export interface SimTransmit {
  readonly source: SocketAddr;
  readonly destination: SocketAddr;
  readonly payload: Uint8Array;
}

/** A request as received, for assertions. */
export interface SimRequestRecord {
  readonly at: number;
  readonly from: SocketAddr;
  readonly msg: StunMessage;
}

interface SimChannel {
  readonly number: number;
  readonly peer: SocketAddr;
  expiresAt: number;
}

interface SimAllocation {
  readonly client: SocketAddr;
  readonly listen: SocketAddr;
  readonly username: string;
  readonly relay4: SocketAddr | null;
  readonly relay6: SocketAddr | null;
  expiresAt: number;
  readonly channels: Map<number, SimChannel>;
}

const CHANNEL_LIFETIME_MS = 600_000;

/** The simulated relay. */
export class SimTurnServer {
  readonly realm: string;
  readonly dialect: SimTurnDialect;
  /** When true, client datagrams are swallowed without any answer (relay loss). */
  dropping = false;
  /** Every STUN request received (parsed over a private copy of its bytes). */
  readonly requests: SimRequestRecord[] = [];
  /** Error codes sent, in order. */
  readonly errorsSent: number[] = [];
  /** ChannelData payloads relayed to peers / to clients. */
  relayedToPeers = 0;
  relayedToClients = 0;

  readonly #options: SimTurnServerOptions;
  readonly #users: Map<string, string>;
  readonly #nonces = new Map<string, number>();
  readonly #allocations = new Map<string, SimAllocation>();
  readonly #transmits: SimTransmit[] = [];
  #nextPort: number;
  readonly #software: string;

  constructor(options: SimTurnServerOptions) {
    this.#options = options;
    this.realm = options.realm ?? "firezone";
    this.dialect = options.dialect ?? "firezone";
    this.#users = new Map(Object.entries(options.users));
    this.#nextPort = options.firstRelayPort ?? 49152;
    this.#software = options.software ?? "sim-turn";
  }

  /** Changes (or adds) a user's password. */
  setPassword(username: string, password: string): void {
    this.#users.set(username, password);
  }

  /** Forgets every allocation (as after a relay restart): REFRESH/CHANNEL-BIND get 437. */
  forgetAllocations(): void {
    this.#allocations.clear();
  }

  /** Invalidates every nonce: the next authenticated request gets 438. */
  expireNonces(): void {
    this.#nonces.clear();
  }

  get allocationCount(): number {
    return this.#allocations.size;
  }

  /** The relayed addresses of the client's allocation, if any. */
  allocationOf(client: SocketAddr): { relay4: SocketAddr | null; relay6: SocketAddr | null } | undefined {
    const a = this.#allocations.get(key(client));
    return a ? { relay4: a.relay4, relay6: a.relay6 } : undefined;
  }

  /** Requests of `method` received so far. */
  requestsOf(method: number): SimRequestRecord[] {
    return this.requests.filter((r) => r.msg.method === method);
  }

  pollTransmit(): SimTransmit | undefined {
    return this.#transmits.shift();
  }

  /** Expires allocations and channel bindings. */
  handleTimeout(now: number): void {
    for (const [k, a] of this.#allocations) {
      if (now >= a.expiresAt) {
        this.#allocations.delete(k);
        continue;
      }
      for (const [n, c] of a.channels) if (now >= c.expiresAt) a.channels.delete(n);
    }
  }

  /** The earliest allocation/channel expiry. */
  pollTimeout(): number {
    let at = Infinity;
    for (const a of this.#allocations.values()) {
      at = Math.min(at, a.expiresAt);
      for (const c of a.channels.values()) at = Math.min(at, c.expiresAt);
    }
    return at;
  }

  /** A datagram from a client to one of the listening addresses. */
  handleClientInput(from: SocketAddr, to: SocketAddr, bytes: Uint8Array, now: number): void {
    this.handleTimeout(now);
    if (this.dropping) return;
    if (bytes.length >= CHANNEL_DATA_HEADER_LEN && bytes[0]! >= 0x40 && bytes[0]! <= 0x7f) {
      this.#handleChannelData(from, bytes);
      return;
    }
    const parsed = parseStun(bytes.slice());
    if (!parsed.ok || parsed.msg.cls !== StunClass.Request) return;
    const msg = parsed.msg;
    this.requests.push({ at: now, from, msg });
    if (msg.method === StunMethod.Binding) {
      this.#send(
        to,
        from,
        this.#response(msg, StunClass.Success).addXorAddress(StunAttr.XorMappedAddress, from).build(),
      );
      return;
    }
    const username = this.#authenticate(from, to, msg);
    if (username === null) return;
    switch (msg.method) {
      case StunMethod.Allocate:
        return this.#handleAllocate(from, to, msg, username, now);
      case StunMethod.Refresh:
        return this.#handleRefresh(from, to, msg, username, now);
      case StunMethod.ChannelBind:
        return this.#handleChannelBind(from, to, msg, username, now);
      default:
        return this.#error(from, to, msg, username, 400, "Bad Request");
    }
  }

  /** A datagram from a peer to one of the relayed addresses. */
  handlePeerInput(from: SocketAddr, to: SocketAddr, bytes: Uint8Array, now: number): void {
    this.handleTimeout(now);
    if (this.dropping) return;
    for (const a of this.#allocations.values()) {
      const mine = (a.relay4 && sameAddr(a.relay4, to)) || (a.relay6 && sameAddr(a.relay6, to));
      if (!mine) continue;
      for (const c of a.channels.values()) {
        if (!sameAddr(c.peer, from)) continue;
        const out = new Uint8Array(bytes.length + CHANNEL_DATA_HEADER_LEN);
        out.set(bytes, CHANNEL_DATA_HEADER_LEN);
        writeChannelDataHeader(out, 0, c.number, bytes.length);
        this.relayedToClients++;
        this.#send(a.listen, a.client, out);
        return;
      }
      return; // no channel (and no permission) for this peer: dropped
    }
  }

  // --- internals -----------------------------------------------------------------------------

  #handleChannelData(from: SocketAddr, bytes: Uint8Array): void {
    const number = channelDataChannel(bytes, 0, bytes.length);
    const a = this.#allocations.get(key(from));
    if (number < 0 || a === undefined) return;
    const c = a.channels.get(number);
    if (c === undefined) return;
    const relay = c.peer.family === 4 ? a.relay4 : a.relay6;
    if (relay === null) return;
    this.relayedToPeers++;
    this.#send(relay, c.peer, bytes.slice(CHANNEL_DATA_HEADER_LEN));
  }

  /** Long-term auth; returns the username, or null after sending the error. */
  #authenticate(from: SocketAddr, to: SocketAddr, msg: StunMessage): string | null {
    const username = msg.stringAttr(StunAttr.Username);
    const hasMi = msg.has(StunAttr.MessageIntegrity);
    const nonce = msg.stringAttr(StunAttr.Nonce);
    if (!hasMi) {
      this.#error(from, to, msg, username, 401, "Unauthorized");
      return null;
    }
    if (nonce === null) {
      if (this.dialect === "coturn") this.#error(from, to, msg, null, 400, "Bad Request");
      else this.#error(from, to, msg, username, 401, "Unauthorized");
      return null;
    }
    const uses = this.#nonces.get(nonce);
    if (uses === undefined || uses <= 0) {
      this.#error(from, to, msg, username, 438, "Stale Nonce");
      return null;
    }
    this.#nonces.set(nonce, uses - 1);
    const password = username === null ? undefined : this.#users.get(username);
    const realm = msg.stringAttr(StunAttr.Realm);
    if (
      password === undefined || realm !== this.realm ||
      !msg.verifyIntegrity(longTermKey(username!, realm, password))
    ) {
      this.#error(from, to, msg, username, 401, "Unauthorized");
      return null;
    }
    return username;
  }

  #handleAllocate(from: SocketAddr, to: SocketAddr, msg: StunMessage, username: string, now: number): void {
    if (this.#allocations.has(key(from))) {
      return this.#error(from, to, msg, username, 437, "Allocation Mismatch");
    }
    const transport = msg.value(StunAttr.RequestedTransport);
    if (transport === undefined || transport[0] !== 17) {
      return this.#error(from, to, msg, username, 400, "Bad Request");
    }
    const port = this.#nextPort++;
    const ip4 = this.#options.relayIp4 ?? this.#options.listen.v4?.ip;
    const ip6 = this.#options.relayIp6 ?? this.#options.listen.v6?.ip;
    const wantsV6 = msg.value(StunAttr.AdditionalAddressFamily)?.[0] === StunAddressFamily.V6;
    const relay4 = ip4 !== undefined ? socketAddr(ip4, port) : null;
    const relay6 = wantsV6 && ip6 !== undefined ? socketAddr(ip6, port) : null;
    if (relay4 === null && relay6 === null) {
      return this.#error(from, to, msg, username, 440, "Address Family not Supported");
    }
    const lifetimeS = this.#lifetime(msg);
    this.#allocations.set(key(from), {
      client: from,
      listen: to,
      username,
      relay4,
      relay6,
      expiresAt: now + lifetimeS * 1000,
      channels: new Map(),
    });
    const b = this.#response(msg, StunClass.Success);
    if (relay4 !== null) b.addXorAddress(StunAttr.XorRelayedAddress, relay4);
    if (relay6 !== null) b.addXorAddress(StunAttr.XorRelayedAddress, relay6);
    b.addXorAddress(StunAttr.XorMappedAddress, from).addU32(StunAttr.Lifetime, lifetimeS);
    this.#send(to, from, this.#sign(b, username).build());
  }

  #handleRefresh(from: SocketAddr, to: SocketAddr, msg: StunMessage, username: string, now: number): void {
    const a = this.#allocations.get(key(from));
    if (this.dialect === "coturn" && msg.has(StunAttr.RequestedTransport)) {
      return this.#error(from, to, msg, username, 420, "Unknown Attribute", [StunAttr.RequestedTransport]);
    }
    if (a === undefined) return this.#error(from, to, msg, username, 437, "Allocation Mismatch");
    if (
      this.dialect === "coturn" && a.relay6 === null &&
      msg.value(StunAttr.AdditionalAddressFamily)?.[0] === StunAddressFamily.V6
    ) {
      return this.#error(from, to, msg, username, 443, "Peer Address Family Mismatch");
    }
    const lifetimeS = this.#lifetime(msg);
    if (lifetimeS === 0) this.#allocations.delete(key(from));
    else a.expiresAt = now + lifetimeS * 1000;
    const b = this.#response(msg, StunClass.Success).addU32(StunAttr.Lifetime, lifetimeS);
    this.#send(to, from, this.#sign(b, username).build());
  }

  #handleChannelBind(
    from: SocketAddr,
    to: SocketAddr,
    msg: StunMessage,
    username: string,
    now: number,
  ): void {
    const a = this.#allocations.get(key(from));
    if (a === undefined) return this.#error(from, to, msg, username, 437, "Allocation Mismatch");
    const peer = msg.xorAddress(StunAttr.XorPeerAddress);
    const number = msg.value(StunAttr.ChannelNumber);
    if (peer === null || number === undefined || number.length !== 4) {
      return this.#error(from, to, msg, username, 400, "Bad Request");
    }
    const channel = (number[0]! << 8) | number[1]!;
    if (channel < 0x4000 || channel > 0x4fff) return this.#error(from, to, msg, username, 400, "Bad Request");
    if ((peer.family === 4 ? a.relay4 : a.relay6) === null) {
      return this.#error(from, to, msg, username, 443, "Peer Address Family Mismatch");
    }
    const existing = a.channels.get(channel);
    if (existing !== undefined && !sameAddr(existing.peer, peer)) {
      return this.#error(from, to, msg, username, 400, "Bad Request");
    }
    for (const c of a.channels.values()) {
      if (c.number !== channel && sameAddr(c.peer, peer)) {
        return this.#error(from, to, msg, username, 400, "Bad Request");
      }
    }
    a.channels.set(channel, { number: channel, peer, expiresAt: now + CHANNEL_LIFETIME_MS });
    this.#send(to, from, this.#sign(this.#response(msg, StunClass.Success), username).build());
  }

  #lifetime(msg: StunMessage): number {
    const requested = msg.u32Attr(StunAttr.Lifetime);
    if (requested === 0) return 0;
    const max = this.#options.maxLifetimeS ?? 3600;
    return Math.min(requested ?? this.#options.defaultLifetimeS ?? 600, max);
  }

  #error(
    from: SocketAddr,
    to: SocketAddr,
    msg: StunMessage,
    username: string | null,
    code: number,
    reason: string,
    unknown: number[] = [],
  ): void {
    this.errorsSent.push(code);
    const b = this.#response(msg, StunClass.Error).addErrorCode(code, reason);
    if (unknown.length > 0) b.addUnknownAttributes(unknown);
    if (code === 401 || code === 438) {
      const nonce = this.#newNonce();
      b.addString(StunAttr.Realm, this.realm).addString(StunAttr.Nonce, nonce);
      if (this.dialect === "coturn") username = null; // coturn does not sign challenges
    }
    if (this.dialect === "coturn" && code === 400) username = null;
    this.#send(to, from, this.#sign(b, username).build());
  }

  #newNonce(): string {
    const bytes = new Uint8Array(8);
    this.#options.rng.fill(bytes);
    const nonce = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
    this.#nonces.set(nonce, this.#options.nonceUses ?? 10);
    return nonce;
  }

  #response(msg: StunMessage, cls: number): StunMessageBuilder {
    return new StunMessageBuilder(msg.method, cls, msg.transactionId).addString(
      StunAttr.Software,
      this.#software,
    );
  }

  /** Adds MESSAGE-INTEGRITY with the user's key when the user is known. */
  #sign(b: StunMessageBuilder, username: string | null): StunMessageBuilder {
    const password = username === null ? undefined : this.#users.get(username);
    if (password !== undefined) b.addMessageIntegrity(longTermKey(username!, this.realm, password));
    return b;
  }

  #send(source: SocketAddr, destination: SocketAddr, payload: Uint8Array): void {
    this.#transmits.push({ source, destination, payload });
  }
}

function key(addr: SocketAddr): string {
  return formatSocketAddr(addr);
}

function sameAddr(a: SocketAddr, b: SocketAddr): boolean {
  return a.port === b.port && a.ip === b.ip;
}
