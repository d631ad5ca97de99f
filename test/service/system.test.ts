/**
 * /info, /events and /system/df through the docker CLI, compared with Berth's own CLI on the same store.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { startService, type TestService } from '../helpers/service.js';

const SLOT = 4190;
let t: TestEngine;
let svc: TestService;

beforeAll(async () => {
  t = await testEngine(SLOT + ((process.pid + 3) % 20));
  await t.engine.images.ensureDefault();
  svc = await startService(t);
}, 120_000);

afterAll(async () => {
  await svc?.close();
  await cleanupAll(t);
});

const ok = async (args: string[]) => {
  const res = await svc.docker(args);
  expect(res.exitCode, `docker ${args.join(' ')}: ${res.stderr}`).toBe(0);
  return String(res.stdout).trim();
};

describe('system endpoints through the docker CLI', () => {
  it('docker info gives the fields Berth\'s info gives', async () => {
    await t.ok('create', '--network', 'none', '--name', 'svc-info', 'busybox', 'true');
    const fields = '{{.Containers}} {{.ContainersStopped}} {{.Images}} {{.Driver}} {{.DockerRootDir}} {{.OSType}} {{.NCPU}} {{.ServerVersion}} {{.CgroupDriver}} {{.CgroupVersion}}';
    const docker = await ok(['info', '-f', fields]);
    expect(docker).toBe(await t.ok('info', '-f', fields));
    expect(docker, docker).toMatch(/^1 1 1 overlay /);
    expect(await ok(['info', '-f', '{{.Swarm.LocalNodeState}} {{.DefaultRuntime}} {{.Architecture}}'])).toMatch(/^inactive runc \w+/);
    const plain = await ok(['info']);
    expect(plain).toContain('Server Version:');
    expect(plain).toContain(`Docker Root Dir: ${t.root}`);
    await t.ok('rm', 'svc-info');
  });

  it('docker events --since/--until shows what happened in that span, in Docker\'s shape', async () => {
    const since = (Date.now() / 1000).toFixed(3);
    const id = await t.ok('create', '--network', 'none', '--name', 'svc-events', 'busybox', 'true');
    await t.ok('tag', 'busybox', 'svc/evt:1');
    await t.ok('rm', 'svc-events');
    const until = (Date.now() / 1000 + 1).toFixed(3);
    const text = await ok(['events', '--since', since, '--until', until, '--format', '{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}']);
    const lines = text.split('\n');
    expect(lines).toContain(`container create ${id} svc-events`);
    expect(lines).toContain(`container destroy ${id} svc-events`);
    expect(lines.some((l) => l.startsWith('image tag '))).toBe(true);
    const filtered = await ok(['events', '--since', since, '--until', until, '--filter', 'type=container', '--filter', 'event=destroy', '--filter', 'container=svc-events', '--format', '{{.Action}}']);
    expect(filtered).toBe('destroy');
    // A container's events carry its labels (compose's attached `up` follows its project by label).
    const labelled = await t.ok('create', '--network', 'none', '--label', 'com.example.project=p1', 'busybox', 'true');
    await t.ok('rm', labelled);
    const until2 = (Date.now() / 1000 + 1).toFixed(3);
    const byLabel = await ok(['events', '--since', since, '--until', until2, '--filter', 'label=com.example.project=p1', '--format', '{{.Action}} {{.Actor.ID}} {{index .Actor.Attributes "com.example.project"}}']);
    expect(byLabel.split('\n')).toEqual([`create ${labelled} p1`, `destroy ${labelled} p1`]);

    const raw = await svc.request('GET', `/events?since=${since}&until=${until}&filters=${encodeURIComponent('{"container":["svc-events"]}')}`);
    const first = JSON.parse(raw.body.toString().split('\n')[0]!);
    expect(first).toMatchObject({ status: 'create', id, Type: 'container', Action: 'create', Actor: { ID: id }, scope: 'local' });
    expect(first.from).toContain('busybox');
    expect(Number.isInteger(first.time) && first.timeNano >= first.time * 1e9).toBe(true);
  });

  it('refuses a bad since and filters it does not apply, and follows until the client leaves', async () => {
    expect((await svc.request('GET', '/events?since=yesterday-ish')).status).toBe(400);
    const bad = await svc.request('GET', `/events?filters=${encodeURIComponent('{"colour":["red"]}')}`);
    expect(bad.status).toBe(400);
    expect(bad.json().message).toMatch(/colour/);

    // A follower sees an event that happens after it connected, then leaves; the service keeps serving.
    const got = await new Promise<string>((resolve, reject) => {
      const req = http.request({ socketPath: svc.socket, path: '/events' }, (res) => {
        expect(res.statusCode).toBe(200);
        void t.ok('tag', 'busybox', 'svc/follow:1');
        res.on('data', (c: Buffer) => {
          req.destroy();
          resolve(c.toString());
        });
      });
      req.on('error', reject);
      req.end();
    });
    expect(JSON.parse(got.split('\n')[0]!)).toMatchObject({ Type: 'image', Action: 'tag' });
    expect((await svc.request('GET', '/_ping')).status).toBe(200);
  });

  it('docker system df counts images, containers and volumes', async () => {
    await t.ok('volume', 'create', 'svc-df');
    await t.ok('create', '--network', 'none', '--name', 'svc-df', '-v', 'svc-df:/data', 'busybox', 'true');
    const rows = (await ok(['system', 'df'])).split('\n').slice(1).map((l) => l.split(/\s{2,}/));
    const row = (type: string) => rows.find((r) => r[0] === type)!;
    expect(row('Images').slice(1, 3)).toEqual(['1', '1']);
    expect(row('Containers').slice(1, 3)).toEqual(['1', '0']);
    expect(row('Local Volumes').slice(1, 3)).toEqual(['1', '1']);
    // The image a container uses is not reclaimable.
    expect(row('Images')[4]).toMatch(/^0B/);
    const verbose = await ok(['system', 'df', '-v']);
    expect(verbose).toContain('svc-df');
    await t.ok('rm', 'svc-df');
    await t.ok('volume', 'rm', 'svc-df');
  });
});
