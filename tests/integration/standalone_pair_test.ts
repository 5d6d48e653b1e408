/**
 * Two fz-gateway standalone peers form a tunnel (issue #3: "two fz-gateways can form a tunnel"):
 * separate network namespaces joined by a veth pair, ping both ways over IPv4 and IPv6 through the
 * tunnel, and a clean exit on SIGTERM. Root only.
 */
import assert from "node:assert/strict";
import { canUseNetns, NETNS_SKIP_REASON } from "../_helpers/netns.ts";
import { x25519 } from "@noble/curves/ed25519.js";

const ROOT = new URL("../../", import.meta.url).pathname;

// deno-lint-ignore no-console
if (!canUseNetns) console.log(`standalone_pair_test: skipped: ${NETNS_SKIP_REASON}`);

Deno.test({
  name: "two fz-gateway standalone peers ping each other over IPv4 and IPv6 and exit 0 on SIGTERM",
  ignore: !canUseNetns,
  async fn() {
    const id = `${Deno.pid % 10000}`;
    const [a, b] = [`fzsa${id}`, `fzsb${id}`];
    const dir = await Deno.makeTempDir({ prefix: "fz_standalone_pair_" });
    const procs: Deno.ChildProcess[] = [];
    const logs: string[] = ["", ""];
    try {
      ip("netns", "add", a);
      ip("netns", "add", b);
      ip("link", "add", `${a}v`, "type", "veth", "peer", "name", `${b}v`);
      ip("link", "set", `${a}v`, "netns", a);
      ip("link", "set", `${b}v`, "netns", b);
      ip("-n", a, "addr", "add", "192.0.2.1/24", "dev", `${a}v`);
      ip("-n", b, "addr", "add", "192.0.2.2/24", "dev", `${b}v`);
      for (const [ns, dev] of [[a, `${a}v`], [b, `${b}v`]]) {
        ip("-n", ns!, "link", "set", dev!, "up");
        ip("-n", ns!, "link", "set", "lo", "up");
      }
      const keyA = x25519.utils.randomSecretKey();
      const keyB = x25519.utils.randomSecretKey();
      const psk = crypto.getRandomValues(new Uint8Array(32));
      const conf = (priv: Uint8Array, peer: Uint8Array, addr: string, allowed: string, endpoint: string) =>
        `[Interface]\nPrivateKey = ${priv.toBase64()}\nListenPort = 51820\nAddress = ${addr}\n` +
        `[Peer]\nPublicKey = ${x25519.getPublicKey(peer).toBase64()}\nPresharedKey = ${psk.toBase64()}\n` +
        `AllowedIPs = ${allowed}\n${endpoint}`;
      await Deno.writeTextFile(
        `${dir}/a.conf`,
        conf(
          keyA,
          keyB,
          "10.66.0.1/24, fd00:66::1/64",
          "10.66.0.2/32, fd00:66::2/128",
          "Endpoint = 192.0.2.2:51820\n",
        ),
      );
      await Deno.writeTextFile(
        `${dir}/b.conf`,
        conf(keyB, keyA, "10.66.0.2/24, fd00:66::2/64", "10.66.0.1/32, fd00:66::1/128", ""),
      );
      for (const [i, ns] of [a, b].entries()) {
        const p = new Deno.Command("ip", {
          args: [
            "netns",
            "exec",
            ns,
            Deno.execPath(),
            "run",
            "-A",
            "main.ts",
            "standalone",
            "-c",
            `${dir}/${i === 0 ? "a" : "b"}.conf`,
          ],
          cwd: ROOT,
          env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        procs.push(p);
        collect(p, (t) => logs[i] += t);
      }
      await waitFor(() => ping(a, "10.66.0.2"), "IPv4 ping from a to b", logs);
      assert.ok(ping(b, "10.66.0.1"), `IPv4 ping b→a\n${logs.join("\n")}`);
      await waitFor(() => ping(a, "fd00:66::2"), "IPv6 ping from a to b", logs);
      for (const p of procs) p.kill("SIGTERM");
      for (const [i, p] of procs.entries()) {
        const status = await p.status;
        assert.equal(status.code, 0, logs[i]);
      }
      assert.match(logs[0]!, /Standalone WireGuard interface up interface=tun-fz0/);
      assert.match(logs[0]!, /Received SIGTERM, shutting down/);
      assert.doesNotMatch(logs.join("\n"), / (WARN|ERROR) /);
    } finally {
      for (const p of procs) {
        try {
          p.kill("SIGKILL");
        } catch { /* exited */ }
      }
      for (const ns of [a, b]) {
        try {
          ip("netns", "del", ns);
        } catch { /* not created */ }
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});

function ip(...args: string[]): void {
  const r = new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).outputSync();
  if (!r.success) throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
}

function ping(ns: string, addr: string): boolean {
  return new Deno.Command("ip", {
    args: ["netns", "exec", ns, "ping", "-c", "1", "-W", "1", addr],
    stdout: "null",
    stderr: "null",
  }).outputSync().success;
}

async function waitFor(probe: () => boolean, what: string, logs: string[]): Promise<void> {
  for (let i = 0; i < 40; i++) {
    if (probe()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out: ${what}\n${logs.join("\n---\n")}`);
}

function collect(p: Deno.ChildProcess, sink: (text: string) => void): void {
  const d = new TextDecoder();
  (async () => {
    for await (const c of p.stdout) sink(d.decode(c));
  })();
  (async () => {
    for await (const c of p.stderr) sink(d.decode(c));
  })();
}
