/**
 * The health endpoint as a pure hono app (spec §1.4, plus `/readyz`):
 *
 * - `GET`/`HEAD /healthz` → 200 with an empty body, always (upstream's predicate is constant true);
 * - `GET`/`HEAD /readyz` → 200 `{"ready":true}` when the portal channel is joined and the TUN device
 *   is up, else 503 `{"ready":false,"reason":"..."}`;
 * - optionally `GET /metrics` and `GET /metrics/loop-lag` (JSON, see {@link HealthExtras});
 * - other methods on those paths → 405 with `Allow: GET, HEAD`; other paths → 404.
 *
 * @module
 */

import { Hono } from "hono";

/** What `/readyz` reports. */
export type Readiness = { readonly ready: true } | { readonly ready: false; readonly reason: string };

const ALLOW = "GET, HEAD";

/** Optional JSON endpoints for operators and the benchmark. */
export interface HealthExtras {
  /** `GET /metrics`: counters of the data path. */
  readonly metrics?: () => unknown;
  /** `GET /metrics/loop-lag`: main-thread timer lateness since the last read. */
  readonly loopLag?: () => unknown;
}

/** Builds the app; `readiness` is called on every `/readyz` request. */
export function createHealthApp(readiness: () => Readiness, extras: HealthExtras = {}): Hono {
  const app = new Hono();
  const { metrics, loopLag } = extras;
  if (metrics) app.get("/metrics", (c) => c.json(metrics()));
  if (loopLag) app.get("/metrics/loop-lag", (c) => c.json(loopLag()));
  app.get("/healthz", (c) => c.body(null, 200));
  app.get("/readyz", (c) => {
    const r = readiness();
    return r.ready ? c.json({ ready: true }, 200) : c.json({ ready: false, reason: r.reason }, 503);
  });
  app.all("/healthz", (c) => c.body(null, 405, { Allow: ALLOW }));
  app.all("/readyz", (c) => c.body(null, 405, { Allow: ALLOW }));
  app.notFound((c) => c.body(null, 404));
  return app;
}
