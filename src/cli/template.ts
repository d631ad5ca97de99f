/**
 * The part of Go's text/template that `docker --format` users write: `{{.A.B}}`, pipelines, `{{json .X}}`,
 * `{{range $k, $v := .X}}…{{end}}`, `{{if}}`/`{{else}}`, `{{with}}`, Go's builtins (eq ne lt le gt ge and or
 * not len index slice print printf println) and Docker's template functions (json, join, split, upper, lower,
 * title, truncate, pad). Values print as Go's `%v` does (`map[a:1]`, `[x y]`, `<no value>`), since scripts
 * compare that output. A value that is a function is a method: `{{.Label "app"}}` calls it with its
 * arguments, a bare `{{.Method}}` with none. Type errors (a number where a string is wanted, an argument
 * count that does not fit, `lt` across kinds) fail the command as Go's do, rather than print something.
 */
import { UsageError } from './parser.js';

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipe: Pipeline }
  | { kind: 'if' | 'with'; pipe: Pipeline; body: Node[]; otherwise: Node[] }
  | { kind: 'range'; pipe: Pipeline; vars: string[]; body: Node[]; otherwise: Node[] };

type Operand =
  | { kind: 'field'; base: string | null; path: string[] } // base null = dot, '$' or '$name'
  | { kind: 'literal'; value: unknown }
  | { kind: 'ident'; name: string }
  | { kind: 'sub'; pipe: Pipeline }
  | { kind: 'chain'; of: Operand; path: string[] }; // `(index .X 0).Name`
type Pipeline = { decl: string[]; cmds: Operand[][] };

export interface Template {
  /** Renders one value. Throws a UsageError (exit 125, like docker's template errors) on a bad call. */
  render(data: unknown): string;
}

export interface TemplateOptions {
  /**
   * The data are Go structs (docker's format contexts: ps, images rows): a field they lack is an error
   * ("can't evaluate field"), not `<no value>` as for the JSON maps inspect shows.
   */
  strictFields?: boolean;
}

export function parseTemplate(source: string, opts: TemplateOptions = {}): Template {
  const nodes = buildTree(lex(source));
  return { render: (data) => exec(nodes, { dot: data, vars: new Map([['$', data]]), strict: !!opts.strictFields }) };
}

// ------------------------------------------------------------------------------------------ parsing

type Piece = { text: string } | { action: string };

function lex(source: string): Piece[] {
  const out: Piece[] = [];
  let i = 0;
  while (i < source.length) {
    const open = source.indexOf('{{', i);
    if (open < 0) {
      out.push({ text: source.slice(i) });
      break;
    }
    let text = source.slice(i, open);
    let start = open + 2;
    if (source.startsWith('- ', start)) {
      text = text.trimEnd();
      start += 2;
    }
    out.push({ text });
    const close = findClose(source, start);
    let inner = source.slice(start, close);
    i = close + 2;
    if (inner.endsWith(' -')) {
      inner = inner.slice(0, -2);
      const m = /^\s*/.exec(source.slice(i))!;
      i += m[0].length;
    }
    out.push({ action: inner.trim() });
  }
  return out;
}

function findClose(source: string, from: number): number {
  let quote = '';
  for (let i = from; i < source.length; i++) {
    const c = source[i]!;
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = '';
    } else if (c === '"' || c === '`') quote = c;
    else if (source.startsWith('}}', i)) return i;
  }
  throw new UsageError(`template: unclosed action in "${source}"`);
}

function buildTree(pieces: Piece[]): Node[] {
  const root: Node[] = [];
  // Each open block remembers where its body and its else-branch go.
  const stack: { node: Extract<Node, { body: Node[] }>; inElse: boolean; parent: Node[] }[] = [];
  let into = root;
  for (const p of pieces) {
    if ('text' in p) {
      if (p.text) into.push({ kind: 'text', text: p.text });
      continue;
    }
    const a = p.action;
    if (a.startsWith('/*')) continue;
    const word = /^(\w+)\b\s*/.exec(a);
    const keyword = word?.[1];
    const rest = word ? a.slice(word[0].length) : a;
    if (keyword === 'if' || keyword === 'with' || keyword === 'range') {
      const pipe = parsePipeline(rest);
      const node: Extract<Node, { body: Node[] }> = keyword === 'range'
        ? { kind: 'range', pipe: { ...pipe, decl: [] }, vars: pipe.decl, body: [], otherwise: [] }
        : { kind: keyword, pipe, body: [], otherwise: [] };
      into.push(node);
      stack.push({ node, inElse: false, parent: into });
      into = node.body;
    } else if (keyword === 'else') {
      const top = stack.at(-1);
      if (!top || top.inElse) throw new UsageError('template: unexpected {{else}}');
      top.inElse = true;
      into = top.node.otherwise;
      if (rest.startsWith('if ')) {
        // `{{else if X}}` is an `if` nested in the else branch, closed by the same {{end}}.
        const node: Node = { kind: 'if', pipe: parsePipeline(rest.slice(3)), body: [], otherwise: [] };
        into.push(node);
        stack.push({ node, inElse: false, parent: into });
        into = node.body;
        (stack.at(-1) as { chained?: boolean }).chained = true;
      }
    } else if (keyword === 'end') {
      let top = stack.pop();
      while (top && (top as { chained?: boolean }).chained) top = stack.pop();
      if (!top) throw new UsageError('template: unexpected {{end}}');
      const outer = stack.at(-1);
      into = outer ? (outer.inElse ? outer.node.otherwise : outer.node.body) : root;
    } else {
      into.push({ kind: 'action', pipe: parsePipeline(a) });
    }
  }
  if (stack.length) throw new UsageError('template: missing {{end}}');
  return root;
}

const CHAIN = '\u0000';
const TOKEN = /\s*(?:("(?:[^"\\]|\\.)*")|(`[^`]*`)|(:=)|([|,()])|(-?\d+(?:\.\d+)?)|([$.]?[\w.$]*))/y;

function tokenize(src: string): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < src.length) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(src);
    if (!m || m[0].trim() === '') {
      if (src.slice(at).trim() === '') break;
      throw new UsageError(`template: cannot parse "${src}"`);
    }
    const t = m[0].trim();
    // Go's field chain on a parenthesized pipeline: `(x).Name`, with nothing between `)` and the dot.
    out.push(t.startsWith('.') && m[0] === t && out.at(-1) === ')' ? CHAIN + t : t);
  }
  return out;
}

function parsePipeline(src: string): Pipeline {
  const tokens = tokenize(src);
  let pos = 0;
  const decl: string[] = [];
  const assign = tokens.indexOf(':=');
  if (assign > 0) {
    for (const t of tokens.slice(0, assign)) if (t !== ',') decl.push(t);
    pos = assign + 1;
  }
  const parse = (): Pipeline => {
    const cmds: Operand[][] = [[]];
    while (pos < tokens.length) {
      const t = tokens[pos++]!;
      if (t === ')') break;
      if (t === '|') cmds.push([]);
      else if (t === '(') cmds.at(-1)!.push({ kind: 'sub', pipe: parse() });
      else if (t.startsWith(CHAIN)) {
        const cmd = cmds.at(-1)!;
        cmd.push({ kind: 'chain', of: cmd.pop()!, path: t.slice(2).split('.') });
      } else cmds.at(-1)!.push(operand(t));
    }
    if (cmds.some((c) => c.length === 0)) throw new UsageError(`template: missing value in "${src}"`);
    return { decl: [], cmds };
  };
  return { ...parse(), decl };
}

function operand(t: string): Operand {
  if (t.startsWith('"')) return { kind: 'literal', value: JSON.parse(t) };
  if (t.startsWith('`')) return { kind: 'literal', value: t.slice(1, -1) };
  if (/^-?\d/.test(t)) return { kind: 'literal', value: Number(t) };
  if (t === 'true' || t === 'false') return { kind: 'literal', value: t === 'true' };
  if (t === 'nil') return { kind: 'literal', value: null };
  if (t.startsWith('.')) return { kind: 'field', base: null, path: t.split('.').filter(Boolean) };
  if (t.startsWith('$')) {
    const [base, ...path] = t.split('.');
    return { kind: 'field', base: base!, path };
  }
  return { kind: 'ident', name: t };
}

// ---------------------------------------------------------------------------------------- executing

interface Scope {
  dot: unknown;
  vars: Map<string, unknown>;
  strict: boolean;
}

function exec(nodes: Node[], scope: Scope): string {
  let out = '';
  for (const n of nodes) {
    switch (n.kind) {
      case 'text': out += n.text; break;
      case 'action': {
        const v = evalPipeline(n.pipe, scope);
        if (!n.pipe.decl.length) out += formatValue(v);
        break;
      }
      case 'if': out += exec(truthy(evalPipeline(n.pipe, scope)) ? n.body : n.otherwise, scope); break;
      case 'with': {
        const v = evalPipeline(n.pipe, scope);
        out += truthy(v) ? exec(n.body, { ...scope, dot: v }) : exec(n.otherwise, scope);
        break;
      }
      case 'range': out += execRange(n, scope); break;
    }
  }
  return out;
}

function execRange(n: Extract<Node, { kind: 'range' }>, scope: Scope): string {
  const v = evalPipeline(n.pipe, scope);
  const entries: [unknown, unknown][] = Array.isArray(v) ? v.map((x, i) => [i, x])
    : isObject(v) ? Object.keys(v).sort().map((k) => [k, v[k]])
    : v === undefined || v === null ? [] : fail(`range can't iterate over ${formatValue(v)}`);
  if (!entries.length) return exec(n.otherwise, scope);
  let out = '';
  for (const [k, x] of entries) {
    const vars = new Map(scope.vars);
    if (n.vars.length === 1) vars.set(n.vars[0]!, x);
    if (n.vars.length === 2) {
      vars.set(n.vars[0]!, k);
      vars.set(n.vars[1]!, x);
    }
    out += exec(n.body, { dot: x, vars, strict: scope.strict });
  }
  return out;
}

function evalPipeline(p: Pipeline, scope: Scope): unknown {
  let value: unknown;
  p.cmds.forEach((cmd, i) => {
    value = evalCommand(cmd, scope, i === 0 ? [] : [value]);
  });
  if (p.decl.length === 1) scope.vars.set(p.decl[0]!, value);
  return value;
}

function evalCommand(cmd: Operand[], scope: Scope, piped: unknown[]): unknown {
  const [head, ...rest] = cmd;
  if (head!.kind === 'ident') {
    const fn = FUNCS[head!.name];
    if (!fn) fail(`function "${head!.name}" not defined`);
    return callFunction(head!.name, fn!, [...rest.map((o) => evalOperand(o, scope)), ...piped]);
  }
  if (head!.kind === 'field' && (rest.length || piped.length)) {
    // `{{.Label "app"}}`: the last name of the path is a method, called with the arguments.
    const { value: owner, name } = walkField(head!, scope, head!.path.length - 1);
    const method = name === undefined ? undefined : lookup(owner, name, scope);
    if (typeof method !== 'function') fail(`can't give argument to non-function ${fieldText(head!)}`);
    return callFunction(name!, method as Func, [...rest.map((o) => evalOperand(o, scope)), ...piped]);
  }
  if (rest.length || piped.length) fail(`can't give argument to non-function ${operandText(head!)}`);
  return evalOperand(head!, scope);
}

function evalOperand(o: Operand, scope: Scope): unknown {
  switch (o.kind) {
    case 'literal': return o.value;
    case 'sub': return evalPipeline(o.pipe, scope);
    case 'chain': {
      let v = evalOperand(o.of, scope);
      for (const key of o.path) {
        v = lookup(v, key, scope);
        if (typeof v === 'function') v = callFunction(key, v as Func, []);
      }
      return v;
    }
    case 'ident': {
      const fn = FUNCS[o.name];
      if (!fn) fail(`function "${o.name}" not defined`);
      return callFunction(o.name, fn!, []);
    }
    case 'field': {
      const { value, name } = walkField(o, scope, o.path.length - 1);
      if (name === undefined) return value;
      const v = lookup(value, name, scope);
      return typeof v === 'function' ? callFunction(name, v as Func, []) : v;
    }
  }
}

/** Follows `o.path` up to (not including) index `upto`; niladic methods met on the way are called. */
function walkField(o: Extract<Operand, { kind: 'field' }>, scope: Scope, upto: number): { value: unknown; name: string | undefined } {
  let v: unknown = o.base === null ? scope.dot : scope.vars.has(o.base) ? scope.vars.get(o.base) : fail(`undefined variable: ${o.base}`);
  for (const key of o.path.slice(0, Math.max(0, upto))) {
    v = lookup(v, key, scope);
    if (typeof v === 'function') v = callFunction(key, v as Func, []);
  }
  return { value: v, name: o.path[upto] };
}

function lookup(v: unknown, key: string, scope: Scope): unknown {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) fail(`can't evaluate field ${key} in type ${goType(v)}`);
  if (scope.strict && !(key in v)) fail(`can't evaluate field ${key}`);
  return v[key];
}

function fieldText(o: Extract<Operand, { kind: 'field' }>): string {
  return `${o.base ?? ''}.${o.path.join('.')}`;
}

function operandText(o: Operand): string {
  return o.kind === 'field' ? fieldText(o) : o.kind === 'literal' ? formatValue(o.value) : o.kind === 'ident' ? o.name : o.kind === 'chain' ? `(...).${o.path.join('.')}` : '(...)';
}

type Func = (...a: unknown[]) => unknown;

/** Go checks a call's argument count against the function's signature before it runs. */
function callFunction(name: string, fn: Func, args: unknown[]): unknown {
  const arity = ARITY[name] ?? [fn.length, fn.length];
  if (args.length < arity[0] || args.length > arity[1]) {
    const want = arity[1] === Infinity ? `at least ${arity[0]}` : arity[0] === arity[1] ? String(arity[0]) : `${arity[0]} to ${arity[1]}`;
    fail(`wrong number of args for ${name}: want ${want} got ${args.length}`);
  }
  return fn(...args);
}

function fail(message: string): never {
  throw new UsageError(`template: ${message}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (isObject(v)) return Object.keys(v).length > 0;
  return !!v;
}

/** Go's `%v`. */
export function formatValue(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return `[${v.map(formatValue).join(' ')}]`;
  if (isObject(v)) return `map[${Object.keys(v).sort().map((k) => `${k}:${formatValue(v[k])}`).join(' ')}]`;
  return String(v);
}

/** Go's name of a JSON value's type, for error messages. */
function goType(v: unknown): string {
  if (v === undefined || v === null) return 'nil';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float64';
  if (Array.isArray(v)) return '[]interface {}';
  if (isObject(v)) return 'map[string]interface {}';
  return typeof v === 'boolean' ? 'bool' : typeof v;
}

/** An argument Go would reflect into a string parameter: anything else is "wrong type for value". */
function str(v: unknown): string {
  if (typeof v !== 'string') fail(`wrong type for value; expected string; got ${goType(v)}`);
  return v;
}

function int(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(`wrong type for value; expected int; got ${goType(v)}`);
  return v;
}

function strings(v: unknown): string[] {
  if (!Array.isArray(v)) fail(`wrong type for value; expected []string; got ${goType(v)}`);
  return v.map(str);
}

type Kind = 'number' | 'string' | 'bool';

/** Go's basic kinds: only these compare, and only with their own kind. */
function basicKind(v: unknown, fn: string): Kind {
  if (typeof v === 'number') return 'number';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  return fail(`error calling ${fn}: ${v === undefined || v === null ? 'invalid type for comparison' : 'non-comparable type'}`);
}

function equal(fn: string, a: unknown, b: unknown): boolean {
  if (basicKind(a, fn) !== basicKind(b, fn)) fail(`error calling ${fn}: incompatible types for comparison`);
  return a === b;
}

function less(fn: string, a: unknown, b: unknown): boolean {
  const k = basicKind(a, fn);
  if (k === 'bool') fail(`error calling ${fn}: invalid type for comparison`);
  if (basicKind(b, fn) !== k) fail(`error calling ${fn}: incompatible types for comparison`);
  return (a as number | string) < (b as number | string);
}

/** Go's `slice x 1 2`: of a string or a list; indexes are ints within bounds. */
function slice(v: unknown, ...idx: unknown[]): unknown {
  if (typeof v !== 'string' && !Array.isArray(v)) fail(`error calling slice: can't slice item of type ${goType(v)}`);
  if (idx.length > 2) fail('error calling slice: too many slice indexes: 3');
  const items = typeof v === 'string' ? [...v] : v;
  const [lo = 0, hi = items.length] = idx.map(int);
  if (lo < 0 || hi > items.length || lo > hi) fail(`error calling slice: index out of range: ${lo > hi || lo < 0 ? lo : hi}`);
  const part = items.slice(lo, hi);
  return typeof v === 'string' ? part.join('') : part;
}

function index(v: unknown, ...keys: unknown[]): unknown {
  let acc = v;
  for (const k of keys) {
    if (acc === undefined || acc === null) fail('error calling index: index of untyped nil');
    if (Array.isArray(acc) || typeof acc === 'string') {
      const i = typeof k === 'number' && Number.isInteger(k) ? k : fail(`error calling index: cannot index slice/array with type ${goType(k)}`);
      if (i < 0 || i >= acc.length) fail(`error calling index: index out of range: ${i}`);
      acc = acc[i];
    } else if (isObject(acc)) {
      acc = acc[typeof k === 'string' ? k : fail(`error calling index: value has type ${goType(k)}; should be string`)];
    } else {
      fail(`error calling index: can't index item of type ${goType(acc)}`);
    }
  }
  return acc;
}

/** Argument counts of the variadic functions; the others take exactly what they declare. */
const ARITY: Record<string, [number, number]> = {
  index: [1, Infinity], print: [0, Infinity], println: [0, Infinity], printf: [1, Infinity], eq: [2, Infinity],
  and: [1, Infinity], or: [1, Infinity], slice: [1, 3],
};

const FUNCS: Record<string, Func> = {
  // Docker's json encoder does not escape <, > and & (SetEscapeHTML(false)), nor does JSON.stringify.
  json: (v) => JSON.stringify(v ?? null),
  join: (list, sep) => strings(list).join(str(sep)),
  split: (s, sep) => str(s).split(str(sep)),
  upper: (s) => str(s).toUpperCase(),
  lower: (s) => str(s).toLowerCase(),
  title: (s) => str(s).replace(/\b\w/g, (c) => c.toUpperCase()),
  truncate: (s, n) => [...str(s)].slice(0, int(n)).join(''),
  pad: (s, l, r) => ' '.repeat(int(l)) + str(s) + ' '.repeat(int(r)),
  len: (v) => (Array.isArray(v) || typeof v === 'string' ? v.length : isObject(v) ? Object.keys(v).length : fail(`error calling len: len of type ${goType(v)}`)),
  index,
  slice,
  print: (...a) => a.map(formatValue).join(''),
  println: (...a) => a.map(formatValue).join(' ') + '\n',
  printf: (fmt, ...a) => str(fmt).replace(/%[svdq%]/g, (m) => (m === '%%' ? '%' : m === '%q' ? JSON.stringify(formatValue(a.shift())) : formatValue(a.shift()))),
  eq: (a, ...b) => b.some((x) => equal('eq', a, x)),
  ne: (a, b) => !equal('ne', a, b),
  lt: (a, b) => less('lt', a, b),
  le: (a, b) => less('le', a, b) || equal('le', a, b),
  gt: (a, b) => !less('gt', a, b) && !equal('gt', a, b),
  ge: (a, b) => !less('ge', a, b),
  not: (a) => !truthy(a),
  and: (...a) => a.find((x) => !truthy(x)) ?? a.at(-1),
  or: (...a) => a.find(truthy) ?? a.at(-1),
};
