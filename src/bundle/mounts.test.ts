import { describe, expect, it } from 'vitest';
import { mergeMounts, parseShmSize, parseTmpfs, systemMounts } from './mounts.js';

describe('systemMounts', () => {
  it('mounts /sys and the cgroup tree read-only unless privileged', () => {
    const opts = (m: ReturnType<typeof systemMounts>, d: string) => m.find((x) => x.destination === d)?.options;
    const normal = systemMounts({ privileged: false, shmSize: 1, hostIpc: false });
    expect(opts(normal, '/sys')).toContain('ro');
    expect(opts(normal, '/sys/fs/cgroup')).toContain('ro');
    const priv = systemMounts({ privileged: true, shmSize: 1, hostIpc: false });
    expect(opts(priv, '/sys')).toContain('rw');
    expect(opts(priv, '/sys/fs/cgroup')).toContain('rw');
  });

  it('binds the host\'s /dev/shm with --ipc host, and has no mqueue of its own', () => {
    const m = systemMounts({ privileged: false, shmSize: 1, hostIpc: true });
    expect(m.find((x) => x.destination === '/dev/shm')).toMatchObject({ type: 'bind', source: '/dev/shm' });
    expect(m.some((x) => x.destination === '/dev/mqueue')).toBe(false);
  });
});

describe('parseShmSize', () => {
  it('defaults to 64m', () => {
    expect(parseShmSize(undefined)).toBe(67108864);
    expect(parseShmSize('128m')).toBe(134217728);
    expect(() => parseShmSize('lots')).toThrow('invalid --shm-size');
  });
});

describe('parseTmpfs', () => {
  it('puts Docker\'s noexec,nosuid,nodev first so options can undo them', () => {
    expect(parseTmpfs('/run')).toEqual({ destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'noexec', 'nodev'] });
    expect(parseTmpfs('/cache:exec,size=64m,mode=1777').options).toEqual(['nosuid', 'noexec', 'nodev', 'exec', 'size=64m', 'mode=1777']);
  });

  it('refuses relative paths and unknown options', () => {
    expect(() => parseTmpfs('run')).toThrow('invalid --tmpfs: "run" is not an absolute path');
    expect(() => parseTmpfs('/run:fast')).toThrow('unknown option "fast"');
    expect(() => parseTmpfs('/run:size=')).toThrow('unknown option');
  });
});

describe('mergeMounts', () => {
  const base = [{ destination: '/proc' }, { destination: '/dev/shm', type: 'tmpfs' }];

  it('lets a user mount replace a base mount at the same place', () => {
    const merged = mergeMounts(base, [{ destination: '/dev/shm/', type: 'bind', source: '/x' }]);
    expect(merged).toEqual([{ destination: '/proc' }, { destination: '/dev/shm', type: 'bind', source: '/x' }]);
  });

  it('sorts user mounts parents first, keeping the given order otherwise', () => {
    const merged = mergeMounts([], [{ destination: '/a/b/c' }, { destination: '/z' }, { destination: '/a' }, { destination: '/y' }]);
    expect(merged.map((m) => m.destination)).toEqual(['/z', '/a', '/y', '/a/b/c']);
  });

  it('refuses two user mounts at one place', () => {
    expect(() => mergeMounts([], [{ destination: '/data' }, { destination: '/data/' }])).toThrow('duplicate mount point: /data');
  });
});
