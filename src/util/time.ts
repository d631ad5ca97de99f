import { InvalidArgumentError } from '../errors.js';

/** Docker's go-units HumanDuration: truncated seconds and minutes, rounded hours (ps STATUS, CREATED). */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.floor(ms / 3_600_000 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3_600_000 / 24 / 365)} years`;
}

/** RFC 3339, unix seconds, or a duration back from now ('10m', '1h30m'), as docker --since/--until take. */
export function parseTime(text: string | undefined, field: string, now = Date.now()): number | undefined {
  if (text === undefined || text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const rel = /^(\d+(?:\.\d+)?(?:ns|us|ms|s|m|h))+$/.test(text) ? durationMs(text) : undefined;
  if (rel !== undefined) return now - rel;
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new InvalidArgumentError(field, `"${text}" is not a time`, 'use RFC 3339, unix seconds, or a duration like 10m');
  return t;
}

function durationMs(text: string): number {
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const [, n, u] of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)/g)) total += Number(n) * unit[u!]!;
  return total;
}
