/**
 * Healthchecks as Docker has them (moby daemon/health.go): the config parsed at create, and the pure
 * rules that turn one check's result into the container's health. Running the checks is health.ts's.
 */
import { parseDuration } from '../util/time.js';
import { InvalidArgumentError } from '../errors.js';
import type { CreateRequest } from '../options.js';
import type { ImageConfig } from './ports.js';

/** A container's healthcheck, resolved at create: the flags over the image's HEALTHCHECK over Docker's defaults. */
export interface HealthConfig {
  /** Docker's form: ['CMD', file, args...] or ['CMD-SHELL', command] */
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  startPeriodMs: number;
  startIntervalMs: number;
  retries: number;
}

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

/** One check, as inspect's State.Health.Log shows it. */
export interface HealthResult {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

/** containers/<id>/health.json: Docker's State.Health. */
export interface HealthState {
  Status: HealthStatus;
  FailingStreak: number;
  Log: HealthResult[];
}

/** Docker's defaults (moby container/health.go, daemon/health.go). */
export const HEALTH_DEFAULTS = { intervalMs: 30_000, timeoutMs: 30_000, startPeriodMs: 0, startIntervalMs: 5_000, retries: 3 } as const;
/** Docker keeps the last five results, each output cut at 4 KiB. */
export const MAX_LOG_ENTRIES = 5;
export const MAX_OUTPUT_BYTES = 4096;
/** Docker's MinimumDuration: a shorter non-zero duration is refused. */
const MIN_DURATION_NS = 1_000_000;

// Go's time.ParseDuration lives in util/time.ts (parseDuration), shared with --since/--until.
export { parseDuration } from '../util/time.js';

const DURATIONS = [
  ['interval', '--health-interval', 'Interval'],
  ['timeout', '--health-timeout', 'Timeout'],
  ['startPeriod', '--health-start-period', 'StartPeriod'],
  ['startInterval', '--health-start-interval', 'StartInterval'],
] as const;

/**
 * The healthcheck a create request asks for, or none. As Docker: --no-healthcheck turns the image's off
 * and conflicts with any --health-* flag; a negative value is refused by name; a non-zero duration under
 * 1ms is refused; 0 means "the image's, else the default". Departing from Docker on purpose: health flags
 * with no command to run (none given, none in the image) are refused, since Docker accepts and ignores
 * them and a flag that does nothing is never allowed here.
 */
export function planHealthcheck(req: CreateRequest, image: ImageConfig): HealthConfig | undefined {
  const h = req.health ?? {};
  const given = Object.entries(h).filter(([, v]) => v !== undefined).map(([k]) => k);
  if (req.noHealthcheck) {
    if (given.length) throw new InvalidArgumentError('--no-healthcheck', '--no-healthcheck conflicts with --health-* options', 'give either --no-healthcheck or --health-* flags');
    return undefined;
  }
  if (h.cmd !== undefined && h.test !== undefined) throw new InvalidArgumentError('--health-cmd', 'give the command either as cmd or as test, not both');
  const ns: Record<string, number> = {};
  for (const [key, flag] of DURATIONS) {
    const v = h[key];
    if (v === undefined) continue;
    const n = parseDuration(flag, v);
    if (n < 0) throw new InvalidArgumentError(flag, `${flag} cannot be negative`);
    ns[key] = n;
  }
  if (h.retries !== undefined && (!Number.isInteger(h.retries) || h.retries < 0)) {
    throw new InvalidArgumentError('--health-retries', h.retries < 0 ? '--health-retries cannot be negative' : `"${h.retries}" is not a whole number`);
  }
  const img = image.Healthcheck ?? {};
  const test = h.cmd !== undefined ? ['CMD-SHELL', h.cmd] : h.test?.length ? h.test : img.Test ?? [];
  checkTest(test, h.cmd !== undefined || h.test?.length ? '--health-cmd' : "the image's HEALTHCHECK");
  if (!test.length || test[0] === 'NONE') {
    if (given.length) {
      throw new InvalidArgumentError(`--health-${given[0] === 'startPeriod' ? 'start-period' : given[0] === 'startInterval' ? 'start-interval' : given[0]}`,
        test[0] === 'NONE' ? 'the healthcheck is disabled (NONE), so health options have nothing to act on' : 'no healthcheck command: neither --health-cmd nor the image gives one',
        'add --health-cmd "COMMAND"');
    }
    return undefined;
  }
  const pick = (key: (typeof DURATIONS)[number][0], imageKey: (typeof DURATIONS)[number][2], field: string): number => {
    const n = ns[key] || img[imageKey] || 0;
    if (n !== 0 && n < MIN_DURATION_NS) throw new InvalidArgumentError(field, `${imageKey} in Healthcheck cannot be less than 1ms`);
    return n;
  };
  const ms = (key: (typeof DURATIONS)[number][0], imageKey: (typeof DURATIONS)[number][2], field: string, dflt: number) => {
    const n = pick(key, imageKey, field);
    return n ? n / 1e6 : dflt;
  };
  if (img.Retries !== undefined && img.Retries < 0) throw new InvalidArgumentError("the image's HEALTHCHECK", 'Retries in Healthcheck cannot be negative');
  return {
    test,
    intervalMs: ms('interval', 'Interval', '--health-interval', HEALTH_DEFAULTS.intervalMs),
    timeoutMs: ms('timeout', 'Timeout', '--health-timeout', HEALTH_DEFAULTS.timeoutMs),
    startPeriodMs: ms('startPeriod', 'StartPeriod', '--health-start-period', HEALTH_DEFAULTS.startPeriodMs),
    startIntervalMs: ms('startInterval', 'StartInterval', '--health-start-interval', HEALTH_DEFAULTS.startIntervalMs),
    retries: h.retries || img.Retries || HEALTH_DEFAULTS.retries,
  };
}

function checkTest(test: readonly string[], field: string): void {
  if (!test.length) return;
  const [kind, ...rest] = test;
  if (kind === 'NONE') return;
  if (kind === 'CMD' && rest.length && rest[0]) return;
  if (kind === 'CMD-SHELL' && rest.length === 1 && rest[0]!.trim()) return;
  if (kind === 'CMD-SHELL' && rest.length === 1) throw new InvalidArgumentError(field, 'the healthcheck command is empty', 'give a command, e.g. --health-cmd "wget -q -O- localhost"');
  throw new InvalidArgumentError(field, `${JSON.stringify(test)} is not a healthcheck test`, 'use ["CMD", file, args...], ["CMD-SHELL", command] or ["NONE"]');
}

/** The argv a check runs in the container. */
export function checkArgs(cfg: HealthConfig): string[] {
  return cfg.test[0] === 'CMD-SHELL' ? ['/bin/sh', '-c', cfg.test[1]!] : cfg.test.slice(1);
}

export function initialHealth(previous?: HealthState): HealthState {
  return { Status: 'starting', FailingStreak: 0, Log: previous?.Log ?? [] };
}

/**
 * Docker's handleProbeResult: a success makes the container healthy; a failure counts toward `retries`
 * (then unhealthy), except while the container is still starting inside its start period.
 */
export function applyResult(state: HealthState, result: HealthResult, cfg: HealthConfig, startedAt: string): HealthState {
  const next: HealthState = { ...state, Log: [...state.Log, result].slice(-MAX_LOG_ENTRIES) };
  if (result.ExitCode === 0) return { ...next, Status: 'healthy', FailingStreak: 0 };
  const inStartPeriod = state.Status === 'starting' && Date.parse(result.Start) - Date.parse(startedAt) < cfg.startPeriodMs;
  if (inStartPeriod) return next;
  const streak = state.FailingStreak + 1;
  return { ...next, FailingStreak: streak, Status: streak >= cfg.retries ? 'unhealthy' : state.Status };
}

/** Docker's probe interval: the start interval while still starting inside the start period. */
export function nextDelayMs(state: HealthState | undefined, cfg: HealthConfig, startedAt: string, now = Date.now()): number {
  if (now - Date.parse(startedAt) >= cfg.startPeriodMs) return cfg.intervalMs;
  return !state || state.Status === 'starting' ? cfg.startIntervalMs : cfg.intervalMs;
}

/** A check's output as Docker keeps it: at most 4 KiB. */
export function clipOutput(text: string): string {
  const buf = Buffer.from(text, 'utf8');
  return buf.length <= MAX_OUTPUT_BYTES ? text : buf.subarray(0, MAX_OUTPUT_BYTES).toString('utf8');
}

/** Docker's Config.Healthcheck, durations in nanoseconds. */
export function healthcheckView(cfg: HealthConfig): { Test: string[]; Interval: number; Timeout: number; StartPeriod: number; StartInterval: number; Retries: number } {
  return {
    Test: cfg.test, Interval: cfg.intervalMs * 1e6, Timeout: cfg.timeoutMs * 1e6, StartPeriod: cfg.startPeriodMs * 1e6,
    StartInterval: cfg.startIntervalMs * 1e6, Retries: cfg.retries,
  };
}

/** `ps --filter health=`: Docker's words, `none` for a container without a healthcheck. */
export const HEALTH_FILTER_VALUES = ['starting', 'healthy', 'unhealthy', 'none'] as const;
