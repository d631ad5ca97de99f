import { describe, expect, it } from 'vitest';
import { LineJoiner, parseLogRecord, parseLogTime } from './logs.js';

describe('k8s-file records', () => {
  it('parses full, partial and empty records', () => {
    expect(parseLogRecord('2024-01-02T03:04:05.123456789+00:00 stdout F hello world')).toEqual({
      time: '2024-01-02T03:04:05.123456789+00:00', stream: 'stdout', partial: false, text: 'hello world',
    });
    expect(parseLogRecord('2024-01-02T03:04:05.1Z stderr P  lead')?.text).toBe(' lead');
    expect(parseLogRecord('2024-01-02T03:04:05.1Z stdout F')).toMatchObject({ text: '', partial: false });
    expect(parseLogRecord('garbage')).toBeUndefined();
    expect(parseLogRecord('t stdin F x')).toBeUndefined();
  });

  it('joins partial pieces per stream with the record that ends them', () => {
    const j = new LineJoiner();
    const rec = (stream: 'stdout' | 'stderr', partial: boolean, text: string, time = 't1') => ({ time, stream, partial, text });
    expect(j.push(rec('stdout', true, 'ab'))).toBeUndefined();
    expect(j.push(rec('stderr', false, 'e'))).toEqual({ time: 't1', stream: 'stderr', line: 'e', partial: false });
    expect(j.push(rec('stdout', false, 'cd', 't2'))).toEqual({ time: 't1', stream: 'stdout', line: 'abcd', partial: false });
    j.push(rec('stdout', true, 'prompt$ '));
    expect(j.flush()).toEqual([{ time: 't1', stream: 'stdout', line: 'prompt$ ', partial: true }]);
    expect(j.flush()).toEqual([]);
  });
});

describe('since/until', () => {
  const now = Date.parse('2024-01-02T00:00:00Z');
  it('accepts RFC 3339, unix seconds and durations', () => {
    expect(parseLogTime('2024-01-01T23:00:00Z', now)).toBe(now - 3_600_000);
    expect(parseLogTime('1704153600', now)).toBe(now);
    expect(parseLogTime('1704153600.5', now)).toBe(now + 500);
    expect(parseLogTime('10m', now)).toBe(now - 600_000);
    expect(() => parseLogTime('yesterday', now)).toThrow(/since\/until/);
  });
});

describe('following a log that conmon replaces (--log-opt max-size)', () => {
  it('reads the old file to its end, then the new one from its start', async () => {
    const { appendFile, mkdtemp, rename, rm, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const { readLog } = await import('./logs.js');
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-logs-'));
    try {
      const log = path.join(dir, 'ctr.log');
      const rec = (text: string) => `2024-01-02T03:04:05Z stdout F ${text}\n`;
      await writeFile(log, rec('one'));
      const seen: string[] = [];
      let step = 0;
      const stopWhen = async () => {
        step++;
        if (step === 1) {
          // written to the old file after the last read, then the file is replaced, as conmon does
          await appendFile(log, rec('two'));
          await writeFile(`${log}.tmp`, rec('three'));
          await rename(`${log}.tmp`, log);
          return false;
        }
        return true;
      };
      for await (const e of readLog(log, { follow: true, stopWhen })) seen.push(e.line);
      expect(seen).toEqual(['one', 'two', 'three']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('a log rotated into numbered files (--log-opt max-file, runtime/logrotate.ts)', () => {
  it('logs reads the rotated files oldest first; a follower that missed a rotation reads the file between', async () => {
    const { appendFile, mkdtemp, rename, rm, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const { readLog } = await import('./logs.js');
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-logs-'));
    const rec = (text: string) => `2024-01-02T03:04:05Z stdout F ${text}\n`;
    const lines = async (log: string, opts: Parameters<typeof readLog>[1]) => {
      const seen: string[] = [];
      for await (const e of readLog(log, opts)) seen.push(e.line);
      return seen;
    };
    try {
      const log = path.join(dir, 'ctr.log');
      await writeFile(`${log}.2`, rec('a'));
      await writeFile(`${log}.1`, rec('b'));
      await writeFile(`${log}.10`, rec('old'));
      await writeFile(log, rec('c'));
      // .10 sorts by number, not as text
      expect(await lines(log, {})).toEqual(['old', 'a', 'b', 'c']);
      expect(await lines(log, { tail: 2 })).toEqual(['b', 'c']);
      // An attach starts in the current file.
      expect(await lines(log, { from: 0 })).toEqual(['c']);

      await rm(`${log}.10`);
      let step = 0;
      const stopWhen = async () => {
        if (++step === 1) {
          // Two rotations between two reads: c → .1 → .2 with d after it, then e → .1, and f is current.
          await appendFile(log, rec('d'));
          await rename(`${log}.1`, `${log}.2`);
          await rename(log, `${log}.1`);
          await writeFile(log, rec('e'));
          await rename(`${log}.1`, `${log}.2`);
          await rename(log, `${log}.1`);
          await writeFile(log, rec('f'));
          return false;
        }
        return true;
      };
      expect(await lines(log, { from: 0, follow: true, stopWhen })).toEqual(['c', 'd', 'e', 'f']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
