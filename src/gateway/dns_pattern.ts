/**
 * DNS resource address patterns (spec §4.6): glob matching with `.` as the path separator.
 *
 * A pattern such as `*.corp.example` is matched against a domain after replacing every `.` with
 * `/`, case-insensitively, with these glob rules: `?` matches one character except a dot; `*`
 * matches any run of characters without a dot (one label or part of one); `**` forms a whole
 * label and matches any number of labels, zero included; `[abc]`, `[a-z]` and `[!abc]` match one
 * character (never a dot). `***`, or `**` next to other characters in the same label, make the
 * pattern invalid. Quirk: `*.x` also matches `x` itself.
 *
 * Also the ordering of patterns used to pick the most specific resource (`comparePatterns`).
 * Control path (allocates).
 *
 * @module
 */

/** Thrown by {@link DomainPattern.parse} for an invalid glob. */
export class PatternError extends SyntaxError {
  override name = "PatternError";
}

const TOKEN_CHAR = 0;
const TOKEN_ANY_CHAR = 1;
const TOKEN_ANY_SEQUENCE = 2;
const TOKEN_ANY_RECURSIVE = 3;
const TOKEN_ANY_WITHIN = 4;
const TOKEN_ANY_EXCEPT = 5;

interface Token {
  readonly kind: number;
  /** CHAR: the character. */
  readonly ch: string;
  /** ANY_WITHIN / ANY_EXCEPT: single characters and `[from, to]` ranges. */
  readonly specs: readonly (string | readonly [string, string])[];
}

/** A compiled DNS resource pattern. */
export class DomainPattern {
  /** The pattern as configured in the portal (dots, not slashes). */
  readonly original: string;
  readonly #tokens: readonly Token[];
  /** The glob text (`.` replaced by `/`). */
  readonly #glob: string;

  /** Prefer {@link DomainPattern.parse}. */
  constructor(original: string, glob: string, tokens: readonly Token[]) {
    this.original = original;
    this.#glob = glob;
    this.#tokens = tokens;
  }

  /**
   * Compiles a pattern.
   *
   * @throws PatternError when the glob is invalid (`***`, `a**`, `**b`, an unclosed `[`)
   */
  static parse(pattern: string): DomainPattern {
    const glob = pattern.replaceAll(".", "/");
    return new DomainPattern(pattern, glob, compile(glob));
  }

  /** Like {@link DomainPattern.parse} but returns null for an invalid pattern. */
  static tryParse(pattern: string): DomainPattern | null {
    try {
      return DomainPattern.parse(pattern);
    } catch (e) {
      if (e instanceof PatternError) return null;
      throw e;
    }
  }

  /** True when `domain` (with or without a trailing dot) matches this pattern. */
  matches(domain: string): boolean {
    const candidate = toCandidate(domain);
    if (this.#glob.startsWith("*/") && candidate.toLowerCase() === this.#glob.slice(2).toLowerCase()) {
      return true;
    }
    return matchFrom(this.#tokens, 0, Array.from(candidate), 0);
  }

  toString(): string {
    return this.original;
  }
}

/**
 * True when `domain` matches the resource `pattern` (upstream `is_subdomain`). An invalid pattern
 * matches nothing.
 */
export function isSubdomain(domain: string, pattern: string): boolean {
  const p = DomainPattern.tryParse(pattern);
  return p !== null && p.matches(domain);
}

/**
 * Orders patterns from most to least specific (upstream `Pattern::cmp`): characters are compared
 * from the right; a wildcard sorts after a non-wildcard, `*` after `?`, a wildcard label after a
 * shorter pattern; non-wildcards compare in reverse character order; a shorter pattern first.
 *
 * @returns negative if `a` sorts first, positive if `b` does, 0 if equal
 */
export function comparePatterns(a: string, b: string): number {
  const ac = Array.from(a);
  const bc = Array.from(b);
  let i = ac.length - 1;
  let j = bc.length - 1;
  for (;;) {
    const x = i >= 0 ? ac[i]! : undefined;
    const y = j >= 0 ? bc[j]! : undefined;
    i--;
    j--;
    if (x !== undefined && y !== undefined && x === y) continue;
    const xWild = x === "*" || x === "?";
    const yWild = y === "*" || y === "?";
    if (x === "*" && y === "?") return 1;
    if (x === "?" && y === "*") return -1;
    if (xWild && (y === undefined || y === ".")) return 1;
    if ((x === undefined || x === ".") && yWild) return -1;
    if (xWild && y !== undefined) return 1;
    if (x !== undefined && yWild) return -1;
    if (x !== undefined && y !== undefined) return x < y ? 1 : -1; // reversed: compared right to left
    if (x !== undefined) return 1;
    if (y !== undefined) return -1;
    return 0;
  }
}

/** Lowercase-insensitive candidate: trailing dot dropped, dots become separators. */
function toCandidate(domain: string): string {
  const d = domain.endsWith(".") && domain.length > 1 ? domain.slice(0, -1) : domain;
  return d.replaceAll(".", "/");
}

function compile(glob: string): Token[] {
  const chars = Array.from(glob);
  const tokens: Token[] = [];
  let i = 0;
  while (i < chars.length) {
    const c = chars[i]!;
    if (c === "?") {
      tokens.push({ kind: TOKEN_ANY_CHAR, ch: "", specs: [] });
      i++;
    } else if (c === "*") {
      const start = i;
      while (i < chars.length && chars[i] === "*") i++;
      const count = i - start;
      if (count > 2) {
        throw new PatternError(
          `Invalid pattern "${glob}": wildcards are either regular \`*\` or recursive \`**\``,
        );
      }
      if (count === 1) {
        tokens.push({ kind: TOKEN_ANY_SEQUENCE, ch: "", specs: [] });
        continue;
      }
      // `**` must be a whole label: at the start or after a separator, and followed by one or the end.
      if (!(start === 0 || chars[start - 1] === "/")) {
        throw new PatternError(`Invalid pattern "${glob}": recursive wildcards must form a single label`);
      }
      if (i < chars.length && chars[i] === "/") i++;
      else if (i !== chars.length) {
        throw new PatternError(`Invalid pattern "${glob}": recursive wildcards must form a single label`);
      }
      const last = tokens[tokens.length - 1];
      if (!(tokens.length > 1 && last !== undefined && last.kind === TOKEN_ANY_RECURSIVE)) {
        tokens.push({ kind: TOKEN_ANY_RECURSIVE, ch: "", specs: [] });
      }
    } else if (c === "[") {
      const t = parseBracket(chars, i);
      if (t === null) throw new PatternError(`Invalid pattern "${glob}": invalid range pattern at ${i}`);
      tokens.push(t.token);
      i = t.next;
    } else {
      tokens.push({ kind: TOKEN_CHAR, ch: c, specs: [] });
      i++;
    }
  }
  return tokens;
}

/** `[...]` / `[!...]`; the first character after `[` (or `[!`) may be `]` itself. */
function parseBracket(chars: string[], i: number): { token: Token; next: number } | null {
  if (i + 4 <= chars.length && chars[i + 1] === "!") {
    const j = indexOfFrom(chars, "]", i + 3);
    if (j < 0) return null;
    return {
      token: { kind: TOKEN_ANY_EXCEPT, ch: "", specs: parseSpecs(chars.slice(i + 2, j)) },
      next: j + 1,
    };
  }
  if (i + 3 <= chars.length && chars[i + 1] !== "!") {
    const j = indexOfFrom(chars, "]", i + 2);
    if (j < 0) return null;
    return {
      token: { kind: TOKEN_ANY_WITHIN, ch: "", specs: parseSpecs(chars.slice(i + 1, j)) },
      next: j + 1,
    };
  }
  return null;
}

function parseSpecs(s: string[]): (string | readonly [string, string])[] {
  const out: (string | readonly [string, string])[] = [];
  let i = 0;
  while (i < s.length) {
    if (i + 3 <= s.length && s[i + 1] === "-") {
      out.push([s[i]!, s[i + 2]!]);
      i += 3;
    } else {
      out.push(s[i]!);
      i++;
    }
  }
  return out;
}

function indexOfFrom(chars: string[], c: string, from: number): number {
  for (let k = from; k < chars.length; k++) if (chars[k] === c) return k;
  return -1;
}

/**
 * Backtracking glob match of `tokens[ti..]` against `s[si..]` with literal separators: `?`, `*`
 * and brackets never match `/`; `**` (which includes its trailing `/`) resumes only after a `/`.
 */
function matchFrom(tokens: readonly Token[], ti: number, s: readonly string[], si: number): boolean {
  for (let t = ti; t < tokens.length; t++) {
    const tok = tokens[t]!;
    if (tok.kind === TOKEN_ANY_SEQUENCE || tok.kind === TOKEN_ANY_RECURSIVE) {
      if (matchFrom(tokens, t + 1, s, si)) return true;
      let k = si;
      while (k < s.length) {
        const c = s[k]!;
        k++;
        const isSep = c === "/";
        if (tok.kind === TOKEN_ANY_RECURSIVE) {
          if (!isSep) continue;
        } else if (isSep) {
          return false;
        }
        if (matchFrom(tokens, t + 1, s, k)) return true;
      }
      // The remaining tokens must match the empty rest.
      si = s.length;
      continue;
    }
    if (si >= s.length) return false;
    const c = s[si]!;
    si++;
    const isSep = c === "/";
    let ok: boolean;
    switch (tok.kind) {
      case TOKEN_ANY_CHAR:
        ok = !isSep;
        break;
      case TOKEN_ANY_WITHIN:
        ok = !isSep && inSpecs(tok.specs, c);
        break;
      case TOKEN_ANY_EXCEPT:
        ok = !isSep && !inSpecs(tok.specs, c);
        break;
      default:
        ok = charsEqual(c, tok.ch);
    }
    if (!ok) return false;
  }
  return si >= s.length;
}

function charsEqual(a: string, b: string): boolean {
  return a === b ||
    (a.length === 1 && b.length === 1 && a.toLowerCase() === b.toLowerCase() && isAscii(a) && isAscii(b));
}

function isAscii(c: string): boolean {
  return c.charCodeAt(0) < 128;
}

function inSpecs(specs: readonly (string | readonly [string, string])[], c: string): boolean {
  for (const spec of specs) {
    if (typeof spec === "string") {
      if (charsEqual(c, spec)) return true;
      continue;
    }
    const [from, to] = spec;
    // As the glob crate does: case-insensitive only when both bounds are ASCII letters.
    if (isAscii(c) && isAsciiAlpha(from) && isAsciiAlpha(to)) {
      const lc = c.toLowerCase();
      if (lc >= from.toLowerCase() && lc <= to.toLowerCase()) return true;
    }
    if (c >= from && c <= to) return true;
  }
  return false;
}

function isAsciiAlpha(c: string): boolean {
  return /^[A-Za-z]$/.test(c);
}
