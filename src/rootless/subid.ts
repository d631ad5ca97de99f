/**
 * /etc/subuid and /etc/subgid (subuid(5)): lines `NAME_OR_ID:START:COUNT`, `#` comments. A user's ranges are
 * the lines naming it by name or by numeric id, in file order, as shadow-utils' newuidmap reads them.
 */
export interface IdRange {
  readonly start: number;
  readonly count: number;
}

export function parseSubIds(text: string, user: { name?: string; id: number }): IdRange[] {
  const out: IdRange[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [owner, start, count] = line.split(':');
    if (owner !== user.name && owner !== String(user.id)) continue;
    const s = Number(start);
    const c = Number(count);
    if (!/^\d+$/.test(start ?? '') || !/^\d+$/.test(count ?? '') || c <= 0 || s + c > 2 ** 32 - 1) continue;
    out.push({ start: s, count: c });
  }
  return out;
}

/**
 * A range of `count` ids no line of `text` overlaps, from 100000 up (Debian's useradd starts there too):
 * what the error about a missing entry, and setup.sh, suggest.
 */
export function freeSubIdStart(text: string, count = 65536): number {
  let start = 100000;
  const taken = text.split('\n').map((l) => l.trim().split(':')).filter((p) => p.length >= 3 && /^\d+$/.test(p[1]!) && /^\d+$/.test(p[2]!))
    .map((p) => ({ start: Number(p[1]), end: Number(p[1]) + Number(p[2]) }))
    .sort((a, b) => a.start - b.start);
  for (const r of taken) if (r.start < start + count && r.end > start) start = r.end;
  return start;
}
