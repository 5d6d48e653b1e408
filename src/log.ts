/**
 * Leveled, structured logging with cheap enabled-checks, and the {@link Secret} wrapper.
 *
 * Pure: records go to a sink installed by the I/O layer (`src/io/log_sink.ts`), which stamps the
 * time and formats them (human or JSON). Until a sink is installed, records are dropped, so sans-IO
 * cores can log freely in tests. Targets follow Rust's module paths loosely
 * (`fz_gateway::wireguard`, `wire::net::recv`) so `RUST_LOG` directives keep working.
 *
 * Hot paths guard with `if (log.debugEnabled) log.debug(...)` so no string is built when off.
 *
 * @module
 */

export const Level = { Trace: 0, Debug: 1, Info: 2, Warn: 3, Error: 4, Off: 5 } as const;
export type Level = (typeof Level)[keyof typeof Level];

/** Field values: anything printable. Wrap keys, tokens and passwords in {@link Secret}. */
export type LogFields = Record<string, unknown>;

export interface LogRecord {
  level: Level;
  target: string;
  message: string;
  fields: LogFields | undefined;
}

export type LogSink = (record: LogRecord) => void;

/** Decides the most verbose enabled level for a target. */
export type LevelFilter = (target: string) => Level;

let sink: LogSink = () => {};
let filter: LevelFilter = () => Level.Info;
let generation = 0;

/** Installs the sink and filter for the whole process (or worker). */
export function configureLogging(options: { sink?: LogSink; filter?: LevelFilter }): void {
  if (options.sink) sink = options.sink;
  if (options.filter) filter = options.filter;
  generation++;
}

/** A logger for one target. Create once per module: `const log = logger("fz_gateway::turn");`. */
export class Logger {
  readonly target: string;
  #generation = -1;
  #min: Level = Level.Info;

  constructor(target: string) {
    this.target = target;
  }

  /** The most verbose enabled level (re-read when the configuration changes). */
  get minLevel(): Level {
    if (this.#generation !== generation) {
      this.#min = filter(this.target);
      this.#generation = generation;
    }
    return this.#min;
  }

  enabled(level: Level): boolean {
    return level >= this.minLevel;
  }

  get traceEnabled(): boolean {
    return this.minLevel <= Level.Trace;
  }

  get debugEnabled(): boolean {
    return this.minLevel <= Level.Debug;
  }

  trace(message: string, fields?: LogFields): void {
    this.log(Level.Trace, message, fields);
  }

  debug(message: string, fields?: LogFields): void {
    this.log(Level.Debug, message, fields);
  }

  info(message: string, fields?: LogFields): void {
    this.log(Level.Info, message, fields);
  }

  warn(message: string, fields?: LogFields): void {
    this.log(Level.Warn, message, fields);
  }

  error(message: string, fields?: LogFields): void {
    this.log(Level.Error, message, fields);
  }

  log(level: Level, message: string, fields?: LogFields): void {
    if (level < this.minLevel) return;
    sink({ level, target: this.target, message, fields });
  }
}

/** Shorthand for `new Logger(target)`. */
export function logger(target: string): Logger {
  return new Logger(target);
}

const REDACTED = "[redacted]";

/**
 * Holds a secret (token, key, password). Every way of printing it (`String()`, template literals,
 * `JSON.stringify`, `Deno.inspect`, `console.log`) shows `[redacted]`; only {@link expose} returns it.
 */
export class Secret<T> {
  readonly #value: T;

  constructor(value: T) {
    this.#value = value;
  }

  /** The secret itself. Call it only where the value is really needed (a header, a key schedule). */
  expose(): T {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [Symbol.for("Deno.customInspect")](): string {
    return REDACTED;
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return REDACTED;
  }
}
