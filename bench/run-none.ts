import path from 'node:path';
import type { EngineApi } from '../src/api/types.js';
import { BERTH_IMAGE, BerthRoot, loadEngine } from './berth.js';
import { buildEquivalentBundle, buildRuncBundle, busyboxFixture } from './fixtures.js';
import { type Benchmark, measure, Report, scratch, sh } from './lib.js';

/** `berth run --rm --network none busybox true`: CLI and API against raw `runc run` of the same rootfs. */
export const runNone: Benchmark = {
  name: 'run-none',
  title: 'run --rm --network none busybox true: berth CLI / API vs raw runc run (and peers)',
  defaultRuns: 10,
  async run(ctx) {
    const report = new Report(this.name, this.title);
    const opts = { runs: ctx.runs, warmup: 2 };
    const work = await scratch('runc');
    const berth = await BerthRoot.create('run-none');
    try {
      const { rootfs } = await busyboxFixture();
      const state = path.join(work.dir, 'state');
      // The reference: runc running the config Berth would write for this container (issue: "an equivalent bundle").
      const equivalent = await buildEquivalentBundle(path.join(work.dir, 'equivalent'), rootfs, ['true']);
      await measure(report, 'raw runc run', 'reference', opts,
        async (i) => { await sh('runc', ['--root', state, 'run', '--bundle', equivalent, `berth-bench-${process.pid}-e${i}`]); });
      const minimal = await buildRuncBundle(path.join(work.dir, 'bundle'), rootfs, ['true']);
      await measure(report, 'raw runc run, runc spec bundle', 'reference', opts,
        async (i) => { await sh('runc', ['--root', state, 'run', '--bundle', minimal, `berth-bench-${process.pid}-${i}`]); });

      await measure(report, 'berth run (CLI)', 'berth', { ...opts, setup: async (i) => { if (i === 0) await berth.ensureImage(); } },
        async () => { await berth.cli(['run', '--rm', '--network', 'none', BERTH_IMAGE, 'true']); });

      let engine: EngineApi | undefined;
      await measure(report, 'engine.run() (API)', 'berth', {
        ...opts,
        setup: async () => { engine ??= new (await loadEngine())({ root: berth.root }); },
      }, async () => {
        const { exitCode } = await engine!.run({ image: BERTH_IMAGE, command: ['true'], autoRemove: true, network: { networks: ['none'] } });
        if (exitCode !== 0) throw new Error(`engine.run() exited with ${exitCode}`);
      });

      for (const peer of await ctx.peers()) {
        await measure(report, `${peer.name} run`, 'peer', opts, async () => { await peer.cli(['run', '--rm', '--network', 'none', peer.image, 'true']); });
      }
      report.quote('podman run', 'ms', 211);
      report.quote('docker run', 'ms', 288);

      const runc = () => report.median('raw runc run');
      const cli = () => report.median('berth run (CLI)');
      report.target('CLI within raw runc + 120 ms', () => cli() - runc(), '<=', 120, 'ms');
      report.target('API <= 1.3x raw runc', () => report.median('engine.run() (API)') / runc(), '<=', 1.3, 'x');
      report.target('CLI faster than podman', () => cli() / report.peerMedian('podman run'), '<=', 1, 'x');
      report.target('CLI faster than docker', () => cli() / report.peerMedian('docker run'), '<=', 1, 'x');
      report.note('raw runc run: Berth\'s own config for the container (seccomp, caps, masked paths, cgroup); the runc spec row has none of that');
      report.note('the API side loads the engine once, untimed; the CLI pays node start-up every run');
      report.note('peer targets use the peer measured in this run with --peers, else the MACHINE-NOTES figure');
    } finally {
      await berth.cleanup();
      await work.remove();
      await removeBenchCgroups();
    }
    return report;
  },
};

/** runc removes each run's cgroup; the parent the equivalent bundle named stays behind in every hierarchy. */
async function removeBenchCgroups(): Promise<void> {
  const { readdir, rmdir } = await import('node:fs/promises');
  for (const ctrl of await readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
    const parent = path.join('/sys/fs/cgroup', ctrl, 'berth-bench');
    await rmdir(path.join(parent, String(process.pid))).catch(() => {});
    await rmdir(parent).catch(() => {});
  }
}
