/**
 * `pull`: a reference → manifest (an index narrowed to one platform) → config → layers, each verified by
 * digest and size as it enters the image store, which records the image last (ImageStore.ingestPulled):
 * a pull killed at any point leaves no record, and the next one finds the blobs and layers it completed.
 */
import { CorruptError, InvalidArgumentError, RegistryError } from '../errors.js';
import type { Digest } from '../ids.js';
import { checkImageConfig, type ImageStore, type OciImageConfig, type PulledImage, type PullWriter } from '../image/index.js';
import { failpoint } from '../util/failpoint.js';
import type { FetchedManifest, PullOptions, PullResult, RegistrySession, RemoteReference, TransferEvent } from './index.js';
import { ACCEPTED_MANIFESTS, hostPlatform, parseManifest, parsePlatform, selectPlatform, type Descriptor, type ParsedManifest } from './manifest.js';
import { POOL, fetchSmall, pool, resumableBlob, shortDigest, type RegistryAccess } from './transfer.js';
import { sha256 } from '../image/oci.js';
import { DEFAULT_TAG } from '../image/reference.js';

/** A config is JSON read whole; one bigger than this is refused before it is fetched. */
const CONFIG_LIMIT = 8 << 20;


/** `pull REF`, or every tag of REF's repository with `allTags`; the last image's result. */
export async function pullImage(access: RegistryAccess, store: ImageStore, text: string, opts: PullOptions = {}): Promise<PullResult> {
  // A short name is looked for in each unqualified-search registry in turn, as Podman does: one that
  // lacks the image or cannot be reached hands over to the next; the first failure is the one reported
  // when none has it (it names the registry the user most likely meant).
  const candidates = access.candidates(text);
  let first: unknown;
  for (const ref of candidates) {
    try {
      return await pullFrom(access, store, text, ref, opts);
    } catch (err) {
      const handOver = err instanceof RegistryError && (err.reason === 'not-found' || err.reason === 'unreachable');
      if (!handOver) throw err;
      first ??= err;
    }
  }
  throw first;
}

async function pullFrom(access: RegistryAccess, store: ImageStore, text: string, ref: RemoteReference, opts: PullOptions): Promise<PullResult> {
  // Checked before any request: a bad --platform is the user's mistake, not the registry's.
  const platform = opts.platform ? parsePlatform(opts.platform) : hostPlatform();
  const emit = opts.onProgress ?? (() => {});
  if (opts.allTags && (ref.tag || ref.digest)) {
    throw new InvalidArgumentError('reference', `"${text}": a tag or digest cannot be given with --all-tags`, 'give the repository name alone');
  }
  const sessions = await access.pullSessions(ref, { actions: ['pull'], tlsVerify: opts.tlsVerify, signal: opts.signal, ...(opts.credentials && { credentials: opts.credentials }) });
  try {
    if (!opts.allTags) return await pullOne(store, sessions, ref.tag || ref.digest ? ref : { ...ref, tag: DEFAULT_TAG }, platform, emit, opts.signal);
    const tags = await firstAnswer(sessions, ref, (s) => s.tags());
    if (!tags.length) throw new RegistryError('not-found', ref.registry, text, 'the repository has no tags', 'push a tag first, or check the name');
    let last: PullResult | undefined;
    for (const tag of tags) last = await pullOne(store, sessions, { ...ref, tag }, platform, emit, opts.signal);
    return { ...last!, reference: ref.name };
  } finally {
    for (const s of sessions) s.close();
  }
}

/** Mirrors first: one that fails or lacks the image hands over to the next, the registry itself last. */
async function firstAnswer<T>(sessions: RegistrySession[], ref: RemoteReference, fn: (s: RegistrySession) => Promise<T>): Promise<T> {
  let failure: unknown;
  for (const [i, s] of sessions.entries()) {
    try {
      return await fn(s);
    } catch (err) {
      const last = i === sessions.length - 1;
      if (last || !(err instanceof RegistryError)) throw err;
      failure = err;
    }
  }
  throw failure ?? new RegistryError('unreachable', ref.registry, ref.name, 'no registry to pull from', 'check the registries configuration');
}

function display(ref: RemoteReference): string {
  return ref.digest ? `${ref.name}@${ref.digest}` : `${ref.name}:${ref.tag}`;
}

async function pullOne(store: ImageStore, sessions: RegistrySession[], ref: RemoteReference, platform: ReturnType<typeof hostPlatform>,
  emit: (e: TransferEvent) => void, signal?: AbortSignal): Promise<PullResult> {
  const reference = display(ref);
  emit({ type: 'resolving', reference, registry: ref.registry });
  const src = { registry: ref.registry, reference };
  const { session, top } = await firstAnswer(sessions, ref, async (s) => ({ session: s, top: await s.manifest(ref.digest ?? ref.tag!, ACCEPTED_MANIFESTS) }));
  checkManifestBytes(top, ref.digest, undefined, src, 'manifest');
  let parsed = parseManifest(top.bytes, top.mediaType, src);
  let manifest = top;
  const extraBlobs: FetchedManifest[] = [];
  if (parsed.kind === 'index') {
    const chosen = selectPlatform(parsed.manifests, platform, src);
    manifest = await session.manifest(chosen.digest, ACCEPTED_MANIFESTS);
    checkManifestBytes(manifest, chosen.digest, chosen.size, src, `manifest for ${chosen.platform?.os}/${chosen.platform?.architecture}`);
    parsed = parseManifest(manifest.bytes, manifest.mediaType, src);
    if (parsed.kind !== 'manifest') throw new RegistryError('protocol', ref.registry, reference, `the index entry ${chosen.digest} is itself an index`, 'nested indexes are not supported');
    extraBlobs.push(top);
  }
  const image = parsed as Extract<ParsedManifest, { kind: 'manifest' }>;
  emit({ type: 'manifest', reference, digest: top.digest, layers: image.layers.length });
  const stop = new AbortController();
  const abortAll = () => stop.abort(signal!.reason);
  signal?.addEventListener('abort', abortAll, { once: true });
  try {
    const { id, changed } = await store.ingestPulled(async (w) => {
      for (const m of [...extraBlobs, manifest]) await w.putBlob(m.bytes, { digest: m.digest, size: m.bytes.length });
      const config = await pullConfig(w, session, image.config, src, stop.signal);
      const layers = await pullLayers(w, session, image.layers, config.rootfs.diff_ids, src, emit, stop);
      const pulled: PulledImage = {
        name: ref.name, ...(ref.tag && !ref.digest ? { tag: `${ref.name}:${ref.tag}` } : {}),
        digest: top.digest, manifestDigest: manifest.digest, manifestMediaType: image.mediaType, configDigest: image.config.digest,
        layers, extraBlobs: extraBlobs.map((b) => b.digest),
      };
      failpoint('registry.pull.before-record');
      return pulled;
    });
    emit({ type: 'done', reference, id, digest: top.digest, changed });
    return { reference, id, digest: top.digest, changed };
  } finally {
    signal?.removeEventListener('abort', abortAll);
  }
}

/** The session checks a manifest fetched by digest; this checks once more, and the size an index gave. */
function checkManifestBytes(m: FetchedManifest, digest: Digest | undefined, size: number | undefined, src: { registry: string; reference: string }, what: string): void {
  const actual = sha256(m.bytes);
  if (actual !== m.digest || (digest && actual !== digest)) {
    throw new RegistryError('protocol', src.registry, src.reference, `the ${what} has digest ${actual}, expected ${digest ?? m.digest}`, 'the registry sent a manifest that does not match its digest; it is damaged or tampered with');
  }
  if (size !== undefined && m.bytes.length !== size) {
    throw new RegistryError('protocol', src.registry, src.reference, `the ${what} is ${m.bytes.length} bytes, the index says ${size}`, 'the registry sent a manifest that does not match its index');
  }
}

async function pullConfig(w: PullWriter, session: RegistrySession, desc: Descriptor, src: { registry: string; reference: string }, signal: AbortSignal): Promise<OciImageConfig> {
  if (desc.size > CONFIG_LIMIT) {
    throw new RegistryError('protocol', src.registry, src.reference, `the image config is ${desc.size} bytes, more than the ${CONFIG_LIMIT >> 20} MiB a config may have`, 'the image is damaged or hostile');
  }
  if (!(await w.hasBlob(desc.digest))) {
    const bytes = await fetchSmall(session, desc.digest, desc.size, `config ${desc.digest}`, signal);
    await w.putBlob(bytes, { digest: desc.digest, size: desc.size });
  }
  let config: OciImageConfig;
  try {
    config = JSON.parse((await w.readBlob(desc.digest)).toString('utf8')) as OciImageConfig;
  } catch (err) {
    throw new RegistryError('protocol', src.registry, src.reference, `config ${desc.digest} is not valid JSON`, 'the image is damaged in the registry', { cause: err });
  }
  const problems = checkImageConfig(config);
  if (problems.length) {
    throw new RegistryError('protocol', src.registry, src.reference, `config ${desc.digest} is not a valid image config: ${problems.slice(0, 3).join('; ')}`, 'the image config does not follow the OCI image spec');
  }
  return config;
}

async function pullLayers(w: PullWriter, session: RegistrySession, descs: readonly Descriptor[], diffIds: readonly Digest[],
  src: { registry: string; reference: string }, emit: (e: TransferEvent) => void, stop: AbortController): Promise<PulledImage['layers']> {
  if (diffIds.length !== descs.length) {
    throw new RegistryError('protocol', src.registry, src.reference, `the manifest has ${descs.length} layers but its config lists ${diffIds.length} diff_ids`, 'the image is damaged in the registry');
  }
  // Those present are announced first, as docker does ("Already exists" before any download starts).
  const present = await Promise.all(descs.map(async (d, i) => (await w.hasLayer(diffIds[i]!)) && (await w.hasBlob(d.digest))));
  for (const [i, d] of descs.entries()) emit({ type: 'layer', id: shortDigest(d.digest), status: present[i] ? 'exists' : 'waiting' });
  let completed = 0;
  const todo = descs.map((d, i) => i).filter((i) => !present[i]);
  await pool(todo, POOL, async (i) => {
    const d = descs[i]!;
    const id = shortDigest(d.digest);
    const what = `layer ${d.digest}`;
    let last = 0;
    const data = resumableBlob(session, d.digest, d.size, what, (received) => {
      // One event per ~1% (and the last): a terminal redraw per chunk costs more than the download.
      if (received - last < d.size / 100 && received !== d.size) return;
      last = received;
      emit({ type: 'layer', id, status: 'downloading', current: received, total: d.size });
    }, () => emit({ type: 'layer', id, status: 'retrying' }), stop.signal);
    emit({ type: 'layer', id, status: 'downloading', current: 0, total: d.size });
    await w.putLayer(data, { digest: d.digest, size: d.size }, diffIds[i]!, d.mediaType).catch((err: unknown) => {
      // The store refused what the registry sent (digest, size, diffID, an unsafe tar entry): the user
      // must learn which image and registry, not only which blob.
      if (!(err instanceof CorruptError)) throw err;
      throw new RegistryError('protocol', src.registry, src.reference, `${what}: ${err.message}`, 'the registry sent a damaged or hostile layer; nothing of it was kept', { cause: err });
    });
    emit({ type: 'layer', id, status: 'downloaded' });
    emit({ type: 'layer', id, status: 'complete' });
    completed++;
    if (completed < todo.length) failpoint('registry.pull.mid-layers');
  }, stop);
  return descs.map((d, i) => ({ diffId: diffIds[i]!, blob: d.digest, blobSize: d.size, mediaType: d.mediaType }));
}
