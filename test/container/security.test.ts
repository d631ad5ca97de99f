import { promises as fsp, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadStateError, CorruptError, Engine } from '../../src/api/index.js';
import { makeDockerArchive, mountsUnder, type LayerEntry } from '../fixtures/images.js';
import { sink, testEngine, type TestEngine } from '../helpers/engine.js';
import { STORE_VERSION } from '../../src/store.js';

let t: TestEngine;
let tmp = '';
beforeAll(async () => {
  t = await testEngine(3300);
  // mkdtemp's 0700 would hide everything from other users; a root like /var/lib/berth is open to them.
  await fsp.chmod(t.root, 0o755);
  tmp = await fsp.mkdtemp(path.join(tmpdir(), 'berth-sec-'));
  await t.engine.images.ensureDefault();
});
afterAll(async () => {
  await t?.cleanup();
  if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
});

const none = { networks: ['none'] };
const busybox: LayerEntry[] = [
  { type: 'file', path: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 },
  { type: 'symlink', path: 'bin/sh', target: 'busybox' },
  { type: 'symlink', path: 'bin/true', target: 'busybox' },
  { type: 'symlink', path: 'bin/sleep', target: 'busybox' },
];

/** Loads a one-layer image of busybox plus `entries`, tagged `tag`. */
async function hostileImage(tag: string, entries: LayerEntry[]): Promise<void> {
  const file = path.join(tmp, `${tag.replace(/\W/g, '_')}.tar`);
  await makeDockerArchive(file, [{ entries: [...busybox, ...entries] }], { tags: [tag], config: { Cmd: ['true'] } });
  await t.engine.images.load(file);
}

/** Nothing of a refused start is left: no runc container, no mounted rootfs, no network namespace. */
async function expectNothingRunning(id: string): Promise<void> {
  expect(execFileSync('runc', ['--root', `${t.runroot}/runc`, 'list', '-q'], { encoding: 'utf8' }).trim()).toBe('');
  expect(mountsUnder(path.join(t.root, 'snapshots', id))).toEqual([]);
  expect(await fsp.readdir(path.join(t.runroot, 'netns')).catch(() => [])).toEqual([]);
}

describe('a hostile rootfs is refused before runc runs (issue 8, item 3)', () => {
  it('refuses an image whose /dev is a symlink to a host folder, and writes nothing there', async () => {
    const hostDir = await fsp.mkdtemp(path.join(tmp, 'host-dev-'));
    await hostileImage('evil/dev:1', [{ type: 'symlink', path: 'dev', target: hostDir }]);
    const { id } = await t.engine.containers.create({ image: 'evil/dev:1' });
    const err = await t.engine.containers.start(id).catch((e: unknown) => e);
    expect(await fsp.readdir(hostDir)).toEqual([]);
    expect(err).toBeInstanceOf(CorruptError);
    expect((err as Error).message).toContain(`/dev is a symbolic link (to ${hostDir})`);
    expect((err as CorruptError).exitCode).toBe(125);
    expect(await fsp.readdir(hostDir)).toEqual([]);
    // As after any start failure: the container stays Created, with the reason, and owns nothing on the host.
    const info = await t.engine.containers.inspect(id);
    expect(info.State.Status).toBe('created');
    expect(info.State.Error).toContain('/dev is a symbolic link');
    await expectNothingRunning(id);
    await t.engine.containers.remove(id);

    // /proc and /sys likewise; `run --rm` leaves no container behind.
    await hostileImage('evil/proc:1', [{ type: 'symlink', path: 'proc', target: hostDir }]);
    await expect(t.engine.run({ image: 'evil/proc:1', network: none, autoRemove: true })).rejects.toThrow(/\/proc is a symbolic link/);
    expect(await t.engine.containers.list({ all: true })).toEqual([]);
    expect(await fsp.readdir(hostDir)).toEqual([]);
  });

  it('refuses a mount whose destination goes through a symlink leading out of the rootfs', async () => {
    const hostDir = await fsp.mkdtemp(path.join(tmp, 'host-x-'));
    const src = await fsp.mkdtemp(path.join(tmp, 'src-'));
    // Followed from the host, /../.. climbs out of the rootfs to the test's own folder.
    await hostileImage('evil/mnt:1', [{ type: 'symlink', path: 'mnt', target: `/../..${hostDir}` }]);
    const err = await t.engine.run({ image: 'evil/mnt:1', volumes: [`${src}:/mnt/target`], command: ['true'] }).catch((e: unknown) => e);
    expect(await fsp.readdir(hostDir)).toEqual([]);
    expect(err).toBeInstanceOf(CorruptError);
    expect((err as Error).message).toContain(`mount destination /mnt/target goes through /mnt, a symbolic link (to /../..${hostDir})`);
    expect(await fsp.readdir(hostDir)).toEqual([]);
    const [ctr] = await t.engine.containers.list({ all: true });
    expect(ctr?.state).toBe('created');
    await expectNothingRunning(ctr!.id);
    await t.engine.containers.remove(ctr!.id);

    // A link that stays inside the rootfs (Debian's /var/run -> /run) is fine, as with runc's securejoin.
    await hostileImage('ok/run:1', [{ type: 'dir', path: 'run' }, { type: 'dir', path: 'var' }, { type: 'symlink', path: 'var/run', target: '/run' }]);
    const ok = await t.engine.run({ image: 'ok/run:1', network: none, autoRemove: true, volumes: [`${src}:/var/run/x`], command: ['sh', '-c', 'test -d /run/x'] });
    expect(ok.exitCode).toBe(0);
  });
});

describe('removing an image a running container uses (issue 8, item 13)', () => {
  it('refuses even with force by ID, only untags by name, and removes once the container stopped', async () => {
    const file = path.join(tmp, 'inuse.tar');
    const img = await makeDockerArchive(file, [{ entries: busybox }], { tags: ['inuse:1'] });
    await t.engine.images.load(file);
    const { id } = await t.engine.containers.run({ image: 'inuse:1', network: none, command: ['sleep', '300'] }, { detach: true });
    const hard = `conflict: unable to delete ${img.id.slice(7, 19)} (cannot be forced) - image is being used by running container ${id.slice(0, 12)}`;

    for (const force of [true, false]) {
      const err = await t.engine.images.remove(img.id, { force }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BadStateError);
      expect((err as Error).message).toBe(hard);
    }
    await t.engine.containers.pause(id);
    await expect(t.engine.images.remove(img.id.slice(7, 19), { force: true })).rejects.toThrow(hard);
    await t.engine.containers.unpause(id);
    expect((await t.engine.images.inspect(img.id)).RepoTags).toEqual(['inuse:1']);

    // Docker: by name, -f untags; the image stays, dangling, while the container runs.
    expect(await t.engine.images.remove('inuse:1', { force: true })).toEqual([{ untagged: 'inuse:1' }]);
    expect((await t.engine.images.inspect(img.id)).RepoTags).toEqual([]);
    expect((await t.engine.containers.inspect(id)).State.Status).toBe('running');

    await t.engine.containers.stop(id, { timeout: 0 });
    expect(await t.engine.images.remove(img.id, { force: true })).toEqual([{ deleted: img.id }]);
    await t.engine.containers.remove(id);
  });
});

describe('the store is private (issue 8, item 4)', () => {
  const SECRET = 'hunter2-secret';
  /** Runs argv as the unprivileged user nobody; its exit code and output. */
  const asNobody = (argv: string[]) => {
    try {
      return { code: 0, out: execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...argv], { encoding: 'utf8', stdio: 'pipe' }) };
    } catch (err) {
      return { code: (err as { status: number }).status, out: String((err as { stdout: string }).stdout) };
    }
  };
  const mode = async (p: string) => (await fsp.stat(p)).mode & 0o777;

  async function expectPrivate(id: string): Promise<void> {
    const dir = path.join(t.root, 'containers', id);
    for (const f of ['container.json', 'ctr.log', 'bundle/config.json']) {
      expect([f, await mode(path.join(dir, f))]).toEqual([f, 0o600]);
      expect(asNobody(['cat', path.join(dir, f)]).code).not.toBe(0);
    }
    for (const f of ['hosts', 'resolv.conf', 'hostname']) expect([f, await mode(path.join(dir, f))]).toEqual([f, 0o644]);
    expect(await mode(dir)).toBe(0o710);
    expect(await mode(path.join(t.root, 'containers'))).toBe(0o711);
    expect(await mode(path.join(t.root, 'snapshots'))).toBe(0o711);
    expect(await mode(path.join(t.root, 'snapshots', id))).toBe(0o710);
    expect(await mode(t.root)).toBe(0o711);
    expect(await mode(t.runroot)).toBe(0o700);
    for (const top of ['images', 'layers', 'blobs']) expect([top, await mode(path.join(t.root, top))]).toEqual([top, 0o700]);
    // The secret is in the store (root finds it), and nowhere another user can read it.
    expect(execFileSync('grep', ['-rl', SECRET, dir], { encoding: 'utf8' })).toContain('container.json');
    const found = asNobody(['grep', '-rl', '--no-messages', SECRET, t.root, t.runroot]);
    expect(found.out).toBe('');
  }

  it('keeps records, env and logs from other users; the container\'s users still read its /etc files', async () => {
    const { id } = await t.engine.containers.run({ image: 'busybox', network: none, env: [`SECRET=${SECRET}`], command: ['sh', '-c', 'echo $SECRET'] }, { detach: true });
    expect(await t.engine.containers.wait(id)).toBe(0);
    await expectPrivate(id);

    const out = sink();
    const r = await t.engine.run({ image: 'busybox', network: none, user: '1000:1000', autoRemove: true, command: ['sh', '-c', 'id -u; cat /etc/hosts /etc/resolv.conf /etc/hostname >/dev/null && echo readable'] },
      { io: { stdout: out.stream } });
    expect([r.exitCode, out.text()]).toEqual([0, '1000\nreadable\n']);

    // A store an older Berth wrote (0644 files, 0755 folders, no version) is tightened when next opened.
    execFileSync('chmod', ['-R', 'u=rwX,go=rX', path.join(t.root, 'containers'), path.join(t.root, 'images'), path.join(t.root, 'snapshots', id, 'meta.json')]);
    await fsp.chmod(t.root, 0o755);
    await fsp.chmod(path.join(t.root, 'snapshots', id), 0o755);
    await fsp.chmod(t.runroot, 0o755);
    await fsp.rm(path.join(t.root, 'store.json'), { force: true });
    expect(asNobody(['cat', path.join(t.root, 'containers', id, 'container.json')]).out).toContain(SECRET);
    const reopened = new Engine({ root: t.root, runroot: t.runroot });
    expect((await reopened.images.list()).length).toBeGreaterThan(0);
    await expectPrivate(id);
    expect(JSON.parse(await fsp.readFile(path.join(t.root, 'store.json'), 'utf8'))).toEqual({ version: STORE_VERSION });
    await t.engine.containers.remove(id);
  });
});
