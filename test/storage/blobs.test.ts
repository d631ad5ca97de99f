import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { CorruptError, NotFoundError } from '../../src/errors.js';
import type { Digest } from '../../src/ids.js';
import { destroyStore, makeStore, type TestStore } from './helpers.js';

let store: TestStore;
beforeEach(async () => {
  store = await makeStore();
});
afterEach(async () => destroyStore(store));

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;
const tempFiles = async () => (await fsp.readdir(path.join(store.layout.blobs, 'sha256'))).filter((n) => n.startsWith('.tmp-'));

test('put, read, stat, list and delete a blob', async () => {
  const { blobs } = store.storage;
  const info = await blobs.put('hello');
  expect(info).toEqual({ digest: sha('hello'), size: 5 });
  expect(blobs.path(info.digest)).toBe(path.join(store.layout.blobs, 'sha256', sha('hello').slice(7)));
  expect((await blobs.read(info.digest)).toString()).toBe('hello');
  expect(await blobs.stat(info.digest)).toEqual(info);
  expect(await blobs.has(info.digest)).toBe(true);
  expect(await blobs.list()).toEqual([info.digest]);
  let streamed = '';
  for await (const chunk of blobs.open(info.digest)) streamed += chunk;
  expect(streamed).toBe('hello');
  await blobs.delete(info.digest);
  await blobs.delete(info.digest);
  expect(await blobs.has(info.digest)).toBe(false);
  await expect(blobs.read(info.digest)).rejects.toBeInstanceOf(NotFoundError);
  await expect(blobs.stat(info.digest)).rejects.toBeInstanceOf(NotFoundError);
  expect(() => blobs.open(info.digest)).toThrow(NotFoundError);
});

test('ingest streams and checks the expected digest and size', async () => {
  const data = Buffer.alloc(3 << 20, 7);
  const info = await store.storage.blobs.ingest(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), { digest: sha(data), size: data.length });
  expect(info).toEqual({ digest: sha(data), size: data.length });
  expect((await store.storage.blobs.read(info.digest)).equals(data)).toBe(true);
});

test('a digest mismatch is refused, names both digests and keeps nothing', async () => {
  const wrong = sha('other');
  const err = await store.storage.blobs.put('hello', { digest: wrong }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(CorruptError);
  expect((err as Error).message).toContain(wrong);
  expect((err as Error).message).toContain(sha('hello'));
  expect(await store.storage.blobs.list()).toEqual([]);
  expect(await tempFiles()).toEqual([]);
});

test('a stream shorter or longer than the expected size is refused', async () => {
  await expect(store.storage.blobs.put('hell', { size: 5 })).rejects.toThrow(/truncated: expected 5 bytes, got 4/);
  await expect(store.storage.blobs.put('hello!', { size: 5 })).rejects.toBeInstanceOf(CorruptError);
  expect(await store.storage.blobs.list()).toEqual([]);
  expect(await tempFiles()).toEqual([]);
});

test('a stream that breaks is refused and keeps nothing', async () => {
  async function* broken() {
    yield Buffer.from('partial');
    throw new Error('connection reset');
  }
  const err = await store.storage.blobs.ingest(broken()).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(CorruptError);
  expect((err as Error).message).toMatch(/broke after 7 bytes: connection reset/);
  expect(await tempFiles()).toEqual([]);
});

test('concurrent ingests of the same blob both succeed', async () => {
  const data = Buffer.alloc(2 << 20, 3);
  const slow = () => Readable.from(Array.from({ length: 32 }, (_, i) => data.subarray(i << 16, (i + 1) << 16)));
  const [a, b] = await Promise.all([store.storage.blobs.ingest(slow(), { digest: sha(data) }), store.storage.blobs.ingest(slow(), { digest: sha(data) })]);
  expect(a).toEqual(b);
  expect((await store.storage.blobs.read(a.digest)).equals(data)).toBe(true);
  expect(await tempFiles()).toEqual([]);
});
