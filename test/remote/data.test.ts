/**
 * Issue 19, part 2: the data and progress calls through -H unix:// — cp both ways, build, load/save,
 * pull/push (against a registry on 127.0.0.1, which the service reaches as well: one netns), tag, prune,
 * networks, volumes and events. The service serves the test engine's own store, so each remote command is
 * checked against what the same command says locally on that store.
 */
import { mkdir, mkdtemp, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startService, type TestService } from '../helpers/service.js';
import { remoteCli } from './helpers.js';

let t: TestEngine;
let svc: TestService;
let home: string;
let cli: ReturnType<typeof remoteCli>;
let reg: TestRegistry | undefined;

beforeAll(async () => {
  t = await testEngine(3500 + (process.pid % 40));
  await t.engine.images.ensureDefault();
  svc = await startService(t);
  home = await mkdtemp(path.join(tmpdir(), 'berth-rdata-'));
  cli = remoteCli({ XDG_CONFIG_HOME: home });
}, 60_000);

afterAll(async () => {
  await reg?.stop();
  await svc?.close();
  await cleanupAll(t, home);
}, 60_000);

const remote = (...args: string[]) => cli('-H', svc.host, ...args);

describe('cp through -H unix://', () => {
  it('both ways, by Docker\'s landing rules, and as a tar stream', async () => {
    await t.ok('run', '-d', '--name', 'cp1', '--network', 'none', 'busybox', 'sleep', '300');
    const src = path.join(home, 'src');
    await mkdir(path.join(src, 'sub'), { recursive: true });
    await writeFile(path.join(src, 'a.txt'), 'alpha\n');
    await writeFile(path.join(src, 'sub', 'b.txt'), 'beta\n');

    const inFolder = await remote('cp', src, 'cp1:/tmp/');
    expect(inFolder.exitCode, inFolder.stderr).toBe(0);
    expect(inFolder.stderr).toMatch(/^Successfully copied .* to cp1:\/tmp\/$/);
    expect(await t.ok('exec', 'cp1', 'cat', '/tmp/src/a.txt', '/tmp/src/sub/b.txt')).toBe('alpha\nbeta');
    expect((await remote('cp', path.join(src, 'a.txt'), 'cp1:/tmp/renamed.txt')).exitCode).toBe(0);
    expect(await t.ok('exec', 'cp1', 'cat', '/tmp/renamed.txt')).toBe('alpha');

    const back = path.join(home, 'back');
    await mkdir(back);
    const out = await remote('cp', 'cp1:/tmp/src', back);
    expect(out.exitCode, out.stderr).toBe(0);
    expect(await readFile(path.join(back, 'src', 'sub', 'b.txt'), 'utf8')).toBe('beta\n');
    expect((await remote('cp', 'cp1:/tmp/src/.', path.join(back, 'contents'))).exitCode).toBe(0);
    expect((await readdir(path.join(back, 'contents'))).sort()).toEqual(['a.txt', 'sub']);
    expect((await remote('cp', 'cp1:/tmp/renamed.txt', path.join(back, 'file.txt'))).exitCode).toBe(0);
    expect(await readFile(path.join(back, 'file.txt'), 'utf8')).toBe('alpha\n');

    // As a tar stream on stdout, the same bytes' entries as locally.
    const tarRemote = await execa('sh', ['-c', `"$0" -H ${svc.host} cp cp1:/tmp/src - | tar -t | sort`, remoteBin()], { env: { XDG_CONFIG_HOME: home } });
    const tarLocal = await execa('sh', ['-c', `"$0" --root ${t.root} --runroot ${t.runroot} cp cp1:/tmp/src - | tar -t | sort`, remoteBin()]);
    expect(tarRemote.stdout).toBe(tarLocal.stdout);

    const missing = await remote('cp', 'cp1:/nope', back);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain('no such file: /nope in container cp1');
    const noCtr = await remote('cp', 'nosuch:/tmp', back);
    expect(noCtr.stderr).toContain('no such container: nosuch');
    await t.engine.containers.remove('cp1', { force: true });
  }, 60_000);
});

function remoteBin(): string {
  return new URL('../../bin/berth.js', import.meta.url).pathname;
}

describe('container verbs through -H unix://', () => {
  it('pause/unpause, rename, restart, top, diff, commit, export and container prune answer as locally', async () => {
    await t.ok('run', '-d', '--name', 'v1', '--network', 'none', 'busybox', 'sh', '-c', 'echo x > /made; sleep 300');
    expect((await remote('pause', 'v1')).stdout).toBe('v1');
    expect(await t.ok('inspect', '-f', '{{.State.Status}}', 'v1')).toBe('paused');
    expect((await remote('unpause', 'v1')).stdout).toBe('v1');
    expect((await remote('rename', 'v1', 'v2')).exitCode).toBe(0);
    expect((await remote('restart', '-t', '0', 'v2')).stdout).toBe('v2');
    expect((await remote('top', 'v2')).stdout.split('\n')[0]).toBe((await t.cli('top', 'v2')).stdout.split('\n')[0]);
    for (let i = 0; i < 50 && !(await t.cli('diff', 'v2')).stdout.includes('/made'); i++) await new Promise((r) => setTimeout(r, 100));
    expect((await remote('diff', 'v2')).stdout).toBe((await t.cli('diff', 'v2')).stdout);
    const committed = await remote('commit', '-c', 'CMD ["cat", "/made"]', 'v2', 'rcommit:1');
    expect(committed.exitCode, committed.stderr).toBe(0);
    expect(await t.ok('run', '--rm', '--network', 'none', 'rcommit:1')).toBe('x');
    const tar = path.join(home, 'v2.tar');
    expect((await remote('export', '-o', tar, 'v2')).exitCode).toBe(0);
    expect((await execa('tar', ['-tf', tar])).stdout.split('\n')).toContain('made');
    await t.ok('stop', '-t', '0', 'v2');
    const id = await t.ok('inspect', '-f', '{{.Id}}', 'v2');
    expect((await remote('container', 'prune', '-f')).stdout).toMatch(new RegExp(`^Deleted Containers:\n${id}\n`));
    expect(await t.engine.containers.list({ all: true })).toEqual([]);
    await t.ok('rmi', 'rcommit:1');
  }, 90_000);
});

describe('build through -H unix://', () => {
  it('sends the context; -f (inside and outside the context), -t, --build-arg, --target; progress as locally', async () => {
    const ctx = path.join(home, 'ctx');
    await mkdir(ctx, { recursive: true });
    await writeFile(path.join(ctx, 'hello.txt'), 'from the context\n');
    await writeFile(path.join(ctx, 'Dockerfile.app'), [
      'FROM busybox AS base', 'ARG GREETING=none', 'COPY hello.txt /hello.txt', 'RUN echo "$GREETING" > /greeting',
      'FROM base AS extra', 'RUN echo never > /never', '',
    ].join('\n'));
    const res = await remote('build', '-f', path.join(ctx, 'Dockerfile.app'), '-t', 'rbuild:1', '--build-arg', 'GREETING=hi', '--target', 'base', ctx);
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^Step 1\/4 : FROM busybox AS base$/m);
    expect(res.stdout).toMatch(/^Successfully built [0-9a-f]{12}\nSuccessfully tagged rbuild:1$/m);
    expect(res.stdout).not.toContain('never');
    const run = await t.ok('run', '--rm', '--network', 'none', 'rbuild:1', 'cat', '/hello.txt', '/greeting');
    expect(run).toBe('from the context\nhi');
    // The same build locally: the same lines, now from the cache.
    const local = await t.cli('build', '-f', path.join(ctx, 'Dockerfile.app'), '-t', 'rbuild:1', '--build-arg', 'GREETING=hi', '--target', 'base', ctx);
    const again = await remote('build', '-f', path.join(ctx, 'Dockerfile.app'), '-t', 'rbuild:1', '--build-arg', 'GREETING=hi', '--target', 'base', ctx);
    expect(again.stdout).toBe(local.stdout);

    const outside = path.join(home, 'Dockerfile.outside');
    await writeFile(outside, 'FROM busybox\nCOPY hello.txt /x\n');
    const out = await remote('build', '-q', '-f', outside, '-t', 'rbuild:2', ctx);
    expect(out.exitCode, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/^sha256:[0-9a-f]{64}$/);

    const bad = await remote('build', '-f', path.join(ctx, 'Dockerfile.app'), '--target', 'nosuch', ctx);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toContain('nosuch');
    await t.ok('rmi', 'rbuild:1', 'rbuild:2');
  }, 120_000);
});

describe('images through -H unix://', () => {
  it('save and load, tag, images prune', async () => {
    const file = path.join(home, 'bb.tar');
    const saved = await remote('save', '-o', file, 'busybox');
    expect(saved.exitCode, saved.stderr).toBe(0);
    expect((await stat(file)).size).toBeGreaterThan(100_000);
    expect((await remote('tag', 'busybox', 'rtagged:7')).exitCode).toBe(0);
    expect(await t.ok('images', '--format', '{{.Repository}}:{{.Tag}}', 'rtagged')).toBe('rtagged:7');
    expect((await remote('rmi', 'rtagged:7')).exitCode).toBe(0);
    const loaded = await remote('load', '-i', file);
    expect(loaded.exitCode, loaded.stderr).toBe(0);
    expect(loaded.stdout).toMatch(/^Loaded image: .*busybox:latest$/);
    const pruned = await remote('image', 'prune', '-f');
    expect(pruned.exitCode, pruned.stderr).toBe(0);
    expect(pruned.stdout).toContain('Total reclaimed space');
    const gone = await remote('save', '-o', file, 'no-such-image:1');
    expect(gone.exitCode).toBe(1);
    expect(gone.stderr).toContain('no such image: no-such-image:1');
  }, 60_000);

  it('push and pull are done by the remote, with Docker\'s progress', async () => {
    reg = await startRegistry({ port: 15230 });
    const ref = `${reg.host}/remote/busybox:2`;
    expect((await remote('tag', 'busybox', ref)).exitCode).toBe(0);
    const pushed = await remote('push', ref);
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    expect(pushed.stdout).toContain(`The push refers to repository [${reg.host}/remote/busybox]`);
    expect(pushed.stdout).toMatch(/^2: digest: sha256:[0-9a-f]{64} size: \d+$/m);
    expect((await remote('rmi', ref)).exitCode).toBe(0);
    const pulled = await remote('pull', ref);
    expect(pulled.exitCode, pulled.stderr).toBe(0);
    expect(pulled.stdout).toMatch(/^2: Pulling from remote\/busybox$/m);
    expect(pulled.stdout).toMatch(/^Digest: sha256:[0-9a-f]{64}$/m);
    expect(pulled.stdout).toContain(`Status: Downloaded newer image for ${ref}`);
    const again = await remote('pull', ref);
    expect(again.stdout).toContain(`Status: Image is up to date for ${ref}`);
    expect(await t.ok('images', '-q', ref)).toHaveLength(12);
    const missing = await remote('pull', `${reg.host}/remote/nothing:1`);
    // The 125 for every failed pull, as locally.
    expect(missing.exitCode).toBe(125);
    expect((await remote('rmi', ref)).exitCode).toBe(0);
  }, 90_000);
});

describe('networks, volumes and events through -H unix://', () => {
  it('network create/inspect/connect/disconnect/rm and volume create/inspect/rm answer as locally', async () => {
    const made = await remote('network', 'create', '--subnet', `10.${200 + (process.pid % 40)}.77.0/24`, '--label', 'k=v', 'rnet');
    expect(made.exitCode, made.stderr).toBe(0);
    expect((await remote('network', 'inspect', '-f', '{{.Name}} {{index .Labels "k"}}', 'rnet')).stdout).toBe('rnet v');
    // The same record; only Options differ: the service leaves out the bridge name it derived, as compose needs.
    const fields = '{{.Name}} {{.Id}} {{.Driver}} {{json .IPAM}} {{json .Labels}} {{.Internal}}';
    expect((await remote('network', 'inspect', '-f', fields, 'rnet')).stdout).toBe((await t.cli('network', 'inspect', '-f', fields, 'rnet')).stdout);
    const dup = await remote('network', 'create', 'rnet');
    expect(dup.exitCode).toBe(1);
    expect(dup.stderr).toContain('network rnet already exists');
    await t.ok('run', '-d', '--name', 'n1', '--network', 'none', 'busybox', 'sleep', '300');
    await t.ok('create', '--name', 'n2', 'busybox', 'true');
    expect((await remote('network', 'connect', 'rnet', 'n2')).exitCode).toBe(0);
    expect((await remote('network', 'inspect', '-f', '{{len .Containers}}', 'rnet')).stdout).toBe((await t.cli('network', 'inspect', '-f', '{{len .Containers}}', 'rnet')).stdout);
    expect((await remote('network', 'disconnect', 'rnet', 'n2')).exitCode).toBe(0);
    expect((await remote('network', 'rm', 'rnet')).stdout).toBe('rnet');
    const none = await remote('network', 'inspect', 'rnet');
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toContain('no such network: rnet');

    expect((await remote('volume', 'create', '--label', 'a=b', 'rvol')).stdout).toBe('rvol');
    expect((await remote('volume', 'inspect', 'rvol')).stdout).toBe((await t.cli('volume', 'inspect', 'rvol')).stdout);
    expect((await remote('volume', 'rm', 'rvol')).stdout).toBe('rvol');
    expect((await remote('volume', 'rm', 'rvol')).stderr).toContain('no such volume: rvol');
    await t.engine.containers.remove('n1', { force: true });
    await t.engine.containers.remove('n2', { force: true });
  }, 60_000);

  it('events follows the remote\'s log, as locally', async () => {
    const since = String(Math.floor(Date.now() / 1000) - 1);
    await t.ok('create', '--name', 'evctr', 'busybox', 'true');
    await t.ok('rm', 'evctr');
    const until = String(Math.floor(Date.now() / 1000) + 1);
    const r = await remote('events', '--since', since, '--until', until, '--filter', 'container=evctr');
    const l = await t.cli('events', '--since', since, '--until', until, '--filter', 'container=evctr');
    expect(r.exitCode, r.stderr).toBe(0);
    // The same lines; the API's timeNano is a JSON number, exact to about 256 ns only.
    const millis = (text: string) => text.replace(/(\.\d{3})\d{6}Z/g, '$1Z');
    expect(millis(r.stdout)).toBe(millis(l.stdout));
    expect(r.stdout).toMatch(/container create [0-9a-f]{64} \(image=busybox, name=evctr\)/);
    expect(r.stdout).toMatch(/container destroy /);
  }, 60_000);
});
