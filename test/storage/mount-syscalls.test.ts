/**
 * src/util/syscalls.ts: mounts made in-process (koffi's libc calls) instead of by mount(8)/umount(8), and
 * the helpers still used where the module is not there (BERTH_MOUNT_HELPER=1) or the options only fit
 * relative. A PATH shim logs every mount(8)/umount(8) that Berth starts, then runs the real one.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasOwnDevice, isMounted, mountOverlay, unmount } from '../../src/storage/mounts.js';
import { SyscallError, syscalls } from '../../src/util/syscalls.js';

const BERTH = fileURLToPath(new URL('../../bin/berth.js', import.meta.url));

let dir: string;
let shims: string;
let log: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'berth-mountsys-'));
  shims = path.join(dir, 'shims');
  log = path.join(dir, 'helpers.log');
  mkdirSync(shims);
  writeFileSync(log, '');
  for (const tool of ['mount', 'umount']) {
    const real = (await execa('sh', ['-c', `command -v ${tool}`])).stdout.trim();
    writeFileSync(path.join(shims, tool), `#!/bin/sh\necho "${tool} $*" >> ${log}\nexec ${real} "$@"\n`);
    chmodSync(path.join(shims, tool), 0o755);
  }
});

afterAll(async () => {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n').reverse()) {
    const target = line.split(' ')[4];
    if (target?.startsWith(dir)) await execa('umount', ['-l', target], { reject: false });
  }
  await rm(dir, { recursive: true, force: true });
});

const helperCalls = () => readFileSync(log, 'utf8').split('\n').filter(Boolean);

describe('the in-process system calls', () => {
  it('load on this machine, mount and unmount, and fail with errno by name', async () => {
    const sys = syscalls();
    expect(sys).toBeDefined();
    const target = path.join(dir, 'tmpfs');
    mkdirSync(target);
    await sys!.mount('tmpfs', target, 'tmpfs', 0, 'size=1m');
    expect(await isMounted(target)).toBe(true);
    await sys!.umount(target, 0);
    expect(await isMounted(target)).toBe(false);
    const notMounted = await sys!.umount(target, 0).catch((err: unknown) => err);
    expect(notMounted).toBeInstanceOf(SyscallError);
    expect((notMounted as SyscallError).code).toBe('EINVAL');
    const missing = await sys!.mount('tmpfs', path.join(dir, 'absent'), 'tmpfs', 0, null).catch((err: unknown) => err);
    expect((missing as SyscallError).code).toBe('ENOENT');
    expect((missing as Error).message).toBe(`mount ${path.join(dir, 'absent')}: ENOENT`);
  });

  it('an overlay whose absolute lowerdirs exceed a page is mounted by mount(8) from the layers folder', async () => {
    // 120 layers: relative ("l/<16 chars>") they fit in a page, absolute they do not.
    const layers = path.join(dir, 'layers');
    const lower = Array.from({ length: 120 }, (_, i) => `l/${String(i).padStart(16, '0')}`);
    for (const [i, l] of lower.entries()) {
      mkdirSync(path.join(layers, l), { recursive: true });
      writeFileSync(path.join(layers, l, `f${i}`), String(i));
    }
    const target = path.join(dir, 'deep');
    mkdirSync(target);
    const before = helperCalls().length;
    const oldPath = process.env.PATH;
    process.env.PATH = `${shims}:${oldPath}`;
    try {
      await mountOverlay(target, { lower, cwd: layers });
      expect(readFileSync(path.join(target, 'f0'), 'utf8')).toBe('0');
      expect(readFileSync(path.join(target, 'f119'), 'utf8')).toBe('119');
      await unmount(target);
    } finally {
      process.env.PATH = oldPath;
    }
    expect(helperCalls().slice(before).map((l) => l.split(' ')[0])).toEqual(['mount']);
    expect(await isMounted(target)).toBe(false);
  });
});

describe('mount points, without the mount table', () => {
  it('hasOwnDevice: a mounted filesystem yes; a plain folder, a missing path and a same-filesystem bind no', async () => {
    const target = path.join(dir, 'own');
    mkdirSync(target);
    expect(await hasOwnDevice(target)).toBe(false);
    expect(await hasOwnDevice(path.join(dir, 'missing'))).toBe(false);
    await execa('mount', ['-t', 'tmpfs', 'tmpfs', target]);
    expect(await hasOwnDevice(target)).toBe(true);
    await execa('umount', [target]);
    // What it cannot see, which is why the volume driver keeps isMounted for its binds.
    const src = path.join(dir, 'bindsrc');
    mkdirSync(src);
    await execa('mount', ['--bind', src, target]);
    expect(await hasOwnDevice(target)).toBe(false);
    expect(await isMounted(target)).toBe(true);
    await execa('umount', [target]);
  });

  it('unmount takes stacked mounts off one by one, detaches a busy one, and takes "not mounted" as done', async () => {
    const target = path.join(dir, 'stacked');
    mkdirSync(target);
    await execa('mount', ['-t', 'tmpfs', 'tmpfs', target]);
    await execa('mount', ['-t', 'tmpfs', 'tmpfs', target]);
    await unmount(target);
    expect(await isMounted(target)).toBe(false);
    await unmount(target);

    await execa('mount', ['-t', 'tmpfs', 'tmpfs', target]);
    // A process with its cwd inside keeps the mount busy: umount2 says EBUSY, and the mount is detached.
    const holder = execa('sh', ['-c', 'read _'], { cwd: target, stdin: 'pipe' });
    try {
      await unmount(target);
      expect(await isMounted(target)).toBe(false);
    } finally {
      holder.stdin!.end('\n');
      await holder.catch(() => undefined);
    }
  });
});

describe('a container run', () => {
  const run = (env: Record<string, string>) => execa(BERTH, ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'run'),
    'run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'echo hi > /tmp/x && cat /tmp/x'],
  { reject: false, timeout: 60_000, env: { ...env, PATH: `${shims}:${process.env.PATH}` } });

  it('mounts and unmounts its rootfs without mount(8) or umount(8)', async () => {
    const before = helperCalls().length;
    const res = await run({});
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toBe('hi');
    expect(helperCalls().slice(before)).toEqual([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(path.join(dir, 'root'));
  });

  it('with BERTH_MOUNT_HELPER=1, through mount(8) and umount(8), to the same result', async () => {
    const before = helperCalls().length;
    const res = await run({ BERTH_MOUNT_HELPER: '1' });
    expect(res.exitCode, res.stderr).toBe(0);
    expect(res.stdout).toBe('hi');
    expect(helperCalls().slice(before).map((l) => l.split(' ')[0])).toEqual(['mount', 'umount']);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(path.join(dir, 'root'));
  });
});
