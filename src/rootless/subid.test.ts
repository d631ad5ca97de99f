import { describe, expect, it } from 'vitest';
import { freeSubIdStart, parseSubIds } from './subid.js';

describe('parseSubIds', () => {
  const text = '# comment\nalice:100000:65536\n1001:165536:65536\nbob:x:1\nalice:300000:10\ncarol:1:0\n';
  it('finds a user by name or by id, in file order', () => {
    expect(parseSubIds(text, { name: 'alice', id: 1000 })).toEqual([{ start: 100000, count: 65536 }, { start: 300000, count: 10 }]);
    expect(parseSubIds(text, { name: 'dave', id: 1001 })).toEqual([{ start: 165536, count: 65536 }]);
  });
  it('skips malformed and empty ranges', () => {
    expect(parseSubIds(text, { name: 'bob', id: 5 })).toEqual([]);
    expect(parseSubIds(text, { name: 'carol', id: 6 })).toEqual([]);
  });
});

describe('freeSubIdStart', () => {
  it('starts at 100000 in an empty file and skips what is taken', () => {
    expect(freeSubIdStart('')).toBe(100000);
    expect(freeSubIdStart('a:100000:65536\nb:165536:65536\n')).toBe(231072);
    expect(freeSubIdStart('a:400000:10\n')).toBe(100000);
  });
});
