import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors.js';
import type { Digest, ImageId } from '../ids.js';
import type { StoredImage, TagEntry } from './records.js';
import { historyView, parseListFilters, summaryRows } from './views.js';

const d = (c: string) => `sha256:${c.repeat(64)}` as Digest;

function image(c: string, created: string, sizes: number[] = [10]): StoredImage {
  return {
    id: d(c) as ImageId, manifestDigest: d('e'), manifestMediaType: 'x', configDigest: d(c), created, added: created,
    size: sizes.reduce((a, b) => a + b, 0),
    layers: sizes.map((size, i) => ({ diffId: d(String(i)), blob: d(String(i)), mediaType: 'x', blobSize: size, size })),
  };
}
const tag = (name: string, c: string): TagEntry => ({ name, id: d(c) as ImageId, tagged: '2024-01-01T00:00:00Z' });

describe('summaryRows', () => {
  const images = [image('a', '2024-01-01T00:00:00Z'), image('b', '2024-02-01T00:00:00Z'), image('c', '2023-01-01T00:00:00Z')];
  const tags = [tag('x:1', 'a'), tag('x:2', 'a'), tag('y:1', 'b')];

  it('gives one row per tag, newest first, and hides dangling images unless asked', () => {
    expect(summaryRows(images, tags, {}, parseListFilters()).map((r) => r.repoTags)).toEqual([['y:1'], ['x:1'], ['x:2']]);
    expect(summaryRows(images, tags, { all: true }, parseListFilters()).map((r) => r.repoTags)).toEqual([['y:1'], ['x:1'], ['x:2'], []]);
  });

  it('applies dangling and reference filters', () => {
    expect(summaryRows(images, tags, {}, parseListFilters(['dangling=true'])).map((r) => r.id)).toEqual([d('c')]);
    expect(summaryRows(images, tags, { all: true }, parseListFilters(['dangling=false']))).toHaveLength(3);
    expect(summaryRows(images, tags, {}, parseListFilters(['reference=x:2', 'reference=y'])).map((r) => r.repoTags[0])).toEqual(['y:1', 'x:2']);
  });

  it('refuses unknown filters', () => {
    expect(() => parseListFilters(['label=a'])).toThrow(InvalidArgumentError);
    expect(() => parseListFilters(['dangling=maybe'])).toThrow(InvalidArgumentError);
  });
});

describe('historyView', () => {
  it('lists newest first, gives sizes to layer entries only, and the ID to the top entry', () => {
    const img = image('a', '2024-01-01T00:00:00Z', [100, 200]);
    const rows = historyView(img, {
      architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] },
      history: [{ created_by: 'ADD base' }, { created_by: 'ENV A=1', empty_layer: true }, { created_by: 'COPY app', comment: 'c' }],
    });
    expect(rows.map((r) => [r.id, r.createdBy, r.size, r.emptyLayer])).toEqual([
      [img.id, 'COPY app', 200, false],
      ['<missing>', 'ENV A=1', 0, true],
      ['<missing>', 'ADD base', 100, false],
    ]);
  });
});
