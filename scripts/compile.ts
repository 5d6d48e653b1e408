/**
 * Builds the single-file executable `dist/fz-gateway` from `main.ts` with `deno compile`.
 *
 *   ./scripts/deno run -A scripts/compile.ts [--output PATH] [--target TRIPLE] [--dry-run]
 *
 * `deno compile` embeds the program into `denort`, the Deno runtime without tooling. It downloads
 * `denort` for its own version unless the environment variable `DENORT_BIN` names a local copy; this
 * script passes `DENORT_BIN` through when it is set (so nothing is downloaded) and says which case
 * applies. `--dry-run` prints the command without running it.
 *
 * @module
 */

const root = new URL("../", import.meta.url).pathname;
let output = "dist/fz-gateway";
let target: string | null = null;
let dryRun = false;
const args = [...Deno.args];
while (args.length > 0) {
  const arg = args.shift()!;
  if (arg === "--output") output = args.shift() ?? fail("--output needs a path");
  else if (arg === "--target") target = args.shift() ?? fail("--target needs a target triple");
  else if (arg === "--dry-run") dryRun = true;
  else fail(`unknown argument ${arg}`);
}

const denortBin = Deno.env.get("DENORT_BIN");
const env: Record<string, string> = {};
if (denortBin !== undefined && denortBin !== "") {
  try {
    if (!Deno.statSync(denortBin).isFile) fail(`DENORT_BIN=${denortBin} is not a file`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) fail(`DENORT_BIN=${denortBin} does not exist`);
    throw e;
  }
  env.DENORT_BIN = denortBin;
  say(`compile: using the local denort from DENORT_BIN=${denortBin} (no download)`);
} else {
  say(
    `compile: DENORT_BIN is not set; deno compile downloads denort ${Deno.version.deno} (needs network access)`,
  );
}

const compileArgs = [
  "compile",
  "--allow-all",
  // Same as `deno task start`: a larger TurboFan inlining budget keeps the packet loop free of
  // boxed doubles (zero garbage per packet; see scripts/gc_trace.sh).
  "--v8-flags=--max-inlined-bytecode-size-cumulative=20000",
  ...(target === null ? [] : ["--target", target]),
  // The packet worker is loaded with `new Worker(new URL(...))`, which the module graph does not see.
  "--include",
  "src/io/packet_worker.ts",
  "--output",
  output,
  "main.ts",
];
say(
  `compile: ${Deno.execPath()} ${compileArgs.join(" ")}${
    env.DENORT_BIN ? ` (env DENORT_BIN=${env.DENORT_BIN})` : ""
  }`,
);
if (dryRun) Deno.exit(0);

const status = await new Deno.Command(Deno.execPath(), {
  args: compileArgs,
  cwd: root,
  env,
  stdout: "inherit",
  stderr: "inherit",
}).spawn().status;
if (status.success) say(`compile: wrote ${output}`);
Deno.exit(status.code);

function say(line: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(`${line}\n`));
}

function fail(message: string): never {
  Deno.stderr.writeSync(new TextEncoder().encode(`compile: ${message}\n`));
  Deno.exit(2);
}
