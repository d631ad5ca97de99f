/**
 * The `--filter` of every prune (container, image, network, system), as Docker's: `until=TIME` keeps what
 * was created at or after TIME, `label=KEY[=VALUE]` prunes only what has the label, `label!=KEY[=VALUE]`
 * only what has not. Several labels must all hold. Parsed once, before anything is removed, so a bad
 * filter removes nothing.
 */
import { InvalidArgumentError } from '../errors.js';
import { parseTime } from './time.js';

export interface PruneFilter {
  /** ms since the epoch: only objects created up to it are pruned (Docker: not After(until)) */
  until?: number;
  labels: { key: string; value?: string; negate: boolean }[];
}

export function parsePruneFilter(list: readonly string[] = [], now = Date.now()): PruneFilter {
  const out: PruneFilter = { labels: [] };
  for (const f of list) {
    const m = /^(until|label!?)=(.*)$/s.exec(f);
    if (!m) {
      const key = f.split(/!?=/)[0];
      throw new InvalidArgumentError('--filter', f.includes('=') ? `invalid filter '${key}'` : `"${f}" is not KEY=VALUE`, 'prune takes until=TIMESTAMP, label=KEY[=VALUE] and label!=KEY[=VALUE]');
    }
    const [, key, value] = m as unknown as [string, string, string];
    if (key === 'until') {
      if (out.until !== undefined) throw new InvalidArgumentError('--filter', 'more than one until filter', 'give until= once');
      out.until = parseTime(value, '--filter until', now);
      if (out.until === undefined) throw new InvalidArgumentError('--filter', 'until needs a time', 'e.g. until=24h or until=2024-01-02T03:04:05Z');
      continue;
    }
    const eq = value.indexOf('=');
    const labelKey = eq < 0 ? value : value.slice(0, eq);
    if (!labelKey) throw new InvalidArgumentError('--filter', `"${f}" names no label`, 'use label=KEY or label=KEY=VALUE');
    out.labels.push({ key: labelKey, ...(eq < 0 ? {} : { value: value.slice(eq + 1) }), negate: key === 'label!' });
  }
  return out;
}

/** Whether an object created at `created` (RFC 3339) with `labels` may be pruned under `f`. */
export function prunable(f: PruneFilter, created: string, labels: Readonly<Record<string, string>> = {}): boolean {
  if (f.until !== undefined && Date.parse(created) > f.until) return false;
  return f.labels.every(({ key, value, negate }) => {
    const has = key in labels && (value === undefined || labels[key] === value);
    return negate ? !has : has;
  });
}
