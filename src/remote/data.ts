/**
 * The calls of a remote engine that carry data or progress: docker cp (the archive endpoints, with Docker's
 * landing rules applied here, on the client's side, as the docker CLI does), build (the context sent as a
 * tar), load/save, pull/push and events (dockerd's JSON lines read back into Berth's typed events).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extractArgs, hostDest, landing, renameTransform, XATTRS } from '../container/copy.js';
import { InvalidArgumentError, NotFoundError, RemoteError, RuntimeError } from '../errors.js';
import type {
  ArchiveFormat, BuildEvent, BuildOptions, BuildResult, ContainerInspect, CopyOptions, CopyResult, EngineEvent, PathStat, PullOptions, PullResult, PushOptions, PushResult,
  TransferEvent,
} from '../types.js';
import { spawnTar, tarWarnings } from '../util/tar.js';
import { checkSecrets, REMOTE_SECRETS_DIR } from '../build/index.js';
import { resolveReference } from '../registry/names.js';
import { authHeader, localLoginFor, registryConfigHeader } from './auth.js';
import type { ApiClient, CallSubject } from './client.js';

type Json = Record<string, any>;
const seg = encodeURIComponent;

/**
 * The body of a JSON-lines answer, one object at a time with its text (`raw`: an int64 such as timeNano
 * does not fit a JS number); an `{"error"}` line is thrown (after `subject`).
 */
export async function* jsonLinesOf(client: ApiClient, res: IncomingMessage, subject: CallSubject = {}): AsyncGenerator<Json & { raw: string }> {
  let pending = '';
  const parse = (line: string): (Json & { raw: string }) | undefined => {
    if (!line.trim()) return undefined;
    const obj = JSON.parse(line) as Json;
    if (typeof obj.error === 'string') throw client.refusal(500, obj.error, subject);
    return Object.assign(obj, { raw: line });
  };
  for await (const chunk of res) {
    pending += (chunk as Buffer).toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      const obj = parse(line);
      if (obj) yield obj;
    }
  }
  const last = parse(pending);
  if (last) yield last;
}

// ------------------------------------------------------------------ cp

/** The HEAD archive's stat (Go's FileMode: bit 31 a folder, bit 27 a link). */
async function statIn(client: ApiClient, id: string, name: string, cpath: string): Promise<(PathStat & { isDir: boolean; isLink: boolean }) | undefined> {
  const res = await client.request('HEAD', `/containers/${seg(id)}/archive`, { kind: 'file', ref: `${cpath} in container ${name}`, query: { path: cpath } }).catch((err: unknown) => {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  });
  if (!res) return undefined;
  res.resume();
  const st = JSON.parse(Buffer.from(String(res.headers['x-docker-container-path-stat'] ?? ''), 'base64').toString('utf8') || '{}') as PathStat;
  if (typeof st.mode !== 'number') throw new RuntimeError(`${client.uri} answered no stat for ${cpath} in container ${name}`, 'check that the remote is a Berth or Docker engine');
  return { ...st, isDir: (st.mode >>> 31) === 1, isLink: ((st.mode >>> 27) & 1) === 1 };
}

/** docker container stat: the HEAD archive's stat of `cpath` (absolute in the container). */
export async function statPath(client: ApiClient, ref: string, cpath: string): Promise<PathStat> {
  const { id, name } = await containerOf(client, ref);
  const st = await statIn(client, id, name, absolute(cpath));
  if (!st) throw new NotFoundError('file', `${absolute(cpath)} in container ${name}`, 'check the path with "berth exec CONTAINER ls"');
  const { isDir: _d, isLink: _l, ...stat } = st;
  return { ...stat, mode: statMode(st.mode) };
}

/** Go's os.FileMode (the API's stat) as the st_mode Berth's PathStat holds: the inverse of the service's. */
function statMode(go: number): number {
  const bit = (n: number) => ((go >>> n) & 1) === 1;
  const type = bit(31) ? 0o040000 : bit(27) ? 0o120000 : bit(26) ? (bit(21) ? 0o020000 : 0o060000) : bit(25) ? 0o010000 : bit(24) ? 0o140000 : 0o100000;
  return type | (go & 0o777) | (bit(23) ? 0o4000 : 0) | (bit(22) ? 0o2000 : 0) | (bit(20) ? 0o1000 : 0);
}

/** The container's ID and name: a 404 after this is the path's, not the container's. */
async function containerOf(client: ApiClient, ref: string): Promise<{ id: string; name: string }> {
  const c = await client.json<ContainerInspect>('GET', `/containers/${seg(ref)}/json`, { kind: 'container', ref });
  return { id: c.Id, name: c.Name.replace(/^\//, '') };
}

function absolute(p: string): string {
  return path.posix.resolve('/', p);
}

/** Counts the bytes that pass. */
function counter(): Transform & { bytes: number } {
  const t = new Transform({ transform(chunk: Buffer, _enc, cb) { t.bytes += chunk.length; cb(null, chunk); } }) as Transform & { bytes: number };
  t.bytes = 0;
  return t;
}

export async function copyFrom(client: ApiClient, ref: string, src: string, dest: string | Writable, opts: CopyOptions = {}): Promise<CopyResult> {
  const { id, name } = await containerOf(client, ref);
  const cpath = absolute(src);
  const contents = /(^|\/)\.$/.test(src);
  const st = await statIn(client, id, name, cpath);
  if (!st) throw new NotFoundError('file', `${cpath} in container ${name}`, 'check the path with "berth exec CONTAINER ls"');
  // -L: the link's target is what is copied, under the link's name (docker CLI's resolveLocalPath).
  const follow = st.isLink && (!!opts.followLink || contents || src.endsWith('/'));
  const from = follow ? (path.posix.isAbsolute(st.linkTarget) ? st.linkTarget : path.posix.join(path.posix.dirname(cpath), st.linkTarget)) : cpath;
  const isDir = follow ? !!(await statIn(client, id, name, from))?.isDir : st.isDir;
  if ((src.endsWith('/') || contents) && !isDir) throw new InvalidArgumentError('path', `${cpath} in container ${name} is not a directory`);
  const res = await client.request('GET', `/containers/${seg(id)}/archive`, { kind: 'file', ref: `${cpath} in container ${name}`, query: { path: contents ? `${from}/.` : from } });
  if (typeof dest !== 'string') {
    const count = counter();
    await pipeline(res, count, dest, { end: false });
    return { bytes: count.bytes, warnings: [] };
  }
  const want = cpath === '/' ? '.' : path.posix.basename(cpath);
  const top = contents || from === '/' ? '.' : path.posix.basename(from);
  const to = landing({ isDir, contents: contents || want === '.', name: want }, await hostDest(dest), dest);
  if (want === '.' && !to.contents) await fsp.mkdir(path.join(to.dir, to.as ?? '.'), { recursive: true });
  const target = want === '.' && !to.contents ? { dir: path.join(to.dir, to.as ?? '.'), contents: true } : { ...to, as: to.as ?? (top !== want ? want : undefined) };
  const writer = spawnTar(['-x', '-f', '-', '-C', target.dir, ...extractArgs(target, top, !!opts.archive)], 'pipe');
  // tar stops reading at the archive's end marker, before the record's padding: the pipe closing then is
  // no failure; tar's own status says whether the copy worked.
  let bytes = 0;
  res.on('data', (chunk: Buffer) => { bytes += chunk.length; });
  writer.child.stdin!.on('error', () => res.destroy());
  res.pipe(writer.child.stdin!);
  try {
    const warnings = tarWarnings(await writer.done);
    if (!res.complete && !res.destroyed) res.destroy();
    return { bytes, warnings };
  } catch (err) {
    res.destroy();
    throw err;
  }
}

export async function copyTo(client: ApiClient, ref: string, dest: string, src: string | Readable, opts: CopyOptions = {}): Promise<CopyResult> {
  const { id, name } = await containerOf(client, ref);
  const cpath = absolute(dest);
  const where = `${name}:${cpath}`;
  const put = async (dir: string, body: Readable): Promise<number> => {
    const count = counter();
    const res = await client.request('PUT', `/containers/${seg(id)}/archive`, {
      kind: 'file', ref: `${dir} in container ${name}`, query: { path: dir, noOverwriteDirNonDir: true, copyUIDGID: opts.archive || undefined }, stream: body.pipe(count),
    });
    res.resume();
    return count.bytes;
  };
  if (typeof src !== 'string') return { bytes: await put(cpath, src), warnings: [] };
  const host = opts.followLink ? await fsp.realpath(src).catch(() => src) : src;
  const hst = await fsp.lstat(host).catch((err: unknown) => {
    throw new NotFoundError('file', `${src} on the host`, 'check the path', { cause: err });
  });
  const source = { host: path.resolve(host), name: path.basename(path.resolve(src)), isDir: hst.isDirectory(), contents: /(^|\/)\.$/.test(src) };
  const st = await statIn(client, id, name, cpath);
  if (!st) {
    const parent = await statIn(client, id, name, path.posix.dirname(cpath));
    if (!parent?.isDir) throw new NotFoundError('file', `${path.posix.dirname(cpath)} in container ${name}`, 'create the folder first');
  }
  const to = landing(source, { path: cpath, isDir: st?.isDir, exists: !!st, slash: dest.endsWith('/') }, where);
  const top = path.basename(source.host);
  const as = to.contents ? undefined : to.as ?? source.name;
  const reader = spawnTar(['-c', '-f', '-', '--numeric-owner', ...XATTRS,
    ...(to.contents ? ['-C', source.host, '--', '.'] : ['-C', path.dirname(source.host), ...(as !== top ? [renameTransform(top, as!)] : []), '--', top])], 'ignore');
  try {
    const bytes = await put(to.dir, reader.child.stdout!);
    return { bytes, warnings: tarWarnings(await reader.done) };
  } catch (err) {
    reader.child.kill('SIGKILL');
    await reader.done.catch(() => undefined);
    throw err;
  }
}

// ------------------------------------------------------------------ build

/**
 * POST /build with the context as a tar. A Dockerfile given as text, or outside the context folder, goes
 * into the tar under a name of its own, as the docker CLI sends it. The remote writes Docker's classic
 * builder lines; they come back as `note` events, and the end as `done`.
 */
export async function* buildEvents(client: ApiClient, opts: Omit<BuildOptions, 'onProgress'>): AsyncGenerator<BuildEvent> {
  const secrets = opts.secrets ?? [];
  if (secrets.length) {
    if (typeof opts.context !== 'string') throw new InvalidArgumentError('--secret', 'with a context on stdin, the secrets are not sent to a remote host', 'give the context as a folder');
    await checkSecrets(secrets);
    // A dockerd would leave the secrets' folder in the context, where COPY reaches it: only a Berth gets them.
    const version = await client.json<{ Platform?: { Name?: string } }>('GET', '/version');
    if (version.Platform?.Name !== 'Berth') {
      throw new InvalidArgumentError('--secret', `${client.uri} is not a Berth engine: the Engine API's classic builder takes no secrets, and the files would land in the build context`, 'build without --secret, or on a Berth host');
    }
  }
  let dockerfile = typeof opts.dockerfile === 'string' ? opts.dockerfile : undefined;
  let extra: { name: string; text: string } | undefined;
  if (typeof opts.context === 'string') {
    const dir = path.resolve(opts.context);
    const st = await fsp.stat(dir).catch(() => undefined);
    if (!st?.isDirectory()) throw new NotFoundError('file', `${opts.context} (the build context)`, 'give the folder that holds the Dockerfile');
    if (dockerfile !== undefined) {
      const rel = path.relative(dir, path.resolve(dockerfile));
      if (rel.startsWith('..') || path.isAbsolute(rel)) extra = { name: '', text: await fsp.readFile(dockerfile, 'utf8') };
      else dockerfile = rel;
    }
  } else if (dockerfile !== undefined && path.isAbsolute(dockerfile)) {
    throw new InvalidArgumentError('--file', `${dockerfile}: with a context on stdin, -f names a file inside the tar`, 'give the path inside the archive');
  }
  if (typeof opts.dockerfile === 'object') extra = { name: '', text: opts.dockerfile.text };
  if (extra) {
    extra.name = `.dockerfile.${randomBytes(10).toString('hex')}`;
    dockerfile = extra.name;
  }
  if (extra && typeof opts.context !== 'string') throw new InvalidArgumentError('--file', 'a Dockerfile from stdin needs a context folder', 'give the context as a folder');
  const temp = extra || secrets.length ? await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-remote-build-')) : undefined;
  try {
    if (extra && temp) await fsp.writeFile(path.join(temp, extra.name), extra.text);
    // The secrets go first in the tar: the service takes them off its head before the build starts.
    if (secrets.length && temp) {
      await fsp.mkdir(path.join(temp, REMOTE_SECRETS_DIR), { mode: 0o700 });
      for (const { id, src } of secrets) await fsp.copyFile(src, path.join(temp, REMOTE_SECRETS_DIR, id));
    }
    // Read before the tar starts: with an await between the tar's start and the request, the remote got an empty context.
    const logins = await registryConfigHeader(client);
    const reader = typeof opts.context === 'string'
      ? spawnTar(['-c', '-f', '-', ...(secrets.length && temp ? ['-C', temp, REMOTE_SECRETS_DIR] : []), '-C', path.resolve(opts.context), '.', ...(temp && extra ? ['-C', temp, extra.name] : [])], 'ignore')
      : undefined;
    const body = reader ? reader.child.stdout! : (opts.context as Readable);
    const res = await client.request('POST', '/build', {
      signal: opts.signal, stream: body, contentType: 'application/x-tar', headers: logins,
      query: {
        t: opts.tags?.length ? opts.tags : undefined, dockerfile, target: opts.target, platform: opts.platform,
        buildargs: opts.buildArgs && Object.keys(opts.buildArgs).length ? JSON.stringify(opts.buildArgs) : undefined,
        labels: opts.labels && Object.keys(opts.labels).length ? JSON.stringify(opts.labels) : undefined,
        nocache: opts.noCache || undefined, pull: opts.pull || undefined, networkmode: opts.network, rm: true,
        secrets: secrets.length ? JSON.stringify(secrets.map((x) => x.id)) : undefined,
      },
    });
    let id: string | undefined;
    for await (const line of jsonLinesOf(client, res)) {
      if (typeof line.aux?.ID === 'string') id = line.aux.ID;
      // After the image's ID come only the "Successfully built/tagged" lines: the `done` event says them.
      else if (typeof line.stream === 'string' && id === undefined) {
        for (const text of line.stream.replace(/\n$/, '').split('\n')) yield { type: 'note', message: text };
      }
    }
    if (reader) await reader.done;
    if (!id) throw new RuntimeError(`the build on ${client.uri} ended without an image`, 'see the lines above; run it again');
    if (opts.iidfile) await fsp.writeFile(opts.iidfile, id);
    yield { type: 'done', id: id as BuildResult['id'], tags: opts.tags ?? [] };
  } finally {
    if (temp) await fsp.rm(temp, { recursive: true, force: true });
  }
}

export async function build(client: ApiClient, opts: BuildOptions): Promise<BuildResult> {
  const { onProgress, ...rest } = opts;
  for await (const e of buildEvents(client, rest)) {
    onProgress?.(e);
    if (e.type === 'done') return { id: e.id, tags: e.tags };
  }
  throw new RuntimeError(`the build on ${client.uri} ended without an image`, 'run it again');
}

// ------------------------------------------------------------------ pull, push

const LAYER_WORDS: Record<string, Extract<TransferEvent, { type: 'layer' }>['status']> = {
  'Pulling fs layer': 'waiting', 'Already exists': 'exists', Downloading: 'downloading', 'Verifying Checksum': 'verifying',
  'Download complete': 'downloaded', Extracting: 'extracting', 'Pull complete': 'complete', Retrying: 'retrying',
  Preparing: 'waiting', 'Layer already exists': 'exists', Pushing: 'uploading', Pushed: 'pushed',
};

/** A layer line of dockerd's pull or push, as Berth's event. */
function layerEvent(line: Json): TransferEvent | undefined {
  if (typeof line.id !== 'string' || typeof line.status !== 'string') return undefined;
  if (line.status.startsWith('Mounted from ')) return { type: 'layer', id: line.id, status: 'mounted', from: line.status.slice('Mounted from '.length) };
  const status = LAYER_WORDS[line.status];
  if (!status) return undefined;
  const d = (line.progressDetail ?? {}) as { current?: number; total?: number };
  return { type: 'layer', id: line.id, status, ...(d.current !== undefined && { current: d.current }), ...(d.total !== undefined && { total: d.total }) };
}

function refuseLocalOnly(what: string, opts: { tlsVerify?: boolean }): void {
  if (opts.tlsVerify === false) throw new InvalidArgumentError('--tls-verify', `${what} on a remote host follows that host's insecure-registries, not --tls-verify=false`, 'list the registry in insecure-registries of the remote\'s /etc/berth/berth.json');
}

export async function* pullEvents(client: ApiClient, ref: string, opts: Omit<PullOptions, 'onProgress'> = {}): AsyncGenerator<TransferEvent> {
  refuseLocalOnly('pull', opts);
  const at = ref.lastIndexOf('@');
  const colon = ref.lastIndexOf(':');
  // --all-tags is the name alone with an empty tag, as the docker CLI sends it (dockerd pulls every tag).
  if (opts.allTags && (at >= 0 || colon > ref.lastIndexOf('/'))) {
    throw new InvalidArgumentError('reference', `"${ref}": a tag or digest cannot be given with --all-tags`, 'give the repository name alone');
  }
  const [fromImage, tag] = opts.allTags ? [ref, ''] : at >= 0 ? [ref.slice(0, at), ref.slice(at + 1)] : colon > ref.lastIndexOf('/') ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
  const res = await client.request('POST', '/images/create', {
    kind: 'image', ref, signal: opts.signal, query: { fromImage, tag, platform: opts.platform }, headers: authHeader(opts.credentials ?? await localLoginFor(client, ref)),
  });
  let digest = '';
  for await (const line of jsonLinesOf(client, res, { kind: 'image', ref })) {
    const status = typeof line.status === 'string' ? line.status : '';
    const pulling = /^Pulling from (.+)$/.exec(status);
    if (pulling) {
      const id = String(line.id ?? 'latest');
      yield { type: 'resolving', reference: `${pulling[1]}${id.startsWith('sha256:') ? '@' : ':'}${id}`, registry: '' };
      continue;
    }
    if (status.startsWith('Digest: ')) { digest = status.slice('Digest: '.length); continue; }
    const done = /^Status: (Downloaded newer image|Image is up to date) for (.+)$/.exec(status);
    if (done) {
      const reference = done[2]!;
      const image = await client.json<{ Id: string }>('GET', `/images/${reference.split('/').map(seg).join('/')}/json`, { kind: 'image', ref: reference });
      yield { type: 'done', reference, id: image.Id as PullResult['id'], digest: digest as PullResult['digest'], changed: done[1] === 'Downloaded newer image' };
      continue;
    }
    const layer = layerEvent(line);
    if (layer) yield layer;
  }
}

export async function pull(client: ApiClient, ref: string, opts: PullOptions = {}): Promise<PullResult> {
  const { onProgress, ...rest } = opts;
  let result: PullResult | undefined;
  for await (const e of pullEvents(client, ref, rest)) {
    onProgress?.(e);
    if (e.type === 'done') result = { reference: e.reference, id: e.id, digest: e.digest, changed: e.changed };
  }
  if (!result) throw new RuntimeError(`the pull of ${ref} on ${client.uri} ended without its image`, 'run it again');
  // As locally: every tag's pull names the repository.
  return opts.allTags ? { ...result, reference: resolveReference(ref).name } : result;
}

export async function push(client: ApiClient, ref: string, opts: PushOptions = {}): Promise<PushResult> {
  refuseLocalOnly('push', opts);
  const colon = ref.lastIndexOf(':');
  const [name, tag] = colon > ref.lastIndexOf('/') ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
  const res = await client.request('POST', `/images/${name.split('/').map(seg).join('/')}/push`, {
    kind: 'image', ref, signal: opts.signal, query: { tag }, headers: authHeader(opts.credentials ?? await localLoginFor(client, ref)) ?? { 'X-Registry-Auth': Buffer.from('{}').toString('base64url') },
  });
  let result: PushResult | undefined;
  for await (const line of jsonLinesOf(client, res, { kind: 'image', ref })) {
    const repo = /^The push refers to repository \[(.+)\]$/.exec(String(line.status ?? ''));
    if (repo) opts.onProgress?.({ type: 'resolving', reference: `${repo[1]}:${tag}`, registry: '' });
    else if (line.aux && typeof line.aux.Digest === 'string') result = { reference: `${name}:${line.aux.Tag ?? tag}`, digest: line.aux.Digest, size: Number(line.aux.Size ?? 0) };
    else {
      const layer = layerEvent(line);
      if (layer) opts.onProgress?.(layer);
    }
  }
  if (!result) throw new RuntimeError(`the push of ${ref} from ${client.uri} ended without its digest`, 'run it again');
  return result;
}

// ------------------------------------------------------------------ export, load, save

/** A tar answer into a stream, or into a file that appears only when complete (as locally). */
async function tarInto(res: IncomingMessage, output: string | Writable): Promise<void> {
  if (typeof output !== 'string') return pipeline(res, output, { end: false });
  const temp = path.join(path.dirname(path.resolve(output)), `.${path.basename(output)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await pipeline(res, createWriteStream(temp, { mode: 0o644 }));
    await fsp.rename(temp, output);
  } catch (err) {
    await fsp.rm(temp, { force: true });
    throw err;
  }
}

export async function exportTo(client: ApiClient, ref: string, output: string | Writable): Promise<void> {
  await tarInto(await client.request('GET', `/containers/${seg(ref)}/export`, { kind: 'container', ref }), output);
}


/**
 * docker load. An OCI layout folder (which the local load reads as it is) is sent as a tar of its
 * entries, the names the layout gives them, as the remote reads an oci-archive.
 */
export async function load(client: ApiClient, input: string | Readable, opts: { signal?: AbortSignal } = {}): Promise<{ loaded: string[] }> {
  let body: Readable;
  let reader: ReturnType<typeof spawnTar> | undefined;
  if (typeof input === 'string') {
    const st = await fsp.stat(input).catch((err: unknown) => { throw new NotFoundError('file', input, 'give the path of an image archive', { cause: err }); });
    if (st.isDirectory()) {
      const entries = await fsp.readdir(input);
      if (!entries.includes('index.json') && !entries.includes('manifest.json')) {
        throw new InvalidArgumentError('archive', `${input} is not an image archive: it has neither manifest.json (docker-archive) nor index.json (OCI layout)`, 'give a folder written by "berth save --format oci-dir", or an OCI image layout');
      }
      reader = spawnTar(['-c', '-f', '-', '-C', input, '--', ...entries.sort()], 'ignore');
      body = reader.child.stdout!;
    } else {
      body = createReadStream(input);
    }
  } else {
    body = input;
  }
  try {
    const res = await client.request('POST', '/images/load', { stream: body, contentType: 'application/x-tar', signal: opts.signal, query: { quiet: true } });
    const loaded: string[] = [];
    for await (const line of jsonLinesOf(client, res)) {
      const m = typeof line.stream === 'string' ? /^Loaded image(?: ID)?: (.+)$/m.exec(line.stream) : null;
      if (m) loaded.push(m[1]!.trim());
    }
    await reader?.done;
    return { loaded };
  } catch (err) {
    reader?.child.kill('SIGKILL');
    await reader?.done.catch(() => undefined);
    throw err;
  }
}

/**
 * docker import: the tar (a file here, or stdin) is the body of POST /images/create?fromSrc=-; the answer's
 * last status is the image's ID. The history's comment names the file as a local import does.
 */
export async function importImage(client: ApiClient, input: string | Readable, opts: { reference?: string; changes?: string[]; message?: string } = {}): Promise<string> {
  let body: Readable;
  if (typeof input === 'string') {
    // Checked here, where the file is: the local import's words for a file it cannot read.
    const st = await fsp.stat(input).catch((err: unknown) => {
      throw new InvalidArgumentError('input', `cannot read ${input}: ${(err as Error).message}`, 'give the path of a tar file', { cause: err });
    });
    if (st.isDirectory()) throw new InvalidArgumentError('input', `${input} is a folder, not a tar file`, 'give the path of a tar file (tar -C DIR -c . > FILE.tar for a folder)');
    body = createReadStream(input);
  } else {
    body = input;
  }
  const { repo, tag } = opts.reference ? repoTag(opts.reference) : { repo: undefined, tag: undefined };
  const res = await client.request('POST', '/images/create', {
    stream: body, contentType: 'application/x-tar',
    query: { fromSrc: '-', repo, tag, message: opts.message ?? `Imported from ${typeof input === 'string' ? input : '-'}`, changes: opts.changes?.length ? opts.changes : undefined },
  });
  let id: string | undefined;
  for await (const line of jsonLinesOf(client, res)) if (typeof line.status === 'string' && /^sha256:[0-9a-f]{64}$/.test(line.status)) id = line.status;
  if (!id) throw new RuntimeError(`the import on ${client.uri} ended without an image`, 'run it again');
  return id;
}

/** `NAME[:TAG]` as the API's repo and tag (a port's colon is not a tag's). */
export function repoTag(ref: string): { repo: string; tag: string | undefined } {
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) } : { repo: ref, tag: undefined };
}

/**
 * docker save. oci-archive and oci-dir are asked of a Berth service with its `format=` (the Engine API
 * itself sends docker-archive only); the answer's header must say it was honoured, and an oci-dir is the
 * oci-archive unpacked here, index.json last as the archive holds it, as a local save writes the folder.
 */
export async function save(client: ApiClient, refs: string[], output: string | Writable, opts: { format?: ArchiveFormat } = {}): Promise<void> {
  const format = opts.format ?? 'docker-archive';
  if (format === 'oci-dir' && typeof output !== 'string') throw new InvalidArgumentError('output', 'an oci-dir needs a directory path, not a stream', 'give a directory path, or use oci-archive');
  const wire = format === 'oci-dir' ? 'oci-archive' : format;
  // Each name checked first, as locally: a missing one is a NotFound, not a tar cut short.
  for (const ref of refs) await client.json('GET', `/images/${ref.split('/').map(seg).join('/')}/json`, { kind: 'image', ref });
  const res = await client.request('GET', '/images/get', { query: { names: refs, format: wire === 'docker-archive' ? undefined : wire } });
  const sent = String(res.headers['x-berth-archive-format'] ?? 'docker-archive');
  if (sent !== wire) {
    res.destroy();
    throw new RemoteError('protocol', client.uri, `${client.uri} saved a ${sent}, not the ${format} asked for: only a Berth engine (this version or newer) saves OCI archives`,
      'save as docker-archive (the default), or upgrade Berth there');
  }
  if (format !== 'oci-dir') return tarInto(res, output);
  await fsp.mkdir(output as string, { recursive: true });
  const writer = spawnTar(['-x', '-f', '-', '-C', output as string, '--no-same-owner', '--no-same-permissions'], 'pipe');
  try {
    await pipeline(res, writer.child.stdin!);
    await writer.done;
  } catch (err) {
    writer.child.kill('SIGKILL');
    await writer.done.catch(() => undefined);
    throw err;
  }
}

// ------------------------------------------------------------------ events

/** timeNano (or time) of a Docker event as RFC 3339 with nanoseconds, read from the line's text. */
function eventTime(line: Json & { raw: string }): string {
  const nano = /"timeNano":\s*(\d+)/.exec(line.raw);
  const ns = nano ? BigInt(nano[1]!) : BigInt(Number(line.time ?? 0)) * 1_000_000_000n;
  const secs = ns / 1_000_000_000n;
  const iso = new Date(Number(secs) * 1000).toISOString().replace(/\.\d{3}Z$/, '');
  return `${iso}.${String(ns % 1_000_000_000n).padStart(9, '0')}Z`;
}

export async function* events(client: ApiClient, query: Record<string, string | undefined>, signal?: AbortSignal): AsyncGenerator<EngineEvent> {
  const res = await client.request('GET', '/events', { query, ...(signal && { signal }) });
  try {
    for await (const line of jsonLinesOf(client, res)) {
      yield { time: eventTime(line), type: line.Type, action: line.Action, id: line.Actor?.ID ?? line.id ?? '', attributes: line.Actor?.Attributes ?? {} };
    }
  } catch (err) {
    if (signal?.aborted) return;
    if (err instanceof RemoteError || !(err as NodeJS.ErrnoException).code) throw err;
    throw new RemoteError('dropped', client.uri, `the event stream from ${client.uri} broke off: ${(err as Error).message}`, 'run the command again', { cause: err });
  }
  if (!res.complete && !signal?.aborted) throw new RemoteError('dropped', client.uri, `the event stream from ${client.uri} broke off`, 'run the command again');
}
