import { BERTH_IMAGE, BerthRoot } from './berth.js';
import { type Benchmark, containerIdFrom, errorText, now, Report, type Role } from './lib.js';

const COUNT = 50;

interface Engine {
  label: string;
  role: Role;
  /** `run -d IMAGE sleep 1000`: the container id */
  start(): Promise<string>;
  removeAll(ids: readonly string[]): Promise<unknown>;
}

/**
 * One round per run: start COUNT containers one after another, then remove them all with one `rm -f`.
 * Rows: the whole round (s), the start phase (s), the removal (s), and each `run -d` (ms).
 */
async function measureRounds(report: Report, engine: Engine, runs: number): Promise<void> {
  const rows = {
    total: report.add({ label: `${engine.label}: ${COUNT} run -d + rm -f`, role: engine.role, unit: 's', samples: [] }),
    starts: report.add({ label: `${engine.label}: ${COUNT} run -d`, role: engine.role, unit: 's', samples: [] }),
    remove: report.add({ label: `${engine.label}: rm -f all`, role: engine.role, unit: 's', samples: [] }),
    each: report.add({ label: `${engine.label}: each run -d`, role: engine.role, unit: 'ms', samples: [] }),
  };
  const fail = (err: unknown) => { for (const row of Object.values(rows)) row.error = errorText(err); };
  for (let round = 0; round < runs; round++) {
    const ids: string[] = [];
    try {
      const t0 = now();
      for (let i = 0; i < COUNT; i++) {
        const t = now();
        ids.push(await engine.start());
        rows.each.samples.push(now() - t);
      }
      const t1 = now();
      await engine.removeAll(ids);
      ids.length = 0;
      const t2 = now();
      rows.starts.samples.push((t1 - t0) / 1000);
      rows.remove.samples.push((t2 - t1) / 1000);
      rows.total.samples.push((t2 - t0) / 1000);
    } catch (err) {
      fail(err);
      return;
    } finally {
      if (ids.length) await engine.removeAll(ids).catch(() => undefined);
    }
  }
}

/** 50 detached `sleep` containers started one after another, then all removed: the whole round's time. */
export const run50Detached: Benchmark = {
  name: 'run-50-detached',
  title: `${COUNT} x run -d busybox sleep 1000, then rm -f all (default network)`,
  defaultRuns: 1,
  async run(ctx) {
    const report = new Report(this.name, this.title);
    const berth = await BerthRoot.create('run50');
    try {
      await berth.ensureImage().catch((err) => ctx.log(`${this.name}: image default failed: ${errorText(err)}`));
      await measureRounds(report, {
        label: 'berth', role: 'berth',
        start: () => berth.runDetached([BERTH_IMAGE, 'sleep', '1000']),
        removeAll: (ids) => berth.cli(['rm', '-f', ...ids], { timeout: 300_000 }),
      }, ctx.runs);
      for (const peer of await ctx.peers()) {
        await measureRounds(report, {
          label: peer.name, role: 'peer',
          start: async () => containerIdFrom((await peer.cli(['run', '-d', peer.image, 'sleep', '1000'])).stdout),
          removeAll: (ids) => peer.cli([...peer.forceRemove, ...ids], { timeout: 300_000 }),
        }, ctx.runs);
      }
      report.quote(`podman: ${COUNT} run -d + rm -f`, 's', 12.6);
      report.quote(`docker: ${COUNT} run -d + rm -f`, 's', 15.6);
      report.target(`${COUNT} run -d + rm -f <= 0.8x podman's total`,
        () => report.median(`berth: ${COUNT} run -d + rm -f`) / report.peerMedian(`podman: ${COUNT} run -d + rm -f`), '<=', 0.8, 'x');
      report.note('each round starts containers one after another, then removes all with one rm -f (podman: rm -f -t 0)');
      report.note('the target uses podman as measured in this run; [quoted] rows are MACHINE-NOTES context');
    } finally {
      await berth.cleanup();
    }
    return report;
  },
};
