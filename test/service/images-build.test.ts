/**
 * POST /build (classic builder) and POST /commit through the docker CLI, compared with `berth build`;
 * hostile contexts and options Berth's build does not take.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import http from 'node:http';
import path from 'node:path';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { startService, type TestService } from '../helpers/service.js';

const SLOT = 4190;
let t: TestEngine;
let svc: TestService;
let dir: string;

beforeAll(async () => {
  t = await testEngine(SLOT + ((process.pid + 7) % 20));
  await t.engine.images.ensureDefault();
  svc = await startService(t);
  dir = await mkdtemp(path.join(tmpdir(), 'berth-svc-build-'));
}, 120_000);

afterAll(async () => {
  await svc?.close();
  await cleanupAll(t, dir);
});

async function tarOf(entries: { name: string; body?: string; type?: 'file' | 'directory' }[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) pack.entry({ name: e.name, type: e.type ?? 'file', mode: 0o644 }, e.body ?? '');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const lines = (body: Buffer) => body.toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

describe('docker build through the service', () => {
  it('builds as berth build does, with the classic builder\'s lines', async () => {
    const ctx = path.join(dir, 'ctx');
    await mkdir(ctx, { recursive: true });
    await writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt\nLABEL svc=yes\n');
    await writeFile(path.join(ctx, 'hello.txt'), 'hello from the context\n');
    const res = await svc.docker(['build', '--network', 'none', '-t', 'svc/built:1', '--build-arg', 'A=b', ctx]);
    expect(res.exitCode, String(res.stderr)).toBe(0);
    const out = String(res.stdout);
    expect(out).toContain('Step 1/4 : FROM busybox');
    expect(out).toContain('hello from the context');
    expect(out).toMatch(/Successfully built [0-9a-f]{12}/);
    expect(out).toContain('Successfully tagged svc/built:1');
    const berth = await t.ok('build', '--network', 'none', '-t', 'svc/built:2', ctx);
    const steps = (text: string) => text.split('\n').filter((l) => l.startsWith('Step '));
    expect(steps(out)).toEqual(steps(berth));
    const built = await svc.docker(['image', 'inspect', '-f', '{{.Config.Labels.svc}}', 'svc/built:1']);
    expect(String(built.stdout).trim()).toBe('yes');

    const quiet = await svc.docker(['build', '-q', '--network', 'none', ctx]);
    expect(quiet.exitCode, String(quiet.stderr)).toBe(0);
    expect(String(quiet.stdout).trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('ends with aux ID and reports a failing RUN as an error line', async () => {
    const ok = await svc.request('POST', '/build?t=svc/raw:1&networkmode=none', await tarOf([{ name: 'Dockerfile', body: 'FROM busybox\nENV X=1\n' }]), { 'Content-Type': 'application/x-tar' });
    expect(ok.status).toBe(200);
    const got = lines(ok.body);
    const aux = got.find((l) => l.aux);
    expect(aux.aux.ID).toMatch(/^sha256:/);
    expect(got.at(-1).stream).toMatch(/Successfully tagged/);

    const bad = await svc.docker(['build', '--network', 'none', '-'], { input: 'FROM busybox\nRUN exit 3\n' });
    expect(bad.exitCode).toBe(1);
    expect(String(bad.stderr)).toMatch(/exit|returned a non-zero code/);
  });

  it('refuses a context climbing out with ../ and options Berth does not take', async () => {
    const evil = await tarOf([{ name: 'Dockerfile', body: 'FROM busybox\nCOPY x /x\n' }, { name: '../escape', body: 'no' }]);
    const res = await svc.request('POST', '/build?networkmode=none', evil, { 'Content-Type': 'application/x-tar' });
    expect(res.status).toBe(400);
    expect(res.json().message).toMatch(/\.\./);

    const df = await svc.request('POST', '/build?dockerfile=../Dockerfile&networkmode=none', await tarOf([{ name: 'Dockerfile', body: 'FROM busybox\n' }]));
    expect(df.status).toBeGreaterThanOrEqual(400);

    for (const q of ['memory=1000000', 'cpuquota=5000', 'remote=https://example.invalid/x.git', 'squash=1', 'rm=0', 'version=2', 'networkmode=container:x', 'buildargs=[1]']) {
      const r = await svc.request('POST', `/build?${q}`, await tarOf([{ name: 'Dockerfile', body: 'FROM busybox\n' }]));
      expect(r.status, `${q}: ${r.body}`).toBe(400);
      expect(r.json().message).toMatch(new RegExp(q.split('=')[0]!));
    }
    const badTag = await svc.request('POST', '/build?networkmode=none&t=a/../b', await tarOf([{ name: 'Dockerfile', body: 'FROM busybox\n' }]));
    expect(badTag.status, String(badTag.body)).toBe(400);
    const memory = await svc.docker(['build', '--memory', '64m', '-'], { input: 'FROM busybox\n' });
    expect(memory.exitCode).toBe(1);
    expect(String(memory.stderr)).toMatch(/memory=.* is not supported yet/);
    expect((await svc.request('GET', '/_ping')).status).toBe(200);
  });

  it('takes a context larger than the JSON body limit, since it is a stream', async () => {
    const big = 'x'.repeat(6 << 20);
    const res = await svc.request('POST', '/build?networkmode=none&t=svc/bigctx:1', await tarOf([{ name: 'Dockerfile', body: 'FROM busybox\nCOPY big /big\n' }, { name: 'big', body: big }]));
    expect(res.status).toBe(200);
    expect(lines(res.body).at(-1).stream).toContain('Successfully tagged svc/bigctx:1');
    // A JSON body of that size is refused.
    const commit = await svc.request('POST', '/commit?container=x', JSON.stringify({ Comment: big }));
    expect(commit.status).toBe(413);
  }, 120_000);

  it('stops a build whose client left: its RUN container is killed and removed', async () => {
    const body = await tarOf([{ name: 'Dockerfile', body: 'FROM busybox\nRUN echo started && sleep 300\n' }]);
    await new Promise<void>((resolve, reject) => {
      const req = http.request({ socketPath: svc.socket, method: 'POST', path: '/build?networkmode=none&t=svc/left:1', headers: { 'Content-Type': 'application/x-tar' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => {
          text += c.toString();
          if (text.includes('started')) {
            req.destroy();
            resolve();
          }
        });
        res.on('end', () => reject(new Error(`the build ended before the client left: ${text}`)));
      });
      req.on('error', () => {});
      req.end(body);
    });
    const deadline = Date.now() + 30_000;
    while ((await t.engine.containers.list({ all: true })).length) {
      if (Date.now() > deadline) throw new Error('the RUN container outlived the client');
      await new Promise((r) => setTimeout(r, 100));
    }
    await expect(t.engine.images.inspect('svc/left:1')).rejects.toThrow(/no such image/i);
    expect((await svc.request('GET', '/_ping')).status).toBe(200);
  }, 60_000);

  it('commits a container with changes', async () => {
    const ctr = await t.ok('create', '--network', 'none', '--name', 'svc-commit', 'busybox', 'true');
    const res = await svc.docker(['commit', '-c', 'ENV COMMITTED=1', '-m', 'by the service', 'svc-commit', 'svc/committed:1']);
    expect(res.exitCode, String(res.stderr)).toBe(0);
    expect(String(res.stdout).trim()).toMatch(/^sha256:/);
    expect(String((await svc.docker(['image', 'inspect', '-f', '{{.Config.Env}} {{.Comment}}', 'svc/committed:1'])).stdout)).toContain('COMMITTED=1');
    const body = await svc.request('POST', `/commit?container=${ctr}`, { Cmd: ['sh'] });
    expect(body.status).toBe(400);
    expect(body.json().message).toContain('Cmd');
    const missing = await svc.request('POST', '/commit?container=nosuch');
    expect(missing.status).toBe(404);
    await t.ok('rm', 'svc-commit');
  });
});
