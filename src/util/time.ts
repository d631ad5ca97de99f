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
  const rel = /^(\d+(?:\.\d+)?(?:ns|us|ms|s|m|h))+$/.test(text) ? parseDuration(field, text) / 1e6 : undefined;
  if (rel !== undefined) return now - rel;
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new InvalidArgumentError(field, `"${text}" is not a time`, 'use RFC 3339, unix seconds, or a duration like 10m');
  return t;
}

const UNITS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration ('1m30s', '1.5h', '300ms', '0'), in nanoseconds; a number is nanoseconds already. */
export function parseDuration(field: string, value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new InvalidArgumentError(field, `${value} is not a whole number of nanoseconds`);
    return value;
  }
  const text = value.trim();
  const bad = (why = 'invalid duration') => new InvalidArgumentError(field, `time: ${why} "${value}"`, 'write a duration with its unit, e.g. 30s, 1m30s, 500ms');
  const m = /^([-+]?)(.*)$/.exec(text)!;
  const body = m[2]!;
  if (body === '0') return 0;
  if (!body) throw bad();
  let total = 0;
  const part = /(\d+\.?\d*|\.\d+)([^\d.]*)/y;
  let at = 0;
  while (at < body.length) {
    part.lastIndex = at;
    const p = part.exec(body);
    if (!p) throw bad();
    if (!p[2]) throw bad('missing unit in duration');
    if (!Object.hasOwn(UNITS, p[2])) throw bad(`unknown unit ${JSON.stringify(p[2])} in duration`);
    total += Number(p[1]) * UNITS[p[2]]!;
    at = part.lastIndex;
  }
  if (!Number.isSafeInteger(Math.round(total))) throw bad();
  return (m[1] === '-' ? -1 : 1) * Math.round(total);
}
