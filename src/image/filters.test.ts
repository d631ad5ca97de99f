import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import type { Digest, ImageId } from '../ids.js';
import type { StoredImage, TagEntry } from './records.js';
import { parseListFilters, selectImages } from './filters.js';

const d = (c: string) => `sha256:${c.repeat(64)}` as Digest;

function image(c: string, created: string, sizes: number[] = [10]): StoredImage {
  return {
    id: d(c) as ImageId, manifestDigest: d('e'), manifestMediaType: 'x', configDigest: d(c), created, added: created,
    size: sizes.reduce((a, b) => a + b, 0),
    layers: sizes.map((size, i) => ({ diffId: d(String(i)), blob: d(String(i)), mediaType: 'x', blobSize: size, size })),
  };
}
const tag = (name: string, c: string): TagEntry => ({ name, id: d(c) as ImageId, tagged: '2024-01-01T00:00:00Z' });

describe('selectImages', () => {
  const images = [image('a', '2024-01-01T00:00:00Z'), image('b', '2024-02-01T00:00:00Z'), image('c', '2023-01-01T00:00:00Z')];
  const tags = [tag('x:1', 'a'), tag('x:2', 'a'), tag('y:1', 'b')];

  it('lists images newest first with their tags and dangling images; intermediates only with all', () => {
    expect(selectImages(images, tags, {}, parseListFilters()).map((r) => r.tags)).toEqual([['y:1'], ['x:1', 'x:2'], []]);
    // c is the parent of an untagged d: c is d's intermediate (shown with -a), d is dangling (shown).
    const withChild = [...images, { ...image('d', '2022-01-01T00:00:00Z'), parent: d('c') as ImageId }];
    expect(selectImages(withChild, tags, {}, parseListFilters()).map((r) => r.id)).toEqual([d('b'), d('a'), d('d')]);
    expect(selectImages(withChild, tags, { all: true }, parseListFilters()).map((r) => r.id)).toEqual([d('b'), d('a'), d('c'), d('d')]);
    expect(selectImages(withChild, tags, { all: true }, parseListFilters(['dangling=true'])).map((r) => r.id)).toEqual([d('d')]);
  });

  it('applies dangling and reference filters', () => {
    expect(selectImages(images, tags, {}, parseListFilters(['dangling=true'])).map((r) => r.id)).toEqual([d('c')]);
    expect(selectImages(images, tags, { all: true }, parseListFilters(['dangling=false'])).flatMap((r) => r.tags)).toHaveLength(3);
    expect(selectImages(images, tags, {}, parseListFilters(['reference=x:2', 'reference=y'])).map((r) => r.tags)).toEqual([['y:1'], ['x:2']]);
  });

  it('refuses unknown filters', () => {
    expect(() => parseListFilters(['label=='])).toThrow(InvalidArgumentError);
    expect(() => parseListFilters(['dangling=maybe'])).toThrow(InvalidArgumentError);
  });

  it('applies before, since and label filters with what the store resolved', () => {
    const resolved = { before: ['2024-02-01T00:00:00Z'], since: [], labelsOf: (id: string): Record<string, string> => (id === d('a') ? { app: 'web' } : {}) };
    expect(selectImages(images, tags, {}, parseListFilters(['before=y:1']), resolved).map((r) => r.id)).toEqual([d('a'), d('c')]);
    expect(selectImages(images, tags, {}, parseListFilters(['since=x:1']), { before: [], since: ['2024-01-01T00:00:00Z'] }).map((r) => r.id)).toEqual([d('b')]);
    expect(selectImages(images, tags, {}, parseListFilters(['label=app']), { ...resolved, before: [] }).map((r) => r.id)).toEqual([d('a')]);
    expect(selectImages(images, tags, {}, parseListFilters(['label=app=db']), { ...resolved, before: [] })).toEqual([]);
    expect(parseListFilters(['label=a=b=c', 'before=x', 'since=y'])).toMatchObject({ labels: [{ key: 'a', value: 'b=c' }], before: ['x'], since: ['y'] });
    expect(() => parseListFilters(['before='])).toThrow(InvalidArgumentError);
  });
});
