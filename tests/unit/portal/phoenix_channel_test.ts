import assert from "node:assert/strict";
import {
  type ChannelCommand,
  type ChannelEvent,
  errorReason,
  HEARTBEAT_INTERVAL_MS,
  JOIN_TIMEOUT_MS,
  MAX_BUFFERED_MESSAGES,
  OPEN_TIMEOUT_MS,
  PhoenixChannel,
} from "../../../src/portal/phoenix_channel.ts";
import { flowAuthorized, type IngressMessage, parseIngressMessage } from "../../../src/portal/messages.ts";
import { randomUnit, SeededRng } from "../../../src/rng.ts";
import { BACKOFF_MAX_INTERVAL_MS, ExponentialBackoff } from "../../../src/portal/backoff.ts";

const FIXTURES = new URL("../../fixtures/portal/", import.meta.url);
const MIN = 60_000;

Deno.test("PhoenixChannel sends the join first, with a null payload and ref 0", () => {
  const { ch } = openChannel();
  const frames = drainFrames(ch);
  assert.deepEqual(frames, [fixture("derived/egress_phx_join_1.json")]);
});

Deno.test("PhoenixChannel holds application messages until the join is answered (no pipelining)", () => {
  const { ch, now } = openChannel();
  const ref = ch.send("gateway", flowAuthorized("abc"));
  assert.equal(ref, 1, "refs are allocated when queued; the join took 0");
  assert.deepEqual(drainFrames(ch).map(eventOf), ["phx_join"]);
  assert.equal(ch.pollFrame(), undefined);
  ch.handleFrame(joinOk(0), now);
  assert.deepEqual(drainFrames(ch), [
    '{"topic":"gateway","event":"flow_authorized","payload":{"ref":"abc"},"ref":1}',
  ]);
  assert.ok(ch.isJoined);
  assert.deepEqual(drainEvents(ch).map((e) => e.type), ["connected", "joined"]);
});

Deno.test("PhoenixChannel queues a heartbeat every 30 s on topic phoenix with payload {}", () => {
  const { ch, now: t0 } = joinedChannel();
  assert.equal(ch.pollTimeout(), t0 + HEARTBEAT_INTERVAL_MS);
  const heartbeats: string[] = [];
  for (let i = 1; i <= 3; i++) {
    const at = ch.pollTimeout();
    assert.equal(at, t0 + i * HEARTBEAT_INTERVAL_MS);
    ch.handleTimeout(at);
    heartbeats.push(...drainFrames(ch));
    ch.handleFrame(reply("phoenix", i, "ok", {}), at + 5);
  }
  assert.deepEqual(heartbeats, [
    '{"topic":"phoenix","event":"heartbeat","payload":{},"ref":1}',
    '{"topic":"phoenix","event":"heartbeat","payload":{},"ref":2}',
    '{"topic":"phoenix","event":"heartbeat","payload":{},"ref":3}',
  ]);
  assert.deepEqual(drainEvents(ch), [], "empty ok replies to heartbeats are not reported");
});

Deno.test("PhoenixChannel postpones the heartbeat whenever a frame goes out", () => {
  const { ch, now: t0 } = joinedChannel();
  ch.handleTimeout(t0 + 20_000); // nothing due; the channel now knows the time
  ch.send("gateway", flowAuthorized("x"));
  assert.equal(drainFrames(ch).length, 1);
  assert.equal(ch.pollTimeout(), t0 + 20_000 + HEARTBEAT_INTERVAL_MS);
  ch.handleTimeout(t0 + HEARTBEAT_INTERVAL_MS);
  assert.deepEqual(drainFrames(ch), [], "no heartbeat 30 s after the join once a frame was sent at 20 s");
});

Deno.test("PhoenixChannel reconnects at once, then with 500 ms x1.5 ±50 % backoff from the injected Rng", () => {
  const seed = 7;
  const { ch, now: t0 } = joinedChannel(seed);
  let now = t0 + 1_000;
  ch.handleClosed(now, { code: 1006 });
  assert.deepEqual(drainCommands(ch), [{ type: "close", code: 1000, reason: "closed" }]);
  const first = onlyHiccup(ch);
  assert.equal(first.backoffMs, 0, "the first retry after a connection loss is immediate");
  assert.equal(ch.pollTimeout(), now);
  ch.handleTimeout(now);
  assert.deepEqual(drainCommands(ch), [{ type: "connect" }]);

  // Every further failure draws the next delay; compare with the same sequence computed here.
  const expected = expectedDelays(seed, 1, 6);
  const got: number[] = [];
  for (let i = 0; i < 6; i++) {
    now += 100;
    ch.handleClosed(now, { error: "connection refused" });
    const h = onlyHiccup(ch);
    got.push(h.backoffMs);
    assert.equal(ch.pollTimeout(), now + h.backoffMs);
    now += h.backoffMs;
    ch.handleTimeout(now);
    assert.deepEqual(drainCommands(ch), [{ type: "connect" }]);
  }
  assert.deepEqual(got, expected);
  const nominal = [500, 750, 1125, 1687.5, 2531.25, 3796.875];
  got.forEach((d, i) =>
    assert.ok(d >= nominal[i]! * 0.5 - 1 && d <= nominal[i]! * 1.5 + 1, `${d} vs ${nominal[i]}`)
  );
});

Deno.test("PhoenixChannel gives up with a fatal error once the 15 min budget is spent", () => {
  const { ch, now: t0 } = openChannel(3);
  let now = t0;
  ch.handleClosed(now, { error: "reset" });
  const delays: number[] = [];
  let fatal: ChannelEvent<IngressMessage> | undefined;
  for (let i = 0; i < 1_000 && !fatal; i++) {
    for (const e of drainEvents(ch)) {
      if (e.type === "hiccup") delays.push(e.backoffMs);
      if (e.type === "fatal") fatal = e;
    }
    if (fatal) break;
    now = ch.pollTimeout();
    ch.handleTimeout(now);
    drainCommands(ch);
    ch.handleClosed(now, { error: "connection refused" });
  }
  assert.ok(fatal && fatal.type === "fatal");
  assert.equal(fatal.error.kind, "max_retries");
  assert.match(
    fatal.error.message,
    /Could not reach the portal for 15m; giving up\. Last error: .*connection refused/,
  );
  assert.ok(now - t0 <= 15 * MIN, "never waits past the budget");
  assert.ok(now - t0 > 13 * MIN, `used most of the budget (${now - t0} ms)`);
  assert.ok(Math.max(...delays) <= BACKOFF_MAX_INTERVAL_MS * 1.5, "delays stay within max interval ±50 %");
  assert.equal(ch.pollTimeout(), Infinity);
  assert.ok(ch.isFinished);
});

Deno.test("PhoenixChannel honours a configured budget (FIREZONE_MAX_PARTITION_TIME)", () => {
  const ch = new PhoenixChannel<IngressMessage>({
    topic: "gateway",
    parseMessage: parseIngressMessage,
    rng: new SeededRng(1),
    maxPartitionTimeMs: 2_000,
  });
  ch.connect(0);
  drainCommands(ch);
  let now = 0;
  let kinds: string[] = [];
  for (let i = 0; i < 50; i++) {
    ch.handleClosed(now, { error: "refused" });
    kinds = drainEvents(ch).map((e) => e.type === "fatal" ? e.error.message : e.type);
    if (kinds.some((k) => k.startsWith("Could not"))) break;
    now = ch.pollTimeout();
    ch.handleTimeout(now);
    drainCommands(ch);
  }
  assert.match(kinds.at(-1)!, /for 2s; giving up/);
  assert.ok(now <= 2_000);
});

Deno.test("PhoenixChannel resets the budget once a connection is established", () => {
  const { ch, now: t0 } = joinedChannel(5);
  let now = t0;
  // Twice: fail for more than 10 minutes, then connect. 20+ minutes in total, but no fatal error.
  for (let phase = 0; phase < 2; phase++) {
    const phaseStart = now;
    ch.handleClosed(now, { error: "lost" });
    for (;;) {
      assert.ok(!drainEvents(ch).some((e) => e.type === "fatal"), "no fatal error inside the budget");
      now = ch.pollTimeout();
      ch.handleTimeout(now);
      assert.deepEqual(drainCommands(ch).filter((c) => c.type === "connect"), [{ type: "connect" }]);
      if (now - phaseStart > 10 * MIN) break;
      ch.handleClosed(now, { error: "refused" });
    }
    ch.handleOpen(now);
    const join = drainFrames(ch);
    ch.handleFrame(joinOk(JSON.parse(join[0]!).ref), now);
    drainEvents(ch);
    assert.ok(ch.isJoined);
  }
  assert.ok(now - t0 > 20 * MIN);
});

Deno.test("PhoenixChannel treats 401, 403, 422 and other 4xx upgrade refusals as fatal", () => {
  const cases: [number, string, RegExp][] = [
    [401, "unauthorized", /rejected the token \(HTTP 401 - Invalid token\)\. Check FIREZONE_TOKEN/],
    [403, "forbidden", /refused this gateway \(HTTP 403\)/],
    [422, "invalid_params", /rejected the connection parameters \(HTTP 422\)/],
    [404, "client_error", /Check FIREZONE_API_URL/],
  ];
  for (const [status, kind, message] of cases) {
    const ch = newChannel();
    ch.connect(0);
    drainCommands(ch);
    ch.handleUpgradeError(status, 10, status === 401 ? "Invalid token" : "");
    const events = drainEvents(ch);
    assert.equal(events.length, 1);
    const e = events[0]!;
    assert.ok(e.type === "fatal");
    assert.equal(e.error.kind, kind);
    assert.equal(e.error.status, status);
    assert.match(e.error.message, message);
    assert.equal(ch.pollTimeout(), Infinity);
    ch.handleTimeout(1e9);
    assert.ok(!drainCommands(ch).some((c) => c.type === "connect"), "never reconnects after a fatal error");
  }
});

Deno.test("PhoenixChannel treats a rejected TLS certificate as fatal", () => {
  const ch = newChannel();
  ch.connect(0);
  drainCommands(ch);
  ch.handleCertificateError(5, "invalid peer certificate: Expired");
  const e = drainEvents(ch)[0];
  assert.ok(e && e.type === "fatal" && e.error.kind === "tls_certificate");
  assert.match(e.error.message, /certificate was rejected \(invalid peer certificate: Expired\)/);
});

Deno.test("PhoenixChannel retries 5xx at once and 429 only after a backoff", () => {
  const ch = newChannel(11);
  ch.connect(0);
  drainCommands(ch);
  ch.handleUpgradeError(503, 10, "Service Unavailable");
  const h5xx = onlyHiccup(ch);
  assert.equal(h5xx.backoffMs, 0);
  assert.match(h5xx.error, /HTTP 503 - Service Unavailable/);
  ch.handleTimeout(10);
  assert.deepEqual(drainCommands(ch), [{ type: "connect" }]);

  const limited = newChannel(11);
  limited.connect(0);
  drainCommands(limited);
  limited.handleUpgradeError(429, 10);
  const h429 = onlyHiccup(limited);
  assert.ok(h429.backoffMs >= 250 && h429.backoffMs <= 750, `429 waits ~500 ms, got ${h429.backoffMs}`);
  assert.match(h429.error, /rate-limiting/);
});

Deno.test("PhoenixChannel fails when the portal rejects the join", () => {
  for (const reason of ["unmatched topic", "invalid_version", "disabled"]) {
    const { ch, now } = openChannel();
    drainFrames(ch);
    ch.handleFrame(reply("gateway", 0, "error", { reason }), now);
    const e = drainEvents(ch).find((x) => x.type === "fatal");
    assert.ok(e && e.type === "fatal");
    assert.equal(e.error.kind, "login_failed");
    assert.match(e.error.message, new RegExp(`reason: ${reason}`));
    assert.deepEqual(drainCommands(ch), [{ type: "close", code: 1000, reason: "fatal" }]);
  }
});

Deno.test("PhoenixChannel fails on disconnect token_expired and ignores other disconnect reasons", () => {
  const { ch, now } = joinedChannel();
  ch.handleFrame('{"event":"disconnect","ref":null,"topic":"gateway","payload":{"reason":"bored"}}', now);
  assert.deepEqual(drainEvents(ch), []);
  ch.handleFrame(fixture("ingress_disconnect_1.json"), now);
  const e = drainEvents(ch)[0];
  assert.ok(e && e.type === "fatal");
  assert.equal(e.error.kind, "token_expired");
  assert.match(e.error.message, /token expired.*FIREZONE_TOKEN/);
});

Deno.test("PhoenixChannel reconnects after phx_close and after a join timeout", () => {
  const { ch, now } = joinedChannel();
  ch.handleFrame(fixture("ingress_phx_close_1.json"), now);
  assert.deepEqual(drainCommands(ch), [{ type: "close", code: 1000, reason: "phx_close" }]);
  assert.match(onlyHiccup(ch).error, /phx_close/);
  assert.ok(!ch.isJoined);

  const { ch: slow, now: t1 } = openChannel();
  drainFrames(slow);
  drainEvents(slow);
  assert.equal(slow.pollTimeout(), t1 + JOIN_TIMEOUT_MS);
  slow.handleTimeout(t1 + JOIN_TIMEOUT_MS);
  assert.deepEqual(drainCommands(slow), [{ type: "close", code: 1000, reason: "join timeout" }]);
  assert.match(onlyHiccup(slow).error, /did not answer the join within 5s/);
});

Deno.test("PhoenixChannel aborts a connection attempt that does not open in time", () => {
  const ch = newChannel();
  ch.connect(0);
  drainCommands(ch);
  assert.equal(ch.pollTimeout(), OPEN_TIMEOUT_MS);
  ch.handleTimeout(OPEN_TIMEOUT_MS);
  assert.deepEqual(drainCommands(ch), [{ type: "close", code: 1000, reason: "timeout" }]);
  assert.equal(onlyHiccup(ch).backoffMs, 0);
});

Deno.test("PhoenixChannel re-joins after phx_error and holds messages until the new join reply", () => {
  const { ch, now } = joinedChannel();
  ch.handleFrame('{"event":"phx_error","payload":{},"ref":null,"topic":"gateway"}', now);
  assert.ok(!ch.isJoined);
  ch.send("gateway", flowAuthorized("later"));
  const frames = drainFrames(ch);
  assert.deepEqual(frames, ['{"topic":"gateway","event":"phx_join","payload":null,"ref":1}']);
  ch.handleFrame(joinOk(1), now + 1);
  assert.ok(ch.isJoined);
  assert.deepEqual(drainFrames(ch).map(eventOf), ["flow_authorized"]);
});

Deno.test("PhoenixChannel skips malformed frames and keeps the session", () => {
  const { ch, now } = joinedChannel();
  for (
    const bad of [
      "{not json",
      "[]",
      '{"event":"init","topic":"gateway","payload":{"interface":{}}}',
      '{"event":"something_new","topic":"gateway","payload":{}}',
      '{"event":"phx_reply","ref":"12","topic":"gateway","payload":{"status":"ok","response":{}}}',
      '{"event":"phx_reply","ref":null,"topic":"gateway","payload":{"status":"ok","response":{"a":1}}}',
    ]
  ) {
    ch.handleFrame(bad, now);
  }
  assert.deepEqual(drainEvents(ch), []);
  assert.ok(ch.isJoined);
  ch.handleFrame(fixture("ingress_init_1.json"), now);
  const events = drainEvents(ch);
  assert.equal(events.length, 1);
  assert.ok(events[0]!.type === "message" && events[0]!.message.event === "init");
});

Deno.test("PhoenixChannel reports replies to its messages", () => {
  const { ch, now } = joinedChannel();
  const ref = ch.send("gateway", flowAuthorized("x"));
  drainFrames(ch);
  ch.handleFrame(reply("gateway", ref, "error", { reason: "invalid_ref" }), now);
  ch.handleFrame(reply("gateway", ref, "ok", { id: 3 }), now);
  assert.deepEqual(drainEvents(ch), [
    {
      type: "reply",
      topic: "gateway",
      ref,
      ok: false,
      response: { reason: "invalid_ref" },
      reason: "invalid_ref",
    },
    { type: "reply", topic: "gateway", ref, ok: true, response: { id: 3 }, reason: null },
  ]);
});

Deno.test("PhoenixChannel clears its queue when more than 32 messages wait, and keeps messages over reconnects", () => {
  const ch = newChannel();
  for (let i = 0; i <= MAX_BUFFERED_MESSAGES; i++) ch.send("gateway", flowAuthorized(`m${i}`));
  ch.send("gateway", flowAuthorized("survivor"));
  ch.connect(0);
  drainCommands(ch);
  ch.handleOpen(1);
  ch.handleFrame(joinOk(34), 2);
  const frames = drainFrames(ch);
  assert.deepEqual(frames.map(eventOf), ["phx_join", "flow_authorized"]);
  assert.match(frames[1]!, /"survivor"/);

  const { ch: kept, now } = joinedChannel();
  kept.handleClosed(now, { code: 1006 });
  kept.send("gateway", flowAuthorized("queued while down"));
  kept.handleTimeout(now);
  drainCommands(kept);
  kept.handleOpen(now + 1);
  const join = drainFrames(kept);
  assert.deepEqual(join.map(eventOf), ["phx_join"]);
  kept.handleFrame(joinOk(JSON.parse(join[0]!).ref), now + 2);
  assert.match(drainFrames(kept)[0]!, /queued while down/);
});

Deno.test("PhoenixChannel.reconnect() replaces an open connection and is ignored while connecting", () => {
  const { ch, now } = joinedChannel();
  ch.reconnect(now, "no relays");
  assert.deepEqual(drainCommands(ch), [{ type: "close", code: 1000, reason: "reconnect" }, {
    type: "connect",
  }]);
  ch.reconnect(now, "no relays");
  assert.deepEqual(drainCommands(ch), []);
});

Deno.test("PhoenixChannel.close() closes the socket and reports closed", () => {
  const { ch, now } = joinedChannel();
  ch.close(now);
  assert.deepEqual(drainCommands(ch), [{ type: "close", code: 1000, reason: "goodbye" }]);
  assert.deepEqual(drainEvents(ch), [{ type: "closed" }]);
  ch.handleClosed(now + 1, { code: 1000 });
  assert.deepEqual(drainEvents(ch), []);
  assert.equal(ch.pollTimeout(), Infinity);
});

Deno.test("errorReason() reads the reason of the error reply fixtures", () => {
  const reasons = [
    "ingress_phx_reply_1.json",
    "ingress_phx_reply_2.json",
    "ingress_phx_reply_3.json",
    "ingress_phx_reply_4.json",
  ]
    .map((n) => errorReason((JSON.parse(fixture(n)) as { payload: { response: unknown } }).payload.response));
  assert.deepEqual(reasons, ["unmatched topic", "bad reply", "invalid_version", "disabled"]);
  assert.equal(errorReason({}), "other");
});

Deno.test("ExponentialBackoff caps the interval at 60 s", () => {
  const b = new ExponentialBackoff(0, new SeededRng(2), Infinity);
  let last = 0;
  for (let i = 0; i < 40; i++) last = b.next(0)!;
  assert.ok(last >= 30_000 && last <= 90_000, `${last}`);
});

// ---------------------------------------------------------------------------------------------

function newChannel(seed = 1): PhoenixChannel<IngressMessage> {
  return new PhoenixChannel<IngressMessage>({
    topic: "gateway",
    parseMessage: parseIngressMessage,
    rng: new SeededRng(seed),
  });
}

function openChannel(seed = 1): { ch: PhoenixChannel<IngressMessage>; now: number } {
  const ch = newChannel(seed);
  const now = 1_000;
  ch.connect(now);
  assert.deepEqual(drainCommands(ch), [{ type: "connect" }]);
  ch.handleOpen(now);
  return { ch, now };
}

function joinedChannel(seed = 1): { ch: PhoenixChannel<IngressMessage>; now: number } {
  const { ch, now } = openChannel(seed);
  drainFrames(ch);
  ch.handleFrame(joinOk(0), now);
  drainEvents(ch);
  return { ch, now };
}

function fixture(name: string): string {
  return Deno.readTextFileSync(new URL(name, FIXTURES)).trim();
}

function joinOk(ref: number): string {
  return reply("gateway", ref, "ok", {});
}

function reply(topic: string, ref: number, status: string, response: unknown): string {
  return JSON.stringify({ event: "phx_reply", payload: { status, response }, ref, topic });
}

function drainFrames(ch: PhoenixChannel<IngressMessage>): string[] {
  const out: string[] = [];
  for (let f = ch.pollFrame(); f !== undefined; f = ch.pollFrame()) out.push(f);
  return out;
}

function drainEvents(ch: PhoenixChannel<IngressMessage>): ChannelEvent<IngressMessage>[] {
  const out: ChannelEvent<IngressMessage>[] = [];
  for (let e = ch.pollEvent(); e; e = ch.pollEvent()) out.push(e);
  return out;
}

function drainCommands(ch: PhoenixChannel<IngressMessage>): ChannelCommand[] {
  const out: ChannelCommand[] = [];
  for (let c = ch.pollCommand(); c; c = ch.pollCommand()) out.push(c);
  return out;
}

function onlyHiccup(ch: PhoenixChannel<IngressMessage>) {
  const events = drainEvents(ch);
  assert.equal(events.length, 1, JSON.stringify(events));
  const e = events[0]!;
  assert.ok(e.type === "hiccup", JSON.stringify(e));
  return e;
}

function eventOf(frame: string): string {
  return JSON.parse(frame).event;
}

/** The delays the backoff produces for `seed` after `skip` draws: independent re-computation. */
function expectedDelays(seed: number, skip: number, count: number): number[] {
  const rng = new SeededRng(seed);
  for (let i = 0; i < skip - 1; i++) rng.nextU32(); // draws made before (none for the immediate retry)
  const out: number[] = [];
  let interval = 500;
  for (let i = 0; i < count; i++) {
    out.push(Math.round(interval * 0.5 + randomUnit(rng) * interval));
    interval = Math.min(interval * 1.5, 60_000);
  }
  return out;
}
