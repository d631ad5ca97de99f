import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { matchesFilters, parseFilters } from './filters.js';
import type { ContainerRecord } from './record.js';

const rec = {
  id: 'abc123' + '0'.repeat(58), name: 'web-1', state: 'exited', exitCode: 2, startedAt: '2026-01-01T00:00:00Z', networks: [{ network: 'appnet' }],
  config: {
    image: 'busybox', imageId: 'sha256:feed' + '0'.repeat(60), labels: { tier: 'front', team: 'a' },
    network: { mode: { kind: 'networks', networks: [{ name: 'appnet', id: 'f00d' }] } },
  },
} as unknown as ContainerRecord;

const match = (...f: string[]) => matchesFilters(rec, parseFilters(f));

describe('ps filters', () => {
  it('match as docker ps --filter does', () => {
    expect(match('name=web')).toBe(true);
    expect(match('id=abc1')).toBe(true);
    expect(match('status=exited', 'exited=2')).toBe(true);
    expect(match('label=tier=front')).toBe(true);
    expect(match('label=team')).toBe(true);
    expect(match('ancestor=busybox')).toBe(true);
    expect(match('ancestor=feed')).toBe(true);
    expect(match('network=appnet')).toBe(true);
  });
  it('OR values of one key and AND different keys', () => {
    expect(match('name=nope', 'name=web')).toBe(true);
    expect(match('name=web', 'status=running')).toBe(false);
  });
  it('refuse unknown keys and malformed filters, naming them', () => {
    expect(() => parseFilters(['colour=red'])).toThrow(InvalidArgumentError);
    expect(() => parseFilters(['colour=red'])).toThrow(/colour/);
    expect(() => parseFilters(['novalue'])).toThrow(/KEY=VALUE/);
  });
});
