/**
 * ICE candidates: the value type, priorities (RFC 8445 §5.1.2 with str0m's local-preference bands),
 * foundations, and the `candidate:` string format the portal carries (spec §3.2).
 *
 * Control path only: candidates are small immutable objects compared by address strings.
 *
 * @module
 */

import { formatIp, type IpFamily, parseIp, sameSocketAddr, type SocketAddr } from "../wire/ip_addr.ts";

/** The four candidate types of RFC 8445 (`typ` values in the candidate string). */
export type CandidateKind = "host" | "srflx" | "prflx" | "relay";

/**
 * One ICE candidate (component 1, UDP only: that is all Firezone uses).
 *
 * For local candidates `base` is the address checks are sent from: the host address itself for
 * host candidates, the host address behind a server-reflexive one, and the relayed address itself
 * for relay candidates (the node wraps such sends into ChannelData). Remote candidates parsed from
 * a string have `base === addr`.
 */
export interface Candidate {
  readonly kind: CandidateKind;
  readonly addr: SocketAddr;
  readonly base: SocketAddr;
  /** RFC 8445 priority, 1..2^31-1. */
  readonly priority: number;
  /** 1-32 ice-chars. */
  readonly foundation: string;
  /** Related address; Firezone signals a fake `0.0.0.0:0` / `[::]:0` for srflx and relay. */
  readonly raddr?: SocketAddr;
  /** Username fragment of the agent the candidate belongs to. */
  readonly ufrag?: string;
  /** Relay candidates only: the local socket the relay is reached from (its family sets a penalty). */
  readonly relaySocket?: SocketAddr;
  readonly component: 1;
}

/** RFC 8445 §5.1.2.2 type preferences (UDP) as str0m uses them. */
export const TYPE_PREFERENCE: Readonly<Record<CandidateKind, number>> = {
  host: 126,
  prflx: 110,
  srflx: 100,
  relay: 2,
};

/**
 * First local preference of each kind, IPv6 flavour (IPv4 is one less), so IPv6 and IPv4
 * interleave as odd/even values inside the kind's band (str0m `default_local_preference`).
 */
const LOCAL_PREF_START: Readonly<Record<CandidateKind, number>> = {
  host: 65535,
  prflx: 49151,
  srflx: 32767,
  relay: 16383,
};

/** Penalty for a relay whose relayed address family differs from the socket that reaches it. */
const RELAY_CROSS_FAMILY_PENALTY = 1000;

/** The largest valid candidate priority (2^31 - 1). */
export const MAX_CANDIDATE_PRIORITY = 0x7fff_ffff;

/**
 * `(type_pref << 24) | (local_pref << 8) | (256 - component)`, component 1.
 * Plain arithmetic: the value stays below 2^31, so no sign issues.
 */
export function candidatePriority(kind: CandidateKind, localPreference: number): number {
  if (!Number.isInteger(localPreference) || localPreference < 0 || localPreference > 65535) {
    throw new RangeError(`ICE local preference must be an integer from 0 to 65535, got ${localPreference}`);
  }
  return TYPE_PREFERENCE[kind] * 0x100_0000 + localPreference * 0x100 + 255;
}

/** The local preference encoded in a priority (bits 8..23). */
export function localPreferenceOf(priority: number): number {
  return (priority >>> 8) & 0xffff;
}

/**
 * The local preference str0m assigns to the `sameKind`-th (0-based) local candidate of a kind and
 * family: host 65535/65534, prflx 49151/49150, srflx 32767/32766, relay 16383/16382 (IPv6/IPv4),
 * minus 2 per earlier candidate, minus 1000 for a cross-family relay.
 */
export function localPreference(
  kind: CandidateKind,
  family: IpFamily,
  sameKind: number,
  relayCrossFamily = false,
): number {
  const start = LOCAL_PREF_START[kind] - (family === 6 ? 0 : 1);
  const penalty = kind === "relay" && relayCrossFamily ? RELAY_CROSS_FAMILY_PENALTY : 0;
  return Math.max(0, start - sameKind * 2 - penalty);
}

/** The local preference of a candidate that never went through an agent (65535 IPv6, 65534 IPv4). */
export function defaultLocalPreference(family: IpFamily): number {
  return family === 6 ? 65535 : 65534;
}

/** The priority a check from `c` announces: `c`'s local preference with the prflx type (RFC 8445 §7.1.1). */
export function prflxPriority(c: Candidate): number {
  return candidatePriority("prflx", localPreferenceOf(c.priority));
}

/** `0.0.0.0:0` or `[::]:0`: the related address Firezone signals for srflx and relay candidates. */
export function unspecifiedAddr(family: IpFamily): SocketAddr {
  return { family, ip: family === 6 ? "::" : "0.0.0.0", port: 0 };
}

/**
 * Foundation as str0m builds it: 8 hex digits of the byte-swapped priority followed by the hex
 * of a 64-bit hash of (kind, base IP, related IP, "udp"). Only uniqueness matters for interop;
 * the hash here is FNV-1a (str0m uses SipHash), so the tail differs from upstream's.
 */
export function computeFoundation(
  kind: CandidateKind,
  base: SocketAddr,
  raddr: SocketAddr | undefined,
  priority: number,
): string {
  const swapped = (((priority & 0xff) << 24) | (((priority >>> 8) & 0xff) << 16) |
    (((priority >>> 16) & 0xff) << 8) | ((priority >>> 24) & 0xff)) >>> 0;
  const key = `${kind}|${base.ip}|${raddr ? raddr.ip : ""}|udp`;
  return swapped.toString(16).padStart(8, "0") + fnv1a64Hex(key);
}

/** 64-bit FNV-1a over the UTF-16 code units of `text`, printed in hex without leading zeros. */
function fnv1a64Hex(text: string): string {
  // 64-bit state as two 32-bit halves; prime = 2^40 + 0x1b3.
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (let i = 0; i < text.length; i++) {
    lo = (lo ^ (text.charCodeAt(i) & 0xff)) >>> 0;
    const p = lo * 0x1b3; // < 2^41: exact
    const carry = Math.floor(p / 0x1_0000_0000);
    const newLo = p >>> 0;
    hi = (Math.imul(hi, 0x1b3) + carry + (lo << 8)) >>> 0;
    lo = newLo;
  }
  return hi === 0 ? lo.toString(16) : hi.toString(16) + lo.toString(16).padStart(8, "0");
}

/** A host candidate at `addr` (not yet added to an agent: default local preference). */
export function hostCandidate(addr: SocketAddr): Candidate {
  return buildCandidate("host", addr, addr, undefined, undefined);
}

/**
 * A server-reflexive candidate `addr` whose base is the host address `base`. Carries the fake
 * related address `0.0.0.0:0` / `[::]:0` Firezone signals. Firezone signals it without adding it
 * to the agent, so its priority uses the default local preference (srflx v4: 1694498559).
 */
export function serverReflexiveCandidate(addr: SocketAddr, base: SocketAddr): Candidate {
  return buildCandidate("srflx", addr, base, unspecifiedAddr(addr.family), undefined);
}

/**
 * A relay candidate for the relayed address `addr`, reached from the local socket `relaySocket`.
 * Its base is the relayed address (checks are "sent from" it), related address is the fake
 * unspecified one.
 */
export function relayCandidate(addr: SocketAddr, relaySocket: SocketAddr): Candidate {
  return buildCandidate("relay", addr, addr, unspecifiedAddr(addr.family), relaySocket);
}

/**
 * A server-reflexive candidate synthesised from a remote one (no related address), as used for
 * optimistic candidates.
 */
export function remoteServerReflexive(addr: SocketAddr, base: SocketAddr): Candidate {
  return buildCandidate("srflx", addr, base, undefined, undefined);
}

function buildCandidate(
  kind: CandidateKind,
  addr: SocketAddr,
  base: SocketAddr,
  raddr: SocketAddr | undefined,
  relaySocket: SocketAddr | undefined,
): Candidate {
  const priority = candidatePriority(kind, defaultLocalPreference(addr.family));
  return withFields({ kind, addr, base, priority, foundation: "", component: 1 }, {
    raddr,
    relaySocket,
    foundation: computeFoundation(kind, base, raddr, priority),
  });
}

/** A copy of `c` with the given fields replaced; `undefined` removes an optional field. */
export function withFields(
  c: Candidate,
  changes: {
    priority?: number;
    foundation?: string;
    ufrag?: string | undefined;
    raddr?: SocketAddr | undefined;
    relaySocket?: SocketAddr | undefined;
  },
): Candidate {
  const raddr = "raddr" in changes ? changes.raddr : c.raddr;
  const ufrag = "ufrag" in changes ? changes.ufrag : c.ufrag;
  const relaySocket = "relaySocket" in changes ? changes.relaySocket : c.relaySocket;
  const out: {
    kind: CandidateKind;
    addr: SocketAddr;
    base: SocketAddr;
    priority: number;
    foundation: string;
    component: 1;
    raddr?: SocketAddr;
    ufrag?: string;
    relaySocket?: SocketAddr;
  } = {
    kind: c.kind,
    addr: c.addr,
    base: c.base,
    priority: changes.priority ?? c.priority,
    foundation: changes.foundation ?? c.foundation,
    component: 1,
  };
  if (raddr) out.raddr = raddr;
  if (ufrag !== undefined) out.ufrag = ufrag;
  if (relaySocket) out.relaySocket = relaySocket;
  return out;
}

/**
 * The candidate string (str0m `to_sdp_string`, no `a=` prefix):
 * `candidate:<foundation> 1 udp <priority> <ip> <port> typ <kind>[ raddr <ip> rport <port>][ ufrag <ufrag>]`.
 */
export function formatCandidate(c: Candidate): string {
  let s = `candidate:${c.foundation} 1 udp ${c.priority} ${c.addr.ip} ${c.addr.port} typ ${c.kind}`;
  if (c.raddr) s += ` raddr ${c.raddr.ip} rport ${c.raddr.port}`;
  if (c.ufrag !== undefined) s += ` ufrag ${c.ufrag}`;
  return s;
}

const ICE_CHARS = /^[A-Za-z0-9+/]{1,32}$/;
const UFRAG_CHARS = /^[A-Za-z0-9+/]{1,256}$/;
const DIGITS = /^[0-9]{1,10}$/;
const KINDS: ReadonlySet<string> = new Set(["host", "srflx", "prflx", "relay"]);

/**
 * Parses a remote candidate string. Accepts an optional `a=` and/or `candidate:` prefix, and after
 * `typ <kind>` the extensions `raddr <ip> rport <port>`, `tcptype <x>`, `generation <n>`,
 * `network-id <n>`, `network-cost <n>` and `ufrag <ufrag>` in any order. Returns null for anything
 * else: component other than 1, transport other than UDP, invalid addresses (hostnames such as
 * mDNS `.local` names included), unknown extensions.
 */
export function parseCandidate(text: string): Candidate | null {
  let s = text.trim();
  if (s.startsWith("a=")) s = s.slice(2);
  if (s.startsWith("candidate:")) s = s.slice("candidate:".length);
  const t = s.split(/[ \t]+/);
  if (t.length < 8 || t[6] !== "typ") return null;
  const [foundation, component, transport, prioText, ipText, portText, , kindText] = t as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (!ICE_CHARS.test(foundation)) return null;
  if (component !== "1") return null;
  if (transport.toLowerCase() !== "udp") return null;
  if (!DIGITS.test(prioText)) return null;
  const priority = Number(prioText);
  if (priority < 1 || priority > 0xffff_ffff) return null;
  const addr = parseAddr(ipText, portText);
  if (!addr || addr.port === 0) return null;
  if (!KINDS.has(kindText)) return null;
  const kind = kindText as CandidateKind;

  let raddr: SocketAddr | undefined;
  let ufrag: string | undefined;
  const seen = new Set<string>();
  for (let i = 8; i < t.length; i += 2) {
    const key = t[i]!;
    const value = t[i + 1];
    if (value === undefined || seen.has(key)) return null;
    seen.add(key);
    switch (key) {
      case "raddr": {
        if (t[i + 2] !== "rport") return null;
        const r = parseAddr(value, t[i + 3] ?? "");
        if (!r) return null;
        raddr = r;
        i += 2;
        break;
      }
      case "ufrag":
        if (!UFRAG_CHARS.test(value)) return null;
        ufrag = value;
        break;
      case "generation":
      case "network-id":
      case "network-cost":
        if (!DIGITS.test(value)) return null;
        break;
      case "tcptype":
        break;
      default:
        return null;
    }
  }
  const c: {
    kind: CandidateKind;
    addr: SocketAddr;
    base: SocketAddr;
    priority: number;
    foundation: string;
    component: 1;
    raddr?: SocketAddr;
    ufrag?: string;
  } = { kind, addr, base: addr, priority, foundation, component: 1 };
  if (raddr) c.raddr = raddr;
  if (ufrag !== undefined) c.ufrag = ufrag;
  return c;
}

function parseAddr(ipText: string, portText: string): SocketAddr | null {
  if (!/^[0-9]{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  if (port > 65535) return null;
  const bytes = parseIp(ipText);
  if (!bytes) return null;
  return { family: bytes.length === 4 ? 4 : 6, ip: formatIp(bytes), port };
}

/** Same address, base, kind and related address: the identity str0m uses for add/invalidate. */
export function equivalentCandidates(a: Candidate, b: Candidate): boolean {
  return a.kind === b.kind && sameSocketAddr(a.addr, b.addr) && sameSocketAddr(a.base, b.base) &&
    sameOptionalAddr(a.raddr, b.raddr);
}

function sameOptionalAddr(a: SocketAddr | undefined, b: SocketAddr | undefined): boolean {
  if (!a || !b) return a === b;
  return sameSocketAddr(a, b);
}
