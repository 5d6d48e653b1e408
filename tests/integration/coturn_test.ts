/**
 * Interop: the sans-IO TURN client against a real coturn (`turnserver`).
 *
 * Topology (root only): coturn runs in its own network namespace `fzturn<pid>`, reached over a veth
 * pair (host 10.251.N.1/30 ↔ namespace 10.251.N.2/30). The test's UDP socket and a UDP echo peer
 * live on the host side. coturn: realm "firezone", long-term credentials with a static user,
 * no TLS/DTLS/CLI, relay ports 49160–49170, allocation lifetime capped at 6 s (so the half-lifetime
 * REFRESH happens after 3 s) and nonces stale after 2 s (so that REFRESH meets a 438 first).
 * FINGERPRINT is not required by this configuration (Firezone's TURN requests carry none).
 *
 * The allocation speaks the RFC 8656 dialect ({@link RelayKind.Rfc8656}): coturn answers a
 * MESSAGE-INTEGRITY without NONCE with 400 and refuses REQUESTED-TRANSPORT in REFRESH.
 */

import assert from "node:assert/strict";
import { configureLogging, Level, type LogRecord } from "../../src/log.ts";
import { SeededRng } from "../../src/rng.ts";
import { Allocation, type AllocationEvent, FreeReason, RelayKind } from "../../src/turn/allocation.ts";
import { type SocketAddr, socketAddr } from "../../src/wire/ip_addr.ts";
import dgram from "node:dgram";

const PID = Deno.pid;
const NS = `fzturn${PID}`;
const VETH_HOST = `fzt${PID}h`;
const VETH_NS = `fzt${PID}n`;
const SUBNET = (PID % 60) * 4;
const HOST_IP = `10.251.73.${SUBNET + 1}`;
const TURN_IP = `10.251.73.${SUBNET + 2}`;
const TURN = socketAddr(TURN_IP, 3478);
const USER = "fzuser";
const PASS = "fzpass";

function which(cmd: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const skipReason = Deno.uid() !== 0
  ? "needs root (network namespaces)"
  : !which("turnserver")
  ? "coturn's turnserver is not installed"
  : !which("ip")
  ? "iproute2 (ip) is not installed"
  : null;
if (skipReason !== null) {
  // deno-lint-ignore no-console
  console.warn(`coturn interop tests skipped: ${skipReason}`);
}

function run(args: string[]): void {
  const r = new Deno.Command(args[0]!, { args: args.slice(1), stdout: "piped", stderr: "piped" })
    .outputSync();
  if (!r.success) {
    throw new Error(`${args.join(" ")} failed: ${new TextDecoder().decode(r.stderr)}`);
  }
}

interface Coturn {
  readonly child: Deno.ChildProcess;
  readonly dir: string;
}

function setUpNamespace(): void {
  run(["ip", "netns", "add", NS]);
  run(["ip", "-n", NS, "link", "set", "lo", "up"]);
  run(["ip", "link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NS]);
  run(["ip", "link", "set", VETH_NS, "netns", NS]);
  run(["ip", "addr", "add", `${HOST_IP}/30`, "dev", VETH_HOST]);
  run(["ip", "link", "set", VETH_HOST, "up"]);
  run(["ip", "-n", NS, "addr", "add", `${TURN_IP}/30`, "dev", VETH_NS]);
  run(["ip", "-n", NS, "link", "set", VETH_NS, "up"]);
}

function startCoturn(): Coturn {
  const dir = Deno.makeTempDirSync({ prefix: "fzturn-" });
  const conf = [
    `listening-ip=${TURN_IP}`,
    `relay-ip=${TURN_IP}`,
    "listening-port=3478",
    "min-port=49160",
    "max-port=49170",
    "realm=firezone",
    "lt-cred-mech",
    `user=${USER}:${PASS}`,
    "max-allocate-lifetime=6",
    "stale-nonce=2",
    "no-tls",
    "no-dtls",
    "no-cli",
    "no-tcp-relay",
    "allow-loopback-peers",
    `log-file=${dir}/turnserver.log`,
    "simple-log",
    "no-stdout-log",
    `pidfile=${dir}/turnserver.pid`,
    `userdb=${dir}/turndb`,
  ].join("\n");
  Deno.writeTextFileSync(`${dir}/turnserver.conf`, conf + "\n");
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", NS, "turnserver", "-c", `${dir}/turnserver.conf`],
    stdout: "null",
    stderr: "null",
    stdin: "null",
  }).spawn();
  return { child, dir };
}

async function stopCoturn(coturn: Coturn | null): Promise<void> {
  if (coturn === null) return;
  try {
    coturn.child.kill("SIGTERM");
  } catch { /* already gone */ }
  const timer = setTimeout(() => {
    try {
      coturn.child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, 3_000);
  await coturn.child.status;
  clearTimeout(timer);
}

function tearDownNamespace(): void {
  // Deleting the namespace also removes both ends of the veth pair.
  try {
    run(["ip", "netns", "del", NS]);
  } catch { /* not created */ }
  try {
    run(["ip", "link", "del", VETH_HOST]);
  } catch { /* already gone */ }
}

function logTail(coturn: Coturn | null): string {
  if (coturn === null) return "";
  try {
    return Deno.readTextFileSync(`${coturn.dir}/turnserver.log`).split("\n").slice(-30).join("\n");
  } catch {
    return "(no coturn log)";
  }
}

/** A bound node:dgram UDP socket with a promise-based receive queue. */
class UdpSocket {
  readonly sock: dgram.Socket;
  readonly #queue: [Uint8Array, SocketAddr][] = [];
  #wake: (() => void) | null = null;

  private constructor(sock: dgram.Socket) {
    this.sock = sock;
    sock.on("message", (msg, rinfo) => {
      this.#queue.push([new Uint8Array(msg), socketAddr(rinfo.address, rinfo.port)]);
      this.#wake?.();
    });
  }

  static async bind(hostname: string): Promise<UdpSocket> {
    const sock = dgram.createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      sock.once("error", reject);
      sock.bind(0, hostname, () => resolve());
    });
    return new UdpSocket(sock);
  }

  get addr(): SocketAddr {
    const a = this.sock.address();
    return socketAddr(a.address, a.port);
  }

  send(data: Uint8Array, to: SocketAddr): Promise<void> {
    return new Promise((resolve, reject) =>
      this.sock.send(data, to.port, to.ip, (err) => err ? reject(err) : resolve())
    );
  }

  /** The next datagram, or null after `timeoutMs`. */
  async receive(timeoutMs: number): Promise<[Uint8Array, SocketAddr] | null> {
    if (this.#queue.length === 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, timeoutMs);
      });
      clearTimeout(timer);
      this.#wake = null;
    }
    return this.#queue.shift() ?? null;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      try {
        this.sock.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}

/** Drives one Allocation over a real UDP socket: transmits, receives, timers, events. */
class Driver {
  readonly udp: UdpSocket;
  readonly local: SocketAddr;
  readonly events: AllocationEvent[] = [];
  readonly received: { peer: SocketAddr; relayAddr: SocketAddr; payload: Uint8Array }[] = [];
  readonly alloc: Allocation;
  readonly #t0 = performance.now();

  private constructor(udp: UdpSocket, password: string, seed: number) {
    this.udp = udp;
    this.local = udp.addr;
    this.alloc = new Allocation({
      server: { v4: TURN },
      username: USER,
      password,
      sessionId: "0123456789ABCDEF".repeat(4),
      rng: new SeededRng(seed),
      now: this.now(),
      relayKind: RelayKind.Rfc8656,
    });
  }

  static async create(password: string, seed: number): Promise<Driver> {
    return new Driver(await UdpSocket.bind(HOST_IP), password, seed);
  }

  now(): number {
    return performance.now() - this.#t0;
  }

  async flush(): Promise<void> {
    for (let t = this.alloc.pollTransmit(); t !== undefined; t = this.alloc.pollTransmit()) {
      await this.udp.send(t.payload, t.destination);
    }
    for (let e = this.alloc.pollEvent(); e !== undefined; e = this.alloc.pollEvent()) this.events.push(e);
  }

  /** Runs the loop until `done()` or `timeoutMs`; returns whether `done()` became true. */
  async runUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = this.now() + timeoutMs;
    for (;;) {
      await this.flush();
      if (done()) return true;
      const now = this.now();
      if (now >= deadline) return false;
      const wait = Math.max(0, Math.min(this.alloc.pollTimeout() - now, deadline - now, 50));
      const got = await this.udp.receive(wait);
      if (got === null) {
        this.alloc.handleTimeout(this.now());
        continue;
      }
      this.#handleDatagram(got[0], got[1]);
    }
  }

  /** Sends `payload` to `peer` through the relay (ChannelData). Returns the channel or -1. */
  async sendToPeer(peer: SocketAddr, payload: Uint8Array): Promise<number> {
    const buf = new Uint8Array(payload.length + 4);
    buf.set(payload, 4);
    const channel = this.alloc.encodeToPeer(peer, buf, 4, payload.length, this.now());
    if (channel >= 0) await this.udp.send(buf, this.alloc.activeSocket!);
    await this.flush();
    return channel;
  }

  close(): Promise<void> {
    return this.udp.close();
  }

  #handleDatagram(data: Uint8Array, from: SocketAddr): void {
    const now = this.now();
    if (data[0]! >= 0x40 && data[0]! <= 0x4f) {
      const d = this.alloc.decapsulate(from, data, 0, data.length, now);
      if (d !== null) {
        this.received.push({
          peer: d.peer,
          relayAddr: d.relayAddr,
          payload: data.slice(d.payloadOff, d.payloadOff + d.payloadLen),
        });
      }
      return;
    }
    this.alloc.handleInput(from, this.local, data, now);
  }
}

/** A UDP echo peer on the host side; records the source addresses it saw. */
class EchoPeer {
  readonly udp: UdpSocket;
  readonly addr: SocketAddr;
  readonly sources: SocketAddr[] = [];
  #closed = false;
  readonly #done: Promise<void>;

  private constructor(udp: UdpSocket) {
    this.udp = udp;
    this.addr = udp.addr;
    this.#done = this.#loop();
  }

  static async create(): Promise<EchoPeer> {
    return new EchoPeer(await UdpSocket.bind(HOST_IP));
  }

  async #loop(): Promise<void> {
    while (!this.#closed) {
      const got = await this.udp.receive(50);
      if (got === null) continue;
      this.sources.push(got[1]);
      await this.udp.send(got[0], got[1]);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#done;
    await this.udp.close();
  }
}

Deno.test({
  name:
    "coturn: allocate, refresh (through a stale nonce), channel bind, relay data both ways; wrong password",
  ignore: skipReason !== null,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    let coturn: Coturn | null = null;
    let driver: Driver | null = null;
    let wrong: Driver | null = null;
    let echo: EchoPeer | null = null;
    const logs: LogRecord[] = [];
    configureLogging({
      sink: (r) => logs.push(r),
      filter: (target) => target === "fz_gateway::turn" ? Level.Debug : Level.Off,
    });
    const reauths = () => logs.filter((r) => r.message === "Request failed, re-authenticating");
    try {
      setUpNamespace();
      coturn = startCoturn();
      const d = await Driver.create(PASS, 1);
      driver = d;
      const peer = await EchoPeer.create();
      echo = peer;

      // Allocation (coturn may need a moment to start: the BINDING retransmissions cover it).
      const allocated = await d.runUntil(() => d.alloc.hasAllocation(), 8_000);
      assert.ok(allocated, `no allocation from coturn\n${logTail(coturn)}`);
      const relay = d.alloc.relayCandidates();
      assert.equal(relay.length, 1, "IPv4 relayed address only (coturn has no IPv6 relay address here)");
      assert.equal(relay[0]!.addr.ip, TURN_IP);
      assert.ok(relay[0]!.addr.port >= 49160 && relay[0]!.addr.port <= 49170);
      const kinds = d.events.map((e) => e.type === "new_candidate" ? e.candidate.kind : e.type);
      assert.deepEqual(kinds, ["host", "srflx", "relay"]);
      const srflx = d.events[1]!;
      assert.ok(srflx.type === "new_candidate");
      assert.deepEqual(srflx.candidate.addr, d.local, "no NAT: srflx equals the local address");
      const firstExpiry = d.alloc.expiresAt();
      assert.ok(firstExpiry - d.now() <= 6_000 + 100, "coturn capped the lifetime at 6 s");

      // Channel bind to the echo peer.
      d.alloc.bindChannel(peer.addr, d.now());
      assert.ok(
        await d.runUntil(() => d.alloc.boundChannel(peer.addr, d.now()) >= 0, 4_000),
        `channel not bound\n${logTail(coturn)}`,
      );

      // Data both ways, including lengths that are not multiples of 4 (no padding either way).
      for (const text of ["ping-1", "ping-two", "p3"]) {
        const channel = await d.sendToPeer(peer.addr, new TextEncoder().encode(text));
        assert.equal(channel, 0x4000);
        const before = d.received.length;
        assert.ok(await d.runUntil(() => d.received.length > before, 2_000), `no echo for ${text}`);
        const got = d.received.at(-1)!;
        assert.equal(new TextDecoder().decode(got.payload), text);
        assert.deepEqual(got.peer, peer.addr);
        assert.deepEqual(got.relayAddr, relay[0]!.addr);
      }
      assert.deepEqual(peer.sources.at(-1), relay[0]!.addr, "the peer sees our relayed address");

      // The half-lifetime REFRESH (at ~3 s, after the nonce went stale) keeps the allocation alive.
      assert.ok(
        await d.runUntil(() => d.alloc.expiresAt() > firstExpiry, 5_000),
        `no refresh\n${logTail(coturn)}`,
      );
      assert.ok(d.alloc.hasAllocation());
      const staleNonce = reauths().filter((r) => r.fields?.["code"] === 438);
      assert.ok(
        staleNonce.length >= 1,
        "coturn's stale nonce (438) was answered with a re-authenticated request",
      );
      // A proactive refresh succeeds too.
      const beforeProactive = d.alloc.expiresAt();
      d.alloc.refresh(d.now());
      assert.ok(await d.runUntil(() => d.alloc.expiresAt() > beforeProactive, 3_000));
      // The channel still relays after the refreshes.
      const before = d.received.length;
      await d.sendToPeer(peer.addr, new TextEncoder().encode("after-refresh"));
      assert.ok(await d.runUntil(() => d.received.length > before, 2_000));
      assert.ok(!d.events.some((e) => e.type === "freed" || e.type === "invalid_candidate"));

      // A wrong password is reported clearly.
      const w = await Driver.create("not-the-password", 2);
      wrong = w;
      const freed = () => w.events.find((e) => e.type === "freed");
      assert.ok(await w.runUntil(() => freed() !== undefined, 5_000), "wrong password not reported");
      const f = freed()!;
      assert.ok(f.type === "freed");
      assert.equal(f.reason, FreeReason.AuthenticationError);
      assert.match(f.message, /credentials/);
      assert.ok(!w.alloc.hasAllocation());
    } finally {
      configureLogging({ sink: () => {}, filter: () => Level.Info });
      await driver?.close();
      await wrong?.close();
      await echo?.close();
      await stopCoturn(coturn);
      tearDownNamespace();
      if (coturn !== null) Deno.removeSync(coturn.dir, { recursive: true });
    }
  },
});
