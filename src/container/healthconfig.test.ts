import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import { applyResult, initialHealth, nextDelayMs, parseDuration, planHealthcheck, type HealthConfig } from './healthconfig.js';

const S = 1e9;

describe('parseDuration (Go time.ParseDuration)', () => {
  it.each([
    ['30s', 30 * S], ['1m30s', 90 * S], ['1.5h', 5400 * S], ['300ms', 3e8], ['2us', 2000], ['2µs', 2000], ['10ns', 10], ['0', 0], ['-5s', -5 * S], ['.5s', 0.5 * S],
  ])('%s', (text, ns) => expect(parseDuration('--health-interval', text)).toBe(ns));

  it.each(['5', '', 's', '1x', '1s2', '30 s', '1e3s', '--1s', '9999999999h'])('refuses %j', (text) => {
    expect(() => parseDuration('--health-interval', text)).toThrow(InvalidArgumentError);
  });

  it('names the missing unit as Go does', () => {
    expect(() => parseDuration('--health-timeout', '5')).toThrow('invalid --health-timeout: time: missing unit in duration "5"');
  });
});

describe('planHealthcheck', () => {
  const image = { Healthcheck: { Test: ['CMD', 'true'], Interval: 10 * S, Retries: 5 } };

  it('gives none without flags or image HEALTHCHECK', () => {
    expect(planHealthcheck({ image: 'x' }, {})).toBeUndefined();
  });

  it('runs --health-cmd through the shell, with Docker defaults', () => {
    expect(planHealthcheck({ image: 'x', health: { cmd: 'curl -f localhost' } }, {})).toEqual({
      test: ['CMD-SHELL', 'curl -f localhost'], intervalMs: 30_000, timeoutMs: 30_000, startPeriodMs: 0, startIntervalMs: 5_000, retries: 3,
    });
  });

  it("takes the image's HEALTHCHECK, flags over it, 0 meaning the image's", () => {
    expect(planHealthcheck({ image: 'x' }, image)).toMatchObject({ test: ['CMD', 'true'], intervalMs: 10_000, retries: 5 });
    expect(planHealthcheck({ image: 'x', health: { interval: '2s', timeout: '0' } }, image)).toMatchObject({ test: ['CMD', 'true'], intervalMs: 2_000, timeoutMs: 30_000 });
    expect(planHealthcheck({ image: 'x', health: { interval: 1_500_000_000 } }, image)).toMatchObject({ intervalMs: 1_500 });
  });

  it('--no-healthcheck turns the image\'s off, and conflicts with --health-*', () => {
    expect(planHealthcheck({ image: 'x', noHealthcheck: true }, image)).toBeUndefined();
    expect(() => planHealthcheck({ image: 'x', noHealthcheck: true, health: { retries: 2 } }, image)).toThrow('--no-healthcheck conflicts with --health-* options');
    expect(planHealthcheck({ image: 'x' }, { Healthcheck: { Test: ['NONE'] } })).toBeUndefined();
  });

  it.each([
    [{ interval: '-1s' }, '--health-interval cannot be negative'],
    [{ timeout: '-1ms' }, '--health-timeout cannot be negative'],
    [{ startPeriod: '-1s' }, '--health-start-period cannot be negative'],
    [{ startInterval: '-2s' }, '--health-start-interval cannot be negative'],
    [{ retries: -1 }, '--health-retries cannot be negative'],
    [{ retries: 1.5 }, 'is not a whole number'],
    [{ interval: '500us' }, 'Interval in Healthcheck cannot be less than 1ms'],
    [{ timeout: '1ns' }, 'Timeout in Healthcheck cannot be less than 1ms'],
    [{ interval: 'soon' }, 'time: invalid duration "soon"'],
    [{ cmd: '   ' }, 'the healthcheck command is empty'],
  ])('refuses %j', (health, message) => {
    expect(() => planHealthcheck({ image: 'x', health: { cmd: 'true', ...health } }, {})).toThrow(message);
  });

  it('refuses health options with nothing to check (Docker ignores them; here a flag must act)', () => {
    expect(() => planHealthcheck({ image: 'x', health: { interval: '5s' } }, {})).toThrow('no healthcheck command');
    expect(() => planHealthcheck({ image: 'x', health: { retries: 2 } }, { Healthcheck: { Test: ['NONE'] } })).toThrow('disabled');
  });

  it('refuses a malformed test, from an API caller or an image', () => {
    expect(() => planHealthcheck({ image: 'x', health: { test: ['SHELL', 'x'] } }, {})).toThrow('is not a healthcheck test');
    expect(() => planHealthcheck({ image: 'x' }, { Healthcheck: { Test: ['CMD'] } })).toThrow("invalid the image's HEALTHCHECK");
    expect(() => planHealthcheck({ image: 'x' }, { Healthcheck: { Test: ['CMD', 'true'], Retries: -2 } })).toThrow('Retries in Healthcheck cannot be negative');
  });
});

describe('applyResult and nextDelayMs (Docker handleProbeResult)', () => {
  const cfg: HealthConfig = { test: ['CMD', 'x'], intervalMs: 30_000, timeoutMs: 1_000, startPeriodMs: 60_000, startIntervalMs: 5_000, retries: 2 };
  const started = '2026-01-01T00:00:00.000Z';
  const at = (s: number, code: number) => ({ Start: new Date(Date.parse(started) + s * 1000).toISOString(), End: '', ExitCode: code, Output: '' });

  it('does not count failures inside the start period while starting', () => {
    const s = applyResult(applyResult(initialHealth(), at(1, 1), cfg, started), at(2, 1), cfg, started);
    expect(s).toMatchObject({ Status: 'starting', FailingStreak: 0 });
  });

  it('goes healthy on success, unhealthy after `retries` failures, healthy again on success', () => {
    let s = applyResult(initialHealth(), at(1, 0), cfg, started);
    expect(s).toMatchObject({ Status: 'healthy', FailingStreak: 0 });
    s = applyResult(s, at(2, 1), cfg, started);
    expect(s).toMatchObject({ Status: 'healthy', FailingStreak: 1 });
    s = applyResult(s, at(3, -1), cfg, started);
    expect(s).toMatchObject({ Status: 'unhealthy', FailingStreak: 2 });
    s = applyResult(s, at(4, 0), cfg, started);
    expect(s).toMatchObject({ Status: 'healthy', FailingStreak: 0 });
  });

  it('counts failures after the start period and keeps five results', () => {
    let s = initialHealth();
    for (let i = 0; i < 7; i++) s = applyResult(s, at(61 + i, 1), cfg, started);
    expect(s.Status).toBe('unhealthy');
    expect(s.FailingStreak).toBe(7);
    expect(s.Log).toHaveLength(5);
  });

  it('checks at the start interval while starting in the start period, else at the interval', () => {
    const t = (s: number) => Date.parse(started) + s * 1000;
    expect(nextDelayMs(initialHealth(), cfg, started, t(10))).toBe(5_000);
    expect(nextDelayMs({ ...initialHealth(), Status: 'healthy' }, cfg, started, t(10))).toBe(30_000);
    expect(nextDelayMs(initialHealth(), cfg, started, t(61))).toBe(30_000);
  });
});
