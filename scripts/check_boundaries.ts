// deno-lint-ignore-file no-console
/**
 * Fails when a pure module touches the OS.
 *
 * Pure = every `.ts` file under `src/` except `src/io/` and `src/health/server.ts`. A pure module must
 * not import `ffi/` or `src/io/`, and must not use `Deno.*`, the clock (`Date.now`, `new Date()`,
 * `performance.now`), timers (`setTimeout`, `setInterval`) or randomness (`Math.random`,
 * `crypto.getRandomValues`, `crypto.randomUUID`). Time and randomness are injected instead.
 *
 * Usage: `deno run --allow-read scripts/check_boundaries.ts [root]` (exit 1 on violations).
 *
 * @module
 */

/** One rule broken at one line. */
export interface Violation {
  file: string;
  line: number;
  rule: string;
  text: string;
}

const FORBIDDEN: ReadonlyArray<[RegExp, string]> = [
  [/\bDeno\s*\./, "uses Deno.* (only src/io/, ffi/ and main.ts may)"],
  [/\bDate\s*\.\s*now\s*\(/, "reads the clock with Date.now(); take `now`/`utcNowMs` as a parameter"],
  [/\bnew\s+Date\s*\(\s*\)/, "reads the clock with new Date(); take `utcNowMs` as a parameter"],
  [/\bperformance\s*\.\s*now\s*\(/, "reads the clock with performance.now(); take `now` as a parameter"],
  [/\bset(Timeout|Interval)\s*\(/, "arms a timer; expose pollTimeout()/handleTimeout(now) instead"],
  [/\bMath\s*\.\s*random\s*\(/, "uses Math.random(); take an Rng"],
  [/\bcrypto\s*\.\s*(getRandomValues|randomUUID)\s*\(/, "uses Web Crypto randomness; take an Rng"],
];

const IMPORT_RE =
  /(?:\bimport\b|\bexport\b)[^;]*?\bfrom\s*(["'])([^"']+)\1|\bimport\s*\(\s*(["'])([^"']+)\3\s*\)/g;

/** True for files under `src/` that must stay free of I/O. Paths are relative to the repo root. */
export function isPureModule(relPath: string): boolean {
  const p = relPath.replaceAll("\\", "/");
  if (!p.startsWith("src/") || !p.endsWith(".ts")) return false;
  return !p.startsWith("src/io/") && p !== "src/health/server.ts";
}

/** The violations in one pure module's source text. */
export function findViolations(relPath: string, source: string): Violation[] {
  const out: Violation[] = [];
  const code = stripCommentsAndStrings(source);
  const lines = code.split("\n");
  const original = source.split("\n");
  for (let i = 0; i < lines.length; i++) {
    for (const [re, rule] of FORBIDDEN) {
      if (re.test(lines[i]!)) out.push({ file: relPath, line: i + 1, rule, text: original[i]!.trim() });
    }
  }
  // Imports are read from the original text (specifiers are strings, which stripping removed).
  for (const m of source.matchAll(IMPORT_RE)) {
    const spec = m[2] ?? m[4] ?? "";
    const target = resolveRelative(relPath, spec);
    if (target === null) continue;
    if (target.startsWith("ffi/") || target.startsWith("src/io/")) {
      const line = source.slice(0, m.index).split("\n").length;
      out.push({
        file: relPath,
        line,
        rule: `imports ${target} (pure modules must not reach the OS layer)`,
        text: m[0],
      });
    }
  }
  return out;
}

/** Blanks out comments and string/template contents, keeping line structure. */
export function stripCommentsAndStrings(src: string): string {
  let out = "";
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    const n = src[i + 1];
    if (c === "/" && n === "/") {
      while (i < src.length && src[i] !== "\n") i++;
    } else if (c === "/" && n === "*") {
      i += 2;
      while (i < src.length && !(src[i] === "*" && src[i + 1] === "/")) {
        if (src[i] === "\n") out += "\n";
        i++;
      }
      i += 2;
    } else if (c === '"' || c === "'" || c === "`") {
      i++;
      while (i < src.length && src[i] !== c) {
        if (src[i] === "\\") i++;
        else if (src[i] === "\n") out += "\n";
        i++;
      }
      i++;
      out += '""';
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function resolveRelative(fromFile: string, spec: string): string | null {
  if (!spec.startsWith(".")) return null;
  const parts = fromFile.split("/").slice(0, -1);
  for (const seg of spec.split("/")) {
    if (seg === "." || seg === "") continue;
    if (seg === "..") parts.pop();
    else parts.push(seg);
  }
  return parts.join("/");
}

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* walk(path);
    else if (entry.isFile && entry.name.endsWith(".ts")) yield path;
  }
}

if (import.meta.main) {
  const root = Deno.args[0] ?? new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const violations: Violation[] = [];
  let checked = 0;
  for await (const abs of walk(`${root}/src`)) {
    const rel = abs.slice(root.length + 1);
    if (!isPureModule(rel)) continue;
    checked++;
    violations.push(...findViolations(rel, await Deno.readTextFile(abs)));
  }
  for (const v of violations) {
    console.error(`${v.file}:${v.line}: ${v.rule}\n    ${v.text}`);
  }
  if (violations.length > 0) {
    console.error(`check_boundaries: ${violations.length} violation(s) in pure modules`);
    Deno.exit(1);
  }
  console.log(`check_boundaries: ${checked} pure modules clean`);
}
