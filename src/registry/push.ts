/**
 * `push`: each blob the registry lacks (HEAD first; a cross-repository mount when the image was pulled
 * from another repository of the same registry; else an upload), the config, then the manifest under
 * the tag. The manifest pushed is the stored one, byte for byte, so the registry's digest is the one a
 * pull of it gives back.
 */
import { InvalidArgumentError, RegistryError } from '../errors.js';
import type { ImageStore, PushableImage } from '../image/index.js';
import { failpoint } from '../util/failpoint.js';
import type { PushOptions, PushResult, RegistrySession, RemoteReference, TransferEvent } from './index.js';
import { DEFAULT_TAG } from '../image/reference.js';
import { POOL, isTransient, pool, shortDigest, sleep, type RegistryAccess } from './transfer.js';

const UPLOAD_TRIES = 3;

export async function pushImage(access: RegistryAccess, store: ImageStore, text: string, opts: PushOptions = {}): Promise<PushResult> {
  const ref = access.parse(text);
  if (ref.digest) throw new InvalidArgumentError('reference', `"${text}": cannot push to a digest`, 'push to NAME[:TAG]');
  const tag = ref.tag ?? DEFAULT_TAG;
  const reference = `${ref.name}:${tag}`;
  const emit: (e: TransferEvent) => void = opts.onProgress ?? (() => {});
  // The local image under its full name, as docker: `push busybox` pushes docker.io/library/busybox.
  const image = await store.pushable(reference, ref.name);
  emit({ type: 'resolving', reference, registry: ref.registry });
  const session = await access.session(ref, { actions: ['pull', 'push'], tlsVerify: opts.tlsVerify, signal: opts.signal, ...(opts.credentials && { credentials: opts.credentials }) });
  try {
    return await pushTo(session, store, image, ref, tag, emit, opts.signal);
  } finally {
    session.close();
  }
}

async function pushTo(session: RegistrySession, store: ImageStore, image: PushableImage, ref: RemoteReference, tag: string, emit: (e: TransferEvent) => void, signal?: AbortSignal): Promise<PushResult> {
  const reference = `${ref.name}:${tag}`;
  const [config, ...layers] = image.blobs;
  emit({ type: 'manifest', reference, digest: image.manifestDigest, layers: layers.length });
  const mountFrom = image.sources
    .filter((s) => s.startsWith(`${ref.registry}/`) && s !== ref.name)
    .map((s) => s.slice(ref.registry.length + 1));
  for (const l of layers) emit({ type: 'layer', id: shortDigest(l.digest), status: 'waiting' });
  const stop = new AbortController();
  await pool(layers, POOL, async (l) => {
    const id = shortDigest(l.digest);
    const sent = await sendBlob(session, store, l.digest, mountFrom, (n) => emit({ type: 'layer', id, status: 'uploading', current: n, total: l.size }), stop.signal);
    emit({ type: 'layer', id, status: sent.how, ...(sent.from ? { from: sent.from } : {}) });
  }, stop);
  await sendBlob(session, store, config!.digest, mountFrom, () => {}, signal);
  failpoint('registry.push.before-manifest');
  const digest = await session.putManifest(tag, image.manifestMediaType, image.manifest);
  if (digest !== image.manifestDigest) {
    throw new RegistryError('protocol', ref.registry, reference, `the registry stored the manifest as ${digest}, not ${image.manifestDigest}`,
      'the registry changed the manifest it was sent; pulls of it will not match this image');
  }
  await store.addRepoDigest(reference, { name: ref.name, digest, manifest: digest, manifestMediaType: image.manifestMediaType });
  emit({ type: 'done', reference, id: image.id, digest, changed: true });
  return { reference, digest, size: image.manifest.length };
}

/** Already there, mounted from another repository of the registry (named), or uploaded. */
async function sendBlob(session: RegistrySession, store: ImageStore, digest: Parameters<ImageStore['openBlob']>[0], mountFrom: readonly string[],
  onSent: (n: number) => void, signal?: AbortSignal): Promise<{ how: 'exists' | 'mounted' | 'pushed'; from?: string }> {
  if ((await session.blobSize(digest)) !== undefined) return { how: 'exists' };
  for (const from of mountFrom) if (await session.mountBlob(digest, from)) return { how: 'mounted', from };
  const blob = await store.openBlob(digest);
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      await session.uploadBlob(digest, blob.size, blob.open, onSent);
      return { how: 'pushed' };
    } catch (err) {
      if (attempt >= UPLOAD_TRIES || !isTransient(err)) throw err;
      await sleep(300 * attempt, signal);
    }
  }
}
