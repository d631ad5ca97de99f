import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BerthRoot, BERTH_IMAGE } from './berth.js';
import { bigLayerFiles, writeLayerTar } from './fixtures.js';
import { type Benchmark, type PeerCli, measureInterleaved, Report, type Side, scratch, sh } from './lib.js';

const FILES = 2000;
const TAG = 'bench-build:latest';

/** Five steps after FROM, as the issue asks: a COPY of a 2,000-file tree, two RUNs, ENV, CMD. */
function dockerfile(base: string): string {
  return [
    `FROM ${base}`,
    'COPY data /data',
    'RUN find /data -type f | wc -l > /count',
    'RUN echo built > /built',
    'ENV BENCH=1',
    'CMD ["cat", "/count"]',
    '',
  ].join('\n');
}

/** A build tool driven by its CLI: Berth, or a peer (podman build is buildah bud inside). */
interface Builder {
  name: string;
  build(args: readonly string[]): Promise<unknown>;
  /** removes the tagged image (untimed, between cold runs) */
  drop(): Promise<unknown>;
}

/**
 * `berth build` of a five-step Dockerfile over a 2,000-file context, cold (`--no-cache`) and warm (the same
 * build again, every step from the cache), against `podman build` (buildah bud) and `docker build` (peers,
 * when installed). Each side gets its own context folder holding the same files, so no side warms another's
 * page cache of the context more than the other.
 */
export const build: Benchmark = {
  name: 'build',
  title: 'build of a 5-step Dockerfile (COPY of 2,000 files, 2 RUN, ENV, CMD), cold and warm, vs podman/docker build',
  defaultRuns: 5,
  async run(ctx) {
    const report = new Report(this.name, this.title);
    const work = await scratch('build');
    const berth = await BerthRoot.create('build');
    try {
      ctx.log(`${this.name}: writing a ${FILES}-file context`);
      const files = bigLayerFiles(0, FILES, 0, 0);
      const tree = await writeLayerTar(path.join(work.dir, 'tree.tar'), files);
      report.note(`${FILES} files of 1-8 KB, ${(files.reduce((n, f) => n + f.size, 0) / 1e6).toFixed(1)} MB, in ${FILES / 100} folders`);
      const contextFor = async (name: string, base: string) => {
        const dir = path.join(work.dir, `ctx-${name}`);
        await mkdir(dir, { recursive: true });
        await sh('tar', ['-xf', tree.file, '-C', dir], { timeout: 120_000 });
        await writeFile(path.join(dir, 'Dockerfile'), dockerfile(base));
        return dir;
      };

      const builders: Builder[] = [];
      const berthCtx = await contextFor('berth', BERTH_IMAGE);
      await berth.ensureImage();
      builders.push({
        name: 'berth build',
        build: (args) => berth.cli(['build', ...args, '-t', TAG, berthCtx], { timeout: 600_000 }),
        drop: () => berth.cli(['rmi', '-f', TAG]).catch(() => undefined),
      });
      for (const peer of await ctx.peers()) builders.push(await peerBuilder(peer, await contextFor(peer.name, peer.image)));
      await rm(tree.file);

      const cold = await measureInterleaved(report, builders.map((b): Side => ({
        label: `${b.name} --no-cache (cold)`, role: b.name === 'berth build' ? 'berth' : 'peer',
        // The drop and the side before leave tens of MB for the kernel to write back: flushed untimed
        // (as the pull benchmark does), so no side pays for another's writes.
        setup: async () => { await b.drop(); await sh('sync', [], { timeout: 120_000 }); },
        run: async () => { await b.build(['--no-cache']); },
      })), { runs: ctx.runs, warmup: 1 });
      // The last cold build left every step in the cache: each warm run (and its warm-up) hits it all.
      const warm = await measureInterleaved(report, builders.map((b): Side => ({
        label: `${b.name} (warm: every step cached)`, role: b.name === 'berth build' ? 'berth' : 'peer',
        setup: async () => { await sh('sync', [], { timeout: 120_000 }); },
        run: async () => { await b.build([]); },
      })), { runs: ctx.runs, warmup: 1 });

      const peersCold = cold.slice(1).filter((r) => !r.error && r.samples.length);
      const peersWarm = warm.slice(1).filter((r) => !r.error && r.samples.length);
      const fastest = (rows: typeof cold) => {
        if (!rows.length) throw new Error('no peer measured (peers skipped with --no-peers, or neither installed: scripts/setup.sh --peers)');
        return Math.min(...rows.map((r) => report.median(r.label)));
      };
      report.target('berth build cold <= the fastest peer cold', () => report.median(cold[0]!.label) / fastest(peersCold), '<=', 1, 'x');
      report.target('berth build warm >= 2x faster than the fastest peer warm', () => fastest(peersWarm) / report.median(warm[0]!.label), '>=', 2, 'x');
      report.note('podman build is buildah bud (the same library); docker build is measured when a dockerd runs or can be started');
    } finally {
      await berth.cleanup();
      await work.remove();
    }
    return report;
  },
};

async function peerBuilder(peer: PeerCli, dir: string): Promise<Builder> {
  // podman builds with --layers by default (its cache); buildah bud alone would not cache at all. The docker
  // client (28) wants the buildx plugin for BuildKit, which Debian does not ship: the daemon's own builder.
  const extra = peer.name === 'podman' ? ['--layers'] : [];
  const env: Record<string, string> = peer.name === 'docker' ? { DOCKER_BUILDKIT: '0' } : {};
  return {
    name: `${peer.name} build`,
    build: (args) => peer.cli(['build', ...extra, ...args, '-t', TAG, dir], { timeout: 600_000, env }),
    drop: () => peer.cli(['rmi', '-f', TAG]).catch(() => undefined),
  };
}
