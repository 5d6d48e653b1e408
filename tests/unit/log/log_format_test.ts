import assert from "node:assert/strict";
import { formatFields, formatHuman, formatJson } from "../../../src/log_format.ts";
import { Level, type LogRecord, Secret } from "../../../src/log.ts";
import { colourSupported, createStdoutSink } from "../../../src/io/log_sink.ts";

const T = Date.UTC(2025, 7, 21, 9, 8, 56, 123);

function rec(level: Level, fields?: Record<string, unknown>): LogRecord {
  return { level, target: "fz_gateway::portal", message: "Joined gateway room on portal", fields };
}

Deno.test("formatHuman() prints timestamp (ms, Z), level padded to 5, target, message, fields", () => {
  assert.equal(
    formatHuman(rec(Level.Info, { host: "api.firezone.dev", n: 3, ok: true }), T, false),
    "2025-08-21T09:08:56.123Z  INFO fz_gateway::portal: Joined gateway room on portal host=api.firezone.dev n=3 ok=true",
  );
  assert.equal(
    formatHuman(rec(Level.Warn), T, false),
    "2025-08-21T09:08:56.123Z  WARN fz_gateway::portal: Joined gateway room on portal",
  );
  assert.equal(formatHuman(rec(Level.Error), T, false).slice(24, 30), " ERROR");
  assert.equal(formatHuman(rec(Level.Trace), T, false).slice(24, 30), " TRACE");
  assert.equal(formatHuman(rec(Level.Debug), T, false).slice(24, 30), " DEBUG");
});

Deno.test("formatHuman() colours only when asked: dim timestamp/target, coloured level", () => {
  const line = formatHuman(rec(Level.Info), T, true);
  assert.equal(
    line,
    "\x1b[2m2025-08-21T09:08:56.123Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mfz_gateway::portal\x1b[0m: Joined gateway room on portal",
  );
  assert.ok(formatHuman(rec(Level.Warn), T, true).includes("\x1b[33m WARN"));
  assert.ok(formatHuman(rec(Level.Error), T, true).includes("\x1b[31mERROR"));
  assert.ok(!formatHuman(rec(Level.Info), T, false).includes("\x1b"));
});

Deno.test("log formats never print secrets", () => {
  const fields = { token: new Secret("hunter2"), nested: { key: new Secret("k") } };
  const human = formatHuman(rec(Level.Info, fields), T, false);
  const json = formatJson(rec(Level.Info, fields), T);
  for (const line of [human, json]) {
    assert.ok(!line.includes("hunter2") && !line.includes('"k"'), line);
    assert.ok(line.includes("[redacted]"));
  }
});

Deno.test("formatJson() writes tracing-subscriber's layout, one object per line", () => {
  const line = formatJson(rec(Level.Warn, { error: new Error("boom"), n: 1, skipped: undefined }), T);
  assert.equal(
    line,
    '{"timestamp":"2025-08-21T09:08:56.123Z","level":"WARN","fields":{"message":"Joined gateway room on portal","error":"boom","n":1},"target":"fz_gateway::portal"}',
  );
});

Deno.test("formatFields() quotes strings with spaces, quotes or '='", () => {
  assert.equal(
    formatFields({ a: "x y", b: 'q"', c: "k=v", d: "plain", e: null }),
    'a="x y" b="q\\"" c="k=v" d=plain e=null',
  );
});

Deno.test("colourSupported() honours NO_COLOR, FORCE_COLOR, TTY and TERM=dumb", () => {
  assert.equal(colourSupported({}, true), true);
  assert.equal(colourSupported({}, false), false);
  assert.equal(colourSupported({ NO_COLOR: "1" }, true), false);
  assert.equal(colourSupported({ NO_COLOR: "" }, true), true);
  assert.equal(colourSupported({ FORCE_COLOR: "1" }, false), true);
  assert.equal(colourSupported({ FORCE_COLOR: "0" }, true), false);
  assert.equal(colourSupported({ FORCE_COLOR: "false" }, true), false);
  assert.equal(colourSupported({ NO_COLOR: "1", FORCE_COLOR: "1" }, true), false);
  assert.equal(colourSupported({ TERM: "dumb" }, true), false);
});

Deno.test("createStdoutSink() writes one formatted line per record with the injected clock", () => {
  const lines: string[] = [];
  const dec = new TextDecoder();
  const human = createStdoutSink({
    format: "human",
    ansi: false,
    clock: () => T,
    write: (b) => lines.push(dec.decode(b)),
  });
  const json = createStdoutSink({
    format: "json",
    ansi: true,
    clock: () => T,
    write: (b) => lines.push(dec.decode(b)),
  });
  human(rec(Level.Info));
  json(rec(Level.Info));
  assert.equal(
    lines[0],
    "2025-08-21T09:08:56.123Z  INFO fz_gateway::portal: Joined gateway room on portal\n",
  );
  assert.ok(lines[1]!.startsWith('{"timestamp":"2025-08-21T09:08:56.123Z","level":"INFO"'));
  assert.ok(lines[1]!.endsWith("}\n") && !lines[1]!.includes("\x1b"));
});
