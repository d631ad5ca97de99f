import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { CorruptError } from '../../src/errors.js';
import { digestHex } from '../../src/ids.js';
import { run } from '../../src/util/exec.js';
import { destroyStore, diffIdOf, gzip, makeStore, makeTar, streamOf, type TestStore } from './helpers.js';

let store: TestStore;
let src: string;
beforeEach(async () => {
  store = await makeStore();
  src = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-tarsplit-src-'));
});
afterEach(async () => {
  await destroyStore(store);
  await fsp.rm(src, { recursive: true, force: true });
});

const longDir = `${'d'.repeat(90)}/${'e'.repeat(90)}`;
const longName = `${longDir}/${'f'.repeat(120)}`;

/** A tree with what tar frames specially: long names, links, empty and large files. */
async function makeTree(): Promise<void> {
  const at = (p: string) => path.join(src, 'tree', p);
  await fsp.mkdir(at(longDir), { recursive: true });
  await fsp.writeFile(at(longName), 'long name\n');
  await fsp.writeFile(at('empty'), '');
  await fsp.writeFile(at('big'), Buffer.alloc(3 * 1024 * 1024 + 123, 7));
  await fsp.writeFile(at('hl-src'), 'shared\n');
  await fsp.link(at('hl-src'), at('hl-dst'));
  await fsp.symlink(`../${'x'.repeat(150)}`, at('link-long'));
  await fsp.symlink('hl-src', at('link'));
  await fsp.writeFile(at('.wh.gone'), '');
}

async function systemTar(format: 'gnu' | 'pax', extra: string[] = []): Promise<Buffer> {
  const out = path.join(src, `${format}.tar`);
  await run('tar', [`--format=${format}`, '-cf', out, '-C', path.join(src, 'tree'), ...extra, '.'], { timeout: 60_000 });
  return fsp.readFile(out);
}

async function ingestAndRebuild(tar: Buffer): Promise<Buffer> {
  const { blob, layer } = await store.storage.ingestLayer(streamOf(tar, 65_536), { size: tar.length });
  expect(layer?.diffId).toBe(diffIdOf(tar));
  // Virtual: the bytes are not kept as a blob file, only a record of how to rebuild them.
  expect(existsSync(path.join(store.layout.blobs, 'sha256', digestHex(blob.digest)))).toBe(false);
  expect(await store.storage.blobs.has(blob.digest)).toBe(true);
  expect(await store.storage.blobs.stat(blob.digest)).toEqual({ digest: blob.digest, size: tar.length });
  expect(await store.storage.blobs.list()).toEqual([blob.digest]);
  return store.storage.blobs.read(blob.digest);
}

describe('tar-split', () => {
  test.each(['gnu', 'pax'] as const)('rebuilds a %s tar byte for byte (long names, links, empty and large files)', async (format) => {
    await makeTree();
    const tar = await systemTar(format, format === 'pax' ? ['--pax-option=exthdr.name=%d/PaxHeaders/%f'] : []);
    // The framing under test is really there: GNU long-name/long-link entries, or PAX extended headers.
    expect(tar.includes(format === 'gnu' ? '././@LongLink' : 'PaxHeaders')).toBe(true);
    // Buffer.equals: vitest's deep equality takes seconds on megabytes.
    expect((await ingestAndRebuild(tar)).equals(tar)).toBe(true);
  });

  test('rebuilds a tar with PAX records, a global header and trailing zero records', async () => {
    const tar = await makeTar([
      { name: 'x', data: 'pax', pax: { 'SCHILY.xattr.user.k': 'v', mtime: '1.5' } },
      { name: 'dir/', type: 'directory' },
      { name: `dir/${'n'.repeat(200)}`, data: '' },
    ]);
    expect(await ingestAndRebuild(Buffer.concat([tar, Buffer.alloc(10240)]))).toEqual(Buffer.concat([tar, Buffer.alloc(10240)]));
  });

  test('rebuilds a tar whose later entries replace earlier files', async () => {
    const tar = await makeTar([
      { name: 'a', data: 'first' },
      { name: 'b', type: 'link', linkname: 'a' },
      { name: 'a', data: 'second, longer' },
      { name: 'd/f', data: 'in dir' },
      { name: 'd', data: 'dir replaced by file' },
      { name: '.wh.b', data: '' },
    ]);
    expect(await ingestAndRebuild(tar)).toEqual(tar);
  });

  test('a layer tar that turns hostile after its first entry fails the ingest and keeps nothing', async () => {
    const tar = await makeTar([{ name: 'ok', data: 'fine' }, { name: '../escape', data: 'x' }]);
    const err = await store.storage.ingestLayer(streamOf(tar)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptError);
    expect(await store.storage.blobs.list()).toEqual([]);
    expect((await fsp.readdir(store.layout.layers).catch(() => [])).filter((n) => n !== 'l')).toEqual([]);
    await expect(fsp.access(path.join(store.layout.layers, '..', 'escape'))).rejects.toThrow();
  });

  test('still reads a record written before records were streamed (BTS1)', async () => {
    const tar = await makeTar([{ name: 'a', data: 'alpha\n' }, { name: 'a', data: 'replaced\n' }]);
    const { blob, layer } = await store.storage.ingestLayer(streamOf(tar, 65_536), { size: tar.length });
    // The old form: one RAW segment for the whole tar is a valid BTS1 record of it.
    const head = Buffer.alloc(5);
    head[0] = 0x52;
    head.writeUInt32LE(tar.length, 1);
    await fsp.writeFile(path.join(path.dirname(layer!.diffPath), 'tar-split.gz'), gzip(Buffer.concat([Buffer.from('BTS1'), head, tar])));
    expect(await store.storage.blobs.read(blob.digest)).toEqual(tar);
  });

  test('a gzip layer keeps its blob bytes', async () => {
    const tar = gzip(await makeTar([{ name: 'a', data: 'A' }]));
    const { blob } = await store.storage.ingestLayer(streamOf(tar));
    expect(await fsp.readFile(path.join(store.layout.blobs, 'sha256', digestHex(blob.digest)))).toEqual(tar);
  });

  test.each([
    ['same size', 'X'.repeat(7)],
    ['other size', 'changed, longer'],
  ])('a diff file changed after unpack (%s) fails the rebuild with CorruptError naming the layer', async (_what, content) => {
    const tar = await makeTar([{ name: 'etc/f', data: 'shared\n' }, { name: 'etc/g', data: 'x' }]);
    const { blob, layer } = await store.storage.ingestLayer(streamOf(tar));
    await fsp.writeFile(path.join(layer!.diffPath, 'etc/f'), content);
    const err = await store.storage.blobs.read(blob.digest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptError);
    expect((err as Error).message).toContain(layer!.diffId);
  });

  test('a virtual blob is gone once its layer is', async () => {
    const tar = await makeTar([{ name: 'a', data: 'A' }]);
    const { blob, layer } = await store.storage.ingestLayer(streamOf(tar));
    await store.storage.layers.remove(layer!.diffId);
    expect(await store.storage.blobs.has(blob.digest)).toBe(false);
    await store.storage.blobs.delete(blob.digest);
    expect(await store.storage.blobs.list()).toEqual([]);
  });
});
