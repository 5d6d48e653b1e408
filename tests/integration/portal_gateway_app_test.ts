import assert from "node:assert/strict";
import { type Config, resolveConfig } from "../../src/config.ts";
import { GatewayApp } from "../../src/io/gateway_app.ts";
import { SeededRng } from "../../src/rng.ts";
import { configureLogging, Level, type LogRecord } from "../../src/log.ts";
import type { TunnelFactory } from "../../src/portal/tunnel_control.ts";
import { RecordingTunnel } from "../_helpers/fake_tunnel.ts";
import { StubPortal } from "../_helpers/stub_portal.ts";

const FIXTURES = new URL("../fixtures/portal/", import.meta.url);

Deno.test("GatewayApp: /readyz is 503 until joined and TUN configured by init, then 200", async () => {
  await withApp({}, async ({ stub, tunnel, readyz, healthz }) => {
    await stub.waitFor(() => stub.last?.joined, 3_000, "join");
    assert.equal((await healthz()).status, 200);
    const before = await readyz();
    assert.equal(before.status, 503);
    assert.match(before.body.reason, /TUN device not configured yet/);

    stub.push("init", frame("derived/ingress_init_1.json").payload);
    await stub.waitFor(() => tunnel.tunUp, 3_000, "configureTun");
    assert.deepEqual(tunnel.methods(), ["init", "configureTun"]);
    assert.deepEqual(tunnel.calls[1]!.arg, { ipv4: "100.115.164.78", ipv6: "fd00:2021:1111::2c:f6ab" });
    const after = await readyz();
    assert.equal(after.status, 200);
    assert.deepEqual(after.body, { ready: true });
    assert.equal(tunnel.options!.privateKey.length, 32);
    assert.deepEqual(tunnel.options!.nameservers, ["192.0.2.53"]);
    const pk = new URLSearchParams(stub.upgrades[0]!.rawQuery).get("public_key")!;
    assert.equal(pk.length, 44);
  });
});

Deno.test("GatewayApp answers authorize_flow with flow_authorized carrying the same ref", async () => {
  await withApp({}, async ({ stub, tunnel }) => {
    await stub.waitFor(() => stub.last?.joined, 3_000, "join");
    const flow = frame("ingress_authorize_flow_1.json");
    stub.push("authorize_flow", flow.payload);
    const sent = await stub.waitFor(
      () => stub.last!.received.find((f) => f.event === "flow_authorized"),
      3_000,
      "reply",
    );
    assert.deepEqual(sent.payload, { ref: (flow.payload as { ref: string }).ref });
    assert.equal(sent.topic, "gateway");
    assert.deepEqual(tunnel.methods(), ["authorizeFlow"]);
  });
});

Deno.test("GatewayApp reconnects without replying when authorize_flow finds no relays", async () => {
  await withApp({}, async ({ stub, tunnel }) => {
    tunnel.nextAuthorizeFlow = "no_relays";
    await stub.waitFor(() => stub.last?.joined, 3_000, "join");
    stub.push("authorize_flow", frame("ingress_authorize_flow_1.json").payload);
    await stub.waitFor(
      () => stub.connections.length === 2 && stub.connections[1]!.joined,
      3_000,
      "reconnect",
    );
    assert.ok(!stub.allReceived().some((f) => f.event === "flow_authorized"));
  });
});

Deno.test("GatewayApp answers request_connection with connection_ready and forwards the other events", async () => {
  await withApp({}, async ({ stub, tunnel }) => {
    await stub.waitFor(() => stub.last?.joined, 3_000, "join");
    const req = frame("ingress_request_connection_1.json");
    stub.push("request_connection", req.payload);
    const ready = await stub.waitFor(
      () => stub.last!.received.find((f) => f.event === "connection_ready"),
      3_000,
      "connection_ready",
    );
    assert.deepEqual(ready.payload, {
      ref: "78e1159d-9dc6-480d-b2ef-1fcec2cd5730",
      gateway_payload: {
        ConnectionAccepted: { ice_parameters: { username: "gwufrag", password: "gwpassword0123456789ab" } },
      },
    });
    for (
      const name of [
        "derived/ingress_allow_access_1.json",
        "derived/ingress_reject_access_1.json",
        "derived/ingress_ice_candidates_1.json",
        "ingress_invalidate_ice_candidates_1.json",
        "ingress_relays_presence_1.json",
        "ingress_resource_updated_1.json",
        "derived/ingress_access_authorization_expiry_updated_1.json",
      ]
    ) {
      const f = frame(name);
      stub.push(f.event, f.payload);
    }
    await stub.waitFor(() => tunnel.calls.length === 8, 3_000, "all calls");
    assert.deepEqual(tunnel.methods(), [
      "requestConnection",
      "allowAccess",
      "rejectAccess",
      "addIceCandidates",
      "removeIceCandidates",
      "updateRelays",
      "updateResource",
      "updateExpiry",
    ]);
  });
});

Deno.test("GatewayApp broadcasts the tunnel's ICE candidates, sorted by priority", async () => {
  await withApp({}, async ({ stub, tunnel }) => {
    await stub.waitFor(() => stub.last?.joined, 3_000, "join");
    tunnel.emit({
      type: "new_ice_candidates",
      clientId: "3abd725a-733b-4801-ac16-72f26cd98a24",
      candidates: [
        "candidate:b 1 udp 1694498559 203.0.113.7 52625 typ srflx raddr 0.0.0.0 rport 0",
        "candidate:a 1 udp 2130706175 10.0.0.5 52625 typ host",
      ],
    });
    tunnel.emit({
      type: "invalidated_ice_candidates",
      clientId: "3abd725a-733b-4801-ac16-72f26cd98a24",
      candidates: ["candidate:c 1 udp 37748479 198.51.100.9 61234 typ relay raddr 0.0.0.0 rport 0"],
    });
    await stub.waitFor(() => stub.last!.received.length >= 3, 3_000, "broadcasts");
    const [add, remove] = stub.last!.received.slice(1);
    assert.equal(add!.event, "broadcast_ice_candidates");
    assert.deepEqual(add!.payload, {
      client_ids: ["3abd725a-733b-4801-ac16-72f26cd98a24"],
      candidates: [
        "candidate:a 1 udp 2130706175 10.0.0.5 52625 typ host",
        "candidate:b 1 udp 1694498559 203.0.113.7 52625 typ srflx raddr 0.0.0.0 rport 0",
      ],
    });
    assert.equal(remove!.event, "broadcast_invalidated_ice_candidates");
  });
});

Deno.test("GatewayApp exits 1 when the TUN device cannot be configured", async () => {
  await withApp({}, async ({ stub, tunnel, exit }) => {
    tunnel.configureTunError = new Error("RTNETLINK answers: Operation not permitted");
    await stub.waitFor(() => stub.last?.joined, 3_000, "join");
    stub.push("init", frame("ingress_init_1.json").payload);
    assert.equal(await exit, 1);
    assert.ok(tunnel.methods().includes("shutdown"), "goodbye on fatal errors too");
  });
});

Deno.test("GatewayApp exits 1 with the reason when the data plane cannot be created", async () => {
  const records: LogRecord[] = [];
  configureLogging({ sink: (r) => records.push(r), filter: () => Level.Info });
  try {
    await withApp({
      factory: () => Promise.reject(new Error("cannot open /dev/net/tun: Operation not permitted (EPERM)")),
    }, async ({ stub, exit }) => {
      assert.equal(await exit, 1);
      assert.equal(stub.upgrades.length, 0, "no portal connection without a data plane");
    });
  } finally {
    configureLogging({ sink: () => {}, filter: () => Level.Info });
  }
  const fatal = records.find((r) => r.level === Level.Error);
  assert.match(
    fatal?.message ?? "",
    /Failed to start Gateway: Failed to create tunnel: cannot open \/dev\/net\/tun/,
  );
});

Deno.test("GatewayApp exits 1 on a fatal portal error (401) with the operator message", async () => {
  const records: LogRecord[] = [];
  configureLogging({ sink: (r) => records.push(r), filter: () => Level.Info });
  try {
    await withApp({ refuse: 401 }, async ({ exit, tunnel }) => {
      assert.equal(await exit, 1);
      assert.deepEqual(tunnel.methods(), ["shutdown"]);
    });
  } finally {
    configureLogging({ sink: () => {}, filter: () => Level.Info });
  }
  const fatal = records.find((r) => r.level === Level.Error);
  assert.ok(fatal, "an ERROR line tells the operator");
  assert.match(
    fatal.message,
    /^Failed to start Gateway: The portal rejected the token \(HTTP 401 - Invalid token\)\. Check FIREZONE_TOKEN/,
  );
  assert.ok(!JSON.stringify(records).includes("test-token"), "the token is never logged");
});

Deno.test("GatewayApp.shutdown() says goodbye, closes the portal socket and exits 0", async () => {
  await withApp({}, async ({ stub, tunnel, app, exit }) => {
    await stub.waitFor(() => stub.last?.joined, 3_000, "join");
    await app.shutdown("SIGTERM");
    assert.equal(await exit, 0);
    assert.deepEqual(tunnel.methods(), ["shutdown"]);
    await stub.waitFor(() => stub.last!.closeCode !== null, 2_000, "socket closed");
    assert.equal(stub.last!.closeCode, 1000);
  });
});

// ---------------------------------------------------------------------------------------------

function frame(name: string): { event: string; payload: unknown } {
  return JSON.parse(Deno.readTextFileSync(new URL(name, FIXTURES)));
}

interface Harness {
  stub: StubPortal;
  tunnel: RecordingTunnel;
  app: GatewayApp;
  exit: Promise<number>;
  readyz(): Promise<{ status: number; body: { ready: boolean; reason: string } }>;
  healthz(): Promise<Response>;
}

async function withApp(
  opts: { refuse?: number; factory?: TunnelFactory },
  f: (h: Harness) => Promise<void>,
): Promise<void> {
  const stub = StubPortal.start();
  if (opts.refuse) stub.refuseNext(opts.refuse, "Invalid token");
  const dir = await Deno.makeTempDir({ prefix: "fz_portal_app_" });
  await Deno.writeTextFile(`${dir}/resolv.conf`, "nameserver 192.0.2.53\n");
  const tunnel = new RecordingTunnel();
  const config: Config = resolveConfig(
    { token: "test-token", apiUrl: stub.url, healthCheckAddr: "127.0.0.1:0", firezoneName: "gw" },
    { env: {}, sources: {}, hostname: "h", rng: new SeededRng(1), readTokenFile: () => null },
  );
  const app = new GatewayApp({
    config,
    createTunnel: opts.factory ?? tunnel.factory,
    rng: new SeededRng(2),
    osInfo: { osType: "Debian", osVersion: "12", arch: "x86_64", kernelRelease: "6.1.0" },
    version: "0.0.0-test",
    stateDir: dir,
    resolvConfPath: `${dir}/resolv.conf`,
  });
  const exit = app.run();
  const base = async () => {
    await stub.waitFor(() => app.healthPort, 3_000, "health server");
    return `http://127.0.0.1:${app.healthPort}`;
  };
  const h: Harness = {
    stub,
    tunnel,
    app,
    exit,
    readyz: async () => {
      const res = await fetch(`${await base()}/readyz`);
      return { status: res.status, body: await res.json() };
    },
    healthz: async () => {
      const res = await fetch(`${await base()}/healthz`);
      await res.body?.cancel();
      return res;
    },
  };
  try {
    await f(h);
  } finally {
    await app.shutdown("SIGTERM");
    await exit;
    await stub.stop();
    await Deno.remove(dir, { recursive: true });
  }
}
