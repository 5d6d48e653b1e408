/**
 * A single-producer, single-consumer message ring in a SharedArrayBuffer.
 *
 * The packet worker spins in a synchronous `poll()` loop and never returns to its event loop, so it
 * cannot receive `postMessage`. The main thread instead writes length-prefixed UTF-8 JSON messages
 * into this ring and then writes the worker's eventfd to wake the `poll()`. The worker drains the
 * ring when the eventfd is readable. Messages are control-plane sized (portal messages); the ring
 * refuses a message that does not fit rather than blocking.
 *
 * Besides plain JSON, messages may hold `Uint8Array`s (keys) and {@link Secret}s (passwords, PSKs):
 * they cross as tagged objects and arrive as the same types, so secrets stay wrapped on both sides.
 *
 * Layout: `Int32Array` header [head, tail] (byte offsets, monotonically increasing modulo 2^31 are
 * avoided by wrapping at the capacity), followed by `capacity` data bytes.
 *
 * @module
 */

import { Secret } from "../log.ts";

const HEADER_INTS = 4; // head, tail, dropped, reserved
const HEAD = 0;
const TAIL = 1;
const DROPPED = 2;
const LEN_BYTES = 4;

/**
 * Default ring size: twice the largest portal message the websocket accepts (16 MiB), so any portal
 * message fits even re-encoded (memory is committed by the kernel only as it is touched).
 */
export const DEFAULT_MAILBOX_BYTES = 32 << 20;

/** Allocates the shared memory for a mailbox of `capacity` data bytes. */
export function createMailboxBuffer(capacity = DEFAULT_MAILBOX_BYTES): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER_INTS * 4 + capacity);
}

/** One side of the ring. The producer calls {@link send}, the consumer {@link drain}. */
export class Mailbox {
  readonly #ctl: Int32Array;
  readonly #data: Uint8Array;
  readonly #capacity: number;
  readonly #encoder = new TextEncoder();
  readonly #decoder = new TextDecoder();

  constructor(buffer: SharedArrayBuffer) {
    this.#ctl = new Int32Array(buffer, 0, HEADER_INTS);
    this.#data = new Uint8Array(buffer, HEADER_INTS * 4);
    this.#capacity = this.#data.length;
  }

  /** Messages refused because the ring was full (the consumer is stuck or the message too big). */
  get dropped(): number {
    return Atomics.load(this.#ctl, DROPPED);
  }

  /** Producer: appends one JSON-serialisable message. Returns false when it does not fit. */
  send(message: unknown): boolean {
    const body = this.#encoder.encode(JSON.stringify(message, replacer));
    const need = LEN_BYTES + body.length;
    const head = Atomics.load(this.#ctl, HEAD);
    const tail = Atomics.load(this.#ctl, TAIL);
    const used = (tail - head + this.#capacity) % this.#capacity;
    if (need >= this.#capacity - used) {
      Atomics.add(this.#ctl, DROPPED, 1);
      return false;
    }
    let pos = tail;
    const len = new Uint8Array(LEN_BYTES);
    new DataView(len.buffer).setUint32(0, body.length);
    pos = this.#write(pos, len);
    pos = this.#write(pos, body);
    Atomics.store(this.#ctl, TAIL, pos); // publish after the bytes are written
    return true;
  }

  /** Consumer: removes and returns every complete message, oldest first. */
  drain(): unknown[] {
    const out: unknown[] = [];
    let head = Atomics.load(this.#ctl, HEAD);
    const tail = Atomics.load(this.#ctl, TAIL);
    while (head !== tail) {
      const lenBytes = this.#read(head, LEN_BYTES);
      const len = new DataView(lenBytes.buffer).getUint32(0);
      head = (head + LEN_BYTES) % this.#capacity;
      const body = this.#read(head, len);
      head = (head + len) % this.#capacity;
      out.push(JSON.parse(this.#decoder.decode(body), reviver));
    }
    Atomics.store(this.#ctl, HEAD, head);
    return out;
  }

  #write(pos: number, bytes: Uint8Array): number {
    const first = Math.min(bytes.length, this.#capacity - pos);
    this.#data.set(bytes.subarray(0, first), pos);
    if (first < bytes.length) this.#data.set(bytes.subarray(first), 0);
    return (pos + bytes.length) % this.#capacity;
  }

  #read(pos: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    const first = Math.min(len, this.#capacity - pos);
    out.set(this.#data.subarray(pos, pos + first));
    if (first < len) out.set(this.#data.subarray(0, len - first), first);
    return out;
  }
}

/** JSON replacer: `Uint8Array` → `{"$b64": ...}`, `Secret` → `{"$secret": <encoded value>}`. */
function replacer(this: unknown, key: string, value: unknown): unknown {
  const original = (this as Record<string, unknown>)[key];
  if (original instanceof Secret) return { $secret: encodeValue(original.expose()) };
  return encodeValue(value);
}

function encodeValue(value: unknown): unknown {
  if (value instanceof Uint8Array) return { $b64: value.toBase64() };
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const o = value as Record<string, unknown>;
    if (typeof o.$b64 === "string" && Object.keys(o).length === 1) return Uint8Array.fromBase64(o.$b64);
    if ("$secret" in o && Object.keys(o).length === 1) return new Secret(o.$secret);
  }
  return value;
}
