import path from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import type { OciContainerConfig } from './oci.js';

/**
 * `docker import --change` / `docker commit --change`: the Dockerfile instructions that only touch
 * the config. Each change is one instruction line in Dockerfile syntax, JSON form where Docker allows it.
 */
const SUPPORTED = ['CMD', 'ENTRYPOINT', 'ENV', 'WORKDIR', 'USER', 'EXPOSE', 'LABEL', 'VOLUME', 'STOPSIGNAL'] as const;
type Instruction = (typeof SUPPORTED)[number];

export function applyChanges(base: OciContainerConfig, changes: readonly string[]): OciContainerConfig {
  const cfg: OciContainerConfig = structuredClone(base);
  let cmdSet = false;
  for (const change of changes) {
    const m = /^\s*(\S+)\s*([\s\S]*?)\s*$/.exec(change);
    const instr = m?.[1]?.toUpperCase() as Instruction | undefined;
    const args = m?.[2] ?? '';
    if (!instr || !SUPPORTED.includes(instr)) {
      throw new InvalidArgumentError('--change', `"${change}": ${m?.[1] ?? 'empty'} is not supported`, `use one of ${SUPPORTED.join(', ')}`);
    }
    if (args === '') throw new InvalidArgumentError('--change', `"${change}": ${instr} needs an argument`);
    const bad = (why: string) => new InvalidArgumentError('--change', `"${change}": ${why}`);
    switch (instr) {
      case 'CMD':
        cfg.Cmd = commandForm(args);
        cmdSet = true;
        break;
      case 'ENTRYPOINT':
        cfg.Entrypoint = commandForm(args);
        // Docker: a new ENTRYPOINT drops an inherited CMD unless this same build sets one.
        if (!cmdSet) cfg.Cmd = null;
        break;
      case 'ENV':
        for (const [k, v] of keyValues(args, bad)) cfg.Env = [...(cfg.Env ?? []).filter((e) => e.split('=')[0] !== k), `${k}=${v}`];
        break;
      case 'LABEL':
        cfg.Labels = { ...(cfg.Labels ?? {}), ...Object.fromEntries(keyValues(args, bad)) };
        break;
      case 'WORKDIR':
        cfg.WorkingDir = path.posix.resolve(cfg.WorkingDir || '/', words(args, bad)[0]!);
        break;
      case 'USER':
        cfg.User = words(args, bad)[0]!;
        break;
      case 'STOPSIGNAL':
        cfg.StopSignal = words(args, bad)[0]!;
        break;
      case 'EXPOSE':
        cfg.ExposedPorts = { ...(cfg.ExposedPorts ?? {}), ...Object.fromEntries(words(args, bad).flatMap((p) => exposedPorts(p, bad)).map((p) => [p, {}])) };
        break;
      case 'VOLUME': {
        const vols = jsonArray(args) ?? words(args, bad);
        cfg.Volumes = { ...(cfg.Volumes ?? {}), ...Object.fromEntries(vols.map((v) => [v, {}])) };
        break;
      }
    }
  }
  return cfg;
}

/** JSON (exec) form as given; shell form runs under /bin/sh -c, as Docker's. */
function commandForm(args: string): string[] {
  return jsonArray(args) ?? ['/bin/sh', '-c', args];
}

function jsonArray(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(args);
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined;
  } catch {
    return undefined;
  }
}

/** `K=V K2="v 2"`, or the legacy single pair `K some value`. */
function keyValues(args: string, bad: (why: string) => Error): [string, string][] {
  const ws = words(args, bad);
  if (!ws[0]!.includes('=')) {
    const legacy = /^(\S+)\s+([\s\S]+)$/.exec(args);
    if (!legacy) throw bad('expected KEY=VALUE');
    return [[legacy[1]!, words(legacy[2]!, bad).join(' ')]];
  }
  return ws.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw bad(`"${w}" is not KEY=VALUE`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

/** Splits on blanks, honouring "double" and 'single' quotes and backslash escapes. */
export function words(text: string, bad: (why: string) => Error): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < text.length) cur += text[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < text.length) {
      cur += text[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (quote) throw bad('unterminated quote');
  if (inWord) out.push(cur);
  return out;
}

/** `80`, `80/udp`, `8000-8002/tcp` → `80/tcp`, ... */
function exposedPorts(spec: string, bad: (why: string) => Error): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(spec);
  if (!m) throw bad(`"${spec}" is not PORT[-PORT][/PROTO]`);
  const lo = Number(m[1]);
  const hi = m[2] ? Number(m[2]) : lo;
  if (lo < 1 || hi > 65535 || hi < lo) throw bad(`port range ${spec} is out of 1-65535`);
  const proto = (m[3] ?? 'tcp').toLowerCase();
  return Array.from({ length: hi - lo + 1 }, (_, i) => `${lo + i}/${proto}`);
}
