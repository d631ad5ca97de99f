/**
 * Issue 19, part 1: a remote engine over unix:// — `berth system service` on a temp socket over its own
 * root, driven by the CLI through -H, BERTH_HOST and contexts, and by the typed API's remote Engine.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, InvalidArgumentError, RemoteError, type RemoteEngineApi } from '../../src/api/index.js';
import { cleanupAll, sink, testEngine, type TestEngine } from '../helpers/engine.js';
import { startService, type TestService } from '../helpers/service.js';
import { inPty, remoteCli, resizePty, SIZE_THEN_WAIT } from './helpers.js';

let t: TestEngine;
let svc: TestService;
let home: string;
let cli: ReturnType<typeof remoteCli>;

beforeAll(async () => {
  t = await testEngine(3400 + (process.pid % 40));
  await t.engine.images.ensureDefault();
  svc = await startService(t);
  home = await mkdtemp(path.join(tmpdir(), 'berth-ctxhome-'));
  cli = remoteCli({ XDG_CONFIG_HOME: home });
}, 60_000);

afterAll(async () => {
  await svc?.close();
  await cleanupAll(t, home);
}, 60_000);

describe('the CLI through -H unix://', () => {
  it('run answers the container\'s exit code and streams; run -d, ps, logs and rm act on the remote store', async () => {
    const run = await cli('-H', svc.host, 'run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3');
    expect(run.exitCode).toBe(3);
    expect(run.stdout).toBe('out');
    expect(run.stderr).toBe('err');
    const d = await cli('-H', svc.host, 'run', '-d', '--name', 'r1', 'busybox', 'sh', '-c', 'echo one; echo two; sleep 60');
    expect(d.exitCode, d.stderr).toBe(0);
    const id = d.stdout.trim();
    expect((await t.engine.containers.inspect('r1')).Id).toBe(id);
    const ps = await cli('-H', svc.host, 'ps', '--format', '{{.Names}} {{.Status}}');
    expect(ps.stdout).toMatch(/^r1 Up /);
    let logs = '';
    for (let i = 0; i < 50 && logs !== 'one\ntwo'; i++) logs = (await cli('-H', svc.host, 'logs', 'r1')).stdout;
    expect(logs).toBe('one\ntwo');
    const removed = await cli('-H', svc.host, 'rm', '-f', 'r1');
    expect(removed.stdout).toBe('r1');
    expect((await cli('-H', svc.host, 'ps', '-aq')).stdout).toBe('');
    expect(await t.engine.containers.list({ all: true })).toEqual([]);
  }, 60_000);

  it('exec without a tty: output and exit code', async () => {
    await t.engine.containers.run({ image: 'busybox', name: 'x1', command: ['sleep', '60'], network: { networks: ['none'] } }, { detach: true });
    const ex = await cli('-H', svc.host, 'exec', 'x1', 'sh', '-c', 'echo in; exit 4');
    expect([ex.exitCode, ex.stdout]).toEqual([4, 'in']);
    await t.engine.containers.remove('x1', { force: true });
  }, 60_000);

  it('Docker\'s exit codes: 127 for a command not found, 125 for a refused run, 1 for the rest', async () => {
    const nf = await cli('-H', svc.host, 'run', '--rm', '--network', 'none', 'busybox', 'nosuchcmd');
    expect(nf.exitCode).toBe(127);
    expect(nf.stderr).toContain('nosuchcmd');
    // --pull never: a missing image is now pulled first, as the docker CLI does, and this test stays offline.
    const img = await cli('-H', svc.host, 'run', '--rm', '--pull', 'never', 'no-such-image:9');
    expect(img.exitCode).toBe(125);
    expect(img.stderr).toContain('no such image');
    const gone = await cli('-H', svc.host, 'logs', 'no-such-ctr');
    expect(gone.exitCode).toBe(1);
    expect(gone.stderr).toContain('no such container: no-such-ctr');
    expect(await t.engine.containers.list({ all: true })).toEqual([]);
  }, 60_000);

  it('stats, update, port and history act on the remote store, as locally', async () => {
    await t.engine.containers.run({ image: 'busybox', name: 's1', command: ['sleep', '60'], network: { networks: ['none'] } }, { detach: true });
    const stats = await cli('-H', svc.host, 'stats', '--no-stream', '--format', '{{.Name}} {{.PIDs}}', 's1');
    expect([stats.exitCode, stats.stdout], stats.stderr).toEqual([0, 's1 1']);
    const update = await cli('-H', svc.host, 'update', '--memory', '64m', '--pids-limit', '50', 's1');
    expect(update.exitCode, update.stderr).toBe(0);
    const after = await t.engine.containers.inspect('s1');
    expect([after.HostConfig.Memory, after.HostConfig.PidsLimit]).toEqual([67108864, 50]);
    await t.engine.containers.remove('s1', { force: true });
    expect((await t.cli('run', '-d', '--name', 'p1', '-p', '127.0.0.1:18081:80', '-p', '18082:81/udp', 'busybox', 'sleep', '60')).exitCode).toBe(0);
    const port = await cli('-H', svc.host, 'port', 'p1');
    expect(port.exitCode, port.stderr).toBe(0);
    const local = await t.cli('port', 'p1');
    expect(port.stdout).toBe(local.stdout);
    expect(port.stdout).toContain('80/tcp -> 127.0.0.1:18081');
    const remote = new Engine({ host: svc.host });
    expect(await remote.containers.port('p1')).toEqual(await t.engine.containers.port('p1'));
    await t.engine.containers.remove('p1', { force: true });
    const rows = (h: { id: string; createdBy: string; size: number }[]) => h.map((x) => [x.id, x.createdBy, x.size]);
    expect(rows(await remote.images.history('busybox'))).toEqual(rows(await t.engine.images.history('busybox')));
    const history = await cli('-H', svc.host, 'history', '-q', 'busybox');
    expect([history.exitCode, history.stdout.split('\n')[0]], history.stderr).toEqual([0, (await t.engine.images.inspect('busybox')).Id.slice(7, 19)]);
  }, 60_000);

  it('refuses what it does not map, and --root with a remote, by name', async () => {
    // This machine's store paths are not the remote's: never read or written through a remote engine.
    expect(() => new Engine({ host: svc.host }).root).toThrow('"root" is not supported on a remote host yet');
    // Local by nature: refused with the reason and where to run it, never "yet".
    const mount = await cli('-H', svc.host, 'image', 'mount', 'busybox');
    expect(mount.exitCode).toBe(1);
    expect(mount.stderr).toContain('"images.mount" acts on the own store and processes of the host it runs on');
    expect(mount.stderr).toContain('berth machine ssh NAME');
    const reload = await cli('-H', svc.host, 'network', 'reload', '--all');
    expect(reload.stderr).toContain('"networks.reload" acts on the own store');
    const root = await cli('-H', svc.host, '--root', t.root, 'ps');
    expect(root.exitCode).toBe(1);
    expect(root.stderr).toContain('invalid --root: cannot be used with a remote engine');
    const none = await cli('-H', `unix://${path.join(home, 'nothing.sock')}`, 'ps');
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toContain(`cannot connect to unix://${path.join(home, 'nothing.sock')}`);
    for (const cmd of [['system', 'service', '-t', '1', `unix://${path.join(home, 'relay.sock')}`], ['system', 'dial-stdio']]) {
      const relay = await cli('-H', svc.host, ...cmd);
      expect(relay.exitCode, cmd.join(' ')).toBe(1);
      expect(relay.stderr).toContain('serves this machine\'s engine');
    }
  }, 60_000);

  it('version and info name the context, and version shows the remote\'s server', async () => {
    const v = await cli('-H', svc.host, 'version', '--format', '{{.Client.Context}} {{.Server.ApiVersion}}');
    expect([v.exitCode, v.stdout]).toEqual([0, 'default 1.41']);
    const text = await cli('-H', svc.host, 'version');
    expect(text.stdout).toContain(`Server: Berth (${svc.host})`);
  }, 60_000);

  it('BERTH_HOST picks the engine as -H does', async () => {
    const env = remoteCli({ XDG_CONFIG_HOME: home, BERTH_HOST: svc.host });
    const run = await env('run', '--rm', '--network', 'none', 'busybox', 'echo', 'via-env');
    expect([run.exitCode, run.stdout]).toEqual([0, 'via-env']);
  }, 60_000);
});

describe('a terminal through -H unix:// (issue 19, part 2)', () => {
  it('run -it: the container starts at the terminal\'s size, follows its resizes, and its exit code is the client\'s', async () => {
    const s = inPty(['-H', svc.host, 'run', '-it', '--name', 'tty-run', '--network', 'none', 'busybox', ...SIZE_THEN_WAIT(3)], { XDG_CONFIG_HOME: home });
    await s.until('ready');
    expect(s.lines()[0]).toBe('33 101');
    await resizePty(s, 40, 120);
    await s.until('40 120');
    expect((await cli('-H', svc.host, 'exec', 'tty-run', 'touch', '/tmp/stop')).exitCode).toBe(0);
    expect(await s.done).toBe(3);
    expect((await t.engine.containers.inspect('tty-run')).State.ExitCode).toBe(3);
    await t.engine.containers.remove('tty-run');
  }, 60_000);

  it('exec -it: the exec starts at the terminal\'s size, follows its resizes, and answers its exit code', async () => {
    await t.engine.containers.run({ image: 'busybox', name: 'tty-exec', command: ['sleep', '300'], network: { networks: ['none'] } }, { detach: true });
    const s = inPty(['-H', svc.host, 'exec', '-it', 'tty-exec', ...SIZE_THEN_WAIT(4)], { XDG_CONFIG_HOME: home });
    await s.until('ready');
    expect(s.lines()[0]).toBe('33 101');
    await resizePty(s, 41, 121);
    await s.until('41 121');
    await t.engine.containers.exec('tty-exec', { command: ['touch', '/tmp/stop'] });
    expect(await s.done).toBe(4);
    await t.engine.containers.remove('tty-exec', { force: true });
  }, 60_000);

  it('the detach keys leave the container running; attach types into it, detaches with its own keys, and ends with its exit code', async () => {
    const run = inPty(['-H', svc.host, 'run', '-it', '--name', 'detachable', '--network', 'none', 'busybox', 'sh'], { XDG_CONFIG_HOME: home });
    await run.until('/ # ');
    run.type('echo typed > /tmp/t\r');
    await run.until('echo typed');
    run.type('\x10\x11');
    expect(await run.done).toBe(0);
    expect((await t.engine.containers.inspect('detachable')).State.Running).toBe(true);
    expect((await cli('-H', svc.host, 'exec', 'detachable', 'cat', '/tmp/t')).stdout).toBe('typed');

    const again = inPty(['-H', svc.host, 'attach', '--detach-keys', 'ctrl-x,y', 'detachable'], { XDG_CONFIG_HOME: home });
    await again.until('echo typed');
    again.type('echo back > /tmp/r\r');
    await again.until('echo back');
    again.type('\x18y');
    expect(await again.done).toBe(0);
    expect((await t.engine.containers.inspect('detachable')).State.Running).toBe(true);
    expect((await cli('-H', svc.host, 'exec', 'detachable', 'cat', '/tmp/r')).stdout).toBe('back');

    const last = inPty(['-H', svc.host, 'attach', 'detachable'], { XDG_CONFIG_HOME: home });
    await last.until('echo back');
    last.type('exit 5\r');
    expect(await last.done).toBe(5);
    const bad = await cli('-H', svc.host, 'run', '-it', '--detach-keys', 'ctrl-1', 'busybox', 'sh');
    expect(bad.exitCode).toBe(125);
    expect(bad.stderr).toContain('invalid detach keys');
    await t.engine.containers.remove('detachable', { force: true });
    expect(await t.engine.containers.list({ all: true })).toEqual([]);
  }, 90_000);
});

describe('contexts', () => {
  it('create, ls, use, inspect, export/import, rm; every command follows the current context', async () => {
    expect((await cli('context', 'create', 'svc1', '--host', svc.host, '--description', 'the test service')).exitCode).toBe(0);
    const ls = await cli('context', 'ls');
    expect(ls.stdout.split('\n')[0]).toMatch(/^NAME\s+DESCRIPTION\s+BERTH ENDPOINT$/);
    expect(ls.stdout).toMatch(/^default \*\s+/m);
    expect(ls.stdout).toMatch(new RegExp(`^svc1\\s+the test service\\s+${svc.host}$`, 'm'));
    const dup = await cli('context', 'create', 'svc1', '--host', svc.host);
    expect(dup.exitCode).toBe(1);
    expect(dup.stderr).toContain('context svc1 already exists');
    const badName = await cli('context', 'create', '-bad', '--host', svc.host);
    expect(badName.exitCode).not.toBe(0);

    await t.engine.containers.run({ image: 'busybox', name: 'c1', command: ['sleep', '60'], network: { networks: ['none'] } }, { detach: true });
    expect((await cli('--context', 'svc1', 'ps', '--format', '{{.Names}}')).stdout).toBe('c1');
    expect((await remoteCli({ XDG_CONFIG_HOME: home, BERTH_CONTEXT: 'svc1' })('ps', '--format', '{{.Names}}')).stdout).toBe('c1');
    expect((await cli('context', 'use', 'svc1')).exitCode).toBe(0);
    expect((await cli('context', 'ls', '--format', '{{.Name}} {{.Current}}')).stdout).toBe('default false\nsvc1 true');
    expect((await cli('ps', '--format', '{{.Names}}')).stdout).toBe('c1');
    const inspect = JSON.parse((await cli('context', 'inspect')).stdout);
    expect(inspect[0]).toMatchObject({ Name: 'svc1', Endpoints: { docker: { Host: svc.host } } });

    const file = path.join(home, 'svc1.tar');
    expect((await cli('context', 'export', 'svc1', file)).exitCode).toBe(0);
    expect((await cli('context', 'import', 'svc2', file)).exitCode).toBe(0);
    expect((await cli('--context', 'svc2', 'ps', '-q')).stdout).toHaveLength(12);

    const rmDefault = await cli('context', 'rm', 'default');
    expect(rmDefault.exitCode).toBe(1);
    expect(rmDefault.stderr).toContain('the default context cannot be removed');
    expect((await cli('context', 'rm', 'svc1')).stderr).toContain('context "svc1" is in use');
    expect((await cli('context', 'use', 'default')).exitCode).toBe(0);
    expect((await cli('context', 'rm', 'svc1', 'svc2')).stdout).toBe('svc1\nsvc2');
    expect((await cli('context', 'ls', '-q')).stdout).toBe('default');
    await t.engine.containers.remove('c1', { force: true });
  }, 60_000);
});

describe('contexts and Docker', () => {
  it('the docker CLI imports a context Berth exported, and Berth imports the one docker exports', async () => {
    const file = path.join(home, 'to-docker.tar');
    expect((await cli('context', 'create', 'todocker', '--host', svc.host, '--description', 'd1')).exitCode).toBe(0);
    expect((await cli('context', 'export', 'todocker', file)).exitCode).toBe(0);
    const dockerEnv = { env: { DOCKER_CONFIG: path.join(home, 'docker') }, reject: false, timeout: 30_000 } as const;
    expect((await execa('docker', ['context', 'import', 'fromberth', file], dockerEnv)).exitCode).toBe(0);
    expect((await execa('docker', ['context', 'inspect', '--format', '{{.Endpoints.docker.Host}}', 'fromberth'], dockerEnv)).stdout).toBe(svc.host);
    const back = path.join(home, 'from-docker.tar');
    expect((await execa('docker', ['context', 'export', 'fromberth', back], dockerEnv)).exitCode).toBe(0);
    expect((await cli('context', 'import', 'fromdocker', back)).exitCode).toBe(0);
    expect((await cli('--context', 'fromdocker', 'version', '--format', '{{.Server.ApiVersion}}')).stdout).toBe('1.41');
    expect((await cli('context', 'rm', 'todocker', 'fromdocker')).exitCode).toBe(0);
  }, 60_000);
});

describe('the typed API: new Engine({ host })', () => {
  it('has the same interface: runs a container, follows its logs, waits for it, and refuses local options', async () => {
    const remote = new Engine({ host: svc.host }) as unknown as RemoteEngineApi;
    try {
      expect((await remote.system.ping()).apiVersion).toBe('1.41');
      expect((await remote.system.version()).Version).toBeTruthy();
      const { id } = await remote.containers.run({ image: 'busybox', command: ['sh', '-c', 'for i in 1 2 3; do echo line$i; sleep 0.2; done; echo bad >&2; exit 2'], network: { networks: ['none'] } }, { detach: true });
      const lines: string[] = [];
      for await (const e of remote.containers.logs(id, { follow: true })) lines.push(`${e.stream}:${e.line}`);
      expect(lines).toEqual(['stdout:line1', 'stdout:line2', 'stdout:line3', 'stderr:bad']);
      expect(await remote.containers.wait(id)).toBe(2);
      expect((await remote.containers.inspect(id)).State.ExitCode).toBe(2);
      expect((await remote.containers.list({ all: true })).map((c) => c.id)).toEqual([id]);
      await remote.containers.remove(id);

      const out = sink();
      const res = await remote.run({ image: 'busybox', command: ['echo', 'attached'], autoRemove: true, network: { networks: ['none'] } }, { io: { stdout: out.stream } });
      expect([res.exitCode, out.text()]).toEqual([0, 'attached\n']);
      expect(await remote.containers.list({ all: true })).toEqual([]);
      expect((await remote.images.list()).some((i) => i.repoTags.includes('localhost/busybox:latest'))).toBe(true);
      expect((await remote.networks.list()).map((n) => n.name)).toContain('none');
      expect(await remote.volumes.list()).toEqual([]);
      expect(() => remote.images.mount('busybox')).toThrow(RemoteError);
    } finally {
      remote.close();
    }
    expect(() => new Engine({ host: svc.host, root: t.root })).toThrow(InvalidArgumentError);
  }, 60_000);

  it('a connection dropped in the middle of logs -f ends the follow with a clear error; the container keeps running', async () => {
    const other = await startService(t);
    const remote = new Engine({ host: other.host }) as unknown as RemoteEngineApi;
    try {
      const { id } = await remote.containers.run({ image: 'busybox', command: ['sh', '-c', 'echo first; sleep 60'], network: { networks: ['none'] } }, { detach: true });
      const seen: string[] = [];
      const failure = (async () => {
        for await (const e of remote.containers.logs(id, { follow: true })) {
          seen.push(e.line);
          if (e.line === 'first') void other.close();
        }
      })().then(() => undefined, (err: unknown) => err);
      const err = await failure;
      expect(seen).toEqual(['first']);
      expect(err).toBeInstanceOf(RemoteError);
      expect((err as RemoteError).reason).toBe('dropped');
      expect((err as Error).message).toContain(other.host);
      expect((await t.engine.containers.inspect(id)).State.Running).toBe(true);
      await t.engine.containers.remove(id, { force: true });
    } finally {
      remote.close();
      await other.close();
    }
  }, 60_000);
});
