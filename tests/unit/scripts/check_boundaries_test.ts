import assert from "node:assert/strict";
import { findViolations, isPureModule, stripCommentsAndStrings } from "../../../scripts/check_boundaries.ts";

Deno.test("isPureModule() covers src/ except the I/O shell and the HTTP server wiring", () => {
  assert.equal(isPureModule("src/wireguard/tunnel.ts"), true);
  assert.equal(isPureModule("src/health/app.ts"), true);
  assert.equal(isPureModule("src/io/event_loop.ts"), false);
  assert.equal(isPureModule("src/health/server.ts"), false);
  assert.equal(isPureModule("ffi/libc.ts"), false);
  assert.equal(isPureModule("main.ts"), false);
});

Deno.test("findViolations() flags clocks, timers, randomness and Deno.*", () => {
  const src = [
    "const a = Date.now();",
    "const b = new Date();",
    "const c = performance.now();",
    "setTimeout(() => {}, 1);",
    "const d = Math.random();",
    "crypto.getRandomValues(buf);",
    "Deno.exit(1);",
    "const ok = new Date(utcNowMs);",
  ].join("\n");
  const lines = findViolations("src/x/y.ts", src).map((v) => v.line);
  assert.deepEqual(lines, [1, 2, 3, 4, 5, 6, 7]);
});

Deno.test("findViolations() flags imports of ffi/ and src/io/ but not of siblings", () => {
  const src = [
    'import { libc } from "../../ffi/libc.ts";',
    'import type { X } from "../io/udp_sockets.ts";',
    'export { y } from "./y.ts";',
    'import { Hono } from "hono";',
    'const m = await import("../io/clock.ts");',
  ].join("\n");
  const v = findViolations("src/p2p/node.ts", src);
  assert.deepEqual(v.map((x) => x.line), [1, 2, 5]);
});

Deno.test("findViolations() ignores words inside comments and strings", () => {
  const src = [
    "// Date.now() is not allowed here",
    "/* Math.random() */ const s = 'Deno.exit(1)';",
    "const t = `performance.now()`;",
  ].join("\n");
  assert.deepEqual(findViolations("src/a.ts", src), []);
  assert.equal(stripCommentsAndStrings("a /* x\ny */ b").split("\n").length, 2);
});
