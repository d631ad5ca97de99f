import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from './errors.js';
import { eventFilter, nowNano, type EngineEvent } from './events.js';

describe('nowNano', () => {
  it('gives RFC 3339 times with nanoseconds that never go backwards', () => {
    const times = Array.from({ length: 1000 }, () => nowNano());
    expect(times[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    expect([...times].sort()).toEqual(times);
    expect(Math.abs(Date.parse(times[0]!) - Date.now())).toBeLessThan(1000);
  });
});

describe('eventFilter', () => {
  const ev = (type: EngineEvent['type'], action: string, id: string, attributes: Record<string, string>): EngineEvent => ({ time: '', type, action, id, attributes });
  const web = ev('container', 'start', 'abc123', { name: 'web', image: 'busybox', tier: 'front', team: 'a' });
  const img = ev('image', 'tag', 'sha256:feed', { name: 'busybox:latest' });
  const m = (f: string[], e: EngineEvent) => eventFilter(f)(e);

  it('ORs the values of one key, ANDs keys, and ANDs labels, as Docker', () => {
    expect(m(['type=image', 'type=container'], web)).toBe(true);
    expect(m(['type=container', 'event=stop'], web)).toBe(false);
    expect(m(['label=tier=front', 'label=team=a'], web)).toBe(true);
    expect(m(['label=tier=front', 'label=team=b'], web)).toBe(false);
    expect(m(['label=tier'], web)).toBe(true);
    expect(m(['container=web', 'image=busybox'], web)).toBe(true);
    expect(m(['image=busybox:latest'], img)).toBe(true);
    expect(m(['container=web'], img)).toBe(false);
    expect(m(['event=health_status'], ev('container', 'health_status: healthy', 'x', {}))).toBe(true);
  });

  it('refuses a key it does not know, rather than let everything through', () => {
    expect(() => eventFilter(['colour=red'])).toThrow(InvalidArgumentError);
    expect(() => eventFilter(['novalue'])).toThrow(/KEY=VALUE/);
  });
});
