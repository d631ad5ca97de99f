/** `berth login` / `logout` (the real CLI) and engine.registries against real docker-registry instances. */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryError } from '../../src/errors.js';
import { testEngine, type TestEngine } from '../helpers/engine.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));
const PASSWORD = 'Correct-Horse-8812';

let t: TestEngine;
let home: string;
let basic: TestRegistry;
let tls: TestRegistry;
beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'berth-login-'));
  [t, basic, tls] = await Promise.all([
    testEngine(3300),
    startRegistry({ port: 15160, htpasswd: [{ user: 'bob', password: PASSWORD }] }),
    startRegistry({ port: 15161, tls: true, htpasswd: [{ user: 'bob', password: PASSWORD }] }),
  ]);
});
afterAll(async () => {
  await Promise.all([basic?.stop(), tls?.stop()]);
  await t?.cleanup();
  await rm(home, { recursive: true, force: true });
});

/** The CLI with a HOME and DOCKER_CONFIG of the test's own, so no real login is read or written. */
function berth(args: string[], input?: string) {
  return execa(BIN, ['--root', t.root, '--runroot', t.runroot, ...args], {
    reject: false, timeout: 30_000, input: input ?? '',
    env: { HOME: home, DOCKER_CONFIG: path.join(home, 'docker'), BERTH_AUTH_FILE: '' },
  });
}

describe('berth login / logout', () => {
  it('logs in with --password-stdin, keeps the login with mode 0600, and logs out', async () => {
    const authfile = path.join(home, 'a', 'auth.json');
    const res = await berth(['login', '-u', 'bob', '--password-stdin', '--authfile', authfile, basic.host], `${PASSWORD}\n`);
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toBe('Login Succeeded');
    expect(res.stderr).toContain(`stored unencrypted in ${authfile}`);
    expect((await stat(authfile)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(authfile, 'utf8'))).toEqual({ auths: { [basic.host]: { auth: Buffer.from(`bob:${PASSWORD}`).toString('base64') } } });

    const out = await berth(['logout', '--authfile', authfile, basic.host]);
    expect([out.exitCode, out.stdout]).toEqual([0, `Removing login credentials for ${basic.host}`]);
    const again = await berth(['logout', '--authfile', authfile, basic.host]);
    expect([again.exitCode, again.stdout]).toEqual([0, `Not logged in to ${basic.host}`]);
  });

  it('-p works with Docker\'s warning; the default auth file is under HOME', async () => {
    const res = await berth(['login', '-u', 'bob', '-p', PASSWORD, basic.host]);
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stderr).toContain('WARNING! Using --password via the CLI is insecure. Use --password-stdin.');
    const file = path.join(home, '.config', 'berth', 'auth.json');
    expect(Object.keys(JSON.parse(await readFile(file, 'utf8')).auths)).toEqual([basic.host]);
    expect((await berth(['logout', basic.host])).stdout).toBe(`Removing login credentials for ${basic.host}`);
  });

  it('a wrong password exits 1, stores nothing, and never prints the password', async () => {
    const authfile = path.join(home, 'wrong.json');
    const res = await berth(['login', '-u', 'bob', '--password-stdin', '--authfile', authfile, basic.host], 'Wrong-Secret-5150\n');
    expect(res.exitCode).toBe(1);
    expect(res.stderr).toMatch(/incorrect username or password/);
    expect(res.stderr).toContain(basic.host);
    expect(res.stdout + res.stderr).not.toContain('Wrong-Secret-5150');
    await expect(stat(authfile)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a registry with an unknown CA, and accepts it with --tls-verify=false', async () => {
    const authfile = path.join(home, 'tls.json');
    const refused = await berth(['login', '-u', 'bob', '--password-stdin', '--authfile', authfile, tls.host], PASSWORD);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('--tls-verify=false');
    expect(refused.stderr).toContain(`certs.d/${tls.host}/ca.crt`);
    const ok = await berth(['login', '-u', 'bob', '--password-stdin', '--tls-verify=false', '--authfile', authfile, tls.host], PASSWORD);
    expect(ok.exitCode, ok.stderr).toBe(0);
  });

  it('refuses bad flag combinations as Docker does', async () => {
    expect((await berth(['login', '--password-stdin', basic.host], 'x')).stderr).toContain('Must provide --username with --password-stdin');
    expect((await berth(['login', '-u', 'bob', '-p', 'x', '--password-stdin', basic.host], 'x')).stderr).toContain('--password and --password-stdin are mutually exclusive');
    const noTty = await berth(['login', basic.host]);
    expect([noTty.exitCode, noTty.stderr]).toEqual([1, expect.stringContaining('Cannot perform an interactive login from a non TTY device')]);
  });
});

describe('engine.registries', () => {
  it('login checks the password before storing it; logout forgets it', async () => {
    const authFile = path.join(home, 'api.json');
    const err = await t.engine.registries.login(basic.host, { username: 'bob', password: 'nope-nope' }, { authFile }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect(err).toMatchObject({ reason: 'unauthorized', message: `unauthorized: incorrect username or password (registry ${basic.host})`, hint: 'check the username and password' });
    const res = await t.engine.registries.login(basic.host, { username: 'bob', password: PASSWORD }, { authFile });
    expect(res).toEqual({ registry: basic.host, storedIn: authFile, inFile: true });
    expect(await t.engine.registries.logout(basic.host, { authFile })).toEqual({ registry: basic.host, key: basic.host, removed: true });
  });

  it('a registry that is down is unreachable, quickly', async () => {
    const err = await t.engine.registries.login('127.0.0.1:15162', { username: 'a', password: 'b' }, { authFile: path.join(home, 'x.json') }).catch((e: unknown) => e);
    expect((err as RegistryError).reason).toBe('unreachable');
  });
});
