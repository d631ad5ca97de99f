import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { BUSYBOX_PATH } from '../host.js';
import { HEALTH } from './healthtimer.js';
import { loopArgv } from './loops.js';

const run = promisify(execFile);

/** The loop with a fake tick: a shell script that counts its calls in a file and prints per call. */
async function loopWith(answers: string[], busybox?: string): Promise<number> {
  const dir = tempDir();
  const count = path.join(dir, 'count');
  const cases = answers.map((a, i) => `${i + 1}) ${a};;`).join(' ');
  const tick = `echo x >> ${count}; n=$(wc -l < ${count}); case $n in ${cases} *) exit 0;; esac`;
  const [cmd, ...argv] = loopArgv(HEALTH, ['0.001', '/bin/sh', '-c', tick], path.join(dir, 'fifo'), busybox);
  await run(cmd!, argv, { timeout: 10_000 });
  return readFileSync(count, 'utf8').split('\n').filter(Boolean).length;
}
/** Every folder a test made: a test may run several loops. */
const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-htimer-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

// On busybox (its `read -t` naps) and on the fallback, /bin/sh with `sleep`.
describe.each([['busybox', BUSYBOX_PATH], ['sh', undefined]])('the healthcheck timer loop on %s', (_name, busybox) => {
  it('ends at the first tick that prints no delay', async () => {
    expect(await loopWith(['echo 0.001', 'echo 0.002', 'true'], busybox)).toBe(3);
  });

  it('keeps its delay when a tick fails, and goes on', async () => {
    expect(await loopWith(['exit 1', 'exit 7', 'echo 0.001', 'true'], busybox)).toBe(4);
  });

  it('ends on output that is not a delay, never running it', async () => {
    expect(await loopWith(['echo "0.001; touch /tmp/x"', 'echo 0.001'], busybox)).toBe(1);
    expect(await loopWith(['echo -1', 'echo 0.001'], busybox)).toBe(1);
  });
});

describe('a loop on busybox', () => {
  it('naps in one process, with no sleep child, and leaves no fifo behind', async () => {
    const dir = tempDir();
    const [cmd, ...argv] = loopArgv({ suffix: 'x', name: 'berth-test-loop', script: 'echo napping; nap 30' }, [], path.join(dir, 'fifo'), BUSYBOX_PATH);
    const child = spawn(cmd!, argv, { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      await new Promise((resolve) => child.stdout.once('data', resolve));
      expect(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim()).toBe('');
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
