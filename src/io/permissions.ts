/**
 * The start-up permission pre-check (spec §1.2 step 2): the process needs effective UID 0 or
 * `CAP_NET_ADMIN` in its effective capability set. Read from `/proc/self/status`.
 *
 * @module
 */

/** Bit of `CAP_NET_ADMIN` in the capability masks (linux/capability.h). */
export const CAP_NET_ADMIN = 12;

/** Upstream's message (stderr, before logging is set up), followed by exit code 1. */
export const PERMISSION_ERROR_MESSAGE =
  "firezone-gateway needs to be executed as `root` or with the `CAP_NET_ADMIN` capability.\n" +
  "See https://www.firezone.dev/kb/deploy/gateways#permissions for details.";

/** Effective UID and effective capability mask from the text of `/proc/<pid>/status`. */
export function parseProcStatus(text: string): { euid: number | null; capEff: bigint | null } {
  let euid: number | null = null;
  let capEff: bigint | null = null;
  for (const line of text.split("\n")) {
    if (line.startsWith("Uid:")) {
      const ids = line.slice(4).trim().split(/\s+/);
      if (ids[1] !== undefined && /^[0-9]+$/.test(ids[1])) euid = Number(ids[1]);
    } else if (line.startsWith("CapEff:")) {
      const hex = line.slice(7).trim();
      if (/^[0-9a-fA-F]+$/.test(hex)) capEff = BigInt(`0x${hex}`);
    }
  }
  return { euid, capEff };
}

/** True for effective UID 0 or `CAP_NET_ADMIN` in the effective set. */
export function hasNecessaryPermissionsIn(statusText: string): boolean {
  const { euid, capEff } = parseProcStatus(statusText);
  if (euid === 0) return true;
  return capEff !== null && ((capEff >> BigInt(CAP_NET_ADMIN)) & 1n) === 1n;
}

/** Checks the running process. False when `/proc/self/status` cannot be read. */
export function hasNecessaryPermissions(): boolean {
  try {
    return hasNecessaryPermissionsIn(Deno.readTextFileSync("/proc/self/status"));
  } catch {
    return false;
  }
}
