/**
 * Interop: an independent ICE implementation (aioice, controlling, like a Firezone client) against
 * our controlled {@link IceAgent} over real UDP between two network namespaces joined by a veth
 * pair; then the same with aioice offering only a relayed candidate from a coturn.
 *
 * Root only (netns). Run as a test, this file spawns `ip netns exec <ns> deno run <this file>
 * --driver ...` for our side: a small UDP loop that drives the sans-IO agent and echoes data
 * datagrams on the nominated pair.
 *
 * @module
 */

import assert from "node:assert/strict";
import { sha256 } from "@noble/hashes/sha2.js";
import { IceAgent, type IceEvent } from "../../src/ice/agent.ts";
import { formatCandidate, hostCandidate, parseCandidate } from "../../src/ice/candidate.ts";
import { CryptoRng } from "../../src/io/crypto_rng.ts";
import { formatSocketAddr, type SocketAddr, socketAddr } from "../../src/wire/ip_addr.ts";
import { parseStun } from "../../src/wire/stun.ts";

const PYTHON = "/usr/bin/python3";
const PEER_SCRIPT = new URL("../_helpers/aioice_peer.py", import.meta.url).pathname;
const THIS_FILE = new URL(import.meta.url).pathname;
const DRIVER_PORT = 52625;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// --- skip logic -------------------------------------------------------------------------------

function commandWorks(cmd: string, args: string[]): boolean {
  try {
    return new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

function skipReason(): string | null {
  if (Deno.build.os !== "linux") return "needs Linux network namespaces";
  let uid: number | null = null;
  try {
    uid = Deno.uid();
  } catch {
    return "needs --allow-sys and --allow-run (checks for root, runs ip/python3)";
  }
  if (uid !== 0) return "needs root (creates network namespaces)";
  if (!commandWorks("ip", ["-V"])) return "needs iproute2 (`ip`)";
  if (!commandWorks(PYTHON, ["-c", "import aioice"])) return `needs python3-aioice for ${PYTHON}`;
  return null;
}

const SKIP = import.meta.main ? null : skipReason();
if (SKIP) Deno.stderr.writeSync(encoder.encode(`aioice_test.ts: skipped: ${SKIP}\n`));
const NO_COTURN = SKIP ??
  (commandWorks("sh", ["-c", "command -v turnserver"]) ? null : "needs coturn (`turnserver`)");
if (!SKIP && NO_COTURN) {
  Deno.stderr.writeSync(encoder.encode(`aioice_test.ts: relay variant skipped: ${NO_COTURN}\n`));
}

// --- Firezone-style credentials ----------------------------------------------------------------

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

/** The portal's `generate_ice_credentials` (§2.6): slices of one base32 SHA-256 (Elixir clips ranges). */
function portalIceCredentials(seed: string) {
  const h = base32LowerNoPad(sha256(encoder.encode(seed)));
  return {
    client: { ufrag: h.slice(0, 4), pwd: h.slice(4, 26) },
    gateway: { ufrag: h.slice(26, 30), pwd: h.slice(30, 53) },
  };
}

// --- the namespace topology --------------------------------------------------------------------

function run(cmd: string, args: string[]): void {
  const out = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed: ${decoder.decode(out.stderr)}`);
}

function tryRun(cmd: string, args: string[]): void {
  new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync();
}

interface Topology {
  nsA: string;
  nsB: string;
  ipA: string;
  ipB: string;
  tmp: string;
}

function setUp(tag: string): Topology {
  const id = `${Deno.pid % 100000}${tag}`;
  const t: Topology = {
    nsA: `fzice${id}a`,
    nsB: `fzice${id}b`,
    ipA: "10.77.0.1",
    ipB: "10.77.0.2",
    tmp: Deno.makeTempDirSync({ prefix: "fzice" }),
  };
  tearDown(t, false);
  run("ip", ["netns", "add", t.nsA]);
  run("ip", ["netns", "add", t.nsB]);
  run("ip", [
    "link",
    "add",
    `fzi${id}a`,
    "netns",
    t.nsA,
    "type",
    "veth",
    "peer",
    "name",
    `fzi${id}b`,
    "netns",
    t.nsB,
  ]);
  run("ip", ["-n", t.nsA, "addr", "add", `${t.ipA}/24`, "dev", `fzi${id}a`]);
  run("ip", ["-n", t.nsB, "addr", "add", `${t.ipB}/24`, "dev", `fzi${id}b`]);
  for (const [ns, dev] of [[t.nsA, `fzi${id}a`], [t.nsB, `fzi${id}b`]] as const) {
    run("ip", ["-n", ns, "link", "set", "lo", "up"]);
    run("ip", ["-n", ns, "link", "set", dev, "up"]);
  }
  return t;
}

function tearDown(t: Topology, removeTmp = true): void {
  tryRun("ip", ["netns", "del", t.nsA]);
  tryRun("ip", ["netns", "del", t.nsB]);
  if (removeTmp) Deno.removeSync(t.tmp, { recursive: true });
}

/** Runs a child to completion within `timeoutMs`, killing it (by its own pid) when late. */
async function finish(
  child: Deno.ChildProcess,
  timeoutMs: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, timeoutMs);
  try {
    const out = await child.output();
    return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

function spawn(ns: string, cmd: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command("ip", {
    args: ["netns", "exec", ns, cmd, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

function lastJsonLine(text: string): Record<string, unknown> {
  const lines = text.trim().split("\n").filter((l) => l.startsWith("{"));
  assert.ok(lines.length > 0, `no JSON result in: ${text}`);
  return JSON.parse(lines[lines.length - 1]!);
}

interface DriverResult {
  nominated: { source: string; destination: string } | null;
  states: string[];
  echoed: number;
  dataBeforeNomination: number;
  error?: string;
}

async function interop(t: Topology, peerExtra: string[]): Promise<
  { report: string; peer: Record<string, unknown>; driver: DriverResult; remote: { candidates: string[] } }
> {
  const creds = portalIceCredentials(`client-${t.nsA}:pk:gateway-${t.nsB}:pk`);
  const aFile = `${t.tmp}/a.json`;
  const bFile = `${t.tmp}/b.json`;
  const children: Deno.ChildProcess[] = [];
  try {
    const peer = spawn(t.nsA, PYTHON, [
      PEER_SCRIPT,
      "--bind",
      t.ipA,
      "--ufrag",
      creds.client.ufrag,
      "--pwd",
      creds.client.pwd,
      "--local-file",
      aFile,
      "--remote-file",
      bFile,
      "--send",
      "5",
      "--timeout",
      "20",
      ...peerExtra,
    ]);
    children.push(peer);
    const driver = spawn(t.nsB, Deno.execPath(), [
      "run",
      "--allow-all",
      "--unstable-net", // Deno.listenDatagram
      THIS_FILE,
      "--driver",
      t.ipB,
      creds.gateway.ufrag,
      creds.gateway.pwd,
      bFile,
      aFile,
    ]);
    children.push(driver);
    const [p, d] = await Promise.all([finish(peer, 40_000), finish(driver, 40_000)]);
    const report =
      `aioice peer (exit ${p.code}):\n${p.stdout}${p.stderr}\ndriver (exit ${d.code}):\n${d.stdout}${d.stderr}`;
    assert.equal(p.code, 0, report);
    assert.equal(d.code, 0, report);
    return {
      report,
      peer: lastJsonLine(p.stdout),
      driver: lastJsonLine(d.stdout) as unknown as DriverResult,
      remote: JSON.parse(await Deno.readTextFile(aFile)),
    };
  } finally {
    for (const c of children) {
      try {
        c.kill("SIGKILL");
      } catch { /* already exited */ }
    }
  }
}

Deno.test({
  name: "IceAgent (controlled) interoperates with aioice (controlling) over a veth pair",
  ignore: SKIP !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = setUp("h");
    try {
      const { peer, driver, remote } = await interop(t, []);
      assert.equal(peer.connected, true);
      assert.equal(peer.received, 5, "all pings came back through our echo");
      assert.equal(driver.echoed, 5);
      assert.equal(driver.dataBeforeNomination, 0);
      const aioiceHost = parseCandidate(remote.candidates[0]!)!;
      assert.equal(aioiceHost.kind, "host");
      assert.deepEqual(driver.nominated, {
        source: `${t.ipB}:${DRIVER_PORT}`,
        destination: formatSocketAddr(aioiceHost.addr),
      });
      assert.deepEqual(peer.selected_remote, [t.ipB, DRIVER_PORT]);
      assert.ok(driver.states.includes("Checking"));
      assert.ok(driver.states.includes("Connected") || driver.states.includes("Completed"));
    } finally {
      tearDown(t);
    }
  },
});

Deno.test({
  name: "IceAgent (controlled) reaches an aioice peer that only offers a coturn relayed candidate",
  ignore: NO_COTURN !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t = setUp("r");
    let turn: Deno.ChildProcess | undefined;
    try {
      const conf = `${t.tmp}/turnserver.conf`;
      await Deno.writeTextFile(
        conf,
        [
          `listening-ip=${t.ipA}`,
          `relay-ip=${t.ipA}`,
          "listening-port=3478",
          "min-port=49160",
          "max-port=49200",
          "realm=fzice.test",
          "fingerprint",
          "lt-cred-mech",
          "user=fzice:fzicepass",
          "no-tls",
          "no-dtls",
          "no-cli",
          "no-tcp-relay",
          `log-file=${t.tmp}/turnserver.log`,
          "simple-log",
          `pidfile=${t.tmp}/turnserver.pid`,
          `userdb=${t.tmp}/turndb`,
        ].join("\n") + "\n",
      );
      turn = spawn(t.nsA, "turnserver", ["-c", conf]);
      for (let i = 0; i < 100; i++) {
        const ss = new Deno.Command("ip", { args: ["netns", "exec", t.nsA, "ss", "-Huln", "sport = :3478"] })
          .outputSync();
        if (decoder.decode(ss.stdout).trim() !== "") break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const { report, peer, driver, remote } = await interop(t, [
        "--turn",
        `${t.ipA}:3478`,
        "--turn-user",
        "fzice",
        "--turn-pass",
        "fzicepass",
        "--relay-only",
      ]);
      const relayed = remote.candidates.map((c) => parseCandidate(c)!);
      assert.equal(relayed.length, 1);
      assert.equal(relayed[0]!.kind, "relay");
      assert.equal(peer.received, 5);
      assert.equal(driver.echoed, 5);
      assert.equal(driver.nominated?.destination, formatSocketAddr(relayed[0]!.addr), report);
    } finally {
      if (turn) {
        try {
          turn.kill("SIGKILL");
        } catch { /* already exited */ }
        await turn.output().catch(() => undefined);
      }
      tearDown(t);
    }
  },
});

// --- the driver (our side), run inside the namespace ---------------------------------------------

async function waitForJson(
  path: string,
  timeoutMs: number,
): Promise<{ ufrag: string; pwd: string; candidates: string[] }> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    try {
      return JSON.parse(await Deno.readTextFile(path));
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`no remote parameters in ${path}`);
}

const verbose = Deno.env.get("FZICE_VERBOSE") === "1";

function log(line: string): void {
  Deno.stderr.writeSync(encoder.encode(`driver: ${line}\n`));
}

async function driverMain(args: string[]): Promise<number> {
  const [bind, ufrag, pwd, localFile, remoteFile] = args as [string, string, string, string, string];
  const local = socketAddr(bind, DRIVER_PORT);
  const socket = Deno.listenDatagram({ transport: "udp", hostname: bind, port: DRIVER_PORT });
  const now = () => performance.now();
  const agent = new IceAgent({ controlling: false, local: { ufrag, pwd }, rng: new CryptoRng(), now: now() });
  const added = agent.addLocalCandidate(hostCandidate(local))!;
  const tmp = `${localFile}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify({ ufrag, pwd, candidates: [formatCandidate(added)] }));
  await Deno.rename(tmp, localFile);

  const remote = await waitForJson(remoteFile, 20_000);
  agent.setRemoteCredentials({ ufrag: remote.ufrag, pwd: remote.pwd });
  for (const line of remote.candidates) {
    const c = parseCandidate(line);
    if (c) agent.addRemoteCandidate(c, now());
  }

  const result: DriverResult = { nominated: null, states: [], echoed: 0, dataBeforeNomination: 0 };
  let nominated: { source: SocketAddr; destination: SocketAddr } | null = null;
  const deadline = now() + 30_000;
  let receive = socket.receive();
  let done = false;
  while (!done && now() < deadline) {
    for (let tx = agent.pollTransmit(); tx; tx = agent.pollTransmit()) {
      if (verbose) log(`send ${tx.payload.length}B to ${formatSocketAddr(tx.destination)}`);
      await socket.send(tx.payload, {
        transport: "udp",
        hostname: tx.destination.ip,
        port: tx.destination.port,
      });
    }
    for (let e: IceEvent | undefined = agent.pollEvent(); e; e = agent.pollEvent()) {
      if (verbose) log(JSON.stringify(e));
      if (e.type === "StateChanged") result.states.push(e.state);
      if (e.type === "NominatedSend") {
        nominated = { source: e.source, destination: e.destination };
        result.nominated = {
          source: formatSocketAddr(e.source),
          destination: formatSocketAddr(e.destination),
        };
      }
    }
    const wait = Math.min(1_000, Math.max(0, agent.pollTimeout() - now()));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = new Promise<null>((r) => (timer = setTimeout(() => r(null), wait)));
    const got = await Promise.race([receive, tick]);
    clearTimeout(timer);
    if (got === null) {
      agent.handleTimeout(now());
      continue;
    }
    receive = socket.receive();
    const [data, from] = got as [Uint8Array, Deno.NetAddr];
    const source = socketAddr(from.hostname, from.port);
    // Keep timers fair under a stream of datagrams.
    if (agent.pollTimeout() <= now()) agent.handleTimeout(now());
    const stun = parseStun(data);
    if (stun.ok) {
      if (verbose) log(`stun cls=${stun.msg.cls} from ${formatSocketAddr(source)}`);
      if (agent.acceptsMessage(stun.msg)) agent.handlePacket(now(), source, local, stun.msg);
      continue;
    }
    if (verbose) log(`data ${data.length}B from ${formatSocketAddr(source)}`);
    if (!nominated) {
      result.dataBeforeNomination++;
      continue;
    }
    if (decoder.decode(data) === "fzice-bye") {
      done = true;
      continue;
    }
    await socket.send(data, {
      transport: "udp",
      hostname: nominated.destination.ip,
      port: nominated.destination.port,
    });
    result.echoed++;
  }
  socket.close();
  if (!done) result.error = "no fzice-bye before the deadline";
  Deno.stdout.writeSync(encoder.encode(JSON.stringify(result) + "\n"));
  return done ? 0 : 1;
}

if (import.meta.main && Deno.args[0] === "--driver") {
  Deno.exit(await driverMain(Deno.args.slice(1)));
}
