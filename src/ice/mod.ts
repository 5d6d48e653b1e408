/**
 * PURE ICE: candidates and their string format, pair priorities, check timing, and the sans-IO
 * {@link IceAgent} (the gateway runs it controlled; the controlling role serves tests and the
 * simulated client).
 *
 * @module
 */

export {
  type Candidate,
  type CandidateKind,
  candidatePriority,
  computeFoundation,
  defaultLocalPreference,
  equivalentCandidates,
  formatCandidate,
  hostCandidate,
  localPreference,
  localPreferenceOf,
  MAX_CANDIDATE_PRIORITY,
  parseCandidate,
  prflxPriority,
  relayCandidate,
  remoteServerReflexive,
  serverReflexiveCandidate,
  TYPE_PREFERENCE,
  unspecifiedAddr,
  withFields,
} from "./candidate.ts";
export {
  CandidatePair,
  CheckState,
  comparePairPriority,
  NominationState,
  type PairPriority,
  pairPriority,
  pairPriorityValue,
} from "./pair.ts";
export {
  ACTIVE_STUN_TIMING,
  iceTimeoutMs,
  IDLE_STUN_TIMING,
  stunLastResendDelayMs,
  stunResendDelayMs,
  type StunTiming,
} from "./stun_timing.ts";
export {
  ICE_STUN_MTU_BYTES,
  IceAgent,
  type IceAgentOptions,
  type IceCredentials,
  type IceEvent,
  type IceState,
  type IceTransmit,
  MAX_CANDIDATE_PAIRS,
} from "./agent.ts";
