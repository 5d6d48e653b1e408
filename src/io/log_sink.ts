/**
 * The process's log sink: formats records (`src/log_format.ts`) with the wall clock and writes one
 * line per record to stdout, synchronously (as upstream's tracing subscriber does).
 *
 * @module
 */

import { configureLogging, type LevelFilter, type LogRecord, type LogSink } from "../log.ts";
import { formatHuman, formatJson, type LogFormat } from "../log_format.ts";

/**
 * Whether to emit ANSI colours, following the `supports-color` crate upstream uses: `NO_COLOR`
 * (non-empty) or `FORCE_COLOR=0|false` disable; any other `FORCE_COLOR` enables; otherwise only a
 * terminal that is not `TERM=dumb`.
 */
export function colourSupported(
  env: Readonly<Record<string, string | undefined>>,
  isTerminal: boolean,
): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== "0" && force !== "false";
  if (!isTerminal) return false;
  return env.TERM !== "dumb";
}

/** Options of {@link createStdoutSink}. */
export interface StdoutSinkOptions {
  readonly format: LogFormat;
  readonly ansi: boolean;
  /** Wall clock in milliseconds; `Date.now` by default. */
  readonly clock?: () => number;
  /** Where lines go; stdout by default. */
  readonly write?: (bytes: Uint8Array) => void;
}

/** A sink that writes formatted lines. */
export function createStdoutSink(options: StdoutSinkOptions): LogSink {
  const clock = options.clock ?? (() => Date.now());
  const write = options.write ?? writeStdout;
  const encoder = new TextEncoder();
  return (record: LogRecord) => {
    const line = options.format === "json"
      ? formatJson(record, clock())
      : formatHuman(record, clock(), options.ansi && options.format === "human");
    write(encoder.encode(`${line}\n`));
  };
}

/** Installs the stdout sink and the filter for the whole process. */
export function installLogging(options: { format: LogFormat; filter: LevelFilter }): void {
  const ansi = options.format === "human" && colourSupported(Deno.env.toObject(), Deno.stdout.isTerminal());
  configureLogging({ sink: createStdoutSink({ format: options.format, ansi }), filter: options.filter });
}

function writeStdout(bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
}
