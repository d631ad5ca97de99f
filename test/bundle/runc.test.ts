import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSpec, capabilityMask, listHostDevices, readHostCapabilities, writeBundle, type BundleInput } from '../../src/bundle/index.js';
import type { CreateRequest } from '../../src/options.js';
import { run } from '../../src/util/exec.js';
import { FAKE_HOST } from './fixtures.js';

/**
 * Real runc runs the configs buildSpec writes: the default capability set, the memory and pids limits land
 * in the container's cgroups. Each container is `runc run` in the foreground, which deletes the container
 * and its cgroups when the process exits; afterAll checks and cleans anyway.
 */
const RUNC = '/usr/sbin/runc';
const BUSYBOX = '/bin/busybox';
const CATATONIT = '/usr/bin/catatonit';
const haveTools = await Promise.all([RUNC, BUSYBOX, CATATONIT].map((p) => fsp.access(p).then(() => true, () => false)));
const canRun = haveTools.every(Boolean) && process.getuid?.() === 0;

describe.skipIf(!canRun)('runc runs the generated bundles', () => {
  let tmp = '';
  let rootfs = '';
  const started: string[] = [];

  beforeAll(async () => {
    tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-bundle-'));
    rootfs = path.join(tmp, 'rootfs');
    await fsp.mkdir(path.join(rootfs, 'bin'), { recursive: true });
    await fsp.copyFile(BUSYBOX, path.join(rootfs, 'bin/busybox'));
    await fsp.chmod(path.join(rootfs, 'bin/busybox'), 0o755);
    for (const applet of ['sh', 'cat', 'tr', 'touch', 'hostname', 'test']) await fsp.symlink('busybox', path.join(rootfs, 'bin', applet));
  });

  afterAll(async () => {
    for (const id of started) {
      await run(RUNC, ['--root', path.join(tmp, 'state'), 'delete', '--force', id], { timeout: 10_000 }).catch(() => {});
    }
    if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
    for (const id of started) {
      for (const ctl of ['memory', 'pids', 'cpu', 'devices']) {
        await expect(fsp.access(`/sys/fs/cgroup/${ctl}/${id}`)).rejects.toThrow();
      }
    }
  });

  /** Runs `args` in a fresh container made from `request`; returns its stdout. */
  async function runContainer(request: Partial<CreateRequest>, args: string[], over: Partial<BundleInput> = {}): Promise<string> {
    const id = `berth-bundle-test-${process.pid}-${started.length}`;
    started.push(id);
    const input: BundleInput = {
      id,
      rootfsPath: rootfs,
      imageConfig: { Cmd: args },
      request: { image: 'busybox', ...request },
      host: FAKE_HOST,
      userDb: { passwd: '', group: '' },
      // No path: runc makes a fresh, empty network namespace.
      namespaces: {},
      files: {},
      extraMounts: [],
      // One level only: runc removes the container's own cgroup on delete, not parents it created.
      cgroupsPath: `/${id}`,
      initPath: CATATONIT,
      ...over,
    };
    const { spec } = buildSpec(input);
    const bundle = path.join(tmp, id);
    await writeBundle(bundle, spec);
    const { stdout } = await run(RUNC, ['--root', path.join(tmp, 'state'), 'run', '--bundle', bundle, id], { timeout: 30_000 });
    return stdout;
  }

  it('gives the default capability set, CapEff 00000000a80425fb', async () => {
    const status = await runContainer({}, ['/bin/cat', '/proc/self/status']);
    expect(status).toMatch(/^CapEff:\s+00000000a80425fb$/m);
    expect(status).toMatch(/^CapBnd:\s+00000000a80425fb$/m);
    expect(status).toMatch(/^CapInh:\s+0000000000000000$/m);
    expect(status).toMatch(/^Seccomp:\s+2$/m);
  });

  it('--privileged gives every capability the engine holds, the host\'s devices, and no seccomp', async () => {
    const held = await readHostCapabilities();
    const status = await runContainer({ privileged: true }, ['/bin/sh', '-c', 'cat /proc/self/status; test -c /dev/loop-control && echo has-loop-control'],
      { hostCapabilities: held, hostDevices: await listHostDevices() });
    expect(status).toMatch(new RegExp(`^CapEff:\\s+${capabilityMask(held)}$`, 'm'));
    expect(status).toMatch(/^Seccomp:\s+0$/m);
    if (existsSync('/dev/loop-control')) expect(status).toContain('has-loop-control');
  });

  it('applies the network sysctls and the host name in a fresh network namespace', async () => {
    const out = await runContainer({ hostname: 'smoke' },
      ['/bin/sh', '-c', 'cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/ipv4/ping_group_range; hostname']);
    expect(out.trim().split('\n')).toEqual(['0', '0\t2147483647', 'smoke']);
  });

  it('applies --memory 64m (and swap 2x) and --pids-limit in the container cgroup', async () => {
    const out = await runContainer({ resources: { memory: '64m', pidsLimit: 50 } },
      ['/bin/cat', '/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes', '/sys/fs/cgroup/pids/pids.max']);
    expect(out.trim().split('\n')).toEqual(['67108864', '134217728', '50']);
  });

  it('applies --cpus 0.5 as a CFS quota of 50000 per 100000', async () => {
    const out = await runContainer({ resources: { cpus: '0.5' } },
      ['/bin/cat', '/sys/fs/cgroup/cpu/cpu.cfs_quota_us', '/sys/fs/cgroup/cpu/cpu.cfs_period_us']);
    expect(out.trim().split('\n')).toEqual(['50000', '100000']);
  });

  it('runs the command as the requested user and drops every capability with --cap-drop ALL', async () => {
    const status = await runContainer({ user: '1000:1000', capDrop: ['ALL'] }, ['/bin/cat', '/proc/self/status']);
    expect(status).toMatch(/^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
    expect(status).toMatch(/^CapBnd:\s+0000000000000000$/m);
  });

  it('runs the init with --init and makes the root read-only with --read-only', async () => {
    const out = await runContainer({ init: true, readOnly: true, tmpfs: ['/run'] },
      ['/bin/sh', '-c', 'cat /proc/1/cmdline | tr "\\0" " "; echo; touch /x 2>/dev/null || echo ro; touch /run/x && echo tmpfs-ok']);
    expect(out).toContain('/sbin/docker-init -- /bin/sh');
    expect(out).toContain('ro\n');
    expect(out).toContain('tmpfs-ok');
  });
});
