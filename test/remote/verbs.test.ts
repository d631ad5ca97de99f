/**
 * Issue 19, the last verbs and flags through -H unix://: login/logout (the login kept in this machine's
 * store, checked by the remote, sent with each pull and push), image import, system prune, and the
 * client-side flags of run/create. The service serves the test engine's own store in this process, so the
 * registry on 127.0.0.1 is reachable from the remote's side, and each remote command can be checked
 * against the same command run locally on that store.
 */
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, testEngine, type TestEngine } from '../helpers/engine.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startService, type TestService } from '../helpers/service.js';
import { remoteCli } from './helpers.js';

const PASSWORD = 'Remote-Login-4471';

let t: TestEngine;
let svc: TestService;
let home: string;
let cli: ReturnType<typeof remoteCli>;
let reg: TestRegistry;

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'berth-rverbs-'));
  [t, reg] = await Promise.all([testEngine(3800 + (process.pid % 50)), startRegistry({ port: 15240, htpasswd: [{ user: 'rita', password: PASSWORD }] })]);
  await t.engine.images.ensureDefault();
  svc = await startService(t);
  // HOME and DOCKER_CONFIG of the test's own: no real login is read or written on this side.
  cli = remoteCli({ XDG_CONFIG_HOME: home, HOME: home, DOCKER_CONFIG: path.join(home, 'docker') });
}, 60_000);

afterAll(async () => {
  await reg?.stop();
  await svc?.close();
  await cleanupAll(t, home);
}, 60_000);

const remote = (...args: string[]) => cli('-H', svc.host, ...args);

describe('login and logout through -H unix://', () => {
  it('the remote checks the login, this machine keeps it, and pull and push send it', async () => {
    const authfile = path.join(home, 'berth', 'auth.json');
    const ref = `${reg.host}/private/busybox:1`;
    // Without a login the registry refuses the push, as locally (125).
    expect((await remote('tag', 'busybox', ref)).exitCode).toBe(0);
    const anon = await remote('push', ref);
    expect(anon.exitCode).toBe(125);

    const bad = await remote('login', '-u', 'rita', '-p', 'Wrong-Secret-909', reg.host);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain('incorrect username or password');
    expect(bad.stderr).toContain(reg.host);
    expect(bad.stdout + bad.stderr).not.toContain('Wrong-Secret-909');
    await expect(stat(authfile)).rejects.toMatchObject({ code: 'ENOENT' });

    const ok = await remote('login', '-u', 'rita', '-p', PASSWORD, reg.host);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toBe('Login Succeeded');
    expect(ok.stderr).toContain(`stored unencrypted in ${authfile}`);
    expect(JSON.parse(await readFile(authfile, 'utf8'))).toEqual({ auths: { [reg.host]: { auth: Buffer.from(`rita:${PASSWORD}`).toString('base64') } } });
    expect((await stat(authfile)).mode & 0o777).toBe(0o600);

    const pushed = await remote('push', ref);
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    expect(pushed.stdout).toMatch(/^1: digest: sha256:[0-9a-f]{64} size: \d+$/m);
    expect((await remote('rmi', ref)).exitCode).toBe(0);
    const pulled = await remote('pull', ref);
    expect(pulled.exitCode, pulled.stderr).toBe(0);
    expect(pulled.stdout).toContain(`Status: Downloaded newer image for ${ref}`);
    expect((await remote('rmi', ref)).exitCode).toBe(0);

    const out = await remote('logout', reg.host);
    expect([out.exitCode, out.stdout]).toEqual([0, `Removing login credentials for ${reg.host}`]);
    const again = await remote('logout', reg.host);
    expect([again.exitCode, again.stdout]).toEqual([0, `Not logged in to ${reg.host}`]);
    // The remote kept nothing: without this machine's login its pull is refused.
    const refused = await remote('pull', ref);
    expect(refused.exitCode).toBe(125);
    expect(await t.cli('images', '-q', ref).then((r) => r.stdout.trim())).toBe('');
  }, 120_000);

  it('--tls-verify=false and an empty password are refused before anything is sent', async () => {
    const insecure = await remote('login', '-u', 'rita', '-p', PASSWORD, '--tls-verify=false', reg.host);
    expect(insecure.exitCode).toBe(1);
    expect(insecure.stderr).toContain('insecure-registries');
    const empty = await remote('login', '-u', 'rita', '-p', '', reg.host);
    expect(empty.exitCode).toBe(1);
    expect(empty.stderr).toContain('the password is empty');
    // The first test logged out: the file holds no login, and these left none.
    expect(JSON.parse(await readFile(path.join(home, 'berth', 'auth.json'), 'utf8')).auths).toEqual({});
  });
});
