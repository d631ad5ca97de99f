import { createReadStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { CorruptError, InvalidArgumentError, isBerthError } from '../errors.js';
import { isDigest, type Digest } from '../ids.js';
import type { BlobInfo } from '../storage/index.js';
import { checkImageConfig } from './config-check.js';
import { prepareWithNewManifest, putBlob, unpackLayer, type IngestContext, type PreparedImage } from './commit.js';
import {
  CONTAINERD_NAME_ANNOTATION, INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, REF_NAME_ANNOTATION, ociArchitecture,
  type Descriptor, type OciImageConfig, type OciIndex, type OciManifest,
} from './oci.js';
import { parseTagTarget } from './reference.js';

/** Files of an archive, by their path inside it: small JSON read into memory, the rest as blobs. */
interface ArchiveFiles {
  readonly label: string;
  /** Checked between layers: most of a load's time after the read is unpacking. */
  readonly signal?: AbortSignal;
  meta(name: string): Promise<Buffer | undefined>;
  /** Puts the file into the blob store (if not yet) and checks it against `expected`. */
  blob(name: string, expected?: Partial<BlobInfo>): Promise<BlobInfo>;
}

/** One JSON file (manifest, index, config) is read into memory only up to this size. */
const META_LIMIT = 16 << 20;
/** Small files of a tar are held in memory up to this much in all; the rest go to the blob store. */
const META_TOTAL = 64 << 20;
/** Layer data in 1 MiB pieces rather than 64 KiB: each piece costs a blob write and a trip through the streams. */
const READ_CHUNK = 1 << 20;
const OCI_BLOB = /^blobs\/sha256\/([0-9a-f]{64})$/;

/**
 * Reads a docker-archive or OCI layout (directory, tar, or tar stream, optionally gzipped) into the
 * store under `ctx.lease`, and returns the images it holds, ready to commit. Nothing is tagged here.
 */
export async function readArchive(input: string | Readable, ctx: IngestContext, signal?: AbortSignal): Promise<PreparedImage[]> {
  signal?.throwIfAborted();
  const files = typeof input === 'string' && (await isDirectory(input)) ? dirFiles(input, ctx, signal) : await tarFiles(input, ctx, signal);
  const manifestJson = await files.meta('manifest.json');
  if (manifestJson) return dockerImages(parseJson(manifestJson, `${files.label}: manifest.json`), files, ctx);
  const indexJson = await files.meta('index.json');
  if (indexJson) return ociImages(parseJson(indexJson, `${files.label}: index.json`), files, ctx);
  throw new InvalidArgumentError('archive', `${files.label} is not an image archive: it has neither manifest.json (docker-archive) nor index.json (OCI layout)`,
    'give a file written by "docker save", "podman save" or "berth save", or an OCI image layout');
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await fsp.stat(p)).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new InvalidArgumentError('input', `${p} does not exist`, 'give the path of an image archive');
    throw err;
  }
}

// ------------------------------------------------------------------ docker-archive

interface DockerManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

async function dockerImages(entries: unknown, files: ArchiveFiles, ctx: IngestContext): Promise<PreparedImage[]> {
  if (!Array.isArray(entries) || !entries.every(isDockerEntry)) {
    throw new CorruptError(`${files.label}: manifest.json is not a list of {Config, RepoTags, Layers}`, 'the archive is damaged; save it again');
  }
  const out: PreparedImage[] = [];
  for (const e of entries) {
    const tags = (e.RepoTags ?? []).map(parseTagTarget);
    const cfgBlob = await files.blob(e.Config, { digest: impliedDigest(e.Config, /^([0-9a-f]{64})\.json$/) });
    const config = await readConfig(ctx, cfgBlob, files.label);
    checkLayerCount(config, e.Layers.length, `${files.label}: ${e.Config}`);
    const layers = [];
    for (const [i, name] of e.Layers.entries()) {
      files.signal?.throwIfAborted();
      const blob = await files.blob(name, { digest: impliedDigest(name, OCI_BLOB) });
      layers.push(await unpackLayer(ctx, blob, config.rootfs.diff_ids[i]!));
    }
    out.push(await prepareWithNewManifest(ctx, config, layers, tags, cfgBlob));
  }
  return out;
}

function isDockerEntry(e: unknown): e is DockerManifestEntry {
  const x = e as DockerManifestEntry;
  return !!x && typeof x.Config === 'string' && Array.isArray(x.Layers) && x.Layers.every((l) => typeof l === 'string')
    && (x.RepoTags == null || (Array.isArray(x.RepoTags) && x.RepoTags.every((t) => typeof t === 'string')));
}

function impliedDigest(name: string, re: RegExp): Digest | undefined {
  const hex = re.exec(normalizeName(name))?.[1];
  return hex ? (`sha256:${hex}` as Digest) : undefined;
}

// ------------------------------------------------------------------ OCI layout

async function ociImages(index: unknown, files: ArchiveFiles, ctx: IngestContext): Promise<PreparedImage[]> {
  const idx = index as OciIndex;
  if (!idx || !Array.isArray(idx.manifests)) throw new CorruptError(`${files.label}: index.json has no manifests list`, 'the layout is damaged; save it again');
  const out: PreparedImage[] = [];
  for (const desc of idx.manifests) {
    checkDescriptor(desc, `${files.label}: index.json`);
    const tags = descriptorTags(desc);
    for (const m of await manifestsOf(desc, files, ctx)) out.push(await ociImage(m, tags, files, ctx));
  }
  return mergeSameImage(out);
}

/** An index inside the layout (multi-platform image) yields the manifest for this host's platform. */
async function manifestsOf(desc: Descriptor, files: ArchiveFiles, ctx: IngestContext): Promise<Descriptor[]> {
  if (MANIFEST_MEDIA_TYPES.has(desc.mediaType)) return [desc];
  if (!INDEX_MEDIA_TYPES.has(desc.mediaType)) throw new CorruptError(`${files.label}: unsupported media type ${desc.mediaType} for ${desc.digest}`, 'only OCI and Docker v2 manifests are supported');
  const blob = await files.blob(blobName(desc.digest), { digest: desc.digest, size: desc.size });
  const inner = parseJson(await readSmall(ctx, blob, `${files.label}: index ${desc.digest}`), `${files.label}: index ${desc.digest}`) as OciIndex;
  const arch = ociArchitecture();
  const mine = (inner.manifests ?? []).filter((m) => !m.platform || (m.platform.architecture === arch && m.platform.os === 'linux'));
  if (!mine.length) throw new InvalidArgumentError('archive', `${files.label}: image ${desc.digest} has no linux/${arch} variant`, 'save the image for this machine\'s platform');
  return manifestsOf(mine[0]!, files, ctx);
}

async function ociImage(desc: Descriptor, tags: string[], files: ArchiveFiles, ctx: IngestContext): Promise<PreparedImage> {
  const mBlob = await files.blob(blobName(desc.digest), { digest: desc.digest, size: desc.size });
  const manifest = parseJson(await readSmall(ctx, mBlob, `${files.label}: manifest ${desc.digest}`), `${files.label}: manifest ${desc.digest}`) as OciManifest;
  if (!manifest?.config || !Array.isArray(manifest.layers)) throw new CorruptError(`${files.label}: manifest ${desc.digest} has no config or layers`, 'the layout is damaged; save it again');
  checkDescriptor(manifest.config, `manifest ${desc.digest}`);
  const cfgBlob = await files.blob(blobName(manifest.config.digest), { digest: manifest.config.digest, size: manifest.config.size });
  const config = await readConfig(ctx, cfgBlob, files.label);
  checkLayerCount(config, manifest.layers.length, `${files.label}: manifest ${desc.digest}`);
  const layers = [];
  for (const [i, l] of manifest.layers.entries()) {
    files.signal?.throwIfAborted();
    checkDescriptor(l, `manifest ${desc.digest}`);
    const blob = await files.blob(blobName(l.digest), { digest: l.digest, size: l.size });
    layers.push(await unpackLayer(ctx, blob, config.rootfs.diff_ids[i]!, l.mediaType));
  }
  return { manifestDigest: mBlob.digest, manifestMediaType: manifest.mediaType ?? desc.mediaType, configDigest: cfgBlob.digest, config, layers, tags };
}

/** `io.containerd.image.name` holds a full name; ref.name may be a bare tag, which names nothing here. */
function descriptorTags(desc: Descriptor): string[] {
  const a = desc.annotations ?? {};
  const full = a[CONTAINERD_NAME_ANNOTATION] ?? a[REF_NAME_ANNOTATION];
  if (!full) return [];
  if (!full.includes('/') && !full.includes(':') && a[CONTAINERD_NAME_ANNOTATION] === undefined) return [];
  return [parseTagTarget(full)];
}

/** One index entry per tag is usual; fold them into one image with every tag. */
function mergeSameImage(images: PreparedImage[]): PreparedImage[] {
  const byId = new Map<string, PreparedImage>();
  for (const img of images) {
    const seen = byId.get(img.configDigest);
    if (seen) seen.tags.push(...img.tags.filter((t) => !seen.tags.includes(t)));
    else byId.set(img.configDigest, { ...img, tags: [...img.tags] });
  }
  return [...byId.values()];
}

function blobName(d: Digest): string {
  return `blobs/sha256/${d.slice('sha256:'.length)}`;
}

function checkDescriptor(d: Descriptor, where: string): void {
  if (!d || typeof d.mediaType !== 'string' || typeof d.digest !== 'string' || !isDigest(d.digest) || !Number.isInteger(d.size) || d.size < 0) {
    throw new CorruptError(`${where}: invalid descriptor ${JSON.stringify(d)}`, 'only sha256 descriptors with a media type and size are supported');
  }
}

// ------------------------------------------------------------------ shared checks

/** JSON blobs are read whole: one bigger than any real manifest or config is refused, not read. */
async function readSmall(ctx: IngestContext, blob: BlobInfo, what: string): Promise<Buffer> {
  if (blob.size > META_LIMIT) {
    throw new CorruptError(`${what} is ${blob.size} bytes, more than the ${META_LIMIT >> 20} MiB a manifest, index or config may have`, 'the archive is damaged or hostile; save it again from a trusted source');
  }
  return ctx.storage.blobs.read(blob.digest);
}

async function readConfig(ctx: IngestContext, blob: BlobInfo, label: string): Promise<OciImageConfig> {
  const digest = blob.digest;
  const config = parseJson(await readSmall(ctx, blob, `${label}: config ${digest}`), `${label}: config ${digest}`) as OciImageConfig;
  const problems = checkImageConfig(config);
  if (problems.length) {
    throw new CorruptError(`${label}: config ${digest} is not a valid image config: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? `; and ${problems.length - 3} more` : ''}`,
      'the image config does not follow the OCI image spec (config.md); build or save the image again');
  }
  return config;
}

function checkLayerCount(config: OciImageConfig, n: number, where: string): void {
  if (config.rootfs.diff_ids.length !== n) {
    throw new CorruptError(`${where}: ${n} layers but the config lists ${config.rootfs.diff_ids.length} diff_ids`, 'the archive is damaged; save it again');
  }
}

function parseJson(data: Buffer, what: string): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch (err) {
    throw new CorruptError(`${what} is not valid JSON`, 'the archive is damaged; save it again', { cause: err });
  }
}

// ------------------------------------------------------------------ sources

function normalizeName(name: string): string {
  return path.posix.normalize(name).replace(/^(\.\/|\/)+/, '');
}

/** JSON and other small files are read into memory; everything else may be a blob and streams to the store. */
function isMetaName(name: string, size: number): boolean {
  if (size > META_LIMIT || OCI_BLOB.test(name)) return false;
  return name === 'oci-layout' || name === 'repositories' || name.endsWith('.json') || path.posix.basename(name) === 'json' || path.posix.basename(name) === 'VERSION';
}

function dirFiles(dir: string, ctx: IngestContext, signal?: AbortSignal): ArchiveFiles {
  const label = dir;
  const resolve = (name: string) => {
    const rel = normalizeName(name);
    if (rel.startsWith('..')) throw new CorruptError(`${label}: path ${name} points outside the layout`, 'the archive is damaged or malicious');
    return path.join(dir, rel);
  };
  const missing = (name: string, err: unknown) => new CorruptError(`${label}: names ${name}, which it does not contain`, 'the archive is incomplete; save it again', { cause: err });
  return {
    label,
    signal,
    async meta(name) {
      const st = await fsp.stat(resolve(name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (!st) return undefined;
      if (st.size > META_LIMIT) throw new CorruptError(`${label}: ${name} is ${st.size} bytes, more than the ${META_LIMIT >> 20} MiB it may have`, 'the layout is damaged or hostile; save it again from a trusted source');
      return fsp.readFile(resolve(name));
    },
    async blob(name, expected) {
      const file = resolve(name);
      const st = await fsp.stat(file).catch((err) => { throw missing(name, err); });
      if (!st.isFile()) throw missing(name, undefined);
      if (expected?.digest) await ctx.lease.addBlob(expected.digest);
      signal?.throwIfAborted();
      const info = await ctx.storage.blobs.ingest(createReadStream(file, { signal }), expected).catch((err: unknown) => {
        throw signal?.aborted ? signal.reason : err;
      });
      await ctx.lease.addBlob(info.digest);
      return info;
    },
  };
}

/**
 * Streams a tar once: every file that may be a blob goes to the blob store as it passes (OCI blobs
 * checked against their names right away); manifests are read afterwards, whatever their position.
 */
async function tarFiles(input: string | Readable, ctx: IngestContext, signal?: AbortSignal): Promise<ArchiveFiles> {
  const label = typeof input === 'string' ? input : 'archive stream';
  const meta = new Map<string, Buffer>();
  const blobs = new Map<string, BlobInfo>();
  // docker save (before 25) writes a symlink for a layer it already wrote under another ID.
  const links = new Map<string, string>();
  const follow = (name: string) => {
    let key = normalizeName(name);
    for (let i = 0; i < 8 && links.has(key); i++) key = links.get(key)!;
    return key;
  };
  const extract = tar.extract();
  const src = await decompressed(typeof input === 'string' ? createReadStream(input, { highWaterMark: READ_CHUNK }) : input);
  // A source that ran out inside an entry is a truncated archive: tar-stream says so only in an error's
  // text, so tell it by where the error came from (the extract, on its own, after the source's end).
  let srcEnded = false;
  let truncated = false;
  src.once('end', () => { srcEnded = true; });
  extract.once('error', (err: unknown) => { truncated = srcEnded && !isBerthError(err) && !(err as NodeJS.ErrnoException).syscall; });
  const piping = pipeline(src, extract, { signal });
  // Awaited below; the handler only keeps an early failure from counting as unhandled meanwhile.
  piping.catch(() => {});
  let entries = 0;
  let metaBytes = 0;
  // A blob's last steps (fsync, rename, the end of its unpack) overlap the next entry: tar-stream
  // emits that one only once this entry's bytes have all been taken, so order and memory stay bounded.
  const storing: Promise<void>[] = [];
  let storeFailure: { err: unknown } | undefined;
  try {
    for await (const entry of extract) {
      if (storeFailure) throw storeFailure.err;
      entries++;
      const name = normalizeName(entry.header.name);
      const size = entry.header.size ?? 0;
      const { type, linkname } = entry.header;
      if (type === 'symlink' || type === 'link') {
        links.set(name, normalizeName(type === 'symlink' ? path.posix.join(path.posix.dirname(name), linkname) : linkname));
      }
      if (type !== 'file' && type !== 'contiguous-file') entry.resume();
      else if (isMetaName(name, size) && metaBytes + size <= META_TOTAL) {
        metaBytes += size;
        meta.set(name, await readAll(entry as unknown as EntryBody));
      }
      else {
        const stored = ingestEntry(ctx, entry as unknown as EntryBody, name, size, label).then((info) => { blobs.set(name, info); });
        stored.catch((err: unknown) => { storeFailure ??= { err }; });
        storing.push(stored);
      }
    }
    await piping;
    await Promise.all(storing);
  } catch (err) {
    // Nothing may still be writing when the caller collects what this import left behind.
    await Promise.allSettled(storing);
    if (signal?.aborted) throw signal.reason;
    // The machine's failure (a full disk), not the archive's: the caller says where.
    const machine = causes(err).find((e) => (e as NodeJS.ErrnoException).syscall);
    if (machine) throw machine;
    if (truncated || causes(err).some((e) => (e as { code?: unknown }).code === 'Z_BUF_ERROR')) {
      throw new CorruptError(`${label}: unexpected end of archive: it is truncated`, 'the archive is incomplete; save or copy it again', { cause: err });
    }
    if (isBerthError(err)) throw err;
    if (entries === 0) throw new InvalidArgumentError('archive', `${label} is not a tar archive (${(err as Error).message})`, 'give a file written by "docker save", "podman save" or "berth save"', { cause: err });
    throw new CorruptError(`${label} is damaged or truncated: ${(err as Error).message}`, 'the archive is incomplete; save or copy it again', { cause: err });
  }
  return {
    label,
    signal,
    async meta(name) {
      const key = follow(name);
      const stored = blobs.get(key);
      return meta.get(key) ?? (stored && readSmall(ctx, stored, `${label}: ${name}`));
    },
    async blob(name, expected) {
      const key = follow(name);
      const data = meta.get(key);
      if (data) return putBlob(ctx, data, expected);
      const info = blobs.get(key);
      if (!info) throw new CorruptError(`${label}: names ${name}, which it does not contain`, 'the archive is incomplete; save it again');
      if ((expected?.digest && expected.digest !== info.digest) || (expected?.size !== undefined && expected.size !== info.size)) {
        throw new CorruptError(`${label}: ${name} has digest ${info.digest} (${info.size} bytes), expected ${expected.digest ?? 'any'} (${expected.size ?? 'any'} bytes)`,
          'the archive is damaged; save it again');
      }
      return info;
    },
  };
}

function causes(err: unknown): unknown[] {
  const out: unknown[] = [];
  for (let e = err; e && out.length < 8; e = (e as Error).cause) out.push(e);
  return out;
}

/** A tar entry's content (a streamx Readable, which iterates like a Node one). */
type EntryBody = AsyncIterable<Uint8Array> & { resume(): unknown };

/**
 * Layers come before the manifest in `docker save` output, so whether an entry is a layer is unknown as
 * it passes: each is unpacked speculatively while it is stored (one read of the archive instead of two),
 * under the lease; what no manifest names is collected with the import's other leftovers.
 */
async function ingestEntry(ctx: IngestContext, entry: EntryBody, name: string, size: number, label: string): Promise<BlobInfo> {
  const digest = OCI_BLOB.test(name) ? (`sha256:${OCI_BLOB.exec(name)![1]}` as Digest) : undefined;
  if (digest) await ctx.lease.addBlob(digest);
  let info: BlobInfo;
  try {
    ({ blob: info } = await ctx.storage.ingestLayer(entry, { size, ...(digest && { digest }) }, { beforeCommit: (d) => ctx.lease.addLayer(d) }));
  } catch (err) {
    entry.resume();
    if (err instanceof CorruptError) throw new CorruptError(`${label}: ${name}: ${err.message}`, err.hint, { cause: err });
    throw err;
  }
  await ctx.lease.addBlob(info.digest);
  return info;
}

async function readAll(entry: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of entry) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/** `docker load` takes gzipped archives too; the first two bytes tell. */
async function decompressed(src: Readable): Promise<Readable> {
  const it = src[Symbol.asyncIterator]();
  const first = await it.next();
  const head: Buffer = first.done ? Buffer.alloc(0) : Buffer.from(first.value as Uint8Array);
  const rest = Readable.from((async function* () {
    if (head.length) yield head;
    for (;;) {
      const n = await it.next();
      if (n.done) return;
      yield Buffer.from(n.value as Uint8Array);
    }
  })());
  if (head[0] !== 0x1f || head[1] !== 0x8b) return rest;
  const gunzip = createGunzip();
  rest.on('error', (err) => gunzip.destroy(err));
  return rest.pipe(gunzip);
}
