import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { BerthRoot, BERTH_IMAGE } from './berth.js';
import { bigLayerFiles, writeLayerTar } from './fixtures.js';
import { type Benchmark, measureInterleaved, Report, type Row, scratch, sh } from './lib.js';

const FILES = 5000;
const TAG = 'bench-copyup:latest';

const settle = async () => { await sh('sync', [], { timeout: 120_000 }); };

/**
 * An image whose `VOLUME /data` holds 5,000 files of 1-8 KB (50 folders of 100, random content), made the
 * way a user would: files copied into a container, then `commit -c 'VOLUME /data'`. Returns its bytes.
 */
async function buildImage(berth: BerthRoot, work: string): Promise<number> {
  const files = bigLayerFiles(0, FILES, 0, 0);
  const tar = await writeLayerTar(path.join(work, 'tree.tar'), files);
  const src = path.join(work, 'src');
  await mkdir(src, { recursive: true });
  await sh('tar', ['-xf', tar.file, '-C', src], { timeout: 120_000 });
  await rm(tar.file);
  await berth.ensureImage();
  const id = await berth.runDetached(['--network', 'none', BERTH_IMAGE, 'sleep', '3600']);
  await berth.cli(['cp', path.join(src, 'data'), `${id}:/data`], { timeout: 300_000 });
  await berth.cli(['commit', '-c', 'VOLUME /data', id, TAG], { timeout: 300_000 });
  await berth.cli(['rm', '-f', id]);
  await rm(src, { recursive: true, force: true });
  return files.reduce((n, f) => n + f.size, 0);
}

/**
 * Copy-up of an image folder into a new empty volume (src/volume/copyup.ts), as the time it adds before the
 * container's first instruction: `run --rm -v NEWVOL:/data IMAGE true` minus the same run with `:nocopy`,
 * against `cp -a` of the same tree (the image mounted, the copy landing on the volumes' file system).
 */
export const copyUp: Benchmark = {
  name: 'copy-up',
  title: 'copy-up of a 5,000-file VOLUME into a new volume (run minus run :nocopy) vs cp -a of the same tree',
  defaultRuns: 5,
  async run(ctx) {
    const report = new Report(this.name, this.title);
    const work = await scratch('copyup');
    const berth = await BerthRoot.create('copyup');
    try {
      ctx.log(`${this.name}: building an image with ${FILES} files under VOLUME /data`);
      const bytes = await buildImage(berth, work.dir);
      report.note(`${FILES} files, ${(bytes / 1e6).toFixed(1)} MB, in ${FILES / 100} folders`);

      const mounted = (await berth.cli(['image', 'mount', TAG])).stdout.trim();
      const dest = path.join(berth.root, 'cp-a');
      let vol = '';
      let n = 0;
      // A fresh named volume per run, created untimed on both run sides: only the copy differs.
      const newVolume = async () => { vol = `bench-copyup-${n++}`; await berth.cli(['volume', 'create', vol]); };
      const dropVolume = async () => { await berth.cli(['volume', 'rm', '-f', vol]); };
      const runWith = (mode: string) => async () => {
        await berth.cli(['run', '--rm', '--network', 'none', '-v', `${vol}:/data${mode}`, TAG, 'true'], { timeout: 120_000 });
      };
      const [ref, nocopy, filled] = await measureInterleaved(report, [
        // The very command copyTree runs, from an overlay view of the image's /data, onto the volumes' file system.
        {
          label: "cp -a of the image's /data", role: 'reference',
          setup: async () => { await rm(dest, { recursive: true, force: true }); await mkdir(dest); },
          teardown: () => rm(dest, { recursive: true, force: true }),
          run: async () => { await sh('cp', ['-a', '--no-dereference', '--', `${path.join(mounted, 'data')}/.`, `${dest}/`], { timeout: 120_000 }); },
        },
        { label: 'run --rm -v NEWVOL:/data:nocopy IMAGE true', role: 'info', setup: newVolume, teardown: dropVolume, run: runWith(':nocopy') },
        { label: 'run --rm -v NEWVOL:/data IMAGE true', role: 'info', setup: newVolume, teardown: dropVolume, run: runWith('') },
      ], { runs: ctx.runs, warmup: 1, setup: settle }) as [Row, Row, Row];
      await berth.cli(['image', 'unmount', TAG]);

      // Pairwise: each copy-up run minus the :nocopy run just before it.
      const error = ref.error ?? nocopy.error ?? filled.error;
      const cost = 'copy-up cost (run minus run :nocopy, pairwise)';
      report.add({ label: cost, role: 'berth', unit: 'ms', samples: error ? [] : filled.samples.map((ms, i) => ms - (nocopy.samples[i] as number)), ...(error ? { error } : {}) });
      // Copy-up IS `cp -a` of this tree (copyTree), so the reference is its floor; the 0.5x on top is
      // Berth's bookkeeping around it (the source resolved inside the rootfs, the emptiness checks, the
      // copy made aside and renamed in, the volume's owner and mode) and the noise of a difference of two
      // CLI runs.
      report.target('copy-up cost <= 1.5x cp -a of the same tree', () => report.median(cost) / report.median(ref.label), '<=', 1.5, 'x');
      report.note('both run sides create their volume untimed; the volume is filled at create, so start finds it full');
    } finally {
      await berth.cleanup();
      await work.remove();
    }
    return report;
  },
};
