import assert from "node:assert/strict";
import { buildLogFilter, parseDirectives } from "../../../src/log_filter.ts";
import { Level } from "../../../src/log.ts";

Deno.test("buildLogFilter() defaults to ERROR for everything without RUST_LOG (upstream)", () => {
  const { filter } = buildLogFilter({});
  assert.equal(filter("fz_gateway::portal"), Level.Error);
  assert.equal(filter("rustls::x"), Level.Warn, "the fixed upstream prefix still applies");
});

Deno.test("buildLogFilter() applies a global level and per-target levels by longest prefix", () => {
  const { filter } = buildLogFilter({
    RUST_LOG: "fz_gateway::portal=debug,warn,wire::api=trace,fz_gateway::portal::messages=error",
  });
  assert.equal(filter("fz_gateway::portal"), Level.Debug);
  assert.equal(filter("fz_gateway::portal::socket"), Level.Debug);
  assert.equal(filter("fz_gateway::portal::messages"), Level.Error);
  assert.equal(filter("fz_gateway::gateway_app"), Level.Warn);
  assert.equal(filter("wire::api::send"), Level.Trace);
  assert.equal(filter("opentelemetry_sdk"), Level.Info);
});

Deno.test("buildLogFilter() lets FZ_LOG win over RUST_LOG", () => {
  assert.equal(buildLogFilter({ RUST_LOG: "debug", FZ_LOG: "info" }).filter("x"), Level.Info);
  assert.equal(buildLogFilter({ RUST_LOG: "debug", FZ_LOG: "" }).filter("x"), Level.Debug);
});

Deno.test("parseDirectives() accepts case-insensitive levels, bare targets and upstream crate names", () => {
  const { directives, invalid } = parseDirectives(
    "INFO,phoenix_channel=Debug,firezone_gateway::eventloop,snownet=off",
  );
  assert.deepEqual(directives, [
    { target: null, level: Level.Info },
    { target: "fz_gateway::portal", level: Level.Debug },
    { target: "fz_gateway::eventloop", level: Level.Trace },
    { target: "fz_gateway::p2p", level: Level.Off },
  ]);
  assert.deepEqual(invalid, []);
});

Deno.test("parseDirectives() reports what it cannot understand", () => {
  const { directives, invalid } = parseDirectives("info,foo=loud,bar[span]=debug, ,=x");
  assert.deepEqual(directives, [{ target: null, level: Level.Info }]);
  assert.deepEqual(invalid, ["foo=loud", "bar[span]=debug", "=x"]);
});
