/**
 * The images endpoints through the real docker CLI (DOCKER_HOST at Berth's service), compared with
 * Berth's own CLI on the same store, and hostile requests by hand.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { startService, type TestService } from '../helpers/service.js';

const SLOT = 4190;
let t: TestEngine;
let svc: TestService;
let dir: string;

beforeAll(async () => {
  t = await testEngine(SLOT + (process.pid % 20));
  await t.engine.images.ensureDefault();
  svc = await startService(t);
  dir = await mkdtemp(path.join(tmpdir(), 'berth-svc-images-'));
}, 120_000);

afterAll(async () => {
  await svc?.close();
  await cleanupAll(t, dir);
});

const ok = async (args: string[]) => {
  const res = await svc.docker(args);
  expect(res.exitCode, `docker ${args.join(' ')}: ${res.stderr}`).toBe(0);
  return String(res.stdout).trim();
};

describe('images through the docker CLI', () => {
  it('lists, inspects, tags and shows history as Berth does', async () => {
    await ok(['tag', 'busybox', 'svc/app:1']);
    const rows = (await ok(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])).split('\n').sort();
    // Berth prints full names (docker.io/svc/app), Docker the familiar ones: the same images otherwise.
    const berthRows = (await t.ok('images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}')).split('\n').map((r) => r.replace(/^docker\.io\//, '')).sort();
    expect(rows).toEqual(berthRows);
    expect(rows.some((r) => r.startsWith('svc/app:1 '))).toBe(true);

    const id = await ok(['image', 'inspect', '-f', '{{.Id}}', 'svc/app:1']);
    expect(id).toBe(await t.ok('image', 'inspect', '-f', '{{.Id}}', 'svc/app:1'));
    expect(await ok(['image', 'inspect', '-f', '{{.Os}}/{{.Architecture}} {{.GraphDriver.Name}}', 'svc/app:1'])).toMatch(/^linux\/\w+ overlay$/);

    const history = await ok(['history', '--format', '{{.ID}} {{.CreatedBy}}', '--no-trunc', 'svc/app:1']);
    expect(history.split('\n')[0]).toContain(id);

    const json = (await svc.request('GET', '/images/json')).json();
    const entry = json.find((i: { Id: string }) => i.Id === id);
    expect(entry.RepoTags).toContain('svc/app:1');
    expect(typeof entry.Created).toBe('number');
    expect(entry.SharedSize).toBe(-1);
  });

  it('answers 404 with Docker\'s words for an image that does not exist, and refuses odd names', async () => {
    const res = await svc.docker(['image', 'inspect', 'nosuch/image:1']);
    expect(res.exitCode).toBe(1);
    expect(res.stderr).toMatch(/No such image: nosuch\/image:1/);
    for (const bad of ['../../etc', 'a/../b', 'UPPER:x', 'x@@y']) {
      const r = await svc.request('GET', `/images/${encodeURIComponent(bad)}/json`);
      expect([400, 404], `${bad}: ${r.status} ${r.body}`).toContain(r.status);
      expect(r.json().message).toBeTruthy();
      const tag = await svc.request('POST', `/images/busybox/tag?repo=${encodeURIComponent(bad)}`);
      expect(tag.status, `tag ${bad}: ${tag.body}`).toBe(400);
    }
    // The service keeps serving.
    expect((await svc.request('GET', '/_ping')).status).toBe(200);
  });

  it('removes with rmi and prunes', async () => {
    await ok(['tag', 'busybox', 'svc/gone:1']);
    const out = await ok(['rmi', 'svc/gone:1']);
    expect(out).toContain('Untagged: svc/gone:1');
    const again = await svc.docker(['rmi', 'svc/gone:1']);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toMatch(/No such image/);
    const pruned = await ok(['image', 'prune', '-f']);
    expect(pruned).toMatch(/Total reclaimed space/);
    const bad = await svc.request('POST', `/images/prune?filters=${encodeURIComponent('{"dangling":["maybe"]}')}`);
    expect(bad.status).toBe(400);
  });

  it('saves and loads a docker-archive', async () => {
    await ok(['tag', 'busybox', 'svc/saved:1']);
    const file = path.join(dir, 'saved.tar');
    await ok(['save', '-o', file, 'svc/saved:1']);
    expect((await stat(file)).size).toBeGreaterThan(1024);
    await ok(['rmi', 'svc/saved:1']);
    const loaded = await ok(['load', '-i', file]);
    expect(loaded).toContain('Loaded image: svc/saved:1');
    expect(await ok(['image', 'inspect', '-f', '{{.RepoTags}}', 'svc/saved:1'])).toContain('svc/saved:1');
    const one = await svc.request('GET', '/images/svc%2Fsaved:1/get');
    expect(one.status).toBe(200);
    expect(one.headers['content-type']).toBe('application/x-tar');
    expect(one.body.includes(Buffer.from('manifest.json'))).toBe(true);
    const missing = await svc.request('GET', '/images/get?names=nosuch:1');
    expect(missing.status).toBe(404);
    await rm(file);
  });

  it('refuses a load that is not an image archive and keeps serving', async () => {
    const res = await svc.request('POST', '/images/load', Buffer.alloc(8192, 7), { 'Content-Type': 'application/x-tar' });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.json().message).toBeTruthy();
    expect((await svc.request('GET', '/_ping')).status).toBe(200);
  });
});
