import assert from "node:assert/strict";
import { IdentityError, resolveFirezoneId } from "../../../src/io/identity_store.ts";
import { SeededRng } from "../../../src/rng.ts";

const isRoot = Deno.uid() === 0;

async function withTempDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "fz_portal_id_" });
  try {
    await f(dir);
  } finally {
    await Deno.chmod(dir, 0o700).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test('resolveFirezoneId() creates gateway_id with {"id":"<64 hex>"}, dir 0770, file 0640', async () => {
  await withTempDir(async (tmp) => {
    const dir = `${tmp}/var/lib/firezone`;
    const id = await resolveFirezoneId(undefined, { stateDir: dir, rng: new SeededRng(1) });
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal(await Deno.readTextFile(`${dir}/gateway_id`), `{"id":"${id}"}`);
    assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o770);
    assert.equal((await Deno.stat(`${dir}/gateway_id`)).mode! & 0o777, 0o640);
    assert.deepEqual(
      await Array.fromAsync(Deno.readDir(dir), (e) => e.name),
      ["gateway_id"],
      "no temp file left",
    );
  });
});

Deno.test("resolveFirezoneId() uses the raw file content on the second start (upstream quirk)", async () => {
  await withTempDir(async (dir) => {
    const first = await resolveFirezoneId(undefined, { stateDir: dir, rng: new SeededRng(2) });
    const second = await resolveFirezoneId(undefined, { stateDir: dir, rng: new SeededRng(3) });
    assert.equal(second, `{"id":"${first}"}`);
    assert.equal(await resolveFirezoneId("from-env", { stateDir: dir, rng: new SeededRng(4) }), "from-env");
  });
});

Deno.test("resolveFirezoneId() fails with the upstream message when the state dir is not writable", async () => {
  // Root ignores directory modes, so use a path under the read-only procfs in that case.
  const dir = isRoot ? "/proc/self/fz_gateway_state" : await Deno.makeTempDir({ prefix: "fz_portal_ro_" });
  try {
    if (!isRoot) await Deno.chmod(dir, 0o500);
    await assert.rejects(
      () => resolveFirezoneId(undefined, { stateDir: dir, rng: new SeededRng(5) }),
      (e: unknown) => {
        assert.ok(e instanceof IdentityError);
        assert.ok(
          e.message.startsWith(
            `Couldn't read FIREZONE_ID or write it to disk: Please provide it through the env variable or provide rw access to ${dir}/: `,
          ),
          e.message,
        );
        return true;
      },
    );
  } finally {
    if (!isRoot) {
      await Deno.chmod(dir, 0o700);
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("resolveFirezoneId() refuses to overwrite an existing empty file", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/gateway_id`, "");
    await assert.rejects(
      () => resolveFirezoneId(undefined, { stateDir: dir, rng: new SeededRng(6) }),
      IdentityError,
    );
    assert.equal(await Deno.readTextFile(`${dir}/gateway_id`), "");
  });
});

Deno.test({
  name: "resolveFirezoneId() gives the upstream message for a read-only directory (non-root)",
  ignore: isRoot,
  async fn() {
    await withTempDir(async (dir) => {
      await Deno.chmod(dir, 0o555);
      await assert.rejects(
        () => resolveFirezoneId(undefined, { stateDir: `${dir}/sub`, rng: new SeededRng(7) }),
        /provide rw access to/,
      );
    });
  },
});
if (isRoot) {
  // deno-lint-ignore no-console
  console.log(
    "identity_store_test: running as root, the chmod-based read-only test is skipped (root bypasses modes)",
  );
}
