/**
 * `main.ts` as a subprocess against the stub portal: start-up, health endpoints, fatal portal errors
 * with exit code 1, signals with exit code 0, environment variables.
 */
import assert from "node:assert/strict";
import { canUseNetns, NETNS_SKIP_REASON, type TestNetns, withNetns } from "../_helpers/netns.ts";
import { StubPortal } from "../_helpers/stub_portal.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const INIT_FIXTURE = `${ROOT}tests/fixtures/portal/derived/ingress_init_1.json`;
const BUSY_PORT = 18181;
const BUSY_PORT_SCRIPT =
  `Deno.listen({ hostname: "127.0.0.1", port: ${BUSY_PORT} }); console.log("ready"); setInterval(() => {}, 1000);`;

// deno-lint-ignore no-console
if (!canUseNetns) console.log(`portal_main_test: main.ts tests skipped: ${NETNS_SKIP_REASON}`);

Deno.test({
  name:
    "main.ts against scripts/stub_portal.ts: connects, joins, init configures TUN, /healthz and /readyz, SIGTERM exits 0",
  ignore: !canUseNetns,
  fn: () =>
    withNetns(async (ns) => {
      const stub = spawn(["run", "-A", "scripts/stub_portal.ts", "--quiet", "--hostname", ns.hostIp], {});
      try {
        const first = await stub.readLine();
        const { listening: port } = JSON.parse(first) as { listening: number };
        const control = `http://${ns.hostIp}:${port}/_stub`;
        const healthPort = 18080;
        const gw = spawn(
          [
            "run",
            "-A",
            "main.ts",
            "secret-token-123",
            "--no-check",
            "-u",
            `ws://${ns.hostIp}:${port}`,
            "--health-check-addr",
            `${ns.nsIp}:${healthPort}`,
          ],
          { FIREZONE_ID: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", RUST_LOG: "info", NO_COLOR: "1" },
          ns.exec,
        );
        try {
          const state = await poll(async () => {
            const s = await (await fetch(`${control}/state`)).json();
            return s.connections[0]?.joined ? s : null;
          }, "join");
          const upgrade = state.upgrades[0];
          assert.equal(upgrade.path, "/gateway/websocket");
          const params = new Map(upgrade.params as [string, string][]);
          assert.deepEqual([...params.keys()], ["token", "external_id", "name", "public_key"]);
          assert.equal(params.get("token"), "secret-token-123");
          assert.equal(
            params.get("external_id"),
            await sha256Hex("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
            "UUID ids are hashed",
          );
          assert.match(params.get("public_key")!, /^[A-Za-z0-9+/]{43}=$/);
          assert.match(
            new Map(upgrade.headers as [string, string][]).get("user-agent")!,
            /^\S+\/\S+ connlib\/1\.4\.16 \(/,
          );
          assert.equal(state.connections[0].received[0].event, "phx_join");

          const health = await fetch(`http://${ns.nsIp}:${healthPort}/healthz`);
          assert.equal(health.status, 200);
          assert.equal(await health.text(), "");
          const before = await fetch(`http://${ns.nsIp}:${healthPort}/readyz`);
          assert.equal(before.status, 503);
          assert.match((await before.json()).reason, /TUN device not configured yet/);

          const init = JSON.parse(await Deno.readTextFile(INIT_FIXTURE));
          const pushed = await fetch(`${control}/push`, { method: "POST", body: JSON.stringify(init) });
          assert.equal(pushed.status, 204);
          await poll(async () => {
            const r = await fetch(`http://${ns.nsIp}:${healthPort}/readyz`);
            const body = await r.json();
            return r.status === 200 && body.ready ? true : null;
          }, "readyz 200 after init");

          // Operators' JSON endpoints: data-path counters (posted by the worker once a second) and the
          // main thread's timer lateness.
          const metrics = await poll(async () => {
            const m = await (await fetch(`http://${ns.nsIp}:${healthPort}/metrics`)).json();
            return m?.loop ? m : null;
          }, "/metrics with data-path counters");
          assert.equal(typeof metrics.loop.Wakeups, "number");
          const lag = await (await fetch(`http://${ns.nsIp}:${healthPort}/metrics/loop-lag`)).json();
          assert.ok(lag.samples > 0 && lag.p99_ms >= 0, JSON.stringify(lag));

          // §4.9: addresses, MTU, TX queue length, policy rules and routes of the init.
          const link = ns.ip("-d", "link", "show", "tun-firezone");
          assert.match(link, /mtu 1280 /);
          assert.match(link, /qlen 10000/);
          const addrs = ns.ip("addr", "show", "tun-firezone");
          assert.match(addrs, /inet 100\.115\.164\.78\/32 /);
          assert.match(addrs, /inet6 fd00:2021:1111::2c:f6ab\/128 /);
          assert.match(ns.ip("-4", "rule"), /not from all fwmark 0xfd002021 lookup 539098368/);
          assert.match(ns.ip("-6", "rule"), /not from all fwmark 0xfd002021 lookup 539098368/);
          assert.match(
            ns.ip("-4", "route", "show", "table", "539098368"),
            /100\.64\.0\.0\/11 dev tun-firezone/,
          );
          assert.match(
            ns.ip("-6", "route", "show", "table", "539098368"),
            /fd00:2021:1111::\/107 dev tun-firezone/,
          );

          gw.kill("SIGTERM");
          const { code, stdout } = await gw.finish(10_000);
          assert.equal(code, 0, stdout);
          assert.match(stdout, /INFO fz_gateway::gateway_app: Connected to portal/);
          assert.match(stdout, /INFO fz_gateway::portal: Joined gateway room on portal/);
          assert.match(stdout, /Received init from portal ipv4=100\.115\.164\.78/);
          assert.match(stdout, /Received SIGTERM, goodbye!/);
          assert.ok(!stdout.includes("secret-token-123"), "the token never reaches the logs");
        } finally {
          gw.kill();
          await gw.finish(5_000).catch(() => {});
        }
      } finally {
        stub.kill("SIGTERM");
        await stub.finish(5_000).catch(() => {});
      }
    }),
});

Deno.test({
  name: "main.ts exits 1 with an operator message for fatal portal errors",
  ignore: !canUseNetns,
  fn: () => withNetns(fatalErrors),
});

async function fatalErrors(ns: TestNetns): Promise<void> {
  const cases: [string, (s: StubPortal) => void, RegExp][] = [
    [
      "401",
      (s) => s.refuseNext(401, "Invalid token"),
      /The portal rejected the token \(HTTP 401 - Invalid token\)\. Check FIREZONE_TOKEN/,
    ],
    ["403", (s) => s.refuseNext(403, "Forbidden"), /refused this gateway \(HTTP 403 - Forbidden\)/],
    [
      "422",
      (s) => s.refuseNext(422, "Invalid or missing connection parameters"),
      /rejected the connection parameters \(HTTP 422/,
    ],
    [
      "join error",
      (s) => s.joinReply = { error: "disabled" },
      /refused to let this gateway join the "gateway" channel \(reason: disabled\)/,
    ],
    [
      "token_expired",
      (s) => s.onJoin = (c) => c.push("disconnect", { reason: "token_expired" }),
      /token expired\. Create a new token/,
    ],
  ];
  for (const [name, arrange, message] of cases) {
    const stub = StubPortal.start({ hostname: ns.hostIp });
    try {
      arrange(stub);
      const gw = spawn(
        [
          "run",
          "-A",
          "main.ts",
          "--no-check",
          "-u",
          stub.url,
          "--health-check-addr",
          `127.0.0.1:${freePort()}`,
        ],
        { FIREZONE_TOKEN: "tkn", FIREZONE_ID: "id", RUST_LOG: "warn", NO_COLOR: "1" },
        ns.exec,
      );
      const { code, stdout } = await gw.finish(10_000);
      assert.equal(code, 1, `${name}: ${stdout}`);
      assert.match(
        stdout,
        new RegExp(`ERROR fz_gateway::gateway_app: Failed to start Gateway: .*${message.source}`),
        name,
      );
      assert.equal(stub.upgrades.length, 1, `${name}: no retry`);
    } finally {
      await stub.stop();
    }
  }
}

Deno.test({
  name: "main.ts takes its configuration from the environment, logs JSON, and exits 0 on SIGTERM and SIGINT",
  ignore: !canUseNetns,
  fn: () => withNetns(fromEnvironment),
});

async function fromEnvironment(ns: TestNetns): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "fz_portal_main_" });
  await Deno.writeTextFile(`${dir}/token`, "file-token\n");
  // A busy health port inside the namespace: the gateway must only warn about it.
  await Deno.writeTextFile(`${dir}/busy.ts`, BUSY_PORT_SCRIPT);
  const busy = spawn(["run", "-A", `${dir}/busy.ts`], {}, ns.exec);
  assert.equal(
    await busy.readLine().catch(async (e) => {
      busy.kill("SIGKILL");
      throw new Error(`${e.message}: ${JSON.stringify(await busy.finish(2_000))}`);
    }),
    "ready",
  );
  try {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      const stub = StubPortal.start({ hostname: ns.hostIp });
      try {
        const gw = spawn(["run", "-A", "main.ts", "--no-check"], {
          FIREZONE_TOKEN: `${dir}/token`,
          FIREZONE_API_URL: stub.url,
          FIREZONE_NAME: "env name",
          FIREZONE_ID: "plain-id",
          FIREZONE_NO_TELEMETRY: "true",
          FIREZONE_LOG_FORMAT: "json",
          HEALTH_CHECK_ADDR: `127.0.0.1:${BUSY_PORT}`,
          FZ_LOG: "info",
          RUST_LOG: "off",
        }, ns.exec);
        await stub.waitFor(() => stub.last?.joined, 10_000, "join");
        const params = new Map(stub.upgrades[0]!.params);
        assert.equal(params.get("token"), "file-token");
        assert.equal(params.get("name"), "env name");
        assert.equal(params.get("external_id"), "plain-id");
        gw.kill(signal);
        const { code, stdout } = await gw.finish(8_000);
        assert.equal(code, 0, stdout);
        const lines = stdout.trim().split("\n").map((l) => JSON.parse(l));
        const messages = lines.map((l) => l.fields.message as string);
        assert.ok(
          messages.includes(
            signal === "SIGTERM" ? "Received SIGTERM, goodbye!" : "Received CTRL+C, goodbye!",
          ),
        );
        const warn = lines.find((l) => l.fields.message === "Failed to start health check server");
        assert.ok(warn && warn.level === "WARN", "a busy health port is a WARN, not fatal");
        await stub.waitFor(() => stub.last!.closeCode !== null, 2_000, "close");
      } finally {
        await stub.stop();
      }
    }
  } finally {
    busy.kill("SIGKILL");
    await busy.finish(5_000).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("main.ts exits 2 with one line for a bad environment value", async () => {
  const gw = spawn(["run", "-A", "main.ts", "tok"], { FIREZONE_NO_TELEMETRY: "1" });
  const { code, stdout, stderr } = await gw.finish(10_000);
  assert.equal(code, 2);
  assert.equal(stdout, "");
  assert.equal(
    stderr,
    'error: invalid value "1" for --no-telemetry (env FIREZONE_NO_TELEMETRY): expected true or false\n',
  );
});

// ---------------------------------------------------------------------------------------------

interface Spawned {
  readLine(): Promise<string>;
  kill(signal?: Deno.Signal): void;
  finish(timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }>;
}

function spawn(
  args: string[],
  env: Record<string, string>,
  prefix: readonly string[] = [],
): Spawned {
  const command = prefix.length > 0 ? prefix[0]! : Deno.execPath();
  const fullArgs = prefix.length > 0 ? [...prefix.slice(1), Deno.execPath(), ...args] : args;
  const child = new Deno.Command(command, {
    args: fullArgs,
    cwd: ROOT,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      ...env,
      NO_COLOR: env.NO_COLOR ?? "1",
    },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const decoder = new TextDecoder();
  let out = "";
  let err = "";
  const reading = (async () => {
    for await (const chunk of child.stdout) out += decoder.decode(chunk, { stream: true });
  })();
  const readingErr = (async () => {
    for await (const chunk of child.stderr) err += decoder.decode(chunk, { stream: true });
  })();
  let status: Promise<Deno.CommandStatus> | null = null;
  const statusOnce = () => status ??= child.status;
  return {
    async readLine() {
      await poll(() => Promise.resolve(out.includes("\n") ? true : null), "first line");
      return out.slice(0, out.indexOf("\n"));
    },
    kill(signal: Deno.Signal = "SIGKILL") {
      try {
        child.kill(signal);
      } catch { /* already exited */ }
    },
    async finish(timeoutMs: number) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) =>
        timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch { /* gone */ }
          reject(new Error(`process did not exit within ${timeoutMs} ms; stdout: ${out}; stderr: ${err}`));
        }, timeoutMs)
      );
      try {
        const s = await Promise.race([statusOnce(), timeout]);
        await reading;
        await readingErr;
        return { code: s.code, stdout: out, stderr: err };
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

async function poll<T>(probe: () => Promise<T | null>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await probe();
      if (v !== null) return v;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
