import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../../src/errors.js';
import type { Digest } from '../../src/ids.js';
import { destroyStore, gzip, leftoverMounts, makeStore, makeTar, streamOf, type TarEntry, type TestStore } from './helpers.js';

let store: TestStore;
beforeEach(async () => {
  store = await makeStore();
});
afterEach(async () => {
  await destroyStore(store);
  expect(await leftoverMounts(store.dir)).toEqual([]);
});

const MTIME = new Date('2019-09-09T09:09:09Z');
const BIG = Buffer.from(Buffer.alloc(20 << 20).map((_, i) => (i * 31) & 0xff));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function layer(entries: TarEntry[]): Promise<Digest> {
  return (await store.storage.layers.unpack(streamOf(gzip(await makeTar(entries)), 65_536))).diffId;
}

/** Bottom: a small distro. Middle: deletes a file, makes a cache opaque. Top: deletes a folder, edits a file. */
async function threeLayers(): Promise<Digest[]> {
  return [
    await layer([
      { name: 'etc/', mode: 0o755 },
      { name: 'etc/motd', data: 'hello' },
      { name: 'etc/os-release', data: 'v1' },
      { name: 'var/cache/a', data: 'a' },
      { name: 'var/cache/b', data: 'b' },
      { name: 'tmp/', mode: 0o1777 },
      { name: 'tmp/old', data: 'old' },
      { name: 'bin/busybox', data: 'ELF', mode: 0o4755, mtime: MTIME },
      { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
      { name: 'bin/ls', type: 'link', linkname: 'bin/busybox' },
      { name: 'home/u/', mode: 0o700, uid: 1000, gid: 1001, mtime: MTIME },
      { name: 'home/u/big', data: BIG, uid: 1000, gid: 1001 },
    ]),
    await layer([
      { name: 'etc/.wh.motd', data: '' },
      { name: 'etc/new', data: 'new' },
      { name: 'var/cache/', mode: 0o755 },
      { name: 'var/cache/.wh..wh..opq', data: '' },
      { name: 'var/cache/c', data: 'c' },
    ]),
    await layer([
      { name: '.wh.tmp', data: '' },
      { name: 'etc/os-release', data: 'v3' },
      { name: 'var/cache/d', data: 'd' },
    ]),
  ];
}

describe('a three-layer image', () => {
  test('the merged view applies whiteouts, opaque folders and metadata', async () => {
    const layers = await threeLayers();
    const snap = await store.storage.snapshots.prepare('c1', { image: 'sha256:img', layers }, { owner: 'container' });
    expect(snap.mounted).toBe(true);
    const at = (p: string) => path.join(snap.mountpoint, p);

    expect((await fsp.readdir(snap.mountpoint)).sort()).toEqual(['bin', 'etc', 'home', 'var']);
    expect((await fsp.readdir(at('etc'))).sort()).toEqual(['new', 'os-release']);
    expect(await fsp.readFile(at('etc/os-release'), 'utf8')).toBe('v3');
    expect((await fsp.readdir(at('var/cache'))).sort()).toEqual(['c', 'd']);
    await expect(fsp.lstat(at('tmp'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await fsp.readlink(at('bin/sh'))).toBe('busybox');
    expect(await fsp.readFile(at('bin/sh'), 'utf8')).toBe('ELF');
    const [busybox, ls] = [await fsp.stat(at('bin/busybox')), await fsp.stat(at('bin/ls'))];
    expect(ls.ino).toBe(busybox.ino);
    expect([busybox.mode & 0o7777, busybox.mtime.toISOString()]).toEqual([0o4755, MTIME.toISOString()]);
    const home = await fsp.stat(at('home/u'));
    expect([home.mode & 0o7777, home.uid, home.gid, home.mtime.toISOString()]).toEqual([0o700, 1000, 1001, MTIME.toISOString()]);
    const big = await fsp.stat(at('home/u/big'));
    expect([big.size, big.uid, big.gid]).toEqual([BIG.length, 1000, 1001]);
    expect(sha(await fsp.readFile(at('home/u/big')))).toBe(sha(BIG));
  });

  test('writes land in the upper layer and count as usage', async () => {
    const layers = await threeLayers();
    const snap = await store.storage.snapshots.prepare('c2', { image: 'sha256:img', layers }, { owner: 'container' });
    const before = await store.storage.snapshots.usage('c2');
    await fsp.writeFile(path.join(snap.mountpoint, 'etc/written'), Buffer.alloc(100_000, 1));
    await fsp.rm(path.join(snap.mountpoint, 'etc/new'));
    expect(await store.storage.snapshots.usage('c2')).toBeGreaterThanOrEqual(before + 100_000);
    const upper = path.join(store.layout.snapshots, 'c2', 'upper');
    expect((await fsp.readdir(path.join(upper, 'etc'))).sort()).toEqual(['new', 'written']);
    expect((await fsp.lstat(path.join(upper, 'etc/new'))).isCharacterDevice()).toBe(true);
    // the layers themselves are untouched
    const middle = await store.storage.layers.get(layers[1]!);
    expect(await fsp.readFile(path.join(middle.diffPath, 'etc/new'), 'utf8')).toBe('new');

    await store.storage.snapshots.unmount('c2');
    expect((await store.storage.snapshots.get('c2'))?.mounted).toBe(false);
    expect(await store.storage.snapshots.mount('c2')).toBe(snap.mountpoint);
    expect(await fsp.readFile(path.join(snap.mountpoint, 'etc/written'))).toHaveLength(100_000);
    await expect(fsp.lstat(path.join(snap.mountpoint, 'etc/new'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('a read-only snapshot refuses writes', async () => {
    const layers = await threeLayers();
    const snap = await store.storage.snapshots.prepare('ro', { image: 'sha256:img', layers }, { owner: 'image-mount', readOnly: true });
    expect(snap.readOnly).toBe(true);
    // Who it belongs to is a field of its own, not a convention of its key.
    expect((await store.storage.snapshots.get('ro'))!.owner).toBe('image-mount');
    expect(await fsp.readFile(path.join(snap.mountpoint, 'etc/os-release'), 'utf8')).toBe('v3');
    await expect(fsp.writeFile(path.join(snap.mountpoint, 'etc/x'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
    await expect(fsp.rm(path.join(snap.mountpoint, 'etc/new'))).rejects.toMatchObject({ code: 'EROFS' });
    expect(await store.storage.snapshots.usage('ro')).toBe(0);
  });
});

test('a single-layer read-only snapshot mounts and refuses writes', async () => {
  const only = await layer([{ name: 'hello', data: 'world' }]);
  const snap = await store.storage.snapshots.prepare('one', { image: 'i', layers: [only] }, { owner: 'image-mount', readOnly: true });
  expect(await fsp.readdir(snap.mountpoint)).toEqual(['hello']);
  await expect(fsp.writeFile(path.join(snap.mountpoint, 'x'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
});

test('an image with no layers gets an empty writable root', async () => {
  const snap = await store.storage.snapshots.prepare('scratch', { image: 'i', layers: [] }, { owner: 'container' });
  expect(await fsp.readdir(snap.mountpoint)).toEqual([]);
  await fsp.writeFile(path.join(snap.mountpoint, 'x'), 'x');
  await expect(store.storage.snapshots.prepare('scratch-ro', { image: 'i', layers: [] }, { owner: 'image-mount', readOnly: true })).rejects.toBeInstanceOf(InvalidArgumentError);
});

test('a 70-layer image mounts with the top layer winning', async () => {
  const layers: Digest[] = [];
  for (let i = 0; i < 70; i++) layers.push(await layer([{ name: `f${i}`, data: String(i) }, { name: 'shared', data: `layer ${i}` }]));
  const snap = await store.storage.snapshots.prepare('deep', { image: 'i', layers }, { owner: 'container' });
  expect(await fsp.readdir(snap.mountpoint)).toHaveLength(71);
  expect(await fsp.readFile(path.join(snap.mountpoint, 'shared'), 'utf8')).toBe('layer 69');
  expect(await fsp.readFile(path.join(snap.mountpoint, 'f0'), 'utf8')).toBe('0');
  const ro = await store.storage.snapshots.prepare('deep-ro', { image: 'i', layers }, { owner: 'image-mount', readOnly: true });
  expect(await fsp.readFile(path.join(ro.mountpoint, 'shared'), 'utf8')).toBe('layer 69');
});

describe('life cycle', () => {
  test('prepare refuses a taken key, a missing layer and a bad key, and leaves nothing', async () => {
    const only = await layer([{ name: 'a', data: 'a' }]);
    await store.storage.snapshots.prepare('k', { image: 'i', layers: [only] }, { owner: 'container' });
    await expect(store.storage.snapshots.prepare('k', { image: 'i', layers: [only] }, { owner: 'container' })).rejects.toBeInstanceOf(AlreadyExistsError);
    const missing = `sha256:${'0'.repeat(64)}` as Digest;
    await expect(store.storage.snapshots.prepare('m', { image: 'i', layers: [only, missing] }, { owner: 'container' })).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.storage.snapshots.prepare('../escape', { image: 'i', layers: [only] }, { owner: 'container' })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await fsp.readdir(store.layout.snapshots)).toEqual(['k']);
  });

  test('unmount and remove are idempotent; get and list follow', async () => {
    const only = await layer([{ name: 'a', data: 'a' }]);
    const snap = await store.storage.snapshots.prepare('k', { image: 'img', layers: [only] }, { owner: 'container' });
    expect(await store.storage.snapshots.list()).toEqual([snap]);
    await store.storage.snapshots.unmount('k');
    await store.storage.snapshots.unmount('k');
    expect(await leftoverMounts(store.dir)).toEqual([]);
    await store.storage.snapshots.remove('k');
    await store.storage.snapshots.remove('k');
    await store.storage.snapshots.unmount('k');
    expect(await store.storage.snapshots.get('k')).toBeUndefined();
    expect(await store.storage.snapshots.list()).toEqual([]);
    await expect(store.storage.snapshots.mount('k')).rejects.toBeInstanceOf(NotFoundError);
  });

  test('mount twice mounts once', async () => {
    const only = await layer([{ name: 'a', data: 'a' }]);
    const snap = await store.storage.snapshots.prepare('k', { image: 'i', layers: [only] }, { owner: 'container' });
    await Promise.all([store.storage.snapshots.mount('k'), store.storage.snapshots.mount('k')]);
    expect((await leftoverMounts(store.dir)).filter((m) => m === snap.mountpoint)).toHaveLength(1);
  });

  test('a busy mount is detached lazily', async () => {
    const only = await layer([{ name: 'a', data: 'a' }]);
    const snap = await store.storage.snapshots.prepare('busy', { image: 'i', layers: [only] }, { owner: 'container' });
    const holder = execa('sleep', ['30'], { cwd: snap.mountpoint, reject: false });
    try {
      await store.storage.snapshots.remove('busy');
      expect(await leftoverMounts(store.dir)).toEqual([]);
      await expect(fsp.lstat(path.join(store.layout.snapshots, 'busy'))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      if (holder.pid) process.kill(holder.pid);
      await holder;
    }
  });

  test('repair unmounts and removes a snapshot whose prepare crashed', async () => {
    const only = await layer([{ name: 'a', data: 'a' }]);
    await store.storage.snapshots.prepare('ok', { image: 'i', layers: [only] }, { owner: 'container' });
    const crashed = await store.storage.snapshots.prepare('crashed', { image: 'i', layers: [only] }, { owner: 'container' });
    await fsp.writeFile(path.join(store.layout.snapshots, 'crashed', 'incomplete'), '999999999 1');
    expect(await store.storage.snapshots.get('crashed')).toBeUndefined();
    await store.storage.snapshots.repair();
    expect(await fsp.readdir(store.layout.snapshots)).toEqual(['ok']);
    expect(await leftoverMounts(store.dir)).not.toContain(crashed.mountpoint);
  });
});
