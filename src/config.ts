/**
 * Command line and environment → {@link Config} (spec §1.1 plus the §9 additions
 * `--log-format`/`FIREZONE_LOG_FORMAT` and `--max-partition-time`/`FIREZONE_MAX_PARTITION_TIME`).
 *
 * `main.ts` lets commander collect the raw strings (flags first, then the environment through
 * `.env()`); {@link resolveConfig} validates them and throws {@link UsageError} (exit code 2) with
 * one line naming the flag, the environment variable, the value and what is expected. Pure: the
 * hostname and the token-file lookup are injected.
 *
 * @module
 */

import { Secret } from "./log.ts";
import type { LogFormat } from "./log_format.ts";
import { type ApiUrl, parseApiUrl } from "./portal/login_url.ts";
import { randomUuidV4 } from "./portal/uuid.ts";
import type { Rng } from "./rng.ts";
import { parseSocketAddr, type SocketAddr } from "./wire/ip_addr.ts";

/** A bad command line or environment value; `main.ts` prints it and exits with code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Default portal URL. */
export const DEFAULT_API_URL = "wss://api.firezone.dev";
/** Default health-check bind address. */
export const DEFAULT_HEALTH_CHECK_ADDR = "0.0.0.0:8080";
/**
 * Default reconnect budget: 15 min as in upstream 1.4.16 (upstream 1.5.0 raised it to 24 h; set
 * `FIREZONE_MAX_PARTITION_TIME=24h` for that behaviour).
 */
export const DEFAULT_MAX_PARTITION_TIME = "15m";

/** `--metrics` exporters (accepted for compatibility). */
export type MetricsExporter = "stdout" | "otel-collector";

/** The validated configuration of portal mode. */
export interface Config {
  readonly token: Secret<string>;
  readonly apiUrl: ApiUrl;
  readonly firezoneName: string;
  /** `--firezone-id`/`FIREZONE_ID`; undefined when not given or empty (then the ID file is used). */
  readonly firezoneId: string | undefined;
  /** False with `--no-check`. */
  readonly checkPermissions: boolean;
  readonly noTelemetry: boolean;
  readonly healthCheckAddr: SocketAddr;
  readonly logFormat: LogFormat;
  readonly maxPartitionTimeMs: number;
  readonly metrics: MetricsExporter | null;
  readonly otlpGrpcEndpoint: string | null;
  readonly validateChecksums: boolean;
}

/** Raw values as commander collected them (from flags or, via `.env()`, from the environment). */
export interface CliValues {
  /** The positional TOKEN. */
  readonly token?: string | undefined;
  readonly apiUrl?: string | undefined;
  readonly firezoneName?: string | undefined;
  readonly firezoneId?: string | undefined;
  /** False when `--no-telemetry` was given or `FIREZONE_NO_TELEMETRY` is set. */
  readonly telemetry?: boolean | undefined;
  /** False with `--no-check`. */
  readonly check?: boolean | undefined;
  readonly healthCheckAddr?: string | undefined;
  readonly logFormat?: string | undefined;
  readonly maxPartitionTime?: string | undefined;
  readonly metrics?: string | undefined;
  readonly otlpGrpcEndpoint?: string | undefined;
  readonly validateChecksums?: boolean | undefined;
}

/** Where a boolean flag's value came from (commander's `getOptionValueSource`: `cli`, `env`, `default`, ...). */
export type ValueSource = string | undefined;

/** Everything {@link resolveConfig} needs besides the raw values. */
export interface ConfigContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Sources of the boolean flags that have an environment variable. */
  readonly sources: { readonly telemetry?: ValueSource; readonly validateChecksums?: ValueSource };
  /** The system hostname, null when unknown (then a random UUID names the gateway, as upstream). */
  readonly hostname: string | null;
  readonly rng: Rng;
  /**
   * The content of `path` when it names an existing regular file, null when it does not.
   * @throws when the file exists but cannot be read
   */
  readonly readTokenFile: (path: string) => string | null;
}

/** One entry of the option table (names used in help and error messages). */
export interface OptionSpec {
  readonly flags: string;
  readonly env: string | null;
}

/** The flags and their environment variables. */
export const OPTIONS = {
  token: { flags: "TOKEN", env: "FIREZONE_TOKEN" },
  apiUrl: { flags: "-u/--api-url", env: "FIREZONE_API_URL" },
  firezoneName: { flags: "-n/--firezone-name", env: "FIREZONE_NAME" },
  firezoneId: { flags: "-i/--firezone-id", env: "FIREZONE_ID" },
  noTelemetry: { flags: "--no-telemetry", env: "FIREZONE_NO_TELEMETRY" },
  noCheck: { flags: "--no-check", env: null },
  healthCheckAddr: { flags: "--health-check-addr", env: "HEALTH_CHECK_ADDR" },
  logFormat: { flags: "--log-format", env: "FIREZONE_LOG_FORMAT" },
  maxPartitionTime: { flags: "--max-partition-time", env: "FIREZONE_MAX_PARTITION_TIME" },
  metrics: { flags: "--metrics", env: "FIREZONE_METRICS" },
  otlpGrpcEndpoint: { flags: "--otlp-grpc-endpoint", env: "OTLP_GRPC_ENDPOINT" },
  validateChecksums: { flags: "--validate-checksums", env: "FIREZONE_VALIDATE_CHECKSUMS" },
} as const satisfies Record<string, OptionSpec>;

/**
 * Validates the raw values.
 * @throws UsageError with a one-line message
 */
export function resolveConfig(values: CliValues, ctx: ConfigContext): Config {
  return {
    token: resolveToken(values.token, ctx),
    apiUrl: checked(OPTIONS.apiUrl, values.apiUrl ?? DEFAULT_API_URL, parseApiUrlValue),
    firezoneName: values.firezoneName !== undefined && values.firezoneName !== ""
      ? values.firezoneName
      : ctx.hostname ?? randomUuidV4(ctx.rng),
    firezoneId: values.firezoneId !== undefined && values.firezoneId !== "" ? values.firezoneId : undefined,
    checkPermissions: values.check !== false,
    noTelemetry: envBool(OPTIONS.noTelemetry, values.telemetry === false, ctx.sources.telemetry, ctx.env),
    healthCheckAddr: checked(
      OPTIONS.healthCheckAddr,
      values.healthCheckAddr ?? DEFAULT_HEALTH_CHECK_ADDR,
      parseBindAddr,
    ),
    logFormat: checked(OPTIONS.logFormat, values.logFormat ?? "human", parseLogFormat),
    maxPartitionTimeMs: checked(
      OPTIONS.maxPartitionTime,
      values.maxPartitionTime ?? DEFAULT_MAX_PARTITION_TIME,
      parseDuration,
    ),
    metrics: values.metrics === undefined ? null : checked(OPTIONS.metrics, values.metrics, parseMetrics),
    otlpGrpcEndpoint: values.otlpGrpcEndpoint === undefined
      ? null
      : checked(OPTIONS.otlpGrpcEndpoint, values.otlpGrpcEndpoint, parseHostPort),
    validateChecksums: envBool(
      OPTIONS.validateChecksums,
      values.validateChecksums === true,
      ctx.sources.validateChecksums,
      ctx.env,
    ),
  };
}

/** `IP:PORT` (IPv6 in brackets), e.g. `0.0.0.0:8080`, `[::]:8080`. */
export function parseBindAddr(text: string): SocketAddr {
  const addr = parseSocketAddr(text);
  if (!addr) throw new TypeError("expected IP:PORT such as 0.0.0.0:8080 or [::]:8080");
  return addr;
}

/** `human` or `json`. */
export function parseLogFormat(text: string): LogFormat {
  if (text === "human" || text === "json") return text;
  throw new TypeError("expected human or json");
}

/** `stdout` or `otel-collector`. */
export function parseMetrics(text: string): MetricsExporter {
  if (text === "stdout" || text === "otel-collector") return text;
  throw new TypeError("expected stdout or otel-collector");
}

/** `HOST:PORT`. */
export function parseHostPort(text: string): string {
  if (
    !/^(\[[0-9A-Fa-f:.]+\]|[^\s:/[\]]+):[0-9]{1,5}$/.test(text) ||
    Number(text.slice(text.lastIndexOf(":") + 1)) > 65535
  ) {
    throw new TypeError("expected HOST:PORT such as otel-collector:4317");
  }
  return text;
}

/**
 * clap's default bool parser: exactly `true` or `false`.
 */
export function parseClapBool(text: string): boolean {
  if (text === "true") return true;
  if (text === "false") return false;
  throw new TypeError("expected true or false");
}

const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  ms: 1,
  msec: 1,
  s: 1_000,
  sec: 1_000,
  secs: 1_000,
  second: 1_000,
  seconds: 1_000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hrs: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  w: 604_800_000,
  week: 604_800_000,
  weeks: 604_800_000,
};

/**
 * A duration in the `humantime` syntax upstream uses: one or more `<integer><unit>` parts, optionally
 * separated by spaces (`15m`, `24h`, `1h 30m`, `90s`, `500ms`, `2days`). Returns milliseconds.
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  const re = /([0-9]+)\s*([a-z]+)\s*/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(trimmed); m !== null; m = re.exec(trimmed)) {
    const unit = DURATION_UNITS_MS[m[2]!];
    if (unit === undefined) break;
    total += Number(m[1]) * unit;
    consumed = re.lastIndex;
  }
  if (trimmed === "" || consumed !== trimmed.length || !Number.isSafeInteger(total)) {
    throw new TypeError("expected a duration such as 15m, 24h, 1h 30m or 90s");
  }
  return total;
}

function parseApiUrlValue(text: string): ApiUrl {
  try {
    return parseApiUrl(text);
  } catch (e) {
    throw new TypeError((e as Error).message.replace(/^Invalid API URL "[^"]*": /, ""));
  }
}

function resolveToken(positional: string | undefined, ctx: ConfigContext): Secret<string> {
  const fromEnv = ctx.env[OPTIONS.token.env];
  const raw = positional !== undefined && positional !== "" ? positional : fromEnv;
  if (raw === undefined || raw === "") {
    throw new UsageError(
      "error: the portal token is missing: pass it as the TOKEN argument or set FIREZONE_TOKEN",
    );
  }
  let fileContent: string | null;
  try {
    fileContent = ctx.readTokenFile(raw);
  } catch (e) {
    throw new UsageError(
      `error: cannot read the token file named by TOKEN/FIREZONE_TOKEN: ${(e as Error).message}`,
    );
  }
  if (fileContent === null) return new Secret(raw);
  const token = fileContent.trim();
  if (token === "") {
    throw new UsageError(
      "error: the token file named by TOKEN/FIREZONE_TOKEN is empty; expected the portal token",
    );
  }
  return new Secret(token);
}

function envBool(
  spec: OptionSpec,
  flagValue: boolean,
  source: ValueSource,
  env: ConfigContext["env"],
): boolean {
  if (source !== "env" || spec.env === null) return flagValue;
  const text = env[spec.env] ?? "";
  return checked(spec, text, parseClapBool);
}

function checked<T>(spec: OptionSpec, value: string, parse: (text: string) => T): T {
  try {
    return parse(value);
  } catch (e) {
    throw new UsageError(
      `error: invalid value "${value}" for ${describeOption(spec)}: ${(e as Error).message}`,
    );
  }
}

function describeOption(spec: OptionSpec): string {
  return spec.env === null ? spec.flags : `${spec.flags} (env ${spec.env})`;
}
