import assert from "node:assert/strict";
import { DnsType, parseQuestions } from "../../../src/dns/message.ts";
import {
  type AddressLookup,
  DnsResolutionError,
  DnsResolver,
  normalizeDomain,
  ResolutionLimitError,
} from "../../../src/io/dns_resolver.ts";
import { buildAResponse } from "../../_helpers/dns_messages.ts";
import { FakeDnsServer } from "../../_helpers/fake_dns_server.ts";

type Answers = Record<string, { A?: string[] | Error; AAAA?: string[] | Error }>;

/** A lookup answering from a table, recording every call. */
function tableLookup(answers: Answers) {
  const calls: string[] = [];
  const lookup: AddressLookup = (name, type) => {
    calls.push(`${type} ${name}`);
    const a = answers[name]?.[type];
    if (a instanceof Error) return Promise.reject(a);
    if (!a) return Promise.reject(new Deno.errors.NotFound(`no records for ${name} ${type}`));
    return Promise.resolve(a);
  };
  return { calls, lookup };
}

Deno.test("DnsResolver.resolve() returns IPv6 addresses followed by IPv4, canonical and deduplicated", async () => {
  const { lookup } = tableLookup({
    "app.example": { A: ["10.0.0.1", "10.0.0.2", "10.0.0.1"], AAAA: ["2001:DB8::1"] },
  });
  const r = new DnsResolver({ lookup, hostsPath: null });
  assert.deepEqual(await r.resolve("App.Example."), ["2001:db8::1", "10.0.0.1", "10.0.0.2"]);
});

Deno.test("DnsResolver.resolve() succeeds if either family succeeds", async () => {
  const { lookup } = tableLookup({
    "v4only.example": { A: ["10.0.0.1"], AAAA: new Error("NODATA") },
    "v6only.example": { AAAA: ["2001:db8::7"] },
  });
  const r = new DnsResolver({ lookup, hostsPath: null });
  assert.deepEqual(await r.resolve("v4only.example"), ["10.0.0.1"]);
  assert.deepEqual(await r.resolve("v6only.example"), ["2001:db8::7"]);
});

Deno.test("DnsResolver.resolve() fails with both reasons when neither family has an address", async () => {
  const { lookup } = tableLookup({ "empty.example": { A: [] } });
  const r = new DnsResolver({ lookup, hostsPath: null });
  await assert.rejects(
    r.resolve("empty.example"),
    (e: unknown) =>
      e instanceof DnsResolutionError && e.domain === "empty.example" &&
      /AAAA: no records for empty\.example AAAA; A: no records\)/.test(e.message),
  );
  await assert.rejects(r.resolve("missing.example"), DnsResolutionError);
});

Deno.test("DnsResolver.resolve() caches successes for 30 s per domain (case-insensitive)", async () => {
  let now = 0;
  const { calls, lookup } = tableLookup({ "app.example": { A: ["10.0.0.1"] } });
  const r = new DnsResolver({ lookup, hostsPath: null, clock: () => now });
  await r.resolve("app.example");
  assert.equal(calls.length, 2);
  now = 29_999;
  const cached = await r.resolve("APP.example.");
  assert.deepEqual(cached, ["10.0.0.1"]);
  cached.push("mutated");
  assert.deepEqual(await r.resolve("app.example"), ["10.0.0.1"], "callers get copies");
  assert.equal(calls.length, 2);
  now = 30_000;
  await r.resolve("app.example");
  assert.equal(calls.length, 4);
});

Deno.test("DnsResolver.resolve() coalesces concurrent requests and does not cache failures", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  let calls = 0;
  let fail = true;
  const lookup: AddressLookup = async (_name, type) => {
    calls++;
    await gate;
    if (fail) throw new Error("SERVFAIL");
    return type === "A" ? ["10.1.1.1"] : [];
  };
  const r = new DnsResolver({ lookup, hostsPath: null });
  const a = r.resolve("flaky.example");
  const b = r.resolve("flaky.example");
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(calls, 2, "one A and one AAAA lookup for two requests");
  release();
  await assert.rejects(a, DnsResolutionError);
  await assert.rejects(b, DnsResolutionError);
  fail = false;
  assert.deepEqual(await r.resolve("flaky.example"), ["10.1.1.1"]);
  assert.equal(calls, 4);
});

Deno.test("DnsResolver.resolve() times out a hung lookup and aborts it", async () => {
  const signals: AbortSignal[] = [];
  const lookup: AddressLookup = (_name, _type, signal) => {
    signals.push(signal);
    return new Promise(() => {}); // never settles, ignores the signal
  };
  const r = new DnsResolver({ lookup, hostsPath: null, timeoutMs: 50 });
  const started = performance.now();
  await assert.rejects(r.resolve("slow.example"), /timed out after 50 ms/);
  assert.ok(performance.now() - started >= 45);
  assert.equal(signals.length, 2);
  assert.ok(signals.every((s) => s.aborted));
});

Deno.test("DnsResolver.resolve() drops requests beyond the concurrency cap", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => release = resolve);
  const lookup: AddressLookup = async () => {
    await gate;
    return ["10.0.0.1"];
  };
  const r = new DnsResolver({ lookup, hostsPath: null, maxConcurrent: 2 });
  const a = r.resolve("a.example");
  const b = r.resolve("b.example");
  await assert.rejects(r.resolve("c.example"), ResolutionLimitError);
  assert.equal(r.pending, 2);
  release();
  await Promise.all([a, b]);
});

Deno.test("DnsResolver.resolve() answers names in the hosts file per family, like getaddrinfo", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fzdns_" });
  try {
    const hostsPath = `${dir}/hosts`;
    await Deno.writeTextFile(hostsPath, "10.9.0.1 internal.example\n");
    const { calls, lookup } = tableLookup({
      "internal.example": { A: ["192.0.2.1"], AAAA: ["2001:db8::9"] },
    });
    const r = new DnsResolver({ lookup, hostsPath, cacheTtlMs: 0 });
    assert.deepEqual(await r.resolve("internal.example"), ["2001:db8::9", "10.9.0.1"]);
    assert.deepEqual(calls, ["AAAA internal.example"], "A answered from the hosts file");

    // A changed hosts file is read again.
    await Deno.writeTextFile(hostsPath, "10.9.0.2 internal.example\n2001:db8::2 internal.example\n");
    const later = Date.now() / 1000 + 5;
    await Deno.utime(hostsPath, later, later);
    assert.deepEqual(await r.resolve("internal.example"), ["2001:db8::2", "10.9.0.2"]);
    assert.equal(calls.length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DnsResolver.resolve() resolves IP literals to themselves without DNS", async () => {
  const { calls, lookup } = tableLookup({});
  const r = new DnsResolver({ lookup, hostsPath: null });
  assert.deepEqual(await r.resolve("10.0.0.9"), ["10.0.0.9"]);
  assert.deepEqual(await r.resolve("2001:DB8::9"), ["2001:db8::9"]);
  assert.equal(calls.length, 0);
});

Deno.test("normalizeDomain() rejects invalid names", () => {
  assert.equal(normalizeDomain(" Example.COM. "), "example.com");
  assert.throws(() => normalizeDomain(""), TypeError);
  assert.throws(() => normalizeDomain("a..b"), TypeError);
  assert.throws(() => normalizeDomain("x".repeat(64) + ".com"), TypeError);
});

Deno.test("DnsResolver uses Deno.resolveDns against the configured nameServer", async () => {
  const server = await FakeDnsServer.start("127.0.0.1", 0, (query) => {
    const q = parseQuestions(query)!.questions[0]!;
    if (q.name !== "svc.test") return buildAResponse(query, [], { rcode: 3 });
    return buildAResponse(query, q.type === DnsType.A ? ["192.0.2.44"] : []);
  });
  try {
    const r = new DnsResolver({ hostsPath: null, nameServer: { ipAddr: "127.0.0.1", port: server.port } });
    assert.deepEqual(await r.resolve("svc.test"), ["192.0.2.44"]);
    await assert.rejects(r.resolve("nope.test"), DnsResolutionError);
  } finally {
    await server.close();
  }
});
