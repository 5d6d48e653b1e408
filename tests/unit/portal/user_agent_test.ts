import assert from "node:assert/strict";
import { formatUserAgent, osFromOsRelease, parseOsRelease } from "../../../src/portal/user_agent.ts";

Deno.test("formatUserAgent() formats <os>/<version> connlib/1.4.16 (<arch>; <kernel>)", () => {
  assert.equal(
    formatUserAgent({
      osType: "Ubuntu",
      osVersion: "22.04",
      arch: "x86_64",
      kernelRelease: "5.15.0-105-generic",
    }),
    "Ubuntu/22.04 connlib/1.4.16 (x86_64; 5.15.0-105-generic)",
  );
  assert.equal(
    formatUserAgent({ osType: "Linux", osVersion: "Unknown", arch: "aarch64", kernelRelease: null }),
    "Linux/Unknown connlib/1.4.16 (aarch64)",
  );
  assert.equal(
    formatUserAgent({ osType: "Linux", osVersion: "Unknown", arch: null, kernelRelease: null }),
    "Linux/Unknown connlib/1.4.16",
  );
});

Deno.test("formatUserAgent() strips non-ASCII and control characters", () => {
  assert.equal(
    formatUserAgent({ osType: "Dëbian", osVersion: "12\r\nX: y", arch: "x86_64", kernelRelease: "6.1-ü" }),
    "Dbian/12X: y connlib/1.4.16 (x86_64; 6.1-)",
  );
});

Deno.test("osFromOsRelease() maps distribution IDs like os_info", () => {
  const debian = parseOsRelease(
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
  );
  assert.deepEqual(osFromOsRelease(debian), { osType: "Debian", osVersion: "12" });
  assert.deepEqual(osFromOsRelease(parseOsRelease("ID=alpine\nVERSION_ID=3.20.1\n")), {
    osType: "Alpine Linux",
    osVersion: "3.20.1",
  });
  assert.deepEqual(osFromOsRelease(parseOsRelease("ID=arch\n")), {
    osType: "Arch Linux",
    osVersion: "Unknown",
  });
  assert.deepEqual(osFromOsRelease({}), { osType: "Linux", osVersion: "Unknown" });
});
