/**
 * Issue 9, the container model: every option is parsed once, at create, so a bad one is refused before the
 * container exists (ps -a shows nothing new), and inspect shows the whole config straight after create,
 * the same as after a start. Run through the real CLI, as a user would.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDockerArchive } from '../fixtures/images.js';
import { testEngine, type TestEngine } from '../helpers/engine.js';
import { findLeaks } from '../helpers/leaks.js';

const PORT = 18980 + (process.pid % 10);
let t: TestEngine;

beforeAll(async () => {
  t = await testEngine(3700 + (process.pid % 100));
  await t.engine.images.ensureDefault();
  await t.engine.networks.create({ name: 'usernet', subnets: ['10.219.77.0/24'] });
  // An image whose ExposedPorts no port parser takes: -P must refuse it at create.
  const archive = path.join(t.root, 'badports.tar');
  await makeDockerArchive(archive, [{ entries: [{ type: 'file', path: 'f', content: 'x' }] }], {
    tags: ['localhost/badports:1'], config: { Cmd: ['true'], ExposedPorts: { 'abc/tcp': {} } },
  });
  expect((await berth('load', '-i', archive)).exitCode).toBe(0);
}, 120_000);
afterAll(async () => {
  await t?.cleanup();
});

const berth = (...args: string[]) => t.cli(...args);

async function containers(): Promise<string> {
  return (await berth('ps', '-a', '-q', '--no-trunc')).stdout;
}

describe('a create or run that Docker refuses leaves no container', () => {
  it.each([
    [['create', '-p', '70000:80', 'busybox'], /70000/],
    [['run', '-d', '--name', 'y', '-p', '99999:80', 'busybox', 'true'], /99999/],
    [['create', '-p', `${PORT}:80`, '-p', `${PORT}:81`, 'busybox'], /already allocated/],
    [['create', '-p', 'x:80', 'busybox'], /invalid/i],
    [['create', '--network', 'usernet', '--ip', '10.219.78.5', 'busybox'], /10\.219\.78\.5/],
    [['create', '--network', 'usernet', '--ip', 'deadbeef', 'busybox'], /deadbeef/],
    [['create', '--ip', '10.219.77.9', 'busybox'], /user defined networks only/],
    [['create', '--ip6', 'fd00::9', '--network', 'usernet', 'busybox'], /IPv6/i],
    [['create', '--dns', 'deadbeef', 'busybox'], /deadbeef/],
    [['create', '--dns-search', 'a\nnameserver 10.0.0.1', 'busybox'], /dns-search/],
    [['create', '--add-host', 'h:notanip', 'busybox'], /notanip/],
    [['create', '--add-host', 'bad name:10.0.0.1', 'busybox'], /add-host/],
    [['create', '--mac-address', 'zz:zz', 'busybox'], /zz:zz/],
    [['create', '--network', 'nosuch', 'busybox'], /nosuch/],
    [['create', '--name', 'self', '--network', 'container:self', 'busybox'], /self/],
    [['create', '--network', 'host', '-p', '80:80', 'busybox'], /conflicting options/],
    [['create', '--network', 'none', '-p', '80:80', 'busybox'], /conflicting options/],
    [['create', '--network-alias', 'a1', 'busybox'], /user defined networks/],
    [['create', '--label', '=v', 'busybox'], /label/],
    [['create', '-P', 'localhost/badports:1'], /abc/],
    [['create', '--restart', 'always', '--rm', 'busybox'], /conflicting options/],
    [['create', '--restart', 'sometimes', 'busybox'], /restart policy/],
    [['create', '--stop-signal', 'SIGNOPE', 'busybox'], /SIGNOPE/],
    [['create', '-m', 'lots', 'busybox'], /memory/],
    [['create', '--pid', 'container:nosuch', 'busybox'], /nosuch/],
    [['create', '--link', 'nosuch:alias', 'busybox'], /nosuch/],
    [['create', '--volumes-from', 'other', 'busybox'], /no such container: other/],
    [['create', '-u', ':x', 'busybox'], /names no user/],
  ])('%j', async (args, message) => {
    const before = await containers();
    const res = await berth(...args);
    expect(res.exitCode, res.stderr).toBe(125);
    expect(res.stderr).toMatch(message);
    expect(await containers()).toBe(before);
  });

  it('keeps the name free after a refused run --name', async () => {
    expect((await berth('run', '-d', '--name', 'y2', '-p', '99999:80', 'busybox', 'true')).exitCode).toBe(125);
    const ok = await berth('create', '--name', 'y2', 'busybox', 'true');
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect((await berth('rm', 'y2')).exitCode).toBe(0);
  });

  it('removes a container with rm -v (test/volume has what it removes)', async () => {
    expect((await berth('create', '--name', 'v1', 'busybox', 'true')).exitCode).toBe(0);
    const res = await berth('rm', '-v', 'v1');
    expect(res.exitCode, res.stderr).toBe(0);
  });
});

describe('a start that fails after a valid create', () => {
  it('keeps the container Created with the error, as Docker does (a user the image lacks)', async () => {
    const res = await berth('run', '-d', '--name', 'ghosted', '-u', 'ghost', 'busybox', 'true');
    expect(res.exitCode).toBe(125);
    expect(res.stderr).toContain('unable to find user ghost');
    expect((await berth('inspect', '--format', '{{.State.Status}}|{{.State.Error}}', 'ghosted')).stdout).toMatch(/^created\|.*ghost/);
    expect((await berth('rm', 'ghosted')).exitCode).toBe(0);
    expect(await findLeaks(t.root, t.runroot)).toEqual([]);
  });
});

describe('inspect after create', () => {
  it('shows every config field at once, and the same after a start', async () => {
    const created = await berth('create', '--name', 'c', '-m', '64m', '--pids-limit', '50', '-e', 'FOO=bar', '-w', '/bin',
      '--cpus', '0.5', '--shm-size', '32m', '--label', 'app=web', '--hostname', 'box', 'busybox', 'sleep', '30');
    expect(created.exitCode, created.stderr).toBe(0);
    const inspect = async () => JSON.parse((await berth('inspect', 'c')).stdout)[0] as { Config: Record<string, unknown>; HostConfig: Record<string, unknown>; Path: string; Args: string[] };
    const before = await inspect();
    expect(before.HostConfig).toMatchObject({ Memory: 64 * 1024 * 1024, PidsLimit: 50, CpuQuota: 50000, CpuPeriod: 100000, ShmSize: 32 * 1024 * 1024 });
    expect(before.Config.Env).toContain('FOO=bar');
    expect(before.Config).toMatchObject({ WorkingDir: '/bin', Hostname: 'box', Labels: { app: 'web' } });
    expect([before.Path, ...before.Args]).toEqual(['sleep', '30']);
    expect((await berth('start', 'c')).exitCode).toBe(0);
    const after = await inspect();
    expect(after.Config).toEqual(before.Config);
    expect(after.HostConfig).toEqual(before.HostConfig);
    // And the limits really apply.
    const limit = await berth('exec', 'c', 'cat', '/sys/fs/cgroup/memory/memory.limit_in_bytes');
    expect(limit.stdout.trim()).toBe(String(64 * 1024 * 1024));
    expect((await berth('rm', '-f', 'c')).exitCode).toBe(0);
  });
});

describe('a container made by an older Berth', () => {
  it('is read, upgraded once (its image config moves into the record) and starts', async () => {
    const { readFileSync, writeFileSync, existsSync } = await import('node:fs');
    const id = (await berth('create', '--name', 'old', '-e', 'A=1', 'busybox', 'sh', '-c', 'echo $A')).stdout.trim();
    const file = path.join(t.root, 'containers', id, 'container.json');
    const v2 = JSON.parse(readFileSync(file, 'utf8'));
    const c = v2.config;
    // The record as the previous version wrote it: request kept raw, state and phase flags, image config beside.
    writeFileSync(file, JSON.stringify({
      id, name: 'old', created: v2.created, image: c.image, imageId: c.imageId, request: c.request, path: c.path, args: c.args,
      tty: false, openStdin: false, state: 'created', pid: 0, startedAt: v2.startedAt, finishedAt: v2.finishedAt, exitCode: 0,
      oomKilled: false, error: '', restartPolicy: c.restartPolicy, restartCount: 0, manuallyStopped: false, autoRemove: false,
      stopSignal: 'SIGTERM', stopTimeout: 10, labels: {}, ports: [], networks: [], networkMode: 'bridge', hostname: id.slice(0, 12),
    }));
    writeFileSync(path.join(t.root, 'containers', id, 'config.json'), JSON.stringify({ imageConfig: c.imageConfig }));
    expect((await berth('inspect', '--format', '{{.State.Status}} {{.Config.Env}}', 'old')).stdout).toContain('created');
    expect(existsSync(path.join(t.root, 'containers', id, 'config.json'))).toBe(false);
    expect(JSON.parse(readFileSync(file, 'utf8')).version).toBe(2);
    expect((await berth('start', '-a', 'old')).stdout).toBe('1');
    expect((await berth('rm', 'old')).exitCode).toBe(0);
  });
});
