/**
 * Issue 13, volumes: every mount kind writes where it should in real containers, copy-up keeps owners,
 * modes and xattrs, the data-packed volume container works through --volumes-from, a backup and restore
 * goes through a bind, bad input is refused with 125 and nothing left, rm -v keeps named volumes, a
 * copy-up killed half-way is redone, and a driver registered from the API does the storing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { findLeaks } from '../helpers/leaks.js';
import type { VolumeDriver } from '../../src/api/index.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/berth.js');
const IMAGE = 'volimg:1';
let t: TestEngine;
let work: string;

beforeAll(async () => {
  t = await testEngine(3150 + (process.pid % 50));
  await t.engine.images.ensureDefault();
  work = await fsp.mkdtemp(path.join(tmpdir(), 'berth-vol-'));
  // An image whose VOLUME /data has content: a file of uid 1000 mode 0640 with an xattr, a folder of
  // uid 2000 mode 0750, and a symlink to the host's /etc/shadow that must be copied as a link.
  const rootfs = path.join(work, 'rootfs');
  await fsp.mkdir(path.join(rootfs, 'bin'), { recursive: true });
  await fsp.copyFile('/bin/busybox', path.join(rootfs, 'bin/busybox'));
  for (const app of ['sh', 'cat', 'stat', 'ls', 'tar', 'true', 'sleep', 'getfattr', 'readlink', 'grep']) await fsp.symlink('busybox', path.join(rootfs, 'bin', app));
  await fsp.mkdir(path.join(rootfs, 'data/sub'), { recursive: true });
  await fsp.writeFile(path.join(rootfs, 'data/f'), 'seed\n');
  await fsp.chown(path.join(rootfs, 'data/f'), 1000, 1000);
  await fsp.chmod(path.join(rootfs, 'data/f'), 0o640);
  execFileSync('setfattr', ['-n', 'user.origin', '-v', 'image', path.join(rootfs, 'data/f')]);
  await fsp.chown(path.join(rootfs, 'data/sub'), 2000, 2000);
  await fsp.chmod(path.join(rootfs, 'data/sub'), 0o750);
  await fsp.symlink('/etc/shadow', path.join(rootfs, 'data/shadow'));
  await fsp.chmod(path.join(rootfs, 'data'), 0o711);
  // A path whose link climbs out of the rootfs: never copied from, and refused at start.
  await fsp.symlink('../../../../../../etc', path.join(rootfs, 'escape'));
  execFileSync('tar', ['--xattrs', '--numeric-owner', '-C', rootfs, '-cf', path.join(work, 'img.tar'), '.']);
  const imp = await t.cli('import', '-c', 'VOLUME /data', '-c', 'CMD ["sh"]', path.join(work, 'img.tar'), IMAGE);
  expect(imp.exitCode, imp.stderr).toBe(0);
}, 120_000);

afterAll(() => cleanupAll(t, work));

const ok = (...args: string[]) => t.ok(...args);

const volumes = async () => (await t.engine.volumes.list()).map((v) => v.Name).sort();

describe('mounts in real containers', () => {
  it('writes through a bind (a missing host folder is made), a named volume, an anonymous one and tmpfs', async () => {
    const host = path.join(work, 'made/by/v');
    await ok('run', '--name', 'kinds', '--network', 'none', '-v', `${host}:/b:z`, '-v', 'kindsvol:/n', '-v', '/anon',
      '--mount', 'type=tmpfs,target=/t,tmpfs-size=1m', 'busybox', 'sh', '-c',
      'echo b >/b/f && echo n >/n/f && echo a >/anon/f && grep " /t " /proc/mounts');
    expect(await fsp.readFile(path.join(host, 'f'), 'utf8')).toBe('b\n');
    const mounts = JSON.parse(await ok('inspect', '-f', '{{json .Mounts}}', 'kinds')) as { Type: string; Name?: string; Source: string; Destination: string; RW: boolean; Mode: string }[];
    expect(mounts.map((m) => `${m.Type} ${m.Destination}`).sort()).toEqual(['bind /b', 'tmpfs /t', 'volume /anon', 'volume /n']);
    const named = mounts.find((m) => m.Destination === '/n')!;
    expect(named).toMatchObject({ Name: 'kindsvol', Mode: 'z', RW: true });
    expect(await fsp.readFile(path.join(named.Source, 'f'), 'utf8')).toBe('n\n');
    const anon = mounts.find((m) => m.Destination === '/anon')!;
    expect(await fsp.readFile(path.join(anon.Source, 'f'), 'utf8')).toBe('a\n');
    // in use: refused, with the container named
    const rm = await t.cli('volume', 'rm', 'kindsvol');
    expect(rm.exitCode).toBe(1);
    expect(rm.stderr).toContain('in use by container kinds');
    // rm -v: the anonymous volume goes, the named one and the bind source stay
    await ok('rm', '-v', 'kinds');
    expect(await volumes()).toEqual(['kindsvol']);
    expect(existsSync(path.join(host, 'f'))).toBe(true);
    expect(await ok('run', '--rm', '--network', 'none', '-v', 'kindsvol:/n:ro', 'busybox', 'cat', '/n/f')).toBe('n');
    await ok('volume', 'rm', 'kindsvol');
    expect(await volumes()).toEqual([]);
  }, 60_000);

  it('binds an existing host file with -v, as Docker does (only a missing source is made, as a folder)', async () => {
    const file = path.join(work, 'bound.conf');
    await fsp.writeFile(file, 'from the host\n');
    expect(await ok('run', '--rm', '--network', 'none', '-v', `${file}:/etc/app.conf:ro`, 'busybox', 'cat', '/etc/app.conf')).toBe('from the host');
    expect(await fsp.readFile(file, 'utf8')).toBe('from the host\n');
  });

  it('lends binds and volumes through --volumes-from, and rm -f of a running user unmounts its tmpfs volume', async () => {
    const shared = path.join(work, 'srv-data');
    await ok('run', '--name', 'src', '--network', 'none', '-v', `${shared}:/shared`, 'busybox', 'sh', '-c', 'echo x >/shared/f');
    expect(await ok('run', '--rm', '--network', 'none', '--volumes-from', 'src', 'busybox', 'cat', '/shared/f')).toBe('x');
    await ok('volume', 'create', '-o', 'type=tmpfs', '-o', 'device=tmpfs', 'tmpv');
    await ok('run', '-d', '--name', 'holder', '--network', 'none', '-v', 'tmpv:/m', 'busybox', 'sleep', '60');
    const mountpoint = (await t.engine.volumes.inspect('tmpv')).Mountpoint;
    expect(execFileSync('cat', ['/proc/self/mounts'], { encoding: 'utf8' })).toContain(` ${mountpoint} tmpfs`);
    await ok('rm', '-f', 'holder', 'src');
    expect(execFileSync('cat', ['/proc/self/mounts'], { encoding: 'utf8' })).not.toContain(mountpoint);
    expect(await fsp.readFile(path.join(shared, 'f'), 'utf8')).toBe('x\n');
    await ok('volume', 'rm', 'tmpv');
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  }, 60_000);

  it('shows every mount in inspect straight after create, and run --rm removes anonymous volumes', async () => {
    await ok('create', '--name', 'shown', '--network', 'none', IMAGE);
    const mounts = JSON.parse(await ok('inspect', '-f', '{{json .Mounts}}', 'shown')) as { Type: string; Destination: string; Driver: string }[];
    expect(mounts).toEqual([expect.objectContaining({ Type: 'volume', Destination: '/data', Driver: 'local' })]);
    await ok('rm', '-v', 'shown');
    await ok('run', '--rm', '--network', 'none', IMAGE, 'true');
    expect(await volumes()).toEqual([]);
  }, 60_000);

  it('mounts a local tmpfs volume while a container uses it, and unmounts it after', async () => {
    await ok('volume', 'create', '-o', 'type=tmpfs', '-o', 'device=tmpfs', '-o', 'o=size=2m', '--label', 'k=v', 'tv');
    const inspect = JSON.parse(await ok('volume', 'inspect', 'tv')) as { Mountpoint: string; Options: Record<string, string>; Labels: Record<string, string> }[];
    expect(inspect[0]!.Options).toEqual({ type: 'tmpfs', device: 'tmpfs', o: 'size=2m' });
    expect(inspect[0]!.Labels).toEqual({ k: 'v' });
    expect(await ok('volume', 'ls', '--filter', 'label=k=v', '-q')).toBe('tv');
    expect(await ok('volume', 'ls', '--filter', 'dangling=true', '--format', '{{.Name}} {{.Driver}}')).toBe('tv local');
    const out = await ok('run', '--rm', '--network', 'none', '-v', 'tv:/m', 'busybox', 'sh', '-c', 'echo x >/m/f; grep " /m " /proc/mounts');
    expect(out).toMatch(/^tmpfs \/m tmpfs .*size=2048k/);
    expect(execFileSync('cat', ['/proc/self/mounts'], { encoding: 'utf8' })).not.toContain(inspect[0]!.Mountpoint);
    await ok('volume', 'rm', 'tv');
  }, 60_000);
});

describe('copy-up and volume containers', () => {
  it('fills a new volume with the image content: owners, modes, xattrs, links as links', async () => {
    const out = await ok('run', '--rm', '--network', 'none', '-v', 'cu:/data', IMAGE, 'sh', '-c',
      'stat -c "%n %u %g %a" /data /data/f /data/sub; readlink /data/shadow; cat /data/f');
    expect(out.split('\n')).toEqual(['/data 0 0 711', '/data/f 1000 1000 640', '/data/sub 2000 2000 750', '/etc/shadow', 'seed']);
    const src = (await t.engine.volumes.inspect('cu')).Mountpoint;
    expect(execFileSync('getfattr', ['--only-values', '-n', 'user.origin', path.join(src, 'f')], { encoding: 'utf8' })).toBe('image');
    expect((await fsp.lstat(path.join(src, 'shadow'))).isSymbolicLink()).toBe(true);
    // not new any more: what a container wrote stays, nothing is copied over it
    await ok('run', '--rm', '--network', 'none', '-v', 'cu:/data', IMAGE, 'sh', '-c', 'echo mine >/data/f');
    expect(await ok('run', '--rm', '--network', 'none', '-v', 'cu:/data', IMAGE, 'cat', '/data/f')).toBe('mine');
    // volume-nocopy: an empty volume stays empty
    expect(await ok('run', '--rm', '--network', 'none', '--mount', 'type=volume,src=nc,dst=/data,volume-nocopy', IMAGE, 'ls', '-A', '/data')).toBe('');
    await ok('volume', 'rm', 'cu', 'nc');
  }, 60_000);

  it('serves a data-packed volume container through --volumes-from; backup and restore through a bind', async () => {
    await ok('create', '--name', 'data', '--network', 'none', IMAGE);
    expect(await ok('run', '--rm', '--network', 'none', '--volumes-from', 'data', 'busybox', 'cat', '/data/f')).toBe('seed');
    const ro = await t.cli('run', '--rm', '--network', 'none', '--volumes-from', 'data:ro', 'busybox', 'sh', '-c', 'echo no >/data/f');
    expect(ro.exitCode).not.toBe(0);
    const backup = path.join(work, 'backup');
    await ok('run', '--rm', '--network', 'none', '--volumes-from', 'data', '-v', `${backup}:/backup`, 'busybox', 'tar', 'cf', '/backup/data.tar', '/data');
    expect(existsSync(path.join(backup, 'data.tar'))).toBe(true);
    await ok('run', '--rm', '--network', 'none', '-v', 'restored:/data', '-v', `${backup}:/backup`, 'busybox', 'tar', 'xf', '/backup/data.tar', '-C', '/');
    expect(await ok('run', '--rm', '--network', 'none', '-v', 'restored:/data', 'busybox', 'stat', '-c', '%u %a', '/data/f')).toBe('1000 640');
    // the volume container's anonymous volume is still in use by nobody else: rm -v takes it
    await ok('rm', '-v', 'data');
    expect(await volumes()).toEqual(['restored']);
    await ok('volume', 'rm', 'restored');
  }, 90_000);

  it('redoes a copy-up that was killed half-way, never taking it for complete', async () => {
    const killed = await execa(BIN, ['--root', t.root, '--runroot', t.runroot, 'create', '--name', 'half', '--network', 'none', '-v', 'kv:/data', IMAGE],
      { reject: false, env: { BERTH_FAILPOINT: 'volume.copyup.mid-copy' }, timeout: 60_000 });
    expect(killed.signal).toBe('SIGKILL');
    const mountpoint = path.join(t.root, 'volumes/kv/_data');
    expect(await fsp.readdir(mountpoint)).toEqual([]);
    // The next command repairs: the half-made container goes, the temp copy goes, the copy is done again.
    expect(await ok('run', '--rm', '--network', 'none', '-v', 'kv:/data', IMAGE, 'cat', '/data/f')).toBe('seed');
    expect(await ok('ps', '-a', '-q')).toBe('');
    expect((await fsp.readdir(path.join(t.root, 'volumes/kv'))).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    await ok('volume', 'rm', 'kv');
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  }, 90_000);
});

describe('bad input', () => {
  it('never copies through a link that leads out of the rootfs', async () => {
    const res = await t.cli('run', '--rm', '--network', 'none', '-v', 'esc:/escape', IMAGE, 'true');
    expect(res.exitCode).toBe(125);
    expect(res.stderr).toContain('leads out of the root filesystem');
    expect(await fsp.readdir(path.join(t.root, 'volumes/esc/_data'))).toEqual([]);
    await ok('volume', 'rm', 'esc');
  });

  const cases: [string, string[], RegExp][] = [
    ['a volume name with ..', ['-v', '..:/x'], /invalid characters/],
    ['a relative host path', ['-v', './rel:/x'], /invalid characters/],
    ['a volume name with /', ['--mount', 'type=volume,src=a/b,dst=/x'], /invalid characters/],
    ['a relative container path', ['-v', '/tmp:rel'], /not an absolute container path/],
    ['a bind over /', ['-v', '/tmp:/'], /over the container's root/],
    ['a bind over /proc', ['-v', '/tmp:/proc'], /\/proc/],
    ['a missing --mount bind source', ['--mount', 'type=bind,src=/nonexistent-berth-src,dst=/x'], /bind source path does not exist/],
    ['--volumes-from a missing container', ['--volumes-from', 'nosuchctr'], /no such container: nosuchctr/],
    ['an unknown mount option', ['-v', 'name:/x:bogus'], /invalid mode "bogus"/],
    ['a duplicate mount point', ['-v', '/tmp:/x', '-v', 'n2:/x'], /duplicate mount point/],
    ['bind options on a volume', ['--mount', 'type=volume,dst=/x,bind-propagation=shared'], /cannot mix/],
    ['an unknown driver', ['--mount', 'type=volume,src=dv,dst=/x,volume-driver=nope'], /unknown volume driver/],
  ];
  it.each(cases)('refuses %s with 125 and leaves nothing', async (_what, flags, message) => {
    const res = await t.cli('run', '--rm', '--network', 'none', ...flags, 'busybox', 'true');
    expect(res.exitCode).toBe(125);
    expect(res.stderr).toMatch(message);
    expect(await ok('ps', '-a', '-q')).toBe('');
    expect(await volumes()).toEqual([]);
  });

  it('refuses volume create with a bad name or option', async () => {
    expect((await t.cli('volume', 'create', 'a:b')).exitCode).toBe(1);
    const bad = await t.cli('volume', 'create', '-o', 'colour=red', 'vv');
    expect(bad.stderr).toContain('invalid option key');
    expect(await volumes()).toEqual([]);
  });
});

describe('prune', () => {
  it('removes unused anonymous volumes, and with -a every unused one', async () => {
    await ok('create', '--name', 'keeper', '--network', 'none', '-v', '/kept', '-v', 'named-used:/u', 'busybox', 'true');
    await ok('volume', 'create', 'named-free');
    await ok('create', '--name', 'gone', '--network', 'none', '-v', '/dropped', 'busybox', 'true');
    await ok('rm', 'gone');
    expect((await volumes()).length).toBe(4);
    const pruned = await ok('volume', 'prune', '-f');
    expect(pruned.split('\n')).toHaveLength(2);
    expect(await volumes()).toHaveLength(3);
    expect(await ok('volume', 'prune', '-a', '-f')).toBe('Deleted Volumes:\nnamed-free');
    await ok('rm', '-v', 'keeper');
    expect(await volumes()).toEqual(['named-used']);
    await ok('volume', 'rm', 'named-used');
  }, 60_000);
});

describe('drivers', () => {
  it('stores through a driver registered from the API', async () => {
    const store = path.join(work, 'drv');
    const calls: string[] = [];
    const driver: VolumeDriver = {
      name: 'testdrv',
      checkOptions: (o) => { if (Object.keys(o).some((k) => k !== 'flavour')) throw new Error('bad option'); },
      create: async (v) => { calls.push(`create ${v.name}`); await fsp.mkdir(path.join(store, v.name), { recursive: true }); },
      remove: async (v) => { calls.push(`remove ${v.name}`); await fsp.rm(path.join(store, v.name), { recursive: true, force: true }); },
      mountpoint: (v) => path.join(store, v.name),
      mount: async (v) => { calls.push(`mount ${v.name}`); },
      unmount: async (v) => { calls.push(`unmount ${v.name}`); },
    };
    t.engine.volumes.registerDriver(driver);
    await t.engine.volumes.create({ name: 'dv', driver: 'testdrv', options: { flavour: 'x' } });
    const { exitCode } = await t.engine.run({ image: 'busybox', command: ['sh', '-c', 'echo d >/d/f'], volumes: ['dv:/d'], network: { networks: ['none'] }, autoRemove: true });
    expect(exitCode).toBe(0);
    expect(await fsp.readFile(path.join(store, 'dv/f'), 'utf8')).toBe('d\n');
    await t.engine.volumes.remove('dv');
    // mounted for the run only (busybox has nothing at /d to copy at create); unmounted again before removal
    expect(calls).toEqual(['create dv', 'mount dv', 'unmount dv', 'unmount dv', 'remove dv']);
    expect(existsSync(path.join(store, 'dv'))).toBe(false);
  }, 60_000);
});
