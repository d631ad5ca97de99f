/**
 * Rootless Berth on fuse-overlayfs (issue 18's fallback for kernels without overlayfs in a user namespace),
 * as a real non-root user. This host's /dev/fuse is root's alone (0600) and is not Berth's to change: the
 * first command runs in a private mount namespace of the test's where a device node the test made (0666)
 * is bound over /dev/fuse. That command starts the user's pause process, whose mount namespace is a copy
 * of that one, so every later command, which joins it, and every fuse-overlayfs daemon started there, see
 * the bind too; the host's /dev/fuse is never touched.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRootlessUser, sh, type Result, type RootlessUser } from '../helpers/rootless.js';

const BERTH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/berth.js');
const FUSE = ['--storage-driver', 'fuse-overlayfs'];

describe('rootless berth on fuse-overlayfs', () => {
  let u: RootlessUser;
  let devDir: string;
  const hostFuseMode = statSync('/dev/fuse').mode;
  const store = () => path.join(u.home, '.local/share/berth');
  const pauseMounts = () => readFileSync(`/proc/${readFileSync(`/tmp/berth-run-${u.uid}/pause.pid`, 'utf8').split(' ')[0]}/mountinfo`, 'utf8');
  const daemons = async () => (await sh('pgrep', ['-u', String(u.uid), '-x', 'fuse-overlayfs'])).stdout.split('\n').filter(Boolean).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0] !== 'Z';
    } catch {
      return false;
    }
  });
  const ok = async (r: Promise<Result>) => {
    const res = await r;
    expect(res.code, res.stderr).toBe(0);
    return res.stdout.trim();
  };

  beforeAll(async () => {
    u = await createRootlessUser();
    u.addSubIds();
    devDir = mkdtempSync('/tmp/berth-fuse-dev-');
    chmodSync(devDir, 0o755);
    execFileSync('mknod', [path.join(devDir, 'fuse'), 'c', '10', '229']);
    chmodSync(path.join(devDir, 'fuse'), 0o666);
  }, 60_000);

  afterAll(async () => {
    try {
      await u?.remove();
    } finally {
      if (devDir) rmSync(devDir, { recursive: true, force: true });
    }
    expect(statSync('/dev/fuse').mode).toBe(hostFuseMode);
  });

  it('starts the pause process where /dev/fuse is open to the user, and runs a container on fuse-overlayfs', async () => {
    const env = [`HOME=${u.home}`, 'PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', `USER=${u.name}`, `LOGNAME=${u.name}`];
    const first = await sh('unshare', ['-m', '--propagation', 'private', '--', 'sh', '-c', 'mount --bind "$0" /dev/fuse && exec "$@"', path.join(devDir, 'fuse'),
      'runuser', '-u', u.name, '--', 'env', '-i', ...env, process.execPath, BERTH, ...FUSE, 'run', '--rm', '--network', 'none', 'busybox', 'echo', 'hi']);
    expect(first, first.stderr).toMatchObject({ code: 0, stdout: 'hi\n' });
    // A later command, outside the test's namespace, joins the pause process's, which has the bind.
    const id = await ok(u.berth(...FUSE, 'run', '-d', '--network', 'none', '--name', 'served', 'busybox', 'sh', '-c', 'echo data > /written && sleep 600'));
    expect(await ok(u.berth('inspect', '-f', '{{.Driver}}', 'served'))).toBe('fuse-overlayfs');
    expect(await daemons()).toHaveLength(1);
    expect(pauseMounts()).toMatch(new RegExp(`${path.join(store(), 'snapshots', id, 'merged')} .* - fuse\\.fuse-overlayfs `));
    expect(await ok(u.berth('exec', '-u', '1000', 'served', 'cat', '/written'))).toBe('data');
    expect(readFileSync(path.join(store(), 'snapshots', id, 'upper', 'written'), 'utf8')).toBe('data\n');
    expect(await ok(u.berth(...FUSE, 'info'))).toContain(' Storage Driver: fuse-overlayfs\n');
    await ok(u.berth('rm', '-f', 'served'));
    expect(await daemons()).toEqual([]);
    expect(pauseMounts()).not.toContain(path.join(store(), 'snapshots'));
  });

  it('reads its user-namespace upper dir in diff and commit: a deleted lower file, a folder made again', async () => {
    await ok(u.berth(...FUSE, 'run', '--network', 'none', '--name', 'maker', 'busybox', 'sh', '-c', 'rm /bin/ls && rm -rf /var && mkdir /var && echo only > /var/only'));
    const id = await ok(u.berth('inspect', '-f', '{{.Id}}', 'maker'));
    // In a user namespace fuse-overlayfs marks the folder with user.fuseoverlayfs.opaque (trusted.* is root's).
    const xattrs = (await u.as('getfattr', '-d', '-m', '-', path.join(store(), 'snapshots', id, 'upper', 'var'))).stdout;
    expect(xattrs).toContain('user.fuseoverlayfs.opaque="y"');
    const diff = (await ok(u.berth('diff', 'maker'))).split('\n');
    expect(diff).toEqual(['C /bin', 'D /bin/ls', 'C /var', 'A /var/only']);
    await ok(u.berth('commit', 'maker', 'fusecommit:1'));
    await ok(u.berth('rm', 'maker'));
    // read back by both drivers: the committed layer is in the common (OCI, then overlay) form
    for (const driver of ['fuse-overlayfs', 'overlay']) {
      expect(await ok(u.berth('--storage-driver', driver, 'run', '--rm', '--network', 'none', 'fusecommit:1', 'sh', '-c', 'test -e /bin/ls || echo gone; ls /var'))).toBe('gone\nonly');
    }
    expect(await daemons()).toEqual([]);
  });

  it('has the next command repair one killed after the mount', async () => {
    const killed = await u.berthKilledAt('storage.snapshot.after-mount', ...FUSE, 'create', '--network', 'none', '--name', 'halfmade', 'busybox', 'true');
    expect(killed.code).not.toBe(0);
    expect(await daemons()).toHaveLength(1);
    expect(await ok(u.berth('ps', '-a', '--format', '{{.Names}}'))).not.toContain('halfmade');
    expect(await daemons()).toEqual([]);
    expect(pauseMounts()).not.toContain(path.join(store(), 'snapshots'));
  });

  it('with auto, probes once that this kernel mounts overlayfs in the namespace, and keeps the answer', async () => {
    expect(await ok(u.berth('info'))).toContain(' Storage Driver: overlay\n  Native Overlay Diff: true\n  userxattr: true\n');
    const probe = JSON.parse(readFileSync(path.join(store(), 'storage-probe.json'), 'utf8')) as { native: boolean; kernel: string };
    expect(probe).toMatchObject({ native: true, kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim() });
    expect(await ok(u.as('find', store(), '-maxdepth', '1', '-name', 'probe.*'))).toBe('');
    // A probe killed with its test mount made: the next probe removes what it left, then probes again.
    rmSync(path.join(store(), 'storage-probe.json'));
    const killed = await u.berthKilledAt('storage.probe.after-mount', 'info');
    expect(killed.code).not.toBe(0);
    expect(await ok(u.as('find', store(), '-maxdepth', '1', '-name', 'probe.*'))).not.toBe('');
    expect(pauseMounts()).toContain(`${store()}/probe.`);
    expect(await ok(u.berth('info'))).toContain(' Storage Driver: overlay\n');
    expect(await ok(u.as('find', store(), '-maxdepth', '1', '-name', 'probe.*'))).toBe('');
    expect(pauseMounts()).not.toContain(`${store()}/probe.`);
    expect(await ok(u.berth('system', 'reset', '-f'))).toBeDefined();
    expect(await u.live()).toEqual([]);
  });
});
