/** errno values, names and messages against the C library, and the Errno error. */
import assert from "node:assert/strict";
import * as E from "../../ffi/errno.ts";
import { lastErrno, libc } from "../../ffi/libc.ts";

const NAMES = Object.entries(E).filter(([name, value]) =>
  /^E[A-Z0-9]+$/.test(name) && typeof value === "number"
)
  .filter(([name]) => name !== "ERRNO_MAX") as Array<[string, number]>;

async function gccAvailable(): Promise<boolean> {
  try {
    return (await new Deno.Command("gcc", { args: ["--version"], stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}
const hasGcc = await gccAvailable();

Deno.test({
  name: "errno constants and messages match <errno.h> and strerror()",
  ignore: !hasGcc,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "fzffi-errno-" });
    try {
      const lines = NAMES.map(([name]) => `  printf("%s %d %s\\n", "${name}", ${name}, strerror(${name}));`);
      await Deno.writeTextFile(
        `${dir}/errno.c`,
        `#include <errno.h>\n#include <stdio.h>\n#include <string.h>\nint main(void) {\n${
          lines.join("\n")
        }\n}\n`,
      );
      const cc = await new Deno.Command("gcc", { args: ["-o", `${dir}/errno`, `${dir}/errno.c`] }).output();
      assert.ok(cc.success, new TextDecoder().decode(cc.stderr));
      const out = new TextDecoder().decode((await new Deno.Command(`${dir}/errno`).output()).stdout);
      const rows = out.trim().split("\n");
      assert.equal(rows.length, NAMES.length);
      for (const row of rows) {
        const [name, code, ...words] = row.split(" ");
        assert.equal((E as Record<string, unknown>)[name!], Number(code), name);
        assert.equal(E.errnoMessage(Number(code)), words.join(" "), name);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("errnoName() and errnoFromName() map both ways, aliases included", () => {
  assert.equal(E.errnoName(22), "EINVAL");
  assert.equal(E.errnoName(11), "EAGAIN");
  assert.equal(E.errnoName(95), "EOPNOTSUPP");
  assert.equal(E.errnoName(4000), "E4000");
  assert.equal(E.errnoFromName("EWOULDBLOCK"), E.EAGAIN);
  assert.equal(E.errnoFromName("ENOTSUP"), 95);
  assert.equal(E.errnoFromName("EEXIST"), 17);
  assert.equal(E.errnoFromName("ENOPE"), undefined);
  assert.equal(E.errnoMessage(4000), "Unknown error 4000");
});

Deno.test("Errno carries code, name and syscall and reads well", () => {
  const err = new E.Errno(E.EPERM, "ioctl(TUNSETIFF)", {
    detail: `on "tun-firezone"`,
    hint: E.NEED_NET_ADMIN_HINT,
  });
  assert.ok(err instanceof Error);
  assert.equal(err.code, 1);
  assert.equal(err.name, "EPERM");
  assert.equal(err.syscall, "ioctl(TUNSETIFF)");
  assert.equal(
    err.message,
    `ioctl(TUNSETIFF) on "tun-firezone" failed: Operation not permitted (EPERM, errno 1). ` +
      "Run as root or grant the CAP_NET_ADMIN capability",
  );
  assert.ok(String(err).startsWith("EPERM: ioctl(TUNSETIFF)"));
  assert.ok(E.Errno.is(err, E.EPERM));
  assert.ok(!E.Errno.is(err, E.EACCES));
  assert.ok(!E.Errno.is(new Error("x"), E.EPERM));
});

Deno.test("lastErrno() reads this thread's errno right after a failing call", () => {
  const sym = libc();
  assert.equal(sym.close(987_654), -1);
  assert.equal(lastErrno(), E.EBADF);
  assert.equal(sym.socket(12345, 2, 0), -1);
  assert.equal(lastErrno(), E.EAFNOSUPPORT);
});
