/**
 * Issue 13, the container's filesystem as data: `diff` prints what Docker prints for the same steps
 * (mount points and volumes left out), `commit` makes an image that runs and shows the changes, deletions
 * and opaque directories included, and `export` writes the root filesystem without volume content,
 * mounting a stopped container's snapshot only for the read.
 */
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { findLeaks } from '../helpers/leaks.js';

let t: TestEngine;
let work: string;

beforeAll(async () => {
  t = await testEngine(3200 + (process.pid % 20));
  await t.engine.images.ensureDefault();
  work = await fsp.mkdtemp(path.join(tmpdir(), 'berth-fs-'));
}, 120_000);

afterAll(() => cleanupAll(t, work));

const ok = (...args: string[]) => t.ok(...args);

const mounted = (key: string) => execFileSync('cat', ['/proc/self/mounts'], { encoding: 'utf8' }).includes(`/snapshots/${key}/merged `);

describe('diff', () => {
  it('prints A, C and D as Docker does, without mount points, volumes or binds', async () => {
    const bind = path.join(work, 'bind');
    await ok('run', '--name', 'd1', '--network', 'none', '-v', '/vol', '-v', `${bind}:/srv/b`, 'busybox', 'sh', '-c',
      'echo hi >/a && rm /bin/rmdir && mkdir -p /tmp/x/y && echo v >/vol/f && echo b >/srv/b/f && echo c >>/etc/passwd');
    expect((await ok('diff', 'd1')).split('\n')).toEqual(['A /a', 'C /bin', 'D /bin/rmdir', 'C /etc', 'C /etc/passwd', 'A /srv', 'C /tmp', 'A /tmp/x', 'A /tmp/x/y']);
    const api = await t.engine.containers.diff('d1');
    expect(api[0]).toEqual({ kind: 'A', path: '/a' });
    await ok('rm', '-v', 'd1');
  }, 60_000);

  it('prints nothing for a container that changed nothing, and exits 1 for a missing one', async () => {
    await ok('run', '--name', 'd2', '--network', 'none', 'busybox', 'true');
    expect(await ok('diff', 'd2')).toBe('');
    await ok('rm', 'd2');
    const res = await t.cli('diff', 'nosuch');
    expect(res.exitCode).toBe(1);
    expect(res.stderr).toContain('no such container: nosuch');
  }, 60_000);
});

describe('commit', () => {
  it('turns the writable layer into an image layer that runs, with deletions, opaque dirs, -c, -m and -a', async () => {
    await ok('run', '-d', '--name', 'c1', '--network', 'none', 'busybox', 'sh', '-c',
      'echo data >/data.txt && rm /bin/rmdir && rm -rf /usr/sbin && mkdir /usr/sbin && echo only >/usr/sbin/only && exec sleep 60');
    // wait for the script to finish its writes
    for (let i = 0; i < 100 && !(await ok('diff', 'c1')).includes('/usr/sbin/only'); i++) await new Promise((r) => setTimeout(r, 100));
    const id = await ok('commit', '-m', 'my message', '-a', 'Ann <ann@example.com>', '-c', 'ENV COMMITTED=yes', '-c', 'CMD ["cat", "/data.txt"]', 'c1', 'committed:v1');
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    // paused for the commit and running again after it
    expect(await ok('inspect', '-f', '{{.State.Status}}', 'c1')).toBe('running');
    expect(await ok('run', '--rm', '--network', 'none', 'committed:v1')).toBe('data');
    expect(await ok('run', '--rm', '--network', 'none', 'committed:v1', 'sh', '-c', 'echo $COMMITTED; ls /usr/sbin; test -e /bin/rmdir || echo gone')).toBe('yes\nonly\ngone');
    const img = (await t.engine.images.inspect('committed:v1')) as unknown as { Author: string; RootFS: { Layers: string[] }; Config: { Cmd: string[] } };
    expect(img.Author).toBe('Ann <ann@example.com>');
    expect(img.RootFS.Layers).toHaveLength(2);
    const history = await ok('history', '--no-trunc', '--format', '{{.CreatedBy}}|{{.Comment}}', 'committed:v1');
    expect(history.split('\n')[0]).toMatch(/^sh -c echo data .*\|my message$/);
    await ok('rm', '-f', 'c1');
    await ok('rmi', 'committed:v1');
  }, 90_000);

  it('refuses a bad --change with nothing stored, and a missing container', async () => {
    await ok('create', '--name', 'c2', '--network', 'none', 'busybox', 'true');
    const before = await ok('images', '-q', '--no-trunc');
    const bad = await t.cli('commit', '-c', 'FROM x', 'c2', 'bad:1');
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain('--change');
    expect(await ok('images', '-q', '--no-trunc')).toBe(before);
    const missing = await t.cli('commit', 'nosuch');
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain('no such container: nosuch');
    await ok('rm', 'c2');
    await ok('image', 'prune', '-f');
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  }, 60_000);
});

describe('export', () => {
  it('writes the root filesystem of a stopped container without volume content, and unmounts it after', async () => {
    await ok('run', '--name', 'e1', '--network', 'none', '-v', '/vol', 'busybox', 'sh', '-c', 'echo x >/x && echo v >/vol/v');
    const id = await ok('inspect', '-f', '{{.Id}}', 'e1');
    expect(mounted(id)).toBe(false);
    const out = path.join(work, 'e1.tar');
    await ok('export', '-o', out, 'e1');
    expect(mounted(id)).toBe(false);
    const names = execFileSync('tar', ['-tf', out], { encoding: 'utf8' }).split('\n');
    expect(names).toContain('x');
    expect(names).toContain('bin/busybox');
    expect(names).toContain('vol/');
    expect(names).not.toContain('vol/v');
    // hard links stay links: the archive is not 300 copies of busybox
    expect((await fsp.stat(out)).size).toBeLessThan(8 << 20);
    expect(execFileSync('tar', ['-xOf', out, 'x'], { encoding: 'utf8' })).toBe('x\n');
    // the export imports back as an image that runs
    await ok('import', out, 'exported:1');
    expect(await ok('run', '--rm', '--network', 'none', 'exported:1', 'cat', '/x')).toBe('x');
    await ok('rm', '-v', 'e1');
    await ok('rmi', 'exported:1');
    expect((await fsp.readdir(work)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  }, 60_000);

  it('streams a running container to stdout, which stays mounted', async () => {
    const id = await ok('run', '-d', '--name', 'e2', '--network', 'none', 'busybox', 'sh', '-c', 'echo r >/r && exec sleep 60');
    for (let i = 0; i < 100 && !(await ok('diff', 'e2')).includes('/r'); i++) await new Promise((r) => setTimeout(r, 100));
    const res = await t.cli('export', 'e2');
    expect(res.exitCode).toBe(0);
    expect(mounted(id)).toBe(true);
    await ok('rm', '-f', 'e2');
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  }, 60_000);
});
