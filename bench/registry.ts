/**
 * `berth pull` and `berth push` against a real registry (Debian's docker-registry, the CNCF distribution
 * registry) on 127.0.0.1, started by the bench and stopped by its PID. The image (~300 MB of layer tars,
 * 5 layers of small, medium and large files, half random bytes and half random text, gzip-compressed) is
 * generated here and pushed once with skopeo. References in the same run, interleaved with Berth's side:
 * pull: `skopeo copy docker://... oci:DIR` followed by `tar -xzf` of each layer, and `podman pull` on a
 * fresh store; push: `skopeo copy oci:DIR docker://...` into an empty registry.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, openSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { BERTH_BIN, BerthRoot } from './berth.js';
import { type FileSpec, writeLayerTar } from './fixtures.js';
import { type Benchmark, deferCleanup, findBinary, measure, measureInterleaved, peakRss, Report, type Row, scratch, sh, sleep, throughputRow, timed } from './lib.js';
import { PODMAN_CONF, stopByPid } from './peers.js';

/** The bench's ports (15390-15399 are reserved for it): the source registry, and the push target. */
const SOURCE_PORT = 15390;
const TARGET_PORT = 15391;
const REPO = 'bench/big';
const TAG = 'latest';
const LAYERS = 5;

const settle = async () => { await sh('sync', [], { timeout: 120_000 }); };

// ---------------------------------------------------------------- the registry

export interface Registry {
  host: string;
  stop(): Promise<void>;
}

/** docker-registry on `127.0.0.1:port` over `dir` (made empty), plain HTTP; waits until /v2/ answers. */
export async function startRegistry(port: number, dir: string): Promise<Registry> {
  const bin = await findBinary('docker-registry');
  if (!bin) throw new Error('docker-registry not installed (apt-get install -y docker-registry)');
  await rm(dir, { recursive: true, force: true });
  await mkdir(path.join(dir, 'storage'), { recursive: true });
  const config = path.join(dir, 'config.yml');
  await writeFile(config, [
    'version: 0.1',
    'log: { level: error, accesslog: { disabled: true } }',
    `storage: { filesystem: { rootdirectory: ${path.join(dir, 'storage')} }, delete: { enabled: true } }`,
    `http: { addr: "127.0.0.1:${port}" }`,
    '',
  ].join('\n'));
  const logFd = openSync(path.join(dir, 'registry.log'), 'a');
  // A server outlives any one command, so it cannot go through run(): spawned, stopped by PID.
  const child = spawn(bin, ['serve', config], { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const pid = child.pid;
  const stop = deferCleanup(async () => { if (pid) await stopByPid(pid); });
  const host = `127.0.0.1:${port}`;
  for (let waited = 0; ; waited += 100) {
    const up = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
    if (up) break;
    if (waited > 15_000 || child.exitCode !== null) {
      await stop();
      throw new Error(`docker-registry did not come up on ${host}: ${(await readFile(path.join(dir, 'registry.log'), 'utf8').catch(() => '')).slice(-300)}`);
    }
    await sleep(100);
  }
  return { host, stop };
}

// ---------------------------------------------------------------- the image

/** Layer `index`: 1,500 files of 1-8 KB, 40 of 512 KB, 3 of 12 MB; every other file random text. */
function layerFiles(index: number): FileSpec[] {
  const files: FileSpec[] = [];
  for (let i = 0; i < 1500; i++) files.push({ name: `srv/l${index}/d${Math.floor(i / 100)}/f${i}`, size: 1024 + ((i * 2654435761 + index) % 7168), text: i % 2 === 0 });
  for (let i = 0; i < 40; i++) files.push({ name: `srv/l${index}/mid/m${i}`, size: 512 * 1024, text: i % 2 === 1 });
  for (let i = 0; i < 3; i++) files.push({ name: `srv/l${index}/big${i}.bin`, size: 12 * 1024 * 1024, text: i === 0 });
  return files;
}

interface BenchImage {
  /** OCI layout (gzip layers), the source skopeo pushes */
  layout: string;
  digest: string;
  /** the config's digest: the image ID every side must end up with */
  id: string;
  layerBytes: number;
  compressedBytes: number;
}

async function gzipInto(src: string, blobsDir: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const tmp = path.join(blobsDir, `.tmp-${path.basename(src)}`);
  await pipeline(createReadStream(src), createGzip(), new Transform({
    transform(chunk: Buffer, _enc, cb) { hash.update(chunk); size += chunk.length; cb(null, chunk); },
  }), createWriteStream(tmp));
  const hex = hash.digest('hex');
  await rename(tmp, path.join(blobsDir, hex));
  return { digest: `sha256:${hex}`, size };
}

async function putBlob(blobsDir: string, data: Buffer): Promise<{ digest: string; size: number }> {
  const hex = createHash('sha256').update(data).digest('hex');
  await writeFile(path.join(blobsDir, hex), data);
  return { digest: `sha256:${hex}`, size: data.length };
}

/** Writes the image as an OCI layout with gzip layers, tagged `TAG`. */
async function buildImage(dir: string): Promise<BenchImage> {
  const blobs = path.join(dir, 'layout', 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const layers: { digest: string; size: number; diffId: string }[] = [];
  let layerBytes = 0;
  for (let i = 0; i < LAYERS; i++) {
    const tar = await writeLayerTar(path.join(dir, `layer${i}.tar`), layerFiles(i));
    layerBytes += tar.bytes;
    layers.push({ ...(await gzipInto(tar.file, blobs)), diffId: tar.diffId });
    await rm(tar.file);
  }
  const created = '2024-01-01T00:00:00Z';
  const arch = ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch] ?? process.arch;
  const config = await putBlob(blobs, Buffer.from(JSON.stringify({
    created, architecture: arch, os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_l, i) => ({ created, created_by: `berth bench registry layer ${i}` })),
  })));
  const manifest = await putBlob(blobs, Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
  })));
  const layout = path.join(dir, 'layout');
  await writeFile(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(path.join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': TAG } }],
  }));
  return { layout, digest: manifest.digest, id: config.digest, layerBytes, compressedBytes: layers.reduce((n, l) => n + l.size, 0) };
}

let sharedImage: Promise<BenchImage> | undefined;

/** One image for both benchmarks of a run (~20 s to make); removed when the harness exits. */
function benchImage(log: (m: string) => void): Promise<BenchImage> {
  sharedImage ??= (async () => {
    log(`registry: generating the image (${LAYERS} layers, gzip)`);
    const { dir } = await scratch('registry-image');
    return buildImage(dir);
  })();
  return sharedImage;
}

// ---------------------------------------------------------------- the sides

async function skopeo(args: readonly string[]): Promise<void> {
  await sh('skopeo', args, { timeout: 600_000 });
}

/** The layers of an OCI layout's only manifest, as blob paths (bottom first). */
async function layoutLayers(layout: string): Promise<string[]> {
  const blob = (d: string) => path.join(layout, 'blobs', 'sha256', d.slice('sha256:'.length));
  const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
  return manifest.layers.map((l) => blob(l.digest));
}

/**
 * Berth's side of the pull: `berth pull REF` into the (empty) root. Kept apart so the benchmark runs,
 * with the references measured and Berth's row n/a, on a tree without pull.
 */
async function berthPull(berth: BerthRoot, ref: string): Promise<void> {
  await berth.cli(['pull', '-q', ref], { timeout: 600_000 });
}

async function berthPush(berth: BerthRoot, ref: string): Promise<void> {
  await berth.cli(['push', '-q', ref], { timeout: 600_000 });
}

export const registryPull: Benchmark = {
  name: 'pull',
  title: 'berth pull of a ~300 MB, 5-layer gzip image from docker-registry on 127.0.0.1 vs skopeo copy + tar -x, and podman pull',
  defaultRuns: 3,
  async run(ctx) {
    const report = new Report(this.name, this.title);
    const work = await scratch('pull');
    let source: Registry | undefined;
    try {
      const image = await benchImage(ctx.log);
      source = await startRegistry(SOURCE_PORT, path.join(work.dir, 'registry'));
      const ref = `${source.host}/${REPO}:${TAG}`;
      ctx.log(`${this.name}: pushing it to ${source.host} with skopeo`);
      await skopeo(['copy', '--dest-tls-verify=false', `oci:${image.layout}:${TAG}`, `docker://${ref}`]);
      report.note(`${LAYERS} layers, ${(image.layerBytes / 1e6).toFixed(0)} MB of layer tars, ${(image.compressedBytes / 1e6).toFixed(0)} MB gzip-compressed; manifest ${image.digest.slice(0, 19)}`);

      const dest = path.join(work.dir, 'skopeo');
      const skopeoSide = {
        label: 'skopeo copy docker:// oci: + tar -xzf of each layer', role: 'reference' as const,
        setup: async () => { await rm(dest, { recursive: true, force: true }); await mkdir(dest, { recursive: true }); await settle(); },
        teardown: () => rm(dest, { recursive: true, force: true }),
        run: async () => {
          let total = await timed(() => skopeo(['copy', '--src-tls-verify=false', `docker://${ref}`, `oci:${path.join(dest, 'oci')}:${TAG}`]));
          for (const [i, blob] of (await layoutLayers(path.join(dest, 'oci'))).entries()) {
            const into = path.join(dest, 'rootfs', String(i));
            await mkdir(into, { recursive: true });
            total += await timed(() => sh('tar', ['-xzf', blob, '-C', into], { timeout: 300_000 }));
          }
          return total;
        },
      };

      const podmanBin = await findBinary('podman');
      const podmanDir = path.join(work.dir, 'podman');
      const podmanArgs = () => ['--root', path.join(podmanDir, 'root'), '--runroot', path.join(podmanDir, 'run'), '--tmpdir', path.join(podmanDir, 'tmp'), '--storage-driver', 'overlay'];
      const podmanEnv = { CONTAINERS_CONF: path.join(work.dir, 'containers.conf') };
      // Podman copies blobs through image_copy_tmp_dir (/var/tmp by default): kept inside the scratch folder.
      await writeFile(podmanEnv.CONTAINERS_CONF, `${PODMAN_CONF.replace('[engine]', `[engine]\nimage_copy_tmp_dir = "${path.join(podmanDir, 'tmp')}"`)}`);
      const podmanSide = {
        label: 'podman pull (fresh --root)', role: 'peer' as const,
        setup: async () => {
          if (!podmanBin) throw new Error('podman not installed (apt-get install -y podman)');
          await mkdir(path.join(podmanDir, 'tmp'), { recursive: true });
          await settle();
        },
        teardown: async () => {
          if (podmanBin) await sh(podmanBin, [...podmanArgs(), 'system', 'reset', '-f'], { timeout: 120_000, env: podmanEnv }).catch(() => undefined);
          await rm(podmanDir, { recursive: true, force: true });
        },
        run: async () => { await sh(podmanBin!, [...podmanArgs(), 'pull', '-q', '--tls-verify=false', ref], { timeout: 600_000, env: podmanEnv }); },
      };

      let berth: BerthRoot | undefined;
      const berthSide = {
        label: 'berth pull (empty root)', role: 'berth' as const,
        setup: async () => { berth = await BerthRoot.create('pull'); await settle(); },
        teardown: async () => {
          // Untimed: a pull that stored something else must not pass for a fast one.
          const id = await berth?.cli(['image', 'inspect', '--format', '{{.Id}}', ref]).then((r) => r.stdout.trim(), () => undefined);
          await berth?.cleanup();
          if (id !== undefined && id !== image.id) throw new Error(`berth pull stored image ${id}, not ${image.id}`);
        },
        run: async () => berthPull(berth!, ref),
      };

      const [skopeoRow, podmanRow, berthRow] = await measureInterleaved(report, [skopeoSide, podmanSide, berthSide], { runs: ctx.runs, warmup: 1 }) as [Row, Row, Row];
      throughputRow(report, skopeoRow, 'skopeo + tar throughput (of layer tars)', image.layerBytes);
      throughputRow(report, podmanRow, 'podman pull throughput', image.layerBytes);
      throughputRow(report, berthRow, 'berth pull throughput', image.layerBytes);
      report.target('berth pull at least as fast as the fastest reference', () => {
        const refs = [skopeoRow, podmanRow].filter((r) => !r.error && r.samples.length).map((r) => report.median(r.label));
        if (!refs.length) throw new Error('no reference measured');
        return report.median(berthRow.label) / Math.min(...refs);
      }, '<=', 1.0, 'x');
      // Memory, once each (untimed for the rows above): a pull holds layers in flight on up to two threads.
      let rssRoot: BerthRoot | undefined;
      await measure(report, 'berth pull (peak RSS)', 'berth', {
        runs: 1, unit: 'MB',
        setup: async () => { rssRoot = await BerthRoot.create('pull-rss'); await settle(); },
        teardown: async () => rssRoot?.cleanup(),
      }, () => peakRss(process.execPath, [BERTH_BIN, '--root', rssRoot!.root, 'pull', '-q', ref]));
      if (podmanBin) {
        await measure(report, 'podman pull (peak RSS)', 'peer', {
          runs: 1, unit: 'MB',
          setup: async () => { await mkdir(path.join(podmanDir, 'tmp'), { recursive: true }); await settle(); },
          teardown: () => podmanSide.teardown(),
        }, () => peakRss(podmanBin, [...podmanArgs(), 'pull', '-q', '--tls-verify=false', ref], { env: podmanEnv }));
      }
      report.note('the registry serves from its own folder on the same disk; every side starts from an empty store after sync');
    } finally {
      await source?.stop();
      await work.remove();
    }
    return report;
  },
};

export const registryPush: Benchmark = {
  name: 'push',
  title: 'berth push of the same ~300 MB image into an empty docker-registry vs skopeo copy oci: docker://',
  defaultRuns: 3,
  async run(ctx) {
    const report = new Report(this.name, this.title);
    const work = await scratch('push');
    let source: Registry | undefined;
    let target: Registry | undefined;
    const berth = await BerthRoot.create('push');
    try {
      const image = await benchImage(ctx.log);
      report.note(`${LAYERS} layers, ${(image.layerBytes / 1e6).toFixed(0)} MB of layer tars, ${(image.compressedBytes / 1e6).toFixed(0)} MB gzip-compressed`);
      const targetRef = `127.0.0.1:${TARGET_PORT}/${REPO}:${TAG}`;
      // Berth's copy of the image comes from a registry too (untimed), as a user's would.
      let berthReady: string | undefined;
      try {
        source = await startRegistry(SOURCE_PORT, path.join(work.dir, 'source'));
        const sourceRef = `${source.host}/${REPO}:${TAG}`;
        await skopeo(['copy', '--dest-tls-verify=false', `oci:${image.layout}:${TAG}`, `docker://${sourceRef}`]);
        await berthPull(berth, sourceRef);
        await berth.cli(['tag', sourceRef, targetRef]);
      } catch (err) {
        berthReady = err instanceof Error ? err.message : String(err);
      } finally {
        await source?.stop();
      }

      const registryDir = path.join(work.dir, 'target');
      // Untimed, after each run: the registry holds the image under the source's manifest digest.
      const checkPushed = async () => {
        const res = await fetch(`http://127.0.0.1:${TARGET_PORT}/v2/${REPO}/manifests/${TAG}`, {
          method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' }, signal: AbortSignal.timeout(10_000),
        });
        const digest = res.headers.get('docker-content-digest');
        if (digest !== image.digest) throw new Error(`the registry holds ${digest ?? `nothing (${res.status})`}, not ${image.digest}`);
      };
      const common = {
        setup: async () => { target = await startRegistry(TARGET_PORT, registryDir); await settle(); },
        teardown: async () => { await target?.stop(); await rm(registryDir, { recursive: true, force: true }); },
      };
      const [skopeoRow, berthRow] = await measureInterleaved(report, [
        { label: 'skopeo copy oci: docker:// (empty registry)', role: 'reference', run: async () => {
          await skopeo(['copy', '--dest-tls-verify=false', `oci:${image.layout}:${TAG}`, `docker://${targetRef}`]);
        }, teardown: checkPushed },
        { label: 'berth push (empty registry)', role: 'berth', run: async () => {
          if (berthReady) throw new Error(`set-up: ${berthReady}`);
          await berthPush(berth, targetRef);
        }, teardown: async () => { if (!berthReady) await checkPushed(); } },
      ], { runs: ctx.runs, warmup: 1, ...common }) as [Row, Row];
      throughputRow(report, skopeoRow, 'skopeo copy throughput (of layer tars)', image.layerBytes);
      throughputRow(report, berthRow, 'berth push throughput', image.layerBytes);
      report.target('berth push at least as fast as skopeo copy', () => report.median(berthRow.label) / report.median(skopeoRow.label), '<=', 1.0, 'x');
      report.note('skopeo pushes the gzip blobs of the OCI layout as they are; every run of either side pushes into a fresh, empty registry');
    } finally {
      await berth.cleanup();
      await work.remove();
    }
    return report;
  },
};
