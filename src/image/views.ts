import type { HistoryEntry, ImageInspect, ImageSummary } from '../types.js';
import { InvalidArgumentError } from '../errors.js';
import type { OciHistory, OciImageConfig } from './oci.js';
import type { StoredImage, TagEntry } from './records.js';
import { matchesReferencePattern } from './reference.js';

export interface ListFilters {
  dangling?: boolean;
  references: string[];
}

/** `dangling=true|false` and `reference=PATTERN` (several references match any), as `docker images`. */
export function parseListFilters(filters: readonly string[] = []): ListFilters {
  const out: ListFilters = { references: [] };
  for (const f of filters) {
    const eq = f.indexOf('=');
    const key = eq > 0 ? f.slice(0, eq) : f;
    const value = eq > 0 ? f.slice(eq + 1) : '';
    if (key === 'dangling' && (value === 'true' || value === 'false')) out.dangling = value === 'true';
    else if (key === 'reference' && value) out.references.push(value);
    else throw new InvalidArgumentError('--filter', `"${f}" is not supported`, 'use dangling=true|false or reference=PATTERN');
  }
  return out;
}

/**
 * One row per tag, newest image first. An untagged (dangling) image is one row with no tags, shown
 * with `all` or `dangling=true`; the CLI prints it as <none>:<none>.
 */
export function summaryRows(images: readonly StoredImage[], tags: readonly TagEntry[], opts: { all?: boolean }, f: ListFilters): ImageSummary[] {
  const rows: ImageSummary[] = [];
  const sorted = [...images].sort((a, b) => b.created.localeCompare(a.created) || a.id.localeCompare(b.id));
  for (const img of sorted) {
    const mine = tags.filter((t) => t.id === img.id).map((t) => t.name);
    const row = (repoTags: string[]): ImageSummary => ({ id: img.id, repoTags, repoDigests: [], created: img.created, size: img.size });
    if (mine.length === 0) {
      if (f.dangling !== false && (opts.all || f.dangling === true) && f.references.length === 0) rows.push(row([]));
      continue;
    }
    if (f.dangling === true) continue;
    for (const t of mine) {
      if (f.references.length === 0 || f.references.some((p) => matchesReferencePattern(p, t))) rows.push(row([t]));
    }
  }
  return rows;
}

export function inspectView(img: StoredImage, config: OciImageConfig, tags: readonly TagEntry[]): ImageInspect {
  const lastTag = tags.map((t) => t.tagged).sort().at(-1);
  const comment = config.history?.at(-1)?.comment;
  return {
    Id: img.id,
    RepoTags: tags.map((t) => t.name),
    RepoDigests: [],
    Parent: '',
    Comment: comment ?? '',
    Created: img.created,
    Author: config.author ?? '',
    Architecture: config.architecture,
    ...(config.variant && { Variant: config.variant }),
    Os: config.os,
    Size: img.size,
    Config: config.config ?? {},
    RootFS: { Type: 'layers', Layers: [...config.rootfs.diff_ids] },
    Metadata: { LastTagTime: lastTag ?? '0001-01-01T00:00:00Z' },
  };
}

/** Newest first; only the top entry carries the image ID and each layer entry its unpacked size (docker history). */
export function historyView(img: StoredImage, config: OciImageConfig): HistoryEntry[] {
  const history: OciHistory[] = config.history?.length
    ? config.history
    : img.layers.map(() => ({ created: img.created, created_by: '', comment: '' }));
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
