/**
 * `RUST_LOG` / `FZ_LOG` directives → a {@link LevelFilter} (the subset of tracing's `EnvFilter`
 * syntax operators use): comma-separated `level`, `target=level` or bare `target` (= trace), levels
 * `trace|debug|info|warn|error|off` in any case. A target matches every log target it is a string
 * prefix of; the longest matching target wins, else the bare level, else ERROR (EnvFilter's
 * default). Span filters (`target[span]=level`) are not supported and reported as invalid.
 *
 * Upstream's fixed prefix (`netlink_proto=warn,os_info=warn,...`) is always prepended, and upstream
 * crate names are mapped to our targets (`phoenix_channel` → `fz_gateway::portal`, ...), so
 * directives copied from upstream documentation keep working. Pure.
 *
 * @module
 */

import { Level, type LevelFilter } from "./log.ts";

/** Directives upstream prepends to `RUST_LOG`. */
export const UPSTREAM_PREFIX_DIRECTIVES =
  "netlink_proto=warn,os_info=warn,rustls=warn,opentelemetry_sdk=info,opentelemetry=info,hyper_util=info";

/** Upstream crate/module names and the target prefix they mean here. */
export const TARGET_ALIASES: Readonly<Record<string, string>> = {
  "firezone_gateway": "fz_gateway",
  "phoenix_channel": "fz_gateway::portal",
  "firezone_tunnel": "fz_gateway::gateway",
  snownet: "fz_gateway::p2p",
  str0m: "fz_gateway::ice",
  boringtun: "fz_gateway::wireguard",
  "firezone_bin_shared": "fz_gateway::io",
};

const LEVELS: Readonly<Record<string, Level>> = {
  trace: Level.Trace,
  debug: Level.Debug,
  info: Level.Info,
  warn: Level.Warn,
  error: Level.Error,
  off: Level.Off,
};

/** One parsed directive; `target === null` sets the default level. */
export interface Directive {
  readonly target: string | null;
  readonly level: Level;
}

/** The parsed filter and the directives that could not be understood (to warn about). */
export interface ParsedFilter {
  readonly directives: readonly Directive[];
  readonly invalid: readonly string[];
  readonly filter: LevelFilter;
}

/** Parses a directive string (without the upstream prefix). */
export function parseDirectives(text: string): { directives: Directive[]; invalid: string[] } {
  const directives: Directive[] = [];
  const invalid: string[] = [];
  for (const raw of text.split(",")) {
    const part = raw.trim();
    if (part === "") continue;
    const eq = part.lastIndexOf("=");
    const target = eq < 0 ? part : part.slice(0, eq).trim();
    const levelText = eq < 0 ? null : part.slice(eq + 1).trim().toLowerCase();
    if (eq < 0 && LEVELS[part.toLowerCase()] !== undefined) {
      directives.push({ target: null, level: LEVELS[part.toLowerCase()]! });
      continue;
    }
    if (
      !/^[A-Za-z_][A-Za-z0-9_:\-.]*$/.test(target) || (levelText !== null && LEVELS[levelText] === undefined)
    ) {
      invalid.push(part);
      continue;
    }
    directives.push({
      target: aliasTarget(target),
      level: levelText === null ? Level.Trace : LEVELS[levelText]!,
    });
  }
  return { directives, invalid };
}

/** The log filter variables of an environment (only those that are set). */
export type LogFilterEnv = { RUST_LOG?: string; FZ_LOG?: string };

/** Picks `RUST_LOG` and `FZ_LOG` out of `env` (for handing them to the packet worker). */
export function logFilterEnv(env: Readonly<Record<string, string | undefined>>): LogFilterEnv {
  const out: LogFilterEnv = {};
  if (env.RUST_LOG !== undefined) out.RUST_LOG = env.RUST_LOG;
  if (env.FZ_LOG !== undefined) out.FZ_LOG = env.FZ_LOG;
  return out;
}

/**
 * Builds the filter from `FZ_LOG` (wins when set and non-empty) or `RUST_LOG`, after upstream's
 * fixed prefix.
 */
export function buildLogFilter(env: { readonly RUST_LOG?: string; readonly FZ_LOG?: string }): ParsedFilter {
  const user = env.FZ_LOG !== undefined && env.FZ_LOG !== "" ? env.FZ_LOG : env.RUST_LOG ?? "";
  const { directives, invalid } = parseDirectives(`${UPSTREAM_PREFIX_DIRECTIVES},${user}`);
  return { directives, invalid, filter: compileFilter(directives) };
}

/** The filter function for a directive list (later directives win over equal targets). */
export function compileFilter(directives: readonly Directive[]): LevelFilter {
  let defaultLevel: Level = Level.Error;
  const byTarget = new Map<string, Level>();
  for (const d of directives) {
    if (d.target === null) defaultLevel = d.level;
    else byTarget.set(d.target, d.level);
  }
  const targets = [...byTarget.keys()].sort((a, b) => b.length - a.length);
  return (target: string): Level => {
    for (const t of targets) if (target.startsWith(t)) return byTarget.get(t)!;
    return defaultLevel;
  };
}

function aliasTarget(target: string): string {
  for (const [upstream, ours] of Object.entries(TARGET_ALIASES)) {
    if (target === upstream || target.startsWith(`${upstream}::`)) {
      return ours + target.slice(upstream.length);
    }
  }
  return target;
}
