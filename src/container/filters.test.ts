import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { matchesFilters, parseFilters } from './filters.js';
import type { ContainerRecord } from './record.js';

const rec = {
  id: 'abc123' + '0'.repeat(58), name: 'web-1', state: 'exited', exitCode: 2, startedAt: '2026-01-01T00:00:00Z', networks: [{ network: 'appnet' }],
  created: '2026-01-01T00:00:00Z', ports: [],
  config: {
    image: 'busybox', imageId: 'sha256:feed' + '0'.repeat(60), labels: { tier: 'front', team: 'a' },
    network: { mode: { kind: 'networks', networks: [{ name: 'appnet', id: 'f00d' }] }, ports: [] },
    imageConfig: { ExposedPorts: { '8080/tcp': {} } },
    spec: { mounts: { user: [{ type: 'bind', source: '/srv/data', destination: '/data' }, { type: 'tmpfs', source: 'tmpfs', destination: '/tmp' }] } },
  },
} as unknown as ContainerRecord;
const running = { ...rec, state: 'running', ports: [{ hostIp: '0.0.0.0', hostPort: 18080, containerPort: 80, protocol: 'tcp' }] } as unknown as ContainerRecord;

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
  it('AND labels, as Docker (compose asks project=X and oneoff=True together)', () => {
    expect(match('label=tier=front', 'label=team=a')).toBe(true);
    expect(match('label=tier=front', 'label=team=b')).toBe(false);
    expect(match('label=tier', 'label=missing')).toBe(false);
  });
  it('refuse unknown keys and malformed filters, naming them', () => {
    expect(() => parseFilters(['colour=red'])).toThrow(InvalidArgumentError);
    expect(() => parseFilters(['colour=red'])).toThrow(/colour/);
    expect(() => parseFilters(['novalue'])).toThrow(/KEY=VALUE/);
  });
  it('match names as regular expressions, with or without the leading slash', () => {
    expect(match('name=^web-1$')).toBe(true);
    expect(match('name=^/web')).toBe(true);
    expect(match('name=^web$')).toBe(false);
    expect(match('name=(?i)^WEB')).toBe(true);
    expect(() => parseFilters(['name=(['])).toThrow(/regular expression/);
  });
  it('match before and since by creation time', () => {
    expect(matchesFilters(rec, parseFilters(['before=x']), { before: ['2026-01-02T00:00:00Z'] })).toBe(true);
    expect(matchesFilters(rec, parseFilters(['before=x']), { before: ['2026-01-01T00:00:00Z'] })).toBe(false);
    expect(matchesFilters(rec, parseFilters(['since=x']), { since: ['2025-12-31T00:00:00Z'] })).toBe(true);
    expect(matchesFilters(rec, parseFilters(['since=x']), { since: ['2026-01-01T00:00:00Z'] })).toBe(false);
  });
  it('match publish by host port and expose by container port, of live containers only', () => {
    const on = (...f: string[]) => matchesFilters(running, parseFilters(f));
    expect(on('publish=18080')).toBe(true);
    expect(on('publish=18000-18100/tcp')).toBe(true);
    expect(on('publish=80')).toBe(false);
    expect(on('publish=18080/udp')).toBe(false);
    expect(on('expose=80')).toBe(true);
    expect(on('expose=8080/tcp')).toBe(true);
    expect(on('expose=8081')).toBe(false);
    expect(match('expose=8080')).toBe(false);
    expect(() => parseFilters(['publish=0.0.0.0:80'])).toThrow(/not a port/);
    expect(() => parseFilters(['expose=90-80'])).toThrow(/not a port/);
    expect(() => parseFilters(['publish=70000'])).toThrow(/not a port/);
  });
  it('match volume by a bind mount source or destination', () => {
    expect(match('volume=/srv/data')).toBe(true);
    expect(match('volume=/data')).toBe(true);
    expect(match('volume=/tmp')).toBe(false);
    expect(match('volume=/srv')).toBe(false);
  });
  it('refuse bad status, exited and health values', () => {
    expect(() => parseFilters(['status=sleeping'])).toThrow(/status=sleeping/);
    expect(() => parseFilters(['exited=zero'])).toThrow(/exited=zero/);
    expect(() => parseFilters(['health=sick'])).toThrow(/Unrecognised filter value for health: sick/);
    expect(parseFilters(['health=healthy']).values.get('health')).toEqual(['healthy']);
  });
});
