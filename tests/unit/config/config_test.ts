import assert from "node:assert/strict";
import {
  type ConfigContext,
  parseClapBool,
  parseDuration,
  resolveConfig,
  UsageError,
} from "../../../src/config.ts";
import { SeededRng } from "../../../src/rng.ts";

function ctx(over: Partial<ConfigContext> = {}): ConfigContext {
  return {
    env: {},
    sources: {},
    hostname: "gw-host",
    rng: new SeededRng(1),
    readTokenFile: () => null,
    ...over,
  };
}

Deno.test("resolveConfig() applies upstream defaults", () => {
  const c = resolveConfig({ token: "tok" }, ctx());
  assert.equal(c.token.expose(), "tok");
  assert.equal(String(c.token), "[redacted]");
  assert.equal(c.apiUrl.original, "wss://api.firezone.dev");
  assert.equal(c.firezoneName, "gw-host");
  assert.equal(c.firezoneId, undefined);
  assert.equal(c.checkPermissions, true);
  assert.equal(c.noTelemetry, false);
  assert.deepEqual(c.healthCheckAddr, { family: 4, ip: "0.0.0.0", port: 8080 });
  assert.equal(c.logFormat, "human");
  assert.equal(c.maxPartitionTimeMs, 15 * 60_000);
  assert.equal(c.metrics, null);
  assert.equal(c.otlpGrpcEndpoint, null);
  assert.equal(c.validateChecksums, false);
  assert.ok(!JSON.stringify(c).includes('tok"'), "the token never serializes");
});

Deno.test("resolveConfig() takes FIREZONE_TOKEN when no TOKEN argument is given", () => {
  assert.equal(resolveConfig({}, ctx({ env: { FIREZONE_TOKEN: "from-env" } })).token.expose(), "from-env");
  assert.equal(
    resolveConfig({ token: "arg" }, ctx({ env: { FIREZONE_TOKEN: "env" } })).token.expose(),
    "arg",
  );
  assert.throws(() => resolveConfig({}, ctx()), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.match(e.message, /token is missing: pass it as the TOKEN argument or set FIREZONE_TOKEN/);
    return true;
  });
});

Deno.test("resolveConfig() reads the token from a file named by the value, trimmed", () => {
  const files: Record<string, string> = { "/run/secrets/token": "  secret-token\n", "/empty": "\n" };
  const readTokenFile = (p: string) => files[p] ?? null;
  assert.equal(
    resolveConfig({}, ctx({ env: { FIREZONE_TOKEN: "/run/secrets/token" }, readTokenFile })).token.expose(),
    "secret-token",
  );
  assert.equal(
    resolveConfig({ token: "/run/secrets/token" }, ctx({ readTokenFile })).token.expose(),
    "secret-token",
  );
  assert.throws(() => resolveConfig({ token: "/empty" }, ctx({ readTokenFile })), /token file .* is empty/);
  assert.throws(
    () =>
      resolveConfig(
        { token: "/x" },
        ctx({
          readTokenFile: () => {
            throw new Error("Permission denied");
          },
        }),
      ),
    /cannot read the token file .*Permission denied/,
  );
});

Deno.test("resolveConfig() names flag, env var, value and expectation for bad values", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [
      { apiUrl: "ftp://x" },
      /^error: invalid value "ftp:\/\/x" for -u\/--api-url \(env FIREZONE_API_URL\): scheme "ftp"/,
    ],
    [
      { healthCheckAddr: "localhost:80" },
      /for --health-check-addr \(env HEALTH_CHECK_ADDR\): expected IP:PORT/,
    ],
    [{ logFormat: "xml" }, /"xml" for --log-format \(env FIREZONE_LOG_FORMAT\): expected human or json/],
    [
      { maxPartitionTime: "15" },
      /--max-partition-time \(env FIREZONE_MAX_PARTITION_TIME\): expected a duration/,
    ],
    [{ metrics: "prometheus" }, /--metrics \(env FIREZONE_METRICS\): expected stdout or otel-collector/],
    [
      { otlpGrpcEndpoint: "http://x:4317" },
      /--otlp-grpc-endpoint \(env OTLP_GRPC_ENDPOINT\): expected HOST:PORT/,
    ],
  ];
  for (const [values, message] of cases) {
    assert.throws(() => resolveConfig({ token: "t", ...values }, ctx()), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.match(e.message, message);
      assert.ok(!e.message.includes("\n"), "one line");
      return true;
    });
  }
});

Deno.test("resolveConfig() parses clap bools only from the environment", () => {
  const env = (v: string) => ctx({ env: { FIREZONE_NO_TELEMETRY: v }, sources: { telemetry: "env" } });
  assert.equal(resolveConfig({ token: "t", telemetry: false }, env("true")).noTelemetry, true);
  assert.equal(resolveConfig({ token: "t", telemetry: false }, env("false")).noTelemetry, false);
  assert.throws(
    () => resolveConfig({ token: "t", telemetry: false }, env("1")),
    /"1" for --no-telemetry \(env FIREZONE_NO_TELEMETRY\): expected true or false/,
  );
  assert.throws(() => resolveConfig({ token: "t", telemetry: false }, env("")), /expected true or false/);
  assert.equal(
    resolveConfig({ token: "t", telemetry: false }, ctx({ sources: { telemetry: "cli" } })).noTelemetry,
    true,
  );
  const vc = ctx({ env: { FIREZONE_VALIDATE_CHECKSUMS: "yes" }, sources: { validateChecksums: "env" } });
  assert.throws(() => resolveConfig({ token: "t", validateChecksums: true }, vc), /--validate-checksums/);
  assert.equal(parseClapBool("true"), true);
  assert.throws(() => parseClapBool("TRUE"));
});

Deno.test("resolveConfig() names the gateway by hostname, else a random UUID", () => {
  assert.equal(resolveConfig({ token: "t", firezoneName: "named" }, ctx()).firezoneName, "named");
  assert.match(resolveConfig({ token: "t" }, ctx({ hostname: null })).firezoneName, /^[0-9a-f-]{36}$/);
  assert.equal(resolveConfig({ token: "t", firezoneId: "" }, ctx()).firezoneId, undefined);
});

Deno.test("resolveConfig() accepts IPv6 health-check addresses and both metrics exporters", () => {
  const c = resolveConfig({
    token: "t",
    healthCheckAddr: "[::1]:9090",
    metrics: "otel-collector",
    otlpGrpcEndpoint: "collector:4317",
  }, ctx());
  assert.deepEqual(c.healthCheckAddr, { family: 6, ip: "::1", port: 9090 });
  assert.equal(c.metrics, "otel-collector");
  assert.equal(c.otlpGrpcEndpoint, "collector:4317");
});

Deno.test("parseDuration() understands humantime-style durations", () => {
  assert.equal(parseDuration("15m"), 900_000);
  assert.equal(parseDuration("24h"), 86_400_000);
  assert.equal(parseDuration("1h 30m"), 5_400_000);
  assert.equal(parseDuration("90s"), 90_000);
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("2days"), 172_800_000);
  for (const bad of ["", "15", "m", "15 parsecs", "-1m", "1.5h"]) {
    assert.throws(() => parseDuration(bad), bad);
  }
});
