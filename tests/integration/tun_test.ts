/**
 * TUN device + rtnetlink configuration in a fresh network namespace (root only).
 *
 * Each test creates a namespace `fzffi-<pid>-<n>`, runs tests/integration/tun_netns_child.ts in it
 * (our code opens and configures the TUN, pings the kernel through it, lets the kernel's TCP and
 * UDP-GSO traffic come out of it), checks the result with `ip`, and deletes the namespace.
 */
import assert from "node:assert/strict";
import { ensureTunNode } from "../../ffi/tun_linux.ts";

const CHILD = new URL("./tun_netns_child.ts", import.meta.url).pathname;
const DENO = new URL("../../scripts/deno", import.meta.url).pathname;
const IFNAME = "tun-firezone";

function skipReason(): string | null {
  if (Deno.build.os !== "linux") return "not Linux";
  if (Deno.uid() !== 0) return "not running as root";
  try {
    if (!Deno.statSync("/dev/net/tun").isCharDevice) return "/dev/net/tun is not a character device";
  } catch {
    return "/dev/net/tun is missing";
  }
  try {
    if (!new Deno.Command("ip", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync().success) {
      return "the ip command does not work";
    }
  } catch {
    return "the ip command (iproute2) is not installed";
  }
  return null;
}

const reason = skipReason();
if (reason !== null) {
  // deno-lint-ignore no-console
  console.warn(`tun_test: skipped: ${reason}`);
}

let nsCounter = 0;

function run(args: string[]): string {
  const out = new Deno.Command(args[0]!, { args: args.slice(1), stdout: "piped", stderr: "piped" })
    .outputSync();
  if (!out.success) throw new Error(`${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

function inNs(ns: string, ...args: string[]): string {
  return run(["ip", "netns", "exec", ns, ...args]);
}

interface ChildResult {
  ok: boolean;
  error?: string;
  name: string;
  offloadFlags: number;
  offloadNames: string;
  vnetHdr: boolean;
  txQueueLen: number;
  routesFirst: string[];
  routesSecond: string[];
  link: { mtu: number; txQueueLen: number; up: boolean };
  rules4: number;
  rules6: number;
  rules4AfterDelete: number;
  echo4: boolean;
  echo6: boolean;
  tcpSyn: boolean;
  tcp: {
    segments: number;
    bytes: number;
    badChecksums: number;
    outOfOrder: number;
    maxLen: number;
    payloadOk: boolean;
  };
  inboundSynAck: boolean;
  inbound: { written: number; received: number; intact: boolean; superPackets: number; writes: number };
  gatewaySockets: Array<{ port: number; mark: number; rcvBuf: number; sndBuf: number } | null>;
  udpSent: number;
  udp: { lengths: number[]; bad: number };
  stats: { superPackets: number; checksumsCompleted: number; dropped: number; rxErrors: number };
}

/** Reads the first line of a stream, failing after `ms`. */
async function firstLine(stream: ReadableStream<Uint8Array>, ms: number): Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`child printed no result within ${ms} ms`)), ms);
  });
  try {
    while (!text.includes("\n")) {
      const { value, done } = await Promise.race([reader.read(), timeout]);
      if (done) break;
      text += value;
    }
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
  return text.split("\n")[0]!;
}

/**
 * Runs the child in a fresh namespace, hands its result and an `inspect` window (while the TUN is
 * still open) to `check`, and always cleans up.
 */
async function withChild(offload: boolean, check: (ns: string, result: ChildResult) => void): Promise<void> {
  const ns = `fzffi-${Deno.pid}-${nsCounter++}`;
  run(["ip", "netns", "add", ns]);
  let child: Deno.ChildProcess | null = null;
  try {
    inNs(ns, "ip", "link", "set", "lo", "up");
    child = new Deno.Command("ip", {
      args: ["netns", "exec", ns, DENO, "run", "--allow-all", CHILD, IFNAME, offload ? "1" : "0"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderrText = new Response(child.stderr).text();
    let line: string;
    try {
      line = await firstLine(child.stdout, 60_000);
    } catch (error) {
      child.kill("SIGKILL");
      throw new Error(
        `${error instanceof Error ? error.message : error}\nchild stderr:\n${await stderrText}`,
      );
    }
    if (line === "") throw new Error(`child produced no output; stderr:\n${await stderrText}`);
    const result = JSON.parse(line) as ChildResult;
    try {
      check(ns, result);
    } finally {
      await child.stdin.close();
      const status = await child.status;
      child = null;
      await stderrText;
      assert.ok(status.success, `child exited with ${status.code}`);
    }
  } finally {
    if (child !== null) {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
    }
    run(["ip", "netns", "del", ns]);
  }
}

/** Checks shared by both modes: netlink configuration as `ip` sees it, and the kernel round-trips. */
function checkCommon(ns: string, r: ChildResult): void {
  assert.ok(r.ok, r.error);
  assert.equal(r.name, IFNAME);
  assert.equal(r.txQueueLen, 10_000);

  const link = inNs(ns, "ip", "-d", "link", "show", "dev", IFNAME);
  assert.match(link, /mtu 1280 /);
  assert.match(link, /qlen 10000/);
  assert.match(link, /state UNKNOWN|state UP|,UP[,>]/);
  assert.match(link, /tun type tun pi off/);
  assert.match(link, /multi_queue (on|numqueues 1)/);
  assert.match(link, r.vnetHdr ? /vnet_hdr on/ : /vnet_hdr off/);

  const addr = inNs(ns, "ip", "addr", "show", "dev", IFNAME);
  assert.match(addr, /inet 100\.64\.0\.2\/32 /);
  assert.match(addr, /inet6 fd00:2021:1111::2\/128 /);
  assert.doesNotMatch(addr, /inet6 fe80/, "all other addresses were flushed before link up");

  for (const family of ["-4", "-6"]) {
    const rules = inNs(ns, "ip", family, "-d", "rule", "show");
    const matching = rules.split("\n").filter((l) =>
      /not from all fwmark 0xfd002021 lookup 539098368/.test(l)
    );
    assert.equal(matching.length, 1, `one ${family} rule after two configures:\n${rules}`);
    assert.match(matching[0]!, /proto kernel/);
  }

  const routes4 = inNs(ns, "ip", "-4", "route", "show", "table", "0x2021fd00");
  assert.match(routes4, /^100\.64\.0\.0\/11 dev tun-firezone proto static/m);
  assert.doesNotMatch(routes4, /10\.99\.0\.0/, "stale route removed");
  const routes6 = inNs(ns, "ip", "-6", "route", "show", "table", "0x2021fd00");
  assert.match(routes6, /^fd00:2021:1111::\/107 dev tun-firezone proto static/m);
  assert.deepEqual(r.routesFirst.sort(), ["10.99.0.0/16", "100.64.0.0/11"]);
  assert.deepEqual(r.routesSecond, ["100.64.0.0/11"]);

  assert.deepEqual(r.link, { mtu: 1280, txQueueLen: 10_000, up: true });
  assert.equal(r.rules4, 1);
  assert.equal(r.rules6, 1);
  assert.equal(r.rules4AfterDelete, 0);
  assert.ok(r.echo4, "ICMP echo reply read back from the TUN");
  assert.ok(r.echo6, "ICMPv6 echo reply read back from the TUN");

  assert.ok(r.tcpSyn, "the kernel's SYN came out of the TUN");
  assert.ok(r.tcp.segments >= 8, `TCP segments: ${r.tcp.segments}`);
  assert.equal(r.tcp.badChecksums, 0);
  assert.equal(r.tcp.outOfOrder, 0);
  assert.ok(r.tcp.payloadOk, "TCP payload bytes intact");
  assert.ok(r.tcp.maxLen <= 1280, `no packet above the MTU (max ${r.tcp.maxLen})`);

  assert.ok(r.inboundSynAck, "a local server answered a SYN written into the TUN");
  assert.equal(r.inbound.written, 40);
  assert.equal(r.inbound.received, 39_667);
  assert.ok(r.inbound.intact, "the server received the written TCP payload intact");

  // UdpSockets defaults (spec 3.1): both families on 52625, SO_MARK, 10 MiB / 1 MiB (forced past
  // the sysctl caps with CAP_NET_ADMIN; the kernel reports double).
  for (const sock of r.gatewaySockets) {
    assert.ok(sock !== null);
    assert.equal(sock.port, 52625);
    assert.equal(sock.mark, 0xfd002021);
    assert.equal(sock.rcvBuf, 2 * 10 * 1024 * 1024);
    assert.equal(sock.sndBuf, 2 * 1024 * 1024);
  }

  assert.equal(r.udpSent, 8);
  assert.deepEqual(r.udp.lengths, [1000, 1000, 1000, 1000, 1000, 1000, 1000, 77]);
  assert.equal(r.udp.bad, 0);
  assert.equal(r.stats.dropped, 0);
  assert.equal(r.stats.rxErrors, 0);
}

Deno.test({
  name: "TunDevice without offload: netlink configuration, ICMP echo, TCP and UDP through the kernel",
  ignore: reason !== null,
  async fn() {
    await withChild(false, (ns, r) => {
      checkCommon(ns, r);
      assert.equal(r.vnetHdr, false);
      assert.equal(r.offloadFlags, 0);
      assert.equal(r.stats.superPackets, 0);
      assert.equal(r.inbound.superPackets, 0, "no coalescing without offload");
    });
  },
});

Deno.test({
  name:
    "TunDevice with IFF_VNET_HDR offload: negotiation reported, TSO/USO split on read, TCP coalesced on write",
  ignore: reason !== null,
  async fn() {
    await withChild(true, (ns, r) => {
      checkCommon(ns, r);
      assert.equal(r.vnetHdr, true);
      assert.ok((r.offloadFlags & 0x07) === 0x07, `csum|tso4|tso6 negotiated: ${r.offloadNames}`);
      assert.equal(r.offloadNames.startsWith("csum|tso4|tso6"), true);
      assert.ok(
        r.stats.superPackets >= 1,
        `the kernel handed over GSO super-packets (${r.stats.superPackets})`,
      );
    });
  },
});

Deno.test({
  name: "ensureTunNode() creates a missing clone device node (char 10:200, mode 0666, dir 0751)",
  ignore: reason !== null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "fzffi-node-" });
    try {
      const path = `${dir}/net/tun`;
      assert.equal(ensureTunNode(path), true);
      const info = Deno.statSync(path);
      assert.ok(info.isCharDevice);
      assert.equal(info.rdev, 10 * 256 + 200);
      assert.equal(info.mode! & 0o777, 0o666);
      assert.equal(Deno.statSync(`${dir}/net`).mode! & 0o777, 0o751);
      assert.equal(ensureTunNode(path), false, "already there");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
