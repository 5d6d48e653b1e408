import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;

async function dryRun(
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "scripts/compile.ts", "--dry-run", "--output", "dist/test-fz-gateway"],
    cwd: ROOT,
    env,
    clearEnv: true,
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("scripts/compile.ts passes DENORT_BIN through and prints the deno compile command", async () => {
  const denort = Deno.execPath(); // any existing file will do for a dry run
  const { code, stdout } = await dryRun({ DENORT_BIN: denort });
  assert.equal(code, 0);
  assert.match(stdout, new RegExp(`using the local denort from DENORT_BIN=${denort} \\(no download\\)`));
  assert.match(
    stdout,
    /compile --allow-all --v8-flags=--max-inlined-bytecode-size-cumulative=20000 --include src\/io\/packet_worker\.ts --output dist\/test-fz-gateway main\.ts \(env DENORT_BIN=/,
  );
});

Deno.test("scripts/compile.ts says when denort will be downloaded and refuses a missing DENORT_BIN", async () => {
  const plain = await dryRun({});
  assert.equal(plain.code, 0);
  assert.match(plain.stdout, /DENORT_BIN is not set; deno compile downloads denort/);
  const missing = await dryRun({ DENORT_BIN: "/nonexistent/denort" });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /DENORT_BIN=\/nonexistent\/denort does not exist/);
});
