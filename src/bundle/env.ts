import { InvalidArgumentError } from '../errors.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Docker's ReplaceOrAppendEnvValues: `KEY=VALUE` replaces KEY in place or appends it; a bare `KEY` removes
 * it (the CLI has already filled in bare names that are set in its own environment).
 */
export function mergeEnv(base: readonly string[], overrides: readonly string[]): string[] {
  const out = [...base];
  for (const entry of overrides) {
    const key = envKey(entry);
    const at = out.findIndex((e) => envKey(e) === key);
    if (!entry.includes('=')) {
      if (at >= 0) out.splice(at, 1);
    } else if (at >= 0) {
      out[at] = entry;
    } else {
      out.push(entry);
    }
  }
  return out.filter((e) => e.includes('='));
}

export function envKey(entry: string): string {
  const eq = entry.indexOf('=');
  return eq < 0 ? entry : entry.slice(0, eq);
}

/** Rejects entries Docker rejects: an empty name ("=x") or a name with white space. */
export function checkEnv(field: string, entries: readonly string[]): void {
  for (const e of entries) {
    const key = envKey(e);
    if (!key) throw new InvalidArgumentError(field, `invalid environment variable: ${e}`, 'write NAME=VALUE');
    if (/\s/.test(key)) throw new InvalidArgumentError(field, `variable '${key}' contains whitespaces`);
  }
}

/**
 * An --env-file, as Docker reads it: one NAME=VALUE per line, taken literally (no quotes, no expansion);
 * blank lines and lines starting with # are skipped; a bare NAME takes its value from `lookup` (the CLI's
 * environment) and is dropped when that has none.
 */
export function parseEnvFile(text: string, lookup: (name: string) => string | undefined = () => undefined): string[] {
  const out: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.replace(/^\s+/, '');
    if (!line || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq);
    if (!key) throw new InvalidArgumentError('--env-file', `line ${i + 1}: no variable name in "${raw}"`);
    if (/\s/.test(key)) throw new InvalidArgumentError('--env-file', `line ${i + 1}: variable '${key}' contains whitespaces`);
    if (eq >= 0) {
      out.push(line);
      return;
    }
    const value = lookup(key);
    if (value !== undefined) out.push(`${key}=${value}`);
  });
  return out;
}
