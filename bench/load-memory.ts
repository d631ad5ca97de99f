import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { BERTH_BIN, BerthRoot } from './berth.js';
import { bigLayerFiles, generateImage } from './fixtures.js';
import { writeHostileArchive } from './hostile.js';
import { type Benchmark, measure, peakRss, Report, scratch } from './lib.js';

/** The bound README states for `berth load`, whatever the archive holds. */
export const LOAD_RSS_BOUND_MB = 160;
const LARGE_FILES = 10;
const LARGE_SIZE = 100 * 1024 * 1024;
const HOSTILE_SIZE = 1024 * 1024 * 1024;

/**
 * Memory of `berth load -i` of a 1 GB one-layer docker-archive, against `tar -xf` of the same file in
 * the same run; then of hostile archives that expand to 1 GB where a reader must not keep the bytes.
 */
export const loadMemory: Benchmark = {
  name: 'load-memory',
  title: `peak RSS of berth load -i: a 1 GB layer vs tar -xf of the same file; 1 GB hostile layers (bound ${LOAD_RSS_BOUND_MB} MB)`,
  defaultRuns: 1,
  async run(ctx) {
    const report = new Report(this.name, this.title);
    const work = await scratch('load-memory');
    try {
      ctx.log(`${this.name}: generating a 1 GB layer`);
      const image = await generateImage(path.join(work.dir, 'image'), 'localhost/bench-1g:latest', [bigLayerFiles(0, 2000, LARGE_FILES, LARGE_SIZE)]);
      report.note(`one layer of ${(image.layerBytes / 1e6).toFixed(0)} MB (2000 small files, ${LARGE_FILES} × ${LARGE_SIZE >> 20} MiB), random content`);
      const dest = path.join(work.dir, 'untar');
      await measure(report, 'tar -xf (peak RSS)', 'reference', {
        runs: ctx.runs, unit: 'MB',
        setup: () => mkdir(dest, { recursive: true }).then(() => {}),
        teardown: () => rm(dest, { recursive: true, force: true }),
      }, () => peakRss('tar', ['-xf', image.archive, '-C', dest]));

      const loadRow = async (label: string, archive: string) => {
        let berth: BerthRoot | undefined;
        return measure(report, label, 'berth', {
          runs: ctx.runs, unit: 'MB',
          setup: async () => { berth = await BerthRoot.create('load-memory'); },
          teardown: async () => berth?.cleanup(),
        }, () => peakRss(process.execPath, [BERTH_BIN, '--root', berth!.root, 'load', '-i', archive]));
      };
      await loadRow('berth load -i (peak RSS)', image.archive);
      await rm(path.join(work.dir, 'image'), { recursive: true, force: true });

      const hostile = [
        ['berth load -i, 1 GB after the end-of-archive marker (peak RSS)', 'trailer'],
        ['berth load -i, 1 GB whiteout body (peak RSS)', 'whiteout-body'],
      ] as const;
      for (const [label, kind] of hostile) {
        const file = path.join(work.dir, `${kind}.tar.gz`);
        await writeHostileArchive(file, kind, HOSTILE_SIZE, { tag: `localhost/bench-${kind}:1`, fill: 0x78 });
        await loadRow(label, file);
        await rm(file, { force: true });
      }
      for (const row of report.rows.filter((r) => r.role === 'berth')) {
        report.target(`${row.label.replace(' (peak RSS)', '')} <= ${LOAD_RSS_BOUND_MB} MB`, () => report.median(row.label), '<=', LOAD_RSS_BOUND_MB, 'MB');
      }
      report.note('VmHWM polled every 10 ms; tar -x reads the same archive file berth loads');
    } finally {
      await work.remove();
    }
    return report;
  },
};
