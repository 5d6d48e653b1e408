/**
 * The client side of RFC 6455 as pure functions: the HTTP/1.1 upgrade request, the response head
 * parser and accept-key check, and the frame encoder/decoder.
 *
 * Why not Deno's built-in `WebSocket`: it always sends its own `User-Agent: Deno/x.y.z` line in front
 * of one passed in `headers`, so a server that reads the first `User-Agent` would not find
 * `connlib/1.4.16` (the portal answers 422 then), it adds the port to `Host`, and it does not expose
 * the HTTP status of a refused upgrade, which decides between "exit" (401/403/422) and "retry"
 * (429/5xx). Sending exactly upstream's header set needs our own handshake.
 *
 * @module
 */

import { sha1 } from "@noble/hashes/legacy.js";

/** RFC 6455 §1.3 GUID appended to the key before hashing. */
const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** Largest response head we accept. */
export const MAX_RESPONSE_HEAD_BYTES = 16 * 1024;
/** Largest (reassembled) message we accept. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Frame opcodes (RFC 6455 §5.2). */
export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

/** The request head upstream sends, header for header and in the same order. */
export function buildUpgradeRequest(options: {
  /** `/path?query` (contains the token: build it right before writing). */
  readonly target: string;
  /** `Host` value: the host without a port. */
  readonly host: string;
  /** Base64 of 16 random bytes. */
  readonly key: string;
  readonly userAgent: string;
}): string {
  for (
    const [name, value] of [["target", options.target], ["host", options.host], [
      "User-Agent",
      options.userAgent,
    ]]
  ) {
    if (/[\r\n\0]/.test(value!)) {
      throw new TypeError(`The ${name} of the upgrade request contains a line break`);
    }
  }
  return `GET ${options.target} HTTP/1.1\r\n` +
    `Host: ${options.host}\r\n` +
    "Connection: Upgrade\r\n" +
    "Upgrade: websocket\r\n" +
    "Sec-WebSocket-Version: 13\r\n" +
    `Sec-WebSocket-Key: ${options.key}\r\n` +
    `User-Agent: ${options.userAgent}\r\n` +
    "\r\n";
}

/** `Sec-WebSocket-Accept` expected for `key`. */
export function acceptKeyFor(key: string): string {
  const digest = sha1(new TextEncoder().encode(key + WS_GUID));
  let bin = "";
  for (const b of digest) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** A parsed HTTP response head. */
export interface ResponseHead {
  readonly status: number;
  readonly reason: string;
  /** Lower-cased names; repeated headers joined with ", ". */
  readonly headers: ReadonlyMap<string, string>;
  /** Bytes of the head including the blank line; what follows belongs to the body / frames. */
  readonly length: number;
}

/**
 * Parses the response head at the start of `bytes`; null while it is incomplete.
 * @throws SyntaxError for a malformed or oversized head
 */
export function parseResponseHead(bytes: Uint8Array): ResponseHead | null {
  const end = indexOfCrlfCrlf(bytes);
  if (end < 0) {
    if (bytes.length > MAX_RESPONSE_HEAD_BYTES) throw new SyntaxError("HTTP response head too large");
    return null;
  }
  const text = new TextDecoder("latin1").decode(bytes.subarray(0, end));
  const lines = text.split("\r\n");
  const m = /^HTTP\/1\.[01] ([0-9]{3})(?: (.*))?$/.exec(lines[0]!);
  if (!m) throw new SyntaxError(`Malformed HTTP status line "${lines[0]!.slice(0, 80)}"`);
  const headers = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    if (colon <= 0) throw new SyntaxError(`Malformed HTTP header line "${line.slice(0, 80)}"`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const prev = headers.get(name);
    headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
  }
  return { status: Number(m[1]), reason: m[2] ?? "", headers, length: end + 4 };
}

/**
 * Checks a `101` response against RFC 6455 §4.1 (Upgrade, Connection, Sec-WebSocket-Accept).
 * @returns an error text, or null when the handshake is valid
 */
export function checkHandshake(head: ResponseHead, key: string): string | null {
  if (head.status !== 101) return `unexpected HTTP status ${head.status}`;
  if ((head.headers.get("upgrade") ?? "").toLowerCase() !== "websocket") {
    return "missing `Upgrade: websocket`";
  }
  const connection = (head.headers.get("connection") ?? "").toLowerCase().split(",").map((s) => s.trim());
  if (!connection.includes("upgrade")) return "missing `Connection: Upgrade`";
  if (head.headers.get("sec-websocket-accept") !== acceptKeyFor(key)) return "wrong Sec-WebSocket-Accept";
  return null;
}

/** Encodes one final client frame, masked with `maskKey` (4 bytes) as RFC 6455 §5.3 requires. */
export function encodeClientFrame(opcode: Opcode, payload: Uint8Array, maskKey: Uint8Array): Uint8Array {
  const len = payload.length;
  const extra = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const out = new Uint8Array(2 + extra + 4 + len);
  out[0] = 0x80 | opcode;
  let off = 2;
  if (extra === 0) {
    out[1] = 0x80 | len;
  } else if (extra === 2) {
    out[1] = 0x80 | 126;
    out[2] = len >>> 8;
    out[3] = len & 0xff;
    off = 4;
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(len));
    off = 10;
  }
  out.set(maskKey.subarray(0, 4), off);
  off += 4;
  for (let i = 0; i < len; i++) out[off + i] = payload[i]! ^ maskKey[i & 3]!;
  return out;
}

/** The payload of a close frame: the code (big-endian) and a UTF-8 reason. */
export function closePayload(code: number, reason: string): Uint8Array {
  const text = new TextEncoder().encode(reason).subarray(0, 123);
  const out = new Uint8Array(2 + text.length);
  out[0] = code >>> 8;
  out[1] = code & 0xff;
  out.set(text, 2);
  return out;
}

/** A complete message from the server. */
export type ServerMessage =
  | { readonly type: "text"; readonly data: string }
  | { readonly type: "binary"; readonly data: Uint8Array }
  | { readonly type: "ping"; readonly data: Uint8Array }
  | { readonly type: "pong"; readonly data: Uint8Array }
  | { readonly type: "close"; readonly code: number | null; readonly reason: string };

/** Incremental decoder of server frames (unmasked), reassembling fragmented messages. */
export class FrameDecoder {
  #buf = new Uint8Array(0);
  #fragments: Uint8Array[] = [];
  #fragmentOpcode: number | null = null;
  #fragmentBytes = 0;

  /**
   * Appends received bytes and returns the messages completed by them.
   * @throws SyntaxError on a protocol violation (the connection must be failed)
   */
  push(bytes: Uint8Array): ServerMessage[] {
    if (bytes.length > 0) {
      const merged = new Uint8Array(this.#buf.length + bytes.length);
      merged.set(this.#buf);
      merged.set(bytes, this.#buf.length);
      this.#buf = merged;
    }
    const out: ServerMessage[] = [];
    for (;;) {
      const frame = this.#nextFrame();
      if (frame === null) break;
      const msg = this.#onFrame(frame.fin, frame.opcode, frame.payload);
      if (msg !== null) out.push(msg);
    }
    return out;
  }

  #nextFrame(): { fin: boolean; opcode: number; payload: Uint8Array } | null {
    const b = this.#buf;
    if (b.length < 2) return null;
    const fin = (b[0]! & 0x80) !== 0;
    if ((b[0]! & 0x70) !== 0) throw new SyntaxError("WebSocket frame uses reserved bits");
    const opcode = b[0]! & 0x0f;
    if ((b[1]! & 0x80) !== 0) throw new SyntaxError("WebSocket server frames must not be masked");
    let len = b[1]! & 0x7f;
    let off = 2;
    if (len === 126) {
      if (b.length < 4) return null;
      len = (b[2]! << 8) | b[3]!;
      off = 4;
    } else if (len === 127) {
      if (b.length < 10) return null;
      const big = new DataView(b.buffer, b.byteOffset + 2, 8).getBigUint64(0);
      if (big > BigInt(MAX_MESSAGE_BYTES)) throw new SyntaxError("WebSocket frame too large");
      len = Number(big);
      off = 10;
    }
    if (len > MAX_MESSAGE_BYTES) throw new SyntaxError("WebSocket frame too large");
    if (b.length < off + len) return null;
    const payload = b.slice(off, off + len);
    this.#buf = b.slice(off + len);
    return { fin, opcode, payload };
  }

  #onFrame(fin: boolean, opcode: number, payload: Uint8Array): ServerMessage | null {
    if (opcode >= 0x8) {
      if (!fin || payload.length > 125) throw new SyntaxError("Invalid WebSocket control frame");
      if (opcode === Opcode.Ping) return { type: "ping", data: payload };
      if (opcode === Opcode.Pong) return { type: "pong", data: payload };
      if (opcode === Opcode.Close) return parseClose(payload);
      throw new SyntaxError(`Unknown WebSocket control opcode ${opcode}`);
    }
    if (opcode === Opcode.Continuation) {
      if (this.#fragmentOpcode === null) {
        throw new SyntaxError("WebSocket continuation without a start frame");
      }
    } else if (opcode === Opcode.Text || opcode === Opcode.Binary) {
      if (this.#fragmentOpcode !== null) {
        throw new SyntaxError("WebSocket data frame inside a fragmented message");
      }
      if (fin) return dataMessage(opcode, payload);
      this.#fragmentOpcode = opcode;
    } else {
      throw new SyntaxError(`Unknown WebSocket opcode ${opcode}`);
    }
    this.#fragmentBytes += payload.length;
    if (this.#fragmentBytes > MAX_MESSAGE_BYTES) throw new SyntaxError("WebSocket message too large");
    this.#fragments.push(payload);
    if (!fin) return null;
    const whole = new Uint8Array(this.#fragmentBytes);
    let off = 0;
    for (const f of this.#fragments) {
      whole.set(f, off);
      off += f.length;
    }
    const type = this.#fragmentOpcode!;
    this.#fragments = [];
    this.#fragmentOpcode = null;
    this.#fragmentBytes = 0;
    return dataMessage(type, whole);
  }
}

function dataMessage(opcode: number, payload: Uint8Array): ServerMessage {
  if (opcode === Opcode.Binary) return { type: "binary", data: payload };
  try {
    return { type: "text", data: new TextDecoder("utf-8", { fatal: true }).decode(payload) };
  } catch {
    throw new SyntaxError("WebSocket text message is not valid UTF-8");
  }
}

function parseClose(payload: Uint8Array): ServerMessage {
  if (payload.length === 0) return { type: "close", code: null, reason: "" };
  if (payload.length === 1) throw new SyntaxError("WebSocket close frame with a 1-byte payload");
  const code = (payload[0]! << 8) | payload[1]!;
  const reason = new TextDecoder().decode(payload.subarray(2));
  return { type: "close", code, reason };
}

function indexOfCrlfCrlf(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}
