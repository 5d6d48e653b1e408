import assert from "node:assert/strict";
import { createHealthApp, type Readiness } from "../../../src/health/app.ts";

function app(readiness: Readiness = { ready: true }) {
  return createHealthApp(() => readiness);
}

Deno.test("GET and HEAD /healthz answer 200 with an empty body", async () => {
  const get = await app({ ready: false, reason: "x" }).request("/healthz");
  assert.equal(get.status, 200);
  assert.equal(await get.text(), "");
  const head = await app().request("/healthz", { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), "");
});

Deno.test("other methods on /healthz and /readyz answer 405 with Allow", async () => {
  for (const path of ["/healthz", "/readyz"]) {
    for (const method of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
      const res = await app().request(path, { method });
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get("allow"), "GET, HEAD");
    }
  }
});

Deno.test("other paths answer 404", async () => {
  for (const path of ["/", "/health", "/healthz/x", "/metrics"]) {
    assert.equal((await app().request(path)).status, 404, path);
  }
});

Deno.test("/readyz answers 200 when ready and 503 with the reason otherwise", async () => {
  const ok = await app({ ready: true }).request("/readyz");
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { ready: true });
  const not = await app({ ready: false, reason: "portal channel not joined" }).request("/readyz");
  assert.equal(not.status, 503);
  assert.deepEqual(await not.json(), { ready: false, reason: "portal channel not joined" });
  const head = await app({ ready: false, reason: "x" }).request("/readyz", { method: "HEAD" });
  assert.equal(head.status, 503);
});

Deno.test("/readyz asks for the readiness on every request", async () => {
  let state: Readiness = { ready: false, reason: "TUN device not configured yet" };
  const a = createHealthApp(() => state);
  assert.equal((await a.request("/readyz")).status, 503);
  state = { ready: true };
  assert.equal((await a.request("/readyz")).status, 200);
});
