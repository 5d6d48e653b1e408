import assert from "node:assert/strict";
import {
  buildProbeQuery,
  buildQuery,
  buildServfail,
  DnsRcode,
  DnsType,
  encodeName,
  isResponse,
  MAX_UDP_RESPONSE_BYTES,
  messageId,
  parseHeader,
  parseQuestions,
  readName,
  responseCode,
  skipRecord,
  truncateForUdp,
} from "../../../src/dns/message.ts";
import { buildAResponse, manyAddresses } from "../../_helpers/dns_messages.ts";

/** `www.example.com AAAA IN`, id 0xabcd, RD and AD set, with an EDNS OPT record: as dig sends it. */
// deno-fmt-ignore
const REAL_QUERY = new Uint8Array([
  0xab, 0xcd, // id
  0x01, 0x20, // RD; AD
  0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, // qd=1 an=0 ns=0 ar=1
  0x03, 0x77, 0x77, 0x77, // "www"
  0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, // "example"
  0x03, 0x63, 0x6f, 0x6d, 0x00, // "com", root
  0x00, 0x1c, 0x00, 0x01, // AAAA IN
  0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // OPT, 1232 bytes
]);
const QUESTION_END = 12 + 17 + 4;

Deno.test("parseHeader() reads a real query's id, flags and counts", () => {
  const h = parseHeader(REAL_QUERY);
  assert.deepEqual(h, {
    id: 0xabcd,
    qr: false,
    opcode: 0,
    aa: false,
    tc: false,
    rd: true,
    ra: false,
    rcode: 0,
    qdCount: 1,
    anCount: 0,
    nsCount: 0,
    arCount: 1,
  });
  assert.equal(parseHeader(REAL_QUERY.subarray(0, 11)), null);
  assert.equal(isResponse(REAL_QUERY), false);
  assert.equal(messageId(REAL_QUERY), 0xabcd);
});

Deno.test("parseQuestions() reads the question of a real query", () => {
  const q = parseQuestions(REAL_QUERY);
  assert.deepEqual(q, {
    questions: [{ name: "www.example.com", type: DnsType.AAAA, class: 1 }],
    end: QUESTION_END,
  });
  assert.equal(skipRecord(REAL_QUERY, QUESTION_END), REAL_QUERY.length); // the OPT record
});

Deno.test("parseQuestions() returns null for a truncated question", () => {
  assert.equal(parseQuestions(REAL_QUERY.subarray(0, 20)), null);
  assert.equal(parseQuestions(REAL_QUERY.subarray(0, QUESTION_END - 1)), null);
});

Deno.test("buildQuery() produces the same bytes as the hand-built query (without OPT)", () => {
  const built = buildQuery(0xabcd, "www.example.com.", DnsType.AAAA);
  const expected = REAL_QUERY.slice(0, QUESTION_END);
  expected[3] = 0x00; // no AD
  expected[11] = 0x00; // no additional record
  assert.deepEqual(built, expected);
});

// deno-fmt-ignore
const PROBE_1234 = new Uint8Array([
  0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // id, RD, qd=1
  0x08, 0x66, 0x69, 0x72, 0x65, 0x7a, 0x6f, 0x6e, 0x65, // "firezone"
  0x03, 0x64, 0x65, 0x76, 0x00, // "dev", root
  0x00, 0x01, 0x00, 0x01, // A IN
]);

Deno.test("buildProbeQuery() is A firezone.dev with RD and the given id", () => {
  assert.deepEqual(buildProbeQuery(0x1234), PROBE_1234);
});

Deno.test("buildServfail() keeps id, opcode, RD and the question; sets QR, RA and RCODE 2", () => {
  const r = buildServfail(REAL_QUERY)!;
  assert.equal(r.length, QUESTION_END);
  const h = parseHeader(r)!;
  assert.equal(h.id, 0xabcd);
  assert.equal(h.qr, true);
  assert.equal(h.rd, true);
  assert.equal(h.ra, true);
  assert.equal(h.rcode, DnsRcode.ServFail);
  assert.equal(h.aa, false);
  assert.equal(h.tc, false);
  assert.deepEqual([h.qdCount, h.anCount, h.nsCount, h.arCount], [1, 0, 0, 0]);
  assert.deepEqual(r.subarray(12), REAL_QUERY.subarray(12, QUESTION_END));
  assert.equal(r[2], 0x81);
  assert.equal(r[3], 0x82);
});

Deno.test("buildServfail() keeps RD clear and the opcode when the query has them so", () => {
  const q = buildQuery(7, "a.b", DnsType.TXT, { recursionDesired: false });
  q[2] = q[2]! | (2 << 3); // opcode STATUS
  const h = parseHeader(buildServfail(q)!)!;
  assert.equal(h.rd, false);
  assert.equal(h.opcode, 2);
  assert.equal(h.rcode, 2);
});

Deno.test("buildServfail() answers a query with an unparsable question with a header only", () => {
  const broken = REAL_QUERY.slice(0, 20); // question cut short
  const r = buildServfail(broken)!;
  assert.equal(r.length, 12);
  assert.equal(parseHeader(r)!.qdCount, 0);
  assert.equal(responseCode(r), 2);
  assert.equal(buildServfail(new Uint8Array(11)), null);
});

Deno.test("truncateForUdp() returns a message that fits unchanged", () => {
  const q = buildQuery(1, "example.com", DnsType.A);
  const r = buildAResponse(q, manyAddresses(10));
  assert.equal(truncateForUdp(r), r);
  assert.equal(parseHeader(r)!.tc, false);
});

Deno.test("truncateForUdp() cuts at a record boundary, keeps the OPT record and sets TC", () => {
  const q = buildQuery(0x4242, "example.com", DnsType.A);
  const r = buildAResponse(q, manyAddresses(100), { opt: true });
  assert.ok(r.length > MAX_UDP_RESPONSE_BYTES);
  const t = truncateForUdp(r);
  assert.ok(t.length <= MAX_UDP_RESPONSE_BYTES, `${t.length} bytes`);
  const h = parseHeader(t)!;
  assert.equal(h.tc, true);
  assert.equal(h.id, 0x4242);
  assert.equal(h.qdCount, 1);
  const questionEnd = parseQuestions(t)!.end;
  // 12 + 17 (question) + 11 (OPT) leaves room for floor((1200 - 40) / 16) = 72 answers.
  assert.equal(h.anCount, 72);
  assert.equal(h.arCount, 1);
  let off = questionEnd;
  for (let i = 0; i < h.anCount + h.arCount; i++) off = skipRecord(t, off);
  assert.equal(off, t.length, "records fill the message exactly");
  assert.deepEqual(
    t.subarray(questionEnd, questionEnd + 72 * 16),
    r.subarray(questionEnd, questionEnd + 72 * 16),
  );
  assert.equal(t[t.length - 9], 41, "the last record is the OPT record");
});

Deno.test("truncateForUdp() without OPT fills up to the limit", () => {
  const q = buildQuery(1, "example.com", DnsType.A);
  const r = buildAResponse(q, manyAddresses(100));
  const t = truncateForUdp(r);
  const h = parseHeader(t)!;
  assert.equal(h.anCount, Math.floor((1200 - 12 - 17) / 16));
  assert.equal(h.arCount, 0);
  assert.equal(t.length, 12 + 17 + 16 * h.anCount);
  assert.ok(h.tc);
});

Deno.test("truncateForUdp() falls back to the question section for malformed records", () => {
  const q = buildQuery(9, "example.com", DnsType.A);
  const r = buildAResponse(q, manyAddresses(100));
  r[12 + 17 + 10] = 0xff; // first record's RDLENGTH now runs past the end
  const t = truncateForUdp(r);
  assert.equal(t.length, 12 + 17);
  const h = parseHeader(t)!;
  assert.deepEqual([h.tc, h.qdCount, h.anCount, h.nsCount, h.arCount], [true, 1, 0, 0, 0]);
});

Deno.test("truncateForUdp() honours a smaller limit", () => {
  const q = buildQuery(1, "example.com", DnsType.A);
  const t = truncateForUdp(buildAResponse(q, manyAddresses(5)), 64);
  assert.equal(t.length, 12 + 17 + 32);
  assert.equal(parseHeader(t)!.anCount, 2);
});

Deno.test("readName() follows backward compression pointers and refuses loops", () => {
  const q = buildQuery(1, "example.com", DnsType.A);
  const r = buildAResponse(q, ["1.2.3.4"]);
  assert.deepEqual(readName(r, 29), { name: "example.com", end: 31 });
  const loop = new Uint8Array([...new Uint8Array(12), 0xc0, 0x0c]);
  assert.equal(readName(loop, 12), null);
  const forward = new Uint8Array([...new Uint8Array(12), 0xc0, 0x0e, 0x00]);
  assert.equal(readName(forward, 12), null);
  assert.deepEqual(readName(new Uint8Array([0]), 0), { name: ".", end: 1 });
});

Deno.test("encodeName() rejects empty and over-long labels", () => {
  assert.throws(() => encodeName("a..b"), RangeError);
  assert.throws(() => encodeName("x".repeat(64) + ".com"), RangeError);
  assert.throws(() => encodeName(Array.from({ length: 130 }, () => "ab").join(".")), RangeError);
  assert.deepEqual(encodeName("."), new Uint8Array([0]));
});
