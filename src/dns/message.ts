/**
 * A minimal DNS wire codec (RFC 1035 §4) for the user-space DNS forwarder (spec §4.8): the header,
 * question parsing, SERVFAIL answers to a query, UDP truncation with TC, and the `A firezone.dev`
 * probe query. The forwarder passes messages through unmodified otherwise, so nothing here parses
 * resource data; records are only walked to find their boundaries.
 *
 * Parsers never throw on malformed input: they return `null` (or `-1` for offsets).
 *
 * @module
 */

/** Size of the fixed DNS header. */
export const DNS_HEADER_BYTES = 12;

/** Responses the forwarder sends over UDP are capped at this size (spec §4.8). */
export const MAX_UDP_RESPONSE_BYTES = 1200;

/** Longest encoded domain name (RFC 1035 §3.1), including the root label. */
export const MAX_NAME_BYTES = 255;

/** Longest label (RFC 1035 §2.3.4). */
export const MAX_LABEL_BYTES = 63;

/** Response codes used here (RFC 1035 §4.1.1). */
export const DnsRcode = {
  NoError: 0,
  FormErr: 1,
  ServFail: 2,
  NxDomain: 3,
  NotImp: 4,
  Refused: 5,
} as const;
export type DnsRcode = (typeof DnsRcode)[keyof typeof DnsRcode];

/** Record types used here. */
export const DnsType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
} as const;

/** Class IN. */
export const DNS_CLASS_IN = 1;

/** The name the nameserver probe asks for (spec §4.8). */
export const PROBE_DOMAIN = "firezone.dev";

// Flag bits of header bytes 2 and 3.
const QR_BIT = 0x80; // byte 2
const OPCODE_MASK = 0x78; // byte 2
const AA_BIT = 0x04; // byte 2
const TC_BIT = 0x02; // byte 2
const RD_BIT = 0x01; // byte 2
const RA_BIT = 0x80; // byte 3
const CD_BIT = 0x10; // byte 3
const RCODE_MASK = 0x0f; // byte 3

const MAX_POINTER_HOPS = 127; // more than any legal name could need

/** The fixed header fields. */
export interface DnsHeader {
  id: number;
  /** True for a response. */
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  rcode: number;
  qdCount: number;
  anCount: number;
  nsCount: number;
  arCount: number;
}

/** One question entry. `name` has no trailing dot; the root is `"."`. */
export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

/** Parses the header, or null if the message is shorter than 12 bytes. */
export function parseHeader(msg: Uint8Array): DnsHeader | null {
  if (msg.length < DNS_HEADER_BYTES) return null;
  const b2 = msg[2]!;
  const b3 = msg[3]!;
  return {
    id: u16(msg, 0),
    qr: (b2 & QR_BIT) !== 0,
    opcode: (b2 & OPCODE_MASK) >> 3,
    aa: (b2 & AA_BIT) !== 0,
    tc: (b2 & TC_BIT) !== 0,
    rd: (b2 & RD_BIT) !== 0,
    ra: (b3 & RA_BIT) !== 0,
    rcode: b3 & RCODE_MASK,
    qdCount: u16(msg, 4),
    anCount: u16(msg, 6),
    nsCount: u16(msg, 8),
    arCount: u16(msg, 10),
  };
}

/** The message id (first two bytes); the caller checks the length. */
export function messageId(msg: Uint8Array): number {
  return u16(msg, 0);
}

/** True when the QR bit marks the message as a response (false for short messages). */
export function isResponse(msg: Uint8Array): boolean {
  return msg.length >= DNS_HEADER_BYTES && (msg[2]! & QR_BIT) !== 0;
}

/** The RCODE of a message (low 4 bits of byte 3), or -1 for a short message. */
export function responseCode(msg: Uint8Array): number {
  return msg.length >= DNS_HEADER_BYTES ? msg[3]! & RCODE_MASK : -1;
}

/**
 * Reads a possibly compressed name at `off`. Returns the dotted name (no trailing dot, `"."` for
 * the root) and the offset just past the name's bytes at `off`, or null when malformed (truncated,
 * reserved label types, forward or looping pointers, longer than 255 bytes).
 */
export function readName(msg: Uint8Array, off: number): { name: string; end: number } | null {
  const labels: string[] = [];
  let pos = off;
  let end = -1;
  let hops = 0;
  let encodedLength = 1; // the final root label
  let lowestPointerTarget = off;
  for (;;) {
    if (pos >= msg.length) return null;
    const len = msg[pos]!;
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= msg.length || ++hops > MAX_POINTER_HOPS) return null;
      const target = ((len & 0x3f) << 8) | msg[pos + 1]!;
      // Pointers must go strictly backwards: this rules out loops.
      if (target >= lowestPointerTarget) return null;
      lowestPointerTarget = target;
      if (end < 0) end = pos + 2;
      pos = target;
      continue;
    }
    if (kind !== 0) return null; // 0x40 / 0x80: reserved / obsolete label types
    if (pos + 1 + len > msg.length) return null;
    encodedLength += len + 1;
    if (encodedLength > MAX_NAME_BYTES) return null;
    labels.push(labelText(msg, pos + 1, len));
    pos += 1 + len;
  }
  return { name: labels.length === 0 ? "." : labels.join("."), end };
}

/** The offset just past a (possibly compressed) name at `off`, or -1 when malformed. */
export function skipName(msg: Uint8Array, off: number): number {
  let pos = off;
  let encodedLength = 1;
  for (;;) {
    if (pos >= msg.length) return -1;
    const len = msg[pos]!;
    if (len === 0) return pos + 1;
    const kind = len & 0xc0;
    if (kind === 0xc0) return pos + 2 <= msg.length ? pos + 2 : -1;
    if (kind !== 0) return -1;
    encodedLength += len + 1;
    if (encodedLength > MAX_NAME_BYTES) return -1;
    pos += 1 + len;
  }
}

/** Parses the question at `off`, or null when malformed. */
export function parseQuestion(msg: Uint8Array, off: number): { question: DnsQuestion; end: number } | null {
  const name = readName(msg, off);
  if (!name || name.end + 4 > msg.length) return null;
  return {
    question: { name: name.name, type: u16(msg, name.end), class: u16(msg, name.end + 2) },
    end: name.end + 4,
  };
}

/** Parses every question (QDCOUNT of them) and returns them with the end offset, or null. */
export function parseQuestions(msg: Uint8Array): { questions: DnsQuestion[]; end: number } | null {
  if (msg.length < DNS_HEADER_BYTES) return null;
  const count = u16(msg, 4);
  const questions: DnsQuestion[] = [];
  let off = DNS_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const q = parseQuestion(msg, off);
    if (!q) return null;
    questions.push(q.question);
    off = q.end;
  }
  return { questions, end: off };
}

/** The offset just past the resource record at `off`, or -1 when malformed. */
export function skipRecord(msg: Uint8Array, off: number): number {
  const nameEnd = skipName(msg, off);
  if (nameEnd < 0 || nameEnd + 10 > msg.length) return -1;
  const end = nameEnd + 10 + u16(msg, nameEnd + 8);
  return end <= msg.length ? end : -1;
}

/**
 * Encodes a dotted name (a trailing dot is optional; `""` and `"."` are the root) without
 * compression. Labels are taken as Latin-1/ASCII bytes.
 * @throws RangeError for empty labels, labels over 63 bytes, names over 255 bytes or non-Latin-1 text
 */
export function encodeName(name: string): Uint8Array {
  const trimmed = name.endsWith(".") ? name.slice(0, -1) : name;
  if (trimmed === "") return new Uint8Array(1);
  const labels = trimmed.split(".");
  let size = 1;
  for (const label of labels) {
    if (label.length === 0) throw new RangeError(`Invalid domain name "${name}": empty label`);
    if (label.length > MAX_LABEL_BYTES) {
      throw new RangeError(`Invalid domain name "${name}": label longer than ${MAX_LABEL_BYTES} bytes`);
    }
    size += label.length + 1;
  }
  if (size > MAX_NAME_BYTES) throw new RangeError(`Invalid domain name "${name}": longer than 255 bytes`);
  const out = new Uint8Array(size);
  let off = 0;
  for (const label of labels) {
    out[off++] = label.length;
    for (let i = 0; i < label.length; i++) {
      const c = label.charCodeAt(i);
      if (c > 0xff) throw new RangeError(`Invalid domain name "${name}": use the A-label (punycode) form`);
      out[off++] = c;
    }
  }
  return out;
}

/** Builds a one-question query (opcode QUERY, class IN). */
export function buildQuery(
  id: number,
  name: string,
  type: number,
  options: { recursionDesired?: boolean } = {},
): Uint8Array {
  const qname = encodeName(name);
  const out = new Uint8Array(DNS_HEADER_BYTES + qname.length + 4);
  putU16(out, 0, id & 0xffff);
  out[2] = options.recursionDesired === false ? 0 : RD_BIT;
  putU16(out, 4, 1);
  out.set(qname, DNS_HEADER_BYTES);
  putU16(out, DNS_HEADER_BYTES + qname.length, type);
  putU16(out, DNS_HEADER_BYTES + qname.length + 2, DNS_CLASS_IN);
  return out;
}

/** The nameserver probe: `A firezone.dev` with RD set and the given id (spec §4.8). */
export function buildProbeQuery(id: number): Uint8Array {
  return buildQuery(id, PROBE_DOMAIN, DnsType.A);
}

/**
 * A SERVFAIL response to `query`: same id, opcode, RD and CD; QR and RA set; RCODE 2; the query's
 * question section copied when it parses (else no question); no records (any EDNS OPT is dropped).
 * Returns null when `query` is shorter than a header (nothing to answer).
 */
export function buildServfail(query: Uint8Array): Uint8Array | null {
  if (query.length < DNS_HEADER_BYTES) return null;
  const questions = parseQuestions(query);
  const end = questions ? questions.end : DNS_HEADER_BYTES;
  const out = new Uint8Array(end);
  out.set(query.subarray(0, end));
  out[2] = QR_BIT | (query[2]! & (OPCODE_MASK | RD_BIT));
  out[3] = RA_BIT | (query[3]! & CD_BIT) | DnsRcode.ServFail;
  putU16(out, 4, questions ? questions.questions.length : 0);
  putU16(out, 6, 0);
  putU16(out, 8, 0);
  putU16(out, 10, 0);
  return out;
}

/**
 * Fits a response into `maxBytes` for UDP (spec §4.8: 1200 bytes). A message that already fits is
 * returned as-is. Otherwise the result keeps the header and question section and as many whole
 * records (answer, then authority, then additional) as fit, with the section counts adjusted and
 * TC set. An EDNS OPT record is kept when there is room for it (RFC 6891 §7). If even the question
 * section does not fit, or the message is malformed before any record, the result is the header
 * (with TC and zero counts) plus whatever whole questions fit.
 *
 * Compression pointers only point backwards, so cutting at a record boundary keeps every name that
 * remains valid.
 */
export function truncateForUdp(response: Uint8Array, maxBytes: number = MAX_UDP_RESPONSE_BYTES): Uint8Array {
  if (response.length <= maxBytes) return response;
  if (maxBytes < DNS_HEADER_BYTES) {
    throw new RangeError(`Cannot truncate a DNS message to ${maxBytes} bytes (minimum ${DNS_HEADER_BYTES})`);
  }
  // Questions: keep those that fit entirely.
  const qdCount = u16(response, 4);
  let off = DNS_HEADER_BYTES;
  let keptQuestions = 0;
  let questionsOk = true;
  for (let i = 0; i < qdCount; i++) {
    const q = parseQuestion(response, off);
    if (!q || q.end > maxBytes) {
      questionsOk = false;
      break;
    }
    off = q.end;
    keptQuestions++;
  }
  const kept = [0, 0, 0];
  let cut = off;
  let opt: RecordSpan | undefined;
  if (questionsOk) {
    const records = walkRecords(response, off);
    opt = records.find((r) => r.section === 2 && isOptRecord(response, r.start));
    if (opt && off + (opt.end - opt.start) > maxBytes) opt = undefined;
    const budget = maxBytes - (opt ? opt.end - opt.start : 0);
    for (const r of records) {
      // A contiguous prefix is kept (names may point into it); the OPT record is appended after
      // it, so records behind the OPT record are dropped with it.
      if (r === opt || r.end > budget) break;
      cut = r.end;
      kept[r.section]!++;
    }
  }
  const optBytes = opt ? opt.end - opt.start : 0;
  const out = new Uint8Array(cut + optBytes);
  out.set(response.subarray(0, cut));
  if (opt) {
    out.set(response.subarray(opt.start, opt.end), cut);
    kept[2]!++;
  }
  out[2] = out[2]! | TC_BIT;
  putU16(out, 4, keptQuestions);
  putU16(out, 6, kept[0]!);
  putU16(out, 8, kept[1]!);
  putU16(out, 10, kept[2]!);
  return out;
}

interface RecordSpan {
  start: number;
  end: number;
  /** 0 answer, 1 authority, 2 additional. */
  section: number;
}

/** The records after the question section, in order, up to the first malformed one. */
function walkRecords(msg: Uint8Array, off: number): RecordSpan[] {
  const out: RecordSpan[] = [];
  let pos = off;
  for (let section = 0; section < 3; section++) {
    const count = u16(msg, 6 + 2 * section);
    for (let i = 0; i < count; i++) {
      const end = skipRecord(msg, pos);
      if (end < 0) return out;
      out.push({ start: pos, end, section });
      pos = end;
    }
  }
  return out;
}

/** True for an OPT pseudo-record (root owner name, type 41) at `off`. */
function isOptRecord(msg: Uint8Array, off: number): boolean {
  return msg[off] === 0 && off + 3 <= msg.length && u16(msg, off + 1) === DnsType.OPT;
}

function labelText(msg: Uint8Array, off: number, len: number): string {
  let s = "";
  for (let i = 0; i < len; i++) {
    const c = msg[off + i]!;
    // Dots and non-printable bytes inside a label are escaped as in zone files (\DDD).
    if (c === 0x2e || c === 0x5c || c < 0x21 || c > 0x7e) s += `\\${c.toString().padStart(3, "0")}`;
    else s += String.fromCharCode(c);
  }
  return s;
}

function u16(buf: Uint8Array, off: number): number {
  return (buf[off]! << 8) | buf[off + 1]!;
}

function putU16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 8;
  buf[off + 1] = v & 0xff;
}
