import { InvalidArgumentError } from '../errors.js';
import type { ImageListing } from './index.js';
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
 * The images a listing shows, newest first, each with the tags the filters let through. An untagged
 * (dangling) image is shown only with `all` or `dangling=true`, and never when a reference is asked for.
 */
export function selectImages(images: readonly StoredImage[], tags: readonly TagEntry[], opts: { all?: boolean }, f: ListFilters): ImageListing[] {
  const out: ImageListing[] = [];
  const sorted = [...images].sort((a, b) => b.created.localeCompare(a.created) || a.id.localeCompare(b.id));
  for (const img of sorted) {
    const mine = tags.filter((t) => t.id === img.id).map((t) => t.name);
    const listing = (shown: string[]): ImageListing => ({ id: img.id, tags: shown, digests: [], created: img.created, size: img.size });
    if (mine.length === 0) {
      if (f.dangling !== false && (opts.all || f.dangling === true) && f.references.length === 0) out.push(listing([]));
      continue;
    }
    if (f.dangling === true) continue;
    const shown = f.references.length === 0 ? mine : mine.filter((t) => f.references.some((p) => matchesReferencePattern(p, t)));
    if (shown.length) out.push(listing(shown));
  }
  return out;
}
