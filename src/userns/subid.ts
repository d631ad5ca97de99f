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
    if (!m || Number(m[3]) < 1 || Number(m[2]) + Number(m[3]) > 2 ** 32 - 1) {
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

/**
 * The start of `count` ids from `from` up that no range overlaps: what a message about a missing entry, and
 * setup.sh, suggest (100000 is where Debian's useradd starts too).
 */
export function freeSubidStart(ranges: readonly SubidRange[], count = 65536, from = 100000): number {
  let start = from;
  for (const r of [...ranges].sort((a, b) => a.start - b.start)) {
    if (r.start < start + count && r.start + r.count > start) start = r.start + r.count;
  }
  return start;
}
