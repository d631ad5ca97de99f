import { describe, expect, it } from 'vitest';
import type { Digest, ImageId } from '../ids.js';
import type { ImageDetails, ImageListing } from '../image/index.js';
import { historyView, inspectView, summaryRows } from './images.js';

const d = (c: string) => `sha256:${c.repeat(64)}` as Digest;

function details(c: string, sizes: number[], history: ImageDetails['history'] = []): ImageDetails {
  return {
    id: d(c) as ImageId, manifestDigest: d('e'), tags: [], digests: [], created: '2024-01-01T00:00:00Z',
    size: sizes.reduce((a, b) => a + b, 0),
    config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: sizes.map((_, i) => d(String(i))) }, history },
    layers: sizes.map((size, i) => ({ diffId: d(String(i)), size })),
    history,
  };
}

describe('summaryRows', () => {
  const listing = (c: string, tags: string[]): ImageListing => ({ id: d(c) as ImageId, tags, digests: [], created: '2024-01-01T00:00:00Z', size: 10 });

  it('gives one row per tag, in the listing\'s order, and one untagged row for a dangling image', () => {
    const rows = summaryRows([listing('b', ['y:1']), listing('a', ['x:1', 'x:2']), listing('c', [])]);
    expect(rows.map((r) => r.repoTags)).toEqual([['y:1'], ['x:1'], ['x:2'], []]);
    expect(rows.map((r) => r.id)).toEqual([d('b'), d('a'), d('a'), d('c')]);
  });
});

describe('inspectView', () => {
  it('is shaped as docker image inspect, with the last tag time and the top comment', () => {
    const img = { ...details('a', [5], [{ created_by: 'ADD base', comment: 'top' }]), tags: [{ name: 'x:1', tagged: '2024-03-01T00:00:00Z' }, { name: 'x:2', tagged: '2024-02-01T00:00:00Z' }] };
    expect(inspectView(img)).toMatchObject({
      Id: d('a'), RepoTags: ['x:1', 'x:2'], RepoDigests: [], Comment: 'top', Size: 5, Config: {},
      RootFS: { Type: 'layers', Layers: [d('0')] }, Metadata: { LastTagTime: '2024-03-01T00:00:00Z' },
    });
    expect(inspectView(details('b', [1])).Metadata).toEqual({ LastTagTime: '0001-01-01T00:00:00Z' });
  });
});

describe('historyView', () => {
  it('lists newest first, gives sizes to layer entries only, and the ID to the top entry', () => {
    const img = details('a', [100, 200], [{ created_by: 'ADD base' }, { created_by: 'ENV A=1', empty_layer: true }, { created_by: 'COPY app', comment: 'c' }]);
    const rows = historyView(img);
    expect(rows.map((r) => [r.id, r.createdBy, r.size, r.emptyLayer])).toEqual([
      [img.id, 'COPY app', 200, false],
      ['<missing>', 'ENV A=1', 0, true],
      ['<missing>', 'ADD base', 100, false],
    ]);
  });

  it('gives a config without history one untitled entry per layer', () => {
    const img = details('a', [100, 200]);
    expect(historyView(img).map((r) => [r.id, r.size])).toEqual([[img.id, 200], ['<missing>', 100]]);
  });
});

describe('eventStream', () => {
  const ev = (id: string) => ({ type: 'layer' as const, id, status: 'waiting' as const });

  it('yields events in order and ends when the transfer does', async () => {
    const { eventStream } = await import('./images.js');
    const seen: string[] = [];
    for await (const e of eventStream(async (emit) => {
      emit(ev('a'));
      await new Promise((r) => setTimeout(r, 1));
      emit(ev('b'));
    })) seen.push((e as { id: string }).id);
    expect(seen).toEqual(['a', 'b']);
  });

  it('throws the failure after the events before it', async () => {
    const { eventStream } = await import('./images.js');
    const seen: string[] = [];
    await expect((async () => {
      for await (const e of eventStream(async (emit) => {
        emit(ev('a'));
        throw new Error('boom');
      })) seen.push((e as { id: string }).id);
    })()).rejects.toThrow('boom');
    expect(seen).toEqual(['a']);
  });

  it('aborts the transfer when the loop is left early, and waits for it to stop', async () => {
    const { eventStream } = await import('./images.js');
    let stopped = false;
    for await (const _ of eventStream(async (emit, signal) => {
      emit(ev('a'));
      await new Promise((r) => signal.addEventListener('abort', r));
      stopped = true;
    })) break;
    expect(stopped).toBe(true);
  });
});
