/**
 * Dockerfile text → the model of ./index.ts, nothing expanded (expansion depends on each step's ARG/ENV).
 *
 * dockerfile-ast gives the document's structure: the parser directives (`# escape=`, `# syntax=`) and, for each
 * instruction, its keyword and the lines it spans (continuations and heredoc bodies included), which it gets right
 * as Docker does (blank and comment lines inside a continuation, `\r\n`). Inside those lines we read the words
 * ourselves, with BuildKit's rules, because measured against Docker dockerfile-ast falls short there:
 *   - its argument text keeps comment lines that sit inside a continuation (`RUN a \⏎ # c⏎ b` gives `a # c b`);
 *   - its JSON strings drop blanks (`COPY ["a b", "/x/"]` gives `ab`);
 *   - ENV/LABEL values come back unquoted, losing `'$x'` versus `"$x"` that expansion needs;
 *   - heredocs lose whether the delimiter was quoted (no expansion) and their bodies keep `<<-` tabs;
 */
import { DockerfileParser } from 'dockerfile-ast';
import { InvalidArgumentError } from '../errors.js';
import type { ArgInstruction, CommandForm, Dockerfile, FromInstruction, Heredoc, Instruction, RunMount, Stage } from './index.js';
import { expandAt, lex, type EscapeChar } from './expand.js';

export interface ParseOptions {
  /** the name used in messages (`Dockerfile:7: ...`), default `Dockerfile` */
  file?: string;
}

const KINDS = new Set([
  'FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER',
  'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL',
]);

/** Flags each instruction accepts, as BuildKit's; `true` marks a flag that may repeat. */
const FLAGS: Record<string, Record<string, boolean>> = {
  FROM: { platform: false },
  RUN: { mount: true, network: false, security: false },
  COPY: { from: false, chown: false, chmod: false, link: false, parents: false, exclude: true },
  ADD: { chown: false, chmod: false, checksum: false, link: false, 'keep-git-dir': false, exclude: true, unpack: false },
  HEALTHCHECK: { interval: false, timeout: false, 'start-period': false, 'start-interval': false, retries: false },
};

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

/** Parses a Dockerfile. Throws InvalidArgumentError (field `Dockerfile`) naming the file and line. */
export function parseDockerfile(text: string, opts: ParseOptions = {}): Dockerfile {
  const file = opts.file ?? 'Dockerfile';
  const source = text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  const lines = source.split('\n');
  const ast = DockerfileParser.parse(source);

  const directives: Dockerfile['directives'] = { escape: '\\' };
  for (const d of ast.getDirectives()) {
    const name = d.getName().toLowerCase();
    const value = d.getValue();
    if (name === 'escape') {
      if (value !== '\\' && value !== '`') {
        throw syntaxError(file, d.getRange().start.line + 1, `invalid escape character ${JSON.stringify(value)}: it must be \\ or \``);
      }
      directives.escape = value;
    } else if (name === 'syntax') {
      directives.syntax = value;
    }
  }
  const ctx: Ctx = { file, escape: directives.escape };

  const globalArgs: ArgInstruction[] = [];
  const stages: Stage[] = [];
  for (const node of ast.getInstructions()) {
    const range = node.getRange();
    const lineNo = range.start.line + 1;
    const { line, endLine } = joinContinuations(ctx, lines, range.start.line, range.start.character);
    const heredocLines = lines.slice(endLine + 1, range.end.line + 1);
    const instr = parseInstruction(ctx, lineNo, line, heredocLines);
    if (instr.kind === 'FROM') {
      const name = instr.alias;
      if (name !== undefined && stages.some((s) => s.name === name)) {
        throw syntaxError(file, lineNo, `duplicate stage name ${JSON.stringify(name)}`, 'give each stage of the Dockerfile its own name');
      }
      stages.push({ index: stages.length, ...(name !== undefined ? { name } : {}), from: instr, instructions: [] });
    } else if (stages.length === 0) {
      if (instr.kind !== 'ARG') {
        throw syntaxError(file, lineNo, `${instr.kind} before the first FROM: only ARG may come before FROM`, 'start the Dockerfile with FROM (optionally after ARG lines)');
      }
      globalArgs.push(instr);
    } else {
      stages[stages.length - 1]!.instructions.push(instr);
    }
  }
  if (stages.length === 0) {
    throw new InvalidArgumentError('Dockerfile', `${file}: no FROM instruction: there is no stage to build`, 'add a FROM line naming the base image (or scratch)');
  }
  return { directives, globalArgs, stages };
}

interface Ctx {
  file: string;
  escape: EscapeChar;
}

function syntaxError(file: string, line: number, message: string, hint?: string): InvalidArgumentError {
  return new InvalidArgumentError('Dockerfile', `${file}:${line}: ${message}`, hint ?? 'see the Dockerfile reference for this instruction');
}

/**
 * One logical line as Docker's parser builds it: a trailing escape (followed by blanks only) continues on the next
 * line; comment lines and blank lines inside a continuation are dropped; the pieces are joined as they are.
 */
function joinContinuations(ctx: Ctx, lines: string[], start: number, column: number): { line: string; endLine: number } {
  const cont = new RegExp(`${ctx.escape === '\\' ? '\\\\' : '`'}[ \\t]*$`);
  let piece = lines[start]!.slice(column);
  let joined = '';
  let i = start;
  for (;;) {
    if (!cont.test(piece)) {
      joined += piece;
      break;
    }
    joined += piece.replace(cont, '');
    // Docker's parser ends the instruction at the end of the file with what it has: a trailing continuation
    // (even one followed only by blank and comment lines) is tolerated, not an error.
    let next = i;
    do next++;
    while (next < lines.length && /^\s*(#.*)?$/.test(lines[next]!));
    if (next >= lines.length) break;
    i = next;
    piece = lines[i]!;
  }
  return { line: joined.trim(), endLine: i };
}

/** A logical line (and the lines after it, holding its heredoc bodies) → an instruction. */
function parseInstruction(ctx: Ctx, lineNo: number, line: string, following: string[]): Instruction | FromInstruction {
  const m = /^(\S+)\s*([\s\S]*)$/.exec(line)!;
  const keyword = m[1]!.toUpperCase();
  if (!KINDS.has(keyword)) {
    throw syntaxError(ctx.file, lineNo, `unknown instruction: ${keyword}`, 'check the spelling; the Dockerfile reference lists the instructions');
  }
  const fail: (message: string, hint?: string) => never = (message, hint) => {
    throw syntaxError(ctx.file, lineNo, `${keyword}: ${message}`, hint);
  };
  const { flags, rest } = extractFlags(m[2]!, fail);
  const allowed = FLAGS[keyword] ?? {};
  const seen = new Set<string>();
  for (const [name] of flags) {
    if (!(name in allowed)) fail(`unknown flag: --${name}`);
    if (seen.has(name) && !allowed[name]) fail(`--${name} is given more than once`);
    seen.add(name);
  }
  const flag = (name: string): string | undefined => {
    const found = flags.filter(([n]) => n === name);
    return found.length > 0 ? found[found.length - 1]![1] : undefined;
  };
  const valued = (name: string): string | undefined => {
    const v = flag(name);
    if (v === '') fail(`--${name} needs a value (--${name}=...)`);
    return v;
  };

  // heredocs belong to RUN, COPY and ADD in their shell form only
  const heredocs: Heredoc[] = [];
  const heredocText: string[] = [];
  if ((keyword === 'RUN' || keyword === 'COPY' || keyword === 'ADD') && parseJsonArray(rest) === undefined) {
    let at = 0;
    for (const marker of heredocMarkers(rest)) {
      const body: string[] = [];
      let terminated = false;
      while (at < following.length) {
        const l = following[at++]!;
        if ((marker.stripTabs ? l.replace(/^\t+/, '') : l) === marker.name) {
          terminated = true;
          heredocText.push(...body, l);
          break;
        }
        body.push(l);
      }
      if (!terminated) {
        fail(`unterminated heredoc <<${marker.name}: no line ${JSON.stringify(marker.name)} ends it`, `end the heredoc with a line holding only ${marker.name}`);
      }
      const content = body.map((l) => (marker.stripTabs ? l.replace(/^\t+/, '') : l) + '\n').join('');
      heredocs.push({ ...marker, content });
    }
  }
  const base = { line: lineNo, text: heredocText.length > 0 ? `${line}\n${heredocText.join('\n')}` : line };

  switch (keyword) {
    case 'FROM': {
      const words = splitBlanks(rest);
      if (words.length !== 1 && !(words.length === 3 && words[1]!.toLowerCase() === 'as')) {
        fail('FROM requires either one or three arguments: FROM image [AS name]');
      }
      const alias = words[2]?.toLowerCase();
      if (alias !== undefined && !STAGE_NAME.test(alias)) {
        fail(`invalid stage name ${JSON.stringify(words[2])}: it must start with a letter and hold only letters, digits, '-', '_' and '.'`);
      }
      const platform = valued('platform');
      return { kind: 'FROM', ...base, image: words[0]!, ...(alias !== undefined ? { alias } : {}), ...(platform !== undefined ? { platform } : {}) };
    }
    case 'RUN': {
      if (rest === '') fail('RUN requires at least one argument');
      if (flag('security') !== undefined) fail('--security is not supported', 'remove --security: RUN steps run with the default privileges');
      const network = valued('network');
      if (network !== undefined && !['default', 'none', 'host'].includes(network)) {
        fail(`unsupported network mode ${JSON.stringify(network)}`, 'use --network=default, none or host');
      }
      const mounts = flags.filter(([n]) => n === 'mount').map(([, v]) => parseMount(v, fail));
      return {
        kind: 'RUN', ...base, command: runCommand(rest, heredocs), mounts, ...(network !== undefined ? { network } : {}), heredocs,
      };
    }
    case 'CMD':
    case 'ENTRYPOINT':
      return { kind: keyword, ...base, command: commandForm(rest) };
    case 'SHELL': {
      const args = parseJsonArray(rest);
      if (args === undefined) fail('SHELL requires the arguments to be in JSON form: SHELL ["executable", "parameters"]');
      if (args.length === 0) fail('SHELL requires at least one argument');
      return { kind: 'SHELL', ...base, args };
    }
    case 'COPY':
    case 'ADD': {
      const words = parseJsonArray(rest) ?? splitBlanks(rest);
      if (words.length < 2) fail(`${keyword} requires at least two arguments: the source(s) and the destination`);
      const chmod = valued('chmod');
      // a chmod written with a variable is checked by the builder once expanded
      if (chmod !== undefined && !chmod.includes('$') && !/^[0-7]{1,4}$/.test(chmod)) {
        fail(`--chmod=${chmod} is not an octal mode`, 'give the mode in octal, e.g. --chmod=755');
      }
      const from = valued('from');
      const chown = valued('chown');
      const checksum = valued('checksum');
      const otherFlags: Record<string, string> = {};
      for (const [n, v] of flags) if (!['from', 'chown', 'chmod', 'checksum'].includes(n)) otherFlags[n] = v === '' ? 'true' : v;
      return {
        kind: keyword, ...base, sources: words.slice(0, -1), dest: words[words.length - 1]!,
        ...(from !== undefined ? { from } : {}), ...(chown !== undefined ? { chown } : {}), ...(chmod !== undefined ? { chmod } : {}),
        ...(checksum !== undefined ? { checksum } : {}), otherFlags, heredocs,
      };
    }
    case 'ENV':
    case 'LABEL':
      return { kind: keyword, ...base, pairs: parseNameValues(keyword, rest, ctx.escape, fail) };
    case 'ARG': {
      const words = parseWords(rest, ctx.escape);
      if (words.length === 0) fail('ARG requires at least one argument');
      const args = words.map((w) => {
        const eq = w.indexOf('=');
        const name = eq < 0 ? w : w.slice(0, eq);
        if (name === '') fail(`an ARG needs a name: ${JSON.stringify(w)}`);
        return eq < 0 ? { name } : { name, default: w.slice(eq + 1) };
      });
      return { kind: 'ARG', ...base, args };
    }
    case 'WORKDIR':
    case 'USER':
    case 'STOPSIGNAL':
    case 'MAINTAINER':
      if (rest === '') fail(`${keyword} requires exactly one argument`);
      return { kind: keyword, ...base, value: rest };
    case 'EXPOSE':
    case 'VOLUME': {
      const values = keyword === 'VOLUME' ? (parseJsonArray(rest) ?? splitBlanks(rest)) : splitBlanks(rest);
      if (values.length === 0) fail(`${keyword} requires at least one argument`);
      if (values.some((v) => v.trim() === '')) fail(`${keyword} specified can not be an empty string`);
      return { kind: keyword, ...base, values };
    }
    case 'HEALTHCHECK':
      return parseHealthcheck(base, rest, valued, fail);
    case 'ONBUILD': {
      if (rest === '') fail('ONBUILD requires at least one argument');
      const trigger = /^\S+/.exec(rest)![0].toUpperCase();
      if (trigger === 'ONBUILD' || trigger === 'FROM' || trigger === 'MAINTAINER') {
        fail(`${trigger} isn't allowed as an ONBUILD trigger`);
      }
      // the trigger must itself be a valid instruction: Docker refuses a bad one here, not in the child build
      parseInstruction(ctx, lineNo, rest, []);
      return { kind: 'ONBUILD', ...base, trigger: rest };
    }
  }
  throw new Error(`unreachable: ${keyword}`);
}

/**
 * BuildKit's flag reader: the leading `--name[=value]` words, quotes and backslashes removed from them; the first
 * word not starting with `--` (or a bare `--`) ends the flags.
 */
function extractFlags(text: string, fail: (m: string) => never): { flags: [string, string][]; rest: string } {
  const flags: [string, string][] = [];
  let pos = 0;
  for (;;) {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
    if (!text.startsWith('--', pos)) break;
    let word = '';
    let quote = '';
    for (; pos < text.length; pos++) {
      const ch = text[pos]!;
      if (quote === '' && /\s/.test(ch)) break;
      if (quote === '' && (ch === '"' || ch === "'")) {
        quote = ch;
        continue;
      }
      if (quote !== '' && ch === quote) {
        quote = '';
        continue;
      }
      if (ch === '\\' && pos + 1 < text.length) {
        pos++;
        word += text[pos];
        continue;
      }
      word += ch;
    }
    if (word === '--') break;
    const eq = word.indexOf('=');
    const name = (eq < 0 ? word.slice(2) : word.slice(2, eq)).toLowerCase();
    if (!/^[a-z][a-z0-9-]*$/.test(name)) fail(`bad flag ${JSON.stringify(word)}`);
    flags.push([name, eq < 0 ? '' : word.slice(eq + 1)]);
  }
  return { flags, rest: text.slice(pos).trim() };
}

/** `[ "a", "b" ]` → the strings; undefined when the text is not a JSON array of strings (Docker then reads words). */
export function parseJsonArray(text: string): string[] | undefined {
  const t = text.trim();
  if (!t.startsWith('[') || !t.endsWith(']')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(t);
  } catch {
    return undefined;
  }
  return Array.isArray(value) && value.every((v) => typeof v === 'string') ? (value as string[]) : undefined;
}

function commandForm(rest: string): CommandForm {
  const args = parseJsonArray(rest);
  return args !== undefined ? { form: 'exec', args } : { form: 'shell', script: rest };
}

/**
 * What the shell runs for a RUN with heredocs, as BuildKit composes it: `RUN <<EOF` alone runs the heredoc's body
 * as the script; any other use hands the shell the command line followed by the bodies, so the shell reads them as
 * its own here-documents. One case is left to the builder, as BuildKit does it there: a lone heredoc whose body
 * starts with `#!` is written to a file and executed, not given to the shell.
 */
function runCommand(rest: string, heredocs: Heredoc[]): CommandForm {
  if (heredocs.length === 0) return commandForm(rest);
  const only = heredocMarkers(rest);
  if (heredocs.length === 1 && only.length === 1 && splitBlanks(rest).length === 1) {
    return { form: 'shell', script: heredocs[0]!.content };
  }
  return { form: 'shell', script: rest + heredocs.map((h) => `\n${h.content}${h.name}`).join('') };
}

type Marker = Omit<Heredoc, 'content'>;

/**
 * The `<<NAME` words of a line, as BuildKit finds them: words split with quotes kept, each matched against
 * `<<[-]NAME`; the name is unquoted, and any quote in it turns expansion off.
 */
function heredocMarkers(line: string): Marker[] {
  const markers: Marker[] = [];
  for (const word of parseWords(line, '\\')) {
    const m = /^(\d*)<<(-?)([^<]*)$/.exec(word);
    if (m === null || m[3] === '') continue;
    let unquoted: string[];
    try {
      unquoted = lex(m[3]!, {}, '\\').words;
    } catch {
      continue;
    }
    if (unquoted.length !== 1) continue;
    const name = unquoted[0]!;
    markers.push({ name, expand: !/["']/.test(m[3]!), stripTabs: m[2] === '-' });
  }
  return markers;
}

function splitBlanks(text: string): string[] {
  return text.split(/[ \t\n]+/).filter((w) => w !== '');
}

/**
 * Docker's word splitter for ENV, LABEL and ARG: blanks outside quotes separate words; quotes and escapes stay in
 * the word (expansion removes them later).
 */
export function parseWords(text: string, escape: EscapeChar): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote = '';
  const chars = [...text];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (quote === '') {
      if (/\s/.test(ch)) {
        if (inWord) words.push(word);
        word = '';
        inWord = false;
        continue;
      }
      inWord = true;
      if (ch === '"' || ch === "'") quote = ch;
      if (ch === escape) {
        if (i + 1 === chars.length) continue;
        word += ch + chars[++i]!;
        continue;
      }
      word += ch;
    } else {
      if (ch === quote) quote = '';
      else if (ch === escape && quote !== "'") {
        if (i + 1 === chars.length) continue;
        word += ch + chars[++i]!;
        continue;
      }
      word += ch;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** `ENV a=b c="d e"` or the legacy `ENV name value with blanks`; values as written. */
function parseNameValues(keyword: string, rest: string, escape: EscapeChar, fail: (m: string, h?: string) => never): [string, string][] {
  const words = parseWords(rest, escape);
  if (words.length === 0) fail(`${keyword} requires at least one argument`);
  if (!words[0]!.includes('=')) {
    const parts = /^(\S+)\s+([\s\S]+)$/.exec(rest);
    if (parts === null) fail(`${keyword} must have two arguments: ${keyword} name value, or ${keyword} name=value ...`);
    return [[parts[1]!, parts[2]!]];
  }
  return words.map((w): [string, string] => {
    const eq = w.indexOf('=');
    if (eq < 0) fail(`can't find = in ${JSON.stringify(w)}: it must be of the form name=value`);
    if (eq === 0) fail(`${keyword} names can not be blank`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

const MOUNT_ALIASES: Record<string, string> = { dst: 'target', destination: 'target', src: 'source', ro: 'readonly' };

/**
 * `--mount=type=cache,target=/x,ro`: CSV (double quotes allowed), bare keys are `true`, type defaults to bind,
 * aliases folded (`dst`/`destination` → target, `src` → source, `ro` → readonly, `rw` → readonly=false).
 */
function parseMount(spec: string, fail: (m: string, h?: string) => never): RunMount {
  if (spec === '') fail('--mount needs a value, e.g. --mount=type=cache,target=/root/.cache');
  const fields: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of spec) {
    if (ch === '"') quoted = !quoted;
    else if (ch === ',' && !quoted) {
      fields.push(cur);
      cur = '';
    } else cur += ch;
  }
  fields.push(cur);
  let type = 'bind';
  const options: Record<string, string> = {};
  for (const field of fields) {
    if (field === '') continue;
    const eq = field.indexOf('=');
    const rawKey = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? 'true' : field.slice(eq + 1);
    if (rawKey === 'type') {
      type = value;
      continue;
    }
    if (rawKey === 'rw' || rawKey === 'readwrite') {
      options.readonly = value === 'true' ? 'false' : 'true';
      continue;
    }
    options[MOUNT_ALIASES[rawKey] ?? rawKey] = value;
  }
  return { type, options };
}

const DURATION = /^(0|([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h))+$/;

function parseHealthcheck(
  base: { line: number; text: string },
  rest: string,
  valued: (name: string) => string | undefined,
  fail: (m: string, h?: string) => never,
): Instruction {
  const m = /^(\S*)\s*([\s\S]*)$/.exec(rest)!;
  const type = m[1]!.toUpperCase();
  if (type === 'NONE') {
    if (m[2] !== '') fail('HEALTHCHECK NONE takes no arguments');
    return { kind: 'HEALTHCHECK', ...base };
  }
  if (type !== 'CMD') fail(`unknown type ${JSON.stringify(m[1])} in HEALTHCHECK (try CMD)`);
  if (m[2] === '') fail('missing command after HEALTHCHECK CMD');
  const out: Extract<Instruction, { kind: 'HEALTHCHECK' }> = { kind: 'HEALTHCHECK', ...base, command: commandForm(m[2]!) };
  const durations = [['interval', 'interval'], ['timeout', 'timeout'], ['start-period', 'startPeriod'], ['start-interval', 'startInterval']] as const;
  for (const [flagName, field] of durations) {
    const v = valued(flagName);
    if (v === undefined) continue;
    if (!DURATION.test(v)) fail(`--${flagName}=${v} is not a duration`, 'write durations as Go does: 30s, 1m30s, 500ms');
    out[field] = v;
  }
  const retries = valued('retries');
  if (retries !== undefined) {
    if (!/^-?[0-9]+$/.test(retries)) fail(`--retries=${retries} is not an integer`);
    const n = Number(retries);
    if (n < 0) fail('--retries cannot be negative');
    out.retries = n;
  }
  return out;
}

/** A stage by `--from`/`--target` reference: its name (any case) or its index. */
export function findStage(dockerfile: Dockerfile, ref: string): Stage | undefined {
  if (/^[0-9]+$/.test(ref)) return dockerfile.stages[Number(ref)];
  const name = ref.toLowerCase();
  return dockerfile.stages.find((s) => s.name === name);
}

/**
 * The values of the ARGs declared before the first FROM: `--build-arg` wins over the default; a default may use
 * the ARGs above it. These are the variables FROM lines expand with.
 */
export function globalArgValues(dockerfile: Dockerfile, buildArgs: Record<string, string> = {}, escape: EscapeChar = dockerfile.directives.escape): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const instr of dockerfile.globalArgs) {
    for (const arg of instr.args) {
      if (Object.prototype.hasOwnProperty.call(buildArgs, arg.name)) vars[arg.name] = buildArgs[arg.name]!;
      else if (arg.default !== undefined) vars[arg.name] = expandAt(instr, arg.default, vars, escape).value;
    }
  }
  return vars;
}

/**
 * The stages a build of `target` (default: the last stage) needs, each after the stages it uses: a FROM naming an
 * earlier stage, `COPY --from=NAME|INDEX`, `RUN --mount=from=NAME|INDEX`. A `--from` that names no stage is an
 * image, and no dependency. References are expanded with the global ARGs (`buildArgs` applied), as FROM lines are.
 */
export function stageOrder(dockerfile: Dockerfile, target?: string, buildArgs: Record<string, string> = {}): Stage[] {
  const escape = dockerfile.directives.escape;
  const vars = globalArgValues(dockerfile, buildArgs);
  let goal = dockerfile.stages[dockerfile.stages.length - 1]!;
  if (target !== undefined) {
    const named = dockerfile.stages.find((s) => s.name === target.toLowerCase());
    if (named === undefined) {
      const names = dockerfile.stages.flatMap((s) => (s.name !== undefined ? [s.name] : []));
      throw new InvalidArgumentError(
        'target',
        `no stage named ${JSON.stringify(target)} in the Dockerfile`,
        names.length > 0 ? `build one of its stages: ${names.join(', ')}` : 'the Dockerfile names no stage (FROM image AS name); leave out --target',
      );
    }
    goal = named;
  }

  const depsOf = (stage: Stage): Stage[] => {
    const deps = new Set<Stage>();
    const image = expandAt(stage.from, stage.from.image, vars, escape).value.toLowerCase();
    const base = dockerfile.stages.find((s) => s.index < stage.index && s.name === image);
    if (base !== undefined) deps.add(base);
    const refer = (instr: Instruction, ref: string | undefined): void => {
      if (ref === undefined) return;
      const dep = findStage(dockerfile, expandAt(instr, ref, vars, escape).value);
      if (dep === undefined) return;
      if (dep === stage) {
        throw new InvalidArgumentError('Dockerfile', `line ${instr.line}: stage ${stageLabel(stage)} refers to itself with --from`, 'name another stage or an image in --from');
      }
      deps.add(dep);
    };
    for (const instr of stage.instructions) {
      if (instr.kind === 'COPY' || instr.kind === 'ADD') refer(instr, instr.from);
      if (instr.kind === 'RUN') for (const m of instr.mounts) refer(instr, m.options.from);
    }
    return [...deps].sort((a, b) => a.index - b.index);
  };

  const order: Stage[] = [];
  const state = new Map<Stage, 'visiting' | 'done'>();
  const visit = (stage: Stage, path: Stage[]): void => {
    const s = state.get(stage);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = [...path.slice(path.indexOf(stage)), stage].map(stageLabel).join(' → ');
      throw new InvalidArgumentError('Dockerfile', `stages depend on each other in a circle: ${cycle}`, 'make one of these stages copy from an image or an earlier stage instead');
    }
    state.set(stage, 'visiting');
    for (const dep of depsOf(stage)) visit(dep, [...path, stage]);
    state.set(stage, 'done');
    order.push(stage);
  };
  visit(goal, []);
  return order;
}

function stageLabel(stage: Stage): string {
  return stage.name ?? String(stage.index);
}
