/**
 * A sans-IO full-ICE agent (RFC 8445 with trickle, RFC 8838), shaped like str0m's `IceAgent` as
 * Firezone drives it: one data stream, one component, UDP only, timing advance Ta = 0, at most 100
 * candidate pairs, no Frozen state, failed pairs removed.
 *
 * The gateway runs it **controlled**. The controlling role exists for tests and the simulated
 * client; it uses *regular* nomination like str0m: once a pair succeeded, the best succeeded pair
 * is nominated by a check that carries USE-CANDIDATE (and so do its later keepalive checks), and
 * `NominatedSend` is emitted when that check is answered. A better pair succeeding later is
 * nominated the same way. str0m-style controlled agents nominate on any valid USE-CANDIDATE
 * check, so regular and aggressive nomination both work against them; regular nomination also
 * keeps the controlled side from flapping between pairs while checks are still running.
 *
 * The controlled side reports `NominatedSend` as soon as a valid USE-CANDIDATE check arrives on a
 * pair (the best such pair wins), without waiting for its own triggered check on that pair: the
 * controlling side only nominates pairs it has already seen succeed (str0m behaves the same way).
 *
 * Pair failure follows str0m's `StunTiming`: a never-answered pair is removed `iceTimeoutMs()`
 * after its first check (15 250 ms active, 100 s idle); a succeeded pair that goes silent keeps
 * its keepalive rhythm for one more max RTO, then backs off from 500 ms and is removed after
 * `maxRetransmits` unanswered checks plus the last delay (16.5 s after the first lost keepalive
 * with active timings). With no pair left the state becomes `Disconnected`.
 *
 * Inputs: {@link IceAgent.addLocalCandidate}, {@link IceAgent.addRemoteCandidate},
 * {@link IceAgent.handlePacket} (after {@link IceAgent.acceptsMessage}), {@link IceAgent.handleTimeout}.
 * Outputs: {@link IceAgent.pollTransmit}, {@link IceAgent.pollEvent}, {@link IceAgent.pollTimeout}.
 *
 * @module
 */

import { logger } from "../log.ts";
import type { Rng } from "../rng.ts";
import { RingQueue } from "../util/ring_queue.ts";
import { formatSocketAddr, sameSocketAddr, type SocketAddr } from "../wire/ip_addr.ts";
import {
  shortTermKey,
  StunAttr,
  StunClass,
  type StunMessage,
  StunMessageBuilder,
  StunMethod,
  transactionKey,
} from "../wire/stun.ts";
import {
  type Candidate,
  candidatePriority,
  computeFoundation,
  equivalentCandidates,
  localPreference,
  prflxPriority,
  remoteServerReflexive,
  withFields,
} from "./candidate.ts";
import { CandidatePair, CheckState, comparePairPriority, NominationState, pairPriority } from "./pair.ts";
import { ACTIVE_STUN_TIMING, iceTimeoutMs, IDLE_STUN_TIMING, type StunTiming } from "./stun_timing.ts";

const log = logger("fz_gateway::ice");

/** ICE username fragment and password of one side. */
export interface IceCredentials {
  readonly ufrag: string;
  readonly pwd: string;
}

/** Connection state (str0m `IceConnectionState`; there is no Failed: trickle never ends). */
export type IceState = "New" | "Checking" | "Connected" | "Completed" | "Disconnected";

/** What the agent reports to its parent. */
export type IceEvent =
  | { readonly type: "StateChanged"; readonly state: IceState }
  /** Send data from `source` (a local host or relayed address) to `destination`; the latest one wins. */
  | { readonly type: "NominatedSend"; readonly source: SocketAddr; readonly destination: SocketAddr }
  /** A remote address valid STUN came from (once per address). */
  | { readonly type: "DiscoveredRecv"; readonly source: SocketAddr };

/** A datagram to send: `source` is a local host address or one of our relayed addresses. */
export interface IceTransmit {
  readonly source: SocketAddr;
  readonly destination: SocketAddr;
  readonly payload: Uint8Array;
}

/** Upper bound of the candidate-pair list (RFC 8445 §6.1.2.5 default). */
export const MAX_CANDIDATE_PAIRS = 100;
/** ICE STUN messages must fit str0m's `DATAGRAM_MTU` buffer. */
export const ICE_STUN_MTU_BYTES = 1150;
/** Requests that arrive before the remote credentials are queued, at most this many. */
const MAX_QUEUED_REQUESTS = 100;
/** Foundation of remote prflx candidates learned from checks (replaced if the peer signals them). */
const REMOTE_PRFLX_FOUNDATION = "tmpprflx";
const ROLE_CONFLICT = 487;

interface CandidateEntry {
  c: Candidate;
  discarded: boolean;
}

interface PendingRequest {
  readonly now: number;
  readonly source: SocketAddr;
  readonly destination: SocketAddr;
  readonly transactionId: Uint8Array;
  readonly priority: number;
  readonly useCandidate: boolean;
  readonly remoteUfrag: string;
  readonly peerControlling: bigint | null;
  readonly peerControlled: bigint | null;
}

/** Options for {@link IceAgent}. */
export interface IceAgentOptions {
  /** True for the nominating side (Firezone clients); the gateway is controlled. */
  readonly controlling: boolean;
  readonly local: IceCredentials;
  readonly remote?: IceCredentials;
  /** Source of the tie-breaker and transaction ids. */
  readonly rng: Rng;
  readonly now: number;
}

/** One ICE session with one peer. See the module documentation. */
export class IceAgent {
  readonly #rng: Rng;
  readonly #local: IceCredentials;
  readonly #localKey: Uint8Array;
  #remote: IceCredentials | undefined;
  #remoteKey: Uint8Array | undefined;
  #controlling: boolean;
  readonly #tieBreaker: bigint;
  #state: IceState = "New";
  #timing: StunTiming = ACTIVE_STUN_TIMING;
  #lastNow: number;

  readonly #locals: CandidateEntry[] = [];
  readonly #remotes: CandidateEntry[] = [];
  /** Sorted best first. */
  #pairs: CandidatePair[] = [];
  #nextPairId = 1;
  /** Transaction key of every check a pair still remembers → that pair. */
  readonly #checks = new Map<string, CandidatePair>();
  #nominatedSendId = 0;

  readonly #transmits = new RingQueue<IceTransmit>(16);
  readonly #events = new RingQueue<IceEvent>(8);
  readonly #queuedRequests = new RingQueue<PendingRequest>(4);
  readonly #discovered = new Set<string>();

  constructor(opts: IceAgentOptions) {
    this.#rng = opts.rng;
    this.#controlling = opts.controlling;
    this.#local = opts.local;
    this.#localKey = shortTermKey(opts.local.pwd);
    if (opts.remote) this.setRemoteCredentials(opts.remote);
    const tie = new Uint32Array(2);
    tie[0] = opts.rng.nextU32();
    tie[1] = opts.rng.nextU32();
    this.#tieBreaker = (BigInt(tie[0]) << 32n) | BigInt(tie[1]);
    this.#lastNow = opts.now;
  }

  // --- configuration and inspection ----------------------------------------------------------

  get controlling(): boolean {
    return this.#controlling;
  }

  get state(): IceState {
    return this.#state;
  }

  get localCredentials(): IceCredentials {
    return this.#local;
  }

  get remoteCredentials(): IceCredentials | undefined {
    return this.#remote;
  }

  /** The random 64-bit ICE-CONTROLLING/ICE-CONTROLLED tie-breaker. */
  get tieBreaker(): bigint {
    return this.#tieBreaker;
  }

  /** The timing in force (active or idle). */
  get timing(): StunTiming {
    return this.#timing;
  }

  /** How long the current timing tolerates unanswered checks (15 250 ms active, 100 s idle). */
  iceTimeoutMs(): number {
    return iceTimeoutMs(this.#timing);
  }

  /** Sets (or replaces) the peer's credentials; checks start once they are known. */
  setRemoteCredentials(c: IceCredentials): void {
    this.#remote = c;
    this.#remoteKey = shortTermKey(c.pwd);
  }

  /** Switches between active (250 ms / 1500 ms / 12) and idle (25 s / 25 s / 4) check timings. */
  setIdle(idle: boolean): void {
    this.setTiming(idle ? IDLE_STUN_TIMING : ACTIVE_STUN_TIMING);
  }

  /** Uses an explicit timing (tests, or a parent with its own policy). */
  setTiming(t: StunTiming): void {
    if (t === this.#timing) return;
    this.#timing = t;
    for (const p of this.#pairs) p.resetCache();
  }

  /** Local candidates that are in use (not invalidated or replaced), including learned prflx ones. */
  localCandidates(): readonly Candidate[] {
    return this.#locals.filter((e) => !e.discarded).map((e) => e.c);
  }

  /** Remote candidates that are in use, including learned prflx and optimistic srflx ones. */
  remoteCandidates(): readonly Candidate[] {
    return this.#remotes.filter((e) => !e.discarded).map((e) => e.c);
  }

  /** The pair `NominatedSend` last reported, or null. */
  nominatedPair(): { source: SocketAddr; destination: SocketAddr } | null {
    const p = this.#pairs.find((x) => x.id === this.#nominatedSendId);
    if (!p) return null;
    return { source: this.#locals[p.localIdx]!.c.base, destination: this.#remotes[p.remoteIdx]!.c.addr };
  }

  /** A snapshot of the checklist (best first), for diagnostics and tests. */
  pairs(): readonly {
    local: Candidate;
    remote: Candidate;
    state: CheckState;
    nominated: boolean;
    priority: { hi: number; lo: number };
  }[] {
    return this.#pairs.map((p) => ({
      local: this.#locals[p.localIdx]!.c,
      remote: this.#remotes[p.remoteIdx]!.c,
      state: p.state,
      nominated: p.isNominated,
      priority: p.priority,
    }));
  }

  // --- candidates -----------------------------------------------------------------------------

  /**
   * Adds a local host or relay candidate (srflx works too but is redundant with its base).
   * Assigns the local preference (str0m bands, minus 2 per earlier candidate of the same kind and
   * family, minus 1000 for a cross-family relay), the priority, foundation and our ufrag. Returns
   * the candidate as added (to be signalled), or null when it is redundant with a better one.
   */
  addLocalCandidate(c: Candidate): Candidate | null {
    let sameKind = 0;
    for (const e of this.#locals) if (e.c.kind === c.kind && e.c.addr.family === c.addr.family) sameKind++;
    const crossFamily = c.kind === "relay" && c.relaySocket !== undefined &&
      c.relaySocket.family !== c.addr.family;
    const priority = candidatePriority(c.kind, localPreference(c.kind, c.addr.family, sameKind, crossFamily));
    const added = withFields(c, {
      priority,
      foundation: computeFoundation(c.kind, c.base, c.raddr, priority),
      ufrag: this.#local.ufrag,
    });

    let idx = -1;
    const existing = this.#locals.findIndex((e) =>
      sameSocketAddr(e.c.addr, added.addr) && sameSocketAddr(e.c.base, added.base)
    );
    if (existing >= 0) {
      const other = this.#locals[existing]!;
      if (other.discarded && other.c.kind === added.kind && equivalentCandidates(other.c, added)) {
        other.discarded = false;
        idx = existing;
      } else if (added.priority < other.c.priority) {
        if (log.debugEnabled) log.debug("Reject redundant local candidate", { candidate: describe(added) });
        return null;
      } else {
        other.discarded = true;
        this.#removePairsWhere((p) => p.localIdx === existing);
      }
    }
    if (idx < 0) {
      this.#locals.push({ c: added, discarded: false });
      idx = this.#locals.length - 1;
    }
    if (log.debugEnabled) log.debug("Add local candidate", { candidate: describe(this.#locals[idx]!.c) });
    const remoteIdxs: number[] = [];
    for (let i = 0; i < this.#remotes.length; i++) {
      const r = this.#remotes[i]!;
      if (!r.discarded && r.c.addr.family === added.addr.family) remoteIdxs.push(i);
    }
    this.#formPairs([idx], remoteIdxs);
    return this.#locals[idx]!.c;
  }

  /**
   * Adds a trickled remote candidate (rejected when its ufrag is not the peer's), pairs it with
   * every local candidate of its family, then synthesises the optimistic srflx candidates
   * (every remote srflx IP × every remote host port of the same family, base = that host).
   */
  addRemoteCandidate(c: Candidate, now: number): void {
    this.#lastNow = Math.max(this.#lastNow, now);
    if (!this.#addRemote(c)) return;
    this.#addOptimisticCandidates();
  }

  /** Forgets a local candidate and its pairs. Returns true when it was found. */
  invalidateLocalCandidate(c: Candidate): boolean {
    const idx = this.#locals.findIndex((e) => !e.discarded && sameIdentity(e.c, c));
    if (idx < 0) return false;
    this.#locals[idx]!.discarded = true;
    this.#removePairsWhere((p) => p.localIdx === idx);
    return true;
  }

  /** Forgets a remote candidate and its pairs. Returns true when it was found. */
  invalidateRemoteCandidate(c: Candidate): boolean {
    const idx = this.#remotes.findIndex((e) => !e.discarded && sameIdentity(e.c, c));
    if (idx < 0) return false;
    this.#remotes[idx]!.discarded = true;
    this.#removePairsWhere((p) => p.remoteIdx === idx);
    return true;
  }

  #addRemote(candidate: Candidate): boolean {
    if (candidate.component !== 1) return false;
    if (this.#remote && candidate.ufrag !== undefined && candidate.ufrag !== this.#remote.ufrag) {
      if (log.debugEnabled) {
        log.debug("Reject remote candidate with foreign ufrag", { candidate: describe(candidate) });
      }
      return false;
    }
    const c = withFields(candidate, { ufrag: undefined });

    let idx = this.#remotes.findIndex((e) => equivalentCandidates(e.c, c));
    if (idx >= 0) {
      const e = this.#remotes[idx]!;
      if (!e.discarded) return false;
      e.discarded = false;
    } else {
      const prflx = this.#remotes.findIndex((e) =>
        e.c.kind === "prflx" && e.c.foundation === REMOTE_PRFLX_FOUNDATION && sameSocketAddr(e.c.addr, c.addr)
      );
      if (prflx >= 0) {
        // The peer now signals the candidate we learned from its checks: take its real identity.
        this.#remotes[prflx] = { c, discarded: false };
        idx = prflx;
      } else {
        this.#remotes.push({ c, discarded: false });
        idx = this.#remotes.length - 1;
      }
    }
    if (log.debugEnabled) log.debug("Add remote candidate", { candidate: describe(c) });
    const localIdxs: number[] = [];
    for (let i = 0; i < this.#locals.length; i++) {
      const l = this.#locals[i]!;
      if (!l.discarded && l.c.addr.family === c.addr.family) localIdxs.push(i);
    }
    this.#formPairs(localIdxs, [idx]);
    return true;
  }

  #addOptimisticCandidates(): void {
    const extra: Candidate[] = [];
    for (const s of this.#remotes) {
      if (s.discarded || s.c.kind !== "srflx") continue;
      for (const h of this.#remotes) {
        if (h.discarded || h.c.kind !== "host" || h.c.addr.family !== s.c.addr.family) continue;
        const o = remoteServerReflexive(
          { family: s.c.addr.family, ip: s.c.addr.ip, port: h.c.addr.port },
          h.c.addr,
        );
        if (this.#remotes.some((e) => equivalentCandidates(e.c, o))) continue;
        if (extra.some((e) => equivalentCandidates(e, o))) continue;
        extra.push(o);
      }
    }
    for (const o of extra) {
      if (log.debugEnabled) log.debug("Add optimistic remote candidate", { candidate: describe(o) });
      this.#addRemote(o);
    }
  }

  /** Pairs locals × remotes, replacing redundant lower-priority pairs; keeps the list sorted and capped. */
  #formPairs(localIdxs: readonly number[], remoteIdxs: readonly number[]): void {
    for (const li of localIdxs) {
      const local = this.#locals[li]!.c;
      for (const ri of remoteIdxs) {
        const remote = this.#remotes[ri]!.c;
        const prio = this.#pairPriorityFor(local, remote);
        const pair = new CandidatePair(this.#nextPairId++, li, ri, prio);
        // Redundant: same local base and same remote address (RFC 8445 §6.1.2.4).
        const j = this.#pairs.findIndex((p) =>
          sameSocketAddr(this.#locals[p.localIdx]!.c.base, local.base) &&
          sameSocketAddr(this.#remotes[p.remoteIdx]!.c.addr, remote.addr)
        );
        if (j >= 0) {
          const old = this.#pairs[j]!;
          if (comparePairPriority(old.priority, prio) >= 0) continue;
          pair.copyNominationFrom(old);
          this.#forgetChecks(old);
          if (old.id === this.#nominatedSendId) this.#nominatedSendId = 0;
          this.#pairs[j] = pair;
          continue;
        }
        this.#pairs.push(pair);
      }
    }
    this.#sortAndCapPairs();
  }

  #sortAndCapPairs(): void {
    this.#pairs.sort((a, b) => comparePairPriority(b.priority, a.priority));
    if (this.#pairs.length > MAX_CANDIDATE_PAIRS) {
      log.warn("Exceeded max number of candidate pairs", {
        max: MAX_CANDIDATE_PAIRS,
        pairs: this.#pairs.length,
      });
      for (const p of this.#pairs.splice(MAX_CANDIDATE_PAIRS)) this.#forgetChecks(p);
    }
  }

  #pairPriorityFor(local: Candidate, remote: Candidate): { hi: number; lo: number } {
    return this.#controlling
      ? pairPriority(local.priority, remote.priority)
      : pairPriority(remote.priority, local.priority);
  }

  #removePairsWhere(pred: (p: CandidatePair) => boolean): void {
    const keep: CandidatePair[] = [];
    for (const p of this.#pairs) {
      if (pred(p)) this.#forgetChecks(p);
      else keep.push(p);
    }
    this.#pairs = keep;
  }

  #forgetChecks(p: CandidatePair): void {
    for (const k of p.attemptKeys()) if (this.#checks.get(k) === p) this.#checks.delete(k);
  }

  // --- STUN input -----------------------------------------------------------------------------

  /**
   * Whether a parsed STUN message belongs to this agent (spec §3.4 step 2). Binding requests:
   * USERNAME `"<local ufrag>:<remote ufrag>"` (the remote part only checked once known), PRIORITY
   * present, MESSAGE-INTEGRITY with our password. Binding responses: a transaction id of one of
   * our checks and MESSAGE-INTEGRITY with the peer's password. A FINGERPRINT, when present, must match.
   */
  acceptsMessage(msg: StunMessage): boolean {
    if (msg.method !== StunMethod.Binding) return false;
    if (msg.has(StunAttr.Fingerprint) && !msg.verifyFingerprint()) return false;
    if (msg.cls === StunClass.Request) {
      const username = msg.stringAttr(StunAttr.Username);
      if (username === null) return false;
      const colon = username.indexOf(":");
      if (colon < 0) return false;
      if (username.slice(0, colon) !== this.#local.ufrag) return false;
      if (this.#remote && username.slice(colon + 1) !== this.#remote.ufrag) return false;
      if (msg.u32Attr(StunAttr.Priority) === null) return false;
      return msg.verifyIntegrity(this.#localKey);
    }
    if (msg.cls === StunClass.Success || msg.cls === StunClass.Error) {
      if (!this.#remoteKey) return false;
      if (!this.#checks.has(transactionKey(msg.transactionId))) return false;
      return msg.verifyIntegrity(this.#remoteKey);
    }
    return false;
  }

  /**
   * Handles a STUN message that arrived from `source` at our `destination` (a local host address,
   * or our relayed address when it came through a relay channel). Returns false when the message
   * is not for this agent.
   */
  handlePacket(now: number, source: SocketAddr, destination: SocketAddr, msg: StunMessage): boolean {
    this.#lastNow = Math.max(this.#lastNow, now);
    if (!this.acceptsMessage(msg)) return false;
    if (msg.cls === StunClass.Request) {
      this.#onRequest(now, source, destination, msg);
    } else if (msg.cls === StunClass.Success) {
      this.#onSuccess(now, msg);
    } else {
      this.#onError(now, msg);
    }
    const key = formatSocketAddr(source);
    if (!this.#discovered.has(key)) {
      this.#discovered.add(key);
      this.#events.push({ type: "DiscoveredRecv", source });
    }
    return true;
  }

  #onRequest(now: number, source: SocketAddr, destination: SocketAddr, msg: StunMessage): void {
    const username = msg.stringAttr(StunAttr.Username)!;
    const req: PendingRequest = {
      now,
      source,
      destination,
      transactionId: msg.transactionId,
      priority: msg.u32Attr(StunAttr.Priority)!,
      useCandidate: msg.has(StunAttr.UseCandidate),
      remoteUfrag: username.slice(username.indexOf(":") + 1),
      peerControlling: msg.u64Attr(StunAttr.IceControlling),
      peerControlled: msg.u64Attr(StunAttr.IceControlled),
    };
    if (this.#remote) {
      this.#serveRequest(req);
      return;
    }
    // The peer's checks can beat its credentials through signalling: keep them for a while.
    this.#queuedRequests.push(req);
    while (this.#queuedRequests.length > MAX_QUEUED_REQUESTS) this.#queuedRequests.shift();
  }

  #serveRequest(req: PendingRequest): void {
    const remoteCreds = this.#remote!;
    if (req.remoteUfrag !== remoteCreds.ufrag) return;

    // RFC 8445 §7.3.1.1 role conflicts: the larger tie-breaker keeps (or takes) the controlling role.
    if (this.#controlling && req.peerControlling !== null) {
      if (this.#tieBreaker >= req.peerControlling) {
        this.#sendRoleConflict(req);
        return;
      }
      this.#switchRole(false);
    } else if (!this.#controlling && req.peerControlled !== null) {
      if (this.#tieBreaker < req.peerControlled) {
        this.#sendRoleConflict(req);
        return;
      }
      this.#switchRole(true);
    }
    if (req.useCandidate && this.#controlling) return; // only the controlling side nominates

    let remoteIdx = -1;
    for (let i = 0; i < this.#remotes.length; i++) {
      const e = this.#remotes[i]!;
      if (e.discarded || !sameSocketAddr(e.c.addr, req.source)) continue;
      if (remoteIdx < 0 || e.c.priority > this.#remotes[remoteIdx]!.c.priority) remoteIdx = i;
    }
    if (remoteIdx < 0) {
      if (this.#remotes.some((e) => e.discarded && sameSocketAddr(e.c.addr, req.source))) return;
      // RFC 8445 §7.3.1.3: a new peer-reflexive remote candidate, not paired with other locals.
      const prflx: Candidate = {
        kind: "prflx",
        addr: req.source,
        base: req.source,
        priority: req.priority,
        foundation: REMOTE_PRFLX_FOUNDATION,
        component: 1,
      };
      if (log.debugEnabled) log.debug("Learned remote prflx candidate", { candidate: describe(prflx) });
      this.#remotes.push({ c: prflx, discarded: false });
      remoteIdx = this.#remotes.length - 1;
    }

    const localIdx = this.#locals.findIndex((e) =>
      (e.c.kind === "host" || e.c.kind === "relay") && sameSocketAddr(e.c.addr, req.destination)
    );
    if (localIdx < 0) {
      if (log.debugEnabled) log.debug("Drop check to an unknown local address", { to: req.destination });
      return;
    }
    let pair = this.#pairs.find((p) => p.localIdx === localIdx && p.remoteIdx === remoteIdx);
    if (!pair) {
      if (this.#locals[localIdx]!.discarded) return;
      const local = this.#locals[localIdx]!.c;
      const remote = this.#remotes[remoteIdx]!.c;
      pair = new CandidatePair(this.#nextPairId++, localIdx, remoteIdx, this.#pairPriorityFor(local, remote));
      this.#pairs.push(pair);
      this.#sortAndCapPairs();
    }
    pair.recordRemoteRequest(req.now);

    const local = this.#locals[localIdx]!.c;
    const reply = new StunMessageBuilder(StunMethod.Binding, StunClass.Success, req.transactionId)
      .addXorAddress(StunAttr.XorMappedAddress, req.source)
      .addMessageIntegrity(this.#localKey)
      .addFingerprint()
      .build();
    this.#transmit(local.base, this.#remotes[remoteIdx]!.c.addr, reply);

    if (!this.#pairs.includes(pair)) return; // capped away
    if (!this.#controlling && req.useCandidate && !pair.isNominated) {
      // Nominated by the peer: a triggered check goes out next, and we may switch to this pair.
      pair.nominate();
      this.#evaluateNomination();
      this.#evaluateState(req.now);
    } else if (this.#controlling && pair.state === CheckState.Succeeded) {
      this.#evaluateNomination();
    }
  }

  #sendRoleConflict(req: PendingRequest): void {
    const local = this.#locals.find((e) =>
      (e.c.kind === "host" || e.c.kind === "relay") && sameSocketAddr(e.c.addr, req.destination)
    );
    if (!local) return;
    const reply = new StunMessageBuilder(StunMethod.Binding, StunClass.Error, req.transactionId)
      .addErrorCode(ROLE_CONFLICT, "Role Conflict")
      .addMessageIntegrity(this.#localKey)
      .addFingerprint()
      .build();
    this.#transmit(local.c.base, req.source, reply);
  }

  #switchRole(controlling: boolean): void {
    if (this.#controlling === controlling) return;
    log.info("Switching ICE role after a role conflict", { controlling });
    this.#controlling = controlling;
    for (const p of this.#pairs) {
      p.priority = this.#pairPriorityFor(this.#locals[p.localIdx]!.c, this.#remotes[p.remoteIdx]!.c);
    }
    this.#sortAndCapPairs();
  }

  #onSuccess(now: number, msg: StunMessage): void {
    const key = transactionKey(msg.transactionId);
    const pair = this.#checks.get(key);
    if (!pair || !this.#pairs.includes(pair)) return; // answered too late
    const mapped = msg.xorAddress(StunAttr.XorMappedAddress);
    if (!mapped) return;

    let validIdx = this.#locals.findIndex((e) => sameSocketAddr(e.c.addr, mapped));
    if (validIdx < 0) {
      // RFC 8445 §7.2.5.3.1: a local peer-reflexive candidate (kept, not paired, not signalled).
      const from = this.#locals[pair.localIdx]!.c;
      const priority = prflxPriority(from);
      const prflx: Candidate = {
        kind: "prflx",
        addr: mapped,
        base: from.base,
        priority,
        foundation: computeFoundation("prflx", from.base, undefined, priority),
        ufrag: this.#local.ufrag,
        component: 1,
      };
      if (log.debugEnabled) log.debug("Learned local prflx candidate", { candidate: describe(prflx) });
      this.#locals.push({ c: prflx, discarded: false });
      validIdx = this.#locals.length - 1;
    }
    pair.recordResponse(now, key, validIdx);
    this.#evaluateNomination();
    this.#evaluateState(now);
  }

  #onError(now: number, msg: StunMessage): void {
    const key = transactionKey(msg.transactionId);
    const pair = this.#checks.get(key);
    if (!pair || !this.#pairs.includes(pair)) return;
    const err = msg.errorCode();
    if (err?.code !== ROLE_CONFLICT) {
      // Like str0m, other errors only mean this attempt went unanswered.
      if (log.debugEnabled) log.debug("ICE check failed", { code: err?.code, reason: err?.reason });
      return;
    }
    // RFC 8445 §7.2.5.1: take the other role and check the pair again at once.
    this.#switchRole(!this.#controlling);
    pair.restart();
    this.#evaluateState(now);
  }

  // --- time -----------------------------------------------------------------------------------

  /** Advances the agent: state, queued requests, nomination, pruning, due checks. */
  handleTimeout(now: number): void {
    this.#lastNow = Math.max(this.#lastNow, now);
    this.#evaluateState(now);

    if (this.#remote) {
      const maxAge = this.iceTimeoutMs();
      for (let r = this.#queuedRequests.shift(); r; r = this.#queuedRequests.shift()) {
        if (now - r.now < maxAge) this.#serveRequest(r);
      }
    }

    this.#evaluateNomination();
    const before = this.#pairs.length;
    this.#removePairsWhere((p) => !p.isStillPossible(now, this.#timing));
    if (this.#pairs.length !== before) {
      if (log.debugEnabled) {
        log.debug("Removed failed candidate pairs", { removed: before - this.#pairs.length });
      }
      this.#evaluateNomination();
      this.#evaluateState(now);
    }

    if (!this.#remote) return;
    for (const p of this.#pairs) {
      if (p.nextAttemptAt(now, this.#timing) <= now) this.#sendCheck(now, p);
    }
  }

  /** The next instant {@link handleTimeout} must run at; `Infinity` when nothing is scheduled. */
  pollTimeout(): number {
    if (this.#state === "New") return this.#lastNow;
    if (this.#remote && this.#queuedRequests.length > 0) return this.#lastNow;
    if (!this.#remote) return Infinity;
    let next = Infinity;
    for (const p of this.#pairs) {
      const at = p.nextAttemptAt(this.#lastNow, this.#timing);
      if (at < next) next = at;
    }
    return next < this.#lastNow ? this.#lastNow : next;
  }

  /** The next datagram to send, or undefined. */
  pollTransmit(): IceTransmit | undefined {
    return this.#transmits.shift();
  }

  /** The next event, or undefined. */
  pollEvent(): IceEvent | undefined {
    return this.#events.shift();
  }

  // --- checks and nomination --------------------------------------------------------------------

  #sendCheck(now: number, pair: CandidatePair): void {
    const local = this.#locals[pair.localIdx]!.c;
    const remote = this.#remotes[pair.remoteIdx]!.c;
    const txId = new Uint8Array(12);
    this.#rng.fill(txId);
    const key = transactionKey(txId);
    // Only the controlling side ever sends USE-CANDIDATE, and only on its nominated pair.
    const useCandidate = this.#controlling && pair.isNominated;
    const b = new StunMessageBuilder(StunMethod.Binding, StunClass.Request, txId)
      .addString(StunAttr.Username, `${this.#remote!.ufrag}:${this.#local.ufrag}`)
      .addU32(StunAttr.Priority, prflxPriority(local));
    if (this.#controlling) {
      b.addU64(StunAttr.IceControlling, this.#tieBreaker);
      if (useCandidate) b.addEmpty(StunAttr.UseCandidate);
    } else {
      b.addU64(StunAttr.IceControlled, this.#tieBreaker);
    }
    const payload = b.addMessageIntegrity(this.#remoteKey!).addFingerprint().build();
    const dropped = pair.newAttempt(now, key, this.#timing);
    if (dropped !== undefined && this.#checks.get(dropped) === pair) this.#checks.delete(dropped);
    this.#checks.set(key, pair);
    this.#transmit(local.base, remote.addr, payload);
  }

  #transmit(source: SocketAddr, destination: SocketAddr, payload: Uint8Array): void {
    if (payload.length > ICE_STUN_MTU_BYTES) {
      log.warn("ICE STUN message larger than the datagram MTU, not sent", { bytes: payload.length });
      return;
    }
    this.#transmits.push({ source, destination, payload });
  }

  /**
   * Controlling: nominate the best succeeded pair (its next check carries USE-CANDIDATE) and report
   * the best pair whose nominating check was answered. Controlled: report the best pair the peer
   * nominated. `NominatedSend` fires whenever the reported pair's priority changes.
   */
  #evaluateNomination(): void {
    let best: CandidatePair | undefined;
    if (this.#controlling) {
      let bestSucceeded: CandidatePair | undefined;
      for (const p of this.#pairs) {
        if (p.state === CheckState.Succeeded && !bestSucceeded) bestSucceeded = p;
        if (p.nomination === NominationState.Success && !best) best = p;
      }
      if (bestSucceeded && !bestSucceeded.isNominated) {
        if (log.debugEnabled) log.debug("Nominating pair", { pair: this.#describePair(bestSucceeded) });
        bestSucceeded.nominate();
      }
    } else {
      best = this.#pairs.find((p) => p.isNominated);
    }
    if (!best) return;
    const current = this.#pairs.find((p) => p.id === this.#nominatedSendId);
    if (current && comparePairPriority(current.priority, best.priority) === 0) return;
    this.#nominatedSendId = best.id;
    const source = this.#locals[best.localIdx]!.c.base;
    const destination = this.#remotes[best.remoteIdx]!.c.addr;
    if (log.debugEnabled) log.debug("Nominated pair for sending", { pair: this.#describePair(best) });
    this.#events.push({ type: "NominatedSend", source, destination });
  }

  #evaluateState(now: number): void {
    let anyNomination = false;
    let anyStillPossible = false;
    for (const p of this.#pairs) {
      if (p.isNominated) anyNomination = true;
      else if (p.isStillPossible(now, this.#timing)) anyStillPossible = true;
    }
    // Before any candidate was ever known on either side, the agent is still viable (trickle).
    if (this.#locals.length === 0 || this.#remotes.length === 0) anyStillPossible = true;

    // New only ever moves to Checking, and is then evaluated like Checking (str0m waits for the
    // next evaluation; a check handled before the first timeout would otherwise leave us in Checking).
    if (this.#state === "New") this.#setState("Checking");
    switch (this.#state) {
      case "New":
        break;
      case "Checking":
      case "Disconnected":
        if (anyNomination) this.#setState(anyStillPossible ? "Connected" : "Completed");
        else if (!anyStillPossible) this.#setState("Disconnected");
        break;
      case "Connected":
        if (anyNomination) {
          if (!anyStillPossible) this.#setState("Completed");
        } else {
          this.#setState(anyStillPossible ? "Checking" : "Disconnected");
        }
        break;
      case "Completed":
        if (anyNomination) {
          if (anyStillPossible) this.#setState("Connected");
        } else {
          this.#setState(anyStillPossible ? "Checking" : "Disconnected");
        }
        break;
    }
  }

  #setState(state: IceState): void {
    if (this.#state === state) return;
    if (log.debugEnabled) log.debug("ICE state change", { from: this.#state, to: state });
    this.#state = state;
    this.#events.push({ type: "StateChanged", state });
  }

  #describePair(p: CandidatePair): string {
    return `${describe(this.#locals[p.localIdx]!.c)} <-> ${describe(this.#remotes[p.remoteIdx]!.c)}`;
  }
}

/** Same kind, address, base and related address (what an invalidation names). */
function sameIdentity(a: Candidate, b: Candidate): boolean {
  return equivalentCandidates(a, b);
}

function describe(c: Candidate): string {
  return `${c.kind}=${formatSocketAddr(c.addr)}` +
    (sameSocketAddr(c.addr, c.base) ? "" : ` base=${formatSocketAddr(c.base)}`) + ` prio=${c.priority}`;
}
