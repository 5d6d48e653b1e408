/**
 * STUN message codec (RFC 5389 / RFC 8489) with the TURN (RFC 5766 / RFC 8656) and ICE (RFC 8445)
 * attributes the gateway uses.
 *
 * Control path: parsing returns a {@link StunMessage} that indexes the attributes of a view of the
 * datagram without copying them; building allocates. Neither `parseStun` nor any accessor throws on
 * malformed input: they return `{ ok: false, reason }` or `null`.
 *
 * MESSAGE-INTEGRITY is HMAC-SHA1 over the message up to the attribute with the header length set as
 * if the message ended right after it (RFC 5389 §15.4); FINGERPRINT is CRC-32 of the message up to
 * the attribute (length adjusted the same way) XOR 0x5354554E (§15.5).
 *
 * @module
 */

import { hmac } from "@noble/hashes/hmac.js";
import { md5, sha1 } from "@noble/hashes/legacy.js";
import { crc32 } from "node:zlib";
import { parseIp, type SocketAddr, socketAddrFromBytes } from "./ip_addr.ts";

/** Size of the fixed STUN header. */
export const STUN_HEADER_LEN = 20;
/** The magic cookie every RFC 5389 message carries at bytes 4..8. */
export const STUN_MAGIC_COOKIE = 0x2112a442;
/** XORed into the CRC-32 to form FINGERPRINT ("STUN"). */
export const STUN_FINGERPRINT_XOR = 0x5354554e;
/** Length of the MESSAGE-INTEGRITY value (HMAC-SHA1). */
export const STUN_INTEGRITY_LEN = 20;

/** Message classes (the C1 C0 bits of the message type). */
export const StunClass = { Request: 0, Indication: 1, Success: 2, Error: 3 } as const;

/** Message methods used by ICE and TURN. */
export const StunMethod = {
  Binding: 0x001,
  Allocate: 0x003,
  Refresh: 0x004,
  Send: 0x006,
  Data: 0x007,
  CreatePermission: 0x008,
  ChannelBind: 0x009,
} as const;

/** Attribute types. Types >= 0x8000 are comprehension-optional. */
export const StunAttr = {
  MappedAddress: 0x0001,
  Username: 0x0006,
  MessageIntegrity: 0x0008,
  ErrorCode: 0x0009,
  UnknownAttributes: 0x000a,
  ChannelNumber: 0x000c,
  Lifetime: 0x000d,
  XorPeerAddress: 0x0012,
  Data: 0x0013,
  Realm: 0x0014,
  Nonce: 0x0015,
  XorRelayedAddress: 0x0016,
  RequestedAddressFamily: 0x0017,
  RequestedTransport: 0x0019,
  XorMappedAddress: 0x0020,
  Priority: 0x0024,
  UseCandidate: 0x0025,
  Software: 0x8022,
  Fingerprint: 0x8028,
  IceControlled: 0x8029,
  IceControlling: 0x802a,
  AdditionalAddressFamily: 0x8032,
} as const;

/** Address family codes inside address attributes and (ADDITIONAL-)REQUESTED-ADDRESS-FAMILY. */
export const StunAddressFamily = { V4: 0x01, V6: 0x02 } as const;

/** One attribute of a parsed message. `offset` is where the value starts within `msg.raw`. */
export interface StunAttribute {
  readonly type: number;
  readonly offset: number;
  readonly length: number;
}

const textDecoder = new TextDecoder();
const textEncoder = new TextEncoder();

/** The 14-bit message type for a method and class (RFC 5389 §6, figure 3). */
export function stunMessageType(method: number, cls: number): number {
  return ((method & 0xf80) << 2) | ((method & 0x070) << 1) | (method & 0x00f) | ((cls & 2) << 7) |
    ((cls & 1) << 4);
}

/** A parsed STUN message: a view over the datagram plus an attribute index. */
export class StunMessage {
  readonly method: number;
  readonly cls: number;
  /** A copy of the 12-byte transaction id (safe to keep after the receive buffer is reused). */
  readonly transactionId: Uint8Array;
  /** Exactly the parsed message bytes: a view into the caller's buffer, valid while it is. */
  readonly raw: Uint8Array;
  /** Attributes in wire order; attributes after MESSAGE-INTEGRITY (except FINGERPRINT) are ignored. */
  readonly attributes: readonly StunAttribute[];

  /** @internal use {@link parseStun}. */
  constructor(method: number, cls: number, raw: Uint8Array, attributes: readonly StunAttribute[]) {
    this.method = method;
    this.cls = cls;
    this.raw = raw;
    this.transactionId = raw.slice(8, 20);
    this.attributes = attributes;
  }

  /** The transaction id as 24 lowercase hex digits (a map key for pending requests). */
  get transactionKey(): string {
    return transactionKey(this.transactionId);
  }

  /** The first attribute of `type`, or undefined. */
  attribute(type: number): StunAttribute | undefined {
    for (const a of this.attributes) if (a.type === type) return a;
    return undefined;
  }

  has(type: number): boolean {
    return this.attribute(type) !== undefined;
  }

  /** The value bytes (a view, padding excluded) of the first attribute of `type`. */
  value(type: number): Uint8Array | undefined {
    const a = this.attribute(type);
    return a ? this.raw.subarray(a.offset, a.offset + a.length) : undefined;
  }

  /** Decodes an XOR-*-ADDRESS attribute; null when absent or malformed. */
  xorAddress(type: number): SocketAddr | null {
    const a = this.attribute(type);
    return a ? decodeXorAddress(this.raw, a.offset, a.length) : null;
  }

  /** Decodes the XOR address in a specific attribute (e.g. the second XOR-RELAYED-ADDRESS). */
  xorAddressOf(attr: StunAttribute): SocketAddr | null {
    return decodeXorAddress(this.raw, attr.offset, attr.length);
  }

  /** Decodes a plain (non-XOR) address attribute such as MAPPED-ADDRESS; null when absent or malformed. */
  address(type: number): SocketAddr | null {
    const a = this.attribute(type);
    return a ? decodeAddress(this.raw, a.offset, a.length, null) : null;
  }

  /** The UTF-8 text of USERNAME, REALM, NONCE, SOFTWARE...; null when absent. */
  stringAttr(type: number): string | null {
    const v = this.value(type);
    return v ? textDecoder.decode(v) : null;
  }

  /** A 32-bit big-endian value (PRIORITY, LIFETIME, FINGERPRINT); null when absent or not 4 bytes. */
  u32Attr(type: number): number | null {
    const a = this.attribute(type);
    if (!a || a.length !== 4) return null;
    return readU32(this.raw, a.offset);
  }

  /** A 64-bit big-endian value (ICE-CONTROLLED/ICE-CONTROLLING tie-breaker); null when absent or not 8 bytes. */
  u64Attr(type: number): bigint | null {
    const a = this.attribute(type);
    if (!a || a.length !== 8) return null;
    return (BigInt(readU32(this.raw, a.offset)) << 32n) | BigInt(readU32(this.raw, a.offset + 4));
  }

  /** ERROR-CODE as `class * 100 + number` and the reason phrase; null when absent or malformed. */
  errorCode(): { code: number; reason: string } | null {
    const a = this.attribute(StunAttr.ErrorCode);
    if (!a || a.length < 4) return null;
    const cls = this.raw[a.offset + 2]! & 0x07;
    const num = this.raw[a.offset + 3]!;
    if (cls < 3 || cls > 6 || num > 99) return null;
    return {
      code: cls * 100 + num,
      reason: textDecoder.decode(this.raw.subarray(a.offset + 4, a.offset + a.length)),
    };
  }

  /** The attribute types listed in UNKNOWN-ATTRIBUTES (a 420 response); empty when absent. */
  unknownAttributes(): number[] {
    const a = this.attribute(StunAttr.UnknownAttributes);
    const out: number[] = [];
    if (!a) return out;
    for (let i = 0; i + 1 < a.length; i += 2) out.push(readU16(this.raw, a.offset + i));
    return out;
  }

  /** MESSAGE-INTEGRITY over the message up to the attribute, with the header length adjusted (RFC 5389 §15.4). */
  verifyIntegrity(key: Uint8Array): boolean {
    const a = this.attribute(StunAttr.MessageIntegrity);
    if (!a || a.length !== STUN_INTEGRITY_LEN) return false;
    const expected = integrityOver(this.raw, a.offset - 4, key);
    return constantTimeEqual(expected, this.raw, a.offset, STUN_INTEGRITY_LEN);
  }

  /** True when FINGERPRINT is present and matches; false when absent or wrong. */
  verifyFingerprint(): boolean {
    const a = this.attribute(StunAttr.Fingerprint);
    if (!a || a.length !== 4) return false;
    return fingerprintOver(this.raw, a.offset - 4) === readU32(this.raw, a.offset);
  }
}

/** Result of {@link parseStun}. */
export type StunParse = { ok: true; msg: StunMessage } | { ok: false; reason: string };

/**
 * Cheap pre-check (no attribute walk): top two bits zero, length a multiple of 4 and equal to
 * `len - 20`, magic cookie present.
 */
export function looksLikeStun(buf: Uint8Array, off: number, len: number): boolean {
  if (len < STUN_HEADER_LEN || off < 0 || off + len > buf.length) return false;
  if ((buf[off]! & 0xc0) !== 0) return false;
  const msgLen = (buf[off + 2]! << 8) | buf[off + 3]!;
  if ((msgLen & 3) !== 0 || msgLen !== len - STUN_HEADER_LEN) return false;
  return readU32(buf, off + 4) === STUN_MAGIC_COOKIE;
}

/** Parses one STUN message occupying exactly `buf[off, off + len)`. Never throws. */
export function parseStun(buf: Uint8Array, off = 0, len = buf.length - off): StunParse {
  if (off < 0 || len < 0 || off + len > buf.length) return fail("range outside the buffer");
  if (len < STUN_HEADER_LEN) return fail(`${len} bytes is shorter than the 20-byte STUN header`);
  if ((buf[off]! & 0xc0) !== 0) return fail("the two most significant bits are not zero");
  const msgLen = (buf[off + 2]! << 8) | buf[off + 3]!;
  if ((msgLen & 3) !== 0) return fail(`message length ${msgLen} is not a multiple of 4`);
  if (msgLen !== len - STUN_HEADER_LEN) {
    return fail(
      `message length ${msgLen} does not match the ${len - STUN_HEADER_LEN} bytes after the header`,
    );
  }
  if (readU32(buf, off + 4) !== STUN_MAGIC_COOKIE) return fail("magic cookie missing");
  const raw = buf.subarray(off, off + len);
  const type = readU16(raw, 0);
  const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
  const cls = ((type >> 7) & 2) | ((type >> 4) & 1);

  const attributes: StunAttribute[] = [];
  let sawIntegrity = false;
  let sawFingerprint = false;
  let p = STUN_HEADER_LEN;
  while (p < len) {
    if (p + 4 > len) return fail(`truncated attribute header at offset ${p}`);
    const attrType = readU16(raw, p);
    const attrLen = readU16(raw, p + 2);
    const valueOff = p + 4;
    const padded = (attrLen + 3) & ~3;
    if (valueOff + padded > len) {
      return fail(`attribute 0x${attrType.toString(16)} (${attrLen} bytes) overruns the message`);
    }
    p = valueOff + padded;
    // RFC 5389 §15.4/§15.5: only FINGERPRINT may follow MESSAGE-INTEGRITY, and nothing follows FINGERPRINT.
    if (sawFingerprint) continue;
    if (sawIntegrity && attrType !== StunAttr.Fingerprint) continue;
    if (attrType === StunAttr.MessageIntegrity) {
      if (attrLen !== STUN_INTEGRITY_LEN) return fail(`MESSAGE-INTEGRITY has ${attrLen} bytes, expected 20`);
      sawIntegrity = true;
    } else if (attrType === StunAttr.Fingerprint) {
      if (attrLen !== 4) return fail(`FINGERPRINT has ${attrLen} bytes, expected 4`);
      sawFingerprint = true;
    }
    attributes.push({ type: attrType, offset: valueOff, length: attrLen });
  }
  return { ok: true, msg: new StunMessage(method, cls, raw, attributes) };
}

/** Incrementally builds a STUN message (control path; allocates). */
export class StunMessageBuilder {
  #buf: Uint8Array;
  #len = STUN_HEADER_LEN;

  constructor(method: number, cls: number, transactionId: Uint8Array) {
    if (transactionId.length !== 12) {
      throw new RangeError(`A STUN transaction id has 12 bytes, got ${transactionId.length}`);
    }
    if (method < 0 || method > 0xfff) {
      throw new RangeError(`STUN method 0x${method.toString(16)} out of range`);
    }
    this.#buf = new Uint8Array(128);
    writeU16(this.#buf, 0, stunMessageType(method, cls));
    writeU32(this.#buf, 4, STUN_MAGIC_COOKIE);
    this.#buf.set(transactionId, 8);
  }

  /** Bytes written so far (header included). */
  get length(): number {
    return this.#len;
  }

  /** Appends an attribute with `value`, zero-padded to 4 bytes. */
  addBytes(type: number, value: Uint8Array): this {
    const at = this.#header(type, value.length);
    this.#buf.set(value, at);
    this.#len = at + ((value.length + 3) & ~3);
    return this;
  }

  /** Appends a copy of an attribute of a parsed message, padding bytes included (byte-exact re-encoding). */
  addAttributeFrom(msg: StunMessage, attr: StunAttribute): this {
    const padded = (attr.length + 3) & ~3;
    const at = this.#header(attr.type, attr.length);
    this.#buf.set(msg.raw.subarray(attr.offset, attr.offset + padded), at);
    this.#len = at + padded;
    return this;
  }

  /** Appends UTF-8 text (USERNAME, REALM, NONCE, SOFTWARE). */
  addString(type: number, s: string): this {
    return this.addBytes(type, textEncoder.encode(s));
  }

  addU32(type: number, v: number): this {
    const at = this.#header(type, 4);
    writeU32(this.#buf, at, v >>> 0);
    this.#len = at + 4;
    return this;
  }

  addU64(type: number, v: bigint): this {
    const at = this.#header(type, 8);
    writeU32(this.#buf, at, Number((v >> 32n) & 0xffffffffn));
    writeU32(this.#buf, at + 4, Number(v & 0xffffffffn));
    this.#len = at + 8;
    return this;
  }

  /** Appends an XOR-*-ADDRESS attribute (RFC 5389 §15.2). */
  addXorAddress(type: number, addr: SocketAddr): this {
    const ip = addressBytes(addr);
    const at = this.#header(type, 4 + ip.length);
    const b = this.#buf;
    b[at] = 0;
    b[at + 1] = ip.length === 4 ? StunAddressFamily.V4 : StunAddressFamily.V6;
    writeU16(b, at + 2, addr.port ^ (STUN_MAGIC_COOKIE >>> 16));
    for (let i = 0; i < ip.length; i++) b[at + 4 + i] = ip[i]! ^ b[4 + i]!; // cookie, then transaction id
    this.#len = at + 4 + ip.length;
    return this;
  }

  /** Appends a plain address attribute such as MAPPED-ADDRESS. */
  addAddress(type: number, addr: SocketAddr): this {
    const ip = addressBytes(addr);
    const at = this.#header(type, 4 + ip.length);
    this.#buf[at] = 0;
    this.#buf[at + 1] = ip.length === 4 ? StunAddressFamily.V4 : StunAddressFamily.V6;
    writeU16(this.#buf, at + 2, addr.port);
    this.#buf.set(ip, at + 4);
    this.#len = at + 4 + ip.length;
    return this;
  }

  /** Appends ERROR-CODE (`code` 300..699) with a UTF-8 reason phrase. */
  addErrorCode(code: number, reason: string): this {
    if (!Number.isInteger(code) || code < 300 || code > 699) {
      throw new RangeError(`STUN error code ${code} out of range 300..699`);
    }
    const text = textEncoder.encode(reason);
    const value = new Uint8Array(4 + text.length);
    value[2] = Math.floor(code / 100);
    value[3] = code % 100;
    value.set(text, 4);
    return this.addBytes(StunAttr.ErrorCode, value);
  }

  /** Appends UNKNOWN-ATTRIBUTES listing `types`. */
  addUnknownAttributes(types: readonly number[]): this {
    const value = new Uint8Array(types.length * 2);
    types.forEach((t, i) => writeU16(value, 2 * i, t));
    return this.addBytes(StunAttr.UnknownAttributes, value);
  }

  /** Appends an attribute with no value (USE-CANDIDATE). */
  addEmpty(type: number): this {
    this.#len = this.#header(type, 0);
    return this;
  }

  /** Appends MESSAGE-INTEGRITY computed with `key` over everything written so far. */
  addMessageIntegrity(key: Uint8Array): this {
    const at = this.#header(StunAttr.MessageIntegrity, STUN_INTEGRITY_LEN);
    this.#buf.set(integrityOver(this.#buf, at - 4, key), at);
    this.#len = at + STUN_INTEGRITY_LEN;
    return this;
  }

  /** Appends FINGERPRINT over everything written so far. Must be the last attribute. */
  addFingerprint(): this {
    const at = this.#header(StunAttr.Fingerprint, 4);
    writeU32(this.#buf, at, fingerprintOver(this.#buf, at - 4));
    this.#len = at + 4;
    return this;
  }

  /** The finished message (a fresh copy). */
  build(): Uint8Array {
    writeU16(this.#buf, 2, this.#len - STUN_HEADER_LEN);
    return this.#buf.slice(0, this.#len);
  }

  /** Writes the attribute header at the end, zeroes the padded value room, returns the value offset. */
  #header(type: number, valueLen: number): number {
    if (valueLen > 0xffff) throw new RangeError(`STUN attribute value of ${valueLen} bytes is too long`);
    const padded = (valueLen + 3) & ~3;
    const need = this.#len + 4 + padded;
    if (need - STUN_HEADER_LEN > 0xffff) throw new RangeError("STUN message longer than 65535 bytes");
    if (need > this.#buf.length) {
      const next = new Uint8Array(Math.max(need, this.#buf.length * 2));
      next.set(this.#buf.subarray(0, this.#len));
      this.#buf = next;
    }
    const at = this.#len;
    writeU16(this.#buf, at, type);
    writeU16(this.#buf, at + 2, valueLen);
    this.#buf.fill(0, at + 4, at + 4 + padded);
    return at + 4;
  }
}

/** Long-term credential key: MD5("username:realm:password") (RFC 5389 §15.4; no SASLprep). */
export function longTermKey(username: string, realm: string, password: string): Uint8Array {
  return md5(textEncoder.encode(`${username}:${realm}:${password}`));
}

/** Short-term credential key: the UTF-8 bytes of the password (no SASLprep). */
export function shortTermKey(password: string): Uint8Array {
  return textEncoder.encode(password);
}

/** 24 lowercase hex digits of a 12-byte transaction id. */
export function transactionKey(id: Uint8Array): string {
  let s = "";
  for (let i = 0; i < id.length; i++) s += (id[i]! < 16 ? "0" : "") + id[i]!.toString(16);
  return s;
}

/** A short human name of a method for logs. */
export function stunMethodName(method: number): string {
  for (const [name, value] of Object.entries(StunMethod)) if (value === method) return name.toUpperCase();
  return `0x${method.toString(16).padStart(3, "0")}`;
}

// --- internals -------------------------------------------------------------------------------

function fail(reason: string): StunParse {
  return { ok: false, reason };
}

function readU16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

function readU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

function writeU16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 24) & 0xff;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

/** The first 4 header bytes with the length field set to end `extra` bytes after `attrStart`. */
function adjustedHead(msg: Uint8Array, attrStart: number, extra: number): Uint8Array {
  const head = msg.slice(0, 4);
  writeU16(head, 2, attrStart - STUN_HEADER_LEN + extra);
  return head;
}

/** HMAC-SHA1 over `msg[0, attrStart)` with the length covering a 24-byte MESSAGE-INTEGRITY. */
function integrityOver(msg: Uint8Array, attrStart: number, key: Uint8Array): Uint8Array {
  const mac = hmac.create(sha1, key);
  mac.update(adjustedHead(msg, attrStart, 4 + STUN_INTEGRITY_LEN));
  mac.update(msg.subarray(4, attrStart));
  return mac.digest();
}

/** CRC-32 of `msg[0, attrStart)` with the length covering an 8-byte FINGERPRINT, XOR "STUN". */
function fingerprintOver(msg: Uint8Array, attrStart: number): number {
  const head = crc32(adjustedHead(msg, attrStart, 8));
  return (crc32(msg.subarray(4, attrStart), head) ^ STUN_FINGERPRINT_XOR) >>> 0;
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array, bOff: number, len: number): boolean {
  let diff = 0;
  for (let i = 0; i < len; i++) diff |= a[i]! ^ b[bOff + i]!;
  return diff === 0;
}

function addressBytes(addr: SocketAddr): Uint8Array {
  const ip = parseIp(addr.ip);
  if (!ip) throw new TypeError(`Invalid IP address "${addr.ip}" in a STUN address attribute`);
  return ip;
}

function decodeXorAddress(raw: Uint8Array, off: number, len: number): SocketAddr | null {
  return decodeAddress(raw, off, len, raw);
}

/** Decodes an address attribute; with `xorWith` (the message), XORs with cookie + transaction id. */
function decodeAddress(
  raw: Uint8Array,
  off: number,
  len: number,
  xorWith: Uint8Array | null,
): SocketAddr | null {
  if (len < 4) return null;
  const family = raw[off + 1];
  const ipLen = family === StunAddressFamily.V4 ? 4 : family === StunAddressFamily.V6 ? 16 : 0;
  if (ipLen === 0 || len !== 4 + ipLen) return null;
  let port = readU16(raw, off + 2);
  const ip = raw.slice(off + 4, off + 4 + ipLen);
  if (xorWith) {
    port ^= STUN_MAGIC_COOKIE >>> 16;
    for (let i = 0; i < ipLen; i++) ip[i] = ip[i]! ^ xorWith[4 + i]!;
  }
  return socketAddrFromBytes(ip, 0, ipLen as 4 | 16, port);
}
