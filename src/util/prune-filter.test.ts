import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { parsePruneFilter, prunable } from './prune-filter.js';

const NOW = Date.parse('2026-06-01T12:00:00Z');

describe('prune filters', () => {
  it('prune what was created up to until=, as docker', () => {
    const f = parsePruneFilter(['until=1h'], NOW);
    expect(prunable(f, '2026-06-01T10:59:59Z')).toBe(true);
    expect(prunable(f, '2026-06-01T11:00:00Z')).toBe(true);
    expect(prunable(f, '2026-06-01T11:30:00Z')).toBe(false);
    expect(prunable(parsePruneFilter(['until=2026-01-01T00:00:00Z']), '2025-12-31T00:00:00Z')).toBe(true);
    expect(prunable(parsePruneFilter(['until=1767225600']), '2026-01-02T00:00:00Z')).toBe(false);
  });

  it('prune by label=, label!= (all must hold)', () => {
    const labels = { app: 'web', tier: 'front' };
    expect(prunable(parsePruneFilter(['label=app']), '', labels)).toBe(true);
    expect(prunable(parsePruneFilter(['label=app=web', 'label=tier=front']), '', labels)).toBe(true);
    expect(prunable(parsePruneFilter(['label=app=db']), '', labels)).toBe(false);
    expect(prunable(parsePruneFilter(['label!=app']), '', labels)).toBe(false);
    expect(prunable(parsePruneFilter(['label!=app=db']), '', labels)).toBe(true);
    expect(prunable(parsePruneFilter(['label=a=b=c']), '', { a: 'b=c' })).toBe(true);
  });

  it('refuse other keys and malformed values', () => {
    for (const bad of ['dangling=true', 'until=', 'until=yesterday', 'label=', 'label==x', 'nokey', 'until=1h']) {
      expect(() => parsePruneFilter(bad === 'until=1h' ? ['until=1h', 'until=2h'] : [bad]), bad).toThrow(InvalidArgumentError);
    }
    expect(() => parsePruneFilter(['colour=red'])).toThrow("invalid filter 'colour'");
  });
});
