import { readFile } from 'node:fs/promises';
import { BERTH_IMAGE, BerthRoot, findFiles, listProcesses } from './berth.js';
import { type Benchmark, containerIdFrom, errorText, type PeerCli, Report, type Role, type Row } from './lib.js';

const CONTAINERS = 5;

interface Monitor {
  pid: number;
  /** how it was found, for the report */
  via: string;
  comm: string;
}

async function alive(pid: number): Promise<string | undefined> {
  return readFile(`/proc/${pid}/comm`, 'utf8').then((c) => c.trim(), () => undefined);
}

/** kB from a `Name:   123 kB` line of a /proc file, in MB (MiB, as ps and MACHINE-NOTES count them). */
async function procField(file: string, field: string): Promise<number> {
  const text = await readFile(file, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  if (!m) throw new Error(`${file} has no ${field}`);
  return Number(m[1]) / 1024;
}

/**
 * The process that watches container `id`, found the most direct way that works: the monitor's pid
 * file, a process whose command line names the id (`pgrep -f 'conmon.*ID'`), or the parent of the
 * container's first process.
 */
async function findMonitor(id: string, pidFileDirs: readonly string[], initPid: () => Promise<number>): Promise<Monitor> {
  for (const dir of pidFileDirs) {
    for (const file of await findFiles(dir, 'conmon.pid', id.slice(0, 12))) {
      const pid = Number((await readFile(file, 'utf8')).trim());
      const comm = pid > 0 ? await alive(pid) : undefined;
      if (comm) return { pid, via: 'pid file', comm };
    }
  }
  for (const p of await listProcesses()) {
    if (/(^|\/)(conmon|containerd-shim[\w-]*)\s/.test(p.cmdline) && p.cmdline.includes(id)) {
      const comm = await alive(p.pid);
      if (comm) return { pid: p.pid, via: 'command line', comm };
    }
  }
  const child = await initPid();
  const status = await readFile(`/proc/${child}/status`, 'utf8');
  const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]);
  const comm = ppid > 0 ? await alive(ppid) : undefined;
  if (!comm) throw new Error(`no monitor found for container ${id}`);
  return { pid: ppid, via: 'parent of the container process', comm };
}

interface Side {
  label: string;
  role: Role;
  start(): Promise<string>;
  monitor(id: string): Promise<Monitor>;
  removeAll(ids: readonly string[]): Promise<unknown>;
  /** Node processes that stay while the containers idle (issue 20: none per container). */
  residentNode?(): Promise<number>;
}

/** Starts CONTAINERS idle containers per run and adds each monitor's RSS and PSS to two rows. */
async function measureSide(report: Report, side: Side, runs: number): Promise<void> {
  const rss = report.add({ label: `${side.label} monitor RSS`, role: side.role, unit: 'MB', samples: [] });
  const pss = report.add({ label: `${side.label} monitor PSS`, role: side.role, unit: 'MB', samples: [] });
  const resident = side.residentNode && report.add({ label: `${side.label} resident node processes`, role: side.role, unit: 'count', samples: [], vs: null });
  const found = new Set<string>();
  const fail = (row: Row, err: unknown) => { row.error = errorText(err); };
  for (let r = 0; r < runs; r++) {
    const ids: string[] = [];
    try {
      for (let i = 0; i < CONTAINERS; i++) ids.push(await side.start());
      if (resident) resident.samples.push(await side.residentNode!());
      for (const id of ids) {
        const mon = await side.monitor(id);
        found.add(`${mon.comm} (${mon.via})`);
        rss.samples.push(await procField(`/proc/${mon.pid}/status`, 'VmRSS'));
        pss.samples.push(await procField(`/proc/${mon.pid}/smaps_rollup`, 'Pss'));
      }
    } catch (err) {
      for (const row of [rss, pss, resident]) if (row) fail(row, err);
      return;
    } finally {
      if (ids.length) await side.removeAll(ids).catch(() => undefined);
    }
  }
  if (found.size) report.note(`${side.label} monitor: ${[...found].join(', ')}`);
}

/** A container's loop (runtime/loops.ts), named by its tag file `<exits>/<id>.<suffix>`, and its children (the `sleep`). */
async function loopProcesses(runroot: string, id: string, suffix: string): Promise<number[]> {
  const tag = (await readFile(`${runroot}/exits/${id}.${suffix}`, 'utf8')).trim();
  const loop = Number(tag.split(' ')[0]);
  if (!(loop > 0) || !(await alive(loop))) throw new Error(`no ${suffix} loop runs for ${id}`);
  const children = (await readFile(`/proc/${loop}/task/${loop}/children`, 'utf8').catch(() => '')).trim().split(/\s+/).filter(Boolean).map(Number);
  return [loop, ...children];
}

/** The per-container loops, and what starts one: each adds the loop and its `sleep` beyond the monitor. */
const LOOPS = [
  // Between checks: a check itself is a short-lived `berth healthcheck tick`, not resident.
  { label: 'berth health timer', suffix: 'health', flags: ['--health-cmd', 'true', '--health-interval', '1h'] },
  { label: 'berth log rotator', suffix: 'logs', flags: ['--log-opt', 'max-size=1m', '--log-opt', 'max-file=3'] },
] as const;

async function measureLoop(report: Report, berth: BerthRoot, runs: number, loop: (typeof LOOPS)[number]): Promise<void> {
  const rss = report.add({ label: `${loop.label} RSS`, role: 'berth', unit: 'MB', samples: [] });
  const pss = report.add({ label: `${loop.label} PSS`, role: 'berth', unit: 'MB', samples: [] });
  for (let r = 0; r < runs; r++) {
    const ids: string[] = [];
    try {
      for (let i = 0; i < CONTAINERS; i++) {
        ids.push(await berth.runDetached(['--network', 'none', ...loop.flags, BERTH_IMAGE, 'sleep', '1000']));
      }
      for (const id of ids) {
        let rssMb = 0;
        let pssMb = 0;
        for (const pid of await loopProcesses(berth.runroot, id, loop.suffix)) {
          rssMb += await procField(`/proc/${pid}/status`, 'VmRSS');
          pssMb += await procField(`/proc/${pid}/smaps_rollup`, 'Pss');
        }
        rss.samples.push(rssMb);
        pss.samples.push(pssMb);
      }
    } catch (err) {
      rss.error = errorText(err);
      pss.error = errorText(err);
      return;
    } finally {
      if (ids.length) await berth.cli(['rm', '-f', ...ids], { timeout: 120_000 }).catch(() => undefined);
    }
  }
}

function peerSide(peer: PeerCli): Side {
  return {
    label: peer.name,
    role: 'peer',
    start: async () => containerIdFrom((await peer.cli(['run', '-d', '--network', 'none', peer.image, 'sleep', '1000'])).stdout),
    monitor: (id) => findMonitor(id, [], async () => Number((await peer.cli(['inspect', '--format', '{{.State.Pid}}', id])).stdout.trim())),
    removeAll: (ids) => peer.cli([...peer.forceRemove, ...ids], { timeout: 120_000 }),
  };
}

/** RSS and PSS of the per-container monitor of idle detached containers. */
export const monitorMemory: Benchmark = {
  name: 'monitor-memory',
  title: `memory of the monitor process of ${CONTAINERS} idle detached containers, and of a healthcheck's timer and a log rotator (RSS, PSS)`,
  defaultRuns: 1,
  async run(ctx) {
    const report = new Report(this.name, this.title);
    const berth = await BerthRoot.create('monitor');
    try {
      await berth.ensureImage().catch((err) => ctx.log(`${this.name}: image default failed: ${errorText(err)}`));
      await measureSide(report, {
        label: 'berth',
        role: 'berth',
        start: () => berth.runDetached(['--network', 'none', BERTH_IMAGE, 'sleep', '1000']),
        monitor: (id) => findMonitor(id, [berth.root, berth.runroot], async () => {
          const state = (await berth.inspect(id)).State as { Pid?: number } | undefined;
          if (!state?.Pid) throw new Error(`berth inspect ${id} shows no State.Pid`);
          return state.Pid;
        }),
        removeAll: (ids) => berth.cli(['rm', '-f', ...ids], { timeout: 120_000 }),
        residentNode: async () => (await listProcesses()).filter((p) => p.pid !== process.pid
          && /(^|\/)node(\s|$)/.test(p.cmdline.split(' ')[0] + ' ')
          && [berth.root, berth.runroot].some((d) => p.cmdline.includes(d))).length,
      }, ctx.runs);
      for (const loop of LOOPS) await measureLoop(report, berth, ctx.runs, loop);
      for (const peer of await ctx.peers()) await measureSide(report, peerSide(peer), ctx.runs);
      report.quote('podman conmon RSS', 'MB', 2.07);
      report.quote('podman conmon PSS', 'MB', 0.56);
      report.quote('docker containerd-shim RSS', 'MB', 12.96);
      report.quote('docker containerd-shim PSS', 'MB', 4.38);
      // Both engines' monitor is conmon: the target guards against Berth's own changes making it heavier.
      report.target('berth monitor RSS <= podman\'s (medians)', () => report.median('berth monitor RSS') / report.peerMedian('podman monitor RSS'), '<=', 1, 'x');
      report.target('berth monitor PSS <= podman\'s (medians)', () => report.median('berth monitor PSS') / report.peerMedian('podman monitor PSS'), '<=', 1, 'x');
      report.target('no resident node process per idle container', () => report.figure('berth resident node processes', 'max'), '<=', 0, 'count');
      // The loops run on busybox (runtime/loops.ts): one process each between turns, no `sleep`. RSS
      // counts the static binary's pages once per process; PSS shares them: the machine's real cost.
      for (const loop of LOOPS) {
        report.target(`every ${loop.label} RSS <= 2 MB (beyond the monitor)`, () => report.figure(`${loop.label} RSS`, 'max'), '<=', 2, 'MB');
        report.target(`every ${loop.label} PSS <= 2 MB`, () => report.figure(`${loop.label} PSS`, 'max'), '<=', 2, 'MB');
      }
      report.note('health timer (healthchecked containers), log rotator (max-file > 1): one busybox shell loop per container that has one, between its turns');
      report.note('MB here is MiB (kB / 1024), as /proc and MACHINE-NOTES count');
    } finally {
      await berth.cleanup();
    }
    return report;
  },
};
