/**
 * Measures how late a 10 ms timer fires on this thread: the main thread's responsiveness while the
 * packet worker runs at full rate (portal, health and DNS all live here).
 *
 * @module
 */

const INTERVAL_MS = 10;
const SAMPLES = 4096;

/** Percentiles of timer lateness since the last {@link LoopLagMonitor.read}. */
export interface LoopLag {
  readonly samples: number;
  readonly "p50_ms": number;
  readonly "p99_ms": number;
  readonly "max_ms": number;
}

export class LoopLagMonitor {
  readonly #lateness = new Float64Array(SAMPLES);
  #count = 0;
  #expected = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  start(): void {
    this.#expected = performance.now() + INTERVAL_MS;
    this.#timer = setInterval(() => {
      const now = performance.now();
      this.#lateness[this.#count % SAMPLES] = Math.max(0, now - this.#expected);
      this.#count++;
      this.#expected = now + INTERVAL_MS;
    }, INTERVAL_MS);
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Percentiles over the samples since the previous read (at most the last 4096), then resets. */
  read(): LoopLag {
    const n = Math.min(this.#count, SAMPLES);
    const sorted = Array.from(this.#lateness.subarray(0, n)).sort((a, b) => a - b);
    this.#count = 0;
    const pick = (q: number) => n === 0 ? 0 : round(sorted[Math.min(n - 1, Math.floor(q * n))]!);
    return {
      samples: n,
      "p50_ms": pick(0.5),
      "p99_ms": pick(0.99),
      "max_ms": n === 0 ? 0 : round(sorted[n - 1]!),
    };
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
