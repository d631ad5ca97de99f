import { InvalidArgumentError } from '../errors.js';
import type { ImageListing } from './index.js';
import { childCounts, repoDigestRefs, type StoredImage, type TagEntry } from './records.js';
import { matchesReferencePattern } from './reference.js';

export interface ListFilters {
  dangling?: boolean;
  references: string[];
  /** images named by before=/since= (resolved by the store to their creation times) */
  before: string[];
  since: string[];
  /** label=KEY or label=KEY=VALUE: all must hold */
  labels: { key: string; value?: string }[];
}

/** What the store looked up for the filters that name other images or need the configs. */
export interface ResolvedFilters {
  /** creation times (RFC 3339) of the images before=/since= name */
  before: string[];
  since: string[];
  /** the config's labels of each image, when a label filter needs them */
  labelsOf?: (id: string) => Readonly<Record<string, string>>;
}

const HINT = 'use dangling=true|false, reference=PATTERN, before=IMAGE, since=IMAGE or label=KEY[=VALUE]';

/** `dangling=`, `reference=` (several references match any), `before=`, `since=`, `label=`, as `docker images`. */
export function parseListFilters(filters: readonly string[] = []): ListFilters {
  const out: ListFilters = { references: [], before: [], since: [], labels: [] };
  for (const f of filters) {
    const eq = f.indexOf('=');
    const key = eq > 0 ? f.slice(0, eq) : f;
    const value = eq > 0 ? f.slice(eq + 1) : '';
    if (key === 'dangling' && (value === 'true' || value === 'false')) out.dangling = value === 'true';
    else if (key === 'reference' && value) out.references.push(value);
    else if ((key === 'before' || key === 'since') && value) out[key].push(value);
    else if (key === 'label' && value && !value.startsWith('=')) {
      const i = value.indexOf('=');
      out.labels.push(i < 0 ? { key: value } : { key: value.slice(0, i), value: value.slice(i + 1) });
    } else throw new InvalidArgumentError('--filter', `"${f}" is not supported`, HINT);
  }
  return out;
}

/**
 * The images a listing shows, newest first, each with the tags the filters let through. As Docker's
 * (daemon/images Images): an untagged image is dangling when no image names it as parent, and shown;
 * one that is another's parent (a build's intermediate) only with `all`. `dangling=true` shows dangling
 * images only (never intermediates), and a reference filter never shows an untagged image.
 */
export function selectImages(images: readonly StoredImage[], tags: readonly TagEntry[], opts: { all?: boolean }, f: ListFilters, r: ResolvedFilters = { before: [], since: [] }): ImageListing[] {
  const out: ImageListing[] = [];
  const children = childCounts(images);
  const sorted = [...images].sort((a, b) => b.created.localeCompare(a.created) || a.id.localeCompare(b.id));
  const byTime = (img: StoredImage) => r.before.every((t) => img.created < t) && r.since.every((t) => img.created > t);
  const byLabels = (img: StoredImage) => {
    const labels = f.labels.length ? r.labelsOf?.(img.id) ?? {} : {};
    return f.labels.every(({ key, value }) => key in labels && (value === undefined || labels[key] === value));
  };
  for (const img of sorted.filter((i) => byTime(i) && byLabels(i))) {
    const mine = tags.filter((t) => t.id === img.id).map((t) => t.name);
    const listing = (shown: string[]): ImageListing => ({ id: img.id, tags: shown, digests: repoDigestRefs(img), created: img.created, size: img.size });
    if (mine.length === 0) {
      const intermediate = children.has(img.id);
      const shown = f.dangling === true ? !intermediate : f.dangling === undefined && (opts.all || !intermediate);
      if (shown && f.references.length === 0) out.push(listing([]));
      continue;
    }
    if (f.dangling === true) continue;
    const shown = f.references.length === 0 ? mine : mine.filter((t) => f.references.some((p) => matchesReferencePattern(p, t)));
    if (shown.length) out.push(listing(shown));
  }
  return out;
}
