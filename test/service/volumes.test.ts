/**
 * The volumes endpoints driven by the real docker CLI (DOCKER_HOST at Berth's service), its output and
 * exit codes compared with Berth's own CLI on the same store, and by hand-written hostile requests.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { startService, type TestService } from '../helpers/service.js';
import { SLOT } from './networks-helpers.js';


describe('volumes through the Engine API', () => {
  let t: TestEngine;
  let svc: TestService;
  beforeAll(async () => {
    t = await testEngine(SLOT);
    svc = await startService(t);
  }, 60_000);
  afterAll(async () => {
    await svc?.close();
    await cleanupAll(t);
  }, 60_000);

  const names = async () => (await t.engine.volumes.list()).map((v) => v.Name).sort();

  it('docker volume create, ls and inspect answer as Berth\'s CLI does', async () => {
    const made = await svc.docker(['volume', 'create', '--label', 'team=nv', '--label', 'tier=data', 'nv-data']);
    expect(made.exitCode, made.stderr as string).toBe(0);
    expect(made.stdout).toBe('nv-data');
    await t.ok('volume', 'create', '--label', 'team=other', 'nv-cache');
    const anon = await svc.docker(['volume', 'create']);
    expect(anon.stdout).toMatch(/^[0-9a-f]{64}$/);

    for (const args of [
      ['volume', 'ls'], ['volume', 'ls', '-q'], ['volume', 'ls', '--filter', 'label=team=nv'], ['volume', 'ls', '--filter', 'label=team'],
      ['volume', 'ls', '--filter', 'name=nv-c'], ['volume', 'ls', '--filter', 'dangling=true', '--filter', 'driver=local'],
      ['volume', 'inspect', 'nv-data', 'nv-cache'], ['volume', 'inspect', '-f', '{{.Name}} {{.Driver}} {{.Scope}} {{index .Labels "tier"}}', 'nv-data'],
    ]) {
      const [d, b] = [await svc.docker(args), await t.cli(...args)];
      expect(d.exitCode, `${args.join(' ')}: ${d.stderr}`).toBe(0);
      // The docker CLI sorts volume rows by name, as Berth's list already is.
      expect(d.stdout, args.join(' ')).toBe(b.stdout.trimEnd());
    }
    // Docker's filter rule: two names are alternatives, two labels must both match.
    for (const cli of [(args: string[]) => svc.docker(args), (args: string[]) => t.cli(...args)]) {
      expect(String((await cli(['volume', 'ls', '-q', '--filter', 'name=nv-data', '--filter', 'name=nv-cache'])).stdout).trim()).toBe('nv-cache\nnv-data');
      expect(String((await cli(['volume', 'ls', '-q', '--filter', 'label=team=nv', '--filter', 'label=tier'])).stdout).trim()).toBe('nv-data');
      expect(String((await cli(['volume', 'ls', '-q', '--filter', 'label=team=other', '--filter', 'label=tier'])).stdout).trim()).toBe('');
    }
    const [vol] = JSON.parse((await svc.docker(['volume', 'inspect', 'nv-data'])).stdout as string);
    expect(vol).toEqual({
      CreatedAt: expect.any(String), Driver: 'local', Labels: { team: 'nv', tier: 'data' }, Mountpoint: expect.stringMatching(/\/nv-data\/_data$/),
      Name: 'nv-data', Options: {}, Scope: 'local',
    });
    expect(existsSync(vol.Mountpoint)).toBe(true);

    const missing = [await svc.docker(['volume', 'inspect', 'nv-nothing']), await t.cli('volume', 'inspect', 'nv-nothing')];
    expect(missing.map((r) => r.exitCode)).toEqual([1, 1]);
    expect(missing[0]!.stderr).toContain('No such volume: nv-nothing');
    const raw = await svc.request('GET', '/volumes/nv-nothing');
    expect([raw.status, raw.json()]).toEqual([404, { message: 'No such volume: nv-nothing' }]);

    // Creating an existing volume again is Docker's no-op.
    expect((await svc.docker(['volume', 'create', 'nv-data'])).exitCode).toBe(0);
    for (const name of ['nv-data', 'nv-cache', anon.stdout as string]) {
      const rm = await svc.docker(['volume', 'rm', name]);
      expect([rm.exitCode, rm.stdout]).toEqual([0, name]);
    }
    expect(existsSync(vol.Mountpoint)).toBe(false);
    expect(await names()).toEqual([]);
  }, 120_000);

  it('a volume in use is not removed (409, Docker\'s words) nor pruned; an unused one is', async () => {
    expect((await svc.docker(['volume', 'create', 'nv-used'])).exitCode).toBe(0);
    expect((await svc.docker(['volume', 'create', '--label', 'old=yes', 'nv-spare'])).exitCode).toBe(0);
    expect((await svc.docker(['volume', 'create', 'nv-other'])).exitCode).toBe(0);
    const { id } = await t.engine.containers.run({ image: 'busybox', name: 'nv-user', command: ['sleep', '300'], volumes: ['nv-used:/data'], network: { networks: ['none'] } }, { detach: true });
    try {
      const rm = [await svc.docker(['volume', 'rm', 'nv-used']), await t.cli('volume', 'rm', 'nv-used')];
      expect(rm.map((r) => r.exitCode)).toEqual([1, 1]);
      expect(rm[0]!.stderr).toContain(`remove nv-used: volume is in use - [${id}]`);
      const raw = await svc.request('DELETE', '/volumes/nv-used?force=1');
      expect(raw.status).toBe(409);
      // Docker (API 1.41) computes no usage outside /system/df, so the volume object carries none.
      expect((await svc.request('GET', '/volumes/nv-used')).json()).not.toHaveProperty('UsageData');

      const some = await svc.docker(['volume', 'prune', '-f', '--filter', 'label=old=yes']);
      expect(some.exitCode, some.stderr as string).toBe(0);
      expect(some.stdout).toBe('Deleted Volumes:\nnv-spare\n\nTotal reclaimed space: 0B');
      // Before API 1.42 a prune takes every unused volume, named ones too; the one in use stays.
      const rest = await svc.request('POST', '/volumes/prune');
      expect(rest.json()).toEqual({ VolumesDeleted: ['nv-other'], SpaceReclaimed: 0 });
      expect(await names()).toEqual(['nv-used']);
      // all=false (what a 1.42 client means by a plain prune) keeps named volumes.
      expect((await svc.request('POST', '/v1.41/volumes/prune?filters=' + encodeURIComponent('{"all":["false"]}'))).json()).toEqual({ VolumesDeleted: [], SpaceReclaimed: 0 });
    } finally {
      await t.engine.containers.remove(id, { force: true });
    }
    const rm = await svc.docker(['volume', 'rm', 'nv-used']);
    expect(rm.exitCode, rm.stderr as string).toBe(0);
    expect(await names()).toEqual([]);
  }, 120_000);

  describe('bad input', () => {
    it('answers each create with 400 and what was wrong, makes nothing and keeps serving', async () => {
      const cases: [unknown, RegExp][] = [
        ['{"Name": ', /not valid JSON/],
        ['"nv"', /must be a JSON object/],
        [{ Name: ['nv'] }, /Name must be a string, not a list/],
        [{ Name: 'nv-x', DriverOpts: 'type=tmpfs' }, /DriverOpts must be a JSON object, not a string/],
        [{ Name: 'nv-x', Labels: { a: true } }, /Labels\["a"\] must be a string, not a boolean/],
        [{ Name: 'nv-x', ClusterVolumeSpec: { Group: 'g' } }, /ClusterVolumeSpec is not supported yet/],
        [{ Name: '../../etc' }, /volume name|invalid/i],
        [{ Name: 'nv x;$(y)' }, /volume name|invalid/i],
        [{ Name: 'nv-x', DriverOpts: { colour: 'red' } }, /colour/],
      ];
      for (const [body, message] of cases) {
        const res = await svc.request('POST', '/volumes/create', body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(res.json().message, JSON.stringify(body)).toMatch(message);
      }
      const driver = await svc.request('POST', '/volumes/create', { Name: 'nv-x', Driver: 'nv-nodriver' });
      expect(driver.status).toBeGreaterThanOrEqual(400);
      expect(await names()).toEqual([]);

      // A bodiless create, and docker-py's nulls, are Docker's defaults: 201 and the volume.
      const bare = await svc.request('POST', '/volumes/create');
      expect(bare.status).toBe(201);
      expect(bare.json().Name).toMatch(/^[0-9a-f]{64}$/);
      const py = await svc.request('POST', '/volumes/create', { Name: 'nv-py', Driver: null, DriverOpts: null, Labels: null });
      expect([py.status, py.json().Name, py.json().Driver]).toEqual([201, 'nv-py', 'local']);
      const list = (await svc.request('GET', '/volumes')).json();
      expect(list.Warnings).toEqual([]);
      expect(list.Volumes.map((v: { Name: string }) => v.Name).sort()).toEqual([bare.json().Name, 'nv-py'].sort());
      for (const n of [bare.json().Name, 'nv-py']) expect((await svc.request('DELETE', `/volumes/${n}`)).status).toBe(204);
      expect((await svc.request('DELETE', '/volumes/nv-nothing?force=true')).status).toBe(204);
      expect((await svc.request('DELETE', '/volumes/nv-nothing')).status).toBe(404);
      expect((await svc.request('DELETE', '/volumes/..%2F..%2Fetc')).status).toBe(404);
      expect((await svc.request('DELETE', '/volumes/nv-nothing?force=perhaps')).status).toBe(400);
      expect((await svc.request('GET', '/volumes?filters=' + encodeURIComponent('{"colour":["red"]}'))).status).toBe(400);
      expect((await svc.request('POST', '/volumes/prune?filters=' + encodeURIComponent('{"all":["maybe"]}'))).status).toBe(400);
      expect(await names()).toEqual([]);
      expect((await svc.request('GET', '/_ping')).status).toBe(200);
    });

    it('an odd volume name fails in the docker CLI as in Berth\'s, with the same exit code', async () => {
      for (const args of [['volume', 'create', 'nv bad;$(x)'], ['volume', 'create', '-o', 'colour=red', 'nv-bad'], ['volume', 'rm', 'nv-nothing']]) {
        const [d, b] = [await svc.docker(args), await t.cli(...args)];
        expect(d.exitCode, `${args.join(' ')}: ${d.stderr}`).toBe(b.exitCode);
        expect(d.exitCode).not.toBe(0);
      }
      expect(await names()).toEqual([]);
    });
  });
});
