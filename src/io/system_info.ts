/**
 * Facts about the host for the User-Agent, the start-up log line and the DNS forwarder:
 * `/etc/os-release` (falling back to `/usr/lib/os-release`), the kernel release from
 * `/proc/sys/kernel/osrelease`, the architecture, the hostname, the uptime and `/etc/resolv.conf`.
 *
 * @module
 */

import { parseResolvConf as parseResolvConfText } from "../dns/resolv_conf.ts";
import { osFromOsRelease, type OsInfo, parseOsRelease } from "../portal/user_agent.ts";

/** OS facts for {@link formatUserAgent}; never throws (unknown parts become `Linux`/`Unknown`/null). */
export function readOsInfo(): OsInfo {
  const osRelease = readFirst(["/etc/os-release", "/usr/lib/os-release"]);
  const { osType, osVersion } = osFromOsRelease(osRelease === null ? {} : parseOsRelease(osRelease));
  const kernel = readFirst(["/proc/sys/kernel/osrelease"])?.trim() ?? null;
  return { osType, osVersion, arch: Deno.build.arch, kernelRelease: kernel === "" ? null : kernel };
}

/** The hostname, or null when it cannot be determined. */
export function readHostname(): string | null {
  try {
    const name = Deno.hostname().trim();
    return name === "" ? null : name;
  } catch {
    return null;
  }
}

/** Seconds since boot (first field of `/proc/uptime`), or null. */
export function readUptimeSeconds(): number | null {
  const text = readFirst(["/proc/uptime"]);
  const v = text === null ? NaN : Number(text.split(" ")[0]);
  return Number.isFinite(v) ? Math.floor(v) : null;
}

/** `nameserver` addresses of a resolv.conf text, in order (zone ids dropped). */
export function parseResolvConf(text: string): string[] {
  return parseResolvConfText(text, { requireNameserver: false }).nameservers.map((ns) => ns.ip);
}

/**
 * The nameservers of `/etc/resolv.conf` (upstream startup step 9).
 * @throws Error `Failed to read /etc/resolv.conf: ...` when the file cannot be read (fatal upstream)
 */
export function readNameservers(path = "/etc/resolv.conf"): string[] {
  try {
    return parseResolvConf(Deno.readTextFileSync(path));
  } catch (e) {
    throw new Error(`Failed to read ${path}: ${(e as Error).message}`);
  }
}

function readFirst(paths: readonly string[]): string | null {
  for (const p of paths) {
    try {
      return Deno.readTextFileSync(p);
    } catch {
      // try the next one
    }
  }
  return null;
}
