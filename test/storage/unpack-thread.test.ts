import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { CorruptError } from '../../src/errors.js';
import { decodeError, encodeError, THREAD_THRESHOLD, unpackLayerThreaded, unpackThreadStats } from '../../src/storage/unpack-thread.js';
import { unpackLayer } from '../../src/storage/unpack.js';
import { diffIdOf, destroyStore, gzip, makeStore, makeTar, streamOf, type TestStore } from './helpers.js';

let store: TestStore;
beforeEach(async () => {
  store = await makeStore();
});
afterEach(async () => destroyStore(store));

/** A layer past the thread threshold: one big random file and a few small ones, in folders. */
async function bigLayer(tag: string): Promise<{ tar: Buffer; big: Buffer }> {
  const big = randomBytes(THREAD_THRESHOLD + 4096);
  const tar = await makeTar([
    { name: `${tag}/`, mode: 0o750 },
    { name: `${tag}/big.bin`, data: big, mode: 0o640, uid: 12, gid: 34 },
    ...Array.from({ length: 20 }, (_, i) => ({ name: `${tag}/d${i % 3}/f${i}`, data: `file ${i} of ${tag}` })),
    { name: `${tag}/link`, type: 'symlink' as const, linkname: 'big.bin' },
  ]);
  return { tar, big };
}

/** A stream the test feeds: it keeps an unpack running on this thread, so that the next one takes a worker. */
function heldStream(): PassThrough {
  return new PassThrough();
}

const dir = async (name: string) => {
  const d = path.join(store.dir, name);
  await fsp.mkdir(d, { recursive: true });
  return d;
};

describe('layers unpacked on a worker thread', () => {
  test('a second big layer unpacked while one is running goes to a worker and gives the same tree', async () => {
    const first = heldStream();
    const running = unpackLayerThreaded(first, await dir('first'), { sizeHint: 1 << 30 });
    const before = unpackThreadStats().started;
    const { tar, big } = await bigLayer('srv');
    // Gzip on the worker (its own hash), a plain tar in-process (the stream's digest as diffID): both paths.
    const threaded = await unpackLayerThreaded(streamOf(gzip(tar), 65_536), await dir('threaded'), { sizeHint: tar.length });
    expect(unpackThreadStats().started).toBe(before + 1);
    expect(unpackThreadStats().running).toBe(0);
    first.end(await makeTar([{ name: 'x', data: 'x' }]));
    await running;

    const local = await unpackLayer(streamOf(gzip(tar), 65_536), await dir('local'));
    expect(threaded).toEqual(local);
    expect(threaded.diffId).toBe(diffIdOf(tar));
    expect(threaded.compression).toBe('gzip');
    const read = (root: string) => fsp.readFile(path.join(store.dir, root, 'srv/big.bin'));
    expect((await read('threaded')).equals(big)).toBe(true);
    const st = await fsp.stat(path.join(store.dir, 'threaded', 'srv/big.bin'));
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o640, 12, 34]);
    expect(await fsp.readlink(path.join(store.dir, 'threaded', 'srv/link'))).toBe('big.bin');
    expect(await fsp.readFile(path.join(store.dir, 'threaded', 'srv/d1/f4'), 'utf8')).toBe('file 4 of srv');
  });

  test('a plain tar on a worker takes its diffID from the digest it is given, and says when its first entry unpacked', async () => {
    const first = heldStream();
    const running = unpackLayerThreaded(first, await dir('first'), { sizeHint: 1 << 30 });
    const { tar } = await bigLayer('opt');
    let entries = 0;
    const given = diffIdOf(tar);
    const split = await dir('split');
    await fsp.mkdir(path.join(split, 'diff'));
    const result = await unpackLayerThreaded(streamOf(tar, 65_536), path.join(split, 'diff'), {
      sizeHint: tar.length, splitDir: split, srcDigest: Promise.resolve(given), onTarEntry: () => { entries++; },
    });
    first.end(await makeTar([]));
    await running;
    expect(result.diffId).toBe(given);
    expect(result.split).toBe(true);
    expect(entries).toBe(1);
    expect((await fsp.readdir(split)).sort()).toContain('diff');
  });

  test('a hostile layer on a worker fails with the same CorruptError as in-process, and writes nothing outside', async () => {
    const first = heldStream();
    const running = unpackLayerThreaded(first, await dir('first'), { sizeHint: 1 << 30 });
    const before = unpackThreadStats().started;
    const hostile = await makeTar([{ name: 'a/big', data: randomBytes(THREAD_THRESHOLD) }, { name: '../escape', data: 'x' }]);
    const root = await dir('root/inner');
    const err = await unpackLayerThreaded(streamOf(hostile, 65_536), root, { sizeHint: hostile.length }).catch((e: unknown) => e);
    expect(unpackThreadStats().started).toBe(before + 1);
    const local = await unpackLayer(streamOf(hostile, 65_536), await dir('local')).catch((e: unknown) => e);
    first.end(await makeTar([]));
    await running;
    expect(err).toBeInstanceOf(CorruptError);
    expect((err as CorruptError).message).toBe((local as CorruptError).message);
    expect((err as CorruptError).hint).toBe((local as CorruptError).hint);
    await expect(fsp.access(path.join(store.dir, 'root', 'escape'))).rejects.toThrow();
    expect(unpackThreadStats().running).toBe(0);
  });

  test('a source that fails part-way fails the unpack, destroys nothing twice and ends the thread', async () => {
    const first = heldStream();
    const running = unpackLayerThreaded(first, await dir('first'), { sizeHint: 1 << 30 });
    const { tar } = await bigLayer('b');
    const src = new PassThrough();
    const out = unpackLayerThreaded(src, await dir('cut'), { sizeHint: tar.length }).catch((e: unknown) => e);
    src.write(tar.subarray(0, 3 << 20));
    await new Promise((r) => setTimeout(r, 50));
    src.destroy(new Error('connection reset by peer'));
    const err = await out;
    first.end(await makeTar([]));
    await running;
    expect(err).toBeInstanceOf(CorruptError);
    expect((err as Error).message).toMatch(/corrupt or truncated: connection reset by peer/);
    expect(unpackThreadStats().running).toBe(0);
  });

  test('one layer at a time, or a small one, stays on the calling thread', async () => {
    const before = unpackThreadStats().started;
    const { tar } = await bigLayer('c');
    await unpackLayerThreaded(streamOf(tar, 65_536), await dir('alone'), { sizeHint: tar.length });
    const first = heldStream();
    const running = unpackLayerThreaded(first, await dir('first'), { sizeHint: 1 << 30 });
    const small = await makeTar([{ name: 's', data: 'small' }]);
    await unpackLayerThreaded(streamOf(small), await dir('small'), { sizeHint: small.length });
    first.end(await makeTar([]));
    await running;
    expect(unpackThreadStats().started).toBe(before);
  });
});

describe('errors crossing the thread boundary', () => {
  test('keep their class, hint and errno fields', () => {
    const corrupt = decodeError(encodeError(new CorruptError('bad entry', 'pull again')));
    expect(corrupt).toBeInstanceOf(CorruptError);
    expect((corrupt as CorruptError).hint).toBe('pull again');
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write', path: '/x/y' });
    const back = decodeError(encodeError(enospc)) as NodeJS.ErrnoException;
    expect([back.message, back.code, back.errno, back.syscall, back.path]).toEqual([enospc.message, 'ENOSPC', -28, 'write', '/x/y']);
    expect(decodeError(encodeError('plain words')).message).toBe('plain words');
  });
});
