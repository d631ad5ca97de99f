import { InvalidArgumentError } from '../errors.js';

/** One line of /etc/subuid or /etc/subgid (subuid(5)): `NAME_OR_UID:START:COUNT`. */
export interface SubidRange {
  owner: string;
  start: number;
  count: number;
}

export const SUBUID_FILE = '/etc/subuid';
export const SUBGID_FILE = '/etc/subgid';

/**
 * Parses a subuid/subgid file. Comments and blank lines are skipped, as shadow-utils skips them; a
 * malformed line is an error naming the file and line, since guessing would hand out someone else's ids.
 */
export function parseSubidFile(text: string, source: string): SubidRange[] {
  const out: SubidRange[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([^:\s]+):(\d+):(\d+)$/.exec(line);
    if (!m || Number(m[3]) < 1) {
      throw new InvalidArgumentError('subid', `${source} line ${i + 1} is not NAME:START:COUNT: "${line}"`, `fix the line in ${source}`);
    }
    out.push({ owner: m[1]!, start: Number(m[2]), count: Number(m[3]) });
  }
  return out;
}

/** The ranges of a user, named by name or by uid (shadow-utils accepts both). */
export function rangesOf(ranges: readonly SubidRange[], user: { name: string; uid?: number }): SubidRange[] {
  return ranges.filter((r) => r.owner === user.name || (user.uid !== undefined && r.owner === String(user.uid)));
}
