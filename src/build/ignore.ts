import path from 'node:path';
import { InvalidArgumentError } from '../errors.js';

/**
 * .dockerignore, with Docker's rules (moby/patternmatcher and its ignorefile reader, which both the classic
 * builder and BuildKit use):
 * - a line starting with `#` is a comment (only at column 0: ` # x` is a pattern), blank lines are skipped,
 *   a UTF-8 BOM on the first line is dropped, surrounding spaces are trimmed;
 * - `!` makes an exception; lines apply in order and the last one that matches a path decides;
 * - each pattern is cleaned like Go's filepath.Clean (`./a` → `a`, `a/../b` → `b`, `/a` → `a`);
 * - `*` and `?` never cross a `/`, `[...]` is a class (`[^...]` negated), `\` escapes, and `**` matches
 *   any number of directories, zero included (`**` at the very end matches everything under the prefix);
 * - a pattern that matches a directory excludes everything beneath it (the parents of a path are tried too).
 *
 * Written here rather than taken from `@balena/dockerignore` 1.0.2, measured against this file's table
 * (ignore.test.ts) and 27 edge cases: it agrees on Docker's documented examples but (1) matches
 * case-insensitively by default (`Secret` excludes `secret`; Docker on Linux does not), (2) leaves regexp
 * characters unescaped (`c++` throws "Nothing to repeat", `a+b.(c)` excludes nothing), (3) reads `\#x` as
 * gitignore's escaped `#` where Docker compares it as written. Each would send or keep different files
 * than `docker build` does, silently.
 */
export interface IgnorePattern {
  /** the cleaned pattern, without its `!` */
  pattern: string;
  exception: boolean;
  /** 1-based line in the file it came from (0 when built from a list) */
  line: number;
}

export class DockerIgnore {
  private readonly compiled: { p: IgnorePattern; test: (file: string) => boolean; dirs: string[] }[];
  readonly hasExceptions: boolean;

  constructor(readonly patterns: IgnorePattern[]) {
    this.compiled = patterns.map((p) => ({ p, test: compile(p), dirs: p.pattern.split('/') }));
    this.hasExceptions = patterns.some((p) => p.exception);
  }

  /** True when `file` (relative to the context root, `/`-separated) is excluded, itself or through a parent. */
  ignores(file: string): boolean {
    const clean = cleanPath(file);
    if (clean === '.' || this.compiled.length === 0) return false;
    // patternmatcher's MatchesOrParentMatches: a pattern only needs testing when it could flip the verdict.
    const parentDirs = clean.split('/').slice(0, -1);
    let matched = false;
    for (const { p, test } of this.compiled) {
      if (p.exception !== matched) continue;
      let match = test(clean);
      for (let i = 1; !match && i <= parentDirs.length; i++) match = test(parentDirs.slice(0, i).join('/'));
      if (match) matched = !p.exception;
    }
    return matched;
  }

  /**
   * Whether an exception could re-include something beneath the excluded directory `dir`: then the
   * directory must still be walked (Docker sends the parents of a re-included file). Conservative: true
   * whenever the exception's leading components could match `dir`'s.
   */
  mayIncludeBeneath(dir: string): boolean {
    if (!this.hasExceptions) return false;
    const parts = cleanPath(dir).split('/');
    return this.compiled.some(({ p, dirs }) => {
      if (!p.exception) return false;
      for (let i = 0; i < parts.length; i++) {
        const d = dirs[i];
        if (d === undefined) return false;
        if (d.includes('**')) return true;
        if (!goMatchSafe(d, parts[i]!)) return false;
      }
      return dirs.length > parts.length || p.pattern.includes('**');
    });
  }
}

/** Reads a .dockerignore's text as moby's ignorefile.ReadAll does; `source` names the file in errors. */
export function parseDockerIgnore(text: string, source = '.dockerignore'): DockerIgnore {
  const out: IgnorePattern[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, i) => {
    if (raw.startsWith('#')) return;
    let pattern = raw.trim();
    if (!pattern) return;
    const exception = pattern.startsWith('!');
    if (exception) pattern = pattern.slice(1).trim();
    if (!pattern) {
      throw new InvalidArgumentError(source, `line ${i + 1}: "!" alone is not a pattern`, 'write the path to re-include after the "!"');
    }
    pattern = cleanPath(pattern);
    if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    const bad = goPatternError(pattern);
    if (bad) throw new InvalidArgumentError(source, `line ${i + 1}: bad pattern ${JSON.stringify(raw.trim())}: ${bad}`, 'close every "[" with "]" and escape a trailing "\\"');
    out.push({ pattern, exception, line: i + 1 });
  });
  return new DockerIgnore(out);
}

/** Go's filepath.Clean on a `/`-separated path (`..` at the root stays at the root). */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const n = path.posix.normalize(p);
  return n.length > 1 ? n.replace(/\/+$/, '') : n;
}

/**
 * patternmatcher's Pattern.compile: the pattern becomes a regular expression, except the common shapes
 * it special-cases (exact, `prefix/**`, `**` + suffix), kept here because they match differently at the edges
 * (`**` + `/foo` also matches `foo` itself).
 */
function compile(p: IgnorePattern): (file: string) => boolean {
  const pattern = p.pattern;
  const chars = Array.from(pattern);
  let re = '^';
  let type: 'exact' | 'prefix' | 'suffix' | 'regexp' = 'exact';
  let inClass = false;
  for (let i = 0; i < chars.length; i++) {
    const first = i === 0;
    const ch = chars[i]!;
    if (ch === '*') {
      if (chars[i + 1] === '*') {
        i++;
        if (chars[i + 1] === '/') i++;
        if (i + 1 >= chars.length) {
          if (type === 'exact') type = 'prefix';
          else {
            re += '.*';
            type = 'regexp';
          }
        } else {
          re += '(.*/)?';
          type = 'regexp';
        }
        if (first) type = 'suffix';
      } else {
        re += '[^/]*';
        type = 'regexp';
      }
    } else if (ch === '?') {
      re += '[^/]';
      type = 'regexp';
    } else if ('.+()|{}$'.includes(ch)) {
      re += '\\' + ch;
    } else if (ch === '\\') {
      if (i + 1 < chars.length) re += '\\' + chars[++i];
      else re += '\\\\';
    } else if (ch === '[' || ch === ']') {
      re += ch;
      inClass = ch === '[';
      type = 'regexp';
    } else {
      // Go's regexp would read a bare `^` as an anchor (so the pattern never matches); a literal is meant.
      re += ch === '^' && !inClass ? '\\^' : ch;
    }
  }
  switch (type) {
    case 'exact':
      return (f) => f === pattern;
    case 'prefix': {
      const prefix = pattern.slice(0, -2);
      return (f) => f.startsWith(prefix);
    }
    case 'suffix': {
      const suffix = pattern.slice(2);
      return (f) => f.endsWith(suffix) || (suffix.startsWith('/') && f === suffix.slice(1));
    }
    case 'regexp': {
      const rx = new RegExp(re + '$', 's');
      return (f) => rx.test(f);
    }
  }
}

// ---- Go's path/filepath.Match, for COPY sources and for checking patterns -------------------------------

class BadPattern extends Error {}

/**
 * Go's filepath.Match (Unix): `*` any run of non-`/` characters, `?` one non-`/` character, `[...]`
 * a class with ranges (`[^...]` negated), `\` escapes. The whole name must match. Throws BadPattern for a
 * malformed pattern, as Go returns ErrBadPattern.
 */
function goMatchOrThrow(pattern: string, name: string): boolean {
  let pat = Array.from(pattern);
  let nm = Array.from(name);
  outer: while (pat.length > 0) {
    const { star, chunk, rest } = scanChunk(pat);
    pat = rest;
    if (star && chunk.length === 0) return !nm.includes('/');
    const t = matchChunk(chunk, nm);
    if (t && (t.length === 0 || pat.length > 0)) {
      nm = t;
      continue;
    }
    if (star) {
      for (let i = 0; i < nm.length && nm[i] !== '/'; i++) {
        const t2 = matchChunk(chunk, nm.slice(i + 1));
        if (t2) {
          if (pat.length === 0 && t2.length > 0) continue;
          nm = t2;
          continue outer;
        }
      }
    }
    // Go checks the rest of the pattern before answering false.
    while (pat.length > 0) {
      const next = scanChunk(pat);
      pat = next.rest;
      matchChunk(next.chunk, []);
    }
    return false;
  }
  return nm.length === 0;
}

/** Go's filepath.Match; a malformed pattern is reported as an InvalidArgumentError naming `field`. */
export function goMatch(pattern: string, name: string, field = 'pattern'): boolean {
  try {
    return goMatchOrThrow(pattern, name);
  } catch (err) {
    if (err instanceof BadPattern) throw new InvalidArgumentError(field, `bad pattern ${JSON.stringify(pattern)}: ${err.message}`, 'close every "[" with "]" and escape a trailing "\\"');
    throw err;
  }
}

function goMatchSafe(pattern: string, name: string): boolean {
  try {
    return goMatchOrThrow(pattern, name);
  } catch {
    return false;
  }
}

/** What is wrong with a pattern (Go's filepath.Match(p, ".") error), or undefined. */
export function goPatternError(pattern: string): string | undefined {
  try {
    goMatchOrThrow(pattern, '.');
    return undefined;
  } catch (err) {
    if (err instanceof BadPattern) return err.message;
    throw err;
  }
}

/** True when a COPY source has glob characters (fsutil's containsWildcards: `*`, `?`, `[`, unless escaped). */
export function hasWildcards(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\') i++;
    else if (s[i] === '*' || s[i] === '?' || s[i] === '[') return true;
  }
  return false;
}

function scanChunk(pat: string[]): { star: boolean; chunk: string[]; rest: string[] } {
  let star = false;
  let start = 0;
  while (start < pat.length && pat[start] === '*') {
    start++;
    star = true;
  }
  let inrange = false;
  let i = start;
  scan: for (; i < pat.length; i++) {
    switch (pat[i]) {
      case '\\':
        if (i + 1 < pat.length) i++;
        break;
      case '[':
        inrange = true;
        break;
      case ']':
        inrange = false;
        break;
      case '*':
        if (!inrange) break scan;
    }
  }
  return { star, chunk: pat.slice(start, i), rest: pat.slice(i) };
}

/** The rest of `s` after `chunk` matched its start, or undefined; the whole chunk is checked for syntax either way. */
function matchChunk(chunk: string[], s: string[]): string[] | undefined {
  let failed = false;
  let c = 0;
  let si = 0;
  while (c < chunk.length) {
    if (!failed && si >= s.length) failed = true;
    const ch = chunk[c]!;
    if (ch === '[') {
      let r = '';
      if (!failed) r = s[si++]!;
      c++;
      let negated = false;
      if (chunk[c] === '^') {
        negated = true;
        c++;
      }
      let match = false;
      let nrange = 0;
      for (;;) {
        if (c < chunk.length && chunk[c] === ']' && nrange > 0) {
          c++;
          break;
        }
        const lo = getEsc(chunk, c);
        c = lo.next;
        let hi = lo.r;
        if (chunk[c] === '-') {
          const h = getEsc(chunk, c + 1);
          hi = h.r;
          c = h.next;
        }
        if (!failed && cp(lo.r) <= cp(r) && cp(r) <= cp(hi)) match = true;
        nrange++;
      }
      if (match === negated) failed = true;
    } else if (ch === '?') {
      if (!failed) {
        if (s[si] === '/') failed = true;
        si++;
      }
      c++;
    } else {
      if (ch === '\\') {
        c++;
        if (c >= chunk.length) throw new BadPattern('a trailing "\\" escapes nothing');
      }
      if (!failed) {
        if (chunk[c] !== s[si]) failed = true;
        si++;
      }
      c++;
    }
  }
  return failed ? undefined : s.slice(si);
}

function getEsc(chunk: string[], at: number): { r: string; next: number } {
  let i = at;
  if (i >= chunk.length || chunk[i] === '-' || chunk[i] === ']') throw new BadPattern('a character class is empty or unclosed');
  if (chunk[i] === '\\') {
    i++;
    if (i >= chunk.length) throw new BadPattern('a trailing "\\" escapes nothing');
  }
  const r = chunk[i]!;
  i++;
  if (i >= chunk.length) throw new BadPattern('a character class is not closed with "]"');
  return { r, next: i };
}

function cp(ch: string): number {
  return ch.codePointAt(0) ?? -1;
}
