/**
 * The simulation clock: monotonic milliseconds that only move when the simulation says so, plus the
 * matching wall clock (for WireGuard TAI64N) and an optional log sink stamped with simulated time.
 *
 * Set `FZ_SIM_LOG=debug` (or `info`, `trace`) to print the cores' logs of a simulation run.
 *
 * @module
 */

import { configureLogging, Level, type LogRecord } from "../../src/log.ts";
import type { WallClock } from "../../src/wireguard/handshake.ts";

/** 2024-05-01T00:00:00Z: the wall clock at simulated instant 0. */
export const SIM_WALL_CLOCK_AT_ZERO_MS = 1_714_521_600_000;

/** The fake clock of one simulation. */
export class FluxCapacitor {
  #now: number;

  constructor(start = 0) {
    this.#now = start;
  }

  get now(): number {
    return this.#now;
  }

  /** Moves to `t` (never backwards). */
  advanceTo(t: number): void {
    if (t < this.#now) throw new RangeError(`The clock cannot go back from ${this.#now} to ${t}`);
    this.#now = t;
  }

  advance(ms: number): void {
    this.advanceTo(this.#now + ms);
  }

  /** Wall clock anchored at {@link SIM_WALL_CLOCK_AT_ZERO_MS}. */
  readonly wallClock: WallClock = (now: number) => SIM_WALL_CLOCK_AT_ZERO_MS + now;

  /** Prints core logs with the simulated time when `FZ_SIM_LOG` asks for it. */
  installLogSink(): void {
    let wanted: string | undefined;
    try {
      wanted = Deno.env.get("FZ_SIM_LOG");
    } catch {
      return; // no --allow-env: stay quiet
    }
    if (wanted === undefined) return;
    const level =
      ({ trace: Level.Trace, debug: Level.Debug, info: Level.Info } as Record<string, Level>)[wanted] ??
        Level.Warn;
    configureLogging({
      filter: () => level,
      sink: (r: LogRecord) => {
        const fields = r.fields === undefined ? "" : ` ${JSON.stringify(r.fields)}`;
        // deno-lint-ignore no-console
        console.error(`[${(this.#now / 1000).toFixed(3)}s] ${r.target}: ${r.message}${fields}`);
      },
    });
  }
}
