import assert from "node:assert/strict";
import { type CliRuntime, main, VERSION_TEXT } from "../../../main.ts";
import type { Config } from "../../../src/config.ts";
import type { StandaloneOptions } from "../../../src/io/standalone_app.ts";
import { SeededRng } from "../../../src/rng.ts";
import denoJson from "../../../deno.json" with { type: "json" };

function runtime(env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const configs: Config[] = [];
  const standalone: StandaloneOptions[] = [];
  const rt: CliRuntime = {
    portal: (config) => {
      configs.push(config);
      return Promise.resolve(0);
    },
    standalone: (options) => {
      standalone.push(options);
      return Promise.resolve(0);
    },
    context: { env, hostname: "host", rng: new SeededRng(1), readTokenFile: () => null },
    writeOut: (t) => out.push(t),
    writeErr: (t) => err.push(t),
  };
  return { rt, out, err, configs, standalone };
}

Deno.test("main --help lists every flag and environment variable and exits 0", async () => {
  const { rt, out } = runtime();
  assert.equal(await main(["--help"], rt), 0);
  const help = out.join("");
  for (
    const text of [
      "[TOKEN]",
      "FIREZONE_TOKEN",
      "-u, --api-url <URL>",
      "FIREZONE_API_URL",
      "-n, --firezone-name <NAME>",
      "FIREZONE_NAME",
      "-i, --firezone-id <ID>",
      "FIREZONE_ID",
      "--no-telemetry",
      "FIREZONE_NO_TELEMETRY",
      "--no-check",
      "--health-check-addr <IP:PORT>",
      "HEALTH_CHECK_ADDR",
      "--log-format <FORMAT>",
      "FIREZONE_LOG_FORMAT",
      "--max-partition-time <DURATION>",
      "FIREZONE_MAX_PARTITION_TIME",
      "--metrics <EXPORTER>",
      "FIREZONE_METRICS",
      "--otlp-grpc-endpoint <HOST:PORT>",
      "OTLP_GRPC_ENDPOINT",
      "--validate-checksums",
      "FIREZONE_VALIDATE_CHECKSUMS",
      "RUST_LOG",
      "FZ_LOG",
      "NO_COLOR",
      "FORCE_COLOR",
      "-V, --version",
      "Exit codes",
    ]
  ) {
    assert.ok(help.replace(/\s+/g, " ").includes(text), `help mentions ${text}`);
  }
});

Deno.test("main --version prints our version with the upstream compatibility", async () => {
  const { rt, out } = runtime();
  assert.equal(await main(["--version"], rt), 0);
  assert.equal(out.join(""), `${VERSION_TEXT}\n`);
  assert.equal(
    VERSION_TEXT,
    `fz-gateway ${denoJson.version} (firezone-gateway 1.4.16 compatible, connlib 1.4.16)`,
  );
});

Deno.test("main exits 2 with one error line for usage errors", async () => {
  for (
    const [argv, message] of [
      [[], /token is missing/],
      [["t", "--bogus"], /unknown option '--bogus'/],
      [["t", "--log-format", "xml"], /invalid value "xml" for --log-format \(env FIREZONE_LOG_FORMAT\)/],
      [["t", "-u", "gopher://x"], /invalid value "gopher:\/\/x" for -u\/--api-url/],
      [["t", "u"], /too many arguments/],
      [["t", "--api-url"], /argument missing/],
    ] as [string[], RegExp][]
  ) {
    const { rt, err, configs } = runtime();
    assert.equal(await main(argv, rt), 2, argv.join(" "));
    assert.match(err.join(""), message);
    assert.equal(
      err.join("").trim().split("\n").length,
      1,
      `one line for ${argv.join(" ")}: ${err.join("")}`,
    );
    assert.equal(configs.length, 0);
  }
});

Deno.test("main hands a validated configuration to portal mode and returns its exit code", async () => {
  const { rt, configs } = runtime();
  const custom: CliRuntime = { ...rt, portal: (c) => Promise.resolve(configs.push(c) && 7) };
  assert.equal(
    await main([
      "tok",
      "-u",
      "https://portal.example/api/",
      "-n",
      "gw1",
      "-i",
      "id1",
      "--no-check",
      "--no-telemetry",
    ], custom),
    7,
  );
  const c = configs[0]!;
  assert.equal(c.token.expose(), "tok");
  assert.equal(c.apiUrl.path, "/api/gateway/websocket");
  assert.equal(c.firezoneName, "gw1");
  assert.equal(c.firezoneId, "id1");
  assert.equal(c.checkPermissions, false);
  assert.equal(c.noTelemetry, true);
});

Deno.test("main standalone --config parses its options and defaults to INFO logs", async () => {
  const { rt, standalone, configs } = runtime();
  assert.equal(
    await main(["standalone", "--config", "/etc/fz/wg0.conf", "--health-check-addr", "127.0.0.1:9"], rt),
    0,
  );
  assert.equal(configs.length, 0);
  assert.deepEqual(standalone, [{
    configPath: "/etc/fz/wg0.conf",
    healthCheckAddr: "127.0.0.1:9",
    logFormat: "human",
    offload: true,
    logFilter: { FZ_LOG: "info" },
  }]);
});

Deno.test("main standalone without --config is a usage error (exit 2)", async () => {
  const { rt, err } = runtime({ RUST_LOG: "debug" });
  assert.equal(await main(["standalone"], rt), 2);
  assert.match(err.join(""), /--config/);
});

Deno.test("main standalone --no-offload and RUST_LOG are passed on", async () => {
  const { rt, standalone } = runtime({ RUST_LOG: "debug" });
  assert.equal(await main(["standalone", "-c", "x.conf", "--no-offload", "--log-format", "json"], rt), 0);
  assert.equal(standalone[0]!.offload, false);
  assert.equal(standalone[0]!.logFormat, "json");
  assert.deepEqual(standalone[0]!.logFilter, { RUST_LOG: "debug" });
});
