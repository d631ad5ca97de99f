/**
 * Docker's variable substitution on Dockerfile words, as BuildKit's shell lexer does it (not a shell: no
 * command substitution, no globbing, no arithmetic). The builder calls `expandInstruction` at each step with the
 * ARG/ENV in scope there; RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK are left to the shell in the container,
 * as Docker leaves them.
 */
import { InvalidArgumentError } from '../errors.js';
import type { FromInstruction, Instruction, RunMount } from './index.js';

export type EscapeChar = '\\' | '`';

/** What one word expands to: its text, the words it splits into (EXPOSE, VOLUME), and the variables it read. */
export interface Expansion {
  value: string;
  words: string[];
  /** names of the variables referenced that were set (the builder reports unused --build-arg like Docker) */
  used: Set<string>;
}

/**
 * One word: `$V`, `${V}`, `${V:-x}`, `${V-x}`, `${V:+x}`, `${V+x}`, `${V:?msg}`, `${V?msg}`, `${V#p}`, `${V##p}`,
 * `${V%p}`, `${V%%p}`, `${V/p/r}`, `${V//p/r}`; quotes removed, an unset variable is empty.
 */
export function expandWord(word: string, vars: Record<string, string>, escape: EscapeChar = '\\'): string {
  return lex(word, vars, escape).value;
}

/** A word list: expands, then splits on blanks outside quotes (how Docker reads EXPOSE and VOLUME words). */
export function expandWords(text: string, vars: Record<string, string>, escape: EscapeChar = '\\'): string[] {
  return lex(text, vars, escape).words;
}

/** The full result: value, split words and the variables used. Throws InvalidArgumentError on bad syntax. */
export function lex(word: string, vars: Record<string, string>, escape: EscapeChar = '\\'): Expansion {
  return new Lexer(word, vars, escape).run();
}

/**
 * The instruction with its words expanded where Docker expands them: FROM (image, platform), COPY/ADD (sources,
 * dest, --from, --chown, --chmod, --checksum), ENV and LABEL (keys and values), ARG defaults, EXPOSE and VOLUME
 * (each value, split into words as Docker does), WORKDIR, USER, STOPSIGNAL, and RUN --mount option values.
 * Quotes are removed from the expanded words. Heredoc bodies of COPY/ADD whose delimiter is unquoted are expanded
 * too. Everything else is returned unchanged.
 */
export function expandInstruction<T extends Instruction | FromInstruction>(instr: T, vars: Record<string, string>, escape: EscapeChar = '\\'): T {
  const word = (w: string): string => expandAt(instr, w, vars, escape).value;
  const opt = (w: string | undefined): string | undefined => (w === undefined ? undefined : word(w));
  const i = instr as Instruction | FromInstruction;
  switch (i.kind) {
    case 'FROM':
      return { ...i, image: word(i.image), platform: opt(i.platform) } as T;
    case 'COPY':
    case 'ADD': {
      const heredocNames = new Set(i.heredocs.map((h) => h.name));
      return {
        ...i,
        // heredoc sources name a heredoc, not a path: left as written
        sources: i.sources.map((s) => (isHeredocSource(s, heredocNames) ? s : word(s))),
        dest: word(i.dest),
        from: opt(i.from),
        chown: opt(i.chown),
        chmod: opt(i.chmod),
        checksum: opt(i.checksum),
        heredocs: i.heredocs.map((h) => (h.expand ? { ...h, content: expandHeredoc(instr, h.content, vars, escape) } : h)),
      } as T;
    }
    case 'ENV':
    case 'LABEL':
      return { ...i, pairs: i.pairs.map(([k, v]) => [word(k), word(v)] as [string, string]) } as T;
    case 'ARG':
      return { ...i, args: i.args.map((a) => (a.default === undefined ? a : { ...a, default: word(a.default) })) } as T;
    case 'EXPOSE':
    case 'VOLUME':
      return { ...i, values: i.values.flatMap((v) => expandAt(instr, v, vars, escape).words) } as T;
    case 'WORKDIR':
    case 'USER':
    case 'STOPSIGNAL':
      return { ...i, value: word(i.value) } as T;
    case 'RUN':
      return {
        ...i,
        mounts: i.mounts.map((m): RunMount => ({
          type: word(m.type),
          options: Object.fromEntries(Object.entries(m.options).map(([k, v]) => [k, word(v)])),
        })),
      } as T;
    default:
      return instr;
  }
}

/** `<<EOF`, `<<-EOF`, `<<"EOF"`: a COPY/ADD source that names one of the instruction's heredocs. */
export function isHeredocSource(source: string, names: Set<string>): boolean {
  const m = /^<<-?(["']?)(.+)\1$/.exec(source);
  return m !== null && names.has(m[2]!);
}

/** `lex`, with an error naming the instruction's line. */
export function expandAt(instr: Instruction | FromInstruction, w: string, vars: Record<string, string>, escape: EscapeChar): Expansion {
  try {
    return lex(w, vars, escape);
  } catch (err) {
    if (err instanceof InvalidArgumentError) {
      throw new InvalidArgumentError('Dockerfile', `line ${instr.line}: ${instr.kind}: ${stripPrefix(err.message)}`, err.hint, { cause: err });
    }
    throw err;
  }
}

/**
 * A heredoc body is expanded with quotes and escapes kept as written (BuildKit's raw quotes and raw escapes):
 * `$V` and `${V}` are replaced, `\$V` stays `\$V`.
 */
function expandHeredoc(instr: Instruction | FromInstruction, content: string, vars: Record<string, string>, escape: EscapeChar): string {
  try {
    return new Lexer(content, vars, escape, true).run().value;
  } catch (err) {
    if (err instanceof InvalidArgumentError) {
      throw new InvalidArgumentError('Dockerfile', `line ${instr.line}: heredoc: ${stripPrefix(err.message)}`, err.hint, { cause: err });
    }
    throw err;
  }
}

function stripPrefix(message: string): string {
  return message.replace(/^invalid [^:]+: /, '');
}

const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

class WordList {
  readonly words: string[] = [];
  private current = '';
  private inWord = false;
  addChar(ch: string): void {
    if (/\s/.test(ch)) {
      if (this.inWord) {
        this.words.push(this.current);
        this.current = '';
        this.inWord = false;
      }
    } else {
      this.addRaw(ch);
    }
  }
  addRaw(s: string): void {
    this.current += s;
    this.inWord = true;
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }
  finish(): string[] {
    if (this.inWord) this.words.push(this.current);
    return this.words;
  }
}

class Lexer {
  private pos = 0;
  private readonly used = new Set<string>();
  private readonly chars: string[];

  constructor(
    text: string,
    private readonly vars: Record<string, string>,
    private readonly escape: EscapeChar,
    /** heredoc bodies: quotes are plain characters */
    private readonly rawQuotes = false,
  ) {
    this.chars = [...text];
  }

  run(): Expansion {
    const words = new WordList();
    const value = this.until(undefined, words);
    return { value, words: words.finish(), used: this.used };
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }

  private next(): string | undefined {
    return this.chars[this.pos++];
  }

  private fail(message: string): never {
    throw new InvalidArgumentError('Dockerfile', message, 'check the quotes and ${...} of the word');
  }

  /** Reads up to `stop` (a `}` closing a substitution) or the end. */
  private until(stop: string | undefined, words: WordList): string {
    return this.untilAny(stop, words).text;
  }

  /** Reads up to one of the characters of `stops` (consumed, and returned as `stop`) or the end. */
  private untilAny(stops: string | undefined, words: WordList): { text: string; stop?: string } {
    let out = '';
    let found: string | undefined;
    while (this.peek() !== undefined) {
      const ch = this.peek()!;
      if (stops !== undefined && stops.includes(ch)) {
        this.next();
        found = ch;
        break;
      }
      if (ch === '$') {
        const v = this.dollar();
        out += v;
        words.addString(v);
      } else if (ch === "'" && !this.rawQuotes) {
        const v = this.singleQuoted();
        out += v;
        words.addRaw(v);
      } else if (ch === '"' && !this.rawQuotes) {
        const v = this.doubleQuoted();
        out += v;
        words.addRaw(v);
      } else {
        this.next();
        if (ch === this.escape) {
          const escaped = this.next();
          // an escape at the very end is dropped, as BuildKit does
          if (escaped === undefined) break;
          if (this.rawQuotes) {
            // heredoc bodies keep their escapes as written (BuildKit's raw escapes); the next character is still literal
            out += ch;
            words.addRaw(ch);
          }
          out += escaped;
          words.addRaw(escaped);
        } else {
          out += ch;
          words.addChar(ch);
        }
      }
    }
    if (stops !== undefined && found === undefined) this.fail(`missing '}' in a \${...} substitution`);
    return { text: out, ...(found !== undefined ? { stop: found } : {}) };
  }

  private singleQuoted(): string {
    this.next();
    let out = '';
    for (;;) {
      const ch = this.next();
      if (ch === undefined) this.fail('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return out;
      out += ch;
    }
  }

  private doubleQuoted(): string {
    this.next();
    let out = '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) this.fail('unexpected end of statement while looking for matching double-quote');
      if (ch === '"') {
        this.next();
        return out;
      }
      if (ch === '$') {
        out += this.dollar();
        continue;
      }
      this.next();
      if (ch === this.escape) {
        const after = this.peek();
        if (after === undefined) continue;
        // only `"`, `$` and the escape character itself can be escaped inside double quotes
        if (after === '"' || after === '$' || after === this.escape) {
          out += this.next();
          continue;
        }
      }
      out += ch;
    }
  }

  private name(): string {
    let name = '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) return name;
      if (name === '' && /[0-9]/.test(ch)) {
        while (this.peek() !== undefined && /[0-9]/.test(this.peek()!)) name += this.next();
        return name;
      }
      if (name === '' && SPECIAL_PARAMS.has(ch)) return this.next()!;
      if (!/[\p{L}\p{N}_]/u.test(ch)) return name;
      name += this.next();
    }
  }

  private lookup(name: string): string | undefined {
    if (Object.prototype.hasOwnProperty.call(this.vars, name)) {
      this.used.add(name);
      return this.vars[name];
    }
    return undefined;
  }

  private dollar(): string {
    this.next();
    const ch = this.peek();
    if (ch === undefined) return '$';
    if (ch !== '{') {
      const name = this.name();
      if (name === '') return '$';
      return this.lookup(name) ?? '';
    }
    this.next();
    const name = this.name();
    if (name === '') this.fail('bad substitution: a ${...} needs a variable name');
    const op = this.peek();
    if (op === '}') {
      this.next();
      return this.lookup(name) ?? '';
    }
    let colon = false;
    let mod = op;
    if (op === ':') {
      colon = true;
      this.next();
      mod = this.peek();
    }
    if (mod === '-' || mod === '+' || mod === '?') {
      this.next();
      const word = this.until('}', new WordList());
      const value = this.lookup(name);
      const unset = value === undefined || (colon && value === '');
      if (mod === '-') return unset ? word : value!;
      if (mod === '+') return unset ? '' : word;
      if (unset) this.fail(`${name}: ${word || (colon ? 'is not allowed to be unset or empty' : 'is not allowed to be unset')}`);
      return value!;
    }
    if (!colon && (mod === '#' || mod === '%')) {
      this.next();
      const longest = this.peek() === mod;
      if (longest) this.next();
      const pattern = globRegex(this.until('}', new WordList()));
      const value = this.lookup(name) ?? '';
      const cuts = [...Array(value.length + 1).keys()];
      // i is the length cut off, prefix or suffix: the shortest match first unless doubled (## or %%)
      if (longest) cuts.reverse();
      for (const i of cuts) {
        if (mod === '#' && pattern.test(value.slice(0, i))) return value.slice(i);
        if (mod === '%' && pattern.test(value.slice(value.length - i))) return value.slice(0, value.length - i);
      }
      return value;
    }
    if (!colon && mod === '/') {
      this.next();
      const all = this.peek() === '/';
      if (all) this.next();
      const { text: pattern, stop } = this.untilAny('/}', new WordList());
      const replacement = stop === '/' ? this.until('}', new WordList()) : '';
      const value = this.lookup(name) ?? '';
      if (pattern === '') return value;
      const re = new RegExp(globRegex(pattern).source.slice(1, -1), all ? 'gs' : 's');
      return value.replace(re, () => replacement);
    }
    if (mod === undefined) this.fail(`missing '}' in \${${name}`);
    this.fail(`unsupported modifier (${colon ? ':' : ''}${mod}) in substitution \${${name}...}`);
  }
}

/** A shell pattern (`*`, `?`, `\\x` literal) as an anchored regular expression. */
function globRegex(pattern: string): RegExp {
  let re = '';
  const chars = [...pattern];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else if (ch === '\\' && i + 1 < chars.length) re += escapeRegex(chars[++i]!);
    else re += escapeRegex(ch);
  }
  return new RegExp(`^${re}$`, 's');
}

function escapeRegex(ch: string): string {
  return ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
