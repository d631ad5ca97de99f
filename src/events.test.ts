import { describe, expect, it } from 'vitest';
import { nowNano } from './events.js';

describe('nowNano', () => {
  it('gives RFC 3339 times with nanoseconds that never go backwards', () => {
    const times = Array.from({ length: 1000 }, () => nowNano());
    expect(times[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    expect([...times].sort()).toEqual(times);
    expect(Math.abs(Date.parse(times[0]!) - Date.now())).toBeLessThan(1000);
  });
});
