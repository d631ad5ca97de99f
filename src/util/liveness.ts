import { readFileSync } from 'node:fs';

/**
 * Whether a process is still the one we mean: "pid starttime" tags. A pid alone can be reused after its
 * process exits; its start time (field 22 of /proc/PID/stat) cannot repeat. Lock files, owned temp names,
 * incomplete flags, leases and the container layer's attached/restarter markers all use these.
 */

/** Field 22 of /proc/PID/stat: start time in clock ticks, which tells a reused pid from the original. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

/** "pid starttime" of a process (0 for the start time of one already gone). */
export function processTag(pid: number): string {
  return `${pid} ${processStartTime(pid) ?? 0}`;
}

/**
 * True when the process a tag names is alive and is the same process. A tag without a start time (or 0)
 * trusts the pid alone: older files, or a process that was gone when tagged.
 */
export function tagAlive(tag: string | undefined): boolean {
  const [pidText, start] = (tag ?? '').trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const actual = processStartTime(pid);
  return actual !== undefined && (start === undefined || start === '' || start === '0' || actual === start);
}
