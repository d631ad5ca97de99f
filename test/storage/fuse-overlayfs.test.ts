/**
 * The fuse-overlayfs storage driver (issue 18's rootless fallback), as root with the driver chosen by name:
 * containers' root filesystems served by a fuse-overlayfs daemon that outlives the command, their upper dirs
 * read by diff and commit, and every teardown path (rm, rm -f, run --rm, a command killed after the mount)
 * leaving no daemon and no mount. test/rootless/fuse-overlayfs.test.ts runs it rootless.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { RuntimeError } from '../../src/errors.js';
import { fuseDaemons, isMounted, mountFuseOverlay } from '../../src/storage/mounts.js';
import { testEngine, type TestEngine } from '../helpers/engine.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/berth.js');
let t: TestEngine;

beforeAll(async () => {
  t = await testEngine();
  await t.engine.images.ensureDefault();
}, 120_000);
afterAll(async () => {
  await t?.cleanup();
  expect(await daemonsUnder(t.root)).toEqual([]);
});

/** berth on the test's root with fuse-overlayfs as the driver, optionally killed at a failpoint. */
function berth(args: string[], opts: { failpoint?: string; driver?: string } = {}) {
  const { BERTH_FAILPOINT: _unset, ...env } = process.env;
  return execa(process.execPath, [BIN, '--root', t.root, '--runroot', t.runroot, '--storage-driver', opts.driver ?? 'fuse-overlayfs', ...args],
    { env: opts.failpoint ? { ...env, BERTH_FAILPOINT: opts.failpoint } : env, extendEnv: false, reject: false, timeout: 60_000 });
}

async function ok(args: string[], driver?: string): Promise<string> {
  const r = await berth(args, { driver });
  expect(r.exitCode, `berth ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout.trim();
}

/** Live fuse-overlayfs processes serving anything below `dir`, zombies left out. */
async function daemonsUnder(dir: string): Promise<string[]> {
  const { stdout } = await execa('pgrep', ['-a', '-x', 'fuse-overlayfs'], { reject: false });
  return stdout.split('\n').filter((l) => l.includes(dir)).filter((l) => {
    try {
      return readFileSync(`/proc/${l.split(' ')[0]}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z';
    } catch {
      return false;
    }
  });
}

const merged = (id: string) => path.join(t.root, 'snapshots', id, 'merged');

describe('fuse-overlayfs as root', () => {
  it('serves a container\'s root filesystem from a daemon that outlives the command, its writes in the upper dir', async () => {
    const id = await ok(['run', '-d', '--network', 'none', '--name', 'served', 'busybox', 'sh', '-c', 'echo data > /written && sleep 600']);
    expect(await ok(['inspect', '-f', '{{.Driver}}', 'served'])).toBe('fuse-overlayfs');
    expect(await fuseDaemons(merged(id))).toHaveLength(1);
    expect(await isMounted(merged(id))).toBe(true);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).toContain(`${merged(id)} rw,`);
    await expect.poll(() => readFileSync(path.join(t.root, 'snapshots', id, 'upper', 'written'), 'utf8').trim(), { timeout: 20_000 }).toBe('data');
    // a container's non-root user gets in too (allow_other)
    expect(await ok(['exec', '-u', '1000', 'served', 'cat', '/written'])).toBe('data');
    await ok(['rm', '-f', 'served']);
    expect(await fuseDaemons(merged(id))).toEqual([]);
    expect(await isMounted(merged(id))).toBe(false);
  });

  it('shows a deleted lower file and a folder made again in diff, and commit keeps them (read back by native overlay)', async () => {
    await ok(['run', '--network', 'none', '--name', 'maker', 'busybox', 'sh', '-c', 'rm /bin/ls && rm -rf /var && mkdir /var && echo only > /var/only && echo n > /new']);
    const diff = (await ok(['diff', 'maker'])).split('\n');
    expect(diff).toEqual(expect.arrayContaining(['D /bin/ls', 'C /var', 'A /var/only', 'A /new']));
    // fuse-overlayfs's own entries (.wh..wh..opq, the untouched copy of /bin/ls's other names) are not the container's
    expect(diff.filter((l) => l.includes('.wh.') || l === 'C /bin/mt')).toEqual([]);
    await ok(['commit', 'maker', 'fusecommit:1']);
    const id = await ok(['inspect', '-f', '{{.Id}}', 'maker']);
    await ok(['rm', 'maker']);
    expect(await fuseDaemons(merged(id))).toEqual([]);
    const check = ['run', '--rm', '--network', 'none', 'fusecommit:1', 'sh', '-c', 'test -e /bin/ls || echo gone; ls /var; cat /new'];
    expect(await ok(check, 'overlay')).toBe('gone\nonly\nn');
    expect(await ok(check)).toBe('gone\nonly\nn');
    await ok(['rmi', 'fusecommit:1']);
    expect(await daemonsUnder(t.root)).toEqual([]);
  });

  it('has the exit hook unmount a container that ends by itself, and start mount it again', async () => {
    const id = await ok(['run', '-d', '--network', 'none', '--name', 'ends', 'busybox', 'sh', '-c', 'echo $$ >> /runs']);
    await expect.poll(async () => (await ok(['inspect', '-f', '{{.State.Status}}', 'ends'])) === 'exited' && !(await isMounted(merged(id))) && !(await fuseDaemons(merged(id))).length, { timeout: 30_000 }).toBe(true);
    await ok(['start', '-a', 'ends']);
    expect(readFileSync(path.join(t.root, 'snapshots', id, 'upper', 'runs'), 'utf8').trim().split('\n')).toHaveLength(2);
    await ok(['rm', 'ends']);
    expect(await fuseDaemons(merged(id))).toEqual([]);
  });

  it('leaves no daemon and no mount after run --rm', async () => {
    expect(await ok(['run', '--rm', '--network', 'none', 'busybox', 'echo', 'hi'])).toBe('hi');
    expect(await daemonsUnder(t.root)).toEqual([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(path.join(t.root, 'snapshots'));
  });

  it('has the next command repair one killed after the mount: no daemon, no mount, no snapshot', async () => {
    const killed = await berth(['create', '--network', 'none', '--name', 'halfmade', 'busybox', 'true'], { failpoint: 'storage.snapshot.after-mount' });
    expect(killed.signal).toBe('SIGKILL');
    expect(await daemonsUnder(t.root)).toHaveLength(1);
    expect(await ok(['ps', '-a', '--format', '{{.Names}}'])).not.toContain('halfmade');
    expect(await daemonsUnder(t.root)).toEqual([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(path.join(t.root, 'snapshots'));
    await ok(['create', '--network', 'none', '--name', 'halfmade', 'busybox', 'true']);
    await ok(['rm', 'halfmade']);
  });

  it('says what fuse-overlayfs said when it cannot mount, and leaves no daemon', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-fuse-fail-'));
    try {
      const files = { pid: path.join(dir, 'fuse.pid'), log: path.join(dir, 'fuse.log') };
      const err = await mountFuseOverlay(dir, { lower: [path.join(dir, 'no-such-layer')], cwd: dir }, false, files).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RuntimeError);
      expect((err as RuntimeError).message).toMatch(/^fuse-overlayfs exited with \d+: .*no-such-layer/);
      expect(await fuseDaemons(dir)).toEqual([]);
      expect(await isMounted(dir)).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports the driver in info, and refuses an unknown one by name', async () => {
    expect(await ok(['info'])).toContain(' Storage Driver: fuse-overlayfs\n  Mount Program: fuse-overlayfs 1.');
    expect(await ok(['info'], 'auto')).toContain(' Storage Driver: overlay\n  Native Overlay Diff: true\n');
    const bad = await berth(['run', '--rm', 'busybox', 'true'], { driver: 'vfs' });
    expect(bad.exitCode).toBe(125);
    expect(bad.stderr).toContain('invalid storage driver: "vfs" is not a storage driver');
  });
});
