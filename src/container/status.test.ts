import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import type { ContainerRecord } from './record.js';
import { humanDuration } from '../util/time.js';
import { nextBackoff, normalizeSignal, parseRestartPolicy, shouldRestart, statusText } from './status.js';
import { ZERO_TIME } from './record.js';

const base = { exitCode: 0, restartCount: 0, manuallyStopped: false } as const;
type Over = Partial<Omit<ContainerRecord, 'config'>> & { restartPolicy?: ContainerRecord['config']['restartPolicy']; autoRemove?: boolean };
const rec = ({ restartPolicy = { name: 'no', maxRetries: 0 }, autoRemove = false, ...over }: Over): ContainerRecord =>
  ({ ...base, config: { restartPolicy, autoRemove }, ...over }) as ContainerRecord;

describe('restart policy', () => {
  it('parses docker forms', () => {
    expect(parseRestartPolicy(undefined)).toEqual({ name: 'no', maxRetries: 0 });
    expect(parseRestartPolicy('on-failure:3')).toEqual({ name: 'on-failure', maxRetries: 3 });
    expect(parseRestartPolicy('always')).toEqual({ name: 'always', maxRetries: 0 });
    expect(parseRestartPolicy('unless-stopped')).toEqual({ name: 'unless-stopped', maxRetries: 0 });
  });
  it('refuses bad ones, naming the flag', () => {
    expect(() => parseRestartPolicy('sometimes')).toThrow(InvalidArgumentError);
    expect(() => parseRestartPolicy('always:3')).toThrow(/--restart/);
    expect(() => parseRestartPolicy('on-failure:-1')).toThrow(/retry count/);
  });
  it('follows docker rules', () => {
    expect(shouldRestart(rec({ restartPolicy: { name: 'on-failure', maxRetries: 2 }, exitCode: 1, restartCount: 1 }))).toBe(true);
    expect(shouldRestart(rec({ restartPolicy: { name: 'on-failure', maxRetries: 2 }, exitCode: 1, restartCount: 2 }))).toBe(false);
    expect(shouldRestart(rec({ restartPolicy: { name: 'on-failure', maxRetries: 0 }, exitCode: 0 }))).toBe(false);
    expect(shouldRestart(rec({ restartPolicy: { name: 'always', maxRetries: 0 } }))).toBe(true);
    expect(shouldRestart(rec({ restartPolicy: { name: 'always', maxRetries: 0 }, manuallyStopped: true }))).toBe(false);
    expect(shouldRestart(rec({ restartPolicy: { name: 'no', maxRetries: 0 }, exitCode: 1 }))).toBe(false);
  });
  it('backs off as Docker: 100 ms doubling to a minute, reset after 10 s of running', () => {
    expect(nextBackoff(undefined, 0)).toBe(100);
    expect(nextBackoff(100, 50)).toBe(200);
    expect(nextBackoff(400, 9_999)).toBe(800);
    expect(nextBackoff(51_200, 0)).toBe(60_000);
    expect(nextBackoff(60_000, 0)).toBe(60_000);
    expect(nextBackoff(60_000, 10_000)).toBe(100);
  });
});

describe('signals', () => {
  it('normalizes names and numbers', () => {
    expect(normalizeSignal('term')).toBe('SIGTERM');
    expect(normalizeSignal('SIGKILL')).toBe('SIGKILL');
    expect(normalizeSignal('9')).toBe('SIGKILL');
    expect(normalizeSignal('HUP')).toBe('SIGHUP');
  });
  it('refuses unknown signals', () => {
    expect(() => normalizeSignal('SIGFOO')).toThrow(/invalid signal: SIGFOO/);
  });
});

describe('status text', () => {
  const now = Date.parse('2026-01-01T00:10:00Z');
  it('speaks like docker ps', () => {
    expect(humanDuration(500)).toBe('Less than a second');
    expect(humanDuration(65_000)).toBe('About a minute');
    expect(humanDuration(3 * 60_000)).toBe('3 minutes');
    expect(statusText(rec({ state: 'running', startedAt: '2026-01-01T00:07:00Z' }), now)).toBe('Up 3 minutes');
    expect(statusText(rec({ state: 'exited', exitCode: 2, finishedAt: '2026-01-01T00:09:58Z' }), now)).toBe('Exited (2) 2 seconds ago');
    expect(statusText(rec({ state: 'created' }), now)).toBe('Created');
  });
  it('never counts an unknown exit time from year 1', () => {
    expect(statusText(rec({ state: 'exited', exitCode: 255, finishedAt: ZERO_TIME }), now)).toBe('Exited (255)');
    expect(statusText(rec({ state: 'restarting', exitCode: 137, finishedAt: ZERO_TIME }), now)).toBe('Restarting (137)');
  });
});

describe('parseNetDev', () => {
  it('sums every interface but loopback', async () => {
    const { parseNetDev } = await import('./observe.js');
    const text = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0:    1500      10    0    0    0     0          0         0      700       5    0    0    0     0       0          0
  eth1:      50       1    0    0    0     0          0         0       25       1    0    0    0     0       0          0
`;
    expect(parseNetDev(text)).toEqual({ rx: 1550, tx: 725 });
  });
});
