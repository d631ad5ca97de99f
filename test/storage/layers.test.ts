import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { CorruptError, NotFoundError } from '../../src/errors.js';
import { run } from '../../src/util/exec.js';
import { diffIdOf, destroyStore, gzip, makeStore, makeTar, streamOf, type TarEntry, type TestStore } from './helpers.js';

let store: TestStore;
beforeEach(async () => {
  store = await makeStore();
});
afterEach(async () => destroyStore(store));

const MTIME = new Date('2021-05-06T07:08:09Z');
const layerDirs = async () => (await fsp.readdir(store.layout.layers).catch(() => [])).filter((n) => n !== 'l');

async function getfattr(file: string, name: string): Promise<string | undefined> {
  try {
    return (await run('getfattr', ['-h', '--only-values', '-n', name, file])).stdout;
  } catch {
    return undefined;
  }
}

describe('unpack', () => {
  test('a plain and a gzip layer give the diffID of the uncompressed tar', async () => {
    const tar = await makeTar([{ name: 'a.txt', data: 'A' }]);
    const plain = await store.storage.layers.unpack(streamOf(tar));
    expect(plain.diffId).toBe(diffIdOf(tar));
    await store.storage.layers.remove(plain.diffId);
    const zipped = await store.storage.layers.unpack(streamOf(gzip(tar), 100));
    expect(zipped.diffId).toBe(diffIdOf(tar));
    expect(await fsp.readFile(path.join(zipped.diffPath, 'a.txt'), 'utf8')).toBe('A');
    expect(await store.storage.layers.list()).toEqual([await store.storage.layers.get(zipped.diffId)]);
  });

  test('files owned by the process still get their owner and mode in a store under a setgid folder of another group', async () => {
    // A new file takes a setgid folder's group, not the process's: the writer may skip a file's chown
    // only where a new file is surely the process's own (unpack.ts, creationOwner).
    const other = path.join(store.dir, 'shared');
    await fsp.mkdir(other);
    await fsp.chown(other, 0, 4242);
    await fsp.chmod(other, 0o2775);
    const layout = { ...store.layout, layers: path.join(other, 'layers') };
    const { openStorage } = await import('../../src/storage/index.js');
    const tar = await makeTar([
      { name: 'etc/', mode: 0o755, mtime: MTIME },
      { name: 'etc/hosts', data: 'h', mode: 0o644, mtime: MTIME },
      { name: 'etc/run.sh', data: 's', mode: 0o755, mtime: MTIME },
      { name: 'etc/secret', data: 'k', mode: 0o600, mtime: MTIME },
    ]);
    const layer = await openStorage(layout).layers.unpack(streamOf(tar));
    for (const [name, mode] of [['etc/hosts', 0o644], ['etc/run.sh', 0o755], ['etc/secret', 0o600]] as const) {
      const st = await fsp.lstat(path.join(layer.diffPath, name));
      expect([name, st.uid, st.gid, st.mode & 0o7777]).toEqual([name, 0, 0, mode]);
    }
  });

  test('files keep modes, owners, times, links and contents', async () => {
    const big = Buffer.alloc(20 << 20);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
    const tar = await makeTar([
      { name: 'usr/', mode: 0o755, mtime: MTIME },
      { name: 'usr/bin/', mode: 0o711, uid: 7, gid: 8, mtime: MTIME },
      { name: 'usr/bin/su', data: 'su', mode: 0o4755, mtime: MTIME },
      { name: 'usr/bin/wall', data: 'wall', mode: 0o2755, gid: 5, mtime: MTIME },
      { name: 'usr/bin/sh', type: 'symlink', linkname: '/bin/busybox', uid: 3, gid: 4, mtime: MTIME },
      { name: 'usr/bin/su2', type: 'link', linkname: 'usr/bin/su' },
      { name: 'tmp/', mode: 0o1777, mtime: MTIME },
      { name: 'home/user/notes', data: 'n', mode: 0o600, uid: 1000, gid: 1000, mtime: MTIME },
      { name: 'big.bin', data: big },
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666, mtime: MTIME },
      { name: 'dev/loop0', type: 'block-device', devmajor: 7, devminor: 0, mode: 0o660, gid: 6 },
      { name: 'run/pipe', type: 'fifo', mode: 0o620 },
      { name: 'cap', data: 'x', pax: { 'SCHILY.xattr.user.label': 'value', 'LIBARCHIVE.xattr.user.bin': Buffer.from([0, 1, 254]).toString('base64') } },
    ]);
    const layer = await store.storage.layers.unpack(streamOf(gzip(tar)));
    const at = (p: string) => path.join(layer.diffPath, p);
    const st = (p: string) => fsp.lstat(at(p));

    expect((await st('usr/bin/su')).mode & 0o7777).toBe(0o4755);
    expect((await st('usr/bin/wall')).mode & 0o7777).toBe(0o2755);
    expect((await st('usr/bin/wall')).gid).toBe(5);
    expect((await st('tmp')).mode & 0o7777).toBe(0o1777);
    const bin = await st('usr/bin');
    expect([bin.mode & 0o7777, bin.uid, bin.gid, bin.mtime.toISOString()]).toEqual([0o711, 7, 8, MTIME.toISOString()]);
    expect((await st('usr')).mtime.toISOString()).toBe(MTIME.toISOString());
    const notes = await st('home/user/notes');
    expect([notes.mode & 0o777, notes.uid, notes.gid, notes.mtime.toISOString()]).toEqual([0o600, 1000, 1000, MTIME.toISOString()]);
    const sh = await st('usr/bin/sh');
    expect(sh.isSymbolicLink()).toBe(true);
    expect([sh.uid, sh.gid, sh.mtime.toISOString()]).toEqual([3, 4, MTIME.toISOString()]);
    expect(await fsp.readlink(at('usr/bin/sh'))).toBe('/bin/busybox');
    expect((await st('usr/bin/su2')).ino).toBe((await st('usr/bin/su')).ino);
    expect((await st('usr/bin/su')).nlink).toBe(2);
    const hash = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(hash(await fsp.readFile(at('big.bin')))).toBe(hash(big));
    const nul = await st('dev/null');
    expect([nul.isCharacterDevice(), nul.rdev, nul.mode & 0o777]).toEqual([true, 0x103, 0o666]);
    const loop = await st('dev/loop0');
    expect([loop.isBlockDevice(), loop.rdev, loop.gid]).toEqual([true, 0x700, 6]);
    expect((await st('run/pipe')).isFIFO()).toBe(true);
    expect(await getfattr(at('cap'), 'user.label')).toBe('value');
    expect((await run('getfattr', ['-e', 'hex', '-n', 'user.bin', at('cap')])).stdout).toContain('user.bin=0x0001fe');
    expect(layer.size).toBe(2 + 4 + 1 + big.length + 1);
    expect(layer.warnings).toEqual([]);
  });

  test('whiteouts become overlayfs whiteouts and opaque folders', async () => {
    const tar = await makeTar([
      { name: 'etc/.wh.motd', data: '' },
      { name: '.wh.tmp', data: '' },
      { name: 'var/cache/', mode: 0o755 },
      { name: 'var/cache/.wh..wh..opq', data: '' },
      { name: 'var/cache/new', data: 'new' },
      { name: 'opq/deep/.wh..wh..opq', data: '' },
    ]);
    const layer = await store.storage.layers.unpack(streamOf(tar));
    for (const p of ['etc/motd', 'tmp']) {
      const st = await fsp.lstat(path.join(layer.diffPath, p));
      expect([st.isCharacterDevice(), st.rdev]).toEqual([true, 0]);
    }
    await expect(fsp.lstat(path.join(layer.diffPath, 'etc/.wh.motd'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await getfattr(path.join(layer.diffPath, 'var/cache'), 'trusted.overlay.opaque')).toBe('y');
    expect(await getfattr(path.join(layer.diffPath, 'opq/deep'), 'trusted.overlay.opaque')).toBe('y');
    expect(await fsp.readdir(path.join(layer.diffPath, 'var/cache'))).toEqual(['new']);
  });

  test('a later entry replaces an earlier one of the same name', async () => {
    const tar = await makeTar([
      { name: 'x', type: 'symlink', linkname: '/etc' },
      { name: 'x/', mode: 0o700 },
      { name: 'x/file', data: 'inside' },
      { name: 'y/', mode: 0o755 },
      { name: 'y/sub', data: 'gone' },
      { name: 'y', data: 'now a file' },
      { name: '.wh.w', data: '' },
      { name: 'w/inside', data: 'w' },
      { name: '.wh.v', data: '' },
      { name: 'v/', mode: 0o755 },
    ]);
    const layer = await store.storage.layers.unpack(streamOf(tar));
    expect((await fsp.lstat(path.join(layer.diffPath, 'x'))).isDirectory()).toBe(true);
    expect(await fsp.readFile(path.join(layer.diffPath, 'x/file'), 'utf8')).toBe('inside');
    expect(await fsp.readFile(path.join(layer.diffPath, 'y'), 'utf8')).toBe('now a file');
    expect(await fsp.readFile(path.join(layer.diffPath, 'w/inside'), 'utf8')).toBe('w');
    expect((await fsp.lstat(path.join(layer.diffPath, 'v'))).isDirectory()).toBe(true);
  });

  test('a layer xattr in the trusted.overlay namespace is dropped with a warning', async () => {
    const tar = await makeTar([{ name: 'd/', pax: { 'SCHILY.xattr.trusted.overlay.opaque': 'y' } }]);
    const layer = await store.storage.layers.unpack(streamOf(tar));
    expect(await getfattr(path.join(layer.diffPath, 'd'), 'trusted.overlay.opaque')).toBeUndefined();
    expect(layer.warnings?.join()).toMatch(/trusted.overlay.opaque/);
  });

  test('zstd layers unpack through the zstd command', async () => {
    const tar = await makeTar([{ name: 'z', data: 'zstd' }]);
    const zst = await compressZstd(tar);
    const layer = await store.storage.layers.unpack(streamOf(zst));
    expect(layer.diffId).toBe(diffIdOf(tar));
    expect(await fsp.readFile(path.join(layer.diffPath, 'z'), 'utf8')).toBe('zstd');
  });

  test('an already present layer is not unpacked again', async () => {
    const tar = await makeTar([{ name: 'a', data: 'A' }]);
    const first = await store.storage.layers.unpack(streamOf(tar));
    const again = await store.storage.layers.unpack(streamOf(tar), { expectedDiffId: first.diffId });
    expect(again).toEqual(await store.storage.layers.get(first.diffId));
    const unknown = await store.storage.layers.unpack(streamOf(tar));
    expect(unknown.diffId).toBe(first.diffId);
    expect(await layerDirs()).toEqual([first.diffId.slice(7)]);
  });

  test('concurrent unpacks of the same layer both succeed', async () => {
    const tar = await makeTar(Array.from({ length: 200 }, (_, i) => ({ name: `d${i % 10}/f${i}`, data: `file ${i}` })));
    const results = await Promise.all([1, 2, 3].map(() => store.storage.layers.unpack(streamOf(gzip(tar), 512))));
    expect(new Set(results.map((r) => r.diffId)).size).toBe(1);
    expect(await layerDirs()).toEqual([results[0]!.diffId.slice(7)]);
    expect(await fsp.readFile(path.join(results[0]!.diffPath, 'd3/f13'), 'utf8')).toBe('file 13');
  });

  test('remove deletes the layer and its short link; get then fails', async () => {
    const layer = await store.storage.layers.unpack(streamOf(await makeTar([{ name: 'a', data: 'A' }])));
    expect(await fsp.readdir(path.join(store.layout.layers, 'l'))).toHaveLength(1);
    await store.storage.layers.remove(layer.diffId);
    await store.storage.layers.remove(layer.diffId);
    expect(await store.storage.layers.has(layer.diffId)).toBe(false);
    await expect(store.storage.layers.get(layer.diffId)).rejects.toBeInstanceOf(NotFoundError);
    expect(await layerDirs()).toEqual([]);
    expect(await fsp.readdir(path.join(store.layout.layers, 'l'))).toEqual([]);
  });
});

describe('unsafe or broken layers are refused and leave nothing', () => {
  const cases: Array<[string, TarEntry[], RegExp]> = [
    ['a ../ path', [{ name: '../escape', data: 'x' }], /"\.\.\/escape" points outside the layer/],
    ['a nested ../ path', [{ name: 'a/../../escape', data: 'x' }], /points outside the layer/],
    ['an absolute path that climbs out', [{ name: '/../../etc/evil', data: 'x' }], /"\/\.\.\/\.\.\/etc\/evil"/],
    ['a write through a symlink', [{ name: 'etc', type: 'symlink', linkname: '/etc' }, { name: 'etc/evil', data: 'x' }], /"etc" would write through a symlink/],
    ['a write through a relative symlink', [{ name: 'up', type: 'symlink', linkname: '../..' }, { name: 'up/evil', data: 'x' }], /through a symlink/],
    ['a folder made through a symlink', [{ name: 'd', type: 'symlink', linkname: '/tmp' }, { name: 'd/sub/', type: 'directory' }], /through a symlink/],
    ['a hard link to outside', [{ name: 'passwd', type: 'link', linkname: '../../../../etc/passwd' }], /points outside the layer/],
    ['a hard link to an absolute path not in the layer', [{ name: 'passwd', type: 'link', linkname: '/etc/passwd' }], /not in the layer/],
    ['a hard link through a symlink', [{ name: 's', type: 'symlink', linkname: '/etc' }, { name: 'passwd', type: 'link', linkname: 's/passwd' }], /through a symlink/],
    ['a whiteout through a symlink', [{ name: 's', type: 'symlink', linkname: '/etc' }, { name: 's/.wh.passwd', data: '' }], /through a symlink/],
    ['an opaque marker through a symlink', [{ name: 's', type: 'symlink', linkname: '/etc' }, { name: 's/.wh..wh..opq', data: '' }], /through a symlink/],
    ['a device through a symlink', [{ name: 's', type: 'symlink', linkname: '/tmp' }, { name: 's/null', type: 'character-device', devmajor: 1, devminor: 3 }], /through a symlink/],
    // The root itself replaced by a symlink, then a write through it (found in review: it reached the host).
    ['"./" as a symlink', [{ name: './', type: 'symlink', linkname: '/tmp' }, { name: 'evil', data: 'x' }], /names the layer root/],
    ['"." as a symlink', [{ name: '.', type: 'symlink', linkname: '/tmp' }, { name: 'evil', data: 'x' }], /names the layer root/],
    ['"." as a hard link', [{ name: 'f', data: 'x' }, { name: '.', type: 'link', linkname: 'f' }], /names the layer root/],
  ];

  test.each(cases)('%s', async (_what, entries, message) => {
    const sentinel = path.join(store.dir, 'outside');
    const tar = await makeTar(entries);
    const err = await store.storage.layers.unpack(streamOf(tar)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptError);
    expect((err as Error).message).toMatch(message);
    expect(await layerDirs()).toEqual([]);
    await expect(fsp.lstat(sentinel)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('a diffID mismatch', async () => {
    const tar = await makeTar([{ name: 'a', data: 'A' }]);
    const expected = diffIdOf(Buffer.from('other'));
    const err = await store.storage.layers.unpack(streamOf(tar), { expectedDiffId: expected }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptError);
    expect((err as Error).message).toContain(expected);
    expect((err as Error).message).toContain(diffIdOf(tar));
    expect(await layerDirs()).toEqual([]);
  });

  test('a truncated gzip stream', async () => {
    const tar = await makeTar([{ name: 'a', data: Buffer.alloc(100_000, 1) }, { name: 'b', data: 'B' }]);
    const zipped = gzip(tar);
    for (const cut of [zipped.length - 8, Math.floor(zipped.length / 2), 20]) {
      const err = await store.storage.layers.unpack(streamOf(zipped.subarray(0, cut))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CorruptError);
      expect(await layerDirs()).toEqual([]);
    }
  });

  test('a truncated plain tar', async () => {
    const tar = await makeTar([{ name: 'a', data: Buffer.alloc(100_000, 1) }]);
    await expect(store.storage.layers.unpack(streamOf(tar.subarray(0, 50_000)))).rejects.toBeInstanceOf(CorruptError);
    expect(await layerDirs()).toEqual([]);
  });

  test('a source stream that fails', async () => {
    const tar = gzip(await makeTar([{ name: 'a', data: Buffer.alloc(100_000, 1) }]));
    async function* broken() {
      yield tar.subarray(0, 1000);
      throw new Error('connection reset');
    }
    await expect(store.storage.layers.unpack(Readable.from(broken()))).rejects.toThrow(/connection reset/);
    expect(await layerDirs()).toEqual([]);
  });

  test('a corrupt zstd frame', async () => {
    const zst = await compressZstd(await makeTar([{ name: 'a', data: Buffer.alloc(100_000, 1) }]));
    await expect(store.storage.layers.unpack(streamOf(zst.subarray(0, zst.length - 10)))).rejects.toBeInstanceOf(CorruptError);
    expect(await layerDirs()).toEqual([]);
  });
});

test('repair removes layers a crashed unpack left flagged incomplete', async () => {
  const keep = await store.storage.layers.unpack(streamOf(await makeTar([{ name: 'a', data: 'A' }])));
  const deadOwner = '999999999 1';
  const crashedTmp = path.join(store.layout.layers, '.tmp-crashed');
  await fsp.mkdir(path.join(crashedTmp, 'diff'), { recursive: true });
  await fsp.writeFile(path.join(crashedTmp, 'incomplete'), deadOwner);
  const flagged = path.join(store.layout.layers, 'ab'.repeat(32));
  await fsp.mkdir(path.join(flagged, 'diff'), { recursive: true });
  await fsp.writeFile(path.join(flagged, 'meta.json'), '{}');
  await fsp.writeFile(path.join(flagged, 'incomplete'), deadOwner);
  const live = path.join(store.layout.layers, '.tmp-live');
  await fsp.mkdir(live);
  await fsp.writeFile(path.join(live, 'incomplete'), `${process.pid} 0`);

  await store.storage.layers.repair();

  expect((await layerDirs()).sort()).toEqual(['.tmp-live', keep.diffId.slice(7)].sort());
  expect(await store.storage.layers.has(keep.diffId)).toBe(true);
});

async function compressZstd(data: Buffer): Promise<Buffer> {
  const { execa } = await import('execa');
  const res = await execa('zstd', ['-q', '-c'], { input: data, encoding: 'buffer', timeout: 10_000 });
  return Buffer.from(res.stdout as Uint8Array);
}
