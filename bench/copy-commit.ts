import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { BerthRoot, BERTH_IMAGE } from './berth.js';
import { bigLayerFiles, writeLayerTar } from './fixtures.js';
import { type Benchmark, measure, measureInterleaved, Report, type Row, scratch, sh, throughputRow } from './lib.js';

/** Sizes in MB, from the environment so that a quick run can shrink them (the figures by default). */
function sizeMb(name: string, fallback: number): number {
  const v = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(v) || v < 20) throw new Error(`${name} wants a size of at least 20 (MB), not "${process.env[name]}"`);
  return v;
}

const LARGE_SIZE = 10 * 1024 * 1024;
const SMALL_FILES = 4000;

/**
 * A folder of mixed sizes: 4000 files of 1-8 KB in folders of 100 (~18 MB), and 10 MB files for the
 * rest; random content. Returns its bytes.
 */
async function makeTree(work: string, dest: string, mb: number): Promise<number> {
  const large = Math.max(1, Math.round((mb * 1e6 - 18e6) / LARGE_SIZE));
  const files = bigLayerFiles(0, SMALL_FILES, large, LARGE_SIZE);
  const tar = await writeLayerTar(path.join(work, 'tree.tar'), files);
  await mkdir(dest, { recursive: true });
  await sh('tar', ['-xf', tar.file, '-C', dest], { timeout: 300_000 });
  await rm(tar.file);
  return files.reduce((n, f) => n + f.size, 0);
}


/** `tar -c SRC | tar -x DEST`, the reference both ways. */
async function tarPipe(src: string, dest: string): Promise<void> {
  await sh('sh', ['-c', 'mkdir -p "$2" && tar -cf - -C "$1" . | tar -xf - -C "$2"', 'tar-pipe', src, dest], { timeout: 600_000 });
}

const settle = async () => { await sh('sync', [], { timeout: 120_000 }); };

/** `berth cp` of a mixed-size folder into and out of a running container, against tar piped to tar over the same paths. */
export const copyBoth: Benchmark = {
  name: 'cp',
  title: 'berth cp of a mixed folder (BERTH_BENCH_CP_MB, 200 MB) both ways vs tar -c | tar -x of the same paths',
  defaultRuns: 5,
  async run(ctx) {
    const report = new Report(this.name, this.title);
    const work = await scratch('cp');
    const berth = await BerthRoot.create('cp');
    try {
      const mb = sizeMb('BERTH_BENCH_CP_MB', 200);
      const src = path.join(work.dir, 'src');
      ctx.log(`${this.name}: generating ${mb} MB of files`);
      const bytes = await makeTree(work.dir, src, mb);
      report.note(`${(bytes / 1e6).toFixed(0)} MB in ${SMALL_FILES} small files and ${Math.round((bytes - 18e6) / LARGE_SIZE)} of 10 MB`);
      await berth.ensureImage();
      const id = await berth.runDetached(['--network', 'none', BERTH_IMAGE, 'sleep', '3600']);
      const merged = path.join(berth.root, 'snapshots', id, 'merged');
      const out = path.join(work.dir, 'out');
      const fresh = async () => {
        await rm(out, { recursive: true, force: true });
        await berth.cli(['exec', id, 'rm', '-rf', '/in', '/ref-in']);
        await settle();
      };
      const opts = { runs: ctx.runs, warmup: 1, setup: fresh, teardown: fresh };

      // Each reference run right before its Berth run: drift on this shared machine hits both alike.
      const [refIn, cpIn] = await measureInterleaved(report, [
        { label: 'tar | tar, host to container rootfs', role: 'reference', run: () => tarPipe(src, path.join(merged, 'ref-in')) },
        { label: 'berth cp host to container', role: 'berth', run: async () => { await berth.cli(['cp', src, `${id}:/in`], { timeout: 600_000 }); } },
      ], opts) as [Row, Row];
      // out of the container: what the first cp put there stays for these runs
      await berth.cli(['cp', src, `${id}:/data`], { timeout: 600_000 });
      const [refOut, cpOut] = await measureInterleaved(report, [
        { label: 'tar | tar, container rootfs to host', role: 'reference', run: () => tarPipe(path.join(merged, 'data'), out) },
        { label: 'berth cp container to host', role: 'berth', run: async () => { await berth.cli(['cp', `${id}:/data`, out], { timeout: 600_000 }); } },
      ], opts) as [Row, Row];

      throughputRow(report, refIn, 'tar | tar in, throughput', bytes);
      throughputRow(report, cpIn, 'berth cp in, throughput', bytes);
      throughputRow(report, refOut, 'tar | tar out, throughput', bytes);
      throughputRow(report, cpOut, 'berth cp out, throughput', bytes);
      report.target('berth cp into a container >= 0.8x tar throughput',
        () => report.median('berth cp in, throughput') / report.median('tar | tar in, throughput'), '>=', 0.8, 'x');
      report.target('berth cp out of a container >= 0.8x tar throughput',
        () => report.median('berth cp out, throughput') / report.median('tar | tar out, throughput'), '>=', 0.8, 'x');
      report.note('berth cp also starts the CLI, pauses and resumes the container, and extracts through a nosymfollow bind mount');
    } finally {
      await berth.cleanup();
      await work.remove();
    }
    return report;
  },
};

/** `berth commit` of a container that changed BERTH_BENCH_COMMIT_MB (100 MB), against `tar -c` of its upper dir. */
export const commitChanged: Benchmark = {
  name: 'commit',
  title: 'berth commit of a container with 100 MB changed (BERTH_BENCH_COMMIT_MB) vs tar -c of its upper dir',
  defaultRuns: 3,
  async run(ctx) {
    const report = new Report(this.name, this.title);
    const work = await scratch('commit');
    const berth = await BerthRoot.create('commit');
    try {
      const mb = sizeMb('BERTH_BENCH_COMMIT_MB', 100);
      const src = path.join(work.dir, 'src');
      ctx.log(`${this.name}: generating ${mb} MB of files`);
      const bytes = await makeTree(work.dir, src, mb);
      await berth.ensureImage();
      const id = await berth.runDetached(['--network', 'none', BERTH_IMAGE, 'sleep', '3600']);
      await berth.cli(['cp', src, `${id}:/data`], { timeout: 600_000 });
      const upper = path.join(berth.root, 'snapshots', id, 'upper');
      const tarball = path.join(work.dir, 'upper.tar');
      const tarTime = await measure(report, 'tar -c of the upper dir to a file', 'reference', {
        runs: ctx.runs, warmup: 1, setup: settle, teardown: () => rm(tarball, { force: true }),
      }, async () => { await sh('tar', ['-cf', tarball, '-C', upper, '.'], { timeout: 600_000 }); });
      const commitTime = await measure(report, 'berth commit', 'berth', {
        runs: ctx.runs, warmup: 1, setup: settle,
        teardown: async () => { await berth.cli(['rmi', 'bench-commit:latest']).catch(() => {}); await berth.cli(['image', 'prune', '-f']); },
      }, async () => { await berth.cli(['commit', id, 'bench-commit:latest'], { timeout: 600_000 }); });
      throughputRow(report, tarTime, 'tar -c throughput', bytes);
      throughputRow(report, commitTime, 'berth commit throughput', bytes);
      report.note('no target in the issue: the ratio is for context. commit packs the upper dir in node (whiteouts), stores the blob and unpacks it again as a layer; tar -c reads once and writes once');
    } finally {
      await berth.cleanup();
      await work.remove();
    }
    return report;
  },
};
