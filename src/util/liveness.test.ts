import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { processTag, tagAlive } from './liveness.js';

const stateOf = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2)[0];
};

describe('process tags', () => {
  it('name a live process, and no process of another boot', () => {
    expect(tagAlive(processTag(process.pid))).toBe(true);
    const tag = processTag(process.pid, { boot: true });
    expect(tag.split(' ')).toHaveLength(3);
    expect(tagAlive(tag)).toBe(true);
    expect(tagAlive(tag.replace(/ \S+$/, ' 00000000-0000-0000-0000-000000000000'))).toBe(false);
  });

  it('count a zombie (exited, not reaped yet) as dead', async () => {
    // The shell's child exits after the shell became sleep, which never reaps it.
    const parent = spawn('/bin/sh', ['-c', 'sleep 1 & echo $!; exec sleep 10'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const pid = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(d.toString()))));
      for (let i = 0; i < 250 && stateOf(pid) !== 'Z'; i++) await sleep(20);
      expect(stateOf(pid)).toBe('Z');
      expect(tagAlive(String(pid))).toBe(false);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});
