import { access, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { BerthRoot } from './berth.js';
import { generateImage } from './fixtures.js';
import { type Benchmark, measure, Report, scratch, sh } from './lib.js';

const DEPTH = 60;
const TAG = 'localhost/bench-deep:latest';

/** `berth image mount` of a 60-layer image, against a raw overlay mount of the same 60 unpacked layers. */
export const mountDeep: Benchmark = {
  name: 'mount-deep',
  title: `berth image mount of a ${DEPTH}-layer image vs mount -t overlay of the same lower dirs`,
  defaultRuns: 10,
  async run(ctx) {
    const report = new Report(this.name, this.title);
    const work = await scratch('mount');
    try {
      const image = await generateImage(path.join(work.dir, 'image'), TAG,
        Array.from({ length: DEPTH }, (_v, i) => [{ name: `layers/l${i}`, size: 64 }]));

      // Reference: the kernel's share of the work, one mount(8) call over the same layers.
      const lowers: string[] = [];
      for (const [i, layer] of image.layers.entries()) {
        const dir = path.join(work.dir, 'l', String(i));
        await mkdir(dir, { recursive: true });
        await sh('tar', ['-xf', layer.file, '-C', dir]);
        lowers.unshift(dir); // overlay lists the top layer first
      }
      const target = path.join(work.dir, 'merged');
      await mkdir(target);
      await measure(report, 'mount -t overlay (60 lowers)', 'reference', {
        runs: ctx.runs, warmup: 1,
        teardown: async () => { await sh('umount', [target], { alreadyGone: () => true }).catch(() => undefined); },
      }, async () => { await sh('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lowers.join(':')}`, target]); });

      const berth = await BerthRoot.create('mount');
      try {
        let mounted = '';
        await measure(report, 'berth image mount', 'berth', {
          runs: ctx.runs, warmup: 1,
          setup: async (i) => { if (i === 0) await berth.cli(['load', '-i', image.archive], { timeout: 300_000 }); },
          teardown: async () => {
            if (!mounted) return;
            const probe = path.join(mounted, `layers/l${DEPTH - 1}`);
            mounted = '';
            const complete = await access(probe).then(() => true, () => false);
            await berth.cli(['image', 'unmount', TAG]);
            if (!complete) throw new Error(`the mount lacks the top layer's file (${probe})`);
          },
        }, async () => { mounted = (await berth.cli(['image', 'mount', TAG])).stdout.trim(); });
      } finally {
        await berth.cleanup();
      }
      report.note('no target: tracked for regressions; the gap to the raw mount is what Berth adds (CLI start, store, locks)');
    } finally {
      await work.remove();
    }
    return report;
  },
};
