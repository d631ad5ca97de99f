import { InvalidArgumentError } from '../errors.js';
import type { Dockerfile, Instruction, Stage } from './index.js';

// TODO(#15): stand-ins until expand.ts (15a) lands: `$V`, `${V}`, `${V:-x}`, `${V:+x}` only.

function expandWord(s: string, vars: Map<string, string>): string {
  return s.replace(/\\\$|\$\{(\w+)(?::([-+])([^}]*))?\}|\$(\w+)/g, (m, n1: string | undefined, op: string | undefined, word: string | undefined, n2: string | undefined) => {
    if (m === '\\$') return '$';
    const name = n1 ?? n2!;
    const v = vars.get(name);
    if (op === '-') return v ? v : word ?? '';
    if (op === '+') return v ? word ?? '' : '';
    return v ?? '';
  });
}

export function expandInstruction<T extends Instruction>(instr: T, vars: Map<string, string>): T {
  const e = (s: string) => expandWord(s, vars);
  const i = instr as Instruction;
  switch (i.kind) {
    case 'COPY':
    case 'ADD':
      return { ...i, sources: i.sources.map(e), dest: e(i.dest), ...(i.chown !== undefined ? { chown: e(i.chown) } : {}), ...(i.chmod !== undefined ? { chmod: e(i.chmod) } : {}) } as T;
    case 'ENV':
    case 'LABEL':
      return { ...i, pairs: i.pairs.map(([k, v]) => [e(k), e(v)]) } as T;
    case 'WORKDIR':
    case 'USER':
    case 'STOPSIGNAL':
      return { ...i, value: e(i.value) } as T;
    case 'EXPOSE':
    case 'VOLUME':
      return { ...i, values: i.values.map(e) } as T;
    default:
      return instr;
  }
}

/** The stages `target` needs, dependencies first (FROM a stage, COPY --from a stage). */
export function stageOrder(df: Dockerfile, target?: string): Stage[] {
  const byName = (n: string) => df.stages.find((s) => s.name === n.toLowerCase()) ?? (/^\d+$/.test(n) ? df.stages[Number(n)] : undefined);
  const last = target === undefined ? df.stages.at(-1) : byName(target);
  if (!last) throw new InvalidArgumentError('--target', `no stage named "${target}" in the Dockerfile`);
  const out: Stage[] = [];
  const visit = (s: Stage) => {
    if (out.includes(s)) return;
    const deps = [byName(s.from.image), ...s.instructions.map((i) => ('from' in i && typeof i.from === 'string' ? byName(i.from) : undefined))];
    for (const d of deps) if (d && d.index < s.index) visit(d);
    out.push(s);
  };
  visit(last);
  return out;
}
