/**
 * Candidate pairs: RFC 8445 pair priority and the per-pair check/nomination state machine
 * (str0m `CandidatePair`: no Frozen state, failed pairs are removed by the agent).
 *
 * Pair priority `2^32·min(G,D) + 2·max(G,D) + (G>D?1:0)` needs up to 63 bits, more than a
 * double holds exactly. It is kept as two exact integers `{ hi: min(G,D), lo: 2·max(G,D) + (G>D) }`
 * (hi < 2^31, lo < 2^32) compared lexicographically, which is the same order as the 64-bit value.
 *
 * @module
 */

import { stunLastResendDelayMs, stunResendDelayMs, type StunTiming } from "./stun_timing.ts";

/** A 64-bit pair priority as two exact halves (see the module doc). */
export interface PairPriority {
  /** min(G, D): the upper 32 bits. */
  readonly hi: number;
  /** 2·max(G, D) + (G > D ? 1 : 0): the lower 32 bits. */
  readonly lo: number;
}

/**
 * RFC 8445 §6.1.2.3 pair priority. `controlling` (G) is the priority of the candidate provided by
 * the controlling agent, `controlled` (D) the one provided by the controlled agent.
 */
export function pairPriority(controlling: number, controlled: number): PairPriority {
  const g = controlling;
  const d = controlled;
  return { hi: Math.min(g, d), lo: 2 * Math.max(g, d) + (g > d ? 1 : 0) };
}

/** Negative when `a` ranks below `b`, positive when above, 0 when equal. */
export function comparePairPriority(a: PairPriority, b: PairPriority): number {
  return a.hi !== b.hi ? a.hi - b.hi : a.lo - b.lo;
}

/** The exact 64-bit value (for logs and tests; not for hot paths). */
export function pairPriorityValue(p: PairPriority): bigint {
  return (BigInt(p.hi) << 32n) + BigInt(p.lo);
}

/** Check state of a pair (there is no Frozen and no Failed: failed pairs are removed). */
export const CheckState = { Waiting: 0, InProgress: 1, Succeeded: 2 } as const;
export type CheckState = (typeof CheckState)[keyof typeof CheckState];

/** Nomination progress of a pair. */
export const NominationState = {
  /** Not nominated. */
  None: 0,
  /** Nominated; the nominating (or, controlled side, triggered) check is not sent yet. */
  Nominated: 1,
  /** The check for the nomination is in flight. */
  Attempt: 2,
  /** A response to the nominating check arrived. */
  Success: 3,
} as const;
export type NominationState = (typeof NominationState)[keyof typeof NominationState];

interface BindingAttempt {
  readonly txKey: string;
  readonly sentAt: number;
  /** -1 until a response arrives. */
  respondedAt: number;
  readonly nominated: boolean;
}

/** One local/remote candidate pair of an agent's checklist. */
export class CandidatePair {
  /** Unique (per agent) id for identifying "the nominated pair" across re-sorts. */
  readonly id: number;
  /** Index into the agent's local candidate list. */
  readonly localIdx: number;
  /** Index into the agent's remote candidate list. */
  readonly remoteIdx: number;
  priority: PairPriority;
  state: CheckState = CheckState.Waiting;
  nomination: NominationState = NominationState.None;
  /** Local candidate index of the latest successful response's mapped address (the valid pair), or -1. */
  validIdx = -1;
  /** Number of valid checks received from the remote side on this pair. */
  remoteBindingRequests = 0;
  /** When the last of those arrived, or -1. */
  lastRemoteRequestAt = -1;
  // Newest last; never longer than the timing's maxRetransmits.
  readonly #attempts: BindingAttempt[] = [];
  #cachedNextAt = NaN;

  constructor(id: number, localIdx: number, remoteIdx: number, priority: PairPriority) {
    this.id = id;
    this.localIdx = localIdx;
    this.remoteIdx = remoteIdx;
    this.priority = priority;
  }

  get isNominated(): boolean {
    return this.nomination !== NominationState.None;
  }

  /** Number of recorded (not yet trimmed) checks. */
  get attemptCount(): number {
    return this.#attempts.length;
  }

  /** Transaction keys of the checks this pair still remembers. */
  attemptKeys(): string[] {
    return this.#attempts.map((a) => a.txKey);
  }

  /** Marks the pair nominated; its next check goes out at once. */
  nominate(): void {
    if (this.nomination === NominationState.None) {
      this.nomination = NominationState.Nominated;
      this.#cachedNextAt = NaN;
    }
  }

  /** Copies nomination progress from a redundant pair this one replaces. */
  copyNominationFrom(other: CandidatePair): void {
    if (other.nomination === NominationState.Nominated || other.nomination === NominationState.Success) {
      this.nomination = other.nomination;
    }
  }

  /**
   * Records a check sent now with transaction key `txKey`. Returns the key of an older check
   * that fell out of the window (so the caller can forget it), or undefined.
   */
  newAttempt(now: number, txKey: string, timing: StunTiming): string | undefined {
    this.#cachedNextAt = NaN;
    if (this.nomination === NominationState.Nominated) this.nomination = NominationState.Attempt;
    this.#attempts.push({ txKey, sentAt: now, respondedAt: -1, nominated: this.isNominated });
    let dropped: string | undefined;
    while (this.#attempts.length > Math.max(1, timing.maxRetransmits)) {
      dropped = this.#attempts.shift()!.txKey;
    }
    if (this.state === CheckState.Waiting) this.state = CheckState.InProgress;
    return dropped;
  }

  /** True when the check with `txKey` was sent for this pair. */
  hasAttempt(txKey: string): boolean {
    for (const a of this.#attempts) if (a.txKey === txKey) return true;
    return false;
  }

  /**
   * Records a success response for `txKey`; `validIdx` is the local candidate matching the
   * mapped address. Returns true when this completed a nomination (USE-CANDIDATE check answered).
   */
  recordResponse(now: number, txKey: string, validIdx: number): boolean {
    this.#cachedNextAt = NaN;
    this.validIdx = validIdx;
    let completedNomination = false;
    for (const a of this.#attempts) {
      if (a.txKey !== txKey) continue;
      a.respondedAt = now;
      if (a.nominated && this.nomination === NominationState.Attempt) {
        this.nomination = NominationState.Success;
        completedNomination = true;
      }
    }
    if (this.state !== CheckState.Succeeded) this.state = CheckState.Succeeded;
    return completedNomination;
  }

  /** Counts a valid incoming check on this pair. */
  recordRemoteRequest(now: number): void {
    this.remoteBindingRequests++;
    this.lastRemoteRequestAt = now;
  }

  /** Forgets the cached next-check time (timing changed). */
  resetCache(): void {
    this.#cachedNextAt = NaN;
  }

  /** Makes the pair check again at once (e.g. after a role switch). */
  restart(): void {
    this.#cachedNextAt = NaN;
    this.#attempts.length = 0;
    if (this.state === CheckState.InProgress) this.state = CheckState.Waiting;
  }

  /**
   * When the next check is due (may be in the past: "now"). A nominated pair whose check is not
   * sent yet jumps the queue; a pair never checked goes at once; otherwise the previous check
   * plus the resend delay, where an outage longer than maxRto/2 restarts the back-off from the
   * number of unanswered checks. Never later than `now + maxRto` (keepalive).
   */
  nextAttemptAt(now: number, timing: StunTiming): number {
    if (!Number.isNaN(this.#cachedNextAt)) return this.#cachedNextAt;
    let next: number;
    const last = this.#attempts[this.#attempts.length - 1];
    if (this.nomination === NominationState.Nominated || !last) {
      next = -Infinity;
    } else {
      const [unanswered, since] = this.#unanswered();
      const sendCount = unanswered > 0 && now - since > timing.maxRtoMs / 2
        ? unanswered
        : this.#attempts.length;
      next = last.sentAt + stunResendDelayMs(timing, sendCount);
    }
    const at = Math.min(next, now + timing.maxRtoMs);
    this.#cachedNextAt = at;
    return at;
  }

  /** False once `maxRetransmits` checks in a row are unanswered and the last delay has passed. */
  isStillPossible(now: number, timing: StunTiming): boolean {
    const [unanswered] = this.#unanswered();
    if (this.#attempts.length < timing.maxRetransmits || unanswered < timing.maxRetransmits) return true;
    const last = this.#attempts[this.#attempts.length - 1]!;
    return now < last.sentAt + stunLastResendDelayMs(timing);
  }

  /** The number of trailing unanswered checks and when the oldest of them was sent. */
  #unanswered(): [number, number] {
    let count = 0;
    let since = -1;
    for (let i = this.#attempts.length - 1; i >= 0; i--) {
      const a = this.#attempts[i]!;
      if (a.respondedAt >= 0) break;
      count++;
      since = a.sentAt;
    }
    return [count, since];
  }
}
