import { InvalidArgumentError } from '../errors.js';
import type { CommandForm, Dockerfile, Instruction, Stage } from './index.js';

// TODO(#15): a stand-in for dockerfile.ts (15a) until it lands: the common instructions, no heredocs.

function words(s: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  let m;
  while ((m = re.exec(s))) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

function command(rest: string): CommandForm {
  if (rest.trim().startsWith('[')) {
    try {
      const v: unknown = JSON.parse(rest);
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return { form: 'exec', args: v };
    } catch { /* shell form */ }
  }
  return { form: 'shell', script: rest };
}

function flags(rest: string): { flags: Record<string, string>; rest: string } {
  const f: Record<string, string> = {};
  let r = rest;
  let m;
  while ((m = /^--([\w-]+)(?:=(\S*))?\s+/.exec(r))) {
    f[m[1]!] = m[2] ?? 'true';
    r = r.slice(m[0].length);
  }
  return { flags: f, rest: r };
}

function pairs(rest: string): [string, string][] {
  const ws = words(rest);
  if (ws.length && !ws[0]!.includes('=')) {
    const m = /^\s*(\S+)\s+([\s\S]*)$/.exec(rest);
    return [[m![1]!, m![2]!]];
  }
  return ws.map((w) => {
    const i = w.indexOf('=');
    return [w.slice(0, i), w.slice(i + 1)] as [string, string];
  });
}

export function parseDockerfile(text: string, opts: { file?: string } = {}): Dockerfile {
  const df: Dockerfile = { directives: { escape: '\\' }, globalArgs: [], stages: [] };
  const lines = text.split('\n');
  let stage: Stage | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    let t = lines[i]!;
    if (/^\s*(#|$)/.test(t)) continue;
    while (/\\\s*$/.test(t) && i + 1 < lines.length) t = t.replace(/\\\s*$/, '') + (/^\s*#/.test(lines[++i]!) ? '' : lines[i]!);
    const m = /^\s*(\w+)\s*([\s\S]*?)\s*$/.exec(t)!;
    const kind = m[1]!.toUpperCase();
    const rest = m[2]!;
    const base = { line, text: `${kind} ${rest}` };
    const f = flags(rest);
    let instr: Instruction;
    switch (kind) {
      case 'FROM': {
        const ws = words(f.rest);
        stage = { index: df.stages.length, ...(ws[2] ? { name: ws[2].toLowerCase() } : {}), from: { ...base, kind: 'FROM', image: ws[0]!, ...(ws[2] ? { alias: ws[2] } : {}) }, instructions: [] };
        df.stages.push(stage);
        continue;
      }
      case 'RUN': instr = { ...base, kind, command: command(f.rest), mounts: [], heredocs: [], ...(f.flags.network ? { network: f.flags.network } : {}) }; break;
      case 'COPY':
      case 'ADD': {
        const { from, chown, chmod, checksum, ...other } = f.flags;
        const ws = f.rest.trim().startsWith('[') ? (JSON.parse(f.rest) as string[]) : words(f.rest);
        instr = { ...base, kind, sources: ws.slice(0, -1), dest: ws.at(-1)!, from, chown, chmod, checksum, otherFlags: other, heredocs: [] };
        break;
      }
      case 'ENV': case 'LABEL': instr = { ...base, kind, pairs: pairs(rest) }; break;
      case 'ARG': instr = { ...base, kind, args: words(rest).map((w) => (w.includes('=') ? { name: w.slice(0, w.indexOf('=')), default: w.slice(w.indexOf('=') + 1) } : { name: w })) }; break;
      case 'WORKDIR': case 'USER': case 'STOPSIGNAL': case 'MAINTAINER': instr = { ...base, kind, value: rest }; break;
      case 'EXPOSE': case 'VOLUME': instr = { ...base, kind, values: rest.startsWith('[') ? (JSON.parse(rest) as string[]) : words(rest) }; break;
      case 'CMD': case 'ENTRYPOINT': instr = { ...base, kind, command: command(rest) }; break;
      case 'HEALTHCHECK': {
        const cmd = /^CMD\s+([\s\S]*)$/i.exec(f.rest);
        instr = { ...base, kind, ...(cmd ? { command: command(cmd[1]!) } : {}), interval: f.flags.interval, timeout: f.flags.timeout,
          startPeriod: f.flags['start-period'], retries: f.flags.retries !== undefined ? Number(f.flags.retries) : undefined };
        break;
      }
      case 'SHELL': instr = { ...base, kind, args: JSON.parse(rest) as string[] }; break;
      default: throw new InvalidArgumentError('Dockerfile', `${opts.file ?? 'Dockerfile'} line ${line}: unknown instruction ${kind}`);
    }
    if (!stage) {
      if (instr.kind !== 'ARG') throw new InvalidArgumentError('Dockerfile', `line ${line}: ${kind} before the first FROM`);
      df.globalArgs.push(instr);
    } else stage.instructions.push(instr);
  }
  if (!df.stages.length) throw new InvalidArgumentError('Dockerfile', 'no FROM instruction', 'start the Dockerfile with FROM');
  return df;
}
