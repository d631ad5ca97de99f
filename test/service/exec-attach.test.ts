/**
 * attach and resize through the Engine API: the docker CLI's attach (output, stdin, exit code, detach
 * keys in a pty), raw upgraded streams for the resize endpoints, and a client that goes away mid-stream.
 * Containers are made with the Engine directly: create and start are another group's endpoints.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { startService, type TestService } from '../helpers/service.js';
import { frames, rawUpgrade, until } from './exec-raw.js';

const SLOT = 4160;
let t: TestEngine;
let svc: TestService;

const docker = (args: readonly string[], opts: Parameters<TestService['docker']>[1] = {}) => svc.docker(args, opts);
const NONE = { networks: ['none'] };

beforeAll(async () => {
  t = await testEngine(SLOT + 1 + (process.pid % 20));
  await t.engine.images.ensureDefault();
  svc = await startService(t);
}, 120_000);

afterAll(async () => {
  await svc?.close();
  await cleanupAll(t);
});

/** The service's own children of one name (socat pumps stdin of an attach). */
function children(name: string): number {
  try {
    return execFileSync('ps', ['--ppid', String(process.pid), '-o', 'comm='], { encoding: 'utf8' }).split('\n').filter((l) => l.trim() === name).length;
  } catch {
    return 0;
  }
}

/** This process's open files whose path names container `id` (the attach's log reader). */
function openFiles(id: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).includes(id)) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

describe('docker attach', () => {
  it('shows new output, feeds stdin, and exits with the container', async () => {
    const { id } = await t.engine.containers.run({ image: 'busybox', command: ['sh', '-c', 'echo before; read x; echo got $x; echo err >&2; exit 4'], openStdin: true, network: NONE }, { detach: true });
    await until(async () => (await logText(id)).includes('before'));
    const r = await docker(['attach', id], { input: 'hello\n' });
    expect(r.stdout).toBe('got hello');
    expect(r.stderr).toBe('err');
    expect(r.exitCode).toBe(4);
  });

  it('-it in a pty: the shell answers, and the detach keys leave it running', async () => {
    const { id } = await t.engine.containers.run({ image: 'busybox', command: ['sh'], tty: true, openStdin: true, network: NONE }, { detach: true });
    const p = execa('script', ['-q', '-e', '-c', `docker attach ${id}`, '/dev/null'], {
      reject: false, timeout: 60_000, env: { DOCKER_HOST: svc.host, DOCKER_CONFIG: '/nonexistent' },
    });
    let out = '';
    p.stdout!.on('data', (c: Buffer) => { out += c.toString('utf8'); });
    p.stdin!.write('echo $((6*7))\n');
    // The keys go once the CLI's terminal is raw (the answer came through it): cooked, ctrl-q is flow control.
    await until(() => out.includes('42'));
    p.stdin!.write('\x10\x11');
    const r = await p;
    expect(out).toContain('42');
    expect(r.stdout).toContain('read escape sequence');
    expect((await t.engine.containers.inspect(id)).State.Running).toBe(true);
    await until(() => children('socat') === 0);
    await t.engine.containers.remove(id, { force: true });
  });

  it('attached before the start (docker run), nothing is lost and the stream ends with the container', async () => {
    const { id } = await t.engine.containers.create({ image: 'busybox', command: ['sh', '-c', 'echo hi; echo err >&2'], network: NONE });
    const s = await rawUpgrade(svc.socket, `/containers/${id}/attach?stream=1&stdout=1&stderr=1`);
    await t.engine.containers.start(id);
    await until(() => s.ended());
    expect(frames(s.bytes()).sort()).toEqual([[1, 'hi\n'], [2, 'err\n']]);
    s.socket.end();
    await t.engine.containers.remove(id, { force: true });
  });

  it('stdin sent and half-closed before the start reaches the container, and its end ends it', async () => {
    const { id } = await t.engine.containers.create({ image: 'busybox', command: ['cat'], openStdin: true, network: NONE });
    const s = await rawUpgrade(svc.socket, `/containers/${id}/attach?stream=1&stdin=1&stdout=1&stderr=1`);
    s.socket.end('data\n');
    await t.engine.containers.start(id);
    await until(() => s.ended());
    expect(frames(s.bytes())).toEqual([[1, 'data\n']]);
    expect(await t.engine.containers.wait(id)).toBe(0);
    await t.engine.containers.remove(id, { force: true });
  });

  it('logs=1 replays what was logged before; stream=0 ends after it', async () => {
    const { id } = await t.engine.containers.run({ image: 'busybox', command: ['sh', '-c', 'echo one; echo two >&2; sleep 1000'], network: NONE }, { detach: true });
    await until(async () => (await logText(id)).includes('two'));
    const res = await svc.request('POST', `/containers/${id}/attach?logs=1&stdout=1&stderr=1`);
    expect(res.status).toBe(200);
    expect(frames(res.body).sort()).toEqual([[1, 'one\n'], [2, 'two\n']]);
    const outOnly = await svc.request('POST', `/containers/${id}/attach?logs=1&stdout=1`);
    expect(frames(outOnly.body)).toEqual([[1, 'one\n']]);
    await t.engine.containers.remove(id, { force: true });
  });

  it('a client that goes away ends the attach: no pump left, the service serves on', async () => {
    const { id } = await t.engine.containers.run({ image: 'busybox', command: ['sh', '-c', 'while :; do echo tick; sleep 0.2; done'], openStdin: true, network: NONE }, { detach: true });
    const s = await rawUpgrade(svc.socket, `/containers/${id}/attach?stream=1&stdin=1&stdout=1&stderr=1`);
    await until(() => s.text().includes('tick'));
    expect(children('socat')).toBe(1);
    expect(openFiles(id)).toBeGreaterThan(0);
    s.socket.destroy();
    // The pump ends with stdin; the log reader only because the attach was told the client left.
    await until(() => children('socat') === 0 && openFiles(id) === 0);
    expect((await svc.request('GET', '/_ping')).status).toBe(200);
    await t.engine.containers.remove(id, { force: true });
  });

  it('refuses an unknown container (404) and a bad boolean (400)', async () => {
    const missing = await svc.request('POST', '/containers/nosuch/attach?stream=1&stdout=1');
    expect(missing.status).toBe(404);
    expect(missing.json().message).toBe('No such container: nosuch');
    expect((await svc.request('POST', '/containers/nosuch/attach?stream=maybe')).status).toBe(400);
  });
});

describe('closing the service', () => {
  it('ends the hijacked streams still open', async () => {
    const { id } = await t.engine.containers.run({ image: 'busybox', command: ['sleep', '1000'], openStdin: true, network: NONE }, { detach: true });
    const own = await startService(t);
    const s = await rawUpgrade(own.socket, `/containers/${id}/attach?stream=1&stdin=1&stdout=1`);
    // Half-open as the docker CLI's hijack is: the service's end shows as 'end'.
    const ended = new Promise((resolve) => s.socket.on('end', resolve));
    await own.close();
    await ended;
    await until(() => children('socat') === 0);
    await t.engine.containers.remove(id, { force: true });
  });
});

describe('resize', () => {
  const FOLLOW = ['sh', '-c', 'trap "stty size" WINCH; echo ready; while :; do sleep 0.1; done'];

  it('a tty container follows the size given while attached', async () => {
    const { id } = await t.engine.containers.run({ image: 'busybox', command: FOLLOW, tty: true, network: NONE }, { detach: true });
    const s = await rawUpgrade(svc.socket, `/containers/${id}/attach?stream=1&stdout=1&logs=1`);
    await until(() => s.text().includes('ready'));
    expect((await svc.request('POST', `/containers/${id}/resize?h=40&w=120`)).status).toBe(200);
    await until(() => s.text().includes('40 120'));
    s.socket.destroy();
    await t.engine.containers.remove(id, { force: true });
  });

  it('an exec terminal starts at the size given and follows resizes', async () => {
    const { id } = await t.engine.containers.run({ image: 'busybox', command: ['sleep', '1000'], network: NONE }, { detach: true });
    const created = await svc.request('POST', `/containers/${id}/exec`, { Cmd: ['sh', '-c', 'stty size; trap "stty size" WINCH; echo ready; while :; do sleep 0.1; done'], Tty: true, AttachStdout: true, ConsoleSize: [33, 101] });
    expect(created.status).toBe(201);
    const execId = created.json().Id as string;
    const s = await rawUpgrade(svc.socket, `/exec/${execId}/start`, { Detach: false, Tty: true });
    await until(() => s.text().includes('ready'));
    expect(s.text()).toMatch(/^33 101\r\n/);
    expect((await svc.request('POST', `/exec/${execId}/resize?h=40&w=120`)).status).toBe(200);
    await until(() => s.text().includes('40 120'));
    const running = (await svc.request('GET', `/exec/${execId}/json`)).json();
    expect(running).toMatchObject({ ID: execId, Running: true, ExitCode: null, ContainerID: id, ProcessConfig: { tty: true, entrypoint: 'sh' } });
    await t.engine.containers.remove(id, { force: true });
    await until(async () => (await svc.request('GET', `/exec/${execId}/json`)).json().Running === false);
    s.socket.destroy();
  });

  it('answers as Docker: bad sizes 400, unknown 404, a stopped container 409, no tty 200', async () => {
    const { id } = await t.engine.containers.run({ image: 'busybox', command: ['sleep', '1000'], network: NONE }, { detach: true });
    for (const q of ['h=x&w=1', 'h=1', 'h=-1&w=2', 'h=70000&w=2', 'h=1.5&w=2']) {
      const r = await svc.request('POST', `/containers/${id}/resize?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.json().message).toMatch(/invalid value for [hw]/);
    }
    expect((await svc.request('POST', `/containers/${id}/resize?h=10&w=20`)).status).toBe(200);
    expect((await svc.request('POST', '/containers/nosuch/resize?h=10&w=20')).status).toBe(404);
    const gone = await svc.request('POST', '/exec/0123/resize?h=10&w=20');
    expect(gone.status).toBe(404);
    expect(gone.json().message).toBe('No such exec instance: 0123');
    await t.engine.containers.stop(id, { timeout: 0 });
    const stopped = await svc.request('POST', `/containers/${id}/resize?h=10&w=20`);
    expect(stopped.status).toBe(409);
    expect(stopped.json().message).toContain('is not running');
    await t.engine.containers.remove(id, { force: true });
  });
});

// The docker CLI's attached run is create, attach (upgrade), wait?condition=next-exit, start: the attach
// comes before the start, so nothing is lost. Create and start are the containers group's endpoints.
describe('docker run through the service', () => {
  const ids = async () => (await t.engine.containers.list({ all: true })).map((c) => c.id).sort();

  it('run --rm busybox echo hi', async () => {
    const before = await ids();
    const r = await svc.docker(['run', '--rm', '--network', 'none', 'busybox', 'echo', 'hi']);
    expect(r.stdout).toBe('hi');
    expect(r.exitCode).toBe(0);
    expect(await ids()).toEqual(before);
  });

  it('run -i busybox cat, stdin to its end', async () => {
    const r = await svc.docker(['run', '--rm', '-i', '--network', 'none', 'busybox', 'cat'], { input: 'data\n' });
    expect(r.stdout).toBe('data');
    expect(r.exitCode, String(r.stderr)).toBe(0);
  });

  it('run a command that is not there exits 127', async () => {
    const before = await ids();
    const r = await svc.docker(['run', '--rm', '--network', 'none', 'busybox', 'nosuchcmd']);
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toContain('executable file not found');
    // The --rm container whose start failed is gone, as with Docker's daemon (the CLI waits for that).
    expect(await ids()).toEqual(before);
  });
});

async function logText(id: string): Promise<string> {
  let text = '';
  for await (const e of t.engine.containers.logs(id)) text += e.line + (e.partial ? '' : '\n');
  return text;
}
