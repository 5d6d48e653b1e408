import assert from "node:assert/strict";
import { PortalSocket } from "../../src/io/portal_socket.ts";
import { Secret } from "../../src/log.ts";
import { LoginUrl, parseApiUrl } from "../../src/portal/login_url.ts";
import { encodeBase64, type IngressMessage, parseIngressMessage } from "../../src/portal/messages.ts";
import { type ChannelEvent, PhoenixChannel } from "../../src/portal/phoenix_channel.ts";
import { formatUserAgent } from "../../src/portal/user_agent.ts";
import { SeededRng } from "../../src/rng.ts";
import { StubPortal } from "../_helpers/stub_portal.ts";

const USER_AGENT = formatUserAgent({
  osType: "Ubuntu",
  osVersion: "22.04",
  arch: "x86_64",
  kernelRelease: "5.15.0-105-generic",
});
const INIT = Deno.readTextFileSync(
  new URL("../fixtures/portal/derived/ingress_init_1.json", import.meta.url),
);

Deno.test("PortalSocket sends the exact path, query, Host and User-Agent, and joins first", async () => {
  await withPortal(async (stub, run) => {
    const publicKey = new Uint8Array(32).map((_, i) => i * 7 + 250);
    const { events } = run({ publicKey, token: "tok+en/=", name: "gw one", externalId: "ext" });
    await waitForEvent(events, "joined");
    const up = stub.upgrades[0]!;
    assert.equal(up.path, "/gateway/websocket");
    const pk = encodeBase64(publicKey);
    assert.equal(pk.length, 44);
    assert.equal(
      up.rawQuery,
      `token=tok%2Ben%2F%3D&external_id=ext&name=gw+one&public_key=${
        pk.replaceAll("+", "%2B").replaceAll("/", "%2F").replaceAll("=", "%3D")
      }`,
    );
    assert.deepEqual(up.params.map(([k]) => k), ["token", "external_id", "name", "public_key"]);
    assert.equal(up.params[3]![1], pk);
    const headers = new Map(up.headers);
    assert.equal(
      headers.get("user-agent"),
      USER_AGENT,
      "exactly our User-Agent, no Deno/x.y default in front",
    );
    assert.equal(headers.get("host"), "127.0.0.1", "Host without port, as upstream");
    assert.equal(headers.get("sec-websocket-version"), "13");
    assert.equal(headers.get("origin"), undefined);
    assert.deepEqual(stub.last!.received.map((f) => f.text), [
      '{"topic":"gateway","event":"phx_join","payload":null,"ref":0}',
    ]);
  });
});

Deno.test("Deno's own WebSocket puts its User-Agent in front of ours (why fz-gateway has its own client)", async () => {
  const stub = StubPortal.start();
  try {
    const ws = new WebSocket(`${stub.url}/gateway/websocket?token=t`, {
      headers: { "User-Agent": USER_AGENT },
    });
    await stub.waitFor(() => stub.connections[0]?.open, 3_000, "open");
    ws.close();
    await new Promise((r) => ws.onclose = r);
    const ua = new Map(stub.upgrades[0]!.headers).get("user-agent")!;
    // Two header lines (`Deno/x.y.z` first); a server reading the first one finds no `connlib/` token.
    assert.equal(ua, `Deno/${Deno.version.deno}, ${USER_AGENT}`);
  } finally {
    await stub.stop();
  }
});

Deno.test("PortalSocket connects over wss (TLS via Deno.startTls) and verifies the certificate", async () => {
  const tlsDir = new URL("../fixtures/portal/tls/", import.meta.url);
  const tls = {
    cert: await Deno.readTextFile(new URL("server.pem", tlsDir)),
    key: await Deno.readTextFile(new URL("server.key", tlsDir)),
  };
  const ca = await Deno.readTextFile(new URL("ca.pem", tlsDir));
  await withPortal(async (stub, run) => {
    const { events } = run({ caCerts: [ca] });
    await waitForEvent(events, "joined");
    assert.equal(new Map(stub.upgrades[0]!.headers).get("user-agent"), USER_AGENT);
  }, { tls });
  await withPortal(async (_stub, run) => {
    const { events } = run();
    const fatal = await waitForEvent(events, "fatal");
    assert.ok(fatal.type === "fatal" && fatal.error.kind === "tls_certificate", JSON.stringify(fatal));
    assert.match(
      fatal.error.message,
      /TLS certificate was rejected \(invalid peer certificate: UnknownIssuer\)/,
    );
  }, { tls });
});

Deno.test("PortalSocket reports 401, 403 and 422 upgrade refusals as fatal errors", async () => {
  for (
    const [status, body, pattern] of [
      [401, "Invalid token", /rejected the token \(HTTP 401 - Invalid token\)/],
      [403, "Forbidden", /refused this gateway \(HTTP 403 - Forbidden\)/],
      [
        422,
        "Invalid or missing connection parameters: name",
        /connection parameters \(HTTP 422 - Invalid or missing/,
      ],
    ] as [number, string, RegExp][]
  ) {
    await withPortal(async (stub, run) => {
      stub.refuseNext(status, body);
      const { events } = run();
      const e = await waitForEvent(events, "fatal");
      assert.ok(e.type === "fatal");
      assert.equal(e.error.status, status);
      assert.match(e.error.message, pattern);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(stub.upgrades.length, 1, "no retry after a fatal refusal");
    });
  }
});

Deno.test("PortalSocket retries after 5xx and after the portal closes the socket", async () => {
  await withPortal(async (stub, run) => {
    stub.refuseNext(502, "Bad Gateway");
    const { events } = run();
    await waitForEvent(events, "joined");
    assert.deepEqual(stub.upgrades.map((u) => u.status), [502, 101]);
    const hiccup = events.find((e) => e.type === "hiccup");
    assert.ok(hiccup && hiccup.type === "hiccup" && /HTTP 502 - Bad Gateway/.test(hiccup.error));

    events.length = 0;
    stub.closeAll(1001);
    await waitForEvent(events, "joined");
    assert.equal(stub.connections.length, 2);
    assert.ok(events.some((e) => e.type === "hiccup" && e.backoffMs === 0));
    assert.equal(stub.last!.received[0]!.event, "phx_join", "the join is the first frame again");
  });
});

Deno.test("PortalSocket backs off after HTTP 429 and then connects", async () => {
  await withPortal(async (stub, run) => {
    stub.refuseNext(429, "Too many requests");
    const { events } = run();
    await waitForEvent(events, "joined", 5_000);
    const hiccup = events.find((e) => e.type === "hiccup");
    assert.ok(hiccup && hiccup.type === "hiccup" && hiccup.backoffMs > 0);
  });
});

Deno.test("PortalSocket skips a malformed frame and a binary frame and keeps the session", async () => {
  await withPortal(async (stub, run) => {
    const { events } = run();
    await waitForEvent(events, "joined");
    stub.sendRaw("{this is not json");
    stub.last!.sendBinary(new Uint8Array([1, 2, 3]));
    stub.sendRaw(INIT);
    const msg = await waitForEvent(events, "message");
    assert.ok(msg.type === "message" && msg.message.event === "init");
    assert.equal(stub.connections.length, 1);
    assert.ok(!events.some((e) => e.type === "hiccup"));
  });
});

Deno.test("PortalSocket fails on a rejected join and on token_expired", async () => {
  await withPortal(async (stub, run) => {
    stub.joinReply = { error: "invalid_version" };
    const { events } = run();
    const e = await waitForEvent(events, "fatal");
    assert.ok(
      e.type === "fatal" && e.error.kind === "login_failed" && /invalid_version/.test(e.error.message),
    );
  });
  await withPortal(async (stub, run) => {
    const { events } = run();
    await waitForEvent(events, "joined");
    stub.push("disconnect", { reason: "token_expired" });
    const e = await waitForEvent(events, "fatal");
    assert.ok(e.type === "fatal" && e.error.kind === "token_expired");
  });
});

Deno.test("PortalSocket sends queued messages after the join and closes with a close frame", async () => {
  await withPortal(async (stub, run) => {
    const { events, socket } = run();
    socket.send("gateway", { event: "flow_authorized", payload: { ref: "r1" } });
    await waitForEvent(events, "joined");
    await stub.waitFor(
      () => stub.last!.received.find((f) => f.event === "flow_authorized"),
      2_000,
      "flow_authorized",
    );
    assert.deepEqual(stub.last!.received.map((f) => f.event), ["phx_join", "flow_authorized"]);
    await socket.close();
    await stub.waitFor(() => stub.last!.closeCode !== null, 2_000, "close");
    assert.equal(stub.last!.closeCode, 1000);
  });
});

// ---------------------------------------------------------------------------------------------

interface RunOptions {
  caCerts?: string[];
  publicKey?: Uint8Array;
  token?: string;
  name?: string;
  externalId?: string;
}

type Run = (
  o?: RunOptions,
) => { events: ChannelEvent<IngressMessage>[]; socket: PortalSocket<IngressMessage> };

async function withPortal(
  f: (stub: StubPortal, run: Run) => Promise<void>,
  options: { tls?: { cert: string; key: string } } = {},
): Promise<void> {
  const stub = StubPortal.start(options);
  const sockets: PortalSocket<IngressMessage>[] = [];
  const run: Run = (o = {}) => {
    const api = parseApiUrl(stub.url);
    const login = new LoginUrl(api, {
      token: new Secret(o.token ?? "token"),
      externalId: o.externalId ?? "ext",
      name: o.name ?? "gw",
    });
    const pk = encodeBase64(o.publicKey ?? new Uint8Array(32));
    const events: ChannelEvent<IngressMessage>[] = [];
    const socket = new PortalSocket<IngressMessage>({
      channel: new PhoenixChannel({
        topic: "gateway",
        parseMessage: parseIngressMessage,
        rng: new SeededRng(1),
      }),
      connectOptions: () => ({
        hostname: api.hostname,
        port: api.port,
        tls: api.scheme === "wss",
        hostHeader: api.hostHeader,
        target: login.requestTarget(pk),
        userAgent: USER_AGENT,
        ...(o.caCerts ? { caCerts: o.caCerts } : {}),
      }),
      onEvent: (e) => events.push(e),
    });
    sockets.push(socket);
    socket.start();
    return { events, socket };
  };
  try {
    await f(stub, run);
  } finally {
    for (const s of sockets) s.abort();
    await stub.stop();
  }
}

async function waitForEvent(
  events: ChannelEvent<IngressMessage>[],
  type: ChannelEvent<IngressMessage>["type"],
  timeoutMs = 3_000,
): Promise<ChannelEvent<IngressMessage>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const e = events.find((x) => x.type === type);
    if (e) return e;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${type}; got ${JSON.stringify(events)}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}
