/**
 * Interoperability of `fz-gateway standalone` with wireguard-go (root only).
 *
 * Two network namespaces joined by a veth pair (underlay 10.201.0.1 <-> 10.201.0.2): `fzwgiw<pid>` runs
 * wireguard-go configured with `wg`, `fzwgif<pid>` runs `main.ts standalone` with a wg-quick style file.
 * Tunnel addresses: wireguard-go 100.66.0.1 / fd00:66::1, fz-gateway 100.66.0.2 / fd00:66::2, TUN MTU 1280.
 * Checked: the handshake initiated by wireguard-go and by us (from both logs), ping over IPv4 and IPv6
 * both ways, a 50 MB TCP transfer each way whose sha256 matches at both ends, UDP echo over IPv4 and IPv6,
 * clean exit (code 0) on SIGTERM, and that an unknown public key or a wrong PresharedKey gives no session
 * and a log line from fz-gateway that says so. Traffic end points: tests/integration/_wg/netio.py.
 *
 * @module
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;
const NETIO = new URL("./_wg/netio.py", import.meta.url).pathname;
const DENO = `${ROOT}scripts/deno`;

const NS_WG = `fzwgiw${Deno.pid}`;
const NS_FZ = `fzwgif${Deno.pid}`;
/** wireguard-go keeps its control socket in the host-wide /var/run/wireguard: the name must be unique. */
const WG_IF = `fzwgi${Deno.pid % 10_000_000}`;
const FZ_TUN = "fzwgitun";
const UNDERLAY_WG = "10.201.0.1";
const UNDERLAY_FZ = "10.201.0.2";
const WG_PORT = 51821;
const FZ_PORT = 51820;
const TUN4_WG = "100.66.0.1";
const TUN4_FZ = "100.66.0.2";
const TUN6_WG = "fd00:66::1";
const TUN6_FZ = "fd00:66::2";
const TRANSFER_BYTES = 50 * 1024 * 1024;

const decoder = new TextDecoder();

function commandWorks(cmd: string, args: string[]): boolean {
  try {
    return new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

function skipReason(): string | null {
  if (Deno.build.os !== "linux") return "needs Linux network namespaces";
  try {
    if (Deno.uid() !== 0) return "needs root (network namespaces, TUN devices)";
  } catch {
    return "needs --allow-sys to check for root";
  }
  try {
    if (!Deno.statSync("/dev/net/tun").isCharDevice) return "/dev/net/tun is not a character device";
  } catch {
    return "/dev/net/tun is missing";
  }
  if (!commandWorks("ip", ["-V"])) return "needs iproute2 (`ip`)";
  if (!commandWorks("sh", ["-c", "command -v wireguard-go"])) {
    return "needs wireguard-go: apt-get install --no-install-recommends wireguard-go";
  }
  if (!commandWorks("wg", ["--version"])) {
    return "needs wg: apt-get install --no-install-recommends wireguard-tools";
  }
  if (!commandWorks("python3", ["--version"])) return "needs python3";
  if (!commandWorks("sh", ["-c", "command -v ping"])) return "needs ping (iputils-ping)";
  return null;
}

const SKIP = skipReason();
if (SKIP !== null) {
  // deno-lint-ignore no-console
  console.warn(`wireguard_go_test: skipped: ${SKIP}`);
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[], opts: { stdin?: string } = {}): Promise<RunResult> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

async function must(cmd: string, args: string[], opts: { stdin?: string } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

function inNs(ns: string, cmd: string, ...args: string[]): Promise<string> {
  return must("ip", ["netns", "exec", ns, cmd, ...args]);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A background process whose stdout and stderr are collected as text. */
class Proc {
  readonly name: string;
  readonly #child: Deno.ChildProcess;
  #stdout = "";
  #stderr = "";
  readonly #pumps: Promise<void>;
  #status: Deno.CommandStatus | null = null;

  constructor(name: string, cmd: string, args: string[], env: Record<string, string> = {}) {
    this.name = name;
    this.#child = new Deno.Command(cmd, {
      args,
      env,
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    })
      .spawn();
    this.#pumps = Promise.all([
      this.#pump(this.#child.stdout, (s) => this.#stdout += s),
      this.#pump(this.#child.stderr, (s) => this.#stderr += s),
    ]).then(() => {});
    this.#child.status.then((s) => this.#status = s);
  }

  async #pump(stream: ReadableStream<Uint8Array>, add: (s: string) => void): Promise<void> {
    const dec = new TextDecoder();
    for await (const chunk of stream) add(dec.decode(chunk, { stream: true }));
  }

  get stdout(): string {
    return this.#stdout;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Waits until stdout or stderr matches; false after timeoutMs or when the process ended first. */
  async waitFor(re: RegExp, timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (re.test(this.#stdout) || re.test(this.#stderr)) return true;
      if (this.#status !== null) {
        await this.#pumps;
        return re.test(this.#stdout) || re.test(this.#stderr);
      }
      await delay(50);
    }
    return false;
  }

  /** SIGTERM (then SIGKILL after timeoutMs); resolves with the exit status and whether it had to be killed. */
  async stop(timeoutMs = 5000): Promise<{ status: Deno.CommandStatus; killed: boolean }> {
    let killed = false;
    if (this.#status === null) {
      try {
        this.#child.kill("SIGTERM");
      } catch { /* already gone */ }
      const timer = delay(timeoutMs).then(() => "timeout" as const);
      if (await Promise.race([this.#child.status.then(() => "exited" as const), timer]) === "timeout") {
        killed = true;
        try {
          this.#child.kill("SIGKILL");
        } catch { /* already gone */ }
      }
    }
    const status = await this.#child.status;
    await this.#pumps;
    return { status, killed };
  }

  describe(): string {
    return `--- ${this.name} stdout ---\n${this.#stdout.slice(-4000)}\n--- ${this.name} stderr ---\n` +
      this.#stderr.slice(-2000);
  }
}

interface Keys {
  priv: string;
  pub: string;
}

async function genKeys(): Promise<Keys> {
  const priv = (await must("wg", ["genkey"])).trim();
  const pub = (await must("wg", ["pubkey"], { stdin: priv + "\n" })).trim();
  return { priv, pub };
}

async function genPsk(): Promise<string> {
  return (await must("wg", ["genpsk"])).trim();
}

async function setupNamespaces(): Promise<void> {
  await cleanupNamespaces();
  for (const ns of [NS_WG, NS_FZ]) {
    await must("ip", ["netns", "add", ns]);
    await must("ip", ["-n", ns, "link", "set", "lo", "up"]);
  }
  await must("ip", [
    "link",
    "add",
    "fzwgi0",
    "netns",
    NS_WG,
    "type",
    "veth",
    "peer",
    "name",
    "fzwgi1",
    "netns",
    NS_FZ,
  ]);
  await must("ip", ["-n", NS_WG, "addr", "add", `${UNDERLAY_WG}/24`, "dev", "fzwgi0"]);
  await must("ip", ["-n", NS_FZ, "addr", "add", `${UNDERLAY_FZ}/24`, "dev", "fzwgi1"]);
  await must("ip", ["-n", NS_WG, "link", "set", "fzwgi0", "up"]);
  await must("ip", ["-n", NS_FZ, "link", "set", "fzwgi1", "up"]);
}

async function cleanupNamespaces(): Promise<void> {
  for (const ns of [NS_WG, NS_FZ]) {
    // Anything left in our namespaces was started by this test: stop it by pid.
    const pids = await run("ip", ["netns", "pids", ns]);
    for (const pid of pids.stdout.split(/\s+/).filter((p) => p !== "")) {
      try {
        Deno.kill(Number(pid), "SIGKILL");
      } catch { /* gone */ }
    }
    await run("ip", ["netns", "del", ns]);
  }
  try {
    await Deno.remove(`/var/run/wireguard/${WG_IF}.sock`);
  } catch { /* not there */ }
}

interface WgPeerOptions {
  peerPub: string;
  psk?: string;
  endpoint?: string;
}

/** Starts wireguard-go in NS_WG (debug log) and configures it with `wg set`. */
async function startWireguardGo(keys: Keys, peer: WgPeerOptions): Promise<Proc> {
  try {
    await Deno.remove(`/var/run/wireguard/${WG_IF}.sock`);
  } catch { /* not there */ }
  const proc = new Proc("wireguard-go", "ip", ["netns", "exec", NS_WG, "wireguard-go", "-f", WG_IF], {
    LOG_LEVEL: "debug",
  });
  if (!await proc.waitFor(/UAPI listener started/, 5000)) {
    await proc.stop();
    throw new Error(`wireguard-go did not start\n${proc.describe()}`);
  }
  const dir = await Deno.makeTempDir({ prefix: "fzwgi-" });
  try {
    await Deno.writeTextFile(`${dir}/key`, keys.priv + "\n", { mode: 0o600 });
    const args = [
      "set",
      WG_IF,
      "private-key",
      `${dir}/key`,
      "listen-port",
      String(WG_PORT),
      "peer",
      peer.peerPub,
    ];
    args.push("allowed-ips", `${TUN4_FZ}/32,${TUN6_FZ}/128`);
    if (peer.endpoint) args.push("endpoint", peer.endpoint);
    if (peer.psk) {
      await Deno.writeTextFile(`${dir}/psk`, peer.psk + "\n", { mode: 0o600 });
      args.push("preshared-key", `${dir}/psk`);
    }
    await inNs(NS_WG, "wg", ...args);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  await inNs(NS_WG, "ip", "addr", "add", `${TUN4_WG}/32`, "dev", WG_IF);
  await inNs(NS_WG, "ip", "-6", "addr", "add", `${TUN6_WG}/128`, "dev", WG_IF, "nodad");
  await inNs(NS_WG, "ip", "link", "set", WG_IF, "mtu", "1280", "up");
  await inNs(NS_WG, "ip", "route", "add", `${TUN4_FZ}/32`, "dev", WG_IF);
  await inNs(NS_WG, "ip", "-6", "route", "add", `${TUN6_FZ}/128`, "dev", WG_IF);
  return proc;
}

interface FzOptions {
  peerPub: string;
  psk?: string;
  endpoint?: string;
  listenPort?: number;
}

/** Starts `main.ts standalone` in NS_FZ with FZ_LOG=debug and waits for "interface up". */
async function startFzGateway(keys: Keys, opts: FzOptions, dir: string): Promise<Proc> {
  const lines = ["[Interface]", `PrivateKey = ${keys.priv}`];
  if (opts.listenPort !== undefined) lines.push(`ListenPort = ${opts.listenPort}`);
  lines.push(`Address = ${TUN4_FZ}/32, ${TUN6_FZ}/128`, "MTU = 1280", `Name = ${FZ_TUN}`, "");
  lines.push("[Peer]", `PublicKey = ${opts.peerPub}`, `AllowedIPs = ${TUN4_WG}/32, ${TUN6_WG}/128`);
  if (opts.psk) lines.push(`PresharedKey = ${opts.psk}`);
  if (opts.endpoint) lines.push(`Endpoint = ${opts.endpoint}`);
  const file = `${dir}/fz.conf`;
  await Deno.writeTextFile(file, lines.join("\n") + "\n", { mode: 0o600 });
  const proc = new Proc("fz-gateway", "ip", [
    "netns",
    "exec",
    NS_FZ,
    DENO,
    "run",
    "--allow-all",
    "main.ts",
    "standalone",
    "--config",
    file,
  ], { FZ_LOG: "debug", NO_COLOR: "1" });
  if (!await proc.waitFor(/Standalone WireGuard interface up/, 30_000)) {
    await proc.stop();
    throw new Error(`fz-gateway standalone did not come up\n${proc.describe()}`);
  }
  return proc;
}

/** Stops fz-gateway and asserts the clean exit (code 0, no SIGKILL). */
async function stopFz(fz: Proc): Promise<void> {
  const { status, killed } = await fz.stop();
  assert.ok(!killed, `fz-gateway did not exit within 5 s of SIGTERM\n${fz.describe()}`);
  assert.equal(status.code, 0, `fz-gateway exit code after SIGTERM\n${fz.describe()}`);
}

/** Pings until one reply arrives (the first packets start the handshake); false after timeoutMs. */
async function pingUntilUp(ns: string, dst: string, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const r = await run("ip", ["netns", "exec", ns, "ping", "-n", "-c", "1", "-W", "1", dst]);
    if (r.code === 0) return true;
  }
  return false;
}

/** Sends `count` echo requests and returns how many replies came back. */
async function pingCount(ns: string, dst: string, count: number, size = 56): Promise<number> {
  const r = await run("ip", [
    "netns",
    "exec",
    ns,
    "ping",
    "-n",
    "-q",
    "-c",
    String(count),
    "-i",
    "0.2",
    "-W",
    "2",
    "-s",
    String(size),
    dst,
  ]);
  const m = /(\d+) received/.exec(r.stdout);
  return m ? Number(m[1]) : 0;
}

/** wireguard-go's `latest-handshakes` for its only peer (0 = never). */
async function wgLatestHandshake(): Promise<number> {
  const out = await inNs(NS_WG, "wg", "show", WG_IF, "latest-handshakes");
  return Number(out.trim().split(/\s+/)[1] ?? "0");
}

async function wgEndpoint(): Promise<string> {
  const out = await inNs(NS_WG, "wg", "show", WG_IF, "endpoints");
  return out.trim().split(/\s+/)[1] ?? "";
}

/** Runs a netio.py TCP transfer from `fromNs` to `dst` in `toNs`; returns both ends' reports. */
async function tcpTransfer(
  fromNs: string,
  toNs: string,
  dst: string,
  port: number,
): Promise<{ sent: { bytes: number; sha256: string }; received: { bytes: number; sha256: string } }> {
  const receiver = new Proc("tcp receiver", "ip", [
    "netns",
    "exec",
    toNs,
    "python3",
    NETIO,
    "tcp-recv",
    dst,
    String(port),
  ]);
  try {
    assert.ok(await receiver.waitFor(/listening/, 10_000), `receiver did not start\n${receiver.describe()}`);
    const sent = JSON.parse(
      await inNs(fromNs, "python3", NETIO, "tcp-send", dst, String(port), String(TRANSFER_BYTES)),
    );
    assert.ok(await receiver.waitFor(/sha256/, 30_000), `receiver did not finish\n${receiver.describe()}`);
    const received = JSON.parse(receiver.stdout);
    return { sent, received };
  } finally {
    await receiver.stop(2000);
  }
}

async function udpEcho(checkNs: string, echoNs: string, dsts: string[]): Promise<void> {
  const port = 7007;
  const echo = new Proc("udp echo", "ip", [
    "netns",
    "exec",
    echoNs,
    "python3",
    NETIO,
    "udp-echo",
    "::",
    String(port),
    "60",
  ]);
  try {
    assert.ok(await echo.waitFor(/listening/, 10_000), `echo server did not start\n${echo.describe()}`);
    for (const dst of dsts) {
      const r = JSON.parse(await inNs(checkNs, "python3", NETIO, "udp-check", dst, String(port), "100"));
      assert.equal(r.mismatched, 0, `UDP echo via ${dst}: corrupted echoes ${JSON.stringify(r)}`);
      assert.equal(r.echoed, 100, `UDP echo via ${dst}: ${JSON.stringify(r)}`);
    }
  } finally {
    await echo.stop(2000);
  }
}

function hasLine(text: string, ...patterns: RegExp[]): boolean {
  return text.split("\n").some((line) => patterns.every((p) => p.test(line)));
}

Deno.test({
  name:
    "fz-gateway standalone interoperates with wireguard-go: handshakes both ways, ping v4/v6, 50 MB TCP, UDP",
  ignore: SKIP !== null,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "fzwgi-" });
    const procs: Proc[] = [];
    try {
      await setupNamespaces();

      await t.step("wireguard-go initiates; ping, TCP and UDP through the tunnel; clean exit", async () => {
        const wgKeys = await genKeys();
        const fzKeys = await genKeys();
        const psk = await genPsk();
        const fz = await startFzGateway(fzKeys, {
          peerPub: wgKeys.pub,
          psk,
          listenPort: FZ_PORT,
        }, dir);
        procs.push(fz);
        const wg = await startWireguardGo(wgKeys, {
          peerPub: fzKeys.pub,
          psk,
          endpoint: `${UNDERLAY_FZ}:${FZ_PORT}`,
        });
        procs.push(wg);
        try {
          assert.ok(
            await pingUntilUp(NS_WG, TUN4_FZ, 10_000),
            `no ping reply\n${fz.describe()}\n${wg.describe()}`,
          );
          assert.ok(await wg.waitFor(/Sending handshake initiation/, 1000), wg.describe());
          assert.ok(await wg.waitFor(/Received handshake response/, 1000), wg.describe());
          assert.ok(await fz.waitFor(/Received handshake initiation, sending response/, 1000), fz.describe());
          assert.ok(await wgLatestHandshake() > 0, "wireguard-go reports no handshake");

          assert.equal(await pingCount(NS_WG, TUN4_FZ, 5), 5, "IPv4 ping wireguard-go -> fz-gateway");
          assert.equal(await pingCount(NS_FZ, TUN4_WG, 5), 5, "IPv4 ping fz-gateway -> wireguard-go");
          assert.equal(await pingCount(NS_WG, TUN6_FZ, 5), 5, "IPv6 ping wireguard-go -> fz-gateway");
          assert.equal(await pingCount(NS_FZ, TUN6_WG, 5), 5, "IPv6 ping fz-gateway -> wireguard-go");
          // Full-size packets: 1280-byte IPv4 and IPv6 packets fill the tunnel MTU exactly.
          assert.equal(await pingCount(NS_WG, TUN4_FZ, 3, 1280 - 28), 3, "1280-byte IPv4 ping");
          assert.equal(await pingCount(NS_FZ, TUN6_WG, 3, 1280 - 48), 3, "1280-byte IPv6 ping");

          const up = await tcpTransfer(NS_WG, NS_FZ, TUN4_FZ, 5001);
          assert.equal(up.received.bytes, TRANSFER_BYTES, "TCP wireguard-go -> fz-gateway: byte count");
          assert.equal(up.received.sha256, up.sent.sha256, "TCP wireguard-go -> fz-gateway: sha256");
          const down = await tcpTransfer(NS_FZ, NS_WG, TUN6_WG, 5002);
          assert.equal(
            down.received.bytes,
            TRANSFER_BYTES,
            "TCP fz-gateway -> wireguard-go (IPv6): byte count",
          );
          assert.equal(
            down.received.sha256,
            down.sent.sha256,
            "TCP fz-gateway -> wireguard-go (IPv6): sha256",
          );

          await udpEcho(NS_WG, NS_FZ, [TUN4_FZ, TUN6_FZ]);
          await udpEcho(NS_FZ, NS_WG, [TUN4_WG]);
        } finally {
          procs.length = 0;
          await wg.stop();
          await stopFz(fz);
        }
      });

      await t.step("fz-gateway initiates to wireguard-go (Endpoint + traffic from our side)", async () => {
        const wgKeys = await genKeys();
        const fzKeys = await genKeys();
        const wg = await startWireguardGo(wgKeys, { peerPub: fzKeys.pub });
        procs.push(wg);
        const fz = await startFzGateway(fzKeys, {
          peerPub: wgKeys.pub,
          endpoint: `${UNDERLAY_WG}:${WG_PORT}`,
        }, dir);
        procs.push(fz);
        try {
          assert.ok(
            await pingUntilUp(NS_FZ, TUN4_WG, 10_000),
            `no ping reply\n${fz.describe()}\n${wg.describe()}`,
          );
          assert.ok(await fz.waitFor(/Sending handshake initiation/, 1000), fz.describe());
          assert.ok(
            await fz.waitFor(/Received handshake response, session established/, 1000),
            fz.describe(),
          );
          assert.ok(await wg.waitFor(/Received handshake initiation/, 1000), wg.describe());
          assert.ok(await wgLatestHandshake() > 0, "wireguard-go reports no handshake");
          assert.match(await wgEndpoint(), new RegExp(`^${UNDERLAY_FZ.replaceAll(".", "\\.")}:\\d+$`));
          assert.equal(await pingCount(NS_FZ, TUN6_WG, 5), 5, "IPv6 ping fz-gateway -> wireguard-go");
          // wireguard-go has no Endpoint of its own: it answers to the one it learned from us.
          assert.equal(await pingCount(NS_WG, TUN4_FZ, 5), 5, "IPv4 ping wireguard-go -> fz-gateway");
        } finally {
          procs.length = 0;
          await wg.stop();
          await stopFz(fz);
        }
      });
    } finally {
      for (const p of procs) await p.stop(2000);
      await cleanupNamespaces();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "fz-gateway standalone: an unknown public key or a wrong PresharedKey gives no session and a log line",
  ignore: SKIP !== null,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "fzwgi-" });
    const procs: Proc[] = [];
    try {
      await setupNamespaces();

      await t.step("wireguard-go's key is not a configured peer", async () => {
        const wgKeys = await genKeys();
        const fzKeys = await genKeys();
        const otherKeys = await genKeys();
        const fz = await startFzGateway(fzKeys, { peerPub: otherKeys.pub, listenPort: FZ_PORT }, dir);
        procs.push(fz);
        const wg = await startWireguardGo(wgKeys, {
          peerPub: fzKeys.pub,
          endpoint: `${UNDERLAY_FZ}:${FZ_PORT}`,
        });
        procs.push(wg);
        try {
          assert.ok(!await pingUntilUp(NS_WG, TUN4_FZ, 3000), "a ping got through with an unknown key");
          assert.ok(await wg.waitFor(/Sending handshake initiation/, 1000), wg.describe());
          assert.equal(await wgLatestHandshake(), 0, "wireguard-go completed a handshake");
          assert.ok(
            hasLine(fz.stdout, /handshake/i, /unknown|not configured|no peer/i),
            `fz-gateway logged nothing about the unknown key\n${fz.describe()}`,
          );
        } finally {
          procs.length = 0;
          await wg.stop();
          await stopFz(fz);
        }
      });

      await t.step("PresharedKeys differ (fz-gateway initiates, the response fails)", async () => {
        const wgKeys = await genKeys();
        const fzKeys = await genKeys();
        const wg = await startWireguardGo(wgKeys, { peerPub: fzKeys.pub, psk: await genPsk() });
        procs.push(wg);
        const fz = await startFzGateway(fzKeys, {
          peerPub: wgKeys.pub,
          psk: await genPsk(),
          endpoint: `${UNDERLAY_WG}:${WG_PORT}`,
        }, dir);
        procs.push(fz);
        try {
          assert.ok(!await pingUntilUp(NS_FZ, TUN4_WG, 3000), "a ping got through with a wrong PresharedKey");
          // The initiation does not depend on the PSK, so wireguard-go answers it; the response then
          // fails at our end.
          assert.ok(await wg.waitFor(/Received handshake initiation/, 1000), wg.describe());
          assert.equal(await wgLatestHandshake(), 0, "wireguard-go completed a handshake");
          assert.ok(!/session established/.test(fz.stdout), fz.describe());
          assert.ok(
            hasLine(fz.stdout, /handshake/i, /fail|invalid|decrypt|authenticat|reject|wrong|mismatch/i),
            `fz-gateway logged nothing about the failed handshake response\n${fz.describe()}`,
          );
        } finally {
          procs.length = 0;
          await wg.stop();
          await stopFz(fz);
        }
      });
    } finally {
      for (const p of procs) await p.stop(2000);
      await cleanupNamespaces();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
