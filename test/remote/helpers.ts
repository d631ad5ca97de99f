/** The real CLI with no store options, so that -H, BERTH_HOST and contexts pick the engine; contexts in `configHome`. */
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));

/** The parent's environment without any setting that picks an engine, plus `extra`. */
export function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^BERTH_(HOST|CONTEXT|ROOT|RUNROOT|SSH_OPTS)$/.test(k)) env[k] = v;
  return { ...env, ...extra };
}

export function remoteCli(env: Record<string, string>) {
  return (...args: string[]) => execa(BIN, args, { reject: false, timeout: 60_000, env: cleanEnv(env), extendEnv: false });
}
