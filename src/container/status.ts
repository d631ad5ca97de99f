import { parseSignal } from '../bundle/index.js';
import { InvalidArgumentError } from '../errors.js';
import { ZERO_TIME, type ContainerRecord, type RestartPolicy } from './record.js';
import { humanDuration } from '../util/time.js';

/** Docker's STATUS column: 'Up 3 minutes', 'Exited (0) 2 seconds ago', 'Created'. */
export function statusText(rec: ContainerRecord & { health?: { Status: string } }, now = Date.now()): string {
  const since = (t: string) => humanDuration(now - Date.parse(t));
  switch (rec.state) {
    // Docker: "Up 3 minutes (healthy)", "(health: starting)"; only while running, not paused.
    case 'running': return `Up ${since(rec.startedAt)}${rec.health ? ` (${rec.health.Status === 'starting' ? 'health: starting' : rec.health.Status})` : ''}`;
    case 'paused': return `Up ${since(rec.startedAt)} (Paused)`;
    case 'restarting': return `Restarting (${rec.exitCode}) ${since(rec.finishedAt)} ago`;
    case 'exited': return `Exited (${rec.exitCode}) ${since(rec.finishedAt)} ago`;
    case 'removing': return 'Removal In Progress';
    case 'starting': return rec.startedAt === ZERO_TIME ? 'Created' : `Exited (${rec.exitCode}) ${since(rec.finishedAt)} ago`;
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

/** Back-off before the Nth restart: 100 ms doubling, capped at one minute, as Docker. */
export function restartDelay(restartCount: number): number {
  return Math.min(100 * 2 ** restartCount, 60_000);
}

/**
 * A signal for runc, from what a user typed ('SIGTERM', 'term', '15', 'RTMIN+3'): the bundle layer parses
 * it; realtime signals go to runc as numbers, since runc 1.1's name table has no SIGRTMIN+n.
 */
export function normalizeSignal(text: string, field = '--signal'): string {
  const sig = parseSignal(field, text);
  return sig.number > 31 ? String(sig.number) : sig.name;
}
