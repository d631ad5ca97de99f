import { constants as fsConstants, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { rootlessFacts } from './rootless/index.js';

/**
 * Facts about the host, probed once per command and passed down (runc's specconv lesson: generators
 * never probe the host themselves, so they stay pure and testable without root).
 */
export type CgroupMode = 'v1' | 'hybrid' | 'v2';

export interface HostFacts {
  /** hybrid: v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified (this CI) */
  cgroupMode: CgroupMode;
  /** Hard rlimits of this process, by OCI name (RLIMIT_NOFILE ...); a spec must never ask for more. */
  rlimitHard: Record<string, number>;
  /** Absolute paths of the host tools Berth drives. */
  tools: { runc: string; conmon: string; catatonit?: string; socat?: string; busybox?: string };
  /** The host's /etc/resolv.conf text, for containers that get no DNS of Berth's own. */
  resolvConf: string;
  /** CPUs online, for --cpus range checks */
  cpus: number;
  /** This process's /proc/self/oom_score_adj, which runc inherits: going below it needs CAP_SYS_RESOURCE. */
  oomScoreAdj?: number;
  /**
   * Berth runs as a non-root user, in its own user namespace (src/rootless): no cgroup limits, no iptables.
   * The counts of uids and gids mapped in it (the user and its subordinate ranges).
   */
  rootless?: { uids: number; gids: number };
}

/** OCI rlimit names by the row titles of /proc/self/limits. */
const LIMIT_ROWS: ReadonlyArray<readonly [string, string]> = [
  ['Max cpu time', 'RLIMIT_CPU'],
  ['Max file size', 'RLIMIT_FSIZE'],
  ['Max data size', 'RLIMIT_DATA'],
  ['Max stack size', 'RLIMIT_STACK'],
  ['Max core file size', 'RLIMIT_CORE'],
  ['Max resident set', 'RLIMIT_RSS'],
  ['Max processes', 'RLIMIT_NPROC'],
  ['Max open files', 'RLIMIT_NOFILE'],
  ['Max locked memory', 'RLIMIT_MEMLOCK'],
  ['Max address space', 'RLIMIT_AS'],
  ['Max file locks', 'RLIMIT_LOCKS'],
  ['Max pending signals', 'RLIMIT_SIGPENDING'],
  ['Max msgqueue size', 'RLIMIT_MSGQUEUE'],
  ['Max nice priority', 'RLIMIT_NICE'],
  ['Max realtime priority', 'RLIMIT_RTPRIO'],
  ['Max realtime timeout', 'RLIMIT_RTTIME'],
];

/**
 * Probes the host. It runs on every command, so it only reads files (no process spawns): two statfs of
 * /sys/fs/cgroup, /proc/self/limits, /etc/resolv.conf and the PATH directories. Not /proc/self/mountinfo:
 * the kernel writes it out whole on each read, one line per mount, so with every container's overlay in it
 * a read took 3-5 ms at 200 containers (issue 20).
 */
export async function probeHost(env: NodeJS.ProcessEnv = process.env): Promise<HostFacts> {
  const [cgroupRoot, cgroupUnified, limits, resolvConf, runc, conmon, catatonit, socat, busybox, oomScoreAdj] = await Promise.all([
    fsType('/sys/fs/cgroup'),
    fsType('/sys/fs/cgroup/unified'),
    readText('/proc/self/limits'),
    readText('/etc/resolv.conf'),
    lookPath('runc', env),
    lookPath('conmon', env),
    lookPath('catatonit', env),
    lookPath('socat', env),
    // busybox-static, the embedded image's binary: the per-container loops run on it (runtime/loops.ts).
    lookPath(path.basename(BUSYBOX_PATH), { PATH: path.dirname(BUSYBOX_PATH) }),
    readText('/proc/self/oom_score_adj'),
  ]);
  return {
    cgroupMode: cgroupModeFromFsTypes(cgroupRoot, cgroupUnified),
    rlimitHard: parseHardLimits(limits),
    // A missing runc/conmon is reported by the runtime layer when it is first needed, so that
    // commands that never start a container (images, networks) work on a host without them.
    tools: { runc: runc ?? 'runc', conmon: conmon ?? 'conmon', ...(catatonit ? { catatonit } : {}), ...(socat ? { socat } : {}), ...(busybox ? { busybox } : {}) },
    resolvConf,
    cpus: Math.max(1, os.availableParallelism()),
    ...(/^-?\d+\s*$/.test(oomScoreAdj) ? { oomScoreAdj: Number(oomScoreAdj) } : {}),
    ...rootlessHostFacts(),
  };
}

function rootlessHostFacts(): Pick<HostFacts, 'rootless'> {
  const facts = rootlessFacts();
  if (!facts.rootless) return {};
  const count = (map: readonly { size: number }[]) => map.reduce((n, l) => n + l.size, 0);
  return { rootless: { uids: count(facts.uidMap), gids: count(facts.gidMap) } };
}

const CGROUP2_SUPER_MAGIC = 0x63677270;

/**
 * v2 when /sys/fs/cgroup itself is cgroup2; hybrid when v1 controllers sit beside a cgroup2 mount at
 * systemd's /sys/fs/cgroup/unified; v1 otherwise (v2 when there is no /sys/fs/cgroup at all). The
 * file system types of the two folders, as runc decides it (libcontainer/cgroups IsCgroup2UnifiedMode,
 * IsCgroup2HybridMode), so Berth and runc never disagree; youki makes the same three-way call.
 */
export function cgroupModeFromFsTypes(root: number | undefined, unified: number | undefined): CgroupMode {
  if (root === undefined || root === CGROUP2_SUPER_MAGIC) return 'v2';
  return unified === CGROUP2_SUPER_MAGIC ? 'hybrid' : 'v1';
}

async function fsType(dir: string): Promise<number | undefined> {
  return fsp.statfs(dir).then((s) => s.type, () => undefined);
}

export interface MountinfoEntry {
  root: string;
  mountPoint: string;
  fstype: string;
  superOptions: string[];
}

/** One /proc/PID/mountinfo line (proc(5)): fields, optional fields, "-", fstype, source, super options. */
export function parseMountinfoLine(line: string): MountinfoEntry | undefined {
  const dash = line.indexOf(' - ');
  if (dash < 0) return undefined;
  const left = line.slice(0, dash).split(' ');
  const right = line.slice(dash + 3).split(' ');
  if (left.length < 5 || right.length < 3) return undefined;
  return {
    root: unescapeMountPath(left[3]!),
    mountPoint: unescapeMountPath(left[4]!),
    fstype: right[0]!,
    superOptions: right[2]!.split(','),
  };
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Hard limits by OCI name; `Infinity` stands for "unlimited" so that Math.min caps work. */
export function parseHardLimits(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const row = LIMIT_ROWS.find(([title]) => line.startsWith(title + ' '));
    if (!row) continue;
    // Columns after the title: soft, hard, [units]. Titles contain spaces, so cut the title off first.
    const cols = line.slice(row[0].length).trim().split(/\s+/);
    const hard = cols[1];
    if (hard === undefined) continue;
    out[row[1]] = hard === 'unlimited' ? Number.POSITIVE_INFINITY : Number(hard);
  }
  return out;
}

async function readText(file: string): Promise<string> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/** The host's busybox-static: the embedded default image is made of it, and the per-container loops run on it. */
export const BUSYBOX_PATH = '/bin/busybox';

/** PATH lookup without spawning `which`: the first executable regular file wins. */
export async function lookPath(name: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const dirs = (env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':').filter(Boolean);
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      const st = await fsp.stat(candidate);
      if (!st.isFile()) continue;
      await fsp.access(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}
