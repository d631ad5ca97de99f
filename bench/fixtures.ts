/**
 * What the references run on: a busybox root filesystem, a raw runc bundle over it, and generated
 * docker-archive images (plain layer tars, so `tar -x` of the very same files is the reference).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pack as tarPack, type Header } from 'tar-stream';
import { scratch, sh } from './lib.js';

const BUSYBOX = '/bin/busybox';

/** /bin/busybox plus one symlink per applet, and the few folders a container expects. */
export async function buildBusyboxRootfs(dir: string): Promise<string> {
  for (const d of ['bin', 'dev', 'proc', 'sys', 'etc', 'root', 'tmp', 'var/www']) await mkdir(path.join(dir, d), { recursive: true });
  await chmod(path.join(dir, 'tmp'), 0o1777);
  await copyFile(BUSYBOX, path.join(dir, 'bin/busybox'));
  await chmod(path.join(dir, 'bin/busybox'), 0o755);
  const { stdout } = await sh(BUSYBOX, ['--list']);
  for (const applet of stdout.split('\n').map((l) => l.trim()).filter((l) => l && l !== 'busybox')) {
    await symlink('busybox', path.join(dir, 'bin', applet));
  }
  await writeFile(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  await writeFile(path.join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  return dir;
}

/** A tarball of the rootfs, for `podman import` / `docker import`. */
export async function tarRootfs(rootfs: string, out: string): Promise<string> {
  await sh('tar', ['-C', rootfs, '-cf', out, '.']);
  return out;
}

/** `runc spec`, then the edits that make it run `args` non-interactively on `rootfs`. */
export async function buildRuncBundle(bundle: string, rootfs: string, args: readonly string[]): Promise<string> {
  await mkdir(bundle, { recursive: true });
  await sh('runc', ['spec', '--bundle', bundle]);
  const file = path.join(bundle, 'config.json');
  const spec = JSON.parse(await readFile(file, 'utf8')) as { process: { args: string[]; terminal: boolean }; root: { path: string; readonly: boolean } };
  spec.process.args = [...args];
  spec.process.terminal = false;
  spec.root = { path: path.resolve(rootfs), readonly: true };
  await writeFile(file, JSON.stringify(spec, null, 2));
  return bundle;
}

/**
 * The config Berth itself would give this container (Docker's defaults: seccomp filter, 14 capabilities,
 * masked paths, device rules, a cgroup), from the bundle layer, for runc to run directly: the "equivalent
 * bundle" reference. `runc spec`'s minimal bundle skips work every Docker-like engine must do (its seccomp
 * filter alone costs runc ~8 ms here), so it understates what runc needs for the same container.
 */
export async function buildEquivalentBundle(bundle: string, rootfs: string, args: readonly string[]): Promise<string> {
  const { buildSpec, readUserDb } = await import('../src/bundle/index.js');
  const { probeHost } = await import('../src/host.js');
  await mkdir(bundle, { recursive: true });
  const { spec } = buildSpec({
    id: `benchraw${process.pid}`,
    rootfsPath: path.resolve(rootfs),
    imageConfig: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
    request: { image: 'busybox', command: [...args] },
    host: await probeHost(),
    userDb: await readUserDb(rootfs),
    namespaces: {},
    files: {},
    extraMounts: [],
    cgroupsPath: `/berth-bench/${process.pid}`,
  });
  spec.root = { path: path.resolve(rootfs), readonly: true };
  await writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
  return bundle;
}

// ---------------------------------------------------------------- generated images

export interface FileSpec {
  name: string;
  size: number;
  /** random hex text instead of random bytes: compresses about 2:1, as a real image's files do */
  text?: boolean;
}

export interface LayerTar {
  file: string;
  /** sha256:<hex> of the uncompressed tar (the layer is stored uncompressed, so also its blob digest) */
  diffId: string;
  bytes: number;
}

export interface GeneratedImage {
  archive: string;
  tag: string;
  layers: LayerTar[];
  /** Sum of the layer tars' sizes: the bytes both `tar -x` and `berth load` unpack. */
  layerBytes: number;
}

/** Small deterministic PRNG: the same image shape every run, while the content stays random. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Layer `index` of the big image: many small files (1-8 KB) in folders of 100, plus a few large ones. */
export function bigLayerFiles(index: number, smallFiles: number, largeFiles: number, largeSize: number): FileSpec[] {
  const rand = prng(index + 1);
  const files: FileSpec[] = [];
  for (let i = 0; i < smallFiles; i++) files.push({ name: `data/l${index}/d${Math.floor(i / 100)}/f${i}`, size: 1024 + Math.floor(rand() * 7168) });
  for (let i = 0; i < largeFiles; i++) files.push({ name: `data/l${index}/big${i}.bin`, size: largeSize });
  return files;
}

/** Writes one layer as a plain tar; content is random, so nothing along the way can compress it away. */
export async function writeLayerTar(file: string, files: readonly FileSpec[]): Promise<LayerTar> {
  const pack = tarPack();
  const hash = createHash('sha256');
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      cb(null, chunk);
    },
  });
  const written = pipeline(pack, counter, createWriteStream(file));
  const dirs = new Set<string>();
  const mtime = new Date('2024-01-01T00:00:00Z');
  const entry = (header: Partial<Header> & { name: string }, body?: Buffer) => new Promise<void>((resolve, reject) => {
    const done = (err?: Error | null) => (err ? reject(err) : resolve());
    const full = { mtime, uid: 0, gid: 0, ...header };
    if (body) pack.entry(full, body, done);
    else pack.entry(full, done);
  });
  for (const f of files) {
    const parts = f.name.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!dirs.has(d)) {
        dirs.add(d);
        await entry({ name: `${d}/`, type: 'directory', mode: 0o755 });
      }
    }
    await entry({ name: f.name, type: 'file', mode: 0o644, size: f.size }, f.text ? Buffer.from(randomBytes(Math.ceil(f.size / 2)).toString('hex').slice(0, f.size)) : randomBytes(f.size));
  }
  pack.finalize();
  await written;
  return { file, diffId: `sha256:${hash.digest('hex')}`, bytes };
}

function goArch(): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[process.arch] ?? process.arch;
}

/**
 * A docker-archive (as `docker save` wrote before v25): manifest.json, the config blob named by its
 * digest, and `<diffid hex>/layer.tar` per layer, assembled with tar-stream.
 */
export async function writeDockerArchive(archive: string, tag: string, layers: readonly LayerTar[]): Promise<void> {
  const created = '2024-01-01T00:00:00Z';
  const config = Buffer.from(JSON.stringify({
    architecture: goArch(),
    os: 'linux',
    created,
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_l, i) => ({ created, created_by: `berth bench layer ${i}` })),
  }));
  const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
  const layerNames = layers.map((l) => `${l.diffId.slice('sha256:'.length)}/layer.tar`);
  const manifest = Buffer.from(JSON.stringify([{ Config: configName, RepoTags: [tag], Layers: layerNames }]));

  const pack = tarPack();
  const written = pipeline(pack, createWriteStream(archive));
  const addBuffer = (name: string, body: Buffer) => new Promise<void>((resolve, reject) => {
    pack.entry({ name, size: body.length, mode: 0o644 }, body, (err) => (err ? reject(err) : resolve()));
  });
  for (const [i, layer] of layers.entries()) {
    const name = layerNames[i] as string;
    const size = (await stat(layer.file)).size;
    await new Promise<void>((resolve, reject) => {
      const sink = pack.entry({ name, size, mode: 0o644 }, (err) => (err ? reject(err) : resolve()));
      pipeline(createReadStream(layer.file), sink).catch(reject);
    });
  }
  await addBuffer(configName, config);
  await addBuffer('manifest.json', manifest);
  pack.finalize();
  await written;
}

/**
 * Six layers of this machine's own files (headers, Python, Vim, Perl, locales, icons and fonts from /usr):
 * real sizes, names, links and owners, as an image built from a distribution's packages has (297 MB,
 * 23k entries on Debian 12). Each is `tar -c` of those folders, so `tar -x` of the very same file is
 * the reference. Folders missing here are left out; undefined when less than 100 MB remains (use
 * generated layers then).
 */
export const HOST_LAYER_DIRS: readonly (readonly string[])[] = [
  ['usr/include'],
  ['usr/lib/python3.11'],
  ['usr/share/vim'],
  ['usr/share/perl'],
  ['usr/share/i18n'],
  ['usr/share/cmake-3.25', 'usr/share/icons', 'usr/share/zoneinfo', 'usr/share/X11', 'usr/share/fonts'],
];

export async function hostLayers(dir: string): Promise<LayerTar[] | undefined> {
  await mkdir(dir, { recursive: true });
  const layers: LayerTar[] = [];
  for (const [i, dirs] of HOST_LAYER_DIRS.entries()) {
    const present: string[] = [];
    for (const d of dirs) if (await stat(path.join('/', d)).then((st) => st.isDirectory(), () => false)) present.push(d);
    if (!present.length) continue;
    const file = path.join(dir, `layer${i}.tar`);
    await sh('tar', ['-cf', file, '--numeric-owner', '--sort=name', '-C', '/', ...present], { timeout: 300_000 });
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of createReadStream(file)) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    layers.push({ file, diffId: `sha256:${hash.digest('hex')}`, bytes });
  }
  return layers.reduce((n, l) => n + l.bytes, 0) >= 100e6 ? layers : undefined;
}

/** Layer tars plus the archive that holds them, under `dir`. */
export async function generateImage(dir: string, tag: string, layerFiles: ReadonlyArray<readonly FileSpec[]> | readonly LayerTar[]): Promise<GeneratedImage> {
  await mkdir(path.join(dir, 'layers'), { recursive: true });
  const layers: LayerTar[] = [];
  for (const [i, item] of layerFiles.entries()) {
    layers.push(Array.isArray(item) ? await writeLayerTar(path.join(dir, 'layers', `layer${i}.tar`), item as readonly FileSpec[]) : item as LayerTar);
  }
  const archive = path.join(dir, 'image.tar');
  await writeDockerArchive(archive, tag, layers);
  return { archive, tag, layers, layerBytes: layers.reduce((n, l) => n + l.bytes, 0) };
}

export interface BusyboxFixture {
  rootfs: string;
  /** the rootfs as a tarball, for the peers' `import` */
  tarball: string;
}

let sharedBusybox: Promise<BusyboxFixture> | undefined;

/** One busybox rootfs for the whole run (raw runc bundles, peers' images); removed when the harness exits. */
export function busyboxFixture(): Promise<BusyboxFixture> {
  sharedBusybox ??= (async () => {
    const { dir } = await scratch('busybox');
    const rootfs = await buildBusyboxRootfs(path.join(dir, 'rootfs'));
    return { rootfs, tarball: await tarRootfs(rootfs, path.join(dir, 'rootfs.tar')) };
  })();
  return sharedBusybox;
}
