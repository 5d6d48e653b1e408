import assert from "node:assert/strict";
import {
  hasNecessaryPermissionsIn,
  parseProcStatus,
  PERMISSION_ERROR_MESSAGE,
} from "../../../src/io/permissions.ts";
import { parseResolvConf } from "../../../src/io/system_info.ts";

function status(uids: string, capEff: string): string {
  return `Name:\tdeno\nUid:\t${uids}\nGid:\t1000\t1000\t1000\t1000\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\n`;
}

Deno.test("hasNecessaryPermissionsIn() accepts effective UID 0 or CAP_NET_ADMIN (bit 12)", () => {
  assert.equal(hasNecessaryPermissionsIn(status("1000\t0\t0\t0", "0000000000000000")), true);
  assert.equal(hasNecessaryPermissionsIn(status("1000\t1000\t1000\t1000", "0000000000001000")), true);
  assert.equal(hasNecessaryPermissionsIn(status("1000\t1000\t1000\t1000", "0000000000000800")), false);
  assert.equal(
    hasNecessaryPermissionsIn(status("0\t1000\t1000\t1000", "0000000000000000")),
    false,
    "real UID 0 is not enough",
  );
  assert.equal(hasNecessaryPermissionsIn("garbage"), false);
  assert.deepEqual(parseProcStatus(status("5\t6\t7\t8", "000001ffffffffff")), {
    euid: 6,
    capEff: 0x1ffffffffffn,
  });
});

Deno.test("PERMISSION_ERROR_MESSAGE is upstream's two lines", () => {
  assert.equal(
    PERMISSION_ERROR_MESSAGE,
    "firezone-gateway needs to be executed as `root` or with the `CAP_NET_ADMIN` capability.\n" +
      "See https://www.firezone.dev/kb/deploy/gateways#permissions for details.",
  );
});

Deno.test("parseResolvConf() returns the nameserver entries in order", () => {
  assert.deepEqual(
    parseResolvConf(
      "# comment\nsearch corp\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\n  nameserver 1.1.1.1 # x\noptions ndots:2\n",
    ),
    ["10.0.0.2", "fe80::1", "1.1.1.1"],
  );
});
