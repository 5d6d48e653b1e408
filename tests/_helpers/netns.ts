/**
 * Network namespaces for tests that run the gateway as a subprocess: the gateway creates a real TUN
 * device, policy rules and routes, so it must not run in the host's namespace. Each namespace gets a
 * veth link to the test's (root) namespace: `hostIp` is on our side, `nsIp` inside, with a default
 * route back to us, so a stub portal bound to `hostIp` is reachable from the gateway and the gateway's
 * health port (bound to `nsIp`) is reachable from the test.
 *
 * Root only: callers compute `ignore` from {@link canUseNetns}.
 */

/** True when this process may create network namespaces and TUN devices (root, `ip` present). */
export const canUseNetns: boolean = (() => {
  try {
    if (Deno.uid() !== 0) return false;
    return new Deno.Command("ip", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
})();

/** Why namespace tests are skipped (printed by the tests that are). */
export const NETNS_SKIP_REASON = "needs root and iproute2 to create network namespaces and a TUN device";

let counter = 0;

export interface TestNetns {
  readonly name: string;
  readonly hostIp: string;
  readonly nsIp: string;
  /** Command prefix that runs a program inside the namespace. */
  readonly exec: readonly string[];
  /** Runs `ip <args>` inside the namespace and returns stdout (throws on failure). */
  ip(...args: string[]): string;
}

/** Options of {@link withNetns}. */
export interface WithNetnsOptions {
  /** Prefix of the namespace name (default `fzt`); the name is `<prefix><pid % 10000>_<n>`. */
  readonly prefix?: string;
}

/** Creates a namespace linked to ours, runs `fn`, and removes it (also when `fn` throws). */
export async function withNetns<T>(
  fn: (ns: TestNetns) => Promise<T>,
  options: WithNetnsOptions = {},
): Promise<T> {
  const k = (Deno.pid * 7 + counter++) % 250 + 1;
  const name = `${options.prefix ?? "fzt"}${Deno.pid % 10000}_${counter}`;
  const hostIf = `fzh${Deno.pid % 10000}${counter}`;
  const nsIf = `fzn${Deno.pid % 10000}${counter}`;
  const hostIp = `10.213.${k}.1`;
  const nsIp = `10.213.${k}.2`;
  const run = (args: string[]) => {
    const r = new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).outputSync();
    if (!r.success) throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(r.stderr).trim()}`);
    return new TextDecoder().decode(r.stdout);
  };
  run(["netns", "add", name]);
  try {
    run(["link", "add", hostIf, "type", "veth", "peer", "name", nsIf]);
    run(["link", "set", nsIf, "netns", name]);
    run(["addr", "add", `${hostIp}/30`, "dev", hostIf]);
    run(["link", "set", hostIf, "up"]);
    run(["-n", name, "addr", "add", `${nsIp}/30`, "dev", nsIf]);
    run(["-n", name, "link", "set", nsIf, "up"]);
    run(["-n", name, "link", "set", "lo", "up"]);
    run(["-n", name, "route", "add", "default", "via", hostIp]);
    return await fn({
      name,
      hostIp,
      nsIp,
      exec: ["ip", "netns", "exec", name],
      ip: (...args: string[]) => run(["-n", name, ...args]),
    });
  } finally {
    try {
      run(["link", "del", hostIf]);
    } catch { /* gone with the namespace */ }
    run(["netns", "del", name]);
  }
}
