/**
 * The archive endpoints (docker cp): HEAD's path stat, GET's tar of a path, PUT's tar extracted into a
 * folder, through the real docker CLI both ways and compared with `berth cp`, plus paths that try to
 * leave the container and hostile tar bodies.
 */
import { existsSync } from 'node:fs';
import http from 'node:http';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import tarStream from 'tar-stream';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { TestEngine } from '../helpers/engine.js';
import type { TestService } from '../helpers/service.js';
import { useDataService } from './containers-data.fixture.js';

const SLOT = 4130;
let t: TestEngine;
let svc: TestService;
let dir: string;
let id: string;

const f = useDataService(SLOT + 10 + (process.pid % 10), 'berth-cdata-cp-');
const docker = f.docker;
beforeAll(async () => {
  ({ t, svc, dir } = f);
  ({ id } = await t.engine.containers.run({
    image: 'busybox', network: { networks: ['none'] }, name: 'box',
    command: ['sh', '-c', 'mkdir -p /data/sub /drop && echo one > /data/a.txt && echo two > /data/sub/b.txt && ln -s /data/a.txt /link && echo inside > /etc/marker'],
  }, { detach: true }));
  await t.engine.containers.wait(id);
}, 120_000);


function pathStat(header: string | string[] | undefined): Record<string, unknown> {
  return JSON.parse(Buffer.from(String(header), 'base64').toString('utf8'));
}

function tarOf(entries: { name: string; type?: 'file' | 'directory' | 'symlink'; body?: string; linkname?: string }[]): Promise<Buffer> {
  const pack = tarStream.pack();
  for (const e of entries) pack.entry({ name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: e.type === 'directory' ? 0o755 : 0o644 }, e.body ?? '');
  pack.finalize();
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    pack.on('data', (c: unknown) => { chunks.push(c as Buffer); });
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
  });
}

const tarHeaders = { 'Content-Type': 'application/x-tar' };

describe('HEAD and GET archive', () => {
  it('states a file, a folder and a link as Docker does (Go mode bits, the link resolved)', async () => {
    const file = await svc.request('HEAD', `/containers/${id}/archive?path=/data/a.txt`);
    expect(file.status).toBe(200);
    expect(pathStat(file.headers['x-docker-container-path-stat'])).toMatchObject({ name: 'a.txt', size: 4, mode: 0o644, linkTarget: '' });
    expect(file.body.length).toBe(0);
    const folder = pathStat((await svc.request('HEAD', `/containers/${id}/archive?path=/data`)).headers['x-docker-container-path-stat']);
    expect(folder).toMatchObject({ name: 'data', mode: 2147483648 + 0o755 });
    expect(String(folder.mtime)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    const link = pathStat((await svc.request('HEAD', `/containers/${id}/archive?path=/link`)).headers['x-docker-container-path-stat']);
    expect(link).toMatchObject({ name: 'link', mode: (1 << 27) + 0o777, linkTarget: '/data/a.txt' });
  });

  it('answers a missing path with Docker\'s words, and a missing container with its own', async () => {
    const r = await svc.request('GET', `/containers/box/archive?path=/nope`);
    expect(r.status).toBe(404);
    expect(r.json().message).toBe('Could not find the file /nope in container box');
    expect((await svc.request('HEAD', `/containers/box/archive?path=/nope`)).status).toBe(404);
    const c = await svc.request('GET', '/containers/nosuch/archive?path=/');
    expect(c.status).toBe(404);
    expect(c.json().message).toBe('No such container: nosuch');
    expect((await svc.request('GET', `/containers/box/archive`)).status).toBe(400);
  });

  it('a path with .. stops at the container\'s root and never reaches the host', async () => {
    await writeFile(path.join(dir, 'host-only'), 'host\n');
    const up = '/..'.repeat(12);
    const inside = await svc.request('GET', `/containers/box/archive?path=${encodeURIComponent(`${up}/etc/marker`)}`);
    expect(inside.status).toBe(200);
    expect(execFileSync('tar', ['-xOf', '-'], { input: inside.body, encoding: 'utf8' })).toBe('inside\n');
    const host = await svc.request('GET', `/containers/box/archive?path=${encodeURIComponent(`${up}${dir}/host-only`)}`);
    expect(host.status).toBe(404);
  });

  it('docker cp out of the container, a file and a folder, gives what berth cp gives', async () => {
    for (const [src, name] of [['/data/a.txt', 'a.txt'], ['/data', 'data'], ['/link', 'link'], ['/data/.', 'contents']] as const) {
      const viaDocker = path.join(dir, 'docker-out', name);
      const viaBerth = path.join(dir, 'berth-out', name);
      await mkdir(path.dirname(viaDocker), { recursive: true });
      await mkdir(path.dirname(viaBerth), { recursive: true });
      const d = await docker(['cp', `box:${src}`, viaDocker]);
      expect(d.exitCode, d.stderr).toBe(0);
      await t.ok('cp', `box:${src}`, viaBerth);
      expect(execFileSync('find', ['.', '-printf', '%p %y %s\n'], { cwd: viaDocker.replace(/\/[^/]+$/, ''), encoding: 'utf8' }).split('\n').sort())
        .toEqual(execFileSync('find', ['.', '-printf', '%p %y %s\n'], { cwd: viaBerth.replace(/\/[^/]+$/, ''), encoding: 'utf8' }).split('\n').sort());
    }
    expect(await readFile(path.join(dir, 'docker-out', 'data', 'sub', 'b.txt'), 'utf8')).toBe('two\n');
    expect(await readFile(path.join(dir, 'docker-out', 'contents', 'sub', 'b.txt'), 'utf8')).toBe('two\n');
    const missing = await docker(['cp', 'box:/nope', path.join(dir, 'nothing')]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(/Could not find the file \/nope in container box/);
  });
});

describe('PUT archive', () => {
  it('docker cp into the container, a file and a folder, lands where berth cp lands it', async () => {
    const src = path.join(dir, 'in');
    await mkdir(path.join(src, 'tree', 'deep'), { recursive: true });
    await writeFile(path.join(src, 'note.txt'), 'note\n');
    await writeFile(path.join(src, 'tree', 'deep', 'c.txt'), 'three\n');
    for (const [from, to] of [['note.txt', 'box:/drop/'], ['note.txt', 'box:/drop/renamed.txt'], ['tree', 'box:/drop/'], ['tree', 'box:/drop/tree2']] as const) {
      const d = await docker(['cp', path.join(src, from), to]);
      expect(d.exitCode, `${from} ${to}: ${d.stderr}`).toBe(0);
    }
    const back = path.join(dir, 'back');
    await mkdir(back);
    await t.ok('cp', 'box:/drop/.', back);
    expect(await readFile(path.join(back, 'note.txt'), 'utf8')).toBe('note\n');
    expect(await readFile(path.join(back, 'renamed.txt'), 'utf8')).toBe('note\n');
    expect(await readFile(path.join(back, 'tree', 'deep', 'c.txt'), 'utf8')).toBe('three\n');
    expect(await readFile(path.join(back, 'tree2', 'deep', 'c.txt'), 'utf8')).toBe('three\n');
    const missing = await docker(['cp', path.join(src, 'note.txt'), 'box:/no/such/dir/']);
    const berthMissing = await t.cli('cp', path.join(src, 'note.txt'), 'box:/no/such/dir/');
    expect(missing.exitCode).toBe(1);
    expect(berthMissing.exitCode).toBe(1);
  });

  it('refuses a missing folder (404), a file as the folder (400), and a body that is not a tar (400)', async () => {
    const body = await tarOf([{ name: 'x.txt', body: 'x' }]);
    const missing = await svc.request('PUT', `/containers/box/archive?path=/nope`, body, tarHeaders);
    expect(missing.status).toBe(404);
    expect(missing.json().message).toBe('Could not find the file /nope in container box');
    expect((await svc.request('PUT', `/containers/box/archive?path=/data/a.txt`, body, tarHeaders)).status).toBe(400);
    const junk = await svc.request('PUT', `/containers/box/archive?path=/drop`, Buffer.alloc(4096, 'junk'), tarHeaders);
    expect(junk.status).toBe(400);
    expect(junk.json().message).toMatch(/the archive could not be extracted into \/drop/);
  });

  it('a hostile tar cannot write outside the container', async () => {
    const target = path.join(dir, 'escaped');
    await mkdir(target);
    const hostile = await tarOf([
      { name: `../../../../../../..${target}/dotdot.txt`, body: 'out' },
      { name: `${target}/absolute.txt`, body: 'out' },
      { name: 'evil', type: 'symlink', linkname: target },
      { name: 'evil/through-link.txt', body: 'out' },
    ]);
    const r = await svc.request('PUT', `/containers/box/archive?path=/drop`, hostile, tarHeaders);
    expect(r.status).toBe(400);
    expect(r.json().message).toMatch(/Member name contains '\.\.'/);
    expect(await readdir(target)).toEqual([]);
    // An absolute name alone is re-rooted inside the folder, as Docker's archive does.
    const abs = await svc.request('PUT', `/containers/box/archive?path=/drop`, await tarOf([{ name: `${target}/absolute.txt`, body: 'in' }]), tarHeaders);
    expect(abs.status).toBe(200);
    expect((await svc.request('HEAD', `/containers/box/archive?path=${encodeURIComponent(`/drop${target}/absolute.txt`)}`)).status).toBe(200);
    expect(await readdir(target)).toEqual([]);
    expect(existsSync(`${target}/through-link.txt`)).toBe(false);
    // The service keeps serving.
    expect((await svc.request('HEAD', `/containers/box/archive?path=/data`)).status).toBe(200);
  });

  it('docker cp to and from a running container; a client that goes away mid-upload leaves it running and no tar behind', async () => {
    const { id: live } = await t.engine.containers.run({ image: 'busybox', network: { networks: ['none'] }, command: ['sleep', '1000'] }, { detach: true });
    // docker cp into a running container (paused for the copy, as Docker does) leaves it running.
    await writeFile(path.join(dir, 'live.txt'), 'live\n');
    const cp = await docker(['cp', path.join(dir, 'live.txt'), `${live}:/tmp/`]);
    expect(cp.exitCode, cp.stderr).toBe(0);
    const out = await docker(['cp', `${live}:/tmp/live.txt`, path.join(dir, 'live-back.txt')]);
    expect(out.exitCode, out.stderr).toBe(0);
    expect(await readFile(path.join(dir, 'live-back.txt'), 'utf8')).toBe('live\n');
    expect((await t.engine.containers.inspect(live)).State.Status).toBe('running');
    const whole = await tarOf([{ name: 'big.bin', body: 'z'.repeat(1 << 20) }]);
    await new Promise<void>((resolve) => {
      const req = http.request({ socketPath: svc.socket, method: 'PUT', path: `/containers/${live}/archive?path=/tmp`, headers: { ...tarHeaders, 'Content-Length': whole.length } });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.write(whole.subarray(0, 64 * 1024), () => setImmediate(() => req.destroy()));
    });
    const tars = () => execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`${t.root}`) && /\btar\b/.test(l));
    await vi.waitFor(async () => {
      expect((await t.engine.containers.inspect(live)).State.Status).toBe('running');
      expect(tars()).toEqual([]);
    }, { timeout: 20_000, interval: 100 });
    expect((await svc.request('HEAD', `/containers/${live}/archive?path=/tmp`)).status).toBe(200);
    await t.engine.containers.remove(live, { force: true });
  });
});
