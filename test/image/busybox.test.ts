import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadStateError, InvalidArgumentError, NotFoundError } from '../../src/errors.js';
import { shortId } from '../../src/ids.js';
import { buildBusyboxLayer } from '../../src/image/busybox.js';
import { openStorage } from '../../src/storage/index.js';
import { makeDockerArchive, mountsUnder, openTestImages, withTempRoot, type TempRoot, type TestImages } from '../fixtures/images.js';

let t: TempRoot;
let images: TestImages;
let id: string;

beforeAll(async () => {
  t = await withTempRoot();
  images = openTestImages(t.layout, openStorage(t.layout));
  id = await images.ensureDefault();
});
afterAll(async () => t?.cleanup());

describe('the embedded busybox image', () => {
  it('is listed under localhost/busybox:latest', async () => {
    const rows = await images.list();
    expect(rows).toEqual([expect.objectContaining({ id, repoTags: ['localhost/busybox:latest'] })]);
    expect(rows[0]!.size).toBeGreaterThan(1_000_000);
  });

  it('resolves by short name, full name, full and short ID', async () => {
    for (const ref of ['busybox', 'busybox:latest', 'localhost/busybox', 'localhost/busybox:latest', id, id.slice(7), shortId(id), `sha256:${shortId(id)}`]) {
      const rec = await images.resolve(ref);
      expect(rec.id, ref).toBe(id);
    }
    const rec = await images.resolve('busybox');
    expect(rec.config.config?.Cmd).toEqual(['sh']);
    expect(rec.config.config?.Env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    expect(rec.config.os).toBe('linux');
    expect(rec.config.architecture).toBe(process.arch === 'x64' ? 'amd64' : process.arch);
    expect(rec.layers).toHaveLength(1);
    expect(rec.repoTags).toEqual(['localhost/busybox:latest']);
  });

  it('refuses unknown and malformed references with the right error', async () => {
    await expect(images.resolve('nosuch')).rejects.toBeInstanceOf(NotFoundError);
    await expect(images.resolve('busybox:nosuch')).rejects.toThrow('no such image: busybox:nosuch');
    await expect(images.resolve('Busybox')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(images.resolve('sha256:' + 'f'.repeat(64))).rejects.toBeInstanceOf(NotFoundError);
  });

  it('is reproducible: a rebuild gives the same image ID', async () => {
    expect(await images.ensureDefault()).toBe(id);
    expect(await images.ensureDefault({ rebuild: true })).toBe(id);
    expect(await images.list({ all: true })).toHaveLength(1);
  });

  it('mounts read-only with busybox, its applets, users and standard dirs', async () => {
    const root = await images.mount('busybox');
    expect(await images.mount('busybox')).toBe(root);
    try {
      const bb = await fsp.stat(path.join(root, 'bin/busybox'));
      const sh = await fsp.stat(path.join(root, 'bin/sh'));
      expect(sh.ino).toBe(bb.ino);
      expect(bb.mode & 0o777).toBe(0o755);
      await fsp.access(path.join(root, 'usr/bin/wget'));
      expect(await fsp.readFile(path.join(root, 'etc/passwd'), 'utf8')).toMatch(/^root:x:0:0:root:\/root:\/bin\/sh$/m);
      expect(await fsp.readFile(path.join(root, 'etc/passwd'), 'utf8')).toMatch(/^nobody:x:65534:65534:/m);
      expect(await fsp.readFile(path.join(root, 'etc/group'), 'utf8')).toMatch(/^nogroup:x:65534:$/m);
      expect((await fsp.stat(path.join(root, 'tmp'))).mode & 0o7777).toBe(0o1777);
      expect((await fsp.stat(path.join(root, 'root'))).mode & 0o7777).toBe(0o700);
      for (const d of ['proc', 'sys', 'dev', 'etc', 'run', 'usr/bin', 'home', 'var/tmp']) expect((await fsp.stat(path.join(root, d))).isDirectory(), d).toBe(true);
      await expect(fsp.writeFile(path.join(root, 'x'), 'x')).rejects.toThrow();
    } finally {
      await images.unmount('busybox');
    }
    expect(mountsUnder(t.root)).toEqual([]);
    await images.unmount('busybox');
  });

  it('inspects and shows history as docker does', async () => {
    const info = await images.inspect('busybox');
    expect(info.Id).toBe(id);
    expect(info.RepoTags).toEqual(['localhost/busybox:latest']);
    expect(info.Config).toMatchObject({ Cmd: ['sh'] });
    expect(info.RootFS.Layers).toHaveLength(1);
    const hist = await images.history('busybox');
    expect(hist).toHaveLength(1);
    expect(hist[0]).toMatchObject({ id, emptyLayer: false });
    expect(hist[0]!.size).toBeGreaterThan(1_000_000);
  });

  it('prefers localhost/NAME, then falls back to NAME as stored', async () => {
    const file = path.join(t.root, 'other.tar');
    const other = await makeDockerArchive(file, [{ entries: [{ type: 'file', path: 'marker', content: 'other\n' }] }], { tags: ['busybox:latest'] });
    await images.load(file);
    expect((await images.resolve('busybox')).id).toBe(id);
    expect((await images.resolve('busybox:latest')).id).toBe(id);
    await images.tag('busybox', 'localhost/keep:1');
    await images.remove('localhost/busybox');
    expect((await images.resolve('busybox')).id).toBe(other.id);
    await images.remove('busybox');
    await images.remove('localhost/keep:1');
    expect(await images.list({ all: true })).toEqual([]);
  });

  it('names the package when the host has no usable busybox', async () => {
    await expect(buildBusyboxLayer('/nonexistent/busybox')).rejects.toThrow(NotFoundError);
    await expect(buildBusyboxLayer('/nonexistent/busybox')).rejects.toThrow('busybox-static');
    // A dynamically linked binary would not run in a container without its loader.
    await expect(buildBusyboxLayer('/bin/ls')).rejects.toBeInstanceOf(BadStateError);
  });
});
