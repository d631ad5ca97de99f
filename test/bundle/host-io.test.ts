import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildSpec, checkRootfs, devicePathsOf, listHostDevices, readUserDb, statDevices, writeBundle } from '../../src/bundle/index.js';
import { CorruptError, InvalidArgumentError, NotFoundError } from '../../src/errors.js';
import { run } from '../../src/util/exec.js';
import { inputFor } from './fixtures.js';

let tmp = '';
beforeEach(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-hostio-'));
});
afterEach(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

async function rootfsWith(files: Record<string, string>, links: Record<string, string> = {}): Promise<string> {
  const root = path.join(tmp, 'rootfs');
  await fsp.mkdir(path.join(root, 'etc'), { recursive: true });
  for (const [p, text] of Object.entries(files)) {
    await fsp.mkdir(path.dirname(path.join(root, p)), { recursive: true });
    await fsp.writeFile(path.join(root, p), text);
  }
  for (const [p, target] of Object.entries(links)) await fsp.symlink(target, path.join(root, p));
  return root;
}

describe('checkRootfs', () => {
  it('refuses /dev, /proc or /sys as a symlink, even one inside the rootfs', async () => {
    for (const dir of ['dev', 'proc', 'sys']) {
      const root = await rootfsWith({ 'x/keep': '' }, { [dir]: '/x' });
      await expect(checkRootfs(root, [])).rejects.toThrow(new RegExp(`/${dir} is a symbolic link \\(to /x\\)`));
      await fsp.rm(root, { recursive: true });
    }
  });

  it('refuses a mount destination through a link that climbs out of the rootfs, and keeps links that stay in', async () => {
    const root = await rootfsWith({ 'run/keep': '', 'usr/lib/keep': '' },
      { out: '/../../tmp', up: 'usr/../../etc', var: '/usr', loop: 'loop/x', lib: 'usr/lib' });
    for (const dest of ['/out/x', '/up', '/up/y']) await expect(checkRootfs(root, [dest])).rejects.toBeInstanceOf(CorruptError);
    await expect(checkRootfs(root, ['/loop/y'])).rejects.toThrow(/more than 40 symbolic links/);
    await checkRootfs(root, ['/var/lib/x', '/lib/y/z', '/missing/a/b', '/run/keep', '/dev/shm']);
  });
});

describe('readUserDb', () => {
  it('reads etc/passwd and etc/group of the rootfs', async () => {
    const root = await rootfsWith({ 'etc/passwd': 'root:x:0:0::/root:/bin/sh\n', 'etc/group': 'root:x:0:\n' });
    expect(await readUserDb(root)).toEqual({ passwd: 'root:x:0:0::/root:/bin/sh\n', group: 'root:x:0:\n' });
  });

  it('gives empty text for missing files', async () => {
    expect(await readUserDb(await rootfsWith({}))).toEqual({ passwd: '', group: '' });
  });

  it('resolves absolute and relative links inside the rootfs, never on the host', async () => {
    const secret = path.join(tmp, 'host-secret');
    await fsp.writeFile(secret, 'host:x:0:0::/:/bin/sh\n');
    const root = await rootfsWith(
      { 'usr/share/passwd': 'img:x:7:7::/home/img:/bin/sh\n' },
      // An absolute link means the image's /usr/share/passwd; ../../.. cannot climb out of the rootfs.
      { 'etc/passwd': '/usr/share/passwd', 'etc/group': `../../../../../../..${secret}` },
    );
    expect(await readUserDb(root)).toEqual({ passwd: 'img:x:7:7::/home/img:/bin/sh\n', group: '' });
  });

  it('does not read a link that points at a host file by absolute path', async () => {
    const secret = path.join(tmp, 'host-secret');
    await fsp.writeFile(secret, 'host:x:0:0::/:/bin/sh\n');
    const root = await rootfsWith({}, { 'etc/passwd': secret });
    expect((await readUserDb(root)).passwd).toBe('');
  });

  it('reads only regular files, and survives link loops', async () => {
    const root = await rootfsWith({}, { 'etc/passwd': '/etc/passwd', 'etc/group': '/dev/zero' });
    await fsp.mkdir(path.join(root, 'dev'));
    // An image may carry device nodes; reading one would read the host's device.
    await run('mknod', [path.join(root, 'dev/zero'), 'c', '1', '5'], { timeout: 5000 });
    expect(await readUserDb(root)).toEqual({ passwd: '', group: '' });
    await fsp.rm(path.join(root, 'etc/group'));
    await fsp.mkdir(path.join(root, 'etc/group'));
    expect((await readUserDb(root)).group).toBe('');
  });
});

describe('statDevices', () => {
  it('reads type and numbers of device nodes', async () => {
    const out = await statDevices(['/dev/null', '/dev/zero']);
    expect(out['/dev/null']).toMatchObject({ type: 'c', major: 1, minor: 3, uid: 0 });
    expect(out['/dev/zero']).toMatchObject({ type: 'c', major: 1, minor: 5 });
    expect(out['/dev/null']!.fileMode).toBe(0o666);
  });

  it('refuses missing paths and files that are not devices', async () => {
    await expect(statDevices([path.join(tmp, 'nope')])).rejects.toBeInstanceOf(NotFoundError);
    await fsp.writeFile(path.join(tmp, 'file'), '');
    await expect(statDevices([path.join(tmp, 'file')])).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('devicePathsOf lists the host paths of --device and the throttles', () => {
    expect(devicePathsOf({ devices: ['/dev/fuse:/dev/f:rw', '/dev/sda'], resources: { deviceReadBps: ['/dev/sda:1mb'], deviceWriteBps: ['/dev/sdb:2mb'] } }))
      .toEqual(['/dev/fuse', '/dev/sda', '/dev/sdb']);
  });
});

describe('writeBundle', () => {
  it('writes a validated config.json, readable by its owner only', async () => {
    const dir = path.join(tmp, 'bundle');
    const { spec } = buildSpec(inputFor({}));
    await writeBundle(dir, spec);
    expect(JSON.parse(await fsp.readFile(path.join(dir, 'config.json'), 'utf8'))).toEqual(spec);
    expect((await fsp.stat(path.join(dir, 'config.json'))).mode & 0o777).toBe(0o600);
    expect((await fsp.readdir(dir)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });

  it('refuses an invalid spec and writes nothing', async () => {
    const dir = path.join(tmp, 'bad');
    const { spec } = buildSpec(inputFor({}));
    spec.process!.cwd = 'relative';
    await expect(writeBundle(dir, spec)).rejects.toThrow('/process/cwd');
    await expect(fsp.access(path.join(dir, 'config.json'))).rejects.toThrow();
  });
});

describe('listHostDevices', () => {
  it('finds the host\'s device nodes, but not pts or the console', async () => {
    const all = await listHostDevices();
    expect(all['/dev/null']).toMatchObject({ type: 'c', major: 1, minor: 3 });
    expect(Object.keys(all).some((p) => p.startsWith('/dev/pts/') || p === '/dev/console')).toBe(false);
  });
});
