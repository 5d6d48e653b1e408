/**
 * Builders for DNS responses in tests (the codec under test only builds queries and SERVFAIL).
 *
 * @module
 */

import { parseQuestions } from "../../src/dns/message.ts";
import { parseIpv4 } from "../../src/wire/ip_addr.ts";

/** Options for {@link buildAResponse}. */
export interface AResponseOptions {
  rcode?: number;
  /** Append an EDNS OPT record (11 bytes) to the additional section. */
  opt?: boolean;
  ttl?: number;
}

/**
 * A response to `query` (its id, RD and question) with one A record per address, each owner name
 * a compression pointer to the question name (16 bytes per record).
 */
export function buildAResponse(
  query: Uint8Array,
  addresses: readonly string[],
  options: AResponseOptions = {},
) {
  const parsed = parseQuestions(query);
  if (!parsed || parsed.questions.length !== 1) throw new Error("test query must have one question");
  const qEnd = parsed.end;
  const optBytes = options.opt ? 11 : 0;
  const out = new Uint8Array(qEnd + 16 * addresses.length + optBytes);
  out.set(query.subarray(0, qEnd));
  out[2] = 0x80 | (query[2]! & 0x01); // QR, RD copied
  out[3] = 0x80 | (options.rcode ?? 0); // RA
  const view = new DataView(out.buffer);
  view.setUint16(4, 1);
  view.setUint16(6, addresses.length);
  view.setUint16(8, 0);
  view.setUint16(10, options.opt ? 1 : 0);
  let off = qEnd;
  for (const a of addresses) {
    const ip = parseIpv4(a);
    if (!ip) throw new Error(`not IPv4: ${a}`);
    view.setUint16(off, 0xc00c); // pointer to the question name
    view.setUint16(off + 2, 1); // A
    view.setUint16(off + 4, 1); // IN
    view.setUint32(off + 6, options.ttl ?? 300);
    view.setUint16(off + 10, 4);
    out.set(ip, off + 12);
    off += 16;
  }
  if (options.opt) {
    out[off] = 0; // root owner
    view.setUint16(off + 1, 41); // OPT
    view.setUint16(off + 3, 1232); // UDP payload size
    view.setUint32(off + 5, 0); // extended rcode, version, flags
    view.setUint16(off + 9, 0); // no options
  }
  return out;
}

/** `n` distinct addresses 10.0.x.y. */
export function manyAddresses(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `10.0.${i >> 8}.${i & 0xff}`);
}
