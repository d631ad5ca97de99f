/**
 * Vitest global setup: the containers' exit hook runs bin/berth.js, which loads dist/, not the sources the
 * tests import. A dist/ older than any source would silently test old code in every exit hook, so the
 * tests build first whenever a source is newer than the build (a no-op when `npm test` just built).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BUILT = path.join(ROOT, 'dist/cli/main.cjs');
const SOURCES = ['src', 'runtime-spec', 'scripts', 'bin', 'tsconfig.json', 'package.json'];

function newest(p: string): number {
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = st.mtimeMs;
  for (const e of readdirSync(p)) if (!e.endsWith('.test.ts')) max = Math.max(max, newest(path.join(p, e)));
  return max;
}

function builtAt(): number {
  try {
    return statSync(BUILT).mtimeMs;
  } catch {
    return 0;
  }
}

export default function setup(): void {
  const sources = Math.max(...SOURCES.map((s) => newest(path.join(ROOT, s))));
  if (sources <= builtAt()) return;
  console.log('test setup: sources are newer than dist/: building (npm run build)');
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
}
