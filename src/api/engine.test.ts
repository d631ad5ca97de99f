import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CLEANUP_GUARD, parseTime } from './engine.js';

describe('parseTime (--since / --until)', () => {
  it('takes unix seconds, RFC 3339 and durations back from now, as docker does', () => {
    expect(parseTime('1700000000', '--since')).toBe(1_700_000_000_000);
    expect(parseTime('1700000000.5', '--since')).toBe(1_700_000_000_500);
    expect(parseTime('2026-01-02T03:04:05Z', '--since')).toBe(Date.parse('2026-01-02T03:04:05Z'));
    const tenMinutesAgo = parseTime('10m', '--since')!;
    expect(Math.abs(Date.now() - 600_000 - tenMinutesAgo)).toBeLessThan(1000);
    const mixed = parseTime('1h30m', '--since')!;
    expect(Math.abs(Date.now() - 5_400_000 - mixed)).toBeLessThan(1000);
    expect(parseTime(undefined, '--since')).toBeUndefined();
  });
  it('names the flag when the text is not a time', () => {
    expect(() => parseTime('yesterday', '--until')).toThrow(InvalidArgumentError);
    expect(() => parseTime('yesterday', '--until')).toThrow(/--until/);
  });
});

describe('the exit-command guard', () => {
  const guard = (content: string | undefined) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'berth-guard-'));
    const file = path.join(dir, 'attached.pid');
    if (content !== undefined) writeFileSync(file, content);
    try {
      return execFileSync('/bin/sh', ['-c', CLEANUP_GUARD, 'berth-cleanup', file, 'echo', 'cleanup ran'], { encoding: 'utf8' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  it('stands down while the attached process lives, with or without a final newline', () => {
    expect(guard(`${process.pid} 123\n`)).toBe('');
    expect(guard(`${process.pid} 123`)).toBe('');
  });
  it('runs the cleanup when nobody is attached or the attached process is gone', () => {
    expect(guard(undefined)).toBe('cleanup ran\n');
    expect(guard('999999 1\n')).toBe('cleanup ran\n');
  });
});
