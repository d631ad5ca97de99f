import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { BerthRoot } from './berth.js';
import { bigLayerFiles, generateImage, HOST_LAYER_DIRS, hostLayers } from './fixtures.js';
import { type Benchmark, measureInterleaved, Report, scratch, sh, type Side, throughputRow, timed } from './lib.js';

const LAYERS = 6;
const SMALL_FILES = 2000;
const LARGE_FILES = 4;
const LARGE_SIZE = 10 * 1024 * 1024;


/** `berth load -i` of a ~300 MB, 6-layer docker-archive (this machine's /usr files) against `tar -xf` of the same layer tars. */
export const importUnpack: Benchmark = {
  name: 'import-unpack',
  title: 'berth load -i (~300 MB, 6 layers) vs tar -xf of the same layer tars and podman load',
  defaultRuns: 3,
  async run(ctx) {
    const report = new Report(this.name, this.title);
    const work = await scratch('import');
    try {
      // Issue 20: the archive a user loads holds a distribution's files, not random ones; this machine's
      // /usr gives those. Generated layers stand in only where /usr lacks the folders.
      ctx.log(`${this.name}: making the image from this machine's /usr (${HOST_LAYER_DIRS.length} layers)`);
      const host = await hostLayers(path.join(work.dir, 'image', 'layers'));
      if (!host) ctx.log(`${this.name}: /usr has too little of ${HOST_LAYER_DIRS.flat().join(', ')}; generating random layers instead`);
      const image = await generateImage(path.join(work.dir, 'image'), 'localhost/bench-big:latest',
        host ?? Array.from({ length: LAYERS }, (_v, i) => bigLayerFiles(i, SMALL_FILES, LARGE_FILES, LARGE_SIZE)));
      const files = (await Promise.all(image.layers.map(async (l) => (await sh('tar', ['-tf', l.file], { timeout: 120_000 })).stdout.split('\n').filter(Boolean).length)))
        .reduce((a, b) => a + b, 0);
      report.note(`${image.layers.length} layers, ${(image.layerBytes / 1e6).toFixed(0)} MB of layer tars, ${files} entries, ${host ? 'tar -c of folders of this machine\'s /usr' : 'generated random files'}`);
      // Dirty pages of the previous run are written back before each run, not during the next one.
      const settle = async () => { await sh('sync', [], { timeout: 120_000 }); };

      const dest = path.join(work.dir, 'untar');
      let berth: BerthRoot | undefined;
      const podman = (await ctx.peers()).find((p) => p.name === 'podman');
      // Interleaved (tar, berth, podman, tar, ...): each side takes seconds of disk work, and a busy
      // minute of another user of the machine should hit every side alike.
      const sides: Side[] = [{
        label: 'tar -xf (sum of layers)', role: 'reference',
        setup: async () => {
          await rm(dest, { recursive: true, force: true });
          for (let i = 0; i < image.layers.length; i++) await mkdir(path.join(dest, String(i)), { recursive: true });
        },
        run: async () => {
          let total = 0;
          for (const [i, layer] of image.layers.entries()) {
            total += await timed(() => sh('tar', ['-xf', layer.file, '-C', path.join(dest, String(i))], { timeout: 300_000 }));
          }
          return total;
        },
        teardown: () => rm(dest, { recursive: true, force: true }),
      }, {
        label: 'berth load -i', role: 'berth',
        setup: async () => { berth = await BerthRoot.create('import'); },
        run: async () => { await berth!.cli(['load', '-i', image.archive], { timeout: 600_000 }); },
        teardown: async () => berth?.cleanup(),
      }];
      if (podman) {
        sides.push({
          label: 'podman load -i', role: 'peer',
          run: async () => { await podman.cli(['load', '-q', '-i', image.archive], { timeout: 600_000 }); },
          // The image and its layers go, so the next load stores every layer again.
          teardown: async () => { await podman.cli(['rmi', '-f', image.tag], { timeout: 300_000 }); },
        });
      }
      const [tarTime, loadTime, podmanTime] = await measureInterleaved(report, sides, { runs: ctx.runs, warmup: 1, setup: settle });

      throughputRow(report, tarTime!, 'tar -xf throughput', image.layerBytes);
      throughputRow(report, loadTime!, 'berth load throughput', image.layerBytes);
      if (podmanTime) throughputRow(report, podmanTime, 'podman load throughput', image.layerBytes);
      report.target('berth load >= 0.8x tar -x throughput',
        () => report.median('berth load throughput') / report.median('tar -xf throughput'), '>=', 0.8, 'x');
      report.target('berth load <= podman load of the same archive (time)',
        () => report.median('berth load -i') / report.peerMedian('podman load -i'), '<=', 1, 'x');
      report.note('berth load also reads the archive and checks digests; tar -x reads the layer tars directly');
      report.note('podman load stores into its overlay store (the peer\'s temp root); the image is removed (untimed) after each run');
    } finally {
      await work.remove();
    }
    return report;
  },
};
