/**
 * `scripts/setup-host.sh` (spec §4.10, §1.1). The option/dry-run tests need only bash. The real run
 * needs root, `ip` and `nft`: it runs inside a fresh network namespace (sysctls under
 * /proc/sys/net and nftables are per namespace), checks the sysctls and the table, runs again
 * (idempotent), then `--remove`s and checks that the table is gone and the sysctls are back.
 *
 * @module
 */

import assert from "node:assert/strict";

const SCRIPT = new URL("../../scripts/setup-host.sh", import.meta.url).pathname;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const SYSCTL_FILES: Record<string, string> = {
  "net.ipv4.ip_forward": "/proc/sys/net/ipv4/ip_forward",
  "net.ipv4.conf.all.src_valid_mark": "/proc/sys/net/ipv4/conf/all/src_valid_mark",
  "net.ipv6.conf.all.disable_ipv6": "/proc/sys/net/ipv6/conf/all/disable_ipv6",
  "net.ipv6.conf.all.forwarding": "/proc/sys/net/ipv6/conf/all/forwarding",
  "net.ipv6.conf.default.forwarding": "/proc/sys/net/ipv6/conf/default/forwarding",
};
const EXPECTED_SYSCTLS: Record<string, string> = {
  "net.ipv4.ip_forward": "1",
  "net.ipv4.conf.all.src_valid_mark": "1",
  "net.ipv6.conf.all.disable_ipv6": "0",
  "net.ipv6.conf.all.forwarding": "1",
  "net.ipv6.conf.default.forwarding": "1",
};

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: Record<string, string> = {}): Run {
  const out = new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).outputSync();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

function commandWorks(cmd: string, args: string[]): boolean {
  try {
    return new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

function rootSkipReason(): string | null {
  if (Deno.build.os !== "linux") return "needs Linux network namespaces";
  try {
    if (Deno.uid() !== 0) return "needs root (network namespace, sysctls, nftables)";
  } catch {
    return "needs --allow-sys to check for root";
  }
  if (!commandWorks("ip", ["-V"])) return "needs iproute2 (`ip`)";
  if (!commandWorks("nft", ["--version"])) return "needs nftables (`nft`): apt-get install -y nftables";
  return null;
}

const ROOT_SKIP = rootSkipReason();
if (ROOT_SKIP) {
  Deno.stderr.writeSync(encoder.encode(`setup_host_test.ts: netns test skipped: ${ROOT_SKIP}\n`));
}

Deno.test("setup-host.sh --help describes the options", () => {
  const r = run("bash", [SCRIPT, "--help"]);
  assert.equal(r.code, 0);
  for (const opt of ["--tun", "--egress", "--table", "--remove", "--dry-run", "--state-file"]) {
    assert.ok(r.stdout.includes(opt), `mentions ${opt}`);
  }
});

Deno.test("setup-host.sh --dry-run prints the default ruleset and sysctls", () => {
  const r = run("bash", [SCRIPT, "--dry-run"]);
  assert.equal(r.code, 0, r.stderr);
  for (const [key, value] of Object.entries(EXPECTED_SYSCTLS)) {
    assert.ok(r.stdout.includes(`# sysctl ${key}=${value}\n`), `${key}=${value}`);
  }
  assert.match(r.stdout, /^table inet fz_gateway \{$/m);
  assert.match(r.stdout, /type filter hook forward priority filter; policy accept;/);
  assert.match(r.stdout, /^\s+iifname "tun-firezone" accept$/m);
  assert.match(r.stdout, /^\s+oifname "tun-firezone" accept$/m);
  assert.match(r.stdout, /type nat hook postrouting priority srcnat; policy accept;/);
  for (const p of ["e*", "w*"]) {
    assert.ok(r.stdout.includes(`ip saddr 100.64.0.0/11 oifname "${p}" masquerade`));
    assert.ok(r.stdout.includes(`ip6 saddr fd00:2021:1111::/107 oifname "${p}" masquerade`));
  }
});

Deno.test("setup-host.sh takes the TUN name, patterns and table from flags and the environment", () => {
  const fromEnv = run("bash", [SCRIPT, "--dry-run", "--no-sysctl"], {
    FZ_TUN_NAME: "tun-test",
    FZ_EGRESS_IFACES: "ens3 bond*",
    FZ_NFT_TABLE: "fz_test",
  });
  assert.equal(fromEnv.code, 0, fromEnv.stderr);
  assert.ok(!fromEnv.stdout.includes("# sysctl"));
  assert.match(fromEnv.stdout, /^table inet fz_test \{$/m);
  assert.ok(fromEnv.stdout.includes('iifname "tun-test" accept'));
  assert.ok(fromEnv.stdout.includes('ip saddr 100.64.0.0/11 oifname "ens3" masquerade'));
  assert.ok(fromEnv.stdout.includes('ip6 saddr fd00:2021:1111::/107 oifname "bond*" masquerade'));
  assert.ok(!fromEnv.stdout.includes('"e*"'));

  const fromFlags = run("bash", [SCRIPT, "--dry-run", "--tun", "tun9", "--egress", "eth1"], {
    FZ_EGRESS_IFACES: "ignored*",
  });
  assert.equal(fromFlags.code, 0, fromFlags.stderr);
  assert.ok(fromFlags.stdout.includes('oifname "tun9" accept'));
  assert.ok(fromFlags.stdout.includes('oifname "eth1" masquerade'));
  assert.ok(!fromFlags.stdout.includes("ignored"));
});

Deno.test("setup-host.sh rejects names that could inject nft syntax and unknown flags", () => {
  for (const args of [["--egress", 'eth0" accept'], ["--tun", "a;b"], ["--table", "x y"], ["--bogus"]]) {
    const r = run("bash", [SCRIPT, "--dry-run", ...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.ok(r.stderr.length > 0);
  }
});

function nsRun(ns: string, args: string[], env: Record<string, string> = {}): Run {
  return run("ip", ["netns", "exec", ns, ...args], env);
}

function readSysctls(ns: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, file] of Object.entries(SYSCTL_FILES)) {
    const r = nsRun(ns, ["cat", file]);
    assert.equal(r.code, 0, r.stderr);
    out[key] = r.stdout.trim();
  }
  return out;
}

Deno.test({
  name: "setup-host.sh in a fresh netns: sysctls, nft table, idempotent, --remove restores",
  ignore: ROOT_SKIP !== null,
  fn: () => {
    const ns = `fzhost-${Deno.pid}-${Math.floor(Math.random() * 1e6)}`;
    const dir = Deno.makeTempDirSync({ prefix: "fzhost_" });
    const env = { FZ_STATE_FILE: `${dir}/state` };
    assert.equal(run("ip", ["netns", "add", ns]).code, 0);
    try {
      const before = readSysctls(ns);
      assert.equal(before["net.ipv4.ip_forward"], "0", "a fresh namespace starts without forwarding");

      const first = nsRun(ns, ["bash", SCRIPT], env);
      assert.equal(first.code, 0, first.stderr);
      assert.deepEqual(readSysctls(ns), EXPECTED_SYSCTLS);

      const listed = nsRun(ns, ["nft", "list", "table", "inet", "fz_gateway"]);
      assert.equal(listed.code, 0, listed.stderr);
      const rules = listed.stdout.split("\n").map((l) => l.trim());
      for (
        const rule of [
          "type filter hook forward priority filter; policy accept;",
          'iifname "tun-firezone" accept',
          'oifname "tun-firezone" accept',
          "type nat hook postrouting priority srcnat; policy accept;",
          'ip saddr 100.64.0.0/11 oifname "e*" masquerade',
          'ip saddr 100.64.0.0/11 oifname "w*" masquerade',
          'ip6 saddr fd00:2021:1111::/107 oifname "e*" masquerade',
          'ip6 saddr fd00:2021:1111::/107 oifname "w*" masquerade',
        ]
      ) {
        assert.equal(rules.filter((l) => l === rule).length, 1, `exactly one "${rule}"`);
      }

      const second = nsRun(ns, ["bash", SCRIPT], env);
      assert.equal(second.code, 0, second.stderr);
      const relisted = nsRun(ns, ["nft", "list", "ruleset"]);
      assert.equal(relisted.stdout, listed.stdout, "second run leaves the same, single table");
      assert.deepEqual(readSysctls(ns), EXPECTED_SYSCTLS);

      const removed = nsRun(ns, ["bash", SCRIPT, "--remove"], env);
      assert.equal(removed.code, 0, removed.stderr);
      assert.notEqual(nsRun(ns, ["nft", "list", "table", "inet", "fz_gateway"]).code, 0, "table gone");
      assert.equal(nsRun(ns, ["nft", "list", "ruleset"]).stdout.trim(), "");
      assert.deepEqual(readSysctls(ns), before, "sysctls restored");

      const again = nsRun(ns, ["bash", SCRIPT, "--remove"], env);
      assert.equal(again.code, 0, "removing twice is fine");
    } finally {
      run("ip", ["netns", "del", ns]);
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
