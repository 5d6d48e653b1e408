/**
 * Log line formats (spec §1.5 and the later `--log-format json`). Pure: the time comes in as
 * wall-clock milliseconds.
 *
 * Human: `2025-08-21T09:08:56.123Z  INFO fz_gateway::portal: Joined gateway room on portal key=value`
 * (level right-aligned to 5 characters; with ANSI, timestamp and target dimmed and the level
 * coloured: TRACE purple, DEBUG blue, INFO green, WARN yellow, ERROR red).
 *
 * JSON (tracing-subscriber's layout): `{"timestamp":"...","level":"INFO","fields":{"message":"...",
 * "key":value},"target":"..."}`, one object per line.
 *
 * Field values: {@link Secret}s print `[redacted]`; strings print bare when they contain no
 * whitespace, quotes or `=`, else JSON-quoted; errors print their message.
 *
 * @module
 */

import { Level, type LogRecord } from "./log.ts";

/** `human` (default) or `json`. */
export type LogFormat = "human" | "json";

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  [Level.Trace]: "TRACE",
  [Level.Debug]: "DEBUG",
  [Level.Info]: "INFO",
  [Level.Warn]: "WARN",
  [Level.Error]: "ERROR",
};

const LEVEL_COLOURS: Readonly<Record<number, string>> = {
  [Level.Trace]: "\x1b[35m",
  [Level.Debug]: "\x1b[34m",
  [Level.Info]: "\x1b[32m",
  [Level.Warn]: "\x1b[33m",
  [Level.Error]: "\x1b[31m",
};

const DIM = "\x1b[2m";
const RESET = "\x1b[0m";

/** The level name as printed (`INFO`, ...). */
export function levelName(level: Level): string {
  return LEVEL_NAMES[level] ?? "OFF";
}

/** One human-format line (no trailing newline). */
export function formatHuman(record: LogRecord, utcMs: number, ansi: boolean): string {
  const ts = new Date(utcMs).toISOString();
  const level = levelName(record.level).padStart(5);
  const fields = formatFields(record.fields);
  const tail = fields === "" ? "" : ` ${fields}`;
  if (!ansi) return `${ts} ${level} ${record.target}: ${record.message}${tail}`;
  const colour = LEVEL_COLOURS[record.level] ?? "";
  return `${DIM}${ts}${RESET} ${colour}${level}${RESET} ${DIM}${record.target}${RESET}: ${record.message}${tail}`;
}

/** One JSON-format line (no trailing newline). */
export function formatJson(record: LogRecord, utcMs: number): string {
  const fields: Record<string, unknown> = { message: record.message };
  if (record.fields) {
    for (const [k, v] of Object.entries(record.fields)) {
      if (v !== undefined) fields[k] = jsonValue(v);
    }
  }
  return JSON.stringify({
    timestamp: new Date(utcMs).toISOString(),
    level: levelName(record.level),
    fields,
    target: record.target,
  });
}

/** `key=value key2=value2`, skipping undefined values. */
export function formatFields(fields: Record<string, unknown> | undefined): string {
  if (!fields) return "";
  const parts: string[] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (v !== undefined) parts.push(`${k}=${fieldText(v)}`);
  }
  return parts.join(" ");
}

function fieldText(v: unknown): string {
  if (typeof v === "string") return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (v === null) return "null";
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === "object" && typeof (v as { toJSON?: unknown }).toJSON === "function") {
    return fieldText((v as { toJSON(): unknown }).toJSON());
  }
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function jsonValue(v: unknown): unknown {
  if (v instanceof Error) return v.message;
  if (typeof v === "bigint") return v.toString();
  return v;
}
