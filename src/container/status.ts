import { parseSignal } from '../bundle/index.js';
import { InvalidArgumentError } from '../errors.js';
import { ZERO_TIME, type ContainerRecord, type RestartPolicy } from './record.js';
import type { ListedRecord } from './catalog.js';
import { humanDuration } from '../util/time.js';

/** Docker's STATUS column: 'Up 3 minutes', 'Exited (0) 2 seconds ago', 'Created'. */
export function statusText(rec: ListedRecord & { health?: { Status: string } }, now = Date.now()): string {
  const since = (t: string) => humanDuration(now - Date.parse(t));
  // Docker's State.String(): an exit whose time is unknown says no "ago" rather than 2027 years.
  const ended = (word: string) => `${word} (${rec.exitCode})${rec.finishedAt === ZERO_TIME ? '' : ` ${since(rec.finishedAt)} ago`}`;
  switch (rec.state) {
    // Docker: "Up 3 minutes (healthy)", "(health: starting)"; only while running, not paused.
    case 'running': return `Up ${since(rec.startedAt)}${rec.health ? ` (${rec.health.Status === 'starting' ? 'health: starting' : rec.health.Status})` : ''}`;
    case 'paused': return `Up ${since(rec.startedAt)} (Paused)`;
    case 'restarting': return ended('Restarting');
    case 'exited': return ended('Exited');
    case 'removing': return 'Removal In Progress';
    case 'starting': return rec.startedAt === ZERO_TIME ? 'Created' : ended('Exited');
    default: return 'Created';
  }
}

export function parseRestartPolicy(text: string | undefined): RestartPolicy {
  if (!text || text === 'no') return { name: 'no', maxRetries: 0 };
  const [name, count, ...rest] = text.split(':');
  if (rest.length) throw new InvalidArgumentError('--restart', `"${text}" has too many ':'`);
  if (name === 'on-failure') {
    const n = count === undefined ? 0 : Number(count);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('--restart', `maximum retry count "${count}" must be a non-negative integer`);
    return { name, maxRetries: n };
  }
  if (name === 'always' || name === 'unless-stopped') {
    if (count !== undefined) throw new InvalidArgumentError('--restart', `maximum retry count cannot be used with restart policy "${name}"`);
    return { name, maxRetries: 0 };
  }
  throw new InvalidArgumentError('--restart', `"${text}" is not a restart policy`, 'use no, on-failure[:max-retries], always or unless-stopped');
}

/**
 * Docker's rules: `no` never; `on-failure` on a non-zero code while under the retry limit; `always` and
 * `unless-stopped` unless the user stopped or killed the container.
 */
export function shouldRestart(rec: ContainerRecord): boolean {
  const policy = rec.config.restartPolicy;
  if (rec.manuallyStopped || rec.config.autoRemove) return false;
  switch (policy.name) {
    case 'no': return false;
    case 'on-failure':
      return rec.exitCode !== 0 && (policy.maxRetries === 0 || rec.restartCount < policy.maxRetries);
    case 'always':
    case 'unless-stopped': return true;
  }
}

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 60_000;
/** A run at least this long resets the back-off (Docker's restartmanager). */
const BACKOFF_RESET_AFTER_MS = 10_000;

/**
 * Docker's back-off before the next restart: 100 ms, doubled at each restart, capped at one minute, and
 * back to 100 ms once the container had run for 10 s. `previousMs` is the last back-off (absent: none yet).
 */
export function nextBackoff(previousMs: number | undefined, ranMs: number): number {
  if (!previousMs || ranMs >= BACKOFF_RESET_AFTER_MS) return FIRST_BACKOFF_MS;
  return Math.min(previousMs * 2, MAX_BACKOFF_MS);
}

/** How long the run that just ended lasted (0 when a time is unknown). */
export function ranFor(rec: Pick<ContainerRecord, 'startedAt' | 'finishedAt'>): number {
  const ran = Date.parse(rec.finishedAt) - Date.parse(rec.startedAt);
  return rec.startedAt === ZERO_TIME || rec.finishedAt === ZERO_TIME || !Number.isFinite(ran) ? 0 : ran;
}

/**
 * A signal for runc, from what a user typed ('SIGTERM', 'term', '15', 'RTMIN+3'): the bundle layer parses
 * it; realtime signals go to runc as numbers, since runc 1.1's name table has no SIGRTMIN+n.
 */
export function normalizeSignal(text: string, field = '--signal'): string {
  const sig = parseSignal(field, text);
  return sig.number > 31 ? String(sig.number) : sig.name;
}
