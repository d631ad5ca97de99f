import { randomBytes } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { ArchiveFormat } from '../types.js';
import { InvalidArgumentError } from '../errors.js';
import { digestHex, type Digest } from '../ids.js';
import type { Storage } from '../storage/index.js';
import { CONTAINERD_NAME_ANNOTATION, MediaType, REF_NAME_ANNOTATION, canonicalJson, type Descriptor, type OciIndex } from './oci.js';
import type { StoredImage } from './records.js';
import { splitTagged } from './reference.js';

export interface SaveItem {
  image: StoredImage;
  /** `name:tag` keys to write into the archive */
  tags: string[];
}

/** Where archive files go: a tar stream (tar-stream pack) or a directory (oci-dir). */
interface ArchiveSink {
  dir(name: string): Promise<void>;
  file(name: string, data: string | Buffer): Promise<void>;
  blob(name: string, digest: Digest, size: number): Promise<void>;
  finish(): Promise<void>;
  abort(err: unknown): Promise<void>;
}

const MTIME = new Date(0);

/**
 * Writes images as a docker-archive (what `docker load`/`podman load` read: manifest.json,
 * `<config-hex>.json`, `<layer>/layer.tar`, repositories) or an OCI layout (index.json whose entries
 * carry `org.opencontainers.image.ref.name`). A file output appears only when complete.
 */
export async function writeArchive(storage: Storage, items: readonly SaveItem[], output: string | Writable, format: ArchiveFormat): Promise<void> {
  if (format === 'oci-dir') {
    if (typeof output !== 'string') throw new InvalidArgumentError('output', 'an oci-dir needs a directory path, not a stream', 'give a directory path, or use oci-archive');
    return writeWith(await dirSink(storage, output), storage, items, format);
  }
  if (typeof output !== 'string') return writeWith(tarSink(storage, output), storage, items, format);
  const tmp = path.join(path.dirname(output), `.tmp-${path.basename(output)}-${randomBytes(4).toString('hex')}`);
  try {
    await writeWith(tarSink(storage, createWriteStream(tmp, { flags: 'wx' })), storage, items, format);
    await fsp.rename(tmp, output);
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}

async function writeWith(sink: ArchiveSink, storage: Storage, items: readonly SaveItem[], format: ArchiveFormat): Promise<void> {
  try {
    await (format === 'docker-archive' ? writeDocker(sink, storage, items) : writeOci(sink, storage, items));
    await sink.finish();
  } catch (err) {
    await sink.abort(err);
    throw err;
  }
}

async function writeDocker(sink: ArchiveSink, storage: Storage, items: readonly SaveItem[]): Promise<void> {
  const written = new Set<string>();
  const manifest = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const { image, tags } of items) {
    const layers: string[] = [];
    for (const l of image.layers) {
      const dir = digestHex(l.blob);
      const name = `${dir}/layer.tar`;
      layers.push(name);
      if (written.has(name)) continue;
      written.add(name);
      await sink.dir(dir);
      await sink.blob(name, l.blob, l.blobSize);
    }
    const config = `${digestHex(image.configDigest)}.json`;
    if (!written.has(config)) {
      written.add(config);
      await sink.file(config, await storage.blobs.read(image.configDigest));
    }
    manifest.push({ Config: config, RepoTags: tags, Layers: layers });
    const top = image.layers.at(-1);
    for (const t of tags) {
      const { name, tag } = splitTagged(t);
      if (top) (repositories[name] ??= {})[tag] = digestHex(top.blob);
    }
  }
  await sink.file('manifest.json', JSON.stringify(manifest));
  await sink.file('repositories', JSON.stringify(repositories));
}

async function writeOci(sink: ArchiveSink, storage: Storage, items: readonly SaveItem[]): Promise<void> {
  await sink.file('oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await sink.dir('blobs');
  await sink.dir('blobs/sha256');
  const written = new Set<Digest>();
  const put = async (d: Digest, size?: number) => {
    if (written.has(d)) return;
    written.add(d);
    await sink.blob(`blobs/sha256/${digestHex(d)}`, d, size ?? (await storage.blobs.stat(d)).size);
  };
  const index: OciIndex & { mediaType: string } = { schemaVersion: 2, mediaType: MediaType.index, manifests: [] };
  for (const { image, tags } of items) {
    for (const l of image.layers) await put(l.blob, l.blobSize);
    await put(image.configDigest);
    await put(image.manifestDigest);
    const desc: Descriptor = { mediaType: image.manifestMediaType, digest: image.manifestDigest, size: (await storage.blobs.stat(image.manifestDigest)).size };
    if (!tags.length) index.manifests.push(desc);
    for (const t of tags) index.manifests.push({ ...desc, annotations: { [REF_NAME_ANNOTATION]: t, [CONTAINERD_NAME_ANNOTATION]: t } });
  }
  await sink.file('index.json', canonicalJson(index));
}

function tarSink(storage: Storage, out: Writable): ArchiveSink {
  const pack = tar.pack();
  const piping = pipeline(pack as unknown as NodeJS.ReadableStream, out);
  piping.catch(() => {});
  const entry = (header: Parameters<typeof pack.entry>[0], data: string | Buffer) =>
    new Promise<void>((resolve, reject) => pack.entry({ mtime: MTIME, uid: 0, gid: 0, ...header }, data, (err) => (err ? reject(err) : resolve())));
  return {
    dir: (name) => entry({ name, type: 'directory', mode: 0o755 }, ''),
    file: (name, data) => entry({ name, type: 'file', mode: 0o644 }, data),
    async blob(name, digest, size) {
      let w!: ReturnType<typeof pack.entry>;
      const done = new Promise<void>((resolve, reject) => {
        w = pack.entry({ name, type: 'file', mode: 0o644, size, mtime: MTIME, uid: 0, gid: 0 }, (err) => (err ? reject(err) : resolve()));
      });
      // A failed blob (a rebuild that does not match) aborts the whole pack: the callback and the
      // caller's error already report it.
      done.catch(() => {});
      (w as unknown as NodeJS.EventEmitter).on('error', () => {});
      for await (const chunk of storage.blobs.open(digest)) {
        if (!w.write(chunk as Buffer)) await once(w as unknown as NodeJS.EventEmitter, 'drain');
      }
      (w as unknown as { end(): void }).end();
      await done;
    },
    async finish() {
      pack.finalize();
      await piping;
    },
    async abort(err) {
      pack.destroy(err as Error);
      await piping.catch(() => {});
    },
  };
}

async function dirSink(storage: Storage, dir: string): Promise<ArchiveSink> {
  await fsp.mkdir(dir, { recursive: true });
  return {
    dir: async (name) => { await fsp.mkdir(path.join(dir, name), { recursive: true }); },
    file: (name, data) => fsp.writeFile(path.join(dir, name), data),
    // Through `open`, not a file copy: a virtual blob is rebuilt and checked on the way.
    blob: (name, digest) => pipeline(storage.blobs.open(digest), createWriteStream(path.join(dir, name))),
    // index.json is written last, so an interrupted save leaves no layout that looks whole.
    finish: async () => {},
    abort: async () => {},
  };
}
