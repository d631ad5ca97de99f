import { promises as fsp } from 'node:fs';
import { totalmem } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ContainerStats, TopResult } from '../types.js';
import { BadStateError, InvalidArgumentError } from '../errors.js';
import { run } from '../util/exec.js';
import type { ContainerDeps } from './ports.js';
import type { ContainerRecord } from './record.js';
import { cgroupsPathOf } from './spec.js';

/** What a running container is doing: its processes and its resource use. */
export class Observer {
  constructor(private readonly deps: ContainerDeps) {}

  /** docker top: the host's ps, filtered to the container's processes (docker's way too). */
  async top(rec: ContainerRecord, psArgs: string[] = []): Promise<TopResult> {
    if (rec.state !== 'running' && rec.state !== 'paused') throw new BadStateError(`container ${rec.name} is not running`, 'start it first');
    const pids = new Set((await this.deps.runtime.runc.ps(rec.id)).map(String));
    const { stdout } = await run('ps', psArgs.length ? psArgs : ['-ef'], { timeout: 10_000 });
    const [header = '', ...lines] = stdout.trimEnd().split('\n');
    const titles = header.trim().split(/\s+/);
    const pidCol = titles.indexOf('PID');
    if (pidCol < 0) throw new InvalidArgumentError('ps options', 'the ps output has no PID column', 'keep PID among the columns');
    const processes = lines
      .map((line) => splitPsLine(line, titles.length))
      .filter((cols) => pids.has(cols[pidCol] ?? ''));
    return { titles, processes };
  }

  /** One reading per container; CPU % from two samples 200 ms apart (docker computes it from its previous read). */
  async stats(recs: ContainerRecord[]): Promise<ContainerStats[]> {
    const sample = async () => Promise.all(recs.map(async (r) => {
      const s = await this.deps.runtime.cgroups.stats(cgroupsPathOf(r)).catch(() => undefined);
      const net = r.pid ? await readNetDev(r.pid) : { rx: 0, tx: 0 };
      return { r, s, net, t: process.hrtime.bigint(), system: await readSystemCpu() };
    }));
    const first = await sample();
    await sleep(200);
    const second = await sample();
    const host = this.deps.host;
    return second.map(({ r, s, net, t, system }, i) => {
      const prev = first[i]!;
      const wallNs = Number(t - prev.t);
      const cpuPercent = s && prev.s && wallNs > 0 ? ((s.cpuUsageNs - prev.s.cpuUsageNs) / wallNs) * 100 : 0;
      // v1 reports 'no limit' as a huge number; Docker shows the host's memory instead.
      const memoryLimit = s?.memoryLimit && s.memoryLimit < totalmem() ? s.memoryLimit : totalmem();
      return {
        id: r.id, name: r.name, cpuPercent: Math.max(0, Math.min(cpuPercent, host.cpus * 100)),
        memoryUsage: s?.memoryUsage ?? 0, memoryLimit, memoryPercent: s ? (s.memoryUsage / memoryLimit) * 100 : 0,
        netRx: net.rx, netTx: net.tx, blockRead: s?.blkioRead ?? 0, blockWrite: s?.blkioWrite ?? 0, pids: s?.pids ?? 0,
        ...(s && prev.s ? { cpu: { totalNs: s.cpuUsageNs, systemNs: system.ns, prevTotalNs: prev.s.cpuUsageNs, prevSystemNs: prev.system.ns, onlineCpus: system.cpus || host.cpus } } : {}),
      };
    });
  }
}

/** USER_HZ: /proc/stat counts in these ticks on every architecture Linux ships (it is not CONFIG_HZ). */
const CLOCK_TICKS = 100;

/**
 * The host's CPU time, all CPUs, in ns (the first line of /proc/stat, as Docker's system_cpu_usage), and
 * how many CPUs that line sums: the same count must scale it back, or the CLI's percentages skew.
 */
export async function readSystemCpu(): Promise<{ ns: number; cpus: number }> {
  const text = await fsp.readFile('/proc/stat', 'utf8').catch(() => '');
  return parseSystemCpu(text);
}

export function parseSystemCpu(text: string): { ns: number; cpus: number } {
  const lines = text.split('\n');
  const line = lines.find((l) => l.startsWith('cpu '));
  if (!line) return { ns: 0, cpus: 0 };
  // user nice system idle iowait irq softirq steal; guest time is already counted in user.
  const ticks = line.trim().split(/\s+/).slice(1, 9).reduce((sum, v) => sum + Number(v), 0);
  return { ns: (ticks * 1e9) / CLOCK_TICKS, cpus: lines.filter((l) => /^cpu\d+ /.test(l)).length };
}

function splitPsLine(line: string, columns: number): string[] {
  const parts = line.trim().split(/\s+/);
  return [...parts.slice(0, columns - 1), parts.slice(columns - 1).join(' ')];
}

/**
 * Bytes through the container's interfaces but loopback: /proc/PID/net/dev shows the counters of the
 * network namespace PID lives in, so no netns needs entering.
 */
export async function readNetDev(pid: number): Promise<{ rx: number; tx: number }> {
  const text = await fsp.readFile(`/proc/${pid}/net/dev`, 'utf8').catch(() => '');
  return parseNetDev(text);
}

export function parseNetDev(text: string): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (const line of text.split('\n').slice(2)) {
    const [name, data] = line.split(':');
    if (!data || name!.trim() === 'lo') continue;
    const cols = data.trim().split(/\s+/).map(Number);
    rx += cols[0] ?? 0;
    tx += cols[8] ?? 0;
  }
  return { rx, tx };
}

