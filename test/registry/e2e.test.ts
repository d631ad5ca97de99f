/**
 * A user's path through registries with the real CLI: a login then push and pull through it (Basic and
 * Bearer), and short names looked for in each configured unqualified-search registry in turn.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEngine, type TestEngine } from '../helpers/engine.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const BIN = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));
const PASSWORD = 'Tr0ub4dor-e2e-5531';
/** a port nothing listens on: the first search registry, which must hand over to the next */
const DOWN = '127.0.0.1:15179';

let src: TestEngine;
let dst: TestEngine;
let home: string;
let basic: TestRegistry;
let token: TestRegistry;
let plain: TestRegistry;
let config: string;

beforeAll(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'berth-reg-e2e-'));
  [src, dst, basic, token, plain] = await Promise.all([
    testEngine(3310), testEngine(3311),
    startRegistry({ port: 15170, htpasswd: [{ user: 'ann', password: PASSWORD }] }),
    startRegistry({ port: 15171, token: { port: 15172, users: [{ user: 'ann', password: PASSWORD, actions: ['pull', 'push'] }, { user: 'ro', password: PASSWORD, actions: ['pull'] }] } }),
    startRegistry({ port: 15173 }),
  ]);
  config = path.join(home, 'berth.json');
  await writeFile(config, JSON.stringify({ 'unqualified-search-registries': [DOWN, plain.host] }));
  await src.ok('run', '--rm', '--network', 'none', 'busybox', 'true');
});
afterAll(async () => {
  await Promise.all([basic?.stop(), token?.stop(), plain?.stop()]);
  await Promise.all([src?.cleanup(), dst?.cleanup()]);
  await rm(home, { recursive: true, force: true });
});

/** The CLI on `t`'s root with a HOME of the test's own, so no real login is read or written. */
function berth(t: TestEngine, args: string[], opts: { input?: string; home?: string } = {}) {
  const h = opts.home ?? home;
  return execa(BIN, ['--root', t.root, '--runroot', t.runroot, ...args], {
    reject: false, timeout: 60_000, input: opts.input ?? '',
    env: { HOME: h, DOCKER_CONFIG: path.join(h, 'docker'), BERTH_AUTH_FILE: '', REGISTRY_AUTH_FILE: '' },
  });
}

async function ok(t: TestEngine, args: string[], opts?: { input?: string; home?: string }): Promise<string> {
  const res = await berth(t, args, opts);
  expect(res.exitCode, `${args.join(' ')}: ${res.stderr}`).toBe(0);
  return res.stdout;
}

describe.each([
  ['Basic (htpasswd)', () => basic],
  ['Bearer (token server)', () => token],
])('a login, then push and pull through it: %s', (_, reg) => {
  it('refuses without a login, pushes and pulls with one, and never prints the password', async () => {
    const ref = `${reg().host}/team/busybox:1`;
    await ok(src, ['tag', 'busybox', ref]);
    const anonymous = await berth(src, ['push', ref], { home: path.join(home, 'nobody') });
    expect(anonymous.exitCode).toBe(125);
    expect(anonymous.stderr).toContain(reg().host);

    await ok(src, ['login', '-u', 'ann', '--password-stdin', reg().host], { input: PASSWORD });
    const pushed = await ok(src, ['push', ref]);
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushed)?.[1];
    expect(digest, pushed).toBeDefined();

    const pulled = await ok(dst, ['pull', ref]);
    expect(pulled).toContain(`Digest: ${digest}`);
    expect(await ok(dst, ['run', '--rm', '--network', 'none', ref, 'echo', 'pulled with a login'])).toBe('pulled with a login');

    const denied = await berth(dst, ['pull', `${reg().host}/team/busybox:1`], { home: path.join(home, 'nobody') });
    expect(denied.exitCode).toBe(125);
    for (const out of [pushed, pulled, denied.stdout, denied.stderr, anonymous.stderr]) expect(out).not.toContain(PASSWORD);
    await ok(src, ['logout', reg().host]);
  });
});

describe('bearer scopes', () => {
  it('lets a read-only login pull and refuses its push, naming the registry', async () => {
    const ref = `${token.host}/team/busybox:ro`;
    const roHome = path.join(home, 'ro');
    await ok(src, ['login', '-u', 'ro', '--password-stdin', token.host], { input: PASSWORD, home: roHome });
    await ok(src, ['tag', 'busybox', ref]);
    const res = await berth(src, ['push', ref], { home: roHome });
    expect(res.exitCode).toBe(125);
    expect(res.stderr).toMatch(new RegExp(`denied|permission`, 'i'));
    expect(res.stderr).toContain(token.host);
    expect(await ok(dst, ['pull', '-q', `${token.host}/team/busybox:1`], { home: roHome })).toBe(`${token.host}/team/busybox:1`);
  });
});

describe('short names and unqualified-search registries', () => {
  it('uses a local image first, then asks each search registry in turn until one has the image', async () => {
    await ok(src, ['tag', 'busybox', `${plain.host}/tools/searched:2`]);
    await ok(src, ['push', '-q', `${plain.host}/tools/searched:2`]);

    // `tools/searched` has no registry: the first search registry is down, the second has it.
    const pulled = await ok(dst, ['--config', config, 'pull', 'tools/searched:2']);
    expect(pulled.trim().split('\n').at(-1)).toBe(`${plain.host}/tools/searched:2`);
    expect(await ok(dst, ['--config', config, 'run', '--rm', '--network', 'none', 'tools/searched:2', 'echo', 'found'])).toBe('found');

    // The embedded image is local: `busybox` never reaches a registry, even with search registries set.
    expect(await ok(dst, ['--config', config, 'run', '--rm', '--network', 'none', 'busybox', 'echo', 'local'])).toBe('local');

    const missing = await berth(dst, ['--config', config, 'pull', 'tools/absent:1']);
    expect(missing.exitCode).toBe(125);
    expect(missing.stderr).toContain(DOWN);
  });
});

describe('mirrors', () => {
  it('pulls through a mirror when the registry itself is down, and hands over from a dead mirror to the registry', async () => {
    await ok(src, ['tag', 'busybox', `${plain.host}/tools/mirrored:3`]);
    await ok(src, ['push', '-q', `${plain.host}/tools/mirrored:3`]);
    const mirrors = path.join(home, 'mirrors.json');
    // DOWN is mirrored by the live registry; the live registry's only mirror is DOWN.
    await writeFile(mirrors, JSON.stringify({ mirrors: { [DOWN]: [plain.host], [plain.host]: [DOWN] } }));

    const viaMirror = await ok(dst, ['--config', mirrors, 'pull', `${DOWN}/tools/mirrored:3`]);
    expect(viaMirror.trim().split('\n').at(-1)).toBe(`${DOWN}/tools/mirrored:3`);
    expect(await ok(dst, ['--config', mirrors, 'run', '--rm', '--network', 'none', `${DOWN}/tools/mirrored:3`, 'echo', 'mirrored'])).toBe('mirrored');

    const handedOver = await ok(dst, ['--config', mirrors, 'pull', '-q', `${plain.host}/tools/mirrored:3`]);
    expect(handedOver).toBe(`${plain.host}/tools/mirrored:3`);
  });
});
