/**
 * Issue 16, the service's core: sockets, version negotiation, routing and errors, idle time-out, the CLI's
 * `system service` and `system dial-stdio`. Endpoint groups have their own files.
 */
import { existsSync, promises as fsp, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlreadyExistsError, InvalidArgumentError } from '../../src/errors.js';
import { serve } from '../../src/service/index.js';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { startService, type TestService } from '../helpers/service.js';

let t: TestEngine;
let svc: TestService;
let work: string;
const BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));

beforeAll(async () => {
  t = await testEngine(4250 + (process.pid % 20));
  svc = await startService(t);
  work = await fsp.mkdtemp(path.join(tmpdir(), 'berth-service-core-'));
}, 60_000);

afterAll(async () => {
  await svc?.close();
  await cleanupAll(t, work);
});

describe('the socket', () => {
  it('is a unix socket open to root and the group only (0660), never to others', () => {
    const st = statSync(svc.socket);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.uid).toBe(0);
  });

  it('refuses a socket where a live service listens, and replaces a stale one', async () => {
    const err = await serve(t.engine, { uris: [`unix://${svc.socket}`], idleSeconds: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AlreadyExistsError);
    // The live one still serves.
    expect((await svc.request('GET', '/_ping')).status).toBe(200);
    // A socket file nobody answers on, as a killed service leaves it (python exits without unlinking).
    const stale = path.join(work, 'stale.sock');
    await execa('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(stale)})`]);
    expect(statSync(stale).isSocket()).toBe(true);
    // A path that is not a socket is never replaced.
    const file = path.join(work, 'not-a-socket');
    await fsp.writeFile(file, 'keep me');
    expect(await serve(t.engine, { uris: [`unix://${file}`], idleSeconds: 0 }).catch((e: unknown) => e)).toBeInstanceOf(InvalidArgumentError);
    expect(await fsp.readFile(file, 'utf8')).toBe('keep me');
    const again = await serve(t.engine, { uris: [`unix://${stale}`], idleSeconds: 0 });
    expect(statSync(stale).isSocket()).toBe(true);
    await again.close();
    expect(existsSync(stale)).toBe(false);
  });

  it('refuses a --group that does not exist, before it makes a socket', async () => {
    const file = path.join(work, 'nogroup.sock');
    const err = await serve(t.engine, { uris: [`unix://${file}`], idleSeconds: 0, group: 'no-such-group-berth' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/no group "no-such-group-berth"/);
    expect(existsSync(file)).toBe(false);
  });

  it('serves TCP on loopback only: another address is refused without --tlsverify, since the API is root on this host', async () => {
    const err = await serve(t.engine, { uris: ['tcp://0.0.0.0:2375'], idleSeconds: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/beyond loopback the Engine API is served only with --tlsverify/);
    const tcp = await serve(t.engine, { uris: ['tcp://127.0.0.1:0'], idleSeconds: 0 });
    const res = await fetch(`http://${tcp.uris[0]!.slice('tcp://'.length)}/_ping`);
    expect(await res.text()).toBe('OK');
    await tcp.close();
  });

  it('serves several addresses at once, the same API on each, and removes every socket it made', async () => {
    const a = path.join(work, 'a.sock');
    const b = path.join(work, 'b.sock');
    const s = await serve(t.engine, { uris: [`unix://${a}`, `unix://${b}`, 'tcp://127.0.0.1:0'], idleSeconds: 0 });
    expect(s.uris.slice(0, 2)).toEqual([`unix://${a}`, `unix://${b}`]);
    for (const sock of [a, b]) {
      const res = await execa('docker', ['-H', `unix://${sock}`, 'version', '--format', '{{.Server.APIVersion}}'], { reject: false });
      expect(String(res.stdout).trim()).toBe('1.41');
    }
    expect(await (await fetch(`http://${s.uris[2]!.slice('tcp://'.length)}/_ping`)).text()).toBe('OK');
    await s.close();
    expect([existsSync(a), existsSync(b)]).toEqual([false, false]);
  });

  it('exits after the idle time without a request, and removes its socket', async () => {
    const file = path.join(work, 'idle.sock');
    const s = await serve(t.engine, { uris: [`unix://${file}`], idleSeconds: 1 });
    const started = Date.now();
    await s.closed;
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(existsSync(file)).toBe(false);
  });
});

describe('negotiation and errors', () => {
  it('/_ping answers GET and HEAD with the headers clients negotiate on', async () => {
    const get = await svc.request('GET', '/_ping');
    expect(get.body.toString()).toBe('OK');
    expect(get.headers['api-version']).toBe('1.41');
    expect(get.headers.ostype).toBe('linux');
    const head = await svc.request('HEAD', '/v1.41/_ping');
    expect([head.status, head.headers['api-version'], head.body.length]).toEqual([200, '1.41', 0]);
  });

  it('the docker 28 client negotiates down to 1.41 and reads the version', async () => {
    const res = await svc.docker(['version', '--format', '{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Client.APIVersion}}']);
    expect(res.exitCode, String(res.stderr)).toBe(0);
    expect(String(res.stdout).trim()).toBe('1.41 1.24 1.41');
  });

  it('answers a version too new or too old, an unknown endpoint, a wrong method and swarm paths with Docker\'s status and a message', async () => {
    const cases: [string, string, number, RegExp][] = [
      ['GET', '/v1.50/version', 400, /client version 1.50 is too new. Maximum supported API version is 1.41/],
      ['GET', '/v1.12/version', 400, /client version 1.12 is too old/],
      ['GET', '/v1.41/frobnicate', 404, /page not found/],
      ['DELETE', '/_ping', 405, /not allowed/],
      ['GET', '/swarm', 503, /not a swarm manager/],
      ['GET', '/v1.41/%zz', 400, /not valid percent-encoding/],
    ];
    for (const [method, p, status, message] of cases) {
      const res = await svc.request(method, p);
      expect([p, res.status]).toEqual([p, status]);
      expect(res.headers['content-type']).toBe('application/json');
      expect(res.json().message).toMatch(message);
    }
    // Garbage that is not HTTP gets a 400 and the service keeps serving.
    const raw = net.connect(svc.socket);
    raw.end('NOT HTTP AT ALL\r\n\r\n');
    const answer = await new Promise<string>((resolve) => { let s = ''; raw.on('data', (d) => { s += d; }); raw.on('close', () => resolve(s)); });
    expect(answer).toMatch(/^HTTP\/1.1 400/);
    expect((await svc.request('GET', '/_ping')).status).toBe(200);
  });
});

describe('the CLI', () => {
  it('berth system service serves RUNROOT/berth.sock until idle; dial-stdio serves one connection over stdio', async () => {
    const sock = path.join(t.runroot, 'berth.sock');
    const child = execa(BIN, ['--root', t.root, '--runroot', t.runroot, 'system', 'service', '--time', '2'], { reject: false, timeout: 30_000 });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 100));
    const docker = await execa('docker', ['version', '--format', '{{.Server.APIVersion}}'], { reject: false, env: { DOCKER_HOST: `unix://${sock}` } });
    expect(String(docker.stdout).trim()).toBe('1.41');
    const res = await child;
    expect(res.exitCode, stderr).toBe(0);
    expect(stderr).toMatch(/Serving the Docker Engine API on unix:\/\/.*berth\.sock until 2s without a request/);
    expect(existsSync(sock)).toBe(false);

    const dial = await execa(BIN, ['--root', t.root, '--runroot', t.runroot, 'system', 'dial-stdio'], {
      input: 'GET /_ping HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n', reject: false, timeout: 30_000,
    });
    expect(dial.exitCode, String(dial.stderr)).toBe(0);
    expect(String(dial.stdout)).toMatch(/^HTTP\/1.1 200 OK[\s\S]*Api-Version: 1.41[\s\S]*\r\n\r\nOK$/);
  }, 60_000);

  it('refuses a --time that is not whole seconds, and a URI of another scheme', async () => {
    const bad = await t.cli('system', 'service', '--time', '1.5');
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/--time/);
    const scheme = await t.cli('system', 'service', 'http://127.0.0.1:1');
    expect(scheme.exitCode).toBe(1);
    expect(scheme.stderr).toMatch(/not unix:\/\/\/PATH or tcp:\/\/127.0.0.1:PORT/);
  });
});
