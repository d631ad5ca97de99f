/**
 * The image layer's records shaped as Docker shows them (`images`, `image inspect`, `history`): one row
 * per tag, PascalCase inspect fields and Docker's placeholders, since scripts parse them.
 */
import type { ImageDetails, ImageListing, ImageStore, OciHistory } from '../image/index.js';
import type { HistoryEntry, ImageInspect, ImageSummary, ImagesApi } from '../types.js';

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
    Parent: '',
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
export function imagesApi(store: ImageStore): ImagesApi {
  return {
    list: async (opts) => summaryRows(await store.list(opts)),
    inspect: async (ref) => inspectView(await store.inspect(ref)),
    history: async (ref) => historyView(await store.inspect(ref)),
    tag: (source, target) => store.tag(source, target),
    remove: (ref, opts) => store.remove(ref, opts),
    prune: (opts) => store.prune(opts),
    load: (input, opts) => store.load(input, opts),
    save: (refs, output, opts) => store.save(refs, output, opts),
    import: (input, opts) => store.import(input, opts),
    mount: (ref) => store.mount(ref),
    unmount: (ref) => store.unmount(ref),
    ensureDefault: (opts) => store.ensureDefault(opts),
  };
}
