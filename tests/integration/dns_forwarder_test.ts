/**
 * The DNS forwarder (spec §4.8) on loopback against scripted upstream nameservers: forwarding over
 * UDP and TCP, SERVFAIL on timeout and without nameservers, UDP truncation, nameserver probing and
 * binding. No root needed. Upstreams listen on 127.0.0.1 / 127.0.0.2 at one random port (the
 * forwarder's upstream port is injectable).
 *
 * @module
 */

import assert from "node:assert/strict";
import dgram from "node:dgram";
import {
  buildQuery,
  buildServfail,
  DnsType,
  parseHeader,
  parseQuestions,
  PROBE_DOMAIN,
  skipRecord,
} from "../../src/dns/message.ts";
import { DnsForwarder, DnsForwarderBindError, type DnsForwarderOptions } from "../../src/io/dns_forwarder.ts";
import { SeededRng } from "../../src/rng.ts";
import { buildAResponse, manyAddresses } from "../_helpers/dns_messages.ts";
import { delay, type DnsHandler, FakeDnsServer } from "../_helpers/fake_dns_server.ts";

const FAST_OPTIONS: DnsForwarderOptions = {
  port: 0,
  probeIntervalMs: 0,
  queryTimeoutMs: 1_000,
  probeTimeoutMs: 500,
  bindRetryMs: 0,
  rng: new SeededRng(7),
};

function questionName(query: Uint8Array): string {
  return parseQuestions(query)?.questions[0]?.name ?? "";
}

/** Answers probes and `ok.test` with A records; other names as `rest` says. */
function standardHandler(rest: DnsHandler = () => null): DnsHandler {
  return (query, transport) => {
    const name = questionName(query);
    if (name === PROBE_DOMAIN) return buildAResponse(query, ["192.0.2.1"]);
    if (name === "ok.test") return buildAResponse(query, ["198.51.100.7"], { opt: true });
    return rest(query, transport);
  };
}

async function udpQuery(ip: string, port: number, query: Uint8Array, timeoutMs = 3_000): Promise<Uint8Array> {
  const socket = dgram.createSocket(ip.includes(":") ? "udp6" : "udp4");
  try {
    return await new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no UDP answer")), timeoutMs);
      socket.on("message", (msg: Uint8Array) => {
        clearTimeout(timer);
        resolve(Uint8Array.from(msg));
      });
      socket.send(query, port, ip);
    });
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

async function tcpQuery(ip: string, port: number, queries: Uint8Array[]): Promise<Uint8Array[]> {
  const conn = await Deno.connect({ hostname: ip, port });
  try {
    const out: Uint8Array[] = [];
    for (const q of queries) {
      const framed = new Uint8Array([q.length >> 8, q.length & 0xff, ...q]);
      await conn.write(framed);
      const head = await readExact(conn, 2);
      out.push(await readExact(conn, (head[0]! << 8) | head[1]!));
    }
    return out;
  } finally {
    conn.close();
  }
}

async function readExact(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let filled = 0;
  while (filled < n) {
    const r = await conn.read(out.subarray(filled));
    if (r === null) throw new Error("EOF");
    filled += r;
  }
  return out;
}

/** A query with unusual bits (AD, CD, an OPT record) so "unmodified" is visible. */
function oddQuery(id: number, name: string): Uint8Array {
  const base = buildQuery(id, name, DnsType.A);
  const out = new Uint8Array(base.length + 11);
  out.set(base);
  out[3] = 0x30; // AD + CD
  out[11] = 1; // one additional record: OPT
  out.set([0x00, 0x00, 0x29, 0x10, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00], base.length); // DO bit
  return out;
}

async function withForwarder(
  nameservers: string[],
  upstreamPort: number,
  options: DnsForwarderOptions,
  body: (fwd: DnsForwarder, port: number) => Promise<void>,
): Promise<void> {
  const fwd = new DnsForwarder(nameservers, { ...FAST_OPTIONS, upstreamPort, ...options });
  try {
    const result = await fwd.rebind(["127.0.0.1"]);
    await body(fwd, result.bound[0]!.port);
  } finally {
    await fwd.close();
  }
}

Deno.test("DnsForwarder forwards a UDP query unmodified and relays the answer", async () => {
  const upstream = await FakeDnsServer.start("127.0.0.1", 0, standardHandler());
  try {
    await withForwarder(["127.0.0.1"], upstream.port, {}, async (fwd, port) => {
      const query = oddQuery(0x5151, "ok.test");
      const response = await udpQuery("127.0.0.1", port, query);
      const seen = upstream.queries("udp").filter((q) => questionName(q) === "ok.test");
      assert.deepEqual(seen, [query], "the nameserver got the exact query bytes");
      assert.deepEqual(response, buildAResponse(query, ["198.51.100.7"], { opt: true }));
      assert.equal(fwd.upstream, "127.0.0.1");
    });
  } finally {
    await upstream.close();
  }
});

Deno.test("DnsForwarder forwards TCP queries over TCP, several on one connection", async () => {
  const upstream = await FakeDnsServer.start("127.0.0.1", 0, standardHandler());
  try {
    await withForwarder(["127.0.0.1"], upstream.port, {}, async (_fwd, port) => {
      const q1 = oddQuery(1, "ok.test");
      const q2 = buildQuery(2, "ok.test", DnsType.A);
      const [r1, r2] = await tcpQuery("127.0.0.1", port, [q1, q2]);
      assert.deepEqual(r1, buildAResponse(q1, ["198.51.100.7"], { opt: true }));
      assert.deepEqual(r2, buildAResponse(q2, ["198.51.100.7"], { opt: true }));
      const seen = upstream.queries("tcp").filter((q) => questionName(q) === "ok.test");
      assert.deepEqual(seen, [q1, q2]);
      assert.equal(upstream.queries("udp").filter((q) => questionName(q) === "ok.test").length, 0);
    });
  } finally {
    await upstream.close();
  }
});

Deno.test("DnsForwarder answers SERVFAIL after the timeout when the nameserver is silent", async () => {
  const upstream = await FakeDnsServer.start("127.0.0.1", 0, standardHandler(() => null));
  try {
    await withForwarder(["127.0.0.1"], upstream.port, { queryTimeoutMs: 200 }, async (fwd, port) => {
      assert.equal(await fwd.probe(), "127.0.0.1");
      const query = buildQuery(0x7777, "silent.test", DnsType.TXT);
      let started = performance.now();
      const udp = await udpQuery("127.0.0.1", port, query);
      assert.ok(performance.now() - started >= 190, "waited for the timeout");
      assert.deepEqual(udp, buildServfail(query));
      const h = parseHeader(udp)!;
      assert.deepEqual([h.id, h.qr, h.rd, h.ra, h.rcode], [0x7777, true, true, true, 2]);

      started = performance.now();
      const [tcp] = await tcpQuery("127.0.0.1", port, [query]);
      assert.ok(performance.now() - started >= 190);
      assert.deepEqual(tcp, buildServfail(query));
    });
  } finally {
    await upstream.close();
  }
});

Deno.test("DnsForwarder truncates a large UDP answer to 1200 bytes with TC; TCP gets all of it", async () => {
  const big = (query: Uint8Array) => buildAResponse(query, manyAddresses(150));
  const upstream = await FakeDnsServer.start("127.0.0.1", 0, standardHandler(big));
  try {
    await withForwarder(["127.0.0.1"], upstream.port, {}, async (_fwd, port) => {
      const query = buildQuery(0x0b16, "big.test", DnsType.A);
      const full = big(query);
      assert.ok(full.length > 2_000);

      const udp = await udpQuery("127.0.0.1", port, query);
      assert.ok(udp.length <= 1200, `${udp.length} bytes`);
      const h = parseHeader(udp)!;
      assert.equal(h.tc, true);
      assert.equal(h.id, 0x0b16);
      assert.ok(h.anCount > 0 && h.anCount < 150);
      let off = parseQuestions(udp)!.end;
      for (let i = 0; i < h.anCount; i++) off = skipRecord(udp, off);
      assert.equal(off, udp.length, "cut at a record boundary");

      const [tcp] = await tcpQuery("127.0.0.1", port, [query]);
      assert.deepEqual(tcp, full);
    });
  } finally {
    await upstream.close();
  }
});

Deno.test("DnsForwarder answers SERVFAIL at once without nameservers", async () => {
  await withForwarder([], 53, {}, async (fwd, port) => {
    const query = buildQuery(3, "any.test", DnsType.SRV);
    const started = performance.now();
    assert.deepEqual(await udpQuery("127.0.0.1", port, query), buildServfail(query));
    assert.deepEqual(await tcpQuery("127.0.0.1", port, [query]), [buildServfail(query)]);
    assert.ok(performance.now() - started < 500);
    assert.equal(fwd.upstream, undefined);
  });
});

/** Two upstreams on 127.0.0.1 and 127.0.0.2 sharing one port. */
async function startPair(
  first: DnsHandler,
  second: DnsHandler,
): Promise<[FakeDnsServer, FakeDnsServer]> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const a = await FakeDnsServer.start("127.0.0.1", 0, first);
    try {
      return [a, await FakeDnsServer.start("127.0.0.2", a.port, second)];
    } catch {
      await a.close();
    }
  }
  throw new Error("no port free on both 127.0.0.1 and 127.0.0.2");
}

Deno.test("DnsForwarder.probe() picks the fastest nameserver and forwards to it", async () => {
  const slowHandler = standardHandler();
  const [slow, fast] = await startPair(async (q, t) => {
    await delay(150);
    return slowHandler(q, t);
  }, standardHandler());
  try {
    // The slow server is listed first, so only the probe can make the fast one win.
    await withForwarder(["127.0.0.1", "127.0.0.2"], slow.port, {}, async (fwd, port) => {
      assert.equal(await fwd.probe(), "127.0.0.2");
      assert.equal(fwd.fastestNameserver, "127.0.0.2");
      for (const server of [slow, fast]) {
        const probes = server.received.filter((q) => questionName(q.bytes) === PROBE_DOMAIN);
        assert.deepEqual(
          new Set(probes.map((q) => q.transport)),
          new Set(["udp", "tcp"]),
          "probed over both",
        );
        const h = parseHeader(probes[0]!.bytes)!;
        assert.equal(h.rd, true);
        assert.equal(parseQuestions(probes[0]!.bytes)!.questions[0]!.type, DnsType.A);
      }
      const query = buildQuery(0x1111, "ok.test", DnsType.A);
      await udpQuery("127.0.0.1", port, query);
      assert.equal(fast.queries("udp").filter((q) => questionName(q) === "ok.test").length, 1);
      assert.equal(slow.queries("udp").filter((q) => questionName(q) === "ok.test").length, 0);
    });
  } finally {
    await slow.close();
    await fast.close();
  }
});

Deno.test("DnsForwarder.probe() only counts NOERROR answers", async () => {
  const good = standardHandler();
  const [refusing, slowGood] = await startPair(
    (q) => buildAResponse(q, [], { rcode: 5 }), // REFUSED, instantly
    async (q, t) => {
      await delay(50);
      return good(q, t);
    },
  );
  try {
    await withForwarder(["127.0.0.1", "127.0.0.2"], refusing.port, {}, async (fwd) => {
      assert.equal(await fwd.probe(), "127.0.0.2");
    });
  } finally {
    await refusing.close();
    await slowGood.close();
  }
});

Deno.test("DnsForwarder: after a probe round without any NOERROR, queries get SERVFAIL", async () => {
  const upstream = await FakeDnsServer.start("127.0.0.1", 0, () => null);
  try {
    await withForwarder(["127.0.0.1"], upstream.port, { probeTimeoutMs: 50 }, async (fwd, port) => {
      assert.equal(await fwd.probe(), undefined);
      assert.equal(fwd.upstream, undefined);
      const query = buildQuery(4, "x.test", DnsType.A);
      const before = upstream.received.length;
      assert.deepEqual(await udpQuery("127.0.0.1", port, query), buildServfail(query));
      assert.equal(upstream.received.length, before, "not forwarded");
    });
  } finally {
    await upstream.close();
  }
});

Deno.test("DnsForwarder.rebind() binds IPv4 and IPv6, rebinds, and reports failures", async () => {
  const fwd = new DnsForwarder([], FAST_OPTIONS);
  try {
    const first = await fwd.rebind(["127.0.0.1", "::1"]);
    assert.deepEqual(first.bound.map((a) => a.ip), ["127.0.0.1", "::1"]);
    assert.deepEqual(first.failed, []);
    const v6 = first.bound[1]!;
    const query = buildQuery(9, "v6.test", DnsType.A);
    assert.deepEqual(await udpQuery("::1", v6.port, query), buildServfail(query));
    assert.deepEqual(await tcpQuery("::1", v6.port, [query]), [buildServfail(query)]);

    // Re-init: same address again, plus one that is not on this host.
    const second = await fwd.rebind(["127.0.0.1", "192.0.2.99"]);
    assert.equal(second.bound.length, 1);
    assert.equal(second.failed.length, 1);
    assert.equal(second.failed[0]!.address, "192.0.2.99");
    assert.deepEqual(fwd.boundAddresses, second.bound);
    await assert.rejects(udpQuery("::1", v6.port, query, 200), /no UDP answer/, "old listener closed");

    await assert.rejects(
      fwd.rebind(["192.0.2.99", "2001:db8::99"]),
      (e: unknown) => e instanceof DnsForwarderBindError && e.failures.length === 2,
    );
    assert.deepEqual(fwd.boundAddresses, []);
  } finally {
    await fwd.close();
  }
});

Deno.test("DnsForwarder.rebind() on a fixed port reports the port in use", async () => {
  const blocker = await FakeDnsServer.start("127.0.0.1", 0, () => null);
  const fwd = new DnsForwarder([], { ...FAST_OPTIONS, port: blocker.port });
  try {
    await assert.rejects(fwd.rebind(["127.0.0.1"]), DnsForwarderBindError);
  } finally {
    await fwd.close();
    await blocker.close();
  }
});

Deno.test("DnsForwarder.setNameservers() probes the new set while running", async () => {
  const upstream = await FakeDnsServer.start("127.0.0.1", 0, standardHandler());
  try {
    // Nothing listens on 127.0.0.3: the first round finds no nameserver.
    await withForwarder(["127.0.0.3"], upstream.port, { probeTimeoutMs: 100 }, async (fwd) => {
      fwd.setNameservers(["127.0.0.1", "127.0.0.1"]);
      assert.deepEqual(fwd.nameservers, ["127.0.0.1"]);
      const deadline = performance.now() + 2_000;
      while (fwd.fastestNameserver !== "127.0.0.1" && performance.now() < deadline) await delay(10);
      assert.equal(fwd.fastestNameserver, "127.0.0.1");
      assert.throws(() => fwd.setNameservers(["dns.example"]), TypeError);
    });
  } finally {
    await upstream.close();
  }
});
