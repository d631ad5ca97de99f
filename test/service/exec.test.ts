/**
 * exec, attach and resize through the Engine API, driven by the real docker CLI (and raw requests where
 * the CLI cannot say what is wrong). Containers are made with the Engine directly: create and start are
 * another group's endpoints.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { execa } from 'execa';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { startService, type TestService } from '../helpers/service.js';
import { frames, until } from './exec-raw.js';

const SLOT = 4160;
let t: TestEngine;
let svc: TestService;
let c = '';

const docker = (args: readonly string[], opts: Parameters<TestService['docker']>[1] = {}) => svc.docker(args, opts);

beforeAll(async () => {
  t = await testEngine(SLOT + (process.pid % 20));
  await t.engine.images.ensureDefault();
  svc = await startService(t);
  ({ id: c } = await t.engine.containers.run({ image: 'busybox', name: 'exec1', command: ['sleep', '1000'], network: { networks: ['none'] } }, { detach: true }));
}, 120_000);

afterAll(async () => {
  await svc?.close();
  await cleanupAll(t);
});

describe('docker exec', () => {
  it('runs a command and shows its output', async () => {
    const r = await docker(['exec', 'exec1', 'echo', 'hi']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('hi');
    expect(r.exitCode).toBe(0);
  });

  it('passes env, workdir and user; the exit code and stderr come back', async () => {
    const r = await docker(['exec', '-e', 'A=b', '-w', '/tmp', '-u', '1000', 'exec1', 'sh', '-c', 'echo $A $(pwd) $(id -u); echo oops >&2; exit 3']);
    expect(r.stdout).toBe('b /tmp 1000');
    expect(r.stderr).toBe('oops');
    expect(r.exitCode).toBe(3);
  });

  it('-i feeds stdin, and its end ends the process', async () => {
    const r = await docker(['exec', '-i', 'exec1', 'cat'], { input: 'line one\nline two\n' });
    expect(r.stdout).toBe('line one\nline two');
    expect(r.exitCode).toBe(0);
  });

  it('a command that is not there exits 127 with the runtime words', async () => {
    const r = await docker(['exec', 'exec1', 'nosuchcmd']);
    expect(r.exitCode).toBe(127);
    expect(String(r.stdout) + String(r.stderr)).toContain('executable file not found');
  });

  it('-d runs it in the background', async () => {
    const r = await docker(['exec', '-d', 'exec1', 'sh', '-c', 'echo done > /tmp/detached']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('');
    await until(async () => (await docker(['exec', 'exec1', 'cat', '/tmp/detached'])).stdout === 'done');
  });

  it('-it runs a shell in a terminal', async () => {
    const r = await execa('script', ['-q', '-e', '-c', 'docker exec -it exec1 sh', '/dev/null'], {
      reject: false, timeout: 60_000, input: 'echo $((6*7)); tty; exit 5\n',
      env: { DOCKER_HOST: svc.host, DOCKER_CONFIG: '/nonexistent' },
    });
    expect(r.stdout).toContain('42');
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
    expect(r.exitCode).toBe(5);
  });
});

describe('exec endpoints, raw', () => {
  const create = (body: unknown, ref = c) => svc.request('POST', `/containers/${ref}/exec`, body);

  it('start without an upgrade answers 200 with the multiplexed body; inspect has the exit code', async () => {
    const made = await create({ Cmd: ['sh', '-c', 'echo out; echo err >&2; exit 2'], AttachStdout: true, AttachStderr: true, User: '1000', Privileged: false });
    expect(made.status).toBe(201);
    const id = made.json().Id as string;
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    const before = (await svc.request('GET', `/exec/${id}/json`)).json();
    expect(before).toMatchObject({ ID: id, Running: false, ExitCode: null, ContainerID: c, OpenStdin: false, OpenStdout: true, OpenStderr: true });
    const started = await svc.request('POST', `/exec/${id}/start`, { Detach: false, Tty: false });
    expect(started.status).toBe(200);
    expect(started.headers['content-type']).toBe('application/vnd.docker.raw-stream');
    expect(frames(started.body).sort()).toEqual([[1, 'out\n'], [2, 'err\n']]);
    const after = (await svc.request('GET', `/exec/${id}/json`)).json();
    expect(after).toMatchObject({
      Running: false, ExitCode: 2,
      ProcessConfig: { entrypoint: 'sh', arguments: ['-c', 'echo out; echo err >&2; exit 2'], tty: false, user: '1000', privileged: false },
    });
    // An instance runs once, as Docker's.
    const again = await svc.request('POST', `/exec/${id}/start`, {});
    expect(again.status).toBe(409);
    expect(again.json().message).toContain('has already run');
  });

  it('Detach runs it in the background; inspect follows it to its exit code', async () => {
    const id = (await create({ Cmd: ['sh', '-c', 'sleep 0.3; exit 7'] })).json().Id as string;
    const started = await svc.request('POST', `/exec/${id}/start`, { Detach: true });
    expect(started.status).toBe(200);
    expect(started.body.length).toBe(0);
    await until(async () => (await svc.request('GET', `/exec/${id}/json`)).json().ExitCode === 7);
    expect((await svc.request('GET', `/exec/${id}/json`)).json().Running).toBe(false);
  });

  it('refuses bad bodies with 400 naming the field, and leaves no instance', async () => {
    const cases: [unknown, RegExp][] = [
      ['{not json', /not valid JSON/],
      [[], /JSON object/],
      [{}, /No exec command specified/],
      [{ Cmd: [] }, /No exec command specified/],
      [{ Cmd: 'echo hi' }, /Cmd must be an array of strings/],
      [{ Cmd: ['echo', 1] }, /Cmd must be an array of strings/],
      [{ Cmd: ['true'], Tty: 'yes' }, /Tty must be true or false/],
      [{ Cmd: ['true'], Env: 'A=b' }, /Env must be an array of strings/],
      [{ Cmd: ['true'], User: 0 }, /User must be a string/],
      [{ Cmd: ['true'], ConsoleSize: [1] }, /ConsoleSize must be \[height, width\]/],
      [{ Cmd: ['true'], DetachKeys: 'ctrl-x' }, /DetachKeys is not supported yet/],
    ];
    for (const [body, message] of cases) {
      const r = await create(typeof body === 'string' ? Buffer.from(body) : body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json().message).toMatch(message);
    }
    const start = await svc.request('POST', `/exec/${(await create({ Cmd: ['true'] })).json().Id}/start`, Buffer.from('[1'));
    expect(start.status).toBe(400);
  });

  it('answers 404 for an unknown container or instance, 409 for a stopped container', async () => {
    const noCtr = await create({ Cmd: ['true'] }, 'nosuch');
    expect(noCtr.status).toBe(404);
    expect(noCtr.json().message).toBe('No such container: nosuch');
    for (const [m, p] of [['POST', '/exec/abc/start'], ['GET', '/exec/abc/json'], ['GET', '/exec/..%2f..%2fetc/json']] as const) {
      const r = await svc.request(m, p, m === 'POST' ? {} : undefined);
      expect(r.status, p).toBe(404);
      expect(r.json().message).toMatch(/^No such exec instance: /);
    }
    const { id } = await t.engine.containers.create({ image: 'busybox', command: ['true'], network: { networks: ['none'] } });
    const stopped = await create({ Cmd: ['true'] }, id);
    expect(stopped.status).toBe(409);
    expect(stopped.json().message).toBe(`Container ${id} is not running`);
    await t.engine.containers.remove(id, { force: true });
  });

  it('an upgraded start reads its body and then the stdin that follows it', async () => {
    const id = (await create({ Cmd: ['cat'], AttachStdin: true, AttachStdout: true })).json().Id as string;
    const s = await rawUpgradeWithStdin(svc.socket, `/exec/${id}/start`, { Detach: false, Tty: false }, 'piped in\n');
    await until(() => s.ended());
    expect(frames(s.body())).toEqual([[1, 'piped in\n']]);
    expect((await svc.request('GET', `/exec/${id}/json`)).json().ExitCode).toBe(0);
  });
});


/** An upgraded request whose body and stdin go in one write, then a half-close (as the docker CLI's). */
function rawUpgradeWithStdin(socketPath: string, p: string, body: unknown, stdin: string): Promise<{ body(): Buffer; ended(): boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path: socketPath, allowHalfOpen: true });
    const data = JSON.stringify(body);
    let buf = Buffer.alloc(0);
    let ended = false;
    socket.on('error', reject);
    socket.on('data', (ch: Buffer) => { buf = Buffer.concat([buf, ch]); });
    socket.on('end', () => { ended = true; socket.end(); });
    socket.end(`POST ${p} HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${data.length}\r\n\r\n${data}${stdin}`);
    resolve({ body: () => buf.subarray(buf.indexOf('\r\n\r\n') + 4), ended: () => ended });
  });
}
