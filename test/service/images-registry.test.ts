/**
 * Pull, push and login through the service against a real registry (Debian's docker-registry on
 * 127.0.0.1) with htpasswd: the docker CLI's login goes to POST /auth, its X-Registry-Auth header reaches
 * the pull and the push. A client that leaves mid-pull stops the pull and leaves nothing stored.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultAuthFile } from '../../src/registry/index.js';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startService, type TestService } from '../helpers/service.js';

const SLOT = 4190;
const PASSWORD = 'svc-secret-1';
let t: TestEngine;
let svc: TestService;
let locked: TestRegistry;
let plain: TestRegistry;

beforeAll(async () => {
  [t, locked, plain] = await Promise.all([
    testEngine(SLOT + ((process.pid + 13) % 20)),
    startRegistry({ port: 15190, htpasswd: [{ user: 'ann', password: PASSWORD }] }),
    startRegistry({ port: 15191 }),
  ]);
  await t.engine.images.ensureDefault();
  svc = await startService(t);
}, 120_000);

afterAll(async () => {
  await svc?.close();
  await Promise.all([locked?.stop(), plain?.stop()]);
  await cleanupAll(t);
});

const ok = async (args: string[], input?: string) => {
  const res = await svc.docker(args, input === undefined ? {} : { input });
  expect(res.exitCode, `docker ${args.join(' ')}: ${res.stderr}`).toBe(0);
  return String(res.stdout).trim();
};

async function berthLogins(): Promise<string> {
  return readFile(defaultAuthFile(), 'utf8').catch(() => '');
}

describe('registries through the service', () => {
  it('logs in (keeping nothing itself), pushes and pulls with the client\'s login', async () => {
    const before = await berthLogins();
    const wrong = await svc.docker(['login', '-u', 'ann', '--password-stdin', locked.host], { input: 'wrong' });
    expect(wrong.exitCode).toBe(1);
    expect(String(wrong.stderr)).toMatch(/unauthorized|401|incorrect/i);
    expect(await ok(['login', '-u', 'ann', '--password-stdin', locked.host], PASSWORD)).toContain('Login Succeeded');
    expect(await berthLogins()).toBe(before);
    const refused = await svc.request('POST', '/auth', { username: 'ann', password: 'wrong', serveraddress: locked.host });
    expect(refused.status).toBe(401);
    const accepted = await svc.request('POST', '/auth', { username: 'ann', password: PASSWORD, serveraddress: locked.host });
    expect(accepted.json()).toEqual({ Status: 'Login Succeeded', IdentityToken: '' });
    const huge = await svc.request('POST', '/auth', { username: 'ann', password: 'x'.repeat(5 << 20), serveraddress: locked.host });
    expect(huge.status).toBe(413);

    const ref = `${locked.host}/svc/app:1`;
    await ok(['tag', 'busybox', ref]);
    const pushed = await ok(['push', ref]);
    expect(pushed).toContain(`The push refers to repository [${locked.host}/svc/app]`);
    expect(pushed).toMatch(/1: digest: sha256:[0-9a-f]{64} size: \d+/);

    await ok(['rmi', ref]);
    const pulled = await ok(['pull', ref]);
    expect(pulled).toContain('1: Pulling from svc/app');
    expect(pulled).toMatch(/Digest: sha256:[0-9a-f]{64}/);
    expect(pulled).toMatch(new RegExp(`Status: (Downloaded newer image|Image is up to date) for ${locked.host}/svc/app:1`));
    expect(await ok(['image', 'inspect', '-f', '{{.RepoTags}}', ref])).toContain(ref);

    // Without the client's login the registry refuses, and the pull says so with Docker's status.
    await ok(['logout', locked.host]);
    await ok(['rmi', ref]);
    // (Not through the docker CLI: on a 401 it asks for a login on its terminal, and waits there even
    // with stdin closed, as it does against dockerd.)
    const raw = await svc.request('POST', `/images/create?fromImage=${encodeURIComponent(`${locked.host}/svc/app`)}&tag=1`);
    expect(raw.status).toBe(401);
    expect(raw.json().message).toMatch(/unauthorized/);
  });

  it('refuses a malformed X-Registry-Auth, an import from a URL, and a missing image with their statuses', async () => {
    const bad = await svc.request('POST', `/images/create?fromImage=${plain.host}/x&tag=1`, undefined, { 'X-Registry-Auth': '!!not base64 json' });
    expect(bad.status).toBe(400);
    // An import from a URL would have this machine fetch what the client names: refused (fromSrc=- works).
    const imp = await svc.request('POST', '/images/create?fromSrc=http%3A%2F%2F127.0.0.1%3A9%2Fx.tar');
    expect(imp.status).toBe(400);
    expect(imp.json().message).toMatch(/fromSrc=http:.*importing from a URL is not supported/);
    const missing = await svc.request('POST', `/images/create?fromImage=${plain.host}/no/such&tag=1`);
    expect(missing.status).toBe(404);
    const auth = await svc.request('POST', '/auth', '{"username": 3}');
    expect(auth.status).toBe(400);
    const junk = await svc.request('POST', '/auth', '{not json');
    expect(junk.status).toBe(400);
  });

  it('stops a pull whose client left, storing nothing of it', async () => {
    // An image with a layer big enough to be caught mid-download, pushed to the plain registry and then
    // removed here; pulled back through a proxy that sends 1 MiB of each big blob and then stalls, so the
    // client surely leaves while the layer is downloading.
    const ctx = await mkdtemp(path.join(tmpdir(), 'berth-svc-big-'));
    const proxy = await stallingProxy(15192, plain);
    try {
      await writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN dd if=/dev/urandom of=/big bs=1M count=8\n');
      const built = await t.engine.images.build({ context: ctx, tags: [`${plain.host}/svc/big:1`], network: 'none' });
      await t.engine.images.push(`${plain.host}/svc/big:1`);
      await t.engine.images.remove(`${plain.host}/svc/big:1`);
      await t.engine.images.prune();
      const before = await storeFiles();

      const seen = await new Promise<string>((resolve, reject) => {
        const req = http.request({ socketPath: svc.socket, method: 'POST', path: `/images/create?fromImage=${encodeURIComponent(`127.0.0.1:15192/svc/big`)}&tag=1` }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => {
            text += c.toString();
            // The client leaves as soon as the big layer is downloading.
            if (/"Downloading","progressDetail":\{"current":[1-9]/.test(text)) {
              req.destroy();
              resolve(text);
            }
          });
          res.on('end', () => reject(new Error(`the pull ended before the client left: ${text}`)));
        });
        req.on('error', () => {});
        req.end();
      });
      expect(seen).toContain('Pulling from svc/big');
      // The pull stops: the proxy's stalled upstream is closed, and the store holds what it held before.
      await waitFor(async () => proxy.open() === 0, 'the proxy\'s upstream to close');
      // The pull's lease goes once it has wound down.
      await waitFor(async () => !(await storeFiles()).some((f) => f.includes('/leases/') && !before.includes(f)), 'the pull\'s lease to be released');
      expect(await t.engine.images.list({ all: true })).not.toContainEqual(expect.objectContaining({ id: built.id }));
      // What stays is only whole, verified blobs a pull resumes from (Berth keeps them, as containerd
      // does); the next prune collects them, and then the store holds exactly what it held.
      for (const f of (await storeFiles()).filter((x) => !before.includes(x))) {
        expect(f).toMatch(/^blobs\/sha256\/[0-9a-f]{64}$/);
        expect(createHash('sha256').update(await readFile(path.join(t.root, f))).digest('hex')).toBe(path.basename(f));
      }
      await t.engine.images.prune();
      expect(await storeFiles()).toEqual(before);
      expect((await svc.request('GET', '/_ping')).status).toBe(200);
    } finally {
      await proxy.close();
      await rm(ctx, { recursive: true, force: true });
    }
  }, 120_000);
});

/** Every file below the test engine's image store (names only): what a pull stored, or left half-stored. */
async function storeFiles(): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(path.relative(t.root, p));
    }
  };
  await walk(t.root);
  return out.filter((f) => !/events\.jsonl$|\.lock$/.test(f)).sort();
}

async function waitFor(cond: () => Promise<boolean>, what: string | (() => Promise<string>), ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`waited too long for ${typeof what === 'string' ? what : await what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A proxy to `reg` that forwards everything but stalls blobs over 2 MiB after their first MiB. */
async function stallingProxy(port: number, reg: TestRegistry) {
  const upstreams = new Set<http.ClientRequest>();
  const server = http.createServer((req, res) => {
    const up = http.request(`${reg.url}${req.url}`, { method: req.method, headers: { ...req.headers, host: reg.host } }, (ur) => {
      res.writeHead(ur.statusCode!, ur.headers);
      const size = Number(ur.headers['content-length'] ?? 0);
      if (!req.url!.includes('/blobs/') || size <= 2 << 20) return void ur.pipe(res);
      let sent = 0;
      ur.on('data', (c: Buffer) => {
        if (sent >= 1 << 20) return void ur.pause();
        sent += c.length;
        res.write(c);
      });
    });
    upstreams.add(up);
    up.on('close', () => upstreams.delete(up));
    res.on('close', () => up.destroy());
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    open: () => upstreams.size,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
