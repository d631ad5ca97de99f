import { readFileSync } from 'node:fs';

/**
 * Whether a process is still the one we mean: "pid starttime" tags. A pid alone can be reused after its
 * process exits; its start time (field 22 of /proc/PID/stat) cannot repeat. Lock files, owned temp names,
 * incomplete flags, leases and the container layer's attached/restarter markers all use these.
 */

/** Field 22 of /proc/PID/stat: start time in clock ticks, which tells a reused pid from the original. */
export function processStartTime(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

/**
 * "pid starttime" of a process (0 for the start time of one already gone). With `boot`, the kernel's boot
 * id follows: for tags kept across reboots (a container record), since processes started early by the
 * same boot sequence can get the same pid and start time again.
 */
export function processTag(pid: number, opts: { boot?: boolean } = {}): string {
  return `${pid} ${processStartTime(pid) ?? 0}${opts.boot ? ` ${bootId()}` : ''}`;
}

let boot: string | undefined;
function bootId(): string {
  try {
    boot ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    boot = '';
  }
  return boot;
}

/**
 * True when the process a tag names is alive and is the same process. A tag without a start time (or 0)
 * trusts the pid alone: older files, or a process that was gone when tagged. A zombie counts as dead: it
 * has exited, only its parent has not reaped it yet (a killed monitor's parent may take its time). A tag
 * of another boot names no live process.
 */
export function tagAlive(tag: string | undefined): boolean {
  const [pidText, start, bootOf] = (tag ?? '').trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (bootOf && bootOf !== bootId()) return false;
  const stat = statFields(pid);
  const actual = stat?.[19];
  if (actual === undefined || stat![0] === 'Z') return false;
  return start === undefined || start === '' || start === '0' || actual === start;
}

/** The fields of /proc/PID/stat after the command name: [0] is the state, [19] the start time. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}
