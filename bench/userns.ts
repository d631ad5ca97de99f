/**
 * Issue 18's benchmark: what a user namespace costs.
 *
 * - `run --rm --network none busybox true` as root, with `--userns auto` against without, interleaved;
 * - the same as root with the fuse-overlayfs storage driver against the kernel's overlay (rootless
 *   Berth's fallback; measured as root since this host's /dev/fuse is root's alone);
 * - the same as a non-root user (rootless Berth) against root running the same command through the same
 *   `runuser` wrapper, so both pay the same start-up;
 * - podman beside each, when podman is installed (not with --no-peers): as root with `--userns auto`
 *   (podman takes those ranges from the `containers` entry of /etc/subuid) and rootless as the same user;
 * - the first start of a container with a mapping no container had before, on a 300 MB image: Berth
 *   makes a copy of the image's layers owned by the mapped ids, against a start with a mapping already
 *   copied, a start without a user namespace, and `tar -x` of the same layers (what writing that much
 *   costs on this disk).
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { BERTH_BIN, BERTH_IMAGE, BerthRoot } from './berth.js';
import { bigLayerFiles, busyboxFixture, generateImage, type LayerTar, writeDockerArchive } from './fixtures.js';
import { PODMAN_CONF } from './peers.js';
import { type Benchmark, errorText, measure, measureInterleaved, Report, removeTree, type Row, scratch, sh } from './lib.js';
import { type BenchUser, ensureSubIds, makeUser } from './users.js';

/** Three 100 MB layers of small and large files, over the busybox rootfs. */
const BIG_LAYERS = 3;
const MAP_SIZE = 65536;

export const userns: Benchmark = {
  name: 'userns',
  title: 'user namespaces: run --rm true with --userns auto vs without, rootless vs rootful (podman beside); first start of a new mapping on a 300 MB image',
  defaultRuns: 8,
  async run(ctx) {
    const report = new Report(this.name, this.title);
    const opts = { runs: ctx.runs, warmup: 1 };
    const berth = await BerthRoot.create('userns');
    const work = await scratch('userns');
    let user: BenchUser | undefined;
    try {
      const berthRange = await ensureSubIds('berth');
      await berth.ensureImage();
      const run = (extra: readonly string[]) => berth.cli(['run', '--rm', '--network', 'none', ...extra, BERTH_IMAGE, 'true']);

      ctx.log('userns: root, --userns auto against none');
      pair(await measureInterleaved(report, [
        { label: 'berth run (no userns)', role: 'reference', run: () => run([]).then(() => undefined) },
        { label: 'berth run --userns auto', role: 'berth', run: () => run(['--userns', 'auto']).then(() => undefined) },
      ], opts));
      // A mapping whose shifted copy exists (a created container holds it): the namespace's cost alone.
      const held = ['--uidmap', `0:${berthRange.start + MAP_SIZE * 4096}:${MAP_SIZE}`];
      const heldBy = (await berth.cli(['create', '--network', 'none', ...held, BERTH_IMAGE, 'true'])).stdout.trim();
      try {
        const row = await measure(report, 'berth run --uidmap (copy already made)', 'berth', opts, async () => { await run(held); });
        row.vs = 'berth run (no userns)';
      } finally {
        await berth.cli(['rm', heldBy]).catch(() => undefined);
      }
      // The rootless storage fallback, measured as root (this host's /dev/fuse is root's alone): the FUSE
      // daemon's start and the unmount's wait for it to exit, against the kernel's overlay.
      ctx.log('userns: fuse-overlayfs against native overlay');
      pair(await measureInterleaved(report, [
        { label: 'berth run (native overlay)', role: 'reference', run: () => run([]).then(() => undefined) },
        { label: 'berth run (fuse-overlayfs)', role: 'berth', run: () => berth.cli(['--storage-driver', 'fuse-overlayfs', 'run', '--rm', '--network', 'none', BERTH_IMAGE, 'true']).then(() => undefined) },
      ], opts));
      const podman = (await ctx.peers()).find((p) => p.name === 'podman');
      if (podman) {
        await ensureSubIds('containers').catch(() => undefined);
        pair(await measureInterleaved(report, [
          { label: 'podman run (no userns)', role: 'peer', run: () => podman.cli(['run', '--rm', '--network', 'none', podman.image, 'true']).then(() => undefined) },
          { label: 'podman run --userns auto', role: 'peer', run: () => podman.cli(['run', '--rm', '--network', 'none', '--userns', 'auto', podman.image, 'true']).then(() => undefined) },
        ], opts));
      }

      ctx.log('userns: rootless against rootful');
      user = await makeUser('ul');
      const u = user;
      const rootRun = () => sh('runuser', ['-u', 'root', '--', process.execPath, BERTH_BIN, '--root', berth.root, 'run', '--rm', '--network', 'none', BERTH_IMAGE, 'true'], { timeout: 60_000 });
      const userRun = () => u.run(process.execPath, [BERTH_BIN, 'run', '--rm', '--network', 'none', BERTH_IMAGE, 'true'], { timeout: 60_000 });
      try {
        await u.run(process.execPath, [BERTH_BIN, 'image', 'default'], { timeout: 180_000 });
        pair(await measureInterleaved(report, [
          { label: 'berth run as root (runuser)', role: 'reference', run: () => rootRun().then(() => undefined) },
          { label: 'berth run rootless', role: 'berth', run: () => userRun().then(() => undefined) },
        ], opts));
      } catch (err) {
        report.add({ label: 'berth run rootless', role: 'berth', unit: 'ms', samples: [], error: errorText(err) });
      }
      if (podman) {
        try {
          const { tarball } = await busyboxFixture();
          const conf = path.join(u.home, '.config', 'containers');
          await u.run('mkdir', ['-p', conf]);
          await u.run('sh', ['-c', `cat > ${conf}/containers.conf`], { input: PODMAN_CONF });
          // The rootfs tarball lives in the bench's private scratch: the user gets a copy in its home.
          await sh('cp', [tarball, path.join(u.home, 'rootfs.tar')]);
          await sh('chown', [String(u.uid), path.join(u.home, 'rootfs.tar')]);
          await u.run('podman', ['import', path.join(u.home, 'rootfs.tar'), podman.image], { timeout: 120_000 });
          const row = await measure(report, 'podman run rootless', 'peer', opts, async () => {
            await u.run('podman', ['run', '--rm', '--network', 'none', podman.image, 'true'], { timeout: 60_000 });
          });
          row.vs = 'berth run rootless';
        } catch (err) {
          report.add({ label: 'podman run rootless', role: 'peer', unit: 'ms', samples: [], error: errorText(err) });
        }
      }
      await u.run(process.execPath, [BERTH_BIN, 'system', 'reset', '-f'], { timeout: 120_000 }).catch(() => undefined);
      await u.remove();
      user = undefined;

      ctx.log('userns: first start of a new mapping on a 300 MB image');
      const image = await bigImage(work.dir);
      await berth.cli(['load', '-i', image.archive], { timeout: 300_000 });
      const bigRun = (extra: readonly string[]) => berth.cli(['run', '--rm', '--network', 'none', ...extra, image.tag, 'true'], { timeout: 300_000 });
      let fresh = 1;
      // Each run a host range no container had: the layers are copied for it.
      await measure(report, 'first start, new --uidmap (300 MB)', 'berth', opts, async () => {
        const host = berthRange.start + MAP_SIZE * fresh++;
        await bigRun(['--uidmap', `0:${host}:${MAP_SIZE}`]);
      });
      // A copy lives as long as a container uses its mapping: one kept running holds it for the row's runs.
      const kept = `0:${berthRange.start}:${MAP_SIZE}`;
      let holder: string | undefined;
      try {
        holder = await berth.runDetached(['--network', 'none', '--uidmap', kept, image.tag, 'sleep', '1d'], { timeout: 300_000 });
      } catch (err) {
        report.add({ label: 'start, mapping already copied', role: 'berth', unit: 'ms', samples: [], error: errorText(err) });
      }
      if (holder) {
        await measure(report, 'start, mapping already copied', 'berth', opts, async () => { await bigRun(['--uidmap', kept]); });
        await berth.cli(['rm', '-f', holder]).catch(() => undefined);
      }
      await measure(report, 'start without userns (300 MB)', 'reference', opts, async () => { await bigRun([]); });
      for (const r of report.rows.slice(-3)) r.vs = 'start without userns (300 MB)';
      const extractTo = path.join(work.dir, 'x');
      await measure(report, 'tar -x of the same layers', 'reference', {
        ...opts,
        setup: async () => { await removeTree(extractTo); await mkdir(extractTo, { recursive: true }); },
      }, async () => {
        for (const l of image.layers) await sh('tar', ['-x', '-f', l.file, '-C', extractTo], { timeout: 300_000 });
      });
      report.note(`image: busybox + ${BIG_LAYERS} layers, ${(image.layerBytes / 1e6).toFixed(0)} MB of layer tars`);
      report.note('rootless and its reference both run through runuser; podman rootless imports the same rootfs into that user\'s store');
      report.note('no targets: the issue asks for the costs, measured beside podman');
    } finally {
      if (user) await user.remove();
      await berth.cleanup();
      await work.remove();
    }
    return report;
  },
};

/** The second row's ratio is taken against the first (each pair has its own reference). */
function pair(rows: readonly Row[]): void {
  if (rows[0] && rows[1]) rows[1].vs = rows[0].label;
}

/** busybox's rootfs as the first layer (so `true` runs), then the big layers. */
async function bigImage(dir: string): Promise<{ archive: string; tag: string; layers: LayerTar[]; layerBytes: number }> {
  const { tarball } = await busyboxFixture();
  const base: LayerTar = { file: tarball, diffId: `sha256:${createHash('sha256').update(await readFile(tarball)).digest('hex')}`, bytes: (await stat(tarball)).size };
  const big = await generateImage(path.join(dir, 'big'), 'localhost/bench-userns:latest',
    Array.from({ length: BIG_LAYERS }, (_v, i) => bigLayerFiles(i, 2_000, 4, 22_000_000)));
  const layers = [base, ...big.layers];
  const archive = path.join(dir, 'userns-image.tar');
  await writeDockerArchive(archive, big.tag, layers);
  return { archive, tag: big.tag, layers, layerBytes: layers.reduce((n, l) => n + l.bytes, 0) };
}
