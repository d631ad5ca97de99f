import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { HEALTH_LOOP, HEALTH_LOOP_NAME } from './healthtimer.js';

const run = promisify(execFile);

/** The loop with a fake tick: a shell script that counts its calls in a file and prints per call. */
async function loopWith(answers: string[]): Promise<number> {
  dir = mkdtempSync(path.join(tmpdir(), 'berth-htimer-'));
  const count = path.join(dir, 'count');
  const cases = answers.map((a, i) => `${i + 1}) ${a};;`).join(' ');
  const tick = `echo x >> ${count}; n=$(wc -l < ${count}); case $n in ${cases} *) exit 0;; esac`;
  await run('/bin/sh', ['-c', HEALTH_LOOP, HEALTH_LOOP_NAME, '0.001', '/bin/sh', '-c', tick], { timeout: 10_000 });
  return readFileSync(count, 'utf8').split('\n').filter(Boolean).length;
}
let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('the healthcheck timer loop', () => {
  it('ends at the first tick that prints no delay', async () => {
    expect(await loopWith(['echo 0.001', 'echo 0.002', 'true'])).toBe(3);
  });

  it('keeps its delay when a tick fails, and goes on', async () => {
    expect(await loopWith(['exit 1', 'exit 7', 'echo 0.001', 'true'])).toBe(4);
  });

  it('ends on output that is not a delay, never running it', async () => {
    expect(await loopWith(['echo "0.001; touch /tmp/x"', 'echo 0.001'])).toBe(1);
    expect(await loopWith(['echo -1', 'echo 0.001'])).toBe(1);
  });
});
