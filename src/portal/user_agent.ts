/**
 * The `User-Agent` of the portal WebSocket upgrade (spec §2.2):
 * `<os_type>/<os_version> connlib/<version>[ (<arch>; <kernel release>)]`,
 * e.g. `Ubuntu/22.04 connlib/1.4.16 (x86_64; 5.15.0-105-generic)`.
 *
 * The portal takes the space-separated token starting with `connlib/` as the gateway version and
 * routes clients by it (SemVer, ≥ 1.4.0 for current clients), so we advertise the upstream version
 * we are compatible with. Non-ASCII and control characters are stripped. Pure: the OS facts come
 * from `src/io/system_info.ts`.
 *
 * @module
 */

/** The connlib version this gateway speaks (the portal gates features on it). */
export const CONNLIB_VERSION = "1.4.16";

/** OS facts the User-Agent is built from. */
export interface OsInfo {
  /** Display name of the distribution, e.g. `Ubuntu` (see {@link osFromOsRelease}). */
  readonly osType: string;
  /** Distribution version, e.g. `22.04`; `Unknown` when not known. */
  readonly osVersion: string;
  /** Machine architecture, e.g. `x86_64`, `aarch64`; null when unknown. */
  readonly arch: string | null;
  /** Kernel release (`/proc/sys/kernel/osrelease`), e.g. `6.8.0-45-generic`; null when unknown. */
  readonly kernelRelease: string | null;
}

/** Formats the User-Agent header value. */
export function formatUserAgent(info: OsInfo, connlibVersion: string = CONNLIB_VERSION): string {
  let extra = "";
  if (info.arch !== null && info.kernelRelease !== null) extra = ` (${info.arch}; ${info.kernelRelease})`;
  else if (info.arch !== null) extra = ` (${info.arch})`;
  else if (info.kernelRelease !== null) extra = ` (${info.kernelRelease})`;
  return stripNonAscii(`${info.osType}/${info.osVersion} connlib/${connlibVersion}${extra}`);
}

/** Removes everything outside printable ASCII (0x20..0x7e). */
export function stripNonAscii(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "");
}

/** Display names of distribution IDs (as the Rust `os_info` crate prints them). */
const OS_NAMES: Readonly<Record<string, string>> = {
  almalinux: "AlmaLinux",
  alpine: "Alpine Linux",
  amzn: "Amazon Linux AMI",
  arch: "Arch Linux",
  centos: "CentOS",
  debian: "Debian",
  fedora: "Fedora",
  linuxmint: "Linux Mint",
  nixos: "NixOS",
  ol: "OracleLinux",
  opensuse: "openSUSE",
  "opensuse-leap": "openSUSE",
  "opensuse-tumbleweed": "openSUSE",
  raspbian: "Raspbian",
  rhel: "Red Hat Enterprise Linux",
  rocky: "Rocky Linux",
  sles: "SUSE Linux Enterprise Server",
  ubuntu: "Ubuntu",
};

/**
 * OS type and version from the fields of `/etc/os-release` (`ID`, `VERSION_ID`); `Linux`/`Unknown`
 * when the file is missing or the distribution is not in the table.
 */
export function osFromOsRelease(
  fields: Readonly<Record<string, string>>,
): { osType: string; osVersion: string } {
  const id = (fields.ID ?? "").toLowerCase();
  const osType = OS_NAMES[id] ?? "Linux";
  const osVersion = fields.VERSION_ID && fields.VERSION_ID !== "" ? fields.VERSION_ID : "Unknown";
  return { osType, osVersion };
}

/** Parses `KEY=value` lines of an os-release file (quotes and backslash escapes removed). */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rawLine of text.split("\n")) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    let value = line.slice(eq + 1);
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0]!)) {
      value = value.slice(1, -1).replace(/\\(.)/g, "$1");
    }
    out[key] = value;
  }
  return out;
}
