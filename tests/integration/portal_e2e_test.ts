/**
 * End to end over real sockets (issue #6): a client reaches a resource through the real gateway
 * process (`main.ts` in portal mode against the stub portal), with a real TURN relay in between for
 * candidates (and, in the relayed case, for the data).
 *
 * Namespaces (root only; prefix `fze2e`):
 *
 * ```
 *  test process (root ns): stub portal on 10.213.k.1 ──veth── gateway ns (10.213.k.2)
 *                                                            │ eth0 10.99.1.30 ──┐
 *  relay ns   eth0 10.99.1.20 (TURN :3478) ───────────────────────────────────────┤ br0 in the "net" ns
 *  client ns  eth0 10.99.1.10 (client driver: P2pNode "client" role) ─────────────┘
 *  gateway ns eth1 10.99.2.1, fd00:99:2::1 ──veth── resource ns eth0 10.99.2.2, fd00:99:2::2
 *                                          (ICMP echo, UDP echo :7777, TCP :8080, DNS :53)
 * ```
 *
 * The gateway namespace runs `scripts/setup-host.sh` (forwarding, masquerade out of eth1), has its
 * own `/etc/hosts` and `/etc/resolv.conf` (`/etc/netns/<ns>/`, bind-mounted by `ip netns exec`), and
 * runs `main.ts`. The test plays the portal: `init`, `authorize_flow`, and it relays ICE candidates
 * between the gateway (`broadcast_ice_candidates` → driver) and the driver (→ `ice_candidates`).
 */

import assert from "node:assert/strict";
import { x25519 } from "@noble/curves/ed25519.js";
import { buildQuery, DnsRcode, DnsType, isResponse, messageId, responseCode } from "../../src/dns/message.ts";
import { buildAssignedIpsPacket, decodeP2pControl } from "../../src/gateway/p2p_control.ts";
import { encodeBase64 } from "../../src/portal/messages.ts";
import { buildIcmpEchoPacket, ICMPV6_ECHO_REPLY } from "../../src/wire/icmp.ts";
import { formatIp, parseIp } from "../../src/wire/ip_addr.ts";
import { IpPacketInfo, isP2pControl, L4Kind, parseIpPacket, ParseResult } from "../../src/wire/ip_packet.ts";
import { buildTcpPacket, TCP_FLAG_ACK, TCP_FLAG_SYN } from "../../src/wire/tcp.ts";
import { buildUdpPacket } from "../../src/wire/udp.ts";
import { canUseNetns, NETNS_SKIP_REASON, type TestNetns, withNetns } from "../_helpers/netns.ts";
import { StubPortal } from "../_helpers/stub_portal.ts";
import { Proc } from "./_e2e/proc.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const PREFIX = "fze2e";

const hasNft = (() => {
  try {
    return new Deno.Command("nft", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
})();
const skipReason = !canUseNetns ? NETNS_SKIP_REASON : !hasNft ? "needs nft (scripts/setup-host.sh)" : null;
// deno-lint-ignore no-console
if (skipReason !== null) console.log(`portal_e2e_test: skipped: ${skipReason}`);

// --- addresses (inside the test namespaces only) ------------------------------------------------

const CLIENT_IP = "10.99.1.10";
const RELAY_IP = "10.99.1.20";
const GATEWAY_IP = "10.99.1.30";
const GATEWAY_PRIVATE_IP = "10.99.2.1";
const RESOURCE_IP = "10.99.2.2";
const GATEWAY_PRIVATE_IP6 = "fd00:99:2::1";
const RESOURCE_IP6 = "fd00:99:2::2";
const UDP_ECHO_PORT = 7777;
const TCP_PORT = 8080;
/** What the resource host's DNS server answers for every A question. */
const DNS_ANSWER = "192.0.2.53";

const GATEWAY_TUN_V4 = "100.66.0.1";
const GATEWAY_TUN_V6 = "fd00:2021:1111::a:1";
const CLIENT_TUN_V4 = "100.66.0.5";
const CLIENT_TUN_V6 = "fd00:2021:1111::a:5";

const GATEWAY_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const CLIENT_ID = "3abd725a-733b-4801-ac16-72f26cd98a24";
const CIDR_RESOURCE_ID = "c7793628-8579-465b-83e3-1a5d4af4db3b";
const CIDR6_RESOURCE_ID = "40b725b2-5904-46fd-b739-756f7d1cbb88";
const DNS_RESOURCE_ID = "ed29c148-2acf-4ceb-8db5-d796c2671631";
const RELAY_ID = "0a133356-7a9e-4b9a-b413-0d95a5720fd8";
const RELAY_USER = "1737589989:ZQHcVGkdnfgGmcP1bXl2Q0aW3hYy9vT8l1Lq6yU2kQs";
const RELAY_PASSWORD = "ZWYiBeFHOJyYq0mcwAXjRpcuXIJJpzWlOXVdxwttrWg";
const DNS_NAME = "app.e2e.test";
const PROXY_V4 = ["100.96.0.1", "100.96.0.2", "100.96.0.3", "100.96.0.4"];
const PROXY_V6 = [
  "fd00:2021:1111:8000::",
  "fd00:2021:1111:8000::1",
  "fd00:2021:1111:8000::2",
  "fd00:2021:1111:8000::3",
];

// --- topology ---------------------------------------------------------------------------------

function ipCmd(args: string[]): string {
  const r = new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).outputSync();
  if (!r.success) throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(r.stderr).trim()}`);
  return new TextDecoder().decode(r.stdout);
}

function runIn(ns: string, argv: string[]): string {
  const r = new Deno.Command("ip", { args: ["netns", "exec", ns, ...argv], stdout: "piped", stderr: "piped" })
    .outputSync();
  const text = new TextDecoder();
  if (!r.success) throw new Error(`[${ns}] ${argv.join(" ")}: ${text.decode(r.stderr).trim()}`);
  return text.decode(r.stdout);
}

interface Topology {
  readonly gw: TestNetns;
  readonly net: string;
  readonly relay: string;
  readonly client: string;
  readonly resource: string;
  readonly tmp: string;
  cleanup(): Promise<void>;
}

let topologyCounter = 0;

/** Builds the namespaces around the gateway namespace `gw` (made by {@link withNetns}). */
async function buildTopology(gw: TestNetns): Promise<Topology> {
  const id = `${Deno.pid % 10000}${topologyCounter++}`;
  const net = `${PREFIX}${id}_net`;
  const relay = `${PREFIX}${id}_relay`;
  const client = `${PREFIX}${id}_client`;
  const resource = `${PREFIX}${id}_res`;
  const created: string[] = [];
  const tmp = await Deno.makeTempDir({ prefix: "fze2e_" });
  const etc = `/etc/netns/${gw.name}`;
  const cleanup = async () => {
    for (const ns of created.reverse()) {
      try {
        ipCmd(["netns", "del", ns]);
      } catch { /* already gone */ }
    }
    await Deno.remove(etc, { recursive: true }).catch(() => {});
    await Deno.remove("/etc/netns").catch(() => {}); // only when empty (and we made it)
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  };
  try {
    for (const ns of [net, relay, client, resource]) {
      ipCmd(["netns", "add", ns]);
      created.push(ns);
      ipCmd(["-n", ns, "link", "set", "lo", "up"]);
    }
    ipCmd(["-n", net, "link", "add", "br0", "type", "bridge"]);
    ipCmd(["-n", net, "link", "set", "br0", "up"]);
    const attach = (ns: string, port: string, ip: string) => {
      ipCmd(["-n", net, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns]);
      ipCmd(["-n", net, "link", "set", port, "master", "br0", "up"]);
      ipCmd(["-n", ns, "addr", "add", `${ip}/24`, "dev", "eth0"]);
      ipCmd(["-n", ns, "link", "set", "eth0", "up"]);
    };
    attach(gw.name, "p_gw", GATEWAY_IP);
    attach(relay, "p_relay", RELAY_IP);
    attach(client, "p_client", CLIENT_IP);
    // The resource sits behind the gateway on its own link.
    ipCmd(["-n", gw.name, "link", "add", "eth1", "type", "veth", "peer", "name", "eth0", "netns", resource]);
    ipCmd(["-n", gw.name, "addr", "add", `${GATEWAY_PRIVATE_IP}/24`, "dev", "eth1"]);
    ipCmd(["-n", gw.name, "addr", "add", `${GATEWAY_PRIVATE_IP6}/64`, "dev", "eth1", "nodad"]);
    ipCmd(["-n", gw.name, "link", "set", "eth1", "up"]);
    ipCmd(["-n", resource, "addr", "add", `${RESOURCE_IP}/24`, "dev", "eth0"]);
    ipCmd(["-n", resource, "addr", "add", `${RESOURCE_IP6}/64`, "dev", "eth0", "nodad"]);
    ipCmd(["-n", resource, "link", "set", "eth0", "up"]);

    // The gateway's resolver: the DNS resource name in /etc/hosts (both families, so it never needs
    // a DNS query), and the resource host as nameserver (for the DNS forwarder; nothing leaves the
    // test namespaces).
    await Deno.mkdir(etc, { recursive: true });
    await Deno.writeTextFile(
      `${etc}/hosts`,
      `127.0.0.1 localhost\n${RESOURCE_IP} ${DNS_NAME}\n${RESOURCE_IP6} ${DNS_NAME}\n`,
    );
    await Deno.writeTextFile(`${etc}/resolv.conf`, `nameserver ${RESOURCE_IP}\n`);

    // Forwarding and masquerade out of eth1 (spec §4.10), as an operator would set it up.
    runIn(gw.name, [
      "bash",
      `${ROOT}scripts/setup-host.sh`,
      "--egress",
      "eth1",
      "--state-file",
      `${tmp}/setup.state`,
    ]);
    return { gw, net, relay, client, resource, tmp, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

// --- packets ------------------------------------------------------------------------------------

function ip(text: string): Uint8Array {
  const b = parseIp(text);
  if (b === null) throw new Error(`bad ip ${text}`);
  return b;
}

/** The client's tunnel address of `dst`'s family. */
function clientSource(dst: string): string {
  return dst.includes(":") ? CLIENT_TUN_V6 : CLIENT_TUN_V4;
}

/** Returns `buf[0, n)`, failing the test when a builder refused the packet (n = 0). */
function built(buf: Uint8Array, n: number): Uint8Array {
  assert.ok(n > 0, "packet builder refused the packet");
  return buf.slice(0, n);
}

function icmpEcho(dst: string, id: number, seq: number): Uint8Array {
  const buf = new Uint8Array(1500);
  const n = buildIcmpEchoPacket(
    buf,
    0,
    ip(clientSource(dst)),
    ip(dst),
    false,
    id,
    seq,
    new TextEncoder().encode("e2e ping"),
  );
  return built(buf, n);
}

function udp(dst: string, sport: number, dport: number, payload: Uint8Array): Uint8Array {
  const buf = new Uint8Array(1500);
  const n = buildUdpPacket(buf, 0, ip(clientSource(dst)), ip(dst), sport, dport, payload);
  return built(buf, n);
}

function tcpSyn(dst: string, sport: number, dport: number): Uint8Array {
  const buf = new Uint8Array(1500);
  const n = buildTcpPacket(
    buf,
    0,
    ip(clientSource(dst)),
    ip(dst),
    sport,
    dport,
    1000,
    0,
    TCP_FLAG_SYN,
    64240,
    new Uint8Array(0),
  );
  return built(buf, n);
}

function fromB64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** A decrypted packet the driver reported, parsed. */
interface Received {
  readonly bytes: Uint8Array;
  readonly info: IpPacketInfo;
  readonly src: string;
  readonly dst: string;
  readonly at: number;
}

function parseReceived(line: string): Received | null {
  let event: { event?: string; data?: string; at?: number };
  try {
    event = JSON.parse(line);
  } catch {
    return null;
  }
  if (event.event !== "packet" || typeof event.data !== "string") return null;
  const bytes = fromB64(event.data);
  const info = new IpPacketInfo();
  if (parseIpPacket(bytes, 0, bytes.length, info) !== ParseResult.Ok) return null;
  const len = info.version === 4 ? 4 : 16;
  return {
    bytes,
    info,
    src: formatIp(bytes, info.srcOff, len),
    dst: formatIp(bytes, info.dstOff, len),
    at: event.at ?? 0,
  };
}

// --- portal-side derivations ------------------------------------------------------------------------

interface IcePair {
  readonly client: { readonly ufrag: string; readonly pwd: string };
  readonly gateway: { readonly ufrag: string; readonly pwd: string };
}

/**
 * ICE credentials as the portal derives them (spec §2.6 IceCredentials): `h` = lower-case unpadded
 * base32 of SHA-256("<client id>:<client key>:<gateway id>:<gateway key>"); client ufrag `h[0..=3]`,
 * pwd `h[4..=25]`, gateway ufrag `h[26..=29]`, pwd `h[30..=52]` (the 52-character `h` ends first).
 */
async function portalIceCredentials(
  clientId: string,
  clientKey: string,
  gatewayId: string,
  gatewayKey: string,
): Promise<IcePair> {
  const text = `${clientId}:${clientKey}:${gatewayId}:${gatewayKey}`;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  const h = base32LowerNoPad(digest);
  return {
    client: { ufrag: h.slice(0, 4), pwd: h.slice(4, 26) },
    gateway: { ufrag: h.slice(26, 30), pwd: h.slice(30, 53) },
  };
}

function base32LowerNoPad(bytes: Uint8Array): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  let out = "";
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += alphabet[(acc << (5 - bits)) & 31];
  return out;
}

// --- the scenario -------------------------------------------------------------------------------

interface Processes {
  stub?: StubPortal;
  relay?: Proc;
  resource?: Proc;
  gateway?: Proc;
  driver?: Proc;
}

function dumpAll(p: Processes): string {
  const parts = [p.gateway, p.driver, p.relay, p.resource].filter((x) => x !== undefined).map((x) =>
    x!.dump()
  );
  const frames = p.stub?.allReceived().map((f) => f.text).join("\n") ?? "";
  return `${parts.join("\n")}\n----- frames the stub portal received -----\n${frames}`;
}

/** Polls until `probe` returns a value. */
async function until<T>(probe: () => T | null | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== null && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The test's signalling ("portal") between gateway and driver. */
interface Signalling {
  /** Gateway candidates handed to the driver. */
  readonly toDriver: string[];
  /** Driver candidates pushed to the gateway. */
  readonly toGateway: string[];
  /** What stopped the forwarding early (a failed check, a closed portal socket). */
  error: Error | null;
  /** Stops forwarding; throws {@link error} if there was one. */
  stop(): Promise<void>;
}

/**
 * Forwards ICE candidates both ways until stopped: the gateway's `broadcast_ice_candidates` frames to
 * the driver, the driver's candidates to the gateway as `ice_candidates` (only after the gateway
 * answered `flow_authorized`, i.e. its connection exists).
 */
function startSignalling(stub: StubPortal, driver: Proc, clientId: string): Signalling {
  let running = true;
  const state: Signalling = {
    toDriver: [],
    toGateway: [],
    error: null,
    async stop() {
      running = false;
      await loop;
      if (state.error !== null) throw state.error;
    },
  };
  const loop = (async () => {
    let frameIdx = 0;
    let lineIdx = 0;
    while (running) {
      const frames = stub.allReceived();
      for (; frameIdx < frames.length; frameIdx++) {
        const f = frames[frameIdx]!;
        if (f.event !== "broadcast_ice_candidates") continue;
        const payload = f.payload as { client_ids: string[]; candidates: string[] };
        assert.deepEqual(payload.client_ids, [clientId], "broadcast_ice_candidates names the one client");
        state.toDriver.push(...payload.candidates);
        await driver.send({ cmd: "candidates", candidates: payload.candidates });
      }
      if (frames.some((f) => f.event === "flow_authorized")) {
        const fresh: string[] = [];
        for (; lineIdx < driver.lines.length; lineIdx++) {
          const line = driver.lines[lineIdx]!;
          if (!line.startsWith("{")) continue;
          const e = JSON.parse(line) as { event: string; candidate?: string };
          if (e.event === "candidate") fresh.push(e.candidate!);
        }
        if (fresh.length > 0) {
          state.toGateway.push(...fresh);
          stub.push("ice_candidates", { client_id: clientId, candidates: fresh });
        }
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })().catch((e) => {
    state.error = e instanceof Error ? e : new Error(String(e));
  });
  return state;
}

interface ScenarioOptions {
  /** Drop the client's direct traffic to the gateway: the connection must go through the relay. */
  readonly blockDirect: boolean;
  /** Also run the DNS-resource case. */
  readonly dnsResource: boolean;
}

async function scenario(gwNs: TestNetns, options: ScenarioOptions): Promise<void> {
  const topo = await buildTopology(gwNs);
  const p: Processes = {};
  let signalling: Signalling | undefined;
  try {
    p.relay = Proc.deno({
      label: "relay",
      args: ["run", "-A", "tests/integration/_e2e/turn_relay.ts", RELAY_IP, RELAY_USER, RELAY_PASSWORD],
      prefix: ["ip", "netns", "exec", topo.relay],
    });
    p.resource = Proc.deno({
      label: "resource",
      args: [
        "run",
        "-A",
        "tests/integration/_e2e/resource_server.ts",
        String(UDP_ECHO_PORT),
        String(TCP_PORT),
        RESOURCE_IP,
        DNS_ANSWER,
      ],
      prefix: ["ip", "netns", "exec", topo.resource],
    });
    // The resource host is the gateway's nameserver: up before the gateway probes it.
    await p.relay.waitFor((l) => l.includes('"ready"') || null, "relay ready");
    await p.resource.waitFor((l) => l.includes('"ready"') || null, "resource ready");
    const stub = p.stub = StubPortal.start({ hostname: gwNs.hostIp });
    p.gateway = Proc.deno({
      label: "gateway",
      args: [
        "run",
        "-A",
        "main.ts",
        "e2e-secret-token",
        "--no-check",
        "-u",
        stub.url,
        "--health-check-addr",
        "127.0.0.1:18080",
      ],
      env: { FIREZONE_ID: GATEWAY_ID, RUST_LOG: "info" },
      prefix: ["ip", "netns", "exec", gwNs.name],
    });
    await stub.waitFor(() => stub.last?.joined, 15_000, "gateway join");
    const gatewayPublicKey = new Map(stub.upgrades[0]!.params).get("public_key")!;
    assert.match(gatewayPublicKey, /^[A-Za-z0-9+/]{43}=$/);

    stub.push("init", {
      interface: { ipv4: GATEWAY_TUN_V4, ipv6: GATEWAY_TUN_V6 },
      config: { ipv4_masquerade_enabled: true, ipv6_masquerade_enabled: true },
      account_slug: "e2e",
      relays: [{
        type: "turn",
        id: RELAY_ID,
        addr: `${RELAY_IP}:3478`,
        username: RELAY_USER,
        password: RELAY_PASSWORD,
        expires_at: Math.floor(Date.now() / 1000) + 86_400,
      }],
      authorizations: [],
    });
    await p.gateway.waitFor((l) => /Received init from portal/.test(l) || null, "init handled");

    if (options.blockDirect) {
      runIn(topo.client, [
        "nft",
        `add table inet fze2e; add chain inet fze2e out { type filter hook output priority 0; }; ` +
        `add rule inet fze2e out ip daddr ${GATEWAY_IP} drop`,
      ]);
    }

    const clientPrivate = crypto.getRandomValues(new Uint8Array(32));
    const clientPublic = encodeBase64(x25519.getPublicKey(clientPrivate));
    const psk = encodeBase64(crypto.getRandomValues(new Uint8Array(32)));
    const ice = await portalIceCredentials(CLIENT_ID, clientPublic, GATEWAY_ID, gatewayPublicKey);
    p.driver = Proc.deno({
      label: "client driver",
      args: [
        "run",
        "-A",
        "tests/integration/_e2e/client_driver.ts",
        JSON.stringify({
          bindIp: CLIENT_IP,
          privateKey: encodeBase64(clientPrivate),
          gatewayId: GATEWAY_ID,
          gatewayPublicKey,
          presharedKey: psk,
          clientIce: ice.client,
          gatewayIce: ice.gateway,
          relay: { id: RELAY_ID, addr: `${RELAY_IP}:3478`, username: RELAY_USER, password: RELAY_PASSWORD },
        }),
      ],
      env: { RUST_LOG: "info" },
      prefix: ["ip", "netns", "exec", topo.client],
      stdin: true,
    });
    const driver = p.driver;
    await driver.waitFor((l) => l.includes('"ready"') || null, "driver ready", 15_000);

    const cidrResource = {
      type: "cidr",
      id: CIDR_RESOURCE_ID,
      address: "10.99.2.0/24",
      name: "e2e resource network",
      filters: [
        { protocol: "icmp" },
        { protocol: "udp", port_range_start: UDP_ECHO_PORT, port_range_end: UDP_ECHO_PORT },
        { protocol: "tcp", port_range_start: TCP_PORT, port_range_end: TCP_PORT },
      ],
    };
    const authorize = (ref: string, resource: unknown) => ({
      ref,
      resource,
      client: {
        id: CLIENT_ID,
        public_key: clientPublic,
        preshared_key: psk,
        ipv4: CLIENT_TUN_V4,
        ipv6: CLIENT_TUN_V6,
      },
      gateway_ice_credentials: { username: ice.gateway.ufrag, password: ice.gateway.pwd },
      client_ice_credentials: { username: ice.client.ufrag, password: ice.client.pwd },
      expires_at: null,
    });
    signalling = startSignalling(stub, driver, CLIENT_ID);
    stub.push("authorize_flow", authorize("e2e-ref-cidr", cidrResource));
    await flowAuthorized(stub, "e2e-ref-cidr");

    await driver.waitFor((l) => l.includes('"established"') || null, "WireGuard session", 20_000);
    await driver.send({ cmd: "info" });
    const info = (await driver.waitFor((l) => {
      const e = l.startsWith("{") ? JSON.parse(l) : null;
      return e?.event === "info" ? e : null;
    }, "connection info")).value as { peerSocket: { kind: string; dst?: string; peer?: string } };
    if (options.blockDirect) {
      // Either through our relay allocation or straight to the gateway's relayed address.
      const target = info.peerSocket.kind === "relay" ? info.peerSocket.peer! : info.peerSocket.dst!;
      assert.ok(
        info.peerSocket.kind === "relay" || target.startsWith(`${RELAY_IP}:`),
        `expected a relayed path, got ${JSON.stringify(info.peerSocket)}`,
      );
    } else {
      assert.deepEqual(info.peerSocket, {
        kind: "direct",
        src: driver.jsonLines().find((e) => e.event === "ready")!.local,
        dst: `${GATEWAY_IP}:52625`,
      });
    }
    // Candidates really went both ways through the "portal".
    assert.ok(
      signalling.toDriver.some((c) => c.includes(" typ relay ")),
      `gateway relay candidate: ${signalling.toDriver}`,
    );
    assert.ok(
      signalling.toGateway.some((c) => c.includes(" typ relay ")),
      `client relay candidate: ${signalling.toGateway}`,
    );

    /** Sends `packet` and waits for a decrypted packet matching `match`. */
    const exchange = async (what: string, packet: Uint8Array, match: (r: Received) => boolean) => {
      const from = driver.lines.length;
      await driver.send({ cmd: "send", packet: encodeBase64(packet) });
      const sent = await driver.waitFor(
        (l) => {
          const e = l.startsWith("{") ? JSON.parse(l) : null;
          return e?.event === "sent" ? e : null;
        },
        `${what}: sent`,
        5_000,
        from,
      );
      assert.equal(sent.value.result, "network", `${what}: ${JSON.stringify(sent.value)}`);
      return (await driver.waitFor(
        (l) => {
          const r = parseReceived(l);
          return r !== null && match(r) ? r : null;
        },
        what,
        5_000,
        from,
      )).value;
    };

    // ICMP echo to the resource.
    const pong = await exchange(
      "ICMP echo reply",
      icmpEcho(RESOURCE_IP, 0x4242, 1),
      (r) => r.info.isIcmpEcho() && r.info.icmpType === 0,
    );
    assert.equal(pong.src, RESOURCE_IP);
    assert.equal(pong.dst, CLIENT_TUN_V4);
    assert.equal(pong.info.icmpId, 0x4242);
    assert.equal(pong.info.icmpSeq, 1);

    // UDP to the echo port.
    const hello = new TextEncoder().encode("hello through fz-gateway");
    const echo = await exchange(
      "UDP echo",
      udp(RESOURCE_IP, 40_000, UDP_ECHO_PORT, hello),
      (r) => r.info.l4Kind === L4Kind.Udp,
    );
    assert.equal(echo.src, RESOURCE_IP);
    assert.equal(echo.dst, CLIENT_TUN_V4);
    assert.equal(echo.info.srcPort, UDP_ECHO_PORT);
    assert.equal(echo.info.dstPort, 40_000);
    assert.deepEqual(echo.bytes.slice(echo.info.l4Off + 8, echo.info.off + echo.info.totalLen), hello);
    await p.resource.waitFor((l) => l.includes('"udp"') || null, "resource saw the datagram");

    // TCP SYN to the allowed port: the resource's kernel answers SYN-ACK.
    const synAck = await exchange(
      "TCP SYN-ACK",
      tcpSyn(RESOURCE_IP, 40_001, TCP_PORT),
      (r) => r.info.l4Kind === L4Kind.Tcp,
    );
    assert.equal(synAck.src, RESOURCE_IP);
    assert.equal(synAck.info.srcPort, TCP_PORT);
    assert.equal(synAck.info.tcpFlags & (TCP_FLAG_SYN | TCP_FLAG_ACK), TCP_FLAG_SYN | TCP_FLAG_ACK);

    // A UDP port and a TCP port the filters do not allow: ICMP administratively prohibited (3/13)
    // from the gateway, with the original destination as source.
    for (
      const [what, packet] of [
        ["UDP to a filtered port", udp(RESOURCE_IP, 40_002, 9999, hello)],
        ["TCP to a filtered port", tcpSyn(RESOURCE_IP, 40_003, TCP_PORT + 1)],
      ] as const
    ) {
      const refused = await exchange(
        what,
        packet,
        (r) => r.info.l4Kind === L4Kind.Icmp && r.info.icmpType === 3,
      );
      assert.equal(refused.info.icmpCode, 13, what);
      assert.equal(refused.src, RESOURCE_IP, what);
      assert.equal(refused.dst, CLIENT_TUN_V4, what);
    }

    // The DNS forwarder on the gateway's tunnel address (§4.8): always allowed, forwarded to the
    // gateway's nameserver (the resource host), answered back through the tunnel.
    const query = buildQuery(0x5e2e, "forwarded.e2e.test", DnsType.A);
    const answer = await exchange(
      "DNS answer from the gateway's forwarder",
      udp(GATEWAY_TUN_V4, 40_053, 53_535, query),
      (r) => r.info.l4Kind === L4Kind.Udp && r.info.srcPort === 53_535,
    );
    assert.equal(answer.src, GATEWAY_TUN_V4);
    assert.equal(answer.dst, CLIENT_TUN_V4);
    assert.equal(answer.info.dstPort, 40_053);
    const dnsReply = answer.bytes.slice(answer.info.l4Off + 8, answer.info.off + answer.info.totalLen);
    assert.equal(messageId(dnsReply), 0x5e2e);
    assert.ok(isResponse(dnsReply));
    assert.equal(responseCode(dnsReply), DnsRcode.NoError);
    assert.deepEqual(
      [...dnsReply.slice(-4)],
      [...ip(DNS_ANSWER)],
      "the A record of the resource's DNS server",
    );
    assert.ok(
      p.resource.jsonLines().some((e) => e.event === "dns" && e.name === "forwarded.e2e.test"),
      "the query reached the gateway's nameserver",
    );

    // IPv6: a second CIDR resource (ICMP only) on the resource's IPv6 network.
    stub.push(
      "authorize_flow",
      authorize("e2e-ref-cidr6", {
        type: "cidr",
        id: CIDR6_RESOURCE_ID,
        address: "fd00:99:2::/64",
        name: "e2e resource network (IPv6)",
        filters: [{ protocol: "icmp" }],
      }),
    );
    await flowAuthorized(stub, "e2e-ref-cidr6");
    const pong6 = await exchange(
      "ICMPv6 echo reply",
      icmpEcho(RESOURCE_IP6, 0x6666, 3),
      (r) => r.info.isIcmpEcho() && r.info.icmpType === ICMPV6_ECHO_REPLY,
    );
    assert.equal(pong6.src, RESOURCE_IP6);
    assert.equal(pong6.dst, CLIENT_TUN_V6);
    assert.equal(pong6.info.icmpId, 0x6666);
    assert.equal(pong6.info.icmpSeq, 3);
    const refused6 = await exchange(
      "UDP over IPv6 to a filtered port",
      udp(RESOURCE_IP6, 40_004, UDP_ECHO_PORT, hello),
      (r) => r.info.l4Kind === L4Kind.Icmp && r.info.icmpType === 1,
    );
    assert.equal(refused6.info.icmpCode, 1, "ICMPv6 administratively prohibited");
    assert.equal(refused6.src, RESOURCE_IP6);
    assert.equal(refused6.dst, CLIENT_TUN_V6);

    if (options.dnsResource) await dnsResourceCase(stub, authorize, exchange);

    // Shutdown: the client gets the p2p goodbye (event 2) before the gateway exits 0.
    const from = driver.lines.length;
    p.gateway.kill("SIGTERM");
    const goodbye = await driver.waitFor(
      (l) => {
        const r = parseReceived(l);
        if (r === null || !isP2pControl(r.bytes, 0, r.bytes.length)) return null;
        return decodeP2pControl(r.bytes, 0, r.bytes.length).type === "Goodbye" ? r : null;
      },
      "goodbye",
      10_000,
      from,
    );
    assert.equal(goodbye.value.bytes[40], 2, "event type 2");
    const code = await p.gateway.finish(10_000);
    assert.equal(code, 0);
    assert.ok(goodbye.value.at <= p.gateway.exitedAt!, "goodbye arrived before the gateway exited");
    const gwLog = p.gateway.lines.join("\n");
    assert.match(gwLog, /Received SIGTERM, goodbye!/);
    assert.ok(!gwLog.includes("e2e-secret-token"), "the token never reaches the logs");
    assert.doesNotMatch(gwLog, / (ERROR|WARN) /, "no warnings or errors in the gateway log");

    await signalling.stop();
    signalling = undefined;
    assert.equal(await driver.finish(5_000), 0, "the driver exits when its stdin closes");
    assert.ok(!driver.jsonLines().some((e) => e.event === "failed"), "the client connection never failed");
    p.resource.kill("SIGTERM");
    assert.equal(await p.resource.finish(5_000), 0);
    p.relay.kill("SIGTERM");
    assert.equal(await p.relay.finish(5_000), 0);
    const stats = p.relay.jsonLines().find((e) => e.event === "stats") as {
      relayedToPeers: number;
      relayedToClients: number;
    };
    if (options.blockDirect) {
      assert.ok(
        stats.relayedToPeers > 0 && stats.relayedToClients > 0,
        `relay carried data: ${JSON.stringify(stats)}`,
      );
    }
    // deno-lint-ignore no-console
    if (Deno.env.get("FZE2E_VERBOSE")) console.log(dumpAll(p));
  } catch (e) {
    // deno-lint-ignore no-console
    console.error(dumpAll(p));
    // deno-lint-ignore no-console
    if (signalling?.error) console.error(`signalling failed: ${signalling.error.stack}`);
    const pause = Number(Deno.env.get("FZE2E_PAUSE_MS") ?? "0");
    if (pause > 0) await new Promise((r) => setTimeout(r, pause));
    throw e;
  } finally {
    await signalling?.stop().catch(() => {});
    for (const proc of [p.driver, p.gateway, p.resource, p.relay]) {
      if (proc === undefined || proc.exitCode !== null) continue;
      proc.kill("SIGKILL");
      await proc.finish(5_000).catch(() => {});
    }
    await p.stub?.stop().catch(() => {});
    await topo.cleanup();
  }
}

type Exchange = (what: string, packet: Uint8Array, match: (r: Received) => boolean) => Promise<Received>;

/**
 * DNS resource (§4.6, §4.7): authorize a `dns` resource, send AssignedIps for a name the gateway
 * resolves from its /etc/hosts, expect DomainStatus Active, then ping the proxy IP and get replies
 * from the proxy IP.
 */
async function dnsResourceCase(
  stub: StubPortal,
  authorize: (ref: string, resource: unknown) => unknown,
  exchange: Exchange,
): Promise<void> {
  stub.push(
    "authorize_flow",
    authorize("e2e-ref-dns", {
      type: "dns",
      id: DNS_RESOURCE_ID,
      address: "*.e2e.test",
      name: "e2e dns resource",
      filters: [{ protocol: "icmp" }],
    }),
  );
  await flowAuthorized(stub, "e2e-ref-dns");
  const buf = new Uint8Array(1280);
  const n = buildAssignedIpsPacket(buf, 0, {
    resource: DNS_RESOURCE_ID,
    domain: DNS_NAME,
    proxyIps: [...PROXY_V4, ...PROXY_V6],
  });
  const status = await exchange(
    "DomainStatus",
    built(buf, n),
    (r) => isP2pControl(r.bytes, 0, r.bytes.length),
  );
  assert.deepEqual(decodeP2pControl(status.bytes, 0, status.bytes.length), {
    type: "DomainStatus",
    resource: DNS_RESOURCE_ID,
    domain: DNS_NAME,
    status: "Active",
  });
  const pong = await exchange(
    "ICMP echo reply from the proxy IP",
    icmpEcho(PROXY_V4[0]!, 0x5151, 7),
    (r) => r.info.isIcmpEcho() && r.info.icmpType === 0,
  );
  assert.equal(pong.src, PROXY_V4[0]);
  assert.equal(pong.dst, CLIENT_TUN_V4);
  assert.equal(pong.info.icmpId, 0x5151);
  assert.equal(pong.info.icmpSeq, 7);
  const pong6 = await exchange(
    "ICMPv6 echo reply from the IPv6 proxy IP",
    icmpEcho(PROXY_V6[0]!, 0x5252, 8),
    (r) => r.info.isIcmpEcho() && r.info.icmpType === ICMPV6_ECHO_REPLY,
  );
  assert.equal(pong6.src, PROXY_V6[0]);
  assert.equal(pong6.dst, CLIENT_TUN_V6);
  assert.equal(pong6.info.icmpId, 0x5252);
  assert.equal(pong6.info.icmpSeq, 8);
}

/** Waits for the gateway's `flow_authorized` answering `ref` (§2.7). */
async function flowAuthorized(stub: StubPortal, ref: string): Promise<void> {
  const frame = await until(
    () =>
      stub.allReceived().find((f) =>
        f.event === "flow_authorized" && (f.payload as { ref?: string }).ref === ref
      ),
    `flow_authorized for ${ref}`,
  );
  assert.equal(frame.topic, "gateway");
  assert.deepEqual(frame.payload, { ref });
}

Deno.test({
  name:
    "portal e2e: a client reaches a resource through main.ts (direct path; ICMP, UDP, TCP, filters, DNS resource, goodbye)",
  ignore: skipReason !== null,
  fn: () => withNetns((ns) => scenario(ns, { blockDirect: false, dnsResource: true }), { prefix: PREFIX }),
});

Deno.test({
  name: "portal e2e: the same through the TURN relay when the direct path is blocked",
  ignore: skipReason !== null,
  fn: () => withNetns((ns) => scenario(ns, { blockDirect: true, dnsResource: false }), { prefix: PREFIX }),
});
