/**
 * A container's cgroup, whatever the host's layout (youki's libcgroups idea: one small interface, the
 * v1/v2 difference decided once when it is opened). runc creates and joins the cgroups from the spec's
 * linux.cgroupsPath; Berth only reads them, and removes what a crashed runc left behind.
 *
 * cgroupsPath (e.g. /berth/<id>) is relative to each v1 controller's mount, or to the cgroup2 mount.
 * Freezing is not here: runc pause/resume does it.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NotFoundError } from '../errors.js';
import { parseMountinfoLine, type CgroupMode } from '../host.js';

export interface CgroupStats {
  cpuUsageNs: number;
  /** bytes in use minus inactive file cache, as `docker stats` shows it */
  memoryUsage: number;
  /** bytes; the host's memory when no limit is set */
  memoryLimit: number;
  blkioRead: number;
  blkioWrite: number;
  pids: number;
}

export interface Cgroup {
  readonly path: string;
  /** Throws NotFoundError when the cgroup does not exist (the container is not running). */
  stats(): Promise<CgroupStats>;
  /** Whether the kernel's OOM killer killed a task in this cgroup (while the cgroup still exists). */
  oomKilled(): Promise<boolean>;
  /** Removes the cgroup in every hierarchy; already gone is success, a busy cgroup is an error. */
  remove(): Promise<void>;
}

interface Hierarchies {
  /** v1 controller name -> mount point (a mount may carry several, e.g. cpu,cpuacct) */
  v1: Map<string, string>;
  /** the cgroup2 mount: /sys/fs/cgroup on v2, /sys/fs/cgroup/unified on hybrid */
  v2?: string;
}

/** Controllers named in v1 super options; the rest (rw, noprefix, name=systemd...) are not controllers. */
const V1_CONTROLLERS = new Set(['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'net_cls', 'blkio',
  'perf_event', 'net_prio', 'hugetlb', 'pids', 'rdma', 'misc']);

export function hierarchiesFromMountinfo(mountinfo: string): Hierarchies {
  const h: Hierarchies = { v1: new Map() };
  for (const line of mountinfo.split('\n')) {
    const m = parseMountinfoLine(line);
    if (!m) continue;
    if (m.fstype === 'cgroup2') {
      h.v2 ??= m.mountPoint;
    } else if (m.fstype === 'cgroup') {
      for (const opt of m.superOptions) if (V1_CONTROLLERS.has(opt) && !h.v1.has(opt)) h.v1.set(opt, m.mountPoint);
      // name=systemd style hierarchies have no controller but runc still makes a directory there.
      const named = m.superOptions.find((o) => o.startsWith('name='));
      if (named) h.v1.set(named, m.mountPoint);
    }
  }
  return h;
}

export async function openCgroup(cgroupsPath: string, mode: CgroupMode): Promise<Cgroup> {
  const hier = hierarchiesFromMountinfo(await fsp.readFile('/proc/self/mountinfo', 'utf8'));
  const rel = path.posix.normalize('/' + cgroupsPath).slice(1);
  return mode === 'v2' ? new CgroupV2(cgroupsPath, hier, rel) : new CgroupV1(cgroupsPath, hier, rel);
}

abstract class BaseCgroup implements Cgroup {
  constructor(readonly path: string, protected readonly hier: Hierarchies, protected readonly rel: string) {}
  abstract stats(): Promise<CgroupStats>;
  abstract oomKilled(): Promise<boolean>;

  async remove(): Promise<void> {
    const dirs = new Set<string>();
    for (const mount of this.hier.v1.values()) dirs.add(path.join(mount, this.rel));
    if (this.hier.v2) dirs.add(path.join(this.hier.v2, this.rel));
    for (const dir of dirs) await removeCgroupDir(dir);
  }

  protected notFound(): NotFoundError {
    return new NotFoundError('container', `cgroup ${this.path}`, 'the container is not running');
  }
}

class CgroupV1 extends BaseCgroup {
  private dir(controller: string): string | undefined {
    const mount = this.hier.v1.get(controller);
    return mount === undefined ? undefined : path.join(mount, this.rel);
  }

  private read(controller: string, file: string): Promise<string | undefined> {
    const dir = this.dir(controller);
    return dir === undefined ? Promise.resolve(undefined) : readIfExists(path.join(dir, file));
  }

  async stats(): Promise<CgroupStats> {
    const [usage, limit, memStat, cpu, blkio, pids] = await Promise.all([
      this.read('memory', 'memory.usage_in_bytes'),
      this.read('memory', 'memory.limit_in_bytes'),
      this.read('memory', 'memory.stat'),
      this.read('cpuacct', 'cpuacct.usage'),
      this.read('blkio', 'blkio.throttle.io_service_bytes'),
      this.read('pids', 'pids.current'),
    ]);
    if (usage === undefined && cpu === undefined && pids === undefined) throw this.notFound();
    const inactive = keyedValues(memStat ?? '').get('total_inactive_file') ?? 0;
    const io = blkioV1(blkio ?? '');
    return {
      cpuUsageNs: num(cpu),
      memoryUsage: Math.max(0, num(usage) - inactive),
      memoryLimit: capLimit(num(limit)),
      blkioRead: io.read,
      blkioWrite: io.write,
      pids: num(pids),
    };
  }

  async oomKilled(): Promise<boolean> {
    const text = await this.read('memory', 'memory.oom_control');
    return (keyedValues(text ?? '').get('oom_kill') ?? 0) > 0;
  }
}

class CgroupV2 extends BaseCgroup {
  private read(file: string): Promise<string | undefined> {
    return readIfExists(path.join(this.hier.v2 ?? '/sys/fs/cgroup', this.rel, file));
  }

  async stats(): Promise<CgroupStats> {
    const [cpuStat, current, max, memStat, io, pids] = await Promise.all([
      this.read('cpu.stat'), this.read('memory.current'), this.read('memory.max'),
      this.read('memory.stat'), this.read('io.stat'), this.read('pids.current'),
    ]);
    if (cpuStat === undefined && current === undefined && pids === undefined) throw this.notFound();
    const inactive = keyedValues(memStat ?? '').get('inactive_file') ?? 0;
    const limit = max?.trim() === 'max' || max === undefined ? Number.POSITIVE_INFINITY : num(max);
    const bytes = ioV2(io ?? '');
    return {
      cpuUsageNs: (keyedValues(cpuStat ?? '').get('usage_usec') ?? 0) * 1000,
      memoryUsage: Math.max(0, num(current) - inactive),
      memoryLimit: capLimit(limit),
      blkioRead: bytes.read,
      blkioWrite: bytes.write,
      pids: num(pids),
    };
  }

  async oomKilled(): Promise<boolean> {
    return (keyedValues((await this.read('memory.events')) ?? '').get('oom_kill') ?? 0) > 0;
  }
}

async function removeCgroupDir(dir: string): Promise<void> {
  try {
    await fsp.rmdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENODEV') return undefined;
    throw err;
  }
}

function num(text: string | undefined): number {
  const n = Number((text ?? '').trim());
  return Number.isFinite(n) ? n : 0;
}

/** v1 reports "no limit" as a page-rounded 2^63; show the host's memory instead, as docker does. */
function capLimit(limit: number): number {
  const total = os.totalmem();
  return limit > total || limit <= 0 ? total : limit;
}

/** "key value" lines (memory.stat, cpu.stat, memory.events, memory.oom_control). */
export function keyedValues(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined && /^\d+$/.test(value)) out.set(key, Number(value));
  }
  return out;
}

/** blkio.throttle.io_service_bytes: "MAJ:MIN Read N" / "MAJ:MIN Write N" lines, plus a Total line. */
export function blkioV1(text: string): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const line of text.split('\n')) {
    const [dev, op, value] = line.trim().split(/\s+/);
    if (!dev?.includes(':') || value === undefined) continue;
    if (op === 'Read') read += Number(value);
    else if (op === 'Write') write += Number(value);
  }
  return { read, write };
}

/** io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N ..." per device. */
export function ioV2(text: string): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const m of text.matchAll(/\b(rbytes|wbytes)=(\d+)/g)) {
    if (m[1] === 'rbytes') read += Number(m[2]);
    else write += Number(m[2]);
  }
  return { read, write };
}
