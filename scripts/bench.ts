/**
 * `deno task bench`: runs the micro-benchmarks one after another and prints their tables.
 * Figures, never assertions. The throughput benchmark needs root and network namespaces and is
 * separate: `sudo scripts/bench_throughput.sh` (see README).
 *
 * @module
 */

// deno-lint-ignore-file no-console

const BENCHES = [
  ["Crypto: ChaCha20-Poly1305 seal+open at 1420 bytes, per backend", "bench_crypto.ts"],
  ["WireGuard: encapsulate+decapsulate per 1420-byte packet, per backend", "bench_wireguard.ts"],
  ["Demux and ChannelData unwrap per packet", "bench_demux.ts"],
] as const;

let failed = 0;
for (const [title, file] of BENCHES) {
  console.log(`\n## ${title} (scripts/${file})\n`);
  const script = new URL(file, import.meta.url).pathname;
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", script, ...Deno.args],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) {
    console.error(`scripts/${file} exited with ${code}`);
    failed++;
  }
}
Deno.exit(failed === 0 ? 0 : 1);
