/**
 * TURN channel bookkeeping of one allocation (snownet `ChannelBindings`).
 *
 * Rules (spec §3.5): numbers 0x4000–0x4FFF handed out round-robin starting after the last one used;
 * a binding lives 10 min on the relay; a bound channel that received data since its last (re)bind is
 * refreshed after 5 min; an idle one is not; a number may be given to another peer only when it saw
 * no data since its last bind and 10 + 5 min have passed (RFC 8656 §12: rebinding waits 5 min after
 * expiry). Sending uses a confirmed channel first, else one still in flight (optimistic).
 *
 * The send and receive lookups are hot-path: numeric map by channel number, and a per-IP list of the
 * (few) channels to that IP, so no key strings are built per packet.
 *
 * @module
 */

import type { SocketAddr } from "../wire/ip_addr.ts";

/** First channel number Firezone allocates. */
export const FIRST_CHANNEL = 0x4000;
/** Last channel number Firezone allocates. */
export const LAST_CHANNEL = 0x4fff;
/** How long a relay keeps a channel binding. */
export const CHANNEL_LIFETIME_MS = 10 * 60_000;
/** RFC 8656: wait this long after expiry before rebinding a number to a different peer. */
export const CHANNEL_REBIND_TIMEOUT_MS = 5 * 60_000;
/** Channels with activity are refreshed once this old. */
export const CHANNEL_REFRESH_AFTER_MS = CHANNEL_LIFETIME_MS / 2;

/** One channel to a peer. */
export class Channel {
  readonly number: number;
  readonly peer: SocketAddr;
  /** False while the CHANNEL-BIND is unconfirmed. */
  bound = false;
  /** When the channel was created or last confirmed. */
  boundAt: number;
  /** When data was last received on it (== boundAt: none since). */
  lastReceived: number;

  constructor(number: number, peer: SocketAddr, now: number) {
    this.number = number;
    this.peer = peer;
    this.boundAt = now;
    this.lastReceived = now;
  }

  age(now: number): number {
    return now - this.boundAt;
  }

  /** No data received since the channel was created or last confirmed. */
  noActivity(): boolean {
    return this.lastReceived === this.boundAt;
  }

  /** Confirmed and still alive on the relay. */
  connectedTo(peer: SocketAddr, now: number): boolean {
    return this.bound && samePeer(this.peer, peer) && this.age(now) < CHANNEL_LIFETIME_MS;
  }

  /** Confirmed or in flight, and still alive on the relay. */
  inflightTo(peer: SocketAddr, now: number): boolean {
    return samePeer(this.peer, peer) && this.age(now) < CHANNEL_LIFETIME_MS;
  }

  /** Confirmed and not yet reusable by another peer (lifetime + rebind timeout). */
  boundTo(peer: SocketAddr, now: number): boolean {
    return this.bound && samePeer(this.peer, peer) &&
      this.age(now) < CHANNEL_LIFETIME_MS + CHANNEL_REBIND_TIMEOUT_MS;
  }

  canRebind(now: number): boolean {
    return this.noActivity() && this.age(now) >= CHANNEL_LIFETIME_MS + CHANNEL_REBIND_TIMEOUT_MS;
  }

  /** Older than 5 min and received data since its last bind. */
  needsRefresh(now: number): boolean {
    return this.age(now) >= CHANNEL_REFRESH_AFTER_MS && !this.noActivity();
  }

  setConfirmed(now: number): void {
    this.bound = true;
    this.boundAt = now;
    this.lastReceived = now;
  }

  recordReceived(now: number): void {
    this.lastReceived = now;
  }
}

/** The channels of one allocation. */
export class ChannelBindings {
  readonly #byNumber = new Map<number, Channel>();
  /** Channels by peer IP, each list sorted by channel number (the order upstream's BTreeMap scan gives). */
  readonly #byIp = new Map<string, Channel[]>();
  #nextChannel = FIRST_CHANNEL;

  get size(): number {
    return this.#byNumber.size;
  }

  get(number: number): Channel | undefined {
    return this.#byNumber.get(number);
  }

  /** All channels in number order (control path). */
  channels(): Channel[] {
    return [...this.#byNumber.values()].sort((a, b) => a.number - b.number);
  }

  /**
   * Receive path: the bound channel `number`, recording activity; undefined when unknown or not yet
   * confirmed (data on an unconfirmed channel is dropped).
   */
  tryHandlePacket(number: number, now: number): Channel | undefined {
    const channel = this.#byNumber.get(number);
    if (channel === undefined || !channel.bound) return undefined;
    channel.recordReceived(now);
    return channel;
  }

  /** Send path: a confirmed live channel to `peer`, else one in flight; -1 when there is none. */
  channelForSend(peer: SocketAddr, now: number): number {
    const list = this.#byIp.get(peer.ip);
    if (list === undefined) return -1;
    let inflight = -1;
    for (let i = 0; i < list.length; i++) {
      const c = list[i]!;
      if (c.peer.port !== peer.port || c.age(now) >= CHANNEL_LIFETIME_MS) continue;
      if (c.bound) return c.number;
      if (inflight < 0) inflight = c.number;
    }
    return inflight;
  }

  connectedChannelToPeer(peer: SocketAddr, now: number): number {
    return this.#find(peer, (c) => c.connectedTo(peer, now));
  }

  inflightChannelToPeer(peer: SocketAddr, now: number): number {
    return this.#find(peer, (c) => c.inflightTo(peer, now));
  }

  boundChannelToPeer(peer: SocketAddr, now: number): number {
    return this.#find(peer, (c) => c.boundTo(peer, now));
  }

  /**
   * The number to (re)bind for `peer`: its still-bound channel if any, else the next free or
   * reusable number after the last one handed out (round-robin). -1 when all are in use.
   */
  newChannelToPeer(peer: SocketAddr, now: number): number {
    const existing = this.boundChannelToPeer(peer, now);
    if (existing >= 0) return existing;
    const number = this.#nextChannelNumber(now);
    if (number < 0) return -1;
    this.#nextChannel = number === LAST_CHANNEL ? FIRST_CHANNEL : number + 1;
    this.#remove(number);
    this.#insert(new Channel(number, peer, now));
    return number;
  }

  /** Channels due for a refresh that are not already being bound, in number order. */
  channelsToRefresh(now: number, isInflight: (number: number) => boolean): Channel[] {
    const out: Channel[] = [];
    for (const c of this.#byNumber.values()) if (c.needsRefresh(now) && !isInflight(c.number)) out.push(c);
    return out.sort((a, b) => a.number - b.number);
  }

  /** Forgets a channel whose CHANNEL-BIND failed. */
  handleFailedBinding(number: number): void {
    this.#remove(number);
  }

  /** Marks `number` confirmed; false when it is unknown. */
  setConfirmed(number: number, now: number): boolean {
    const channel = this.#byNumber.get(number);
    if (channel === undefined) return false;
    channel.setConfirmed(now);
    return true;
  }

  clear(): void {
    this.#byNumber.clear();
    this.#byIp.clear();
  }

  #find(peer: SocketAddr, pred: (c: Channel) => boolean): number {
    const list = this.#byIp.get(peer.ip);
    if (list === undefined) return -1;
    for (const c of list) if (pred(c)) return c.number;
    return -1;
  }

  #nextChannelNumber(now: number): number {
    const span = LAST_CHANNEL - FIRST_CHANNEL + 1;
    for (let i = 0; i < span; i++) {
      const number = FIRST_CHANNEL + ((this.#nextChannel - FIRST_CHANNEL + i) % span);
      const channel = this.#byNumber.get(number);
      if (channel === undefined || channel.canRebind(now)) return number;
    }
    return -1;
  }

  #insert(channel: Channel): void {
    this.#byNumber.set(channel.number, channel);
    const list = this.#byIp.get(channel.peer.ip);
    if (list === undefined) {
      this.#byIp.set(channel.peer.ip, [channel]);
      return;
    }
    let i = list.length;
    while (i > 0 && list[i - 1]!.number > channel.number) i--;
    list.splice(i, 0, channel);
  }

  #remove(number: number): void {
    const channel = this.#byNumber.get(number);
    if (channel === undefined) return;
    this.#byNumber.delete(number);
    const list = this.#byIp.get(channel.peer.ip)!;
    list.splice(list.indexOf(channel), 1);
    if (list.length === 0) this.#byIp.delete(channel.peer.ip);
  }
}

function samePeer(a: SocketAddr, b: SocketAddr): boolean {
  return a.port === b.port && a.ip === b.ip;
}
