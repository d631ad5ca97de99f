/**
 * The part of Go's text/template that `docker --format` users write: `{{.A.B}}`, pipelines, `{{json .X}}`,
 * `{{range $k, $v := .X}}…{{end}}`, `{{if}}`/`{{else}}`, `{{with}}`, and Docker's template functions
 * (json, join, split, upper, lower, title, truncate, pad, println). Values print as Go's `%v` does
 * (`map[a:1]`, `[x y]`, `<no value>`), since scripts compare that output.
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
  | { kind: 'sub'; pipe: Pipeline };
type Pipeline = { decl: string[]; cmds: Operand[][] };

export interface Template {
  /** Renders one value. Throws a UsageError (exit 125, like docker's template errors) on a bad call. */
  render(data: unknown): string;
}

export function parseTemplate(source: string): Template {
  const nodes = buildTree(lex(source));
  return { render: (data) => exec(nodes, { dot: data, vars: new Map([['$', data]]) }) };
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
    out.push(m[0].trim());
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
      else cmds.at(-1)!.push(operand(t));
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
    out += exec(n.body, { dot: x, vars });
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
    return fn!(...rest.map((o) => evalOperand(o, scope)), ...piped);
  }
  if (rest.length || piped.length) fail(`can't give arguments to a value`);
  return evalOperand(head!, scope);
}

function evalOperand(o: Operand, scope: Scope): unknown {
  switch (o.kind) {
    case 'literal': return o.value;
    case 'sub': return evalPipeline(o.pipe, scope);
    case 'ident': {
      const fn = FUNCS[o.name];
      if (!fn) fail(`function "${o.name}" not defined`);
      return fn!();
    }
    case 'field': {
      let v: unknown = o.base === null ? scope.dot : scope.vars.has(o.base) ? scope.vars.get(o.base) : fail(`undefined variable: ${o.base}`);
      for (const key of o.path) {
        if (v === undefined || v === null) return undefined;
        if (!isObject(v) && !Array.isArray(v)) fail(`can't evaluate field ${key} in ${typeof v}`);
        v = (v as Record<string, unknown>)[key];
      }
      return v;
    }
  }
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

const str = (v: unknown): string => (typeof v === 'string' ? v : formatValue(v));

const FUNCS: Record<string, (...a: unknown[]) => unknown> = {
  json: (v) => JSON.stringify(v ?? null),
  join: (list, sep) => (Array.isArray(list) ? list.map(str).join(str(sep)) : str(list)),
  split: (s, sep) => str(s).split(str(sep)),
  upper: (s) => str(s).toUpperCase(),
  lower: (s) => str(s).toLowerCase(),
  title: (s) => str(s).replace(/\b\w/g, (c) => c.toUpperCase()),
  truncate: (s, n) => [...str(s)].slice(0, Number(n)).join(''),
  pad: (s, l, r) => ' '.repeat(Number(l)) + str(s) + ' '.repeat(Number(r)),
  len: (v) => (Array.isArray(v) || typeof v === 'string' ? v.length : isObject(v) ? Object.keys(v).length : fail('len of a non-collection')),
  index: (v, ...keys) => keys.reduce((acc, k) => (acc === undefined || acc === null ? undefined : (acc as Record<string, unknown>)[str(k)]), v),
  print: (...a) => a.map(str).join(''),
  println: (...a) => a.map(str).join(' ') + '\n',
  printf: (fmt, ...a) => str(fmt).replace(/%[svdq%]/g, (m) => (m === '%%' ? '%' : m === '%q' ? JSON.stringify(str(a.shift())) : str(a.shift()))),
  eq: (a, ...b) => b.some((x) => x === a),
  ne: (a, b) => a !== b,
  not: (a) => !truthy(a),
  and: (...a) => a.find((x) => !truthy(x)) ?? a.at(-1),
  or: (...a) => a.find(truthy) ?? a.at(-1),
};
