import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { parseTime } from './engine.js';

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
