/**
 * Issue 10, formats and filters as Docker's, through the real CLI against real containers and images:
 * inspect --format json, template functions and methods, type errors, ps/images filters, prune --filter,
 * info/version in Docker's JSON shape, ps -s and inspect -s sizes.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEngine, type TestEngine } from '../helpers/engine.js';

const SLOT = 4000 + (process.pid % 50);
// Below the kernel's ephemeral range (32768-60999), and apart from test/network/ports.test.ts's 31000-31999.
const PORT = 30000 + (process.pid % 1000);
let t: TestEngine;
let rootfsTar = '';

beforeAll(async () => {
  t = await testEngine(SLOT);
  await t.engine.images.ensureDefault();
  const dir = path.join(t.root, 'rootfs');
  await mkdir(dir);
  await writeFile(path.join(dir, 'f'), 'x');
  rootfsTar = path.join(t.root, 'rootfs.tar');
  await execa('tar', ['-cf', rootfsTar, '-C', dir, '.']);
}, 120_000);
afterAll(async () => {
  await t?.cleanup();
});

const berth = (...args: string[]) => t.cli(...args);

async function ok(...args: string[]): Promise<string> {
  const res = await berth(...args);
  expect(res.exitCode, `${args.join(' ')}: ${res.stderr}`).toBe(0);
  return res.stdout;
}

const names = async (...args: string[]) => (await ok('ps', '-a', '--format', '{{.Names}}', ...args)).split('\n').filter(Boolean).sort();

describe('inspect and templates', () => {
  it('inspect --format json prints the inspect array on one line', async () => {
    await ok('create', '--name', 'fj', '--label', 'app=web', 'busybox', 'true');
    const json = await ok('inspect', '--format', 'json', 'fj');
    expect(json.split('\n')).toHaveLength(1);
    const parsed = JSON.parse(json) as { Name: string }[];
    expect(parsed).toEqual(JSON.parse(await ok('inspect', 'fj')));
    expect(parsed[0]!.Name).toBe('/fj');
    expect(JSON.parse(await ok('container', 'inspect', '-f', 'json', 'fj'))).toHaveLength(1);
    expect(JSON.parse(await ok('image', 'inspect', '--format', 'json', 'busybox'))[0].Id).toMatch(/^sha256:/);
  });

  it('ps --format calls methods: {{.Label "app"}}', async () => {
    await ok('create', '--name', 'fl', '--label', 'app=db', 'busybox', 'true');
    expect(await ok('ps', '-a', '--filter', 'name=^f[lj]$', '--format', '{{.Names}}={{.Label "app"}}|{{.Label "none"}}|')).toBe('fl=db||\nfj=web||');
    expect(await ok('ps', '-a', '--filter', 'name=^fl$', '--format', 'table {{.Names}}\t{{.Label "app"}}')).toBe('NAMES     LABEL\nfl        db');
  });

  it('has lt le gt ge and slice', async () => {
    expect(await ok('inspect', '-f', '{{lt .State.ExitCode 1}} {{ge .RestartCount 0}} {{gt (len .Name) 2}} {{slice .Name 1}} {{slice .Id 0 4 | len}}', 'fj'))
      .toBe('true true true fj 4');
  });

  it.each([
    ['{{.State.Running | upper}}', /wrong type for value; expected string; got bool/],
    ['{{lt .State.Status 3}}', /incompatible types for comparison/],
    ['{{slice .Name 5 1}}', /index out of range/],
    ['{{index .Config.Env "x"}}', /cannot index slice/],
    ['{{.Name.Foo}}', /can't evaluate field Foo in type string/],
  ])('reports the type error of %s instead of printing text', async (format, message) => {
    const res = await berth('inspect', '-f', format, 'fj');
    expect(res.exitCode).not.toBe(0);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(message);
  });

  it('refuses a field ps rows do not have, as Docker does of its format contexts', async () => {
    const res = await berth('ps', '-a', '--format', '{{.Nosuch}}');
    expect(res.exitCode).not.toBe(0);
    expect(res.stderr).toMatch(/can't evaluate field Nosuch/);
  });
});

describe('ps filters', () => {
  it('name= is a regular expression', async () => {
    await ok('create', '--name', 't1', 'busybox', 'true');
    await ok('create', '--name', 't10', 'busybox', 'true');
    expect(await names('--filter', 'name=^t1$')).toEqual(['t1']);
    expect(await names('--filter', 'name=^/t1$')).toEqual(['t1']);
    expect(await names('--filter', 'name=t1')).toEqual(['t1', 't10']);
    expect(await names('--filter', 'name=^t1[0-9]$')).toEqual(['t10']);
    const bad = await berth('ps', '--filter', 'name=([');
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/not a regular expression/);
  });

  it('before= and since= take a container, by creation order', async () => {
    await ok('create', '--name', 'o1', '--label', 'order=1', 'busybox', 'true');
    await ok('create', '--name', 'o2', '--label', 'order=1', 'busybox', 'true');
    await ok('create', '--name', 'o3', '--label', 'order=1', 'busybox', 'true');
    expect(await names('--filter', 'label=order', '--filter', 'before=o2')).toEqual(['o1']);
    expect(await names('--filter', 'label=order', '--filter', 'since=o2')).toEqual(['o3']);
    expect(await names('--filter', 'label=order', '--filter', 'since=o1', '--filter', 'before=o3')).toEqual(['o2']);
    const missing = await berth('ps', '--filter', 'before=nosuch');
    expect(missing.exitCode).not.toBe(0);
    expect(missing.stderr).toMatch(/no such container: nosuch/);
  });

  it('publish= matches host ports and expose= container ports of running containers', async () => {
    await ok('run', '-d', '--name', 'pub', '-p', `127.0.0.1:${PORT}:80`, 'busybox', 'sleep', '60');
    await ok('run', '-d', '--name', 'nopub', '--network', 'none', 'busybox', 'sleep', '60');
    expect(await names('--filter', `publish=${PORT}`)).toEqual(['pub']);
    expect(await names('--filter', `publish=${PORT - 5}-${PORT + 5}/tcp`)).toEqual(['pub']);
    expect(await names('--filter', `publish=${PORT}/udp`)).toEqual([]);
    expect(await names('--filter', 'publish=80')).toEqual([]);
    expect(await names('--filter', 'expose=80/tcp')).toEqual(['pub']);
    expect(await names('--filter', 'expose=81')).toEqual([]);
    const bad = await berth('ps', '--filter', 'publish=127.0.0.1:80');
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/not a port/);
    await ok('rm', '-f', 'pub', 'nopub');
  });

  it('volume= matches a bind by its source or destination', async () => {
    const src = path.join(t.root, 'vol');
    await mkdir(src);
    await ok('create', '--name', 'vb', '-v', `${src}:/data`, 'busybox', 'true');
    expect(await names('--filter', `volume=${src}`)).toEqual(['vb']);
    expect(await names('--filter', 'volume=/data')).toEqual(['vb']);
    expect(await names('--filter', 'volume=/elsewhere')).toEqual([]);
  });

  it('refuses bad status=, exited= and health= values rather than match nothing', async () => {
    for (const f of ['health=sick', 'status=sleeping', 'exited=x']) {
      const res = await berth('ps', '--filter', f);
      expect(res.exitCode, f).toBe(1);
      expect(res.stderr).toMatch(/invalid filter|Unrecognised filter value/);
    }
  });
});

describe('sizes', () => {
  it('ps -s and inspect -s give what the container wrote and that plus its image', async () => {
    await ok('run', '--name', 'sz', 'busybox', 'dd', 'if=/dev/zero', 'of=/blob', 'bs=1000', 'count=300');
    const plain = JSON.parse(await ok('inspect', 'sz'))[0];
    expect(plain).not.toHaveProperty('SizeRw');
    const withSize = JSON.parse(await ok('inspect', '-s', 'sz'))[0];
    const imageSize = JSON.parse(await ok('image', 'inspect', 'busybox'))[0].Size as number;
    expect(withSize.SizeRw).toBeGreaterThanOrEqual(300_000);
    expect(withSize.SizeRw).toBeLessThan(400_000);
    expect(withSize.SizeRootFs).toBe(imageSize + withSize.SizeRw);
    expect(await ok('inspect', '--size', '--type', 'container', '-f', '{{.SizeRw}}', 'sz')).toBe(String(withSize.SizeRw));
    const table = (await ok('ps', '-a', '-s', '--filter', 'name=^sz$')).split('\n');
    expect(table[0]).toMatch(/NAMES\s+SIZE$/);
    expect(table[1]).toMatch(/sz\s+\d+(\.\d+)?kB \(virtual \d+(\.\d+)?MB\)$/);
    // A format that prints .Size measures without -s, as docker's.
    expect(await ok('ps', '-a', '--filter', 'name=^sz$', '--format', '{{.Size}}')).toMatch(/^3\d\dkB \(virtual /);
    expect(await ok('ps', '-a', '--filter', 'name=^sz$', '--format', '{{.Names}}')).toBe('sz');
  });
});

describe('images filters', () => {
  it('before=, since= and label=', async () => {
    await ok('import', '-c', 'LABEL app=one', rootfsTar, 'localhost/img:1');
    await ok('import', '-c', 'LABEL app=two', '-c', 'LABEL tier=x', rootfsTar, 'localhost/img:2');
    await ok('import', rootfsTar, 'localhost/img:3');
    const refs = async (...f: string[]) => (await ok('images', '--format', '{{.Repository}}:{{.Tag}}', ...f.flatMap((x) => ['--filter', x]), 'localhost/img')).split('\n').filter(Boolean);
    expect(await refs('before=localhost/img:2')).toEqual(['localhost/img:1']);
    expect(await refs('since=localhost/img:2')).toEqual(['localhost/img:3']);
    expect(await refs('label=app')).toEqual(['localhost/img:2', 'localhost/img:1']);
    expect(await refs('label=app=two')).toEqual(['localhost/img:2']);
    expect(await refs('label=app', 'label=tier')).toEqual(['localhost/img:2']);
    const missing = await berth('images', '--filter', 'since=localhost/nosuch:1');
    expect(missing.exitCode).not.toBe(0);
    expect(missing.stderr).toMatch(/no such image/);
    expect((await berth('images', '--filter', 'colour=red')).stderr).toMatch(/not supported/);
  });
});

describe('prune --filter', () => {
  it('container prune takes label=, label!= and until=', async () => {
    await ok('create', '--name', 'pa', '--label', 'prune=a', 'busybox', 'true');
    await ok('create', '--name', 'pb', '--label', 'prune=b', 'busybox', 'true');
    expect(await ok('container', 'prune', '-f', '--filter', 'until=1h', '--filter', 'label=prune')).toBe('Total reclaimed space: 0B');
    const out = await ok('container', 'prune', '-f', '--filter', 'label=prune=a');
    expect(out).toMatch(/^Deleted Containers:\n[0-9a-f]{64}\n/);
    expect(await names('--filter', 'label=prune')).toEqual(['pb']);
    await ok('container', 'prune', '-f', '--filter', 'label!=prune=b', '--filter', 'label=prune');
    expect(await names('--filter', 'label=prune')).toEqual(['pb']);
    await ok('container', 'prune', '-f', '--filter', 'until=0s', '--filter', 'label=prune');
    expect(await names('--filter', 'label=prune')).toEqual([]);
    const bad = await berth('container', 'prune', '-f', '--filter', 'dangling=true');
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/invalid filter 'dangling'/);
  });

  it('network prune takes label= and until=', async () => {
    await ok('network', 'create', '--label', 'keep=no', 'pn1');
    await ok('network', 'create', '--label', 'keep=yes', 'pn2');
    expect(await ok('network', 'prune', '-f', '--filter', 'until=1h')).toBe('');
    expect(await ok('network', 'prune', '-f', '--filter', 'label=keep=no')).toBe('Deleted Networks:\npn1');
    expect(await ok('network', 'ls', '--filter', 'name=pn', '--format', '{{.Name}} {{.Label "keep"}}')).toBe('pn2 yes');
    await ok('network', 'rm', 'pn2');
  });

  it('image prune and system prune take label=; a bad filter removes nothing', async () => {
    await ok('import', '-c', 'LABEL sweep=1', rootfsTar);
    await ok('import', '-c', 'LABEL sweep=2', rootfsTar);
    await ok('create', '--name', 'sp', '--label', 'sweep=1', 'busybox', 'true');
    const dangling = async () => (await ok('images', '-q', '--no-trunc', '--filter', 'dangling=true')).split('\n').filter(Boolean).length;
    expect(await dangling()).toBe(2);
    const bad = await berth('system', 'prune', '-f', '--filter', 'until=soon');
    expect(bad.exitCode).toBe(1);
    expect(await dangling()).toBe(2);
    expect(await names('--filter', 'name=^sp$')).toEqual(['sp']);
    expect(await ok('image', 'prune', '-f', '--filter', 'label=sweep=2')).toMatch(/^Deleted Images:\ndeleted: sha256:/);
    expect(await dangling()).toBe(1);
    const sys = await ok('system', 'prune', '-f', '--filter', 'label=sweep=1');
    expect(sys).toMatch(/Deleted Containers:\n[0-9a-f]{64}\n/);
    expect(sys).toMatch(/Deleted Images:\ndeleted: sha256:/);
    expect(await dangling()).toBe(0);
    expect(await names('--filter', 'name=^sp$')).toEqual([]);
  });
});

describe('info and version in Docker shape', () => {
  it('info -f {{.ServerVersion}} and the JSON keys Docker scripts read', async () => {
    expect(await ok('info', '-f', '{{.ServerVersion}}')).toMatch(/^\d+\.\d+\.\d+$/);
    expect(await ok('info', '--format', '{{.DockerRootDir}}')).toBe(t.root);
    const info = JSON.parse(await ok('info', '--format', 'json'));
    for (const key of ['Containers', 'ContainersRunning', 'ContainersPaused', 'ContainersStopped', 'Images', 'Driver', 'NCPU', 'MemTotal',
      'KernelVersion', 'OSType', 'Architecture', 'CgroupVersion', 'CgroupDriver', 'DefaultRuntime', 'Runtimes', 'ClientInfo']) {
      expect(info, key).toHaveProperty(key);
    }
    expect(JSON.parse(await ok('info', '-f', '{{json .}}'))).toEqual({ ...info, MemTotal: expect.any(Number) });
    expect(info.ClientInfo.Version).toBe(info.ServerVersion);
  });

  it('version -f {{.Server.Version}} and {{.Client.Version}}', async () => {
    const v = await ok('version', '-f', '{{.Client.Version}} {{.Server.Version}}');
    expect(v).toMatch(/^(\d+\.\d+\.\d+) \1$/);
    const json = JSON.parse(await ok('version', '--format', 'json'));
    expect(json.Server.Components[0]).toMatchObject({ Name: 'Engine', Version: json.Server.Version });
    expect(Object.keys(json).sort()).toEqual(['Client', 'Server']);
  });
});
