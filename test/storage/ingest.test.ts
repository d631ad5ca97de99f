import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { CorruptError } from '../../src/errors.js';
import type { Digest } from '../../src/ids.js';
import { diffIdOf, destroyStore, gzip, makeStore, makeTar, streamOf, type TestStore } from './helpers.js';

let store: TestStore;
beforeEach(async () => {
  store = await makeStore();
});
afterEach(async () => destroyStore(store));

const layerDirs = async () => (await fsp.readdir(store.layout.layers).catch(() => [])).filter((n) => n !== 'l');

describe('ingestLayer', () => {
  test('a plain tar is stored and unpacked in one pass, its digest taken as the diffID', async () => {
    const tar = await makeTar([{ name: 'etc/hello', data: 'hi' }]);
    const named: Digest[] = [];
    const { blob, layer } = await store.storage.ingestLayer(streamOf(tar), { size: tar.length }, { beforeCommit: async (d) => { named.push(d); } });
    expect(blob.digest).toBe(diffIdOf(tar));
    expect(layer?.diffId).toBe(blob.digest);
    expect(named).toEqual([blob.digest]);
    expect(await fsp.readFile(path.join(layer!.diffPath, 'etc/hello'), 'utf8')).toBe('hi');
    expect(await store.storage.blobs.read(blob.digest)).toEqual(tar);
  });

  test('a gzip layer gets the diffID of its uncompressed tar', async () => {
    const tar = await makeTar([{ name: 'a', data: 'A' }]);
    const { blob, layer } = await store.storage.ingestLayer(streamOf(gzip(tar), 100));
    expect(blob.digest).toBe(diffIdOf(gzip(tar)));
    expect(layer?.diffId).toBe(diffIdOf(tar));
  });

  test('a blob that is not a layer is stored and yields no layer', async () => {
    const json = Buffer.from(JSON.stringify({ schemaVersion: 2, padding: 'x'.repeat(4000) }));
    const { blob, layer } = await store.storage.ingestLayer(streamOf(json));
    expect(layer).toBeUndefined();
    expect(await store.storage.blobs.read(blob.digest)).toEqual(json);
    expect(await layerDirs()).toEqual([]);
  });

  test('a hostile layer yields no layer and writes nothing outside the store', async () => {
    const tar = await makeTar([{ name: '../escape', data: 'x' }]);
    const { layer } = await store.storage.ingestLayer(streamOf(tar));
    expect(layer).toBeUndefined();
    expect(await layerDirs()).toEqual([]);
    await expect(fsp.access(path.join(store.layout.layers, '..', 'escape'))).rejects.toThrow();
  });

  test('a blob failing its check keeps neither the blob nor the layer', async () => {
    const tar = await makeTar([{ name: 'a', data: 'A' }]);
    const wrong = `sha256:${'0'.repeat(64)}` as Digest;
    let committed = false;
    const err = await store.storage.ingestLayer(streamOf(tar), { digest: wrong }, { beforeCommit: async () => { committed = true; } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptError);
    expect(committed).toBe(false);
    expect(await store.storage.blobs.list()).toEqual([]);
    expect(await layerDirs()).toEqual([]);
  });

  test('a truncated blob keeps neither the blob nor the layer', async () => {
    const tar = await makeTar([{ name: 'big', data: Buffer.alloc(100_000, 1) }]);
    const err = await store.storage.ingestLayer(streamOf(tar.subarray(0, 50_000)), { size: tar.length }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptError);
    expect(await store.storage.blobs.list()).toEqual([]);
    expect(await layerDirs()).toEqual([]);
  });
});
