/**
 * The image layer's records shaped as Docker shows them (`images`, `image inspect`, `history`): one row
 * per tag, PascalCase inspect fields and Docker's placeholders, since scripts parse them.
 */
import type { ImageDetails, ImageListing, ImageStore, OciHistory } from '../image/index.js';
import type { BuildEvent } from '../build/index.js';
import { pruneBuildCache } from '../build/cache.js';
import type { RegistryAccess } from '../registry/index.js';
import type { HistoryEntry, ImageInspect, ImageSummary, ImagesApi, PullOptions, TransferEvent } from '../types.js';

/** Docker's time for "never" (Metadata.LastTagTime of an image never tagged). */
const NEVER = '0001-01-01T00:00:00Z';

/** One row per tag; a dangling image is one row with no tags, which the CLI prints as <none>:<none>. */
export function summaryRows(listings: readonly ImageListing[]): ImageSummary[] {
  return listings.flatMap((l) => {
    const row = (repoTags: string[]): ImageSummary => ({ id: l.id, repoTags, repoDigests: [...l.digests], created: l.created, size: l.size });
    return l.tags.length ? l.tags.map((t) => row([t])) : [row([])];
  });
}

/** `docker image inspect`. */
export function inspectView(img: ImageDetails): ImageInspect {
  const { config } = img;
  const lastTag = img.tags.map((t) => t.tagged).sort().at(-1);
  return {
    Id: img.id,
    RepoTags: img.tags.map((t) => t.name),
    RepoDigests: [...img.digests],
    Parent: img.parent ?? '',
    Comment: img.history.at(-1)?.comment ?? '',
    Created: img.created,
    Author: config.author ?? '',
    Architecture: config.architecture,
    ...(config.variant && { Variant: config.variant }),
    Os: config.os,
    Size: img.size,
    Config: config.config ?? {},
    RootFS: { Type: 'layers', Layers: [...config.rootfs.diff_ids] },
    Metadata: { LastTagTime: lastTag ?? NEVER },
  };
}

/** Newest first; only the top entry carries the image ID and each layer entry its unpacked size (docker history). */
export function historyView(img: ImageDetails): HistoryEntry[] {
  // A config without history (allowed by the image spec) still has layers: one untitled entry each.
  const history: OciHistory[] = img.history.length ? img.history : img.layers.map(() => ({ created: img.created, created_by: '', comment: '' }));
  let layer = 0;
  const rows = history.map((h) => {
    const empty = h.empty_layer === true;
    const size = empty ? 0 : (img.layers[layer++]?.size ?? 0);
    return { id: '<missing>', created: h.created ?? img.created, createdBy: h.created_by ?? '', size, comment: h.comment ?? '', emptyLayer: empty };
  });
  rows.reverse();
  if (rows[0]) rows[0].id = img.id;
  return rows;
}

/** The public images API over the image store: the store's verbs, its records shaped as Docker's. */
export function imagesApi(store: ImageStore, registries: () => Promise<RegistryAccess>, build: ImagesApi['build'], buildCacheDir?: string): ImagesApi {
  const pull = async (ref: string, opts?: PullOptions) => (await import('../registry/pull.js')).pullImage(await registries(), store, ref, opts);
  return {
    build,
    buildEvents: (opts) => eventStream<BuildEvent>((onProgress, signal) => build({ ...opts, onProgress, signal }), opts.signal),
    pull,
    pullEvents: (ref, opts) => eventStream((onProgress, signal) => pull(ref, { ...opts, onProgress, signal }), opts?.signal),
    push: async (ref, opts) => (await import('../registry/push.js')).pushImage(await registries(), store, ref, opts),
    list: async (opts) => summaryRows(await store.list(opts)),
    inspect: async (ref) => inspectView(await store.inspect(ref)),
    history: async (ref) => historyView(await store.inspect(ref)),
    tag: (source, target) => store.tag(source, target),
    remove: (ref, opts) => store.remove(ref, opts),
    prune: async (opts) => {
      const res = await store.prune(opts);
      // The build cache names images: entries of the ones this prune (or an rmi before it) took are dead.
      if (buildCacheDir) await pruneBuildCache(buildCacheDir, new Set((await store.list({ all: true })).map((i) => i.id)));
      return res;
    },
    load: (input, opts) => store.load(input, opts),
    save: (refs, output, opts) => store.save(refs, output, opts),
    import: (input, opts) => store.import(input, opts),
    mount: (ref) => store.mount(ref),
    unmount: (ref) => store.unmount(ref),
    ensureDefault: (opts) => store.ensureDefault(opts),
  };
}

/**
 * A transfer's (or a build's) progress as an async iterable: events are queued as they come and yielded in order; the
 * transfer's failure is thrown by the iteration after the events before it. Leaving the loop early
 * aborts the transfer (which removes what it stored).
 */
export function eventStream<E = TransferEvent>(run: (emit: (e: E) => void, signal: AbortSignal) => Promise<unknown>, outer?: AbortSignal): AsyncIterable<E> {
  return {
    async *[Symbol.asyncIterator]() {
      const stop = new AbortController();
      const signal = outer ? AbortSignal.any([outer, stop.signal]) : stop.signal;
      const queue: E[] = [];
      let wake: (() => void) | undefined;
      let finished = false;
      let failure: { err: unknown } | undefined;
      const running = run((e) => {
        queue.push(e);
        wake?.();
      }, signal).then(() => { finished = true; }, (err: unknown) => {
        failure = { err };
        finished = true;
      }).finally(() => wake?.());
      try {
        for (;;) {
          while (queue.length) yield queue.shift()!;
          if (finished) break;
          await new Promise<void>((resolve) => { wake = resolve; });
          wake = undefined;
        }
        if (failure) throw failure.err;
      } finally {
        if (!finished) {
          stop.abort(new Error('the progress stream was closed before the transfer ended'));
          await running;
        }
      }
    },
  };
}
